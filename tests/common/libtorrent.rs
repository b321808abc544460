//! libtorrent (the library inside qBittorrent and Deluge) as a real peer: a Python session
//! (`tests/peers/libtorrent_session.py`, run by the Debian `/usr/bin/python3` with
//! `python3-libtorrent`) that seeds or leeches one torrent, driven over its stdin and read
//! from its stdout, one event per line (`ready`, `state seeding`, `finished`,
//! `peer_error ADDR WHY`, ...).

use super::{Killed, free_port, lines_of, need_program, skip};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian python with `import libtorrent` working, or skips.
pub fn need_libtorrent_python() -> Option<PathBuf> {
    let python = need_program("/usr/bin/python3")?;
    let ok = Command::new(&python)
        .args(["-c", "import libtorrent"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        skip("python3-libtorrent is not installed (/usr/bin/python3 -c 'import libtorrent' failed)")
    }
}

/// A libtorrent peer (tests/peers/libtorrent_session.py) with its event lines read on a thread,
/// so a test can wait for one with a deadline. Killed when dropped.
pub struct LibtorrentPeer {
    pub port: u16,
    stdin: std::process::ChildStdin,
    events: std::sync::mpsc::Receiver<String>,
    _process: Killed,
}

impl LibtorrentPeer {
    /// Starts a session on a free port with one torrent saved in (or seeded from) `save`.
    pub fn start(torrent: &Path, save: &Path, seed: bool) -> Option<LibtorrentPeer> {
        LibtorrentPeer::start_with(torrent, save, seed, &[])
    }

    /// The same, with more options for the driver (e.g. `--pex`).
    pub fn start_with(
        torrent: &Path,
        save: &Path,
        seed: bool,
        extra: &[&str],
    ) -> Option<LibtorrentPeer> {
        let mut args = vec![std::ffi::OsString::from("--torrent"), torrent.into()];
        args.extend(extra.iter().map(std::ffi::OsString::from));
        LibtorrentPeer::launch(&args, save, seed)
    }

    /// A leecher that has only a magnet link: it must fetch the metadata from peers.
    pub fn start_magnet(magnet: &str, save: &Path) -> Option<LibtorrentPeer> {
        LibtorrentPeer::launch(&["--magnet".into(), magnet.into()], save, false)
    }

    fn launch(args: &[std::ffi::OsString], save: &Path, seed: bool) -> Option<LibtorrentPeer> {
        let python = need_libtorrent_python()?;
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/libtorrent_session.py");
        let port = free_port();
        let mut command = Command::new(python);
        command
            .arg(script)
            .args(["--port", &port.to_string()])
            .args(args)
            .arg("--save")
            .arg(save);
        if seed {
            command.arg("--seed");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start libtorrent");
        let stdin = child.stdin.take().expect("piped stdin");
        let events = lines_of(child.stdout.take().expect("piped stdout"));
        let peer = LibtorrentPeer {
            port,
            stdin,
            events,
            _process: Killed(child),
        };
        peer.wait_for("ready", Duration::from_secs(20));
        if seed {
            // A seeder accepts connections for the torrent only once the torrent has started.
            peer.wait_for("state seeding", Duration::from_secs(20));
        }
        Some(peer)
    }

    /// Waits for the next event line starting with `prefix` (earlier other lines are skipped).
    pub fn wait_for(&self, prefix: &str, deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(_) => panic!(
                    "libtorrent peer on port {} sent no {prefix:?} within {deadline:?}",
                    self.port
                ),
            }
        }
    }

    /// Waits for the next event line starting with any of `prefixes`, and returns it: for a
    /// test that must tell "finished" from "peer_disconnected" as soon as either happens.
    pub fn wait_for_any(&self, prefixes: &[&str], deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(line) if prefixes.iter().any(|p| line.starts_with(p)) => return line,
                Ok(_) => continue,
                Err(_) => panic!(
                    "libtorrent peer on port {} sent none of {prefixes:?} within {deadline:?}",
                    self.port
                ),
            }
        }
    }

    /// Waits until libtorrent has started the torrent (the driver's `started`). A torrent
    /// starts paused, about half a second after `state seeding`, and until then libtorrent
    /// hangs up on every peer that dials it: a test that wants the first dial to get through
    /// waits for this.
    pub fn wait_until_started(&mut self, deadline: Duration) {
        self.send("started");
        self.wait_for("started", deadline);
    }

    pub fn send(&mut self, command: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{command}").expect("libtorrent peer is running");
    }
}
