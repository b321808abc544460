//! Torrent files cross-checked with real tools (Debian `mktorrent`, `transmission-cli`,
//! `python3-libtorrent`):
//!
//! - a torrent made by `mktorrent` reads the same in `peerwire info` and `transmission-show`;
//! - a torrent made by `peerwire create` loads in libtorrent (and `transmission-show`) with the
//!   same info hash, file list and piece count;
//! - a v2 or hybrid torrent made by `peerwire create --v2` / `--hybrid` (BEP 52) loads in
//!   libtorrent with the info hashes `peerwire info` prints, and libtorrent's own
//!   `create_torrent` of the same content at the same piece length has the same info hashes
//!   (the same `info` bytes: file tree, padding files, order) and the same piece layers.
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

/// A directory for v2 and hybrid: an empty file, files smaller than a piece, one of exactly one
/// piece, files of several pieces, nested directories, and names that sort differently by
/// path element than as whole strings (`sub/...` before `sub-notes.txt`: BEP 52's file tree
/// compares names level by level, and `-` sorts before `/`). An empty file comes last, after
/// the last file with data.
fn make_v2_directory(root: &Path) -> PathBuf {
    let dir = root.join("content");
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    let files: [(&str, usize); 8] = [
        ("alpha.bin", 150_001),
        ("empty.txt", 0),
        ("one_piece.bin", 32_768),
        ("sub/beta.bin", 70_000),
        ("sub/deeper/gamma.bin", 3),
        ("sub-notes.txt", 1_000),
        ("sub.txt", 20_000),
        ("zz_empty", 0),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        std::fs::write(dir.join(name), common::pseudo_random(*len, 20 + i as u64)).unwrap();
    }
    dir
}

/// The info hashes `peerwire info` prints: (`Info Hash`, `Info Hash v2`), each if present.
fn peerwire_hashes(torrent: &Path) -> (Option<String>, Option<String>) {
    let out = run_ok(peerwire().arg("info").arg(torrent), DEADLINE);
    let value = |label: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(label))
            .map(str::to_string)
    };
    (value("Info Hash: "), value("Info Hash v2: "))
}

/// Loads peerwire's torrent in libtorrent, makes libtorrent's own torrent of the same content
/// (written to `theirs`), and prints what libtorrent sees in each, one fact per line, each line
/// starting with `ours` or `theirs`:
///   `<who> v1 <hex or none>`, `<who> v2 <hex or none>`, `<who> pieces <n>`,
///   `<who> file <size> <pad 0|1> <offset> <path>` (one line per file, padding included),
/// and then `same piece layers <0|1>` and `their info keys <k,...>`.
const LIBTORRENT_COMPARE: &str = r#"
import os, sys, libtorrent as lt
content, mode, piece, ours, theirs = sys.argv[1:]
fs = lt.file_storage()
lt.add_files(fs, content)
flags = lt.create_torrent.v2_only if mode == "v2" else 0
ct = lt.create_torrent(fs, int(piece), flags=flags)
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(content)))
made = ct.generate()
with open(theirs, "wb") as f:
    f.write(lt.bencode(made))
def describe(who, path):
    ti = lt.torrent_info(path)
    h = ti.info_hashes()
    print(who, "v1", str(h.v1) if h.has_v1() else "none")
    print(who, "v2", str(h.v2) if h.has_v2() else "none")
    print(who, "pieces", ti.num_pieces())
    files = ti.files()
    for i in range(files.num_files()):
        pad = int(bool(files.file_flags(i) & lt.file_storage.flag_pad_file))
        print(who, "file", files.file_size(i), pad, files.file_offset(i), files.file_path(i))
describe("ours", ours)
describe("theirs", theirs)
with open(ours, "rb") as f:
    mine = lt.bdecode(f.read())
print("same piece layers", int(mine.get(b"piece layers") == made.get(b"piece layers")))
print("their info keys", ",".join(sorted(k.decode() for k in made[b"info"].keys())))
"#;

/// What libtorrent said of one of the two torrents.
#[derive(Debug, PartialEq)]
struct LibtorrentView {
    v1: String,
    v2: String,
    pieces: usize,
    /// (size, padding, offset, path) of every file, padding included.
    files: Vec<(u64, bool, u64, String)>,
}

struct Comparison {
    ours: LibtorrentView,
    theirs: LibtorrentView,
    same_piece_layers: bool,
    their_info_keys: String,
}

fn compare_with_libtorrent(
    python: &Path,
    content: &Path,
    mode: &str,
    piece_length: u64,
    ours: &Path,
    theirs: &Path,
) -> Comparison {
    let out = run_ok(
        Command::new(python)
            .args(["-c", LIBTORRENT_COMPARE])
            .arg(content)
            .arg(mode)
            .arg(piece_length.to_string())
            .arg(ours)
            .arg(theirs),
        DEADLINE,
    );
    let view = |who: &str| {
        let facts: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix(who)?.strip_prefix(' '))
            .collect();
        let one = |key: &str| {
            facts
                .iter()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("libtorrent printed no {who} {key} in {out}"))
                .to_string()
        };
        let files = facts
            .iter()
            .filter_map(|l| l.strip_prefix("file "))
            .map(|l| {
                let mut parts = l.splitn(4, ' ');
                let mut next = || parts.next().expect("size pad offset path");
                let (size, pad, offset) = (next(), next(), next());
                (
                    size.parse().unwrap(),
                    pad == "1",
                    offset.parse().unwrap(),
                    next().to_string(),
                )
            })
            .collect();
        LibtorrentView {
            v1: one("v1"),
            v2: one("v2"),
            pieces: one("pieces").parse().unwrap(),
            files,
        }
    };
    let after = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {out}"))
            .to_string()
    };
    Comparison {
        ours: view("ours"),
        theirs: view("theirs"),
        same_piece_layers: after("same piece layers ") == "1",
        their_info_keys: after("their info keys "),
    }
}

/// Makes the torrent of `content` with peerwire (`--v2` or `--hybrid`) and with libtorrent at
/// the same piece length, and checks that all three readers agree: peerwire's `info`,
/// libtorrent on peerwire's torrent, libtorrent's own torrent (and peerwire on that one).
fn check_against_libtorrent(
    python: &Path,
    content: &Path,
    mode: &str,
    piece_length: u64,
) -> Comparison {
    let dir = content.parent().unwrap();
    let ours = dir.join(format!("peerwire-{mode}-{piece_length}.torrent"));
    let theirs = dir.join(format!("libtorrent-{mode}-{piece_length}.torrent"));
    let length = piece_length.to_string();
    common::create_torrent(
        content,
        &ours,
        &[&format!("--{mode}"), "--piece-length", &length],
    );
    let compared = compare_with_libtorrent(python, content, mode, piece_length, &ours, &theirs);
    let (ours_v1, ours_v2) = peerwire_hashes(&ours);
    let what = format!(
        "{} --{mode} --piece-length {piece_length}",
        content.display()
    );
    // libtorrent on peerwire's torrent agrees with `peerwire info`...
    assert_eq!(
        Some(&compared.ours.v2),
        ours_v2.as_ref(),
        "{what}: v2 info hash"
    );
    match mode {
        "v2" => {
            assert_eq!(
                compared.ours.v1, "none",
                "{what}: a v2-only torrent has no v1 hash"
            );
            assert_eq!(ours_v1, None, "{what}");
        }
        _ => assert_eq!(
            Some(&compared.ours.v1),
            ours_v1.as_ref(),
            "{what}: v1 info hash"
        ),
    }
    // ...and libtorrent's own torrent of the same content is the same torrent: same `info`
    // bytes (both hashes), the same files at the same offsets, the same piece layers.
    assert_eq!(
        compared.ours, compared.theirs,
        "{what}: peerwire's and libtorrent's torrents"
    );
    assert!(compared.same_piece_layers, "{what}: piece layers");
    // peerwire reads libtorrent's torrent with the same hashes too.
    assert_eq!(
        peerwire_hashes(&theirs),
        (ours_v1, ours_v2),
        "{what}: peerwire on libtorrent's"
    );
    eprintln!(
        "{what}: v1 {} v2 {} ({} pieces) — libtorrent's own torrent has the same",
        compared.ours.v1, compared.ours.v2, compared.ours.pieces
    );
    compared
}

#[test]
fn v2_and_hybrid_directory_torrents_are_the_ones_libtorrent_makes() {
    let Some(python) = need_libtorrent_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let content = make_v2_directory(dir.path());
    for piece_length in [16_384, 65_536] {
        let v2 = check_against_libtorrent(&python, &content, "v2", piece_length);
        assert_eq!(
            v2.their_info_keys,
            "file tree,meta version,name,piece length"
        );
        let hybrid = check_against_libtorrent(&python, &content, "hybrid", piece_length);
        assert_eq!(
            hybrid.their_info_keys,
            "file tree,files,meta version,name,piece length,pieces"
        );
        assert_ne!(v2.ours.v2, hybrid.ours.v2, "different info dictionaries");
        // The files in file tree order, each with data on a piece boundary, and padding after
        // every file that does not fill its last piece: the last file with data included.
        let files = &hybrid.ours.files;
        let names: Vec<&str> = files
            .iter()
            .filter(|f| !f.1)
            .map(|f| f.3.strip_prefix("content/").unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "alpha.bin",
                "empty.txt",
                "one_piece.bin",
                "sub/beta.bin",
                "sub/deeper/gamma.bin",
                "sub-notes.txt",
                "sub.txt",
                "zz_empty"
            ]
        );
        for (size, pad, offset, path) in files.iter().filter(|f| !f.1 && f.0 > 0) {
            assert_eq!(offset % piece_length, 0, "{path} ({size}, pad {pad})");
        }
        let last_data = files.iter().rposition(|f| !f.1 && f.0 > 0).unwrap();
        assert!(
            files[last_data + 1].1,
            "padding after the last file with data"
        );
        let end = files.last().map(|f| f.2 + f.0).unwrap();
        assert_eq!(
            end,
            hybrid.ours.pieces as u64 * piece_length,
            "whole pieces"
        );
    }
}

#[test]
fn v2_and_hybrid_single_file_torrents_are_the_ones_libtorrent_makes() {
    let Some(python) = need_libtorrent_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, common::pseudo_random(1_000_000, 12)).unwrap();
    for piece_length in [32_768, 262_144] {
        let v2 = check_against_libtorrent(&python, &file, "v2", piece_length);
        assert_eq!(
            v2.their_info_keys,
            "file tree,meta version,name,piece length"
        );
        let hybrid = check_against_libtorrent(&python, &file, "hybrid", piece_length);
        assert_eq!(
            hybrid.their_info_keys,
            "file tree,length,meta version,name,piece length,pieces"
        );
        // One file, no padding: the v1 pieces end where the file ends.
        assert_eq!(
            hybrid.ours.files,
            [(1_000_000, false, 0, "payload.bin".to_string())]
        );
        assert_eq!(
            hybrid.ours.pieces as u64,
            1_000_000u64.div_ceil(piece_length)
        );
    }
}
