//! Wireshark's BitTorrent dissector reads peerwire's bytes as peerwire says it wrote them: a
//! second, independent disassembler for the BEP 3 handshake and messages and the BEP 10
//! extended messages (`docs/wire-format.md` names its fields).
//!
//! A peerwire seeder and a peerwire leecher, both with `--trace`, exchange a small torrent on
//! 127.0.0.1 while `tshark -i lo` captures the seeder's port and decodes it as BitTorrent.
//! For each direction and each kind of message (handshakes by info hash and peer id, extended
//! messages by extended id), the number Wireshark decoded must lie between what the receiver
//! traced (`<-`: it surely crossed the wire) and what the sender traced (`->`: queued; the
//! last few as a connection closes may never be written). No frame may be malformed, carry an
//! error, or hold bytes the dissector could not place in a message.
//!
//! Skips loudly without tshark or without permission to capture on `lo`
//! (`PEERWIRE_INTEROP=require` makes that a failure).

pub mod common;

use common::{free_port, lines_of, small_torrent, trace_lines, traced_download, traced_seeder};
use peerwire::trace::{Direction, TraceLine, Traced};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// 9 full pieces of 32 KiB and a short one: 19 blocks.
const SIZE: usize = 300_000;
const PIECE_LENGTH: u32 = 32_768;
const DEADLINE: Duration = Duration::from_secs(60);

/// What tshark prints for each packet, tab-separated, in this order.
const FIELDS: [&str; 10] = [
    "tcp.srcport",
    "udp.dstport",
    "bittorrent", // one per handshake or message
    "bittorrent.info_hash",
    "bittorrent.peer_id",
    "bittorrent.msg.type",
    "bittorrent.extended.id",
    "bittorrent.continuous_data", // bytes it could not place in a message
    "_ws.expert.severity",
    "_ws.malformed", // "[Malformed Packet]": the dissector ran out of bytes
];
/// The expert system's "Error" severity (its "Warning"s are TCP flow control, and fine).
const SEVERITY_ERROR: &str = "8388608";

/// Kinds of messages counted: how many of each went one way.
type Tally = BTreeMap<String, usize>;

#[test]
fn wireshark_decodes_every_handshake_and_message_peerwire_sent() {
    let Some(tshark) = common::need_program("tshark") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), SIZE, PIECE_LENGTH);
    let port = free_port();
    let mut seeder = traced_seeder(&torrent, &content, port);
    let Some(capture) = Capture::start(&tshark, port) else {
        return;
    };
    let leecher = trace_lines(&traced_download(&torrent, &dir.path().join("out"), port));
    seeder.wait_for(": disconnected", DEADLINE); // everything it will read has been read
    let seeder = trace_lines(&seeder.stop("-INT", DEADLINE));
    let packets = capture.finish();

    let (from_leecher, from_seeder) = decoded(&packets, port);
    within(&from_leecher, &leecher, &seeder, "leecher → seeder");
    within(&from_seeder, &seeder, &leecher, "seeder → leecher");
    assert_eq!(from_seeder.get("Piece"), Some(&19), "{from_seeder:?}");
    // Both speak the fast extension (BEP 6): a seed's `have all`, and its allowed fast set
    // (all 10 pieces of this small torrent).
    assert_eq!(from_seeder.get("Have All"), Some(&1), "{from_seeder:?}");
    assert_eq!(
        from_seeder.get("Allowed Fast"),
        Some(&10),
        "{from_seeder:?}"
    );
    println!("Wireshark decoded, leecher → seeder: {from_leecher:#?}");
    println!("Wireshark decoded, seeder → leecher: {from_seeder:#?}");
}

/// A peer that chokes in the middle and rejects what is in flight (BEP 6): Wireshark decodes
/// its `have all` and every `reject request` the leecher traced as received, and the
/// leecher's requests as no more than it traced as sent.
#[test]
fn wireshark_decodes_rejects_of_the_fast_extension() {
    let Some(tshark) = common::need_program("tshark") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = small_torrent(dir.path(), SIZE, PIECE_LENGTH);
    let info_hash = peerwire::metainfo::Metainfo::from_file(&torrent)
        .unwrap()
        .info_hash;
    let bytes = std::sync::Arc::new(std::fs::read(&content).unwrap());
    // After 4 requests: a new connection sends 8 at once, so 4 are surely still in flight
    // to be rejected (after 8 there may be none, and nothing to decode).
    let script = common::Script::FastChokeAndReject(4);
    let peer = common::ScriptedPeer::start(info_hash, bytes, PIECE_LENGTH.into(), script);
    let port = peer.addr.port();
    let Some(capture) = Capture::start(&tshark, port) else {
        return;
    };
    let leecher = trace_lines(&traced_download(&torrent, &dir.path().join("out"), port));
    let packets = capture.finish();

    let (from_leecher, from_peer) = decoded(&packets, port);
    let received = tally(&leecher, Direction::Received);
    for (kind, count) in &received {
        let seen = from_peer.get(kind).copied().unwrap_or(0);
        assert!(
            seen >= *count,
            "{kind}: Wireshark decoded {seen}, peerwire received {count}"
        );
    }
    let sent = tally(&leecher, Direction::Sent);
    for (kind, seen) in &from_leecher {
        let count = sent.get(kind).copied().unwrap_or(0);
        assert!(
            *seen <= count,
            "{kind}: Wireshark decoded {seen}, peerwire sent {count}"
        );
    }
    assert_eq!(from_peer.get("Have All"), Some(&1), "{from_peer:?}");
    let rejects = received.get("Reject Request").copied().unwrap_or(0);
    assert!(rejects > 0, "the peer rejected nothing: {received:?}");
    println!("Wireshark decoded, peer → leecher: {from_peer:#?}");
}

/// For every kind: received (`<-` of `to`) ≤ decoded by Wireshark ≤ sent (`->` of `from`).
fn within(wireshark: &Tally, from: &[TraceLine], to: &[TraceLine], what: &str) {
    let sent = tally(from, Direction::Sent);
    let received = tally(to, Direction::Received);
    let kinds = sent.keys().chain(received.keys()).chain(wireshark.keys());
    for kind in kinds.collect::<std::collections::BTreeSet<_>>() {
        let count = |t: &Tally| t.get(kind).copied().unwrap_or(0);
        let (low, seen, high) = (count(&received), count(wireshark), count(&sent));
        assert!(
            low <= seen && seen <= high,
            "{what}: {kind}: Wireshark decoded {seen}, peerwire received {low} and sent {high}"
        );
    }
}

/// The trace lines going `direction`, counted by kind.
fn tally(lines: &[TraceLine], direction: Direction) -> Tally {
    let mut counts = Tally::new();
    for line in lines.iter().filter(|l| l.direction == direction) {
        let kind = match &line.traced {
            Traced::Handshake(h) => handshake_kind(&h.info_hash.to_hex(), &h.peer_id.to_hex()),
            Traced::Message(m) => match m {
                peerwire::wire::Message::Extended { id, .. } => extended_kind(&id.to_string()),
                _ => message_kind(m.id()),
            },
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

fn handshake_kind(info_hash: &str, peer_id: &str) -> String {
    format!("Handshake {info_hash} {peer_id}")
}

fn extended_kind(extended_id: &str) -> String {
    format!("Extended id {extended_id}")
}

/// Wireshark's name for a message id (`bittorrent.msg.type`); `None` is a keep-alive, which
/// Wireshark 4.0 shows as a BitTorrent PDU with no fields at all.
fn message_kind(id: Option<u8>) -> String {
    let name = match id {
        None => "Keep-alive",
        Some(0) => "Choke",
        Some(1) => "Unchoke",
        Some(2) => "Interested",
        Some(3) => "Not Interested",
        Some(4) => "Have",
        Some(5) => "Bitfield",
        Some(6) => "Request",
        Some(7) => "Piece",
        Some(8) => "Cancel",
        Some(9) => "Port",
        Some(13) => "Suggest Piece",
        Some(14) => "Have All",
        Some(15) => "Have None",
        Some(16) => "Reject Request",
        Some(17) => "Allowed Fast",
        Some(other) => return format!("Message type {other}"),
    };
    name.to_string()
}

/// Wireshark's counts for the two directions (from the leecher, from the seeder on `port`).
fn decoded(packets: &[Vec<String>], port: u16) -> (Tally, Tally) {
    let (mut from_leecher, mut from_seeder) = (Tally::new(), Tally::new());
    for packet in packets.iter().filter(|p| !p[0].is_empty()) {
        let counts = match packet[0] == port.to_string() {
            true => &mut from_seeder,
            false => &mut from_leecher,
        };
        for kind in packet_kinds(packet) {
            *counts.entry(kind).or_default() += 1;
        }
    }
    (from_leecher, from_seeder)
}

/// The kind of every handshake and message Wireshark decoded in one packet (a row of
/// `FIELDS`), failing on a malformed packet, an error, or bytes outside any message.
fn packet_kinds(packet: &[String]) -> Vec<String> {
    let list = |n: usize| -> Vec<&str> { packet[n].split(',').filter(|s| !s.is_empty()).collect() };
    assert!(list(7).is_empty(), "bytes outside any message: {packet:?}");
    assert!(!list(8).contains(&SEVERITY_ERROR), "an error: {packet:?}");
    assert!(list(9).is_empty(), "a malformed packet: {packet:?}");
    let (hashes, peer_ids) = (list(3), list(4));
    let handshakes = hashes.iter().zip(&peer_ids);
    let mut kinds: Vec<String> = handshakes.map(|(h, p)| handshake_kind(h, p)).collect();
    let mut extended_ids = list(6).into_iter();
    for id in list(5) {
        kinds.push(match id.parse::<u8>() {
            Ok(20) => extended_kind(extended_ids.next().unwrap_or("?")),
            Ok(id) => message_kind(Some(id)),
            Err(_) => format!("Message type {id}"),
        });
    }
    // A PDU with neither a handshake nor a type is a keep-alive.
    let bare = list(2).len().checked_sub(kinds.len());
    let bare = bare.unwrap_or_else(|| panic!("more messages than PDUs: {packet:?}"));
    kinds.extend(std::iter::repeat_n(message_kind(None), bare));
    kinds
}

/// `tshark -i lo` decoding the seeder's port as BitTorrent, one line of `FIELDS` per packet.
struct Capture {
    tshark: Child,
    rows: Receiver<String>,
    /// Its stderr, kept open so that tshark never writes to a closed pipe.
    errors: Receiver<String>,
    /// Two UDP ports that tshark also captures: a datagram sent to one marks a moment (the
    /// capture has begun; the transfer is over). Two, so that a late copy of the first
    /// cannot pass for the second.
    markers: [u16; 2],
}

impl Capture {
    /// Starts tshark and waits until it captures; `None` (skipped) if it cannot.
    fn start(tshark: &Path, port: u16) -> Option<Capture> {
        let markers = [free_port(), free_port()];
        let [start, end] = markers;
        let filter = format!("tcp port {port} or udp port {start} or udp port {end}");
        let mut command = Command::new(tshark);
        command.args(["-i", "lo", "-n", "-l", "-T", "fields", "-f", &filter]);
        command.args(["-d", &format!("tcp.port=={port},bittorrent")]);
        command.args(["-E", "occurrence=a", "-E", "aggregator=,"]);
        for field in FIELDS {
            command.args(["-e", field]);
        }
        let mut tshark = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tshark");
        let rows = lines_of(tshark.stdout.take().expect("piped stdout"));
        let errors = lines_of(tshark.stderr.take().expect("piped stderr"));
        // tshark says "Capturing on 'Loopback: lo'" even when it then finds it may not
        // (no permission), and before the first packets are really seen: only a packet seen
        // shows that it captures.
        let mut said = wait_for_line(&errors, "Capturing on", Duration::from_secs(30));
        let capture = Capture {
            tshark,
            rows,
            errors,
            markers,
        };
        if said.is_ok() && capture.until_marker(start).is_none() {
            said = Err(capture.stderr());
        }
        match said {
            Ok(()) => Some(capture),
            Err(said) => common::skip(&format!("tshark cannot capture on lo: {said}")),
        }
    }

    /// The first lines tshark said on stderr since "Capturing on", once it has ended.
    fn stderr(&self) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        let mut said = Vec::new();
        while let Ok(line) = self
            .errors
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            said.push(line);
        }
        let first = said.iter().filter(|l| !l.trim().is_empty()).take(2);
        first.cloned().collect::<Vec<_>>().join(" ")
    }

    /// Every packet up to the end of the transfer; stops tshark (by PID).
    fn finish(self) -> Vec<Vec<String>> {
        let packets = self.until_marker(self.markers[1]);
        packets.unwrap_or_else(|| panic!("tshark ended early: {}", self.stderr()))
    }

    /// Sends a UDP datagram to `marker` and returns every packet before it: all that was on
    /// the wire before has then been decoded. `None` if tshark ended.
    fn until_marker(&self, marker: u16) -> Option<Vec<Vec<String>>> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let until = Instant::now() + DEADLINE;
        let mut packets = Vec::new();
        while Instant::now() < until {
            socket.send_to(b"marker", ("127.0.0.1", marker)).unwrap();
            // Sent again after a quiet half second: it may have gone before the capture began.
            loop {
                let row = match self.rows.recv_timeout(Duration::from_millis(500)) {
                    Ok(row) => row,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return None,
                };
                let fields: Vec<String> = row.split('\t').map(str::to_string).collect();
                assert_eq!(fields.len(), FIELDS.len(), "tshark printed {row:?}");
                if fields[1] == marker.to_string() {
                    return Some(packets);
                }
                packets.push(fields);
            }
        }
        panic!(
            "tshark did not show a datagram to port {} within {DEADLINE:?}",
            marker
        );
    }
}

/// Stops tshark with SIGTERM, by PID: it then stops the `dumpcap` it started. (SIGKILL would
/// leave that `dumpcap` capturing for ever; it is killed by PID only if tshark does not end.)
impl Drop for Capture {
    fn drop(&mut self) {
        let pid = self.tshark.id();
        let children = format!("/proc/{pid}/task/{pid}/children");
        let dumpcap = std::fs::read_to_string(children).unwrap_or_default();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(10);
        let left = || until.saturating_duration_since(Instant::now());
        let ended = loop {
            match self.rows.recv_timeout(left()) {
                Ok(_) => continue,                                 // packets after the end
                Err(RecvTimeoutError::Disconnected) => break true, // stdout closed: it ended
                Err(RecvTimeoutError::Timeout) => break false,
            }
        };
        if !ended {
            let _ = Command::new("kill")
                .args(dumpcap.split_whitespace())
                .status();
        }
        let _ = self.tshark.kill();
        let _ = self.tshark.wait();
    }
}

/// Waits for a line starting with `prefix`; on failure, what was said instead.
fn wait_for_line(lines: &Receiver<String>, prefix: &str, deadline: Duration) -> Result<(), String> {
    let until = Instant::now() + deadline;
    let mut said = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return Ok(()),
            Ok(line) => said.push(line),
            Err(RecvTimeoutError::Disconnected) => return Err(said.join(" / ")),
            Err(RecvTimeoutError::Timeout) => {
                panic!("tshark printed no {prefix:?} within {deadline:?}: {said:?}")
            }
        }
    }
}
