//! uTP (BEP 29, "uTorrent transport protocol") with libtorrent that speaks nothing else: TCP
//! off both ways, uTP on (its session still listens on the TCP port, but closes at once every
//! connection that arrives there). Through the real peer threads, both roles:
//!
//! - `peerwire download --transport utp` from such a seeder, byte-identical; `--transport tcp`
//!   does not reach it;
//! - `peerwire download` with the default `--transport both`: TCP is closed on it, and peerwire
//!   falls back to uTP;
//! - such a libtorrent leecher dials `peerwire seed` (default transport) over uTP and downloads;
//! - Message Stream Encryption (MSE/PE, RC4) over uTP, with libtorrent forcing it both ways:
//!   `peerwire download --encryption require` from it, and it downloading from
//!   `peerwire seed --encryption require`.
//!
//! What proves uTP is peerwire's own trace: the line `ADDR stream over uTP (BEP 29)` is the
//! last stream opened before the one handshake with that peer, and every piece of the
//! download crossed that connection (with encryption, the `stream encrypted` line sits
//! between the two). Without encryption it must be the only uTP stream: the first dial gets
//! through; with it, libtorrent may hang up on a first one (see [`FirstStream`]).
//!
//! Two things libtorrent does that peerwire's uTP once got wrong, each pinned by a test on
//! bytes libtorrent really sent (captured on loopback): it acknowledges with selective ACKs of
//! any length, not only BEP 29's whole 32-bit words (refusing them lost every ack of a
//! libtorrent leecher, and an upload that lost a packet then stalled), and it sends nothing
//! into a window smaller than its own packet (1,451 bytes), so a window update is owed as soon
//! as a read reopens a nearly shut window.

pub mod common;

use common::{LibtorrentPeer, StderrLines, download_from, peerwire, small_torrent, trace_lines};
use peerwire::peer::connection::UTP_NOTE;
use peerwire::trace::{Direction, TraceLine, Traced};
use peerwire::utp::connection::Connection;
use peerwire::utp::packet::{Packet, PacketType};
use peerwire::utp::{MAX_PAYLOAD, RECV_BUFFER};
use peerwire::wire::Message;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A few MiB: enough for hundreds of blocks (windows, acks and resends all at work) and still
/// well under a second on loopback.
const SIZE: usize = 8 * 1024 * 1024;
const PIECE: u32 = 262_144;
/// The driver's option for a libtorrent session with TCP off and uTP on, both ways.
const UTP_ONLY: &str = "--utp-only";
/// The driver's option for libtorrent forcing MSE/PE with RC4, in and out.
const FORCED: [&str; 2] = ["--encryption", "forced"];
/// The start of peerwire's trace line for an encrypted stream.
const RC4_NOTE: &str = "stream encrypted (MSE/PE, RC4)";
/// Three acknowledgements libtorrent 2.0.8 sent `peerwire seed` over uTP, each an ST_STATE
/// with a selective ACK, captured on loopback during an upload that stalled, with the offsets
/// (from `ack_nr + 2`) its mask says arrived. libtorrent sizes the mask to the packets it
/// holds, `ceil(span / 8)` bytes (here 1 and 6), where BEP 29 asks for multiples of 4 bytes.
const LIBTORRENT_ACKS: [(&str, std::ops::RangeInclusive<usize>); 3] = [
    ("2101e05c3ff36a063fec563c000fea206945758600011e", 1..=4),
    (
        "2101e05c3ff36b673fec5406000f0470694575860006feffffffff7f",
        1..=46,
    ),
    (
        "2101e05c3ffb22a33fec54cf000f0470694575870006ffffffffff3f",
        0..=45,
    ),
];
/// The payload of a full libtorrent 2.0.8 data packet over IPv4, as captured: a datagram of
/// 1,471 bytes (1,499 with the IP and UDP headers), 20 of them the uTP header. More than
/// peerwire's own packets carry (`MAX_PAYLOAD`, 1,400).
const LIBTORRENT_PAYLOAD: usize = 1_451;
/// The longest any transfer here may take (they take well under a second when all is well).
const DEADLINE: Duration = Duration::from_secs(60);

/// Whether peerwire's first uTP stream to the peer must be the one that carries the data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FirstStream {
    /// Exactly one uTP stream: any other was a failure.
    MustCarry,
    /// Streams before it may have been hung up on before any handshake: libtorrent 2.0.8
    /// derives the MSE/PE `req3` mask from a shared secret whose leading zero bytes it drops,
    /// so about 1 encrypted connection in 256 fails on its side (it answers
    /// `invalid_info_hash`), and peerwire dials again.
    MayBeRefused,
}

/// Checks, on peerwire's stderr (`--trace` on), that its one connection that carried the
/// data went over uTP, and returns that peer's address. `data` is the direction the pieces
/// went (`Received` for a download, `Sent` for a seed). With `encrypted`, the stream must also
/// have been encrypted with RC4 before the handshake.
fn assert_data_went_over_utp(
    stderr: &[String],
    data: Direction,
    encrypted: bool,
    first: FirstStream,
) -> SocketAddr {
    let all = stderr.join("\n");
    // Each line read back on its own, so that lines can be found by position.
    let traced: Vec<Option<TraceLine>> = stderr
        .iter()
        .map(|line| trace_lines(std::slice::from_ref(line)).pop())
        .collect();
    let notes: Vec<(usize, SocketAddr)> = stderr
        .iter()
        .enumerate()
        .filter_map(|(at, line)| {
            let addr = line.strip_suffix(UTP_NOTE)?.strip_suffix(' ')?;
            Some((at, addr.parse().ok()?))
        })
        .collect();
    if first == FirstStream::MustCarry {
        assert_eq!(notes.len(), 1, "one {UTP_NOTE:?} line:\n{all}");
    }
    let handshakes: Vec<usize> = (0..traced.len())
        .filter(|&at| {
            traced[at].as_ref().is_some_and(|l| {
                l.direction == Direction::Received && matches!(l.traced, Traced::Handshake(_))
            })
        })
        .collect();
    let [handshake] = handshakes[..] else {
        panic!(
            "want one connection, found {} handshakes:\n{all}",
            handshakes.len()
        );
    };
    // The stream that carried the handshake is the last one opened before it.
    let Some(&(note, peer)) = notes.iter().rev().find(|(at, _)| *at < handshake) else {
        panic!("the handshake came over no uTP stream:\n{all}");
    };
    assert_eq!(
        traced[handshake].as_ref().map(|l| l.peer),
        Some(peer),
        "the handshake came from another peer than the uTP stream:\n{all}"
    );
    let pieces: Vec<(usize, &TraceLine)> = traced
        .iter()
        .enumerate()
        .filter_map(|(at, l)| Some((at, l.as_ref()?)))
        .filter(|(_, l)| {
            l.direction == data && matches!(l.traced, Traced::Message(Message::Piece { .. }))
        })
        .collect();
    assert!(!pieces.is_empty(), "no piece traced:\n{all}");
    assert!(
        pieces
            .iter()
            .all(|(at, l)| *at > handshake && l.peer == peer),
        "a piece outside the connection with {peer}:\n{all}"
    );
    if encrypted {
        let rc4 = format!("{peer} {RC4_NOTE}");
        assert!(
            stderr[note + 1..handshake]
                .iter()
                .any(|line| line.starts_with(&rc4)),
            "no {rc4:?} line between the uTP line and the handshake:\n{all}"
        );
    }
    peer
}

/// A libtorrent seeder of `content` (the `seed/lesson.bin` of [`small_torrent`]) with uTP
/// only, and `extra` options for the driver; `None` when libtorrent is missing (skipped).
/// Returned once the torrent has started: the first dial gets through.
fn utp_only_seeder(torrent: &Path, content: &Path, extra: &[&str]) -> Option<LibtorrentPeer> {
    let mut options = vec![UTP_ONLY];
    options.extend_from_slice(extra);
    let mut seeder =
        LibtorrentPeer::start_with(torrent, content.parent().unwrap(), true, &options)?;
    // Otherwise libtorrent hangs up on peerwire's first dials, and the one-connection check
    // of `assert_data_went_over_utp` would see those as well.
    seeder.wait_until_started(Duration::from_secs(20));
    Some(seeder)
}

/// `peerwire download --trace EXTRA` of `torrent` from `seeder` alone into `out`: checks the
/// bytes against `content`, and returns the log lines.
fn download_over_utp(
    seeder: &LibtorrentPeer,
    torrent: &Path,
    content: &Path,
    out: &Path,
    extra: &[&str],
) -> Vec<String> {
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.port));
    let expected = std::fs::read(content).unwrap();
    let run = download_from(&[peer], torrent, out)
        .args(&["--trace"])
        .args(extra)
        .give_up_after(20)
        .expect_bytes(&expected);
    eprintln!("{} took {:?}", run.command, run.took);
    run.stderr.lines().map(str::to_string).collect()
}

/// `peerwire -v seed --trace EXTRA` of `content` on a free port, listening (TCP, and uTP on
/// the UDP port of the same number) when returned.
fn traced_seed(torrent: &Path, content: &Path, extra: &[&str]) -> (StderrLines, u16) {
    let port = common::free_port();
    let mut command = peerwire();
    command
        .args(["-v", "seed"])
        .arg(torrent)
        .arg(content)
        .args(["--trace", "--port", &port.to_string()])
        .args(extra);
    let seed = StderrLines::spawn(&mut command);
    // The session binds its UDP socket (uTP) before its TCP listener: TCP answering means
    // uTP is up too.
    common::wait_for_tcp(port, Duration::from_secs(30), "peerwire seed");
    (seed, port)
}

/// A libtorrent leecher with uTP only (and `extra` driver options) told to dial the peerwire
/// seed on `port`: waits until it has the whole torrent, then stops the seed and returns its
/// log lines. On a timeout the seed's log is in the failure message.
fn libtorrent_leeches_over_utp(
    torrent: &Path,
    content: &Path,
    seed: StderrLines,
    port: u16,
    extra: &[&str],
    dir: &Path,
) -> Option<Vec<String>> {
    let leech = dir.join("leech");
    std::fs::create_dir_all(&leech).unwrap();
    let mut options = vec![UTP_ONLY];
    options.extend_from_slice(extra);
    let mut leecher = LibtorrentPeer::start_with(torrent, &leech, false, &options)?;
    leecher.send(&format!("connect 127.0.0.1:{port}"));
    let started = Instant::now();
    // Caught so that a leecher that never finishes fails the test with the seed's log.
    let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        leecher.wait_for("finished", DEADLINE)
    }));
    let took = started.elapsed();
    let lines = seed.stop("-INT", Duration::from_secs(20));
    if finished.is_err() {
        panic!(
            "libtorrent did not finish over uTP; peerwire seed's log:\n{}",
            lines.join("\n")
        );
    }
    eprintln!("libtorrent leeched over uTP in {took:?}");
    common::assert_bytes(
        &leech.join("lesson.bin"),
        &std::fs::read(content).unwrap(),
        "the file libtorrent got from peerwire over uTP",
    );
    Some(lines)
}

#[test]
fn peerwire_downloads_over_utp_from_a_libtorrent_seeder_with_tcp_off() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), SIZE, PIECE);
    let Some(seeder) = utp_only_seeder(&torrent, &content, &[]) else {
        return;
    };
    let out = dir.path().join("utp.bin");
    let lines = download_over_utp(&seeder, &torrent, &content, &out, &["--transport", "utp"]);
    let peer =
        assert_data_went_over_utp(&lines, Direction::Received, false, FirstStream::MustCarry);
    // TCP alone cannot reach it: the uTP download above was no TCP download in disguise.
    let tcp = download_from(&[peer], &torrent, &dir.path().join("tcp.bin"))
        .args(&["--transport", "tcp"])
        .give_up_after(3)
        .run();
    assert!(
        !tcp.status.success(),
        "a TCP download from a libtorrent with TCP off got through:\n{}",
        tcp.stderr
    );
}

#[test]
fn peerwire_falls_back_to_utp_when_a_libtorrent_seeder_closes_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), SIZE, PIECE);
    let Some(seeder) = utp_only_seeder(&torrent, &content, &[]) else {
        return;
    };
    // The default `--transport both`: TCP first (libtorrent accepts and closes it, plain and
    // then MSE), then uTP.
    let out = dir.path().join("both.bin");
    let lines = download_over_utp(&seeder, &torrent, &content, &out, &[]);
    assert_data_went_over_utp(&lines, Direction::Received, false, FirstStream::MustCarry);
}

#[test]
fn a_libtorrent_leecher_with_tcp_off_downloads_from_peerwire_over_utp() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), SIZE, PIECE);
    // The default transport: peerwire accepts TCP and uTP on the same port number.
    let (seed, port) = traced_seed(&torrent, &content, &[]);
    let Some(lines) = libtorrent_leeches_over_utp(&torrent, &content, seed, port, &[], dir.path())
    else {
        return;
    };
    assert_data_went_over_utp(&lines, Direction::Sent, false, FirstStream::MustCarry);
}

#[test]
fn peerwire_requires_encryption_over_utp_from_a_libtorrent_seeder_that_forces_it() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), SIZE, PIECE);
    let Some(seeder) = utp_only_seeder(&torrent, &content, &FORCED) else {
        return;
    };
    let out = dir.path().join("rc4.bin");
    let lines = download_over_utp(
        &seeder,
        &torrent,
        &content,
        &out,
        &["--encryption", "require"],
    );
    assert_data_went_over_utp(&lines, Direction::Received, true, FirstStream::MayBeRefused);
}

#[test]
fn a_libtorrent_leecher_forcing_encryption_over_utp_downloads_from_peerwire() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), SIZE, PIECE);
    let (seed, port) = traced_seed(&torrent, &content, &["--encryption", "require"]);
    let Some(lines) =
        libtorrent_leeches_over_utp(&torrent, &content, seed, port, &FORCED, dir.path())
    else {
        return;
    };
    assert_data_went_over_utp(&lines, Direction::Sent, true, FirstStream::MayBeRefused);
}

/// libtorrent's acknowledgements reach peerwire's uTP sender whatever the length of their
/// selective ACK. When they are refused, a libtorrent leecher that lost a packet holds the
/// packets after it, so every ack it sends from then on carries a selective ACK and is
/// dropped: peerwire resends its oldest packet, which libtorrent acks (dropped again), never
/// the lost one after it, and after 20 s says the peer went silent.
#[test]
fn libtorrents_selective_acks_of_any_length_are_taken() {
    for (hex, received) in LIBTORRENT_ACKS {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex digits"))
            .collect();
        let packet = Packet::decode(&bytes)
            .unwrap_or_else(|e| panic!("libtorrent's ack {hex} was refused: {e}"));
        assert_eq!(packet.kind, PacketType::State, "{hex}");
        let sack = packet
            .selective_ack
            .unwrap_or_else(|| panic!("{hex}: the selective ACK was dropped"));
        assert_eq!(
            sack.received().collect::<Vec<_>>(),
            received.collect::<Vec<_>>(),
            "{hex}"
        );
    }
}

/// A libtorrent seeder that filled peerwire's receive window learns that it reopened, once
/// peerwire's app reads. libtorrent sends nothing into a window smaller than its packet (1,451
/// bytes), and waits for a window update; peerwire sends one only when the window it last
/// advertised was under its own packet size (1,400 bytes). Left between the two (the captured
/// stall advertised 1,417 bytes), with every request already sent, neither side sends again
/// and the download gives up after 20 s (1 run in 15 to 40 of the encrypted download above).
#[test]
fn a_window_too_small_for_a_libtorrent_packet_is_reopened_when_read() {
    let now = Instant::now();
    let mut syn = Packet::new(PacketType::Syn, 100);
    syn.seq_nr = 1;
    let mut ours = Connection::accept(&syn, 500, now).expect("an ST_SYN is accepted");
    ours.take_outgoing(now);
    // libtorrent's data, in order, acking nothing of ours (we sent no data: our last is 499).
    // The first packet is short, so that full ones leave the window just above our packet
    // size and below theirs.
    let left = MAX_PAYLOAD + (LIBTORRENT_PAYLOAD - MAX_PAYLOAD) / 2;
    let full = (RECV_BUFFER - left) / LIBTORRENT_PAYLOAD;
    let first = RECV_BUFFER - left - full * LIBTORRENT_PAYLOAD;
    let sizes = std::iter::once(first).chain(std::iter::repeat_n(LIBTORRENT_PAYLOAD, full));
    for (n, size) in sizes.enumerate() {
        let mut data = Packet::new(PacketType::Data, 101);
        data.seq_nr = 2 + n as u16;
        data.ack_nr = 499;
        data.wnd_size = 1 << 20;
        data.payload = vec![7; size];
        ours.handle_packet(data, now);
    }
    let acks = ours.take_outgoing(now);
    let advertised = acks.last().map(|p| p.wnd_size as usize);
    assert_eq!(advertised, Some(left), "the window is down to {left} bytes");
    // peerwire's app reads 64 KiB: a libtorrent packet fits again, and libtorrent must hear it.
    let mut buf = vec![0u8; 65_536];
    assert_eq!(ours.read(&mut buf), buf.len());
    let update = ours.take_outgoing(now);
    assert!(
        update
            .iter()
            .any(|p| p.wnd_size as usize >= LIBTORRENT_PAYLOAD),
        "no packet tells libtorrent that the window reopened ({} packets: {:?})",
        update.len(),
        update.iter().map(|p| p.wnd_size).collect::<Vec<_>>()
    );
}
