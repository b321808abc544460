//! The two SHA-1 digests a v1 torrent is built on — walkthrough §2.
//!
//! - [`InfoHash`]: the SHA-1 of the bencoded `info` dictionary. It names the torrent
//!   everywhere: in tracker requests, in the peer handshake, in magnet links.
//! - [`PieceHash`]: the SHA-1 of one piece of the content, twenty bytes each, concatenated in
//!   the `pieces` string. A downloaded piece is kept only if its hash matches.
//!
//! Both print as 40 lowercase hex digits, in `Display` and in `Debug`, so a debugger shows
//! `InfoHash(c0fda1ed…)` rather than twenty decimal numbers.

use crate::encoding::{sha1, to_hex};
use std::fmt;

/// The SHA-1 of the `info` dictionary's bytes exactly as they appear in the `.torrent` file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InfoHash(pub [u8; 20]);

/// The expected SHA-1 of one piece.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceHash(pub [u8; 20]);

impl InfoHash {
    /// The info hash of the raw bytes of an `info` dictionary.
    pub fn of(info_bytes: &[u8]) -> InfoHash {
        InfoHash(sha1(info_bytes))
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl PieceHash {
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

impl fmt::Display for PieceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PieceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PieceHash({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_print_as_hex() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(h.to_string(), "ab".repeat(20));
        assert_eq!(format!("{h:?}"), format!("InfoHash({})", "ab".repeat(20)));
    }
}
