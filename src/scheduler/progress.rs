//! What a run of the scheduler reports: progress as it goes, how it ended, with whom we
//! traded — walkthrough §8, §12.

use crate::peer_id::PeerId;
use crate::storage::StorageError;
use std::net::SocketAddr;

/// Progress, for the progress bar and the summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Pieces already on disk and verified when the download started (resume).
    pub pieces_at_start: usize,
    pub pieces_have: usize,
    pub pieces_total: usize,
    /// Bytes of the selected files (`--select-file`; all files without it) in all, verified
    /// now, and verified when the download started: what the progress bar shows.
    pub wanted_bytes: u64,
    pub wanted_bytes_have: u64,
    pub wanted_bytes_at_start: u64,
    /// Bytes of blocks received and written this run.
    pub downloaded: u64,
    /// Bytes of blocks sent to peers this run.
    pub uploaded: u64,
    pub peers: usize,
    pub failed_pieces: u32,
    pub banned: usize,
}

impl Progress {
    /// The whole torrent is verified on disk (what trackers are told as `completed`).
    pub fn is_complete(&self) -> bool {
        self.pieces_have == self.pieces_total
    }

    /// Everything asked for is verified: the whole torrent, or the selected files.
    pub fn is_done(&self) -> bool {
        self.is_complete() || self.wanted_bytes_have >= self.wanted_bytes
    }
}

/// What we exchanged with one peer (by peer id, across reconnections) — the demo's matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traffic {
    pub peer_id: PeerId,
    /// Its last address.
    pub addr: SocketAddr,
    /// Bytes of blocks it sent us.
    pub downloaded: u64,
    /// Bytes of blocks we sent it.
    pub uploaded: u64,
    /// Verified pieces credited to it. Each piece is credited to one sender, the one whose
    /// block was written first, even when others sent some of its blocks (endgame).
    pub pieces: u32,
}

/// After the last piece: stop, or go on seeding (`download --seed`, `seed`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterComplete {
    Stop,
    /// Seed until the stop flag is raised (Ctrl-C).
    Seed,
    /// Seed until we uploaded this many times the torrent's size (`--seed-ratio`), or stopped.
    SeedToRatio(f64),
}

/// Why a download ended before every piece was verified.
#[derive(Debug)]
pub enum Ended {
    /// Nothing arrived for the `give_up` time.
    GaveUp(Progress),
    /// The stop flag was raised (Ctrl-C).
    Interrupted(Progress),
    /// The disk failed: a block could not be written, or read back to verify or to upload
    /// (see [`crate::events::Event::StorageFailed`], [`crate::events::Event::PieceUnreadable`]).
    StorageFailed(StorageError, Progress),
}

/// How a run ended, and with whom we traded.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Progress, Ended>,
    pub traffic: Vec<Traffic>,
}
