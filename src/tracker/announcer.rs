//! The announcer: one thread that keeps torrents registered with their trackers (BEP 3, "The
//! BitTorrent Protocol Specification", trackers; BEP 15, "UDP Tracker Protocol for BitTorrent")
//! — walkthrough §3. It sits between the session (progress in) and the scheduler (peers out).
//!
//! A download announces `started` once, then again every `interval` the tracker asked for
//! (with up-to-date `uploaded`/`downloaded`/`left`), `completed` once when it finishes, and
//! `stopped` when it leaves. The thread, named `tracker`, serves one *job* per info hash it
//! announces (a torrent; a hybrid, BEP 52, is two), each with its own next announce time. It
//! sleeps on every job's command channel at once with the earliest of those times as the
//! deadline, so it wakes for whichever comes first:
//!
//! ```text
//!            ┌──── select(every job's commands, new jobs; until the earliest announce) ───┐
//!            ▼                                                                            │
//!   job added ──► started ──► [wait] ── a job's deadline ──► announce it ──► its peers channel
//!                               │── Progress  : update that job's counts
//!                               │── NeedPeers : announce it now (not before `min interval`)
//!                               │── Completed : announce `completed` now
//!                               └── Stop      : announce `stopped`, remove the job
//! ```
//!
//! One torrent alone gets a thread of its own with one job ([`Announcer::spawn`]); several
//! torrents of one process share one [`TrackerThread`] ([`TrackerThread::add`]). An announce
//! blocks the thread for as long as the tracker takes to answer, up to the timeouts of
//! [`super::TrackerConfig`]: meanwhile another job's due announce waits.
//!
//! When every tracker fails, a job tries again after a back-off that doubles from 15 s to 30 min.

use super::tiers::TrackerTiers;
use super::{AnnounceRequest, AnnounceResponse, Event};
use crossbeam_channel::{Receiver, Select, Sender, unbounded};
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

/// One torrent's announcing, seen from outside: send commands, receive peers.
pub struct Announcer {
    pub commands: Sender<AnnouncerCommand>,
    /// Every successful announce sends the peers it returned.
    pub peers: Receiver<Vec<SocketAddr>>,
    /// Closed (its sender dropped) when the thread has removed the job, after `stopped`.
    removed: Receiver<()>,
    /// The thread, when it was started for this job alone.
    own_thread: Option<TrackerThread>,
}

const FIRST_RETRY: Duration = Duration::from_secs(15);
const LONGEST_RETRY: Duration = Duration::from_secs(30 * 60);

impl Announcer {
    /// Starts a `tracker` thread for this one job; its first announce (`started`) happens at
    /// once.
    pub fn spawn(tiers: TrackerTiers, request: AnnounceRequest) -> std::io::Result<Announcer> {
        let thread = TrackerThread::start()?;
        let mut announcer = thread.add(tiers, request);
        announcer.own_thread = Some(thread);
        Ok(announcer)
    }

    /// Sends `stopped` to the tracker and waits until the thread has removed the job (and,
    /// for a thread of its own, until the thread has ended).
    pub fn stop(self) {
        // The job leaves only on `Stop`: this fails only if the thread died (a panic), and
        // then there is no `stopped` to send and the wait below returns at once.
        let _ = self.commands.send(AnnouncerCommand::Stop);
        // `Err` is the expected answer: the thread drops the sender once `stopped` went out
        // (or it died); nothing is ever sent on this channel.
        let _ = self.removed.recv();
        if let Some(thread) = self.own_thread {
            thread.stop();
        }
    }
}

/// The `tracker` thread: announces for every job added to it.
pub struct TrackerThread {
    jobs: Sender<Job>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for TrackerThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrackerThread")
    }
}

impl TrackerThread {
    /// Starts the thread, named `tracker`, with no job yet.
    pub fn start() -> std::io::Result<TrackerThread> {
        let (jobs_tx, jobs_rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("tracker".into())
            .spawn(move || serve(jobs_rx))?;
        Ok(TrackerThread {
            jobs: jobs_tx,
            thread,
        })
    }

    /// Adds a job: its first announce (`started`) goes out as soon as the thread is free.
    pub fn add(&self, tiers: TrackerTiers, mut request: AnnounceRequest) -> Announcer {
        // Whatever event the caller left in the request, a job's first announce is `started`.
        request.event = Event::Started;
        let (command_tx, command_rx) = unbounded();
        let (peers_tx, peers_rx) = unbounded();
        let (removed_tx, removed_rx) = unbounded();
        let job = Job {
            tiers,
            request,
            commands: command_rx,
            peers: peers_tx,
            timing: Timing::new(Instant::now()),
            _removed: removed_tx,
        };
        // Fails only if the thread died (a panic): the job is dropped with the channels it
        // holds, so the session sees no peers from trackers and its `stop` returns at once.
        if self.jobs.send(job).is_err() {
            log::warn!("the tracker thread is gone; no announce for this torrent");
        }
        Announcer {
            commands: command_tx,
            peers: peers_rx,
            removed: removed_rx,
            own_thread: None,
        }
    }

    /// Ends the thread once its last job has been removed, and waits for it.
    pub fn stop(self) {
        drop(self.jobs);
        // `Err` only if the thread panicked; its message is already printed.
        let _ = self.thread.join();
    }
}

/// One torrent's (one info hash's) announcing, inside the thread.
struct Job {
    tiers: TrackerTiers,
    request: AnnounceRequest,
    commands: Receiver<AnnouncerCommand>,
    peers: Sender<Vec<SocketAddr>>,
    timing: Timing,
    /// Dropped with the job: that is what [`Announcer::stop`] waits for.
    _removed: Sender<()>,
}

/// What a job does after a command.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Nothing to send now.
    Wait,
    /// Announce now (the request's `event` says which).
    Announce,
    /// Announce `stopped`, then remove the job.
    Leave,
}

/// A job's schedule, apart from its sockets: when its next announce is due, the earliest a
/// `NeedPeers` may bring it forward, and the back-off after failures.
#[derive(Debug)]
struct Timing {
    next: Instant,
    /// The tracker's `min interval`.
    earliest: Instant,
    retry: Duration,
}

impl Timing {
    /// A new job is due at once (the thread announces `started` as soon as it takes the job).
    fn new(now: Instant) -> Timing {
        Timing {
            next: now,
            earliest: now,
            retry: FIRST_RETRY,
        }
    }

    /// Applies a command to the job's request and says what to do.
    fn on_command(
        &mut self,
        command: AnnouncerCommand,
        request: &mut AnnounceRequest,
        now: Instant,
    ) -> Step {
        match command {
            AnnouncerCommand::Progress {
                uploaded,
                downloaded,
                left,
            } => {
                (request.uploaded, request.downloaded, request.left) = (uploaded, downloaded, left);
                Step::Wait
            }
            AnnouncerCommand::NeedPeers if now < self.earliest => {
                log::debug!("no peers, but the tracker's `min interval` has not passed");
                Step::Wait
            }
            AnnouncerCommand::NeedPeers => {
                log::info!("no peers left: asking the tracker again");
                Step::Announce
            }
            AnnouncerCommand::Completed => {
                request.event = Event::Completed;
                Step::Announce
            }
            AnnouncerCommand::Stop => {
                request.event = Event::Stopped;
                Step::Leave
            }
        }
    }

    /// A tracker answered: the next announce is after its `interval`.
    fn answered(&mut self, response: &AnnounceResponse, now: Instant) {
        self.retry = FIRST_RETRY;
        self.next = now + response.interval;
        self.earliest = now + response.min_interval.unwrap_or_default();
    }

    /// Every tracker failed: try again after the back-off, which doubles. Returns the wait.
    fn failed(&mut self, now: Instant) -> Duration {
        let wait = self.retry;
        self.next = now + wait;
        self.retry = (self.retry * 2).min(LONGEST_RETRY);
        wait
    }
}

/// The job whose announce is due first, and when.
fn next_due<'a>(timings: impl Iterator<Item = &'a Timing>) -> Option<(usize, Instant)> {
    timings
        .map(|t| t.next)
        .enumerate()
        .min_by_key(|&(_, next)| next)
}

/// The thread's loop: a wait for a command, a new job, or the earliest deadline, then what it
/// calls for. Ends when no one can add a job any more and the last job has left.
fn serve(new_jobs: Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::new();
    let mut open = true;
    loop {
        if !open && jobs.is_empty() {
            return;
        }
        let deadline = next_due(jobs.iter().map(|j| &j.timing)).map(|(_, at)| at);
        // What woke the thread: a new job (or the last sender gone), a job's command (its
        // sender gone counts as `Stop`), or nothing before the deadline.
        let woke = {
            let mut select = Select::new();
            let first_job = usize::from(open);
            if open {
                select.recv(&new_jobs);
            }
            for job in &jobs {
                select.recv(&job.commands);
            }
            let selected = match deadline {
                Some(deadline) => select.select_deadline(deadline).ok(),
                // No job, and `open` (checked above): only a new job can come.
                None => Some(select.select()),
            };
            match selected {
                None => Woke::Deadline,
                Some(op) if op.index() < first_job => match op.recv(&new_jobs) {
                    Ok(job) => Woke::NewJob(Box::new(job)),
                    Err(_) => Woke::Closed,
                },
                Some(op) => {
                    let i = op.index() - first_job;
                    let command = op.recv(&jobs[i].commands);
                    Woke::Command(i, command.unwrap_or(AnnouncerCommand::Stop))
                }
            }
        };
        match woke {
            Woke::Deadline => {
                // [W3.4] The deadline came: the job due first announces. A command already
                // queued is read before this (the wait returns it first), so a tracker that
                // asks for an interval of 0 cannot keep `Stop` from being read.
                if let Some((i, _)) = next_due(jobs.iter().map(|j| &j.timing)) {
                    announce(&mut jobs[i]);
                }
            }
            Woke::NewJob(job) => {
                // `started` goes out before any of the job's commands is read: a download
                // that completes at once must still say `started` before `completed`.
                jobs.push(*job);
                if let Some(job) = jobs.last_mut() {
                    announce(job);
                }
            }
            Woke::Closed => open = false,
            Woke::Command(i, command) => {
                let job = &mut jobs[i];
                match job
                    .timing
                    .on_command(command, &mut job.request, Instant::now())
                {
                    Step::Wait => {}
                    Step::Announce => announce(job),
                    Step::Leave => {
                        // Best effort: a tracker that misses our `stopped` forgets us after
                        // its interval anyway; a run must not fail on its way out for that.
                        let _ = job.tiers.announce(&job.request);
                        log::info!("left the swarm (sent `stopped`)");
                        // Dropping the job tells its `Announcer::stop` it is done.
                        jobs.swap_remove(i);
                    }
                }
            }
        }
    }
}

/// What ended the thread's wait.
enum Woke {
    Deadline,
    NewJob(Box<Job>),
    /// Every [`TrackerThread`] handle is gone: no new job will come.
    Closed,
    Command(usize, AnnouncerCommand),
}

/// One announce for `job`, with the blocking tracker code and its timeouts.
fn announce(job: &mut Job) {
    match job.tiers.announce(&job.request) {
        Ok((url, response)) => {
            log::info!(
                "{url}: {} peers, next announce in {:?}",
                response.peers.len(),
                response.interval
            );
            job.timing.answered(&response, Instant::now());
            // Fails only once every receiver is gone (the download is over): then nobody
            // needs peers.
            let _ = job.peers.send(response.peers);
            job.request.event = Event::None;
        }
        Err(error) => {
            let wait = job.timing.failed(Instant::now());
            log::warn!("announce failed, retrying in {wait:?}: {error}");
        }
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

    fn a_request(byte: u8) -> AnnounceRequest {
        let hash = crate::metainfo::InfoHash([byte; 20]);
        AnnounceRequest::started(hash, crate::peer_id::PeerId::generate(), 6000, 100)
    }

    fn answer(interval: u64, min_interval: Option<u64>) -> AnnounceResponse {
        AnnounceResponse {
            peers: Vec::new(),
            interval: Duration::from_secs(interval),
            min_interval: min_interval.map(Duration::from_secs),
            complete: None,
            incomplete: None,
            warning: None,
        }
    }

    #[test]
    fn the_job_due_first_is_the_one_with_the_earliest_deadline() {
        let start = Instant::now();
        let (mut a, mut b) = (Timing::new(start), Timing::new(start));
        a.answered(&answer(1800, None), start);
        b.answered(&answer(60, None), start);
        assert_eq!(next_due([&a, &b].into_iter()), Some((1, at(start, 60))));
        // A job just added is due at once: its `started` goes before anyone else's re-announce.
        let c = Timing::new(at(start, 10));
        assert_eq!(next_due([&a, &b, &c].into_iter()), Some((2, at(start, 10))));
        // A failure moves the job back by the back-off, which doubles.
        b.failed(at(start, 60));
        assert_eq!(next_due([&a, &b].into_iter()), Some((1, at(start, 75))));
        b.failed(at(start, 75));
        assert_eq!(b.next, at(start, 105));
        assert_eq!(next_due(std::iter::empty()), None);
    }

    #[test]
    fn a_command_wakes_its_job_before_the_deadline() {
        let start = Instant::now();
        let mut request = a_request(1);
        let mut timing = Timing::new(start);
        timing.answered(&answer(1800, Some(30)), start);
        let progress = AnnouncerCommand::Progress {
            uploaded: 1,
            downloaded: 2,
            left: 3,
        };
        let now = at(start, 5);
        assert_eq!(timing.on_command(progress, &mut request, now), Step::Wait);
        assert_eq!(
            (request.uploaded, request.downloaded, request.left),
            (1, 2, 3)
        );
        let need = AnnouncerCommand::NeedPeers;
        assert_eq!(timing.on_command(need, &mut request, now), Step::Wait);
        let later = at(start, 30);
        assert_eq!(timing.on_command(need, &mut request, later), Step::Announce);
        let completed = AnnouncerCommand::Completed;
        assert_eq!(
            timing.on_command(completed, &mut request, now),
            Step::Announce
        );
        assert_eq!(request.event, Event::Completed);
        assert_eq!(
            timing.on_command(AnnouncerCommand::Stop, &mut request, now),
            Step::Leave
        );
        assert_eq!(request.event, Event::Stopped);
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
