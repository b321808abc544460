//! The byte encodings every layer of BitTorrent shares, each written once — walkthrough §2, §3.
//!
//! The same few ways of writing bytes turn up all over the protocol, so they live here, at the
//! bottom of the module map, where any module may use them:
//!
//! ```text
//!   hex       20 bytes ⇄ 40 digits     c0fda1ed…       info hashes in logs, magnets, traces
//!   SHA-1     any bytes → 20 bytes                     info hash (§2), piece check (§9)
//!   percent   bytes ⇄ URL text         %124Vx%9A       tracker queries (§3), magnets (§14)
//!   compact   peer ⇄ 6 or 18 bytes     7f000001 1ae1   tracker answers (§3), PEX (§14)
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
//!
//! **Compact peers** (BEP 23 "Tracker Returns Compact Peer Lists", BEP 7 for IPv6) are how
//! trackers (HTTP and UDP, BEP 15) and peer exchange (BEP 11 `ut_pex`) send addresses:
//!
//! ```text
//!   IPv4   6 bytes a peer:   a.b.c.d (4)  port (2, big-endian)
//!   IPv6  18 bytes a peer:   address (16) port (2, big-endian)
//!   127.0.0.1:6881  =  7f 00 00 01  1a e1
//! ```
//!
//! A tracker's list must be a whole number of entries ([`parse_compact_v4`] refuses anything
//! else: a tracker that sends 7 bytes is broken); a `ut_pex` message is read leniently, whole
//! entries only ([`compact_peers`]), since a peer's sloppiness harms no one. BEP 10's `yourip`
//! is the address half alone ([`ip_from_octets`]).
//!
//! **IPv4-mapped addresses** (RFC 4291, section 2.5.5.2) are how a dual-stack IPv6 socket
//! shows an IPv4 peer: `::ffff:127.0.0.1`. Addresses from sockets are turned back into IPv4
//! ([`canonical_addr`]), and a datagram for an IPv4 peer on such a socket goes to the mapped
//! form ([`addr_for_socket`]), so the rest of the program sees one name per peer.

use sha1::{Digest, Sha1};
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

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
    // [W3.1] Raw bytes, not text: every byte outside the unreserved set becomes `%XX`.
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

/// Bytes per compact IPv4 peer: 4 address + 2 port.
pub const COMPACT_V4_LEN: usize = 6;
/// Bytes per compact IPv6 peer: 16 address + 2 port.
pub const COMPACT_V6_LEN: usize = 18;

/// A compact peer list that is not a whole number of entries.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("compact peer list is {len} bytes, not a multiple of {entry}")]
pub struct CompactLengthError {
    /// The length of the list, in bytes.
    pub len: usize,
    /// The size of one entry: [`COMPACT_V4_LEN`] or [`COMPACT_V6_LEN`].
    pub entry: usize,
}

/// Decodes a compact IPv4 list (6 bytes a peer); a partial entry is an error.
pub fn parse_compact_v4(bytes: &[u8]) -> Result<Vec<SocketAddr>, CompactLengthError> {
    parse_whole(bytes, COMPACT_V4_LEN)
}

/// Decodes a compact IPv6 list (18 bytes a peer); a partial entry is an error.
pub fn parse_compact_v6(bytes: &[u8]) -> Result<Vec<SocketAddr>, CompactLengthError> {
    parse_whole(bytes, COMPACT_V6_LEN)
}

fn parse_whole(bytes: &[u8], entry: usize) -> Result<Vec<SocketAddr>, CompactLengthError> {
    if !bytes.len().is_multiple_of(entry) {
        let len = bytes.len();
        return Err(CompactLengthError { len, entry });
    }
    Ok(compact_peers(bytes, entry).collect())
}

/// The peers in every whole entry of `entry_len` bytes ([`COMPACT_V4_LEN`] or
/// [`COMPACT_V6_LEN`]); a partial entry at the end is ignored.
pub fn compact_peers(bytes: &[u8], entry_len: usize) -> impl Iterator<Item = SocketAddr> + '_ {
    bytes.chunks_exact(entry_len).filter_map(compact_peer)
}

/// One compact entry: the address (4 or 16 bytes), then the port (2 bytes, big-endian).
/// `None` for any other length.
pub fn compact_peer(entry: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = entry.split_at_checked(entry.len().checked_sub(2)?)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    Some(SocketAddr::new(ip_from_octets(ip)?, port))
}

/// Encodes the IPv4 peers in compact form; IPv6 peers are left out (they go in
/// [`encode_compact_v6`]: a tracker sends them as `peers6`, PEX as `added6`).
pub fn encode_compact_v4<'a>(peers: impl IntoIterator<Item = &'a SocketAddr>) -> Vec<u8> {
    let v4 = peers.into_iter().filter(|peer| peer.is_ipv4());
    encode_compact(v4)
}

/// Encodes the IPv6 peers in compact form; IPv4 peers are left out.
pub fn encode_compact_v6<'a>(peers: impl IntoIterator<Item = &'a SocketAddr>) -> Vec<u8> {
    let v6 = peers.into_iter().filter(|peer| peer.is_ipv6());
    encode_compact(v6)
}

/// Compact entries for addresses of one family (the caller has picked them).
fn encode_compact<'a>(peers: impl Iterator<Item = &'a SocketAddr>) -> Vec<u8> {
    let mut out = Vec::new();
    for peer in peers {
        out.extend_from_slice(&ip_octets(peer.ip()));
        out.extend_from_slice(&peer.port().to_be_bytes());
    }
    out
}

/// An address in compact form: 4 bytes are IPv4, 16 bytes IPv6, anything else is not one.
pub fn ip_from_octets(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

/// The compact form of an address: its 4 or 16 bytes, in network order.
pub fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The address as its family says it: an IPv4 peer that reached a dual-stack socket (`[::]`
/// with `IPV6_V6ONLY` off) shows up as `::ffff:a.b.c.d` (RFC 4291, "IPv4-Mapped IPv6
/// Address"), and is turned back into `a.b.c.d`. Every address that enters the program from a
/// socket goes through here, so one peer has one name: in bans, in duplicates, in PEX.
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Where to send a datagram for `to` on a socket of the family `socket_is_v6` says: a
/// dual-stack IPv6 socket reaches an IPv4 peer only at its mapped address (the system refuses
/// a plain IPv4 one); anything else is left as it is (an IPv4 socket cannot reach IPv6 at all,
/// and the send then fails with the system's reason).
pub fn addr_for_socket(to: SocketAddr, socket_is_v6: bool) -> SocketAddr {
    match to {
        SocketAddr::V4(v4) if socket_is_v6 => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        other => other,
    }
}

/// 160 bits nobody can predict: from the operating system's random source when it can be
/// read, mixed with std's randomly keyed hasher and `fastrand` through SHA-1. `fastrand` alone
/// is predictable from its other outputs. For secrets: MSE's private key (a guessed one would
/// let an onlooker decrypt the stream) and the DHT's token secret (a guessed one would let
/// anyone announce any address).
pub fn unpredictable_20() -> [u8; 20] {
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read;
    let mut seed = Vec::with_capacity(96);
    let mut os = [0u8; 32];
    // On systems without /dev/urandom the two other sources still go in.
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut os))
        .is_ok()
    {
        seed.extend_from_slice(&os);
    }
    for i in 0..4u64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(i);
        seed.extend_from_slice(&hasher.finish().to_le_bytes());
    }
    seed.extend((0..32).map(|_| fastrand::u8(..)));
    sha1(&seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpredictable_bytes_differ_every_time() {
        let (a, b) = (unpredictable_20(), unpredictable_20());
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 20]);
    }

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

    #[test]
    fn compact_v4_round_trip() {
        // 127.0.0.1:6881 = 7f 00 00 01 | 1a e1
        let bytes = [0x7f, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80];
        let peers = parse_compact_v4(&bytes).unwrap();
        assert_eq!(
            peers,
            [
                "127.0.0.1:6881".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap()
            ]
        );
        assert_eq!(encode_compact_v4(&peers), bytes);
    }

    #[test]
    fn compact_v6_round_trip() {
        let peers: Vec<SocketAddr> = vec!["[::1]:51413".parse().unwrap()];
        let bytes = encode_compact_v6(&peers);
        assert_eq!(bytes.len(), 18);
        assert_eq!(parse_compact_v6(&bytes).unwrap(), peers);
    }

    #[test]
    fn each_encoder_keeps_its_own_family() {
        let peers: Vec<SocketAddr> =
            vec!["[::1]:1".parse().unwrap(), "10.0.0.2:80".parse().unwrap()];
        assert_eq!(encode_compact_v4(&peers), [10, 0, 0, 2, 0, 80]);
        assert_eq!(encode_compact_v6(&peers).len(), COMPACT_V6_LEN);
    }

    #[test]
    fn a_ragged_compact_list_is_an_error() {
        assert_eq!(
            parse_compact_v4(&[1, 2, 3, 4, 5, 6, 7]),
            Err(CompactLengthError { len: 7, entry: 6 })
        );
        assert!(parse_compact_v6(&[0; 20]).is_err());
        let message = CompactLengthError { len: 7, entry: 6 }.to_string();
        assert_eq!(message, "compact peer list is 7 bytes, not a multiple of 6");
    }

    #[test]
    fn a_mapped_address_is_its_ipv4_self_and_back() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:6881".parse().unwrap();
        let plain: SocketAddr = "127.0.0.1:6881".parse().unwrap();
        assert_eq!(canonical_addr(mapped), plain);
        assert_eq!(addr_for_socket(plain, true), mapped);
        assert_eq!(
            addr_for_socket(plain, false),
            plain,
            "an IPv4 socket: as it is"
        );
        let v6: SocketAddr = "[::1]:6881".parse().unwrap();
        assert_eq!(canonical_addr(v6), v6, "a real IPv6 address stays");
        assert_eq!(addr_for_socket(v6, true), v6);
    }

    #[test]
    fn a_peers6_list_that_is_not_whole_entries_is_an_error_at_every_length() {
        // 1..=17 bytes and 19..=35: never a whole number of 18-byte entries.
        for len in (1..36).filter(|len| len % COMPACT_V6_LEN != 0) {
            let error = parse_compact_v6(&vec![0xab; len]).unwrap_err();
            assert_eq!(error, CompactLengthError { len, entry: 18 });
        }
        assert_eq!(
            parse_compact_v6(&[]).unwrap(),
            [],
            "empty is no peers, not an error"
        );
        let message = CompactLengthError { len: 20, entry: 18 }.to_string();
        assert_eq!(
            message,
            "compact peer list is 20 bytes, not a multiple of 18"
        );
    }

    #[test]
    fn compact_v6_bytes_on_the_wire() {
        // [2001:db8::1]:6881 = 20 01 0d b8 00 .. 00 01 | 1a e1
        let mut bytes = vec![0x20, 0x01, 0x0d, 0xb8];
        bytes.extend_from_slice(&[0; 11]);
        bytes.extend_from_slice(&[0x01, 0x1a, 0xe1]);
        let peer: SocketAddr = "[2001:db8::1]:6881".parse().unwrap();
        assert_eq!(parse_compact_v6(&bytes).unwrap(), [peer]);
        assert_eq!(encode_compact_v6(&[peer]), bytes);
    }

    #[test]
    fn read_leniently_a_partial_entry_is_ignored() {
        // One whole entry, 10.0.0.2:6881, and 3 stray bytes.
        let bytes = [10, 0, 0, 2, 0x1a, 0xe1, 10, 0, 0];
        let peers: Vec<SocketAddr> = compact_peers(&bytes, COMPACT_V4_LEN).collect();
        assert_eq!(peers, ["10.0.0.2:6881".parse().unwrap()]);
        assert_eq!(compact_peer(&[1, 2, 3]), None, "not 6 or 18 bytes");
    }
}
