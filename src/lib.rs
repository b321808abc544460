//! # peerwire — a BitTorrent client to learn the protocol from
//!
//! Read it beside `walkthrough.md`, which follows the data from a `.torrent` file to a
//! verified file on disk. Each module below is one step of the protocol, named for the
//! concept it implements; every arrow in the data flow points down this list.
//!
//! | module       | its one job                                                    | walkthrough |
//! |--------------|----------------------------------------------------------------|-------------|
//! | [`cli`]      | one function per command; the only module that prints          | all         |
//! | [`demo`]     | a whole local swarm in one process, and what it did            | §12         |
//! | [`session`]  | one torrent from start to finish: storage, listener, tracker, scheduler | §7–§10 |
//! | [`tracker`]  | asks trackers for peers (HTTP, UDP, BEP 12 tiers, re-announces); the built-in tracker | §3 |
//! | [`scheduler`]| the one thread that decides: which block next, whom to unchoke, whom to ban | §8, §11 |
//! | [`choker`]   | whom to unchoke: BEP 3 choking and optimistic unchoking, a pure function | §11 |
//! | [`peer`]     | one thread per connection: handshake, messages, requests, serving, listener | §7, §10 |
//! | [`storage`]  | the torrent's byte stream over its files: read, write, resume   | §9          |
//! | [`piece`]    | pieces and 16 KiB blocks; the SHA-1 check                      | §9          |
//! | [`create`]   | makes a `.torrent` from files: streams them, hashes on all cores | §2        |
//! | [`wire`]     | the peer protocol's bytes: handshake, messages, bitfield; no sockets | §4–§6  |
//! | [`magnet`] | magnet URIs (BEP 9): info hash, name, trackers, peers | §14 |
//! | [`metadata`] | fetching the info dictionary from peers for a magnet link (BEP 9) | §13 |
//! | [`metainfo`] | `.torrent` bytes → [`metainfo::Metainfo`]; info hash over raw bytes; safe paths | §2 |
//! | [`peer_id`]  | our 20-byte name on the network (BEP 20 style)                 | §3          |
//! | [`bencode`]  | bencoding: decode (with byte spans) and encode                 | §1          |
//!
//! Magnet links (§13–§14) come later.
//!
//! Design rules (see `docs/design.md`): synchronous, blocking I/O, one OS
//! thread per peer; no `unsafe`; nothing panics on bytes from the network or the disk.
#![forbid(unsafe_code)]

pub mod bencode;
pub mod choker;
pub mod cli;
pub mod create;
pub mod demo;
pub mod events;
pub mod magnet;
pub mod metadata_fetch;
pub mod metainfo;
pub mod peer;
pub mod peer_id;
pub mod piece;
pub mod scheduler;
pub mod session;
pub mod storage;
pub mod trace;
pub mod tracker;
pub mod tracker_server;
pub mod wire;
