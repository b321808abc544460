//! The DHT from the command line (BEP 5): `dht_ping` and `dht_find_node` print what a node
//! answered, in the formats `docs/cli.md` gives; `--dht-state` keeps a node's id and table
//! across runs; a peer's `port` message makes our node ping the peer's DHT node; a private
//! torrent never starts a DHT node; with no way to find peers a download says so at once.

pub mod common;

use common::{
    DhtNode, Killed, Script, ScriptedPeer, StderrLines, free_port, lines_of, peerwire,
    run_with_deadline, small_torrent, wait_for_tcp, wait_with_deadline,
};
use peerwire::dht::NodeId;
use peerwire::dht::krpc::{Body, Message, Query};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn stdout_of(args: &[&str]) -> String {
    let out = run_with_deadline(peerwire().args(args), DEADLINE);
    assert!(
        out.status.success(),
        "peerwire {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn dht_ping_and_dht_find_node_print_what_the_node_answered() {
    let a = DhtNode::start(ip(130), free_port(), &[]);
    let b = DhtNode::start(ip(131), free_port(), &[a.addr]);
    let bind = ["--bind", "127.0.0.132"];
    let ping = stdout_of(&[&["dht_ping", &a.addr.to_string()][..], &bind].concat());
    assert_eq!(ping, format!("Node ID: {}\n", a.id));
    // B joined through A, so A names B once B has answered A's check on it; asked again
    // (each ask is one query) until then.
    let wanted = format!("{} {}", b.id, b.addr);
    let until = Instant::now() + DEADLINE;
    loop {
        let args = ["dht_find_node", &a.addr.to_string(), &b.id.to_hex()];
        let nodes = stdout_of(&[&args[..], &bind].concat());
        for line in nodes.lines() {
            let (id, addr) = line.split_once(' ').expect("`<id> <ip:port>`");
            assert!(NodeId::from_hex(id).is_some(), "{line}");
            assert!(addr.parse::<SocketAddrV4>().is_ok(), "{line}");
        }
        if nodes.lines().any(|l| l == wanted) {
            break;
        }
        assert!(Instant::now() < until, "A never named B: {nodes:?}");
    }
    // A node that does not exist: exit 1 with an `error:` line, not a hang.
    let silent = SocketAddrV4::new(ip(133), free_port());
    let out = run_with_deadline(
        peerwire().args(["dht_ping", &silent.to_string(), "--bind", "127.0.0.132"]),
        DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: DHT: "));
}

/// `dht_node --dht-state FILE`: the file is written when it ends (Ctrl-C), and the next run
/// starts with the same id.
#[test]
fn the_dht_state_keeps_our_id_and_table_across_runs() {
    let a = DhtNode::start(ip(134), free_port(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("dht.state");
    let run = |bootstrap: bool| {
        let mut command = peerwire();
        command
            .args(["dht_node", "--bind", "127.0.0.135"])
            .args(["--port", &free_port().to_string()])
            .arg("--dht-state")
            .arg(&state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if bootstrap {
            command.args(["--dht-bootstrap", &a.addr.to_string()]);
        }
        let mut child = command.spawn().expect("start dht_node");
        let lines = lines_of(child.stdout.take().unwrap());
        let id = lines.recv_timeout(DEADLINE).expect("the id line");
        let addr = lines.recv_timeout(DEADLINE).expect("the address line");
        (
            child,
            id,
            addr.trim_start_matches("Listening: ").to_string(),
        )
    };
    let (child, first_id, addr) = run(true);
    // Wait until A knows our node (it answered A's check): then our node knows A too.
    let until = Instant::now() + DEADLINE;
    while !stdout_of(&[
        "dht_find_node",
        &a.addr.to_string(),
        &"00".repeat(20),
        "--bind",
        "127.0.0.136",
    ])
    .contains(&addr)
    {
        assert!(Instant::now() < until, "A never learned of {addr}");
    }
    let stop = |child: std::process::Child| {
        let pid = child.id().to_string();
        run_with_deadline(
            std::process::Command::new("kill").args(["-INT", &pid]),
            DEADLINE,
        );
        let out = wait_with_deadline(child, DEADLINE);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    stop(child);
    let saved = std::fs::read_to_string(&state).expect("the state file is written at the end");
    let id_hex = first_id.trim_start_matches("Node ID: ");
    assert!(saved.starts_with(&format!("id {id_hex}\n")), "{saved}");
    assert!(
        saved.contains(&format!("{} {}", a.id, a.addr)),
        "A is saved: {saved}"
    );
    // The second run is given no bootstrap: its id and its way in come from the file.
    let (child, second_id, _) = run(false);
    assert_eq!(second_id, first_id);
    let _second = Killed(child);
}

/// BEP 5's `port` message: a peer with the DHT bit names its node's UDP port; our node pings
/// it there (and keeps it if it answers).
#[test]
fn a_peers_port_message_makes_our_node_ping_its_dht_node() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 100_000, 16_384);
    let their_node = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = their_node.local_addr().unwrap().port();
    let metainfo = peerwire::metainfo::Metainfo::from_file(&torrent).unwrap();
    let stream = Arc::new(std::fs::read(&content).unwrap());
    let peer = ScriptedPeer::start(metainfo.info_hash, stream, 16_384, Script::DhtPort(port));
    let mut download = peerwire();
    download
        .args(["download", "-o"])
        .arg(dir.path().join("out.bin"))
        .arg(&torrent)
        // `--seed`: the session, and its DHT node, live on after the download until killed.
        .args(["--peer", &peer.addr.to_string(), "--port", "0", "--seed"]);
    let download = Killed(
        download
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    their_node.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buffer = [0u8; 2048];
    let (n, _) = their_node.recv_from(&mut buffer).expect("our node's ping");
    let ping = Message::decode(&buffer[..n]).expect("KRPC");
    assert!(
        matches!(
            ping.body,
            Body::Query {
                query: Query::Ping,
                ..
            }
        ),
        "{ping:?}"
    );
    drop(download);
}

#[test]
fn a_private_torrent_starts_no_dht_node_and_a_public_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("private.bin");
    std::fs::write(&content, common::pseudo_random(50_000, 3)).unwrap();
    for (private, expected) in [(true, false), (false, true)] {
        let torrent = dir.path().join(format!("{private}.torrent"));
        let flags: &[&str] = if private { &["--private"] } else { &[] };
        common::create_torrent(&content, &torrent, flags);
        let port = free_port();
        let mut seed = peerwire();
        seed.args(["-v", "seed"]).arg(&torrent).arg(&content).args([
            "--port",
            &port.to_string(),
            "--dht-bootstrap",
            "127.0.0.137:6881",
        ]);
        let mut seeder = StderrLines::spawn(&mut seed);
        // The DHT node starts before the listener: by the time it listens, the line is there.
        seeder.wait_for("listening for peers on", DEADLINE);
        wait_for_tcp(port, DEADLINE, "peerwire seed");
        let started = seeder.seen.iter().any(|l| l.contains("DHT node"));
        assert_eq!(
            started,
            expected,
            "private: {private}\n{}",
            seeder.seen.join("\n")
        );
    }
}

#[test]
fn with_no_tracker_no_peer_and_no_dht_a_download_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent) = small_torrent(dir.path(), 10_000, 16_384);
    for extra in [&["--no-dht"][..], &[][..]] {
        let out = run_with_deadline(
            peerwire()
                .args(["download", "-o"])
                .arg(dir.path().join("x.bin"))
                .arg(&torrent)
                .args(extra),
            DEADLINE,
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("nowhere to find peers"),
            "{extra:?}: {stderr}"
        );
    }
}
