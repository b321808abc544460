//! The scheduler's periodic rounds: choking (BEP 3 "choking and optimistic unchoking") every
//! 10 s, and peer exchange (BEP 11) once a minute — walkthrough §11, §14.
//!
//! ```text
//!   every 10 s: the rates of the round just ended ──► choker.rs ──► Choke / Unchoke commands
//!   an interested peer and a free slot            ──► Unchoke at once (no wait for a round)
//!   every 60 s: the addresses of our peers        ──► Command::Pex to every peer thread
//! ```

use super::{PEX_EVERY, SNUBBED_AFTER, Scheduler};
use crate::choker::{PeerStats, ROUND_INTERVAL};
use crate::events::Command;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

impl Scheduler {
    /// The choker's input changed: an interested peer may take a free slot at once, rather
    /// than wait for the next round.
    pub(super) fn interest(&mut self, peer: SocketAddr, interested: bool) {
        let slots = self.settings.choker.regular_slots + 1;
        let unchoked = self.peers.values().filter(|p| p.unchoked).count();
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        entry.interested = interested;
        if interested && !entry.unchoked && unchoked < slots {
            entry.unchoked = true;
            self.command(peer, Command::Unchoke);
        }
    }

    /// Every 10 s: ask the choker whom to unchoke, and tell the peers whose state changes.
    /// The rates are what each peer gave and took during the round just ended. [W11.3]
    pub(super) fn choke_round_if_due(&mut self) {
        let elapsed = self.last_choke.elapsed();
        if elapsed < ROUND_INTERVAL {
            return;
        }
        self.last_choke = Instant::now();
        let stats = self.peer_stats(elapsed);
        let unchoke: HashSet<SocketAddr> = self
            .choker
            .round(&stats, self.picker.is_complete())
            .into_iter()
            .collect();
        log::debug!("choke round: unchoking {unchoke:?}");
        let mut changes = Vec::new();
        for (addr, entry) in &mut self.peers {
            let wanted = unchoke.contains(addr);
            if wanted != entry.unchoked {
                entry.unchoked = wanted;
                changes.push((*addr, wanted));
            }
            entry.round_start = (entry.downloaded, entry.uploaded);
        }
        for (addr, unchoke) in changes {
            let command = if unchoke {
                Command::Unchoke
            } else {
                Command::Choke
            };
            self.command(addr, command);
        }
    }

    /// Once a minute: every peer thread gets the addresses of our other peers for `ut_pex`
    /// (it sends only what changed, and only to peers that support it). [W14.2]
    pub(super) fn pex_round_if_due(&mut self) {
        if !self.settings.pex || self.last_pex.elapsed() < PEX_EVERY {
            return;
        }
        self.last_pex = Instant::now();
        let reachable: Vec<SocketAddr> = self
            .peers
            .values()
            .filter(|p| p.commands.is_some())
            .filter_map(|p| p.listen_addr)
            .collect();
        self.broadcast(Command::Pex(reachable));
    }

    /// What the choker sees of each connected peer over the last round.
    pub(super) fn peer_stats(&self, round: Duration) -> Vec<PeerStats> {
        let seconds = round.as_secs_f64().max(0.001);
        let downloading = !self.picker.is_complete();
        self.peers
            .iter()
            .filter(|(_, e)| e.commands.is_some())
            .map(|(addr, e)| PeerStats {
                peer: *addr,
                interested: e.interested,
                download_rate: (e.downloaded - e.round_start.0) as f64 / seconds,
                upload_rate: (e.uploaded - e.round_start.1) as f64 / seconds,
                connected_for: e.connected_at.elapsed(),
                snubbed: downloading
                    && e.connected_at.elapsed() > SNUBBED_AFTER
                    && e.last_block.elapsed() > SNUBBED_AFTER
                    && e.bitfield.count_missing_from(&self.ours) > 0,
                unchoked: e.unchoked,
            })
            .collect()
    }
}
