//! uTP (BEP 29, "uTorrent transport protocol"): a reliable, ordered byte stream over UDP
//! that yields to other traffic — the second transport under a peer connection, beside TCP.
//!
//! ```text
//!   peer thread ──► Connection (peer/connection.rs) ──► dyn PeerStream ─┬─► TCP
//!                                                                      └─► UtpStream (to come)
//!                                                                             │ channels
//!   the `utp` thread (to come): one UDP socket, the DHT's, on the listen port ◄┘
//!      datagram ─► first byte ─┬─ `d` (0x64): bencoded KRPC ─► the dht node
//!                              └─ 0x01 0x11 0x21 0x31 0x41: type << 4 | version 1 ─► here
//!      router: (address, connection_id) ─► one utp::Connection per stream
//! ```
//!
//! Many real peers speak only uTP, so a TCP-only client reaches part of a swarm. uTP numbers
//! *packets*, not bytes, acknowledges them with `ack_nr` and a selective-ACK bitmask, and
//! sizes its window by LEDBAT: it measures the one-way delay of its packets and backs off as
//! soon as queueing delay rises towards 100 ms, long before a modem's buffer overflows.
//!
//! ```text
//!   packet      bytes ⇄ Packet: the 20-byte header, selective ACK, payload; no state
//!   receive     packets in any order ⇄ bytes in order; the reorder buffer; what to ack
//!   congestion  LEDBAT window, round-trip time, timeout and back-off; pure arithmetic
//!   connection  one connection's state machine: packets, app bytes and time in; packets,
//!               bytes and state changes out (`connection/send.rs`: acks, resends, probes)
//! ```
//!
//! All of it is pure: no socket, no clock of its own, no randomness (connection ids and the
//! acceptor's first sequence number are passed in), so every rule is tested by hand with a
//! simulated clock.
//!
//! # Driving a [`connection::Connection`] from a thread
//!
//! The socket thread owns the connections and the clock. Every call takes `now`:
//!
//! ```text
//!   dial:      Connection::connect(recv_id, now)            recv_id random, unused by us
//!   accept:    Connection::accept(&syn, seq_nr, now)        on an ST_SYN for no connection
//!   datagram:  Packet::decode(bytes) ─► conn.handle_packet(packet, now)
//!   the app:   conn.write(bytes, now) -> usize   takes what fits in the send buffer
//!              conn.read(buf) -> usize           0 with conn.is_eof(): the peer finished
//!              conn.close(now)                   FIN after the data already written
//!              conn.abort()                      ST_RESET, closed at once
//!   time:      sleep until conn.next_deadline(), then conn.tick(now)
//!   after any of these:
//!              conn.take_outgoing(now) -> Vec<Packet>   encode each, send to the peer
//!              conn.take_events() -> Vec<Event>         Connected, EndOfStream, Closed, …
//! ```
//!
//! The router above the connections keys them by the peer's address and *our* receive id
//! (`conn.recv_id()`): a packet's `connection_id` is the receiver's id. An ST_SYN carries the
//! initiator's receive id, which is the acceptor's send id: a repeated SYN for a connection we
//! accepted matches `conn.send_id()`, not `recv_id()`, and must be handed to that connection
//! (it answers with its ST_STATE again). What a packet for no connection gets (an ST_RESET, and
//! with which id) is the router's decision too. The connection still checks everything else
//! itself: acks of packets never sent, absurd windows, anything after a reset.
//!
//! One deviation from the BEP's diagram, as libutp and libtorrent do it: an ST_STATE carries
//! the *next* sequence number and does not use it up, so the initiator sets its `ack_nr` to
//! the answer's `seq_nr − 1`, and the acceptor's first ST_DATA has the same `seq_nr` as its
//! ST_STATE.

use std::time::Duration;

pub mod congestion;
pub mod connection;
pub mod packet;
pub mod receive;
pub mod socket;
pub mod stream;

/// The most payload one packet carries. A 1,500-byte Ethernet MTU minus the IPv6 header (40),
/// the UDP header (8), the uTP header (20) and the longest selective ACK we send (2 + 28,
/// [`SACK_BITS`]) leaves 1,402: a packet this size is never cut into IP fragments on an
/// ordinary path (a lost fragment would lose the whole packet, and many middleboxes drop
/// fragments outright). libtorrent 2.0.8 fills an IPv4 MTU instead (1,451 bytes of payload
/// measured on loopback): our receive side takes any size that fits a datagram.
pub const MAX_PAYLOAD: usize = 1_400;

/// The selective ACKs we send describe at most this many packets past the gap (28 bytes of
/// mask), so that a data packet carrying one still fits the MTU. Three set bits are enough
/// for the sender to resend the hole.
pub const SACK_BITS: usize = 224;

/// Bytes a connection holds for the app in each direction: written but not yet acked, and
/// received but not yet read (the window we advertise).
pub const SEND_BUFFER: usize = 1 << 20;
pub const RECV_BUFFER: usize = 1 << 20;

/// Sequence numbers past a gap that a receiver holds: the selective ACK's bits (1,024 bits
/// = 128 bytes of mask, within its one-byte length).
pub const MAX_HELD: usize = 1_024;

/// Packets of ours in flight at once, whatever their size: sequence numbers are 16 bits, and
/// no receiver holds more than about this many past a gap.
pub const MAX_IN_FLIGHT: usize = 1_024;

/// LEDBAT's target queueing delay (BEP 29: 100 ms).
pub const CCONTROL_TARGET: Duration = Duration::from_millis(100);

/// LEDBAT's largest window increase per round trip, in bytes (libtorrent's default; the BEP
/// names the constant without a value).
pub const MAX_CWND_INCREASE_BYTES_PER_RTT: usize = 3_000;

/// The window never shrinks below one packet; it starts at two; it never outgrows what we can
/// hold unacked.
pub const MIN_CWND: usize = MAX_PAYLOAD;
pub const INITIAL_CWND: usize = 2 * MAX_PAYLOAD;
pub const MAX_CWND: usize = SEND_BUFFER;

/// The window over which the base delay is the minimum (BEP 29: two minutes).
pub const BASE_DELAY_WINDOW: Duration = Duration::from_secs(120);

/// Timeouts (BEP 29): 1 s before the first round trip is measured, never under 500 ms after;
/// doubled on each timeout in a row, up to this cap.
pub const INITIAL_TIMEOUT: Duration = Duration::from_secs(1);
pub const MIN_TIMEOUT: Duration = Duration::from_millis(500);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(8);

/// A connection waiting for the peer (a SYN, data or a FIN unacked) that hears nothing at all
/// for this long is dead: about five back-offs (1 + 2 + 4 + 8 + 5 s).
pub const SILENCE_LIMIT: Duration = Duration::from_secs(20);

/// Duplicate acks (or packets selectively acked past a hole) that declare it lost.
pub const DUPLICATE_ACKS: u32 = 3;

/// Whether a datagram on the shared port is uTP: its first byte is `type << 4 | 1` with a type
/// of 0 to 4. KRPC, the DHT's bencoding, always starts with `d` (0x64).
pub fn is_utp_datagram(datagram: &[u8]) -> bool {
    datagram
        .first()
        .is_some_and(|&b| b & 0x0f == packet::VERSION && b >> 4 <= 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_port_tells_utp_from_krpc_by_the_first_byte() {
        for b in [0x01, 0x11, 0x21, 0x31, 0x41] {
            assert!(is_utp_datagram(&[b, 0]));
        }
        assert!(!is_utp_datagram(b"d1:ad2:id20:"));
        assert!(!is_utp_datagram(&[0x51]));
        assert!(!is_utp_datagram(&[0x02]));
        assert!(!is_utp_datagram(&[]));
    }

    #[test]
    fn a_full_packet_fits_a_1500_byte_mtu_over_ipv6() {
        let worst = 40 + 8 + packet::HEADER_LEN + 2 + SACK_BITS / 8 + MAX_PAYLOAD;
        assert!(worst <= 1_500, "{worst}");
        assert_eq!(SACK_BITS % 32, 0, "whole 32-bit words");
    }
}
