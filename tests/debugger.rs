//! `docs/debugging.md`, tried for real: gdb runs the debug `peerwire` binary against a local
//! seed and stops where the guide says it will.
//!
//! - `handshake` under gdb stops in `check_remote` (the checks every handshake gets) and
//!   prints the info hash the seed sent: it must be the torrent's.
//! - `download --debug-single-peer` under gdb stops in the same place: our peer id is the
//!   fixed `-PW0001-debugdebug00`, `info threads` shows the thread names the guide lists, and
//!   after `continue` the download finishes with the right bytes.
//! - With `--web`, in gdb's non-stop mode, the page's `/api/state` answers while the
//!   scheduler sits at a breakpoint (the `web` thread serves the last snapshot).
//! - Every `break peerwire::...` named in the guide resolves in gdb, so the guide cannot rot
//!   when a function is renamed or moved.
//!
//! gdb missing, or not allowed to trace (ptrace refused in a locked-down container): the tests
//! skip loudly, and fail under `PEERWIRE_INTEROP=require`.

pub mod common;

use common::{Killed, need_program, peerwire, skip, wait_with_deadline};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long one gdb session may take (loading the debug info takes a second or two).
const GDB_DEADLINE: Duration = Duration::from_secs(120);

/// The peer id `--debug-single-peer` always uses (`session::download`).
const DEBUG_PEER_ID: &[u8; 20] = b"-PW0001-debugdebug00";

/// Where the guide lives.
fn guide() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/debugging.md")
}

/// A torrent of 100 kB of pseudo-random data, and the seed serving it on 127.0.0.1.
struct Swarm {
    dir: tempfile::TempDir,
    torrent: PathBuf,
    data: PathBuf,
    port: u16,
    _seed: Killed,
}

impl Swarm {
    fn start() -> Swarm {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("lesson.bin");
        std::fs::write(&data, common::pseudo_random(100_000, 7)).expect("write the data");
        let torrent = dir.path().join("lesson.torrent");
        common::create_torrent(&data, &torrent, &["--piece-length", "16384"]);
        let mut quiet = peerwire();
        quiet.stderr(Stdio::null());
        let (seed, port) = common::start_seed(quiet, &torrent, &data, &[]);
        Swarm {
            dir,
            torrent,
            data,
            port,
            _seed: seed,
        }
    }

    fn seed_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn info_hash_hex(&self) -> String {
        let metainfo = peerwire::metainfo::Metainfo::from_file(&self.torrent).expect("torrent");
        metainfo.info_hash.to_string()
    }
}

/// gdb, or a skip when it is missing.
fn gdb() -> Option<PathBuf> {
    need_program("gdb")
}

/// Runs `gdb -batch` with `commands` against `peerwire args...`; returns stdout and stderr
/// together. Skips when gdb may not trace a process here.
fn run_gdb(gdb: &Path, commands: &[&str], args: &[&str]) -> Option<String> {
    let mut command = Command::new(gdb);
    command.args(["-nx", "-batch"]);
    for line in ["set pagination off"].iter().chain(commands) {
        command.arg("-ex").arg(line);
    }
    // No public DHT routers, no LSD announces: nothing leaves the machine (see
    // `common::peerwire`).
    command
        .env("PEERWIRE_DHT_ROUTERS", "")
        .env("PEERWIRE_LSD", "off")
        .arg("--args")
        .arg(env!("CARGO_BIN_EXE_peerwire"))
        .args(args);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gdb");
    let out = wait_with_deadline(child, GDB_DEADLINE);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if text.contains("ptrace:") || text.contains("Couldn't get registers") {
        return skip(&format!("gdb may not trace processes here:\n{text}"));
    }
    Some(text)
}

/// The bytes gdb printed after `marker` for `print/x` of a `[u8; 20]`: `$1 = [0x1c, 0x7a, ...]`.
fn printed_bytes(output: &str, marker: &str) -> Vec<u8> {
    let after = output
        .split_once(marker)
        .unwrap_or_else(|| panic!("gdb never printed {marker:?}:\n{output}"))
        .1;
    let list = after
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .unwrap_or_else(|| panic!("no [..] after {marker:?}:\n{output}"))
        .0;
    list.split(',')
        .map(|b| u8::from_str_radix(b.trim().trim_start_matches("0x"), 16).expect("a hex byte"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn gdb_stops_in_the_handshake_and_sees_the_torrents_info_hash() {
    let Some(gdb) = gdb() else { return };
    let swarm = Swarm::start();
    let torrent = swarm.torrent.to_str().expect("UTF-8 path");
    let commands = [
        "break peerwire::peer::connection::check_remote",
        "run",
        "echo THEIR-INFO-HASH\\n",
        "print/x remote.info_hash.0",
        "continue",
    ];
    let Some(output) = run_gdb(&gdb, &commands, &["handshake", torrent, &swarm.seed_addr()]) else {
        return;
    };
    assert!(
        output.contains("Breakpoint 1, peerwire::peer::connection::check_remote"),
        "gdb did not stop in check_remote:\n{output}"
    );
    let seen = hex(&printed_bytes(&output, "THEIR-INFO-HASH"));
    assert_eq!(seen, swarm.info_hash_hex(), "gdb output:\n{output}");
    assert!(
        output.contains("Peer ID: 2d5057303030312d"),
        "the handshake did not finish under gdb:\n{output}"
    );
}

#[test]
fn debug_single_peer_has_a_fixed_peer_id_named_threads_and_finishes_under_gdb() {
    let Some(gdb) = gdb() else { return };
    let swarm = Swarm::start();
    let out = swarm.dir.path().join("out");
    std::fs::create_dir(&out).expect("output dir");
    let (torrent, out_dir) = (swarm.torrent.to_str().unwrap(), out.to_str().unwrap());
    let commands = [
        "break peerwire::peer::connection::check_remote",
        "run",
        "echo OUR-PEER-ID\\n",
        "print/x our_id.0",
        "info threads",
        "delete",
        "continue",
    ];
    let args = [
        "download",
        torrent,
        "-o",
        out_dir,
        "--debug-single-peer",
        "--peer",
        &swarm.seed_addr(),
        "--give-up-after",
        "60",
    ];
    let Some(output) = run_gdb(&gdb, &commands, &args) else {
        return;
    };
    assert_eq!(
        printed_bytes(&output, "OUR-PEER-ID"),
        DEBUG_PEER_ID.to_vec()
    );
    for name in ["\"scheduler\"", "\"verify 0\"", "\"peer 127.0.0.1:\""] {
        assert!(output.contains(name), "no thread {name}:\n{output}");
    }
    assert!(output.contains("exited normally"), "gdb output:\n{output}");
    let expected = std::fs::read(&swarm.data).unwrap();
    assert!(std::fs::read(out.join("lesson.bin")).unwrap() == expected);
}

#[test]
fn the_web_view_answers_while_the_scheduler_sits_at_a_breakpoint() {
    let Some(gdb) = gdb() else { return };
    let Some(curl) = need_program("curl") else {
        return;
    };
    let swarm = Swarm::start();
    let web_port = common::free_port();
    let state = swarm.dir.path().join("state.json");
    // Non-stop mode (docs/debugging.md): the breakpoint stops the scheduler alone, and while
    // it sits there the page is fetched from gdb's own shell.
    let fetch = format!(
        "shell {} -s -m 10 -o {} http://127.0.0.1:{web_port}/api/state",
        curl.display(),
        state.display()
    );
    let commands = [
        "set non-stop on",
        "break peerwire::scheduler::Scheduler::snapshot",
        "run",
        fetch.as_str(),
        "info threads",
        "kill",
    ];
    let web = format!("127.0.0.1:{web_port}");
    let (torrent, data) = (
        swarm.torrent.to_str().unwrap(),
        swarm.data.to_str().unwrap(),
    );
    let args = [
        "seed", torrent, data, "--port", "0", "--no-dht", "--web", &web,
    ];
    let Some(output) = run_gdb(&gdb, &commands, &args) else {
        return;
    };
    let stopped = output
        .lines()
        .find(|l| l.contains("\"scheduler\"") && l.contains("Scheduler::snapshot"));
    assert!(
        stopped.is_some(),
        "the scheduler never sat at the breakpoint:\n{output}"
    );
    let page = std::fs::read_to_string(&state).unwrap_or_default();
    assert!(
        page.starts_with("{\"members\":["),
        "no /api/state while the scheduler was stopped ({page:?}):\n{output}"
    );
}

/// Every `break peerwire::...` in the guide, in order, without repeats.
fn breakpoints_in_guide() -> Vec<String> {
    let text = std::fs::read_to_string(guide()).expect("docs/debugging.md");
    let mut found = Vec::new();
    for (at, _) in text.match_indices("break peerwire::") {
        let name: String = text[at + "break ".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        // `break peerwire::...` in the prose is a placeholder, not a breakpoint.
        if !name.ends_with(':') && !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

#[test]
fn every_breakpoint_in_the_guide_resolves() {
    let names = breakpoints_in_guide();
    assert!(
        names.len() >= 14,
        "the guide names a breakpoint for each of §1–§14, found only {names:?}"
    );
    let Some(gdb) = gdb() else { return };
    let mut commands: Vec<String> = names.iter().map(|n| format!("break {n}")).collect();
    commands.push("info breakpoints".into());
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    let Some(output) = run_gdb(&gdb, &commands, &[]) else {
        return;
    };
    let unresolved: Vec<&String> = names
        .iter()
        .filter(|n| !output.contains(&format!(" in {n} at src/")))
        .collect();
    assert!(
        unresolved.is_empty(),
        "breakpoints in docs/debugging.md that gdb does not find in src/: {unresolved:?}\n{output}"
    );
}
