//! The built-in tracker's HTTP side (BEP 3 "Trackers", BEP 23 compact, BEP 7 `peers6`) —
//! walkthrough §3.
//!
//! A client announces with a GET whose query string carries the fields; the answer is a
//! bencoded dictionary:
//!
//! ```text
//!   GET /announce?info_hash=%124Vx..&peer_id=-PW0001-..&port=6881&left=0&compact=1
//!        │  split at '?', '&', '='; undo %XX into raw bytes (info_hash is binary, not text)
//!        ▼
//!   announce_from_query ──► Swarms::announce ──► d8:completei1e10:incompletei0e
//!                                                  8:intervali60e12:min intervali30e
//!                                                  5:peers6:<ip 4><port 2>e
//!   GET /scrape?info_hash=..&info_hash=..  ──► d5:filesd20:<hash>d8:completei1e
//!                                                  10:downloadedi0e10:incompletei0eeee
//!   any other path ──► 404            a URL over 8 KiB ──► 414
//! ```
//!
//! A malformed announce gets HTTP **200** with `d14:failure reason..e`, not an error status:
//! clients show a `failure reason` to their user, while a bare status reads as "tracker
//! unreachable". tiny_http reads and parses each connection on its own worker, so a slow or
//! silent client never holds up this thread; this thread only answers whole requests.

use super::{Counter, ServerError, Shared, SwarmPeer, numwant};
use crate::bencode::{self, Item, Value};
use crate::encoding::{Plus, encode_compact_v4, encode_compact_v6, percent_decode};
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::tracker::Event;
use crate::tracker::ScrapeStats;
use crate::tracker::udp_packet::MAX_SCRAPE_HASHES;
use crate::tracker_server::registry::{Announce, AnnounceAnswer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest request target served; longer ones get HTTP 414. A real announce is ~250 bytes.
const MAX_URL_LEN: usize = 8 * 1024;

/// The running HTTP side.
pub(super) struct HttpThread {
    /// Where it listens (the real port when 0 was asked).
    pub(super) addr: SocketAddr,
    /// Kept to `unblock()` the thread's `recv()` on stop.
    pub(super) server: Arc<tiny_http::Server>,
    pub(super) thread: JoinHandle<()>,
}

/// Binds `addr` and starts the `tracker-http` thread.
pub(super) fn start(addr: SocketAddr, shared: &Arc<Shared>) -> Result<HttpThread, ServerError> {
    let error = |reason: String| ServerError {
        what: "HTTP",
        addr,
        reason,
    };
    let server = tiny_http::Server::http(addr).map_err(|e| error(e.to_string()))?;
    let server = Arc::new(server);
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| error("bound to something that is not an IP address".into()))?;
    let (for_thread, shared) = (Arc::clone(&server), Arc::clone(shared));
    let thread = std::thread::Builder::new()
        .name("tracker-http".into())
        .spawn(move || {
            // `recv` fails only once `unblock()` is called (or the listener dies).
            while let Ok(request) = for_thread.recv() {
                serve(request, &shared);
            }
        })
        .map_err(|e| error(e.to_string()))?;
    Ok(HttpThread {
        addr: bound,
        server,
        thread,
    })
}

/// Answers one HTTP request. Every request gets an answer; none can stop the thread.
fn serve(request: tiny_http::Request, shared: &Shared) {
    let remote = request.remote_addr().copied();
    let (status, body) = answer(request.url(), remote, shared);
    let response = tiny_http::Response::from_data(body).with_status_code(status);
    if let Err(e) = request.respond(response) {
        log::debug!("tracker-http: answering {remote:?}: {e}");
    }
}

/// The status and body for one request target such as `/announce?...`. No I/O here, so the
/// unit tests below call it directly.
fn answer(url: &str, remote: Option<SocketAddr>, shared: &Shared) -> (u16, Vec<u8>) {
    if url.len() > MAX_URL_LEN {
        shared.count(Counter::BadRequest);
        log::debug!(
            "tracker-http: {remote:?}: URL of {} bytes refused",
            url.len()
        );
        return (414, b"request URL too long".to_vec());
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    match (path, remote) {
        ("/announce", Some(remote)) => (200, announce(query, remote, shared)),
        ("/announce", None) => {
            // Only a Unix-socket listener has no remote address; we listen on TCP.
            shared.count(Counter::BadRequest);
            (200, failure("the tracker cannot see your address"))
        }
        ("/scrape", _) => (200, scrape(query, shared)),
        _ => {
            shared.count(Counter::BadRequest);
            log::debug!("tracker-http: {remote:?}: no such path {:?}", shown(path));
            let body = b"not found: this tracker serves /announce and /scrape".to_vec();
            (404, body)
        }
    }
}

/// `/announce`: the bencoded answer, or a `failure reason`.
fn announce(query: &str, remote: SocketAddr, shared: &Shared) -> Vec<u8> {
    let params = parse_query(query);
    let announce = match announce_from_query(&params, remote) {
        Ok(announce) => announce,
        Err(reason) => {
            shared.count(Counter::BadRequest);
            log::debug!("tracker-http: {remote}: bad announce: {reason}");
            return failure(&reason);
        }
    };
    log::debug!(
        "tracker-http: {remote}: announce {:?} port {} left {} event {:?}",
        announce.info_hash,
        announce.addr.port(),
        announce.left,
        announce.event
    );
    let answer = match shared.announce(&announce) {
        Ok(answer) => answer,
        Err(reason) => {
            log::debug!("tracker-http: {remote}: refused: {reason}");
            return failure(reason);
        }
    };
    shared.count(Counter::HttpAnnounce);
    // BEP 23: compact unless the client says `compact=0`.
    let compact = param(&params, "compact") != Some(b"0");
    bencode::encode(&announce_body(&answer, shared.interval, compact))
}

/// The fields of an announce query, checked. The peer's address is the connection's: the
/// `ip` parameter is ignored, so nobody can announce someone else's address.
fn announce_from_query(
    params: &[(String, Vec<u8>)],
    remote: SocketAddr,
) -> Result<Announce, String> {
    let port = match counter(params, "port")? {
        0 => return Err("port is missing or 0".into()),
        port => u16::try_from(port).map_err(|_| format!("port {port} is over 65535"))?,
    };
    Ok(Announce {
        info_hash: InfoHash(twenty_bytes(params, "info_hash")?),
        peer_id: PeerId(twenty_bytes(params, "peer_id")?),
        addr: SocketAddr::new(remote.ip().to_canonical(), port),
        uploaded: counter(params, "uploaded")?,
        downloaded: counter(params, "downloaded")?,
        left: counter(params, "left")?,
        event: event(params)?,
        // A `numwant` that is not a number is not worth refusing over: the default serves.
        numwant: numwant(counter(params, "numwant").ok()),
    })
}

/// `info_hash` and `peer_id`: exactly 20 raw bytes.
fn twenty_bytes(params: &[(String, Vec<u8>)], name: &str) -> Result<[u8; 20], String> {
    let value = param(params, name).ok_or(format!("missing {name}"))?;
    value
        .try_into()
        .map_err(|_| format!("{name} is {} bytes, not 20", value.len()))
}

/// A decimal number such as `left=1024`; absent means 0.
fn counter(params: &[(String, Vec<u8>)], name: &str) -> Result<u64, String> {
    let Some(value) = param(params, name) else {
        return Ok(0);
    };
    std::str::from_utf8(value)
        .ok()
        .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse().ok())
        .ok_or(format!("{name} is not a number: {}", shown(value)))
}

/// BEP 3 `event`: `started`, `completed`, `stopped`, or absent (`empty` is an old spelling).
fn event(params: &[(String, Vec<u8>)]) -> Result<Event, String> {
    match param(params, "event") {
        None | Some(b"") | Some(b"empty") => Ok(Event::None),
        Some(b"started") => Ok(Event::Started),
        Some(b"completed") => Ok(Event::Completed),
        Some(b"stopped") => Ok(Event::Stopped),
        Some(other) => Err(format!("unknown event {}", shown(other))),
    }
}

/// `d8:completei..e10:incompletei..e8:intervali..e12:min intervali..e5:peers..6:peers6..e`
fn announce_body(answer: &AnnounceAnswer, interval: Duration, compact: bool) -> Value {
    let addrs: Vec<SocketAddr> = answer.peers.iter().map(|p| p.addr).collect();
    let peers = if compact {
        Value::bytes(encode_compact_v4(&addrs)) // IPv4 only; IPv6 go in `peers6`
    } else {
        Value::list(answer.peers.iter().map(peer_dict).collect())
    };
    let seconds = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    let mut fields = vec![
        ("interval", Value::integer(seconds)),
        ("min interval", Value::integer(seconds / 2)),
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

/// One peer of a `compact=0` answer: `d7:peer id20:..2:ip9:127.0.0.14:porti6881ee`.
fn peer_dict(peer: &SwarmPeer) -> Value {
    Value::dict(vec![
        ("peer id", Value::bytes(peer.peer_id.0.to_vec())),
        ("ip", Value::bytes(peer.addr.ip().to_string())),
        ("port", Value::integer(peer.addr.port().into())),
    ])
}

/// `/scrape?info_hash=..&info_hash=..`: `d5:filesd20:<hash>d8:completei..e..eee`. With no
/// `info_hash` the `files` dictionary is empty: we do not hand out the list of every torrent.
fn scrape(query: &str, shared: &Shared) -> Vec<u8> {
    let hashes = match scrape_hashes(&parse_query(query)) {
        Ok(hashes) => hashes,
        Err(reason) => {
            shared.count(Counter::BadRequest);
            log::debug!("tracker-http: bad scrape: {reason}");
            return failure(&reason);
        }
    };
    shared.count(Counter::Scrape);
    log::debug!("tracker-http: scrape of {} torrents", hashes.len());
    let now = Instant::now();
    let mut swarms = shared.swarms();
    let files = hashes
        .iter()
        .map(|hash| (hash.0.to_vec(), scrape_entry(swarms.scrape(hash, now))))
        .collect();
    drop(swarms);
    bencode::encode(&Value::dict(vec![("files", Value::new(Item::Dict(files)))]))
}

/// The distinct info hashes of a scrape, each 20 bytes, at most as many as a UDP scrape.
fn scrape_hashes(params: &[(String, Vec<u8>)]) -> Result<Vec<InfoHash>, String> {
    let mut hashes = Vec::new();
    for (_, value) in params.iter().filter(|(name, _)| name == "info_hash") {
        let bytes = <[u8; 20]>::try_from(&value[..])
            .map_err(|_| format!("info_hash is {} bytes, not 20", value.len()))?;
        if !hashes.contains(&InfoHash(bytes)) {
            hashes.push(InfoHash(bytes));
        }
    }
    if hashes.len() > MAX_SCRAPE_HASHES {
        return Err(format!(
            "scrape of {} torrents; at most {MAX_SCRAPE_HASHES}",
            hashes.len()
        ));
    }
    Ok(hashes)
}

fn scrape_entry(stats: ScrapeStats) -> Value {
    Value::dict(vec![
        ("complete", Value::integer(stats.seeders.into())),
        ("downloaded", Value::integer(stats.completed.into())),
        ("incomplete", Value::integer(stats.leechers.into())),
    ])
}

/// `d14:failure reason<len>:<reason>e`
fn failure(reason: &str) -> Vec<u8> {
    bencode::encode(&Value::dict(vec![("failure reason", Value::bytes(reason))]))
}

/// Splits a query string into (name, raw value bytes) pairs, undoing `%XX` escapes. Values are
/// bytes, not text: `info_hash` is binary. `+` is left alone: BEP 3 clients escape a space as
/// `%20`, and a literal `+` byte in an info hash must stay a `+`. A `%` not followed by two hex
/// digits is kept as it is; the check of each field says what is wrong with its value.
fn parse_query(query: &str) -> Vec<(String, Vec<u8>)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name, Plus::Literal).bytes;
            let name = String::from_utf8_lossy(&name).into_owned();
            (name, percent_decode(value, Plus::Literal).bytes)
        })
        .collect()
}

/// The first value of `name`; later repeats are ignored (except `info_hash` in a scrape).
fn param<'a>(params: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| &v[..])
}

/// Client bytes for a log line or a failure reason: escaped, and at most 32 of them.
fn shown(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let head = &bytes[..bytes.len().min(32)];
    let more = if bytes.len() > head.len() { "..." } else { "" };
    format!("\"{}{more}\"", head.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::super::lock;
    use super::*;

    const HASH: &str = "%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa%aa";

    fn remote(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// A valid announce query from a peer listening on `port`.
    fn query(port: u16, left: u64, extra: &str) -> String {
        let peer_id = format!("-XX0001-{port:012}");
        format!("/announce?info_hash={HASH}&peer_id={peer_id}&port={port}&left={left}{extra}")
    }

    fn decoded(body: &[u8]) -> Value {
        let shown = body.escape_ascii();
        bencode::decode(body)
            .unwrap_or_else(|e| panic!("{shown}: {e}"))
            .value
    }

    #[test]
    fn queries_split_into_byte_values() {
        let params = parse_query("info_hash=%12%00&&flag&port=6881&port=1");
        assert_eq!(params[0], ("info_hash".to_string(), vec![0x12, 0]));
        assert_eq!(params[1], ("flag".to_string(), vec![]));
        assert_eq!(
            param(&params, "port"),
            Some(&b"6881"[..]),
            "the first one counts"
        );
    }

    #[test]
    fn announce_queries_are_checked() {
        let remote: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let ok = format!(
            "info_hash={HASH}&peer_id={}&port=6881&left=10&event=started&ip=6.6.6.6",
            "b".repeat(20)
        );
        let announce = announce_from_query(&parse_query(&ok), remote).unwrap();
        assert_eq!(
            announce.addr,
            "127.0.0.1:6881".parse().unwrap(),
            "ip= ignored"
        );
        assert_eq!(
            (announce.left, announce.event, announce.info_hash),
            (10, Event::Started, InfoHash([0xaa; 20]))
        );
        for (bad, why) in [
            (ok.replace("port=6881", "port=0"), "port is missing or 0"),
            (ok.replace("port=6881", "port=x"), "port is not a number"),
            (ok.replace("port=6881", "port=70000"), "over 65535"),
            (ok.replace("&port=6881", ""), "port is missing"),
            (ok.replace(HASH, "%aa"), "info_hash is 1 bytes"),
            (
                ok.replace("&left=10", "&left=-1"),
                "left is not a number: \"-1\"",
            ),
            (ok.replace("&left=10", "&left=+1"), "left is not a number"),
            (
                ok.replace("&left=10", "&uploaded=%ff"),
                "uploaded is not a number: \"\\xff\"",
            ),
            (
                ok.replace("event=started", "event=bogus"),
                "unknown event \"bogus\"",
            ),
            (
                ok.replace(&format!("info_hash={HASH}&"), ""),
                "missing info_hash",
            ),
            (ok.replace(&"b".repeat(20), "b"), "peer_id is 1 bytes"),
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
        // 5:peers 6: 0a 00 00 01 (10.0.0.1) 00 50 (port 80)
        let expected: &[u8] = b"5:peers6:\x0a\x00\x00\x01\x00\x50";
        assert!(
            compact.windows(expected.len()).any(|w| w == expected),
            "{}",
            compact.escape_ascii()
        );
        let listed = announce_body(&answer, Duration::from_secs(60), false);
        let first = &listed.get("peers").unwrap().as_list().unwrap()[0];
        assert_eq!(
            first.get("peer id").unwrap().as_bytes(),
            Some(&[b'p'; 20][..])
        );
        assert_eq!(first.get("ip").unwrap().as_str(), Some("10.0.0.1"));
        assert_eq!(first.get("port").unwrap().as_integer(), Some(80));
        assert_eq!(listed.get("min interval").unwrap().as_integer(), Some(30));
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
        let peers6 = body.get("peers6").and_then(Value::as_bytes);
        assert_eq!(peers6.map(<[u8]>::len), Some(18));
    }

    #[test]
    fn the_requester_is_left_out_of_its_own_answer() {
        let shared = Shared::new(Duration::from_secs(60));
        let (status, _) = answer(&query(6001, 10, ""), remote(40001), &shared);
        assert_eq!(status, 200);
        let (_, body) = answer(&query(6002, 10, "&compact=0"), remote(40002), &shared);
        let second = decoded(&body);
        let peers = second.get("peers").unwrap().as_list().unwrap();
        let ports: Vec<i64> = peers
            .iter()
            .filter_map(|p| p.get("port")?.as_integer())
            .collect();
        assert_eq!(ports, [6001]);
        assert_eq!(second.get("incomplete").unwrap().as_integer(), Some(2));
        assert_eq!(lock(&shared.stats).announces_http, 2);
    }

    #[test]
    fn bad_requests_get_a_reason_or_a_status() {
        let shared = Shared::new(Duration::from_secs(60));
        let (status, body) = answer("/announce?port=1", remote(1), &shared);
        assert_eq!(status, 200);
        let reason = decoded(&body)
            .get("failure reason")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(reason, "missing info_hash");
        assert_eq!(answer("/etc/passwd", remote(1), &shared).0, 404);
        let long = format!("/announce?x={}", "a".repeat(MAX_URL_LEN));
        assert_eq!(answer(&long, remote(1), &shared).0, 414);
        let (_, body) = answer("/scrape?info_hash=short", remote(1), &shared);
        assert!(decoded(&body).get("failure reason").is_some());
        assert_eq!(lock(&shared.stats).bad_requests, 4);
    }

    #[test]
    fn scrape_counts_seeders_leechers_and_completions() {
        let shared = Shared::new(Duration::from_secs(60));
        answer(&query(6001, 10, "&event=started"), remote(1), &shared);
        answer(&query(6002, 0, "&event=completed"), remote(2), &shared);
        let unknown = "%bb".repeat(20);
        let url = format!("/scrape?info_hash={HASH}&info_hash={unknown}&info_hash={HASH}");
        let (status, body) = answer(&url, None, &shared);
        assert_eq!(status, 200);
        let files = decoded(&body)
            .get("files")
            .unwrap()
            .as_dict()
            .unwrap()
            .to_vec();
        assert_eq!(files.len(), 2, "a repeated hash is answered once");
        let stats = |entry: &Value| {
            ["complete", "downloaded", "incomplete"]
                .map(|key| entry.get(key).and_then(Value::as_integer).unwrap())
        };
        assert_eq!(
            (files[0].0.as_slice(), stats(&files[0].1)),
            (&[0xaa; 20][..], [1, 1, 1])
        );
        assert_eq!(
            (files[1].0.as_slice(), stats(&files[1].1)),
            (&[0xbb; 20][..], [0, 0, 0])
        );
    }
}
