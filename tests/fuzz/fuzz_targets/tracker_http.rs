//! Fuzz target: an HTTP tracker's answer, parsed as `HttpTracker::announce` does
//! (`parse_dictionary`, then `parse_announce`), and the peer-list parsers on raw bytes.
//! Checks only that nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::tracker::{http, peers};

fuzz_target!(|data: &[u8]| {
    if let Ok(dict) = http::parse_dictionary(data) {
        let _ = http::parse_announce(&dict);
        if let Some(value) = dict.get("peers") {
            let _ = peers::parse_peers_value(value);
        }
    }
    // The compact lists alone, as they arrive in `peers` / `peers6`.
    let _ = peers::parse_compact_v4(data);
    let _ = peers::parse_compact_v6(data);
});
