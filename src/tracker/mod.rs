//! # Trackers: finding peers (BEP 3, 7, 12, 15, 23) — walkthrough §3
//!
//! A client knows a torrent's info hash but not who has it. It asks a *tracker*: "I am
//! `peer_id`, listening on `port`, I have `left` bytes to go on torrent `info_hash`; who else
//! is there?" The tracker remembers the announcer and answers with other peers' addresses and
//! an `interval` after which to ask again.
//!
//! ```text
//!   client ── announce(info_hash, peer_id, port, uploaded, downloaded, left, event) ──► tracker
//!   client ◄── interval, peers [ip:port, ...] ───────────────────────────────────────── tracker
//! ```
//!
//! Two transports speak this: HTTP (BEP 3: a GET with the fields in the query string, a
//! bencoded answer; [`http`]) and UDP (BEP 15: a connect exchange, then binary announce
//! packets; [`udp`]). [`tiers`] walks a torrent's trackers in BEP 12 order; [`announcer`] is
//! the thread that re-announces on the tracker's interval. [`peers`] decodes and encodes the
//! peer lists. peerwire's own small tracker, for classroom swarms, is [`crate::tracker_server`].
//!
//! Where this sits in the data flow: `metainfo` gives the tracker URLs and the info hash; the
//! peers found here are handed to the peer threads (later chapters).

pub mod announcer;
pub mod http;
pub mod peers;
pub mod tiers;
pub mod udp;
pub mod udp_packet;

use crate::bencode::DecodeError;
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use peers::PeerListError;
use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;

/// Why we are announcing (BEP 3 `event`). Regular re-announces carry none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    None,
    /// The first announce of a download.
    Started,
    /// The download has just finished (sent once).
    Completed,
    /// We are leaving the swarm.
    Stopped,
}

impl Event {
    /// The `event=` value of an HTTP announce; `None` means the parameter is left out.
    pub fn http_name(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Started => Some("started"),
            Event::Completed => Some("completed"),
            Event::Stopped => Some("stopped"),
        }
    }

    /// The event number of a UDP announce (BEP 15).
    pub fn udp_code(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }
}

/// Everything an announce tells the tracker.
#[derive(Debug, Clone)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// The TCP port we accept peer connections on.
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Bytes still to download (0 for a seeder). Honest numbers: trackers and peers rely on them.
    pub left: u64,
    pub event: Event,
    /// How many peers we would like; `None` lets the tracker decide.
    pub numwant: Option<u32>,
    /// A random number that identifies us across IP changes (BEP 7 `key`).
    pub key: u32,
}

impl AnnounceRequest {
    /// A first announce (`started`) with nothing transferred yet, asking for 50 peers.
    pub fn started(info_hash: InfoHash, peer_id: PeerId, port: u16, left: u64) -> AnnounceRequest {
        AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event: Event::Started,
            numwant: Some(50),
            key: fastrand::u32(..),
        }
    }
}

/// What a tracker answered.
#[derive(Debug, Clone, Default)]
pub struct AnnounceResponse {
    /// Other peers, our own address removed.
    pub peers: Vec<SocketAddr>,
    /// Ask again after this long.
    pub interval: Duration,
    /// Never ask again sooner than this (HTTP only).
    pub min_interval: Option<Duration>,
    /// Seeders and leechers in the swarm, when the tracker says.
    pub complete: Option<u32>,
    pub incomplete: Option<u32>,
    /// A `warning message`: the announce worked, but the tracker has something to say.
    pub warning: Option<String>,
}

/// Swarm statistics for one torrent (a scrape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    pub seeders: u32,
    pub completed: u32,
    pub leechers: u32,
}

/// Timeouts and caps for talking to trackers.
#[derive(Debug, Clone, Copy)]
pub struct TrackerConfig {
    /// Whole-request deadline for an HTTP announce (connect, send, receive).
    pub http_timeout: Duration,
    /// Largest HTTP answer we read; a bigger one is an error, not an allocation.
    pub max_body: u64,
    pub max_redirects: u32,
    /// BEP 15: wait `udp_base_timeout × 2^n` before the n-th retransmission...
    pub udp_base_timeout: Duration,
    /// ...and give up after this many retransmissions (BEP 15 says 8; one-shot commands use fewer).
    pub udp_retries: u32,
}

impl Default for TrackerConfig {
    fn default() -> TrackerConfig {
        TrackerConfig {
            http_timeout: Duration::from_secs(20),
            max_body: 2 * 1024 * 1024,
            max_redirects: 5,
            udp_base_timeout: Duration::from_secs(15),
            udp_retries: 8,
        }
    }
}

/// A tracker that failed, and how.
#[derive(Debug, Error)]
#[error("tracker {url}: {problem}")]
pub struct TrackerError {
    pub url: String,
    pub problem: Problem,
}

/// What went wrong with a tracker.
#[derive(Debug, Error)]
pub enum Problem {
    #[error("not a usable tracker URL: {0}")]
    BadUrl(String),
    #[error("unsupported scheme (peerwire speaks http, https and udp trackers)")]
    UnsupportedScheme,
    #[error("HTTP request failed: {0}")]
    Http(#[from] ureq::Error),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("the answer is not bencoded: {0}")]
    Bencode(#[from] DecodeError),
    #[error("the answer is {0}, expected a dictionary")]
    NotADictionary(&'static str),
    #[error("the tracker refused: {0}")]
    Failure(String),
    #[error("bad peer list: {0}")]
    PeerList(#[from] PeerListError),
    #[error("cannot resolve host {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    #[error("no valid answer after {attempts} tries over {waited:?}{}", last_invalid.as_ref().map(|r| format!(" (ignored: {r})")).unwrap_or_default())]
    NoAnswer {
        attempts: u32,
        waited: Duration,
        last_invalid: Option<String>,
    },
    #[error("the answer is malformed: {0}")]
    Malformed(String),
}

impl TrackerError {
    pub fn new(url: &str, problem: impl Into<Problem>) -> TrackerError {
        TrackerError {
            url: url.to_string(),
            problem: problem.into(),
        }
    }
}

/// One tracker, HTTP or UDP, with what it must remember between announces.
pub enum Tracker {
    Http(http::HttpTracker),
    Udp(udp::UdpTracker),
}

impl Tracker {
    /// Picks the transport from the URL's scheme. UDP trackers are resolved here.
    pub fn new(url: &str, config: TrackerConfig) -> Result<Tracker, TrackerError> {
        let scheme = url
            .split("://")
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match scheme.as_str() {
            "http" | "https" => Ok(Tracker::Http(http::HttpTracker::new(url, config))),
            "udp" => udp::UdpTracker::new(url, config)
                .map(Tracker::Udp)
                .map_err(|p| TrackerError::new(url, p)),
            _ => Err(TrackerError::new(url, Problem::UnsupportedScheme)),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Tracker::Http(t) => t.url(),
            Tracker::Udp(t) => t.url(),
        }
    }

    /// Announces, and removes our own address from the answer.
    pub fn announce(
        &mut self,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let result = match self {
            Tracker::Http(t) => t.announce(request),
            Tracker::Udp(t) => t.announce(request),
        };
        let mut response = result.map_err(|p| TrackerError::new(self.url(), p))?;
        response
            .peers
            .retain(|peer| !is_ourselves(peer, request.port));
        Ok(response)
    }

    /// Asks for swarm statistics of one torrent.
    pub fn scrape(&mut self, info_hash: InfoHash) -> Result<ScrapeStats, TrackerError> {
        let result = match self {
            Tracker::Http(t) => t.scrape(info_hash),
            Tracker::Udp(t) => t.scrape(info_hash),
        };
        result.map_err(|p| TrackerError::new(self.url(), p))
    }
}

/// Trackers list the announcer among the peers (opentracker does), and PEX messages can too.
/// We cannot know our public address, but a loopback or unspecified address with our own port
/// is certainly us.
pub(crate) fn is_ourselves(peer: &SocketAddr, our_port: u16) -> bool {
    peer.port() == our_port && (peer.ip().is_loopback() || peer.ip().is_unspecified())
}
