//! Which block to request next: the piece picker (BEP 3 "piece downloading strategy") —
//! walkthrough §8.
//!
//! Every piece is in one of four states; blocks of an active piece in one of three:
//!
//! ```text
//!   Missing ──first block requested──► Active ──all blocks written──► Verifying ──ok──► Have
//!      ▲                                                                   │
//!      └──────────────────────── hash failed ──────────────────────────────┘
//!   block: Missing ──request──► Requested(by peers) ──piece arrived──► Written
//!                    ◄── choke / disconnect (released) ──┘
//! ```
//!
//! The order, for a peer that can take `count` more requests:
//! 1. blocks of pieces already started (finish what is begun: fewer half-pieces on disk);
//! 2. a new piece the peer has: random among the first few (to get something to trade soon),
//!    then the *rarest* in the swarm (so rare pieces spread before their owners leave);
//! 3. *endgame*: when every block is requested, ask for blocks already requested from another
//!    peer; when one copy arrives the others are cancelled. The last blocks come from whichever
//!    peer is fastest instead of waiting on the slowest.
//!
//! Step 2's order is a setting ([`PieceOrder`], `--piece-order`), for experiments: rarest-first
//! as above (the default), in order (lowest index first, as a video player would want), or
//! at random throughout.
//!
//! Only *wanted* pieces are ever picked ([`Wanted`]: with `--select-file`, the pieces that hold
//! bytes of a selected file; otherwise all of them), and the download is complete when every
//! wanted piece is `Have`. A piece not wanted simply stays `Missing`.

use crate::piece::{BlockRequest, PieceLayout};
use crate::storage::Wanted;
use crate::wire::Bitfield;
use std::net::SocketAddr;

/// Pieces picked at random before rarest-first takes over.
const RANDOM_FIRST_PIECES: usize = 4;
/// In endgame, at most this many peers are asked for the same block.
const ENDGAME_COPIES: usize = 2;

/// In which order new pieces are started (step 2 above); endgame and the pieces already
/// started come first whatever the order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PieceOrder {
    /// A few at random, then the rarest among the connected peers (BEP 3). The default.
    #[default]
    RarestFirst,
    /// The lowest index first: what streaming wants, and what leaves the swarm with the
    /// same few pieces to trade.
    InOrder,
    /// Any missing piece, at random, however common.
    Random,
}

impl PieceOrder {
    /// How `--piece-order` spells it.
    pub fn name(self) -> &'static str {
        match self {
            PieceOrder::RarestFirst => "rarest-first",
            PieceOrder::InOrder => "in-order",
            PieceOrder::Random => "random",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BlockState {
    /// Nobody is fetching it: never asked for, or every request was given back.
    Missing,
    /// Asked of these peers: one, or in endgame up to `ENDGAME_COPIES`.
    Requested(Vec<SocketAddr>),
    /// On disk; whether it is right is known only when its piece is verified.
    Written,
}

#[derive(Debug, Clone)]
enum PieceState {
    /// Not started: no block of it asked for.
    Missing,
    /// Being fetched. `owner`: a piece that failed its check with several senders is fetched
    /// again from one peer alone, so that a second failure names the liar.
    Active {
        blocks: Vec<BlockState>,
        /// Who sent blocks of it so far, in that order: credited if it passes, blamed if not.
        contributors: Vec<SocketAddr>,
        owner: Option<SocketAddr>,
    },
    /// Every block written; a `verify` thread is hashing it.
    Verifying { contributors: Vec<SocketAddr> },
    /// Verified (or, to fetch one piece alone, not wanted): never requested again.
    Have,
}

/// All piece state of one download.
pub struct Picker {
    layout: PieceLayout,
    /// One state per piece, by index.
    pieces: Vec<PieceState>,
    /// How many connected peers have each piece.
    availability: Vec<u32>,
    /// How many pieces are `Have`: kept, not counted, since it is read every turn.
    have: usize,
    /// The pieces this download needs; the others are never picked.
    wanted: Wanted,
    /// Wanted pieces not yet `Have`: the download is complete at 0.
    wanted_missing: usize,
    /// Pieces that failed with several senders: the next attempt goes to a single peer.
    suspect: Vec<bool>,
    /// Which new piece comes next (`next_new_piece`).
    order: PieceOrder,
}

/// What a written block leads to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The piece is complete and should be verified.
    pub piece_complete: Option<u32>,
    /// Other peers that were asked for the same block (endgame): send them `cancel`.
    pub cancel_at: Vec<SocketAddr>,
}

impl Picker {
    /// A picker that starts with the pieces in `have` (from the resume check) and wants
    /// every piece.
    pub fn new(layout: PieceLayout, have: &Bitfield) -> Picker {
        let wanted = Wanted::every_piece(&layout);
        Picker::wanting(layout, have, wanted)
    }

    /// A picker that starts with the pieces in `have` and fetches only the `wanted` ones.
    pub fn wanting(layout: PieceLayout, have: &Bitfield, wanted: Wanted) -> Picker {
        // The resume check's pieces are done from the start: never requested.
        let n = layout.num_pieces();
        let pieces = (0..n)
            .map(|i| {
                if have.has(i) {
                    PieceState::Have
                } else {
                    PieceState::Missing
                }
            })
            .collect();
        Picker {
            layout,
            pieces,
            // Nobody is connected yet: every piece as rare as can be.
            availability: vec![0; n],
            have: have.count(),
            wanted_missing: wanted.pieces().filter(|&i| !have.has(i as usize)).count(),
            wanted,
            suspect: vec![false; n],
            order: PieceOrder::default(),
        }
    }

    /// The same picker, starting new pieces in `order`.
    pub fn in_order(self, order: PieceOrder) -> Picker {
        Picker { order, ..self }
    }

    /// Every wanted piece is verified (with `--select-file`, other pieces may still be missing).
    pub fn is_complete(&self) -> bool {
        self.wanted_missing == 0
    }

    /// The pieces this download needs.
    pub fn wanted(&self) -> &Wanted {
        &self.wanted
    }

    pub fn have_count(&self) -> usize {
        self.have
    }

    /// Whether the peer has any piece we still need.
    pub fn is_interesting(&self, peer_has: &Bitfield) -> bool {
        self.pieces.iter().enumerate().any(|(i, p)| {
            !matches!(p, PieceState::Have) && self.wanted.is_wanted(i) && peer_has.has(i)
        })
    }

    /// A peer's bitfield: each of its pieces is one copy more common.
    pub fn peer_joined(&mut self, peer_has: &Bitfield) {
        self.change_availability(peer_has, 1);
    }

    /// A peer left: each of its pieces is one copy rarer.
    pub fn peer_left(&mut self, peer_has: &Bitfield) {
        self.change_availability(peer_has, -1);
    }

    /// A peer's `have`: one copy more of that piece.
    /// How many connected peers have piece `index` (for tests).
    #[cfg(test)]
    pub fn availability(&self, index: u32) -> u32 {
        self.availability[index as usize]
    }

    pub fn peer_has(&mut self, index: u32) {
        // The peer thread already checked the index; `get_mut` keeps the scheduler from a
        // panic should one ever slip through.
        if let Some(a) = self.availability.get_mut(index as usize) {
            *a += 1;
        }
    }

    fn change_availability(&mut self, peer_has: &Bitfield, delta: i32) {
        for (i, a) in self.availability.iter_mut().enumerate() {
            if peer_has.has(i) {
                // Saturating: whatever order events come in, a count never wraps around
                // below zero into a huge number (the piece would look the commonest of
                // all, and be picked last).
                *a = a.saturating_add_signed(delta);
            }
        }
    }

    /// Up to `count` blocks for `peer`, which has the pieces in `peer_has`.
    pub fn pick(
        &mut self,
        peer: SocketAddr,
        peer_has: &Bitfield,
        count: usize,
    ) -> Vec<BlockRequest> {
        self.pick_preferring(peer, peer_has, count, &[])
    }

    /// Like [`Picker::pick`], but a new piece is taken from `suggested` first when the peer
    /// has one we miss (BEP 6 `suggest_piece`: the peer says those are cheap for it to send).
    /// [W8.1] Started pieces first, then a new one (random, then rarest), then endgame.
    pub fn pick_preferring(
        &mut self,
        peer: SocketAddr,
        peer_has: &Bitfield,
        count: usize,
        suggested: &[u32],
    ) -> Vec<BlockRequest> {
        let mut picked = Vec::new();
        // 1. Blocks of pieces already started: a piece finished sooner is verified, and
        // can be uploaded, sooner; and fewer half-done pieces sit on disk.
        self.pick_from_active(peer, peer_has, count, &mut picked, false);
        // 2. New pieces, one at a time, until there are `count` blocks or the peer has no
        // piece left that we lack.
        while picked.len() < count {
            // In order, a suggestion far ahead would only break the order it was asked for.
            let suggested = match self.order {
                PieceOrder::InOrder => &[][..],
                _ => suggested,
            };
            let Some(index) = self
                .suggested_piece(peer_has, suggested)
                .or_else(|| self.next_new_piece(peer_has))
            else {
                break;
            };
            self.check_new_piece(index, peer_has);
            let blocks = vec![BlockState::Missing; self.layout.num_blocks(index) as usize];
            // A suspect piece (it failed with several senders) goes to this peer alone: if
            // it fails again, the scheduler knows whom to strike.
            let owner = self.suspect[index as usize].then_some(peer);
            self.pieces[index as usize] = PieceState::Active {
                blocks,
                contributors: Vec::new(),
                owner,
            };
            // The same pass again: it finds the new piece's blocks.
            self.pick_from_active(peer, peer_has, count, &mut picked, false);
        }
        // 3. Endgame, only once no block anywhere is unasked: before that, a second copy of
        // a block would take bandwidth that a missing block could use.
        if picked.len() < count && self.all_requested() {
            self.pick_from_active(peer, peer_has, count, &mut picked, true); // endgame
        }
        picked
    }

    /// Takes missing (or, in endgame, already requested) blocks of active pieces.
    fn pick_from_active(
        &mut self,
        peer: SocketAddr,
        peer_has: &Bitfield,
        count: usize,
        picked: &mut Vec<BlockRequest>,
        endgame: bool,
    ) {
        for (index, piece) in self.pieces.iter_mut().enumerate() {
            let PieceState::Active { blocks, owner, .. } = piece else {
                continue;
            };
            // Not a piece this peer has, or one kept for another peer.
            if !peer_has.has(index) || owner.is_some_and(|o| o != peer) {
                continue;
            }
            for (b, state) in blocks.iter_mut().enumerate() {
                // Checked per block, so a pass may stop mid-piece: the rest of that piece
                // is then first in line next time (step 1).
                if picked.len() >= count {
                    return;
                }
                let take = match state {
                    BlockState::Missing => true,
                    // BEP 3's endgame asks everyone for everything; we ask at most one more
                    // peer per block: enough not to wait on one slow peer, and the cancels
                    // that follow stay few. Never the same peer twice.
                    BlockState::Requested(by) => {
                        endgame && by.len() < ENDGAME_COPIES && !by.contains(&peer)
                    }
                    BlockState::Written => false,
                };
                if take {
                    // Marked before the request is even sent: no other peer is given this
                    // block while the answer is on its way to the peer thread.
                    match state {
                        BlockState::Requested(by) => by.push(peer),
                        _ => *state = BlockState::Requested(vec![peer]),
                    }
                    picked.push(block_at(&self.layout, index as u32, b));
                }
            }
        }
    }

    /// The newest suggestion that is a missing piece the peer has.
    fn suggested_piece(&self, peer_has: &Bitfield, suggested: &[u32]) -> Option<u32> {
        // Newest first: the latest hint is the likeliest to be still cheap for the peer
        // (BEP 6 names, among others, a seed whose disk is the bottleneck). Only a piece
        // not started: a started one is taken by the first pass anyway.
        suggested.iter().rev().copied().find(|&i| {
            peer_has.has(i as usize)
                && self.wanted.is_wanted(i as usize)
                && matches!(self.pieces.get(i as usize), Some(PieceState::Missing))
        })
    }

    /// The contract of `next_new_piece`, the function a reader may rewrite (another order):
    /// the piece it returns exists, is wanted, is still `Missing` (not had, not started, not
    /// being verified), and the peer has it. A wrong answer is a bug in this file, not bad input:
    /// stop at once naming the broken rule, rather than start a piece twice or loop forever
    /// in `pick_preferring` (which asks again while it has fewer than `count` blocks).
    fn check_new_piece(&self, index: u32, peer_has: &Bitfield) {
        let broken = |rule: &str| {
            panic!(
                "Picker::next_new_piece returned piece {index}, {rule}. It must return the index \
                 of a piece that is still missing and that the peer has, or None (is {index} \
                 a position in a list of candidates rather than a piece index?)"
            )
        };
        match self.pieces.get(index as usize) {
            None => broken(&format!("but there are only {} pieces", self.pieces.len())),
            Some(PieceState::Have) => broken("which we already have"),
            Some(PieceState::Active { .. }) => broken("which is already being downloaded"),
            Some(PieceState::Verifying { .. }) => broken("which is being verified"),
            Some(PieceState::Missing) if !peer_has.has(index as usize) => {
                broken("which the peer does not have")
            }
            Some(PieceState::Missing) if !self.wanted.is_wanted(index as usize) => {
                broken("which is not wanted (it holds no byte of a selected file)")
            }
            Some(PieceState::Missing) => {}
        }
    }

    /// A missing piece the peer has: by default random while we have few, then the rarest
    /// (see [`PieceOrder`] for the others). `None` when the peer has no piece that is still
    /// missing. See `check_new_piece` for what any other order must keep to.
    fn next_new_piece(&self, peer_has: &Bitfield) -> Option<u32> {
        let candidates: Vec<usize> = (0..self.pieces.len())
            .filter(|&i| {
                matches!(self.pieces[i], PieceState::Missing)
                    && self.wanted.is_wanted(i)
                    && peer_has.has(i)
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let chosen = if self.order == PieceOrder::InOrder {
            // `candidates` is in index order. `--piece-order in-order` is for experiments:
            // every peer then wants the same next piece, and has little to trade. [W22.3]
            candidates[0]
        } else if self.order == PieceOrder::Random || self.have < RANDOM_FIRST_PIECES {
            // At first, any piece: the rarest is slow to get (few peers have it), and a new
            // peer needs a whole piece soon, to have something to trade.
            candidates[fastrand::usize(..candidates.len())]
        } else {
            // Then the rarest: a piece few peers have may be gone when they leave, and
            // having it makes us a source others need.
            let rarest = candidates
                .iter()
                .map(|&i| self.availability[i])
                .min()
                .unwrap_or(0); // never used: `candidates` is not empty
            // Ties at random: peers that all took the same "rarest" piece would make it
            // the commonest, and leave the others rare.
            let ties: Vec<usize> = candidates
                .into_iter()
                .filter(|&i| self.availability[i] == rarest)
                .collect();
            ties[fastrand::usize(..ties.len())]
        };
        Some(chosen as u32)
    }

    /// True when no block anywhere is still unrequested: time for endgame.
    fn all_requested(&self) -> bool {
        self.pieces.iter().enumerate().all(|(i, p)| match p {
            // A piece not wanted is never asked for: nothing left to ask there either.
            PieceState::Missing => !self.wanted.is_wanted(i),
            PieceState::Active { blocks, .. } => !blocks.contains(&BlockState::Missing),
            // Verifying or verified: nothing left to ask for.
            _ => true,
        })
    }

    /// Records a block written to disk by `peer`.
    pub fn written(&mut self, peer: SocketAddr, block: &BlockRequest) -> Written {
        let mut result = Written::default();
        // Not an active piece (a late copy after the piece was complete, say): nothing to
        // record. The peer thread checked the block against its requests, not our state.
        let Some(PieceState::Active {
            blocks,
            contributors,
            ..
        }) = self.pieces.get_mut(block.index as usize)
        else {
            return result;
        };
        // Blocks are 16 KiB and aligned, so `begin` names its block. Past the piece it
        // cannot be: the peer thread writes only blocks we asked for.
        let Some(state) = blocks.get_mut((block.begin / crate::piece::BLOCK_LEN) as usize) else {
            return result;
        };
        // Everyone else asked for this block (endgame) is told to cancel.
        if let BlockState::Requested(by) = state {
            result.cancel_at = by.iter().copied().filter(|p| *p != peer).collect();
        }
        *state = BlockState::Written;
        if !contributors.contains(&peer) {
            contributors.push(peer);
        }
        // Every block on disk: the piece goes to be hashed, and none of its blocks is
        // handed out any more.
        if blocks.iter().all(|b| *b == BlockState::Written) {
            let contributors = std::mem::take(contributors);
            self.pieces[block.index as usize] = PieceState::Verifying { contributors };
            result.piece_complete = Some(block.index);
        }
        result
    }

    /// Gives back blocks `peer` will not deliver (it choked us or went away).
    pub fn release(&mut self, peer: SocketAddr, released: &[BlockRequest]) {
        for block in released {
            // A piece no longer active (complete meanwhile, in endgame): nothing to give back.
            let Some(PieceState::Active { blocks, .. }) = self.pieces.get_mut(block.index as usize)
            else {
                continue;
            };
            // Already written (another peer's copy came first): nothing to give back either.
            let Some(BlockState::Requested(by)) =
                blocks.get_mut((block.begin / crate::piece::BLOCK_LEN) as usize)
            else {
                continue;
            };
            // Only this peer's claim: in endgame another peer may still be fetching it.
            by.retain(|p| *p != peer);
            // Nobody is fetching it any more: free for the next peer that asks.
            if by.is_empty() {
                blocks[(block.begin / crate::piece::BLOCK_LEN) as usize] = BlockState::Missing;
            }
        }
    }

    /// Gives back every block still requested from `peer`, listed or not: a peer thread that
    /// crashed could not say which it had asked for.
    pub fn release_all(&mut self, peer: SocketAddr) {
        for piece in &mut self.pieces {
            let PieceState::Active { blocks, .. } = piece else {
                continue;
            };
            for state in blocks.iter_mut() {
                if let BlockState::Requested(by) = state {
                    by.retain(|p| *p != peer);
                    if by.is_empty() {
                        *state = BlockState::Missing;
                    }
                }
            }
        }
    }

    /// A peer left: pieces reserved for it are open to everyone again.
    pub fn forget_owner(&mut self, peer: SocketAddr) {
        // Otherwise a suspect piece kept for a peer that left would never be fetched again.
        for piece in &mut self.pieces {
            if let PieceState::Active { owner, .. } = piece
                && *owner == Some(peer)
            {
                *owner = None;
            }
        }
    }

    /// The hash check's verdict; returns the peers that sent the piece's blocks. On failure
    /// the piece starts over; if it had several senders we cannot tell who lied, so its next
    /// attempt goes to a single peer (and the scheduler strikes only a sole sender).
    pub fn verified(&mut self, index: u32, ok: bool) -> Vec<SocketAddr> {
        // A verdict on a piece that is not being verified: nobody to credit or blame.
        let Some(piece) = self.pieces.get_mut(index as usize) else {
            return Vec::new();
        };
        let contributors = match piece {
            PieceState::Verifying { contributors } => std::mem::take(contributors),
            _ => return Vec::new(),
        };
        if ok {
            *piece = PieceState::Have;
            self.have += 1;
            if self.wanted.is_wanted(index as usize) {
                self.wanted_missing = self.wanted_missing.saturating_sub(1);
            }
        } else {
            // Every block again: we cannot tell which one was bad.
            *piece = PieceState::Missing;
            // With one sender the scheduler strikes it, and the next attempt may go to
            // anyone; with several, the next attempt goes to one peer (`owner`).
            self.suspect[index as usize] = contributors.len() > 1;
        }
        contributors
    }
}

/// Read-only views for the web view (`snapshot.rs`).
impl Picker {
    /// Each piece as the page draws it: have, being fetched (or hashed), or untouched.
    pub fn marks(&self) -> Vec<super::snapshot::PieceMark> {
        use super::snapshot::PieceMark;
        self.pieces
            .iter()
            .map(|p| match p {
                PieceState::Have => PieceMark::Have,
                PieceState::Missing => PieceMark::Missing,
                PieceState::Active { .. } | PieceState::Verifying { .. } => PieceMark::Downloading,
            })
            .collect()
    }

    /// How many connected peers have each piece, by index.
    pub fn copies(&self) -> &[u32] {
        &self.availability
    }

    /// Blocks asked of each peer and not yet written: one pass over the active pieces.
    pub fn requested_by_peer(&self) -> std::collections::HashMap<SocketAddr, usize> {
        let mut counts = std::collections::HashMap::new();
        for piece in &self.pieces {
            let PieceState::Active { blocks, .. } = piece else {
                continue;
            };
            for block in blocks {
                if let BlockState::Requested(peers) = block {
                    peers
                        .iter()
                        .for_each(|p| *counts.entry(*p).or_insert(0) += 1);
                }
            }
        }
        counts
    }
}

fn block_at(layout: &PieceLayout, index: u32, block: usize) -> BlockRequest {
    // `block` indexes an active piece's `blocks`, made with `num_blocks(index)` entries:
    // always in range.
    layout
        .blocks(index)
        .nth(block)
        .expect("block index within the piece")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::PieceHash;

    /// 4 pieces of 32 KiB (2 blocks each).
    fn picker() -> Picker {
        let layout = PieceLayout {
            piece_length: 32768,
            total_length: 4 * 32768,
            hashes: vec![PieceHash([0; 20]); 4],
            v2: None,
        };
        Picker::new(layout, &Bitfield::new(4))
    }

    fn peer(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], n))
    }

    #[test]
    fn started_pieces_are_finished_first() {
        let mut p = picker();
        let all = Bitfield::full(4);
        let first = p.pick(peer(1), &all, 1);
        let second = p.pick(peer(2), &all, 1);
        assert_eq!(
            first[0].index, second[0].index,
            "the second block of the same piece"
        );
        assert_ne!(first[0].begin, second[0].begin);
    }

    #[test]
    fn rarest_first_once_a_few_pieces_are_in() {
        // Two seeders have everything; a third peer has all but piece 9: piece 9 is rarest.
        let mut p = picker_with_a_rare_piece_9(PieceOrder::RarestFirst);
        let picked = p.pick(peer(1), &Bitfield::full(10), 1);
        assert_eq!(picked[0].index, 9);
    }

    /// 10 one-block pieces, 0–3 already had; two seeds and a peer lacking piece 9, so piece 9
    /// is the rarest of the missing ones.
    fn picker_with_a_rare_piece_9(order: PieceOrder) -> Picker {
        let layout = PieceLayout {
            piece_length: 16384,
            total_length: 10 * 16384,
            hashes: vec![PieceHash([0; 20]); 10],
            v2: None,
        };
        let mut have = Bitfield::new(10);
        (0..4).for_each(|i| have.set(i));
        let mut p = Picker::new(layout, &have).in_order(order);
        p.peer_joined(&Bitfield::full(10));
        p.peer_joined(&Bitfield::full(10));
        let mut lacking_9 = Bitfield::new(10);
        (0..9).for_each(|i| lacking_9.set(i));
        p.peer_joined(&lacking_9);
        p
    }

    #[test]
    fn in_order_starts_the_lowest_missing_piece_the_peer_has() {
        let mut p = picker_with_a_rare_piece_9(PieceOrder::InOrder);
        let all = Bitfield::full(10);
        let picked: Vec<u32> = p.pick(peer(1), &all, 3).iter().map(|b| b.index).collect();
        assert_eq!(picked, [4, 5, 6], "not the rare piece 9 first");
        // A peer without piece 7 skips it; a suggestion does not break the order either.
        let mut no_7 = all.clone();
        no_7.clear(7);
        let picked = p.pick_preferring(peer(2), &no_7, 1, &[9]);
        assert_eq!(picked[0].index, 8);
    }

    #[test]
    fn random_order_ignores_rarity() {
        let all = Bitfield::full(10);
        let mut first = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut p = picker_with_a_rare_piece_9(PieceOrder::Random);
            first.insert(p.pick(peer(1), &all, 1)[0].index);
        }
        // Rarest-first would start piece 9 every time (`rarest_first_once_a_few_pieces_are_in`).
        assert!(first.len() >= 4, "only {first:?} in 200 draws");
        assert!(first.iter().all(|&i| (4..10).contains(&i)), "{first:?}");
    }

    #[test]
    fn the_default_order_is_rarest_first() {
        assert_eq!(PieceOrder::default(), PieceOrder::RarestFirst);
        let mut p = picker_with_a_rare_piece_9(PieceOrder::default());
        assert_eq!(p.pick(peer(1), &Bitfield::full(10), 1)[0].index, 9);
    }

    #[test]
    fn endgame_asks_a_second_peer_and_cancels_the_loser() {
        let mut p = picker();
        let all = Bitfield::full(4);
        let everything = p.pick(peer(1), &all, 100);
        assert_eq!(everything.len(), 8);
        let duplicate = p.pick(peer(2), &all, 1);
        assert_eq!(
            duplicate.len(),
            1,
            "endgame: a block already requested from peer 1"
        );
        let written = p.written(peer(2), &duplicate[0]);
        assert_eq!(written.cancel_at, [peer(1)]);
    }

    #[test]
    fn a_suggested_piece_is_started_first() {
        let mut p = picker();
        let all = Bitfield::full(4);
        let blocks = p.pick_preferring(peer(1), &all, 1, &[3]);
        assert_eq!(blocks[0].index, 3);
        // A suggestion the peer does not have is only a hint: the picker goes on as usual.
        let mut only_two = Bitfield::new(4);
        only_two.set(2);
        let blocks = p.pick_preferring(peer(2), &only_two, 1, &[1]);
        assert_eq!(blocks[0].index, 2);
    }

    #[test]
    #[should_panic(expected = "which we already have")]
    fn a_new_piece_we_already_have_is_refused_by_name() {
        let mut have = Bitfield::new(4);
        have.set(1);
        let layout = picker().layout;
        Picker::new(layout, &have).check_new_piece(1, &Bitfield::full(4));
    }

    #[test]
    #[should_panic(expected = "which the peer does not have")]
    fn a_new_piece_the_peer_lacks_is_refused_by_name() {
        picker().check_new_piece(2, &Bitfield::new(4));
    }

    #[test]
    fn every_new_piece_the_reference_picks_keeps_the_contract() {
        let mut p = picker();
        let all = Bitfield::full(4);
        // check_new_piece runs on every piece started: four pieces, no panic.
        assert_eq!(p.pick(peer(1), &all, 8).len(), 8);
        assert!(p.next_new_piece(&all).is_none(), "every piece is started");
    }

    #[test]
    fn released_blocks_can_be_picked_again() {
        let mut p = picker();
        let all = Bitfield::full(4);
        let taken = p.pick(peer(1), &all, 8);
        p.release(peer(1), &taken);
        assert_eq!(p.pick(peer(2), &all, 8).len(), 8);
    }

    #[test]
    fn a_failed_piece_starts_over_and_names_its_senders() {
        let mut p = picker();
        let only_0 = {
            let mut b = Bitfield::new(4);
            b.set(0);
            b
        };
        let blocks = p.pick(peer(1), &only_0, 2);
        assert!(p.written(peer(1), &blocks[0]).piece_complete.is_none());
        assert_eq!(p.written(peer(1), &blocks[1]).piece_complete, Some(0));
        assert_eq!(p.verified(0, false), [peer(1)]);
        assert_eq!(
            p.pick(peer(2), &only_0, 2).len(),
            2,
            "piece 0 can be fetched again"
        );
        assert!(!p.is_complete());
    }

    #[test]
    fn a_failed_piece_with_two_senders_is_refetched_from_one_peer() {
        let mut p = picker();
        let mut only_0 = Bitfield::new(4);
        only_0.set(0);
        let a = p.pick(peer(1), &only_0, 1);
        let b = p.pick(peer(2), &only_0, 1);
        p.written(peer(1), &a[0]);
        p.written(peer(2), &b[0]);
        assert_eq!(
            p.verified(0, false).len(),
            2,
            "both named: we cannot tell who lied"
        );
        assert_eq!(
            p.pick(peer(3), &only_0, 1).len(),
            1,
            "peer 3 starts the retry"
        );
        assert!(
            p.pick(peer(4), &only_0, 1).is_empty(),
            "and gets the piece to itself"
        );
        p.forget_owner(peer(3));
        assert_eq!(p.pick(peer(4), &only_0, 1).len(), 1, "until it leaves");
    }

    #[test]
    fn pieces_not_wanted_are_never_picked_and_do_not_block_completion() {
        let layout = picker().layout;
        // Pieces 1 and 2 hold selected bytes; 0 and 3 only bytes of files not selected.
        let wanted = Wanted::from_bytes(vec![0, 32768, 100, 0]);
        let mut p = Picker::wanting(layout, &Bitfield::new(4), wanted);
        let all = Bitfield::full(4);
        assert!(p.is_interesting(&all));
        let mut only_unwanted = Bitfield::new(4);
        only_unwanted.set(0);
        only_unwanted.set(3);
        assert!(!p.is_interesting(&only_unwanted));
        assert!(p.pick(peer(2), &only_unwanted, 8).is_empty());
        let blocks = p.pick(peer(1), &all, 100);
        assert_eq!(
            blocks.len(),
            4,
            "two blocks each of pieces 1 and 2, nothing else"
        );
        let mut pieces: Vec<u32> = blocks.iter().map(|b| b.index).collect();
        // Fewer than four pieces are in: they are started in random order.
        pieces.sort_unstable();
        pieces.dedup();
        assert_eq!(
            pieces,
            [1, 2],
            "and no endgame copies of pieces nobody wants"
        );
        for block in &blocks {
            p.written(peer(1), block);
        }
        assert!(!p.is_complete());
        p.verified(1, true);
        p.verified(2, true);
        assert!(p.is_complete(), "complete with pieces 0 and 3 missing");
        assert_eq!(p.have_count(), 2);
    }
}
