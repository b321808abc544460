//! Peers that break the protocol, each beside an honest one: the bad peer is dropped with a log
//! line naming the reason, and the download completes with correct bytes.

mod common;

use common::{Script, ScriptedPeer, peerwire, run_with_deadline};
use peerwire::metainfo::Metainfo;
use std::sync::Arc;
use std::time::Duration;

const PIECE: u64 = 65_536;

/// Downloads a 33-piece file from `script` and an honest peer; checks the bytes, and that the
/// log says `expected` about the bad peer (when given).
fn survive(script: Script, expected: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Arc::new(common::pseudo_random(33 * PIECE as usize - 77, 3)); // 33 pieces: 7 spare bits
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &*bytes).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&file, &torrent, &["--piece-length", &PIECE.to_string()]);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let bad = ScriptedPeer::start(info_hash, Arc::clone(&bytes), PIECE, script);
    let good = ScriptedPeer::start(info_hash, Arc::clone(&bytes), PIECE, Script::Paced);
    let out = dir.path().join("out.bin");
    let mut cmd = peerwire();
    cmd.env("RUST_LOG", "peerwire=info")
        .arg("download")
        .arg("-o")
        .arg(&out)
        .arg(&torrent);
    cmd.args([
        "--peer",
        &bad.addr.to_string(),
        "--peer",
        &good.addr.to_string(),
        "--give-up-after",
        "60",
    ]);
    let result = run_with_deadline(&mut cmd, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "{script:?}: the download failed:\n{stderr}"
    );
    assert!(
        std::fs::read(&out).unwrap() == *bytes,
        "{script:?}: the file differs"
    );
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
    survive(Script::UnknownMessage, None);
}

#[test]
fn a_peer_that_trickles_one_byte_a_second() {
    survive(Script::Trickle, None);
}
