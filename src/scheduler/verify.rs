//! The hash check on its own threads (BEP 3 "pieces") — walkthrough §9.
//!
//! ```text
//!   scheduler ──index of a complete piece──► verify 0, verify 1, …  (one per core)
//!   verify n  ──seal it, read it back from disk, SHA-1 it──► Event::Verified / PieceUnreadable
//! ```
//!
//! The session starts these threads and hands the scheduler the sending end of their queue,
//! so the scheduler itself starts no thread and can be driven by unit tests alone.

use crate::events::Event;
use crate::piece::PieceLayout;
use crate::storage::Storage;
use crossbeam_channel::Sender;
use std::sync::Arc;

/// Starts one hashing thread per core (`verify 0`, …); returns where to send the index of a
/// completed piece. Each reads the piece back from disk and checks its SHA-1.
pub fn start(
    layout: Arc<PieceLayout>,
    storage: Arc<Storage>,
    events: Sender<Event>,
) -> Sender<u32> {
    let (jobs, queue) = crossbeam_channel::unbounded::<u32>();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for n in 0..threads {
        let (queue, layout, storage, events) = (
            queue.clone(),
            Arc::clone(&layout),
            Arc::clone(&storage),
            events.clone(),
        );
        let verify = move || {
            let mut buffer = Vec::new();
            for index in queue {
                // A piece that cannot be read is not a piece that failed its hash: only a
                // hash mismatch is the senders' fault (errors in the right tier).
                // `verify_piece` seals the piece before reading it: a late copy of one of its
                // blocks (endgame) can no longer overwrite what was checked.
                let event = match storage.verify_piece(&layout, index, &mut buffer) {
                    Ok(ok) => Event::Verified { index, ok },
                    Err(error) => Event::PieceUnreadable { index, error },
                };
                if events.send(event).is_err() {
                    return; // the scheduler has ended: nobody wants the verdict
                }
            }
        };
        std::thread::Builder::new()
            .name(format!("verify {n}"))
            .spawn(verify)
            .expect("spawning a verifying thread");
    }
    jobs
}
