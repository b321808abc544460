//! Our name on the network: the 20-byte peer id (BEP 3, BEP 20) — walkthrough §3.
//!
//! Every client picks a peer id when it starts and sends it to trackers (`peer_id=`) and in
//! every handshake. BEP 20's "Azureus style" makes it readable: `-`, two letters for the
//! client, four for the version, `-`, then twelve random bytes:
//!
//! ```text
//!   - P W 0 0 0 1 - r r r r r r r r r r r r
//!   └client┘└ver┘    └── 12 random bytes ──┘
//! ```
//!
//! The random part lets a tracker (and we ourselves) tell two peerwire instances apart, and
//! lets us notice when we have connected to ourselves.

use std::fmt;

/// A peer's 20-byte id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId(pub [u8; 20]);

/// The client prefix of our ids: peerwire ("PW"), version 0.0.0.1.
pub const CLIENT_PREFIX: &[u8; 8] = b"-PW0001-";

impl PeerId {
    /// A fresh Azureus-style id: `-PW0001-` and twelve random bytes.
    pub fn generate() -> PeerId {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(CLIENT_PREFIX);
        for byte in &mut id[8..] {
            *byte = fastrand::u8(..);
        }
        PeerId(id)
    }

    pub fn to_hex(&self) -> String {
        crate::encoding::to_hex(&self.0)
    }
}

/// Peer ids print as escaped ASCII (`-PW0001-\x8f...`): the client prefix stays readable.
impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId(\"{}\")", self.0.escape_ascii())
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_azureus_style_and_differ() {
        let (a, b) = (PeerId::generate(), PeerId::generate());
        assert_eq!(&a.0[..8], b"-PW0001-");
        assert_ne!(a, b);
        assert!(format!("{a:?}").starts_with("PeerId(\"-PW0001-"));
    }
}
