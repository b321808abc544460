//! The listener: accepting peers that dial us (BEP 3: a peer is reachable at the port it
//! announces) — walkthrough §10.
//!
//! ```text
//!   tracker learns our port ──► other peers dial it ──► listener thread: accept()
//!        ──► a new peer thread per connection (handshake as the receiving side, then §7)
//! ```
//!
//! The listener only accepts and hands over: the handshake happens on the new peer thread, so
//! a connection that sends nothing cannot hold up the next one. It caps how many accepted
//! connections live at once; the scheduler then keeps at most `--max-peers` of them.

use super::thread::{PeerContext, spawn_incoming};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// The listening thread, until [`Listener::stop`].
pub struct Listener {
    /// Where we listen (the port to announce).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Counts a live incoming connection until its peer thread ends.
pub struct LiveConnection(Arc<AtomicUsize>);

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Listener {
    /// Binds `bind` (port 0: any free port) and starts the thread `listener`. At most
    /// `max_live` accepted connections exist at once; more are closed at once, with a log line.
    pub fn spawn(
        bind: SocketAddr,
        mut context: PeerContext,
        max_live: usize,
    ) -> std::io::Result<Listener> {
        let socket = TcpListener::bind(bind)?;
        let addr = socket.local_addr()?;
        // Only now is the port known (port 0 picks one): every incoming peer hears it in our
        // extended handshake (`p`), so it can give our address to others (PEX).
        context.listen_port = addr.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || accept_loop(&socket, &context, &flag, max_live))?;
        log::info!("listening for peers on {addr}");
        Ok(Listener { addr, stop, thread })
    }

    /// Stops accepting: raises the flag, wakes `accept` with a connection of our own, joins.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        // Fails only if nothing listens any more, that is, the thread has ended already:
        // then the join below returns at once.
        let _ = TcpStream::connect_timeout(&wake, std::time::Duration::from_secs(1));
        // `Err` only if the thread panicked (its message is already printed): stopping goes on.
        let _ = self.thread.join();
    }
}

fn accept_loop(socket: &TcpListener, context: &PeerContext, stop: &AtomicBool, max_live: usize) {
    let live = Arc::new(AtomicUsize::new(0));
    for accepted in socket.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let stream = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                log::warn!("accept failed: {e}");
                continue;
            }
        };
        let Ok(addr) = stream.peer_addr() else {
            continue;
        };
        if live.load(Ordering::Relaxed) >= max_live {
            log::info!("{addr}: refused, already {max_live} incoming connections");
            continue; // dropping the stream closes it
        }
        live.fetch_add(1, Ordering::Relaxed);
        log::debug!("{addr}: accepted");
        let guard = LiveConnection(Arc::clone(&live));
        // Small messages (a request, a have) go out at once rather than wait to be batched.
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("{addr}: {e}"); // only a latency cost: the connection still works
        }
        spawn_incoming(Box::new(stream), addr, context.clone(), guard);
    }
}
