//! uTP (BEP 29) against Transmission 3.00, whose uTP is libutp, the reference implementation
//! of µTorrent's protocol: peerwire, given only the uTP choice (`--transport utp`, so
//! Transmission's TCP port might as well be firewalled), downloads from a Transmission seeder
//! with uTP on.

pub mod common;

use common::{Transmission, create_torrent, download_from, pseudo_random};
use peerwire::trace::{Direction, Traced};
use peerwire::wire::Message;
use std::net::SocketAddr;
use std::time::Duration;

#[test]
fn peerwire_downloads_over_utp_only_from_a_transmission_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = dir.path().join("seeded");
    std::fs::create_dir(&seeded).unwrap();
    let content = seeded.join("libutp.bin");
    let data = pseudo_random(3_000_000, 417);
    std::fs::write(&content, &data).unwrap();
    let torrent = dir.path().join("libutp.torrent");
    create_torrent(&content, &torrent, &["--piece-length", "65536"]);
    let Some(seeder) = Transmission::start_with_utp() else {
        return;
    };
    seeder.add(&torrent, &seeded);
    seeder.wait_until_complete(Duration::from_secs(60));
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.peer_port));
    let out = dir.path().join("from-transmission.bin");
    let run = download_from(&[peer], &torrent, &out)
        .args(&["--transport", "utp", "--no-dht", "--trace"])
        .give_up_after(60)
        .expect_bytes(&data);
    assert!(
        run.stderr
            .contains(&format!("{peer} stream over uTP (BEP 29)")),
        "no uTP connection to Transmission:\n{}",
        run.stderr
    );
    let pieces = run
        .trace()
        .iter()
        .filter(|line| {
            line.peer == peer
                && line.direction == Direction::Received
                && matches!(line.traced, Traced::Message(Message::Piece { .. }))
        })
        .count();
    assert!(
        pieces >= data.len() / 16_384,
        "{pieces} blocks from Transmission"
    );
}
