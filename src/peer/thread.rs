//! The peer thread: one OS thread owns one connection — walkthrough §7.
//!
//! ```text
//!   connect + handshake ──► loop:  receive a message (or a 1 s tick) ──► handle it
//!                                  run the scheduler's commands (cancel, stop)
//!                                  unchoked? keep `depth` requests in flight
//!                                  keep-alive after 90 s of our silence
//!   on exit: Disconnected { outstanding } ──► the scheduler puts those blocks back
//! ```
//!
//! State follows BEP 3: we start *choked* and *not interested*; we say `interested` when the
//! peer has pieces, and request only while it has us unchoked. A `choke` silently drops our
//! queued requests, so they go straight back to the scheduler (forgetting this is the classic
//! "stuck at 99 %"). [W7.1]

use super::connection::{Connection, PeerError};
use super::pipeline::Pipeline;
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::piece::{BlockRequest, PieceLayout};
use crate::scheduler::events::{Command, Event};
use crate::storage::Storage;
use crate::wire::{Bitfield, Message};
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send a keep-alive after this long without sending anything (libtorrent drops at 120 s).
const KEEP_ALIVE_AFTER: Duration = Duration::from_secs(90);
/// Drop a peer that sends nothing at all for this long.
const SILENT_LIMIT: Duration = Duration::from_secs(120);
/// Drop a peer that delivers no block for this long while our requests are out (snubbed).
const SNUB_LIMIT: Duration = Duration::from_secs(60);
/// Blocks nobody asked for that we tolerate (late endgame copies are normal) before hanging up.
const MAX_UNSOLICITED: u32 = 64;

/// What every peer thread of one download shares.
#[derive(Clone)]
pub struct PeerContext {
    pub info_hash: InfoHash,
    pub our_id: PeerId,
    pub layout: Arc<PieceLayout>,
    pub storage: Arc<Storage>,
    pub events: Sender<Event>,
    /// Print every message on stderr (`--trace`).
    pub trace: bool,
    /// `--debug-single-peer`: never drop a peer for being slow or silent.
    pub patient: bool,
}

/// Starts the thread `peer <addr>` that connects to `addr` and serves the scheduler.
pub fn spawn(addr: SocketAddr, context: PeerContext) {
    let name = format!("peer {addr}");
    let run = move || {
        let mut outstanding = Vec::new();
        let reason = match run_connection(addr, &context, &mut outstanding) {
            Ok(()) => "stopped".to_string(),
            Err(error) => error.to_string(),
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
    bitfield: Bitfield,
    /// Any message other than an extension message seen yet? (A bitfield must come first.)
    started: bool,
    am_interested: bool,
    peer_choking: bool,
    outstanding: Vec<BlockRequest>,
    pipeline: Pipeline,
    last_received: Instant,
    last_block: Instant,
    last_sent: Instant,
    unsolicited: u32,
    /// Blocks written to disk but not yet reported to the scheduler.
    written: Vec<BlockRequest>,
}

fn run_connection(
    addr: SocketAddr,
    context: &PeerContext,
    outstanding: &mut Vec<BlockRequest>,
) -> Result<(), PeerError> {
    let mut connection = Connection::open(
        addr,
        context.info_hash,
        context.our_id,
        [0; 8],
        context.trace,
    )?;
    connection.set_patient(context.patient);
    let (commands_tx, commands) = unbounded();
    let connected = Event::Connected {
        peer: addr,
        peer_id: connection.remote.peer_id,
        commands: commands_tx,
    };
    if context.events.send(connected).is_err() {
        return Ok(());
    }
    let now = Instant::now();
    let mut state = PeerState {
        addr,
        bitfield: Bitfield::new(context.layout.num_pieces()),
        started: false,
        am_interested: false,
        peer_choking: true,
        outstanding: Vec::new(),
        pipeline: Pipeline::new(),
        last_received: now,
        last_block: now,
        last_sent: now,
        unsolicited: 0,
        written: Vec::new(),
    };
    let result = peer_loop(&mut connection, &mut state, context, &commands);
    report_written(&mut state, context); // before `Disconnected`: no written block is lost
    *outstanding = std::mem::take(&mut state.outstanding);
    result
}

/// The loop of §7: one message (or tick), then commands, then requests.
fn peer_loop(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
    commands: &Receiver<Command>,
) -> Result<(), PeerError> {
    loop {
        match connection.receive()? {
            Some(message) => {
                state.last_received = Instant::now();
                handle_message(connection, state, context, message)?;
                if state.written.len() >= 16 || !connection.has_buffered_data() {
                    report_written(state, context);
                }
            }
            None if context.patient => {}
            None => check_liveness(state)?,
        }
        for command in commands.try_iter() {
            match command {
                Command::Stop => return Ok(()),
                Command::Cancel(block) => cancel(connection, state, block)?,
            }
        }
        request_more(connection, state, context)?;
        if state.last_sent.elapsed() > KEEP_ALIVE_AFTER {
            send(connection, state, &Message::KeepAlive)?;
        }
        connection.flush()?;
    }
}

fn handle_message(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
    message: Message,
) -> Result<(), PeerError> {
    let first = !state.started && !matches!(message, Message::Extended { .. } | Message::KeepAlive);
    if first {
        state.started = true;
    }
    match message {
        Message::Bitfield(bits) if first => {
            let bitfield = Bitfield::from_payload(bits, context.layout.num_pieces())?;
            state.bitfield = bitfield.clone();
            let _ = context.events.send(Event::Bitfield {
                peer: state.addr,
                bitfield,
            });
            become_interested(connection, state)?;
        }
        Message::Bitfield(_) => {
            return Err(PeerError::Protocol("bitfield after other messages".into()));
        }
        Message::Have { index } if (index as usize) < context.layout.num_pieces() => {
            state.bitfield.set(index as usize);
            let _ = context.events.send(Event::Have {
                peer: state.addr,
                index,
            });
            become_interested(connection, state)?;
        }
        Message::Have { index } => {
            return Err(PeerError::Protocol(format!("have {index}: no such piece")));
        }
        Message::Choke => {
            state.peer_choking = true;
            let dropped = std::mem::take(&mut state.outstanding);
            let _ = context.events.send(Event::Choked {
                peer: state.addr,
                dropped,
            });
        }
        Message::Unchoke => state.peer_choking = false,
        Message::Piece {
            index,
            begin,
            block,
        } => receive_block(state, context, index, begin, &block)?,
        other => log::trace!("{}: ignoring {other}", state.addr),
    }
    Ok(())
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
        .map_err(|e| PeerError::Protocol(format!("disk: {e}")))?;
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

fn become_interested(connection: &mut Connection, state: &mut PeerState) -> Result<(), PeerError> {
    if !state.am_interested && state.bitfield.count() > 0 {
        state.am_interested = true;
        send(connection, state, &Message::Interested)?;
    }
    Ok(())
}

/// Fills the pipeline: ask the scheduler for blocks and request them.
fn request_more(
    connection: &mut Connection,
    state: &mut PeerState,
    context: &PeerContext,
) -> Result<(), PeerError> {
    let room = state
        .pipeline
        .depth()
        .saturating_sub(state.outstanding.len());
    // Ask in batches (a quarter of the pipeline at least): one round trip to the scheduler
    // per block received would cost a thread switch per 16 KiB.
    let batch = (state.pipeline.depth() / 4).max(1);
    let starving = state.outstanding.is_empty();
    if state.peer_choking || !state.am_interested || room == 0 || (room < batch && !starving) {
        return Ok(());
    }
    let (reply, answer) = crossbeam_channel::bounded(1);
    if context
        .events
        .send(Event::WantBlocks {
            peer: state.addr,
            count: room,
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

/// Drops a peer that went silent, or that holds our requests without delivering (snubbed).
fn check_liveness(state: &PeerState) -> Result<(), PeerError> {
    if state.last_received.elapsed() > SILENT_LIMIT {
        return Err(PeerError::Silent(SILENT_LIMIT));
    }
    if !state.outstanding.is_empty() && state.last_block.elapsed() > SNUB_LIMIT {
        return Err(PeerError::Silent(SNUB_LIMIT));
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
