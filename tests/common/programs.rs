//! Finding the real programs an interop test needs, or skipping the test loudly.
//!
//! A test that needs mktorrent, transmission, libtorrent, opentracker or aria2c asks for it
//! with [`need_program`]; when the program is missing the test prints a `*** SKIPPED ***`
//! banner and passes, so `cargo test` passes on a fresh machine. With
//! `PEERWIRE_INTEROP=require` (set by `.ci/run`) a missing program fails the test instead.

use std::path::{Path, PathBuf};

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
