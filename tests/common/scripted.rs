//! The scripted peer: a seeder written with nothing but peerwire's wire module, which follows
//! a [`Script`] — honest, or misbehaving in one precise way — so that a test can show what
//! peerwire does about one misbehaviour at a time, the same way every run (walkthrough §6,
//! §10). It is also a whole seeder in a few hundred lines: read it beside BEP 3.
//!
//! Each connection is served by its own thread (`serve_scripted`), one step after another,
//! and each step is where some scripts misbehave:
//!
//! ```text
//!   read their handshake (another torrent: hang up)
//!   send_scripted_handshake           WrongInfoHash, BadPstr
//!   send_scripted_bitfield            OnlyFirstPieces, LongBitfield, SpareBits, LateBitfield,
//!                                     FastChokeAndReject (HaveAll, BEP 6)
//!   send_scripted_extended_handshake  MetadataHuge                       (metadata.rs, BEP 9)
//!   misbehave_after_bitfield          HugeLength, UnknownMessage, GarbledPex, DhtPort, HaveOutOfRange,
//!                                     UnsolicitedPieces, KeepAlivesForever
//!   (Delayed: the rest of the connection in delayed.rs, every answer late)
//!   loop, one message at a time:
//!     (FastChokeAndReject: after its n-th request, choke_and_reject, then unchoke)
//!     Interested ─► Unchoke
//!     Request    ─► answer_request    CorruptEveryBlock, DisconnectAfter, GoneAfter,
//!                                     ChokeAfter, Hoarder, Trickle, Paced, LateBitfield
//!     Extended   ─► ScriptedMetadata  MetadataWrongHash, MetadataReversed  (metadata.rs)
//! ```
//!
//! To script a new misbehaviour:
//! 1. add a variant to [`Script`] whose doc says, in one sentence a reader of the failing test
//!    can trust, what the peer does;
//! 2. make it happen in the one step where it belongs, as an arm of that step's
//!    `match t.script`: once per connection in `misbehave_after_bitfield`, or per request in
//!    `answer_request` (`n` counts this connection's requests, from 1);
//! 3. test it beside an honest peer: [`ScriptedPeer::start`] listens on 127.0.0.1 at
//!    [`ScriptedPeer::addr`]; download from both with `common::download_from`, then check the
//!    bytes, the log line that names the reason the bad peer was dropped, and
//!    [`ScriptedPeer::blocks_served`] if it matters how far it got
//!    (`tests/download_bad_peers.rs` does exactly this, one test per script).
//!
//! The scripted peer trusts peerwire and defends nothing: a request outside the torrent
//! panics its connection's thread, which ends only that connection. Its threads are named
//! (`scripted ADDR`, `scripted ADDR <- PEER`, `scripted delayed -> PEER`) so that a debugger
//! shows whose they are.

mod delayed;
mod metadata;

use metadata::{ScriptedMetadata, send_scripted_extended_handshake};
use peerwire::metainfo::InfoHash;
use peerwire::wire::{Message, WireError};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How a [`ScriptedPeer`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    Honest,
    /// Every block it sends is corrupted.
    CorruptEveryBlock,
    /// Hangs up after serving this many blocks.
    DisconnectAfter(usize),
    /// Serves this many blocks in all, then hangs up and closes every new connection at
    /// once: it has left the swarm.
    GoneAfter(usize),
    /// Chokes us after this many blocks and never serves again.
    ChokeAfter(usize),
    /// Has (and serves) only the first this-many pieces.
    OnlyFirstPieces(usize),
    /// Answers the handshake with another torrent's info hash.
    WrongInfoHash,
    /// Answers with a protocol string that is not `BitTorrent protocol`.
    BadPstr,
    /// After its bitfield, sends a length prefix of 4 GiB.
    HugeLength,
    /// Sends a message with an unknown id first, then behaves.
    UnknownMessage,
    /// Sends a garbled `ut_pex` message (an `added` list of 3 bytes) first, then behaves.
    GarbledPex,
    /// Sends BEP 5's `port` message first (its DHT node is at this UDP port on 127.0.0.1),
    /// then behaves.
    DhtPort(u16),
    /// Announces only the first half of its pieces in its bitfield, then, after serving its
    /// first block, a whole bitfield in the middle of the connection (as aria2 does instead
    /// of a batch of `have`s).
    LateBitfield,
    /// Sends a bitfield one byte too long.
    LongBitfield,
    /// Sends a bitfield with the spare bits after the last piece set.
    SpareBits,
    /// Sends `have` for a piece that does not exist.
    HaveOutOfRange,
    /// Floods blocks that were never requested.
    UnsolicitedPieces,
    /// Answers every request one byte per second.
    Trickle,
    /// Has nothing, wants nothing, and sends a keep-alive every 50 ms forever.
    KeepAlivesForever,
    /// Claims every piece, unchokes, and never answers a request.
    Hoarder,
    /// Serves metadata (BEP 9) that does not hash to the info hash.
    MetadataWrongHash,
    /// Announces 1 TiB of metadata in its extended handshake.
    MetadataHuge,
    /// Answers metadata requests in reverse order (allowed: it must still work).
    MetadataReversed,
    /// Speaks the fast extension (BEP 6): `HaveAll` instead of a bitfield; after serving
    /// this many blocks it chokes, rejects every request still coming in, and unchokes once
    /// the requests stop (200 ms of quiet).
    FastChokeAndReject(usize),
    /// Honest, but answers every message this many milliseconds late, as a peer that far
    /// away would (a round trip of that time, made in user space: `scripted/delayed.rs`).
    Delayed(u64),
    /// Honest, but serves at most one block per 10 ms (a download from it alone takes a
    /// while, so a bad peer beside it is surely read before the end).
    Paced,
    /// Serves metadata, and answers every BEP 52 hash request with a hash reject, for ever.
    RejectHashes,
}

/// A seeder of our own, written with peerwire's wire module, that follows a [`Script`].
/// It has the pieces of `stream` (the torrent's whole byte stream), and serves until the test
/// process ends.
pub struct ScriptedPeer {
    /// Where it listens, on 127.0.0.1.
    pub addr: SocketAddr,
    /// Blocks sent so far, over all its connections.
    pub blocks_served: Arc<AtomicUsize>,
}

/// What every connection of a scripted peer shares.
#[derive(Clone)]
struct ScriptedTorrent {
    info_hash: InfoHash,
    stream: Arc<Vec<u8>>,
    piece_length: u64,
    script: Script,
    served: Arc<AtomicUsize>,
    /// The info dictionary, served by `ut_metadata` when given (the peer then speaks BEP 10).
    metadata: Option<Arc<Vec<u8>>>,
}

impl ScriptedTorrent {
    /// A `GoneAfter` peer that has served its blocks.
    fn has_left(&self) -> bool {
        let served = self.served.load(Ordering::Relaxed);
        matches!(self.script, Script::GoneAfter(limit) if served >= limit)
    }
}

/// The scripted peer's own id for `ut_metadata` (unlike peerwire's 3, as real clients differ).
const SCRIPTED_UT_METADATA: u8 = 2;

impl ScriptedPeer {
    /// A scripted peer on a port of its own, seeding `stream` in pieces of `piece_length`.
    pub fn start(
        info_hash: InfoHash,
        stream: Arc<Vec<u8>>,
        piece_length: u64,
        script: Script,
    ) -> ScriptedPeer {
        ScriptedPeer::start_with_metadata(info_hash, stream, piece_length, script, None)
    }

    /// A scripted peer that also speaks the extension protocol and serves `metadata`.
    pub fn start_with_metadata(
        info_hash: InfoHash,
        stream: Arc<Vec<u8>>,
        piece_length: u64,
        script: Script,
        metadata: Option<Arc<Vec<u8>>>,
    ) -> ScriptedPeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let blocks_served = Arc::new(AtomicUsize::new(0));
        let torrent = ScriptedTorrent {
            info_hash,
            stream,
            piece_length,
            script,
            served: Arc::clone(&blocks_served),
            metadata,
        };
        std::thread::Builder::new()
            .name(format!("scripted {addr}"))
            .spawn(move || {
                for connection in listener.incoming().map_while(Result::ok) {
                    let torrent = torrent.clone();
                    let from = connection.peer_addr().map_or("?".into(), |a| a.to_string());
                    // An error (or a scripted hang-up) ends this connection only.
                    let served = std::thread::Builder::new()
                        .name(format!("scripted {addr} <- {from}"))
                        .spawn(move || {
                            let _ = serve_scripted(connection, &torrent);
                        });
                    served.expect("start a scripted connection's thread");
                }
            })
            .expect("start the scripted peer's listening thread");
        ScriptedPeer {
            addr,
            blocks_served,
        }
    }
}

/// One connection, step by step (see the module doc).
fn serve_scripted(mut socket: TcpStream, t: &ScriptedTorrent) -> Result<(), WireError> {
    use peerwire::wire::Handshake;
    socket.set_read_timeout(Some(Duration::from_secs(60)))?;
    if t.has_left() {
        return Ok(());
    }
    if Handshake::read_from(&mut socket)?.info_hash != t.info_hash {
        return Ok(());
    }
    send_scripted_handshake(&mut socket, t)?;
    let pieces = (t.stream.len() as u64).div_ceil(t.piece_length) as usize;
    send_scripted_bitfield(&mut socket, t, pieces)?;
    send_scripted_extended_handshake(&mut socket, t)?;
    misbehave_after_bitfield(&mut socket, t, pieces)?;
    if let Script::Delayed(ms) = t.script {
        return delayed::serve(socket, t, Duration::from_millis(ms));
    }
    let mut requests = 0;
    let mut metadata = ScriptedMetadata::default();
    loop {
        if let Script::FastChokeAndReject(limit) = t.script
            && requests == limit
        {
            choke_and_reject(&mut socket)?;
            requests += 1;
        }
        match Message::read_from(&mut socket)? {
            Message::Extended { id, payload } => metadata.receive(&mut socket, t, id, &payload)?,
            request @ Message::HashRequest { .. } if t.script == Script::RejectHashes => {
                // The same header back, as a reject (`HashRange::reject`).
                if let Some(range) = request.hash_range() {
                    range.reject().write_to(&mut socket)?;
                }
            }
            Message::Interested => Message::Unchoke.write_to(&mut socket)?,
            Message::Request {
                index,
                begin,
                length,
            } => {
                requests += 1;
                answer_request(&mut socket, t, requests, (index, begin, length))?;
            }
            _ => {}
        }
    }
}

fn send_scripted_handshake(socket: &mut TcpStream, t: &ScriptedTorrent) -> std::io::Result<()> {
    let info_hash = match t.script {
        Script::WrongInfoHash => InfoHash([7; 20]),
        _ => t.info_hash,
    };
    // One id per scripted peer (its port): peerwire refuses a second connection to a peer id.
    let port = socket.local_addr()?.port();
    let id = format!("-SP0001-{port:012}");
    let peer_id = peerwire::peer_id::PeerId(id.as_bytes().try_into().expect("20 bytes"));
    let mut reserved = [0; 8];
    if t.metadata.is_some() {
        reserved = peerwire::wire::handshake::RESERVED_EXTENSIONS;
    }
    if matches!(t.script, Script::FastChokeAndReject(_)) {
        reserved[7] |= 0x04; // the fast extension (BEP 6)
    }
    let mut bytes = peerwire::wire::Handshake {
        reserved,
        info_hash,
        peer_id,
    }
    .to_bytes();
    if matches!(t.script, Script::BadPstr) {
        bytes[19] = b'X';
    }
    socket.write_all(&bytes)
}

fn send_scripted_bitfield(
    socket: &mut TcpStream,
    t: &ScriptedTorrent,
    pieces: usize,
) -> Result<(), WireError> {
    let mut have = peerwire::wire::Bitfield::new(pieces);
    let has = match t.script {
        Script::OnlyFirstPieces(n) => n.min(pieces),
        Script::KeepAlivesForever => 0,
        Script::LateBitfield => pieces.div_ceil(2),
        _ => pieces,
    };
    (0..has).for_each(|i| have.set(i));
    if matches!(t.script, Script::FastChokeAndReject(_)) {
        return Message::HaveAll.write_to(socket);
    }
    let mut bits = have.as_bytes().to_vec();
    match t.script {
        Script::LongBitfield => bits.push(0),
        Script::SpareBits => *bits.last_mut().expect("some pieces") |= 1,
        _ => {}
    }
    Message::Bitfield(bits).write_to(socket)
}

/// The misbehaviours that happen once, right after the bitfield.
fn misbehave_after_bitfield(
    socket: &mut TcpStream,
    t: &ScriptedTorrent,
    pieces: usize,
) -> Result<(), WireError> {
    match t.script {
        Script::KeepAlivesForever => loop {
            socket.write_all(&[0, 0, 0, 0])?;
            std::thread::sleep(Duration::from_millis(50)); // the misbehaviour itself
        },
        Script::HugeLength => socket.write_all(&[0xff, 0xff, 0xff, 0xff, 7])?,
        Script::UnknownMessage => socket.write_all(&[0, 0, 0, 4, 99, 1, 2, 3])?,
        Script::DhtPort(port) => Message::Port(port).write_to(socket)?,
        Script::GarbledPex => Message::Extended {
            id: 1, // peerwire's id for ut_pex (its extended handshake says so)
            payload: b"d5:added3:abce".to_vec(),
        }
        .write_to(socket)?,
        Script::HaveOutOfRange => Message::Have {
            index: (pieces + 10_000) as u32,
        }
        .write_to(socket)?,
        Script::UnsolicitedPieces => {
            Message::Unchoke.write_to(socket)?;
            let block = t.stream[..16_384].to_vec();
            for _ in 0..100 {
                Message::Piece {
                    index: 0,
                    begin: 0,
                    block: block.clone(),
                }
                .write_to(socket)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// BEP 6 from the choking side: `choke`, then a `reject_request` for every request that
/// arrives, until 200 ms pass without one (all that were in flight are answered); then
/// `unchoke`.
fn choke_and_reject(socket: &mut TcpStream) -> Result<(), WireError> {
    Message::Choke.write_to(socket)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    loop {
        match Message::read_from(socket) {
            Ok(Message::Request {
                index,
                begin,
                length,
            }) => Message::RejectRequest {
                index,
                begin,
                length,
            }
            .write_to(socket)?,
            Ok(_) => {}
            Err(WireError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(e),
        }
    }
    socket.set_read_timeout(Some(Duration::from_secs(60)))?;
    Message::Unchoke.write_to(socket)
}

/// Serves (or mis-serves) the `n`-th request of this connection.
fn answer_request(
    socket: &mut TcpStream,
    t: &ScriptedTorrent,
    n: usize,
    (index, begin, length): (u32, u32, u32),
) -> Result<(), WireError> {
    match t.script {
        Script::Hoarder => return Ok(()), // claims it all, serves nothing
        Script::DisconnectAfter(limit) if n > limit => {
            return Err(WireError::BadProtocol("scripted hang-up".into()));
        }
        Script::GoneAfter(_) if t.has_left() => {
            return Err(WireError::BadProtocol("scripted departure".into()));
        }
        Script::ChokeAfter(limit) if n == limit + 1 => return Message::Choke.write_to(socket),
        Script::ChokeAfter(limit) if n > limit => return Ok(()),
        Script::Paced => std::thread::sleep(Duration::from_millis(10)), // the pace itself
        Script::Trickle => {
            for byte in (9 + length).to_be_bytes() {
                std::io::Write::write_all(socket, &[byte])?;
                std::thread::sleep(Duration::from_secs(1)); // the misbehaviour itself
            }
            return Ok(());
        }
        _ => {}
    }
    let start = (u64::from(index) * t.piece_length + u64::from(begin)) as usize;
    let mut block = t.stream[start..start + length as usize].to_vec();
    if matches!(t.script, Script::CorruptEveryBlock) {
        block.iter_mut().for_each(|b| *b ^= 0x5a);
    }
    Message::Piece {
        index,
        begin,
        block,
    }
    .write_to(socket)?;
    t.served.fetch_add(1, Ordering::Relaxed);
    if matches!(t.script, Script::LateBitfield) && n == 1 {
        let pieces = (t.stream.len() as u64).div_ceil(t.piece_length) as usize;
        let all = peerwire::wire::Bitfield::full(pieces);
        Message::Bitfield(all.as_bytes().to_vec()).write_to(socket)?;
    }
    Ok(())
}
