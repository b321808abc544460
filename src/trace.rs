//! The wire trace, both ways: [`Trace`] writes one line per handshake or message (`--trace`),
//! and [`parse_trace_line`] reads such a line back into the handshake or message it shows
//! (BEP 3 "peer protocol"; BEP 10 messages show as their frame) — walkthrough §5,
//! `docs/wire-format.md`.
//!
//! `--trace` prints one line per handshake or message, sent (`->`) or received (`<-`), with
//! the `Debug` text of [`Handshake`] and [`Message`] (`Connection::send` and
//! `Connection::receive` in `src/peer/connection.rs` hand them to [`Trace::line`]):
//!
//! ```text
//!   127.0.0.1:6881 -> Request { index: 3, begin: 16384, length: 16384 }
//!   └─ the peer ──┘ └┘ └──────────── the message, as `Debug` prints it ─────────┘
//!                   `->` we sent it · `<-` we received it
//! ```
//!
//! Reading is the disassembler run backwards, so that tests can check a real exchange against
//! what was really sent. Blocks, bitfields and extension payloads are traced by their size
//! only (`<16384 bytes>`), so they come back as that many zero bytes: the frame has the
//! right length and header, not the right contents; the hashes of a BEP 52 `hashes` message
//! are traced by their number (`<16 hashes>`) and come back as zero hashes. A line parses
//! only if it prints back as exactly itself, so any change to the trace format fails here
//! rather than slipping by.

use crate::encoding::{from_hex, hex_byte};
use crate::merkle::Sha256Hash;
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::wire::hashes::{HashRange, MAX_HASHES_PER_MESSAGE, MAX_LAYERS};
use crate::wire::message::MAX_MESSAGE_LEN;
use crate::wire::{Handshake, Message};
use std::io::Write;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Where the wire trace goes: nowhere, stderr (`--trace`), or a sample kept for the demo's
/// summary.
#[derive(Debug, Clone, Default)]
pub enum Trace {
    #[default]
    Off,
    Stderr,
    /// The first `limit` lines.
    Sample {
        lines: Arc<Mutex<Vec<String>>>,
        limit: usize,
    },
    /// The last lines of each peer, for the web view (`--web`); every line also goes to
    /// `also` (stderr under `--trace`, the demo's sample, or nowhere).
    Ring {
        ring: Arc<TraceRing>,
        also: Box<Trace>,
    },
}

/// The last [`TraceRing::LINES`] trace lines of each of the last [`TraceRing::PEERS`] peers:
/// bounded, however long the run and however many peers come and go.
#[derive(Debug, Default)]
pub struct TraceRing {
    /// Peers in the order they last spoke, oldest first, each with its newest lines last.
    peers: Mutex<std::collections::VecDeque<(SocketAddr, std::collections::VecDeque<String>)>>,
}

impl TraceRing {
    /// Lines kept per peer.
    pub const LINES: usize = 40;
    /// Peers kept.
    pub const PEERS: usize = 200;

    pub fn new() -> TraceRing {
        TraceRing::default()
    }

    /// Keeps one line of a peer's trace, dropping its oldest (and the quietest peer) if full.
    pub fn push(&self, peer: SocketAddr, line: String) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let at = peers.iter().position(|(addr, _)| *addr == peer);
        let mut lines = match at.and_then(|i| peers.remove(i)) {
            Some((_, lines)) => lines,
            None => std::collections::VecDeque::new(),
        };
        if lines.len() >= Self::LINES {
            lines.pop_front();
        }
        lines.push_back(line);
        if peers.len() >= Self::PEERS {
            peers.pop_front();
        }
        peers.push_back((peer, lines));
    }

    /// The kept lines of one peer, oldest first.
    pub fn lines(&self, peer: SocketAddr) -> Vec<String> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers
            .iter()
            .find(|(addr, _)| *addr == peer)
            .map(|(_, lines)| lines.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Trace {
    /// Records one line (made only when the trace is on). On stderr, unlike `eprintln!`, a
    /// closed stderr (say, the trace piped into `head`) is ignored rather than a panic.
    pub fn line(&self, make: impl FnOnce() -> String) {
        match self {
            Trace::Off => {}
            Trace::Stderr => {
                // A reader who has gone (a closed pipe) is no reason to stop the download.
                let _ = writeln!(std::io::stderr().lock(), "{}", make());
            }
            Trace::Sample { lines, limit } => {
                let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                if lines.len() < *limit {
                    lines.push(make());
                }
            }
            Trace::Ring { ring, also } => {
                let line = make();
                // Every trace line starts with the peer's address (see above); a line that
                // does not is not one of a peer's, and is only passed on.
                let peer = line.split(' ').next().and_then(|a| a.parse().ok());
                if let Some(peer) = peer {
                    ring.push(peer, line.clone());
                }
                also.pass_on(line);
            }
        }
    }

    /// The line a `Ring` already made, to the trace behind it: through this one function, so
    /// that `line` is not made generic over a closure of a closure of ... without end.
    fn pass_on(&self, line: String) {
        self.line(move || line)
    }
}

/// Which way the traced bytes went, seen from the peerwire that printed the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `->`: we sent it to the peer.
    Sent,
    /// `<-`: the peer sent it to us.
    Received,
}

/// What a trace line shows: the handshake (once each way) or one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Traced {
    Handshake(Handshake),
    Message(Message),
}

/// One line of the wire trace, read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    /// The other end of the connection.
    pub peer: SocketAddr,
    pub direction: Direction,
    pub traced: Traced,
}

/// A line that is not a trace line, or a trace line this parser cannot read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TraceError {
    /// No `ADDRESS -> ` or `ADDRESS <- ` at the start: some other line of stderr (a log line,
    /// the closing summary). Callers usually skip these.
    #[error("not a trace line: {0:?}")]
    NotATraceLine(String),
    /// It starts like a trace line, but `what` cannot be read from `text`.
    #[error("trace line: cannot read {what} from {text:?}")]
    Unreadable { what: &'static str, text: String },
}

/// Reads one trace line (without its newline).
pub fn parse_trace_line(line: &str) -> Result<TraceLine, TraceError> {
    let not_trace = || TraceError::NotATraceLine(line.to_string());
    let (peer, rest) = line.split_once(' ').ok_or_else(not_trace)?;
    let peer = SocketAddr::from_str(peer).map_err(|_| not_trace())?;
    let (direction, shown) = if let Some(shown) = rest.strip_prefix("-> ") {
        (Direction::Sent, shown)
    } else if let Some(shown) = rest.strip_prefix("<- ") {
        (Direction::Received, shown)
    } else {
        return Err(not_trace());
    };
    let traced = if shown.starts_with("Handshake {") {
        Traced::Handshake(parse_handshake(shown)?)
    } else {
        Traced::Message(parse_message(shown)?)
    };
    prints_as(&traced, shown)?;
    Ok(TraceLine {
        peer,
        direction,
        traced,
    })
}

/// The check that keeps the parser honest: what we read must print as the text it came from.
fn prints_as(traced: &Traced, shown: &str) -> Result<(), TraceError> {
    let printed = match traced {
        Traced::Handshake(h) => format!("{h:?}"),
        Traced::Message(m) => format!("{m:?}"),
    };
    if printed == shown {
        Ok(())
    } else {
        Err(unreadable("a message that prints back as itself", shown))
    }
}

fn unreadable(what: &'static str, text: &str) -> TraceError {
    TraceError::Unreadable {
        what,
        text: text.to_string(),
    }
}

/// `Handshake { reserved: 0000000000100000, info_hash: <40 hex>, peer_id: <escaped> }`.
/// The peer id comes last and may contain any character (`, ` and `}` too), so it is
/// everything between `peer_id: ` and the closing ` }`.
pub fn parse_handshake(text: &str) -> Result<Handshake, TraceError> {
    let fields = text
        .strip_prefix("Handshake { reserved: ")
        .and_then(|rest| rest.strip_suffix(" }"))
        .ok_or_else(|| unreadable("a handshake", text))?;
    let (reserved, rest) = fields
        .split_once(", info_hash: ")
        .ok_or_else(|| unreadable("info_hash", text))?;
    let (info_hash, peer_id) = rest
        .split_once(", peer_id: ")
        .ok_or_else(|| unreadable("peer_id", text))?;
    let peer_id = unescape_ascii(peer_id).and_then(|id| <[u8; 20]>::try_from(id).ok());
    Ok(Handshake {
        reserved: from_hex(reserved).ok_or_else(|| unreadable("reserved", text))?,
        info_hash: InfoHash(from_hex(info_hash).ok_or_else(|| unreadable("info_hash", text))?),
        peer_id: PeerId(peer_id.ok_or_else(|| unreadable("peer_id", text))?),
    })
}

/// A message as its `Debug` prints it: `Choke`, `Port(6881)`, `Have { index: 7 }`,
/// `Bitfield { <2 bytes> }`, `Piece { index: 1, begin: 0, block: <16384 bytes> }`, ...
pub fn parse_message(text: &str) -> Result<Message, TraceError> {
    let bare = match text {
        "KeepAlive" => Some(Message::KeepAlive),
        "Choke" => Some(Message::Choke),
        "Unchoke" => Some(Message::Unchoke),
        "Interested" => Some(Message::Interested),
        "NotInterested" => Some(Message::NotInterested),
        "HaveAll" => Some(Message::HaveAll),
        "HaveNone" => Some(Message::HaveNone),
        _ => None,
    };
    if let Some(message) = bare {
        return Ok(message);
    }
    if let Some(port) = text.strip_prefix("Port(").and_then(|r| r.strip_suffix(')')) {
        return Ok(Message::Port(number(port, "the port")?));
    }
    let (name, fields) = text
        .split_once(" { ")
        .and_then(|(name, rest)| Some((name, rest.strip_suffix(" }")?)))
        .ok_or_else(|| unreadable("a message", text))?;
    message_with_fields(name, &Fields::split(fields))
}

/// Builds the message named `name` from its `key: value` fields.
fn message_with_fields(name: &str, fields: &Fields) -> Result<Message, TraceError> {
    Ok(match name {
        "Have" => Message::Have {
            index: fields.number("index")?,
        },
        "SuggestPiece" => Message::SuggestPiece {
            index: fields.number("index")?,
        },
        "AllowedFast" => Message::AllowedFast {
            index: fields.number("index")?,
        },
        "RejectRequest" => Message::RejectRequest {
            index: fields.number("index")?,
            begin: fields.number("begin")?,
            length: fields.number("length")?,
        },
        "Bitfield" => Message::Bitfield(fields.blob("")?),
        "Request" => Message::Request {
            index: fields.number("index")?,
            begin: fields.number("begin")?,
            length: fields.number("length")?,
        },
        "Piece" => Message::Piece {
            index: fields.number("index")?,
            begin: fields.number("begin")?,
            block: fields.blob("block")?,
        },
        "Cancel" => Message::Cancel {
            index: fields.number("index")?,
            begin: fields.number("begin")?,
            length: fields.number("length")?,
        },
        "Extended" => Message::Extended {
            id: fields.number("id")?,
            payload: fields.blob("payload")?,
        },
        "Unknown" => Message::Unknown {
            id: fields.number("id")?,
            length: fields.number("length")?,
        },
        // BEP 52: the header in full, the hashes by their number (zeros come back).
        "HashRequest" => fields.hash_range()?.request(),
        "HashReject" => fields.hash_range()?.reject(),
        "Hashes" => {
            let range = fields.hash_range()?;
            let hashes = fields.hashes("hashes")?;
            range
                .answer(hashes)
                .map_err(|_| unreadable("as many hashes as the header implies", fields.text))?
        }
        _ => return Err(unreadable("a known message name", name)),
    })
}

/// The `key: value` pairs between the braces; a value without a key (the bitfield's
/// `<2 bytes>`) has the key `""`.
struct Fields<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    /// All of them, for error messages.
    text: &'a str,
}

impl<'a> Fields<'a> {
    fn split(text: &'a str) -> Fields<'a> {
        let pair = |field: &'a str| field.split_once(": ").unwrap_or(("", field));
        let pairs = text.split(", ").map(pair).collect();
        Fields { pairs, text }
    }

    fn value(&self, key: &'static str) -> Result<&'a str, TraceError> {
        let found = self.pairs.iter().find(|(k, _)| *k == key);
        found
            .map(|(_, v)| *v)
            .ok_or_else(|| unreadable(key, self.text))
    }

    fn number<T: FromStr>(&self, key: &'static str) -> Result<T, TraceError> {
        number(self.value(key)?, key)
    }

    /// The header of a hash message (BEP 52): the pieces root in hex, then four numbers.
    fn hash_range(&self) -> Result<HashRange, TraceError> {
        let root = self.value("pieces_root")?;
        let root =
            from_hex(root).ok_or_else(|| unreadable("a pieces root of 64 hex digits", root))?;
        Ok(HashRange {
            pieces_root: Sha256Hash(root),
            base_layer: self.number("base_layer")?,
            index: self.number("index")?,
            length: self.number("length")?,
            proof_layers: self.number("proof_layers")?,
        })
    }

    /// `<N hashes>` → N zero hashes, N checked against the most one message carries before
    /// anything is allocated.
    fn hashes(&self, key: &'static str) -> Result<Vec<Sha256Hash>, TraceError> {
        let text = self.value(key)?;
        let count = text
            .strip_prefix('<')
            .and_then(|t| t.strip_suffix(" hashes>"))
            .ok_or_else(|| unreadable("a count like <16 hashes>", text))?;
        let count: u32 = number(count, "a count of hashes")?;
        if count > MAX_HASHES_PER_MESSAGE + MAX_LAYERS {
            return Err(unreadable("a count of hashes within one message", text));
        }
        Ok(vec![Sha256Hash::ZERO; count as usize])
    }

    /// `<N bytes>` → N zero bytes (the trace keeps sizes, not contents). N is checked
    /// against the largest frame before anything is allocated.
    fn blob(&self, key: &'static str) -> Result<Vec<u8>, TraceError> {
        let text = self.value(key)?;
        let size = text
            .strip_prefix('<')
            .and_then(|t| t.strip_suffix(" bytes>"))
            .ok_or_else(|| unreadable("a size like <16384 bytes>", text))?;
        let size: u32 = number(size, "a size")?;
        if size > MAX_MESSAGE_LEN {
            return Err(unreadable("a size within one frame", text));
        }
        Ok(vec![0; size as usize])
    }
}

fn number<T: FromStr>(text: &str, what: &'static str) -> Result<T, TraceError> {
    text.parse().map_err(|_| unreadable(what, text))
}

/// Undoes `<[u8]>::escape_ascii` (how peer ids print): `\t \r \n \\ \' \"` and `\xNN`;
/// every other character stands for itself.
fn unescape_ascii(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let escaped = match bytes.next()? {
            b't' => b'\t',
            b'r' => b'\r',
            b'n' => b'\n',
            b'x' => hex_byte(&[bytes.next()?, bytes.next()?])?,
            other @ (b'\\' | b'\'' | b'"') => other,
            _ => return None,
        };
        out.push(escaped);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_lines_of_the_last_peers() {
        let ring = Arc::new(TraceRing::new());
        let trace = Trace::Ring {
            ring: Arc::clone(&ring),
            also: Box::new(Trace::Off),
        };
        let peer = |n: usize| SocketAddr::from(([127, 0, 0, 1], n as u16 + 1));
        for n in 0..TraceRing::PEERS + 5 {
            for k in 0..TraceRing::LINES + 3 {
                trace.line(|| format!("{} <- Have {{ index: {k} }}", peer(n)));
            }
        }
        assert!(
            ring.lines(peer(0)).is_empty(),
            "the oldest peers are dropped"
        );
        let kept = ring.lines(peer(TraceRing::PEERS + 4));
        assert_eq!(kept.len(), TraceRing::LINES);
        assert!(kept[0].ends_with("Have { index: 3 }"), "{}", kept[0]);
        trace.line(|| "not a trace line".to_string());
    }

    const PEER: &str = "127.0.0.1:6881";

    fn message_line(arrow: &str, message: &Message) -> String {
        format!("{PEER} {arrow} {message}") // as `Connection::send` and `receive` print it
    }

    #[test]
    fn every_message_reads_back_from_its_trace_line() {
        let mut messages = crate::wire::message::one_of_each();
        messages.push(Message::Unknown { id: 42, length: 3 });
        for message in messages {
            let line = parse_trace_line(&message_line("<-", &message)).unwrap();
            assert_eq!(line.peer, PEER.parse().unwrap());
            assert_eq!(line.direction, Direction::Received);
            assert_eq!(line.traced, Traced::Message(message));
        }
    }

    #[test]
    fn contents_come_back_as_zeros_of_the_traced_size() {
        let sent = Message::Piece {
            index: 0,
            begin: 0,
            block: vec![0xab; 5],
        };
        let line = parse_trace_line(&message_line("->", &sent)).unwrap();
        let zeros = Message::Piece {
            index: 0,
            begin: 0,
            block: vec![0; 5],
        };
        assert_eq!(line.traced, Traced::Message(zeros));
        assert_eq!(line.direction, Direction::Sent);
    }

    #[test]
    fn a_handshake_reads_back_even_with_a_peer_id_full_of_punctuation() {
        let mut peer_id = *b"-PW0001-, }\n\\'\"\t\r\x00\xff\x7f";
        peer_id[19] = b'}';
        let sent = Handshake {
            reserved: [0, 0, 0, 0, 0, 0x10, 0, 0x05],
            info_hash: InfoHash([0xdf; 20]),
            peer_id: PeerId(peer_id),
        };
        let line = format!("[::1]:51413 -> {sent:?}");
        let read = parse_trace_line(&line).unwrap();
        assert_eq!(read.traced, Traced::Handshake(sent));
        assert_eq!(read.peer, "[::1]:51413".parse().unwrap());
    }

    #[test]
    fn a_real_libtorrent_handshake_line() {
        // Captured from libtorrent 2.0.8 (docs/wire-format.md).
        let line = "127.0.0.1:23460 <- Handshake { reserved: 0000000000100005, info_hash: \
                    bbe97502a4e52a015701a1248e8b4f2e022a9f9a, peer_id: -LT2080-2GLpsw.9!nXo }";
        let Traced::Handshake(h) = parse_trace_line(line).unwrap().traced else {
            panic!("not a handshake");
        };
        assert_eq!(&h.peer_id.0, b"-LT2080-2GLpsw.9!nXo");
        assert_eq!(h.reserved[7], 0x05); // DHT (0x01) and the fast extension (0x04)
        assert!(h.supports_extensions());
    }

    #[test]
    fn other_stderr_lines_are_not_trace_lines() {
        for line in [
            "",
            "done: 2 pieces (0 already on disk), 50000 bytes downloaded this run",
            "[2026-12-01T19:29:58Z WARN  peerwire::session] port 23457 is in use",
            "127.0.0.1:6881: disconnected: end of file",
            "127.0.0.1:6881 => Choke",
        ] {
            assert!(
                matches!(parse_trace_line(line), Err(TraceError::NotATraceLine(_))),
                "{line:?}"
            );
        }
    }

    #[test]
    fn a_changed_format_is_an_error_not_a_guess() {
        for line in [
            "127.0.0.1:6881 -> Choked",                                 // unknown name
            "127.0.0.1:6881 -> Have { index: 7, extra: 1 }",            // a field too many
            "127.0.0.1:6881 -> Have { piece: 7 }",                      // a renamed field
            "127.0.0.1:6881 -> Request { index: 3, begin: 0 }",         // a field missing
            "127.0.0.1:6881 -> Piece { index: 1, begin: 0, block: 9 }", // a size without <>
            "127.0.0.1:6881 -> Have {index: 7}",                        // other spacing
            "127.0.0.1:6881 -> Have { index: -1 }",                     // not a u32
            "127.0.0.1:6881 -> Bitfield { <4294967295 bytes> }",        // over one frame
            // A hash message whose root is short, or whose count its header does not allow.
            "127.0.0.1:6881 -> HashRequest { pieces_root: 00, base_layer: 0, index: 0, \
             length: 2, proof_layers: 0 }",
            "127.0.0.1:6881 -> Hashes { pieces_root: 0000000000000000000000000000000000000000\
             000000000000000000000000, base_layer: 0, index: 0, length: 2, proof_layers: 0, \
             hashes: <3 hashes> }",
            "127.0.0.1:6881 -> Hashes { pieces_root: 0000000000000000000000000000000000000000\
             000000000000000000000000, base_layer: 0, index: 0, length: 2, proof_layers: 0, \
             hashes: <4294967295 hashes> }",
            "127.0.0.1:6881 -> Handshake { reserved: 00, info_hash: 00, peer_id: x }",
        ] {
            assert!(
                matches!(parse_trace_line(line), Err(TraceError::Unreadable { .. })),
                "{line:?} was read"
            );
        }
    }
}
