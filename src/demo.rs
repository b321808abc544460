//! `demo`: a whole swarm in one process, on 127.0.0.1 — walkthrough §12.
//!
//! ```text
//!   random file ──► create a torrent ──► built-in tracker (HTTP, 127.0.0.1, any port)
//!        │
//!   seeder session (upload rate limited) ◄──┐
//!   leecher 1 session ◄─► leecher 2 ◄─► ... ├── each a full peerwire session: listener,
//!   (every leecher keeps seeding until      │   announcer, scheduler, a thread per peer
//!    the last one completes)               ─┘
//!        │
//!   report: time, who sent whom how much, pieces leechers got from each other, wire sample
//! ```
//!
//! Every participant is an ordinary session (`session::download`) with its own peer id, all in
//! this process: one debugger sees the whole swarm, and thread names tell the peers apart. The
//! seeder's upload is limited so that it cannot feed every leecher alone: the leechers must
//! trade pieces with each other, which is what the summary shows (BEP 3 in action).

use crate::choker::ChokerConfig;
use crate::create::{CreateOptions, create_torrent};
use crate::dht::thread::{Dht, DhtConfig, DhtOptions};
use crate::metainfo::Metainfo;
use crate::peer_id::PeerId;
use crate::scheduler::picker::PieceOrder;
use crate::scheduler::{AfterComplete, Traffic};
use crate::session::{self, DownloadOptions, SessionError, Summary, Target};
use crate::trace::Trace;
use crate::tracker_server::{RunningTracker, ServerConfig};
use crate::web::Member as Watched;
use crossbeam_channel::{Receiver, Sender};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Members (the seeder and the leechers) up to which the summary prints everything: a line per
/// leecher and the whole upload matrix. A larger swarm gets the compact form
/// ([`DemoReport::summary_lines`]): a 51 × 51 matrix is unreadable. [W22.4]
pub const FULL_SUMMARY_MEMBERS: usize = 8;
/// In the compact summary: the top uploaders, the slowest leechers, the leechers that got the
/// least from other leechers, so many of each.
const COMPACT_LIST: usize = 5;

/// What the demo builds.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub size_mib: u64,
    pub leechers: usize,
    /// The seeder's upload limit in bytes per second (`None`: unlimited).
    pub seeder_rate: Option<u64>,
    pub piece_length: u64,
    /// Trace every leecher's wire messages on stderr (otherwise: a sample of leecher 1's).
    pub trace_all: bool,
    /// Give up if the leechers are not all complete by then.
    pub deadline: Duration,
    /// Show progress bars on stderr.
    pub progress: bool,
    /// No tracker: the swarm finds itself through a DHT of its own (BEP 5).
    pub dht: bool,
    /// The web view's members (`--web`, `--report`), in the order of [`member_names`]; empty:
    /// nothing is published.
    pub watch: Vec<Watched>,
    /// Every member's piece order (`--piece-order`).
    pub piece_order: PieceOrder,
    /// Whether every member's choker has an optimistic slot (off: `--no-optimistic-unchoke`).
    pub optimistic_unchoke: bool,
}

/// The members' names, seeder first: how the summary and the web view call them.
pub fn member_names(config: &DemoConfig) -> Vec<String> {
    std::iter::once("seeder".to_string())
        .chain((1..=config.leechers).map(|n| format!("leecher {n}")))
        .collect()
}

impl Default for DemoConfig {
    fn default() -> DemoConfig {
        DemoConfig {
            size_mib: 64,
            leechers: 4,
            seeder_rate: Some(8 << 20),
            piece_length: 256 * 1024,
            trace_all: false,
            deadline: Duration::from_secs(600),
            progress: true,
            dht: false,
            watch: Vec::new(),
            piece_order: PieceOrder::default(),
            optimistic_unchoke: true,
        }
    }
}

#[derive(Debug, Error)]
pub enum DemoError {
    #[error("cannot prepare {}: {source}", path.display())]
    Files {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make the torrent: {0}")]
    Torrent(String),
    #[error("cannot start the demo's DHT: {0}")]
    Dht(String),
    #[error("cannot start the tracker: {0}")]
    Tracker(#[from] crate::tracker_server::ServerError),
    #[error("{who}: {source}")]
    Session { who: String, source: SessionError },
    #[error("only {done} of {total} leechers completed within {deadline:?}")]
    Timeout {
        done: usize,
        total: usize,
        deadline: Duration,
    },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error(
        "a swarm of {members} members needs about {needed} open files, and this process may \
         open {limit} (`ulimit -n`): raise the limit (`ulimit -n {needed}`) or use fewer --peers"
    )]
    TooManyFiles {
        members: usize,
        needed: u64,
        limit: u64,
    },
}

/// One member of the swarm, after the demo.
#[derive(Debug, Clone)]
pub struct Participant {
    /// `seeder`, `leecher 1`, ...
    pub name: String,
    pub peer_id: PeerId,
    /// How long it took to complete (leechers).
    pub completed_after: Option<Duration>,
    /// Pieces it downloaded and verified in this run (0 for the seeder).
    pub pieces_downloaded: u32,
    /// Whom it traded with.
    pub traffic: Vec<Traffic>,
}

/// What the demo saw: the input of the summary (and of the tests).
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub config: DemoConfig,
    pub num_pieces: usize,
    pub elapsed: Duration,
    /// The seeder first, then the leechers in order.
    pub participants: Vec<Participant>,
    pub trace_sample: Vec<String>,
}

/// Runs the demo in a scratch directory (removed afterwards) and reports.
pub fn run(config: &DemoConfig) -> Result<DemoReport, DemoError> {
    let dir = std::env::temp_dir().join(format!(
        "peerwire-demo-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    let result = run_in(config, &dir);
    // A directory we cannot remove is litter in the temp directory, not a reason to lose
    // the demo's report.
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(config: &DemoConfig, dir: &Path) -> Result<DemoReport, DemoError> {
    // Checked before anything starts: past the limit, sockets fail to open halfway through
    // and the swarm never completes (the tracker's listener stops at its first failed accept).
    let members = config.leechers + 1;
    let needed = files_needed(members);
    if let Some(limit) = open_file_limit().filter(|&limit| limit < needed) {
        return Err(DemoError::TooManyFiles {
            members,
            needed,
            limit,
        });
    }
    let finder = Finder::start(config)?;
    let (metainfo, data) = make_torrent(config, dir, &finder.trackers())?;
    log::info!("demo: torrent {}", metainfo.info_hash);
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sample = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let bars = Bars::new(config, metainfo.info.num_pieces());
    let mut members = vec![start_member(
        &metainfo,
        finder.member(seeder_options(config, &data, &stop)),
        None,
    )?];
    for n in 1..=config.leechers {
        let options = finder.member(leecher_options(config, dir, n, &stop, &sample));
        let watch = (n, done_tx.clone(), bars.bar(n));
        members.push(start_member(&metainfo, options, Some(watch))?);
    }
    let completed = wait_for_leechers(config, &done_rx, started);
    stop.store(true, Ordering::Relaxed);
    bars.clear();
    let summaries = finish(members)?;
    finder.stop();
    let completed = completed?;
    let participants = summaries
        .into_iter()
        .enumerate()
        .map(|(n, (name, summary))| Participant {
            name,
            peer_id: summary.peer_id,
            completed_after: n.checked_sub(1).and_then(|i| completed[i]),
            pieces_downloaded: pieces_downloaded(&summary.progress),
            traffic: summary.traffic,
        })
        .collect();
    let trace_sample = sample.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(DemoReport {
        config: config.clone(),
        num_pieces: metainfo.info.num_pieces(),
        elapsed: started.elapsed(),
        participants,
        trace_sample,
    })
}

/// How the swarm's members find each other: the built-in tracker, or (`--dht`) a DHT whose
/// first node the demo runs itself; every member's own node joins it.
enum Finder {
    Tracker(RunningTracker),
    Dht(Dht),
}

impl Finder {
    fn start(config: &DemoConfig) -> Result<Finder, DemoError> {
        if config.dht {
            let dht = Dht::start(DhtConfig {
                bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
                options: DhtOptions::default(),
                read_only: false,
            })
            .map_err(|e| DemoError::Dht(e.to_string()))?;
            log::info!("demo: no tracker; the DHT starts at {}", dht.addr);
            return Ok(Finder::Dht(dht));
        }
        let tracker = RunningTracker::start(ServerConfig {
            http: Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)),
            udp: None,
            interval: Duration::from_secs(10),
        })?;
        log::info!(
            "demo: tracker {}",
            tracker.announce_url().unwrap_or_default()
        );
        Ok(Finder::Tracker(tracker))
    }

    /// The torrent's trackers: the built-in one, or none (a trackerless torrent).
    fn trackers(&self) -> Vec<String> {
        match self {
            Finder::Tracker(tracker) => tracker.announce_url().into_iter().collect(),
            Finder::Dht(_) => Vec::new(),
        }
    }

    /// A member's options, with its way into the DHT when there is one.
    fn member(&self, options: DownloadOptions) -> DownloadOptions {
        match self {
            Finder::Tracker(_) => options,
            Finder::Dht(dht) => DownloadOptions {
                dht: Some(DhtOptions {
                    bootstrap: vec![dht.addr.to_string()],
                    ..DhtOptions::default()
                }),
                ..options
            },
        }
    }

    fn stop(self) {
        match self {
            Finder::Tracker(tracker) => tracker.stop(),
            Finder::Dht(dht) => dht.stop(),
        }
    }
}

/// A file of random bytes and its torrent (announced to the demo's tracker, if any).
fn make_torrent(
    config: &DemoConfig,
    dir: &Path,
    trackers: &[String],
) -> Result<(Metainfo, PathBuf), DemoError> {
    let files_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DemoError::Files { path, source }
    };
    let seed_dir = dir.join("seeder");
    std::fs::create_dir_all(&seed_dir).map_err(files_error(&seed_dir))?;
    let data = seed_dir.join("demo.bin");
    write_random_file(&data, config.size_mib.max(1) << 20).map_err(files_error(&data))?;
    let options = CreateOptions {
        trackers: trackers.to_vec(),
        piece_length: Some(config.piece_length),
        private: false,
        comment: Some("peerwire demo".into()),
        threads: None,
        ..CreateOptions::default()
    };
    let created = create_torrent(&data, &options).map_err(|e| DemoError::Torrent(e.to_string()))?;
    let metainfo =
        Metainfo::from_bytes(&created.bytes).map_err(|e| DemoError::Torrent(e.to_string()))?;
    Ok((metainfo, data))
}

fn write_random_file(path: &Path, size: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        chunk.iter_mut().for_each(|b| *b = fastrand::u8(..));
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.flush()
}

/// Settings every member shares: 127.0.0.1, any free port, a fresh peer id, seed until
/// stopped, and the demo's strategies.
fn member_options(config: &DemoConfig, target: Target, stop: &Arc<AtomicBool>) -> DownloadOptions {
    DownloadOptions {
        choker: ChokerConfig {
            optimistic: config.optimistic_unchoke,
            ..ChokerConfig::default()
        },
        piece_order: config.piece_order,
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        after_complete: AfterComplete::Seed,
        stop: Some(Arc::clone(stop)),
        peer_id: Some(PeerId::generate()),
        give_up: Some(Duration::from_secs(120)),
        ..DownloadOptions::new(target)
    }
}

fn seeder_options(config: &DemoConfig, data: &Path, stop: &Arc<AtomicBool>) -> DownloadOptions {
    let options = DownloadOptions {
        require_complete: true,
        // [W12.1] A seeder too slow to feed every leecher alone: the leechers must trade.
        max_upload_rate: config.seeder_rate,
        ..member_options(config, Target::File(data.to_path_buf()), stop)
    };
    watched(config, 0, options)
}

/// Member `n`'s options, publishing to its board of the web view if there is one.
fn watched(config: &DemoConfig, n: usize, options: DownloadOptions) -> DownloadOptions {
    match config.watch.get(n) {
        Some(member) => member.watch(options),
        None => options,
    }
}

fn leecher_options(
    config: &DemoConfig,
    dir: &Path,
    n: usize,
    stop: &Arc<AtomicBool>,
    sample: &Arc<Mutex<Vec<String>>>,
) -> DownloadOptions {
    let trace = match (config.trace_all, n) {
        (true, _) => Trace::Stderr,
        (false, 1) => Trace::Sample {
            lines: Arc::clone(sample),
            limit: 24,
        },
        (false, _) => Trace::Off,
    };
    let options = DownloadOptions {
        trace,
        ..member_options(
            config,
            Target::Directory(dir.join(format!("leecher-{n}"))),
            stop,
        )
    };
    watched(config, n, options)
}

/// A running member: its name and the thread that returns its summary.
struct Member {
    name: String,
    thread: JoinHandle<Result<Summary, SessionError>>,
}

/// Starts one session on its own thread. A leecher reports on `watch` when it completes.
fn start_member(
    metainfo: &Metainfo,
    options: DownloadOptions,
    watch: Option<(usize, Sender<usize>, Option<indicatif::ProgressBar>)>,
) -> Result<Member, DemoError> {
    let name = match &watch {
        Some((n, ..)) => format!("leecher {n}"),
        None => "seeder".to_string(),
    };
    let metainfo = metainfo.clone();
    let mut told = false;
    let on_progress = move |p: &crate::scheduler::Progress| {
        let Some((n, done, bar)) = &watch else { return };
        if let Some(bar) = bar {
            bar.set_position(p.pieces_have as u64);
        }
        if p.is_complete() && !told {
            told = true;
            // Fails only once `run_in` has stopped listening: then nobody waits for the news.
            let _ = done.send(*n);
        }
    };
    let thread = std::thread::Builder::new()
        .name(format!("demo {name}"))
        .spawn(move || session::download(&metainfo, &options, on_progress))
        .map_err(DemoError::Thread)?;
    Ok(Member { name, thread })
}

/// When each leecher completed, or a timeout.
fn wait_for_leechers(
    config: &DemoConfig,
    done: &Receiver<usize>,
    started: Instant,
) -> Result<Vec<Option<Duration>>, DemoError> {
    let mut completed = vec![None; config.leechers];
    let deadline = started + config.deadline;
    while completed.iter().any(Option::is_none) {
        let Ok(n) = done.recv_deadline(deadline) else {
            return Err(DemoError::Timeout {
                done: completed.iter().flatten().count(),
                total: config.leechers,
                deadline: config.deadline,
            });
        };
        log::info!("demo: leecher {n} complete after {:?}", started.elapsed());
        completed[n - 1] = Some(started.elapsed());
    }
    Ok(completed)
}

/// Joins every member (they stop when the stop flag is raised) and collects their summaries.
fn finish(members: Vec<Member>) -> Result<Vec<(String, Summary)>, DemoError> {
    let mut summaries = Vec::new();
    for member in members {
        let who = member.name.clone();
        let summary = member
            .thread
            .join()
            .unwrap_or(Err(SessionError::Interrupted(0, 0)))
            .map_err(|source| DemoError::Session { who, source })?;
        summaries.push((member.name, summary));
    }
    Ok(summaries)
}

fn pieces_downloaded(progress: &crate::scheduler::Progress) -> u32 {
    let pieces = progress
        .pieces_have
        .saturating_sub(progress.pieces_at_start);
    u32::try_from(pieces).unwrap_or(u32::MAX)
}

/// One progress bar per leecher on stderr (none when the config says so).
struct Bars {
    multi: Option<indicatif::MultiProgress>,
    pieces: usize,
}

impl Bars {
    fn new(config: &DemoConfig, pieces: usize) -> Bars {
        let multi = config.progress.then(indicatif::MultiProgress::new);
        Bars { multi, pieces }
    }

    fn bar(&self, n: usize) -> Option<indicatif::ProgressBar> {
        let multi = self.multi.as_ref()?;
        let bar = multi.add(indicatif::ProgressBar::new(self.pieces as u64));
        let template = format!("leecher {n} {{bar:40}} {{pos}}/{{len}} pieces");
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        Some(bar)
    }

    fn clear(&self) {
        if let Some(multi) = &self.multi {
            // Cosmetic: a terminal we cannot write to has nobody reading it.
            let _ = multi.clear();
        }
    }
}

impl DemoReport {
    /// Bytes `from` uploaded to `to` (participant indexes), as `from` counted them.
    pub fn uploaded(&self, from: usize, to: usize) -> u64 {
        let to_id = self.participants[to].peer_id;
        self.participants[from]
            .traffic
            .iter()
            .filter(|t| t.peer_id == to_id)
            .map(|t| t.uploaded)
            .sum()
    }

    /// For leecher `n` (1-based): pieces credited to other leechers, and to the seeder. Each
    /// piece is credited once, to the peer whose block of it was written first (in endgame
    /// several peers send blocks of one piece), so the two add up to the pieces downloaded.
    pub fn pieces_from(&self, n: usize) -> (u32, u32) {
        let seeder = self.participants[0].peer_id;
        let mut from_leechers = 0;
        let mut from_seeder = 0;
        for t in &self.participants[n].traffic {
            match t.peer_id == seeder {
                true => from_seeder += t.pieces,
                false => from_leechers += t.pieces,
            }
        }
        (from_leechers, from_seeder)
    }

    /// The summary `peerwire demo` prints.
    pub fn summary_lines(&self) -> Vec<String> {
        let c = &self.config;
        let rate = c
            .seeder_rate
            .map_or("unlimited".to_string(), |r| format!("{} KiB/s", r / 1024));
        let mut lines = vec![
            format!(
                "swarm: 1 seeder (upload limit {rate}) + {} leechers on 127.0.0.1, {}",
                c.leechers,
                match c.dht {
                    true => "no tracker: found through the DHT",
                    false => "built-in tracker",
                }
            ),
            format!(
                "file: {} MiB in {} pieces of {} KiB",
                c.size_mib,
                self.num_pieces,
                c.piece_length / 1024
            ),
        ];
        if c.piece_order != PieceOrder::default() || !c.optimistic_unchoke {
            lines.push(format!(
                "strategies: piece order {}, optimistic unchoke {}",
                c.piece_order.name(),
                if c.optimistic_unchoke { "on" } else { "off" }
            ));
        }
        if self.participants.len() <= FULL_SUMMARY_MEMBERS {
            lines.extend(self.time_lines());
            lines.extend(self.matrix_lines());
            lines.extend(self.sharing_lines());
        } else {
            lines.extend(self.compact_time_lines());
            lines.extend(self.compact_upload_lines());
            lines.extend(self.compact_sharing_lines());
        }
        lines.push("wire trace sample (leecher 1, first messages):".into());
        lines.extend(self.trace_sample.iter().map(|l| format!("  {l}")));
        lines
    }

    fn time_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "time: {:.1} s until every leecher was complete",
            self.elapsed.as_secs_f64()
        )];
        for p in &self.participants[1..] {
            if let Some(t) = p.completed_after {
                lines.push(format!(
                    "  {} complete after {:.1} s",
                    p.name,
                    t.as_secs_f64()
                ));
            }
        }
        lines
    }

    /// Who uploaded how much to whom, in MiB: one row per sender.
    fn matrix_lines(&self) -> Vec<String> {
        let names: Vec<&str> = self.participants.iter().map(|p| p.name.as_str()).collect();
        let mut lines = vec!["uploaded MiB (row sent to column):".to_string()];
        let header: String = names.iter().map(|n| format!("{n:>11}")).collect();
        lines.push(format!("{:<11}{header}", ""));
        for (from, name) in names.iter().enumerate() {
            let cells: String = (0..names.len())
                .map(|to| match from == to {
                    true => format!("{:>11}", "-"),
                    false => format!("{:>11.1}", self.uploaded(from, to) as f64 / 1_048_576.0),
                })
                .collect();
            lines.push(format!("{name:<11}{cells}"));
        }
        lines
    }

    /// Large swarms: the spread of the completion times, and the slowest leechers.
    fn compact_time_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "time: {:.1} s until every leecher was complete",
            self.elapsed.as_secs_f64()
        )];
        let mut done: Vec<(f64, &str)> = self.participants[1..]
            .iter()
            .filter_map(|p| Some((p.completed_after?.as_secs_f64(), p.name.as_str())))
            .collect();
        done.sort_by(|a, b| a.0.total_cmp(&b.0));
        let times: Vec<f64> = done.iter().map(|d| d.0).collect();
        if let Some((min, median, max)) = spread(&times) {
            lines.push(format!(
                "  leechers complete after: min {min:.1} s, median {median:.1} s, max {max:.1} s"
            ));
        }
        let slowest: Vec<String> = done
            .iter()
            .rev()
            .take(COMPACT_LIST)
            .map(|(t, name)| format!("{name} {t:.1} s"))
            .collect();
        lines.push(format!("  slowest: {}", slowest.join(", ")));
        lines
    }

    /// Large swarms, instead of the matrix: what the seeder sent against what the leechers
    /// sent each other, then the top uploaders and to how many members each sent.
    fn compact_upload_lines(&self) -> Vec<String> {
        let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
        let n = self.participants.len();
        // Row sums of the matrix: what each member sent to the others, and to how many.
        let sent: Vec<(u64, usize)> = (0..n)
            .map(|from| {
                let to: Vec<u64> = (0..n)
                    .filter(|&to| to != from)
                    .map(|to| self.uploaded(from, to))
                    .collect();
                (to.iter().sum(), to.iter().filter(|&&b| b > 0).count())
            })
            .collect();
        let all: u64 = sent.iter().map(|s| s.0).sum();
        let percent = |part: u64| 100.0 * part as f64 / all.max(1) as f64;
        let (seeder, leechers) = (sent[0].0, all - sent[0].0);
        let mut lines = vec![
            format!(
                "uploaded: {:.1} MiB in all; the seeder sent {:.1} MiB ({:.0} %), leechers to \
                 leechers {:.1} MiB ({:.0} %)",
                mib(all),
                mib(seeder),
                percent(seeder),
                mib(leechers),
                percent(leechers)
            ),
            format!(
                "top uploaders (MiB sent, to how many of the other {} members):",
                n - 1
            ),
        ];
        let mut order: Vec<usize> = (0..n).collect();
        // Most first; equal amounts in the members' order.
        order.sort_by(|&a, &b| sent[b].0.cmp(&sent[a].0).then(a.cmp(&b)));
        for &m in order.iter().take(COMPACT_LIST) {
            lines.push(format!(
                "  {:<11}{:>8.1} MiB to {}",
                self.participants[m].name,
                mib(sent[m].0),
                sent[m].1
            ));
        }
        lines
    }

    /// Large swarms: the spread of the share each leecher got from other leechers, and the
    /// leechers that got the least from them.
    fn compact_sharing_lines(&self) -> Vec<String> {
        let mut shares: Vec<(f64, usize)> = (1..self.participants.len())
            .map(|n| {
                let (leechers, seeder) = self.pieces_from(n);
                let share = 100.0 * f64::from(leechers) / f64::from((leechers + seeder).max(1));
                (share, n)
            })
            .collect();
        shares.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let values: Vec<f64> = shares.iter().map(|s| s.0).collect();
        let mut lines = vec![
            "pieces each leecher got from other leechers rather than the seeder \
             (a piece counts once, for the peer whose block of it came first):"
                .into(),
        ];
        if let Some((min, median, max)) = spread(&values) {
            lines.push(format!(
                "  share from leechers: min {min:.0} %, median {median:.0} %, max {max:.0} %"
            ));
        }
        let least: Vec<String> = shares
            .iter()
            .take(COMPACT_LIST)
            .map(|&(share, n)| {
                let (leechers, seeder) = self.pieces_from(n);
                format!(
                    "{} {share:.0} % ({leechers} of {})",
                    self.participants[n].name,
                    leechers + seeder
                )
            })
            .collect();
        lines.push(format!("  least from leechers: {}", least.join(", ")));
        lines
    }

    /// `leecher 1: 163 from leechers, 93 from the seeder, of 256 (64 % from leechers)`.
    fn sharing_lines(&self) -> Vec<String> {
        let mut lines = vec![
            "pieces each leecher got from other leechers rather than the seeder \
             (a piece counts once, for the peer whose block of it came first):"
                .into(),
        ];
        for (n, participant) in self.participants.iter().enumerate().skip(1) {
            let (leechers, seeder) = self.pieces_from(n);
            let share = 100.0 * f64::from(leechers) / f64::from((leechers + seeder).max(1));
            // Should not happen (the scheduler credits every piece to a peer id, across its
            // reconnections); if it ever does, say so rather than print counts that do not
            // add up.
            let unnamed = participant
                .pieces_downloaded
                .saturating_sub(leechers + seeder);
            let unnamed = match unnamed {
                0 => String::new(),
                _ => format!(", {unnamed} from a peer that had since reconnected"),
            };
            lines.push(format!(
                "  {}: {leechers} from leechers, {seeder} from the seeder{unnamed}, of {} \
                 ({share:.0} % from leechers)",
                participant.name, participant.pieces_downloaded
            ));
        }
        lines
    }
}

/// Open files a demo of `members` may hold at once, with a margin: every member connects to
/// every other (each connection is a socket at each end, and each end is two descriptors: the
/// peer thread reads and writes through two handles), and each member has a few more (its
/// listener, its UDP socket, its files, its tracker connection). Measured at most: 1,007 for
/// 21 members, 5,259 for 51.
fn files_needed(members: usize) -> u64 {
    let members = members as u64;
    members * (2 * members.saturating_sub(1) + 6) + 32
}

/// This process's limit on open files (the soft one), where the system tells it: Linux's
/// `/proc/self/limits`. `None` elsewhere, or when it says `unlimited`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    soft_file_limit(&limits)
}

/// The soft limit in the `Max open files` row of `/proc/self/limits`.
fn soft_file_limit(limits: &str) -> Option<u64> {
    let row = limits.lines().find(|l| l.starts_with("Max open files"))?;
    row["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Min, median and max of values sorted in ascending order (`None` for none). The median of an
/// even count is the lower middle one: a value that was measured, not an average of two.
fn spread(sorted: &[f64]) -> Option<(f64, f64, f64)> {
    let (first, last) = (sorted.first()?, sorted.last()?);
    Some((*first, sorted[(sorted.len() - 1) / 2], *last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read_from_proc_self_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             96362                96362                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(soft_file_limit(limits), Some(1024));
        let unlimited = limits.replace("1024   ", "unlimited");
        assert_eq!(soft_file_limit(&unlimited), None);
        assert_eq!(soft_file_limit("nothing here"), None);
    }

    #[test]
    fn fifty_leechers_need_more_files_than_the_usual_limit_twenty_do_not() {
        assert!(files_needed(51) > 5_259, "{}", files_needed(51));
        // `demo --peers 20` still runs under the common limit of 1024, `--peers 50` does not.
        assert!(files_needed(21) < 1024, "{}", files_needed(21));
        assert!(files_needed(5) < 200, "{}", files_needed(5));
    }

    #[test]
    fn the_spread_of_sorted_values() {
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[1.0, 2.0, 3.0, 4.0]), Some((1.0, 2.0, 4.0)));
        assert_eq!(spread(&[5.0]), Some((5.0, 5.0, 5.0)));
    }
}
