//! Swarms with peers that lie or leave: peerwire must still finish with correct bytes.
//! - a scripted liar (every block corrupted) beside a real libtorrent seeder: the liar is banned;
//! - a peer that disconnects halfway and one that chokes halfway, beside an honest one.

pub mod common;

use common::{LibtorrentPeer, Script, ScriptedPeer, download_from};
use peerwire::metainfo::Metainfo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PIECE: u64 = 262_144;

/// A single-file torrent of 8 MiB + a bit (33 pieces); returns (seed dir, file, torrent, bytes).
fn content(dir: &Path) -> (PathBuf, PathBuf, PathBuf, Arc<Vec<u8>>) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let bytes = common::pseudo_random(8 * 1024 * 1024 + 12_345, 42);
    let file = seed_dir.join("data.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = dir.join("data.torrent");
    common::create_torrent(&file, &torrent, &["--piece-length", &PIECE.to_string()]);
    (seed_dir, file, torrent, Arc::new(bytes))
}

#[test]
fn a_liar_is_banned_and_the_download_completes_from_libtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let (seed_dir, _, torrent, bytes) = content(dir.path());
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let liar = ScriptedPeer::start(
        info_hash,
        Arc::clone(&bytes),
        PIECE,
        Script::CorruptEveryBlock,
    );
    let Some(seeder) = LibtorrentPeer::start(&torrent, &seed_dir, true) else {
        return;
    };
    let honest: SocketAddr = format!("127.0.0.1:{}", seeder.port).parse().unwrap();
    let out = dir.path().join("out.bin");
    let stderr = download_from(&[liar.addr, honest], &torrent, &out)
        .expect_bytes(&bytes)
        .stderr;
    let banned = format!("{}: banned", liar.addr);
    assert!(
        stderr.contains(&banned),
        "the liar was not banned:\n{stderr}"
    );
    assert!(
        !stderr.contains(&format!("{honest}: banned")),
        "the honest peer was banned:\n{stderr}"
    );
}

#[test]
fn peers_that_disconnect_or_choke_halfway_do_not_stop_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, torrent, bytes) = content(dir.path());
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let leaver = ScriptedPeer::start(
        info_hash,
        Arc::clone(&bytes),
        PIECE,
        Script::DisconnectAfter(100),
    );
    let choker = ScriptedPeer::start(
        info_hash,
        Arc::clone(&bytes),
        PIECE,
        Script::ChokeAfter(100),
    );
    let honest = ScriptedPeer::start(info_hash, Arc::clone(&bytes), PIECE, Script::Honest);
    let out = dir.path().join("out.bin");
    download_from(&[leaver.addr, choker.addr, honest.addr], &torrent, &out).expect_bytes(&bytes);
    let served = |p: &ScriptedPeer| p.blocks_served.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        served(&leaver) > 0 && served(&choker) > 0,
        "both misbehaving peers served something first"
    );
}
