//! The fast extension (BEP 6 "Fast Extension") with real clients, in both roles, read from
//! peerwire's `--trace`:
//!
//! - peerwire downloads from a libtorrent seeder: libtorrent's handshake has the fast bit and
//!   it says `have_all` in place of a bitfield.
//! - libtorrent chokes peerwire in the middle of a download (an upload limit keeps requests
//!   queued; the driver's `--chokable` and `choke_all`, see `tests/peers/libtorrent_session.py`):
//!   `choke`, then a `reject_request` for each queued request; peerwire asks for every
//!   rejected block again, asks only for allowed fast pieces while choked, and finishes on the
//!   same connection once unchoked (`unchoke_all`).
//! - a libtorrent leecher downloads from `peerwire seed`: the seed says `have_all` and sends
//!   libtorrent its canonical allowed fast set.
//! - peerwire downloads from a Transmission seeder, which says `have_all`.
//! - a Transmission leecher downloads from `peerwire seed`, which says `have_all` (the seed
//!   dials it: Transmission never dials peers on 127.0.0.1).
//!
//! Each test skips loudly when its client is missing; every file must come out identical.

pub mod common;

use common::{LibtorrentPeer, StderrLines, Transmission, free_port, peerwire, small_torrent};
use common::{trace_lines, traced_download, wait_for_tcp};
use peerwire::metainfo::Metainfo;
use peerwire::peer::fast::{ALLOWED_FAST_COUNT, allowed_fast_set};
use peerwire::trace::{Direction, TraceLine, Traced};
use peerwire::wire::{Handshake, Message};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn libtorrent_seeding_says_have_all() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 300_000, 32_768);
    let Some(libtorrent) = LibtorrentPeer::start(&torrent, content.parent().unwrap(), true) else {
        return;
    };
    let out = dir.path().join("out");
    let lines = trace_lines(&traced_download(&torrent, &out, libtorrent.port));
    let seeder = loopback(libtorrent.port);
    let theirs = handshake(&lines, seeder, Direction::Received);
    assert!(theirs.peer_id.0.starts_with(b"-LT"), "{theirs:?}");
    assert!(theirs.supports_fast(), "libtorrent's handshake: {theirs:?}");
    assert!(handshake(&lines, seeder, Direction::Sent).supports_fast());
    let said = messages(&lines, seeder, Direction::Received);
    assert!(
        said.contains(&&Message::HaveAll),
        "no HaveAll from libtorrent: {said:?}"
    );
    let bitfield = said.iter().find(|m| matches!(m, Message::Bitfield(_)));
    assert!(
        bitfield.is_none(),
        "a bitfield besides HaveAll: {bitfield:?}"
    );
    assert_same_file(&content, &out, "peerwire");
}

#[test]
fn libtorrent_chokes_us_rejects_what_is_queued_and_we_ask_again() {
    let dir = tempfile::tempdir().unwrap();
    // 48 pieces of 64 KiB; at 400 kB/s the download takes about 8 s, and peerwire keeps about
    // 1.5 s worth of requests in flight once it has measured the rate (a new connection starts
    // with 8): some 600 kB, more than libtorrent has in its send buffer (about half a second
    // of its rate). The rest wait in libtorrent's queue, and those are what a choke rejects.
    let (content, torrent) = small_torrent(dir.path(), 3_145_728, 65_536);
    let limited = ["--upload-limit", "400000", "--chokable"];
    let seed_dir = content.parent().unwrap();
    let Some(mut libtorrent) = LibtorrentPeer::start_with(&torrent, seed_dir, true, &limited)
    else {
        return;
    };
    let seeder = loopback(libtorrent.port);
    let out = dir.path().join("out");
    let mut download = peerwire();
    download.arg("download").arg("-o").arg(&out).arg(&torrent);
    download.args(["--peer", &seeder.to_string()]);
    download.args(["--port", &free_port().to_string(), "--trace"]);
    let mut leecher = StderrLines::spawn(&mut download);
    // 60 blocks: past two seconds, so the pipeline's depth follows the measured rate (about
    // 37 blocks) rather than the 8 a connection starts with, which libtorrent's send buffer
    // would swallow whole, leaving nothing queued to reject.
    for _ in 0..60 {
        leecher.wait_for(&format!("{seeder} <- Piece"), DEADLINE);
    }
    libtorrent.send("choke_all");
    leecher.wait_for(&format!("{seeder} <- Choke"), DEADLINE);
    leecher.wait_for(&format!("{seeder} <- RejectRequest"), DEADLINE);
    libtorrent.send("unchoke_all");
    leecher.wait_for("done: ", DEADLINE);
    let lines = trace_lines(&leecher.stop("-INT", DEADLINE));
    assert_same_file(&content, &out, "peerwire");

    let handshakes = lines.iter().filter(|l| l.peer == seeder);
    let handshakes = handshakes.filter(|l| matches!(l.traced, Traced::Handshake(_)));
    assert_eq!(
        handshakes.count(),
        2,
        "libtorrent was dropped and dialled again"
    );
    let choked = choked_span(&lines, seeder);
    let rejects = found(&lines, seeder, Direction::Received, |m| match m {
        Message::RejectRequest {
            index,
            begin,
            length,
        } => Some((*index, *begin, *length)),
        _ => None,
    });
    assert!(
        rejects.first().is_some_and(|(n, _)| *n > choked.start),
        "libtorrent rejected before it choked: {rejects:?}"
    );
    every_reject_asked_again(&lines, &rejects);
    let asked = only_allowed_while_choked(&lines, seeder, choked);
    println!(
        "{} blocks rejected after the choke; {asked} blocks of allowed fast pieces requested \
         while choked",
        rejects.len()
    );
}

#[test]
fn peerwire_seed_says_have_all_and_allowed_fast_to_a_libtorrent_leecher() {
    let dir = tempfile::tempdir().unwrap();
    // 32 pieces: more than the allowed fast set, so the set is a choice, not every piece.
    let (content, torrent) = small_torrent(dir.path(), 1_048_576, 32_768);
    let port = free_port();
    let seed = common::traced_seeder(&torrent, &content, port);
    let save = dir.path().join("libtorrent");
    std::fs::create_dir_all(&save).unwrap();
    let Some(mut leecher) = LibtorrentPeer::start(&torrent, &save, false) else {
        return;
    };
    leecher.send(&format!("connect 127.0.0.1:{port}"));
    leecher.wait_for("finished", DEADLINE);
    let lines = trace_lines(&seed.stop("-INT", DEADLINE));
    assert_same_file(&content, &save.join("lesson.bin"), "libtorrent");

    // libtorrent dialled the seed: its connection is the one whose handshake came from -LT.
    let libtorrent = (lines.iter())
        .find_map(|l| match &l.traced {
            Traced::Handshake(h) if h.peer_id.0.starts_with(b"-LT") => Some(l.peer),
            _ => None,
        })
        .expect("libtorrent's handshake in the seed's trace");
    assert!(handshake(&lines, libtorrent, Direction::Received).supports_fast());
    let said = messages(&lines, libtorrent, Direction::Sent);
    assert!(said.contains(&&Message::HaveAll), "{said:?}");
    assert_canonical_allowed_fast(&said, &torrent);
}

#[test]
fn transmission_seeding_says_have_all() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 1_048_576, 32_768);
    let Some(transmission) = Transmission::start() else {
        return;
    };
    transmission.add(&torrent, content.parent().unwrap());
    transmission.wait_until_complete(DEADLINE); // its hash check of the data
    let out = dir.path().join("out");
    let lines = trace_lines(&traced_download(&torrent, &out, transmission.peer_port));
    let seeder = loopback(transmission.peer_port);
    let theirs = handshake(&lines, seeder, Direction::Received);
    assert!(theirs.peer_id.0.starts_with(b"-TR"), "{theirs:?}");
    assert!(
        theirs.supports_fast(),
        "Transmission's handshake: {theirs:?}"
    );
    let said = messages(&lines, seeder, Direction::Received);
    assert!(
        said.contains(&&Message::HaveAll),
        "no HaveAll from Transmission: {said:?}"
    );
    assert_same_file(&content, &out, "peerwire");
}

#[test]
fn peerwire_seed_says_have_all_to_a_transmission_leecher() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 1_048_576, 32_768);
    let Some(transmission) = Transmission::start() else {
        return;
    };
    let save = dir.path().join("transmission");
    std::fs::create_dir_all(&save).unwrap();
    transmission.add(&torrent, &save);
    let leecher = loopback(transmission.peer_port);
    let seed = seeder_dialling(&torrent, &content, leecher);
    transmission.wait_until_complete(DEADLINE);
    let lines = trace_lines(&seed.stop("-INT", DEADLINE));
    assert_same_file(&content, &save.join("lesson.bin"), "Transmission");

    let theirs = handshake(&lines, leecher, Direction::Received);
    assert!(
        theirs.supports_fast(),
        "Transmission's handshake: {theirs:?}"
    );
    let said = messages(&lines, leecher, Direction::Sent);
    assert!(said.contains(&&Message::HaveAll), "{said:?}");
    assert_canonical_allowed_fast(&said, &torrent);
}

/// `peerwire -v seed --trace` of `content` that dials `peer` itself, listening when returned.
fn seeder_dialling(torrent: &Path, content: &Path, peer: SocketAddr) -> StderrLines {
    let port = free_port();
    let mut command = peerwire();
    command.args(["-v", "seed"]).arg(torrent).arg(content);
    command.args(["--trace", "--port", &port.to_string()]);
    command.args(["--peer", &peer.to_string()]);
    let seed = StderrLines::spawn(&mut command);
    wait_for_tcp(port, DEADLINE, "peerwire seed");
    seed
}

/// A block: `(index, begin, length)` of a request.
type Block = (u32, u32, u32);

/// What `pick` finds in the messages traced with `peer` going `direction`, with the position
/// of each in `lines`.
fn found<T>(
    lines: &[TraceLine],
    peer: SocketAddr,
    direction: Direction,
    pick: impl Fn(&Message) -> Option<T>,
) -> Vec<(usize, T)> {
    let with_peer = lines.iter().enumerate();
    let going = with_peer.filter(|(_, l)| l.peer == peer && l.direction == direction);
    going
        .filter_map(|(n, l)| match &l.traced {
            Traced::Message(m) => pick(m).map(|t| (n, t)),
            Traced::Handshake(_) => None,
        })
        .collect()
}

/// Positions in `lines` of the first `choke` from `peer` and of the `unchoke` after it.
fn choked_span(lines: &[TraceLine], peer: SocketAddr) -> std::ops::Range<usize> {
    let is = |wanted: Message| move |m: &Message| (*m == wanted).then_some(());
    let chokes = found(lines, peer, Direction::Received, is(Message::Choke));
    let start = chokes.first().expect("the choke was waited for").0;
    let unchokes = found(lines, peer, Direction::Received, is(Message::Unchoke));
    let end = (unchokes.iter().find(|(n, _)| *n > start))
        .expect("no unchoke after the choke, yet the download finished")
        .0;
    start..end
}

/// Every block rejected had been requested, and is requested again after the reject (on any
/// connection: a reject hands the block back to the scheduler).
fn every_reject_asked_again(lines: &[TraceLine], rejects: &[(usize, Block)]) {
    let requests: Vec<(usize, Block)> = (lines.iter().enumerate())
        .filter(|(_, l)| l.direction == Direction::Sent)
        .filter_map(|(n, l)| match &l.traced {
            Traced::Message(Message::Request {
                index,
                begin,
                length,
            }) => Some((n, (*index, *begin, *length))),
            _ => None,
        })
        .collect();
    for (at, block) in rejects {
        assert!(
            requests.iter().any(|(n, b)| n < at && b == block),
            "libtorrent rejected {block:?}, which we never requested"
        );
        assert!(
            requests.iter().any(|(n, b)| n > at && b == block),
            "{block:?} was rejected and never requested again"
        );
    }
}

/// While `peer` choked us (`choked`, positions in `lines`) we asked it only for pieces of the
/// allowed fast set it sent us. Returns how many blocks we asked for while choked.
///
/// libtorrent 2.0.8's set is not BEP 6's canonical one: it hashes the whole address
/// (127.0.0.1), where the BEP masks the last byte (127.0.0.0), so it cannot be checked against
/// `allowed_fast_set`; peerwire goes by the `allowed_fast` messages, not by its own guess.
fn only_allowed_while_choked(
    lines: &[TraceLine],
    peer: SocketAddr,
    choked: std::ops::Range<usize>,
) -> usize {
    let allowed = found(lines, peer, Direction::Received, |m| match m {
        Message::AllowedFast { index } => Some(*index),
        _ => None,
    });
    let allowed: Vec<u32> = allowed.into_iter().map(|(_, index)| index).collect();
    let asked = found(lines, peer, Direction::Sent, |m| match m {
        Message::Request { index, .. } => Some(*index),
        _ => None,
    });
    let asked: Vec<u32> = (asked.into_iter())
        .filter(|(n, _)| choked.contains(n))
        .map(|(_, index)| index)
        .collect();
    let outside: Vec<&u32> = asked.iter().filter(|i| !allowed.contains(i)).collect();
    assert!(
        outside.is_empty(),
        "asked for pieces {outside:?} while choked; allowed fast: {allowed:?}"
    );
    println!("libtorrent's allowed fast set: {allowed:?}");
    asked.len()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The lines traced with `peer` going `direction`, in order.
fn with(
    lines: &[TraceLine],
    peer: SocketAddr,
    direction: Direction,
) -> impl Iterator<Item = &Traced> {
    let ours = lines.iter().filter(move |l| l.peer == peer);
    ours.filter(move |l| l.direction == direction)
        .map(|l| &l.traced)
}

/// The handshake traced with `peer` going `direction`.
fn handshake(lines: &[TraceLine], peer: SocketAddr, direction: Direction) -> Handshake {
    let mut traced = with(lines, peer, direction);
    (traced.find_map(|t| match t {
        Traced::Handshake(h) => Some(*h),
        Traced::Message(_) => None,
    }))
    .unwrap_or_else(|| panic!("no handshake with {peer} going {direction:?}"))
}

/// The messages traced with `peer` going `direction`, in order.
fn messages(lines: &[TraceLine], peer: SocketAddr, direction: Direction) -> Vec<&Message> {
    let traced = with(lines, peer, direction);
    (traced.filter_map(|t| match t {
        Traced::Message(m) => Some(m),
        Traced::Handshake(_) => None,
    }))
    .collect()
}

/// The `allowed_fast` messages a seed sent are BEP 6's canonical set for a peer on
/// 127.0.0.1: all of it, since a seed has every piece, once each, in order.
fn assert_canonical_allowed_fast(sent: &[&Message], torrent: &Path) {
    let allowed: Vec<u32> = (sent.iter())
        .filter_map(|m| match m {
            Message::AllowedFast { index } => Some(*index),
            _ => None,
        })
        .collect();
    let metainfo = Metainfo::from_file(torrent).unwrap();
    let pieces = metainfo.info.num_pieces() as u32;
    let canonical = allowed_fast_set(
        ALLOWED_FAST_COUNT,
        pieces,
        metainfo.info_hash,
        Ipv4Addr::LOCALHOST,
    );
    assert_eq!(allowed, canonical, "the allowed fast set sent");
}

fn assert_same_file(expected: &Path, actual: &Path, who: &str) {
    let (a, b) = (
        std::fs::read(expected).unwrap(),
        std::fs::read(actual).unwrap_or_default(),
    );
    assert!(
        a == b,
        "{who}: {} differs ({} vs {} bytes)",
        actual.display(),
        a.len(),
        b.len()
    );
}
