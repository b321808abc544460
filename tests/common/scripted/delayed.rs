//! `Script::Delayed`: an honest seeder that answers every message a fixed time late, as a
//! peer that far away would. A download from it shows what the pipeline depth does over a
//! link with a round trip (walkthrough §7, exercise 3), with no root and no kernel queueing
//! discipline: the delay is made here, in user space.
//!
//! ```text
//!   reader (the connection's thread)          writer (its own thread)
//!   Request arrives at t ──(t + delay, Piece)──► sleeps until t + delay, sends the Piece
//! ```
//!
//! Requests are read as fast as they come and their answers queued in order, so the peer
//! serves as many blocks per round trip as there are requests in flight: depth ÷ delay.

use super::ScriptedTorrent;
use peerwire::wire::{Message, WireError};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

/// Serves the rest of the connection (after the bitfield), every answer `delay` late.
pub(super) fn serve(
    mut socket: TcpStream,
    t: &ScriptedTorrent,
    delay: Duration,
) -> Result<(), WireError> {
    let later = start_writer(socket.try_clone()?)?;
    loop {
        let message = Message::read_from(&mut socket)?;
        // Late from when the message arrived (not from when this thread began to wait).
        let due = Instant::now() + delay;
        let answer = match message {
            Message::Interested => Message::Unchoke,
            Message::Request {
                index,
                begin,
                length,
            } => {
                let start = (u64::from(index) * t.piece_length + u64::from(begin)) as usize;
                let block = t.stream[start..start + length as usize].to_vec();
                t.served.fetch_add(1, Ordering::Relaxed);
                Message::Piece {
                    index,
                    begin,
                    block,
                }
            }
            _ => continue,
        };
        if later.send((due, answer)).is_err() {
            return Ok(()); // the writer found the connection closed
        }
    }
}

/// A thread that sends each queued message at its due time, in order.
fn start_writer(mut socket: TcpStream) -> Result<Sender<(Instant, Message)>, WireError> {
    let (tx, rx) = channel::<(Instant, Message)>();
    let name = format!("scripted delayed -> {}", socket.peer_addr()?);
    std::thread::Builder::new().name(name).spawn(move || {
        for (due, message) in rx {
            // The delay is the point of this peer.
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if message.write_to(&mut socket).is_err() {
                return;
            }
        }
    })?;
    Ok(tx)
}
