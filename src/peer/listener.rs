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
//! connections live at once; the scheduler then keeps at most `--max-peers` of them. It serves
//! a [`Swarms`] registry, not one torrent: the info hash of each peer's handshake picks the
//! torrent (one, for a single download; several for `download A B`).
//!
//! Peers reach us over uTP too (BEP 29): the `utp` thread accepts those on the UDP socket of
//! the same port number and hands each stream over a channel to a second thread,
//! `listener utp`, which treats it exactly as a TCP connection, under the same cap.
//!
//! Both address families share one socket: the default `--bind ::` is `[::]` with
//! `IPV6_V6ONLY` off ([`bind_tcp`]), and an IPv4 peer, which that socket reports as
//! `::ffff:a.b.c.d`, is named `a.b.c.d` from the moment it is accepted.

use super::swarms::Swarms;
use super::thread::spawn_incoming;
use crate::encoding::canonical_addr;
use crate::utp::stream::UtpStream;
use crossbeam_channel::{Receiver, Sender, select};
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// The listening thread, until [`Listener::stop`].
pub struct Listener {
    /// Where we listen (the port to announce).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    /// The uTP side: dropping the sender ends its thread.
    utp: Option<(Sender<()>, JoinHandle<()>)>,
}

/// Counts a live incoming connection until its peer thread ends.
pub struct LiveConnection(Arc<AtomicUsize>);

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Listener {
    /// Binds `bind` (port 0: any free port) and starts the thread `listener`, and the thread
    /// `listener utp` for the streams on `utp`. Each connection serves the torrent of
    /// `swarms` its handshake names (one torrent: a registry of one). At most `max_live` accepted connections exist
    /// at once, both kinds counted; more are closed at once, with a log line. Under
    /// `--transport utp`, `tcp` is false: TCP connections are closed as soon as accepted.
    pub fn spawn(
        bind: SocketAddr,
        swarms: Swarms,
        max_live: usize,
        tcp: bool,
        utp: Option<Receiver<UtpStream>>,
    ) -> std::io::Result<Listener> {
        let socket = bind_tcp(bind)?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let live = Arc::new(AtomicUsize::new(0));
        let utp = match utp {
            Some(streams) => {
                let (stop_utp, stopped) = crossbeam_channel::bounded(0);
                let (swarms, live) = (swarms.clone(), Arc::clone(&live));
                let thread = std::thread::Builder::new()
                    .name("listener utp".into())
                    .spawn(move || accept_utp(&streams, &stopped, &swarms, &live, max_live))?;
                Some((stop_utp, thread))
            }
            None => None,
        };
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || accept_loop(&socket, &swarms, &flag, &live, max_live, tcp))?;
        log::info!("listening for peers on {addr}");
        Ok(Listener {
            addr,
            stop,
            thread,
            utp,
        })
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
        if let Some((stop, thread)) = self.utp {
            drop(stop);
            let _ = thread.join();
        }
    }
}

/// Binds the TCP listening socket. `[::]` (the default `--bind`) is every address of both
/// families: `IPV6_V6ONLY` is turned off explicitly, rather than left to the system's default
/// (`net.ipv6.bindv6only` on Linux; on by default on other systems), so IPv4 peers reach it
/// too. Where the system has no IPv6, `[::]` falls back to `0.0.0.0`, with a warning. Any
/// other address is that address alone: `--bind 0.0.0.0` is IPv4 only, `--bind ::1` the IPv6
/// loopback only.
pub fn bind_tcp(bind: SocketAddr) -> io::Result<TcpListener> {
    if bind.ip() != IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
        return TcpListener::bind(bind);
    }
    match bind_dual_stack(bind.port()) {
        Ok(listener) => Ok(listener),
        // The port is taken (by an IPv4 listener, perhaps): the caller picks another port.
        Err(e) if e.kind() == ErrorKind::AddrInUse => Err(e),
        Err(e) => {
            log::warn!("cannot listen on IPv6 ({e}): listening on IPv4 only");
            TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, bind.port())))
        }
    }
}

/// `[::]:port` with `IPV6_V6ONLY` off.
fn bind_dual_stack(port: u16) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    // As `TcpListener::bind` does: a port whose last connections linger in TIME_WAIT (a
    // session just stopped) can be listened on again at once.
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

fn accept_loop(
    socket: &TcpListener,
    swarms: &Swarms,
    stop: &AtomicBool,
    live: &Arc<AtomicUsize>,
    max_live: usize,
    tcp: bool,
) {
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
        // An IPv4 peer on the dual-stack socket arrives as `::ffff:a.b.c.d`: named as IPv4.
        let Ok(addr) = stream.peer_addr().map(canonical_addr) else {
            continue;
        };
        if !tcp {
            log::debug!("{addr}: a TCP connection refused (--transport utp)");
            continue; // dropping the stream closes it
        }
        let Some(guard) = admit(live, max_live, addr) else {
            continue; // dropping the stream closes it
        };
        // Small messages (a request, a have) go out at once rather than wait to be batched.
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("{addr}: {e}"); // only a latency cost: the connection still works
        }
        spawn_incoming(Box::new(stream), addr, swarms.clone(), guard);
    }
}

/// Counts a new incoming connection, or refuses it when `max_live` are alive.
fn admit(live: &Arc<AtomicUsize>, max_live: usize, addr: SocketAddr) -> Option<LiveConnection> {
    if live.load(Ordering::Relaxed) >= max_live {
        log::info!("{addr}: refused, already {max_live} incoming connections");
        return None;
    }
    live.fetch_add(1, Ordering::Relaxed);
    log::debug!("{addr}: accepted");
    Some(LiveConnection(Arc::clone(live)))
}

/// Streams the `utp` thread accepted, until the listener stops (its sender dropped) or the
/// `utp` thread ends.
fn accept_utp(
    streams: &Receiver<UtpStream>,
    stopped: &Receiver<()>,
    swarms: &Swarms,
    live: &Arc<AtomicUsize>,
    max_live: usize,
) {
    loop {
        select! {
            recv(streams) -> stream => {
                let Ok(stream) = stream else { return };
                let addr = stream.peer_addr();
                if let Some(guard) = admit(live, max_live, addr) {
                    spawn_incoming(Box::new(stream), addr, swarms.clone(), guard);
                }
            }
            recv(stopped) -> _ => return,
        }
    }
}
