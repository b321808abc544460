//! The torrents one listener serves: info hash → that torrent's [`PeerContext`] — BEP 3 ("The
//! BitTorrent Protocol Specification"), whose handshake names the torrent a connection is
//! for — walkthrough §10.
//!
//! ```text
//!   session A starts ──register──►  Swarms  ◄──register── session B starts
//!                                     │ names(), find(info hash)
//!   listener: accept() ──► peer thread: handshake as the receiving side
//!        ──► the info hash the peer sent picks A or B ──► that torrent's scheduler (§7)
//! ```
//!
//! One process may run several torrents on one port, as real clients do. A peer dialling us
//! says in its handshake which torrent it wants; the peer thread that accepted it looks that
//! name up here and serves the torrent it belongs to. A torrent is registered when its session
//! starts and removed when the [`Registration`] is dropped, as its session ends: a handshake
//! for a torrent we never had, or for one that has ended, is refused as any unknown info hash
//! is. A single download is a registry of one.

use super::thread::PeerContext;
use crate::metainfo::InfoHash;
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SwarmsError {
    /// The same torrent twice in one process: both would answer the same peers.
    #[error("the torrent with info hash {0} is already running in this process")]
    Taken(InfoHash),
}

/// The torrents of this process, by name; cheap to clone, every clone the same registry.
#[derive(Clone, Default)]
pub struct Swarms {
    inner: Arc<Mutex<Registered>>,
}

#[derive(Default)]
struct Registered {
    /// Every torrent with the number its registration removes it by.
    torrents: Vec<(u64, PeerContext)>,
    next: u64,
}

/// A torrent's place in [`Swarms`]: dropping it removes the torrent, so a session that ends
/// however it ends (done, failed, a panic unwinding) no longer takes connections.
pub struct Registration {
    swarms: Swarms,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.swarms.lock().torrents.retain(|(id, _)| *id != self.id);
    }
}

impl Swarms {
    pub fn new() -> Swarms {
        Swarms::default()
    }

    /// Adds a torrent under every name of its context (a hybrid has two, BEP 52). Refused if
    /// one of them is already registered.
    pub fn register(&self, context: PeerContext) -> Result<Registration, SwarmsError> {
        let mut registered = self.lock();
        for name in context.info_hashes() {
            if registered.find(&name).is_some() {
                return Err(SwarmsError::Taken(name));
            }
        }
        let id = registered.next;
        registered.next += 1;
        registered.torrents.push((id, context));
        Ok(Registration {
            swarms: self.clone(),
            id,
        })
    }

    /// Every name a peer may ask for now.
    pub fn names(&self) -> Vec<InfoHash> {
        let registered = self.lock();
        registered
            .torrents
            .iter()
            .flat_map(|(_, context)| context.info_hashes())
            .collect()
    }

    /// The torrent a handshake's info hash names, if we serve it.
    pub fn find(&self, info_hash: &InfoHash) -> Option<PeerContext> {
        self.lock().find(info_hash).cloned()
    }

    /// The torrent registered first: what a connection is reported to before its handshake
    /// has said which torrent it is for (our peer id, reserved bits, trace and encryption
    /// are the same for every torrent of one process).
    pub fn first(&self) -> Option<PeerContext> {
        let registered = self.lock();
        registered.torrents.first().map(|(_, c)| c.clone())
    }

    pub fn len(&self) -> usize {
        self.lock().torrents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Registered> {
        // A thread that panicked while holding the lock left the list whole: every change
        // is one `push` or one `retain`.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Registered {
    fn find(&self, info_hash: &InfoHash) -> Option<&PeerContext> {
        self.torrents
            .iter()
            .map(|(_, context)| context)
            .find(|context| context.info_hashes().contains(info_hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::Metainfo;
    use crate::peer::dial::Dialer;
    use crate::peer::encrypted::Encryption;
    use crate::peer_id::PeerId;
    use crate::piece::PieceLayout;
    use crate::storage::Storage;
    use std::time::Duration;

    /// A context for a one-piece torrent named `name`: only its names matter here.
    fn context(name: u8, v2: Option<u8>) -> PeerContext {
        let bytes = [
            &b"d4:infod6:lengthi1e4:name1:"[..],
            &[b'a' + name],
            b"12:piece lengthi16384e6:pieces20:",
            &[0; 20],
            b"ee",
        ]
        .concat();
        // The bytes above are a whole, valid torrent: a failure here is this test's own bug.
        let metainfo = Metainfo::from_bytes(&bytes).expect("a one-piece torrent");
        PeerContext {
            info_hash: InfoHash([name; 20]),
            v2_info_hash: v2.map(|v| InfoHash([v; 20])),
            our_id: PeerId(*b"-PW0001-swarmsswarms"),
            layout: Arc::new(PieceLayout::new(&metainfo.info)),
            storage: Arc::new(Storage::new(Vec::new(), false)),
            events: crossbeam_channel::unbounded().0,
            trace: crate::trace::Trace::Off,
            patient: false,
            silent_limit: Duration::from_secs(1),
            upload_limit: None,
            download_limit: None,
            metadata: None,
            v2_layers: None,
            pex: true,
            listen_port: 6881,
            dht: None,
            dialer: Dialer::tcp(Encryption::Off),
        }
    }

    #[test]
    fn each_name_finds_its_own_torrent() {
        let swarms = Swarms::new();
        let _a = swarms.register(context(1, None)).expect("a registers");
        // A hybrid answers to both its names.
        let _b = swarms.register(context(2, Some(3))).expect("b registers");
        let found = |n: u8| swarms.find(&InfoHash([n; 20])).map(|c| c.info_hash);
        assert_eq!(found(1), Some(InfoHash([1; 20])));
        assert_eq!(found(2), Some(InfoHash([2; 20])));
        assert_eq!(found(3), Some(InfoHash([2; 20])), "the v2 name of b");
        assert_eq!(found(4), None, "a torrent we do not have");
        let mut names = swarms.names();
        names.sort_by_key(|n| n.0);
        assert_eq!(names, [1, 2, 3].map(|n| InfoHash([n; 20])));
        assert_eq!(swarms.first().map(|c| c.info_hash), Some(InfoHash([1; 20])));
    }

    #[test]
    fn a_torrent_that_ended_is_no_longer_found() {
        let swarms = Swarms::new();
        let a = swarms.register(context(1, None)).expect("a registers");
        let b = swarms.register(context(2, None)).expect("b registers");
        assert_eq!(swarms.len(), 2);
        drop(a);
        assert!(swarms.find(&InfoHash([1; 20])).is_none());
        assert!(swarms.find(&InfoHash([2; 20])).is_some(), "b goes on");
        assert_eq!(swarms.first().map(|c| c.info_hash), Some(InfoHash([2; 20])));
        drop(b);
        assert!(swarms.is_empty() && swarms.names().is_empty());
        assert!(swarms.first().is_none());
        // Once ended, the same torrent may start again.
        assert!(swarms.register(context(1, None)).is_ok());
    }

    #[test]
    fn the_same_torrent_twice_is_refused() {
        let swarms = Swarms::new();
        let _a = swarms.register(context(1, Some(9))).expect("a registers");
        let Err(SwarmsError::Taken(name)) = swarms.register(context(1, None)) else {
            panic!("the same info hash registered twice");
        };
        assert_eq!(name, InfoHash([1; 20]));
        // A hybrid's second name counts too.
        assert!(swarms.register(context(5, Some(9))).is_err());
        assert_eq!(swarms.len(), 1);
    }
}
