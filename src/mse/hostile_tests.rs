//! Broken and hostile MSE handshakes ("Message Stream Encryption"), one side written by hand
//! over TCP on 127.0.0.1: each ends promptly, with the error that names what went wrong.

use super::dh::KeyPair;
use super::keys::{self, Ciphers, Side};
use super::tests::{Accepted, TORRENT, accept_on, pair, soon};
use super::*;
use rc4::StreamCipher;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

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

/// B written by hand: a correct handshake, except that it selects `selected`.
#[test]
fn a_selection_we_did_not_offer_is_refused() {
    for (offer, selected) in [
        (Policy::PlaintextOnly, CRYPTO_RC4),
        (Policy::PreferRc4, 0x03),
    ] {
        let (a, mut b) = pair();
        let dialler = thread::spawn(move || initiate(a, &TORRENT, offer, b"", soon()).err());
        let ours = KeyPair::generate();
        let mut theirs = [0u8; 96];
        b.read_exact(&mut theirs).unwrap();
        b.write_all(ours.public()).unwrap();
        let secret = ours.shared_secret(&theirs).unwrap();
        // PadA, then req1 (at most 512 + 20 bytes), then 20 + 8 + 4 + 2 + 2 bytes of step 3.
        let req1 = keys::req1(&secret);
        let mut seen = Vec::new();
        while !seen.ends_with(&req1) {
            assert!(seen.len() < 532, "no req1 hash");
            let mut byte = [0u8; 1];
            b.read_exact(&mut byte).unwrap();
            seen.push(byte[0]);
        }
        b.read_exact(&mut [0u8; 36]).unwrap();
        let mut ciphers = Ciphers::new(Side::B, &secret, &TORRENT);
        let mut answer = [&[0u8; 8][..], &selected.to_be_bytes(), &[0, 0]].concat();
        ciphers.send.apply_keystream(&mut answer);
        b.write_all(&answer).unwrap();
        let err = dialler.join().unwrap().expect("refused");
        assert!(
            matches!(err, MseError::BadSelect { selected: s, .. } if s == selected),
            "{err:?}"
        );
    }
}
