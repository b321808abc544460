//! `--max-download-rate`: one token bucket shared by every peer thread holds a download to the
//! rate asked for, measured over a few seconds, within ±20 %.

pub mod common;

use common::{download_from, peerwire, small_torrent, start_seed};
use std::net::SocketAddr;

#[test]
fn a_download_keeps_to_the_rate_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    // 4 MiB at 1,024 KiB/s: about 4 s, against well under a second unlimited on loopback.
    let (content, torrent) = small_torrent(dir.path(), 4 << 20, 65_536);
    let (_seed, port) = start_seed(peerwire(), &torrent, &content, &["--no-dht"]);
    let out = dir.path().join("limited.bin");
    let run = download_from(&[SocketAddr::from(([127, 0, 0, 1], port))], &torrent, &out)
        .args(&["--no-dht", "--max-download-rate", "1024"])
        .expect_bytes(&std::fs::read(&content).unwrap());
    let rate = (4 << 20) as f64 / run.took.as_secs_f64() / 1024.0;
    eprintln!("4 MiB in {:?}: {rate:.0} KiB/s", run.took);
    assert!(
        (819.0..=1229.0).contains(&rate),
        "{rate:.0} KiB/s for --max-download-rate 1024 (±20 %: 819 to 1,229), in {:?}",
        run.took
    );
}
