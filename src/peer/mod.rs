//! # Peers: one thread per connection (BEP 3 "peer protocol") — walkthrough §7, §10
//!
//! [`connection`] opens (or accepts) a TCP connection and does the handshake, then sends and
//! receives framed messages (using `wire`); [`thread`] is the loop of the thread that owns one
//! connection and talks to the scheduler; [`pipeline`] sizes how many requests it keeps in
//! flight; [`upload`] answers the peer's requests from disk; [`listener`] accepts peers that
//! dial us and gives each its own thread; [`swarms`] is what it serves: the torrents of the
//! process by info hash, one or several on one port.

pub mod connection;
pub mod dial;
mod dispatch;
pub mod encrypted;
pub mod extended;
pub mod fast;
pub mod listener;
pub mod pipeline;
pub mod state;
pub mod stream;
pub mod swarms;
pub mod thread;
pub mod upload;
