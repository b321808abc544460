//! uTP (BEP 29) over a bad path: a download between two peerwire processes through a relay
//! of the test's own that drops about 5 % of the datagrams, duplicates and reorders some, and
//! delays every one (the kernel's `netem`, which would do this, is not on every machine).
//! The download must complete, byte for byte, and the relay's counts must show that the path
//! really was that bad.

pub mod common;

use common::start_seed;
use common::{LossPlan, LossyRelay, create_torrent, download_from, peerwire, pseudo_random};
use std::net::SocketAddr;

#[test]
fn a_utp_download_through_a_lossy_reordering_relay_completes_intact() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("lossy.bin");
    let data = pseudo_random(4 << 20, 29);
    std::fs::write(&content, &data).unwrap();
    let torrent = dir.path().join("lossy.torrent");
    create_torrent(&content, &torrent, &[]);
    let (_seed, port) = start_seed(
        peerwire(),
        &torrent,
        &content,
        &["--transport", "utp", "--no-dht", "--bind", "127.0.0.1"],
    );
    let seed = SocketAddr::from(([127, 0, 0, 1], port));
    let relay = LossyRelay::start(seed, LossPlan::bad_path()).expect("start the relay");
    let out = dir.path().join("out.bin");
    let downloaded = download_from(&[relay.addr()], &torrent, &out)
        .args(&["--transport", "utp", "--no-dht", "--trace"])
        .give_up_after(60)
        .expect_bytes(&data);
    assert!(
        downloaded.stderr.contains("stream over uTP (BEP 29)"),
        "the download did not go over uTP:\n{}",
        downloaded.stderr
    );
    let both = relay.stats();
    eprintln!("relay: {both:?}; download took {:?}", downloaded.took);
    let stats = both.total();
    assert!(stats.dropped > 0, "the relay dropped nothing: {stats:?}");
    assert!(
        stats.duplicated > 0,
        "the relay duplicated nothing: {stats:?}"
    );
    assert!(
        stats.reordered > 0,
        "the relay reordered nothing: {stats:?}"
    );
}
