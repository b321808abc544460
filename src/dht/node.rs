//! One DHT node (BEP 5, "DHT Protocol"): what it answers, whom it asks, what it remembers —
//! walkthrough §15.
//!
//! A state machine with no socket and no clock of its own: the `dht` thread (`thread.rs`)
//! hands it each datagram and each command with the time, calls [`Node::tick`] between them,
//! and sends whatever [`Node::take_outgoing`] returns. So every rule below can be tested by
//! feeding it bytes.
//!
//! ```text
//!   datagram ──► handle_datagram ─┬─ a query    ──► answer it (rate-limited per address)
//!                                 ├─ a response ──► the query it answers (transaction id):
//!                                 │                 a lookup step, a ping, a bootstrap…
//!                                 └─ an error   ──► the same, as a failure
//!   command  ──► track a torrent, one lookup, ping, find_node, a node from a PORT message
//!   tick     ──► lookups move on, torrents re-announced, bootstrap, pings, bucket refresh
//! ```

use super::krpc::{self, Body, Message, Query, Response};
use super::lookup::{Lookup, Step};
use super::routing::{Added, Heard, RoutingTable};
use super::serve::Server;
use super::{NodeId, NodeInfo};
use crate::metainfo::InfoHash;
use crossbeam_channel::Sender;
use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// How long we wait for the answer to a ping, a find_node or an announce (a lookup has its
/// own, shorter timeout per query, in `lookup.rs`).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A torrent's lookup and announce are repeated this often while we download or seed it
/// (nodes forget announced peers after 30 minutes; libtorrent re-announces every 15).
pub const REANNOUNCE: Duration = Duration::from_secs(15 * 60);

/// A lookup that found no peer is tried again after this, doubling up to [`LONGEST_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
pub const LONGEST_RETRY: Duration = Duration::from_secs(2 * 60);

/// BEP 5's `v`: two letters for the client and two bytes of version, as libtorrent's `LT` and
/// Transmission's `TR` do.
pub const VERSION: &[u8; 4] = b"PW\x00\x01";

/// Lookups running at once (bucket refreshes wait their turn).
const MAX_LOOKUPS: usize = 16;

/// A lookup's progress, for the one who asked (the `dht_get_peers` command prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupEvent {
    /// A node answered: who, how close, what it gave.
    Answered(Step),
    /// A node asked did not answer in time, or answered with an error.
    NoAnswer(SocketAddrV4),
    /// The lookup is over: the peers found, and how many queries it sent.
    Done {
        peers: Vec<SocketAddrV4>,
        queries: usize,
    },
}

/// What the rest of peerwire asks of the node.
#[derive(Debug)]
pub enum Command {
    /// Find peers for this torrent now and every [`REANNOUNCE`]; send every new peer to
    /// `peers`; with a port, announce it to the closest nodes after each lookup.
    Track {
        info_hash: InfoHash,
        announce_port: Option<u16>,
        peers: Sender<Vec<SocketAddr>>,
    },
    /// Stop looking for (and announcing) this torrent.
    Forget(InfoHash),
    /// One get_peers lookup, reported step by step.
    GetPeers {
        info_hash: InfoHash,
        events: Sender<LookupEvent>,
    },
    /// One ping: the node's id, or why not.
    Ping {
        addr: SocketAddrV4,
        reply: Sender<Result<NodeId, String>>,
    },
    /// One find_node query to one node: the nodes it returned, or why not.
    FindNode {
        addr: SocketAddrV4,
        target: NodeId,
        reply: Sender<Result<Vec<NodeInfo>, String>>,
    },
    /// A node we heard of (a peer's PORT message, a saved table): ping it, keep it if it
    /// answers.
    AddNode(SocketAddrV4),
}

/// Counts for tests, logs and the benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub queries_sent: u64,
    pub queries_answered: u64,
    /// Queries dropped by the per-address rate limit.
    pub rate_limited: u64,
    /// Datagrams that were not KRPC we could read.
    pub malformed: u64,
    /// Responses and errors that answered no query of ours (unknown transaction id, or from
    /// another address than the one asked).
    pub stray: u64,
}

/// Why we sent a query: where its answer goes.
enum Purpose {
    Lookup(u64),
    Bootstrap,
    /// A ping to learn whether a node lives (PORT messages, questionable nodes).
    Liveness,
    Ping(Sender<Result<NodeId, String>>),
    FindNode(Sender<Result<Vec<NodeInfo>, String>>),
    Announce,
}

/// A query in flight, by transaction id.
struct Pending {
    to: SocketAddrV4,
    sent: Instant,
    purpose: Purpose,
}

/// Who a lookup works for.
enum LookupFor {
    Torrent(InfoHash),
    Report(Sender<LookupEvent>),
    /// A bucket refresh or the lookup of our own id after bootstrap: it only fills the table.
    Table,
}

struct Running {
    lookup: Lookup,
    for_whom: LookupFor,
    /// get_peers (a torrent) or find_node (the table).
    get_peers: bool,
    /// How many of `lookup.peers()` have been handed on already.
    delivered: usize,
}

struct Tracked {
    announce_port: Option<u16>,
    peers: Sender<Vec<SocketAddr>>,
    next_run: Instant,
    running: bool,
    retry: Duration,
}

/// One DHT node's whole state.
pub struct Node {
    id: NodeId,
    table: RoutingTable,
    server: Server,
    /// BEP 43: a node that only asks (a one-shot command) says `ro` so that others do not
    /// put it in their tables, and it answers no queries.
    read_only: bool,
    pending: HashMap<Vec<u8>, Pending>,
    next_transaction: u16,
    lookups: HashMap<u64, Running>,
    next_lookup: u64,
    /// Lookups asked for before the table had anyone to ask.
    waiting: Vec<(NodeId, LookupFor)>,
    tracked: HashMap<InfoHash, Tracked>,
    bootstrap: Vec<SocketAddrV4>,
    next_bootstrap: Instant,
    bootstrap_wait: Duration,
    outgoing: Vec<(SocketAddrV4, Vec<u8>)>,
    pub stats: Stats,
}

impl Node {
    /// A node with id `id`, to be bootstrapped from `bootstrap` (asked for nodes near our id
    /// until the table has someone in it).
    pub fn new(id: NodeId, bootstrap: Vec<SocketAddrV4>, read_only: bool, now: Instant) -> Node {
        Node {
            id,
            table: RoutingTable::new(id, now),
            server: Server::new(now),
            read_only,
            pending: HashMap::new(),
            next_transaction: fastrand::u16(..),
            lookups: HashMap::new(),
            next_lookup: 0,
            waiting: Vec::new(),
            tracked: HashMap::new(),
            bootstrap,
            next_bootstrap: now,
            bootstrap_wait: FIRST_RETRY,
            outgoing: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// The datagrams to send, in order.
    pub fn take_outgoing(&mut self) -> Vec<(SocketAddrV4, Vec<u8>)> {
        std::mem::take(&mut self.outgoing)
    }

    /// One command from the rest of peerwire.
    pub fn command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Track {
                info_hash,
                announce_port,
                peers,
            } => {
                let tracked = Tracked {
                    announce_port,
                    peers,
                    next_run: now,
                    running: false,
                    retry: FIRST_RETRY,
                };
                self.tracked.insert(info_hash, tracked);
            }
            Command::Forget(info_hash) => {
                self.tracked.remove(&info_hash);
            }
            Command::GetPeers { info_hash, events } => {
                self.start_lookup(NodeId::from(info_hash), LookupFor::Report(events), now)
            }
            Command::Ping { addr, reply } => {
                self.send_query(addr, krpc::Query::Ping, Purpose::Ping(reply), now)
            }
            Command::FindNode {
                addr,
                target,
                reply,
            } => self.send_query(
                addr,
                Query::FindNode { target },
                Purpose::FindNode(reply),
                now,
            ),
            Command::AddNode(addr) => {
                // Known already: its status is kept by the table, no need to ask.
                if self.table.status_of(addr, now).is_none() {
                    self.send_query(addr, Query::Ping, Purpose::Liveness, now);
                }
            }
        }
    }

    /// One datagram that starts with `d` (bencoded KRPC; the thread sends others elsewhere).
    pub fn handle_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        // BEP 5's compact node info is IPv4: an IPv6 sender could not be answered in kind.
        let SocketAddr::V4(from) = from else {
            return;
        };
        let message = match Message::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                self.stats.malformed += 1;
                log::debug!("dht: unreadable message from {from}: {error}");
                // A query we cannot read gets error 203 (the sender may be a buggy client
                // that wants to know); anything else unreadable is dropped unanswered.
                if let (true, Some(transaction)) = (error.was_query, error.transaction)
                    && !self.read_only
                    && self.server.limit.allows(*from.ip(), now)
                {
                    let text = error.kind.to_string();
                    let reply = Message::error(transaction, krpc::ERROR_PROTOCOL, &text);
                    self.outgoing.push((from, reply.encode()));
                }
                return;
            }
        };
        match message.body {
            Body::Query { sender, query } => {
                if self.read_only {
                    return;
                }
                // [W15.12] Before anything else: an address that floods us gets nothing, not even
                // a place in the table.
                if !self.server.limit.allows(*from.ip(), now) {
                    self.stats.rate_limited += 1;
                    return;
                }
                // A node that asks us is alive, but not yet proven to answer: the table
                // counts it as good only once it has replied to us too. BEP 43 read-only
                // nodes stay out of the table.
                if !message.read_only && sender != self.id {
                    let node = NodeInfo {
                        id: sender,
                        addr: from,
                    };
                    let added = self.table.heard_from(node, Heard::Query, now);
                    self.after_added(added, now);
                }
                let mut reply =
                    self.server
                        .answer(&self.table, from, message.transaction, query, now);
                reply.version = Some(VERSION.to_vec());
                self.stats.queries_answered += 1;
                self.outgoing.push((from, reply.encode()));
            }
            Body::Response(mut response) => {
                let Some(pending) = self.take_pending(&message.transaction, from) else {
                    return;
                };
                // libtorrent names the asker itself among the nodes of a find_node reply:
                // asking ourselves would be a wasted query.
                response.nodes.retain(|n| n.id != self.id);
                if response.id != self.id {
                    let node = NodeInfo {
                        id: response.id,
                        addr: from,
                    };
                    let added = self.table.heard_from(node, Heard::Reply, now);
                    self.after_added(added, now);
                }
                self.answered(pending, from, response, now);
            }
            Body::Error {
                code,
                message: text,
            } => {
                let Some(pending) = self.take_pending(&message.transaction, from) else {
                    return;
                };
                let why = format!("{from} answered with error {code}: {text}");
                self.failed(pending, why, now);
            }
        }
    }

    /// Everything that is due: timeouts, lookups, re-announces, bootstrap, pings, refreshes.
    pub fn tick(&mut self, now: Instant) {
        self.expire_pending(now);
        if self.table.is_empty() {
            self.bootstrap_if_due(now);
        } else {
            // The table has someone to ask: start what waited for it.
            for (target, for_whom) in std::mem::take(&mut self.waiting) {
                self.start_lookup(target, for_whom, now);
            }
        }
        self.start_due_torrents(now);
        self.drive_lookups(now);
        for node in self.table.to_ping(now) {
            self.send_query(node.addr, Query::Ping, Purpose::Liveness, now);
        }
        if !self.table.is_empty() && self.lookups.len() < MAX_LOOKUPS {
            for target in self.table.refresh_targets(now) {
                self.start_lookup(target, LookupFor::Table, now);
            }
        }
        self.server.expire(now);
    }

    /// When `tick` next has something to do: the thread sleeps on its socket until then.
    pub fn next_wake(&self, now: Instant) -> Instant {
        let soonest = self
            .lookups
            .values()
            .filter_map(|r| r.lookup.next_deadline())
            .min();
        let tracked = self
            .tracked
            .values()
            .filter(|t| !t.running)
            .map(|t| t.next_run)
            .min();
        let mut wake = now + Duration::from_millis(500);
        for t in [soonest, tracked].into_iter().flatten() {
            wake = wake.min(t);
        }
        wake.max(now)
    }

    /// The query this reply answers, if it answers one of ours: same transaction id *and*
    /// the address we asked. Anything else is stray and changes nothing.
    fn take_pending(&mut self, transaction: &[u8], from: SocketAddrV4) -> Option<Pending> {
        match self.pending.get(transaction) {
            Some(p) if p.to == from => self.pending.remove(transaction),
            _ => {
                self.stats.stray += 1;
                None
            }
        }
    }

    fn answered(&mut self, pending: Pending, from: SocketAddrV4, response: Response, now: Instant) {
        match pending.purpose {
            Purpose::Lookup(key) => {
                let Some(running) = self.lookups.get_mut(&key) else {
                    return;
                };
                let step = running.lookup.answered(
                    from,
                    response.id,
                    &response.nodes,
                    &response.values,
                    response.token,
                    now,
                );
                if let (Some(step), LookupFor::Report(events)) = (step, &running.for_whom) {
                    // The one who asked may have gone (a command that timed out): the
                    // lookup still finishes and feeds the table.
                    let _ = events.send(LookupEvent::Answered(step));
                }
                self.deliver_peers(key);
            }
            Purpose::Bootstrap => {
                // The first answer: the table has one node. A lookup of our own id fills
                // the buckets near us, from the nodes it named.
                self.bootstrap_wait = FIRST_RETRY;
                let mut start = response.nodes.clone();
                start.push(NodeInfo {
                    id: response.id,
                    addr: from,
                });
                start.retain(|n| n.id != self.id);
                self.run_lookup(self.id, start, LookupFor::Table, now);
            }
            Purpose::Liveness | Purpose::Announce => {}
            Purpose::Ping(reply) => {
                let _ = reply.send(Ok(response.id));
            }
            Purpose::FindNode(reply) => {
                let _ = reply.send(Ok(response.nodes));
            }
        }
    }

    fn failed(&mut self, pending: Pending, why: String, now: Instant) {
        self.table.failed(pending.to, now);
        match pending.purpose {
            Purpose::Lookup(key) => {
                if let Some(running) = self.lookups.get_mut(&key) {
                    running.lookup.failed(pending.to);
                    if let LookupFor::Report(events) = &running.for_whom {
                        let _ = events.send(LookupEvent::NoAnswer(pending.to));
                    }
                }
            }
            Purpose::Ping(reply) => {
                let _ = reply.send(Err(why));
            }
            Purpose::FindNode(reply) => {
                let _ = reply.send(Err(why));
            }
            Purpose::Bootstrap | Purpose::Liveness | Purpose::Announce => {
                log::debug!("dht: {why}");
            }
        }
    }

    /// Queries unanswered for too long fail. A lookup's own queries time out sooner, in the
    /// lookup; their entries here only wait for a late answer, which still feeds the table.
    fn expire_pending(&mut self, now: Instant) {
        let expired: Vec<Vec<u8>> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.sent) >= ANSWER_TIMEOUT)
            .map(|(t, _)| t.clone())
            .collect();
        for transaction in expired {
            if let Some(pending) = self.pending.remove(&transaction) {
                if matches!(pending.purpose, Purpose::Lookup(_)) {
                    continue;
                }
                let why = format!("{} did not answer within {ANSWER_TIMEOUT:?}", pending.to);
                self.failed(pending, why, now);
            }
        }
    }

    /// Asks the bootstrap nodes for nodes near our id, again and again (with a growing
    /// pause) while the table stays empty.
    fn bootstrap_if_due(&mut self, now: Instant) {
        if self.bootstrap.is_empty() || now < self.next_bootstrap {
            return;
        }
        for addr in self.bootstrap.clone() {
            let target = self.id;
            self.send_query(addr, Query::FindNode { target }, Purpose::Bootstrap, now);
        }
        self.next_bootstrap = now + self.bootstrap_wait;
        self.bootstrap_wait = (self.bootstrap_wait * 2).min(LONGEST_RETRY);
    }

    fn send_query(&mut self, to: SocketAddrV4, query: Query, purpose: Purpose, now: Instant) {
        // Two bytes, counting up: unique among the queries in flight, which expire long
        // before 65,536 more are sent.
        let transaction = self.next_transaction.to_be_bytes().to_vec();
        self.next_transaction = self.next_transaction.wrapping_add(1);
        let mut message = Message::query(transaction.clone(), self.id, query);
        message.read_only = self.read_only;
        message.version = Some(VERSION.to_vec());
        self.outgoing.push((to, message.encode()));
        self.stats.queries_sent += 1;
        let pending = Pending {
            to,
            sent: now,
            purpose,
        };
        self.pending.insert(transaction, pending);
    }

    /// The table asks us to check on questionable nodes before a newcomer may replace them.
    fn after_added(&mut self, added: Added, now: Instant) {
        if let Added::PingFirst(nodes) = added {
            for node in nodes {
                self.send_query(node.addr, Query::Ping, Purpose::Liveness, now);
            }
        }
    }
}

mod lookups;
#[cfg(test)]
mod tests;
