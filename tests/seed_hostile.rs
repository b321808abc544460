//! The seeder under attack: bad input from leechers, the receiving side of walkthrough §10.
//!
//! `peerwire seed` serves an 8 MiB torrent while hostile clients, written here as raw
//! `TcpStream`s driven with peerwire's own wire module, break the rules. Beside them an honest
//! `peerwire download` fetches the same torrent from the same seeder. Every test checks three
//! things:
//! - the seeder's log names the hostile connection (by the address the seeder sees, which is
//!   our socket's local address) and gives the reason it was dropped or refused;
//! - the seeder really closed the hostile socket: our read sees the end within a deadline;
//! - the honest download completes with identical bytes: the seeder keeps serving everyone else.
//!
//! ```text
//!   test                                   the hostile client               the seeder's log
//!   bad_requests_of_every_kind_...         14 invalid requests              11 bad requests
//!   a_flood_of_requests_...                10000 requests, reads nothing    requests queued
//!   requests_while_choked_...              600 requests, never interested   requests while choked
//!   a_peer_that_reads_nothing_...          500 requests, keep-alives only   read nothing we sent
//!   a_peer_silent_after_the_handshake_...  handshake, then nothing          sent nothing
//!   connections_past_max_peers_...         3 + 5 peers, --max-peers 3       refused (too many peers)
//!   a_handshake_for_another_torrent_...    a wrong info hash                closed (debug level)
//! ```
//!
//! The seeder runs with `--peer-timeout 5`, so "silent" and "not reading" take seconds, not the
//! default two minutes (the flood test alone uses 60 s: see there why). Every wait has a
//! deadline: reads have timeouts, children are killed at theirs, and the log is polled until a
//! line appears or the deadline passes.

pub mod common;

use common::{Killed, free_port, peerwire, wait_for_tcp, wait_with_deadline};
use peerwire::metainfo::{InfoHash, Metainfo};
use peerwire::peer_id::PeerId;
use peerwire::wire::{Handshake, Message};
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PIECE: u32 = 65_536;
const BLOCK: u32 = 16_384;
/// 8 MiB and a bit: 129 pieces, the last one short (12,345 bytes). Its first 500 blocks are
/// more than the kernel's socket buffers hold (about 4 MiB here), so a client that reads nothing
/// leaves the seeder's thread for it with bytes it cannot send.
const CONTENT_LEN: usize = 8 * 1024 * 1024 + 12_345;
/// `--peer-timeout` of every seeder here, in seconds.
const PEER_TIMEOUT: u64 = 5;
/// The most any one step may take (a debug build on a busy machine) before the test fails.
const STEP: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The torrent, the seeder and the honest client
// ---------------------------------------------------------------------------------------------

/// A single-file torrent without tracker, of pseudo-random bytes, in its own temp dir.
struct Torrent {
    dir: tempfile::TempDir,
    file: PathBuf,
    torrent: PathBuf,
    bytes: Vec<u8>,
    info_hash: InfoHash,
}

impl Torrent {
    fn new(seed: u64) -> Torrent {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = common::pseudo_random(CONTENT_LEN, seed);
        let file = dir.path().join("data.bin");
        std::fs::write(&file, &bytes).expect("write the content");
        let torrent = dir.path().join("data.torrent");
        common::create_torrent(&file, &torrent, &["--piece-length", &PIECE.to_string()]);
        let info_hash = Metainfo::from_file(&torrent).expect("torrent").info_hash;
        Torrent {
            dir,
            file,
            torrent,
            bytes,
            info_hash,
        }
    }

    fn pieces(&self) -> u32 {
        self.bytes.len().div_ceil(PIECE as usize) as u32
    }

    /// Every valid request of the torrent, piece by piece, block by block.
    fn valid_requests(&self) -> Vec<Message> {
        let mut requests = Vec::new();
        for index in 0..self.pieces() {
            let piece_start = u64::from(index) * u64::from(PIECE);
            let piece_len = (self.bytes.len() as u64 - piece_start).min(u64::from(PIECE)) as u32;
            for begin in (0..piece_len).step_by(BLOCK as usize) {
                let length = BLOCK.min(piece_len - begin);
                requests.push(Message::Request {
                    index,
                    begin,
                    length,
                });
            }
        }
        requests
    }
}

/// `peerwire seed` as a child process, its log (stderr) in a file.
struct Seeder {
    port: u16,
    log: PathBuf,
    process: Killed,
}

/// Starts `peerwire seed T FILE --port P --peer-timeout SECS -v EXTRA...` and waits until it
/// accepts connections.
fn start_seeder(t: &Torrent, peer_timeout: u64, extra: &[&str]) -> Seeder {
    let log = t.dir.path().join("seed.log");
    let stderr = std::fs::File::create(&log).expect("create the seeder's log");
    let child = peerwire()
        .arg("seed")
        .arg(&t.torrent)
        .arg(&t.file)
        .args(["--port", &free_port().to_string()])
        .args(["--peer-timeout", &peer_timeout.to_string(), "-v"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start peerwire seed");
    let process = Killed(child);
    // The port we asked for may have been taken meanwhile: the seeder then listens on another
    // one and says which.
    let line = wait_for_log_line(&log, "listening for peers on ", STEP);
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    wait_for_tcp(port, STEP, "peerwire seed");
    Seeder { port, log, process }
}

impl Seeder {
    /// Waits for the scheduler's line saying it dropped `peer`, and checks the reason.
    fn wait_for_drop(&self, peer: SocketAddr, reason: &str) -> String {
        self.wait_for_drop_within(peer, reason, STEP)
    }

    fn wait_for_drop_within(&self, peer: SocketAddr, reason: &str, deadline: Duration) -> String {
        let line = wait_for_log_line(&self.log, &format!("{peer}: disconnected: "), deadline);
        assert!(
            line.contains(reason),
            "{peer} was dropped, but not for {reason:?}: {line}"
        );
        line
    }

    /// The seeder's resident memory (VmRSS), in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.0.id()))
            .expect("the seeder is still running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/PID/status:\n{status}"))
    }
}

/// Polls `log` every 50 ms until a line contains `needle`; panics with the log at the deadline.
fn wait_for_log_line(log: &Path, needle: &str, deadline: Duration) -> String {
    let until = Instant::now() + deadline;
    loop {
        let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < until,
            "no log line with {needle:?} within {deadline:?}; the seeder's log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
}

fn log_text(seeder: &Seeder) -> String {
    String::from_utf8_lossy(&std::fs::read(&seeder.log).expect("the seeder's log")).into_owned()
}

/// The honest client: `peerwire download` from this seeder alone, started now.
fn start_download(t: &Torrent, seeder: &Seeder) -> Child {
    let _ = std::fs::remove_file(t.dir.path().join("out.bin"));
    peerwire()
        .arg("download")
        .arg("-o")
        .arg(t.dir.path().join("out.bin"))
        .arg(&t.torrent)
        .args(["--peer", &format!("127.0.0.1:{}", seeder.port)])
        .args(["--give-up-after", "60", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start peerwire download")
}

/// Waits for the honest download (with a deadline) and compares its bytes.
fn check_download(download: Child, t: &Torrent) {
    let result = wait_with_deadline(download, Duration::from_secs(120));
    assert!(
        result.status.success(),
        "the honest download failed beside the hostile client:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let got = std::fs::read(t.dir.path().join("out.bin")).expect("the downloaded file");
    assert!(got == t.bytes, "the honest download's bytes differ");
}

// ---------------------------------------------------------------------------------------------
// The hostile client's side of the wire
// ---------------------------------------------------------------------------------------------

/// A raw TCP connection to the seeder, with timeouts on reads and writes.
fn connect(port: u16) -> TcpStream {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, STEP).expect("connect to the seeder");
    stream.set_read_timeout(Some(STEP)).expect("read timeout");
    stream.set_write_timeout(Some(STEP)).expect("write timeout");
    stream
}

fn handshake(info_hash: InfoHash) -> Handshake {
    Handshake {
        reserved: [0; 8],
        info_hash,
        peer_id: PeerId::generate(),
    }
}

/// A hostile client past the handshake: it said which torrent, and the seeder answered.
fn hostile(port: u16, info_hash: InfoHash) -> TcpStream {
    let mut stream = connect(port);
    handshake(info_hash)
        .write_to(&mut stream)
        .expect("send our handshake");
    let theirs = Handshake::read_from(&mut stream).expect("the seeder answers the handshake");
    assert_eq!(theirs.info_hash, info_hash, "the seeder's handshake");
    stream
}

/// Says `interested` and reads the seeder's messages (its bitfield) until `unchoke`.
fn get_unchoked(stream: &mut TcpStream) {
    Message::Interested
        .write_to(stream)
        .expect("send interested");
    let until = Instant::now() + STEP;
    loop {
        match Message::read_from(stream) {
            Ok(Message::Unchoke) => return,
            Ok(_) => {}
            Err(e) => panic!("no unchoke from the seeder: {e}"),
        }
        assert!(Instant::now() < until, "no unchoke within {STEP:?}");
    }
}

/// Sends these messages in one write, as fast as the socket takes them.
fn send_all(stream: &mut TcpStream, messages: &[Message]) {
    let bytes: Vec<u8> = messages.iter().flat_map(|m| m.to_bytes()).collect();
    std::io::Write::write_all(stream, &bytes).expect("send the messages");
}

/// Writes `messages` until done or until the seeder hangs up on us (a reset or a broken
/// pipe); returns how many bytes were written.
fn send_until_hung_up(stream: &mut TcpStream, messages: &[Message]) -> usize {
    use std::io::{ErrorKind, Write};
    let bytes: Vec<u8> = messages.iter().flat_map(|m| m.to_bytes()).collect();
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => break,
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                break;
            }
            Err(e) => panic!("sending the flood: {e}"),
        }
    }
    written
}

/// Reads what the seeder still sends until it closes the connection: the end of the stream,
/// or a reset (when it hung up with some of our bytes unread). Panics if the connection is
/// still open at the deadline. Returns the bytes read.
fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let until = Instant::now() + deadline;
    let (mut bytes, mut buffer) = (Vec::new(), vec![0u8; 64 * 1024]);
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return bytes,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return bytes,
            Err(e) => panic!("reading from the seeder: {e}"),
        }
        assert!(
            Instant::now() < until,
            "the seeder did not close the connection within {deadline:?}"
        );
    }
}

/// The whole messages in `bytes` (a message cut off by a reset is left out).
fn messages(mut bytes: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while let Ok(message) = Message::read_from(&mut bytes) {
        out.push(message);
    }
    out
}

fn count_pieces(messages: &[Message]) -> usize {
    messages
        .iter()
        .filter(|m| matches!(m, Message::Piece { .. }))
        .count()
}

/// Sends a keep-alive every second on a clone of the stream until dropped: a client that talks,
/// so it is never "silent", whether or not it reads.
struct KeepAlives {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeepAlives {
    fn start(stream: &TcpStream) -> KeepAlives {
        let mut writer = stream.try_clone().expect("clone the stream");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                if Message::KeepAlive.write_to(&mut writer).is_err() {
                    return; // the seeder hung up
                }
                std::thread::sleep(Duration::from_secs(1)); // the keep-alive pace, not a wait
            }
        });
        KeepAlives {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for KeepAlives {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_requests_of_every_kind_drop_the_peer() {
    let t = Torrent::new(1);
    let seeder = start_seeder(&t, PEER_TIMEOUT, &[]);
    let download = start_download(&t, &seeder);
    let mut peer = hostile(seeder.port, t.info_hash);
    let me = peer.local_addr().expect("our address");
    get_unchoked(&mut peer);

    let last = t.pieces() - 1; // 12,345 bytes long
    let request = |index, begin, length| Message::Request {
        index,
        begin,
        length,
    };
    let bad = [
        request(t.pieces(), 0, BLOCK),        // no such piece
        request(u32::MAX, 0, BLOCK),          // no such piece, at all
        request(0, 0, 0),                     // nothing
        request(0, 0, 2 * BLOCK),             // 32 KiB: more than a block
        request(0, PIECE - BLOCK / 2, BLOCK), // past the end of the piece
        request(last, 0, BLOCK),              // past the end of the short last piece
        request(0, u32::MAX - 100, BLOCK),    // begin + length overflows 32 bits
    ];
    let flood: Vec<Message> = bad.iter().cycle().take(2 * bad.len()).cloned().collect();
    send_all(&mut peer, &flood);

    let line = seeder.wait_for_drop(me, "bad requests");
    assert!(
        line.contains("11 bad requests"),
        "dropped at the 11th: {line}"
    );
    let log = log_text(&seeder);
    for problem in ["(at most 16 KiB)", "no piece", "past the end of the piece"] {
        assert!(
            log.lines()
                .any(|l| l.contains("bad request") && l.contains(problem)),
            "no `bad request ... {problem}` line in the log:\n{log}"
        );
    }
    let after_unchoke = messages(&read_until_closed(&mut peer, STEP));
    assert_eq!(count_pieces(&after_unchoke), 0, "a bad request was served");
    check_download(download, &t);
}

#[test]
fn a_flood_of_requests_drops_the_peer_and_memory_stays_bounded() {
    let t = Torrent::new(2);
    // A peer timeout of 60 s here, not 5: this test is about the queue limit, so "read nothing
    // we sent" (`a_peer_that_reads_nothing_...`) must not win the race, however slowly the
    // seeder reads (it reads up to 64 messages per turn of its loop; in practice the drop
    // comes some 50 ms after the flood).
    let seeder = start_seeder(&t, 60, &[]);
    let download = start_download(&t, &seeder);
    let mut peer = hostile(seeder.port, t.info_hash);
    let me = peer.local_addr().expect("our address");
    get_unchoked(&mut peer);

    // Ten thousand valid requests at once (the torrent's 513 blocks, round and round), and we
    // read nothing. The seeder may hang up before it has read them all.
    let flood: Vec<Message> = t
        .valid_requests()
        .into_iter()
        .cycle()
        .take(10_000)
        .collect();
    let accepted = send_until_hung_up(&mut peer, &flood);
    let sent = Instant::now();

    // Below the 60 s peer timeout, so that a missing queue limit fails here.
    let queued = Duration::from_secs(50);
    seeder.wait_for_drop_within(me, "more than 500 requests queued", queued);
    let flood_dropped_after = sent.elapsed();
    let rss = seeder.rss_kib();
    assert!(rss < 100 * 1024, "the seeder's memory grew to {rss} KiB");
    let received = messages(&read_until_closed(&mut peer, STEP));
    eprintln!(
        "flood: {accepted} bytes of 10000 requests written, dropped {flood_dropped_after:?} \
         later; {} blocks sent before the socket filled; seeder RSS {rss} KiB",
        count_pieces(&received)
    );
    check_download(download, &t);
}

#[test]
fn requests_while_choked_drop_the_peer() {
    let t = Torrent::new(3);
    let seeder = start_seeder(&t, PEER_TIMEOUT, &[]);
    let download = start_download(&t, &seeder);
    let mut peer = hostile(seeder.port, t.info_hash);
    let me = peer.local_addr().expect("our address");

    // Never `interested`, so never unchoked: each of these crosses no `choke`, it ignores one.
    let flood: Vec<Message> = t.valid_requests().into_iter().cycle().take(600).collect();
    send_all(&mut peer, &flood);

    let line = seeder.wait_for_drop(me, "requests while choked");
    assert!(line.contains("501 requests while choked"), "{line}");
    let received = messages(&read_until_closed(&mut peer, STEP));
    assert!(
        matches!(received.first(), Some(Message::Bitfield(_))),
        "the seeder's first message: {:?}",
        received.first()
    );
    assert_eq!(count_pieces(&received), 0, "a choked peer was served");
    assert!(
        !received.contains(&Message::Unchoke),
        "a peer that is not interested was unchoked"
    );
    check_download(download, &t);
}

#[test]
fn a_peer_that_reads_nothing_is_dropped_while_others_are_served() {
    let t = Torrent::new(4);
    let seeder = start_seeder(&t, PEER_TIMEOUT, &[]);
    let mut peer = hostile(seeder.port, t.info_hash);
    let me = peer.local_addr().expect("our address");
    get_unchoked(&mut peer);

    // 500 blocks (8 MiB: more than the socket buffers hold), then keep-alives only: the peer
    // talks, so it is not silent, but it never reads a byte.
    let requests: Vec<Message> = t.valid_requests().into_iter().take(500).collect();
    let sending = Instant::now(); // before the seeder's last write, which answers these
    send_all(&mut peer, &requests);
    let _talk = KeepAlives::start(&peer);
    let download = start_download(&t, &seeder);

    let reason = format!("the peer read nothing we sent for {PEER_TIMEOUT}s");
    seeder.wait_for_drop(me, &reason);
    let after = sending.elapsed();
    let timeout = Duration::from_secs(PEER_TIMEOUT);
    assert!(
        after >= timeout,
        "dropped after {after:?}, before the peer timeout"
    );
    assert!(after < 3 * timeout, "dropped only after {after:?}");
    check_download(download, &t);
    let received = messages(&read_until_closed(&mut peer, STEP));
    assert!(
        count_pieces(&received) < 500,
        "all 500 blocks fit in the socket buffers"
    );
}

#[test]
fn a_peer_silent_after_the_handshake_is_dropped() {
    let t = Torrent::new(5);
    let seeder = start_seeder(&t, PEER_TIMEOUT, &[]);
    let download = start_download(&t, &seeder);
    let connecting = Instant::now(); // before the seeder's clock for this peer starts
    let mut peer = hostile(seeder.port, t.info_hash);
    let me = peer.local_addr().expect("our address");

    seeder.wait_for_drop(me, &format!("the peer sent nothing for {PEER_TIMEOUT}s"));
    let after = connecting.elapsed();
    let timeout = Duration::from_secs(PEER_TIMEOUT);
    assert!(
        after >= timeout,
        "dropped after {after:?}, before the peer timeout"
    );
    assert!(after < 3 * timeout, "dropped only after {after:?}");
    let received = messages(&read_until_closed(&mut peer, STEP));
    assert!(
        matches!(received[..], [Message::Bitfield(_)]),
        "the seeder sent more than its bitfield: {received:?}"
    );
    check_download(download, &t);
}

#[test]
fn connections_past_max_peers_are_refused_after_the_handshake() {
    let t = Torrent::new(6);
    let seeder = start_seeder(&t, PEER_TIMEOUT, &["--max-peers", "3"]);

    // Three peers that stay: they talk (keep-alives), so they are not dropped as silent.
    let mut staying = Vec::new();
    for _ in 0..3 {
        let peer = hostile(seeder.port, t.info_hash);
        let me = peer.local_addr().expect("our address");
        wait_for_log_line(&seeder.log, &format!("{me}: connected, peer id"), STEP);
        let talk = KeepAlives::start(&peer);
        staying.push((peer, me, talk));
    }

    // Five more: each gets the seeder's handshake and nothing else, then the end.
    for _ in 0..5 {
        let mut extra = hostile(seeder.port, t.info_hash);
        let me = extra.local_addr().expect("our address");
        let after_handshake = read_until_closed(&mut extra, Duration::from_secs(5));
        assert!(
            after_handshake.is_empty(),
            "a refused peer got {} bytes after the handshake",
            after_handshake.len()
        );
        wait_for_log_line(
            &seeder.log,
            &format!("{me}: refused (too many peers)"),
            STEP,
        );
    }
    let log = log_text(&seeder);
    for (_, me, _) in &staying {
        assert!(
            !log.contains(&format!("{me}: disconnected")),
            "{me} was dropped to make room:\n{log}"
        );
    }

    // The first three leave; then an honest client gets in and downloads everything.
    for (peer, me, talk) in staying {
        drop(talk);
        drop(peer);
        seeder.wait_for_drop(me, ""); // for whatever reason: it hung up
    }
    let download = start_download(&t, &seeder);
    check_download(download, &t);
}

#[test]
fn a_handshake_for_another_torrent_is_not_answered() {
    let t = Torrent::new(7);
    let seeder = start_seeder(&t, PEER_TIMEOUT, &["-v"]); // -vv: debug, where the closing is logged
    let download = start_download(&t, &seeder);
    let mut stranger = connect(seeder.port);
    let me = stranger.local_addr().expect("our address");
    let other_torrent = InfoHash([7; 20]);
    handshake(other_torrent)
        .write_to(&mut stranger)
        .expect("send our handshake");

    let answer = read_until_closed(&mut stranger, STEP);
    assert!(
        answer.is_empty(),
        "the seeder answered a handshake for another torrent with {} bytes",
        answer.len()
    );
    wait_for_log_line(
        &seeder.log,
        &format!("{me}: closed: the peer is on another torrent (info hash {other_torrent})"),
        STEP,
    );
    check_download(download, &t);
}
