//! The `utp` thread: the UDP socket on the listen port, shared by uTP (BEP 29, "uTorrent
//! transport protocol") and the DHT (BEP 5) — walkthrough §17.
//!
//! ```text
//!                 UDP socket (the listen port) ──recv──► the `utp` thread
//!   first byte `d` (KRPC) ──────────────────────────────────► channel ──► the `dht` thread
//!   a uTP packet ──► table[(address, connection id)] ──► Slot: handle_packet, acks out
//!   an ST_SYN for no connection ──► a new Slot (at most MAX_HALF_OPEN waiting)
//!        once the dialler's first data arrives ──► channel ──► the listener ──► a peer thread
//!   every connection's timer ──► tick: resends, probes, silent peers time out
//!   UtpDialer::connect (any thread) ──► a new Slot, its SYN sent ──► waits until connected
//! ```
//!
//! The thread reads datagrams in batches (one blocking read, then whatever else is already
//! queued), hands each to its connection, and only then sends the acks and wakes the
//! streams: a burst of data packets costs one ack, not one each. Between datagrams it looks
//! at timers when the earliest one is due, and at least every [`TIMER_GRAIN`]: a stream that
//! starts a timer of its own (a write, a SYN, a FIN) cannot wake a thread that sleeps in
//! `recv_from`, and a retransmission timeout is never shorter than 500 ms, so being up to
//! 50 ms late costs little.

use super::connection::{Connection, Event};
use super::packet::{Packet, PacketType};
use super::stream::{Slot, UtpStream};
use crate::encoding::canonical_addr;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Connections one socket holds at once, every state counted.
pub const MAX_CONNECTIONS: usize = 1_024;

/// Connections a stranger's SYN opened that have not yet sent their first data: a flood of
/// SYNs from many ports fills this and no more.
pub const MAX_HALF_OPEN: usize = 64;

/// A half-open connection that says nothing more for this long is forgotten.
pub const HALF_OPEN_LIMIT: Duration = Duration::from_secs(5);

/// The longest the thread sleeps without looking at the timers.
pub const TIMER_GRAIN: Duration = Duration::from_millis(50);

/// A finished connection is kept this long to answer a repeated FIN (our ack may be lost).
const LINGER: Duration = Duration::from_secs(5);

/// Datagrams read per batch before the acks go out.
const BATCH: usize = 64;

/// The longest datagram read: uTP packets are under 1,500 bytes, KRPC a few hundred. Longer
/// ones are cut and fail to decode.
const DATAGRAM: usize = 4_096;

/// KRPC datagrams and accepted streams waiting for their taker; more are dropped.
const KRPC_QUEUE: usize = 1_024;
const ACCEPT_QUEUE: usize = 64;

#[derive(Debug, Error)]
pub enum UtpError {
    #[error("cannot open the UDP socket at {0}: {1}")]
    Bind(SocketAddr, io::Error),
    #[error("cannot start the utp thread: {0}")]
    Thread(io::Error),
}

/// What the socket does besides dialling.
#[derive(Debug, Clone, Copy, Default)]
pub struct UtpConfig {
    /// Accept connections (`--transport` allows uTP): SYNs open streams for the listener.
    pub accept: bool,
    /// Hand KRPC datagrams to a DHT node.
    pub krpc: bool,
}

/// Counts of what arrived, for logs and tests.
#[derive(Debug, Default)]
pub struct SocketStats {
    pub datagrams: AtomicU64,
    /// Not uTP, not KRPC, or a uTP packet that does not decode.
    pub malformed: AtomicU64,
    /// uTP packets for no connection we have (not a SYN).
    pub unknown: AtomicU64,
    /// SYNs turned away: not accepting, or too many connections.
    pub refused: AtomicU64,
}

/// What the thread and every dialler share.
struct Router {
    socket: Arc<UdpSocket>,
    table: Mutex<Table>,
    stats: SocketStats,
}

#[derive(Default)]
struct Table {
    /// Keyed by the peer's address and the connection id it sends to us (our `recv_id`).
    entries: HashMap<(SocketAddr, u16), Entry>,
    half_open: usize,
}

struct Entry {
    slot: Arc<Slot>,
    /// Opened by a stranger's SYN and not yet handed to the listener.
    half_open: bool,
    opened: Instant,
    /// When the connection reached a final state.
    ended: Option<Instant>,
}

impl Router {
    fn table(&self) -> MutexGuard<'_, Table> {
        // The table is a map of handles; a panic elsewhere leaves it whole.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running `utp` thread and its socket; dropping it stops the thread.
pub struct UtpSocket {
    router: Arc<Router>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Where the socket really is (port 0 picks one).
    pub addr: SocketAddr,
}

/// What the socket hands on: accepted streams and KRPC datagrams (each when configured).
pub struct UtpChannels {
    pub incoming: Option<Receiver<UtpStream>>,
    pub krpc: Option<Receiver<(SocketAddr, Vec<u8>)>>,
}

impl UtpSocket {
    /// Binds `addr` and starts the thread `utp`. `[::]` is both families on one socket, or
    /// `0.0.0.0` where the system has no IPv6.
    pub fn bind(addr: SocketAddr, config: UtpConfig) -> Result<(UtpSocket, UtpChannels), UtpError> {
        let socket = bind_udp(addr).map_err(|e| UtpError::Bind(addr, e))?;
        let local = socket.local_addr().map_err(|e| UtpError::Bind(addr, e))?;
        let router = Arc::new(Router {
            socket: Arc::new(socket),
            table: Mutex::new(Table::default()),
            stats: SocketStats::default(),
        });
        let (accepted, incoming) = bounded(ACCEPT_QUEUE);
        let (krpc_tx, krpc_rx) = bounded(KRPC_QUEUE);
        let outputs = Outputs {
            accepted: config.accept.then_some(accepted),
            krpc: config.krpc.then_some(krpc_tx),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (router, stop) = (Arc::clone(&router), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("utp".into())
                .spawn(move || run(&router, &outputs, &stop))
                .map_err(UtpError::Thread)?
        };
        log::info!("uTP and DHT datagrams on UDP {local}");
        let channels = UtpChannels {
            incoming: config.accept.then_some(incoming),
            krpc: config.krpc.then_some(krpc_rx),
        };
        let socket = UtpSocket {
            router,
            stop,
            thread: Some(thread),
            addr: local,
        };
        Ok((socket, channels))
    }

    /// A handle that dials from any thread.
    pub fn dialer(&self) -> UtpDialer {
        UtpDialer {
            router: Arc::clone(&self.router),
        }
    }

    /// The socket itself, to send through (the DHT node sends its KRPC with it).
    pub fn sender(&self) -> Arc<UdpSocket> {
        Arc::clone(&self.router.socket)
    }

    pub fn stats(&self) -> &SocketStats {
        &self.router.stats
    }

    /// Connections in the table, finished ones still lingering included.
    pub fn connections(&self) -> usize {
        self.router.table().entries.len()
    }

    /// Ends the thread; every connection still open is reset (its streams get an error).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for UtpSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // It notices within TIMER_GRAIN.
        if self.thread.take().is_some_and(|t| t.join().is_err()) {
            log::error!("the utp thread panicked (a bug in peerwire)");
        }
    }
}

/// The receive and send buffers asked of the system for the shared socket (Linux caps them
/// at `net.core.rmem_max` / `wmem_max`, 4 MiB on a stock system, 208 KiB by default).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket with big buffers. A uTP sender puts a whole congestion window on the wire
/// at once; with the default 208 KiB of receive buffer (about 90 full datagrams, counting the
/// kernel's overhead) a burst overflows it while the `utp` thread is busy, every overflow is
/// a loss, and every loss halves the window: on loopback, 256 MiB cost 650 fast retransmits
/// and ran ten times slower than TCP. libtorrent enlarges its buffers for the same reason.
///
/// `[::]` is both families, as for the TCP listener (`peer/listener.rs`): `IPV6_V6ONLY` off,
/// so one socket carries uTP and the DHT for IPv4 peers and uTP for IPv6 ones. Where the
/// system has no IPv6, `[::]` falls back to `0.0.0.0`, with a warning.
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    if addr.ip() != IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
        return bind_udp_exactly(addr);
    }
    match bind_udp_exactly(addr) {
        Ok(socket) => Ok(socket),
        // The port is taken: the caller may pick another, IPv6 is not to blame.
        Err(e) if e.kind() == ErrorKind::AddrInUse => Err(e),
        Err(e) => {
            log::warn!("cannot bind UDP {addr} ({e}): uTP and the DHT on IPv4 only");
            bind_udp_exactly(SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port())))
        }
    }
}

/// [`bind_udp`] on `addr` itself, dual-stack when it is `[::]`.
fn bind_udp_exactly(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
        socket.set_only_v6(false)?;
    }
    // A smaller buffer than asked is no error: the system's cap is the user's choice.
    if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER) {
        log::debug!("utp: cannot enlarge the receive buffer: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER) {
        log::debug!("utp: cannot enlarge the send buffer: {e}");
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Dials uTP connections over the shared socket.
#[derive(Clone)]
pub struct UtpDialer {
    router: Arc<Router>,
}

impl UtpDialer {
    /// Opens a uTP connection to `to`: an ST_SYN, then waits up to `timeout` for the answer
    /// (the `utp` thread resends the SYN on its timer).
    pub fn connect(&self, to: SocketAddr, timeout: Duration) -> io::Result<UtpStream> {
        let now = Instant::now();
        let slot = {
            let mut table = self.router.table();
            if table.entries.len() >= MAX_CONNECTIONS {
                return Err(io::Error::other(format!(
                    "uTP: already {MAX_CONNECTIONS} connections on this socket"
                )));
            }
            // A random id keeps a stale packet of an earlier connection to the same peer
            // from landing in this one; at most 1,024 of 65,536 are taken, so this ends.
            let recv_id = loop {
                let id = fastrand::u16(..);
                if !table.entries.contains_key(&(to, id)) {
                    break id;
                }
            };
            let conn = Connection::connect(recv_id, now);
            let slot = Arc::new(Slot::new(to, Arc::clone(&self.router.socket), conn));
            table.entries.insert(
                (to, recv_id),
                Entry {
                    slot: Arc::clone(&slot),
                    half_open: false,
                    opened: now,
                    ended: None,
                },
            );
            slot
        };
        // The stream exists before the answer: dropped on failure, it closes the slot.
        let stream = UtpStream::new(Arc::clone(&slot));
        {
            let mut inner = slot.lock();
            slot.flush(&mut inner, now); // the SYN
        }
        slot.wait_connected(now + timeout)?;
        Ok(stream)
    }
}

/// Where the thread hands things on.
struct Outputs {
    accepted: Option<Sender<UtpStream>>,
    krpc: Option<Sender<(SocketAddr, Vec<u8>)>>,
}

fn run(router: &Router, outputs: &Outputs, stop: &AtomicBool) {
    let socket = &router.socket;
    let mut buffer = vec![0u8; DATAGRAM];
    let mut next_scan = Instant::now();
    // Connections that got packets in this batch: their acks go out once, after it.
    let mut touched: Vec<Arc<Slot>> = Vec::new();
    let mut timeout = None;
    while !stop.load(Ordering::Relaxed) {
        // Whole milliseconds, and the socket is told only when the value changes: under
        // load this loop turns a hundred thousand times a second, and each system call
        // saved is one a datagram does not wait behind.
        let left = next_scan.saturating_duration_since(Instant::now());
        let wait = Duration::from_millis(left.as_millis() as u64)
            .clamp(Duration::from_millis(1), TIMER_GRAIN);
        if timeout != Some(wait) {
            if socket.set_read_timeout(Some(wait)).is_err() {
                break; // cannot happen for a non-zero duration
            }
            timeout = Some(wait);
        }
        let mut received = 0;
        while received < BATCH {
            match socket.recv_from(&mut buffer) {
                Ok((n, from)) => {
                    received += 1;
                    // On the dual-stack socket an IPv4 sender reads `::ffff:a.b.c.d`: one
                    // peer, one name, for the connection table and the DHT alike.
                    let from = canonical_addr(from);
                    dispatch(router, outputs, &buffer[..n], from, &mut touched);
                    // Counted once handled, so that a test that sees the count sees the effect.
                    router.stats.datagrams.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break;
                }
                // An ICMP error for an earlier send, on some systems: nothing to do here;
                // the connection it concerns times out like any other.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    log::debug!("utp: receive failed: {e}");
                    break;
                }
            }
            // After the first datagram, take only what is already queued: the acks of this
            // batch must not wait for the next packet to arrive.
            if received == 1 && socket.set_nonblocking(true).is_err() {
                break;
            }
        }
        if received > 0 && socket.set_nonblocking(false).is_err() {
            break;
        }
        let now = Instant::now();
        for slot in touched.drain(..) {
            if let Some(deadline) = settle(router, outputs, &slot, now) {
                next_scan = next_scan.min(deadline);
            }
        }
        if now >= next_scan {
            next_scan = scan(router, now);
        }
    }
    // Stopping: every connection still open is reset, and its streams wake to an error.
    for entry in router.table().entries.values() {
        let mut inner = entry.slot.lock();
        inner.conn.abort();
        entry.slot.flush(&mut inner, Instant::now());
        drop(inner);
        entry.slot.notify();
    }
}

/// One datagram: to the DHT, to its connection, or a new connection.
fn dispatch(
    router: &Router,
    outputs: &Outputs,
    bytes: &[u8],
    from: SocketAddr,
    touched: &mut Vec<Arc<Slot>>,
) {
    // KRPC is bencoded: a dictionary, so always `d`. [W17.8]
    if bytes.first() == Some(&b'd') {
        if let Some(krpc) = &outputs.krpc
            && let Err(TrySendError::Full(_)) = krpc.try_send((from, bytes.to_vec()))
        {
            log::debug!("utp: the DHT is behind; a datagram from {from} dropped");
        }
        return;
    }
    let packet = match super::is_utp_datagram(bytes).then(|| Packet::decode(bytes)) {
        Some(Ok(packet)) => packet,
        Some(Err(e)) => {
            router.stats.malformed.fetch_add(1, Ordering::Relaxed);
            log::trace!("utp: {from}: {e}");
            return;
        }
        None => {
            router.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let id = packet.connection_id;
    let now = Instant::now();
    let found = {
        let table = router.table();
        // [W17.9] Routed by who sent it and the id it names: ours for receiving.
        let own = table.entries.get(&(from, id));
        // A repeated SYN names the id the acceptor *sends* on; its slot is under id + 1.
        let repeated_syn = || {
            let entry = table.entries.get(&(from, id.wrapping_add(1)))?;
            let accepted_it = entry.slot.lock().conn.send_id() == id;
            accepted_it.then_some(entry)
        };
        match (own, packet.kind) {
            (Some(entry), _) => Some(Arc::clone(&entry.slot)),
            (None, PacketType::Syn) => repeated_syn().map(|e| Arc::clone(&e.slot)),
            (None, _) => None,
        }
    };
    let slot = match (found, packet.kind) {
        (Some(slot), _) => {
            slot.lock().conn.handle_packet(packet, now);
            slot
        }
        (None, PacketType::Syn) => match accept(router, outputs, &packet, from, now) {
            Some(slot) => slot,
            None => return,
        },
        (None, _) => {
            // Not ours: a connection we forgot, or a stranger guessing ids. Dropped without
            // an answer (an answer would let anyone make us send to any address).
            router.stats.unknown.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    if !touched.iter().any(|t| Arc::ptr_eq(t, &slot)) {
        touched.push(slot);
    }
}

/// A SYN for no connection: a new half-open connection, if we accept and have room.
fn accept(
    router: &Router,
    outputs: &Outputs,
    syn: &Packet,
    from: SocketAddr,
    now: Instant,
) -> Option<Arc<Slot>> {
    let mut table = router.table();
    let full = table.entries.len() >= MAX_CONNECTIONS || table.half_open >= MAX_HALF_OPEN;
    let key = (from, syn.connection_id.wrapping_add(1));
    if outputs.accepted.is_none() || full || table.entries.contains_key(&key) {
        router.stats.refused.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    // Our first sequence number is random, as the initiator's connection id is.
    let conn = Connection::accept(syn, fastrand::u16(..), now)?;
    let slot = Arc::new(Slot::new(from, Arc::clone(&router.socket), conn));
    table.half_open += 1;
    table.entries.insert(
        key,
        Entry {
            slot: Arc::clone(&slot),
            half_open: true,
            opened: now,
            ended: None,
        },
    );
    log::debug!("utp: {from} dialled us (connection id {})", key.1);
    Some(slot)
}

/// After a batch: sends what a connection owes, hands a newly open one to the listener,
/// wakes its streams. Returns the connection's next deadline.
fn settle(router: &Router, outputs: &Outputs, slot: &Arc<Slot>, now: Instant) -> Option<Instant> {
    let mut inner = slot.lock();
    slot.flush(&mut inner, now);
    let events = inner.conn.take_events();
    let deadline = inner.conn.next_deadline();
    let key = (slot.peer, inner.conn.recv_id());
    drop(inner);
    slot.notify();
    if events.contains(&Event::Connected) {
        hand_over(router, outputs, slot, key);
    }
    deadline
}

/// A connection a stranger opened has sent its first data: it is real, and goes to the
/// listener like an accepted TCP connection. Until then it cost us one small slot, no thread.
fn hand_over(router: &Router, outputs: &Outputs, slot: &Arc<Slot>, key: (SocketAddr, u16)) {
    {
        let mut table = router.table();
        let Some(entry) = table.entries.get_mut(&key) else {
            return;
        };
        if !entry.half_open {
            return; // one we dialled
        }
        entry.half_open = false;
        table.half_open -= 1;
    }
    let Some(accepted) = &outputs.accepted else {
        return;
    };
    // [W17.12] Dropping the stream (the listener is gone or far behind) closes it.
    if let Err(e) = accepted.try_send(UtpStream::new(Arc::clone(slot))) {
        log::debug!("utp: {}: not accepted ({e})", slot.peer);
    }
}

/// The timers of every connection: ticks the due ones, forgets the finished ones. Returns
/// when to look again.
fn scan(router: &Router, now: Instant) -> Instant {
    let mut next = now + TIMER_GRAIN;
    let mut table = router.table();
    let mut forget = Vec::new();
    let mut half_open_dropped = 0;
    for (key, entry) in table.entries.iter_mut() {
        let mut inner = entry.slot.lock();
        if inner.conn.next_deadline().is_some_and(|d| d <= now) {
            inner.conn.tick(now);
        }
        if entry.half_open && now >= entry.opened + HALF_OPEN_LIMIT {
            // A SYN and nothing after it: a flood, or a peer that gave up.
            inner.conn.abort();
            half_open_dropped += 1;
            forget.push(*key);
        }
        entry.slot.flush(&mut inner, now);
        let events = inner.conn.take_events();
        if let Some(deadline) = inner.conn.next_deadline() {
            next = next.min(deadline);
        }
        if inner.conn.state().is_terminal() && entry.ended.is_none() {
            entry.ended = Some(now);
        }
        drop(inner);
        if !events.is_empty() {
            entry.slot.notify();
        }
        let done = entry.ended.is_some_and(|t| now >= t + LINGER);
        if done && entry.slot.abandoned() && !entry.half_open {
            forget.push(*key);
        }
    }
    table.half_open -= half_open_dropped;
    for key in forget {
        if let Some(entry) = table.entries.remove(&key) {
            let stats = entry.slot.lock().conn.stats();
            log::debug!("utp {}: forgotten; {stats:?}", key.0);
        }
    }
    next
}

#[cfg(test)]
mod tests;
