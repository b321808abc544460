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

mod blocks;
mod connections;
pub mod picker;
mod progress;
mod rounds;
pub mod snapshot;
mod verdicts;
pub mod verify;

pub use progress::{AfterComplete, Ended, Outcome, Progress, Traffic};

use crate::choker::{Choker, ChokerConfig, ROUND_INTERVAL};
use crate::events::{Command, Event};
use crate::peer_id::PeerId;
use crate::piece::PieceLayout;
use crate::storage::{StorageError, Wanted};
use crate::wire::Bitfield;
use connections::{Candidate, PeerEntry};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use picker::{Picker, PieceOrder};
use snapshot::{ChokeDecision, PeerSource, SnapshotBoard};
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
/// The first choke round comes this soon, the others every `ROUND_INTERVAL`. Until a round,
/// slots go first come, first served, to peers that may have little to give back; the first
/// round gives them to the peers that send us blocks, so pieces flow both ways. In the
/// network lab, a swarm of 20 leechers whose first round came at 10 s spent those seconds at
/// half its upload capacity; at 3 s, it was near capacity from the fifth second. [W11.5]
const FIRST_ROUND_AFTER: Duration = Duration::from_secs(3);
/// A peer that has sent us nothing for this long, while it has pieces we want, is snubbed.
const SNUBBED_AFTER: Duration = Duration::from_secs(60);

/// Starts a connection (a peer thread) to an address; given by the session, so the scheduler
/// does not depend on the peer module.
pub type Connect = Box<dyn FnMut(SocketAddr) + Send>;

/// The settings a session gives the scheduler.
pub struct Settings {
    /// Connections at most, dialled and accepted together (`--max-peers`).
    pub max_peers: usize,
    /// Stop, seed, or seed to a ratio once every piece is verified.
    pub after_complete: AfterComplete,
    /// Slots and rounds of the choker (`choker.rs`).
    pub choker: ChokerConfig,
    /// The order new pieces are started in (`--piece-order`, `picker.rs`).
    pub piece_order: PieceOrder,
    /// Pieces we may announce to peers (`download_piece` announces none: its "have" is a fib).
    pub advertise: Bitfield,
    /// The pieces to fetch: all, or with `--select-file` those holding selected bytes.
    pub wanted: Wanted,
    /// Our peer id (to settle which of two duplicate connections stays).
    pub our_id: PeerId,
    /// Peer exchange (BEP 11): off for private torrents (BEP 27).
    pub pex: bool,
}

pub struct Scheduler {
    /// The state of every piece and block: which block goes to whom (`picker.rs`).
    picker: Picker,
    /// Piece sizes and hashes, shared with the peer threads.
    layout: Arc<PieceLayout>,
    /// The one inbound channel: every peer thread and verifier sends here.
    events: Receiver<Event>,
    /// Where complete pieces go to be hashed (`verify.rs`).
    verify: Sender<u32>,
    /// Every connection, from the moment we dial (an incoming one: from its handshake)
    /// until its `Disconnected`.
    peers: HashMap<SocketAddr, PeerEntry>,
    /// Addresses to dial, now or later (`connections.rs`).
    candidates: HashMap<SocketAddr, Candidate>,
    /// Addresses that sent bad pieces too often: never dialled again, and refused if they
    /// come back from the same address.
    banned: HashSet<SocketAddr>,
    /// Addresses not to dial again: seeds like us, duplicates of a connected peer.
    not_again: HashSet<SocketAddr>,
    connect: Connect,
    /// Peers from the announcer and the DHT, each channel with where its peers come from.
    new_peers: Vec<(Receiver<Vec<SocketAddr>>, PeerSource)>,
    /// What the session asked for.
    settings: Settings,
    /// The pieces we really have: what peers are told (`bitfield`, then `have`).
    ours: Bitfield,
    /// Whom to unchoke (`choker.rs`); it remembers the optimistic peer between rounds.
    choker: Choker,
    /// When the last choke round and the last pex round ran (`rounds.rs`).
    last_choke: Instant,
    last_pex: Instant,
    /// Bytes and pieces per peer id, for the end-of-run summary: a peer that reconnects
    /// from another port is still one peer.
    traffic: HashMap<PeerId, Traffic>,
    /// Every address a peer id has been connected from: a piece sent over a connection that
    /// has since been replaced (the same peer reconnected) is still credited to its peer.
    ids_by_addr: HashMap<SocketAddr, PeerId>,
    /// What the progress bar, the tracker reporter and the summary read.
    progress: Progress,
    /// Set when a block could not be written: the run ends at the end of this turn.
    storage_failed: Option<StorageError>,
    /// The live view (`--web`, `snapshot.rs`): where snapshots go, when the last one went,
    /// how many went. `None`: nothing is built.
    board: Option<SnapshotBoard>,
    last_publish: Instant,
    published: u64,
    /// When the scheduler was made: the snapshot's clock.
    started: Instant,
    /// The choker's last round, for the page's "why these peers".
    last_decision: Option<ChokeDecision>,
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
        // The resume check's pieces are done from the start: never requested again.
        let picker = Picker::wanting((*layout).clone(), have, settings.wanted.clone())
            .in_order(settings.piece_order);
        let wanted_at_start = settings.wanted.bytes_of(have);
        let progress = Progress {
            // Kept apart so the summary tells what this run fetched, not what was on disk.
            pieces_at_start: have.count(),
            pieces_have: have.count(),
            pieces_total: layout.num_pieces(),
            wanted_bytes: settings.wanted.total_bytes(),
            wanted_bytes_have: wanted_at_start,
            wanted_bytes_at_start: wanted_at_start,
            ..Progress::default()
        };
        // At least one: with none, `connect_more` would never dial, and the download would
        // wait for ever.
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
            new_peers: Vec::new(),
            // What peers are told, not what the picker counts as done: to fetch one piece
            // (`download_piece`) every other one is marked done in the picker, but is not ours.
            ours: settings.advertise.clone(),
            choker: Choker::new(settings.choker),
            settings,
            // As if a round had run `ROUND_INTERVAL - FIRST_ROUND_AFTER` ago: the first
            // round comes `FIRST_ROUND_AFTER` from now.
            last_choke: Instant::now()
                .checked_sub(ROUND_INTERVAL - FIRST_ROUND_AFTER)
                .unwrap_or_else(Instant::now),
            last_pex: Instant::now(),
            traffic: HashMap::new(),
            ids_by_addr: HashMap::new(),
            progress,
            storage_failed: None,
            board: None,
            last_publish: Instant::now(),
            published: 0,
            started: Instant::now(),
            last_decision: None,
        }
    }

    /// Peers found by the announcer, or by the DHT (`source` says which), arrive on this
    /// channel.
    pub fn take_peers_from(&mut self, peers: Receiver<Vec<SocketAddr>>, source: PeerSource) {
        self.new_peers.push((peers, source));
    }

    /// Publish snapshots of our state on `board` a few times a second (`--web`).
    pub fn publish_to(&mut self, board: SnapshotBoard) {
        self.board = Some(board);
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
            // First in every turn: Ctrl-C is answered within a turn (half a second at most).
            if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                break match self.picker.is_complete() {
                    true => Ok(self.progress), // seeding ends when the user says so
                    false => Err(Ended::Interrupted(self.progress)),
                };
            }
            // Before any wait: a download complete at the start (every piece already on
            // disk, no seeding asked) ends at once.
            if self.picker.is_complete() && !self.keeps_seeding() {
                break Ok(self.progress);
            }
            // Every turn, not only after an event: peers from the tracker, and dials whose
            // back-off is over, must not wait for some peer to speak.
            self.collect_new_peers();
            self.connect_more();
            // One event per turn, waiting half a second at most: the rounds and the progress
            // report below run even when the whole swarm is quiet.
            match self.events.recv_timeout(Duration::from_millis(500)) {
                Ok(event) => {
                    // Only bytes written to disk count as progress for `give_up`: a swarm
                    // that talks but delivers nothing is stalled.
                    let before = self.progress.downloaded;
                    self.handle(event);
                    if self.progress.downloaded > before {
                        last_progress = Instant::now();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Every sender is gone: no event can ever come again.
                Err(RecvTimeoutError::Disconnected) => break Ok(self.progress),
            }
            // `handle` only records a disk failure; the loop alone decides when the run ends.
            if let Some(error) = self.storage_failed.take() {
                break Err(Ended::StorageFailed(error, self.progress));
            }
            // Checked every turn, run only when due: no timer thread, and a scheduler paused
            // in a debugger simply runs its round late.
            self.choke_round_if_due();
            self.pex_round_if_due();
            // For the web view: after the rounds, so a new choke decision shows at once.
            // [W21.1]
            self.publish_if_due(false);
            // Every turn: the progress bar and the tracker reporter decide how often to act.
            on_progress(&self.progress);
            // Time since the last written byte, not since the start: a slow download that
            // moves is never given up. And a seed that uploads nothing is not stalled.
            let stalled = give_up.is_some_and(|limit| last_progress.elapsed() > limit);
            if stalled && !self.picker.is_complete() {
                break Err(Ended::GaveUp(self.progress));
            }
        };
        // Whatever ended the run, every peer thread is told to stop: none goes on talking to
        // a swarm we have left.
        self.stop_all();
        // The last numbers, so the summary, the final progress line and the page agree.
        self.publish_if_due(true);
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
            // Until the user stops us (the `stop` flag, raised by Ctrl-C).
            AfterComplete::Seed => true,
            // A ratio of the torrent's size, not of what this run downloaded: a seed that
            // started with every piece has a goal too.
            AfterComplete::SeedToRatio(ratio) => {
                (self.progress.uploaded as f64) < ratio * self.layout.total_length as f64
            }
        }
    }

    /// One event: the whole protocol logic of the download, one arm at a time. [W8.2]
    fn handle(&mut self, event: Event) {
        match event {
            // The handshake is done: accept it (our pieces) or refuse it (`connections.rs`).
            Event::Connected {
                peer,
                peer_id,
                incoming,
                commands,
            } => self.connected(peer, peer_id, incoming, commands),
            Event::Bitfield { peer, bitfield } => {
                // Two uses: the picker counts how rare each piece is, and `pick_for` needs
                // to know what this peer can give.
                // Only for a connection we still hold (a late event of a replaced duplicate
                // must not count), and what it announced before is counted out first, so
                // that each connection counts each piece once.
                if let Some(entry) = self.peers.get_mut(&peer) {
                    self.picker.peer_left(&entry.bitfield);
                    self.picker.peer_joined(&bitfield);
                    entry.bitfield = bitfield;
                }
                // A seed, while we are complete too: nothing to trade.
                self.drop_if_both_seeds(peer);
            }
            Event::Have { peer, index } => {
                // The piece is one copy less rare; and the peer may have just become a seed.
                if let Some(entry) = self.peers.get_mut(&peer)
                    && !entry.bitfield.has(index as usize)
                {
                    entry.bitfield.set(index as usize);
                    self.picker.peer_has(index);
                }
                self.drop_if_both_seeds(peer);
            }
            // May take a free upload slot at once, without waiting for a round (`rounds.rs`).
            Event::Interest { peer, interested } => self.interest(peer, interested),
            Event::WantBlocks {
                peer,
                count,
                only,
                reply,
            } => {
                let blocks = self.pick_for(peer, count, only.as_deref());
                // The peer thread waits for this answer (`request_more`), so it is there to
                // read it unless it died in a panic: then nobody could use the blocks.
                let _ = reply.send(blocks);
            }
            // A batch from one peer thread (`report_written`), handled block by block.
            Event::BlocksWritten { peer, blocks } => {
                blocks.into_iter().for_each(|b| self.block_written(peer, b))
            }
            Event::Uploaded { peer, bytes } => self.uploaded(peer, bytes),
            // A private torrent (BEP 27) takes peers from its tracker alone, whatever a peer
            // sends; so the guard is here, not only in what we offer.
            Event::PeersFound { peer, addrs } if self.settings.pex => {
                log::debug!("{peer}: told us of {} peers", addrs.len());
                // At most 50, as BEP 11 asks of a sender (after its first message): a peer
                // cannot fill our candidates with a list of its own making.
                addrs
                    .into_iter()
                    .take(PEX_TAKE)
                    .for_each(|a| self.add_peer_from(a, PeerSource::Pex));
            }
            Event::PeersFound { .. } => {} // a private torrent: not for us
            // A peer that dialled us is known by its outgoing port, where nobody can call it;
            // the port from its extended handshake is where it listens (shared by `ut_pex`).
            Event::ListenPort { peer, port } => {
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.listen_addr = Some(SocketAddr::new(peer.ip(), port));
                }
            }
            // Back to the pool at once: the next peer to ask may get them.
            Event::Choked { peer, dropped } => {
                self.picker.release(peer, &dropped);
                self.set_unchokes_us(peer, false);
            }
            // Nothing to decide: the peer thread asks for blocks itself. Kept for the page.
            Event::Unchoked { peer } => self.set_unchokes_us(peer, true),
            // Only shown on the page: a peer's name and transport decide nothing.
            Event::ClientName { peer, name } => {
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.client = Some(name);
                }
            }
            Event::Link { peer, transport } => {
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.transport = Some(transport);
                }
            }
            Event::Rejected {
                peer,
                block,
                choked,
            } => {
                self.picker.release(peer, &[block]);
                // A reject because it chokes us says nothing about the piece; one while it
                // unchokes us means "not this piece": asked again, it would say no again.
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
            // Its requests back to the pool, and maybe a later dial (`connections.rs`).
            Event::Disconnected {
                peer,
                reason,
                outstanding,
            } => self.disconnected(peer, &reason, &outstanding),
            Event::StorageFailed { peer, error } => {
                log::info!("the disk failed on a block of {peer}, stopping: {error}");
                // The first error is the one reported: a full disk fails every peer's
                // next block, and those follow it here.
                self.storage_failed.get_or_insert(error);
            }
            // From a `verify` thread: the piece's SHA-1 against the torrent's.
            Event::Verified { index, ok } => self.verified(index, ok),
            // The disk's fault, not the senders': no strike. A disk that cannot read back
            // one piece cannot be trusted with the others either, so the run ends.
            Event::PieceUnreadable { index, error } => {
                log::info!("piece {index} could not be read back to verify it, stopping: {error}");
                self.storage_failed.get_or_insert(error);
            }
        }
    }

    /// The traffic entry of a peer, by its peer id; a peer that has left since (say, before
    /// the piece it sent was verified) is still found by its address.
    fn traffic_of(&mut self, peer: SocketAddr) -> Option<&mut Traffic> {
        let peer_id = match self.peers.get(&peer).and_then(|e| e.peer_id) {
            Some(id) => id,
            None => *self.ids_by_addr.get(&peer)?,
        };
        // Made when the peer id is first seen; `connected` updates its address when the
        // same peer comes back from another port.
        Some(self.traffic.entry(peer_id).or_insert(Traffic {
            peer_id,
            addr: peer,
            downloaded: 0,
            uploaded: 0,
            pieces: 0,
        }))
    }

    fn set_unchokes_us(&mut self, peer: SocketAddr, unchokes: bool) {
        if let Some(entry) = self.peers.get_mut(&peer) {
            entry.unchokes_us = unchokes;
        }
    }

    /// Sends one peer thread a command. Never waits: the channels are unbounded, so one slow
    /// peer cannot hold up the scheduler.
    fn command(&self, peer: SocketAddr, command: Command) {
        // A dial still in its handshake has no channel yet, and nothing to be told.
        if let Some(Some(commands)) = self.peers.get(&peer).map(|p| p.commands.as_ref()) {
            // The peer thread has ended: its `Disconnected` is on the way and cleans up.
            let _ = commands.send(command);
        }
    }

    /// Sends every connected peer thread the same command.
    fn broadcast(&self, command: Command) {
        for commands in self.peers.values().filter_map(|p| p.commands.as_ref()) {
            // A peer thread that has ended: its `Disconnected` is on the way.
            let _ = commands.send(command.clone());
        }
    }

    fn stop_all(&self) {
        self.broadcast(Command::Stop);
    }
}

#[cfg(test)]
mod tests;
