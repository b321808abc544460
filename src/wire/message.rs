//! Messages and framing (BEP 3 "peer messages") — walkthrough §5.
//!
//! After the handshake, everything is a length-prefixed message:
//!
//! ```text
//!   ┌──────────────────┬──────┬─────────────────────────┐
//!   │ length u32 (BE)  │ id u8│ payload (length - 1)     │     length 0 = keep-alive (no id)
//!   └──────────────────┴──────┴─────────────────────────┘
//!   id 0 choke · 1 unchoke · 2 interested · 3 not interested       (no payload)
//!      4 have      index u32
//!      5 bitfield  one bit per piece, high bit first                (see `bitfield`)
//!      6 request   index u32 · begin u32 · length u32
//!      7 piece     index u32 · begin u32 · block (the bytes)
//!      8 cancel    index u32 · begin u32 · length u32
//!      9 port      u16 (DHT port, BEP 5)
//!     13 suggest piece   index u32                                  (BEP 6, the fast extension:
//!     14 have all        (no payload)                                only when both peers set
//!     15 have none       (no payload)                                reserved bit 0x04 of
//!     16 reject request  index u32 · begin u32 · length u32          byte 7, see `handshake`)
//!     17 allowed fast    index u32
//!     20 extended  extension id u8 · payload                         (BEP 10)
//!     21 hash request  pieces root · base layer · index · length · proof layers   (BEP 52,
//!     22 hashes        the same header, then the hashes and their proof        `hashes.rs`)
//!     23 hash reject   the same header as the request it refuses
//! ```
//!
//! The length comes from the peer, so it is checked against a maximum before a single byte is
//! allocated; a fixed-size message with the wrong length is an error; a message id we
//! do not know is skipped (its length is known) and logged, not fatal: real clients send
//! messages of extensions we do not speak, and hanging up on them would lose good peers.

use super::WireError;
use super::hashes::{self, HashRange};
use crate::merkle::Sha256Hash;
use std::fmt;
use std::io::{self, Read, Write};

/// Largest frame we accept: room for a bitfield of 2^21 pieces and extension messages with a
/// 16 KiB metadata piece; a 4 GiB length prefix is refused before anything is allocated.
pub const MAX_MESSAGE_LEN: u32 = 1 << 20;

/// One peer message, with the spec's names for its fields.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have {
        index: u32,
    },
    /// The raw bits; checked against the piece count by `Bitfield::from_payload`.
    Bitfield(Vec<u8>),
    Request {
        index: u32,
        begin: u32,
        length: u32,
    },
    Piece {
        index: u32,
        begin: u32,
        block: Vec<u8>,
    },
    Cancel {
        index: u32,
        begin: u32,
        length: u32,
    },
    Port(u16),
    /// BEP 6: "you might like to download this piece" (a hint, not a promise).
    SuggestPiece {
        index: u32,
    },
    /// BEP 6: the sender has every piece (instead of a full bitfield).
    HaveAll,
    /// BEP 6: the sender has no piece (instead of sending no bitfield at all).
    HaveNone,
    /// BEP 6: the answer to a request the sender will not serve: every request gets exactly
    /// one `Piece` or one `RejectRequest`.
    RejectRequest {
        index: u32,
        begin: u32,
        length: u32,
    },
    /// BEP 6: the sender will serve this piece even while it chokes the receiver.
    AllowedFast {
        index: u32,
    },
    /// BEP 10: an extension message (`id` 0 is the extended handshake).
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
    /// BEP 52: "send me these hashes of this file's tree, with their proof".
    HashRequest {
        pieces_root: Sha256Hash,
        base_layer: u32,
        index: u32,
        length: u32,
        proof_layers: u32,
    },
    /// BEP 52: the answer to a `HashRequest`: its header, then `length` hashes of the base
    /// layer and the uncle hashes that prove them, the nearest first (see `hashes.rs`).
    Hashes {
        pieces_root: Sha256Hash,
        base_layer: u32,
        index: u32,
        length: u32,
        proof_layers: u32,
        hashes: Vec<Sha256Hash>,
    },
    /// BEP 52: the sender will not serve this `HashRequest` (the same header).
    HashReject {
        pieces_root: Sha256Hash,
        base_layer: u32,
        index: u32,
        length: u32,
        proof_layers: u32,
    },
    /// An id we do not handle; its payload was skipped.
    Unknown {
        id: u8,
        length: u32,
    },
}

impl Message {
    /// The message id on the wire (`None` for keep-alive).
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => 0,
            Message::Unchoke => 1,
            Message::Interested => 2,
            Message::NotInterested => 3,
            Message::Have { .. } => 4,
            Message::Bitfield(_) => 5,
            Message::Request { .. } => 6,
            Message::Piece { .. } => 7,
            Message::Cancel { .. } => 8,
            Message::Port(_) => 9,
            Message::SuggestPiece { .. } => 13,
            Message::HaveAll => 14,
            Message::HaveNone => 15,
            Message::RejectRequest { .. } => 16,
            Message::AllowedFast { .. } => 17,
            Message::Extended { .. } => 20,
            Message::HashRequest { .. } => 21,
            Message::Hashes { .. } => 22,
            Message::HashReject { .. } => 23,
            Message::Unknown { id, .. } => *id,
        })
    }

    /// The header of a hash message (BEP 52), `None` for every other message.
    pub fn hash_range(&self) -> Option<HashRange> {
        match *self {
            Message::HashRequest {
                pieces_root,
                base_layer,
                index,
                length,
                proof_layers,
            }
            | Message::Hashes {
                pieces_root,
                base_layer,
                index,
                length,
                proof_layers,
                ..
            }
            | Message::HashReject {
                pieces_root,
                base_layer,
                index,
                length,
                proof_layers,
            } => Some(HashRange {
                pieces_root,
                base_layer,
                index,
                length,
                proof_layers,
            }),
            _ => None,
        }
    }

    /// The whole frame: length prefix, id, payload. A `Hashes` is written as it is: build one
    /// with `HashRange::answer`, which checks that its hashes fit its header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        match self {
            Message::Have { index }
            | Message::SuggestPiece { index }
            | Message::AllowedFast { index } => payload.extend_from_slice(&index.to_be_bytes()),
            Message::Bitfield(bits) => payload.extend_from_slice(bits),
            Message::Request {
                index,
                begin,
                length,
            }
            | Message::Cancel {
                index,
                begin,
                length,
            }
            | Message::RejectRequest {
                index,
                begin,
                length,
            } => {
                for n in [index, begin, length] {
                    payload.extend_from_slice(&n.to_be_bytes());
                }
            }
            Message::Piece {
                index,
                begin,
                block,
            } => {
                payload.extend_from_slice(&index.to_be_bytes());
                payload.extend_from_slice(&begin.to_be_bytes());
                payload.extend_from_slice(block);
            }
            Message::Port(port) => payload.extend_from_slice(&port.to_be_bytes()),
            Message::Extended { id, payload: p } => {
                payload.push(*id);
                payload.extend_from_slice(p);
            }
            Message::HashRequest { .. } | Message::HashReject { .. } => {
                if let Some(range) = self.hash_range() {
                    range.write(&mut payload);
                }
            }
            Message::Hashes { hashes, .. } => {
                if let Some(range) = self.hash_range() {
                    range.write(&mut payload);
                }
                hashes.iter().for_each(|h| payload.extend_from_slice(&h.0));
            }
            _ => {}
        }
        let Some(id) = self.id() else {
            return vec![0, 0, 0, 0];
        };
        let mut frame = Vec::with_capacity(5 + payload.len());
        frame.extend_from_slice(&(payload.len() as u32 + 1).to_be_bytes());
        frame.push(id);
        frame.extend_from_slice(&payload);
        frame
    }

    /// Writes the frame in one `write_all`, so a frame is never interleaved with another.
    pub fn write_to(&self, w: &mut impl Write) -> Result<(), WireError> {
        w.write_all(&self.to_bytes())?;
        Ok(())
    }

    /// Reads one message. The length prefix is checked before anything is allocated. [W5.1]
    pub fn read_from(r: &mut impl Read) -> Result<Message, WireError> {
        let mut prefix = [0u8; 4];
        r.read_exact(&mut prefix)?;
        let length = u32::from_be_bytes(prefix);
        if length == 0 {
            return Ok(Message::KeepAlive);
        }
        if length > MAX_MESSAGE_LEN {
            return Err(WireError::MessageTooLong {
                length,
                max: MAX_MESSAGE_LEN,
            });
        }
        let mut id = [0u8; 1];
        r.read_exact(&mut id)?;
        let id = id[0];
        let payload_len = length - 1;
        if let Some(expected) = fixed_payload_len(id)
            && payload_len != expected
        {
            return Err(WireError::BadLength {
                id,
                length: payload_len,
                expected,
            });
        }
        if !is_known(id) {
            // Unknown extension of the protocol: skip exactly its payload and carry on.
            io::copy(&mut r.take(payload_len.into()), &mut io::sink())?;
            return Ok(Message::Unknown {
                id,
                length: payload_len,
            });
        }
        if id == 7 && payload_len >= 8 {
            return read_piece(r, payload_len); // the hot path: one allocation, no copy
        }
        let mut payload = vec![0u8; payload_len as usize];
        r.read_exact(&mut payload)?;
        decode(id, payload)
    }
}

/// The 13 bytes that precede a block in a `piece` message (length prefix, id 7, index, begin).
/// A seeder writes these, then reads the block from disk straight behind them: no copy of the
/// block is made (`Uploads::serve` in `src/peer/upload.rs`).
pub fn piece_header(index: u32, begin: u32, block_len: u32) -> [u8; 13] {
    let mut header = [0u8; 13];
    header[..4].copy_from_slice(&(block_len + 9).to_be_bytes());
    header[4] = 7;
    header[5..9].copy_from_slice(&index.to_be_bytes());
    header[9..].copy_from_slice(&begin.to_be_bytes());
    header
}

/// A `piece` message's payload: the 8-byte header, then the block read straight into its own
/// buffer (the block is most of the bytes of a download: no copy of it is made here).
fn read_piece(r: &mut impl Read, payload_len: u32) -> Result<Message, WireError> {
    let mut header = [0u8; 8];
    r.read_exact(&mut header)?;
    let mut block = vec![0u8; payload_len as usize - 8];
    r.read_exact(&mut block)?;
    let index = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
    let begin = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
    Ok(Message::Piece {
        index,
        begin,
        block,
    })
}

/// The ids this module decodes: BEP 3's 0–9, BEP 6's 13–17, BEP 10's 20 and BEP 52's 21–23.
fn is_known(id: u8) -> bool {
    matches!(id, 0..=9 | 13..=17 | 20..=23)
}

/// Payload sizes of the messages that have a fixed size.
fn fixed_payload_len(id: u8) -> Option<u32> {
    match id {
        0..=3 | 14 | 15 => Some(0),
        4 | 13 | 17 => Some(4),
        6 | 8 | 16 => Some(12),
        9 => Some(2),
        21 | 23 => Some(hashes::HEADER_LEN as u32),
        _ => None,
    }
}

/// Builds a message from its id and payload (whose length fits the id, see `read_from`).
fn decode(id: u8, payload: Vec<u8>) -> Result<Message, WireError> {
    let u32_at =
        |at: usize| u32::from_be_bytes(payload[at..at + 4].try_into().expect("length checked"));
    Ok(match id {
        0 => Message::Choke,
        1 => Message::Unchoke,
        2 => Message::Interested,
        3 => Message::NotInterested,
        4 => Message::Have { index: u32_at(0) },
        5 => Message::Bitfield(payload),
        6 => Message::Request {
            index: u32_at(0),
            begin: u32_at(4),
            length: u32_at(8),
        },
        7 if payload.len() < 8 => {
            return Err(WireError::BadLength {
                id,
                length: payload.len() as u32,
                expected: 8,
            });
        }
        7 => Message::Piece {
            index: u32_at(0),
            begin: u32_at(4),
            block: payload[8..].to_vec(),
        },
        8 => Message::Cancel {
            index: u32_at(0),
            begin: u32_at(4),
            length: u32_at(8),
        },
        9 => Message::Port(u16::from_be_bytes([payload[0], payload[1]])),
        13 => Message::SuggestPiece { index: u32_at(0) }, // BEP 6, the fast extension [W5.2]
        14 => Message::HaveAll,
        15 => Message::HaveNone,
        16 => Message::RejectRequest {
            index: u32_at(0),
            begin: u32_at(4),
            length: u32_at(8),
        },
        17 => Message::AllowedFast { index: u32_at(0) },
        20 if payload.is_empty() => {
            return Err(WireError::BadLength {
                id,
                length: 0,
                expected: 1,
            });
        }
        20 => Message::Extended {
            id: payload[0],
            payload: payload[1..].to_vec(),
        },
        // BEP 52's hash messages: their header has bounds of its own (`hashes.rs`).
        21..=23 => hashes::decode(id, &payload)?,
        _ => Message::Unknown {
            id,
            length: payload.len() as u32,
        }, // (read_from skips these)
    })
}

/// One line per message, as the wire trace prints it: blocks and bitfields by their size.
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::KeepAlive => write!(f, "KeepAlive"),
            Message::Choke => write!(f, "Choke"),
            Message::Unchoke => write!(f, "Unchoke"),
            Message::Interested => write!(f, "Interested"),
            Message::NotInterested => write!(f, "NotInterested"),
            Message::Have { index } => write!(f, "Have {{ index: {index} }}"),
            Message::Bitfield(bits) => write!(f, "Bitfield {{ <{} bytes> }}", bits.len()),
            Message::Request {
                index,
                begin,
                length,
            } => write!(
                f,
                "Request {{ index: {index}, begin: {begin}, length: {length} }}"
            ),
            Message::Piece {
                index,
                begin,
                block,
            } => write!(
                f,
                "Piece {{ index: {index}, begin: {begin}, block: <{} bytes> }}",
                block.len()
            ),
            Message::Cancel {
                index,
                begin,
                length,
            } => write!(
                f,
                "Cancel {{ index: {index}, begin: {begin}, length: {length} }}"
            ),
            Message::Port(port) => write!(f, "Port({port})"),
            Message::SuggestPiece { index } => write!(f, "SuggestPiece {{ index: {index} }}"),
            Message::HaveAll => write!(f, "HaveAll"),
            Message::HaveNone => write!(f, "HaveNone"),
            Message::RejectRequest {
                index,
                begin,
                length,
            } => write!(
                f,
                "RejectRequest {{ index: {index}, begin: {begin}, length: {length} }}"
            ),
            Message::AllowedFast { index } => write!(f, "AllowedFast {{ index: {index} }}"),
            Message::Extended { id, payload } => write!(
                f,
                "Extended {{ id: {id}, payload: <{} bytes> }}",
                payload.len()
            ),
            Message::HashRequest { .. } | Message::HashReject { .. } | Message::Hashes { .. } => {
                let name = match self {
                    Message::HashRequest { .. } => "HashRequest",
                    Message::HashReject { .. } => "HashReject",
                    _ => "Hashes",
                };
                // Every hash message has a header: `hash_range` is `Some` for all three.
                if let Some(r) = self.hash_range() {
                    write!(
                        f,
                        "{name} {{ pieces_root: {}, base_layer: {}, index: {}, length: {}, \
                         proof_layers: {}",
                        r.pieces_root, r.base_layer, r.index, r.length, r.proof_layers
                    )?;
                }
                // The hashes by their number, as blocks by their size: the trace stays short.
                if let Message::Hashes { hashes, .. } = self {
                    write!(f, ", hashes: <{} hashes>", hashes.len())?;
                }
                write!(f, " }}")
            }
            Message::Unknown { id, length } => {
                write!(f, "Unknown {{ id: {id}, length: {length} }}")
            }
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One message of every kind (blobs zero-filled, as a trace line reads them back): the
/// table the tests here and in `wire::trace` go through.
#[cfg(test)]
pub(crate) fn one_of_each() -> Vec<Message> {
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have { index: 7 },
        Message::Bitfield(vec![0; 2]),
        Message::Request {
            index: 3,
            begin: 16384,
            length: 16384,
        },
        Message::Piece {
            index: 1,
            begin: 16384,
            block: vec![0; 848],
        },
        Message::Cancel {
            index: 3,
            begin: 0,
            length: 16384,
        },
        Message::Port(6881),
        Message::SuggestPiece { index: 5 },
        Message::HaveAll,
        Message::HaveNone,
        Message::RejectRequest {
            index: 3,
            begin: 32768,
            length: 16384,
        },
        Message::AllowedFast { index: 9 },
        Message::Extended {
            id: 0,
            payload: vec![0; 97],
        },
        Message::HashRequest {
            pieces_root: Sha256Hash([0x5a; 32]),
            base_layer: 2,
            index: 0,
            length: 16,
            proof_layers: 3,
        },
        Message::Hashes {
            pieces_root: Sha256Hash([0x5a; 32]),
            base_layer: 2,
            index: 0,
            length: 4,
            proof_layers: 3,
            hashes: vec![Sha256Hash::ZERO; 6],
        },
        Message::HashReject {
            pieces_root: Sha256Hash([0x5a; 32]),
            base_layer: 0,
            index: 8,
            length: 8,
            proof_layers: 5,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: Message) {
        let bytes = m.to_bytes();
        assert_eq!(Message::read_from(&mut &bytes[..]).unwrap(), m, "{bytes:?}");
    }

    #[test]
    fn every_message_round_trips() {
        one_of_each().into_iter().for_each(round_trip);
        round_trip(Message::Extended {
            id: 0,
            payload: b"d1:md11:ut_metadatai1eee".to_vec(),
        });
    }

    #[test]
    fn request_layout_byte_by_byte() {
        let bytes = Message::Request {
            index: 3,
            begin: 16384,
            length: 16384,
        }
        .to_bytes();
        assert_eq!(
            bytes,
            [
                0, 0, 0, 13, //      length: 1 id + 12 payload
                6,  //               id: request
                0, 0, 0, 3, //       index
                0, 0, 0x40, 0, //    begin 16384
                0, 0, 0x40, 0, //    length 16384
            ]
        );
    }

    #[test]
    fn a_4_gib_length_prefix_is_refused_before_allocating() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 7];
        assert!(matches!(
            Message::read_from(&mut &bytes[..]),
            Err(WireError::MessageTooLong {
                length: u32::MAX,
                ..
            })
        ));
    }

    #[test]
    fn fixed_size_messages_must_have_their_size() {
        let bytes = [0, 0, 0, 3, 4, 0, 0]; // have with a 2-byte payload
        assert!(matches!(
            Message::read_from(&mut &bytes[..]),
            Err(WireError::BadLength {
                id: 4,
                length: 2,
                expected: 4
            })
        ));
    }

    #[test]
    fn unknown_ids_are_skipped_and_the_next_message_reads_fine() {
        let mut bytes = vec![0, 0, 0, 4, 42, 1, 2, 3];
        bytes.extend_from_slice(&Message::Unchoke.to_bytes());
        let mut reader = &bytes[..];
        assert_eq!(
            Message::read_from(&mut reader).unwrap(),
            Message::Unknown { id: 42, length: 3 }
        );
        assert_eq!(Message::read_from(&mut reader).unwrap(), Message::Unchoke);
    }

    #[test]
    fn a_frame_split_at_every_point_reads_or_fails_cleanly() {
        let bytes = Message::Piece {
            index: 2,
            begin: 16384,
            block: vec![5; 64],
        }
        .to_bytes();
        for cut in 0..bytes.len() {
            assert!(
                Message::read_from(&mut &bytes[..cut]).is_err(),
                "a frame cut at {cut} decoded"
            );
        }
    }

    #[test]
    fn the_trace_shows_blocks_by_size() {
        let m = Message::Piece {
            index: 3,
            begin: 16384,
            block: vec![0; 16384],
        };
        assert_eq!(
            m.to_string(),
            "Piece { index: 3, begin: 16384, block: <16384 bytes> }"
        );
    }

    #[test]
    fn piece_header_is_the_start_of_a_piece_frame() {
        let frame = Message::Piece {
            index: 9,
            begin: 32768,
            block: vec![7; 100],
        }
        .to_bytes();
        assert_eq!(piece_header(9, 32768, 100), frame[..13]);
    }
}
