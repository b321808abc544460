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
        // [W15.4] Bad: failed twice in a row. Good: a recent reply, or a reply once and a
        // recent query. Everything else is questionable.
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
        if self.cache.len() >= REPLACEMENT_CACHE
            && let Some(oldest) = (0..self.cache.len()).min_by_key(|&i| self.cache[i].last_seen)
        {
            self.cache.remove(oldest);
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

    /// The bucket a node with this id belongs in (see the module doc). [W15.2]
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
            // [W15.3] Every node is good. Only the bucket around our own id may split: that is what
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
                if entry.failures >= BAD_AFTER_FAILURES
                    && let Some(replacement) = bucket.take_replacement()
                {
                    bucket.nodes[i] = replacement;
                    bucket.last_changed = now;
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

#[cfg(test)]
mod tests {
    //! Most tests use our own id = 0 (twenty zero bytes), so that a node's bucket can be read
    //! off the first byte of its id: first byte 0x80..=0xff shares 0 bits with us, 0x40..=0x7f
    //! shares 1, 0x20..=0x3f shares 2, and so on.
    use super::*;
    use std::net::Ipv4Addr;

    const OWN: NodeId = NodeId([0; 20]);

    /// An id with this first byte and this last byte, zeros between.
    fn id(first: u8, last: u8) -> NodeId {
        let mut bytes = [0u8; 20];
        bytes[0] = first;
        bytes[19] = last;
        NodeId(bytes)
    }

    /// A distinct address per number.
    fn addr(n: u32) -> SocketAddrV4 {
        let [_, a, b, c] = n.to_be_bytes();
        SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), 6881)
    }

    /// A node whose id starts with `first` and whose address is numbered `first` too.
    fn node(first: u8) -> NodeInfo {
        NodeInfo {
            id: id(first, 0),
            addr: addr(u32::from(first)),
        }
    }

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    fn firsts(nodes: &[NodeInfo]) -> Vec<u8> {
        nodes.iter().map(|n| n.id.0[0]).collect()
    }

    fn random_id(rng: &mut fastrand::Rng) -> NodeId {
        NodeId(std::array::from_fn(|_| rng.u8(..)))
    }

    /// Bucket 0 full of eight good far nodes (first bytes 0x80..=0x87), bucket 1 (ours) with
    /// one near node (0x01), everything heard at t0.
    fn far_bucket_full(t0: Instant) -> RoutingTable {
        let mut table = RoutingTable::new(OWN, t0);
        for first in 0x80..0x88 {
            assert_eq!(table.heard_from(node(first), Heard::Reply, t0), Added::New);
        }
        // The only bucket is full of good nodes and covers our id: it splits, the eight far
        // nodes land in bucket 0 and the near one in the new bucket 1.
        assert_eq!(table.heard_from(node(0x01), Heard::Reply, t0), Added::Split);
        table
    }

    #[test]
    fn a_nodes_bucket_is_its_shared_prefix_with_our_id() {
        assert_eq!(OWN.shared_prefix_bits(&id(0x80, 0)), 0);
        assert_eq!(OWN.shared_prefix_bits(&id(0xff, 0)), 0);
        assert_eq!(OWN.shared_prefix_bits(&id(0x40, 0)), 1);
        assert_eq!(OWN.shared_prefix_bits(&id(0x01, 0)), 7);
        assert_eq!(OWN.shared_prefix_bits(&id(0x00, 1)), 159);

        let mut table = RoutingTable::new(OWN, Instant::now());
        // One bucket: everything goes into bucket 0.
        assert_eq!(table.bucket_index(&id(0x01, 0)), 0);
        // With three buckets, shared prefixes of 2 or more all go into the last one.
        table.buckets.push(Bucket::new(Instant::now()));
        table.buckets.push(Bucket::new(Instant::now()));
        assert_eq!(table.bucket_index(&id(0x80, 0)), 0);
        assert_eq!(table.bucket_index(&id(0x40, 0)), 1);
        assert_eq!(table.bucket_index(&id(0x20, 0)), 2);
        assert_eq!(table.bucket_index(&id(0x01, 0)), 2);
    }

    #[test]
    fn a_full_bucket_splits_exactly_around_our_id() {
        let t0 = Instant::now();
        let mut table = RoutingTable::new(OWN, t0);
        // Four far nodes (bit 0 set) and four near ones (bit 0 clear) fill the single bucket.
        for first in [0x80, 0x81, 0x82, 0x83, 0x40, 0x41, 0x20, 0x01] {
            assert_eq!(table.heard_from(node(first), Heard::Reply, t0), Added::New);
        }
        assert_eq!(table.buckets(t0).len(), 1);

        // A ninth: the bucket is full of good nodes and holds our id, so it splits at bit 0.
        assert_eq!(table.heard_from(node(0x10), Heard::Reply, t0), Added::Split);
        let view = table.buckets(t0);
        assert_eq!(view.len(), 2);
        assert_eq!((view[0].prefix_bits, view[0].covers_own_id), (0, false));
        assert_eq!((view[1].prefix_bits, view[1].covers_own_id), (1, true));
        let bucket_firsts =
            |v: &BucketView| firsts(&v.nodes.iter().map(|n| n.0).collect::<Vec<_>>());
        assert_eq!(bucket_firsts(&view[0]), [0x80, 0x81, 0x82, 0x83]);
        assert_eq!(bucket_firsts(&view[1]), [0x40, 0x41, 0x20, 0x01, 0x10]);

        // Fill our bucket to eight, then a ninth splits it at bit 1: 0x40..=0x7f share exactly
        // one bit with us and stay, the ones below 0x40 share two or more and move on.
        for first in [0x42, 0x43, 0x21] {
            assert_eq!(table.heard_from(node(first), Heard::Reply, t0), Added::New);
        }
        assert_eq!(table.heard_from(node(0x44), Heard::Reply, t0), Added::Split);
        let view = table.buckets(t0);
        assert_eq!(view.len(), 3);
        assert_eq!(bucket_firsts(&view[0]), [0x80, 0x81, 0x82, 0x83]);
        assert_eq!(bucket_firsts(&view[1]), [0x40, 0x41, 0x42, 0x43, 0x44]);
        assert_eq!(bucket_firsts(&view[2]), [0x20, 0x01, 0x10, 0x21]);
        assert_eq!(
            view.iter().map(|v| v.covers_own_id).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(table.len(), 13);
    }

    #[test]
    fn a_full_far_bucket_of_good_nodes_drops_the_newcomer() {
        let t0 = Instant::now();
        let mut table = far_bucket_full(t0);
        // 0x90 belongs in bucket 0: full, all good, and our id is not in its range.
        assert_eq!(
            table.heard_from(node(0x90), Heard::Reply, t0),
            Added::Ignored
        );
        assert_eq!(table.len(), 9);
        assert_eq!(table.buckets(t0).len(), 2, "a far bucket never splits");
        assert_eq!(table.status_of(node(0x90).addr, t0), None);
    }

    #[test]
    fn a_bad_node_is_replaced_by_a_newcomer() {
        let t0 = Instant::now();
        let mut table = far_bucket_full(t0);
        let victim = node(0x83);
        table.failed(victim.addr, t0);
        assert_eq!(
            table.status_of(victim.addr, t0),
            Some(Status::Good),
            "one failure is not enough: it may have been a lost packet"
        );
        table.failed(victim.addr, t0);
        assert_eq!(table.status_of(victim.addr, t0), Some(Status::Bad));
        assert!(!table.closest(&victim.id, 20, t0).contains(&victim));

        assert_eq!(
            table.heard_from(node(0x90), Heard::Reply, t0),
            Added::Replaced(victim)
        );
        assert_eq!(table.status_of(victim.addr, t0), None);
        assert_eq!(table.status_of(node(0x90).addr, t0), Some(Status::Good));
        assert_eq!(table.len(), 9);
    }

    #[test]
    fn questionable_nodes_are_pinged_and_a_failing_one_makes_room_for_a_waiting_newcomer() {
        let t0 = Instant::now();
        let mut table = far_bucket_full(t0);
        // Sixteen minutes later nobody in bucket 0 has answered us: all eight are questionable.
        let t1 = t0 + minutes(16);
        // (The near node in bucket 1 answers something, so that only bucket 0 needs pings.)
        table.heard_from(node(0x01), Heard::Reply, t1);
        let answered = node(0x90);
        let Added::PingFirst(ping) = table.heard_from(answered, Heard::Reply, t1) else {
            panic!("a full bucket with questionable nodes should ask for pings");
        };
        assert_eq!(firsts(&ping), (0x80..0x88).collect::<Vec<u8>>());
        assert_eq!(table.status_of(answered.addr, t1), None, "waiting, not in");

        // A second newcomer, that has only sent us a query, also waits; the pings are already
        // under way, so it asks for none, and neither does the periodic to_ping.
        let asked = node(0x91);
        assert_eq!(
            table.heard_from(asked, Heard::Query, t1),
            Added::PingFirst(vec![])
        );
        assert_eq!(table.to_ping(t1), vec![]);

        // 0x80 does not answer the ping. One failure: it gets a second chance, at once.
        let victim = node(0x80);
        table.failed(victim.addr, t1);
        assert_eq!(table.status_of(victim.addr, t1), Some(Status::Questionable));
        assert_eq!(table.to_ping(t1), vec![victim]);

        // The second failure makes it bad; the waiting newcomer that has answered us (rather
        // than the one that only asked) takes its place.
        table.failed(victim.addr, t1);
        assert_eq!(table.status_of(victim.addr, t1), None);
        assert_eq!(table.status_of(answered.addr, t1), Some(Status::Good));
        assert_eq!(table.status_of(asked.addr, t1), None, "still waiting");
        assert_eq!(table.len(), 9);
    }

    #[test]
    fn status_follows_the_clock() {
        let t0 = Instant::now();
        let mut table = RoutingTable::new(OWN, t0);
        let replier = node(0x80);
        table.heard_from(replier, Heard::Reply, t0);
        let status = |table: &RoutingTable, n: NodeInfo, t| table.status_of(n.addr, t);
        assert_eq!(status(&table, replier, t0), Some(Status::Good));
        assert_eq!(
            status(&table, replier, t0 + minutes(15) - Duration::from_secs(1)),
            Some(Status::Good)
        );
        assert_eq!(
            status(&table, replier, t0 + minutes(15)),
            Some(Status::Questionable)
        );
        // It has answered us once, so a query from it makes it good again.
        table.heard_from(replier, Heard::Query, t0 + minutes(20));
        assert_eq!(
            status(&table, replier, t0 + minutes(20)),
            Some(Status::Good)
        );

        // A node that only ever sent us queries has not shown that it can be reached.
        let asker = node(0x40);
        table.heard_from(asker, Heard::Query, t0);
        assert_eq!(status(&table, asker, t0), Some(Status::Questionable));

        // Two failures in a row: bad. An answer afterwards: good again.
        table.failed(replier.addr, t0 + minutes(21));
        table.failed(replier.addr, t0 + minutes(22));
        assert_eq!(status(&table, replier, t0 + minutes(22)), Some(Status::Bad));
        table.heard_from(replier, Heard::Reply, t0 + minutes(23));
        assert_eq!(
            status(&table, replier, t0 + minutes(23)),
            Some(Status::Good)
        );
    }

    #[test]
    fn to_ping_asks_for_each_questionable_node_once_per_interval() {
        let t0 = Instant::now();
        let mut table = RoutingTable::new(OWN, t0);
        table.heard_from(node(0x80), Heard::Reply, t0);
        table.heard_from(node(0x40), Heard::Reply, t0 + minutes(10));
        assert_eq!(table.to_ping(t0 + minutes(10)), vec![], "both good");
        let t1 = t0 + minutes(16);
        assert_eq!(table.to_ping(t1), vec![node(0x80)]);
        assert_eq!(table.to_ping(t1 + minutes(1)), vec![]);
        // Least recently seen first.
        let t2 = t0 + minutes(26);
        assert_eq!(table.to_ping(t2), vec![node(0x80), node(0x40)]);
    }

    #[test]
    fn closest_sorts_by_xor_distance_to_the_target_and_skips_bad_nodes() {
        let t0 = Instant::now();
        let mut table = RoutingTable::new(OWN, t0);
        for first in [0x01, 0x02, 0x03, 0x80, 0xff, 0x40] {
            table.heard_from(node(first), Heard::Reply, t0);
        }
        // Distances to a target starting 0x03 (first bytes XOR 0x03):
        //   0x03 → 0x00   0x02 → 0x01   0x01 → 0x02   0x40 → 0x43   0x80 → 0x83   0xff → 0xfc
        let target = id(0x03, 0);
        assert_eq!(
            firsts(&table.closest(&target, 4, t0)),
            [0x03, 0x02, 0x01, 0x40]
        );
        assert_eq!(
            firsts(&table.closest(&target, 100, t0)),
            [0x03, 0x02, 0x01, 0x40, 0x80, 0xff]
        );
        table.failed(node(0x02).addr, t0);
        table.failed(node(0x02).addr, t0);
        assert_eq!(firsts(&table.closest(&target, 3, t0)), [0x03, 0x01, 0x40]);
    }

    #[test]
    fn refresh_targets_fall_inside_the_quiet_buckets() {
        let t0 = Instant::now();
        let mut table = far_bucket_full(t0);
        for first in [0x40, 0x41, 0x42, 0x43, 0x20, 0x21, 0x10] {
            table.heard_from(node(first), Heard::Reply, t0);
        }
        table.heard_from(node(0x44), Heard::Reply, t0);
        assert_eq!(table.buckets(t0).len(), 3);

        assert_eq!(table.refresh_targets(t0 + minutes(14)), vec![]);
        // An answer from a node in bucket 1 keeps that bucket fresh.
        table.heard_from(node(0x40), Heard::Reply, t0 + minutes(5));
        let t1 = t0 + minutes(15);
        let targets = table.refresh_targets(t1);
        assert_eq!(targets.len(), 2);
        assert_eq!(OWN.shared_prefix_bits(&targets[0]), 0, "bucket 0");
        assert!(OWN.shared_prefix_bits(&targets[1]) >= 2, "bucket 2, ours");
        assert_eq!(table.refresh_targets(t1), vec![], "refreshed from now");

        // Many draws: each target falls in its own bucket's range.
        let mut t = t1;
        for _ in 0..200 {
            t += REFRESH_AFTER;
            let targets = table.refresh_targets(t);
            assert_eq!(targets.len(), 3);
            for (b, target) in targets.iter().enumerate() {
                assert_eq!(table.bucket_index(target), b, "{target}");
                assert_ne!(*target, OWN);
            }
        }
    }

    #[test]
    fn an_id_or_address_already_known_is_not_taken_over() {
        let t0 = Instant::now();
        let mut table = RoutingTable::new(OWN, t0);
        let a = node(0x80);
        table.heard_from(a, Heard::Reply, t0);

        // Someone at another address claims a's id: ignored, a stays where it was.
        let impostor = NodeInfo {
            id: a.id,
            addr: addr(999),
        };
        assert_eq!(table.heard_from(impostor, Heard::Reply, t0), Added::Ignored);
        assert_eq!(table.nodes(), vec![a]);

        // a's address with another id: ignored while a is not bad.
        let renamed = NodeInfo {
            id: id(0x81, 0),
            addr: a.addr,
        };
        assert_eq!(table.heard_from(renamed, Heard::Reply, t0), Added::Ignored);
        assert_eq!(table.nodes(), vec![a]);

        // Once a is bad, the address most likely belongs to a restarted node: let it in.
        table.failed(a.addr, t0);
        table.failed(a.addr, t0);
        assert_eq!(table.heard_from(renamed, Heard::Reply, t0), Added::New);
        assert_eq!(table.nodes(), vec![renamed]);

        // Hearing from a known node again only refreshes it.
        assert_eq!(
            table.heard_from(renamed, Heard::Query, t0),
            Added::Refreshed
        );
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn our_own_id_is_never_added() {
        let t0 = Instant::now();
        let mut table = RoutingTable::new(OWN, t0);
        let me = NodeInfo {
            id: OWN,
            addr: addr(1),
        };
        assert_eq!(table.heard_from(me, Heard::Reply, t0), Added::Ignored);
        assert!(table.is_empty());
        assert_eq!(table.own_id(), OWN);
    }

    /// Checks the invariants: at most MAX_BUCKETS buckets of at most K nodes each, every node
    /// in the bucket its id belongs in, no id or address twice.
    fn check_invariants(table: &RoutingTable) {
        assert!(!table.buckets.is_empty() && table.buckets.len() <= MAX_BUCKETS);
        let mut ids = std::collections::HashSet::new();
        let mut addrs = std::collections::HashSet::new();
        for (b, bucket) in table.buckets.iter().enumerate() {
            assert!(bucket.nodes.len() <= K && bucket.cache.len() <= REPLACEMENT_CACHE);
            for e in bucket.nodes.iter().chain(&bucket.cache) {
                assert_eq!(table.bucket_index(&e.info.id), b);
                assert!(ids.insert(e.info.id), "id twice: {}", e.info.id);
                assert!(addrs.insert(e.info.addr), "address twice: {}", e.info.addr);
            }
        }
        assert_eq!(table.nodes().len(), table.len());
        assert!(table.len() <= MAX_BUCKETS * K);
    }

    #[test]
    fn ten_thousand_random_nodes_keep_the_table_bounded() {
        let t0 = Instant::now();
        let mut rng = fastrand::Rng::with_seed(5);
        let own = random_id(&mut rng);
        let mut table = RoutingTable::new(own, t0);
        for n in 0..10_000 {
            let node = NodeInfo {
                id: random_id(&mut rng),
                addr: addr(n),
            };
            table.heard_from(node, Heard::Reply, t0);
        }
        check_invariants(&table);
        // Random ids: about half share 0 bits with us, a quarter 1 bit, ... so only about
        // log2(10000 / 8) ≈ 10 buckets fill up before the ones near us run out of nodes.
        let buckets = table.buckets(t0).len();
        assert!((8..=16).contains(&buckets), "{buckets} buckets");
        assert!(table.len() <= buckets * K);
    }

    #[test]
    fn nodes_near_our_id_can_split_the_table_into_at_most_160_buckets() {
        let t0 = Instant::now();
        let mut rng = fastrand::Rng::with_seed(7);
        let own = random_id(&mut rng);
        let mut table = RoutingTable::new(own, t0);
        let mut n = 0;
        // For every prefix length, K + 1 nodes sharing exactly that many bits with us
        // (fewer exist for the longest prefixes: only one id shares exactly 159 bits).
        for shared in (0..160).rev() {
            for _ in 0..=K {
                let mut id = random_id(&mut rng);
                for bit in 0..shared {
                    set_bit(&mut id, bit, get_bit(&own, bit));
                }
                set_bit(&mut id, shared, !get_bit(&own, shared));
                table.heard_from(NodeInfo { id, addr: addr(n) }, Heard::Reply, t0);
                n += 1;
            }
        }
        check_invariants(&table);
        // Not quite 160: only 7 ids share 157 or more bits with ours, so the bucket holding
        // them can never have K = 8 nodes, never be full, and never split.
        assert_eq!(table.buckets(t0).len(), 158);
        assert!(table.len() <= 158 * K);
    }

    #[test]
    fn a_caller_that_does_the_pings_ends_with_a_table_of_reachable_nodes() {
        // 3,000 random nodes; every third one only sends queries and never answers ours (it
        // sits behind a NAT). The test plays the `dht` thread: it pings whatever the table asks
        // for, and reports an answer or a failure.
        let mut t = Instant::now();
        let mut rng = fastrand::Rng::with_seed(11);
        let mut table = RoutingTable::new(random_id(&mut rng), t);
        let nodes: Vec<NodeInfo> = (0..3000)
            .map(|n| NodeInfo {
                id: random_id(&mut rng),
                addr: addr(n),
            })
            .collect();
        let reachable = |n: &NodeInfo| !u32::from_be_bytes(n.addr.ip().octets()).is_multiple_of(3);
        let ping = |table: &mut RoutingTable, list: Vec<NodeInfo>, t: Instant| {
            for n in list {
                if reachable(&n) {
                    table.heard_from(n, Heard::Reply, t);
                } else {
                    table.failed(n.addr, t);
                }
            }
        };
        for n in &nodes {
            let heard = if reachable(n) {
                Heard::Reply
            } else {
                Heard::Query
            };
            if let Added::PingFirst(list) = table.heard_from(*n, heard, t) {
                ping(&mut table, list, t);
            }
            // The thread's timer: pings due now (second tries for nodes that failed once).
            let due = table.to_ping(t);
            ping(&mut table, due, t);
            t += Duration::from_millis(100);
        }
        check_invariants(&table);
        assert!(table.buckets(t).len() >= 6, "the table split");
        for (info, status) in table.buckets(t).into_iter().flat_map(|b| b.nodes) {
            if reachable(&info) {
                assert_eq!(status, Status::Good, "{info:?}");
            } else {
                assert_ne!(status, Status::Good, "{info:?}");
            }
        }
        let good = table.nodes().iter().filter(|n| reachable(n)).count();
        assert!(good * 10 >= table.len() * 9, "{good} of {}", table.len());
    }
}
