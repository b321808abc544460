//! Real libtorrent DHT nodes (BEP 5, DHT Protocol) on loopback, for the tests of peerwire's
//! DHT: one Python process (`tests/peers/libtorrent_dht.py`, run by the Debian `/usr/bin/python3`
//! with `python3-libtorrent`) holding N libtorrent sessions, node i on `127.0.0.(first + i)`
//! at one port, driven over its stdin and read from its stdout one event per line (`ready`,
//! `meshed`, `seeding`, `announced`, `finished`, `peers`, `lookup`, `pkt`, `direct_reply`, ...:
//! the script's doc lists them and its commands).
//!
//! Where it sits: a test starts the network, fills the routing tables (`mesh`, `add_node`),
//! has a node seed or look up, and points peerwire's DHT at the nodes' addresses
//! ([`LibtorrentDht::addr`]) or points the nodes at peerwire's (`add_node`, `direct`).

use super::{Killed, lines_of, need_libtorrent_python};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long the Python process may live at most, whatever the test does: it ends itself then.
const MAX_LIFE: Duration = Duration::from_secs(300);

/// How many of the latest event lines a failure message shows.
const SHOWN_LINES: usize = 30;

/// A network of libtorrent DHT nodes in one child process, its event lines read on a thread so
/// that a test waits for one with a deadline. Dropping it asks the child to quit (it tears its
/// sessions down), then kills it by PID.
pub struct LibtorrentDht {
    nodes: Vec<SocketAddrV4>,
    stdin: Option<std::process::ChildStdin>,
    events: Receiver<String>,
    /// The latest lines read, whatever they were, for the message of a failed wait.
    recent: std::cell::RefCell<std::collections::VecDeque<String>>,
    _process: Killed,
}

impl LibtorrentDht {
    /// Starts `count` nodes on `first_ip`, `first_ip + 1`, ... all at `port` (TCP and UDP), and
    /// waits until every one listens with its DHT running. Their routing tables are empty: fill
    /// them with `mesh` or `add_node`. `None` when libtorrent is missing (skipped loudly, or a
    /// failure under `PEERWIRE_INTEROP=require`).
    pub fn start(count: usize, first_ip: Ipv4Addr, port: u16) -> Option<LibtorrentDht> {
        let python = need_libtorrent_python()?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/libtorrent_dht.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--count", &count.to_string()])
            .args(["--first-ip", &first_ip.to_string()])
            .args(["--port", &port.to_string()])
            .args(["--max-seconds", &MAX_LIFE.as_secs().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the libtorrent DHT driver");
        let stdin = child.stdin.take();
        let events = lines_of(child.stdout.take().expect("piped stdout"));
        let first = u32::from(first_ip);
        let nodes = (0..count)
            .map(|i| SocketAddrV4::new(Ipv4Addr::from(first + i as u32), port))
            .collect();
        let dht = LibtorrentDht {
            nodes,
            stdin,
            events,
            recent: Default::default(),
            _process: Killed(child),
        };
        // Dozens of sessions start in about a second; 20 s leaves room for a loaded machine.
        dht.wait_for("all_ready", Duration::from_secs(20));
        Some(dht)
    }

    /// Where node `i` listens (TCP for peers, UDP for the DHT).
    pub fn addr(&self, i: usize) -> SocketAddrV4 {
        self.nodes[i]
    }

    /// Sends one command line (see the script's doc), e.g. `mesh` or `get_peers 4 HASH`.
    pub fn send(&mut self, command: &str) {
        use std::io::Write;
        let stdin = self
            .stdin
            .as_mut()
            .expect("the driver's stdin is open until drop");
        writeln!(stdin, "{command}").expect("the libtorrent DHT driver is running");
    }

    /// Waits for the next event line starting with `prefix` (earlier other lines are skipped)
    /// and returns it. Fails the test at the deadline, or at once when the driver reports that
    /// a command failed (`error ...`), showing the latest lines.
    pub fn wait_for(&self, prefix: &str, deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(line) => {
                    self.remember(&line);
                    if line.starts_with(prefix) {
                        return line;
                    }
                    if line.starts_with("error ") {
                        self.fail(&format!("a command failed while waiting for {prefix:?}"));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no {prefix:?} within {deadline:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("the driver exited while waiting for {prefix:?}"))
                }
            }
        }
    }

    fn remember(&self, line: &str) {
        let mut recent = self.recent.borrow_mut();
        if recent.len() == SHOWN_LINES {
            recent.pop_front();
        }
        recent.push_back(line.to_string());
    }

    fn fail(&self, what: &str) -> ! {
        let recent = self.recent.borrow();
        let lines: Vec<&str> = recent.iter().map(String::as_str).collect();
        panic!(
            "libtorrent DHT nodes ({} from {}): {what}; latest lines:\n  {}",
            self.nodes.len(),
            self.nodes[0],
            lines.join("\n  ")
        );
    }
}

impl Drop for LibtorrentDht {
    fn drop(&mut self) {
        // End of input asks the driver to tear its sessions down and print `bye`; then `Killed`
        // kills it by PID whether or not that came (after `bye` there is nothing left to lose),
        // so a hung driver cannot outlive the test.
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .events
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            if line == "bye" {
                break;
            }
        }
    }
}

/// The words of an event line after its first `skip` words.
pub fn words(line: &str, skip: usize) -> Vec<&str> {
    line.split_whitespace().skip(skip).collect()
}

/// A `direct_reply` line's `path=value` pairs (after the node and address).
pub fn reply_fields(line: &str) -> std::collections::HashMap<&str, &str> {
    words(line, 3)
        .into_iter()
        .filter_map(|word| word.split_once('='))
        .collect()
}

/// A 6-byte compact peer or node address (BEP 5) in hex.
pub fn compact_hex(addr: SocketAddrV4) -> String {
    let mut hex: String = addr
        .ip()
        .octets()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex.push_str(&format!("{:04x}", addr.port()));
    hex
}
