//! One TCP connection to a peer: connect, handshake, then framed messages — walkthrough §4, §7.
//!
//! ```text
//!   connect (timeout) ──► send our handshake ──► read theirs ──► check info_hash, not ourselves
//!                                                                  │
//!                        send(Message) / receive() -> Message ◄───┘  (every message traced)
//! ```
//!
//! The socket stays blocking. Reads have a timeout so the peer thread wakes up regularly (to
//! send keep-alives, notice a silent peer, and read its commands) even when the peer is quiet;
//! a timeout is reported as `Ok(None)`, not as an error.

use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::wire::{Handshake, Message, WireError};
use std::io::{BufReader, BufWriter, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
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
    #[error("{0}")]
    Protocol(String),
    #[error("the peer sent nothing for {0:?}")]
    Silent(Duration),
    #[error("banned: {0}")]
    Banned(&'static str),
}

/// An open connection after a successful handshake.
pub struct Connection {
    pub addr: SocketAddr,
    /// What the peer said in its handshake.
    pub remote: Handshake,
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    trace: bool,
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
        trace: bool,
    ) -> Result<Connection, PeerError> {
        let stream =
            TcpStream::connect_timeout(&addr, HANDSHAKE_TIMEOUT).map_err(PeerError::Connect)?;
        stream.set_nodelay(true).map_err(PeerError::Connect)?;
        stream
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(PeerError::Connect)?;
        let mut writer = BufWriter::new(stream.try_clone().map_err(PeerError::Connect)?);
        let mut reader = BufReader::with_capacity(64 * 1024, stream);
        let ours = Handshake {
            reserved,
            info_hash,
            peer_id: our_id,
        };
        ours.write_to(&mut writer)?;
        let remote = Handshake::read_from(&mut reader)?;
        if trace {
            trace_line(&format!("{addr} -> {ours:?}\n{addr} <- {remote:?}"));
        }
        if remote.info_hash != info_hash {
            return Err(PeerError::WrongInfoHash(remote.info_hash));
        }
        if remote.peer_id == our_id {
            return Err(PeerError::Ourselves);
        }
        Ok(Connection {
            addr,
            remote,
            reader,
            writer,
            trace,
            tick: Duration::from_secs(1),
            patient: false,
        })
    }

    /// Whether received bytes are waiting in our buffer (more messages may follow at once).
    pub fn has_buffered_data(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// No deadline for the rest of a message once it has started (for debugging).
    pub fn set_patient(&mut self, patient: bool) {
        self.patient = patient;
    }

    /// Sets how long `receive` waits for a new message before returning `Ok(None)`.
    pub fn set_tick(&mut self, tick: Duration) {
        self.tick = tick;
    }

    /// Queues one message; `flush` sends what is queued.
    pub fn send(&mut self, message: &Message) -> Result<(), PeerError> {
        if self.trace {
            trace_line(&format!("{} -> {message}", self.addr));
        }
        log::debug!("{} -> {message}", self.addr);
        message.write_to(&mut self.writer)?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), PeerError> {
        self.writer.flush().map_err(|e| PeerError::Wire(e.into()))
    }

    /// The next message, or `None` if no message started within the tick.
    ///
    /// Waiting for a message to *start* uses the short tick, so the thread wakes up regularly;
    /// once its first byte is here, the rest gets `MESSAGE_TIMEOUT`. A peer that trickles a
    /// message slower than that is dropped (a timeout mid-message leaves the stream out of step).
    pub fn receive(&mut self) -> Result<Option<Message>, PeerError> {
        if self.reader.buffer().is_empty() {
            let socket = self.reader.get_ref();
            let io = |e: std::io::Error| PeerError::Wire(e.into());
            socket.set_read_timeout(Some(self.tick)).map_err(io)?;
            match socket.peek(&mut [0u8; 1]) {
                Ok(0) => {
                    return Err(PeerError::Wire(WireError::Io(
                        ErrorKind::UnexpectedEof.into(),
                    )));
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None);
                }
                Err(e) => return Err(io(e)),
            }
            let rest = if self.patient {
                None
            } else {
                Some(MESSAGE_TIMEOUT)
            };
            socket.set_read_timeout(rest).map_err(io)?;
        }
        let message = Message::read_from(&mut self.reader)?;
        if self.trace {
            trace_line(&format!("{} <- {message}", self.addr));
        }
        log::debug!("{} <- {message}", self.addr);
        Ok(Some(message))
    }
}

/// One line of the wire trace on stderr. Unlike `eprintln!`, a closed stderr (say, the trace
/// piped into `head`) is ignored rather than a panic that would kill the peer thread.
fn trace_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
