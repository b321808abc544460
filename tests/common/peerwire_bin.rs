//! The `peerwire` binary under test: a seeder listening on a free port ([`start_seed`],
//! [`traced_seeder`]), a download from given peers with a deadline that checks the bytes
//! ([`download_from`]), and a probe of a running peerwire's BEP 10 extension handshake.

use super::{
    Killed, StderrLines, assert_bytes, free_port, run_with_deadline, trace_lines, wait_for_tcp,
};
use peerwire::trace::TraceLine;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `Command` for the `peerwire` binary built by cargo for this test run. Its DHT knows no
/// public routers (`PEERWIRE_DHT_ROUTERS` empty): no test reaches outside the machine, and a
/// test's DHT nodes are the ones it names with `--dht-bootstrap`. Nor does it multicast
/// local peer discovery announces on the machine's network (`PEERWIRE_LSD=off`): tests that
/// share a torrent would find each other's peers; `tests/lsd_network.rs` turns it on, in
/// network namespaces of its own.
pub fn peerwire() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_peerwire"));
    command.env("PEERWIRE_DHT_ROUTERS", "");
    command.env("PEERWIRE_LSD", "off");
    command
}

/// `peerwire seed TORRENT DATA --port P EXTRA...` on a free port P, run by `command`
/// (`peerwire()` with whatever environment or stderr the test wants, and no arguments yet);
/// returns once the seed listens. Killed when the `Killed` is dropped.
pub fn start_seed(
    mut command: Command,
    torrent: &Path,
    data: &Path,
    extra: &[&str],
) -> (Killed, u16) {
    let port = free_port();
    let child = command
        .arg("seed")
        .arg(torrent)
        .arg(data)
        .args(["--port", &port.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start peerwire seed");
    let seed = Killed(child);
    wait_for_tcp(port, Duration::from_secs(30), "peerwire seed");
    (seed, port)
}

/// `peerwire -v seed --trace` of `content` on `port` (no tracker), listening when returned.
/// `-v` logs each peer's `disconnected`, which tests wait for.
pub fn traced_seeder(torrent: &Path, content: &Path, port: u16) -> StderrLines {
    let mut command = peerwire();
    command
        .args(["-v", "seed"])
        .arg(torrent)
        .arg(content)
        .args(["--trace", "--port", &port.to_string()]);
    let seeder = StderrLines::spawn(&mut command);
    wait_for_tcp(port, Duration::from_secs(30), "peerwire seed");
    seeder
}

/// `peerwire download --trace` of `torrent` into `out` from the peer on `seeder_port` only;
/// returns its stderr lines once the download is complete.
pub fn traced_download(torrent: &Path, out: &Path, seeder_port: u16) -> Vec<String> {
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder_port));
    let downloaded = download_from(&[peer], torrent, out)
        .args(&["--trace"])
        .run();
    downloaded.assert_success();
    downloaded.stderr.lines().map(str::to_string).collect()
}

/// `peerwire download -o OUT TORRENT --peer P...` from `peers` only (no tracker), listening on
/// any port (`--port 0`), giving up after 60 s without data, and killed if it runs 120 s.
/// Change it with [`DownloadFrom::args`], [`DownloadFrom::env`] and
/// [`DownloadFrom::give_up_after`]; run it with [`DownloadFrom::run`], or with
/// [`DownloadFrom::expect_bytes`] to check what it wrote too.
pub fn download_from(peers: &[SocketAddr], torrent: &Path, out: &Path) -> DownloadFrom {
    let mut command = peerwire();
    command.arg("download").arg("-o").arg(out).arg(torrent);
    for peer in peers {
        command.args(["--peer", &peer.to_string()]);
    }
    command.args(["--port", "0"]);
    DownloadFrom {
        command,
        out: out.to_path_buf(),
        give_up_after: 60,
    }
}

/// A `peerwire download` ready to run (see [`download_from`]).
pub struct DownloadFrom {
    command: Command,
    out: PathBuf,
    give_up_after: u64,
}

impl DownloadFrom {
    /// More options, e.g. `--trace`.
    pub fn args(mut self, extra: &[&str]) -> DownloadFrom {
        self.command.args(extra);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> DownloadFrom {
        self.command.env(key, value);
        self
    }

    /// `--give-up-after SECONDS` instead of 60; the process is killed after twice as long
    /// (at least 60 s).
    pub fn give_up_after(mut self, seconds: u64) -> DownloadFrom {
        self.give_up_after = seconds;
        self
    }

    /// Runs it to its end, successful or not (a test of a failure checks the exit itself).
    pub fn run(mut self) -> Downloaded {
        let give_up = self.give_up_after.to_string();
        self.command.args(["--give-up-after", &give_up]);
        let deadline = Duration::from_secs((2 * self.give_up_after).max(60));
        let started = Instant::now();
        let output = run_with_deadline(&mut self.command, deadline);
        Downloaded {
            command: format!("{:?}", self.command),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took: started.elapsed(),
        }
    }

    /// Runs it, and fails the test unless it succeeds and the file `-o` names holds
    /// `expected` (for a single-file torrent).
    pub fn expect_bytes(self, expected: &[u8]) -> Downloaded {
        let out = self.out.clone();
        let downloaded = self.run();
        downloaded.assert_success();
        assert_bytes(
            &out,
            expected,
            &format!("the file of {}", downloaded.command),
        );
        downloaded
    }
}

/// A `peerwire download` that has ended.
pub struct Downloaded {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    /// Its log (and `--trace`, when asked for).
    pub stderr: String,
    pub took: Duration,
}

impl Downloaded {
    /// Fails the test, with the command and its log, unless the download succeeded.
    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "{} failed with {} after {:?}:\n{}",
            self.command,
            self.status,
            self.took,
            self.stderr
        );
    }

    /// The wire trace in its log (empty without `--trace`).
    pub fn trace(&self) -> Vec<TraceLine> {
        trace_lines(&self.stderr.lines().collect::<Vec<_>>())
    }
}

/// The client side of a BEP 10 exchange on `stream`, a connection to a peerwire for
/// `info_hash` (whichever side dialled): sends our handshake with the extension bit, reads
/// peerwire's, and returns the payload of the extended handshake that follows it (the
/// bitfield before it is skipped). Panics when there is none within 10 s.
pub fn extended_handshake_payload(
    stream: &mut std::net::TcpStream,
    info_hash: peerwire::metainfo::InfoHash,
) -> Vec<u8> {
    use peerwire::wire::{Handshake, Message, handshake::RESERVED_EXTENSIONS};
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    let ours = Handshake {
        reserved: RESERVED_EXTENSIONS,
        info_hash,
        peer_id: peerwire::peer_id::PeerId::generate(),
    };
    ours.write_to(stream).expect("send our handshake");
    let theirs = Handshake::read_from(stream).expect("peerwire's handshake");
    assert!(
        theirs.supports_extensions(),
        "peerwire did not set the BEP 10 bit"
    );
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        match Message::read_from(stream).expect("a message from peerwire") {
            Message::Extended { id: 0, payload } => return payload,
            _ => continue, // its bitfield
        }
    }
    panic!("no extended handshake within 10 s");
}
