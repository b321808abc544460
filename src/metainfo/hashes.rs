//! The two SHA-1 digests a v1 torrent is built on — walkthrough §2.
//!
//! - [`InfoHash`]: the SHA-1 of the bencoded `info` dictionary. It names the torrent
//!   everywhere: in tracker requests, in the peer handshake, in magnet links.
//! - [`PieceHash`]: the SHA-1 of one piece of the content, twenty bytes each, concatenated in
//!   the `pieces` string. A downloaded piece is kept only if its hash matches.
//!
//! Both print as 40 lowercase hex digits, in `Display` and in `Debug`, so a debugger shows
//! `InfoHash(c0fda1ed…)` rather than twenty decimal numbers.

use sha1::{Digest, Sha1};
use std::fmt;

/// The SHA-1 of the `info` dictionary's bytes exactly as they appear in the `.torrent` file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InfoHash(pub [u8; 20]);

/// The expected SHA-1 of one piece.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceHash(pub [u8; 20]);

/// SHA-1 of `bytes`: the one hash function of BitTorrent v1.
pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

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

/// Lowercase hex of any bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Two hex digits (either case) → one byte: `b"4f"` → `0x4f`. Only digits count: not
/// `u8::from_str_radix`, which would also take `+f`.
pub fn hex_byte(pair: &[u8]) -> Option<u8> {
    let &[high, low] = pair else { return None };
    let high = char::from(high).to_digit(16)?;
    let low = char::from(low).to_digit(16)?;
    u8::try_from(high * 16 + low).ok()
}

/// Exactly `2 × N` hex digits → `N` bytes (the reverse of [`to_hex`]).
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        *byte = hex_byte(pair)?;
    }
    Some(out)
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
    fn hex_reads_back_what_to_hex_wrote_in_either_case() {
        let bytes = [0x00, 0x4f, 0xa0, 0xff];
        assert_eq!(from_hex::<4>(&to_hex(&bytes)), Some(bytes));
        assert_eq!(from_hex::<4>("004FA0FF"), Some(bytes));
        assert_eq!(hex_byte(b"4f"), Some(0x4f));
    }

    #[test]
    fn hex_refuses_signs_wrong_lengths_and_non_digits() {
        assert_eq!(hex_byte(b"+f"), None, "from_str_radix would take this");
        assert_eq!(hex_byte(b"4"), None);
        assert_eq!(hex_byte(b"4g"), None);
        assert_eq!(from_hex::<2>("4f4"), None);
        assert_eq!(from_hex::<2>("4f4f4f"), None);
        assert_eq!(from_hex::<2>("é4f"), None, "not ASCII");
    }

    #[test]
    fn sha1_of_a_known_string() {
        // The SHA-1 test vector from FIPS 180: "abc".
        assert_eq!(
            to_hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn hashes_print_as_hex() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(h.to_string(), "ab".repeat(20));
        assert_eq!(format!("{h:?}"), format!("InfoHash({})", "ab".repeat(20)));
    }
}
