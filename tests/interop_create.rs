//! Torrent files cross-checked with real tools (Debian `mktorrent`, `transmission-cli`,
//! `python3-libtorrent`):
//!
//! - a torrent made by `mktorrent` reads the same in `peerwire info` and `transmission-show`;
//! - a torrent made by `peerwire create` loads in libtorrent (and `transmission-show`) with the
//!   same info hash, file list and piece count.
//!
//! Each tool missing makes its test skip loudly (fail with `PEERWIRE_INTEROP=require`).

pub mod common;

use common::{need_libtorrent_python, need_program, peerwire, run_ok};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// A directory with a nested folder, an empty file and sizes that do not fit pieces evenly.
fn make_directory(root: &Path) -> PathBuf {
    let dir = root.join("content");
    std::fs::create_dir_all(dir.join("nested/deeper")).unwrap();
    std::fs::write(dir.join("alpha.bin"), common::pseudo_random(150_001, 1)).unwrap();
    std::fs::write(dir.join("empty.txt"), b"").unwrap();
    std::fs::write(
        dir.join("nested/beta.bin"),
        common::pseudo_random(70_000, 2),
    )
    .unwrap();
    std::fs::write(
        dir.join("nested/deeper/gamma.bin"),
        common::pseudo_random(3, 3),
    )
    .unwrap();
    dir
}

/// What `peerwire info` prints, as (label → value) plus the file and piece lines.
struct PeerwireInfo {
    info_hash: String,
    length: u64,
    piece_length: u64,
    pieces: usize,
    files: Vec<(u64, String)>,
}

fn peerwire_info(torrent: &Path) -> PeerwireInfo {
    let out = run_ok(peerwire().arg("info").arg(torrent), DEADLINE);
    let value = |label: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {out}"))
            .to_string()
    };
    let in_files = out
        .lines()
        .skip_while(|l| *l != "Files:")
        .skip(1)
        .take_while(|l| !l.starts_with("Info Hash:"));
    let files = in_files
        .map(|l| {
            let (size, path) = l.split_once(' ').expect("<length> <path>");
            (size.parse().unwrap(), path.to_string())
        })
        .collect();
    PeerwireInfo {
        info_hash: value("Info Hash: "),
        length: value("Length: ").parse().unwrap(),
        piece_length: value("Piece Length: ").parse().unwrap(),
        pieces: out
            .lines()
            .skip_while(|l| *l != "Piece Hashes:")
            .skip(1)
            .count(),
        files,
    }
}

/// `transmission-show -u`: info hash, piece count and file names (sizes are rounded there).
struct TransmissionInfo {
    info_hash: String,
    pieces: usize,
    files: Vec<String>,
}

fn transmission_show(program: &Path, torrent: &Path) -> TransmissionInfo {
    let out = run_ok(Command::new(program).arg("-u").arg(torrent), DEADLINE);
    let value = |label: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {out}"))
            .to_string()
    };
    let files = out
        .lines()
        .skip_while(|l| l.trim() != "FILES")
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .rsplit_once(" (")
                .expect("name (size)")
                .0
                .to_string()
        })
        .collect();
    TransmissionInfo {
        info_hash: value("Hash: "),
        pieces: value("Piece Count: ").parse().unwrap(),
        files,
    }
}

/// libtorrent's view, from tests/peers/libtorrent_torrent_info.py.
struct LibtorrentInfo {
    lines: Vec<(String, String)>,
}

impl LibtorrentInfo {
    fn load(python: &Path, torrent: &Path) -> LibtorrentInfo {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/libtorrent_torrent_info.py");
        let out = run_ok(Command::new(python).arg(script).arg(torrent), DEADLINE);
        let lines = out
            .lines()
            .map(|l| {
                l.split_once(' ')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .unwrap_or((l.to_string(), String::new()))
            })
            .collect();
        LibtorrentInfo { lines }
    }

    fn one(&self, key: &str) -> &str {
        &self
            .lines
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("libtorrent printed no {key}"))
            .1
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// (size, path) of every file that is not padding.
    fn files(&self) -> Vec<(u64, String)> {
        self.all("file")
            .into_iter()
            .filter_map(|v| {
                let mut parts = v.splitn(3, ' ');
                let (size, pad, path) = (parts.next()?, parts.next()?, parts.next()?);
                (pad == "0").then(|| (size.parse().unwrap(), path.to_string()))
            })
            .collect()
    }
}

fn mktorrent(program: &Path, target: &Path, out: &Path) {
    run_ok(
        Command::new(program)
            .args(["-l", "16", "-a", "http://127.0.0.1:6969/announce", "-o"])
            .arg(out)
            .arg(target),
        DEADLINE,
    );
}

#[test]
fn a_single_file_mktorrent_torrent_reads_the_same_in_peerwire_and_transmission() {
    let (Some(mk), Some(show)) = (need_program("mktorrent"), need_program("transmission-show"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("single.bin");
    std::fs::write(&file, common::pseudo_random(3 * 65_536 + 123, 7)).unwrap();
    let torrent = dir.path().join("single.torrent");
    mktorrent(&mk, &file, &torrent);
    let ours = peerwire_info(&torrent);
    let theirs = transmission_show(&show, &torrent);
    assert_eq!(ours.info_hash, theirs.info_hash);
    assert_eq!(ours.pieces, theirs.pieces);
    assert_eq!(
        (ours.length, ours.piece_length, ours.pieces),
        (3 * 65_536 + 123, 65_536, 4)
    );
    assert!(
        ours.files.is_empty(),
        "a single-file torrent lists no Files:"
    );
}

#[test]
fn a_multi_file_mktorrent_torrent_reads_the_same_in_peerwire_and_transmission() {
    let (Some(mk), Some(show)) = (need_program("mktorrent"), need_program("transmission-show"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let content = make_directory(dir.path());
    let torrent = dir.path().join("multi.torrent");
    mktorrent(&mk, &content, &torrent);
    let ours = peerwire_info(&torrent);
    let theirs = transmission_show(&show, &torrent);
    assert_eq!(ours.info_hash, theirs.info_hash);
    assert_eq!(ours.pieces, theirs.pieces);
    // transmission-show prefixes the torrent's name; peerwire lists paths inside it.
    let our_names: Vec<String> = ours
        .files
        .iter()
        .map(|(_, p)| format!("content/{p}"))
        .collect();
    let mut their_names = theirs.files.clone();
    let mut sorted_ours = our_names.clone();
    their_names.sort();
    sorted_ours.sort();
    assert_eq!(sorted_ours, their_names);
    let sizes: Vec<u64> = ours.files.iter().map(|(s, _)| *s).collect();
    assert_eq!(sizes.iter().sum::<u64>(), ours.length);
    assert_eq!(ours.length, 150_001 + 70_000 + 3);
}

#[test]
fn a_peerwire_single_file_torrent_loads_in_libtorrent_with_the_same_facts() {
    let Some(python) = need_libtorrent_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, common::pseudo_random(1_000_000, 11)).unwrap();
    let torrent = dir.path().join("payload.torrent");
    let mut create = peerwire();
    create.arg("create").arg(&file).arg("-o").arg(&torrent);
    create.args([
        "--private",
        "--comment",
        "made by peerwire",
        "-t",
        "http://127.0.0.1:6969/announce",
        "-t",
        "udp://127.0.0.1:6969",
    ]);
    run_ok(&mut create, DEADLINE);
    let ours = peerwire_info(&torrent);
    let lt = LibtorrentInfo::load(&python, &torrent);
    assert_eq!(lt.one("info_hash"), ours.info_hash);
    assert_eq!(lt.one("num_pieces").parse::<usize>().unwrap(), ours.pieces);
    assert_eq!(
        lt.one("piece_length").parse::<u64>().unwrap(),
        ours.piece_length
    );
    assert_eq!(lt.one("total_size").parse::<u64>().unwrap(), 1_000_000);
    assert_eq!(lt.files(), [(1_000_000, "payload.bin".to_string())]);
    assert_eq!(lt.one("private"), "1");
    assert_eq!(lt.one("comment"), "made by peerwire");
    assert_eq!(
        lt.all("tracker"),
        ["0 http://127.0.0.1:6969/announce", "1 udp://127.0.0.1:6969"]
    );
}

#[test]
fn a_peerwire_directory_torrent_loads_in_libtorrent_and_transmission_with_the_same_facts() {
    let Some(python) = need_libtorrent_python() else {
        return;
    };
    let Some(show) = need_program("transmission-show") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let content = make_directory(dir.path());
    let torrent = dir.path().join("content.torrent");
    common::create_torrent(&content, &torrent, &["--piece-length", "32768"]);
    let ours = peerwire_info(&torrent);
    let lt = LibtorrentInfo::load(&python, &torrent);
    assert_eq!(lt.one("info_hash"), ours.info_hash);
    assert_eq!(lt.one("num_pieces").parse::<usize>().unwrap(), ours.pieces);
    assert_eq!(lt.one("piece_length"), "32768");
    assert_eq!(lt.files(), ours.files, "same files, same sizes, same order");
    assert_eq!(ours.files.len(), 4);
    let theirs = transmission_show(&show, &torrent);
    assert_eq!(theirs.info_hash, ours.info_hash);
    assert_eq!(theirs.pieces, ours.pieces);
}
