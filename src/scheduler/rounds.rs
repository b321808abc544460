//! The scheduler's periodic rounds: choking (BEP 3 "choking and optimistic unchoking") every
//! 10 s, and peer exchange (BEP 11) once a minute — walkthrough §11, §14.
//!
//! ```text
//!   every 10 s: the rates of the round just ended ──► choker.rs ──► Choke / Unchoke commands
//!   a free slot (new, or its holder left or lost interest) and a waiting peer
//!                                                  ──► Unchoke at once (no wait for a round)
//!   every 60 s: the addresses of our peers        ──► Command::Pex to every peer thread
//! ```

use super::snapshot::ChokeDecision;
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
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        // Kept for the next round's statistics.
        entry.interested = interested;
        // Interested: it may take a free slot. Not interested: if we unchoke it and another
        // peer waits, its slot goes to that one.
        self.fill_free_slots();
    }

    /// Applies `Choker::fill_free_slots`: called whenever a slot may have come free, or a
    /// peer may want one. Without this a new peer waits up to a whole round (10 s) before we
    /// upload to it, a fresh swarm sits idle at the start, and a slot whose peer left stays
    /// empty until the next round. A holder that wants nothing is choked only when another
    /// peer waits for its slot: a peer whose interest flickers while nobody else wants a slot
    /// is not choked and unchoked over and over (BEP 3's "fibrillation").
    pub(super) fn fill_free_slots(&mut self) {
        let stats = self.peer_stats(self.last_choke.elapsed());
        let seeding = self.picker.is_complete();
        let changes = self.choker.fill_free_slots(&stats, seeding);
        // Chokes first: a slot is given back before it is given again.
        for (peers, unchoke) in [(changes.choke, false), (changes.unchoke, true)] {
            for peer in peers {
                if let Some(entry) = self.peers.get_mut(&peer) {
                    entry.unchoked = unchoke;
                }
                self.command(
                    peer,
                    if unchoke {
                        Command::Unchoke
                    } else {
                        Command::Choke
                    },
                );
            }
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
        // Rates over the round's real length: a late round (a scheduler paused in a
        // debugger) must not make every peer look slow.
        let stats = self.peer_stats(elapsed);
        // Complete: the choker ranks by our upload rate to each peer. BEP 3: a seed "uses
        // its upload rate rather than its download rate to decide who to unchoke".
        let seeding = self.picker.is_complete();
        let chosen = self.choker.round(&stats, seeding);
        // Kept for the web view only; one small vector per round.
        self.last_decision = Some(decision(
            &stats,
            &chosen,
            self.choker.optimistic(),
            seeding,
            self.started.elapsed(),
        ));
        let unchoke: HashSet<SocketAddr> = chosen.into_iter().collect();
        log::debug!("choke round: unchoking {unchoke:?}");
        let mut changes = Vec::new();
        for (addr, entry) in &mut self.peers {
            let wanted = unchoke.contains(addr);
            // Only changes go to the peer threads: a `choke` to a choked peer says nothing.
            if wanted != entry.unchoked {
                entry.unchoked = wanted;
                changes.push((*addr, wanted));
            }
            // Every counter restarts, changed or not: the next round's rates are its own.
            entry.round_start = (entry.downloaded, entry.uploaded);
        }
        // Sent after the loop: `command` needs `self`, which the loop holds through `peers`.
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
        // Not for a private torrent (BEP 27). BEP 11: "Clients must batch updates to send no
        // more than 1 PEX message per minute."
        if !self.settings.pex || self.last_pex.elapsed() < PEX_EVERY {
            return;
        }
        self.last_pex = Instant::now();
        // Only peers past their handshake, at an address others can dial: the port a peer
        // dialled us from would be useless to anyone else.
        let reachable: Vec<SocketAddr> = self
            .peers
            .values()
            .filter(|p| p.commands.is_some())
            .filter_map(|p| p.listen_addr)
            .collect();
        log::debug!("pex round: {} addresses to share", reachable.len());
        // The whole list to every peer thread: each one knows what it told its own peer
        // before, and sends only the changes, leaving that peer out of its own list.
        self.broadcast(Command::Pex(reachable));
    }

    /// What the choker sees of each connected peer over the last round.
    pub(super) fn peer_stats(&self, round: Duration) -> Vec<PeerStats> {
        // Never zero, so a rate is always a number.
        let seconds = round.as_secs_f64().max(0.001);
        // Only a downloader can be snubbed: a seed wants nothing from anyone.
        let downloading = !self.picker.is_complete();
        self.peers
            .iter()
            // Past the handshake only: a dial in progress has no rates, and cannot be
            // unchoked (it has no command channel).
            .filter(|(_, e)| e.commands.is_some())
            .map(|(addr, e)| PeerStats {
                peer: *addr,
                interested: e.interested,
                download_rate: (e.downloaded - e.round_start.0) as f64 / seconds,
                upload_rate: (e.uploaded - e.round_start.1) as f64 / seconds,
                connected_for: e.connected_at.elapsed(),
                // Has what we want, has had a minute, and sent no block in the last one: the
                // choker gives its regular slots to peers that give (tit-for-tat).
                snubbed: downloading
                    && e.connected_at.elapsed() > SNUBBED_AFTER
                    && e.last_block.elapsed() > SNUBBED_AFTER
                    && e.bitfield.count_missing_from(&self.ours) > 0,
                unchoked: e.unchoked,
            })
            .collect()
    }
}

/// What a round decided, in the terms the page shows: the regular slots with the rate each
/// was ranked by, the optimistic slot, and the interested peers left out.
fn decision(
    stats: &[PeerStats],
    chosen: &[SocketAddr],
    optimistic: Option<SocketAddr>,
    seeding: bool,
    at: Duration,
) -> ChokeDecision {
    let rate_of = |addr: &SocketAddr| {
        let s = stats.iter().find(|s| s.peer == *addr);
        // While seeding the choker ranks by what we send; while downloading, by what we get.
        s.map_or(0.0, |s| match seeding {
            true => s.upload_rate,
            false => s.download_rate,
        })
    };
    ChokeDecision {
        at: at.as_secs_f64(),
        seeding,
        regular: chosen
            .iter()
            .filter(|a| Some(**a) != optimistic)
            .map(|a| (*a, rate_of(a)))
            .collect(),
        optimistic,
        choked: stats
            .iter()
            .filter(|s| s.interested && !chosen.contains(&s.peer))
            .map(|s| s.peer)
            .collect(),
    }
}
