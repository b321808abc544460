//! peerwire downloads from a real libtorrent seeder (python3-libtorrent) found through a real
//! tracker (opentracker), and the bytes must be identical. Also `handshake` and
//! `download_piece` against the same seeder.

pub mod common;

use common::{LibtorrentPeer, OpenTracker, peerwire, run_ok};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

/// Three files of odd sizes (about 64 MiB in all): every file boundary falls inside a piece.
fn make_content(seed_dir: &Path) -> PathBuf {
    let content = seed_dir.join("album");
    std::fs::create_dir_all(content.join("disc2")).unwrap();
    std::fs::write(
        content.join("one.bin"),
        common::pseudo_random(33_554_467, 1),
    )
    .unwrap();
    std::fs::write(
        content.join("disc2/two.bin"),
        common::pseudo_random(20_971_501, 2),
    )
    .unwrap();
    std::fs::write(
        content.join("three.bin"),
        common::pseudo_random(12_582_917, 3),
    )
    .unwrap();
    content
}

/// A seeded torrent: content, torrent file, opentracker, libtorrent seeding it.
struct Swarm {
    dir: tempfile::TempDir,
    content: PathBuf,
    torrent: PathBuf,
    _tracker: OpenTracker,
    seeder: LibtorrentPeer,
}

fn swarm() -> Option<Swarm> {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let content = make_content(&seed_dir);
    let torrent = dir.path().join("album.torrent");
    let (tracker, _) = common::opentracker_torrent(&content, &torrent, 262_144)?;
    let seeder = LibtorrentPeer::start(&torrent, &seed_dir, true)?;
    seeder.wait_for("tracker_reply", DEADLINE); // opentracker lists only peers that announced
    Some(Swarm {
        dir,
        content,
        torrent,
        _tracker: tracker,
        seeder,
    })
}

#[test]
fn downloads_a_three_file_torrent_from_libtorrent_through_opentracker() {
    let Some(swarm) = swarm() else { return };
    let out = swarm.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    run_ok(
        peerwire()
            .arg("-q")
            .arg("download")
            .arg("-o")
            .arg(&out)
            .arg(&swarm.torrent)
            .args(["--port", "24001", "--give-up-after", "60"]),
        DEADLINE,
    );
    common::assert_same_files(
        &swarm.content,
        &out.join("album"),
        ["one.bin", "disc2/two.bin", "three.bin"],
        "peerwire",
    );
}

#[test]
fn handshake_and_download_piece_against_libtorrent() {
    let Some(swarm) = swarm() else { return };
    let peer = format!("127.0.0.1:{}", swarm.seeder.port);
    let out = run_ok(
        peerwire().arg("handshake").arg(&swarm.torrent).arg(&peer),
        DEADLINE,
    );
    let id = out.trim().strip_prefix("Peer ID: ").expect("Peer ID: line");
    assert_eq!(id.len(), 40);
    assert!(
        id.starts_with("2d4c54"),
        "libtorrent's peer id starts with -LT: {id}"
    );

    // Files are laid out in name order (disc2/two.bin, one.bin, three.bin); piece 79 holds
    // the end of two.bin (20,971,501 bytes) and the start of one.bin.
    let piece_file = swarm.dir.path().join("piece79");
    let mut fetch = peerwire();
    fetch
        .arg("download_piece")
        .arg("-o")
        .arg(&piece_file)
        .arg(&swarm.torrent)
        .arg("79");
    run_ok(
        fetch.args(["--peer", &peer, "--give-up-after", "60"]),
        DEADLINE,
    );
    let two = std::fs::read(swarm.content.join("disc2/two.bin")).unwrap();
    let one = std::fs::read(swarm.content.join("one.bin")).unwrap();
    let stream = [two, one].concat();
    let expected = &stream[79 * 262_144..80 * 262_144];
    assert!(
        std::fs::read(&piece_file).unwrap() == expected,
        "piece 79 differs from the source"
    );
}
