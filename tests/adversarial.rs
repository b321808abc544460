//! More hostile peers, beyond `download_hostile_peers.rs` and `seed_hostile.rs`: a peer that
//! only sends keep-alives, a peer that claims every piece and serves nothing, and a flood of
//! 500 connections against a seeder's listener. Each is dropped (or refused) with a log line
//! naming the reason, and honest peers are served.

pub mod common;

use common::{Killed, Script, ScriptedPeer, peerwire, pseudo_random, run_ok};
use peerwire::metainfo::Metainfo;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PIECE: u64 = 65_536;

struct Data {
    dir: tempfile::TempDir,
    bytes: Arc<Vec<u8>>,
    file: PathBuf,
    torrent: PathBuf,
    metainfo: Metainfo,
}

impl Data {
    /// A scripted peer that has this data and follows `script`.
    fn peer(&self, script: Script) -> ScriptedPeer {
        ScriptedPeer::start(
            self.metainfo.info_hash,
            Arc::clone(&self.bytes),
            PIECE,
            script,
        )
    }
}

fn data(pieces: usize) -> Data {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Arc::new(pseudo_random(pieces * PIECE as usize - 5, 90));
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &*bytes).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&file, &torrent, &["--piece-length", "65536"]);
    let metainfo = Metainfo::from_file(&torrent).unwrap();
    Data {
        dir,
        bytes,
        file,
        torrent,
        metainfo,
    }
}

/// Polls a log file until a line contains `needle` (or fails after `deadline`).
fn wait_for_line(log: &Path, needle: &str, deadline: Duration) -> String {
    let until = Instant::now() + deadline;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < until,
            "no {needle:?} within {deadline:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
}

/// `peerwire download --seed` from `peers`, logging to a file; it keeps running.
fn start_download(d: &Data, peers: &[&ScriptedPeer], timeout: u64) -> (Killed, PathBuf) {
    let log = d.dir.path().join("download.log");
    let mut command = peerwire();
    command
        .env("RUST_LOG", "peerwire=info")
        .arg("download")
        .arg("-o")
        .arg(d.dir.path().join("out.bin"))
        .arg(&d.torrent)
        .args([
            "--seed",
            "--port",
            "0",
            "--peer-timeout",
            &timeout.to_string(),
        ]);
    for peer in peers {
        command.args(["--peer", &peer.addr.to_string()]);
    }
    let child = command
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    (Killed(child), log)
}

#[test]
fn a_peer_that_only_sends_keep_alives_is_dropped() {
    let d = data(16);
    let chatter = d.peer(Script::KeepAlivesForever);
    let honest = d.peer(Script::Honest);
    let (_download, log) = start_download(&d, &[&chatter, &honest], 3);
    wait_for_line(&log, "download complete", Duration::from_secs(60));
    let dropped = format!(
        "{}: disconnected: neither side was interested",
        chatter.addr
    );
    wait_for_line(&log, &dropped, Duration::from_secs(30));
    assert!(std::fs::read(d.dir.path().join("out.bin")).unwrap() == *d.bytes);
}

#[test]
fn a_peer_that_claims_everything_and_serves_nothing_is_dropped() {
    // 640 blocks at one per 10 ms from the honest peer: over 6 s, well past the 2 s after which
    // a peer holding our requests without delivering counts as snubbing us.
    let d = data(160);
    let hoarder = d.peer(Script::Hoarder);
    let honest = d.peer(Script::Paced);
    let (_download, log) = start_download(&d, &[&hoarder, &honest], 4);
    let dropped = format!("{}: disconnected: no block for 2s", hoarder.addr);
    wait_for_line(&log, &dropped, Duration::from_secs(60));
    wait_for_line(&log, "download complete", Duration::from_secs(60));
    assert!(std::fs::read(d.dir.path().join("out.bin")).unwrap() == *d.bytes);
}

/// Peak resident memory of a process, from /proc.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_flood_of_500_connections_against_the_listener() {
    let d = data(32);
    let log = d.dir.path().join("seed.log");
    let port = common::free_port();
    let seeder = peerwire()
        .env("RUST_LOG", "peerwire=info")
        .arg("seed")
        .arg(&d.torrent)
        .arg(&d.file)
        .args(["--port", &port.to_string(), "--max-peers", "10"])
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let pid = seeder.id();
    let _seeder = Killed(seeder);
    common::wait_for_tcp(port, Duration::from_secs(30), "the seeder");
    let flood: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(flood.len() > 400, "only {} connections opened", flood.len());
    wait_for_line(
        &log,
        "refused, already 26 incoming connections",
        Duration::from_secs(30),
    );
    let out = d.dir.path().join("out.bin");
    let mut honest = peerwire();
    honest
        .arg("download")
        .arg("-o")
        .arg(&out)
        .arg(&d.torrent)
        .args([
            "--peer",
            &format!("127.0.0.1:{port}"),
            "--port",
            "0",
            "--give-up-after",
            "60",
        ]);
    run_ok(&mut honest, Duration::from_secs(90));
    assert!(std::fs::read(&out).unwrap() == *d.bytes);
    let peak = vm_hwm_kib(pid);
    assert!(peak < 100 * 1024, "the seeder's peak RSS is {peak} KiB");
    drop(flood);
}
