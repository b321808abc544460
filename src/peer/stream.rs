//! The byte stream under a peer connection: what `connection.rs` needs of a transport —
//! walkthrough §7.
//!
//! ```text
//!   peer thread ──► Connection (handshake, framing, outbox) ──► dyn PeerStream ──► TCP today
//!                                                                              └─► uTP, an
//!                                                                                  encrypted
//!                                                                                  stream, …
//! ```
//!
//! BitTorrent's peer protocol (BEP 3) only needs an ordered, reliable stream of bytes each
//! way. `Connection` asks for exactly that (`Read + Write`) plus a few controls: how long a
//! read or a write may wait, whether a message has begun to arrive, a second handle on the
//! same stream (one side reads while the other writes), closing our half, and the address of
//! the other end. TCP is the first transport to implement it; anything else that does (a uTP
//! socket, an obfuscated stream) can carry a peer connection unchanged, and nothing above
//! `connection.rs` knows which one it got.

use super::dial::Route;
use crate::utp::stream::UtpStream;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// An ordered, reliable byte stream to one peer, with the controls a connection needs.
pub trait PeerStream: Read + Write + Send {
    /// The address of the other end.
    fn peer_addr(&self) -> io::Result<SocketAddr>;

    /// How long a `read` may block before it fails with `WouldBlock` or `TimedOut`
    /// (`None`: for ever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// How long a `write` may block before it fails with `WouldBlock` or `TimedOut`.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Waits until at least one byte can be read, for at most `wait` (`None`: do not wait at
    /// all), without taking it. `Ok(true)`: bytes are there; `Ok(false)`: nothing yet;
    /// `Err(UnexpectedEof)`: the peer closed its side.
    fn wait_readable(&self, wait: Option<Duration>) -> io::Result<bool>;

    /// A second handle on the same stream: the connection reads through one and writes
    /// through the other.
    fn try_clone_stream(&self) -> io::Result<Box<dyn PeerStream>>;

    /// Says we will send nothing more (TCP: FIN); reading goes on.
    fn shutdown_write(&self) -> io::Result<()>;

    /// The first byte waiting to be read, without taking it (waits up to the read timeout);
    /// `None` when the peer closed. A connection looks at it once, before the handshake, to
    /// tell a plain handshake (19) from an encrypted one. Only a raw transport can say; a
    /// stream already wrapped never needs to.
    fn peek_byte(&self) -> io::Result<Option<u8>> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// The transport underneath, for the trace and the logs.
    fn route(&self) -> Route {
        Route::Tcp
    }

    /// What hides the bytes, for the web view: nothing, unless an MSE/PE stream wraps this.
    fn hidden_by(&self) -> &'static str {
        "plain"
    }
}

impl PeerStream for TcpStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        // Accepted on the dual-stack listener, an IPv4 peer reads `::ffff:a.b.c.d`.
        TcpStream::peer_addr(self).map(crate::encoding::canonical_addr)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    /// A one-byte `peek`: the byte stays in the socket for the framing code to read. The
    /// socket is blocking; a wait is its read timeout. "Do not wait" is the one place it is
    /// switched to non-blocking, for the peek alone: a peer thread with bytes to send must look
    /// for incoming messages without sitting in a read (the alternative, a 1 ms timeout, costs
    /// a millisecond per turn of a loop that turns thousands of times a second when seeding).
    fn wait_readable(&self, wait: Option<Duration>) -> io::Result<bool> {
        let peeked = match wait {
            Some(wait) => {
                // A zero timeout is an error for the socket: wait at least a microsecond.
                TcpStream::set_read_timeout(self, Some(wait.max(Duration::from_micros(1))))?;
                self.peek(&mut [0u8; 1])
            }
            None => {
                self.set_nonblocking(true)?;
                let peeked = self.peek(&mut [0u8; 1]);
                self.set_nonblocking(false)?;
                peeked
            }
        };
        match peeked {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn try_clone_stream(&self) -> io::Result<Box<dyn PeerStream>> {
        Ok(Box::new(self.try_clone()?))
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn peek_byte(&self) -> io::Result<Option<u8>> {
        let mut first = [0u8; 1];
        match self.peek(&mut first)? {
            0 => Ok(None),
            _ => Ok(Some(first[0])),
        }
    }
}

/// uTP (BEP 29): the same controls over the shared UDP socket (`utp/stream.rs`).
impl PeerStream for UtpStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(UtpStream::peer_addr(self))
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UtpStream::set_read_timeout(self, timeout);
        Ok(())
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UtpStream::set_write_timeout(self, timeout);
        Ok(())
    }

    fn wait_readable(&self, wait: Option<Duration>) -> io::Result<bool> {
        UtpStream::wait_readable(self, wait)
    }

    fn try_clone_stream(&self) -> io::Result<Box<dyn PeerStream>> {
        Ok(Box::new(self.try_clone()))
    }

    fn shutdown_write(&self) -> io::Result<()> {
        UtpStream::shutdown_write(self);
        Ok(())
    }

    fn peek_byte(&self) -> io::Result<Option<u8>> {
        UtpStream::peek_byte(self)
    }

    fn route(&self) -> Route {
        Route::Utp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair of TCP streams on 127.0.0.1, as `dyn PeerStream`s.
    fn pair() -> (Box<dyn PeerStream>, Box<dyn PeerStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let dialled = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (Box::new(dialled), Box::new(accepted))
    }

    #[test]
    fn wait_readable_sees_bytes_without_taking_them() {
        let (mut a, mut b) = pair();
        assert!(!b.wait_readable(None).unwrap(), "nothing sent yet");
        assert!(!b.wait_readable(Some(Duration::from_millis(10))).unwrap());
        a.write_all(b"x").unwrap();
        assert!(b.wait_readable(Some(Duration::from_secs(5))).unwrap());
        let mut byte = [0u8; 1];
        b.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x", "the byte was still there to read");
    }

    #[test]
    fn a_closed_side_reads_as_end_of_file() {
        let (a, b) = pair();
        a.shutdown_write().unwrap();
        let closed = b.wait_readable(Some(Duration::from_secs(5)));
        assert_eq!(closed.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_clone_writes_while_the_original_reads() {
        let (mut a, b) = pair();
        let mut writer = b.try_clone_stream().unwrap();
        writer.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        assert!(b.peer_addr().unwrap().ip().is_loopback());
    }
}
