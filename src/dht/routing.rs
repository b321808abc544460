//! The routing table: the k-buckets of BEP 5 ("DHT Protocol", section "Routing Table") —
//! walkthrough §15.
//!
//! Whom this node knows in the DHT, and how well. The `dht` thread tells the table about every
//! node it hears from ([`RoutingTable::heard_from`]) and every query that went unanswered
//! ([`RoutingTable::failed`]); it asks the table for the nodes closest to a target
//! ([`RoutingTable::closest`]) to start a lookup or to answer `find_node`/`get_peers`, and, on
//! a timer, for nodes to ping ([`RoutingTable::to_ping`]) and buckets to refresh
//! ([`RoutingTable::refresh_targets`]). No sockets and no clock: time comes in as `now`.
//!
//! ## Buckets as a list
//!
//! BEP 5 describes buckets as ranges of the id space that split in halves. A full bucket only
//! splits if our own id lies in its range, so after any number of splits the ranges always
//! look like this (our id is `own`, bucket `i` of a table with `n` buckets):
//!
//! ```text
//!   bucket 0      ids whose bit 0 differs from own's                    (half the space)
//!   bucket 1      ids sharing bit 0 with own, differing at bit 1        (a quarter)
//!   bucket 2      ids sharing bits 0..2, differing at bit 2             (an eighth)
//!   ...
//!   bucket n-1    ids sharing at least n-1 leading bits with own        (contains own)
//! ```
//!
//! So a node's bucket is simply `min(shared_prefix_bits(own, id), n - 1)`, and splitting the
//! last bucket appends bucket `n`: the nodes sharing exactly `n - 1` bits stay, the others move
//! on. That is the same table as BEP 5's ranges, just numbered by distance from us. There are
//! at most 160 buckets: the 160th holds the ids sharing 159 bits (sharing all 160 is our own id,
//! which is never added). Each bucket holds up to [`K`] nodes, so the table knows many nodes
//! near us and few far away, and at most 160 × K in all.
//!
//! ## Node status
//!
//! ```text
//!   good           replied to one of our queries within 15 minutes, or has replied at some
//!                  time and sent us a query within 15 minutes
//!   questionable   not good (including a node that has only ever sent us queries: it may be
//!                  behind a NAT that lets it ask but not answer)
//!   bad            failed BAD_AFTER_FAILURES of our queries in a row
//! ```
//!
//! A full bucket admits a newcomer by replacing a bad node; if it has questionable nodes
//! instead, the newcomer waits in the bucket's replacement cache while the caller pings them
//! (a questionable node that fails twice turns bad and the cached newcomer takes its place);
//! if every node is good, the bucket splits when it holds our id, and otherwise the newcomer is
//! dropped. Long-lived nodes are thus never pushed out by new ones: BEP 5 prefers nodes that
//! have stayed up, as they are the likeliest to stay up.

use super::{K, NodeId, NodeInfo};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// Unanswered queries in a row after which a node is bad (BEP 5: "fail to respond to multiple
/// queries in a row"; it suggests trying once more before giving up on a node).
pub const BAD_AFTER_FAILURES: u32 = 2;

/// A node we have not heard a reply from for this long is no longer good (BEP 5: 15 minutes).
pub const QUESTIONABLE_AFTER: Duration = Duration::from_secs(15 * 60);

/// A bucket not changed for this long is refreshed by a lookup in its range (BEP 5: 15 minutes).
pub const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);

/// A questionable node is pinged at most once per this interval, so that a busy bucket does
/// not make us ping the same nodes for every newcomer.
pub const PING_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Newcomers a full bucket keeps waiting for a slot.
pub const REPLACEMENT_CACHE: usize = K;

/// The most buckets a table can have: one per possible shared-prefix length below 160.
pub const MAX_BUCKETS: usize = 160;

/// How we heard from a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// It answered one of our queries: proof that it can be reached.
    Reply,
    /// It sent us a query: it is alive, but may not be reachable by us.
    Query,
}

/// How much a node can be trusted to answer, by BEP 5's definitions (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    Questionable,
    Bad,
}

/// What [`RoutingTable::heard_from`] did with a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Put into a bucket that had room.
    New,
    /// Already in a bucket at this address; its times are updated. (A node waiting in a
    /// replacement cache is placed again instead, and gets one of the other answers.)
    Refreshed,
    /// Took the place of this bad node.
    Replaced(NodeInfo),
    /// Put into the table after one or more splits of the bucket holding our own id.
    Split,
    /// Its bucket is full but has questionable nodes: the newcomer waits in the bucket's
    /// replacement cache, and the caller should ping these nodes (those not already pinged in
    /// the last [`PING_INTERVAL`]; the list may be empty when all pings are under way).
    PingFirst(Vec<NodeInfo>),
    /// Not added: our own id, an id known at another address or an address known with
    /// another id, or a full bucket of good nodes that does not hold our id.
    Ignored,
}

/// One bucket, for printing: which part of the id space it covers and whom it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketView {
    /// Leading bits its nodes share with our id: exactly this many (the next bit differs),
    /// or at least this many for the last bucket, the one that covers our own id.
    pub prefix_bits: u32,
    pub covers_own_id: bool,
    /// Its nodes, oldest first, with their status now.
    pub nodes: Vec<(NodeInfo, Status)>,
}

/// What the table remembers about one node.
#[derive(Debug, Clone)]
struct Entry {
    info: NodeInfo,
    /// When it last answered one of our queries; `None` if it never has.
    last_reply: Option<Instant>,
    /// When it last sent us a query.
    last_query: Option<Instant>,
    /// When we last heard from it in either way (to find the least recently seen).
    last_seen: Instant,
    /// Our queries it failed to answer since its last reply.
    failures: u32,
    /// When [`RoutingTable::to_ping`] or [`Added::PingFirst`] last asked for it to be pinged.
    last_pinged: Option<Instant>,
}

impl Entry {
    fn new(info: NodeInfo, heard: Heard, now: Instant) -> Entry {
        let mut entry = Entry {
            info,
            last_reply: None,
            last_query: None,
            last_seen: now,
            failures: 0,
            last_pinged: None,
        };
        entry.heard(heard, now);
        entry
    }

    fn heard(&mut self, heard: Heard, now: Instant) {
        self.last_seen = now;
        match heard {
            Heard::Reply => {
                self.last_reply = Some(now);
                // Only an answer proves the node reachable; a query from it says nothing
                // about whether our queries get through, so it does not clear failures.
                self.failures = 0;
            }
            Heard::Query => self.last_query = Some(now),
        }
    }

    fn status(&self, now: Instant) -> Status {
        let recent = |t: Option<Instant>| {
            t.is_some_and(|t| now.saturating_duration_since(t) < QUESTIONABLE_AFTER)
        };
        if self.failures >= BAD_AFTER_FAILURES {
            Status::Bad
        } else if recent(self.last_reply) || (self.last_reply.is_some() && recent(self.last_query))
        {
            Status::Good
        } else {
            Status::Questionable
        }
    }

    fn ping_due(&self, now: Instant) -> bool {
        self.last_pinged
            .is_none_or(|t| now.saturating_duration_since(t) >= PING_INTERVAL)
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    /// At most [`K`], oldest first.
    nodes: Vec<Entry>,
    /// Newcomers waiting for a node of this bucket to go bad; at most [`REPLACEMENT_CACHE`].
    cache: Vec<Entry>,
    /// BEP 5's "last changed": a node added or replaced, or a node in it answered us.
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            nodes: Vec::new(),
            cache: Vec::new(),
            last_changed: now,
        }
    }

    /// Puts a newcomer into the replacement cache; when the cache is full the newcomer takes
    /// the place of the one heard from least recently.
    fn cache_newcomer(&mut self, entry: Entry) {
        if self.cache.len() >= REPLACEMENT_CACHE {
            if let Some(oldest) = (0..self.cache.len()).min_by_key(|&i| self.cache[i].last_seen) {
                self.cache.remove(oldest);
            }
        }
        self.cache.push(entry);
    }

    /// Takes the best waiting newcomer out of the cache: one that has answered us (most
    /// recent answer first) beats one that has only sent queries.
    fn take_replacement(&mut self) -> Option<Entry> {
        let best = (0..self.cache.len()).max_by_key(|&i| {
            let e = &self.cache[i];
            (e.last_reply.is_some(), e.last_reply, e.last_seen)
        })?;
        Some(self.cache.remove(best))
    }
}

/// Where a node's address or id was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Table(usize, usize),
    Cache(usize, usize),
}

/// The k-buckets: every node this DHT node knows, organised around its own id.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    own: NodeId,
    /// Bucket `i` holds the nodes sharing exactly `i` leading bits with `own`; the last one holds
    /// those sharing at least that many. Never empty, at most [`MAX_BUCKETS`].
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table: one bucket covering the whole id space (BEP 5).
    pub fn new(own: NodeId, now: Instant) -> RoutingTable {
        RoutingTable {
            own,
            buckets: vec![Bucket::new(now)],
        }
    }

    pub fn own_id(&self) -> NodeId {
        self.own
    }

    /// The bucket a node with this id belongs in (see the module doc).
    fn bucket_index(&self, id: &NodeId) -> usize {
        let shared = self.own.shared_prefix_bits(id) as usize;
        shared.min(self.buckets.len() - 1)
    }

    /// Where a node with this address is, in a bucket or in a replacement cache. A linear
    /// scan: the table holds at most 2 × 160 × K entries, and an index by address would be one
    /// more structure to keep in step for a gain nobody would measure.
    fn find_addr(&self, addr: SocketAddrV4) -> Option<Slot> {
        for (b, bucket) in self.buckets.iter().enumerate() {
            if let Some(i) = bucket.nodes.iter().position(|e| e.info.addr == addr) {
                return Some(Slot::Table(b, i));
            }
            if let Some(i) = bucket.cache.iter().position(|e| e.info.addr == addr) {
                return Some(Slot::Cache(b, i));
            }
        }
        None
    }

    /// Where a node with this id is; an id can only be in its own bucket.
    fn find_id(&self, id: &NodeId) -> Option<Slot> {
        let b = self.bucket_index(id);
        let bucket = &self.buckets[b];
        if let Some(i) = bucket.nodes.iter().position(|e| e.info.id == *id) {
            return Some(Slot::Table(b, i));
        }
        bucket
            .cache
            .iter()
            .position(|e| e.info.id == *id)
            .map(|i| Slot::Cache(b, i))
    }

    fn entry(&self, slot: Slot) -> &Entry {
        match slot {
            Slot::Table(b, i) => &self.buckets[b].nodes[i],
            Slot::Cache(b, i) => &self.buckets[b].cache[i],
        }
    }

    /// We heard from `node`: it answered one of our queries or sent us one. Adds it if there
    /// is room, or updates what we know about it.
    pub fn heard_from(&mut self, node: NodeInfo, heard: Heard, now: Instant) -> Added {
        if node.id == self.own {
            return Added::Ignored;
        }
        let by_id = self.find_id(&node.id);
        let by_addr = self.find_addr(node.addr);
        match (by_id, by_addr) {
            // Known, same id at the same address.
            (Some(slot), Some(same)) if slot == same => match slot {
                Slot::Table(b, i) => {
                    let bucket = &mut self.buckets[b];
                    bucket.nodes[i].heard(heard, now);
                    if heard == Heard::Reply {
                        bucket.last_changed = now;
                    }
                    Added::Refreshed
                }
                Slot::Cache(b, i) => {
                    // A waiting newcomer: update it and try again, a slot may have opened
                    // (a node turned bad) since it was cached.
                    let mut entry = self.buckets[b].cache.remove(i);
                    entry.heard(heard, now);
                    self.insert(entry, now)
                }
            },
            // The id is known at another address: keeping the old address stops anyone from
            // taking over a node's place by claiming its id from elsewhere.
            (Some(_), _) => Added::Ignored,
            // The address is known with another id. If that entry is bad, the node behind
            // the address has most likely restarted with a new id: let the new id in.
            (None, Some(slot)) => {
                if self.entry(slot).status(now) != Status::Bad {
                    return Added::Ignored;
                }
                match slot {
                    Slot::Table(b, i) => {
                        self.buckets[b].nodes.remove(i);
                    }
                    Slot::Cache(b, i) => {
                        self.buckets[b].cache.remove(i);
                    }
                }
                self.insert(Entry::new(node, heard, now), now)
            }
            (None, None) => self.insert(Entry::new(node, heard, now), now),
        }
    }

    /// Places an entry that is in neither the buckets nor the caches.
    fn insert(&mut self, entry: Entry, now: Instant) -> Added {
        let mut split = false;
        loop {
            let b = self.bucket_index(&entry.info.id);
            let last = self.buckets.len() - 1;
            let bucket = &mut self.buckets[b];
            if bucket.nodes.len() < K {
                bucket.nodes.push(entry);
                bucket.last_changed = now;
                return if split { Added::Split } else { Added::New };
            }
            if let Some(i) = bucket
                .nodes
                .iter()
                .position(|e| e.status(now) == Status::Bad)
            {
                let old = std::mem::replace(&mut bucket.nodes[i], entry);
                bucket.last_changed = now;
                return Added::Replaced(old.info);
            }
            let mut questionable: Vec<&mut Entry> = bucket
                .nodes
                .iter_mut()
                .filter(|e| e.status(now) == Status::Questionable)
                .collect();
            if !questionable.is_empty() {
                // BEP 5 pings the least recently seen first.
                questionable.sort_by_key(|e| e.last_seen);
                let mut ping = Vec::new();
                for e in questionable {
                    if e.ping_due(now) {
                        e.last_pinged = Some(now);
                        ping.push(e.info);
                    }
                }
                bucket.cache_newcomer(entry);
                return Added::PingFirst(ping);
            }
            // Every node is good. Only the bucket around our own id may split: that is what
            // keeps the table detailed near us and coarse far away.
            if b == last && self.buckets.len() < MAX_BUCKETS {
                self.split_last(now);
                split = true;
                continue;
            }
            return Added::Ignored;
        }
    }

    /// Splits the last bucket (the one holding our id) in two: the nodes sharing exactly
    /// `last` bits with our id stay, those sharing more move to a new last bucket.
    fn split_last(&mut self, now: Instant) {
        let last = self.buckets.len() - 1;
        let own = self.own;
        let moves = |e: &Entry| own.shared_prefix_bits(&e.info.id) as usize > last;
        let old = &mut self.buckets[last];
        let mut new = Bucket::new(now);
        let (go, stay): (Vec<Entry>, Vec<Entry>) = old.nodes.drain(..).partition(moves);
        old.nodes = stay;
        new.nodes = go;
        let (go, stay): (Vec<Entry>, Vec<Entry>) = old.cache.drain(..).partition(moves);
        old.cache = stay;
        new.cache = go;
        old.last_changed = now;
        self.buckets.push(new);
    }

    /// A query to this address timed out or got an error. At [`BAD_AFTER_FAILURES`] in a row
    /// the node is bad and, if its bucket has a cached replacement, the replacement takes its
    /// place.
    pub fn failed(&mut self, addr: SocketAddrV4, now: Instant) {
        match self.find_addr(addr) {
            Some(Slot::Table(b, i)) => {
                let bucket = &mut self.buckets[b];
                let entry = &mut bucket.nodes[i];
                entry.failures += 1;
                // BEP 5 suggests one more try before giving up on a node: make the retry
                // due at the next `to_ping` instead of in PING_INTERVAL.
                entry.last_pinged = None;
                if entry.failures >= BAD_AFTER_FAILURES {
                    if let Some(replacement) = bucket.take_replacement() {
                        bucket.nodes[i] = replacement;
                        bucket.last_changed = now;
                    }
                }
            }
            Some(Slot::Cache(b, i)) => {
                // A waiting newcomer that does not answer is not worth waiting for.
                let entry = &mut self.buckets[b].cache[i];
                entry.failures += 1;
                if entry.failures >= BAD_AFTER_FAILURES {
                    self.buckets[b].cache.remove(i);
                }
            }
            None => {}
        }
    }

    /// The n known nodes closest to target by XOR distance, closest first; bad nodes excluded.
    pub fn closest(&self, target: &NodeId, n: usize, now: Instant) -> Vec<NodeInfo> {
        // Sorting the whole table (at most 160 × K nodes) is simple and cheap enough; walking
        // the buckets outwards from the target's would be faster and harder to read.
        let mut all: Vec<NodeInfo> = self
            .buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .filter(|e| e.status(now) != Status::Bad)
            .map(|e| e.info)
            .collect();
        all.sort_by_key(|info| info.id.distance(target));
        all.truncate(n);
        all
    }

    /// Questionable nodes to ping now, least recently seen first; each is returned at most
    /// once per [`PING_INTERVAL`] (or again at the next call after it failed a query, for
    /// BEP 5's second try). The caller reports the outcome through `heard_from` or `failed`.
    pub fn to_ping(&mut self, now: Instant) -> Vec<NodeInfo> {
        let mut due: Vec<&mut Entry> = self
            .buckets
            .iter_mut()
            .flat_map(|b| &mut b.nodes)
            .filter(|e| e.status(now) == Status::Questionable && e.ping_due(now))
            .collect();
        due.sort_by_key(|e| e.last_seen);
        due.into_iter()
            .map(|e| {
                e.last_pinged = Some(now);
                e.info
            })
            .collect()
    }

    /// For each quiet bucket: a random id inside its range to look up; the bucket counts as
    /// refreshed from now.
    pub fn refresh_targets(&mut self, now: Instant) -> Vec<NodeId> {
        let mut targets = Vec::new();
        for b in 0..self.buckets.len() {
            if now.saturating_duration_since(self.buckets[b].last_changed) >= REFRESH_AFTER {
                targets.push(self.random_id_in(b));
                self.buckets[b].last_changed = now;
            }
        }
        targets
    }

    /// A random id in bucket `b`'s range: our first `b` bits, then (except in the last bucket,
    /// which also covers our id) bit `b` flipped, then random bits.
    fn random_id_in(&self, b: usize) -> NodeId {
        let mut id = NodeId::generate();
        for bit in 0..b {
            set_bit(&mut id, bit, get_bit(&self.own, bit));
        }
        if b < self.buckets.len() - 1 {
            set_bit(&mut id, b, !get_bit(&self.own, b));
        }
        id
    }

    /// Nodes in the buckets (waiting newcomers in the caches are not counted).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every node in the buckets, for saving the table between runs (BEP 5 asks for that).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .map(|e| e.info)
            .collect()
    }

    /// The status of the node at this address, if it is in a bucket (not in a cache).
    pub fn status_of(&self, addr: SocketAddrV4, now: Instant) -> Option<Status> {
        match self.find_addr(addr)? {
            Slot::Table(b, i) => Some(self.buckets[b].nodes[i].status(now)),
            Slot::Cache(..) => None,
        }
    }

    /// For teaching/printing: per bucket, its prefix length (bits shared with own id that
    /// define the range) and its nodes with status.
    pub fn buckets(&self, now: Instant) -> Vec<BucketView> {
        let last = self.buckets.len() - 1;
        self.buckets
            .iter()
            .enumerate()
            .map(|(b, bucket)| BucketView {
                // b < MAX_BUCKETS = 160, so it fits.
                prefix_bits: b as u32,
                covers_own_id: b == last,
                nodes: bucket
                    .nodes
                    .iter()
                    .map(|e| (e.info, e.status(now)))
                    .collect(),
            })
            .collect()
    }
}

/// Bit `i` of an id, counting from the most significant bit of the first byte (0..160).
fn get_bit(id: &NodeId, i: usize) -> bool {
    id.0[i / 8] & (0x80 >> (i % 8)) != 0
}

fn set_bit(id: &mut NodeId, i: usize, value: bool) {
    let mask = 0x80 >> (i % 8);
    if value {
        id.0[i / 8] |= mask;
    } else {
        id.0[i / 8] &= !mask;
    }
}
