//! Peers that lie about metadata (walkthrough §13): metadata that does not hash to
//! the info hash, an absurd `metadata_size`, and (honest but unusual) pieces sent in reverse
//! order. Alone, a liar makes `magnet_info` fail with one readable line; beside an honest peer,
//! `download <magnet>` completes with the right bytes.

pub mod common;

use common::{Script, ScriptedPeer, peerwire, run_ok, run_with_deadline};
use peerwire::metainfo::Metainfo;
use std::sync::Arc;
use std::time::Duration;

const PIECE: u64 = 16_384;
const DEADLINE: Duration = Duration::from_secs(120);

/// 1,700 pieces of 16 KiB: an info dictionary of ~34 KB, three metadata pieces.
struct Fixture {
    dir: tempfile::TempDir,
    bytes: Arc<Vec<u8>>,
    metainfo: Metainfo,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let bytes = Arc::new(common::pseudo_random(1_700 * PIECE as usize - 99, 7));
    let file = dir.path().join("data.bin");
    std::fs::write(&file, &*bytes).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&file, &torrent, &["--piece-length", &PIECE.to_string()]);
    let metainfo = Metainfo::from_file(&torrent).unwrap();
    assert!(
        metainfo.info_bytes.len() > 2 * 16_384,
        "the metadata must span pieces"
    );
    Fixture {
        dir,
        bytes,
        metainfo,
    }
}

impl Fixture {
    fn peer(&self, script: Script) -> ScriptedPeer {
        let metadata = Some(Arc::clone(&self.metainfo.info_bytes));
        let (hash, bytes) = (self.metainfo.info_hash, Arc::clone(&self.bytes));
        ScriptedPeer::start_with_metadata(hash, bytes, PIECE, script, metadata)
    }

    fn magnet(&self, peers: &[&ScriptedPeer]) -> String {
        let mut uri = format!("magnet:?xt=urn:btih:{}", self.metainfo.info_hash.to_hex());
        for peer in peers {
            uri.push_str(&format!("&x.pe={}", peer.addr));
        }
        uri
    }
}

/// Alone, the liar gives no metadata: one error line that says why.
fn refused_alone(script: Script, reason: &str) {
    let f = fixture();
    let liar = f.peer(script);
    let mut info = peerwire();
    info.args(["magnet_info", &f.magnet(&[&liar]), "--port", "0"]);
    let output = run_with_deadline(&mut info, DEADLINE);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{script:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{script:?}: {stderr}");
    assert!(
        stderr.contains(reason),
        "{script:?}: no {reason:?} in:\n{stderr}"
    );
    assert!(output.stdout.is_empty());
}

/// Beside an honest peer (which answers in reverse order), the download completes.
fn survived_beside_an_honest_peer(script: Script) {
    let f = fixture();
    let liar = f.peer(script);
    let honest = f.peer(Script::MetadataReversed);
    let out = f.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut download = peerwire();
    download
        .args(["download", &f.magnet(&[&liar, &honest]), "-o"])
        .arg(&out)
        .args(["--port", "0", "--give-up-after", "60"]);
    run_ok(&mut download, DEADLINE);
    let got = std::fs::read(out.join("data.bin")).unwrap();
    assert!(got == *f.bytes, "{script:?}: the file differs");
}

#[test]
fn metadata_with_the_wrong_hash_is_refused() {
    refused_alone(Script::MetadataWrongHash, "does not hash to the info hash");
    survived_beside_an_honest_peer(Script::MetadataWrongHash);
}

#[test]
fn an_absurd_metadata_size_is_refused_before_allocating() {
    refused_alone(
        Script::MetadataHuge,
        "announces 1099511627776 bytes of metadata",
    );
    survived_beside_an_honest_peer(Script::MetadataHuge);
}

#[test]
fn metadata_pieces_in_reverse_order_are_fine() {
    let f = fixture();
    let peer = f.peer(Script::MetadataReversed);
    let mut info = peerwire();
    info.args(["magnet_info", &f.magnet(&[&peer]), "--port", "0"]);
    let stdout = run_ok(&mut info, DEADLINE);
    let expected = format!("Info Hash: {}", f.metainfo.info_hash.to_hex());
    assert!(stdout.lines().any(|l| l == expected), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.len() == 40).count(),
        1_700,
        "piece hashes"
    );
}
