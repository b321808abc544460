//! Crash-safety (walkthrough §9): a download killed with SIGKILL at five random
//! moments and restarted each time ends byte-identical; every restart finds on disk exactly
//! the pieces that verified before the kill (none is lost), and the last run fetches only the
//! rest.

pub mod common;

use common::{Script, ScriptedPeer, download_from, peerwire};
use peerwire::metainfo::Metainfo;
use peerwire::piece::PieceLayout;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

const PIECE: u64 = 65_536;
const PIECES: usize = 80;

/// Pieces of `path` that hash right, counted by the test itself, and their bytes.
fn verified_on_disk(path: &Path, layout: &PieceLayout) -> (usize, u64) {
    let data = std::fs::read(path).unwrap_or_default();
    let good: Vec<u32> = (0..layout.num_pieces() as u32)
        .filter(|&i| {
            let start = layout.piece_offset(i) as usize;
            let end = start + layout.piece_len(i) as usize;
            end <= data.len() && layout.verify(i, &data[start..end])
        })
        .collect();
    let bytes = good.iter().map(|&i| u64::from(layout.piece_len(i))).sum();
    (good.len(), bytes)
}

/// The `K` of `resume: K of N pieces already on disk` in a run's log.
fn resumed_with(log: &str) -> usize {
    let line = log
        .lines()
        .find(|l| l.contains("resume: "))
        .unwrap_or_else(|| panic!("no resume line in:\n{log}"));
    let after = line.split("resume: ").nth(1).unwrap();
    after.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn five_kills_lose_no_verified_piece() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Arc::new(common::pseudo_random(PIECES * PIECE as usize - 300, 31));
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &*bytes).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&file, &torrent, &["--piece-length", &PIECE.to_string()]);
    let metainfo = Metainfo::from_file(&torrent).unwrap();
    let layout = PieceLayout::new(&metainfo.info);
    // About 3 s for the whole download: a block every 10 ms.
    let seeder = ScriptedPeer::start(metainfo.info_hash, Arc::clone(&bytes), PIECE, Script::Paced);
    let out = dir.path().join("out.bin");
    let peer = seeder.addr.to_string();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut verified_before = 0;
    for kill in 1..=5 {
        let log_path = dir.path().join(format!("run{kill}.log"));
        let mut run = peerwire()
            .env("RUST_LOG", "peerwire=info")
            .arg("download")
            .arg("-o")
            .arg(&out)
            .arg(&torrent)
            .args(["--peer", &peer, "--port", "0"])
            .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
            .spawn()
            .unwrap();
        let moment = Duration::from_millis(rng.u64(150..700));
        std::thread::sleep(moment); // the random moment of the kill is the point of the test
        run.kill().unwrap(); // SIGKILL
        run.wait().unwrap();
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("resume: ") {
            assert_eq!(
                resumed_with(&log),
                verified_before,
                "run {kill} lost pieces:\n{log}"
            );
        }
        let (verified, _) = verified_on_disk(&out, &layout);
        eprintln!("kill {kill} after {moment:?}: {verified} of {PIECES} pieces verified on disk");
        assert!(
            verified >= verified_before,
            "run {kill}: {verified} < {verified_before}"
        );
        verified_before = verified;
    }
    assert!(
        verified_before < PIECES,
        "the kills came too late to test anything"
    );
    let missing_bytes = bytes.len() as u64 - verified_on_disk(&out, &layout).1;
    let stderr = download_from(&[seeder.addr], &torrent, &out)
        .env("RUST_LOG", "peerwire=info")
        .expect_bytes(&bytes)
        .stderr;
    assert_eq!(resumed_with(&stderr), verified_before, "{stderr}");
    let fetched = stderr
        .lines()
        .find(|l| l.starts_with("done: "))
        .and_then(|l| l.split(" bytes downloaded this run").next())
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    assert_eq!(
        fetched, missing_bytes,
        "the last run fetched more than what was missing"
    );
}
