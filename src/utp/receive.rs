//! The receiving half of one uTP connection (BEP 29, "uTorrent transport protocol"): packets
//! in any order in, bytes in order out, and what to acknowledge.
//!
//! ```text
//!   ST_DATA / ST_FIN (seq_nr) ──► Receiver ──► in order: `readable`, read by the app
//!                                     └─────► early: held until the gap fills (bounded)
//!   ack_nr, selective ACK, window ◄── Receiver (for every packet we send)
//! ```
//!
//! `ack_nr` is the last sequence number delivered in order. A packet `ack_nr + 1` is delivered
//! at once, with any held packets that follow it; a packet further on is held, at most
//! [`MAX_HELD`] sequence numbers ahead and only while the bytes fit in [`RECV_BUFFER`] — the
//! window we advertise — so a peer cannot make us hold more than that whatever it sends.

use super::packet::SelectiveAck;
use super::{MAX_HELD, RECV_BUFFER, SACK_BITS};
use std::collections::VecDeque;

/// What became of one incoming packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// It was `ack_nr + 1`: delivered, with whatever it unblocked.
    InOrder,
    /// It arrived early and waits for the gap before it.
    Held,
    /// We had it already (delivered or held): dropped, but the peer needs our ack again.
    Duplicate,
    /// No room for it (past our window, past [`MAX_HELD`], or after the FIN): dropped.
    Refused,
}

#[derive(Debug)]
pub struct Receiver {
    ack_nr: u16,
    /// Index `i` holds sequence number `ack_nr + 2 + i` (bit `i` of a selective ACK);
    /// `ack_nr + 1` is never held: it would have been delivered.
    held: VecDeque<Option<Vec<u8>>>,
    held_bytes: usize,
    readable: VecDeque<u8>,
    /// The sequence number of the peer's ST_FIN, once seen.
    eof_pkt: Option<u16>,
    /// Every packet up to and including the FIN has been delivered.
    finished: bool,
}

impl Receiver {
    /// A receiver whose last delivered sequence number is `ack_nr`.
    pub fn new(ack_nr: u16) -> Receiver {
        Receiver {
            ack_nr,
            held: VecDeque::new(),
            held_bytes: 0,
            readable: VecDeque::new(),
            eof_pkt: None,
            finished: false,
        }
    }

    pub fn ack_nr(&self) -> u16 {
        self.ack_nr
    }

    /// The initiator learns the peer's first sequence number only from its answer to our SYN.
    pub fn start_at(&mut self, ack_nr: u16) {
        *self = Receiver::new(ack_nr);
    }

    /// Bytes we still have room for: the `wnd_size` we advertise.
    pub fn window(&self) -> usize {
        RECV_BUFFER.saturating_sub(self.readable.len() + self.held_bytes)
    }

    /// Bytes delivered in order and not read yet.
    pub fn readable(&self) -> usize {
        self.readable.len()
    }

    /// The peer's FIN and everything before it have arrived.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Packets held out of order.
    pub fn held(&self) -> usize {
        self.held.iter().filter(|slot| slot.is_some()).count()
    }

    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.readable.len());
        // The ring buffer is at most two slices: copy them whole rather than byte by byte
        // (this is the hot path of every download over uTP).
        let (front, back) = self.readable.as_slices();
        let first = n.min(front.len());
        buf[..first].copy_from_slice(&front[..first]);
        buf[first..n].copy_from_slice(&back[..n - first]);
        self.readable.drain(..n);
        n
    }

    /// The next byte `read` would return, left in place.
    pub fn peek(&self) -> Option<u8> {
        self.readable.front().copied()
    }

    /// An ST_DATA packet.
    pub fn data(&mut self, seq: u16, payload: Vec<u8>) -> Received {
        self.arrive(seq, Some(payload))
    }

    /// An ST_FIN packet: no packet after `seq` will count.
    pub fn fin(&mut self, seq: u16) -> Received {
        if self.eof_pkt.is_none() && ahead(seq, self.ack_nr).is_some() {
            self.eof_pkt = Some(seq);
            // Anything held past the FIN was never part of the stream.
            let keep = usize::from(seq.wrapping_sub(self.ack_nr)).saturating_sub(1);
            while self.held.len() > keep {
                if let Some(Some(dropped)) = self.held.pop_back() {
                    self.held_bytes -= dropped.len();
                }
            }
        }
        self.arrive(seq, None)
    }

    fn arrive(&mut self, seq: u16, payload: Option<Vec<u8>>) -> Received {
        if self.finished {
            return Received::Duplicate;
        }
        let Some(distance) = ahead(seq, self.ack_nr) else {
            return Received::Duplicate;
        };
        if self.eof_pkt.is_some_and(|eof| ahead(seq, eof).is_some()) {
            return Received::Refused;
        }
        let is_fin = self.eof_pkt == Some(seq);
        let len = payload.as_ref().map_or(0, Vec::len);
        if is_fin != payload.is_none() {
            // A data packet with the FIN's number, or the FIN at a data packet's: the peer
            // contradicts itself; keep what we had.
            return Received::Refused;
        }
        if distance == 1 {
            if len > self.window() {
                return Received::Refused;
            }
            self.deliver(payload);
            while let Some(slot) = self.held.pop_front() {
                match slot {
                    Some(bytes) => {
                        self.held_bytes -= bytes.len();
                        self.deliver(Some(bytes));
                    }
                    None if self.eof_pkt == Some(self.ack_nr.wrapping_add(1)) => {
                        self.deliver(None);
                    }
                    None => break,
                }
            }
            if self.eof_pkt == Some(self.ack_nr.wrapping_add(1)) {
                self.deliver(None);
            }
            return Received::InOrder;
        }
        let index = usize::from(distance) - 2;
        if index >= MAX_HELD {
            return Received::Refused;
        }
        if is_fin {
            // The FIN is remembered in `eof_pkt`; its slot stays empty.
            return Received::Held;
        }
        if self.held.get(index).is_some_and(Option::is_some) {
            return Received::Duplicate;
        }
        if len > self.window() {
            return Received::Refused;
        }
        if self.held.len() <= index {
            self.held.resize(index + 1, None);
        }
        self.held_bytes += len;
        self.held[index] = payload;
        Received::Held
    }

    /// `ack_nr + 1` arrived: its bytes (none for the FIN) go to the reader.
    fn deliver(&mut self, payload: Option<Vec<u8>>) {
        self.ack_nr = self.ack_nr.wrapping_add(1);
        match payload {
            Some(bytes) => self.readable.extend(bytes),
            None => {
                self.finished = true;
                self.held.clear();
                self.held_bytes = 0;
            }
        }
    }

    /// The selective ACK to send: `None` while nothing is held past a gap; at most
    /// [`SACK_BITS`] packets described.
    pub fn selective_ack(&self) -> Option<SelectiveAck> {
        let eof = self.eof_pkt.and_then(|eof| {
            let distance = usize::from(ahead(eof, self.ack_nr)?);
            distance.checked_sub(2)
        });
        let offsets: Vec<usize> = self
            .held
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.is_some())
            .map(|(i, _)| i)
            .chain(eof)
            .collect();
        if offsets.is_empty() {
            return None;
        }
        Some(SelectiveAck::from_received(offsets, SACK_BITS))
    }
}

/// How far `seq` is past `base`, if it is past it at all: sequence numbers wrap at 16 bits,
/// so "past" means less than half the number space ahead.
pub fn ahead(seq: u16, base: u16) -> Option<u16> {
    let distance = seq.wrapping_sub(base);
    (distance != 0 && distance < 0x8000).then_some(distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(r: &mut Receiver) -> Vec<u8> {
        let mut buf = vec![0u8; r.readable()];
        let n = r.read(&mut buf);
        buf.truncate(n);
        buf
    }

    #[test]
    fn in_order_and_out_of_order_come_out_in_order() {
        let mut r = Receiver::new(65534);
        assert_eq!(r.data(1, b"c".to_vec()), Received::Held);
        assert_eq!(r.data(0, b"b".to_vec()), Received::Held);
        assert!(r.selective_ack().is_some());
        assert_eq!(r.data(0, b"b".to_vec()), Received::Duplicate);
        assert_eq!(r.data(65535, b"a".to_vec()), Received::InOrder);
        assert_eq!(r.ack_nr(), 1, "wrapped past 65535");
        assert_eq!(drain(&mut r), b"abc");
        assert_eq!(r.data(65535, b"a".to_vec()), Received::Duplicate);
        assert_eq!(r.selective_ack(), None);
    }

    #[test]
    fn the_fin_ends_the_stream_once_the_gap_fills() {
        let mut r = Receiver::new(10);
        assert_eq!(r.fin(13), Received::Held);
        assert_eq!(r.data(14, b"late".to_vec()), Received::Refused);
        assert_eq!(r.data(12, b"y".to_vec()), Received::Held);
        assert!(!r.finished());
        assert_eq!(r.data(11, b"x".to_vec()), Received::InOrder);
        assert!(r.finished());
        assert_eq!(r.ack_nr(), 13);
        assert_eq!(drain(&mut r), b"xy");
    }

    #[test]
    fn the_buffer_is_bounded_by_the_window_and_max_held() {
        let mut r = Receiver::new(0);
        let chunk = vec![7u8; 1400];
        let mut held = 0;
        for seq in 2..=(MAX_HELD as u16 + 200) {
            if r.data(seq, chunk.clone()) == Received::Held {
                held += 1;
            }
        }
        assert!(held <= MAX_HELD);
        assert!(held * 1400 <= RECV_BUFFER);
        assert_eq!(
            r.data(MAX_HELD as u16 + 2, chunk.clone()),
            Received::Refused
        );
        assert!(r.window() < 1400);
        let mask = r.selective_ack().unwrap();
        assert_eq!(mask.mask().len(), SACK_BITS / 8, "the mask stays MTU-sized");
    }
}
