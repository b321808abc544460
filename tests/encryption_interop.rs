//! Encrypted connections (MSE/PE) with libtorrent that accepts nothing else (in and out policy
//! forced, RC4 only), both ways, through the real peer threads:
//!
//! - `peerwire download` (default `--encryption prefer`) from such a seeder: its plain
//!   handshake is refused, it dials again with MSE and downloads byte-identical;
//! - `peerwire download --encryption require` from it: MSE at once;
//! - such a libtorrent leecher dials `peerwire seed` (default policy) with MSE and downloads;
//! - `--encryption off` does not reach it;
//! - aria2c seeding with `--bt-require-crypto=true`, and Transmission with encryption
//!   required: peerwire downloads from each;
//! - an aria2c leecher with `--bt-require-crypto=true` downloads from `peerwire seed` (it finds
//!   the seed at the built-in tracker and dials it with MSE);
//! - a Transmission leecher with encryption required (`-er`) downloads from `peerwire seed
//!   --encryption require`, which dials it (Transmission does not dial peers on 127.0.0.1);
//!   Transmission's own debug log says the handshake came encrypted and it chose RC4.
//!
//! With `--trace`, the messages are still shown in clear, after one line saying the stream is
//! encrypted.

pub mod common;

use common::aria2::Aria2;
use common::transmission::Transmission;
use common::{LibtorrentPeer, download_from, peerwire, small_torrent, start_seed};
use peerwire::trace::Direction;
use peerwire::wire::Message;
use std::net::SocketAddr;
use std::time::Duration;

const PIECE: u32 = 32_768;

#[test]
fn peerwire_downloads_from_a_libtorrent_seeder_that_requires_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 600_000, PIECE);
    let Some(seeder) = LibtorrentPeer::start_with(
        &torrent,
        content.parent().unwrap(),
        true,
        &["--encryption", "forced"],
    ) else {
        return;
    };
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.port));
    let expected = std::fs::read(&content).unwrap();
    // The default policy: plain first, refused, then MSE; and `require`: MSE at once.
    for (n, extra) in [&["--trace"][..], &["--encryption", "require"][..]]
        .iter()
        .enumerate()
    {
        let out = dir.path().join(format!("out{n}.bin"));
        let run = download_from(&[peer], &torrent, &out).args(extra).run();
        run.assert_success();
        common::assert_bytes(&out, &expected, "the file from an encrypting libtorrent");
        if n == 0 {
            assert!(
                run.stderr.contains("stream encrypted (MSE/PE, RC4)"),
                "the trace says the stream is encrypted:\n{}",
                run.stderr
            );
            assert!(
                run.stderr.contains("<- Piece"),
                "messages are traced in clear"
            );
        }
    }
    // `off` cannot reach it.
    let out = dir.path().join("plain.bin");
    let run = download_from(&[peer], &torrent, &out)
        .args(&["--encryption", "off"])
        .give_up_after(3)
        .run();
    assert!(!run.status.success(), "a plain download got through");
}

#[test]
fn a_libtorrent_leecher_that_requires_encryption_downloads_from_peerwire() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 600_000, PIECE);
    let (_seed, port) = start_seed(peerwire(), &torrent, &content, &["--no-dht"]);
    let leech = dir.path().join("leech");
    std::fs::create_dir_all(&leech).unwrap();
    let Some(mut leecher) =
        LibtorrentPeer::start_with(&torrent, &leech, false, &["--encryption", "forced"])
    else {
        return;
    };
    leecher.send(&format!("connect 127.0.0.1:{port}"));
    leecher.wait_for("finished", Duration::from_secs(60));
    common::assert_bytes(
        &leech.join("lesson.bin"),
        &std::fs::read(&content).unwrap(),
        "the file libtorrent got from peerwire over MSE",
    );
}

#[test]
fn peerwire_downloads_from_an_aria2_seeder_that_requires_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 600_000, PIECE);
    let crypto = ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"];
    let Some(seeder) = Aria2::seed_with(&torrent, content.parent().unwrap(), &crypto) else {
        return;
    };
    common::wait_for_tcp(seeder.port, Duration::from_secs(30), "the aria2c seeder");
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.port));
    let out = dir.path().join("from-aria2.bin");
    let run = download_from(&[peer], &torrent, &out)
        .args(&["--trace"])
        .run();
    assert!(
        run.status.success(),
        "{}\n{}",
        run.stderr,
        seeder.log_tail()
    );
    common::assert_bytes(
        &out,
        &std::fs::read(&content).unwrap(),
        "the file from aria2c",
    );
    assert!(
        run.stderr.contains("stream encrypted (MSE/PE, RC4)"),
        "{}",
        run.stderr
    );
}

#[test]
fn peerwire_downloads_from_a_transmission_seeder_that_requires_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 600_000, PIECE);
    let Some(seeder) = Transmission::start() else {
        return;
    };
    // `-er`: encryption required (Transmission refuses plain handshakes).
    seeder.remote(&["-er"]);
    seeder.add(&torrent, content.parent().unwrap());
    seeder.wait_until_complete(Duration::from_secs(60));
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.peer_port));
    let out = dir.path().join("from-transmission.bin");
    let run = download_from(&[peer], &torrent, &out)
        .args(&["--trace"])
        .run();
    run.assert_success();
    common::assert_bytes(
        &out,
        &std::fs::read(&content).unwrap(),
        "the file from Transmission",
    );
    assert!(
        run.stderr.contains("stream encrypted (MSE/PE, RC4)"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_aria2_leecher_that_requires_encryption_downloads_from_peerwire() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = common::local_tracker(Duration::from_secs(60));
    let url = tracker.announce_url().expect("the tracker speaks HTTP");
    let content = dir.path().join("seed").join("lesson.bin");
    std::fs::create_dir_all(content.parent().unwrap()).unwrap();
    std::fs::write(&content, common::pseudo_random(600_000, 11)).unwrap();
    let torrent = dir.path().join("lesson.torrent");
    common::create_torrent(&content, &torrent, &["--piece-length", "32768", "-t", &url]);
    let info_hash = peerwire::metainfo::Metainfo::from_file(&torrent)
        .unwrap()
        .info_hash;
    let (_seed, port) = start_seed(peerwire(), &torrent, &content, &["--no-dht"]);
    // The seed must be listed before aria2c asks the tracker: aria2c then dials it.
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while !tracker
        .peers(info_hash)
        .iter()
        .any(|peer| peer.addr.port() == port)
    {
        assert!(
            std::time::Instant::now() < until,
            "the seed never announced"
        );
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
    let save = dir.path().join("aria2");
    std::fs::create_dir_all(&save).unwrap();
    let crypto = ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"];
    let Some(mut leecher) = Aria2::leech_with(&torrent, &save, &crypto) else {
        return;
    };
    if let Err(e) = leecher.wait(Duration::from_secs(45)) {
        panic!("aria2c did not finish: {e}");
    }
    common::assert_bytes(
        &save.join("lesson.bin"),
        &std::fs::read(&content).unwrap(),
        "the file aria2c got from peerwire over MSE",
    );
}

/// Transmission 3.00 does not dial a peer on 127.0.0.0/8 that a tracker lists: given the seed's
/// 127.0.0.1 address by the built-in tracker, its debug log says "got 1 peers" and then shows no
/// connection attempt at all (none in 45 s, and the seed saw none). `transmission-remote` has no
/// way to hand it a peer. So the seed dials the leecher (`--peer`), and what is tested is
/// Transmission's accepting side of MSE/PE under `-er`: it refuses a plain handshake, takes
/// ours, and picks RC4.
#[test]
fn a_transmission_leecher_that_requires_encryption_downloads_from_peerwire() {
    const DEADLINE: Duration = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 600_000, PIECE);
    let Some(leecher) = Transmission::start_with_debug_log() else {
        return;
    };
    // `-er`: encryption required (Transmission refuses plain handshakes).
    leecher.remote(&["-er"]);
    let save = dir.path().join("transmission");
    std::fs::create_dir_all(&save).unwrap();
    leecher.add(&torrent, &save);
    let at = SocketAddr::from(([127, 0, 0, 1], leecher.peer_port));

    // The one-step `handshake` command speaks plain: Transmission must hang up on it.
    let mut plain = peerwire();
    plain.arg("handshake").arg(&torrent).arg(at.to_string());
    let refused = common::run_with_deadline(&mut plain, Duration::from_secs(30));
    assert!(
        !refused.status.success(),
        "Transmission under -er answered a plain handshake:\n{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    let refusal = "peer is unencrypted, and we're disallowing that";
    assert!(
        leecher.debug_log().contains(refusal),
        "Transmission's debug log lacks {refusal:?}; the handshake command said:\n{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let port = common::free_port();
    let mut seed = peerwire();
    seed.args(["-v", "seed"]).arg(&torrent).arg(&content);
    seed.args(["--port", &port.to_string(), "--no-dht", "--trace"]);
    seed.args(["--encryption", "require", "--peer", &at.to_string()]);
    let seed = common::StderrLines::spawn(&mut seed);
    common::wait_for_tcp(port, DEADLINE, "peerwire seed");
    leecher.wait_until_complete(DEADLINE);
    let stderr = seed.stop("-INT", DEADLINE);
    common::assert_bytes(
        &save.join("lesson.bin"),
        &std::fs::read(&content).unwrap(),
        "the file Transmission got from peerwire over MSE",
    );

    // peerwire's side: the connection to Transmission was RC4, and the pieces went through it.
    let encrypted = format!("{at} stream encrypted (MSE/PE, RC4)");
    assert!(
        stderr.iter().any(|line| line.starts_with(&encrypted)),
        "no {encrypted:?} in the seed's stderr:\n{}",
        stderr.join("\n")
    );
    let blocks_sent = common::traced_messages(&common::trace_lines(&stderr), Direction::Sent)
        .filter(|(peer, m)| *peer == at && matches!(m, Message::Piece { .. }))
        .count();
    let blocks = 600_000_usize.div_ceil(16_384);
    assert!(
        blocks_sent >= blocks,
        "{blocks_sent} blocks sent of {blocks}"
    );
    // Transmission's side, in its own words.
    let log = leecher.debug_log();
    for step in [
        "got INCOMING connection's encrypted handshake for torrent [lesson.bin]",
        "selecting crypto mode '2'", // 2 is RC4 in crypto_select; 1 would be plain text
    ] {
        assert!(
            log.contains(step),
            "Transmission's debug log lacks {step:?}"
        );
    }
    println!("{blocks_sent} blocks sent to Transmission over RC4");
}
