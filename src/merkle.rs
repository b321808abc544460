//! # Merkle trees of BitTorrent v2 (BEP 52, The BitTorrent Protocol Specification v2)
//!
//! A v2 torrent does not list one hash per piece of the whole torrent, as v1 does. Each file
//! gets a binary hash tree of its own, built with SHA-256 from the file's 16 KiB blocks, and
//! the torrent stores only its top, the file's `pieces root`:
//!
//! ```text
//!                        root                       <- `pieces root` in the file tree
//!                /                  \
//!           h(01)                    h(23)          <- the piece layer when a piece is 2 blocks
//!          /     \                  /     \
//!      h(b0)   h(b1)            h(b2)    0000…      <- leaves: SHA-256 of each 16 KiB block
//!       b0       b1               b2    (no block)
//! ```
//!
//! The rules, all from BEP 52:
//!
//! - A leaf is the SHA-256 of one 16 KiB block of the file; the last block may be shorter, and
//!   is hashed as it is (not filled up with zeros).
//! - The leaves are padded up to a power of two with *zero hashes* (32 zero bytes), not with the
//!   hash of a zero-filled block. A padding node higher up is the hash of two padding nodes
//!   below it ([`pad_hash`]).
//! - A parent is the SHA-256 of its two children's hashes, left then right.
//! - The *piece layer* is the layer whose nodes each cover one piece (`piece length` bytes):
//!   the leaves themselves when a piece is 16 KiB, three layers up when it is 128 KiB. The
//!   `piece layers` dictionary of a `.torrent` holds it for every file larger than one piece,
//!   without the nodes that cover nothing but padding. A file of one piece or less has no
//!   piece layer: its root is all there is.
//!
//! Where this sits in the data flow: `metainfo` checks each file's piece layer against its
//! root when a torrent is loaded ([`root_from_layer`]); a downloader checks a piece by hashing
//! its blocks ([`leaf_hashes`], [`piece_root`]) and comparing with the piece layer; the `hash
//! request` and `hashes` messages carry parts of a tree with the *uncle* hashes that link them
//! to the root ([`proof`], [`verify_proof`]). Everything here is a pure function of its
//! arguments: no I/O, no state.

use crate::encoding::to_hex;
use sha2::{Digest, Sha256};
use std::fmt;
use thiserror::Error;

/// Bytes under one leaf of the tree: BEP 52 fixes it at 16 KiB.
pub const LEAF_BLOCK_LEN: usize = 16 * 1024;

/// The deepest tree we ever build: 2^63 leaves of 16 KiB is far beyond any file length a
/// `u64` can state, so no real height comes near it; it bounds loops on hostile input.
pub const MAX_HEIGHT: u32 = 63;

/// One SHA-256 digest: a leaf, an inner node, a root, or a v2 piece hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sha256Hash(pub [u8; 32]);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MerkleError {
    #[error("a SHA-256 hash is 32 bytes, not {0}")]
    WrongLength(usize),
    #[error("node {index} asked for, but the layer has only {len} nodes")]
    IndexOutOfRange { index: usize, len: usize },
    #[error("piece length {0} is not a power of two of at least 16 KiB (BEP 52)")]
    BadPieceLength(u64),
}

impl Sha256Hash {
    /// The zero hash: a padding leaf; also what stands for "no root" (an empty file).
    pub const ZERO: Sha256Hash = Sha256Hash([0; 32]);

    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Hash {
        Sha256Hash(Sha256::digest(bytes).into())
    }

    /// The parent of two nodes: the SHA-256 of the left hash followed by the right one.
    pub fn parent(left: &Sha256Hash, right: &Sha256Hash) -> Sha256Hash {
        let mut hasher = Sha256::new();
        hasher.update(left.0);
        hasher.update(right.0);
        Sha256Hash(hasher.finalize().into())
    }

    /// Exactly 32 bytes as a hash.
    pub fn from_slice(bytes: &[u8]) -> Result<Sha256Hash, MerkleError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| MerkleError::WrongLength(bytes.len()))?;
        Ok(Sha256Hash(array))
    }

    /// Cuts a string of concatenated hashes into hashes; its length must be a multiple of 32.
    pub fn split_all(bytes: &[u8]) -> Result<Vec<Sha256Hash>, MerkleError> {
        if !bytes.len().is_multiple_of(32) {
            return Err(MerkleError::WrongLength(bytes.len()));
        }
        let hash =
            |chunk: &[u8]| Sha256Hash(chunk.try_into().expect("chunks_exact(32) yields 32 bytes"));
        Ok(bytes.chunks_exact(32).map(hash).collect())
    }

    pub fn is_zero(&self) -> bool {
        *self == Sha256Hash::ZERO
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl fmt::Display for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hash({})", self.to_hex())
    }
}

/// How many leaves one piece covers, as a power of two: a piece of `16 KiB << height` bytes
/// sits `height` layers above the leaves. Only a valid v2 piece length makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlocksPerPiece {
    height: u32,
}

impl BlocksPerPiece {
    /// BEP 52: "It must be a power of two and at least 16KiB."
    pub fn for_piece_length(piece_length: u64) -> Result<BlocksPerPiece, MerkleError> {
        let valid = piece_length.is_power_of_two() && piece_length >= LEAF_BLOCK_LEN as u64;
        if !valid {
            return Err(MerkleError::BadPieceLength(piece_length));
        }
        let height = piece_length.trailing_zeros() - LEAF_BLOCK_LEN.trailing_zeros();
        Ok(BlocksPerPiece { height })
    }

    /// The layer of the piece hashes, counted from the leaves (0 for 16 KiB pieces).
    pub fn height(self) -> u32 {
        self.height
    }

    /// Leaves under one piece: `2^height`, saturating on a 32-bit machine.
    pub fn count(self) -> usize {
        1usize.checked_shl(self.height).unwrap_or(usize::MAX)
    }
}

/// The SHA-256 of each 16 KiB block of `data` (the last one may be shorter): the leaves.
/// Empty data has no blocks, hence no leaves.
pub fn leaf_hashes(data: &[u8]) -> Vec<Sha256Hash> {
    data.chunks(LEAF_BLOCK_LEN).map(Sha256Hash::of).collect()
}

/// A padding node `height` layers above the leaves: the root of `2^height` zero leaves.
/// `pad_hash(0)` is the zero hash itself. Heights above [`MAX_HEIGHT`] are cut to it.
pub fn pad_hash(height: u32) -> Sha256Hash {
    let mut node = Sha256Hash::ZERO;
    for _ in 0..height.min(MAX_HEIGHT) {
        node = Sha256Hash::parent(&node, &node);
    }
    node
}

/// The layer above `layer`, whose nodes are `height` layers above the leaves: one parent per
/// pair, and a lone last node paired with a padding node of its height.
pub fn parent_layer(layer: &[Sha256Hash], height: u32) -> Vec<Sha256Hash> {
    let pad = pad_hash(height);
    // `chunks(2)` never yields an empty chunk, so `pair[0]` is there; a missing right child
    // is padding.
    // [W18.2] Each parent hashes its two children; a missing right child is padding.
    layer
        .chunks(2)
        .map(|pair| Sha256Hash::parent(&pair[0], pair.get(1).unwrap_or(&pad)))
        .collect()
}

/// The root above a layer whose nodes are `height` layers above the leaves, the layer padded
/// to a power of two with padding nodes of that height. A layer of one node is its own root;
/// an empty layer gives the zero hash (an empty file has no root).
pub fn root_from_layer(layer: &[Sha256Hash], height: u32) -> Sha256Hash {
    let mut current = layer.to_vec();
    let mut height = height;
    // Each round halves the layer (rounding up), so this ends after log2(len) rounds.
    while current.len() > 1 {
        current = parent_layer(&current, height);
        height += 1;
    }
    current.first().copied().unwrap_or(Sha256Hash::ZERO)
}

/// A file's root from its leaves (BEP 52 `pieces root`): the leaves padded with zero hashes
/// to a power of two, hashed pairwise up to one node.
pub fn root_of(leaves: &[Sha256Hash]) -> Sha256Hash {
    root_from_layer(leaves, 0)
}

/// The root of one piece's subtree from the hashes of its blocks: the blocks padded with zero
/// hashes up to a full piece's worth, which is what the last, short piece of a file needs.
///
/// This is what a piece of a file *larger than one piece* must match in its piece layer. A file
/// of one piece or less has no piece layer: its single piece must match the file's root, which
/// is [`root_of`] its blocks (padded only to a power of two of its own blocks, not to a whole
/// piece).
pub fn piece_root(block_hashes: &[Sha256Hash], per_piece: BlocksPerPiece) -> Sha256Hash {
    let mut layer = block_hashes.to_vec();
    for height in 0..per_piece.height() {
        layer = parent_layer(&layer, height);
    }
    match layer.as_slice() {
        [root] => *root,
        // More blocks than one piece holds, or none: not the subtree of one piece.
        [] => pad_hash(per_piece.height()),
        _ => root_from_layer(&layer, per_piece.height()),
    }
}

/// The piece layer of a file from its leaves: one node per piece, each the root of that
/// piece's subtree ([`piece_root`]). Empty for a file of one piece or less, which has no
/// piece layer (BEP 52: only files larger than one piece have a `piece layers` entry).
pub fn piece_layer(leaves: &[Sha256Hash], per_piece: BlocksPerPiece) -> Vec<Sha256Hash> {
    if leaves.len() <= per_piece.count() {
        return Vec::new();
    }
    leaves
        .chunks(per_piece.count())
        .map(|blocks| piece_root(blocks, per_piece))
        .collect()
}

/// The uncle hashes that link node `index` of `layer` to the root, the sibling nearest the
/// node first (what a `hashes` message carries after the hashes asked for, BEP 52).
///
/// `layer` is a whole layer of one file's tree, `height` layers above the leaves, without the
/// padding nodes at its end; the tree above it is padded as [`root_from_layer`] pads it. A
/// `hashes` message that asks for fewer proof layers takes the first ones of this list.
pub fn proof(
    layer: &[Sha256Hash],
    height: u32,
    index: usize,
) -> Result<Vec<Sha256Hash>, MerkleError> {
    if index >= layer.len() {
        return Err(MerkleError::IndexOutOfRange {
            index,
            len: layer.len(),
        });
    }
    let mut uncles = Vec::new();
    let mut current = layer.to_vec();
    let (mut index, mut height) = (index, height);
    while current.len() > 1 {
        // The sibling may be past the end of the layer: then it is padding.
        let sibling = current
            .get(index ^ 1)
            .copied()
            .unwrap_or_else(|| pad_hash(height));
        uncles.push(sibling);
        current = parent_layer(&current, height);
        index /= 2;
        height += 1;
    }
    Ok(uncles)
}

/// Whether `node`, the `index`-th of its layer, leads to `root` through `uncles` (nearest
/// first, as [`proof`] gives them): at each step the index's lowest bit says whether the node
/// is the left (0) or the right (1) child.
pub fn verify_proof(
    node: Sha256Hash,
    index: usize,
    uncles: &[Sha256Hash],
    root: &Sha256Hash,
) -> bool {
    if uncles.len() > MAX_HEIGHT as usize {
        return false;
    }
    let mut current = node;
    let mut index = index;
    for uncle in uncles {
        current = if index.is_multiple_of(2) {
            Sha256Hash::parent(&current, uncle)
        } else {
            Sha256Hash::parent(uncle, &current)
        };
        index /= 2;
    }
    // A proof too short for the index ends above a node that is not the root.
    index == 0 && current == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(byte: u8) -> Sha256Hash {
        Sha256Hash::of(&[byte])
    }

    fn per_piece(piece_length: u64) -> BlocksPerPiece {
        BlocksPerPiece::for_piece_length(piece_length).unwrap()
    }

    #[test]
    fn sha256_of_a_known_string() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            Sha256Hash::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            format!("{:?}", Sha256Hash::ZERO),
            format!("Sha256Hash({})", "00".repeat(32))
        );
    }

    #[test]
    fn a_parent_hashes_left_then_right() {
        let (a, b) = (h(1), h(2));
        let mut both = a.0.to_vec();
        both.extend_from_slice(&b.0);
        assert_eq!(Sha256Hash::parent(&a, &b), Sha256Hash::of(&both));
        assert_ne!(Sha256Hash::parent(&a, &b), Sha256Hash::parent(&b, &a));
    }

    #[test]
    fn padding_leaves_are_zero_hashes_and_padding_nodes_their_parents() {
        assert_eq!(pad_hash(0), Sha256Hash::ZERO);
        let z = Sha256Hash::ZERO;
        let p1 = Sha256Hash::parent(&z, &z);
        assert_eq!(pad_hash(1), p1);
        assert_eq!(pad_hash(2), Sha256Hash::parent(&p1, &p1));
        // Not the hash of a zero-filled block: padding is not data.
        assert_ne!(pad_hash(0), Sha256Hash::of(&[0u8; LEAF_BLOCK_LEN]));
    }

    #[test]
    fn roots_of_tiny_trees_built_by_hand() {
        let (a, b, c) = (h(1), h(2), h(3));
        assert_eq!(root_of(&[]), Sha256Hash::ZERO);
        assert_eq!(root_of(&[a]), a, "one leaf is its own root");
        assert_eq!(root_of(&[a, b]), Sha256Hash::parent(&a, &b));
        // Three leaves: the fourth is a zero hash.
        let left = Sha256Hash::parent(&a, &b);
        let right = Sha256Hash::parent(&c, &Sha256Hash::ZERO);
        assert_eq!(root_of(&[a, b, c]), Sha256Hash::parent(&left, &right));
        // Five leaves: padded to eight; the right half is c' over three zero leaves.
        let d = h(4);
        let e = h(5);
        let abcd = Sha256Hash::parent(&Sha256Hash::parent(&a, &b), &Sha256Hash::parent(&c, &d));
        let e_pad = Sha256Hash::parent(&Sha256Hash::parent(&e, &pad_hash(0)), &pad_hash(1));
        assert_eq!(root_of(&[a, b, c, d, e]), Sha256Hash::parent(&abcd, &e_pad));
    }

    #[test]
    fn leaves_are_16_kib_blocks_and_the_last_is_hashed_short() {
        let data = vec![7u8; LEAF_BLOCK_LEN + 10];
        let leaves = leaf_hashes(&data);
        assert_eq!(leaves.len(), 2);
        assert_eq!(leaves[0], Sha256Hash::of(&data[..LEAF_BLOCK_LEN]));
        assert_eq!(leaves[1], Sha256Hash::of(&[7u8; 10]));
        assert!(leaf_hashes(&[]).is_empty());
    }

    #[test]
    fn the_known_root_of_64_kib_of_zeros() {
        // libtorrent's v2.torrent: the file `test64K` is 65,536 zero bytes (its v1 piece hash
        // is the SHA-1 of that), and libtorrent's test gives its pieces root.
        let leaves = leaf_hashes(&vec![0u8; 64 * 1024]);
        assert_eq!(
            root_of(&leaves).to_hex(),
            "60aae9c7b428f87e0713e88229e18f0adf12cd7b22a0dd8a92bb2485eb7af242"
        );
        // And v2_multipiece_file.torrent's `test1MB`, 1 MiB of zeros.
        let leaves = leaf_hashes(&vec![0u8; 1024 * 1024]);
        assert_eq!(
            root_of(&leaves).to_hex(),
            "515ea9181744b817744ded9d2e8e9dc6a8450c0b0c52e24b5077f302ffbd9008"
        );
    }

    #[test]
    fn piece_lengths_must_be_powers_of_two_of_at_least_16_kib() {
        assert_eq!(per_piece(16384).height(), 0);
        assert_eq!(per_piece(16384).count(), 1);
        assert_eq!(per_piece(131072).height(), 3);
        assert_eq!(per_piece(131072).count(), 8);
        for bad in [0, 8192, 32767, 49152, u64::MAX] {
            assert_eq!(
                BlocksPerPiece::for_piece_length(bad),
                Err(MerkleError::BadPieceLength(bad))
            );
        }
    }

    #[test]
    fn the_piece_layer_omits_pure_padding_and_hashes_back_to_the_root() {
        // 5 leaves, pieces of 2 blocks: 3 pieces, the last with one real block.
        let leaves: Vec<Sha256Hash> = (1..=5).map(h).collect();
        let two = per_piece(32768);
        let layer = piece_layer(&leaves, two);
        assert_eq!(layer.len(), 3, "the fourth node would cover only padding");
        assert_eq!(layer[0], Sha256Hash::parent(&leaves[0], &leaves[1]));
        assert_eq!(layer[2], Sha256Hash::parent(&leaves[4], &Sha256Hash::ZERO));
        assert_eq!(root_from_layer(&layer, two.height()), root_of(&leaves));
        // Each piece verifies from its own blocks.
        assert_eq!(piece_root(&leaves[4..], two), layer[2]);
        // 16 KiB pieces: the piece layer is the leaves.
        assert_eq!(piece_layer(&leaves, per_piece(16384)), leaves);
    }

    #[test]
    fn a_file_of_one_piece_or_less_has_no_piece_layer() {
        let leaves: Vec<Sha256Hash> = (1..=3).map(h).collect();
        let four = per_piece(65536);
        assert!(piece_layer(&leaves, four).is_empty());
        assert!(piece_layer(&leaves[..1], per_piece(16384)).is_empty());
        // Its root is over its own blocks padded to 4, which here is a whole piece...
        assert_eq!(piece_root(&leaves, four), root_of(&leaves));
        // ...but a one-block file in 64 KiB pieces has the block's hash as its root, not a
        // piece subtree padded to four leaves.
        assert_eq!(root_of(&leaves[..1]), leaves[0]);
        assert_ne!(piece_root(&leaves[..1], four), leaves[0]);
    }

    #[test]
    fn large_layers_hash_back_to_the_same_root_at_every_piece_length() {
        let data: Vec<u8> = (0..40 * LEAF_BLOCK_LEN + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        let leaves = leaf_hashes(&data);
        let root = root_of(&leaves);
        // 41 leaves: up to 32 blocks per piece the file is larger than one piece.
        assert!(piece_layer(&leaves, per_piece(16384 << 6)).is_empty());
        for shift in 0..6 {
            let pp = per_piece(16384 << shift);
            let layer = piece_layer(&leaves, pp);
            assert_eq!(layer.len(), leaves.len().div_ceil(pp.count()));
            assert_eq!(root_from_layer(&layer, pp.height()), root, "{shift}");
        }
    }

    #[test]
    fn proofs_link_every_node_to_the_root_and_fail_when_tampered() {
        let leaves: Vec<Sha256Hash> = (1..=11).map(h).collect();
        let root = root_of(&leaves);
        for (i, leaf) in leaves.iter().enumerate() {
            let uncles = proof(&leaves, 0, i).unwrap();
            assert_eq!(uncles.len(), 4, "11 leaves pad to 16: four levels");
            assert!(verify_proof(*leaf, i, &uncles, &root), "leaf {i}");
            assert!(
                !verify_proof(*leaf, i ^ 1, &uncles, &root),
                "leaf {i} as {}",
                i ^ 1
            );
            let mut bad = uncles.clone();
            bad[3].0[0] ^= 1;
            assert!(!verify_proof(*leaf, i, &bad, &root));
            assert!(!verify_proof(*leaf, i, &uncles[..3], &root));
        }
        // The last leaf's first uncle is padding.
        assert_eq!(proof(&leaves, 0, 10).unwrap()[0], Sha256Hash::ZERO);
        assert_eq!(
            proof(&leaves, 0, 11),
            Err(MerkleError::IndexOutOfRange { index: 11, len: 11 })
        );
    }

    #[test]
    fn a_proof_from_the_piece_layer_uses_padding_of_that_height() {
        let leaves: Vec<Sha256Hash> = (1..=10).map(h).collect();
        let four = per_piece(65536);
        let layer = piece_layer(&leaves, four);
        assert_eq!(layer.len(), 3);
        let root = root_of(&leaves);
        let uncles = proof(&layer, four.height(), 2).unwrap();
        assert_eq!(uncles[0], pad_hash(2));
        assert!(verify_proof(layer[2], 2, &uncles, &root));
        // A subtree asked for in a `hash request` (here pieces 0 and 1) is proved from its own
        // root, one layer up.
        let pair_root = Sha256Hash::parent(&layer[0], &layer[1]);
        assert_eq!(uncles_above(&layer, 0), proof(&layer, 2, 0).unwrap()[1..]);
        assert!(verify_proof(
            pair_root,
            0,
            &proof(&layer, 2, 0).unwrap()[1..],
            &root
        ));
    }

    fn uncles_above(layer: &[Sha256Hash], index: usize) -> Vec<Sha256Hash> {
        let parents = parent_layer(layer, 2);
        proof(&parents, 3, index / 2).unwrap()
    }

    #[test]
    fn hashes_are_cut_from_strings_of_32_bytes() {
        assert_eq!(Sha256Hash::split_all(&[0u8; 64]).unwrap().len(), 2);
        assert_eq!(
            Sha256Hash::split_all(&[0u8; 33]),
            Err(MerkleError::WrongLength(33))
        );
        assert_eq!(
            Sha256Hash::from_slice(&[0u8; 20]),
            Err(MerkleError::WrongLength(20))
        );
        assert!(Sha256Hash::from_slice(&[1u8; 32]).is_ok_and(|h| !h.is_zero()));
    }
}
