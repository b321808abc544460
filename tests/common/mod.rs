//! Shared helpers for the integration tests, one file per job:
//!
//! - `processes.rs`: run a program with a deadline, kill it by PID ([`Killed`]), free ports,
//!   and [`within`], a time limit for a check that runs in the test's own process;
//! - `programs.rs`: find a real program, or skip loudly ([`need_program`], [`skip`]);
//! - `peerwire_bin.rs`: the `peerwire` binary: [`start_seed`], [`download_from`] (a download
//!   from given peers, with a deadline, that checks the bytes), traced runs;
//! - `peerwire_dht.rs`: `peerwire dht_node` on its own 127.0.0.x ([`DhtNode`]), and KRPC sent
//!   by hand ([`KrpcProbe`]);
//! - `logs.rs`: a program's output line by line ([`StderrLines`]), and the one reader of the
//!   wire trace, [`trace_lines`];
//! - `fixtures.rs`: content and torrents ([`pseudo_random`], [`create_torrent`]), the
//!   third-party fixtures, byte-for-byte comparison;
//! - `scripted.rs`: [`ScriptedPeer`], a seeder of our own that misbehaves as its [`Script`]
//!   says;
//! - `libtorrent.rs`, `transmission.rs`, `aria2.rs`: real clients as peers;
//! - `trackers.rs`: opentracker and peerwire's built-in tracker;
//! - `lab.rs`: the network lab (`tests/lab/lab.py`), one swarm behind shaped links
//!   ([`lab::run_lab`]) and its JSON result;
//! - `udp_relay.rs`: [`LossyRelay`], a UDP relay that drops, duplicates, reorders and delays
//!   datagrams as its [`LossPlan`] says: the bad network for uTP tests (no `netem` here).
//!
//! Everything is re-exported here, so a test writes `common::download_from` whichever file it
//! is in.
//!
//! Interop tests need real software (mktorrent, transmission, libtorrent, opentracker, aria2c).
//! When a program is missing the test *skips loudly*, so `cargo test` passes on a fresh
//! machine; with `PEERWIRE_INTEROP=require` (set by `.ci/run`) a missing program fails the
//! test instead.
//!
//! Every test file declares this module `pub mod common;`. Each test binary uses a different
//! subset of these helpers, and in a private module the rest would be reported as dead code;
//! `pub` makes them the test crate's public items, which the lint leaves alone, with no
//! `allow` that could hide dead code in the test's own file. What the lint no longer sees —
//! a helper no test uses at all — `tests/common_helpers.rs` checks instead.

pub mod aria2;
pub mod fixtures;
pub mod lab;
pub mod libtorrent;
pub mod libtorrent_dht;
pub mod logs;
pub mod peerwire_bin;
pub mod peerwire_dht;
pub mod processes;
pub mod programs;
pub mod scripted;
pub mod trackers;
pub mod transmission;
pub mod udp_relay;

pub use fixtures::*;
pub use libtorrent::*;
pub use logs::*;
pub use peerwire_bin::*;
pub use peerwire_dht::*;
pub use processes::*;
pub use programs::*;
pub use scripted::*;
pub use trackers::*;
pub use transmission::*;
pub use udp_relay::*;
