//! Both sides of the MSE handshake in one process, over TCP on 127.0.0.1: what they agree on,
//! that the payload arrives byte for byte, and that every broken or hostile handshake ends
//! promptly with the error that names it.

use super::dh::KeyPair;
use super::keys::{self, Ciphers, Side};
use super::*;
use crate::metainfo::InfoHash;
use crate::peer_id::PeerId;
use crate::wire::Handshake;
use crate::wire::handshake::RESERVED_PEER;
use rc4::StreamCipher;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const TORRENT: InfoHash = InfoHash([0x42; 20]);
const OTHER: InfoHash = InfoHash([0x17; 20]);

/// A connected pair on 127.0.0.1 (dialled, accepted), each read bounded by 5 s.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    (a, b)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn bt_handshake(id: &[u8; 20]) -> Vec<u8> {
    Handshake {
        reserved: RESERVED_PEER,
        info_hash: TORRENT,
        peer_id: PeerId(*id),
    }
    .to_bytes()
    .to_vec()
}

/// What the accepting side of a listener does: read the first byte (not 19), then `accept`.
fn accept_on(
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

type Accepted = Result<(EncryptedStream<TcpStream>, InfoHash, Vec<u8>), MseError>;

/// Runs `initiate` here and `accept` on a thread.
fn handshake(
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

/// A's steps 1 and 3 written by hand, to send what `initiate` never would. Returns A's
/// ciphers, in step after what was sent.
struct Script {
    pad_a: usize,
    vc: [u8; 8],
    provide: u32,
    pad_c: u16,
    initial: Vec<u8>,
    /// Payload sent (through RC4) in the same write as step 3.
    then: Vec<u8>,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            pad_a: 100,
            vc: [0; 8],
            provide: CRYPTO_RC4,
            pad_c: 0,
            initial: Vec::new(),
            then: Vec::new(),
        }
    }
}

fn scripted_initiator(a: &mut TcpStream, script: &Script) -> Ciphers {
    let ours = KeyPair::generate();
    a.write_all(ours.public()).unwrap();
    a.write_all(&vec![0xab; script.pad_a]).unwrap();
    let mut theirs = [0u8; 96];
    a.read_exact(&mut theirs).unwrap();
    let secret = ours.shared_secret(&theirs).unwrap();
    let mut ciphers = Ciphers::new(Side::A, &secret, &TORRENT);
    let mut encrypted = script.vc.to_vec();
    encrypted.extend_from_slice(&script.provide.to_be_bytes());
    encrypted.extend_from_slice(&script.pad_c.to_be_bytes());
    encrypted.extend(std::iter::repeat_n(0, usize::from(script.pad_c)));
    encrypted.extend_from_slice(&(script.initial.len() as u16).to_be_bytes());
    encrypted.extend_from_slice(&script.initial);
    encrypted.extend_from_slice(&script.then);
    ciphers.send.apply_keystream(&mut encrypted);
    let step3 = [
        &keys::req1(&secret)[..],
        &keys::obfuscated_skey(&TORRENT, &secret),
        &encrypted,
    ]
    .concat();
    a.write_all(&step3).unwrap();
    ciphers
}

/// Runs `script` against `accept` and returns what `accept` said, within 3 s.
fn accept_script(script: Script) -> Accepted {
    let (mut a, b) = pair();
    let acceptor = thread::spawn(move || accept_on(b, &[TORRENT], Policy::PreferRc4));
    let started = Instant::now();
    let _ciphers = scripted_initiator(&mut a, &script);
    let accepted = acceptor.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "not prompt");
    accepted
}

#[test]
fn payload_sent_with_step_3_is_read_after_the_initial_payload() {
    let accepted = accept_script(Script {
        initial: b"IA".to_vec(),
        then: b"and what follows".to_vec(),
        ..Script::default()
    });
    let (mut b, _, initial) = accepted.unwrap();
    assert_eq!(initial, b"IA");
    assert_eq!(
        b.buffered(),
        16,
        "read with the handshake, kept for the stream"
    );
    let mut rest = [0u8; 16];
    b.read_exact(&mut rest).unwrap();
    assert_eq!(&rest, b"and what follows");
    assert_eq!(b.buffered(), 0);
}

#[test]
fn a_wrong_verification_constant_is_refused() {
    let accepted = accept_script(Script {
        vc: [0, 0, 0, 0, 0, 0, 0, 1],
        ..Script::default()
    });
    assert!(
        matches!(&accepted, Err(MseError::WrongVc(vc)) if vc == "0000000000000001"),
        "{:?}",
        accepted.err()
    );
}

#[test]
fn a_pad_over_512_bytes_is_refused() {
    let accepted = accept_script(Script {
        pad_c: 513,
        ..Script::default()
    });
    assert!(
        matches!(
            accepted,
            Err(MseError::PadTooLong {
                which: "PadC",
                len: 513
            })
        ),
        "{:?}",
        accepted.err()
    );
    // 512 is still fine.
    assert!(
        accept_script(Script {
            pad_c: 512,
            pad_a: 512,
            ..Script::default()
        })
        .is_ok()
    );
}

#[test]
fn an_offer_of_an_unknown_method_only_is_refused() {
    let accepted = accept_script(Script {
        provide: 0x04,
        ..Script::default()
    });
    assert!(
        matches!(
            accepted,
            Err(MseError::NothingAcceptable { provided: 0x04, .. })
        ),
        "{:?}",
        accepted.err()
    );
}

/// Raw bytes to `accept` from a peer that then stays connected and silent (or closes, with
/// `close`); the error, and how long it took.
fn accept_raw(bytes: Vec<u8>, close: bool, deadline: Duration) -> (MseError, Duration) {
    let (mut a, b) = pair();
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let started = Instant::now();
    let acceptor = thread::spawn(move || {
        accept(
            b,
            &[],
            &[TORRENT],
            Policy::PreferRc4,
            Instant::now() + deadline,
        )
    });
    a.write_all(&bytes).unwrap();
    if close {
        a.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let err = match acceptor.join().unwrap() {
        Err(e) => e,
        Ok(_) => panic!("a broken handshake was accepted"),
    };
    (err, started.elapsed())
}

#[test]
fn garbage_instead_of_a_public_key_is_refused() {
    let (err, took) = accept_raw(vec![0xff; 96], false, Duration::from_secs(10));
    assert!(
        matches!(&err, MseError::BadPublicKey(s) if s == "ffffffffffffffff"),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(1));
    let mut one = vec![0u8; 96];
    one[95] = 1;
    let (err, _) = accept_raw(one, false, Duration::from_secs(10));
    assert!(matches!(err, MseError::BadPublicKey(_)), "{err:?}");
}

#[test]
fn no_req1_hash_within_512_bytes_of_pad_is_refused() {
    let mut bytes = KeyPair::generate().public().to_vec();
    bytes.extend(std::iter::repeat_n(0x5c, 2000));
    let (err, took) = accept_raw(bytes, false, Duration::from_secs(10));
    assert!(
        matches!(
            err,
            MseError::NoSync {
                what: "the req1 hash",
                searched: 532
            }
        ),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(1));
}

#[test]
fn a_handshake_cut_short_is_a_closed_connection() {
    let (err, took) = accept_raw(vec![7; 50], true, Duration::from_secs(10));
    assert!(
        matches!(
            err,
            MseError::Closed {
                stage: Stage::PublicKey,
                received: 50
            }
        ),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(1));
    let (err, _) = accept_raw(
        KeyPair::generate().public().to_vec(),
        true,
        Duration::from_secs(10),
    );
    assert!(
        matches!(
            err,
            MseError::Closed {
                stage: Stage::SyncReq1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_silent_peer_times_out_with_the_socket() {
    let (err, took) = accept_raw(
        KeyPair::generate().public().to_vec(),
        false,
        Duration::from_secs(10),
    );
    assert!(
        matches!(
            err,
            MseError::TimedOut {
                stage: Stage::SyncReq1,
                received: 96
            }
        ),
        "{err:?}"
    );
    // The socket's 300 ms read timeout, not the 10 s deadline.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_trickling_peer_runs_out_of_the_deadline() {
    let (mut a, b) = pair();
    b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(400);
    let acceptor = thread::spawn(move || accept(b, &[], &[TORRENT], Policy::PreferRc4, deadline));
    a.write_all(KeyPair::generate().public()).unwrap();
    // One pad byte every 20 ms: each read succeeds, the whole takes too long. Bounded: 100
    // bytes at most, and it stops as soon as the other side hangs up.
    for _ in 0..100 {
        if a.write_all(&[0x33]).is_err() || acceptor.is_finished() {
            break;
        }
        let _ = a.set_read_timeout(Some(Duration::from_millis(20)));
        // Waits 20 ms, or returns at once when the other side has closed.
        let _ = a.read(&mut [0u8; 1024]);
    }
    let err = acceptor.join().unwrap().expect_err("refused");
    assert!(
        matches!(
            err,
            MseError::TimedOut {
                stage: Stage::SyncReq1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// The dialling side against raw answers: a bad key, and a pad with no VC.
fn initiate_against(answer: Vec<u8>) -> (MseError, Duration) {
    let (a, mut b) = pair();
    let started = Instant::now();
    let dialler =
        thread::spawn(move || initiate(a, &TORRENT, Policy::PreferRc4, b"", soon()).err());
    b.write_all(&answer).unwrap();
    // Whatever A sends is read and dropped until it hangs up (bounded by the read timeout).
    let mut sink = [0u8; 4096];
    while matches!(b.read(&mut sink), Ok(n) if n > 0) {}
    (dialler.join().unwrap().expect("refused"), started.elapsed())
}

#[test]
fn the_dialling_side_refuses_a_bad_key_and_a_missing_vc() {
    let (err, took) = initiate_against(vec![0; 96]);
    assert!(matches!(err, MseError::BadPublicKey(_)), "{err:?}");
    assert!(took < Duration::from_secs(1));
    let mut answer = KeyPair::generate().public().to_vec();
    answer.extend(std::iter::repeat_n(0x99, 700));
    let (err, took) = initiate_against(answer);
    assert!(
        matches!(
            err,
            MseError::NoSync {
                what: "the verification constant",
                searched: 520
            }
        ),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(1));
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
