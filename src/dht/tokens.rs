//! The announce permission of the DHT (BEP 5, "DHT Protocol": the "token").
//!
//! Where it sits: when the `node` thread answers a `get_peers` query it hands the asker a token
//! made here for the asker's IP address; when an `announce_peer` arrives, the node checks that
//! its token is one we made for the address the datagram came from. Without this anyone could
//! store any address under any torrent (and point a swarm at a victim).
//!
//! A token is the first 8 bytes of SHA-1(secret ‖ IPv4 address), so nothing has to be
//! remembered per asker. The secret changes every [`ROTATE_EVERY`]; tokens made with the
//! current or the previous secret are accepted, so a token stays valid for 5 to 10 minutes,
//! the window BEP 5 describes ("tokens up to ten minutes old are accepted").

use crate::encoding::sha1;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How long one secret is the current one; a token lives one to two such periods.
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);

/// Bytes of a token we hand out: enough that guessing one is hopeless (2^64 tries per IP).
pub const TOKEN_LEN: usize = 8;

/// The current and the previous secret, and when the current one was made.
pub struct Tokens {
    current: [u8; 20],
    previous: [u8; 20],
    /// When `current` became current, on the fixed grid `start + n × ROTATE_EVERY`, so that
    /// a token's life does not stretch when no query comes for a while.
    rotated_at: Instant,
}

impl Tokens {
    /// Two fresh secrets: nothing is valid yet but the tokens made from now on.
    pub fn new(now: Instant) -> Tokens {
        Tokens {
            current: crate::encoding::unpredictable_20(),
            previous: crate::encoding::unpredictable_20(),
            rotated_at: now,
        }
    }

    /// The token for `ip`: 8 bytes of SHA-1(secret ‖ ip), with the secret rotated first if due.
    pub fn token_for(&mut self, ip: Ipv4Addr, now: Instant) -> Vec<u8> {
        self.rotate(now);
        make_token(&self.current, ip).to_vec()
    }

    /// Whether `token` was made by [`Tokens::token_for`] for this `ip` with the current or the
    /// previous secret.
    pub fn is_valid(&mut self, ip: Ipv4Addr, token: &[u8], now: Instant) -> bool {
        self.rotate(now);
        // Both are compared in full, without an early exit, so the time taken says nothing.
        let current = same(&make_token(&self.current, ip), token);
        let previous = same(&make_token(&self.previous, ip), token);
        current | previous
    }

    /// Moves to a new secret for every whole `ROTATE_EVERY` since the last rotation; after
    /// two or more, both secrets are new.
    fn rotate(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.rotated_at);
        let periods = elapsed.as_secs() / ROTATE_EVERY.as_secs();
        if periods == 0 {
            return;
        }
        self.previous = if periods == 1 {
            self.current
        } else {
            crate::encoding::unpredictable_20()
        };
        self.current = crate::encoding::unpredictable_20();
        // Stay on the grid; a gap too long to count in u32 periods just restarts it at `now`.
        self.rotated_at = u32::try_from(periods)
            .ok()
            .and_then(|n| ROTATE_EVERY.checked_mul(n))
            .and_then(|span| self.rotated_at.checked_add(span))
            .unwrap_or(now);
    }
}

fn make_token(secret: &[u8; 20], ip: Ipv4Addr) -> [u8; TOKEN_LEN] {
    let mut input = [0u8; 24];
    input[..20].copy_from_slice(secret);
    input[20..].copy_from_slice(&ip.octets());
    let digest = sha1(&input);
    let mut out = [0u8; TOKEN_LEN];
    out.copy_from_slice(&digest[..TOKEN_LEN]);
    out
}

/// Equal length and equal bytes, looking at every byte whatever the first difference.
fn same(ours: &[u8; TOKEN_LEN], theirs: &[u8]) -> bool {
    if theirs.len() != TOKEN_LEN {
        return false;
    }
    ours.iter()
        .zip(theirs)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
    const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

    #[test]
    fn a_token_is_valid_for_the_ip_it_was_made_for_only() {
        let start = Instant::now();
        let mut tokens = Tokens::new(start);
        let token = tokens.token_for(IP, start);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(tokens.is_valid(IP, &token, start));
        assert!(!tokens.is_valid(OTHER, &token, start));
        // The same ip gets the same token until the secret rotates.
        assert_eq!(tokens.token_for(IP, start + Duration::from_secs(10)), token);
        assert_ne!(tokens.token_for(OTHER, start), token);
    }

    #[test]
    fn a_token_survives_one_rotation_but_not_two() {
        let start = Instant::now();
        let mut tokens = Tokens::new(start);
        let token = tokens.token_for(IP, start);
        let almost = start + ROTATE_EVERY - Duration::from_secs(1);
        assert!(tokens.is_valid(IP, &token, almost));
        let once = start + ROTATE_EVERY + Duration::from_secs(1);
        assert!(tokens.is_valid(IP, &token, once), "previous secret");
        assert_ne!(
            tokens.token_for(IP, once),
            token,
            "a new token after rotation"
        );
        let twice = start + 2 * ROTATE_EVERY + Duration::from_secs(1);
        assert!(!tokens.is_valid(IP, &token, twice));
    }

    #[test]
    fn a_long_silence_expires_every_token() {
        let start = Instant::now();
        let mut tokens = Tokens::new(start);
        let token = tokens.token_for(IP, start);
        let later = start + 7 * ROTATE_EVERY;
        assert!(!tokens.is_valid(IP, &token, later));
        // And tokens made after the gap work on the grid again.
        let fresh = tokens.token_for(IP, later);
        assert!(tokens.is_valid(IP, &fresh, later + ROTATE_EVERY));
    }

    #[test]
    fn the_lifetime_stays_on_the_grid() {
        // A token made just before a rotation is due lives one period plus a moment, not two:
        // the rotation counts from the grid, not from when someone next asked.
        let start = Instant::now();
        let mut tokens = Tokens::new(start);
        let late = start + ROTATE_EVERY - Duration::from_secs(1);
        let token = tokens.token_for(IP, late);
        let check = start + 2 * ROTATE_EVERY + Duration::from_secs(1);
        assert!(!tokens.is_valid(IP, &token, check));
    }

    #[test]
    fn forged_tokens_are_refused() {
        let start = Instant::now();
        let mut tokens = Tokens::new(start);
        let real = tokens.token_for(IP, start);
        assert!(!tokens.is_valid(IP, &[], start));
        assert!(!tokens.is_valid(IP, &real[..7], start), "a prefix");
        let mut longer = real.clone();
        longer.push(0);
        assert!(!tokens.is_valid(IP, &longer, start), "a longer token");
        for _ in 0..1000 {
            let guess: Vec<u8> = (0..TOKEN_LEN).map(|_| fastrand::u8(..)).collect();
            if guess != real {
                assert!(!tokens.is_valid(IP, &guess, start));
            }
        }
        // Two stores with their own secrets do not accept each other's tokens.
        let mut other = Tokens::new(start);
        assert!(!other.is_valid(IP, &real, start));
    }
}
