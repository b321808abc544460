//! Who we are connected to, and whom to dial next — walkthrough §8, §10.
//!
//! The scheduler's bookkeeping of connections: addresses from the tracker (and `--peer`) become
//! *candidates*; a due candidate is dialled while we are under `--max-peers`; a connection that
//! ends is retried later with back-off, unless it was banned, was a seed like us, or dialled us
//! (its address is an outgoing port of the other side, not a place to call back).

use super::Scheduler;
use super::snapshot::PeerSource;
use crate::events::Command;
use crate::peer_id::PeerId;
use crate::piece::BlockRequest;
use crate::wire::Bitfield;
use crossbeam_channel::Sender;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Addresses remembered with their peer id (see `Scheduler::ids_by_addr`).
const MAX_REMEMBERED_ADDRS: usize = 10_000;
/// Connection attempts to one address before we give up on it.
const MAX_CONNECT_FAILURES: u32 = 5;

/// What the scheduler knows about one connection.
pub(super) struct PeerEntry {
    /// `None` until the handshake is done.
    pub commands: Option<Sender<Command>>,
    /// From its handshake: what its traffic is counted under, and how a duplicate
    /// connection to the same peer is found.
    pub peer_id: Option<PeerId>,
    /// It dialled us: its address is an outgoing port, not one to dial back.
    pub incoming: bool,
    /// Its pieces (bitfield, then `have`s): what `pick_for` may ask of it.
    pub bitfield: Bitfield,
    /// Pieces it alone sent that failed the hash check (see `MAX_STRIKES`).
    pub strikes: u32,
    /// It said `interested`.
    pub interested: bool,
    /// We unchoke it.
    pub unchoked: bool,
    /// For the choker: new peers are favoured in the optimistic draw, and none is called
    /// snubbing before it has had a minute.
    pub connected_at: Instant,
    /// When it last sent us a block.
    pub last_block: Instant,
    /// Bytes of blocks it sent us / we sent it on this connection.
    pub downloaded: u64,
    pub uploaded: u64,
    /// `(downloaded, uploaded)` when the last choke round started: the round's rates.
    pub round_start: (u64, u64),
    /// Where it can be dialled: the address we dialled, or its IP and the port from its
    /// extended handshake (for `ut_pex`).
    pub listen_addr: Option<SocketAddr>,
    /// Closed on purpose (we are both seeds, or it was refused): not to be dialled again.
    pub finished: bool,
    /// Pieces it suggested (BEP 6 `suggest_piece`), newest last: tried first when it has them.
    pub suggested: Vec<u32>,
    /// Pieces it refused to serve while it unchoked us (BEP 6 `reject_request`): not asked of
    /// it again on this connection, so a refusal cannot turn into a request/reject loop.
    pub refused: Vec<u32>,
    /// For the web view only: where we learned of it, its `v` (BEP 10), whether it
    /// unchokes us.
    pub source: PeerSource,
    pub client: Option<String>,
    pub transport: Option<String>,
    pub unchokes_us: bool,
}

impl PeerEntry {
    fn new(num_pieces: usize, incoming: bool) -> PeerEntry {
        // Both clocks start now: a new peer has not snubbed us before it had the chance.
        let now = Instant::now();
        PeerEntry {
            commands: None,
            peer_id: None,
            incoming,
            bitfield: Bitfield::new(num_pieces),
            strikes: 0,
            interested: false,
            unchoked: false,
            connected_at: now,
            last_block: now,
            downloaded: 0,
            suggested: Vec::new(),
            refused: Vec::new(),
            uploaded: 0,
            round_start: (0, 0),
            listen_addr: None,
            finished: false,
            source: PeerSource::Incoming,
            client: None,
            transport: None,
            unchokes_us: false,
        }
    }
}

/// An address to (re)connect to, and when.
pub(super) struct Candidate {
    /// Not dialled before this (the back-off of `retry_later`).
    next_try: Instant,
    /// Failed dials in a row; a connection that worked starts it over.
    failures: u32,
    /// Where we learned of it (the first source that named it), for the web view.
    source: PeerSource,
}

impl Scheduler {
    /// An address to dial, given by the session (`--peer`).
    pub fn add_peer(&mut self, addr: SocketAddr) {
        self.add_peer_from(addr, PeerSource::Given);
    }

    /// An address to dial, and where we learned of it.
    pub fn add_peer_from(&mut self, addr: SocketAddr, source: PeerSource) {
        // The tracker lists the same addresses at every announce: the ones we ruled out are
        // dropped here, and connected ones need no candidate.
        let known = self.banned.contains(&addr) || self.not_again.contains(&addr);
        if !known && !self.peers.contains_key(&addr) {
            // `or_insert`: a candidate already waiting keeps its back-off; an address listed
            // again must not be dialled sooner for it.
            self.candidates.entry(addr).or_insert(Candidate {
                next_try: Instant::now(),
                failures: 0,
                source,
            });
        }
    }

    /// A handshake is done. The peer thread waits for our pieces (or `Stop`): refused if we
    /// already have `--max-peers` peers, or a better connection to the same peer id.
    pub(super) fn connected(
        &mut self,
        peer: SocketAddr,
        peer_id: PeerId,
        incoming: bool,
        commands: Sender<Command>,
    ) {
        // Only an incoming connection can overfill us: an outgoing one took its slot when we
        // dialled (`connect_more`).
        let full = incoming && self.connected_count() >= self.settings.max_peers;
        // A banned address that dials us is refused here, like a peer that finds us full.
        let refuse = if self.keep_existing_connection(peer_id, incoming) {
            Some("already connected")
        } else if self.banned.contains(&peer) {
            Some("banned")
        } else if full {
            Some("too many peers")
        } else {
            None
        };
        if let Some(why) = refuse {
            log::info!("{peer}: refused ({why})");
            // The peer thread waits for its first command; if it gave up waiting (or died),
            // there is nobody left to refuse.
            let _ = commands.send(Command::Stop);
            if let Some(entry) = self.peers.get_mut(&peer) {
                entry.finished = true; // not to be dialled again
            }
            // Dialled again, it would only be refused again.
            self.not_again.insert(peer);
            return;
        }
        log::info!("{peer}: connected, peer id {peer_id}");
        // The peer thread waits for this before its first message (our bitfield). If it
        // gave up waiting meanwhile, its `Disconnected` follows and cleans up.
        let _ = commands.send(Command::OurPieces(self.ours.clone()));
        let num_pieces = self.layout.num_pieces();
        let entry = self
            .peers
            .entry(peer)
            .or_insert_with(|| PeerEntry::new(num_pieces, incoming));
        // A fresh entry even over the one our dial made: the connection's clocks and counts
        // start with its handshake. An address we dialled is one others can dial too; an
        // incoming peer's listen address comes later, with its `ListenPort`.
        // Where we learned of it survives the fresh start (set by `connect_more`).
        let source = entry.source;
        *entry = PeerEntry {
            commands: Some(commands),
            peer_id: Some(peer_id),
            listen_addr: (!incoming).then_some(peer),
            source,
            ..PeerEntry::new(num_pieces, incoming)
        };
        // Bounded: a peer reconnecting without end must not grow it for ever; forgetting old
        // addresses only costs the credit of a piece in flight when one reconnected.
        if self.ids_by_addr.len() >= MAX_REMEMBERED_ADDRS {
            self.ids_by_addr.clear();
        }
        self.ids_by_addr.insert(peer, peer_id);
        // The summary names a peer by its latest address.
        if let Some(t) = self.traffic_of(peer) {
            t.addr = peer;
        }
        // Read by the progress line, and by the tracker reporter: with no peer at all it asks
        // the tracker for more before the next interval.
        self.progress.peers = self.connected_count();
    }

    /// Two peers that dial each other at the same moment get two connections, and each side
    /// sees the other's as a duplicate. Both must keep the *same* one, or they end with none:
    /// the one dialled by the peer with the lower peer id wins (libtorrent decides alike).
    /// Returns whether the existing connection stays (and the new one is refused).
    fn keep_existing_connection(&mut self, peer_id: PeerId, incoming: bool) -> bool {
        // By peer id, not address: the same peer behind two addresses (it dialled us from
        // some port, we dialled the port it listens on).
        let Some((&old, entry)) = self.peers.iter().find(|(_, e)| e.peer_id == Some(peer_id))
        else {
            return false;
        };
        // Both sides compute the same answer from the same two ids, without a word to each
        // other: the winner is the connection the lower id dialled.
        let new_dialled_by_us = !incoming;
        let we_win = self.settings.our_id.0 < peer_id.0;
        // Same direction twice (it dialled us twice, say): the older connection stays.
        if entry.incoming == incoming || new_dialled_by_us != we_win {
            return true;
        }
        log::debug!("{old}: replaced by a connection to the same peer id");
        if let Some(commands) = &entry.commands {
            // If its thread has ended already nobody reads this; either way its
            // `Disconnected` finds no entry (removed below), like a connection never counted.
            let _ = commands.send(Command::Stop);
        }
        // Removed now, not when its `Disconnected` comes: the peer's pieces must not count
        // twice in the availability once the new connection's bitfield arrives.
        if let Some(old_entry) = self.peers.remove(&old) {
            self.picker.peer_left(&old_entry.bitfield);
        }
        self.not_again.insert(old);
        false
    }

    /// Connections past their handshake: a dial still connecting has no command channel.
    pub(super) fn connected_count(&self) -> usize {
        self.peers.values().filter(|p| p.commands.is_some()).count()
    }

    pub(super) fn disconnected(
        &mut self,
        peer: SocketAddr,
        reason: &str,
        outstanding: &[BlockRequest],
    ) {
        // First, even for a connection never counted: its requests go back to the pool,
        // and a piece kept for it alone (a suspect piece, `picker.rs`) is open to all again.
        self.picker.release(peer, outstanding);
        // And whatever the picker still has this peer down for: a peer thread that crashed
        // reports no list at all.
        self.picker.release_all(peer);
        self.picker.forget_owner(peer);
        let Some(entry) = self.peers.remove(&peer) else {
            log::info!("{peer}: closed: {reason}");
            return; // a refused connection, never counted
        };
        log::info!("{peer}: disconnected: {reason}");
        // Its pieces are one copy rarer now: rarest-first must know.
        self.picker.peer_left(&entry.bitfield);
        // Its upload slot, if it had one, goes to a peer that waits, not to the next round.
        if entry.unchoked {
            self.fill_free_slots();
        }
        let dial_again = !entry.incoming && !entry.finished && !self.banned.contains(&peer);
        if dial_again {
            // `commands` is set once the handshake worked: a connection that lived, rather
            // than a dial that failed.
            self.retry_later(peer, entry.commands.is_some(), entry.source);
        } else {
            self.candidates.remove(&peer);
        }
        self.progress.peers = self.connected_count();
    }

    /// A peer that could not be reached is retried after 1, 2, 4, 8 and 16 s, then given up;
    /// one that was connected and left is tried again after 5 s.
    fn retry_later(&mut self, peer: SocketAddr, was_connected: bool, source: PeerSource) {
        let candidate = self.candidates.entry(peer).or_insert(Candidate {
            next_try: Instant::now(),
            failures: 0,
            source,
        });
        candidate.failures = if was_connected {
            0
        } else {
            candidate.failures + 1
        };
        // Doubling: a peer down for a moment is tried again soon, and one that is gone
        // costs six dials over half a minute, not one a second for ever. A peer that
        // closed on us gets a pause, so a restarting client is not hammered.
        let wait = if was_connected {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(1 << (candidate.failures - 1).min(4))
        };
        candidate.next_try = Instant::now() + wait;
        // Given up, but not ruled out: if the tracker lists it again, it is a new candidate.
        if candidate.failures > MAX_CONNECT_FAILURES {
            self.candidates.remove(&peer);
        }
    }

    pub(super) fn collect_new_peers(&mut self) {
        // Never waits: the announcer sends one list per announce, the DHT one per answer
        // that named peers; we take what is there.
        let found: Vec<(SocketAddr, PeerSource)> = self
            .new_peers
            .iter()
            .flat_map(|(channel, source)| channel.try_iter().flatten().map(|a| (a, *source)))
            .collect();
        found
            .into_iter()
            .for_each(|(addr, source)| self.add_peer_from(addr, source));
    }

    /// Starts connections to due candidates while under `max_peers`.
    pub(super) fn connect_more(&mut self) {
        let now = Instant::now();
        let due: Vec<SocketAddr> = self
            .candidates
            .iter()
            .filter(|(a, c)| c.next_try <= now && !self.peers.contains_key(a))
            .map(|(a, _)| *a)
            .collect();
        // `peers` counts dials still in progress: if every one succeeds, we are still within
        // `max_peers`.
        let room = self.settings.max_peers.saturating_sub(self.peers.len());
        for addr in due.into_iter().take(room) {
            // Its `Disconnected` sets the real next try; until then, not due again.
            let mut source = PeerSource::Given;
            if let Some(candidate) = self.candidates.get_mut(&addr) {
                candidate.next_try = now + Duration::from_secs(3600); // until it reports back
                source = candidate.source;
            }
            // An entry from the dial on: the slot is taken, and a failed dial's
            // `Disconnected` finds it, and is counted as a failure with back-off.
            let num_pieces = self.layout.num_pieces();
            let entry = PeerEntry {
                source,
                ..PeerEntry::new(num_pieces, false)
            };
            self.peers.insert(addr, entry);
            // The session's closure starts a peer thread: the scheduler itself starts none.
            (self.connect)(addr);
        }
    }
}
