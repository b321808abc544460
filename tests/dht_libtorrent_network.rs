//! A DHT (BEP 5, DHT Protocol) of libtorrent nodes alone on 127.0.0.11-15: the precondition of
//! every test that puts peerwire's DHT among real nodes. If this fails, the loopback recipe
//! (settings, tables filled by hand, one address per node) is broken, not peerwire.
//!
//! Five libtorrent sessions, every node in every table; node 0 seeds a torrent made by
//! `peerwire create` and announces it to the DHT only; node 3 downloads it from a trackerless
//! magnet link (peers from the DHT, metadata by BEP 9, Extension for Peers to Send Metadata
//! Files) and ends with the same bytes; node 4's own lookup finds node 0; and the `direct`
//! queries a peerwire test sends to a node get the answers BEP 5 describes.

pub mod common;

use common::libtorrent_dht::{LibtorrentDht, compact_hex, reply_fields, words};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Every step here takes well under a second on loopback; the deadlines leave room for a
/// loaded machine, never for a retry at libtorrent's own pace (minutes).
const STEP: Duration = Duration::from_secs(20);

#[test]
fn libtorrent_nodes_alone_find_a_seeder_and_complete_a_trackerless_magnet() {
    let port = common::free_port();
    let Some(mut dht) = LibtorrentDht::start(5, Ipv4Addr::new(127, 0, 0, 11), port) else {
        return;
    };
    let started = Instant::now();
    dht.send("mesh");
    dht.wait_for("meshed", STEP);

    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = common::small_torrent(dir.path(), 300_000, 32_768);
    let seed_dir = content.parent().unwrap(); // small_torrent puts the file in a directory
    dht.send(&format!(
        "seed 0 {} {}",
        torrent.display(),
        seed_dir.display()
    ));
    let seeding = dht.wait_for("seeding 0 ", STEP);
    let hash = words(&seeding, 2)[0].to_string();

    // The magnet lookup must come after the seeder's announce reached another node: a lookup
    // that finds nobody is retried only at libtorrent's announce interval.
    let holder = loop {
        let line = dht.wait_for("announced ", STEP);
        let fields = words(&line, 1);
        if fields[1] == hash && fields[0] != "0" {
            assert_eq!(
                fields[2],
                dht.addr(0).to_string(),
                "the stored peer is the seeder's listen address: {line}"
            );
            break fields[0].parse::<usize>().unwrap();
        }
    };

    let out = dir.path().join("leech");
    std::fs::create_dir_all(&out).unwrap();
    let magnet_sent = Instant::now();
    dht.send(&format!(
        "magnet 3 magnet:?xt=urn:btih:{hash} {}",
        out.display()
    ));
    dht.wait_for(&format!("finished 3 {hash}"), STEP);
    let magnet_took = magnet_sent.elapsed();
    let expected = std::fs::read(&content).unwrap();
    common::assert_bytes(
        &out.join("lesson.bin"),
        &expected,
        "the file node 3 downloaded from a trackerless magnet",
    );

    // Node 4's own lookup.
    dht.send(&format!("get_peers 4 {hash}"));
    let peers = dht.wait_for(&format!("peers 4 {hash}"), STEP);
    let seeder = dht.addr(0).to_string();
    assert!(
        words(&peers, 3).contains(&seeder.as_str()),
        "node 4's lookup did not find the seeder {seeder}: {peers}"
    );
    let lookup = dht.wait_for(&format!("lookup 4 {hash}"), STEP);

    // The direct queries, as a peerwire test sends them to a peerwire node, here to the node
    // that holds the seeder's announce.
    let target = dht.addr(holder);
    dht.send(&format!("direct 1 {target} get_peers {hash}"));
    let reply = dht.wait_for(&format!("direct_reply 1 {target}"), STEP);
    let fields = reply_fields(&reply);
    assert_eq!(fields.get("y"), Some(&"r"), "{reply}");
    assert!(
        fields.get("r.token").is_some_and(|t| !t.is_empty()),
        "a get_peers reply carries a token: {reply}"
    );
    assert!(
        fields
            .get("r.values")
            .is_some_and(|v| v.split(',').any(|p| p == compact_hex(dht.addr(0)))),
        "node {holder} should give the seeder as a value: {reply}"
    );
    dht.send(&format!("direct 1 {target} find_node {}", "00".repeat(20)));
    let reply = dht.wait_for(&format!("direct_reply 1 {target}"), STEP);
    let nodes = reply_fields(&reply).get("r.nodes").copied().unwrap_or("");
    assert!(
        !nodes.is_empty() && nodes.len() % 52 == 0,
        "a find_node reply carries whole 26-byte compact nodes: {reply}"
    );
    dht.send("table 2");
    let table = dht.wait_for("table 2 ", STEP);
    assert!(
        words(&table, 2)[0].parse::<usize>().unwrap() >= 4,
        "node 2 knows every other node: {table}"
    );

    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "libtorrent DHT on 127.0.0.11-15: magnet finished {magnet_took:?} after the command, \
             whole test {:?}; {lookup}\n",
            started.elapsed()
        )
        .as_bytes(),
    );
}
