//! The two SHA-1 digests a v1 torrent is built on — walkthrough §2.
//!
//! - [`InfoHash`]: the SHA-1 of the bencoded `info` dictionary. It names the torrent
//!   everywhere: in tracker requests, in the peer handshake, in magnet links.
//! - [`PieceHash`]: the SHA-1 of one piece of the content, twenty bytes each, concatenated in
//!   the `pieces` string. A downloaded piece is kept only if its hash matches.
//!
//! Both print as 40 lowercase hex digits, in `Display` and in `Debug`, so a debugger shows
//! `InfoHash(c0fda1ed…)` rather than twenty decimal numbers.
//!
//! BitTorrent v2 (BEP 52, The BitTorrent Protocol Specification v2) names a torrent by the
//! SHA-256 of the same bytes instead: [`InfoHashV2`], 64 hex digits. Where only twenty bytes
//! fit (the peer handshake, tracker requests, the DHT), a v2-only torrent uses its first twenty
//! ([`InfoHashV2::truncated`]).

use crate::encoding::{sha1, to_hex};
use crate::merkle::Sha256Hash;
use std::fmt;

/// The SHA-1 of the `info` dictionary's bytes exactly as they appear in the `.torrent` file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InfoHash(pub [u8; 20]);

/// The SHA-256 of the `info` dictionary's bytes exactly as they appear in the `.torrent` file:
/// the identity of a v2 or hybrid torrent in the v2 swarm (BEP 52).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InfoHashV2(pub [u8; 32]);

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

impl InfoHashV2 {
    /// The v2 info hash of the raw bytes of an `info` dictionary.
    pub fn of(info_bytes: &[u8]) -> InfoHashV2 {
        InfoHashV2(Sha256Hash::of(info_bytes).0)
    }

    /// The first 20 bytes, which stand for the torrent wherever a v1-sized hash is expected:
    /// "For some uses as torrent identifier it is truncated to 20 bytes" (BEP 52).
    pub fn truncated(&self) -> InfoHash {
        let mut first = [0u8; 20];
        first.copy_from_slice(&self.0[..20]);
        InfoHash(first)
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl fmt::Display for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV2({})", self.to_hex())
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
        let v2 = InfoHashV2([0xcd; 32]);
        assert_eq!(v2.to_string(), "cd".repeat(32));
        assert_eq!(
            format!("{v2:?}"),
            format!("InfoHashV2({})", "cd".repeat(32))
        );
    }

    #[test]
    fn the_v2_info_hash_is_sha256_and_truncates_to_its_first_20_bytes() {
        let v2 = InfoHashV2::of(b"abc");
        assert_eq!(
            v2.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            v2.truncated().to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a3"
        );
    }
}
