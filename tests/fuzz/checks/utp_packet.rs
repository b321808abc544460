// The uTP packet property, shared word for word by the fuzz target
// (`fuzz_targets/utp_packet.rs`) and the seed replay in `cargo test` (`tests/fuzz_corpus.rs`),
// which both `include!` this file: round trip of one packet, then one connection fed the input
// as datagrams (each after a one-byte length), its buffers within their bounds.

fn check_utp_packet(data: &[u8]) {
    use peerwire::utp::connection::Connection;
    use peerwire::utp::packet::{Packet, PacketType};
    use peerwire::utp::{RECV_BUFFER, SEND_BUFFER};
    use std::time::{Duration, Instant};

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
}
