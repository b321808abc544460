//! # The scheduler: the one thread that decides (BEP 3) — walkthrough §8
//!
//! Peer threads only talk to their peer; every decision about pieces is taken here, on one
//! thread, from the events in `events.rs`. That is what makes the download easy to follow:
//! put a breakpoint on [`Scheduler::handle`] and watch the whole swarm go by. [W8.2]
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

pub mod events;
pub mod picker;

use crate::piece::PieceLayout;
use crate::storage::Storage;
use crate::wire::Bitfield;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use events::{Command, Event};
use picker::Picker;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Failed pieces a peer may contribute to before it is banned.
const MAX_STRIKES: u32 = 3;
/// Connection attempts to one address before we give up on it.
const MAX_CONNECT_FAILURES: u32 = 5;

/// Starts a connection (a peer thread) to an address; given by the session, so the scheduler
/// does not depend on the peer module.
pub type Connect = Box<dyn FnMut(SocketAddr) + Send>;

/// Progress, for the progress bar and the summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Pieces already on disk and verified when the download started (resume).
    pub pieces_at_start: usize,
    pub pieces_have: usize,
    pub pieces_total: usize,
    /// Bytes of blocks received and written this run.
    pub downloaded: u64,
    pub peers: usize,
    pub failed_pieces: u32,
    pub banned: usize,
}

/// Why a download ended before every piece was verified.
#[derive(Debug, Clone, Copy)]
pub enum Ended {
    /// Nothing arrived for the `give_up` time.
    GaveUp(Progress),
    /// The stop flag was raised (Ctrl-C).
    Interrupted(Progress),
}

/// What the scheduler knows about one connection.
struct PeerEntry {
    commands: Option<Sender<Command>>,
    bitfield: Bitfield,
    strikes: u32,
}

/// An address to (re)connect to, and when.
struct Candidate {
    next_try: Instant,
    failures: u32,
}

pub struct Scheduler {
    picker: Picker,
    layout: Arc<PieceLayout>,
    events: Receiver<Event>,
    verify: Sender<u32>,
    peers: HashMap<SocketAddr, PeerEntry>,
    candidates: HashMap<SocketAddr, Candidate>,
    banned: HashSet<SocketAddr>,
    connect: Connect,
    new_peers: Option<Receiver<Vec<SocketAddr>>>,
    max_peers: usize,
    progress: Progress,
}

impl Scheduler {
    /// `events` is the receiving end of the channel whose senders the peer threads get;
    /// `events_tx` is given to the verifying threads.
    pub fn new(
        layout: Arc<PieceLayout>,
        have: &Bitfield,
        storage: Arc<Storage>,
        events: (Sender<Event>, Receiver<Event>),
        connect: Connect,
        max_peers: usize,
    ) -> Scheduler {
        let verify = spawn_verifiers(Arc::clone(&layout), storage, events.0);
        let picker = Picker::new((*layout).clone(), have);
        let progress = Progress {
            pieces_at_start: have.count(),
            pieces_have: have.count(),
            pieces_total: layout.num_pieces(),
            ..Progress::default()
        };
        Scheduler {
            picker,
            layout,
            events: events.1,
            verify,
            peers: HashMap::new(),
            candidates: HashMap::new(),
            banned: HashSet::new(),
            connect,
            new_peers: None,
            max_peers: max_peers.max(1),
            progress,
        }
    }

    /// Peers found by the announcer arrive on this channel.
    pub fn take_peers_from(&mut self, peers: Receiver<Vec<SocketAddr>>) {
        self.new_peers = Some(peers);
    }

    pub fn add_peer(&mut self, addr: SocketAddr) {
        if !self.banned.contains(&addr) && !self.peers.contains_key(&addr) {
            self.candidates.entry(addr).or_insert(Candidate {
                next_try: Instant::now(),
                failures: 0,
            });
        }
    }

    /// Runs until every piece is verified (`Ok`) or `give_up` passes with nothing written.
    pub fn run(
        mut self,
        give_up: Option<Duration>,
        stop: Option<Arc<AtomicBool>>,
        mut on_progress: impl FnMut(&Progress),
    ) -> Result<Progress, Ended> {
        let mut last_progress = Instant::now();
        while !self.picker.is_complete() {
            if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                self.stop_all();
                return Err(Ended::Interrupted(self.progress));
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
                Err(RecvTimeoutError::Disconnected) => break,
            }
            on_progress(&self.progress);
            if give_up.is_some_and(|limit| last_progress.elapsed() > limit) {
                self.stop_all();
                return Err(Ended::GaveUp(self.progress));
            }
        }
        self.stop_all();
        on_progress(&self.progress);
        Ok(self.progress)
    }

    /// One event: the whole protocol logic of the download, one arm at a time.
    fn handle(&mut self, event: Event) {
        match event {
            Event::Connected { peer, commands, .. } => {
                let num_pieces = self.layout.num_pieces();
                let entry = self.peers.entry(peer).or_insert(PeerEntry {
                    commands: None,
                    bitfield: Bitfield::new(num_pieces),
                    strikes: 0,
                });
                entry.commands = Some(commands);
                self.progress.peers = self.peers.values().filter(|p| p.commands.is_some()).count();
            }
            Event::Bitfield { peer, bitfield } => {
                self.picker.peer_joined(&bitfield);
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.bitfield = bitfield;
                }
            }
            Event::Have { peer, index } => {
                self.picker.peer_has(index);
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.bitfield.set(index as usize);
                }
            }
            Event::WantBlocks { peer, count, reply } => {
                let blocks = match self.peers.get(&peer) {
                    Some(entry) => self.picker.pick(peer, &entry.bitfield, count),
                    None => Vec::new(),
                };
                let _ = reply.send(blocks);
            }
            Event::BlocksWritten { peer, blocks } => {
                blocks.into_iter().for_each(|b| self.block_written(peer, b))
            }
            Event::Choked { peer, dropped } => self.picker.release(peer, &dropped),
            Event::Disconnected {
                peer,
                reason,
                outstanding,
            } => self.disconnected(peer, &reason, &outstanding),
            Event::Verified { index, ok } => self.verified(index, ok),
        }
    }

    fn block_written(&mut self, peer: SocketAddr, block: crate::piece::BlockRequest) {
        self.progress.downloaded += u64::from(block.length);
        let written = self.picker.written(peer, &block);
        for other in written.cancel_at {
            self.command(other, Command::Cancel(block));
        }
        if let Some(index) = written.piece_complete {
            let _ = self.verify.send(index);
        }
    }

    /// The SHA-1 verdict: keep the piece, or start it over and strike its senders. [W8.3]
    fn verified(&mut self, index: u32, ok: bool) {
        let senders = self.picker.verified(index, ok);
        if ok {
            log::debug!("piece {index} verified");
            self.progress.pieces_have = self.picker.have_count();
            return;
        }
        self.progress.failed_pieces += 1;
        log::warn!("piece {index} failed its hash check; sent by {senders:?}");
        for peer in senders {
            let Some(entry) = self.peers.get_mut(&peer) else {
                continue;
            };
            entry.strikes += 1;
            if entry.strikes >= MAX_STRIKES {
                log::warn!("{peer}: banned after {MAX_STRIKES} pieces that failed the hash check");
                self.banned.insert(peer);
                self.progress.banned = self.banned.len();
                self.command(peer, Command::Stop);
            }
        }
    }

    fn disconnected(
        &mut self,
        peer: SocketAddr,
        reason: &str,
        outstanding: &[crate::piece::BlockRequest],
    ) {
        log::info!("{peer}: disconnected: {reason}");
        self.picker.release(peer, outstanding);
        self.picker.forget_owner(peer);
        if let Some(entry) = self.peers.remove(&peer) {
            self.picker.peer_left(&entry.bitfield);
            let was_connected = entry.commands.is_some();
            if !self.banned.contains(&peer) {
                self.retry_later(peer, was_connected);
            }
        }
        self.progress.peers = self.peers.values().filter(|p| p.commands.is_some()).count();
    }

    /// A peer that could not be reached is retried after 1, 2, 4, 8 and 16 s, then given up;
    /// one that was connected and left is tried again after 5 s.
    fn retry_later(&mut self, peer: SocketAddr, was_connected: bool) {
        let candidate = self.candidates.entry(peer).or_insert(Candidate {
            next_try: Instant::now(),
            failures: 0,
        });
        candidate.failures = if was_connected {
            0
        } else {
            candidate.failures + 1
        };
        let wait = if was_connected {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(1 << (candidate.failures - 1).min(4))
        };
        candidate.next_try = Instant::now() + wait;
        if candidate.failures > MAX_CONNECT_FAILURES {
            self.candidates.remove(&peer);
        }
    }

    fn collect_new_peers(&mut self) {
        let Some(channel) = &self.new_peers else {
            return;
        };
        let found: Vec<SocketAddr> = channel.try_iter().flatten().collect();
        found.into_iter().for_each(|addr| self.add_peer(addr));
    }

    /// Starts connections to due candidates while under `max_peers`.
    fn connect_more(&mut self) {
        let now = Instant::now();
        let due: Vec<SocketAddr> = self
            .candidates
            .iter()
            .filter(|(a, c)| c.next_try <= now && !self.peers.contains_key(a))
            .map(|(a, _)| *a)
            .collect();
        for addr in due
            .into_iter()
            .take(self.max_peers.saturating_sub(self.peers.len()))
        {
            if let Some(candidate) = self.candidates.get_mut(&addr) {
                candidate.next_try = now + Duration::from_secs(3600); // until it reports back
            }
            let num_pieces = self.layout.num_pieces();
            self.peers.insert(
                addr,
                PeerEntry {
                    commands: None,
                    bitfield: Bitfield::new(num_pieces),
                    strikes: 0,
                },
            );
            (self.connect)(addr);
        }
    }

    fn command(&self, peer: SocketAddr, command: Command) {
        if let Some(Some(commands)) = self.peers.get(&peer).map(|p| p.commands.as_ref()) {
            let _ = commands.send(command);
        }
    }

    fn stop_all(&self) {
        for peer in self.peers.keys() {
            self.command(*peer, Command::Stop);
        }
    }
}

/// One hashing thread per core: read a completed piece back from disk, check its SHA-1.
fn spawn_verifiers(
    layout: Arc<PieceLayout>,
    storage: Arc<Storage>,
    events: Sender<Event>,
) -> Sender<u32> {
    let (jobs, queue) = crossbeam_channel::unbounded::<u32>();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for n in 0..threads {
        let (queue, layout, storage, events) = (
            queue.clone(),
            Arc::clone(&layout),
            Arc::clone(&storage),
            events.clone(),
        );
        let verify = move || {
            let mut buffer = Vec::new();
            for index in queue {
                let ok = storage.read_piece(&layout, index, &mut buffer).is_ok()
                    && layout.verify(index, &buffer);
                if events.send(Event::Verified { index, ok }).is_err() {
                    return;
                }
            }
        };
        std::thread::Builder::new()
            .name(format!("verify {n}"))
            .spawn(verify)
            .expect("spawning a verifying thread");
    }
    jobs
}
