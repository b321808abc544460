//! Both sides of the MSE handshake in one process, over TCP on 127.0.0.1: what they agree on,
//! and that the payload arrives byte for byte. `hostile_tests.rs` has the broken and hostile
//! handshakes, and uses the helpers here.

use super::*;
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::wire::Handshake;
use crate::wire::handshake::RESERVED_PEER;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

pub(super) const TORRENT: InfoHash = InfoHash([0x42; 20]);
pub(super) const OTHER: InfoHash = InfoHash([0x17; 20]);

/// A connected pair on 127.0.0.1 (dialled, accepted), each read bounded by 5 s.
pub(super) fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    (a, b)
}

pub(super) fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

pub(super) fn bt_handshake(id: &[u8; 20]) -> Vec<u8> {
    Handshake {
        reserved: RESERVED_PEER,
        info_hash: TORRENT,
        peer_id: PeerId(*id),
    }
    .to_bytes()
    .to_vec()
}

/// What the accepting side of a listener does: read the first byte (not 19), then `accept`.
pub(super) fn accept_on(
    mut b: TcpStream,
    known: &[InfoHash],
    policy: Policy,
) -> Result<(EncryptedStream<TcpStream>, InfoHash, Vec<u8>), MseError> {
    let mut first = [0u8; 1];
    b.read_exact(&mut first).map_err(|source| MseError::Io {
        stage: Stage::PublicKey,
        source,
    })?;
    accept(b, &first, known, policy, soon())
}

pub(super) type Accepted = Result<(EncryptedStream<TcpStream>, InfoHash, Vec<u8>), MseError>;

/// Runs `initiate` here and `accept` on a thread.
pub(super) fn handshake(
    dial: Policy,
    answer: Policy,
    known: Vec<InfoHash>,
) -> (Result<EncryptedStream<TcpStream>, MseError>, Accepted) {
    let (a, b) = pair();
    let acceptor = thread::spawn(move || accept_on(b, &known, answer));
    let dialled = initiate(
        a,
        &TORRENT,
        dial,
        &bt_handshake(b"-PW0001-aaaaaaaaaaaa"),
        soon(),
    );
    (dialled, acceptor.join().unwrap())
}

#[test]
fn policies_settle_on_the_expected_level() {
    use CryptoLevel::{Plaintext, Rc4};
    let cases = [
        (Policy::PreferRc4, Policy::PreferRc4, Rc4),
        (Policy::PreferRc4, Policy::PreferPlaintext, Plaintext),
        (Policy::PreferPlaintext, Policy::PreferRc4, Rc4),
        (Policy::PreferPlaintext, Policy::PreferPlaintext, Plaintext),
        (Policy::Rc4Only, Policy::PreferPlaintext, Rc4),
        (Policy::PlaintextOnly, Policy::PreferRc4, Plaintext),
    ];
    for (dial, answer, level) in cases {
        let (dialled, accepted) = handshake(dial, answer, vec![OTHER, TORRENT]);
        let dialled = dialled.unwrap();
        let (accepted, info_hash, initial) = accepted.unwrap();
        assert_eq!(dialled.level(), level, "{dial:?} dials {answer:?}");
        assert_eq!(accepted.level(), level, "{dial:?} dials {answer:?}");
        assert_eq!(dialled.is_encrypted(), level == Rc4);
        assert_eq!(info_hash, TORRENT, "found among several torrents");
        assert_eq!(
            initial,
            bt_handshake(b"-PW0001-aaaaaaaaaaaa"),
            "IA delivered"
        );
    }
}

#[test]
fn nothing_in_common_is_refused_by_the_accepting_side() {
    let (dialled, accepted) = handshake(Policy::PlaintextOnly, Policy::Rc4Only, vec![TORRENT]);
    assert!(
        matches!(
            accepted,
            Err(MseError::NothingAcceptable {
                provided: CRYPTO_PLAINTEXT,
                policy: Policy::Rc4Only
            })
        ),
        "{accepted:?}"
    );
    // B hangs up without answering: A sees the end of the stream while waiting for the VC.
    assert!(
        matches!(
            dialled,
            Err(MseError::Closed {
                stage: Stage::SyncVc,
                ..
            })
        ),
        "{:?}",
        dialled.err()
    );
}

#[test]
fn an_unknown_torrent_is_refused() {
    let started = Instant::now();
    let (dialled, accepted) = handshake(Policy::PreferRc4, Policy::PreferRc4, vec![OTHER]);
    assert!(
        matches!(accepted, Err(MseError::UnknownInfoHash(_))),
        "{accepted:?}"
    );
    assert!(dialled.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// 1 MiB each way at the same time, each side reading on one handle while a thread writes on
/// the other, as the peer connection does: every byte arrives, in order.
fn megabyte_both_ways(dial: Policy, answer: Policy) {
    let (dialled, accepted) = handshake(dial, answer, vec![TORRENT]);
    let a = dialled.unwrap();
    let (b, _, _) = accepted.unwrap();
    let data = |seed: u8| -> Vec<u8> {
        (0..1 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
            .collect()
    };
    let run = |mut side: EncryptedStream<TcpStream>, send: Vec<u8>, expect: Vec<u8>| {
        thread::spawn(move || {
            let mut writer = side.try_clone_with(TcpStream::try_clone).unwrap();
            // Odd-sized writes, so keystream is left over between them.
            let sender = thread::spawn(move || {
                for chunk in send.chunks(7919) {
                    writer.write_all(chunk).unwrap();
                }
                writer.flush().unwrap();
            });
            let mut got = vec![0u8; expect.len()];
            side.read_exact(&mut got).unwrap();
            sender.join().unwrap();
            assert!(got == expect, "the payload arrived changed");
        })
    };
    let one = run(a, data(1), data(2));
    let two = run(b, data(2), data(1));
    one.join().unwrap();
    two.join().unwrap();
}

#[test]
fn a_megabyte_each_way_through_rc4() {
    megabyte_both_ways(Policy::Rc4Only, Policy::PreferRc4);
}

#[test]
fn a_megabyte_each_way_in_plain_text() {
    megabyte_both_ways(Policy::PlaintextOnly, Policy::PreferPlaintext);
}

#[test]
fn plain_text_is_plain_on_the_wire_and_rc4_is_not() {
    for (policy, plain) in [(Policy::PlaintextOnly, true), (Policy::Rc4Only, false)] {
        let (dialled, accepted) = handshake(policy, policy, vec![TORRENT]);
        let mut a = dialled.unwrap();
        let (mut b, _, _) = accepted.unwrap();
        a.write_all(b"interested").unwrap();
        // Straight from the socket, under the stream.
        let mut raw = [0u8; 10];
        b.get_mut().read_exact(&mut raw).unwrap();
        assert_eq!(&raw == b"interested", plain, "{policy:?}");
    }
}

#[test]
fn policies_offer_and_pick() {
    assert_eq!(Policy::Rc4Only.provide(), CRYPTO_RC4);
    assert_eq!(Policy::PreferPlaintext.provide(), 0x03);
    assert_eq!(Policy::PreferRc4.select(0x03), Some(CryptoLevel::Rc4));
    assert_eq!(
        Policy::PreferPlaintext.select(0x03),
        Some(CryptoLevel::Plaintext)
    );
    assert_eq!(Policy::Rc4Only.select(0x01), None);
    assert_eq!(Policy::PreferRc4.select(0xfffc), None, "unknown bits only");
}
