//! The mainline DHT (BEP 5, "DHT Protocol"): finding peers with no tracker — walkthrough §15.
//!
//! Every DHT node has a random 160-bit id, the same size as an info hash. The distance between
//! two ids is their XOR, read as a number: a node keeps many nodes close to its own id and few
//! far away (the routing table), and a lookup walks towards a target by asking the closest
//! nodes it knows for nodes closer still (Kademlia). Peers for a torrent are stored at the
//! nodes whose ids are closest to its info hash.
//!
//! ```text
//!   krpc       bytes ⇄ messages (queries, responses, errors); no sockets
//!   routing    the k-buckets: whom we know, how well, split around our own id
//!   lookup     one iterative lookup: whom to ask next, when it is done
//!   tokens     the write permission handed out by get_peers, checked by announce_peer
//!   store      peers announced to us, per info hash, for 30 minutes
//!   serve      our answers to the four queries, rate-limited per address
//!   node       one node's behaviour: datagrams and commands in, datagrams and answers out
//!   thread     the `dht` thread: owns the UDP socket and the clock, runs a node, talks over channels
//! ```
//!
//! All but `thread` are pure: events in, answers out, testable by hand.

use crate::encoding::{from_hex, to_hex};
use crate::metainfo::InfoHash;
use std::net::SocketAddrV4;

pub mod krpc;
pub mod lookup;
pub mod node;
pub mod routing;
pub mod serve;
pub mod store;
pub mod thread;
pub mod tokens;

/// Nodes per bucket, and how many of the closest nodes a lookup must hear from (BEP 5: k = 8).
pub const K: usize = 8;

/// How many queries one lookup keeps in flight at once (Kademlia's α).
pub const ALPHA: usize = 3;

/// A node's 160-bit name, from the same space as info hashes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// A fresh random id (BEP 5 asks only that it be random; BEP 42's address-derived ids are
    /// not used, and real clients accept ids that do not follow it).
    pub fn generate() -> NodeId {
        let mut id = [0u8; 20];
        id.iter_mut().for_each(|b| *b = fastrand::u8(..));
        NodeId(id)
    }

    pub fn from_hex(text: &str) -> Option<NodeId> {
        from_hex::<20>(text).map(NodeId)
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Kademlia's distance: the XOR of the two ids, compared as a 160-bit big-endian number.
    /// [W15.1]
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; 20];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// How many leading bits the two ids share: 160 for the same id, 0 when the first bit
    /// differs. The closer two ids are, the longer their shared prefix.
    pub fn shared_prefix_bits(&self, other: &NodeId) -> u32 {
        self.distance(other).leading_zeros()
    }
}

impl From<InfoHash> for NodeId {
    /// A lookup for a torrent's peers walks towards its info hash.
    fn from(hash: InfoHash) -> NodeId {
        NodeId(hash.0)
    }
}

impl std::fmt::Debug for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeId({})", self.to_hex())
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The XOR of two ids. Ordered as a number: the derived `Ord` compares the bytes big-endian,
/// which is exactly the numeric order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 20]);

impl Distance {
    /// Leading zero bits: 160 for distance 0.
    pub fn leading_zeros(&self) -> u32 {
        let mut bits = 0;
        for byte in self.0 {
            if byte != 0 {
                return bits + byte.leading_zeros();
            }
            bits += 8;
        }
        bits
    }
}

/// A node as the DHT passes it around: its id and where it listens. BEP 5's compact node
/// info is IPv4 only (26 bytes: id, address, port), and so is this node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NodeInfo {
    pub id: NodeId,
    pub addr: SocketAddrV4,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_xor_and_orders_as_a_number() {
        let a = NodeId([0u8; 20]);
        let mut b = [0u8; 20];
        b[19] = 0b0000_0101;
        let mut c = [0u8; 20];
        c[0] = 0b0100_0000;
        let (b, c) = (NodeId(b), NodeId(c));
        assert_eq!(a.distance(&b).0[19], 5);
        assert!(
            a.distance(&b) < a.distance(&c),
            "a low byte is less than a high bit"
        );
        assert_eq!(a.distance(&a), Distance([0; 20]));
        assert_eq!(b.distance(&c), c.distance(&b));
    }

    #[test]
    fn shared_prefix_counts_leading_equal_bits() {
        let a = NodeId([0u8; 20]);
        let mut c = [0u8; 20];
        c[0] = 0b0100_0000;
        assert_eq!(a.shared_prefix_bits(&NodeId(c)), 1);
        assert_eq!(a.shared_prefix_bits(&a), 160);
        let mut d = [0u8; 20];
        d[2] = 1;
        assert_eq!(a.shared_prefix_bits(&NodeId(d)), 23);
    }
}
