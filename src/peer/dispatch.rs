//! What the peer thread does with each message from the peer and each command of the
//! scheduler (BEP 3, BEP 6; BEP 52's hash requests) — walkthrough §7, §10.
//!
//! ```text
//!   message ──► handle_message ──► PeerState decides (state.rs) ──► perform: send, tell
//!                              └─► requests to serve (upload.rs), blocks to write (storage)
//!                              └─► hash requests: PieceLayers answers (state.rs)
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

/// Bytes queued for the peer above which a `hash request` gets a `hash reject`, not hashes.
const HASH_ANSWER_OUTBOX_LIMIT: usize = 1024 * 1024;

/// One message from the peer: the protocol state decides (`state.rs`), this function carries
/// out what it decided, and does what needs the disk or the upload queue itself.
pub(super) fn handle_message(
    connection: &mut Connection,
    link: &mut Link,
    context: &PeerContext,
    message: Message,
) -> Result<(), PeerError> {
    let pieces = context.layout.num_pieces();
    // Most arms only ask `PeerState` and return its `Actions`, carried out by `perform` at
    // the end; the arms that need the disk, the upload queue or the extension state do
    // that work themselves.
    let actions = match message {
        Message::Bitfield(bits) => {
            // Checked before believed: exactly ceil(pieces / 8) bytes, spare bits zero. A
            // wrong one ends the connection (Transmission drops a peer for it too).
            let bitfield = Bitfield::from_payload(bits, pieces)?;
            link.peer.peer_announced(bitfield)
        }
        // BEP 6 stands for "I have everything / nothing" in place of a bitfield. Taken even
        // from a peer that did not set the fast bit (BEP 6 says to hang up): the meaning is
        // plain and harms no one.
        Message::HaveAll => link.peer.peer_announced(Bitfield::full(pieces)),
        Message::HaveNone => link.peer.peer_announced(Bitfield::new(pieces)),
        // `have` may come at any time, even before a bitfield (BEP 3 lets a peer with
        // nothing skip its bitfield).
        Message::Have { index } => link.peer.peer_has(index)?,
        // Our requests go back to the scheduler now or, with BEP 6, wait for their answers.
        Message::Choke => link.peer.peer_chokes(),
        Message::Unchoke => {
            // Nothing to send now: `request_more`, later in this turn of the loop, sees that
            // we may ask and fills the pipeline.
            link.peer.peer_unchokes();
            // Told only so the web view can show who serves us.
            Actions {
                send: Vec::new(),
                tell: vec![Event::Unchoked {
                    peer: link.peer.addr,
                }],
            }
        }
        // The choker's input: the scheduler may unchoke an interested peer at once.
        Message::Interested => link.peer.peer_interest(true),
        Message::NotInterested => link.peer.peer_interest(false),
        // Not believed before `upload.rs` has checked it: size, range, a piece we have, and
        // our choke.
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
        // The block goes back to the pool at once, rather than after a snub timeout.
        Message::RejectRequest {
            index,
            begin,
            length,
        } => link.peer.peer_rejects(block_of(index, begin, length)),
        Message::AllowedFast { index } => {
            // Only remembered: `request_more` asks for these pieces while the peer chokes us.
            link.peer.peer_allows(index);
            Actions::default()
        }
        // A hint for the picker, never a duty: BEP 6 calls it advisory.
        Message::SuggestPiece { index } => link.peer.peer_suggests(index),
        Message::Piece {
            index,
            begin,
            block,
        } => {
            // The one message that touches the disk: handled here, not in `state.rs`.
            // `?`: a flood of blocks nobody asked for, or a failed write, ends here.
            receive_block(link, context, index, begin, &block)?;
            Actions::default()
        }
        Message::Extended { id, payload } => {
            // BEP 10 messages answer themselves (a `ut_metadata` piece, say): `extended.rs`
            // sends what it must, and the scheduler hears of pex peers and listen ports.
            let extensions = context.extensions();
            link.extensions
                .receive(connection, &extensions, id, &payload)?;
            Actions::default()
        }
        // [W15.10] BEP 5: the peer's DHT node listens at its address, this port. Our node pings it
        // and keeps it if it answers (a peer can name only its own address, never another).
        Message::Port(port) => {
            if let (Some(dht), std::net::SocketAddr::V4(addr), true) =
                (&context.dht, link.peer.addr, port != 0)
            {
                let node = std::net::SocketAddrV4::new(*addr.ip(), port);
                // The DHT thread has ended only when the session is ending too.
                let _ = dht.commands.send(crate::dht::node::Command::AddNode(node));
            }
            Actions::default()
        }
        // BEP 52: answered whatever our choke, with the hashes or a reject.
        Message::HashRequest { .. } => hash_request(connection, link, context, &message),
        // We never ask for hashes (a v2 torrent is downloaded only with its piece layers), so
        // these answer nothing of ours: dropped, as a late block after a cancel is.
        Message::Hashes { .. } | Message::HashReject { .. } => {
            log::debug!("{}: unsolicited {message}", link.peer.addr);
            Actions::default()
        }
        // Keep-alive (its arrival already counted as life) and ids we do not know (skipped
        // by the wire module): nothing to do.
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
    // In the order decided: a `choke` before its rejects, a `have` before `not interested`.
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
    // What the uploader needs to judge a request, and no more: `upload.rs` never sees the
    // whole protocol state, so its rules can be tested with plain values.
    let check = RequestCheck {
        peer: link.peer.addr,
        layout: &context.layout,
        ours: &link.peer.ours,
        choking: link.peer.am_choking,
        fast: &link.peer.fast,
    };
    // `?`: a peer that breaks the rules too often (`upload.rs` counts) is dropped here. A
    // queued request needs no message now: `serve` sends its block when the outbox has room.
    Ok(match link.uploads.on_request(block, &check)? {
        Answer::Reject => reject(block),
        Answer::Queued | Answer::Ignore => Actions::default(),
    })
}

/// A `hash request` (BEP 52): the hashes from our trees (`PieceLayers`, in `state.rs`), or a
/// `hash reject` when we have no such hashes, the request breaks a bound, or the peer has not
/// read what we already queued for it.
fn hash_request(
    connection: &Connection,
    link: &Link,
    context: &PeerContext,
    message: &Message,
) -> Actions {
    // `handle_message` calls this for a `HashRequest` only, which always has a header.
    let Some(range) = message.hash_range() else {
        return Actions::default();
    };
    let (answer, refusal) = match &context.v2_layers {
        // An answer is up to 18 KiB for a 53-byte request: a peer that asks and never reads
        // would fill our memory. Past the mark it gets rejects (as small as its requests)
        // until it reads, and `pump` drops it if it never does.
        Some(_) if connection.pending() > HASH_ANSWER_OUTBOX_LIMIT => (range.reject(), None),
        Some(layers) => layers.answer(&range),
        None => (range.reject(), None),
    };
    if let Some(why) = refusal {
        log::debug!("{}: hash request refused: {why}", link.peer.addr);
    }
    Actions {
        send: vec![answer],
        tell: Vec::new(),
    }
}

/// Tells the peer we will not serve one of its requests (fast extension only).
fn reject(block: BlockRequest) -> Actions {
    // Every caller checks the fast extension first: a peer without it must hang up on a
    // `reject_request` (BEP 6), so for it a refusal is silence.
    Actions {
        send: vec![Message::RejectRequest {
            index: block.index,
            begin: block.begin,
            length: block.length,
        }],
        tell: Vec::new(),
    }
}

/// The wire's three numbers as one value: requests, blocks, cancels and rejects are all
/// matched by it.
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
        // The loop returns; `run_connection` still reports what moved, and `Disconnected`
        // hands our outstanding requests back.
        Command::Stop => return Ok(false),
        // Endgame: another peer delivered this block first. No message if the block came
        // here too meanwhile; and a `cancel` is best effort: a copy already on its way
        // still arrives, and `block_arrived` lets it pass.
        Command::Cancel(block) => Actions {
            send: link.peer.cancel(block).into_iter().collect(),
            tell: Vec::new(),
        },
        Command::OurPieces(ours) => {
            // No message: a second bitfield is against BEP 3 (and rtorrent bans for it).
            link.peer.our_pieces(ours);
            Actions::default()
        }
        // BEP 3: interest "must be kept up to date at all times", so a piece we finish may
        // also cost the peer our interest.
        Command::Have(index) => link.peer.we_have(index),
        Command::Choke if !link.peer.am_choking => {
            link.peer.am_choking = true;
            // Choke first, then reject (BEP 6): a peer that hears the rejects before the
            // choke would ask again.
            let mut actions = Actions::default();
            actions.send.push(Message::Choke);
            // BEP 3: a choke throws the peer's queued requests away, and the peer knows it
            // from the choke alone. That is why `serve` moves only 256 KiB of blocks into
            // the outbox ahead of the socket: the rest are still requests, and can be
            // dropped here (BEP 3 asks exactly this of a client).
            let unserved = link.uploads.choke(&link.peer.fast);
            if link.peer.fast.enabled {
                unserved
                    .into_iter()
                    .for_each(|b| actions.send.extend(reject(b).send));
            }
            actions
        }
        Command::Unchoke if link.peer.am_choking => {
            // Nothing to serve yet but the allowed fast pieces: requests made while choked
            // were not kept. The peer asks again when it hears `unchoke`.
            link.peer.am_choking = false;
            Actions {
                send: vec![Message::Unchoke],
                tell: Vec::new(),
            }
        }
        // Already in that state: the scheduler's decision changes nothing on the wire.
        Command::Choke | Command::Unchoke => Actions::default(),
        Command::Pex(connected) => {
            // `extended.rs` sends only what changed since the last one, and nothing to a
            // peer that did not offer `ut_pex` in its handshake.
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
    // The length is what arrived, so the block matches one of our requests only if it has
    // exactly the length we asked for: a short or long block is nobody's.
    let block = block_of(index, begin, data.len() as u32);
    if !link.peer.block_arrived(&block)? {
        return Ok(()); // a late copy after our `cancel`: the other copy is already written
    }
    // To disk at once, at its place in the file: a piece is put together on disk, not in
    // memory, so half-done pieces cost no memory. The hash check reads it back
    // (`verify.rs`) once every block is written. A failed write is our disk's fault: `Disk`
    // ends the download, not just this peer.
    context
        .storage
        .write_block(&context.layout, &block, data)
        .map_err(PeerError::Disk)?;
    // Only a written block resets the snub clock (`check_liveness`) and feeds the rate
    // that sets the pipeline depth.
    link.last_block = Instant::now();
    link.pipeline.received(data.len());
    link.written.push(block);
    // `--max-download-rate`: pay for the block before reading the next message.
    if let Some(limit) = &context.download_limit {
        limit.take(block.length);
    }
    Ok(())
}

/// Tells the scheduler which blocks are on disk. Blocks are reported in batches (see
/// `receive_messages`): one event per 16 KiB block would wake the scheduler 65,536 times per
/// GiB.
pub(super) fn report_written(link: &mut Link, context: &PeerContext) {
    // Called after every message of a burst: most calls have nothing to say, and an empty
    // event would wake the scheduler for nothing.
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
    // A peer that says `reqq` 0 still gets one request at a time, rather than none ever.
    let depth = match link.extensions.request_queue() {
        Some(reqq) => link.pipeline.depth().min(reqq.max(1)),
        None => link.pipeline.depth(),
    };
    // `None`: not interested, choked with nothing allowed, or too little room for a batch.
    let Some((count, only)) = link.peer.want_blocks(depth) else {
        return Ok(());
    };
    // A channel for this one answer: room for exactly one, so the scheduler's `send`
    // never waits on us.
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
    // Waiting here cannot deadlock: the scheduler never waits on a peer thread. The road
    // not taken, an answer arriving later as a `Command`, would need the thread to remember
    // that it has asked and not yet heard, or it would ask twice; a round trip per batch
    // (not per block) keeps the cost of waiting low.
    let blocks = answer.recv().unwrap_or_default();
    // The snub clock starts with the first request: a peer that sent nothing for a minute
    // before we asked anything must not count as snubbing us the moment we do.
    if link.peer.outstanding.is_empty() && !blocks.is_empty() {
        link.last_block = Instant::now();
    }
    // Recorded as outstanding before they are sent: whatever happens next, `Disconnected`
    // or a choke returns exactly these.
    for message in link.peer.requested(blocks) {
        send(connection, link, &message)?;
    }
    Ok(())
}
