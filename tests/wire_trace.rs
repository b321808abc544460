//! The wire trace (`--trace`) is a faithful disassembler of real exchanges (BEP 3 messages,
//! BEP 10 extended handshakes): every line of it is read back with
//! `peerwire::trace::parse_trace_line` and checked against what really crossed the wire.
//!
//! - peerwire seeder ↔ peerwire leecher, both traced: every message one side says it sent
//!   (`->`) is one the other side says it received (`<-`), in the same order; only the last few
//!   messages queued as a connection closes may never arrive.
//! - peerwire leecher ← libtorrent seeder: libtorrent's handshake names our torrent and a
//!   libtorrent peer id, and every block received answers a request we sent.
//!
//! In both, every message read back re-encodes (`Message::to_bytes`) and decodes
//! (`Message::read_from`) to itself, and the blocks received add up to the file, each byte
//! once. If the trace format changes, a line no longer reads back and the test fails.

pub mod common;

use common::{LibtorrentPeer, free_port, small_torrent, trace_lines, traced_download};
use peerwire::metainfo::Metainfo;
use peerwire::trace::{Direction, TraceLine, Traced};
use peerwire::wire::Message;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// 9 full pieces of 32 KiB (two blocks each) and a short last one of 5,088 bytes (one block).
const SIZE: usize = 300_000;
const PIECE_LENGTH: u32 = 32_768;
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn both_ends_of_a_peerwire_exchange_trace_the_same_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), SIZE, PIECE_LENGTH);
    let port = free_port();
    let mut seeder = common::traced_seeder(&torrent, &content, port);
    let leecher = trace_lines(&traced_download(&torrent, &dir.path().join("out"), port));
    seeder.wait_for(": disconnected", DEADLINE); // it has read all that arrived
    let seeder = trace_lines(&seeder.stop("-INT", DEADLINE));

    let seeder_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let leecher_addr = only_peer(&seeder, "the seeder");
    assert_eq!(only_peer(&leecher, "the leecher"), seeder_addr);
    arrived_in_order(&leecher, &seeder, "leecher → seeder");
    arrived_in_order(&seeder, &leecher, "seeder → leecher");
    println!(
        "{} lines traced by the leecher, {} by the seeder ({leecher_addr})",
        leecher.len(),
        seeder.len()
    );
    for line in leecher.iter().chain(&seeder) {
        round_trips(line);
    }
    blocks_make_the_file(&leecher, &torrent);
}

#[test]
fn a_download_from_libtorrent_reads_back_from_its_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), SIZE, PIECE_LENGTH);
    let seed_dir = content.parent().unwrap();
    let Some(libtorrent) = LibtorrentPeer::start(&torrent, seed_dir, true) else {
        return;
    };
    let leecher = trace_lines(&traced_download(
        &torrent,
        &dir.path().join("out"),
        libtorrent.port,
    ));
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let theirs = handshake(&leecher, Direction::Received).expect("libtorrent's handshake");
    assert_eq!(theirs.info_hash, info_hash);
    assert!(theirs.peer_id.0.starts_with(b"-LT"), "{:?}", theirs.peer_id);
    assert!(theirs.supports_extensions(), "libtorrent speaks BEP 10");
    let ours = handshake(&leecher, Direction::Sent).expect("our handshake");
    assert!(ours.peer_id.0.starts_with(b"-PW0001-"));
    every_block_was_requested(&leecher);
    leecher.iter().for_each(round_trips);
    blocks_make_the_file(&leecher, &torrent);
}

/// The one peer all `lines` talk to (each test has exactly one connection).
fn only_peer(lines: &[TraceLine], who: &str) -> SocketAddr {
    let first = lines
        .first()
        .unwrap_or_else(|| panic!("{who} traced nothing"));
    let other = lines.iter().find(|l| l.peer != first.peer);
    assert!(other.is_none(), "{who} had two connections: {other:?}");
    first.peer
}

fn going(lines: &[TraceLine], direction: Direction) -> Vec<&Traced> {
    let matching = lines.iter().filter(|l| l.direction == direction);
    matching.map(|l| &l.traced).collect()
}

/// What `from` sent is what `to` received, in order. `->` is traced when a message is queued
/// and `<-` when it is read, so the last few messages queued as a connection closes (a
/// `have`, `not interested`, a keep-alive) may never arrive; nothing else may go missing.
fn arrived_in_order(from: &[TraceLine], to: &[TraceLine], what: &str) {
    let sent = going(from, Direction::Sent);
    let received = going(to, Direction::Received);
    for (n, (s, r)) in sent.iter().zip(&received).enumerate() {
        assert_eq!(s, r, "{what}: message {n} sent and received differ");
    }
    assert!(
        received.len() <= sent.len(),
        "{what}: more received than sent"
    );
    let lost = &sent[received.len()..];
    let closing = |t: &&Traced| {
        let Traced::Message(m) = t else { return false };
        matches!(
            m,
            Message::Have { .. } | Message::NotInterested | Message::KeepAlive | Message::Choke
        )
    };
    assert!(
        lost.len() <= 3 && lost.iter().all(closing),
        "{what}: sent but never received: {lost:?}"
    );
    assert!(received.len() >= 3, "{what}: only {received:?}");
}

/// The handshake traced in `direction`.
fn handshake(lines: &[TraceLine], direction: Direction) -> Option<peerwire::wire::Handshake> {
    going(lines, direction).into_iter().find_map(|t| match t {
        Traced::Handshake(h) => Some(*h),
        Traced::Message(_) => None,
    })
}

/// A message read back from the trace survives a trip through the wire format.
fn round_trips(line: &TraceLine) {
    let Traced::Message(message) = &line.traced else {
        return;
    };
    if matches!(message, Message::Unknown { .. }) {
        return; // its payload was skipped, not kept: there is nothing to re-encode
    }
    let frame = message.to_bytes();
    let decoded = Message::read_from(&mut &frame[..]).expect("a frame made by to_bytes");
    assert_eq!(&decoded, message, "{line:?}");
}

/// `(index, begin, length)` of every block in `lines` going `direction`.
fn blocks(lines: &[TraceLine], direction: Direction) -> Vec<(u32, u32, u32)> {
    let block = |t: &&Traced| match t {
        Traced::Message(Message::Piece {
            index,
            begin,
            block,
        }) => Some((*index, *begin, block.len() as u32)),
        _ => None,
    };
    going(lines, direction).iter().filter_map(block).collect()
}

/// Every block received was asked for in a `request` traced before it.
fn every_block_was_requested(lines: &[TraceLine]) {
    let mut requested = Vec::new();
    for line in lines {
        match (&line.direction, &line.traced) {
            (
                Direction::Sent,
                Traced::Message(Message::Request {
                    index,
                    begin,
                    length,
                }),
            ) => {
                requested.push((*index, *begin, *length));
            }
            (
                Direction::Received,
                Traced::Message(Message::Piece {
                    index,
                    begin,
                    block,
                }),
            ) => {
                let got = (*index, *begin, block.len() as u32);
                assert!(
                    requested.contains(&got),
                    "block {got:?} was never requested"
                );
            }
            _ => {}
        }
    }
}

/// The blocks received cover each piece from its first byte to its last, once: the file.
fn blocks_make_the_file(lines: &[TraceLine], torrent: &Path) {
    let info = Metainfo::from_file(torrent).unwrap().info;
    let mut received = blocks(lines, Direction::Received);
    received.sort();
    let mut expected = Vec::new();
    for index in 0..info.num_pieces() as u32 {
        let start = u64::from(index) * info.piece_length;
        let piece_len = (info.total_length - start).min(info.piece_length) as u32;
        for begin in (0..piece_len).step_by(16_384) {
            expected.push((index, begin, (piece_len - begin).min(16_384)));
        }
    }
    assert_eq!(
        received, expected,
        "blocks received vs the torrent's blocks"
    );
    let bytes: u64 = received.iter().map(|b| u64::from(b.2)).sum();
    assert_eq!(bytes, SIZE as u64);
}
