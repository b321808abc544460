//! aria2c as a real peer, both ways: an aria2c leecher downloads a three-file torrent from
//! `peerwire seed` alone, and peerwire downloads it from an aria2c seeder alone; the bytes must
//! be identical. The driver and what aria2c needs on 127.0.0.1 are in `tests/common/aria2.rs`.
//!
//! aria2c (1.36) tells its peers about new pieces with a whole BITFIELD instead of a batch of
//! HAVEs whenever that is shorter (`5 + bitfield length ≤ 9 × new pieces`: 2 new pieces of
//! the 100 here), in the middle of the connection. A peer that hangs up on such a late
//! bitfield gets banned by aria2c, and the download stops. peerwire, as the seed, receives
//! them as the leecher gets pieces; its debug log names each one, and the first test checks
//! that there was at least one, so it proves the late bitfields were taken, not avoided.

pub mod common;

use common::aria2::Aria2;
use common::peerwire;
use peerwire::metainfo::{InfoHash, Metainfo};
use peerwire::tracker_server::RunningTracker;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The files of the torrent and their sizes: 6.2 MiB, boundaries inside 64 KiB pieces.
const FILES: [(&str, usize); 3] = [
    ("one.bin", 3_000_017),
    ("disc2/two.bin", 2_000_003),
    ("three.bin", 1_500_007),
];
/// 100 pieces: aria2c's bitfield is 13 bytes, shorter than the HAVEs of 2 new pieces.
const PIECE_LENGTH: &str = "65536";
/// The debug line of `src/peer/thread.rs` for a bitfield after other messages.
const LATE_BITFIELD: &str = "a bitfield after other messages";

/// The seeder's data in `seed/album`, and a torrent of it announced to the built-in tracker.
struct Album {
    dir: tempfile::TempDir,
    content: PathBuf,
    torrent: PathBuf,
    info_hash: InfoHash,
    tracker: RunningTracker,
}

fn album() -> Album {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("seed").join("album");
    std::fs::create_dir_all(content.join("disc2")).unwrap();
    for (i, (name, len)) in FILES.iter().enumerate() {
        let bytes = common::pseudo_random(*len, i as u64 + 80);
        std::fs::write(content.join(name), bytes).unwrap();
    }
    // One minute between announces: nobody re-announces during a test, so the peer that
    // starts second finds the first in its first tracker reply and does the dialling.
    let tracker = common::local_tracker(Duration::from_secs(60));
    let url = tracker.announce_url().expect("the tracker speaks HTTP");
    let torrent = dir.path().join("album.torrent");
    let flags = ["--piece-length", PIECE_LENGTH, "-t", &url];
    common::create_torrent(&content, &torrent, &flags);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    Album {
        dir,
        content,
        torrent,
        info_hash,
        tracker,
    }
}

impl Album {
    /// A fresh directory for a leecher's download.
    fn leech_dir(&self, who: &str) -> PathBuf {
        let dir = self.dir.path().join(who);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Waits until the tracker lists a peer on `port`: it has announced, and whoever announces
    /// after it will hear of it.
    fn wait_until_listed(&self, port: u16, who: &str) {
        let until = Instant::now() + Duration::from_secs(20);
        while !self
            .tracker
            .peers(self.info_hash)
            .iter()
            .any(|peer| peer.addr.port() == port)
        {
            assert!(
                Instant::now() < until,
                "{who} never announced on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
        }
    }

    /// Every file under `dir/album` is identical to the seeder's.
    fn assert_same(&self, dir: &Path, who: &str) {
        let names = FILES.iter().map(|(name, _)| *name);
        common::assert_same_files(&self.content, &dir.join("album"), names, who);
    }
}

#[test]
fn an_aria2_leecher_downloads_from_peerwire_seed_through_late_bitfields() {
    let album = album();
    let log_path = album.dir.path().join("seeder.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut seed = peerwire();
    // Debug for the peer thread only: the line naming each late bitfield, not every message.
    seed.env("RUST_LOG", "peerwire=info,peerwire::peer::state=debug")
        .stderr(Stdio::from(log));
    let (seeder, seed_port) = common::start_seed(seed, &album.torrent, &album.content, &[]);
    album.wait_until_listed(seed_port, "peerwire seed");

    let save = album.leech_dir("aria2");
    let Some(mut leecher) = Aria2::leech(&album.torrent, &save) else {
        return;
    };
    let finished = leecher.wait(Duration::from_secs(45));
    drop(seeder);
    let seeder_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if let Err(e) = finished {
        panic!("aria2c did not finish: {e}\n--- peerwire seed ---\n{seeder_log}");
    }
    album.assert_same(&save, "aria2c");
    let late = seeder_log.matches(LATE_BITFIELD).count();
    assert!(
        late > 0,
        "aria2c sent no late bitfield, so this test proved nothing about them:\n{seeder_log}"
    );
}

#[test]
fn peerwire_downloads_from_an_aria2_seeder() {
    let album = album();
    let Some(seeder) = Aria2::seed(&album.torrent, &album.dir.path().join("seed")) else {
        return;
    };
    album.wait_until_listed(seeder.port, "the aria2c seeder");

    let out = album.leech_dir("peerwire");
    let port = common::free_port().to_string();
    let mut download = peerwire();
    download
        .env("RUST_LOG", "peerwire=info")
        .arg("download")
        .arg("-o")
        .arg(&out)
        .arg(&album.torrent)
        .args(["--port", &port, "--give-up-after", "30"]);
    let result = common::run_with_deadline(&mut download, Duration::from_secs(45));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "the download failed:\n{stderr}\n{}",
        seeder.log_tail()
    );
    album.assert_same(&out, "peerwire");
}
