//! What tests download and compare: pseudo-random content, torrents of it made with
//! `peerwire create`, the third-party fixtures (libtorrent's test torrents, bencode vectors),
//! and byte-for-byte comparison of the result.

use super::{peerwire, run_ok, skip};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Deterministic pseudo-random bytes (xorshift), fast enough for tens of MiB.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Each of `names` under `actual` holds the same bytes as under `expected` (`who` says which
/// client wrote `actual`, for the message).
pub fn assert_same_files<'a>(
    expected: &Path,
    actual: &Path,
    names: impl IntoIterator<Item = &'a str>,
    who: &str,
) {
    for name in names {
        let (a, b) = (
            std::fs::read(expected.join(name)).unwrap(),
            std::fs::read(actual.join(name)).unwrap_or_default(),
        );
        assert!(
            a == b,
            "{who}: {name} differs ({} vs {} bytes)",
            a.len(),
            b.len()
        );
    }
}

/// The fixtures directory: `$PEERWIRE_FIXTURES`, else the one kept next to the repository.
pub fn fixtures_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PEERWIRE_FIXTURES") {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Some(dir)
        } else {
            skip(&format!(
                "PEERWIRE_FIXTURES={} is not a directory",
                dir.display()
            ))
        };
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if beside.is_dir() {
        Some(beside)
    } else {
        skip("no fixtures: set PEERWIRE_FIXTURES to the fixtures directory")
    }
}

/// `peerwire create CONTENT -o TORRENT EXTRA...`, failing the test if it fails.
pub fn create_torrent(content: &Path, torrent: &Path, extra: &[&str]) {
    let mut command = peerwire();
    command
        .arg("create")
        .arg(content)
        .arg("-o")
        .arg(torrent)
        .args(extra);
    run_ok(&mut command, Duration::from_secs(60));
}

/// A single-file torrent of `size` pseudo-random bytes in `dir`: (the file, the .torrent).
pub fn small_torrent(dir: &Path, size: usize, piece_length: u32) -> (PathBuf, PathBuf) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = seed_dir.join("lesson.bin");
    std::fs::write(&content, pseudo_random(size, 7)).unwrap();
    let torrent = dir.join("lesson.torrent");
    let piece_length = piece_length.to_string();
    create_torrent(&content, &torrent, &["--piece-length", &piece_length]);
    (content, torrent)
}

/// Every byte of `text` outside the unreserved set as `%XX` (a URL inside a magnet link).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The file at `path` holds exactly `expected`; otherwise the test fails saying where the
/// bytes first differ (`what` names the file for the message).
pub fn assert_bytes(path: &Path, expected: &[u8], what: &str) {
    let written = std::fs::read(path).unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display()));
    if written != expected {
        let first = written.iter().zip(expected).position(|(a, b)| a != b);
        let first = first.unwrap_or(written.len().min(expected.len()));
        panic!(
            "{what} ({}) differs: {} bytes, {} expected, first difference at byte {first}",
            path.display(),
            written.len(),
            expected.len()
        );
    }
}
