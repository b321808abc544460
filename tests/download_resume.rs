//! Resume: a download killed (SIGKILL) at about half and restarted fetches only what was not
//! yet on disk, and ends byte-identical.

pub mod common;

use common::{Script, ScriptedPeer, download_from, peerwire, run_with_deadline};
use peerwire::metainfo::Metainfo;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PIECE: u64 = 262_144;

/// The `N bytes downloaded this run` figure of the summary line.
fn downloaded_this_run(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("done: "))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    let before = line.split(" bytes downloaded this run").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_killed_download_resumes_and_fetches_only_the_missing_half() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Arc::new(common::pseudo_random(40 * PIECE as usize - 1000, 9)); // 40 pieces
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &*bytes).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&file, &torrent, &["--piece-length", &PIECE.to_string()]);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let out = dir.path().join("out.bin");

    // First run: the only peer has the first 20 pieces. Once they are on disk, SIGKILL.
    let half = ScriptedPeer::start(
        info_hash,
        Arc::clone(&bytes),
        PIECE,
        Script::OnlyFirstPieces(20),
    );
    let mut first = common::Killed(
        peerwire()
            .arg("-q")
            .arg("download")
            .arg("-o")
            .arg(&out)
            .arg(&torrent)
            .args(["--peer", &half.addr.to_string()])
            .spawn()
            .unwrap(),
    );
    let half_bytes = 20 * PIECE as usize;
    let until = Instant::now() + Duration::from_secs(60);
    while std::fs::read(&out).map_or(true, |d| {
        d.len() < half_bytes || d[..half_bytes] != bytes[..half_bytes]
    }) {
        assert!(Instant::now() < until, "the first half never arrived");
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
    first.0.kill().unwrap(); // SIGKILL: no chance to clean up
    first.0.wait().unwrap();

    // Second run, from a peer with everything: only the second half is fetched.
    let full = ScriptedPeer::start(info_hash, Arc::clone(&bytes), PIECE, Script::Honest);
    let stderr = download_from(&[full.addr], &torrent, &out)
        .expect_bytes(&bytes)
        .stderr;
    assert_eq!(
        downloaded_this_run(&stderr),
        bytes.len() as u64 - half_bytes as u64,
        "{stderr}"
    );
    assert!(stderr.contains("(20 already on disk)"), "{stderr}");
}

#[test]
fn a_complete_download_is_recognised_without_any_peer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    std::fs::write(&file, common::pseudo_random(3 * PIECE as usize, 5)).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&file, &torrent, &[]);
    let result = run_with_deadline(
        peerwire()
            .arg("download")
            .arg("-o")
            .arg(&file)
            .arg(&torrent),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert_eq!(downloaded_this_run(&stderr), 0);
}

#[test]
fn ctrl_c_stops_cleanly_and_tells_the_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Arc::new(common::pseudo_random(10 * PIECE as usize, 11));
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &*bytes).unwrap();
    let tracker = common::local_tracker(Duration::from_secs(60));
    let torrent = dir.path().join("data.torrent");
    let url = tracker.announce_url().unwrap();
    common::create_torrent(
        &file,
        &torrent,
        &["--piece-length", &PIECE.to_string(), "-t", &url],
    );
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let partial = ScriptedPeer::start(
        info_hash,
        Arc::clone(&bytes),
        PIECE,
        Script::OnlyFirstPieces(3),
    );
    let port = common::free_port().to_string();
    let out = dir.path().join("out.bin");
    let mut download = peerwire();
    download
        .arg("download")
        .arg("-o")
        .arg(&out)
        .arg(&torrent)
        .args(["--port", &port, "--peer", &partial.addr.to_string()]);
    let child = download
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let ours = |t: &peerwire::tracker_server::RunningTracker| {
        t.peers(info_hash)
            .iter()
            .any(|p| p.addr.port().to_string() == port)
    };
    let until = Instant::now() + Duration::from_secs(30);
    while !ours(&tracker)
        || partial
            .blocks_served
            .load(std::sync::atomic::Ordering::Relaxed)
            < 3 * 16
    {
        assert!(
            Instant::now() < until,
            "the download never announced itself or got its first pieces"
        );
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let result = common::wait_with_deadline(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    // The third piece may still be in its hash check when the signal lands: 0 to 3 are fine.
    let kept = stderr
        .split("interrupted: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no `interrupted:` message:\n{stderr}"));
    assert!(kept <= 3, "{stderr}");
    assert!(
        stderr.contains("of 10 pieces verified and kept on disk"),
        "{stderr}"
    );
    assert!(!ours(&tracker), "the tracker did not hear `stopped`");
    tracker.stop();
}
