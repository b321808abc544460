//! The demo and tit-for-tat for real (walkthrough §11–§12): a rate-limited peerwire
//! seeder and four peerwire leechers started together. Every leecher must finish, and each must
//! have got a good share of its pieces from the other leechers, as the statistics of the demo
//! summary show (each piece credited to one sender, so the counts add up). Then `peerwire demo`
//! itself prints its summary.

pub mod common;

use peerwire::demo::{DemoConfig, run};
use std::time::Duration;

#[test]
fn leechers_trade_with_each_other_when_the_seeder_is_slow() {
    let config = DemoConfig {
        size_mib: 16,
        leechers: 4,
        seeder_rate: Some(2 << 20), // 2 MiB/s: the seeder alone would need 32 s for 4 copies
        piece_length: 64 * 1024,
        progress: false,
        deadline: Duration::from_secs(120),
        ..DemoConfig::default()
    };
    let report = run(&config).expect("the demo swarm completes");
    let summary = report.summary_lines().join("\n");
    assert_eq!(report.participants.len(), 5);
    for n in 1..=4 {
        let leecher = &report.participants[n];
        assert!(
            leecher.completed_after.is_some(),
            "{} did not finish\n{summary}",
            leecher.name
        );
        let (from_leechers, from_seeder) = report.pieces_from(n);
        assert_eq!(
            leecher.pieces_downloaded, report.num_pieces as u32,
            "{}: started empty\n{summary}",
            leecher.name
        );
        // Each verified piece is credited to exactly one sender, endgame or not, even when
        // that sender's connection was replaced by a newer one before the check (the
        // scheduler remembers every address of a peer id).
        let credited = from_leechers + from_seeder;
        assert_eq!(
            credited, leecher.pieces_downloaded,
            "{}: {credited} pieces credited for {} downloaded\n{summary}",
            leecher.name, leecher.pieces_downloaded
        );
        let share = f64::from(from_leechers) / f64::from(from_leechers + from_seeder);
        assert!(
            share >= 0.30,
            "{} got only {:.0} % of its pieces from other leechers\n{summary}",
            leecher.name,
            share * 100.0
        );
    }
    let seeder_sent: u64 = (1..=4).map(|to| report.uploaded(0, to)).sum();
    let total = 16u64 << 20;
    assert!(
        seeder_sent < 4 * total,
        "the seeder sent everything itself ({seeder_sent} bytes)\n{summary}"
    );
    for (from, to) in [(1, 2), (2, 1)] {
        assert!(
            report.uploaded(from, to) > 0,
            "no trade {from} -> {to}\n{summary}"
        );
    }
}

#[test]
fn the_demo_command_prints_its_summary() {
    let mut demo = common::peerwire();
    demo.args([
        "demo",
        "--size",
        "4",
        "--peers",
        "2",
        "--seeder-rate",
        "2048",
    ]);
    let stdout = common::run_ok(&mut demo, Duration::from_secs(120));
    for expected in [
        "swarm: 1 seeder (upload limit 2048 KiB/s) + 2 leechers on 127.0.0.1",
        "file: 4 MiB in",
        "time: ",
        "uploaded MiB (row sent to column):",
        "pieces each leecher got from other leechers rather than the seeder",
        "  leecher 2: ",
        "wire trace sample (leecher 1, first messages):",
        "Handshake {",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    // `  leecher 1: 6 from leechers, 10 from the seeder, of 16 (38 % from leechers)`: the
    // two counts add up to the pieces downloaded, as printed.
    for n in 1..=2 {
        let prefix = format!("  leecher {n}: ");
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no line for leecher {n} in:\n{stdout}"));
        // (`, 1 from a peer that had since reconnected` may come before `of`.)
        let numbers: Vec<u32> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|word| word.parse().ok())
            .collect();
        let (of, counts) = match numbers[..] {
            [a, b, of, _share] => (of, a + b),
            [a, b, unnamed, of, _share] => (of, a + b + unnamed),
            _ => panic!("not `A from leechers, B from the seeder, of C (D %...)`: {line}"),
        };
        assert_eq!(counts, of, "{line}");
        assert_eq!(of, 16, "4 MiB in pieces of 256 KiB: {line}");
    }
    let seeder_row = stdout
        .lines()
        .find(|l| l.starts_with("seeder "))
        .expect("a seeder row");
    assert_eq!(seeder_row.split_whitespace().count(), 4, "{seeder_row}");
    // The trace sample: one indented message per line, each the way `--trace` prints it.
    let sample = stdout.split("first messages):\n").nth(1).expect("a sample");
    for line in sample.lines() {
        let trace = line
            .strip_prefix("  ")
            .unwrap_or_else(|| panic!("not indented: {line}"));
        peerwire::trace::parse_trace_line(trace)
            .unwrap_or_else(|e| panic!("not a trace line: {line}: {e:?}"));
    }
}

/// `demo --dht`: no tracker at all. The torrent names none; the members' DHT nodes find each
/// other from the demo's first node, the seeder announces itself, the leechers look it up.
#[test]
fn the_demo_swarm_finds_itself_through_the_dht_with_no_tracker() {
    let config = DemoConfig {
        size_mib: 4,
        leechers: 3,
        seeder_rate: None,
        piece_length: 64 * 1024,
        progress: false,
        deadline: Duration::from_secs(120),
        dht: true,
        ..DemoConfig::default()
    };
    let report = run(&config).expect("the trackerless demo swarm completes");
    let summary = report.summary_lines().join("\n");
    assert!(
        summary.contains("no tracker: found through the DHT"),
        "{summary}"
    );
    for n in 1..=3 {
        let leecher = &report.participants[n];
        assert!(
            leecher.completed_after.is_some(),
            "{} did not finish\n{summary}",
            leecher.name
        );
        assert_eq!(
            leecher.pieces_downloaded, report.num_pieces as u32,
            "{summary}"
        );
    }
}

/// `demo --peers 50`: 51 sessions in one process (about 3,000 threads and 5,300 descriptors)
/// complete, and the summary is the compact one: the spread of the completion times, the
/// seeder's share, the top uploaders; no 51 × 51 matrix and no line per leecher.
#[test]
fn fifty_leechers_complete_and_the_summary_stays_compact() {
    // Raised for this process alone, up to the hard limit: the usual soft limit of 1,024 open
    // files is too low for 51 members (the demo says so and stops before it starts).
    let mut demo = std::process::Command::new("/bin/sh");
    demo.args([
        "-c",
        "ulimit -n 8192 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_peerwire"),
        "demo",
        "--peers",
        "50",
        "--size",
        "4",
    ]);
    demo.env("PEERWIRE_DHT_ROUTERS", "")
        .env("PEERWIRE_LSD", "off");
    let out = common::run_with_deadline(&mut demo, Duration::from_secs(240));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("open files") {
        eprintln!("SKIPPED: this machine's open-file limit is too low for 51 members: {stderr}");
        return;
    }
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    for expected in [
        "swarm: 1 seeder (upload limit 8192 KiB/s) + 50 leechers on 127.0.0.1",
        "  leechers complete after: min ",
        "  slowest: leecher ",
        "uploaded: ",
        "top uploaders (MiB sent, to how many of the other 50 members):",
        "  share from leechers: min ",
        "  least from leechers: leecher ",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    let summary = stdout
        .split("wire trace sample")
        .next()
        .expect("split yields a first part");
    assert!(
        !summary.contains("row sent to column"),
        "a matrix:\n{stdout}"
    );
    assert!(
        !summary.contains(" complete after "),
        "a line per leecher:\n{stdout}"
    );
    assert!(summary.lines().count() < 20, "not compact:\n{summary}");
    assert!(
        summary.lines().all(|l| l.len() <= 200),
        "a line too long:\n{summary}"
    );
    // The seeder's and the leechers' shares add up to everything uploaded.
    let shares = summary
        .lines()
        .find(|l| l.starts_with("uploaded: "))
        .expect("an uploaded line");
    let percents: Vec<u32> = shares
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter(|w| !w.is_empty())
        .filter_map(|w| w.parse::<f64>().ok())
        .map(|v| v as u32)
        .collect();
    match percents[..] {
        [_, _, seeder_percent, _, leechers_percent] => {
            let sum = seeder_percent + leechers_percent;
            assert!((99..=101).contains(&sum), "{shares}");
        }
        _ => panic!("not `uploaded: A MiB in all; ... B MiB (C %), ... D MiB (E %)`: {shares}"),
    }
}
