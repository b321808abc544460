//! The life of a seeder (walkthrough §10): `download --seed` tells the tracker
//! `completed` when the last piece verifies and keeps serving; Ctrl-C then sends `stopped`;
//! `--seed-ratio` ends seeding by itself once enough was uploaded.

pub mod common;

use common::{Killed, free_port, local_tracker, peerwire, wait_with_deadline};
use peerwire::metainfo::Metainfo;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it holds, or fails the test after `deadline`.
fn wait_until(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < until, "{what}: not within {deadline:?}");
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
}

fn spawn(args: &[&str], paths: &[&Path]) -> Child {
    let mut command = peerwire();
    command.env("RUST_LOG", "peerwire=info").args(args);
    for path in paths {
        command.arg(path);
    }
    command
        .stderr(Stdio::piped())
        .spawn()
        .expect("start peerwire")
}

#[test]
fn download_seed_announces_completed_then_stopped_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::pseudo_random(3 * 1024 * 1024 + 5, 21);
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &data).unwrap();
    let tracker = local_tracker(Duration::from_secs(60));
    let torrent = dir.path().join("data.torrent");
    let url = tracker.announce_url().unwrap();
    common::create_torrent(&file, &torrent, &["--piece-length", "65536", "-t", &url]);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let seeders = || {
        tracker
            .peers(info_hash)
            .iter()
            .filter(|p| p.left == 0)
            .count()
    };
    let _seed = Killed(spawn(&["seed", "--port", "0"], &[&torrent, &file]));
    wait_until("the seeder announced", Duration::from_secs(30), || {
        seeders() == 1
    });
    let out = dir.path().join("out.bin");
    let mut leecher = spawn(
        &["download", "--seed", "--port", "0", "-o"],
        &[&out, &torrent],
    );
    wait_until(
        "the leecher announced `completed`",
        Duration::from_secs(60),
        || seeders() == 2,
    );
    assert!(
        leecher.try_wait().unwrap().is_none(),
        "the leecher stopped instead of seeding"
    );
    assert!(
        std::fs::read(&out).unwrap() == data,
        "the leecher's file differs"
    );
    let pid = leecher.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
    assert!(kill.unwrap().success());
    let output = wait_with_deadline(leecher, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Ctrl-C while seeding is a clean end:\n{stderr}"
    );
    assert!(stderr.contains("done: "), "no summary:\n{stderr}");
    wait_until(
        "the leecher announced `stopped`",
        Duration::from_secs(10),
        || tracker.peers(info_hash).len() == 1,
    );
}

#[test]
fn seed_ratio_ends_seeding_once_enough_was_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::pseudo_random(2 * 1024 * 1024 - 3, 22);
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &data).unwrap();
    let torrent = dir.path().join("data.torrent"); // no tracker: peers are given with --peer
    common::create_torrent(&file, &torrent, &["--piece-length", "65536"]);
    let (seed_port, first_port) = (free_port(), free_port());
    let seeder = Killed(spawn(
        &["seed", "--port", &seed_port.to_string()],
        &[&torrent, &file],
    ));
    common::wait_for_tcp(seed_port, Duration::from_secs(30), "the seeder");
    let first_out = dir.path().join("first.bin");
    let seed_addr = format!("127.0.0.1:{seed_port}");
    let first_port = first_port.to_string();
    let first = spawn(
        &[
            "download",
            "--seed",
            "--seed-ratio",
            "1",
            "--peer",
            &seed_addr,
            "--port",
            &first_port,
            "-o",
        ],
        &[&first_out, &torrent],
    );
    wait_until(
        "the first leecher completed",
        Duration::from_secs(60),
        || std::fs::read(&first_out).is_ok_and(|d| d == data),
    );
    drop(seeder); // from now on only the first leecher has the data
    let second_out = dir.path().join("second.bin");
    let first_addr = format!("127.0.0.1:{first_port}");
    let mut second = peerwire();
    second
        .args([
            "download",
            "--port",
            "0",
            "--give-up-after",
            "60",
            "--peer",
            &first_addr,
            "-o",
        ])
        .arg(&second_out)
        .arg(&torrent);
    common::run_ok(&mut second, Duration::from_secs(90));
    assert!(
        std::fs::read(&second_out).unwrap() == data,
        "the second leecher's file differs"
    );
    let output = wait_with_deadline(first, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("done: "))
        .expect("a summary");
    let uploaded: u64 = summary
        .split(" bytes uploaded")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no upload figure in {summary}"));
    assert!(uploaded >= data.len() as u64, "{summary}");
}

#[test]
fn a_seed_under_debug_single_peer_still_listens_for_its_one_peer() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::pseudo_random(300_000, 23);
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &data).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&file, &torrent, &["--piece-length", "65536"]);
    let seed_port = free_port();
    let _seeder = Killed(spawn(
        &[
            "seed",
            "--debug-single-peer",
            "--port",
            &seed_port.to_string(),
        ],
        &[&torrent, &file],
    ));
    common::wait_for_tcp(seed_port, Duration::from_secs(30), "the debug seeder");
    let out = dir.path().join("out.bin");
    let mut leecher = peerwire();
    leecher
        .args(["download", "--port", "0", "--give-up-after", "30", "--peer"])
        .arg(format!("127.0.0.1:{seed_port}"))
        .arg("-o")
        .arg(&out)
        .arg(&torrent);
    common::run_ok(&mut leecher, Duration::from_secs(60));
    assert!(std::fs::read(&out).unwrap() == data, "the file differs");
}
