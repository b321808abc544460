//! The announcer: one thread that keeps a torrent registered with its trackers — walkthrough §3.
//!
//! A download announces `started` once, then again every `interval` the tracker asked for
//! (with up-to-date `uploaded`/`downloaded`/`left`), `completed` once when it finishes, and
//! `stopped` when it leaves. The thread, named `tracker`, sleeps on its command channel with
//! the next announce time as the deadline, so it wakes for whichever comes first:
//!
//! ```text
//!            ┌──────────── recv_timeout(until next announce) ◄── commands ───┐
//!            ▼                                                               │
//!   started ──► [wait] ── deadline ──► announce (event none) ──► peers ──► channel
//!                 │── Progress  : update the counts
//!                 │── NeedPeers : announce now (not before `min interval`)
//!                 │── Completed : announce `completed` now
//!                 └── Stop      : announce `stopped`, end the thread
//! ```
//!
//! When every tracker fails, it tries again after a back-off that doubles from 15 s to 30 min.

use super::tiers::TrackerTiers;
use super::{AnnounceRequest, Event};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the rest of the client tells the announcer.
#[derive(Debug, Clone, Copy)]
pub enum AnnouncerCommand {
    Progress {
        uploaded: u64,
        downloaded: u64,
        left: u64,
    },
    NeedPeers,
    Completed,
    Stop,
}

/// The announcer thread, seen from outside: send commands, receive peers.
pub struct Announcer {
    pub commands: Sender<AnnouncerCommand>,
    /// Every successful announce sends the peers it returned.
    pub peers: Receiver<Vec<SocketAddr>>,
    thread: JoinHandle<()>,
}

const FIRST_RETRY: Duration = Duration::from_secs(15);
const LONGEST_RETRY: Duration = Duration::from_secs(30 * 60);

impl Announcer {
    /// Starts the `tracker` thread; its first announce (`started`) happens at once.
    pub fn spawn(tiers: TrackerTiers, request: AnnounceRequest) -> std::io::Result<Announcer> {
        let (command_tx, command_rx) = unbounded();
        let (peers_tx, peers_rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("tracker".into())
            .spawn(move || run(tiers, request, command_rx, peers_tx))?;
        Ok(Announcer {
            commands: command_tx,
            peers: peers_rx,
            thread,
        })
    }

    /// Sends `stopped` to the tracker and waits for the thread to end.
    pub fn stop(self) {
        // The thread ends only on `Stop`, so this fails only if it died (a panic): then
        // there is no `stopped` to send, and the join returns at once.
        let _ = self.commands.send(AnnouncerCommand::Stop);
        // `Err` only if the thread panicked; its message is already printed, and the
        // download is over either way.
        let _ = self.thread.join();
    }
}

/// When to send [`AnnouncerCommand::NeedPeers`]: a download with no peer at all asks its trackers
/// again instead of waiting out a long `interval`. It waits [`ALONE_GRACE`] first (the
/// first announce and reconnections are still under way), then asks, and asks again after a
/// pause that doubles from [`FIRST_ASK_AGAIN`] to [`LONGEST_ASK_AGAIN`], so a dead swarm costs
/// the tracker one announce every few minutes, not a flood. A peer connected resets it.
#[derive(Debug, Default)]
pub struct Lonely {
    /// When the peer count fell to zero.
    alone_since: Option<Instant>,
    /// When we last asked, and how long to wait before asking again.
    asked: Option<(Instant, Duration)>,
}

pub const ALONE_GRACE: Duration = Duration::from_secs(3);
pub const FIRST_ASK_AGAIN: Duration = Duration::from_secs(15);
pub const LONGEST_ASK_AGAIN: Duration = Duration::from_secs(5 * 60);

impl Lonely {
    /// Told the peer count now; true when it is time to send `NeedPeers`. [W3.5]
    pub fn should_ask(&mut self, peers: usize, now: Instant) -> bool {
        if peers > 0 {
            *self = Lonely::default();
            return false;
        }
        let alone_since = *self.alone_since.get_or_insert(now);
        if now.duration_since(alone_since) < ALONE_GRACE {
            return false;
        }
        let pause = match self.asked {
            None => FIRST_ASK_AGAIN,
            Some((at, pause)) if now.duration_since(at) >= pause => {
                (pause * 2).min(LONGEST_ASK_AGAIN)
            }
            Some(_) => return false,
        };
        self.asked = Some((now, pause));
        true
    }
}

/// The thread's loop.
fn run(
    mut tiers: TrackerTiers,
    mut request: AnnounceRequest,
    commands: Receiver<AnnouncerCommand>,
    peers: Sender<Vec<SocketAddr>>,
) {
    request.event = Event::Started;
    let mut retry = FIRST_RETRY;
    let mut next = Instant::now();
    let mut earliest = Instant::now(); // `min interval`
    // `started` goes out before any command is read: a download that completes at once must
    // still say `started` before `completed`.
    let mut first = true;
    loop {
        let received = match first {
            true => Err(RecvTimeoutError::Timeout),
            false => commands.recv_deadline(next), // [W3.4] a command, or the next announce
        };
        first = false;
        let command = match received {
            Ok(command) => Some(command),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(AnnouncerCommand::Stop),
        };
        match command {
            Some(AnnouncerCommand::Progress {
                uploaded,
                downloaded,
                left,
            }) => {
                (request.uploaded, request.downloaded, request.left) = (uploaded, downloaded, left);
                continue;
            }
            Some(AnnouncerCommand::NeedPeers) if Instant::now() < earliest => {
                log::debug!("no peers, but the tracker's `min interval` has not passed");
                continue;
            }
            Some(AnnouncerCommand::NeedPeers) => {
                log::info!("no peers left: asking the tracker again")
            }
            Some(AnnouncerCommand::Completed) => request.event = Event::Completed,
            Some(AnnouncerCommand::Stop) => {
                request.event = Event::Stopped;
                // Best effort: a tracker that misses our `stopped` forgets us after its
                // interval anyway; a run must not fail on its way out for that.
                let _ = tiers.announce(&request);
                log::info!("left the swarm (sent `stopped`)");
                return;
            }
            None => {}
        }
        match tiers.announce(&request) {
            Ok((url, response)) => {
                log::info!(
                    "{url}: {} peers, next announce in {:?}",
                    response.peers.len(),
                    response.interval
                );
                // Fails only once every receiver is gone (the download is over): then nobody
                // needs peers.
                let _ = peers.send(response.peers);
                request.event = Event::None;
                retry = FIRST_RETRY;
                next = Instant::now() + response.interval;
                earliest = Instant::now() + response.min_interval.unwrap_or_default();
            }
            Err(error) => {
                log::warn!("announce failed, retrying in {retry:?}: {error}");
                next = Instant::now() + retry;
                retry = (retry * 2).min(LONGEST_RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn a_download_with_peers_never_asks() {
        let (mut lonely, start) = (Lonely::default(), Instant::now());
        assert!((0..1000).all(|s| !lonely.should_ask(1, at(start, s))));
    }

    #[test]
    fn alone_it_asks_after_the_grace_then_less_and_less_often() {
        let (mut lonely, start) = (Lonely::default(), Instant::now());
        let asked: Vec<u64> = (0..200)
            .filter(|&s| lonely.should_ask(0, at(start, s)))
            .collect();
        // 3 s of grace, then pauses of 15, 30, 60 s...
        assert_eq!(asked, vec![3, 18, 48, 108]);
    }

    #[test]
    fn a_peer_connecting_starts_the_count_over() {
        let (mut lonely, start) = (Lonely::default(), Instant::now());
        assert!(!lonely.should_ask(0, at(start, 0)));
        assert!(lonely.should_ask(0, at(start, 3)));
        assert!(!lonely.should_ask(2, at(start, 4)));
        assert!(!lonely.should_ask(0, at(start, 5)));
        assert!(
            lonely.should_ask(0, at(start, 8)),
            "grace again, not the long pause"
        );
    }

    #[test]
    fn the_pause_stops_growing_at_five_minutes() {
        let (mut lonely, start) = (Lonely::default(), Instant::now());
        let asked: Vec<u64> = (0..3000)
            .filter(|&s| lonely.should_ask(0, at(start, s)))
            .collect();
        let gaps: Vec<u64> = asked.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps.last(), Some(&300));
        assert!(gaps.iter().all(|&g| g <= 300));
    }
}
