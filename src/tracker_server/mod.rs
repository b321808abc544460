//! peerwire's own tracker, for classroom swarms: HTTP (BEP 3, 23, 7) and UDP (BEP 15) —
//! walkthrough §3.
//!
//! Two named threads share one in-memory [`Swarms`] behind a mutex:
//!
//! ```text
//!   tracker-http: GET /announce?info_hash=..  ─┐                ┌─ bencoded answer
//!                 GET /scrape?info_hash=..     ├─► Swarms ──────┤
//!   tracker-udp:  connect / announce / scrape ─┘  (one mutex)   └─ BEP 15 reply
//! ```
//!
//! The tracker's life is short to tell:
//!
//! ```text
//!   start: bind HTTP, bind UDP ──► spawn tracker-http, tracker-udp ──► serving ...
//!   stop:  set `stop`, unblock tiny_http ──► each thread ends after its current request ──► joined
//! ```
//!
//! The rooms:
//! - this file: starting and stopping ([`RunningTracker`]), what both threads share, and the
//!   UDP connection ids (they are made from the tracker's secret, which lives here);
//! - `http.rs`: `GET /announce` and `GET /scrape`; every query is checked by
//!   `announce_from_query` before anything in it is believed;
//! - `udp.rs`: the BEP 15 exchange, with the packets of [`crate::tracker::udp_packet`];
//! - [`registry`]: who is in which swarm, and when a silent peer is forgotten.
//!
//! Any torrent is accepted (no whitelist: this is for local swarms). Everything a client sends
//! is checked; a malformed request gets a `failure reason` (HTTP) or an error packet (UDP),
//! is counted in [`ServerStats::bad_requests`], and the tracker keeps serving everyone else.
//!
//! UDP connection ids are checked without remembering clients: an id is a keyed hash of the
//! client's address and the current minute, so the tracker can recompute it when the client
//! comes back, and a spoofed source address never gets a valid one. (The road not taken: a
//! table of ids handed out, which a flood of connect packets could grow without limit.)

mod http;
pub mod registry;
mod udp;

pub use registry::SwarmPeer;

use crate::metainfo::InfoHash;
use crate::tracker::ScrapeStats;
use registry::{Announce, AnnounceAnswer, Swarms};
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Peers per answer unless the client asks for fewer (`numwant`), and the most it may ask for.
const DEFAULT_NUMWANT: usize = 50;
const MAX_NUMWANT: usize = 200;

/// Where to listen and how often clients should come back.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTP address (`None`: no HTTP). Port 0 picks a free port.
    pub http: Option<SocketAddr>,
    /// UDP address (`None`: no UDP). Port 0 picks a free port.
    pub udp: Option<SocketAddr>,
    /// The `interval` clients are told; peers silent for two intervals are forgotten.
    pub interval: Duration,
}

impl Default for ServerConfig {
    /// Port 6969 on every address, HTTP and UDP; a 60 s interval, because a classroom swarm
    /// wants to see newcomers quickly (public trackers say 30 minutes).
    fn default() -> ServerConfig {
        let any = SocketAddr::from(([0, 0, 0, 0], 6969));
        ServerConfig {
            http: Some(any),
            udp: Some(any),
            interval: Duration::from_secs(60),
        }
    }
}

/// Counters, for tests and the demo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Announces answered with peers over HTTP.
    pub announces_http: u64,
    /// Announces answered with peers over UDP.
    pub announces_udp: u64,
    /// Scrapes answered, over either transport.
    pub scrapes: u64,
    /// Requests refused: malformed, unknown path, forged or stale connection id, garbage.
    pub bad_requests: u64,
}

/// The tracker could not start: which side, on which address, and why.
#[derive(Debug, Error)]
#[error("cannot listen for {what} on {addr}: {reason}")]
pub struct ServerError {
    /// `"HTTP"` or `"UDP"`.
    pub what: &'static str,
    pub addr: SocketAddr,
    pub reason: String,
}

/// One of the [`ServerStats`] counters.
#[derive(Debug, Clone, Copy)]
enum Counter {
    HttpAnnounce,
    UdpAnnounce,
    Scrape,
    BadRequest,
}

/// Called with every announce the tracker accepts (see [`RunningTracker::watch`]).
type Watcher = Box<dyn Fn(&Announce) + Send>;

/// What both threads share.
struct Shared {
    /// [W3.7] Every swarm, one mutex: the HTTP and the UDP thread serve the same peers.
    swarms: Mutex<Swarms>,
    stats: Mutex<ServerStats>,
    /// Who wants to see each announce as it arrives.
    watchers: Mutex<Vec<Watcher>>,
    /// The `interval` told to clients.
    interval: Duration,
    /// Key of the connection-id hash, random per start: ids from an earlier run are invalid.
    secret: RandomState,
    /// Set by [`RunningTracker::stop`]; the UDP thread looks at it between datagrams.
    stop: AtomicBool,
}

impl Shared {
    fn new(interval: Duration) -> Shared {
        Shared {
            swarms: Mutex::new(Swarms::new(interval)),
            stats: Mutex::new(ServerStats::default()),
            watchers: Mutex::new(Vec::new()),
            interval,
            secret: RandomState::new(),
            stop: AtomicBool::new(false),
        }
    }

    fn swarms(&self) -> MutexGuard<'_, Swarms> {
        lock(&self.swarms)
    }

    /// Records an announce (HTTP or UDP alike) and answers it. The watchers see it once it is
    /// recorded and before it is answered: when a client has its answer, every watcher has
    /// seen what it said, and a scrape counts it.
    fn announce(&self, announce: &Announce) -> Result<AnnounceAnswer, &'static str> {
        let answer = self.swarms().announce(announce, Instant::now());
        lock(&self.watchers)
            .iter()
            .for_each(|watch| watch(announce));
        answer
    }

    fn count(&self, counter: Counter) {
        let mut stats = lock(&self.stats);
        let field = match counter {
            Counter::HttpAnnounce => &mut stats.announces_http,
            Counter::UdpAnnounce => &mut stats.announces_udp,
            Counter::Scrape => &mut stats.scrapes,
            Counter::BadRequest => &mut stats.bad_requests,
        };
        *field += 1;
    }
}

/// A tracker that is running; dropping it does not stop it, [`RunningTracker::stop`] does.
pub struct RunningTracker {
    shared: Arc<Shared>,
    http: Option<http::HttpThread>,
    udp: Option<udp::UdpThread>,
}

impl RunningTracker {
    /// Binds the sockets (port 0: any free port) and starts the `tracker-http` and
    /// `tracker-udp` threads.
    pub fn start(config: ServerConfig) -> Result<RunningTracker, ServerError> {
        let shared = Arc::new(Shared::new(config.interval));
        let http = config
            .http
            .map(|addr| http::start(addr, &shared))
            .transpose()?;
        let udp = match config.udp.map(|addr| udp::start(addr, &shared)).transpose() {
            Ok(udp) => udp,
            Err(e) => {
                // Do not leave the HTTP thread serving behind a failed start.
                RunningTracker {
                    shared,
                    http,
                    udp: None,
                }
                .stop();
                return Err(e);
            }
        };
        let tracker = RunningTracker { shared, http, udp };
        log::info!(
            "tracker started: {} and {}, interval {:?}",
            tracker.announce_url().as_deref().unwrap_or("no HTTP"),
            tracker.udp_announce_url().as_deref().unwrap_or("no UDP"),
            config.interval
        );
        Ok(tracker)
    }

    /// The bound HTTP address (the real port when 0 was asked).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.addr)
    }

    /// The bound UDP address (the real port when 0 was asked).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(|u| u.addr)
    }

    /// `http://<http_addr>/announce`, for a torrent's `announce`.
    pub fn announce_url(&self) -> Option<String> {
        self.http_addr().map(|a| format!("http://{a}/announce"))
    }

    /// `udp://<udp_addr>/announce`.
    pub fn udp_announce_url(&self) -> Option<String> {
        self.udp_addr().map(|a| format!("udp://{a}/announce"))
    }

    /// The peers of one swarm right now (a snapshot, for tests and the demo).
    pub fn peers(&self, info_hash: InfoHash) -> Vec<SwarmPeer> {
        self.shared.swarms().peers(&info_hash)
    }

    /// Seeders, leechers and completed downloads of one swarm right now: what a scrape
    /// answers, without the network.
    pub fn scrape(&self, info_hash: InfoHash) -> ScrapeStats {
        self.shared.swarms().scrape(&info_hash, Instant::now())
    }

    /// Calls `watch` with every announce the tracker receives (checked, before it is
    /// answered), on the tracker's own threads: what each client tells the tracker, for tests
    /// and for a class to look at. A slow `watch` holds up that answer.
    pub fn watch(&self, watch: impl Fn(&Announce) + Send + 'static) {
        lock(&self.shared.watchers).push(Box::new(watch));
    }

    pub fn stats(&self) -> ServerStats {
        *lock(&self.shared.stats)
    }

    /// Stops both threads and waits for them: at most one request plus the UDP read timeout.
    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(http) = self.http {
            http.server.unblock(); // `recv()` returns an error, and the loop ends
            // `Err` only if the thread panicked (its message is already printed): stopping
            // goes on.
            let _ = http.thread.join();
        }
        if let Some(udp) = self.udp {
            let _ = udp.thread.join(); // it looks at `stop` at least every read timeout
        }
        log::info!("tracker stopped");
    }

    /// Blocks until the threads end (the `tracker` command runs until killed).
    pub fn wait(self) {
        // `Err` only if a thread panicked (its message is already printed): the tracker has
        // ended either way, and the command with it.
        if let Some(http) = self.http {
            let _ = http.thread.join();
        }
        if let Some(udp) = self.udp {
            let _ = udp.thread.join();
        }
    }
}

/// A poisoned lock only means another request panicked mid-update; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many peers to answer with: what the client asked (`numwant`), capped; by default 50.
fn numwant(asked: Option<u64>) -> usize {
    match asked {
        Some(n) if n > 0 => usize::try_from(n).map_or(MAX_NUMWANT, |n| n.min(MAX_NUMWANT)),
        _ => DEFAULT_NUMWANT,
    }
}

// ------------------------------------------------------------ UDP connection ids (BEP 15)

/// The current minute since the epoch: connection ids change every minute.
fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

/// The id handed to `from` in the given minute: a keyed hash, so only this tracker can make it.
fn connection_id(shared: &Shared, from: SocketAddr, minute: u64) -> u64 {
    shared.secret.hash_one((from, minute))
}

/// Valid if made for this address this minute or the last (so at least 60 s of use).
fn valid_connection(shared: &Shared, from: SocketAddr, id: u64, now: u64) -> bool {
    id == connection_id(shared, from, now)
        || id == connection_id(shared, from, now.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_last_this_minute_and_the_next() {
        let shared = Shared::new(Duration::from_secs(60));
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let id = connection_id(&shared, client, 1000);
        assert!(valid_connection(&shared, client, id, 1000));
        assert!(
            valid_connection(&shared, client, id, 1001),
            "a minute later"
        );
        assert!(
            !valid_connection(&shared, client, id, 1002),
            "two minutes later"
        );
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        assert!(
            !valid_connection(&shared, other, id, 1000),
            "another address"
        );
        let restarted = Shared::new(Duration::from_secs(60));
        assert!(
            !valid_connection(&restarted, client, id, 1000),
            "another start"
        );
    }

    #[test]
    fn numwant_defaults_and_caps() {
        assert_eq!(numwant(None), 50);
        assert_eq!(numwant(Some(0)), 50);
        assert_eq!(numwant(Some(7)), 7);
        assert_eq!(numwant(Some(u64::MAX)), 200);
    }

    #[test]
    fn counters_count() {
        let shared = Shared::new(Duration::from_secs(60));
        shared.count(Counter::HttpAnnounce);
        shared.count(Counter::BadRequest);
        shared.count(Counter::BadRequest);
        let stats = *lock(&shared.stats);
        assert_eq!((stats.announces_http, stats.bad_requests), (1, 2));
    }

    #[test]
    fn the_default_listens_on_6969_with_a_one_minute_interval() {
        let config = ServerConfig::default();
        assert_eq!(config.http, Some("0.0.0.0:6969".parse().unwrap()));
        assert_eq!(config.udp, config.http);
        assert_eq!(config.interval, Duration::from_secs(60));
    }
}
