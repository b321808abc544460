//! `download A.torrent B.torrent 'magnet:?…'`: several torrents in one process, on one port —
//! BEP 3 ("The BitTorrent Protocol Specification"): the handshake's info hash says which
//! torrent an incoming peer wants — walkthrough §10.
//!
//! ```text
//!   Shared::start: one listener, one UDP socket (uTP), one DHT node, one port
//!     ├── thread `torrent 1`: load (or fetch the metadata) ── session::download ── its line
//!     ├── thread `torrent 2`: ...
//!     └── ...          each ends on its own: `done:` or `error:` naming it; the others go on
//!   all ended ──► Shared::stop ──► exit status 0 only if every torrent completed
//! ```
//!
//! Every flag applies to every torrent. Each torrent keeps its own announcer thread for its
//! trackers (BEP 3, BEP 12 tiers); what the torrents share is what a real client shares: the
//! port, its sockets and the DHT node. A single torrent does not come here: `download` with
//! one argument is exactly the one-torrent command (`super::download`).

use super::magnet::{PeerSources, parse, resolve, with_web_seeds};
use super::progress::Lines;
use super::{CliError, choose_files, load_torrent, stop_on_ctrl_c, target_for};
use crate::metainfo::Metainfo;
use crate::peer_id::PeerId;
use crate::session::{self, DownloadOptions, Shared, Target};
use crate::storage::FileList;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `download` was given for one torrent.
enum Source {
    File(PathBuf),
    Magnet(String),
}

impl Source {
    fn of(arg: &Path) -> Source {
        match arg.to_str().filter(|a| a.starts_with("magnet:")) {
            Some(uri) => Source::Magnet(uri.to_string()),
            None => Source::File(arg.to_path_buf()),
        }
    }

    /// How `done:` and `error:` lines name it: the file as given, or a magnet link's name
    /// (`dn`), else its info hash.
    fn label(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Magnet(uri) => match parse(uri) {
                Ok(magnet) => match magnet.name {
                    Some(name) => format!("magnet {name}"),
                    None => format!("magnet {}", magnet.info_hash),
                },
                Err(_) => uri.clone(),
            },
        }
    }

    /// The torrent, from its file or from peers (a magnet link), with its peers to dial.
    fn load(
        &self,
        sources: &PeerSources,
    ) -> Result<(Metainfo, Vec<std::net::SocketAddr>), CliError> {
        match self {
            Source::File(path) => Ok((load_torrent(path)?, Vec::new())),
            Source::Magnet(uri) => {
                let magnet = parse(uri)?;
                let (mut metainfo, lan) = resolve(&magnet, sources)?;
                with_web_seeds(&mut metainfo, &magnet);
                let peers = magnet.peers.iter().chain(&lan).copied().collect();
                Ok((metainfo, peers))
            }
        }
    }
}

/// `download -o DIR A B ...`: every torrent at once into `DIR`, each on its own thread and
/// its own progress line. Every torrent runs to its end whatever the others do; if any failed
/// (its `error:` lines are printed as it ends), `CliError::Printed` with the status of the
/// worst: 2 if one was a usage error (a `--select-file` number past a torrent's files), else 1.
/// An error before any torrent starts (the port, the directory) is returned as it is.
pub fn download_many(
    args: &[PathBuf],
    out: &Path,
    sources: &PeerSources,
    files: Option<&FileList>,
    web: Option<std::net::SocketAddr>,
    options: impl Fn(Target) -> DownloadOptions,
) -> Result<(), CliError> {
    // Several torrents under one `-o`: it can only be a directory, never one file for all.
    if let Err(source) = std::fs::create_dir_all(out) {
        return Err(CliError::Write {
            path: out.to_path_buf(),
            source,
        });
    }
    let base = DownloadOptions {
        stop: Some(stop_on_ctrl_c()),
        ..options(Target::Directory(out.to_path_buf()))
    };
    let shared = Shared::start(&base, args.len())?;
    log::info!("{} torrents on port {}", args.len(), shared.port());
    let tracing = matches!(base.trace, crate::trace::Trace::Stderr);
    let sources_list: Vec<Source> = args.iter().map(|a| Source::of(a)).collect();
    let labels: Vec<String> = sources_list.iter().map(Source::label).collect();
    let lines = Arc::new(Lines::new(tracing));
    // `--web`: one page, a member for each torrent, named as its progress line is.
    let view = super::web::start(web, &labels)?;
    // One peer id for the process, as real clients have: the listener answers every
    // handshake with it before it knows which torrent the peer wants.
    let our_id = base.peer_id.unwrap_or_else(PeerId::generate);
    let ended: Vec<Result<(), CliError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = sources_list
            .iter()
            .zip(&labels)
            .enumerate()
            .map(|(i, (source, label))| {
                let options = DownloadOptions {
                    peer_id: Some(our_id),
                    shared: Some(shared.clone()),
                    stop: base.stop.clone(),
                    ..options(Target::Directory(out.to_path_buf()))
                };
                let options = super::web::attach(view.as_ref(), i, options);
                let lines = Arc::clone(&lines);
                let run = move || {
                    let result = one(source, label, out, sources, files, options, &lines);
                    lines.print(&report(label, &result));
                    result
                };
                std::thread::Builder::new()
                    .name(format!("torrent {}", i + 1))
                    .spawn_scoped(scope, run)
            })
            .collect();
        threads
            .into_iter()
            .zip(&labels)
            .map(|(thread, label)| {
                let ended = match thread {
                    Ok(thread) => match thread.join() {
                        Ok(result) => return result, // its lines are printed already
                        Err(panic) => {
                            let why = crate::events::panic_text(panic.as_ref());
                            Err(session::SessionError::Crashed(why).into())
                        }
                    },
                    Err(e) => Err(session::SessionError::Thread(e).into()),
                };
                // A thread that never ran, or died, printed nothing: its line is said here.
                lines.print(&report(label, &ended));
                ended
            })
            .collect()
    });
    shared.stop();
    let status = ended
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(CliError::exit_status)
        .max();
    match status {
        None => Ok(()),
        Some(status) => Err(CliError::Printed(status)),
    }
}

/// One torrent from start to end: loaded, downloaded (then seeded with `--seed`) on its line.
fn one(
    source: &Source,
    label: &str,
    out: &Path,
    sources: &PeerSources,
    files: Option<&FileList>,
    options: DownloadOptions,
    lines: &Lines,
) -> Result<(), CliError> {
    let (metainfo, peers) = source.load(sources)?;
    let selection = choose_files(&metainfo, files)?;
    let mut options = DownloadOptions {
        selection,
        target: target_for(&metainfo, out),
        ..options
    };
    options.peers.extend(peers);
    // The line is named for the torrent itself (`info` says `name`): shorter than a path, and
    // what a magnet link's `dn` may not say.
    let bar = lines.add(&metainfo.info.name, metainfo.info.total_length);
    let started = std::time::Instant::now();
    let summary = session::download(&metainfo, &options, move |p| bar.show(p))?;
    let done = super::what_was_done(&summary.progress, started.elapsed());
    lines.print(&[format!("done: {label}: {done}")]);
    Ok(())
}

/// A failed torrent's lines: `error: <label>: ...`, then its causes.
fn report(label: &str, result: &Result<(), CliError>) -> Vec<String> {
    let Err(error) = result else {
        return Vec::new();
    };
    let mut lines = vec![format!("error: {label}: {error}")];
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        lines.push(format!("caused by: {inner}"));
        cause = inner.source();
    }
    lines
}
