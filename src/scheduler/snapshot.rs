//! What the scheduler knows, frozen a few times a second for the live web view (`--web`) —
//! walkthrough §21.
//!
//! The scheduler is the one thread that knows the whole swarm as we see it: our pieces, every
//! peer's pieces, who chokes whom, what the choker (BEP 3 "choking and optimistic unchoking")
//! decided last. The web thread must not ask it anything (the scheduler never waits on
//! anybody), so the scheduler *publishes* instead:
//!
//! ```text
//!   scheduler ── every 250 ms: Scheduler::snapshot ──► SnapshotBoard (swap one Arc) ──► web thread
//!                                                                       └─ reads the latest, as often as it likes
//! ```
//!
//! [`Scheduler::snapshot`] is a pure function of the scheduler's state and the clock it is
//! given: tests feed the scheduler events and read the snapshot, no thread needed. The board
//! holds the last one; a scheduler paused in a debugger leaves it in place, and the page goes
//! on showing it.

use super::Scheduler;
use super::progress::{Progress, Traffic};
use crate::peer_id::PeerId;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the scheduler publishes: often enough for the eye, rare enough to cost nothing.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Where we learned of a peer. Grows with every new way of finding peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSource {
    /// An announce answer (BEP 3, BEP 15).
    Tracker,
    /// A `get_peers` answer of the DHT (BEP 5).
    Dht,
    /// Another peer's `ut_pex` message (BEP 11).
    Pex,
    /// A neighbour's announce on the local network (BEP 14).
    Lsd,
    /// Given on the command line (`--peer`), or by the program that runs the session.
    Given,
    /// It dialled us.
    Incoming,
}

impl PeerSource {
    /// The word the page and the JSON show.
    pub fn name(self) -> &'static str {
        match self {
            PeerSource::Tracker => "tracker",
            PeerSource::Dht => "dht",
            PeerSource::Pex => "pex",
            PeerSource::Lsd => "lsd",
            PeerSource::Given => "peer",
            PeerSource::Incoming => "incoming",
        }
    }
}

/// One piece, as our piece map draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceMark {
    /// Verified and ours.
    Have,
    /// Some block asked for or written; not verified yet.
    Downloading,
    /// Nothing of it yet.
    Missing,
}

impl PieceMark {
    /// One letter per piece in `/api/state`: `h`, `d`, `m`.
    pub fn letter(self) -> char {
        match self {
            PieceMark::Have => 'h',
            PieceMark::Downloading => 'd',
            PieceMark::Missing => 'm',
        }
    }
}

/// One connection, as the page's peer table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView {
    pub addr: SocketAddr,
    /// `None` while our dial is still in its handshake.
    pub peer_id: Option<PeerId>,
    /// From the extended handshake's `v` (BEP 10), else read from the peer id (BEP 20).
    pub client: String,
    pub source: PeerSource,
    /// TCP or uTP, plain or encrypted (`Connection::link`); empty during our dial's handshake.
    pub transport: String,
    /// We unchoke it (we upload to it).
    pub we_unchoke: bool,
    /// It said `interested`.
    pub it_is_interested: bool,
    /// It unchoked us (it uploads to us).
    pub it_unchokes: bool,
    /// It has a piece we lack (we tell it `interested`).
    pub we_are_interested: bool,
    /// Bytes of blocks on this connection, each way.
    pub downloaded: u64,
    pub uploaded: u64,
    /// Bytes per second during the current choke round (what the next round will rank by).
    pub download_rate: f64,
    pub upload_rate: f64,
    /// Blocks we asked of it that have not arrived.
    pub in_flight: usize,
    /// Its pieces, one `1` or `0` per piece.
    pub pieces: String,
    pub pieces_count: usize,
}

/// The choker's last round: whom it unchoked and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChokeDecision {
    /// Seconds since the session started, when the round ran.
    pub at: f64,
    /// We had every piece: ranked by our upload rate to each peer, not theirs to us.
    pub seeding: bool,
    /// The regular slots, best first, with the rate they were ranked by (bytes per second).
    pub regular: Vec<(SocketAddr, f64)>,
    /// The optimistic slot (BEP 3), if any peer could take it.
    pub optimistic: Option<SocketAddr>,
    /// Interested peers left choked.
    pub choked: Vec<SocketAddr>,
}

/// Everything the page draws for one session, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Seconds since the session started.
    pub elapsed: f64,
    /// Counted up by one each publication: the page sees whether it is new.
    pub sequence: u64,
    pub our_id: Option<PeerId>,
    /// One mark per piece.
    pub pieces: Vec<PieceMark>,
    /// For each piece, how many connected peers have it: what rarest-first reads.
    pub availability: Vec<u32>,
    pub progress: Progress,
    pub peers: Vec<PeerView>,
    pub choker: Option<ChokeDecision>,
    /// By peer id, across reconnections: what the demo's matrix and summary count.
    pub traffic: Vec<Traffic>,
    /// The scheduler's run is over: these numbers are the final ones.
    pub finished: bool,
}

/// The latest snapshot of one session, shared by the scheduler (which writes) and the web
/// thread (which reads). The lock is held for one pointer swap or clone, never while a
/// snapshot is built or turned into JSON.
#[derive(Debug, Clone, Default)]
pub struct SnapshotBoard {
    latest: Arc<Mutex<Arc<Snapshot>>>,
}

impl SnapshotBoard {
    pub fn new() -> SnapshotBoard {
        SnapshotBoard::default()
    }

    /// Replaces the latest snapshot.
    pub fn publish(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        // A reader that panicked holding the lock left a whole `Arc` behind: still valid.
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        *latest = snapshot;
    }

    /// The latest snapshot (an empty one before the first publication).
    pub fn latest(&self) -> Arc<Snapshot> {
        Arc::clone(&self.latest.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A readable client name from an Azureus-style peer id (BEP 20): `-TR3000-` → `Transmission
/// 3.0.0.0`; other ids show their printable first bytes.
pub fn client_from_peer_id(id: &PeerId) -> String {
    let bytes = &id.0;
    let azureus = bytes[0] == b'-'
        && bytes[7] == b'-'
        && bytes[1..7].iter().all(|b| b.is_ascii_alphanumeric());
    if !azureus {
        return bytes[..8]
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
            .collect();
    }
    let code = [bytes[1], bytes[2]];
    let name = match &code {
        b"PW" => "peerwire",
        b"LT" | b"lt" => "libtorrent",
        b"TR" => "Transmission",
        b"qB" => "qBittorrent",
        b"DE" => "Deluge",
        b"UT" => "\u{b5}Torrent",
        b"AZ" => "Vuze",
        b"A2" => "aria2",
        // Both letters checked alphanumeric above.
        _ => return format!("{} (unknown client)", String::from_utf8_lossy(&bytes[1..7])),
    };
    let version: Vec<String> = bytes[3..7]
        .iter()
        .map(|&b| (b as char).to_string())
        .collect();
    format!("{name} {}", version.join("."))
}

impl Scheduler {
    /// The scheduler's state as the page shows it, at `now`. Reads only. [W21.2]
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let in_flight = self.picker.requested_by_peer();
        // The current round's rates, over the round's real length so far.
        let round = now
            .saturating_duration_since(self.last_choke)
            .as_secs_f64()
            .max(0.001);
        let mut peers: Vec<PeerView> = self
            .peers
            .iter()
            .map(|(addr, e)| PeerView {
                addr: *addr,
                peer_id: e.peer_id,
                client: match (&e.client, &e.peer_id) {
                    (Some(name), _) => name.clone(),
                    (None, Some(id)) => client_from_peer_id(id),
                    (None, None) => String::new(),
                },
                source: e.source,
                transport: e.transport.clone().unwrap_or_default(),
                we_unchoke: e.unchoked,
                it_is_interested: e.interested,
                it_unchokes: e.unchokes_us,
                we_are_interested: self.picker.is_interesting(&e.bitfield),
                downloaded: e.downloaded,
                uploaded: e.uploaded,
                download_rate: (e.downloaded - e.round_start.0) as f64 / round,
                upload_rate: (e.uploaded - e.round_start.1) as f64 / round,
                in_flight: in_flight.get(addr).copied().unwrap_or(0),
                pieces: (0..e.bitfield.num_pieces())
                    .map(|i| if e.bitfield.has(i) { '1' } else { '0' })
                    .collect(),
                pieces_count: e.bitfield.count(),
            })
            .collect();
        // A stable order, so rows do not jump about between two polls.
        peers.sort_by_key(|p| p.addr);
        let mut traffic: Vec<Traffic> = self.traffic.values().cloned().collect();
        traffic.sort_by_key(|t| t.addr);
        Snapshot {
            elapsed: now.saturating_duration_since(self.started).as_secs_f64(),
            sequence: self.published,
            our_id: Some(self.settings.our_id),
            pieces: self.picker.marks(),
            availability: self.picker.copies().to_vec(),
            progress: self.progress,
            peers,
            choker: self.last_decision.clone(),
            traffic,
            finished: false,
        }
    }

    /// Publishes a snapshot if a board is attached and the last one is old enough. Called
    /// once per turn of the loop; costs one clock read when not due.
    pub(super) fn publish_if_due(&mut self, finished: bool) {
        let Some(board) = &self.board else { return };
        let now = Instant::now();
        if !finished && now.saturating_duration_since(self.last_publish) < PUBLISH_EVERY {
            return;
        }
        self.last_publish = now;
        self.published += 1;
        let snapshot = Snapshot {
            finished,
            ..self.snapshot(now)
        };
        board.publish(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choker::ChokerConfig;
    use crate::events::Event;
    use crate::metainfo::PieceHash;
    use crate::piece::PieceLayout;
    use crate::scheduler::{AfterComplete, Connect, Settings};
    use crate::wire::Bitfield;
    use crossbeam_channel::unbounded;

    /// A scheduler of 4 pieces of 2 blocks, with nobody connected and piece 3 already ours.
    fn scheduler() -> Scheduler {
        let mut have = Bitfield::new(4);
        have.set(3);
        scheduler_of(32768, have, 10)
    }

    /// A scheduler of `have.num_pieces()` pieces of `piece_length`, with nobody connected.
    fn scheduler_of(piece_length: u64, have: Bitfield, max_peers: usize) -> Scheduler {
        let pieces = have.num_pieces();
        let layout = Arc::new(PieceLayout {
            piece_length,
            total_length: pieces as u64 * piece_length,
            hashes: vec![PieceHash([0; 20]); pieces],
            v2: None,
        });
        let (_events_tx, events) = unbounded();
        let (verify_tx, _verify) = unbounded();
        let settings = Settings {
            max_peers,
            after_complete: AfterComplete::Stop,
            choker: ChokerConfig::default(),
            piece_order: crate::scheduler::picker::PieceOrder::default(),
            advertise: have.clone(),
            our_id: PeerId(*b"-PW0001-snapshottest"),
            pex: true,
            wanted: crate::storage::Wanted::every_piece(&layout),
        };
        let connect: Connect = Box::new(|_| {});
        Scheduler::new(layout, &have, events, verify_tx, connect, settings)
    }

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], n))
    }

    #[test]
    fn the_snapshot_shows_what_the_events_said() {
        let mut s = scheduler();
        let (commands, _peer) = unbounded();
        s.handle(Event::Connected {
            peer: addr(1),
            peer_id: PeerId(*b"-TR3000-000000000001"),
            incoming: true,
            commands,
        });
        let mut theirs = Bitfield::new(4);
        theirs.set(0);
        theirs.set(1);
        s.handle(Event::Bitfield {
            peer: addr(1),
            bitfield: theirs,
        });
        s.handle(Event::Unchoked { peer: addr(1) });
        s.handle(Event::Interest {
            peer: addr(1),
            interested: true,
        });
        // One block of piece 0 asked for: piece 0 is being downloaded, one block in flight.
        let (reply, answer) = unbounded();
        s.handle(Event::WantBlocks {
            peer: addr(1),
            count: 1,
            only: Some(vec![0]),
            reply,
        });
        assert_eq!(answer.try_recv().map(|b| b.len()), Ok(1));
        let snapshot = s.snapshot(s.started + Duration::from_secs(2));
        assert_eq!(
            snapshot.pieces,
            [
                PieceMark::Downloading,
                PieceMark::Missing,
                PieceMark::Missing,
                PieceMark::Have
            ]
        );
        assert_eq!(snapshot.elapsed, 2.0);
        assert_eq!(snapshot.availability, [1, 1, 0, 0]);
        let [peer] = &snapshot.peers[..] else {
            panic!("one peer: {:?}", snapshot.peers);
        };
        assert_eq!(peer.client, "Transmission 3.0.0.0");
        assert_eq!(peer.source, PeerSource::Incoming);
        assert_eq!(peer.pieces, "1100");
        assert_eq!((peer.pieces_count, peer.in_flight), (2, 1));
        assert!(peer.it_unchokes && peer.it_is_interested && peer.we_are_interested);
        // Interested with a free slot: unchoked at once, without waiting for a round.
        assert!(peer.we_unchoke);
        assert!(snapshot.choker.is_none(), "no round has run yet");
        // Its `v` replaces the name read from the peer id.
        s.handle(Event::ClientName {
            peer: addr(1),
            name: "<script>alert(1)</script>".into(),
        });
        let snapshot = s.snapshot(s.started);
        assert_eq!(snapshot.peers[0].client, "<script>alert(1)</script>");
    }

    #[test]
    fn a_dialled_peer_keeps_the_source_that_named_it() {
        let mut s = scheduler();
        s.add_peer_from(addr(2), PeerSource::Pex);
        s.connect_more();
        let (commands, _peer) = unbounded();
        s.handle(Event::Connected {
            peer: addr(2),
            peer_id: PeerId(*b"-qB4500-000000000002"),
            incoming: false,
            commands,
        });
        let snapshot = s.snapshot(Instant::now());
        assert_eq!(snapshot.peers[0].source, PeerSource::Pex);
        assert_eq!(snapshot.peers[0].client, "qBittorrent 4.5.0.0");
    }

    /// What publishing costs the scheduler: a snapshot of 50 peers and 1,024 pieces, built
    /// and swapped in. Run by hand for `docs/performance.md`:
    /// `cargo test --release --lib -- --ignored what_a_snapshot_costs --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn what_a_snapshot_costs() {
        let pieces = 1024;
        let mut s = scheduler_of(262_144, Bitfield::new(pieces), 100);
        let mut channels = Vec::new();
        for n in 1..=50u16 {
            let (commands, peer) = unbounded();
            channels.push(peer);
            let mut id = *b"-TR3000-000000000000";
            id[18..].copy_from_slice(&n.to_be_bytes());
            s.handle(Event::Connected {
                peer: addr(n),
                peer_id: PeerId(id),
                incoming: true,
                commands,
            });
            let mut bitfield = Bitfield::new(pieces);
            (0..pieces)
                .filter(|i| (i + n as usize).is_multiple_of(3))
                .for_each(|i| bitfield.set(i));
            s.handle(Event::Bitfield {
                peer: addr(n),
                bitfield,
            });
        }
        let board = SnapshotBoard::new();
        let rounds = 1000;
        let started = Instant::now();
        for _ in 0..rounds {
            board.publish(s.snapshot(Instant::now()));
        }
        let each = started.elapsed() / rounds;
        assert_eq!(board.latest().peers.len(), 50);
        println!(
            "a snapshot of 50 peers and {pieces} pieces: {each:?} to build and publish \
             ({:.3} % of the scheduler's time at 4 a second)",
            each.as_secs_f64() * 4.0 * 100.0
        );
    }

    #[test]
    fn the_board_hands_out_the_latest_and_the_unknown_ids_are_printable() {
        let board = SnapshotBoard::new();
        assert_eq!(board.latest().sequence, 0);
        board.publish(Snapshot {
            sequence: 7,
            ..Snapshot::default()
        });
        assert_eq!(board.latest().sequence, 7);
        assert_eq!(
            client_from_peer_id(&PeerId(*b"M7-4-3--\x00\x01xxxxxxxxxx")),
            "M7-4-3--"
        );
        assert_eq!(
            client_from_peer_id(&PeerId(*b"\x00\x01\x02\x03\x04\x05\x06\x07xxxxxxxxxxxx")),
            "????????"
        );
    }
}
