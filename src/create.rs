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

use crate::bencode::{self, Value};
use crate::encoding::sha1;
use crate::metainfo::{InfoHash, MAX_PIECE_LENGTH, PieceHash};
use crate::storage::{Storage, StorageError};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Smallest piece length we pick or accept: one 16 KiB block.
pub const MIN_PIECE_LENGTH: u64 = 16 * 1024;

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Announce URLs: the first is `announce`; with more than one, each is its own tier.
    pub trackers: Vec<String>,
    /// Bytes per piece; chosen from the total size when `None`.
    pub piece_length: Option<u64>,
    pub private: bool,
    pub comment: Option<String>,
    /// Hashing threads; one per core when `None`.
    pub threads: Option<usize>,
}

/// A finished torrent: its bytes and a few facts to report.
pub struct CreatedTorrent {
    pub bytes: Vec<u8>,
    pub info_hash: InfoHash,
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
}

/// One file to include: where it is on disk and its path inside the torrent.
#[derive(Debug, Clone)]
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
    let threads = options.threads.unwrap_or_else(default_threads).max(1);
    log::info!(
        "hashing {total} bytes in {} files, pieces of {piece_length} bytes, {threads} threads",
        files.len()
    );
    let pieces = hash_pieces(&files, piece_length, threads)?;
    let single_file = path.is_file();
    let torrent = build_torrent(&name, &files, single_file, piece_length, &pieces, options);
    let bytes = bencode::encode(&torrent);
    let info_bytes = bencode::encode(torrent.get("info").expect("build_torrent always adds info"));
    Ok(CreatedTorrent {
        bytes,
        info_hash: InfoHash::of(&info_bytes),
        num_pieces: pieces.len(),
        piece_length,
    })
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

/// The metainfo dictionary (BEP 3), with BEP 12 tiers and BEP 27 `private` when asked for.
fn build_torrent(
    name: &str,
    files: &[SourceFile],
    single_file: bool,
    piece_length: u64,
    pieces: &[PieceHash],
    options: &CreateOptions,
) -> Value {
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
    if options.private {
        info.push(("private", Value::integer(1)));
    }
    let mut root = vec![
        ("info", Value::dict(info)),
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
