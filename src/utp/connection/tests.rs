//! Two connections wired together through an in-memory link with a simulated clock: every
//! packet goes through `encode` and `decode`, the link may drop, duplicate and reorder
//! (seeded, so a failure repeats), and time jumps from one deadline to the next.

use super::*;
use crate::utp::packet::SelectiveAck;
use crate::utp::{MAX_HELD, MAX_IN_FLIGHT, MAX_TIMEOUT, MIN_CWND};

/// What the link does to each packet.
#[derive(Clone, Copy)]
struct Faults {
    delay: Duration,
    /// Percentages.
    drop: u32,
    duplicate: u32,
    /// This share of packets is held back by up to `jitter` more.
    reorder: u32,
    jitter: Duration,
}

const CLEAN: Faults = Faults {
    delay: Duration::from_millis(10),
    drop: 0,
    duplicate: 0,
    reorder: 0,
    jitter: Duration::ZERO,
};

const LOSSY: Faults = Faults {
    delay: Duration::from_millis(10),
    drop: 5,
    duplicate: 3,
    reorder: 10,
    jitter: Duration::from_millis(30),
};

struct Pair {
    now: Instant,
    sides: [Connection; 2],
    /// (arrival, order sent, to side, datagram)
    wire: Vec<(Instant, u64, usize, Vec<u8>)>,
    sent: u64,
    faults: Faults,
    rng: fastrand::Rng,
    events: [Vec<Event>; 2],
}

impl Pair {
    /// Side 0 dials with receive id 1000; side 1 accepts with first sequence number `seq`.
    fn open(faults: Faults, seed: u64, seq: u16) -> Pair {
        let now = Instant::now();
        let mut dialer = Connection::connect(1000, now);
        let syn = dialer.take_outgoing(now).remove(0);
        let syn = Packet::decode(&syn.encode()).unwrap();
        let acceptor = Connection::accept(&syn, seq, now).unwrap();
        let mut pair = Pair {
            now,
            sides: [dialer, acceptor],
            wire: Vec::new(),
            sent: 0,
            faults,
            rng: fastrand::Rng::with_seed(seed),
            events: [Vec::new(), Vec::new()],
        };
        pair.pump();
        pair
    }

    /// Moves each side's packets onto the wire.
    fn pump(&mut self) {
        for from in 0..2 {
            for packet in self.sides[from].take_outgoing(self.now) {
                let bytes = packet.encode();
                let f = self.faults;
                if self.rng.u32(0..100) < f.drop {
                    continue;
                }
                let copies = if self.rng.u32(0..100) < f.duplicate {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let mut at = self.now + f.delay;
                    if self.rng.u32(0..100) < f.reorder {
                        at += f.jitter.mul_f64(self.rng.f64());
                    }
                    self.sent += 1;
                    self.wire.push((at, self.sent, 1 - from, bytes.clone()));
                }
            }
            self.events[from].extend(self.sides[from].take_events());
        }
    }

    /// Advances to the next arrival or deadline and handles it; false when nothing is left.
    fn step(&mut self) -> bool {
        self.pump();
        let arrival = self.wire.iter().map(|w| w.0).min();
        let deadlines = self.sides.iter().filter_map(Connection::next_deadline);
        let Some(next) = arrival.into_iter().chain(deadlines).min() else {
            return false;
        };
        self.now = self.now.max(next);
        self.wire.sort_by_key(|w| (w.0, w.1));
        while self.wire.first().is_some_and(|w| w.0 <= self.now) {
            let (_, _, to, bytes) = self.wire.remove(0);
            let packet = Packet::decode(&bytes).expect("our own packets decode");
            // The router's check: a packet reaches the connection whose receive id it names
            // (a repeated SYN names the acceptor's send id).
            let side = &self.sides[to];
            let routed = packet.connection_id == side.recv_id()
                || (packet.kind == PacketType::Syn && packet.connection_id == side.send_id());
            assert!(
                routed,
                "side {to} got a packet for id {}",
                packet.connection_id
            );
            self.sides[to].handle_packet(packet, self.now);
        }
        for side in &mut self.sides {
            side.tick(self.now);
        }
        self.pump();
        true
    }
}

fn stream(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// Sends `len` bytes each way, closes both sides, and returns the simulated time it took.
fn transfer(faults: Faults, seed: u64, seq: u16, len: usize) -> (Pair, Duration) {
    transfer_lens(faults, seed, seq, [len, len])
}

/// Side 0 sends `lens[0]` bytes, side 1 `lens[1]`, then both close.
fn transfer_lens(faults: Faults, seed: u64, seq: u16, lens: [usize; 2]) -> (Pair, Duration) {
    let mut pair = Pair::open(faults, seed, seq);
    let start = pair.now;
    let data = [stream(lens[0], seed), stream(lens[1], seed + 1)];
    let mut written = [0usize; 2];
    let mut got: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut closed = [false; 2];
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..2_000_000 {
        for side in 0..2 {
            let conn = &mut pair.sides[side];
            if written[side] < lens[side] {
                written[side] += conn.write(&data[side][written[side]..], pair.now);
            } else if !closed[side] {
                conn.close(pair.now);
                closed[side] = true;
            }
            loop {
                let n = conn.read(&mut buf);
                if n == 0 {
                    break;
                }
                got[side].extend_from_slice(&buf[..n]);
            }
        }
        if pair.sides.iter().all(|c| c.state().is_terminal()) {
            break;
        }
        assert!(pair.step(), "nothing left to do, yet not closed");
        assert!(
            pair.now - start < Duration::from_secs(600),
            "10 simulated minutes"
        );
    }
    let states = [pair.sides[0].state(), pair.sides[1].state()];
    let at = pair.now - start;
    assert!(
        got[0] == data[1],
        "{states:?} {:?} at {at:?}: side 0 got {} of {} bytes, or wrong ones",
        pair.events,
        got[0].len(),
        lens[1]
    );
    assert!(
        got[1] == data[0],
        "side 1 got {} of {} bytes, or wrong ones",
        got[1].len(),
        lens[0]
    );
    for side in 0..2 {
        assert_eq!(
            pair.sides[side].state(),
            State::Closed,
            "side {side}: {states:?}, {:?} / {:?}, at {at:?}, events {:?}",
            pair.sides[0].stats(),
            pair.sides[1].stats(),
            pair.events
        );
        assert!(pair.sides[side].is_eof());
        let events = &pair.events[side];
        assert_eq!(
            events.first(),
            Some(&Event::Connected),
            "side {side}: {events:?}"
        );
        assert!(
            events.contains(&Event::EndOfStream),
            "side {side}: {events:?}"
        );
        assert_eq!(
            events.last(),
            Some(&Event::Closed),
            "side {side}: {events:?}"
        );
    }
    let elapsed = pair.now - start;
    (pair, elapsed)
}

#[test]
fn the_handshake_uses_the_beps_connection_ids() {
    let now = Instant::now();
    let mut dialer = Connection::connect(1000, now);
    assert_eq!((dialer.recv_id(), dialer.send_id()), (1000, 1001));
    let syn = dialer.take_outgoing(now);
    assert_eq!(syn.len(), 1);
    assert_eq!(syn[0].kind, PacketType::Syn);
    assert_eq!(
        syn[0].connection_id, 1000,
        "the SYN names the id the dialer receives on"
    );
    assert_eq!(syn[0].seq_nr, 1);
    assert!(Connection::accept(&Packet::new(PacketType::Data, 5), 1, now).is_none());
    let mut acceptor = Connection::accept(&syn[0], 7000, now).unwrap();
    assert_eq!((acceptor.recv_id(), acceptor.send_id()), (1001, 1000));
    assert_eq!(acceptor.state(), State::SynRecv);
    let answer = acceptor.take_outgoing(now);
    assert_eq!(answer.len(), 1);
    let state = &answer[0];
    assert_eq!(state.kind, PacketType::State);
    assert_eq!(
        (state.connection_id, state.seq_nr, state.ack_nr),
        (1000, 7000, 1)
    );
    // A repeated SYN (our STATE was lost) is answered again.
    acceptor.handle_packet(syn[0].clone(), now);
    assert_eq!(acceptor.take_outgoing(now).len(), 1);
    dialer.handle_packet(state.clone(), now);
    assert_eq!(dialer.state(), State::Connected);
    assert_eq!(dialer.take_events(), [Event::Connected]);
    assert_eq!(dialer.write(b"hello", now), 5);
    let data = dialer.take_outgoing(now);
    assert_eq!(data.len(), 1);
    assert_eq!((data[0].connection_id, data[0].seq_nr), (1001, 2));
    assert_eq!(
        data[0].ack_nr, 6999,
        "the STATE's seq_nr is the acceptor's next packet"
    );
    acceptor.handle_packet(data[0].clone(), now);
    assert_eq!(acceptor.take_events(), [Event::Connected]);
    let mut buf = [0u8; 16];
    assert_eq!(acceptor.read(&mut buf), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(acceptor.write(b"hi", now), 2);
    let reply = acceptor.take_outgoing(now);
    assert_eq!(
        (reply[0].kind, reply[0].seq_nr, reply[0].ack_nr),
        (PacketType::Data, 7000, 2)
    );
    dialer.handle_packet(reply[0].clone(), now);
    assert_eq!(dialer.read(&mut buf), 2);
}

#[test]
fn one_megabyte_each_way_arrives_byte_exact() {
    let (pair, elapsed) = transfer(CLEAN, 1, 30_000, 1 << 20);
    assert_eq!(pair.sides[0].stats().timeouts, 0);
    assert_eq!(pair.sides[0].stats().fast_retransmits, 0);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn a_lossy_reordering_duplicating_link_still_delivers_byte_exact() {
    for seed in [7, 8, 9] {
        let (pair, elapsed) = transfer(LOSSY, seed, 40_000, 1 << 20);
        let stats = pair.sides[0].stats();
        assert!(
            stats.fast_retransmits + stats.timeouts > 0,
            "seed {seed}: {stats:?}"
        );
        assert!(stats.duplicates > 0, "seed {seed}: {stats:?}");
        assert!(
            elapsed < Duration::from_secs(300),
            "seed {seed}: {elapsed:?}"
        );
    }
}

#[test]
fn one_way_over_a_lossy_link_leans_on_pure_acks() {
    // Only side 0 sends: every ack is an ST_STATE, so duplicate acks and selective ACKs come
    // without data to carry them.
    let (pair, _) = transfer_lens(LOSSY, 11, 20_000, [1 << 20, 0]);
    let stats = pair.sides[0].stats();
    assert!(stats.fast_retransmits > 0, "{stats:?}");
    let (pair, _) = transfer_lens(LOSSY, 12, 20_000, [0, 1 << 20]);
    assert!(pair.sides[1].stats().fast_retransmits > 0);
}

#[test]
fn sequence_numbers_wrap_past_65535() {
    // The acceptor starts 20 packets before the wrap; about 750 packets go each way.
    let (pair, _) = transfer(CLEAN, 3, 65_516, 1 << 20);
    assert!(
        pair.sides[1].seq_nr < 1_000,
        "wrapped: {}",
        pair.sides[1].seq_nr
    );
    let (pair, _) = transfer(LOSSY, 4, 65_530, 256 * 1024);
    assert!(pair.sides[1].seq_nr < 1_000);
}

/// A connected pair with nothing in flight, at time `now`, both handshake packets handled
/// with no delay (so the round trip measured is zero and the timeout is 500 ms).
fn connected(seq: u16) -> (Connection, Connection, Instant) {
    let now = Instant::now();
    let mut a = Connection::connect(1000, now);
    let syn = a.take_outgoing(now).remove(0);
    let mut b = Connection::accept(&syn, seq, now).unwrap();
    for p in b.take_outgoing(now) {
        a.handle_packet(p, now);
    }
    assert_eq!(a.state(), State::Connected);
    a.take_events();
    (a, b, now)
}

/// A pure ack from `b`'s point of view, acking up to `ack_nr`.
fn ack(b: &Connection, ack_nr: u16, wnd: u32) -> Packet {
    let mut p = Packet::new(PacketType::State, b.send_id());
    p.seq_nr = b.seq_nr;
    p.ack_nr = ack_nr;
    p.wnd_size = wnd;
    p
}

#[test]
fn timeouts_resend_the_oldest_at_once_the_rest_as_the_window_opens_and_back_off() {
    let (mut a, b, t0) = connected(500);
    a.write(&vec![1u8; 3 * MAX_PAYLOAD], t0);
    let first = a.take_outgoing(t0);
    assert_eq!(first.len(), 2, "the initial window is two packets");
    assert_eq!(a.timeout(), Duration::from_millis(500));
    let mut now = t0;
    let mut gaps = Vec::new();
    for _ in 0..4 {
        let deadline = a.next_deadline().unwrap();
        gaps.push(deadline - now);
        now = deadline;
        a.tick(now);
        let resent = a.take_outgoing(now);
        assert_eq!(resent.len(), 1, "only the oldest is resent at once");
        assert_eq!(resent[0].seq_nr, first[0].seq_nr);
        assert_eq!(a.cwnd(), MIN_CWND);
    }
    assert_eq!(gaps, [500, 1000, 2000, 4000].map(Duration::from_millis));
    assert_eq!(a.stats().timeouts, 4);
    // The ack of the oldest resets the back-off and lets the next packet go.
    a.handle_packet(ack(&b, first[0].seq_nr, 1 << 20), now);
    assert_eq!(a.timeout(), Duration::from_millis(500));
    // The second packet, out as long as the first, was taken as lost with it: it goes
    // again at once, before any new data, without waiting for a timeout of its own.
    let next = a.take_outgoing(now);
    assert_eq!(next[0].seq_nr, first[1].seq_nr, "{next:?}");
    assert_eq!(a.stats().timeouts, 4);
}

#[test]
fn a_silent_peer_times_out_within_the_bound() {
    let t0 = Instant::now();
    let mut a = Connection::connect(9, t0);
    a.take_outgoing(t0);
    let mut now = t0;
    let mut syns = 0;
    while let Some(deadline) = a.next_deadline() {
        assert!(deadline > now, "no spinning");
        now = deadline;
        a.tick(now);
        syns += a.take_outgoing(now).len();
    }
    assert_eq!(a.state(), State::TimedOut);
    assert_eq!(now - t0, SILENCE_LIMIT);
    assert_eq!(syns, 4, "resent after 1, 3, 7 and 15 s");
    assert_eq!(a.take_events(), [Event::TimedOut]);
    // And after the handshake, a peer that stops answering mid-transfer.
    let (mut a, _b, t0) = connected(1);
    a.write(&[5u8; 10_000], t0);
    let mut now = t0;
    while let Some(deadline) = a.next_deadline() {
        now = deadline;
        a.tick(now);
        a.take_outgoing(now);
    }
    assert_eq!(a.state(), State::TimedOut);
    assert_eq!(now - t0, SILENCE_LIMIT);
    assert!(a.timeout() <= MAX_TIMEOUT);
}

#[test]
fn three_duplicate_acks_resend_the_next_packet() {
    let (mut a, b, t0) = connected(100);
    a.handle_packet(ack(&b, b.receiver.ack_nr(), 1 << 20), t0);
    // Grow the window first so several packets are in flight.
    for _ in 0..5 {
        a.congestion.on_ack(a.cwnd());
    }
    a.write(&vec![2u8; 8 * MAX_PAYLOAD], t0);
    let sent = a.take_outgoing(t0);
    assert!(sent.len() >= 5, "{}", sent.len());
    let cwnd = a.cwnd();
    let lost = sent[0].seq_nr;
    for i in 0..3 {
        assert!(a.take_outgoing(t0).is_empty(), "not after {i} duplicates");
        a.handle_packet(ack(&b, lost.wrapping_sub(1), 1 << 20), t0);
    }
    let resent = a.take_outgoing(t0);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].seq_nr, lost);
    assert_eq!(a.stats().fast_retransmits, 1);
    assert!(a.cwnd() <= cwnd / 2 + 1, "{} after {cwnd}", a.cwnd());
    // A fourth duplicate does not resend it again.
    a.handle_packet(ack(&b, lost.wrapping_sub(1), 1 << 20), t0);
    assert!(a.take_outgoing(t0).is_empty());
}

#[test]
fn a_selective_ack_of_three_later_packets_resends_the_hole() {
    let (mut a, b, t0) = connected(100);
    for _ in 0..5 {
        a.congestion.on_ack(a.cwnd());
    }
    a.write(&vec![3u8; 6 * MAX_PAYLOAD], t0);
    let sent = a.take_outgoing(t0);
    let hole = sent[0].seq_nr;
    let mut p = ack(&b, hole.wrapping_sub(1), 1 << 20);
    // Bit 0 is ack_nr + 2 = hole + 1.
    p.selective_ack = Some(SelectiveAck::from_received([0, 1], 64));
    a.handle_packet(p.clone(), t0);
    assert!(
        a.take_outgoing(t0).is_empty(),
        "two later packets are not enough"
    );
    p.selective_ack = Some(SelectiveAck::from_received([0, 1, 2], 64));
    a.handle_packet(p, t0);
    let resent = a.take_outgoing(t0);
    assert_eq!(resent.iter().map(|p| p.seq_nr).collect::<Vec<_>>(), [hole]);
    assert_eq!(a.bytes_in_flight(), (sent.len() - 3) * MAX_PAYLOAD);
}

#[test]
fn ledbat_grows_the_window_under_the_target_and_shrinks_it_over() {
    let (mut a, b, t0) = connected(100);
    let mut now = t0;
    let send_and_ack = |a: &mut Connection, delay_us: u32, now: Instant| {
        a.write(&vec![4u8; 4 * MAX_PAYLOAD], now);
        let sent = a.take_outgoing(now);
        let last = sent.last().unwrap().seq_nr;
        let mut p = ack(&b, last, 1 << 20);
        p.timestamp_difference_micros = delay_us;
        a.handle_packet(p, now + Duration::from_millis(20));
    };
    send_and_ack(&mut a, 20_000, now); // the base delay: 20 ms
    let start = a.cwnd();
    for _ in 0..10 {
        now += Duration::from_millis(20);
        send_and_ack(&mut a, 30_000, now); // 10 ms of queueing: under the target
    }
    let grown = a.cwnd();
    assert!(grown > start, "{start} → {grown}");
    for _ in 0..10 {
        now += Duration::from_millis(20);
        send_and_ack(&mut a, 220_000, now); // 200 ms of queueing: over the target
    }
    assert!(a.cwnd() < grown, "{grown} → {}", a.cwnd());
    for _ in 0..200 {
        now += Duration::from_millis(20);
        send_and_ack(&mut a, 1_000_000, now);
    }
    assert_eq!(a.cwnd(), MIN_CWND, "never below one packet");
}

#[test]
fn acks_of_packets_never_sent_are_ignored() {
    let (mut a, b, t0) = connected(100);
    a.write(&[1u8; 100], t0);
    let sent = a.take_outgoing(t0);
    let ignored = a.stats().ignored;
    let later = t0 + Duration::from_secs(5);
    a.handle_packet(ack(&b, sent[0].seq_nr.wrapping_add(5), 1 << 20), later);
    assert_eq!(a.bytes_in_flight(), 100, "nothing acked");
    assert_eq!(a.stats().ignored, ignored + 1);
    assert_eq!(a.last_heard, t0, "a lie does not keep the connection alive");
    // Acks from long ago (before our oldest) only count as a sign of life.
    a.handle_packet(ack(&b, sent[0].seq_nr.wrapping_sub(50), 1 << 20), later);
    assert_eq!(a.bytes_in_flight(), 100);
    assert_eq!(a.last_heard, later);
}

#[test]
fn a_shut_window_is_probed_after_a_timeout_not_in_a_loop() {
    let (mut a, b, t0) = connected(100);
    a.handle_packet(ack(&b, b.receiver.ack_nr(), 0), t0);
    assert_eq!(a.write(&[9u8; 100_000], t0), 100_000);
    assert!(
        a.take_outgoing(t0).is_empty(),
        "a window of 0 lets nothing out"
    );
    let mut now = t0;
    let mut packets = 0;
    while now - t0 < Duration::from_secs(60) {
        let deadline = a.next_deadline().expect("a probe is due some time");
        assert!(deadline > now, "no spinning");
        now = deadline;
        a.tick(now);
        let out = a.take_outgoing(now);
        packets += out.len();
        // The peer is alive, acks the probe, and its window stays shut.
        if let Some(last) = out.last() {
            a.handle_packet(ack(&b, last.seq_nr, 0), now);
        }
    }
    assert_ne!(a.state(), State::TimedOut, "the peer answers: it is alive");
    assert!((3..=15).contains(&packets), "{packets} probes in a minute");
    // The window opens: the rest goes at once.
    let before = a.bytes_in_flight();
    a.handle_packet(ack(&b, a.seq_nr.wrapping_sub(1), 1 << 20), now);
    assert!(!a.take_outgoing(now).is_empty());
    assert!(a.bytes_in_flight() > before);
}

#[test]
fn a_huge_window_is_capped_by_the_congestion_window() {
    let (mut a, b, t0) = connected(100);
    a.handle_packet(ack(&b, b.receiver.ack_nr(), u32::MAX), t0);
    assert_eq!(a.peer_window, SEND_BUFFER);
    a.write(&vec![0u8; 100_000], t0);
    let out = a.take_outgoing(t0);
    assert_eq!(out.len(), 2);
    assert!(a.bytes_in_flight() <= a.cwnd());
}

#[test]
fn a_reset_closes_at_once_and_later_packets_are_ignored() {
    let (mut a, b, t0) = connected(100);
    a.write(&[1u8; 3_000], t0);
    a.take_outgoing(t0);
    let mut reset = Packet::new(PacketType::Reset, b.send_id());
    reset.seq_nr = 100;
    a.handle_packet(reset, t0);
    assert_eq!(a.state(), State::Reset);
    assert_eq!(a.take_events(), [Event::Reset]);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(a.write(b"more", t0), 0);
    let mut data = Packet::new(PacketType::Data, b.send_id());
    data.seq_nr = 100;
    data.payload = b"late".to_vec();
    a.handle_packet(data, t0);
    assert_eq!(a.readable(), 0);
    assert!(a.take_outgoing(t0).is_empty());
    assert!(a.take_events().is_empty());
    assert_eq!(a.buffered(), (0, 0));
}

#[test]
fn a_fin_in_answer_to_our_syn_is_a_refusal() {
    let t0 = Instant::now();
    let mut a = Connection::connect(40, t0);
    let syn = a.take_outgoing(t0).remove(0);
    let mut fin = Packet::new(PacketType::Fin, 40);
    fin.seq_nr = 7;
    fin.ack_nr = syn.seq_nr;
    a.handle_packet(fin, t0);
    assert_eq!(a.state(), State::Reset, "refused, not connected");
    assert_eq!(a.take_events(), [Event::Reset]);
}

#[test]
fn a_closed_connection_acks_data_the_peer_sends_again() {
    // Side 0 got everything and closed; its last ack was lost, and side 1, after a timeout,
    // sends an old data packet again: it must be acked, or side 1 waits until it times out.
    let (mut a, mut b, t0) = connected(100);
    a.write(b"abc", t0);
    a.close(t0);
    let out = a.take_outgoing(t0);
    let data = out[0].clone();
    for p in out {
        b.handle_packet(p, t0);
    }
    b.close(t0);
    for p in b.take_outgoing(t0) {
        a.handle_packet(p, t0);
    }
    a.take_outgoing(t0); // the ack of b's FIN
    assert_eq!(a.state(), State::Closed);
    a.handle_packet(data, t0);
    let again = a.take_outgoing(t0);
    assert_eq!(again.len(), 1, "one ack");
    assert_eq!(again[0].kind, PacketType::State);
}

#[test]
fn fin_waits_for_the_data_before_it() {
    let (mut a, mut b, t0) = connected(100);
    a.write(b"abc", t0);
    a.close(t0);
    let out = a.take_outgoing(t0);
    assert_eq!(
        out.iter().map(|p| p.kind).collect::<Vec<_>>(),
        [PacketType::Data, PacketType::Fin]
    );
    assert_eq!(a.state(), State::FinSent);
    b.handle_packet(out[1].clone(), t0); // the FIN overtakes the data
    assert!(!b.take_events().contains(&Event::EndOfStream));
    assert!(!b.is_eof());
    b.handle_packet(out[0].clone(), t0);
    assert!(b.take_events().contains(&Event::EndOfStream));
    let mut buf = [0u8; 8];
    assert_eq!(b.read(&mut buf), 3);
    assert!(b.is_eof());
    b.close(t0);
    for p in b.take_outgoing(t0) {
        a.handle_packet(p, t0);
    }
    assert_eq!(a.state(), State::Closed);
    for p in a.take_outgoing(t0) {
        b.handle_packet(p, t0);
    }
    assert_eq!(b.state(), State::Closed);
    // A late copy of a's FIN is acked again, even now.
    b.handle_packet(out[1].clone(), t0);
    assert_eq!(b.take_outgoing(t0).len(), 1);
}

#[test]
fn memory_stays_bounded_whatever_the_peer_does() {
    let (mut a, mut b, t0) = connected(100);
    // The app writes far more than the send buffer: the rest is refused, not queued.
    let mut taken = 0;
    for _ in 0..100 {
        taken += a.write(&[7u8; 100_000], t0);
    }
    assert_eq!(taken, SEND_BUFFER);
    assert_eq!(a.buffered().0, SEND_BUFFER);
    // The peer floods b with packets far ahead (held) and beyond the window (refused).
    let start = b.receiver.ack_nr().wrapping_add(2);
    for i in 0..5_000u16 {
        let mut p = Packet::new(PacketType::Data, a.send_id());
        p.seq_nr = start.wrapping_add(i);
        p.ack_nr = a.seq_nr.wrapping_sub(1);
        p.payload = vec![i as u8; 1_000];
        b.handle_packet(p, t0);
    }
    assert!(b.receiver.held() <= MAX_HELD);
    assert!(b.buffered().1 <= RECV_BUFFER);
    assert!(b.stats().ignored > 0);
    let ack = b.take_outgoing(t0);
    assert_eq!(ack.len(), 1, "one ack for the whole burst");
    let sack = ack[0]
        .selective_ack
        .as_ref()
        .expect("a selective ACK for held data");
    assert!(sack.mask().len() <= crate::utp::SACK_BITS / 8);
    // Sending is bounded in packets too: tiny writes do not exceed MAX_IN_FLIGHT.
    let (mut c, d, t0) = connected(100);
    c.handle_packet(ack_with(&d, u32::MAX), t0);
    for _ in 0..200 {
        c.congestion.on_ack(c.cwnd());
    }
    for _ in 0..5_000 {
        c.write(&[1], t0);
    }
    assert!(c.in_flight.len() <= MAX_IN_FLIGHT);
}

fn ack_with(b: &Connection, wnd: u32) -> Packet {
    ack(b, b.receiver.ack_nr(), wnd)
}
