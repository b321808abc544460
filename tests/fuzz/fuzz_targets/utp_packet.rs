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
use peerwire::utp::connection::Connection;
use peerwire::utp::packet::{Packet, PacketType};
use peerwire::utp::{RECV_BUFFER, SEND_BUFFER};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = Packet::decode(data) {
        let again = Packet::decode(&packet.encode());
        assert!(
            again.as_ref().ok() == Some(&packet),
            "{packet:?} came back as {again:?}"
        );
    }
    let mut now = Instant::now();
    let mut syn = Packet::new(PacketType::Syn, 1000);
    syn.seq_nr = 1;
    let Some(mut conn) = Connection::accept(&syn, 100, now) else {
        return;
    };
    conn.write(&[7u8; 5000], now);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        now += Duration::from_millis(100);
        if let Ok(packet) = Packet::decode(datagram) {
            conn.handle_packet(packet, now);
        }
        conn.tick(now);
        for packet in conn.take_outgoing(now) {
            let _ = packet.encode();
        }
        let mut buf = [0u8; 2048];
        conn.read(&mut buf);
        let (sending, receiving) = conn.buffered();
        assert!(sending <= SEND_BUFFER && receiving <= RECV_BUFFER);
    }
});
