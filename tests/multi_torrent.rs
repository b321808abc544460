//! Several torrents in one `peerwire download`, against real libtorrent peers (python3-libtorrent,
//! `tests/peers/libtorrent_session.py`, one session per torrent):
//!
//! - two torrents from two libtorrent seeders, both complete, byte for byte, in one process;
//! - a bad `.torrent` file beside a good one: the good one completes, the bad one prints one
//!   `error:` line naming it, and the exit status is 1;
//! - routing: `download A B --seed` listens on one port; a libtorrent leecher of A and one of
//!   B both dial that port, and the trace shows each handshake answered under its own info
//!   hash, on the same port; both leechers complete; Ctrl-C then ends both cleanly;
//! - a `.torrent` and a magnet link (metadata from a libtorrent seeder) in one process;
//! - Ctrl-C while two torrents find no peer: each prints its own `interrupted` error line;
//! - in a real terminal (tmux), one named progress line per torrent;
//! - two torrents on one tracker (peerwire's built-in one, in the test process): one thread
//!   named `tracker` announces both, and both complete from the seeders that tracker lists;
//! - that thread as a library (`TrackerThread`): two jobs re-announce each on its own
//!   deadline, and each leaves, after its `stopped`, while the other goes on; a tracker asking
//!   for an interval of 0 does not keep the thread from reading `Stop`.

pub mod common;

use common::{LibtorrentPeer, StderrLines, peerwire, pseudo_random};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

/// One torrent of the test: its content in `seed/NAME`, its `.torrent` file, and its bytes.
struct Torrent {
    torrent: PathBuf,
    name: &'static str,
    bytes: Vec<u8>,
}

/// A single-file torrent `name` of `size` pseudo-random bytes (seed `seed`) under `dir/seed`.
fn torrent(dir: &Path, name: &'static str, size: usize, seed: u64) -> Torrent {
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let bytes = pseudo_random(size, seed);
    let content = seed_dir.join(name);
    std::fs::write(&content, &bytes).unwrap();
    let torrent = dir.join(format!("{name}.torrent"));
    common::create_torrent(&content, &torrent, &["--piece-length", "65536"]);
    Torrent {
        torrent,
        name,
        bytes,
    }
}

/// The info hash `peerwire info` prints for `torrent`, in hex.
fn info_hash(torrent: &Path) -> String {
    let out = common::run_ok(peerwire().arg("info").arg(torrent), DEADLINE);
    out.lines()
        .find_map(|l| l.strip_prefix("Info Hash: "))
        .unwrap_or_else(|| panic!("no info hash in {out}"))
        .trim()
        .to_string()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn two_torrents_from_two_libtorrent_seeders_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let a = torrent(dir.path(), "alpha.bin", 1_500_000, 11);
    let b = torrent(dir.path(), "beta.bin", 900_001, 12);
    let seed_dir = dir.path().join("seed");
    let Some(seeder_a) = LibtorrentPeer::start(&a.torrent, &seed_dir, true) else {
        return;
    };
    let Some(seeder_b) = LibtorrentPeer::start(&b.torrent, &seed_dir, true) else {
        return;
    };
    let out = dir.path().join("out");
    // Each torrent is told of both seeders: the one of the other torrent refuses its
    // handshake, as a real swarm's stray peer would.
    let downloaded = common::download_from(
        &[local(seeder_a.port), local(seeder_b.port)],
        &a.torrent,
        &out,
    )
    .args(&[b.torrent.to_str().unwrap()])
    .run();
    downloaded.assert_success();
    common::assert_bytes(&out.join(a.name), &a.bytes, "alpha");
    common::assert_bytes(&out.join(b.name), &b.bytes, "beta");
    let done = downloaded
        .stderr
        .lines()
        .filter(|l| l.starts_with("done: "));
    assert_eq!(
        done.count(),
        2,
        "one done: line each\n{}",
        downloaded.stderr
    );
}

#[test]
fn a_bad_torrent_beside_a_good_one_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let good = torrent(dir.path(), "good.bin", 700_000, 21);
    let bad = dir.path().join("broken.torrent");
    std::fs::write(&bad, b"d4:infoi3ee").unwrap();
    let seed_dir = dir.path().join("seed");
    let Some(seeder) = LibtorrentPeer::start(&good.torrent, &seed_dir, true) else {
        return;
    };
    let out = dir.path().join("out");
    let downloaded = common::download_from(&[local(seeder.port)], &bad, &out)
        .args(&[good.torrent.to_str().unwrap()])
        .run();
    assert_eq!(
        downloaded.status.code(),
        Some(1),
        "one torrent failed: status 1\n{}",
        downloaded.stderr
    );
    common::assert_bytes(&out.join(good.name), &good.bytes, "the good torrent");
    let errors: Vec<&str> = downloaded
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error: line\n{}", downloaded.stderr);
    assert!(
        errors[0].contains("broken.torrent"),
        "the error names the bad torrent: {}",
        errors[0]
    );
}

#[test]
fn one_port_serves_two_torrents_to_two_libtorrent_leechers() {
    let dir = tempfile::tempdir().unwrap();
    let a = torrent(dir.path(), "left.bin", 1_200_000, 31);
    let b = torrent(dir.path(), "right.bin", 800_000, 32);
    let (hash_a, hash_b) = (info_hash(&a.torrent), info_hash(&b.torrent));
    let port = common::free_port();
    // Both contents are complete in `seed`: `download --seed` verifies them and serves.
    let mut seeder = StderrLines::spawn(
        peerwire()
            .args(["-v", "download", "--seed", "--trace", "-o"])
            .arg(dir.path().join("seed"))
            .arg(&a.torrent)
            .arg(&b.torrent)
            .args(["--port", &port.to_string(), "--no-dht"]),
    );
    seeder.wait_for("listening for peers on", DEADLINE);
    // Both sessions registered: each logs its resume check once its torrent is known.
    common::wait_for_tcp(port, DEADLINE, "peerwire download --seed");
    let leech_a = dir.path().join("leech_a");
    let leech_b = dir.path().join("leech_b");
    let Some(mut leecher_a) = LibtorrentPeer::start(&a.torrent, &leech_a, false) else {
        return;
    };
    let Some(mut leecher_b) = LibtorrentPeer::start(&b.torrent, &leech_b, false) else {
        return;
    };
    // Both torrents must be registered before the leechers dial: a handshake for a torrent
    // not yet running is refused (and libtorrent would wait before dialling again).
    seeder.wait_for("resume:", DEADLINE);
    seeder.wait_for("resume:", DEADLINE);
    leecher_a.wait_until_started(DEADLINE);
    leecher_b.wait_until_started(DEADLINE);
    leecher_a.send(&format!("connect 127.0.0.1:{port}"));
    leecher_b.send(&format!("connect 127.0.0.1:{port}"));
    leecher_a.wait_for("finished", DEADLINE);
    leecher_b.wait_for("finished", DEADLINE);
    common::assert_bytes(&leech_a.join(a.name), &a.bytes, "libtorrent's copy of left");
    common::assert_bytes(
        &leech_b.join(b.name),
        &b.bytes,
        "libtorrent's copy of right",
    );
    let lines = seeder.stop("-INT", Duration::from_secs(30));
    // Our answers to the two leechers' handshakes: each under the hash the leecher asked for.
    let answered = |hash: &str| {
        lines
            .iter()
            .any(|l| l.contains(" -> Handshake") && l.to_lowercase().contains(hash))
    };
    assert!(answered(&hash_a), "no handshake answered for {hash_a}");
    assert!(answered(&hash_b), "no handshake answered for {hash_b}");
    let listening: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("listening for peers on"))
        .collect();
    assert_eq!(
        listening.len(),
        1,
        "one listener for both torrents: {listening:?}"
    );
    // Ctrl-C while seeding: both torrents end cleanly, each with its `done:` line.
    let done = lines.iter().filter(|l| l.starts_with("done: ")).count();
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    assert_eq!((done, errors.len()), (2, 0), "{errors:?}");
}

#[test]
fn a_torrent_file_and_a_magnet_link_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let a = torrent(dir.path(), "file.bin", 600_000, 41);
    let b = torrent(dir.path(), "linked.bin", 500_000, 42);
    let seed_dir = dir.path().join("seed");
    let Some(seeder_a) = LibtorrentPeer::start(&a.torrent, &seed_dir, true) else {
        return;
    };
    let Some(seeder_b) = LibtorrentPeer::start(&b.torrent, &seed_dir, true) else {
        return;
    };
    // The magnet link names its only peer (`x.pe`): the metadata comes from libtorrent.
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=linked.bin&x.pe=127.0.0.1:{}",
        info_hash(&b.torrent),
        seeder_b.port
    );
    let out = dir.path().join("out");
    let downloaded = common::download_from(&[local(seeder_a.port)], &a.torrent, &out)
        .args(&[&magnet])
        .run();
    downloaded.assert_success();
    common::assert_bytes(&out.join(a.name), &a.bytes, "the .torrent's file");
    common::assert_bytes(&out.join(b.name), &b.bytes, "the magnet link's file");
    assert!(
        downloaded.stderr.contains("done: magnet linked.bin: "),
        "the magnet link is named by its dn\n{}",
        downloaded.stderr
    );
}

/// A port nobody listens on: a `--peer` that never answers.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

#[test]
fn ctrl_c_stops_every_torrent_each_with_its_own_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let a = torrent(dir.path(), "one.bin", 300_000, 51);
    let b = torrent(dir.path(), "two.bin", 300_000, 52);
    let nobody = closed_port();
    let mut download = StderrLines::spawn(
        peerwire()
            .args(["-v", "download", "-o"])
            .arg(dir.path().join("out"))
            .arg(&a.torrent)
            .arg(&b.torrent)
            .args([
                "--port",
                "0",
                "--no-dht",
                "--peer",
                &format!("127.0.0.1:{nobody}"),
            ]),
    );
    // Both sessions are running once each has checked its files.
    download.wait_for("resume:", DEADLINE);
    download.wait_for("resume:", DEADLINE);
    let lines = download.stop("-INT", Duration::from_secs(30));
    let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 2, "{lines:#?}");
    for name in ["one.bin.torrent", "two.bin.torrent"] {
        assert!(
            errors
                .iter()
                .any(|l| l.contains(name) && l.contains("interrupted")),
            "no interrupted line for {name}: {errors:?}"
        );
    }
}

#[test]
fn each_torrent_has_its_own_named_line_in_a_terminal() {
    let Some(tmux) = common::need_program("tmux") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = torrent(dir.path(), "first.bin", 200_000, 61);
    let b = torrent(dir.path(), "second.bin", 200_000, 62);
    let socket = format!(
        "peerwire-multi-{}-{}",
        std::process::id(),
        common::free_port()
    );
    let command = format!(
        "{} download -o {} {} {} --port 0 --no-dht --peer 127.0.0.1:{}",
        peerwire().get_program().to_string_lossy(),
        dir.path().join("out").display(),
        a.torrent.display(),
        b.torrent.display(),
        closed_port()
    );
    let tmux_run = |args: &[&str]| {
        let mut command = std::process::Command::new(&tmux);
        command.args(["-L", &socket]).args(args);
        command
            .env("PEERWIRE_LSD", "off")
            .env("PEERWIRE_DHT_ROUTERS", "");
        common::run_ok(&mut command, DEADLINE)
    };
    let size = ["-x", "200", "-y", "20"];
    tmux_run(&[&["new-session", "-d", "-s", "t"][..], &size, &[&command]].concat());
    // The server is ours alone (its own socket): it ends with the test, pass or fail.
    struct Server<'a>(&'a dyn Fn(&[&str]) -> String);
    impl Drop for Server<'_> {
        fn drop(&mut self) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (self.0)(&["kill-server"])
            }));
        }
    }
    let _server = Server(&tmux_run);
    let until = std::time::Instant::now() + DEADLINE;
    let screen = loop {
        let text = tmux_run(&["capture-pane", "-p", "-t", "t"]);
        let bars: Vec<String> = text
            .lines()
            .filter(|l| l.contains("ETA"))
            .map(str::to_string)
            .collect();
        if bars.len() >= 2 {
            break bars;
        }
        assert!(std::time::Instant::now() < until, "no two bars:\n{text}");
        std::thread::sleep(Duration::from_millis(100)); // poll interval while waiting for the screen
    };
    assert_eq!(screen.len(), 2, "{screen:#?}");
    // Each named for its torrent (`info`'s name), in the order each was loaded.
    for name in ["first.bin ", "second.bin "] {
        let named: Vec<&String> = screen.iter().filter(|l| l.starts_with(name)).collect();
        assert_eq!(named.len(), 1, "one line for {name}: {screen:#?}");
        assert!(
            named[0].ends_with("0% 0.0 MiB/s down, 0.0 MiB/s up, 0 peers, ETA --"),
            "{}",
            named[0]
        );
    }
    tmux_run(&["send-keys", "-t", "t", "C-c"]);
}

#[test]
fn one_tracker_thread_serves_two_jobs_and_removes_each_after_its_stopped() {
    use peerwire::metainfo::InfoHash;
    use peerwire::peer_id::PeerId;
    use peerwire::tracker::announcer::TrackerThread;
    use peerwire::tracker::tiers::TrackerTiers;
    use peerwire::tracker::{AnnounceRequest, TrackerConfig};
    let server = common::local_tracker(Duration::from_secs(1));
    let url = server.udp_announce_url().expect("a UDP tracker");
    let config = TrackerConfig {
        udp_base_timeout: Duration::from_millis(500),
        udp_retries: 2,
        ..TrackerConfig::default()
    };
    let tiers = || TrackerTiers::new(vec![vec![url.clone()]], config);
    let request =
        |byte| AnnounceRequest::started(InfoHash([byte; 20]), PeerId::generate(), 6000, 100);
    let thread = TrackerThread::start().expect("a thread");
    let (request_a, request_b) = (request(0xa), request(0xb));
    let (hash_a, hash_b) = (request_a.info_hash, request_b.info_hash);
    let a = thread.add(tiers(), request_a);
    let b = thread.add(tiers(), request_b);
    let wait = Duration::from_secs(10);
    // Interval 1 s: each job re-announces on its own deadline.
    for _ in 0..2 {
        a.peers.recv_timeout(wait).expect("an announce for A");
        b.peers.recv_timeout(wait).expect("an announce for B");
    }
    // `stop` returns once the thread has sent `stopped` and dropped the job.
    a.stop();
    assert!(server.peers(hash_a).is_empty(), "`stopped` removed A");
    assert_eq!(server.peers(hash_b).len(), 1, "B still registered");
    // Drain what B got meanwhile, then B goes on being announced without A.
    while b.peers.try_recv().is_ok() {}
    b.peers
        .recv_timeout(wait)
        .expect("B re-announced after A left");
    b.stop();
    assert!(server.peers(hash_b).is_empty(), "`stopped` removed B");
    // No job left and no handle: the thread ends, and `stop` returns.
    thread.stop();
    server.stop();
}

#[test]
fn a_tracker_asking_for_no_interval_does_not_keep_stop_from_being_read() {
    use peerwire::metainfo::InfoHash;
    use peerwire::peer_id::PeerId;
    use peerwire::tracker::announcer::TrackerThread;
    use peerwire::tracker::tiers::TrackerTiers;
    use peerwire::tracker::{AnnounceRequest, TrackerConfig};
    // Interval 0: every job is always due again at once.
    let server = common::local_tracker(Duration::ZERO);
    let url = server.udp_announce_url().expect("a UDP tracker");
    let tiers = TrackerTiers::new(vec![vec![url]], TrackerConfig::default());
    let request = AnnounceRequest::started(InfoHash([0xc; 20]), PeerId::generate(), 6000, 100);
    let thread = TrackerThread::start().expect("a thread");
    let job = thread.add(tiers, request);
    for _ in 0..3 {
        job.peers
            .recv_timeout(Duration::from_secs(10))
            .expect("an announce");
    }
    common::within(
        Duration::from_secs(30),
        "stopping a job re-announced without pause",
        "the thread announces what is due before it reads its commands",
        move || {
            job.stop();
            thread.stop();
        },
    );
    server.stop();
}

/// The threads of process `pid` named `name` (Linux: `/proc/PID/task/*/comm`).
fn threads_named(pid: u32, name: &str) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[test]
fn one_tracker_thread_announces_two_torrents_that_complete_from_its_seeders() {
    use peerwire::metainfo::InfoHash;
    use peerwire::tracker::Event;
    let tracker = common::local_tracker(Duration::from_secs(60));
    let url = tracker.announce_url().expect("an HTTP tracker");
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    // Two torrents naming the tracker, each with its own seeder (`peerwire seed`).
    let mut torrents = Vec::new();
    for (name, size, seed) in [("one.bin", 700_000, 41), ("two.bin", 500_001, 42)] {
        let bytes = pseudo_random(size, seed);
        let content = seed_dir.join(name);
        std::fs::write(&content, &bytes).unwrap();
        let torrent = dir.path().join(format!("{name}.torrent"));
        common::create_torrent(&content, &torrent, &["--piece-length", "65536", "-t", &url]);
        torrents.push((torrent, content, name, bytes));
    }
    // Everything the tracker hears: (the announcer's port, info hash, event), in order.
    let (heard_tx, heard) = crossbeam_channel::unbounded();
    tracker.watch(move |a| {
        // Fails only once the test is over and nobody listens.
        let _ = heard_tx.send((a.addr.port(), a.info_hash, a.event));
    });
    // Waits until the announcer on `port` has told the tracker `event` for every one of `hashes`.
    let wait_for = |port: u16, hashes: &[InfoHash], event: Event| {
        let until = std::time::Instant::now() + DEADLINE;
        let mut told = Vec::new();
        while !hashes.iter().all(|h| told.contains(h)) {
            match heard.recv_deadline(until) {
                Ok((p, hash, e)) if p == port && e == event => told.push(hash),
                Ok(_) => {}
                Err(_) => panic!("port {port}: no {event:?} for {hashes:?} within {DEADLINE:?}"),
            }
        }
    };
    let hashes: Vec<InfoHash> = torrents
        .iter()
        .map(|(t, ..)| {
            peerwire::metainfo::Metainfo::from_file(t)
                .unwrap()
                .info_hash
        })
        .collect();
    let mut seeders = Vec::new();
    for ((torrent, content, ..), &hash) in torrents.iter().zip(&hashes) {
        let (seeder, seed_port) = common::start_seed(peerwire(), torrent, content, &["--no-dht"]);
        seeders.push(seeder);
        // The seeder is in the tracker's list before the download asks for it.
        wait_for(seed_port, &[hash], Event::Started);
    }
    let port = common::free_port();
    let out = dir.path().join("out");
    let mut command = peerwire();
    command
        .args(["-v", "download", "--seed", "--no-dht", "-o"])
        .arg(&out)
        .args(torrents.iter().map(|(t, ..)| t))
        .args(["--port", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = common::Killed(command.spawn().expect("start peerwire download"));
    let pid = child.0.id();
    let stderr = common::lines_of(child.0.stderr.take().expect("piped stderr"));
    let wait_for_both = |event: Event| wait_for(port, &hashes, event);
    // Both sessions have started (each said `started`): one thread announces for both.
    wait_for_both(Event::Started);
    assert_eq!(threads_named(pid, "tracker"), 1, "while both download");
    // Both complete: the only peers they know are the seeders the tracker listed.
    wait_for_both(Event::Completed);
    assert_eq!(threads_named(pid, "tracker"), 1, "while both seed");
    for (_, _, name, bytes) in &torrents {
        common::assert_bytes(&out.join(name), bytes, name);
    }
    // Ctrl-C: each torrent says `stopped` (through the one thread) and prints its `done:`.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    wait_for_both(Event::Stopped);
    let until = std::time::Instant::now() + DEADLINE;
    let mut lines = Vec::new();
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match stderr.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("PID {pid} did not end within {DEADLINE:?} of kill -INT")
            }
        }
    }
    let done = lines.iter().filter(|l| l.starts_with("done: ")).count();
    assert_eq!(done, 2, "{}", lines.join("\n"));
    drop(child);
    drop(seeders);
    tracker.stop();
}
