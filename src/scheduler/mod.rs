//! # The scheduler: the one thread that decides (BEP 3) — walkthrough §8
//!
//! Peer threads only talk to their peer; every decision about pieces is taken here, on one
//! thread, from the events in `events.rs`. That is what makes the download easy to follow:
//! put a breakpoint on [`Scheduler::handle`] and watch the whole swarm go by.
//!
//! ```text
//!   peer threads ─Event─►┌───────────── scheduler ─────────────┐─Command─► peer threads
//!   verifiers ───Event─►│ Picker: which block next (picker.rs) │─piece───► verifiers
//!   announcer ──peers──►│ who to connect to, who to ban        │
//!                        └───────────────────────────────────────┘
//! ```
//!
//! Disk writes happen in the peer threads and hashing on `verify` threads, so neither waits
//! on this one: the scheduler only does bookkeeping.

mod connections;
pub mod picker;
mod progress;
mod rounds;
pub mod verify;

pub use progress::{AfterComplete, Ended, Outcome, Progress, Traffic};

use crate::choker::{Choker, ChokerConfig};
use crate::events::{Command, Event};
use crate::peer_id::PeerId;
use crate::piece::{BlockRequest, PieceLayout};
use crate::storage::StorageError;
use crate::wire::Bitfield;
use connections::{Candidate, PeerEntry};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use picker::Picker;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Failed pieces a peer may contribute to before it is banned.
const MAX_STRIKES: u32 = 3;
/// BEP 11: a `ut_pex` message at most once a minute.
const PEX_EVERY: Duration = Duration::from_secs(60);
/// Addresses taken from one `ut_pex` message (BEP 11 asks senders for at most 50).
const PEX_TAKE: usize = 50;
/// Suggestions (BEP 6) remembered per peer.
const MAX_SUGGESTED: usize = 16;
/// A peer that has sent us nothing for this long, while it has pieces we want, is snubbed.
const SNUBBED_AFTER: Duration = Duration::from_secs(60);

/// Starts a connection (a peer thread) to an address; given by the session, so the scheduler
/// does not depend on the peer module.
pub type Connect = Box<dyn FnMut(SocketAddr) + Send>;

/// The settings a session gives the scheduler.
pub struct Settings {
    pub max_peers: usize,
    pub after_complete: AfterComplete,
    pub choker: ChokerConfig,
    /// Pieces we may announce to peers (`download_piece` announces none: its "have" is a fib).
    pub advertise: Bitfield,
    /// Our peer id (to settle which of two duplicate connections stays).
    pub our_id: PeerId,
    /// Peer exchange (BEP 11): off for private torrents (BEP 27).
    pub pex: bool,
}

pub struct Scheduler {
    picker: Picker,
    layout: Arc<PieceLayout>,
    events: Receiver<Event>,
    verify: Sender<u32>,
    peers: HashMap<SocketAddr, PeerEntry>,
    candidates: HashMap<SocketAddr, Candidate>,
    banned: HashSet<SocketAddr>,
    /// Addresses not to dial again: seeds like us, duplicates of a connected peer.
    not_again: HashSet<SocketAddr>,
    connect: Connect,
    new_peers: Option<Receiver<Vec<SocketAddr>>>,
    settings: Settings,
    /// The pieces we really have: what peers are told (`bitfield`, then `have`).
    ours: Bitfield,
    choker: Choker,
    last_choke: Instant,
    last_pex: Instant,
    traffic: HashMap<PeerId, Traffic>,
    /// Every address a peer id has been connected from: a piece sent over a connection that
    /// has since been replaced (the same peer reconnected) is still credited to its peer.
    ids_by_addr: HashMap<SocketAddr, PeerId>,
    progress: Progress,
    /// Set when a block could not be written: the run ends at the end of this turn.
    storage_failed: Option<StorageError>,
}

impl Scheduler {
    /// `events` is the receiving end of the channel whose senders the peer threads (and the
    /// verifiers) get; `verify` is where complete pieces go to be hashed (`verify::start`).
    /// Nothing here starts a thread: a test can feed `handle` events and read the commands.
    pub fn new(
        layout: Arc<PieceLayout>,
        have: &Bitfield,
        events: Receiver<Event>,
        verify: Sender<u32>,
        connect: Connect,
        mut settings: Settings,
    ) -> Scheduler {
        let picker = Picker::new((*layout).clone(), have);
        let progress = Progress {
            pieces_at_start: have.count(),
            pieces_have: have.count(),
            pieces_total: layout.num_pieces(),
            ..Progress::default()
        };
        settings.max_peers = settings.max_peers.max(1);
        Scheduler {
            picker,
            layout,
            events,
            verify,
            peers: HashMap::new(),
            candidates: HashMap::new(),
            banned: HashSet::new(),
            not_again: HashSet::new(),
            connect,
            new_peers: None,
            ours: settings.advertise.clone(),
            choker: Choker::new(settings.choker),
            settings,
            last_choke: Instant::now(),
            last_pex: Instant::now(),
            traffic: HashMap::new(),
            ids_by_addr: HashMap::new(),
            progress,
            storage_failed: None,
        }
    }

    /// Peers found by the announcer arrive on this channel.
    pub fn take_peers_from(&mut self, peers: Receiver<Vec<SocketAddr>>) {
        self.new_peers = Some(peers);
    }

    /// Runs until every piece is verified and seeding (if any) is over, `give_up` passes with
    /// nothing written, or `stop` is raised.
    pub fn run(
        mut self,
        give_up: Option<Duration>,
        stop: Option<Arc<AtomicBool>>,
        mut on_progress: impl FnMut(&Progress),
    ) -> Outcome {
        let mut last_progress = Instant::now();
        let result = loop {
            if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                break match self.picker.is_complete() {
                    true => Ok(self.progress), // seeding ends when the user says so
                    false => Err(Ended::Interrupted(self.progress)),
                };
            }
            if self.picker.is_complete() && !self.keeps_seeding() {
                break Ok(self.progress);
            }
            self.collect_new_peers();
            self.connect_more();
            match self.events.recv_timeout(Duration::from_millis(500)) {
                Ok(event) => {
                    let before = self.progress.downloaded;
                    self.handle(event);
                    if self.progress.downloaded > before {
                        last_progress = Instant::now();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break Ok(self.progress),
            }
            if let Some(error) = self.storage_failed.take() {
                break Err(Ended::StorageFailed(error, self.progress));
            }
            self.choke_round_if_due();
            self.pex_round_if_due();
            on_progress(&self.progress);
            let stalled = give_up.is_some_and(|limit| last_progress.elapsed() > limit);
            if stalled && !self.picker.is_complete() {
                break Err(Ended::GaveUp(self.progress));
            }
        };
        self.stop_all();
        on_progress(&self.progress);
        Outcome {
            result,
            traffic: self.traffic.into_values().collect(),
        }
    }

    /// Seeding goes on until stopped, or until the upload ratio is reached.
    fn keeps_seeding(&self) -> bool {
        match self.settings.after_complete {
            AfterComplete::Stop => false,
            AfterComplete::Seed => true,
            AfterComplete::SeedToRatio(ratio) => {
                (self.progress.uploaded as f64) < ratio * self.layout.total_length as f64
            }
        }
    }

    /// One event: the whole protocol logic of the download, one arm at a time. [W8.2]
    fn handle(&mut self, event: Event) {
        match event {
            Event::Connected {
                peer,
                peer_id,
                incoming,
                commands,
            } => self.connected(peer, peer_id, incoming, commands),
            Event::Bitfield { peer, bitfield } => {
                self.picker.peer_joined(&bitfield);
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.bitfield = bitfield;
                }
                self.drop_if_both_seeds(peer);
            }
            Event::Have { peer, index } => {
                self.picker.peer_has(index);
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.bitfield.set(index as usize);
                }
                self.drop_if_both_seeds(peer);
            }
            Event::Interest { peer, interested } => self.interest(peer, interested),
            Event::WantBlocks {
                peer,
                count,
                only,
                reply,
            } => {
                let blocks = self.pick_for(peer, count, only.as_deref());
                // The peer thread may have ended meanwhile; its Disconnected returns nothing
                // of these, so nothing is lost if no one reads them.
                let _ = reply.send(blocks);
            }
            Event::BlocksWritten { peer, blocks } => {
                blocks.into_iter().for_each(|b| self.block_written(peer, b))
            }
            Event::Uploaded { peer, bytes } => self.uploaded(peer, bytes),
            Event::PeersFound { peer, addrs } if self.settings.pex => {
                log::debug!("{peer}: told us of {} peers", addrs.len());
                addrs
                    .into_iter()
                    .take(PEX_TAKE)
                    .for_each(|a| self.add_peer(a));
            }
            Event::PeersFound { .. } => {}
            Event::ListenPort { peer, port } => {
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.listen_addr = Some(SocketAddr::new(peer.ip(), port));
                }
            }
            Event::Choked { peer, dropped } => self.picker.release(peer, &dropped),
            Event::Rejected {
                peer,
                block,
                choked,
            } => {
                self.picker.release(peer, &[block]);
                if let Some(entry) = self.peers.get_mut(&peer)
                    && !choked
                    && !entry.refused.contains(&block.index)
                {
                    log::debug!(
                        "{peer}: refuses piece {}; asking it for others",
                        block.index
                    );
                    entry.refused.push(block.index);
                }
            }
            Event::Suggested { peer, index } => {
                if let Some(entry) = self.peers.get_mut(&peer) {
                    // A hint, bounded: the newest few suggestions are enough.
                    entry.suggested.retain(|&i| i != index);
                    if entry.suggested.len() >= MAX_SUGGESTED {
                        entry.suggested.remove(0);
                    }
                    entry.suggested.push(index);
                }
            }
            Event::Disconnected {
                peer,
                reason,
                outstanding,
            } => self.disconnected(peer, &reason, &outstanding),
            Event::StorageFailed { peer, error } => {
                log::info!("the disk failed on a block of {peer}, stopping: {error}");
                self.storage_failed.get_or_insert(error);
            }
            Event::Verified { index, ok } => self.verified(index, ok),
            Event::PieceUnreadable { index, error } => {
                log::info!("piece {index} could not be read back to verify it, stopping: {error}");
                self.storage_failed.get_or_insert(error);
            }
        }
    }

    /// Blocks for `peer` to request: of the pieces it has, less those it refused, and only of
    /// `only` when given (the allowed-fast pieces of a peer that chokes us); the pieces it
    /// suggested first.
    fn pick_for(
        &mut self,
        peer: SocketAddr,
        count: usize,
        only: Option<&[u32]>,
    ) -> Vec<BlockRequest> {
        let Some(entry) = self.peers.get(&peer) else {
            return Vec::new();
        };
        if only.is_none() && entry.refused.is_empty() {
            // The common case, on the hot path: no copy of the peer's bitfield.
            return self
                .picker
                .pick_preferring(peer, &entry.bitfield, count, &entry.suggested);
        }
        let mut has = match only {
            Some(pieces) => {
                let mut allowed = Bitfield::new(entry.bitfield.num_pieces());
                for &i in pieces.iter().filter(|&&i| entry.bitfield.has(i as usize)) {
                    allowed.set(i as usize);
                }
                allowed
            }
            None => entry.bitfield.clone(),
        };
        entry.refused.iter().for_each(|&i| has.clear(i as usize));
        self.picker
            .pick_preferring(peer, &has, count, &entry.suggested)
    }

    fn block_written(&mut self, peer: SocketAddr, block: BlockRequest) {
        let bytes = u64::from(block.length);
        self.progress.downloaded += bytes;
        if let Some(entry) = self.peers.get_mut(&peer) {
            entry.downloaded += bytes;
            entry.last_block = Instant::now();
        }
        if let Some(t) = self.traffic_of(peer) {
            t.downloaded += bytes;
        }
        let written = self.picker.written(peer, &block);
        for other in written.cancel_at {
            self.command(other, Command::Cancel(block));
        }
        if let Some(index) = written.piece_complete {
            let _ = self.verify.send(index);
        }
    }

    fn uploaded(&mut self, peer: SocketAddr, bytes: u64) {
        self.progress.uploaded += bytes;
        if let Some(entry) = self.peers.get_mut(&peer) {
            entry.uploaded += bytes;
        }
        if let Some(t) = self.traffic_of(peer) {
            t.uploaded += bytes;
        }
    }

    /// The SHA-1 verdict: keep the piece and tell every peer, or start it over and strike its
    /// sender. [W8.3]
    fn verified(&mut self, index: u32, ok: bool) {
        let senders = self.picker.verified(index, ok);
        if ok {
            log::debug!("piece {index} verified");
            self.progress.pieces_have = self.picker.have_count();
            self.ours.set(index as usize);
            // One sender is credited, so that no piece counts twice: the one whose block was
            // written first (`senders` is in that order; in endgame, usually the peer that began
            // the piece), or the next if we cannot name it: a connection replaced by a newer one
            // to the same peer is no longer known by its address.
            for sender in &senders {
                if let Some(t) = self.traffic_of(*sender) {
                    t.pieces += 1;
                    break;
                }
            }
            self.broadcast(Command::Have(index));
            if self.picker.is_complete() {
                self.completed();
            }
            return;
        }
        self.progress.failed_pieces += 1;
        log::warn!("piece {index} failed its hash check; sent by {senders:?}");
        if let [liar] = senders[..] {
            self.strike(liar);
        }
    }

    /// A sole sender of a bad piece gets a strike; enough strikes and it is banned.
    fn strike(&mut self, peer: SocketAddr) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        entry.strikes += 1;
        if entry.strikes >= MAX_STRIKES {
            log::warn!("{peer}: banned after {MAX_STRIKES} pieces that failed the hash check");
            self.banned.insert(peer);
            self.progress.banned = self.banned.len();
            self.command(peer, Command::Stop);
        }
    }

    /// The last piece is verified: the download is complete; seeds are no use to us now.
    fn completed(&mut self) {
        log::info!(
            "download complete: all {} pieces verified",
            self.ours.count()
        );
        let seeds: Vec<SocketAddr> = self.peers.keys().copied().collect();
        seeds.into_iter().for_each(|p| self.drop_if_both_seeds(p));
    }

    /// Two seeds have nothing to say to each other: close, and do not dial it again.
    fn drop_if_both_seeds(&mut self, peer: SocketAddr) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        if self.picker.is_complete() && entry.bitfield.is_complete() && !entry.finished {
            log::debug!("{peer}: we are both seeds, closing");
            entry.finished = true;
            self.not_again.insert(peer);
            self.command(peer, Command::Stop);
        }
    }

    /// The traffic entry of a peer, by its peer id; a peer that has left since (say, before
    /// the piece it sent was verified) is still found by its address.
    fn traffic_of(&mut self, peer: SocketAddr) -> Option<&mut Traffic> {
        let peer_id = match self.peers.get(&peer).and_then(|e| e.peer_id) {
            Some(id) => id,
            None => *self.ids_by_addr.get(&peer)?,
        };
        Some(self.traffic.entry(peer_id).or_insert(Traffic {
            peer_id,
            addr: peer,
            downloaded: 0,
            uploaded: 0,
            pieces: 0,
        }))
    }

    fn command(&self, peer: SocketAddr, command: Command) {
        if let Some(Some(commands)) = self.peers.get(&peer).map(|p| p.commands.as_ref()) {
            let _ = commands.send(command);
        }
    }

    fn broadcast(&self, command: Command) {
        for commands in self.peers.values().filter_map(|p| p.commands.as_ref()) {
            let _ = commands.send(command.clone());
        }
    }

    fn stop_all(&self) {
        self.broadcast(Command::Stop);
    }
}

#[cfg(test)]
mod tests;
