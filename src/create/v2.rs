//! Making v2 and hybrid torrents (BEP 52, The BitTorrent Protocol Specification v2; BEP 47,
//! Padding files and extended file attributes) — walkthrough §2.
//!
//! A v2 torrent gives each file a SHA-256 Merkle tree of its own (`crate::merkle`) and lays
//! the files out piece-aligned: every file with data starts a new piece. A hybrid describes
//! the same layout twice, as a v2 `file tree` and as a v1 `files` list in which BEP 47 padding
//! files fill each file's last piece, so that v1 pieces line up with v2 pieces:
//!
//! ```text
//!   files (sorted)    a.bin 40000     e (empty)    sub/b.bin 20000          piece length 16 KiB
//!   the stream        |a0|a1|a2 + pad 9152|       |b0|b1 + pad 12768|
//!   v2, per piece     SHA-256 of each 16 KiB leaf of the file's own bytes -> the piece's node
//!   v1, per piece     SHA-1 of the whole piece, padding zeros included      (hybrid only)
//! ```
//!
//! One pass reads the stream (`Storage::map_pieces`, on every core, as for v1: one piece
//! buffer per thread, whatever the size of the files), and each piece gives one 32-byte node
//! and, for a hybrid, one 20-byte SHA-1. A file's nodes are its piece layer, and the root above
//! them is its `pieces root`; a file of one piece has no layer, and its one node is the root
//! of its own leaves. Memory is those hashes: what the `.torrent` holds anyway.
//!
//! The layout is libtorrent's, so that both make the same torrent of the same files (the same
//! v1 and v2 info hashes): files in file tree order (sorted by name at each level, depth
//! first), a padding file `.pad/<length>` with `attr` `p` right after each file that does not
//! end on a piece boundary, the last file too, and no padding at all in a torrent of one file.
//!
//! Where this sits in the data flow: `create_torrent` (`create.rs`) lists the files and picks
//! the piece length, then calls [`hash_files`] and [`info_fields`] here for `--v2` and
//! `--hybrid`; `metainfo` reads the result back as any other v2 or hybrid torrent.

use super::{CreateError, SourceFile, file_entry, read_error};
use crate::bencode::{Item, Value};
use crate::encoding::sha1;
use crate::merkle::{self, BlocksPerPiece, Sha256Hash};
use crate::metainfo::PieceHash;
use crate::storage::{Storage, StorageError};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One entry of the byte stream the pieces cover: a file, or the padding that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEntry<'a> {
    File(&'a SourceFile),
    /// BEP 47 padding: this many zero bytes, up to the next piece boundary.
    Padding(u64),
}

/// What hashing found for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashes {
    /// The root of the file's Merkle tree; `None` for an empty file, which has no tree.
    pub pieces_root: Option<Sha256Hash>,
    /// One node per piece; empty for a file of one piece or less (BEP 52 lists layers only
    /// for files larger than one piece).
    pub piece_layer: Vec<Sha256Hash>,
}

/// Every file's hashes, and for a hybrid the v1 piece hashes of the padded stream.
#[derive(Debug, Clone)]
pub struct Hashed {
    /// In the order of the files.
    pub files: Vec<FileHashes>,
    /// SHA-1 of each piece of the stream; `None` for a v2-only torrent.
    pub v1_pieces: Option<Vec<PieceHash>>,
}

/// The piece-aligned stream: after each file that does not end on a piece boundary, padding up
/// to the next one, so that every file with data starts a piece. The last file is padded too
/// (libtorrent 2.0 does so; a hybrid's v1 info hash depends on it). A torrent of one file gets
/// no padding: a single-file torrent has no `files` list to hold it, and libtorrent pads no
/// torrent of one file, even one made of a directory.
pub fn aligned_stream(files: &[SourceFile], piece_length: u64) -> Vec<StreamEntry<'_>> {
    let pad = files.len() > 1;
    let mut stream = Vec::with_capacity(files.len() * 2);
    for file in files {
        stream.push(StreamEntry::File(file));
        // Every file starts on a boundary (the padding before it saw to that), so its own
        // length says how far its last piece is filled.
        let used = file.length % piece_length;
        if pad && used != 0 {
            stream.push(StreamEntry::Padding(piece_length - used));
        }
    }
    stream
}

/// Pieces of a piece-aligned torrent: each file's own, none shared (its v1 pieces too, the
/// padding making up each file's last piece).
pub fn num_pieces(files: &[SourceFile], piece_length: u64) -> u64 {
    files.iter().map(|f| f.length.div_ceil(piece_length)).sum()
}

/// Where one file's pieces are in the stream: `count` pieces from piece `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FilePieces {
    first: u64,
    count: u64,
    length: u64,
}

/// The pieces of each file, in file order; an empty file has none.
fn file_pieces(files: &[SourceFile], piece_length: u64) -> Vec<FilePieces> {
    let mut first = 0;
    files
        .iter()
        .map(|file| {
            let count = file.length.div_ceil(piece_length);
            let here = FilePieces {
                first,
                count,
                length: file.length,
            };
            first += count;
            here
        })
        .collect()
}

/// What one piece gives: its node in its file's tree, and its SHA-1 for a hybrid.
struct PieceDigest {
    node: Sha256Hash,
    sha1: Option<PieceHash>,
}

/// Hashes every file (SHA-256 per 16 KiB leaf) and, when `v1` is set, every piece of the
/// padded stream (SHA-1), in one read of the files on `threads` threads.
pub fn hash_files(
    files: &[SourceFile],
    piece_length: u64,
    threads: usize,
    v1: bool,
) -> Result<Hashed, CreateError> {
    let per_piece = BlocksPerPiece::for_piece_length(piece_length)
        .map_err(|_| CreateError::BadPieceLength(piece_length))?;
    let entries = aligned_stream(files, piece_length)
        .into_iter()
        .map(|entry| match entry {
            StreamEntry::File(f) => (f.disk_path.clone(), f.length, false),
            // A padding entry reads as zeros and is never opened: its path is only a label.
            StreamEntry::Padding(n) => (PathBuf::from(".pad"), n, true),
        })
        .collect();
    let stream = Storage::new(entries, false);
    let owners = file_pieces(files, piece_length);
    let digest = |index: u32, bytes: Result<&[u8], StorageError>| {
        let bytes = bytes?;
        let index = u64::from(index);
        // The stream is the files' pieces end to end, so each piece has exactly one owner;
        // `map_pieces` asks for no piece past the last file's.
        let owner = owners[owners.partition_point(|f| f.first + f.count <= index)];
        let start = (index - owner.first) * piece_length;
        let data = (owner.length - start).min(piece_length) as usize;
        // Leaves cover the file's own bytes only: the last one is hashed short, and the
        // padding after it is no part of the file's tree.
        let leaves = merkle::leaf_hashes(&bytes[..data]);
        let node = match owner.count {
            // A file of one piece has no piece layer: its node is its root, over its own
            // leaves padded to a power of two of their own, not to a whole piece.
            1 => merkle::root_of(&leaves),
            _ => merkle::piece_root(&leaves, per_piece),
        };
        let sha1 = v1.then(|| PieceHash(sha1(bytes)));
        Ok(PieceDigest { node, sha1 })
    };
    let digests = stream
        .map_pieces(piece_length, threads, digest)
        .into_iter()
        .collect::<Result<Vec<PieceDigest>, StorageError>>()
        .map_err(|e| read_error(e, files))?;
    let files = owners
        .iter()
        .map(|owner| {
            let range = owner.first as usize..(owner.first + owner.count) as usize;
            let nodes: Vec<Sha256Hash> = digests[range].iter().map(|d| d.node).collect();
            match nodes.as_slice() {
                [] => FileHashes {
                    pieces_root: None,
                    piece_layer: Vec::new(),
                },
                [root] => FileHashes {
                    pieces_root: Some(*root),
                    piece_layer: Vec::new(),
                },
                _ => FileHashes {
                    pieces_root: Some(merkle::root_from_layer(&nodes, per_piece.height())),
                    piece_layer: nodes,
                },
            }
        })
        .collect();
    let v1_pieces = v1.then(|| digests.iter().filter_map(|d| d.sha1).collect());
    Ok(Hashed { files, v1_pieces })
}

/// The fields of the `info` dictionary of a v2 (`hybrid` false) or hybrid torrent, all but
/// `private`. `single_file` names the one file by the torrent's `name`.
pub fn info_fields(
    name: &str,
    files: &[SourceFile],
    single_file: bool,
    piece_length: u64,
    hashed: &Hashed,
) -> Vec<(&'static str, Value)> {
    let mut info = vec![
        ("meta version", Value::integer(2)),
        ("name", Value::bytes(name)),
        ("piece length", Value::integer(piece_length as i64)),
        (
            "file tree",
            file_tree(name, files, single_file, &hashed.files),
        ),
    ];
    let Some(pieces) = &hashed.v1_pieces else {
        return info;
    };
    // The hybrid's v1 half: the same files in the same order, with the padding that gives
    // them the same places (BEP 52 "Upgrade Path").
    let hashes: Vec<u8> = pieces.iter().flat_map(|h| h.0).collect();
    info.push(("pieces", Value::bytes(hashes)));
    if single_file {
        info.push(("length", Value::integer(files[0].length as i64)));
    } else {
        let list = aligned_stream(files, piece_length)
            .into_iter()
            .map(|entry| match entry {
                StreamEntry::File(f) => file_entry(f),
                StreamEntry::Padding(n) => padding_entry(n),
            })
            .collect();
        info.push(("files", Value::list(list)));
    }
    info
}

/// A BEP 47 padding file in a v1 `files` list: `attr` `p`, path `.pad/<length>`.
fn padding_entry(length: u64) -> Value {
    let path = vec![Value::bytes(".pad"), Value::bytes(length.to_string())];
    Value::dict(vec![
        ("attr", Value::bytes("p")),
        ("length", Value::integer(length as i64)),
        ("path", Value::list(path)),
    ])
}

/// A directory of the file tree while it is being built: names to files or directories.
#[derive(Default)]
struct Directory {
    entries: BTreeMap<String, Node>,
}

enum Node {
    /// A file's `{"": {length, pieces root}}`.
    File(Value),
    Directory(Directory),
}

impl Directory {
    fn insert(&mut self, path: &[String], leaf: Value) {
        match path {
            // Every file has a name: `collect_files` gives a path of at least one element
            // below a directory, and a single file is named by the torrent's name.
            [] => {}
            [name] => {
                self.entries.insert(name.clone(), Node::File(leaf));
            }
            [directory, rest @ ..] => {
                let node = self
                    .entries
                    .entry(directory.clone())
                    .or_insert_with(|| Node::Directory(Directory::default()));
                // A name on disk is a file or a directory, never both: a `File` here cannot be.
                if let Node::Directory(below) = node {
                    below.insert(rest, leaf);
                }
            }
        }
    }

    fn into_value(self) -> Value {
        let entries = self
            .entries
            .into_iter()
            .map(|(name, node)| {
                let value = match node {
                    Node::File(leaf) => leaf,
                    Node::Directory(below) => below.into_value(),
                };
                (name.into_bytes(), value)
            })
            .collect();
        Value::new(Item::Dict(entries))
    }
}

/// `file tree`: nested dictionaries, one per directory, each file a dictionary whose only key
/// is the empty one (BEP 52). A single file is the tree's one entry, under the torrent's name.
fn file_tree(name: &str, files: &[SourceFile], single_file: bool, hashes: &[FileHashes]) -> Value {
    let mut root = Directory::default();
    for (file, hashes) in files.iter().zip(hashes) {
        let mut fields = vec![("length", Value::integer(file.length as i64))];
        if let Some(pieces_root) = hashes.pieces_root {
            fields.push(("pieces root", Value::bytes(pieces_root.0)));
        }
        let leaf = Value::dict(vec![("", Value::dict(fields))]);
        if single_file {
            root.insert(&[name.to_string()], leaf);
        } else {
            root.insert(&file.torrent_path, leaf);
        }
    }
    root.into_value()
}

/// `piece layers` (beside `info`): each file larger than one piece, keyed by its root, to its
/// piece layer's hashes end to end. Identical files share a root and so one entry.
pub fn piece_layers(hashes: &[FileHashes]) -> Value {
    let mut layers: BTreeMap<Sha256Hash, &[Sha256Hash]> = BTreeMap::new();
    for file in hashes {
        if let (Some(root), false) = (file.pieces_root, file.piece_layer.is_empty()) {
            layers.insert(root, &file.piece_layer);
        }
    }
    let entries = layers
        .into_iter()
        .map(|(root, layer)| {
            let bytes: Vec<u8> = layer.iter().flat_map(|h| h.0).collect();
            (root.0.to_vec(), Value::bytes(bytes))
        })
        .collect();
    Value::new(Item::Dict(entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode;
    use crate::merkle::LEAF_BLOCK_LEN;

    const PIECE: u64 = 32 * 1024;

    fn source(path: &str, length: u64) -> SourceFile {
        SourceFile {
            disk_path: PathBuf::from(path),
            torrent_path: path.split('/').map(str::to_string).collect(),
            length,
        }
    }

    fn shape(stream: &[StreamEntry]) -> Vec<String> {
        stream
            .iter()
            .map(|e| match e {
                StreamEntry::File(f) => format!("{} {}", f.torrent_path.join("/"), f.length),
                StreamEntry::Padding(n) => format!("pad {n}"),
            })
            .collect()
    }

    #[test]
    fn padding_follows_every_file_that_does_not_fill_its_last_piece_the_last_one_too() {
        let files = [
            source("a.bin", 40_000),
            source("empty", 0),
            source("exact.bin", 2 * PIECE),
            source("sub/b.bin", 3),
        ];
        let stream = aligned_stream(&files, PIECE);
        assert_eq!(
            shape(&stream),
            [
                "a.bin 40000",
                "pad 25536",
                "empty 0",
                "exact.bin 65536",
                "sub/b.bin 3",
                "pad 32765"
            ]
        );
        // The padded stream is whole pieces, and each file with data starts one.
        let mut offset = 0;
        for entry in &stream {
            match entry {
                StreamEntry::File(f) => {
                    if f.length > 0 {
                        assert_eq!(offset % PIECE, 0, "{}", f.torrent_path.join("/"));
                    }
                    offset += f.length;
                }
                StreamEntry::Padding(n) => offset += n,
            }
        }
        assert_eq!(offset, 5 * PIECE);
    }

    #[test]
    fn a_torrent_of_one_file_has_no_padding() {
        let one = [source("only.bin", 1000)];
        assert_eq!(shape(&aligned_stream(&one, PIECE)), ["only.bin 1000"]);
        // An empty file beside it makes two files: then the data file is padded.
        let two = [source("a.bin", 1000), source("z", 0)];
        assert_eq!(
            shape(&aligned_stream(&two, PIECE)),
            ["a.bin 1000", "pad 31768", "z 0"]
        );
    }

    #[test]
    fn each_file_owns_whole_pieces() {
        let files = [
            source("a", 40_000),
            source("e", 0),
            source("b", PIECE),
            source("c", 1),
        ];
        let owners = file_pieces(&files, PIECE);
        let firsts: Vec<(u64, u64)> = owners.iter().map(|o| (o.first, o.count)).collect();
        assert_eq!(firsts, [(0, 2), (2, 0), (2, 1), (3, 1)]);
    }

    fn leaf(root: Option<u8>) -> FileHashes {
        FileHashes {
            pieces_root: root.map(|b| Sha256Hash([b; 32])),
            piece_layer: Vec::new(),
        }
    }

    #[test]
    fn the_file_tree_nests_directories_and_sorts_names_as_bytes() {
        let files = [
            source("B", 1),
            source("a/x", 2),
            source("a-b", 3),
            source("a.bin", 0),
        ];
        let hashes = [leaf(Some(1)), leaf(Some(2)), leaf(Some(3)), leaf(None)];
        let tree = file_tree("content", &files, false, &hashes);
        let encoded = bencode::encode(&tree);
        let expected = format!(
            "d1:Bd0:d6:lengthi1e11:pieces root32:{}ee1:ad1:xd0:d6:lengthi2e11:pieces root32:{}eee\
             3:a-bd0:d6:lengthi3e11:pieces root32:{}ee5:a.bind0:d6:lengthi0eeee",
            "\u{1}".repeat(32),
            "\u{2}".repeat(32),
            "\u{3}".repeat(32),
        );
        assert_eq!(String::from_utf8(encoded).unwrap(), expected);
        // The tree's depth-first order is the order `collect_files` gives (`B`, `a/x`, `a-b`,
        // `a.bin`): a hybrid's v1 list must follow it.
        let order: Vec<&[u8]> = tree
            .as_dict()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_slice())
            .collect();
        assert_eq!(order, [&b"B"[..], b"a", b"a-b", b"a.bin"]);
    }

    #[test]
    fn a_single_file_is_the_one_entry_of_the_tree_under_the_torrent_name() {
        let files = [SourceFile {
            disk_path: PathBuf::from("/somewhere/data.bin"),
            torrent_path: Vec::new(),
            length: 5,
        }];
        let tree = file_tree("data.bin", &files, true, &[leaf(Some(9))]);
        let encoded = String::from_utf8(bencode::encode(&tree)).unwrap();
        assert_eq!(
            encoded,
            format!(
                "d8:data.bind0:d6:lengthi5e11:pieces root32:{}eee",
                "\u{9}".repeat(32)
            )
        );
    }

    #[test]
    fn piece_layers_list_each_root_once_and_only_files_larger_than_a_piece() {
        let big = FileHashes {
            pieces_root: Some(Sha256Hash([7; 32])),
            piece_layer: vec![Sha256Hash([1; 32]), Sha256Hash([2; 32])],
        };
        let layers = piece_layers(&[big.clone(), leaf(Some(3)), leaf(None), big]);
        let entries = layers.as_dict().unwrap();
        assert_eq!(entries.len(), 1, "identical files share one entry");
        assert_eq!(entries[0].0, [7u8; 32]);
        assert_eq!(
            entries[0].1.as_bytes().unwrap(),
            [[1u8; 32], [2; 32]].concat()
        );
    }

    #[test]
    fn hashing_gives_roots_layers_and_v1_pieces_of_the_padded_stream() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..3 * PIECE as usize + 5)
            .map(|i| (i % 253) as u8)
            .collect();
        let small = vec![9u8; LEAF_BLOCK_LEN + 1];
        std::fs::write(dir.path().join("big"), &big).unwrap();
        std::fs::write(dir.path().join("small"), &small).unwrap();
        let on_disk = |name: &str, length: usize| SourceFile {
            disk_path: dir.path().join(name),
            torrent_path: vec![name.to_string()],
            length: length as u64,
        };
        let files = [on_disk("big", big.len()), on_disk("small", small.len())];
        let hashed = hash_files(&files, PIECE, 3, true).unwrap();
        let per_piece = BlocksPerPiece::for_piece_length(PIECE).unwrap();
        let big_leaves = merkle::leaf_hashes(&big);
        assert_eq!(
            hashed.files[0].pieces_root,
            Some(merkle::root_of(&big_leaves))
        );
        assert_eq!(
            hashed.files[0].piece_layer,
            merkle::piece_layer(&big_leaves, per_piece)
        );
        assert_eq!(hashed.files[0].piece_layer.len(), 4);
        // The small file is one piece: a root, no layer.
        assert_eq!(
            hashed.files[1],
            FileHashes {
                pieces_root: Some(merkle::root_of(&merkle::leaf_hashes(&small))),
                piece_layer: Vec::new(),
            }
        );
        // v1: the stream with zeros after each file, the last one too.
        let mut stream = big.clone();
        stream.resize(4 * PIECE as usize, 0);
        stream.extend_from_slice(&small);
        stream.resize(5 * PIECE as usize, 0);
        let expected: Vec<PieceHash> = stream
            .chunks(PIECE as usize)
            .map(|c| PieceHash(sha1(c)))
            .collect();
        assert_eq!(hashed.v1_pieces, Some(expected));
        assert_eq!(num_pieces(&files, PIECE), 5);
        // v2-only hashes no SHA-1.
        let v2 = hash_files(&files, PIECE, 1, false).unwrap();
        assert_eq!(v2.files, hashed.files);
        assert_eq!(v2.v1_pieces, None);
    }
}
