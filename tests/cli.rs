//! The command-line contract (`docs/cli.md`), checked on the real binary: exact stdout,
//! exit statuses (0 ok, 1 failure, 2 usage), and the `error:` / `caused by:` format.

pub mod common;

use common::{peerwire, run_ok, run_with_deadline};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);

fn stdout_of(args: &[&str]) -> String {
    run_ok(peerwire().args(args), DEADLINE)
}

#[test]
fn decode_prints_compact_json() {
    assert_eq!(stdout_of(&["decode", "5:hello"]), "\"hello\"\n");
    assert_eq!(stdout_of(&["decode", "i52e"]), "52\n");
    assert_eq!(
        stdout_of(&["decode", "i-9223372036854775808e"]),
        "-9223372036854775808\n"
    );
    assert_eq!(stdout_of(&["decode", "l5:helloi52ee"]), "[\"hello\",52]\n");
    assert_eq!(
        stdout_of(&["decode", "d3:foo3:bar5:helloi52ee"]),
        "{\"foo\":\"bar\",\"hello\":52}\n"
    );
    // keys stay in encoded order, even unsorted
    assert_eq!(
        stdout_of(&["decode", "d1:bi1e1:ai2ee"]),
        "{\"b\":1,\"a\":2}\n"
    );
}

#[test]
fn a_failure_is_one_error_line_with_its_causes_and_status_1() {
    let out = run_with_deadline(peerwire().args(["decode", "i-0e"]), DEADLINE);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], "error: cannot decode the argument");
    assert_eq!(
        lines[1],
        "caused by: invalid bencoding at byte 2: negative zero (`i-0e`) is not allowed"
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let out = run_with_deadline(peerwire().args(["info"]), DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let out = run_with_deadline(peerwire().args(["no-such-command"]), DEADLINE);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_missing_torrent_names_the_file() {
    let out = run_with_deadline(
        peerwire().args(["info", "/nonexistent/x.torrent"]),
        DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: cannot load torrent /nonexistent/x.torrent\ncaused by: cannot read /nonexistent/x.torrent\ncaused by: "), "{stderr}");
}

/// A hand-made single-file torrent, so the expected output is known byte for byte.
#[test]
fn info_prints_the_contract_lines_for_a_single_file_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let torrent = dir.path().join("t.torrent");
    let pieces = [[0x11u8; 20], [0x22u8; 20]].concat();
    let mut bytes = b"d8:announce30:http://127.0.0.1:6969/announce4:infod6:lengthi20000e4:name5:a.bin12:piece lengthi16384e6:pieces40:".to_vec();
    bytes.extend_from_slice(&pieces);
    bytes.extend_from_slice(b"ee");
    std::fs::write(&torrent, &bytes).unwrap();
    let info_start = bytes.windows(6).position(|w| w == b"4:info").unwrap() + 6;
    let info_hash = peerwire::metainfo::InfoHash::of(&bytes[info_start..bytes.len() - 1]);
    let expected = format!(
        "Tracker URL: http://127.0.0.1:6969/announce\nLength: 20000\nInfo Hash: {info_hash}\nPiece Length: 16384\nPiece Hashes:\n{}\n{}\n",
        "11".repeat(20),
        "22".repeat(20)
    );
    assert_eq!(stdout_of(&["info", torrent.to_str().unwrap()]), expected);
}

#[test]
fn info_lists_files_of_a_multi_file_torrent_and_says_none_without_a_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("album");
    std::fs::create_dir_all(content.join("cd2")).unwrap();
    std::fs::write(content.join("cd1.flac"), vec![1u8; 30000]).unwrap();
    std::fs::write(content.join("cd2/track.flac"), vec![2u8; 5000]).unwrap();
    let torrent = dir.path().join("album.torrent");
    common::create_torrent(&content, &torrent, &["--piece-length", "16384"]);
    let out = stdout_of(&["info", torrent.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "Tracker URL: (none)",
            "Length: 35000",
            "Files:",
            "30000 cd1.flac",
            "5000 cd2/track.flac"
        ]
    );
    assert!(lines[5].starts_with("Info Hash: ") && lines[5].len() == 11 + 40);
    assert_eq!(lines[6..8], ["Piece Length: 16384", "Piece Hashes:"]);
    assert_eq!(lines.len(), 8 + 3); // 35000 bytes = 3 pieces of 16 KiB
}

/// `magnet_parse`: exactly two lines; base32 hashes printed as hex; the first `tr` decoded.
#[test]
fn magnet_parse_prints_the_tracker_and_the_hex_info_hash() {
    let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    let link = "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=x&tr=udp%3A%2F%2Ft.example%3A6969%2Fannounce&tr=http%3A%2F%2Fb%2Fa";
    for spelling in ["magnet_parse", "magnet-parse"] {
        let out = stdout_of(&[spelling, link]);
        assert_eq!(
            out,
            format!("Tracker URL: udp://t.example:6969/announce\nInfo Hash: {hex}\n")
        );
    }
    let upper = format!("magnet:?xt=urn:btih:{}", hex.to_uppercase());
    let out = stdout_of(&["magnet_parse", &upper]);
    assert_eq!(out, format!("Tracker URL: (none)\nInfo Hash: {hex}\n"));
    let bad = run_with_deadline(peerwire().args(["magnet_parse", "magnet:?dn=x"]), DEADLINE);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: not a usable magnet link"),
        "{stderr}"
    );
}

/// The bug report's torrent: 11,718 pieces, so `info` prints 11,723 lines (480 KB), far more
/// than a pipe holds (64 KiB on Linux). Hand-made, with a hash per piece that is just counted.
fn big_torrent(dir: &std::path::Path) -> std::path::PathBuf {
    const PIECES: u32 = 11_718;
    let hashes: Vec<u8> = (0..PIECES)
        .flat_map(|i| peerwire::metainfo::InfoHash::of(&i.to_be_bytes()).0)
        .collect();
    let mut bytes = b"d8:announce30:http://127.0.0.1:6969/announce4:info".to_vec();
    bytes.extend_from_slice(
        format!(
            "d6:lengthi{}e4:name5:a.bin12:piece lengthi16384e6:pieces{}:",
            u64::from(PIECES) * 16384,
            hashes.len()
        )
        .as_bytes(),
    );
    bytes.extend_from_slice(&hashes);
    bytes.extend_from_slice(b"ee");
    let torrent = dir.join("big.torrent");
    std::fs::write(&torrent, bytes).unwrap();
    torrent
}

/// `peerwire info big.torrent | head -1`: the reader takes one line and closes the pipe while
/// `info` still has most of its 480 KB to write (the pipe cannot hold them, so `info` is
/// certainly still writing). A Unix tool stops there, quietly, with status 0.
#[test]
fn info_into_a_pipe_closed_after_one_line_exits_0_quietly() {
    use std::io::BufRead;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let torrent = big_torrent(dir.path());
    let mut child = peerwire()
        .arg("info")
        .arg(&torrent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("peerwire starts");
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("a first line");
    drop(reader); // what `head -1` does after its line
    let out = common::wait_with_deadline(child, DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(first, "Tracker URL: http://127.0.0.1:6969/announce\n");
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.is_empty(), "stderr is not empty:\n{stderr}");
}

/// `info` writes through a buffer: counted by strace, the `write` calls on stdout (fd 1) for
/// 480 KB of output are a handful, not one per line (11,723 before the buffer).
#[test]
fn info_writes_stdout_in_a_few_system_calls() {
    let Some(strace) = common::need_program("strace") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let torrent = big_torrent(dir.path());
    let log = dir.path().join("strace.log");
    let mut traced = std::process::Command::new(strace);
    traced
        .args(["-f", "-qq", "-e", "trace=write", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_peerwire"))
        .arg("info")
        .arg(&torrent);
    let out = run_with_deadline(&mut traced, DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.stdout.is_empty() && stderr.contains("strace: ") {
        // ptrace forbidden in this container, say: there is no count to check.
        common::skip::<()>(&format!("strace cannot trace here: {stderr}"));
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let calls = std::fs::read_to_string(&log).expect("strace's log");
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines, 5 + 11_718, "the whole output arrived");
    let writes = calls.lines().filter(|l| l.contains("write(1,")).count();
    // 480 KB in 64 KiB buffers: 8 writes here; a little slack for how std's stdout splits them.
    assert!(
        (1..=20).contains(&writes),
        "{writes} write calls on stdout for {lines} lines"
    );
}

/// A link as the world writes it: keys in capitals, `xt` escaped, a first tracker with a
/// broken escape (dropped, with a warning on stderr naming it as written), a second tracker
/// in Latin-1 (its byte kept escaped).
#[test]
fn magnet_parse_reads_untidy_links_and_warns_about_a_broken_tracker() {
    let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    let broken = "udp%3A%2F%2Ftracker.example%3A6969%ZZannounce";
    let link = format!(
        "magnet:?XT=urn%3Abtih%3A{hex}&DN=caf%C3%A9&TR={broken}\
         &Tr=http%3A%2F%2Ftracker.example%2Fcaf%E9%2Fannounce"
    );
    let out = run_with_deadline(peerwire().args(["magnet_parse", &link]), DEADLINE);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout,
        format!("Tracker URL: http://tracker.example/caf%E9/announce\nInfo Hash: {hex}\n")
    );
    let warning = stderr
        .lines()
        .find(|l| l.contains("WARN"))
        .unwrap_or_else(|| panic!("no warning on stderr:\n{stderr}"));
    assert!(
        warning.contains(&format!("ignoring `TR={broken}`")),
        "{warning}"
    );
    assert!(
        warning.contains("is not followed by two hex digits"),
        "{warning}"
    );
}

/// The README opens with exactly the two set-up commands: the demo and the tests. (That the
/// demo works is `tests/demo.rs`.)
#[test]
fn the_readme_opens_with_the_demo_and_the_tests() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let first_block: Vec<&str> = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a first sh block")
        .lines()
        .collect();
    assert_eq!(first_block, ["cargo run --release -- demo", "cargo test"]);
    assert!(readme.starts_with("# peerwire\n\n```sh\ncargo run --release -- demo\n"));
}

#[test]
fn create_refuses_a_bad_piece_length_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"data").unwrap();
    let out = run_with_deadline(
        peerwire()
            .arg("create")
            .arg(dir.path().join("f"))
            .arg("-o")
            .arg(dir.path().join("f.torrent"))
            .args(["--piece-length", "1000"]),
        DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("piece length 1000 is not a power of two"),
        "{stderr}"
    );
    assert!(!dir.path().join("f.torrent").exists());
}

/// The commands `peerwire --help` lists (`help` itself aside).
fn commands_in_help() -> Vec<String> {
    let help = stdout_of(&["--help"]);
    let listed = help
        .split("Commands:\n")
        .nth(1)
        .expect("`--help` has a Commands: section");
    listed
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The flags one `--help` lists, short (`-o`) and long (`--output`): the leading words of each
/// line of its Options section. A flag named inside a description is not taken for one.
fn flags_in_help(args: &[&str]) -> Vec<String> {
    let help = stdout_of(args);
    let options = help
        .split("Options:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("`{}` has an Options: section", args.join(" ")));
    let mut flags = Vec::new();
    for line in options.lines().filter(|l| l.trim_start().starts_with('-')) {
        for word in line.split_whitespace() {
            if !word.starts_with('-') {
                break; // `<VALUE>` or the description
            }
            flags.push(
                word.trim_end_matches(',')
                    .trim_end_matches("...")
                    .to_string(),
            );
        }
    }
    flags
}

/// The words of a Markdown page that are code: every line of a fenced block, and the inside of
/// every inline code span (from a run of backticks to the next run of as many, as Markdown
/// reads them), split at spaces, with the brackets, quotes and punctuation of usage lines and
/// messages (`[--private]`, `-t URL]...`, `-o,`) trimmed off.
fn code_words(page: &str) -> Vec<String> {
    let mut code = Vec::new();
    let mut prose = String::new();
    let mut fenced = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            code.push(line.to_string());
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let mut rest = prose.as_str();
    while let Some(open) = rest.find('`') {
        let ticks = rest[open..].len() - rest[open..].trim_start_matches('`').len();
        let fence = &rest[open..open + ticks];
        let after = &rest[open + ticks..];
        // The closing run: as many backticks, not part of a longer run.
        let close = after
            .match_indices(fence)
            .map(|(at, _)| at)
            .find(|&at| !after[..at].ends_with('`') && !after[at + ticks..].starts_with('`'));
        match close {
            Some(at) => {
                code.push(after[..at].to_string());
                rest = &after[at + ticks..];
            }
            None => rest = after, // a lone backtick is text
        }
    }
    code.iter()
        .flat_map(|span| span.split_whitespace())
        .map(|word| {
            let word = word.trim_end_matches("...");
            word.trim_matches(|c: char| "[](),.;:|`'\"".contains(c))
                .to_string()
        })
        .filter(|word| !word.is_empty())
        .collect()
}

/// docs/cli.md is the command-line contract students read: every command and every flag the
/// binary lists in its `--help` must be on it, and every command of two words must take its
/// hyphen spelling as well as its underscore one. Conversely, every `--flag` the page names
/// must be one the binary has, so that the page can neither fall behind nor run ahead.
#[test]
fn docs_cli_md_names_every_command_and_flag_of_the_help() {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap();
    let commands = commands_in_help();
    assert!(
        commands.len() >= 15,
        "too few commands parsed: {commands:?}"
    );
    let named = code_words(&page);
    let page_names = |word: &str| named.iter().any(|w| w == word);
    let mut missing = Vec::new();
    let mut all_flags = flags_in_help(&["--help"]);
    for command in &commands {
        if !page_names(command) {
            missing.push(format!("command `{command}`"));
        }
        if command.contains('_') {
            let hyphen = command.replace('_', "-");
            if !page_names(&hyphen) {
                missing.push(format!("spelling `{hyphen}`"));
            }
            // The hyphen spelling is hidden from `--help`; it must still work.
            stdout_of(&[&hyphen, "--help"]);
        }
        all_flags.extend(flags_in_help(&[command, "--help"]));
    }
    all_flags.sort();
    all_flags.dedup();
    for flag in &all_flags {
        if !page_names(flag) {
            missing.push(format!("flag `{flag}`"));
        }
    }
    let unknown: Vec<&String> = named
        .iter()
        .filter(|word| {
            let name = word.strip_prefix("--").unwrap_or_default();
            name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        .filter(|word| !all_flags.contains(word))
        .collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/cli.md does not name: {missing:?}; it names flags peerwire does not have: {unknown:?}"
    );
}
