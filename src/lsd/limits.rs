//! When to announce, and which heard announces become peers to dial (BEP 14, "Local Service
//! Discovery") — walkthrough §20. Pure state machines: the time is an argument, so the tests
//! run a day of announces in a microsecond.
//!
//! ```text
//!   Schedule: start ──announce──► every 5 min ──► …     (a new neighbour: the next one
//!                                                      sooner, never 2 within a minute)
//!   Intake:   datagram ─► own cookie? ─► chatty source? ─► our torrent? ─► heard lately?
//!                         ─► room under the per-minute cap? ─► a peer for the scheduler
//! ```
//!
//! Anyone on the network can send to the group, so everything the intake remembers is
//! bounded: [`MAX_SOURCES`] source addresses, [`MAX_PEERS_PER_MINUTE`] peers, and nothing
//! older than a few minutes.

use super::packet::Announce;
use crate::metainfo::InfoHash;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// BEP 14: "an announce every 5 minutes" while we are in the swarm.
pub const INTERVAL: Duration = Duration::from_secs(5 * 60);
/// BEP 14: "no more than 1 announce per minute", against multicast storms.
pub const MIN_GAP: Duration = Duration::from_secs(60);
/// The window of the per-source and per-minute limits.
const WINDOW: Duration = Duration::from_secs(60);
/// Datagrams taken from one address per minute. A neighbour sends one per torrent every
/// five minutes (libtorrent repeats each twice more, seconds apart): 12 is plenty.
pub const PER_SOURCE: usize = 12;
/// Source addresses remembered at once; a datagram from a new one beyond that is dropped.
pub const MAX_SOURCES: usize = 256;
/// New peers handed to the scheduler per minute, all sources together: a classroom fits,
/// a flood of forged announces does not fill the scheduler's candidates.
pub const MAX_PEERS_PER_MINUTE: usize = 40;
/// A peer handed over is not handed over again for this long (libtorrent sends each announce
/// three times in four seconds). Later it is: the scheduler may have given up dialling it
/// while it was not listening yet (a magnet link fetching its metadata announces first).
const REPEAT_AFTER: Duration = Duration::from_secs(60);
/// A neighbour heard within this long is not new: its periodic announces (every 5 minutes)
/// do not make us answer.
const NEW_AFTER: Duration = Duration::from_secs(10 * 60);

/// When our next announce is due. [W20.3]
#[derive(Debug, Clone)]
pub struct Schedule {
    last: Option<Instant>,
    next: Instant,
}

impl Schedule {
    /// The first announce is due at once: a neighbour already in the swarm learns of us
    /// at start, and dials us.
    pub fn new(now: Instant) -> Schedule {
        Schedule {
            last: None,
            next: now,
        }
    }

    /// When the next announce is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// We announced at `now` (every one of our torrents): the next in five minutes.
    pub fn sent(&mut self, now: Instant) {
        self.last = Some(now);
        self.next = now + INTERVAL;
    }

    /// A neighbour we had not heard of announced one of our torrents. It learnt nothing of
    /// us (it may have started after our last announce, and a magnet link's metadata fetch
    /// does not accept connections), so we answer with an announce as soon as BEP 14's one
    /// per minute allows.
    pub fn heard_new_neighbour(&mut self, now: Instant) {
        let earliest = self.last.map_or(now, |last| last + MIN_GAP).max(now);
        self.next = self.next.min(earliest);
    }
}

/// What became of one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A peer to dial: the datagram's source address with the announced port. `new`: not
    /// handed over in the last ten minutes (our answer is due: [`Schedule::heard_new_neighbour`]).
    Peer { peer: SocketAddr, new: bool },
    /// Our own announce, back through multicast loopback.
    Own,
    /// The source sent more than [`PER_SOURCE`] datagrams this minute, or is a new source
    /// while [`MAX_SOURCES`] are remembered.
    TooChatty(IpAddr),
    /// None of the announced torrents is ours.
    NotOurs,
    /// A peer handed over lately: nothing new.
    Repeat(SocketAddr),
    /// [`MAX_PEERS_PER_MINUTE`] peers were handed over this minute already.
    CapReached(SocketAddr),
    /// The source address cannot be dialled (unspecified, multicast, broadcast).
    BadSource(IpAddr),
}

/// Datagrams in, peers out, within the limits. [W20.4]
#[derive(Debug)]
pub struct Intake {
    ours: Vec<InfoHash>,
    cookie: String,
    /// Per source address: when its datagrams of the last minute arrived.
    sources: HashMap<IpAddr, VecDeque<Instant>>,
    /// When each peer was last handed over.
    handed: HashMap<SocketAddr, Instant>,
    /// When each neighbour was last handed over, kept ten minutes.
    known: HashMap<SocketAddr, Instant>,
    /// When the peers of the last minute were handed over.
    minute: VecDeque<Instant>,
}

impl Intake {
    /// `ours`: the names of our torrent (a hybrid has two). `cookie`: the one our own
    /// announces carry.
    pub fn new(ours: Vec<InfoHash>, cookie: String) -> Intake {
        Intake {
            ours,
            cookie,
            sources: HashMap::new(),
            handed: HashMap::new(),
            known: HashMap::new(),
            minute: VecDeque::new(),
        }
    }

    /// A datagram that parsed as an announce (`Some`) or did not (`None`) arrived from
    /// `from`. Every datagram counts against its source, even one that did not parse: a
    /// flood of junk costs one small entry.
    pub fn consider(
        &mut self,
        from: SocketAddr,
        announce: Option<&Announce>,
        now: Instant,
    ) -> Verdict {
        let ip = from.ip();
        // Ours first: our own packets come back at every announce and must not use up the
        // budget of our own address, which a neighbour on this machine shares.
        if announce.is_some_and(|a| a.cookie.as_deref() == Some(self.cookie.as_str())) {
            return Verdict::Own;
        }
        if !self.count_source(ip, now) {
            return Verdict::TooChatty(ip);
        }
        let Some(announce) = announce else {
            return Verdict::NotOurs;
        };
        if !announce.info_hashes.iter().any(|h| self.ours.contains(h)) {
            return Verdict::NotOurs;
        }
        if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
            return Verdict::BadSource(ip);
        }
        let peer = SocketAddr::new(ip, announce.port);
        self.handed
            .retain(|_, at| now.duration_since(*at) < REPEAT_AFTER);
        if self.handed.contains_key(&peer) {
            return Verdict::Repeat(peer);
        }
        while self
            .minute
            .front()
            .is_some_and(|&t| now.duration_since(t) >= WINDOW)
        {
            self.minute.pop_front();
        }
        if self.minute.len() >= MAX_PEERS_PER_MINUTE {
            return Verdict::CapReached(peer);
        }
        self.minute.push_back(now);
        self.handed.insert(peer, now);
        // Both maps grow only here, at most MAX_PEERS_PER_MINUTE a minute, and forget after
        // ten minutes at most: a few hundred entries.
        self.known
            .retain(|_, at| now.duration_since(*at) < NEW_AFTER);
        let new = !self.known.contains_key(&peer);
        self.known.insert(peer, now);
        Verdict::Peer { peer, new }
    }

    /// Counts a datagram from `ip`; false if the source is over its budget.
    fn count_source(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
            // Make room from sources silent for a minute before turning a new one away.
            self.sources.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|&t| now.duration_since(t) < WINDOW)
            });
            if self.sources.len() >= MAX_SOURCES {
                return false;
            }
        }
        let times = self.sources.entry(ip).or_default();
        while times
            .front()
            .is_some_and(|&t| now.duration_since(t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= PER_SOURCE {
            return false;
        }
        times.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: InfoHash = InfoHash([7; 20]);

    fn announce(port: u16, hash: InfoHash, cookie: Option<&str>) -> Announce {
        Announce {
            port,
            info_hashes: vec![InfoHash([1; 20]), hash],
            cookie: cookie.map(str::to_string),
        }
    }

    fn from(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 77, 0, last], 6771))
    }

    #[test]
    fn announces_at_start_then_every_five_minutes() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(t0);
        assert!(schedule.is_due(t0));
        schedule.sent(t0);
        assert!(!schedule.is_due(t0 + INTERVAL - Duration::from_secs(1)));
        assert!(schedule.is_due(t0 + INTERVAL));
        assert_eq!(schedule.next(), t0 + INTERVAL);
    }

    #[test]
    fn a_new_neighbour_brings_the_next_announce_forward_but_never_within_a_minute() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(t0);
        schedule.sent(t0);
        schedule.heard_new_neighbour(t0 + Duration::from_secs(5));
        assert_eq!(schedule.next(), t0 + MIN_GAP);
        // Heard again later: already due at the minute, not pushed back.
        schedule.heard_new_neighbour(t0 + Duration::from_secs(50));
        assert_eq!(schedule.next(), t0 + MIN_GAP);
        schedule.sent(t0 + MIN_GAP);
        let later = t0 + MIN_GAP + Duration::from_secs(200);
        schedule.heard_new_neighbour(later);
        assert_eq!(schedule.next(), later, "a minute has passed: at once");
        // A thousand new neighbours in a second still make one announce per minute.
        schedule.sent(later);
        for i in 0..1_000 {
            schedule.heard_new_neighbour(later + Duration::from_millis(i));
        }
        assert_eq!(schedule.next(), later + MIN_GAP);
    }

    #[test]
    fn our_torrents_announce_is_a_peer_at_the_source_address_and_announced_port() {
        let mut intake = Intake::new(vec![OURS], "mine".into());
        let now = Instant::now();
        let verdict = intake.consider(from(2), Some(&announce(51413, OURS, Some("theirs"))), now);
        let peer = SocketAddr::from(([10, 77, 0, 2], 51413));
        assert_eq!(verdict, Verdict::Peer { peer, new: true });
    }

    #[test]
    fn own_packets_other_torrents_and_junk_are_not_peers() {
        let mut intake = Intake::new(vec![OURS], "mine".into());
        let now = Instant::now();
        let own = announce(1, OURS, Some("mine"));
        assert_eq!(intake.consider(from(2), Some(&own), now), Verdict::Own);
        let other = announce(1, InfoHash([9; 20]), None);
        assert_eq!(
            intake.consider(from(2), Some(&other), now),
            Verdict::NotOurs
        );
        assert_eq!(intake.consider(from(2), None, now), Verdict::NotOurs);
        let zero = SocketAddr::from(([0, 0, 0, 0], 6771));
        assert!(matches!(
            intake.consider(zero, Some(&announce(1, OURS, None)), now),
            Verdict::BadSource(_)
        ));
    }

    #[test]
    fn a_peer_is_handed_over_at_most_once_a_minute_and_is_new_once_in_ten() {
        let mut intake = Intake::new(vec![OURS], "mine".into());
        let t0 = Instant::now();
        let theirs = announce(7000, OURS, None);
        let peer = SocketAddr::from(([10, 77, 0, 2], 7000));
        let first = intake.consider(from(2), Some(&theirs), t0);
        assert_eq!(first, Verdict::Peer { peer, new: true });
        // libtorrent's two repeats, seconds later.
        let repeat = t0 + Duration::from_secs(4);
        assert_eq!(
            intake.consider(from(2), Some(&theirs), repeat),
            Verdict::Repeat(peer)
        );
        // Its next periodic announce: handed over again (the scheduler may have given up on
        // it), but not new.
        let periodic = t0 + INTERVAL;
        let again = intake.consider(from(2), Some(&theirs), periodic);
        assert_eq!(again, Verdict::Peer { peer, new: false });
        let much_later = t0 + NEW_AFTER + INTERVAL;
        let later = intake.consider(from(2), Some(&theirs), much_later);
        assert_eq!(later, Verdict::Peer { peer, new: true });
    }

    #[test]
    fn a_chatty_source_is_cut_off_for_the_rest_of_its_minute() {
        let mut intake = Intake::new(vec![OURS], "mine".into());
        let t0 = Instant::now();
        for _ in 0..PER_SOURCE {
            assert_ne!(
                intake.consider(from(2), None, t0),
                Verdict::TooChatty(from(2).ip())
            );
        }
        let theirs = announce(7000, OURS, None);
        assert_eq!(
            intake.consider(from(2), Some(&theirs), t0),
            Verdict::TooChatty(from(2).ip())
        );
        // Others are not affected, and the source is heard again a minute later.
        assert!(matches!(
            intake.consider(from(3), Some(&theirs), t0),
            Verdict::Peer { .. }
        ));
        assert!(matches!(
            intake.consider(from(2), Some(&theirs), t0 + WINDOW),
            Verdict::Peer { .. }
        ));
    }

    #[test]
    fn a_flood_from_many_sources_yields_at_most_the_cap_per_minute_and_bounded_memory() {
        let mut intake = Intake::new(vec![OURS], "mine".into());
        let t0 = Instant::now();
        let mut peers = 0;
        for i in 0..10_000u32 {
            let [_, b, c, d] = i.to_be_bytes();
            let source = SocketAddr::from(([10, b, c, d], 6771));
            let verdict = intake.consider(source, Some(&announce(7000, OURS, None)), t0);
            peers += usize::from(matches!(verdict, Verdict::Peer { .. }));
        }
        assert_eq!(peers, MAX_PEERS_PER_MINUTE);
        assert!(
            intake.sources.len() <= MAX_SOURCES,
            "{}",
            intake.sources.len()
        );
        assert!(intake.handed.len() <= MAX_PEERS_PER_MINUTE);
        assert!(intake.known.len() <= MAX_PEERS_PER_MINUTE);
        // A minute on, the sources of the flood are forgotten and the cap is open again.
        let later = t0 + WINDOW;
        let neighbour = SocketAddr::from(([192, 168, 1, 5], 6771));
        let verdict = intake.consider(neighbour, Some(&announce(7000, OURS, None)), later);
        assert!(matches!(verdict, Verdict::Peer { .. }), "{verdict:?}");
    }
}
