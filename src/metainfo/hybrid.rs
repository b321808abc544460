//! Hybrid v1 + v2 torrents (BEP 52 "Upgrade Path", BEP 47 padding) — walkthrough §2.
//!
//! A hybrid torrent carries two descriptions of the same content in one `info` dictionary:
//! the v1 `files` list (with padding files so that every file starts on a piece boundary) and
//! the v2 `file tree` (`v2.rs`). A v1 client uses the first, a v2 client the second, and both
//! swarms share pieces, so the two must agree, as BEP 52 requires ("they must validate that
//! the content (file names, order, piece alignment) is identical") and libtorrent checks:
//! otherwise a v1 and a v2 client would download different things under one torrent.
//!
//! ```text
//!   v1  files: [a.txt 100] [pad 16284] [b/c.bin 5000]
//!   v2  file tree: { "a.txt": {"": {length 100}}, "b": { "c.bin": {"": {length 5000}} } }
//!   v2  layout:    a.txt at 0, (gap), b/c.bin at 16384        (piece length 16384)
//! ```
//!
//! Compared: the files with data or without (padding aside), in order, by sanitised path and
//! length; then each file with data must start at the same byte of the torrent in both, which
//! is where BEP 52's alignment puts it ([`piece_aligned_files`]). The padding files themselves
//! are not compared: their names vary between creators, and a padding file after the last file
//! changes no file's place.

use super::{FileEntry, MetainfoError, V2Info, piece_aligned_files};

/// Checks that the v1 files (`v1`, padding included, before collisions are renamed) describe
/// the same files, in the same order, at the same offsets, as the v2 file tree.
pub(super) fn check_consistency(
    v1: &[FileEntry],
    v2: &V2Info,
    piece_length: u64,
) -> Result<(), MetainfoError> {
    let layout = piece_aligned_files(&v2.files, piece_length)?;
    let v1_files: Vec<&FileEntry> = v1.iter().filter(|f| !f.padding).collect();
    let v2_files: Vec<&FileEntry> = layout.iter().filter(|f| !f.padding).collect();
    // A single-file torrent's tree is `{name: {"": ...}}` and its v1 path is `[name]`; a
    // multi-file tree is rooted inside the torrent's directory, like the v1 paths.
    let same = |a: &&FileEntry, b: &&FileEntry| a.path == b.path && a.length == b.length;
    if v1_files.len() != v2_files.len() || !v1_files.iter().zip(&v2_files).all(|(a, b)| same(a, b))
    {
        let describe = |list: &[&FileEntry]| {
            list.iter()
                .map(|f| format!("{} ({})", f.display_path(), f.length))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(mismatch(&format!(
            "v1 has [{}], v2 has [{}]",
            describe(&v1_files),
            describe(&v2_files)
        )));
    }
    for (one, two) in v1_files.iter().zip(&v2_files) {
        if one.length == 0 || one.offset == two.offset {
            continue;
        }
        let path = one.display_path();
        let problem = match one.offset % piece_length {
            0 => format!(
                "`{path}` starts at byte {} in the v1 list but at byte {} in the v2 layout",
                one.offset, two.offset
            ),
            _ => format!(
                "`{path}` starts at byte {} of the torrent, not on a piece boundary",
                one.offset
            ),
        };
        return Err(mismatch(&problem));
    }
    Ok(())
}

fn mismatch(what: &str) -> MetainfoError {
    MetainfoError::HybridMismatch(what.to_string())
}
