//! The packets of the UDP tracker protocol (BEP 15), both directions — walkthrough §3.
//!
//! UDP trackers save the HTTP overhead with fixed binary layouts, all integers big-endian.
//! A client first *connects* (proving it can receive at its address, against spoofing), then
//! *announces* with the connection id it got, which stays valid for one minute:
//!
//! ```text
//!  connect request   protocol_id u64 = 0x41727101980 | action u32 = 0 | transaction_id u32
//!  connect reply     action = 0 | transaction_id | connection_id u64
//!  announce request  connection_id u64 | action = 1 | transaction_id | info_hash [20] |
//!                    peer_id [20] | downloaded u64 | left u64 | uploaded u64 | event u32 |
//!                    ip u32 (0) | key u32 | num_want i32 (-1 = default) | port u16   (98 bytes)
//!  announce reply    action = 1 | transaction_id | interval u32 | leechers u32 |
//!                    seeders u32 | peers: 6 bytes each (18 over IPv6)
//!  scrape request    connection_id | action = 2 | transaction_id | info_hash [20] ...
//!  scrape reply      action = 2 | transaction_id | (seeders, completed, leechers) u32 ...
//!  error reply       action = 3 | transaction_id | message (the rest of the packet)
//! ```
//!
//! The client ([`super::udp`]) writes requests and reads replies; the built-in tracker
//! ([`crate::tracker_server`]) does the opposite. Both use these types, so the layout is written once.

use super::ScrapeStats;
use crate::encoding::{
    COMPACT_V4_LEN, COMPACT_V6_LEN, encode_compact_v4, encode_compact_v6, parse_compact_v4,
    parse_compact_v6,
};
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use std::net::SocketAddr;
use thiserror::Error;

/// The magic constant that opens every connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
pub const ACTION_CONNECT: u32 = 0;
pub const ACTION_ANNOUNCE: u32 = 1;
pub const ACTION_SCRAPE: u32 = 2;
pub const ACTION_ERROR: u32 = 3;
/// Size of an announce request; BEP 41 options may follow and are ignored.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Most info hashes one scrape may carry (about what fits in a UDP packet).
pub const MAX_SCRAPE_HASHES: usize = 74;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("packet of {len} bytes is too short for {what} ({need} bytes)")]
    TooShort {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("unknown action {0}")]
    UnknownAction(u32),
    #[error("connect request without the protocol id 0x41727101980")]
    BadProtocolId,
    #[error("peer list of {len} bytes is not a multiple of {entry}")]
    RaggedPeers { len: usize, entry: usize },
    #[error("scrape asks for {0} torrents; at most {MAX_SCRAPE_HASHES} fit")]
    TooManyHashes(usize),
}

/// A request from client to tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Connect {
        transaction_id: u32,
    },
    Announce(AnnouncePacket),
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        info_hashes: Vec<InfoHash>,
    },
}

/// The fields of an announce request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncePacket {
    pub connection_id: u64,
    pub transaction_id: u32,
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub downloaded: u64,
    pub left: u64,
    pub uploaded: u64,
    /// 0 none, 1 completed, 2 started, 3 stopped.
    pub event: u32,
    pub key: u32,
    /// -1 asks for the tracker's default.
    pub num_want: i32,
    pub port: u16,
}

/// A reply from tracker to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Connect {
        transaction_id: u32,
        connection_id: u64,
    },
    Announce {
        transaction_id: u32,
        interval: u32,
        leechers: u32,
        seeders: u32,
        peers: Vec<SocketAddr>,
    },
    Scrape {
        transaction_id: u32,
        stats: Vec<ScrapeStats>,
    },
    Error {
        transaction_id: u32,
        message: String,
    },
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_REQUEST_LEN);
        match self {
            Request::Connect { transaction_id } => {
                put_u64(&mut out, PROTOCOL_ID);
                put_u32(&mut out, ACTION_CONNECT);
                put_u32(&mut out, *transaction_id);
            }
            Request::Announce(a) => {
                put_u64(&mut out, a.connection_id);
                put_u32(&mut out, ACTION_ANNOUNCE);
                put_u32(&mut out, a.transaction_id);
                out.extend_from_slice(&a.info_hash.0);
                out.extend_from_slice(&a.peer_id.0);
                for n in [a.downloaded, a.left, a.uploaded] {
                    put_u64(&mut out, n);
                }
                for n in [a.event, 0, a.key, a.num_want as u32] {
                    put_u32(&mut out, n); // the 0 is `ip`: "use the sender's address"
                }
                out.extend_from_slice(&a.port.to_be_bytes());
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                put_u64(&mut out, *connection_id);
                put_u32(&mut out, ACTION_SCRAPE);
                put_u32(&mut out, *transaction_id);
                info_hashes.iter().for_each(|h| out.extend_from_slice(&h.0));
            }
        }
        out
    }

    /// Reads a request, as the tracker does. Anything malformed is an error, never a panic.
    pub fn decode(packet: &[u8]) -> Result<Request, PacketError> {
        let mut r = Reader {
            bytes: packet,
            pos: 0,
            what: "a request",
        };
        r.need(16)?;
        let connection_id = r.u64();
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            ACTION_CONNECT if connection_id == PROTOCOL_ID => {
                Ok(Request::Connect { transaction_id })
            }
            ACTION_CONNECT => Err(PacketError::BadProtocolId),
            ACTION_ANNOUNCE => {
                r.what = "an announce request";
                r.need(ANNOUNCE_REQUEST_LEN)?;
                let info_hash = InfoHash(r.array());
                let peer_id = PeerId(r.array());
                let (downloaded, left, uploaded) = (r.u64(), r.u64(), r.u64());
                let (event, _ip, key, num_want) = (r.u32(), r.u32(), r.u32(), r.u32() as i32);
                let port = u16::from_be_bytes(r.array());
                let packet = AnnouncePacket {
                    connection_id,
                    transaction_id,
                    info_hash,
                    peer_id,
                    downloaded,
                    left,
                    uploaded,
                    event,
                    key,
                    num_want,
                    port,
                };
                Ok(Request::Announce(packet))
            }
            ACTION_SCRAPE => {
                let hashes: Vec<InfoHash> = packet[16..]
                    .chunks_exact(20)
                    .map(|c| InfoHash(c.try_into().expect("chunks_exact(20)")))
                    .collect();
                if hashes.len() > MAX_SCRAPE_HASHES {
                    return Err(PacketError::TooManyHashes(hashes.len()));
                }
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes: hashes,
                })
            }
            other => Err(PacketError::UnknownAction(other)),
        }
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                put_u32(&mut out, ACTION_CONNECT);
                put_u32(&mut out, *transaction_id);
                put_u64(&mut out, *connection_id);
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                for n in [
                    ACTION_ANNOUNCE,
                    *transaction_id,
                    *interval,
                    *leechers,
                    *seeders,
                ] {
                    put_u32(&mut out, n);
                }
                out.extend_from_slice(&encode_compact_v4(peers));
                out.extend_from_slice(&encode_compact_v6(peers));
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                put_u32(&mut out, ACTION_SCRAPE);
                put_u32(&mut out, *transaction_id);
                for s in stats {
                    for n in [s.seeders, s.completed, s.leechers] {
                        put_u32(&mut out, n);
                    }
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                put_u32(&mut out, ACTION_ERROR);
                put_u32(&mut out, *transaction_id);
                out.extend_from_slice(message.as_bytes());
            }
        }
        out
    }

    /// Reads a reply, as the client does. `ipv6` says which peer size to expect: a tracker
    /// reached over IPv6 sends 18-byte peers (BEP 15, "IPv6").
    pub fn decode(packet: &[u8], ipv6: bool) -> Result<Response, PacketError> {
        let mut r = Reader {
            bytes: packet,
            pos: 0,
            what: "a reply",
        };
        r.need(8)?;
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            ACTION_CONNECT => {
                r.what = "a connect reply";
                r.need(16)?;
                Ok(Response::Connect {
                    transaction_id,
                    connection_id: r.u64(),
                })
            }
            ACTION_ANNOUNCE => {
                r.what = "an announce reply";
                r.need(20)?;
                let (interval, leechers, seeders) = (r.u32(), r.u32(), r.u32());
                let rest = &packet[20..];
                let (entry, parsed) = if ipv6 {
                    (COMPACT_V6_LEN, parse_compact_v6(rest))
                } else {
                    (COMPACT_V4_LEN, parse_compact_v4(rest))
                };
                let peers = parsed.map_err(|_| PacketError::RaggedPeers {
                    len: rest.len(),
                    entry,
                })?;
                Ok(Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            ACTION_SCRAPE => {
                let stat = |c: &[u8]| ScrapeStats {
                    seeders: be32(&c[0..4]),
                    completed: be32(&c[4..8]),
                    leechers: be32(&c[8..12]),
                };
                Ok(Response::Scrape {
                    transaction_id,
                    stats: packet[8..].chunks_exact(12).map(stat).collect(),
                })
            }
            ACTION_ERROR => Ok(Response::Error {
                transaction_id,
                message: String::from_utf8_lossy(&packet[8..]).into_owned(),
            }),
            other => Err(PacketError::UnknownAction(other)),
        }
    }

    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().expect("callers pass 4 bytes"))
}

/// A cursor over a packet whose length has been checked with `need` before reading.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl Reader<'_> {
    fn need(&self, total: usize) -> Result<(), PacketError> {
        if self.bytes.len() < total {
            return Err(PacketError::TooShort {
                what: self.what,
                len: self.bytes.len(),
                need: total,
            });
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let out: [u8; N] = self.bytes[self.pos..self.pos + N]
            .try_into()
            .expect("length checked by need()");
        self.pos += N;
        out
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce() -> AnnouncePacket {
        AnnouncePacket {
            connection_id: 0x1122334455667788,
            transaction_id: 7,
            info_hash: InfoHash([0xab; 20]),
            peer_id: PeerId(*b"-PW0001-abcdefghijkl"),
            downloaded: 1,
            left: 2,
            uploaded: 3,
            event: 2,
            key: 9,
            num_want: -1,
            port: 6881,
        }
    }

    #[test]
    fn connect_request_layout() {
        let bytes = Request::Connect {
            transaction_id: 0xdeadbeef,
        }
        .encode();
        // protocol id 00 00 04 17 27 10 19 80 | action 00 00 00 00 | transaction de ad be ef
        assert_eq!(
            bytes,
            [
                0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef
            ]
        );
        assert_eq!(
            Request::decode(&bytes),
            Ok(Request::Connect {
                transaction_id: 0xdeadbeef
            })
        );
    }

    #[test]
    fn announce_request_round_trip() {
        let bytes = Request::Announce(announce()).encode();
        assert_eq!(bytes.len(), ANNOUNCE_REQUEST_LEN);
        assert_eq!(&bytes[96..], &6881u16.to_be_bytes());
        assert_eq!(Request::decode(&bytes), Ok(Request::Announce(announce())));
        assert!(matches!(
            Request::decode(&bytes[..97]),
            Err(PacketError::TooShort { .. })
        ));
    }

    #[test]
    fn replies_round_trip() {
        let peers = vec!["127.0.0.1:6881".parse().unwrap()];
        let reply = Response::Announce {
            transaction_id: 7,
            interval: 60,
            leechers: 1,
            seeders: 2,
            peers,
        };
        assert_eq!(Response::decode(&reply.encode(), false), Ok(reply));
        let error = Response::Error {
            transaction_id: 7,
            message: "unknown torrent".into(),
        };
        assert_eq!(Response::decode(&error.encode(), false), Ok(error));
        let scrape = Response::Scrape {
            transaction_id: 1,
            stats: vec![ScrapeStats {
                seeders: 1,
                completed: 2,
                leechers: 3,
            }],
        };
        assert_eq!(Response::decode(&scrape.encode(), false), Ok(scrape));
    }

    #[test]
    fn an_ipv6_reply_has_18_byte_peers_and_a_ragged_one_is_an_error() {
        let peers = vec![
            "[::1]:6881".parse().unwrap(),
            "[2001:db8::2]:80".parse().unwrap(),
        ];
        let reply = Response::Announce {
            transaction_id: 9,
            interval: 60,
            leechers: 2,
            seeders: 0,
            peers,
        };
        let packet = reply.encode();
        assert_eq!(packet.len(), 20 + 2 * COMPACT_V6_LEN);
        assert_eq!(Response::decode(&packet, true), Ok(reply));
        // 36 bytes read as IPv4 would be 6 peers of nonsense: the family is the socket's.
        assert_eq!(
            Response::decode(&[&packet[..], &[0; 2]].concat(), true),
            Err(PacketError::RaggedPeers { len: 38, entry: 18 })
        );
        assert_eq!(
            Response::decode(&packet[..20 + 17], true),
            Err(PacketError::RaggedPeers { len: 17, entry: 18 })
        );
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert!(matches!(
            Response::decode(&[0, 0, 0], false),
            Err(PacketError::TooShort { .. })
        ));
        let mut ragged = Response::Announce {
            transaction_id: 1,
            interval: 1,
            leechers: 0,
            seeders: 0,
            peers: vec![],
        }
        .encode();
        ragged.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            Response::decode(&ragged, false),
            Err(PacketError::RaggedPeers { len: 3, entry: 6 })
        );
        assert_eq!(Request::decode(&[0; 16]), Err(PacketError::BadProtocolId));
        assert!(matches!(
            Request::decode(&[0xff; 16]),
            Err(PacketError::UnknownAction(_))
        ));
    }
}
