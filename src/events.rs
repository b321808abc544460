//! The thread contract: every message between the peer threads and the scheduler — walkthrough §7, §8.
//!
//! Each peer thread owns one connection; the scheduler thread owns every decision about
//! pieces. They talk only through these two enums, over crossbeam channels:
//!
//! ```text
//!   peer thread ──Event──► scheduler        (one shared channel, many senders)
//!   peer thread ◄─Command── scheduler        (one channel per peer)
//!   verifier    ──Event::Verified──► scheduler
//! ```
//!
//! A connection starts with `Connected` → `OurPieces`; while it lives the peer thread reports
//! what the peer says (bitfield, have, interest, choke) and what moved (blocks written, bytes
//! uploaded); the scheduler answers with blocks to request and with its decisions (have,
//! choke/unchoke, cancel, stop).
//!
//! A web seed's thread (BEP 19) speaks the same contract: a peer that has every piece, never
//! chokes, and never asks for anything.
//!
//! Reading this file is reading the whole conversation.

use crate::peer_id::PeerId;
use crate::piece::BlockRequest;
use crate::storage::StorageError;
use crate::wire::Bitfield;
use crossbeam_channel::Sender;
use std::net::SocketAddr;

/// What peer threads (and the verifying threads) tell the scheduler.
#[derive(Debug)]
pub enum Event {
    /// Handshake done; here is how to send this peer commands. The first command is always
    /// `OurPieces` (or `Stop`): the peer thread waits for it before its first message.
    Connected {
        peer: SocketAddr,
        peer_id: PeerId,
        /// The peer dialled us (its address is not one to dial back).
        incoming: bool,
        commands: Sender<Command>,
    },
    /// How the connection travels, in words (`TCP, plain`, `uTP, RC4 (MSE/PE)`): sent right
    /// after `Connected`, for the web view only.
    Link { peer: SocketAddr, transport: String },
    /// The peer's pieces, from its `bitfield` message.
    Bitfield {
        peer: SocketAddr,
        bitfield: Bitfield,
    },
    /// The peer got a new piece (`have`).
    Have { peer: SocketAddr, index: u32 },
    /// The peer choked us: it dropped our queued requests, so they return to the pool.
    /// (With the fast extension, BEP 6, a choke drops nothing: see `Rejected`.)
    Choked {
        peer: SocketAddr,
        dropped: Vec<BlockRequest>,
    },
    /// The peer will not serve this request (`reject_request`, BEP 6): the block returns to the
    /// pool at once. `choked`: the peer chokes us (the usual reason); otherwise it refuses the
    /// piece itself, and the scheduler asks it for other pieces.
    Rejected {
        peer: SocketAddr,
        block: BlockRequest,
        choked: bool,
    },
    /// The peer suggests a piece (`suggest_piece`, BEP 6): a hint for the picker.
    Suggested { peer: SocketAddr, index: u32 },
    /// The peer unchoked us: it will serve our requests. The peer thread asks for blocks on
    /// its own; the scheduler keeps it only to show it (`--web`).
    Unchoked { peer: SocketAddr },
    /// The client name and version from the peer's extended handshake (`v`, BEP 10), cut to
    /// a few dozen characters; shown by the web view only.
    ClientName { peer: SocketAddr, name: String },
    /// The peer said `interested` (true) or `not interested` (false) — the choker's input.
    Interest { peer: SocketAddr, interested: bool },
    /// The peer told us of other peers (`ut_pex`, BEP 11).
    PeersFound {
        peer: SocketAddr,
        addrs: Vec<SocketAddr>,
    },
    /// The peer listens on this port (from its extended handshake): where others can dial it.
    ListenPort { peer: SocketAddr, port: u16 },
    /// We sent the peer this many bytes of blocks (reported a few at a time).
    Uploaded { peer: SocketAddr, bytes: u64 },
    /// The peer thread can send up to `count` more requests: which blocks? Answered on `reply`
    /// at once (possibly with none), so the peer thread can wait for it. `only`: blocks of
    /// these pieces alone (the peer chokes us but allows them: BEP 6 `allowed_fast`).
    WantBlocks {
        peer: SocketAddr,
        count: usize,
        only: Option<Vec<u32>>,
        reply: Sender<Vec<BlockRequest>>,
    },
    /// Requested blocks arrived and are written to disk (reported a few at a time).
    BlocksWritten {
        peer: SocketAddr,
        blocks: Vec<BlockRequest>,
    },
    /// The connection ended; its outstanding requests return to the pool.
    Disconnected {
        peer: SocketAddr,
        reason: String,
        outstanding: Vec<BlockRequest>,
    },
    /// Writing a block the peer sent failed (the disk is full, or the directory read-only or
    /// gone), or reading one it asked for did. Not the peer's fault, and no other peer would
    /// do better: the download ends with this error, keeping every piece verified so far.
    /// [W9.3]
    StorageFailed {
        peer: SocketAddr,
        error: StorageError,
    },
    /// A complete piece was hashed: `ok` if it matched the torrent.
    Verified { index: u32, ok: bool },
    /// A complete piece could not be read back for its hash check. The disk's fault, never
    /// that of the peers that sent it (no strike): the download ends as for `StorageFailed`.
    PieceUnreadable { index: u32, error: StorageError },
}

/// What the scheduler tells one peer thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The pieces we have, for our `bitfield` message: the first command a peer thread gets.
    OurPieces(Bitfield),
    /// We verified this piece: send `have` (and maybe lose interest in the peer).
    Have(u32),
    /// The choker's decision: send `choke` and drop the peer's queued requests...
    Choke,
    /// ... or send `unchoke` and serve its requests.
    Unchoke,
    /// The addresses of our connected peers, for `ut_pex` (sent once a minute, BEP 11).
    Pex(Vec<SocketAddr>),
    /// Send `cancel`: another peer delivered this block first (endgame).
    Cancel(BlockRequest),
    /// Close the connection: the download is complete, or the peer is banned.
    Stop,
}

/// What a thread's panic said, so that a crash can be reported across the contract as text:
/// `panic!` carries a `&str` or a `String`; anything else is reported as "no message".
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (None, Some(text)) => text.clone(),
        (None, None) => "no message".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::panic_text;

    #[test]
    fn a_panic_is_reported_by_its_text() {
        let literal = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_text(literal.as_ref()), "plain");
        let formatted = std::panic::catch_unwind(|| panic!("piece {}", 7)).unwrap_err();
        assert_eq!(panic_text(formatted.as_ref()), "piece 7");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_text(other.as_ref()), "no message");
    }
}
