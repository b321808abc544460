//! peerwire downloads from a real Transmission seeder (Debian `transmission-daemon`), and the
//! bytes must be identical. Transmission decides interest and unchoking in a 10-second pulse,
//! so the first block can take ~10-15 s (INTEROP.md).

mod common;

use common::{Transmission, peerwire, run_ok};
use std::path::Path;
use std::time::Duration;

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn same_tree(a: &Path, b: &Path, names: &[&str]) {
    for name in names {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(x == y, "{name} differs ({} vs {} bytes)", x.len(), y.len());
    }
}

#[test]
fn downloads_a_three_file_torrent_from_transmission() {
    let Some(transmission) = Transmission::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    let content = seed_dir.join("album");
    std::fs::create_dir_all(content.join("disc2")).unwrap();
    let names = ["one.bin", "disc2/two.bin", "three.bin"];
    for (i, (name, len)) in names
        .iter()
        .zip([9_437_201usize, 5_242_871, 3_145_757])
        .enumerate()
    {
        std::fs::write(content.join(name), pseudo_random(len, i as u64 + 10)).unwrap();
    }
    let torrent = dir.path().join("album.torrent");
    common::create_torrent(&content, &torrent, &["--piece-length", "262144"]);
    transmission.add(&torrent, &seed_dir);
    transmission.wait_until_complete(Duration::from_secs(60));

    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let peer = format!("127.0.0.1:{}", transmission.peer_port);
    let mut download = peerwire();
    download
        .arg("-q")
        .arg("download")
        .arg("-o")
        .arg(&out)
        .arg(&torrent);
    run_ok(
        download.args(["--peer", &peer, "--give-up-after", "90"]),
        Duration::from_secs(180),
    );
    same_tree(&content, &out.join("album"), &names);
}
