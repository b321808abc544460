//! # The metainfo file (`.torrent`, BEP 3 "metainfo files") — walkthrough §2
//!
//! A `.torrent` file is one bencoded dictionary:
//!
//! ```text
//!   d
//!     announce       the tracker URL                           (BEP 3)
//!     announce-list  tiers of tracker URLs                     (BEP 12)
//!     url-list       web seeds, kept for later                 (BEP 19)
//!     comment, created by, creation date                       (informational)
//!     info  d                                   <- its SHA-1 is the info hash
//!       name          suggested file or directory name
//!       piece length  bytes per piece (the last piece may be shorter)
//!       pieces        20-byte SHA-1 of each piece, concatenated
//!       private       1 = only the torrent's trackers may find peers (BEP 27)
//!       length        single-file torrent: the file's size
//!       files         multi-file torrent: list of d length, path e   (path = list of elements)
//!     e
//!   e
//! ```
//!
//! Where this sits in the data flow: `cli` reads a file and calls [`Metainfo::from_bytes`];
//! the result tells `tracker` whom to ask (info hash, trackers), the wire handshake what to
//! say (info hash), and `storage` where each piece goes (files, piece length, hashes).
//!
//! Everything in a torrent file may be wrong or hostile. Each check below turns a problem into
//! a [`MetainfoError`] that says which field and at which byte; names are sanitised
//! (see [`path`]).
//!
//! BitTorrent v2 (BEP 52, The BitTorrent Protocol Specification v2) describes the files as a
//! `file tree` with a SHA-256 Merkle root per file instead of `pieces` (`v2.rs`). Every torrent
//! has a [`MetaVersion`]: a v1 torrent loads as before; a v2-only torrent gets its
//! [`Metainfo::v2`] half and a v1-shaped [`Info`] (files with the padding that piece alignment
//! implies, no v1 piece hashes) whose [`Metainfo::info_hash`] is the v2 hash cut to 20 bytes;
//! a hybrid keeps its v1 `Info` and v1 info hash, and gets its v2 half too, after both halves
//! are checked to describe the same files (`hybrid.rs`).

mod files;
mod hashes;
mod hybrid;
pub mod path;
mod v2;

pub use files::FileEntry;
pub use hashes::{InfoHash, InfoHashV2, PieceHash};
pub use v2::{MAX_FILE_BLOCKS, MAX_TREE_DEPTH, MetaVersion, V2File, V2Info, piece_aligned_files};

use crate::bencode::{self, DecodeError, Limits, SoftError, Value};
use crate::merkle::Sha256Hash;
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest `.torrent` file we read (libtorrent's default limit is the same 10 MB).
pub const MAX_TORRENT_FILE_BYTES: u64 = 10_000_000;
/// Most pieces in one torrent (libtorrent's limit: 2^21).
pub const MAX_PIECES: u64 = 0x20_0000;
/// Largest piece length we accept: 512 MiB. Real torrents use 16 KiB to 16 MiB.
pub const MAX_PIECE_LENGTH: u64 = 512 * 1024 * 1024;

/// A loaded, checked torrent.
#[derive(Debug, Clone)]
pub struct Metainfo {
    /// The 20-byte identity used on the wire, with trackers and in the DHT: the SHA-1 of the
    /// raw bytes of the `info` dictionary (v1 and hybrid), or the first 20 bytes of their
    /// SHA-256 (v2-only, BEP 52).
    pub info_hash: InfoHash,
    /// v1, v2-only or hybrid.
    pub version: MetaVersion,
    /// For v1 and hybrid torrents, the v1 description. For a v2-only torrent, the same shape
    /// built from the file tree: the files with padding entries where BEP 52's piece alignment
    /// leaves gaps, `total_length` accordingly, and no `pieces` (v2 has no SHA-1 piece hashes).
    pub info: Info,
    /// The v2 half (file tree, pieces roots, piece layers, the 32-byte info hash) of a v2-only
    /// or hybrid torrent; `None` for v1.
    pub v2: Option<V2Info>,
    /// `announce`, trimmed; `None` when absent or empty.
    pub announce: Option<String>,
    /// `announce-list` (BEP 12): tiers of tracker URLs, empty tiers dropped.
    pub announce_list: Vec<Vec<String>>,
    /// `url-list` (BEP 19) web seeds, duplicates and empty strings dropped.
    pub url_list: Vec<String>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// Quirks that did not stop loading (soft bencoding errors, trailing bytes), for the log.
    pub warnings: Vec<String>,
    /// The `info` dictionary exactly as it is in the file: what peers ask for with
    /// `ut_metadata` (BEP 9) when they come from a magnet link.
    pub info_bytes: std::sync::Arc<Vec<u8>>,
}

/// The `info` dictionary: what the content is and how it is cut into pieces.
#[derive(Clone)]
pub struct Info {
    /// The sanitised `name`: the file name (single-file) or the top directory (multi-file).
    pub name: String,
    pub piece_length: u64,
    pub pieces: Vec<PieceHash>,
    /// Every file in torrent order, padding files included (see [`FileEntry::padding`]).
    /// A single-file torrent has one entry whose path is `[name]`.
    pub files: Vec<FileEntry>,
    /// True for a torrent with a `files` list, even if it holds one file.
    pub multi_file: bool,
    /// BEP 27: peers only from the torrent's own trackers (no PEX, no DHT).
    pub private: bool,
    /// Sum of all file lengths, padding included: the bytes the pieces cover.
    pub total_length: u64,
    /// A BEP 52 hybrid (v1 + v2) torrent (the same as `Metainfo::version` being `Hybrid`).
    pub hybrid: bool,
}

#[derive(Debug, Error)]
pub enum MetainfoError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the file is {len} bytes; torrent files over {limit} bytes are refused")]
    TooLarge { len: u64, limit: u64 },
    #[error("not a torrent file")]
    Bencode(#[from] DecodeError),
    #[error("required field `{field}` is missing")]
    Missing { field: String },
    #[error("`{field}` at byte {offset} is {found}, expected {expected}")]
    WrongType {
        field: String,
        offset: usize,
        found: &'static str,
        expected: &'static str,
    },
    #[error("`{field}` at byte {offset} is {value}: {reason}")]
    BadValue {
        field: String,
        offset: usize,
        value: i64,
        reason: &'static str,
    },
    #[error("`info.pieces` at byte {offset} is {len} bytes long, not a multiple of 20")]
    PiecesNotMultipleOf20 { offset: usize, len: usize },
    #[error("{count} pieces of {piece_length} bytes; at most {limit} pieces are supported")]
    TooManyPieces {
        count: u64,
        piece_length: u64,
        limit: u64,
    },
    #[error(
        "`info.pieces` holds {found} hashes, but {total_length} bytes in pieces of {piece_length} need {expected}"
    )]
    PieceCountMismatch {
        found: u64,
        expected: u64,
        total_length: u64,
        piece_length: u64,
    },
    #[error("`info.name` at byte {offset} has no characters usable in a file name")]
    UnusableName { offset: usize },
    #[error("`info.files` is an empty list: no files in torrent")]
    NoFiles,
    #[error("the torrent holds no data (its total length is 0)")]
    Empty,
    #[error("file lengths add up to more than 2^64 bytes")]
    TotalLengthOverflow,
    #[error("too many files with the same name (gave up after {limit} renames)")]
    TooManyDuplicateNames { limit: usize },
    #[error("`info.meta version` is {0}; only 2 (BEP 52) is known")]
    UnknownMetaVersion(i64),
    #[error("hybrid torrent: the v1 and v2 file lists disagree: {0}")]
    HybridMismatch(String),
    #[error(
        "{0}: not allowed inside a v2 or hybrid info dictionary (only v1 torrents may have it)"
    )]
    NotCanonical(SoftError),
    #[error("`info.file tree` holds no file: no files in torrent")]
    NoFilesInTree,
    #[error(
        "`info.file tree` has a file or directory with an empty name (in `/{directory}`, at byte {offset})"
    )]
    EmptyFileName { directory: String, offset: usize },
    #[error("`info.file tree` nests deeper than {limit} directories (at `{path}`)")]
    TreeTooDeep { path: String, limit: usize },
    #[error(
        "`{path}` in the v2 file tree has the padding attribute `p`: a v2 file is never padding \
         (BEP 52 aligns files to pieces by itself)"
    )]
    PaddingInFileTree { path: String },
    #[error("`{path}` is {length} bytes; files of {limit} blocks of 16 KiB or more are refused")]
    FileTooLarge {
        path: String,
        length: u64,
        limit: u64,
    },
    #[error("`{path}` in the v2 file tree has {length} bytes but no `pieces root`")]
    MissingPiecesRoot { path: String, length: u64 },
    #[error("the `pieces root` of `{path}` at byte {offset} is {len} bytes long, not 32")]
    BadPiecesRoot {
        path: String,
        offset: usize,
        len: usize,
    },
    #[error("the `pieces root` of `{path}` is all zeros, which stands for no root hash")]
    ZeroPiecesRoot { path: String },
    #[error(
        "the `piece layers` entry whose value is at byte {offset} has a key of {len} bytes, \
         not a 32-byte pieces root"
    )]
    BadPieceLayerKey { offset: usize, len: usize },
    #[error(
        "the `piece layers` entry for {root} (at byte {offset}) is {len} bytes long, not a \
         multiple of 32"
    )]
    PieceLayerNotMultipleOf32 {
        root: Sha256Hash,
        offset: usize,
        len: usize,
    },
    #[error(
        "`piece layers` has an entry for {root}, the pieces root of no file larger than one piece"
    )]
    UnknownPieceLayer { root: Sha256Hash },
    #[error("`piece layers` has two entries for the pieces root of `{path}`")]
    DuplicatePieceLayer { path: String },
    #[error(
        "the piece layer of `{path}` holds {found} hashes, but {length} bytes in pieces of \
         {piece_length} need {expected}"
    )]
    PieceLayerLength {
        path: String,
        found: u64,
        expected: u64,
        length: u64,
        piece_length: u64,
    },
    #[error(
        "the piece layer of `{path}` does not hash to its pieces root: it gives {computed}, \
         the file tree says {root}"
    )]
    PieceLayerMismatch {
        path: String,
        computed: Sha256Hash,
        root: Sha256Hash,
    },
}

impl Metainfo {
    /// Reads and loads a `.torrent` file, refusing files over [`MAX_TORRENT_FILE_BYTES`].
    pub fn from_file(path: &Path) -> Result<Metainfo, MetainfoError> {
        let read_error = |source| MetainfoError::Read {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(read_error)?.len();
        if len > MAX_TORRENT_FILE_BYTES {
            return Err(MetainfoError::TooLarge {
                len,
                limit: MAX_TORRENT_FILE_BYTES,
            });
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        Metainfo::from_bytes(&bytes)
    }

    /// Loads a torrent from the bytes of a `.torrent` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let decoded = bencode::decode_prefix(bytes, Limits::default())?;
        let mut warnings: Vec<String> = decoded.soft_errors.iter().map(|e| e.to_string()).collect();
        if decoded.end < bytes.len() {
            warnings.push(format!(
                "{} bytes after the end of the torrent ignored",
                bytes.len() - decoded.end
            ));
        }
        let root = &decoded.value;
        expect_dict(root, "the torrent")?;
        let info_value = root.get("info").ok_or_else(|| missing("info"))?;
        expect_dict(info_value, "info")?;
        // The info hash covers the info dictionary's bytes as they are in the file. [W2.1]
        let info_hash = InfoHash::of(&bytes[info_value.span.range()]);
        let info_bytes = &bytes[info_value.span.range()];
        let version = check_meta_version(info_value, &decoded.soft_errors)?;
        let (info_hash, info, v2) = match version {
            MetaVersion::V1 => (info_hash, parse_info(info_value, info_hash, None)?, None),
            MetaVersion::Hybrid => {
                let mut parsed = v2::parse(root, info_value, info_bytes)?;
                let info = parse_info(info_value, info_hash, Some(&parsed.info))?;
                v2::resolve_collisions(&mut parsed.info)?;
                (info_hash, info, Some(parsed.info))
            }
            MetaVersion::V2 => {
                let mut parsed = v2::parse(root, info_value, info_bytes)?;
                let info = v2::v2_only_info(info_value, &mut parsed)?;
                // BEP 52: where 20 bytes are expected, the v2 hash is cut to its first 20.
                (parsed.info.info_hash.truncated(), info, Some(parsed.info))
            }
        };
        Ok(Metainfo {
            info_hash,
            version,
            info,
            v2,
            announce: root.get("announce").and_then(trimmed_text),
            announce_list: parse_announce_list(root.get("announce-list")),
            url_list: parse_url_list(root.get("url-list")),
            comment: root.get("comment").and_then(trimmed_text),
            created_by: root.get("created by").and_then(trimmed_text),
            creation_date: root.get("creation date").and_then(Value::as_integer),
            warnings,
            info_bytes: std::sync::Arc::new(info_bytes.to_vec()),
        })
    }

    /// A torrent from an `info` dictionary fetched from peers (BEP 9) and a magnet link's
    /// trackers (one tier each, in order). The info bytes are kept exactly as they came, so the
    /// info hash is theirs. Walkthrough §13.
    pub fn from_info_bytes(info: &[u8], trackers: &[String]) -> Result<Metainfo, MetainfoError> {
        let mut torrent = Vec::with_capacity(info.len() + 64);
        torrent.push(b'd');
        if let Some(first) = trackers.first() {
            torrent.extend(bencode::encode(&Value::bytes("announce")));
            torrent.extend(bencode::encode(&Value::bytes(first.as_bytes())));
            let tiers = trackers
                .iter()
                .map(|t| Value::list(vec![Value::bytes(t.as_bytes())]))
                .collect();
            torrent.extend(bencode::encode(&Value::bytes("announce-list")));
            torrent.extend(bencode::encode(&Value::list(tiers)));
        }
        torrent.extend(bencode::encode(&Value::bytes("info")));
        torrent.extend_from_slice(info);
        torrent.push(b'e');
        Metainfo::from_bytes(&torrent)
    }

    /// The trackers to ask, as BEP 12 tiers: `announce-list` if present, else `announce`.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            return self.announce_list.clone();
        }
        self.announce.iter().map(|url| vec![url.clone()]).collect()
    }
}

/// `meta version` 2 marks a v2 (BEP 52) info dictionary: a hybrid if it has v1 `pieces` too,
/// else v2-only. BEP 52 asks for this check before any other, so that a torrent of a newer
/// version is reported as such rather than as broken. [W2.6]
fn check_meta_version(
    info: &Value,
    soft_errors: &[SoftError],
) -> Result<MetaVersion, MetainfoError> {
    let Some(version) = info.get("meta version") else {
        return Ok(MetaVersion::V1);
    };
    match version.as_integer() {
        Some(2) => {}
        Some(other) => return Err(MetainfoError::UnknownMetaVersion(other)),
        None => return Err(wrong_type("info.meta version", version, "an integer")),
    }
    // libtorrent tolerates bencoding quirks in v1 info dictionaries only.
    let inside_info = |e: &&SoftError| info.span.range().contains(&e.offset());
    if let Some(quirk) = soft_errors.iter().find(inside_info) {
        return Err(MetainfoError::NotCanonical(*quirk));
    }
    match info.get("pieces") {
        Some(_) => Ok(MetaVersion::Hybrid),
        None => Ok(MetaVersion::V2),
    }
}

/// Reads the v1 fields of the info dictionary and checks that they fit together; for a hybrid,
/// also that they describe the same files as its v2 half.
fn parse_info(
    info: &Value,
    info_hash: InfoHash,
    v2: Option<&V2Info>,
) -> Result<Info, MetainfoError> {
    let piece_length = parse_piece_length(info)?;
    let pieces = parse_pieces(info)?;
    // A name like ".." sanitises to nothing. A directory can be named by the info hash (as
    // libtorrent does); a single file cannot do without a name.
    let fallback = info.get("files").map(|_| info_hash.to_hex());
    let name = parse_name(info, fallback)?;
    let (files, multi_file) = files::parse_files(info, &name)?;
    let total_length = files::total_length(&files)?;
    // A hybrid's two file lists are compared first: when they disagree, that is the news,
    // more than a piece count that follows from it (libtorrent checks in the same order).
    if let Some(v2) = v2 {
        hybrid::check_consistency(&files, v2, piece_length)?;
    }
    check_piece_count(pieces.len() as u64, total_length, piece_length)?;
    let mut files = files;
    files::resolve_collisions(&mut files)?;
    // BEP 27: `private` is 1 for a private torrent; anything else means public.
    let private = info.get("private").and_then(Value::as_integer) == Some(1);
    Ok(Info {
        name,
        piece_length,
        pieces,
        files,
        multi_file,
        private,
        total_length,
        hybrid: v2.is_some(),
    })
}

/// `name` (or `name.utf-8`, preferred when it is a string), sanitised. A name that sanitises to
/// nothing (`".."`) becomes `fallback`, or is refused when there is none.
fn parse_name(info: &Value, fallback: Option<String>) -> Result<String, MetainfoError> {
    let raw_name = info
        .get("name.utf-8")
        .filter(|v| v.as_bytes().is_some())
        .or(info.get("name"));
    let raw_name = raw_name.ok_or_else(|| missing("info.name"))?;
    let name_bytes = raw_name
        .as_bytes()
        .ok_or_else(|| wrong_type("info.name", raw_name, "a byte string"))?;
    if name_bytes.is_empty() {
        return Err(missing("info.name"));
    }
    match (path::sanitize_name(name_bytes), fallback) {
        (Some(name), _) => Ok(name),
        (None, Some(fallback)) => Ok(fallback),
        (None, None) => Err(MetainfoError::UnusableName {
            offset: raw_name.span.start,
        }),
    }
}

fn parse_piece_length(info: &Value) -> Result<u64, MetainfoError> {
    let field = "info.piece length";
    let value = info.get("piece length").ok_or_else(|| missing(field))?;
    let n = value
        .as_integer()
        .ok_or_else(|| wrong_type(field, value, "an integer"))?;
    if n <= 0 || n as u64 > MAX_PIECE_LENGTH {
        let reason = "a piece length must be positive and at most 512 MiB";
        return Err(MetainfoError::BadValue {
            field: field.into(),
            offset: value.span.start,
            value: n,
            reason,
        });
    }
    Ok(n as u64)
}

/// `pieces`: one 20-byte SHA-1 per piece, concatenated. [W2.3]
fn parse_pieces(info: &Value) -> Result<Vec<PieceHash>, MetainfoError> {
    let value = info.get("pieces").ok_or_else(|| missing("info.pieces"))?;
    let bytes = value
        .as_bytes()
        .ok_or_else(|| wrong_type("info.pieces", value, "a byte string"))?;
    if bytes.len() % 20 != 0 {
        return Err(MetainfoError::PiecesNotMultipleOf20 {
            offset: value.span.start,
            len: bytes.len(),
        });
    }
    let hash =
        |chunk: &[u8]| PieceHash(chunk.try_into().expect("chunks_exact(20) yields 20 bytes"));
    Ok(bytes.chunks_exact(20).map(hash).collect())
}

/// The number of hashes must be exactly ⌈total length ÷ piece length⌉.
fn check_piece_count(
    found: u64,
    total_length: u64,
    piece_length: u64,
) -> Result<(), MetainfoError> {
    let expected = total_length.div_ceil(piece_length);
    if expected > MAX_PIECES {
        return Err(MetainfoError::TooManyPieces {
            count: expected,
            piece_length,
            limit: MAX_PIECES,
        });
    }
    if found != expected {
        return Err(MetainfoError::PieceCountMismatch {
            found,
            expected,
            total_length,
            piece_length,
        });
    }
    Ok(())
}

/// `announce-list` (BEP 12): a list of tiers, each a list of URLs. [W2.7]
/// Anything malformed is skipped, as other clients do: a bad backup tracker should not make a
/// torrent unusable.
fn parse_announce_list(value: Option<&Value>) -> Vec<Vec<String>> {
    let tiers = value.and_then(Value::as_list).unwrap_or_default();
    tiers
        .iter()
        .map(|tier| {
            tier.as_list()
                .unwrap_or_default()
                .iter()
                .filter_map(trimmed_text)
                .collect::<Vec<_>>()
        })
        .filter(|tier| !tier.is_empty())
        .collect()
}

/// `url-list` (BEP 19): one URL or a list of them.
fn parse_url_list(value: Option<&Value>) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    let candidates: Vec<&Value> = match value.as_list() {
        Some(list) => list.iter().collect(),
        None => vec![value],
    };
    let mut urls: Vec<String> = Vec::new();
    for url in candidates.into_iter().filter_map(trimmed_text) {
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    urls
}

/// A byte string as text with surrounding whitespace removed; `None` if empty or not a string.
fn trimmed_text(value: &Value) -> Option<String> {
    let text = String::from_utf8_lossy(value.as_bytes()?)
        .trim()
        .to_string();
    (!text.is_empty()).then_some(text)
}

fn expect_dict(value: &Value, field: &str) -> Result<(), MetainfoError> {
    match value.as_dict() {
        Some(_) => Ok(()),
        None => Err(wrong_type(field, value, "a dictionary")),
    }
}

fn missing(field: &str) -> MetainfoError {
    MetainfoError::Missing {
        field: field.to_string(),
    }
}

fn wrong_type(field: &str, value: &Value, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType {
        field: field.to_string(),
        offset: value.span.start,
        found: value.kind_name(),
        expected,
    }
}

impl Info {
    /// ⌈total length ÷ piece length⌉: for v1 the number of hashes in `pieces` (checked at
    /// load), for v2-only the pieces of the aligned layout (which has no v1 hashes).
    pub fn num_pieces(&self) -> usize {
        self.total_length.div_ceil(self.piece_length.max(1)) as usize
    }

    /// The files a user sees: padding files left out.
    pub fn content_files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.iter().filter(|f| !f.padding)
    }
}

/// A readable `Debug`: the piece hashes are summarised, not listed.
impl fmt::Debug for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Info")
            .field("name", &self.name)
            .field("piece_length", &self.piece_length)
            .field("pieces", &format_args!("<{} hashes>", self.pieces.len()))
            .field("files", &self.files)
            .field("multi_file", &self.multi_file)
            .field("private", &self.private)
            .field("total_length", &self.total_length)
            .field("hybrid", &self.hybrid)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal single-file torrent: d 4:info d ... e e, with the given info body.
    fn torrent(info_body: &str) -> Vec<u8> {
        format!("d4:infod{info_body}ee").into_bytes()
    }

    const ONE_PIECE: &str = "6:pieces20:aaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn the_info_hash_covers_the_raw_bytes_even_when_keys_are_unsorted() {
        // `name` before `length`: unsorted. A re-encoding would sort them and hash differently.
        let info = format!("4:name1:x6:lengthi5e12:piece lengthi16384e{ONE_PIECE}");
        let bytes = torrent(&info);
        let m = Metainfo::from_bytes(&bytes).unwrap();
        let raw_info = &bytes[7..bytes.len() - 1]; // between "d4:info" and the final "e"
        assert_eq!(m.info_hash, InfoHash::of(raw_info));
        let reencoded = bencode::encode(&bencode::decode(raw_info).unwrap().value);
        assert_ne!(m.info_hash, InfoHash::of(&reencoded));
        assert_eq!(m.warnings.len(), 1); // the unsorted key, reported
    }

    #[test]
    fn a_torrent_from_fetched_info_bytes_keeps_their_hash_and_takes_the_trackers() {
        let info = format!("d4:name1:x6:lengthi5e12:piece lengthi16384e{ONE_PIECE}e");
        let trackers = [
            "udp://a.example:1/announce".to_string(),
            "http://b/ann".into(),
        ];
        let m = Metainfo::from_info_bytes(info.as_bytes(), &trackers).unwrap();
        assert_eq!(m.info_hash, InfoHash::of(info.as_bytes()));
        assert_eq!(*m.info_bytes, info.as_bytes());
        assert_eq!(
            m.tracker_tiers(),
            [[trackers[0].clone()], [trackers[1].clone()]]
        );
        let bare = Metainfo::from_info_bytes(info.as_bytes(), &[]).unwrap();
        assert!(bare.tracker_tiers().is_empty());
    }

    #[test]
    fn a_single_file_torrent() {
        let m = Metainfo::from_bytes(&torrent(&format!(
            "6:lengthi5e4:name5:a.txt12:piece lengthi16384e{ONE_PIECE}"
        )))
        .unwrap();
        assert_eq!(m.info.name, "a.txt");
        assert_eq!(m.info.files.len(), 1);
        assert_eq!(m.info.files[0].path, ["a.txt"]);
        assert!(!m.info.multi_file && !m.info.private);
        assert_eq!(m.announce, None);
        assert_eq!(m.tracker_tiers(), Vec::<Vec<String>>::new());
    }

    #[test]
    fn piece_count_must_match_the_length() {
        // 20000 bytes in 16 KiB pieces need 2 hashes; one is given.
        let e = Metainfo::from_bytes(&torrent(&format!(
            "6:lengthi20000e4:name1:x12:piece lengthi16384e{ONE_PIECE}"
        )))
        .unwrap_err();
        assert!(
            matches!(
                e,
                MetainfoError::PieceCountMismatch {
                    found: 1,
                    expected: 2,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn a_v2_torrent_without_files_is_refused() {
        let e = Metainfo::from_bytes(&torrent(
            "9:file treede12:meta versioni2e4:name1:x12:piece lengthi16384e",
        ))
        .unwrap_err();
        assert!(matches!(e, MetainfoError::NoFilesInTree), "{e}");
    }

    #[test]
    fn quirks_inside_a_hybrid_info_dictionary_are_refused() {
        // Leading zero in `i016384e`, inside an info dictionary with `meta version` 2.
        let info = format!(
            "9:file treede6:lengthi5e12:meta versioni2e4:name1:x12:piece lengthi016384e{ONE_PIECE}"
        );
        let e = Metainfo::from_bytes(&torrent(&info)).unwrap_err();
        assert!(
            matches!(
                e,
                MetainfoError::NotCanonical(SoftError::LeadingZero { .. })
            ),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_field_and_the_byte() {
        let e = Metainfo::from_bytes(&torrent(&format!(
            "6:lengthi-5e4:name1:x12:piece lengthi16384e{ONE_PIECE}"
        )))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`info.length` at byte 16 is -5: a length cannot be negative"
        );
        let e = Metainfo::from_bytes(b"d4:infoi1ee").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`info` at byte 7 is an integer, expected a dictionary"
        );
    }

    #[test]
    fn announce_list_tiers_skip_junk() {
        let bytes = format!(
            "d8:announce3:abc13:announce-listll1:ai5eel0:el1:b1:cee4:infod6:lengthi5e4:name1:x12:piece lengthi16384e{ONE_PIECE}ee"
        );
        let m = Metainfo::from_bytes(bytes.as_bytes()).unwrap();
        assert_eq!(
            m.announce_list,
            vec![
                vec!["a".to_string()],
                vec!["b".to_string(), "c".to_string()]
            ]
        );
        assert_eq!(m.tracker_tiers(), m.announce_list);
    }
}
