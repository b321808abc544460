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
//! form is still parsed, because some trackers ignore the request. The compact forms are
//! written once, in `src/encoding.rs`, for the HTTP and UDP (BEP 15) trackers, the built-in
//! tracker and peer exchange (BEP 11) alike; the dictionary form is the tracker's own.

use crate::bencode::Value;
use crate::encoding::{CompactLengthError, parse_compact_v4};
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeerListError {
    #[error(transparent)]
    BadCompactLength(#[from] CompactLengthError),
    #[error("peer list entry {index} is not a dictionary with `ip` and `port`")]
    BadEntry { index: usize },
    #[error("`peers` is {0}, expected a byte string or a list")]
    WrongType(&'static str),
}

/// Decodes the `peers` value of an HTTP announce: compact IPv4 bytes or a list of
/// dictionaries. Entries whose `ip` is a host name rather than an address are skipped.
pub fn parse_peers_value(value: &Value) -> Result<Vec<SocketAddr>, PeerListError> {
    if let Some(bytes) = value.as_bytes() {
        return Ok(parse_compact_v4(bytes)?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::decode;

    #[test]
    fn a_ragged_compact_list_is_an_error() {
        let v = decode(b"7:\x7f\x00\x00\x01\x1a\xe1\x00").unwrap().value;
        assert_eq!(
            parse_peers_value(&v),
            Err(PeerListError::BadCompactLength(CompactLengthError {
                len: 7,
                entry: 6
            }))
        );
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
