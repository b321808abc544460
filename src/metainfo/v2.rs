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
//! root; a file of [`MAX_FILE_BLOCKS`] blocks or more; a `piece layers` entry whose key is not
//! 32 bytes or whose value is not a whole number of 32-byte hashes, that names no file larger
//! than one piece, that has the wrong number of hashes, or that does not hash up to its root. Missing piece layers are allowed
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
            // [W18.1] SHA-256 of the same raw bytes v1 hashes with SHA-1.
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
/// to a piece boundary and occurs in the same order as in the file tree". After each file with
/// data that does not end on a piece boundary, a padding entry (`.pad/<length>`, `padding:
/// true`) fills the rest of its last piece, so that the next file starts a piece; none follows
/// the last file with data, so the torrent ends where its data ends. Empty files and symbolic
/// links hold no bytes: they sit where they fall. This is where libtorrent puts the padding
/// files of the torrents it makes (it adds one more after the last file, which moves nothing).
pub fn piece_aligned_files(
    files: &[V2File],
    piece_length: u64,
) -> Result<Vec<FileEntry>, MetainfoError> {
    let has_data = |f: &V2File| f.pieces_root.is_some();
    let last_with_data = files.iter().rposition(has_data);
    let mut entries = Vec::with_capacity(files.len() * 2);
    let mut offset: u64 = 0;
    for (index, file) in files.iter().enumerate() {
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
        let gap = match offset % piece_length {
            0 => 0,
            used => piece_length - used,
        };
        // [W18.3] The next file with data starts a new piece: the rest of this one is a gap.
        if has_data(file) && Some(index) < last_with_data && gap > 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::{self, Item};
    use crate::encoding::sha1;
    use crate::metainfo::{InfoHash, Metainfo};
    use std::collections::BTreeMap;

    const PIECE: u64 = 16384;

    /// A dictionary with byte-string keys, kept in the order given.
    fn dict(entries: Vec<(&[u8], Value)>) -> Value {
        Value::new(Item::Dict(
            entries.into_iter().map(|(k, v)| (k.to_vec(), v)).collect(),
        ))
    }

    /// Deterministic content for a file: `len` bytes that depend on `seed`.
    fn content(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    /// One file of a test torrent: raw path elements and content.
    struct File {
        path: Vec<Vec<u8>>,
        data: Vec<u8>,
    }

    fn file(path: &[&[u8]], len: usize, seed: u8) -> File {
        File {
            path: path.iter().map(|p| p.to_vec()).collect(),
            data: content(len, seed),
        }
    }

    fn root_of(data: &[u8]) -> Sha256Hash {
        merkle::root_of(&merkle::leaf_hashes(data))
    }

    /// `{"": {length, pieces root}}` for `data` (no root when empty).
    fn leaf(data: &[u8]) -> Value {
        let mut props: Vec<(&[u8], Value)> = vec![(b"length", Value::integer(data.len() as i64))];
        if !data.is_empty() {
            props.push((b"pieces root", Value::bytes(root_of(data).0.to_vec())));
        }
        dict(vec![(b"", dict(props))])
    }

    /// A nested tree, keys sorted as bencoding requires.
    enum Node {
        Dir(BTreeMap<Vec<u8>, Node>),
        Leaf(Value),
    }

    fn tree(files: &[File]) -> Value {
        let mut top = BTreeMap::new();
        for f in files {
            let mut dir = &mut top;
            for element in &f.path[..f.path.len() - 1] {
                let node = dir
                    .entry(element.clone())
                    .or_insert_with(|| Node::Dir(BTreeMap::new()));
                dir = match node {
                    Node::Dir(d) => d,
                    Node::Leaf(_) => panic!("test tree: a file is also a directory"),
                };
            }
            dir.insert(f.path[f.path.len() - 1].clone(), Node::Leaf(leaf(&f.data)));
        }
        fn to_value(dir: BTreeMap<Vec<u8>, Node>) -> Value {
            let entries = dir
                .into_iter()
                .map(|(k, node)| match node {
                    Node::Dir(d) => (k, to_value(d)),
                    Node::Leaf(v) => (k, v),
                })
                .collect();
            Value::new(Item::Dict(entries))
        }
        to_value(top)
    }

    /// `piece layers` for the files larger than one piece, keyed by root, sorted.
    fn layers(files: &[File], piece_length: u64) -> Value {
        let per_piece = BlocksPerPiece::for_piece_length(piece_length).unwrap();
        let mut by_root = BTreeMap::new();
        for f in files.iter().filter(|f| f.data.len() as u64 > piece_length) {
            let layer = merkle::piece_layer(&merkle::leaf_hashes(&f.data), per_piece);
            let bytes: Vec<u8> = layer.iter().flat_map(|h| h.0).collect();
            by_root.insert(root_of(&f.data).0.to_vec(), Value::bytes(bytes));
        }
        Value::new(Item::Dict(by_root.into_iter().collect()))
    }

    /// A v2-only torrent of `files` (in tree order) with its piece layers.
    fn v2_torrent(files: &[File], piece_length: u64) -> Vec<u8> {
        let info = v2_info(tree(files), piece_length, vec![]);
        torrent(info, Some(layers(files, piece_length)))
    }

    fn v2_info(tree: Value, piece_length: u64, v1: Vec<(&'static [u8], Value)>) -> Value {
        let mut entries: Vec<(&[u8], Value)> = vec![
            (b"file tree", tree),
            (b"meta version", Value::integer(2)),
            (b"name", Value::bytes(b"test".to_vec())),
            (b"piece length", Value::integer(piece_length as i64)),
        ];
        entries.extend(v1);
        entries.sort_by(|a, b| a.0.cmp(b.0));
        dict(entries)
    }

    fn torrent(info: Value, piece_layers: Option<Value>) -> Vec<u8> {
        let mut entries: Vec<(&[u8], Value)> = vec![(b"info", info)];
        if let Some(layers) = piece_layers {
            entries.push((b"piece layers", layers));
        }
        bencode::encode(&dict(entries))
    }

    fn load(bytes: &[u8]) -> Metainfo {
        Metainfo::from_bytes(bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    fn refuse(bytes: &[u8]) -> MetainfoError {
        match Metainfo::from_bytes(bytes) {
            Ok(m) => panic!("loaded {:?}", m.info.files),
            Err(e) => e,
        }
    }

    /// The raw bytes of the `info` value in a torrent we encoded.
    fn info_bytes(torrent: &[u8]) -> Vec<u8> {
        let decoded = bencode::decode(torrent).unwrap();
        let info = decoded.value.get("info").unwrap();
        torrent[info.span.range()].to_vec()
    }

    #[test]
    fn a_single_file_v2_torrent() {
        // 3 pieces of 32 KiB, the last one short: a piece layer two leaves up.
        let files = [file(&[b"a.bin"], 70_000, 1)];
        let bytes = v2_torrent(&files, 32768);
        let m = load(&bytes);
        assert_eq!(m.version, MetaVersion::V2);
        let v2 = m.v2.as_ref().unwrap();
        let raw_info = info_bytes(&bytes);
        assert_eq!(v2.info_hash.0, Sha256Hash::of(&raw_info).0);
        assert_eq!(m.info_hash, v2.info_hash.truncated());
        assert_ne!(m.info_hash, InfoHash::of(&raw_info), "not the SHA-1");
        assert!(v2.piece_layers_complete);
        let f = &v2.files[0];
        assert_eq!(f.path, ["a.bin"]);
        assert_eq!(f.length, 70_000);
        assert_eq!(f.pieces_root, Some(root_of(&files[0].data)));
        assert_eq!(f.piece_layer.len(), 3);
        let per_piece = BlocksPerPiece::for_piece_length(32768).unwrap();
        assert_eq!(
            f.piece_layer[2],
            merkle::piece_root(&merkle::leaf_hashes(&files[0].data[65536..]), per_piece)
        );
        // The v1-shaped view: one file, no padding after the last, no v1 hashes.
        assert!(!m.info.multi_file && !m.info.hybrid);
        assert_eq!(m.info.name, "test");
        assert_eq!(m.info.files.len(), 1);
        assert_eq!(m.info.files[0].path, ["a.bin"]);
        assert_eq!(m.info.total_length, 70_000);
        assert!(m.info.pieces.is_empty());
        assert_eq!(m.info.num_pieces(), 3);
    }

    #[test]
    fn files_are_piece_aligned_with_padding_entries_between_them() {
        let files = [
            file(&[b"a"], 20_000, 1),
            file(&[b"b"], 0, 2),
            file(&[b"c", b"d"], 5, 3),
            file(&[b"e"], 40_000, 4),
        ];
        let m = load(&v2_torrent(&files, PIECE));
        let layout: Vec<(String, u64, u64, bool)> = m
            .info
            .files
            .iter()
            .map(|f| (f.display_path(), f.length, f.offset, f.padding))
            .collect();
        let row = |p: &str, l, o, pad| (p.to_string(), l, o, pad);
        assert_eq!(
            layout,
            [
                row("a", 20_000, 0, false),
                row(".pad/12768", 12_768, 20_000, true),
                // An empty file holds no bytes: it sits where it falls.
                row("b", 0, 32_768, false),
                row("c/d", 5, 32_768, false),
                row(".pad/16379", 16_379, 32_773, true),
                row("e", 40_000, 49_152, false),
            ]
        );
        assert_eq!(m.info.total_length, 89_152);
        assert_eq!(m.info.num_pieces(), 6);
        assert!(m.info.multi_file);
        let v2 = m.v2.unwrap();
        assert_eq!(v2.files.len(), 4);
        assert_eq!(v2.files[1].pieces_root, None, "an empty file has no root");
        assert!(
            v2.files[2].piece_layer.is_empty(),
            "one piece: its root only"
        );
        assert_eq!(v2.files[3].piece_layer.len(), 3);
        assert!(v2.piece_layers_complete);
        // Padding is never shown to the user as a file.
        assert_eq!(m.info.content_files().count(), 4);
    }

    #[test]
    fn no_padding_follows_the_last_file_with_data() {
        let files = [
            file(&[b"a"], 100, 1),
            file(&[b"b"], 200, 2),
            file(&[b"z"], 0, 3),
        ];
        let m = load(&v2_torrent(&files, PIECE));
        let paths: Vec<String> = m.info.files.iter().map(|f| f.display_path()).collect();
        assert_eq!(paths, ["a", ".pad/16284", "b", "z"]);
        assert_eq!(m.info.total_length, PIECE + 200);
        assert_eq!(m.info.files[3].offset, PIECE + 200);
    }

    #[test]
    fn piece_layers_may_be_absent_and_then_come_later() {
        let files = [file(&[b"big"], 50_000, 1), file(&[b"small"], 100, 2)];
        let m = load(&torrent(v2_info(tree(&files), PIECE, vec![]), None));
        let v2 = m.v2.unwrap();
        assert!(!v2.piece_layers_complete);
        assert!(v2.files.iter().all(|f| f.piece_layer.is_empty()));
        // A torrent whose files all fit in one piece needs none.
        let small = [file(&[b"small"], 100, 2)];
        let m = load(&torrent(v2_info(tree(&small), PIECE, vec![]), None));
        assert!(m.v2.unwrap().piece_layers_complete);
        // A `piece layers` that is not a dictionary counts as absent, as in libtorrent.
        let info = v2_info(tree(&files), PIECE, vec![]);
        let m = load(&torrent(info, Some(Value::integer(3))));
        assert!(!m.v2.unwrap().piece_layers_complete);
    }

    /// A torrent of one 50,000-byte file whose `piece layers` has `entries` instead.
    fn with_layers(entries: Vec<(Vec<u8>, Value)>) -> Vec<u8> {
        let files = [file(&[b"f"], 50_000, 9)];
        torrent(
            v2_info(tree(&files), PIECE, vec![]),
            Some(Value::new(Item::Dict(entries))),
        )
    }

    fn real_layer() -> (Vec<u8>, Vec<u8>) {
        let data = content(50_000, 9);
        let leaves = merkle::leaf_hashes(&data);
        let layer: Vec<u8> = leaves.iter().flat_map(|h| h.0).collect();
        (root_of(&data).0.to_vec(), layer)
    }

    #[test]
    fn a_piece_layer_that_does_not_hash_to_its_root_is_refused_naming_the_file() {
        let (root, mut layer) = real_layer();
        layer[40] ^= 1;
        let e = refuse(&with_layers(vec![(root, Value::bytes(layer))]));
        assert!(
            matches!(&e, MetainfoError::PieceLayerMismatch { path, .. } if path == "f"),
            "{e}"
        );
        assert!(e.to_string().contains("`f`"), "{e}");
    }

    #[test]
    fn piece_layers_of_the_wrong_shape_are_refused() {
        let (root, layer) = real_layer();
        // One hash short of the four pieces.
        let e = refuse(&with_layers(vec![(
            root.clone(),
            Value::bytes(layer[..96].to_vec()),
        )]));
        assert!(
            matches!(
                e,
                MetainfoError::PieceLayerLength {
                    found: 3,
                    expected: 4,
                    ..
                }
            ),
            "{e}"
        );
        let e = refuse(&with_layers(vec![(
            root.clone(),
            Value::bytes(layer[..100].to_vec()),
        )]));
        assert!(
            matches!(e, MetainfoError::PieceLayerNotMultipleOf32 { len: 100, .. }),
            "{e}"
        );
        let e = refuse(&with_layers(vec![(
            root[..31].to_vec(),
            Value::bytes(layer.clone()),
        )]));
        assert!(
            matches!(e, MetainfoError::BadPieceLayerKey { len: 31, .. }),
            "{e}"
        );
        let e = refuse(&with_layers(vec![(root.clone(), Value::integer(1))]));
        assert!(matches!(e, MetainfoError::WrongType { .. }), "{e}");
        let mut other = root.clone();
        other[0] ^= 1;
        let e = refuse(&with_layers(vec![(other, Value::bytes(layer.clone()))]));
        assert!(matches!(e, MetainfoError::UnknownPieceLayer { .. }), "{e}");
        // The same root twice (a duplicate key, tolerated outside `info`).
        let twice = vec![
            (root.clone(), Value::bytes(layer.clone())),
            (root, Value::bytes(layer)),
        ];
        let e = refuse(&with_layers(twice));
        assert!(
            matches!(e, MetainfoError::DuplicatePieceLayer { .. }),
            "{e}"
        );
    }

    #[test]
    fn a_layer_for_a_file_of_one_piece_is_refused() {
        // libtorrent knows only the roots of files larger than a piece.
        let files = [file(&[b"s"], 1000, 1)];
        let root = root_of(&files[0].data).0.to_vec();
        let layer = Value::bytes(root.clone());
        let bytes = torrent(
            v2_info(tree(&files), PIECE, vec![]),
            Some(Value::new(Item::Dict(vec![(root, layer)]))),
        );
        assert!(matches!(
            refuse(&bytes),
            MetainfoError::UnknownPieceLayer { .. }
        ));
    }

    /// A torrent whose only file has the properties `props`.
    fn one_leaf(props: Vec<(&[u8], Value)>) -> Vec<u8> {
        let tree = dict(vec![(b"f", dict(vec![(b"", dict(props))]))]);
        torrent(v2_info(tree, PIECE, vec![]), None)
    }

    #[test]
    fn pieces_roots_must_be_32_non_zero_bytes_on_every_file_with_data() {
        let length = (b"length".as_slice(), Value::integer(100));
        let root = |bytes: Vec<u8>| (b"pieces root".as_slice(), Value::bytes(bytes));
        let e = refuse(&one_leaf(vec![length.clone(), root(vec![1; 31])]));
        assert!(
            matches!(&e, MetainfoError::BadPiecesRoot { path, len: 31, .. } if path == "f"),
            "{e}"
        );
        let e = refuse(&one_leaf(vec![length.clone(), root(vec![0; 32])]));
        assert!(matches!(e, MetainfoError::ZeroPiecesRoot { .. }), "{e}");
        let e = refuse(&one_leaf(vec![length.clone()]));
        assert!(
            matches!(e, MetainfoError::MissingPiecesRoot { length: 100, .. }),
            "{e}"
        );
        let e = refuse(&one_leaf(vec![length, (b"pieces root", Value::integer(5))]));
        assert!(matches!(e, MetainfoError::WrongType { .. }), "{e}");
        let e = refuse(&one_leaf(vec![(b"length", Value::integer(-1))]));
        assert!(
            matches!(e, MetainfoError::BadValue { value: -1, .. }),
            "{e}"
        );
        let e = refuse(&one_leaf(vec![]));
        assert!(matches!(e, MetainfoError::Missing { .. }), "{e}");
    }

    #[test]
    fn an_empty_file_needs_no_root_but_a_torrent_of_nothing_is_refused() {
        let empty = [file(&[b"e"], 0, 0), file(&[b"x"], 10, 1)];
        let m = load(&v2_torrent(&empty, PIECE));
        assert_eq!(m.v2.unwrap().files[0].pieces_root, None);
        assert_eq!(m.info.total_length, 10);
        let nothing = [file(&[b"e"], 0, 0)];
        assert!(matches!(
            refuse(&v2_torrent(&nothing, PIECE)),
            MetainfoError::Empty
        ));
    }

    #[test]
    fn the_padding_attribute_on_a_v2_file_is_refused() {
        let data = content(100, 1);
        let e = refuse(&one_leaf(vec![
            (b"attr", Value::bytes(b"p".to_vec())),
            (b"length", Value::integer(100)),
            (b"pieces root", Value::bytes(root_of(&data).0.to_vec())),
        ]));
        assert!(
            matches!(&e, MetainfoError::PaddingInFileTree { path } if path == "f"),
            "{e}"
        );
    }

    #[test]
    fn traversal_and_absolute_paths_are_sanitised_like_v1_paths() {
        let files = [
            file(&[b"..", b"..", b"passwd"], 10, 1),
            file(&[b"/etc", b"x"], 10, 2),
            file(&[b"a\\..\\b", b"."], 10, 3),
        ];
        let m = load(&v2_torrent(&files, PIECE));
        let paths: Vec<String> =
            m.v2.as_ref()
                .unwrap()
                .files
                .iter()
                .map(V2File::display_path)
                .collect();
        // Tree order is the order of the raw keys: "..", "/etc", "a\..\b".
        assert_eq!(paths, ["_/_/passwd", "etc/x", "a..b/_"]);
        for f in m.info.files.iter().filter(|f| !f.padding) {
            assert!(
                f.path
                    .iter()
                    .all(|e| !e.is_empty() && e != "." && e != ".." && !e.contains(['/', '\\'])),
                "{:?}",
                f.path
            );
        }
    }

    #[test]
    fn colliding_names_are_renamed_as_in_v1() {
        // "/a" and "a" both sanitise to "a".
        let files = [file(&[b"/a"], 10, 1), file(&[b"a"], 10, 2)];
        let m = load(&v2_torrent(&files, PIECE));
        let v2_paths: Vec<String> =
            m.v2.unwrap()
                .files
                .iter()
                .map(V2File::display_path)
                .collect();
        assert_eq!(v2_paths, ["a", "a.1"]);
        let v1_paths: Vec<String> = m.info.content_files().map(|f| f.display_path()).collect();
        assert_eq!(v1_paths, v2_paths);
    }

    #[test]
    fn empty_names_are_refused_and_the_root_cannot_be_a_file() {
        let tree = dict(vec![(b"", leaf(&content(10, 1)))]);
        let e = refuse(&torrent(v2_info(tree, PIECE, vec![]), None));
        assert!(matches!(e, MetainfoError::EmptyFileName { .. }), "{e}");
        // The root itself given properties, as if it were a file.
        let root_file = dict(vec![(b"", dict(vec![(b"length", Value::integer(5))]))]);
        let e = refuse(&torrent(v2_info(root_file, PIECE, vec![]), None));
        assert!(matches!(e, MetainfoError::EmptyFileName { .. }), "{e}");
        // Properties beside other entries make a directory with an empty name in it.
        let mixed = dict(vec![(
            b"d",
            dict(vec![
                (b"", dict(vec![(b"length", Value::integer(0))])),
                (b"x", leaf(&content(10, 1))),
            ]),
        )]);
        let e = refuse(&torrent(v2_info(mixed, PIECE, vec![]), None));
        assert!(matches!(e, MetainfoError::EmptyFileName { .. }), "{e}");
        // A file name that sanitises to nothing is still a name: "_".
        let m = load(&v2_torrent(&[file(&[b"/"], 10, 1)], PIECE));
        assert_eq!(m.v2.unwrap().files[0].path, ["_"]);
    }

    /// `depth` directories named "d", then one file.
    fn deep_tree(depth: usize) -> Value {
        let mut node = dict(vec![(b"f", leaf(&content(10, 1)))]);
        for _ in 0..depth {
            node = dict(vec![(b"d", node)]);
        }
        node
    }

    #[test]
    fn trees_deeper_than_the_limit_are_refused() {
        // The walk itself stops at MAX_TREE_DEPTH, whatever the decoder allowed.
        let mut out = Vec::new();
        let e = walk(&deep_tree(MAX_TREE_DEPTH + 1), &mut Vec::new(), 0, &mut out).unwrap_err();
        assert!(
            matches!(
                e,
                MetainfoError::TreeTooDeep {
                    limit: MAX_TREE_DEPTH,
                    ..
                }
            ),
            "{e}"
        );
        let mut out = Vec::new();
        walk(&deep_tree(MAX_TREE_DEPTH), &mut Vec::new(), 0, &mut out).unwrap();
        assert_eq!(out[0].path.len(), MAX_TREE_DEPTH + 1);
        // From a file, the decoder's nesting limit (also 100, counting the outer
        // dictionaries) refuses such a tree first, as libtorrent's does.
        let e = refuse(&torrent(v2_info(deep_tree(150), PIECE, vec![]), None));
        assert!(matches!(e, MetainfoError::Bencode(_)), "{e}");
        load(&torrent(v2_info(deep_tree(90), PIECE, vec![]), None));
    }

    #[test]
    fn v2_piece_lengths_are_powers_of_two_of_at_least_16_kib() {
        for bad in [8192u64, 49152, 16385] {
            let files = [file(&[b"f"], 10, 1)];
            let e = refuse(&torrent(v2_info(tree(&files), bad, vec![]), None));
            assert!(
                matches!(&e, MetainfoError::BadValue { field, .. } if field == "info.piece length"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn symlinks_hold_no_bytes_and_need_no_root() {
        let link = dict(vec![(
            b"",
            dict(vec![
                (b"attr", Value::bytes(b"lx".to_vec())),
                (b"length", Value::integer(999)),
                (
                    b"symlink path",
                    Value::list(vec![
                        Value::bytes(b"..".to_vec()),
                        Value::bytes(b"t".to_vec()),
                    ]),
                ),
            ]),
        )]);
        let tree = dict(vec![(b"link", link), (b"t", leaf(&content(10, 1)))]);
        let m = load(&torrent(v2_info(tree, PIECE, vec![]), None));
        let v2 = m.v2.unwrap();
        let link = &v2.files[0];
        assert_eq!(link.length, 0);
        assert_eq!(link.pieces_root, None);
        assert_eq!(
            link.symlink.as_deref(),
            Some(&["_".to_string(), "t".into()][..])
        );
        assert!(link.executable);
        assert_eq!(m.info.files[0].symlink, link.symlink);
    }

    #[test]
    fn files_of_2_pow_30_blocks_are_refused() {
        let too_big = MAX_FILE_BLOCKS * LEAF_BLOCK_LEN as u64;
        let e = refuse(&one_leaf(vec![
            (b"length", Value::integer(too_big as i64)),
            (b"pieces root", Value::bytes(vec![1; 32])),
        ]));
        assert!(matches!(e, MetainfoError::FileTooLarge { .. }), "{e}");
    }

    #[test]
    fn an_unusable_name_falls_back_to_the_v2_info_hash() {
        let files = [file(&[b"a"], 10, 1), file(&[b"b"], 10, 2)];
        let mut info = v2_info(tree(&files), PIECE, vec![]);
        if let Item::Dict(entries) = &mut info.item {
            for (key, value) in entries.iter_mut() {
                if key == b"name" {
                    *value = Value::bytes(b"..".to_vec());
                }
            }
        }
        let m = load(&torrent(info, None));
        assert_eq!(m.info.name, m.v2.unwrap().info_hash.to_hex());
    }

    /// A hybrid of `files` whose v1 list has `pads` (offset, length) as padding files.
    fn hybrid(files: &[File], v1_pads: &[(usize, u64)]) -> Vec<u8> {
        let mut list = Vec::new();
        let mut stream = Vec::new();
        for (i, f) in files.iter().enumerate() {
            for &(_, len) in v1_pads.iter().filter(|(before, _)| *before == i) {
                list.push(dict(vec![
                    (b"attr", Value::bytes(b"p".to_vec())),
                    (b"length", Value::integer(len as i64)),
                    (
                        b"path",
                        Value::list(vec![
                            Value::bytes(b".pad".to_vec()),
                            Value::bytes(len.to_string().into_bytes()),
                        ]),
                    ),
                ]));
                stream.extend(std::iter::repeat_n(0u8, len as usize));
            }
            let path = f.path.iter().map(|p| Value::bytes(p.clone())).collect();
            list.push(dict(vec![
                (b"length", Value::integer(f.data.len() as i64)),
                (b"path", Value::list(path)),
            ]));
            stream.extend_from_slice(&f.data);
        }
        let pieces: Vec<u8> = stream.chunks(PIECE as usize).flat_map(sha1).collect();
        let v1 = vec![
            (b"files".as_slice(), Value::list(list)),
            (b"pieces".as_slice(), Value::bytes(pieces)),
        ];
        torrent(v2_info(tree(files), PIECE, v1), Some(layers(files, PIECE)))
    }

    #[test]
    fn a_hybrid_keeps_its_v1_identity_and_gains_the_v2_one() {
        let files = [file(&[b"a"], 20_000, 1), file(&[b"b"], 40_000, 2)];
        let bytes = hybrid(&files, &[(1, 12_768)]);
        let m = load(&bytes);
        assert_eq!(m.version, MetaVersion::Hybrid);
        assert!(m.info.hybrid);
        let raw_info = info_bytes(&bytes);
        assert_eq!(m.info_hash, InfoHash::of(&raw_info));
        let v2 = m.v2.as_ref().unwrap();
        assert_eq!(v2.info_hash.0, Sha256Hash::of(&raw_info).0);
        assert!(v2.piece_layers_complete);
        assert_eq!(m.info.pieces.len(), 5);
        assert_eq!(m.info.files.len(), 3);
    }

    #[test]
    fn a_hybrid_whose_halves_disagree_is_refused() {
        let files = [file(&[b"a"], 20_000, 1), file(&[b"b"], 40_000, 2)];
        // No padding: `b` starts in the middle of a piece.
        let e = refuse(&hybrid(&files, &[]));
        assert!(e.to_string().contains("not on a piece boundary"), "{e}");
        // A whole piece too much padding: aligned, but not where v2 puts `b`.
        let e = refuse(&hybrid(&files, &[(1, 12_768 + PIECE)]));
        assert!(e.to_string().contains("in the v2 layout"), "{e}");
        // The halves name different files.
        let mut info = v2_info(
            tree(&[file(&[b"z"], 20_000, 1), file(&[b"b"], 40_000, 2)]),
            PIECE,
            vec![],
        );
        let good = bencode::decode(&hybrid(&files, &[(1, 12_768)]))
            .unwrap()
            .value;
        let good_info = good.get("info").unwrap();
        if let Item::Dict(entries) = &mut info.item {
            for key in ["files", "pieces"] {
                entries.push((key.as_bytes().to_vec(), good_info.get(key).unwrap().clone()));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let e = refuse(&torrent(info, None));
        assert!(matches!(e, MetainfoError::HybridMismatch(_)), "{e}");
    }

    #[test]
    fn unsorted_keys_in_a_v2_file_tree_are_refused() {
        // `encode` sorts keys, so the disorder is made in the bytes: "a" renamed "c".
        let files = [file(&[b"a"], 10, 1), file(&[b"b"], 10, 2)];
        let mut bytes = v2_torrent(&files, PIECE);
        let at = bytes.windows(7).position(|w| w == b"1:ad0:d").unwrap();
        bytes[at + 2] = b'c';
        let e = refuse(&bytes);
        assert!(matches!(e, MetainfoError::NotCanonical(_)), "{e}");
    }
}
