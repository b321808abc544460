//! peerwire's DHT (BEP 5) among real libtorrent nodes on 127.0.0.0/8, every node on its own
//! address (libtorrent keeps one routing-table entry per IP):
//!
//! - a trackerless magnet whose only seeder is a libtorrent node: `peerwire download`,
//!   bootstrapped from one other libtorrent node, finds it and downloads byte-identical;
//! - the mirror: `peerwire seed` announced to the DHT only, and a libtorrent node with just the
//!   magnet downloads from it;
//! - libtorrent's lookups and queries against a peerwire node get correct answers;
//! - a network of 22 nodes, libtorrent and peerwire mixed: `dht_get_peers` from anywhere
//!   converges on the seeder.

pub mod common;

use common::libtorrent_dht::{LibtorrentDht, compact_hex, reply_fields, words};
use common::{DhtNode, Killed, KrpcProbe, free_port, peerwire, run_with_deadline, small_torrent};
use peerwire::dht::NodeId;
use peerwire::dht::krpc::{Body, Message, Query};
use peerwire::metainfo::InfoHash;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Every step takes well under a second on loopback; the deadlines leave room for a loaded
/// machine.
const STEP: Duration = Duration::from_secs(30);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// Node `seeder` seeds `torrent`; returns its info hash once another node stored the announce
/// (a lookup before that finds nobody).
fn libtorrent_seeds(dht: &mut LibtorrentDht, seeder: usize, torrent: &Path, data: &Path) -> String {
    dht.send(&format!(
        "seed {seeder} {} {}",
        torrent.display(),
        data.display()
    ));
    let seeding = dht.wait_for(&format!("seeding {seeder} "), STEP);
    let hash = words(&seeding, 2)[0].to_string();
    wait_until_stored(dht, &hash, &dht.addr(seeder).to_string());
    hash
}

/// Waits until a libtorrent node has stored `peer` for `hash` (an announce_peer reached it).
fn wait_until_stored(dht: &LibtorrentDht, hash: &str, peer: &str) {
    loop {
        let line = dht.wait_for("announced ", STEP);
        let fields = words(&line, 1);
        if fields[1] == hash && fields[2] == peer {
            return;
        }
    }
}

#[test]
fn peerwire_downloads_a_trackerless_magnet_from_a_libtorrent_seeder_found_in_the_dht() {
    let Some(mut dht) = LibtorrentDht::start(5, ip(50), free_port()) else {
        return;
    };
    dht.send("mesh");
    dht.wait_for("meshed", STEP);
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 400_000, 32_768);
    let hash = libtorrent_seeds(&mut dht, 0, &torrent, content.parent().unwrap());

    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut download = peerwire();
    download
        .arg("download")
        .arg(format!("magnet:?xt=urn:btih:{hash}"))
        .arg("-o")
        .arg(&out)
        .args(["--bind", "127.0.0.56", "--port", &free_port().to_string()])
        .args(["--dht-bootstrap", &dht.addr(2).to_string()])
        .args(["--give-up-after", "30"]);
    let done = run_with_deadline(&mut download, Duration::from_secs(90));
    assert!(
        done.status.success(),
        "peerwire download failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    common::assert_bytes(
        &out.join("lesson.bin"),
        &std::fs::read(&content).unwrap(),
        "the file peerwire found through libtorrent's DHT",
    );
}

#[test]
fn a_libtorrent_node_downloads_from_a_peerwire_seed_it_found_in_the_dht() {
    let Some(mut dht) = LibtorrentDht::start(5, ip(60), free_port()) else {
        return;
    };
    dht.send("mesh");
    dht.wait_for("meshed", STEP);
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 400_000, 32_768);
    let port = free_port();
    let seed = peerwire()
        .arg("seed")
        .arg(&torrent)
        .arg(&content)
        .args(["--bind", "127.0.0.66", "--port", &port.to_string()])
        .args(["--dht-bootstrap", &dht.addr(1).to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peerwire seed");
    let _seed = Killed(seed);
    let info = run_with_deadline(peerwire().arg("info").arg(&torrent), STEP);
    let info = String::from_utf8_lossy(&info.stdout).to_string();
    let hash = info
        .lines()
        .find_map(|l| l.strip_prefix("Info Hash: "))
        .expect("info prints the hash")
        .to_string();
    // peerwire's announce_peer reached a libtorrent node: it stores the seed's listen address.
    wait_until_stored(&dht, &hash, &format!("127.0.0.66:{port}"));
    let out = dir.path().join("leech");
    std::fs::create_dir_all(&out).unwrap();
    dht.send(&format!(
        "magnet 3 magnet:?xt=urn:btih:{hash} {}",
        out.display()
    ));
    dht.wait_for(&format!("finished 3 {hash}"), STEP);
    common::assert_bytes(
        &out.join("lesson.bin"),
        &std::fs::read(&content).unwrap(),
        "the file libtorrent downloaded from peerwire",
    );
}

#[test]
fn libtorrent_gets_correct_answers_from_a_peerwire_node() {
    let port = free_port();
    let Some(mut dht) = LibtorrentDht::start(2, ip(70), port) else {
        return;
    };
    // The peerwire node is the only node either libtorrent node knows.
    let node = DhtNode::start(ip(75), free_port(), &[]);
    let ours = node.addr.to_string();
    dht.send(&format!("watch 1 {ours}"));
    dht.send(&format!("add_node all {ours}"));
    // libtorrent node 0 seeds: its announce can only go through peerwire, which hands it a
    // token and stores the announce. (The python binding cannot call `dht_announce` without a
    // torrent: its flags type is not exposed.)
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 50_000, 16_384);
    dht.send(&format!(
        "seed 0 {} {}",
        torrent.display(),
        content.parent().unwrap().display()
    ));
    let seeding = dht.wait_for("seeding 0 ", STEP);
    let hash = words(&seeding, 2)[0].to_string();
    let announced = dht.addr(0);
    // Wait until the announce landed at peerwire: ask it ourselves, once a second at most,
    // until it names node 0 (libtorrent announces as soon as it seeds).
    let probe = KrpcProbe::bind(ip(76));
    let info_hash = InfoHash(peerwire::encoding::from_hex::<20>(&hash).unwrap());
    let deadline = Instant::now() + STEP;
    loop {
        let query = Message::query(
            b"qq".to_vec(),
            NodeId([7; 20]),
            Query::GetPeers { info_hash },
        );
        probe.send(node.addr, &query.encode());
        if let Some(Message {
            body: Body::Response(r),
            ..
        }) = probe.reply(Duration::from_secs(1))
            && r.values.contains(&announced)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "libtorrent's announce never reached peerwire"
        );
    }
    // Node 1's own lookup asks peerwire and gets node 0's address as a value, with a token
    // and peerwire's id (libtorrent's DHT code on both the asking and the reading side).
    dht.send(&format!("get_peers 1 {hash}"));
    let answer = loop {
        let line = dht.wait_for(&format!("pkt 1 in {ours}"), STEP);
        if reply_fields(&line).contains_key("r.values") {
            break line;
        }
    };
    let peers = dht.wait_for(&format!("peers 1 {hash}"), STEP);
    assert!(
        words(&peers, 3).contains(&announced.to_string().as_str()),
        "libtorrent's lookup through peerwire found {peers}"
    );
    let fields = reply_fields(&answer);
    assert_eq!(fields.get("y"), Some(&"r"), "{answer}");
    assert_eq!(
        fields.get("r.id"),
        Some(&node.id.to_hex().as_str()),
        "{answer}"
    );
    assert!(
        fields.get("r.token").is_some_and(|t| !t.is_empty()),
        "{answer}"
    );
    assert!(
        fields
            .get("r.values")
            .is_some_and(|v| v.split(',').any(|p| p == compact_hex(announced))),
        "{answer}"
    );
    // find_node, sent as a libtorrent node would (its id, libtorrent's bencoder): the answer
    // names the libtorrent nodes peerwire has met, as whole 26-byte compact nodes.
    dht.send(&format!("direct 0 {ours} find_node {}", "00".repeat(20)));
    let reply = dht.wait_for(&format!("direct_reply 0 {ours}"), STEP);
    let fields = reply_fields(&reply);
    assert_eq!(
        fields.get("r.id"),
        Some(&node.id.to_hex().as_str()),
        "{reply}"
    );
    let nodes = fields.get("r.nodes").copied().unwrap_or("");
    assert!(!nodes.is_empty() && nodes.len() % 52 == 0, "{reply}");
    assert!(
        nodes.contains(&compact_hex(dht.addr(1))),
        "peerwire names libtorrent node 1: {reply}"
    );
}

#[test]
fn every_lookup_converges_in_a_mixed_network_of_22_nodes() {
    let Some(mut dht) = LibtorrentDht::start(12, ip(80), free_port()) else {
        return;
    };
    // libtorrent nodes know only three others each: lookups need several hops.
    dht.send("mesh 3");
    dht.wait_for("meshed", STEP);
    // Ten peerwire nodes, each started from one libtorrent node and the peerwire node before it;
    // every other one is also put into a libtorrent node's table.
    let mut ours: Vec<DhtNode> = Vec::new();
    for i in 0..10u8 {
        let mut bootstrap = vec![dht.addr(usize::from(i) % 12)];
        bootstrap.extend(ours.last().map(|n| n.addr));
        let node = DhtNode::start(ip(100 + i), free_port(), &bootstrap);
        if i % 2 == 0 {
            dht.send(&format!(
                "add_node {} {}",
                11 - usize::from(i) / 2,
                node.addr
            ));
        }
        ours.push(node);
    }
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 100_000, 32_768);
    let hash = libtorrent_seeds(&mut dht, 5, &torrent, content.parent().unwrap());
    let seeder = dht.addr(5).to_string();
    // Lookups from five places: three peerwire nodes and two libtorrent nodes.
    let starts = [
        ours[1].addr,
        ours[6].addr,
        ours[9].addr,
        dht.addr(0),
        dht.addr(10),
    ];
    for (n, start) in starts.iter().enumerate() {
        let mut lookup = peerwire();
        lookup
            .args([
                "dht_get_peers",
                &hash,
                "--dht-bootstrap",
                &start.to_string(),
            ])
            .args(["--bind", &ip(120 + n as u8).to_string()]);
        let out = run_with_deadline(&mut lookup, Duration::from_secs(90));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "from {start}: {stdout}");
        let peers: Vec<&str> = stdout
            .lines()
            .skip_while(|l| *l != "Peers:")
            .skip(1)
            .collect();
        assert!(
            peers.contains(&seeder.as_str()),
            "the lookup from {start} did not find the seeder {seeder}:\n{stdout}"
        );
        assert!(
            stdout
                .lines()
                .next()
                .is_some_and(|l| l.starts_with("step 1: asked "))
        );
    }
}
