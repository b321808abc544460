//! peerwire against a real tracker: opentracker (Debian package `opentracker`), over HTTP and
//! UDP. Another peer announces first; `peerwire peers` must get it back from the tracker.

pub mod common;

use common::{OpenTracker, peerwire, run_ok};
use peerwire::metainfo::{InfoHash, Metainfo};
use peerwire::peer_id::PeerId;
use peerwire::tracker::{AnnounceRequest, Event, Tracker, TrackerConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

/// A torrent of a small file announcing to `url` (the info hash does not depend on the URL).
fn make_torrent(dir: &Path, name: &str, url: Option<&str>) -> PathBuf {
    let data = dir.join("data.bin");
    if !data.exists() {
        std::fs::write(
            &data,
            (0..100_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
        )
        .unwrap();
    }
    let torrent = dir.join(name);
    let tracker_args = url.map(|u| vec!["-t", u]).unwrap_or_default();
    common::create_torrent(&data, &torrent, &tracker_args);
    torrent
}

/// Announces a second, made-up peer on `port`, as another client would.
fn announce_other_peer(url: &str, info_hash: InfoHash, port: u16) {
    let mut tracker = Tracker::new(
        url,
        TrackerConfig {
            udp_base_timeout: Duration::from_secs(2),
            udp_retries: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let request = AnnounceRequest {
        info_hash,
        peer_id: PeerId::generate(),
        port,
        uploaded: 0,
        downloaded: 0,
        left: 100_000,
        event: Event::Started,
        numwant: None,
        key: 7,
    };
    tracker
        .announce(&request)
        .unwrap_or_else(|e| panic!("the other peer's announce failed: {e}"));
}

fn peers_of(torrent: &Path, our_port: u16) -> Vec<String> {
    let out = run_ok(
        peerwire().arg("peers").arg(torrent).args([
            "--port",
            &our_port.to_string(),
            "--udp-timeout-ms",
            "2000",
        ]),
        DEADLINE,
    );
    out.lines().map(str::to_string).collect()
}

#[test]
fn peerwire_gets_other_peers_from_opentracker_over_http_and_udp() {
    let dir = tempfile::tempdir().unwrap();
    let plain = make_torrent(dir.path(), "plain.torrent", None);
    let info_hash = Metainfo::from_file(&plain).unwrap().info_hash;
    let Some(tracker) = OpenTracker::start(&[info_hash.to_hex()]) else {
        return;
    };

    let http_torrent = make_torrent(dir.path(), "http.torrent", Some(&tracker.http_url()));
    announce_other_peer(&tracker.http_url(), info_hash, 23_001);
    let peers = peers_of(&http_torrent, 23_002);
    assert!(
        peers.contains(&"127.0.0.1:23001".to_string()),
        "HTTP: {peers:?}"
    );
    assert!(
        !peers.contains(&"127.0.0.1:23002".to_string()),
        "our own address was not dropped: {peers:?}"
    );

    let udp_torrent = make_torrent(dir.path(), "udp.torrent", Some(&tracker.udp_url()));
    announce_other_peer(&tracker.udp_url(), info_hash, 23_003);
    let peers = peers_of(&udp_torrent, 23_004);
    assert!(
        peers.contains(&"127.0.0.1:23003".to_string()),
        "UDP: {peers:?}"
    );
    assert!(
        peers.contains(&"127.0.0.1:23001".to_string()),
        "UDP sees the HTTP peer too: {peers:?}"
    );
}

#[test]
fn scrape_over_http_and_udp_counts_the_swarm() {
    let dir = tempfile::tempdir().unwrap();
    let plain = make_torrent(dir.path(), "plain.torrent", None);
    let info_hash = Metainfo::from_file(&plain).unwrap().info_hash;
    let Some(tracker) = OpenTracker::start(&[info_hash.to_hex()]) else {
        return;
    };
    announce_other_peer(&tracker.http_url(), info_hash, 23_011);
    announce_other_peer(&tracker.udp_url(), info_hash, 23_012);
    for url in [tracker.http_url(), tracker.udp_url()] {
        let stats = Tracker::new(&url, TrackerConfig::default())
            .unwrap()
            .scrape(info_hash)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.leechers, 2, "{url}: {stats:?}");
    }
}

#[test]
fn an_unknown_torrent_is_refused_with_the_trackers_words() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tracker) = OpenTracker::start(&["00".repeat(20)]) else {
        return;
    };
    let torrent = make_torrent(dir.path(), "t.torrent", Some(&tracker.http_url()));
    let out = common::run_with_deadline(peerwire().arg("-q").arg("peers").arg(&torrent), DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "error: tracker {}: the tracker refused: ",
            tracker.http_url()
        )),
        "{stderr}"
    );
}
