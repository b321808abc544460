//! `--select-file` (walkthrough §9): a download of some files of a torrent from a libtorrent
//! seeder (only those files on disk, plus the side file), a second run that adds a file and
//! fetches only the pieces it lacks, and `seed --select-file` of that partial folder to a
//! libtorrent leecher that wants only those files. Then the usage errors: a bad list, or a
//! number past the last file (of a `.torrent`, or of a magnet link once its metadata is in),
//! exit with status 2 and an `error:` line naming `--select-file`.

pub mod common;

use common::{LibtorrentPeer, download_from, peerwire, run_with_deadline};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);
const PIECE: u64 = 16_384;

/// Four files whose every boundary falls inside a 16 KiB piece (300,000 bytes, 19 pieces):
///
/// ```text
///   f1.bin    0 .. 100000   pieces 0-6    (piece 6 ends in f2)
///   f2.bin  100000 .. 150000   pieces 6-9 (7 and 8 wholly f2's)
///   f3.bin  150000 .. 270000   pieces 9-16   (piece 16 ends in f4)
///   f4.bin  270000 .. 300000   pieces 16-18
/// ```
const FILES: [(&str, usize); 4] = [
    ("f1.bin", 100_000),
    ("f2.bin", 50_000),
    ("f3.bin", 120_000),
    ("f4.bin", 30_000),
];

/// The content under `dir/seed/album` and its torrent (`dir/album.torrent`, no tracker).
fn album(dir: &Path) -> (PathBuf, PathBuf) {
    let content = dir.join("seed").join("album");
    std::fs::create_dir_all(&content).unwrap();
    for (i, (name, len)) in FILES.iter().enumerate() {
        std::fs::write(
            content.join(name),
            common::pseudo_random(*len, i as u64 + 70),
        )
        .unwrap();
    }
    let torrent = dir.join("album.torrent");
    common::create_torrent(&content, &torrent, &["--piece-length", &PIECE.to_string()]);
    (content, torrent)
}

/// The names in a directory, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The bytes the `done:` line says this run downloaded.
fn downloaded_bytes(stderr: &str) -> u64 {
    let done = stderr
        .lines()
        .find(|l| l.starts_with("done: "))
        .unwrap_or_else(|| panic!("no summary line:\n{stderr}"));
    let before = done
        .split(" bytes downloaded this run")
        .next()
        .unwrap_or_default();
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {done:?}"))
}

#[test]
fn files_1_and_3_from_libtorrent_then_file_2_then_seeding_them() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = album(dir.path());
    let Some(mut seeder) = LibtorrentPeer::start(&torrent, &dir.path().join("seed"), true) else {
        return;
    };
    seeder.wait_until_started(DEADLINE);
    let from = [SocketAddr::from(([127, 0, 0, 1], seeder.port))];
    let out = dir.path().join("out");
    let folder = out.join("album");

    // Files 1 and 3: pieces 0-6 and 9-16, fifteen whole pieces.
    let first = download_from(&from, &torrent, &out)
        .args(&["--select-file", "1,3"])
        .run();
    first.assert_success();
    common::assert_same_files(&content, &folder, ["f1.bin", "f3.bin"], "peerwire");
    assert_eq!(
        names_in(&folder),
        [".peerwire-parts", "f1.bin", "f3.bin"],
        "files 2 and 4 are not created; their bytes in pieces 6, 9 and 16 are in the side file"
    );
    assert_eq!(
        names_in(&out),
        ["album"],
        "nothing beside the torrent's folder"
    );
    assert_eq!(
        downloaded_bytes(&first.stderr),
        15 * PIECE,
        "{}",
        first.stderr
    );

    // Files 1 to 3: only pieces 7 and 8 are new; 6 and 9 give file 2 its bytes from the side
    // file, and nothing of files 1 and 3 is fetched again.
    let second = download_from(&from, &torrent, &out)
        .args(&["--select-file", "1-3"])
        .run();
    second.assert_success();
    common::assert_same_files(
        &content,
        &folder,
        ["f1.bin", "f2.bin", "f3.bin"],
        "peerwire",
    );
    assert_eq!(
        names_in(&folder),
        [".peerwire-parts", "f1.bin", "f2.bin", "f3.bin"]
    );
    assert_eq!(
        downloaded_bytes(&second.stderr),
        2 * PIECE,
        "{}",
        second.stderr
    );
    drop(seeder);

    // `seed` of the partial folder, to a libtorrent leecher that wants files 1 to 3 only (it
    // would wait for ever on a piece we claimed and could not serve).
    let (_seed, seed_port) = common::start_seed(
        peerwire(),
        &torrent,
        &folder,
        &["--select-file", "1-3", "--no-dht"],
    );
    let leech_dir = dir.path().join("leech");
    std::fs::create_dir_all(&leech_dir).unwrap();
    let Some(mut leecher) =
        LibtorrentPeer::start_with(&torrent, &leech_dir, false, &["--only-files", "0,1,2"])
    else {
        return;
    };
    assert_eq!(
        bitfield_of(seed_port, &torrent),
        (0..17).collect::<Vec<_>>(),
        "the pieces of files 1 to 3, and not 17 and 18 (file 4's alone)"
    );
    leecher.send(&format!("connect 127.0.0.1:{seed_port}"));
    leecher.wait_for("finished", DEADLINE);
    common::assert_same_files(
        &content,
        &leech_dir.join("album"),
        ["f1.bin", "f2.bin", "f3.bin"],
        "libtorrent, from peerwire's partial seed",
    );
}

/// The pieces a peerwire on `port` announces in its `bitfield`, asked by a bare BEP 3 peer
/// (no extension bits, so no `have_all`).
fn bitfield_of(port: u16, torrent: &Path) -> Vec<usize> {
    use peerwire::wire::{Bitfield, Handshake, Message};
    let metainfo = peerwire::metainfo::Metainfo::from_file(torrent).unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let ours = Handshake {
        reserved: [0; 8],
        info_hash: metainfo.info_hash,
        peer_id: peerwire::peer_id::PeerId::generate(),
    };
    ours.write_to(&mut stream).unwrap();
    Handshake::read_from(&mut stream).expect("peerwire's handshake");
    // Its first message (BEP 3: the bitfield comes first, if any).
    let Message::Bitfield(bits) = Message::read_from(&mut stream).expect("a message") else {
        panic!("the seed's first message is not a bitfield");
    };
    let pieces = metainfo.info.num_pieces();
    let bitfield = Bitfield::from_payload(bits, pieces).expect("a well-formed bitfield");
    (0..pieces).filter(|&i| bitfield.has(i)).collect()
}

/// `seed` without `--select-file` of a folder that lacks a file still refuses, as before.
#[test]
fn seed_of_a_partial_folder_needs_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = album(dir.path());
    std::fs::remove_file(content.join("f4.bin")).unwrap();
    let out = run_with_deadline(
        peerwire()
            .arg("seed")
            .arg(&torrent)
            .arg(&content)
            .args(["--port", "0", "--no-dht"]),
        DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: 3 of 19 pieces are missing"),
        "{stderr}"
    );
}

/// Runs `peerwire ARGS` and checks the usage error: status 2, the flag named on the first
/// `error:` line. Returns that line.
fn usage_error(args: &[&std::ffi::OsStr]) -> String {
    let out = run_with_deadline(peerwire().args(args), DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}:\n{stderr}");
    let first = stderr.lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with("error: ") && first.contains("'--select-file <LIST>'"),
        "{args:?}: {first}"
    );
    first
}

#[test]
fn a_list_that_is_not_file_numbers_is_a_usage_error() {
    for list in ["0", "9-3", "abc", "1,,2", "-1", ""] {
        let flag = format!("--select-file={list}");
        for command in [
            vec!["download", "x.torrent"],
            vec!["magnet_download", "magnet:?xt=urn:btih:x"],
            vec!["seed", "x.torrent", "data"],
        ] {
            let mut args: Vec<&std::ffi::OsStr> = command.iter().map(|a| a.as_ref()).collect();
            args.push(flag.as_ref());
            usage_error(&args);
        }
    }
}

#[test]
fn a_number_past_the_last_file_is_a_usage_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = album(dir.path());
    let out = dir.path().join("out");
    let first = usage_error(&[
        "download".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        torrent.as_os_str(),
        "--select-file".as_ref(),
        "1,4-5".as_ref(),
        "--no-dht".as_ref(),
    ]);
    assert_eq!(
        first,
        "error: invalid value '1,4-5' for '--select-file <LIST>': there is no file 5: the \
         torrent has 4 files (padding files not counted)"
    );
    assert!(!out.exists(), "refused before anything is created");
    usage_error(&[
        "seed".as_ref(),
        torrent.as_os_str(),
        content.as_os_str(),
        "--select-file".as_ref(),
        "5".as_ref(),
    ]);
}

/// A hybrid torrent (BEP 52) has padding files between its files: they take no number.
#[test]
fn padding_files_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (content, _) = album(dir.path());
    let hybrid = dir.path().join("hybrid.torrent");
    common::create_torrent(&content, &hybrid, &["--hybrid", "--piece-length", "16384"]);
    let first = usage_error(&[
        "download".as_ref(),
        "-o".as_ref(),
        dir.path().join("out").as_os_str(),
        hybrid.as_os_str(),
        "--select-file".as_ref(),
        "5".as_ref(),
        "--no-dht".as_ref(),
    ]);
    assert!(
        first.ends_with("the torrent has 4 files (padding files not counted)"),
        "{first}"
    );
}

/// For a magnet link the files are known only once the metadata is in: the same usage error,
/// after fetching it (from a peerwire seed named in the link).
#[test]
fn a_magnet_link_checks_the_list_after_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = album(dir.path());
    let (_seed, port) = common::start_seed(
        peerwire(),
        &torrent,
        &content,
        &["--no-dht", "--transport", "tcp"],
    );
    let info = common::run_ok(peerwire().arg("info").arg(&torrent), DEADLINE);
    let hash = info
        .lines()
        .find_map(|l| l.strip_prefix("Info Hash: "))
        .expect("an info hash");
    let magnet = format!("magnet:?xt=urn:btih:{hash}&x.pe=127.0.0.1:{port}");
    let out = dir.path().join("out");
    let first = usage_error(&[
        "download".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        magnet.as_ref(),
        "--select-file".as_ref(),
        "2,7".as_ref(),
        "--no-dht".as_ref(),
        "--port".as_ref(),
        "0".as_ref(),
    ]);
    assert!(first.contains("there is no file 7"), "{first}");
    assert!(!out.exists(), "refused before anything is created");
}
