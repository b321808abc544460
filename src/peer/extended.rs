//! The extension protocol on an established connection (BEP 10), with metadata serving
//! (BEP 9) and peer exchange (BEP 11) — walkthrough §13, §14.
//!
//! ```text
//!   after our bitfield:  extended handshake ──► m = {ut_metadata: 3, ut_pex: 1}, p, reqq,
//!                                               metadata_size
//!   peer's handshake    ──► remember ITS ids: our messages to it carry its numbers
//!   ut_metadata request ──► the piece of our info dictionary (or reject)
//!   ut_pex              ──► addresses for the scheduler (PeersFound)
//!   Command::Pex        ──► what changed since our last ut_pex to this peer, once a minute
//! ```
//!
//! Each side numbers the messages it *receives*: the ids in our `m` are for messages coming
//! to us, the peer's `m` for messages we send it. Real clients pick different numbers
//! (qBittorrent's ut_metadata is 2, ours 3), so mixing them up breaks interop.

use super::connection::{Connection, PeerError};
use crate::events::Event;
use crate::wire::Message;
use crate::wire::extension::{
    ExtendedHandshake, METADATA_PIECE_LEN, MetadataMessage, PEX_REACHABLE, PexMessage,
    UT_METADATA_ID, UT_PEX_ID, metadata_piece_len,
};
use crossbeam_channel::Sender;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// Characters of a peer's client name (`v`) passed on to the scheduler for the web view.
const MAX_CLIENT_NAME: usize = 64;

/// What a connection knows of the extension protocol.
#[derive(Debug, Default)]
pub struct Extensions {
    /// The peer's extended handshake, once received.
    pub theirs: Option<ExtendedHandshake>,
    /// The addresses our last `ut_pex` to this peer listed.
    pex_sent: HashSet<SocketAddr>,
}

/// What the extension protocol needs from the session.
pub struct ExtensionContext<'a> {
    /// Our info dictionary, served to peers that ask (`None`: we do not have it).
    pub metadata: Option<&'a Arc<Vec<u8>>>,
    /// Peer exchange allowed (not for private torrents, BEP 27).
    pub pex: bool,
    /// The port we listen on (0: unknown).
    pub listen_port: u16,
    pub events: &'a Sender<Event>,
}

impl Extensions {
    /// Our extended handshake, sent once after the bitfield.
    pub fn send_handshake(
        connection: &mut Connection,
        context: &ExtensionContext,
    ) -> Result<(), PeerError> {
        let mut extensions = vec![("ut_metadata".to_string(), UT_METADATA_ID)];
        if context.pex {
            extensions.push(("ut_pex".to_string(), UT_PEX_ID));
        }
        let ours = ExtendedHandshake {
            extensions,
            client: Some(concat!("peerwire ", env!("CARGO_PKG_VERSION")).into()),
            // The address we see the peer at: how it learns its own public address.
            your_ip: Some(connection.addr.ip()),
            listen_port: (context.listen_port != 0).then_some(context.listen_port),
            request_queue: Some(super::upload::MAX_QUEUED as u32),
            metadata_size: context.metadata.map(|m| m.len() as u64),
        };
        connection.send(&Message::Extended {
            id: 0,
            payload: ours.to_payload(),
        })
    }

    /// One `extended` message from the peer. A malformed one is logged and ignored: a broken
    /// `ut_pex` list or metadata request harms no one, and hanging up on it would lose a peer
    /// that may serve us well (only what harms us ends a connection).
    pub fn receive(
        &mut self,
        connection: &mut Connection,
        context: &ExtensionContext,
        id: u8,
        payload: &[u8],
    ) -> Result<(), PeerError> {
        let ignore = |e: crate::wire::extension::ExtensionError| {
            log::info!("{}: extended message {id} ignored: {e}", connection.addr);
        };
        match id {
            0 => {
                if let Err(e) = self.handshake(connection.addr, context, payload) {
                    ignore(e);
                }
                Ok(())
            }
            UT_METADATA_ID => match MetadataMessage::from_payload(payload) {
                Ok(MetadataMessage::Request { piece }) => {
                    self.serve_metadata(connection, context, piece)
                }
                Ok(_) => Ok(()), // we already have the metadata
                Err(e) => {
                    ignore(e);
                    Ok(())
                }
            },
            UT_PEX_ID if context.pex => {
                let pex = match PexMessage::from_payload(payload) {
                    Ok(pex) => pex,
                    Err(e) => {
                        ignore(e);
                        return Ok(());
                    }
                };
                let addrs: Vec<SocketAddr> = (pex.added.iter().map(|(a, _)| *a))
                    .filter(|a| !crate::tracker::is_ourselves(a, context.listen_port))
                    .collect(); // Transmission lists us to ourselves
                let ipv6 = addrs.iter().filter(|a| a.is_ipv6()).count();
                log::debug!(
                    "{}: pex: {} added ({ipv6} IPv6, from `added6`)",
                    connection.addr,
                    addrs.len()
                );
                let found = Event::PeersFound {
                    peer: connection.addr,
                    addrs,
                };
                // The scheduler may have ended (the download is over): nobody needs them.
                let _ = context.events.send(found);
                Ok(())
            }
            other => {
                log::trace!("{}: extended message {other} ignored", connection.addr);
                Ok(())
            }
        }
    }

    fn handshake(
        &mut self,
        addr: SocketAddr,
        context: &ExtensionContext,
        payload: &[u8],
    ) -> Result<(), crate::wire::extension::ExtensionError> {
        let theirs = ExtendedHandshake::from_payload(payload)?;
        if let Some(port) = theirs.listen_port {
            // The scheduler may have ended (the download is over): nobody needs the port.
            let _ = context.events.send(Event::ListenPort { peer: addr, port });
        }
        if let Some(client) = &theirs.client {
            // Shown by the web view: a page line, not a novel (the payload is bounded, the
            // name need not be).
            let name: String = client.chars().take(MAX_CLIENT_NAME).collect();
            let _ = context.events.send(Event::ClientName { peer: addr, name });
        }
        self.theirs = Some(theirs);
        Ok(())
    }

    /// A `ut_metadata` request: the piece of our info dictionary, or `reject`.
    fn serve_metadata(
        &self,
        connection: &mut Connection,
        context: &ExtensionContext,
        piece: u32,
    ) -> Result<(), PeerError> {
        let Some(their_id) = self.their_id("ut_metadata") else {
            return Ok(()); // it asked, but gave no id for our answer
        };
        let answer = match context.metadata {
            Some(info) => match metadata_piece_len(info.len() as u64, piece) {
                Some(len) => {
                    let start = piece as usize * METADATA_PIECE_LEN;
                    MetadataMessage::Data {
                        piece,
                        total_size: info.len() as u64,
                        data: info[start..start + len].to_vec(),
                    }
                }
                None => MetadataMessage::Reject { piece },
            },
            None => MetadataMessage::Reject { piece },
        };
        connection.send(&Message::Extended {
            id: their_id,
            payload: answer.to_payload(),
        })
    }

    /// `Command::Pex`: tell the peer which addresses appeared and left since our last message.
    pub fn send_pex(
        &mut self,
        connection: &mut Connection,
        context: &ExtensionContext,
        connected: &[SocketAddr],
    ) -> Result<(), PeerError> {
        let Some(their_id) = self.their_id("ut_pex").filter(|_| context.pex) else {
            return Ok(());
        };
        let now: HashSet<SocketAddr> = connected
            .iter()
            .copied()
            .filter(|a| *a != connection.addr)
            .collect();
        // BEP 11: at most 50 added and 50 dropped per message; the rest goes next time.
        let added: Vec<SocketAddr> = now.difference(&self.pex_sent).take(50).copied().collect();
        let dropped: Vec<SocketAddr> = self.pex_sent.difference(&now).take(50).copied().collect();
        if added.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        self.pex_sent.extend(&added);
        dropped.iter().for_each(|a| {
            self.pex_sent.remove(a);
        });
        let message = PexMessage {
            added: added.into_iter().map(|a| (a, PEX_REACHABLE)).collect(),
            dropped,
        };
        connection.send(&Message::Extended {
            id: their_id,
            payload: message.to_payload(),
        })
    }

    /// How many requests the peer queues (`reqq` in its extended handshake), if it said.
    pub fn request_queue(&self) -> Option<usize> {
        self.theirs.as_ref()?.request_queue.map(|n| n as usize)
    }

    /// [W13.1] The id the *peer* gave an extension in its handshake: ours are for what we receive.
    fn their_id(&self, name: &str) -> Option<u8> {
        self.theirs.as_ref()?.id_of(name)
    }
}
