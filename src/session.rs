//! One torrent's download from start to finish — walkthrough §7–§9.
//!
//! ```text
//!   storage: open files, hash what is already there (resume)
//!      │
//!   announcer thread ("tracker") ──peers──►  scheduler thread ──spawns──► peer threads
//!                                              ▲   Event / Command    │      │
//!                                              └──────────────────────┘      └─ blocks → disk
//!   verify threads ◄── completed pieces ── scheduler      (SHA-1, Event::Verified back)
//! ```
//!
//! [`download`] builds that picture, waits for the scheduler to finish, tells the trackers
//! (`completed`, then `stopped`), and returns what happened.

use crate::metainfo::Metainfo;
use crate::peer::thread::{self as peer_thread, PeerContext};
use crate::peer_id::PeerId;
use crate::piece::PieceLayout;
use crate::scheduler::{Ended, Progress, Scheduler};
use crate::storage::{Storage, StorageError};
use crate::tracker::announcer::{Announcer, Command as AnnouncerCommand};
use crate::tracker::tiers::TrackerTiers;
use crate::tracker::{AnnounceRequest, Event as TrackerEvent, TrackerConfig};
use crate::wire::Bitfield;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Where the content goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A directory: multi-file torrents get `DIR/name/...`, single-file ones `DIR/name`.
    Directory(PathBuf),
    /// The file itself (single-file torrents only).
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct DownloadOptions {
    pub target: Target,
    /// Peers to connect to directly, with or without a tracker.
    pub peers: Vec<SocketAddr>,
    /// The port we announce.
    pub port: u16,
    pub max_peers: usize,
    /// Print every wire message on stderr.
    pub trace: bool,
    pub tracker: TrackerConfig,
    /// Fail if nothing arrives for this long (`None`: keep trying until stopped).
    pub give_up: Option<Duration>,
    /// Fetch only this piece (the `download_piece` command).
    pub only_piece: Option<u32>,
    /// For stepping through in a debugger: one peer at a time, no timeouts that would drop a
    /// paused thread, and the fixed peer id `-PW0001-debugdebug00`.
    pub debug_single_peer: bool,
    /// Raised (by Ctrl-C) to stop the download cleanly.
    pub stop: Option<Arc<AtomicBool>>,
}

#[derive(Debug, Error)]
pub enum SessionError {
    #[error("the torrent names no tracker and no --peer was given: nowhere to find peers")]
    NoPeers,
    #[error("piece {index} does not exist (the torrent has {count})")]
    NoSuchPiece { index: u32, count: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("no data arrived for {0:?}; {1} of {2} pieces verified")]
    Stalled(Duration, usize, usize),
    #[error("interrupted: {0} of {1} pieces verified and kept on disk; run again to resume")]
    Interrupted(usize, usize),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// Downloads `metainfo` (or one piece of it), resuming from data already at the target.
pub fn download(
    metainfo: &Metainfo,
    options: &DownloadOptions,
    mut on_progress: impl FnMut(&Progress) + Send + 'static,
) -> Result<(Arc<Storage>, Progress), SessionError> {
    let storage = Arc::new(open_storage(metainfo, &options.target));
    let layout = Arc::new(PieceLayout::new(&metainfo.info));
    let have = starting_pieces(&storage, &layout, options)?;
    if have.is_complete() {
        let n = have.count();
        return Ok((
            storage,
            Progress {
                pieces_at_start: n,
                pieces_have: n,
                pieces_total: n,
                ..Progress::default()
            },
        ));
    }
    let tiers = TrackerTiers::new(metainfo.tracker_tiers(), options.tracker);
    if tiers.is_empty() && options.peers.is_empty() {
        return Err(SessionError::NoPeers);
    }
    let our_id = if options.debug_single_peer {
        PeerId(*b"-PW0001-debugdebug00")
    } else {
        PeerId::generate()
    };
    let left = bytes_left(&layout, &have);
    let announcer = (!tiers.is_empty() && left > 0)
        .then(|| {
            Announcer::spawn(
                tiers,
                announce_request(metainfo, our_id, options.port, left),
            )
        })
        .transpose()
        .map_err(SessionError::Thread)?;
    let events = crossbeam_channel::unbounded();
    let context = PeerContext {
        info_hash: metainfo.info_hash,
        our_id,
        layout: Arc::clone(&layout),
        storage: Arc::clone(&storage),
        events: events.0.clone(),
        trace: options.trace,
        patient: options.debug_single_peer,
    };
    let connect = Box::new(move |addr| peer_thread::spawn(addr, context.clone()));
    let mut scheduler = Scheduler::new(
        Arc::clone(&layout),
        &have,
        Arc::clone(&storage),
        events,
        connect,
        if options.debug_single_peer {
            1
        } else {
            options.max_peers
        },
    );
    options.peers.iter().for_each(|p| scheduler.add_peer(*p));
    let progress_to_tracker = announcer.as_ref().map(|a| a.commands.clone());
    if let Some(announcer) = &announcer {
        scheduler.take_peers_from(announcer.peers.clone());
    }
    let give_up = options.give_up;
    let total = layout.total_length;
    let mut last_report = Instant::now();
    let report = move |p: &Progress| {
        if let Some(tracker) = &progress_to_tracker
            && last_report.elapsed() > Duration::from_secs(5)
        {
            last_report = Instant::now();
            let _ = tracker.send(AnnouncerCommand::Progress {
                uploaded: 0,
                downloaded: p.downloaded,
                left: total.saturating_sub(p.downloaded),
            });
        }
        on_progress(p);
    };
    let stop = options.stop.clone();
    let result = std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || scheduler.run(give_up, stop, report))
        .map_err(SessionError::Thread)?
        .join()
        .unwrap_or(Err(Ended::GaveUp(Progress::default())));
    finish_announcing(announcer, result.is_ok());
    match result {
        Ok(progress) => Ok((storage, progress)),
        Err(Ended::GaveUp(p)) => Err(SessionError::Stalled(
            give_up.unwrap_or_default(),
            p.pieces_have,
            p.pieces_total,
        )),
        Err(Ended::Interrupted(p)) => Err(SessionError::Interrupted(p.pieces_have, p.pieces_total)),
    }
}

fn open_storage(metainfo: &Metainfo, target: &Target) -> Storage {
    match target {
        Target::Directory(dir) => Storage::for_torrent(&metainfo.info, dir, true),
        Target::File(file) => Storage::new(
            vec![(file.clone(), metainfo.info.total_length, false)],
            true,
        ),
    }
}

/// The pieces we start with: those already on disk (resume), or, to fetch a single piece,
/// "all the others" so that the scheduler asks for that one only.
fn starting_pieces(
    storage: &Storage,
    layout: &PieceLayout,
    options: &DownloadOptions,
) -> Result<Bitfield, SessionError> {
    let count = layout.num_pieces();
    if let Some(index) = options.only_piece {
        if index as usize >= count {
            return Err(SessionError::NoSuchPiece { index, count });
        }
        let mut others = Bitfield::new(count);
        (0..count)
            .filter(|&i| i != index as usize)
            .for_each(|i| others.set(i));
        return Ok(others);
    }
    storage.create_files()?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let have = storage.verify_existing(layout, threads);
    log::info!("resume: {} of {count} pieces already on disk", have.count());
    Ok(have)
}

fn bytes_left(layout: &PieceLayout, have: &Bitfield) -> u64 {
    (0..layout.num_pieces() as u32)
        .filter(|&i| !have.has(i as usize))
        .map(|i| u64::from(layout.piece_len(i)))
        .sum()
}

fn announce_request(metainfo: &Metainfo, peer_id: PeerId, port: u16, left: u64) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: metainfo.info_hash,
        peer_id,
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event: TrackerEvent::Started,
        numwant: Some(50),
        key: fastrand::u32(..),
    }
}

/// Tells the trackers we finished (`completed`), then that we leave (`stopped`).
fn finish_announcing(announcer: Option<Announcer>, completed: bool) {
    let Some(announcer) = announcer else { return };
    if completed {
        let _ = announcer.commands.send(AnnouncerCommand::Completed);
    }
    announcer.stop();
}
