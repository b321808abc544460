//! The SHA-1 verdict and what follows from it (BEP 3 "pieces"): a good piece is announced to
//! every peer, a bad one starts over and its sole sender gets a strike; the last good piece
//! completes the download — walkthrough §8, §9.
//!
//! ```text
//!   Event::Verified { ok: true }  ──► have to every peer ──► complete? drop the seeds
//!   Event::Verified { ok: false } ──► start the piece over ──► one sender? strike ──► 3: ban
//! ```

use super::{MAX_STRIKES, Scheduler};
use crate::events::Command;
use std::net::SocketAddr;

impl Scheduler {
    /// The SHA-1 verdict: keep the piece and tell every peer, or start it over and strike its
    /// sender. [W8.3]
    pub(super) fn verified(&mut self, index: u32, ok: bool) {
        let had = self.picker.have_count();
        let senders = self.picker.verified(index, ok);
        if ok {
            log::debug!("piece {index} verified");
            self.progress.pieces_have = self.picker.have_count();
            // The progress bar counts selected bytes: only a piece new to us adds its share.
            if self.picker.have_count() > had {
                self.progress.wanted_bytes_have += self.picker.wanted().bytes_in(index);
            }
            // From now on in every bitfield we send, and served to peers that ask.
            self.ours.set(index as usize);
            // One sender is credited, so that no piece counts twice: the one whose block was
            // written first (`senders` is in that order; in endgame, usually the peer that began
            // the piece), or the next if we cannot name it: a connection replaced by a newer one
            // to the same peer is no longer known by its address.
            for sender in &senders {
                if let Some(t) = self.traffic_of(*sender) {
                    t.pieces += 1;
                    break;
                }
            }
            // BEP 3: a verified piece is announced "to all of its peers" (the peer threads
            // skip seeds, which want nothing).
            self.broadcast(Command::Have(index));
            if self.picker.is_complete() {
                self.completed();
            }
            return;
        }
        // A bad hash is an ordinary event, not an error: the piece is simply fetched again.
        self.progress.failed_pieces += 1;
        log::warn!("piece {index} failed its hash check; sent by {senders:?}");
        // With several senders we cannot tell who lied, so nobody is struck; the picker
        // fetches the piece again from one peer, and a second failure names it.
        if let [liar] = senders[..] {
            self.strike(liar);
        }
    }

    /// A sole sender of a bad piece gets a strike; enough strikes and it is banned.
    pub(super) fn strike(&mut self, peer: SocketAddr) {
        // Strikes live with the connection: a sender that has left, or comes back, starts
        // again from zero. Keeping them by peer id would follow it, but a peer id is a name
        // the peer chooses for itself.
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        // Not banned at the first: a disk or memory error on the peer's side can spoil one
        // piece; three is a pattern.
        entry.strikes += 1;
        if entry.strikes >= MAX_STRIKES {
            log::warn!("{peer}: banned after {MAX_STRIKES} pieces that failed the hash check");
            // By address (IP and port): never dialled again, and refused if it comes back
            // from it (`add_peer`, `connected`).
            self.banned.insert(peer);
            self.progress.banned = self.banned.len();
            self.command(peer, Command::Stop);
        }
    }

    /// The last piece is verified: the download is complete; seeds are no use to us now.
    pub(super) fn completed(&mut self) {
        log::info!(
            "download complete: all {} pieces verified",
            self.ours.count()
        );
        // Closing them frees their slots for leechers we can upload to. Collected first:
        // `drop_if_both_seeds` needs `self` while the map would be borrowed.
        let seeds: Vec<SocketAddr> = self.peers.keys().copied().collect();
        seeds.into_iter().for_each(|p| self.drop_if_both_seeds(p));
    }

    /// Two seeds have nothing to say to each other: close, and do not dial it again.
    pub(super) fn drop_if_both_seeds(&mut self, peer: SocketAddr) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        // `finished`: one `Stop` is enough, however many `have`s still arrive.
        if self.picker.is_complete() && entry.bitfield.is_complete() && !entry.finished {
            log::debug!("{peer}: we are both seeds, closing");
            entry.finished = true;
            // Dialled again, it would be closed again: not worth a connection.
            self.not_again.insert(peer);
            self.command(peer, Command::Stop);
        }
    }
}
