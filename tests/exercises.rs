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
use peerwire::metainfo::{InfoHash, Metainfo};
use peerwire::peer::pipeline::{Pipeline, depth_for_rate};
use peerwire::peer_id::PeerId;
use peerwire::piece::{BLOCK_LEN, BlockRequest, PieceLayout};
use peerwire::scheduler::picker::Picker;
use peerwire::trace::{Direction, TraceLine, Traced};
use peerwire::wire::{Bitfield, Handshake, Message, WireError};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{SocketAddr, TcpStream};
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

/// A download from one scripted peer that speaks the fast extension: after 12 blocks it
/// chokes, rejects every request still arriving, and unchokes once they stop. Each rejected
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
        Script::FastChokeAndReject(12),
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
