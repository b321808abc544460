//! Fuzz target: uTP packets (BEP 29, "uTorrent transport protocol"): `Packet::decode`, as the
//! `utp` thread will read every datagram, then one connection fed a stream of packets.
//!
//! Round trip: a packet that decodes, encoded again, decodes to the same value (unknown
//! extensions are skipped on decode, so they are not expected back). Then the input is read as
//! datagrams, each after a one-byte length, and every one that decodes goes to a connection
//! that accepted a SYN and has data to send, 100 ms apart, with `tick` and `take_outgoing`
//! between: no panic, and its buffers stay within their bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../checks/utp_packet.rs");

fuzz_target!(|data: &[u8]| check_utp_packet(data));
