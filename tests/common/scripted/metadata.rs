//! The scripted peer's side of the extension protocol (BEP 10) and of metadata exchange
//! (BEP 9 `ut_metadata`), for magnet-link tests: it announces `ut_metadata` and the size of
//! the info dictionary, and serves its pieces — honestly, reversed, corrupted, or claiming
//! 1 TiB, as its [`Script`] says.

use super::{SCRIPTED_UT_METADATA, Script, ScriptedTorrent};
use peerwire::wire::WireError;
use std::net::TcpStream;

/// The extended handshake of a scripted peer that has metadata.
pub(super) fn send_scripted_extended_handshake(
    socket: &mut TcpStream,
    t: &ScriptedTorrent,
) -> Result<(), WireError> {
    use peerwire::wire::extension::ExtendedHandshake;
    let Some(metadata) = &t.metadata else {
        return Ok(());
    };
    let size = match t.script {
        Script::MetadataHuge => 1 << 40,
        _ => metadata.len() as u64,
    };
    let ours = ExtendedHandshake {
        extensions: vec![("ut_metadata".into(), SCRIPTED_UT_METADATA)],
        metadata_size: Some(size),
        ..ExtendedHandshake::default()
    };
    let payload = ours.to_payload();
    peerwire::wire::Message::Extended { id: 0, payload }.write_to(socket)
}

/// A scripted peer's side of `ut_metadata`: peerwire's id, and requests held back (reversed).
#[derive(Default)]
pub(super) struct ScriptedMetadata {
    their_id: Option<u8>,
    held: Vec<u32>,
}

impl ScriptedMetadata {
    pub(super) fn receive(
        &mut self,
        socket: &mut TcpStream,
        t: &ScriptedTorrent,
        id: u8,
        payload: &[u8],
    ) -> Result<(), WireError> {
        use peerwire::wire::extension::{ExtendedHandshake, MetadataMessage, metadata_pieces};
        let Some(metadata) = &t.metadata else {
            return Ok(());
        };
        if id == 0 {
            self.their_id = ExtendedHandshake::from_payload(payload)
                .ok()
                .and_then(|h| h.id_of("ut_metadata"));
            return Ok(());
        }
        let Ok(MetadataMessage::Request { piece }) = MetadataMessage::from_payload(payload) else {
            return Ok(());
        };
        if !matches!(t.script, Script::MetadataReversed) {
            return self.send_piece(socket, t, metadata, piece);
        }
        self.held.push(piece);
        if self.held.len() as u32 == metadata_pieces(metadata.len() as u64) {
            for piece in std::mem::take(&mut self.held).into_iter().rev() {
                self.send_piece(socket, t, metadata, piece)?;
            }
        }
        Ok(())
    }

    fn send_piece(
        &self,
        socket: &mut TcpStream,
        t: &ScriptedTorrent,
        metadata: &[u8],
        piece: u32,
    ) -> Result<(), WireError> {
        use peerwire::wire::extension::{METADATA_PIECE_LEN, MetadataMessage, metadata_piece_len};
        let (Some(their_id), Some(len)) = (
            self.their_id,
            metadata_piece_len(metadata.len() as u64, piece),
        ) else {
            return Ok(());
        };
        let start = piece as usize * METADATA_PIECE_LEN;
        let mut data = metadata[start..start + len].to_vec();
        if matches!(t.script, Script::MetadataWrongHash) {
            data[0] ^= 0xff;
        }
        let message = MetadataMessage::Data {
            piece,
            total_size: metadata.len() as u64,
            data,
        };
        let payload = message.to_payload();
        peerwire::wire::Message::Extended {
            id: their_id,
            payload,
        }
        .write_to(socket)
    }
}
