//! The peers other nodes announced to us (BEP 5, "DHT Protocol": `announce_peer`, and the
//! "values" of a `get_peers` reply).
//!
//! Where it sits: the `node` thread checks an `announce_peer`'s token (`tokens`), then calls
//! [`PeerStore::announce`]; when a `get_peers` asks about a torrent we hold peers for, it
//! answers with [`PeerStore::peers`]; now and then it calls [`PeerStore::expire`].
//!
//! Strangers fill this store, so it is bounded: at most [`MAX_TORRENTS`] torrents of at most
//! [`MAX_PEERS_PER_TORRENT`] peers each. When full, the oldest goes: the least recently
//! announced peer of a torrent, or the torrent whose latest announce is oldest. A peer not
//! announced again within [`PEER_TTL`] is forgotten (real clients re-announce every 15 to 30
//! minutes).

use crate::metainfo::InfoHash;
use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// How long an announce counts.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);
/// Torrents stored at once.
pub const MAX_TORRENTS: usize = 2_000;
/// Peers stored per torrent.
pub const MAX_PEERS_PER_TORRENT: usize = 200;
/// Peers in one `get_peers` reply: 50 compact peers are 400 bytes, which keeps the reply
/// within one datagram that no router fragments.
pub const VALUES_PER_REPLY: usize = 50;

/// Announced peers, per torrent.
#[derive(Default)]
pub struct PeerStore {
    torrents: HashMap<InfoHash, Swarm>,
}

/// One torrent's peers, each with the time of its latest announce.
struct Swarm {
    peers: Vec<(SocketAddrV4, Instant)>,
    /// The latest announce for this torrent, to pick the torrent to evict when full.
    newest: Instant,
}

impl PeerStore {
    pub fn new() -> PeerStore {
        PeerStore::default()
    }

    /// Records that `peer` announced itself for `info_hash` at `now` (the token was checked
    /// by the caller). A known peer is refreshed; a new one may evict the oldest (see the
    /// module doc).
    pub fn announce(&mut self, info_hash: InfoHash, peer: SocketAddrV4, now: Instant) {
        if !self.torrents.contains_key(&info_hash) && self.torrents.len() >= MAX_TORRENTS {
            self.evict_oldest_torrent();
        }
        let swarm = self.torrents.entry(info_hash).or_insert_with(|| Swarm {
            peers: Vec::new(),
            newest: now,
        });
        swarm.newest = swarm.newest.max(now);
        if let Some(entry) = swarm.peers.iter_mut().find(|(addr, _)| *addr == peer) {
            entry.1 = entry.1.max(now);
            return;
        }
        if swarm.peers.len() >= MAX_PEERS_PER_TORRENT {
            // The peer that has gone longest without announcing makes room.
            if let Some(oldest) = (0..swarm.peers.len()).min_by_key(|&i| swarm.peers[i].1) {
                swarm.peers.swap_remove(oldest);
            }
        }
        if swarm.peers.len() == swarm.peers.capacity() {
            // Grow by doubling, but never past the cap: the memory bound is the cap, not the
            // next power of two above it.
            let wanted = (swarm.peers.len().max(4) * 2).min(MAX_PEERS_PER_TORRENT);
            swarm.peers.reserve_exact(wanted - swarm.peers.len());
        }
        swarm.peers.push((peer, now));
    }

    /// The peers of `info_hash` announced within [`PEER_TTL`] before `now`: all of them when
    /// there are at most [`VALUES_PER_REPLY`], else a random sample of that many (so that
    /// every peer gets asked about, not always the same ones).
    pub fn peers(&self, info_hash: &InfoHash, now: Instant) -> Vec<SocketAddrV4> {
        let Some(swarm) = self.torrents.get(info_hash) else {
            return Vec::new();
        };
        let mut live: Vec<SocketAddrV4> = swarm
            .peers
            .iter()
            .filter(|(_, at)| is_live(*at, now))
            .map(|(addr, _)| *addr)
            .collect();
        if live.len() > VALUES_PER_REPLY {
            // A partial Fisher–Yates shuffle: the first VALUES_PER_REPLY are a uniform sample.
            for i in 0..VALUES_PER_REPLY {
                let j = fastrand::usize(i..live.len());
                live.swap(i, j);
            }
            live.truncate(VALUES_PER_REPLY);
        }
        live
    }

    /// Forgets every peer not announced within [`PEER_TTL`] before `now`, and torrents left
    /// with none.
    pub fn expire(&mut self, now: Instant) {
        self.torrents.retain(|_, swarm| {
            swarm.peers.retain(|(_, at)| is_live(*at, now));
            !swarm.peers.is_empty()
        });
    }

    /// Peers stored, over all torrents (expired ones included until [`PeerStore::expire`]).
    pub fn len(&self) -> usize {
        self.torrents.values().map(|swarm| swarm.peers.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.torrents.is_empty()
    }

    /// Torrents stored.
    pub fn torrents(&self) -> usize {
        self.torrents.len()
    }

    fn evict_oldest_torrent(&mut self) {
        let oldest = self
            .torrents
            .iter()
            .min_by_key(|(_, swarm)| swarm.newest)
            .map(|(hash, _)| *hash);
        if let Some(hash) = oldest {
            self.torrents.remove(&hash);
        }
    }
}

fn is_live(announced: Instant, now: Instant) -> bool {
    now.saturating_duration_since(announced) < PEER_TTL
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn hash(n: u32) -> InfoHash {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&n.to_be_bytes());
        InfoHash(h)
    }

    fn peer(n: u32) -> SocketAddrV4 {
        let [a, b, c, d] = n.to_be_bytes();
        SocketAddrV4::new(Ipv4Addr::new(10, b, c, d ^ a), 6881)
    }

    #[test]
    fn announced_peers_are_served_until_they_expire() {
        let start = Instant::now();
        let mut store = PeerStore::new();
        store.announce(hash(1), peer(1), start);
        store.announce(hash(1), peer(2), start + Duration::from_secs(60));
        assert_eq!(store.len(), 2);
        let mut got = store.peers(&hash(1), start + Duration::from_secs(60));
        got.sort();
        assert_eq!(got, vec![peer(1), peer(2)]);
        assert!(store.peers(&hash(2), start).is_empty(), "another torrent");
        // Peer 1 expires first; expire() then frees it.
        let later = start + PEER_TTL + Duration::from_secs(1);
        assert_eq!(store.peers(&hash(1), later), vec![peer(2)]);
        store.expire(later);
        assert_eq!(store.len(), 1);
        store.expire(later + Duration::from_secs(60));
        assert_eq!((store.len(), store.torrents()), (0, 0));
        assert!(store.is_empty());
    }

    #[test]
    fn announcing_again_refreshes_instead_of_duplicating() {
        let start = Instant::now();
        let mut store = PeerStore::new();
        store.announce(hash(1), peer(1), start);
        let refreshed = start + PEER_TTL - Duration::from_secs(1);
        store.announce(hash(1), peer(1), refreshed);
        assert_eq!(store.len(), 1);
        let after_first_ttl = start + PEER_TTL + Duration::from_secs(10);
        store.expire(after_first_ttl);
        assert_eq!(store.peers(&hash(1), after_first_ttl), vec![peer(1)]);
    }

    #[test]
    fn a_full_torrent_drops_its_least_recently_announced_peer() {
        let start = Instant::now();
        let mut store = PeerStore::new();
        for i in 0..MAX_PEERS_PER_TORRENT as u32 {
            store.announce(hash(1), peer(i), start + Duration::from_secs(u64::from(i)));
        }
        // Peer 0 announces again, so peer 1 is now the oldest.
        let t = start + Duration::from_secs(1000);
        store.announce(hash(1), peer(0), t);
        store.announce(hash(1), peer(9999), t);
        assert_eq!(store.len(), MAX_PEERS_PER_TORRENT);
        let swarm = &store.torrents[&hash(1)];
        let has = |p| swarm.peers.iter().any(|(a, _)| *a == p);
        assert!(has(peer(0)) && has(peer(9999)) && !has(peer(1)));
        assert!(swarm.peers.capacity() <= MAX_PEERS_PER_TORRENT);
    }

    #[test]
    fn a_full_store_drops_the_torrent_announced_least_recently() {
        let start = Instant::now();
        let mut store = PeerStore::new();
        for i in 0..MAX_TORRENTS as u32 {
            store.announce(
                hash(i),
                peer(i),
                start + Duration::from_millis(u64::from(i)),
            );
        }
        // Torrent 0 is announced again, so torrent 1 is the one to go.
        let t = start + Duration::from_secs(100);
        store.announce(hash(0), peer(77), t);
        store.announce(hash(5000), peer(5000), t);
        assert_eq!(store.torrents(), MAX_TORRENTS);
        assert_eq!(store.peers(&hash(0), t).len(), 2);
        assert!(store.peers(&hash(1), t).is_empty());
        assert_eq!(store.peers(&hash(5000), t), vec![peer(5000)]);
    }

    #[test]
    fn a_reply_holds_a_random_sample_of_at_most_values_per_reply() {
        let start = Instant::now();
        let mut store = PeerStore::new();
        for i in 0..120 {
            store.announce(hash(1), peer(i), start);
        }
        let first = store.peers(&hash(1), start);
        assert_eq!(first.len(), VALUES_PER_REPLY);
        let mut distinct = first.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), VALUES_PER_REPLY, "no peer twice");
        // Over many replies, every peer gets handed out (not always the first 50).
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            seen.extend(store.peers(&hash(1), start));
        }
        assert_eq!(seen.len(), 120);
    }

    #[test]
    fn the_memory_bound_is_about_ten_megabytes() {
        // The figure docs/security.md gives: every torrent full, each peer slot an address
        // and an instant, plus the map entry. (HashMap's spare capacity comes on top.)
        let slot = std::mem::size_of::<(SocketAddrV4, Instant)>();
        let torrent = std::mem::size_of::<(InfoHash, Swarm)>();
        let bound = MAX_TORRENTS * (MAX_PEERS_PER_TORRENT * slot + torrent);
        assert!(bound <= 10_000_000, "{bound} bytes");
    }
}
