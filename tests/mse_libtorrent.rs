//! Message Stream Encryption against real libtorrent (python3-libtorrent 2.0), set to refuse
//! anything but RC4-encrypted connections (`--encryption forced`): peerwire's `mse::initiate`
//! dials it, the BitTorrent handshake (BEP 3) goes as the initial payload, and libtorrent's
//! handshake, extension handshake (BEP 10), bitfield and a 16 KiB block come back through the
//! RC4 stream byte for byte. Also the other way: libtorrent dials peerwire's `mse::accept`.

pub mod common;

use common::LibtorrentPeer;
use peerwire::metainfo::{InfoHash, Metainfo};
use peerwire::mse::{self, CryptoLevel, EncryptedStream, Policy};
use peerwire::peer_id::PeerId;
use peerwire::wire::handshake::RESERVED_EXTENSIONS;
use peerwire::wire::{Handshake, Message};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PIECE_LENGTH: u32 = 32_768;
const OUR_ID: PeerId = PeerId(*b"-PW0001-mse-interop!");

/// A libtorrent seeder that takes only encrypted connections, with the data it seeds.
fn forced_seeder(dir: &Path) -> Option<(LibtorrentPeer, InfoHash, PathBuf)> {
    let (content, torrent) = common::small_torrent(dir, 400_000, PIECE_LENGTH);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let seeder = LibtorrentPeer::start_with(
        &torrent,
        &dir.join("seed"),
        true,
        &["--encryption", "forced"],
    )?;
    Some((seeder, info_hash, content))
}

fn our_handshake(info_hash: InfoHash) -> Handshake {
    Handshake {
        // The extension protocol only: without the fast extension libtorrent sends a bitfield
        // (not `have all`), one more message whose length we can check.
        reserved: RESERVED_EXTENSIONS,
        info_hash,
        peer_id: OUR_ID,
    }
}

/// After the handshakes: libtorrent's first messages must include its extension handshake and
/// a full bitfield (400,000 bytes in 32 KiB pieces: 13 pieces, 2 bytes); then one block asked
/// for must come back equal to the file's bytes.
fn trade(stream: &mut EncryptedStream<TcpStream>, content: &Path) {
    use std::io::Write;
    let mut extended = false;
    let mut bitfield = false;
    for _ in 0..10 {
        match Message::read_from(stream).expect("a message through RC4") {
            Message::Extended { .. } => extended = true,
            Message::Bitfield(bits) => {
                assert_eq!(
                    bits,
                    [0xff, 0xf8],
                    "13 pieces, all present, spare bits zero"
                );
                bitfield = true;
            }
            _ => {}
        }
        if extended && bitfield {
            break;
        }
    }
    assert!(
        extended && bitfield,
        "extended handshake {extended}, bitfield {bitfield}"
    );
    Message::Interested.write_to(stream).unwrap();
    let block_at = PIECE_LENGTH; // piece 1, its first block
    Message::Request {
        index: 1,
        begin: 0,
        length: 16_384,
    }
    .write_to(stream)
    .unwrap();
    stream.flush().unwrap();
    let expected = std::fs::read(content).unwrap();
    for _ in 0..20 {
        if let Message::Piece {
            index,
            begin,
            block,
        } = Message::read_from(stream).expect("a message through RC4")
        {
            assert_eq!((index, begin), (1, 0));
            assert!(
                block == expected[block_at as usize..block_at as usize + 16_384],
                "the block arrived changed"
            );
            return;
        }
    }
    panic!("no block among libtorrent's next 20 messages");
}

fn socket_timeouts(stream: &TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
}

#[test]
fn peerwire_dials_libtorrent_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let Some((seeder, info_hash, content)) = forced_seeder(dir.path()) else {
        return;
    };
    let addr = format!("127.0.0.1:{}", seeder.port);

    let mut stream = dial_encrypted(&addr, info_hash, &seeder);
    assert_eq!(stream.level(), CryptoLevel::Rc4);
    let theirs = Handshake::read_from(&mut stream).expect("libtorrent's handshake through RC4");
    assert_eq!(theirs.info_hash, info_hash);
    assert!(theirs.supports_extensions());
    trade(&mut stream, &content);

    // Now that the torrent takes connections: a plain one must be refused (or the test
    // above proved little).
    let mut plain = TcpStream::connect(&addr).unwrap();
    if std::env::var("NOPLAIN").is_ok() {
        drop(plain);
        plain = TcpStream::connect("127.0.0.1:1")
            .unwrap_or_else(|_| TcpStream::connect(&addr).unwrap());
    }
    socket_timeouts(&plain);
    let probe = Handshake {
        peer_id: PeerId(*b"-PW0001-plain-probe!"),
        ..our_handshake(info_hash)
    };
    probe.write_to(&mut plain).unwrap();
    let mut reply = [0u8; 68];
    assert!(
        plain.read_exact(&mut reply).is_err(),
        "libtorrent answered a plain handshake: the encryption setting did not take"
    );
}

/// `initiate` to libtorrent, offering both levels: libtorrent, allowed RC4 only, must pick
/// RC4. The seeder says `state seeding` while its torrent may still be paused for a moment
/// (libtorrent's queue starts it just after), and libtorrent hangs up on connections for a
/// paused torrent: at once when no torrent of the session runs, or after its public key when
/// the req2 hash names no running torrent. The driver prints nothing when the torrent
/// resumes, so a connection that libtorrent closes is tried again until the deadline; any
/// other error, or the last one at the deadline, fails the test.
fn dial_encrypted(
    addr: &str,
    info_hash: InfoHash,
    seeder: &LibtorrentPeer,
) -> EncryptedStream<TcpStream> {
    let until = Instant::now() + Duration::from_secs(20);
    let ours = our_handshake(info_hash).to_bytes();
    loop {
        let stream = TcpStream::connect(addr).unwrap();
        socket_timeouts(&stream);
        let deadline = Instant::now() + Duration::from_secs(10);
        let error =
            match mse::initiate(stream, &info_hash, Policy::PreferPlaintext, &ours, deadline) {
                Ok(stream) => return stream,
                Err(error) => error,
            };
        let closed = match &error {
            mse::MseError::Closed { .. } => true,
            // Closed while our PadA was still unread.
            mse::MseError::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::ConnectionReset
            }
            _ => false,
        };
        if !closed || Instant::now() >= until {
            panic!(
                "MSE handshake with libtorrent (port {}): {error}",
                seeder.port
            );
        }
        std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the torrent to start
    }
}

#[test]
fn libtorrent_dials_peerwire_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let Some((mut seeder, info_hash, content)) = forced_seeder(dir.path()) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    seeder.send(&format!("connect 127.0.0.1:{port}"));
    // The accept runs on a thread and the test waits for it with a deadline; a thread still
    // blocked in `accept` after a failure ends with the test process.
    let (accepted, incoming) = std::sync::mpsc::channel();
    std::thread::spawn(move || accepted.send(listener.accept().map(|(socket, _)| socket)));
    let socket = incoming
        .recv_timeout(Duration::from_secs(20))
        .expect("libtorrent did not dial us within 20 s")
        .unwrap();
    socket_timeouts(&socket);
    let mut socket = socket;
    let mut first = [0u8; 1];
    socket.read_exact(&mut first).unwrap();
    assert_ne!(first[0], 19, "libtorrent dialled in plain text");
    let deadline = Instant::now() + Duration::from_secs(10);
    let other = InfoHash([0x99; 20]);
    let (mut stream, found, initial) = mse::accept(
        socket,
        &first,
        &[other, info_hash],
        Policy::PreferPlaintext,
        deadline,
    )
    .expect("MSE handshake from libtorrent");
    assert_eq!(found, info_hash);
    assert_eq!(
        stream.level(),
        CryptoLevel::Rc4,
        "libtorrent offers RC4 only"
    );
    // Its BitTorrent handshake: in the initial payload, or first thing in the stream.
    let theirs = if initial.is_empty() {
        Handshake::read_from(&mut stream)
    } else {
        Handshake::read_from(&mut (&initial[..]).chain(&mut stream))
    }
    .expect("libtorrent's handshake");
    assert_eq!(theirs.info_hash, info_hash);
    our_handshake(info_hash).write_to(&mut stream).unwrap();
    trade(&mut stream, &content);
}
