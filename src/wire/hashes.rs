//! The hash messages of BitTorrent v2 (BEP 52, The BitTorrent Protocol Specification v2):
//! `hash request` (id 21), `hashes` (id 22) and `hash reject` (id 23) — their payloads as
//! values and back.
//!
//! A v2 peer that lacks part of a file's Merkle tree (a magnet link gives it only the `pieces
//! root` of each file) asks for it with a `hash request`, and gets the hashes with the *uncle*
//! hashes that link them to the root, or a `hash reject`. All three start with one header:
//!
//! ```text
//!   payload offset  0   pieces root   32 bytes   which file (the root of its tree)
//!                  32   base layer    u32        layers above the leaves (0: the leaves)
//!                  36   index         u32        first hash asked for, in the base layer
//!                  40   length        u32        hashes asked for: a power of two
//!                  44   proof layers  u32        ancestor layers to prove them with
//!                  48   (hashes only) `length` hashes of the base layer, then the uncles,
//!                       the one nearest the base first
//! ```
//!
//! BEP 52 omits the first `log2(length) - 1` proof layers: the hashes asked for already span
//! them. So a `hashes` message carries `length + max(0, proof layers + 1 - log2(length))`
//! hashes (libtorrent counts them so too), and its length is known from its header: a message
//! with a byte more or less is an error naming the offset where it goes wrong.
//!
//! Where this sits: `message.rs` frames these payloads; the peer thread answers a request from
//! the piece layers it holds (`peer::state::PieceLayers`); the trace prints the header and the
//! number of hashes.

use super::message::Message;
use crate::merkle::{self, Sha256Hash};
use thiserror::Error;

/// The header every one of the three messages starts with, in bytes.
pub const HEADER_LEN: usize = 48;

/// Most base-layer hashes one message may carry. BEP 52: length "SHOULD NOT be greater than
/// 512"; libtorrent asks for the piece layer 512 hashes at a time.
pub const MAX_HASHES_PER_MESSAGE: u32 = 512;

/// Most layers a tree can have above any node: no base layer or proof reaches past it.
pub const MAX_LAYERS: u32 = merkle::MAX_HEIGHT;

/// Where each field of the header starts in the payload (for errors that name an offset).
const BASE_LAYER_AT: usize = 32;
const INDEX_AT: usize = 36;
const LENGTH_AT: usize = 40;
const PROOF_LAYERS_AT: usize = 44;

/// The header of the three hash messages: which hashes of which file's tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashRange {
    /// The root of the file's tree, as the file tree of the info dictionary gives it.
    pub pieces_root: Sha256Hash,
    /// The layer of the hashes asked for, counted from the leaves (0).
    pub base_layer: u32,
    /// The first hash asked for, counted from the start of the base layer.
    pub index: u32,
    /// How many hashes of the base layer: a power of two.
    pub length: u32,
    /// How many layers above the base layer the proof reaches.
    pub proof_layers: u32,
}

/// A hash message that breaks a bound of BEP 52, with where it does.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HashesError {
    #[error("{message} message: a {found}-byte payload, shorter than its 48-byte header")]
    Short { message: &'static str, found: usize },
    #[error("{message} message: `{field}` {value} at payload offset {offset}: {rule}")]
    Bound {
        message: &'static str,
        field: &'static str,
        offset: usize,
        value: u32,
        rule: &'static str,
    },
    #[error(
        "hashes message: its header (length {length}, proof layers {proof_layers}) allows \
         {expected} hashes, {allowed} bytes from payload offset 48, but {found} bytes follow \
         (the first one wrong is at payload offset {offset})"
    )]
    Count {
        length: u32,
        proof_layers: u32,
        expected: usize,
        allowed: usize,
        found: usize,
        offset: usize,
    },
}

impl HashRange {
    /// Reads the header at the start of `payload` (the bytes after the message id).
    pub fn read(payload: &[u8], message: &'static str) -> Result<HashRange, HashesError> {
        let header: &[u8; HEADER_LEN] = payload
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(HashesError::Short {
            message,
            found: payload.len(),
        })?;
        let u32_at = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let mut root = [0u8; 32];
        root.copy_from_slice(&header[..32]);
        Ok(HashRange {
            pieces_root: Sha256Hash(root),
            base_layer: u32_at(BASE_LAYER_AT),
            index: u32_at(INDEX_AT),
            length: u32_at(LENGTH_AT),
            proof_layers: u32_at(PROOF_LAYERS_AT),
        })
    }

    /// Appends the 48-byte header to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.pieces_root.0);
        for n in [self.base_layer, self.index, self.length, self.proof_layers] {
            out.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// The bounds BEP 52 sets on every request: `length` a power of two of at most
    /// [`MAX_HASHES_PER_MESSAGE`], `index` a multiple of it, and no layer past [`MAX_LAYERS`].
    /// `message` names the message in the error.
    ///
    /// BEP 52 also wants `length` at least 2; 1 is let through, because libtorrent asks for 1
    /// when a file's last group of 512 pieces holds one piece.
    pub fn check(&self, message: &'static str) -> Result<(), HashesError> {
        let bound = |field, offset, value, rule| HashesError::Bound {
            message,
            field,
            offset,
            value,
            rule,
        };
        if !self.length.is_power_of_two() || self.length > MAX_HASHES_PER_MESSAGE {
            return Err(bound(
                "length",
                LENGTH_AT,
                self.length,
                "must be a power of two from 1 to 512",
            ));
        }
        if !self.index.is_multiple_of(self.length) {
            return Err(bound(
                "index",
                INDEX_AT,
                self.index,
                "must be a multiple of length",
            ));
        }
        if self.base_layer > MAX_LAYERS {
            return Err(bound(
                "base layer",
                BASE_LAYER_AT,
                self.base_layer,
                "is above the highest layer of any tree (63)",
            ));
        }
        if self.proof_layers > MAX_LAYERS - self.base_layer {
            return Err(bound(
                "proof layers",
                PROOF_LAYERS_AT,
                self.proof_layers,
                "reach above the highest layer of any tree (63)",
            ));
        }
        Ok(())
    }

    /// `log2(length)`: the layers the requested hashes span above the base layer. Only
    /// meaningful once [`HashRange::check`] passed (a power of two).
    pub fn span(&self) -> u32 {
        self.length.trailing_zeros()
    }

    /// The uncle hashes a `hashes` message carries after the base-layer hashes: BEP 52 omits
    /// the first `log2(length) - 1` proof layers, which the hashes themselves span.
    pub fn uncle_count(&self) -> u32 {
        (self.proof_layers + 1).saturating_sub(self.span())
    }

    /// Every hash of the `hashes` answer: `length`, then the uncles.
    pub fn hash_count(&self) -> usize {
        self.length as usize + self.uncle_count() as usize
    }

    /// The `hash request` for this range.
    pub fn request(self) -> Message {
        Message::HashRequest {
            pieces_root: self.pieces_root,
            base_layer: self.base_layer,
            index: self.index,
            length: self.length,
            proof_layers: self.proof_layers,
        }
    }

    /// The `hash reject` of this range: the same header as the request it answers.
    pub fn reject(self) -> Message {
        Message::HashReject {
            pieces_root: self.pieces_root,
            base_layer: self.base_layer,
            index: self.index,
            length: self.length,
            proof_layers: self.proof_layers,
        }
    }

    /// The `hashes` answer for this range; refused if the range breaks a bound or the number
    /// of hashes is not the one its header implies (the peer could not read it).
    pub fn answer(self, hashes: Vec<Sha256Hash>) -> Result<Message, HashesError> {
        self.check("hashes")?;
        let expected = self.hash_count();
        if hashes.len() != expected {
            return Err(self.count_error(hashes.len() * 32));
        }
        Ok(Message::Hashes {
            pieces_root: self.pieces_root,
            base_layer: self.base_layer,
            index: self.index,
            length: self.length,
            proof_layers: self.proof_layers,
            hashes,
        })
    }

    /// The error for `found` bytes after the header where [`HashRange::hash_count`] hashes
    /// belong, naming the offset of the first byte too many (or where bytes are missing).
    fn count_error(&self, found: usize) -> HashesError {
        let expected = self.hash_count();
        let allowed = expected * 32;
        HashesError::Count {
            length: self.length,
            proof_layers: self.proof_layers,
            expected,
            allowed,
            found,
            offset: HEADER_LEN + found.min(allowed),
        }
    }
}

/// Decodes the payload of id 21, 22 or 23 (the id byte already taken off).
///
/// A `hash request` or `hash reject` is read whatever its numbers say: a request that breaks
/// a bound is answered with a `hash reject` (as libtorrent answers it), not a hang-up. A
/// `hashes` message is checked in full, since its header says how many hashes follow.
pub(super) fn decode(id: u8, payload: &[u8]) -> Result<Message, HashesError> {
    match id {
        21 => Ok(HashRange::read(payload, "hash request")?.request()),
        23 => Ok(HashRange::read(payload, "hash reject")?.reject()),
        _ => decode_hashes(payload),
    }
}

/// A `hashes` payload: the header within its bounds, then exactly the hashes it implies.
fn decode_hashes(payload: &[u8]) -> Result<Message, HashesError> {
    let range = HashRange::read(payload, "hashes")?;
    range.check("hashes")?;
    let rest = &payload[HEADER_LEN..];
    // Compared before anything is allocated: the count comes from the header, and the
    // header's bounds keep it under 512 + 63 hashes.
    if rest.len() != range.hash_count() * 32 {
        return Err(range.count_error(rest.len()));
    }
    let hashes = rest
        .chunks_exact(32)
        .map(|chunk| {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(chunk);
            Sha256Hash(hash)
        })
        .collect();
    range.answer(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(length: u32, proof_layers: u32) -> HashRange {
        HashRange {
            pieces_root: Sha256Hash([0xab; 32]),
            base_layer: 2,
            index: 0,
            length,
            proof_layers,
        }
    }

    fn payload_of(message: &Message) -> Vec<u8> {
        message.to_bytes()[5..].to_vec()
    }

    #[test]
    fn the_header_layout_byte_by_byte() {
        let request = HashRange {
            pieces_root: Sha256Hash([7; 32]),
            base_layer: 3,
            index: 512,
            length: 512,
            proof_layers: 10,
        }
        .request();
        let bytes = request.to_bytes();
        assert_eq!(bytes[..5], [0, 0, 0, 49, 21], "49 = id + 48-byte header");
        assert_eq!(bytes[5..37], [7; 32]);
        assert_eq!(
            bytes[37..],
            [0, 0, 0, 3, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 10]
        );
    }

    #[test]
    fn uncles_omit_the_layers_the_hashes_span() {
        // BEP 52: the first log2(length) - 1 proof layers are omitted.
        assert_eq!(range(16, 3).uncle_count(), 0, "16 hashes span 4 layers");
        assert_eq!(range(16, 5).uncle_count(), 2);
        assert_eq!(range(2, 0).uncle_count(), 0);
        assert_eq!(range(2, 4).uncle_count(), 4);
        assert_eq!(range(512, 8).uncle_count(), 0);
        assert_eq!(range(512, 10).uncle_count(), 2);
        assert_eq!(
            range(1, 2).uncle_count(),
            3,
            "one hash: its own sibling too"
        );
        assert_eq!(range(4, 6).hash_count(), 4 + 5);
    }

    #[test]
    fn hashes_round_trip_and_carry_exactly_their_count() {
        let r = range(4, 3);
        let hashes: Vec<Sha256Hash> = (0..6u8).map(|i| Sha256Hash([i; 32])).collect();
        let m = r.answer(hashes.clone()).unwrap();
        assert_eq!(decode(22, &payload_of(&m)).unwrap(), m);
        assert_eq!(m.to_bytes().len(), 4 + 1 + 48 + 6 * 32);
        // One hash too few or too many for its header.
        assert_eq!(
            r.answer(hashes[..5].to_vec()),
            Err(HashesError::Count {
                length: 4,
                proof_layers: 3,
                expected: 6,
                allowed: 192,
                found: 160,
                offset: 208,
            })
        );
    }

    #[test]
    fn a_hashes_message_with_bytes_past_its_header_names_the_offset() {
        let m = range(2, 0).answer(vec![Sha256Hash::ZERO; 2]).unwrap();
        let mut payload = payload_of(&m);
        payload.push(0);
        let error = decode(22, &payload).unwrap_err();
        assert_eq!(
            error,
            HashesError::Count {
                length: 2,
                proof_layers: 0,
                expected: 2,
                allowed: 64,
                found: 65,
                offset: 112,
            }
        );
        assert!(error.to_string().contains("payload offset 112"), "{error}");
        payload.truncate(48 + 63);
        assert!(matches!(
            decode(22, &payload),
            Err(HashesError::Count { offset: 111, .. })
        ));
    }

    #[test]
    fn every_bound_of_a_hashes_header_is_checked_with_its_field_and_offset() {
        let cases = [
            (range(3, 0), "length", 40),
            (range(0, 0), "length", 40),
            (range(1024, 0), "length", 40),
            (
                HashRange {
                    index: 6,
                    ..range(4, 1)
                },
                "index",
                36,
            ),
            (
                HashRange {
                    base_layer: 64,
                    ..range(2, 0)
                },
                "base layer",
                32,
            ),
            (range(2, 62), "proof layers", 44),
        ];
        for (r, field, offset) in cases {
            let mut payload = Vec::new();
            r.write(&mut payload);
            match decode(22, &payload) {
                Err(HashesError::Bound {
                    field: f,
                    offset: o,
                    ..
                }) => assert_eq!((f, o), (field, offset), "{r:?}"),
                other => panic!("{r:?}: {other:?}"),
            }
            assert!(r.check("hash request").is_err());
        }
        assert!(range(512, 61).check("hash request").is_ok());
    }

    #[test]
    fn requests_and_rejects_are_read_whatever_their_numbers() {
        // Answered with a reject by the peer thread, not a hang-up.
        let odd = range(3, 70);
        for m in [odd.request(), odd.reject()] {
            let id = m.id().unwrap();
            assert_eq!(decode(id, &payload_of(&m)).unwrap(), m);
        }
        assert_eq!(
            decode(21, &[0; 47]),
            Err(HashesError::Short {
                message: "hash request",
                found: 47
            })
        );
    }
}
