//! The `lsd` thread: the multicast socket of local peer discovery (BEP 14, "Local Service
//! Discovery") — walkthrough §20.
//!
//! ```text
//!   session ──LsdConfig──► lsd thread ──Announce::to_bytes──► 239.192.152.143:6771
//!                              ▲                                   │ (every neighbour's
//!                              └──datagrams: Announce::parse ◄─────┘  lsd socket, and ours)
//!                              └──Intake::consider──peers──► the scheduler (like the DHT's)
//! ```
//!
//! The socket is bound to the group's address and port with `SO_REUSEADDR`, so that every
//! BitTorrent client on the machine can listen on it too, and multicast loopback is on, so
//! that two of them on one machine hear each other; our own packets come back as well and
//! are told apart by their cookie. The thread wakes every [`TICK`] to see whether it must
//! stop or announce.

use super::limits::{Intake, Schedule, Verdict};
use super::packet::{Announce, GROUP, MAX_PACKET};
use crate::metainfo::InfoHash;
use crossbeam_channel::{Receiver, Sender, unbounded};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The longest the thread waits on its socket before it looks at the stop flag and the
/// schedule again.
pub const TICK: Duration = Duration::from_millis(200);

/// Hops an announce may travel. One: the link we are on. BEP 14's groups are wider, but
/// classmates share a link, and a packet naming our torrents has no business beyond it.
const TTL: u32 = 1;

#[derive(Debug, Error)]
pub enum LsdError {
    #[error("cannot open the LSD socket at {GROUP}: {0}")]
    Socket(std::io::Error),
    #[error("cannot join the LSD group {GROUP} on the interface of {interface}: {error}")]
    Join {
        interface: Ipv4Addr,
        error: std::io::Error,
    },
    #[error("cannot start the lsd thread: {0}")]
    Thread(std::io::Error),
}

/// What to announce and where.
#[derive(Debug, Clone)]
pub struct LsdConfig {
    /// The names of our torrent (a hybrid has two: BEP 52).
    pub info_hashes: Vec<InfoHash>,
    /// Our BitTorrent listen port: where neighbours dial us. 0: we do not know it yet (a
    /// magnet link's look-up under `--port 0`), so we only listen: an announce of port 0
    /// would be refused by every reader.
    pub port: u16,
    /// The address of the interface to announce and listen on (`0.0.0.0`: the one the
    /// routing table picks for the group).
    pub interface: Ipv4Addr,
}

/// The running `lsd` thread. Peers it hears arrive on `peers`, a few at a time.
pub struct Lsd {
    pub peers: Receiver<Vec<SocketAddr>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Lsd {
    /// Opens the socket, joins the group and starts the thread, which announces at once.
    pub fn start(config: LsdConfig) -> Result<Lsd, LsdError> {
        let socket = open_socket(config.interface)?;
        let (found, peers) = unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("lsd".into())
            .spawn(move || run(socket, config, found, flag))
            .map_err(LsdError::Thread)?;
        Ok(Lsd {
            peers,
            stop,
            thread,
        })
    }

    /// Stops the thread (within a [`TICK`]) and waits for it.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            log::error!("the lsd thread panicked");
        }
    }
}

/// The group's socket: shared with the machine's other clients, looped back, one hop.
fn open_socket(interface: Ipv4Addr) -> Result<UdpSocket, LsdError> {
    let socket =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(LsdError::Socket)?;
    socket.set_reuse_address(true).map_err(LsdError::Socket)?;
    // Bound to the group's address, not 0.0.0.0: only datagrams sent to the group arrive.
    let group = SocketAddr::V4(GROUP);
    socket.bind(&group.into()).map_err(LsdError::Socket)?;
    let join = |error| LsdError::Join { interface, error };
    socket
        .join_multicast_v4(GROUP.ip(), &interface)
        .map_err(join)?;
    if !interface.is_unspecified() {
        socket.set_multicast_if_v4(&interface).map_err(join)?;
    }
    socket
        .set_multicast_loop_v4(true)
        .map_err(LsdError::Socket)?;
    socket.set_multicast_ttl_v4(TTL).map_err(LsdError::Socket)?;
    socket
        .set_read_timeout(Some(TICK))
        .map_err(LsdError::Socket)?;
    Ok(socket.into())
}

/// The thread's loop: announce when due, read what neighbours say, hand over the peers.
fn run(
    socket: UdpSocket,
    config: LsdConfig,
    found: Sender<Vec<SocketAddr>>,
    stop: Arc<AtomicBool>,
) {
    // Random, so that two peerwires on one machine do not take each other for themselves.
    let cookie = format!("{:08x}", fastrand::u32(..));
    let packets: Vec<Vec<u8>> = config
        .info_hashes
        .iter()
        .filter(|_| config.port != 0)
        .map(|&h| Announce::for_torrent(h, config.port, &cookie).to_bytes())
        .collect();
    let mut schedule = Schedule::new(Instant::now());
    let mut intake = Intake::new(config.info_hashes.clone(), cookie);
    let mut send_failed = false;
    // One byte more than the longest announce: a longer datagram is cut to this and then
    // refused as too long, instead of parsing what was cut.
    let mut buffer = [0u8; MAX_PACKET + 1];
    log::info!(
        "LSD: announcing port {} on {GROUP} (interface {})",
        config.port,
        config.interface
    );
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if schedule.is_due(now) {
            for packet in &packets {
                // [W20.5] One datagram per name of the torrent, to the group: every client on
                // the link that joined it hears this, our own socket too (loopback is on).
                if let Err(e) = socket.send_to(packet, GROUP) {
                    // No route to the group (no network yet, or none with multicast): say so
                    // once, and try again at the next announce; what we hear still counts.
                    match send_failed {
                        false => log::warn!("LSD: cannot announce on {GROUP}: {e}"),
                        true => log::debug!("LSD: cannot announce on {GROUP}: {e}"),
                    }
                    send_failed = true;
                }
            }
            schedule.sent(now);
        }
        let (len, from) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => {
                // An error from the socket itself (not from a sender): wait a tick rather
                // than spin on it.
                log::debug!("LSD: receive failed: {e}");
                std::thread::park_timeout(TICK);
                continue;
            }
        };
        let announce = Announce::parse(&buffer[..len]);
        if let Err(e) = &announce {
            log::debug!("LSD: {from} sent a datagram that is no announce: {e}");
        }
        match intake.consider(from, announce.as_ref().ok(), now) {
            Verdict::Peer { peer, new } => {
                if new {
                    log::info!("LSD: {peer} is in the swarm (announced from {from})");
                    schedule.heard_new_neighbour(now);
                }
                if found.send(vec![peer]).is_err() {
                    break; // the session is gone
                }
            }
            Verdict::Own | Verdict::NotOurs | Verdict::Repeat(_) => {}
            other => log::debug!("LSD: {from} ignored: {other:?}"),
        }
    }
}
