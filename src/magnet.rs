//! Magnet links: a torrent named by its info hash alone (BEP 9, "magnet URI format") —
//! walkthrough §14.
//!
//! A magnet link carries no `info` dictionary, only what is needed to find one:
//!
//! ```text
//!   magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a   the info hash (required)
//!          &dn=ubuntu.iso                                          a name to show meanwhile
//!          &tr=udp%3A%2F%2Ftracker.example%3A6969%2Fannounce       a tracker (any number)
//!          &x.pe=10.0.0.2:6881                                     a peer to try (any number)
//!          &ws=https%3A%2F%2Fmirror.example%2Fubuntu.iso           a web seed (kept for later)
//! ```
//!
//! This module only reads the text; it does no I/O. Where it sits in the data flow:
//!
//! ```text
//!   download <magnet>
//!       │
//!       ▼
//!   Magnet::parse (here) ──► info_hash, name, trackers, x.pe peers
//!       │
//!       ▼
//!   peers: --peer, x.pe, one announce to each tr         cli::magnet::resolve (§14)
//!       │
//!       ▼
//!   the info dictionary from peers, SHA-1 == info_hash?  metadata (§13)
//!       │
//!       ▼
//!   a normal Metainfo ──► the same download as a .torrent (§7–§10)
//! ```
//!
//! Decisions the BEP leaves open, and what we chose:
//! - The hash is 40 hex digits or 32 base32 characters (RFC 4648: `A`–`Z`, `2`–`7`), in either
//!   case. A hash needs no escaping, but some sites escape it anyway (`xt=urn%3Abtih%3A...`, or
//!   one digit as `%61`), so `xt` is percent-decoded first; each decoded byte remembers where
//!   it was written, and an error still points at the offending character of the link.
//! - Parameter names ignore case (`XT=`, `dN=`, `Tr=`): links are written by hand too.
//! - Only `xt` must be readable. A `dn`, `tr`, `ws` or `x.pe` with a broken escape (`%ZZ`, a
//!   trailing `%3`) is a hint we cannot read: it is dropped with a warning that names it, and
//!   the link is used without it. A broken escape in `xt` is an error: it may hide the hash.
//! - A v2 hash (`urn:btmh:`, BEP 52) is a multihash: `1220` (SHA-256, 32 bytes) and 64 hex
//!   digits. A link with only that names the torrent on the wire by the hash's first 20 bytes,
//!   and the metadata must hash to it with SHA-256. A hybrid torrent's link may carry both;
//!   then the `btih` is its name on the wire. Two *different* `btih` are an error.
//! - `+` means a space only in `dn`, as most clients treat it (sites build that part with HTML
//!   form encoding). In `tr`, `ws` and `x.pe` it is a literal `+`: a tracker URL is kept byte
//!   for byte after percent-decoding, since its query string is the tracker's business.
//! - A `tr` or `ws` whose decoded bytes are not UTF-8 (a Latin-1 path, a binary passkey) keeps
//!   those bytes escaped: `%E9` stays `%E9`, while the UTF-8 around it is decoded. A URL cannot
//!   carry the byte 0xE9 any other way (RFC 3986, section 2.1), so this is exactly what the
//!   tracker will receive; `String::from_utf8_lossy` would send `%EF%BF%BD` instead, and a
//!   `Vec<u8>` field would make every user escape the bytes again.
//! - Some clients number repeated keys (`tr.1=`, `tr.2=`, `xt.1=`): the suffix is dropped.
//!   Unknown keys (`xl`, `as`, `kt`, ...) are ignored. Repeated trackers, peers and web seeds
//!   are dropped after their first appearance; of several `dn`, the first wins.
//! - `x.pe` may be a hostname (BEP 9 allows it); resolving names is not this module's job, so
//!   such entries are skipped with a warning.
//! - Error offsets count characters from 0, the `m` of `magnet:` being 0.

use crate::encoding::{PercentDecoded, Plus, percent_decode, percent_encode, utf8_or_escaped};
use crate::metainfo::{InfoHash, InfoHashV2};
use std::net::SocketAddr;
use std::str::FromStr;
use thiserror::Error;

/// What a magnet link says about a torrent. Only `info_hash` is certain to be useful; the
/// rest are hints (the real name comes with the metadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    /// The torrent's name on the wire: `xt=urn:btih:`, the v1 info hash, or without one, the
    /// first 20 bytes of the `urn:btmh:` v2 hash.
    pub info_hash: InfoHash,
    /// `xt=urn:btmh:1220…`: the v2 info hash (BEP 52), when the link has one.
    pub v2: Option<InfoHashV2>,
    /// `dn`: the display name, percent-decoded (`+` is a space here); bad UTF-8 becomes `�`.
    pub name: Option<String>,
    /// Every readable `tr`, percent-decoded (bytes that are not UTF-8 stay `%XX`), in the
    /// link's order, each once.
    pub trackers: Vec<String>,
    /// Every `x.pe` that is an IP address and port (`1.2.3.4:5`, `[::1]:5`), each once.
    pub peers: Vec<SocketAddr>,
    /// Every readable `ws` (BEP 19 web seed), decoded like `tr`, each once. Not used yet.
    pub web_seeds: Vec<String>,
}

/// Why a magnet link cannot be used. `offset` is a character offset into the link, from 0;
/// `param` is the key as written (`xt`, `tr.1`, ...).
#[derive(Debug, Error)]
pub enum MagnetError {
    /// The text does not start with `magnet:?` (`found` is its first eight characters).
    #[error("not a magnet link: it must begin with `magnet:?`, this one begins `{found}`")]
    NotMagnet { found: String },
    /// No `xt=urn:btih:` and no `xt=urn:btmh:` either.
    #[error("no info hash: a magnet link needs an `xt=urn:btih:<hash>` parameter (BEP 9)")]
    MissingInfoHash,
    /// A `urn:btmh:` that is not `1220` and 64 hex digits (a SHA-256 multihash).
    #[error(
        "`{param}` at offset {offset}: a btmh info hash is `1220` (SHA-256, 32 bytes) and 64 \
         hex digits (BEP 52), this is not"
    )]
    BadBtmh { param: String, offset: usize },
    /// The text after `urn:btih:` has neither 40 nor 32 characters.
    #[error(
        "`{param}` at offset {offset}: a btih info hash is 40 hex digits or 32 base32 \
         characters, this one has {found}"
    )]
    HashLength {
        param: String,
        offset: usize,
        found: usize,
    },
    /// A character outside the alphabet the hash's length calls for.
    #[error("`{param}`: {character:?} at offset {offset} is not a {alphabet}")]
    HashCharacter {
        param: String,
        offset: usize,
        character: char,
        alphabet: &'static str,
    },
    /// A `%` without two hex digits after it, in `xt` (any other parameter is dropped instead).
    #[error("`{param}`: the `%` at offset {offset} is not followed by two hex digits")]
    Percent { param: String, offset: usize },
    /// Two `urn:btih:` that name different torrents: which one was meant?
    #[error(
        "two different btih info hashes: {first}, then {second} in `{param}` at offset {offset}"
    )]
    ConflictingHashes {
        param: String,
        offset: usize,
        first: InfoHash,
        second: InfoHash,
    },
}

impl Magnet {
    /// Reads a magnet link (BEP 9). See the module doc for what is accepted.
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        let mut found = Found::default();
        for param in params(uri)? {
            found.add(&param)?;
        }
        found.finish()
    }

    /// Writes the link back: `xt` as lowercase hex, `dn`, `tr` and `ws` percent-encoded
    /// (every byte but `A-Z a-z 0-9 - . _ ~`), `x.pe` as addresses. Parsing the result gives
    /// back an equal `Magnet`.
    pub fn to_uri(&self) -> String {
        // A v2-only link's `info_hash` is derived from its btmh: it gets no btih of its own.
        let mut uri = match self.v2 {
            Some(v2) if v2.truncated() == self.info_hash => {
                format!("magnet:?xt=urn:btmh:1220{}", v2.to_hex())
            }
            Some(v2) => format!(
                "magnet:?xt=urn:btih:{}&xt=urn:btmh:1220{}",
                self.info_hash.to_hex(),
                v2.to_hex()
            ),
            None => format!("magnet:?xt=urn:btih:{}", self.info_hash.to_hex()),
        };
        if let Some(name) = &self.name {
            uri.push_str("&dn=");
            uri.push_str(&percent_encode(name.as_bytes()));
        }
        for tracker in &self.trackers {
            uri.push_str("&tr=");
            uri.push_str(&percent_encode(tracker.as_bytes()));
        }
        for peer in &self.peers {
            // An IPv6 scope id prints as `%3`: escape the `%` so it reads back.
            uri.push_str("&x.pe=");
            uri.push_str(&peer.to_string().replace('%', "%25"));
        }
        for web_seed in &self.web_seeds {
            uri.push_str("&ws=");
            uri.push_str(&percent_encode(web_seed.as_bytes()));
        }
        uri
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(uri: &str) -> Result<Magnet, MagnetError> {
        Magnet::parse(uri)
    }
}

/// One `key=value` of the link, still percent-encoded, and where its value starts.
struct Param<'a> {
    /// The key as written, suffix and all: `tr.1`.
    key: &'a str,
    /// The raw value.
    value: &'a str,
    /// Character offset of the value's first character in the whole link.
    offset: usize,
}

impl Param<'_> {
    /// The key in lower case without a numeric suffix: `Tr.1` → `tr`, `X.PE` → `x.pe`.
    fn name(&self) -> String {
        let base = match self.key.rsplit_once('.') {
            Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => self.key,
        };
        base.to_ascii_lowercase()
    }

    /// Character offset in the link of byte `i` of the value.
    fn offset_of(&self, i: usize) -> usize {
        let before = self.value.get(..i).unwrap_or_default();
        self.offset + before.chars().count()
    }

    /// Character offset in the link of byte `i` of the decoded value: `%61` and `a` both give
    /// `a`, but an error about it must point at what was written (the value's end if there is
    /// no byte `i`).
    fn decoded_offset(&self, decoded: &PercentDecoded, i: usize) -> usize {
        let raw_index = decoded.written_at.get(i).copied();
        self.offset_of(raw_index.unwrap_or(self.value.len()))
    }
}

/// Checks the scheme and splits the query into parameters, empty ones (`&&`) dropped.
fn params(uri: &str) -> Result<Vec<Param<'_>>, MagnetError> {
    const SCHEME: &str = "magnet:?";
    let query = strip_prefix_ignore_case(uri, SCHEME).ok_or_else(|| MagnetError::NotMagnet {
        found: uri.chars().take(SCHEME.len()).collect(),
    })?;
    let mut params = Vec::new();
    let mut offset = SCHEME.len();
    for part in query.split('&') {
        if !part.is_empty() {
            // A key without `=` gets an empty value.
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let value_offset = offset + key.chars().count() + 1;
            params.push(Param {
                key,
                value,
                offset: value_offset,
            });
        }
        offset += part.chars().count() + 1; // the part and its `&`
    }
    Ok(params)
}

/// `text` without `prefix`, compared ignoring ASCII case; `None` if it does not start so.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// The link's parts as they are found, before we know whether there is a v1 hash.
#[derive(Default)]
struct Found {
    btih: Option<InfoHash>,
    /// The first `urn:btmh:`.
    btmh: Option<InfoHashV2>,
    name: Option<String>,
    trackers: Vec<String>,
    peers: Vec<SocketAddr>,
    web_seeds: Vec<String>,
}

impl Found {
    fn add(&mut self, param: &Param) -> Result<(), MagnetError> {
        match param.name().as_str() {
            "xt" => self.add_exact_topic(param)?,
            "dn" => {
                if let Some(name) = readable(param, decode_text(param, Plus::Space)) {
                    self.name.get_or_insert(name);
                }
            }
            "tr" => {
                if let Some(url) = readable(param, decode_url(param)) {
                    push_unique(&mut self.trackers, url);
                }
            }
            "ws" => {
                if let Some(url) = readable(param, decode_url(param)) {
                    push_unique(&mut self.web_seeds, url);
                }
            }
            "x.pe" => {
                if let Some(text) = readable(param, decode_text(param, Plus::Literal)) {
                    self.add_peer(param, &text);
                }
            }
            _ => {} // someone else's parameter (xl, as, kt, ...): not ours to judge
        }
        Ok(())
    }

    /// `xt`: a v1 hash is decoded, a v2 one only noted; other URNs (`urn:sha1:`, `urn:ed2k:`)
    /// name the file on other networks and are ignored.
    fn add_exact_topic(&mut self, param: &Param) -> Result<(), MagnetError> {
        // Decoded first, `urn%3Abtih%3A` being `urn:btih:`; a broken `%` here is an error, as
        // it may sit in the one parameter the link cannot do without.
        let topic = decode_value(param, Plus::Literal)?;
        let urn = topic.bytes.get(..URN_LENGTH).unwrap_or_default();
        if urn.eq_ignore_ascii_case(b"urn:btih:") {
            let info_hash = decode_btih(param, &topic)?;
            match self.btih {
                None => self.btih = Some(info_hash),
                Some(first) if first == info_hash => {} // the same hash again (hex and base32)
                Some(first) => {
                    return Err(MagnetError::ConflictingHashes {
                        param: param.key.to_string(),
                        offset: param.decoded_offset(&topic, URN_LENGTH),
                        first,
                        second: info_hash,
                    });
                }
            }
        } else if urn.eq_ignore_ascii_case(b"urn:btmh:") {
            let hash =
                decode_btmh(&topic.bytes[URN_LENGTH..]).ok_or_else(|| MagnetError::BadBtmh {
                    param: param.key.to_string(),
                    offset: param.decoded_offset(&topic, URN_LENGTH),
                })?;
            self.btmh.get_or_insert(hash);
        }
        Ok(())
    }

    /// `x.pe`, decoded: kept if it is an IP address and port, skipped with a warning otherwise.
    fn add_peer(&mut self, param: &Param, text: &str) {
        match text.parse::<SocketAddr>() {
            Ok(addr) => push_unique(&mut self.peers, addr),
            Err(_) => log::warn!(
                "magnet link: skipping `{}={text}` at offset {}: not an IP address and port \
                 (hostnames are not resolved)",
                param.key,
                param.offset
            ),
        }
    }

    /// The link as a whole: it must have named a v1 hash.
    fn finish(self) -> Result<Magnet, MagnetError> {
        let info_hash = match (self.btih, self.btmh) {
            (Some(info_hash), _) => info_hash, // with or without a v2 hash beside it
            (None, Some(v2)) => v2.truncated(),
            (None, None) => return Err(MagnetError::MissingInfoHash),
        };
        Ok(Magnet {
            info_hash,
            v2: self.btmh,
            name: self.name,
            trackers: self.trackers,
            peers: self.peers,
            web_seeds: self.web_seeds,
        })
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// A hint (`dn`, `tr`, `ws`, `x.pe`) we could not decode is not worth refusing the whole
/// link for: the warning names it as written, and the link goes on without it.
fn readable<T>(param: &Param, decoded: Result<T, MagnetError>) -> Option<T> {
    match decoded {
        Ok(value) => Some(value),
        Err(e) => {
            log::warn!("magnet link: ignoring `{}={}`: {e}", param.key, param.value);
            None
        }
    }
}

/// A BEP 52 multihash: `12` (SHA-256), `20` (32 bytes), then the 32 bytes in hex.
fn decode_btmh(text: &[u8]) -> Option<InfoHashV2> {
    let digits = std::str::from_utf8(text.strip_prefix(b"1220")?).ok()?;
    crate::encoding::from_hex::<32>(digits).map(InfoHashV2)
}

/// `urn:btih:` and `urn:btmh:` are both 9 characters; the hash follows.
const URN_LENGTH: usize = 9;

/// The digits a btih hash may be written in. Both spell exactly 160 bits:
/// 40 hex digits × 4 bits = 32 base32 characters × 5 bits = 20 bytes.
struct Alphabet {
    /// For error messages: "… is not a hex digit (0-9, a-f)".
    name: &'static str,
    bits: u32,
    value: fn(char) -> Option<u32>,
}

const HEX: Alphabet = Alphabet {
    name: "hex digit (0-9, a-f, either case)",
    bits: 4,
    value: hex_value,
};

const BASE32: Alphabet = Alphabet {
    name: "base32 character (RFC 4648: A-Z, 2-7)",
    bits: 5,
    value: base32_value,
};

fn hex_value(c: char) -> Option<u32> {
    c.to_digit(16)
}

/// RFC 4648 base32: `A`–`Z` are 0–25, `2`–`7` are 26–31. Either case is accepted.
fn base32_value(c: char) -> Option<u32> {
    match c.to_ascii_uppercase() {
        upper @ 'A'..='Z' => Some(upper as u32 - 'A' as u32),
        digit @ '2'..='7' => Some(digit as u32 - '2' as u32 + 26),
        _ => None,
    }
}

/// The hash after `urn:btih:` in the decoded `xt`: its length picks the alphabet.
fn decode_btih(param: &Param, topic: &PercentDecoded) -> Result<InfoHash, MagnetError> {
    let hash = topic.bytes.get(URN_LENGTH..).unwrap_or_default();
    // Characters, not bytes: "this one has 40" must be true of what the user sees.
    match String::from_utf8_lossy(hash).chars().count() {
        40 => decode_digits(param, topic, &HEX),
        32 => decode_digits(param, topic, &BASE32),
        found => Err(MagnetError::HashLength {
            param: param.key.to_string(),
            offset: param.decoded_offset(topic, URN_LENGTH),
            found,
        }),
    }
}

/// Reads the digits as one stream of bits, most significant first, and cuts it into bytes.
/// The caller has checked that there are exactly 160 bits' worth of digits.
fn decode_digits(
    param: &Param,
    topic: &PercentDecoded,
    alphabet: &Alphabet,
) -> Result<InfoHash, MagnetError> {
    let hash = topic.bytes.get(URN_LENGTH..).unwrap_or_default();
    let mut bytes = [0u8; 20];
    let mut filled = 0;
    let mut pending: u32 = 0; // bits read but not yet placed in a byte
    let mut pending_bits = 0;
    for (i, &byte) in hash.iter().enumerate() {
        // Every digit is ASCII; the first byte that is not one is the error. For the message,
        // the character it begins (a `é` is two bytes), or U+FFFD if it begins none.
        let digit = (alphabet.value)(char::from(byte)).filter(|_| byte.is_ascii());
        let digit = digit.ok_or_else(|| MagnetError::HashCharacter {
            param: param.key.to_string(),
            offset: param.decoded_offset(topic, URN_LENGTH + i),
            character: first_character(&hash[i..]),
            alphabet: alphabet.name,
        })?;
        pending = (pending << alphabet.bits) | digit;
        pending_bits += alphabet.bits;
        if pending_bits >= 8 {
            pending_bits -= 8;
            if let Some(byte) = bytes.get_mut(filled) {
                *byte = (pending >> pending_bits) as u8;
            }
            filled += 1;
            pending &= (1 << pending_bits) - 1;
        }
    }
    Ok(InfoHash(bytes))
}

/// The character `bytes` begin with, or U+FFFD if they do not begin with valid UTF-8.
fn first_character(bytes: &[u8]) -> char {
    let text = String::from_utf8_lossy(bytes.get(..4).unwrap_or(bytes));
    text.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The value percent-decoded as bytes (`%F0%9F%98%80` is one emoji), then read as UTF-8.
fn decode_text(param: &Param, plus: Plus) -> Result<String, MagnetError> {
    let decoded = decode_value(param, plus)?;
    Ok(String::from_utf8_lossy(&decoded.bytes).into_owned())
}

/// A URL (`tr`, `ws`) percent-decoded, except bytes that are not UTF-8: they stay `%XX`
/// (the module doc says why).
fn decode_url(param: &Param) -> Result<String, MagnetError> {
    let decoded = decode_value(param, Plus::Literal)?;
    Ok(utf8_or_escaped(&decoded.bytes))
}

/// The value percent-decoded; a `%` without two hex digits after it is an error that points
/// at that `%` in the link.
fn decode_value(param: &Param, plus: Plus) -> Result<PercentDecoded, MagnetError> {
    let decoded = percent_decode(param.value, plus);
    match decoded.bad_escape {
        Some(at) => Err(MagnetError::Percent {
            param: param.key.to_string(),
            offset: param.offset_of(at),
        }),
        None => Ok(decoded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes 0, 1, ..., 19: easy to recognise in any encoding.
    const COUNTING: [u8; 20] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
    ];
    const COUNTING_HEX: &str = "000102030405060708090a0b0c0d0e0f10111213";
    /// `base64.b32encode(bytes(range(20)))` in Python.
    const COUNTING_BASE32: &str = "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT";
    /// The walkthrough's example hash, and its base32 (also from Python).
    const EXAMPLE_HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    const EXAMPLE_BASE32: &str = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";

    fn link(rest: &str) -> String {
        format!("magnet:?xt=urn:btih:{COUNTING_HEX}{rest}")
    }

    fn parse(uri: &str) -> Magnet {
        Magnet::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"))
    }

    fn error(uri: &str) -> MagnetError {
        match Magnet::parse(uri) {
            Ok(m) => panic!("{uri} parsed as {m:?}"),
            Err(e) => e,
        }
    }

    fn hex_bytes(hex: &str) -> [u8; 20] {
        crate::encoding::from_hex(hex).expect("40 hex digits")
    }

    #[test]
    fn hex_hash_in_either_case() {
        for hash in [COUNTING_HEX, &COUNTING_HEX.to_uppercase()] {
            let m = parse(&format!("magnet:?xt=urn:btih:{hash}"));
            assert_eq!(m.info_hash, InfoHash(COUNTING), "{hash}");
        }
        let m = parse(&format!(
            "magnet:?xt=urn:btih:{}",
            EXAMPLE_HEX.to_uppercase()
        ));
        assert_eq!(m.info_hash.to_hex(), EXAMPLE_HEX);
    }

    #[test]
    fn base32_hash_in_either_case() {
        let vectors = [
            (COUNTING_BASE32, COUNTING),
            (EXAMPLE_BASE32, hex_bytes(EXAMPLE_HEX)),
        ];
        for (base32, bytes) in vectors {
            for hash in [base32.to_string(), base32.to_lowercase()] {
                let m = parse(&format!("magnet:?xt=urn:btih:{hash}"));
                assert_eq!(m.info_hash, InfoHash(bytes), "{hash}");
            }
        }
    }

    #[test]
    fn scheme_and_urn_ignore_case_and_nothing_else_is_required() {
        let m = parse(&format!("MAGNET:?xt=URN:BTIH:{COUNTING_HEX}"));
        assert_eq!(m.info_hash, InfoHash(COUNTING));
        assert_eq!(m.name, None);
        assert!(m.trackers.is_empty() && m.peers.is_empty() && m.web_seeds.is_empty());
    }

    /// Links as some sites and clients write them: the whole `xt` escaped (hex digits of the
    /// escapes in either case), one digit of the hash escaped (`%61` is `a`, `%59` is `Y`),
    /// every character escaped.
    #[test]
    fn an_escaped_xt_is_decoded_before_it_is_read() {
        let one_digit = EXAMPLE_HEX.replacen('a', "%61", 1);
        let vectors = [
            format!("magnet:?xt=urn%3Abtih%3A{EXAMPLE_HEX}&dn=ubuntu.iso"),
            format!("magnet:?xt=urn%3abtih%3a{EXAMPLE_BASE32}"),
            format!("magnet:?xt=urn:btih:{one_digit}"),
            format!("magnet:?xt=urn:btih:%59{}", &EXAMPLE_BASE32[1..]),
            format!("magnet:?xt=%75%72%6E%3A%62%74%69%68%3A{EXAMPLE_HEX}"),
        ];
        for uri in vectors {
            assert_eq!(parse(&uri).info_hash.to_hex(), EXAMPLE_HEX, "{uri}");
        }
    }

    #[test]
    fn errors_in_an_escaped_xt_point_at_the_link_as_written() {
        // "magnet:?xt=urn%3Abtih%3A" is 24 characters: the hash starts at offset 24, not 20.
        let e = error("magnet:?xt=urn%3Abtih%3Aabcdef");
        assert!(
            matches!(
                e,
                MagnetError::HashLength {
                    offset: 24,
                    found: 6,
                    ..
                }
            ),
            "{e:?}"
        );
        // `%67` is a `g`: reported as `g`, at the offset of its `%` (20 + 7).
        let hash = format!("{}%67{}", &COUNTING_HEX[..7], &COUNTING_HEX[8..]);
        let e = error(&format!("magnet:?xt=urn:btih:{hash}"));
        assert!(
            matches!(
                e,
                MagnetError::HashCharacter {
                    offset: 27,
                    character: 'g',
                    ..
                }
            ),
            "{e:?}"
        );
        // `%C3%A9` is one character, `é`, two bytes; `%FF` begins no character at all.
        for (escape, character) in [("%C3%A9", '\u{e9}'), ("%FF", char::REPLACEMENT_CHARACTER)] {
            let e = error(&format!(
                "magnet:?xt=urn:btih:{escape}{}",
                &COUNTING_HEX[1..]
            ));
            assert!(
                matches!(e, MagnetError::HashCharacter { offset: 20, character: c, .. } if c == character),
                "{escape}: {e:?}"
            );
        }
        // A second, different hash behind an escaped URN: the offset is its first digit,
        // 64 + 13 (`urn%3Abtih%3A`).
        let uri = format!("magnet:?xt=urn:btih:{COUNTING_HEX}&xt=urn%3Abtih%3A{EXAMPLE_HEX}");
        let e = error(&uri);
        assert!(
            matches!(e, MagnetError::ConflictingHashes { offset: 77, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn parameter_names_ignore_case() {
        let m = parse(&format!(
            "magnet:?XT=urn:btih:{EXAMPLE_HEX}&dN=Ubuntu+24.04\
             &TR=udp%3A%2F%2Ftracker.example%3A6969%2Fannounce\
             &Tr.1=http%3A%2F%2Fbackup.example%2Fannounce&X.PE=10.0.0.2:6881\
             &WS=https%3A%2F%2Fmirror.example%2Fubuntu.iso&XL=1048576"
        ));
        assert_eq!(m.info_hash.to_hex(), EXAMPLE_HEX);
        assert_eq!(m.name.as_deref(), Some("Ubuntu 24.04"));
        assert_eq!(
            m.trackers,
            [
                "udp://tracker.example:6969/announce",
                "http://backup.example/announce"
            ]
        );
        assert_eq!(m.peers, ["10.0.0.2:6881".parse::<SocketAddr>().unwrap()]);
        assert_eq!(m.web_seeds, ["https://mirror.example/ubuntu.iso"]);
        let e = error(&format!("magnet:?Xt.1=urn:btih:{}", &COUNTING_HEX[1..]));
        assert!(e.to_string().starts_with("`Xt.1` at offset 22"), "{e}");
    }

    /// `%ZZ`, a trailing `%3`, a `%` followed by `+`: each parameter is dropped (with a
    /// warning, shown by the `magnet_parse` test in `tests/cli.rs`); the link still works.
    #[test]
    fn a_hint_with_a_bad_escape_is_dropped_and_the_link_still_works() {
        let m = parse(&link(
            "&dn=50%+off&dn=Ubuntu\
             &tr=udp%3A%2F%2Ftracker.example%3A6969%ZZannounce\
             &tr=udp%3A%2F%2Ftracker.example%3A6969%2Fannounce\
             &tr=http%3A%2F%2Fbackup.example%2Fannounce%3\
             &ws=https%3A%2F%2Fmirror.example%2F%GG.iso&x.pe=%5B::1%5&x.pe=10.0.0.2:6881",
        ));
        assert_eq!(m.info_hash, InfoHash(COUNTING));
        assert_eq!(m.name.as_deref(), Some("Ubuntu")); // the first readable `dn`
        assert_eq!(m.trackers, ["udp://tracker.example:6969/announce"]);
        assert!(m.web_seeds.is_empty());
        assert_eq!(m.peers, ["10.0.0.2:6881".parse::<SocketAddr>().unwrap()]);
    }

    /// A Latin-1 path (`%E9` is `é` in Latin-1, not UTF-8) and a binary passkey: the UTF-8
    /// around them is decoded, the stray bytes stay escaped, as the tracker must receive them.
    #[test]
    fn a_tracker_that_is_not_utf8_keeps_its_bytes_escaped() {
        let m = parse(&link(
            "&tr=http%3A%2F%2Ftracker.example%2Fcaf%e9%2Fannounce\
             &tr=http%3A%2F%2Ft.example%2Fannounce%3Fpasskey%3D%FF%FEab%C3%A9%80\
             &ws=http%3A%2F%2Fmirror.example%2F%E9t%E9.iso",
        ));
        assert_eq!(
            m.trackers,
            [
                "http://tracker.example/caf%E9/announce",
                "http://t.example/announce?passkey=%FF%FEab\u{e9}%80"
            ]
        );
        assert_eq!(m.web_seeds, ["http://mirror.example/%E9t%E9.iso"]);
        // Kept escaped, the bytes survive the way back to a link and a second reading.
        assert_eq!(parse(&m.to_uri()), m);
    }

    #[test]
    fn the_same_hash_twice_in_hex_and_base32_is_fine() {
        let uri = format!("magnet:?xt=urn:btih:{EXAMPLE_HEX}&xt.1=urn:btih:{EXAMPLE_BASE32}");
        assert_eq!(parse(&uri).info_hash.to_hex(), EXAMPLE_HEX);
    }

    #[test]
    fn trackers_in_order_without_duplicates() {
        let m = parse(&link(
            "&tr=http://b.example/announce&tr=udp://a.example:1337\
             &tr=http://b.example/announce&tr.1=udp://c.example:80",
        ));
        assert_eq!(
            m.trackers,
            [
                "http://b.example/announce",
                "udp://a.example:1337",
                "udp://c.example:80"
            ]
        );
    }

    #[test]
    fn tracker_is_percent_decoded_and_keeps_its_plus() {
        let m = parse(&link(
            "&tr=udp%3A%2F%2Ftracker.example%3A6969%2Fannounce\
             &tr=http://t.example/a?key=a+b%2Bc",
        ));
        assert_eq!(
            m.trackers,
            [
                "udp://tracker.example:6969/announce",
                "http://t.example/a?key=a+b+c"
            ]
        );
    }

    #[test]
    fn name_plus_and_percent_20_are_spaces() {
        let m = parse(&link("&dn=Ubuntu+24.04%20desktop%2B%2Biso"));
        assert_eq!(m.name.as_deref(), Some("Ubuntu 24.04 desktop++iso"));
    }

    #[test]
    fn name_is_decoded_as_utf8_bytes_and_the_first_wins() {
        let m = parse(&link("&dn=smile%F0%9F%98%80&dn=second"));
        assert_eq!(m.name.as_deref(), Some("smile😀"));
        let m = parse(&link("&dn=bad%FFbyte"));
        assert_eq!(m.name.as_deref(), Some("bad\u{FFFD}byte"));
    }

    #[test]
    fn peers_ipv4_and_ipv6_and_hostnames_skipped() {
        let m = parse(&link(
            "&x.pe=10.0.0.2:6881&x.pe=[::1]:51413&x.pe=peer.example:6881\
             &x.pe=%5B2001%3Adb8%3A%3A7%5D%3A80&x.pe.1=10.0.0.2:6881&x.pe=no-port",
        ));
        let expected: Vec<SocketAddr> = ["10.0.0.2:6881", "[::1]:51413", "[2001:db8::7]:80"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(m.peers, expected);
    }

    #[test]
    fn web_seeds_and_unknown_parameters() {
        let m = parse(&link(
            "&xl=1048576&ws=https%3A%2F%2Fmirror.example%2Fa%20b&kt=x%ZZ&&as=&flag",
        ));
        assert_eq!(m.web_seeds, ["https://mirror.example/a b"]);
        assert_eq!(m.info_hash, InfoHash(COUNTING));
    }

    #[test]
    fn from_str_is_parse() {
        let m: Magnet = link("&dn=x").parse().unwrap();
        assert_eq!(m, parse(&link("&dn=x")));
        assert!("http://example.com".parse::<Magnet>().is_err());
    }

    #[test]
    fn error_not_a_magnet_link() {
        for uri in [
            "http://example.com/a.torrent",
            "magnet:xt=urn:btih:00",
            "",
            "magné",
        ] {
            let e = error(uri);
            assert!(matches!(e, MagnetError::NotMagnet { .. }), "{uri}: {e:?}");
            assert!(e.to_string().contains("must begin with `magnet:?`"), "{e}");
        }
        assert!(
            error("http://example.com")
                .to_string()
                .contains("begins `http://e`")
        );
    }

    #[test]
    fn error_missing_xt() {
        for uri in [
            "magnet:?",
            "magnet:?dn=x&tr=udp://t:1",
            "magnet:?xt=urn:sha1:ABCD",
        ] {
            let e = error(uri);
            assert!(matches!(e, MagnetError::MissingInfoHash), "{uri}: {e:?}");
            assert!(e.to_string().contains("xt=urn:btih:"), "{e}");
        }
    }

    #[test]
    fn a_v2_only_link_goes_by_its_truncated_hash() {
        let uri = format!("magnet:?dn=x&xt=urn:btmh:1220{}", "ab".repeat(32));
        let magnet = parse(&uri);
        assert_eq!(magnet.v2, Some(InfoHashV2([0xab; 32])));
        assert_eq!(magnet.info_hash, InfoHash([0xab; 20]), "the first 20 bytes");
        // Not a SHA-256 multihash, or not 64 digits: an error at the hash.
        for bad in ["1114ab", "1220abc", &format!("1220{}", "zz".repeat(32))] {
            let e = error(&format!("magnet:?xt=urn:btmh:{bad}"));
            assert!(
                matches!(&e, MagnetError::BadBtmh { param, offset: 20 } if param == "xt"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn v2_links_round_trip() {
        for uri in [
            format!("magnet:?xt=urn:btmh:1220{}", "ab".repeat(32)),
            format!(
                "magnet:?xt=urn:btih:{EXAMPLE_HEX}&xt=urn:btmh:1220{}",
                "cd".repeat(32)
            ),
        ] {
            let magnet = parse(&uri);
            assert_eq!(magnet.to_uri(), uri);
            assert_eq!(parse(&magnet.to_uri()).info_hash, magnet.info_hash);
        }
    }

    #[test]
    fn btih_and_btmh_together_use_btih() {
        let btmh = format!("urn:btmh:1220{}", "ab".repeat(32));
        for uri in [
            format!("magnet:?xt=urn:btih:{EXAMPLE_HEX}&xt={btmh}"),
            format!("magnet:?xt={btmh}&xt=urn:btih:{EXAMPLE_HEX}"),
        ] {
            assert_eq!(parse(&uri).info_hash.to_hex(), EXAMPLE_HEX, "{uri}");
            assert_eq!(parse(&uri).v2, Some(InfoHashV2([0xab; 32])), "{uri}");
            assert_eq!(parse(&uri).v2, Some(InfoHashV2([0xab; 32])), "{uri}");
        }
    }

    #[test]
    fn error_hash_of_the_wrong_length() {
        // "magnet:?xt=urn:btih:" is 20 characters: the hash starts at offset 20.
        let e = error("magnet:?xt=urn:btih:abcdef");
        assert!(
            matches!(
                e,
                MagnetError::HashLength {
                    offset: 20,
                    found: 6,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("`xt` at offset 20"), "{e}");
        assert!(e.to_string().contains("this one has 6"), "{e}");
    }

    #[test]
    fn error_bad_hex_digit_names_character_and_offset() {
        let mut hash = COUNTING_HEX.to_string();
        hash.replace_range(7..8, "g");
        let e = error(&format!("magnet:?dn=a&xt.1=urn:btih:{hash}"));
        // "magnet:?dn=a&xt.1=urn:btih:" is 27 characters; the `g` is the hash's 8th.
        assert!(
            matches!(
                e,
                MagnetError::HashCharacter {
                    offset: 34,
                    character: 'g',
                    ..
                }
            ),
            "{e:?}"
        );
        let message = e.to_string();
        assert!(
            message.contains("`xt.1`: 'g' at offset 34 is not a hex digit"),
            "{message}"
        );
    }

    #[test]
    fn error_bad_base32_character_names_character_and_offset() {
        // `0`, `1`, `8` and `9` are not in the RFC 4648 alphabet (they look like letters).
        let hash = COUNTING_BASE32.replace("OCA", "O1A");
        let e = error(&format!("magnet:?xt=urn:btih:{hash}"));
        let offset = 20 + COUNTING_BASE32.find("OCA").unwrap() + 1;
        let message = e.to_string();
        assert!(
            message.contains(&format!("'1' at offset {offset}")),
            "{message}"
        );
        assert!(message.contains("not a base32 character"), "{message}");
    }

    #[test]
    fn error_bad_percent_in_xt_names_parameter_and_offset() {
        let cases = [
            // "magnet:?xt=urn:btih:" is 20 characters: `%6G` is the hash's first digit.
            (
                format!("magnet:?xt=urn:btih:%6G{}", &COUNTING_HEX[1..]),
                "xt",
                20,
            ),
            // A trailing `%3`, the `:` cut short.
            ("magnet:?xt=urn%3Abtih%3".to_string(), "xt", 21),
            // "magnet:?dn=a&XT=urn:btih:" is 25 characters; the key is quoted as written.
            (
                format!("magnet:?dn=a&XT=urn:btih:{}%", &COUNTING_HEX[..39]),
                "XT",
                25 + 39,
            ),
        ];
        for (uri, param, offset) in cases {
            let e = error(&uri);
            assert!(matches!(e, MagnetError::Percent { .. }), "{uri}: {e:?}");
            let message = e.to_string();
            let expected = format!("`{param}`: the `%` at offset {offset} is not followed");
            assert!(message.contains(&expected), "{uri}: {message}");
        }
    }

    #[test]
    fn error_offsets_count_characters_not_bytes() {
        // "é" is two bytes in UTF-8 but one character: once in an earlier parameter, once
        // earlier in the same value. The `%` is character 28 (byte 30).
        let e = error("magnet:?x=\u{e9}&xt=urn:btih:caf\u{e9}%G");
        assert!(
            matches!(e, MagnetError::Percent { offset: 28, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn error_two_different_hashes() {
        let uri = format!("magnet:?xt=urn:btih:{COUNTING_HEX}&xt.2=urn:btih:{EXAMPLE_HEX}");
        let e = error(&uri);
        let message = e.to_string();
        assert!(
            message.contains("two different btih info hashes"),
            "{message}"
        );
        assert!(
            message.contains(COUNTING_HEX) && message.contains(EXAMPLE_HEX),
            "{message}"
        );
        assert!(message.contains("`xt.2` at offset 75"), "{message}");
    }

    #[test]
    fn to_uri_writes_hex_and_percent_encodes() {
        let m = parse(&format!(
            "magnet:?xt=urn:btih:{EXAMPLE_BASE32}&dn=a+b%2F%C3%A9&tr=udp://t.example:1/x?y=1+2\
             &x.pe=[::1]:5&x.pe=1.2.3.4:5"
        ));
        assert_eq!(
            m.to_uri(),
            format!(
                "magnet:?xt=urn:btih:{EXAMPLE_HEX}&dn=a%20b%2F%C3%A9\
                 &tr=udp%3A%2F%2Ft.example%3A1%2Fx%3Fy%3D1%2B2&x.pe=[::1]:5&x.pe=1.2.3.4:5"
            )
        );
    }

    #[test]
    fn round_trip() {
        let m = Magnet {
            info_hash: InfoHash(COUNTING),
            v2: None,
            name: Some("a name: with spaces, + and 😀 & =".to_string()),
            trackers: vec![
                "udp://tracker.example:6969/announce".to_string(),
                "http://t.example/announce?passkey=a+b&x=%41".to_string(),
            ],
            peers: vec![
                "10.0.0.2:6881".parse().unwrap(),
                "[::1]:51413".parse().unwrap(),
                "[fe80::1%2]:6881".parse().unwrap(), // scope id 2: a `%` in the address
            ],
            web_seeds: vec!["https://mirror.example/file name".to_string()],
        };
        let uri = m.to_uri();
        assert_eq!(parse(&uri), m, "{uri}");
        assert_eq!(parse(&uri).to_uri(), uri);
    }
}
