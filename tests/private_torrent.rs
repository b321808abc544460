//! Private torrents speak no PEX (BEP 27, walkthrough §14).
//!
//! A private torrent's peers must come from its tracker only, so a client must not trade peer
//! lists for it. A raw client (peerwire's wire module over a `TcpStream`) connects to
//! `peerwire seed` with the extension bit set and reads the seed's extended handshake: for a
//! public torrent its `m` lists `ut_pex`, for the same data made private it does not. The
//! public case is checked too, so that the test fails if the handshake stops being read at all.

pub mod common;

use common::peerwire;
use peerwire::metainfo::{InfoHash, Metainfo};
use peerwire::wire::extension::ExtendedHandshake;
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;

/// Seeds `data` as a torrent made with `extra` `create` flags, and returns the extended
/// handshake the seed sends a client that supports extensions.
fn seeds_extended_handshake(dir: &Path, data: &Path, extra: &[&str]) -> ExtendedHandshake {
    let torrent = dir.join(format!("data{}.torrent", extra.len()));
    common::create_torrent(data, &torrent, extra);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let mut quiet = peerwire();
    quiet.stderr(Stdio::null());
    let (_seed, port) = common::start_seed(quiet, &torrent, data, &[]);
    read_extended_handshake(port, info_hash)
}

fn read_extended_handshake(port: u16, info_hash: InfoHash) -> ExtendedHandshake {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the seed");
    let payload = common::extended_handshake_payload(&mut stream, info_hash);
    ExtendedHandshake::from_payload(&payload).expect("a valid handshake")
}

#[test]
fn a_private_torrent_offers_no_pex_and_a_public_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.bin");
    std::fs::write(&data, common::pseudo_random(100_000, 27)).unwrap();

    let public = seeds_extended_handshake(dir.path(), &data, &[]);
    assert!(public.id_of("ut_pex").is_some(), "public: {public:?}");
    assert!(public.id_of("ut_metadata").is_some(), "public: {public:?}");

    let private = seeds_extended_handshake(dir.path(), &data, &["--private"]);
    assert_eq!(private.id_of("ut_pex"), None, "private: {private:?}");
}
