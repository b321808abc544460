//! Magnet links against real clients (walkthrough §13–§14): peerwire fetches the metadata from
//! a libtorrent seeder and from a Transmission seeder, prints it like `info`, and downloads
//! identical bytes; commands run back to back reach Transmission the first time; a libtorrent
//! leecher that has only the magnet link gets the metadata and the data from a peerwire
//! seeder; and peerwire, told of one peer only, learns another by PEX.

pub mod common;

use common::{Killed, LibtorrentPeer, OpenTracker, Transmission, peerwire, run_ok};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(180);

/// A two-file torrent (about 12 MiB, 16 KiB-unaligned files) in `dir/seed/set`, announced to
/// opentracker; `metadata` of about 40 KiB (3 metadata pieces: 32 KiB pieces of 12 MiB need
/// 7.7 KiB of hashes... so small pieces are used to make the info dictionary span pieces).
struct Album {
    dir: tempfile::TempDir,
    content: PathBuf,
    torrent: PathBuf,
    magnet: String,
    tracker: OpenTracker,
}

const FILES: [(&str, usize); 2] = [("a.bin", 7_340_033), ("sub/b.bin", 5_242_877)];

fn album() -> Option<Album> {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("seed").join("set");
    std::fs::create_dir_all(content.join("sub")).unwrap();
    for (i, (name, len)) in FILES.iter().enumerate() {
        std::fs::write(
            content.join(name),
            common::pseudo_random(*len, 60 + i as u64),
        )
        .unwrap();
    }
    // 16 KiB pieces: 768 piece hashes, an info dictionary of ~15 KiB... use more pieces to
    // make it span two metadata pieces.
    let torrent = dir.path().join("set.torrent");
    let (tracker, info_hash) = common::opentracker_torrent(&content, &torrent, 16_384)?;
    let url = tracker.http_url();
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=set&tr={}",
        info_hash.to_hex(),
        common::percent_encode(&url)
    );
    Some(Album {
        dir,
        content,
        torrent,
        magnet,
        tracker,
    })
}

impl Album {
    fn assert_same(&self, dir: &Path, who: &str) {
        let names = FILES.iter().map(|(name, _)| *name);
        common::assert_same_files(&self.content, &dir.join("set"), names, who);
    }

    fn out(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `magnet_info` prints exactly what `info` prints for the torrent file, except the
    /// tracker line (the file has it as `announce`; the link as its first `tr`: the same URL).
    fn check_magnet_info(&self) {
        let from_file = run_ok(peerwire().arg("info").arg(&self.torrent), DEADLINE);
        let mut magnet_info = peerwire();
        magnet_info.args(["magnet_info", &self.magnet, "--port", "0"]);
        let from_magnet = run_ok(&mut magnet_info, DEADLINE);
        assert_eq!(from_magnet, from_file);
    }

    fn check_magnet_download(&self) {
        let out = self.out("from-magnet");
        let mut download = peerwire();
        download
            .arg("download")
            .arg(&self.magnet)
            .arg("-o")
            .arg(&out)
            .args(["--port", "0", "--give-up-after", "90"]);
        run_ok(&mut download, DEADLINE);
        self.assert_same(&out, "download <magnet>");
    }
}

impl Album {
    /// `magnet_handshake`: the peer's id, and its own id for `ut_metadata`.
    fn check_magnet_handshake(&self, metadata_id: &str) {
        let mut handshake = peerwire();
        handshake.args(["magnet_handshake", &self.magnet, "--port", "0"]);
        let out = run_ok(&mut handshake, DEADLINE);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let id = lines[0].strip_prefix("Peer ID: ").expect("a Peer ID line");
        assert!(
            id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{out}"
        );
        assert_eq!(
            lines[1],
            format!("Peer Metadata Extension ID: {metadata_id}")
        );
    }

    /// `magnet_download_piece`: piece 5, which spans the two files' boundary region.
    fn check_magnet_download_piece(&self) {
        let out = self.dir.path().join("piece5.bin");
        let mut piece = peerwire();
        piece.args(["magnet_download_piece", "-o"]).arg(&out).args([
            &self.magnet,
            "5",
            "--give-up-after",
            "60",
        ]);
        run_ok(&mut piece, DEADLINE);
        let stream: Vec<u8> = ["a.bin", "sub/b.bin"]
            .iter()
            .flat_map(|n| std::fs::read(self.content.join(n)).unwrap())
            .collect();
        let expected = &stream[5 * 16384..6 * 16384];
        assert!(std::fs::read(&out).unwrap() == expected, "piece 5 differs");
    }
}

#[test]
fn metadata_and_data_from_a_libtorrent_seeder() {
    let Some(album) = album() else { return };
    let seed_dir = album.dir.path().join("seed");
    let Some(seeder) = LibtorrentPeer::start(&album.torrent, &seed_dir, true) else {
        return;
    };
    seeder.wait_for("tracker_reply", Duration::from_secs(60));
    album.check_magnet_info();
    album.check_magnet_download();
    album.check_magnet_handshake("2"); // libtorrent numbers its ut_metadata 2
    album.check_magnet_download_piece();
    let _ = &album.tracker;
}

#[test]
fn metadata_and_data_from_a_transmission_seeder() {
    let Some(album) = album() else { return };
    let Some(transmission) = Transmission::start() else {
        return;
    };
    transmission.add(&album.torrent, &album.dir.path().join("seed"));
    transmission.wait_until_complete(Duration::from_secs(60));
    transmission.wait_until_announced(Duration::from_secs(60));
    album.check_magnet_info();
    album.check_magnet_download();
}

/// Transmission keys its peers by IP and forgets a closed connection only on its next pulse,
/// about half a second later; until then a new connection from 127.0.0.1 is dropped before its
/// handshake. peerwire used to hang up and, in the next command (or the download after the
/// metadata), dial again at once: "no metadata: connection: failed to fill whole buffer", and
/// a retry a second later. Now it waits for the peer to close its side (`Connection::close`),
/// so commands run back to back each get through the first time.
#[test]
fn back_to_back_commands_reach_a_transmission_seeder_the_first_time() {
    let Some(album) = album() else { return };
    let Some(transmission) = Transmission::start() else {
        return;
    };
    transmission.add(&album.torrent, &album.dir.path().join("seed"));
    transmission.wait_until_complete(Duration::from_secs(60));
    transmission.wait_until_announced(Duration::from_secs(60));
    let out = album.out("back-to-back");
    let out = out.to_str().unwrap();
    let commands: [&[&str]; 4] = [
        &["magnet_handshake", &album.magnet],
        &["magnet_info", &album.magnet],
        &["magnet_info", &album.magnet],
        &[
            "download",
            &album.magnet,
            "-o",
            out,
            "--give-up-after",
            "90",
        ],
    ];
    let mut earlier = String::new();
    for args in commands {
        let started = Instant::now();
        let port = common::free_port().to_string();
        let output = common::run_with_deadline(
            peerwire().arg("-v").args(args).args(["--port", &port]),
            DEADLINE,
        );
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}:\n{log}");
        let transmission_peer = format!("127.0.0.1:{}", transmission.peer_port);
        let dropped: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&transmission_peer))
            .filter(|l| {
                l.contains("no metadata:")
                    || l.contains("before its handshake")
                    || l.contains("failed to fill whole buffer")
            })
            .collect();
        assert!(
            dropped.is_empty(),
            "{args:?}: a connection to Transmission was dropped: {dropped:?}\n{log}\n\
             the commands before:\n{earlier}"
        );
        earlier += &format!("{args:?}:\n{log}\n");
        println!("{}: {:.1} s", args[0], started.elapsed().as_secs_f64());
    }
    album.assert_same(Path::new(out), "download <magnet> after the others");
}

/// A libtorrent leecher with only the magnet link: the metadata comes from peerwire.
#[test]
fn a_libtorrent_leecher_gets_the_metadata_from_a_peerwire_seeder() {
    let Some(album) = album() else { return };
    let save = album.out("libtorrent");
    let Some(leecher) = LibtorrentPeer::start_magnet(&album.magnet, &save) else {
        return;
    };
    leecher.wait_for("tracker_reply", Duration::from_secs(60));
    let log = std::fs::File::create(album.dir.path().join("seeder.log")).unwrap();
    let seeder = peerwire()
        .env("RUST_LOG", "peerwire=info")
        .arg("seed")
        .arg(&album.torrent)
        .arg(&album.content)
        .args(["--port", "0"])
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let _seeder = Killed(seeder);
    let seeder_log = || std::fs::read_to_string(album.dir.path().join("seeder.log")).unwrap();
    let got = std::panic::catch_unwind(|| {
        leecher.wait_for("metadata_received", DEADLINE);
        leecher.wait_for("finished", DEADLINE);
    });
    assert!(
        got.is_ok(),
        "libtorrent did not finish; seeder log:\n{}",
        seeder_log()
    );
    album.assert_same(&save, "libtorrent");
}

/// peerwire knows one peer (A, a libtorrent leecher); A is connected to B (a libtorrent
/// seeder); A's `ut_pex` tells peerwire of B, and peerwire connects to B.
#[test]
fn peerwire_learns_a_peer_by_pex() {
    let Some(album) = album() else { return };
    let seed_dir = album.dir.path().join("seed");
    // B uploads slowly, so that A is still a leecher (with B and peerwire as peers) when its
    // first ut_pex goes out, about a second after its second connection (libtorrent's rule).
    let slow = ["--pex", "--upload-limit", "65536"];
    let Some(b) = LibtorrentPeer::start_with(&album.torrent, &seed_dir, true, &slow) else {
        return;
    };
    let a_save = album.out("a");
    let Some(mut a) = LibtorrentPeer::start_with(&album.torrent, &a_save, false, &["--pex"]) else {
        return;
    };
    a.send(&format!("connect 127.0.0.1:{}", b.port));
    a.wait_for("peer_connected", Duration::from_secs(30));
    // A torrent without trackers: A is the only peer peerwire is told of.
    let bare = album.dir.path().join("bare.torrent");
    common::create_torrent(&album.content, &bare, &["--piece-length", "16384"]);
    let out = album.out("peerwire");
    let log_path = album.dir.path().join("peerwire.log");
    let child = peerwire()
        .env("RUST_LOG", "peerwire=debug")
        .arg("download")
        .arg(&bare)
        .arg("-o")
        .arg(&out)
        .args([
            "--seed",
            "--port",
            "0",
            "--peer",
            &format!("127.0.0.1:{}", a.port),
        ])
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let _peerwire = Killed(child);
    let connected_to_b = format!("127.0.0.1:{}: connected", b.port);
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains(&connected_to_b) {
            assert!(
                log.contains("pex:"),
                "connected to B without a pex message?\n{log}"
            );
            break;
        }
        assert!(
            Instant::now() < until,
            "never connected to B by PEX:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200)); // poll interval while waiting for the event
    }
}
