//! What the peer thread does with each message from the peer and each command of the
//! scheduler (BEP 3, BEP 6) — walkthrough §7, §10.
//!
//! ```text
//!   message ──► handle_message ──► PeerState decides (state.rs) ──► perform: send, tell
//!                              └─► requests to serve (upload.rs), blocks to write (storage)
//!   command ──► run_command ────► the same
//!   the pipeline has room ──► request_more ──► Event::WantBlocks ──► requests
//! ```
//!
//! The decisions are in the pure `state.rs`; this module only carries them out, and does
//! what needs the disk, the upload queue or the scheduler's channel.

use super::connection::{Connection, PeerError};
use super::state::Actions;
use super::thread::{Link, PeerContext, send};
use super::upload::{Answer, RequestCheck};
use crate::events::{Command, Event};
use crate::piece::BlockRequest;
use crate::wire::{Bitfield, Message};
use std::time::Instant;

/// One message from the peer: the protocol state decides (`state.rs`), this function carries
/// out what it decided, and does what needs the disk or the upload queue itself.
pub(super) fn handle_message(
    connection: &mut Connection,
    link: &mut Link,
    context: &PeerContext,
    message: Message,
) -> Result<(), PeerError> {
    let pieces = context.layout.num_pieces();
    let actions = match message {
        Message::Bitfield(bits) => {
            let bitfield = Bitfield::from_payload(bits, pieces)?;
            link.peer.peer_announced(bitfield)
        }
        // BEP 6 stands for "I have everything / nothing" in place of a bitfield. Taken even
        // from a peer that did not set the fast bit (BEP 6 says to hang up): the meaning is
        // plain and harms no one.
        Message::HaveAll => link.peer.peer_announced(Bitfield::full(pieces)),
        Message::HaveNone => link.peer.peer_announced(Bitfield::new(pieces)),
        Message::Have { index } => link.peer.peer_has(index)?,
        Message::Choke => link.peer.peer_chokes(),
        Message::Unchoke => {
            link.peer.peer_unchokes();
            Actions::default()
        }
        Message::Interested => link.peer.peer_interest(true),
        Message::NotInterested => link.peer.peer_interest(false),
        Message::Request {
            index,
            begin,
            length,
        } => request(link, context, block_of(index, begin, length))?,
        Message::Cancel {
            index,
            begin,
            length,
        } => {
            let block = block_of(index, begin, length);
            // BEP 6: even a cancelled request gets its one answer; a block already in the
            // outbox is the answer, otherwise a reject.
            match link.uploads.on_cancel(&block) && link.peer.fast.enabled {
                true => reject(block),
                false => Actions::default(),
            }
        }
        Message::RejectRequest {
            index,
            begin,
            length,
        } => link.peer.peer_rejects(block_of(index, begin, length)),
        Message::AllowedFast { index } => {
            link.peer.peer_allows(index);
            Actions::default()
        }
        Message::SuggestPiece { index } => link.peer.peer_suggests(index),
        Message::Piece {
            index,
            begin,
            block,
        } => {
            receive_block(link, context, index, begin, &block)?;
            Actions::default()
        }
        Message::Extended { id, payload } => {
            let extensions = context.extensions();
            link.extensions
                .receive(connection, &extensions, id, &payload)?;
            Actions::default()
        }
        // Keep-alive (its arrival already counted as life), `port` (no DHT yet), and ids we
        // do not know (skipped by the wire module): nothing to do.
        other => {
            log::trace!("{}: ignoring {other}", link.peer.addr);
            Actions::default()
        }
    };
    perform(connection, link, context, actions)
}

/// Carries out what the protocol state decided: messages to the peer, events to the scheduler.
fn perform(
    connection: &mut Connection,
    link: &mut Link,
    context: &PeerContext,
    actions: Actions,
) -> Result<(), PeerError> {
    for message in &actions.send {
        send(connection, link, message)?;
    }
    for event in actions.tell {
        // Fails only when the scheduler has ended (the download is over): the `Stop` that
        // follows ends this thread too, so nothing is lost.
        let _ = context.events.send(event);
    }
    Ok(())
}

/// A `request` from the peer: queued for upload if valid (`upload.rs` decides), and with the
/// fast extension answered with a reject if not.
fn request(
    link: &mut Link,
    context: &PeerContext,
    block: BlockRequest,
) -> Result<Actions, PeerError> {
    let check = RequestCheck {
        peer: link.peer.addr,
        layout: &context.layout,
        ours: &link.peer.ours,
        choking: link.peer.am_choking,
        fast: &link.peer.fast,
    };
    Ok(match link.uploads.on_request(block, &check)? {
        Answer::Reject => reject(block),
        Answer::Queued | Answer::Ignore => Actions::default(),
    })
}

/// Tells the peer we will not serve one of its requests (fast extension only).
fn reject(block: BlockRequest) -> Actions {
    Actions {
        send: vec![Message::RejectRequest {
            index: block.index,
            begin: block.begin,
            length: block.length,
        }],
        tell: Vec::new(),
    }
}

fn block_of(index: u32, begin: u32, length: u32) -> BlockRequest {
    BlockRequest {
        index,
        begin,
        length,
    }
}

/// One command from the scheduler; `false` means stop.
pub(super) fn run_command(
    connection: &mut Connection,
    link: &mut Link,
    context: &PeerContext,
    command: Command,
) -> Result<bool, PeerError> {
    let actions = match command {
        Command::Stop => return Ok(false),
        Command::Cancel(block) => Actions {
            send: link.peer.cancel(block).into_iter().collect(),
            tell: Vec::new(),
        },
        Command::OurPieces(ours) => {
            link.peer.our_pieces(ours);
            Actions::default()
        }
        Command::Have(index) => link.peer.we_have(index),
        Command::Choke if !link.peer.am_choking => {
            link.peer.am_choking = true;
            // Choke first, then reject (BEP 6): a peer that hears the rejects before the
            // choke would ask again.
            let mut actions = Actions::default();
            actions.send.push(Message::Choke);
            let unserved = link.uploads.choke(&link.peer.fast);
            if link.peer.fast.enabled {
                unserved
                    .into_iter()
                    .for_each(|b| actions.send.extend(reject(b).send));
            }
            actions
        }
        Command::Unchoke if link.peer.am_choking => {
            link.peer.am_choking = false;
            Actions {
                send: vec![Message::Unchoke],
                tell: Vec::new(),
            }
        }
        // Already in that state: the scheduler's decision changes nothing on the wire.
        Command::Choke | Command::Unchoke => Actions::default(),
        Command::Pex(connected) => {
            let extensions = context.extensions();
            link.extensions
                .send_pex(connection, &extensions, &connected)?;
            Actions::default()
        }
    };
    perform(connection, link, context, actions)?;
    Ok(true)
}

/// A `piece` message: only for a block we asked for, written straight to disk from this
/// thread (the scheduler never waits on the disk).
pub(super) fn receive_block(
    link: &mut Link,
    context: &PeerContext,
    index: u32,
    begin: u32,
    data: &[u8],
) -> Result<(), PeerError> {
    let block = block_of(index, begin, data.len() as u32);
    if !link.peer.block_arrived(&block)? {
        return Ok(()); // a late copy after our `cancel`: the other copy is already written
    }
    context
        .storage
        .write_block(&context.layout, &block, data)
        .map_err(PeerError::Disk)?;
    link.last_block = Instant::now();
    link.pipeline.received(data.len());
    link.written.push(block);
    Ok(())
}

/// Tells the scheduler which blocks are on disk. Blocks are reported in batches (see
/// `receive_messages`): one event per 16 KiB block would wake the scheduler 65,536 times per
/// GiB.
pub(super) fn report_written(link: &mut Link, context: &PeerContext) {
    if !link.written.is_empty() {
        let blocks = std::mem::take(&mut link.written);
        let peer = link.peer.addr;
        // The scheduler may have ended; then nobody needs the news.
        let _ = context.events.send(Event::BlocksWritten { peer, blocks });
    }
}

/// Tells the scheduler how many bytes we sent the peer (every half second, and at the end).
pub(super) fn report_uploaded(link: &mut Link, context: &PeerContext, now: bool) {
    if let Some(bytes) = link.uploads.take_report(now) {
        let peer = link.peer.addr;
        // The scheduler may have ended; then nobody needs the count.
        let _ = context.events.send(Event::Uploaded { peer, bytes });
    }
}

/// Fills the pipeline: ask the scheduler for blocks and request them.
pub(super) fn request_more(
    connection: &mut Connection,
    link: &mut Link,
    context: &PeerContext,
) -> Result<(), PeerError> {
    // As deep as bandwidth × delay needs, but never more than the peer queues (`reqq`).
    let depth = match link.extensions.request_queue() {
        Some(reqq) => link.pipeline.depth().min(reqq.max(1)),
        None => link.pipeline.depth(),
    };
    let Some((count, only)) = link.peer.want_blocks(depth) else {
        return Ok(());
    };
    let (reply, answer) = crossbeam_channel::bounded(1);
    let peer = link.peer.addr;
    let asked = Event::WantBlocks {
        peer,
        count,
        only,
        reply,
    };
    if context.events.send(asked).is_err() {
        return Ok(()); // the scheduler has ended; a Stop follows
    }
    // The scheduler answers at once (maybe with nothing); no answer means it has ended.
    let blocks = answer.recv().unwrap_or_default();
    if link.peer.outstanding.is_empty() && !blocks.is_empty() {
        link.last_block = Instant::now(); // the snub clock starts with the first request
    }
    for message in link.peer.requested(blocks) {
        send(connection, link, &message)?;
    }
    Ok(())
}
