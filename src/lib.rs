//! # peerwire — a BitTorrent client to learn the protocol from
//!
//! Read it beside `walkthrough.md`, which follows the data from a `.torrent` file to a
//! verified file on disk. Each module below is one step of the protocol, named for the
//! concept it implements; every arrow in the data flow points down this list.
//!
//! | module       | its one job                                                    | walkthrough |
//! |--------------|----------------------------------------------------------------|-------------|
//! | [`cli`]      | one function per command; the only module that prints          | all         |
//! | [`tracker`]  | asks trackers for peers (HTTP, UDP, BEP 12 tiers, re-announces); the built-in tracker | §3 |
//! | [`create`]   | makes a `.torrent` from files: streams them, hashes on all cores | §2        |
//! | [`wire`]     | the peer protocol's bytes: handshake, messages, bitfield; no sockets | §4–§6  |
//! | [`metainfo`] | `.torrent` bytes → [`metainfo::Metainfo`]; info hash over raw bytes; safe paths | §2 |
//! | [`peer_id`]  | our 20-byte name on the network (BEP 20 style)                 | §3          |
//! | [`bencode`]  | bencoding: decode (with byte spans) and encode                 | §1          |
//!
//! Later chapters add `peer` (the thread per connection, §7), `scheduler` (§8), `storage` and
//! `piece` (§9), seeding and choking (§10–§12), magnets (§13–§14).
//!
//! Design rules (see `docs/` and `../shared/STYLE.md`): synchronous, blocking I/O, one OS
//! thread per peer; no `unsafe`; nothing panics on bytes from the network or the disk.
#![forbid(unsafe_code)]

pub mod bencode;
pub mod cli;
pub mod create;
pub mod metainfo;
pub mod peer;
pub mod peer_id;
pub mod piece;
pub mod scheduler;
pub mod session;
pub mod storage;
pub mod tracker;
pub mod wire;
