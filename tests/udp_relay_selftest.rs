//! The lossy UDP relay (`tests/common/udp_relay.rs`), the bad network of the uTP (BEP 29,
//! uTorrent transport protocol) tests, checked on its own before anything trusts it.
//!
//! A plain UDP echo stands for the target. A client sends numbered datagrams through the relay
//! and collects the echoes, so each datagram crosses the relay twice (once each way). What the
//! client sees must agree with the relay's counts: the datagrams that came back, the ones that
//! never did, the copies, the ones out of order, and the round-trip time against the delay.
//!
//! The client keeps at most [`WINDOW`] datagrams in flight, as a uTP sender would: a burst of
//! thousands would overflow a socket's receive buffer in the kernel, and a loss there is one
//! the relay did not choose and cannot count.

pub mod common;

use common::{LossPlan, LossyRelay, QUEUE_DATAGRAMS, RelayCounts, RelayStats};
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many numbered datagrams a run sends.
const DATAGRAMS: u32 = 2_000;
/// Bytes per datagram: the number, then a pattern that depends on it.
const DATAGRAM_LEN: usize = 64;
/// Datagrams in flight at most.
const WINDOW: usize = 64;
/// A datagram not echoed after this long is taken as lost, and leaves the window.
const LOST_AFTER: Duration = Duration::from_millis(100);
/// A run that has not settled by then fails.
const RUN_DEADLINE: Duration = Duration::from_secs(7);

/// The target: answers every datagram with the same bytes. Stopped when dropped.
struct Echo {
    addr: SocketAddr,
    echoed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start() -> Echo {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the echo");
        // The read timeout is how often the thread sees its stop flag.
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("echo read timeout");
        let addr = socket.local_addr().expect("echo address");
        let echoed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (Arc::clone(&echoed), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("udp echo".into())
            .spawn(move || {
                let mut buf = [0u8; 2048];
                while !halt.load(Ordering::Relaxed) {
                    if let Ok((len, from)) = socket.recv_from(&mut buf)
                        && socket.send_to(&buf[..len], from).is_ok()
                    {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
            .expect("start the echo thread");
        Echo {
            addr,
            echoed,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn datagram(seq: u32) -> Vec<u8> {
    let mut bytes = seq.to_be_bytes().to_vec();
    bytes.extend((0..DATAGRAM_LEN - 4).map(|i| (seq as usize * 31 + i) as u8));
    bytes
}

/// What the client saw, and the relay's final counts.
struct Run {
    /// Copies of each datagram that came back.
    copies: Vec<u32>,
    /// The numbers in the order they came back (copies included).
    arrivals: Vec<u32>,
    /// Round-trip time of each datagram that came back (its first copy).
    round_trips: Vec<Duration>,
    stats: RelayStats,
    took: Duration,
}

impl Run {
    fn distinct(&self) -> usize {
        self.copies.iter().filter(|&&c| c > 0).count()
    }

    /// Copies beyond the first.
    fn extra_copies(&self) -> usize {
        self.arrivals.len() - self.distinct()
    }

    /// Arrivals of a number lower than one that already came back.
    fn out_of_order(&self) -> usize {
        let mut highest = None;
        let mut late = 0;
        for &seq in &self.arrivals {
            if highest.is_some_and(|h| seq < h) {
                late += 1;
            }
            highest = highest.max(Some(seq));
        }
        late
    }

    fn round_trip_percentile(&self, p: usize) -> Duration {
        let mut sorted = self.round_trips.clone();
        sorted.sort();
        sorted[(sorted.len() - 1) * p / 100]
    }
}

/// Sends [`DATAGRAMS`] numbered datagrams through a relay with `plan` to an echo, and
/// collects the echoes until every datagram is accounted for.
fn exchange(plan: LossPlan) -> Run {
    let echo = Echo::start();
    let mut relay = LossyRelay::start(echo.addr, plan).expect("start the relay");
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind the client");
    client
        .set_read_timeout(Some(Duration::from_millis(2)))
        .expect("client read timeout");

    let total = DATAGRAMS as usize;
    let mut copies = vec![0u32; total];
    let mut sent_at = Vec::with_capacity(total);
    let mut round_trips = Vec::new();
    let mut arrivals = Vec::new();
    let mut in_flight = VecDeque::new();
    let mut buf = [0u8; 2048];
    let started = Instant::now();
    loop {
        let now = Instant::now();
        in_flight.retain(|&seq: &u32| {
            copies[seq as usize] == 0 && now - sent_at[seq as usize] < LOST_AFTER
        });
        while sent_at.len() < total && in_flight.len() < WINDOW {
            let seq = sent_at.len() as u32;
            // The time is taken before the send: the relay may read the datagram before
            // this thread runs again.
            sent_at.push(Instant::now());
            client
                .send_to(&datagram(seq), relay.addr())
                .expect("send to the relay");
            in_flight.push_back(seq);
        }
        if let Ok((len, from)) = client.recv_from(&mut buf) {
            let arrived = Instant::now();
            assert_eq!(from, relay.addr(), "an echo from elsewhere");
            let seq = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
            assert!(seq < DATAGRAMS, "echo of datagram {seq}, never sent");
            assert_eq!(
                &buf[..len],
                datagram(seq),
                "datagram {seq} came back changed"
            );
            if copies[seq as usize] == 0 {
                round_trips.push(arrived - sent_at[seq as usize]);
            }
            copies[seq as usize] += 1;
            arrivals.push(seq);
        }
        // Settled: the relay read all that was sent, the echo answered all it got, and the
        // client read all the relay sent back; nothing waits in the relay.
        let stats = relay.stats();
        let echoed = echo.echoed.load(Ordering::SeqCst);
        if sent_at.len() == total
            && stats.to_target.received == u64::from(DATAGRAMS)
            && stats.to_target.is_idle()
            && echoed == stats.to_target.forwarded
            && stats.to_client.received == echoed
            && stats.to_client.is_idle()
            && arrivals.len() as u64 == stats.to_client.forwarded
        {
            break;
        }
        assert!(
            started.elapsed() < RUN_DEADLINE,
            "not settled after {RUN_DEADLINE:?}: sent {}, {} echoes back, echo answered \
             {echoed}, relay {stats:?}",
            sent_at.len(),
            arrivals.len()
        );
    }
    let took = started.elapsed();
    relay.stop();
    Run {
        copies,
        arrivals,
        round_trips,
        stats: relay.stats(),
        took,
    }
}

fn report(name: &str, run: &Run) {
    eprintln!(
        "{name}: {} of {DATAGRAMS} came back ({} extra copies, {} out of order) in {:?}; \
         round trip min {:?} median {:?} max {:?}\n  to target {:?}\n  to client {:?}",
        run.distinct(),
        run.extra_copies(),
        run.out_of_order(),
        run.took,
        run.round_trip_percentile(0),
        run.round_trip_percentile(50),
        run.round_trip_percentile(100),
        run.stats.to_target,
        run.stats.to_client,
    );
}

/// The share of datagrams read in one direction that met a fate is near what the plan says
/// (over 2,000 draws, within about four standard deviations).
fn near_plan(what: &str, count: u64, read: u64, planned: f64) {
    let share = count as f64 / read as f64;
    let margin = 4.0 * (planned * (1.0 - planned) / read as f64).sqrt();
    assert!(
        (share - planned).abs() <= margin,
        "{what}: {count} of {read} ({share:.4}), the plan says {planned}"
    );
}

#[test]
fn a_bad_path_loses_duplicates_reorders_and_delays() {
    common::within(
        Duration::from_secs(10),
        "the bad-path relay run",
        "the client never saw every datagram accounted for",
        || {
            let plan = LossPlan::bad_path();
            let run = exchange(plan);
            report("bad path", &run);
            let (there, back, total) =
                (run.stats.to_target, run.stats.to_client, run.stats.total());

            // Most came back; the rest were lost by the relay, on purpose and counted.
            let came_back = run.distinct();
            assert!(
                came_back * 100 >= DATAGRAMS as usize * 85,
                "only {came_back} of {DATAGRAMS} came back"
            );
            assert!(there.dropped > 0 && back.dropped > 0, "nothing dropped");
            // A datagram that never came back lost all its copies, each to a drop.
            assert!(came_back < DATAGRAMS as usize);
            assert!((DATAGRAMS as usize - came_back) as u64 <= total.dropped);
            assert_eq!(run.arrivals.len() as u64, back.forwarded);
            assert_eq!(total.overflowed, 0);
            assert_eq!(total.failed, 0);
            for (what, c) in [("to target", there), ("to client", back)] {
                near_plan(
                    &format!("{what}, dropped"),
                    c.dropped,
                    c.received,
                    plan.drop,
                );
                near_plan(
                    &format!("{what}, duplicated"),
                    c.duplicated,
                    c.received,
                    plan.duplicate,
                );
            }

            // Copies: each one beyond the first is the work of a duplication.
            assert!(total.duplicated > 0, "nothing duplicated");
            assert!(run.extra_copies() > 0, "no copy seen");
            assert!(run.extra_copies() as u64 <= total.duplicated);

            // Order: loopback keeps it, so every late arrival is a held-back datagram.
            assert!(total.reordered > 0, "nothing reordered");
            assert!(run.out_of_order() > 0, "nothing seen out of order");
            assert!(run.out_of_order() as u64 <= total.reordered);

            // Delay: each way, so at least twice the one-way delay.
            let fastest = run.round_trip_percentile(0);
            assert!(
                fastest >= 2 * plan.delay,
                "a round trip of {fastest:?} with {:?} each way",
                plan.delay
            );
        },
    );
}

#[test]
fn a_clean_path_passes_everything_in_order() {
    common::within(
        Duration::from_secs(10),
        "the clean relay run",
        "the client never saw every datagram accounted for",
        || {
            let run = exchange(LossPlan::clean());
            report("clean", &run);
            assert_eq!(run.distinct(), DATAGRAMS as usize);
            assert_eq!(run.arrivals, (0..DATAGRAMS).collect::<Vec<_>>());
            let every = u64::from(DATAGRAMS);
            let passed = RelayCounts {
                received: every,
                forwarded: every,
                ..RelayCounts::default()
            };
            assert_eq!(
                run.stats,
                RelayStats {
                    to_target: passed,
                    to_client: passed,
                }
            );
        },
    );
}

#[test]
fn the_same_seed_loses_the_same_datagrams() {
    common::within(
        Duration::from_secs(10),
        "two runs with one seed",
        "the client never saw every datagram accounted for",
        || {
            // Without the delay, to be quick: the fates do not depend on it.
            let plan = LossPlan {
                delay: Duration::ZERO,
                ..LossPlan::bad_path()
            };
            let (first, second) = (exchange(plan), exchange(plan));
            let fates = |c: RelayCounts| (c.received, c.dropped, c.duplicated);
            for (a, b) in [
                (first.stats.to_target, second.stats.to_target),
                (first.stats.to_client, second.stats.to_client),
            ] {
                assert_eq!(fates(a), fates(b));
            }
            let other = exchange(LossPlan { seed: 7, ..plan });
            assert_ne!(
                fates(first.stats.to_target),
                fates(other.stats.to_target),
                "another seed, the same fates"
            );
        },
    );
}

#[test]
fn a_full_queue_drops_and_stop_is_prompt() {
    common::within(
        Duration::from_secs(10),
        "the overflow run",
        "the relay did not read what was sent, or did not stop",
        || {
            // A datagram waits a minute: nothing leaves the queue during the test.
            let plan = LossPlan {
                delay: Duration::from_secs(60),
                ..LossPlan::clean()
            };
            let echo = Echo::start();
            let mut relay = LossyRelay::start(echo.addr, plan).expect("start the relay");
            let client = UdpSocket::bind("127.0.0.1:0").expect("bind the client");
            let extra = 100;
            let total = (QUEUE_DATAGRAMS + extra) as u64;
            let started = Instant::now();
            let mut sent = 0u64;
            while sent < total {
                // Batches small enough for the relay's socket buffer; the next one goes once
                // the relay has read this one.
                for _ in 0..100 {
                    client
                        .send_to(&[1], relay.addr())
                        .expect("send to the relay");
                    sent += 1;
                }
                while relay.stats().to_target.received < sent {
                    assert!(
                        started.elapsed() < Duration::from_secs(5),
                        "the relay read {} of {sent}",
                        relay.stats().to_target.received
                    );
                    std::thread::yield_now();
                }
            }
            // The sender may still be taking the last ones from its reader.
            while relay.stats().to_target.overflowed < extra as u64 {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "the relay refused only {:?}",
                    relay.stats().to_target
                );
                std::thread::yield_now();
            }
            assert!(!relay.stats().to_target.is_idle(), "nothing queued");

            let stopping = Instant::now();
            relay.stop();
            let took = stopping.elapsed();
            eprintln!("stop with {QUEUE_DATAGRAMS} queued took {took:?}");
            assert!(took < Duration::from_secs(1), "stop took {took:?}");
            // Stopped, the counts are final: the queue was full and refused exactly the rest.
            let stats = relay.stats().to_target;
            assert_eq!(stats.received, total);
            assert_eq!(stats.overflowed, extra as u64);
            assert_eq!(stats.forwarded, 0);
            assert_eq!(echo.echoed.load(Ordering::SeqCst), 0);
        },
    );
}
