//! The peer thread: one OS thread owns one connection — walkthrough §7, §10.
//!
//! ```text
//!   connect (or accept) + handshake ──► Connected ──► wait for OurPieces ──► our bitfield
//!   loop:  receive a message (or a 0.1 s tick; no wait while there are bytes to send) ──► handle it
//!          run the scheduler's commands (have, choke/unchoke, cancel, stop)
//!          unchoked by the peer? keep `depth` requests in flight
//!          unchoking the peer? serve its queued requests from disk (upload.rs)
//!          keep-alive after 90 s of our silence; give the socket what it takes of the outbox
//!   on exit: Disconnected { outstanding } ──► the scheduler puts those blocks back
//! ```
//!
//! State follows BEP 3: each side starts *choked* and *not interested*; we say `interested`
//! when the peer has a piece we lack, and request only while it has us unchoked. A `choke`
//! silently drops our queued requests, so they go straight back to the scheduler (forgetting
//! this is the classic "stuck at 99 %").

use super::connection::{Connection, PeerError};
use super::dispatch::{handle_message, report_uploaded, report_written, request_more, run_command};
use super::extended::{ExtensionContext, Extensions};
use super::pipeline::Pipeline;
use super::state::{PeerState, PieceLayers};
use super::stream::PeerStream;
use super::swarms::Swarms;
use super::upload::{RateLimit, Uploads};
use crate::events::{Command, Event};
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::piece::{BlockRequest, PieceLayout};
use crate::storage::Storage;
use crate::trace::Trace;
use crate::wire::Message;
use crate::wire::handshake::{RESERVED_PEER, RESERVED_PEER_DHT};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send a keep-alive after this long without sending anything (libtorrent drops at 120 s).
const KEEP_ALIVE_AFTER: Duration = Duration::from_secs(90);
/// How long one turn of the loop may wait for the socket to take our bytes.
const PUMP_WAIT: Duration = Duration::from_millis(20);
/// How long one wait for the peer's next message lasts, in ms: also how late the scheduler's
/// commands (an unchoke, a `have`) may be seen while the peer is quiet.
const TICK_MS: u64 = 100;
/// Messages handled in one turn of the loop before it sends and requests again.
const MESSAGES_PER_TURN: usize = 64;
/// How long a peer thread waits for the scheduler's first command.
const FIRST_COMMAND_WAIT: Duration = Duration::from_secs(30);
/// The stack reserved for each thread that serves one connection: peer threads, and the
/// askers of a magnet link's metadata (`metadata_fetch.rs`). Chosen from measurements of a
/// debug build (deeper than a release build): with 32 KiB, peer threads overflowed in the
/// interop tests of encryption (MSE), uTP, v2 and magnet links and in the hostile-leecher
/// tests of the seed; with 48 KiB all of those passed; a thread seeding to or downloading from
/// plain BEP 3 peers had touched at most 28 KiB of its stack (glibc's thread block and TLS
/// included). 256 KiB is five times the floor found, for the paths no test reaches. The
/// default, 2 MiB, would not cost memory it does not touch either, but 500 connections would
/// reserve 1 GiB of address space for their stacks; with this, 128 MiB (docs/design.md,
/// "Thread stacks"). [W22.2]
pub const CONNECTION_STACK: usize = 256 * 1024;

/// What every peer thread of one download shares.
#[derive(Clone)]
pub struct PeerContext {
    pub info_hash: InfoHash,
    /// A hybrid torrent's truncated v2 info hash (BEP 52): peers of the v2 swarm dial with it.
    pub v2_info_hash: Option<InfoHash>,
    pub our_id: PeerId,
    pub layout: Arc<PieceLayout>,
    pub storage: Arc<Storage>,
    pub events: Sender<Event>,
    /// Where every wire message is traced (`--trace`: stderr).
    pub trace: Trace,
    /// `--debug-single-peer`: never drop a peer for being slow or silent.
    pub patient: bool,
    /// Drop a peer that sends nothing at all for this long (`--peer-timeout`).
    pub silent_limit: Duration,
    /// `--max-upload-rate`, shared by every peer thread.
    pub upload_limit: Option<Arc<RateLimit>>,
    /// `--max-download-rate`, shared by every peer thread.
    pub download_limit: Option<Arc<RateLimit>>,
    /// Our info dictionary, served with `ut_metadata` (BEP 9).
    pub metadata: Option<Arc<Vec<u8>>>,
    /// The hash trees of a v2 or hybrid torrent's files, from their piece layers up: what
    /// `hash request`s are answered from (BEP 52). `None`: every hash request is rejected.
    pub v2_layers: Option<Arc<PieceLayers>>,
    /// Peer exchange allowed (not for a private torrent).
    pub pex: bool,
    /// The port we listen on, announced in our extended handshake (0: unknown).
    pub listen_port: u16,
    /// Our DHT node (BEP 5), if it runs: its port goes to peers in a `port` message, and the
    /// nodes peers name in theirs go to it.
    pub dht: Option<DhtLink>,
    /// `--transport` and `--encryption`: how we dial (`dial.rs`), and MSE/PE both ways
    /// (`encrypted.rs`).
    pub dialer: crate::peer::dial::Dialer,
}

/// What a peer thread needs of the DHT node.
#[derive(Clone)]
pub struct DhtLink {
    pub commands: Sender<crate::dht::node::Command>,
    /// The UDP port of our node.
    pub port: u16,
}

impl PeerContext {
    /// The names peers may know our torrent by (BEP 52: a hybrid torrent has two).
    pub(super) fn info_hashes(&self) -> Vec<InfoHash> {
        std::iter::once(self.info_hash)
            .chain(self.v2_info_hash)
            .collect()
    }

    /// Our handshake's reserved bytes: the DHT bit only when we run a node.
    fn reserved(&self) -> [u8; 8] {
        match self.dht {
            Some(_) => RESERVED_PEER_DHT,
            None => RESERVED_PEER,
        }
    }
}

impl PeerContext {
    pub(super) fn extensions(&self) -> ExtensionContext<'_> {
        ExtensionContext {
            metadata: self.metadata.as_ref(),
            pex: self.pex,
            listen_port: self.listen_port,
            events: &self.events,
        }
    }
}

/// Starts the thread `peer <addr>` that connects to `addr` and serves the scheduler.
pub fn spawn(addr: SocketAddr, context: PeerContext) {
    start_thread(addr, false, context, move |c| {
        // Dialling runs on the new thread, not the caller's: a peer that never answers costs
        // its own thread the connect timeout, and the scheduler that asked goes on at once.
        let connection = Connection::open(
            addr,
            c.info_hash,
            c.our_id,
            c.reserved(),
            c.trace.clone(),
            &c.dialer,
        )?;
        Ok((connection, c.clone()))
    });
}

/// Starts the thread `peer <addr>` for a connection the listener accepted (walkthrough §10):
/// the info hash of the peer's handshake picks, among `swarms`, the torrent it serves.
/// `guard` lives as long as the thread (the listener counts live connections with it).
pub fn spawn_incoming(
    stream: Box<dyn PeerStream>,
    addr: SocketAddr,
    swarms: Swarms,
    guard: impl Send + 'static,
) {
    // No torrent (none started yet, or all ended): nobody to answer for; dropping the
    // stream closes it.
    let Some(first) = swarms.first() else {
        log::debug!("{addr}: refused, no torrent is running");
        return;
    };
    start_thread(addr, true, first, move |c| {
        // Moved in here so that it is dropped when the thread ends, however it ends: the
        // listener's count goes down only when the connection is really gone.
        let _guard = guard;
        // Our peer id, reserved bits, trace and encryption are the process's, the same for
        // every torrent: the first one's serve until the handshake names the torrent.
        let connection = Connection::accept(
            stream,
            &swarms.names(),
            c.our_id,
            c.reserved(),
            c.trace.clone(),
            c.dialer.encryption,
        )?;
        // [W10.5] The name the peer asked for picks the torrent; one that ended while the
        // handshake was on the wire is refused like a torrent we never had.
        let asked = connection.remote.info_hash;
        let context = swarms.find(&asked).ok_or(PeerError::WrongInfoHash(asked))?;
        Ok((connection, context))
    });
}

fn start_thread(
    addr: SocketAddr,
    incoming: bool,
    context: PeerContext,
    handshake: impl FnOnce(&PeerContext) -> Result<(Connection, PeerContext), PeerError>
    + Send
    + 'static,
) {
    // Named for its peer: a debugger's thread list and a panic message say which
    // connection a thread serves.
    let name = format!("peer {addr}");
    let run = move || {
        let events = context.events.clone();
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            serve(addr, incoming, &context, handshake);
        }));
        // A panic is a bug of ours, not the peer's. The scheduler must still hear that this
        // connection is gone, or its slot and every block it asked for would stay taken (the
        // scheduler gives back whatever the picker still has this peer down for).
        if let Err(panic) = served {
            let why = crate::events::panic_text(panic.as_ref());
            let reason = format!("the peer thread crashed (a bug in peerwire): {why}");
            // The scheduler has ended: the download is over, nobody needs this.
            let _ = events.send(Event::Disconnected {
                peer: addr,
                reason,
                outstanding: Vec::new(),
            });
        }
    };
    // Out of threads: this connection cannot run. Logged rather than fatal: one peer fewer.
    let builder = std::thread::Builder::new()
        .name(name)
        .stack_size(CONNECTION_STACK);
    if let Err(e) = builder.spawn(run) {
        log::error!("cannot start a thread for {addr}: {e}");
    }
}

/// The life of one connection's thread: the handshake, the loop, and the one `Disconnected`
/// that reports how it ended.
fn serve(
    addr: SocketAddr,
    incoming: bool,
    context: &PeerContext,
    handshake: impl FnOnce(&PeerContext) -> Result<(Connection, PeerContext), PeerError>,
) {
    {
        // Filled on the way out, whatever ended the connection: the requests the peer never
        // answered must reach the scheduler even after an error.
        let mut outstanding = Vec::new();
        // The torrent the connection turned out to serve: an incoming peer names it in its
        // handshake. Until then (and if the handshake fails), the one the thread started with.
        let mut served = context.clone();
        let result = handshake(context).and_then(|(connection, routed)| {
            served = routed;
            run_connection(connection, incoming, &served, &mut outstanding)
        });
        let context = &served;
        let reason = match result {
            // Told to stop (by the scheduler, or because it has ended).
            Ok(()) => "stopped".to_string(),
            Err(error) => {
                // The error's text, evidence and all, is what the scheduler logs.
                let reason = error.to_string();
                // A disk error is not this peer's fault, and another peer's block would
                // fail the same way: the scheduler must end the download, not just drop us.
                if let PeerError::Disk(error) = error {
                    // The scheduler has ended: the download is over, nobody needs this.
                    let _ = context
                        .events
                        .send(Event::StorageFailed { peer: addr, error });
                }
                reason
            }
        };
        // Sent on every way out, a failed handshake too: the scheduler frees any slot it
        // kept for this address, puts our requests back, and decides whether to dial again.
        // It fails only when the scheduler has ended: then nobody needs the blocks back.
        let _ = context.events.send(Event::Disconnected {
            peer: addr,
            reason,
            outstanding,
        });
    }
}

/// Everything the thread keeps for its connection: the protocol state (pure, `state.rs`) and
/// what only the thread needs: clocks, the pipeline, the upload queue, the extensions.
pub(super) struct Link {
    pub(super) peer: PeerState,
    pub(super) pipeline: Pipeline,
    /// When the peer last sent anything / a block; when we last sent anything.
    pub(super) last_received: Instant,
    pub(super) last_block: Instant,
    pub(super) last_sent: Instant,
    /// The last time either side was interested (see `check_liveness`).
    pub(super) useful_since: Instant,
    /// Blocks written to disk but not yet reported to the scheduler.
    pub(super) written: Vec<BlockRequest>,
    /// The peer's requests, and the bytes we sent it.
    pub(super) uploads: Uploads,
    /// The extension protocol's state (BEP 10).
    pub(super) extensions: Extensions,
}

impl Link {
    fn new(peer: PeerState) -> Link {
        // Every clock starts at the handshake: a new connection gets the whole silence,
        // snub and interest budgets of `check_liveness` before it can be judged.
        let now = Instant::now();
        Link {
            peer,
            pipeline: Pipeline::new(),
            last_received: now,
            last_block: now,
            last_sent: now,
            useful_since: now,
            written: Vec::new(),
            uploads: Uploads::new(),
            extensions: Extensions::default(),
        }
    }
}

fn run_connection(
    mut connection: Connection,
    incoming: bool,
    context: &PeerContext,
    outstanding: &mut Vec<BlockRequest>,
) -> Result<(), PeerError> {
    // The connection's own deadlines follow the same options as `check_liveness`: one knob
    // (`--peer-timeout`, `--debug-single-peer`) for every way a peer can go quiet.
    connection.set_patient(context.patient);
    connection.set_stall_limit(context.silent_limit);
    // Unbounded: the scheduler must never wait on one peer thread (a slow peer would stall
    // the whole download). The queue stays short because every turn of the loop empties it.
    let (commands_tx, commands) = unbounded();
    // The scheduler hears of us only now, after the handshake: it never holds a command
    // channel to a connection that failed before it began.
    let connected = Event::Connected {
        peer: connection.addr,
        peer_id: connection.remote.peer_id,
        incoming,
        commands: commands_tx,
    };
    if context.events.send(connected).is_err() {
        return Ok(()); // the scheduler has ended: the download is over
    }
    // Only for the web view; after `Connected`, so the scheduler has the entry to put it in.
    let link = Event::Link {
        peer: connection.addr,
        transport: connection.link(),
    };
    if context.events.send(link).is_err() {
        return Ok(());
    }
    // We set the fast bit in every handshake of a peer thread (`RESERVED_PEER`), so the
    // extension is on exactly when the peer set it too.
    let fast = connection.remote.supports_fast();
    let peer = PeerState::new(connection.addr, context.layout.num_pieces(), fast);
    let mut link = Link::new(peer);
    // Whatever `start` or the loop returns, the reports below still go out: an error ends
    // the connection, not the bookkeeping.
    let result =
        start(&mut connection, &mut link, context, &commands).and_then(|go_on| match go_on {
            true => peer_loop(&mut connection, &mut link, context, &commands),
            false => Ok(()),
        });
    // Before `Disconnected`: a block on disk but not reported would be fetched again.
    report_written(&mut link, context);
    // `true`: the last bytes now, not at the next half-second (there is none), so the
    // summary and the seeding ratio count them.
    report_uploaded(&mut link, context, true);
    // The requests the peer never answered: `Disconnected` hands them back to the picker,
    // or they would stay "requested" from a peer that is gone (stuck at 99 %).
    *outstanding = std::mem::take(&mut link.peer.outstanding);
    result
}

/// Waits for the scheduler's `OurPieces`, then sends our first messages: what we have (a
/// bitfield, or BEP 6's short forms), our extended handshake, and (BEP 6) the pieces the peer
/// may fetch while we choke it. `false`: told to stop.
fn start(
    connection: &mut Connection,
    link: &mut Link,
    context: &PeerContext,
    commands: &Receiver<Command>,
) -> Result<bool, PeerError> {
    // Under a debugger the scheduler may be paused for minutes: wait as long as it takes.
    let first = if context.patient {
        commands.recv().map_err(|_| RecvTimeoutError::Disconnected)
    } else {
        commands.recv_timeout(FIRST_COMMAND_WAIT)
    };
    // Why wait at all: our bitfield must be our first message (BEP 3: it "is only ever sent
    // as the first message"; rtorrent bans a peer whose bitfield comes late), and only the
    // scheduler knows what we have, and whether it wants this connection at all.
    let ours = match first {
        Ok(Command::OurPieces(ours)) => ours,
        // `Stop`: refused (a duplicate, too many peers, banned). Disconnected: the
        // scheduler has ended. Either way, nothing to say to the peer.
        Ok(_) | Err(RecvTimeoutError::Disconnected) => return Ok(false),
        // A scheduler silent for 30 s is stuck: hang up rather than hold the peer.
        Err(RecvTimeoutError::Timeout) => return Err(PeerError::SchedulerSilent),
    };
    let (have, allow) = link.peer.start(ours, context.info_hash);
    // `None`: we have nothing and the peer has no fast extension; BEP 3 lets us skip the
    // bitfield, and the peer assumes we have nothing.
    if let Some(have) = have {
        send(connection, link, &have)?;
    }
    // BEP 10's handshake goes second: BEP 6 wants our pieces "only immediately after the
    // handshake", and BEP 10 only says "should" (libtorrent sends its own first).
    if connection.remote.supports_extensions() {
        Extensions::send_handshake(connection, &context.extensions())?;
    }
    for message in &allow {
        send(connection, link, message)?;
    }
    // BEP 5: a peer that set the DHT bit hears where our node listens, and may add it to
    // its routing table. Sent only when we set the bit too (we run a node).
    if let (Some(dht), true) = (&context.dht, connection.remote.supports_dht()) {
        send(connection, link, &Message::Port(dht.port))?;
    }
    // Out now rather than at the end of the first turn (up to the stall limit): the peer
    // can decide at once whether we interest it.
    connection.flush()?;
    Ok(true)
}

/// The loop of §7: one message (or tick), then commands, then requests, then uploads.
fn peer_loop(
    connection: &mut Connection,
    link: &mut Link,
    context: &PeerContext,
    commands: &Receiver<Command>,
) -> Result<(), PeerError> {
    let limit = context.upload_limit.as_deref();
    // Every wait in a turn is short: at most a tick for a message, `PUMP_WAIT` for the
    // socket, and the scheduler answers `WantBlocks` at once. So each step below runs many
    // times a second, and a breakpoint on any of them is soon hit.
    loop {
        // The upload queue holds only requests we serve now (while we choke the peer: none,
        // or with BEP 6 those of its allowed fast set), so it is served whatever our choke.
        // With bytes to send, the thread must not sit in a read: it only looks for messages
        // already there, and goes on to pump the outbox. [W7.4]
        let busy = connection.pending() > 0 || link.uploads.ready(limit);
        // A throttled upload (`--max-upload-rate`) waits for tokens: look again sooner.
        let throttled = link.uploads.throttled(limit);
        connection.set_tick(Duration::from_millis(if throttled { 20 } else { TICK_MS }));
        receive_messages(connection, link, context, !busy)?;
        // `--debug-single-peer`: a peer paused in a debugger is silent, not dead.
        if !context.patient {
            check_liveness(link, context)?;
        }
        // `try_iter`: the scheduler's commands never keep us from the socket; the wait for
        // a message above (at most a tick) is also how late we may see them.
        for command in commands.try_iter() {
            if !run_command(connection, link, context, command)? {
                return Ok(());
            }
        }
        // After the messages and commands of this turn: a choke, an unchoke or a `have`
        // just handled already shows in what we ask for.
        request_more(connection, link, context)?;
        let (storage, layout) = (&context.storage, &context.layout);
        link.uploads.serve(connection, storage, layout, limit)?;
        // At most every half second (`REPORT_EVERY`): the choker needs rates, not
        // an event per block.
        report_uploaded(link, context, false);
        // BEP 3 has keep-alives go out about every two minutes, but libtorrent drops a
        // peer silent for 120 s: ours go out after 90 s of our own silence.
        if link.last_sent.elapsed() > KEEP_ALIVE_AFTER {
            send(connection, link, &Message::KeepAlive)?;
        }
        // A bounded wait: a peer that does not read costs us at most `PUMP_WAIT` per
        // turn, never a blocked thread (see `connection.rs`).
        connection.pump(PUMP_WAIT)?;
    }
}

/// Handles every message that has arrived (waiting up to a tick for the first when `wait`),
/// at most `MESSAGES_PER_TURN`: a peer whose socket is full must still have its requests and
/// cancels read promptly.
fn receive_messages(
    connection: &mut Connection,
    link: &mut Link,
    context: &PeerContext,
    wait: bool,
) -> Result<(), PeerError> {
    for turn in 0..MESSAGES_PER_TURN {
        // Only the first read of a turn may wait: once a message came, the rest of the
        // turn takes only what is already here.
        let Some(message) = connection.receive(wait && turn == 0)? else {
            break;
        };
        // Any message counts as life, a keep-alive too: that is what keep-alives are for.
        link.last_received = Instant::now();
        handle_message(connection, link, context, message)?;
        // Report written blocks when the burst is over (or every 16): the scheduler learns
        // of them promptly, but not once per 16 KiB.
        if link.written.len() >= 16 || !connection.has_buffered_data() {
            report_written(link, context);
        }
    }
    Ok(())
}

/// Drops a peer that went silent, that holds our requests without delivering (it snubs us:
/// half the peer timeout, 60 s by default), or that neither wants from us nor has anything we
/// want for the whole peer timeout (it only takes a connection slot).
fn check_liveness(link: &mut Link, context: &PeerContext) -> Result<(), PeerError> {
    let limit = context.silent_limit;
    // Not even a keep-alive: the peer (or the path to it) is gone, and TCP alone may take
    // many minutes to notice.
    if link.last_received.elapsed() > limit {
        return Err(PeerError::Silent(limit));
    }
    // Keep-alives and `have`s do not count here: only blocks. Ending the connection is
    // what gives the requests back (`Disconnected`) for faster peers to take; real clients
    // keep a snubbing peer and re-issue its requests elsewhere, which needs more
    // bookkeeping (a block asked of two peers outside endgame).
    let snub_limit = limit / 2;
    if !link.peer.outstanding.is_empty() && link.last_block.elapsed() > snub_limit {
        return Err(PeerError::Snubbed(snub_limit));
    }
    // Interest on either side means the connection may yet carry data: its clock restarts.
    if link.peer.am_interested || link.peer.peer_interested {
        link.useful_since = Instant::now();
    } else if link.useful_since.elapsed() > limit {
        // Neither side wants anything: the slot is worth more to another peer.
        return Err(PeerError::Useless(limit));
    }
    Ok(())
}

/// Queues one message for the peer (the outbox is pumped once per turn of the loop).
pub(super) fn send(
    connection: &mut Connection,
    link: &mut Link,
    message: &Message,
) -> Result<(), PeerError> {
    // "Sent" for the keep-alive clock means queued: the outbox goes out within a turn.
    link.last_sent = Instant::now();
    connection.send(message)
}
