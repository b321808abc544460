//! # peerwire — a BitTorrent client to learn the protocol from
//!
//! Read it beside `walkthrough.md`, which follows the data from a `.torrent` file to a
//! verified file on disk. Each module below is one step of the protocol, named for the
//! concept it implements. The table is the module map, top to bottom: a module uses only
//! modules listed *below* it, never one above, so nothing imports in a circle and a reader
//! can start at the bottom with modules that need nothing else (`tests/module_map.rs` checks
//! every `crate::` path in `src/` against this order).
//!
//! | module             | its one job                                                   | walkthrough |
//! |--------------------|---------------------------------------------------------------|-------------|
//! | [`cli`]            | one function per command; the only module that prints          | all         |
//! | [`demo`]           | a whole local swarm in one process, and what it did            | §12         |
//! | [`web`]            | the live swarm view in the browser (`--web`) and the demo's report | §21     |
//! | [`session`]        | one torrent from start to finish: storage, listener, announcer, scheduler, peers; several share one port (`Shared`) | §7–§10 |
//! | [`scheduler`]      | the one thread that decides: which block next, whom to unchoke, whom to ban | §8, §11 |
//! | [`choker`]         | whom to unchoke: BEP 3 choking and optimistic unchoking, a pure function | §11 |
//! | [`layer_fetch`]    | fetching a v2 torrent's piece layers from peers (BEP 52 hash requests) | §18 |
//! | [`metadata_fetch`] | fetching the info dictionary from peers for a magnet link (BEP 9) | §13   |
//! | [`web_seed`]       | web seeds (BEP 19): an HTTP server as one more peer, range requests mapped to pieces | §19 |
//! | [`peer`]           | one thread per connection: handshake, messages, requests, serving, listener; TCP or uTP | §7, §10, §16, §17 |
//! | [`events`]         | the thread contract: every `Event` to the scheduler, every `Command` back | §7, §8 |
//! | [`trace`]          | the wire trace: one line per message, written and read back    | §5          |
//! | [`tracker_server`] | the built-in tracker (HTTP and UDP), for local swarms          | §3          |
//! | [`utp`]            | uTP (BEP 29): packets, one connection's state machine, LEDBAT; the `utp` thread and `UtpStream` | §17 |
//! | [`lsd`]            | local peer discovery (BEP 14): announces on the LAN's multicast group; the `lsd` thread | §20 |
//! | [`dht`]            | the mainline DHT (BEP 5): KRPC, k-buckets, iterative lookups; the `dht` thread | §15 |
//! | [`tracker`]        | asks trackers for peers: HTTP, UDP (BEP 15), tiers (BEP 12), re-announces | §3 |
//! | [`create`]         | makes a `.torrent` from files: streams them, hashes on all cores | §2        |
//! | [`storage`]        | the torrent's byte stream over its files: read, write, resume  | §9          |
//! | [`piece`]          | pieces and 16 KiB blocks; the SHA-1 check                      | §9          |
//! | [`mse`]            | Message Stream Encryption under the peer protocol: DH handshake, RC4 stream | §16 |
//! | [`wire`]           | the peer protocol's bytes: handshake, messages, bitfield, extensions; no sockets | §4–§6, §13 |
//! | [`magnet`]         | magnet URIs (BEP 9): info hash, name, trackers, peers          | §14         |
//! | [`metainfo`]       | `.torrent` bytes → [`metainfo::Metainfo`]; info hash over raw bytes; safe paths | §2 |
//! | [`merkle`]         | BitTorrent v2's SHA-256 hash trees (BEP 52): roots, piece layers, proofs; pure functions | §2 |
//! | [`peer_id`]        | our 20-byte name on the network (BEP 20 style)                 | §3          |
//! | [`bencode`]        | bencoding: decode (with byte spans) and encode                 | §1          |
//! | [`encoding`]       | bytes every layer shares: hex, SHA-1, percent-encoding, compact peers | §2, §3 |
//!
//! The layers, from the top: the commands (`cli`, `demo`); one torrent (`session`); the
//! threads (`scheduler` with `choker`, `metadata_fetch`, `peer`) and what they say to each
//! other (`events`, `trace`); the trackers; the files (`create`, `storage`, `piece`); and at
//! the bottom the bytes, which know nothing of threads, sockets or the command line.
//!
//! Design rules (see `docs/design.md`): synchronous, blocking I/O, one OS thread per peer; no
//! `unsafe`; nothing panics on bytes from the network or the disk.
#![forbid(unsafe_code)]

pub mod bencode;
pub mod choker;
pub mod cli;
pub mod create;
pub mod demo;
pub mod dht;
pub mod encoding;
pub mod events;
pub mod layer_fetch;
pub mod lsd;
pub mod magnet;
pub mod merkle;
pub mod metadata_fetch;
pub mod metainfo;
pub mod mse;
pub mod peer;
pub mod peer_id;
pub mod piece;
pub mod scheduler;
pub mod session;
pub mod storage;
pub mod trace;
pub mod tracker;
pub mod tracker_server;
pub mod utp;
pub mod web;
pub mod web_seed;
pub mod wire;
