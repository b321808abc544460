//! `demo --report FILE.html`: the whole run in one file to hand out after class — walkthrough
//! §21. It records what BEP 3 ("The BitTorrent Protocol Specification") makes a swarm do:
//! pieces spreading from member to member; it reads the same boards as the web view.
//!
//! ```text
//!   Recorder thread ── every 500 ms: each member's latest snapshot ──► History
//!   after the run: History + the final /api/state + the summary ──► page.html with the CSS,
//!                                                                    the JS and the data inline
//! ```
//!
//! The file is the live page itself, given its data in a `<script type="application/json">`
//! element instead of polling: the same pictures, for the whole run, with no server.

use super::{Member, PAGE_CSS, PAGE_HTML, PAGE_JS, WebError};
use crate::scheduler::snapshot::PieceMark;
use std::fmt::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the recorder looks at the members.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Samples kept at most: two hours at one every half second; later ones are dropped.
const MAX_SAMPLES: usize = 14_400;

/// What the recorder saw.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// `(seconds since the start, pieces each member had, bytes each member had uploaded)`.
    pub samples: Vec<(f64, Vec<usize>, Vec<u64>)>,
    /// For each member, for each piece, when it first showed as verified (seconds).
    pub got_at: Vec<Vec<Option<f64>>>,
}

impl History {
    /// Records one look at the members' snapshots.
    pub fn sample(&mut self, at: f64, members: &[Member]) {
        let snapshots: Vec<_> = members.iter().map(|m| m.board.latest()).collect();
        if self.got_at.len() != members.len() {
            self.got_at = vec![Vec::new(); members.len()];
        }
        for (got, s) in self.got_at.iter_mut().zip(&snapshots) {
            got.resize(s.pieces.len(), None);
            for (when, mark) in got.iter_mut().zip(&s.pieces) {
                if when.is_none() && *mark == PieceMark::Have {
                    *when = Some(at);
                }
            }
        }
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push((
                at,
                snapshots.iter().map(|s| s.progress.pieces_have).collect(),
                snapshots.iter().map(|s| s.progress.uploaded).collect(),
            ));
        }
    }

    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"samples\":[");
        for (i, (t, have, up)) in self.samples.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "{{\"t\":{t:.1},\"have\":{have:?},\"up\":{up:?}}}");
        }
        out.push_str("],\"got_at\":[");
        for (i, got) in self.got_at.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let times: Vec<String> = got
                .iter()
                .map(|t| t.map_or("null".to_string(), |t| format!("{t:.1}")))
                .collect();
            let _ = write!(out, "[{}]", times.join(","));
        }
        out.push_str("]}");
        out
    }
}

/// Samples the members on a thread of its own (`history`) until [`Recorder::finish`]; the
/// page reads what it has so far at `/api/history`, so its curves start at the start.
pub struct Recorder {
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    pub fn start(members: Vec<Member>) -> Result<Recorder, WebError> {
        let stop = Arc::new(AtomicBool::new(false));
        let history = Arc::new(Mutex::new(History::default()));
        let (flag, shared) = (Arc::clone(&stop), Arc::clone(&history));
        let thread = std::thread::Builder::new()
            .name("history".into())
            .spawn(move || {
                let started = Instant::now();
                // The lock is held for one sample: the page's readers wait that long at most.
                let sample = |at: f64| {
                    let mut history = shared.lock().unwrap_or_else(|e| e.into_inner());
                    history.sample(at, &members);
                };
                while !flag.load(Ordering::Relaxed) {
                    sample(started.elapsed().as_secs_f64());
                    std::thread::park_timeout(SAMPLE_EVERY);
                }
                // One last look: the final snapshots are published before the sessions end.
                sample(started.elapsed().as_secs_f64());
            })
            .map_err(WebError::Thread)?;
        Ok(Recorder {
            stop,
            history,
            thread: Some(thread),
        })
    }

    /// What was seen so far, as the JSON of `/api/history`.
    pub fn json(&self) -> String {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .to_json()
    }

    /// A copy of what was seen so far; sampling goes on.
    pub fn snapshot(&self) -> History {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops sampling and returns what was seen.
    pub fn finish(mut self) -> History {
        self.stop_thread();
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.clone()
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            // A recorder that panicked leaves what it had recorded: still a report.
            let _ = thread.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// The report: the page with its CSS, its JS and the run's data inline.
pub fn html(history: &History, members: &[Member], summary: &[String]) -> String {
    // Both JSON texts escape `<`, so neither can close the script element it sits in.
    let data = format!(
        "{{\"history\":{},\"state\":{}}}",
        history.to_json(),
        super::members_state(members, summary)
    );
    PAGE_HTML
        .replace(
            "<link rel=\"stylesheet\" href=\"page.css\">",
            &format!("<style>\n{PAGE_CSS}</style>"),
        )
        .replace(
            "<script src=\"page.js\"></script>",
            &format!(
                "<script id=\"report-data\" type=\"application/json\">{data}</script>\n\
                 <script>\n{PAGE_JS}</script>"
            ),
        )
}

/// Writes the report to `path`.
pub fn write(
    path: &Path,
    history: &History,
    members: &[Member],
    summary: &[String],
) -> Result<(), WebError> {
    std::fs::write(path, html(history, members, summary)).map_err(|source| WebError::Report {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::snapshot::Snapshot;

    #[test]
    fn the_report_is_the_page_with_everything_inline() {
        let members = vec![Member::new("seeder"), Member::new("leecher 1")];
        members[1].board.publish(Snapshot {
            pieces: vec![PieceMark::Have, PieceMark::Missing],
            ..Snapshot::default()
        });
        let mut history = History::default();
        history.sample(0.5, &members);
        let html = html(&history, &members, &["time: <1 s".into()]);
        assert!(!html.contains("href=\"page.css\""));
        assert!(!html.contains("src=\"page.js\""));
        assert!(html.contains("\"got_at\":[[],[0.5,null]]"), "{html}");
        // The summary's `<` is escaped: it cannot end the script element.
        assert!(html.contains("time: \\u003c1 s"));
    }
}
