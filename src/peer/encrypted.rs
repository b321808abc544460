//! A peer connection under Message Stream Encryption (MSE/PE): the policy, and the encrypted
//! stream as a [`PeerStream`] — walkthrough §16.
//!
//! ```text
//!   Connection ──► dyn PeerStream ──► Replayed (the peer's handshake, sent inside MSE's
//!                                       │        initial payload, read first)
//!                                       └──► EncryptedStream (RC4 both ways, or plain after
//!                                              the obfuscated key exchange) ──► TcpStream
//! ```
//!
//! The key exchange itself is `src/mse/`; this file only decides when to run it and makes its
//! result look like any other stream to `connection.rs`.

use super::stream::PeerStream;
use crate::mse::{CryptoLevel, EncryptedStream, Policy};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// `--encryption`: when to obfuscate a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Plain BitTorrent only: an encrypted dial is refused.
    Off,
    /// Both, the default: a peer that dials with MSE gets MSE (plain payload when it offers
    /// plain, RC4 otherwise); we dial in plain text, and dial again with MSE a peer that hangs up
    /// on our plain handshake (as peers that require encryption do).
    #[default]
    Prefer,
    /// MSE with RC4 only, both ways: a plain handshake is refused, a plain-only peer unreachable.
    Require,
}

impl Encryption {
    /// What we offer and pick in MSE's `crypto_provide` / `crypto_select`.
    pub fn mse_policy(self) -> Policy {
        match self {
            // Off never runs MSE; if asked, it would offer only the plain payload.
            Encryption::Off => Policy::PlaintextOnly,
            // The handshake hidden, the payload free of the cipher's cost when the peer
            // agrees (libtorrent's default makes the same choice).
            Encryption::Prefer => Policy::PreferPlaintext,
            Encryption::Require => Policy::Rc4Only,
        }
    }
}

/// One trace line for a connection that runs under MSE: the messages traced after it are
/// the clear text, the wire carries them obfuscated.
pub fn trace_note(level: CryptoLevel) -> &'static str {
    // The one line that says the wire differs from what is traced. [W16.10]
    match level {
        CryptoLevel::Rc4 => {
            "stream encrypted (MSE/PE, RC4): the messages below are shown decrypted"
        }
        CryptoLevel::Plaintext => "stream obfuscated (MSE/PE key exchange, payload in plain text)",
    }
}

impl PeerStream for EncryptedStream<Box<dyn PeerStream>> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().peer_addr()
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.get_ref().set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.get_ref().set_write_timeout(timeout)
    }

    fn wait_readable(&self, wait: Option<Duration>) -> io::Result<bool> {
        // Bytes the key exchange read past its own end are already here, not in the socket.
        if self.buffered() > 0 {
            return Ok(true);
        }
        self.get_ref().wait_readable(wait)
    }

    fn try_clone_stream(&self) -> io::Result<Box<dyn PeerStream>> {
        // Both handles share the two cipher states: the keystream goes on where it stopped,
        // whichever handle reads or writes.
        Ok(Box::new(self.try_clone_with(|s| s.try_clone_stream())?))
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.get_ref().shutdown_write()
    }

    fn route(&self) -> super::dial::Route {
        self.get_ref().route()
    }

    fn hidden_by(&self) -> &'static str {
        match self.level() {
            CryptoLevel::Rc4 => "RC4 (MSE/PE)",
            CryptoLevel::Plaintext => "MSE/PE handshake, plain payload",
        }
    }
}

/// A stream with some bytes already received put back in front: MSE carries the peer's
/// BitTorrent handshake (and maybe more) inside the key exchange, and the connection must read
/// it as if it came from the stream.
pub struct Replayed {
    first: Vec<u8>,
    at: usize,
    inner: Box<dyn PeerStream>,
}

impl Replayed {
    pub fn new(first: Vec<u8>, inner: Box<dyn PeerStream>) -> Replayed {
        Replayed {
            first,
            at: 0,
            inner,
        }
    }
}

impl Read for Replayed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.first.len() {
            let n = buf.len().min(self.first.len() - self.at);
            buf[..n].copy_from_slice(&self.first[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl Write for Replayed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl PeerStream for Replayed {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(timeout)
    }

    fn wait_readable(&self, wait: Option<Duration>) -> io::Result<bool> {
        if self.at < self.first.len() {
            return Ok(true);
        }
        self.inner.wait_readable(wait)
    }

    /// The second handle is the connection's *writing* one (`connection.rs` reads through the
    /// first only), so the replayed bytes stay with this one.
    fn try_clone_stream(&self) -> io::Result<Box<dyn PeerStream>> {
        self.inner.try_clone_stream()
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.inner.shutdown_write()
    }

    fn route(&self) -> super::dial::Route {
        self.inner.route()
    }

    fn hidden_by(&self) -> &'static str {
        self.inner.hidden_by()
    }
}
