//! The extension protocol's payloads (BEP 10), metadata exchange (BEP 9 `ut_metadata`) and peer
//! exchange (BEP 11 `ut_pex`) — walkthrough §13–§14.
//!
//! All three travel inside one BEP 3 message, [`Message::Extended`](super::Message) (id 20),
//! whose first payload byte is an *extended id*. This file turns the rest of that payload into
//! values and back; the peer thread (`src/peer/extended.rs`) and the metadata fetcher
//! (`src/metadata_fetch.rs`) send and receive them. No sockets, no state, no threads here.
//!
//! ```text
//!   extended id 0: the extended handshake, one bencoded dictionary       [`ExtendedHandshake`]
//!     d 1:m d 11:ut_metadata i3e 6:ut_pex i1e e     m: extension name -> MY id for it (0 = off)
//!       13:metadata_size i31235e  1:p i6881e  4:reqq i500e  1:v 14:peerwire 0.1.0
//!       6:yourip 4:<a.b.c.d>                         your address as I see it (4 or 16 bytes)
//!     e
//!   ut_metadata: a dictionary, and for `data` the raw piece right after it  [`MetadataMessage`]
//!     d 8:msg_type i0e 5:piece i0e e                                        request
//!     d 8:msg_type i1e 5:piece i0e 10:total_size i31235e e <up to 16384 raw bytes>   data
//!     d 8:msg_type i2e 5:piece i0e e                                        reject
//!   ut_pex: compact addresses, 6 bytes (IPv4 + port) or 18 (IPv6 + port)    [`PexMessage`]
//!     d 5:added 6:<peer> 7:added.f 1:<flags> 6:added6 18:<peer> 8:added6.f 1:<flags>
//!       7:dropped 6:<peer> 8:dropped6 0: e
//! ```
//!
//! **Whose ids?** Each side numbers the messages it *receives*. Our `m` says "send me
//! `ut_metadata` as id [`UT_METADATA_ID`]"; the peer's `m` says which id *it* wants, and every
//! message we send it must carry that one ([`ExtendedHandshake::id_of`] on the peer's
//! handshake). The numbers differ in practice: libtorrent and qBittorrent use 2 for
//! `ut_metadata`, Transmission and peerwire 3: an id is never assumed, always looked up (the
//! handshakes captured in the tests below).
//!
//! Bytes come from strangers, so parsing is lenient where BEP 10 asks for it (unknown keys,
//! odd values: ignored) and strict only where a wrong value would be acted on (a `ut_metadata`
//! message without its piece number, a metadata size above [`MAX_METADATA_SIZE`]).
//! Nothing here panics or allocates more than the payload it was given.

use crate::bencode::{self, DecodeError, Limits, Value};
use crate::encoding::{
    COMPACT_V4_LEN, COMPACT_V6_LEN, compact_peers, encode_compact_v4, encode_compact_v6,
    ip_from_octets, ip_octets,
};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

/// Our extended id for incoming `ut_metadata` messages (what we put in our `m`). Messages we
/// *send* use the peer's id from its handshake, not this.
pub const UT_METADATA_ID: u8 = 3;
/// Our extended id for incoming `ut_pex` messages. Outgoing ones use the peer's id.
pub const UT_PEX_ID: u8 = 1;

/// BEP 9: the metadata (the info dictionary) travels in pieces of 16 KiB; only the last is shorter.
pub const METADATA_PIECE_LEN: usize = 16384;
/// The largest metadata we accept, checked before allocating room for it. Real info
/// dictionaries are a few hundred KiB at most (20 bytes of hash per piece).
pub const MAX_METADATA_SIZE: u64 = 8 << 20;

/// BEP 11 flag: the peer prefers encryption (`e` in its extended handshake).
pub const PEX_PREFERS_ENCRYPTION: u8 = 0x01;
/// BEP 11 flag: the peer is a seed (or upload-only).
pub const PEX_SEED: u8 = 0x02;
/// BEP 11 flag: the peer supports uTP.
pub const PEX_UTP: u8 = 0x04;
/// BEP 11 flag: the peer announced `ut_holepunch` in its extended handshake.
pub const PEX_HOLEPUNCH: u8 = 0x08;
/// BEP 11 flag: the sender connected *out* to this peer, so it is reachable.
pub const PEX_REACHABLE: u8 = 0x10;

/// Most `added` addresses (IPv4 and IPv6 together) we take from one `ut_pex` message; the rest
/// are dropped, not an error. BEP 11: "Except for the initial PEX message the combined amount
/// of added v4/v6 contacts should not exceed 50 entries. The same applies to dropped entries."
/// The initial message may be larger, so we allow 200 rather than 50.
pub const MAX_PEX_ADDED: usize = 200;
/// Most `dropped` addresses (IPv4 and IPv6 together) we take from one `ut_pex` message.
pub const MAX_PEX_DROPPED: usize = 200;

/// `msg_type` values of BEP 9.
const MSG_REQUEST: i64 = 0;
const MSG_DATA: i64 = 1;
const MSG_REJECT: i64 = 2;

/// Names of the three messages, for error messages.
const HANDSHAKE: &str = "extended handshake";
const UT_METADATA: &str = "ut_metadata";
const UT_PEX: &str = "ut_pex";

/// An extension message that cannot be used. The peer thread treats it as a protocol error
/// of that peer (its connection ends); it never ends the download.
#[derive(Debug, Error)]
pub enum ExtensionError {
    #[error("{message}: payload is not bencoded: {source}")]
    NotBencoded {
        message: &'static str,
        source: DecodeError,
    },
    #[error("{message}: payload is {found}, expected a dictionary")]
    NotADict {
        message: &'static str,
        found: &'static str,
    },
    #[error("{message}: key `{key}` is missing")]
    MissingKey {
        message: &'static str,
        key: &'static str,
    },
    #[error("{message}: key `{key}` {problem}")]
    BadValue {
        message: &'static str,
        key: &'static str,
        problem: String,
    },
    #[error("ut_metadata data for piece {piece}: {length} bytes, more than a {max}-byte piece")]
    DataTooLong {
        piece: u32,
        length: usize,
        max: usize,
    },
    #[error("ut_metadata data for piece {piece}: total_size {total_size} is over the cap of {max}")]
    TooLarge {
        piece: u32,
        total_size: u64,
        max: u64,
    },
}

/// BEP 10's extended handshake (extended id 0): which extensions a peer speaks and facts about
/// it. Every field is optional on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// `m`: extension name → the id the *sender* wants for it; 0 turns the extension off (a
    /// later handshake may do that). Kept in the order received.
    pub extensions: Vec<(String, u8)>,
    /// `v`: client name and version, e.g. "Transmission 3.00".
    pub client: Option<String>,
    /// `p`: the TCP port the sender listens on (its outgoing port tells nothing).
    pub listen_port: Option<u16>,
    /// `reqq`: how many requests the sender queues without dropping any.
    pub request_queue: Option<u32>,
    /// `metadata_size` (BEP 9): bytes in the info dictionary. Not capped here: the caller
    /// checks it against [`MAX_METADATA_SIZE`] before allocating.
    pub metadata_size: Option<u64>,
    /// `yourip`: the receiver's address as the sender sees it (4 or 16 bytes on the wire).
    pub your_ip: Option<IpAddr>,
}

impl ExtendedHandshake {
    /// The bencoded dictionary (keys sorted by the encoder). `m` is always present.
    pub fn to_payload(&self) -> Vec<u8> {
        let m = self
            .extensions
            .iter()
            .map(|(name, id)| (name.as_str(), Value::integer(i64::from(*id))))
            .collect();
        let mut entries = vec![("m", Value::dict(m))];
        if let Some(client) = &self.client {
            entries.push(("v", Value::bytes(client.as_bytes())));
        }
        if let Some(port) = self.listen_port {
            entries.push(("p", Value::integer(i64::from(port))));
        }
        if let Some(reqq) = self.request_queue {
            entries.push(("reqq", Value::integer(i64::from(reqq))));
        }
        if let Some(size) = self.metadata_size.and_then(|s| i64::try_from(s).ok()) {
            entries.push(("metadata_size", Value::integer(size)));
        }
        if let Some(ip) = self.your_ip {
            entries.push(("yourip", Value::bytes(ip_octets(ip))));
        }
        bencode::encode(&Value::dict(entries))
    }

    /// Reads a peer's handshake. Only a payload that is not a bencoded dictionary is an error:
    /// unknown keys, ids that are not integers in 0..=255, ports outside 1..=65535, negative
    /// sizes and a `yourip` of the wrong length are ignored (BEP 10: "Any unknown names should
    /// be ignored"), and so are bytes after the dictionary.
    pub fn from_payload(payload: &[u8]) -> Result<ExtendedHandshake, ExtensionError> {
        let (dict, _end) = decode_dict(payload, HANDSHAKE)?;
        let your_ip = dict.get("yourip").and_then(Value::as_bytes);
        Ok(ExtendedHandshake {
            extensions: dict.get("m").map(extension_ids).unwrap_or_default(),
            client: dict
                .get("v")
                .and_then(Value::as_bytes)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
            listen_port: lenient_number(&dict, "p").filter(|&port: &u16| port != 0),
            request_queue: lenient_number(&dict, "reqq"),
            metadata_size: lenient_number(&dict, "metadata_size"),
            your_ip: your_ip.and_then(ip_from_octets),
        })
    }

    /// The id to put on messages of extension `name` sent to *this handshake's sender*;
    /// `None` if it did not list the extension or turned it off (id 0).
    pub fn id_of(&self, name: &str) -> Option<u8> {
        let (_, id) = self.extensions.iter().find(|(n, _)| n == name)?;
        (*id != 0).then_some(*id)
    }
}

/// The `m` dictionary; entries whose name is not UTF-8 or whose id is not a u8 are skipped.
fn extension_ids(m: &Value) -> Vec<(String, u8)> {
    let Some(entries) = m.as_dict() else {
        return Vec::new();
    };
    let entry = |(name, id): &(Vec<u8>, Value)| {
        let name = std::str::from_utf8(name).ok()?;
        let id = u8::try_from(id.as_integer()?).ok()?;
        Some((name.to_string(), id))
    };
    entries.iter().filter_map(entry).collect()
}

/// One BEP 9 `ut_metadata` message.
#[derive(Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: "send me this piece of the info dictionary".
    Request { piece: u32 },
    /// `msg_type` 1: one piece; `data` is at most [`METADATA_PIECE_LEN`] bytes. Whether its
    /// length fits `total_size` ([`metadata_piece_len`]) is the assembler's check.
    Data {
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    /// `msg_type` 2: "I do not have (or will not give) that piece".
    Reject { piece: u32 },
    /// Any other `msg_type`. BEP 9: "an unrecognized message ID MUST be ignored", so this is
    /// not an error; callers skip it.
    Unknown { msg_type: i64 },
}

impl MetadataMessage {
    /// The bencoded dictionary, followed by the raw piece for `Data`.
    pub fn to_payload(&self) -> Vec<u8> {
        let (msg_type, piece) = self.msg_type_and_piece();
        let mut entries = vec![("msg_type", Value::integer(msg_type))];
        if let Some(piece) = piece {
            entries.push(("piece", Value::integer(i64::from(piece))));
        }
        if let MetadataMessage::Data { total_size, .. } = self {
            // A size past i64::MAX cannot be bencoded; it is far past any cap anyway.
            let total = i64::try_from(*total_size).unwrap_or(i64::MAX);
            entries.push(("total_size", Value::integer(total)));
        }
        let mut payload = bencode::encode(&Value::dict(entries));
        if let MetadataMessage::Data { data, .. } = self {
            payload.extend_from_slice(data); // after the dictionary, not inside it (BEP 9)
        }
        payload
    }

    fn msg_type_and_piece(&self) -> (i64, Option<u32>) {
        match self {
            MetadataMessage::Request { piece } => (MSG_REQUEST, Some(*piece)),
            MetadataMessage::Data { piece, .. } => (MSG_DATA, Some(*piece)),
            MetadataMessage::Reject { piece } => (MSG_REJECT, Some(*piece)),
            MetadataMessage::Unknown { msg_type } => (*msg_type, None),
        }
    }

    /// Reads a `ut_metadata` message. The dictionary is decoded with `decode_prefix`, which
    /// says where it ends: for `data`, every byte after that is the piece. Bytes after a
    /// request or reject are ignored.
    pub fn from_payload(payload: &[u8]) -> Result<MetadataMessage, ExtensionError> {
        let (dict, end) = decode_dict(payload, UT_METADATA)?;
        let msg_type = required_integer(&dict, UT_METADATA, "msg_type")?;
        if !matches!(msg_type, MSG_REQUEST | MSG_DATA | MSG_REJECT) {
            return Ok(MetadataMessage::Unknown { msg_type });
        }
        let piece = required_integer(&dict, UT_METADATA, "piece")?;
        let piece = u32::try_from(piece).map_err(|_| ExtensionError::BadValue {
            message: UT_METADATA,
            key: "piece",
            problem: format!("is {piece}, not a piece number"),
        })?;
        match msg_type {
            MSG_REQUEST => Ok(MetadataMessage::Request { piece }),
            MSG_REJECT => Ok(MetadataMessage::Reject { piece }),
            _ => data_message(&dict, piece, payload.get(end..).unwrap_or_default()),
        }
    }
}

/// The rest of a `data` message: `total_size` (capped) and the piece bytes (at most 16 KiB).
fn data_message(dict: &Value, piece: u32, data: &[u8]) -> Result<MetadataMessage, ExtensionError> {
    let total = required_integer(dict, UT_METADATA, "total_size")?;
    let total_size = u64::try_from(total).map_err(|_| ExtensionError::BadValue {
        message: UT_METADATA,
        key: "total_size",
        problem: format!("is {total}, a negative size"),
    })?;
    if total_size > MAX_METADATA_SIZE {
        let max = MAX_METADATA_SIZE;
        return Err(ExtensionError::TooLarge {
            piece,
            total_size,
            max,
        });
    }
    if data.len() > METADATA_PIECE_LEN {
        let (length, max) = (data.len(), METADATA_PIECE_LEN);
        return Err(ExtensionError::DataTooLong { piece, length, max });
    }
    let data = data.to_vec();
    Ok(MetadataMessage::Data {
        piece,
        total_size,
        data,
    })
}

/// Pieces show as `<N bytes>`, as `Message::Piece` does, so a trace stays one line.
impl fmt::Debug for MetadataMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataMessage::Request { piece } => write!(f, "Request {{ piece: {piece} }}"),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => write!(
                f,
                "Data {{ piece: {piece}, total_size: {total_size}, data: <{} bytes> }}",
                data.len()
            ),
            MetadataMessage::Reject { piece } => write!(f, "Reject {{ piece: {piece} }}"),
            MetadataMessage::Unknown { msg_type } => {
                write!(f, "Unknown {{ msg_type: {msg_type} }}")
            }
        }
    }
}

/// How many 16 KiB pieces hold `total_size` bytes of metadata (0 for 0 bytes). Saturates at
/// `u32::MAX`; callers cap the size at [`MAX_METADATA_SIZE`] first (512 pieces).
pub fn metadata_pieces(total_size: u64) -> u32 {
    let pieces = total_size.div_ceil(METADATA_PIECE_LEN as u64);
    u32::try_from(pieces).unwrap_or(u32::MAX)
}

/// The length of metadata piece `piece`: 16 KiB, less for the last one; `None` past the end.
pub fn metadata_piece_len(total_size: u64, piece: u32) -> Option<usize> {
    let start = u64::from(piece) * METADATA_PIECE_LEN as u64;
    let left = total_size.checked_sub(start).filter(|&left| left > 0)?;
    let len = left.min(METADATA_PIECE_LEN as u64);
    usize::try_from(len).ok()
}

/// One BEP 11 `ut_pex` message: peers the sender connected to, and peers it lost, since its
/// last message to us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Addresses with their flags (`PEX_SEED`, `PEX_REACHABLE`, ...); IPv4 and IPv6 mixed.
    pub added: Vec<(SocketAddr, u8)>,
    /// Addresses the sender is no longer connected to.
    pub dropped: Vec<SocketAddr>,
}

impl PexMessage {
    /// All six keys, empty strings included (BEP 11 wants at least one of them). No cap: the
    /// caller sends at most 50 of each after the first message, as BEP 11 asks.
    pub fn to_payload(&self) -> Vec<u8> {
        // Each family's flags must line up with its addresses: split `added` first. The
        // encoders keep only their own family, so `dropped` needs no split.
        let is_v4 = |(addr, _): &&(SocketAddr, u8)| addr.is_ipv4();
        let (added4, added6): (Vec<&(SocketAddr, u8)>, Vec<_>) = self.added.iter().partition(is_v4);
        let addrs4 = added4.iter().map(|(addr, _)| addr);
        let addrs6 = added6.iter().map(|(addr, _)| addr);
        let flags = |list: &[&(SocketAddr, u8)]| list.iter().map(|(_, f)| *f).collect::<Vec<u8>>();
        let dict = Value::dict(vec![
            ("added", Value::bytes(encode_compact_v4(addrs4))),
            ("added.f", Value::bytes(flags(&added4))),
            ("added6", Value::bytes(encode_compact_v6(addrs6))),
            ("added6.f", Value::bytes(flags(&added6))),
            ("dropped", Value::bytes(encode_compact_v4(&self.dropped))),
            ("dropped6", Value::bytes(encode_compact_v6(&self.dropped))),
        ]);
        bencode::encode(&dict)
    }

    /// Reads a `ut_pex` message. Missing keys mean no addresses; a `.f` string missing or of
    /// the wrong length gives every address flags 0; a partial entry at the end is ignored;
    /// past [`MAX_PEX_ADDED`] / [`MAX_PEX_DROPPED`] addresses the rest are dropped (IPv4 first).
    pub fn from_payload(payload: &[u8]) -> Result<PexMessage, ExtensionError> {
        let (dict, _end) = decode_dict(payload, UT_PEX)?;
        let mut added = added_with_flags(&dict, "added", COMPACT_V4_LEN, MAX_PEX_ADDED);
        let room = MAX_PEX_ADDED - added.len();
        // [W14.3] IPv6 peers under their own keys, 18 bytes each, in the room IPv4 left.
        added.extend(added_with_flags(&dict, "added6", COMPACT_V6_LEN, room));
        let mut dropped = compact_list(&dict, "dropped", COMPACT_V4_LEN, MAX_PEX_DROPPED);
        let room = MAX_PEX_DROPPED - dropped.len();
        dropped.extend(compact_list(&dict, "dropped6", COMPACT_V6_LEN, room));
        Ok(PexMessage { added, dropped })
    }
}

/// The addresses under `key` with the flags under `key.f` (one byte each, or all 0).
fn added_with_flags(
    dict: &Value,
    key: &str,
    entry_len: usize,
    limit: usize,
) -> Vec<(SocketAddr, u8)> {
    let entries = dict
        .get(key)
        .and_then(Value::as_bytes)
        .unwrap_or_default()
        .len()
        / entry_len;
    let flags_key = format!("{key}.f");
    let flags = dict.get(&flags_key).and_then(Value::as_bytes);
    let flags = flags.filter(|f| f.len() == entries).unwrap_or_default();
    let addrs = compact_list(dict, key, entry_len, limit);
    let flag = |i: usize| flags.get(i).copied().unwrap_or(0);
    addrs
        .into_iter()
        .enumerate()
        .map(|(i, a)| (a, flag(i)))
        .collect()
}

/// At most `limit` compact addresses from the byte string under `key`.
fn compact_list(dict: &Value, key: &str, entry_len: usize, limit: usize) -> Vec<SocketAddr> {
    let bytes = dict.get(key).and_then(Value::as_bytes).unwrap_or_default();
    compact_peers(bytes, entry_len).take(limit).collect()
}

/// Decodes the dictionary at the start of `payload`; returns it and the offset just past it.
fn decode_dict(payload: &[u8], message: &'static str) -> Result<(Value, usize), ExtensionError> {
    let decoded = bencode::decode_prefix(payload, Limits::default())
        .map_err(|source| ExtensionError::NotBencoded { message, source })?;
    if decoded.value.as_dict().is_none() {
        let found = decoded.value.kind_name();
        return Err(ExtensionError::NotADict { message, found });
    }
    Ok((decoded.value, decoded.end))
}

/// An integer that must be there.
fn required_integer(
    dict: &Value,
    message: &'static str,
    key: &'static str,
) -> Result<i64, ExtensionError> {
    let value = dict
        .get(key)
        .ok_or(ExtensionError::MissingKey { message, key })?;
    value.as_integer().ok_or_else(|| ExtensionError::BadValue {
        message,
        key,
        problem: format!("is {}, expected an integer", value.kind_name()),
    })
}

/// An optional integer that fits `T`; anything else counts as absent.
fn lenient_number<T: TryFrom<i64>>(dict: &Value, key: &str) -> Option<T> {
    let n = dict.get(key)?.as_integer()?;
    T::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ours() -> ExtendedHandshake {
        ExtendedHandshake {
            extensions: vec![
                ("ut_metadata".into(), UT_METADATA_ID),
                ("ut_pex".into(), UT_PEX_ID),
            ],
            client: Some("peerwire 0.1.0".into()),
            listen_port: Some(6881),
            request_queue: Some(500),
            metadata_size: Some(31235),
            your_ip: None,
        }
    }

    #[test]
    fn handshake_layout_byte_by_byte() {
        let expected: &[u8] = b"d\
            1:md11:ut_metadatai3e6:ut_pexi1ee\
            13:metadata_sizei31235e\
            1:pi6881e\
            4:reqqi500e\
            1:v14:peerwire 0.1.0\
            e"; // keys sorted by the encoder, `m` first
        assert_eq!(ours().to_payload(), expected);
    }

    #[test]
    fn handshake_round_trips() {
        let mut handshake = ours();
        assert_eq!(
            ExtendedHandshake::from_payload(&handshake.to_payload()).unwrap(),
            handshake
        );
        handshake.your_ip = Some(IpAddr::V6(Ipv6Addr::LOCALHOST));
        // The encoder sorts keys, so an exact round trip needs `m` in sorted order.
        handshake.extensions.insert(0, ("lt_donthave".into(), 0));
        assert_eq!(
            ExtendedHandshake::from_payload(&handshake.to_payload()).unwrap(),
            handshake
        );
        let empty = ExtendedHandshake::default();
        assert_eq!(empty.to_payload(), b"d1:mdee");
        assert_eq!(
            ExtendedHandshake::from_payload(&empty.to_payload()).unwrap(),
            empty
        );
    }

    /// Captured from libtorrent 2.0.8.0 (Python binding) seeding on 127.0.0.1, on a
    /// connection we opened: the accepting side sends no `p`.
    #[test]
    fn libtorrent_handshake_as_captured() {
        let payload = b"d\
            12:complete_agoi-1e\
            1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e\
                11:ut_metadatai2e6:ut_pexi1ee\
            13:metadata_sizei314e\
            4:reqqi2000e\
            11:upload_onlyi1e\
            1:v18:libtorrent/2.0.8.0\
            6:yourip4:\x7f\x00\x00\x01\
            e";
        let h = ExtendedHandshake::from_payload(payload).unwrap();
        assert_eq!(h.id_of("ut_metadata"), Some(2)); // not our 3: its numbering, not ours
        assert_eq!(h.id_of("ut_pex"), Some(1));
        assert_eq!(h.id_of("lt_donthave"), Some(7));
        assert_eq!(h.extensions.len(), 6);
        assert_eq!(h.metadata_size, Some(314));
        assert_eq!(h.request_queue, Some(2000));
        assert_eq!(h.listen_port, None);
        assert_eq!(h.client.as_deref(), Some("libtorrent/2.0.8.0"));
        assert_eq!(h.your_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    /// Captured from transmission-daemon 3.00 seeding a public torrent, listening on 23457.
    #[test]
    fn transmission_handshake_as_captured() {
        let payload = b"d\
            1:ei1e\
            1:md11:ut_metadatai3e6:ut_pexi1ee\
            13:metadata_sizei217e\
            1:pi23457e\
            4:reqqi512e\
            11:upload_onlyi1e\
            1:v17:Transmission 3.00\
            e";
        let h = ExtendedHandshake::from_payload(payload).unwrap();
        assert_eq!(h.id_of("ut_metadata"), Some(3));
        assert_eq!(h.id_of("ut_pex"), Some(1));
        assert_eq!(h.metadata_size, Some(217));
        assert_eq!(h.listen_port, Some(23457));
        assert_eq!(h.request_queue, Some(512));
        assert_eq!(h.client.as_deref(), Some("Transmission 3.00"));
        assert_eq!(h.your_ip, None);
    }

    #[test]
    fn an_id_of_0_disables_the_extension() {
        let h = ExtendedHandshake::from_payload(b"d1:md11:ut_metadatai0e6:ut_pexi1eee").unwrap();
        assert_eq!(h.id_of("ut_metadata"), None);
        assert_eq!(h.id_of("ut_pex"), Some(1));
        assert_eq!(h.id_of("lt_donthave"), None); // never listed
        assert!(h.extensions.contains(&("ut_metadata".into(), 0)));
    }

    #[test]
    fn odd_handshake_values_are_ignored_not_errors() {
        let payload = b"d\
            1:md1:a1:x1:bi300e1:ci-1e1:di4ee\
            13:metadata_sizei-5e\
            1:pi70000e\
            4:reqqi-1e\
            1:vi7e\
            6:yourip5:12345\
            e";
        let h = ExtendedHandshake::from_payload(payload).unwrap();
        assert_eq!(h.extensions, vec![("d".to_string(), 4)]);
        assert_eq!(h.metadata_size, None);
        assert_eq!(h.listen_port, None);
        assert_eq!(h.request_queue, None);
        assert_eq!(h.client, None);
        assert_eq!(h.your_ip, None);
        let port_0 = ExtendedHandshake::from_payload(b"d1:pi0ee").unwrap();
        assert_eq!(port_0, ExtendedHandshake::default()); // no `m` at all, and port 0 is absent
        let m_not_a_dict = ExtendedHandshake::from_payload(b"d1:mli1eee").unwrap();
        assert!(m_not_a_dict.extensions.is_empty());
    }

    #[test]
    fn a_non_dict_payload_is_an_error_with_a_readable_message() {
        let list = ExtendedHandshake::from_payload(b"li1ee").unwrap_err();
        assert_eq!(
            list.to_string(),
            "extended handshake: payload is a list, expected a dictionary"
        );
        let junk = ExtendedHandshake::from_payload(b"hello").unwrap_err();
        assert!(
            matches!(junk, ExtensionError::NotBencoded { .. }),
            "{junk:?}"
        );
        assert!(
            junk.to_string()
                .starts_with("extended handshake: payload is not bencoded: "),
            "{junk}"
        );
        let empty = MetadataMessage::from_payload(b"").unwrap_err();
        assert!(
            empty
                .to_string()
                .starts_with("ut_metadata: payload is not bencoded"),
            "{empty}"
        );
        let integer = PexMessage::from_payload(b"i5e").unwrap_err();
        assert_eq!(
            integer.to_string(),
            "ut_pex: payload is an integer, expected a dictionary"
        );
    }

    #[test]
    fn metadata_request_and_reject_layout_and_round_trip() {
        // The examples of BEP 9 (its reject example misprints msg_type as 1).
        let request = MetadataMessage::Request { piece: 0 };
        assert_eq!(request.to_payload(), b"d8:msg_typei0e5:piecei0ee");
        let reject = MetadataMessage::Reject { piece: 7 };
        assert_eq!(reject.to_payload(), b"d8:msg_typei2e5:piecei7ee");
        for m in [
            request,
            reject,
            MetadataMessage::Request { piece: u32::MAX },
        ] {
            assert_eq!(MetadataMessage::from_payload(&m.to_payload()).unwrap(), m);
        }
    }

    #[test]
    fn metadata_data_is_the_dictionary_then_the_raw_piece() {
        // Piece bytes that look like bencoding: only decode_prefix's end says where they start.
        let data = b"d1:xee4:spam".repeat(1000);
        let message = MetadataMessage::Data {
            piece: 1,
            total_size: 40000,
            data: data.clone(),
        };
        let payload = message.to_payload();
        let dict: &[u8] = b"d8:msg_typei1e5:piecei1e10:total_sizei40000ee";
        assert_eq!(&payload[..dict.len()], dict); //  msg_type 1, piece 1, total_size
        assert_eq!(&payload[dict.len()..], &data[..]); // then the piece, outside the dictionary
        assert_eq!(MetadataMessage::from_payload(&payload).unwrap(), message);
        let last = MetadataMessage::Data {
            piece: 0,
            total_size: 0,
            data: Vec::new(),
        };
        assert_eq!(
            MetadataMessage::from_payload(&last.to_payload()).unwrap(),
            last
        );
        assert_eq!(
            format!("{message:?}"),
            "Data { piece: 1, total_size: 40000, data: <12000 bytes> }"
        );
    }

    #[test]
    fn metadata_unknown_msg_type_is_returned_to_be_ignored() {
        let m = MetadataMessage::from_payload(b"d8:msg_typei7ee").unwrap();
        assert_eq!(m, MetadataMessage::Unknown { msg_type: 7 });
        assert_eq!(MetadataMessage::from_payload(&m.to_payload()).unwrap(), m);
    }

    #[test]
    fn metadata_without_piece_or_msg_type_is_an_error() {
        let e = MetadataMessage::from_payload(b"d8:msg_typei0ee").unwrap_err();
        assert!(
            matches!(e, ExtensionError::MissingKey { key: "piece", .. }),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "ut_metadata: key `piece` is missing");
        let e = MetadataMessage::from_payload(b"d5:piecei0ee").unwrap_err();
        assert!(
            matches!(
                e,
                ExtensionError::MissingKey {
                    key: "msg_type",
                    ..
                }
            ),
            "{e:?}"
        );
        let e = MetadataMessage::from_payload(b"d8:msg_typei0e5:piecei-1ee").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ut_metadata: key `piece` is -1, not a piece number"
        );
        let e = MetadataMessage::from_payload(b"d8:msg_type1:05:piecei0ee").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ut_metadata: key `msg_type` is a byte string, expected an integer"
        );
        let e = MetadataMessage::from_payload(b"d8:msg_typei1e5:piecei0ee").unwrap_err();
        assert!(
            matches!(
                e,
                ExtensionError::MissingKey {
                    key: "total_size",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn metadata_data_longer_than_16_kib_is_refused() {
        let mut payload = b"d8:msg_typei1e5:piecei0e10:total_sizei40000ee".to_vec();
        payload.extend_from_slice(&[0; METADATA_PIECE_LEN]);
        assert!(MetadataMessage::from_payload(&payload).is_ok()); // exactly 16 KiB is fine
        payload.push(0);
        let e = MetadataMessage::from_payload(&payload).unwrap_err();
        assert!(
            matches!(
                e,
                ExtensionError::DataTooLong {
                    piece: 0,
                    length: 16385,
                    max: 16384
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn metadata_oversized_total_size_is_refused() {
        let at_cap = format!("d8:msg_typei1e5:piecei0e10:total_sizei{MAX_METADATA_SIZE}ee");
        assert!(MetadataMessage::from_payload(at_cap.as_bytes()).is_ok());
        let over = format!(
            "d8:msg_typei1e5:piecei0e10:total_sizei{}ee",
            MAX_METADATA_SIZE + 1
        );
        let e = MetadataMessage::from_payload(over.as_bytes()).unwrap_err();
        assert!(
            matches!(
                e,
                ExtensionError::TooLarge {
                    total_size: 8388609,
                    ..
                }
            ),
            "{e:?}"
        );
        let negative = b"d8:msg_typei1e5:piecei0e10:total_sizei-1ee";
        assert!(MetadataMessage::from_payload(negative).is_err());
    }

    #[test]
    fn metadata_piece_count_and_lengths() {
        // (total_size, pieces, length of each piece in turn)
        let table: [(u64, u32, &[usize]); 5] = [
            (0, 0, &[]),
            (1, 1, &[1]),
            (16384, 1, &[16384]),
            (16385, 2, &[16384, 1]),
            (40000, 3, &[16384, 16384, 7232]),
        ];
        for (size, pieces, lengths) in table {
            assert_eq!(metadata_pieces(size), pieces, "pieces of {size}");
            for piece in 0..pieces {
                let expected = Some(lengths[piece as usize]);
                assert_eq!(metadata_piece_len(size, piece), expected, "{size}/{piece}");
            }
            assert_eq!(
                metadata_piece_len(size, pieces),
                None,
                "one past the end of {size}"
            );
        }
        assert_eq!(metadata_pieces(MAX_METADATA_SIZE), 512);
        assert_eq!(metadata_piece_len(u64::MAX, u32::MAX), Some(16384)); // no overflow
    }

    fn v4(a: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, a)), port)
    }

    fn v6(port: u16) -> SocketAddr {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            port,
        )
    }

    #[test]
    fn pex_layout_byte_by_byte() {
        let pex = PexMessage {
            added: vec![(v4(2, 6881), PEX_SEED | PEX_REACHABLE)],
            dropped: vec![],
        };
        let expected: &[u8] = b"d\
            5:added6:\x0a\x00\x00\x02\x1a\xe1\
            7:added.f1:\x12\
            6:added60:\
            8:added6.f0:\
            7:dropped0:\
            8:dropped60:\
            e";
        assert_eq!(pex.to_payload(), expected); // 10.0.0.2, port 6881 = 0x1ae1, flags 0x12
    }

    #[test]
    fn pex_round_trips_ipv4_ipv6_and_flags() {
        let pex = PexMessage {
            added: vec![
                (v4(2, 6881), PEX_SEED),
                (v4(3, 51413), PEX_REACHABLE | PEX_UTP),
                (v6(6882), PEX_PREFERS_ENCRYPTION | PEX_HOLEPUNCH),
            ],
            dropped: vec![v4(4, 1), v6(2)],
        };
        assert_eq!(PexMessage::from_payload(&pex.to_payload()).unwrap(), pex);
    }

    #[test]
    fn pex_missing_or_wrong_length_flags_are_0() {
        let no_flags = b"d5:added12:\x0a\x00\x00\x02\x1a\xe1\x0a\x00\x00\x03\x1a\xe1e";
        let pex = PexMessage::from_payload(no_flags).unwrap();
        assert_eq!(pex.added, vec![(v4(2, 6881), 0), (v4(3, 6881), 0)]);
        let short_flags =
            b"d5:added12:\x0a\x00\x00\x02\x1a\xe1\x0a\x00\x00\x03\x1a\xe17:added.f1:\x02e";
        let pex = PexMessage::from_payload(short_flags).unwrap();
        assert_eq!(pex.added, vec![(v4(2, 6881), 0), (v4(3, 6881), 0)]);
        assert!(PexMessage::from_payload(b"de").unwrap().added.is_empty());
    }

    #[test]
    fn pex_ignores_a_trailing_partial_entry() {
        // One whole entry and 3 stray bytes; its flag string has 1 byte, matching whole entries.
        let payload = b"d5:added9:\x0a\x00\x00\x02\x1a\xe1\x0a\x00\x007:added.f1:\x02\
            7:dropped20:\x0a\x00\x00\x04\x00\x01\x0a\x00\x00\x05\x00\x01\x0a\x00\x00\x06\x00\x01\x0a\x00e";
        let pex = PexMessage::from_payload(payload).unwrap();
        assert_eq!(pex.added, vec![(v4(2, 6881), PEX_SEED)]);
        assert_eq!(pex.dropped, vec![v4(4, 1), v4(5, 1), v4(6, 1)]);
    }

    /// `d 6:added6 <bytes> 8:added6.f <flags> 8:dropped6 <bytes> e`, lengths as given.
    fn pex6(added6: &[u8], flags: &[u8], dropped6: &[u8]) -> Vec<u8> {
        let mut payload = Vec::new();
        for (key, value) in [
            ("added6", added6),
            ("added6.f", flags),
            ("dropped6", dropped6),
        ] {
            payload.extend_from_slice(format!("{}:{key}{}:", key.len(), value.len()).as_bytes());
            payload.extend_from_slice(value);
        }
        [b"d".as_slice(), &payload, b"e"].concat()
    }

    #[test]
    fn pex_added6_reads_whole_18_byte_entries_with_their_flags() {
        let two = encode_compact_v6(&[v6(6882), v6(6883)]);
        let pex = PexMessage::from_payload(&pex6(&two, &[PEX_SEED, PEX_UTP], &two)).unwrap();
        assert_eq!(pex.added, vec![(v6(6882), PEX_SEED), (v6(6883), PEX_UTP)]);
        assert_eq!(pex.dropped, vec![v6(6882), v6(6883)]);
        // 20 bytes: one whole entry and 2 stray bytes; its one flag still lines up.
        let ragged = [&two[..18], &[0xff, 0xff]].concat();
        let pex = PexMessage::from_payload(&pex6(&ragged, &[PEX_SEED], &two[..17])).unwrap();
        assert_eq!(pex.added, vec![(v6(6882), PEX_SEED)]);
        assert!(pex.dropped.is_empty(), "17 bytes: not one whole entry");
        // Two entries, one flag: the flags do not line up, so none count.
        let pex = PexMessage::from_payload(&pex6(&two, &[PEX_SEED], b"")).unwrap();
        assert_eq!(pex.added, vec![(v6(6882), 0), (v6(6883), 0)]);
        // Shorter than one entry: nothing, and no error.
        let pex = PexMessage::from_payload(&pex6(&[1; 5], b"", &[2; 3])).unwrap();
        assert_eq!(pex, PexMessage::default());
    }

    #[test]
    fn pex_sends_ipv6_peers_in_added6_with_their_own_flags() {
        let pex = PexMessage {
            added: vec![(v6(6882), PEX_REACHABLE), (v4(2, 6881), PEX_SEED)],
            dropped: vec![v6(1)],
        };
        let payload = pex.to_payload();
        let dict = bencode::decode(&payload).unwrap().value;
        let bytes = |key: &str| dict.get(key).and_then(Value::as_bytes).unwrap().to_vec();
        assert_eq!(bytes("added6"), encode_compact_v6(&[v6(6882)]));
        assert_eq!(bytes("added6.f"), [PEX_REACHABLE]);
        assert_eq!(bytes("added.f"), [PEX_SEED]);
        assert_eq!(bytes("dropped6").len(), COMPACT_V6_LEN);
        assert!(bytes("dropped").is_empty());
    }

    #[test]
    fn pex_keeps_at_most_200_added_and_200_dropped() {
        let many: Vec<SocketAddr> = (0..250).map(|i| v4(1, 1000 + i)).collect();
        let pex = PexMessage {
            added: many
                .iter()
                .map(|a| (*a, PEX_SEED))
                .chain([(v6(1), 0)])
                .collect(),
            dropped: many.clone(),
        };
        let parsed = PexMessage::from_payload(&pex.to_payload()).unwrap();
        assert_eq!(parsed.added.len(), MAX_PEX_ADDED);
        assert_eq!(parsed.dropped.len(), MAX_PEX_DROPPED);
        assert_eq!(parsed.added[..], pex.added[..MAX_PEX_ADDED]); // the first ones, flags kept
        assert_eq!(parsed.dropped[..], many[..MAX_PEX_DROPPED]);
    }
}
