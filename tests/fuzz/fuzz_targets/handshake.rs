//! Fuzz target: the handshake reader (`Handshake::read_from`).
//!
//! Round trip: a handshake that was read is written back by `to_bytes` as the 68 bytes it
//! was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::wire::Handshake;

fuzz_target!(|data: &[u8]| {
    let mut reader: &[u8] = data;
    if let Ok(handshake) = Handshake::read_from(&mut reader) {
        assert_eq!(handshake.to_bytes()[..], data[..68]);
        let _ = handshake.supports_extensions();
    }
});
