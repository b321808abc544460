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
//! this is the classic "stuck at 99 %"). [W7.1]

use super::connection::{Connection, PeerError, Trace};
use super::extensions::{ExtensionContext, Extensions};
use super::fast::{ALLOWED_FAST_COUNT, FastState, allowed_fast_set};
use super::pipeline::Pipeline;
use super::upload::{Answer, RateLimit, RequestCheck, Uploads};
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::piece::{BlockRequest, PieceLayout};
use crate::scheduler::events::{Command, Event};
use crate::storage::Storage;
use crate::wire::handshake::RESERVED_PEER;
use crate::wire::{Bitfield, Message};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send a keep-alive after this long without sending anything (libtorrent drops at 120 s).
const KEEP_ALIVE_AFTER: Duration = Duration::from_secs(90);
/// Blocks nobody asked for that we tolerate (late endgame copies are normal) before hanging up.
const MAX_UNSOLICITED: u32 = 64;
/// How long one turn of the loop may wait for the socket to take our bytes.
const PUMP_WAIT: Duration = Duration::from_millis(20);
/// How long one wait for the peer's next message lasts, in ms: also how late the scheduler's
/// commands (an unchoke, a `have`) may be seen while the peer is quiet.
const TICK_MS: u64 = 100;
/// Messages handled in one turn of the loop before it sends and requests again.
const MESSAGES_PER_TURN: usize = 64;
/// How long a peer thread waits for the scheduler's first command.
const FIRST_COMMAND_WAIT: Duration = Duration::from_secs(30);

/// What every peer thread of one download shares.
#[derive(Clone)]
pub struct PeerContext {
    pub info_hash: InfoHash,
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
    /// Our info dictionary, served with `ut_metadata` (BEP 9).
    pub metadata: Option<Arc<Vec<u8>>>,
    /// Peer exchange allowed (not for a private torrent).
    pub pex: bool,
    /// The port we listen on, announced in our extended handshake (0: unknown).
    pub listen_port: u16,
}

impl PeerContext {
    fn extensions(&self) -> ExtensionContext<'_> {
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
        Connection::open(addr, c.info_hash, c.our_id, RESERVED_PEER, c.trace.clone())
    });
}

/// Starts the thread `peer <addr>` for a connection the listener accepted (walkthrough §10).
/// `guard` lives as long as the thread (the listener counts live connections with it).
pub fn spawn_incoming(
    stream: TcpStream,
    addr: SocketAddr,
    context: PeerContext,
    guard: impl Send + 'static,
) {
    start_thread(addr, true, context, move |c| {
        let _guard = guard;
        Connection::accept(
            stream,
            c.info_hash,
            c.our_id,
            RESERVED_PEER,
            c.trace.clone(),
        )
    });
}

fn start_thread(
    addr: SocketAddr,
    incoming: bool,
    context: PeerContext,
    handshake: impl FnOnce(&PeerContext) -> Result<Connection, PeerError> + Send + 'static,
) {
    let name = format!("peer {addr}");
    let run = move || {
        let mut outstanding = Vec::new();
        let result = handshake(&context)
            .and_then(|c| run_connection(c, incoming, &context, &mut outstanding));
        let reason = match result {
            Ok(()) => "stopped".to_string(),
            Err(error) => {
                let reason = error.to_string();
                if let PeerError::Disk(error) = error {
                    let _ = context
                        .events
                        .send(Event::StorageFailed { peer: addr, error });
                }
                reason
            }
        };
        let _ = context.events.send(Event::Disconnected {
            peer: addr,
            reason,
            outstanding,
        });
    };
    if let Err(e) = std::thread::Builder::new().name(name).spawn(run) {
        log::error!("cannot start a thread for {addr}: {e}");
    }
}

/// Our side of one connection.
struct PeerState {
    addr: SocketAddr,
    /// The peer's pieces.
    bitfield: Bitfield,
    /// Our pieces, as the scheduler told us (`OurPieces`, then `Have`).
    ours: Bitfield,
    /// How many of the peer's pieces we lack: we are interested while this is above 0.
    wanted: usize,
    am_interested: bool,
    peer_choking: bool,
    am_choking: bool,
    peer_interested: bool,
    outstanding: Vec<BlockRequest>,
    pipeline: Pipeline,
    last_received: Instant,
    last_block: Instant,
    last_sent: Instant,
    /// The last time either side was interested (see `check_liveness`).
    useful_since: Instant,
    unsolicited: u32,
    /// Blocks written to disk but not yet reported to the scheduler.
    written: Vec<BlockRequest>,
    /// The peer's requests, and the bytes we sent it.
    uploads: Uploads,
    /// The extension protocol's state (BEP 10).
    extensions: Extensions,
    /// The fast extension's state (BEP 6).
    fast: FastState,
}

impl PeerState {
    fn new(addr: SocketAddr, num_pieces: usize, fast: bool) -> PeerState {
        let now = Instant::now();
        PeerState {
            addr,
            bitfield: Bitfield::new(num_pieces),
            ours: Bitfield::new(num_pieces),
            wanted: 0,
            am_interested: false,
            peer_choking: true,
            am_choking: true,
            peer_interested: false,
            outstanding: Vec::new(),
            pipeline: Pipeline::new(),
            last_received: now,
            last_block: now,
            last_sent: now,
            useful_since: now,
            unsolicited: 0,
            written: Vec::new(),
            uploads: Uploads::new(),
            extensions: Extensions::default(),
            fast: FastState::new(fast),
        }
    }
}

fn run_connection(
    mut connection: Connection,
    incoming: bool,
    context: &PeerContext,
    outstanding: &mut Vec<BlockRequest>,
) -> Result<(), PeerError> {
    connection.set_patient(context.patient);
    connection.set_stall_limit(context.silent_limit);
    let (commands_tx, commands) = unbounded();
    let connected = Event::Connected {
        peer: connection.addr,
        peer_id: connection.remote.peer_id,
        incoming,
        commands: commands_tx,
    };
    if context.events.send(connected).is_err() {
        return Ok(());
    }
    // We set the fast bit in every handshake of a peer thread (`RESERVED_PEER`), so the
    // extension is on exactly when the peer set it too.
    let fast = connection.remote.supports_fast();
    let mut state = PeerState::new(connection.addr, context.layout.num_pieces(), fast);
    let result =
        send_our_pieces(&mut connection, &mut state, context, &commands).and_then(|go_on| {
            match go_on {
                true => peer_loop(&mut connection, &mut state, context, &commands),
                false => Ok(()),
            }
        });
    report_written(&mut state, context); // before `Disconnected`: no written block is lost
    report_uploaded(&mut state, context, true);
    *outstanding = std::mem::take(&mut state.outstanding);
    result
}

/// Waits for the scheduler's `OurPieces` and sends our bitfield, the first message after the
/// handshake (none at all when we have nothing, as BEP 3 allows). `false`: told to stop.
fn send_our_pieces(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
    commands: &Receiver<Command>,
) -> Result<bool, PeerError> {
    let first = if context.patient {
        commands.recv().map_err(|_| RecvTimeoutError::Disconnected)
    } else {
        commands.recv_timeout(FIRST_COMMAND_WAIT)
    };
    let ours = match first {
        Ok(Command::OurPieces(ours)) => ours,
        Ok(_) | Err(RecvTimeoutError::Disconnected) => return Ok(false),
        Err(RecvTimeoutError::Timeout) => {
            return Err(PeerError::Protocol("the scheduler did not answer".into()));
        }
    };
    // With the fast extension one of bitfield / have_all / have_none is always sent, the
    // short ones where they say it all; without it, no bitfield at all when we have nothing.
    let first = match (state.fast.enabled, ours.count()) {
        (true, 0) => Some(Message::HaveNone),
        (true, n) if n == ours.num_pieces() => Some(Message::HaveAll),
        (false, 0) => None,
        _ => Some(Message::Bitfield(ours.as_bytes().to_vec())),
    };
    if let Some(first) = first {
        send(connection, state, &first)?;
    }
    if connection.remote.supports_extensions() {
        Extensions::send_handshake(connection, &context.extensions())?;
    }
    state.ours = ours;
    if state.fast.enabled {
        send_allowed_fast(connection, state, context)?;
    }
    connection.flush()?;
    Ok(true)
}

/// BEP 6: the pieces of the peer's allowed fast set that we have, which it may fetch even
/// while we choke it, so that a new peer gets something to trade before its first unchoke.
fn send_allowed_fast(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
) -> Result<(), PeerError> {
    // The BEP defines the set for IPv4 addresses only.
    let IpAddr::V4(ip) = state.addr.ip() else {
        return Ok(());
    };
    let num_pieces = context.layout.num_pieces() as u32;
    let set = allowed_fast_set(ALLOWED_FAST_COUNT, num_pieces, context.info_hash, ip);
    let ours: Vec<u32> = set
        .into_iter()
        .filter(|&i| state.ours.has(i as usize))
        .collect();
    for index in ours {
        state.fast.we_allow.push(index);
        send(connection, state, &Message::AllowedFast { index })?;
    }
    Ok(())
}

/// The loop of §7: one message (or tick), then commands, then requests, then uploads.
fn peer_loop(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
    commands: &Receiver<Command>,
) -> Result<(), PeerError> {
    let limit = context.upload_limit.as_deref();
    loop {
        // The upload queue holds only requests we serve now (while we choke the peer: none,
        // or with BEP 6 those of its allowed fast set), so it is served whatever our choke.
        let busy = connection.pending() > 0 || state.uploads.ready(limit);
        let throttled = state.uploads.throttled(limit);
        connection.set_tick(Duration::from_millis(if throttled { 20 } else { TICK_MS }));
        receive_messages(connection, state, context, !busy)?;
        if !context.patient {
            check_liveness(state, context)?;
        }
        for command in commands.try_iter() {
            if !run_command(connection, state, context, command)? {
                return Ok(());
            }
        }
        request_more(connection, state, context)?;
        let (storage, layout) = (&context.storage, &context.layout);
        state.uploads.serve(connection, storage, layout, limit)?;
        report_uploaded(state, context, false);
        if state.last_sent.elapsed() > KEEP_ALIVE_AFTER {
            send(connection, state, &Message::KeepAlive)?;
        }
        connection.pump(PUMP_WAIT)?;
    }
}

/// Handles every message that has arrived (waiting up to a tick for the first when `wait`),
/// at most `MESSAGES_PER_TURN`: a peer whose socket is full must still have its requests and
/// cancels read promptly.
fn receive_messages(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
    wait: bool,
) -> Result<(), PeerError> {
    for turn in 0..MESSAGES_PER_TURN {
        let Some(message) = connection.receive(wait && turn == 0)? else {
            break;
        };
        state.last_received = Instant::now();
        handle_message(connection, state, context, message)?;
        if state.written.len() >= 16 || !connection.has_buffered_data() {
            report_written(state, context);
        }
    }
    Ok(())
}

fn handle_message(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
    message: Message,
) -> Result<(), PeerError> {
    match message {
        Message::Bitfield(bits) => {
            let bitfield = Bitfield::from_payload(bits, context.layout.num_pieces())?;
            peer_announced(connection, state, context, bitfield)?;
        }
        // BEP 6 stands for "I have everything / nothing" in place of a bitfield. Taken even
        // from a peer that did not set the fast bit (BEP 6 says to hang up): the meaning is
        // plain and harms no one.
        Message::HaveAll => {
            let all = Bitfield::full(context.layout.num_pieces());
            peer_announced(connection, state, context, all)?;
        }
        Message::HaveNone => {
            let none = Bitfield::new(context.layout.num_pieces());
            peer_announced(connection, state, context, none)?;
        }
        Message::Have { index } => peer_has(connection, state, context, index)?,
        Message::Choke => {
            state.peer_choking = true;
            // [W7.3] BEP 3: a choke silently drops every request we sent, so they go back
            // to the scheduler now. BEP 6 changes that: the peer answers each one itself,
            // with the block or a reject, so ours stay outstanding until then.
            if !state.fast.enabled {
                let dropped = std::mem::take(&mut state.outstanding);
                let _ = context.events.send(Event::Choked {
                    peer: state.addr,
                    dropped,
                });
            }
        }
        Message::Unchoke => state.peer_choking = false,
        Message::Interested | Message::NotInterested => {
            state.peer_interested = message == Message::Interested;
            let _ = context.events.send(Event::Interest {
                peer: state.addr,
                interested: state.peer_interested,
            });
        }
        Message::Request {
            index,
            begin,
            length,
        } => {
            let check = RequestCheck {
                peer: state.addr,
                layout: &context.layout,
                ours: &state.ours,
                choking: state.am_choking,
                fast: &state.fast,
            };
            let block = BlockRequest {
                index,
                begin,
                length,
            };
            if state.uploads.on_request(block, &check)? == Answer::Reject {
                reject(connection, state, block)?;
            }
        }
        Message::Cancel {
            index,
            begin,
            length,
        } => {
            let block = BlockRequest {
                index,
                begin,
                length,
            };
            // BEP 6: even a cancelled request gets its one answer; a block already in the
            // outbox is the answer, otherwise a reject.
            if state.uploads.on_cancel(&block) && state.fast.enabled {
                reject(connection, state, block)?;
            }
        }
        Message::RejectRequest {
            index,
            begin,
            length,
        } => rejected(state, context, index, begin, length),
        Message::AllowedFast { index } => {
            // A promise about a piece that does not exist is worth nothing: ignored.
            if (index as usize) < context.layout.num_pieces() && state.fast.peer_allows(index) {
                log::debug!("{}: allows piece {index} while it chokes us", state.addr);
            }
        }
        Message::SuggestPiece { index } => {
            if (index as usize) < context.layout.num_pieces() {
                let _ = context.events.send(Event::Suggested {
                    peer: state.addr,
                    index,
                });
            }
        }
        Message::Piece {
            index,
            begin,
            block,
        } => receive_block(state, context, index, begin, &block)?,
        Message::Extended { id, payload } => {
            let extensions = context.extensions();
            state
                .extensions
                .receive(connection, &extensions, id, &payload)?;
        }
        other => log::trace!("{}: ignoring {other}", state.addr),
    }
    Ok(())
}

/// BEP 6 `reject_request`: the peer will not send this block, so it goes back to the
/// scheduler at once rather than after a timeout.
fn rejected(state: &mut PeerState, context: &PeerContext, index: u32, begin: u32, length: u32) {
    let block = BlockRequest {
        index,
        begin,
        length,
    };
    let Some(position) = state.outstanding.iter().position(|b| *b == block) else {
        // The answer to a request we cancelled (endgame): it is already back in the pool.
        log::trace!("{}: reject of {block:?}, not outstanding", state.addr);
        return;
    };
    state.outstanding.swap_remove(position);
    let _ = context.events.send(Event::Rejected {
        peer: state.addr,
        block,
        choked: state.peer_choking,
    });
}

/// Tells the peer we will not serve one of its requests (fast extension only).
fn reject(
    connection: &mut Connection,
    state: &mut PeerState,
    block: BlockRequest,
) -> Result<(), PeerError> {
    let message = Message::RejectRequest {
        index: block.index,
        begin: block.begin,
        length: block.length,
    };
    send(connection, state, &message)
}

/// A whole set of pieces from the peer: its `bitfield`, normally right after the handshake.
/// Some clients (aria2) send another one later instead of a batch of `have`s, whenever it is
/// shorter; that is harmless, so it is taken as an update: what the peer announced before
/// stays announced (the union), and the scheduler hears only what is new.
fn peer_announced(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
    bitfield: Bitfield,
) -> Result<(), PeerError> {
    if state.bitfield.count() == 0 {
        // [W6.2] The first announcement (the usual case): the scheduler counts every
        // piece at once.
        state.wanted = bitfield.count_missing_from(&state.ours);
        state.bitfield = bitfield.clone();
        let _ = context.events.send(Event::Bitfield {
            peer: state.addr,
            bitfield,
        });
        return update_interest(connection, state);
    }
    // A late one: the scheduler already counted the pieces announced so far, so only the new
    // ones go to it, one `Have` each, exactly as if the peer had sent those.
    let new: Vec<u32> = (0..bitfield.num_pieces())
        .filter(|&i| bitfield.has(i) && !state.bitfield.has(i))
        .map(|i| i as u32)
        .collect();
    log::debug!(
        "{}: a bitfield after other messages: {} new pieces",
        state.addr,
        new.len()
    );
    for index in new {
        peer_has(connection, state, context, index)?;
    }
    Ok(())
}

/// A `have`: the peer got a new piece; maybe now it has something we want.
fn peer_has(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
    index: u32,
) -> Result<(), PeerError> {
    if index as usize >= context.layout.num_pieces() {
        return Err(PeerError::Protocol(format!("have {index}: no such piece")));
    }
    if !state.bitfield.has(index as usize) {
        state.bitfield.set(index as usize);
        if !state.ours.has(index as usize) {
            state.wanted += 1;
        }
    }
    let _ = context.events.send(Event::Have {
        peer: state.addr,
        index,
    });
    update_interest(connection, state)
}

/// One command from the scheduler; `false` means stop.
fn run_command(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
    command: Command,
) -> Result<bool, PeerError> {
    match command {
        Command::Stop => return Ok(false),
        Command::Cancel(block) => cancel(connection, state, block)?,
        Command::OurPieces(ours) => {
            state.wanted = state.bitfield.count_missing_from(&ours);
            state.ours = ours;
        }
        Command::Have(index) => we_have(connection, state, index)?,
        Command::Choke if !state.am_choking => {
            state.am_choking = true;
            // Choke first, then reject (BEP 6): a peer that hears the rejects before the
            // choke would ask again.
            send(connection, state, &Message::Choke)?;
            let unserved = state.uploads.choke(&state.fast);
            if state.fast.enabled {
                for block in unserved {
                    reject(connection, state, block)?;
                }
            }
        }
        Command::Unchoke if state.am_choking => {
            state.am_choking = false;
            send(connection, state, &Message::Unchoke)?;
        }
        Command::Choke | Command::Unchoke => {}
        Command::Pex(connected) => {
            let extensions = context.extensions();
            state
                .extensions
                .send_pex(connection, &extensions, &connected)?;
        }
    }
    Ok(true)
}

/// We verified a piece: tell the peer (`have`), and lose interest if it has nothing more.
fn we_have(
    connection: &mut Connection,
    state: &mut PeerState,
    index: u32,
) -> Result<(), PeerError> {
    if !state.ours.has(index as usize) {
        state.ours.set(index as usize);
        if state.bitfield.has(index as usize) {
            state.wanted -= 1;
        }
    }
    if !state.bitfield.is_complete() {
        send(connection, state, &Message::Have { index })?; // a seed has nothing to learn
    }
    update_interest(connection, state)
}

/// A `piece` message: only for a block we asked for, written straight to disk.
fn receive_block(
    state: &mut PeerState,
    context: &PeerContext,
    index: u32,
    begin: u32,
    data: &[u8],
) -> Result<(), PeerError> {
    let wanted = BlockRequest {
        index,
        begin,
        length: data.len() as u32,
    };
    let Some(position) = state.outstanding.iter().position(|b| *b == wanted) else {
        state.unsolicited += 1; // a late copy after `cancel` is normal; a flood is not
        if state.unsolicited > MAX_UNSOLICITED {
            return Err(PeerError::Protocol(format!(
                "{} blocks nobody asked for",
                state.unsolicited
            )));
        }
        return Ok(());
    };
    state.outstanding.swap_remove(position);
    context
        .storage
        .write_block(&context.layout, &wanted, data)
        .map_err(PeerError::Disk)?;
    state.last_block = Instant::now();
    state.pipeline.received(data.len());
    state.written.push(wanted);
    Ok(())
}

/// Tells the scheduler which blocks are on disk. Blocks are reported in batches (see
/// `peer_loop`): one event per 16 KiB block would wake the scheduler 65,536 times per GiB.
fn report_written(state: &mut PeerState, context: &PeerContext) {
    if !state.written.is_empty() {
        let blocks = std::mem::take(&mut state.written);
        let _ = context.events.send(Event::BlocksWritten {
            peer: state.addr,
            blocks,
        });
    }
}

/// Sends `interested` when the peer has a piece we lack, `not interested` when it no longer has.
fn update_interest(connection: &mut Connection, state: &mut PeerState) -> Result<(), PeerError> {
    let interested = state.wanted > 0;
    if interested != state.am_interested {
        state.am_interested = interested;
        let message = match interested {
            true => Message::Interested,
            false => Message::NotInterested,
        };
        send(connection, state, &message)?;
    }
    Ok(())
}

/// Tells the scheduler how many bytes we sent the peer (every half second, and at the end).
fn report_uploaded(state: &mut PeerState, context: &PeerContext, now: bool) {
    if let Some(bytes) = state.uploads.take_report(now) {
        let _ = context.events.send(Event::Uploaded {
            peer: state.addr,
            bytes,
        });
    }
}

/// Fills the pipeline: ask the scheduler for blocks and request them.
fn request_more(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
) -> Result<(), PeerError> {
    // As deep as bandwidth × delay needs, but never more than the peer queues (`reqq`).
    let depth = match state.extensions.request_queue() {
        Some(reqq) => state.pipeline.depth().min(reqq.max(1)),
        None => state.pipeline.depth(),
    };
    // While the peer chokes us, only the pieces it allows (BEP 6 allowed fast) that it has
    // and we lack may be asked for; without the fast extension, nothing.
    let only = match state.peer_choking {
        false => None,
        true => {
            let allowed: Vec<u32> = (state.fast.they_allow.iter().copied())
                .filter(|&i| state.bitfield.has(i as usize) && !state.ours.has(i as usize))
                .collect();
            if allowed.is_empty() {
                return Ok(());
            }
            Some(allowed)
        }
    };
    let room = depth.saturating_sub(state.outstanding.len());
    // Ask in batches (a quarter of the pipeline at least): one round trip to the scheduler
    // per block received would cost a thread switch per 16 KiB.
    let batch = (depth / 4).max(1);
    let starving = state.outstanding.is_empty();
    if !state.am_interested || room == 0 || (room < batch && !starving) {
        return Ok(());
    }
    let (reply, answer) = crossbeam_channel::bounded(1);
    if context
        .events
        .send(Event::WantBlocks {
            peer: state.addr,
            count: room,
            only,
            reply,
        })
        .is_err()
    {
        return Ok(());
    }
    let blocks = answer.recv().unwrap_or_default();
    if state.outstanding.is_empty() && !blocks.is_empty() {
        state.last_block = Instant::now(); // the snub clock starts with the first request
    }
    for block in blocks {
        send(
            connection,
            state,
            &Message::Request {
                index: block.index,
                begin: block.begin,
                length: block.length,
            },
        )?;
        state.outstanding.push(block);
    }
    Ok(())
}

fn cancel(
    connection: &mut Connection,
    state: &mut PeerState,
    block: BlockRequest,
) -> Result<(), PeerError> {
    if let Some(position) = state.outstanding.iter().position(|b| *b == block) {
        state.outstanding.swap_remove(position);
        send(
            connection,
            state,
            &Message::Cancel {
                index: block.index,
                begin: block.begin,
                length: block.length,
            },
        )?;
    }
    Ok(())
}

/// Drops a peer that went silent, that holds our requests without delivering (it snubs us:
/// half the peer timeout, 60 s by default), or that neither wants from us nor has anything we
/// want for the whole peer timeout (it only takes a connection slot).
fn check_liveness(state: &mut PeerState, context: &PeerContext) -> Result<(), PeerError> {
    let limit = context.silent_limit;
    if state.last_received.elapsed() > limit {
        return Err(PeerError::Silent(limit));
    }
    let snub_limit = limit / 2;
    if !state.outstanding.is_empty() && state.last_block.elapsed() > snub_limit {
        return Err(PeerError::Snubbed(snub_limit));
    }
    if state.am_interested || state.peer_interested {
        state.useful_since = Instant::now();
    } else if state.useful_since.elapsed() > limit {
        return Err(PeerError::Useless(limit));
    }
    Ok(())
}

fn send(
    connection: &mut Connection,
    state: &mut PeerState,
    message: &Message,
) -> Result<(), PeerError> {
    state.last_sent = Instant::now();
    connection.send(message)
}
