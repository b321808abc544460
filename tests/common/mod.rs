//! Shared helpers for the integration tests: finding the `peerwire` binary, the third-party
//! fixtures and the real peer programs, and running processes with a deadline.
//!
//! Interop tests need real software (mktorrent, transmission, libtorrent, opentracker). When a
//! program is missing the test *skips loudly*, so `cargo test` passes on a fresh machine; with
//! `PEERWIRE_INTEROP=require` (set by `.ci/run`) a missing program fails the test instead.
#![allow(dead_code)] // each test binary uses a different subset of these helpers

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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
    eprintln!("\n*** SKIPPED: {what} (set PEERWIRE_INTEROP=require to make this a failure) ***\n");
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

/// The shared fixtures: `$PEERWIRE_FIXTURES`, else `../shared/fixtures` beside the repository.
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
        skip("no fixtures: set PEERWIRE_FIXTURES or put them at ../shared/fixtures")
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
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(result) => result.unwrap_or_else(|e| panic!("waiting for {description}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{description} did not finish within {deadline:?}; killed PID {pid}");
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
