//! Local peer discovery (BEP 14, "Local Service Discovery") on a real network: two network
//! namespaces joined by a veth pair, made by the test (`ip netns`, `ip link`; root only), with
//! addresses in 10.77.0.0/16 and a multicast route on each side. No tracker, no DHT, no
//! `--peer`: a peer in one namespace finds the other by its multicast announces alone.
//!
//! - peerwire finds a peerwire seeder and downloads from it;
//! - `--no-lsd` and a private torrent (BEP 27, "Private Torrents") send nothing: an ear on the
//!   group (`tests/peers/lsd_listen.py`) hears only the control seeder;
//! - libtorrent 2.0.8 with `enable_lsd` (`tests/peers/libtorrent_lsd.py`) and peerwire find
//!   each other, both ways.
//! - a magnet link with no tracker finds its metadata and pieces on the LAN: the slow one (about
//!   a minute), since the seeder answers the link's announce only when BEP 14's one announce a
//!   minute allows.
//!
//! Without root (or without `ip`) every test skips loudly, and fails under
//! `PEERWIRE_INTEROP=require`. The namespaces are deleted by a guard's `Drop`, pass, fail or
//! panic; every process runs under a deadline and is stopped by PID.

pub mod common;

use common::{
    Killed, StderrLines, lines_of, need_libtorrent_python, need_program, pseudo_random,
    run_with_deadline, skip, small_torrent,
};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Two namespaces, `a` (10.77.N.1) and `b` (10.77.N.2), joined by a veth pair; deleted (with
/// the pair) when dropped.
struct Lan {
    a: String,
    b: String,
    subnet: u32,
}

/// Runs an `ip` command with a deadline; its stderr if it failed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = run_with_deadline(Command::new("ip").args(args), Duration::from_secs(10));
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

impl Lan {
    /// Makes the pair, or skips (not root, no `ip`) when it cannot.
    fn create() -> Option<Lan> {
        need_program("ip")?;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let subnet = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let lan = Lan {
            a: format!("pw-lsd-{pid}-{subnet}-a"),
            b: format!("pw-lsd-{pid}-{subnet}-b"),
            subnet,
        };
        // Interface names have at most 15 bytes: the PID's last five digits tell test runs
        // apart, the counter tests within one.
        let (veth_a, veth_b) = (
            format!("pwl{}x{subnet}a", pid % 100_000),
            format!("pwl{}x{subnet}b", pid % 100_000),
        );
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &lan.a])?;
            ip(&["netns", "add", &lan.b])?;
            ip(&[
                "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b,
            ])?;
            for (ns, dev, host) in [(&lan.a, &veth_a, 1), (&lan.b, &veth_b, 2)] {
                ip(&["link", "set", dev, "netns", ns])?;
                let address = format!("10.77.{subnet}.{host}/24");
                ip(&["-n", ns, "addr", "add", &address, "dev", dev])?;
                ip(&["-n", ns, "link", "set", "lo", "up"])?;
                ip(&["-n", ns, "link", "set", dev, "up", "multicast", "on"])?;
                // Without a route for the group the kernel has nowhere to send an announce.
                ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev])?;
            }
            Ok(())
        };
        match setup() {
            Ok(()) => Some(lan),
            // `lan` is dropped here: whatever was made is deleted.
            Err(why) => skip(&format!(
                "cannot make network namespaces (root only): {why}"
            )),
        }
    }

    /// The address of side `a` (1) or `b` (2).
    fn address(&self, host: u8) -> String {
        format!("10.77.{}.{host}", self.subnet)
    }

    /// `program args...` inside namespace `ns`. `ip netns exec` replaces itself with the
    /// program: the child's PID is the program's, and killing it kills the program.
    fn exec(&self, ns: &str, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).arg(program);
        command
    }

    /// `peerwire -v ARGS...` inside `ns`, its DHT without public routers, LSD on.
    fn peerwire(&self, ns: &str) -> Command {
        let mut command = self.exec(ns, Path::new(env!("CARGO_BIN_EXE_peerwire")));
        command
            .env("PEERWIRE_DHT_ROUTERS", "")
            .env_remove("PEERWIRE_LSD")
            .arg("-v");
        command
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        for ns in [&self.a, &self.b] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A Python helper's stdout, line by line, and its stdin: closing stdin (dropping this) ends
/// it, and the `Killed` ends it by PID in any case.
struct Script {
    lines: Receiver<String>,
    seen: Vec<String>,
    _stdin: ChildStdin,
    _process: Killed,
}

impl Script {
    fn spawn(mut command: Command) -> Script {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = lines_of(child.stdout.take().expect("piped stdout"));
        Script {
            lines,
            seen: Vec::new(),
            _stdin: stdin,
            _process: Killed(child),
        }
    }

    /// Waits for a line containing `needle`; every line read is kept in `seen`.
    fn wait_for(&mut self, needle: &str, deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "no line with {needle:?} within {deadline:?}; so far:\n{}",
                    self.seen.join("\n")
                );
            };
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// `peerwire seed TORRENT DATA --no-dht --port PORT EXTRA...` in `ns`, once it listens.
fn seed(
    lan: &Lan,
    ns: &str,
    torrent: &Path,
    data: &Path,
    port: u16,
    extra: &[&str],
) -> StderrLines {
    let mut command = lan.peerwire(ns);
    command
        .arg("seed")
        .arg(torrent)
        .arg(data)
        .args(["--no-dht", "--port", &port.to_string()])
        .args(extra);
    let mut seeder = StderrLines::spawn(&mut command);
    seeder.wait_for("listening for peers", Duration::from_secs(30));
    seeder
}

/// `peerwire download` of `torrent` into the file `out` in `ns`: no tracker, no DHT, no `--peer`,
/// giving up after 30 s without data, killed at 60 s.
fn download(lan: &Lan, ns: &str, torrent: &Path, out: &Path, port: u16) -> Output {
    let mut command = lan.peerwire(ns);
    command
        .arg("download")
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args([
            "--no-dht",
            "--port",
            &port.to_string(),
            "--give-up-after",
            "30",
        ]);
    run_with_deadline(&mut command, Duration::from_secs(60))
}

fn assert_downloaded(output: &Output, got: &Path, expected: &Path) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the download failed:\n{stderr}");
    let got = std::fs::read(got).unwrap_or_else(|e| panic!("{}: {e}\n{stderr}", got.display()));
    assert!(got == std::fs::read(expected).unwrap(), "the bytes differ");
}

#[test]
fn a_leecher_finds_a_seeder_on_the_lan_by_lsd_alone() {
    let Some(lan) = Lan::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 1 << 20, 16_384);
    let mut seeder = seed(&lan, &lan.a, &torrent, &content, 7001, &[]);
    seeder.wait_for("LSD: announcing port 7001", Duration::from_secs(10));
    let out = dir.path().join("out");
    let output = download(&lan, &lan.b, &torrent, &out, 7002);
    assert_downloaded(&output, &out, &content);
    // The seeder heard the leecher's announce at the leecher's own address and port.
    let heard = format!("LSD: {}:7002 is in the swarm", lan.address(2));
    seeder.wait_for(&heard, Duration::from_secs(10));
}

#[test]
fn no_lsd_and_a_private_torrent_announce_nothing() {
    let Some(lan) = Lan::create() else { return };
    let Some(python) = need_program("/usr/bin/python3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 64 << 10, 16_384);
    let private = dir.path().join("private.torrent");
    common::create_torrent(&content, &private, &["--private"]);
    let mut listen = lan.exec(&lan.b, &python);
    listen
        .arg(script("lsd_listen.py"))
        .args(["--seconds", "60"]);
    let mut ear = Script::spawn(listen);
    ear.wait_for("ready", Duration::from_secs(20));
    let _quiet = seed(&lan, &lan.a, &torrent, &content, 7101, &["--no-lsd"]);
    let _private = seed(&lan, &lan.a, &private, &content, 7102, &[]);
    // The control: the same seeder with LSD on is heard, after the two above started.
    let _control = seed(&lan, &lan.a, &torrent, &content, 7103, &[]);
    let heard = ear.wait_for("Port: 7103", Duration::from_secs(10));
    assert!(heard.starts_with(&format!(
        "from {}:6771 BT-SEARCH * HTTP/1.1|",
        lan.address(1)
    )));
    for line in &ear.seen {
        assert!(
            !line.contains("Port: 7101") && !line.contains("Port: 7102"),
            "announced though it must not: {line}"
        );
    }
}

#[test]
fn a_private_torrent_with_no_tracker_has_nowhere_to_find_peers() {
    // LSD is no way in for a private torrent (BEP 27): with no tracker, no DHT and no --peer,
    // the download says at once that it has nowhere to look. (No namespace needed: it never
    // reaches the network.)
    let dir = tempfile::tempdir().unwrap();
    let (content, _) = small_torrent(dir.path(), 64 << 10, 16_384);
    let private = dir.path().join("private.torrent");
    common::create_torrent(&content, &private, &["--private"]);
    let mut command = Command::new(env!("CARGO_BIN_EXE_peerwire"));
    command
        .env("PEERWIRE_DHT_ROUTERS", "")
        .env_remove("PEERWIRE_LSD")
        .arg("download")
        .arg(&private)
        .arg("-o")
        .arg(dir.path().join("out"))
        .args(["--no-dht", "--port", "0"]);
    let output = run_with_deadline(&mut command, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("nowhere to find peers"), "{stderr}");
}

#[test]
fn peerwire_downloads_from_libtorrent_found_by_lsd() {
    let Some(lan) = Lan::create() else { return };
    let Some(python) = need_libtorrent_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 1 << 20, 16_384);
    let mut command = lan.exec(&lan.a, &python);
    command
        .arg(script("libtorrent_lsd.py"))
        .args(["--port", "7201", "--seed", "--seconds", "90", "--torrent"])
        .arg(&torrent)
        .arg("--save")
        .arg(content.parent().unwrap());
    let mut libtorrent = Script::spawn(command);
    libtorrent.wait_for("ready", Duration::from_secs(20));
    let out = dir.path().join("out");
    let output = download(&lan, &lan.b, &torrent, &out, 7202);
    assert_downloaded(&output, &out, &content);
    // However the two met (libtorrent dials whom it hears; so do we), libtorrent heard our
    // announce: the packet format is one it reads.
    let heard = libtorrent.wait_for("lsd_peer", Duration::from_secs(10));
    let ours = format!("{}:7202", lan.address(2));
    assert!(heard.contains(&ours), "{heard}");
}

#[test]
fn libtorrent_downloads_from_peerwire_found_by_lsd() {
    let Some(lan) = Lan::create() else { return };
    let Some(python) = need_libtorrent_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 1 << 20, 16_384);
    let mut seeder = seed(&lan, &lan.a, &torrent, &content, 7301, &[]);
    let save = dir.path().join("libtorrent");
    std::fs::create_dir_all(&save).unwrap();
    let mut command = lan.exec(&lan.b, &python);
    command
        .arg(script("libtorrent_lsd.py"))
        .args(["--port", "7302", "--seconds", "90", "--torrent"])
        .arg(&torrent)
        .arg("--save")
        .arg(&save);
    let mut libtorrent = Script::spawn(command);
    libtorrent.wait_for("finished", Duration::from_secs(60));
    let got = std::fs::read(save.join("lesson.bin")).unwrap();
    assert!(
        got == pseudo_random(1 << 20, 7),
        "libtorrent's copy differs"
    );
    // We heard libtorrent's announce, at its address and listen port.
    let heard = format!("LSD: {}:7302 is in the swarm", lan.address(2));
    seeder.wait_for(&heard, Duration::from_secs(10));
}

#[test]
fn a_magnet_link_finds_its_metadata_and_pieces_on_the_lan() {
    // The slow case: the seeder announced before the magnet link's look-up listened, so the
    // look-up waits for the seeder's answer, which BEP 14's one announce a minute delays up to
    // a minute after the seeder's first.
    let Some(lan) = Lan::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), 256 << 10, 16_384);
    let metainfo = peerwire::metainfo::Metainfo::from_bytes(&std::fs::read(&torrent).unwrap())
        .expect("the test's torrent loads");
    let link = format!("magnet:?xt=urn:btih:{}", metainfo.info_hash.to_hex());
    let mut seeder = seed(&lan, &lan.a, &torrent, &content, 7401, &[]);
    seeder.wait_for("LSD: announcing port 7401", Duration::from_secs(10));
    let out = dir.path().join("from-magnet");
    let mut command = lan.peerwire(&lan.b);
    command
        .args(["magnet_download", "-o"])
        .arg(&out)
        .arg(&link)
        .args(["--no-dht", "--port", "7402", "--give-up-after", "30"]);
    let output = run_with_deadline(&mut command, Duration::from_secs(150));
    assert_downloaded(&output, &out, &content);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("LSD: listening up to"), "{stderr}");
}
