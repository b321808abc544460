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
