//! Fuzz target: the LSD announce parser (`lsd::Announce::parse`, BEP 14), on the input as one
//! datagram from the multicast group — anyone on the network can send one.
//!
//! Round trip: an announce that parses, written again by `to_bytes`, parses to the same port
//! and info hashes (the cookie is opaque text, cut to a few dozen bytes when read, so it is
//! not compared).
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::lsd::Announce;

fuzz_target!(|data: &[u8]| {
    if let Ok(announce) = Announce::parse(data) {
        let bytes = announce.to_bytes();
        let again = Announce::parse(&bytes)
            .unwrap_or_else(|e| panic!("{:?} does not parse: {e}", String::from_utf8_lossy(&bytes)));
        assert_eq!(again.port, announce.port);
        assert_eq!(again.info_hashes, announce.info_hashes);
    }
});
