//! One function per command, printing exactly what the command-line contract (`docs/cli.md`)
//! promises.
//!
//! This is the only module that prints. Results go to stdout, everything else (logs,
//! progress, errors) to stderr. A failure prints one `error:` line saying what went wrong and
//! where, then a `caused by:` line for each underlying cause, and exits with status 1
//! (status 2, usage errors, is clap's; and ours for the one usage error clap cannot see, a
//! `--select-file` number past the torrent's last file). Stdout goes through one buffer, and a
//! reader that leaves early (`peerwire info big.torrent | head -1`) ends the command quietly
//! with status 0 (`print_lines`).

pub mod dht;
pub mod magnet;
pub mod many;
pub mod progress;
pub mod web;

use crate::bencode;
use crate::create::{self, CreateError, CreateOptions};
use crate::metainfo::{Metainfo, MetainfoError};
use crate::peer::connection::{Connection, PeerError};
use crate::peer_id::PeerId;
use crate::session::{self, DownloadOptions, SessionError, Target};
use crate::storage::{FileList, SelectError, Selection};
use crate::tracker::tiers::{AnnounceError, TrackerTiers};
use crate::tracker::{AnnounceRequest, TrackerConfig};
use crate::tracker_server::{RunningTracker, ServerConfig, ServerError};
use crate::wire::handshake::RESERVED_EXTENSIONS;
use std::ffi::OsStr;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;

/// What can make a command fail, with the file or argument it concerns.
#[derive(Debug, Error)]
pub enum CliError {
    #[error("cannot decode the argument")]
    Decode(#[source] bencode::DecodeError),
    #[error("cannot load torrent {}", path.display())]
    Torrent {
        path: PathBuf,
        source: MetainfoError,
    },
    #[error("cannot create a torrent of {}", path.display())]
    Create { path: PathBuf, source: CreateError },
    #[error(transparent)]
    Announce(#[from] AnnounceError),
    #[error(transparent)]
    Tracker(#[from] ServerError),
    #[error("peer {addr}")]
    Peer { addr: SocketAddr, source: PeerError },
    #[error(transparent)]
    Download(#[from] SessionError),
    #[error("piece {index} was not fetched: {reason}; nothing was written")]
    PieceNotFetched { index: u32, reason: String },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a usable magnet link")]
    Magnet(#[source] crate::magnet::MagnetError),
    #[error("cannot get the torrent's metadata from peers")]
    Metadata(#[source] crate::metadata_fetch::MetadataError),
    #[error("cannot fetch the piece layers of a v2 torrent")]
    Layers(#[source] crate::layer_fetch::LayerError),
    #[error(
        "no peers: the magnet link names no tracker and no peer (x.pe), no --peer was given, \
         and the DHT found none"
    )]
    NoPeers,
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the demo failed")]
    Demo(#[source] crate::demo::DemoError),
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),
    #[error("DHT: {0}")]
    Dht(String),
    /// Worded like clap's own usage errors, and like them exits with status 2: the list was
    /// fine as text, but names a file the torrent does not have.
    #[error("invalid value '{list}' for '--select-file <LIST>': {error}")]
    SelectFile { list: FileList, error: SelectError },
    #[error("the web view failed")]
    Web(#[source] crate::web::WebError),
    /// Several torrents, some failed: each printed its own `error:` lines as it ended. The
    /// exit status.
    #[error("some torrents failed")]
    Printed(u8),
}

impl CliError {
    /// 2 for a usage error (a wrong argument), 1 for everything else.
    fn exit_status(&self) -> u8 {
        match self {
            CliError::SelectFile { .. } => 2,
            CliError::Printed(status) => *status,
            _ => 1,
        }
    }
}

/// Sets up `env_logger` on stderr: `-q` errors only, default warnings, `-v` info,
/// `-vv` debug, `-vvv` trace. `RUST_LOG` overrides all of them.
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).build();
    let max_level = logger.filter();
    // Log lines go through the progress bar, so that it is drawn once, below them.
    if log::set_boxed_logger(Box::new(progress::ThroughTheBar(logger))).is_ok() {
        log::set_max_level(max_level);
    }
}

/// Prints a failure as `error:` plus its `caused by:` chain and picks the exit status.
pub fn exit(result: Result<(), CliError>) -> ExitCode {
    let Err(error) = result else {
        return ExitCode::SUCCESS;
    };
    if let CliError::Printed(status) = error {
        return ExitCode::from(status); // every failure is on stderr already
    }
    eprintln!("error: {error}");
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        eprintln!("caused by: {inner}");
        cause = inner.source();
    }
    ExitCode::from(error.exit_status())
}

/// `decode <bencoded>`: the value as one line of JSON.
pub fn decode(bencoded: &OsStr) -> Result<(), CliError> {
    let bytes = bencoded.as_encoded_bytes();
    let decoded = bencode::decode(bytes).map_err(CliError::Decode)?;
    print_lines(&[bencode::to_json(&decoded.value)])
}

/// `info <file.torrent>`: tracker, length, (files), info hash, piece length, piece hashes.
pub fn info(path: &Path) -> Result<(), CliError> {
    let metainfo = load_torrent(path)?;
    print_lines(&info_lines(&metainfo))
}

/// The lines `info` prints, in the order and with the labels of the CLI contract.
pub fn info_lines(metainfo: &Metainfo) -> Vec<String> {
    use crate::metainfo::MetaVersion;
    let info = &metainfo.info;
    let tracker = metainfo
        .announce
        .clone()
        .or_else(|| metainfo.tracker_tiers().first().map(|t| t[0].clone()));
    let mut lines = vec![
        format!("Tracker URL: {}", tracker.as_deref().unwrap_or("(none)")),
        format!("Length: {}", info.total_length),
    ];
    if info.multi_file {
        lines.push("Files:".to_string());
        lines.extend(
            info.content_files()
                .map(|f| format!("{} {}", f.length, f.display_path())),
        );
    }
    // A v2-only torrent is named by its SHA-256 alone; a hybrid has both names (BEP 52).
    if metainfo.version != MetaVersion::V2 {
        lines.push(format!("Info Hash: {}", metainfo.info_hash));
    }
    if let Some(v2) = &metainfo.v2 {
        lines.push(format!("Info Hash v2: {}", v2.info_hash));
    }
    lines.push(format!("Piece Length: {}", info.piece_length));
    match (&metainfo.v2, metainfo.version) {
        // v2 has no SHA-1 piece hashes: each file's Merkle root stands for its pieces.
        (Some(v2), MetaVersion::V2) => {
            lines.push("Pieces Roots:".to_string());
            lines.extend(v2.files.iter().filter_map(|f| {
                let root = f.pieces_root?;
                Some(format!("{root} {}", f.display_path()))
            }));
        }
        _ => {
            lines.push("Piece Hashes:".to_string());
            lines.extend(info.pieces.iter().map(|h| h.to_hex()));
        }
    }
    lines
}

/// `peers <file.torrent>`: one look-up ([`look_up_peers`]) at the first tracker that answers,
/// in BEP 12 order; prints the peers it returned, one `ip:port` per line (IPv6 as
/// `[addr]:port`).
pub fn peers(path: &Path, port: u16, config: TrackerConfig) -> Result<(), CliError> {
    let metainfo = load_torrent(path)?;
    let mut tiers = TrackerTiers::new(metainfo.tracker_tiers(), config);
    let left = metainfo.info.total_length;
    let request = AnnounceRequest::started(metainfo.info_hash, PeerId::generate(), port, left);
    let (url, response) = look_up_peers(&mut tiers, request)?;
    log::info!("{url} answered: {} peers", response.peers.len());
    print_lines(
        &response
            .peers
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
    )
}

/// Asks the trackers for peers without staying in the swarm: `started` from a port we hold,
/// then, once answered, `stopped` to the tracker that answered. A command that only looks
/// (`peers`, and the magnet commands before they have the metadata) must not leave the
/// tracker handing out an address where nobody answers. [W3.6]
///
/// The port is held (bound) while the tracker lists us: announcing a port another program
/// listens on (a seed on the default 6881) would replace that program in the tracker's list,
/// and our `stopped` would remove it. If `request.port` is taken, any free port is announced.
pub(crate) fn look_up_peers(
    tiers: &mut TrackerTiers,
    mut request: AnnounceRequest,
) -> Result<(String, crate::tracker::AnnounceResponse), CliError> {
    let held = hold_port(request.port)?;
    request.port = held.local_addr().map_or(request.port, |a| a.port());
    let (url, response) = tiers.announce(&request)?;
    request.event = crate::tracker::Event::Stopped;
    // Once more if it fails: a kept-alive connection the tracker has just closed fails the
    // first try, and a lost `stopped` leaves the tracker handing out our address.
    let left = tiers
        .announce_to(&url, &request)
        .or_else(|_| tiers.announce_to(&url, &request));
    if let Err(e) = left {
        log::warn!("could not tell {url} that we left: {e}");
    }
    Ok((url, response))
}

/// Binds `port` on every address (or any free port when it is taken, or 0).
fn hold_port(port: u16) -> Result<std::net::TcpListener, CliError> {
    let any = |port| SocketAddr::from(([0, 0, 0, 0], port));
    std::net::TcpListener::bind(any(port))
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => std::net::TcpListener::bind(any(0)),
            _ => Err(e),
        })
        .map_err(|source| CliError::Listen {
            addr: any(port),
            source,
        })
}

/// `handshake <torrent> <ip:port>`: `Peer ID: <hex>` of the peer, after a BEP 3 handshake
/// announcing the extension protocol (reserved `00 00 00 00 00 10 00 00`, as `docs/cli.md` says).
pub fn handshake(path: &Path, addr: SocketAddr) -> Result<(), CliError> {
    let metainfo = load_torrent(path)?;
    let connection = Connection::open(
        addr,
        metainfo.info_hash,
        PeerId::generate(),
        RESERVED_EXTENSIONS,
        Default::default(),
        // The teaching command shows the plain handshake over TCP: what BEP 3 describes.
        &crate::peer::dial::Dialer::tcp(crate::peer::encrypted::Encryption::Off),
    )
    .map_err(|source| CliError::Peer { addr, source })?;
    print_lines(&[format!("Peer ID: {}", connection.remote.peer_id.to_hex())])?;
    // The next command (`download_piece`, say) may dial the same peer at once.
    connection.close(crate::metadata_fetch::CLOSE_WAIT);
    Ok(())
}

/// `download -o <out> <torrent>`: the whole torrent, with a progress bar on stderr (then
/// seeding, with `--seed`). Ctrl-C stops cleanly: the trackers hear `stopped`, every verified
/// piece stays on disk.
pub fn download(
    path: &Path,
    out: &Path,
    files: Option<&FileList>,
    web_addr: Option<SocketAddr>,
    options: impl FnOnce(Target) -> DownloadOptions,
) -> Result<(), CliError> {
    let metainfo = load_torrent(path)?;
    let selection = choose_files(&metainfo, files)?;
    let view = web::start(web_addr, &["us".to_string()])?;
    let options = DownloadOptions {
        selection,
        ..options(target_for(&metainfo, out))
    };
    run_session(&metainfo, web::attach(view.as_ref(), 0, options))
}

/// `--select-file LIST` against the torrent's files: every number must be one of its files
/// (padding files not counted), else a usage error. `None`: every file.
pub(crate) fn choose_files(
    metainfo: &Metainfo,
    files: Option<&FileList>,
) -> Result<Option<Selection>, CliError> {
    let Some(list) = files else {
        return Ok(None);
    };
    let selection = list
        .resolve(&metainfo.info)
        .map_err(|error| CliError::SelectFile {
            list: list.clone(),
            error,
        })?;
    Ok(Some(selection))
}

/// Where `download -o <out>` puts a torrent: into `<out>` if it is a directory or the torrent
/// has several files, else `<out>` is the file itself.
pub(crate) fn target_for(metainfo: &Metainfo, out: &Path) -> Target {
    if metainfo.info.multi_file || out.is_dir() {
        Target::Directory(out.to_path_buf())
    } else {
        Target::File(out.to_path_buf())
    }
}

/// `seed <torrent> <path>`: verifies the data, then serves it until Ctrl-C (or `--seed-ratio`);
/// with `--select-file`, only those files need be there (a download made with the same list).
/// `<path>` is what the torrent describes (its file, or its folder under any name), or the
/// directory that holds it.
pub fn seed(
    path: &Path,
    data: &Path,
    files: Option<&FileList>,
    web_addr: Option<SocketAddr>,
    options: impl FnOnce(Target) -> DownloadOptions,
) -> Result<(), CliError> {
    let view = web::start(web_addr, &["us".to_string()])?;
    let metainfo = load_torrent(path)?;
    let selection = choose_files(&metainfo, files)?;
    let info = &metainfo.info;
    let target = match (info.multi_file, data.is_dir()) {
        (false, false) => Target::File(data.to_path_buf()),
        (false, true) => Target::Directory(data.to_path_buf()),
        (true, _) if data.join(&info.name).is_dir() => Target::Directory(data.to_path_buf()),
        (true, _) => Target::Folder(data.to_path_buf()),
    };
    let options = DownloadOptions {
        // With `--select-file`, the selected files must be complete, and only their pieces
        // (and any other piece that verifies) are offered.
        require_complete: true,
        selection,
        ..options(target)
    };
    run_session(&metainfo, web::attach(view.as_ref(), 0, options))
}

/// A download or a seed with the progress bar, Ctrl-C, and the closing summary on stderr.
pub(crate) fn run_session(metainfo: &Metainfo, options: DownloadOptions) -> Result<(), CliError> {
    let options = DownloadOptions {
        stop: Some(stop_on_ctrl_c()),
        ..options
    };
    // Under `--web` the trace goes through the view's ring first, and on to stderr.
    let tracing = match &options.trace {
        crate::trace::Trace::Ring { also, .. } => matches!(**also, crate::trace::Trace::Stderr),
        other => matches!(other, crate::trace::Trace::Stderr),
    };
    let bar = Arc::new(progress::Bar::start(metainfo.info.total_length, tracing));
    let shown = Arc::clone(&bar);
    let started = std::time::Instant::now();
    let summary = session::download(metainfo, &options, move |p| shown.show(p));
    drop(bar); // off the terminal before the summary, or the error
    let summary = summary?;
    eprintln!(
        "done: {}",
        what_was_done(&summary.progress, started.elapsed())
    );
    Ok(())
}

/// The closing line's account of a session, after `done: ` (a script may read it).
pub(crate) fn what_was_done(
    done: &crate::scheduler::Progress,
    took: std::time::Duration,
) -> String {
    format!(
        "{} pieces ({} already on disk), {} bytes downloaded this run, {} bytes uploaded, in {:.1} s, {} pieces failed the hash check, {} peers banned",
        done.pieces_total,
        done.pieces_at_start,
        done.downloaded,
        done.uploaded,
        took.as_secs_f64(),
        done.failed_pieces,
        done.banned
    )
}

/// `demo`: a whole swarm on 127.0.0.1, and what it did (on stdout).
/// With `--web ADDR`, the swarm is shown live at that address and, once the summary is
/// printed, stays on the page until Ctrl-C. With `--report FILE`, the whole run is written to
/// one HTML file at the end.
pub fn demo(
    config: crate::demo::DemoConfig,
    web_addr: Option<SocketAddr>,
    report_file: Option<&Path>,
) -> Result<(), CliError> {
    let names = crate::demo::member_names(&config);
    let mut view = web::start(web_addr, &names)?;
    // The report needs the same boards as the page, even with no page to serve; with a page,
    // the web view's own recorder has the history.
    let members = match (&view, report_file) {
        (Some(view), _) => view.members.clone(),
        (None, Some(_)) => names.iter().map(|n| crate::web::Member::new(n)).collect(),
        (None, None) => Vec::new(),
    };
    let recorder = match (report_file, &view) {
        (Some(_), None) => {
            Some(crate::web::report::Recorder::start(members.clone()).map_err(CliError::Web)?)
        }
        _ => None,
    };
    let config = crate::demo::DemoConfig {
        watch: members.clone(),
        ..config
    };
    let report = crate::demo::run(&config).map_err(CliError::Demo)?;
    let lines = report.summary_lines();
    print_lines(&lines)?;
    if let Some(path) = report_file {
        let history = match (recorder, view.as_ref().and_then(|v| v.server.as_ref())) {
            (Some(recorder), _) => recorder.finish(),
            (None, Some(server)) => server.history(),
            (None, None) => crate::web::report::History::default(),
        };
        crate::web::report::write(path, &history, &members, &lines).map_err(CliError::Web)?;
        eprintln!("report: {}", path.display());
    }
    if let Some(server) = view.as_mut().and_then(|v| v.server.take()) {
        server.set_summary(lines);
        eprintln!("web view: the run is over; the page shows its summary until Ctrl-C");
        let stop = stop_on_ctrl_c();
        // Nothing else to do but serve: the flag is read five times a second.
        while !stop.load(Ordering::Relaxed) {
            std::thread::park_timeout(std::time::Duration::from_millis(200));
        }
        server.stop();
    }
    Ok(())
}

/// `download_piece -o <out> <torrent> <index>`: one piece, verified, written to `<out>`.
pub fn download_piece(path: &Path, out: &Path, options: DownloadOptions) -> Result<(), CliError> {
    let metainfo = load_torrent(path)?;
    piece_of(&metainfo, out, options)
}

/// Fetches one piece into a scratch directory, verifies it, writes it to `out`. The scratch
/// directory goes away however this ends: done, failed, or stopped by Ctrl-C.
pub(crate) fn piece_of(
    metainfo: &Metainfo,
    out: &Path,
    options: DownloadOptions,
) -> Result<(), CliError> {
    let scratch = Scratch::create(metainfo)?;
    let index = options.only_piece.unwrap_or(0);
    let options = DownloadOptions {
        target: Target::Directory(scratch.0.clone()),
        stop: Some(stop_on_ctrl_c()),
        ..options
    };
    let not_fetched = |reason: String| CliError::PieceNotFetched { index, reason };
    let storage = match session::download(metainfo, &options, |_| {}) {
        Ok(summary) => summary.storage,
        // The session's own words count pieces "kept on disk" and say "run again to resume":
        // true of a download, not of one piece in a scratch directory that is about to go.
        Err(SessionError::Interrupted(..)) => return Err(not_fetched("interrupted".into())),
        Err(SessionError::Stalled(after, ..)) => {
            return Err(not_fetched(format!("no data arrived for {after:?}")));
        }
        Err(SessionError::DiskFailed { error, .. }) => {
            return Err(not_fetched(format!(
                "the scratch directory failed: {error}"
            )));
        }
        Err(other) => return Err(other.into()),
    };
    let mut piece = Vec::new();
    let layout = crate::piece::PieceLayout::of(metainfo).map_err(SessionError::from)?;
    storage
        .read_piece(&layout, index, &mut piece)
        .map_err(SessionError::from)?;
    std::fs::write(out, piece).map_err(|source| CliError::Write {
        path: out.to_path_buf(),
        source,
    })
}

/// `download_piece`'s private scratch directory (`peerwire-piece-<info hash>-<pid>` in the
/// temp dir), removed when dropped: every way out of [`piece_of`] drops it.
struct Scratch(PathBuf);

impl Scratch {
    fn create(metainfo: &Metainfo) -> Result<Scratch, CliError> {
        let dir = std::env::temp_dir().join(format!(
            "peerwire-piece-{}-{}",
            metainfo.info_hash,
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|source| CliError::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!(
                "cannot remove the scratch directory {}: {e}",
                self.0.display()
            );
        }
    }
}

/// A flag raised by Ctrl-C, for a session to stop cleanly (say `stopped` to the trackers, keep
/// or remove what it must). The handler is installed once per process, on first use.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    let stop = STOP.get_or_init(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let raise = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || raise.store(true, Ordering::Relaxed)) {
            log::warn!("Ctrl-C will not stop cleanly: {e}");
        }
        stop
    });
    Arc::clone(stop)
}

/// `tracker`: serves until killed. Where it listens goes to stderr (stdout stays empty).
pub fn tracker(config: ServerConfig) -> Result<(), CliError> {
    let tracker = RunningTracker::start(config)?;
    for url in [tracker.announce_url(), tracker.udp_announce_url()]
        .into_iter()
        .flatten()
    {
        eprintln!("tracker listening: {url}");
    }
    tracker.wait();
    Ok(())
}

/// `create <path> -o <out.torrent>`: hashes the content and writes the torrent.
pub fn create(path: &Path, output: &Path, options: CreateOptions) -> Result<(), CliError> {
    let created = create::create_torrent(path, &options).map_err(|source| CliError::Create {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(output, &created.bytes).map_err(|source| CliError::Write {
        path: output.to_path_buf(),
        source,
    })?;
    eprintln!(
        "created {}: info hash {}, {} pieces of {} bytes",
        output.display(),
        created.info_hash,
        created.num_pieces,
        created.piece_length
    );
    Ok(())
}

/// Loads a torrent file, logging any quirks it had.
pub fn load_torrent(path: &Path) -> Result<Metainfo, CliError> {
    let metainfo = Metainfo::from_file(path).map_err(|source| CliError::Torrent {
        path: path.to_path_buf(),
        source,
    })?;
    for warning in &metainfo.warnings {
        log::warn!("{}: {warning}", path.display());
    }
    Ok(metainfo)
}

/// How much stdout gathers before one `write`: `info` on a torrent of 11,718 pieces prints
/// 480 KB, a dozen writes rather than one per line.
const STDOUT_BUFFER: usize = 64 * 1024;

/// Every command's stdout goes through here.
///
/// Through a buffer: Rust's stdout alone flushes at every newline, one system call per line.
///
/// A reader that has gone away is not a failure: `peerwire info big.torrent | head -1` takes
/// one line and closes the pipe, and the next write fails with `BrokenPipe` (Rust ignores
/// SIGPIPE, which would have ended the program quietly). Like any Unix filter we stop writing
/// and exit 0, saying nothing. Any other write error (a full disk) is still an error.
pub(crate) fn print_lines(lines: &[String]) -> Result<(), CliError> {
    let mut out = std::io::BufWriter::with_capacity(STDOUT_BUFFER, std::io::stdout().lock());
    let written = lines
        .iter()
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::Stdout),
    }
}
