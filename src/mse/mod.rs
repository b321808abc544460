//! Message Stream Encryption (MSE, also called Protocol Encryption, PE): an obfuscated
//! handshake under the peer protocol, and an RC4 stream after it — walkthrough §16.
//!
//! MSE has no BEP: it is the "Message Stream Encryption" specification that Azureus (Vuze)
//! published and libtorrent, Transmission and aria2 follow. It sits *under* the BitTorrent
//! handshake (BEP 3, "The BitTorrent Protocol Specification"): the bytes the peer connection
//! writes and reads go through an [`EncryptedStream`] instead of the bare socket.
//!
//! ```text
//!  A (dials)                                              B (accepts)
//!  1  Ya, PadA                                  ─────►    Ya: 96 bytes, PadA: 0–512 random
//!  2                                            ◄─────    Yb, PadB
//!       both now know S = Yb^Xa = Ya^Xb (mod P), 96 bytes
//!  3  HASH('req1',S), HASH('req2',SKEY) ⊕ HASH('req3',S),
//!     RC4a(VC, crypto_provide, len PadC, PadC, len IA), RC4a(IA)  ─────►
//!  4                  ◄─────  RC4b(VC, crypto_select, len PadD, PadD), then the payload
//!  5  the payload, RC4 both ways or plain, as crypto_select said
//! ```
//!
//! `SKEY` is the torrent's info hash: B learns which torrent A wants from the `req2` hash
//! without the info hash crossing the wire. `RC4a` uses keyA = HASH('keyA', S, SKEY), `RC4b`
//! keyB = HASH('keyB', S, SKEY); each drops its first 1024 bytes of keystream. `VC` is eight
//! zero bytes: decrypted right, it proves both sides hold the same key. `IA`, the initial
//! payload, carries A's BitTorrent handshake, saving a round trip.
//!
//! What this buys is *obfuscation*, not security: nobody is authenticated, and anyone who
//! knows the info hash can read the stream. It gets a client past networks that drop
//! recognisable BitTorrent traffic, and past peers that refuse plain connections (libtorrent
//! and aria2 dial encrypted first).
//!
//! The files: `dh.rs` (the Diffie-Hellman numbers), `keys.rs` (the hashes and the RC4 keys),
//! `handshake.rs` (steps 1–4, both sides, every read bounded), `stream.rs` (step 5); the tests
//! run both sides over 127.0.0.1 (`tests.rs`) and one side written by hand against the other
//! (`hostile_tests.rs`).

mod dh;
mod handshake;
#[cfg(test)]
mod hostile_tests;
mod keys;
mod stream;
#[cfg(test)]
mod tests;

pub use handshake::{accept, initiate};
pub use stream::EncryptedStream;

use std::fmt;
use thiserror::Error;

/// The longest a PadA, PadB, PadC or PadD may be (the specification's limit).
pub const MAX_PAD: usize = 512;

/// `crypto_provide` / `crypto_select` bit: the payload goes in plain text after the handshake.
pub const CRYPTO_PLAINTEXT: u32 = 0x01;
/// `crypto_provide` / `crypto_select` bit: the payload goes through RC4.
pub const CRYPTO_RC4: u32 = 0x02;

/// What the handshake settled on for the payload (the handshake itself is always RC4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoLevel {
    /// Only the handshake was obfuscated; the peer protocol's bytes go in the clear.
    Plaintext,
    /// Every byte of the payload goes through RC4, both ways.
    Rc4,
}

impl CryptoLevel {
    /// Its bit in `crypto_provide` / `crypto_select`.
    pub fn bit(self) -> u32 {
        match self {
            CryptoLevel::Plaintext => CRYPTO_PLAINTEXT,
            CryptoLevel::Rc4 => CRYPTO_RC4,
        }
    }
}

/// Which payload encryption we offer (dialling) or pick (accepting). Whether to speak MSE at
/// all is the caller's choice: "off" means not calling [`initiate`] or [`accept`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// RC4 only: a peer that offers nothing else is refused (libtorrent's `pe_forced` with
    /// `allowed_enc_level` RC4, aria2's `--bt-min-crypto-level=arc4`).
    Rc4Only,
    /// Both offered; RC4 picked whenever the other side offers it.
    PreferRc4,
    /// Both offered; plain text picked whenever the other side offers it: the handshake is
    /// hidden, the payload costs no cipher.
    PreferPlaintext,
    /// Plain text only, after the obfuscated handshake.
    PlaintextOnly,
}

impl Policy {
    /// Our `crypto_provide` field: the levels we accept.
    pub fn provide(self) -> u32 {
        match self {
            Policy::Rc4Only => CRYPTO_RC4,
            Policy::PlaintextOnly => CRYPTO_PLAINTEXT,
            Policy::PreferRc4 | Policy::PreferPlaintext => CRYPTO_RC4 | CRYPTO_PLAINTEXT,
        }
    }

    /// The level we pick from the other side's `crypto_provide`, or `None` when it offers
    /// nothing we accept. Unknown bits (future methods) are ignored.
    pub fn select(self, provided: u32) -> Option<CryptoLevel> {
        let order = match self {
            Policy::Rc4Only => &[CryptoLevel::Rc4][..],
            Policy::PlaintextOnly => &[CryptoLevel::Plaintext][..],
            Policy::PreferRc4 => &[CryptoLevel::Rc4, CryptoLevel::Plaintext][..],
            Policy::PreferPlaintext => &[CryptoLevel::Plaintext, CryptoLevel::Rc4][..],
        };
        order
            .iter()
            .copied()
            .find(|level| provided & level.bit() != 0)
    }
}

/// Where in the handshake something went wrong (for the error's evidence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Steps 1–2: the other side's 96-byte public key.
    PublicKey,
    /// Step 3 (B): looking for HASH('req1', S) past PadA.
    SyncReq1,
    /// Step 3 (B): HASH('req2', SKEY) ⊕ HASH('req3', S).
    Skey,
    /// Step 4 (A): looking for RC4b(VC) past PadB.
    SyncVc,
    /// Step 3 (B): VC, crypto_provide, PadC.
    Provide,
    /// Step 3 (B): len(IA) and IA.
    InitialPayload,
    /// Step 4 (A): crypto_select, PadD.
    Select,
    /// Sending one of our steps.
    Sending,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::PublicKey => "the public key",
            Stage::SyncReq1 => "PadA and the req1 hash",
            Stage::Skey => "the req2/req3 hash",
            Stage::SyncVc => "PadB and the verification constant",
            Stage::Provide => "crypto_provide and PadC",
            Stage::InitialPayload => "the initial payload",
            Stage::Select => "crypto_select and PadD",
            Stage::Sending => "sending our side",
        })
    }
}

/// Why an MSE handshake failed, with what the peer sent.
#[derive(Debug, Error)]
pub enum MseError {
    /// A public key of 0, 1, P − 1 or P and above: no real Diffie-Hellman key is one of
    /// these, and some force a shared secret anyone can guess.
    #[error("not a Diffie-Hellman public key (starts {0})")]
    BadPublicKey(String),
    /// The other side's pad went on past 512 bytes without the expected bytes: it is not
    /// speaking MSE, or it has another key (a different S, or a different torrent).
    #[error("{what} not found within {searched} bytes after the public key")]
    NoSync { what: &'static str, searched: usize },
    /// The verification constant decrypted to something other than eight zero bytes.
    #[error("wrong verification constant {0} (expected eight zero bytes)")]
    WrongVc(String),
    /// A PadC or PadD length over 512.
    #[error("{which} of {len} bytes (at most {MAX_PAD})")]
    PadTooLong { which: &'static str, len: u16 },
    /// The other side offered no payload encryption our policy accepts.
    #[error("crypto_provide {provided:#x}: nothing acceptable under {policy:?}")]
    NothingAcceptable { provided: u32, policy: Policy },
    /// crypto_select is not exactly one of the levels we offered.
    #[error("crypto_select {selected:#x}, but we offered {provided:#x}")]
    BadSelect { selected: u32, provided: u32 },
    /// The req2 hash names none of our torrents.
    #[error("the peer asks for a torrent we do not serve (req2 hash {0})")]
    UnknownInfoHash(String),
    /// The other side closed the connection mid-handshake.
    #[error("the peer closed the connection during {stage} ({received} bytes received)")]
    Closed { stage: Stage, received: usize },
    /// The handshake's deadline passed, or a read waited out the socket's timeout.
    #[error("the peer was too slow: no end to {stage} in time ({received} bytes received)")]
    TimedOut { stage: Stage, received: usize },
    /// Our own initial payload does not fit its 16-bit length (a caller's mistake).
    #[error("an initial payload of {0} bytes (at most 65,535)")]
    InitialTooLong(usize),
    /// The socket failed.
    #[error("during {stage}: {source}")]
    Io {
        stage: Stage,
        #[source]
        source: std::io::Error,
    },
}
