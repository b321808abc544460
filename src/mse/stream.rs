//! MSE step 5: the payload stream after the handshake, RC4 both ways or plain
//! ("Message Stream Encryption", `ENCRYPT2`) — what the peer connection (BEP 3) reads and
//! writes once [`super::initiate`] or [`super::accept`] returns.
//!
//! Where it sits: between `peer/connection.rs` and the socket. It is `Read + Write`; reading
//! first hands out the bytes the handshake read past its own end (the peer's first messages
//! may arrive in the same packet as its last handshake bytes), then reads the socket.
//!
//! A connection reads through one handle and writes through another (`try_clone_with`): the
//! two handles share the two cipher states, so whichever handle reads, the receiving keystream
//! goes on where it stopped, and likewise for sending.

use super::CryptoLevel;
use rc4::{Rc4, StreamCipher};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

/// The most one `write` encrypts at a time (and so the largest scratch buffer it keeps).
const WRITE_CHUNK: usize = 64 * 1024;

/// A byte stream under MSE: RC4 both ways, or plain after an obfuscated handshake.
pub struct EncryptedStream<S> {
    inner: S,
    level: CryptoLevel,
    incoming: Arc<Mutex<Incoming>>,
    outgoing: Arc<Mutex<Outgoing>>,
}

/// The receiving side: bytes the handshake read too far, and the receiving cipher.
struct Incoming {
    /// Raw (still encrypted) bytes from the socket that came after the handshake;
    /// `leftover[at..]` are not yet read.
    leftover: Vec<u8>,
    at: usize,
    cipher: Option<Rc4>,
}

/// The sending side: the cipher, and keystream made ahead but not yet used.
struct Outgoing {
    cipher: Option<Rc4>,
    /// `keystream[used..]` is keystream for the next bytes sent. A `write` must encrypt
    /// before it knows how much the socket takes; the keystream of the bytes not taken stays
    /// here for the next `write`, so the stream never skips or repeats a keystream byte.
    keystream: Vec<u8>,
    used: usize,
    /// Ciphertext being handed to the socket (kept to avoid an allocation per write).
    scratch: Vec<u8>,
}

impl<S> EncryptedStream<S> {
    /// Wraps `inner` after a handshake. `level` Plaintext drops both ciphers.
    pub(super) fn new(
        inner: S,
        level: CryptoLevel,
        send: Rc4,
        receive: Rc4,
        leftover: Vec<u8>,
    ) -> EncryptedStream<S> {
        let rc4 = level == CryptoLevel::Rc4;
        EncryptedStream {
            inner,
            level,
            incoming: Arc::new(Mutex::new(Incoming {
                leftover,
                at: 0,
                cipher: rc4.then_some(receive),
            })),
            outgoing: Arc::new(Mutex::new(Outgoing {
                cipher: rc4.then_some(send),
                keystream: Vec::new(),
                used: 0,
                scratch: Vec::new(),
            })),
        }
    }

    /// What the handshake settled on.
    pub fn level(&self) -> CryptoLevel {
        self.level
    }

    /// Whether the payload goes through RC4 (for the wire trace).
    pub fn is_encrypted(&self) -> bool {
        self.level == CryptoLevel::Rc4
    }

    /// The stream underneath (to set timeouts, ask the peer's address, peek).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream underneath, mutably. Reading or writing it directly breaks the stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Bytes already received and waiting to be read, though the socket has none: a caller
    /// that peeks the socket to see whether a message has begun must look here first.
    pub fn buffered(&self) -> usize {
        let incoming = lock(&self.incoming);
        incoming.leftover.len() - incoming.at
    }

    /// A second handle on the same stream, `clone` making the second handle of `inner`
    /// (`TcpStream::try_clone`). Both share the cipher states: use one to read and the other
    /// to write, as the peer connection does.
    pub fn try_clone_with(
        &self,
        clone: impl FnOnce(&S) -> io::Result<S>,
    ) -> io::Result<EncryptedStream<S>> {
        Ok(EncryptedStream {
            inner: clone(&self.inner)?,
            level: self.level,
            incoming: Arc::clone(&self.incoming),
            outgoing: Arc::clone(&self.outgoing),
        })
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for EncryptedStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedStream")
            .field("inner", &self.inner)
            .field("level", &self.level)
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl<S: Read> Read for EncryptedStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut incoming = lock(&self.incoming);
        let n = if incoming.at < incoming.leftover.len() {
            let rest = &incoming.leftover[incoming.at..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            incoming.at += n;
            if incoming.at == incoming.leftover.len() {
                // Read out: give the memory back.
                incoming.leftover = Vec::new();
                incoming.at = 0;
            }
            n
        } else {
            self.inner.read(buf)?
        };
        if let Some(cipher) = &mut incoming.cipher {
            cipher.apply_keystream(&mut buf[..n]);
        }
        Ok(n)
    }
}

impl<S: Write> Write for EncryptedStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = lock(&self.outgoing);
        let outgoing = &mut *guard;
        let Some(cipher) = &mut outgoing.cipher else {
            return self.inner.write(buf);
        };
        let len = buf.len().min(WRITE_CHUNK);
        let ready = outgoing.keystream.len() - outgoing.used;
        if ready < len {
            // Keep the unused keystream, then make what is missing after it.
            outgoing.keystream.drain(..outgoing.used);
            outgoing.used = 0;
            let from = outgoing.keystream.len();
            outgoing.keystream.resize(len, 0);
            cipher.apply_keystream(&mut outgoing.keystream[from..]);
        }
        let keystream = &outgoing.keystream[outgoing.used..outgoing.used + len];
        outgoing.scratch.clear();
        outgoing
            .scratch
            .extend(buf[..len].iter().zip(keystream).map(|(b, k)| b ^ k));
        // Only what the socket took uses up keystream; an error uses none.
        let n = self.inner.write(&outgoing.scratch)?;
        outgoing.used += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The lock of one direction. Nothing panics while holding it (no `unwrap` inside), so a
/// poisoned lock still holds a consistent state; take it anyway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
