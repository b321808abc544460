//! libtorrent (python3-libtorrent) and peerwire meet at peerwire's built-in tracker, over HTTP
//! and then UDP: `peerwire peers` lists the libtorrent session (and leaves the swarm at once),
//! and libtorrent gets the address peerwire's tracker client announced back — it connects
//! to it.

pub mod common;

use common::{LibtorrentPeer, peerwire, run_ok};
use peerwire::metainfo::Metainfo;
use peerwire::peer_id::PeerId;
use peerwire::tracker::{AnnounceRequest, Tracker, TrackerConfig};
use peerwire::tracker_server::RunningTracker;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn meet_through(tracker_url: &str, tracker: &RunningTracker, dir: &Path) {
    let data = dir.join("shared.bin");
    std::fs::write(
        &data,
        (0..200_000u32)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let torrent = dir.join("shared.torrent");
    common::create_torrent(&data, &torrent, &["-t", tracker_url]);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;

    let Some(mut libtorrent) = LibtorrentPeer::start(&torrent, dir, true) else {
        return;
    };
    libtorrent.wait_for("tracker_reply", DEADLINE);
    let registered = tracker
        .peers(info_hash)
        .iter()
        .any(|p| p.addr.port() == libtorrent.port);
    assert!(
        registered,
        "libtorrent's announce did not reach the tracker"
    );

    // `peers` only looks: it finds libtorrent, then leaves the swarm at once (`stopped`).
    let out = run_ok(
        peerwire().arg("peers").arg(&torrent).args(["--port", "0"]),
        DEADLINE,
    );
    assert!(
        out.lines()
            .any(|l| l == format!("127.0.0.1:{}", libtorrent.port)),
        "peers: {out}"
    );
    assert_eq!(tracker.peers(info_hash).len(), 1, "`peers` stayed listed");

    // A leecher stays: peerwire's tracker client announces a port where this test listens.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let our_port = listener.local_addr().unwrap().port();
    let request = AnnounceRequest::started(info_hash, PeerId::generate(), our_port, 200_000);
    Tracker::new(tracker_url, TrackerConfig::default())
        .and_then(|mut client| client.announce(&request))
        .expect("peerwire's announce");

    // libtorrent re-announces, learns our address, and (a seeder meeting a leecher) dials it.
    libtorrent.send("reannounce");
    let (stream, from) = accept_within(&listener, DEADLINE);
    drop(stream);
    assert!(from.ip().is_loopback(), "{from}");
}

fn accept_within(listener: &TcpListener, deadline: Duration) -> (std::net::TcpStream, SocketAddr) {
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + deadline;
    loop {
        match listener.accept() {
            Ok(accepted) => return accepted,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
            }
            Err(e) => panic!("libtorrent never connected to the address peerwire announced: {e}"),
        }
    }
}

#[test]
fn libtorrent_and_peerwire_meet_at_the_builtin_http_tracker() {
    let tracker = common::local_tracker(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    meet_through(&tracker.announce_url().unwrap(), &tracker, dir.path());
    tracker.stop();
}

#[test]
fn libtorrent_and_peerwire_meet_at_the_builtin_udp_tracker() {
    let tracker = common::local_tracker(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    meet_through(&tracker.udp_announce_url().unwrap(), &tracker, dir.path());
    tracker.stop();
}
