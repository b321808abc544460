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
//! ([`PieceLayout::verify`]); otherwise it is simply fetched again. A v2-only torrent (BEP 52)
//! checks a piece by its Merkle root instead: the SHA-256 tree of its 16 KiB blocks must give
//! the hash the torrent's piece layer holds for it (see `crate::merkle`). Nothing here does I/O.

use crate::encoding::sha1;
use crate::merkle::{self, BlocksPerPiece, Sha256Hash};
use crate::metainfo::{Info, Metainfo, PieceHash};
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
    /// A v2-only torrent: each piece's own length and Merkle root, in place of `hashes`.
    pub v2: Option<Vec<V2Piece>>,
}

/// One piece of a v2-only torrent (BEP 52). Pieces never span files: the last piece of each
/// file is as long as what is left of the file, and the next file starts a new piece.
#[derive(Clone, Debug)]
pub struct V2Piece {
    pub len: u32,
    /// The root its blocks must hash to: the file's piece layer entry, or, for a file that
    /// fits in one piece, the file's pieces root.
    pub root: Sha256Hash,
    /// The file fits in this one piece: its tree has only as many leaves as it needs (the next
    /// power of two), not a whole piece's worth.
    pub whole_file: bool,
}

/// Why a v2-only torrent cannot be downloaded as it is.
#[derive(Debug, thiserror::Error)]
pub enum V2LayoutError {
    #[error(
        "{0}: its piece layer is not in the torrent (a torrent from a magnet link, or one          made without them); peerwire cannot fetch piece layers from peers yet"
    )]
    MissingPieceLayer(String),
}

impl PieceLayout {
    /// A v1 layout: the stream cut every `piece length` bytes, SHA-1 per piece. A hybrid
    /// torrent (BEP 52) is checked this way too; its v1 and v2 halves describe the same bytes.
    pub fn new(info: &Info) -> PieceLayout {
        PieceLayout {
            piece_length: info.piece_length,
            total_length: info.total_length,
            hashes: info.pieces.clone(),
            v2: None,
        }
    }

    /// The layout any torrent needs: v1 (and hybrid) as [`PieceLayout::new`], a v2-only one
    /// from its files' roots and piece layers.
    pub fn of(metainfo: &Metainfo) -> Result<PieceLayout, V2LayoutError> {
        let mut layout = PieceLayout::new(&metainfo.info);
        let Some(v2) = metainfo
            .v2
            .as_ref()
            .filter(|_| metainfo.version == crate::metainfo::MetaVersion::V2)
        else {
            return Ok(layout);
        };
        let piece_length = metainfo.info.piece_length;
        let mut pieces = Vec::new();
        // In file-tree order, the order of the byte stream; empty files have no pieces.
        for file in &v2.files {
            let Some(root) = file.pieces_root else {
                continue;
            };
            if file.length <= piece_length {
                pieces.push(V2Piece {
                    len: file.length as u32, // at most one piece, which fits 32 bits
                    root,
                    whole_file: true,
                });
                continue;
            }
            if file.piece_layer.is_empty() {
                return Err(V2LayoutError::MissingPieceLayer(file.display_path()));
            }
            // [W18.4] One piece per entry of the file's piece layer; only the last is short.
            for (k, root) in file.piece_layer.iter().enumerate() {
                let start = k as u64 * piece_length;
                pieces.push(V2Piece {
                    len: (file.length - start).min(piece_length) as u32,
                    root: *root,
                    whole_file: false,
                });
            }
        }
        layout.v2 = Some(pieces);
        Ok(layout)
    }

    pub fn num_pieces(&self) -> usize {
        match &self.v2 {
            Some(pieces) => pieces.len(),
            None => self.hashes.len(),
        }
    }

    /// Where piece `index` starts in the byte stream.
    pub fn piece_offset(&self, index: u32) -> u64 {
        u64::from(index) * self.piece_length
    }

    /// Length of piece `index`: `piece length`, except for the last piece (of the torrent in
    /// v1, of each file in v2).
    pub fn piece_len(&self, index: u32) -> u32 {
        if let Some(pieces) = &self.v2 {
            return pieces.get(index as usize).map_or(0, |p| p.len);
        }
        let rest = self.total_length.saturating_sub(self.piece_offset(index));
        rest.min(self.piece_length) as u32
    }

    /// How far into piece `index` a peer may ask: the piece itself, and in a v2-only torrent
    /// up to the end of its last 16 KiB block. libtorrent asks for the last block of a file
    /// whole (v2 hashes whole 16 KiB blocks); the bytes past the file's end are zeros, as
    /// padding is.
    pub fn wire_len(&self, index: u32) -> u32 {
        let len = self.piece_len(index);
        match &self.v2 {
            // [W18.6]
            Some(_) => len
                .div_ceil(BLOCK_LEN)
                .saturating_mul(BLOCK_LEN)
                .min(self.piece_length as u32),
            None => len,
        }
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
        if let Some(pieces) = &self.v2 {
            return self.verify_v2(pieces, index, bytes);
        }
        let expected = self.hashes.get(index as usize);
        expected.is_some_and(|hash| {
            bytes.len() == self.piece_len(index) as usize && PieceHash(sha1(bytes)) == *hash
        })
    }
}

impl PieceLayout {
    /// The v2 check (BEP 52): SHA-256 of each 16 KiB block, then pairs of hashes up to one root.
    fn verify_v2(&self, pieces: &[V2Piece], index: u32, bytes: &[u8]) -> bool {
        let Some(piece) = pieces.get(index as usize) else {
            return false;
        };
        if bytes.len() != piece.len as usize {
            return false;
        }
        let leaves = merkle::leaf_hashes(bytes);
        // [W18.5] A file of one piece is its own tree; a piece of a longer file is a subtree
        // of a whole piece's width, padded with zero hashes past the file's end.
        let root = match piece.whole_file {
            true => merkle::root_of(&leaves),
            false => match BlocksPerPiece::for_piece_length(self.piece_length) {
                Ok(per_piece) => merkle::piece_root(&leaves, per_piece),
                Err(_) => return false, // refused when the torrent was loaded
            },
        };
        root == piece.root
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
            v2: None,
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

    /// A v2 layout by hand: a file of 80 KiB in 32 KiB pieces (32 + 32 + 16) and a file of
    /// 10 KiB (one piece, its own tree), with the roots `merkle` computes.
    fn v2_layout() -> (PieceLayout, Vec<u8>, Vec<u8>) {
        let big: Vec<u8> = (0..80 * 1024u32).map(|i| (i % 251) as u8).collect();
        let small: Vec<u8> = (0..10 * 1024u32).map(|i| (i % 13) as u8).collect();
        let per_piece = BlocksPerPiece::for_piece_length(32 * 1024).unwrap();
        let layer = merkle::piece_layer(&merkle::leaf_hashes(&big), per_piece);
        assert_eq!(layer.len(), 3);
        let mut pieces: Vec<V2Piece> = layer
            .iter()
            .zip([32 * 1024, 32 * 1024, 16 * 1024])
            .map(|(root, len)| V2Piece {
                len,
                root: *root,
                whole_file: false,
            })
            .collect();
        pieces.push(V2Piece {
            len: 10 * 1024,
            root: merkle::root_of(&merkle::leaf_hashes(&small)),
            whole_file: true,
        });
        let layout = PieceLayout {
            piece_length: 32 * 1024,
            // The small file starts at the next piece boundary: 96 KiB in.
            total_length: 96 * 1024 + 10 * 1024,
            hashes: Vec::new(),
            v2: Some(pieces),
        };
        (layout, big, small)
    }

    #[test]
    fn v2_pieces_are_checked_by_their_merkle_roots_and_end_with_their_file() {
        let (layout, big, small) = v2_layout();
        assert_eq!(layout.num_pieces(), 4);
        assert_eq!(
            layout.piece_len(2),
            16 * 1024,
            "the last piece of the first file"
        );
        assert_eq!(
            layout.piece_offset(3),
            96 * 1024,
            "the next file starts a piece"
        );
        assert!(layout.verify(0, &big[..32 * 1024]));
        assert!(layout.verify(2, &big[64 * 1024..]));
        assert!(layout.verify(3, &small));
        let mut broken = small.clone();
        broken[5_000] ^= 1;
        assert!(!layout.verify(3, &broken));
        assert!(
            !layout.verify(1, &big[..32 * 1024]),
            "another piece's bytes"
        );
        assert!(
            !layout.verify(2, &big[64 * 1024..80 * 1024 - 1]),
            "one byte short"
        );
    }

    #[test]
    fn a_peer_may_ask_for_the_last_block_of_a_v2_file_whole() {
        let (layout, _, _) = v2_layout();
        // 10 KiB of file: libtorrent asks for the 16 KiB block, the rest read as zeros.
        assert_eq!(layout.wire_len(3), 16 * 1024);
        assert_eq!(layout.wire_len(0), 32 * 1024);
        let v1 = PieceLayout { v2: None, ..layout };
        assert_eq!(v1.wire_len(3), v1.piece_len(3));
    }
}
