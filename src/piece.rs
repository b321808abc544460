//! Pieces and blocks: the arithmetic, and the SHA-1 check (BEP 3) — walkthrough §9.
//!
//! The content is one byte stream cut into pieces of `piece length` bytes (the last one
//! shorter); each piece is fetched as *blocks* of 16 KiB, the unit of a `request`:
//!
//! ```text
//!   stream   |<-------- piece 0 -------->|<-------- piece 1 -------->|<- piece 2 ->|
//!   piece 1  |block 0|block 1|block 2|block 3|        (begin = 0, 16384, 32768, 49152)
//!   last     |block 0|blk 1 |                          (the last block may be shorter)
//! ```
//!
//! A piece is kept only if the SHA-1 of its bytes equals the hash in the torrent
//! ([`PieceLayout::verify`]); otherwise it is simply fetched again. Nothing here does I/O.

use crate::encoding::sha1;
use crate::metainfo::{Info, PieceHash};
use std::fmt;

/// The unit of transfer: a request asks for at most 16 KiB (BEP 3 "request"), and real clients
/// disconnect peers that ask for more or send more. Pieces are cut into blocks of this size.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// A request for one block: the spec's `request` message fields.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRequest {
    pub index: u32,
    pub begin: u32,
    pub length: u32,
}

impl fmt::Debug for BlockRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Block {{ index: {}, begin: {}, length: {} }}",
            self.index, self.begin, self.length
        )
    }
}

/// How a torrent's bytes are cut into pieces, and what each piece must hash to.
#[derive(Clone)]
pub struct PieceLayout {
    pub piece_length: u64,
    pub total_length: u64,
    pub hashes: Vec<PieceHash>,
}

impl PieceLayout {
    pub fn new(info: &Info) -> PieceLayout {
        PieceLayout {
            piece_length: info.piece_length,
            total_length: info.total_length,
            hashes: info.pieces.clone(),
        }
    }

    pub fn num_pieces(&self) -> usize {
        self.hashes.len()
    }

    /// Where piece `index` starts in the byte stream.
    pub fn piece_offset(&self, index: u32) -> u64 {
        u64::from(index) * self.piece_length
    }

    /// Length of piece `index`: `piece length`, except for the last piece.
    pub fn piece_len(&self, index: u32) -> u32 {
        let rest = self.total_length.saturating_sub(self.piece_offset(index));
        rest.min(self.piece_length) as u32
    }

    pub fn num_blocks(&self, index: u32) -> u32 {
        self.piece_len(index).div_ceil(BLOCK_LEN)
    }

    /// The block requests that make up piece `index`, in order.
    pub fn blocks(&self, index: u32) -> impl Iterator<Item = BlockRequest> {
        let piece_len = self.piece_len(index);
        (0..self.num_blocks(index)).map(move |b| {
            let begin = b * BLOCK_LEN;
            BlockRequest {
                index,
                begin,
                length: BLOCK_LEN.min(piece_len - begin),
            }
        })
    }

    /// True if `request` is exactly one of the blocks of a piece: aligned to 16 KiB, with the
    /// block's exact length. Real clients send only such requests and punish others (libtorrent
    /// hangs up on a block over 16 KiB, rqbit rejects a misaligned one), so that is all we send
    /// and all we serve.
    pub fn is_valid_block(&self, request: &BlockRequest) -> bool {
        let in_range = (request.index as usize) < self.num_pieces();
        in_range
            && request.begin.is_multiple_of(BLOCK_LEN)
            && request.begin < self.piece_len(request.index)
            && request.length == BLOCK_LEN.min(self.piece_len(request.index) - request.begin)
    }

    /// The SHA-1 check: do these bytes hash to what the torrent says piece `index` is? [W9.1]
    pub fn verify(&self, index: u32, bytes: &[u8]) -> bool {
        let expected = self.hashes.get(index as usize);
        expected.is_some_and(|hash| {
            bytes.len() == self.piece_len(index) as usize && PieceHash(sha1(bytes)) == *hash
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3 pieces of 40,000 bytes over 100,000 bytes: the last piece is 20,000.
    fn layout() -> PieceLayout {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let hashes = data.chunks(40_000).map(|c| PieceHash(sha1(c))).collect();
        PieceLayout {
            piece_length: 40_000,
            total_length: 100_000,
            hashes,
        }
    }

    #[test]
    fn pieces_and_their_lengths() {
        let l = layout();
        assert_eq!(l.num_pieces(), 3);
        assert_eq!(
            (l.piece_len(0), l.piece_len(2), l.piece_len(3)),
            (40_000, 20_000, 0)
        );
        assert_eq!(l.piece_offset(2), 80_000);
    }

    #[test]
    fn blocks_are_16_kib_with_a_short_last_one() {
        let blocks: Vec<(u32, u32)> = layout().blocks(2).map(|b| (b.begin, b.length)).collect();
        assert_eq!(blocks, [(0, 16384), (16384, 3616)]);
        assert_eq!(layout().num_blocks(0), 3);
    }

    #[test]
    fn only_exact_aligned_blocks_are_valid() {
        let l = layout();
        assert!(l.is_valid_block(&BlockRequest {
            index: 0,
            begin: 16384,
            length: 16384
        }));
        assert!(l.is_valid_block(&BlockRequest {
            index: 2,
            begin: 16384,
            length: 3616
        }));
        assert!(!l.is_valid_block(&BlockRequest {
            index: 0,
            begin: 100,
            length: 16384
        })); // misaligned
        assert!(!l.is_valid_block(&BlockRequest {
            index: 0,
            begin: 0,
            length: 32768
        })); // too long
        assert!(!l.is_valid_block(&BlockRequest {
            index: 0,
            begin: 0,
            length: 100
        })); // too short
        assert!(!l.is_valid_block(&BlockRequest {
            index: 3,
            begin: 0,
            length: 16384
        })); // no piece 3
        assert!(!l.is_valid_block(&BlockRequest {
            index: 2,
            begin: 32768,
            length: 16384
        })); // past the end
    }

    #[test]
    fn verification_is_the_sha1_check() {
        let l = layout();
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        assert!(l.verify(1, &data[40_000..80_000]));
        assert!(!l.verify(1, &data[0..40_000]));
        assert!(!l.verify(2, &data[80_000..99_999])); // one byte short
        assert!(!l.verify(9, &data[..1]));
    }
}
