//! libtorrent's own test torrents, judged by libtorrent's own verdicts.
//!
//! `libtorrent_test_torrents/` in the fixtures directory holds the 108 torrents of libtorrent's
//! test suite; `libtorrent_expectations.json` says which ones libtorrent loads and which it
//! rejects. peerwire must agree: every torrent libtorrent rejects is rejected with a clear
//! error (and no panic), and every v1 or hybrid torrent it loads is loaded with the same v1
//! info hash. Where peerwire deliberately differs, the file is listed in [`DELIBERATE`] with
//! the reason.
//!
//! The fixtures directory is found by `common::fixtures_dir` (`$PEERWIRE_FIXTURES`, else the one
//! kept next to the repository); without it the test skips loudly, and with
//! `PEERWIRE_INTEROP=require` it fails.

pub mod common;

use peerwire::metainfo::{Metainfo, MetainfoError};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Files libtorrent loads and peerwire refuses on purpose, and why.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "v2_only.torrent",
        "pure v2 (no v1 `pieces`): peerwire speaks v1 only and refuses it with a message saying so",
    ),
    (
        "v2_incomplete_piece_layer.torrent",
        "pure v2: refused as v2-only",
    ),
    ("v2_invalid_filename.torrent", "pure v2: refused as v2-only"),
    (
        "v2_invalid_filename2.torrent",
        "pure v2: refused as v2-only",
    ),
    ("v2_multiple_files.torrent", "pure v2: refused as v2-only"),
    ("v2_no_piece_layers.torrent", "pure v2: refused as v2-only"),
    ("v2_symlinks.torrent", "pure v2: refused as v2-only"),
];

struct Expectation {
    file: String,
    valid: bool,
    v1_info_hash: Option<String>,
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
    for e in &expectations {
        let path = fixtures.join("libtorrent_test_torrents").join(&e.file);
        let result = std::panic::catch_unwind(|| Metainfo::from_file(&path));
        let verdict = match result {
            Err(_) => Err("PANICKED".to_string()),
            Ok(loaded) => judge(e, loaded),
        };
        if let Err(why) = verdict {
            failures.push(format!("{}: {why}", e.file));
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with libtorrent:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Compares one load result with libtorrent's verdict.
fn judge(e: &Expectation, loaded: Result<Metainfo, MetainfoError>) -> Result<(), String> {
    let deliberate = DELIBERATE.iter().any(|(f, _)| *f == e.file);
    match (e.valid && !deliberate, loaded) {
        (true, Ok(m)) => match &e.v1_info_hash {
            Some(want) if *want != m.info_hash.to_hex() => {
                Err(format!("info hash {} != libtorrent's {want}", m.info_hash))
            }
            _ => Ok(()),
        },
        (true, Err(err)) => Err(format!(
            "libtorrent loads it, peerwire says: {}",
            chain(&err)
        )),
        (false, Ok(m)) => Err(format!(
            "libtorrent rejects it, peerwire loaded {:?}",
            m.info.name
        )),
        (false, Err(err)) if deliberate && !matches!(err, MetainfoError::V2Only) => Err(format!(
            "deliberately refused, but not as v2-only: {}",
            chain(&err)
        )),
        (false, Err(err)) if chain(&err).len() < 20 => {
            Err(format!("error too terse to help: {err:?}"))
        }
        (false, Err(_)) => Ok(()),
    }
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

/// Reads the verdicts, taking v1 info hashes missing from the JSON from MANIFEST.md's table.
fn load_expectations(fixtures: &Path) -> Vec<Expectation> {
    let manifest = std::fs::read_to_string(fixtures.join("MANIFEST.md")).expect("MANIFEST.md");
    let manifest_hashes: HashMap<String, String> = manifest
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let hash = cells.get(cells.len().checked_sub(2)?)?;
            (cells.len() > 3 && hash.len() == 40).then(|| (cells[1].to_string(), hash.to_string()))
        })
        .collect();
    let json = std::fs::read_to_string(fixtures.join("libtorrent_expectations.json"))
        .expect("expectations");
    json.split("\n {")
        .skip(1)
        .map(|entry| {
            let file = json_field(entry, "file").expect("every entry names its file");
            let verdict = json_field(entry, "verdict").unwrap_or_default();
            let v1_info_hash =
                json_field(entry, "v1_info_hash").or_else(|| manifest_hashes.get(&file).cloned());
            Expectation {
                valid: verdict == "valid",
                file,
                v1_info_hash,
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

/// libtorrent's own per-file checks (from `test_torrent_info.cpp`) that mean something for v1.
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
    assert!(load("v2.torrent").info.hybrid);
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
