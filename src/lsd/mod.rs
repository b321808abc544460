//! Local peer discovery (BEP 14, "Local Service Discovery"): classmates on one network find
//! each other with no tracker and no DHT — walkthrough §20.
//!
//! ```text
//!   session ──names, listen port──► lsd thread ──"BT-SEARCH" announces──► 239.192.152.143:6771
//!   scheduler ◄──peers to dial──── lsd thread ◄──neighbours' announces──┘
//! ```
//!
//! Every client in a swarm sends a small HTTP-like packet to a multicast group: "I am in the
//! swarm of this info hash, dial me on this port". Every client on the network listening to
//! the group hears it, and dials the sender's address. That is the whole protocol:
//! - [`packet`]: the announce's bytes, built and parsed (pure);
//! - [`limits`]: when to announce, and which announces become peers, within bounds (pure);
//! - [`thread`]: the `lsd` thread and its socket.
//!
//! A session runs it unless `--no-lsd` is given or the torrent is private (BEP 27, "Private
//! Torrents": a private torrent's peers come from its tracker only).

pub mod limits;
pub mod packet;
pub mod thread;

pub use packet::{Announce, GROUP};
pub use thread::{Lsd, LsdConfig, LsdError};
