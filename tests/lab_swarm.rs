//! A swarm behind slow links: one seeder and six leechers, peerwire and libtorrent mixed, each
//! in a network namespace of its own with a shaped uplink and downlink (the network lab,
//! `tests/lab/lab.py`). BEP 3 (The BitTorrent Protocol Specification) is a protocol for
//! swarms: the leechers trade the pieces they already have, so the seeder sends far less than
//! one copy per leecher. This is where that is checked on real links, with peers learned from
//! a tracker (`peerwire tracker`), not on 127.0.0.1 with one seeder and one leecher.
//!
//! - a peerwire seeder, three peerwire and three libtorrent leechers;
//! - a libtorrent seeder, the same leechers.
//!
//! Each case runs the lab's command line with a deadline and reads its JSON result: every
//! leecher completed and its file's SHA-1 is the source's (the lab checks the bytes), and the
//! seeder's link carried well under one copy per leecher, while the leechers' links carried
//! the rest.
//!
//! The lab runs through `common::run_lab` (`tests/common/lab.rs`), which skips loudly without
//! root or the programs the lab needs, and fails then under `PEERWIRE_INTEROP=require`.

pub mod common;

use common::lab::{Json, MIB, Reader, run_lab};

/// Every leecher complete with the right bytes, and the swarm did its work: the seeder's
/// link carried well under one copy per leecher, the leechers' links the rest.
fn check_swarm(result: &Json, leechers: usize) {
    let size = result
        .get("size")
        .number()
        .expect("the result has the size");
    let items = result.get("leechers").list();
    assert_eq!(items.len(), leechers, "one entry per leecher: {result:?}");
    for leecher in items {
        let who = format!(
            "{} {}",
            leecher.get("kind").text(),
            leecher.get("host").text()
        );
        assert_eq!(
            leecher.get("sha1_ok"),
            &Json::Bool(true),
            "{who}: wrong bytes"
        );
        assert!(
            leecher.get("done_s").number().is_some(),
            "{who}: never complete"
        );
    }
    let seeder_sent = (result.get("seeder").get("sent").number()).expect("the seeder's bytes");
    let leechers_sent: f64 = items.iter().filter_map(|l| l.get("sent").number()).sum();
    let copies = leechers as f64 * size;
    eprintln!(
        "seeder sent {:.1} MiB, leechers {:.1} MiB, for {leechers} copies of {:.1} MiB; last leecher at {:.1} s",
        seeder_sent / MIB,
        leechers_sent / MIB,
        size / MIB,
        result.get("T_s").number().unwrap_or(f64::NAN)
    );
    assert!(
        seeder_sent < 0.6 * copies,
        "the seeder sent {:.1} MiB, not well under one copy per leecher ({:.1} MiB): the \
         leechers did not trade pieces",
        seeder_sent / MIB,
        copies / MIB
    );
    assert!(
        leechers_sent > 0.3 * copies,
        "the leechers sent each other only {:.1} MiB of the {:.1} MiB they received",
        leechers_sent / MIB,
        copies / MIB
    );
}

#[test]
fn peerwire_seeder_with_peerwire_and_libtorrent_leechers() {
    let Some(result) = run_lab("peerwire", "peerwire:3,libtorrent:3", 4, &[]) else {
        return;
    };
    check_swarm(&result, 6);
}

#[test]
fn libtorrent_seeder_with_peerwire_and_libtorrent_leechers() {
    let Some(result) = run_lab("libtorrent", "peerwire:3,libtorrent:3", 4, &[]) else {
        return;
    };
    check_swarm(&result, 6);
}

#[test]
fn the_json_reader_reads_what_python_writes() {
    let value = Reader::parse(r#"{"a": [1, -2.5e3, true, null], "b": "x\"\u00e9\n", "c": {}}"#)
        .expect("valid JSON");
    assert_eq!(value.get("a").list()[1], Json::Number(-2500.0));
    assert_eq!(value.get("b").text(), "x\"\u{e9}\n");
    assert_eq!(value.get("c"), &Json::Object(Vec::new()));
    assert!(Reader::parse("{\"a\": 1} x").is_err());
    assert!(Reader::parse("[1, 2").is_err());
}
