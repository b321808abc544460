//! KRPC, the message format of the DHT (BEP 5, "DHT Protocol"): bytes ⇄ [`Message`]s.
//!
//! Where it sits: the `node` thread reads a UDP datagram and hands its bytes to
//! [`Message::decode`]; what it sends, it builds as a [`Message`] and writes with
//! [`Message::encode`]. Nothing here touches a socket, a clock or the routing table.
//!
//! A KRPC message is one bencoded dictionary (BEP 3, "The BitTorrent Protocol Specification",
//! for bencoding):
//!
//! ```text
//!   "t"  transaction id   opaque bytes chosen by the asker, echoed in the answer
//!   "y"  kind             "q" query, "r" response, "e" error
//!   "v"  client version   optional, e.g. "LT\x01\x02"
//!   "ro" read-only        optional, 1 = "do not add me to your table" (BEP 43, "Read-only DHT Nodes")
//!   query:     "q" method name, "a" {"id": sender, ...arguments}
//!   response:  "r" {"id": responder, "nodes": compact nodes, "values": [compact peers], "token"}
//!   error:     "e" [code, message]
//! ```
//!
//! Compact node info is 26 bytes a node: the 20-byte id, then the IPv4 address (4 bytes) and
//! port (2 bytes, big-endian) that peers use too (`crate::encoding`).
//!
//! The bytes come from anyone on the internet, so decoding is bounded before it starts
//! ([`MAX_MESSAGE_LEN`], [`LIMITS`]), keeps at most [`MAX_NODES`] nodes and [`MAX_VALUES`]
//! peers of one reply, ignores keys it does not know (BEP 5 extensions add many: "nodes6",
//! "ip", "samples", ...), and never panics. A malformed *query* still tells the node whom to
//! answer: [`KrpcError`] carries the transaction id, so the node can reply with error 203.

use super::{NodeId, NodeInfo};
use crate::bencode::{self, DecodeError, DecodeErrorKind, Item, Limits, Value};
use crate::encoding::{COMPACT_V4_LEN, compact_peer, encode_compact_v4, to_hex};
use crate::metainfo::InfoHash;
use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};
use thiserror::Error;

/// BEP 5 error codes, sent as the first element of an error's "e" list.
pub const ERROR_GENERIC: i64 = 201;
pub const ERROR_SERVER: i64 = 202;
/// A malformed packet, invalid arguments or a bad token.
pub const ERROR_PROTOCOL: i64 = 203;
pub const ERROR_METHOD_UNKNOWN: i64 = 204;

/// Nodes kept from one reply; the rest are ignored. An honest node sends K (8); a node that
/// answers with thousands gets no more attention than one that sends 32.
pub const MAX_NODES: usize = 32;
/// Peers kept from one `get_peers` reply; the rest are ignored.
pub const MAX_VALUES: usize = 256;

/// The largest datagram decoded: a UDP payload cannot be longer. Real KRPC messages fit in
/// one Ethernet frame (about 1,500 bytes).
pub const MAX_MESSAGE_LEN: usize = 65_535;
/// The longest transaction id accepted. BEP 5 suggests 2 bytes and real clients send 2 to 8;
/// 64 leaves room for odd ones while bounding what we echo back.
pub const MAX_TRANSACTION_LEN: usize = 64;
/// The longest token accepted (in a response, or echoed in `announce_peer`). Ours are 8 bytes
/// (`tokens`), libtorrent's 4, others' up to 20; the node keeps tokens per queried node
/// until it announces, so they must not be as large as a datagram.
pub const MAX_TOKEN_LEN: usize = 64;
/// The longest method name accepted, in characters (after lossy UTF-8 decoding, so that a
/// name read back from our own encoding passes the same test). BEP methods have at most 17.
pub const MAX_METHOD_CHARS: usize = 64;
/// Error texts are cut to this many characters: they are for logs, and a cut counted in
/// characters stays the same when read back.
pub const MAX_ERROR_CHARS: usize = 256;
/// Bencoding caps for one message. A real message has a depth of 3 ("r" → "values" → a peer)
/// and at most a few hundred values (256 peers and a dozen keys); BEP 44 items add a little.
pub const LIMITS: Limits = Limits {
    max_depth: 16,
    max_values: 4_096,
};

/// Bytes of one compact node: id (20), IPv4 address (4), port (2).
pub const COMPACT_NODE_LEN: usize = 20 + COMPACT_V4_LEN;

/// One KRPC message: a query, a response or an error, with the envelope every kind shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// "t": opaque bytes chosen by the asker and echoed in the answer (at most
    /// [`MAX_TRANSACTION_LEN`]).
    pub transaction: Vec<u8>,
    pub body: Body,
    /// "v": the sender's client and version, if it says.
    pub version: Option<Vec<u8>>,
    /// "ro": 1 (BEP 43, "Read-only DHT Nodes"): the sender does not answer queries, so it must
    /// not enter a routing table.
    pub read_only: bool,
}

/// What the message says, by its "y".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// "y" = "q": a question, and the id of the node asking ("a" → "id").
    Query { sender: NodeId, query: Query },
    /// "y" = "r": the answer to one of our queries (the transaction id says which).
    Response(Response),
    /// "y" = "e": a refusal, with one of the `ERROR_*` codes (or any other number).
    Error { code: i64, message: String },
}

/// The four methods of BEP 5, and the rest. [W15.5]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Ping,
    FindNode {
        target: NodeId,
    },
    GetPeers {
        info_hash: InfoHash,
    },
    AnnouncePeer {
        info_hash: InfoHash,
        /// The port the peer listens on (0 is decodable; the node decides what it means).
        port: u16,
        /// "implied_port": use the UDP source port instead of `port`.
        implied_port: bool,
        /// The token the announcer got from our `get_peers` reply.
        token: Vec<u8>,
    },
    /// A method we do not know: decoded (so the node can answer 204), never an error.
    Unknown {
        method: String,
    },
}

/// The answer to any query: BEP 5 responses carry no method name, so one shape holds them
/// all. A field the answer lacks is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The responder's id.
    pub id: NodeId,
    /// "nodes": closer nodes (`find_node`, `get_peers`), at most [`MAX_NODES`] kept.
    pub nodes: Vec<NodeInfo>,
    /// "values": peers of the torrent (`get_peers`), at most [`MAX_VALUES`] kept.
    pub values: Vec<SocketAddrV4>,
    /// "token": the write permission for a later `announce_peer` (`get_peers`).
    pub token: Option<Vec<u8>>,
}

impl Default for Response {
    /// An empty answer from the all-zero id; set `id` before sending it.
    fn default() -> Response {
        Response {
            id: NodeId([0; 20]),
            nodes: Vec::new(),
            values: Vec::new(),
            token: None,
        }
    }
}

/// Why bytes are not a KRPC message, and what the node needs to answer anyway.
#[derive(Debug, Error)]
#[error("{kind}{}", Context(.transaction.as_deref(), *.was_query))]
pub struct KrpcError {
    /// "t", when the bytes were a dictionary with a usable transaction id: the node can reply.
    pub transaction: Option<Vec<u8>>,
    /// Whether "y" was "q": a malformed query deserves error 203, anything else is dropped.
    pub was_query: bool,
    pub kind: KrpcErrorKind,
}

/// The evidence: which key, what was wrong with it, and where its value starts in the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KrpcErrorKind {
    #[error("message of {len} bytes is longer than any datagram ({MAX_MESSAGE_LEN})")]
    TooLong { len: usize },
    #[error("{0}")]
    Bencode(DecodeError),
    #[error("message is {found}, not a dictionary")]
    NotADict { found: &'static str },
    #[error("no {key:?} in the {within} (at byte {at})")]
    Missing {
        key: &'static str,
        within: &'static str,
        at: usize,
    },
    #[error("{key:?} at byte {at} is {found}, expected {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
        found: &'static str,
        at: usize,
    },
    #[error("{key:?} at byte {at} is {found} bytes long, expected {expected}")]
    WrongLength {
        key: &'static str,
        expected: usize,
        found: usize,
        at: usize,
    },
    #[error("{key:?} at byte {at} is {found} bytes (or characters) long, at most {limit} accepted")]
    TooLongValue {
        key: &'static str,
        limit: usize,
        found: usize,
        at: usize,
    },
    #[error("\"y\" at byte {at} is {}, not \"q\", \"r\" or \"e\"", bencode::DebugBytes(.found))]
    UnknownKind { found: Vec<u8>, at: usize },
    #[error("\"nodes\" at byte {at} is {len} bytes, not a multiple of {COMPACT_NODE_LEN}")]
    NodesLength { len: usize, at: usize },
    #[error("{key:?} at byte {at} is {value}, outside {min}..={max}")]
    OutOfRange {
        key: &'static str,
        value: i64,
        min: i64,
        max: i64,
        at: usize,
    },
}

/// The tail of [`KrpcError`]'s line: whose message it was, when we know.
struct Context<'a>(Option<&'a [u8]>, bool);

impl fmt::Display for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.1 { "query" } else { "message" };
        match self.0 {
            Some(t) => write!(f, " ({what} with transaction {})", to_hex(t)),
            None if self.1 => write!(f, " (query without a usable transaction id)"),
            None => Ok(()),
        }
    }
}

impl KrpcError {
    /// An error found before the envelope could be read: nobody to answer.
    fn bare(kind: KrpcErrorKind) -> KrpcError {
        KrpcError {
            transaction: None,
            was_query: false,
            kind,
        }
    }
}

impl Message {
    /// A query from `sender`, with no version and not read-only (set the fields to change that).
    pub fn query(transaction: Vec<u8>, sender: NodeId, query: Query) -> Message {
        Message::with_body(transaction, Body::Query { sender, query })
    }

    /// An answer to the query whose transaction id was `transaction`.
    pub fn response(transaction: Vec<u8>, response: Response) -> Message {
        Message::with_body(transaction, Body::Response(response))
    }

    /// A refusal of the query whose transaction id was `transaction` (`code`: an `ERROR_*`).
    pub fn error(transaction: Vec<u8>, code: i64, message: &str) -> Message {
        let message = message.to_string();
        Message::with_body(transaction, Body::Error { code, message })
    }

    fn with_body(transaction: Vec<u8>, body: Body) -> Message {
        Message {
            transaction,
            body,
            version: None,
            read_only: false,
        }
    }

    /// Reads one datagram. Unknown keys are ignored; a method we do not know is
    /// [`Query::Unknown`]; anything malformed is a [`KrpcError`] naming the key and byte.
    pub fn decode(bytes: &[u8]) -> Result<Message, KrpcError> {
        // Refuse before parsing: the bencode limits bound the tree, this bounds the work.
        if bytes.len() > MAX_MESSAGE_LEN {
            let len = bytes.len();
            return Err(KrpcError::bare(KrpcErrorKind::TooLong { len }));
        }
        let decoded = bencode::decode_prefix(bytes, LIMITS)
            .map_err(|e| KrpcError::bare(KrpcErrorKind::Bencode(e)))?;
        if decoded.end != bytes.len() {
            // One datagram is one message: bytes after it mean a broken sender.
            let kind = DecodeErrorKind::TrailingData {
                len: bytes.len() - decoded.end,
            };
            let offset = decoded.end;
            return Err(KrpcError::bare(KrpcErrorKind::Bencode(DecodeError {
                offset,
                kind,
            })));
        }
        let root = decoded.value;
        if root.as_dict().is_none() {
            let found = root.kind_name();
            return Err(KrpcError::bare(KrpcErrorKind::NotADict { found }));
        }
        // Read leniently first what the node needs to answer a broken query; the strict
        // reading below reports what is wrong with them.
        let transaction = root
            .get("t")
            .and_then(Value::as_bytes)
            .filter(|t| t.len() <= MAX_TRANSACTION_LEN)
            .map(<[u8]>::to_vec);
        let was_query = root.get("y").and_then(Value::as_bytes) == Some(b"q");
        read_message(&root).map_err(|kind| KrpcError {
            transaction,
            was_query,
            kind,
        })
    }

    /// Writes the message as canonical bencoding (keys sorted as raw bytes). Empty `nodes`
    /// and `values`, a missing token or version, `ro` and `implied_port` when false, are left
    /// out, so `decode(encode(m)) == m` for any message with at most [`MAX_NODES`] nodes and
    /// [`MAX_VALUES`] peers.
    pub fn encode(&self) -> Vec<u8> {
        let mut entries = vec![("t", Value::bytes(self.transaction.clone()))];
        match &self.body {
            Body::Query { sender, query } => {
                entries.push(("y", Value::bytes("q")));
                entries.push(("q", Value::bytes(method_name(query))));
                entries.push(("a", query_arguments(sender, query)));
            }
            Body::Response(response) => {
                entries.push(("y", Value::bytes("r")));
                entries.push(("r", response_value(response)));
            }
            Body::Error { code, message } => {
                entries.push(("y", Value::bytes("e")));
                let list = vec![Value::integer(*code), Value::bytes(message.as_bytes())];
                entries.push(("e", Value::list(list)));
            }
        }
        if let Some(version) = &self.version {
            entries.push(("v", Value::bytes(version.clone())));
        }
        if self.read_only {
            entries.push(("ro", Value::integer(1)));
        }
        bencode::encode(&Value::dict(entries))
    }
}

fn method_name(query: &Query) -> &str {
    match query {
        Query::Ping => "ping",
        Query::FindNode { .. } => "find_node",
        Query::GetPeers { .. } => "get_peers",
        Query::AnnouncePeer { .. } => "announce_peer",
        Query::Unknown { method } => method,
    }
}

fn query_arguments(sender: &NodeId, query: &Query) -> Value {
    let mut args = vec![("id", Value::bytes(sender.0.to_vec()))];
    match query {
        Query::Ping | Query::Unknown { .. } => {}
        Query::FindNode { target } => args.push(("target", Value::bytes(target.0.to_vec()))),
        Query::GetPeers { info_hash } => {
            args.push(("info_hash", Value::bytes(info_hash.0.to_vec())));
        }
        Query::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            args.push(("info_hash", Value::bytes(info_hash.0.to_vec())));
            args.push(("port", Value::integer(i64::from(*port))));
            args.push(("token", Value::bytes(token.clone())));
            if *implied_port {
                args.push(("implied_port", Value::integer(1)));
            }
        }
    }
    Value::dict(args)
}

fn response_value(response: &Response) -> Value {
    let mut fields = vec![("id", Value::bytes(response.id.0.to_vec()))];
    if !response.nodes.is_empty() {
        let mut nodes = Vec::with_capacity(response.nodes.len() * COMPACT_NODE_LEN);
        for node in &response.nodes {
            nodes.extend_from_slice(&node.id.0);
            nodes.extend_from_slice(&encode_compact_v4(&[SocketAddr::V4(node.addr)]));
        }
        fields.push(("nodes", Value::bytes(nodes)));
    }
    if !response.values.is_empty() {
        let values = response
            .values
            .iter()
            .map(|peer| Value::bytes(encode_compact_v4(&[SocketAddr::V4(*peer)])))
            .collect();
        fields.push(("values", Value::list(values)));
    }
    if let Some(token) = &response.token {
        fields.push(("token", Value::bytes(token.clone())));
    }
    Value::dict(fields)
}

// ---------------------------------------------------------------------------------------------
// Decoding, key by key. Each reader names the key it reads, so every error can say which.

fn read_message(root: &Value) -> Result<Message, KrpcErrorKind> {
    let transaction = required(root, "t", "message")?;
    let transaction = bytes_at_most(transaction, "t", MAX_TRANSACTION_LEN)?.to_vec();
    let kind = required(root, "y", "message")?;
    let body = match as_bytes(kind, "y")? {
        b"q" => read_query(root)?,
        b"r" => Body::Response(read_response(required(root, "r", "message")?)?),
        b"e" => read_error(required(root, "e", "message")?)?,
        other => {
            let found = other.to_vec();
            return Err(KrpcErrorKind::UnknownKind {
                found,
                at: kind.span.start,
            });
        }
    };
    // "v" and "ro" are hints: a wrong type is ignored rather than costing the message.
    let version = root.get("v").and_then(Value::as_bytes).map(<[u8]>::to_vec);
    let read_only = root
        .get("ro")
        .and_then(Value::as_integer)
        .is_some_and(|n| n != 0);
    Ok(Message {
        transaction,
        body,
        version,
        read_only,
    })
}

fn read_query(root: &Value) -> Result<Body, KrpcErrorKind> {
    let method_value = required(root, "q", "query")?;
    let method = as_bytes(method_value, "q")?;
    let args = required(root, "a", "query")?;
    dict(args, "a")?;
    let sender = NodeId(id20(required(args, "id", "arguments")?, "id")?);
    let query = match method {
        b"ping" => Query::Ping,
        b"find_node" => Query::FindNode {
            target: NodeId(id20(required(args, "target", "arguments")?, "target")?),
        },
        b"get_peers" => Query::GetPeers {
            info_hash: InfoHash(id20(
                required(args, "info_hash", "arguments")?,
                "info_hash",
            )?),
        },
        b"announce_peer" => read_announce(args)?,
        other => {
            // Method names are ASCII in every BEP; other bytes are shown, not refused. The
            // limit counts characters: a byte that is not UTF-8 becomes three bytes (U+FFFD),
            // so a byte limit would refuse our own encoding of a name it had accepted.
            let method = String::from_utf8_lossy(other).into_owned();
            let chars = method.chars().count();
            if chars > MAX_METHOD_CHARS {
                return Err(KrpcErrorKind::TooLongValue {
                    key: "q",
                    limit: MAX_METHOD_CHARS,
                    found: chars,
                    at: method_value.span.start,
                });
            }
            Query::Unknown { method }
        }
    };
    Ok(Body::Query { sender, query })
}

fn read_announce(args: &Value) -> Result<Query, KrpcErrorKind> {
    let info_hash = InfoHash(id20(
        required(args, "info_hash", "arguments")?,
        "info_hash",
    )?);
    // BEP 5: "implied_port" is 0 or 1, and any non-zero value means "use the source port".
    let implied_port = match args.get("implied_port") {
        Some(v) => integer(v, "implied_port")? != 0,
        None => false,
    };
    // With implied_port the port is ignored, so a sender may leave it out.
    let port = match args.get("port") {
        Some(v) => port(v)?,
        None if implied_port => 0,
        None => {
            let at = args.span.start;
            return Err(KrpcErrorKind::Missing {
                key: "port",
                within: "arguments",
                at,
            });
        }
    };
    let token = required(args, "token", "arguments")?;
    let token = bytes_at_most(token, "token", MAX_TOKEN_LEN)?.to_vec();
    Ok(Query::AnnouncePeer {
        info_hash,
        port,
        implied_port,
        token,
    })
}

fn read_response(r: &Value) -> Result<Response, KrpcErrorKind> {
    dict(r, "r")?;
    let id = NodeId(id20(required(r, "id", "response")?, "id")?);
    let nodes = match r.get("nodes") {
        Some(v) => read_nodes(v)?,
        None => Vec::new(),
    };
    let values = match r.get("values") {
        Some(v) => read_values(v)?,
        None => Vec::new(),
    };
    let token = match r.get("token") {
        Some(v) => Some(bytes_at_most(v, "token", MAX_TOKEN_LEN)?.to_vec()),
        None => None,
    };
    Ok(Response {
        id,
        nodes,
        values,
        token,
    })
}

/// Compact node info: 26 bytes a node. A ragged string is a broken sender, so an error; a long
/// one is cut to [`MAX_NODES`].
fn read_nodes(value: &Value) -> Result<Vec<NodeInfo>, KrpcErrorKind> {
    let bytes = as_bytes(value, "nodes")?;
    if !bytes.len().is_multiple_of(COMPACT_NODE_LEN) {
        let len = bytes.len();
        let at = value.span.start;
        return Err(KrpcErrorKind::NodesLength { len, at });
    }
    let nodes = bytes
        .chunks_exact(COMPACT_NODE_LEN)
        .take(MAX_NODES)
        .filter_map(|chunk| {
            let (id, addr) = chunk.split_at(20);
            let id = NodeId(id.try_into().ok()?);
            match compact_peer(addr)? {
                SocketAddr::V4(addr) => Some(NodeInfo { id, addr }),
                SocketAddr::V6(_) => None, // 6 bytes are always IPv4
            }
        })
        .collect();
    Ok(nodes)
}

/// "values": a list of 6-byte compact peers. Other entries (18-byte IPv6 peers some clients
/// mix in, or junk) are skipped: the good ones are still worth having.
fn read_values(value: &Value) -> Result<Vec<SocketAddrV4>, KrpcErrorKind> {
    let list = value.as_list().ok_or(KrpcErrorKind::WrongType {
        key: "values",
        expected: "a list",
        found: value.kind_name(),
        at: value.span.start,
    })?;
    let peers = list
        .iter()
        .filter_map(Value::as_bytes)
        .filter(|entry| entry.len() == COMPACT_V4_LEN)
        .filter_map(|entry| match compact_peer(entry)? {
            SocketAddr::V4(addr) => Some(addr),
            SocketAddr::V6(_) => None,
        })
        .take(MAX_VALUES)
        .collect();
    Ok(peers)
}

/// "e": [code, message]. The message may be missing or not UTF-8: it is for humans, so it is
/// decoded lossily rather than costing the code.
fn read_error(e: &Value) -> Result<Body, KrpcErrorKind> {
    let list = e.as_list().ok_or(KrpcErrorKind::WrongType {
        key: "e",
        expected: "a list [code, message]",
        found: e.kind_name(),
        at: e.span.start,
    })?;
    let Some(code) = list.first() else {
        let at = e.span.start;
        return Err(KrpcErrorKind::Missing {
            key: "code",
            within: "error list",
            at,
        });
    };
    let code = integer(code, "e")?;
    let message = match list.get(1) {
        Some(text) => String::from_utf8_lossy(as_bytes(text, "e")?)
            .chars()
            .take(MAX_ERROR_CHARS)
            .collect(),
        None => String::new(),
    };
    Ok(Body::Error { code, message })
}

fn required<'a>(
    dict: &'a Value,
    key: &'static str,
    within: &'static str,
) -> Result<&'a Value, KrpcErrorKind> {
    dict.get(key).ok_or(KrpcErrorKind::Missing {
        key,
        within,
        at: dict.span.start,
    })
}

fn dict(value: &Value, key: &'static str) -> Result<(), KrpcErrorKind> {
    match value.item {
        Item::Dict(_) => Ok(()),
        _ => Err(KrpcErrorKind::WrongType {
            key,
            expected: "a dictionary",
            found: value.kind_name(),
            at: value.span.start,
        }),
    }
}

fn as_bytes<'a>(value: &'a Value, key: &'static str) -> Result<&'a [u8], KrpcErrorKind> {
    value.as_bytes().ok_or(KrpcErrorKind::WrongType {
        key,
        expected: "a byte string",
        found: value.kind_name(),
        at: value.span.start,
    })
}

fn bytes_at_most<'a>(
    value: &'a Value,
    key: &'static str,
    limit: usize,
) -> Result<&'a [u8], KrpcErrorKind> {
    let bytes = as_bytes(value, key)?;
    if bytes.len() > limit {
        return Err(KrpcErrorKind::TooLongValue {
            key,
            limit,
            found: bytes.len(),
            at: value.span.start,
        });
    }
    Ok(bytes)
}

/// A node id or info hash: exactly 20 bytes.
fn id20(value: &Value, key: &'static str) -> Result<[u8; 20], KrpcErrorKind> {
    let bytes = as_bytes(value, key)?;
    bytes.try_into().map_err(|_| KrpcErrorKind::WrongLength {
        key,
        expected: 20,
        found: bytes.len(),
        at: value.span.start,
    })
}

fn integer(value: &Value, key: &'static str) -> Result<i64, KrpcErrorKind> {
    value.as_integer().ok_or(KrpcErrorKind::WrongType {
        key,
        expected: "an integer",
        found: value.kind_name(),
        at: value.span.start,
    })
}

/// A port: an integer in 0..=65535 (0 is the node's business, not the parser's).
fn port(value: &Value) -> Result<u16, KrpcErrorKind> {
    let n = integer(value, "port")?;
    u16::try_from(n).map_err(|_| KrpcErrorKind::OutOfRange {
        key: "port",
        value: n,
        min: 0,
        max: i64::from(u16::MAX),
        at: value.span.start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn id(text: &[u8; 20]) -> NodeId {
        NodeId(*text)
    }

    fn addr(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)
    }

    fn decode_err(bytes: &[u8]) -> KrpcError {
        match Message::decode(bytes) {
            Ok(m) => panic!("decoded {m:?}"),
            Err(e) => e,
        }
    }

    /// The BEP 5 examples: the bytes decode to `expected` and `expected` encodes to the bytes.
    fn both_ways(bytes: &[u8], expected: Message) {
        assert_eq!(Message::decode(bytes).unwrap(), expected);
        assert_eq!(
            String::from_utf8_lossy(&expected.encode()),
            String::from_utf8_lossy(bytes)
        );
    }

    #[test]
    fn the_bep_5_queries_decode_and_encode_byte_for_byte() {
        let t = b"aa".to_vec();
        let sender = id(b"abcdefghij0123456789");
        let other = *b"mnopqrstuvwxyz123456";
        both_ways(
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
            Message::query(t.clone(), sender, Query::Ping),
        );
        both_ways(
            b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
            Message::query(t.clone(), sender, Query::FindNode { target: NodeId(other) }),
        );
        both_ways(
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
            Message::query(t.clone(), sender, Query::GetPeers { info_hash: InfoHash(other) }),
        );
        let announce = Query::AnnouncePeer {
            info_hash: InfoHash(other),
            port: 6881,
            implied_port: true,
            token: b"aoeusnth".to_vec(),
        };
        both_ways(
            b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
            Message::query(t, sender, announce),
        );
    }

    #[test]
    fn the_bep_5_responses_and_error_decode_and_encode_byte_for_byte() {
        let t = b"aa".to_vec();
        // The ping and announce_peer responses are the same bytes.
        let pong = Response {
            id: id(b"mnopqrstuvwxyz123456"),
            ..Response::default()
        };
        both_ways(
            b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
            Message::response(t.clone(), pong),
        );
        // "axje.u" and "idhtnm" are 6 bytes each: two compact peers.
        let peers = Response {
            id: id(b"abcdefghij0123456789"),
            values: vec![
                addr(b'a', b'x', b'j', b'e', u16::from_be_bytes(*b".u")),
                addr(b'i', b'd', b'h', b't', u16::from_be_bytes(*b"nm")),
            ],
            token: Some(b"aoeusnth".to_vec()),
            ..Response::default()
        };
        both_ways(
            b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
            Message::response(t.clone(), peers),
        );
        both_ways(
            b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
            Message::error(t, ERROR_GENERIC, "A Generic Error Ocurred"),
        );
    }

    #[test]
    fn the_bep_5_nodes_placeholder_is_refused_as_a_ragged_list() {
        // BEP 5's find_node and get_peers examples write "def456..." (9 bytes) where 26 bytes
        // a node belong; it stands for real nodes and is no node list.
        let e = decode_err(b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re");
        assert!(
            matches!(e.kind, KrpcErrorKind::NodesLength { len: 9, at: 39 }),
            "{e}"
        );
        assert_eq!(e.transaction.as_deref(), Some(&b"aa"[..]));
        assert!(!e.was_query);
    }

    fn node(n: u8) -> NodeInfo {
        NodeInfo {
            id: NodeId([n; 20]),
            addr: addr(127, 0, 0, n, 6881 + u16::from(n)),
        }
    }

    #[test]
    fn every_kind_of_message_round_trips() {
        let me = NodeId([7; 20]);
        let queries = [
            Query::Ping,
            Query::FindNode {
                target: NodeId([1; 20]),
            },
            Query::GetPeers {
                info_hash: InfoHash([2; 20]),
            },
            Query::AnnouncePeer {
                info_hash: InfoHash([3; 20]),
                port: 0,
                implied_port: false,
                token: vec![0, 255, 1],
            },
            Query::AnnouncePeer {
                info_hash: InfoHash([3; 20]),
                port: 65535,
                implied_port: true,
                token: Vec::new(),
            },
            Query::Unknown {
                method: "sample_infohashes".into(),
            },
        ];
        let mut messages: Vec<Message> = queries
            .into_iter()
            .map(|q| Message::query(vec![0, 1], me, q))
            .collect();
        let responses = [
            Response {
                id: me,
                ..Response::default()
            },
            Response {
                id: me,
                nodes: (1..=8).map(node).collect(),
                token: Some(vec![9; 8]),
                ..Response::default()
            },
            Response {
                id: me,
                nodes: vec![node(1)],
                values: vec![addr(10, 0, 0, 1, 1), addr(192, 168, 1, 2, 51413)],
                token: Some(Vec::new()),
            },
        ];
        messages.extend(
            responses
                .into_iter()
                .map(|r| Message::response(b"xy".to_vec(), r)),
        );
        messages.push(Message::error(
            vec![],
            ERROR_METHOD_UNKNOWN,
            "Method Unknown",
        ));
        messages.push(Message::error(vec![1; MAX_TRANSACTION_LEN], -1, "ünïcode"));
        let mut with_envelope = Message::query(b"zz".to_vec(), me, Query::Ping);
        with_envelope.version = Some(b"PW\x00\x01".to_vec());
        with_envelope.read_only = true;
        messages.push(with_envelope);
        for m in messages {
            let bytes = m.encode();
            let back = Message::decode(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{m:?} encoded as {:?}: {e}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_eq!(back, m);
            // Canonical: decoding reports no soft error (keys sorted, no leading zeros).
            assert!(bencode::decode(&bytes).unwrap().soft_errors.is_empty());
        }
    }

    #[test]
    fn unknown_keys_and_methods_are_ignored_not_errors() {
        let bytes = b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234565:extrai1ee2:ip6:\x7f\0\0\x01\x1a\xe11:q17:sample_infohashes1:t2:aa1:v4:LT\x01\x021:y1:qe";
        let m = Message::decode(bytes).unwrap();
        assert_eq!(m.version.as_deref(), Some(&b"LT\x01\x02"[..]));
        let Body::Query { query, .. } = m.body else {
            panic!()
        };
        assert_eq!(
            query,
            Query::Unknown {
                method: "sample_infohashes".into()
            }
        );
        // A response with nodes6, samples and an IPv6 entry among the values.
        let r = Value::dict(vec![
            ("id", Value::bytes([5u8; 20])),
            ("nodes6", Value::bytes([0u8; 38])),
            ("samples", Value::bytes([1u8; 40])),
            (
                "values",
                Value::list(vec![
                    Value::bytes([0u8; 18]),
                    Value::bytes([127, 0, 0, 1, 0x1a, 0xe1]),
                    Value::integer(3),
                    Value::bytes([1u8; 5]),
                ]),
            ),
        ]);
        let bytes = bencode::encode(&Value::dict(vec![
            ("r", r),
            ("t", Value::bytes("aa")),
            ("y", Value::bytes("r")),
            ("ro", Value::integer(1)),
        ]));
        let m = Message::decode(&bytes).unwrap();
        assert!(m.read_only);
        let Body::Response(r) = m.body else { panic!() };
        assert_eq!(r.values, vec![addr(127, 0, 0, 1, 6881)]);
        assert!(r.nodes.is_empty() && r.token.is_none());
    }

    #[test]
    fn malformed_envelopes_are_refused_with_evidence() {
        let e = decode_err(b"l1:ae");
        assert!(matches!(
            e.kind,
            KrpcErrorKind::NotADict { found: "a list" }
        ));
        assert!(e.transaction.is_none() && !e.was_query);
        let e = decode_err(b"d1:t2:aa1:y1:q");
        assert!(matches!(e.kind, KrpcErrorKind::Bencode(_)), "{e}");
        let e = decode_err(b"d1:y1:re");
        assert!(
            matches!(e.kind, KrpcErrorKind::Missing { key: "t", .. }),
            "{e}"
        );
        let e = decode_err(b"d1:t2:aae");
        assert!(
            matches!(e.kind, KrpcErrorKind::Missing { key: "y", .. }),
            "{e}"
        );
        assert_eq!(e.transaction.as_deref(), Some(&b"aa"[..]));
        let e = decode_err(b"d1:t2:aa1:y1:xe");
        assert!(
            matches!(e.kind, KrpcErrorKind::UnknownKind { at: 11, .. }),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "\"y\" at byte 11 is \"x\", not \"q\", \"r\" or \"e\" (message with transaction 6161)"
        );
        let e = decode_err(b"d1:ti5e1:y1:re");
        assert!(
            matches!(e.kind, KrpcErrorKind::WrongType { key: "t", .. }),
            "{e}"
        );
        let long_t = format!("d1:t65:{}1:y1:qe", "x".repeat(65));
        let e = decode_err(long_t.as_bytes());
        assert!(matches!(
            e.kind,
            KrpcErrorKind::TooLongValue {
                key: "t",
                found: 65,
                ..
            }
        ));
        assert!(e.transaction.is_none() && e.was_query, "too long to echo");
        let e = decode_err(b"d1:t2:aa1:y1:ree");
        assert!(
            matches!(e.kind, KrpcErrorKind::Bencode(_)),
            "trailing bytes: {e}"
        );
        let e = decode_err(&vec![b' '; MAX_MESSAGE_LEN + 1]);
        assert!(matches!(e.kind, KrpcErrorKind::TooLong { .. }));
        let deep = format!("d1:t2:aa1:y1:r1:r{}e", "l".repeat(40) + &"e".repeat(40));
        assert!(matches!(
            decode_err(deep.as_bytes()).kind,
            KrpcErrorKind::Bencode(_)
        ));
    }

    #[test]
    fn a_malformed_query_keeps_its_transaction_for_error_203() {
        // No "id" in the arguments.
        let e = decode_err(b"d1:ade1:q4:ping1:t2:xy1:y1:qe");
        assert!(e.was_query);
        assert_eq!(e.transaction.as_deref(), Some(&b"xy"[..]));
        assert!(
            matches!(
                e.kind,
                KrpcErrorKind::Missing {
                    key: "id",
                    within: "arguments",
                    at: 4
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "no \"id\" in the arguments (at byte 4) (query with transaction 7879)"
        );
        // An id of 19 bytes.
        let e = decode_err(b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:xy1:y1:qe");
        assert!(matches!(
            e.kind,
            KrpcErrorKind::WrongLength {
                key: "id",
                expected: 20,
                found: 19,
                ..
            }
        ));
        assert!(e.was_query);
        // find_node without a target, arguments that are not a dictionary.
        let e = decode_err(b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:xy1:y1:qe");
        assert!(matches!(
            e.kind,
            KrpcErrorKind::Missing { key: "target", .. }
        ));
        let e = decode_err(b"d1:ai1e1:q4:ping1:t2:xy1:y1:qe");
        assert!(matches!(e.kind, KrpcErrorKind::WrongType { key: "a", .. }));
        // A response without an id.
        let e = decode_err(b"d1:rde1:t2:aa1:y1:re");
        assert!(matches!(
            e.kind,
            KrpcErrorKind::Missing {
                key: "id",
                within: "response",
                ..
            }
        ));
        assert!(!e.was_query);
    }

    fn announce_with(port: &str, extra: &str) -> Vec<u8> {
        format!(
            "d1:ad2:id20:abcdefghij0123456789{extra}9:info_hash20:mnopqrstuvwxyz123456{port}5:token2:tke1:q13:announce_peer1:t2:aa1:y1:qe"
        )
        .into_bytes()
    }

    #[test]
    fn announce_ports_must_fit_sixteen_bits() {
        for bad in ["i-1e", "i65536e", "i9223372036854775807e"] {
            let e = decode_err(&announce_with(&format!("4:port{bad}"), ""));
            assert!(
                matches!(e.kind, KrpcErrorKind::OutOfRange { key: "port", .. }),
                "{e}"
            );
            assert!(e.was_query);
        }
        let e = decode_err(&announce_with("4:port99999999999999999999e", ""));
        assert!(matches!(e.kind, KrpcErrorKind::Bencode(_)), "{e}");
        let e = decode_err(&announce_with("4:port4:6881", ""));
        assert!(
            matches!(e.kind, KrpcErrorKind::WrongType { key: "port", .. }),
            "{e}"
        );
        let e = decode_err(&announce_with("", ""));
        assert!(
            matches!(e.kind, KrpcErrorKind::Missing { key: "port", .. }),
            "{e}"
        );
        let port = |bytes: &[u8]| match Message::decode(bytes).unwrap().body {
            Body::Query {
                query:
                    Query::AnnouncePeer {
                        port, implied_port, ..
                    },
                ..
            } => (port, implied_port),
            other => panic!("{other:?}"),
        };
        assert_eq!(port(&announce_with("4:porti0e", "")), (0, false));
        assert_eq!(port(&announce_with("4:porti65535e", "")), (65535, false));
        // With implied_port the port may be missing; any non-zero value means "implied".
        assert_eq!(port(&announce_with("", "12:implied_porti1e")), (0, true));
        assert_eq!(
            port(&announce_with("4:porti1e", "12:implied_porti0e")),
            (1, false)
        );
        assert_eq!(
            port(&announce_with("4:porti1e", "12:implied_porti7e")),
            (1, true)
        );
    }

    fn response_with(r_extra: &str) -> Vec<u8> {
        let mut bytes = b"d1:rd2:id20:abcdefghij0123456789".to_vec();
        bytes.extend_from_slice(r_extra.as_bytes());
        bytes.extend_from_slice(b"e1:t2:aa1:y1:re");
        bytes
    }

    #[test]
    fn node_lists_must_be_whole_and_are_cut_to_max_nodes() {
        let e = decode_err(&response_with(&format!("5:nodes27:{}", "n".repeat(27))));
        assert!(
            matches!(e.kind, KrpcErrorKind::NodesLength { len: 27, .. }),
            "{e}"
        );
        // A node that answers with 2,000 nodes: the first MAX_NODES are kept, in order.
        let mut nodes = Vec::new();
        for i in 0..2_000u32 {
            let mut id = [0u8; 20];
            id[..4].copy_from_slice(&i.to_be_bytes());
            nodes.extend_from_slice(&id);
            nodes.extend_from_slice(&[10, 0, (i >> 8) as u8, i as u8, 0x1a, 0xe1]);
        }
        let mut bytes = b"d1:rd2:id20:abcdefghij01234567895:nodes52000:".to_vec();
        bytes.extend_from_slice(&nodes);
        bytes.extend_from_slice(b"e1:t2:aa1:y1:re");
        let Body::Response(r) = Message::decode(&bytes).unwrap().body else {
            panic!()
        };
        assert_eq!(r.nodes.len(), MAX_NODES);
        assert_eq!(r.nodes[31].addr, addr(10, 0, 0, 31, 6881));
        assert_eq!(r.nodes[31].id.0[3], 31);
        // An empty string (libtorrent with an empty table) is no nodes.
        let Body::Response(r) = Message::decode(&response_with("5:nodes0:")).unwrap().body else {
            panic!()
        };
        assert!(r.nodes.is_empty());
    }

    #[test]
    fn values_are_cut_to_max_values() {
        let peers: Vec<Value> = (0..1_000u16)
            .map(|i| Value::bytes(encode_compact_v4(&[SocketAddr::V4(addr(10, 1, 0, 1, i))])))
            .collect();
        let bytes = bencode::encode(&Value::dict(vec![
            (
                "r",
                Value::dict(vec![
                    ("id", Value::bytes([1u8; 20])),
                    ("values", Value::list(peers)),
                ]),
            ),
            ("t", Value::bytes("aa")),
            ("y", Value::bytes("r")),
        ]));
        let Body::Response(r) = Message::decode(&bytes).unwrap().body else {
            panic!()
        };
        assert_eq!(r.values.len(), MAX_VALUES);
        assert_eq!(r.values[255].port(), 255);
        let e = decode_err(&response_with("6:valuesi1e"));
        assert!(matches!(
            e.kind,
            KrpcErrorKind::WrongType { key: "values", .. }
        ));
    }

    #[test]
    fn tokens_longer_than_the_limit_are_refused() {
        let e = decode_err(&response_with(&format!("5:token65:{}", "k".repeat(65))));
        assert!(
            matches!(e.kind, KrpcErrorKind::TooLongValue { key: "token", .. }),
            "{e}"
        );
        let e = decode_err(&announce_with(
            &format!("4:porti1e5:token65:{}", "k".repeat(65)),
            "",
        ));
        // The announce above has two "token" keys; the first (the long one) counts.
        assert!(
            matches!(e.kind, KrpcErrorKind::TooLongValue { key: "token", .. }),
            "{e}"
        );
    }

    #[test]
    fn error_messages_need_not_be_utf8() {
        let m = Message::decode(b"d1:eli203e4:bad\xffe1:t2:aa1:y1:ee").unwrap();
        assert_eq!(
            m.body,
            Body::Error {
                code: 203,
                message: "bad\u{fffd}".into()
            }
        );
        let m = Message::decode(b"d1:eli202ee1:t2:aa1:y1:ee").unwrap();
        assert_eq!(
            m.body,
            Body::Error {
                code: 202,
                message: String::new()
            }
        );
        let e = decode_err(b"d1:ele1:t2:aa1:y1:ee");
        assert!(matches!(e.kind, KrpcErrorKind::Missing { key: "code", .. }));
        let e = decode_err(b"d1:el3:abce1:t2:aa1:y1:ee");
        assert!(matches!(e.kind, KrpcErrorKind::WrongType { key: "e", .. }));
        let e = decode_err(b"d1:e3:abc1:t2:aa1:y1:ee");
        assert!(matches!(e.kind, KrpcErrorKind::WrongType { key: "e", .. }));
    }

    #[test]
    fn long_texts_are_bounded_in_characters_so_they_read_back() {
        // 60,000 bytes that are not UTF-8 would become 180,000 bytes of U+FFFD: too long to
        // read back. Cut in characters, the text reads back as it was.
        let mut bytes = b"d1:eli201e60000:".to_vec();
        bytes.extend(std::iter::repeat_n(0xffu8, 60_000));
        bytes.extend_from_slice(b"e1:t2:aa1:y1:ee");
        let m = Message::decode(&bytes).unwrap();
        let Body::Error { message, .. } = &m.body else {
            panic!()
        };
        assert_eq!(message.chars().count(), MAX_ERROR_CHARS);
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        // A method name of 64 such bytes is 64 characters: accepted, and reads back.
        let query = |method: &[u8]| {
            let mut q =
                format!("d1:ad2:id20:abcdefghij0123456789e1:q{}:", method.len()).into_bytes();
            q.extend_from_slice(method);
            q.extend_from_slice(b"1:t2:aa1:y1:qe");
            q
        };
        let m = Message::decode(&query(&[0xff; MAX_METHOD_CHARS])).unwrap();
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        let e = decode_err(&query(&[b'x'; MAX_METHOD_CHARS + 1]));
        assert!(
            matches!(
                e.kind,
                KrpcErrorKind::TooLongValue {
                    key: "q",
                    found: 65,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.was_query && e.transaction.is_some());
    }
}
