//! peerwire's own tracker, for classroom swarms: HTTP (BEP 3, 23, 7) and UDP (BEP 15) —
//! walkthrough §3.
//!
//! Two named threads share one in-memory [`Swarms`] behind a mutex: [W3.5]
//!
//! ```text
//!   tracker-http: GET /announce?info_hash=..  ─┐                ┌─ bencoded answer
//!                 GET /scrape?info_hash=..     ├─► Swarms ──────┤
//!   tracker-udp:  connect / announce / scrape ─┘  (one mutex)   └─ BEP 15 reply
//! ```
//!
//! Any torrent is accepted (no whitelist: this is for local swarms). Everything a client sends
//! is checked; a malformed request gets a `failure reason` (HTTP) or an error packet (UDP),
//! is counted in [`ServerStats::bad_requests`], and the tracker keeps serving everyone else.
//!
//! UDP connection ids are checked without remembering clients: an id is a keyed hash of the
//! client's address and the current minute, so the tracker can recompute it when the client
//! comes back, and a spoofed source address never gets a valid one.

use super::peers::{encode_compact_v4, encode_compact_v6};
use super::swarm::{Announce, AnnounceAnswer, SwarmPeer, Swarms};
use super::udp_packet::{AnnouncePacket, Request, Response};
use super::{Event, ScrapeStats};
use crate::bencode::{self, Value};
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use std::hash::{BuildHasher, RandomState};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Longest request URL served; longer ones get HTTP 414.
const MAX_URL_LEN: usize = 8 * 1024;
/// Peers per answer unless the client asks for fewer (`numwant`), and the most it may ask for.
const DEFAULT_NUMWANT: usize = 50;
const MAX_NUMWANT: usize = 200;

/// Where to listen and how often clients should come back.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// HTTP address (`None`: no HTTP). Port 0 picks a free port.
    pub http: Option<SocketAddr>,
    /// UDP address (`None`: no UDP).
    pub udp: Option<SocketAddr>,
    /// The `interval` clients are told; peers silent for two intervals are forgotten.
    pub interval: Duration,
}

impl Default for ServerConfig {
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
    pub announces_http: u64,
    pub announces_udp: u64,
    pub scrapes: u64,
    pub bad_requests: u64,
}

#[derive(Debug, Error)]
#[error("cannot listen for {what} on {addr}: {reason}")]
pub struct ServerError {
    pub what: &'static str,
    pub addr: SocketAddr,
    pub reason: String,
}

/// What both threads share.
struct Shared {
    swarms: Mutex<Swarms>,
    stats: Mutex<ServerStats>,
    interval: Duration,
    /// Key of the connection-id hash, random per start.
    secret: RandomState,
    stop: AtomicBool,
}

/// A tracker that is running; dropping it does not stop it, [`RunningTracker::stop`] does.
pub struct RunningTracker {
    shared: Arc<Shared>,
    http: Option<(SocketAddr, Arc<tiny_http::Server>, JoinHandle<()>)>,
    udp: Option<(SocketAddr, JoinHandle<()>)>,
}

impl RunningTracker {
    /// Binds the sockets and starts the `tracker-http` and `tracker-udp` threads.
    pub fn start(config: ServerConfig) -> Result<RunningTracker, ServerError> {
        let shared = Arc::new(Shared {
            swarms: Mutex::new(Swarms::new(config.interval)),
            stats: Mutex::new(ServerStats::default()),
            interval: config.interval,
            secret: RandomState::new(),
            stop: AtomicBool::new(false),
        });
        let http = config
            .http
            .map(|addr| start_http(addr, &shared))
            .transpose()?;
        let udp = config
            .udp
            .map(|addr| start_udp(addr, &shared))
            .transpose()?;
        let tracker = RunningTracker { shared, http, udp };
        log::info!(
            "tracker listening: {:?} {:?}",
            tracker.announce_url(),
            tracker.udp_announce_url()
        );
        Ok(tracker)
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(addr, _, _)| *addr)
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(|(addr, _)| *addr)
    }

    pub fn announce_url(&self) -> Option<String> {
        self.http_addr().map(|a| format!("http://{a}/announce"))
    }

    pub fn udp_announce_url(&self) -> Option<String> {
        self.udp_addr().map(|a| format!("udp://{a}/announce"))
    }

    /// The peers of one swarm right now.
    pub fn peers(&self, info_hash: InfoHash) -> Vec<SwarmPeer> {
        lock(&self.shared.swarms).peers(&info_hash)
    }

    pub fn stats(&self) -> ServerStats {
        *lock(&self.shared.stats)
    }

    /// Stops both threads and waits for them.
    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some((_, server, thread)) = self.http {
            server.unblock();
            let _ = thread.join();
        }
        if let Some((_, thread)) = self.udp {
            let _ = thread.join(); // it checks `stop` at least every 200 ms
        }
        log::info!("tracker stopped");
    }

    /// Blocks until the threads end (the `tracker` command runs until killed).
    pub fn wait(self) {
        if let Some((_, _, thread)) = self.http {
            let _ = thread.join();
        }
        if let Some((_, thread)) = self.udp {
            let _ = thread.join();
        }
    }
}

/// A poisoned lock only means another request panicked mid-update; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn count(shared: &Shared, field: fn(&mut ServerStats) -> &mut u64) {
    *field(&mut lock(&shared.stats)) += 1;
}

fn start_http(
    addr: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<(SocketAddr, Arc<tiny_http::Server>, JoinHandle<()>), ServerError> {
    let error = |reason: String| ServerError {
        what: "HTTP",
        addr,
        reason,
    };
    let server = Arc::new(tiny_http::Server::http(addr).map_err(|e| error(e.to_string()))?);
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| error("not an IP address".into()))?;
    let (server2, shared) = (Arc::clone(&server), Arc::clone(shared));
    let thread = std::thread::Builder::new()
        .name("tracker-http".into())
        .spawn(move || {
            while let Ok(request) = server2.recv() {
                serve_http(request, &shared);
            }
        })
        .map_err(|e| error(e.to_string()))?;
    Ok((bound, server, thread))
}

fn start_udp(
    addr: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<(SocketAddr, JoinHandle<()>), ServerError> {
    let error = |e: std::io::Error| ServerError {
        what: "UDP",
        addr,
        reason: e.to_string(),
    };
    let socket = UdpSocket::bind(addr).map_err(error)?;
    let bound = socket.local_addr().map_err(error)?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(error)?;
    let shared = Arc::clone(shared);
    let thread = std::thread::Builder::new()
        .name("tracker-udp".into())
        .spawn(move || serve_udp(socket, &shared))
        .map_err(error)?;
    Ok((bound, thread))
}

// ---------------------------------------------------------------- HTTP

/// Answers one HTTP request. Every request gets an answer; none can stop the thread.
fn serve_http(request: tiny_http::Request, shared: &Shared) {
    let url = request.url().to_string();
    let remote = request.remote_addr().copied();
    let (status, body) = if url.len() > MAX_URL_LEN {
        count(shared, |s| &mut s.bad_requests);
        (414, b"request URL too long".to_vec())
    } else {
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        match (path, remote) {
            ("/announce", Some(remote)) => (200, http_announce(query, remote, shared)),
            ("/scrape", _) => (200, http_scrape(query, shared)),
            _ => {
                count(shared, |s| &mut s.bad_requests);
                (
                    404,
                    b"not found: this tracker serves /announce and /scrape".to_vec(),
                )
            }
        }
    };
    let response = tiny_http::Response::from_data(body).with_status_code(status);
    if let Err(e) = request.respond(response) {
        log::debug!("tracker: answering {remote:?}: {e}");
    }
}

/// `/announce`: the bencoded answer, or a `failure reason`.
fn http_announce(query: &str, remote: SocketAddr, shared: &Shared) -> Vec<u8> {
    let params = parse_query(query);
    let announce = match announce_from_query(&params, remote) {
        Ok(announce) => announce,
        Err(reason) => {
            count(shared, |s| &mut s.bad_requests);
            log::debug!("tracker: bad announce from {remote}: {reason}");
            return failure(&reason);
        }
    };
    count(shared, |s| &mut s.announces_http);
    let answer = match lock(&shared.swarms).announce(&announce, Instant::now()) {
        Ok(answer) => answer,
        Err(reason) => return failure(reason),
    };
    let compact = param(&params, "compact").is_none_or(|v| v != b"0");
    bencode::encode(&announce_body(&answer, shared.interval, compact))
}

/// The fields of an announce query, checked.
fn announce_from_query(
    params: &[(String, Vec<u8>)],
    remote: SocketAddr,
) -> Result<Announce, String> {
    let twenty = |name: &str| -> Result<[u8; 20], String> {
        let value = param(params, name).ok_or(format!("missing {name}"))?;
        value
            .try_into()
            .map_err(|_| format!("{name} is {} bytes, not 20", value.len()))
    };
    let number = |name: &str| -> Result<u64, String> {
        match param(params, name) {
            None => Ok(0),
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(format!("{name} is not a number")),
        }
    };
    let port = number("port")?;
    if !(1..=65535).contains(&port) {
        return Err("port must be 1 to 65535".into());
    }
    let event = match param(params, "event") {
        None | Some(b"") | Some(b"empty") => Event::None,
        Some(b"started") => Event::Started,
        Some(b"completed") => Event::Completed,
        Some(b"stopped") => Event::Stopped,
        Some(_) => return Err("unknown event".into()),
    };
    Ok(Announce {
        info_hash: InfoHash(twenty("info_hash")?),
        peer_id: PeerId(twenty("peer_id")?),
        addr: SocketAddr::new(remote.ip().to_canonical(), port as u16),
        uploaded: number("uploaded")?,
        downloaded: number("downloaded")?,
        left: number("left")?,
        event,
        numwant: numwant(number("numwant").ok().filter(|&n| n > 0)),
    })
}

fn numwant(asked: Option<u64>) -> usize {
    asked.map_or(DEFAULT_NUMWANT, |n| (n as usize).min(MAX_NUMWANT))
}

/// `d8:intervali..e12:min intervali..e8:completei..e10:incompletei..e5:peers..6:peers6..e`
fn announce_body(answer: &AnnounceAnswer, interval: Duration, compact: bool) -> Value {
    let addrs: Vec<SocketAddr> = answer.peers.iter().map(|p| p.addr).collect();
    let peers = if compact {
        Value::bytes(encode_compact_v4(&addrs))
    } else {
        let entry = |p: &SwarmPeer| {
            Value::dict(vec![
                ("peer id", Value::bytes(p.peer_id.0.to_vec())),
                ("ip", Value::bytes(p.addr.ip().to_string())),
                ("port", Value::integer(p.addr.port().into())),
            ])
        };
        Value::list(answer.peers.iter().map(entry).collect())
    };
    let mut fields = vec![
        ("interval", Value::integer(interval.as_secs() as i64)),
        (
            "min interval",
            Value::integer((interval.as_secs() / 2) as i64),
        ),
        ("complete", Value::integer(answer.seeders.into())),
        ("incomplete", Value::integer(answer.leechers.into())),
        ("peers", peers),
    ];
    let v6 = encode_compact_v6(&addrs);
    if compact && !v6.is_empty() {
        fields.push(("peers6", Value::bytes(v6)));
    }
    Value::dict(fields)
}

/// `/scrape?info_hash=..&info_hash=..`: `d5:filesd20:<hash>d8:completei..e..eee`
fn http_scrape(query: &str, shared: &Shared) -> Vec<u8> {
    count(shared, |s| &mut s.scrapes);
    let params = parse_query(query);
    let now = Instant::now();
    let mut files = Vec::new();
    for (_, value) in params
        .iter()
        .filter(|(k, _)| k == "info_hash")
        .take(MAX_NUMWANT)
    {
        let Ok(hash) = <[u8; 20]>::try_from(&value[..]) else {
            return failure("info_hash must be 20 bytes");
        };
        let stats = lock(&shared.swarms).scrape(&InfoHash(hash), now);
        let entry = Value::dict(vec![
            ("complete", Value::integer(stats.seeders.into())),
            ("downloaded", Value::integer(stats.completed.into())),
            ("incomplete", Value::integer(stats.leechers.into())),
        ]);
        files.push((hash.to_vec(), entry));
    }
    let files = Value::new(bencode::Item::Dict(files));
    bencode::encode(&Value::dict(vec![("files", files)]))
}

fn failure(reason: &str) -> Vec<u8> {
    bencode::encode(&Value::dict(vec![("failure reason", Value::bytes(reason))]))
}

/// Splits a query string into (name, raw value bytes) pairs, undoing `%XX` escapes. Values are
/// bytes, not text: `info_hash` is binary.
pub fn parse_query(query: &str) -> Vec<(String, Vec<u8>)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                String::from_utf8_lossy(&percent_decode(name)).into_owned(),
                percent_decode(value),
            )
        })
        .collect()
}

/// `%XX` → the byte; a `%` not followed by two hex digits is kept as it is.
pub fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn param<'a>(params: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| &v[..])
}

// ---------------------------------------------------------------- UDP

/// The UDP thread: one datagram in, at most one out, until `stop`.
fn serve_udp(socket: UdpSocket, shared: &Shared) {
    let mut buffer = [0u8; 2048];
    while !shared.stop.load(Ordering::Relaxed) {
        let (len, from) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                log::debug!("tracker-udp: {e}");
                continue;
            }
        };
        if let Some(reply) = udp_reply(&buffer[..len], from, shared) {
            let _ = socket.send_to(&reply.encode(), from);
        }
    }
}

/// The reply to one datagram, or `None` for garbage we cannot even answer.
fn udp_reply(packet: &[u8], from: SocketAddr, shared: &Shared) -> Option<Response> {
    let request = match Request::decode(packet) {
        Ok(request) => request,
        Err(e) => {
            count(shared, |s| &mut s.bad_requests);
            log::debug!("tracker-udp: {from}: {e}");
            let transaction_id = packet
                .get(12..16)
                .map(|t| u32::from_be_bytes(t.try_into().expect("4 bytes")))?;
            return Some(Response::Error {
                transaction_id,
                message: e.to_string(),
            });
        }
    };
    let now = minute();
    match request {
        Request::Connect { transaction_id } => Some(Response::Connect {
            transaction_id,
            connection_id: connection_id(shared, from, now),
        }),
        Request::Announce(a) if valid_connection(shared, from, a.connection_id, now) => {
            Some(udp_announce(&a, from, shared))
        }
        Request::Scrape {
            connection_id: id,
            transaction_id,
            info_hashes,
        } if valid_connection(shared, from, id, now) => {
            count(shared, |s| &mut s.scrapes);
            let mut swarms = lock(&shared.swarms);
            let stats: Vec<ScrapeStats> = info_hashes
                .iter()
                .map(|h| swarms.scrape(h, Instant::now()))
                .collect();
            Some(Response::Scrape {
                transaction_id,
                stats,
            })
        }
        Request::Announce(AnnouncePacket { transaction_id, .. })
        | Request::Scrape { transaction_id, .. } => {
            count(shared, |s| &mut s.bad_requests);
            Some(Response::Error {
                transaction_id,
                message: "unknown or expired connection id: connect again".into(),
            })
        }
    }
}

fn udp_announce(a: &AnnouncePacket, from: SocketAddr, shared: &Shared) -> Response {
    count(shared, |s| &mut s.announces_udp);
    let event = match a.event {
        1 => Event::Completed,
        2 => Event::Started,
        3 => Event::Stopped,
        _ => Event::None,
    };
    let announce = Announce {
        info_hash: a.info_hash,
        peer_id: a.peer_id,
        addr: SocketAddr::new(from.ip().to_canonical(), a.port),
        uploaded: a.uploaded,
        downloaded: a.downloaded,
        left: a.left,
        event,
        numwant: numwant(u64::try_from(a.num_want).ok().filter(|&n| n > 0)),
    };
    match lock(&shared.swarms).announce(&announce, Instant::now()) {
        Ok(answer) => {
            // Peers of the asker's address family only: the reply's entry size depends on it.
            let same_family = answer
                .peers
                .iter()
                .map(|p| p.addr)
                .filter(|p| p.is_ipv4() == from.ip().to_canonical().is_ipv4())
                .collect();
            let interval = shared.interval.as_secs() as u32;
            Response::Announce {
                transaction_id: a.transaction_id,
                interval,
                leechers: answer.leechers,
                seeders: answer.seeders,
                peers: same_family,
            }
        }
        Err(reason) => Response::Error {
            transaction_id: a.transaction_id,
            message: reason.into(),
        },
    }
}

/// The current minute since the epoch: connection ids change every minute.
fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

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
    fn percent_decoding_gives_raw_bytes() {
        assert_eq!(percent_decode("%00%ffA%2b+"), [0, 0xff, b'A', b'+', b'+']);
        assert_eq!(percent_decode("100%zz"), b"100%zz");
        assert_eq!(percent_decode("%4"), b"%4");
    }

    #[test]
    fn announce_queries_are_checked() {
        let remote: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let ok = format!(
            "info_hash={}&peer_id={}&port=6881&left=10&event=started",
            "%aa".repeat(20),
            "b".repeat(20)
        );
        let announce = announce_from_query(&parse_query(&ok), remote).unwrap();
        assert_eq!(announce.addr, "127.0.0.1:6881".parse().unwrap());
        assert_eq!(
            (announce.left, announce.event, announce.info_hash),
            (10, Event::Started, InfoHash([0xaa; 20]))
        );
        for (bad, why) in [
            (ok.replace("port=6881", "port=0"), "port"),
            (ok.replace("port=6881", "port=x"), "port"),
            (ok.replace(&"%aa".repeat(20), "%aa"), "info_hash is 1 bytes"),
            (ok.replace("&left=10", "&left=-1"), "left"),
            (ok.replace("event=started", "event=bogus"), "event"),
            (
                format!("peer_id={}&port=1", "b".repeat(20)),
                "missing info_hash",
            ),
        ] {
            let error = announce_from_query(&parse_query(&bad), remote).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn compact_and_dictionary_answers() {
        let peer = SwarmPeer {
            peer_id: PeerId([b'p'; 20]),
            addr: "10.0.0.1:80".parse().unwrap(),
            left: 0,
            uploaded: 0,
            downloaded: 0,
            last_announce: Instant::now(),
            announces: 1,
        };
        let answer = AnnounceAnswer {
            peers: vec![peer],
            seeders: 1,
            leechers: 0,
        };
        let compact = bencode::encode(&announce_body(&answer, Duration::from_secs(60), true));
        assert!(
            compact.windows(8).any(|w| w == b"5:peers6"),
            "{}",
            compact.escape_ascii()
        );
        let listed = announce_body(&answer, Duration::from_secs(60), false);
        let first = &listed.get("peers").unwrap().as_list().unwrap()[0];
        assert_eq!(first.get("ip").unwrap().as_str(), Some("10.0.0.1"));
        assert_eq!(first.get("port").unwrap().as_integer(), Some(80));
    }

    #[test]
    fn ipv6_peers_go_in_peers6() {
        let peer = |addr: &str| SwarmPeer {
            peer_id: PeerId([b'p'; 20]),
            addr: addr.parse().unwrap(),
            left: 1,
            uploaded: 0,
            downloaded: 0,
            last_announce: Instant::now(),
            announces: 1,
        };
        let answer = AnnounceAnswer {
            peers: vec![peer("10.0.0.1:80"), peer("[::1]:81")],
            seeders: 0,
            leechers: 2,
        };
        let body = announce_body(&answer, Duration::from_secs(60), true);
        let parsed = crate::tracker::http::parse_announce(&body).unwrap();
        assert_eq!(
            parsed.peers,
            ["10.0.0.1:80".parse().unwrap(), "[::1]:81".parse().unwrap()]
        );
        assert_eq!(
            body.get("peers6")
                .and_then(Value::as_bytes)
                .map(<[u8]>::len),
            Some(18)
        );
    }
}
