//! The peer side of a session: the channel every peer thread reports on, what every peer
//! thread shares, and the listener that accepts peers dialling us — walkthrough §7, §10.

use super::udp::UdpSide;
use super::{DownloadOptions, SessionError};
use crate::metainfo::Metainfo;
use crate::peer::dial::Dialer;
use crate::peer::listener::Listener;
use crate::peer::state::PieceLayers;
use crate::peer::swarms::{Registration, Swarms};
use crate::peer::thread::{DhtLink, PeerContext};
use crate::peer::upload::RateLimit;
use crate::peer_id::PeerId;
use crate::piece::PieceLayout;
use crate::storage::Storage;
use crate::utp::stream::UtpStream;
use crossbeam_channel::{Receiver, Sender};
use std::net::SocketAddr;
use std::sync::Arc;

/// The peer side of a session: the channel every peer thread reports on, how to start one,
/// and the listener.
pub(super) struct PeerSide {
    pub(super) context: PeerContext,
    pub(super) events: (Sender<crate::events::Event>, Receiver<crate::events::Event>),
    /// Our own listener, or `None` when the process's shared one serves us too.
    pub(super) listener: Option<Listener>,
    /// Our torrent's place among those the listener serves.
    registration: Registration,
    /// Where the listener really is (the port we announce).
    pub(super) port: u16,
    pub(super) layout: Arc<PieceLayout>,
    pub(super) storage: Arc<Storage>,
}

impl PeerSide {
    pub(super) fn start(
        metainfo: &Metainfo,
        options: &DownloadOptions,
        storage: &Arc<Storage>,
        layout: &Arc<PieceLayout>,
        our_id: PeerId,
        udp: Option<&UdpSide>,
        shared: Option<&super::Shared>,
    ) -> Result<PeerSide, SessionError> {
        // BEP 27: a private torrent never uses the DHT, not even the node other torrents of
        // the process share.
        let dht = udp
            .and_then(|udp| udp.dht.as_ref())
            .filter(|_| options.dht.is_some() && !metainfo.info.private);
        let events = crossbeam_channel::unbounded();
        let context = PeerContext {
            info_hash: metainfo.info_hash,
            v2_info_hash: metainfo
                .v2
                .as_ref()
                .map(|v2| v2.info_hash.truncated())
                .filter(|v2| *v2 != metainfo.info_hash),
            our_id,
            layout: Arc::clone(layout),
            storage: Arc::clone(storage),
            events: events.0.clone(),
            trace: options.trace.clone(),
            patient: options.debug_single_peer,
            silent_limit: options.peer_timeout,
            upload_limit: options.max_upload_rate.map(|r| Arc::new(RateLimit::new(r))),
            download_limit: options
                .max_download_rate
                .map(|r| Arc::new(RateLimit::new(r))),
            metadata: Some(Arc::clone(&metainfo.info_bytes)),
            v2_layers: metainfo
                .v2
                .as_ref()
                .and_then(|v2| PieceLayers::from_v2(v2, metainfo.info.piece_length))
                .map(Arc::new),
            pex: !metainfo.info.private,
            listen_port: 0,
            dialer: Dialer {
                transport: options.transport,
                encryption: options.encryption,
                utp: udp
                    .filter(|_| options.transport.allows_utp())
                    .map(|udp| udp.socket.dialer()),
            },
            dht: dht.map(|dht| DhtLink {
                commands: dht.commands(),
                port: dht.addr.port(),
            }),
        };
        // Every session listens, `download_piece` and `--debug-single-peer` too: the port we
        // announce is handed to every peer that asks the tracker, so it must answer. (Under
        // `--debug-single-peer` the scheduler still keeps one peer: it may be one that dialled
        // us, and the others are refused.)
        // TCP listens on the UDP socket's port number (uTP, the DHT), as real clients do.
        let (listener, swarms, port) = match shared {
            Some(shared) => {
                let net = shared.net();
                (None, net.swarms.clone(), shared.port())
            }
            None => {
                let port = udp.map_or(options.port, UdpSide::port);
                let incoming = udp.and_then(|udp| udp.incoming.clone());
                // A registry of one: the listener serves this torrent alone.
                let swarms = Swarms::new();
                let max_live = options.max_peers + 16;
                let listener = listen(options, port, max_live, &swarms, incoming)?;
                let port = listener.addr.port();
                (Some(listener), swarms, port)
            }
        };
        let mut context = context;
        // Every incoming peer hears the port in our extended handshake (`p`), so it can give
        // our address to others (PEX).
        context.listen_port = port;
        let registration = swarms
            .register(context.clone())
            .map_err(SessionError::Swarms)?;
        Ok(PeerSide {
            context,
            events,
            port,
            listener,
            registration,
            layout: Arc::clone(layout),
            storage: Arc::clone(storage),
        })
    }

    pub(super) fn stop(self) {
        // No new connection for this torrent from now on, whoever else the listener serves.
        drop(self.registration);
        if let Some(listener) = self.listener {
            listener.stop();
        }
    }
}

/// Starts the listener on `--port`; if another program holds that port, on any free port
/// (the tracker is told the port we really got).
pub(super) fn listen(
    options: &DownloadOptions,
    port: u16,
    max_live: usize,
    swarms: &Swarms,
    utp: Option<Receiver<UtpStream>>,
) -> Result<Listener, SessionError> {
    let bind = SocketAddr::new(options.bind, port);
    let tcp = options.transport.allows_tcp();
    match Listener::spawn(bind, swarms.clone(), max_live, tcp, utp.clone()) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 => {
            let any = SocketAddr::new(options.bind, 0);
            let listener = Listener::spawn(any, swarms.clone(), max_live, tcp, utp)
                .map_err(|e| SessionError::Listen(any, e))?;
            log::warn!(
                "port {} is in use; listening on {} instead",
                port,
                listener.addr
            );
            Ok(listener)
        }
        result => result.map_err(|e| SessionError::Listen(bind, e)),
    }
}
