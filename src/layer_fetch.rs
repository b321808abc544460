//! Fetching a v2 torrent's piece layers from peers (BEP 52, The BitTorrent Protocol
//! Specification v2: `hash request` and `hashes`) — walkthrough §18.
//!
//! ```text
//!   a urn:btmh: magnet link ──► metadata (§13): the info dictionary, each file's pieces root
//!        ──► here: for each file of more than one piece, a hash request for its piece layer
//!            ──► hashes ──► hashed up to the pieces root? ──► Metainfo, ready to download
//! ```
//!
//! The info dictionary of a v2 torrent holds one 32-byte root per file; checking pieces needs
//! the layer of one hash per piece, which a `.torrent` carries beside `info` but a magnet link
//! cannot. A peer that has the torrent sends it on request. Nothing it sends is believed until
//! the whole layer hashes up to the root the (already verified) info dictionary gives: the
//! request asks for the whole layer at once, so no uncle hashes are needed. That limits a file
//! to [`MAX_HASHES_PER_MESSAGE`] pieces (512 of 1 MiB is 512 MiB); longer files would need
//! the layer in parts, each with its proof, which peerwire does not do yet.

use crate::merkle::{self, BlocksPerPiece, Sha256Hash};
use crate::metadata_fetch::Request;
use crate::metainfo::Metainfo;
use crate::peer::connection::{Connection, PeerError};
use crate::wire::Message;
use crate::wire::handshake::RESERVED_EXTENSIONS;
use crate::wire::hashes::MAX_HASHES_PER_MESSAGE;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long one peer has to answer every request.
const PER_PEER: Duration = Duration::from_secs(20);

/// Our handshake for this exchange: the extension protocol (BEP 10) and, in the last byte,
/// BEP 52's bit for a peer that speaks v2 (`0x10`).
const RESERVED_V2: [u8; 8] = {
    let mut reserved = RESERVED_EXTENSIONS;
    reserved[7] |= 0x10;
    reserved
};

#[derive(Debug, Error)]
pub enum LayerError {
    #[error(
        "{file}: {pieces} pieces; peerwire fetches a piece layer of at most {MAX_HASHES_PER_MESSAGE} \
         hashes from peers"
    )]
    TooLong { file: String, pieces: u64 },
    #[error("no peer sent the piece layers: {}", .0.join("; "))]
    NotFound(Vec<String>),
}

/// What went wrong with one peer.
#[derive(Debug, Error)]
enum FromPeer {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("it refused the hash request for {0}")]
    Rejected(String),
    #[error("the layer it sent for {0} does not hash to the file's pieces root")]
    WrongLayer(String),
    #[error("no answer within {0:?}")]
    Slow(Duration),
}

/// One file whose layer is missing: its root, how many pieces, and how many hashes to ask for
/// (the whole base layer, padded to a power of two).
struct Wanted {
    index: usize,
    name: String,
    root: Sha256Hash,
    pieces: usize,
    length: u32,
}

/// Fills in the piece layers `metainfo` lacks, from the first of `peers` that sends them all,
/// each checked against its file's root.
pub fn fetch(
    metainfo: &mut Metainfo,
    request: &Request,
    peers: &[SocketAddr],
) -> Result<(), LayerError> {
    let piece_length = metainfo.info.piece_length;
    let Some(v2) = metainfo.v2.as_mut() else {
        return Ok(());
    };
    let mut wanted = Vec::new();
    for (index, file) in v2.files.iter().enumerate() {
        let Some(root) = file.pieces_root else {
            continue; // an empty file has no tree
        };
        if !file.needs_piece_layer(piece_length) || !file.piece_layer.is_empty() {
            continue;
        }
        let pieces = file.num_pieces(piece_length);
        let length = u32::try_from(pieces.next_power_of_two()).unwrap_or(u32::MAX);
        if length > MAX_HASHES_PER_MESSAGE {
            let file = file.display_path();
            return Err(LayerError::TooLong { file, pieces });
        }
        wanted.push(Wanted {
            index,
            name: file.display_path(),
            root,
            pieces: pieces as usize, // at most 512, checked above
            length,
        });
    }
    if wanted.is_empty() {
        return Ok(());
    }
    // Piece length was checked to be a power of two ≥ 16 KiB when the dictionary loaded.
    let Ok(per_piece) = BlocksPerPiece::for_piece_length(piece_length) else {
        return Err(LayerError::NotFound(vec![
            "a piece length that is not v2's".into(),
        ]));
    };
    let mut failures = Vec::new();
    for &addr in peers {
        match ask(addr, request, &wanted, per_piece) {
            Ok(layers) => {
                for (want, layer) in wanted.iter().zip(layers) {
                    v2.files[want.index].piece_layer = layer;
                }
                v2.piece_layers_complete = true;
                log::info!("piece layers of {} files from {addr}", wanted.len());
                return Ok(());
            }
            Err(e) => {
                log::info!("{addr}: no piece layers: {e}");
                failures.push(format!("{addr}: {e}"));
            }
        }
    }
    Err(LayerError::NotFound(failures))
}

/// One peer: every request sent at once, then the answers, in any order.
fn ask(
    addr: SocketAddr,
    request: &Request,
    wanted: &[Wanted],
    per_piece: BlocksPerPiece,
) -> Result<Vec<Vec<Sha256Hash>>, FromPeer> {
    let mut connection = Connection::open(
        addr,
        request.info_hash,
        request.our_id,
        RESERVED_V2,
        request.trace.clone(),
        &request.dialer,
    )?;
    let base_layer = per_piece.height();
    for want in wanted {
        // [W18.8] The whole piece layer of the file, and no proof: we hash it up ourselves.
        connection.send(&Message::HashRequest {
            pieces_root: want.root,
            base_layer,
            index: 0,
            length: want.length,
            proof_layers: 0,
        })?;
    }
    connection.flush()?;
    let mut layers: Vec<Option<Vec<Sha256Hash>>> = vec![None; wanted.len()];
    let started = Instant::now();
    while layers.iter().any(Option::is_none) {
        if started.elapsed() > PER_PEER {
            return Err(FromPeer::Slow(PER_PEER));
        }
        let answer = connection.receive(true)?;
        let (root, hashes) = match answer {
            Some(Message::Hashes {
                pieces_root,
                base_layer: layer,
                index: 0,
                hashes,
                ..
            }) if layer == base_layer => (pieces_root, hashes),
            Some(Message::HashReject { pieces_root, .. }) => {
                let name = wanted.iter().find(|w| w.root == pieces_root);
                let name = name.map_or_else(|| pieces_root.to_hex(), |w| w.name.clone());
                return Err(FromPeer::Rejected(name));
            }
            _ => continue, // bitfields, haves, extension messages: not what we wait for
        };
        let Some(slot) = wanted.iter().position(|w| w.root == root) else {
            continue; // an answer to nothing we asked
        };
        let want = &wanted[slot];
        let layer = hashes.get(..want.length as usize).unwrap_or_default();
        // Nothing is believed before this check: the layer, padded as BEP 52 pads it, must
        // hash up to the root from the verified info dictionary.
        if layer.len() != want.length as usize
            || merkle::root_from_layer(layer, base_layer) != want.root
        {
            return Err(FromPeer::WrongLayer(want.name.clone()));
        }
        layers[slot] = Some(layer[..want.pieces].to_vec());
    }
    connection.close(crate::metadata_fetch::CLOSE_WAIT);
    Ok(layers.into_iter().flatten().collect())
}
