//! The byte encodings every layer of BitTorrent shares, each written once — walkthrough §2–§3.
//!
//! The same few ways of writing bytes turn up all over the protocol, so they live here, at the
//! bottom of the module map, where any module may use them:
//!
//! ```text
//!   hex        20 bytes ⇄ 40 digits        c0fda1ed…   info hashes in logs, magnet links, traces
//!   SHA-1      any bytes → 20 bytes                    info hash (§2), piece check (§9), BEP 6
//!   percent    bytes ⇄ URL text            %12%34Vx    tracker queries (§3), magnet links (§14)
//! ```
//!
//! SHA-1 is a digest, not an encoding, but it is the one function every layer calls on bytes
//! (the metainfo, the piece check, the torrent maker, the metadata fetcher), so it sits with
//! them rather than in a module of its own. Nothing here knows what the bytes mean.
//!
//! **Percent-encoding** (RFC 3986, section 2.1) is how a URL carries bytes: every byte outside
//! the *unreserved* set `A-Z a-z 0-9 - . _ ~` is written `%XX`. BitTorrent puts raw binary in
//! URLs (the 20 bytes of `info_hash` and `peer_id` in an announce, BEP 3), so decoding gives
//! bytes, not text. Its users disagree on two points, and [`percent_decode`] lets each choose:
//! - `+`: a space in HTML form encoding (a magnet link's `dn`), a plain `+` everywhere else
//!   ([`Plus`]);
//! - a `%` without two hex digits after it: the built-in tracker keeps it as a literal `%`,
//!   a magnet link's `xt` refuses it with the offset of the `%`
//!   ([`PercentDecoded::bad_escape`]). To point at the offending character of the text, every
//!   decoded byte remembers where it was written ([`PercentDecoded::written_at`]).

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

/// Every byte outside `A-Z a-z 0-9 - . _ ~` (RFC 3986 "unreserved") as `%XX`, upper-case.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Bytes as URL text: the parts that are UTF-8 as they are, every other byte as `%XX`. A URL
/// cannot carry the byte 0xE9 any other way, so this is what a server must receive;
/// `String::from_utf8_lossy` would turn it into U+FFFD, sent as `%EF%BF%BD`.
pub fn utf8_or_escaped(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        // Bytes that are not UTF-8 are all 0x80 or above: none is unreserved, all are escaped.
        text.push_str(&percent_encode(chunk.invalid()));
    }
    text
}

/// What `+` means in a percent-encoded value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plus {
    /// A space: HTML form encoding, as sites write a magnet link's `dn`.
    Space,
    /// Just `+`: URLs, tracker queries (a `+` byte in an info hash must stay a `+`).
    Literal,
}

/// A value after percent-decoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PercentDecoded {
    /// The decoded bytes: `%61` and `a` both give `a`, `%FF` the byte 0xFF.
    pub bytes: Vec<u8>,
    /// `written_at[i]`: the byte offset in the text of the character that gave `bytes[i]` (the
    /// `%` of an escape), so an error about a decoded byte can point at what was written.
    pub written_at: Vec<usize>,
    /// The byte offset of the first `%` not followed by two hex digits (`%ZZ`, a trailing
    /// `%3`), if any. Such a `%` is kept in `bytes` as a literal `%`; a caller that cannot
    /// accept it refuses the value.
    pub bad_escape: Option<usize>,
}

/// Undoes `%XX` escapes (hex digits in either case), and `+` as `plus` says. Never fails: a
/// broken escape is kept as written and noted in [`PercentDecoded::bad_escape`].
pub fn percent_decode(text: &str, plus: Plus) -> PercentDecoded {
    let mut decoded = PercentDecoded {
        bytes: Vec::with_capacity(text.len()),
        written_at: Vec::with_capacity(text.len()),
        bad_escape: None,
    };
    let mut characters = text.char_indices();
    while let Some((i, character)) = characters.next() {
        let escaped = match character {
            '%' => text.as_bytes().get(i + 1..i + 3).and_then(hex_byte),
            _ => None,
        };
        match (character, escaped) {
            ('%', Some(byte)) => {
                decoded.bytes.push(byte);
                decoded.written_at.push(i);
                characters.nth(1); // the two hex digits, ASCII: one character each
            }
            ('%', None) => {
                decoded.bad_escape.get_or_insert(i);
                decoded.bytes.push(b'%');
                decoded.written_at.push(i);
            }
            ('+', _) if plus == Plus::Space => {
                decoded.bytes.push(b' ');
                decoded.written_at.push(i);
            }
            _ => {
                let mut buffer = [0u8; 4];
                for &byte in character.encode_utf8(&mut buffer).as_bytes() {
                    decoded.bytes.push(byte);
                    decoded.written_at.push(i);
                }
            }
        }
    }
    decoded
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
    fn every_non_unreserved_byte_is_escaped() {
        assert_eq!(percent_encode(b"a-Z._~09"), "a-Z._~09");
        assert_eq!(percent_encode(b" +/%\x00\xff"), "%20%2B%2F%25%00%FF");
        assert_eq!(
            percent_encode("é".as_bytes()),
            "%C3%A9",
            "UTF-8, byte by byte"
        );
    }

    #[test]
    fn percent_decoding_gives_raw_bytes() {
        // %00 is a NUL byte, %ff a byte no UTF-8 text can hold; '+' stays '+'.
        let bytes = |text| percent_decode(text, Plus::Literal).bytes;
        assert_eq!(bytes("%00%ffA%2b+"), [0, 0xff, b'A', b'+', b'+']);
        assert_eq!(bytes("%C3%a9"), [0xc3, 0xa9], "either case of hex");
        assert_eq!(bytes("é"), [0xc3, 0xa9], "text as its UTF-8 bytes");
        assert_eq!(bytes(""), b"");
        assert_eq!(percent_decode("a+b", Plus::Space).bytes, b"a b");
    }

    #[test]
    fn a_broken_escape_is_kept_and_its_first_offset_noted() {
        let decoded = percent_decode("100%zz", Plus::Literal);
        assert_eq!(decoded.bytes, b"100%zz", "not hex: kept");
        assert_eq!(decoded.bad_escape, Some(3));
        let decoded = percent_decode("%+f%4", Plus::Literal);
        assert_eq!(decoded.bytes, b"%+f%4", "a sign is not a digit; %4 is cut");
        assert_eq!(decoded.bad_escape, Some(0), "the first of two");
        let decoded = percent_decode("%%41", Plus::Literal);
        assert_eq!(
            (decoded.bytes, decoded.bad_escape),
            (b"%A".to_vec(), Some(0))
        );
        let decoded = percent_decode("é%", Plus::Literal);
        assert_eq!(decoded.bad_escape, Some(2), "a byte offset: é is two bytes");
        assert_eq!(percent_decode("%41", Plus::Literal).bad_escape, None);
    }

    #[test]
    fn each_decoded_byte_remembers_where_it_was_written() {
        // a  %62  é (2 bytes)  +
        // 0  1    4            6
        let decoded = percent_decode("a%62é+", Plus::Space);
        assert_eq!(decoded.bytes, b"ab\xc3\xa9 ");
        assert_eq!(decoded.written_at, [0, 1, 4, 4, 6]);
    }

    #[test]
    fn bytes_that_are_not_utf8_stay_escaped() {
        assert_eq!(utf8_or_escaped(b"caf\xe9/x"), "caf%E9/x");
        assert_eq!(utf8_or_escaped("é".as_bytes()), "é", "UTF-8 is decoded");
        assert_eq!(utf8_or_escaped(b"\xff\xfeab\xc3\xa9\x80"), "%FF%FEabé%80");
    }
}
