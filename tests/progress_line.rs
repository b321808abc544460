//! The progress line in a real terminal (tmux, read back with `capture-pane`): at the start
//! it says the time left is unknown (`ETA --`, not `0s`), and a warning logged while it runs
//! (a tracker that refuses) is printed once, above a single bar, not beside a second copy of
//! it.

pub mod common;

use common::{free_port, need_program, peerwire, run_ok};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);
const REFUSAL: &str = "this tracker refuses every peer";

/// A tmux server of our own (its own socket), with one window; killed when dropped.
struct Tmux {
    program: PathBuf,
    socket: String,
}

impl Tmux {
    fn start(program: PathBuf, command: &str) -> Tmux {
        let socket = format!("peerwire-test-{}-{}", std::process::id(), free_port());
        let tmux = Tmux { program, socket };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "150",
            "-y",
            "20",
            command,
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let mut command = Command::new(&self.program);
        command.args(["-L", &self.socket]).args(args);
        run_ok(&mut command, DEADLINE)
    }

    /// The screen's lines, trailing blanks dropped.
    fn screen(&self) -> Vec<String> {
        let text = self.run(&["capture-pane", "-p", "-t", "t"]);
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// Waits until the screen is `what` says; returns it.
    fn wait_until(&self, what: &str, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
        let until = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < until,
                "not {what} within {DEADLINE:?}:\n{}",
                screen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(100)); // poll interval while waiting for the event
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new(&self.program)
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// An HTTP tracker that holds its first announce until told, then refuses it.
fn refusing_tracker() -> (String, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let (release, released) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut socket, _)) = listener.accept() else {
            return;
        };
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") && socket.read(&mut byte).is_ok_and(|n| n == 1) {
            request.push(byte[0]);
        }
        if released.recv_timeout(DEADLINE).is_err() {
            return;
        }
        let body = format!("d14:failure reason{}:{REFUSAL}e", REFUSAL.len());
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(answer.as_bytes());
    });
    (url, release)
}

#[test]
fn the_bar_says_what_it_knows_and_a_warning_leaves_one_bar() {
    let Some(tmux) = need_program("tmux") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("data.bin");
    std::fs::write(&content, common::pseudo_random(200_000, 3)).unwrap();
    let torrent = dir.path().join("data.torrent");
    let (url, release) = refusing_tracker();
    common::create_torrent(&content, &torrent, &["-t", &url]);
    let command = format!(
        "{} download -o {} {} --port {} --no-dht",
        peerwire().get_program().to_string_lossy(),
        dir.path().join("out.bin").display(),
        torrent.display(),
        free_port()
    );
    let tmux = Tmux::start(tmux, &command);

    // Nothing known yet: no peer, no piece, no time left.
    let has_bar = |screen: &[String]| screen.iter().any(|l| l.contains("ETA"));
    let screen = tmux.wait_until("a progress bar", has_bar);
    let bar: Vec<&String> = screen.iter().filter(|l| l.contains("ETA")).collect();
    assert_eq!(bar.len(), 1, "{}", screen.join("\n"));
    assert!(
        bar[0].ends_with("0% 0.0 MiB/s down, 0.0 MiB/s up, 0 peers, ETA --"),
        "{}",
        bar[0]
    );

    // The tracker refuses while the bar runs: the warning, then the bar again below it (it is
    // redrawn at its next update, every half second).
    release.send(()).unwrap();
    let settled = |screen: &[String]| {
        screen.iter().any(|l| l.contains(REFUSAL))
            && screen.last().is_some_and(|l| l.contains("ETA"))
    };
    let screen = tmux.wait_until("a warning above the bar", settled);
    let shown = screen.join("\n");
    let warnings = screen.iter().filter(|l| l.contains(REFUSAL)).count();
    let bars = screen.iter().filter(|l| l.contains("ETA")).count();
    assert_eq!((warnings, bars), (1, 1), "one warning, one bar:\n{shown}");
    tmux.run(&["send-keys", "-t", "t", "C-c"]);
}
