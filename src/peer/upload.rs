//! Serving pieces: answering a peer's `request`s from disk (BEP 3 "request", "piece",
//! "cancel") — walkthrough §10.
//!
//! ```text
//!   peer: request(index, begin, length) ──► check it ──► queue ──► serve(): read from disk
//!   peer: cancel(...)                   ──► drop it from the queue      straight into the
//!   scheduler: Choke                    ──► drop the queue              connection's outbox
//! ```
//!
//! Every request is checked before it is believed: a block of at most 16 KiB, inside
//! the piece, of a piece we have, asked while we unchoke the peer. A peer that breaks the
//! rules again and again, or queues more than [`MAX_QUEUED`] requests, is dropped. Requests
//! that arrive just after we choked are normal (they crossed our `choke` on the wire) and are
//! not served; a flood of them drops the peer.
//!
//! Without the fast extension (BEP 3 alone) a request we do not serve gets silence, and a
//! choke drops the whole queue. With it (BEP 6) every request gets exactly one answer — the
//! block or a `reject_request` — and the pieces of the peer's *allowed fast set* are served
//! even while it is choked.
//!
//! This runs on the peer's own thread: a slow reader only slows its own thread, never the rest.

use super::connection::{Connection, PeerError};
use super::fast::FastState;
use crate::piece::{BlockRequest, PieceLayout};
use crate::storage::Storage;
use crate::wire::Bitfield;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests one peer may have waiting with us (libtorrent allows 500 by default too).
pub const MAX_QUEUED: usize = 500;
/// Bad requests (wrong size, out of range, a piece we lack) tolerated before hanging up.
pub const MAX_VIOLATIONS: u32 = 10;
/// Bytes of blocks kept in the outbox ahead of the socket: enough to keep it busy.
const OUTBOX_TARGET: usize = 256 * 1024;
/// How often the bytes sent are reported to the scheduler (for the choker and the summary).
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// The requests a peer has queued with us, and what we sent it.
#[derive(Debug)]
pub struct Uploads {
    /// Valid requests we will serve, in the order they came.
    queue: VecDeque<BlockRequest>,
    /// Bad requests so far (see `MAX_VIOLATIONS`).
    violations: u32,
    /// Requests received while choked, since we last choked the peer.
    while_choked: usize,
    /// Bytes of blocks sent since the last report to the scheduler.
    unreported: u64,
    last_report: Instant,
}

/// What a request is checked against.
pub struct RequestCheck<'a> {
    /// The peer, for the log.
    pub peer: std::net::SocketAddr,
    pub layout: &'a PieceLayout,
    pub ours: &'a Bitfield,
    pub choking: bool,
    /// The fast extension (BEP 6) on this connection, and the pieces we allow while choked.
    pub fast: &'a FastState,
}

/// What becomes of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Queued: a `piece` follows.
    Queued,
    /// Not served, and the peer is told so: send `reject_request` (fast extension only).
    Reject,
    /// Not served, silently (BEP 3 without the fast extension has no way to say no).
    Ignore,
}

impl Uploads {
    pub fn new() -> Uploads {
        Uploads {
            queue: VecDeque::new(),
            violations: 0,
            while_choked: 0,
            unreported: 0,
            last_report: Instant::now(),
        }
    }

    /// A `request` from the peer: queued if it is valid and we serve the peer now. With the
    /// fast extension every request we will not serve is answered with a reject; without
    /// it, it is dropped in silence.
    pub fn on_request(
        &mut self,
        block: BlockRequest,
        check: &RequestCheck,
    ) -> Result<Answer, PeerError> {
        // [W10.2] BEP 3 has no way to say no but silence; BEP 6 answers every request.
        let no = if check.fast.enabled {
            Answer::Reject
        } else {
            Answer::Ignore
        };
        // [W10.1] Checked before it is believed: size, range, a piece we have, no choke. Judged
        // before our choke: a malformed request is a mistake whatever our state.
        if let Some(problem) = request_problem(&block, check) {
            // A few are forgiven: one odd request from a peer that otherwise serves us well
            // is not worth the connection; a stream of them is.
            self.violations += 1;
            log::info!("{}: bad request {block:?}: {problem}", check.peer);
            if self.violations > MAX_VIOLATIONS {
                return Err(PeerError::BadRequests {
                    count: self.violations,
                    last: problem,
                });
            }
            return Ok(no);
        }
        if check.choking && !check.fast.we_allow(block.index) {
            // Requests that crossed our `choke` on the wire are normal; thousands are not.
            log::debug!("request {block:?} while choked: not served");
            self.while_choked += 1;
            if self.while_choked > MAX_QUEUED {
                return Err(PeerError::RequestsWhileChoked(self.while_choked));
            }
            return Ok(no);
        }
        // We said `reqq` 500 in our extended handshake: a peer past it did not listen.
        if self.queue.len() >= MAX_QUEUED {
            if check.fast.enabled {
                return Ok(Answer::Reject); // it can tell it asked too much, and ask later
            }
            // Without BEP 6 we cannot say no, and silence would leave the peer waiting for a
            // block that never comes: hanging up is the one answer it can see.
            return Err(PeerError::TooManyRequests(MAX_QUEUED));
        }
        // A repeated request is served once: the peer wants the block, not two copies.
        if !self.queue.contains(&block) {
            self.queue.push_back(block);
        }
        Ok(Answer::Queued)
    }

    /// A `cancel`: the peer got the block elsewhere. `true` if it was still queued (with the
    /// fast extension the peer then expects a reject for it).
    pub fn on_cancel(&mut self, block: &BlockRequest) -> bool {
        // Too late for a block already in the outbox: it goes out anyway, and the peer
        // lets it pass (BEP 3's `cancel` is best effort).
        let before = self.queue.len();
        self.queue.retain(|b| b != block);
        self.queue.len() < before
    }

    /// We choked the peer. BEP 3: its pending requests are dropped. BEP 6: those of pieces we
    /// allow while choked stay; the others are returned, to be rejected one by one.
    pub fn choke(&mut self, fast: &FastState) -> Vec<BlockRequest> {
        // A new choked period: requests that cross this `choke` are to be expected again.
        self.while_choked = 0;
        // BEP 6: "SHOULD NOT reject requests for pieces that are in the allowed fast set".
        // Without the extension `we_allow` is false for every piece: all are dropped, as
        // BEP 3 has it.
        let (keep, drop): (VecDeque<BlockRequest>, VecDeque<BlockRequest>) =
            self.queue.drain(..).partition(|b| fast.we_allow(b.index));
        self.queue = keep;
        drop.into()
    }

    /// Whether a block could be sent now (queued, and the rate limit allows).
    pub fn ready(&self, limit: Option<&RateLimit>) -> bool {
        // A whole block's worth of tokens: `serve` never sends part of one.
        !self.queue.is_empty() && limit.is_none_or(|l| l.available())
    }

    /// Whether requests are waiting only for the rate limit.
    pub fn throttled(&self, limit: Option<&RateLimit>) -> bool {
        !self.queue.is_empty() && !self.ready(limit)
    }

    /// Moves queued blocks into the outbox, reading each straight from disk. [W10.3]
    pub fn serve(
        &mut self,
        connection: &mut Connection,
        storage: &Storage,
        layout: &PieceLayout,
        limit: Option<&RateLimit>,
    ) -> Result<(), PeerError> {
        // Only `OUTBOX_TARGET` ahead of the socket: enough to keep it busy until the next
        // turn, while the rest stay requests that a `choke` or a `cancel` can still drop.
        // BEP 3 asks for exactly this: requests "queued up in memory rather than kept in
        // an application-level network buffer, so they can all be thrown out when a choke
        // happens".
        while connection.pending() < OUTBOX_TARGET {
            let Some(block) = self.queue.front().copied() else {
                break;
            };
            // Out of tokens: the block stays first in line for the next turn.
            if limit.is_some_and(|l| !l.try_take(block.length)) {
                break;
            }
            self.queue.pop_front();
            let offset = layout.piece_offset(block.index) + u64::from(block.begin);
            // A failed read is our disk's fault, not the peer's: `PeerError::Disk` ends the
            // run with the disk's error instead of blaming (and dropping) this peer.
            connection.send_block(block.index, block.begin, block.length, |buf| {
                storage.read_at(offset, buf).map_err(PeerError::Disk)
            })?;
            self.unreported += u64::from(block.length);
        }
        Ok(())
    }

    /// Bytes sent since the last report, if it is time to report them (or `now`).
    pub fn take_report(&mut self, now: bool) -> Option<u64> {
        // Often enough for the choker's 10-second rates, rarely enough that the scheduler
        // is not woken for every block.
        if self.unreported == 0 || (!now && self.last_report.elapsed() < REPORT_EVERY) {
            return None;
        }
        self.last_report = Instant::now();
        Some(std::mem::take(&mut self.unreported))
    }
}

impl Default for Uploads {
    fn default() -> Uploads {
        Uploads::new()
    }
}

/// What is wrong with a request, if anything.
fn request_problem(block: &BlockRequest, check: &RequestCheck) -> Option<String> {
    // BEP 3: "All current implementations use 2^14 (16 kiB), and close connections which
    // request an amount greater than that." Zero bytes would be a message for nothing.
    if block.length == 0 || block.length > crate::piece::BLOCK_LEN {
        return Some(format!("{} bytes (at most 16 KiB)", block.length));
    }
    // Apart from the end check: a piece past the end measures 0 bytes, and "past the end
    // of the piece" would be a misleading reason.
    if block.index as usize >= check.layout.num_pieces() {
        return Some(format!("no piece {}", block.index));
    }
    // In u64: `begin + length` can wrap around in u32 and slip past the check.
    let end = u64::from(block.begin) + u64::from(block.length);
    // (`wire_len`: a v2 piece may be asked for up to the next piece boundary, the gap read
    // as zeros, as libtorrent asks.)
    if end > u64::from(check.layout.wire_len(block.index)) {
        return Some(format!("ends at byte {end}, past the end of the piece"));
    }
    // `ours` holds verified pieces only: bytes that failed (or never had) their hash check
    // are never served.
    if !check.ours.has(block.index as usize) {
        return Some(format!("we do not have piece {}", block.index));
    }
    None
}

/// A rate limit shared by every peer thread (`--max-upload-rate`, `--max-download-rate`): a
/// token bucket that refills at the rate and holds a quarter of a second of it (at least one
/// block).
#[derive(Debug)]
pub struct RateLimit {
    bytes_per_second: f64,
    /// The most the bucket holds: how big a burst may be.
    capacity: f64,
    /// The tokens (bytes) in the bucket, and when it was last filled. One bucket for all
    /// the peer threads: the limit is for the whole client, not per peer.
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(bytes_per_second: u64) -> RateLimit {
        // At least 1 byte/s: at 0 (`--max-upload-rate 0`) the bucket would never refill.
        let rate = bytes_per_second.max(1) as f64;
        // A quarter second's worth keeps bursts short, so the rate holds over any second;
        // at least one block, or a low limit could never send a block at all.
        let capacity = (rate / 4.0).max(f64::from(crate::piece::BLOCK_LEN));
        RateLimit {
            bytes_per_second: rate,
            capacity,
            // Empty at the start: the limit holds from the first second on.
            bucket: Mutex::new((0.0, Instant::now())),
        }
    }

    /// Takes `bytes` from the bucket if they are there.
    pub fn try_take(&self, bytes: u32) -> bool {
        let mut bucket = self.refilled();
        // All or nothing: tokens are never taken for part of a block.
        if bucket.0 >= f64::from(bytes) {
            bucket.0 -= f64::from(bytes);
            true
        } else {
            false
        }
    }

    /// Takes `bytes` from the bucket, waiting for them to be earned. The download limit uses
    /// it: a peer thread that waits here reads nothing more from its socket meanwhile, so
    /// TCP's (or uTP's) own window slows the sender down to the rate.
    pub fn take(&self, bytes: u32) {
        loop {
            let missing = {
                let mut bucket = self.refilled();
                if bucket.0 >= f64::from(bytes) {
                    bucket.0 -= f64::from(bytes);
                    return;
                }
                f64::from(bytes) - bucket.0
            };
            // Asleep until the tokens are due (other threads may take some first: then the
            // loop waits again). Pacing, not hoping: the bucket says when.
            std::thread::sleep(std::time::Duration::from_secs_f64(
                missing / self.bytes_per_second,
            ));
        }
    }

    /// Whether a whole block could be taken now.
    pub fn available(&self) -> bool {
        self.refilled().0 >= f64::from(crate::piece::BLOCK_LEN)
    }

    fn refilled(&self) -> std::sync::MutexGuard<'_, (f64, Instant)> {
        // A poisoned lock only means another peer thread panicked mid-update: the numbers
        // are still usable.
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        // Refilled when looked at, from the time since the last look: no timer thread.
        let now = Instant::now();
        let earned = now.duration_since(bucket.1).as_secs_f64() * self.bytes_per_second;
        bucket.0 = (bucket.0 + earned).min(self.capacity);
        bucket.1 = now;
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::PieceHash;

    /// Pieces of `piece_length` bytes covering `total` bytes (hashes unused here).
    fn layout_of(piece_length: u64, total: u64) -> PieceLayout {
        PieceLayout {
            piece_length,
            total_length: total,
            hashes: vec![PieceHash([0; 20]); total.div_ceil(piece_length) as usize],
            v2: None,
        }
    }

    /// No fast extension on the connection.
    static PLAIN: FastState = FastState {
        enabled: false,
        we_allow: Vec::new(),
        they_allow: Vec::new(),
    };

    /// A request check from a test peer, without the fast extension.
    fn check<'a>(layout: &'a PieceLayout, ours: &'a Bitfield, choking: bool) -> RequestCheck<'a> {
        RequestCheck {
            peer: "127.0.0.1:1".parse().unwrap(),
            layout,
            ours,
            choking,
            fast: &PLAIN,
        }
    }

    /// 2 pieces of 32 KiB and a last one of 10 bytes.
    fn layout() -> PieceLayout {
        layout_of(32 * 1024, 64 * 1024 + 10)
    }

    fn block(index: u32, begin: u32, length: u32) -> BlockRequest {
        BlockRequest {
            index,
            begin,
            length,
        }
    }

    #[test]
    fn valid_requests_are_queued_once_and_cancel_removes_them() {
        let layout = layout();
        let ours = Bitfield::full(3);
        let check = check(&layout, &ours, false);
        let mut uploads = Uploads::new();
        for _ in 0..2 {
            uploads.on_request(block(0, 16384, 16384), &check).unwrap();
        }
        uploads.on_request(block(2, 0, 10), &check).unwrap();
        assert_eq!(uploads.queue.len(), 2, "a repeated request is queued once");
        uploads.on_cancel(&block(0, 16384, 16384));
        assert_eq!(uploads.queue, [block(2, 0, 10)]);
    }

    #[test]
    fn bad_requests_are_refused_and_repeated_ones_drop_the_peer() {
        let layout = layout();
        let mut ours = Bitfield::new(3);
        ours.set(0);
        let check = check(&layout, &ours, false);
        let bad = [
            block(0, 0, 32 * 1024), // more than 16 KiB
            block(0, 0, 0),         // nothing
            block(3, 0, 16384),     // no such piece
            block(0, 20000, 16384), // past the end of the piece
            block(1, 0, 16384),     // a piece we lack
            block(2, 0, 11),        // past the end of the short last piece
        ];
        let mut uploads = Uploads::new();
        for request in bad {
            assert!(request_problem(&request, &check).is_some(), "{request:?}");
            uploads.on_request(request, &check).unwrap();
        }
        assert!(uploads.queue.is_empty());
        let result =
            (0..MAX_VIOLATIONS).try_for_each(|_| uploads.on_request(bad[0], &check).map(drop));
        assert!(result.unwrap_err().to_string().contains("bad requests"));
    }

    #[test]
    fn requests_while_choked_are_dropped_and_a_flood_of_them_drops_the_peer() {
        let layout = layout();
        let ours = Bitfield::full(3);
        let check = check(&layout, &ours, true);
        let mut uploads = Uploads::new();
        for _ in 0..MAX_QUEUED {
            uploads.on_request(block(0, 0, 16384), &check).unwrap();
        }
        assert!(uploads.queue.is_empty());
        let flood = uploads.on_request(block(0, 0, 16384), &check);
        assert!(flood.unwrap_err().to_string().contains("while choked"));
    }

    #[test]
    fn a_flood_of_requests_drops_the_peer() {
        let layout = layout_of(16 * 1024, 1000 * 16 * 1024);
        let ours = Bitfield::full(1000);
        let check = check(&layout, &ours, false);
        let mut uploads = Uploads::new();
        let result =
            (0..1000).try_for_each(|i| uploads.on_request(block(i, 0, 16384), &check).map(drop));
        assert!(result.unwrap_err().to_string().contains("requests queued"));
        assert_eq!(uploads.queue.len(), MAX_QUEUED);
    }

    #[test]
    fn with_the_fast_extension_every_unserved_request_is_rejected() {
        let layout = layout_of(16 * 1024, 1000 * 16 * 1024);
        let mut ours = Bitfield::full(1000);
        ours.clear(5);
        let fast = FastState {
            enabled: true,
            we_allow: vec![7],
            they_allow: Vec::new(),
        };
        let mut check = check(&layout, &ours, true);
        check.fast = &fast;
        let mut uploads = Uploads::new();
        // Choked: rejected, except a piece of its allowed fast set, which is served.
        assert_eq!(
            uploads.on_request(block(1, 0, 16384), &check).unwrap(),
            Answer::Reject
        );
        assert_eq!(
            uploads.on_request(block(7, 0, 16384), &check).unwrap(),
            Answer::Queued
        );
        // A piece we lack: rejected (and counted as a bad request).
        check.choking = false;
        assert_eq!(
            uploads.on_request(block(5, 0, 16384), &check).unwrap(),
            Answer::Reject
        );
        // A full queue: rejected rather than a reason to hang up.
        (0..MAX_QUEUED as u32 + 20).for_each(|i| {
            // Queued until the queue is full, rejected after: the queue is checked below.
            let _ = uploads.on_request(block(10 + i % 900, 0, 16384), &check);
        });
        assert_eq!(uploads.queue.len(), MAX_QUEUED);
        assert_eq!(
            uploads.on_request(block(999, 0, 16384), &check).unwrap(),
            Answer::Reject
        );
        // Choking keeps the allowed-fast request and hands back the others, to reject.
        let unserved = uploads.choke(&fast);
        assert_eq!(uploads.queue, [block(7, 0, 16384)]);
        assert_eq!(unserved.len(), MAX_QUEUED - 1);
    }

    #[test]
    fn the_rate_limit_grants_a_quarter_second_burst_then_refills() {
        let limit = RateLimit::new(4 * 16384); // capacity: one block
        assert!(!limit.try_take(16384), "the bucket starts empty");
        let start = Instant::now();
        while !limit.try_take(16384) {
            assert!(start.elapsed() < Duration::from_secs(2), "never refilled");
        }
        assert!(!limit.try_take(16384), "one block at a time");
    }
}
