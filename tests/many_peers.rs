//! Hundreds of peers on one `peerwire seed`: the thread-per-peer design (one OS thread per
//! connection, walkthrough §7) holding 300 connections at once, within bounds.
//!
//! The crowd is `tests/peers/light_swarm.py leech`: 300 leechers in one Python process, each
//! dialling from its own 127.77.x.y address, speaking plain BEP 3 ("The BitTorrent Protocol
//! Specification"): interested, requests while unchoked, every piece checked against its SHA-1.
//! The test checks:
//! - all 300 handshakes are answered, and the seed then runs at least 300 threads;
//! - the seed's peak RSS (`VmHWM`, debug build) stays under 200 MiB;
//! - no unchoked leecher waits longer than the choke interval (`ROUND_INTERVAL`, 10 s, BEP 3's
//!   "choking and optimistic unchoking") for its first block: no starved connection. The run
//!   lasts 22 s, so it sees the unchokes at connection time and two choke rounds.
//!
//! Open files: the seed needs one descriptor per connection, so its soft limit is raised to
//! 1024 when it is lower (the hard limit must allow that); the Python crowd raises its own.
//! Skips loudly if `python3` is missing (`PEERWIRE_INTEROP=require` makes that a failure).

pub mod common;

use common::{Killed, free_port, lines_of, need_program, peerwire, small_torrent, wait_for_tcp};
use peerwire::choker::ROUND_INTERVAL;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const LEECHERS: usize = 300;
/// How long the crowd runs once started: the first unchokes, then rounds at 10 s and 20 s.
const RUN_SECONDS: u64 = 22;
const RSS_LIMIT_KIB: u64 = 200 * 1024;

/// One field (`Threads`, `VmHWM`, ...) of `/proc/PID/status`, as a number (kB for sizes).
fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// `peerwire seed` with its open-files limit raised to 1024 when lower: `sh` raises the soft
/// limit and then `exec`s peerwire, so the PID held is peerwire's own.
fn seed_with_room(torrent: &Path, content: &Path, port: u16) -> Killed {
    let raise = "n=$(ulimit -n); if [ \"$n\" != unlimited ] && [ \"$n\" -lt 1024 ]; then \
                 ulimit -n 1024 || echo 'cannot raise ulimit -n to 1024' >&2; fi; exec \"$0\" \"$@\"";
    let template = peerwire();
    let mut command = Command::new("sh");
    command
        .args(["-c", raise])
        .arg(template.get_program())
        .envs(template.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .arg("-q")
        .arg("seed")
        .arg(torrent)
        .arg(content)
        .args(["--port", &port.to_string()])
        .args(["--max-peers", &(LEECHERS + 20).to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let seed = Killed(command.spawn().expect("start peerwire seed"));
    wait_for_tcp(port, Duration::from_secs(30), "peerwire seed");
    seed
}

/// The next line of the crowd's output, or a failure naming `what` at the deadline.
fn next_line(lines: &Receiver<String>, until: Instant, what: &str) -> String {
    let left = until.saturating_duration_since(Instant::now());
    lines
        .recv_timeout(left)
        .unwrap_or_else(|_| panic!("the light leechers: no {what} before the deadline"))
}

/// What one leecher's events say about its unchokes.
#[derive(Default)]
struct Leecher {
    /// An unchoke it could use (it still lacked pieces) and has had no block for yet.
    waiting_since: Option<f64>,
    complete: bool,
}

/// The waits of every usable unchoke: until the first block, or in vain until a choke or the
/// end of the run; `served` counts the unchokes that got a block.
#[derive(Default)]
struct Waits {
    longest: f64,
    longest_peer: String,
    served: usize,
    waits: usize,
}

impl Waits {
    fn add(&mut self, peer: &str, wait: f64) {
        self.waits += 1;
        if wait > self.longest {
            self.longest = wait;
            self.longest_peer = peer.to_string();
        }
    }
}

#[test]
fn a_seed_holds_300_leechers_in_bounds_and_starves_none() {
    let Some(python) = need_program("python3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 16 pieces of 256 KiB: an unchoked leecher finishes within a round and gives its slot up.
    let (content, torrent) = small_torrent(dir.path(), 4 << 20, 256 << 10);
    let port = free_port();
    let seed = seed_with_room(&torrent, &content, port);
    let pid = seed.0.id();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/light_swarm.py");
    let mut crowd = Command::new(python);
    crowd
        .arg(script)
        .arg("leech")
        .arg(&torrent)
        .args(["--connect", &format!("127.0.0.1:{port}")])
        .args(["--count", &LEECHERS.to_string()])
        .args(["--first-ip", "127.77.0.1"])
        .args(["--seconds", &RUN_SECONDS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut crowd = Killed(crowd.spawn().expect("start the light leechers"));
    let lines = lines_of(crowd.0.stdout.take().expect("piped stdout"));

    // Every event until the crowd's summary; its own deadline ends it after RUN_SECONDS.
    let until = Instant::now() + Duration::from_secs(RUN_SECONDS + 40);
    let mut leechers: HashMap<String, Leecher> = HashMap::new();
    let mut waits = Waits::default();
    let mut connected = 0;
    let mut threads_with_all = 0;
    let mut failures = Vec::new();
    let elapsed = loop {
        let line = next_line(&lines, until, "summary");
        let words: Vec<&str> = line.split(' ').collect();
        let (Some(&event), Some(&peer)) = (words.first(), words.get(1)) else {
            continue;
        };
        let time = || -> f64 { words[2].parse().expect("a time in seconds") };
        match event {
            "connected" => {
                connected += 1;
                leechers.entry(peer.to_string()).or_default();
                if connected == LEECHERS {
                    // Every handshake answered: each connection has its thread now.
                    threads_with_all = status_field(pid, "Threads");
                }
            }
            "failed" => failures.push(line.clone()),
            "unchoked" => {
                let leecher = leechers.entry(peer.to_string()).or_default();
                if !leecher.complete {
                    leecher.waiting_since = Some(time());
                }
            }
            "first_block" => {
                let delay: f64 = words[3].parse().expect("a delay in seconds");
                waits.add(peer, delay);
                waits.served += 1;
                leechers.entry(peer.to_string()).or_default().waiting_since = None;
            }
            "choked" => {
                let leecher = leechers.entry(peer.to_string()).or_default();
                if let Some(since) = leecher.waiting_since.take() {
                    waits.add(peer, time() - since);
                }
            }
            "complete" => leechers.entry(peer.to_string()).or_default().complete = true,
            "summary" => {
                let at = line.find("\"elapsed\": ").expect("elapsed in the summary") + 11;
                let end = line[at..].find(['}', ',']).map_or(line.len(), |e| at + e);
                break line[at..end]
                    .trim()
                    .parse::<f64>()
                    .expect("elapsed seconds");
            }
            _ => {}
        }
    };
    // Unchokes still without a block when the run ended waited until then.
    for (peer, leecher) in &leechers {
        if let Some(since) = leecher.waiting_since {
            waits.add(peer, elapsed - since);
        }
    }
    let peak_kib = status_field(pid, "VmHWM");
    drop(crowd);
    drop(seed);

    assert_eq!(
        connected, LEECHERS,
        "every light leecher should have its handshake answered; failures: {failures:?}"
    );
    assert!(
        threads_with_all >= LEECHERS as u64,
        "one thread per connection: {threads_with_all} threads with {LEECHERS} peers"
    );
    assert!(
        peak_kib < RSS_LIMIT_KIB,
        "the seed's peak RSS was {peak_kib} KiB with {LEECHERS} peers (limit {RSS_LIMIT_KIB})"
    );
    // 5 slots at connection time, then up to 5 new leechers at each of the rounds at 10 s and
    // 20 s (those served before have finished and lost interest). At least one round's worth
    // beyond the first 5: a run that saw fewer did not test the unchokes of a choke round.
    assert!(
        waits.served >= 8,
        "only {} unchokes were served in {elapsed:.1} s",
        waits.served
    );
    assert!(
        waits.longest <= ROUND_INTERVAL.as_secs_f64(),
        "{} waited {:.3} s after an unchoke for its first block (choke interval {:?})",
        waits.longest_peer,
        waits.longest,
        ROUND_INTERVAL
    );
    let report = format!(
        "many_peers: {connected} connected, {threads_with_all} threads, peak RSS {} KiB, \
         {} unchokes served of {}, longest wait {:.3} s\n",
        peak_kib, waits.served, waits.waits, waits.longest
    );
    use std::io::Write;
    let _ = std::io::stderr().write_all(report.as_bytes());
}
