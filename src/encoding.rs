//! The byte encodings every layer of BitTorrent shares, each written once — walkthrough §2–§3.
//!
//! The same few ways of writing bytes turn up all over the protocol, so they live here, at the
//! bottom of the module map, where any module may use them:
//!
//! ```text
//!   hex        20 bytes ⇄ 40 digits        c0fda1ed…   info hashes in logs, magnet links, traces
//!   SHA-1      any bytes → 20 bytes                    info hash (§2), piece check (§9), BEP 6
//! ```
//!
//! SHA-1 is a digest, not an encoding, but it is the one function every layer calls on bytes
//! (the metainfo, the piece check, the torrent maker, the metadata fetcher), so it sits with
//! them rather than in a module of its own. Nothing here knows what the bytes mean.

use sha1::{Digest, Sha1};

/// SHA-1 of `bytes`: the one hash function of BitTorrent v1.
pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
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
}
