//! The built-in tracker's memory: who is in which swarm — walkthrough §3.
//!
//! A tracker only remembers recent announces. For each info hash it keeps the peers that
//! announced, keyed by their address (ip, port): a client that restarts with a new peer id on
//! the same port replaces its old entry instead of appearing twice.
//!
//! ```text
//!   announce ──► expire peers silent for 2 intervals ──► started/none/completed: upsert
//!                                                     └► stopped: remove
//!            ◄── up to `numwant` other peers (random), seeders and leechers counts
//! ```
//!
//! Time is passed in (`now`) rather than read from the clock, so tests can show expiry
//! without waiting. Sizes are capped: a stranger announcing a million made-up torrents
//! cannot exhaust memory.

use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::tracker::{Event, ScrapeStats};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most torrents and most peers per torrent the tracker keeps.
pub const MAX_TORRENTS: usize = 10_000;
pub const MAX_PEERS_PER_TORRENT: usize = 10_000;

/// One peer as the tracker remembers it.
#[derive(Debug, Clone)]
pub struct SwarmPeer {
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    pub left: u64,
    pub uploaded: u64,
    pub downloaded: u64,
    pub last_announce: Instant,
    pub announces: u32,
}

/// What a peer told us in one announce (from HTTP or UDP alike).
#[derive(Debug, Clone)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// The peer's IP as we saw it, with the port it announced.
    pub addr: SocketAddr,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    pub numwant: usize,
}

/// The answer to an announce.
#[derive(Debug, Clone)]
pub struct AnnounceAnswer {
    /// Other peers (never the announcer itself).
    pub peers: Vec<SwarmPeer>,
    pub seeders: u32,
    pub leechers: u32,
}

#[derive(Default)]
struct Torrent {
    peers: HashMap<SocketAddr, SwarmPeer>,
    /// How many peers reported `completed`.
    completed: u32,
}

/// Every swarm the tracker knows.
pub struct Swarms {
    torrents: HashMap<InfoHash, Torrent>,
    /// Peers that miss two intervals are forgotten.
    interval: Duration,
}

impl Swarms {
    pub fn new(interval: Duration) -> Swarms {
        Swarms {
            torrents: HashMap::new(),
            interval,
        }
    }

    /// Records an announce and answers it. `Err` carries a failure reason for the client.
    pub fn announce(&mut self, a: &Announce, now: Instant) -> Result<AnnounceAnswer, &'static str> {
        if !self.torrents.contains_key(&a.info_hash) && self.torrents.len() >= MAX_TORRENTS {
            return Err("tracker is full: too many torrents");
        }
        let expiry = self.interval * 2;
        let torrent = self.torrents.entry(a.info_hash).or_default();
        torrent
            .peers
            .retain(|_, p| now.duration_since(p.last_announce) < expiry);
        match a.event {
            Event::Stopped => {
                torrent.peers.remove(&a.addr);
            }
            _ if !torrent.peers.contains_key(&a.addr)
                && torrent.peers.len() >= MAX_PEERS_PER_TORRENT =>
            {
                return Err("tracker is full: too many peers in this swarm");
            }
            _ => {
                let announces = torrent.peers.get(&a.addr).map_or(0, |p| p.announces);
                let peer = SwarmPeer {
                    peer_id: a.peer_id,
                    addr: a.addr,
                    left: a.left,
                    uploaded: a.uploaded,
                    downloaded: a.downloaded,
                    last_announce: now,
                    announces: announces + 1,
                };
                torrent.peers.insert(a.addr, peer);
                torrent.completed += u32::from(a.event == Event::Completed);
            }
        }
        let mut others: Vec<SwarmPeer> = torrent
            .peers
            .values()
            .filter(|p| p.addr != a.addr)
            .cloned()
            .collect();
        fastrand::shuffle(&mut others);
        others.truncate(a.numwant);
        let (seeders, leechers) = counts(torrent);
        Ok(AnnounceAnswer {
            peers: others,
            seeders,
            leechers,
        })
    }

    /// Swarm statistics of one torrent (zeros if unknown).
    pub fn scrape(&mut self, info_hash: &InfoHash, now: Instant) -> ScrapeStats {
        let expiry = self.interval * 2;
        let Some(torrent) = self.torrents.get_mut(info_hash) else {
            return ScrapeStats::default();
        };
        torrent
            .peers
            .retain(|_, p| now.duration_since(p.last_announce) < expiry);
        let (seeders, leechers) = counts(torrent);
        ScrapeStats {
            seeders,
            completed: torrent.completed,
            leechers,
        }
    }

    /// A snapshot of one swarm, for tests and the demo.
    pub fn peers(&self, info_hash: &InfoHash) -> Vec<SwarmPeer> {
        self.torrents
            .get(info_hash)
            .map(|t| t.peers.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn counts(torrent: &Torrent) -> (u32, u32) {
    let seeders = torrent.peers.values().filter(|p| p.left == 0).count() as u32;
    (seeders, torrent.peers.len() as u32 - seeders)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce(port: u16, left: u64, event: Event) -> Announce {
        Announce {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId::generate(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            uploaded: 0,
            downloaded: 0,
            left,
            event,
            numwant: 50,
        }
    }

    #[test]
    fn peers_see_each_other_but_not_themselves() {
        let mut swarms = Swarms::new(Duration::from_secs(60));
        let now = Instant::now();
        assert!(
            swarms
                .announce(&announce(1, 0, Event::Started), now)
                .unwrap()
                .peers
                .is_empty()
        );
        let answer = swarms
            .announce(&announce(2, 10, Event::Started), now)
            .unwrap();
        assert_eq!(answer.peers.len(), 1);
        assert_eq!(answer.peers[0].addr.port(), 1);
        assert_eq!((answer.seeders, answer.leechers), (1, 1));
    }

    #[test]
    fn reannouncing_updates_and_stopped_removes() {
        let mut swarms = Swarms::new(Duration::from_secs(60));
        let now = Instant::now();
        swarms
            .announce(&announce(1, 10, Event::Started), now)
            .unwrap();
        swarms
            .announce(&announce(1, 0, Event::Completed), now)
            .unwrap();
        let peers = swarms.peers(&InfoHash([1; 20]));
        assert_eq!((peers.len(), peers[0].announces, peers[0].left), (1, 2, 0));
        assert_eq!(
            swarms.scrape(&InfoHash([1; 20]), now),
            ScrapeStats {
                seeders: 1,
                completed: 1,
                leechers: 0
            }
        );
        swarms
            .announce(&announce(1, 0, Event::Stopped), now)
            .unwrap();
        assert!(swarms.peers(&InfoHash([1; 20])).is_empty());
    }

    #[test]
    fn peers_that_miss_two_intervals_expire() {
        let mut swarms = Swarms::new(Duration::from_secs(60));
        let start = Instant::now();
        swarms
            .announce(&announce(1, 10, Event::Started), start)
            .unwrap();
        let later = start + Duration::from_secs(119);
        assert_eq!(
            swarms
                .announce(&announce(2, 10, Event::Started), later)
                .unwrap()
                .peers
                .len(),
            1
        );
        let much_later = start + Duration::from_secs(121);
        let answer = swarms
            .announce(&announce(2, 10, Event::None), much_later)
            .unwrap();
        assert!(answer.peers.is_empty(), "peer 1 should have expired");
    }

    #[test]
    fn numwant_limits_the_answer() {
        let mut swarms = Swarms::new(Duration::from_secs(60));
        let now = Instant::now();
        for port in 1..=30 {
            swarms
                .announce(&announce(port, 1, Event::Started), now)
                .unwrap();
        }
        let mut a = announce(99, 1, Event::Started);
        a.numwant = 5;
        assert_eq!(swarms.announce(&a, now).unwrap().peers.len(), 5);
    }
}
