//! The progress line of `download` and `seed`, and the log lines printed through it.
//!
//! One line on stderr, redrawn in place, that says only what is known:
//!
//! ```text
//! ████████████░░░░░░░░░░░░░░░░░░  42% 3.1 MiB/s down, 0.2 MiB/s up, 4 peers, ETA 12s
//! ░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░   0% 0.0 MiB/s down, 0.0 MiB/s up, 0 peers, ETA --
//! ```
//!
//! The percentage and the time left count the bytes of the selected files (`--select-file`;
//! every file without it), not pieces: a piece shared with a file not selected counts only for
//! its selected bytes. The time left is unknown (`--`) until a piece has been verified this
//! run: a rate of nothing gives no time. A log line written to the terminal while the bar is drawn would leave
//! a copy of the bar above it, so every log line goes through [`ThroughTheBar`]: the bar is
//! taken off, the line printed, and the bar drawn again once, below it.
//!
//! Several torrents in one `download` get one line each, named, under one
//! `indicatif::MultiProgress` ([`Lines`]): a log line then takes all of them off and puts
//! them back below it.
//!
//! ```text
//! debian.iso           ████████████░░░░░░░░░░░░░░░░░░  42% 3.1 MiB/s down, 0.2 MiB/s up, 4 peers, ETA 12s
//! photos               ██████████████████████████████ 100% seeding, 0.0 MiB/s down, 0.1 MiB/s up, 1 peers
//! ```

use crate::scheduler::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The bars on the terminal now, each with its number, newest last: log lines go through
/// the newest (taking off one bar of a `MultiProgress` takes off all of them).
static SHOWN: Mutex<Vec<(u64, ProgressBar)>> = Mutex::new(Vec::new());

fn shown() -> MutexGuard<'static, Vec<(u64, ProgressBar)>> {
    SHOWN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The bar of one session, taken off the terminal when dropped: when the session is done,
/// and when it fails or is stopped by Ctrl-C (an error line then follows on a clean line).
pub struct Bar {
    bar: ProgressBar,
    /// Its place in `SHOWN`.
    id: u64,
}

impl Bar {
    /// A bar of `bytes` (the first report sets the selected bytes), drawn when stderr is a
    /// terminal. `hidden` when something else prints line after line on stderr (the wire
    /// trace): a bar redrawn between them is only noise.
    pub fn start(bytes: u64, hidden: bool) -> Bar {
        let bar = match hidden {
            true => ProgressBar::hidden(),
            false => ProgressBar::new(bytes),
        };
        let style = ProgressStyle::with_template("{bar:30} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Bar::shown(bar)
    }

    /// Puts `bar` on the list the log lines go through.
    fn shown(bar: ProgressBar) -> Bar {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shown().push((id, bar.clone()));
        Bar { bar, id }
    }

    /// Percent, average rates down and up this run, peers, and the time left.
    pub fn show(&self, p: &Progress) {
        let (done, all) = shown_bytes(p);
        self.bar.set_length(all);
        self.bar.set_position(done);
        self.bar.set_message(status(p, self.bar.elapsed()));
    }
}

/// (verified, in all) in bytes of the selected files. A summary made without the scheduler
/// (already complete at the start) has no byte counts: it is whole.
fn shown_bytes(p: &Progress) -> (u64, u64) {
    match p.wanted_bytes {
        0 => (1, 1),
        all => (p.wanted_bytes_have.min(all), all),
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        shown().retain(|(id, _)| *id != self.id);
        self.bar.finish_and_clear();
    }
}

/// How many characters of a torrent's name go in front of its line: the bars line up, and
/// a long name does not push the rates off an 80-column terminal.
const NAME_WIDTH: usize = 20;

/// The named lines of several torrents, one [`Bar`] each, drawn together on stderr.
pub struct Lines {
    multi: MultiProgress,
    /// The wire trace is on: every line hidden, as [`Bar::start`] hides its one.
    hidden: bool,
}

impl Lines {
    pub fn new(hidden: bool) -> Lines {
        Lines {
            multi: MultiProgress::new(),
            hidden,
        }
    }

    /// A new line at the bottom, `name` in front of the bar (cut to [`NAME_WIDTH`], with `…`).
    pub fn add(&self, name: &str, bytes: u64) -> Bar {
        let bar = match self.hidden {
            true => ProgressBar::hidden(),
            false => self.multi.add(ProgressBar::new(bytes)),
        };
        let template = format!("{{prefix:{NAME_WIDTH}}} {{bar:30}} {{percent:>3}}% {{msg}}");
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(short_name(name));
        Bar::shown(bar)
    }

    /// Prints `lines` on stderr above the bars, which are drawn again below them.
    pub fn print(&self, lines: &[String]) {
        self.multi
            .suspend(|| lines.iter().for_each(|line| eprintln!("{line}")));
    }
}

/// `name` in at most [`NAME_WIDTH`] characters: a longer one keeps its start and ends in `…`.
fn short_name(name: &str) -> String {
    match name.chars().count() <= NAME_WIDTH {
        true => name.to_string(),
        false => {
            let start: String = name.chars().take(NAME_WIDTH - 1).collect();
            format!("{start}…")
        }
    }
}

/// What follows the percentage.
fn status(p: &Progress, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(0.001);
    let down = p.downloaded as f64 / seconds / 1_048_576.0;
    let up = p.uploaded as f64 / seconds / 1_048_576.0;
    let rates = format!("{down:.1} MiB/s down, {up:.1} MiB/s up, {} peers", p.peers);
    match p.is_done() {
        true => format!("seeding, {rates}"),
        false => format!("{rates}, ETA {}", time_left(p, elapsed)),
    }
}

/// The missing selected bytes at this run's pace so far (selected bytes verified this run per
/// second), or `--` before the first piece: there is no pace yet, and 0 s would be a lie.
fn time_left(p: &Progress, elapsed: Duration) -> String {
    let done = p.wanted_bytes_have.saturating_sub(p.wanted_bytes_at_start);
    if done == 0 {
        return "--".to_string();
    }
    let missing = p.wanted_bytes.saturating_sub(p.wanted_bytes_have);
    let seconds = (elapsed.as_secs_f64() * missing as f64 / done as f64).round() as u64;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds / 60 % 60),
    }
}

/// `env_logger`, with each line printed through the bar on the terminal, if there is one.
pub struct ThroughTheBar(pub env_logger::Logger);

impl log::Log for ThroughTheBar {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.0.matches(record) {
            return;
        }
        // A clone, so that the lock is not held while the line is written.
        let bar = shown().last().map(|(_, bar)| bar.clone());
        match bar {
            Some(bar) => bar.suspend(|| self.0.log(record)),
            None => self.0.log(record),
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces of 1,000 bytes, every file selected.
    fn progress(at_start: usize, have: usize, total: usize) -> Progress {
        Progress {
            pieces_at_start: at_start,
            pieces_have: have,
            pieces_total: total,
            wanted_bytes: total as u64 * 1000,
            wanted_bytes_have: have as u64 * 1000,
            wanted_bytes_at_start: at_start as u64 * 1000,
            ..Progress::default()
        }
    }

    #[test]
    fn before_the_first_piece_the_time_left_is_unknown() {
        let p = progress(0, 0, 100);
        assert_eq!(
            status(&p, Duration::ZERO),
            "0.0 MiB/s down, 0.0 MiB/s up, 0 peers, ETA --"
        );
        // Pieces found on disk at the start are no pace either.
        assert_eq!(
            time_left(&progress(40, 40, 100), Duration::from_secs(9)),
            "--"
        );
    }

    #[test]
    fn the_time_left_follows_this_runs_pace() {
        // 10 pieces in 5 s, 30 to go: 15 s.
        assert_eq!(
            time_left(&progress(60, 70, 100), Duration::from_secs(5)),
            "15s"
        );
        assert_eq!(
            time_left(&progress(0, 1, 100), Duration::from_secs(2)),
            "3m18s"
        );
        assert_eq!(
            time_left(&progress(0, 1, 1000), Duration::from_secs(10)),
            "2h46m"
        );
    }

    #[test]
    fn a_complete_torrent_is_seeding_without_a_time_left() {
        let mut p = progress(0, 8, 8);
        p.peers = 2;
        assert_eq!(
            status(&p, Duration::from_secs(1)),
            "seeding, 0.0 MiB/s down, 0.0 MiB/s up, 2 peers"
        );
    }

    #[test]
    fn a_long_name_is_cut_to_the_width() {
        assert_eq!(short_name("debian.iso"), "debian.iso");
        let long = "ubuntu-24.04-desktop-amd64.iso";
        let short = short_name(long);
        assert_eq!(short.chars().count(), NAME_WIDTH);
        assert_eq!(short, "ubuntu-24.04-deskto…");
        assert_eq!(short_name(&"é".repeat(25)).chars().count(), NAME_WIDTH);
    }

    #[test]
    fn only_the_selected_bytes_count() {
        // 100 pieces; the selected files hold 20,000 bytes, 5,000 of them verified (in 2 s)
        // while 30 pieces of other files were already on disk.
        let p = Progress {
            pieces_at_start: 30,
            pieces_have: 35,
            pieces_total: 100,
            wanted_bytes: 20_000,
            wanted_bytes_have: 5_000,
            wanted_bytes_at_start: 0,
            ..Progress::default()
        };
        assert_eq!(shown_bytes(&p), (5_000, 20_000), "25%, not 35%");
        assert_eq!(time_left(&p, Duration::from_secs(2)), "6s");
        let done = Progress {
            wanted_bytes_have: 20_000,
            ..p
        };
        assert!(status(&done, Duration::from_secs(1)).starts_with("seeding"));
    }
}
