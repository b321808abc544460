//! Replays the fuzz seed corpus on every `cargo test`, so CI catches a regression without fuzzing.
//!
//! `tests/fuzz/` is a cargo-fuzz project of its own (docs/fuzzing.md); its seeds live in
//! `tests/fuzz/corpus/<target>/`. Each test below feeds every seed of one target to the same
//! parser the fuzz target calls, and passes if nothing panics. The lines are copied from the
//! fuzz targets on purpose: this crate and the fuzz crate share no code.
//!
//! The seeds are made by peerwire itself, by the ignored test at the bottom of this file:
//!
//! ```text
//! cargo test --test fuzz_corpus -- --ignored write_seed_corpus
//! ```
//!
//! It overwrites the seeds it knows by name and leaves any other file alone (a minimised crash
//! input saved into the corpus, say).

use peerwire::bencode::{self, Limits, Value};
use peerwire::create::{CreateOptions, create_torrent};
use peerwire::dht::krpc::{self, Query};
use peerwire::dht::{NodeId, NodeInfo};
use peerwire::encoding;
use peerwire::lsd::Announce;
use peerwire::magnet::Magnet;
use peerwire::merkle;
use peerwire::metainfo::{InfoHash, Metainfo, piece_aligned_files};
use peerwire::peer_id::PeerId;
use peerwire::tracker::udp_packet::{AnnouncePacket, Request, Response};
use peerwire::tracker::{ScrapeStats, http};
use peerwire::utp::packet::{self as utp_packet, Packet, PacketType, SelectiveAck};
use peerwire::web::http::parse_request;
use peerwire::wire::extension::{ExtendedHandshake, MetadataMessage, PexMessage};
use peerwire::wire::hashes::HashRange;
use peerwire::wire::{Handshake, Message};
use std::fs;
use std::net::{SocketAddr, SocketAddrV4};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

/// Every seed of `target`, with its name (for the failure message). A target without seeds
/// is a mistake, not a pass.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut seeds = Vec::new();
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        seeds.push((name, fs::read(&path).expect("seed readable")));
    }
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds.sort();
    seeds
}

/// Runs `parse` on every seed of `target`; a panic names the seed.
fn replay(target: &str, parse: impl Fn(&[u8])) {
    for (name, bytes) in seeds(target) {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| parse(&bytes)));
        assert!(outcome.is_ok(), "corpus/{target}/{name} panics");
    }
}

#[test]
fn replay_bencode() {
    replay("bencode", |data| {
        let _ = bencode::decode(data);
        let limits = Limits {
            max_depth: 8,
            max_values: 64,
        };
        let _ = bencode::decode_prefix(data, limits);
    });
}

#[test]
fn replay_metainfo() {
    replay("metainfo", |data| {
        if let Ok(metainfo) = Metainfo::from_bytes(data) {
            let _ = metainfo.tracker_tiers();
            let _ = metainfo.info.num_pieces();
            let _ = metainfo.info.content_files().count();
            if let Some(v2) = &metainfo.v2 {
                let _ = piece_aligned_files(&v2.files, metainfo.info.piece_length);
            }
        }
    });
}

// The same check as the fuzz target's, from one file.
include!("fuzz/checks/wire_message.rs");

#[test]
fn replay_wire_message() {
    replay("wire_message", check_wire_message);
}

#[test]
fn replay_handshake() {
    replay("handshake", |data| {
        let _ = Handshake::read_from(&mut &data[..]);
    });
}

#[test]
fn replay_tracker_http() {
    replay("tracker_http", |data| {
        if let Ok(dict) = http::parse_dictionary(data) {
            let _ = http::parse_announce(&dict);
        }
        let mut hash = [0u8; 20]; // as the target does: the hash a scrape body names first
        let start = data.len().min(12);
        let named = &data[start..data.len().min(start + 20)];
        hash[..named.len()].copy_from_slice(named);
        let _ = http::parse_scrape(data, peerwire::metainfo::InfoHash(hash));
        let _ = encoding::parse_compact_v4(data);
        let _ = encoding::parse_compact_v6(data);
    });
}

#[test]
fn replay_tracker_udp() {
    replay("tracker_udp", |data| {
        let _ = Request::decode(data);
        let _ = Response::decode(data, false);
        let _ = Response::decode(data, true);
    });
}

#[test]
fn replay_extension() {
    replay("extension", |data| {
        let _ = ExtendedHandshake::from_payload(data);
        let _ = MetadataMessage::from_payload(data);
        let _ = PexMessage::from_payload(data);
    });
}

#[test]
fn replay_magnet() {
    replay("magnet", |data| {
        let _ = Magnet::parse(&String::from_utf8_lossy(data));
    });
}

#[test]
fn replay_lsd_packet() {
    replay("lsd_packet", |data| {
        let _ = Announce::parse(data);
    });
}

#[test]
fn replay_krpc() {
    replay("krpc", |data| {
        let _ = krpc::Message::decode(data);
    });
}

#[test]
fn replay_web_request() {
    replay("web_request", |data| {
        if let Ok(request) = parse_request(data) {
            assert!(request.path.starts_with('/'), "{request:?}");
        }
    });
}

// The same check as the fuzz target's, from one file.
include!("fuzz/checks/utp_packet.rs");

#[test]
fn replay_utp_packet() {
    replay("utp_packet", check_utp_packet);
}

include!("fuzz/checks/web_seed_answer.rs");

#[test]
fn replay_web_seed_answer() {
    replay("web_seed_answer", check_web_seed_answer);
}

// ---------------------------------------------------------------------------------------------
// The seed generator. Small, readable inputs that reach each parser's main paths; libFuzzer
// mutates from there.

#[test]
#[ignore = "writes the seed corpus into the source tree; run by hand (see the module doc)"]
fn write_seed_corpus() {
    write_bencode_seeds();
    write_metainfo_seeds();
    write_wire_message_seeds();
    write_handshake_seeds();
    write_tracker_http_seeds();
    write_tracker_udp_seeds();
    write_extension_seeds();
    write_magnet_seeds();
    write_krpc_seeds();
    write_utp_packet_seeds();
    write_lsd_packet_seeds();
    write_web_seed_answer_seeds();
    write_web_request_seeds();
}

fn write_web_request_seeds() {
    let t = "web_request";
    let heads: [(&str, &[u8]); 8] = [
        (
            "page",
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: text/html\r\n\r\n",
        ),
        (
            "state",
            b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ),
        (
            "trace",
            b"GET /api/trace?member=1&peer=%5B%3A%3A1%5D%3A6881 HTTP/1.1\r\n\r\n",
        ),
        ("head", b"HEAD /page.js HTTP/1.0\n\n"),
        (
            "post",
            b"POST /api/state HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
        ),
        ("absolute", b"GET http://example/ HTTP/1.1\r\n\r\n"),
        ("not_ascii", b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n"),
        ("tls", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    ];
    for (name, head) in heads {
        write_seed(t, name, head);
    }
}

/// LSD announces (BEP 14): ours, libtorrent's and Transmission's layouts, several hashes,
/// and the refusals (no port, a bad port, two ports, a bad hash, no end of headers).
fn write_lsd_packet_seeds() {
    let t = "lsd_packet";
    let ours = Announce::for_torrent(INFO_HASH, 6881, "5f3a9c01");
    write_seed(t, "ours", &ours.to_bytes());
    let hex = INFO_HASH.to_hex();
    let packets: [(&str, String); 8] = [
        (
            "libtorrent",
            format!(
                "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\n\
                 Infohash: {hex}\r\ncookie: 1a2b3c\r\n\r\n\r\n"
            ),
        ),
        (
            "transmission",
            format!(
                "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\n\
                 Infohash: {}\r\n\r\n\r\n",
                hex.to_uppercase()
            ),
        ),
        (
            "several",
            format!(
                "bt-search * HTTP/1.0\nPORT:1\nX-Other: y\ninfohash: {hex}\nInfohash: {}\n\n",
                "ff".repeat(20)
            ),
        ),
        (
            "no_port",
            format!("BT-SEARCH * HTTP/1.1\r\nInfohash: {hex}\r\n\r\n"),
        ),
        (
            "bad_port",
            format!("BT-SEARCH * HTTP/1.1\r\nPort: +65536\r\nInfohash: {hex}\r\n\r\n"),
        ),
        (
            "two_ports",
            format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nPort: 2\r\nInfohash: {hex}\r\n\r\n"),
        ),
        (
            "bad_hash",
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 12zz\r\n\r\n".into(),
        ),
        (
            "unterminated",
            format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {hex}"),
        ),
    ];
    for (name, packet) in packets {
        write_seed(t, name, packet.as_bytes());
    }
}

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).expect("corpus directory");
    fs::write(dir.join(name), bytes).expect("seed written");
}

const INFO_HASH: InfoHash =
    InfoHash(*b"\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67");
const PEER_ID: PeerId = PeerId(*b"-PW0001-abcdefghijkl");

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

fn write_bencode_seeds() {
    let t = "bencode";
    write_seed(t, "int", b"i42e");
    write_seed(t, "negative_int", b"i-3e");
    write_seed(t, "zero", b"i0e");
    write_seed(t, "bytes", b"4:spam");
    write_seed(t, "empty_bytes", b"0:");
    write_seed(t, "list", b"l4:spami-3ee");
    write_seed(t, "dict", b"d3:cow3:moo4:spaml1:a1:bee");
    // Quirks that decode with a soft error (libtorrent tolerates them in v1 torrents).
    write_seed(t, "unsorted", b"d1:bi1e1:ai2ee");
    write_seed(t, "leading_zero", b"i03e");
    write_seed(t, "duplicate_key", b"d0:1:\xa60:1:\xa6e");
    // Errors: trailing data, truncation, a length past the end.
    write_seed(t, "trailing", b"i1ei2e");
    write_seed(t, "truncated", b"l4:spa");
    write_seed(t, "long_length", b"99999999999:x");
    // Nesting, around the fuzz target's depth cap of 8.
    let mut deep = Value::integer(7);
    for _ in 0..10 {
        deep = Value::list(vec![deep]);
    }
    write_seed(t, "deep", &bencode::encode(&deep));
    let nested = Value::dict(vec![
        (
            "a",
            Value::list(vec![Value::integer(i64::MIN), Value::integer(i64::MAX)]),
        ),
        (
            "b",
            Value::dict(vec![("c", Value::bytes(vec![0u8, 255, 10]))]),
        ),
    ]);
    write_seed(t, "nested", &bencode::encode(&nested));
}

/// A torrent made by `create_torrent`, with the creation date fixed so the seed is the same
/// every time it is generated.
fn created(files: &[(&str, usize)], options: &CreateOptions) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("content");
    let path = if files.len() == 1 && !files[0].0.contains('/') {
        root.with_file_name(files[0].0)
    } else {
        root.clone()
    };
    for (name, len) in files {
        let file = if path == root {
            root.join(name)
        } else {
            path.clone()
        };
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..*len).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&file, bytes).unwrap();
    }
    let torrent = create_torrent(&path, options).expect("create");
    let mut value = bencode::decode(&torrent.bytes)
        .expect("our torrent decodes")
        .value;
    if let bencode::Item::Dict(entries) = &mut value.item {
        for (key, v) in entries.iter_mut() {
            if key == b"creation date" {
                *v = Value::integer(1_700_000_000);
            }
        }
    }
    bencode::encode(&value)
}

fn write_metainfo_seeds() {
    let t = "metainfo";
    let one_tracker = CreateOptions {
        trackers: vec!["http://127.0.0.1:6969/announce".into()],
        ..CreateOptions::default()
    };
    write_seed(
        t,
        "single_file",
        &created(&[("hello.txt", 1000)], &one_tracker),
    );
    write_seed(
        t,
        "two_pieces",
        &created(&[("two.bin", 16_385)], &one_tracker),
    );
    let tiers = CreateOptions {
        trackers: vec![
            "udp://127.0.0.1:6969/announce".into(),
            "http://127.0.0.1:8080/announce?passkey=x".into(),
        ],
        piece_length: Some(16 * 1024),
        private: true,
        comment: Some("a seed for the fuzzer".into()),
        threads: Some(1),
        ..CreateOptions::default()
    };
    let files = [("a/one.bin", 40_000), ("b/c/two.bin", 3), ("three", 16_384)];
    write_seed(t, "multi_file_private", &created(&files, &tiers));
    // Hand-built, to reach the lenient and the refusing branches.
    let pieces = Value::bytes(vec![0xaau8; 20]);
    let base_info = |extra: Vec<(&'static str, Value)>| {
        let mut entries = vec![
            ("name", Value::bytes(b"x".to_vec())),
            ("piece length", Value::integer(16384)),
            ("pieces", pieces.clone()),
        ];
        entries.extend(extra);
        Value::dict(entries)
    };
    let torrent = |info: Value, extra: Vec<(&'static str, Value)>| {
        let mut entries = vec![("info", info)];
        entries.extend(extra);
        bencode::encode(&Value::dict(entries))
    };
    let url_list = Value::list(vec![Value::bytes(b"http://mirror.example/x".to_vec())]);
    let announce_list = Value::list(vec![
        Value::list(vec![Value::bytes(b"http://a.example/announce".to_vec())]),
        Value::list(vec![Value::bytes(b"udp://b.example:80".to_vec())]),
    ]);
    write_seed(
        t,
        "url_list_and_tiers",
        &torrent(
            base_info(vec![("length", Value::integer(100))]),
            vec![("url-list", url_list), ("announce-list", announce_list)],
        ),
    );
    write_seed(
        t,
        "negative_length",
        &torrent(base_info(vec![("length", Value::integer(-1))]), vec![]),
    );
    write_seed(t, "no_length", &torrent(base_info(vec![]), vec![]));
    let bad_path = Value::list(vec![Value::dict(vec![
        ("length", Value::integer(5)),
        (
            "path",
            Value::list(vec![Value::bytes(b"..".to_vec()), Value::integer(3)]),
        ),
    ])]);
    write_seed(
        t,
        "bad_path",
        &torrent(base_info(vec![("files", bad_path)]), vec![]),
    );
    let mut trailing = torrent(base_info(vec![("length", Value::integer(1))]), vec![]);
    trailing.push(b'\n');
    write_seed(t, "trailing_newline", &trailing);
    let v2 = base_info(vec![
        ("length", Value::integer(1)),
        ("meta version", Value::integer(2)),
    ]);
    write_seed(t, "meta_version_2", &torrent(v2, vec![]));
    write_v2_metainfo_seeds();
}

/// BitTorrent v2 (BEP 52) seeds: file trees with real pieces roots and piece layers computed by
/// `merkle`, so the fuzzer starts from torrents that pass every check and mutates from there,
/// and a few that fail one check each.
fn write_v2_metainfo_seeds() {
    let t = "metainfo";
    let files: &[(&[&str], usize)] = &[
        (&["a.bin"], 40_000),
        (&["b", "c.txt"], 5),
        (&["b", "empty"], 0),
        (&["d.bin"], 16_384),
    ];
    // In tree order (sorted), so that the hybrid's v1 list, made in this order, matches.
    let tree = v2_tree(files, None);
    let layers = v2_layers(files, 16_384);
    write_seed(
        t,
        "v2_multi_file",
        &v2_torrent(v2_info(tree.clone(), 16_384, vec![]), Some(layers.clone())),
    );
    let one: &[(&[&str], usize)] = &[(&["one.bin"], 70_000)];
    write_seed(
        t,
        "v2_single_file_32k",
        &v2_torrent(
            v2_info(v2_tree(one, None), 32_768, vec![]),
            Some(v2_layers(one, 32_768)),
        ),
    );
    write_seed(
        t,
        "v2_no_piece_layers",
        &v2_torrent(v2_info(tree.clone(), 16_384, vec![]), None),
    );
    // A layer one byte off: it no longer hashes up to its root.
    let mut bad = bencode::encode(&layers);
    let last = bad.len() - 3;
    bad[last] ^= 1;
    let bad_layers = bencode::decode(&bad).expect("still bencoding").value;
    write_seed(
        t,
        "v2_layer_not_matching_root",
        &v2_torrent(v2_info(tree.clone(), 16_384, vec![]), Some(bad_layers)),
    );
    let padded = v2_tree(&[(&["p"], 10)], Some(b"p"));
    write_seed(
        t,
        "v2_pad_attribute",
        &v2_torrent(v2_info(padded, 16_384, vec![]), None),
    );
    let link = Value::dict(vec![(
        "",
        Value::dict(vec![
            ("attr", Value::bytes(b"lx".to_vec())),
            ("length", Value::integer(0)),
            (
                "symlink path",
                Value::list(vec![
                    Value::bytes(b"..".to_vec()),
                    Value::bytes(b"a.bin".to_vec()),
                ]),
            ),
        ]),
    )]);
    let mut with_link = tree.clone();
    if let bencode::Item::Dict(entries) = &mut with_link.item {
        entries.push((b"link".to_vec(), link));
    }
    write_seed(
        t,
        "v2_symlink",
        &v2_torrent(v2_info(with_link, 16_384, vec![]), Some(layers.clone())),
    );
    let mut deep = v2_tree(&[(&["f"], 10)], None);
    for _ in 0..30 {
        deep = Value::dict(vec![("d", deep)]);
    }
    write_seed(
        t,
        "v2_deep_tree",
        &v2_torrent(v2_info(deep, 16_384, vec![]), None),
    );
    // A hybrid: the same files as a v1 list with padding files, and v1 piece hashes.
    let mut list = Vec::new();
    let mut stream = Vec::new();
    let with_data: Vec<usize> = (0..files.len()).filter(|&i| files[i].1 > 0).collect();
    for (i, (path, len)) in files.iter().enumerate() {
        let path_value = Value::list(path.iter().map(|p| Value::bytes(p.as_bytes())).collect());
        list.push(Value::dict(vec![
            ("length", Value::integer(*len as i64)),
            ("path", path_value),
        ]));
        stream.extend(seed_content(*len, i));
        let gap = (16_384 - stream.len() % 16_384) % 16_384;
        if *len > 0 && gap > 0 && with_data.last() != Some(&i) {
            list.push(Value::dict(vec![
                ("attr", Value::bytes(b"p".to_vec())),
                ("length", Value::integer(gap as i64)),
                (
                    "path",
                    Value::list(vec![
                        Value::bytes(b".pad".to_vec()),
                        Value::bytes(gap.to_string().into_bytes()),
                    ]),
                ),
            ]));
            stream.resize(stream.len() + gap, 0);
        }
    }
    let pieces: Vec<u8> = stream.chunks(16_384).flat_map(encoding::sha1).collect();
    let v1 = vec![
        ("files", Value::list(list)),
        ("pieces", Value::bytes(pieces)),
    ];
    write_seed(
        t,
        "v2_hybrid",
        &v2_torrent(v2_info(tree, 16_384, v1), Some(layers)),
    );
}

/// The content of seed file number `index`: `len` bytes that depend on it.
fn seed_content(len: usize, index: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + index * 13) % 251) as u8)
        .collect()
}

/// A v2 `file tree` of `files` (`attr` on every leaf, if given). `Value::dict` keeps the order
/// given and `encode` sorts keys, so the bytes come out canonical whatever the order here.
fn v2_tree(files: &[(&[&str], usize)], attr: Option<&[u8]>) -> Value {
    let mut root = Value::dict(vec![]);
    for (i, (path, len)) in files.iter().enumerate() {
        let data = seed_content(*len, i);
        let mut props = vec![("length", Value::integer(*len as i64))];
        if *len > 0 {
            let root_hash = merkle::root_of(&merkle::leaf_hashes(&data));
            props.push(("pieces root", Value::bytes(root_hash.0.to_vec())));
        }
        if let Some(attr) = attr {
            props.push(("attr", Value::bytes(attr.to_vec())));
        }
        let leaf = Value::dict(vec![("", Value::dict(props))]);
        insert_at(&mut root, path, leaf);
    }
    root
}

/// Puts `leaf` at `path` in a tree of dictionaries, making directories on the way.
fn insert_at(dir: &mut Value, path: &[&str], leaf: Value) {
    let bencode::Item::Dict(entries) = &mut dir.item else {
        panic!("seed tree: not a directory");
    };
    let key = path[0].as_bytes().to_vec();
    if path.len() == 1 {
        entries.push((key, leaf));
        return;
    }
    let at = match entries.iter().position(|(k, _)| *k == key) {
        Some(at) => at,
        None => {
            entries.push((key, Value::dict(vec![])));
            entries.len() - 1
        }
    };
    insert_at(&mut entries[at].1, &path[1..], leaf);
}

/// `piece layers` of `files` for `piece_length`: every file larger than one piece.
fn v2_layers(files: &[(&[&str], usize)], piece_length: u64) -> Value {
    let per_piece = merkle::BlocksPerPiece::for_piece_length(piece_length).expect("a v2 length");
    let mut entries = Vec::new();
    for (i, (_, len)) in files.iter().enumerate() {
        if *len as u64 <= piece_length {
            continue;
        }
        let leaves = merkle::leaf_hashes(&seed_content(*len, i));
        let layer: Vec<u8> = merkle::piece_layer(&leaves, per_piece)
            .iter()
            .flat_map(|h| h.0)
            .collect();
        entries.push((merkle::root_of(&leaves).0.to_vec(), Value::bytes(layer)));
    }
    Value::new(bencode::Item::Dict(entries))
}

fn v2_info(tree: Value, piece_length: i64, v1: Vec<(&'static str, Value)>) -> Value {
    let mut entries = vec![
        ("file tree", tree),
        ("meta version", Value::integer(2)),
        ("name", Value::bytes(b"seed".to_vec())),
        ("piece length", Value::integer(piece_length)),
    ];
    entries.extend(v1);
    Value::dict(entries)
}

fn v2_torrent(info: Value, piece_layers: Option<Value>) -> Vec<u8> {
    let mut entries = vec![
        (
            "announce",
            Value::bytes(b"http://127.0.0.1:6969/announce".to_vec()),
        ),
        ("info", info),
    ];
    entries.extend(piece_layers.map(|layers| ("piece layers", layers)));
    bencode::encode(&Value::dict(entries))
}

fn write_wire_message_seeds() {
    let t = "wire_message";
    let messages = [
        ("keep_alive", Message::KeepAlive),
        ("choke", Message::Choke),
        ("unchoke", Message::Unchoke),
        ("interested", Message::Interested),
        ("not_interested", Message::NotInterested),
        ("have", Message::Have { index: 7 }),
        ("bitfield", Message::Bitfield(vec![0b1010_0000, 0xff])),
        (
            "request",
            Message::Request {
                index: 1,
                begin: 16384,
                length: 16384,
            },
        ),
        (
            "piece",
            Message::Piece {
                index: 1,
                begin: 0,
                block: b"hello".to_vec(),
            },
        ),
        (
            "cancel",
            Message::Cancel {
                index: 1,
                begin: 16384,
                length: 16384,
            },
        ),
        ("port", Message::Port(6881)),
        // BEP 6, the fast extension.
        ("suggest_piece", Message::SuggestPiece { index: 5 }),
        ("have_all", Message::HaveAll),
        ("have_none", Message::HaveNone),
        (
            "reject_request",
            Message::RejectRequest {
                index: 3,
                begin: 32768,
                length: 16384,
            },
        ),
        ("allowed_fast", Message::AllowedFast { index: 9 }),
        (
            "extended",
            Message::Extended {
                id: 0,
                payload: b"d1:md11:ut_metadatai1eee".to_vec(),
            },
        ),
        // BEP 52: what libtorrent asks of a file of 16 pieces of 64 KiB, and the answers.
        ("hash_request", HASH_RANGE.request()),
        (
            "hashes",
            HashRange {
                length: 4,
                proof_layers: 3,
                ..HASH_RANGE
            }
            .answer((0..6u8).map(|i| merkle::Sha256Hash([i; 32])).collect())
            .expect("6 hashes fit the header"),
        ),
        ("hash_reject", HASH_RANGE.reject()),
    ];
    let mut stream = Vec::new();
    for (name, message) in &messages {
        let bytes = message.to_bytes();
        write_seed(t, name, &bytes);
        stream.extend_from_slice(&bytes);
    }
    write_seed(t, "stream_of_all", &stream);
    // Frames no `to_bytes` makes: an unknown id (skipped), a bad length, a 4 GiB prefix.
    write_seed(t, "unknown_id", &[0, 0, 0, 3, 42, 0xde, 0xad]);
    write_seed(t, "have_too_long", &[0, 0, 0, 6, 4, 0, 0, 0, 1, 0]);
    write_seed(t, "huge_prefix", &[0xff, 0xff, 0xff, 0xff, 7]);
    write_seed(t, "piece_short", &[0, 0, 0, 5, 7, 0, 0, 0, 1]);
    // A `hashes` frame one hash longer than its header allows, and one whose length is not a
    // power of two.
    let mut long = HashRange {
        length: 2,
        proof_layers: 0,
        ..HASH_RANGE
    }
    .answer(vec![merkle::Sha256Hash::ZERO; 2])
    .expect("2 hashes fit the header")
    .to_bytes();
    long.extend_from_slice(&[0; 32]);
    let frame_len = (long.len() - 4) as u32;
    long[..4].copy_from_slice(&frame_len.to_be_bytes());
    write_seed(t, "hashes_too_long", &long);
    let mut odd = HASH_RANGE.request().to_bytes();
    odd[4] = 22; // a `hashes` header with length 16 and no hashes after it
    odd[45..49].copy_from_slice(&3u32.to_be_bytes());
    write_seed(t, "hashes_bad_length", &odd);
}

/// A `hash request` for the piece layer of a file of 16 pieces of 64 KiB (layer 2), as
/// libtorrent makes it: the whole layer, proof layers up to the root's children.
const HASH_RANGE: HashRange = HashRange {
    pieces_root: merkle::Sha256Hash([0x5a; 32]),
    base_layer: 2,
    index: 0,
    length: 16,
    proof_layers: 3,
};

fn write_handshake_seeds() {
    let t = "handshake";
    let with_extensions = Handshake {
        reserved: [0, 0, 0, 0, 0, 0x10, 0, 0],
        info_hash: INFO_HASH,
        peer_id: PEER_ID,
    };
    let plain = Handshake {
        reserved: [0; 8],
        ..with_extensions
    };
    write_seed(t, "extensions", &with_extensions.to_bytes());
    write_seed(t, "plain", &plain.to_bytes());
    let mut bad_pstr = plain.to_bytes();
    bad_pstr[1] = b'b';
    write_seed(t, "bad_pstr", &bad_pstr);
    write_seed(t, "bad_pstrlen", &[18]);
    let fast = Handshake {
        reserved: [0, 0, 0, 0, 0, 0x10, 0, 0x04],
        ..with_extensions
    };
    write_seed(t, "fast", &fast.to_bytes());
    write_seed(t, "truncated", &plain.to_bytes()[..40]);
}

fn write_tracker_http_seeds() {
    let t = "tracker_http";
    let peers4 = [addr("127.0.0.1:6881"), addr("10.0.0.2:51413")];
    let peers6 = [addr("[::1]:6881")];
    let compact = Value::dict(vec![
        ("interval", Value::integer(1800)),
        ("min interval", Value::integer(60)),
        ("complete", Value::integer(3)),
        ("incomplete", Value::integer(1)),
        ("tracker id", Value::bytes(b"abc".to_vec())),
        ("peers", Value::bytes(encoding::encode_compact_v4(&peers4))),
        ("peers6", Value::bytes(encoding::encode_compact_v6(&peers6))),
    ]);
    write_seed(t, "announce_compact", &bencode::encode(&compact));
    let peer = |ip: &str, port: i64| {
        Value::dict(vec![
            ("ip", Value::bytes(ip.as_bytes().to_vec())),
            ("port", Value::integer(port)),
        ])
    };
    let dict_peers = Value::dict(vec![
        ("interval", Value::integer(900)),
        (
            "peers",
            Value::list(vec![
                peer("127.0.0.1", 6881),
                peer("::1", 1),
                peer("tracker.example", 80),
            ]),
        ),
    ]);
    write_seed(t, "announce_dict_peers", &bencode::encode(&dict_peers));
    let failure = Value::dict(vec![(
        "failure reason",
        Value::bytes(b"unregistered torrent".to_vec()),
    )]);
    write_seed(t, "failure", &bencode::encode(&failure));
    let warning = Value::dict(vec![
        ("warning message", Value::bytes(b"slow down".to_vec())),
        ("interval", Value::integer(-5)),
        ("peers", Value::bytes(vec![1, 2, 3])),
    ]);
    write_seed(t, "warning_ragged_peers", &bencode::encode(&warning));
    let scrape_entry = Value::dict(vec![
        ("complete", Value::integer(5)),
        ("downloaded", Value::integer(50)),
        ("incomplete", Value::integer(2)),
    ]);
    let scrape = bencode::Value::new(bencode::Item::Dict(vec![(
        b"files".to_vec(),
        Value::new(bencode::Item::Dict(vec![(
            INFO_HASH.0.to_vec(),
            scrape_entry,
        )])),
    )]));
    write_seed(t, "scrape", &bencode::encode(&scrape));
    write_seed(t, "not_a_dict", b"l4:spame");
    // IPv6 alone (BEP 7): an empty `peers`, three `peers6` entries, one of them IPv4-mapped.
    let v6_only = [
        addr("[::1]:6881"),
        addr("[2001:db8::7]:51413"),
        addr("[::ffff:10.0.0.2]:80"),
    ];
    let peers6_only = Value::dict(vec![
        ("interval", Value::integer(60)),
        ("peers", Value::bytes(Vec::new())),
        (
            "peers6",
            Value::bytes(encoding::encode_compact_v6(&v6_only)),
        ),
    ]);
    write_seed(t, "announce_peers6_only", &bencode::encode(&peers6_only));
    // One whole 18-byte entry and 2 bytes more: an error naming the length, never a guess.
    let mut ragged = encoding::encode_compact_v6(&v6_only[..1]);
    ragged.extend_from_slice(&[0xff, 0xff]);
    let ragged6 = Value::dict(vec![
        ("interval", Value::integer(60)),
        ("peers6", Value::bytes(ragged)),
    ]);
    write_seed(t, "ragged_peers6", &bencode::encode(&ragged6));
}

fn write_tracker_udp_seeds() {
    let t = "tracker_udp";
    write_seed(
        t,
        "connect_request",
        &Request::Connect { transaction_id: 1 }.encode(),
    );
    let announce = AnnouncePacket {
        connection_id: 0x1122_3344_5566_7788,
        transaction_id: 2,
        info_hash: INFO_HASH,
        peer_id: PEER_ID,
        downloaded: 0,
        left: 1000,
        uploaded: 0,
        event: 2,
        key: 0xdead_beef,
        num_want: -1,
        port: 6881,
    };
    write_seed(t, "announce_request", &Request::Announce(announce).encode());
    let scrape = Request::Scrape {
        connection_id: 7,
        transaction_id: 3,
        info_hashes: vec![INFO_HASH, InfoHash([9; 20])],
    };
    write_seed(t, "scrape_request", &scrape.encode());
    let connect = Response::Connect {
        transaction_id: 1,
        connection_id: 42,
    };
    write_seed(t, "connect_response", &connect.encode());
    let announce4 = Response::Announce {
        transaction_id: 2,
        interval: 1800,
        leechers: 1,
        seeders: 2,
        peers: vec![addr("127.0.0.1:6881"), addr("10.0.0.2:51413")],
    };
    write_seed(t, "announce_response_v4", &announce4.encode());
    let announce6 = Response::Announce {
        transaction_id: 2,
        interval: 1800,
        leechers: 0,
        seeders: 1,
        peers: vec![addr("[::1]:6881")],
    };
    write_seed(t, "announce_response_v6", &announce6.encode());
    // Read as an IPv6 answer, 2 bytes past the last whole 18-byte peer; as IPv4, 6 whole peers.
    let mut ragged6 = announce6.encode();
    ragged6.extend_from_slice(&[0xab; 2]);
    write_seed(t, "announce_response_v6_ragged", &ragged6);
    let stats = vec![ScrapeStats {
        seeders: 5,
        completed: 50,
        leechers: 2,
    }];
    write_seed(
        t,
        "scrape_response",
        &Response::Scrape {
            transaction_id: 3,
            stats,
        }
        .encode(),
    );
    let error = Response::Error {
        transaction_id: 4,
        message: "unregistered torrent".into(),
    };
    write_seed(t, "error_response", &error.encode());
}

fn write_extension_seeds() {
    let t = "extension";
    let handshake = ExtendedHandshake {
        extensions: vec![("ut_metadata".into(), 1), ("ut_pex".into(), 2)],
        client: Some("peerwire 0.1".into()),
        listen_port: Some(6881),
        request_queue: Some(250),
        metadata_size: Some(31_235),
        your_ip: Some("127.0.0.1".parse().unwrap()),
    };
    write_seed(t, "handshake", &handshake.to_payload());
    let ipv6 = ExtendedHandshake {
        extensions: vec![("ut_metadata".into(), 0)],
        your_ip: Some("::1".parse().unwrap()),
        ..ExtendedHandshake::default()
    };
    write_seed(t, "handshake_v6_off", &ipv6.to_payload());
    write_seed(
        t,
        "metadata_request",
        &MetadataMessage::Request { piece: 0 }.to_payload(),
    );
    write_seed(
        t,
        "metadata_reject",
        &MetadataMessage::Reject { piece: 1 }.to_payload(),
    );
    let data = MetadataMessage::Data {
        piece: 0,
        total_size: 10,
        data: b"d4:name1:xe".to_vec(),
    };
    write_seed(t, "metadata_data", &data.to_payload());
    write_seed(
        t,
        "metadata_unknown",
        &MetadataMessage::Unknown { msg_type: 9 }.to_payload(),
    );
    let pex = PexMessage {
        added: vec![
            (addr("10.0.0.2:6881"), 0x02),
            (addr("[2001:db8::1]:51413"), 0x10),
        ],
        dropped: vec![addr("10.0.0.3:6881"), addr("[::1]:1")],
    };
    write_seed(t, "pex", &pex.to_payload());
    let pex6 = PexMessage {
        added: vec![
            (addr("[::1]:6881"), 0x12),
            (addr("[2001:db8::2]:51413"), 0x04),
        ],
        dropped: vec![addr("[2001:db8::3]:1")],
    };
    write_seed(t, "pex_v6_only", &pex6.to_payload());
    // Written by hand: `added6` of 20 bytes (one entry and 2 more), `added6.f` of 3 flags that
    // do not line up, `dropped6` of 17 bytes (not one entry).
    let entry = encoding::encode_compact_v6(&[addr("[::1]:6881")]);
    let mut ragged = b"d6:added620:".to_vec();
    ragged.extend_from_slice(&entry);
    ragged.extend_from_slice(b"\xff\xff8:added6.f3:\x01\x02\x038:dropped617:");
    ragged.extend_from_slice(&entry[..17]);
    ragged.push(b'e');
    write_seed(t, "pex_v6_ragged", &ragged);
}

fn write_magnet_seeds() {
    let t = "magnet";
    let full = Magnet {
        info_hash: INFO_HASH,
        v2: None,
        name: Some("ubuntu 24.04.iso".into()),
        trackers: vec![
            "udp://tracker.example:6969/announce".into(),
            "http://t.example/a?k=1&x=%".into(),
        ],
        peers: vec![addr("10.0.0.2:6881"), addr("[::1]:51413")],
        web_seeds: vec!["https://mirror.example/ubuntu.iso".into()],
    };
    write_seed(t, "full", full.to_uri().as_bytes());
    let links: [(&str, &str); 10] = [
        (
            "hash_only",
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
        ),
        (
            "base32",
            "magnet:?xt=urn:btih:AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH&dn=a+b%20c",
        ),
        (
            "numbered",
            "magnet:?xt.1=urn:btih:0123456789ABCDEF0123456789ABCDEF01234567&tr.1=udp%3A%2F%2Fa%3A1&tr.2=http://b/",
        ),
        (
            "v2_only",
            "magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e",
        ),
        (
            "hybrid",
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e",
        ),
        (
            "bad_percent",
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=%zz&x.pe=host.example:1",
        ),
        (
            "conflict",
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&xt=urn:btih:ffffffffffffffffffffffffffffffffffffffff&&",
        ),
        (
            "escaped_xt",
            "magnet:?XT=urn%3Abtih%3A0123456789%61bcdef0123456789abcdef01234567&Tr=udp%3A%2F%2Fa%3A1",
        ),
        (
            "bad_tracker",
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&tr=udp%3A%2F%2Fa%3A1%ZZ&tr=http%3A%2F%2Fb%2F%3",
        ),
        (
            "latin1_tracker",
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&tr=http%3A%2F%2Ft%2Fcaf%E9%2Fannounce",
        ),
    ];
    for (name, link) in links {
        write_seed(t, name, link.as_bytes());
    }
}

fn write_krpc_seeds() {
    let t = "krpc";
    let me = NodeId(*b"abcdefghij0123456789");
    let target = NodeId(*b"mnopqrstuvwxyz123456");
    let node = |n: u8| NodeInfo {
        id: NodeId([n; 20]),
        addr: SocketAddrV4::new([127, 0, 0, n].into(), 6881 + u16::from(n)),
    };
    let queries = [
        ("ping", Query::Ping),
        ("find_node", Query::FindNode { target }),
        (
            "get_peers",
            Query::GetPeers {
                info_hash: INFO_HASH,
            },
        ),
        (
            "announce_peer",
            Query::AnnouncePeer {
                info_hash: INFO_HASH,
                port: 6881,
                implied_port: true,
                token: b"aoeusnth".to_vec(),
            },
        ),
        (
            "unknown_method",
            Query::Unknown {
                method: "sample_infohashes".into(),
            },
        ),
    ];
    for (name, query) in queries {
        let message = krpc::Message::query(b"aa".to_vec(), me, query);
        write_seed(t, name, &message.encode());
    }
    let mut read_only = krpc::Message::query(vec![0, 1, 2, 3], me, Query::Ping);
    read_only.version = Some(b"PW\x00\x01".to_vec());
    read_only.read_only = true;
    write_seed(t, "ping_read_only", &read_only.encode());
    let responses = [
        (
            "pong",
            krpc::Response {
                id: target,
                ..krpc::Response::default()
            },
        ),
        (
            "nodes",
            krpc::Response {
                id: target,
                nodes: (1..=8).map(node).collect(),
                ..krpc::Response::default()
            },
        ),
        (
            "values",
            krpc::Response {
                id: target,
                nodes: vec![node(9)],
                values: vec![
                    SocketAddrV4::new([10, 0, 0, 2].into(), 6881),
                    SocketAddrV4::new([192, 168, 1, 7].into(), 51413),
                ],
                token: Some(vec![0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]),
            },
        ),
    ];
    for (name, response) in responses {
        let message = krpc::Message::response(b"aa".to_vec(), response);
        write_seed(t, name, &message.encode());
    }
    let error = krpc::Message::error(b"aa".to_vec(), krpc::ERROR_PROTOCOL, "bad token");
    write_seed(t, "error", &error.encode());
    let unknown = krpc::Message::error(b"aa".to_vec(), krpc::ERROR_METHOD_UNKNOWN, "");
    write_seed(t, "error_method_unknown", &unknown.encode());
    // Messages our encoder does not make: extension keys, an IPv6 value, broken ones.
    write_seed(
        t,
        "extension_keys",
        b"d2:ip6:\x7f\0\0\x01\x1a\xe11:rd2:id20:mnopqrstuvwxyz1234566:nodes60:6:valuesl18:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x1a\xe1e7:samples20:ABCDEFGHIJKLMNOPQRSTe1:t2:aa1:v4:LT\x01\x021:y1:re",
    );
    write_seed(
        t,
        "ragged_nodes",
        b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re",
    );
    write_seed(
        t,
        "short_id",
        b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe",
    );
    write_seed(
        t,
        "negative_port",
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti-1e5:token2:tke1:q13:announce_peer1:t2:aa1:y1:qe",
    );
    write_seed(t, "latin1_error", b"d1:eli201e5:caf\xe9!e1:t2:aa1:y1:ee");
    write_seed(t, "not_a_dict", b"l1:t1:ye");
}

fn write_utp_packet_seeds() {
    let t = "utp_packet";
    // The packets a connection to the target's acceptor (receive id 1001, send id 1000, its
    // first packet 100) would see: its data, acks of its data, a FIN, a RESET.
    let packet = |kind: PacketType, seq: u16, ack: u16, payload: &[u8]| {
        let mut p = Packet::new(kind, 1001);
        p.seq_nr = seq;
        p.ack_nr = ack;
        p.wnd_size = 1 << 20;
        p.timestamp_micros = 1_000_000;
        p.timestamp_difference_micros = 20_000;
        p.payload = payload.to_vec();
        p
    };
    let data = packet(PacketType::Data, 2, 99, b"\x13BitTorrent protocol");
    let fin = packet(PacketType::Fin, 3, 99, b"");
    let state = packet(PacketType::State, 3, 101, b"");
    let mut sack = packet(PacketType::State, 3, 99, b"");
    sack.selective_ack = Some(SelectiveAck::from_received([0, 1, 2], 64));
    let mut syn = Packet::new(PacketType::Syn, 1000);
    syn.seq_nr = 1;
    let reset = packet(PacketType::Reset, 3, 99, b"");
    for (name, p) in [
        ("data", &data),
        ("fin", &fin),
        ("state", &state),
        ("state_selective_ack", &sack),
        ("syn", &syn),
        ("reset", &reset),
    ] {
        write_seed(t, name, &p.encode());
    }
    // Extensions our encoder does not write: an unknown one before a selective ACK.
    let mut unknown = state.encode();
    unknown[1] = 7;
    unknown.splice(
        20..20,
        [
            utp_packet::EXTENSION_SELECTIVE_ACK,
            2,
            0xaa,
            0xbb,
            0,
            4,
            1,
            0,
            0,
            0,
        ],
    );
    write_seed(t, "unknown_extension", &unknown);
    // Broken on purpose: short, version 2, type 5, an extension past the end, a 3-byte mask.
    let good = data.encode();
    write_seed(t, "truncated", &good[..12]);
    let mut v2 = good.clone();
    v2[0] = 0x02;
    write_seed(t, "version_2", &v2);
    let mut type5 = good.clone();
    type5[0] = 0x51;
    write_seed(t, "type_5", &type5);
    let mut past_end = state.encode();
    past_end[1] = 1;
    past_end.extend_from_slice(&[0, 200, 1]);
    write_seed(t, "extension_past_end", &past_end);
    let mut odd = state.encode();
    odd[1] = 1;
    odd.extend_from_slice(&[0, 3, 1, 2, 3]);
    write_seed(t, "selective_ack_3_bytes", &odd);
    // A conversation for the connection part: each datagram after its one-byte length.
    let mut conversation = Vec::new();
    let mut data2 = packet(PacketType::Data, 3, 101, b"more");
    data2.selective_ack = Some(SelectiveAck::from_received([5], 32));
    for p in [&data, &state, &sack, &data2, &fin, &state, &reset] {
        let bytes = p.encode();
        conversation.push(bytes.len() as u8);
        conversation.extend_from_slice(&bytes);
    }
    write_seed(t, "conversation", &conversation);
}

/// `STATUS FIRST LEN`, then Content-Range, Content-Length, Retry-After (see the check).
fn write_web_seed_answer_seeds() {
    let t = "web_seed_answer";
    write_seed(
        t,
        "exact_206",
        b"206 16384 16384\nbytes 16384-32767/100000\n16384\n",
    );
    write_seed(t, "unknown_total", b"206 0 100\nbytes 0-99/*\n\n");
    write_seed(
        t,
        "other_range",
        b"206 16384 16384\nbytes 0-16383/100000\n16384\n",
    );
    write_seed(
        t,
        "longer_length",
        b"206 0 100\nbytes 0-99/1000\n1000000000\n",
    );
    write_seed(t, "whole_file", b"200 0 100\n\n100\n");
    write_seed(t, "ignores_range", b"200 16384 16384\n\n1048576\n");
    write_seed(t, "busy", b"503 0 16384\n\n\n120\n");
    write_seed(
        t,
        "busy_date",
        b"503 0 16384\n\n\nWed, 21 Oct 2015 07:28:00 GMT\n",
    );
    write_seed(t, "not_satisfiable", b"416 999999 16384\nbytes */1000\n\n");
    write_seed(t, "huge_numbers", b"206 18446744073709551615 18446744073709551615\nbytes 18446744073709551615-18446744073709551615/*\n");
}
