//! The sending half of one uTP connection (BEP 29, "uTorrent transport protocol"): packets
//! out while the windows allow, acks in, and what is resent when.
//!
//! ```text
//!   app bytes ──► unsent ──send_what_fits──► in_flight (held until acked) ──► take_outgoing
//!   ack_nr / selective ACK ──process_ack──► in_flight shrinks; rtt; LEDBAT; losses resent
//!   timeout ──on_timeout──► the oldest unacked resent, or a probe into a shut window
//! ```
//!
//! Methods of [`Connection`], split from `connection.rs` to keep each file readable.

use super::{Connection, Sent, State};
use crate::utp::packet::{Packet, PacketType};
use crate::utp::receive::ahead;
use crate::utp::{DUPLICATE_ACKS, MAX_IN_FLIGHT, MAX_PAYLOAD};
use std::time::Instant;

impl Connection {
    /// `ack_nr` acks `acked` packets from our oldest; then the selective ACK; then what the
    /// evidence says was lost.
    pub(super) fn process_ack(&mut self, p: &Packet, acked: usize, now: Instant) {
        let mut bytes_acked = 0;
        for _ in 0..acked {
            // `acked <= in_flight.len()` was checked by the caller.
            let Some(sent) = self.in_flight.pop_front() else {
                break;
            };
            self.held_bytes -= sent.payload.len();
            if sent.lost {
                // Acked after all (its first copy was late, not lost): out of the window already.
                self.lost_count -= 1;
            } else if !sent.sacked {
                self.cur_window -= sent.payload.len();
            }
            if !sent.sacked {
                bytes_acked += sent.payload.len();
                self.measure(&sent, now);
            }
            if sent.kind == PacketType::Fin {
                self.fin_acked = true;
            }
        }
        // [W17.4] Packets past the hole that the peer holds: acked, never to be resent.
        if let Some(sack) = &p.selective_ack {
            let first = p.ack_nr.wrapping_add(2);
            let oldest = self.oldest();
            for offset in sack.received() {
                let seq = first.wrapping_add(offset as u16);
                let index = usize::from(seq.wrapping_sub(oldest));
                let Some(sent) = self.in_flight.get_mut(index) else {
                    continue; // outside what we have in flight: BEP 29 says to ignore it
                };
                if !sent.sacked {
                    sent.sacked = true;
                    if sent.lost {
                        sent.lost = false;
                        self.lost_count -= 1;
                    } else {
                        self.cur_window -= sent.payload.len();
                    }
                    bytes_acked += sent.payload.len();
                    // A FIN acked this way says nothing of the data before it: only `ack_nr`
                    // reaching it (everything acked) lets us close.
                    let (transmissions, sent_at) = (sent.transmissions, sent.sent_at);
                    if transmissions == 1 {
                        self.congestion
                            .rtt_sample(now.saturating_duration_since(sent_at));
                    }
                }
            }
        }
        if acked > 0 {
            self.duplicate_acks = 0;
            // An acked probe into a window still shut is no reason to probe faster.
            if self.peer_window > 0 {
                self.congestion.acked();
            }
            self.timer = self.needs_timer().then(|| now + self.congestion.timeout());
        } else if p.kind == PacketType::State
            && p.selective_ack.is_none()
            && !self.in_flight.is_empty()
        {
            self.duplicate_acks += 1;
            // [W17.7] Three acks that move nothing: the packet after them is lost.
            if self.duplicate_acks == DUPLICATE_ACKS {
                self.resend_lost(0, now);
            }
        }
        if bytes_acked > 0 {
            self.congestion.on_ack(bytes_acked);
        }
        if p.selective_ack.is_some() {
            // Each packet selectively acked after a hole counts as a duplicate ack for it.
            let mut acked_after = 0;
            for index in (0..self.in_flight.len()).rev() {
                if self.in_flight[index].sacked {
                    acked_after += 1;
                } else if acked_after >= DUPLICATE_ACKS {
                    self.resend_lost(index, now);
                }
            }
        }
    }

    /// A round trip, from a packet sent only once (a resent one's ack could be for either).
    pub(super) fn measure(&mut self, sent: &Sent, now: Instant) {
        if sent.transmissions == 1 {
            self.congestion
                .rtt_sample(now.saturating_duration_since(sent.sent_at));
        }
    }

    /// The packet at `index` is lost: resend it once, halve the window once per window.
    pub(super) fn resend_lost(&mut self, index: usize, now: Instant) {
        let Some(sent) = self.in_flight.get(index) else {
            return;
        };
        if sent.fast_resent || sent.sacked || sent.lost {
            return; // already known lost: it goes again with the others a timeout marked
        }
        let seq = sent.seq;
        if ahead(seq, self.loss_seq).is_some() {
            self.congestion.on_loss();
            self.loss_seq = self.seq_nr.wrapping_sub(1);
        }
        self.stats.fast_retransmits += 1;
        self.resend(index, now);
        if let Some(sent) = self.in_flight.get_mut(index) {
            sent.fast_resent = true;
        }
    }

    pub(super) fn resend(&mut self, index: usize, now: Instant) {
        let Some(sent) = self.in_flight.get_mut(index) else {
            return;
        };
        sent.transmissions += 1;
        sent.sent_at = now;
        if sent.lost {
            // Back in flight.
            sent.lost = false;
            self.lost_count -= 1;
            self.cur_window += sent.payload.len();
        }
        let (kind, seq, payload) = (sent.kind, sent.seq, sent.payload.clone());
        let packet = self.packet(kind, seq, payload);
        self.outgoing.push(packet);
    }

    /// The timeout fired: resend the oldest unacked packet with a window of one packet, or,
    /// if nothing is in flight but the peer's window is shut, probe it with one packet.
    pub(super) fn on_timeout(&mut self, now: Instant) {
        // [W17.6] One packet's window, a doubled timeout, and the oldest unacked packet again.
        self.congestion.on_timeout();
        self.loss_seq = self.seq_nr.wrapping_sub(1);
        self.duplicate_acks = 0;
        if let Some(index) = self.in_flight.iter().position(|s| !s.sacked) {
            self.stats.timeouts += 1;
            // Nothing acked for a whole timeout: every packet still out is taken as lost, as
            // libutp does. Resending only the oldest would cost one more timeout for each
            // other packet lost in the same burst (the tail of a burst has no later packets
            // to trigger a fast retransmit); these go again as the window reopens.
            for sent in &mut self.in_flight {
                sent.fast_resent = false;
                if !sent.sacked && !sent.lost {
                    sent.lost = true;
                    self.lost_count += 1;
                    self.cur_window -= sent.payload.len();
                }
            }
            self.resend(index, now);
        } else if self.state == State::Connected && !self.unsent.is_empty() {
            // A window of 0 stays shut until the peer says otherwise; one packet asks it.
            let len = self.unsent.len().min(MAX_PAYLOAD);
            let payload = take_front(&mut self.unsent, len);
            self.send_new(PacketType::Data, payload, now);
        }
        self.timer = self.needs_timer().then(|| now + self.congestion.timeout());
    }

    /// New packets while the windows allow, then the FIN if the app closed.
    pub(super) fn send_what_fits(&mut self, now: Instant) {
        // Closing, only what a timeout marked lost can still go: the FIN is already out.
        if !matches!(self.state, State::Connected | State::FinSent) {
            return;
        }
        let window = self.congestion.cwnd().min(self.peer_window);
        // What a timeout declared lost goes first, oldest first; new data waits behind it.
        // With nothing in flight, one packet goes whatever the window, as a probe would.
        let mut index = 0;
        while self.lost_count > 0 && index < self.in_flight.len() {
            let sent = &self.in_flight[index];
            if sent.lost {
                if self.cur_window + sent.payload.len() > window && self.cur_window > 0 {
                    break;
                }
                self.resend(index, now);
            }
            index += 1;
        }
        if self.lost_count == 0 && self.state == State::Connected {
            self.send_new_data(window, now);
        }
        if self.timer.is_none() && self.needs_timer() {
            self.timer = Some(now + self.congestion.timeout());
        }
    }

    /// New packets while `window` allows, then the FIN if the app closed and all is sent.
    fn send_new_data(&mut self, window: usize, now: Instant) {
        while !self.unsent.is_empty() && self.in_flight.len() < MAX_IN_FLIGHT {
            let mut len = self.unsent.len().min(MAX_PAYLOAD);
            if self.cur_window + len > window {
                // A window smaller than a packet still lets one smaller packet through when
                // nothing is in flight (BEP 29 allows it); a shut window lets none.
                if self.cur_window == 0 && window > 0 {
                    len = window;
                } else {
                    break;
                }
            }
            let payload = take_front(&mut self.unsent, len);
            self.send_new(PacketType::Data, payload, now);
        }
        if self.closing && self.unsent.is_empty() {
            self.send_new(PacketType::Fin, Vec::new(), now);
            self.state = State::FinSent;
        }
    }

    /// A packet that takes the next sequence number and is held until acked.
    pub(super) fn send_new(&mut self, kind: PacketType, payload: Vec<u8>, now: Instant) {
        let seq = self.seq_nr;
        self.seq_nr = self.seq_nr.wrapping_add(1);
        self.cur_window += payload.len();
        self.held_bytes += payload.len();
        self.outgoing.push(self.packet(kind, seq, payload.clone()));
        self.in_flight.push_back(Sent {
            seq,
            kind,
            payload,
            sent_at: now,
            transmissions: 1,
            sacked: false,
            fast_resent: false,
            lost: false,
        });
    }

    /// A packet's fixed fields; `take_outgoing` stamps the rest as it leaves.
    pub(super) fn packet(&self, kind: PacketType, seq: u16, payload: Vec<u8>) -> Packet {
        // Only the SYN carries the id we receive on: it tells the acceptor what to use.
        let id = if kind == PacketType::Syn {
            self.recv_id
        } else {
            self.send_id
        };
        let mut p = Packet::new(kind, id);
        p.seq_nr = seq;
        p.payload = payload;
        p
    }

    pub(super) fn oldest(&self) -> u16 {
        // At most MAX_IN_FLIGHT (1,024) packets are in flight: the length fits 16 bits.
        self.seq_nr.wrapping_sub(self.in_flight.len() as u16)
    }
}

/// The first `len` bytes of `queue`, removed. A ring buffer is at most two slices: copying
/// them whole is this sender's hot path (byte by byte, it took 15 % of a seeder's time).
fn take_front(queue: &mut std::collections::VecDeque<u8>, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let (front, back) = queue.as_slices();
    let first = len.min(front.len());
    out.extend_from_slice(&front[..first]);
    out.extend_from_slice(&back[..len - first]);
    queue.drain(..len);
    out
}
