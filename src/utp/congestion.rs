//! How much one uTP connection may have in flight, and how long it waits for an ack (BEP 29,
//! "uTorrent transport protocol": congestion control, timeouts) — pure arithmetic.
//!
//! ```text
//!   timestamp_difference of each packet ──► base delay (2-minute minimum) ──► our_delay
//!   bytes acked + our_delay ──► LEDBAT: cwnd grows under the 100 ms target, shrinks over it
//!   loss ──► cwnd halved;  timeout ──► cwnd one packet, timeout doubled
//!   round trips of packets sent once ──► rtt, rtt_var ──► timeout = max(rtt + 4·rtt_var, 500 ms)
//! ```

use super::{
    BASE_DELAY_WINDOW, CCONTROL_TARGET, INITIAL_CWND, INITIAL_TIMEOUT, MAX_CWND,
    MAX_CWND_INCREASE_BYTES_PER_RTT, MAX_TIMEOUT, MIN_CWND, MIN_TIMEOUT,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The base delay is kept as the minimum of each of these slices of time, so the two-minute
/// window needs 12 numbers, not every sample.
const DELAY_SLOT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Congestion {
    /// `max_window` in the BEP: bytes we may have in flight, before the peer's window.
    cwnd: usize,
    /// Smoothed round trip and its variance, once one packet sent once has been acked.
    rtt: Option<(Duration, Duration)>,
    /// Consecutive timeouts: each doubles the timeout.
    backoff: u32,
    /// (start of the slot, lowest delay sample in it), oldest first.
    delays: VecDeque<(Instant, u32)>,
    /// The latest sample minus the base delay, in microseconds.
    our_delay: Option<u32>,
}

impl Default for Congestion {
    fn default() -> Congestion {
        Congestion::new()
    }
}

impl Congestion {
    pub fn new() -> Congestion {
        Congestion {
            cwnd: INITIAL_CWND,
            rtt: None,
            backoff: 0,
            delays: VecDeque::new(),
            our_delay: None,
        }
    }

    pub fn cwnd(&self) -> usize {
        self.cwnd
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.map(|(rtt, _)| rtt)
    }

    pub fn our_delay(&self) -> Option<Duration> {
        self.our_delay
            .map(|us| Duration::from_micros(u64::from(us)))
    }

    /// How long to wait for an ack now: from the round trips, doubled for each timeout in a
    /// row, never over [`MAX_TIMEOUT`].
    pub fn timeout(&self) -> Duration {
        let base = match self.rtt {
            Some((rtt, var)) => (rtt + var * 4).max(MIN_TIMEOUT),
            None => INITIAL_TIMEOUT,
        };
        base.saturating_mul(1 << self.backoff.min(16))
            .min(MAX_TIMEOUT)
    }

    /// One round trip of a packet sent once (BEP 29's formulas; the first sample starts the
    /// variance at half of itself, as TCP does).
    pub fn rtt_sample(&mut self, sample: Duration) {
        self.rtt = Some(match self.rtt {
            None => (sample, sample / 2),
            Some((rtt, var)) => {
                let delta = rtt.abs_diff(sample);
                let var = var - var / 4 + delta / 4;
                let rtt = rtt - rtt / 8 + sample / 8;
                (rtt, var)
            }
        });
    }

    /// Something new was acked: the peer is there, the timeout is itself again.
    pub fn acked(&mut self) {
        self.backoff = 0;
    }

    /// A `timestamp_difference_microseconds` from the peer: how long our packet took one way,
    /// on clocks that disagree by an unknown constant. Only its excess over the lowest value
    /// of the last two minutes means anything: that excess is queueing, `our_delay`.
    pub fn delay_sample(&mut self, sample: u32, now: Instant) {
        while self
            .delays
            .front()
            .is_some_and(|&(start, _)| now.saturating_duration_since(start) > BASE_DELAY_WINDOW)
        {
            self.delays.pop_front();
        }
        match self.delays.back_mut() {
            Some((start, lowest)) if now.saturating_duration_since(*start) < DELAY_SLOT => {
                if earlier(sample, *lowest) {
                    *lowest = sample;
                }
            }
            _ => self.delays.push_back((now, sample)),
        }
        let base = self
            .delays
            .iter()
            .map(|&(_, d)| d)
            .reduce(|a, b| if earlier(b, a) { b } else { a })
            .unwrap_or(sample);
        // Both clocks wrap at 32 bits: the difference is taken the same way.
        self.our_delay = Some(sample.wrapping_sub(base).min(i32::MAX as u32));
    }

    /// LEDBAT, per ack: `cwnd += MAX_CWND_INCREASE_BYTES_PER_RTT × delay_factor ×
    /// window_factor`, where `delay_factor = off_target / CCONTROL_TARGET` and `window_factor
    /// = bytes_acked / cwnd` (a whole window acked, one round trip, adds at most the maximum
    /// increase). Under the target it grows, over it it shrinks; never below one packet.
    pub fn on_ack(&mut self, bytes_acked: usize) {
        let target = CCONTROL_TARGET.as_micros() as i128;
        let our_delay = i128::from(self.our_delay.unwrap_or(0));
        let off_target = target - our_delay;
        // [W17.5] Positive under the target delay, negative over it; scaled by how much of
        // the window this ack covers.
        let gain = MAX_CWND_INCREASE_BYTES_PER_RTT as i128 * off_target * bytes_acked as i128
            / (target * self.cwnd.max(1) as i128);
        let cwnd = (self.cwnd as i128 + gain).clamp(MIN_CWND as i128, MAX_CWND as i128);
        // The clamp keeps it between two `usize` constants.
        self.cwnd = usize::try_from(cwnd).unwrap_or(MIN_CWND);
    }

    /// A packet was lost (duplicate acks, a selective ACK): halve the window, as TCP does.
    pub fn on_loss(&mut self) {
        self.cwnd = (self.cwnd / 2).max(MIN_CWND);
    }

    /// Nothing acked within the timeout: one packet's window, and wait twice as long.
    pub fn on_timeout(&mut self) {
        self.cwnd = MIN_CWND;
        self.backoff = self.backoff.saturating_add(1);
    }
}

/// Whether delay `a` is lower than `b` on 32-bit clocks that wrap.
fn earlier(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_follows_the_beps_formula_and_doubles() {
        let mut c = Congestion::new();
        assert_eq!(c.timeout(), INITIAL_TIMEOUT);
        c.rtt_sample(Duration::from_millis(100));
        assert_eq!(
            c.timeout(),
            Duration::from_millis(500),
            "100 + 4 × 50 < 500"
        );
        c.rtt_sample(Duration::from_millis(900));
        // rtt = 100 + 800/8 = 200; var = 50 - 12.5 + 800/4 = 237.5; 200 + 950 = 1150.
        assert_eq!(c.timeout(), Duration::from_micros(1_150_000));
        c.on_timeout();
        assert_eq!(c.timeout(), Duration::from_micros(2_300_000));
        assert_eq!(c.cwnd(), MIN_CWND);
        for _ in 0..40 {
            c.on_timeout();
        }
        assert_eq!(c.timeout(), MAX_TIMEOUT);
        c.acked();
        assert_eq!(c.timeout(), Duration::from_micros(1_150_000));
    }

    #[test]
    fn base_delay_is_a_two_minute_minimum() {
        let t0 = Instant::now();
        let mut c = Congestion::new();
        c.delay_sample(50_000, t0);
        c.delay_sample(80_000, t0 + Duration::from_secs(1));
        assert_eq!(c.our_delay(), Some(Duration::from_millis(30)));
        // 130 s later the 50 ms sample has left the window: 90 is the new base.
        c.delay_sample(90_000, t0 + Duration::from_secs(130));
        assert_eq!(c.our_delay(), Some(Duration::ZERO));
        // Clocks that wrap: 10 is "after" u32::MAX - 9.
        let mut w = Congestion::new();
        w.delay_sample(u32::MAX - 9, t0);
        w.delay_sample(10, t0);
        assert_eq!(w.our_delay(), Some(Duration::from_micros(20)));
        assert_eq!(w.delays.len(), 1);
    }

    #[test]
    fn ledbat_grows_under_the_target_and_shrinks_over_it() {
        let t0 = Instant::now();
        let mut c = Congestion::new();
        c.delay_sample(1_000, t0);
        let start = c.cwnd();
        c.on_ack(start);
        // A whole window acked at zero queueing delay: the full increase.
        assert_eq!(c.cwnd(), start + MAX_CWND_INCREASE_BYTES_PER_RTT);
        c.delay_sample(1_000 + 150_000, t0); // 150 ms of queueing: 50 ms over the target
        let before = c.cwnd();
        c.on_ack(before);
        assert_eq!(c.cwnd(), before - MAX_CWND_INCREASE_BYTES_PER_RTT / 2);
        for _ in 0..100 {
            c.on_ack(c.cwnd());
        }
        assert_eq!(c.cwnd(), MIN_CWND, "never below one packet");
        c.on_loss();
        assert_eq!(c.cwnd(), MIN_CWND);
    }
}
