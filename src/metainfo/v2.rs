//! BitTorrent v2 torrents (BEP 52, The BitTorrent Protocol Specification v2) — walkthrough §2.
//!
//! A v2 `info` dictionary says `meta version` 2 and describes its files as a *file tree*, one
//! nested dictionary per directory, each file a leaf under the empty key:
//!
//! ```text
//!   info
//!     meta version  2
//!     name          the torrent's (directory) name
//!     piece length  a power of two, at least 16 KiB
//!     file tree     { "docs": { "a.txt": { "": { length 100, pieces root <32 bytes> } } },
//!                     "b.bin":             { "": { length 0 } } }          (empty: no root)
//!   piece layers    (beside `info`, not in it) { <pieces root>: <its piece layer> }
//! ```
//!
//! Each non-empty file has its own SHA-256 Merkle tree (`crate::merkle`); the tree gives only
//! its root, and `piece layers` the layer of one hash per piece, for every file larger than one
//! piece. Files are laid out piece-aligned: each file with data starts a new piece, so the
//! torrent's byte stream has gaps where v1 would have padding files. The v2 info hash is the
//! SHA-256 of the `info` bytes.
//!
//! Where this sits in the data flow: `Metainfo::from_bytes` hands a v2 or hybrid `info`
//! dictionary here. The result is a [`V2Info`] (files in tree order, roots, piece layers) for
//! the v2 swarm; for a v2-only torrent also the v1-shaped [`Info`] that `storage` understands
//! (the files with a padding entry wherever BEP 52 leaves a gap), so the byte stream maps onto
//! files exactly as v1 code expects. A hybrid keeps its v1 `files` list, checked against this
//! tree in `hybrid.rs`.
//!
//! What is refused, each as libtorrent refuses it: a piece length that is not a power of two of
//! at least 16 KiB; an empty name in the tree; a tree more than [`MAX_TREE_DEPTH`] directories
//! deep; a leaf with the padding attribute; a non-empty file without a 32-byte, non-zero pieces
//! root; a file of [`MAX_FILE_BLOCKS`] blocks or more; a `piece layers` entry that is not 32-byte
//! key to multiple-of-32 string, that names no file larger than one piece, that has the wrong
//! number of hashes, or that does not hash up to its root. Missing piece layers are allowed
//! (as for a magnet link, they would come from peers): [`V2Info::piece_layers_complete`] says.
//! Names are sanitised as v1 names are (`path.rs`): a file is never written outside the
//! torrent's directory.

use super::path::{resolve_collisions as resolve_paths, sanitize_element};
use super::{
    FileEntry, Info, InfoHashV2, MAX_PIECES, MetainfoError, missing, parse_name,
    parse_piece_length, wrong_type,
};
use crate::bencode::Value;
use crate::merkle::{self, BlocksPerPiece, LEAF_BLOCK_LEN, Sha256Hash};
use std::fmt;

/// Deepest directory nesting in a file tree (libtorrent's limit: deeper trees are refused).
pub const MAX_TREE_DEPTH: usize = 100;

/// A file of this many 16 KiB blocks or more is refused, as libtorrent refuses it (its tree
/// indices are 32-bit): 2^30 - 1 blocks, just under 16 TiB.
pub const MAX_FILE_BLOCKS: u64 = (i32::MAX / 2) as u64;

/// Which BitTorrent a torrent speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaVersion {
    /// BEP 3: `pieces`, SHA-1, no `meta version`.
    V1,
    /// BEP 52 only: `meta version` 2, a `file tree`, no v1 `pieces`.
    V2,
    /// Both at once: a v2 `file tree` and a v1 file list with `pieces`, describing the same
    /// files in the same piece-aligned layout (BEP 52 "Upgrade Path").
    Hybrid,
}

/// The v2 half of a v2-only or hybrid torrent.
#[derive(Debug, Clone)]
pub struct V2Info {
    /// SHA-256 of the `info` dictionary's bytes.
    pub info_hash: InfoHashV2,
    /// Every file of the file tree, in tree order (sorted keys, depth first); no padding.
    pub files: Vec<V2File>,
    /// Every file larger than one piece got its piece layer from `piece layers`. False for a
    /// torrent without them (a magnet link's metadata, `v2_no_piece_layers`): the layers must
    /// then come from peers (`hash request`) before a piece can be checked.
    pub piece_layers_complete: bool,
}

/// One file of a v2 file tree.
#[derive(Clone, PartialEq, Eq)]
pub struct V2File {
    /// Sanitised path elements, relative to the torrent's directory (or just the file's name
    /// for a single-file torrent), as in `FileEntry::path`.
    pub path: Vec<String>,
    pub length: u64,
    /// The root of the file's Merkle tree; `None` for an empty file or a symbolic link.
    pub pieces_root: Option<Sha256Hash>,
    /// One hash per piece of this file, from `piece layers`. Empty when the file fits in one
    /// piece (its root is then its only piece hash) or when the torrent has no layer for it.
    pub piece_layer: Vec<Sha256Hash>,
    /// A symbolic link's sanitised target (BEP 47 `symlink path`); not followed or created.
    pub symlink: Option<Vec<String>>,
    pub executable: bool,
    pub hidden: bool,
}

/// What [`parse`] found, before the caller builds its `Info`.
pub(super) struct Parsed {
    pub info: V2Info,
    pub piece_length: u64,
    /// The tree is one file at its top and there is no v1 `files` list: a single-file torrent.
    pub single_file: bool,
}

impl V2File {
    /// The path joined with `/`.
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }

    /// Pieces this file covers (files are piece-aligned in v2, so none is shared).
    pub fn num_pieces(&self, piece_length: u64) -> u64 {
        self.length.div_ceil(piece_length)
    }

    /// A file larger than one piece has a piece layer; a smaller one has only its root.
    pub fn needs_piece_layer(&self, piece_length: u64) -> bool {
        self.pieces_root.is_some() && self.length > piece_length
    }
}

impl V2Info {
    /// The file whose pieces root is `root`, if any (identical files share a root).
    pub fn file_with_root(&self, root: &Sha256Hash) -> Option<&V2File> {
        self.files
            .iter()
            .find(|f| f.pieces_root.as_ref() == Some(root))
    }
}

/// A readable `Debug`: the piece layer is summarised, not listed.
impl fmt::Debug for V2File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V2File")
            .field("path", &self.path)
            .field("length", &self.length)
            .field("pieces_root", &self.pieces_root)
            .field(
                "piece_layer",
                &format_args!("<{} hashes>", self.piece_layer.len()),
            )
            .field("symlink", &self.symlink)
            .field("executable", &self.executable)
            .field("hidden", &self.hidden)
            .finish()
    }
}

/// Reads the v2 half of `info` (the whole torrent is needed for `piece layers`, which sits
/// beside `info`). `info_bytes` are the raw bytes of `info`, for the v2 info hash.
pub(super) fn parse(
    torrent: &Value,
    info: &Value,
    info_bytes: &[u8],
) -> Result<Parsed, MetainfoError> {
    let piece_length = parse_piece_length(info)?;
    let per_piece = v2_piece_length(info, piece_length)?;
    let (mut files, single_file) = parse_tree(info)?;
    // The piece count is bounded before any piece layer is read: every layer must have one
    // hash per piece of its file, so the layers kept can never outgrow MAX_PIECES hashes.
    let layout = piece_aligned_files(&files, piece_length)?;
    check_piece_count(&layout, piece_length)?;
    let piece_layers_complete = attach_piece_layers(torrent, &mut files, per_piece, piece_length)?;
    Ok(Parsed {
        info: V2Info {
            info_hash: InfoHashV2::of(info_bytes),
            files,
            piece_layers_complete,
        },
        piece_length,
        single_file,
    })
}

/// The v1-shaped `Info` of a v2-only torrent: the v2 files with a padding entry wherever the
/// piece alignment leaves a gap, no v1 piece hashes. Renames colliding paths first.
pub(super) fn v2_only_info(info: &Value, parsed: &mut Parsed) -> Result<Info, MetainfoError> {
    // A name that sanitises to nothing is replaced by the info hash, as libtorrent does; a
    // single v2 file is named by its tree key, so it needs no `name` of its own.
    let name = parse_name(info, Some(parsed.info.info_hash.to_hex()))?;
    resolve_collisions(&mut parsed.info)?;
    let files = piece_aligned_files(&parsed.info.files, parsed.piece_length)?;
    let total_length = files.last().map_or(0, |f| f.offset + f.length);
    if total_length == 0 {
        return Err(MetainfoError::Empty);
    }
    Ok(Info {
        name,
        piece_length: parsed.piece_length,
        pieces: Vec::new(),
        files,
        multi_file: !parsed.single_file,
        // BEP 27: `private` is 1 for a private torrent; anything else means public.
        private: info.get("private").and_then(Value::as_integer) == Some(1),
        total_length,
        hybrid: false,
    })
}

/// Renames colliding paths of the v2 files, as the v1 list's are renamed (`path.rs`).
pub(super) fn resolve_collisions(v2: &mut V2Info) -> Result<(), MetainfoError> {
    let mut paths: Vec<Option<&mut Vec<String>>> =
        v2.files.iter_mut().map(|f| Some(&mut f.path)).collect();
    resolve_paths(&mut paths)
}

/// The files laid end to end as BEP 52 maps them into pieces: "each non-empty file is aligned
/// to a piece boundary and occurs in the same order as in the file tree". Where the previous
/// file did not end on a piece boundary, a padding entry (`.pad/<length>`, `padding: true`)
/// fills the gap before the next file with data. Empty files and symbolic links hold no bytes
/// and get no padding before them; nothing follows the last file. This is also where libtorrent
/// puts the padding files of the hybrids it makes.
pub fn piece_aligned_files(
    files: &[V2File],
    piece_length: u64,
) -> Result<Vec<FileEntry>, MetainfoError> {
    let mut entries = Vec::with_capacity(files.len() * 2);
    let mut offset: u64 = 0;
    for file in files {
        let gap = match offset % piece_length {
            0 => 0,
            used => piece_length - used,
        };
        if file.pieces_root.is_some() && gap > 0 {
            entries.push(FileEntry {
                path: vec![".pad".to_string(), gap.to_string()],
                length: gap,
                offset,
                padding: true,
                symlink: None,
                executable: false,
                hidden: false,
            });
            offset = offset
                .checked_add(gap)
                .ok_or(MetainfoError::TotalLengthOverflow)?;
        }
        entries.push(FileEntry {
            path: file.path.clone(),
            length: file.length,
            offset,
            padding: false,
            symlink: file.symlink.clone(),
            executable: file.executable,
            hidden: file.hidden,
        });
        offset = offset
            .checked_add(file.length)
            .ok_or(MetainfoError::TotalLengthOverflow)?;
    }
    Ok(entries)
}

/// BEP 52: the piece length "must be a power of two and at least 16KiB".
fn v2_piece_length(info: &Value, piece_length: u64) -> Result<BlocksPerPiece, MetainfoError> {
    BlocksPerPiece::for_piece_length(piece_length).map_err(|_| MetainfoError::BadValue {
        field: "info.piece length".into(),
        offset: info.get("piece length").map_or(0, |v| v.span.start),
        value: piece_length as i64,
        reason: "a v2 piece length must be a power of two and at least 16 KiB (BEP 52)",
    })
}

/// The pieces the piece-aligned layout needs must not pass [`MAX_PIECES`].
fn check_piece_count(layout: &[FileEntry], piece_length: u64) -> Result<(), MetainfoError> {
    let total = layout.last().map_or(0, |f| f.offset + f.length);
    let count = total.div_ceil(piece_length);
    if count > MAX_PIECES {
        return Err(MetainfoError::TooManyPieces {
            count,
            piece_length,
            limit: MAX_PIECES,
        });
    }
    Ok(())
}

/// `file tree`: every file in tree order, and whether the torrent is a single file.
fn parse_tree(info: &Value) -> Result<(Vec<V2File>, bool), MetainfoError> {
    let tree = info
        .get("file tree")
        .ok_or_else(|| missing("info.file tree"))?;
    let entries = tree
        .as_dict()
        .ok_or_else(|| wrong_type("info.file tree", tree, "a dictionary"))?;
    // libtorrent's rule: one leaf at the top, and no v1 `files` list beside it.
    let single_file =
        info.get("files").is_none() && matches!(entries, [(_, only)] if leaf_of(only).is_some());
    let mut files = Vec::new();
    walk(tree, &mut Vec::new(), 0, &mut files)?;
    if files.is_empty() {
        return Err(MetainfoError::NoFilesInTree);
    }
    Ok((files, single_file))
}

/// A directory of the tree: each entry is a file (a dictionary whose only key is the empty
/// one) or another directory. Recursion is bounded by [`MAX_TREE_DEPTH`].
fn walk(
    node: &Value,
    path: &mut Vec<String>,
    depth: usize,
    out: &mut Vec<V2File>,
) -> Result<(), MetainfoError> {
    if depth > MAX_TREE_DEPTH {
        return Err(MetainfoError::TreeTooDeep {
            path: path.join("/"),
            limit: MAX_TREE_DEPTH,
        });
    }
    let entries = node
        .as_dict()
        .ok_or_else(|| wrong_type(&tree_field(path), node, "a dictionary"))?;
    for (key, child) in entries {
        // The empty key is a file's properties; in a directory it has no place (and in the
        // root it would make the root itself a file, which BEP 52 forbids).
        if key.is_empty() {
            return Err(MetainfoError::EmptyFileName {
                directory: path.join("/"),
                offset: child.span.start,
            });
        }
        path.push(sanitize_element(key));
        let result = match leaf_of(child) {
            Some(leaf) => parse_leaf(leaf, path).map(|file| out.push(file)),
            None => walk(child, path, depth + 1, out),
        };
        path.pop();
        result?;
    }
    Ok(())
}

/// The properties of a file: the value of the only key, the empty one, of a dictionary.
fn leaf_of(node: &Value) -> Option<&Value> {
    match node.as_dict()? {
        [(key, leaf)] if key.is_empty() => Some(leaf),
        _ => None,
    }
}

/// `{length, pieces root, attr, symlink path}` of the file at `path`.
fn parse_leaf(leaf: &Value, path: &[String]) -> Result<V2File, MetainfoError> {
    let shown = path.join("/");
    if leaf.as_dict().is_none() {
        return Err(wrong_type(&tree_field(path), leaf, "a dictionary"));
    }
    let attr = leaf
        .get("attr")
        .and_then(Value::as_bytes)
        .unwrap_or_default();
    // v2 aligns files by itself; a padding file in the tree is a contradiction.
    if attr.contains(&b'p') {
        return Err(MetainfoError::PaddingInFileTree { path: shown });
    }
    let is_symlink = attr.contains(&b'l');
    let symlink = match leaf.get("symlink path").and_then(Value::as_list) {
        Some(target) if is_symlink && !target.is_empty() => Some(sanitize_target(target, path)?),
        _ => None,
    };
    // A symbolic link holds no bytes of the torrent, whatever `length` says.
    let length = if is_symlink {
        0
    } else {
        parse_length(leaf, path)?
    };
    if length / LEAF_BLOCK_LEN as u64 >= MAX_FILE_BLOCKS {
        return Err(MetainfoError::FileTooLarge {
            path: shown,
            length,
            limit: MAX_FILE_BLOCKS,
        });
    }
    let pieces_root = match length {
        0 => None,
        _ => Some(parse_pieces_root(leaf, &shown, length)?),
    };
    Ok(V2File {
        path: path.to_vec(),
        length,
        pieces_root,
        piece_layer: Vec::new(),
        symlink,
        executable: attr.contains(&b'x'),
        hidden: attr.contains(&b'h'),
    })
}

fn parse_length(leaf: &Value, path: &[String]) -> Result<u64, MetainfoError> {
    let field = format!("{}.length", tree_field(path));
    let value = leaf.get("length").ok_or_else(|| missing(&field))?;
    let n = value
        .as_integer()
        .ok_or_else(|| wrong_type(&field, value, "an integer"))?;
    u64::try_from(n).map_err(|_| MetainfoError::BadValue {
        field,
        offset: value.span.start,
        value: n,
        reason: "a length cannot be negative",
    })
}

/// A non-empty file's `pieces root`: 32 bytes, not all zero (zero means "no root").
fn parse_pieces_root(leaf: &Value, shown: &str, length: u64) -> Result<Sha256Hash, MetainfoError> {
    let value = leaf
        .get("pieces root")
        .ok_or_else(|| MetainfoError::MissingPiecesRoot {
            path: shown.to_string(),
            length,
        })?;
    let bytes = value.as_bytes().ok_or_else(|| {
        wrong_type(
            &format!("the pieces root of `{shown}`"),
            value,
            "a byte string",
        )
    })?;
    let root = Sha256Hash::from_slice(bytes).map_err(|_| MetainfoError::BadPiecesRoot {
        path: shown.to_string(),
        offset: value.span.start,
        len: bytes.len(),
    })?;
    if root.is_zero() {
        return Err(MetainfoError::ZeroPiecesRoot {
            path: shown.to_string(),
        });
    }
    Ok(root)
}

/// `symlink path`: a list of byte strings, each sanitised like a path element.
fn sanitize_target(elements: &[Value], path: &[String]) -> Result<Vec<String>, MetainfoError> {
    let element = |(i, e): (usize, &Value)| match e.as_bytes() {
        Some(bytes) => Ok(sanitize_element(bytes)),
        None => Err(wrong_type(
            &format!("{}.symlink path[{i}]", tree_field(path)),
            e,
            "a byte string",
        )),
    };
    elements.iter().enumerate().map(element).collect()
}

/// `piece layers` (beside `info`): for each file larger than one piece, its layer of piece
/// hashes, keyed by its pieces root. Every entry present is checked; absent ones are allowed.
/// Returns whether every file that needs a layer has one.
fn attach_piece_layers(
    torrent: &Value,
    files: &mut [V2File],
    per_piece: BlocksPerPiece,
    piece_length: u64,
) -> Result<bool, MetainfoError> {
    // Like libtorrent, a `piece layers` that is not a dictionary counts as absent.
    let layers = torrent
        .get("piece layers")
        .and_then(Value::as_dict)
        .unwrap_or_default();
    for (key, value) in layers {
        let offset = value.span.start;
        let root = Sha256Hash::from_slice(key).map_err(|_| MetainfoError::BadPieceLayerKey {
            offset,
            len: key.len(),
        })?;
        let bytes = value
            .as_bytes()
            .ok_or_else(|| wrong_type(&format!("piece layers[{root}]"), value, "a byte string"))?;
        let hashes =
            Sha256Hash::split_all(bytes).map_err(|_| MetainfoError::PieceLayerNotMultipleOf32 {
                root,
                offset,
                len: bytes.len(),
            })?;
        let wanted = |f: &V2File| f.pieces_root == Some(root) && f.needs_piece_layer(piece_length);
        let Some(file) = files.iter().find(|f| wanted(f)) else {
            return Err(MetainfoError::UnknownPieceLayer { root });
        };
        let path = file.display_path();
        if !file.piece_layer.is_empty() {
            return Err(MetainfoError::DuplicatePieceLayer { path });
        }
        let expected = file.num_pieces(piece_length);
        if hashes.len() as u64 != expected {
            return Err(MetainfoError::PieceLayerLength {
                path,
                found: hashes.len() as u64,
                expected,
                length: file.length,
                piece_length,
            });
        }
        let computed = merkle::root_from_layer(&hashes, per_piece.height());
        if computed != root {
            return Err(MetainfoError::PieceLayerMismatch {
                path,
                computed,
                root,
            });
        }
        // Identical files share a root and so a layer. Each copy is one hash per piece of its
        // own file, and the pieces were bounded before: the copies stay within MAX_PIECES.
        for file in files.iter_mut().filter(|f| wanted(f)) {
            file.piece_layer = hashes.clone();
        }
    }
    Ok(files
        .iter()
        .all(|f| !f.needs_piece_layer(piece_length) || !f.piece_layer.is_empty()))
}

/// How errors name a place in the tree: `info.file tree` and the sanitised path so far.
fn tree_field(path: &[String]) -> String {
    match path {
        [] => "info.file tree".to_string(),
        _ => format!("info.file tree/{}", path.join("/")),
    }
}
