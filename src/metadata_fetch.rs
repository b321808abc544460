//! Fetching a torrent's `info` dictionary from peers (BEP 9 "metadata exchange", over the
//! BEP 10 extension protocol) — walkthrough §13.
//!
//! A magnet link gives only the info hash. The rest of the torrent (the file names, the piece
//! hashes) is the `info` dictionary, and peers that have it hand it out in 16 KiB pieces:
//!
//! ```text
//!   for each known peer, on its own thread ("metadata 1.2.3.4:6881"), at most 8 at once:
//!     handshake (extension bit set) ──► extended handshake: m = {ut_metadata: 3}
//!     ◄── its extended handshake: its ut_metadata id, metadata_size (checked against a cap)
//!     request piece 0, 1, ... (to ITS id) ──► ◄── data / reject (to OUR id)
//!     assemble ──► SHA-1 == info hash? ──► the first verified copy wins
//! ```
//!
//! A peer that sends metadata that does not hash to the info hash is dropped and the others go
//! on; nothing is believed before the SHA-1 check. No bitfield is sent: we have no
//! pieces, and do not even know how many there are yet (and Transmission drops a peer whose
//! bitfield has the wrong length).

use crate::encoding::sha1;
use crate::metainfo::{InfoHash, InfoHashV2};
use crate::peer::connection::{Connection, PeerError};
use crate::peer::dial::Dialer;
use crate::peer_id::PeerId;
use crate::trace::Trace;
use crate::wire::Message;
use crate::wire::extension::{
    ExtendedHandshake, MAX_METADATA_SIZE, MetadataMessage, UT_METADATA_ID, metadata_pieces,
};
use crossbeam_channel::{Receiver, Sender};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Peers asked at the same time.
const PARALLEL: usize = 8;
/// How long one peer may take to hand over the whole dictionary.
const PER_PEER: Duration = Duration::from_secs(30);
/// Attempts per peer when it cannot be reached (a peer that lies is not asked again).
const MAX_ATTEMPTS: u32 = 3;
/// How long to wait, once we have the dictionary, for the peer to close its side of the
/// connection (see `Connection::close`): the download that follows dials it again at once.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("no peer sent the torrent's metadata within {0:?} ({1})")]
    NotFound(Duration, String),
}

/// Why one peer did not give us the metadata.
#[derive(Debug, Error)]
enum FromPeer {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("does not support metadata exchange (no ut_metadata in its extended handshake)")]
    NoSupport,
    #[error("announces {0} bytes of metadata (at most {MAX_METADATA_SIZE} accepted)")]
    TooLarge(u64),
    #[error("refused metadata piece {0}")]
    Rejected(u32),
    #[error("sent metadata that does not hash to the info hash (dropped)")]
    WrongHash,
    #[error("sent a bad metadata message: {0}")]
    Bad(String),
    #[error("took longer than {0:?}")]
    Slow(Duration),
}

impl FromPeer {
    /// A connection that failed may work a second later; a lie or a refusal will not change.
    fn worth_retrying(&self) -> bool {
        matches!(self, FromPeer::Peer(_) | FromPeer::Slow(_))
    }
}

/// Where to look and who we are.
#[derive(Clone)]
pub struct Request {
    pub info_hash: InfoHash,
    /// A v2 magnet link's hash (BEP 52): when the link has no v1 hash, `info_hash` is its first
    /// 20 bytes, and the dictionary must hash to all 32 with SHA-256.
    pub v2: Option<InfoHashV2>,
    pub our_id: PeerId,
    pub trace: Trace,
    /// Give up after this long without a verified copy.
    pub deadline: Duration,
    /// `--transport` and `--encryption` for these connections too.
    pub dialer: Dialer,
}

impl Request {
    /// Whether `info` is the dictionary the link names: its SHA-1 is the v1 info hash, or,
    /// for a link with only a v2 hash, its SHA-256 is that hash.
    pub fn is_named_by(&self, info: &[u8]) -> bool {
        match self.v2 {
            Some(v2) if v2.truncated() == self.info_hash => InfoHashV2::of(info) == v2,
            _ => InfoHash(sha1(info)) == self.info_hash,
        }
    }

    /// Dials `addr` for this torrent as `dialer` says, announcing `reserved`, and exchanges
    /// handshakes (the metadata fetch here, the piece layers in `layer_fetch.rs`).
    pub fn open(&self, addr: SocketAddr, reserved: [u8; 8]) -> Result<Connection, PeerError> {
        Connection::open(
            addr,
            self.info_hash,
            self.our_id,
            reserved,
            self.trace.clone(),
            &self.dialer,
        )
    }
}

/// Asks `peers` (and any that arrive on `more`) for the info dictionary; returns its bytes,
/// verified against the info hash. A peer that could not be reached is tried again (after 1,
/// then 2 s); one that lied or refused is not.
pub fn fetch(
    request: &Request,
    peers: &[SocketAddr],
    more: Option<&Receiver<Vec<SocketAddr>>>,
) -> Result<Vec<u8>, MetadataError> {
    let (results, inbox) = crossbeam_channel::unbounded();
    let mut queue = Queue::default();
    peers.iter().for_each(|p| queue.add(*p));
    let until = Instant::now() + request.deadline;
    loop {
        if let Some(more) = more {
            more.try_iter().flatten().for_each(|p| queue.add(p));
        }
        while let Some(addr) = queue.next_due() {
            spawn_asker(addr, request.clone(), results.clone());
        }
        if queue.is_exhausted() && more.is_none() {
            break;
        }
        let wait = until
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(250));
        match inbox.recv_timeout(wait) {
            Ok((_, Ok(info))) => return Ok(info),
            Ok((addr, Err(reason))) => queue.failed(addr, &reason),
            Err(_) if Instant::now() >= until => break,
            Err(_) => {}
        }
    }
    Err(MetadataError::NotFound(request.deadline, queue.report()))
}

/// Which peers to ask, when, and what went wrong with each.
#[derive(Default)]
struct Queue {
    /// Peers to ask, and from when.
    waiting: VecDeque<(Instant, SocketAddr)>,
    attempts: HashMap<SocketAddr, u32>,
    running: usize,
    failures: Vec<String>,
}

impl Queue {
    fn add(&mut self, addr: SocketAddr) {
        if let std::collections::hash_map::Entry::Vacant(entry) = self.attempts.entry(addr) {
            entry.insert(0);
            self.waiting.push_back((Instant::now(), addr));
        }
    }

    /// The next peer to ask now, if a thread is free.
    fn next_due(&mut self) -> Option<SocketAddr> {
        let now = Instant::now();
        let position = self.waiting.iter().position(|(at, _)| *at <= now)?;
        if self.running >= PARALLEL {
            return None;
        }
        let (_, addr) = self.waiting.remove(position)?;
        *self.attempts.entry(addr).or_default() += 1;
        self.running += 1;
        Some(addr)
    }

    fn failed(&mut self, addr: SocketAddr, reason: &FromPeer) {
        log::info!("{addr}: no metadata: {reason}");
        self.running -= 1;
        let attempts = self.attempts.get(&addr).copied().unwrap_or(MAX_ATTEMPTS);
        if reason.worth_retrying() && attempts < MAX_ATTEMPTS {
            let later = Instant::now() + Duration::from_secs(1 << (attempts - 1));
            self.waiting.push_back((later, addr));
        } else {
            self.failures.push(format!("{addr}: {reason}"));
        }
    }

    fn is_exhausted(&self) -> bool {
        self.running == 0 && self.waiting.is_empty()
    }

    fn report(&self) -> String {
        match self.failures.is_empty() {
            true => format!("{} peers tried", self.attempts.len()),
            false => self.failures.join("; "),
        }
    }
}

type Answer = (SocketAddr, Result<Vec<u8>, FromPeer>);

fn spawn_asker(addr: SocketAddr, request: Request, results: Sender<Answer>) {
    let run = move || {
        // The fetch has ended (another peer answered first, or time ran out): nobody needs
        // this answer.
        let _ = results.send((addr, ask(addr, &request)));
    };
    let name = format!("metadata {addr}");
    let builder = std::thread::Builder::new()
        .name(name)
        .stack_size(crate::peer::thread::CONNECTION_STACK);
    if builder.spawn(run).is_err() {
        log::warn!("cannot start a thread for {addr}");
    }
}

/// Dials `addr` with the extension bit set and sends our extended handshake (`ut_metadata`
/// only). `None`: the peer does not speak the extension protocol.
pub fn open_for_metadata(
    addr: SocketAddr,
    request: &Request,
) -> Result<Option<Connection>, PeerError> {
    let mut connection = request.open(addr, crate::wire::handshake::RESERVED_EXTENSIONS)?;
    if !connection.remote.supports_extensions() {
        return Ok(None);
    }
    let ours = ExtendedHandshake {
        extensions: vec![("ut_metadata".into(), UT_METADATA_ID)],
        client: Some(concat!("peerwire ", env!("CARGO_PKG_VERSION")).into()),
        ..ExtendedHandshake::default()
    };
    connection.send(&Message::Extended {
        id: 0,
        payload: ours.to_payload(),
    })?;
    connection.flush()?;
    Ok(Some(connection))
}

/// One peer, start to end: handshakes, then the pieces of the dictionary. [W13.2]
fn ask(addr: SocketAddr, request: &Request) -> Result<Vec<u8>, FromPeer> {
    let Some(mut connection) = open_for_metadata(addr, request)? else {
        return Err(FromPeer::NoSupport);
    };
    let started = Instant::now();
    let mut pieces: Option<Assembly> = None;
    loop {
        if started.elapsed() > PER_PEER {
            return Err(FromPeer::Slow(PER_PEER));
        }
        let Some(Message::Extended { id, payload }) = connection.receive(true)? else {
            continue; // bitfield, have, keep-alive...: not needed to fetch metadata
        };
        if id == 0 {
            let theirs = ExtendedHandshake::from_payload(&payload)
                .map_err(|e| FromPeer::Bad(e.to_string()))?;
            pieces = Some(start_requests(&mut connection, &theirs)?);
        } else if id == UT_METADATA_ID
            && let Some(assembly) = pieces.as_mut()
        {
            let message = MetadataMessage::from_payload(&payload)
                .map_err(|e| FromPeer::Bad(e.to_string()))?;
            if let Some(info) = assembly.take(message)? {
                // [W13.3] Nothing is believed before this check.
                if !request.is_named_by(&info) {
                    return Err(FromPeer::WrongHash);
                }
                connection.close(CLOSE_WAIT);
                return Ok(info);
            }
        }
    }
}

/// The peer's extended handshake is here: check the size, and ask for every piece.
fn start_requests(
    connection: &mut Connection,
    theirs: &ExtendedHandshake,
) -> Result<Assembly, FromPeer> {
    let Some(their_id) = theirs.id_of("ut_metadata") else {
        return Err(FromPeer::NoSupport);
    };
    let size = theirs.metadata_size.ok_or(FromPeer::NoSupport)?;
    if size == 0 || size > MAX_METADATA_SIZE {
        return Err(FromPeer::TooLarge(size));
    }
    for piece in 0..metadata_pieces(size) {
        let payload = MetadataMessage::Request { piece }.to_payload();
        connection.send(&Message::Extended {
            id: their_id,
            payload,
        })?;
    }
    connection.flush()?;
    Ok(Assembly::new(size))
}

/// The dictionary being put together, piece by piece, in any order.
struct Assembly {
    bytes: Vec<u8>,
    received: Vec<bool>,
}

impl Assembly {
    fn new(size: u64) -> Assembly {
        let count = metadata_pieces(size) as usize;
        Assembly {
            bytes: vec![0; size as usize],
            received: vec![false; count],
        }
    }

    /// Takes one message; returns the whole dictionary once every piece is in.
    fn take(&mut self, message: MetadataMessage) -> Result<Option<Vec<u8>>, FromPeer> {
        let (piece, total_size, data) = match message {
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => (piece, total_size, data),
            MetadataMessage::Reject { piece } => return Err(FromPeer::Rejected(piece)),
            _ => return Ok(None),
        };
        let start = piece as usize * crate::wire::extension::METADATA_PIECE_LEN;
        let expected = crate::wire::extension::metadata_piece_len(self.bytes.len() as u64, piece);
        if total_size != self.bytes.len() as u64 || expected != Some(data.len()) {
            let what = format!(
                "piece {piece}: {} bytes of a {total_size}-byte total",
                data.len()
            );
            return Err(FromPeer::Bad(what));
        }
        self.bytes[start..start + data.len()].copy_from_slice(&data);
        self.received[piece as usize] = true;
        Ok(self
            .received
            .iter()
            .all(|&r| r)
            .then(|| std::mem::take(&mut self.bytes)))
    }
}
