//! What one connection knows of the protocol, as a pure state machine (BEP 3 "peer protocol",
//! BEP 6 "Fast Extension") — walkthrough §6, §7.
//!
//! ```text
//!   message from the peer ──┐                          ┌──► messages to send the peer
//!   command of the scheduler ┼──► PeerState (choked?   ┼──► events for the scheduler
//!   blocks the scheduler gave┘     interested? who has └──► errors (the peer lied)
//!                                  what? what is asked?)
//! ```
//!
//! Both sides start *choked* and *not interested* (BEP 3). We are interested while the peer
//! has a piece we lack; we request only while it unchokes us (or, with the fast extension,
//! pieces it allowed us while it chokes us); every request stays *outstanding* until its
//! block arrives, the peer rejects it, or a choke without the fast extension throws it away.
//!
//! Nothing here touches a socket, a channel or the clock: the peer thread (`thread.rs`) feeds
//! it what happened and carries out the [`Actions`] it returns, and the unit tests at the
//! bottom do the same with plain values.
//!
//! [`PieceLayers`] answers BitTorrent v2's `hash request` (BEP 52): the hash trees of a v2
//! torrent's files from their piece layers up, shared by every peer thread of the torrent.

use super::connection::PeerError;
use super::fast::{ALLOWED_FAST_COUNT, FastState, allowed_fast_set};
use crate::events::Event;
use crate::merkle::{BlocksPerPiece, Sha256Hash, pad_hash, parent_layer};
use crate::metainfo::{InfoHash, V2Info};
use crate::piece::BlockRequest;
use crate::wire::hashes::{HashRange, HashesError};
use crate::wire::{Bitfield, Message};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

/// Blocks nobody asked for that we tolerate (late endgame copies are normal) before hanging up.
const MAX_UNSOLICITED: u32 = 64;

/// What the peer thread must do after a step: send these messages to the peer, in order, and
/// tell the scheduler these events.
#[derive(Debug, Default)]
pub struct Actions {
    pub send: Vec<Message>,
    pub tell: Vec<Event>,
}

impl Actions {
    /// One message for the peer, nothing for the scheduler.
    fn send(message: Message) -> Actions {
        Actions {
            send: vec![message],
            tell: Vec::new(),
        }
    }

    /// One event for the scheduler, nothing for the peer.
    fn tell(event: Event) -> Actions {
        Actions {
            send: Vec::new(),
            tell: vec![event],
        }
    }

    /// These actions, then `more`: the order of the messages is kept.
    fn and(mut self, more: Actions) -> Actions {
        self.send.extend(more.send);
        self.tell.extend(more.tell);
        self
    }
}

/// Our view of one connection: the four BEP 3 flags, both sides' pieces, our requests.
#[derive(Debug)]
pub struct PeerState {
    pub addr: SocketAddr,
    /// The peer's pieces, from its bitfield (or `have all`) and its `have`s.
    pub theirs: Bitfield,
    /// Our pieces, as the scheduler told us (`OurPieces`, then `Have`).
    pub ours: Bitfield,
    /// How many of the peer's pieces we lack: we are interested while this is above 0.
    wanted: usize,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub am_choking: bool,
    pub peer_interested: bool,
    /// Our requests the peer has not answered yet.
    pub outstanding: Vec<BlockRequest>,
    /// Blocks that came without a request of ours (see `MAX_UNSOLICITED`).
    unsolicited: u32,
    /// The fast extension (BEP 6) on this connection.
    pub fast: FastState,
}

impl PeerState {
    /// A new connection to `addr`; `fast`: both handshakes set the fast extension's bit.
    pub fn new(addr: SocketAddr, num_pieces: usize, fast: bool) -> PeerState {
        PeerState {
            addr,
            // Nothing until the peer says otherwise: BEP 3 lets a peer with no piece skip
            // its bitfield, so silence means "none".
            theirs: Bitfield::new(num_pieces),
            ours: Bitfield::new(num_pieces),
            wanted: 0,
            // BEP 3: "Connections start out choked and not interested", on both sides.
            am_interested: false,
            peer_choking: true,
            am_choking: true,
            peer_interested: false,
            outstanding: Vec::new(),
            unsolicited: 0,
            fast: FastState::new(fast),
        }
    }

    fn num_pieces(&self) -> usize {
        self.theirs.num_pieces()
    }

    /// Our first messages after the handshakes, from the pieces the scheduler says we have:
    /// BEP 3's bitfield, or with the fast extension one of bitfield / `have all` / `have
    /// none` (always one, the short ones where they say it all), then the pieces of the
    /// peer's allowed fast set that we have. The extended handshake goes between the two
    /// (the thread's job): what is returned is (what we have, what we allow).
    pub fn start(
        &mut self,
        ours: Bitfield,
        info_hash: InfoHash,
    ) -> (Option<Message>, Vec<Message>) {
        // BEP 6: with the extension exactly one of the three must come, even when we have
        // nothing; the short forms save a bitfield's bytes when they say it all.
        let have = match (self.fast.enabled, ours.count()) {
            (true, 0) => Some(Message::HaveNone),
            (true, n) if n == ours.num_pieces() => Some(Message::HaveAll),
            // BEP 3 allows no bitfield at all when we have nothing: never an empty one.
            (false, 0) => None,
            _ => Some(Message::Bitfield(ours.as_bytes().to_vec())),
        };
        // The peer thread reads no message before this, so this is 0; counted anyway, so
        // that `wanted` is true to both sets whatever order things come in.
        self.wanted = self.theirs.count_missing_from(&ours);
        self.ours = ours;
        // BEP 6: a peer "SHOULD send Allowed Fast messages to any starting peer". We send
        // them to every peer, at the start: at most ten small messages, and a new peer,
        // which has nothing to trade yet, gets its first pieces without waiting for an
        // optimistic unchoke.
        let allow = match (self.fast.enabled, self.addr.ip()) {
            // BEP 6 defines the set for IPv4 only. It may name pieces we lack; we offer
            // only those we could serve.
            (true, IpAddr::V4(ip)) => {
                let n = self.num_pieces() as u32;
                let set = allowed_fast_set(ALLOWED_FAST_COUNT, n, info_hash, ip);
                set.into_iter()
                    .filter(|&i| self.ours.has(i as usize))
                    .collect()
            }
            _ => Vec::new(),
        };
        // Kept: `upload.rs` serves these pieces while we choke the peer, and keeps their
        // requests when we choke it.
        self.fast.we_allow = allow.clone();
        let allow = allow
            .into_iter()
            .map(|index| Message::AllowedFast { index })
            .collect();
        (have, allow)
    }

    /// A whole set of pieces from the peer: its `bitfield` (or BEP 6's `have all` / `have
    /// none`), normally right after the handshake. Some clients (aria2) send another one
    /// later instead of a batch of `have`s, whenever it is shorter; that is harmless, so it
    /// is taken as an update: what the peer announced before stays announced (the union),
    /// and the scheduler hears only what is new.
    pub fn peer_announced(&mut self, bitfield: Bitfield) -> Actions {
        // "First" means: nothing announced so far. An earlier `have none` counted no piece
        // with the scheduler either, so the new set can still be taken whole.
        if self.theirs.count() == 0 {
            // The first announcement (the usual case): the scheduler counts every piece at once.
            self.wanted = bitfield.count_missing_from(&self.ours);
            // One copy is ours, the other goes to the scheduler: the threads share nothing.
            self.theirs = bitfield.clone();
            let told = Actions::tell(Event::Bitfield {
                peer: self.addr,
                bitfield,
            });
            return told.and(self.update_interest());
        }
        // [W6.2] A late one: the scheduler already counted the pieces announced so far, so
        // only the new ones go to it, one `Have` each, exactly as if the peer had sent those.
        let new: Vec<u32> = (0..bitfield.num_pieces())
            .filter(|&i| bitfield.has(i) && !self.theirs.has(i))
            .map(|i| i as u32)
            .collect();
        log::debug!(
            "{}: a bitfield after other messages: {} new pieces",
            self.addr,
            new.len()
        );
        let mut actions = Actions::default();
        for index in new {
            // In range: `bitfield` has exactly our number of pieces.
            actions = actions.and(self.peer_has_valid(index));
        }
        actions
    }

    /// A `have`: the peer got a new piece; maybe now it has something we want. An index past
    /// the end is a lie about the torrent, and ends the connection.
    pub fn peer_has(&mut self, index: u32) -> Result<Actions, PeerError> {
        if index as usize >= self.num_pieces() {
            return Err(PeerError::NoSuchPiece {
                what: "have",
                index,
                pieces: self.num_pieces(),
            });
        }
        Ok(self.peer_has_valid(index))
    }

    fn peer_has_valid(&mut self, index: u32) -> Actions {
        // A piece counts once, however often the peer announces it: a repeated `have` is
        // not news, and telling the scheduler again would make the piece look more common.
        if self.theirs.has(index as usize) {
            return Actions::default();
        }
        self.theirs.set(index as usize);
        if !self.ours.has(index as usize) {
            self.wanted += 1;
        }
        let told = Actions::tell(Event::Have {
            peer: self.addr,
            index,
        });
        told.and(self.update_interest())
    }

    /// The peer chokes us. BEP 3: a choke silently drops every request we sent, so they go
    /// back to the scheduler now. BEP 6 changes that: the peer answers each one itself, with
    /// the block or a reject, so ours stay outstanding until then.
    pub fn peer_chokes(&mut self) -> Actions {
        self.peer_choking = true;
        // Returning them now would let the scheduler give them to another peer while this
        // one may still send them: each waits for its own block or reject.
        // The scheduler is told either way, with nothing dropped here: the web view shows
        // who unchokes us, and a choke it never heard of left a peer shown as unchoking us.
        if self.fast.enabled {
            return Actions::tell(Event::Choked {
                peer: self.addr,
                dropped: Vec::new(),
            }); // [W7.3]
        }
        // [W7.1] Without BEP 6, a request the peer dropped is answered never: this peer
        // will not send them, other peers may, from now on.
        let dropped = std::mem::take(&mut self.outstanding);
        Actions::tell(Event::Choked {
            peer: self.addr,
            dropped,
        })
    }

    /// The peer unchokes us: we may request. Nothing to tell the scheduler, which sees it in
    /// our next `WantBlocks`.
    pub fn peer_unchokes(&mut self) {
        self.peer_choking = false;
    }

    /// `interested` or `not interested`: the choker's input.
    pub fn peer_interest(&mut self, interested: bool) -> Actions {
        // Kept here for `check_liveness`; whom to unchoke is the scheduler's choice alone.
        self.peer_interested = interested;
        Actions::tell(Event::Interest {
            peer: self.addr,
            interested,
        })
    }

    /// BEP 6 `reject_request`: the peer will not send this block, so it goes back to the
    /// scheduler at once rather than after a timeout. A reject of a request we no longer
    /// have is the answer to one we cancelled (endgame): it is already back in the pool.
    pub fn peer_rejects(&mut self, block: BlockRequest) -> Actions {
        // BEP 6 says to hang up on a reject of a request never sent; but a peer answers our
        // `cancel` with a reject (one answer per request), and by then the request is no
        // longer outstanding here. Hanging up would punish the peer for our endgame.
        let Some(position) = self.outstanding.iter().position(|b| *b == block) else {
            log::trace!("{}: reject of {block:?}, not outstanding", self.addr);
            return Actions::default();
        };
        self.outstanding.swap_remove(position);
        Actions::tell(Event::Rejected {
            peer: self.addr,
            block,
            // Refused while it unchokes us: the scheduler asks it for other pieces.
            choked: self.peer_choking,
        })
    }

    /// BEP 6 `allowed_fast`: a piece the peer serves us even while it chokes us. A promise
    /// about a piece that does not exist is worth nothing: ignored.
    pub fn peer_allows(&mut self, index: u32) {
        // Kept even for a piece the peer lacks or we have (BEP 6 allows both): `want_blocks`
        // filters when it asks. At most 64 are kept: a peer may repeat this forever.
        if (index as usize) < self.num_pieces() && self.fast.peer_allows(index) {
            log::debug!("{}: allows piece {index} while it chokes us", self.addr);
        }
    }

    /// BEP 6 `suggest_piece`: passed on to the picker as a hint.
    pub fn peer_suggests(&mut self, index: u32) -> Actions {
        if index as usize >= self.num_pieces() {
            return Actions::default(); // a hint about nothing: ignored
        }
        Actions::tell(Event::Suggested {
            peer: self.addr,
            index,
        })
    }

    /// A `piece` message: `Ok(true)` if it answers one of our requests (then it is ours to
    /// write), `Ok(false)` if nobody asked for it. A late copy after our `cancel` is normal;
    /// a flood is not.
    pub fn block_arrived(&mut self, block: &BlockRequest) -> Result<bool, PeerError> {
        // Only an exact answer to one of our requests is written: any other block could
        // overwrite bytes another peer delivered, or ones already verified.
        let Some(position) = self.outstanding.iter().position(|b| b == block) else {
            // Counted over the whole connection: late copies come at most one per cancel,
            // and BEP 3 expects a few after a quick choke and unchoke; 64 is plenty for
            // honest peers and cheap against a flood.
            self.unsolicited += 1;
            if self.unsolicited > MAX_UNSOLICITED {
                return Err(PeerError::Unsolicited(self.unsolicited));
            }
            return Ok(false);
        };
        self.outstanding.swap_remove(position);
        Ok(true)
    }

    /// The scheduler's `OurPieces` (sent again, say after a resume check).
    pub fn our_pieces(&mut self, ours: Bitfield) {
        // Recounted from scratch: the new set may differ from the old one anywhere.
        self.wanted = self.theirs.count_missing_from(&ours);
        self.ours = ours;
    }

    /// We verified a piece: tell the peer (`have`) unless it has every piece (a seed needs no
    /// news), and lose interest if it has nothing more for us.
    pub fn we_have(&mut self, index: u32) -> Actions {
        // Only a piece new to us lowers `wanted`: a repeat must not count twice.
        if !self.ours.has(index as usize) {
            self.ours.set(index as usize);
            if self.theirs.has(index as usize) {
                self.wanted -= 1;
            }
        }
        let mut actions = Actions::default();
        // BEP 3 announces a piece "to all of its peers"; a seed can want nothing from us,
        // so its `have`s would be bytes for nothing.
        if !self.theirs.is_complete() {
            actions.send.push(Message::Have { index });
        }
        // After the `have`: the peer hears of the piece before it hears we lost interest.
        actions.and(self.update_interest())
    }

    /// How many more requests to ask the scheduler for, with a pipeline `depth` deep, and
    /// from which pieces alone (`Some`: the peer chokes us but allows these, BEP 6). `None`:
    /// nothing to ask now. Requests are asked in batches (a quarter of the pipeline at
    /// least): one round trip to the scheduler per block would cost a thread switch per
    /// 16 KiB.
    pub fn want_blocks(&self, depth: usize) -> Option<(usize, Option<Vec<u32>>)> {
        let only = match self.peer_choking {
            false => None,
            true => {
                // Of the allowed pieces, only those it has and we lack: BEP 6 lets a peer
                // allow pieces it does not have, and asking for those would be refused.
                let allowed: Vec<u32> = (self.fast.they_allow.iter().copied())
                    .filter(|&i| self.theirs.has(i as usize) && !self.ours.has(i as usize))
                    .collect();
                if allowed.is_empty() {
                    return None; // choked, and nothing allowed: BEP 3 says wait
                }
                Some(allowed)
            }
        };
        let room = depth.saturating_sub(self.outstanding.len());
        let batch = (depth / 4).max(1);
        // An empty pipeline is asked to fill whatever the batch: an idle connection costs
        // more than one small round trip to the scheduler.
        let starving = self.outstanding.is_empty();
        // Not interested: the peer has no piece we lack, so there is nothing to ask for.
        if !self.am_interested || room == 0 || (room < batch && !starving) {
            return None;
        }
        Some((room, only))
    }

    /// The scheduler gave us these blocks: request them.
    pub fn requested(&mut self, blocks: Vec<BlockRequest>) -> Vec<Message> {
        // Outstanding from now on: only a block on this list can come back to the scheduler
        // (a choke, a reject, the end of the connection), or be written when it arrives.
        let messages = blocks
            .iter()
            .map(|b| Message::Request {
                index: b.index,
                begin: b.begin,
                length: b.length,
            })
            .collect();
        self.outstanding.extend(blocks);
        messages
    }

    /// The scheduler's `Cancel`: another peer delivered this block first (endgame).
    pub fn cancel(&mut self, block: BlockRequest) -> Option<Message> {
        // A block no longer outstanding (it arrived, or was rejected) needs no `cancel`.
        // Once cancelled, its late copy counts as unsolicited: the other copy is written.
        let position = self.outstanding.iter().position(|b| *b == block)?;
        self.outstanding.swap_remove(position);
        Some(Message::Cancel {
            index: block.index,
            begin: block.begin,
            length: block.length,
        })
    }

    /// `interested` when the peer has a piece we lack, `not interested` when it no longer has.
    fn update_interest(&mut self) -> Actions {
        // `wanted` is kept up to date by every change of either set, so this is a compare,
        // not a scan of both bitfields per message.
        let interested = self.wanted > 0;
        // Only a change goes on the wire: `interested` is a state, not a request.
        if interested == self.am_interested {
            return Actions::default();
        }
        self.am_interested = interested;
        Actions::send(match interested {
            true => Message::Interested,
            false => Message::NotInterested,
        })
    }
}

/// The hash trees we answer `hash request`s from (BEP 52): for each file larger than one
/// piece, its piece layer (the `.torrent`'s `piece layers`) and every layer above it up to the
/// root, built once for the whole torrent and shared by its peer threads.
///
/// We keep no leaves of such a file, so a request below its piece layer is refused. A file of
/// one piece or less has no piece layer: its root, which every peer has from the info
/// dictionary, is all there is to know.
#[derive(Debug)]
pub struct PieceLayers {
    /// The piece layer's height above the leaves: log2 of the blocks per piece.
    piece_height: u32,
    /// Each file's layers by its pieces root (identical files share one tree): the piece
    /// layer first, without the padding at its end, and last the root alone.
    trees: HashMap<Sha256Hash, Vec<Vec<Sha256Hash>>>,
}

/// Why a `hash request` gets a `hash reject`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HashRefusal {
    /// A bound of BEP 52 broken (length, index, layers).
    #[error(transparent)]
    Malformed(#[from] HashesError),
    #[error("no file of ours larger than one piece has the pieces root {0}")]
    UnknownRoot(Sha256Hash),
    #[error("base layer {base_layer}: of that file we hold layers {lowest} to {highest}")]
    NoSuchLayer {
        base_layer: u32,
        lowest: u32,
        highest: u32,
    },
    #[error("hashes {index} to {end} asked of a layer {width} wide (padding included)")]
    OutOfRange { index: u32, end: u64, width: u64 },
    #[error("{proof_layers} proof layers asked above layer {base_layer}, {above} below the root")]
    TooManyProofLayers {
        proof_layers: u32,
        base_layer: u32,
        above: usize,
    },
}

impl PieceLayers {
    /// The trees of every file of `v2` that has a piece layer; `None` if none has (a torrent
    /// of small files, or one without `piece layers`). Costs one SHA-256 per node above the
    /// piece layers: as many as there are pieces, at most.
    pub fn from_v2(v2: &V2Info, piece_length: u64) -> Option<PieceLayers> {
        let piece_height = BlocksPerPiece::for_piece_length(piece_length)
            .ok()?
            .height();
        let mut trees = HashMap::new();
        for file in &v2.files {
            let Some(root) = file.pieces_root else {
                continue; // an empty file or a symbolic link: no tree
            };
            if file.piece_layer.is_empty() || trees.contains_key(&root) {
                continue;
            }
            let mut layers = vec![file.piece_layer.clone()];
            let mut height = piece_height;
            // Each round halves the layer (rounding up): log2(pieces) rounds. `layers` is
            // never empty, so `last` is there.
            while let Some(top) = layers.last().filter(|l| l.len() > 1) {
                let parents = parent_layer(top, height);
                layers.push(parents);
                height += 1;
            }
            // The metainfo checked each layer against its root when the torrent was loaded;
            // a tree that disagrees now is kept out rather than served wrong.
            if layers.last().and_then(|l| l.first()) == Some(&root) {
                trees.insert(root, layers);
            } else {
                log::warn!(
                    "{}: its piece layer does not hash to its root",
                    file.display_path()
                );
            }
        }
        (!trees.is_empty()).then_some(PieceLayers {
            piece_height,
            trees,
        })
    }

    /// The `hashes` answer to a request: the hashes asked for (padding past the end of the
    /// layer, as BEP 52 pads the tree), then the uncles that prove them up to where the
    /// request's proof layers reach. At most 512 + 63 hashes are copied, and the only hashing
    /// is of padding nodes: the work per request is bounded whatever the file's size.
    pub fn serve(&self, request: &HashRange) -> Result<Message, HashRefusal> {
        request.check("hash request")?;
        let layers = self
            .trees
            .get(&request.pieces_root)
            .ok_or(HashRefusal::UnknownRoot(request.pieces_root))?;
        // The layer of the root, counted from the piece layer (a tree has at least two
        // layers: files of one piece have none here).
        let top = layers.len().saturating_sub(1);
        let height = |layer: usize| self.piece_height + layer as u32;
        let base = request
            .base_layer
            .checked_sub(self.piece_height)
            .map(|b| b as usize)
            .filter(|b| *b <= top)
            .ok_or(HashRefusal::NoSuchLayer {
                base_layer: request.base_layer,
                lowest: self.piece_height,
                highest: height(top),
            })?;
        // Padded to a power of two, the base layer is 2^(layers above it) wide.
        let above = top - base;
        let width = 1u64 << above;
        let end = u64::from(request.index) + u64::from(request.length);
        if end > width {
            return Err(HashRefusal::OutOfRange {
                index: request.index,
                end,
                width,
            });
        }
        // The highest proof layer is the one just below the root (the root has no sibling):
        // `above - 1`. This also keeps every uncle below inside `layers`.
        if request.proof_layers as usize >= above {
            return Err(HashRefusal::TooManyProofLayers {
                proof_layers: request.proof_layers,
                base_layer: request.base_layer,
                above,
            });
        }
        let pad = pad_hash(height(base));
        // `base <= top < layers.len()`: checked where `base` was made.
        let base_layer = &layers[base];
        let mut hashes: Vec<Sha256Hash> = (request.index as usize..end as usize)
            .map(|i| base_layer.get(i).copied().unwrap_or(pad))
            .collect();
        // The uncles start where the hashes asked for meet in one node, and climb a layer
        // each.
        let first = base + request.span() as usize;
        let mut node = (request.index >> request.span()) as usize;
        for layer in first..first + request.uncle_count() as usize {
            // A sibling past the end of its layer is padding of that height.
            let sibling = layers.get(layer).and_then(|l| l.get(node ^ 1)).copied();
            hashes.push(sibling.unwrap_or_else(|| pad_hash(height(layer))));
            node /= 2;
        }
        Ok(request.answer(hashes)?)
    }

    /// The answer to `request`, whatever it is: `hashes`, or a `hash reject` with its reason.
    pub fn answer(&self, request: &HashRange) -> (Message, Option<HashRefusal>) {
        match self.serve(request) {
            Ok(hashes) => (hashes, None),
            Err(why) => (request.reject(), Some(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECES: usize = 10;

    fn peer(fast: bool) -> PeerState {
        PeerState::new("127.0.0.1:6881".parse().unwrap(), PIECES, fast)
    }

    fn pieces(indexes: &[usize]) -> Bitfield {
        let mut field = Bitfield::new(PIECES);
        indexes.iter().for_each(|&i| field.set(i));
        field
    }

    fn block(index: u32) -> BlockRequest {
        BlockRequest {
            index,
            begin: 0,
            length: 16384,
        }
    }

    #[test]
    fn a_bitfield_with_pieces_we_lack_makes_us_interested() {
        let mut state = peer(false);
        state.start(pieces(&[0]), InfoHash([1; 20]));
        let actions = state.peer_announced(pieces(&[0, 3]));
        assert_eq!(actions.send, [Message::Interested]);
        assert!(matches!(actions.tell[..], [Event::Bitfield { .. }]));
        // We get piece 3 ourselves: the peer has nothing more for us.
        let actions = state.we_have(3);
        assert_eq!(
            actions.send,
            [Message::Have { index: 3 }, Message::NotInterested]
        );
    }

    #[test]
    fn a_late_bitfield_is_an_update_told_as_haves() {
        let mut state = peer(false);
        state.peer_announced(pieces(&[1]));
        let actions = state.peer_announced(pieces(&[2, 5]));
        let told: Vec<u32> = actions
            .tell
            .iter()
            .filter_map(|e| match e {
                Event::Have { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        assert_eq!(told, [2, 5], "only the new pieces");
        assert!(
            state.theirs.has(1),
            "what it announced before stays announced"
        );
    }

    #[test]
    fn a_repeated_have_is_not_news() {
        let mut state = peer(false);
        assert_eq!(state.peer_has(4).unwrap().tell.len(), 1);
        let again = state.peer_has(4).unwrap();
        assert!(again.tell.is_empty() && again.send.is_empty(), "{again:?}");
    }

    #[test]
    fn a_have_out_of_range_is_a_lie() {
        let mut state = peer(false);
        let error = state.peer_has(PIECES as u32).unwrap_err();
        assert!(error.to_string().contains("no such piece"), "{error}");
    }

    #[test]
    fn without_the_fast_extension_a_choke_returns_every_request() {
        let mut state = peer(false);
        state.peer_announced(pieces(&[0, 1]));
        state.peer_unchokes();
        state.requested(vec![block(0), block(1)]);
        let actions = state.peer_chokes();
        let [Event::Choked { dropped, .. }] = &actions.tell[..] else {
            panic!("{actions:?}");
        };
        assert_eq!(dropped.len(), 2);
        assert!(state.outstanding.is_empty());
    }

    #[test]
    fn with_the_fast_extension_a_choke_keeps_requests_until_each_is_rejected() {
        let mut state = peer(true);
        state.peer_announced(pieces(&[0, 1]));
        state.peer_unchokes();
        state.requested(vec![block(0), block(1)]);
        // The scheduler hears of the choke, but no request is handed back yet.
        let actions = state.peer_chokes();
        let [Event::Choked { dropped, .. }] = &actions.tell[..] else {
            panic!("expected one Choked event, got {:?}", actions.tell);
        };
        assert!(dropped.is_empty());
        assert_eq!(state.outstanding.len(), 2);
        let actions = state.peer_rejects(block(1));
        assert!(matches!(
            actions.tell[..],
            [Event::Rejected { choked: true, .. }]
        ));
        assert_eq!(state.outstanding, [block(0)]);
        // A reject of what we no longer asked for (we cancelled it) changes nothing.
        assert!(state.peer_rejects(block(7)).tell.is_empty());
    }

    #[test]
    fn while_choked_only_allowed_fast_pieces_are_asked_for() {
        let mut state = peer(true);
        state.start(Bitfield::new(PIECES), InfoHash([2; 20]));
        state.peer_announced(pieces(&[0, 1, 2]));
        assert_eq!(state.want_blocks(8), None, "choked and nothing allowed");
        state.peer_allows(2);
        state.peer_allows(9); // it does not have 9: not worth asking
        state.peer_allows(99); // no such piece: ignored
        assert_eq!(state.want_blocks(8), Some((8, Some(vec![2]))));
        state.peer_unchokes();
        assert_eq!(state.want_blocks(8), Some((8, None)));
    }

    #[test]
    fn our_first_message_is_the_shortest_that_says_what_we_have() {
        let info_hash = InfoHash([3; 20]);
        let mut plain = peer(false);
        assert_eq!(plain.start(Bitfield::new(PIECES), info_hash).0, None);
        let mut fast = peer(true);
        let (have, allow) = fast.start(Bitfield::full(PIECES), info_hash);
        assert_eq!(have, Some(Message::HaveAll));
        assert_eq!(
            allow.len(),
            PIECES,
            "a 10-piece torrent: every piece is allowed fast"
        );
        let mut fast = peer(true);
        assert_eq!(
            fast.start(pieces(&[]), info_hash).0,
            Some(Message::HaveNone)
        );
        let mut fast = peer(true);
        let (have, _) = fast.start(pieces(&[4]), info_hash);
        assert!(matches!(have, Some(Message::Bitfield(_))));
    }

    #[test]
    fn a_seed_gets_no_have() {
        let mut state = peer(false);
        state.peer_announced(Bitfield::full(PIECES));
        let actions = state.we_have(4);
        assert!(!actions.send.contains(&Message::Have { index: 4 }));
    }

    #[test]
    fn blocks_nobody_asked_for_are_tolerated_then_fatal() {
        let mut state = peer(false);
        state.requested(vec![block(3)]);
        assert!(state.block_arrived(&block(3)).unwrap());
        for _ in 0..MAX_UNSOLICITED {
            assert!(!state.block_arrived(&block(3)).unwrap());
        }
        assert!(state.block_arrived(&block(3)).is_err());
    }

    #[test]
    fn requests_go_out_in_batches() {
        let mut state = peer(false);
        state.peer_announced(pieces(&[0]));
        state.peer_unchokes();
        assert_eq!(state.want_blocks(8), Some((8, None)));
        state.requested((0..7).map(|_| block(0)).collect());
        assert_eq!(
            state.want_blocks(8),
            None,
            "room for 1, less than a batch of 2"
        );
    }
}
