//! MSE steps 1–4, from either side ("Message Stream Encryption"): [`initiate`] for the side
//! that dials (A), [`accept`] for the side that was dialled (B). Both end in an
//! [`EncryptedStream`] that carries the peer protocol (BEP 3) from then on.
//!
//! Where it sits: the peer connection calls one of these on a fresh socket, before the
//! BitTorrent handshake. A dialling connection passes its BitTorrent handshake as the initial
//! payload (IA), so it reaches the other side in the same round trip; an accepting one gets
//! the peer's IA back and reads it as the first bytes of the peer protocol.
//!
//! Every read is bounded: in bytes (a pad is at most 512, each sync search looks at most 512
//! bytes past the public key, the IA at most 65,535 bytes by its 16-bit length), and in time
//! (the caller's socket timeout for one read, `deadline` for the whole handshake: a peer
//! trickling one byte per timeout still runs out of time). A read that returns no bytes is
//! the end of the stream, so no loop can spin without progress.

use super::dh::{KEY_LEN, KeyPair};
use super::keys::{self, Ciphers, Side};
use super::{CRYPTO_PLAINTEXT, CRYPTO_RC4, CryptoLevel, EncryptedStream, MAX_PAD};
use super::{MseError, Policy, Stage};
use crate::encoding::to_hex;
use crate::metainfo::InfoHash;
use rc4::{Rc4, StreamCipher};
use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

/// VC, the verification constant: eight zero bytes, sent encrypted.
const VC: [u8; 8] = [0; 8];

/// How many bytes one read asks the socket for. Reading past the end of the handshake is
/// harmless: the rest is kept and handed to the stream.
const READ_CHUNK: usize = 1024;

/// The dialling side's key pair. A receiver tells a plain handshake from an encrypted one by
/// the first byte (19 is the length of "BitTorrent protocol"): a public key that starts with 19
/// (one in 256) would be taken for a plain handshake, so another is drawn.
fn dialling_key(mut draw: impl FnMut() -> KeyPair) -> KeyPair {
    loop {
        let pair = draw();
        if pair.public()[0] != 19 {
            return pair;
        }
    }
}

/// Step 1–4 for the side that dialled (A): `initial` (our BitTorrent handshake) goes as IA.
/// Returns the stream with the payload encryption the other side selected. `policy` says what
/// we offer; the other side picks one of those.
pub fn initiate<S: Read + Write>(
    stream: S,
    info_hash: &InfoHash,
    policy: Policy,
    initial: &[u8],
    deadline: Instant,
) -> Result<EncryptedStream<S>, MseError> {
    let ia_len =
        u16::try_from(initial.len()).map_err(|_| MseError::InitialTooLong(initial.len()))?;
    let ours = dialling_key(KeyPair::generate);
    let mut received = Received::new(stream, Vec::new(), deadline);
    // 1. Ya, PadA.
    received.send(&[&ours.public()[..], &random_pad()].concat())?;
    // 2. Yb: its 96 bytes come first; PadB (up to 512 bytes) follows, unknown in length.
    received.stage = Stage::PublicKey;
    let theirs: [u8; KEY_LEN] = received.take_array()?;
    let secret = ours.shared_secret(&theirs)?;
    let mut ciphers = Ciphers::new(Side::A, &secret, info_hash);

    // 3. Sent without waiting for PadB: B finds where our part starts by the req1 hash.
    let provide = policy.provide();
    let mut encrypted = Vec::with_capacity(16 + initial.len());
    encrypted.extend_from_slice(&VC);
    encrypted.extend_from_slice(&provide.to_be_bytes());
    // PadC: none (the specification reserves it for later extensions); len(IA) follows.
    encrypted.extend_from_slice(&0u16.to_be_bytes());
    encrypted.extend_from_slice(&ia_len.to_be_bytes());
    encrypted.extend_from_slice(initial); // IA: our BitTorrent handshake [W16.7]
    ciphers.send.apply_keystream(&mut encrypted);
    let step3 = [
        &keys::req1(&secret)[..],
        &keys::obfuscated_skey(info_hash, &secret),
        &encrypted,
    ]
    .concat();
    received.send(&step3)?;

    // 4. PadB, then RC4b(VC): the VC's ciphertext is the first 8 bytes of B's keystream,
    //    which is what marks the end of PadB.
    received.stage = Stage::SyncVc;
    let mut vc = VC;
    ciphers.receive.apply_keystream(&mut vc);
    received.sync(&vc, "the verification constant")?;
    received.stage = Stage::Select;
    let selected = u32::from_be_bytes(received.take_decrypted(&mut ciphers.receive)?);
    let pad_len = u16::from_be_bytes(received.take_decrypted(&mut ciphers.receive)?);
    received.skip_pad("PadD", pad_len, &mut ciphers.receive)?;
    let level = match selected {
        CRYPTO_RC4 if provide & CRYPTO_RC4 != 0 => CryptoLevel::Rc4,
        CRYPTO_PLAINTEXT if provide & CRYPTO_PLAINTEXT != 0 => CryptoLevel::Plaintext,
        _ => {
            return Err(MseError::BadSelect {
                selected,
                provided: provide,
            });
        }
    };
    let (stream, leftover) = received.into_parts();
    Ok(EncryptedStream::new(
        stream,
        level,
        ciphers.send,
        ciphers.receive,
        leftover,
    ))
}

/// Steps 1–4 for the side that was dialled (B). `first`: the bytes the caller already read
/// (enough to see they are not a plain BitTorrent handshake). `known`: the info hashes we
/// serve; the peer's req2 hash must name one. Returns the stream, the torrent it named, and
/// its initial payload (its BitTorrent handshake, or nothing: then the handshake comes through
/// the stream).
pub fn accept<S: Read + Write>(
    stream: S,
    first: &[u8],
    known: &[InfoHash],
    policy: Policy,
    deadline: Instant,
) -> Result<(EncryptedStream<S>, InfoHash, Vec<u8>), MseError> {
    let mut received = Received::new(stream, first.to_vec(), deadline);
    // 1. Ya. Checked before we spend a key pair or send a byte.
    received.stage = Stage::PublicKey;
    let theirs: [u8; KEY_LEN] = received.take_array()?;
    let ours = KeyPair::generate();
    let secret = ours.shared_secret(&theirs)?;
    // 2. Yb, PadB.
    received.send(&[&ours.public()[..], &random_pad()].concat())?;

    // 3. PadA, then HASH('req1', S) marks where A's step 3 begins.
    received.stage = Stage::SyncReq1;
    received.sync(&keys::req1(&secret), "the req1 hash")?; // [W16.3]
    received.stage = Stage::Skey;
    let obfuscated: [u8; 20] = received.take_array()?;
    let wanted = keys::xor20(&obfuscated, &keys::req3(&secret));
    // Every known hash is tried; the peer learns nothing of which we have until we answer.
    let info_hash = *known
        .iter()
        .find(|hash| keys::req2(hash) == wanted) // [W16.4]
        .ok_or_else(|| MseError::UnknownInfoHash(to_hex(&obfuscated)))?;
    let mut ciphers = Ciphers::new(Side::B, &secret, &info_hash);

    received.stage = Stage::Provide;
    let vc: [u8; 8] = received.take_decrypted(&mut ciphers.receive)?;
    if vc != VC {
        // [W16.6]
        return Err(MseError::WrongVc(to_hex(&vc)));
    }
    let provided = u32::from_be_bytes(received.take_decrypted(&mut ciphers.receive)?);
    let pad_len = u16::from_be_bytes(received.take_decrypted(&mut ciphers.receive)?);
    received.skip_pad("PadC", pad_len, &mut ciphers.receive)?;
    received.stage = Stage::InitialPayload;
    let ia_len = u16::from_be_bytes(received.take_decrypted(&mut ciphers.receive)?);
    // At most 65,535 bytes, by the 16-bit length.
    let mut initial = received.take(usize::from(ia_len))?.to_vec();
    ciphers.receive.apply_keystream(&mut initial);
    let level = policy
        .select(provided)
        .ok_or(MseError::NothingAcceptable { provided, policy })?;

    // 4. RC4b(VC, crypto_select, len(PadD), PadD) with no PadD.
    let mut answer = Vec::with_capacity(14);
    answer.extend_from_slice(&VC);
    answer.extend_from_slice(&level.bit().to_be_bytes());
    answer.extend_from_slice(&0u16.to_be_bytes());
    ciphers.send.apply_keystream(&mut answer);
    received.send(&answer)?;
    let (stream, leftover) = received.into_parts();
    let stream = EncryptedStream::new(stream, level, ciphers.send, ciphers.receive, leftover);
    Ok((stream, info_hash, initial))
}

/// A pad of 0 to 512 random bytes: its length hides where the next part starts, so the
/// handshake has no fixed shape on the wire.
fn random_pad() -> Vec<u8> {
    let len = fastrand::usize(..=MAX_PAD);
    (0..len).map(|_| fastrand::u8(..)).collect()
}

/// The bytes received so far; the socket is read only when a step needs more.
struct Received<S> {
    stream: S,
    /// Every byte received in this part of the handshake; `buf[at..]` are not yet taken.
    buf: Vec<u8>,
    at: usize,
    deadline: Instant,
    /// What we are reading, for the error's evidence.
    stage: Stage,
}

impl<S: Read + Write> Received<S> {
    fn new(stream: S, already: Vec<u8>, deadline: Instant) -> Received<S> {
        Received {
            stream,
            buf: already,
            at: 0,
            deadline,
            stage: Stage::PublicKey,
        }
    }

    /// The stream back, with the bytes received past what the handshake took: the start
    /// of the payload.
    fn into_parts(self) -> (S, Vec<u8>) {
        let Received {
            stream,
            mut buf,
            at,
            ..
        } = self;
        buf.drain(..at);
        (stream, buf)
    }

    /// Sends one of our steps whole.
    fn send(&mut self, bytes: &[u8]) -> Result<(), MseError> {
        let received = self.buf.len();
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|source| match source.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => MseError::TimedOut {
                    stage: Stage::Sending,
                    received,
                },
                _ => MseError::Io {
                    stage: Stage::Sending,
                    source,
                },
            })
    }

    fn available(&self) -> usize {
        self.buf.len() - self.at
    }

    /// One read of up to [`READ_CHUNK`] bytes; at least one byte, or an error.
    fn read_more(&mut self) -> Result<(), MseError> {
        let received = self.buf.len();
        let slow = MseError::TimedOut {
            stage: self.stage,
            received,
        };
        if Instant::now() >= self.deadline {
            return Err(slow);
        }
        let mut chunk = [0u8; READ_CHUNK];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(MseError::Closed {
                stage: self.stage,
                received,
            }),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            // A signal, not the peer: read again (the deadline above still bounds this).
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(slow),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(MseError::Closed {
                stage: self.stage,
                received,
            }),
            Err(source) => Err(MseError::Io {
                stage: self.stage,
                source,
            }),
        }
    }

    /// The next `n` bytes, reading until they are here.
    fn take(&mut self, n: usize) -> Result<&[u8], MseError> {
        while self.available() < n {
            self.read_more()?;
        }
        let start = self.at;
        self.at += n;
        Ok(&self.buf[start..start + n])
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], MseError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn take_decrypted<const N: usize>(&mut self, cipher: &mut Rc4) -> Result<[u8; N], MseError> {
        let mut out = self.take_array::<N>()?;
        cipher.apply_keystream(&mut out);
        Ok(out)
    }

    /// PadC or PadD: at most 512 bytes, read through the cipher (to keep it in step) and
    /// dropped: the specification reserves its contents.
    fn skip_pad(
        &mut self,
        which: &'static str,
        len: u16,
        cipher: &mut Rc4,
    ) -> Result<(), MseError> {
        if usize::from(len) > MAX_PAD {
            return Err(MseError::PadTooLong { which, len });
        }
        let mut pad = self.take(usize::from(len))?.to_vec();
        cipher.apply_keystream(&mut pad);
        Ok(())
    }

    /// Skips a pad of unknown length (0–512 bytes) up to and including `pattern`, which must
    /// start within 512 bytes. Each read adds at least one byte, and every start offset is
    /// compared once, so the search ends after at most 512 + `pattern.len()` bytes.
    fn sync(&mut self, pattern: &[u8], what: &'static str) -> Result<(), MseError> {
        let mut next = 0; // the first start offset not yet compared
        loop {
            let window = &self.buf[self.at..];
            if let Some(last) = window.len().checked_sub(pattern.len()) {
                let last = last.min(MAX_PAD);
                if let Some(k) = (next..=last).find(|&k| &window[k..k + pattern.len()] == pattern) {
                    self.at += k + pattern.len();
                    return Ok(());
                }
                next = last + 1;
            }
            if next > MAX_PAD {
                return Err(MseError::NoSync {
                    what,
                    searched: MAX_PAD + pattern.len(),
                });
            }
            self.read_more()?;
        }
    }
}

#[cfg(test)]
mod dialling_key_tests {
    use super::*;

    #[test]
    fn the_dialling_side_never_sends_a_key_that_looks_like_a_plain_handshake() {
        // The first private keys 1, 2, … whose public key starts with 19, and one that does not.
        let from = |n: u32| KeyPair::from_private(&n.to_be_bytes());
        let nineteen = (1..).find(|&n| from(n).public()[0] == 19).unwrap();
        let other = (1..).find(|&n| from(n).public()[0] != 19).unwrap();
        let mut draws = [nineteen, nineteen, other].into_iter();
        let pair = dialling_key(|| from(draws.next().unwrap()));
        assert_eq!(pair.public(), from(other).public());
        assert_eq!(
            draws.next(),
            None,
            "both keys starting with 19 were drawn and refused"
        );
    }
}
