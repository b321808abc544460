//! Reading what a running program writes: its lines as they come ([`lines_of`]), its stderr
//! kept line by line ([`StderrLines`]), and the wire trace among them ([`trace_lines`]).
//!
//! There is one reader of the wire trace for every test: [`trace_lines`], built on the
//! library's own parser (`peerwire::trace::parse_trace_line`), so a test sees each line as the
//! handshake or [`Message`](peerwire::wire::Message) it shows, not as text to pick apart.

use peerwire::trace::{Direction, TraceError, TraceLine, Traced, parse_trace_line};
use peerwire::wire::Message;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The lines of `stream` (a child's stdout or stderr), read by a thread as they come, so a
/// test can wait for one with a deadline and the child never blocks on a full pipe.
pub fn lines_of(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("read lines".into())
        .spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        })
        .expect("start a reading thread");
    rx
}

/// A running program whose stderr is read line by line as it comes (peerwire's `--trace` and
/// log go there), so a test can wait for a line, then stop it and have every line.
pub struct StderrLines {
    child: Child,
    lines: Receiver<String>,
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
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
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
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("PID {pid} did not end within {deadline:?} of kill {signal}")
                }
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

/// The `--trace` lines among the lines of `stderr` (`String`s or `&str`s), read back. Log
/// lines and the summary are skipped; a line that starts like a trace line but cannot be read
/// fails the test (the format changed).
pub fn trace_lines(stderr: &[impl AsRef<str>]) -> Vec<TraceLine> {
    let mut traced = Vec::new();
    for line in stderr {
        match parse_trace_line(line.as_ref()) {
            Ok(read) => traced.push(read),
            Err(TraceError::NotATraceLine(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    traced
}

/// A trace line as `--trace` printed it: `127.0.0.1:6881 -> Request { index: 3, ... }`.
pub fn trace_text(line: &TraceLine) -> String {
    let arrow = match line.direction {
        Direction::Sent => "->",
        Direction::Received => "<-",
    };
    match &line.traced {
        Traced::Handshake(h) => format!("{} {arrow} {h:?}", line.peer),
        Traced::Message(m) => format!("{} {arrow} {m:?}", line.peer),
    }
}

/// The messages (not handshakes) of `lines` that went `direction`, with their peer.
pub fn traced_messages(
    lines: &[TraceLine],
    direction: Direction,
) -> impl Iterator<Item = (SocketAddr, &Message)> {
    lines
        .iter()
        .filter(move |l| l.direction == direction)
        .filter_map(|l| match &l.traced {
            Traced::Message(m) => Some((l.peer, m)),
            Traced::Handshake(_) => None,
        })
}
