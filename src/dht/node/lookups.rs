//! The node's lookups (BEP 5, "DHT Protocol"): starting them, moving them on, and handing
//! over what they found — walkthrough §15.
//!
//! A torrent we download or seed is looked up when we start it and every 15 minutes after;
//! each lookup ends with `announce_peer` to the closest nodes that answered, so that others
//! looking for the torrent find us. A lookup asked for before the table has anyone in it
//! waits for the bootstrap.

use super::{
    FIRST_RETRY, LONGEST_RETRY, LookupEvent, LookupFor, Node, Purpose, REANNOUNCE, Running,
};
use crate::dht::krpc::Query;
use crate::dht::lookup::Lookup;
use crate::dht::{K, NodeId, NodeInfo};
use crate::metainfo::InfoHash;
use std::net::SocketAddr;
use std::time::Instant;

impl Node {
    pub(super) fn start_due_torrents(&mut self, now: Instant) {
        if self.table.is_empty() {
            return;
        }
        let due: Vec<InfoHash> = self
            .tracked
            .iter()
            .filter(|(_, t)| !t.running && t.next_run <= now)
            .map(|(hash, _)| *hash)
            .collect();
        for info_hash in due {
            if let Some(tracked) = self.tracked.get_mut(&info_hash) {
                tracked.running = true;
            }
            self.start_lookup(NodeId::from(info_hash), LookupFor::Torrent(info_hash), now);
        }
    }

    /// A lookup from the closest nodes we know; or, with an empty table, once it has some.
    pub(super) fn start_lookup(&mut self, target: NodeId, for_whom: LookupFor, now: Instant) {
        if self.table.is_empty() {
            self.waiting.push((target, for_whom));
            return;
        }
        let start = self.table.closest(&target, K, now);
        self.run_lookup(target, start, for_whom, now);
    }

    pub(super) fn run_lookup(
        &mut self,
        target: NodeId,
        start: Vec<NodeInfo>,
        for_whom: LookupFor,
        now: Instant,
    ) {
        let key = self.next_lookup;
        self.next_lookup += 1;
        let get_peers = !matches!(for_whom, LookupFor::Table);
        let running = Running {
            lookup: Lookup::new(target, start, now),
            for_whom,
            get_peers,
            delivered: 0,
        };
        self.lookups.insert(key, running);
        self.drive_lookup(key, now);
    }

    pub(super) fn drive_lookups(&mut self, now: Instant) {
        let keys: Vec<u64> = self.lookups.keys().copied().collect();
        for key in keys {
            self.drive_lookup(key, now);
        }
    }

    /// One lookup moves on: timeouts count against their nodes, new queries go out (α at
    /// most in flight), and a finished lookup hands over what it found.
    pub(super) fn drive_lookup(&mut self, key: u64, now: Instant) {
        let Some(running) = self.lookups.get_mut(&key) else {
            return;
        };
        let to_ask = running.lookup.next_queries(now);
        let timed_out = running.lookup.take_timed_out();
        let target = running.lookup.target();
        let get_peers = running.get_peers;
        if let LookupFor::Report(events) = &running.for_whom {
            for addr in &timed_out {
                let _ = events.send(LookupEvent::NoAnswer(*addr));
            }
        }
        for addr in timed_out {
            self.table.failed(addr, now);
        }
        for node in to_ask {
            let query = match get_peers {
                true => Query::GetPeers {
                    info_hash: InfoHash(target.0),
                },
                false => Query::FindNode { target },
            };
            self.send_query(node.addr, query, Purpose::Lookup(key), now);
        }
        if self.lookups.get(&key).is_some_and(|r| r.lookup.is_done())
            && let Some(done) = self.lookups.remove(&key)
        {
            self.finish(done, now);
        }
    }

    /// Peers found so far go to the torrent at once: a download need not wait for the
    /// whole lookup.
    pub(super) fn deliver_peers(&mut self, key: u64) {
        let Some(running) = self.lookups.get_mut(&key) else {
            return;
        };
        let LookupFor::Torrent(info_hash) = running.for_whom else {
            return;
        };
        let fresh: Vec<SocketAddr> = running.lookup.peers()[running.delivered..]
            .iter()
            .map(|p| SocketAddr::V4(*p))
            .collect();
        running.delivered = running.lookup.peers().len();
        if let (false, Some(tracked)) = (fresh.is_empty(), self.tracked.get(&info_hash)) {
            // The session may have ended: it sends `Forget`, which comes soon.
            let _ = tracked.peers.send(fresh);
        }
    }

    pub(super) fn finish(&mut self, running: Running, now: Instant) {
        let lookup = running.lookup;
        match running.for_whom {
            LookupFor::Report(events) => {
                let _ = events.send(LookupEvent::Done {
                    peers: lookup.peers().to_vec(),
                    queries: lookup.queries_sent(),
                });
            }
            LookupFor::Table => {}
            LookupFor::Torrent(info_hash) => {
                let Some(tracked) = self.tracked.get_mut(&info_hash) else {
                    return; // forgotten while the lookup ran
                };
                tracked.running = false;
                // Found peers: come back on the re-announce schedule. None yet: the
                // swarm may still be finding its way into the DHT; try again soon.
                if lookup.peers().is_empty() {
                    tracked.next_run = now + tracked.retry;
                    tracked.retry = (tracked.retry * 2).min(LONGEST_RETRY);
                } else {
                    tracked.next_run = now + REANNOUNCE;
                    tracked.retry = FIRST_RETRY;
                }
                let Some(port) = tracked.announce_port else {
                    return;
                };
                // [W15.9] BEP 5: announce to the closest nodes that answered, each with the token
                // it gave us.
                for (node, token) in lookup.closest_answered() {
                    let Some(token) = token else { continue };
                    let query = Query::AnnouncePeer {
                        info_hash,
                        port,
                        implied_port: false,
                        token,
                    };
                    self.send_query(node.addr, query, Purpose::Announce, now);
                }
            }
        }
    }
}
