//! The LSD announce's bytes (BEP 14, "Local Service Discovery"): build ours, parse a
//! neighbour's — walkthrough §20. No sockets here.
//!
//! ```text
//!   BT-SEARCH * HTTP/1.1\r\n
//!   Host: 239.192.152.143:6771\r\n      the group it is sent to (read, never checked)
//!   Port: 51413\r\n                     the sender's BitTorrent listen port, decimal
//!   Infohash: 1e2c…(40 hex digits)\r\n  one line per torrent (one or more)
//!   cookie: 5f3a9c01\r\n                optional: lets a sender spot its own packets
//!   \r\n
//!   \r\n
//! ```
//!
//! It arrives on a multicast group anyone on the network can send to, so [`Announce::parse`]
//! takes any bytes: it never panics, reads at most [`MAX_PACKET`] bytes, keeps at most
//! [`MAX_INFOHASHES`] info hashes, and copies out at most a few dozen bytes of evidence when
//! it refuses a packet. The sender's address is not in the packet: the thread takes it from
//! the datagram's source (`src/lsd/thread.rs`).

use crate::encoding::from_hex;
use crate::metainfo::InfoHash;
use thiserror::Error;

/// BEP 14's IPv4 group (org-local scope) and port: where every announce goes.
pub const GROUP: std::net::SocketAddrV4 =
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(239, 192, 152, 143), 6771);

/// The longest announce we read. BEP 14 asks senders to stay under 1,400 bytes so that a
/// packet is never fragmented; a datagram longer than one Ethernet frame is not an announce.
pub const MAX_PACKET: usize = 1_500;

/// Info hashes kept from one announce. A packet of [`MAX_PACKET`] bytes holds at most 29;
/// we keep fewer, since all we look for in them is our own one or two.
pub const MAX_INFOHASHES: usize = 24;

/// Evidence copied out of a refused packet: enough to recognise it in a log, no more.
const EVIDENCE: usize = 40;

/// One announce: "I am in these swarms, dial me on this port".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The sender's BitTorrent listen port (never 0).
    pub port: u16,
    /// The swarms it is in, in packet order.
    pub info_hashes: Vec<InfoHash>,
    /// Opaque to everyone but its sender, who drops its own packets by it (multicast
    /// loopback hands them back).
    pub cookie: Option<String>,
}

/// Why a datagram on the LSD group is not an announce we can use.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("{0} bytes: longer than any announce ({MAX_PACKET} at most)")]
    TooLong(usize),
    #[error("not a BT-SEARCH request: the first line is {0:?}")]
    NotBtSearch(String),
    #[error("header line {line} has no `:` ({text:?})")]
    BadHeaderLine { line: usize, text: String },
    #[error("the headers never end (no empty line)")]
    Unterminated,
    #[error("no Port header")]
    NoPort,
    #[error("two Port headers ({0:?} and {1:?})")]
    TwoPorts(String, String),
    #[error("Port {0:?} is not a port number from 1 to 65535")]
    BadPort(String),
    #[error("no Infohash header with 40 hex digits (the first one read {0:?})")]
    NoInfohash(Option<String>),
}

/// The first bytes of `text` as text, for an error message: bounded, and readable whatever
/// the bytes were.
fn evidence(text: &[u8]) -> String {
    let cut = &text[..text.len().min(EVIDENCE)];
    String::from_utf8_lossy(cut).into_owned()
}

impl Announce {
    /// Our announce for one torrent. One info hash per packet: BEP 14 allows several, but
    /// says older implementations read only the first, and a single one keeps the packet
    /// far under the 200 bytes some clients accept at most. [W20.1]
    pub fn for_torrent(info_hash: InfoHash, port: u16, cookie: &str) -> Announce {
        Announce {
            port,
            info_hashes: vec![info_hash],
            cookie: Some(cookie.to_string()),
        }
    }

    /// The packet's bytes, in BEP 14's order; the hashes in lower-case hex, as libtorrent
    /// writes them (every parser we know reads either case).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: {GROUP}\r\nPort: {}\r\n",
            self.port
        );
        for info_hash in &self.info_hashes {
            text.push_str(&format!("Infohash: {}\r\n", info_hash.to_hex()));
        }
        if let Some(cookie) = &self.cookie {
            text.push_str(&format!("cookie: {cookie}\r\n"));
        }
        // The end of the headers, then the empty body's line: BEP 14 shows both, and an
        // older parser (Transmission 3) refuses a packet without the second.
        text.push_str("\r\n\r\n");
        text.into_bytes()
    }

    /// Reads a datagram from the group. Header names in any case, as in HTTP; headers we do
    /// not know are skipped (BEP 14: forwards compatibility); an `Infohash` that is not 40 hex
    /// digits is skipped too, as libtorrent does, as long as one good one remains. [W20.2]
    pub fn parse(bytes: &[u8]) -> Result<Announce, PacketError> {
        if bytes.len() > MAX_PACKET {
            return Err(PacketError::TooLong(bytes.len()));
        }
        // Lines end in CRLF; a bare LF is taken too, since nothing is gained by refusing it.
        // Bytes after the last line end are no line: the headers must end before them.
        let mut lines = bytes
            .split_inclusive(|&b| b == b'\n')
            .map_while(|line| line.strip_suffix(b"\n"))
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
        if !lines.next().is_some_and(is_request_line) {
            let shown = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
            let shown = shown.strip_suffix(b"\r").unwrap_or(shown);
            return Err(PacketError::NotBtSearch(evidence(shown)));
        }
        let mut port: Option<&[u8]> = None;
        let mut hashes = Vec::new();
        let mut first_hash: Option<&[u8]> = None;
        let mut cookie = None;
        let mut ended = false;
        for (index, line) in lines.enumerate() {
            if line.is_empty() {
                ended = true;
                break;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(PacketError::BadHeaderLine {
                    line: index + 2,
                    text: evidence(line),
                });
            };
            let name = &line[..colon];
            let value = line[colon + 1..].trim_ascii();
            if name.eq_ignore_ascii_case(b"port") {
                if let Some(earlier) = port {
                    // Two ports: which one would the sender answer on? Neither is safe to dial.
                    return Err(PacketError::TwoPorts(evidence(earlier), evidence(value)));
                }
                port = Some(value);
            } else if name.eq_ignore_ascii_case(b"infohash") {
                first_hash.get_or_insert(value);
                let parsed = std::str::from_utf8(value).ok().and_then(from_hex::<20>);
                if let Some(hash) = parsed.filter(|_| hashes.len() < MAX_INFOHASHES) {
                    hashes.push(InfoHash(hash));
                }
            } else if name.eq_ignore_ascii_case(b"cookie") {
                cookie = Some(evidence(value));
            }
        }
        if !ended {
            return Err(PacketError::Unterminated);
        }
        let port = parse_port(port.ok_or(PacketError::NoPort)?)?;
        if hashes.is_empty() {
            return Err(PacketError::NoInfohash(first_hash.map(evidence)));
        }
        Ok(Announce {
            port,
            info_hashes: hashes,
            cookie,
        })
    }
}

/// `BT-SEARCH * HTTP/1.x`, the method in any case (libtorrent lower-cases it before it
/// compares).
fn is_request_line(line: &[u8]) -> bool {
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    method.eq_ignore_ascii_case(b"BT-SEARCH") && target == b"*" && version.starts_with(b"HTTP/1.")
}

/// Decimal digits only, 1 to 65535: not `u16::from_str`, which would also take `+80`.
fn parse_port(value: &[u8]) -> Result<u16, PacketError> {
    let bad = || PacketError::BadPort(evidence(value));
    if value.is_empty() || value.len() > 5 || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let number = value
        .iter()
        .fold(0u32, |n, &digit| n * 10 + u32::from(digit - b'0'));
    match u16::try_from(number) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: InfoHash = InfoHash([0xab; 20]);

    fn text(lines: &[&str]) -> Vec<u8> {
        lines
            .iter()
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn our_announce_is_bep_14s_layout_byte_for_byte() {
        let packet = Announce::for_torrent(HASH, 51413, "5f3a9c01").to_bytes();
        let expected = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\n\
             Infohash: {}\r\ncookie: 5f3a9c01\r\n\r\n\r\n",
            "ab".repeat(20)
        );
        assert_eq!(String::from_utf8(packet.clone()).unwrap(), expected);
        assert!(packet.len() < 200, "{} bytes", packet.len());
    }

    #[test]
    fn our_announce_parses_back() {
        let ours = Announce::for_torrent(HASH, 6881, "c0ffee");
        assert_eq!(Announce::parse(&ours.to_bytes()), Ok(ours));
    }

    #[test]
    fn libtorrents_and_transmissions_announces_parse() {
        // libtorrent: lower-case hex, a hex cookie. Transmission 3: upper-case hex, no cookie.
        let lt = text(&[
            "BT-SEARCH * HTTP/1.1",
            "Host: 239.192.152.143:6771",
            "Port: 6881",
            &format!("Infohash: {}", "0f".repeat(20)),
            "cookie: 1a2b3c4d",
            "",
            "",
        ]);
        let parsed = Announce::parse(&lt).unwrap();
        assert_eq!(parsed.port, 6881);
        assert_eq!(parsed.info_hashes, vec![InfoHash([0x0f; 20])]);
        assert_eq!(parsed.cookie.as_deref(), Some("1a2b3c4d"));
        let tr = text(&[
            "BT-SEARCH * HTTP/1.1",
            "Host: 239.192.152.143:6771",
            "Port: 51413",
            &format!("Infohash: {}", "AB".repeat(20)),
            "",
            "",
        ]);
        let parsed = Announce::parse(&tr).unwrap();
        assert_eq!((parsed.port, parsed.cookie), (51413, None));
        assert_eq!(parsed.info_hashes, vec![HASH]);
    }

    #[test]
    fn several_hashes_any_header_case_and_unknown_headers() {
        let packet = text(&[
            "bt-search * HTTP/1.0",
            "PORT:7000",
            "X-Whatever: yes",
            &format!("infohash: {}", "01".repeat(20)),
            "Infohash: not-hex",
            &format!("INFOHASH:  {} ", "02".repeat(20)),
            "",
        ]);
        let parsed = Announce::parse(&packet).unwrap();
        assert_eq!(parsed.port, 7000);
        assert_eq!(
            parsed.info_hashes,
            vec![InfoHash([1; 20]), InfoHash([2; 20])]
        );
    }

    #[test]
    fn refusals_say_what_was_wrong() {
        let hash = format!("Infohash: {}", "ab".repeat(20));
        let cases: Vec<(Vec<u8>, PacketError)> = vec![
            (
                text(&["M-SEARCH * HTTP/1.1", "Port: 1", &hash, ""]),
                PacketError::NotBtSearch("M-SEARCH * HTTP/1.1".into()),
            ),
            (
                text(&["BT-SEARCH * HTTP/1.1", "Port: 1", &hash]),
                PacketError::Unterminated,
            ),
            (
                text(&["BT-SEARCH * HTTP/1.1", "Port 1", ""]),
                PacketError::BadHeaderLine {
                    line: 2,
                    text: "Port 1".into(),
                },
            ),
            (
                text(&["BT-SEARCH * HTTP/1.1", &hash, ""]),
                PacketError::NoPort,
            ),
            (
                text(&["BT-SEARCH * HTTP/1.1", "Port: 0", &hash, ""]),
                PacketError::BadPort("0".into()),
            ),
            (
                text(&["BT-SEARCH * HTTP/1.1", "Port: +80", &hash, ""]),
                PacketError::BadPort("+80".into()),
            ),
            (
                text(&["BT-SEARCH * HTTP/1.1", "Port: 65536", &hash, ""]),
                PacketError::BadPort("65536".into()),
            ),
            (
                text(&["BT-SEARCH * HTTP/1.1", "Port: 1", "Port: 2", &hash, ""]),
                PacketError::TwoPorts("1".into(), "2".into()),
            ),
            (
                text(&["BT-SEARCH * HTTP/1.1", "Port: 1", "Infohash: abc", ""]),
                PacketError::NoInfohash(Some("abc".into())),
            ),
            (
                vec![b'x'; MAX_PACKET + 1],
                PacketError::TooLong(MAX_PACKET + 1),
            ),
            (Vec::new(), PacketError::NotBtSearch(String::new())),
        ];
        for (packet, expected) in cases {
            assert_eq!(Announce::parse(&packet), Err(expected));
        }
    }

    #[test]
    fn at_most_max_infohashes_are_kept_and_evidence_is_bounded() {
        let mut lines = vec!["BT-SEARCH * HTTP/1.1".to_string(), "Port: 1".to_string()];
        lines.extend((0..28).map(|i| format!("Infohash:{:040x}", i + 1)));
        lines.push(String::new());
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let packet = text(&lines);
        assert!(packet.len() <= MAX_PACKET, "{}", packet.len());
        let kept = Announce::parse(&packet).unwrap().info_hashes;
        assert_eq!(kept.len(), MAX_INFOHASHES);
        assert_eq!(
            kept[0],
            InfoHash(from_hex::<20>(&format!("{:040x}", 1)).unwrap())
        );
        let junk = [b'z'; 1_000];
        let Err(PacketError::NotBtSearch(shown)) = Announce::parse(&junk) else {
            panic!("junk parsed");
        };
        assert_eq!(shown.len(), EVIDENCE);
    }
}
