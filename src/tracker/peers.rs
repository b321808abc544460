//! Peer lists as trackers send them (BEP 23 compact, BEP 7 IPv6, BEP 3 dictionaries) —
//! walkthrough §3.
//!
//! A tracker answers with the addresses of other peers in one of three forms:
//!
//! ```text
//!   compact IPv4 (BEP 23)   6 bytes a peer:   a.b.c.d (4)  port (2, big-endian)
//!   compact IPv6 (BEP 7)   18 bytes a peer:   address (16) port (2, big-endian)
//!   dictionary (BEP 3)     l d 7:peer id 20:... 2:ip 9:127.0.0.1 4:port i6881e e ... e
//! ```
//!
//! Compact is what everyone sends (we always ask for it with `compact=1`); the dictionary
//! form is still parsed, because some trackers ignore the request. The same encoders serve the
//! built-in tracker and the UDP protocol (BEP 15 uses the compact forms too).

use crate::bencode::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use thiserror::Error;

/// Bytes per compact IPv4 peer: 4 address + 2 port.
pub const COMPACT_V4_LEN: usize = 6;
/// Bytes per compact IPv6 peer: 16 address + 2 port.
pub const COMPACT_V6_LEN: usize = 18;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeerListError {
    #[error("compact peer list is {len} bytes, not a multiple of {entry}")]
    BadCompactLength { len: usize, entry: usize },
    #[error("peer list entry {index} is not a dictionary with `ip` and `port`")]
    BadEntry { index: usize },
    #[error("`peers` is {0}, expected a byte string or a list")]
    WrongType(&'static str),
}

/// Decodes a compact IPv4 list (6 bytes a peer).
pub fn parse_compact_v4(bytes: &[u8]) -> Result<Vec<SocketAddr>, PeerListError> {
    check_multiple(bytes, COMPACT_V4_LEN)?;
    let peer = |c: &[u8]| {
        let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
        SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([c[4], c[5]]))
    };
    Ok(bytes.chunks_exact(COMPACT_V4_LEN).map(peer).collect())
}

/// Decodes a compact IPv6 list (18 bytes a peer).
pub fn parse_compact_v6(bytes: &[u8]) -> Result<Vec<SocketAddr>, PeerListError> {
    check_multiple(bytes, COMPACT_V6_LEN)?;
    let peer = |c: &[u8]| {
        let octets: [u8; 16] = c[..16]
            .try_into()
            .expect("chunks_exact(18) has 16 address bytes");
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(octets)),
            u16::from_be_bytes([c[16], c[17]]),
        )
    };
    Ok(bytes.chunks_exact(COMPACT_V6_LEN).map(peer).collect())
}

fn check_multiple(bytes: &[u8], entry: usize) -> Result<(), PeerListError> {
    if !bytes.len().is_multiple_of(entry) {
        return Err(PeerListError::BadCompactLength {
            len: bytes.len(),
            entry,
        });
    }
    Ok(())
}

/// Decodes the `peers` value of an HTTP announce: compact IPv4 bytes or a list of
/// dictionaries. Entries whose `ip` is a host name rather than an address are skipped.
pub fn parse_peers_value(value: &Value) -> Result<Vec<SocketAddr>, PeerListError> {
    if let Some(bytes) = value.as_bytes() {
        return parse_compact_v4(bytes);
    }
    let list = value
        .as_list()
        .ok_or(PeerListError::WrongType(value.kind_name()))?;
    let mut peers = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        let ip = entry.get("ip").and_then(Value::as_str);
        let port = entry
            .get("port")
            .and_then(Value::as_integer)
            .and_then(|p| u16::try_from(p).ok());
        let (Some(ip), Some(port)) = (ip, port) else {
            return Err(PeerListError::BadEntry { index });
        };
        match ip.parse::<IpAddr>() {
            Ok(ip) => peers.push(SocketAddr::new(ip, port)),
            Err(_) => log::debug!("skipping peer {ip}:{port}: not an IP address"),
        }
    }
    Ok(peers)
}

/// Encodes IPv4 peers in compact form; IPv6 peers are left out (they go in [`encode_compact_v6`]).
pub fn encode_compact_v4(peers: &[SocketAddr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(peers.len() * COMPACT_V4_LEN);
    for peer in peers {
        if let SocketAddr::V4(v4) = peer {
            out.extend_from_slice(&v4.ip().octets());
            out.extend_from_slice(&v4.port().to_be_bytes());
        }
    }
    out
}

/// Encodes IPv6 peers in compact form; IPv4 peers are left out.
pub fn encode_compact_v6(peers: &[SocketAddr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(peers.len() * COMPACT_V6_LEN);
    for peer in peers {
        if let SocketAddr::V6(v6) = peer {
            out.extend_from_slice(&v6.ip().octets());
            out.extend_from_slice(&v6.port().to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::decode;

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
    fn a_ragged_compact_list_is_an_error() {
        assert_eq!(
            parse_compact_v4(&[1, 2, 3, 4, 5, 6, 7]),
            Err(PeerListError::BadCompactLength { len: 7, entry: 6 })
        );
        assert!(parse_compact_v6(&[0; 20]).is_err());
    }

    #[test]
    fn dictionary_peer_lists() {
        let v = decode(
            b"ld7:peer id20:aaaaaaaaaaaaaaaaaaaa2:ip9:127.0.0.14:porti6881eed2:ip3:::14:porti1eee",
        )
        .unwrap()
        .value;
        let peers = parse_peers_value(&v).unwrap();
        assert_eq!(
            peers,
            [
                "127.0.0.1:6881".parse().unwrap(),
                "[::1]:1".parse().unwrap()
            ]
        );
        let bad = decode(b"ld2:ip9:127.0.0.1ee").unwrap().value; // no port
        assert_eq!(
            parse_peers_value(&bad),
            Err(PeerListError::BadEntry { index: 0 })
        );
    }
}
