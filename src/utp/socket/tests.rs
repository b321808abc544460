//! The socket layer over real UDP on 127.0.0.1: streams that carry bytes both ways and
//! close cleanly, and the table's bounds against strangers.

use super::*;
use std::io::{Read, Write};

fn socket(accept: bool) -> (UtpSocket, UtpChannels) {
    let config = UtpConfig { accept, krpc: true };
    UtpSocket::bind("127.0.0.1:0".parse().unwrap(), config).unwrap()
}

/// A dialled stream and the stream the other socket accepted for it.
fn pair(a: &UtpSocket, b: &UtpSocket, b_in: &UtpChannels) -> (UtpStream, UtpStream) {
    let dialled = a.dialer().connect(b.addr, Duration::from_secs(5)).unwrap();
    // The acceptor hands a stream over only once the dialler's first data arrives.
    let mut d = dialled.try_clone();
    d.write_all(b"hi").unwrap();
    let mut accepted = b_in
        .incoming
        .as_ref()
        .unwrap()
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    let mut hi = [0u8; 2];
    accepted.read_exact(&mut hi).unwrap();
    assert_eq!(&hi, b"hi");
    (dialled, accepted)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn a_stream_carries_megabytes_both_ways_and_ends_cleanly() {
    let (a, _) = socket(false);
    let (b, b_in) = socket(true);
    let (dialled, accepted) = pair(&a, &b, &b_in);
    for s in [&dialled, &accepted] {
        s.set_read_timeout(Some(Duration::from_secs(10)));
        s.set_write_timeout(Some(Duration::from_secs(10)));
    }
    let up = pattern(6 << 20, 1);
    let down = pattern(1 << 20, 2);
    let sender = |mut s: UtpStream, bytes: Vec<u8>| {
        std::thread::spawn(move || {
            s.write_all(&bytes).unwrap();
            s.shutdown_write();
            s
        })
    };
    let writer_a = sender(dialled.try_clone(), up.clone());
    let writer_b = sender(accepted.try_clone(), down.clone());
    let read_all = |mut s: UtpStream| {
        std::thread::spawn(move || {
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        })
    };
    let got_b = read_all(accepted);
    let got_a = read_all(dialled);
    assert!(
        got_b.join().unwrap() == up,
        "6 MiB from the dialler, intact"
    );
    assert!(
        got_a.join().unwrap() == down,
        "1 MiB from the acceptor, intact"
    );
    let (wa, wb) = (writer_a.join().unwrap(), writer_b.join().unwrap());
    assert_eq!(
        wa.stats().timeouts,
        0,
        "no loss on loopback: {:?}",
        wa.stats()
    );
    drop((wa, wb));
    a.stop();
    b.stop();
}

#[test]
fn dialling_a_port_where_nobody_answers_times_out() {
    let (a, _) = socket(false);
    // A bound socket that never reads: our SYNs vanish into it.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let error = a
        .dialer()
        .connect(silent.local_addr().unwrap(), Duration::from_millis(1_500))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    a.stop();
}

#[test]
fn a_socket_that_does_not_accept_refuses_syns() {
    let (a, _) = socket(false);
    let (b, _) = socket(false);
    let error = a
        .dialer()
        .connect(b.addr, Duration::from_millis(1_200))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TimedOut);
    assert!(b.stats().refused.load(Ordering::Relaxed) >= 1);
    assert_eq!(b.connections(), 0);
    a.stop();
    b.stop();
}

#[test]
fn a_syn_flood_from_many_ports_fills_the_half_open_slots_and_no_more() {
    let (b, b_in) = socket(true);
    let strangers: Vec<UdpSocket> = (0..40)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut syn = Packet::new(PacketType::Syn, 0);
    syn.seq_nr = 1;
    for (i, s) in strangers.iter().enumerate() {
        for id in 0..5u16 {
            syn.connection_id = (i as u16) * 16 + id * 2;
            s.send_to(&syn.encode(), b.addr).unwrap();
        }
    }
    // 200 SYNs sent: the thread has taken them once the counters add up.
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = || b.stats().datagrams.load(Ordering::Relaxed);
    while seen() < 200 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(seen(), 200);
    assert_eq!(
        b.connections(),
        MAX_HALF_OPEN,
        "half-open connections are capped"
    );
    assert_eq!(
        b.stats().refused.load(Ordering::Relaxed),
        200 - MAX_HALF_OPEN as u64
    );
    let incoming = b_in.incoming.as_ref().unwrap();
    assert!(
        incoming.is_empty(),
        "no stream (no peer thread) for a bare SYN"
    );
    b.stop();
}

#[test]
fn packets_for_no_connection_and_garbage_change_nothing() {
    let (b, _) = socket(true);
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    for kind in [
        PacketType::Data,
        PacketType::State,
        PacketType::Fin,
        PacketType::Reset,
    ] {
        let mut p = Packet::new(kind, 4242);
        p.payload = vec![1; 10];
        stranger.send_to(&p.encode(), b.addr).unwrap();
    }
    stranger.send_to(&[0x41, 0, 1], b.addr).unwrap(); // a SYN cut short
    stranger.send_to(&[0xff; 30], b.addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.stats().datagrams.load(Ordering::Relaxed) < 6 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(b.stats().unknown.load(Ordering::Relaxed), 4);
    assert_eq!(b.stats().malformed.load(Ordering::Relaxed), 2);
    assert_eq!(b.connections(), 0);
    b.stop();
}

#[test]
fn krpc_goes_to_the_dht_channel() {
    let (b, b_in) = socket(true);
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(b"d1:y1:qe", b.addr).unwrap();
    let (from, bytes) = b_in
        .krpc
        .as_ref()
        .unwrap()
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    assert_eq!(from, stranger.local_addr().unwrap());
    assert_eq!(bytes, b"d1:y1:qe");
    b.stop();
}

#[test]
fn a_reset_reaches_the_other_sides_reader() {
    let (a, _) = socket(false);
    let (b, b_in) = socket(true);
    let (dialled, mut accepted) = pair(&a, &b, &b_in);
    accepted.set_read_timeout(Some(Duration::from_secs(5)));
    // Stopping a socket resets its connections.
    drop(dialled);
    a.stop();
    let mut buf = [0u8; 16];
    match accepted.read(&mut buf) {
        Ok(0) => {} // the FIN of the dropped stream got there first: a clean end
        Ok(n) => panic!("{n} bytes from nowhere"),
        Err(e) => assert!(matches!(e.kind(), ErrorKind::ConnectionReset), "{e}"),
    }
    b.stop();
}

#[test]
fn stopping_the_socket_wakes_a_blocked_reader_with_an_error() {
    let (a, _) = socket(false);
    let (b, b_in) = socket(true);
    let (_dialled, accepted) = pair(&a, &b, &b_in);
    let mut reader = accepted.try_clone();
    let blocked = std::thread::spawn(move || reader.read(&mut [0u8; 8]));
    b.stop();
    let error = blocked.join().unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BrokenPipe, "{error}");
    a.stop();
}
