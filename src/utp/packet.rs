//! One uTP packet's bytes (BEP 29, "uTorrent transport protocol"): the 20-byte header, the
//! extension chain (selective ACK), the payload — no sockets, no state.
//!
//! ```text
//!   datagram ──► Packet::decode ──► Connection::handle_packet
//!   Connection::take_outgoing ──► Packet::encode ──► datagram
//! ```
//!
//! The header, all fields big-endian:
//!
//! ```text
//!   byte 0      type << 4 | version (1)        byte 1   first extension type (0: none)
//!   bytes 2–3   connection_id
//!   bytes 4–7   timestamp_microseconds          bytes 8–11  timestamp_difference_microseconds
//!   bytes 12–15 wnd_size (bytes)                bytes 16–17 seq_nr      bytes 18–19 ack_nr
//!   then each extension: next extension type (1 byte), len (1 byte), len bytes; then payload
//! ```

use thiserror::Error;

/// The fixed header's length.
pub const HEADER_LEN: usize = 20;

/// The only version of uTP there is.
pub const VERSION: u8 = 1;

/// The selective-ACK extension's type in the chain.
pub const EXTENSION_SELECTIVE_ACK: u8 = 1;

/// What a packet is for (BEP 29's `type` field, the high four bits of byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// ST_DATA: carries payload; takes a sequence number.
    Data,
    /// ST_FIN: the last sequence number the sender will use; takes a sequence number.
    Fin,
    /// ST_STATE: an acknowledgement only; carries the next sequence number, takes none.
    State,
    /// ST_RESET: the sender has no such connection, or gives it up at once.
    Reset,
    /// ST_SYN: opens a connection; takes sequence number 1 of the initiator.
    Syn,
}

impl PacketType {
    /// The 4-bit code on the wire.
    pub fn code(self) -> u8 {
        match self {
            PacketType::Data => 0,
            PacketType::Fin => 1,
            PacketType::State => 2,
            PacketType::Reset => 3,
            PacketType::Syn => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<PacketType> {
        Some(match code {
            0 => PacketType::Data,
            1 => PacketType::Fin,
            2 => PacketType::State,
            3 => PacketType::Reset,
            4 => PacketType::Syn,
            _ => return None,
        })
    }
}

/// The selective-ACK bitmask: bit `i` (bit `i % 8` of byte `i / 8`, least significant first)
/// says whether packet `ack_nr + 2 + i` has arrived. `ack_nr + 1` is missing by definition,
/// else `ack_nr` would have moved past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectiveAck {
    /// At least one byte (checked by `decode`); ours are whole 32-bit words (`from_received`),
    /// as BEP 29 asks, though libtorrent's are not always.
    mask: Vec<u8>,
}

impl SelectiveAck {
    /// The mask for packets received past `ack_nr + 1`, given as offsets from `ack_nr + 2`
    /// (`0` is `ack_nr + 2`). Offsets at or past `max_bits` are left out, so the mask stays
    /// at most `max_bits / 8` bytes (rounded up to 4) whatever the caller passes.
    pub fn from_received(
        offsets: impl IntoIterator<Item = usize>,
        max_bits: usize,
    ) -> SelectiveAck {
        let mut mask: Vec<u8> = Vec::new();
        for offset in offsets.into_iter().filter(|&o| o < max_bits) {
            let byte = offset / 8;
            if mask.len() <= byte {
                mask.resize(byte + 1, 0);
            }
            mask[byte] |= 1 << (offset % 8);
        }
        // BEP 29: at least 32 bits, in multiples of 32.
        let len = mask.len().max(1).div_ceil(4) * 4;
        mask.resize(len, 0);
        SelectiveAck { mask }
    }

    /// The raw mask bytes, as on the wire.
    pub fn mask(&self) -> &[u8] {
        &self.mask
    }

    /// Offsets from `ack_nr + 2` of the packets this mask says arrived, smallest first.
    pub fn received(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.mask.len() * 8).filter(|&i| self.mask[i / 8] & (1 << (i % 8)) != 0)
    }
}

/// One decoded packet. Extensions other than selective ACK are skipped on decode, so they do
/// not appear here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub kind: PacketType,
    pub connection_id: u16,
    pub timestamp_micros: u32,
    pub timestamp_difference_micros: u32,
    /// The sender's advertised receive window, in bytes.
    pub wnd_size: u32,
    pub seq_nr: u16,
    pub ack_nr: u16,
    pub selective_ack: Option<SelectiveAck>,
    pub payload: Vec<u8>,
}

/// Why bytes are not a uTP packet, with the field and its byte offset.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("a uTP header is {HEADER_LEN} bytes, the datagram has only {0}")]
    Truncated(usize),
    #[error("byte 0: version {0}, but only version 1 exists")]
    Version(u8),
    #[error("byte 0: packet type {0}, but only 0 to 4 exist")]
    Type(u8),
    #[error("byte {offset}: an extension header needs 2 bytes, the datagram ends at {len}")]
    ExtensionHeader { offset: usize, len: usize },
    #[error("byte {offset}: extension {kind} claims {claimed} bytes, only {left} remain")]
    ExtensionLength {
        offset: usize,
        kind: u8,
        claimed: usize,
        left: usize,
    },
    #[error("byte {offset}: a selective ACK of {len} bytes (it needs at least one)")]
    SelectiveAckLength { offset: usize, len: usize },
    #[error("an ST_DATA packet with no payload (BEP 29: data packets always carry some)")]
    EmptyData,
}

impl Packet {
    /// A header-only packet of `kind`, every other field zero; the connection fills them.
    pub fn new(kind: PacketType, connection_id: u16) -> Packet {
        Packet {
            kind,
            connection_id,
            timestamp_micros: 0,
            timestamp_difference_micros: 0,
            wnd_size: 0,
            seq_nr: 0,
            ack_nr: 0,
            selective_ack: None,
            payload: Vec::new(),
        }
    }

    /// Reads one datagram. Never panics and never allocates more than the datagram's length.
    pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
        // [W17.1] The fixed 20 bytes first, then the extension chain, then the payload.
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(PacketError::Truncated(bytes.len()))?;
        let version = header[0] & 0x0f;
        if version != VERSION {
            return Err(PacketError::Version(version));
        }
        let kind =
            PacketType::from_code(header[0] >> 4).ok_or(PacketError::Type(header[0] >> 4))?;
        let u16_at = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
        let u32_at =
            |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let mut packet = Packet {
            kind,
            connection_id: u16_at(2),
            timestamp_micros: u32_at(4),
            timestamp_difference_micros: u32_at(8),
            wnd_size: u32_at(12),
            seq_nr: u16_at(16),
            ack_nr: u16_at(18),
            selective_ack: None,
            payload: Vec::new(),
        };
        // The chain: each link names the type of the *next* one; the header names the first.
        let mut next = header[1];
        let mut at = HEADER_LEN;
        while next != 0 {
            let kind = next;
            let link = bytes.get(at..at + 2).ok_or(PacketError::ExtensionHeader {
                offset: at,
                len: bytes.len(),
            })?;
            next = link[0];
            let len = usize::from(link[1]);
            let body = bytes
                .get(at + 2..at + 2 + len)
                .ok_or(PacketError::ExtensionLength {
                    offset: at,
                    kind,
                    claimed: len,
                    left: bytes.len() - at - 2,
                })?;
            if kind == EXTENSION_SELECTIVE_ACK {
                // BEP 29 asks for whole 32-bit words, but libtorrent sends other lengths
                // (its leechers' acks would all be lost if we refused them): any length but
                // zero is read, bit by bit, as far as it goes.
                if len == 0 {
                    return Err(PacketError::SelectiveAckLength { offset: at, len });
                }
                // A second selective ACK in one chain says nothing new: the first one counts.
                if packet.selective_ack.is_none() {
                    packet.selective_ack = Some(SelectiveAck {
                        mask: body.to_vec(),
                    });
                }
            }
            // Any other type is unknown to us, and BEP 29 says to step over it by its length.
            at += 2 + len;
        }
        packet.payload = bytes[at..].to_vec();
        if packet.kind == PacketType::Data && packet.payload.is_empty() {
            return Err(PacketError::EmptyData);
        }
        Ok(packet)
    }

    /// The datagram: header, the selective ACK if any, payload.
    pub fn encode(&self) -> Vec<u8> {
        let sack_len = self.selective_ack.as_ref().map_or(0, |s| 2 + s.mask.len());
        let mut out = Vec::with_capacity(HEADER_LEN + sack_len + self.payload.len());
        out.push(self.kind.code() << 4 | VERSION);
        out.push(if self.selective_ack.is_some() {
            EXTENSION_SELECTIVE_ACK
        } else {
            0
        });
        out.extend_from_slice(&self.connection_id.to_be_bytes());
        out.extend_from_slice(&self.timestamp_micros.to_be_bytes());
        out.extend_from_slice(&self.timestamp_difference_micros.to_be_bytes());
        out.extend_from_slice(&self.wnd_size.to_be_bytes());
        out.extend_from_slice(&self.seq_nr.to_be_bytes());
        out.extend_from_slice(&self.ack_nr.to_be_bytes());
        if let Some(sack) = &self.selective_ack {
            // The mask is built at most 252 bytes long (`from_received` with a bounded
            // `max_bits`, or `decode` from a one-byte length), so the length fits its byte.
            let len = u8::try_from(sack.mask.len()).unwrap_or(252);
            out.push(0); // the end of the chain
            out.push(len);
            out.extend_from_slice(&sack.mask[..usize::from(len)]);
        }
        out.extend_from_slice(&self.payload);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Packet {
        Packet {
            kind: PacketType::Data,
            connection_id: 0x1234,
            timestamp_micros: 0x0102_0304,
            timestamp_difference_micros: 0x0a0b_0c0d,
            wnd_size: 0x0010_0000,
            seq_nr: 0xfffe,
            ack_nr: 7,
            selective_ack: None,
            payload: b"hello".to_vec(),
        }
    }

    #[test]
    fn the_header_is_byte_exact() {
        let bytes = sample().encode();
        let expected: [u8; 25] = [
            0x01, 0x00, 0x12, 0x34, // ST_DATA, version 1; no extension; connection id
            0x01, 0x02, 0x03, 0x04, // timestamp_microseconds
            0x0a, 0x0b, 0x0c, 0x0d, // timestamp_difference_microseconds
            0x00, 0x10, 0x00, 0x00, // wnd_size: 1 MiB
            0xff, 0xfe, 0x00, 0x07, // seq_nr, ack_nr
            b'h', b'e', b'l', b'l', b'o',
        ];
        assert_eq!(bytes, expected);
        assert_eq!(Packet::decode(&expected), Ok(sample()));
    }

    #[test]
    fn first_bytes_of_every_type_are_distinct_from_bencoding() {
        let firsts: Vec<u8> = [
            PacketType::Data,
            PacketType::Fin,
            PacketType::State,
            PacketType::Reset,
            PacketType::Syn,
        ]
        .iter()
        .map(|&k| Packet::new(k, 1).encode()[0])
        .collect();
        assert_eq!(firsts, [0x01, 0x11, 0x21, 0x31, 0x41]);
        assert!(!firsts.contains(&b'd'));
    }

    #[test]
    fn every_type_round_trips_with_and_without_a_selective_ack() {
        for code in 0..=4 {
            let kind = PacketType::from_code(code).unwrap();
            let mut p = Packet::new(kind, 42);
            p.seq_nr = 65535;
            p.ack_nr = 1;
            if kind == PacketType::Data {
                p.payload = vec![9; 1400];
            }
            assert_eq!(Packet::decode(&p.encode()), Ok(p.clone()));
            p.selective_ack = Some(SelectiveAck::from_received([0, 5, 33], 1024));
            assert_eq!(Packet::decode(&p.encode()), Ok(p));
        }
    }

    #[test]
    fn selective_ack_bit_order_is_the_beps() {
        // Bit 0 of byte 0 is ack_nr + 2; bit 7 of byte 0 is ack_nr + 9; byte 1 bit 0 is + 10.
        let sack = SelectiveAck::from_received([0, 7, 8, 31], 1024);
        assert_eq!(sack.mask(), &[0b1000_0001, 0b0000_0001, 0, 0b1000_0000]);
        assert_eq!(sack.received().collect::<Vec<_>>(), [0, 7, 8, 31]);
        let longer = SelectiveAck::from_received([32], 1024);
        assert_eq!(longer.mask().len(), 8, "grows by whole 32-bit words");
        let capped = SelectiveAck::from_received([0, 5000], 64);
        assert_eq!(capped.received().collect::<Vec<_>>(), [0]);
        assert_eq!(SelectiveAck::from_received([], 64).mask(), &[0, 0, 0, 0]);
    }

    #[test]
    fn selective_ack_on_the_wire() {
        let mut p = Packet::new(PacketType::State, 5);
        p.selective_ack = Some(SelectiveAck::from_received([1], 64));
        let bytes = p.encode();
        assert_eq!(bytes[1], EXTENSION_SELECTIVE_ACK);
        assert_eq!(&bytes[20..26], &[0, 4, 0b10, 0, 0, 0]);
    }

    #[test]
    fn unknown_extensions_are_skipped() {
        let mut bytes = Packet::new(PacketType::State, 5).encode();
        bytes[1] = 7; // an unknown extension first, then a selective ACK
        bytes.extend_from_slice(&[EXTENSION_SELECTIVE_ACK, 3, 0xaa, 0xbb, 0xcc]);
        bytes.extend_from_slice(&[0, 4, 1, 0, 0, 0]);
        bytes.extend_from_slice(b"xy");
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.selective_ack.unwrap().mask(), &[1, 0, 0, 0]);
        assert_eq!(p.payload, b"xy");
    }

    #[test]
    fn malformed_packets_are_refused_with_evidence() {
        let good = sample().encode();
        assert_eq!(Packet::decode(&good[..19]), Err(PacketError::Truncated(19)));
        assert_eq!(Packet::decode(&[]), Err(PacketError::Truncated(0)));
        let mut v2 = good.clone();
        v2[0] = 0x02;
        assert_eq!(Packet::decode(&v2), Err(PacketError::Version(2)));
        let mut bad_type = good.clone();
        bad_type[0] = 0x51;
        assert_eq!(Packet::decode(&bad_type), Err(PacketError::Type(5)));
        let mut header_only = Packet::new(PacketType::State, 1).encode();
        header_only[1] = 1;
        assert_eq!(
            Packet::decode(&header_only),
            Err(PacketError::ExtensionHeader {
                offset: 20,
                len: 20
            })
        );
        let mut long = header_only.clone();
        long.extend_from_slice(&[0, 8, 1, 2]);
        assert_eq!(
            Packet::decode(&long),
            Err(PacketError::ExtensionLength {
                offset: 20,
                kind: 1,
                claimed: 8,
                left: 2
            })
        );
        let mut empty_sack = header_only.clone();
        empty_sack.extend_from_slice(&[0, 0]);
        assert_eq!(
            Packet::decode(&empty_sack),
            Err(PacketError::SelectiveAckLength { offset: 20, len: 0 })
        );
        // Three bytes of mask (not BEP 29's whole words, but what libtorrent sends): read.
        let mut odd = header_only.clone();
        odd.extend_from_slice(&[0, 3, 0b101, 0, 0b1000_0000]);
        let sack = Packet::decode(&odd).unwrap().selective_ack.unwrap();
        assert_eq!(sack.received().collect::<Vec<_>>(), [0, 2, 23]);
        let mut empty_data = Packet::new(PacketType::Data, 1).encode();
        empty_data.truncate(HEADER_LEN);
        assert_eq!(Packet::decode(&empty_data), Err(PacketError::EmptyData));
    }

    #[test]
    fn a_chain_that_never_ends_stops_at_the_datagram_end() {
        // Every link points to another unknown extension of length 0, 2 bytes at a time.
        let mut bytes = Packet::new(PacketType::State, 1).encode();
        bytes[1] = 9;
        for _ in 0..1000 {
            bytes.extend_from_slice(&[9, 0]);
        }
        assert_eq!(
            Packet::decode(&bytes),
            Err(PacketError::ExtensionHeader {
                offset: 2020,
                len: 2020
            })
        );
    }
}
