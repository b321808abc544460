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

use crate::choker::ChokerConfig;
use crate::dht::node::Command as DhtCommand;
use crate::dht::thread::{DhtError, DhtOptions};
use crate::metainfo::{InfoHash, Metainfo};
use crate::peer::dial::Transport;
use crate::peer::encrypted::Encryption;
use crate::peer::thread as peer_thread;
use crate::peer_id::PeerId;
use crate::piece::PieceLayout;
use crate::scheduler::picker::PieceOrder;
use crate::scheduler::snapshot::{PeerSource, SnapshotBoard};
use crate::scheduler::{
    AfterComplete, Ended, Outcome, Progress, Scheduler, Settings, Traffic, verify,
};
use crate::storage::{Selection, Storage, StorageError, Wanted};
use crate::trace::Trace;
use crate::tracker::announcer::Announcer;
use crate::tracker::tiers::TrackerTiers;
use crate::tracker::{AnnounceRequest, TrackerConfig};
use crate::web_seed::{WebSeedContext, WebSeeds};
use crate::wire::Bitfield;
use crossbeam_channel::Receiver;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use thiserror::Error;

mod local;
mod peer_side;
mod shared;
mod tracker_reports;
mod udp;

use peer_side::PeerSide;
use tracker_reports::{Left, TrackerReporter, last_progress, tracker_reporter};
use udp::UdpSide;

pub use local::start as start_lsd;
pub use shared::Shared;

/// Where the content goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A directory: multi-file torrents get `DIR/name/...`, single-file ones `DIR/name`.
    Directory(PathBuf),
    /// The file itself (single-file torrents only).
    File(PathBuf),
    /// The torrent's own folder, whatever its name (multi-file torrents: `FOLDER/path/...`).
    Folder(PathBuf),
}

#[derive(Debug, Clone)]
pub struct DownloadOptions {
    pub target: Target,
    /// Peers to connect to directly, with or without a tracker.
    pub peers: Vec<SocketAddr>,
    /// The port we listen on and announce (0, or taken by another program: any free port).
    pub port: u16,
    /// The address we listen on: `::` (the default) is every address, IPv4 and IPv6 (one
    /// dual-stack socket); any other address is that one alone.
    pub bind: IpAddr,
    pub max_peers: usize,
    /// Where every wire message is traced (`--trace`: stderr).
    pub trace: Trace,
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
    /// Stop when complete, or go on seeding.
    pub after_complete: AfterComplete,
    /// `seed`: the data must all be there and verify; nothing is downloaded.
    pub require_complete: bool,
    /// Bytes per second, shared by all uploads (`--max-upload-rate`).
    pub max_upload_rate: Option<u64>,
    /// Bytes per second, shared by all downloads from peers (`--max-download-rate`).
    pub max_download_rate: Option<u64>,
    /// Drop a peer that sends nothing for this long (`--peer-timeout`).
    pub peer_timeout: Duration,
    /// Our peer id (`None`: a fresh random one).
    pub peer_id: Option<PeerId>,
    pub choker: ChokerConfig,
    /// `--piece-order`: which missing piece is started next (rarest first by default).
    pub piece_order: PieceOrder,
    /// The DHT (BEP 5): where to find our way in. `None`: no DHT (`--no-dht`). Never used
    /// for a private torrent (BEP 27).
    pub dht: Option<DhtOptions>,
    /// `--encryption`: MSE/PE for every connection of the session.
    pub encryption: Encryption,
    /// `--transport`: TCP, uTP or both, dialling and accepting.
    pub transport: Transport,
    /// `--select-file`: fetch (or, seeding, offer) only these files. `None`: every file.
    pub selection: Option<Selection>,
    /// Local peer discovery (BEP 14) on the LAN: off with `--no-lsd`, and never for a
    /// private torrent (BEP 27).
    pub lsd: bool,
    /// Fetch from the torrent's web seeds (`url-list`, BEP 19); off with `--no-web-seeds`.
    pub web_seeds: bool,
    /// `--web`: where the scheduler publishes snapshots for the live view.
    pub web: Option<SnapshotBoard>,
    /// Several torrents in one process: the listener, UDP socket and DHT node they all use
    /// (`port`, `bind` and `dht` were the [`Shared::start`] caller's). `None`: this session
    /// opens its own.
    pub shared: Option<Shared>,
}

impl DownloadOptions {
    /// Defaults for a download into `target`: port 6881, 50 peers, stop when complete.
    pub fn new(target: Target) -> DownloadOptions {
        DownloadOptions {
            target,
            peers: Vec::new(),
            port: 6881,
            bind: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            max_peers: 50,
            trace: Trace::Off,
            tracker: TrackerConfig::default(),
            give_up: None,
            only_piece: None,
            debug_single_peer: false,
            stop: None,
            after_complete: AfterComplete::Stop,
            require_complete: false,
            max_upload_rate: None,
            max_download_rate: None,
            peer_timeout: Duration::from_secs(120),
            peer_id: None,
            choker: ChokerConfig::default(),
            piece_order: PieceOrder::default(),
            dht: None,
            encryption: Encryption::default(),
            transport: Transport::default(),
            selection: None,
            lsd: false,
            web_seeds: true,
            web: None,
            shared: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    V2Layout(#[from] crate::piece::V2LayoutError),
    #[error(
        "the torrent names no tracker, no --peer was given, the DHT has no node to start \
         from and local peer discovery is off (--no-lsd, or a private torrent): nowhere to \
         find peers"
    )]
    NoPeers,
    #[error(transparent)]
    Dht(#[from] DhtError),
    #[error(transparent)]
    Udp(#[from] crate::utp::socket::UtpError),
    #[error("piece {index} does not exist (the torrent has {count})")]
    NoSuchPiece { index: u32, count: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("no data arrived for {0:?}; {1} of {2} pieces verified")]
    Stalled(Duration, usize, usize),
    #[error("interrupted: {0} of {1} pieces verified and kept on disk; run again to resume")]
    Interrupted(usize, usize),
    #[error(
        "{missing} of {total} pieces are missing or do not match the torrent (the first is \
         piece {first}, bytes {start}..{end} of the torrent's data); `download --seed` would fetch them"
    )]
    Incomplete {
        missing: usize,
        total: usize,
        first: u32,
        start: u64,
        end: u64,
    },
    #[error(
        "the download stopped: {have} of {total} pieces are verified and kept on disk; run \
         again to resume once the disk is fixed (room, permissions, the files in place)"
    )]
    DiskFailed {
        #[source]
        error: StorageError,
        have: usize,
        total: usize,
    },
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Swarms(#[from] crate::peer::swarms::SwarmsError),
    #[error(
        "peerwire crashed: the scheduler thread panicked ({0}). This is a bug in peerwire; \
         every piece verified so far is kept on disk, and a new run resumes from it"
    )]
    Crashed(String),
}

/// How a session went.
pub struct Summary {
    pub storage: Arc<Storage>,
    pub progress: Progress,
    /// With whom we traded what, by peer id.
    pub traffic: Vec<Traffic>,
    pub peer_id: PeerId,
}

/// Downloads `metainfo` (or one piece of it), resuming from data already at the target, then
/// seeds if asked to. A `seed` is a download that starts complete.
pub fn download(
    metainfo: &Metainfo,
    options: &DownloadOptions,
    on_progress: impl FnMut(&Progress) + Send + 'static,
) -> Result<Summary, SessionError> {
    // A v2-only torrent without its piece layers cannot check a piece: say so before the
    // disk or the network is touched.
    let layout = Arc::new(PieceLayout::of(metainfo)?);
    let storage = Arc::new(open_storage(metainfo, options)?);
    let wanted = match options.selection {
        Some(_) => storage.wanted(&layout),
        None => Wanted::every_piece(&layout),
    };
    let have = starting_pieces(&storage, &layout, options)?;
    let done = wanted.pieces().all(|i| have.has(i as usize));
    if options.require_complete && !done {
        return Err(incomplete(&layout, &have, &wanted));
    }
    let our_id = options
        .peer_id
        .unwrap_or_else(|| match options.debug_single_peer {
            true => PeerId(*b"-PW0001-debugdebug00"),
            false => PeerId::generate(),
        });
    if done && options.after_complete == AfterComplete::Stop {
        return Ok(already_complete(storage, &have, our_id));
    }
    let tiers = TrackerTiers::new(metainfo.tracker_tiers(), options.tracker);
    // BEP 27: a private torrent's peers come from its tracker only, never from the DHT.
    let dht_options = options.dht.as_ref().filter(|_| !metainfo.info.private);
    let dht_way_in = dht_options.is_some_and(DhtOptions::has_a_way_in);
    // [W20.6] BEP 27 again: nor from the neighbours on the LAN, and a private torrent's
    // info hash is not told to the whole network either.
    let lsd_on = options.lsd && !metainfo.info.private;
    // A web seed alone is somewhere to download from (BEP 19): no peer needed.
    let web_seed_urls = web_seed_urls(metainfo, options, &have);
    let nowhere = tiers.is_empty() && options.peers.is_empty() && web_seed_urls.is_empty();
    if nowhere && !dht_way_in && !lsd_on && !done {
        return Err(SessionError::NoPeers);
    }
    // Several torrents in one process share the UDP socket and the DHT node; one alone
    // opens its own.
    let own_udp = match &options.shared {
        Some(_) => None,
        None => UdpSide::start(options, dht_options)?,
    };
    let shared = options.shared.as_ref();
    let udp = own_udp
        .as_ref()
        .or_else(|| shared.and_then(|s| s.net().udp.as_ref()));
    // BEP 27 holds for a shared node too: a private torrent does not use it.
    let dht = udp
        .and_then(|udp| udp.dht.as_ref())
        .filter(|_| dht_options.is_some());
    let swarm = PeerSide::start(metainfo, options, &storage, &layout, our_id, udp, shared)?;
    // The names the swarm knows the torrent by: a hybrid (BEP 52) is in two swarms, the v1
    // one by its SHA-1 info hash and the v2 one by its truncated SHA-256; both hear of us.
    let names: Vec<InfoHash> = std::iter::once(metainfo.info_hash)
        .chain(swarm.context.v2_info_hash)
        .collect();
    // The DHT looks for peers beside the trackers, and announces our listen port. (Each
    // channel of peers goes with where they come from: the live view shows it.)
    let mut found_peers = Vec::new();
    if let Some(dht) = dht {
        for &info_hash in &names {
            let (peers, found) = crossbeam_channel::unbounded();
            dht.send(DhtCommand::Track {
                info_hash,
                announce_port: Some(swarm.port),
                peers,
            });
            found_peers.push((found, PeerSource::Dht));
        }
    }
    // The neighbours on the LAN, beside the trackers and the DHT (BEP 14).
    let lsd = lsd_on
        .then(|| start_lsd(&names, swarm.port, options.bind))
        .flatten();
    found_peers.extend(lsd.as_ref().map(|lsd| (lsd.peers.clone(), PeerSource::Lsd)));
    let left = Left::new(&layout, options.only_piece);
    let started = left.at_start(&layout, &have);
    let mut announcers = Vec::new();
    if !tiers.is_empty() {
        let mut tiers = Some(tiers);
        for &info_hash in &names {
            let request = AnnounceRequest::started(info_hash, our_id, swarm.port, started);
            // The first name takes the tiers already built; the second its own copy.
            let tiers = tiers
                .take()
                .unwrap_or_else(|| TrackerTiers::new(metainfo.tracker_tiers(), options.tracker));
            // Several torrents of one process share the `tracker` thread; one alone has its own.
            let announcer = match shared {
                Some(shared) => shared.net().tracker.add(tiers, request),
                None => Announcer::spawn(tiers, request).map_err(SessionError::Thread)?,
            };
            announcers.push(announcer);
        }
    }
    let reporter = tracker_reporter(&announcers, left, have.is_complete());
    // Beside the peer threads, speaking their contract (`web_seed`); they connect themselves.
    let web_seeds = WebSeeds::start(
        &web_seed_urls,
        &metainfo.info,
        WebSeedContext {
            layout: Arc::clone(&layout),
            storage: Arc::clone(&storage),
            events: swarm.events.0.clone(),
            download_limit: swarm.context.download_limit.clone(),
        },
    );
    if !web_seeds.is_empty() {
        log::info!("{} web seeds (BEP 19)", web_seeds.len());
    }
    let outcome = run_scheduler(
        &swarm,
        &have,
        wanted,
        options,
        reporter,
        found_peers,
        on_progress,
    );
    web_seeds.stop();
    for announcer in announcers {
        if let Ok(outcome) = &outcome {
            // The announcer ends only on `Stop`: this fails only if it died (a panic), and
            // then the tracker hears nothing more from us anyway.
            let _ = announcer
                .commands
                .send(left.command(last_progress(&outcome.result)));
        }
        // A `completed` still queued goes out, then `stopped`, while the listener still
        // answers at the port the tracker lists.
        announcer.stop();
    }
    swarm.stop();
    if let Some(lsd) = lsd {
        lsd.stop();
    }
    if let Some(dht) = dht {
        names.iter().for_each(|&n| dht.send(DhtCommand::Forget(n)));
    }
    if let Some(udp) = own_udp {
        udp.stop(); // the DHT writes `--dht-state`
    }
    let outcome = outcome?;
    match outcome.result {
        Ok(progress) => Ok(Summary {
            storage,
            progress,
            traffic: outcome.traffic,
            peer_id: our_id,
        }),
        Err(Ended::GaveUp(p)) => Err(SessionError::Stalled(
            options.give_up.unwrap_or_default(),
            p.pieces_have,
            p.pieces_total,
        )),
        Err(Ended::Interrupted(p)) => Err(SessionError::Interrupted(p.pieces_have, p.pieces_total)),
        Err(Ended::StorageFailed(error, p)) => Err(SessionError::DiskFailed {
            error,
            have: p.pieces_have,
            total: p.pieces_total,
        }),
    }
}

/// The web seeds to use: none when turned off, when there is nothing to fetch, or under
/// `--debug-single-peer` (one source at a time, and it is a peer).
fn web_seed_urls(metainfo: &Metainfo, options: &DownloadOptions, have: &Bitfield) -> Vec<String> {
    match options.web_seeds && !options.debug_single_peer && !have.is_complete() {
        true => metainfo.url_list.clone(),
        false => Vec::new(),
    }
}

/// Runs the scheduler on its own thread (named `scheduler`) until the session ends; keeps the
/// trackers told of our progress, and of completion when it happens.
fn run_scheduler(
    swarm: &PeerSide,
    have: &Bitfield,
    wanted: Wanted,
    options: &DownloadOptions,
    (mut tell_tracker, peers): (TrackerReporter, Vec<Receiver<Vec<SocketAddr>>>),
    found_peers: Vec<(Receiver<Vec<SocketAddr>>, PeerSource)>,
    mut on_progress: impl FnMut(&Progress) + Send + 'static,
) -> Result<Outcome, SessionError> {
    let context = swarm.context.clone();
    let connect = Box::new(move |addr| peer_thread::spawn(addr, context.clone()));
    let count = swarm.layout.num_pieces();
    let settings = Settings {
        max_peers: if options.debug_single_peer {
            1
        } else {
            options.max_peers
        },
        after_complete: options.after_complete,
        choker: options.choker,
        piece_order: options.piece_order,
        our_id: swarm.context.our_id,
        pex: swarm.context.pex,
        advertise: match options.only_piece {
            Some(_) => Bitfield::new(count), // the other pieces are not really ours
            None => have.clone(),
        },
        wanted,
    };
    // The hash checks run on their own threads, started here, so that the scheduler starts
    // none and its decisions can be tested alone.
    let verify = verify::start(
        Arc::clone(&swarm.layout),
        Arc::clone(&swarm.storage),
        swarm.events.0.clone(),
    );
    let mut scheduler = Scheduler::new(
        Arc::clone(&swarm.layout),
        have,
        swarm.events.1.clone(),
        verify,
        connect,
        settings,
    );
    options.peers.iter().for_each(|p| scheduler.add_peer(*p));
    for peers in peers {
        scheduler.take_peers_from(peers, PeerSource::Tracker);
    }
    for (peers, source) in found_peers {
        scheduler.take_peers_from(peers, source);
    }
    if let Some(board) = &options.web {
        scheduler.publish_to(board.clone());
    }
    let report = move |p: &Progress| {
        tell_tracker(p);
        on_progress(p);
    };
    let (give_up, stop) = (options.give_up, options.stop.clone());
    let scheduler = std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || scheduler.run(give_up, stop, report))
        .map_err(SessionError::Thread)?;
    join_scheduler(scheduler)
}

/// Waits for the scheduler thread. A panic there is a bug of ours and is reported as one,
/// not as a download that gave up: the user should know to report it, and that every piece
/// verified so far is on disk all the same.
fn join_scheduler(scheduler: std::thread::JoinHandle<Outcome>) -> Result<Outcome, SessionError> {
    scheduler.join().map_err(|panic| {
        let why = crate::events::panic_text(panic.as_ref());
        SessionError::Crashed(why)
    })
}

fn already_complete(storage: Arc<Storage>, have: &Bitfield, peer_id: PeerId) -> Summary {
    let n = have.count();
    let progress = Progress {
        pieces_at_start: n,
        pieces_have: n,
        pieces_total: n,
        ..Progress::default()
    };
    Summary {
        storage,
        progress,
        traffic: Vec::new(),
        peer_id,
    }
}

/// `seed` found pieces missing (of the selected files, with `--select-file`): say how many,
/// and where the first one is.
fn incomplete(layout: &PieceLayout, have: &Bitfield, wanted: &Wanted) -> SessionError {
    let missing: Vec<u32> = wanted.pieces().filter(|&i| !have.has(i as usize)).collect();
    let first = missing.first().copied().unwrap_or(0);
    let start = layout.piece_offset(first);
    SessionError::Incomplete {
        missing: missing.len(),
        total: wanted.count(),
        first,
        start,
        end: start + u64::from(layout.piece_len(first)),
    }
}

/// The torrent's files at the target, the selected ones only; read-only when we only seed.
fn open_storage(metainfo: &Metainfo, options: &DownloadOptions) -> Result<Storage, StorageError> {
    let writable = !options.require_complete;
    let storage = match &options.target {
        Target::Directory(dir) => Storage::for_torrent(&metainfo.info, dir, writable),
        Target::Folder(folder) => Storage::in_folder(&metainfo.info, folder, writable),
        Target::File(file) => Storage::new(
            vec![(file.clone(), metainfo.info.total_length, false)],
            writable,
        ),
    };
    // Every file when none was chosen: a side file left by an earlier run with
    // `--select-file` then gives its bytes back to the files.
    let all = Selection::all(&metainfo.info);
    let selection = options.selection.as_ref().unwrap_or(&all);
    storage.select(selection, metainfo.info.piece_length)
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
    if !options.require_complete {
        storage.create_files()?;
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let have = storage.verify_existing(layout, threads);
    log::info!("resume: {} of {count} pieces already on disk", have.count());
    Ok(have)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_seeds_are_used_unless_off_debugging_or_complete() {
        let content = b"web seed";
        // One 8-byte piece; `url-list` after `info`, where bencoding's key order puts it.
        let bytes = [
            &b"d4:infod6:lengthi8e4:name5:x.bin12:piece lengthi16384e6:pieces20:"[..],
            &crate::encoding::sha1(content),
            b"e8:url-listl15:http://h/x.bin/ee",
        ]
        .concat();
        let metainfo = Metainfo::from_bytes(&bytes).expect("a torrent with a url-list");
        let options = DownloadOptions::new(Target::Directory(".".into()));
        let none = Bitfield::new(1);
        let all = Bitfield::full(1);
        assert_eq!(
            web_seed_urls(&metainfo, &options, &none),
            ["http://h/x.bin/"]
        );
        assert!(web_seed_urls(&metainfo, &options, &all).is_empty());
        let off = DownloadOptions {
            web_seeds: false,
            ..options.clone()
        };
        assert!(web_seed_urls(&metainfo, &off, &none).is_empty());
        let debugging = DownloadOptions {
            debug_single_peer: true,
            ..options
        };
        assert!(web_seed_urls(&metainfo, &debugging, &none).is_empty());
    }

    #[test]
    fn a_panic_of_the_scheduler_is_a_crash_not_a_stall() {
        let scheduler = std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(|| -> Outcome { panic!("piece 7 twice in the picker") })
            .unwrap();
        let Err(error) = join_scheduler(scheduler) else {
            panic!("a panicking scheduler gave an outcome");
        };
        let text = error.to_string();
        assert!(matches!(error, SessionError::Crashed(_)), "{text}");
        assert!(
            text.contains("crashed") && text.contains("piece 7 twice"),
            "{text}"
        );
    }
}
