//! How many requests to keep in flight: the pipeline depth — walkthrough §7.
//!
//! A request takes a round trip to be answered. To keep the connection busy, enough requests
//! must be out to cover the bandwidth × delay product; a fixed depth of 5 blocks (80 KiB)
//! caps a 100 ms link at 800 KiB/s. peerwire measures the rate at which blocks arrive and
//! keeps about 1.5 seconds' worth in flight, between 8 and 250 blocks (Transmission accepts
//! 500 queued requests, libtorrent more).

use crate::piece::BLOCK_LEN;
use std::time::{Duration, Instant};

const MIN_DEPTH: usize = 8;
const MAX_DEPTH: usize = 250;
/// Before the first measurement: the floor. A new connection that asked for 32 blocks at once
/// took every block of the few pieces a young swarm has onto one (maybe slow) peer, leaving the
/// other peers that unchoke us nothing to send (seen in the network lab); and 200 peers × 32
/// requests were more blocks than a 64 MiB file has, so endgame began at the start. One second
/// of measured rate sets the real depth. [W22.1]
const START_DEPTH: usize = MIN_DEPTH;
/// How much time's worth of data to keep requested.
const TARGET: Duration = Duration::from_millis(1500);

/// The rate estimate and the depth it gives.
#[derive(Debug)]
pub struct Pipeline {
    depth: usize,
    window_start: Instant,
    window_bytes: u64,
}

impl Default for Pipeline {
    fn default() -> Pipeline {
        Pipeline::new()
    }
}

impl Pipeline {
    pub fn new() -> Pipeline {
        Pipeline {
            depth: START_DEPTH,
            window_start: Instant::now(),
            window_bytes: 0,
        }
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    /// A block of `bytes` arrived. Once a second, the depth follows the measured rate.
    pub fn received(&mut self, bytes: usize) {
        self.window_bytes += bytes as u64;
        let elapsed = self.window_start.elapsed();
        if elapsed >= Duration::from_secs(1) {
            self.depth = depth_for_rate(self.window_bytes as f64 / elapsed.as_secs_f64());
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
    }
}

/// Blocks needed to cover `TARGET` at `bytes_per_second`: bandwidth × delay. [W7.2]
pub fn depth_for_rate(bytes_per_second: f64) -> usize {
    let blocks = bytes_per_second * TARGET.as_secs_f64() / f64::from(BLOCK_LEN);
    (blocks.ceil() as usize).clamp(MIN_DEPTH, MAX_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_bandwidth_times_delay() {
        assert_eq!(depth_for_rate(0.0), MIN_DEPTH);
        assert_eq!(depth_for_rate(1_000_000.0), 92); // 1 MB/s × 1.5 s ÷ 16 KiB
        assert_eq!(depth_for_rate(1e9), MAX_DEPTH);
    }
}
