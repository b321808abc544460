//! Fuzz target: an HTTP tracker's answer, parsed as `HttpTracker::announce` does
//! (`parse_dictionary`, then `parse_announce`), as `HttpTracker::scrape` does (`parse_scrape`,
//! for an info hash taken from the input), and the compact peer-list parsers (`encoding`) on
//! raw bytes.
//! Checks only that nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::encoding;
use peerwire::metainfo::InfoHash;
use peerwire::tracker::{http, peers};

fuzz_target!(|data: &[u8]| {
    if let Ok(dict) = http::parse_dictionary(data) {
        let _ = http::parse_announce(&dict);
        if let Some(value) = dict.get("peers") {
            let _ = peers::parse_peers_value(value);
        }
    }
    // A scrape, asked about the info hash found at the start of the input if any, so the
    // fuzzer can reach the counts of a torrent it names.
    let mut hash = [0u8; 20];
    let start = data.len().min(12); // after `d5:filesd20:`
    let named = &data[start..data.len().min(start + 20)];
    hash[..named.len()].copy_from_slice(named);
    let _ = http::parse_scrape(data, InfoHash(hash));
    // The compact lists alone, as they arrive in `peers` / `peers6`.
    let _ = encoding::parse_compact_v4(data);
    let _ = encoding::parse_compact_v6(data);
});
