//! Web seeds: an HTTP server as one more peer (BEP 19 "WebSeed - HTTP/FTP Seeding (GetRight
//! style)") — walkthrough §19.
//!
//! A torrent's `url-list` (and a magnet link's `ws=`) names servers that hold the torrent's
//! files. BEP 19 calls such a server "a permanently unchoked seed", and that is how it enters
//! peerwire: each web seed gets a thread, named `web 127.0.0.1:8080` for its server, that
//! speaks the same `Event`/`Command` contract as a peer thread (`events.rs`):
//!
//! ```text
//!   "web host:port" ──Connected (incoming), Bitfield (every piece)──► scheduler
//!        loop: ──WantBlocks──► scheduler ──blocks──► contiguous runs ──► ranges.rs: one
//!              GET + Range per file ──► answer.rs: is this the body we asked for? ──► read
//!              exactly len bytes ──► Storage::write_block ──BlocksWritten──► scheduler
//!        failure: ──Disconnected (the blocks back to the pool)──► back off, connect again
//! ```
//!
//! The scheduler cannot tell it from a peer: the picker gives it blocks, the verify threads
//! hash its pieces with the same SHA-1 (or v2 Merkle) check, and a web seed that serves wrong
//! bytes gets strikes and a ban, then `Command::Stop`, as a lying peer does. It is keyed, like
//! a peer, by a `SocketAddr`: its server's address, resolved once at the start. It "dialled
//! us" (`incoming: true`), so the scheduler never dials it back: the thread reconnects itself
//! after its back-off. It ignores what only matters to a real peer (`have`, choking, PEX): it
//! never uploads.

pub mod answer;
pub mod ranges;

use crate::events::{Command, Event};
use crate::metainfo::Info;
use crate::peer::upload::RateLimit;
use crate::peer_id::PeerId;
use crate::piece::{BlockRequest, PieceLayout};
use crate::storage::{Storage, StorageError};
use crate::wire::Bitfield;
use answer::Answer;
use crossbeam_channel::{Receiver, Sender};
use ranges::{FileUrls, RangeRequest};
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;

/// Blocks asked of the scheduler at a time: up to 512 KiB, one or a few HTTP requests. Not
/// more: what one source holds, the others only get in endgame, as duplicates.
const BATCH_BLOCKS: usize = 32;
/// The longest one HTTP request may take, answer and body; slower is "slow": backed off.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed for one request: a server that redirects for ever is backed off.
const MAX_REDIRECTS: u32 = 5;
/// The first back-off, doubled at each failure in a row up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(120);
/// When there is nothing to fetch (every piece is taken or done): ask again this often.
const IDLE_WAIT: Duration = Duration::from_millis(250);
/// How long the thread waits for the scheduler's first command after `Connected`.
const FIRST_COMMAND_WAIT: Duration = Duration::from_secs(30);

/// Why a web seed's request failed: either it is wrong (the seed is dropped) or it may work
/// later (backed off and tried again), as [`WebSeedError::is_wrong`] says.
#[derive(Debug, Error)]
pub enum WebSeedError {
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{url}: HTTP status {status}{}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("{url}: the body ended after {got} of the {len} bytes asked for: {source}")]
    ShortBody {
        url: String,
        got: u64,
        len: u64,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{url}: answered 200 (the whole file, Content-Length {}) to a request for {len} bytes \
         from byte {first}: it ignores ranges",
        content_length.as_deref().unwrap_or("not given")
    )]
    IgnoresRange {
        url: String,
        first: u64,
        len: u64,
        content_length: Option<String>,
    },
    #[error("{url}: a 206 answer without Content-Range")]
    NoContentRange { url: String },
    #[error("{url}: Content-Range {header:?}, but we asked for {len} bytes from byte {first}")]
    OtherRange {
        url: String,
        header: String,
        first: u64,
        len: u64,
    },
    #[error("{url}: Content-Length {content_length:?} for a range of {len} bytes")]
    OtherLength {
        url: String,
        content_length: String,
        len: u64,
    },
    #[error("{url}: 416, the file is shorter than byte {first} + {len}")]
    NotSatisfiable { url: String, first: u64, len: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl WebSeedError {
    /// The server answers something that cannot be the torrent's file: no use trying again.
    pub fn is_wrong(&self) -> bool {
        matches!(
            self,
            WebSeedError::IgnoresRange { .. }
                | WebSeedError::NoContentRange { .. }
                | WebSeedError::OtherRange { .. }
                | WebSeedError::OtherLength { .. }
                | WebSeedError::NotSatisfiable { .. }
        )
    }

    /// How long the server asked us to wait (`Retry-After`, bounded).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WebSeedError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The wait before trying a failing web seed again: 1, 2, 4 … 120 s, or what the server's
/// `Retry-After` said (at most `answer::MAX_RETRY_AFTER`). A success starts it over.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// One more failure in a row: how long to wait now. [W19.5]
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        // Doubling, bounded: a server down for a moment is back soon, one down for good
        // costs a request every two minutes.
        let doubled = FIRST_BACKOFF.saturating_mul(1 << (self.failures - 1).min(16));
        retry_after.unwrap_or(doubled.min(MAX_BACKOFF))
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// What the session gives every web seed thread.
#[derive(Clone)]
pub struct WebSeedContext {
    pub layout: Arc<PieceLayout>,
    pub storage: Arc<Storage>,
    pub events: Sender<Event>,
    /// `--max-download-rate`: the same bucket the peer threads pay from.
    pub download_limit: Option<Arc<RateLimit>>,
}

/// The session's handle on its web seed threads.
pub struct WebSeeds {
    /// Dropped by [`WebSeeds::stop`]: every thread sees its end, even one backing off.
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

/// One web seed: its URL, its server's address (its key at the scheduler), its files' URLs.
struct WebSeed {
    url: String,
    addr: SocketAddr,
    peer_id: PeerId,
    files: FileUrls,
}

impl WebSeeds {
    /// A thread for each usable entry of `urls`. An entry that is not `http://` or `https://`
    /// is ignored, as BEP 19 asks of protocols a client does not know; one whose host does
    /// not resolve, or shares its server's address with an earlier entry, is skipped with a
    /// warning (the scheduler knows every source by one address).
    pub fn start(urls: &[String], info: &Info, context: WebSeedContext) -> WebSeeds {
        let (stop, stopped) = crossbeam_channel::unbounded();
        let mut threads = Vec::new();
        let mut taken: Vec<SocketAddr> = Vec::new();
        for url in urls {
            let Some(authority) = authority(url) else {
                log::info!("web seed {url}: not http:// or https://, ignored");
                continue;
            };
            let addr = match resolve(url, authority) {
                Some(addr) if taken.contains(&addr) => {
                    log::warn!("web seed {url}: its server {addr} is already a web seed; skipped");
                    continue;
                }
                Some(addr) => addr,
                None => {
                    log::warn!("web seed {url}: cannot resolve {authority}; skipped");
                    continue;
                }
            };
            taken.push(addr);
            let seed = WebSeed {
                url: url.clone(),
                addr,
                // A name of our making, one per URL: the scheduler tells sources apart, and
                // counts their traffic, by peer id.
                peer_id: web_seed_id(url),
                files: FileUrls::new(url, info),
            };
            let (context, stopped) = (context.clone(), stopped.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("web {authority}"))
                .spawn(move || run(&seed, &context, &stopped));
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(e) => log::warn!("web seed {url}: cannot start a thread: {e}"),
            }
        }
        WebSeeds { stop, threads }
    }

    /// How many web seeds run.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Tells every thread to end. Not joined: one in the middle of a request ends when the
    /// request does (at most [`REQUEST_TIMEOUT`]), and writes nothing once told.
    pub fn stop(self) {
        drop(self.stop);
    }
}

/// `host:port` of an `http://` or `https://` URL (the port as written, if any).
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // Credentials (`user:pass@`) are not part of the server's name.
    let host = rest[..end].rsplit('@').next().unwrap_or_default();
    (!host.is_empty()).then_some(host)
}

/// The server's first address, with the scheme's port when the URL names none.
fn resolve(url: &str, authority: &str) -> Option<SocketAddr> {
    let default_port = if url.starts_with("https://") { 443 } else { 80 };
    let bracketed_v6 = authority.starts_with('[') && authority.ends_with(']');
    let has_port = !bracketed_v6 && authority.rsplit_once(':').is_some();
    let target = match has_port {
        true => authority.to_string(),
        false => format!("{authority}:{default_port}"),
    };
    target.to_socket_addrs().ok()?.next()
}

/// `-WS0001-` and 12 bytes of the URL's SHA-1: stable for one URL, distinct between URLs.
fn web_seed_id(url: &str) -> PeerId {
    let mut id = *b"-WS0001-000000000000";
    id[8..].copy_from_slice(&crate::encoding::sha1(url.as_bytes())[..12]);
    PeerId(id)
}

/// How one "connection" of a web seed ended.
enum Ended {
    /// `Stop` from the scheduler (complete, banned, refused) or the session's end.
    Stopped,
    /// It answered something that cannot be the file: dropped for the session.
    Dropped,
    /// It failed in a way that may pass: try again after the back-off.
    Failed(Option<Duration>),
}

/// The thread: connect, fetch until something ends it, back off, connect again. [W19.3]
fn run(seed: &WebSeed, context: &WebSeedContext, stop: &Receiver<()>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .max_redirects(MAX_REDIRECTS)
        .http_status_as_error(false)
        .user_agent(concat!("peerwire/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut backoff = Backoff::default();
    let mut requests = 0u64;
    let mut bytes = 0u64;
    loop {
        let ended = serve(
            seed,
            context,
            &agent,
            stop,
            &mut backoff,
            (&mut requests, &mut bytes),
        );
        let wait = match ended {
            Ended::Stopped | Ended::Dropped => break,
            Ended::Failed(retry_after) => backoff.next(retry_after),
        };
        log::info!(
            "web seed {}: trying again in {} s",
            seed.url,
            wait.as_secs_f64()
        );
        // Asleep on the session's stop channel: a back-off never outlives the session.
        match stop.recv_timeout(wait) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    log::info!(
        "web seed {}: {bytes} bytes in {requests} requests",
        seed.url
    );
}

/// One connection to the scheduler: `Connected`, then fetch what it gives until it says
/// `Stop` or a request fails; always ends with `Disconnected` (unless never accepted).
fn serve(
    seed: &WebSeed,
    context: &WebSeedContext,
    agent: &ureq::Agent,
    stop: &Receiver<()>,
    backoff: &mut Backoff,
    (requests, bytes): (&mut u64, &mut u64),
) -> Ended {
    let peer = seed.addr;
    let (commands_in, commands) = crossbeam_channel::unbounded();
    let connected = Event::Connected {
        peer,
        peer_id: seed.peer_id,
        incoming: true,
        commands: commands_in,
    };
    if context.events.send(connected).is_err() {
        return Ended::Stopped; // the scheduler is gone
    }
    // Accepted (our pieces) or refused (`Stop`: banned, full, the run over).
    match commands.recv_timeout(FIRST_COMMAND_WAIT) {
        Ok(Command::OurPieces(_)) => {}
        _ => return Ended::Stopped,
    }
    let all = Bitfield::full(context.layout.num_pieces());
    let _ = context.events.send(Event::Bitfield {
        peer,
        bitfield: all,
    });
    let disconnect = |reason: String, outstanding: Vec<BlockRequest>| {
        let _ = context.events.send(Event::Disconnected {
            peer,
            reason,
            outstanding,
        });
    };
    loop {
        if heard_stop(&commands, stop, &mut Vec::new()) {
            disconnect("stopped".into(), Vec::new());
            return Ended::Stopped;
        }
        let (reply, answer) = crossbeam_channel::bounded(1);
        let want = Event::WantBlocks {
            peer,
            count: BATCH_BLOCKS,
            only: None,
            reply,
        };
        if context.events.send(want).is_err() {
            return Ended::Stopped;
        }
        let Ok(mut blocks) = answer.recv() else {
            return Ended::Stopped; // the scheduler ended without answering
        };
        if blocks.is_empty() {
            // Nothing to fetch now: wait for a command, the session's end, or a moment.
            crossbeam_channel::select! {
                recv(commands) -> command => if matches!(command, Ok(Command::Stop) | Err(_)) {
                    disconnect("stopped".into(), Vec::new());
                    return Ended::Stopped;
                },
                recv(stop) -> _ => {
                    disconnect("the session ended".into(), Vec::new());
                    return Ended::Stopped;
                },
                default(IDLE_WAIT) => {},
            }
            continue;
        }
        blocks.sort();
        let runs = runs_of(&context.layout, &blocks);
        let mut pending: Vec<BlockRequest> = blocks;
        // Cancels heard during one run may name blocks of the next: kept for the whole batch.
        let mut cancelled = Vec::new();
        for run in runs {
            let fetched = fetch_run(seed, agent, &run, requests);
            let data = match fetched {
                Ok(data) => data,
                Err(error) => {
                    let wrong = error.is_wrong();
                    let retry_after = error.retry_after();
                    // The blocks not fetched go back to the pool for the others.
                    disconnect(error.to_string(), pending);
                    if wrong {
                        log::warn!("web seed {peer}: dropped: {error}");
                        return Ended::Dropped;
                    }
                    log::info!("web seed {peer}: {error}");
                    return Ended::Failed(retry_after);
                }
            };
            backoff.succeeded();
            let mut written = Vec::new();
            for (block, at) in run.blocks {
                // Told to stop, or that another source sent this block first (endgame), while
                // the request ran: write nothing the scheduler no longer expects from us.
                if heard_stop(&commands, stop, &mut cancelled) {
                    let _ = context.events.send(Event::BlocksWritten {
                        peer,
                        blocks: written,
                    });
                    disconnect("stopped".into(), pending);
                    return Ended::Stopped;
                }
                pending.retain(|b| *b != block);
                if cancelled.contains(&block) {
                    continue;
                }
                let bytes_of = &data[at..at + block.length as usize];
                if let Some(limit) = &context.download_limit {
                    limit.take(block.length);
                }
                if let Err(error) = context
                    .storage
                    .write_block(&context.layout, &block, bytes_of)
                {
                    let _ = context.events.send(Event::StorageFailed { peer, error });
                    disconnect("the disk failed".into(), pending);
                    return Ended::Stopped;
                }
                *bytes += u64::from(block.length);
                written.push(block);
            }
            let _ = context.events.send(Event::BlocksWritten {
                peer,
                blocks: written,
            });
        }
    }
}

/// Drains the commands: true on `Stop` (or a scheduler gone, or the session's end); every
/// `Cancel` goes into `cancelled`. The rest is for real peers (`have`, choking, PEX).
fn heard_stop(
    commands: &Receiver<Command>,
    stop: &Receiver<()>,
    cancelled: &mut Vec<BlockRequest>,
) -> bool {
    // The session drops the sender to stop us: a closed channel is the signal.
    if !matches!(stop.try_recv(), Err(crossbeam_channel::TryRecvError::Empty)) {
        return true;
    }
    loop {
        match commands.try_recv() {
            Ok(Command::Stop) | Err(crossbeam_channel::TryRecvError::Disconnected) => {
                return true;
            }
            Ok(Command::Cancel(block)) => cancelled.push(block),
            Ok(_) => {}
            Err(crossbeam_channel::TryRecvError::Empty) => return false,
        }
    }
}

/// Blocks that lie end to end in the stream, fetched together: where the run starts, how long
/// it is, and each block with its place in the run's bytes.
#[derive(Debug)]
struct Run {
    offset: u64,
    len: u64,
    blocks: Vec<(BlockRequest, usize)>,
}

/// Cuts sorted blocks into runs of neighbours (a block that starts where the last ended joins
/// its run, across piece boundaries too).
fn runs_of(layout: &PieceLayout, blocks: &[BlockRequest]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for &block in blocks {
        let offset = layout.piece_offset(block.index) + u64::from(block.begin);
        let len = u64::from(block.length);
        match runs.last_mut() {
            Some(run) if run.offset + run.len == offset => {
                // `run.len` is at most BATCH_BLOCKS blocks: it fits a usize.
                run.blocks.push((block, run.len as usize));
                run.len += len;
            }
            _ => runs.push(Run {
                offset,
                len,
                blocks: vec![(block, 0)],
            }),
        }
    }
    runs
}

/// Fetches one run: one range request per file it touches, zeros for padding.
fn fetch_run(
    seed: &WebSeed,
    agent: &ureq::Agent,
    run: &Run,
    requests: &mut u64,
) -> Result<Vec<u8>, WebSeedError> {
    // Bounded: a run is at most BATCH_BLOCKS blocks of 16 KiB, whatever the server says.
    let mut data = vec![0u8; run.len as usize];
    let mut at = 0usize;
    for part in seed.files.ranges(run.offset, run.len) {
        let len = part.len() as usize;
        if let RangeRequest::Http { url, first, len } = &part {
            *requests += 1;
            fetch_part(agent, url, *first, *len, &mut data[at..at + *len as usize])?;
        }
        at += len;
    }
    Ok(data)
}

/// One range request: `GET url` with `Range`, the answer checked, then exactly `out.len()`
/// bytes read: never more, whatever the server sends after them.
fn fetch_part(
    agent: &ureq::Agent,
    url: &str,
    first: u64,
    len: u64,
    out: &mut [u8],
) -> Result<(), WebSeedError> {
    let http = |source| WebSeedError::Http {
        url: url.to_string(),
        source: Box::new(source),
    };
    let range = RangeRequest::range_header(first, len);
    log::debug!("web seed: GET {url} Range: {range}");
    let response = agent
        .get(url)
        .header("Range", &range)
        .call()
        .map_err(http)?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let (content_range, content_length, retry_after) = (
        header("content-range"),
        header("content-length"),
        header("retry-after"),
    );
    let answer = Answer {
        status: response.status().as_u16(),
        content_range: content_range.as_deref(),
        content_length: content_length.as_deref(),
        retry_after: retry_after.as_deref(),
    };
    answer.check(url, first, len)?;
    // The limit makes ureq stop at `len` even if the body goes on; `read_exact` stops there
    // anyway, so a body of a gigabyte costs us `len` bytes of reading.
    let mut reader = response.into_body().into_with_config().limit(len).reader();
    let mut got = 0usize;
    while got < out.len() {
        match reader.read(&mut out[got..]) {
            Ok(0) => {
                let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                return Err(short(url, got, len, eof));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(short(url, got, len, e)),
        }
    }
    Ok(())
}

fn short(url: &str, got: usize, len: u64, source: std::io::Error) -> WebSeedError {
    WebSeedError::ShortBody {
        url: url.to_string(),
        got: got as u64,
        len,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_bound_and_honours_retry_after() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..9).map(|_| b.next(None).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 120, 120]);
        assert_eq!(b.next(Some(Duration::from_secs(7))), Duration::from_secs(7));
        b.succeeded();
        assert_eq!(b.next(None), Duration::from_secs(1));
    }

    #[test]
    fn authority_is_the_host_and_port_as_written() {
        assert_eq!(
            authority("http://127.0.0.1:8080/a/b"),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            authority("https://u:p@mirror.example?x"),
            Some("mirror.example")
        );
        assert_eq!(authority("ftp://mirror.example/f"), None);
        assert_eq!(authority("http:///f"), None);
        let addr = resolve("http://127.0.0.1/", "127.0.0.1");
        assert_eq!(addr, Some(SocketAddr::from(([127, 0, 0, 1], 80))));
        let v6 = resolve("http://[::1]:81/", "[::1]:81");
        assert_eq!(v6.map(|a| a.port()), Some(81));
    }

    #[test]
    fn neighbouring_blocks_make_one_run_across_pieces() {
        let layout = PieceLayout {
            piece_length: 32768,
            total_length: 3 * 32768,
            hashes: Vec::new(),
            v2: None,
        };
        let b = |index, begin| BlockRequest {
            index,
            begin,
            length: 16384,
        };
        let runs = runs_of(&layout, &[b(0, 16384), b(1, 0), b(2, 16384)]);
        let shape: Vec<(u64, u64, usize)> = runs
            .iter()
            .map(|r| (r.offset, r.len, r.blocks.len()))
            .collect();
        assert_eq!(shape, [(16384, 32768, 2), (81920, 16384, 1)]);
        assert_eq!(runs[0].blocks[1], (b(1, 0), 16384));
    }

    #[test]
    fn web_seed_ids_differ_by_url() {
        let a = web_seed_id("http://a/");
        assert_eq!(&a.0[..8], b"-WS0001-");
        assert!(a != web_seed_id("http://b/"));
    }
}
