//! What each command tells the tracker, seen from the built-in tracker (its `watch` and
//! `scrape`): `left` is the bytes of the whole torrent still missing (at least 1 for a magnet
//! link before its metadata), `completed` comes once and only when every piece is verified,
//! a command that registered says `stopped` when it leaves, and the port it announced takes
//! connections for as long as the tracker lists it (docs/cli.md, "What each command tells the
//! tracker").

pub mod common;

use common::{Killed, free_port, peerwire, run_ok, wait_with_deadline};
use peerwire::metainfo::{InfoHash, Metainfo};
use peerwire::tracker::Event;
use peerwire::tracker::ScrapeStats;
use peerwire::tracker_server::RunningTracker;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(90);
const PIECE: u64 = 32_768;
/// Ten whole pieces and a short eleventh.
const SIZE: u64 = 10 * PIECE + 1_000;

/// One announce as the tracker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Told {
    event: Event,
    left: u64,
    port: u16,
    /// Did the announced port take a TCP connection when the tracker heard it? (Asked only for
    /// announces that list us: not for `stopped`.)
    reachable: bool,
}

/// A built-in tracker that reports every announce, a torrent announced to it, and a
/// `peerwire seed` of it that the tracker lists.
struct Swarm {
    dir: tempfile::TempDir,
    tracker: RunningTracker,
    torrent: PathBuf,
    content: PathBuf,
    info_hash: InfoHash,
    told: Receiver<Told>,
    seed_port: u16,
    _seed: Killed,
}

fn swarm() -> Swarm {
    let tracker = common::local_tracker(Duration::from_secs(60));
    let (tx, told) = std::sync::mpsc::channel();
    tracker.watch(move |a| {
        let listed = a.event != Event::Stopped;
        let reachable =
            listed && TcpStream::connect_timeout(&a.addr, Duration::from_secs(2)).is_ok();
        let told = Told {
            event: a.event,
            left: a.left,
            port: a.addr.port(),
            reachable,
        };
        let _ = tx.send(told);
    });
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("lesson.bin");
    std::fs::write(&content, common::pseudo_random(SIZE as usize, 81)).unwrap();
    let torrent = dir.path().join("lesson.torrent");
    let url = tracker.announce_url().unwrap();
    let piece = PIECE.to_string();
    common::create_torrent(&content, &torrent, &["--piece-length", &piece, "-t", &url]);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let (seed, seed_port) = common::start_seed(peerwire(), &torrent, &content, &[]);
    let mut swarm = Swarm {
        dir,
        tracker,
        torrent,
        content,
        info_hash,
        told,
        seed_port,
        _seed: seed,
    };
    let seed = swarm.wait_for(seed_port, Event::Started);
    assert_eq!((seed.left, seed.reachable), (0, true), "the seed: {seed:?}");
    swarm
}

impl Swarm {
    /// Waits for the announce of `event` from `port`, or fails the test.
    fn wait_for(&mut self, port: u16, event: Event) -> Told {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.told.recv_timeout(left) {
                Ok(told) if told.port == port && told.event == event => return told,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("no {event:?} from port {port} within {DEADLINE:?}")
                }
            }
        }
    }

    /// Every announce since the last call, but the seed's. The tracker hears each one before
    /// it answers, so once a command has exited, all it said is here.
    fn told_by_others(&self) -> Vec<Told> {
        self.told
            .try_iter()
            .filter(|t| t.port != self.seed_port)
            .collect()
    }

    fn magnet(&self) -> String {
        let url = self.tracker.announce_url().unwrap();
        format!(
            "magnet:?xt=urn:btih:{}&tr={}",
            self.info_hash.to_hex(),
            common::percent_encode(&url)
        )
    }

    fn scrape(&self) -> ScrapeStats {
        self.tracker.scrape(self.info_hash)
    }

    /// `peerwire ARGS...`, which must succeed.
    fn run(&self, args: &[&str]) -> String {
        run_ok(peerwire().args(args), DEADLINE)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// What a download from nothing to done says, as `(event, left)` pairs.
const WHOLE_DOWNLOAD: [(Event, u64); 3] = [
    (Event::Started, SIZE),
    (Event::Completed, 0),
    (Event::Stopped, 0),
];

/// The `(event, left)` pairs, in order.
fn story(told: &[Told]) -> Vec<(Event, u64)> {
    told.iter().map(|t| (t.event, t.left)).collect()
}

/// Every announce that lists us named a port that took a connection then.
fn assert_reachable(told: &[Told], what: &str) {
    for t in told.iter().filter(|t| t.event != Event::Stopped) {
        assert!(
            t.reachable,
            "{what}: announced port {} took no connection: {told:?}",
            t.port
        );
    }
}

/// Only the seed is left in the swarm, and `completed` counts whole downloads.
fn assert_only_the_seed(swarm: &Swarm, completed: u32) {
    let expected = ScrapeStats {
        seeders: 1,
        completed,
        leechers: 0,
    };
    assert_eq!(swarm.scrape(), expected);
}

#[test]
fn peers_looks_up_and_leaves() {
    let swarm = swarm();
    let torrent = swarm.torrent.display().to_string();
    let port = free_port().to_string();
    let out = swarm.run(&["peers", &torrent, "--port", &port]);
    assert_eq!(out.trim(), format!("127.0.0.1:{}", swarm.seed_port));
    let told = swarm.told_by_others();
    assert_eq!(
        story(&told),
        [(Event::Started, SIZE), (Event::Stopped, SIZE)]
    );
    assert_reachable(&told, "peers");
    assert_only_the_seed(&swarm, 0);
}

#[test]
fn handshake_tells_the_tracker_nothing() {
    let swarm = swarm();
    let torrent = swarm.torrent.display().to_string();
    let seed = format!("127.0.0.1:{}", swarm.seed_port);
    let out = swarm.run(&["handshake", &torrent, &seed]);
    assert!(out.starts_with("Peer ID: "), "{out}");
    assert_eq!(swarm.told_by_others(), []);
}

#[test]
fn download_piece_says_the_whole_torrent_is_missing_and_never_completed() {
    let swarm = swarm();
    let (torrent, out) = (swarm.torrent.display().to_string(), swarm.path("piece3"));
    let port = free_port().to_string();
    swarm.run(&["download_piece", "-o", &out, &torrent, "3", "--port", &port]);
    let told = swarm.told_by_others();
    // One piece of eleven: the tracker must go on counting us as a leecher that lacks the rest.
    assert_eq!(
        story(&told),
        [(Event::Started, SIZE), (Event::Stopped, SIZE - PIECE)]
    );
    assert_reachable(&told, "download_piece");
    assert_only_the_seed(&swarm, 0);
}

#[test]
fn download_says_completed_once_every_piece_is_verified() {
    let swarm = swarm();
    let (torrent, out) = (swarm.torrent.display().to_string(), swarm.path("whole.bin"));
    let port = free_port().to_string();
    swarm.run(&["download", "-o", &out, &torrent, "--port", &port]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&swarm.content).unwrap()
    );
    let told = swarm.told_by_others();
    assert_eq!(story(&told), WHOLE_DOWNLOAD);
    assert_reachable(&told, "download");
    assert_only_the_seed(&swarm, 1);
}

#[test]
fn a_seed_says_left_0_never_completed_and_stopped_on_ctrl_c() {
    let mut swarm = swarm();
    let port = free_port();
    let seed = peerwire()
        .arg("seed")
        .arg(&swarm.torrent)
        .arg(&swarm.content)
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = swarm.wait_for(port, Event::Started);
    assert_eq!((started.left, started.reachable), (0, true));
    assert_eq!(swarm.scrape().seeders, 2);
    let _ = Command::new("kill")
        .args(["-INT", &seed.id().to_string()])
        .status();
    let output = wait_with_deadline(seed, DEADLINE);
    assert!(output.status.success(), "Ctrl-C ends seeding: {output:?}");
    assert_eq!(story(&swarm.told_by_others()), [(Event::Stopped, 0)]);
    assert_only_the_seed(&swarm, 0);
}

#[test]
fn magnet_info_looks_up_and_leaves() {
    let swarm = swarm();
    let port = free_port().to_string();
    let out = swarm.run(&["magnet_info", &swarm.magnet(), "--port", &port]);
    assert!(out.contains(&format!("Length: {SIZE}")), "{out}");
    let told = swarm.told_by_others();
    assert_eq!(story(&told), [(Event::Started, 1), (Event::Stopped, 1)]);
    assert_reachable(&told, "magnet_info");
    assert_only_the_seed(&swarm, 0);
}

#[test]
fn download_of_a_magnet_link_looks_up_then_downloads_and_completes_once() {
    let swarm = swarm();
    let (out, port) = (swarm.path("from-magnet"), free_port().to_string());
    std::fs::create_dir_all(&out).unwrap();
    swarm.run(&["download", &swarm.magnet(), "-o", &out, "--port", &port]);
    let got = std::fs::read(swarm.dir.path().join("from-magnet/lesson.bin")).unwrap();
    assert!(
        got == std::fs::read(&swarm.content).unwrap(),
        "the bytes differ"
    );
    let told = swarm.told_by_others();
    assert_eq!(
        story(&told),
        [
            (Event::Started, 1), // the look-up, before the metadata
            (Event::Stopped, 1),
            (Event::Started, SIZE), // the download
            (Event::Completed, 0),
            (Event::Stopped, 0)
        ]
    );
    assert_reachable(&told, "download <magnet>");
    assert_only_the_seed(&swarm, 1);
}

#[test]
fn magnet_download_piece_is_download_piece_after_a_look_up() {
    let swarm = swarm();
    let (out, port) = (swarm.path("piece10"), free_port().to_string());
    let magnet = swarm.magnet();
    swarm.run(&[
        "magnet_download_piece",
        "-o",
        &out,
        &magnet,
        "10",
        "--port",
        &port,
    ]);
    assert_eq!(
        std::fs::read(&out).unwrap().len(),
        1_000,
        "the short last piece"
    );
    let told = swarm.told_by_others();
    assert_eq!(
        story(&told),
        [
            (Event::Started, 1),
            (Event::Stopped, 1),
            (Event::Started, SIZE),
            (Event::Stopped, SIZE - 1_000)
        ]
    );
    assert_reachable(&told, "magnet_download_piece");
    assert_only_the_seed(&swarm, 0);
}

#[test]
fn a_download_under_debug_single_peer_listens_where_it_announces() {
    let swarm = swarm();
    let (torrent, out) = (swarm.torrent.display().to_string(), swarm.path("debug.bin"));
    let port = free_port().to_string();
    let args = [
        "download",
        "-o",
        &out,
        &torrent,
        "--port",
        &port,
        "--debug-single-peer",
    ];
    swarm.run(&args);
    let told = swarm.told_by_others();
    assert_eq!(story(&told), WHOLE_DOWNLOAD);
    assert_reachable(&told, "download --debug-single-peer");
}

/// The magnet look-up used to stay listed at a port nobody listened on: the next download from
/// that tracker dialled it again and again ("Connection refused").
#[test]
fn after_a_magnet_look_up_the_next_download_is_sent_to_no_dead_address() {
    let swarm = swarm();
    let port = free_port().to_string();
    swarm.run(&["magnet_info", &swarm.magnet(), "--port", &port]);
    let (torrent, out) = (swarm.torrent.display().to_string(), swarm.path("next.bin"));
    let next_port = free_port().to_string();
    let output = common::run_with_deadline(
        peerwire().args(["-v", "download", "-o", &out, &torrent, "--port", &next_port]),
        DEADLINE,
    );
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    let dialled_elsewhere: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("127.0.0.1:") && !l.contains(&swarm.seed_port.to_string()))
        .filter(|l| l.contains("cannot connect") || l.contains("connected, peer id"))
        .collect();
    assert!(
        dialled_elsewhere.is_empty(),
        "the tracker sent the download to another address: {dialled_elsewhere:?}\n{log}"
    );
}
