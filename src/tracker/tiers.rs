//! Which tracker to ask: BEP 12 tiers — walkthrough §3.
//!
//! `announce-list` groups trackers into tiers: `[[a, b], [c]]`. BEP 12's rules:
//!
//! ```text
//!   at load:     shuffle each tier            [[b, a], [c]]
//!   announce:    try the tiers in order, the trackers of a tier in order;
//!                stop at the first that answers
//!   on success:  move that tracker to the front of its tier   (a answered: [[a, b], [c]])
//! ```
//!
//! The shuffle spreads clients over a tier's trackers; the move to the front keeps a client on
//! a tracker that works. Each [`Tracker`] is created on first use and kept, so a UDP
//! tracker's connection id and an HTTP tracker's `tracker id` survive between announces.

use super::{AnnounceRequest, AnnounceResponse, Problem, Tracker, TrackerConfig, TrackerError};
use std::fmt;

/// A torrent's trackers in BEP 12 order.
pub struct TrackerTiers {
    tiers: Vec<Vec<Slot>>,
    config: TrackerConfig,
}

/// One tracker URL and, once used, its live [`Tracker`].
struct Slot {
    url: String,
    tracker: Option<Tracker>,
}

/// Every tracker failed (or there were none).
#[derive(Debug)]
pub struct AnnounceError {
    pub failures: Vec<TrackerError>,
}

impl TrackerTiers {
    /// Shuffles each tier, as BEP 12 asks.
    pub fn new(tiers: Vec<Vec<String>>, config: TrackerConfig) -> TrackerTiers {
        let tiers = tiers
            .into_iter()
            .map(|mut tier| {
                fastrand::shuffle(&mut tier);
                tier.into_iter()
                    .map(|url| Slot { url, tracker: None })
                    .collect()
            })
            .filter(|tier: &Vec<Slot>| !tier.is_empty())
            .collect();
        TrackerTiers { tiers, config }
    }

    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// The URLs in the order they would be tried.
    pub fn urls(&self) -> Vec<&str> {
        self.tiers
            .iter()
            .flatten()
            .map(|s| s.url.as_str())
            .collect()
    }

    /// Announces to the first tracker that answers; returns its URL and answer. [W3.3]
    pub fn announce(
        &mut self,
        request: &AnnounceRequest,
    ) -> Result<(String, AnnounceResponse), AnnounceError> {
        let mut failures = Vec::new();
        for tier in &mut self.tiers {
            for i in 0..tier.len() {
                match announce_slot(&mut tier[i], request, self.config) {
                    Ok(response) => {
                        tier[..=i].rotate_right(1); // the tracker that answered goes first
                        return Ok((tier[0].url.clone(), response));
                    }
                    Err(error) => {
                        // Not a warning: the next tracker may answer, and when none does the
                        // caller reports every failure at once.
                        log::info!("{error}");
                        failures.push(error);
                    }
                }
            }
        }
        Err(AnnounceError { failures })
    }

    /// Announces to the tracker at `url` only: a `stopped` goes where the `started` went, not
    /// through every tier again.
    pub fn announce_to(
        &mut self,
        url: &str,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let slot = self.tiers.iter_mut().flatten().find(|slot| slot.url == url);
        match slot {
            Some(slot) => announce_slot(slot, request, self.config),
            None => Err(TrackerError::new(
                url,
                Problem::BadUrl("not among the torrent's trackers".into()),
            )),
        }
    }
}

fn announce_slot(
    slot: &mut Slot,
    request: &AnnounceRequest,
    config: TrackerConfig,
) -> Result<AnnounceResponse, TrackerError> {
    if slot.tracker.is_none() {
        slot.tracker = Some(Tracker::new(&slot.url, config)?);
    }
    slot.tracker
        .as_mut()
        .expect("created just above")
        .announce(request)
}

impl fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.failures.as_slice() {
            [] => write!(
                f,
                "the torrent names no tracker (use --peer to give peers directly)"
            ),
            [only] => write!(f, "{only}"),
            all => {
                write!(f, "none of the {} trackers answered", all.len())?;
                all.iter().try_for_each(|e| write!(f, "; {e}"))
            }
        }
    }
}

impl std::error::Error for AnnounceError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::InfoHash;
    use crate::peer_id::PeerId;
    use crate::tracker::Event;

    fn request() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId::generate(),
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: 1,
            event: Event::Started,
            numwant: None,
            key: 1,
        }
    }

    #[test]
    fn every_tracker_of_every_tier_is_tried_and_reported() {
        let tiers = vec![
            vec!["gopher://a".to_string(), "ftp://b".to_string()],
            vec!["wss://c".to_string()],
        ];
        let mut tiers = TrackerTiers::new(tiers, TrackerConfig::default());
        let error = tiers.announce(&request()).unwrap_err();
        assert_eq!(error.failures.len(), 3);
        assert!(
            error
                .to_string()
                .starts_with("none of the 3 trackers answered; tracker ")
        );
    }

    #[test]
    fn no_trackers_is_a_clear_error() {
        let mut tiers = TrackerTiers::new(vec![vec![]], TrackerConfig::default());
        assert!(tiers.is_empty());
        assert!(
            tiers
                .announce(&request())
                .unwrap_err()
                .to_string()
                .contains("no tracker")
        );
    }

    #[test]
    fn each_tier_is_shuffled_and_tiers_keep_their_order() {
        let tier: Vec<String> = (0..8).map(|i| format!("http://t{i}/announce")).collect();
        let orders: std::collections::HashSet<Vec<String>> = (0..20)
            .map(|_| {
                let tiers = TrackerTiers::new(
                    vec![tier.clone(), vec!["udp://last:1".into()]],
                    TrackerConfig::default(),
                );
                let urls: Vec<String> = tiers.urls().iter().map(|u| u.to_string()).collect();
                assert_eq!(
                    urls.last().map(String::as_str),
                    Some("udp://last:1"),
                    "the second tier stays second"
                );
                urls
            })
            .collect();
        assert!(
            orders.len() > 1,
            "20 shuffles of 8 trackers all came out the same"
        );
    }
}
