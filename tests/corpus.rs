//! libtorrent's own test torrents, judged by libtorrent's own verdicts.
//!
//! `libtorrent_test_torrents/` in the fixtures directory holds the 108 torrents of libtorrent's
//! test suite; `libtorrent_expectations.json` says which ones libtorrent loads and which it
//! rejects (`invalid on add` counts as rejected: libtorrent refuses such a torrent as soon as it
//! is added to a session, and peerwire, which has no such second step, refuses it at load).
//! peerwire must agree on every one: every torrent libtorrent rejects is rejected with a clear
//! error (and no panic), every torrent it loads is loaded, v1 and hybrid ones with the same v1
//! info hash, v2-only ones named by their v2 hash cut to 20 bytes, and every v2 info hash and
//! pieces root that MANIFEST.md states is the one peerwire computes. A second test asks a live
//! libtorrent (`/usr/bin/python3`, `import libtorrent`) for the v2 hash of every v2 and hybrid
//! torrent.
//!
//! The fixtures directory is found by `common::fixtures_dir` (`$PEERWIRE_FIXTURES`, else the one
//! kept next to the repository); without it the test skips loudly, and with
//! `PEERWIRE_INTEROP=require` it fails.

pub mod common;

use peerwire::encoding::sha1;
use peerwire::metainfo::{MetaVersion, Metainfo, MetainfoError};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

struct Expectation {
    file: String,
    /// libtorrent loads it (`valid`); anything else (`invalid`, `invalid on add`) is a refusal.
    valid: bool,
    v1_info_hash: Option<String>,
    /// What libtorrent's own test asserts of the torrent (MANIFEST.md's checks column).
    checks: String,
}

impl Expectation {
    /// A hash the checks state, e.g. `aux::to_hex(info_hashes().v2), "597b…"`.
    fn stated_hex(&self, after: &str) -> Option<String> {
        let start = self.checks.find(after)? + after.len();
        let rest = self.checks[start..].trim_start_matches([')', ',', ' ', '"']);
        let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        (hex.len() == 64).then_some(hex)
    }

    fn stated_v2_hash(&self) -> Option<String> {
        self.stated_hex("info_hashes().v2")
    }

    /// The pieces root libtorrent's test states for the first file.
    fn stated_first_root(&self) -> Option<String> {
        self.stated_hex("layout().root(file_index_t{ 0 })")
    }

    /// The version the checks imply: `!has_v1()` with `has_v2()` is v2-only, both a hybrid.
    fn stated_version(&self) -> Option<MetaVersion> {
        let c = &self.checks;
        let has = |what: &str| {
            c.contains(&format!("info_hashes().{what}()"))
                && !c.contains(&format!("!info_hashes().{what}()"))
                && !c.contains(&format!("info_hashes().{what}(), false"))
        };
        let lacks = |what: &str| {
            c.contains(&format!("!info_hashes().{what}()"))
                || c.contains(&format!("info_hashes().{what}(), false"))
        };
        match (has("has_v1"), lacks("has_v1"), has("has_v2")) {
            (true, _, true) => Some(MetaVersion::Hybrid),
            (_, true, true) => Some(MetaVersion::V2),
            _ => None,
        }
    }
}

/// What the corpus held, for the summary line.
#[derive(Default)]
struct Tally {
    agree: usize,
    v1: usize,
    hybrid: usize,
    v2: usize,
    refused: usize,
    stated_v2_hashes: usize,
    stated_roots: usize,
}

#[test]
fn peerwire_agrees_with_libtorrent_on_every_test_torrent() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    let expectations = load_expectations(&fixtures);
    assert!(
        expectations.len() >= 108,
        "expected the 108 libtorrent torrents, found {}",
        expectations.len()
    );
    let mut failures = Vec::new();
    let mut tally = Tally::default();
    for e in &expectations {
        let path = fixtures.join("libtorrent_test_torrents").join(&e.file);
        let result = std::panic::catch_unwind(|| Metainfo::from_file(&path));
        let verdict = match result {
            Err(_) => Err("PANICKED".to_string()),
            Ok(loaded) => judge(e, loaded, &mut tally),
        };
        match verdict {
            Ok(()) => tally.agree += 1,
            Err(why) => failures.push(format!("{}: {why}", e.file)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with libtorrent:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Written past the harness's capture, so the figures show in a passing run too.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "corpus: {}/{} agree with libtorrent: {} loaded ({} v1, {} hybrid, {} v2-only), {} \
         refused; {} v2 info hashes and {} pieces roots checked against MANIFEST.md",
        tally.agree,
        expectations.len(),
        tally.v1 + tally.hybrid + tally.v2,
        tally.v1,
        tally.hybrid,
        tally.v2,
        tally.refused,
        tally.stated_v2_hashes,
        tally.stated_roots,
    );
}

/// Compares one load result with libtorrent's verdict.
fn judge(
    e: &Expectation,
    loaded: Result<Metainfo, MetainfoError>,
    tally: &mut Tally,
) -> Result<(), String> {
    match (e.valid, loaded) {
        (true, Ok(m)) => {
            judge_loaded(e, &m, tally)?;
            match m.version {
                MetaVersion::V1 => tally.v1 += 1,
                MetaVersion::Hybrid => tally.hybrid += 1,
                MetaVersion::V2 => tally.v2 += 1,
            }
            Ok(())
        }
        (true, Err(err)) => Err(format!(
            "libtorrent loads it, peerwire says: {}",
            chain(&err)
        )),
        (false, Ok(m)) => Err(format!(
            "libtorrent rejects it, peerwire loaded {:?}",
            m.info.name
        )),
        (false, Err(err)) if chain(&err).len() < 20 => {
            Err(format!("error too terse to help: {err:?}"))
        }
        (false, Err(_)) => {
            tally.refused += 1;
            Ok(())
        }
    }
}

/// A torrent both load: the same identity, the same version, the stated v2 hash and root.
fn judge_loaded(e: &Expectation, m: &Metainfo, tally: &mut Tally) -> Result<(), String> {
    let v2 = m.v2.as_ref();
    if m.version == MetaVersion::V2 {
        // The expected v1 hash is the SHA-1 of the info bytes, which a v2-only torrent does not
        // go by; it still proves the right bytes were taken. Its name is the cut v2 hash.
        let v2 = v2.ok_or("v2-only without a v2 half")?;
        let sha1_of_info = peerwire::encoding::to_hex(&sha1(&m.info_bytes));
        if let Some(want) = e.v1_info_hash.as_ref().filter(|w| **w != sha1_of_info) {
            return Err(format!("SHA-1 of the info bytes {sha1_of_info} != {want}"));
        }
        if m.info_hash != v2.info_hash.truncated() {
            return Err(format!("info hash {} is not the cut v2 hash", m.info_hash));
        }
    } else if let Some(want) = e
        .v1_info_hash
        .as_ref()
        .filter(|w| **w != m.info_hash.to_hex())
    {
        return Err(format!("info hash {} != libtorrent's {want}", m.info_hash));
    }
    if let Some(want) = e.stated_version().filter(|v| *v != m.version) {
        return Err(format!(
            "loaded as {:?}, libtorrent's checks say {want:?}",
            m.version
        ));
    }
    if let Some(want) = e.stated_v2_hash() {
        let got = v2.map(|v2| v2.info_hash.to_hex()).unwrap_or_default();
        if got != want {
            return Err(format!("v2 info hash {got:?} != libtorrent's {want}"));
        }
        tally.stated_v2_hashes += 1;
    }
    if let Some(want) = e.stated_first_root() {
        let got = v2
            .and_then(|v2| v2.files.first())
            .and_then(|f| f.pieces_root)
            .map(|r| r.to_hex())
            .unwrap_or_default();
        if got != want {
            return Err(format!("first pieces root {got:?} != libtorrent's {want}"));
        }
        tally.stated_roots += 1;
    }
    Ok(())
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

/// Reads the verdicts, taking v1 info hashes missing from the JSON, and libtorrent's checks,
/// from MANIFEST.md's table.
fn load_expectations(fixtures: &Path) -> Vec<Expectation> {
    let manifest = std::fs::read_to_string(fixtures.join("MANIFEST.md")).expect("MANIFEST.md");
    let rows: HashMap<String, Vec<String>> = manifest
        .lines()
        .filter(|line| line.starts_with("| ") && line.contains(".torrent |"))
        .map(|line| {
            let cells: Vec<String> = line.split(" | ").map(|c| c.trim().to_string()).collect();
            (cells[0].trim_start_matches("| ").to_string(), cells)
        })
        .collect();
    let manifest_hash = |file: &str| {
        let cells = rows.get(file)?;
        let hash = cells.last()?.trim_end_matches('|').trim();
        (hash.len() == 40).then(|| hash.to_string())
    };
    let json = std::fs::read_to_string(fixtures.join("libtorrent_expectations.json"))
        .expect("expectations");
    json.split("\n {")
        .skip(1)
        .map(|entry| {
            let file = json_field(entry, "file").expect("every entry names its file");
            let verdict = json_field(entry, "verdict").unwrap_or_default();
            let v1_info_hash = json_field(entry, "v1_info_hash").or_else(|| manifest_hash(&file));
            // The checks column: the fourth cell of the file's row.
            let checks = rows
                .get(&file)
                .and_then(|cells| cells.get(3).cloned())
                .unwrap_or_default();
            Expectation {
                valid: verdict == "valid",
                file,
                v1_info_hash,
                checks,
            }
        })
        .collect()
}

/// The string value of `"key": "..."` in one entry of the (simple, flat) expectations file.
fn json_field(entry: &str, key: &str) -> Option<String> {
    let start = entry.find(&format!("\"{key}\": \""))? + key.len() + 5;
    let end = entry[start..].find('"')?;
    Some(entry[start..start + end].to_string())
}

/// Every v2 and hybrid torrent peerwire loads has the v2 info hash a live libtorrent computes
/// for it, and the same v1-or-not identity. Skips loudly without libtorrent's Python binding.
#[test]
fn v2_info_hashes_match_a_live_libtorrent() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    let Some(python) = common::libtorrent::need_libtorrent_python() else {
        return;
    };
    let dir = fixtures.join("libtorrent_test_torrents");
    // One process for the whole directory: `file<TAB>v1 or -<TAB>v2 or -`, or `file<TAB>ERROR`.
    let script = r#"
import os, sys, libtorrent as lt
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    try:
        h = lt.torrent_info(os.path.join(d, f)).info_hashes()
        print(f, str(h.v1) if h.has_v1() else "-", str(h.v2) if h.has_v2() else "-", sep="\t")
    except Exception:
        print(f, "ERROR", sep="\t")
"#;
    let out = common::run_with_deadline(
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(&dir),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let libtorrent: HashMap<String, Vec<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let cells: Vec<String> = line.split('\t').map(str::to_string).collect();
            (cells[0].clone(), cells[1..].to_vec())
        })
        .collect();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for e in load_expectations(&fixtures).iter().filter(|e| e.valid) {
        let Ok(m) = Metainfo::from_file(&dir.join(&e.file)) else {
            continue; // the first test reports it
        };
        let Some(v2) = &m.v2 else { continue };
        match libtorrent.get(&e.file).map(Vec::as_slice) {
            Some([v1, want]) => {
                if v2.info_hash.to_hex() != *want {
                    failures.push(format!(
                        "{}: v2 {} != libtorrent's {want}",
                        e.file, v2.info_hash
                    ));
                }
                let v1_expected = match m.version {
                    MetaVersion::V2 => "-".to_string(),
                    _ => m.info_hash.to_hex(),
                };
                if *v1 != v1_expected {
                    failures.push(format!("{}: v1 {v1_expected} != libtorrent's {v1}", e.file));
                }
                checked.push(e.file.clone());
            }
            other => failures.push(format!("{}: libtorrent says {other:?}", e.file)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked.len() >= 17,
        "only {} v2/hybrid torrents checked: {checked:?}",
        checked.len()
    );
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "corpus: {} v2 info hashes agree with a live libtorrent",
        checked.len()
    );
}

/// Torrents that a live libtorrent makes, v2-only and hybrid, of content made here: every file's
/// pieces root and piece layer is what `merkle` computes from the bytes on disk, the v2 info
/// hash is libtorrent's, and a v2-only torrent's files and padding sit where libtorrent puts
/// them (libtorrent adds one padding file after the last file, which peerwire leaves out: it
/// moves nothing). Skips loudly without libtorrent's Python binding.
#[test]
fn torrents_libtorrent_makes_have_the_trees_peerwire_computes() {
    /// One entry of a file list: path inside the torrent, length, offset, padding.
    type Placed = (String, u64, u64, bool);
    use peerwire::merkle::{self, BlocksPerPiece};
    let Some(python) = common::libtorrent::need_libtorrent_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    let files: [(&str, usize); 7] = [
        ("multi/a", 20_000),
        ("multi/b", 0),
        ("multi/c/d", 5),
        ("multi/e", 40_000),
        ("multi/f", 65_536),
        ("multi/g", 1_048_579),
        ("single.bin", 70_000),
    ];
    for (i, (path, len)) in files.iter().enumerate() {
        let path = content.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, common::pseudo_random(*len, i as u64 + 1)).unwrap();
    }
    // name, source, piece length, v2 only?
    let made = [
        ("multi_v2_16k", "multi", 16_384u64, true),
        ("multi_v2_64k", "multi", 65_536, true),
        ("multi_hybrid_16k", "multi", 16_384, false),
        ("multi_hybrid_64k", "multi", 65_536, false),
        ("single_v2_32k", "single.bin", 32_768, true),
        ("single_hybrid_32k", "single.bin", 32_768, false),
    ];
    // Per torrent: `name<TAB>v2 hash`, then `file<TAB>path<TAB>size<TAB>offset<TAB>pad` lines.
    let script = r#"
import sys, libtorrent as lt
content, out = sys.argv[1], sys.argv[2]
for spec in sys.argv[3:]:
    name, source, piece, v2_only = spec.split(",")
    fs = lt.file_storage()
    lt.add_files(fs, content + "/" + source)
    flags = lt.create_torrent.v2_only if v2_only == "1" else 0
    ct = lt.create_torrent(fs, int(piece), flags=flags)
    lt.set_piece_hashes(ct, content)
    path = out + "/" + name + ".torrent"
    open(path, "wb").write(lt.bencode(ct.generate()))
    ti = lt.torrent_info(path)
    print(name, str(ti.info_hashes().v2), sep="\t")
    f = ti.files()
    for i in range(f.num_files()):
        pad = "pad" if f.file_flags(i) & lt.file_storage.flag_pad_file else "-"
        print("file", f.file_path(i), f.file_size(i), f.file_offset(i), pad, sep="\t")
"#;
    let specs: Vec<String> = made
        .iter()
        .map(|(name, source, piece, v2)| format!("{name},{source},{piece},{}", u8::from(*v2)))
        .collect();
    let out = common::run_with_deadline(
        std::process::Command::new(python)
            .args(["-c", script])
            .arg(&content)
            .arg(dir.path())
            .args(&specs),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // libtorrent's answers, by torrent: its v2 hash and its file list.
    let mut answers: HashMap<String, (String, Vec<Placed>)> = HashMap::new();
    let mut current = String::new();
    for line in stdout.lines() {
        let cells: Vec<&str> = line.split('\t').collect();
        match cells.as_slice() {
            ["file", path, size, offset, pad] => {
                let entry = answers.get_mut(&current).expect("a torrent line first");
                // libtorrent's paths start with the torrent's name; ours are inside it.
                let inner = path.split_once('/').map_or(*path, |(_, rest)| rest);
                entry.1.push((
                    inner.to_string(),
                    size.parse().unwrap(),
                    offset.parse().unwrap(),
                    *pad == "pad",
                ));
            }
            [name, v2] => {
                current = name.to_string();
                answers.insert(current.clone(), (v2.to_string(), Vec::new()));
            }
            _ => panic!("unexpected line from libtorrent: {line}"),
        }
    }
    for (name, source, piece_length, v2_only) in made {
        let m = Metainfo::from_file(&dir.path().join(format!("{name}.torrent")))
            .unwrap_or_else(|e| panic!("{name}: {}", chain(&e)));
        let (lt_hash, lt_files) = &answers[name];
        let v2 = m.v2.as_ref().unwrap();
        let want_version = if v2_only {
            MetaVersion::V2
        } else {
            MetaVersion::Hybrid
        };
        assert_eq!(m.version, want_version, "{name}");
        assert_eq!(v2.info_hash.to_hex(), *lt_hash, "{name}");
        assert!(v2.piece_layers_complete, "{name}");
        let per_piece = BlocksPerPiece::for_piece_length(piece_length).unwrap();
        for f in &v2.files {
            let on_disk = if m.info.multi_file {
                f.path.iter().fold(content.join(source), |p, e| p.join(e))
            } else {
                content.join(source)
            };
            let leaves = merkle::leaf_hashes(&std::fs::read(&on_disk).unwrap());
            let expected_root = (!leaves.is_empty()).then(|| merkle::root_of(&leaves));
            assert_eq!(f.pieces_root, expected_root, "{name}: {}", f.display_path());
            assert_eq!(
                f.piece_layer,
                merkle::piece_layer(&leaves, per_piece),
                "{name}: {}",
                f.display_path()
            );
        }
        if v2_only {
            let ours: Vec<Placed> = m
                .info
                .files
                .iter()
                .map(|f| (f.display_path(), f.length, f.offset, f.padding))
                .collect();
            let mut theirs = lt_files.clone();
            if theirs.last().is_some_and(|f| f.3) {
                theirs.pop(); // the padding after the last file
            }
            if !m.info.multi_file {
                // A single file: libtorrent's path is the file's name alone.
                for f in &mut theirs {
                    f.0 = f.0.rsplit('/').next().unwrap_or_default().to_string();
                }
            }
            assert_eq!(ours, theirs, "{name}");
        }
    }
}

/// libtorrent's own per-file checks (from `test_torrent_info.cpp`), and what they imply for v2.
#[test]
fn libtorrents_detailed_checks() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    let load = |name: &str| {
        Metainfo::from_file(&fixtures.join("libtorrent_test_torrents").join(name))
            .unwrap_or_else(|e| panic!("{name}: {}", chain(&e)))
    };
    let paths = |m: &Metainfo| {
        m.info
            .files
            .iter()
            .map(|f| f.display_path())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        paths(&load("absolute_filename.torrent")),
        ["abcde", "foobar"]
    );
    assert_eq!(
        paths(&load("duplicate_files.torrent")),
        ["foo/bar.txt", "foo/bar.1.txt"]
    );
    assert_eq!(
        paths(&load("invalid_directory_name.torrent")),
        ["_/foo", "_/foo.1"]
    );
    assert_eq!(load("invalid_filename.torrent").info.files.len(), 2);
    assert_eq!(load("invalid_filename2.torrent").info.files.len(), 3);
    assert_eq!(paths(&load("parent_path.torrent")), ["_/_/bar"]);
    assert_eq!(
        paths(&load("hidden_parent_path.torrent")),
        ["foo......bar/bar"]
    );
    assert_eq!(
        load("invalid_name2.torrent").info.name,
        "b61560c2918f463768cd122b6d2fdd47b77bdb35"
    );
    assert_eq!(load("invalid_name3.torrent").info.name, "foobar ");
    assert_eq!(load("creation_date.torrent").creation_date, Some(1234567));
    assert_eq!(load("no_creation_date.torrent").creation_date, None);
    assert_eq!(load("duplicate_web_seeds.torrent").url_list.len(), 3);
    assert_eq!(
        load("whitespace_url.torrent").announce.as_deref(),
        Some("udp://test.com/announce")
    );
    assert_eq!(
        load("large_piece_size.torrent").info.piece_length,
        32767 * 0x4000
    );
    assert_eq!(load("large.torrent").info.total_length, 5_242_880_000); // > 4 GiB

    let pad = load("pad_file.torrent");
    assert_eq!(
        pad.info.files.iter().map(|f| f.padding).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(paths(&load("pad_file_no_path.torrent"))[1], ".pad/2124");
    let sample = load("sample.torrent");
    assert_eq!(
        paths(&sample),
        ["text_file2.txt", ".____padding_file/0", "text_file.txt"]
    );
    assert!(sample.info.files[1].padding);
    assert_eq!(sample.tracker_tiers().len(), 2);

    // v2 and hybrid (BEP 52). v2.torrent: a hybrid of one 64 KiB file of zeros.
    let hybrid = load("v2.torrent");
    assert_eq!(hybrid.version, MetaVersion::Hybrid);
    assert!(hybrid.info.hybrid);
    let v2 = hybrid.v2.as_ref().unwrap();
    assert_eq!(v2.files.len(), 1);
    assert_eq!(v2.files[0].path, ["test64K"]);
    assert_eq!(v2.files[0].length, 65536);
    assert!(
        v2.files[0].piece_layer.is_empty(),
        "one piece: the root is its hash"
    );
    assert!(v2.piece_layers_complete);
    // v2_only.torrent: the same 1 MiB file as v2_multipiece_file.torrent, v2 alone.
    let only = load("v2_only.torrent");
    assert_eq!(only.version, MetaVersion::V2);
    let v2 = only.v2.as_ref().unwrap();
    assert_eq!(only.info_hash, v2.info_hash.truncated());
    assert_eq!(paths(&only), ["test1MB"]);
    assert!(only.info.pieces.is_empty() && !only.info.multi_file);
    assert_eq!(only.info.num_pieces(), 16);
    assert_eq!(v2.files[0].piece_layer.len(), 16);
    assert!(v2.piece_layers_complete);
    let multipiece = load("v2_multipiece_file.torrent");
    assert_eq!(
        multipiece.v2.as_ref().unwrap().files[0].pieces_root,
        v2.files[0].pieces_root
    );
    // The same info dictionary without `piece layers`: the same hash, layers to come later.
    let bare = load("v2_no_piece_layers.torrent");
    let bare_v2 = bare.v2.as_ref().unwrap();
    assert_eq!(bare_v2.info_hash, v2.info_hash);
    assert!(!bare_v2.piece_layers_complete);
    assert!(bare_v2.files[0].piece_layer.is_empty());
    let incomplete = load("v2_incomplete_piece_layer.torrent");
    let v2 = incomplete.v2.as_ref().unwrap();
    assert!(!v2.piece_layers_complete);
    assert!(v2.files.iter().any(|f| !f.piece_layer.is_empty()));
    // Three files of about 1 GB: a gap after the unaligned second one; no padding after the
    // last (libtorrent lists one there too: its 5 files are these 4 and a tail pad).
    let multiple = load("v2_multiple_files.torrent");
    assert_eq!(
        paths(&multiple),
        [
            "stress_test0",
            "stress_test1",
            ".pad/1048376",
            "stress_test2"
        ]
    );
    assert_eq!(
        multiple.info.files[3].offset % multiple.info.piece_length,
        0
    );
    assert!(multiple.v2.as_ref().unwrap().piece_layers_complete);
    assert_eq!(paths(&load("v2_invalid_filename.torrent")), ["_estMB"]);
    assert_eq!(
        paths(&load("v2_invalid_filename2.torrent")),
        ["_", "_.1", "stress_test2"]
    );
    let links = load("v2_symlinks.torrent");
    let targets: Vec<String> = links.v2.as_ref().unwrap().files[..3]
        .iter()
        .map(|f| f.symlink.as_ref().map(|t| t.join("/")).unwrap_or_default())
        .collect();
    assert_eq!(
        targets,
        [
            "Versions/Current/Headers",
            "Versions/Current/Resources",
            "Versions/Current/SDL2"
        ]
    );
    assert!(links.info.files.len() > 3);
    let empty = load("v2_empty_file.torrent");
    let v2 = empty.v2.as_ref().unwrap();
    assert_eq!(v2.files[1].length, 0);
    assert_eq!(v2.files[1].pieces_root, None);
    for n in 1..=5 {
        let m = load(&format!("empty-files-{n}.torrent"));
        assert_eq!(m.version, MetaVersion::Hybrid, "empty-files-{n}");
    }
}

/// What libtorrent reports for each v2 torrent it refuses, and what peerwire says instead:
/// the same reason, in peerwire's words.
#[test]
fn v2_refusals_give_libtorrents_reasons() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    use MetainfoError as E;
    type Check = fn(&MetainfoError) -> bool;
    let table: &[(&str, &str, Check)] = &[
        (
            "v2_bad_file_alignment.torrent",
            "torrent_inconsistent_files",
            |e| matches!(e, E::HybridMismatch(_)),
        ),
        (
            "v2_mismatching_metadata.torrent",
            "torrent_inconsistent_files",
            |e| matches!(e, E::HybridMismatch(_)),
        ),
        ("v2_deep_recursion.torrent", "depth_exceeded", |e| {
            matches!(e, E::Bencode(_))
        }),
        (
            "v2_empty_filename.torrent",
            "torrent_file_parse_failed",
            |e| matches!(e, E::EmptyFileName { .. }),
        ),
        (
            "v2_invalid_file.torrent",
            "torrent_file_parse_failed",
            |e| matches!(e, E::WrongType { .. }),
        ),
        (
            "v2_invalid_pad_file.torrent",
            "torrent_invalid_pad_file",
            |e| matches!(e, E::PaddingInFileTree { .. }),
        ),
        (
            "v2_invalid_piece_layer.torrent",
            "torrent_invalid_piece_layer",
            |e| matches!(e, E::WrongType { .. }),
        ),
        (
            "v2_invalid_piece_layer_root.torrent",
            "torrent_invalid_piece_layer",
            |e| matches!(e, E::PieceLayerMismatch { .. }),
        ),
        (
            "v2_invalid_piece_layer_size.torrent",
            "torrent_invalid_piece_layer",
            |e| matches!(e, E::PieceLayerLength { .. }),
        ),
        (
            "v2_invalid_root_hash.torrent",
            "torrent_invalid_piece_layer (on add)",
            |e| matches!(e, E::PieceLayerMismatch { .. }),
        ),
        ("v2_large_file.torrent", "torrent_invalid_length", |e| {
            matches!(e, E::FileTooLarge { .. })
        }),
        (
            "v2_large_offset.torrent",
            "too_many_pieces_in_torrent",
            |e| matches!(e, E::TooManyPieces { .. }),
        ),
        (
            "v2_missing_file_root_invalid_symlink.torrent",
            "torrent_missing_pieces_root",
            |e| matches!(e, E::MissingPiecesRoot { .. }),
        ),
        (
            "v2_no_power2_piece.torrent",
            "torrent_missing_piece_length",
            |e| matches!(e, E::BadValue { .. }),
        ),
        (
            "v2_non_multiple_piece_layer.torrent",
            "torrent_invalid_piece_layer",
            |e| matches!(e, E::PieceLayerNotMultipleOf32 { .. }),
        ),
        ("v2_overlong_integer.torrent", "invalid_bencoding", |e| {
            matches!(e, E::NotCanonical(_))
        }),
        (
            "v2_piece_layer_invalid_file_hash.torrent",
            "torrent_invalid_piece_layer",
            |e| matches!(e, E::BadPieceLayerKey { .. }),
        ),
        (
            "v2_piece_size.torrent",
            "torrent_missing_piece_length",
            |e| matches!(e, E::BadValue { .. }),
        ),
        (
            "v2_unknown_piece_layer_entry.torrent",
            "torrent_invalid_piece_layer",
            |e| matches!(e, E::UnknownPieceLayer { .. }),
        ),
        ("v2_unordered_files.torrent", "invalid_bencoding", |e| {
            matches!(e, E::NotCanonical(_))
        }),
        ("v2_zero_root.torrent", "torrent_missing_pieces_root", |e| {
            matches!(e, E::ZeroPiecesRoot { .. })
        }),
        (
            "v2_zero_root_small.torrent",
            "torrent_missing_pieces_root",
            |e| matches!(e, E::ZeroPiecesRoot { .. }),
        ),
    ];
    let mut wrong = Vec::new();
    for (file, libtorrent, check) in table {
        match Metainfo::from_file(&fixtures.join("libtorrent_test_torrents").join(file)) {
            Ok(_) => wrong.push(format!("{file}: loaded; libtorrent says {libtorrent}")),
            Err(e) if !check(&e) => wrong.push(format!(
                "{file}: libtorrent says {libtorrent}, peerwire: {}",
                chain(&e)
            )),
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `download`, `download_piece` and `seed` of a v2-only torrent without its piece layers (as
/// libtorrent's `v2_no_piece_layers.torrent`) stop at once with one clear line naming the file,
/// before touching the disk or the network: without the layers no piece could be checked.
#[test]
fn a_v2_torrent_without_piece_layers_is_refused_before_any_download() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    let torrent = fixtures.join("libtorrent_test_torrents/v2_no_piece_layers.torrent");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let commands: [Vec<std::ffi::OsString>; 3] = [
        vec![
            "download".into(),
            "-o".into(),
            out.clone().into(),
            torrent.clone().into(),
        ],
        vec![
            "download_piece".into(),
            "-o".into(),
            out.clone().into(),
            torrent.clone().into(),
            "0".into(),
        ],
        vec!["seed".into(), torrent.clone().into(), out.clone().into()],
    ];
    for args in commands {
        let result = common::run_with_deadline(
            common::peerwire().arg("-q").args(&args),
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("its piece layer is not in the torrent"),
            "{args:?}: {stderr}"
        );
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}

/// `info` on v2 torrents prints what docs/cli.md says: a hybrid adds `Info Hash v2:` after
/// `Info Hash:`; a v2-only torrent has it instead, and `Pieces Roots:` instead of piece hashes
/// (the page's example is this very torrent).
#[test]
fn info_prints_the_v2_info_hash() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    let info = |name: &str| {
        let path = fixtures.join("libtorrent_test_torrents").join(name);
        common::run_ok(
            common::peerwire().arg("info").arg(path),
            Duration::from_secs(20),
        )
    };
    assert_eq!(
        info("v2_only.torrent"),
        "Tracker URL: http://example.com/announce\n\
         Length: 1048576\n\
         Info Hash v2: 95e04d0c4bad94ab206efa884666fd89777dbe4f7bd9945af1829037a85c6192\n\
         Piece Length: 65536\n\
         Pieces Roots:\n\
         515ea9181744b817744ded9d2e8e9dc6a8450c0b0c52e24b5077f302ffbd9008 test1MB\n"
    );
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md"))
        .expect("docs/cli.md");
    assert!(
        page.contains(&format!(
            "$ peerwire info v2_only.torrent\n{}",
            info("v2_only.torrent")
        )),
        "docs/cli.md's v2 example is not what `info` prints"
    );
    let hybrid = info("v2.torrent");
    let lines: Vec<&str> = hybrid.lines().collect();
    assert_eq!(
        lines[2..6],
        [
            "Info Hash: c14199bbec64d0e9e439aa3b6b7639e666b86eca",
            "Info Hash v2: 597b180c1a170a585dfc5e85d834d69013ceda174b8f357d5bb1a0ca509faf0a",
            "Piece Length: 65536",
            "Piece Hashes:",
        ]
    );
}

/// Every file libtorrent rejects gives one `error:` line and exit status 1 from the binary.
#[test]
fn rejected_torrents_get_one_readable_error_line() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    for e in load_expectations(&fixtures).iter().filter(|e| !e.valid) {
        let path = fixtures.join("libtorrent_test_torrents").join(&e.file);
        let out = common::run_with_deadline(
            common::peerwire().arg("-q").arg("info").arg(&path),
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", e.file);
        assert!(out.stdout.is_empty(), "{}: printed on stdout", e.file);
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error: ")).count(),
            1,
            "{}: {stderr}",
            e.file
        );
        assert!(
            stderr.contains(&e.file),
            "{}: the error does not name the file: {stderr}",
            e.file
        );
    }
}

/// No input may make the loader panic: every corpus torrent, corrupted at random (a byte
/// changed, inserted or removed, or the file cut short) many times over, must load or fail
/// with an error. The seed is fixed, so a failure reproduces.
#[test]
fn corrupted_torrents_never_panic() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut loaded = 0;
    for e in load_expectations(&fixtures) {
        let original =
            std::fs::read(fixtures.join("libtorrent_test_torrents").join(&e.file)).unwrap();
        for _ in 0..200 {
            let mut bytes = original.clone();
            for _ in 0..rng.usize(1..4) {
                mutate(&mut bytes, &mut rng);
            }
            let result = std::panic::catch_unwind(|| Metainfo::from_bytes(&bytes));
            let outcome = result.unwrap_or_else(|_| {
                panic!(
                    "{} mutated to {:?} panicked",
                    e.file,
                    bytes.escape_ascii().to_string()
                )
            });
            loaded += usize::from(outcome.is_ok());
        }
    }
    assert!(
        loaded > 0,
        "some mutations should still load (the test must reach the deep checks)"
    );
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut fastrand::Rng) {
    if bytes.is_empty() {
        return;
    }
    let at = rng.usize(..bytes.len());
    let interesting = [b'0', b'9', b'-', b':', b'e', b'i', b'l', b'd', 0, 0xff];
    match rng.u8(..4) {
        0 => bytes[at] = interesting[rng.usize(..interesting.len())],
        1 => bytes.insert(at, interesting[rng.usize(..interesting.len())]),
        2 => {
            bytes.remove(at);
        }
        _ => bytes.truncate(at),
    }
}
