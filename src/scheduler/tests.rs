//! The scheduler's decisions, driven without a thread or a socket: events in through
//! `Scheduler::handle`, commands out of the channels a test gives as its "peers".

use super::*;
use crate::metainfo::PieceHash;
use crate::piece::BlockRequest;
use crossbeam_channel::unbounded;

/// 4 pieces of 32 KiB (2 blocks each).
const PIECES: usize = 4;

struct Test {
    scheduler: Scheduler,
    /// Piece indexes sent to be verified.
    verify: Receiver<u32>,
}

fn test() -> Test {
    let layout = Arc::new(PieceLayout {
        piece_length: 32768,
        total_length: PIECES as u64 * 32768,
        hashes: vec![PieceHash([0; 20]); PIECES],
        v2: None,
    });
    let have = Bitfield::new(PIECES);
    let (_events_tx, events) = unbounded();
    let (verify_tx, verify) = unbounded();
    let settings = Settings {
        max_peers: 10,
        after_complete: AfterComplete::Stop,
        choker: ChokerConfig::default(),
        piece_order: picker::PieceOrder::default(),
        advertise: have.clone(),
        wanted: Wanted::every_piece(&layout),
        our_id: PeerId(*b"-PW0001-schedulertst"),
        pex: true,
    };
    let connect: Connect = Box::new(|_| {}); // nobody is dialled in these tests
    let scheduler = Scheduler::new(layout, &have, events, verify_tx, connect, settings);
    Test { scheduler, verify }
}

fn addr(n: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], n))
}

impl Test {
    /// A peer connects (incoming) with every piece; returns its command channel.
    fn seed(&mut self, n: u16) -> Receiver<Command> {
        let (commands, receiver) = unbounded();
        let mut id = *b"-XX0001-000000000000";
        id[19] = n as u8;
        self.scheduler.handle(Event::Connected {
            peer: addr(n),
            peer_id: PeerId(id),
            incoming: true,
            commands,
        });
        self.scheduler.handle(Event::Bitfield {
            peer: addr(n),
            bitfield: Bitfield::full(PIECES),
        });
        receiver
    }

    fn want(&mut self, n: u16, count: usize, only: Option<Vec<u32>>) -> Vec<BlockRequest> {
        let (reply, answer) = unbounded();
        self.scheduler.handle(Event::WantBlocks {
            peer: addr(n),
            count,
            only,
            reply,
        });
        answer.try_recv().expect("WantBlocks is answered at once")
    }

    /// Peer `n` delivers every block of `index` (requested first).
    fn deliver_piece(&mut self, n: u16, index: u32) {
        let blocks = self.want(n, 2, Some(vec![index]));
        assert!(blocks.iter().all(|b| b.index == index), "{blocks:?}");
        self.scheduler.handle(Event::BlocksWritten {
            peer: addr(n),
            blocks,
        });
    }
}

#[test]
fn a_new_peer_hears_our_pieces_first() {
    let mut t = test();
    let commands = t.seed(1);
    assert_eq!(
        commands.try_recv(),
        Ok(Command::OurPieces(Bitfield::new(PIECES)))
    );
}

#[test]
fn a_complete_piece_is_verified_and_announced_to_every_peer() {
    let mut t = test();
    let (a, b) = (t.seed(1), t.seed(2));
    t.deliver_piece(1, 2);
    assert_eq!(
        t.verify.try_recv(),
        Ok(2),
        "the complete piece goes to be hashed"
    );
    t.scheduler.handle(Event::Verified { index: 2, ok: true });
    for commands in [a, b] {
        assert!(commands.try_iter().any(|c| c == Command::Have(2)));
    }
    assert_eq!(t.scheduler.progress.pieces_have, 1);
}

#[test]
fn a_sole_sender_of_bad_pieces_is_banned_at_the_third() {
    let mut t = test();
    let liar = t.seed(1);
    for _ in 0..MAX_STRIKES {
        t.deliver_piece(1, 0);
        t.scheduler.handle(Event::Verified {
            index: 0,
            ok: false,
        });
    }
    assert!(liar.try_iter().any(|c| c == Command::Stop));
    assert!(t.scheduler.banned.contains(&addr(1)));
}

#[test]
fn an_unreadable_piece_ends_the_run_and_strikes_nobody() {
    let mut t = test();
    let honest = t.seed(1);
    t.deliver_piece(1, 0);
    let error = StorageError {
        action: "read",
        path: "out.bin".into(),
        source: std::io::ErrorKind::UnexpectedEof.into(),
    };
    t.scheduler
        .handle(Event::PieceUnreadable { index: 0, error });
    assert!(t.scheduler.storage_failed.is_some(), "the run ends");
    assert_eq!(t.scheduler.peers[&addr(1)].strikes, 0);
    assert!(!honest.try_iter().any(|c| c == Command::Stop));
}

#[test]
fn a_piece_refused_while_unchoked_is_not_asked_of_that_peer_again() {
    let mut t = test();
    t.seed(1);
    let blocks = t.want(1, 1, Some(vec![3]));
    t.scheduler.handle(Event::Rejected {
        peer: addr(1),
        block: blocks[0],
        choked: false,
    });
    let again = t.want(1, 8, None);
    assert!(!again.is_empty());
    assert!(again.iter().all(|b| b.index != 3), "{again:?}");
}

#[test]
fn a_reject_because_the_peer_chokes_us_is_no_refusal() {
    let mut t = test();
    t.seed(1);
    let blocks = t.want(1, 1, Some(vec![3]));
    t.scheduler.handle(Event::Rejected {
        peer: addr(1),
        block: blocks[0],
        choked: true,
    });
    // The block is back in the pool, and piece 3 may be asked of the same peer again.
    assert_eq!(t.want(1, 1, Some(vec![3])), blocks);
}

#[test]
fn a_suggested_piece_is_started_first() {
    let mut t = test();
    t.seed(1);
    t.scheduler.handle(Event::Suggested {
        peer: addr(1),
        index: 3,
    });
    assert_eq!(t.want(1, 1, None)[0].index, 3);
}

#[test]
fn an_interested_peer_takes_a_free_upload_slot_at_once() {
    let mut t = test();
    let commands = t.seed(1);
    t.scheduler.handle(Event::Interest {
        peer: addr(1),
        interested: true,
    });
    assert!(commands.try_iter().any(|c| c == Command::Unchoke));
}

#[test]
fn blocks_of_a_peer_that_leaves_go_to_another() {
    let mut t = test();
    t.seed(1);
    t.seed(2);
    let taken = t.want(1, 8, None);
    assert_eq!(taken.len(), 8, "every block of the torrent");
    t.scheduler.handle(Event::Disconnected {
        peer: addr(1),
        reason: "gone".into(),
        outstanding: taken.clone(),
    });
    let mut picked = t.want(2, 8, None);
    picked.sort_by_key(|b| (b.index, b.begin));
    let mut taken = taken;
    taken.sort_by_key(|b| (b.index, b.begin));
    assert_eq!(picked, taken, "the released blocks go to the other peer");
}

#[test]
fn each_connection_counts_each_piece_once() {
    let mut t = test();
    t.seed(1);
    assert_eq!(t.scheduler.picker.availability(2), 1);
    // A repeated `have`, and events of a connection the scheduler no longer holds (a replaced
    // duplicate), change nothing.
    t.scheduler.handle(Event::Have {
        peer: addr(1),
        index: 2,
    });
    t.scheduler.handle(Event::Have {
        peer: addr(9),
        index: 2,
    });
    t.scheduler.handle(Event::Bitfield {
        peer: addr(9),
        bitfield: Bitfield::full(PIECES),
    });
    assert_eq!(t.scheduler.picker.availability(2), 1);
}

#[test]
fn a_peer_thread_that_crashed_gives_its_blocks_back_without_a_list() {
    let mut t = test();
    t.seed(1);
    t.seed(2);
    t.seed(3);
    let taken = t.want(1, 8, None);
    assert_eq!(taken.len(), 8);
    // A crashed thread's `Disconnected` carries no outstanding blocks.
    t.scheduler.handle(Event::Disconnected {
        peer: addr(1),
        reason: "the peer thread crashed".into(),
        outstanding: Vec::new(),
    });
    assert_eq!(t.want(2, 8, None).len(), 8);
    // Had peer 1 kept its blocks, peer 2's would be endgame copies, and with two peers down
    // for each block (`ENDGAME_COPIES`) none would be left for a third.
    assert_eq!(t.want(3, 8, None).len(), 8, "peer 1 still holds blocks");
}

/// The state that left a leecher of `demo --size 32 --peers 20` choked by everyone for 10 s:
/// slots handed out first come, first served before the first round, and a slot whose holder
/// left (or completed) kept empty until the next round. Now the slot goes to a waiting peer
/// at once, and nobody is choked for it.
#[test]
fn a_slot_that_comes_free_goes_at_once_to_a_peer_that_waits() {
    let mut t = test();
    // Five interested peers take the five slots (4 regular + the optimistic one) at once.
    let peers: Vec<Receiver<Command>> = (1..=7).map(|n| t.seed(n)).collect();
    for n in 1..=7 {
        t.scheduler.handle(Event::Interest {
            peer: addr(n),
            interested: true,
        });
    }
    let unchoked = |commands: &Receiver<Command>| {
        commands
            .try_iter()
            .filter(|c| matches!(c, Command::Unchoke | Command::Choke))
            .collect::<Vec<_>>()
    };
    let first: Vec<Vec<Command>> = peers.iter().map(unchoked).collect();
    assert!(
        first[..5].iter().all(|c| *c == [Command::Unchoke]),
        "{first:?}"
    );
    assert!(
        first[5..].iter().all(Vec::is_empty),
        "peers 6 and 7 wait: {first:?}"
    );
    // Peer 1 leaves: one of the two waiting peers gets its slot, before any round.
    t.scheduler.handle(Event::Disconnected {
        peer: addr(1),
        reason: "complete, and so are we".into(),
        outstanding: Vec::new(),
    });
    let second: Vec<Vec<Command>> = peers[5..].iter().map(unchoked).collect();
    assert_eq!(
        second.iter().filter(|c| **c == [Command::Unchoke]).count(),
        1,
        "{second:?}"
    );
    // Peer 2 has all it wanted of ours: the other waiting peer gets its slot, and peer 2,
    // which wants nothing, is choked for it.
    t.scheduler.handle(Event::Interest {
        peer: addr(2),
        interested: false,
    });
    assert_eq!(
        unchoked(&peers[1]),
        [Command::Choke],
        "peer 2 gives its slot back"
    );
    let third: Vec<Vec<Command>> = peers[5..].iter().map(unchoked).collect();
    assert_eq!(
        third.iter().filter(|c| **c == [Command::Unchoke]).count(),
        1,
        "{third:?}"
    );
    // Five slots, five unchoked: peers 3, 4, 5, 6 and 7; peer 2 wants nothing.
    let unchoked_now = t.scheduler.peers.values().filter(|p| p.unchoked).count();
    assert_eq!(unchoked_now, 5, "never more than the slots");
    // Peer 2 wants something again: no slot is free, so it waits for one.
    t.scheduler.handle(Event::Interest {
        peer: addr(2),
        interested: true,
    });
    assert!(unchoked(&peers[1]).is_empty(), "peer 2 waits");
}
