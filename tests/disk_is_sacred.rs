//! The disk is sacred (walkthrough §2, §9): torrents whose paths try to escape — `..`,
//! absolute paths, backslashes, a hostile name — are downloaded from a peer into `-o DIR`;
//! every byte lands inside DIR, and nothing else in the parent directory changes. The same
//! holds for every path-mangling torrent of libtorrent's test corpus (in the fixtures directory),
//! given content of its own.

pub mod common;

use common::{Script, ScriptedPeer, download_from, pseudo_random};
use peerwire::bencode::{Value, decode, encode};
use peerwire::encoding::sha1;
use peerwire::metainfo::Metainfo;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

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
    torrent_stays_inside(&bytes, &stream);
}

/// Downloads the torrent `bytes` (whose pieces are those of `stream`) from a scripted seeder
/// into `out/` of a sandbox directory; checks that nothing else in the sandbox changed and that
/// every file holds its bytes of the stream at its sanitised path.
fn torrent_stays_inside(bytes: &[u8], stream: &[u8]) {
    let metainfo = Metainfo::from_bytes(bytes).expect("loads, with its paths made safe");
    let sandbox = tempfile::tempdir().unwrap(); // the parent: must not change but for `out`
    let torrent_dir = tempfile::tempdir().unwrap();
    let torrent = torrent_dir.path().join("hostile.torrent");
    std::fs::write(&torrent, bytes).unwrap();
    let out = sandbox.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(sandbox.path().join("bystander.txt"), b"untouched").unwrap();
    let before = listing(sandbox.path());
    let seeder = ScriptedPeer::start(
        metainfo.info_hash,
        Arc::new(stream.to_vec()),
        metainfo.info.piece_length,
        Script::Honest,
    );
    download_from(&[seeder.addr], &torrent, &out)
        .run()
        .assert_success();
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
    // And each file's bytes are where its sanitised path says.
    let root = match metainfo.info.multi_file {
        true => out.join(&metainfo.info.name),
        false => out.clone(),
    };
    for file in metainfo.info.content_files() {
        let path = file.path.iter().fold(root.clone(), |p, e| p.join(e));
        let start = file.offset as usize;
        let expected = &stream[start..start + file.length as usize];
        let written = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(written == expected, "{} holds other bytes", path.display());
    }
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

/// The torrents of libtorrent's test corpus whose names or paths try something: `..`, absolute
/// and slash paths, backslashes, empty and `.` elements, a name of `..`, a trailing space, a
/// 300-byte name, colliding names after sanitising.
const CORPUS_PATH_TORRENTS: &[&str] = &[
    "absolute_filename.torrent",
    "backslash_path.torrent",
    "duplicate_files.torrent",
    "empty_path.torrent",
    "empty_path_multi.torrent",
    "hidden_parent_path.torrent",
    "invalid_directory_name.torrent",
    "invalid_filename.torrent",
    "invalid_filename2.torrent",
    "invalid_name2.torrent",
    "invalid_name3.torrent",
    "long_name.torrent",
    "parent_path.torrent",
    "slash_path.torrent",
    "slash_path2.torrent",
    "slash_path3.torrent",
    "symlink_filtered_path.torrent",
];

/// The corpus torrent `original` with its `pieces` replaced by the hashes of made-up content
/// of the right length (nobody has the bytes its hashes were made from), and that content.
/// Everything else — names, paths, every key — stays byte for byte as libtorrent wrote it.
fn rehashed(original: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let metainfo = Metainfo::from_bytes(original).expect("a valid corpus torrent");
    let total = metainfo.info.total_length as usize;
    assert!(total <= 64 << 20, "{total} bytes: too big for a test");
    let stream = pseudo_random(total, total as u64);
    let hashes: Vec<u8> = stream
        .chunks(metainfo.info.piece_length as usize)
        .flat_map(sha1)
        .collect();
    let root = decode(original).expect("decodes").value;
    let pieces = root
        .get("info")
        .and_then(|info| info.get("pieces"))
        .expect("a v1 torrent has pieces")
        .span
        .range();
    let mut bytes = original[..pieces.start].to_vec();
    bytes.extend_from_slice(format!("{}:", hashes.len()).as_bytes());
    bytes.extend_from_slice(&hashes);
    bytes.extend_from_slice(&original[pieces.end..]);
    (bytes, stream)
}

#[test]
fn every_path_torrent_of_the_libtorrent_corpus_stays_inside_the_output_directory() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    for name in CORPUS_PATH_TORRENTS {
        let original = std::fs::read(fixtures.join("libtorrent_test_torrents").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (bytes, stream) = rehashed(&original);
        eprintln!("{name}: {} bytes of content", stream.len());
        torrent_stays_inside(&bytes, &stream);
    }
}
