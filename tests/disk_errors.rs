//! Errors in the right tier: when *our* disk fails to read, the download (or the seed) stops
//! with one `error:` naming the file, and no peer is blamed for it — walkthrough §9 [W9.3].
//!
//! Two reads that really fail, without root: a download whose output file is a symbolic link
//! to `/dev/null` (every write is taken, every read finds nothing: the hash check cannot read
//! the piece back), and a seed whose file is truncated behind its back (the block a peer asks
//! for is no longer there). Before the fix the first struck and banned the honest sender of
//! every piece, and the second dropped the leecher as if it had asked for something wrong.

pub mod common;

use common::{Script, ScriptedPeer, peerwire, pseudo_random, run_with_deadline};
use peerwire::metainfo::Metainfo;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

const PIECE: u64 = 65_536;

/// A 16-piece single-file torrent in a temp dir: (dir, data file, torrent, bytes).
fn content() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    Arc<Vec<u8>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Arc::new(pseudo_random(16 * PIECE as usize - 300, 77));
    let data = dir.path().join("data.bin");
    std::fs::write(&data, &*bytes).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&data, &torrent, &["--piece-length", &PIECE.to_string()]);
    (dir, data, torrent, bytes)
}

#[test]
fn a_piece_that_cannot_be_read_back_stops_the_download_and_blames_no_peer() {
    let (dir, _, torrent, bytes) = content();
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let honest = ScriptedPeer::start(info_hash, bytes, PIECE, Script::Paced);
    let out = dir.path().join("out.bin");
    std::os::unix::fs::symlink("/dev/null", &out).unwrap();
    let mut download = peerwire();
    download
        .env("RUST_LOG", "peerwire=info")
        .args(["download", "--port", "0", "--give-up-after", "30", "-o"])
        .arg(&out)
        .arg(&torrent)
        .args(["--peer", &honest.addr.to_string()]);
    let result = run_with_deadline(&mut download, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        !result.status.success(),
        "a download into /dev/null succeeded:\n{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    assert!(
        errors[0].contains("the download stopped") && stderr.contains("cannot read"),
        "the error does not say the disk could not be read:\n{stderr}"
    );
    for blame in ["failed its hash check", "banned", "strike"] {
        assert!(
            !stderr.contains(blame),
            "a peer was blamed ({blame}):\n{stderr}"
        );
    }
}

#[test]
fn a_block_that_cannot_be_read_for_upload_stops_the_seed_not_the_peer() {
    let (dir, data, torrent, _) = content();
    let port = common::free_port();
    let seed = peerwire()
        .env("RUST_LOG", "peerwire=info")
        .arg("seed")
        .arg(&torrent)
        .arg(&data)
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start peerwire seed");
    common::wait_for_tcp(port, Duration::from_secs(30), "peerwire seed");
    // The seed has verified its data and keeps the file open: now the bytes disappear.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut download = peerwire();
    download
        .args(["download", "--port", "0", "--give-up-after", "10", "-o"])
        .arg(dir.path().join("out.bin"))
        .arg(&torrent)
        .args(["--peer", &format!("127.0.0.1:{port}")]);
    let _ = run_with_deadline(&mut download, Duration::from_secs(60));
    let seed = common::wait_with_deadline(seed, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&seed.stderr);
    assert!(
        !seed.status.success(),
        "the seed went on without its data:\n{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    assert!(
        stderr.contains("cannot read") && stderr.contains("data.bin"),
        "the error does not name the file that could not be read:\n{stderr}"
    );
    assert!(
        !stderr.contains("bad request"),
        "the leecher was blamed for our disk:\n{stderr}"
    );
}
