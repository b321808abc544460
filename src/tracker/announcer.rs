//! The announcer: one thread that keeps a torrent registered with its trackers — walkthrough §3.
//!
//! A download announces `started` once, then again every `interval` the tracker asked for
//! (with up-to-date `uploaded`/`downloaded`/`left`), `completed` once when it finishes, and
//! `stopped` when it leaves. The thread, named `tracker`, sleeps on its command channel with
//! the next announce time as the deadline, so it wakes for whichever comes first: [W3.4]
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
pub enum Command {
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
    pub commands: Sender<Command>,
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
        let _ = self.commands.send(Command::Stop);
        let _ = self.thread.join();
    }
}

/// The thread's loop.
fn run(
    mut tiers: TrackerTiers,
    mut request: AnnounceRequest,
    commands: Receiver<Command>,
    peers: Sender<Vec<SocketAddr>>,
) {
    request.event = Event::Started;
    let mut retry = FIRST_RETRY;
    let mut next = Instant::now();
    let mut earliest = Instant::now(); // `min interval`
    loop {
        let command = match commands.recv_deadline(next) {
            Ok(command) => Some(command),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Command::Stop),
        };
        match command {
            Some(Command::Progress {
                uploaded,
                downloaded,
                left,
            }) => {
                (request.uploaded, request.downloaded, request.left) = (uploaded, downloaded, left);
                continue;
            }
            Some(Command::NeedPeers) if Instant::now() < earliest => continue,
            Some(Command::Completed) => request.event = Event::Completed,
            Some(Command::Stop) => {
                request.event = Event::Stopped;
                let _ = tiers.announce(&request);
                log::info!("left the swarm (sent `stopped`)");
                return;
            }
            Some(Command::NeedPeers) | None => {}
        }
        match tiers.announce(&request) {
            Ok((url, response)) => {
                log::info!(
                    "{url}: {} peers, next announce in {:?}",
                    response.peers.len(),
                    response.interval
                );
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
