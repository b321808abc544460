//! The live swarm view in the browser (`--web`), and the demo's after-class report
//! (`demo --report`) — walkthrough §21.
//!
//! Not a protocol step: a window onto the ones below it. It shows what BEP 3 ("The BitTorrent
//! Protocol Specification") describes — pieces spreading, rarest first, choking and the
//! optimistic unchoke — as the scheduler of each session sees it.
//!
//! ```text
//!   scheduler(s) ── Snapshot every 250 ms ──► SnapshotBoard ─┐
//!   peer threads ── trace lines ──────────► TraceRing ──────┤   `web` thread (this module)
//!                                                            ├──► GET /            page.html
//!                                                            │    GET /page.css, /page.js
//!                                                            │    GET /api/state   JSON (json.rs)
//!                                                            └──► GET /api/trace   a peer's last lines
//! ```
//!
//! One thread, one connection at a time, one request per connection (`http.rs`): a page that
//! polls twice a second needs no more, and nothing a browser sends can make it hold more than
//! one request head (8 KiB) in memory. The thread only reads the boards: it never waits on a
//! scheduler, and a scheduler stopped in a debugger leaves its last snapshot to be served.

pub mod http;
pub mod json;
pub mod report;

use crate::scheduler::snapshot::SnapshotBoard;
use crate::session::DownloadOptions;
use crate::trace::{Trace, TraceRing};
use http::{HttpError, Request};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use thiserror::Error;

/// The page, as a student may open it in `src/web/`: no build step, nothing fetched elsewhere.
pub const PAGE_HTML: &str = include_str!("page.html");
pub const PAGE_CSS: &str = include_str!("page.css");
pub const PAGE_JS: &str = include_str!("page.js");

/// Query values longer than this are refused rather than parsed (an address is < 50).
const MAX_QUERY_VALUE: usize = 64;

#[derive(Debug, Error)]
pub enum WebError {
    #[error("cannot listen on {0} for the web view: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("cannot start the web thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot write the report {path}: {source}")]
    Report {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// One session the page shows: its name, its snapshots, its peers' last wire messages.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub board: SnapshotBoard,
    pub trace: Arc<TraceRing>,
}

impl Member {
    pub fn new(name: &str) -> Member {
        Member {
            name: name.to_string(),
            board: SnapshotBoard::new(),
            trace: Arc::new(TraceRing::new()),
        }
    }

    /// A session's options, made to publish to this member's board and keep its peers' last
    /// trace lines; the trace the options had (stderr, a sample) still gets every line.
    pub fn watch(&self, options: DownloadOptions) -> DownloadOptions {
        DownloadOptions {
            web: Some(self.board.clone()),
            trace: Trace::Ring {
                ring: Arc::clone(&self.trace),
                also: Box::new(options.trace.clone()),
            },
            ..options
        }
    }
}

/// What the web thread serves from: the members and, once a demo is over, its summary.
struct Shared {
    members: Vec<Member>,
    summary: Mutex<Vec<String>>,
    /// Samples of every member since the start, for the page's curves (`/api/history`).
    history: Option<report::Recorder>,
}

/// The running `web` thread.
pub struct WebServer {
    /// Where it listens (the real port when 0 was asked for).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Whether an address is one only this machine can reach.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

impl WebServer {
    /// Listens on `addr` and serves the members' snapshots on a thread named `web`.
    pub fn start(addr: SocketAddr, members: Vec<Member>) -> Result<WebServer, WebError> {
        let listener = TcpListener::bind(addr).map_err(|e| WebError::Listen(addr, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| WebError::Listen(addr, e))?;
        let history = Some(report::Recorder::start(members.clone())?);
        let shared = Arc::new(Shared {
            members,
            summary: Mutex::new(Vec::new()),
            history,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("web".into())
                .spawn(move || serve(&listener, &shared, &stop))
                .map_err(WebError::Thread)?
        };
        Ok(WebServer {
            addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The page's address, as printed on stderr.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The demo's printed summary, shown by the page once the run is over.
    pub fn set_summary(&self, lines: Vec<String>) {
        *self
            .shared
            .summary
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = lines;
    }

    /// Everything the history recorder saw so far (for `demo --report`).
    pub fn history(&self) -> report::History {
        match &self.shared.history {
            Some(recorder) => recorder.snapshot(),
            None => report::History::default(),
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // `accept` blocks: one connection of our own wakes it to see the flag. If it fails,
        // the listener is gone already and the thread with it.
        let _ = TcpStream::connect_timeout(&self.addr, http::HEAD_DEADLINE);
        if let Some(thread) = self.thread.take() {
            // A panic there has been printed already; the run's result does not depend on it.
            let _ = thread.join();
        }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// The `web` thread: one connection at a time until told to stop.
fn serve(listener: &TcpListener, shared: &Shared, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // A client that gave up already concerns only itself; but an error that
                // repeats (no file descriptor left) must not spin this thread: a pause.
                log::debug!("web: accept failed: {e}");
                std::thread::park_timeout(std::time::Duration::from_millis(50));
                continue;
            }
        };
        let answer = match http::read_head(&mut stream).and_then(|h| http::parse_request(&h)) {
            Ok(request) => answer(&request, shared),
            Err(error) => refusal(&error),
        };
        // A browser that went away mid-answer costs nothing but this answer.
        let _ = http::respond(
            &mut stream,
            answer.status,
            answer.content_type,
            &answer.body,
            answer.head_only,
        );
    }
}

/// What to send back.
#[derive(Debug)]
pub struct Answer {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub head_only: bool,
}

fn text(status: &'static str, body: String) -> Answer {
    Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.into_bytes(),
        head_only: false,
    }
}

fn refusal(error: &HttpError) -> Answer {
    log::debug!("web: refused a request: {error}");
    text(error.status(), format!("{error}\n"))
}

/// The answer to one request: a pure function of the request and what is published.
fn answer(request: &Request, shared: &Shared) -> Answer {
    let (content_type, body) = match request.path.as_str() {
        "/" | "/index.html" => ("text/html; charset=utf-8", PAGE_HTML.as_bytes().to_vec()),
        "/page.css" => ("text/css; charset=utf-8", PAGE_CSS.as_bytes().to_vec()),
        "/page.js" => (
            "text/javascript; charset=utf-8",
            PAGE_JS.as_bytes().to_vec(),
        ),
        "/api/state" => ("application/json", state_json(shared).into_bytes()),
        "/api/history" => {
            let json = shared.history.as_ref().map_or("{}".into(), |r| r.json());
            ("application/json", json.into_bytes())
        }
        "/api/trace" => match trace_json(request, shared) {
            Some(json) => ("application/json", json.into_bytes()),
            None => {
                return text(
                    "400 Bad Request",
                    "want ?member=N&peer=ADDRESS:PORT\n".into(),
                );
            }
        },
        other => {
            let shown: String = other.chars().take(80).collect();
            return text("404 Not Found", format!("no page at {shown}\n"));
        }
    };
    Answer {
        status: "200 OK",
        content_type,
        body,
        head_only: request.head_only,
    }
}

/// `/api/state`: every member's latest snapshot, and the summary once there is one.
fn state_json(shared: &Shared) -> String {
    let summary = shared
        .summary
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    members_state(&shared.members, &summary)
}

/// Every member's latest snapshot, and the summary, as the JSON of `/api/state` (the live page
/// polls it; the report carries it inline).
fn members_state(members: &[Member], summary: &[String]) -> String {
    // Each `latest` holds its lock for one `Arc` clone; the JSON is built without any lock.
    let snapshots: Vec<_> = members.iter().map(|m| m.board.latest()).collect();
    let named: Vec<json::Named<'_>> = members
        .iter()
        .zip(&snapshots)
        .map(|(m, s)| json::Named {
            name: &m.name,
            snapshot: s,
        })
        .collect();
    json::state(&named, summary)
}

/// `/api/trace?member=N&peer=ADDR`: that peer's last trace lines, as a JSON list of strings.
fn trace_json(request: &Request, shared: &Shared) -> Option<String> {
    let value = |key: &str| {
        request
            .query
            .iter()
            .find(|(k, v)| k == key && v.len() <= MAX_QUERY_VALUE)
            .map(|(_, v)| v.as_str())
    };
    let member: usize = value("member")?.parse().ok()?;
    let peer: SocketAddr = value("peer")?.parse().ok()?;
    let lines = shared.members.get(member)?.trace.lines(peer);
    let mut out = String::from("[");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::string(&mut out, line);
    }
    out.push(']');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            members: vec![Member::new("us")],
            summary: Mutex::new(Vec::new()),
            history: None,
        }
    }

    fn get(path: &str) -> Request {
        http::parse_request(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn unknown_paths_are_404_and_known_ones_served() {
        let shared = shared();
        assert_eq!(answer(&get("/nothing"), &shared).status, "404 Not Found");
        assert_eq!(answer(&get("/"), &shared).status, "200 OK");
        assert_eq!(answer(&get("/page.js"), &shared).status, "200 OK");
        let state = answer(&get("/api/state"), &shared);
        assert_eq!(state.content_type, "application/json");
    }

    #[test]
    fn a_trace_is_found_by_member_and_address() {
        let shared = shared();
        let peer: SocketAddr = "127.0.0.1:6881".parse().unwrap();
        shared.members[0]
            .trace
            .push(peer, "127.0.0.1:6881 <- Unchoke".into());
        let found = answer(&get("/api/trace?member=0&peer=127.0.0.1%3A6881"), &shared);
        assert_eq!(
            String::from_utf8(found.body).unwrap(),
            "[\"127.0.0.1:6881 \\u003c- Unchoke\"]"
        );
        let bad = answer(&get("/api/trace?member=9&peer=127.0.0.1:1"), &shared);
        assert_eq!(bad.status, "400 Bad Request");
    }
}
