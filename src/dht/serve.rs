//! Answering queries (BEP 5, "DHT Protocol"): what a node tells the nodes that ask it —
//! walkthrough §15.
//!
//! ```text
//!   ping           → our id
//!   find_node      → the 8 nodes we know closest to the target
//!   get_peers      → the peers announced for that hash, or else the closest nodes; and a token
//!   announce_peer  → with a token we gave this address: the sender's address is stored
//!   anything else  → error 204
//! ```
//!
//! Pure: `node.rs` calls [`Server::answer`] with the routing table and the time. Every reply
//! is built from bounded state (8 nodes, at most 50 peers), so it stays a few hundred bytes
//! whatever was asked: nobody can use us to send a victim much more than they sent us.

use super::K;
use super::krpc::{self, Message, Query, Response};
use super::routing::RoutingTable;
use super::store::PeerStore;
use super::tokens::Tokens;
use super::{NodeId, NodeInfo};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Queries answered per second for one IP address; more are dropped unanswered. A real
/// node sends a few a second; a flood from one address cannot make us its amplifier.
pub const QUERIES_PER_SECOND: u32 = 50;

/// How many addresses the rate limit tracks in one second; queries from yet more addresses
/// in that second are dropped, so the limiter's own memory is bounded too.
pub const MAX_SOURCES_PER_SECOND: usize = 4_096;

/// The per-address rate limit: a count per IP, started afresh every second.
pub struct RateLimit {
    window: Instant,
    counts: HashMap<Ipv4Addr, u32>,
}

impl RateLimit {
    pub fn allows(&mut self, ip: Ipv4Addr, now: Instant) -> bool {
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.counts.clear();
        }
        if self.counts.len() >= MAX_SOURCES_PER_SECOND && !self.counts.contains_key(&ip) {
            return false;
        }
        let count = self.counts.entry(ip).or_insert(0);
        *count += 1;
        *count <= QUERIES_PER_SECOND
    }
}

/// What a node keeps to answer others: tokens it handed out, peers announced to it, and
/// how much each address asked this second.
pub struct Server {
    tokens: Tokens,
    store: PeerStore,
    pub limit: RateLimit,
    last_expiry: Instant,
}

impl Server {
    pub fn new(now: Instant) -> Server {
        Server {
            tokens: Tokens::new(now),
            store: PeerStore::new(),
            limit: RateLimit {
                window: now,
                counts: HashMap::new(),
            },
            last_expiry: now,
        }
    }

    /// Forgets announced peers older than 30 minutes (run every minute: cheap, and memory
    /// is bounded by the store's caps in between).
    pub fn expire(&mut self, now: Instant) {
        if now.duration_since(self.last_expiry) >= Duration::from_secs(60) {
            self.store.expire(now);
            self.last_expiry = now;
        }
    }

    /// Peers stored for all torrents.
    pub fn stored_peers(&self) -> usize {
        self.store.len()
    }

    /// Our answer to one query (BEP 5's four, or error 204).
    pub fn answer(
        &mut self,
        table: &RoutingTable,
        from: SocketAddrV4,
        transaction: Vec<u8>,
        query: Query,
        now: Instant,
    ) -> Message {
        let id = table.own_id();
        let response = |nodes, values, token| Response {
            id,
            nodes,
            values,
            token,
        };
        match query {
            Query::Ping => Message::response(transaction, response(Vec::new(), Vec::new(), None)),
            Query::FindNode { target } => {
                let nodes = closest_but(table, &target, from, now);
                Message::response(transaction, response(nodes, Vec::new(), None))
            }
            Query::GetPeers { info_hash } => {
                // The token lets this address announce to us in the next minutes.
                let token = self.tokens.token_for(*from.ip(), now);
                let values = self.store.peers(&info_hash, now);
                // Peers if we have them, otherwise the closest nodes we know (BEP 5): a
                // reply no larger than it needs to be.
                let nodes = match values.is_empty() {
                    true => closest_but(table, &NodeId::from(info_hash), from, now),
                    false => Vec::new(),
                };
                Message::response(transaction, response(nodes, values, Some(token)))
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                // [W15.6] Only an address that asked get_peers of us minutes ago holds a valid
                // token: nobody can announce a peer at an address they do not receive at.
                if !self.tokens.is_valid(*from.ip(), &token, now) {
                    return Message::error(transaction, krpc::ERROR_PROTOCOL, "bad token");
                }
                // The address is always the sender's own: a peer can announce itself, never
                // a third party. `implied_port` means "the port you see me send from" (uTP).
                let port = if implied_port { from.port() } else { port };
                if port == 0 {
                    return Message::error(transaction, krpc::ERROR_PROTOCOL, "port 0");
                }
                let peer = SocketAddrV4::new(*from.ip(), port);
                self.store.announce(info_hash, peer, now);
                Message::response(transaction, response(Vec::new(), Vec::new(), None))
            }
            Query::Unknown { method } => {
                let text = format!("method unknown: {method}");
                Message::error(transaction, krpc::ERROR_METHOD_UNKNOWN, &text)
            }
        }
    }
}

/// The K nodes we know closest to `target`, leaving out the one asking: it knows itself, and
/// a lookup that is told its own address would only waste a query on it.
fn closest_but(
    table: &RoutingTable,
    target: &NodeId,
    asker: SocketAddrV4,
    now: Instant,
) -> Vec<NodeInfo> {
    let mut nodes = table.closest(target, K + 1, now);
    nodes.retain(|n| n.addr != asker);
    nodes.truncate(K);
    nodes
}
