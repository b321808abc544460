//! Fuzz target: the magnet link parser (`Magnet::parse`), on the input read as UTF-8 with
//! bad bytes replaced (a link reaches us as a `String` from the command line).
//!
//! Round trip: `to_uri` promises that parsing its result gives back an equal `Magnet`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::magnet::Magnet;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(magnet) = Magnet::parse(&text) {
        let uri = magnet.to_uri();
        let again = Magnet::parse(&uri).unwrap_or_else(|e| panic!("{uri:?} does not parse: {e}"));
        assert_eq!(again, magnet, "{uri:?} did not round-trip");
    }
});
