//! One uTP connection as a state machine (BEP 29, "uTorrent transport protocol"): packets,
//! the app's bytes and the time in; packets, the peer's bytes and state changes out.
//!
//! ```text
//!            connect ──► SynSent ──(ST_STATE acks the SYN)──┐
//!   accept (ST_SYN) ──► SynRecv ──(the peer's next packet)──┴─► Connected
//!   Connected ──close, send buffer drained──► FinSent ──our FIN acked, theirs delivered──► Closed
//!   any state ──ST_RESET──► Reset          waiting and silent for SILENCE_LIMIT ──► TimedOut
//! ```
//!
//! Sending: bytes the app writes wait in a bounded buffer, leave in packets of at most
//! [`MAX_PAYLOAD`] while the bytes in flight fit min(the peer's window, our congestion
//! window), and stay held until acked: by `ack_nr` (everything up to it), or by a selective
//! ACK. A packet is resent when the timeout fires (the oldest unacked), after three duplicate
//! acks, or when three packets after it were selectively acked (all in `connection/send.rs`).
//! Receiving is `receive.rs`; the window and the timeout are `congestion.rs`. The socket thread's side of the API is in
//! the module doc (`mod.rs`).

use super::congestion::Congestion;
use super::packet::{Packet, PacketType};
use super::receive::{Received, Receiver, ahead};
use super::{MAX_PAYLOAD, RECV_BUFFER, SEND_BUFFER, SILENCE_LIMIT};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod send;
#[cfg(test)]
mod tests;

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// We sent an ST_SYN and wait for its ack.
    SynSent,
    /// We acked a peer's ST_SYN and wait for its next packet.
    SynRecv,
    Connected,
    /// The app closed: our ST_FIN is sent (or waits behind unsent data).
    FinSent,
    /// Both sides finished, or the app aborted.
    Closed,
    /// The peer sent ST_RESET.
    Reset,
    /// The peer went silent while we waited for it.
    TimedOut,
}

impl State {
    /// Nothing more happens in these states; every packet is ignored.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Closed | State::Reset | State::TimedOut)
    }
}

/// What the owner of a connection is told, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The handshake is done: bytes flow.
    Connected,
    /// The peer's FIN and everything before it arrived: once `read` has drained the buffer,
    /// there is no more (`is_eof`).
    EndOfStream,
    /// Both sides finished (or the app aborted): the connection can be forgotten.
    Closed,
    /// The peer reset the connection.
    Reset,
    /// The peer said nothing for [`SILENCE_LIMIT`] while we waited for it.
    TimedOut,
}

/// Counts for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Packets handed out by `take_outgoing`, resends and acks included.
    pub packets_sent: u64,
    /// Packets resent because their timeout fired.
    pub timeouts: u64,
    /// Packets resent after duplicate acks or a selective ACK showed them lost.
    pub fast_retransmits: u64,
    /// Data packets we already had.
    pub duplicates: u64,
    /// Packets ignored: acks of packets never sent, anything after the end, data without room.
    pub ignored: u64,
}

/// A packet that took a sequence number, kept until acked.
#[derive(Debug)]
struct Sent {
    seq: u16,
    kind: PacketType,
    payload: Vec<u8>,
    sent_at: Instant,
    transmissions: u32,
    /// Acked by a selective ACK: no longer in `cur_window`, never resent.
    sacked: bool,
    /// Already resent as lost since the last timeout: not again for the same evidence.
    fast_resent: bool,
    /// Declared lost by a timeout: out of `cur_window`, waiting to go again as the window
    /// allows (`send_what_fits` sends these before any new data).
    lost: bool,
}

/// An advertised window below this is taken as nearly shut (see `Connection::read`): above
/// any packet size a sender uses on a path with an ordinary MTU.
const NEARLY_SHUT: usize = 16 * 1024;

#[derive(Debug)]
pub struct Connection {
    state: State,
    recv_id: u16,
    send_id: u16,
    /// Our microsecond clock for timestamps starts here; only differences matter.
    epoch: Instant,
    /// The sequence number of our next packet.
    seq_nr: u16,
    /// Every packet from the oldest unacked to `seq_nr - 1`, in order.
    in_flight: VecDeque<Sent>,
    /// Payload bytes in flight and not selectively acked: `cur_window` in the BEP.
    cur_window: usize,
    /// Payload bytes held in `in_flight` (for resending), selectively acked ones too.
    held_bytes: usize,
    /// Packets in `in_flight` marked `lost` and not yet resent.
    lost_count: usize,
    unsent: VecDeque<u8>,
    /// The peer's advertised window, capped at our send buffer.
    peer_window: usize,
    congestion: Congestion,
    /// Pure acks in a row that acked nothing new.
    duplicate_acks: u32,
    /// A loss at or before this sequence number does not halve the window again: one cut
    /// per window of packets, as TCP does.
    loss_seq: u16,
    /// When the oldest unacked packet (or a window probe) is due again.
    timer: Option<Instant>,
    last_heard: Instant,
    /// `timestamp_difference_microseconds` for our next packets.
    reply_micros: u32,
    receiver: Receiver,
    /// The app has closed: a FIN follows the last unsent byte.
    closing: bool,
    fin_acked: bool,
    end_reported: bool,
    ack_owed: bool,
    /// The window in the last packet we sent: a read that reopens a closed window says so.
    window_sent: usize,
    outgoing: Vec<Packet>,
    events: Vec<Event>,
    stats: Stats,
}

impl Connection {
    fn new(state: State, recv_id: u16, send_id: u16, seq_nr: u16, now: Instant) -> Connection {
        Connection {
            state,
            recv_id,
            send_id,
            epoch: now,
            seq_nr,
            in_flight: VecDeque::new(),
            cur_window: 0,
            held_bytes: 0,
            lost_count: 0,
            unsent: VecDeque::new(),
            peer_window: MAX_PAYLOAD,
            congestion: Congestion::new(),
            duplicate_acks: 0,
            loss_seq: seq_nr.wrapping_sub(1),
            timer: None,
            last_heard: now,
            reply_micros: 0,
            receiver: Receiver::new(0),
            closing: false,
            fin_acked: false,
            end_reported: false,
            ack_owed: false,
            window_sent: 0,
            outgoing: Vec::new(),
            events: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Dials: an ST_SYN with our receive id `recv_id` (random, chosen by the caller so that
    /// it is unused on this socket); we send with `recv_id + 1`, and our SYN is packet 1.
    pub fn connect(recv_id: u16, now: Instant) -> Connection {
        let mut c = Connection::new(State::SynSent, recv_id, recv_id.wrapping_add(1), 1, now);
        // [W17.2] The SYN names the id we receive on, and takes sequence number 1.
        c.send_new(PacketType::Syn, Vec::new(), now);
        c.timer = Some(now + c.congestion.timeout());
        c
    }

    /// Accepts an ST_SYN (`None` for any other packet): we receive on its id + 1 and send on
    /// its id; our packets start at `seq_nr` (random, chosen by the caller). The ST_STATE
    /// that answers it comes out of the next `take_outgoing`.
    pub fn accept(syn: &Packet, seq_nr: u16, now: Instant) -> Option<Connection> {
        if syn.kind != PacketType::Syn {
            return None;
        }
        let id = syn.connection_id;
        let mut c = Connection::new(State::SynRecv, id.wrapping_add(1), id, seq_nr, now);
        c.receiver = Receiver::new(syn.seq_nr);
        c.reply_micros = c.micros(now).wrapping_sub(syn.timestamp_micros);
        c.ack_owed = true;
        Some(c)
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The id on packets the peer sends us: the router's key, with the peer's address.
    pub fn recv_id(&self) -> u16 {
        self.recv_id
    }

    /// The id on packets we send.
    pub fn send_id(&self) -> u16 {
        self.send_id
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The congestion window, in bytes.
    pub fn cwnd(&self) -> usize {
        self.congestion.cwnd()
    }

    /// The current retransmission timeout, back-off included.
    pub fn timeout(&self) -> Duration {
        self.congestion.timeout()
    }

    /// Payload bytes sent and not yet acked.
    pub fn bytes_in_flight(&self) -> usize {
        self.cur_window
    }

    /// Bytes ready for `read`.
    pub fn readable(&self) -> usize {
        self.receiver.readable()
    }

    /// Bytes `write` would take now.
    pub fn writable(&self) -> usize {
        if !self.accepts_writes() {
            return 0;
        }
        SEND_BUFFER.saturating_sub(self.unsent.len() + self.held_bytes)
    }

    /// Memory held for the app in both directions: unsent and unacked bytes, and received
    /// bytes not yet read or held out of order (each at most 1 MiB).
    pub fn buffered(&self) -> (usize, usize) {
        (
            self.unsent.len() + self.held_bytes,
            RECV_BUFFER - self.receiver.window(),
        )
    }

    /// The peer finished and every byte it sent has been read.
    pub fn is_eof(&self) -> bool {
        self.receiver.finished() && self.receiver.readable() == 0
    }

    /// Takes as many of `bytes` as fit in the send buffer (0 once closing or closed) and sends
    /// what the windows allow.
    pub fn write(&mut self, bytes: &[u8], now: Instant) -> usize {
        let n = bytes.len().min(self.writable());
        self.unsent.extend(&bytes[..n]);
        self.send_what_fits(now);
        n
    }

    /// Moves received bytes into `buf`; 0 when there are none (see `is_eof`).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = self.receiver.read(buf);
        // A sender facing a window too small for its next packet waits for a probe timeout;
        // tell it at once instead. "Too small" is the sender's packet size, which we do not
        // know (libtorrent's are 1,451 bytes, ours 1,400): any window under NEARLY_SHUT that
        // a read opened by a packet or more is announced.
        if n > 0
            && self.window_sent < NEARLY_SHUT
            && self.receiver.window() >= self.window_sent + MAX_PAYLOAD
            && !self.state.is_terminal()
        {
            self.ack_owed = true;
        }
        n
    }

    /// The next byte `read` would return, left for it (a peer connection looks at the first
    /// byte to tell a plain handshake from an encrypted one).
    pub fn peek(&self) -> Option<u8> {
        self.receiver.peek()
    }

    /// The app is done writing: an ST_FIN follows the bytes already written (once connected,
    /// if still dialing). To drop a connection at once, `abort`.
    pub fn close(&mut self, now: Instant) {
        match self.state {
            State::SynSent | State::SynRecv | State::Connected => {
                self.closing = true;
                self.send_what_fits(now);
            }
            _ => {}
        }
    }

    /// Gives up at once: an ST_RESET to the peer, and closed.
    pub fn abort(&mut self) {
        if self.state.is_terminal() {
            return;
        }
        let mut reset = Packet::new(PacketType::Reset, self.send_id);
        reset.seq_nr = self.seq_nr;
        self.outgoing = vec![reset];
        self.ack_owed = false;
        self.finish(State::Closed, Event::Closed);
    }

    /// When `tick` must next be called, if ever (nothing to wait for: `None`).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.state.is_terminal() {
            return None;
        }
        let silence = self.waiting().then(|| self.last_heard + SILENCE_LIMIT);
        match (self.timer, silence) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The time passes: a silent peer times out, an unacked packet is resent.
    pub fn tick(&mut self, now: Instant) {
        if self.state.is_terminal() {
            return;
        }
        if self.waiting() && now >= self.last_heard + SILENCE_LIMIT {
            // Even with our FIN acked, a peer that never finishes its own stream is gone.
            self.finish(State::TimedOut, Event::TimedOut);
            return;
        }
        if self.timer.is_some_and(|t| now >= t) {
            self.on_timeout(now);
        }
    }

    /// Packets to send, stamped with the time, our latest ack and window; an ST_STATE is
    /// added when an ack is owed and no other packet carries it.
    pub fn take_outgoing(&mut self, now: Instant) -> Vec<Packet> {
        // The ack of the peer's FIN may be owed by a connection that this very FIN closed.
        let may_ack = !matches!(self.state, State::Reset | State::TimedOut);
        if self.ack_owed && self.outgoing.is_empty() && may_ack {
            let mut state = Packet::new(PacketType::State, self.send_id);
            state.seq_nr = self.seq_nr;
            self.outgoing.push(state);
        }
        self.ack_owed = false;
        let mut out = std::mem::take(&mut self.outgoing);
        let window = self.receiver.window();
        let sack = self.receiver.selective_ack();
        let micros = self.micros(now);
        for p in &mut out {
            p.timestamp_micros = micros;
            p.timestamp_difference_micros = self.reply_micros;
            p.wnd_size = u32::try_from(window).unwrap_or(u32::MAX);
            if p.kind != PacketType::Syn {
                p.ack_nr = self.receiver.ack_nr();
                p.selective_ack = sack.clone();
            }
        }
        if !out.is_empty() {
            self.window_sent = window;
        }
        self.stats.packets_sent += out.len() as u64;
        out
    }

    /// State changes since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// One packet from the peer, already routed to us by its connection id.
    pub fn handle_packet(&mut self, p: Packet, now: Instant) {
        if self.state.is_terminal() {
            // Our last ack may have been lost: the peer sends again something we already
            // have (its FIN, or, after a timeout, older data). Say it again (a TCP TIME_WAIT
            // in miniature; the owner decides how long to keep a closed connection).
            let already_had = ahead(p.seq_nr, self.receiver.ack_nr()).is_none();
            if self.state == State::Closed
                && matches!(p.kind, PacketType::Fin | PacketType::Data)
                && self.receiver.finished()
                && already_had
            {
                let mut state = self.packet(PacketType::State, self.seq_nr, Vec::new());
                state.ack_nr = self.receiver.ack_nr();
                self.outgoing.push(state);
            } else {
                self.stats.ignored += 1;
            }
            return;
        }
        match p.kind {
            PacketType::Reset => {
                self.finish(State::Reset, Event::Reset);
                return;
            }
            PacketType::Syn => {
                // Our ST_STATE was lost: the initiator repeats its SYN; answer again.
                if self.state == State::SynRecv && p.seq_nr == self.receiver.ack_nr() {
                    self.ack_owed = true;
                    self.last_heard = now;
                } else {
                    self.stats.ignored += 1;
                }
                return;
            }
            _ => {}
        }
        if self.state == State::SynSent && p.kind == PacketType::Fin {
            // libtorrent answers a SYN it will not take (a torrent not ready yet, too many
            // connections) with an ST_FIN: a refusal, not an open connection.
            self.finish(State::Reset, Event::Reset);
            return;
        }
        if self.state == State::SynSent {
            // Only an ack of our SYN opens the connection. Its seq_nr is the peer's next
            // packet (libutp's convention, see mod.rs), so the last one "received" is one less.
            if p.ack_nr != self.seq_nr.wrapping_sub(1) {
                self.stats.ignored += 1;
                return;
            }
            // [W17.3]
            self.receiver.start_at(p.seq_nr.wrapping_sub(1));
            self.state = State::Connected;
            self.events.push(Event::Connected);
        }
        // Where `p.ack_nr` falls: before our oldest unacked packet, among those in flight,
        // or past anything we ever sent (a confused or lying peer: ignore the whole packet).
        let oldest_minus_one = self.oldest().wrapping_sub(1);
        let acked = p.ack_nr.wrapping_sub(oldest_minus_one);
        let stale = acked >= 0x8000;
        if !stale && usize::from(acked) > self.in_flight.len() {
            self.stats.ignored += 1;
            return;
        }
        self.last_heard = now;
        self.reply_micros = self.micros(now).wrapping_sub(p.timestamp_micros);
        // A window bigger than what we can hold changes nothing; cap it before any sum.
        self.peer_window = (p.wnd_size as usize).min(SEND_BUFFER);
        if p.timestamp_difference_micros != 0 {
            self.congestion
                .delay_sample(p.timestamp_difference_micros, now);
        }
        if !stale {
            self.process_ack(&p, usize::from(acked), now);
        }
        if self.state == State::SynRecv {
            self.state = State::Connected;
            self.events.push(Event::Connected);
        }
        match p.kind {
            PacketType::Data => {
                let outcome = self.receiver.data(p.seq_nr, p.payload);
                self.count(outcome);
                self.ack_owed = true;
            }
            PacketType::Fin => {
                let outcome = self.receiver.fin(p.seq_nr);
                self.count(outcome);
                self.ack_owed = true;
            }
            _ => {}
        }
        if self.receiver.finished() && !self.end_reported {
            self.end_reported = true;
            self.events.push(Event::EndOfStream);
        }
        if self.state == State::FinSent && self.fin_acked && self.receiver.finished() {
            self.finish(State::Closed, Event::Closed);
            return;
        }
        self.send_what_fits(now);
    }

    fn count(&mut self, outcome: Received) {
        match outcome {
            Received::Duplicate => self.stats.duplicates += 1,
            Received::Refused => self.stats.ignored += 1,
            Received::InOrder | Received::Held => {}
        }
    }

    /// The app may still write: the connection is opening or open, and not closing.
    fn accepts_writes(&self) -> bool {
        matches!(
            self.state,
            State::SynSent | State::SynRecv | State::Connected
        ) && !self.closing
    }

    /// Something of ours awaits an ack, or data waits for a shut window to open.
    fn needs_timer(&self) -> bool {
        !self.in_flight.is_empty() || (self.state == State::Connected && !self.unsent.is_empty())
    }

    /// We are waiting for the peer to say something; silence this long kills the connection.
    fn waiting(&self) -> bool {
        self.needs_timer() || matches!(self.state, State::SynSent | State::SynRecv | State::FinSent)
    }

    fn finish(&mut self, state: State, event: Event) {
        self.state = state;
        self.events.push(event);
        self.timer = None;
        self.in_flight.clear();
        self.unsent = VecDeque::new();
        self.cur_window = 0;
        self.held_bytes = 0;
        self.lost_count = 0;
        if state == State::Reset {
            self.receiver = Receiver::new(0);
        }
    }

    fn micros(&self, now: Instant) -> u32 {
        // The clock wraps at 32 bits, as every uTP timestamp does.
        now.saturating_duration_since(self.epoch).as_micros() as u32
    }
}
