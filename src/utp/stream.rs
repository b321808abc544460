//! `UtpStream`: one uTP connection (BEP 29, "uTorrent transport protocol") as a blocking
//! byte stream, used by a peer thread exactly as it uses a `TcpStream` — walkthrough §17.
//!
//! ```text
//!   peer thread ── read / write ──► UtpStream ──► Slot { Mutex<Connection>, Condvar }
//!                  (blocks on the Condvar)              ▲ packets in, timers: the `utp` thread
//!                                                       └─ packets out: whoever holds the lock
//! ```
//!
//! The connection's state machine (`connection.rs`) sits in a [`Slot`] shared by the `utp`
//! thread (`socket.rs`) and every handle on the stream. Whoever changes the connection sends
//! what it produced at once, under the lock: a write from the peer thread sends its own data
//! packets, a packet handled by the `utp` thread sends the acks and the data they released.
//! Whoever waits (for bytes to read, for room to write, for the handshake) sleeps on the
//! slot's condition variable, which the `utp` thread signals after each batch of packets.

use super::connection::{Connection, State, Stats};
use crate::encoding::addr_for_socket;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One connection, shared by the `utp` thread and the stream's handles.
pub(super) struct Slot {
    pub(super) peer: SocketAddr,
    /// `peer` as the socket must be told it: its mapped form for an IPv4 peer on the
    /// dual-stack socket.
    send_to: SocketAddr,
    socket: Arc<UdpSocket>,
    inner: Mutex<Inner>,
    /// Signalled whenever the connection may have changed: bytes arrived, room opened, the
    /// state moved on.
    changed: Condvar,
    /// Live `UtpStream` handles; the last one dropped closes the connection.
    handles: AtomicUsize,
}

pub(super) struct Inner {
    pub(super) conn: Connection,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl Slot {
    pub(super) fn new(peer: SocketAddr, socket: Arc<UdpSocket>, conn: Connection) -> Slot {
        let socket_is_v6 = socket.local_addr().is_ok_and(|local| local.is_ipv6());
        Slot {
            peer,
            send_to: addr_for_socket(peer, socket_is_v6),
            socket,
            inner: Mutex::new(Inner {
                conn,
                read_timeout: None,
                write_timeout: None,
            }),
            changed: Condvar::new(),
            handles: AtomicUsize::new(0),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A thread that panicked while holding the lock left a connection in an unknown
        // state; the data in it is still only bytes, and every user checks the state anyway.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends whatever the connection has queued. Called with the lock held, right after the
    /// change that produced the packets, so they leave in order. [W17.10]
    pub(super) fn flush(&self, inner: &mut Inner, now: Instant) {
        for packet in inner.conn.take_outgoing(now) {
            // A lost datagram is what uTP is built for: the timer resends it. A full socket
            // buffer (rare on UDP) is the same thing.
            if let Err(e) = self.socket.send_to(&packet.encode(), self.send_to) {
                log::trace!("utp {}: send failed: {e}", self.peer);
            }
        }
    }

    pub(super) fn notify(&self) {
        self.changed.notify_all();
    }

    /// No handle is left: nobody will read or write again.
    pub(super) fn abandoned(&self) -> bool {
        self.handles.load(Ordering::Acquire) == 0
    }

    /// Sleeps until the `utp` thread signals a change or `deadline` passes.
    fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Inner>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, Inner> {
        match deadline {
            None => self.changed.wait(guard).unwrap_or_else(|p| p.into_inner()),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.changed
                    .wait_timeout(guard, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        }
    }

    /// Waits until the handshake is over: `Ok` once connected, the reason otherwise.
    pub(super) fn wait_connected(&self, deadline: Instant) -> io::Result<()> {
        let mut inner = self.lock();
        loop {
            match inner.conn.state() {
                State::SynSent | State::SynRecv => {}
                State::Connected | State::FinSent => return Ok(()),
                state => return Err(broken(state, self.peer)),
            }
            if Instant::now() >= deadline {
                // Nobody answered our SYN: give it up (an ST_RESET, in case the answer is
                // only late) so that the slot can be forgotten.
                inner.conn.abort();
                self.flush(&mut inner, Instant::now());
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("uTP: {} did not answer our SYN", self.peer),
                ));
            }
            inner = self.wait(inner, Some(deadline));
        }
    }
}

/// The error for a connection that can no longer carry bytes.
fn broken(state: State, peer: SocketAddr) -> io::Error {
    let (kind, what) = match state {
        State::Reset => (io::ErrorKind::ConnectionReset, "reset by the peer"),
        State::TimedOut => (io::ErrorKind::ConnectionAborted, "the peer went silent"),
        _ => (io::ErrorKind::BrokenPipe, "closed"),
    };
    io::Error::new(kind, format!("uTP connection to {peer}: {what}"))
}

/// A uTP connection as a blocking `Read + Write` stream. Clones share the connection (as
/// clones of a `TcpStream` share the socket); the last one dropped closes it gracefully.
pub struct UtpStream {
    slot: Arc<Slot>,
}

impl UtpStream {
    pub(super) fn new(slot: Arc<Slot>) -> UtpStream {
        slot.handles.fetch_add(1, Ordering::AcqRel);
        UtpStream { slot }
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.slot.peer
    }

    /// A second handle on the same connection.
    pub fn try_clone(&self) -> UtpStream {
        UtpStream::new(Arc::clone(&self.slot))
    }

    /// Shared by every handle, as a socket option is.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        self.slot.lock().read_timeout = timeout;
    }

    pub fn set_write_timeout(&self, timeout: Option<Duration>) {
        self.slot.lock().write_timeout = timeout;
    }

    /// Counts for logs and tests: packets sent, resent, duplicates.
    pub fn stats(&self) -> Stats {
        self.slot.lock().conn.stats()
    }

    /// Says we will write nothing more: an ST_FIN follows the bytes already written.
    pub fn shutdown_write(&self) {
        let mut inner = self.slot.lock();
        let now = Instant::now();
        inner.conn.close(now);
        self.slot.flush(&mut inner, now);
    }

    /// Waits up to `wait` (`None`: not at all) for a byte to read; `UnexpectedEof` once the
    /// peer finished and everything was read.
    pub fn wait_readable(&self, wait: Option<Duration>) -> io::Result<bool> {
        // A wait too long to add to the clock is a wait for ever.
        let deadline = Instant::now().checked_add(wait.unwrap_or_default());
        let mut inner = self.slot.lock();
        loop {
            if inner.conn.readable() > 0 {
                return Ok(true);
            }
            if inner.conn.is_eof() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if inner.conn.state().is_terminal() {
                return Err(broken(inner.conn.state(), self.slot.peer));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            inner = self.slot.wait(inner, deadline);
        }
    }

    /// The first byte waiting, left in place; `None` when the peer closed without a byte.
    /// Waits up to the read timeout.
    pub fn peek_byte(&self) -> io::Result<Option<u8>> {
        let timeout = self.slot.lock().read_timeout;
        match self.wait_readable(Some(timeout.unwrap_or(Duration::MAX))) {
            Ok(true) => Ok(self.slot.lock().conn.peek()),
            Ok(false) => Err(io::ErrorKind::TimedOut.into()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Read for UtpStream {
    /// Blocks until at least one byte is there (or the read timeout passes: `WouldBlock`);
    /// 0 only at the end of the peer's stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut inner = self.slot.lock();
        let deadline = inner
            .read_timeout
            .and_then(|t| Instant::now().checked_add(t));
        loop {
            let n = inner.conn.read(buf);
            if n > 0 {
                // Reading may reopen a window the peer saw shut: that ack goes now. [W17.11]
                self.slot.flush(&mut inner, Instant::now());
                return Ok(n);
            }
            if inner.conn.is_eof() {
                return Ok(0);
            }
            if inner.conn.state().is_terminal() {
                return Err(broken(inner.conn.state(), self.slot.peer));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            inner = self.slot.wait(inner, deadline);
        }
    }
}

impl Write for UtpStream {
    /// Blocks until the send buffer takes at least one byte (or the write timeout passes).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut inner = self.slot.lock();
        let deadline = inner
            .write_timeout
            .and_then(|t| Instant::now().checked_add(t));
        loop {
            let state = inner.conn.state();
            if state.is_terminal() || state == State::FinSent {
                return Err(broken(state, self.slot.peer));
            }
            let now = Instant::now();
            let n = inner.conn.write(buf, now);
            if n > 0 {
                // Our data packets leave from this thread, at once: no hand-over to the
                // `utp` thread on the path of every block we upload.
                self.slot.flush(&mut inner, now);
                return Ok(n);
            }
            // The send buffer is full: acks from the peer (handled by the `utp` thread)
            // make room.
            if deadline.is_some_and(|d| now >= d) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            inner = self.slot.wait(inner, deadline);
        }
    }

    /// Every write already went to the connection; what is unsent waits for the windows,
    /// as bytes in a TCP socket's buffer do.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for UtpStream {
    fn drop(&mut self) {
        // The last handle: close as a TCP socket does on `close`, sending what is written
        // first. The `utp` thread finishes the exchange and forgets the connection.
        if self.slot.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shutdown_write();
        }
    }
}

impl std::fmt::Debug for UtpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UtpStream({})", self.slot.peer)
    }
}
