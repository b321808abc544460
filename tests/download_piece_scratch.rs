//! `download_piece` fetches its piece into a scratch directory (`peerwire-piece-<hash>-<pid>`
//! in the temp dir) and leaves nothing there, however it ends: stopped by Ctrl-C midway, or
//! failed. Each test gives the command a temp dir of its own (`TMPDIR`) and looks in it.

pub mod common;

use common::{StderrLines, free_port, peerwire, run_with_deadline};
use std::path::Path;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// The scratch directories left in `tmp`.
fn scratch_dirs(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("peerwire-piece-"))
        .collect()
}

#[test]
fn ctrl_c_midway_leaves_no_scratch_directory() {
    let dir = tempfile::tempdir().unwrap();
    // Four pieces of 256 KiB from a seed that uploads 16 KiB/s: one piece takes 16 s.
    let (content, torrent) = common::small_torrent(dir.path(), 1024 * 1024, 262_144);
    let (_seed, seed_port) =
        common::start_seed(peerwire(), &torrent, &content, &["--max-upload-rate", "16"]);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = dir.path().join("piece.bin");
    let mut command = peerwire();
    command
        .env("TMPDIR", &tmp)
        .args(["-v", "download_piece", "-o"])
        .arg(&out)
        .arg(&torrent)
        .arg("2")
        .args(["--peer", &format!("127.0.0.1:{seed_port}")])
        .args(["--port", &free_port().to_string()]);
    let mut piece = StderrLines::spawn(&mut command);
    piece.wait_for("connected, peer id", DEADLINE);
    assert_eq!(
        scratch_dirs(&tmp).len(),
        1,
        "the scratch directory is in use"
    );
    let stderr = piece.stop("-INT", DEADLINE).join("\n");
    assert!(
        stderr.contains("error: piece 2 was not fetched: interrupted; nothing was written"),
        "{stderr}"
    );
    assert_eq!(scratch_dirs(&tmp), Vec::<String>::new(), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_failed_download_piece_leaves_no_scratch_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent) = common::small_torrent(dir.path(), 100_000, 32_768);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = dir.path().join("piece.bin");
    // A peer where nobody listens, and a short patience: the session gives up.
    let nobody = format!("127.0.0.1:{}", free_port());
    let output = run_with_deadline(
        peerwire()
            .env("TMPDIR", &tmp)
            .args(["download_piece", "-o"])
            .arg(&out)
            .arg(&torrent)
            .args(["1", "--peer", &nobody, "--give-up-after", "1"])
            .args(["--port", &free_port().to_string()]),
        DEADLINE,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("error: piece 1 was not fetched: no data arrived for 1s"),
        "{stderr}"
    );
    assert_eq!(scratch_dirs(&tmp), Vec::<String>::new(), "{stderr}");
    assert!(!out.exists());
}
