//! What a session tells its trackers as it goes (BEP 3 "trackers", BEP 12): the counts every
//! few seconds, `completed` once, a call for more peers when it has none — walkthrough §3.
//!
//! ```text
//!   scheduler ──Progress──► tracker_reporter ──AnnouncerCommand──► announcer thread
//!                                          └── `left`: the whole torrent's missing bytes
//! ```
//!
//! `left` is the torrent's, never the scheduler's idea of "what is left to do": trackers count a
//! peer with `left` 0 as a seeder, and one that says `completed` as a whole download.

use crate::piece::PieceLayout;
use crate::scheduler::{Ended, Progress};
use crate::tracker::announcer::{Announcer, AnnouncerCommand, Lonely};
use crate::wire::Bitfield;
use crossbeam_channel::Receiver;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What the scheduler's progress reports turn into for the trackers (see [`tracker_reporter`]),
/// and where the announcer's peers go.
pub(super) type TrackerReporter = Box<dyn FnMut(&Progress) + Send>;

/// Sends the announcer our counts every 5 s, `completed` once when the last piece verifies
/// (not when we started complete: that is a seed's `started`), and `NeedPeers` when an
/// unfinished download has had no peer for a while (see [`Lonely`]).
pub(super) fn tracker_reporter(
    announcers: &[Announcer],
    left: Left,
    complete_at_start: bool,
) -> (TrackerReporter, Vec<Receiver<Vec<SocketAddr>>>) {
    // One announcer per name the torrent goes by (a hybrid has two, BEP 52): each hears the
    // same progress.
    let trackers: Vec<_> = announcers.iter().map(|a| a.commands.clone()).collect();
    let tracker = Tell(trackers);
    let mut last_report = Instant::now();
    let mut told_complete = complete_at_start;
    let mut lonely = Lonely::default();
    let report = move |p: &Progress| {
        // A download whose selected files are all in needs no more peers either.
        if !p.is_done() && lonely.should_ask(p.peers, Instant::now()) {
            tracker.send(AnnouncerCommand::NeedPeers);
        }
        // `completed` means the whole torrent is verified on disk, and nothing less.
        let now_complete = left.now(p) == 0 && !told_complete;
        if now_complete || last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            tracker.send(left.command(p));
        }
        if now_complete {
            told_complete = true;
            tracker.send(AnnouncerCommand::Completed);
        }
    };
    let peers = announcers.iter().map(|a| a.peers.clone()).collect();
    (Box::new(report), peers)
}

/// Every announcer, told the same thing.
struct Tell(Vec<crossbeam_channel::Sender<AnnouncerCommand>>);

impl Tell {
    fn send(&self, command: AnnouncerCommand) {
        for tracker in &self.0 {
            // Fails only if that announcer died (it ends only on `Stop`): the download goes
            // on without it, and the other announcer, if any, goes on too.
            let _ = tracker.send(command);
        }
    }
}

/// The `left` we announce: the bytes of the whole torrent we do not have verified on disk.
/// Trackers count a peer with `left` 0 as a seeder, and one that says `completed` as a whole
/// download, so this is the torrent's, never the scheduler's idea of "what is left to do".
#[derive(Debug, Clone, Copy)]
pub(super) struct Left {
    total: u64,
    piece_length: u64,
    /// `download_piece`: the length of the one piece fetched.
    only_piece: Option<u64>,
}

impl Left {
    pub(super) fn new(layout: &PieceLayout, only_piece: Option<u32>) -> Left {
        Left {
            total: layout.total_length,
            piece_length: layout.piece_length,
            only_piece: only_piece.map(|i| u64::from(layout.piece_len(i))),
        }
    }

    /// At the start: what is missing from `have`, exactly. To fetch one piece the scheduler is
    /// told that we have every other one, which we do not: we have nothing.
    pub(super) fn at_start(&self, layout: &PieceLayout, have: &Bitfield) -> u64 {
        match self.only_piece {
            Some(_) => self.total,
            None => (0..layout.num_pieces() as u32)
                .filter(|&i| !have.has(i as usize))
                .map(|i| u64::from(layout.piece_len(i)))
                .sum(),
        }
    }

    /// The counts for the announcer.
    pub(super) fn command(&self, p: &Progress) -> AnnouncerCommand {
        AnnouncerCommand::Progress {
            uploaded: p.uploaded,
            downloaded: p.downloaded,
            left: self.now(p),
        }
    }

    /// Now, from the scheduler's counts. Exact until the short last piece is in; after it,
    /// low by less than one piece (the counts do not say which pieces we have), and never 0
    /// before every piece is verified.
    pub(super) fn now(&self, p: &Progress) -> u64 {
        match (self.only_piece, p.is_complete()) {
            (Some(piece), true) => self.total - piece,
            (Some(_), false) => self.total,
            (None, true) => 0,
            (None, false) => {
                let had = p.pieces_have as u64 * self.piece_length;
                self.total.saturating_sub(had).max(1)
            }
        }
    }
}

/// The counts a session ended with, however it ended.
pub(super) fn last_progress(result: &Result<Progress, Ended>) -> &Progress {
    match result {
        Ok(p) | Err(Ended::GaveUp(p) | Ended::Interrupted(p) | Ended::StorageFailed(_, p)) => p,
    }
}
