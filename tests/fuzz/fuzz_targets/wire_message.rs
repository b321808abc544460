//! Fuzz target: the peer wire message decoder (`Message::read_from`), reading message after
//! message from the bytes as from a socket, until an error or the end of the input.
//!
//! Round trip: every message read (other than `Unknown`, whose payload is skipped) is
//! written back by `to_bytes` as exactly the bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::wire::Message;

fuzz_target!(|data: &[u8]| {
    let mut rest: &[u8] = data;
    loop {
        let before = rest;
        let Ok(message) = Message::read_from(&mut rest) else {
            break;
        };
        let consumed = &before[..before.len() - rest.len()];
        if !matches!(message, Message::Unknown { .. }) {
            assert_eq!(
                message.to_bytes(),
                consumed,
                "{message:?} did not round-trip"
            );
        }
        if rest.is_empty() {
            break;
        }
    }
});
