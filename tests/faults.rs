//! Faults outside us (the network and the tracker, not a lying peer): a tracker that is down
//! from the start, a tracker that vanishes mid-download, and peers that all hang up. peerwire
//! keeps going with what it has: `--peer` addresses, peers it already knows, reconnecting after
//! a pause. It neither spins nor gives up early, and the bytes are right.

pub mod common;

use common::{Script, ScriptedPeer, free_port, local_tracker, peerwire, pseudo_random};
use peerwire::metainfo::Metainfo;
use peerwire::tracker::tiers::TrackerTiers;
use peerwire::tracker::{AnnounceRequest, TrackerConfig};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PIECE: u64 = 65_536;

struct Data {
    dir: tempfile::TempDir,
    bytes: Arc<Vec<u8>>,
    file: PathBuf,
}

fn data(pieces: usize, seed: u64) -> Data {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Arc::new(pseudo_random(pieces * PIECE as usize - 17, seed));
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &*bytes).unwrap();
    Data { dir, bytes, file }
}

impl Data {
    fn torrent(&self, trackers: &[&str]) -> (PathBuf, Metainfo) {
        let torrent = self.dir.path().join("data.torrent");
        let mut args = vec!["--piece-length", "65536"];
        trackers.iter().for_each(|t| args.extend(["-t", t]));
        common::create_torrent(&self.file, &torrent, &args);
        let metainfo = Metainfo::from_file(&torrent).unwrap();
        (torrent, metainfo)
    }

    /// Starts `peerwire download` with `extra` arguments, its log going to a file.
    fn spawn_download(&self, torrent: &Path, extra: &[&str]) -> (std::process::Child, PathBuf) {
        let log_path = self.dir.path().join("download.log");
        let child = peerwire()
            .env("RUST_LOG", "peerwire=info")
            .arg("download")
            .arg("-o")
            .arg(self.out())
            .arg(torrent)
            .args(["--port", "0"])
            .args(extra)
            .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
            .spawn()
            .unwrap();
        (child, log_path)
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out.bin")
    }

    /// Waits for a download started by `spawn_download` to end: did it succeed with the right
    /// bytes, and its log.
    fn finish(&self, child: std::process::Child, log: &Path, deadline: Duration) -> (bool, String) {
        let status = common::wait_with_deadline(child, deadline).status;
        let log = std::fs::read_to_string(log).unwrap();
        let same = std::fs::read(self.out()).is_ok_and(|d| d == *self.bytes);
        assert!(same || !status.success(), "success, but the file differs");
        (status.success() && same, log)
    }

    /// `peerwire download` with `extra` arguments; waits for it to end.
    fn download(&self, torrent: &Path, extra: &[&str], deadline: Duration) -> (bool, String) {
        let (child, log) = self.spawn_download(torrent, extra);
        self.finish(child, &log, deadline)
    }
}

/// Waits until the log file holds `needle`.
fn wait_in_log(log: &Path, needle: &str, deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(Instant::now() < until, "no `{needle}` in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
}

#[test]
fn a_tracker_down_from_the_start_does_not_stop_the_peers_we_were_given() {
    let d = data(24, 41);
    let dead = format!("http://127.0.0.1:{}/announce", free_port()); // nobody listens there
    let (torrent, metainfo) = d.torrent(&[&dead]);
    let seeder = ScriptedPeer::start(
        metainfo.info_hash,
        Arc::clone(&d.bytes),
        PIECE,
        Script::Honest,
    );
    let peer = seeder.addr.to_string();
    let (ok, log) = d.download(&torrent, &["--peer", &peer], Duration::from_secs(60));
    assert!(ok, "{log}");
    assert!(
        log.contains("announce failed, retrying in"),
        "no back-off logged:\n{log}"
    );
}

#[test]
fn a_tracker_that_vanishes_mid_download_leaves_the_known_peers() {
    let d = data(48, 42);
    let tracker = local_tracker(Duration::from_secs(2));
    let url = tracker.announce_url().unwrap();
    let (torrent, metainfo) = d.torrent(&[&url]);
    let seeder = ScriptedPeer::start(
        metainfo.info_hash,
        Arc::clone(&d.bytes),
        PIECE,
        Script::Paced,
    );
    announce_for(&url, metainfo.info_hash, seeder.addr.port());
    let (child, log) = d.spawn_download(&torrent, &["--give-up-after", "60"]);
    let connected = format!("{}: connected", seeder.addr);
    wait_in_log(&log, &connected, Duration::from_secs(30));
    tracker.stop(); // mid-download: the seeder serves a block every 10 ms, ~2 s in all
    let (ok, log) = d.finish(child, &log, Duration::from_secs(90));
    assert!(ok, "{log}");
    assert!(
        log.contains("announce failed") || log.contains("HTTP request failed"),
        "{log}"
    );
}

/// Registers the scripted seeder with the tracker, as if it had announced itself.
fn announce_for(url: &str, info_hash: peerwire::metainfo::InfoHash, port: u16) {
    let mut tiers = TrackerTiers::new(vec![vec![url.to_string()]], TrackerConfig::default());
    let peer_id = peerwire::peer_id::PeerId::generate();
    let request = AnnounceRequest {
        numwant: Some(0), // a seed registering, not looking for peers
        ..AnnounceRequest::started(info_hash, peer_id, port, 0)
    };
    tiers
        .announce(&request)
        .expect("the built-in tracker answers");
}

#[test]
fn when_every_peer_hangs_up_peerwire_reconnects_and_finishes() {
    let d = data(16, 43); // 64 blocks; the only peer hangs up after every 24
    let (torrent, metainfo) = d.torrent(&[]);
    let flaky = ScriptedPeer::start(
        metainfo.info_hash,
        Arc::clone(&d.bytes),
        PIECE,
        Script::DisconnectAfter(24),
    );
    let started = Instant::now();
    let peer = flaky.addr.to_string();
    let (ok, log) = d.download(
        &torrent,
        &["--peer", &peer, "--give-up-after", "60"],
        Duration::from_secs(90),
    );
    assert!(ok, "{log}");
    let hangups = log.matches(&format!("{peer}: disconnected")).count();
    assert!(
        hangups >= 2,
        "expected reconnections, saw {hangups}:\n{log}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn when_every_peer_is_gone_peerwire_asks_the_tracker_again() {
    let d = data(16, 44); // 64 blocks; the first peer serves 24 and leaves the swarm
    let tracker = local_tracker(Duration::from_secs(3600)); // no re-announce by the clock
    let url = tracker.udp_announce_url().unwrap(); // UDP: no `min interval` to wait out
    let (torrent, metainfo) = d.torrent(&[&url]);
    let leaving = ScriptedPeer::start(
        metainfo.info_hash,
        Arc::clone(&d.bytes),
        PIECE,
        Script::GoneAfter(24),
    );
    announce_for(&url, metainfo.info_hash, leaving.addr.port());
    let (child, log) = d.spawn_download(&torrent, &["--give-up-after", "40"]);
    wait_in_log(
        &log,
        &format!("{}: connected", leaving.addr),
        Duration::from_secs(30),
    );
    let newcomer = ScriptedPeer::start(
        metainfo.info_hash,
        Arc::clone(&d.bytes),
        PIECE,
        Script::Honest,
    );
    announce_for(&url, metainfo.info_hash, newcomer.addr.port()); // only the tracker knows it
    let (ok, log) = d.finish(child, &log, Duration::from_secs(90));
    assert!(ok, "{log}");
    assert!(
        log.contains("no peers left: asking the tracker again"),
        "{log}"
    );
    let served = |p: &ScriptedPeer| p.blocks_served.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(served(&leaving), 24);
    assert!(served(&newcomer) >= 40, "{log}");
}
