//! The fast extension's rules (BEP 6 "Fast Extension") — walkthrough §5, §7, §10.
//!
//! Both peers set reserved bit `0x04` of byte 7 in their handshakes; from then on the
//! connection has five more messages (`wire::message`) and two rules change:
//!
//! ```text
//!   without it:  request ──► piece, or silence (a choke drops every queued request)
//!   with it:     request ──► exactly one answer: piece or reject_request
//!                choke   ──► the requests stay; the chokee hears a reject for each one that
//!                            will not be served
//!   allowed_fast(i): "I will serve piece i even while I choke you"  (a fixed set per peer)
//!   suggest_piece(i): "you might like piece i"                       (a hint for the picker)
//!   have_all / have_none: in place of the bitfield
//! ```
//!
//! This module holds the pure parts: the canonical *allowed fast set* and what one connection
//! remembers of the extension. The peer thread (`thread.rs`) and the uploader (`upload.rs`)
//! act on them; nothing here does I/O.

use crate::encoding::sha1;
use crate::metainfo::InfoHash;
use std::net::Ipv4Addr;

/// How many pieces we allow a choked peer to fetch (BEP 6 suggests 10).
pub const ALLOWED_FAST_COUNT: usize = 10;
/// At most this many `allowed_fast` and `suggest_piece` pieces are remembered from one peer:
/// both are hints a peer may repeat forever, and memory must stay bounded.
const MAX_REMEMBERED: usize = 64;

/// The allowed fast set of the peer at `ip`, for a torrent of `num_pieces` pieces: BEP 6's
/// canonical algorithm, so that any two peers that compute it for the same peer agree.
/// (libtorrent 2.0.8 hashes the whole address, without the mask, so its sets differ from the
/// BEP's; that harms no one, since a receiver goes by the `allowed_fast` messages it gets.)
pub fn allowed_fast_set(
    count: usize,
    num_pieces: u32,
    info_hash: InfoHash,
    ip: Ipv4Addr,
) -> Vec<u32> {
    // A torrent with fewer pieces than `count` would loop forever looking for new ones.
    let count = count.min(num_pieces as usize);
    let mut set = Vec::with_capacity(count);
    // Only the first three bytes of the address: one user with many addresses on the same
    // network gets one set, not one per address.
    let masked = u32::from(ip) & 0xffff_ff00; // [W5.3]
    let mut x = masked.to_be_bytes().to_vec();
    x.extend_from_slice(&info_hash.0);
    while set.len() < count {
        // Each SHA-1 of the previous one gives five more 4-byte numbers: an endless
        // pseudo-random sequence that both sides can compute.
        let hash = sha1(&x);
        for chunk in hash.chunks_exact(4) {
            if set.len() >= count {
                break;
            }
            let y = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let index = y % num_pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
        x = hash.to_vec();
    }
    set
}

/// What one connection knows of the fast extension.
#[derive(Debug, Default)]
pub struct FastState {
    /// Both handshakes set the bit: the extension's messages and rules are in use.
    pub enabled: bool,
    /// Pieces we told the peer it may fetch while we choke it (what we sent as
    /// `allowed_fast`).
    pub we_allow: Vec<u32>,
    /// Pieces the peer told us we may fetch while it chokes us.
    pub they_allow: Vec<u32>,
}

impl FastState {
    pub fn new(enabled: bool) -> FastState {
        FastState {
            enabled,
            ..FastState::default()
        }
    }

    /// An `allowed_fast` from the peer; `false` when it is not remembered (a repeat, or the
    /// list is full).
    pub fn peer_allows(&mut self, index: u32) -> bool {
        if self.they_allow.contains(&index) || self.they_allow.len() >= MAX_REMEMBERED {
            return false;
        }
        self.they_allow.push(index);
        true
    }

    /// Whether we serve this piece to the peer even while we choke it.
    pub fn we_allow(&self, index: u32) -> bool {
        self.enabled && self.we_allow.contains(&index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BEP 6's own example: torrent of 1313 pieces, info hash `aa…aa`, peer at 80.4.4.200.
    /// (The address is only an input to the hash here; nothing is contacted.)
    #[test]
    fn the_beps_example_vector() {
        let info_hash = InfoHash([0xaa; 20]);
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        assert_eq!(
            allowed_fast_set(7, 1313, info_hash, ip),
            [1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(9, 1313, info_hash, ip),
            [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
    }

    #[test]
    fn the_last_byte_of_the_address_does_not_matter() {
        let info_hash = InfoHash([0x11; 20]);
        let a = allowed_fast_set(10, 500, info_hash, Ipv4Addr::new(127, 0, 0, 1));
        let b = allowed_fast_set(10, 500, info_hash, Ipv4Addr::new(127, 0, 0, 77));
        let c = allowed_fast_set(10, 500, info_hash, Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 10);
    }

    #[test]
    fn a_torrent_smaller_than_the_set_gets_every_piece_once() {
        let mut set = allowed_fast_set(10, 3, InfoHash([1; 20]), Ipv4Addr::LOCALHOST);
        set.sort();
        assert_eq!(set, [0, 1, 2]);
    }

    #[test]
    fn what_a_peer_allows_is_bounded_and_without_repeats() {
        let mut fast = FastState::new(true);
        assert!(fast.peer_allows(4));
        assert!(!fast.peer_allows(4));
        (100..1000).for_each(|i| {
            fast.peer_allows(i);
        });
        assert_eq!(fast.they_allow.len(), MAX_REMEMBERED);
    }
}
