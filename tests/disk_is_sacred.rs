//! The disk is sacred (issue P6, walkthrough §2, §9): torrents whose paths try to escape — `..`,
//! absolute paths, backslashes, a hostile name — are downloaded from a peer into `-o DIR`;
//! every byte lands inside DIR, and nothing else in the parent directory changes.

mod common;

use common::{Script, ScriptedPeer, peerwire, pseudo_random, run_ok};
use peerwire::bencode::{Value, encode};
use peerwire::metainfo::{Metainfo, sha1};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const PIECE: usize = 16_384;

/// A multi-file torrent over `stream`, with the raw (unsanitised) `name` and file paths given.
fn hostile_torrent(name: &[u8], paths: &[&[&[u8]]], lengths: &[usize], stream: &[u8]) -> Vec<u8> {
    let pieces: Vec<u8> = stream.chunks(PIECE).flat_map(sha1).collect();
    let files = paths
        .iter()
        .zip(lengths)
        .map(|(path, len)| {
            let elements = path.iter().map(|e| Value::bytes(e.to_vec())).collect();
            Value::dict(vec![
                ("length", Value::integer(*len as i64)),
                ("path", Value::list(elements)),
            ])
        })
        .collect();
    let info = Value::dict(vec![
        ("files", Value::list(files)),
        ("name", Value::bytes(name.to_vec())),
        ("piece length", Value::integer(PIECE as i64)),
        ("pieces", Value::bytes(pieces)),
    ]);
    encode(&Value::dict(vec![("info", info)]))
}

/// Every path under `dir`, relative to it.
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let path = entry.path();
            out.insert(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out
}

fn download_stays_inside(name: &[u8], paths: &[&[&[u8]]]) {
    let lengths: Vec<usize> = (0..paths.len()).map(|i| 20_000 + 3_001 * i).collect();
    let stream = pseudo_random(lengths.iter().sum(), 77);
    let bytes = hostile_torrent(name, paths, &lengths, &stream);
    let metainfo = Metainfo::from_bytes(&bytes).expect("loads, with its paths made safe");
    let sandbox = tempfile::tempdir().unwrap(); // the parent: must not change but for `out`
    let torrent_dir = tempfile::tempdir().unwrap();
    let torrent = torrent_dir.path().join("hostile.torrent");
    std::fs::write(&torrent, &bytes).unwrap();
    let out = sandbox.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(sandbox.path().join("bystander.txt"), b"untouched").unwrap();
    let before = listing(sandbox.path());
    let seeder = ScriptedPeer::start(
        metainfo.info_hash,
        Arc::new(stream.clone()),
        PIECE as u64,
        Script::Honest,
    );
    let mut download = peerwire();
    download
        .arg("download")
        .arg("-o")
        .arg(&out)
        .arg(&torrent)
        .args([
            "--peer",
            &seeder.addr.to_string(),
            "--port",
            "0",
            "--give-up-after",
            "60",
        ]);
    run_ok(&mut download, Duration::from_secs(120));
    let after = listing(sandbox.path());
    let new: Vec<&String> = after.difference(&before).collect();
    assert!(
        new.iter().all(|p| p.starts_with("out")),
        "written outside out/: {new:?}"
    );
    assert_eq!(
        std::fs::read(sandbox.path().join("bystander.txt")).unwrap(),
        b"untouched"
    );
    // And the bytes are where the sanitised paths say, in torrent order.
    let root = out.join(&metainfo.info.name);
    let written: Vec<u8> = metainfo
        .info
        .content_files()
        .flat_map(|f| std::fs::read(f.path.iter().fold(root.clone(), |p, e| p.join(e))).unwrap())
        .collect();
    assert!(written == stream, "the files do not hold the stream");
}

#[test]
fn dot_dot_and_absolute_paths_stay_inside_the_output_directory() {
    download_stays_inside(
        b"album",
        &[
            &[b"..", b"..", b"escaped.bin"],
            &[b"/etc", b"absolute.bin"],
            &[b"sub", b"..", b"..", b"up.bin"],
            &[b"a\\..\\..\\back.bin"],
        ],
    );
}

#[test]
fn a_hostile_name_stays_inside_the_output_directory() {
    download_stays_inside(b"../../name", &[&[b"one.bin"], &[b"..", b"two.bin"]]);
    download_stays_inside(b"/", &[&[b"x.bin"]]);
}
