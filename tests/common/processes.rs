//! Running programs with a deadline, killing them by PID, and the ports they listen on; and
//! [`within`], a time limit for a check that runs in the test's own process.
//!
//! Every process a test starts is bounded in time: [`run_with_deadline`] and
//! [`wait_with_deadline`] kill it (by PID, never by name) when the deadline passes and fail
//! the test; a long-running one is held in a [`Killed`], which kills it when the test ends,
//! pass or fail. Tests wait for events (a port that accepts, a line of output), never for a
//! guessed amount of time.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
pub fn wait_with_deadline(child: Child, deadline: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    // A thread does the blocking wait (and reads the pipes to their end) so that this one
    // can give up at the deadline.
    std::thread::Builder::new()
        .name(format!("wait for PID {pid}"))
        .spawn(move || {
            let _ = tx.send(child.wait_with_output());
        })
        .expect("start a waiting thread");
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

/// A process that is killed (by PID) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port below 32768 (outside Linux's ephemeral range, where the kernel picks the local
/// ports of outgoing connections) that is free for both TCP and UDP right now, and never
/// handed out before in this test binary: tests run in parallel, and a port chosen by one but
/// not yet bound by its program (a daemon still starting) looks free to another.
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
    let until = Instant::now() + deadline;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < until,
            "{what} did not start listening on {port} within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
    }
}

/// Runs `check` on a thread of its own and fails the test if it has not returned within
/// `limit`: for checks that call code a student may have made loop forever (a picker that
/// never finds a piece, a leecher that waits for a message that never comes). A panic inside
/// `check` fails the test with its own message; a timeout fails it with `what` and `hint`.
/// (A thread that loops forever cannot be stopped; it ends with the test process.)
pub fn within(limit: Duration, what: &str, hint: &str, check: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(what.to_string())
        .spawn(move || {
            check();
            let _ = tx.send(());
        })
        .expect("start the check's thread");
    match rx.recv_timeout(limit) {
        Ok(()) => {}
        // The sender is gone without a word: the check panicked. Its panic, with its message,
        // becomes this test's.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the check returned without saying so"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not finish within {limit:?}: {hint}")
        }
    }
}
