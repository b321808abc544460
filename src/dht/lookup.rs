//! One iterative lookup: Kademlia's node lookup as BEP 5 ("DHT Protocol") uses it for
//! `find_node` and `get_peers` — walkthrough §15.
//!
//! To find the nodes closest to a target id (and, for `get_peers`, the peers they store), we
//! ask the closest nodes we know; each answers with the closest nodes *it* knows, which are
//! closer to the target, and we ask those in turn. Every round gets at least a bit closer,
//! because each node knows its own neighbourhood in detail (see `routing`).
//!
//! The `dht` thread drives a [`Lookup`]; this module only decides:
//!
//! ```text
//!   Lookup::new(target, closest from our routing table)
//!   loop until is_done():
//!       next_queries(now)   → up to ALPHA nodes to send find_node / get_peers to
//!       answered(...)       ← a reply: its nodes become candidates, its peers are kept
//!       failed(addr)        ← an error reply; silence becomes a failure after QUERY_TIMEOUT
//!       take_timed_out()    → the silent ones, for the routing table
//!   closest_answered()      → the K closest that answered, with their tokens (announce_peer)
//! ```
//!
//! When to stop is the subtle part. Stopping at the first answer that carries peers, or when
//! one round brings nothing closer, can miss the nodes closest to the target (a test below
//! shows it). This lookup stops only when the K closest candidates it has not seen fail have
//! all answered: then no node it could still ask is closer than those K.

use super::{ALPHA, K, NodeId, NodeInfo};
use std::collections::HashSet;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// A query without an answer after this long counts as failed.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Candidates kept beyond those already asked. A node may answer with thousands of nodes (a
/// large UDP packet holds about 2,500); only the closest few can matter, so the list stays
/// this long and the farthest not yet asked are dropped.
pub const MAX_CANDIDATES: usize = 8 * K;

/// Peers kept per lookup. A popular torrent's nodes may each hold hundreds; this many are
/// more than a download can connect to, and bound what the network can make us store.
pub const MAX_PEERS: usize = 4096;

/// What one answer did, for printing the lookup step by step (the `dht_get_peers` command
/// shows these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The node that answered, with the id it gave in its answer.
    pub node: NodeInfo,
    /// Leading bits its id shares with the target: how close the lookup has come.
    pub shared_bits: u32,
    /// Nodes in its answer.
    pub nodes: usize,
    /// Of those, how many were new to this lookup and close enough to be kept.
    pub new_candidates: usize,
    /// Peers in its answer.
    pub values: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Unasked,
    InFlight {
        since: Instant,
    },
    /// It answered, with a token if it was a `get_peers` answer.
    Answered {
        token: Option<Vec<u8>>,
    },
    /// It timed out or answered with an error. Kept in the list so it is not asked again
    /// when another node mentions it.
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    /// The id is only what some node claimed until this one answers with its own.
    info: NodeInfo,
    state: State,
}

/// One lookup for one target.
#[derive(Debug, Clone)]
pub struct Lookup {
    target: NodeId,
    /// Closest to the target first. At most MAX_CANDIDATES plus those already asked (one per
    /// query sent), and no address or id twice.
    candidates: Vec<Candidate>,
    /// In arrival order, no duplicates; `seen_peers` holds the same addresses for the check.
    peers: Vec<SocketAddrV4>,
    seen_peers: HashSet<SocketAddrV4>,
    timed_out: Vec<SocketAddrV4>,
    queries_sent: usize,
}

impl Lookup {
    /// A lookup for `target` starting from `start` (usually the closest nodes in our routing
    /// table). Nothing is sent yet: `now` is not needed until `next_queries`.
    pub fn new(target: NodeId, start: Vec<NodeInfo>, _now: Instant) -> Lookup {
        let mut lookup = Lookup {
            target,
            candidates: Vec::new(),
            peers: Vec::new(),
            seen_peers: HashSet::new(),
            timed_out: Vec::new(),
            queries_sent: 0,
        };
        for node in start {
            lookup.add_candidate(node);
        }
        lookup
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Adds a node heard of, unless its address or id is already a candidate or it is too far
    /// to keep. Returns whether it was kept.
    fn add_candidate(&mut self, node: NodeInfo) -> bool {
        // The first claim for an id or an address wins: a second one is either the same node
        // again or someone trying to get asked in its place.
        if self
            .candidates
            .iter()
            .any(|c| c.info.addr == node.addr || c.info.id == node.id)
        {
            return false;
        }
        let distance = node.id.distance(&self.target);
        let at = self
            .candidates
            .partition_point(|c| c.info.id.distance(&self.target) < distance);
        self.candidates.insert(
            at,
            Candidate {
                info: node,
                state: State::Unasked,
            },
        );
        if self.candidates.len() > MAX_CANDIDATES {
            // Drop the farthest node not asked yet; it may be the one just added.
            if let Some(far) = self
                .candidates
                .iter()
                .rposition(|c| c.state == State::Unasked)
            {
                self.candidates.remove(far);
                return far != at;
            }
        }
        true
    }

    fn in_flight(&self) -> usize {
        self.candidates
            .iter()
            .filter(|c| matches!(c.state, State::InFlight { .. }))
            .count()
    }

    /// Up to ALPHA - in_flight closest unasked candidates, marked in flight at `now`. Also
    /// expires queries older than QUERY_TIMEOUT (they count as failed) before choosing.
    pub fn next_queries(&mut self, now: Instant) -> Vec<NodeInfo> {
        for c in &mut self.candidates {
            if let State::InFlight { since } = c.state
                && now.saturating_duration_since(since) >= QUERY_TIMEOUT
            {
                c.state = State::Failed;
                self.timed_out.push(c.info.addr);
            }
        }
        if self.is_done() {
            return Vec::new();
        }
        let room = ALPHA.saturating_sub(self.in_flight());
        let mut chosen = Vec::new();
        // [W15.7] Closest first: the list is sorted, so the first unasked ones are the best to ask.
        for c in &mut self.candidates {
            if chosen.len() == room {
                break;
            }
            if c.state == State::Unasked {
                c.state = State::InFlight { since: now };
                chosen.push(c.info);
            }
        }
        self.queries_sent += chosen.len();
        chosen
    }

    /// Queries that timed out since the last call (expired by next_queries or by this), for
    /// the caller to tell the routing table.
    pub fn take_timed_out(&mut self) -> Vec<SocketAddrV4> {
        std::mem::take(&mut self.timed_out)
    }

    /// The node at `from` answered our query: `id` is the id it gave, `nodes` the nodes it
    /// returned, `values` the peers (get_peers only), `token` its write token (get_peers
    /// only). None if no query to `from` is in flight (a stranger, a duplicate answer, or one
    /// that came after its timeout): the answer is ignored.
    pub fn answered(
        &mut self,
        from: SocketAddrV4,
        id: NodeId,
        nodes: &[NodeInfo],
        values: &[SocketAddrV4],
        token: Option<Vec<u8>>,
        _now: Instant,
    ) -> Option<Step> {
        let at = self
            .candidates
            .iter()
            .position(|c| c.info.addr == from && matches!(c.state, State::InFlight { .. }))?;
        // The id we had was what another node told us; the node's own answer is what counts
        // for its distance, so it may move in the list.
        let mut candidate = self.candidates.remove(at);
        candidate.info.id = id;
        candidate.state = State::Answered { token };
        let answered = candidate.info;
        let distance = id.distance(&self.target);
        let at = self
            .candidates
            .partition_point(|c| c.info.id.distance(&self.target) < distance);
        self.candidates.insert(at, candidate);
        // If another address had been named with this id, that claim was false: drop it,
        // unless it is already asked (then it answers for itself).
        self.candidates
            .retain(|c| c.info.id != id || c.info.addr == from || c.state != State::Unasked);

        // Count at the end: a node kept when it arrived may be pushed out by closer ones later
        // in the same answer.
        let mut added = HashSet::new();
        for node in nodes {
            if self.add_candidate(*node) {
                added.insert(node.addr);
            }
        }
        let new_candidates = self
            .candidates
            .iter()
            .filter(|c| added.contains(&c.info.addr))
            .count();
        for peer in values {
            if self.peers.len() >= MAX_PEERS {
                break;
            }
            if self.seen_peers.insert(*peer) {
                self.peers.push(*peer);
            }
        }
        Some(Step {
            node: answered,
            shared_bits: id.shared_prefix_bits(&self.target),
            nodes: nodes.len(),
            new_candidates,
            values: values.len(),
        })
    }

    /// The query to `from` got an error answer (or the caller gave up on it): it will not be
    /// asked again. Ignored unless a query to `from` is in flight.
    pub fn failed(&mut self, from: SocketAddrV4) {
        if let Some(c) = self
            .candidates
            .iter_mut()
            .find(|c| c.info.addr == from && matches!(c.state, State::InFlight { .. }))
        {
            c.state = State::Failed;
        }
    }

    /// [W15.8] Done when the K closest candidates that have not failed have all answered, or when
    /// nothing is left to ask and nothing is in flight. (Timeouts are noticed by
    /// `next_queries`: call it at `next_deadline`.)
    pub fn is_done(&self) -> bool {
        let closest_all_answered = self
            .candidates
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(K)
            .all(|c| matches!(c.state, State::Answered { .. }));
        let nothing_left = self
            .candidates
            .iter()
            .all(|c| matches!(c.state, State::Answered { .. } | State::Failed));
        closest_all_answered || nothing_left
    }

    /// When the next in-flight query times out (for the caller's wait), if any is in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.candidates
            .iter()
            .filter_map(|c| match c.state {
                State::InFlight { since } => Some(since + QUERY_TIMEOUT),
                _ => None,
            })
            .min()
    }

    /// The peers found so far, in the order they arrived, each once.
    pub fn peers(&self) -> &[SocketAddrV4] {
        &self.peers
    }

    /// Up to K closest nodes that answered, with the token each gave (None for find_node
    /// lookups).
    pub fn closest_answered(&self) -> Vec<(NodeInfo, Option<Vec<u8>>)> {
        self.candidates
            .iter()
            .filter_map(|c| match &c.state {
                State::Answered { token } => Some((c.info, token.clone())),
                _ => None,
            })
            .take(K)
            .collect()
    }

    pub fn queries_sent(&self) -> usize {
        self.queries_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::routing::{Heard, RoutingTable};
    use std::collections::{HashMap, VecDeque};
    use std::net::Ipv4Addr;

    fn addr(n: u32) -> SocketAddrV4 {
        let [_, a, b, c] = n.to_be_bytes();
        SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), 6881)
    }

    fn random_id(rng: &mut fastrand::Rng) -> NodeId {
        NodeId(std::array::from_fn(|_| rng.u8(..)))
    }

    /// An id with this first byte and this last byte, zeros between.
    fn id(first: u8, last: u8) -> NodeId {
        let mut bytes = [0u8; 20];
        bytes[0] = first;
        bytes[19] = last;
        NodeId(bytes)
    }

    /// A pretend DHT: every node has a routing table that has heard from every other node, and
    /// answers a lookup with the K closest nodes in its table. Some nodes never answer.
    struct Network {
        nodes: Vec<NodeInfo>,
        tables: HashMap<SocketAddrV4, RoutingTable>,
        silent: HashSet<SocketAddrV4>,
        peers: HashMap<SocketAddrV4, Vec<SocketAddrV4>>,
    }

    impl Network {
        fn new(size: u32, seed: u64, t0: Instant) -> Network {
            let mut rng = fastrand::Rng::with_seed(seed);
            let nodes: Vec<NodeInfo> = (0..size)
                .map(|n| NodeInfo {
                    id: random_id(&mut rng),
                    addr: addr(n),
                })
                .collect();
            let mut tables = HashMap::new();
            for me in &nodes {
                let mut table = RoutingTable::new(me.id, t0);
                for other in &nodes {
                    table.heard_from(*other, Heard::Reply, t0);
                }
                tables.insert(me.addr, table);
            }
            Network {
                nodes,
                tables,
                silent: HashSet::new(),
                peers: HashMap::new(),
            }
        }

        /// The true K closest nodes to `target` among those that answer.
        fn truly_closest(&self, target: &NodeId) -> Vec<NodeId> {
            let mut ids: Vec<NodeId> = self
                .nodes
                .iter()
                .filter(|n| !self.silent.contains(&n.addr))
                .map(|n| n.id)
                .collect();
            ids.sort_by_key(|id| id.distance(target));
            ids.truncate(K);
            ids
        }

        /// Runs a lookup to the end as the `dht` thread would, answering queries in the order
        /// they were sent and jumping the clock to the next deadline when nothing answers.
        /// Returns the steps; checks on the way that at most ALPHA queries are ever in flight.
        fn run(&self, lookup: &mut Lookup, t0: Instant) -> Vec<Step> {
            let mut now = t0;
            let mut answers: VecDeque<NodeInfo> = VecDeque::new();
            let mut steps = Vec::new();
            for _ in 0..10_000 {
                if lookup.is_done() {
                    return steps;
                }
                let sent = lookup.next_queries(now);
                assert!(
                    lookup.in_flight() <= ALPHA,
                    "{} in flight",
                    lookup.in_flight()
                );
                answers.extend(sent.into_iter().filter(|n| !self.silent.contains(&n.addr)));
                if let Some(to) = answers.pop_front() {
                    let table = &self.tables[&to.addr];
                    let nodes = table.closest(&lookup.target(), K, now);
                    let values = self.peers.get(&to.addr).cloned().unwrap_or_default();
                    let step = lookup.answered(to.addr, table.own_id(), &nodes, &values, None, now);
                    steps.push(step.expect("the query was in flight"));
                    now += Duration::from_millis(50);
                } else if let Some(deadline) = lookup.next_deadline() {
                    now = deadline;
                } else {
                    assert!(lookup.is_done(), "nothing to ask, nothing in flight");
                }
            }
            panic!("the lookup did not finish in 10,000 rounds");
        }
    }

    fn answered_ids(lookup: &Lookup) -> Vec<NodeId> {
        lookup
            .closest_answered()
            .iter()
            .map(|(n, _)| n.id)
            .collect()
    }

    #[test]
    fn a_lookup_finds_the_k_closest_nodes_of_a_simulated_network() {
        let t0 = Instant::now();
        let net = Network::new(200, 1, t0);
        let mut rng = fastrand::Rng::with_seed(2);
        // We are one more node, which knows the network as well as any other node does.
        let mut ours = RoutingTable::new(random_id(&mut rng), t0);
        for n in &net.nodes {
            ours.heard_from(*n, Heard::Reply, t0);
        }
        for _ in 0..50 {
            let target = random_id(&mut rng);
            let mut lookup = Lookup::new(target, ours.closest(&target, K, t0), t0);
            let steps = net.run(&mut lookup, t0);
            assert!(lookup.is_done());
            assert_eq!(answered_ids(&lookup), net.truly_closest(&target));
            // It may stop with queries still in flight, once the K closest have answered.
            assert!(steps.len() <= lookup.queries_sent());
            assert!(
                lookup.queries_sent() < 60,
                "{} queries",
                lookup.queries_sent()
            );
        }
    }

    #[test]
    fn each_round_of_answers_comes_closer_to_the_target() {
        let t0 = Instant::now();
        let net = Network::new(200, 3, t0);
        let mut rng = fastrand::Rng::with_seed(4);
        let target = random_id(&mut rng);
        // Start from the three nodes farthest from the target: the worst possible start.
        let mut far = net.nodes.clone();
        far.sort_by_key(|n| std::cmp::Reverse(n.id.distance(&target)));
        let mut lookup = Lookup::new(target, far[..3].to_vec(), t0);
        let steps = net.run(&mut lookup, t0);
        let bits: Vec<u32> = steps.iter().map(|s| s.shared_bits).collect();
        // The first answers come from nodes sharing no bit with the target; the best of each
        // later group of ALPHA answers is closer, until the closest node answers.
        assert_eq!(bits[..3], [0, 0, 0]);
        let best: Vec<u32> = bits
            .chunks(ALPHA)
            .map(|c| *c.iter().max().unwrap_or(&0))
            .collect();
        let closest = net.truly_closest(&target)[0].shared_prefix_bits(&target);
        let reached = best
            .iter()
            .position(|&b| b == closest)
            .expect("reaches the closest");
        assert!(
            best[..=reached].windows(2).all(|w| w[0] < w[1]),
            "best shared bits per round: {best:?}"
        );
    }

    #[test]
    fn a_lookup_with_silent_nodes_still_finishes() {
        let t0 = Instant::now();
        let mut net = Network::new(200, 5, t0);
        // Every fourth node never answers.
        net.silent = net.nodes.iter().step_by(4).map(|n| n.addr).collect();
        let mut rng = fastrand::Rng::with_seed(6);
        let (mut timeouts, mut total_hits) = (0, 0);
        for _ in 0..20 {
            let target = random_id(&mut rng);
            let mut start = net.nodes.clone();
            rng.shuffle(&mut start);
            start.truncate(K);
            let mut lookup = Lookup::new(target, start, t0);
            net.run(&mut lookup, t0);
            let timed_out = lookup.take_timed_out();
            assert!(timed_out.iter().all(|a| net.silent.contains(a)));
            assert_eq!(lookup.take_timed_out(), vec![], "each reported once");
            timeouts += timed_out.len();
            let found = answered_ids(&lookup);
            let truly = net.truly_closest(&target);
            assert_eq!(found[0], truly[0], "the closest node that answers is found");
            // Not always all K: every answer holds only K nodes, and silent nodes (still in
            // the others' tables) take some of those places, so a node just outside the
            // closest K may never be mentioned. With seed 5: 6 to 8 of 8, 152 of 160 in all.
            let hits = found.iter().filter(|id| truly.contains(id)).count();
            assert!(hits >= K - 2, "{hits} of the {K} closest");
            total_hits += hits;
        }
        assert!(timeouts > 0);
        assert!(total_hits >= 20 * K * 9 / 10, "{total_hits}");
    }

    #[test]
    fn timeouts_are_noticed_by_next_queries_at_the_deadline() {
        let t0 = Instant::now();
        let start: Vec<NodeInfo> = (1..=4)
            .map(|n| NodeInfo {
                id: id(n, 0),
                addr: addr(u32::from(n)),
            })
            .collect();
        let mut lookup = Lookup::new(id(0, 0), start.clone(), t0);
        assert_eq!(lookup.next_deadline(), None);
        assert_eq!(
            lookup.next_queries(t0),
            start[..3],
            "closest first, ALPHA of them"
        );
        assert_eq!(lookup.next_queries(t0), vec![], "ALPHA already in flight");
        assert_eq!(lookup.next_deadline(), Some(t0 + QUERY_TIMEOUT));
        // One error answer frees a slot for the fourth.
        lookup.failed(start[0].addr);
        assert_eq!(lookup.next_queries(t0), start[3..]);
        assert_eq!(lookup.take_timed_out(), vec![], "an error is not a timeout");
        let almost = t0 + QUERY_TIMEOUT - Duration::from_millis(1);
        assert_eq!(lookup.next_queries(almost), vec![]);
        assert!(!lookup.is_done());
        lookup.next_queries(t0 + QUERY_TIMEOUT);
        assert_eq!(
            lookup.take_timed_out(),
            vec![start[1].addr, start[2].addr, start[3].addr]
        );
        assert!(lookup.is_done(), "nothing left to ask");
        assert_eq!(lookup.closest_answered(), vec![]);
        assert_eq!(lookup.queries_sent(), 4);
    }

    #[test]
    fn answers_from_nodes_not_asked_are_ignored() {
        let t0 = Instant::now();
        let a = NodeInfo {
            id: id(0x10, 0),
            addr: addr(1),
        };
        let mut lookup = Lookup::new(id(0, 0), vec![a], t0);
        let stranger = NodeInfo {
            id: id(0x01, 0),
            addr: addr(2),
        };
        // Before we ask anyone, and from someone we never asked: nothing happens.
        assert_eq!(
            lookup.answered(a.addr, a.id, &[stranger], &[], None, t0),
            None
        );
        lookup.next_queries(t0);
        assert_eq!(
            lookup.answered(
                stranger.addr,
                stranger.id,
                &[stranger],
                &[addr(9)],
                None,
                t0
            ),
            None
        );
        assert_eq!(lookup.candidates.len(), 1);
        assert_eq!(lookup.peers(), []);
        // The real answer counts once; a repeat of it does not.
        assert!(lookup.answered(a.addr, a.id, &[], &[], None, t0).is_some());
        assert_eq!(lookup.answered(a.addr, a.id, &[], &[], None, t0), None);
    }

    #[test]
    fn an_answer_after_its_timeout_is_ignored() {
        let t0 = Instant::now();
        let a = NodeInfo {
            id: id(0x10, 0),
            addr: addr(1),
        };
        let mut lookup = Lookup::new(id(0, 0), vec![a], t0);
        lookup.next_queries(t0);
        lookup.next_queries(t0 + QUERY_TIMEOUT);
        assert_eq!(lookup.take_timed_out(), vec![a.addr]);
        assert_eq!(
            lookup.answered(a.addr, a.id, &[], &[], None, t0 + QUERY_TIMEOUT),
            None
        );
    }

    #[test]
    fn a_reply_with_ten_thousand_nodes_keeps_the_candidate_list_bounded() {
        let t0 = Instant::now();
        let mut rng = fastrand::Rng::with_seed(8);
        let target = random_id(&mut rng);
        let first = NodeInfo {
            id: random_id(&mut rng),
            addr: addr(1),
        };
        let mut lookup = Lookup::new(target, vec![first], t0);
        lookup.next_queries(t0);
        let flood: Vec<NodeInfo> = (0..10_000)
            .map(|n| NodeInfo {
                id: random_id(&mut rng),
                addr: addr(100 + n),
            })
            .collect();
        let step = lookup
            .answered(first.addr, first.id, &flood, &[], None, t0)
            .expect("in flight");
        assert_eq!(step.nodes, 10_000);
        assert!(step.new_candidates <= MAX_CANDIDATES);
        assert!(lookup.candidates.len() <= MAX_CANDIDATES + lookup.queries_sent());
        // What is kept is the closest of the flood.
        let mut sorted = flood.clone();
        sorted.sort_by_key(|n| n.id.distance(&target));
        let kept: Vec<NodeInfo> = lookup
            .candidates
            .iter()
            .filter(|c| c.state == State::Unasked)
            .map(|c| c.info)
            .collect();
        assert_eq!(kept, sorted[..kept.len()]);
        assert_eq!(step.new_candidates, kept.len());
    }

    #[test]
    fn peers_are_kept_once_in_arrival_order_and_tokens_per_node() {
        let t0 = Instant::now();
        let a = NodeInfo {
            id: id(0x10, 0),
            addr: addr(1),
        };
        let b = NodeInfo {
            id: id(0x20, 0),
            addr: addr(2),
        };
        let mut lookup = Lookup::new(id(0, 0), vec![a, b], t0);
        assert_eq!(lookup.next_queries(t0), vec![a, b]);
        let (p1, p2, p3) = (addr(501), addr(502), addr(503));
        let step = lookup.answered(b.addr, b.id, &[], &[p2, p1, p2], Some(b"tb".to_vec()), t0);
        assert_eq!(step.map(|s| s.values), Some(3), "values in the answer");
        lookup.answered(a.addr, a.id, &[], &[p1, p3], Some(b"ta".to_vec()), t0);
        assert_eq!(lookup.peers(), [p2, p1, p3]);
        assert!(lookup.is_done());
        // Closest first: a (0x10) is closer to the target 0 than b (0x20).
        assert_eq!(
            lookup.closest_answered(),
            vec![(a, Some(b"ta".to_vec())), (b, Some(b"tb".to_vec()))]
        );
    }

    #[test]
    fn the_id_in_the_answer_replaces_the_claimed_one() {
        let t0 = Instant::now();
        let claimed = NodeInfo {
            id: id(0x01, 0),
            addr: addr(1),
        };
        let other = NodeInfo {
            id: id(0x40, 0),
            addr: addr(2),
        };
        let mut lookup = Lookup::new(id(0, 0), vec![claimed, other], t0);
        lookup.next_queries(t0);
        // The node at addr(1) turns out to be 0x80..., farther than `other`.
        let real = id(0x80, 0);
        let step = lookup.answered(claimed.addr, real, &[], &[], None, t0);
        assert_eq!(step.map(|s| (s.node.id, s.shared_bits)), Some((real, 0)));
        lookup.answered(other.addr, other.id, &[], &[], None, t0);
        let order: Vec<NodeId> = answered_ids(&lookup);
        assert_eq!(order, [other.id, real]);
    }

    /// The counter-example for "stop as soon as someone answers": the nodes form a chain
    /// towards the target, each knowing only the next one. After the first answer the closest
    /// node is not even known yet; the full lookup finds it three answers later.
    #[test]
    fn stopping_at_the_first_answer_misses_the_closest_node() {
        let t0 = Instant::now();
        let target = id(0x00, 0x00);
        // Shared bits with the target: a 0, b 3, c 7, d 159.
        let chain: Vec<NodeInfo> = [0x80, 0x10, 0x01, 0x00]
            .into_iter()
            .zip(1..)
            .map(|(first, n)| NodeInfo {
                id: id(first, if first == 0 { 1 } else { 0 }),
                addr: addr(n),
            })
            .collect();
        let knows = |n: &NodeInfo| -> Vec<NodeInfo> {
            let i = chain.iter().position(|c| c == n).unwrap_or(chain.len());
            chain.get(i + 1).copied().into_iter().collect()
        };
        let closest = chain[3];

        let mut lookup = Lookup::new(target, vec![chain[0]], t0);
        let mut steps = Vec::new();
        while !lookup.is_done() {
            for asked in lookup.next_queries(t0) {
                let step = lookup.answered(asked.addr, asked.id, &knows(&asked), &[], None, t0);
                steps.push(step.expect("asked"));
            }
            if steps.len() == 1 {
                // A lookup that stopped here would give its closest known nodes: a and b.
                let known: Vec<NodeInfo> = lookup.candidates.iter().map(|c| c.info).collect();
                assert_eq!(known, [chain[1], chain[0]]);
                assert!(!known.contains(&closest));
            }
        }
        let bits: Vec<u32> = steps.iter().map(|s| s.shared_bits).collect();
        assert_eq!(bits, [0, 3, 7, 159]);
        assert_eq!(lookup.closest_answered()[0].0, closest);
    }

    #[test]
    fn a_lookup_with_no_start_nodes_is_done_at_once() {
        let mut lookup = Lookup::new(id(0, 0), vec![], Instant::now());
        assert!(lookup.is_done());
        assert_eq!(lookup.next_queries(Instant::now()), vec![]);
        assert_eq!(lookup.next_deadline(), None);
    }
}
