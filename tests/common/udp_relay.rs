//! A lossy UDP relay on 127.0.0.1: the tests' own bad network, for uTP (BEP 29, uTorrent
//! transport protocol) between two peers on loopback.
//!
//! Loopback neither loses, duplicates, reorders nor delays a datagram, so a uTP download
//! between two local peers never exercises resends, the reorder buffer or LEDBAT's delay
//! measurement. The usual tool, a `netem` queueing discipline, does not exist on this machine,
//! so the relay does the same in user space, between the two peers:
//!
//! ```text
//!   client ──► front ─[drop, duplicate, hold back, delay]─► back ──► target
//!   client ◄── front ◄─[drop, duplicate, hold back, delay]── back ◄── target
//! ```
//!
//! A client sends to [`LossyRelay::addr`] (the front) as if it were the target; the relay sends
//! it on from a second socket (the back), so the target sees the back's address as its peer.
//! What the target sends to the back goes out of the front to the **last client address the
//! front heard from**: one client per relay, which is all a test of one download needs.
//! Datagrams reaching the back from anywhere but the target are ignored.
//!
//! Each direction has two threads. The reader (`relay front`, `relay back`) reads its socket
//! and draws each datagram's fate from its own `fastrand::Rng::with_seed` of
//! [`LossPlan::seed`], one draw per datagram read: the n-th datagram of a direction meets the
//! same fate on every run, so a failure replays. (Whether a held-back datagram is overtaken
//! depends on what arrives meanwhile, so that part follows the timing of the test.) The
//! sender (`relay to target`, `relay to client`) keeps the delay queue, ordered by due time,
//! and sends each datagram when it is due. It waits on the channel from its reader with a
//! deadline, not on a socket: a socket's read timeout is rounded up to the kernel's tick (a
//! 1 ms `SO_RCVTIMEO` measured 6 to 8 ms here), too coarse for a 10 ms delay.
//!
//! Memory is bounded: a delay queue holds at most [`QUEUE_DATAGRAMS`] datagrams (and 32 MiB);
//! what does not fit is dropped and counted ([`RelayCounts::overflowed`]). The hand-off
//! between the two threads holds 1,024 more; when it is full the reader waits, and meanwhile
//! the socket's buffer in the kernel fills and then drops, uncounted, as a saturated link
//! would. [`LossyRelay::stop`], or dropping the relay, ends all four threads within a few ms
//! and discards what was still queued.

use crossbeam_channel::RecvTimeoutError;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// At most this many datagrams wait in one direction's delay queue; more are dropped.
pub const QUEUE_DATAGRAMS: usize = 10_000;
/// At most this many bytes wait in one direction's delay queue; more are dropped.
const QUEUE_BYTES: usize = 32 << 20;
/// A reader looks at its stop flag at least this often (the kernel rounds it up to its tick).
const TICK: Duration = Duration::from_millis(5);
/// Datagrams on their way from a reader to its sender, at most.
const HANDOFF: usize = 1_024;
/// A held-back datagram that nothing overtakes within this time goes on by itself.
const HOLD: Duration = Duration::from_millis(4);
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// What the relay does to each datagram, in each direction alike.
///
/// Each datagram gets one draw `r` in `[0, 1)`: below `drop` it is lost; below
/// `drop + duplicate` it is sent twice; below `drop + duplicate + reorder` it is held back
/// until the next datagram that is sent has gone first; if none comes within 4 ms it goes on
/// in its place (late only when `delay` is shorter than that).
/// Then it waits `delay` before it is sent.
#[derive(Clone, Copy, Debug)]
pub struct LossPlan {
    /// Share of datagrams lost, 0.0 to 1.0.
    pub drop: f64,
    /// Share of datagrams sent twice.
    pub duplicate: f64,
    /// Share of datagrams held back behind the next one.
    pub reorder: f64,
    /// One-way delay added to every datagram, in each direction.
    pub delay: Duration,
    /// Seed of the random numbers: the same seed loses the same datagrams.
    pub seed: u64,
}

impl LossPlan {
    /// A bad but usable path: 5 % lost, 1 % duplicated, 2 % reordered, 10 ms each way.
    pub fn bad_path() -> LossPlan {
        LossPlan {
            drop: 0.05,
            duplicate: 0.01,
            reorder: 0.02,
            delay: Duration::from_millis(10),
            seed: 0x5eed_ba0d_9a7e,
        }
    }

    /// A perfect path: every datagram passes at once, in order.
    pub fn clean() -> LossPlan {
        LossPlan {
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::ZERO,
            seed: 0,
        }
    }
}

/// What happened to the datagrams of one direction.
///
/// Once the relay is idle (its queue empty):
/// `received + duplicated == forwarded + dropped + overflowed + failed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// Datagrams read from the sending side.
    pub received: u64,
    /// Datagrams sent on (a duplicate counts as two).
    pub forwarded: u64,
    /// Datagrams lost on purpose, as the plan says.
    pub dropped: u64,
    /// Datagrams sent twice.
    pub duplicated: u64,
    /// Held-back datagrams that a later one overtook.
    pub reordered: u64,
    /// Datagrams lost because the delay queue was full.
    pub overflowed: u64,
    /// Sends the OS refused (or, towards the client, no client was known yet).
    pub failed: u64,
}

impl RelayCounts {
    fn add(&self, other: &RelayCounts) -> RelayCounts {
        RelayCounts {
            received: self.received + other.received,
            forwarded: self.forwarded + other.forwarded,
            dropped: self.dropped + other.dropped,
            duplicated: self.duplicated + other.duplicated,
            reordered: self.reordered + other.reordered,
            overflowed: self.overflowed + other.overflowed,
            failed: self.failed + other.failed,
        }
    }

    /// Every datagram read is accounted for: none waits in the relay.
    pub fn is_idle(&self) -> bool {
        self.received + self.duplicated
            == self.forwarded + self.dropped + self.overflowed + self.failed
    }
}

/// The relay's counts, per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Client → target (read at the front, sent from the back).
    pub to_target: RelayCounts,
    /// Target → client (read at the back, sent from the front).
    pub to_client: RelayCounts,
}

impl RelayStats {
    /// Both directions together.
    pub fn total(&self) -> RelayCounts {
        self.to_target.add(&self.to_client)
    }

    fn count(&mut self, direction: Direction) -> &mut RelayCounts {
        match direction {
            Direction::ToTarget => &mut self.to_target,
            Direction::ToClient => &mut self.to_client,
        }
    }
}

/// A running relay: see the module doc. Stopped (threads joined) by [`LossyRelay::stop`] or
/// when dropped.
pub struct LossyRelay {
    front: SocketAddr,
    stop: Arc<AtomicBool>,
    // One lock for both directions, so that a snapshot is consistent across them.
    stats: Arc<Mutex<RelayStats>>,
    threads: Vec<JoinHandle<()>>,
}

impl LossyRelay {
    /// Starts relaying between a client (whoever sends to [`LossyRelay::addr`]) and `target`.
    pub fn start(target: SocketAddr, plan: LossPlan) -> std::io::Result<LossyRelay> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        // The read timeout is only how often a reader looks at the stop flag.
        front.set_read_timeout(Some(TICK))?;
        back.set_read_timeout(Some(TICK))?;
        let mut relay = LossyRelay {
            front: front.local_addr()?,
            stop: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(Mutex::new(RelayStats::default())),
            threads: Vec::with_capacity(4),
        };
        let client = Arc::new(Mutex::new(None::<SocketAddr>));
        // The other direction draws its own numbers, not the same sequence again.
        let seeds = [plan.seed, plan.seed ^ 0x9e37_79b9_7f4a_7c15];
        let lanes = [
            (Direction::ToTarget, &front, &back, seeds[0]),
            (Direction::ToClient, &back, &front, seeds[1]),
        ];
        for (direction, from, to, seed) in lanes {
            let (handoff, arrivals) = crossbeam_channel::bounded(HANDOFF);
            let reader = Reader {
                socket: Arc::clone(from),
                direction,
                client: Arc::clone(&client),
                target,
                plan,
                rng: fastrand::Rng::with_seed(seed),
                handoff,
                stop: Arc::clone(&relay.stop),
                stats: Arc::clone(&relay.stats),
            };
            let sender = Sender {
                socket: Arc::clone(to),
                direction,
                client: Arc::clone(&client),
                target,
                delay: plan.delay,
                arrivals,
                stats: Arc::clone(&relay.stats),
            };
            // If a spawn fails, `relay` is dropped on return and stops the threads already
            // running (a sender whose reader never started sees its channel closed).
            let (read_name, send_name) = match direction {
                Direction::ToTarget => ("relay front", "relay to target"),
                Direction::ToClient => ("relay back", "relay to client"),
            };
            relay.threads.push(
                std::thread::Builder::new()
                    .name(send_name.into())
                    .spawn(move || sender.run())?,
            );
            relay.threads.push(
                std::thread::Builder::new()
                    .name(read_name.into())
                    .spawn(move || reader.run())?,
            );
        }
        Ok(relay)
    }

    /// The front: where a client sends what is meant for the target.
    pub fn addr(&self) -> SocketAddr {
        self.front
    }

    /// The counts so far (consistent across both directions).
    pub fn stats(&self) -> RelayStats {
        *lock(&self.stats)
    }

    /// Stops the threads and waits for them: a reader sees the stop flag within a read
    /// timeout (under 10 ms), and its sender stops when the reader is gone. Datagrams still
    /// in the delay queues are discarded. Calling it twice is fine.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            // A relay thread that panicked is a broken test helper; say so, unless this is
            // already a panic unwinding (a second panic would abort the whole test binary).
            if thread.join().is_err() && !std::thread::panicking() {
                panic!("a UDP relay thread panicked");
            }
        }
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The guarded value even if a relay thread panicked while holding the lock: the stats are
/// plain counters and the client an address, whole after any single write.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone, Copy)]
enum Direction {
    ToTarget,
    ToClient,
}

impl Direction {
    /// Where this direction's datagrams go: the target, or the client last heard from.
    fn destination(
        self,
        target: SocketAddr,
        client: &Mutex<Option<SocketAddr>>,
    ) -> Option<SocketAddr> {
        match self {
            Direction::ToTarget => Some(target),
            Direction::ToClient => *lock(client),
        }
    }
}

/// What the draw decided for a datagram that is not lost.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pass,
    Twice,
    HoldBack,
}

/// A datagram read, with its fate, on its way from a reader to its sender.
struct Arrival {
    bytes: Vec<u8>,
    at: Instant,
    fate: Fate,
}

/// Reads one socket, draws each datagram's fate, hands the survivors to the sender.
struct Reader {
    socket: Arc<UdpSocket>,
    direction: Direction,
    client: Arc<Mutex<Option<SocketAddr>>>,
    target: SocketAddr,
    plan: LossPlan,
    rng: fastrand::Rng,
    handoff: crossbeam_channel::Sender<Arrival>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<RelayStats>>,
}

impl Reader {
    fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !self.stop.load(Ordering::Relaxed) {
            // An error is mostly the read timeout, the pace of the stop flag; any other (an
            // ICMP error reported on the socket, say) loses nothing queued: keep relaying.
            if let Ok((len, from)) = self.socket.recv_from(&mut buf)
                && self.accept_source(from)
            {
                self.take(buf[..len].to_vec());
            }
        }
        // Returning drops `handoff`, which tells the sender to stop too.
    }

    /// Whether a datagram from `from` belongs to this direction; the front also learns the
    /// client's address from it.
    fn accept_source(&self, from: SocketAddr) -> bool {
        match self.direction {
            Direction::ToTarget => {
                *lock(&self.client) = Some(from);
                true
            }
            Direction::ToClient => from == self.target,
        }
    }

    /// One datagram read: its fate by one draw (see [`LossPlan`]), counted in one step.
    fn take(&mut self, bytes: Vec<u8>) {
        let plan = self.plan;
        let r = self.rng.f64();
        let fate = if r < plan.drop {
            None
        } else if r < plan.drop + plan.duplicate {
            Some(Fate::Twice)
        } else if r < plan.drop + plan.duplicate + plan.reorder {
            Some(Fate::HoldBack)
        } else {
            Some(Fate::Pass)
        };
        // Counted before the hand-off, so the sender can never count a datagram out before
        // it is counted in: between the two, a snapshot shows it as still in the relay.
        {
            let mut stats = lock(&self.stats);
            let counts = stats.count(self.direction);
            counts.received += 1;
            match fate {
                None => counts.dropped += 1,
                Some(Fate::Twice) => counts.duplicated += 1,
                Some(Fate::Pass | Fate::HoldBack) => {}
            }
        }
        let Some(fate) = fate else { return };
        let arrival = Arrival {
            bytes,
            at: Instant::now(),
            fate,
        };
        // When the hand-off is full the sender is behind: wait for it, as a link does, and
        // let the socket's buffer in the kernel fill meanwhile. The sender only ever waits
        // for this channel, so it always comes back; it is gone only if it panicked, and then
        // the whole relay stops (and `stop` reports the panic).
        if self.handoff.send(arrival).is_err() {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// A datagram held back until the next one has gone first.
struct Held {
    bytes: Vec<u8>,
    arrived: Instant,
}

/// The delay queue of one direction: earliest due first, and in arrival order among equals
/// (`order` is unique, so the bytes are never compared).
#[derive(Default)]
struct DelayQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    next_order: u64,
    bytes: usize,
}

impl DelayQueue {
    /// Queues `bytes` to go at `due`; false if the queue is full.
    fn push(&mut self, due: Instant, bytes: Vec<u8>) -> bool {
        if self.heap.len() >= QUEUE_DATAGRAMS || self.bytes + bytes.len() > QUEUE_BYTES {
            return false;
        }
        self.bytes += bytes.len();
        self.heap.push(Reverse((due, self.next_order, bytes)));
        self.next_order += 1;
        true
    }

    fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((due, _, _))| *due)
    }

    /// The first datagram if it is due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_due()? > now {
            return None;
        }
        let Reverse((_, _, bytes)) = self.heap.pop()?;
        self.bytes -= bytes.len();
        Some(bytes)
    }
}

/// Holds back, duplicates and delays the datagrams of one direction, and sends them on.
struct Sender {
    socket: Arc<UdpSocket>,
    direction: Direction,
    client: Arc<Mutex<Option<SocketAddr>>>,
    target: SocketAddr,
    delay: Duration,
    arrivals: crossbeam_channel::Receiver<Arrival>,
    stats: Arc<Mutex<RelayStats>>,
}

impl Sender {
    fn run(self) {
        let mut queue = DelayQueue::default();
        let mut held: Option<Held> = None;
        loop {
            let now = Instant::now();
            if let Some(h) = held.take_if(|h| now >= h.arrived + HOLD) {
                // Nothing overtook it: it goes on in its place. Its due time stays the one
                // it came with, so nothing read after it can overtake it now, even a datagram
                // still on its way from the reader: every reordering is counted in `place`.
                let due = h.arrived + self.delay;
                self.enqueue(&mut queue, due, h.bytes);
            }
            while let Some(bytes) = queue.pop_due(now) {
                self.send(&bytes);
            }
            let wake = [queue.next_due(), held.as_ref().map(|h| h.arrived + HOLD)]
                .into_iter()
                .flatten()
                .min();
            // Waiting on the channel, unlike a socket's read timeout, wakes on time.
            let arrival = match wake {
                Some(wake) => self.arrivals.recv_deadline(wake),
                None => self
                    .arrivals
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
            };
            match arrival {
                Ok(arrival) => self.place(arrival, &mut queue, &mut held),
                Err(RecvTimeoutError::Timeout) => {}
                // The reader is gone: the relay is stopping.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Puts a datagram that arrived into the queue, or holds it back, by its fate.
    fn place(&self, arrival: Arrival, queue: &mut DelayQueue, held: &mut Option<Held>) {
        let due = arrival.at + self.delay;
        match arrival.fate {
            Fate::HoldBack if held.is_none() => {
                *held = Some(Held {
                    bytes: arrival.bytes,
                    arrived: arrival.at,
                });
                return;
            }
            Fate::Twice => {
                self.enqueue(queue, due, arrival.bytes.clone());
            }
            // One datagram is held at a time: one drawn for holding while another is held
            // goes on now, which overtakes the held one all the same.
            Fate::HoldBack | Fate::Pass => {}
        }
        let queued = self.enqueue(queue, due, arrival.bytes);
        // This one goes on: a held-back datagram goes right behind it (overtaken only if
        // this one found room in the queue).
        if let Some(h) = held.take() {
            if queued {
                lock(&self.stats).count(self.direction).reordered += 1;
            }
            self.enqueue(queue, due, h.bytes);
        }
    }

    /// Queues a datagram, or counts it lost to a full queue; true if it was queued.
    fn enqueue(&self, queue: &mut DelayQueue, due: Instant, bytes: Vec<u8>) -> bool {
        let queued = queue.push(due, bytes);
        if !queued {
            lock(&self.stats).count(self.direction).overflowed += 1;
        }
        queued
    }

    fn send(&self, bytes: &[u8]) {
        let sent = self
            .direction
            .destination(self.target, &self.client)
            .is_some_and(|to| self.socket.send_to(bytes, to).is_ok());
        let mut stats = lock(&self.stats);
        let counts = stats.count(self.direction);
        if sent {
            counts.forwarded += 1;
        } else {
            counts.failed += 1;
        }
    }
}
