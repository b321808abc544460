//! Whom to unchoke: the choking algorithm of BEP 3 ("Choking and optimistic unchoking") —
//! walkthrough §11.
//!
//! Choking is how we decide whom we upload to. Uploading to every peer at once would split our
//! bandwidth over many TCP connections (TCP behaves badly then) and would give nothing back to
//! the peers that upload to us. So every 10 seconds ([`ROUND_INTERVAL`]) the scheduler thread
//! calls [`Choker::round`] with the statistics of every connected peer, and sends `choke` or
//! `unchoke` to each peer whose state changes. This module does no I/O and reads no clock: it
//! only decides, so tests (and students) can feed it made-up peers.
//!
//! One round:
//!
//! ```text
//!   every connected peer
//!     │  keep the interested ones (unchoking the others would be pointless)
//!     ▼
//!   regular slots (4):   the best rates: the download rate from them while we download
//!                        (tit-for-tat; snubbed peers skipped), the upload rate to them
//!                        while we seed                                      → best_peers
//!     +
//!   optimistic slot (1): one of the rest, at random, new peers 3× as likely;
//!                        kept for 3 rounds (30 s), then rotated             → Choker
//!     ▼
//!   unchoked from now on; every other peer choked
//! ```
//!
//! Why an optimistic slot: without it, two peers that each wait for the other to upload first
//! would never start. It also lets us discover a peer faster than our current four, and gives a
//! new peer, which has nothing to trade yet, its first pieces. `--no-optimistic-unchoke`
//! (`ChokerConfig::optimistic` false) takes the slot away, to see that happen in a swarm.

use std::net::SocketAddr;
use std::time::Duration;

/// How often the scheduler calls [`Choker::round`]. BEP 3: changing who is choked only every
/// ten seconds avoids "fibrillation" (choking and unchoking the same peer over and over).
pub const ROUND_INTERVAL: Duration = Duration::from_secs(10);
/// A peer connected for less than this counts as new when the optimistic peer is drawn.
const NEW_PEER_AGE: Duration = Duration::from_secs(60);
/// Lottery tickets of a new peer in the optimistic draw; an old peer has one.
const NEW_PEER_TICKETS: u64 = 3;

/// What the choker knows about one connected peer (computed by the scheduler for the last round).
#[derive(Debug, Clone)]
pub struct PeerStats {
    /// The peer's address: how the choker names it.
    pub peer: SocketAddr,
    /// The peer told us `interested`.
    pub interested: bool,
    /// Bytes per second it sent us during the last round.
    pub download_rate: f64,
    /// Bytes per second we sent it during the last round.
    pub upload_rate: f64,
    /// How long we have been connected.
    pub connected_for: Duration,
    /// We want its pieces but it has sent us no block for a long time.
    pub snubbed: bool,
    /// Unchoked by us right now.
    pub unchoked: bool,
}

/// The choker's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChokerConfig {
    /// Peers unchoked for their rate, besides the optimistic one (BEP 3: four).
    pub regular_slots: usize,
    /// Rounds the optimistic peer keeps its slot before it is rotated: 3 rounds × 10 s are the
    /// 30 s of BEP 3. 0 behaves like 1 (a new draw every round).
    pub optimistic_every: u32,
    /// Whether there is an optimistic slot at all. Off (`--no-optimistic-unchoke`) is an
    /// experiment, not a setting for real swarms: only the regular slots are given, so two
    /// peers that each wait for the other to upload first may never start.
    pub optimistic: bool,
}

impl Default for ChokerConfig {
    fn default() -> ChokerConfig {
        ChokerConfig {
            regular_slots: 4,
            optimistic_every: 3,
            optimistic: true,
        }
    }
}

impl ChokerConfig {
    /// Every slot, the optimistic one included when there is one: how many peers we unchoke
    /// at most.
    pub fn slots(&self) -> usize {
        self.regular_slots + usize::from(self.optimistic)
    }
}

/// What `Choker::fill_free_slots` decided between two rounds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SlotChanges {
    /// Holders that want nothing from us, choked so that their slots go to waiting peers.
    pub choke: Vec<SocketAddr>,
    /// Waiting interested peers, unchoked into the free slots.
    pub unchoke: Vec<SocketAddr>,
}

/// Decides, round after round, which peers are unchoked. It remembers only the optimistic
/// peer and how long it has held its slot; the regular slots are recomputed from scratch
/// every round by [`best_peers`].
#[derive(Debug)]
pub struct Choker {
    /// Slot count and rotation period.
    config: ChokerConfig,
    /// Rounds the current optimistic peer has held its slot, counting the round it was chosen
    /// in; 0 while there is none.
    round: u32,
    /// The optimistically unchoked peer, if any peer could be.
    optimistic: Option<SocketAddr>,
    /// Draws the optimistic peer; seeded in tests so that a run repeats exactly.
    rng: fastrand::Rng,
}

impl Choker {
    /// A choker whose optimistic draws are random.
    pub fn new(config: ChokerConfig) -> Choker {
        Choker::with_rng(config, fastrand::Rng::new())
    }

    /// A choker whose optimistic draws repeat for the same `seed`: for tests.
    pub fn with_seed(config: ChokerConfig, seed: u64) -> Choker {
        Choker::with_rng(config, fastrand::Rng::with_seed(seed))
    }

    fn with_rng(config: ChokerConfig, rng: fastrand::Rng) -> Choker {
        Choker {
            config,
            round: 0,
            optimistic: None,
            rng,
        }
    }

    /// One round: which peers are unchoked from now on. `seeding`: we have every piece.
    /// The answer is the regular peers, best first, then the optimistic peer if there is one;
    /// every peer not in it should be choked.
    pub fn round(&mut self, peers: &[PeerStats], seeding: bool) -> Vec<SocketAddr> {
        // Shuffled: peers with equal rates are ranked at random (see `best_peers`).
        let mut shuffled = peers.to_vec();
        self.rng.shuffle(&mut shuffled);
        let peers = &shuffled[..];
        let regular = best_peers(peers, seeding, self.config.regular_slots);
        if !self.config.optimistic {
            // No optimistic slot: the regular peers are the whole answer.
            self.optimistic = None;
            self.round = 0;
        } else if self.optimistic_may_stay(peers, &regular) {
            self.round += 1;
        } else {
            self.choose_optimistic(peers, &regular);
        }
        let mut unchoked = regular;
        // Never a duplicate: the optimistic peer is never one of the regular ones.
        if let Some(optimistic) = self.optimistic {
            unchoked.push(optimistic);
        }
        unchoked
    }

    /// Between rounds: which peers to unchoke at once because a slot is free, and which
    /// holders give theirs back. A slot is free when its holder left, or nobody took it yet.
    /// A holder that lost interest (it has every piece of ours it lacked, for now) gives its
    /// slot back, choked, but only when an interested peer is waiting for one. The free slots
    /// go to waiting peers, the fastest first by the rate the rounds rank by, ties at random.
    ///
    /// Without this a slot stays empty until the next round (up to 10 s): a swarm younger
    /// than one round hands its slots out first come, first served, and a peer that came
    /// late is choked by everyone until the first round, even after the peers holding the
    /// slots have completed and gone.
    ///
    /// Never more unchoked peers than slots. Counting only the interested ones (so that a
    /// holder whose interest flickers keeps its slot) was tried: in a young swarm, where a peer
    /// is interested in us only while we hold a piece it lacks, leechers of the network lab
    /// ended up unchoking 16 to 19 peers at 50 KiB/s each. A piece then took five seconds to
    /// reach anyone, so nobody had anything new to pass on, and the swarm's upload stayed at
    /// half its capacity until the first round choked the extras. [W11.4]
    pub fn fill_free_slots(&mut self, peers: &[PeerStats], seeding: bool) -> SlotChanges {
        let mut waiting: Vec<&PeerStats> = peers
            .iter()
            .filter(|p| p.interested && !p.unchoked)
            .collect();
        if waiting.is_empty() {
            return SlotChanges::default();
        }
        // A slot held by a peer that wants nothing is given back while someone waits.
        let choke: Vec<SocketAddr> = peers
            .iter()
            .filter(|p| p.unchoked && !p.interested)
            .map(|p| p.peer)
            .collect();
        let holders = peers.iter().filter(|p| p.unchoked).count() - choke.len();
        let free = self.config.slots().saturating_sub(holders);
        // Shuffled, then sorted by a stable sort: equal rates (often all zero early on)
        // stay in random order, so the same low address does not always win.
        self.rng.shuffle(&mut waiting);
        waiting.sort_by(|a, b| rate_for(b, seeding).total_cmp(&rate_for(a, seeding)));
        let unchoke: Vec<SocketAddr> = waiting.into_iter().take(free).map(|p| p.peer).collect();
        // Nobody to take a slot: nobody gives one back either.
        if unchoke.is_empty() {
            return SlotChanges::default();
        }
        SlotChanges { choke, unchoke }
    }

    /// The optimistically unchoked peer chosen by the last round, if any.
    pub fn optimistic(&self) -> Option<SocketAddr> {
        self.optimistic
    }

    /// Whether the current optimistic peer keeps its slot this round.
    fn optimistic_may_stay(&self, peers: &[PeerStats], regular: &[SocketAddr]) -> bool {
        let Some(current) = self.optimistic else {
            return false;
        };
        // Not found among `peers` means it disconnected.
        let still_interested = peers.iter().any(|p| p.peer == current && p.interested);
        // A peer that earned a regular slot frees the optimistic one for somebody else.
        let has_regular_slot = regular.contains(&current);
        let turn_not_over = self.round < self.config.optimistic_every;
        still_interested && !has_regular_slot && turn_not_over
    }

    /// Draws a new optimistic peer among the interested peers without a regular slot.
    /// Snubbed peers may win: the optimistic slot is how a snubbed peer gets another chance.
    /// [W11.2]
    fn choose_optimistic(&mut self, peers: &[PeerStats], regular: &[SocketAddr]) {
        let mut candidates: Vec<&PeerStats> = peers
            .iter()
            .filter(|p| p.interested && !regular.contains(&p.peer))
            .collect();
        // Rotating means someone else's turn, so the outgoing peer sits this draw out, unless
        // it is the only candidate. (A plain re-draw would give it the slot again 1 time in n.)
        if candidates.len() > 1 {
            candidates.retain(|p| Some(p.peer) != self.optimistic);
        }
        self.optimistic = draw_weighted(&candidates, &mut self.rng);
        self.round = if self.optimistic.is_some() { 1 } else { 0 };
    }
}

/// The regular slots alone, a pure function: the best `slots` interested peers by the rate that
/// matters (download rate while downloading, skipping snubbed peers; upload rate while seeding).
/// Ties broken by address so the result is deterministic. Best first.
///
/// While downloading this is tit-for-tat: we upload to those who upload to us. While seeding
/// nobody uploads to us, so we favour the peers that take data fastest: the file spreads
/// quickest that way, and snubbing means nothing.
///
/// BEP 3 also unchokes peers that are *not* interested but upload faster than the worst of the
/// four, so that one can take a slot at once when it becomes interested. We leave them choked:
/// simpler, and they wait at most one round. [W11.1]
pub fn best_peers(peers: &[PeerStats], seeding: bool, slots: usize) -> Vec<SocketAddr> {
    let rate = |p: &PeerStats| rate_for(p, seeding);
    let mut eligible: Vec<&PeerStats> = peers
        .iter()
        .filter(|p| p.interested && (seeding || !p.snubbed))
        .collect();
    // Fastest first (`total_cmp`: a total order on f64, even for NaN). A stable sort: equal
    // rates keep the order they came in, so the same input always gives the same answer, and
    // `Choker::round` shuffles that order first. Ranking ties by address made every leecher
    // of a fresh swarm (all rates 0) prefer the same lowest addresses, round after round.
    eligible.sort_by(|a, b| rate(b).total_cmp(&rate(a)));
    eligible.iter().take(slots).map(|p| p.peer).collect()
}

/// The rate a peer is ranked by: what it sends us while we download (tit-for-tat), what we
/// send it while we seed.
fn rate_for(peer: &PeerStats, seeding: bool) -> f64 {
    if seeding {
        peer.upload_rate
    } else {
        peer.download_rate
    }
}

/// A new peer's lottery tickets, or an old peer's single one.
fn tickets(peer: &PeerStats) -> u64 {
    if peer.connected_for < NEW_PEER_AGE {
        NEW_PEER_TICKETS
    } else {
        1
    }
}

/// Draws one ticket among all the candidates' tickets: a new peer (connected for less than
/// 60 s) is three times as likely to win as an old one. `None` if there is no candidate.
fn draw_weighted(candidates: &[&PeerStats], rng: &mut fastrand::Rng) -> Option<SocketAddr> {
    let total: u64 = candidates.iter().map(|p| tickets(p)).sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.u64(..total);
    for candidate in candidates {
        let held = tickets(candidate);
        if ticket < held {
            return Some(candidate.peer);
        }
        ticket -= held;
    }
    // Not reached: `ticket < total`, the sum of every candidate's tickets.
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// An interested peer, connected for two minutes, neither snubbed nor unchoked, that sends
    /// us `down` and takes `up` bytes per second.
    fn peer(port: u16, down: f64, up: f64) -> PeerStats {
        PeerStats {
            peer: addr(port),
            interested: true,
            download_rate: down,
            upload_rate: up,
            connected_for: Duration::from_secs(120),
            snubbed: false,
            unchoked: false,
        }
    }

    /// Four fast peers (ports 1–4) that fill the regular slots, and three slow ones (5–7)
    /// that can only get the optimistic slot.
    fn four_fast_three_slow() -> Vec<PeerStats> {
        let mut peers: Vec<PeerStats> = (1..=4).map(|n| peer(n, 1000.0 * n as f64, 0.0)).collect();
        peers.extend((5..=7).map(|n| peer(n, 10.0, 0.0)));
        peers
    }

    fn slow() -> [SocketAddr; 3] {
        [addr(5), addr(6), addr(7)]
    }

    #[test]
    fn default_config_is_four_slots_and_thirty_seconds() {
        let config = ChokerConfig::default();
        assert_eq!(config.regular_slots, 4);
        assert_eq!(config.optimistic_every, 3);
        assert_eq!(
            ROUND_INTERVAL * config.optimistic_every,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn downloading_unchokes_the_four_fastest_interested_peers() {
        let peers: Vec<PeerStats> = (1..=6).map(|n| peer(n, 100.0 * n as f64, 0.0)).collect();
        let best = best_peers(&peers, false, 4);
        assert_eq!(
            best,
            vec![addr(6), addr(5), addr(4), addr(3)],
            "fastest first"
        );
    }

    #[test]
    fn a_fast_peer_that_is_not_interested_gets_no_slot() {
        let mut peers: Vec<PeerStats> = (1..=6).map(|n| peer(n, 100.0 * n as f64, 0.0)).collect();
        peers.push(PeerStats {
            interested: false,
            ..peer(9, 9000.0, 9000.0)
        });
        assert!(!best_peers(&peers, false, 4).contains(&addr(9)));
        assert!(!best_peers(&peers, true, 4).contains(&addr(9)));
    }

    #[test]
    fn a_snubbed_peer_gets_no_regular_slot_while_downloading() {
        let mut peers: Vec<PeerStats> = (1..=6).map(|n| peer(n, 100.0 * n as f64, 0.0)).collect();
        peers.push(PeerStats {
            snubbed: true,
            ..peer(9, 9000.0, 0.0)
        });
        let best = best_peers(&peers, false, 4);
        assert_eq!(best, vec![addr(6), addr(5), addr(4), addr(3)]);
    }

    #[test]
    fn seeding_ranks_by_upload_rate_and_ignores_snubbing() {
        // Download rates say the opposite of upload rates: they must be ignored.
        let mut peers: Vec<PeerStats> = (1..=6)
            .map(|n| peer(n, 100.0 * n as f64, 1000.0 - 100.0 * n as f64))
            .collect();
        peers.push(PeerStats {
            snubbed: true,
            ..peer(9, 0.0, 5000.0)
        });
        let best = best_peers(&peers, true, 4);
        assert_eq!(best, vec![addr(9), addr(1), addr(2), addr(3)]);
    }

    #[test]
    fn equal_rates_keep_the_order_they_came_in() {
        let peers: Vec<PeerStats> = [6, 3, 1, 5, 2, 4].map(|n| peer(n, 0.0, 0.0)).to_vec();
        let best = best_peers(&peers, false, 4);
        assert_eq!(best, vec![addr(6), addr(3), addr(1), addr(5)]);
    }

    #[test]
    fn a_round_ranks_equal_rates_at_random_not_by_address() {
        // Twenty peers that sent nothing yet, as at the start of a swarm: over a few chokers,
        // the regular slots must not always go to the four lowest addresses.
        let peers: Vec<PeerStats> = (1..=20).map(|n| peer(n, 0.0, 0.0)).collect();
        let mut won = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let mut choker = Choker::with_seed(ChokerConfig::default(), seed);
            let unchoked = choker.round(&peers, false);
            won.extend(unchoked[..4].iter().copied());
        }
        assert!(won.len() >= 15, "always the same few: {won:?}");
    }

    #[test]
    fn fewer_interested_peers_than_slots_are_all_unchoked_and_nothing_else() {
        let peers = vec![
            peer(1, 0.0, 0.0),
            peer(2, 50.0, 0.0),
            PeerStats {
                interested: false,
                ..peer(3, 0.0, 0.0)
            },
        ];
        let mut choker = Choker::with_seed(ChokerConfig::default(), 1);
        let unchoked = choker.round(&peers, false);
        assert_eq!(unchoked, vec![addr(2), addr(1)]);
        assert_eq!(choker.optimistic(), None, "no candidate left");
    }

    #[test]
    fn the_slots_setting_is_respected() {
        let config = ChokerConfig {
            regular_slots: 2,
            ..ChokerConfig::default()
        };
        let peers: Vec<PeerStats> = (1..=6).map(|n| peer(n, 100.0 * n as f64, 0.0)).collect();
        let unchoked = Choker::with_seed(config, 1).round(&peers, false);
        assert_eq!(unchoked.len(), 3, "2 regular + 1 optimistic: {unchoked:?}");
        assert_eq!(unchoked[..2], [addr(6), addr(5)]);
        assert!([1, 2, 3, 4].map(addr).contains(&unchoked[2]));
    }

    #[test]
    fn the_optimistic_peer_is_an_interested_peer_without_a_regular_slot() {
        let mut peers = four_fast_three_slow();
        peers.push(PeerStats {
            interested: false,
            ..peer(8, 0.0, 0.0)
        });
        for seed in 0..50 {
            let mut choker = Choker::with_seed(ChokerConfig::default(), seed);
            let unchoked = choker.round(&peers, false);
            let optimistic = choker.optimistic().expect("three candidates");
            assert!(slow().contains(&optimistic), "seed {seed}: {optimistic}");
            assert_eq!(unchoked[..4], best_peers(&peers, false, 4));
            assert_eq!(unchoked[4..], [optimistic]);
        }
    }

    #[test]
    fn a_snubbed_peer_can_still_be_the_optimistic_peer() {
        let mut peers = four_fast_three_slow();
        peers.truncate(4);
        peers.push(PeerStats {
            snubbed: true,
            ..peer(9, 9000.0, 0.0)
        });
        let mut choker = Choker::with_seed(ChokerConfig::default(), 1);
        let unchoked = choker.round(&peers, false);
        assert_eq!(choker.optimistic(), Some(addr(9)));
        assert_eq!(unchoked.len(), 5);
    }

    #[test]
    fn the_optimistic_peer_is_kept_for_three_rounds_then_rotated() {
        let peers = four_fast_three_slow();
        let mut choker = Choker::with_seed(ChokerConfig::default(), 7);
        let mut history = Vec::new();
        for _ in 0..30 {
            choker.round(&peers, false);
            history.push(choker.optimistic().expect("three candidates"));
        }
        for r in 1..history.len() {
            if r % 3 == 0 {
                assert_ne!(
                    history[r],
                    history[r - 1],
                    "rotated at round {r}: {history:?}"
                );
            } else {
                assert_eq!(history[r], history[r - 1], "kept at round {r}: {history:?}");
            }
        }
        for candidate in slow() {
            assert!(history.contains(&candidate), "{candidate} never had a turn");
        }
    }

    #[test]
    fn a_lone_candidate_keeps_the_optimistic_slot_after_its_turn() {
        let mut peers = four_fast_three_slow();
        peers.truncate(5);
        let mut choker = Choker::with_seed(ChokerConfig::default(), 1);
        for _ in 0..7 {
            choker.round(&peers, false);
            assert_eq!(choker.optimistic(), Some(addr(5)));
        }
    }

    /// Runs a first round, then applies `change` to the peers and to that round's optimistic
    /// peer. Returns the choker, the changed peers and the first optimistic peer.
    fn first_round_then(change: impl Fn(&mut PeerStats)) -> (Choker, Vec<PeerStats>, SocketAddr) {
        let mut peers = four_fast_three_slow();
        let mut choker = Choker::with_seed(ChokerConfig::default(), 3);
        choker.round(&peers, false);
        let first = choker.optimistic().expect("three candidates");
        peers
            .iter_mut()
            .filter(|p| p.peer == first)
            .for_each(change);
        (choker, peers, first)
    }

    #[test]
    fn the_optimistic_peer_is_replaced_at_once_when_it_disconnects() {
        let (mut choker, mut peers, first) = first_round_then(|_| {});
        peers.retain(|p| p.peer != first);
        let unchoked = choker.round(&peers, false);
        let second = choker.optimistic().expect("two candidates left");
        assert_ne!(second, first);
        assert!(slow().contains(&second));
        assert!(!unchoked.contains(&first));
        // The newcomer gets a full turn of its own: this round and the next two.
        choker.round(&peers, false);
        choker.round(&peers, false);
        assert_eq!(choker.optimistic(), Some(second));
        choker.round(&peers, false);
        assert_ne!(choker.optimistic(), Some(second));
    }

    #[test]
    fn the_optimistic_peer_is_replaced_at_once_when_it_loses_interest() {
        let (mut choker, peers, first) = first_round_then(|p| p.interested = false);
        let unchoked = choker.round(&peers, false);
        let second = choker.optimistic().expect("two candidates left");
        assert_ne!(second, first);
        assert!(slow().contains(&second));
        assert!(!unchoked.contains(&first), "choked: not interested");
    }

    #[test]
    fn the_optimistic_peer_is_replaced_at_once_when_it_earns_a_regular_slot() {
        let (mut choker, peers, first) = first_round_then(|p| p.download_rate = 99_000.0);
        let unchoked = choker.round(&peers, false);
        let second = choker.optimistic().expect("two candidates left");
        assert_ne!(second, first);
        assert_eq!(unchoked[0], first, "now the fastest regular peer");
        assert_eq!(unchoked[4], second);
        let mut distinct = unchoked.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            unchoked.len(),
            "no duplicates: {unchoked:?}"
        );
    }

    /// `peer(port, down, up)` that we already unchoke.
    fn unchoked(port: u16, down: f64, up: f64) -> PeerStats {
        PeerStats {
            unchoked: true,
            ..peer(port, down, up)
        }
    }

    #[test]
    fn a_free_slot_goes_to_the_fastest_waiting_peer() {
        // Five slots: four held, one free; peer 6 sends us more than peer 5.
        let mut peers: Vec<PeerStats> = (1..=4).map(|n| unchoked(n, 100.0, 0.0)).collect();
        peers.push(peer(5, 10.0, 0.0));
        peers.push(peer(6, 50.0, 0.0));
        let mut choker = Choker::with_seed(ChokerConfig::default(), 1);
        assert_eq!(choker.fill_free_slots(&peers, false).unchoke, [addr(6)]);
        // Seeding ranks by what we send: peer 5 takes more.
        peers[4].upload_rate = 90.0;
        let changes = choker.fill_free_slots(&peers, true);
        assert_eq!(changes.unchoke, [addr(5)]);
        assert!(changes.choke.is_empty(), "{changes:?}");
    }

    #[test]
    fn no_slot_is_free_while_five_interested_peers_hold_them() {
        let mut peers: Vec<PeerStats> = (1..=5).map(|n| unchoked(n, 0.0, 0.0)).collect();
        peers.push(peer(6, 1000.0, 0.0));
        let mut choker = Choker::with_seed(ChokerConfig::default(), 1);
        assert_eq!(
            choker.fill_free_slots(&peers, false),
            SlotChanges::default()
        );
        // Without the optimistic slot there are four: one peer too many is never choked
        // here (a round does that), and nobody more is unchoked.
        let config = ChokerConfig {
            optimistic: false,
            ..ChokerConfig::default()
        };
        let mut choker = Choker::with_seed(config, 1);
        assert_eq!(
            choker.fill_free_slots(&peers, false),
            SlotChanges::default()
        );
    }

    #[test]
    fn a_holder_that_lost_interest_gives_its_slot_to_a_waiting_peer() {
        // Peer 1 has every piece of ours it lacked: still unchoked, no longer interested.
        // Peer 7 waits: peer 1 is choked and its slot goes to peer 7.
        let mut peers: Vec<PeerStats> = (1..=5).map(|n| unchoked(n, 0.0, 0.0)).collect();
        peers[0].interested = false;
        peers.push(peer(7, 0.0, 0.0));
        peers.push(PeerStats {
            interested: false,
            ..peer(8, 0.0, 0.0)
        });
        let mut choker = Choker::with_seed(ChokerConfig::default(), 1);
        let changes = choker.fill_free_slots(&peers, false);
        assert_eq!(changes.choke, [addr(1)]);
        assert_eq!(changes.unchoke, [addr(7)]);
        // Nobody waiting: the holder keeps its slot, so a peer whose interest flickers is
        // not choked and unchoked for nothing.
        peers.truncate(5);
        assert_eq!(
            choker.fill_free_slots(&peers, false),
            SlotChanges::default()
        );
    }

    #[test]
    fn never_more_peers_unchoked_than_slots_however_interest_flickers() {
        // Twenty peers whose interest comes and goes, as in a young swarm: after any number
        // of changes at most five are unchoked.
        let mut peers: Vec<PeerStats> = (1..=20).map(|n| peer(n, 0.0, 0.0)).collect();
        let mut choker = Choker::with_seed(ChokerConfig::default(), 7);
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..500 {
            let n = rng.usize(..peers.len());
            peers[n].interested = !peers[n].interested;
            let changes = choker.fill_free_slots(&peers, false);
            for p in peers.iter_mut() {
                if changes.choke.contains(&p.peer) {
                    p.unchoked = false;
                }
                if changes.unchoke.contains(&p.peer) {
                    p.unchoked = true;
                }
            }
            let count = peers.iter().filter(|p| p.unchoked).count();
            assert!(count <= 5, "{count} unchoked");
        }
    }

    #[test]
    fn free_slots_among_equal_peers_go_at_random() {
        let peers: Vec<PeerStats> = (1..=20).map(|n| peer(n, 0.0, 0.0)).collect();
        let mut won = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let chosen =
                Choker::with_seed(ChokerConfig::default(), seed).fill_free_slots(&peers, false);
            assert_eq!(chosen.unchoke.len(), 5, "five free slots");
            won.extend(chosen.unchoke);
        }
        assert!(won.len() >= 15, "always the same few: {won:?}");
    }

    #[test]
    fn without_the_optimistic_slot_only_the_regular_peers_are_unchoked() {
        let config = ChokerConfig {
            optimistic: false,
            ..ChokerConfig::default()
        };
        assert_eq!(config.slots(), 4);
        assert_eq!(ChokerConfig::default().slots(), 5);
        let peers = four_fast_three_slow();
        for seeding in [false, true] {
            let mut choker = Choker::with_seed(config, 1);
            for round in 0..7 {
                let unchoked = choker.round(&peers, seeding);
                assert_eq!(unchoked.len(), 4, "round {round}");
                // Seeding, all seven took the same from us: any four will do.
                if !seeding {
                    assert_eq!(unchoked, best_peers(&peers, seeding, 4), "round {round}");
                }
                assert_eq!(choker.optimistic(), None, "round {round}");
            }
        }
        // A peer that waits for us to upload first (it has sent us nothing) never gets a
        // slot while four others send more: what the optimistic slot is there to prevent.
        let mut choker = Choker::with_seed(config, 1);
        for _ in 0..30 {
            let unchoked = choker.round(&peers, false);
            assert!(slow().iter().all(|p| !unchoked.contains(p)), "{unchoked:?}");
        }
    }

    #[test]
    fn new_peers_are_three_times_as_likely_to_be_the_optimistic_peer() {
        // One regular slot, taken by peer 1; peer 2 is new, peers 3–5 are old.
        let config = ChokerConfig {
            regular_slots: 1,
            ..ChokerConfig::default()
        };
        let mut peers = vec![peer(1, 1000.0, 0.0), peer(2, 0.0, 0.0)];
        peers[1].connected_for = Duration::from_secs(20);
        peers.extend((3..=5).map(|n| peer(n, 0.0, 0.0)));
        let draws = 3000;
        let mut wins = [0; 6];
        for seed in 0..draws {
            let mut choker = Choker::with_seed(config, seed);
            choker.round(&peers, false);
            let winner = choker.optimistic().expect("four candidates");
            wins[winner.port() as usize] += 1;
        }
        // Tickets: 3 for the new peer, 1 for each old one: 3/6 = 50 %, 1/6 ≈ 17 % each.
        assert_eq!(wins[1], 0, "peer 1 has a regular slot");
        assert!(
            (1200..=1800).contains(&wins[2]),
            "new peer won {} of {draws}",
            wins[2]
        );
        for old in 3..=5 {
            assert!((350..=650).contains(&wins[old]), "old peer {old}: {wins:?}");
        }
    }
}
