//! peerwire as a seeder for the clients people run (walkthrough §10): a libtorrent
//! leecher and a Transmission leecher each download a 64 MiB three-file torrent from peerwire
//! alone, and then a mixed swarm (peerwire seeder; libtorrent, Transmission and peerwire
//! leechers) finishes with byte-identical files everywhere.
//!
//! The leechers announce first and the peerwire seeder last, so the seeder's first announce
//! returns them and it dials them (Transmission does not dial peers on 127.0.0.1 itself).

pub mod common;

use common::{Killed, LibtorrentPeer, OpenTracker, Transmission, peerwire};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The files of the torrent, and their sizes: 64 MiB, boundaries inside 256 KiB pieces.
const FILES: [(&str, usize); 3] = [
    ("one.bin", 33_554_467),
    ("disc2/two.bin", 20_971_493),
    ("three.bin", 12_582_917),
];

/// The seeder's data, a torrent of it announced to opentracker.
struct Album {
    dir: tempfile::TempDir,
    content: PathBuf,
    torrent: PathBuf,
    tracker: OpenTracker,
}

fn album() -> Option<Album> {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("seed").join("album");
    std::fs::create_dir_all(content.join("disc2")).unwrap();
    for (i, (name, len)) in FILES.iter().enumerate() {
        std::fs::write(
            content.join(name),
            common::pseudo_random(*len, i as u64 + 40),
        )
        .unwrap();
    }
    let torrent = dir.path().join("album.torrent");
    let (tracker, _) = common::opentracker_torrent(&content, &torrent, 262_144)?;
    Some(Album {
        dir,
        content,
        torrent,
        tracker,
    })
}

impl Album {
    /// `peerwire seed` of the album, logging to `seeder.log`.
    fn start_seeder(&self) -> Killed {
        let log = std::fs::File::create(self.dir.path().join("seeder.log")).unwrap();
        let child = peerwire()
            .env("RUST_LOG", "peerwire=info")
            .arg("seed")
            .arg(&self.torrent)
            .arg(&self.content)
            .args(["--port", "0"])
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start peerwire seed");
        Killed(child)
    }

    fn seeder_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("seeder.log")).unwrap_or_default()
    }

    fn leech_dir(&self, who: &str) -> PathBuf {
        let dir = self.dir.path().join(who);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Every file under `dir/album` is identical to the seeder's.
    fn assert_same(&self, dir: &Path, who: &str) {
        let names = FILES.iter().map(|(name, _)| *name);
        common::assert_same_files(&self.content, &dir.join("album"), names, who);
    }
}

#[test]
fn a_libtorrent_leecher_downloads_from_peerwire_alone() {
    let Some(album) = album() else { return };
    let save = album.leech_dir("libtorrent");
    let Some(leecher) = LibtorrentPeer::start(&album.torrent, &save, false) else {
        return;
    };
    leecher.wait_for("tracker_reply", Duration::from_secs(60));
    let _seeder = album.start_seeder();
    let finished =
        std::panic::catch_unwind(|| leecher.wait_for("finished", Duration::from_secs(180)));
    assert!(
        finished.is_ok(),
        "libtorrent did not finish; seeder log:\n{}",
        album.seeder_log()
    );
    album.assert_same(&save, "libtorrent");
    let _ = &album.tracker;
}

#[test]
fn a_transmission_leecher_downloads_from_peerwire_alone() {
    let Some(album) = album() else { return };
    let Some(transmission) = Transmission::start() else {
        return;
    };
    let save = album.leech_dir("transmission");
    transmission.add(&album.torrent, &save);
    transmission.wait_until_announced(Duration::from_secs(60));
    let _seeder = album.start_seeder();
    let done = std::panic::catch_unwind(|| {
        transmission.wait_until_complete(Duration::from_secs(240));
    });
    assert!(
        done.is_ok(),
        "Transmission did not finish; seeder log:\n{}",
        album.seeder_log()
    );
    album.assert_same(&save, "transmission");
}

/// A peerwire seeder; libtorrent, Transmission and peerwire leechers at once: all finish.
#[test]
fn a_mixed_swarm_all_finish_with_the_same_bytes() {
    let Some(album) = album() else { return };
    let lt_save = album.leech_dir("libtorrent");
    let Some(libtorrent) = LibtorrentPeer::start(&album.torrent, &lt_save, false) else {
        return;
    };
    let Some(transmission) = Transmission::start() else {
        return;
    };
    let tr_save = album.leech_dir("transmission");
    transmission.add(&album.torrent, &tr_save);
    libtorrent.wait_for("tracker_reply", Duration::from_secs(60));
    transmission.wait_until_announced(Duration::from_secs(60));
    let pw_save = album.leech_dir("peerwire");
    let leecher = peerwire()
        .env("RUST_LOG", "peerwire=info")
        .arg("download")
        .arg("-o")
        .arg(&pw_save)
        .arg(&album.torrent)
        .args(["--port", "0", "--give-up-after", "120"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start peerwire download");
    let _seeder = album.start_seeder();
    let output = common::wait_with_deadline(leecher, Duration::from_secs(240));
    assert!(
        output.status.success(),
        "the peerwire leecher failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lt_done =
        std::panic::catch_unwind(|| libtorrent.wait_for("finished", Duration::from_secs(240)));
    let tr_done =
        std::panic::catch_unwind(|| transmission.wait_until_complete(Duration::from_secs(240)));
    let log = album.seeder_log();
    assert!(
        lt_done.is_ok(),
        "libtorrent did not finish; seeder log:\n{log}"
    );
    assert!(
        tr_done.is_ok(),
        "Transmission did not finish; seeder log:\n{log}"
    );
    album.assert_same(&pw_save, "the peerwire leecher");
    album.assert_same(&lt_save, "libtorrent");
    album.assert_same(&tr_save, "Transmission");
}
