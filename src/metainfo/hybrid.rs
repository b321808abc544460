//! Hybrid v1 + v2 torrents (BEP 52 "upgrade path", BEP 47 padding) — walkthrough §2.
//!
//! A hybrid torrent carries two descriptions of the same content in one `info` dictionary:
//! the v1 `files` list (with padding files so that every file starts on a piece boundary) and
//! the v2 `file tree` (a nested dictionary, one level per directory, each file a leaf
//! `{"": {length, pieces root}}`). peerwire speaks v1, so it uses the v1 half, but it first
//! checks that both halves describe the same files, as libtorrent does: otherwise a v1 and a
//! v2 client would download different things under one torrent.
//!
//! ```text
//!   v1  files: [a.txt 100] [pad 16284] [b/c.bin 5000]
//!   v2  file tree: { "a.txt": {"": {length 100}}, "b": { "c.bin": {"": {length 5000}} } }
//! ```

use super::path::sanitize_element;
use super::{FileEntry, MetainfoError};
use crate::bencode::Value;

/// One file as the v2 tree describes it: sanitised path elements and length.
type TreeFile = (Vec<String>, u64);

/// Checks that the v2 `file tree` lists the same files, in the same order and with the same
/// lengths, as the v1 list (padding files aside), and that each v1 file with data starts on
/// a piece boundary, as BEP 47 requires of hybrids.
pub(super) fn check_consistency(
    info: &Value,
    files: &[FileEntry],
    piece_length: u64,
) -> Result<(), MetainfoError> {
    let tree = info
        .get("file tree")
        .ok_or_else(|| mismatch("`meta version` 2 but no `file tree`"))?;
    let mut tree_files = Vec::new();
    flatten(tree, &mut Vec::new(), &mut tree_files)?;
    let v1_files: Vec<TreeFile> = files
        .iter()
        .filter(|f| !f.padding)
        .map(|f| (f.path.clone(), f.length))
        .collect();
    // A single-file torrent's tree is `{name: {"": ...}}` and its v1 path is `[name]`; a
    // multi-file tree is rooted inside the torrent's directory, like the v1 paths.
    if v1_files != tree_files {
        let describe = |list: &[TreeFile]| {
            list.iter()
                .map(|(p, l)| format!("{} ({l})", p.join("/")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(mismatch(&format!(
            "v1 has [{}], v2 has [{}]",
            describe(&v1_files),
            describe(&tree_files)
        )));
    }
    for file in files.iter().filter(|f| !f.padding && f.length > 0) {
        if file.offset % piece_length != 0 {
            let path = file.display_path();
            return Err(mismatch(&format!(
                "`{path}` starts at byte {} of the torrent, not on a piece boundary",
                file.offset
            )));
        }
    }
    Ok(())
}

/// Walks the nested `file tree`, collecting each leaf's path and length in order.
/// Recursion depth is bounded by the bencode decoder's nesting limit.
fn flatten(
    node: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<TreeFile>,
) -> Result<(), MetainfoError> {
    let entries = node.as_dict().ok_or_else(|| {
        mismatch(&format!(
            "`file tree` entry at byte {} is not a dictionary",
            node.span.start
        ))
    })?;
    for (name, child) in entries {
        if name.is_empty() {
            return Err(mismatch(&format!(
                "empty file name in `file tree` at byte {}",
                child.span.start
            )));
        }
        path.push(sanitize_element(name));
        match child.get("") {
            Some(leaf) if child.as_dict().is_some_and(|d| d.len() == 1) => {
                out.push((path.clone(), leaf_length(leaf)?))
            }
            _ => flatten(child, path, out)?,
        }
        path.pop();
    }
    Ok(())
}

fn leaf_length(leaf: &Value) -> Result<u64, MetainfoError> {
    leaf.get("length")
        .and_then(Value::as_integer)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            mismatch(&format!(
                "`file tree` leaf at byte {} has no valid `length`",
                leaf.span.start
            ))
        })
}

fn mismatch(what: &str) -> MetainfoError {
    MetainfoError::HybridMismatch(what.to_string())
}
