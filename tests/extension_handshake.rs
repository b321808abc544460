//! What peerwire says about itself in its extended handshake (BEP 10, Extension Protocol;
//! walkthrough §13), on a connection the peer dialled and on one peerwire dialled.
//!
//! A raw client (peerwire's wire module over a `TcpStream`) reads the handshake of
//! `peerwire seed` and checks the keys a real client acts on:
//! - `p`, the port peerwire listens on. A connection's source port says nothing about it, so
//!   without `p` a peer that was dialled cannot pass peerwire's address on (PEX) or dial it
//!   back. It was once missing on the connections peerwire accepted.
//! - `yourip`, the address peerwire sees the peer at: 4 bytes for IPv4.
//! - `reqq`, how many requests peerwire queues, and `v`, its name and version.

pub mod common;

use common::peerwire;
use peerwire::metainfo::{InfoHash, Metainfo};
use peerwire::wire::extension::ExtendedHandshake;
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// A small torrent and its data: (temp dir, data file, .torrent, info hash).
fn lesson() -> (tempfile::TempDir, PathBuf, PathBuf, InfoHash) {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = common::small_torrent(dir.path(), 100_000, 16_384);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    (dir, content, torrent, info_hash)
}

/// Checks the keys of `payload`, the extended handshake of a seed listening on `seed_port`,
/// as received on 127.0.0.1.
fn assert_says_port_address_queue_and_name(payload: &[u8], seed_port: u16) {
    let shown = payload.escape_ascii().to_string();
    let theirs = ExtendedHandshake::from_payload(payload).expect("a valid extended handshake");
    assert_eq!(theirs.listen_port, Some(seed_port), "`p` in {shown}");
    assert_eq!(
        theirs.your_ip,
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "`yourip` in {shown}"
    );
    // The parser would take 16 bytes too (IPv6): the bytes themselves must be the 4 of IPv4.
    let four_bytes: &[u8] = b"6:yourip4:\x7f\x00\x00\x01";
    assert!(
        payload.windows(four_bytes.len()).any(|w| w == four_bytes),
        "`yourip` is not 4 bytes in {shown}"
    );
    assert!(theirs.request_queue.is_some(), "no `reqq` in {shown}");
    let client = theirs.client.unwrap_or_default();
    assert!(client.starts_with("peerwire "), "`v` is {client:?}");
}

#[test]
fn a_peer_that_dials_the_seed_hears_its_port_and_address() {
    let (_dir, content, torrent, info_hash) = lesson();
    let mut quiet = peerwire();
    quiet.stderr(Stdio::null());
    let (_seed, seed_port) = common::start_seed(quiet, &torrent, &content, &[]);

    let mut stream = TcpStream::connect(("127.0.0.1", seed_port)).expect("connect to the seed");
    let payload = common::extended_handshake_payload(&mut stream, info_hash);
    assert_says_port_address_queue_and_name(&payload, seed_port);
}

#[test]
fn a_peer_the_seed_dials_hears_its_port_and_address() {
    let (_dir, content, torrent, info_hash) = lesson();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let us = listener.local_addr().expect("our address").to_string();
    // `accept` has no timeout: it waits on its own thread, and the test waits with a deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("accept the seed".into())
        .spawn(move || {
            let _ = tx.send(listener.accept());
        })
        .expect("spawn the accepting thread");
    let mut quiet = peerwire();
    quiet.stderr(Stdio::null());
    let (_seed, seed_port) = common::start_seed(quiet, &torrent, &content, &["--peer", &us]);

    let (mut stream, _) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the seed dials its --peer within 20 s")
        .expect("accept the seed's connection");
    let payload = common::extended_handshake_payload(&mut stream, info_hash);
    assert_says_port_address_queue_and_name(&payload, seed_port);
}
