//! aria2c (Debian package `aria2`) as a real peer on 127.0.0.1: a leecher that downloads one
//! torrent and exits, or a seeder of data already on disk. Used by `tests/aria2_interop.rs`.
//!
//! What aria2c needs (and does) on loopback, as measured with aria2 1.36:
//! - **Peers come from the tracker.** aria2c has no option to name a peer for a `.torrent`,
//!   so the torrent must announce to a tracker on 127.0.0.1. peerwire's built-in tracker
//!   (`common::local_tracker`) and opentracker both work; the built-in one is simpler (no
//!   whitelist) and lets a test see who announced (`RunningTracker::peers`). aria2c connects to
//!   the peers of a tracker reply about one second after it.
//! - **Encrypted first.** aria2c dials every peer with MSE/PE (message stream encryption)
//!   first. A plain-text peer such as peerwire reads a first byte that is not 19 and hangs
//!   up; aria2c then retries the same peer in plain text by itself, about 1 s later. No option
//!   skips the encrypted attempt: `--bt-require-crypto=false` and `--bt-min-crypto-level=plain`
//!   are already its defaults and change nothing (`--bt-require-crypto=true` would drop the
//!   plain retry). Incoming plain connections are accepted at once.
//! - **Nothing leaves the machine**: no DHT, local peer discovery, PEX or IPv6, every socket on
//!   127.0.0.1 (`--interface`), and no user config file (`--no-conf`).
//!
//! Every aria2c is bounded in time twice: it stops by itself after [`STOP_AFTER_SECS`] or when
//! this test process is gone (`--stop`, `--stop-with-process`), and it is killed by PID when
//! its [`Aria2`] is dropped. Its log (`--log-level=info`) is kept in a file for failure messages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// aria2c stops itself after this many seconds, whatever the test does.
pub const STOP_AFTER_SECS: u64 = 120;
/// A leecher gives up (and exits with an error) after this many seconds without a byte.
pub const STALL_SECS: u64 = 20;

/// A running aria2c, killed by PID when dropped.
pub struct Aria2 {
    /// The TCP port it listens on for peers.
    pub port: u16,
    /// Its log file (`--log`), in the directory it downloads into or seeds from.
    log: PathBuf,
    child: Child,
}

impl Aria2 {
    /// aria2c downloading `torrent` into `dir`. It exits once the download is complete and
    /// verified (`--seed-time=0`), or with an error after [`STALL_SECS`] without data.
    pub fn leech(torrent: &Path, dir: &Path) -> Option<Aria2> {
        Aria2::leech_with(torrent, dir, &[])
    }

    /// The same leecher with more options (e.g. `--bt-require-crypto=true`).
    pub fn leech_with(torrent: &Path, dir: &Path, extra: &[&str]) -> Option<Aria2> {
        let stall = format!("--bt-stop-timeout={STALL_SECS}");
        let mut role = vec!["--seed-time=0", stall.as_str()];
        role.extend_from_slice(extra);
        Aria2::start(torrent, dir, &role)
    }

    /// aria2c seeding `torrent` from the data already in `dir`, taken as complete without a
    /// hash check (`--bt-seed-unverified`), whatever the share ratio (`--seed-ratio=0.0`).
    pub fn seed(torrent: &Path, dir: &Path) -> Option<Aria2> {
        Aria2::seed_with(torrent, dir, &[])
    }

    /// The same seeder with more options (e.g. `--bt-require-crypto=true`).
    pub fn seed_with(torrent: &Path, dir: &Path, extra: &[&str]) -> Option<Aria2> {
        let minutes = format!("--seed-time={}", STOP_AFTER_SECS / 60);
        let unverified = "--bt-seed-unverified=true";
        let mut role = vec![minutes.as_str(), unverified, "--seed-ratio=0.0"];
        role.extend_from_slice(extra);
        Aria2::start(torrent, dir, &role)
    }

    fn start(torrent: &Path, dir: &Path, role: &[&str]) -> Option<Aria2> {
        let program = super::need_program("aria2c")?;
        let port = super::free_port();
        let log = dir.join(format!("aria2c-{port}.log"));
        let mut command = Command::new(program);
        command
            .args(["--no-conf", "--interface=127.0.0.1", "--disable-ipv6"])
            .args(["--enable-dht=false", "--enable-dht6=false"])
            .args(["--bt-enable-lpd=false", "--enable-peer-exchange=false"])
            .arg(format!("--listen-port={port}"))
            .arg(format!("--stop={STOP_AFTER_SECS}"))
            .arg(format!("--stop-with-process={}", std::process::id()))
            .args(["--file-allocation=none", "--summary-interval=0"])
            .args(["--console-log-level=error", "--log-level=info"])
            .arg("--log")
            .arg(&log)
            .arg("--dir")
            .arg(dir)
            .args(role)
            .arg(torrent);
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Some(Aria2 { port, log, child })
    }

    /// Waits until aria2c exits, at most `deadline` (then it is killed). `Err` says how it
    /// ended, with the end of its log: a leecher that stalled, or one still running.
    pub fn wait(&mut self, deadline: Duration) -> Result<(), String> {
        let until = Instant::now() + deadline;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("aria2c {status}\n{}", self.log_tail())),
                Ok(None) if Instant::now() < until => {}
                Ok(None) => {
                    let _ = self.child.kill(); // by PID
                    let _ = self.child.wait();
                    return Err(format!(
                        "aria2c still running after {deadline:?}, killed\n{}",
                        self.log_tail()
                    ));
                }
                Err(e) => return Err(format!("waiting for aria2c: {e}")),
            }
            std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the exit
        }
    }

    /// The last lines of aria2c's log, for a failure message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        format!(
            "--- the end of {} ---\n{}",
            self.log.display(),
            tail.join("\n")
        )
    }
}

impl Drop for Aria2 {
    fn drop(&mut self) {
        let _ = self.child.kill(); // by PID; harmless if it has already exited
        let _ = self.child.wait();
    }
}
