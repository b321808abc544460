//! Peers that break the protocol, each beside an honest one: the bad peer is dropped with a log
//! line naming the reason, and the download completes with correct bytes.

pub mod common;

use common::{Script, ScriptedPeer, download_from};
use peerwire::metainfo::Metainfo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const PIECE: u64 = 65_536;

/// Downloads a 33-piece file from the scripted peers `scripts` (and nobody else); checks the
/// bytes and returns the peers (with what each served) and the log.
fn download_from_scripts(scripts: &[Script]) -> (Vec<ScriptedPeer>, String) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Arc::new(common::pseudo_random(33 * PIECE as usize - 77, 3)); // 33 pieces: 7 spare bits
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &*bytes).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&file, &torrent, &["--piece-length", &PIECE.to_string()]);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let peers: Vec<ScriptedPeer> = scripts
        .iter()
        .map(|script| ScriptedPeer::start(info_hash, Arc::clone(&bytes), PIECE, *script))
        .collect();
    let out = dir.path().join("out.bin");
    let addrs: Vec<SocketAddr> = peers.iter().map(|p| p.addr).collect();
    let downloaded = download_from(&addrs, &torrent, &out)
        .env("RUST_LOG", "peerwire=info")
        .expect_bytes(&bytes);
    (peers, downloaded.stderr)
}

/// Downloads from `script` and an honest peer; checks the bytes, and that the log says
/// `expected` about the bad peer (when given). Returns the blocks the bad peer served.
fn survive(script: Script, expected: Option<&str>) -> usize {
    let (peers, stderr) = download_from_scripts(&[script, Script::Paced]);
    let bad = &peers[0];
    if let Some(reason) = expected {
        let line = format!("{}: disconnected: ", bad.addr);
        let dropped = stderr
            .lines()
            .find(|l| l.contains(&line))
            .unwrap_or_else(|| panic!("{script:?}: not dropped:\n{stderr}"));
        assert!(
            dropped.contains(reason),
            "{script:?}: dropped for another reason: {dropped}"
        );
    }
    bad.blocks_served.load(Ordering::Relaxed)
}

#[test]
fn wrong_info_hash() {
    survive(Script::WrongInfoHash, Some("on another torrent"));
}

#[test]
fn wrong_protocol_string() {
    survive(Script::BadPstr, Some("not a BitTorrent handshake"));
}

#[test]
fn a_4_gib_length_prefix() {
    survive(
        Script::HugeLength,
        Some("message length 4294967295 is over the limit"),
    );
}

#[test]
fn a_bitfield_of_the_wrong_size() {
    survive(
        Script::LongBitfield,
        Some("bitfield of 6 bytes, expected 5"),
    );
}

#[test]
fn a_bitfield_with_spare_bits_set() {
    survive(Script::SpareBits, Some("spare bits"));
}

#[test]
fn have_out_of_range() {
    survive(Script::HaveOutOfRange, Some("no such piece"));
}

#[test]
fn blocks_nobody_asked_for() {
    survive(Script::UnsolicitedPieces, Some("blocks nobody asked for"));
}

#[test]
fn an_unknown_message_id_is_skipped_not_fatal() {
    // The unknown message comes right after the bitfield: a peer still served blocks after
    // it was not dropped for it.
    let served = survive(Script::UnknownMessage, None);
    assert!(
        served > 0,
        "the peer that sent an unknown id served nothing"
    );
}

#[test]
fn a_garbled_extension_message_is_ignored_not_fatal() {
    let served = survive(Script::GarbledPex, None);
    assert!(
        served > 0,
        "the peer that sent a garbled ut_pex served nothing"
    );
}

#[test]
fn a_late_bitfield_updates_what_the_peer_has() {
    // The only peer announces half its pieces, then the rest in a second bitfield: the
    // download can finish only if that bitfield is taken as an update.
    let (peers, stderr) = download_from_scripts(&[Script::LateBitfield]);
    let served = peers[0].blocks_served.load(Ordering::Relaxed);
    assert!(served >= 33 * 4, "served only {served} blocks:\n{stderr}");
}

#[test]
fn a_peer_that_trickles_one_byte_a_second() {
    survive(Script::Trickle, None);
}
