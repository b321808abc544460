//! Transmission as a real peer: a `transmission-daemon` (Debian package) with its own config
//! directory, RPC port and peer port, driven by `transmission-remote`; optionally with its
//! debug log, which tells each step of every handshake (the MSE/PE key exchange included) as
//! Transmission saw it.

use super::{Killed, free_port, need_program, run_ok, wait_for_tcp};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A Transmission daemon (Debian `transmission-daemon`) with its own config dir, RPC port and
/// peer port, driven by `transmission-remote`. Killed when dropped.
pub struct Transmission {
    pub rpc_port: u16,
    pub peer_port: u16,
    remote: PathBuf,
    /// Where the daemon's stderr goes when it was started with its debug log.
    debug_log: Option<PathBuf>,
    _config: tempfile::TempDir,
    _process: Killed,
}

impl Transmission {
    pub fn start() -> Option<Transmission> {
        Transmission::launch(false, false)
    }

    /// [`Transmission::start`] with uTP (BEP 29) on: it accepts uTP on its peer port, beside
    /// TCP. The other constructors turn uTP off, so that their tests stay about TCP.
    pub fn start_with_utp() -> Option<Transmission> {
        Transmission::launch(false, true)
    }

    /// [`Transmission::start`], and the daemon writes its debug log, read back with
    /// [`Transmission::debug_log`]. `TR_DEBUG_FD=2` is Transmission 3.00's switch for it:
    /// the handshake code logs only there (neither `-e` nor `--log-debug` shows it).
    pub fn start_with_debug_log() -> Option<Transmission> {
        Transmission::launch(true, false)
    }

    fn launch(debug: bool, utp: bool) -> Option<Transmission> {
        let daemon = need_program("transmission-daemon")?;
        let remote = need_program("transmission-remote")?;
        let config = tempfile::tempdir().expect("config dir");
        let (rpc_port, peer_port) = (free_port(), free_port());
        let mut command = Command::new(daemon);
        let debug_log = debug.then(|| config.path().join("debug.log"));
        let stderr = match &debug_log {
            Some(path) => {
                command.env("TR_DEBUG_FD", "2");
                Stdio::from(std::fs::File::create(path).expect("create the debug log"))
            }
            None => Stdio::null(),
        };
        let child = command
            .args([
                "-f",
                "-T",
                "--no-dht",
                "--no-lpd",
                "--no-portmap",
                if utp { "--utp" } else { "--no-utp" },
                "-ep",
            ])
            .arg("-g")
            .arg(config.path())
            .args(["-p", &rpc_port.to_string(), "-P", &peer_port.to_string()])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start transmission-daemon");
        let process = Killed(child);
        wait_for_tcp(rpc_port, Duration::from_secs(20), "transmission-daemon RPC");
        Some(Transmission {
            rpc_port,
            peer_port,
            remote,
            debug_log,
            _config: config,
            _process: process,
        })
    }

    /// The debug log so far (started with [`Transmission::start_with_debug_log`]).
    pub fn debug_log(&self) -> String {
        let path = (self.debug_log.as_ref())
            .expect("Transmission was started without its debug log (start_with_debug_log)");
        let bytes = std::fs::read(path).expect("read Transmission's debug log");
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Runs `transmission-remote PORT ARGS...` and returns its stdout.
    pub fn remote(&self, args: &[&str]) -> String {
        let mut command = Command::new(&self.remote);
        command.arg(self.rpc_port.to_string()).args(args);
        run_ok(&mut command, Duration::from_secs(30))
    }

    /// Adds a torrent whose data is (or will be) in `dir`.
    pub fn add(&self, torrent: &Path, dir: &Path) {
        self.remote(&[
            "-a",
            &torrent.display().to_string(),
            "-w",
            &dir.display().to_string(),
        ]);
    }

    /// Waits until torrent 1's tracker has answered an announce (opentracker lists only peers
    /// that announced before the one asking).
    pub fn wait_until_announced(&self, deadline: Duration) {
        let until = Instant::now() + deadline;
        loop {
            let trackers = self.remote(&["-t", "1", "-it"]);
            if trackers.contains("Got a list of") {
                return;
            }
            assert!(
                Instant::now() < until,
                "Transmission never announced:\n{trackers}"
            );
            std::thread::sleep(Duration::from_millis(250)); // poll interval while waiting for the event
        }
    }

    /// Waits until torrent 1 reports `Percent Done: 100%` (after its hash check, when seeding).
    pub fn wait_until_complete(&self, deadline: Duration) {
        let until = Instant::now() + deadline;
        loop {
            let info = self.remote(&["-t", "1", "-i"]);
            if info.lines().any(|l| l.trim() == "Percent Done: 100%") {
                return;
            }
            assert!(
                Instant::now() < until,
                "Transmission did not complete within {deadline:?}:\n{info}"
            );
            std::thread::sleep(Duration::from_millis(250)); // poll interval while waiting for the event
        }
    }
}
