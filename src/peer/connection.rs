//! One connection to a peer: connect or accept, handshake, then framed messages —
//! walkthrough §4, §7, §10, §16.
//!
//! ```text
//!   open:   connect (timeout) ──► send our handshake ──► read theirs ─┐
//!   accept: read their handshake ──► right torrent? ──► send ours ────┤ check info_hash,
//!                                                                     │ not ourselves
//!           send(Message) ──► outbox ──► pump() ──► socket           ◄┘
//!           receive() -> Message ◄── 64 KiB read buffer ◄── socket      (every message traced)
//! ```
//!
//! The bytes travel over a [`PeerStream`] (`stream.rs`): a TCP socket today, and any other
//! transport that implements the trait tomorrow; nothing above this file knows which.
//!
//! Reads are blocking with a short timeout, the *tick*: the peer thread waits for a message to
//! begin for at most a tick, so it wakes up regularly (to send keep-alives, notice a silent
//! peer, and read its commands) even when the peer is quiet; a tick with no message is
//! reported as `Ok(None)`, not as an error. When the thread has bytes to send it does not wait
//! at all: it only looks whether a message has begun (`PeerStream::wait_readable`).
//!
//! Writes go through an *outbox* that [`Connection::pump`] empties with a bounded wait. A
//! blocking `write_all` of a big block could wait forever on a peer that never reads, and two
//! peers uploading to each other could each wait for the other to read: a deadlock. With the
//! outbox a thread that cannot write goes back to reading, and a peer that reads nothing for
//! the peer timeout (`--peer-timeout`) is dropped.

use super::dial::{Dialer, Route};
use super::encrypted::{Encryption, Replayed, trace_note};
use super::stream::PeerStream;
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::storage::StorageError;
use crate::trace::Trace;
use crate::wire::{Handshake, Message, WireError};
use std::io::{BufReader, ErrorKind, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The trace's line for a connection over uTP: every message traced after it crossed UDP.
pub const UTP_NOTE: &str = "stream over uTP (BEP 29)";

/// How long to wait for a TCP connection and for the peer's handshake (libtorrent uses 10 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Once a message has started to arrive, how long the rest may take (libtorrent: piece 20 s).
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum PeerError {
    /// The connection, or a setting of its socket, failed before any BitTorrent byte.
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// Bytes that break the framing or a message's layout (`wire`), or the socket failed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// BEP 3: "If both sides don't send the same value, they sever the connection."
    #[error("the peer is on another torrent (info hash {0})")]
    WrongInfoHash(InfoHash),
    /// Our own peer id came back: the tracker or a peer listed our own address.
    #[error("connected to ourselves")]
    Ourselves,
    /// A message named a piece past the end: the peer lies about the torrent.
    #[error("{what} {index}: no such piece (the torrent has {pieces})")]
    NoSuchPiece {
        what: &'static str,
        index: u32,
        pieces: usize,
    },
    /// More blocks we never asked for than late copies explain (`state.rs`).
    #[error("{0} blocks nobody asked for")]
    Unsolicited(u32),
    /// More requests we could not serve than mistakes explain (`upload.rs`), the last one
    /// as evidence.
    #[error("{count} bad requests (last: {last})")]
    BadRequests { count: u32, last: String },
    /// Requests kept coming long after our `choke`.
    #[error("{0} requests while choked")]
    RequestsWhileChoked(usize),
    /// More requests queued than we said we take (`reqq`), from a peer we cannot refuse
    /// (no fast extension).
    #[error("more than {0} requests queued")]
    TooManyRequests(usize),
    /// Not the peer's fault: the scheduler sent no first command in time.
    #[error("the scheduler did not answer")]
    SchedulerSilent,
    #[error("the peer does not speak the extension protocol (BEP 10)")]
    NoExtensions,
    #[error("no extended handshake among the peer's first {0} messages")]
    NoExtendedHandshake(usize),
    #[error("bad extended handshake: {0}")]
    BadExtendedHandshake(crate::wire::extension::ExtensionError),
    /// Between two messages: the normal end of a connection.
    #[error("the peer closed the connection")]
    Closed,
    #[error("the peer closed the connection before its handshake")]
    ClosedBeforeHandshake,
    #[error(
        "not a plain BitTorrent handshake (first byte {0}, not 19): it looks like an encrypted \
         (MSE/PE) handshake, refused under --encryption off"
    )]
    Encrypted(u8),
    #[error("a plain BitTorrent handshake, refused under --encryption require")]
    PlainRefused,
    #[error("encrypted handshake (MSE/PE): {0}")]
    Mse(Box<crate::mse::MseError>),
    #[error("the peer sent nothing for {0:?}")]
    Silent(Duration),
    #[error("no block for {0:?} while our requests were out (it snubs us)")]
    Snubbed(Duration),
    #[error("neither side was interested for {0:?}")]
    Useless(Duration),
    #[error("the peer read nothing we sent for {0:?}")]
    NotReading(Duration),
    #[error("banned: {0}")]
    Banned(&'static str),
    /// Not the peer's fault: a block it sent could not be written, or one it asked for could
    /// not be read (the scheduler then ends the download).
    #[error("disk: {}: {}", .0, .0.source)]
    Disk(StorageError),
}

impl PeerError {
    /// Failed before the peer said anything of BitTorrent: nothing reached, or it hung up at
    /// once. Worth another transport; any other error is the peer's real answer.
    pub fn before_handshake(&self) -> bool {
        matches!(
            self,
            PeerError::Connect(_) | PeerError::ClosedBeforeHandshake | PeerError::Mse(_)
        )
    }
}

/// An open connection after a successful handshake.
pub struct Connection {
    pub addr: SocketAddr,
    /// What the peer said in its handshake.
    pub remote: Handshake,
    /// Reads go through a buffer: a burst of small messages costs few system calls.
    reader: BufReader<Box<dyn PeerStream>>,
    /// A second handle on the same stream, for writing (see `split`).
    writer: Box<dyn PeerStream>,
    /// Framed messages not yet taken by the socket; `outbox[sent..]` is still to send.
    outbox: Vec<u8>,
    sent: usize,
    /// When the socket last took some of the outbox.
    last_write: Instant,
    /// Drop the peer when it has taken none of our bytes for this long.
    stall_limit: Duration,
    trace: Trace,
    /// How long `receive` waits for a new message before returning `Ok(None)`.
    tick: Duration,
    /// `--debug-single-peer`: no deadline for the rest of a message, so pausing in a debugger
    /// mid-message does not end the connection.
    patient: bool,
}

impl Connection {
    /// The transport and what hides it, in words: `TCP, plain`, `uTP, RC4 (MSE/PE)`.
    pub fn link(&self) -> String {
        let stream = self.reader.get_ref();
        format!("{}, {}", stream.route(), stream.hidden_by())
    }

    /// Dials `addr` and exchanges handshakes (we speak first, as the connecting side does).
    /// `reserved` announces our extensions: set only the bits we really handle. `dialer`
    /// says over which transports (`dial.rs`) and whether to hide the connection with MSE/PE
    /// (`encrypted.rs`).
    pub fn open(
        addr: SocketAddr,
        info_hash: InfoHash,
        our_id: PeerId,
        reserved: [u8; 8],
        trace: Trace,
        dialer: &Dialer,
    ) -> Result<Connection, PeerError> {
        let ours = Handshake {
            reserved,
            info_hash,
            peer_id: our_id,
        };
        let routes = dialer.routes();
        let mut failure = PeerError::Connect(std::io::Error::new(
            ErrorKind::Unsupported,
            "no transport to dial with (--transport utp, and uTP is not running)",
        ));
        for (i, &route) in routes.iter().enumerate() {
            match Connection::open_via(route, addr, ours, our_id, trace.clone(), dialer) {
                // [W17.13] Refused, or hung up before any handshake: a peer that speaks only
                // the other transport looks like this. Anything later is the peer's answer.
                Err(e) if i + 1 < routes.len() && e.before_handshake() => {
                    log::debug!("{addr}: {route}: {e}; trying {}", routes[i + 1]);
                    failure = e;
                }
                other => return other,
            }
        }
        Err(failure)
    }

    /// One transport, with the encryption policy.
    fn open_via(
        route: Route,
        addr: SocketAddr,
        ours: Handshake,
        our_id: PeerId,
        trace: Trace,
        dialer: &Dialer,
    ) -> Result<Connection, PeerError> {
        let (plain, hidden) = (Connection::open_plain, Connection::open_encrypted);
        match dialer.encryption {
            Encryption::Off => plain(route, addr, ours, our_id, trace, dialer),
            Encryption::Require => hidden(route, addr, ours, our_id, trace, dialer),
            // Plain first: most peers take it, and a class watching the wire sees the protocol.
            // A peer that insists on encryption hangs up on our plain handshake; it is dialled
            // again, with MSE.
            Encryption::Prefer => match plain(route, addr, ours, our_id, trace.clone(), dialer) {
                Err(PeerError::ClosedBeforeHandshake) => {
                    // [W16.8]
                    log::debug!("{addr}: hung up on a plain handshake; dialling again with MSE");
                    hidden(route, addr, ours, our_id, trace, dialer)
                }
                other => other,
            },
        }
    }

    /// A fresh stream to `addr` over `route`, ready for a handshake.
    fn dial(
        route: Route,
        addr: SocketAddr,
        dialer: &Dialer,
        trace: &Trace,
    ) -> Result<Box<dyn PeerStream>, PeerError> {
        let stream = dialer
            .connect(route, addr, HANDSHAKE_TIMEOUT)
            .map_err(PeerError::Connect)?;
        if route == Route::Utp {
            trace.line(|| format!("{addr} {UTP_NOTE}"));
        }
        Ok(stream)
    }

    fn open_plain(
        route: Route,
        addr: SocketAddr,
        ours: Handshake,
        our_id: PeerId,
        trace: Trace,
        dialer: &Dialer,
    ) -> Result<Connection, PeerError> {
        let stream = Connection::dial(route, addr, dialer, &trace)?;
        Connection::open_stream(stream, addr, ours.info_hash, our_id, ours.reserved, trace)
    }

    /// MSE first (our handshake travels inside it as the initial payload), then the peer's
    /// handshake through the encrypted stream.
    fn open_encrypted(
        route: Route,
        addr: SocketAddr,
        ours: Handshake,
        our_id: PeerId,
        trace: Trace,
        dialer: &Dialer,
    ) -> Result<Connection, PeerError> {
        let stream = Connection::dial(route, addr, dialer, &trace)?;
        set_handshake_timeouts(&*stream)?;
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let policy = dialer.encryption.mse_policy();
        let hidden =
            crate::mse::initiate(stream, &ours.info_hash, policy, &ours.to_bytes(), deadline)
                .map_err(|e| PeerError::Mse(Box::new(e)))?;
        trace.line(|| format!("{addr} {}", trace_note(hidden.level())));
        let (writer, mut reader) = split(Box::new(hidden))?;
        let remote = read_remote(&mut reader)?;
        trace.line(|| format!("{addr} -> {ours:?}"));
        trace.line(|| format!("{addr} <- {remote:?}"));
        check_remote(&remote, ours.info_hash, our_id)?;
        Ok(Connection::new(addr, remote, reader, writer, trace))
    }

    /// The dialling side's handshake over a stream that is already connected to `addr`.
    pub fn open_stream(
        stream: Box<dyn PeerStream>,
        addr: SocketAddr,
        info_hash: InfoHash,
        our_id: PeerId,
        reserved: [u8; 8],
        trace: Trace,
    ) -> Result<Connection, PeerError> {
        let ours = Handshake {
            reserved,
            info_hash,
            peer_id: our_id,
        };
        let (mut writer, mut reader) = split(stream)?;
        // The dialling side speaks first: the other side may wait for our info hash to know
        // which of its torrents we mean (BEP 3).
        ours.write_to(&mut writer)?;
        let remote = read_remote(&mut reader)?;
        // Traced once both are in, in the order they crossed the wire.
        trace.line(|| format!("{addr} -> {ours:?}"));
        trace.line(|| format!("{addr} <- {remote:?}"));
        check_remote(&remote, info_hash, our_id)?;
        Ok(Connection::new(addr, remote, reader, writer, trace))
    }

    /// The receiving side of §10: a peer dialled us. Its handshake comes first; we answer only
    /// if it names our torrent and is not ourselves. `info_hashes` are the names our torrent
    /// goes by: one, or two for a hybrid torrent (BEP 52), whose v1 swarm knows it by its
    /// SHA-1 info hash and whose v2 swarm by its truncated SHA-256 one.
    pub fn accept(
        stream: Box<dyn PeerStream>,
        info_hashes: &[InfoHash],
        our_id: PeerId,
        reserved: [u8; 8],
        trace: Trace,
        encryption: Encryption,
    ) -> Result<Connection, PeerError> {
        let addr = stream.peer_addr().map_err(PeerError::Connect)?;
        if stream.route() == Route::Utp {
            trace.line(|| format!("{addr} {UTP_NOTE}"));
        }
        set_handshake_timeouts(&*stream)?;
        // A plain handshake starts with 19 (the length of "BitTorrent protocol"); libtorrent
        // and aria2 dial with MSE/PE first: a Diffie-Hellman public key, random bytes.
        let stream = match (stream.peek_byte().map_err(PeerError::Connect)?, encryption) {
            (None, _) => return Err(PeerError::ClosedBeforeHandshake),
            (Some(19), Encryption::Require) => return Err(PeerError::PlainRefused),
            (Some(19), _) => stream,
            // Said plainly rather than as a bad `pstr`: the peer is not broken, it asks for
            // what we chose not to speak, and it tries again in plain text once we hang up.
            (Some(first), Encryption::Off) => return Err(PeerError::Encrypted(first)),
            (Some(_), _) => {
                // Not 19: a public key, taken as MSE. [W16.9]
                let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
                let policy = encryption.mse_policy();
                let (hidden, _, initial) =
                    crate::mse::accept(stream, &[], info_hashes, policy, deadline)
                        .map_err(|e| PeerError::Mse(Box::new(e)))?;
                trace.line(|| format!("{addr} {}", trace_note(hidden.level())));
                // The peer's handshake usually came inside the key exchange: read it first.
                Box::new(Replayed::new(initial, Box::new(hidden)))
            }
        };
        let (mut writer, mut reader) = split(stream)?;
        let remote = Handshake::read_from(&mut reader)?;
        trace.line(|| format!("{addr} <- {remote:?}"));
        // Checked before we answer: a peer on another torrent learns nothing of ours, not
        // even our peer id. We answer with the name it used: a v2 peer of a hybrid torrent
        // expects its truncated v2 hash back. [W18.7]
        let info_hash = match info_hashes.contains(&remote.info_hash) {
            true => remote.info_hash,
            false => info_hashes.first().copied().unwrap_or(remote.info_hash),
        };
        check_remote(&remote, info_hash, our_id)?;
        let ours = Handshake {
            reserved,
            info_hash,
            peer_id: our_id,
        };
        ours.write_to(&mut writer)?;
        trace.line(|| format!("{addr} -> {ours:?}"));
        Ok(Connection::new(addr, remote, reader, writer, trace))
    }

    fn new(
        addr: SocketAddr,
        remote: Handshake,
        reader: BufReader<Box<dyn PeerStream>>,
        writer: Box<dyn PeerStream>,
        trace: Trace,
    ) -> Connection {
        Connection {
            addr,
            remote,
            reader,
            writer,
            outbox: Vec::new(),
            sent: 0,
            last_write: Instant::now(),
            // The default `--peer-timeout`, until the peer thread sets its own.
            stall_limit: Duration::from_secs(120),
            trace,
            // The peer thread sets the tick every turn; this one serves the others (the
            // metadata fetch, `magnet`'s probe).
            tick: Duration::from_secs(1),
            patient: false,
        }
    }

    /// Whether received bytes are waiting in our buffer (more messages may follow at once).
    pub fn has_buffered_data(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// No deadline for the rest of a message once it has started (for debugging).
    pub fn set_patient(&mut self, patient: bool) {
        self.patient = patient;
    }

    /// Drop the peer when it has read none of our bytes for this long.
    pub fn set_stall_limit(&mut self, limit: Duration) {
        self.stall_limit = limit;
    }

    /// Sets how long `receive` waits for a new message before returning `Ok(None)`.
    pub fn set_tick(&mut self, tick: Duration) {
        self.tick = tick;
    }

    /// Queues one message; `flush` or `pump` sends what is queued.
    pub fn send(&mut self, message: &Message) -> Result<(), PeerError> {
        // Traced when queued, not when the socket takes it: the trace shows what we decided,
        // in the order we decided it.
        self.trace.line(|| format!("{} -> {message}", self.addr));
        log::debug!("{} -> {message}", self.addr);
        // Into memory only: a `send` never touches the socket, so it can never block.
        message.write_to(&mut self.outbox)?;
        Ok(())
    }

    /// Queues a `piece` message whose block `fill` writes straight into the outbox (from disk).
    pub fn send_block(
        &mut self,
        index: u32,
        begin: u32,
        len: u32,
        fill: impl FnOnce(&mut [u8]) -> Result<(), PeerError>,
    ) -> Result<(), PeerError> {
        self.trace.line(|| {
            format!(
                "{} -> Piece {{ index: {index}, begin: {begin}, block: <{len} bytes> }}",
                self.addr
            )
        });
        log::debug!("{} -> piece {index} {begin}+{len}", self.addr);
        let start = self.outbox.len();
        self.outbox
            .extend_from_slice(&crate::wire::message::piece_header(index, begin, len));
        // The block is read from disk into its place in the outbox: no buffer per block,
        // and no copy between the disk and the socket.
        let block_at = self.outbox.len();
        self.outbox.resize(block_at + len as usize, 0);
        // A failed read takes its header back out: the outbox holds whole messages only,
        // or the peer would read the next message's bytes as the rest of this block.
        fill(&mut self.outbox[block_at..]).inspect_err(|_| self.outbox.truncate(start))
    }

    /// Bytes queued and not yet taken by the socket.
    pub fn pending(&self) -> usize {
        self.outbox.len() - self.sent
    }

    /// Sends everything queued, however long the socket takes (up to the stall limit).
    pub fn flush(&mut self) -> Result<(), PeerError> {
        // No deadline of its own: `pump` fails once the peer has taken nothing for the stall
        // limit, which ends this loop too.
        while self.pending() > 0 {
            self.pump(Duration::from_secs(1))?;
        }
        Ok(())
    }

    /// Gives the socket as much of the outbox as it takes within `wait`. Fails when the peer
    /// has taken nothing for the stall limit (it does not read). [W10.4]
    pub fn pump(&mut self, wait: Duration) -> Result<(), PeerError> {
        let io = |e: std::io::Error| PeerError::Wire(e.into());
        // One `write` waits at most `wait` for room in the socket's buffer: then the thread
        // goes back to reading rather than sit on a peer that reads nothing.
        self.writer.set_write_timeout(Some(wait)).map_err(io)?;
        let started = Instant::now();
        // `write`, not `write_all`: the socket may take part of the outbox, and `sent`
        // remembers where the rest begins.
        while self.pending() > 0 && started.elapsed() <= wait {
            match self.writer.write(&self.outbox[self.sent..]) {
                // Taking nothing without an error: the socket is closed for writing.
                Ok(0) => return Err(io(ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.sent += n;
                    // Progress, however small, is the peer reading: the stall clock restarts.
                    self.last_write = Instant::now();
                }
                // The socket is full and the wait is over: the rest goes next turn.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                // A signal interrupted the write, nothing failed: try again.
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        if self.pending() == 0 {
            // Everything went: the buffer starts over, so it never grows beyond one burst.
            self.outbox.clear();
            self.sent = 0;
        } else if self.last_write.elapsed() > self.stall_limit && !self.patient {
            // Not one byte taken for the stall limit: the peer does not read, and we would
            // queue blocks for it for ever.
            return Err(PeerError::NotReading(self.stall_limit));
        }
        Ok(())
    }

    /// The next message, or `None` if none has started to arrive: within the tick when `wait`,
    /// at once when not (the thread has bytes to send and must not sit in a read).
    ///
    /// Waiting for a message to *start* uses the short tick, so the thread wakes up regularly;
    /// once its first byte is here, the rest gets `MESSAGE_TIMEOUT`. A peer that trickles a
    /// message slower than that is dropped (a timeout mid-message leaves the stream out of step).
    pub fn receive(&mut self, wait: bool) -> Result<Option<Message>, PeerError> {
        // Bytes already in our buffer are a message begun: no need to ask the socket.
        if self.reader.buffer().is_empty() && !self.message_started(wait)? {
            return Ok(None);
        }
        // The whole message, or an error: a length prefix past the wire module's limit is
        // refused before anything is allocated for it.
        let message = Message::read_from(&mut self.reader)?;
        self.trace.line(|| format!("{} <- {message}", self.addr));
        log::debug!("{} <- {message}", self.addr);
        Ok(Some(message))
    }

    /// Ends the connection politely: sends what is queued, says we are done (TCP FIN), and
    /// waits up to `wait` for the peer to close its side, discarding whatever it still sends.
    /// Transmission keys its peers by IP and forgets a closed one only on its next pulse
    /// (about half a second later); a new connection from us before then is dropped before its
    /// handshake. Waiting here means the next connection, ours or the next command's, gets
    /// through the first time.
    pub fn close(mut self, wait: Duration) {
        let until = Instant::now() + wait;
        // Best effort: the connection is ending either way; a peer that reads nothing only
        // misses our last messages.
        let _ = self.pump(wait);
        // Fails when the connection is already gone: then there is nobody to tell.
        let _ = self.writer.shutdown_write();
        let socket = self.reader.get_mut();
        let mut discard = [0u8; 4096];
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            // A zero timeout is an error for the socket: wait at least a millisecond.
            let closed = socket.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match closed.and_then(|()| std::io::Read::read(socket, &mut discard)) {
                Ok(0) | Err(_) => return, // closed by the peer, or the wait is over
                Ok(_) => {}
            }
        }
    }

    /// Whether the first byte of a message has arrived, waiting up to a tick for it when
    /// `wait`; on `true` the read timeout is set for the rest of the message.
    fn message_started(&mut self, wait: bool) -> Result<bool, PeerError> {
        let stream = self.reader.get_ref();
        let io = |e: std::io::Error| PeerError::Wire(e.into());
        // A peek, not a read: nothing is taken, so a tick that ends with no message leaves
        // the stream exactly as it was.
        match stream.wait_readable(wait.then_some(self.tick)) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            // The peer closed between two messages: the normal end of a connection.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Err(PeerError::Closed),
            Err(e) => return Err(io(e)),
        }
        // A read that times out mid-message cannot be resumed (the bytes already read are
        // lost to the framing), so this deadline ends the connection: it must be generous.
        let rest = if self.patient {
            None
        } else {
            Some(MESSAGE_TIMEOUT)
        };
        stream.set_read_timeout(rest).map_err(io)?;
        Ok(true)
    }
}

/// The two halves of a fresh connection (one writes, one reads through a 64 KiB buffer), with
/// the handshake's deadline on both.
type Halves = (Box<dyn PeerStream>, BufReader<Box<dyn PeerStream>>);

/// Until the connection sets its own: a peer that connects and then says nothing (a port
/// scanner, a stuck client) is dropped after the handshake timeout.
fn set_handshake_timeouts(stream: &dyn PeerStream) -> Result<(), PeerError> {
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(PeerError::Connect)?;
    stream
        .set_write_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(PeerError::Connect)
}

/// The other side's handshake. Peers hang up right after ours when they lack the torrent (or
/// want encryption): a common, named end, rather than an "unexpected end of file" from the
/// handshake parser.
fn read_remote(reader: &mut BufReader<Box<dyn PeerStream>>) -> Result<Handshake, PeerError> {
    match std::io::BufRead::fill_buf(reader) {
        Ok([]) => return Err(PeerError::ClosedBeforeHandshake),
        Ok(_) => {}
        // A peer that closes with our handshake still unread in its socket makes its
        // system send a reset, not an end of stream: the same hang-up.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {
            return Err(PeerError::ClosedBeforeHandshake);
        }
        Err(e) => return Err(WireError::from(e).into()),
    }
    Ok(Handshake::read_from(reader)?)
}

fn split(stream: Box<dyn PeerStream>) -> Result<Halves, PeerError> {
    set_handshake_timeouts(&*stream)?;
    // The `BufReader` owns one handle; writes go through the other, so sending never
    // disturbs bytes buffered for reading.
    let writer = stream.try_clone_stream().map_err(PeerError::Connect)?;
    // 64 KiB: four blocks, so a burst of `piece` messages is read in few system calls.
    Ok((writer, BufReader::with_capacity(64 * 1024, stream)))
}

/// The checks every handshake gets: same torrent, and not a connection to ourselves. [W4.2]
fn check_remote(remote: &Handshake, info_hash: InfoHash, our_id: PeerId) -> Result<(), PeerError> {
    if remote.info_hash != info_hash {
        return Err(PeerError::WrongInfoHash(remote.info_hash));
    }
    // Trackers list us to ourselves (opentracker does), and so does peer exchange: a
    // connection to ourselves would trade nothing, for ever.
    if remote.peer_id == our_id {
        return Err(PeerError::Ourselves);
    }
    Ok(())
}
