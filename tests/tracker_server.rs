//! The built-in tracker, driven over 127.0.0.1 by peerwire's own client and by raw sockets:
//! peers find each other over HTTP and UDP, hostile requests are refused without harm, and
//! the client side's tiers and re-announcing thread work against it.

pub mod common;

use common::{peerwire, run_ok};
use peerwire::metainfo::InfoHash;
use peerwire::peer_id::PeerId;
use peerwire::tracker::announcer::{Announcer, AnnouncerCommand};
use peerwire::tracker::tiers::TrackerTiers;
use peerwire::tracker::udp_packet::{Request, Response};
use peerwire::tracker::{AnnounceRequest, Event, Tracker, TrackerConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const HASH: InfoHash = InfoHash([0x42; 20]);

fn request(port: u16, left: u64) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: HASH,
        peer_id: PeerId::generate(),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event: Event::Started,
        numwant: None,
        key: 1,
    }
}

fn quick() -> TrackerConfig {
    TrackerConfig {
        udp_base_timeout: Duration::from_millis(500),
        udp_retries: 2,
        http_timeout: Duration::from_secs(5),
        ..TrackerConfig::default()
    }
}

fn ports(peers: &[SocketAddr]) -> Vec<u16> {
    let mut ports: Vec<u16> = peers.iter().map(|p| p.port()).collect();
    ports.sort();
    ports
}

#[test]
fn peers_find_each_other_over_http_and_udp() {
    let tracker = common::local_tracker(Duration::from_secs(60));
    let mut http = Tracker::new(&tracker.announce_url().unwrap(), quick()).unwrap();
    let mut udp = Tracker::new(&tracker.udp_announce_url().unwrap(), quick()).unwrap();
    assert!(http.announce(&request(1001, 10)).unwrap().peers.is_empty());
    let second = udp.announce(&request(1002, 0)).unwrap();
    assert_eq!(ports(&second.peers), [1001]);
    assert_eq!(
        (second.complete, second.incomplete, second.interval),
        (Some(1), Some(1), Duration::from_secs(60))
    );
    let third = http.announce(&request(1003, 5)).unwrap();
    assert_eq!(ports(&third.peers), [1001, 1002]);
    for tracker in [&mut http, &mut udp] {
        let stats = tracker.scrape(HASH).unwrap();
        assert_eq!((stats.seeders, stats.leechers), (1, 2));
    }
    let mut stopped = request(1002, 0);
    stopped.event = Event::Stopped;
    udp.announce(&stopped).unwrap();
    assert_eq!(
        ports(
            &tracker
                .peers(HASH)
                .iter()
                .map(|p| p.addr)
                .collect::<Vec<_>>()
        ),
        [1001, 1003]
    );
    let stats = tracker.stats();
    assert_eq!(
        (
            stats.announces_http,
            stats.announces_udp,
            stats.scrapes,
            stats.bad_requests
        ),
        (2, 2, 2, 0)
    );
    tracker.stop();
}

/// A raw HTTP GET; returns the body.
fn http_get(addr: SocketAddr, target: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let status = String::from_utf8_lossy(&response[9..12])
        .parse()
        .unwrap_or(0);
    (status, response[head_end..].to_vec())
}

fn query(port: u16, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id=-XX0001-aaaaaaaaaaaa&port={port}&left=1{extra}",
        "%42".repeat(20)
    )
}

#[test]
fn compact_zero_gets_a_dictionary_list() {
    let tracker = common::local_tracker(Duration::from_secs(60));
    let addr = tracker.http_addr().unwrap();
    http_get(addr, &query(2001, ""));
    let (status, body) = http_get(addr, &query(2002, "&compact=0"));
    assert_eq!(status, 200);
    let answer = peerwire::bencode::decode(&body).unwrap().value;
    let peers = answer.get("peers").unwrap().as_list().unwrap();
    assert_eq!(peers[0].get("port").unwrap().as_integer(), Some(2001));
    assert_eq!(peers[0].get("ip").unwrap().as_str(), Some("127.0.0.1"));
    tracker.stop();
}

#[test]
fn hostile_requests_are_refused_and_the_tracker_keeps_serving() {
    let tracker = common::local_tracker(Duration::from_secs(60));
    let addr = tracker.http_addr().unwrap();
    let udp_addr = tracker.udp_addr().unwrap();
    let mut client = Tracker::new(&tracker.announce_url().unwrap(), quick()).unwrap();
    let hostile: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {
            assert!(
                String::from_utf8_lossy(&http_get(addr, "/announce?peer_id=x&port=1").1)
                    .contains("failure reason")
            )
        }),
        Box::new(|| {
            assert!(String::from_utf8_lossy(&http_get(addr, &query(0, "")).1).contains("port"))
        }),
        Box::new(|| {
            assert!(
                String::from_utf8_lossy(
                    &http_get(addr, "/announce?info_hash=%42&peer_id=x&port=5").1
                )
                .contains("20")
            )
        }),
        Box::new(|| {
            assert_eq!(
                http_get(addr, &format!("/announce?junk={}", "a".repeat(100_000))).0,
                414
            )
        }),
        Box::new(|| assert_eq!(http_get(addr, "/../../etc/passwd").0, 404)),
        Box::new(|| {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = s.write_all(b"\x00\x01garbage that is not HTTP\r\n\r\n");
        }),
        Box::new(|| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            for size in [0usize, 3, 16, 98, 1500] {
                let garbage: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
                let _ = socket.send_to(&garbage, udp_addr);
            }
        }),
        Box::new(|| {
            // An announce with a connection id the tracker never gave out.
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let packet = peerwire::tracker::udp_packet::AnnouncePacket {
                connection_id: 12345,
                transaction_id: 9,
                info_hash: HASH,
                peer_id: PeerId::generate(),
                downloaded: 0,
                left: 1,
                uploaded: 0,
                event: 2,
                key: 0,
                num_want: -1,
                port: 3000,
            };
            socket
                .send_to(&Request::Announce(packet).encode(), udp_addr)
                .unwrap();
            let mut buf = [0u8; 200];
            let n = socket.recv(&mut buf).unwrap();
            assert!(matches!(
                Response::decode(&buf[..n], false),
                Ok(Response::Error {
                    transaction_id: 9,
                    ..
                })
            ));
        }),
    ];
    for (i, attack) in hostile.iter().enumerate() {
        attack();
        let still = client.announce(&request(4000 + i as u16, 1));
        assert!(
            still.is_ok(),
            "after attack {i}: {still:?}",
            still = still.err()
        );
    }
    assert!(tracker.stats().bad_requests >= 7, "{:?}", tracker.stats());
    assert!(
        tracker.peers(HASH).iter().all(|p| p.addr.port() >= 4000),
        "no hostile announce got in"
    );
    let started = Instant::now();
    tracker.stop();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        started.elapsed()
    );
}

#[test]
fn tiers_skip_a_dead_tracker_and_move_the_working_one_first() {
    let tracker = common::local_tracker(Duration::from_secs(60));
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{dead_port}/announce");
    let alive = tracker.announce_url().unwrap();
    let mut tiers = TrackerTiers::new(
        vec![vec![dead.clone()], vec![dead.clone(), alive.clone()]],
        quick(),
    );
    let (url, _) = tiers.announce(&request(5001, 1)).unwrap();
    assert_eq!(url, alive);
    assert_eq!(
        tiers.urls(),
        [dead.as_str(), alive.as_str(), dead.as_str()],
        "the tracker that answered leads its tier"
    );
    tracker.stop();
}

#[test]
fn the_announcer_reannounces_on_the_interval_and_says_stopped() {
    let tracker = common::local_tracker(Duration::from_secs(1));
    let tiers = TrackerTiers::new(vec![vec![tracker.udp_announce_url().unwrap()]], quick());
    let announcer = Announcer::spawn(tiers, request(6001, 100)).unwrap();
    let first = announcer
        .peers
        .recv_timeout(Duration::from_secs(10))
        .expect("a first announce");
    assert!(first.is_empty());
    announcer
        .commands
        .send(AnnouncerCommand::Progress {
            uploaded: 5,
            downloaded: 50,
            left: 50,
        })
        .unwrap();
    // The interval is 1 s: two more announces arrive on their own.
    for _ in 0..2 {
        announcer
            .peers
            .recv_timeout(Duration::from_secs(10))
            .expect("a re-announce after the interval");
    }
    let me = tracker
        .peers(HASH)
        .into_iter()
        .find(|p| p.addr.port() == 6001)
        .expect("registered");
    assert!(me.announces >= 3, "{me:?}");
    assert_eq!((me.left, me.downloaded, me.uploaded), (50, 50, 5));
    announcer.stop();
    assert!(
        tracker.peers(HASH).iter().all(|p| p.addr.port() != 6001),
        "`stopped` removed us"
    );
    tracker.stop();
}

#[test]
fn the_tracker_command_serves_peers_to_the_peers_command() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut process = common::Killed(
        peerwire()
            .args([
                "tracker",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--udp-port",
                &port.to_string(),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_for_tcp(port, Duration::from_secs(10), "peerwire tracker");
    common::wait_for_udp_tracker(port, Duration::from_secs(10), "peerwire tracker");
    let data = dir.path().join("d.bin");
    std::fs::write(&data, vec![1u8; 50_000]).unwrap();
    for (name, url) in [
        ("h.torrent", format!("http://127.0.0.1:{port}/announce")),
        ("u.torrent", format!("udp://127.0.0.1:{port}")),
    ] {
        let torrent = dir.path().join(name);
        common::create_torrent(&data, &torrent, &["-t", &url]);
        let first = if name == "h.torrent" { "7101" } else { "7201" };
        let second = if name == "h.torrent" { "7102" } else { "7202" };
        // A peer that stays in the swarm (`peers` itself says `stopped` once answered): it
        // announces through peerwire's tracker client and never leaves.
        let info_hash = peerwire::metainfo::Metainfo::from_file(&torrent)
            .unwrap()
            .info_hash;
        let port: u16 = first.parse().unwrap();
        let stays = AnnounceRequest::started(info_hash, PeerId::generate(), port, 50_000);
        Tracker::new(&url, TrackerConfig::default())
            .and_then(|mut client| client.announce(&stays))
            .unwrap_or_else(|e| panic!("{name}: the staying peer's announce failed: {e}"));
        let out = run_ok(
            peerwire()
                .arg("peers")
                .arg(&torrent)
                .args(["--port", second]),
            Duration::from_secs(30),
        );
        assert!(
            out.lines().any(|l| l == format!("127.0.0.1:{first}")),
            "{name}: {out}"
        );
    }
    assert!(
        process.0.try_wait().unwrap().is_none(),
        "the tracker is still running"
    );
}
