//! # Peers: one thread per connection (BEP 3 "peer protocol") — walkthrough §7
//!
//! [`connection`] opens a TCP connection and does the handshake, then sends and receives
//! framed messages (using `wire`); [`thread`] is the loop of the thread that owns one
//! connection and talks to the scheduler; [`pipeline`] sizes how many requests it keeps in
//! flight.

pub mod connection;
pub mod pipeline;
pub mod thread;
