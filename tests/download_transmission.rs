//! peerwire downloads from a real Transmission seeder (Debian `transmission-daemon`), and the
//! bytes must be identical. Transmission decides interest and unchoking in a 10-second pulse,
//! so the first block can take ~10-15 s: the deadlines here allow for it.

pub mod common;

use common::{LibtorrentPeer, OpenTracker, Script, ScriptedPeer, Transmission, peerwire, run_ok};
use peerwire::metainfo::Metainfo;
use std::time::Duration;

/// A three-file torrent announced to opentracker, seeded by Transmission (which has finished
/// its hash check and announced). Returns what the tests need; `None` skips.
struct Swarm {
    dir: tempfile::TempDir,
    seed_dir: std::path::PathBuf,
    content: std::path::PathBuf,
    torrent: std::path::PathBuf,
    tracker: OpenTracker,
    transmission: Transmission,
}

const NAMES: [&str; 3] = ["one.bin", "disc2/two.bin", "three.bin"];

fn swarm() -> Option<Swarm> {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let content = seed_dir.join("album");
    std::fs::create_dir_all(content.join("disc2")).unwrap();
    for (i, (name, len)) in NAMES
        .iter()
        .zip([9_437_201usize, 5_242_871, 3_145_757])
        .enumerate()
    {
        std::fs::write(
            content.join(name),
            common::pseudo_random(len, i as u64 + 10),
        )
        .unwrap();
    }
    let torrent = dir.path().join("album.torrent");
    let (tracker, _) = common::opentracker_torrent(&content, &torrent, 262_144)?;
    let transmission = Transmission::start()?;
    transmission.add(&torrent, &seed_dir);
    transmission.wait_until_complete(Duration::from_secs(60));
    transmission.wait_until_announced(Duration::from_secs(60));
    Some(Swarm {
        dir,
        seed_dir,
        content,
        torrent,
        tracker,
        transmission,
    })
}

#[test]
fn downloads_a_three_file_torrent_from_transmission_through_opentracker() {
    let Some(swarm) = swarm() else { return };
    let out = swarm.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut download = peerwire();
    download
        .arg("-q")
        .arg("download")
        .arg("-o")
        .arg(&out)
        .arg(&swarm.torrent);
    run_ok(
        download.args(["--give-up-after", "90"]),
        Duration::from_secs(180),
    );
    common::assert_same_files(&swarm.content, &out.join("album"), NAMES, "peerwire");
    let _ = &swarm.tracker;
}

/// Transmission and libtorrent seed together, and a scripted liar corrupts every block:
/// peerwire finishes with correct data and bans the liar.
#[test]
fn libtorrent_and_transmission_seed_together_beside_a_liar() {
    let Some(swarm) = swarm() else { return };
    let Some(libtorrent) = LibtorrentPeer::start(&swarm.torrent, &swarm.seed_dir, true) else {
        return;
    };
    libtorrent.wait_for("tracker_reply", Duration::from_secs(60));
    let metainfo = Metainfo::from_file(&swarm.torrent).unwrap();
    let stream: Vec<u8> = NAMES_IN_TORRENT_ORDER
        .iter()
        .flat_map(|n| std::fs::read(swarm.content.join(n)).unwrap())
        .collect();
    let liar = ScriptedPeer::start(
        metainfo.info_hash,
        std::sync::Arc::new(stream),
        262_144,
        Script::CorruptEveryBlock,
    );
    let out = swarm.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut download = peerwire();
    download
        .arg("download")
        .arg("-o")
        .arg(&out)
        .arg(&swarm.torrent);
    let peers = [
        liar.addr.to_string(),
        format!("127.0.0.1:{}", swarm.transmission.peer_port),
    ];
    download.args([
        "--peer",
        &peers[0],
        "--peer",
        &peers[1],
        "--give-up-after",
        "90",
    ]);
    let result = common::run_with_deadline(&mut download, Duration::from_secs(180));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    common::assert_same_files(&swarm.content, &out.join("album"), NAMES, "peerwire");
    assert!(
        stderr.contains(&format!("{}: banned", liar.addr)),
        "the liar was not banned:\n{stderr}"
    );
}

/// The files in the order of the torrent's byte stream (names sorted at each level).
const NAMES_IN_TORRENT_ORDER: [&str; 3] = ["disc2/two.bin", "one.bin", "three.bin"];
