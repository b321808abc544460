//! Logs and messages that tell the truth: a leecher that finishes and hangs up is a normal end,
//! not an "unexpected end of file", and so is one that hangs up before its handshake; a dialler that opens with an encrypted (MSE/PE) handshake
//! is named as such, not as a bad `pstrlen`; and a seed is not sent `have` messages it has no
//! use for.

pub mod common;

use common::{StderrLines, free_port, peerwire, small_torrent, traced_download, traced_seeder};
use std::io::Write;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn a_finished_leecher_hanging_up_is_a_normal_end() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 200_000, 32_768);
    let port = free_port();
    let mut seeder = traced_seeder(&torrent, &content, port);
    traced_download(&torrent, &dir.path().join("out.bin"), port);
    // The seeder may also dial the leecher's listen port (learned from its extended
    // handshake) just as the leecher exits: that dial's refusal is another connection's story.
    let line = loop {
        let line = seeder.wait_for(": disconnected", DEADLINE);
        if !line.contains("cannot connect") {
            break line;
        }
    };
    assert!(
        line.ends_with("disconnected: the peer closed the connection"),
        "{line}"
    );
}

#[test]
fn an_encrypted_handshake_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 100_000, 32_768);
    // What libtorrent and aria2 send first: a 96-byte Diffie-Hellman public key (random bytes;
    // here the first is 62, which a plain handshake reader takes for `pstrlen`).
    let mut key = common::pseudo_random(96, 5);
    key[0] = 62;
    let send_key = |port: u16| {
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        socket.write_all(&key).unwrap();
        // Nothing more: a key exchange that stops after its first step. Under `--encryption
        // off` the seeder may already have read the first byte and hung up, and then there is
        // no connection left to shut: that is no failure of the test.
        let _ = socket.shutdown(std::net::Shutdown::Write);
    };
    // Under `--encryption off` it is refused, and named for what it is.
    let port = free_port();
    let mut off = peerwire();
    off.args(["-v", "seed"]).arg(&torrent).arg(&content).args([
        "--trace",
        "--port",
        &port.to_string(),
        "--encryption",
        "off",
    ]);
    let mut seeder = StderrLines::spawn(&mut off);
    common::wait_for_tcp(port, DEADLINE, "peerwire seed");
    send_key(port);
    // (The seeder's earlier `closed:` lines are the test's own probes of its port.)
    let line = seeder.wait_for(": closed: not a ", DEADLINE);
    assert!(
        line.contains("first byte 62, not 19")
            && line.contains("encrypted (MSE/PE) handshake, refused under --encryption off"),
        "{line}"
    );
    assert!(!line.contains("pstrlen"), "{line}");
    // By default it is taken as the key exchange it is, and the failure says where it stopped.
    let port = free_port();
    let mut seeder = traced_seeder(&torrent, &content, port);
    send_key(port);
    let line = seeder.wait_for(": closed: encrypted handshake (MSE/PE)", DEADLINE);
    assert!(!line.contains("pstrlen"), "{line}");
}

#[test]
fn a_seed_is_sent_no_have() {
    let dir = tempfile::tempdir().unwrap();
    // 61 pieces: many verify (and would be announced) while the connection is busy.
    let (content, torrent) = small_torrent(dir.path(), 2_000_000, 32_768);
    let port = free_port();
    let _seeder = traced_seeder(&torrent, &content, port);
    let stderr = traced_download(&torrent, &dir.path().join("out.bin"), port);
    let to_seed = format!("127.0.0.1:{port} -> ");
    let sent: Vec<&String> = stderr.iter().filter(|l| l.starts_with(&to_seed)).collect();
    assert!(
        sent.iter().any(|l| l.contains("Request")),
        "the download did talk to the seed: {stderr:?}"
    );
    let haves: Vec<&&String> = sent.iter().filter(|l| l.contains("Have {")).collect();
    assert!(haves.is_empty(), "have sent to a seed: {haves:?}");
}

#[test]
fn a_dialler_that_hangs_up_before_its_handshake_is_said_to() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 100_000, 32_768);
    let port = free_port();
    let mut seeder = traced_seeder(&torrent, &content, port);
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    let line = seeder.wait_for(": closed: ", DEADLINE);
    assert!(
        line.ends_with("closed: the peer closed the connection before its handshake"),
        "{line}"
    );
}
