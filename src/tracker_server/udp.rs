//! The built-in tracker's UDP side (BEP 15) — walkthrough §3.
//!
//! One datagram in, at most one datagram out; the packet layouts are
//! [`crate::tracker::udp_packet`]'s, shared with the client, so they are written once.
//!
//! ```text
//!   client                                                 tracker-udp
//!   connect  protocol id | action 0 | txn  ───────────────►
//!            ◄─────────────── action 0 | txn | connection_id = hash(secret, address, minute)
//!   announce connection_id | action 1 | txn | info_hash | peer_id | .. | port ──►
//!            ◄─────── action 1 | txn | interval | leechers | seeders | 6-byte peers (18: IPv6)
//!   scrape   connection_id | action 2 | txn | info_hash × n ──►
//!            ◄─────────────── action 2 | txn | (seeders | completed | leechers) × n
//!
//!   a forged or stale connection_id ──► action 3 error ("connect again")
//!   garbage ──► action 3 error when its txn can be read (bytes 12..16), else silence
//! ```
//!
//! Only a connect reply or an error (each under 100 bytes) can go to a forged source address:
//! the big replies need a connection id, which only the real address was sent. So a stranger
//! cannot use the tracker to flood someone else with peer lists.

use super::{Counter, ServerError, Shared, connection_id, minute, numwant, valid_connection};
use crate::tracker::udp_packet::{AnnouncePacket, Request, Response};
use crate::tracker::{Event, ScrapeStats};
use crate::tracker_server::registry::Announce;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Biggest datagram read; BEP 15 requests are 16 to 98 bytes, a full scrape 1496. Anything
/// longer is cut to this size by `recv_from` and then judged like any other packet.
const BUFFER_LEN: usize = 2048;
/// How often the thread wakes from `recv_from` to see whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// The running UDP side.
pub(super) struct UdpThread {
    /// Where it listens (the real port when 0 was asked).
    pub(super) addr: SocketAddr,
    pub(super) thread: JoinHandle<()>,
}

/// Binds `addr` and starts the `tracker-udp` thread.
pub(super) fn start(addr: SocketAddr, shared: &Arc<Shared>) -> Result<UdpThread, ServerError> {
    let error = |e: std::io::Error| ServerError {
        what: "UDP",
        addr,
        reason: e.to_string(),
    };
    let socket = UdpSocket::bind(addr).map_err(error)?;
    let bound = socket.local_addr().map_err(error)?;
    socket.set_read_timeout(Some(STOP_CHECK)).map_err(error)?;
    let shared = Arc::clone(shared);
    let thread = std::thread::Builder::new()
        .name("tracker-udp".into())
        .spawn(move || serve(socket, &shared))
        .map_err(error)?;
    Ok(UdpThread {
        addr: bound,
        thread,
    })
}

/// The UDP thread: one datagram in, at most one out, until `stop`.
fn serve(socket: UdpSocket, shared: &Shared) {
    let mut buffer = [0u8; BUFFER_LEN];
    while !shared.stop.load(Ordering::Relaxed) {
        let (len, from) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e) if is_timeout(&e) => continue, // the moment to look at `stop`
            Err(e) => {
                log::debug!("tracker-udp: receiving: {e}");
                continue;
            }
        };
        let Some(response) = reply(&buffer[..len], from, shared) else {
            continue;
        };
        if let Err(e) = socket.send_to(&response.encode(), from) {
            log::debug!("tracker-udp: answering {from}: {e}");
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The reply to one datagram from `from`, or `None` for garbage we cannot even answer.
/// No I/O here, so the unit tests below play whole exchanges without a socket.
fn reply(packet: &[u8], from: SocketAddr, shared: &Shared) -> Option<Response> {
    let request = match Request::decode(packet) {
        Ok(request) => request,
        Err(e) => {
            shared.count(Counter::BadRequest);
            log::debug!("tracker-udp: {from}: {} bytes refused: {e}", packet.len());
            let transaction_id = u32::from_be_bytes(packet.get(12..16)?.try_into().ok()?);
            return Some(error(transaction_id, e.to_string()));
        }
    };
    let now = minute();
    match request {
        Request::Connect { transaction_id } => {
            log::debug!("tracker-udp: {from}: connect");
            Some(Response::Connect {
                transaction_id,
                connection_id: connection_id(shared, from, now),
            })
        }
        Request::Announce(packet) if valid_connection(shared, from, packet.connection_id, now) => {
            Some(announce(&packet, from, shared))
        }
        Request::Scrape {
            connection_id,
            transaction_id,
            info_hashes,
        } if valid_connection(shared, from, connection_id, now) => {
            Some(scrape(transaction_id, &info_hashes, from, shared))
        }
        Request::Announce(AnnouncePacket { transaction_id, .. })
        | Request::Scrape { transaction_id, .. } => {
            shared.count(Counter::BadRequest);
            log::debug!("tracker-udp: {from}: unknown or expired connection id");
            Some(error(
                transaction_id,
                "unknown or expired connection id: connect again",
            ))
        }
    }
}

/// A checked announce: recorded, and answered with peers of the asker's address family.
fn announce(packet: &AnnouncePacket, from: SocketAddr, shared: &Shared) -> Response {
    if packet.port == 0 {
        shared.count(Counter::BadRequest);
        return error(
            packet.transaction_id,
            "port 0: announce the port you listen on",
        );
    }
    let announce = Announce {
        info_hash: packet.info_hash,
        peer_id: packet.peer_id,
        // BEP 15's `ip` field is ignored: the peer is wherever the datagram came from.
        addr: SocketAddr::new(from.ip().to_canonical(), packet.port),
        uploaded: packet.uploaded,
        downloaded: packet.downloaded,
        left: packet.left,
        event: event_from_udp(packet.event),
        // -1 (or any negative) asks for the tracker's default.
        numwant: numwant(u64::try_from(packet.num_want).ok()),
    };
    log::debug!(
        "tracker-udp: {from}: announce {:?} port {} left {} event {:?}",
        announce.info_hash,
        packet.port,
        announce.left,
        announce.event
    );
    let answer = match shared.announce(&announce) {
        Ok(answer) => answer,
        Err(reason) => return error(packet.transaction_id, reason),
    };
    shared.count(Counter::UdpAnnounce);
    // BEP 15: the size of a peer entry (6 or 18 bytes) follows the family the request came
    // over, so an IPv4 asker can only be told IPv4 peers, and an IPv6 asker IPv6 peers.
    let asker_is_v4 = announce.addr.is_ipv4();
    let peers = answer
        .peers
        .iter()
        .map(|peer| peer.addr)
        .filter(|addr| addr.is_ipv4() == asker_is_v4)
        .collect();
    Response::Announce {
        transaction_id: packet.transaction_id,
        interval: u32::try_from(shared.interval.as_secs()).unwrap_or(u32::MAX),
        leechers: answer.leechers,
        seeders: answer.seeders,
        peers,
    }
}

/// A checked scrape: (seeders, completed, leechers) for each hash, in the order asked.
fn scrape(
    transaction_id: u32,
    info_hashes: &[crate::metainfo::InfoHash],
    from: SocketAddr,
    shared: &Shared,
) -> Response {
    shared.count(Counter::Scrape);
    log::debug!(
        "tracker-udp: {from}: scrape of {} torrents",
        info_hashes.len()
    );
    let now = Instant::now();
    let mut swarms = shared.swarms();
    let stats: Vec<ScrapeStats> = info_hashes
        .iter()
        .map(|hash| swarms.scrape(hash, now))
        .collect();
    Response::Scrape {
        transaction_id,
        stats,
    }
}

/// BEP 15 event numbers: 0 none, 1 completed, 2 started, 3 stopped (unknown ones: none).
fn event_from_udp(code: u32) -> Event {
    match code {
        1 => Event::Completed,
        2 => Event::Started,
        3 => Event::Stopped,
        _ => Event::None,
    }
}

fn error(transaction_id: u32, message: impl Into<String>) -> Response {
    Response::Error {
        transaction_id,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ServerStats, lock};
    use super::*;
    use crate::metainfo::InfoHash;
    use crate::peer_id::PeerId;
    use crate::tracker::udp_packet::MAX_SCRAPE_HASHES;

    const HASH: InfoHash = InfoHash([7; 20]);

    fn shared() -> Shared {
        Shared::new(Duration::from_secs(60))
    }

    /// Plays the connect exchange for `from` and returns its connection id.
    fn connect(from: SocketAddr, shared: &Shared) -> u64 {
        let packet = Request::Connect { transaction_id: 1 }.encode();
        match reply(&packet, from, shared) {
            Some(Response::Connect { connection_id, .. }) => connection_id,
            other => panic!("connect answered with {other:?}"),
        }
    }

    fn announce_packet(connection_id: u64, port: u16, left: u64, event: Event) -> Vec<u8> {
        Request::Announce(AnnouncePacket {
            connection_id,
            transaction_id: u32::from(port),
            info_hash: HASH,
            peer_id: PeerId::generate(),
            downloaded: 0,
            left,
            uploaded: 0,
            event: event.udp_code(),
            key: 0,
            num_want: -1,
            port,
        })
        .encode()
    }

    /// Connects and announces from `from`; returns the reply.
    fn announce_from(from: &str, left: u64, event: Event, shared: &Shared) -> Response {
        let from: SocketAddr = from.parse().unwrap();
        let id = connect(from, shared);
        reply(&announce_packet(id, from.port(), left, event), from, shared).unwrap()
    }

    fn peers_of(response: Response) -> Vec<SocketAddr> {
        match response {
            Response::Announce { peers, .. } => peers,
            other => panic!("expected an announce reply, got {other:?}"),
        }
    }

    #[test]
    fn connect_then_announce_lists_the_others_not_the_asker() {
        let shared = shared();
        assert!(peers_of(announce_from("127.0.0.1:6001", 10, Event::Started, &shared)).is_empty());
        let second = announce_from("127.0.0.1:6002", 0, Event::Started, &shared);
        let Response::Announce {
            transaction_id,
            interval,
            leechers,
            seeders,
            ref peers,
        } = second
        else {
            panic!("{second:?}");
        };
        assert_eq!((transaction_id, interval), (6002, 60));
        assert_eq!((seeders, leechers), (1, 1));
        assert_eq!(peers, &["127.0.0.1:6001".parse::<SocketAddr>().unwrap()]);
        assert_eq!(lock_stats(&shared).announces_udp, 2);
    }

    #[test]
    fn peers_are_of_the_askers_address_family() {
        let shared = shared();
        announce_from("127.0.0.1:6001", 1, Event::Started, &shared);
        announce_from("[::1]:6002", 1, Event::Started, &shared);
        let v4 = peers_of(announce_from("127.0.0.2:6003", 1, Event::None, &shared));
        assert_eq!(v4, ["127.0.0.1:6001".parse::<SocketAddr>().unwrap()]);
        let v6 = peers_of(announce_from("[::2]:6004", 1, Event::None, &shared));
        assert_eq!(v6, ["[::1]:6002".parse::<SocketAddr>().unwrap()]);
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d: still IPv4.
        let mapped = peers_of(announce_from(
            "[::ffff:127.0.0.3]:6005",
            1,
            Event::None,
            &shared,
        ));
        assert_eq!(mapped.len(), 2, "{mapped:?}");
        assert!(mapped.iter().all(SocketAddr::is_ipv4), "{mapped:?}");
    }

    #[test]
    fn a_connection_id_is_good_only_for_the_address_it_was_given_to() {
        let shared = shared();
        let alice: SocketAddr = "127.0.0.1:6001".parse().unwrap();
        let mallory: SocketAddr = "127.0.0.1:6666".parse().unwrap();
        let id = connect(alice, &shared);
        let stolen = reply(
            &announce_packet(id, 6666, 1, Event::Started),
            mallory,
            &shared,
        );
        assert!(matches!(
            stolen,
            Some(Response::Error {
                transaction_id: 6666,
                ..
            })
        ));
        let forged = reply(
            &announce_packet(12345, 6001, 1, Event::Started),
            alice,
            &shared,
        );
        assert!(matches!(forged, Some(Response::Error { .. })));
        assert!(shared.swarms().peers(&HASH).is_empty(), "neither got in");
        assert_eq!(lock_stats(&shared).bad_requests, 2);
    }

    #[test]
    fn stopped_removes_and_scrape_counts() {
        let shared = shared();
        announce_from("127.0.0.1:6001", 10, Event::Started, &shared);
        announce_from("127.0.0.1:6002", 0, Event::Completed, &shared);
        announce_from("127.0.0.1:6001", 10, Event::Stopped, &shared);
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let request = Request::Scrape {
            connection_id: connect(from, &shared),
            transaction_id: 77,
            info_hashes: vec![HASH, InfoHash([0; 20])],
        };
        let expected = Response::Scrape {
            transaction_id: 77,
            stats: vec![
                ScrapeStats {
                    seeders: 1,
                    completed: 1,
                    leechers: 0,
                },
                ScrapeStats::default(),
            ],
        };
        assert_eq!(reply(&request.encode(), from, &shared), Some(expected));
    }

    #[test]
    fn garbage_is_counted_and_answered_only_when_it_has_a_transaction_id() {
        let shared = shared();
        let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(reply(&[], from, &shared), None);
        assert_eq!(reply(&[0xff; 15], from, &shared), None);
        // connection id (8) | action 9, unknown (4) | transaction 0xabcd (4)
        let unknown_action = [[0; 8].as_slice(), &[0, 0, 0, 9], &[0, 0, 0xab, 0xcd]].concat();
        let answer = reply(&unknown_action, from, &shared);
        assert!(matches!(
            answer,
            Some(Response::Error {
                transaction_id: 0xabcd,
                ..
            })
        ));
        // A scrape of more hashes than fit in a reply.
        let mut big = Request::Scrape {
            connection_id: connect(from, &shared),
            transaction_id: 5,
            info_hashes: vec![HASH; MAX_SCRAPE_HASHES],
        }
        .encode();
        big.extend_from_slice(&[1; 20]);
        assert!(matches!(
            reply(&big, from, &shared),
            Some(Response::Error { .. })
        ));
        // An announce cut short (98 bytes needed).
        let short = &announce_packet(connect(from, &shared), 6001, 1, Event::None)[..60];
        assert!(matches!(
            reply(short, from, &shared),
            Some(Response::Error { .. })
        ));
        let port_zero = announce_packet(connect(from, &shared), 0, 1, Event::None);
        assert!(matches!(
            reply(&port_zero, from, &shared),
            Some(Response::Error { .. })
        ));
        assert_eq!(lock_stats(&shared).bad_requests, 6);
        assert!(shared.swarms().peers(&HASH).is_empty());
    }

    fn lock_stats(shared: &Shared) -> ServerStats {
        *lock(&shared.stats)
    }
}
