//! The session's UDP socket on the listen port, which uTP (BEP 29, "uTorrent transport
//! protocol") and the DHT (BEP 5, "DHT Protocol") share — walkthrough §17.
//!
//! ```text
//!   UtpSocket (the `utp` thread) ──KRPC──► Dht (the `dht` thread, sends on the same socket)
//!        │ accepted streams ──► the listener's `listener utp` thread ──► peer threads
//!        └ UtpDialer ──► every peer thread that dials (`peer/dial.rs`)
//! ```
//!
//! Real clients use one port number for everything: TCP and UDP. The UDP socket is bound
//! first, and the TCP listener then takes the same number. On the default `--bind ::` both
//! are dual-stack: uTP reaches IPv4 and IPv6 peers through the one UDP socket, and the DHT
//! node, IPv4 only (BEP 5), sends to its nodes' IPv4-mapped addresses there.

use super::{DownloadOptions, SessionError};
use crate::dht::thread::{Dht, DhtConfig, DhtOptions, DhtSocket};
use crate::utp::socket::{UtpChannels, UtpConfig, UtpError, UtpSocket};
use crate::utp::stream::UtpStream;
use crossbeam_channel::Receiver;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

pub(super) struct UdpSide {
    pub(super) socket: UtpSocket,
    /// Streams dialled to us, for the listener (`None` under `--transport tcp`).
    pub(super) incoming: Option<Receiver<UtpStream>>,
    pub(super) dht: Option<Dht>,
}

impl UdpSide {
    /// Binds the socket when uTP or the DHT needs it (`None`: neither does), and starts the
    /// DHT node on it.
    pub(super) fn start(
        options: &DownloadOptions,
        dht: Option<&DhtOptions>,
    ) -> Result<Option<UdpSide>, SessionError> {
        let utp = options.transport.allows_utp();
        if !utp && dht.is_none() {
            return Ok(None);
        }
        // The DHT node is IPv4 (BEP 5's compact node info is 6 bytes): on an IPv6 `--bind`
        // it still speaks to IPv4 nodes when the socket is the dual-stack `[::]`, and says
        // which address it is on as `0.0.0.0`.
        let dht_ip = match options.bind {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        let config = UtpConfig {
            accept: utp,
            krpc: dht.is_some(),
        };
        let (socket, mut channels) = bind_or_another_port(options.bind, options.port, config)?;
        let dht = match (dht, channels.krpc.take()) {
            (Some(dht), Some(datagrams)) => {
                let config = DhtConfig {
                    bind: SocketAddrV4::new(dht_ip, socket.addr.port()),
                    options: dht.clone(),
                    read_only: false,
                };
                let shared = DhtSocket::Shared {
                    socket: socket.sender(),
                    datagrams,
                };
                Some(Dht::start_on(config, shared)?)
            }
            _ => None,
        };
        Ok(Some(UdpSide {
            socket,
            incoming: channels.incoming,
            dht,
        }))
    }

    /// The port both sockets share.
    pub(super) fn port(&self) -> u16 {
        self.socket.addr.port()
    }

    /// Ends the DHT node (it writes `--dht-state`), then the `utp` thread.
    pub(super) fn stop(self) {
        if let Some(dht) = self.dht {
            dht.stop();
        }
        self.socket.stop();
    }
}

/// Binds `ip:port` (port 0: any); a taken `--port` gives way to any free one. (Where the
/// system has no IPv6, `UtpSocket::bind` itself turns the default `[::]` into `0.0.0.0`.)
fn bind_or_another_port(
    ip: IpAddr,
    port: u16,
    config: UtpConfig,
) -> Result<(UtpSocket, UtpChannels), UtpError> {
    match UtpSocket::bind(SocketAddr::new(ip, port), config) {
        Err(UtpError::Bind(addr, e)) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 => {
            log::warn!(
                "UDP port {} is in use; uTP and the DHT take another",
                addr.port()
            );
            bind_or_another_port(ip, 0, config)
        }
        result => result,
    }
}
