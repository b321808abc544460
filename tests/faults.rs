//! Faults outside us (issue P6): a tracker that is down from the start, a tracker that vanishes
//! mid-download, and peers that all hang up. peerwire keeps going with what it has: `--peer`
//! addresses, peers it already knows, reconnecting after a pause. It neither spins nor gives
//! up early, and the bytes are right.

mod common;

use common::{Script, ScriptedPeer, free_port, local_tracker, peerwire, pseudo_random};
use peerwire::metainfo::Metainfo;
use peerwire::tracker::tiers::TrackerTiers;
use peerwire::tracker::{AnnounceRequest, Event, TrackerConfig};
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

    /// `peerwire download` with `extra` arguments, its log in a file; waits for it to end.
    fn download(&self, torrent: &Path, extra: &[&str], deadline: Duration) -> (bool, String) {
        let out = self.dir.path().join("out.bin");
        let log_path = self.dir.path().join("download.log");
        let child = peerwire()
            .env("RUST_LOG", "peerwire=info")
            .arg("download")
            .arg("-o")
            .arg(&out)
            .arg(torrent)
            .args(["--port", "0"])
            .args(extra)
            .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
            .spawn()
            .unwrap();
        let status = common::wait_with_deadline(child, deadline).status;
        let log = std::fs::read_to_string(&log_path).unwrap();
        let same = std::fs::read(&out).is_ok_and(|d| d == *self.bytes);
        assert!(same || !status.success(), "success, but the file differs");
        (status.success() && same, log)
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
    let out = d.dir.path().join("out.bin");
    let log_path = d.dir.path().join("download.log");
    let child = peerwire()
        .env("RUST_LOG", "peerwire=info")
        .arg("download")
        .arg("-o")
        .arg(&out)
        .arg(&torrent)
        .args(["--port", "0", "--give-up-after", "60"])
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let connected = format!("{}: connected", seeder.addr);
    let until = Instant::now() + Duration::from_secs(30);
    while !log().contains(&connected) {
        assert!(Instant::now() < until, "never connected:\n{}", log());
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
    tracker.stop(); // mid-download: the seeder serves a block every 10 ms, ~2 s in all
    let status = common::wait_with_deadline(child, Duration::from_secs(90)).status;
    let log = log();
    assert!(status.success(), "{log}");
    assert!(std::fs::read(&out).unwrap() == *d.bytes, "the file differs");
    assert!(
        log.contains("announce failed") || log.contains("HTTP request failed"),
        "{log}"
    );
}

/// Registers the scripted seeder with the tracker, as if it had announced itself.
fn announce_for(url: &str, info_hash: peerwire::metainfo::InfoHash, port: u16) {
    let mut tiers = TrackerTiers::new(vec![vec![url.to_string()]], TrackerConfig::default());
    let request = AnnounceRequest {
        info_hash,
        peer_id: peerwire::peer_id::PeerId::generate(),
        port,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Event::Started,
        numwant: Some(0),
        key: 1,
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
