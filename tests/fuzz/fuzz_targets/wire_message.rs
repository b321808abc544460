//! Fuzz target: the peer wire message decoder (`Message::read_from`), reading message after
//! message from the bytes as from a socket, until an error or the end of the input; and the
//! answer to every BEP 52 hash request among them (`PieceLayers::answer`).
//!
//! Round trip: every message read (other than `Unknown`, whose payload is skipped) is
//! written back by `to_bytes` as exactly the bytes it was read from. A hash request, put to a
//! small tree as if it named its file, gets a reject or exactly the hashes its header implies,
//! and with the most proof layers the tree allows they prove to the root.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../checks/wire_message.rs");

fuzz_target!(|data: &[u8]| check_wire_message(data));
