//! The session's local peer discovery (BEP 14, "Local Service Discovery"): which interface,
//! and what to do when the network has no multicast — walkthrough §20.
//!
//! ```text
//!   session ──names, listen port, --bind──► Lsd::start ──peers──► the scheduler
//! ```
//!
//! LSD is a bonus beside the trackers and the DHT: when it cannot start, the download goes
//! on without it and a warning says why.

use crate::lsd::{Lsd, LsdConfig};
use crate::metainfo::InfoHash;
use std::net::{IpAddr, Ipv4Addr};

/// Starts the `lsd` thread for the torrent's `names` and our listen `port`, on the interface
/// of `bind` (every interface's default: the one the routing table picks for the group).
pub fn start(names: &[InfoHash], port: u16, bind: IpAddr) -> Option<Lsd> {
    let interface = match bind {
        // Nobody on the network can dial a loopback address: nothing to announce.
        ip if ip.is_loopback() => {
            log::info!("LSD: off, we listen on {ip} only");
            return None;
        }
        IpAddr::V4(ip) => ip,
        // `::` listens on IPv4 too. BEP 14's IPv6 group is not implemented: announce over
        // IPv4, as the DHT does. (An IPv6 address alone cannot be dialled over IPv4: off.)
        IpAddr::V6(ip) if ip.is_unspecified() => Ipv4Addr::UNSPECIFIED,
        IpAddr::V6(ip) => {
            log::info!("LSD: off, we listen on {ip} only (LSD here is IPv4)");
            return None;
        }
    };
    let config = LsdConfig {
        info_hashes: names.to_vec(),
        port,
        interface,
    };
    match Lsd::start(config) {
        Ok(lsd) => Some(lsd),
        Err(e) => {
            log::warn!("no local peer discovery: {e}");
            None
        }
    }
}
