//! Shared helpers for the integration tests: finding the `peerwire` binary, the third-party
//! fixtures and the real peer programs, and running processes with a deadline.
//!
//! Interop tests need real software (mktorrent, transmission, libtorrent, opentracker, aria2c;
//! the aria2c driver is in `aria2.rs`). When a program is missing the test *skips loudly*, so
//! `cargo test` passes on a fresh machine; with `PEERWIRE_INTEROP=require` (set by `.ci/run`)
//! a missing program fails the test instead.
#![allow(dead_code)] // each test binary uses a different subset of these helpers

pub mod aria2;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Deterministic pseudo-random bytes (xorshift), fast enough for tens of MiB.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Each of `names` under `actual` holds the same bytes as under `expected` (`who` says which
/// client wrote `actual`, for the message).
pub fn assert_same_files<'a>(
    expected: &Path,
    actual: &Path,
    names: impl IntoIterator<Item = &'a str>,
    who: &str,
) {
    for name in names {
        let (a, b) = (
            std::fs::read(expected.join(name)).unwrap(),
            std::fs::read(actual.join(name)).unwrap_or_default(),
        );
        assert!(
            a == b,
            "{who}: {name} differs ({} vs {} bytes)",
            a.len(),
            b.len()
        );
    }
}

/// True when `PEERWIRE_INTEROP=require`: every skip becomes a failure.
pub fn interop_required() -> bool {
    std::env::var("PEERWIRE_INTEROP").is_ok_and(|v| v == "require")
}

/// Skips the calling test loudly, or fails it when interop is required.
/// Returns `None` so callers can write `let Some(x) = ... else { return };`.
pub fn skip<T>(what: &str) -> Option<T> {
    if interop_required() {
        panic!("PEERWIRE_INTEROP=require but {what}");
    }
    // Written to the stderr handle, not with `eprintln!`, which the test harness captures
    // (and hides) for tests that pass: a skip must be seen.
    use std::io::Write;
    let banner = format!(
        "\n*** SKIPPED: {what} (set PEERWIRE_INTEROP=require to make this a failure) ***\n"
    );
    let _ = std::io::stderr().write_all(banner.as_bytes());
    None
}

/// Finds `program` on PATH (or at an absolute path), or skips.
pub fn need_program(program: &str) -> Option<PathBuf> {
    if Path::new(program).is_absolute() {
        return if Path::new(program).exists() {
            Some(PathBuf::from(program))
        } else {
            skip(&format!("{program} is not installed"))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    skip(&format!(
        "`{program}` is not installed (Debian package needed, see .ci/run)"
    ))
}

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

/// The fixtures directory: `$PEERWIRE_FIXTURES`, else the one kept next to the repository.
pub fn fixtures_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PEERWIRE_FIXTURES") {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Some(dir)
        } else {
            skip(&format!(
                "PEERWIRE_FIXTURES={} is not a directory",
                dir.display()
            ))
        };
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if beside.is_dir() {
        Some(beside)
    } else {
        skip("no fixtures: set PEERWIRE_FIXTURES to the fixtures directory")
    }
}

/// A `Command` for the `peerwire` binary built by cargo for this test run.
pub fn peerwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_peerwire"))
}

/// Runs `cmd` to completion, killing it (by PID) if it outlives `deadline`.
/// Panics with the command line if the deadline passes: a hang is a test failure.
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> Output {
    let description = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    wait_with_deadline(child, deadline)
}

/// Waits for a child started elsewhere, killing it (by PID) at the deadline.
pub fn wait_with_deadline(child: std::process::Child, deadline: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(result) => result.expect("waiting for the child"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("PID {pid} did not finish within {deadline:?}; killed");
        }
    }
}

/// Runs `cmd` with a deadline and returns its stdout, panicking with stderr if it failed.
pub fn run_ok(cmd: &mut Command, deadline: Duration) -> String {
    let out = run_with_deadline(cmd, deadline);
    if !out.status.success() {
        panic!(
            "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// A port below 32768 (Linux gives ports from 32768 up to outgoing connections) that is free for
/// both TCP and UDP right now, and never handed out before in this test binary: tests run in
/// parallel, and a port chosen by one but not yet bound by its program (a daemon still starting)
/// looks free to another.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..200 {
        let port = 20_000 + fastrand::u16(..12_000);
        if handed_out.contains(&port) {
            continue;
        }
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free port found below 32768");
}

/// Waits until something accepts TCP connections on `port`, or panics at the deadline.
pub fn wait_for_tcp(port: u16, deadline: Duration, what: &str) {
    let until = std::time::Instant::now() + deadline;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            std::time::Instant::now() < until,
            "{what} did not start listening on {port} within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
}

/// Waits until a UDP tracker on `port` answers a BEP 15 connect request, or panics at the
/// deadline. (A tracker may open its TCP port before its UDP socket.)
pub fn wait_for_udp_tracker(port: u16, deadline: Duration, what: &str) {
    use peerwire::tracker::udp_packet::{Request, Response};
    let until = std::time::Instant::now() + deadline;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    socket
        .connect(("127.0.0.1", port))
        .expect("connect the UDP socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a timeout");
    let mut buf = [0u8; 64];
    loop {
        let _ = socket.send(&Request::Connect { transaction_id: 1 }.encode());
        if let Ok(n) = socket.recv(&mut buf)
            && matches!(
                Response::decode(&buf[..n], false),
                Ok(Response::Connect {
                    transaction_id: 1,
                    ..
                })
            )
        {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{what} did not answer on UDP port {port} within {deadline:?}"
        );
        // A refused send (nothing bound yet) returns at once: pause before the next try.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process that is killed (by PID) when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < until {
        match Message::read_from(stream).expect("a message from peerwire") {
            Message::Extended { id: 0, payload } => return payload,
            _ => continue, // its bitfield
        }
    }
    panic!("no extended handshake within 10 s");
}

/// opentracker (Debian package `opentracker`) on a free port, HTTP and UDP, whitelisting the
/// given info hashes (the Debian build runs in whitelist mode). Stopped when dropped.
pub struct OpenTracker {
    pub port: u16,
    _dir: tempfile::TempDir,
    _process: Killed,
}

impl OpenTracker {
    pub fn start(info_hashes: &[String]) -> Option<OpenTracker> {
        let program = need_program("opentracker")?;
        let dir = tempfile::tempdir().expect("temp dir");
        // opentracker drops to `nobody` and chroots into its rootdir: it must be readable.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::write(dir.path().join("wl.txt"), info_hashes.join("\n") + "\n")
            .expect("whitelist");
        let config = dir.path().join("opentracker.conf");
        std::fs::write(
            &config,
            format!(
                "tracker.rootdir {}\naccess.whitelist /wl.txt\n",
                dir.path().display()
            ),
        )
        .expect("config");
        for _attempt in 0..5 {
            let port = free_port();
            let (p, conf) = (port.to_string(), &config);
            let child = Command::new(&program)
                .args(["-i", "127.0.0.1", "-p", &p, "-P", &p, "-u", "nobody", "-f"])
                .arg(conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start opentracker");
            let mut process = Killed(child);
            wait_for_tcp(port, Duration::from_secs(10), "opentracker");
            // Another test may have taken the port between our check and the bind: then ours
            // has exited, and what answers on the port is somebody else's tracker.
            if process.0.try_wait().expect("opentracker status").is_some() {
                continue;
            }
            wait_for_udp_tracker(port, Duration::from_secs(10), "opentracker");
            let tracker = OpenTracker {
                port,
                _dir: dir,
                _process: process,
            };
            if let Some(first) = info_hashes.first() {
                tracker.wait_for_whitelist(first, Duration::from_secs(10));
            }
            return Some(tracker);
        }
        panic!("opentracker could not get a free port in 5 tries");
    }

    /// opentracker reads its whitelist in the background after opening its ports: wait until
    /// it accepts `info_hash`. The probe announces a seeder on port 1, then removes it again
    /// with `stopped` (opentracker may not check the whitelist for `stopped` alone).
    fn wait_for_whitelist(&self, info_hash_hex: &str, deadline: Duration) {
        use peerwire::tracker::{AnnounceRequest, Event, Tracker, TrackerConfig};
        let bytes: Vec<u8> = (0..20)
            .map(|i| u8::from_str_radix(&info_hash_hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        let request = AnnounceRequest {
            info_hash: peerwire::metainfo::InfoHash(bytes.try_into().expect("20 bytes")),
            peer_id: peerwire::peer_id::PeerId::generate(),
            port: 1,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: Event::Started,
            numwant: Some(0),
            key: 0,
        };
        let until = std::time::Instant::now() + deadline;
        let mut tracker =
            Tracker::new(&self.http_url(), TrackerConfig::default()).expect("http tracker");
        while let Err(e) = tracker.announce(&request) {
            assert!(
                std::time::Instant::now() < until,
                "opentracker never accepted {info_hash_hex}: {e}"
            );
            std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
        }
        let stopped = AnnounceRequest {
            event: Event::Stopped,
            ..request
        };
        // opentracker under load may reset a connection now and then: retry until the deadline.
        while let Err(e) = tracker.announce(&stopped) {
            assert!(
                std::time::Instant::now() < until,
                "opentracker never took the probe's stopped: {e}"
            );
            std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
        }
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    pub fn udp_url(&self) -> String {
        format!("udp://127.0.0.1:{}/announce", self.port)
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
        let until = std::time::Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
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
        let until = std::time::Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
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

    pub fn send(&mut self, command: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{command}").expect("libtorrent peer is running");
    }
}

/// `peerwire create CONTENT -o TORRENT EXTRA...`, failing the test if it fails.
pub fn create_torrent(content: &Path, torrent: &Path, extra: &[&str]) {
    let mut command = peerwire();
    command
        .arg("create")
        .arg(content)
        .arg("-o")
        .arg(torrent)
        .args(extra);
    run_ok(&mut command, Duration::from_secs(60));
}

/// A torrent of `content` (pieces of `piece_length`) at `torrent`, announcing to a fresh
/// opentracker that knows it. opentracker is told the info hashes it accepts when it starts, so a
/// tracker-less torrent is made first to learn the hash (the announce URL is outside `info` and
/// does not change it). Skips when opentracker is missing.
pub fn opentracker_torrent(
    content: &Path,
    torrent: &Path,
    piece_length: u32,
) -> Option<(OpenTracker, peerwire::metainfo::InfoHash)> {
    let plain = torrent.with_extension("plain.torrent");
    let piece_length = piece_length.to_string();
    create_torrent(content, &plain, &["--piece-length", &piece_length]);
    let info_hash = peerwire::metainfo::Metainfo::from_file(&plain)
        .expect("the torrent we made loads")
        .info_hash;
    let tracker = OpenTracker::start(&[info_hash.to_hex()])?;
    let url = tracker.http_url();
    create_torrent(
        content,
        torrent,
        &["--piece-length", &piece_length, "-t", &url],
    );
    Some((tracker, info_hash))
}

/// Every byte of `text` outside the unreserved set as `%XX` (a URL inside a magnet link).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// peerwire's built-in tracker on 127.0.0.1, HTTP and UDP on free ports.
pub fn local_tracker(interval: Duration) -> peerwire::tracker_server::RunningTracker {
    use peerwire::tracker_server::{RunningTracker, ServerConfig};
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    RunningTracker::start(ServerConfig {
        http: Some(any),
        udp: Some(any),
        interval,
    })
    .expect("the built-in tracker starts")
}

/// A Transmission daemon (Debian `transmission-daemon`) with its own config dir, RPC port and
/// peer port, driven by `transmission-remote`. Killed when dropped.
pub struct Transmission {
    pub rpc_port: u16,
    pub peer_port: u16,
    remote: PathBuf,
    _config: tempfile::TempDir,
    _process: Killed,
}

impl Transmission {
    pub fn start() -> Option<Transmission> {
        let daemon = need_program("transmission-daemon")?;
        let remote = need_program("transmission-remote")?;
        let config = tempfile::tempdir().expect("config dir");
        let (rpc_port, peer_port) = (free_port(), free_port());
        let child = Command::new(daemon)
            .args([
                "-f",
                "-T",
                "--no-dht",
                "--no-lpd",
                "--no-portmap",
                "--no-utp",
                "-ep",
            ])
            .arg("-g")
            .arg(config.path())
            .args(["-p", &rpc_port.to_string(), "-P", &peer_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start transmission-daemon");
        let process = Killed(child);
        wait_for_tcp(rpc_port, Duration::from_secs(20), "transmission-daemon RPC");
        Some(Transmission {
            rpc_port,
            peer_port,
            remote,
            _config: config,
            _process: process,
        })
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
        let until = std::time::Instant::now() + deadline;
        loop {
            let trackers = self.remote(&["-t", "1", "-it"]);
            if trackers.contains("Got a list of") {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "Transmission never announced:\n{trackers}"
            );
            std::thread::sleep(Duration::from_millis(250)); // poll interval while waiting for the event
        }
    }

    /// Waits until torrent 1 reports `Percent Done: 100%` (after its hash check, when seeding).
    pub fn wait_until_complete(&self, deadline: Duration) {
        let until = std::time::Instant::now() + deadline;
        loop {
            let info = self.remote(&["-t", "1", "-i"]);
            if info.lines().any(|l| l.trim() == "Percent Done: 100%") {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "Transmission did not complete within {deadline:?}:\n{info}"
            );
            std::thread::sleep(Duration::from_millis(250)); // poll interval while waiting for the event
        }
    }
}

/// How a [`ScriptedPeer`] behaves.
#[derive(Clone, Copy, Debug)]
pub enum Script {
    Honest,
    /// Every block it sends is corrupted.
    CorruptEveryBlock,
    /// Hangs up after serving this many blocks.
    DisconnectAfter(usize),
    /// Serves this many blocks in all, then hangs up and closes every new connection at
    /// once: it has left the swarm.
    GoneAfter(usize),
    /// Chokes us after this many blocks and never serves again.
    ChokeAfter(usize),
    /// Has (and serves) only the first this-many pieces.
    OnlyFirstPieces(usize),
    /// Answers the handshake with another torrent's info hash.
    WrongInfoHash,
    /// Answers with a protocol string that is not `BitTorrent protocol`.
    BadPstr,
    /// After its bitfield, sends a length prefix of 4 GiB.
    HugeLength,
    /// Sends a message with an unknown id first, then behaves.
    UnknownMessage,
    /// Sends a garbled `ut_pex` message (an `added` list of 3 bytes) first, then behaves.
    GarbledPex,
    /// Announces only the first half of its pieces in its bitfield, then, after serving its
    /// first block, a whole bitfield in the middle of the connection (as aria2 does instead
    /// of a batch of `have`s).
    LateBitfield,
    /// Sends a bitfield one byte too long.
    LongBitfield,
    /// Sends a bitfield with the spare bits after the last piece set.
    SpareBits,
    /// Sends `have` for a piece that does not exist.
    HaveOutOfRange,
    /// Floods blocks that were never requested.
    UnsolicitedPieces,
    /// Answers every request one byte per second.
    Trickle,
    /// Has nothing, wants nothing, and sends a keep-alive every 50 ms forever.
    KeepAlivesForever,
    /// Claims every piece, unchokes, and never answers a request.
    Hoarder,
    /// Serves metadata (BEP 9) that does not hash to the info hash.
    MetadataWrongHash,
    /// Announces 1 TiB of metadata in its extended handshake.
    MetadataHuge,
    /// Answers metadata requests in reverse order (allowed: it must still work).
    MetadataReversed,
    /// Speaks the fast extension (BEP 6): `HaveAll` instead of a bitfield; after serving
    /// this many blocks it chokes, rejects every request still coming in, and unchokes once
    /// the requests stop (200 ms of quiet).
    FastChokeAndReject(usize),
    /// Honest, but serves at most one block per 10 ms (a download from it alone takes a
    /// while, so a bad peer beside it is surely read before the end).
    Paced,
}

/// A seeder of our own, written with peerwire's wire module, that follows a [`Script`].
/// It has the pieces of `stream` (the torrent's whole byte stream).
pub struct ScriptedPeer {
    pub addr: std::net::SocketAddr,
    pub blocks_served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// What every connection of a scripted peer shares.
#[derive(Clone)]
struct ScriptedTorrent {
    info_hash: peerwire::metainfo::InfoHash,
    stream: std::sync::Arc<Vec<u8>>,
    piece_length: u64,
    script: Script,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The info dictionary, served by `ut_metadata` when given (the peer then speaks BEP 10).
    metadata: Option<std::sync::Arc<Vec<u8>>>,
}

impl ScriptedTorrent {
    /// A `GoneAfter` peer that has served its blocks.
    fn has_left(&self) -> bool {
        let served = self.served.load(std::sync::atomic::Ordering::Relaxed);
        matches!(self.script, Script::GoneAfter(limit) if served >= limit)
    }
}

/// The scripted peer's own id for `ut_metadata` (unlike peerwire's 3, as real clients differ).
const SCRIPTED_UT_METADATA: u8 = 2;

impl ScriptedPeer {
    pub fn start(
        info_hash: peerwire::metainfo::InfoHash,
        stream: std::sync::Arc<Vec<u8>>,
        piece_length: u64,
        script: Script,
    ) -> ScriptedPeer {
        ScriptedPeer::start_with_metadata(info_hash, stream, piece_length, script, None)
    }

    /// A scripted peer that also speaks the extension protocol and serves `metadata`.
    pub fn start_with_metadata(
        info_hash: peerwire::metainfo::InfoHash,
        stream: std::sync::Arc<Vec<u8>>,
        piece_length: u64,
        script: Script,
        metadata: Option<std::sync::Arc<Vec<u8>>>,
    ) -> ScriptedPeer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let blocks_served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let torrent = ScriptedTorrent {
            info_hash,
            stream,
            piece_length,
            script,
            served: std::sync::Arc::clone(&blocks_served),
            metadata,
        };
        std::thread::spawn(move || {
            for connection in listener.incoming().map_while(Result::ok) {
                let torrent = torrent.clone();
                std::thread::spawn(move || {
                    let _ = serve_scripted(connection, &torrent);
                });
            }
        });
        ScriptedPeer {
            addr,
            blocks_served,
        }
    }
}

fn serve_scripted(
    mut socket: std::net::TcpStream,
    t: &ScriptedTorrent,
) -> Result<(), peerwire::wire::WireError> {
    use peerwire::wire::{Handshake, Message};
    socket.set_read_timeout(Some(Duration::from_secs(60)))?;
    if t.has_left() {
        return Ok(());
    }
    if Handshake::read_from(&mut socket)?.info_hash != t.info_hash {
        return Ok(());
    }
    send_scripted_handshake(&mut socket, t)?;
    let pieces = (t.stream.len() as u64).div_ceil(t.piece_length) as usize;
    send_scripted_bitfield(&mut socket, t, pieces)?;
    send_scripted_extended_handshake(&mut socket, t)?;
    misbehave_after_bitfield(&mut socket, t, pieces)?;
    let mut requests = 0;
    let mut metadata = ScriptedMetadata::default();
    loop {
        if let Script::FastChokeAndReject(limit) = t.script
            && requests == limit
        {
            choke_and_reject(&mut socket)?;
            requests += 1;
        }
        match Message::read_from(&mut socket)? {
            Message::Extended { id, payload } => metadata.receive(&mut socket, t, id, &payload)?,
            Message::Interested => Message::Unchoke.write_to(&mut socket)?,
            Message::Request {
                index,
                begin,
                length,
            } => {
                requests += 1;
                answer_request(&mut socket, t, requests, (index, begin, length))?;
            }
            _ => {}
        }
    }
}

fn send_scripted_handshake(
    socket: &mut std::net::TcpStream,
    t: &ScriptedTorrent,
) -> std::io::Result<()> {
    use std::io::Write;
    let info_hash = match t.script {
        Script::WrongInfoHash => peerwire::metainfo::InfoHash([7; 20]),
        _ => t.info_hash,
    };
    // One id per scripted peer (its port): peerwire refuses a second connection to a peer id.
    let port = socket.local_addr()?.port();
    let id = format!("-SP0001-{port:012}");
    let peer_id = peerwire::peer_id::PeerId(id.as_bytes().try_into().expect("20 bytes"));
    let mut reserved = [0; 8];
    if t.metadata.is_some() {
        reserved = peerwire::wire::handshake::RESERVED_EXTENSIONS;
    }
    if matches!(t.script, Script::FastChokeAndReject(_)) {
        reserved[7] |= 0x04; // the fast extension (BEP 6)
    }
    let mut bytes = peerwire::wire::Handshake {
        reserved,
        info_hash,
        peer_id,
    }
    .to_bytes();
    if matches!(t.script, Script::BadPstr) {
        bytes[19] = b'X';
    }
    socket.write_all(&bytes)
}

fn send_scripted_bitfield(
    socket: &mut std::net::TcpStream,
    t: &ScriptedTorrent,
    pieces: usize,
) -> Result<(), peerwire::wire::WireError> {
    let mut have = peerwire::wire::Bitfield::new(pieces);
    let has = match t.script {
        Script::OnlyFirstPieces(n) => n.min(pieces),
        Script::KeepAlivesForever => 0,
        Script::LateBitfield => pieces.div_ceil(2),
        _ => pieces,
    };
    (0..has).for_each(|i| have.set(i));
    if matches!(t.script, Script::FastChokeAndReject(_)) {
        return peerwire::wire::Message::HaveAll.write_to(socket);
    }
    let mut bits = have.as_bytes().to_vec();
    match t.script {
        Script::LongBitfield => bits.push(0),
        Script::SpareBits => *bits.last_mut().expect("some pieces") |= 1,
        _ => {}
    }
    peerwire::wire::Message::Bitfield(bits).write_to(socket)
}

/// The misbehaviours that happen once, right after the bitfield.
fn misbehave_after_bitfield(
    socket: &mut std::net::TcpStream,
    t: &ScriptedTorrent,
    pieces: usize,
) -> Result<(), peerwire::wire::WireError> {
    use peerwire::wire::Message;
    use std::io::Write;
    match t.script {
        Script::KeepAlivesForever => loop {
            socket.write_all(&[0, 0, 0, 0])?;
            std::thread::sleep(Duration::from_millis(50)); // the misbehaviour itself
        },
        Script::HugeLength => socket.write_all(&[0xff, 0xff, 0xff, 0xff, 7])?,
        Script::UnknownMessage => socket.write_all(&[0, 0, 0, 4, 99, 1, 2, 3])?,
        Script::GarbledPex => Message::Extended {
            id: 1, // peerwire's id for ut_pex (its extended handshake says so)
            payload: b"d5:added3:abce".to_vec(),
        }
        .write_to(socket)?,
        Script::HaveOutOfRange => Message::Have {
            index: (pieces + 10_000) as u32,
        }
        .write_to(socket)?,
        Script::UnsolicitedPieces => {
            Message::Unchoke.write_to(socket)?;
            let block = t.stream[..16_384].to_vec();
            for _ in 0..100 {
                Message::Piece {
                    index: 0,
                    begin: 0,
                    block: block.clone(),
                }
                .write_to(socket)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// BEP 6 from the choking side: `choke`, then a `reject_request` for every request that
/// arrives, until 200 ms pass without one (all that were in flight are answered); then
/// `unchoke`.
fn choke_and_reject(socket: &mut std::net::TcpStream) -> Result<(), peerwire::wire::WireError> {
    use peerwire::wire::Message;
    Message::Choke.write_to(socket)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    loop {
        match Message::read_from(socket) {
            Ok(Message::Request {
                index,
                begin,
                length,
            }) => Message::RejectRequest {
                index,
                begin,
                length,
            }
            .write_to(socket)?,
            Ok(_) => {}
            Err(peerwire::wire::WireError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(e),
        }
    }
    socket.set_read_timeout(Some(Duration::from_secs(60)))?;
    Message::Unchoke.write_to(socket)
}

/// Serves (or mis-serves) the `n`-th request of this connection.
fn answer_request(
    socket: &mut std::net::TcpStream,
    t: &ScriptedTorrent,
    n: usize,
    (index, begin, length): (u32, u32, u32),
) -> Result<(), peerwire::wire::WireError> {
    use peerwire::wire::Message;
    match t.script {
        Script::Hoarder => return Ok(()), // claims it all, serves nothing
        Script::DisconnectAfter(limit) if n > limit => {
            return Err(peerwire::wire::WireError::BadProtocol(
                "scripted hang-up".into(),
            ));
        }
        Script::GoneAfter(_) if t.has_left() => {
            return Err(peerwire::wire::WireError::BadProtocol(
                "scripted departure".into(),
            ));
        }
        Script::ChokeAfter(limit) if n == limit + 1 => return Message::Choke.write_to(socket),
        Script::ChokeAfter(limit) if n > limit => return Ok(()),
        Script::Paced => std::thread::sleep(Duration::from_millis(10)), // the pace itself
        Script::Trickle => {
            for byte in (9 + length).to_be_bytes() {
                std::io::Write::write_all(socket, &[byte])?;
                std::thread::sleep(Duration::from_secs(1)); // the misbehaviour itself
            }
            return Ok(());
        }
        _ => {}
    }
    let start = (u64::from(index) * t.piece_length + u64::from(begin)) as usize;
    let mut block = t.stream[start..start + length as usize].to_vec();
    if matches!(t.script, Script::CorruptEveryBlock) {
        block.iter_mut().for_each(|b| *b ^= 0x5a);
    }
    Message::Piece {
        index,
        begin,
        block,
    }
    .write_to(socket)?;
    t.served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if matches!(t.script, Script::LateBitfield) && n == 1 {
        let pieces = (t.stream.len() as u64).div_ceil(t.piece_length) as usize;
        let all = peerwire::wire::Bitfield::full(pieces);
        Message::Bitfield(all.as_bytes().to_vec()).write_to(socket)?;
    }
    Ok(())
}

/// The extended handshake of a scripted peer that has metadata.
fn send_scripted_extended_handshake(
    socket: &mut std::net::TcpStream,
    t: &ScriptedTorrent,
) -> Result<(), peerwire::wire::WireError> {
    use peerwire::wire::extension::ExtendedHandshake;
    let Some(metadata) = &t.metadata else {
        return Ok(());
    };
    let size = match t.script {
        Script::MetadataHuge => 1 << 40,
        _ => metadata.len() as u64,
    };
    let ours = ExtendedHandshake {
        extensions: vec![("ut_metadata".into(), SCRIPTED_UT_METADATA)],
        metadata_size: Some(size),
        ..ExtendedHandshake::default()
    };
    let payload = ours.to_payload();
    peerwire::wire::Message::Extended { id: 0, payload }.write_to(socket)
}

/// A scripted peer's side of `ut_metadata`: peerwire's id, and requests held back (reversed).
#[derive(Default)]
struct ScriptedMetadata {
    their_id: Option<u8>,
    held: Vec<u32>,
}

impl ScriptedMetadata {
    fn receive(
        &mut self,
        socket: &mut std::net::TcpStream,
        t: &ScriptedTorrent,
        id: u8,
        payload: &[u8],
    ) -> Result<(), peerwire::wire::WireError> {
        use peerwire::wire::extension::{ExtendedHandshake, MetadataMessage, metadata_pieces};
        let Some(metadata) = &t.metadata else {
            return Ok(());
        };
        if id == 0 {
            self.their_id = ExtendedHandshake::from_payload(payload)
                .ok()
                .and_then(|h| h.id_of("ut_metadata"));
            return Ok(());
        }
        let Ok(MetadataMessage::Request { piece }) = MetadataMessage::from_payload(payload) else {
            return Ok(());
        };
        if !matches!(t.script, Script::MetadataReversed) {
            return self.send_piece(socket, t, metadata, piece);
        }
        self.held.push(piece);
        if self.held.len() as u32 == metadata_pieces(metadata.len() as u64) {
            for piece in std::mem::take(&mut self.held).into_iter().rev() {
                self.send_piece(socket, t, metadata, piece)?;
            }
        }
        Ok(())
    }

    fn send_piece(
        &self,
        socket: &mut std::net::TcpStream,
        t: &ScriptedTorrent,
        metadata: &[u8],
        piece: u32,
    ) -> Result<(), peerwire::wire::WireError> {
        use peerwire::wire::extension::{METADATA_PIECE_LEN, MetadataMessage, metadata_piece_len};
        let (Some(their_id), Some(len)) = (
            self.their_id,
            metadata_piece_len(metadata.len() as u64, piece),
        ) else {
            return Ok(());
        };
        let start = piece as usize * METADATA_PIECE_LEN;
        let mut data = metadata[start..start + len].to_vec();
        if matches!(t.script, Script::MetadataWrongHash) {
            data[0] ^= 0xff;
        }
        let message = MetadataMessage::Data {
            piece,
            total_size: metadata.len() as u64,
            data,
        };
        let payload = message.to_payload();
        peerwire::wire::Message::Extended {
            id: their_id,
            payload,
        }
        .write_to(socket)
    }
}

/// The lines of `stream` (a child's stdout or stderr), read by a thread as they come, so a
/// test can wait for one with a deadline and the child never blocks on a full pipe.
pub fn lines_of(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// A running program whose stderr is read line by line as it comes (peerwire's `--trace` and
/// log go there), so a test can wait for a line, then stop it and have every line.
pub struct StderrLines {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line read so far, in order.
    pub seen: Vec<String>,
}

impl StderrLines {
    /// Starts `cmd` with stdout discarded and stderr read by a thread.
    pub fn spawn(cmd: &mut Command) -> StderrLines {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let lines = lines_of(child.stderr.take().expect("piped stderr"));
        let seen = Vec::new();
        StderrLines { child, lines, seen }
    }

    /// Waits for a line containing `needle` (lines before it are kept in `seen`).
    pub fn wait_for(&mut self, needle: &str, deadline: Duration) -> String {
        let until = std::time::Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "PID {}: no line with {needle:?} within {deadline:?}; stderr so far:\n{}",
                    self.child.id(),
                    self.seen.join("\n")
                );
            };
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Stops the program with `signal` (by PID) and reads stderr to its end, within `deadline`.
    pub fn stop(mut self, signal: &str, deadline: Duration) -> Vec<String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args([signal, &pid]).status();
        let until = std::time::Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(_) => panic!("PID {pid} did not end within {deadline:?} of kill {signal}"),
            }
        }
        let _ = self.child.wait();
        std::mem::take(&mut self.seen)
    }
}

impl Drop for StderrLines {
    fn drop(&mut self) {
        let _ = self.child.kill(); // by PID; harmless if it has already ended
        let _ = self.child.wait();
    }
}

/// The `--trace` lines among `stderr`, read back. Log lines and the summary are skipped; a line
/// that starts like a trace line but cannot be read fails the test (the format changed).
pub fn trace_lines(stderr: &[String]) -> Vec<peerwire::trace::TraceLine> {
    use peerwire::trace::{TraceError, parse_trace_line};
    let mut traced = Vec::new();
    for line in stderr {
        match parse_trace_line(line) {
            Ok(read) => traced.push(read),
            Err(TraceError::NotATraceLine(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    traced
}

/// A single-file torrent of `size` pseudo-random bytes in `dir`: (the file, the .torrent).
pub fn small_torrent(dir: &Path, size: usize, piece_length: u32) -> (PathBuf, PathBuf) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = seed_dir.join("lesson.bin");
    std::fs::write(&content, pseudo_random(size, 7)).unwrap();
    let torrent = dir.join("lesson.torrent");
    let piece_length = piece_length.to_string();
    create_torrent(&content, &torrent, &["--piece-length", &piece_length]);
    (content, torrent)
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
    let peer = format!("127.0.0.1:{seeder_port}");
    let port = free_port().to_string();
    let mut command = peerwire();
    command.arg("download").arg("-o").arg(out).arg(torrent);
    command.args(["--peer", &peer, "--port", &port, "--trace"]);
    let output = run_with_deadline(&mut command, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "download failed:\n{stderr}");
    stderr.lines().map(str::to_string).collect()
}
