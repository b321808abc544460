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
//! cannot. A peer that has the torrent sends it on request, at most
//! [`MAX_HASHES_PER_MESSAGE`] hashes at a time, each part with the *uncle* hashes that link it
//! to the file's root. Nothing it sends is believed until that proof leads to the root the
//! (already verified) info dictionary gives:
//!
//! ```text
//!   root ◄── uncles, nearest first ◄── the part's own subtree root ◄── 512 hashes asked for
//! ```

use crate::merkle::{self, BlocksPerPiece, Sha256Hash};
use crate::metadata_fetch::Request;
use crate::metainfo::Metainfo;
use crate::peer::connection::PeerError;
use crate::wire::Message;
use crate::wire::handshake::RESERVED_EXTENSIONS;
use crate::wire::hashes::MAX_HASHES_PER_MESSAGE;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long one peer has to answer every request.
const PER_PEER: Duration = Duration::from_secs(60);

/// Hash requests out at once to one peer.
const IN_FLIGHT: usize = 16;

/// Our handshake for this exchange: the extension protocol (BEP 10) and, in the last byte,
/// BEP 52's bit for a peer that speaks v2 (`0x10`).
const RESERVED_V2: [u8; 8] = {
    let mut reserved = RESERVED_EXTENSIONS;
    reserved[7] |= 0x10;
    reserved
};

#[derive(Debug, Error)]
pub enum LayerError {
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
    #[error("hashes {1}.. it sent for {0} do not prove up to the file's pieces root")]
    WrongLayer(String, u32),
    #[error("no answer within {0:?}")]
    Slow(Duration),
}

/// One file whose layer is missing: its root, how many pieces, and how its layer is asked for.
struct Wanted {
    index: usize,
    name: String,
    root: Sha256Hash,
    pieces: usize,
    /// Hashes per request: the whole layer padded to a power of two, or 512 of it.
    length: u32,
    /// Layers from the piece layer up to the root: `log2` of the padded layer.
    height: u32,
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
        // More than one piece (checked above), and at most 2^21 (checked at load).
        let padded = pieces.next_power_of_two();
        let length = padded.min(u64::from(MAX_HASHES_PER_MESSAGE)) as u32;
        wanted.push(Wanted {
            index,
            name: file.display_path(),
            root,
            pieces: pieces as usize,
            length,
            height: padded.trailing_zeros(),
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
    let mut connection = request.open(addr, RESERVED_V2)?;
    let base_layer = per_piece.height();
    // Every part of every layer: (which file, first hash). A few at a time go out; each answer
    // makes room for the next.
    let mut parts = wanted.iter().enumerate().flat_map(|(slot, want)| {
        (0..want.pieces as u32)
            .step_by(want.length as usize)
            .map(move |index| (slot, index))
    });
    let mut layers: Vec<Vec<Sha256Hash>> = wanted
        .iter()
        .map(|w| Vec::with_capacity(w.pieces))
        .collect();
    let mut outstanding = 0;
    let started = Instant::now();
    loop {
        while outstanding < IN_FLIGHT {
            let Some((slot, index)) = parts.next() else {
                break;
            };
            let want = &wanted[slot];
            // [W18.8] A part of the piece layer, and enough proof layers to reach the root
            // (BEP 52 counts them from the piece layer, the part's own span included).
            connection.send(&Message::HashRequest {
                pieces_root: want.root,
                base_layer,
                index,
                length: want.length,
                proof_layers: want.height.saturating_sub(1),
            })?;
            outstanding += 1;
        }
        if outstanding == 0 {
            break;
        }
        connection.flush()?;
        if started.elapsed() > PER_PEER {
            return Err(FromPeer::Slow(PER_PEER));
        }
        let (root, index, hashes) = match connection.receive(true)? {
            Some(Message::Hashes {
                pieces_root,
                base_layer: layer,
                index,
                hashes,
                ..
            }) if layer == base_layer => (pieces_root, index, hashes),
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
        // Nothing is believed before this check: the part's own subtree root, with the uncles
        // after it, must lead to the root of the verified info dictionary. Parts come back in
        // the order they were asked, so each lands where the layer ends.
        let length = want.length as usize;
        let part = hashes.get(..length).unwrap_or_default();
        let uncles = hashes.get(length..).unwrap_or_default();
        let at = layers[slot].len();
        let proved = part.len() == length
            && index as usize == at
            && merkle::verify_proof(
                merkle::root_from_layer(part, base_layer),
                at / length,
                uncles,
                &want.root,
            );
        if !proved {
            return Err(FromPeer::WrongLayer(want.name.clone(), index));
        }
        let real = length.min(want.pieces - at);
        layers[slot].extend_from_slice(&part[..real]);
        outstanding -= 1;
    }
    connection.close(crate::metadata_fetch::CLOSE_WAIT);
    Ok(layers)
}
