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
        // Closest first: the list is sorted, so the first unasked ones are the best to ask.
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

        let mut new_candidates = 0;
        for node in nodes {
            if self.add_candidate(*node) {
                new_candidates += 1;
            }
        }
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

    /// Done when the K closest candidates that have not failed have all answered, or when
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
