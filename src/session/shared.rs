//! What several torrents of one process share: one listener (TCP, and uTP on the UDP socket),
//! one UDP socket, one DHT node (BEP 5, "DHT Protocol") and one `tracker` thread that
//! announces them all (BEP 3, "The BitTorrent Protocol Specification", trackers) — walkthrough §10.
//!
//! ```text
//!   Shared::start ── UDP socket (uTP, KRPC) + DHT node + listener, all on one port
//!        │ Swarms: info hash → torrent
//!   download(A) ──register A──┐        download(B) ──register B──┐
//!                             ▼                                   ▼
//!   a peer dials the port ──► handshake names A or B ──► A's or B's scheduler
//! ```
//!
//! Real clients run all their torrents on one port: a tracker or the DHT hands that one port
//! to every swarm, and the info hash in each incoming handshake (BEP 3) says which torrent
//! the peer wants. A session given a [`Shared`] (`DownloadOptions::shared`) registers its
//! torrent there instead of binding its own sockets, tells the one DHT node to track its
//! names, adds its announce jobs to the one tracker thread instead of starting its own, and
//! unregisters (and leaves the tracker thread, after `stopped`) when it ends; the last to end
//! is followed by [`Shared::stop`].

use super::peer_side::listen;
use super::udp::UdpSide;
use super::{DownloadOptions, SessionError};
use crate::peer::listener::Listener;
use crate::peer::swarms::Swarms;
use crate::tracker::announcer::TrackerThread;
use std::sync::Arc;

/// The sockets and the DHT node of a process that runs several torrents; every clone is the
/// same. Stopped with [`Shared::stop`] once every session that used it has ended.
#[derive(Clone)]
pub struct Shared(Arc<Net>);

pub(super) struct Net {
    pub(super) udp: Option<UdpSide>,
    pub(super) listener: Listener,
    pub(super) swarms: Swarms,
    /// Announces every torrent of the process, one job per info hash.
    pub(super) tracker: TrackerThread,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared(port {})", self.port())
    }
}

impl Shared {
    /// Binds the UDP socket (when uTP or the DHT wants it; the DHT node starts on it) and the
    /// TCP listener on the same port number, as a single session does, with room for
    /// `torrents` times `--max-peers` incoming connections.
    pub fn start(options: &DownloadOptions, torrents: usize) -> Result<Shared, SessionError> {
        // First: should a socket below fail, dropping it ends the thread (it has no job).
        let tracker = TrackerThread::start().map_err(SessionError::Thread)?;
        let udp = UdpSide::start(options, options.dht.as_ref())?;
        let port = udp.as_ref().map_or(options.port, UdpSide::port);
        let incoming = udp.as_ref().and_then(|udp| udp.incoming.clone());
        let swarms = Swarms::new();
        let max_live = options.max_peers.saturating_mul(torrents.max(1)) + 16;
        let listener = listen(options, port, max_live, &swarms, incoming)?;
        Ok(Shared(Arc::new(Net {
            udp,
            listener,
            swarms,
            tracker,
        })))
    }

    /// The port every torrent announces: the listener's (the UDP socket has the same number
    /// unless another program held it).
    pub fn port(&self) -> u16 {
        self.0.listener.addr.port()
    }

    pub(super) fn net(&self) -> &Net {
        &self.0
    }

    /// Stops the tracker thread (every session has removed its jobs by now), the listener,
    /// then the DHT node (it writes `--dht-state`) and the UDP socket.
    /// Called once every session has ended: if a clone is still alive somewhere, the sockets
    /// are left to the end of the process, with a warning.
    pub fn stop(self) {
        match Arc::try_unwrap(self.0) {
            Ok(net) => {
                net.tracker.stop();
                net.listener.stop();
                if let Some(udp) = net.udp {
                    udp.stop();
                }
            }
            Err(_) => log::warn!("the shared listener is still in use; not stopped"),
        }
    }
}
