//! # The peer wire protocol, without sockets (BEP 3 "peer protocol") — walkthrough §4–§6, §13
//!
//! Peers talk over TCP: a 68-byte [`handshake`] each way, then length-prefixed [`message`]s
//! in both directions for as long as the connection lasts. A [`bitfield`] says which pieces a
//! peer has; [`extension`] is the payload of the extension protocol's messages (BEP 10: the
//! extended handshake; BEP 9 `ut_metadata`; BEP 11 `ut_pex`); [`hashes`] is the header of
//! BitTorrent v2's hash messages (BEP 52 `hash request`, `hashes`, `hash reject`). This module
//! only turns bytes into values and back, over any `Read`/`Write`: tests feed it byte slices,
//! and the peer threads feed it TCP streams. It knows nothing of threads, sockets or time. [`crate::trace`] writes
//! the `--trace` lines and reads them back into handshakes and messages
//! (`docs/wire-format.md`).

pub mod bitfield;
pub mod extension;
pub mod handshake;
pub mod hashes;
pub mod message;

pub use bitfield::Bitfield;
pub use handshake::Handshake;
pub use message::Message;

use thiserror::Error;

/// Something a peer sent that breaks the protocol, or the connection failing.
#[derive(Debug, Error)]
pub enum WireError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a BitTorrent handshake: {0}")]
    BadProtocol(String),
    #[error("message length {length} is over the limit of {max} bytes")]
    MessageTooLong { length: u32, max: u32 },
    #[error("message id {id} has a {length}-byte payload, expected {expected}")]
    BadLength { id: u8, length: u32, expected: u32 },
    #[error("bitfield of {length} bytes, expected {expected}")]
    BitfieldLength { length: usize, expected: usize },
    #[error("bitfield has spare bits set past the last piece")]
    BitfieldSpareBits,
    #[error(transparent)]
    Hashes(#[from] hashes::HashesError),
}
