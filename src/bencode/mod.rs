//! # Bencoding (BEP 3, "bencoding") — walkthrough §1
//!
//! Every structured thing BitTorrent stores or sends — the `.torrent` file, a tracker's answer,
//! an extension message — is *bencoded*. There are four kinds of value:
//!
//! ```text
//!   integer      i<decimal>e          i42e         i-7e
//!   byte string  <length>:<bytes>     4:spam       0:
//!   list         l<values>e           l4:spami42ee
//!   dictionary   d<key><value>...e    d3:cow3:mooe      (keys are byte strings, sorted)
//! ```
//!
//! Where this sits in the data flow: raw bytes (a file, an HTTP body, a wire message) go into
//! [`decode`], which returns a tree of [`Value`]s. `metainfo` reads a torrent out of that tree;
//! `tracker` reads an announce response. Going the other way, [`encode`] turns a tree back
//! into bytes (for `create`, for tracker and extension messages we send).
//!
//! The one subtle point: every decoded value remembers its [`Span`], the byte range it came
//! from. The info hash is the SHA-1 of the `info` dictionary *exactly as it appears in the
//! file*, so `metainfo` hashes `&bytes[info.span.range()]` instead of re-encoding the tree.
//! A re-encoding would sort keys and drop quirks, and give a different hash for torrents
//! made by sloppy software.

mod decode;
mod encode;
mod json;

pub use decode::{DecodeError, DecodeErrorKind, Decoded, Limits, SoftError, decode, decode_prefix};
pub use encode::encode;
pub use json::to_json;

use std::fmt;
use std::ops::Range;

/// Where a decoded value sits in the input: `start..end` in bytes, `end` exclusive.
/// Values built in code (not decoded) have the empty span `0..0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The span as a range, for slicing the original input: `&input[span.range()]`.
    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

/// One bencoded value together with the byte span it was decoded from.
#[derive(Clone, PartialEq)]
pub struct Value {
    pub item: Item,
    /// The bytes of the input it was decoded from, so that the info hash can be taken over
    /// the `info` dictionary exactly as the file has it. [W1.1]
    pub span: Span,
}

/// The four kinds of bencoded value.
///
/// A dictionary keeps its entries in the order they were encoded, duplicates included, so that
/// `decode` can show a torrent as it really is; lookups take the first matching key.
#[derive(Clone, PartialEq)]
pub enum Item {
    Integer(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Vec<(Vec<u8>, Value)>),
}

impl Value {
    /// A value built in code rather than decoded (its span is empty).
    pub fn new(item: Item) -> Value {
        Value {
            item,
            span: Span::default(),
        }
    }

    pub fn integer(n: i64) -> Value {
        Value::new(Item::Integer(n))
    }

    pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
        Value::new(Item::Bytes(b.into()))
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::new(Item::List(items))
    }

    /// A dictionary from `(key, value)` pairs; [`encode`] sorts the keys.
    pub fn dict(entries: Vec<(&str, Value)>) -> Value {
        let entries = entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect();
        Value::new(Item::Dict(entries))
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self.item {
            Item::Integer(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.item {
            Item::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8 text, if it is a byte string and valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match &self.item {
            Item::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(Vec<u8>, Value)]> {
        match &self.item {
            Item::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// Looks `key` up in a dictionary (first match). `None` if absent or not a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let entries = self.as_dict()?;
        entries
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// A short name for the kind of value, for error messages ("expected a list, found ...").
    pub fn kind_name(&self) -> &'static str {
        match self.item {
            Item::Integer(_) => "an integer",
            Item::Bytes(_) => "a byte string",
            Item::List(_) => "a list",
            Item::Dict(_) => "a dictionary",
        }
    }
}

/// `Debug` prints values the way a student wants to see them in a debugger: short strings as
/// text, long or binary strings as `<N bytes>`, and the span of the outermost value.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.item {
            Item::Integer(n) => write!(f, "{n}"),
            Item::Bytes(b) => write!(f, "{}", DebugBytes(b)),
            Item::List(items) => f.debug_list().entries(items).finish(),
            Item::Dict(entries) => {
                let mut map = f.debug_map();
                for (k, v) in entries {
                    map.entry(&DebugBytes(k), v);
                }
                map.finish()
            }
        }
    }
}

/// Bytes shown as a quoted string when short printable text, else as `<N bytes>`.
pub struct DebugBytes<'a>(pub &'a [u8]);

impl fmt::Display for DebugBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(s) if s.len() <= 64 && !s.chars().any(char::is_control) => write!(f, "{s:?}"),
            _ => write!(f, "<{} bytes>", self.0.len()),
        }
    }
}

impl fmt::Debug for DebugBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_finds_the_first_matching_key() {
        let v = decode(b"d1:ai1e1:ai2ee").unwrap().value;
        assert_eq!(v.get("a").and_then(Value::as_integer), Some(1));
        assert!(v.get("b").is_none());
    }

    #[test]
    fn debug_shows_binary_as_a_length() {
        let v = Value::list(vec![Value::bytes("spam"), Value::bytes(vec![0u8, 1, 2])]);
        assert_eq!(format!("{v:?}"), r#"["spam", <3 bytes>]"#);
    }
}
