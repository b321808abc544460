//! Which pieces a peer has: the bitfield (BEP 3 "bitfield") — walkthrough §6.
//!
//! One bit per piece, the high bit of the first byte for piece 0:
//!
//! ```text
//!   pieces 0..10, peer has 0, 2, 9:   1010 0000   0100 0000
//!                                     byte 0      byte 1: bit 9 set, then 6 spare bits = 0
//! ```
//!
//! The length must be exactly ⌈pieces ÷ 8⌉ bytes and the spare bits at the end must be zero:
//! Transmission drops peers that get this wrong, and so do we.

use super::WireError;
use std::fmt;

/// A set of piece indices, stored as the bitfield message carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    num_pieces: usize,
}

impl Bitfield {
    /// No pieces.
    pub fn new(num_pieces: usize) -> Bitfield {
        Bitfield {
            bits: vec![0; num_pieces.div_ceil(8)],
            num_pieces,
        }
    }

    /// Every piece.
    pub fn full(num_pieces: usize) -> Bitfield {
        let mut field = Bitfield::new(num_pieces);
        (0..num_pieces).for_each(|i| field.set(i));
        field
    }

    /// Checks a received bitfield's length and spare bits against the torrent's piece count.
    /// [W6.1]
    pub fn from_payload(bits: Vec<u8>, num_pieces: usize) -> Result<Bitfield, WireError> {
        let expected = num_pieces.div_ceil(8);
        if bits.len() != expected {
            return Err(WireError::BitfieldLength {
                length: bits.len(),
                expected,
            });
        }
        let spare = expected * 8 - num_pieces;
        if spare > 0 && bits[expected - 1] & ((1u8 << spare) - 1) != 0 {
            return Err(WireError::BitfieldSpareBits);
        }
        Ok(Bitfield { bits, num_pieces })
    }

    pub fn has(&self, index: usize) -> bool {
        index < self.num_pieces && self.bits[index / 8] & (0x80 >> (index % 8)) != 0
    }

    /// Marks a piece as present; an index past the end is ignored.
    pub fn set(&mut self, index: usize) {
        if index < self.num_pieces {
            self.bits[index / 8] |= 0x80 >> (index % 8);
        }
    }

    /// Marks a piece as absent; an index past the end is ignored.
    pub fn clear(&mut self, index: usize) {
        if index < self.num_pieces {
            self.bits[index / 8] &= !(0x80 >> (index % 8));
        }
    }

    pub fn count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub fn num_pieces(&self) -> usize {
        self.num_pieces
    }

    pub fn is_complete(&self) -> bool {
        self.count() == self.num_pieces
    }

    /// How many of our pieces `other` lacks: what this peer could give `other` (interest).
    pub fn count_missing_from(&self, other: &Bitfield) -> usize {
        self.bits
            .iter()
            .zip(&other.bits)
            .map(|(ours, theirs)| (ours & !theirs).count_ones() as usize)
            .sum()
    }

    /// The payload of a bitfield message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitfield({}/{} pieces)", self.count(), self.num_pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_high_first() {
        let field = Bitfield::from_payload(vec![0b1010_0000, 0b0100_0000], 10).unwrap();
        let have: Vec<usize> = (0..10).filter(|&i| field.has(i)).collect();
        assert_eq!(have, [0, 2, 9]);
        assert!(!field.has(10) && !field.has(1000));
        assert_eq!(format!("{field:?}"), "Bitfield(3/10 pieces)");
    }

    #[test]
    fn pieces_one_side_lacks() {
        let peer = Bitfield::from_payload(vec![0b1110_0000, 0b0100_0000], 10).unwrap();
        let ours = Bitfield::from_payload(vec![0b1000_0000, 0b0000_0000], 10).unwrap();
        assert_eq!(peer.count_missing_from(&ours), 3);
        assert_eq!(ours.count_missing_from(&peer), 0);
    }

    #[test]
    fn wrong_length_or_spare_bits_are_refused() {
        assert!(matches!(
            Bitfield::from_payload(vec![0xff], 10),
            Err(WireError::BitfieldLength {
                length: 1,
                expected: 2
            })
        ));
        assert!(matches!(
            Bitfield::from_payload(vec![0, 0, 0], 10),
            Err(WireError::BitfieldLength { .. })
        ));
        assert!(matches!(
            Bitfield::from_payload(vec![0xff, 0b1110_0000], 10),
            Err(WireError::BitfieldSpareBits)
        ));
        assert!(Bitfield::from_payload(vec![0xff, 0b1100_0000], 10).is_ok());
        assert!(Bitfield::from_payload(vec![0xff], 8).is_ok());
    }

    #[test]
    fn set_count_full() {
        let mut field = Bitfield::new(10);
        field.set(3);
        field.set(99); // out of range: ignored
        assert_eq!(field.count(), 1);
        assert!(Bitfield::full(10).is_complete());
        assert_eq!(Bitfield::full(10).as_bytes(), [0xff, 0b1100_0000]);
    }
}
