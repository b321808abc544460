//! Announcing over HTTP (BEP 3 "trackers", BEP 23 compact, BEP 7 IPv6) — walkthrough §3.
//!
//! An HTTP announce is a GET whose query string carries the request, and whose body is a
//! bencoded dictionary:
//!
//! ```text
//!   GET /announce?info_hash=%12%34...&peer_id=-PW0001-...&port=6881&uploaded=0
//!                &downloaded=0&left=1048576&compact=1&event=started&numwant=50&key=...
//!
//!   d8:intervali1800e5:peers12:<6 bytes a peer>6:peers618:<18 bytes a peer>e
//!   d14:failure reason23:torrent not registerede                     (a refusal)
//! ```
//!
//! The one trap: `info_hash` and `peer_id` are raw bytes, not text. Each byte outside
//! `A-Z a-z 0-9 - . _ ~` is written as `%XX` by [`percent_encode`]; a URL library that treats
//! them as UTF-8 text would mangle them and the tracker would not know the torrent.
//!
//! A tracker is a stranger too: the answer is read with a size cap, redirects are bounded,
//! the whole request has a deadline, and every malformed answer becomes a [`Problem`].

use super::peers::{PeerListError, parse_peers_value};
use super::{AnnounceRequest, AnnounceResponse, Problem, ScrapeStats, TrackerConfig};
use crate::bencode::{self, Value};
use crate::encoding::{parse_compact_v6, percent_encode};
use crate::metainfo::InfoHash;
use std::time::Duration;

/// Used when a tracker gives no `interval`: BEP 3 leaves it to the tracker; 30 minutes is usual.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1800);

/// An HTTP(S) tracker and what it asked us to remember.
pub struct HttpTracker {
    url: String,
    agent: ureq::Agent,
    config: TrackerConfig,
    /// BEP 3 `tracker id`: if a tracker sends one, it wants it back on every later announce.
    tracker_id: Option<Vec<u8>>,
}

impl HttpTracker {
    pub fn new(url: &str, config: TrackerConfig) -> HttpTracker {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.http_timeout))
            .max_redirects(config.max_redirects)
            .http_status_as_error(false)
            .user_agent(concat!("peerwire/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        HttpTracker {
            url: url.to_string(),
            agent,
            config,
            tracker_id: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one announce and reads the answer.
    pub fn announce(&mut self, request: &AnnounceRequest) -> Result<AnnounceResponse, Problem> {
        let url = announce_url(&self.url, request, self.tracker_id.as_deref());
        log::debug!("announce {url}");
        let body = self.get(&url)?;
        let dict = parse_dictionary(&body)?;
        if let Some(id) = dict.get("tracker id").and_then(Value::as_bytes) {
            self.tracker_id = Some(id.to_vec());
        }
        parse_announce(&dict)
    }

    /// BEP 48 convention: the scrape URL is the announce URL with `announce` replaced by
    /// `scrape` in its last path segment.
    pub fn scrape(&mut self, info_hash: InfoHash) -> Result<ScrapeStats, Problem> {
        let Some(at) = self.url.rfind("/announce") else {
            return Err(Problem::BadUrl(
                "no `/announce` in the URL to turn into `/scrape`".into(),
            ));
        };
        let base = format!(
            "{}/scrape{}",
            &self.url[..at],
            &self.url[at + "/announce".len()..]
        );
        let separator = if base.contains('?') { '&' } else { '?' };
        let body = self.get(&format!(
            "{base}{separator}info_hash={}",
            percent_encode(&info_hash.0)
        ))?;
        parse_scrape(&body, info_hash)
    }

    /// GET with status check and body cap.
    fn get(&self, url: &str) -> Result<Vec<u8>, Problem> {
        // One request per connection, closed by both sides once answered: the next announce is
        // minutes away, so a kept-alive connection saves nothing, and a tracker that gives
        // each open connection a worker thread (tiny_http does, so our built-in tracker does)
        // would have that worker held by our idle socket. Twenty clients announcing at once
        // to it each kept one, and a few announces queued behind them went unanswered until
        // their 20 s deadline: those leechers spent it with no peer at all.
        let request = self.agent.get(url).header("Connection", "close");
        let mut response = request.call()?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(Problem::Status(status));
        }
        Ok(response
            .body_mut()
            .with_config()
            .limit(self.config.max_body)
            .read_to_vec()?)
    }
}

/// The announce URL: the tracker's URL plus our query. A URL that already has a query (a
/// private tracker's passkey, say) gets `&`, not a second `?`.
pub fn announce_url(base: &str, r: &AnnounceRequest, tracker_id: Option<&[u8]>) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut url = format!(
        "{base}{separator}info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact=1&key={:08x}",
        percent_encode(&r.info_hash.0),
        percent_encode(&r.peer_id.0),
        r.port,
        r.uploaded,
        r.downloaded,
        r.left,
        r.key,
    );
    if let Some(event) = r.event.http_name() {
        url.push_str(&format!("&event={event}"));
    }
    if let Some(numwant) = r.numwant {
        url.push_str(&format!("&numwant={numwant}"));
    }
    if let Some(id) = tracker_id {
        url.push_str(&format!("&trackerid={}", percent_encode(id)));
    }
    url
}

/// Decodes a tracker's HTTP body, which must be one bencoded dictionary (announce and scrape
/// answers both are). Public so the fuzz target `tracker_http` can reach it (docs/fuzzing.md).
pub fn parse_dictionary(body: &[u8]) -> Result<Value, Problem> {
    let value = bencode::decode(body)?.value;
    match value.as_dict() {
        Some(_) => Ok(value),
        None => Err(Problem::NotADictionary(value.kind_name())),
    }
}

/// Reads a scrape answer (BEP 48): `files` maps each info hash (20 raw bytes) to a dictionary
/// of `complete`, `downloaded` and `incomplete`. Counts that are missing, negative or too large
/// read as 0; an answer that does not mention our torrent is an error.
pub fn parse_scrape(body: &[u8], info_hash: InfoHash) -> Result<ScrapeStats, Problem> {
    let dict = parse_dictionary(body)?;
    let stats = dict.get("files").and_then(|files| {
        files
            .as_dict()?
            .iter()
            .find(|(k, _)| k[..] == info_hash.0[..])
            .map(|(_, v)| v)
    });
    let stats = stats
        .ok_or_else(|| Problem::Malformed("the scrape does not mention the torrent".into()))?;
    let count = |key| {
        stats
            .get(key)
            .and_then(Value::as_integer)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    Ok(ScrapeStats {
        seeders: count("complete"),
        completed: count("downloaded"),
        leechers: count("incomplete"),
    })
}

/// Reads an announce answer: a refusal, or peers and timing.
pub fn parse_announce(dict: &Value) -> Result<AnnounceResponse, Problem> {
    if let Some(reason) = dict.get("failure reason") {
        return Err(Problem::Failure(
            String::from_utf8_lossy(reason.as_bytes().unwrap_or(b"(not a string)")).into_owned(),
        ));
    }
    let seconds = |key| {
        dict.get(key)
            .and_then(Value::as_integer)
            .and_then(|n| u64::try_from(n).ok())
            .map(Duration::from_secs)
    };
    let count = |key| {
        dict.get(key)
            .and_then(Value::as_integer)
            .and_then(|n| u32::try_from(n).ok())
    };
    let mut peers = match dict.get("peers") {
        Some(value) => parse_peers_value(value)?,
        None => Vec::new(),
    };
    // [W3.8] IPv6 peers in a key of their own, 18 bytes each (BEP 7): a ragged list is an error.
    if let Some(v6) = dict.get("peers6").and_then(Value::as_bytes) {
        peers.extend(parse_compact_v6(v6).map_err(PeerListError::from)?);
    }
    let warning = dict
        .get("warning message")
        .and_then(Value::as_bytes)
        .map(|w| String::from_utf8_lossy(w).into_owned());
    if let Some(w) = &warning {
        log::warn!("tracker warning: {w}");
    }
    Ok(AnnounceResponse {
        peers,
        interval: seconds("interval").unwrap_or(DEFAULT_INTERVAL),
        min_interval: seconds("min interval"),
        complete: count("complete"),
        incomplete: count("incomplete"),
        warning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::CompactLengthError;
    use crate::peer_id::PeerId;
    use crate::tracker::Event;

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash(*b"\x12\x34\x56\x78\x9a\xbc\xde\xf1\x23\x45\x67\x89\xab\xcd\xef\x12\x34\x56\x78\x9a"),
            peer_id: PeerId(*b"-PW0001-aaaaaaaaa +~"),
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: 100,
            event: Event::Started,
            numwant: Some(50),
            key: 0xabcdef,
        }
    }

    /// A scrape body naming `hash` with the given counts (raw bencode, field by field).
    fn scrape_body(hash: &[u8; 20], counts: &str) -> Vec<u8> {
        let mut body = b"d5:filesd20:".to_vec(); // { files: { <20-byte info hash>:
        body.extend_from_slice(hash);
        body.extend_from_slice(counts.as_bytes()); //   { complete, downloaded, incomplete }
        body.extend_from_slice(b"ee"); // } }
        body
    }

    #[test]
    fn a_scrape_reads_the_counts_of_our_torrent() {
        let hash = request().info_hash;
        let body = scrape_body(&hash.0, "d8:completei5e10:downloadedi7e10:incompletei2ee");
        let stats = parse_scrape(&body, hash).unwrap();
        assert_eq!((stats.seeders, stats.completed, stats.leechers), (5, 7, 2));
    }

    #[test]
    fn a_scrape_with_odd_counts_reads_them_as_zero() {
        let hash = request().info_hash;
        let body = scrape_body(&hash.0, "d8:completei-5e10:downloadedi99999999999e1:x0:e");
        let stats = parse_scrape(&body, hash).unwrap();
        assert_eq!((stats.seeders, stats.completed, stats.leechers), (0, 0, 0));
    }

    #[test]
    fn a_scrape_about_another_torrent_or_not_a_dictionary_is_an_error() {
        let hash = request().info_hash;
        let other = scrape_body(&[7; 20], "d8:completei5ee");
        assert!(matches!(
            parse_scrape(&other, hash),
            Err(Problem::Malformed(_))
        ));
        assert!(parse_scrape(b"d5:filesi3ee", hash).is_err());
        assert!(parse_scrape(b"<html>", hash).is_err());
    }

    #[test]
    fn the_announce_url_carries_every_field() {
        let url = announce_url("http://t.example/announce", &request(), None);
        assert_eq!(
            url,
            "http://t.example/announce?info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A\
             &peer_id=-PW0001-aaaaaaaaa%20%2B~&port=6881&uploaded=0&downloaded=0&left=100&compact=1\
             &key=00abcdef&event=started&numwant=50"
        );
    }

    #[test]
    fn a_url_with_a_query_gets_an_ampersand() {
        let url = announce_url("http://t/announce?passkey=abc", &request(), Some(b"x y"));
        assert!(url.starts_with("http://t/announce?passkey=abc&info_hash="));
        assert!(url.ends_with("&trackerid=x%20y"));
    }

    fn parse(body: &[u8]) -> Result<AnnounceResponse, Problem> {
        parse_announce(&parse_dictionary(body)?)
    }

    #[test]
    fn parses_compact_and_ipv6_peers_and_timing() {
        let r = parse(b"d8:completei3e10:incompletei1e8:intervali900e12:min intervali60e5:peers6:\x7f\x00\x00\x01\x1a\xe16:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x50e").unwrap();
        assert_eq!(
            r.peers,
            [
                "127.0.0.1:6881".parse().unwrap(),
                "[::1]:80".parse().unwrap()
            ]
        );
        assert_eq!(
            (r.interval, r.min_interval),
            (Duration::from_secs(900), Some(Duration::from_secs(60)))
        );
        assert_eq!((r.complete, r.incomplete), (Some(3), Some(1)));
    }

    #[test]
    fn a_ragged_peers6_is_an_error_that_names_its_length() {
        // 20 bytes: one 18-byte entry and 2 more, whatever `peers` says.
        let mut body = b"d8:intervali60e5:peers6:\x7f\x00\x00\x01\x1a\xe16:peers620:".to_vec();
        body.extend_from_slice(&[0; 20]);
        body.push(b'e');
        let Err(Problem::PeerList(error)) = parse(&body) else {
            panic!("a 20-byte peers6 was taken");
        };
        let expected = CompactLengthError { len: 20, entry: 18 };
        assert_eq!(error, PeerListError::BadCompactLength(expected));
        assert_eq!(
            error.to_string(),
            "compact peer list is 20 bytes, not a multiple of 18"
        );
        // Empty is no IPv6 peers, not an error.
        let r = parse(b"d8:intervali60e5:peers0:6:peers60:e").unwrap();
        assert!(r.peers.is_empty());
    }

    #[test]
    fn refusals_and_garbage_are_problems() {
        assert!(
            matches!(parse(b"d14:failure reason9:not founde"), Err(Problem::Failure(r)) if r == "not found")
        );
        assert!(matches!(parse(b"<html>"), Err(Problem::Bencode(_))));
        assert!(matches!(parse(b"li1ee"), Err(Problem::NotADictionary(_))));
        assert!(matches!(
            parse(b"d5:peers7:1234567e"),
            Err(Problem::PeerList(_))
        ));
    }

    /// Two announces to a tracker that would keep the connection open: each asks for
    /// `Connection: close`, and each leaves with its socket closed, so a tracker that ties a
    /// worker thread to every open connection gets its worker back at once.
    #[test]
    fn each_announce_closes_its_connection_once_answered() {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::time::Duration;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local port");
        let url = format!("http://{}/announce", listener.local_addr().expect("bound"));
        // The tracker's side: answer one request per connection, keep the socket open, and
        // report what the request said and whether the client hung up within 5 s.
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (socket, _) = listener.accept().expect("the client connects");
                socket
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("a timeout");
                let mut reader = BufReader::new(socket.try_clone().expect("a second handle"));
                let mut head = String::new();
                while !head.ends_with("\r\n\r\n") {
                    if reader.read_line(&mut head).unwrap_or(0) == 0 {
                        break;
                    }
                }
                let body = b"d8:intervali60e5:peers0:e";
                let mut answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                answer.extend_from_slice(body);
                (&socket).write_all(&answer).expect("the answer goes out");
                // 0 bytes: the client closed; an error: it kept the socket open for 5 s.
                let closed = matches!(reader.read(&mut [0u8; 16]), Ok(0));
                seen.push((head.to_ascii_lowercase(), closed));
            }
            seen
        });
        let mut tracker = HttpTracker::new(&url, TrackerConfig::default());
        for _ in 0..2 {
            let answer = tracker.announce(&request()).expect("an answer");
            assert_eq!(answer.interval, Duration::from_secs(60));
        }
        for (head, closed) in server.join().expect("the fake tracker ran") {
            assert!(head.contains("connection: close"), "{head}");
            assert!(closed, "the connection was left open:\n{head}");
        }
    }
}
