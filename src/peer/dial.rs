//! Dialling a peer: over which transport, TCP or uTP (BEP 29, "uTorrent transport protocol"),
//! and in which order — walkthrough §17.
//!
//! ```text
//!   Connection::open ──► Dialer::routes() ──► TCP ──(refused, or hung up before the
//!                                                    handshake)──► uTP over the shared
//!                                                                  UDP socket (`utp/`)
//!   each route: plain handshake, or MSE/PE first (`encrypted.rs`), as `--encryption` says
//! ```
//!
//! `--transport both` (the default) dials TCP first and falls back to uTP. libtorrent does the
//! opposite (uTP first, TCP after) to be gentle on home links: uTP yields to other traffic.
//! peerwire measured the other order better for its users: a TCP peer that is not there
//! answers at once (a refused connection), while a uTP SYN to a peer that does not speak uTP
//! gets no answer at all and costs the whole SYN timeout; and on a fast path our uTP, a
//! user-space protocol, moves bytes more slowly than the kernel's TCP (docs/performance.md).
//! A peer that speaks only uTP refuses TCP, and is reached over uTP a moment later.

use super::stream::PeerStream;
use crate::peer::encrypted::Encryption;
use crate::utp::socket::UtpDialer;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `--transport`: which transports to dial and accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    Tcp,
    Utp,
    /// TCP first, then uTP; both accepted.
    #[default]
    Both,
}

impl Transport {
    pub fn allows_tcp(self) -> bool {
        self != Transport::Utp
    }

    pub fn allows_utp(self) -> bool {
        self != Transport::Tcp
    }
}

/// One way to reach a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Tcp,
    Utp,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Route::Tcp => "TCP",
            Route::Utp => "uTP",
        })
    }
}

/// Everything a peer thread needs to open a connection: the transports, and the policy for
/// hiding it.
#[derive(Clone, Default)]
pub struct Dialer {
    pub transport: Transport,
    pub encryption: Encryption,
    /// The session's uTP socket; `None` when uTP is off (or for a command that has none).
    pub utp: Option<UtpDialer>,
}

impl Dialer {
    /// TCP only: the teaching commands (`handshake`, …) that show BEP 3 as written.
    pub fn tcp(encryption: Encryption) -> Dialer {
        Dialer {
            transport: Transport::Tcp,
            encryption,
            utp: None,
        }
    }

    /// The routes to try, in order (see the module doc for why TCP comes first).
    pub fn routes(&self) -> Vec<Route> {
        let mut routes = Vec::new();
        if self.transport.allows_tcp() {
            routes.push(Route::Tcp);
        }
        if self.transport.allows_utp() && self.utp.is_some() {
            routes.push(Route::Utp);
        }
        routes
    }

    /// A fresh stream to `addr` over `route`, waiting at most `timeout` for it to open.
    pub fn connect(
        &self,
        route: Route,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<Box<dyn PeerStream>> {
        match (route, &self.utp) {
            (Route::Tcp, _) => {
                // Without a deadline, an address that drops our packets (a firewall, a peer
                // long gone) would hold the thread for the system's own limit: minutes.
                let stream = TcpStream::connect_timeout(&addr, timeout)?;
                // Small messages (a request, a have) go out at once rather than be batched.
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
            (Route::Utp, Some(utp)) => Ok(Box::new(utp.connect(addr, timeout)?)),
            (Route::Utp, None) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "uTP is not running in this command",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_comes_first_and_utp_needs_a_socket() {
        let mut dialer = Dialer::default();
        assert_eq!(dialer.routes(), vec![Route::Tcp], "no socket, no uTP");
        dialer.transport = Transport::Utp;
        assert!(dialer.routes().is_empty());
        assert_eq!(Dialer::tcp(Encryption::Off).routes(), vec![Route::Tcp]);
    }
}
