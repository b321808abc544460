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
//! first, and the TCP listener then takes the same number.

use super::{DownloadOptions, SessionError};
use crate::dht::thread::{Dht, DhtConfig, DhtOptions, DhtSocket};
use crate::utp::socket::{UtpConfig, UtpError, UtpSocket};
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
        let ip = match options.bind {
            IpAddr::V4(ip) => ip,
            // BEP 5's node and our uTP are IPv4: an IPv6 listen address gets them on every
            // IPv4 address.
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        let config = UtpConfig {
            accept: utp,
            krpc: dht.is_some(),
        };
        let bind = |port| UtpSocket::bind(SocketAddr::from(SocketAddrV4::new(ip, port)), config);
        let (socket, mut channels) = match bind(options.port) {
            Err(UtpError::Bind(addr, e))
                if e.kind() == std::io::ErrorKind::AddrInUse && options.port != 0 =>
            {
                log::warn!(
                    "UDP port {} is in use; uTP and the DHT take another",
                    addr.port()
                );
                bind(0)
            }
            result => result,
        }?;
        let dht = match (dht, channels.krpc.take()) {
            (Some(dht), Some(datagrams)) => {
                let config = DhtConfig {
                    bind: SocketAddrV4::new(ip, socket.addr.port()),
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
