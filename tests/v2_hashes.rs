//! BitTorrent v2's hash messages (BEP 52 `hash request`, `hashes`, `hash reject`), served by
//! peerwire from the piece layers of its `.torrent`.
//!
//! - With libtorrent: a leecher given nothing but a v2 magnet link (`urn:btmh:1220…`) of a
//!   v2-only torrent fetches the info dictionary from `peerwire seed` (BEP 9): the file roots,
//!   no piece layers. It then asks peerwire for the piece layers with hash requests; the trace
//!   shows each request and its answer. To show that libtorrent *uses* the hashes, it first
//!   downloads only two pieces of files it does not complete: a piece can be checked only
//!   against the piece layer, so "finished" with those two pieces means libtorrent took
//!   peerwire's hashes and proofs (it hangs up on a `hashes` message that does not prove to
//!   the root). Then it downloads the rest and the files must be byte-identical. (A file
//!   downloaded whole can be checked by its leaves alone, which is why the partial step is
//!   there: with every request rejected, libtorrent still completes a whole download.)
//!   Once with 64 KiB pieces (base layer 2; files of 2 and 16 pieces, and one of a single
//!   piece, which has no layer) and once with 16 KiB pieces (the piece layer is the leaves)
//!   and a file of 550 pieces, which libtorrent asks for in two requests proved by uncles;
//!   and a file of 513, whose last piece libtorrent asks for alone (`length: 1`).
//! - A raw peer that sends 1,000 hash requests and reads nothing gets rejects once 1 MiB of
//!   answers waits unsent: an 18 KiB answer to a 53-byte request must not fill our memory.
//! - Without a network: the codec's bounds, and the answers `PieceLayers` gives, checked with
//!   `merkle::verify_proof` against the file's root.

pub mod common;

use common::{Killed, StderrLines, lines_of, need_libtorrent_python, peerwire, trace_lines};
use peerwire::merkle::{self, BlocksPerPiece, Sha256Hash};
use peerwire::metainfo::{InfoHashV2, Metainfo, V2File, V2Info};
use peerwire::peer::state::{HashRefusal, PieceLayers};
use peerwire::trace::{Direction, Traced};
use peerwire::wire::Message;
use peerwire::wire::WireError;
use peerwire::wire::hashes::{HashRange, HashesError};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// With libtorrent.

/// A file of the content: its path under the content directory, and its bytes.
type Written = (PathBuf, Vec<u8>);

/// Writes `files` under `dir/content`, and a v2-only torrent of `content/<top>` (a directory
/// or a file) made by libtorrent with `piece_length`. `None` without libtorrent (skipped
/// loudly).
fn libtorrent_v2_torrent(
    dir: &Path,
    top: &str,
    files: &[(&str, usize)],
    piece_length: u32,
) -> Option<(PathBuf, Vec<Written>)> {
    let python = need_libtorrent_python()?;
    let content = dir.join("content");
    let mut written = Vec::new();
    for (i, (name, len)) in files.iter().enumerate() {
        let path = content.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = common::pseudo_random(*len, 2100 + i as u64);
        std::fs::write(&path, &bytes).unwrap();
        written.push((PathBuf::from(name), bytes));
    }
    let torrent = dir.join("v2.torrent");
    let script = r#"
import sys, libtorrent as lt
content, top, piece_length, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
fs = lt.file_storage()
lt.add_files(fs, content + "/" + top)
ct = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v2_only)
lt.set_piece_hashes(ct, content)
open(out, "wb").write(lt.bencode(ct.generate()))
"#;
    let made = common::run_with_deadline(
        Command::new(python)
            .args(["-c", script])
            .arg(&content)
            .arg(top)
            .arg(piece_length.to_string())
            .arg(&torrent),
        Duration::from_secs(60),
    );
    assert!(made.status.success(), "{made:?}");
    Some((torrent, written))
}

/// The libtorrent leecher: a magnet link, one peer, and two stages. It joins in upload mode, so
/// that no piece is fetched before it knows which; once the metadata is in it wants only the
/// pieces `FIRST` lists, and reports `finished <pieces it has>`; then it wants them all, and
/// reports `finished` again once its data is on disk. A `peer_error` or `hash_failed` line ends
/// the test.
const LEECHER: &str = r#"
import sys, time, faulthandler, libtorrent as lt
faulthandler.enable()
magnet, port, peer, save = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
first = [int(p) for p in sys.argv[5].split(",")]
def say(*words): print(*words, flush=True)
s = lt.session({"listen_interfaces": "127.0.0.1:%d" % port, "enable_dht": False,
    "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "alert_mask": lt.alert.category_t.all_categories})
params = lt.parse_magnet_uri(magnet)
params.save_path = save
params.flags |= lt.torrent_flags.upload_mode
h = s.add_torrent(params)
h.connect_peer(("127.0.0.1", peer))
stage = "some"
until = time.time() + 120
while time.time() < until:
    # Not `wait_for_alert`: the binding turns the alert it returns into a Python object while
    # libtorrent may be growing its alert queue, which moves that alert (a core dump of this
    # script showed the crash there). Polling reads alerts only through `pop_alerts`.
    time.sleep(0.02)
    for a in s.pop_alerts():
        if isinstance(a, lt.metadata_received_alert):
            say("metadata_received")
            wanted = [0] * h.torrent_file().num_pieces()
            for p in first: wanted[p] = 1
            h.prioritize_pieces(wanted)
            h.unset_flags(lt.torrent_flags.upload_mode)
            # Two peers in upload mode hang up on each other: dial again, now downloading.
            h.connect_peer(("127.0.0.1", peer))
        elif isinstance(a, lt.peer_error_alert):
            say("peer_error", a.error.message())
        elif isinstance(a, lt.hash_failed_alert):
            say("hash_failed", int(a.piece_index))
        elif isinstance(a, lt.torrent_finished_alert) and stage == "some":
            have = [str(i) for i, x in enumerate(h.status().pieces) if x]
            say("finished", ",".join(have))
            stage = "all"
            h.prioritize_pieces([1] * h.torrent_file().num_pieces())
        elif isinstance(a, lt.torrent_finished_alert):
            # Pieces count as had once hashed, while their blocks may still wait for the disk
            # thread: said once those writes are done (`flush_cache` waits for them; the
            # resume data's `flush_disk_cache` does not, and a check of the file failed).
            # (libtorrent flushes by itself when a stage finishes, so only a flush after
            # the last stage counts.)
            h.flush_cache()
            stage = "flushing"
        elif isinstance(a, lt.cache_flushed_alert) and stage == "flushing":
            have = [str(i) for i, x in enumerate(h.status().pieces) if x]
            say("finished", ",".join(have))
"#;

/// The leecher's next line starting with `prefix`; a `peer_error` or `hash_failed` first fails,
/// and so does the leecher's exit, with its status and what it wrote on stderr (`log`).
fn next_line(lines: &Receiver<String>, prefix: &str, leecher: &mut Killed, log: &Path) -> String {
    let until = Instant::now() + DEADLINE;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("the libtorrent leecher said no {prefix:?} in {DEADLINE:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Its stdout closed: the interpreter is ending, so waiting is short.
                let status = leecher.0.wait();
                let stderr = std::fs::read_to_string(log).unwrap_or_default();
                panic!("the libtorrent leecher ended before {prefix:?}: {status:?}\n{stderr}")
            }
        };
        assert!(
            !line.starts_with("peer_error") && !line.starts_with("hash_failed"),
            "libtorrent: {line}"
        );
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.trim().to_string();
        }
    }
}

/// What a magnet-link download by libtorrent from `peerwire seed` showed.
struct Exchange {
    /// Each hash request received, with the message peerwire answered it with.
    answered: Vec<(HashRange, Message)>,
    /// The trace lines of the exchange, as printed.
    lines: Vec<String>,
    /// From the leecher's start to its first `finished` (the `first` pieces checked).
    first_pieces: Duration,
}

/// `peerwire seed --trace` of the torrent; a libtorrent leecher with only the v2 magnet link
/// gets `first` (pieces of files it will not have whole, so they can be checked only with
/// the hashes peerwire sends), then the rest; the files must be byte-identical. `None`: no
/// libtorrent.
fn magnet_download_from_peerwire(
    dir: &Path,
    torrent: &Path,
    files: &[Written],
    first: &[u32],
) -> Option<Exchange> {
    let python = need_libtorrent_python()?;
    let metainfo = Metainfo::from_file(torrent).unwrap();
    let v2 = metainfo.v2.as_ref().expect("a v2 torrent");
    let port = common::free_port();
    let mut seed = peerwire();
    seed.args(["-v", "seed"])
        .arg(torrent)
        .arg(dir.join("content"));
    seed.args(["--port", &port.to_string(), "--no-dht"]);
    seed.args(["--transport", "tcp", "--trace"]);
    let seed = StderrLines::spawn(&mut seed);
    common::wait_for_tcp(port, DEADLINE, "peerwire seed");

    let save = dir.join("leecher");
    let log = dir.join("leecher.log");
    std::fs::create_dir_all(&save).unwrap();
    let magnet = format!("magnet:?xt=urn:btmh:1220{}", v2.info_hash.to_hex());
    let first_list: Vec<String> = first.iter().map(u32::to_string).collect();
    let started = Instant::now();
    let mut child = Command::new(python)
        .args(["-c", LEECHER, &magnet])
        .arg(common::free_port().to_string())
        .arg(port.to_string())
        .arg(&save)
        .arg(first_list.join(","))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("the leecher's log"))
        .spawn()
        .expect("start the libtorrent leecher");
    let lines = lines_of(child.stdout.take().expect("piped stdout"));
    let mut leecher = Killed(child);
    next_line(&lines, "metadata_received", &mut leecher, &log);
    let some = next_line(&lines, "finished", &mut leecher, &log);
    let first_pieces = started.elapsed();
    // Exactly those pieces: upload mode kept libtorrent from any other, and each of them
    // passed its check.
    assert_eq!(some, first_list.join(","), "the pieces checked first");
    let all = next_line(&lines, "finished", &mut leecher, &log);
    assert_eq!(all.split(',').count(), metainfo.info.num_pieces(), "{all}");
    let stderr = seed.stop("-INT", DEADLINE);
    for (name, bytes) in files {
        common::assert_bytes(
            &save.join(name),
            bytes,
            &format!(
                "libtorrent's download by a v2 magnet link: {}",
                name.display()
            ),
        );
    }
    drop(leecher);

    // Each request received is answered by the next hash message we sent (one connection).
    let mut answered = Vec::new();
    let mut waiting: Vec<HashRange> = Vec::new();
    for line in trace_lines(&stderr) {
        let Traced::Message(message) = line.traced else {
            continue;
        };
        let Some(range) = message.hash_range() else {
            continue;
        };
        match (line.direction, &message) {
            (Direction::Received, Message::HashRequest { .. }) => waiting.push(range),
            (Direction::Sent, Message::Hashes { .. } | Message::HashReject { .. }) => {
                assert!(!waiting.is_empty(), "an answer to no request: {message}");
                answered.push((waiting.remove(0), message));
            }
            _ => panic!("an unexpected hash message: {message}"),
        }
    }
    let lines = stderr.iter().filter(|l| is_hash_line(l)).cloned().collect();
    assert!(
        waiting.is_empty(),
        "hash requests never answered: {waiting:?}"
    );
    Some(Exchange {
        answered,
        lines,
        first_pieces,
    })
}

fn is_hash_line(line: &str) -> bool {
    ["-> Hash", "<- Hash"].iter().any(|m| line.contains(m))
}

/// Every request answered with hashes, none refused; prints the exchange.
fn all_served(exchange: &Exchange, what: &str) {
    println!(
        "{what}: {} hash requests answered; the first pieces checked {:.2?} after the start",
        exchange.answered.len(),
        exchange.first_pieces
    );
    for line in &exchange.lines {
        println!("  {line}");
    }
    assert!(
        !exchange.answered.is_empty(),
        "{what}: libtorrent asked for no hashes"
    );
    for (asked, answer) in &exchange.answered {
        assert!(
            matches!(answer, Message::Hashes { .. }),
            "{what}: {asked:?} was answered {answer}"
        );
        assert_eq!(
            answer.hash_range(),
            Some(*asked),
            "{what}: the same header back"
        );
    }
}

#[test]
fn a_libtorrent_magnet_leecher_checks_pieces_with_the_hashes_peerwire_serves() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("multi/a.bin", 100_000usize),  // 2 pieces (0, 1): a piece layer of 2
        ("multi/c.bin", 40_000),        // 1 piece (2): its root is its only hash
        ("multi/sub/b.bin", 1_000_000), // 16 pieces (3 to 18), the last short
    ];
    let Some((torrent, written)) = libtorrent_v2_torrent(dir.path(), "multi", &files, 65536) else {
        return;
    };
    // The first piece of a.bin and the third of b.bin: neither file is whole.
    let Some(exchange) = magnet_download_from_peerwire(dir.path(), &torrent, &written, &[0, 5])
    else {
        return;
    };
    all_served(&exchange, "64 KiB pieces");
    let metainfo = Metainfo::from_file(&torrent).unwrap();
    let v2 = metainfo.v2.as_ref().unwrap();
    // Each file of more than one piece was asked for, at the piece layer (64 KiB = 4 blocks:
    // layer 2), the whole layer at once, so that no uncle is needed.
    for file in v2.files.iter().filter(|f| !f.piece_layer.is_empty()) {
        let root = file.pieces_root.unwrap();
        let asked: Vec<&HashRange> = exchange
            .answered
            .iter()
            .map(|(r, _)| r)
            .filter(|r| r.pieces_root == root)
            .collect();
        assert!(!asked.is_empty(), "no request for {}", file.display_path());
        for r in asked {
            assert_eq!(r.base_layer, 2);
            assert_eq!(r.index, 0);
            assert_eq!(
                r.length as usize,
                file.piece_layer.len().next_power_of_two()
            );
            assert_eq!(r.uncle_count(), 0, "{r:?}");
        }
    }
}

#[test]
fn a_file_of_550_pieces_is_asked_for_in_two_requests_with_uncles() {
    let dir = tempfile::tempdir().unwrap();
    // 16 KiB pieces: the piece layer is the leaf layer (base layer 0). 550 pieces: libtorrent
    // asks 512 at a time, the rest as the next power of two (64) with a proof. A single-file
    // torrent: libtorrent names a directory of one file after the directory but loads it as
    // the file, so the file itself is what it is made from.
    let files = [("big.bin", 550 * 16384 - 1000)];
    let Some((torrent, written)) = libtorrent_v2_torrent(dir.path(), "big.bin", &files, 16384)
    else {
        return;
    };
    // One piece of each group of 512.
    let Some(exchange) = magnet_download_from_peerwire(dir.path(), &torrent, &written, &[3, 530])
    else {
        return;
    };
    all_served(&exchange, "16 KiB pieces, 550 of them");
    let asked: Vec<(u32, u32, u32, u32)> = exchange
        .answered
        .iter()
        .map(|(r, _)| (r.base_layer, r.index, r.length, r.uncle_count()))
        .collect();
    assert!(asked.contains(&(0, 0, 512, 1)), "{asked:?}");
    assert!(asked.contains(&(0, 512, 64, 4)), "{asked:?}");
}

#[test]
fn a_last_group_of_one_piece_is_asked_for_with_length_1() {
    let dir = tempfile::tempdir().unwrap();
    // 513 pieces: libtorrent asks for the 513th alone, `length: 1`, below BEP 52's minimum of
    // two; the answer is that one hash and ten uncles, the first its own sibling (padding).
    let files = [("f513.bin", 513 * 16384 - 100)];
    let Some((torrent, written)) = libtorrent_v2_torrent(dir.path(), "f513.bin", &files, 16384)
    else {
        return;
    };
    let Some(exchange) = magnet_download_from_peerwire(dir.path(), &torrent, &written, &[3, 512])
    else {
        return;
    };
    all_served(&exchange, "16 KiB pieces, 513 of them");
    let asked: Vec<(u32, u32, u32, usize)> = exchange
        .answered
        .iter()
        .map(|(r, _)| (r.index, r.length, r.proof_layers, r.hash_count()))
        .collect();
    assert!(asked.contains(&(0, 512, 9, 513)), "{asked:?}");
    assert!(asked.contains(&(512, 1, 9, 11)), "{asked:?}");
}

// ---------------------------------------------------------------------------------------------
// A peer that asks and never reads.

/// A v2-only single-file torrent of `data` in 16 KiB pieces, made here (no libtorrent): the
/// file tree with the file's root, and its piece layer (the leaves).
fn v2_torrent_of(name: &str, data: &[u8]) -> Vec<u8> {
    use peerwire::bencode::{self, Item, Value};
    let leaves = merkle::leaf_hashes(data);
    let root = merkle::root_of(&leaves);
    let leaf = Value::dict(vec![(
        "",
        Value::dict(vec![
            ("length", Value::integer(data.len() as i64)),
            ("pieces root", Value::bytes(root.0.to_vec())),
        ]),
    )]);
    let tree = Value::new(Item::Dict(vec![(name.as_bytes().to_vec(), leaf)]));
    let info = Value::dict(vec![
        ("file tree", tree),
        ("meta version", Value::integer(2)),
        ("name", Value::bytes(name.as_bytes().to_vec())),
        ("piece length", Value::integer(16384)),
    ]);
    let layer: Vec<u8> = leaves.iter().flat_map(|h| h.0).collect();
    let layers = Value::new(Item::Dict(vec![(root.0.to_vec(), Value::bytes(layer))]));
    bencode::encode(&Value::dict(vec![("info", info), ("piece layers", layers)]))
}

#[test]
fn a_peer_that_asks_for_hashes_and_reads_nothing_gets_rejects_past_1_mib() {
    use peerwire::metainfo::InfoHash;
    use peerwire::peer_id::PeerId;
    use peerwire::wire::Handshake;
    use std::io::Write;
    const REQUESTS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    // 513 pieces of 16 KiB: each request for 512 leaves is answered with 16,465 bytes.
    let data = common::pseudo_random(513 * 16384 - 100, 513);
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    std::fs::write(dir.path().join("content/f.bin"), &data).unwrap();
    let torrent = dir.path().join("f.torrent");
    std::fs::write(&torrent, v2_torrent_of("f.bin", &data)).unwrap();
    let metainfo = Metainfo::from_file(&torrent).unwrap();
    let root = metainfo.v2.as_ref().unwrap().files[0].pieces_root.unwrap();
    let port = common::free_port();
    let mut seed = common::traced_seeder(&torrent, &dir.path().join("content"), port);

    // A small receive buffer of our own (the kernel doubles it), so that what the sockets
    // hold is mostly peerwire's send buffer.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    socket.connect(&to.into()).unwrap();
    let mut peer = std::net::TcpStream::from(socket);
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    let ours = Handshake {
        reserved: [0; 8],
        info_hash: InfoHash(metainfo.info_hash.0),
        peer_id: PeerId(*b"-XX0001-hashflood000"),
    };
    ours.write_to(&mut peer).unwrap();
    Handshake::read_from(&mut peer).unwrap();
    // All the requests in one write (53 KB), then nothing read
    // until peerwire has answered the last, as its trace says.
    let request = HashRange {
        pieces_root: root,
        base_layer: 0,
        index: 0,
        length: 512,
        proof_layers: 9,
    }
    .request()
    .to_bytes();
    peer.write_all(&request.repeat(REQUESTS)).unwrap();
    let started = Instant::now();
    for _ in 0..REQUESTS {
        seed.wait_for("-> Hash", DEADLINE);
    }
    let answered_in = started.elapsed();
    let (mut hashes, mut rejects) = (0, 0);
    while hashes + rejects < REQUESTS {
        match Message::read_from(&mut peer).unwrap() {
            Message::Hashes { .. } => hashes += 1,
            Message::HashReject { .. } => rejects += 1,
            _ => {}
        }
    }
    drop(peer);
    seed.stop("-INT", DEADLINE);
    println!(
        "{REQUESTS} hash requests, nothing read: {hashes} answered with hashes \
         ({} KiB), {rejects} with a reject, all within {answered_in:.2?}",
        hashes * 16465 / 1024
    );
    // Every request had its one answer. peerwire queues at most 1 MiB and one answer; beyond
    // that, only what the kernel took into the two sockets' buffers (at most their largest
    // sizes: peerwire's send buffer, our small receive buffer) went out as hashes, not the
    // 16 MiB that answering all would have taken.
    let largest = |path: &str| -> usize {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or(8 << 20)
    };
    let kernel = largest("/proc/sys/net/ipv4/tcp_wmem") + 2 * 64 * 1024;
    assert!(rejects > 0, "{hashes} answers with hashes, no reject");
    assert!(
        hashes * 16465 <= (1 << 20) + 16465 + kernel,
        "{hashes} answers with hashes; the sockets hold at most {kernel} bytes"
    );
}

// ---------------------------------------------------------------------------------------------
// The answers, without a network.

const PIECE_LENGTH: u64 = 65536;

/// One file of `pieces` pieces of 64 KiB (four blocks each; the last piece one block short),
/// made of leaf hashes only: the tree is all that matters here.
fn file_of(pieces: usize, salt: u8) -> (V2File, Vec<Sha256Hash>) {
    let per_piece = BlocksPerPiece::for_piece_length(PIECE_LENGTH).unwrap();
    let blocks = pieces * 4 - 1;
    let leaves: Vec<Sha256Hash> = (0..blocks)
        .map(|i| Sha256Hash::of(&[salt, (i >> 8) as u8, i as u8]))
        .collect();
    let file = V2File {
        path: vec![format!("f{salt}")],
        length: blocks as u64 * 16384,
        pieces_root: Some(merkle::root_of(&leaves)),
        piece_layer: merkle::piece_layer(&leaves, per_piece),
        symlink: None,
        executable: false,
        hidden: false,
    };
    (file, leaves)
}

fn layers_of(files: Vec<V2File>) -> PieceLayers {
    let v2 = V2Info {
        info_hash: InfoHashV2([9; 32]),
        files,
        piece_layers_complete: true,
    };
    PieceLayers::from_v2(&v2, PIECE_LENGTH).expect("a file larger than a piece")
}

fn ask(file: &V2File, base_layer: u32, index: u32, length: u32, proof_layers: u32) -> HashRange {
    HashRange {
        pieces_root: file.pieces_root.unwrap(),
        base_layer,
        index,
        length,
        proof_layers,
    }
}

fn hashes_of(answer: Message) -> Vec<Sha256Hash> {
    match answer {
        Message::Hashes { hashes, .. } => hashes,
        other => panic!("not hashes: {other}"),
    }
}

#[test]
fn every_answer_proves_its_hashes_up_to_the_root() {
    // 11 pieces: the piece layer (layer 2) pads to 16, so the tree has 4 layers above it.
    let (file, _) = file_of(11, 1);
    let root = file.pieces_root.unwrap();
    let layer = file.piece_layer.clone();
    let layers = layers_of(vec![file.clone()]);
    let pad = merkle::pad_hash(2);
    for length in [1u32, 2, 4, 8, 16] {
        let span = length.trailing_zeros();
        for index in (0..16).step_by(length as usize) {
            // The most proof layers there are: up to just below the root.
            let range = ask(&file, 2, index, length, 3);
            let answer = layers.serve(&range).unwrap();
            // Through the wire and back.
            let bytes = answer.to_bytes();
            assert_eq!(Message::read_from(&mut &bytes[..]).unwrap(), answer);
            let hashes = hashes_of(answer);
            assert_eq!(hashes.len(), range.hash_count());
            let (asked, uncles) = hashes.split_at(length as usize);
            for (i, h) in asked.iter().enumerate() {
                let want = layer.get(index as usize + i).copied().unwrap_or(pad);
                assert_eq!(*h, want, "hash {i} of {range:?}");
            }
            // The hashes asked for meet in one node; the uncles take it to the root.
            let subtree = merkle::root_from_layer(asked, 2);
            let at = (index >> span) as usize;
            assert!(
                merkle::verify_proof(subtree, at, uncles, &root),
                "{range:?} does not prove"
            );
            // The uncles are the top of the proof `merkle::proof` makes for the first hash.
            if (index as usize) < layer.len() {
                let full = merkle::proof(&layer, 2, index as usize).unwrap();
                assert_eq!(uncles, &full[span as usize..], "{range:?}");
            }
        }
    }
}

#[test]
fn fewer_proof_layers_give_the_first_uncles_only() {
    let (file, _) = file_of(11, 2);
    let layers = layers_of(vec![file.clone()]);
    let full = hashes_of(layers.serve(&ask(&file, 2, 4, 2, 3)).unwrap());
    assert_eq!(full.len(), 2 + 3);
    for proof_layers in 0..3 {
        let part = hashes_of(layers.serve(&ask(&file, 2, 4, 2, proof_layers)).unwrap());
        // Two hashes span one layer: BEP 52 omits no proof layer for them.
        assert_eq!(part.len(), 2 + proof_layers as usize);
        assert_eq!(part, full[..part.len()]);
    }
}

#[test]
fn layers_above_the_piece_layer_are_served_too() {
    let (file, _) = file_of(11, 3);
    let root = file.pieces_root.unwrap();
    let layers = layers_of(vec![file.clone()]);
    let parents = merkle::parent_layer(&file.piece_layer, 2);
    let hashes = hashes_of(layers.serve(&ask(&file, 3, 0, 4, 2)).unwrap());
    assert_eq!(hashes[..4], parents[..4]);
    assert!(merkle::verify_proof(
        merkle::root_from_layer(&hashes[..4], 3),
        0,
        &hashes[4..],
        &root
    ));
}

#[test]
fn what_we_do_not_hold_or_the_bep_forbids_is_refused() {
    let (file, _) = file_of(11, 4);
    let (small, _) = file_of(1, 5); // one piece: no piece layer
    assert!(small.piece_layer.is_empty());
    let layers = layers_of(vec![file.clone(), small.clone()]);
    let refused = |range: HashRange| layers.serve(&range).unwrap_err();
    let stranger = HashRange {
        pieces_root: Sha256Hash([0x77; 32]),
        ..ask(&file, 2, 0, 16, 3)
    };
    assert_eq!(
        refused(stranger),
        HashRefusal::UnknownRoot(Sha256Hash([0x77; 32]))
    );
    assert!(matches!(
        refused(ask(&small, 2, 0, 1, 0)),
        HashRefusal::UnknownRoot(_)
    ));
    // The leaves (layer 0) of a file larger than a piece: we keep none.
    assert_eq!(
        refused(ask(&file, 0, 0, 2, 1)),
        HashRefusal::NoSuchLayer {
            base_layer: 0,
            lowest: 2,
            highest: 6
        }
    );
    assert!(matches!(
        refused(ask(&file, 7, 0, 1, 0)),
        HashRefusal::NoSuchLayer { .. }
    ));
    // Past the padded layer of 16, or reaching past the root.
    assert!(matches!(
        refused(ask(&file, 2, 16, 2, 1)),
        HashRefusal::OutOfRange {
            end: 18,
            width: 16,
            ..
        }
    ));
    assert!(matches!(
        refused(ask(&file, 2, 0, 32, 4)),
        HashRefusal::OutOfRange { .. }
    ));
    assert!(matches!(
        refused(ask(&file, 2, 0, 2, 4)),
        HashRefusal::TooManyProofLayers { above: 4, .. }
    ));
    // The bounds of the BEP itself.
    for (range, field) in [
        (ask(&file, 2, 0, 3, 1), "length"),
        (ask(&file, 2, 0, 1024, 1), "length"),
        (ask(&file, 2, 2, 4, 1), "index"),
    ] {
        match refused(range) {
            HashRefusal::Malformed(HashesError::Bound { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{range:?}: {other:?}"),
        }
    }
    // Every refusal is a reject with the request's own header.
    let (answer, why) = layers.answer(&stranger);
    assert_eq!(answer, stranger.reject());
    assert!(why.is_some());
}

#[test]
fn identical_files_share_one_tree_and_small_torrents_have_none() {
    let (file, _) = file_of(3, 6);
    let layers = layers_of(vec![file.clone(), file.clone()]);
    assert!(layers.serve(&ask(&file, 2, 0, 4, 1)).is_ok());
    let (small, _) = file_of(1, 7);
    let v2 = V2Info {
        info_hash: InfoHashV2([9; 32]),
        files: vec![small],
        piece_layers_complete: true,
    };
    assert!(PieceLayers::from_v2(&v2, PIECE_LENGTH).is_none());
}

#[test]
fn libtorrents_two_requests_for_550_pieces_are_proved_by_their_uncles() {
    // 16 KiB pieces (the piece layer is the leaf layer) and 550 of them, as libtorrent asks
    // for them: 512 from 0, then 64 (550 - 512 = 38, to the next power of two) from 512,
    // each with 9 proof layers.
    let leaves: Vec<Sha256Hash> = (0..550u32)
        .map(|i| Sha256Hash::of(&i.to_be_bytes()))
        .collect();
    let root = merkle::root_of(&leaves);
    let file = V2File {
        path: vec!["big".into()],
        length: 550 * 16384,
        pieces_root: Some(root),
        piece_layer: leaves.clone(),
        symlink: None,
        executable: false,
        hidden: false,
    };
    let v2 = V2Info {
        info_hash: InfoHashV2([9; 32]),
        files: vec![file.clone()],
        piece_layers_complete: true,
    };
    let layers = PieceLayers::from_v2(&v2, 16384).unwrap();
    for (index, length) in [(0u32, 512u32), (512, 64)] {
        let range = ask(&file, 0, index, length, 9);
        let hashes = hashes_of(layers.serve(&range).unwrap());
        let uncles = &hashes[length as usize..];
        assert_eq!(uncles.len(), 10 - length.trailing_zeros() as usize);
        // The second group's hashes are 38 leaves and 26 zero hashes of padding.
        let subtree = merkle::root_from_layer(&hashes[..length as usize], 0);
        let above = merkle::proof(&leaves, 0, index as usize).unwrap();
        assert_eq!(uncles, &above[length.trailing_zeros() as usize..]);
        assert!(merkle::verify_proof(
            subtree,
            (index / length) as usize,
            uncles,
            &root
        ));
    }
}

#[test]
fn a_hashes_frame_longer_than_its_header_allows_is_a_wire_error() {
    let range = HashRange {
        pieces_root: Sha256Hash([1; 32]),
        base_layer: 0,
        index: 0,
        length: 2,
        proof_layers: 2,
    };
    let mut frame = range.answer(vec![Sha256Hash::ZERO; 4]).unwrap().to_bytes();
    frame.extend_from_slice(&[0; 32]);
    let total = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&total.to_be_bytes());
    match Message::read_from(&mut &frame[..]) {
        Err(WireError::Hashes(HashesError::Count {
            expected: 4,
            found: 160,
            offset: 176,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
}
