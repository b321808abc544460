//! Blocks in and out: which blocks a peer thread asks for next, and what a written or uploaded
//! block changes (BEP 3 "request", "piece", BEP 6 "suggest", "allowed fast") — walkthrough §8.
//!
//! ```text
//!   Event::WantBlocks  ──► pick_for: the peer's pieces, less refused, only allowed ──► Picker
//!   Event::BlocksWritten ─► block_written: progress, cancel other copies, verify a whole piece
//!   Event::Uploaded    ──► uploaded: what the choker ranks a peer by while we seed
//! ```

use super::Scheduler;
use crate::events::Command;
use crate::piece::BlockRequest;
use crate::wire::Bitfield;
use std::net::SocketAddr;
use std::time::Instant;

impl Scheduler {
    /// Blocks for `peer` to request: of the pieces it has, less those it refused, and only of
    /// `only` when given (the allowed-fast pieces of a peer that chokes us); the pieces it
    /// suggested first.
    pub(super) fn pick_for(
        &mut self,
        peer: SocketAddr,
        count: usize,
        only: Option<&[u32]>,
    ) -> Vec<BlockRequest> {
        // A connection already gone (replaced by a newer one): its thread is being stopped.
        let Some(entry) = self.peers.get(&peer) else {
            return Vec::new();
        };
        if only.is_none() && entry.refused.is_empty() {
            // The common case, on the hot path: no copy of the peer's bitfield.
            // Suggested pieces first: BEP 6 says the peer can send those cheaply.
            return self
                .picker
                .pick_preferring(peer, &entry.bitfield, count, &entry.suggested);
        }
        let mut has = match only {
            // Allowed pieces it does not have are worth nothing (BEP 6 lets a peer allow
            // pieces it lacks).
            Some(pieces) => {
                let mut allowed = Bitfield::new(entry.bitfield.num_pieces());
                for &i in pieces.iter().filter(|&&i| entry.bitfield.has(i as usize)) {
                    allowed.set(i as usize);
                }
                allowed
            }
            None => entry.bitfield.clone(),
        };
        // Refused pieces are left to other peers, or request and reject would loop.
        entry.refused.iter().for_each(|&i| has.clear(i as usize));
        self.picker
            .pick_preferring(peer, &has, count, &entry.suggested)
    }

    pub(super) fn block_written(&mut self, peer: SocketAddr, block: BlockRequest) {
        let bytes = u64::from(block.length);
        // Counted when written, not when verified: the choker rewards the bytes a peer
        // sends, and a piece that fails its check strikes its sender instead.
        self.progress.downloaded += bytes;
        if let Some(entry) = self.peers.get_mut(&peer) {
            entry.downloaded += bytes;
            // The choker's snub test: wanted pieces, but no block for a minute.
            entry.last_block = Instant::now();
        }
        if let Some(t) = self.traffic_of(peer) {
            t.downloaded += bytes;
        }
        let written = self.picker.written(peer, &block);
        // Endgame: the same block was asked of others. BEP 3: "it sends cancels to everyone
        // else every time a piece arrives", so their bandwidth goes to blocks still missing.
        for other in written.cancel_at {
            self.command(other, Command::Cancel(block));
        }
        if let Some(index) = written.piece_complete {
            // Fails only if every `verify` thread has died (they live as long as this
            // sender): then nobody can hash the piece, and it stays unverified.
            let _ = self.verify.send(index);
        }
    }

    pub(super) fn uploaded(&mut self, peer: SocketAddr, bytes: u64) {
        // Three tallies: the run's (the tracker's `uploaded`, the seeding ratio), the
        // connection's (the choker's rates while we seed), the peer id's (the summary).
        self.progress.uploaded += bytes;
        if let Some(entry) = self.peers.get_mut(&peer) {
            entry.uploaded += bytes;
        }
        if let Some(t) = self.traffic_of(peer) {
            t.uploaded += bytes;
        }
    }
}
