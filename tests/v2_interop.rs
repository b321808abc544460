//! BitTorrent v2 (BEP 52) with libtorrent, both ways: a v2-only multi-file torrent made by
//! libtorrent 2.0, downloaded by peerwire from a libtorrent seeder (every piece checked against
//! its Merkle root), and downloaded by a libtorrent leecher from `peerwire seed`.

pub mod common;

use common::{LibtorrentPeer, download_from, need_libtorrent_python, peerwire, start_seed};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A file of the content: its path under the torrent's directory's parent, and its bytes.
type Written = (PathBuf, Vec<u8>);

/// Three files of awkward sizes in `dir/multi` (one smaller than a piece, one of several
/// pieces, one in a subdirectory), and a v2-only torrent of them made by libtorrent with
/// 64 KiB pieces. `None` without libtorrent (skipped loudly).
fn libtorrent_v2_torrent(dir: &Path) -> Option<(PathBuf, Vec<Written>)> {
    let python = need_libtorrent_python()?;
    let files = [
        ("multi/a.bin", 100_000usize),
        ("multi/c.bin", 40_000),
        ("multi/sub/b.bin", 1_000_000),
    ];
    let content = dir.join("content");
    let mut written = Vec::new();
    for (i, (name, len)) in files.iter().enumerate() {
        let path = content.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = common::pseudo_random(*len, 52 + i as u64);
        std::fs::write(&path, &bytes).unwrap();
        written.push((PathBuf::from(name), bytes));
    }
    let torrent = dir.join("v2.torrent");
    let script = r#"
import sys, libtorrent as lt
content, out = sys.argv[1], sys.argv[2]
fs = lt.file_storage()
lt.add_files(fs, content + "/multi")
ct = lt.create_torrent(fs, 65536, flags=lt.create_torrent.v2_only)
lt.set_piece_hashes(ct, content)
open(out, "wb").write(lt.bencode(ct.generate()))
"#;
    let made = common::run_with_deadline(
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(&content)
            .arg(&torrent),
        Duration::from_secs(60),
    );
    assert!(made.status.success(), "{made:?}");
    Some((torrent, written))
}

fn assert_files(root: &Path, files: &[Written], what: &str) {
    for (name, bytes) in files {
        common::assert_bytes(
            &root.join(name),
            bytes,
            &format!("{what}: {}", name.display()),
        );
    }
}

/// `peerwire magnet_download -o OUT MAGNET --peer P… --no-dht --port 0 --trace EXTRA…`, run to
/// its end (at most 90 s).
fn magnet_download(
    magnet: &str,
    peers: &[SocketAddr],
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut command = peerwire();
    command.args(["magnet_download", "-o"]).arg(out).arg(magnet);
    for peer in peers {
        command.args(["--peer", &peer.to_string()]);
    }
    command
        .args(["--no-dht", "--port", "0", "--trace"])
        .args(extra);
    common::run_with_deadline(&mut command, Duration::from_secs(90))
}

#[test]
fn peerwire_downloads_a_v2_only_torrent_from_a_libtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let Some((torrent, files)) = libtorrent_v2_torrent(dir.path()) else {
        return;
    };
    let Some(seeder) = LibtorrentPeer::start(&torrent, &dir.path().join("content"), true) else {
        return;
    };
    let out = dir.path().join("out");
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.port));
    let run = download_from(&[peer], &torrent, &out)
        .args(&["--no-dht", "--transport", "tcp"])
        .run();
    run.assert_success();
    assert_files(&out, &files, "the v2 download from libtorrent");
    // 2 + 1 + 16 pieces: each file starts a piece of its own (BEP 52).
    assert!(run.stderr.contains("done: 19 pieces"), "{}", run.stderr);
}

#[test]
fn a_libtorrent_leecher_downloads_a_v2_only_torrent_from_peerwire() {
    let dir = tempfile::tempdir().unwrap();
    let Some((torrent, files)) = libtorrent_v2_torrent(dir.path()) else {
        return;
    };
    let (_seed, port) = start_seed(
        peerwire(),
        &torrent,
        &dir.path().join("content"),
        &["--no-dht", "--transport", "tcp"],
    );
    let save = dir.path().join("leecher");
    std::fs::create_dir_all(&save).unwrap();
    let Some(mut leecher) = LibtorrentPeer::start(&torrent, &save, false) else {
        return;
    };
    leecher.send(&format!("connect 127.0.0.1:{port}"));
    leecher.wait_for("finished", Duration::from_secs(60));
    assert_files(&save, &files, "the v2 download by libtorrent");
}

/// A hybrid torrent (BEP 52) made by libtorrent, for the same content.
fn libtorrent_hybrid_torrent(dir: &Path) -> Option<(PathBuf, Vec<Written>)> {
    let (v2, files) = libtorrent_v2_torrent(dir)?;
    let python = need_libtorrent_python()?;
    let torrent = dir.join("hybrid.torrent");
    let script = r#"
import sys, libtorrent as lt
content, out = sys.argv[1], sys.argv[2]
fs = lt.file_storage()
lt.add_files(fs, content + "/multi")
ct = lt.create_torrent(fs, 65536)
lt.set_piece_hashes(ct, content)
open(out, "wb").write(lt.bencode(ct.generate()))
ti = lt.torrent_info(out)
print(ti.info_hashes().v2)
"#;
    let made = common::run_with_deadline(
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(dir.join("content"))
            .arg(&torrent),
        Duration::from_secs(60),
    );
    assert!(made.status.success(), "{made:?}");
    drop(v2);
    Some((torrent, files))
}

/// A hybrid torrent's seeder is in both swarms at once: a libtorrent leecher with the
/// `.torrent` dials by the SHA-1 info hash (the v1 swarm, as a v1-only client would), and a
/// libtorrent leecher given nothing but a v2 magnet link (`urn:btmh:1220…`) dials with the
/// truncated SHA-256 info hash, fetches the metadata from peerwire and downloads the same
/// files. (Transmission 3.00 would be the natural v1-only leecher, but it refuses every
/// hybrid torrent, the `.torrent` as "invalid or corrupt" and the metadata of a v1 magnet
/// link too; aria2c 1.36 loads one but computes another v1 info hash. docs/v2.md says more.)
#[test]
fn a_hybrid_seed_serves_the_v1_and_the_v2_swarm_at_once() {
    const DEADLINE: Duration = Duration::from_secs(90);
    let dir = tempfile::tempdir().unwrap();
    let Some((torrent, files)) = libtorrent_hybrid_torrent(dir.path()) else {
        return;
    };
    let metainfo = peerwire::metainfo::Metainfo::from_file(&torrent).unwrap();
    let v2 = metainfo.v2.as_ref().expect("a hybrid has a v2 half");
    let truncated = v2.info_hash.truncated();
    let port = common::free_port();
    let mut seed = peerwire();
    seed.args(["-v", "seed"])
        .arg(&torrent)
        .arg(dir.path().join("content"));
    seed.args([
        "--port",
        &port.to_string(),
        "--no-dht",
        "--transport",
        "tcp",
        "--trace",
    ]);
    let seed = common::StderrLines::spawn(&mut seed);
    common::wait_for_tcp(port, DEADLINE, "peerwire seed");

    let v1_save = dir.path().join("v1");
    std::fs::create_dir_all(&v1_save).unwrap();
    let Some(mut v1_leecher) = LibtorrentPeer::start(&torrent, &v1_save, false) else {
        return;
    };
    let v2_save = dir.path().join("v2");
    std::fs::create_dir_all(&v2_save).unwrap();
    let magnet = format!("magnet:?xt=urn:btmh:1220{}&dn=multi", v2.info_hash.to_hex());
    let Some(mut v2_leecher) = LibtorrentPeer::start_magnet(&magnet, &v2_save) else {
        return;
    };
    v1_leecher.send(&format!("connect 127.0.0.1:{port}"));
    v2_leecher.send(&format!("connect 127.0.0.1:{port}"));
    v1_leecher.wait_for("finished", DEADLINE);
    v2_leecher.wait_for("finished", DEADLINE);
    let stderr = seed.stop("-INT", DEADLINE);
    assert_files(&v1_save, &files, "the leecher of the v1 swarm");
    assert_files(
        &v2_save,
        &files,
        "the leecher of the v2 swarm (a btmh magnet link)",
    );
    // Each swarm by its own name, each answered with the name it used.
    let handshakes: Vec<&String> = stderr.iter().filter(|l| l.contains("Handshake")).collect();
    let named = |hash: &str| handshakes.iter().filter(|l| l.contains(hash)).count();
    assert!(
        named(&metainfo.info_hash.to_hex()) >= 2,
        "no v1 handshakes: {handshakes:#?}"
    );
    assert!(
        named(&truncated.to_hex()) >= 2,
        "no handshakes by the truncated v2 hash {truncated}: {handshakes:#?}"
    );
}

/// A v2 magnet link (BEP 52's `urn:btmh:1220…`, no v1 hash) of a hybrid torrent: peerwire
/// dials the libtorrent seeder with the truncated SHA-256 hash, checks the metadata against
/// the full SHA-256 hash, and downloads.
#[test]
fn peerwire_downloads_a_v2_magnet_link_from_a_libtorrent_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let Some((torrent, files)) = libtorrent_hybrid_torrent(dir.path()) else {
        return;
    };
    let metainfo = peerwire::metainfo::Metainfo::from_file(&torrent).unwrap();
    let v2 = metainfo.v2.as_ref().expect("a hybrid has a v2 half");
    let Some(seeder) = LibtorrentPeer::start(&torrent, &dir.path().join("content"), true) else {
        return;
    };
    let magnet = format!("magnet:?xt=urn:btmh:1220{}", v2.info_hash.to_hex());
    let out = dir.path().join("out");
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.port));
    let run = magnet_download(&magnet, &[peer], &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_files(&out, &files, "the download of a btmh magnet link");
    let truncated = v2.info_hash.truncated().to_hex();
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("-> Handshake") && l.contains(&truncated)),
        "peerwire did not dial with the truncated v2 hash {truncated}:\n{stderr}"
    );
}

/// `peerwire create --v2` and `--hybrid`, seeded by `peerwire seed`: a libtorrent leecher
/// with each torrent downloads the three files.
#[test]
fn a_libtorrent_leecher_downloads_peerwire_made_v2_and_hybrid_torrents_from_peerwire() {
    let dir = tempfile::tempdir().unwrap();
    // libtorrent's torrent only to lay out the same content; peerwire makes its own below.
    let Some((_, files)) = libtorrent_v2_torrent(dir.path()) else {
        return;
    };
    let content = dir.path().join("content");
    for flag in ["--v2", "--hybrid"] {
        let torrent = dir.path().join(format!("peerwire{flag}.torrent"));
        common::run_ok(
            peerwire()
                .arg("create")
                .arg(content.join("multi"))
                .arg("-o")
                .arg(&torrent)
                .args([flag, "--piece-length", "65536"]),
            Duration::from_secs(60),
        );
        let (_seed, port) = start_seed(
            peerwire(),
            &torrent,
            &content,
            &["--no-dht", "--transport", "tcp"],
        );
        let save = dir.path().join(format!("leecher{flag}"));
        std::fs::create_dir_all(&save).unwrap();
        let Some(mut leecher) = LibtorrentPeer::start(&torrent, &save, false) else {
            return;
        };
        leecher.send(&format!("connect 127.0.0.1:{port}"));
        leecher.wait_for("finished", Duration::from_secs(60));
        assert_files(
            &save,
            &files,
            &format!("libtorrent's download of `create {flag}`"),
        );
    }
}

/// A v2 magnet link of a v2-only torrent: the info dictionary has only each file's root, so
/// peerwire asks the seeder for the piece layers (BEP 52 `hash request`), checks each against
/// its root, and downloads. From libtorrent, and from `peerwire seed` (which answers them).
#[test]
fn peerwire_downloads_a_v2_only_magnet_link_fetching_the_piece_layers_from_peers() {
    let dir = tempfile::tempdir().unwrap();
    let Some((torrent, files)) = libtorrent_v2_torrent(dir.path()) else {
        return;
    };
    let metainfo = peerwire::metainfo::Metainfo::from_file(&torrent).unwrap();
    let magnet = format!(
        "magnet:?xt=urn:btmh:1220{}",
        metainfo.v2.as_ref().unwrap().info_hash.to_hex()
    );
    let content = dir.path().join("content");
    let Some(libtorrent) = LibtorrentPeer::start(&torrent, &content, true) else {
        return;
    };
    let (_seed, port) = start_seed(
        peerwire(),
        &torrent,
        &content,
        &["--no-dht", "--transport", "tcp"],
    );
    for (who, seeder) in [("libtorrent", libtorrent.port), ("peerwire", port)] {
        let out = dir.path().join(format!("from-{who}"));
        let seeder = SocketAddr::from(([127, 0, 0, 1], seeder));
        let run = magnet_download(&magnet, &[seeder], &out, &["--transport", "tcp"]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "from {who}: {stderr}");
        assert!(
            stderr.contains("<- Hashes"),
            "no hashes message from {who}:\n{stderr}"
        );
        assert_files(&out, &files, &format!("the btmh download from {who}"));
    }
}

/// The same with a layer too long for one message: 600 pieces of 16 KiB, asked for 512 hashes
/// at a time, each part proved to the root with its uncle hashes.
#[test]
fn a_piece_layer_longer_than_one_message_comes_in_proved_parts() {
    let Some(python) = need_libtorrent_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    let data = common::pseudo_random(600 * 16_384 - 1_000, 600);
    std::fs::write(content.join("long.bin"), &data).unwrap();
    let torrent = dir.path().join("long.torrent");
    let script = r#"
import sys, libtorrent as lt
content, out = sys.argv[1], sys.argv[2]
fs = lt.file_storage()
lt.add_files(fs, content + "/long.bin")
ct = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v2_only)
lt.set_piece_hashes(ct, content)
open(out, "wb").write(lt.bencode(ct.generate()))
"#;
    let made = common::run_with_deadline(
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(&content)
            .arg(&torrent),
        Duration::from_secs(60),
    );
    assert!(made.status.success(), "{made:?}");
    let metainfo = peerwire::metainfo::Metainfo::from_file(&torrent).unwrap();
    let magnet = format!(
        "magnet:?xt=urn:btmh:1220{}",
        metainfo.v2.as_ref().unwrap().info_hash.to_hex()
    );
    let Some(libtorrent) = LibtorrentPeer::start(&torrent, &content, true) else {
        return;
    };
    let (_seed, port) = start_seed(
        peerwire(),
        &torrent,
        &content,
        &["--no-dht", "--transport", "tcp"],
    );
    for (who, seeder) in [("libtorrent", libtorrent.port), ("peerwire", port)] {
        let out = dir.path().join(format!("from-{who}"));
        let seeder = SocketAddr::from(([127, 0, 0, 1], seeder));
        let run = magnet_download(&magnet, &[seeder], &out, &["--transport", "tcp"]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "from {who}: {stderr}");
        let parts = stderr.lines().filter(|l| l.contains("<- Hashes")).count();
        assert_eq!(parts, 2, "600 hashes in two parts from {who}");
        common::assert_bytes(&out, &data, &format!("from {who}"));
    }
}

/// A hybrid seed announces itself under both names (BEP 52): the tracker lists it in the v1
/// swarm (SHA-1 info hash) and in the v2 swarm (the truncated SHA-256 one).
#[test]
fn a_hybrid_seed_announces_under_both_of_its_names() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("both.bin");
    std::fs::write(&content, common::pseudo_random(200_000, 47)).unwrap();
    let tracker = common::local_tracker(Duration::from_secs(60));
    let url = tracker.announce_url().unwrap();
    let torrent = dir.path().join("both.torrent");
    common::run_ok(
        peerwire()
            .arg("create")
            .arg(&content)
            .arg("-o")
            .arg(&torrent)
            .args(["--hybrid", "-t", &url]),
        Duration::from_secs(30),
    );
    let metainfo = peerwire::metainfo::Metainfo::from_file(&torrent).unwrap();
    let v1 = metainfo.info_hash;
    let v2 = metainfo.v2.as_ref().unwrap().info_hash.truncated();
    let (_seed, port) = start_seed(peerwire(), &torrent, &content, &["--no-dht"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let listed = |name| tracker.peers(name).iter().any(|p| p.addr.port() == port);
    while !(listed(v1) && listed(v2)) {
        assert!(
            std::time::Instant::now() < deadline,
            "after 30 s the tracker lists the seed under v1: {}, v2: {}",
            listed(v1),
            listed(v2)
        );
        std::thread::yield_now();
    }
}

/// A peer that serves the metadata of a v2-only torrent but answers every hash request with
/// a hash reject: peerwire gives up on it and takes the piece layers from the next peer; with
/// no other peer, the download stops with one line naming the peer and the file, writing
/// nothing. (No libtorrent needed: peerwire makes and seeds the torrent.)
#[test]
fn a_peer_that_rejects_every_hash_request_is_left_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("layers.bin");
    let data = common::pseudo_random(300_000, 23);
    std::fs::write(&content, &data).unwrap();
    let torrent = dir.path().join("layers.torrent");
    common::run_ok(
        peerwire()
            .arg("create")
            .arg(&content)
            .arg("-o")
            .arg(&torrent)
            .args(["--v2", "--piece-length", "16384"]),
        Duration::from_secs(30),
    );
    let metainfo = peerwire::metainfo::Metainfo::from_file(&torrent).unwrap();
    let v2 = metainfo.v2.as_ref().unwrap().info_hash;
    let magnet = format!("magnet:?xt=urn:btmh:1220{}", v2.to_hex());
    let liar = common::ScriptedPeer::start_with_metadata(
        metainfo.info_hash,
        Arc::new(data.clone()),
        metainfo.info.piece_length,
        common::Script::RejectHashes,
        Some(Arc::clone(&metainfo.info_bytes)),
    );
    let alone = dir.path().join("alone.bin");
    let refused = magnet_download(&magnet, &[liar.addr], &alone, &["--transport", "tcp"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("it refused the hash request for layers.bin"),
        "{stderr}"
    );
    assert!(!alone.exists(), "nothing is written without the layers");
    let (_seed, port) = start_seed(
        peerwire(),
        &torrent,
        &content,
        &["--no-dht", "--transport", "tcp"],
    );
    let honest = SocketAddr::from(([127, 0, 0, 1], port));
    let out = dir.path().join("out.bin");
    let run = magnet_download(&magnet, &[liar.addr, honest], &out, &["--transport", "tcp"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    common::assert_bytes(&out, &data, "the download after the liar");
}
