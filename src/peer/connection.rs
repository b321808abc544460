//! One TCP connection to a peer: connect or accept, handshake, then framed messages —
//! walkthrough §4, §7, §10.
//!
//! ```text
//!   open:   connect (timeout) ──► send our handshake ──► read theirs ─┐
//!   accept: read their handshake ──► right torrent? ──► send ours ────┤ check info_hash,
//!                                                                     │ not ourselves
//!           send(Message) ──► outbox ──► pump() ──► socket           ◄┘
//!           receive() -> Message ◄── 64 KiB read buffer ◄── socket      (every message traced)
//! ```
//!
//! The socket stays blocking. Reads have a timeout so the peer thread wakes up regularly (to
//! send keep-alives, notice a silent peer, and read its commands) even when the peer is quiet;
//! a timeout is reported as `Ok(None)`, not as an error.
//!
//! Writes go through an *outbox* that [`Connection::pump`] empties with a bounded wait. A
//! blocking `write_all` of a big block could wait forever on a peer that never reads, and two
//! peers uploading to each other could each wait for the other to read: a deadlock. With the
//! outbox a thread that cannot write goes back to reading, and a peer that reads nothing for
//! the peer timeout (`--peer-timeout`) is dropped.

use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::storage::StorageError;
use crate::trace::Trace;
use crate::wire::{Handshake, Message, WireError};
use std::io::{BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long to wait for a TCP connection and for the peer's handshake (libtorrent uses 10 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Once a message has started to arrive, how long the rest may take (libtorrent: piece 20 s).
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum PeerError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the peer is on another torrent (info hash {0})")]
    WrongInfoHash(InfoHash),
    #[error("connected to ourselves")]
    Ourselves,
    #[error("{what} {index}: no such piece (the torrent has {pieces})")]
    NoSuchPiece {
        what: &'static str,
        index: u32,
        pieces: usize,
    },
    #[error("{0} blocks nobody asked for")]
    Unsolicited(u32),
    #[error("{count} bad requests (last: {last})")]
    BadRequests { count: u32, last: String },
    #[error("{0} requests while choked")]
    RequestsWhileChoked(usize),
    #[error("more than {0} requests queued")]
    TooManyRequests(usize),
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
         (MSE/PE) handshake, which peerwire does not speak yet"
    )]
    Encrypted(u8),
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

/// An open connection after a successful handshake.
pub struct Connection {
    pub addr: SocketAddr,
    /// What the peer said in its handshake.
    pub remote: Handshake,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
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
    /// Dials `addr` and exchanges handshakes (we speak first, as the connecting side does).
    /// `reserved` announces our extensions: set only the bits we really handle.
    pub fn open(
        addr: SocketAddr,
        info_hash: InfoHash,
        our_id: PeerId,
        reserved: [u8; 8],
        trace: Trace,
    ) -> Result<Connection, PeerError> {
        let stream =
            TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT).map_err(PeerError::Connect)?;
        let ours = Handshake {
            reserved,
            info_hash,
            peer_id: our_id,
        };
        let (mut writer, mut reader) = split(stream)?;
        ours.write_to(&mut writer)?;
        if std::io::BufRead::fill_buf(&mut reader)
            .map_err(WireError::from)?
            .is_empty()
        {
            return Err(PeerError::ClosedBeforeHandshake);
        }
        let remote = Handshake::read_from(&mut reader)?;
        trace.line(|| format!("{addr} -> {ours:?}"));
        trace.line(|| format!("{addr} <- {remote:?}"));
        check_remote(&remote, info_hash, our_id)?;
        Ok(Connection::new(addr, remote, reader, writer, trace))
    }

    /// The receiving side of §10: a peer dialled us. Its handshake comes first; we answer only
    /// if it names our torrent and is not ourselves.
    pub fn accept(
        stream: TcpStream,
        info_hash: InfoHash,
        our_id: PeerId,
        reserved: [u8; 8],
        trace: Trace,
    ) -> Result<Connection, PeerError> {
        let addr = stream.peer_addr().map_err(PeerError::Connect)?;
        let (mut writer, mut reader) = split(stream)?;
        // libtorrent and aria2 dial with MSE/PE first: a Diffie-Hellman key, not `19`.
        match std::io::BufRead::fill_buf(&mut reader).map_err(WireError::from)? {
            [] => return Err(PeerError::ClosedBeforeHandshake),
            [first, ..] if *first != 19 => return Err(PeerError::Encrypted(*first)),
            _ => {}
        }
        let remote = Handshake::read_from(&mut reader)?;
        trace.line(|| format!("{addr} <- {remote:?}"));
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
        reader: BufReader<TcpStream>,
        writer: TcpStream,
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
            stall_limit: Duration::from_secs(120),
            trace,
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
        self.trace.line(|| format!("{} -> {message}", self.addr));
        log::debug!("{} -> {message}", self.addr);
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
        let block_at = self.outbox.len();
        self.outbox.resize(block_at + len as usize, 0);
        fill(&mut self.outbox[block_at..]).inspect_err(|_| self.outbox.truncate(start))
    }

    /// Bytes queued and not yet taken by the socket.
    pub fn pending(&self) -> usize {
        self.outbox.len() - self.sent
    }

    /// Sends everything queued, however long the socket takes (up to the stall limit).
    pub fn flush(&mut self) -> Result<(), PeerError> {
        while self.pending() > 0 {
            self.pump(Duration::from_secs(1))?;
        }
        Ok(())
    }

    /// Gives the socket as much of the outbox as it takes within `wait`. Fails when the peer
    /// has taken nothing for the stall limit (it does not read). [W10.4]
    pub fn pump(&mut self, wait: Duration) -> Result<(), PeerError> {
        let io = |e: std::io::Error| PeerError::Wire(e.into());
        self.writer.set_write_timeout(Some(wait)).map_err(io)?;
        let started = Instant::now();
        while self.pending() > 0 && started.elapsed() <= wait {
            match self.writer.write(&self.outbox[self.sent..]) {
                Ok(0) => return Err(io(ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.sent += n;
                    self.last_write = Instant::now();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        if self.pending() == 0 {
            self.outbox.clear();
            self.sent = 0;
        } else if self.last_write.elapsed() > self.stall_limit && !self.patient {
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
        if self.reader.buffer().is_empty() && !self.message_started(wait)? {
            return Ok(None);
        }
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
        let _ = self.pump(wait);
        let _ = self.writer.shutdown(std::net::Shutdown::Write);
        let socket = self.reader.get_mut();
        let mut discard = [0u8; 4096];
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let closed = socket.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match closed.and_then(|()| std::io::Read::read(socket, &mut discard)) {
                Ok(0) | Err(_) => return, // closed by the peer, or the wait is over
                Ok(_) => {}
            }
        }
    }

    /// Peeks at the socket for the first byte of a message; on `true` the read timeout is set
    /// for the rest of the message.
    fn message_started(&mut self, wait: bool) -> Result<bool, PeerError> {
        let socket = self.reader.get_ref();
        let io = |e: std::io::Error| PeerError::Wire(e.into());
        socket.set_read_timeout(Some(self.tick)).map_err(io)?;
        let peeked = if wait {
            socket.peek(&mut [0u8; 1])
        } else {
            socket.set_nonblocking(true).map_err(io)?;
            let peeked = socket.peek(&mut [0u8; 1]);
            socket.set_nonblocking(false).map_err(io)?;
            peeked
        };
        match peeked {
            Ok(0) => return Err(PeerError::Closed),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(false);
            }
            Err(e) => return Err(io(e)),
        }
        let rest = if self.patient {
            None
        } else {
            Some(MESSAGE_TIMEOUT)
        };
        socket.set_read_timeout(rest).map_err(io)?;
        Ok(true)
    }
}

/// The two halves of a fresh connection, with the handshake's deadline on reads.
fn split(stream: TcpStream) -> Result<(TcpStream, BufReader<TcpStream>), PeerError> {
    stream.set_nodelay(true).map_err(PeerError::Connect)?;
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(PeerError::Connect)?;
    stream
        .set_write_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(PeerError::Connect)?;
    let writer = stream.try_clone().map_err(PeerError::Connect)?;
    Ok((writer, BufReader::with_capacity(64 * 1024, stream)))
}

/// The checks every handshake gets: same torrent, and not a connection to ourselves. [W4.2]
fn check_remote(remote: &Handshake, info_hash: InfoHash, our_id: PeerId) -> Result<(), PeerError> {
    if remote.info_hash != info_hash {
        return Err(PeerError::WrongInfoHash(remote.info_hash));
    }
    if remote.peer_id == our_id {
        return Err(PeerError::Ourselves);
    }
    Ok(())
}
