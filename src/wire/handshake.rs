//! The handshake: the first 68 bytes each side sends (BEP 3 "peer protocol") — walkthrough §4.
//!
//! ```text
//!  offset  0      1                 20            28             48            68
//!          ┌──────┬─────────────────┬─────────────┬──────────────┬─────────────┐
//!          │ 19   │ "BitTorrent     │ reserved    │ info_hash    │ peer_id     │
//!          │pstrlen│  protocol"     │ 8 bytes     │ 20 bytes     │ 20 bytes    │
//!          └──────┴─────────────────┴─────────────┴──────────────┴─────────────┘
//! ```
//!
//! The reserved bytes are promises: each set bit announces an extension the sender handles
//! (BEP 10 extension protocol: byte 5, `0x10`; BEP 6 fast extension: byte 7, `0x04`; BEP 5 DHT:
//! byte 7, `0x01`). Set a bit only when the extension really works: real clients act on them.

use super::WireError;
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use std::fmt;
use std::io::{Read, Write};

/// The protocol string every BitTorrent v1 handshake starts with.
pub const PSTR: &[u8; 19] = b"BitTorrent protocol";
/// Total size of a handshake on the wire.
pub const HANDSHAKE_LEN: usize = 68;
/// Reserved bytes announcing only the extension protocol (BEP 10): what the one-step
/// `handshake` and `magnet_handshake` commands send, whose output depends on nothing else.
pub const RESERVED_EXTENSIONS: [u8; 8] = [0, 0, 0, 0, 0, 0x10, 0, 0];
/// Reserved bytes of a download's or a seed's connections: the extension protocol (BEP 10)
/// and the fast extension (BEP 6, byte 7 `0x04`).
pub const RESERVED_PEER: [u8; 8] = [0, 0, 0, 0, 0, 0x10, 0, 0x04];

/// [`RESERVED_PEER`] with BEP 5's DHT bit (byte 7, `0x01`): we run a DHT node and will send
/// its port in a `port` message. Set only when the DHT is on.
pub const RESERVED_PEER_DHT: [u8; 8] = [0, 0, 0, 0, 0, 0x10, 0, 0x05];

/// One side's handshake.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
}

impl Handshake {
    /// The 68 bytes to send.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = PSTR.len() as u8;
        out[1..20].copy_from_slice(PSTR);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id.0);
        out
    }

    pub fn write_to(&self, w: &mut impl Write) -> Result<(), WireError> {
        w.write_all(&self.to_bytes())?;
        w.flush()?;
        Ok(())
    }

    /// Reads a handshake, refusing anything that is not `19` + `BitTorrent protocol`: the
    /// first byte is checked before the other 67 are read. [W4.1]
    pub fn read_from(r: &mut impl Read) -> Result<Handshake, WireError> {
        let mut bytes = [0u8; HANDSHAKE_LEN];
        r.read_exact(&mut bytes[..1])?;
        if bytes[0] as usize != PSTR.len() {
            return Err(WireError::BadProtocol(format!(
                "pstrlen {} (expected 19)",
                bytes[0]
            )));
        }
        r.read_exact(&mut bytes[1..])?;
        if &bytes[1..20] != PSTR {
            return Err(WireError::BadProtocol(format!(
                "pstr {:?}",
                bytes[1..20].escape_ascii().to_string()
            )));
        }
        Ok(Handshake {
            reserved: bytes[20..28].try_into().expect("8 bytes"),
            info_hash: InfoHash(bytes[28..48].try_into().expect("20 bytes")),
            peer_id: PeerId(bytes[48..68].try_into().expect("20 bytes")),
        })
    }

    /// BEP 10: the extension protocol bit (reserved byte 5, `0x10`).
    pub fn supports_extensions(&self) -> bool {
        self.reserved[5] & 0x10 != 0
    }

    /// BEP 6: the fast extension bit (reserved byte 7, `0x04`). It is in use on a connection
    /// only when *both* handshakes set it.
    pub fn supports_fast(&self) -> bool {
        self.reserved[7] & 0x04 != 0
    }

    /// BEP 5: the DHT bit (reserved byte 7, `0x01`): the peer runs a DHT node and takes (and
    /// may send) a `port` message.
    pub fn supports_dht(&self) -> bool {
        self.reserved[7] & 0x01 != 0
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Handshake {{ reserved: {}, info_hash: {}, peer_id: {} }}",
            crate::encoding::to_hex(&self.reserved),
            self.info_hash,
            self.peer_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake {
            reserved: RESERVED_EXTENSIONS,
            info_hash: InfoHash([0xaa; 20]),
            peer_id: PeerId(*b"-PW0001-123456789012"),
        }
    }

    #[test]
    fn layout_byte_by_byte() {
        let bytes = sample().to_bytes();
        assert_eq!(bytes[0], 19); //                pstrlen
        assert_eq!(&bytes[1..20], b"BitTorrent protocol"); // pstr
        assert_eq!(bytes[25], 0x10); //             reserved byte 5: extension protocol
        assert_eq!(&bytes[28..48], &[0xaa; 20]); // info_hash
        assert_eq!(&bytes[48..], b"-PW0001-123456789012"); // peer_id
        assert_eq!(Handshake::read_from(&mut &bytes[..]).unwrap(), sample());
        assert!(sample().supports_extensions());
        assert!(!sample().supports_fast());
        let fast = Handshake {
            reserved: RESERVED_PEER,
            ..sample()
        };
        assert_eq!(fast.to_bytes()[27], 0x04); //  reserved byte 7: fast extension (BEP 6)
        assert!(fast.supports_fast());
    }

    #[test]
    fn a_wrong_protocol_is_refused() {
        let mut bytes = sample().to_bytes();
        bytes[0] = 18;
        assert!(matches!(
            Handshake::read_from(&mut &bytes[..]),
            Err(WireError::BadProtocol(_))
        ));
        let mut bytes = sample().to_bytes();
        bytes[1] = b'b';
        assert!(matches!(
            Handshake::read_from(&mut &bytes[..]),
            Err(WireError::BadProtocol(_))
        ));
    }

    #[test]
    fn a_short_handshake_is_an_io_error() {
        let bytes = sample().to_bytes();
        assert!(matches!(
            Handshake::read_from(&mut &bytes[..40]),
            Err(WireError::Io(_))
        ));
    }
}
