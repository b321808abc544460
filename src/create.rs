//! Making a `.torrent` file (BEP 3 "metainfo files", written out) — walkthrough §2.
//!
//! Three steps: list the files ([`collect_files`]), hash every piece ([`hash_pieces`]), and
//! bencode the dictionary (`build_torrent`). Hashing is the slow part, so it runs on every
//! core (`Storage::map_pieces`, shared with the resume check): each `hasher` thread claims
//! the next piece number from a shared counter, reads that piece with a positional read,
//! hashes it, and claims another.
//!
//! ```text
//!   next_piece (atomic counter: 0, 1, 2, ...)
//!      │ fetch_add                  │ fetch_add
//!   hasher 0: read piece 0, SHA-1   hasher 1: read piece 1, SHA-1   ...  -> hashes[k]
//! ```
//!
//! Memory is one piece-sized buffer per thread, whatever the size of the files. The road not
//! taken: one reader thread feeding hashers over a channel. On 2 cores the hand-off costs
//! more than it saves (`tests/bench/create_vs_mktorrent.sh` measured it ~40% slower).
//!
//! The files are laid end to end as one byte stream (a read-only `Storage`), so a piece can
//! span the end of one file and the start of the next, as in any multi-file torrent.
//!
//! That is a v1 torrent, the default. With [`CreateOptions::version`] set to `V2` or `Hybrid`
//! the same files make a BitTorrent v2 (BEP 52, The BitTorrent Protocol Specification v2) or a
//! hybrid v1 + v2 torrent instead: piece-aligned files, one SHA-256 Merkle tree per file, and
//! for a hybrid BEP 47 padding files in the v1 list (`create/v2.rs`).

mod v2;

use crate::bencode::{self, Value};
use crate::encoding::sha1;
use crate::merkle;
use crate::metainfo::{
    InfoHash, InfoHashV2, MAX_FILE_BLOCKS, MAX_PIECE_LENGTH, MAX_PIECES, MetaVersion, PieceHash,
};
use crate::storage::{Storage, StorageError};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Smallest piece length we pick or accept: one 16 KiB block.
pub const MIN_PIECE_LENGTH: u64 = 16 * 1024;

/// What the user asked for on the command line.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Announce URLs: the first is `announce`; with more than one, each is its own tier.
    pub trackers: Vec<String>,
    /// Bytes per piece; chosen from the total size when `None`.
    pub piece_length: Option<u64>,
    pub private: bool,
    pub comment: Option<String>,
    /// Hashing threads; one per core when `None`.
    pub threads: Option<usize>,
    /// v1 (BEP 3, the default), v2-only or hybrid (BEP 52).
    pub version: MetaVersion,
}

impl Default for CreateOptions {
    fn default() -> CreateOptions {
        CreateOptions {
            trackers: Vec::new(),
            piece_length: None,
            private: false,
            comment: None,
            threads: None,
            version: MetaVersion::V1,
        }
    }
}

/// A finished torrent: its bytes and a few facts to report.
pub struct CreatedTorrent {
    pub bytes: Vec<u8>,
    /// What peers and trackers call the torrent, as `Metainfo::info_hash` has it: the SHA-1 of
    /// `info` (v1, hybrid), or the v2 hash cut to 20 bytes (v2-only).
    pub info_hash: InfoHash,
    /// The SHA-256 of `info`, for v2-only and hybrid torrents.
    pub info_hash_v2: Option<InfoHashV2>,
    pub num_pieces: usize,
    pub piece_length: u64,
}

#[derive(Debug, Error)]
pub enum CreateError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} changed while it was being hashed (expected {expected} bytes)", path.display())]
    FileChanged { path: PathBuf, expected: u64 },
    #[error("there is nothing to share: no file with data under {}", path.display())]
    NoData { path: PathBuf },
    #[error("{} has no usable file name", path.display())]
    NoName { path: PathBuf },
    #[error("piece length {0} is not a power of two between 16384 and 536870912")]
    BadPieceLength(u64),
    #[error("a hashing thread stopped unexpectedly")]
    HasherDied,
    #[error(
        "{count} pieces of {piece_length} bytes; a torrent may have at most {limit} \
         (choose a larger --piece-length)"
    )]
    TooManyPieces {
        count: u64,
        piece_length: u64,
        limit: u64,
    },
    #[error(
        "{} is {length} bytes; a v2 torrent holds no file of {limit} blocks of 16 KiB or more",
        path.display()
    )]
    FileTooLarge {
        path: PathBuf,
        length: u64,
        limit: u64,
    },
}

/// One file to include: where it is on disk and its path inside the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub disk_path: PathBuf,
    /// Path elements below the torrent's directory (empty for a single-file torrent).
    pub torrent_path: Vec<String>,
    pub length: u64,
}

/// Creates the torrent of `path` (a file or a directory).
pub fn create_torrent(path: &Path, options: &CreateOptions) -> Result<CreatedTorrent, CreateError> {
    let name = torrent_name(path)?;
    let files = collect_files(path)?;
    let total: u64 = files.iter().map(|f| f.length).sum();
    if total == 0 {
        return Err(CreateError::NoData {
            path: path.to_path_buf(),
        });
    }
    let piece_length = match options.piece_length {
        Some(n) if n.is_power_of_two() && (MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&n) => n,
        Some(n) => return Err(CreateError::BadPieceLength(n)),
        None => choose_piece_length(total),
    };
    let num_pieces = check_size(&files, piece_length, options.version)?;
    let threads = options.threads.unwrap_or_else(default_threads).max(1);
    log::info!(
        "hashing {total} bytes in {} files, {num_pieces} pieces of {piece_length} bytes, \
         {threads} threads, {:?}",
        files.len(),
        options.version
    );
    let single_file = path.is_file();
    let (mut info, piece_layers) = match options.version {
        MetaVersion::V1 => {
            let pieces = hash_pieces(&files, piece_length, threads)?;
            let info = v1_info(&name, &files, single_file, piece_length, &pieces);
            (info, None)
        }
        version => {
            let hybrid = version == MetaVersion::Hybrid;
            let hashed = v2::hash_files(&files, piece_length, threads, hybrid)?;
            let info = v2::info_fields(&name, &files, single_file, piece_length, &hashed);
            (info, Some(v2::piece_layers(&hashed.files)))
        }
    };
    if options.private {
        info.push(("private", Value::integer(1)));
    }
    let info = Value::dict(info);
    // Both hashes are over the bytes of `info` exactly as the file will hold them.
    let info_bytes = bencode::encode(&info);
    let (info_hash, info_hash_v2) = match options.version {
        MetaVersion::V1 => (InfoHash::of(&info_bytes), None),
        MetaVersion::V2 => {
            let v2 = InfoHashV2::of(&info_bytes);
            (v2.truncated(), Some(v2))
        }
        MetaVersion::Hybrid => (InfoHash::of(&info_bytes), Some(InfoHashV2::of(&info_bytes))),
    };
    let torrent = build_torrent(info, piece_layers, options);
    Ok(CreatedTorrent {
        bytes: bencode::encode(&torrent),
        info_hash,
        info_hash_v2,
        num_pieces: num_pieces as usize,
        piece_length,
    })
}

/// The number of pieces, refused above [`MAX_PIECES`] (no client would load the torrent); for
/// v2 and hybrid, also a file too large for a v2 tree ([`MAX_FILE_BLOCKS`]).
fn check_size(
    files: &[SourceFile],
    piece_length: u64,
    version: MetaVersion,
) -> Result<u64, CreateError> {
    let count = match version {
        MetaVersion::V1 => files
            .iter()
            .map(|f| f.length)
            .sum::<u64>()
            .div_ceil(piece_length),
        MetaVersion::V2 | MetaVersion::Hybrid => {
            let block = merkle::LEAF_BLOCK_LEN as u64;
            if let Some(big) = files.iter().find(|f| f.length / block >= MAX_FILE_BLOCKS) {
                return Err(CreateError::FileTooLarge {
                    path: big.disk_path.clone(),
                    length: big.length,
                    limit: MAX_FILE_BLOCKS,
                });
            }
            v2::num_pieces(files, piece_length)
        }
    };
    if count > MAX_PIECES {
        return Err(CreateError::TooManyPieces {
            count,
            piece_length,
            limit: MAX_PIECES,
        });
    }
    Ok(count)
}

/// Picks a power of two from 16 KiB to 16 MiB giving at most about 2,000 pieces: few enough
/// to keep the torrent file small, many enough that peers can trade pieces early.
pub fn choose_piece_length(total_length: u64) -> u64 {
    let mut piece_length = MIN_PIECE_LENGTH;
    while total_length.div_ceil(piece_length) > 2048 && piece_length < 16 * 1024 * 1024 {
        piece_length *= 2;
    }
    piece_length
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

/// The torrent's `name`: the last component of the path (`.` and `..` resolved first).
fn torrent_name(path: &Path) -> Result<String, CreateError> {
    let absolute = std::fs::canonicalize(path).map_err(|source| CreateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = absolute
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string);
    name.ok_or_else(|| CreateError::NoName {
        path: path.to_path_buf(),
    })
}

/// Lists the regular files under `path` in a fixed order (sorted by name at each level), as
/// every client expects the same torrent from the same directory. Symbolic links and special
/// files are skipped with a warning: a torrent of them would not mean the same thing elsewhere.
pub fn collect_files(path: &Path) -> Result<Vec<SourceFile>, CreateError> {
    let meta = std::fs::metadata(path).map_err(|source| CreateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return Ok(vec![SourceFile {
            disk_path: path.to_path_buf(),
            torrent_path: Vec::new(),
            length: meta.len(),
        }]);
    }
    let mut files = Vec::new();
    walk(path, &mut Vec::new(), &mut files)?;
    Ok(files)
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<SourceFile>,
) -> Result<(), CreateError> {
    let io_error = |source| CreateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io_error)?
        .collect::<Result<_, _>>()
        .map_err(io_error)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let disk_path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            log::warn!("skipping {}: its name is not UTF-8", disk_path.display());
            continue;
        };
        let kind = entry.file_type().map_err(|source| CreateError::Io {
            path: disk_path.clone(),
            source,
        })?;
        prefix.push(name);
        if kind.is_dir() {
            walk(&disk_path, prefix, out)?;
        } else if kind.is_file() {
            let length = entry
                .metadata()
                .map_err(|source| CreateError::Io {
                    path: disk_path.clone(),
                    source,
                })?
                .len();
            out.push(SourceFile {
                disk_path,
                torrent_path: prefix.clone(),
                length,
            });
        } else {
            log::warn!(
                "skipping {}: not a regular file or directory",
                disk_path.display()
            );
        }
        prefix.pop();
    }
    Ok(())
}

/// Hashes the files as one stream of pieces, on `threads` threads (`Storage::map_pieces`).
pub fn hash_pieces(
    files: &[SourceFile],
    piece_length: u64,
    threads: usize,
) -> Result<Vec<PieceHash>, CreateError> {
    let entries = files
        .iter()
        .map(|f| (f.disk_path.clone(), f.length, false))
        .collect();
    let stream = Storage::new(entries, false);
    let hash = |_, bytes: Result<&[u8], StorageError>| bytes.map(|b| PieceHash(sha1(b)));
    let hashes = stream.map_pieces(piece_length, threads, hash);
    hashes
        .into_iter()
        .map(|h| h.map_err(|e| read_error(e, files)))
        .collect()
}

/// A short read means a file shrank after it was listed.
fn read_error(error: StorageError, files: &[SourceFile]) -> CreateError {
    if error.source.kind() == std::io::ErrorKind::UnexpectedEof {
        let expected = files
            .iter()
            .find(|f| f.disk_path == error.path)
            .map_or(0, |f| f.length);
        return CreateError::FileChanged {
            path: error.path,
            expected,
        };
    }
    CreateError::Io {
        path: error.path,
        source: error.source,
    }
}

/// The fields of a v1 `info` dictionary (BEP 3), all but `private`.
fn v1_info(
    name: &str,
    files: &[SourceFile],
    single_file: bool,
    piece_length: u64,
    pieces: &[PieceHash],
) -> Vec<(&'static str, Value)> {
    let hashes: Vec<u8> = pieces.iter().flat_map(|h| h.0).collect();
    let mut info = vec![
        ("name", Value::bytes(name)),
        ("piece length", Value::integer(piece_length as i64)),
        ("pieces", Value::bytes(hashes)),
    ];
    if single_file {
        info.push(("length", Value::integer(files[0].length as i64)));
    } else {
        info.push(("files", Value::list(files.iter().map(file_entry).collect())));
    }
    info
}

/// The metainfo dictionary (BEP 3) around `info`, with BEP 12 tiers, and for v2 and hybrid
/// torrents the `piece layers` (BEP 52), which sit beside `info`, not in it.
fn build_torrent(info: Value, piece_layers: Option<Value>, options: &CreateOptions) -> Value {
    let mut root = vec![
        ("info", info),
        (
            "created by",
            Value::bytes(concat!("peerwire/", env!("CARGO_PKG_VERSION"))),
        ),
    ];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    root.push(("creation date", Value::integer(now)));
    if let Some(first) = options.trackers.first() {
        root.push(("announce", Value::bytes(first.as_str())));
    }
    if options.trackers.len() > 1 {
        let tiers = options
            .trackers
            .iter()
            .map(|url| Value::list(vec![Value::bytes(url.as_str())]))
            .collect();
        root.push(("announce-list", Value::list(tiers)));
    }
    if let Some(comment) = &options.comment {
        root.push(("comment", Value::bytes(comment.as_str())));
    }
    if let Some(layers) = piece_layers {
        root.push(("piece layers", layers));
    }
    Value::dict(root)
}

fn file_entry(file: &SourceFile) -> Value {
    let path = file
        .torrent_path
        .iter()
        .map(|p| Value::bytes(p.as_str()))
        .collect();
    Value::dict(vec![
        ("length", Value::integer(file.length as i64)),
        ("path", Value::list(path)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.max(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn piece_length_grows_with_the_content() {
        assert_eq!(choose_piece_length(1), 16 * 1024);
        assert_eq!(choose_piece_length(1 << 30), 512 * 1024);
        assert_eq!(choose_piece_length(u64::MAX / 2), 16 * 1024 * 1024);
    }

    #[test]
    fn a_multi_file_torrent_hashes_pieces_across_file_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("content");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let a = pseudo_random(40_000, 1);
        let b = pseudo_random(30_001, 2);
        std::fs::write(root.join("a.bin"), &a).unwrap();
        std::fs::write(root.join("empty"), b"").unwrap();
        std::fs::write(root.join("sub/b.bin"), &b).unwrap();
        let options = CreateOptions {
            piece_length: Some(16384),
            threads: Some(3),
            ..Default::default()
        };
        let created = create_torrent(&root, &options).unwrap();
        let loaded = Metainfo::from_bytes(&created.bytes).unwrap();
        assert_eq!(loaded.info_hash, created.info_hash);
        assert_eq!(loaded.info.name, "content");
        let paths: Vec<String> = loaded.info.files.iter().map(|f| f.display_path()).collect();
        assert_eq!(paths, ["a.bin", "empty", "sub/b.bin"]);
        // The pieces are the hashes of the concatenated stream, 16 KiB at a time.
        let stream = [a, b].concat();
        let expected: Vec<PieceHash> = stream.chunks(16384).map(|c| PieceHash(sha1(c))).collect();
        assert_eq!(loaded.info.pieces, expected);
    }

    #[test]
    fn single_file_torrent_with_trackers_private_and_comment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.bin");
        std::fs::write(&file, pseudo_random(100_000, 3)).unwrap();
        let options = CreateOptions {
            trackers: vec!["http://a/announce".into(), "udp://b:80".into()],
            private: true,
            comment: Some("hello".into()),
            ..Default::default()
        };
        let loaded = Metainfo::from_bytes(&create_torrent(&file, &options).unwrap().bytes).unwrap();
        assert!(!loaded.info.multi_file);
        assert!(loaded.info.private);
        assert_eq!(loaded.info.total_length, 100_000);
        assert_eq!(loaded.announce.as_deref(), Some("http://a/announce"));
        assert_eq!(
            loaded.announce_list,
            vec![
                vec!["http://a/announce".to_string()],
                vec!["udp://b:80".to_string()]
            ]
        );
        assert_eq!(loaded.comment.as_deref(), Some("hello"));
    }

    /// A directory of awkward sizes: an empty file, one smaller than a piece, one of several
    /// pieces, one of exactly one piece, two identical files, and a subdirectory.
    fn awkward_directory(root: &Path) -> PathBuf {
        let dir = root.join("content");
        std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        std::fs::write(dir.join("a.bin"), pseudo_random(100_001, 1)).unwrap();
        std::fs::write(dir.join("empty"), b"").unwrap();
        std::fs::write(dir.join("exact.bin"), pseudo_random(32_768, 2)).unwrap();
        std::fs::write(dir.join("sub/b.bin"), pseudo_random(5_000, 3)).unwrap();
        std::fs::write(dir.join("sub/deeper/c.bin"), pseudo_random(70_000, 4)).unwrap();
        std::fs::write(dir.join("sub/twin.bin"), pseudo_random(70_000, 4)).unwrap();
        dir
    }

    fn made(path: &Path, version: MetaVersion, piece_length: u64) -> (CreatedTorrent, Metainfo) {
        let options = CreateOptions {
            piece_length: Some(piece_length),
            threads: Some(2),
            private: true,
            version,
            ..Default::default()
        };
        let created = create_torrent(path, &options).unwrap();
        let loaded = Metainfo::from_bytes(&created.bytes).unwrap();
        assert_eq!(loaded.version, version);
        assert_eq!(loaded.info_hash, created.info_hash);
        assert_eq!(
            loaded.v2.as_ref().map(|v| v.info_hash),
            created.info_hash_v2
        );
        assert!(loaded.info.private);
        (created, loaded)
    }

    #[test]
    fn a_v2_directory_torrent_loads_back_with_its_roots_and_piece_layers() {
        let dir = tempfile::tempdir().unwrap();
        let content = awkward_directory(dir.path());
        let (created, loaded) = made(&content, MetaVersion::V2, 32_768);
        let v2 = loaded.v2.as_ref().unwrap();
        // Loading checked every piece layer against its root; all are there.
        assert!(v2.piece_layers_complete);
        let listed: Vec<(String, u64, bool)> = v2
            .files
            .iter()
            .map(|f| (f.display_path(), f.length, !f.piece_layer.is_empty()))
            .collect();
        assert_eq!(
            listed,
            [
                ("a.bin".to_string(), 100_001, true),
                ("empty".to_string(), 0, false),
                ("exact.bin".to_string(), 32_768, false),
                ("sub/b.bin".to_string(), 5_000, false),
                ("sub/deeper/c.bin".to_string(), 70_000, true),
                ("sub/twin.bin".to_string(), 70_000, true),
            ]
        );
        assert_eq!(v2.files[1].pieces_root, None, "an empty file has no root");
        // Each root is the Merkle root of the file's 16 KiB leaves.
        let a = std::fs::read(content.join("a.bin")).unwrap();
        assert_eq!(
            v2.files[0].pieces_root,
            Some(merkle::root_of(&merkle::leaf_hashes(&a)))
        );
        assert_eq!(v2.files[4].pieces_root, v2.files[5].pieces_root);
        assert_eq!(created.num_pieces, 4 + 1 + 1 + 3 + 3);
        assert_eq!(loaded.info.num_pieces(), created.num_pieces);
        // A v2 torrent has no SHA-1 pieces, and is known by its SHA-256.
        assert!(loaded.info.pieces.is_empty());
        assert_eq!(
            Some(created.info_hash),
            created.info_hash_v2.map(|h| h.truncated())
        );
        let torrent = bencode::decode(&created.bytes).unwrap().value;
        let info = torrent.get("info").unwrap();
        assert_eq!(
            info.get("meta version").and_then(Value::as_integer),
            Some(2)
        );
        assert!(info.get("pieces").is_none() && info.get("files").is_none());
        let layers = torrent
            .get("piece layers")
            .and_then(Value::as_dict)
            .unwrap();
        assert_eq!(layers.len(), 2, "the twins share one entry");
    }

    #[test]
    fn a_hybrid_directory_torrent_pads_each_file_to_a_piece_the_last_one_too() {
        let dir = tempfile::tempdir().unwrap();
        let content = awkward_directory(dir.path());
        let (created, loaded) = made(&content, MetaVersion::Hybrid, 32_768);
        // Loading checked that the v1 list and the file tree agree, file by file and offset
        // by offset.
        assert!(loaded.info.hybrid && loaded.info.multi_file);
        let layout: Vec<(String, u64, u64)> = loaded
            .info
            .files
            .iter()
            .map(|f| (f.display_path(), f.length, f.offset))
            .collect();
        let expected = [
            ("a.bin", 100_001, 0),
            (".pad/31071", 31_071, 100_001),
            ("empty", 0, 131_072),
            ("exact.bin", 32_768, 131_072),
            ("sub/b.bin", 5_000, 163_840),
            (".pad/27768", 27_768, 168_840),
            ("sub/deeper/c.bin", 70_000, 196_608),
            (".pad/28304", 28_304, 266_608),
            ("sub/twin.bin", 70_000, 294_912),
            (".pad/28304", 28_304, 364_912),
        ];
        let expected: Vec<(String, u64, u64)> = expected
            .iter()
            .map(|(p, l, o)| (p.to_string(), *l, *o))
            .collect();
        assert_eq!(layout, expected);
        assert_eq!(loaded.info.total_length, 12 * 32_768);
        assert_eq!(loaded.info.pieces.len(), 12);
        assert_eq!(created.num_pieces, 12);
        // The v1 pieces are the SHA-1s of the padded stream.
        let mut stream = Vec::new();
        for file in &loaded.info.files {
            match file.padding {
                true => stream.resize(stream.len() + file.length as usize, 0),
                false => stream.extend(std::fs::read(content.join(file.display_path())).unwrap()),
            }
        }
        let expected: Vec<PieceHash> = stream.chunks(32_768).map(|c| PieceHash(sha1(c))).collect();
        assert_eq!(loaded.info.pieces, expected);
        let pads = loaded.info.files.iter().filter(|f| f.padding).count();
        assert_eq!(pads, 4);
    }

    #[test]
    fn single_file_v2_and_hybrid_torrents_name_the_file_and_have_no_padding() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.bin");
        std::fs::write(&file, pseudo_random(100_000, 5)).unwrap();
        let (_, v2) = made(&file, MetaVersion::V2, 16_384);
        assert!(!v2.info.multi_file);
        let v2_files = &v2.v2.as_ref().unwrap().files;
        assert_eq!(v2_files.len(), 1);
        assert_eq!(v2_files[0].path, ["data.bin"]);
        assert_eq!(v2_files[0].piece_layer.len(), 7);
        let (created, hybrid) = made(&file, MetaVersion::Hybrid, 16_384);
        assert!(!hybrid.info.multi_file);
        assert_eq!(
            hybrid.info.total_length, 100_000,
            "no padding after the one file"
        );
        assert_eq!(hybrid.info.pieces.len(), 7);
        assert_eq!(created.num_pieces, 7);
        let torrent = bencode::decode(&created.bytes).unwrap().value;
        let info = torrent.get("info").unwrap();
        assert_eq!(
            info.get("length").and_then(Value::as_integer),
            Some(100_000)
        );
        let tree = info.get("file tree").and_then(Value::as_dict).unwrap();
        assert_eq!(tree.len(), 1);
        assert_eq!(tree[0].0, b"data.bin");
    }

    #[test]
    fn v2_refuses_what_no_client_would_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), b"x").unwrap();
        let odd = CreateOptions {
            piece_length: Some(20000),
            version: MetaVersion::V2,
            ..Default::default()
        };
        assert!(matches!(
            create_torrent(dir.path(), &odd),
            Err(CreateError::BadPieceLength(20000))
        ));
        // Nothing is read to count: the files need not exist.
        let files = |n: usize, length: u64| -> Vec<SourceFile> {
            (0..n)
                .map(|i| SourceFile {
                    disk_path: PathBuf::from(i.to_string()),
                    torrent_path: vec![i.to_string()],
                    length,
                })
                .collect()
        };
        // In v2 each file takes whole pieces of its own.
        let small = files(3000, 1);
        assert_eq!(check_size(&small, 16_384, MetaVersion::V1).unwrap(), 1);
        assert_eq!(
            check_size(&small, 16_384, MetaVersion::Hybrid).unwrap(),
            3000
        );
        // Three files of 16 GiB in 16 KiB pieces: 3 * 2^20 pieces, over the 2^21 limit.
        let huge = files(3, 1 << 34);
        for version in [MetaVersion::V1, MetaVersion::V2, MetaVersion::Hybrid] {
            assert!(matches!(
                check_size(&huge, 16_384, version),
                Err(CreateError::TooManyPieces {
                    count: 3_145_728,
                    ..
                })
            ));
        }
        // A file too large for a v2 tree is refused whatever the piece length.
        let giant = files(1, MAX_FILE_BLOCKS * 16_384);
        assert!(matches!(
            check_size(&giant, MAX_PIECE_LENGTH, MetaVersion::V2),
            Err(CreateError::FileTooLarge { .. })
        ));
        assert!(check_size(&giant, MAX_PIECE_LENGTH, MetaVersion::V1).is_ok());
    }

    #[test]
    fn refuses_empty_content_and_odd_piece_lengths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        assert!(matches!(
            create_torrent(dir.path(), &CreateOptions::default()),
            Err(CreateError::NoData { .. })
        ));
        std::fs::write(dir.path().join("x"), b"x").unwrap();
        let odd = CreateOptions {
            piece_length: Some(20000),
            ..Default::default()
        };
        assert!(matches!(
            create_torrent(dir.path(), &odd),
            Err(CreateError::BadPieceLength(20000))
        ));
    }
}
