//! The checks of the classroom exercises that `docs/exercises.md` sets.
//!
//! Each exercise has one test here, `exercise_N_...`, which a student runs with
//! `cargo test --test exercises exercise_N` (add `-- --nocapture` to see what it prints). The
//! tests are not `#[ignore]`d: `cargo test` runs every one of them against the reference code,
//! so an exercise whose check stops passing on the code as shipped is caught in CI, and every
//! exercise stays solvable.
//!
//! Where an exercise asks the student to *change* peerwire (another pipeline depth, another
//! piece picker, another choker, a new message), its check tests what must hold for *any*
//! correct solution, never the reference's exact choices: "the picker only asks a peer for
//! blocks it has and we lack, and the download completes", "the demo swarm finishes". Where an
//! exercise asks the student to *break* peerwire, the check is the one that the breakage
//! makes fail, with a message that says what a real peer did about it.
//!
//! A student's code may loop forever or wait for a message that never comes, so every check
//! runs under a time limit ([`common::within`]) and fails with a message naming what did not
//! finish, never hangs; inside it, every process has a deadline and is killed by PID, and
//! every wait is on an event with a deadline. Checks that need a real peer (libtorrent) skip
//! loudly when it is missing, and fail instead under `PEERWIRE_INTEROP=require` (as in CI).

pub mod common;

use common::{LibtorrentPeer, Script, ScriptedPeer, download_from, peerwire, within};
use common::{trace_lines, trace_text, traced_messages};
use peerwire::choker::{Choker, ChokerConfig, PeerStats, best_peers};
use peerwire::demo::{DemoConfig, DemoReport};
use peerwire::dht::lookup::Lookup;
use peerwire::dht::routing::{Heard, RoutingTable};
use peerwire::dht::{ALPHA, K, NodeId, NodeInfo};
use peerwire::metainfo::{InfoHash, Metainfo};
use peerwire::mse::{self, CryptoLevel, MseError, Policy};
use peerwire::peer::pipeline::{Pipeline, depth_for_rate};
use peerwire::peer_id::PeerId;
use peerwire::piece::{BLOCK_LEN, BlockRequest, PieceLayout};
use peerwire::scheduler::picker::Picker;
use peerwire::trace::{Direction, TraceLine, Traced};
use peerwire::utp::connection::{Connection as UtpConnection, Stats as UtpStats};
use peerwire::utp::packet::{Packet as UtpPacket, PacketType as UtpType};
use peerwire::wire::{Bitfield, Handshake, Message, WireError};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers shared by several exercises
// ---------------------------------------------------------------------------------------------

/// The time limit of every check: longer than the deadlines inside it (processes, demo
/// swarms), so that those fail first with their own messages; it catches what has no
/// deadline of its own, a student's function that never returns.
const LIMIT: Duration = Duration::from_secs(240);

/// What a trace line shows, by name: `Handshake`, `Request`, `HaveAll`, `Port`, ...
fn kind(line: &TraceLine) -> String {
    let shown = match &line.traced {
        Traced::Handshake(_) => return "Handshake".to_string(),
        Traced::Message(m) => format!("{m:?}"),
    };
    shown
        .split([' ', '('])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The message of a trace line, if it is one (not a handshake).
fn message(line: &TraceLine) -> Option<&Message> {
    match &line.traced {
        Traced::Message(m) => Some(m),
        Traced::Handshake(_) => None,
    }
}

/// Waits until the peer at `addr` answers a handshake for `info_hash`: libtorrent resets
/// connections for a second or so after it says `state seeding`. (The checks' own probe, not
/// part of any exercise.)
fn wait_for_handshake(addr: SocketAddr, info_hash: InfoHash, deadline: Duration) {
    let until = Instant::now() + deadline;
    let answers = || -> Result<bool, WireError> {
        let mut socket = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        let peer_id = PeerId::generate();
        let reserved = [0; 8];
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
        .write_to(&mut socket)?;
        Ok(Handshake::read_from(&mut socket)?.info_hash == info_hash)
    };
    while !answers().unwrap_or(false) {
        assert!(
            Instant::now() < until,
            "{addr} answered no handshake within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(100)); // poll interval while waiting for the event
    }
}

/// A small demo swarm (walkthrough §12), run in this process: a seeder and `leechers`
/// leechers sharing `size_mib` MiB. Fails the test if any leecher does not complete.
fn small_demo(size_mib: u64, leechers: usize, seeder_rate: Option<u64>) -> DemoReport {
    let config = DemoConfig {
        size_mib,
        leechers,
        seeder_rate,
        piece_length: 64 * 1024,
        progress: false,
        deadline: Duration::from_secs(60),
        ..DemoConfig::default()
    };
    let report = peerwire::demo::run(&config).expect("the demo swarm completes");
    let summary = report.summary_lines().join("\n");
    for leecher in &report.participants[1..] {
        assert!(
            leecher.completed_after.is_some(),
            "{} did not complete\n{summary}",
            leecher.name
        );
    }
    println!("{summary}");
    report
}

/// A file of pseudo-random bytes in a fresh directory, and a torrent of it (no tracker).
struct Content {
    dir: tempfile::TempDir,
    data: PathBuf,
    bytes: Arc<Vec<u8>>,
    torrent: PathBuf,
    metainfo: Metainfo,
}

fn content(pieces: usize, piece_length: usize, seed: u64) -> Content {
    let dir = tempfile::tempdir().expect("a temp dir");
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).expect("the seed dir");
    let data = seed_dir.join("data.bin");
    // The last piece a little shorter than the others, as in most real torrents.
    let bytes = Arc::new(common::pseudo_random(pieces * piece_length - 1000, seed));
    std::fs::write(&data, &*bytes).expect("the data file");
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(
        &data,
        &torrent,
        &["--piece-length", &piece_length.to_string()],
    );
    let metainfo = Metainfo::from_file(&torrent).expect("the torrent loads");
    Content {
        dir,
        data,
        bytes,
        torrent,
        metainfo,
    }
}

// ---------------------------------------------------------------------------------------------
// Exercise 1: read a wire trace
// ---------------------------------------------------------------------------------------------

/// The first `Request` of a demo leecher comes after the handshake, after the seeder said
/// what it has, after our `Interested`, and after its `Unchoke` (BEP 3: requests only while
/// unchoked). Prints the trace up to that line.
fn check_the_first_request() {
    let mut demo = peerwire();
    demo.args(["demo", "--size", "1", "--peers", "1", "--trace"]);
    let out = common::run_with_deadline(&mut demo, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the demo failed:\n{stderr}");
    let lines = trace_lines(&stderr.lines().collect::<Vec<_>>());
    let is = |line: &TraceLine, direction: Direction, names: &[&str]| {
        line.direction == direction && names.contains(&kind(line).as_str())
    };
    let first = lines
        .iter()
        .position(|l| is(l, Direction::Sent, &["Request"]))
        .unwrap_or_else(|| panic!("no Request in the trace:\n{stderr}"));
    let peer = lines[first].peer;
    let before: Vec<&TraceLine> = lines[..first].iter().filter(|l| l.peer == peer).collect();
    println!("the trace of {peer} up to our first request:");
    for line in before.iter().chain([&&lines[first]]) {
        println!("  {}", trace_text(line));
    }
    let seen =
        |direction: Direction, names: &[&str]| before.iter().position(|l| is(l, direction, names));
    let handshake =
        seen(Direction::Received, &["Handshake"]).expect("the peer's handshake comes first");
    // BEP 6's HaveAll (or HaveNone) says it in one message.
    let has = seen(
        Direction::Received,
        &["Bitfield", "Have", "HaveAll", "HaveNone"],
    )
    .expect("the peer says what it has (Bitfield, HaveAll or Have) before we request");
    let interested =
        seen(Direction::Sent, &["Interested"]).expect("we say Interested before we request");
    assert!(handshake < has, "a Bitfield before the handshake?");
    assert!(
        has < interested,
        "we are interested only once we know the peer has something"
    );
    // A request needs an Unchoke first, or (BEP 6) a piece the peer allowed while it chokes.
    let Some(Message::Request {
        index: requested, ..
    }) = message(&lines[first])
    else {
        panic!("not a request: {}", trace_text(&lines[first]));
    };
    let allowed = Message::AllowedFast { index: *requested };
    match seen(Direction::Received, &["Unchoke"]) {
        Some(unchoke) => assert!(
            interested < unchoke,
            "a peerwire seeder unchokes only peers that are interested"
        ),
        None => assert!(
            before
                .iter()
                .any(|l| l.direction == Direction::Received && message(l) == Some(&allowed)),
            "we requested piece {requested} while choked, and the peer did not allow it"
        ),
    }
    // How many requests go out before the first block comes back: the pipeline (exercise 3).
    let in_flight = lines[first..]
        .iter()
        .filter(|l| l.peer == peer)
        .take_while(|l| !is(l, Direction::Received, &["Piece"]))
        .filter(|l| is(l, Direction::Sent, &["Request"]))
        .count();
    println!("requests sent before the first Piece arrived: {in_flight}");
    assert!(in_flight >= 1);
}

#[test]
fn exercise_1_reading_a_trace() {
    let hint = "the demo swarm did not finish: is the reference code intact?";
    within(LIMIT, "exercise 1's check", hint, check_the_first_request);
}

// ---------------------------------------------------------------------------------------------
// Exercise 2: one flipped byte
// ---------------------------------------------------------------------------------------------

/// A download that finds a complete file with one byte flipped in piece `DAMAGED` requests
/// that piece again, and only that piece: the resume check (walkthrough §9) hashes every piece.
fn check_only_the_damaged_piece_is_fetched() {
    const DAMAGED: u32 = 5;
    const PIECE: usize = 32 * 1024;
    let content = content(8, PIECE, 21);
    let out = content.dir.path().join("out.bin");
    let mut damaged = content.bytes.to_vec();
    damaged[DAMAGED as usize * PIECE + 100] ^= 0xff;
    std::fs::write(&out, &damaged).expect("the damaged copy");
    let seeder = ScriptedPeer::start(
        content.metainfo.info_hash,
        Arc::clone(&content.bytes),
        PIECE as u64,
        Script::Honest,
    );
    let downloaded = download_from(&[seeder.addr], &content.torrent, &out)
        .args(&["--trace"])
        .give_up_after(30)
        .run();
    downloaded.assert_success();
    let requested: BTreeSet<u32> = traced_messages(&downloaded.trace(), Direction::Sent)
        .filter_map(|(_, m)| match m {
            Message::Request { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    println!("pieces requested: {requested:?}");
    assert_eq!(
        requested,
        BTreeSet::from([DAMAGED]),
        "only the damaged piece should be fetched again:\n{}",
        downloaded.stderr
    );
    common::assert_bytes(&out, &content.bytes, "the repaired copy");
}

#[test]
fn exercise_2_one_flipped_byte() {
    let hint = "the download did not end: is the resume check (Storage::verify_existing) stuck?";
    within(
        LIMIT,
        "exercise 2's check",
        hint,
        check_only_the_damaged_piece_is_fetched,
    );
}

// ---------------------------------------------------------------------------------------------
// Exercise 3: the pipeline depth
// ---------------------------------------------------------------------------------------------

/// The depths any answer must keep to: at least one request in flight (with none, nothing
/// ever arrives and the download stalls), at most 500 (peerwire and Transmission drop a peer
/// that queues more).
const DEPTHS: std::ops::RangeInclusive<usize> = 1..=500;

/// What any pipeline depth must satisfy: a depth in [`DEPTHS`] when new, for every rate, and
/// after `received` has measured a rate (its window is a second: the check feeds it blocks
/// for longer than that, fast then slow); never fewer requests for more bandwidth. Then a
/// download from a peer 40 ms away completes, and the demo swarm too.
fn check_pipeline_depth() {
    let start = Pipeline::new().depth();
    assert!(DEPTHS.contains(&start), "a new pipeline's depth is {start}");
    let mut previous = 0;
    for step in 0..=200 {
        let rate = if step == 0 {
            0.0
        } else {
            1.2f64.powi(step) // up to about 7 × 10^15 bytes per second
        };
        let depth = depth_for_rate(rate);
        assert!(DEPTHS.contains(&depth), "depth_for_rate({rate}) = {depth}");
        assert!(
            depth >= previous,
            "depth_for_rate({rate}) = {depth}, less than {previous} for a lower rate"
        );
        previous = depth;
    }
    check_received_past_its_window();
    let far = download_from_far_away(Duration::from_millis(40));
    let report = small_demo(4, 2, None);
    println!(
        "pipeline: starts at {start}; 2 MiB from a peer 40 ms away: {far}; demo: {:.2} s \
         (a debug build: measure with --release)",
        report.elapsed.as_secs_f64()
    );
}

/// Feeds `Pipeline::received` the way a peer thread does, for longer than its one-second
/// rate window: a block every millisecond for 2.5 s (about 16 MB/s), then, after 1.2 s of
/// silence, one more block (a very slow peer). The depth must stay in [`DEPTHS`] after every
/// block. Time passing is what is being tested here, so the check waits for it.
fn check_received_past_its_window() {
    let mut pipeline = Pipeline::new();
    let started = Instant::now();
    let mut blocks = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        pipeline.received(BLOCK_LEN as usize);
        blocks += 1;
        let depth = pipeline.depth();
        assert!(
            DEPTHS.contains(&depth),
            "after {blocks} blocks in {:?} (a fast peer) Pipeline::received set the depth to \
             {depth}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(1)); // the pace of the fast peer
    }
    std::thread::sleep(Duration::from_millis(1200)); // a second of silence: a slow peer
    pipeline.received(BLOCK_LEN as usize);
    let depth = pipeline.depth();
    assert!(
        DEPTHS.contains(&depth),
        "after a block that came 1.2 s after the one before (a slow peer) \
         Pipeline::received set the depth to {depth}"
    );
}

/// Downloads 2 MiB from a scripted peer that answers every message `delay` late (a link with
/// that round trip), and says how fast it went: at most depth × 16 KiB per round trip.
fn download_from_far_away(delay: Duration) -> String {
    let content = content(8, 256 * 1024, 40);
    let delay_ms = delay.as_millis() as u64;
    let far = ScriptedPeer::start(
        content.metainfo.info_hash,
        Arc::clone(&content.bytes),
        256 * 1024,
        Script::Delayed(delay_ms),
    );
    let out = content.dir.path().join("out.bin");
    let downloaded = download_from(&[far.addr], &content.torrent, &out)
        .give_up_after(30)
        .expect_bytes(&content.bytes);
    let rate = content.bytes.len() as f64 / downloaded.took.as_secs_f64() / f64::from(1 << 20);
    let at_most = |depth: f64| depth * 16.0 / 1024.0 / delay.as_secs_f64();
    format!(
        "{:.2} s, {rate:.1} MiB/s (at most {:.1} MiB/s with a depth of 1, {:.1} with 5)",
        downloaded.took.as_secs_f64(),
        at_most(1.0),
        at_most(5.0)
    )
}

#[test]
fn exercise_3_the_pipeline_depth() {
    let hint = "does Pipeline::received or depth_for_rate loop, or does the download stall \
                (a depth of 0 requests nothing)?";
    within(LIMIT, "exercise 3's check", hint, check_pipeline_depth);
}

// ---------------------------------------------------------------------------------------------
// Exercise 4: break the bitfield, and watch libtorrent hang up
// ---------------------------------------------------------------------------------------------

/// The bitfield we send passes the check we (and Transmission, and libtorrent) apply to the
/// bitfields we receive: exactly ⌈pieces ÷ 8⌉ bytes, spare bits zero.
fn check_our_bitfield_passes_our_own_check() {
    for pieces in 1..=100 {
        let mut some = Bitfield::new(pieces);
        (0..pieces).step_by(3).for_each(|i| some.set(i));
        for field in [Bitfield::new(pieces), some, Bitfield::full(pieces)] {
            let sent = field.as_bytes().to_vec();
            let received = Bitfield::from_payload(sent.clone(), pieces);
            assert!(
                received.is_ok(),
                "for {pieces} pieces we send {} bytes {sent:02x?}, which we would refuse: {}",
                sent.len(),
                received.err().map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }
}

/// A peerwire that holds 5 of 16 pieces (16: a multiple of 8, where an off-by-one in the
/// bitfield's length shows) downloads the rest from a libtorrent seeder. With some pieces
/// but not all it must say what it has with a `Bitfield` (not BEP 6's `HaveAll` or
/// `HaveNone`), and libtorrent checks its length as strictly as we do. If libtorrent hangs
/// up instead, the failure says why, in libtorrent's words and in peerwire's trace.
fn check_libtorrent_accepts_our_bitfield() {
    const PIECE: usize = 16 * 1024;
    let content = content(16, PIECE, 4);
    let seed_dir = content.data.parent().expect("the seed dir");
    let Some(seeder) = LibtorrentPeer::start(&content.torrent, seed_dir, true) else {
        return;
    };
    let libtorrent = addr(seeder.port);
    wait_for_handshake(
        libtorrent,
        content.metainfo.info_hash,
        Duration::from_secs(20),
    );
    // Pieces 0 to 4 already on disk (the resume check finds them), the rest zeros.
    let out = content.dir.path().join("out.bin");
    let mut partial = content.bytes.to_vec();
    partial[5 * PIECE..].fill(0);
    std::fs::write(&out, &partial).expect("the partial copy");
    // peerwire dials libtorrent (libtorrent would dial encrypted first, which we do not speak).
    let downloaded = download_from(&[libtorrent], &content.torrent, &out)
        .args(&["--trace"])
        .env("RUST_LOG", "peerwire=info")
        .give_up_after(15)
        .run();
    let ours: Vec<String> = downloaded
        .trace()
        .iter()
        .filter(|l| l.peer == libtorrent && l.direction == Direction::Sent)
        .map(trace_text)
        .collect();
    let complete = std::fs::read(&out).is_ok_and(|b| b == *content.bytes);
    if !downloaded.status.success() || !complete {
        // libtorrent reports `peer_error <addr> <why>` when a peer breaks the protocol.
        let said = std::panic::catch_unwind(|| {
            seeder.wait_for_any(&["peer_error"], Duration::from_secs(2))
        })
        .unwrap_or_else(|_| "no peer_error".into());
        // The first connection's trace and log, up to its end (peerwire dials again and again).
        let about = libtorrent.to_string();
        let mut first: Vec<&str> = Vec::new();
        for line in downloaded.stderr.lines().filter(|l| l.contains(&about)) {
            if !line.contains("Request {") {
                first.push(line);
            }
            if line.contains("disconnected") {
                break;
            }
        }
        panic!(
            "peerwire could not download from libtorrent ({libtorrent}).\n\
             libtorrent said: {said}\n\
             peerwire's first connection to it (requests left out):\n{}",
            first.join("\n")
        );
    }
    assert!(
        ours.iter().any(|t| t.contains("-> Bitfield")),
        "with 5 of 16 pieces peerwire sent libtorrent no Bitfield:\n{}",
        ours.join("\n")
    );
    println!("libtorrent took our bitfield and sent the 11 missing pieces");
}

#[test]
fn exercise_4_a_broken_bitfield() {
    let hint = "libtorrent or the peerwire download did not finish starting or stopping";
    within(LIMIT, "exercise 4's check", hint, || {
        check_libtorrent_accepts_our_bitfield();
        check_our_bitfield_passes_our_own_check();
    });
}

// ---------------------------------------------------------------------------------------------
// Exercise 5: what a choke does to your requests (BEP 6)
// ---------------------------------------------------------------------------------------------

/// A download from one scripted peer that speaks the fast extension: after 4 blocks (half the
/// 8 requests a new connection sends at once, so 4 are surely still in flight) it chokes, rejects every request still arriving, and unchokes once they stop. Each rejected
/// block must go back to the scheduler at once and be requested again after the unchoke, and
/// the download must finish well before the snub timeout (30 s here) could have rescued it
/// (it gives up after 15 s without progress).
fn check_rejected_blocks_are_requested_again() {
    let content = content(16, 32 * 1024, 55);
    let info_hash = content.metainfo.info_hash;
    let peer = ScriptedPeer::start(
        info_hash,
        Arc::clone(&content.bytes),
        32 * 1024,
        Script::FastChokeAndReject(4),
    );
    let out = content.dir.path().join("out.bin");
    let downloaded = download_from(&[peer.addr], &content.torrent, &out)
        .args(&["--trace", "--peer-timeout", "60"])
        .give_up_after(15)
        .run();
    let lines = downloaded.trace();
    let rejected: Vec<BlockRequest> = traced_messages(&lines, Direction::Received)
        .filter_map(|(_, m)| match *m {
            Message::RejectRequest {
                index,
                begin,
                length,
            } => Some(BlockRequest {
                index,
                begin,
                length,
            }),
            _ => None,
        })
        .collect();
    println!(
        "{} requests rejected after the choke, e.g. {:?}",
        rejected.len(),
        rejected.first()
    );
    assert!(
        !rejected.is_empty(),
        "the peer rejected nothing: did it choke?\n{}",
        downloaded.stderr
    );
    for block in &rejected {
        let request = Message::Request {
            index: block.index,
            begin: block.begin,
            length: block.length,
        };
        let asked = traced_messages(&lines, Direction::Sent).filter(|(_, m)| **m == request);
        assert!(
            asked.count() >= 2,
            "{request:?} was rejected and never asked again: does the peer thread give a \
             rejected block back to the scheduler (Event::Rejected)?"
        );
    }
    let took = downloaded.took;
    println!("the download took {took:?}");
    downloaded.assert_success();
    assert!(
        took < Duration::from_secs(20),
        "the download took {took:?}: the rejected blocks waited for a timeout instead of \
         going back to the scheduler when their reject arrived"
    );
    common::assert_bytes(&out, &content.bytes, "the downloaded file");
}

#[test]
fn exercise_5_what_a_choke_does_to_your_requests() {
    let hint = "the download did not end: a peer thread waiting for a block nobody will send?";
    within(
        LIMIT,
        "exercise 5's check",
        hint,
        check_rejected_blocks_are_requested_again,
    );
}

// ---------------------------------------------------------------------------------------------
// Exercise 6: another piece picker
// ---------------------------------------------------------------------------------------------

/// A download simulated without sockets, driving `Picker` the way the scheduler does: peers
/// join with random bitfields, ask for blocks, deliver some, drop others (a choke), and every
/// tenth completed piece fails its hash check.
struct Simulation {
    rng: fastrand::Rng,
    layout: PieceLayout,
    picker: Picker,
    /// The pieces verified so far: what the picker must never hand out again.
    have: Bitfield,
    /// Five peers; together they have every piece.
    peers: Vec<(SocketAddr, Bitfield)>,
    /// Each peer's requests that it has neither delivered nor dropped.
    outstanding: HashMap<SocketAddr, Vec<BlockRequest>>,
    /// Pieces completed (verified or failed) so far.
    completed: usize,
}

impl Simulation {
    fn new(seed: u64) -> Simulation {
        const PIECES: usize = 24;
        let mut rng = fastrand::Rng::with_seed(seed);
        let layout = PieceLayout {
            piece_length: 32 * 1024,
            total_length: PIECES as u64 * 32 * 1024 - 5000,
            hashes: vec![peerwire::metainfo::PieceHash([0; 20]); PIECES],
            v2: None,
        };
        let mut have = Bitfield::new(PIECES); // pieces found on disk (resume)
        (0..PIECES)
            .filter(|_| rng.u8(..) < 40)
            .for_each(|i| have.set(i));
        let mut picker = Picker::new(layout.clone(), &have);
        let mut peers: Vec<(SocketAddr, Bitfield)> = (0..5)
            .map(|n| {
                let mut field = Bitfield::new(PIECES);
                (0..PIECES)
                    .filter(|_| rng.bool())
                    .for_each(|i| field.set(i));
                (addr(7000 + n), field)
            })
            .collect();
        (0..PIECES).for_each(|i| peers[i % 5].1.set(i));
        peers
            .iter()
            .for_each(|(_, field)| picker.peer_joined(field));
        Simulation {
            rng,
            layout,
            picker,
            have,
            peers,
            outstanding: HashMap::new(),
            completed: 0,
        }
    }

    /// A random peer asks for blocks; every block handed out must be a real block of a piece
    /// the peer has and we lack, never given twice to one peer, never more than asked for.
    fn ask(&mut self, context: &str) -> SocketAddr {
        let (peer, field) = &self.peers[self.rng.usize(..self.peers.len())];
        let asked = self.rng.usize(1..12);
        let picked = self.picker.pick(*peer, field, asked);
        assert!(picked.len() <= asked, "asked for {asked}, got {picked:?}");
        let mine = self.outstanding.entry(*peer).or_default();
        for block in &picked {
            let context = format!("{context}: {peer} got {block:?}");
            assert!(self.layout.is_valid_block(block), "not a block: {context}");
            assert!(
                field.has(block.index as usize),
                "the peer lacks it: {context}"
            );
            assert!(
                !self.have.has(block.index as usize),
                "we have it: {context}"
            );
            assert!(!mine.contains(block), "asked twice: {context}");
            mine.push(*block);
        }
        *peer
    }

    /// `peer` delivers some of its outstanding blocks, and may choke us (dropping the rest).
    fn deliver(&mut self, peer: SocketAddr) {
        let mine = self.outstanding.entry(peer).or_default();
        let delivered: Vec<BlockRequest> = mine.drain(..self.rng.usize(..=mine.len())).collect();
        if self.rng.u8(..) < 30 {
            self.picker.release(peer, &std::mem::take(mine));
        }
        for block in delivered {
            let written = self.picker.written(peer, &block);
            // Endgame: the scheduler cancels the other copies of this block.
            for other in written.cancel_at {
                let theirs = self.outstanding.entry(other).or_default();
                theirs.retain(|b| *b != block);
            }
            let Some(index) = written.piece_complete else {
                continue;
            };
            self.completed += 1;
            let ok = !self.completed.is_multiple_of(10); // every tenth piece fails its hash check
            self.picker.verified(index, ok);
            if ok {
                self.have.set(index as usize);
            }
        }
    }
}

/// Whatever the picking order, the simulated download obeys the rules and completes.
fn simulate_a_download(seed: u64) {
    let mut simulation = Simulation::new(seed);
    for turn in 0..20_000 {
        if simulation.picker.is_complete() {
            assert!(simulation.have.is_complete(), "complete too early");
            return;
        }
        let peer = simulation.ask(&format!("seed {seed}, turn {turn}"));
        simulation.deliver(peer);
    }
    panic!(
        "seed {seed}: not complete after 20,000 turns ({} of {} pieces)",
        simulation.have.count(),
        simulation.have.num_pieces()
    );
}

/// The picker's rules hold in simulated downloads, and the demo swarm completes with it.
fn check_any_picker() {
    (1..=20).for_each(simulate_a_download);
    let report = small_demo(4, 3, Some(4 << 20));
    for n in 1..report.participants.len() {
        let (from_leechers, from_seeder) = report.pieces_from(n);
        println!(
            "leecher {n}: {from_leechers} pieces from leechers, {from_seeder} from the seeder"
        );
    }
}

#[test]
fn exercise_6_another_piece_picker() {
    let hint = "does Picker::next_new_piece loop, or return a piece again and again?";
    within(LIMIT, "exercise 6's check", hint, check_any_picker);
}

// ---------------------------------------------------------------------------------------------
// Exercise 7: another choker
// ---------------------------------------------------------------------------------------------

/// Random peers for the choker: some interested, some snubbed, some new, random rates.
fn random_peers(rng: &mut fastrand::Rng) -> Vec<PeerStats> {
    (0..rng.usize(0..12))
        .map(|n| PeerStats {
            peer: addr(8000 + n as u16),
            interested: rng.u8(..) < 180,
            download_rate: f64::from(rng.u32(..1_000_000)),
            upload_rate: f64::from(rng.u32(..1_000_000)),
            connected_for: Duration::from_secs(rng.u64(..300)),
            snubbed: rng.u8(..) < 40,
            unchoked: rng.bool(),
        })
        .collect()
}

/// What any choker must do: unchoke only connected, interested peers, each once; no more than
/// the slots (plus the optimistic one); and never leave a slot empty while an interested peer
/// that is not snubbed (or any, when seeding) waits. Then the demo swarm, whose seeder must
/// choose among the leechers, still completes.
fn check_any_choker() {
    let mut rng = fastrand::Rng::with_seed(11);
    for case in 0..2000 {
        let peers = random_peers(&mut rng);
        check_choker_case(case, &peers, rng.bool(), rng.usize(1..6));
    }
    let report = small_demo(4, 3, Some(2 << 20));
    let leechers = 1..report.participants.len();
    let traded: u64 = leechers
        .clone()
        .flat_map(|from| leechers.clone().map(move |to| (from, to)))
        .filter(|(from, to)| from != to)
        .map(|(from, to)| report.uploaded(from, to))
        .sum();
    println!("leechers uploaded {traded} bytes to each other");
}

/// One random case: `best_peers`, then four rounds of `Choker::round`, on the same peers.
fn check_choker_case(case: u64, peers: &[PeerStats], seeding: bool, slots: usize) {
    let context = || format!("case {case}, seeding {seeding}, {slots} slots: {peers:#?}");
    let all_interested = |list: &[SocketAddr]| {
        list.iter()
            .all(|a| peers.iter().any(|p| p.peer == *a && p.interested))
    };
    let no_duplicates =
        |list: &[SocketAddr]| list.iter().collect::<HashSet<_>>().len() == list.len();
    let best = best_peers(peers, seeding, slots);
    assert!(no_duplicates(&best), "twice in {best:?}: {}", context());
    assert!(best.len() <= slots, "too many: {best:?}: {}", context());
    assert!(
        all_interested(&best),
        "not interested: {best:?}: {}",
        context()
    );
    let eligible = peers
        .iter()
        .filter(|p| p.interested && (seeding || !p.snubbed))
        .count();
    let empty_slot = best.len() < eligible.min(slots);
    assert!(!empty_slot, "{best:?} leaves a slot empty: {}", context());
    let config = ChokerConfig {
        regular_slots: slots,
        optimistic_every: 3,
        ..ChokerConfig::default()
    };
    let mut choker = Choker::with_seed(config, case);
    let any_interested = peers.iter().any(|p| p.interested);
    for round in 0..4 {
        let unchoked = choker.round(peers, seeding);
        let what = || format!("round {round} unchoked {unchoked:?}: {}", context());
        assert!(no_duplicates(&unchoked), "twice: {}", what());
        assert!(unchoked.len() <= slots + 1, "too many: {}", what());
        assert!(all_interested(&unchoked), "not interested: {}", what());
        assert_eq!(!unchoked.is_empty(), any_interested, "{}", what());
    }
}

#[test]
fn exercise_7_another_choker() {
    let hint = "does best_peers (or Choker::round) loop?";
    within(LIMIT, "exercise 7's check", hint, check_any_choker);
}

// ---------------------------------------------------------------------------------------------
// Exercise 8: a leecher of your own
// ---------------------------------------------------------------------------------------------

/// Exercise 8: downloads piece `index` from the peer at `addr` using nothing but
/// `peerwire::wire` over a `TcpStream`. This body is our solution: delete it, keep the
/// signature, and write your own.
fn fetch_piece(
    addr: SocketAddr,
    info_hash: InfoHash,
    layout: &PieceLayout,
    index: u32,
) -> Result<Vec<u8>, WireError> {
    let mut socket = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    socket.set_read_timeout(Some(Duration::from_secs(20)))?;
    // 1. Handshakes: ours (no extension bits: we speak plain BEP 3), then theirs.
    let ours = Handshake {
        reserved: [0; 8],
        info_hash,
        peer_id: PeerId::generate(),
    };
    ours.write_to(&mut socket)?;
    let theirs = Handshake::read_from(&mut socket)?;
    if theirs.info_hash != info_hash {
        return Err(WireError::BadProtocol("another torrent".into()));
    }
    // 2. Say we are interested, then wait until the peer has the piece and unchokes us.
    Message::Interested.write_to(&mut socket)?;
    let (mut has_piece, mut unchoked) = (false, false);
    while !(has_piece && unchoked) {
        match Message::read_from(&mut socket)? {
            Message::Bitfield(bits) => {
                let field = Bitfield::from_payload(bits, layout.num_pieces())?;
                has_piece = field.has(index as usize);
            }
            Message::Have { index: i } if i == index => has_piece = true,
            Message::Unchoke => unchoked = true,
            Message::Choke => unchoked = false,
            _ => {} // keep-alives, extension messages, other haves
        }
    }
    // 3. Request every block of the piece at once (a pipeline as deep as the piece).
    for block in layout.blocks(index) {
        let BlockRequest {
            index,
            begin,
            length,
        } = block;
        Message::Request {
            index,
            begin,
            length,
        }
        .write_to(&mut socket)?;
    }
    // 4. Put the blocks where they belong until every one has arrived.
    let mut piece = vec![0u8; layout.piece_len(index) as usize];
    let mut missing: Vec<BlockRequest> = layout.blocks(index).collect();
    while !missing.is_empty() {
        match Message::read_from(&mut socket)? {
            Message::Piece {
                index: i,
                begin,
                block,
            } if i == index => {
                let arrived = BlockRequest {
                    index,
                    begin,
                    length: block.len() as u32,
                };
                if let Some(at) = missing.iter().position(|b| *b == arrived) {
                    missing.swap_remove(at);
                    piece[begin as usize..begin as usize + block.len()].copy_from_slice(&block);
                }
            }
            Message::Choke => return Err(WireError::BadProtocol("choked mid-piece".into())),
            _ => {}
        }
    }
    Ok(piece)
}

/// A hint for an error of `fetch_piece` that says little by itself.
fn why(error: &WireError) -> &'static str {
    match error {
        WireError::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            " (a read timed out: did you wait for a message the peer never sends? A peer \
             answers requests only once it has unchoked you, and only for blocks that exist: \
             the last piece is shorter)"
        }
        WireError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            " (the peer hung up: did you send it something it refuses?)"
        }
        _ => "",
    }
}

/// `fetch_piece` gets pieces that pass their SHA-1 check from `peer`.
fn fetch_and_verify(peer: SocketAddr, who: &str, content: &Content) {
    let layout = PieceLayout::new(&content.metainfo.info);
    let last = layout.num_pieces() as u32 - 1;
    for index in [0, 3, last] {
        let piece = fetch_piece(peer, content.metainfo.info_hash, &layout, index)
            .unwrap_or_else(|e| panic!("piece {index} from {who} at {peer}: {e}{}", why(&e)));
        assert!(
            layout.verify(index, &piece),
            "piece {index} from {who} does not match its SHA-1"
        );
        println!("piece {index} from {who}: {} bytes, SHA-1 ok", piece.len());
    }
}

/// `fetch_piece` works against a peerwire seeder, and against libtorrent (skipped loudly
/// when libtorrent is missing).
fn check_your_own_leecher() {
    let content = content(6, 64 * 1024, 8);
    let (_seeder, port) = common::start_seed(peerwire(), &content.torrent, &content.data, &[]);
    fetch_and_verify(addr(port), "peerwire", &content);
    let seed_dir = content.data.parent().expect("the seed dir");
    let Some(libtorrent) = LibtorrentPeer::start(&content.torrent, seed_dir, true) else {
        return;
    };
    let peer = addr(libtorrent.port);
    wait_for_handshake(peer, content.metainfo.info_hash, Duration::from_secs(20));
    fetch_and_verify(peer, "libtorrent", &content);
}

#[test]
fn exercise_8_a_leecher_of_your_own() {
    let hint = "does every read of your fetch_piece have a timeout (TcpStream::set_read_timeout), \
                and does every loop end?";
    within(LIMIT, "exercise 8's check", hint, check_your_own_leecher);
}

// ---------------------------------------------------------------------------------------------
// Exercise 9: XOR distance and bucket index, by hand
// ---------------------------------------------------------------------------------------------

/// An id whose first byte is `first` and whose other 19 bytes are 0: the ids of exercise 9.
fn id_starting(first: u8) -> NodeId {
    let mut bytes = [0u8; 20];
    bytes[0] = first;
    NodeId(bytes)
}

/// Our node's id in exercise 9: `0110 1001`, then zeros.
const OUR_ID: u8 = 0x69;
/// The nodes a, b, c, d of questions 1 to 3 (first bytes).
const NODES_ABCD: [(char, u8); 4] = [('a', 0x68), ('b', 0x6B), ('c', 0x96), ('d', 0x49)];
/// The target of question 3 (first byte).
const TARGET: u8 = 0x70;
/// The nodes of question 4, in the order they answer our queries (first bytes).
const FED: [u8; 19] = [
    0x80, 0x88, 0x90, 0x98, 0xA0, 0xA8, 0xB0, 0xB8, 0xC0, 0x00, 0x10, 0x20, 0x30, 0x49, 0x6B, 0x68,
    0x40, 0x50, 0x08,
];

/// The answers to exercise 9, as a student writes them.
struct XorAnswers {
    /// Question 1: the first byte of the XOR distance from our id to a, b, c, d (the other
    /// 19 bytes of each distance are 0).
    distances: [u8; 4],
    /// Question 2: how many leading bits a, b, c, d share with our id.
    shared_bits: [u32; 4],
    /// Question 3: a, b, c, d from the closest to `TARGET` to the farthest.
    closest_to_target: [char; 4],
    /// Question 4: for each node of `FED`, in order, the bucket it is in once all 19 have
    /// answered (bucket i: the nodes sharing exactly i leading bits with our id; the last
    /// bucket, at least i), or `None` if the table did not keep it.
    buckets: [Option<u32>; 19],
}

/// Exercise 9: your answers. This body holds ours: work the questions out on paper first,
/// then replace these numbers with yours and run the check.
fn xor_answers() -> XorAnswers {
    XorAnswers {
        distances: [0x01, 0x02, 0xFF, 0x20],
        shared_bits: [7, 6, 0, 2],
        closest_to_target: ['a', 'b', 'd', 'c'],
        buckets: [
            Some(0), // 0x80 ... 0xB8 fill the table's only bucket,
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            None,    // 0xC0 splits it, and then finds bucket 0 full of good nodes;
            Some(1), // 0x00 ... 0x40 fill bucket 1, which holds our id,
            Some(1),
            Some(1),
            Some(1),
            Some(2),
            Some(2),
            Some(2),
            Some(2),
            Some(2), // 0x50 splits it: those sharing 2 bits or more move to bucket 2;
            Some(1), // 0x08 shares 1 bit, and bucket 1 has room again.
        ],
    }
}

/// Each answer of `xor_answers` against what peerwire computes: `NodeId::distance`,
/// `NodeId::shared_prefix_bits`, an order by distance, and a `RoutingTable` fed the nodes of
/// question 4.
fn check_xor_answers() {
    let answers = xor_answers();
    let own = id_starting(OUR_ID);
    let mut wrong = Vec::new();
    for (i, (name, first)) in NODES_ABCD.iter().enumerate() {
        let node = id_starting(*first);
        let distance = own.distance(&node).0;
        let expected = [&[answers.distances[i]][..], &[0u8; 19][..]].concat();
        if distance[..] != expected[..] {
            wrong.push(format!(
                "question 1: the distance to {name} ({first:08b}) starts {:08b}, not {:08b}",
                distance[0], answers.distances[i]
            ));
        }
        let shared = own.shared_prefix_bits(&node);
        if shared != answers.shared_bits[i] {
            wrong.push(format!(
                "question 2: {name} ({first:08b}) shares {shared} leading bits with our id \
                 ({OUR_ID:08b}), not {}",
                answers.shared_bits[i]
            ));
        }
    }
    let target = id_starting(TARGET);
    let mut order = NODES_ABCD;
    order.sort_by_key(|(_, first)| id_starting(*first).distance(&target));
    let order: Vec<char> = order.iter().map(|(name, _)| *name).collect();
    if order != answers.closest_to_target {
        wrong.push(format!(
            "question 3: closest to {TARGET:08b} first is {order:?}, not {:?}",
            answers.closest_to_target
        ));
    }
    let now = Instant::now();
    let mut table = RoutingTable::new(own, now);
    for (n, first) in FED.iter().enumerate() {
        let node = NodeInfo {
            id: id_starting(*first),
            addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, n as u8 + 1), 6881),
        };
        table.heard_from(node, Heard::Reply, now);
    }
    let views = table.buckets(now);
    for (n, first) in FED.iter().enumerate() {
        let id = id_starting(*first);
        let found = views
            .iter()
            .find(|b| b.nodes.iter().any(|(info, _)| info.id == id))
            .map(|b| b.prefix_bits);
        if found != answers.buckets[n] {
            wrong.push(format!(
                "question 4: node {} ({first:08b}) ends in bucket {found:?}, not {:?}",
                n + 1,
                answers.buckets[n]
            ));
        }
    }
    println!("the table after question 4 ({} buckets):", views.len());
    for view in &views {
        let ids: Vec<String> = view
            .nodes
            .iter()
            .map(|(info, _)| format!("{:08b}", info.id.0[0]))
            .collect();
        let own = if view.covers_own_id { ", our id" } else { "" };
        println!("  bucket {}{own}: {}", view.prefix_bits, ids.join(" "));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn exercise_9_xor_distance_and_bucket_index() {
    let hint = "does the routing table loop while it splits?";
    within(LIMIT, "exercise 9's check", hint, check_xor_answers);
}

// ---------------------------------------------------------------------------------------------
// Exercises 10 and 11: lookups in a simulated DHT
// ---------------------------------------------------------------------------------------------

fn random_node_id(rng: &mut fastrand::Rng) -> NodeId {
    NodeId(std::array::from_fn(|_| rng.u8(..)))
}

/// A DHT simulated without sockets: every node has a real `RoutingTable` that has heard from
/// every other node, in a random order, and answers a lookup with the K closest nodes in its
/// table. Some nodes never answer; the peers of a torrent are stored only at the K nodes
/// truly closest to its info hash, as `announce_peer` leaves them.
struct SimulatedDht {
    nodes: Vec<NodeInfo>,
    tables: HashMap<SocketAddrV4, RoutingTable>,
    silent: HashSet<SocketAddrV4>,
    /// The one torrent, its info hash, and the peer announced for it.
    info_hash: NodeId,
    peer: SocketAddrV4,
}

impl SimulatedDht {
    fn new(size: u32, seed: u64, now: Instant) -> SimulatedDht {
        let mut rng = fastrand::Rng::with_seed(seed);
        let nodes: Vec<NodeInfo> = (0..size)
            .map(|n| {
                let [_, a, b, c] = n.to_be_bytes();
                NodeInfo {
                    id: random_node_id(&mut rng),
                    addr: SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), 6881),
                }
            })
            .collect();
        let mut tables = HashMap::new();
        for me in &nodes {
            let mut table = RoutingTable::new(me.id, now);
            let mut heard = nodes.clone();
            rng.shuffle(&mut heard);
            for other in heard {
                table.heard_from(other, Heard::Reply, now);
            }
            tables.insert(me.addr, table);
        }
        let silent = nodes
            .iter()
            .filter(|_| rng.u8(..) < 20) // about 8 % never answer
            .map(|n| n.addr)
            .collect();
        SimulatedDht {
            nodes,
            tables,
            silent,
            info_hash: random_node_id(&mut rng),
            peer: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 51413),
        }
    }

    /// The ids of the K nodes closest to `target` among those that answer.
    fn truly_closest(&self, target: &NodeId) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| !self.silent.contains(&n.addr))
            .map(|n| n.id)
            .collect();
        ids.sort_by_key(|id| id.distance(target));
        ids.truncate(K);
        ids
    }

    /// Runs `lookup` the way the `dht` thread does: queries as `next_queries` hands them out,
    /// answered one at a time in the order they were sent, the clock moved to the next
    /// deadline when nobody answers. Checks that at most ALPHA are ever in flight and that no
    /// node is asked twice. Returns the number of answers.
    fn run(&self, lookup: &mut Lookup, start: Instant) -> usize {
        let mut now = start;
        let mut waiting: std::collections::VecDeque<NodeInfo> = Default::default();
        let mut in_flight: HashSet<SocketAddrV4> = HashSet::new();
        let mut asked: HashSet<SocketAddrV4> = HashSet::new();
        let mut answers = 0;
        let stored: HashSet<NodeId> = self.truly_closest(&self.info_hash).into_iter().collect();
        for _ in 0..100_000 {
            if lookup.is_done() {
                return answers;
            }
            for node in lookup.next_queries(now) {
                assert!(asked.insert(node.addr), "{} asked twice", node.addr);
                in_flight.insert(node.addr);
                if !self.silent.contains(&node.addr) {
                    waiting.push_back(node);
                }
            }
            for addr in lookup.take_timed_out() {
                in_flight.remove(&addr);
            }
            assert!(
                in_flight.len() <= ALPHA,
                "{} queries in flight, more than ALPHA = {ALPHA}",
                in_flight.len()
            );
            if let Some(to) = waiting.pop_front() {
                let table = &self.tables[&to.addr];
                let nodes = table.closest(&lookup.target(), K, now);
                let values =
                    match stored.contains(&table.own_id()) && lookup.target() == self.info_hash {
                        true => vec![self.peer],
                        false => Vec::new(),
                    };
                in_flight.remove(&to.addr);
                lookup.answered(to.addr, table.own_id(), &nodes, &values, None, now);
                answers += 1;
                now += Duration::from_millis(30);
            } else if let Some(deadline) = lookup.next_deadline() {
                now = deadline; // nobody else will answer: jump to the next timeout
            } else {
                assert!(
                    lookup.is_done(),
                    "nothing to ask and nothing in flight, yet not done"
                );
            }
        }
        panic!("the lookup did not finish after 100,000 steps");
    }
}

/// Looks up `target` from `from` in `dht`; fails unless the lookup ends with the K nodes truly
/// closest to it among those that answer.
fn look_up(dht: &SimulatedDht, from: &NodeInfo, target: NodeId, what: &str) -> Lookup {
    let now = Instant::now();
    let start = dht.tables[&from.addr].closest(&target, K, now);
    let mut lookup = Lookup::new(target, start, now);
    let answers = dht.run(&mut lookup, now);
    let found: Vec<NodeId> = lookup
        .closest_answered()
        .iter()
        .map(|(n, _)| n.id)
        .collect();
    let truth = dht.truly_closest(&target);
    let missed = truth.iter().filter(|id| !found.contains(id)).count();
    assert!(
        missed == 0,
        "{what}: the lookup from {} stopped after {answers} answer(s) and missed {missed} of the \
         {K} nodes closest to {target}: it ended with\n  {found:?}\nwhere the closest are\n  \
         {truth:?}",
        from.addr
    );
    lookup
}

/// Lookups in a chain (each node knows only the next, closer one) and in a simulated DHT of
/// 300 nodes: each must end with the K nodes truly closest to its target, and a `get_peers`
/// lookup must find the peer stored at them.
fn check_lookups_find_the_closest() {
    // The chain: node i's id shares 8 × i leading bits with the target.
    let now = Instant::now();
    let target = NodeId([0x55; 20]);
    let chain: Vec<NodeInfo> = (0..12u8)
        .map(|i| {
            let mut id = target.0;
            id[usize::from(i)] ^= 0x80; // differs first at bit 8 × i
            NodeInfo {
                id: NodeId(id),
                addr: SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, i + 1), 6881),
            }
        })
        .collect();
    let mut lookup = Lookup::new(target, vec![chain[0]], now);
    let mut answers = 0;
    while !lookup.is_done() && answers < 100 {
        for asked in lookup.next_queries(now) {
            let i = chain
                .iter()
                .position(|n| *n == asked)
                .expect("a chain node");
            let next: Vec<NodeInfo> = chain.get(i + 1).copied().into_iter().collect();
            lookup.answered(asked.addr, asked.id, &next, &[], None, now);
            answers += 1;
        }
    }
    let closest = lookup.closest_answered().first().map(|(n, _)| n.id);
    assert_eq!(
        closest,
        Some(chain[11].id),
        "in a chain of 12 nodes, each knowing only the next, the lookup stopped after \
         {answers} answer(s) without reaching the last node, the closest"
    );
    println!("the chain: {answers} answers, the closest node found");

    for seed in 1..=3 {
        let dht = SimulatedDht::new(300, seed, now);
        let mut rng = fastrand::Rng::with_seed(seed);
        for n in 0..5 {
            let from = &dht.nodes[rng.usize(..dht.nodes.len())];
            let what = format!("network {seed}, lookup {n} of a random id");
            look_up(&dht, from, random_node_id(&mut rng), &what);
        }
        let from = &dht.nodes[rng.usize(..dht.nodes.len())];
        let what = format!("network {seed}, get_peers");
        let lookup = look_up(&dht, from, dht.info_hash, &what);
        assert_eq!(
            lookup.peers(),
            [dht.peer],
            "{what}: the peer announced to the {K} closest nodes was not found"
        );
        println!(
            "network {seed}: {} queries to find the peer among 300 nodes",
            lookup.queries_sent()
        );
    }
}

#[test]
fn exercise_10_a_lookup_that_stops_too_early() {
    let hint = "does Lookup::is_done ever return true?";
    within(
        LIMIT,
        "exercise 10's check",
        hint,
        check_lookups_find_the_closest,
    );
}

/// A routing table fed 2,000 random nodes keeps each in the bucket of its shared prefix with
/// our id, at most K per bucket, more than K in all, and the node closest to our id; and
/// lookups through tables built that way find the closest nodes.
fn check_the_table_splits() {
    let now = Instant::now();
    for seed in 1..=5 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let own = random_node_id(&mut rng);
        let mut table = RoutingTable::new(own, now);
        let mut closest: Option<NodeId> = None;
        for n in 0..2000u32 {
            let [_, a, b, c] = n.to_be_bytes();
            let id = random_node_id(&mut rng);
            if closest.is_none_or(|best| own.distance(&id) < own.distance(&best)) {
                closest = Some(id);
            }
            let addr = SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), 6881);
            table.heard_from(NodeInfo { id, addr }, Heard::Reply, now);
        }
        let views = table.buckets(now);
        let last = views.len() - 1;
        for (i, view) in views.iter().enumerate() {
            assert!(
                view.nodes.len() <= K,
                "bucket {i} holds {}",
                view.nodes.len()
            );
            for (info, _) in &view.nodes {
                let shared = own.shared_prefix_bits(&info.id);
                let fits = match i == last {
                    true => shared >= view.prefix_bits,
                    false => shared == view.prefix_bits,
                };
                assert!(
                    fits,
                    "{} shares {shared} bits with our id, and is in bucket {i}",
                    info.id
                );
            }
        }
        assert!(
            table.len() > K,
            "seed {seed}: after 2,000 nodes the table knows only {} in {} bucket(s): \
             does the bucket with our id split?",
            table.len(),
            views.len()
        );
        let closest = closest.expect("2,000 nodes");
        assert!(
            table.nodes().iter().any(|n| n.id == closest),
            "seed {seed}: the table dropped the node closest to our own id ({closest}), \
             sharing {} bits with it",
            own.shared_prefix_bits(&closest)
        );
        println!(
            "seed {seed}: {} nodes in {} buckets",
            table.len(),
            views.len()
        );
    }
    let dht = SimulatedDht::new(300, 4, now);
    let mut rng = fastrand::Rng::with_seed(4);
    for n in 0..5 {
        let from = &dht.nodes[rng.usize(..dht.nodes.len())];
        look_up(&dht, from, random_node_id(&mut rng), &format!("lookup {n}"));
    }
}

#[test]
fn exercise_11_a_routing_table_that_never_splits() {
    let hint = "does RoutingTable::heard_from loop while it splits?";
    within(LIMIT, "exercise 11's check", hint, check_the_table_splits);
}

// ---------------------------------------------------------------------------------------------
// Exercise 12: break the key exchange, and watch the handshake fail (MSE/PE)
// ---------------------------------------------------------------------------------------------

/// The specification's 768-bit prime, written out again here: the reference side below must
/// not borrow anything from `src/mse/`, or a change there would change both sides at once.
const MSE_PRIME_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
                             020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
                             4FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563";

/// A torrent the three handshakes of this check are about (no data behind it: only its
/// info hash crosses, hidden).
const MSE_TORRENT: InfoHash = InfoHash([0x5c; 20]);

/// Our BitTorrent handshake, the initial payload (IA) of the dialling side.
fn mse_bt_handshake(id: &[u8; 20]) -> Vec<u8> {
    Handshake {
        reserved: [0; 8],
        info_hash: MSE_TORRENT,
        peer_id: PeerId(*id),
    }
    .to_bytes()
    .to_vec()
}

/// A connected pair on 127.0.0.1 (dialled, accepted), every read and write bounded by 5 s.
fn mse_pair() -> (TcpStream, TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let a = TcpStream::connect(listener.local_addr().expect("its address")).expect("dial");
    let (b, _) = listener.accept().expect("accept");
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
    }
    (a, b)
}

/// What a side's error means for the *other* side's computation, in the words of the
/// specification's steps.
fn what_it_means(side: &str, error: &MseError) -> String {
    let meaning = match error {
        MseError::NoSync { what, .. } if what.contains("req1") => {
            "it never found HASH('req1', S) after the other side's public key and pad: the two \
             sides do not hold the same S (is Y = 2^X mod P, S = Y^X mod P, both 96 bytes \
             big-endian, on both sides?), or req1 is not SHA-1 of 'req1' then S"
        }
        MseError::NoSync { .. } => {
            "it never found RC4b(VC) after the other side's public key and pad: the two sides \
             share S but not keyB, or not its keystream (the 1,024 dropped bytes), or the VC"
        }
        MseError::UnknownInfoHash(_) => {
            "it found the req1 hash (so S is shared), but HASH('req2', SKEY) ⊕ HASH('req3', S) \
             named no torrent it serves: req2 or req3 is computed differently"
        }
        MseError::WrongVc(_) => {
            "S and the torrent agreed, but the verification constant decrypted to something else \
             than eight zero bytes: keyA, the dropped keystream, or the VC itself differ"
        }
        MseError::BadPublicKey(_) => "the other side's public key is 0, 1, P − 1 or not below P",
        MseError::NothingAcceptable { .. } | MseError::BadSelect { .. } => {
            "crypto_provide or crypto_select came out garbled or unacceptable: the RC4 streams \
             are out of step, or the fields are not where the specification puts them"
        }
        MseError::Closed { .. } => "the other side hung up first: read the other side's error",
        MseError::TimedOut { .. } => {
            "it waited for bytes that never came: one side sent less than the other expects"
        }
        _ => "see the error",
    };
    format!("{side}: {error}\n  which means: {meaning}")
}

/// Part 1: peerwire's `initiate` against peerwire's `accept`, RC4 only. Both must agree, the
/// dialler's BitTorrent handshake must arrive as the initial payload, and a message must cross
/// the RC4 stream each way byte for byte.
fn check_peerwire_to_peerwire() {
    let (a, b) = mse_pair();
    let ia = mse_bt_handshake(b"-PW0001-exercise-12a");
    let sent_ia = ia.clone();
    // A: dials, sends `Have(7)` through RC4, and reads B's answer.
    let dialler = std::thread::spawn(move || -> Result<Option<Message>, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = mse::initiate(a, &MSE_TORRENT, Policy::Rc4Only, &sent_ia, deadline)
            .map_err(|e| what_it_means("peerwire's dialling side (A, initiate)", &e))?;
        Message::Have { index: 7 }
            .write_to(&mut stream)
            .map_err(|e| format!("A could not send through RC4: {e}"))?;
        std::io::Write::flush(&mut stream).map_err(|e| e.to_string())?;
        Ok(Message::read_from(&mut stream).ok())
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let known = [InfoHash([0x17; 20]), MSE_TORRENT];
    let (mut stream, found, initial) = match mse::accept(b, &[], &known, Policy::Rc4Only, deadline)
    {
        Ok(accepted) => accepted,
        Err(error) => {
            let theirs = match dialler.join() {
                Ok(Err(saw)) => saw,
                Ok(Ok(_)) => "A finished its side without complaint".to_string(),
                Err(_) => "A panicked".to_string(),
            };
            panic!(
                "peerwire against peerwire: the key exchange failed.\n{}\n{theirs}",
                what_it_means("peerwire's accepting side (B, accept)", &error)
            );
        }
    };
    assert_eq!(
        found, MSE_TORRENT,
        "B found another torrent than A asked for"
    );
    assert_eq!(stream.level(), CryptoLevel::Rc4, "RC4 only, both sides");
    assert_eq!(
        initial, ia,
        "A's BitTorrent handshake arrived changed in the initial payload (IA)"
    );
    let first = Message::read_from(&mut stream);
    assert!(
        matches!(first, Ok(Message::Have { index: 7 })),
        "A sent `Have(7)` through RC4; B read {first:?}: the RC4 streams are out of step"
    );
    Message::Have { index: 9 }
        .write_to(&mut stream)
        .expect("B's answer");
    std::io::Write::flush(&mut stream).expect("B's answer");
    match dialler.join() {
        Ok(Ok(Some(Message::Have { index: 9 }))) => {}
        Ok(Ok(other)) => panic!(
            "B sent `Have(9)` through RC4; A read {other:?}: the RC4 streams are out of step"
        ),
        Ok(Err(saw)) => panic!("{saw}"),
        Err(_) => panic!("peerwire's dialling side panicked"),
    }
    println!("peerwire ↔ peerwire: RC4 agreed, IA and one message each way arrived intact");
}

/// The bytes a reference side has received, read only when it needs more. Every failure is
/// what the reference side saw, in words.
struct Wire {
    socket: TcpStream,
    buf: Vec<u8>,
    at: usize,
}

impl Wire {
    /// One more read from the socket: at least one byte, or what went wrong.
    fn more(&mut self, what: &str) -> Result<(), String> {
        let mut chunk = [0u8; 1024];
        match std::io::Read::read(&mut self.socket, &mut chunk) {
            Ok(0) => Err(format!("peerwire hung up while we waited for {what}")),
            Ok(got) => {
                self.buf.extend_from_slice(&chunk[..got]);
                Ok(())
            }
            Err(e) => Err(format!("no {what} from peerwire: {e}")),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>, String> {
        while self.buf.len() - self.at < n {
            self.more(what)?;
        }
        self.at += n;
        Ok(self.buf[self.at - n..self.at].to_vec())
    }
}

fn rc4_dropped(key: &[u8; 20]) -> rc4::Rc4 {
    use rc4::{KeyInit, StreamCipher};
    // A 20-byte key is within RC4's 1 to 256: `new_from_slice` accepts it.
    let mut cipher = rc4::Rc4::new_from_slice(key).expect("a 20-byte key");
    cipher.apply_keystream(&mut [0u8; 1024]);
    cipher
}

/// 96 big-endian bytes, zeros in front.
fn key_bytes(n: &num_bigint::BigUint) -> Vec<u8> {
    let bytes = n.to_bytes_be();
    let mut out = vec![0u8; 96 - bytes.len()];
    out.extend_from_slice(&bytes);
    out
}

/// The accepting side (B) written from the specification alone, with a fixed private key and
/// a 37-byte PadB, against peerwire's `initiate`. Returns what it saw go wrong.
fn reference_accepts(socket: TcpStream, expected_ia: &[u8]) -> Result<(), String> {
    use num_bigint::BigUint;
    use peerwire::encoding::{sha1, to_hex};
    use rc4::StreamCipher;
    let p = BigUint::parse_bytes(MSE_PRIME_HEX.as_bytes(), 16).expect("the prime is hex");
    let x = BigUint::from_bytes_be(&[0x3c; 20]);
    let mut wire = Wire {
        socket,
        buf: Vec::new(),
        at: 0,
    };
    let ya = BigUint::from_bytes_be(&wire.take(96, "its public key Ya")?);
    let yb = BigUint::from(2u32).modpow(&x, &p);
    let mut step2 = key_bytes(&yb);
    step2.extend_from_slice(&[0x42; 37]);
    std::io::Write::write_all(&mut wire.socket, &step2).map_err(|e| e.to_string())?;
    let s = key_bytes(&ya.modpow(&x, &p));
    let h = |parts: &[&[u8]]| sha1(&parts.concat());

    // PadA, then HASH('req1', S): searched for in the 512 + 20 bytes after Ya.
    let req1 = h(&[b"req1", &s]);
    let at = loop {
        let window = &wire.buf[wire.at..];
        if let Some(k) = window.windows(20).position(|w| w == req1) {
            break wire.at + k + 20;
        }
        // Not there: peerwire's S is not ours. Either it sent all it will (no more bytes
        // come), or the search has passed the 512 bytes PadA may take.
        let no_req1 = |seen: &[u8], why: &str| {
            format!(
                "{why}; HASH('req1', S) is not among the {} bytes peerwire sent after its \
                 public key (they start {}): peerwire's S is not ours, so its Ya is not \
                 2^Xa mod P on the specification's prime (G = 2), or its S is not Yb^Xa mod P \
                 in 96 big-endian bytes, or its req1 is not SHA-1('req1' ‖ S)",
                seen.len(),
                to_hex(&seen[..seen.len().min(16)])
            )
        };
        if window.len() >= 512 + 20 {
            return Err(no_req1(window, "we searched the 532 bytes PadA may take"));
        }
        let seen = window.to_vec();
        wire.more("PadA and the req1 hash")
            .map_err(|e| no_req1(&seen, &e))?;
    };
    wire.at = at;
    let skey = wire.take(20, "req2 ⊕ req3")?;
    let expected: Vec<u8> = h(&[b"req2", &MSE_TORRENT.0])
        .iter()
        .zip(h(&[b"req3", &s]))
        .map(|(a, b)| a ^ b)
        .collect();
    if skey != expected {
        return Err(format!(
            "we found req1 (so S agrees), but peerwire's req2 ⊕ req3 is {}, not HASH('req2', \
             SKEY) ⊕ HASH('req3', S) = {}: we cannot tell which torrent it wants",
            to_hex(&skey),
            to_hex(&expected)
        ));
    }
    let mut from_a = rc4_dropped(&h(&[b"keyA", &s, &MSE_TORRENT.0]));
    let mut to_a = rc4_dropped(&h(&[b"keyB", &s, &MSE_TORRENT.0]));
    let mut fields = wire.take(14, "VC, crypto_provide, len(PadC)")?;
    from_a.apply_keystream(&mut fields);
    if fields[..8] != [0u8; 8] {
        return Err(format!(
            "the VC decrypted with keyA = HASH('keyA', S, SKEY), 1,024 keystream bytes dropped, \
             is {}, not eight zero bytes: peerwire's keyA, its dropped bytes or its VC differ \
             from the specification's",
            to_hex(&fields[..8])
        ));
    }
    let provide = u32::from_be_bytes([fields[8], fields[9], fields[10], fields[11]]);
    if provide & 0x02 == 0 {
        return Err(format!(
            "crypto_provide is {provide:#x}: peerwire under Rc4Only must offer RC4 (0x02)"
        ));
    }
    let pad_c = usize::from(u16::from_be_bytes([fields[12], fields[13]]));
    let mut rest = wire.take(pad_c + 2, "PadC and len(IA)")?;
    from_a.apply_keystream(&mut rest);
    let ia_len = usize::from(u16::from_be_bytes([rest[pad_c], rest[pad_c + 1]]));
    let mut ia = wire.take(ia_len, "the initial payload")?;
    from_a.apply_keystream(&mut ia);
    if ia != expected_ia {
        return Err(format!(
            "the initial payload (peerwire's BitTorrent handshake) decrypted to {}",
            to_hex(&ia)
        ));
    }
    // 4. RC4b(VC, crypto_select = RC4, len(PadD) = 0), then one message through RC4.
    let mut answer = vec![0u8; 8];
    answer.extend_from_slice(&0x02u32.to_be_bytes());
    answer.extend_from_slice(&0u16.to_be_bytes());
    let mut have = Vec::new();
    Message::Have { index: 3 }
        .write_to(&mut have)
        .map_err(|e| e.to_string())?;
    answer.extend_from_slice(&have);
    to_a.apply_keystream(&mut answer);
    std::io::Write::write_all(&mut wire.socket, &answer).map_err(|e| e.to_string())?;
    // peerwire echoes it back through its own RC4 stream.
    let mut echo = wire.take(have.len(), "peerwire's echo of our message")?;
    from_a.apply_keystream(&mut echo);
    if echo != have {
        return Err(format!(
            "we sent `Have(3)` and peerwire echoed {} through RC4: its streams are out of step",
            to_hex(&echo)
        ));
    }
    Ok(())
}

/// Part 2: peerwire's `initiate` against the reference side above. This catches the changes
/// that both peerwire sides make alike (another VC, another prime, another number of dropped
/// bytes), which part 1 cannot see.
fn check_peerwire_against_the_specification() {
    let (a, b) = mse_pair();
    let ia = mse_bt_handshake(b"-PW0001-exercise-12b");
    let sent_ia = ia.clone();
    let dialler = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = mse::initiate(a, &MSE_TORRENT, Policy::Rc4Only, &sent_ia, deadline)?;
        // Echo the reference's first message back, through the stream both ways.
        let echoed = Message::read_from(&mut stream)
            .and_then(|m| m.write_to(&mut stream))
            .and_then(|()| std::io::Write::flush(&mut stream).map_err(Into::into));
        Ok::<_, MseError>(echoed.err().map(|e| e.to_string()))
    });
    // Peerwire answers each of our steps at once: 2 s of silence means it sent all it will.
    b.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let verdict = reference_accepts(b, &ia);
    let peerwire = match dialler.join() {
        Ok(Ok(None)) => "peerwire's initiate finished and echoed our message".to_string(),
        Ok(Ok(Some(e))) => format!("peerwire's initiate finished, then: {e}"),
        Ok(Err(e)) => what_it_means("peerwire's dialling side (initiate)", &e),
        Err(_) => "peerwire's dialling side panicked".to_string(),
    };
    if let Err(saw) = verdict {
        panic!(
            "peerwire against a side written from the specification (B, in this file):\n\
             B saw: {saw}\n{peerwire}"
        );
    }
    println!("peerwire ↔ the specification: every field as the specification says");
}

/// Part 3: libtorrent, allowed RC4 only, dials peerwire's `accept`: the real-world check of
/// the accepting side. Skips loudly without python3-libtorrent.
fn check_libtorrent_dials_peerwire() {
    let content = content(4, 16 * 1024, 12);
    let seed_dir = content.data.parent().expect("the seed dir");
    let Some(mut seeder) = LibtorrentPeer::start_with(
        &content.torrent,
        seed_dir,
        true,
        &["--encryption", "forced"],
    ) else {
        return;
    };
    let info_hash = content.metainfo.info_hash;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = listener.local_addr().expect("its address").port();
    seeder.send(&format!("connect 127.0.0.1:{port}"));
    // Accepted on a thread, waited for with a deadline: a thread still blocked in `accept`
    // after a failure ends with the test process.
    let (accepted, incoming) = std::sync::mpsc::channel();
    std::thread::spawn(move || accepted.send(listener.accept().map(|(socket, _)| socket)));
    let mut socket = incoming
        .recv_timeout(Duration::from_secs(20))
        .expect("libtorrent did not dial us within 20 s")
        .expect("accept");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    socket
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut socket, &mut first).expect("libtorrent's first byte");
    assert_ne!(
        first[0], 19,
        "libtorrent dialled in plain text despite `forced`"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut stream, found, initial) =
        match mse::accept(socket, &first, &[info_hash], Policy::Rc4Only, deadline) {
            Ok(accepted) => accepted,
            Err(e) => panic!(
                "libtorrent dialled peerwire with MSE and the handshake failed.\n{}",
                what_it_means("peerwire's accepting side (accept)", &e)
            ),
        };
    assert_eq!(found, info_hash);
    let theirs = if initial.is_empty() {
        Handshake::read_from(&mut stream)
    } else {
        Handshake::read_from(&mut std::io::Read::chain(&initial[..], &mut stream))
    };
    match theirs {
        Ok(h) if h.info_hash == info_hash => {}
        other => panic!(
            "the key exchange with libtorrent succeeded, but its BitTorrent handshake did not \
             come through RC4 intact: {other:?}: peerwire's keyA stream (what it reads with) is \
             out of step with libtorrent's"
        ),
    }
    Handshake {
        reserved: [0; 8],
        info_hash,
        peer_id: PeerId(*b"-PW0001-exercise-12c"),
    }
    .write_to(&mut stream)
    .expect("our handshake");
    std::io::Write::flush(&mut stream).expect("our handshake");
    // libtorrent answers our handshake with its bitfield (or `have all`) and more: a message
    // that parses proves it decrypted our handshake with keyB.
    match Message::read_from(&mut stream) {
        Ok(m) => println!("peerwire ↔ libtorrent (RC4 forced): libtorrent's first message {m:?}"),
        Err(e) => {
            let said = std::panic::catch_unwind(|| {
                seeder.wait_for_any(&["peer_error", "peer_disconnected"], Duration::from_secs(2))
            })
            .unwrap_or_else(|_| "nothing".into());
            panic!(
                "libtorrent read peerwire's handshake through RC4 and then: {e}; libtorrent \
                 said: {said}: peerwire's keyB stream (what it sends with) is not libtorrent's"
            )
        }
    }
}

#[test]
fn exercise_12_break_the_key_exchange() {
    let hint = "does a read in src/mse/handshake.rs wait without its deadline?";
    within(LIMIT, "exercise 12's check", hint, || {
        check_peerwire_to_peerwire();
        check_peerwire_against_the_specification();
        check_libtorrent_dials_peerwire();
    });
}

// ---------------------------------------------------------------------------------------------
// Exercise 13: a lost packet in uTP (walkthrough §17)
// ---------------------------------------------------------------------------------------------

/// One line of the packet log: time, direction, type, numbers, and the selective ACK.
fn utp_line(at: Duration, arrow: &str, p: &UtpPacket, note: &str) -> String {
    let kind = match p.kind {
        UtpType::Data => "DATA ",
        UtpType::Fin => "FIN  ",
        UtpType::State => "STATE",
        UtpType::Reset => "RESET",
        UtpType::Syn => "SYN  ",
    };
    let sack = p
        .selective_ack
        .as_ref()
        .map(|s| {
            let held: Vec<String> = s
                .received()
                .map(|bit| p.ack_nr.wrapping_add(2 + bit as u16).to_string())
                .collect();
            format!(" sack [{}]", held.join(" "))
        })
        .unwrap_or_default();
    format!(
        "{:7.1} ms  {arrow}  {kind} seq {:5} ack {:5}{sack}{note}",
        at.as_secs_f64() * 1000.0,
        p.seq_nr,
        p.ack_nr
    )
}

/// What happened to a transfer over a simulated path.
struct LossRun {
    log: Vec<String>,
    delivered: Vec<u8>,
    stats: UtpStats,
    finished: Option<Duration>,
}

/// 100 packets' worth of bytes from A to B over a path with 10 ms each way, on a simulated
/// clock, with A's data packet number `lose` (counting from 0) lost the first time it is sent.
fn transfer_losing_one_packet(lose: u16) -> LossRun {
    let one_way = Duration::from_millis(10);
    let start = Instant::now();
    let mut now = start;
    let data: Vec<u8> = (0..100 * 1_400u32).map(|i| (i % 251) as u8).collect();
    let mut a = UtpConnection::connect(1000, now);
    let written = a.write(&data, now);
    assert_eq!(written, data.len(), "140 kB fit in the send buffer");
    let mut b: Option<UtpConnection> = None;
    // Packets on the wire: (arrives at, to B?, packet).
    let mut wire: Vec<(Instant, bool, UtpPacket)> = Vec::new();
    let mut log = Vec::new();
    let mut delivered = Vec::new();
    let mut first_data: Option<u16> = None;
    let mut lost_once = false;
    let mut finished = None;
    for p in a.take_outgoing(now) {
        log.push(utp_line(now - start, "A→B", &p, ""));
        wire.push((now + one_way, true, p));
    }
    while now - start < Duration::from_secs(30) && finished.is_none() {
        // The next thing to happen: a packet arriving, or a timer.
        let next = wire
            .iter()
            .map(|w| w.0)
            .chain(a.next_deadline())
            .chain(b.as_ref().and_then(UtpConnection::next_deadline))
            .min();
        let Some(next) = next else { break };
        now = now.max(next);
        let (due, later): (Vec<_>, Vec<_>) = wire.into_iter().partition(|w| w.0 <= now);
        wire = later;
        for (_, to_b, p) in due {
            if to_b {
                let seq = p.seq_nr;
                let is_data = p.kind == UtpType::Data;
                if is_data && first_data.is_none() {
                    first_data = Some(seq);
                }
                let target = first_data.map(|f| f.wrapping_add(lose));
                if is_data && Some(seq) == target && !lost_once {
                    lost_once = true;
                    log.push(utp_line(now - start, "A→B", &p, "   <- LOST on the way"));
                    continue;
                }
                match &mut b {
                    None => b = UtpConnection::accept(&p, 5000, now),
                    Some(b) => b.handle_packet(p, now),
                }
            } else {
                a.handle_packet(p, now);
            }
        }
        a.tick(now);
        if let Some(b) = &mut b {
            b.tick(now);
            let mut buf = [0u8; 65_536];
            loop {
                let n = b.read(&mut buf);
                if n == 0 {
                    break;
                }
                delivered.extend_from_slice(&buf[..n]);
            }
            if delivered.len() == data.len() {
                finished = Some(now - start);
            }
        }
        for p in a.take_outgoing(now) {
            let note = match a.stats().timeouts + a.stats().fast_retransmits {
                0 => "",
                _ if Some(p.seq_nr) == first_data.map(|f| f.wrapping_add(lose))
                    && p.kind == UtpType::Data =>
                {
                    "   <- sent again"
                }
                _ => "",
            };
            log.push(utp_line(now - start, "A→B", &p, note));
            wire.push((now + one_way, true, p));
        }
        if let Some(b) = &mut b {
            for p in b.take_outgoing(now) {
                log.push(utp_line(now - start, "B→A", &p, ""));
                wire.push((now + one_way, false, p));
            }
        }
    }
    assert!(delivered == data[..delivered.len()], "bytes out of order");
    LossRun {
        log,
        delivered,
        stats: a.stats(),
        finished,
    }
}

#[test]
fn exercise_13_a_lost_packet() {
    let hint = "does a change in src/utp/ make a connection wait for ever?";
    within(LIMIT, "exercise 13's check", hint, || {
        let run = transfer_losing_one_packet(5);
        // The part of the log around the loss is what the exercise asks to read.
        let lost_at = run.log.iter().position(|l| l.contains("LOST")).unwrap_or(0);
        for line in run.log.iter().skip(lost_at.saturating_sub(4)).take(40) {
            println!("{line}");
        }
        println!(
            "… {} packets in all; A's counts: {:?}",
            run.log.len(),
            run.stats
        );
        let finished = run.finished.unwrap_or_else(|| {
            panic!(
                "B received {} of 140,000 bytes in 30 simulated seconds: the lost packet was \
                 never resent, or the connection stalled after it",
                run.delivered.len()
            )
        });
        assert_eq!(
            run.stats.timeouts, 0,
            "the lost packet was resent only when the timeout fired ({finished:?} for the \
             whole transfer): three duplicate acks or three selectively acked packets after \
             it should have resent it within a round trip"
        );
        assert_eq!(
            run.stats.fast_retransmits, 1,
            "one packet was lost, so one fast retransmit: {:?}",
            run.stats
        );
        assert!(
            finished < Duration::from_millis(500),
            "140 kB over a 20 ms round trip took {finished:?} (simulated)"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Exercise 14: a pieces root by hand (walkthrough §18)
// ---------------------------------------------------------------------------------------------

/// SHA-256, written out here so that the check shares nothing with `src/merkle.rs`.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// BEP 52's root, straight from its words: leaves are the SHA-256 of 16 KiB blocks, padded
/// with zero hashes to a power of two; each parent hashes its two children.
fn root_by_the_book(data: &[u8], steps: &mut Vec<String>) -> [u8; 32] {
    let mut layer: Vec<[u8; 32]> = data.chunks(16_384).map(sha256).collect();
    while !layer.len().is_power_of_two() {
        layer.push([0; 32]);
    }
    let hex = |h: &[u8; 32]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut height = 0;
    loop {
        let names: Vec<String> = layer
            .iter()
            .map(|h| hex(h)[..16].to_string() + "…")
            .collect();
        steps.push(format!("layer {height}: {}", names.join(" ")));
        if layer.len() == 1 {
            return layer[0];
        }
        layer = layer
            .chunks(2)
            .map(|pair| sha256(&[pair[0], pair[1]].concat()))
            .collect();
        height += 1;
    }
}

/// A v2-only torrent of one file written out by hand: the `info` dictionary of BEP 52, keys in
/// order, with the root computed above (a file of one piece has no `piece layers`).
fn v2_torrent_by_hand(name: &str, length: usize, root: &[u8; 32]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"d4:infod9:file treed");
    t.extend_from_slice(
        format!(
            "{}:{name}d0:d6:lengthi{length}e11:pieces root32:",
            name.len()
        )
        .as_bytes(),
    );
    t.extend_from_slice(root);
    t.extend_from_slice(b"eee12:meta versioni2e");
    t.extend_from_slice(format!("4:name{}:{name}12:piece lengthi65536eee", name.len()).as_bytes());
    t
}

#[test]
fn exercise_14_a_pieces_root_by_hand() {
    let hint = "does a function in src/merkle.rs loop without end?";
    within(LIMIT, "exercise 14's check", hint, || {
        // 40,000 bytes: three blocks (16,384 + 16,384 + 7,232), so one zero leaf of padding.
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 7) as u8 + b'a').collect();
        let mut steps = Vec::new();
        let expected = root_by_the_book(&data, &mut steps);
        for step in &steps {
            println!("{step}");
        }
        let ours = peerwire::merkle::root_of(&peerwire::merkle::leaf_hashes(&data));
        assert_eq!(
            ours.0, expected,
            "src/merkle.rs gives another root than BEP 52's rules (printed above, layer by layer)"
        );
        // And the torrent's `info` prints the root the file tree holds.
        let dir = tempfile::tempdir().unwrap();
        let torrent = dir.path().join("tiny.torrent");
        std::fs::write(
            &torrent,
            v2_torrent_by_hand("tiny.bin", data.len(), &expected),
        )
        .unwrap();
        let info = common::run_ok(
            peerwire().arg("info").arg(&torrent),
            Duration::from_secs(30),
        );
        let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
        println!("{info}");
        assert!(
            info.contains(&format!("{hex} tiny.bin")),
            "`peerwire info` does not show the root {hex}:\n{info}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Exercise 15: an LSD announce by hand (walkthrough §20)

/// BEP 14's announce, written from the BEP's text alone: the request line, `Host` (the group),
/// `Port`, one `Infohash` (40 hex digits), `cookie`, then two empty lines; CR LF throughout.
fn announce_by_the_book(info_hash_hex: &str, port: u16, cookie: &str) -> String {
    format!(
        "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: {port}\r\n\
         Infohash: {info_hash_hex}\r\ncookie: {cookie}\r\n\r\n\r\n"
    )
}

/// The first line where `theirs` differs from `expected`, both shown with CR and LF visible.
fn first_difference(expected: &[u8], theirs: &[u8]) -> Option<String> {
    let show = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    let expected_lines: Vec<&[u8]> = expected.split_inclusive(|&b| b == b'\n').collect();
    let their_lines: Vec<&[u8]> = theirs.split_inclusive(|&b| b == b'\n').collect();
    (0..expected_lines.len().max(their_lines.len())).find_map(|i| {
        let (e, t) = (expected_lines.get(i), their_lines.get(i));
        (e != t).then(|| {
            format!(
                "line {}: expected {}, yours is {}",
                i + 1,
                e.map_or("(nothing)".into(), |e| show(e)),
                t.map_or("(nothing)".into(), |t| show(t))
            )
        })
    })
}

#[test]
fn exercise_15_an_lsd_announce_by_hand() {
    use peerwire::lsd::Announce;
    use peerwire::lsd::limits::{Intake, Verdict};
    let hint = "does a change in src/lsd/ loop without end?";
    within(LIMIT, "exercise 15's check", hint, || {
        let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        let info_hash = InfoHash(peerwire::encoding::from_hex::<20>(hex).unwrap());
        let expected = announce_by_the_book(hex, 6881, "c0ffee");
        let ours = Announce::for_torrent(info_hash, 6881, "c0ffee").to_bytes();
        println!(
            "peerwire's announce ({} bytes):\n{}",
            ours.len(),
            String::from_utf8_lossy(&ours)
        );
        if let Some(difference) = first_difference(expected.as_bytes(), &ours) {
            panic!("Announce::to_bytes is not BEP 14's layout: {difference}");
        }
        if let Some(path) = std::env::var_os("LSD_ANNOUNCE") {
            let yours = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("LSD_ANNOUNCE={}: {e}", path.to_string_lossy()));
            match first_difference(&ours, &yours) {
                None => println!("yours is the same, byte for byte"),
                Some(difference) => panic!("your announce differs from peerwire's: {difference}"),
            }
        }
        let parsed = Announce::parse(expected.as_bytes())
            .unwrap_or_else(|e| panic!("Announce::parse refuses BEP 14's own layout: {e}"));
        assert_eq!(
            (parsed.port, parsed.info_hashes.as_slice()),
            (6881, &[info_hash][..]),
            "Announce::parse read another port or info hash"
        );
        // A neighbour's announce: a peer at the datagram's source address, the announced port.
        let neighbour: SocketAddr = "10.0.0.7:6771".parse().unwrap();
        let mut intake = Intake::new(vec![info_hash], "5f3a9c01".into());
        let now = std::time::Instant::now();
        assert_eq!(
            intake.consider(neighbour, Some(&parsed), now),
            Verdict::Peer {
                peer: "10.0.0.7:6881".parse().unwrap(),
                new: true
            },
            "a neighbour's announce must be a peer at its address, with the port it announced"
        );
        // Our own announce, handed back by multicast loopback: recognised by its cookie.
        let mut ourselves = Intake::new(vec![info_hash], "c0ffee".into());
        assert_eq!(
            ourselves.consider(neighbour, Some(&parsed), now),
            Verdict::Own,
            "an announce with our own cookie must be recognised as ours, not dialled"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Exercise 16: a piece across files as range requests (walkthrough §19)
// ---------------------------------------------------------------------------------------------

/// The three files of exercise 16, in the order `peerwire create` lists them (sorted by name).
const EXERCISE_16_FILES: [(&str, usize); 3] = [
    ("a.txt", 100_000),
    ("d.bin", 20_000),
    ("sub dir/c.bin", 200_000),
];

/// The answer worked out by hand in `docs/exercises.md`: piece 1 of the torrent `my set` in
/// 64 KiB pieces, from the web seed `http://mirror.example/pub/`, as (URL, first, last).
const EXERCISE_16_PIECE_1: [(&str, u64, u64); 3] = [
    ("http://mirror.example/pub/my%20set/a.txt", 65_536, 99_999),
    ("http://mirror.example/pub/my%20set/d.bin", 0, 19_999),
    (
        "http://mirror.example/pub/my%20set/sub%20dir/c.bin",
        0,
        11_071,
    ),
];

#[test]
fn exercise_16_a_piece_as_range_requests() {
    use peerwire::web_seed::ranges::{FileUrls, RangeRequest};
    let hint = "does FileUrls::ranges in src/web_seed/ranges.rs loop without end?";
    within(LIMIT, "exercise 16's check", hint, || {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("my set");
        for (i, (name, len)) in EXERCISE_16_FILES.iter().enumerate() {
            let path = set.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, common::pseudo_random(*len, 150 + i as u64)).unwrap();
        }
        let torrent = dir.path().join("set.torrent");
        common::create_torrent(&set, &torrent, &["--piece-length", "65536"]);
        let metainfo = Metainfo::from_file(&torrent).unwrap();
        let urls = FileUrls::new("http://mirror.example/pub/", &metainfo.info);
        let layout = PieceLayout::new(&metainfo.info);
        let mut piece_1 = Vec::new();
        for index in 0..layout.num_pieces() as u32 {
            let (offset, len) = (layout.piece_offset(index), layout.piece_len(index));
            let parts = urls.ranges(offset, u64::from(len));
            println!(
                "piece {index} (bytes {offset}..{}):",
                offset + u64::from(len)
            );
            let mut covered = 0;
            for part in &parts {
                match part {
                    RangeRequest::Http { url, first, len } => {
                        let range = RangeRequest::range_header(*first, *len);
                        println!("  GET {url}  Range: {range}");
                        if index == 1 {
                            piece_1.push((url.clone(), *first, first + len - 1));
                        }
                    }
                    RangeRequest::Zeros { len } => println!("  {len} bytes of zeros"),
                }
                covered += part.len();
            }
            assert_eq!(
                covered,
                u64::from(len),
                "the requests for piece {index} do not add up to the piece"
            );
        }
        let by_hand: Vec<(String, u64, u64)> = EXERCISE_16_PIECE_1
            .iter()
            .map(|&(url, first, last)| (url.to_string(), first, last))
            .collect();
        assert_eq!(
            piece_1, by_hand,
            "piece 1's range requests (left, from FileUrls::ranges) differ from the answer by \
             hand (right)"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Exercises 17 and 18: the web view
// ---------------------------------------------------------------------------------------------

/// A demo of `leechers` leechers whose members publish to web-view boards, with a history
/// recorder, sharing `size_mib` MiB from a seeder sending `kib_s` KiB/s.
fn watched_demo(
    leechers: usize,
    size_mib: u64,
    kib_s: u64,
) -> (
    Vec<peerwire::web::Member>,
    DemoReport,
    peerwire::web::report::History,
) {
    let config = DemoConfig {
        size_mib,
        leechers,
        seeder_rate: Some(kib_s * 1024),
        progress: false,
        deadline: Duration::from_secs(180),
        ..DemoConfig::default()
    };
    let members: Vec<peerwire::web::Member> = peerwire::demo::member_names(&config)
        .iter()
        .map(|n| peerwire::web::Member::new(n))
        .collect();
    let recorder =
        peerwire::web::report::Recorder::start(members.clone()).expect("start the recorder");
    let report = peerwire::demo::run(&DemoConfig {
        watch: members.clone(),
        ..config
    })
    .expect("the demo swarm completes");
    (members, report, recorder.finish())
}

#[test]
fn exercise_17_find_the_optimistic_unchoke() {
    let hint = "does Choker::round (or best_peers) loop?";
    within(LIMIT, "exercise 17's check", hint, || {
        // Six leechers want the seeder's pieces and it has four regular slots: the fifth is
        // the optimistic one. 2 MiB at 256 KiB/s to six: rounds run (every 10 s) before the end.
        let (members, report, _) = watched_demo(6, 2, 256);
        let slots = ChokerConfig::default().regular_slots;
        let mut rounds = 0;
        for member in &members {
            let snapshot = member.board.latest();
            let Some(round) = &snapshot.choker else {
                println!("{}: no choke round ran", member.name);
                continue;
            };
            rounds += 1;
            let regular: Vec<SocketAddr> = round.regular.iter().map(|(a, _)| *a).collect();
            println!(
                "{} at {:.0} s ({}): regular {:?}, optimistic {:?}, interested but choked {:?}",
                member.name,
                round.at,
                if round.seeding {
                    "seeding"
                } else {
                    "downloading"
                },
                round.regular,
                round.optimistic,
                round.choked
            );
            assert!(
                regular.len() <= slots,
                "{}: {} regular slots, more than {slots}",
                member.name,
                regular.len()
            );
            if let Some(optimistic) = round.optimistic {
                assert!(
                    !regular.contains(&optimistic),
                    "{}: the optimistic peer {optimistic} also holds a regular slot",
                    member.name
                );
                // The page reads the same round from /api/state.
                let json = peerwire::web::json::state(
                    &[peerwire::web::json::Named {
                        name: &member.name,
                        snapshot: &snapshot,
                    }],
                    &[],
                );
                assert!(
                    json.contains(&format!("\"optimistic\":\"{optimistic}\"")),
                    "{}: /api/state does not name {optimistic}: {json}",
                    member.name
                );
            }
            for choked in &round.choked {
                assert!(
                    !regular.contains(choked) && round.optimistic != Some(*choked),
                    "{}: {choked} is both unchoked and left choked",
                    member.name
                );
            }
        }
        assert!(
            rounds > 0,
            "the demo ran {:.1} s and no member ran a choke round (one every 10 s)",
            report.elapsed.as_secs_f64()
        );
    });
}

#[test]
fn exercise_18_spot_the_rarest_first_order() {
    let hint = "does the picker (next_new_piece) loop?";
    within(LIMIT, "exercise 18's check", hint, || {
        let (members, report, history) = watched_demo(4, 2, 512);
        let pieces = report.num_pieces;
        for (m, got) in history.got_at.iter().enumerate().skip(1) {
            let name = &members[m].name;
            assert_eq!(got.len(), pieces, "{name}: pieces in its map");
            assert!(
                got.iter().all(Option::is_some),
                "{name} never had pieces {:?}",
                (0..pieces)
                    .filter(|&i| got[i].is_none())
                    .collect::<Vec<_>>()
            );
            let mut order: Vec<usize> = (0..pieces).collect();
            order.sort_by(|a, b| {
                got[*a]
                    .partial_cmp(&got[*b])
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            println!("{name} got its pieces in this order: {order:?}");
        }
        for pair in history.samples.windows(2) {
            for (m, (before, after)) in pair[0].1.iter().zip(&pair[1].1).enumerate() {
                assert!(
                    after >= before,
                    "{}: {before} pieces at {:.1} s, {after} at {:.1} s",
                    members[m].name,
                    pair[0].0,
                    pair[1].0
                );
            }
        }
        let last = &history.samples.last().expect("samples").1;
        assert!(
            last.iter().all(|&n| n == pieces),
            "the last sample: {last:?}"
        );
        let html = peerwire::web::report::html(&history, &members, &report.summary_lines());
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run.html");
        std::fs::write(&path, &html).expect("write the report");
        for member in &members {
            assert!(html.contains(&format!("\"name\":\"{}\"", member.name)));
        }
        assert!(
            !html.contains("</script><script>alert"),
            "nothing embedded can close a script"
        );
        println!("report of the run: {} bytes", html.len());
    });
}

// ---------------------------------------------------------------------------------------------
// Exercise 19: what rarest-first and the optimistic unchoke are worth, in the network lab
// ---------------------------------------------------------------------------------------------

/// One lab swarm of peerwire peers (a seeder and six leechers behind 1 MiB/s uplinks, 8 MiB)
/// with `flags` on every peer: its time, the seeder's bytes, and each leecher's bytes checked
/// by the lab. `None` when the lab cannot run here (a loud skip).
fn lab_swarm_with(flags: &[&str]) -> Option<(f64, f64)> {
    let result = common::lab::run_lab("peerwire", "peerwire:6", 8, flags)?;
    let leechers = result.get("leechers").list();
    assert_eq!(leechers.len(), 6, "six leechers in the result");
    for leecher in leechers {
        assert_eq!(
            leecher.get("sha1_ok"),
            &common::lab::Json::Bool(true),
            "{}: wrong bytes with {flags:?}",
            leecher.get("host").text()
        );
    }
    let time = result.get("T_s").number().expect("every leecher completed");
    let seeder = result
        .get("seeder")
        .get("sent")
        .number()
        .expect("seeder bytes");
    Some((time, seeder / common::lab::MIB))
}

#[test]
fn exercise_19_what_rarest_first_is_worth() {
    let runs: [(&str, &[&str]); 3] = [
        ("rarest first (the default)", &[]),
        ("in order", &["--piece-order", "in-order"]),
        ("no optimistic unchoke", &["--no-optimistic-unchoke"]),
    ];
    let bound = f64::max(8.0 / 2.0, 6.0 * 8.0 / (2.0 + 6.0));
    for (name, flags) in runs {
        let Some((time, seeder_mib)) = lab_swarm_with(flags) else {
            return;
        };
        println!(
            "{name:28} last leecher at {time:5.1} s ({:.2} x the bound of {bound:.1} s), \
             the seeder sent {seeder_mib:.1} MiB ({:.1} copies of the file)",
            time / bound,
            seeder_mib / 8.0
        );
    }
}
