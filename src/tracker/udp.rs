//! Announcing over UDP (BEP 15) — walkthrough §3.
//!
//! UDP has no connections and no delivery guarantee, so the protocol adds both:
//!
//! ```text
//!   (no connection id, or older than 60 s)
//!        │ connect(transaction_id)          ──►   tracker
//!        │ ◄── connection_id                       (valid for 60 s)
//!        ▼
//!   announce(connection_id, transaction_id, ...) ──►
//!        ◄── interval, leechers, seeders, peers
//!
//!   no reply within 15 × 2^n seconds → send again, n = 0, 1, ... up to the retry limit
//! ```
//!
//! Every request gets a fresh random transaction id, and a reply counts only if it carries
//! the same one: anything else on the socket (a late reply to an earlier try, a
//! malformed or spoofed packet) is ignored, and the error after the last try says what was
//! ignored. An `action = 3` reply is the tracker refusing, with its message.

use super::udp_packet::{AnnouncePacket, Request, Response};
use super::{AnnounceRequest, AnnounceResponse, Problem, ScrapeStats, TrackerConfig};
use crate::metainfo::InfoHash;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

/// BEP 15: a connection id may be used for one minute after it was received.
const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// Biggest reply we read: enough for ~250 IPv4 peers; larger datagrams are cut (and rejected).
const MAX_PACKET: usize = 2048;

/// A UDP tracker, its socket, and the connection id while it is fresh.
pub struct UdpTracker {
    url: String,
    socket: UdpSocket,
    ipv6: bool,
    config: TrackerConfig,
    connection: Option<(u64, Instant)>,
}

impl UdpTracker {
    /// Resolves `udp://host:port[/path]` and opens a socket talking to that address only.
    pub fn new(url: &str, config: TrackerConfig) -> Result<UdpTracker, Problem> {
        let host_port = url
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(rest))
            .filter(|hp| !hp.is_empty())
            .ok_or_else(|| Problem::BadUrl("expected udp://host:port".into()))?;
        let resolve_error = |source| Problem::Resolve {
            host: host_port.to_string(),
            source,
        };
        let addr = host_port.to_socket_addrs().map_err(resolve_error)?.next();
        let addr = addr.ok_or_else(|| Problem::BadUrl(format!("{host_port} has no address")))?;
        let local: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse()
        } else {
            "0.0.0.0:0".parse()
        }
        .expect("literal address");
        let socket = UdpSocket::bind(local)?;
        socket.connect(addr)?; // only the tracker's datagrams reach us
        Ok(UdpTracker {
            url: url.to_string(),
            socket,
            ipv6: addr.is_ipv6(),
            config,
            connection: None,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn announce(&mut self, r: &AnnounceRequest) -> Result<AnnounceResponse, Problem> {
        let connection_id = self.connection_id()?;
        let build = |transaction_id| {
            Request::Announce(AnnouncePacket {
                connection_id,
                transaction_id,
                info_hash: r.info_hash,
                peer_id: r.peer_id,
                downloaded: r.downloaded,
                left: r.left,
                uploaded: r.uploaded,
                event: r.event.udp_code(),
                key: r.key,
                num_want: r.numwant.map_or(-1, |n| n.min(i32::MAX as u32) as i32),
                port: r.port,
            })
        };
        match self.exchange(build)? {
            Response::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => Ok(AnnounceResponse {
                peers,
                interval: Duration::from_secs(interval.into()),
                min_interval: None,
                complete: Some(seeders),
                incomplete: Some(leechers),
                warning: None,
            }),
            other => Err(unexpected(&other)),
        }
    }

    pub fn scrape(&mut self, info_hash: InfoHash) -> Result<ScrapeStats, Problem> {
        let connection_id = self.connection_id()?;
        let build = |transaction_id| Request::Scrape {
            connection_id,
            transaction_id,
            info_hashes: vec![info_hash],
        };
        match self.exchange(build)? {
            Response::Scrape { stats, .. } if !stats.is_empty() => Ok(stats[0]),
            other => Err(unexpected(&other)),
        }
    }

    /// The connection id, from a fresh connect exchange when ours is missing or stale.
    fn connection_id(&mut self) -> Result<u64, Problem> {
        if let Some((id, received)) = self.connection
            && received.elapsed() < CONNECTION_ID_LIFETIME
        {
            return Ok(id);
        }
        match self.exchange(|transaction_id| Request::Connect { transaction_id })? {
            Response::Connect { connection_id, .. } => {
                self.connection = Some((connection_id, Instant::now()));
                Ok(connection_id)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Sends a request and waits for its reply, retransmitting with BEP 15's back-off:
    /// wait `base × 2^n` after try n. Each try gets a new transaction id.
    fn exchange(&mut self, build: impl Fn(u32) -> Request) -> Result<Response, Problem> {
        let started = Instant::now();
        let mut last_invalid = None;
        for attempt in 0..=self.config.udp_retries {
            let transaction_id = fastrand::u32(..);
            self.socket.send(&build(transaction_id).encode())?;
            let wait = self
                .config
                .udp_base_timeout
                .saturating_mul(1 << attempt.min(8));
            match self.await_reply(transaction_id, Instant::now() + wait, &mut last_invalid)? {
                Some(Response::Error { message, .. }) => return Err(Problem::Failure(message)),
                Some(reply) => return Ok(reply),
                None => log::debug!(
                    "{}: no reply to try {} within {wait:?}",
                    self.url,
                    attempt + 1
                ),
            }
        }
        Err(Problem::NoAnswer {
            attempts: self.config.udp_retries + 1,
            waited: started.elapsed(),
            last_invalid,
        })
    }

    /// Reads datagrams until one is a well-formed reply to `transaction_id`, or the deadline.
    fn await_reply(
        &self,
        transaction_id: u32,
        deadline: Instant,
        last_invalid: &mut Option<String>,
    ) -> Result<Option<Response>, Problem> {
        let mut buffer = [0u8; MAX_PACKET];
        loop {
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return Ok(None);
            };
            self.socket.set_read_timeout(Some(left))?;
            let len = match self.socket.recv(&mut buffer) {
                Ok(len) => len,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(Problem::Io(e)), // e.g. ICMP "port unreachable": nobody is there
            };
            // [W3.2] Only a reply carrying this try's transaction id counts.
            match Response::decode(&buffer[..len], self.ipv6) {
                Ok(reply) if reply.transaction_id() == transaction_id => return Ok(Some(reply)),
                Ok(reply) => {
                    *last_invalid = Some(format!(
                        "a reply with transaction id {}, expected {transaction_id}",
                        reply.transaction_id()
                    ))
                }
                Err(e) => *last_invalid = Some(e.to_string()),
            }
            log::debug!(
                "{}: ignored {}",
                self.url,
                last_invalid.as_deref().unwrap_or_default()
            );
        }
    }
}

fn unexpected(reply: &Response) -> Problem {
    Problem::Malformed(format!("unexpected reply {reply:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> TrackerConfig {
        TrackerConfig {
            udp_base_timeout: Duration::from_millis(50),
            udp_retries: 1,
            ..TrackerConfig::default()
        }
    }

    #[test]
    fn urls_must_name_host_and_port() {
        assert!(matches!(
            UdpTracker::new("udp://", quick()),
            Err(Problem::BadUrl(_))
        ));
        assert!(matches!(
            UdpTracker::new("udp://127.0.0.1", quick()),
            Err(Problem::Resolve { .. })
        ));
        assert!(UdpTracker::new("udp://127.0.0.1:6969/announce", quick()).is_ok());
    }

    #[test]
    fn a_silent_tracker_gives_up_after_the_retries() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap(); // bound, never answers
        let url = format!("udp://{}", silent.local_addr().unwrap());
        let mut tracker = UdpTracker::new(&url, quick()).unwrap();
        let started = Instant::now();
        let error = tracker.scrape(InfoHash([0; 20])).unwrap_err();
        assert!(
            matches!(error, Problem::NoAnswer { attempts: 2, .. }),
            "{error}"
        );
        // 50 ms + 100 ms of waiting, and no more than a little overhead
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn replies_with_the_wrong_transaction_id_are_ignored() {
        let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
        let url = format!("udp://{}", fake.local_addr().unwrap());
        let responder = std::thread::spawn(move || {
            let mut buf = [0u8; 100];
            fake.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            while let Ok((len, from)) = fake.recv_from(&mut buf) {
                let Ok(Request::Connect { transaction_id }) = Request::decode(&buf[..len]) else {
                    continue;
                };
                let wrong = Response::Connect {
                    transaction_id: transaction_id.wrapping_add(1),
                    connection_id: 1,
                };
                fake.send_to(&wrong.encode(), from).unwrap();
                fake.send_to(&[1, 2, 3], from).unwrap(); // and a short packet
            }
        });
        let error = UdpTracker::new(&url, quick())
            .unwrap()
            .scrape(InfoHash([0; 20]))
            .unwrap_err();
        assert!(
            matches!(
                &error,
                Problem::NoAnswer {
                    last_invalid: Some(_),
                    ..
                }
            ),
            "{error}"
        );
        drop(responder);
    }

    #[test]
    fn the_connection_id_is_reused_for_60_seconds_then_renewed() {
        use crate::peer_id::PeerId;
        use crate::tracker::Event;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
        let url = format!("udp://{}", fake.local_addr().unwrap());
        let connects = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&connects);
        std::thread::spawn(move || {
            let mut buf = [0u8; 200];
            while let Ok((len, from)) = fake.recv_from(&mut buf) {
                let reply = match Request::decode(&buf[..len]) {
                    Ok(Request::Connect { transaction_id }) => {
                        counted.fetch_add(1, Ordering::SeqCst);
                        Response::Connect {
                            transaction_id,
                            connection_id: 77,
                        }
                    }
                    Ok(Request::Announce(a)) if a.connection_id == 77 => Response::Announce {
                        transaction_id: a.transaction_id,
                        interval: 60,
                        leechers: 0,
                        seeders: 0,
                        peers: vec![],
                    },
                    _ => continue,
                };
                // A lost reply is what the client's retries are for; the test checks those.
                let _ = fake.send_to(&reply.encode(), from);
            }
        });
        let request = AnnounceRequest {
            info_hash: InfoHash([3; 20]),
            peer_id: PeerId::generate(),
            port: 1,
            uploaded: 0,
            downloaded: 0,
            left: 1,
            event: Event::Started,
            numwant: None,
            key: 0,
        };
        let mut tracker = UdpTracker::new(
            &url,
            TrackerConfig {
                udp_base_timeout: Duration::from_secs(2),
                ..quick()
            },
        )
        .unwrap();
        tracker.announce(&request).unwrap();
        tracker.announce(&request).unwrap();
        assert_eq!(
            connects.load(Ordering::SeqCst),
            1,
            "one connect serves both announces"
        );
        let a_minute_ago = Instant::now()
            .checked_sub(Duration::from_secs(61))
            .expect("the machine is up for a minute");
        tracker.connection = Some((77, a_minute_ago));
        tracker.announce(&request).unwrap();
        assert_eq!(
            connects.load(Ordering::SeqCst),
            2,
            "an id older than 60 s is not used"
        );
    }
}
