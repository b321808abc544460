//! BitTorrent v2 (BEP 52) with libtorrent, both ways: a v2-only multi-file torrent made by
//! libtorrent 2.0, downloaded by peerwire from a libtorrent seeder (every piece checked against
//! its Merkle root), and downloaded by a libtorrent leecher from `peerwire seed`.

pub mod common;

use common::{LibtorrentPeer, download_from, need_libtorrent_python, peerwire, start_seed};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A file of the content: its path under the torrent's directory's parent, and its bytes.
type Written = (PathBuf, Vec<u8>);

/// Three files of awkward sizes in `dir/multi` (one smaller than a piece, one of several
/// pieces, one in a subdirectory), and a v2-only torrent of them made by libtorrent with
/// 64 KiB pieces. `None` without libtorrent (skipped loudly).
fn libtorrent_v2_torrent(dir: &Path) -> Option<(PathBuf, Vec<Written>)> {
    let python = need_libtorrent_python()?;
    let files = [
        ("multi/a.bin", 100_000usize),
        ("multi/c.bin", 40_000),
        ("multi/sub/b.bin", 1_000_000),
    ];
    let content = dir.join("content");
    let mut written = Vec::new();
    for (i, (name, len)) in files.iter().enumerate() {
        let path = content.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = common::pseudo_random(*len, 52 + i as u64);
        std::fs::write(&path, &bytes).unwrap();
        written.push((PathBuf::from(name), bytes));
    }
    let torrent = dir.join("v2.torrent");
    let script = r#"
import sys, libtorrent as lt
content, out = sys.argv[1], sys.argv[2]
fs = lt.file_storage()
lt.add_files(fs, content + "/multi")
ct = lt.create_torrent(fs, 65536, flags=lt.create_torrent.v2_only)
lt.set_piece_hashes(ct, content)
open(out, "wb").write(lt.bencode(ct.generate()))
"#;
    let made = common::run_with_deadline(
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(&content)
            .arg(&torrent),
        Duration::from_secs(60),
    );
    assert!(made.status.success(), "{made:?}");
    Some((torrent, written))
}

fn assert_files(root: &Path, files: &[Written], what: &str) {
    for (name, bytes) in files {
        common::assert_bytes(
            &root.join(name),
            bytes,
            &format!("{what}: {}", name.display()),
        );
    }
}

#[test]
fn peerwire_downloads_a_v2_only_torrent_from_a_libtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let Some((torrent, files)) = libtorrent_v2_torrent(dir.path()) else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(&torrent, &dir.path().join("content"), true) else {
        return;
    };
    let out = dir.path().join("out");
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.port));
    let run = download_from(&[peer], &torrent, &out)
        .args(&["--no-dht", "--transport", "tcp"])
        .run();
    run.assert_success();
    assert_files(&out, &files, "the v2 download from libtorrent");
    // 2 + 1 + 16 pieces: each file starts a piece of its own (BEP 52).
    assert!(run.stderr.contains("done: 19 pieces"), "{}", run.stderr);
}

#[test]
fn a_libtorrent_leecher_downloads_a_v2_only_torrent_from_peerwire() {
    let dir = tempfile::tempdir().unwrap();
    let Some((torrent, files)) = libtorrent_v2_torrent(dir.path()) else {
        return;
    };
    let (_seed, port) = start_seed(
        peerwire(),
        &torrent,
        &dir.path().join("content"),
        &["--no-dht", "--transport", "tcp"],
    );
    let save = dir.path().join("leecher");
    std::fs::create_dir_all(&save).unwrap();
    let Some(mut leecher) = LibtorrentPeer::start(&torrent, &save, false) else {
        return;
    };
    leecher.send(&format!("connect 127.0.0.1:{port}"));
    leecher.wait_for("finished", Duration::from_secs(60));
    assert_files(&save, &files, "the v2 download by libtorrent");
}
