//! Trackers that lie, stall or break: each must give one readable `error:` line naming the
//! tracker and what was wrong, within a bounded time, from `peerwire peers`.
//!
//! The fake trackers here are scripted: a TCP listener that answers every request with one
//! canned HTTP response, or a UDP socket that stays silent or answers wrongly.

pub mod common;

use common::{peerwire, run_with_deadline};
use peerwire::tracker::udp_packet::{Request, Response};
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// A torrent announcing to `url`, in a temp dir kept alive by the returned guard.
fn torrent_for(url: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.bin");
    std::fs::write(&data, vec![7u8; 40_000]).unwrap();
    let torrent = dir.path().join("t.torrent");
    common::create_torrent(&data, &torrent, &["-t", url]);
    (dir, torrent)
}

/// Serves one canned response (status line, headers and body) to every HTTP request. The
/// response is made from the fake's own URL, so it can redirect to itself.
fn fake_http_tracker(make_response: impl FnOnce(&str) -> Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let response = make_response(&url);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(&response);
        }
    });
    url
}

/// A UDP "tracker" that answers every connect request with the packets `reply` makes from
/// the request's transaction id. Returns its URL.
fn fake_udp_tracker(reply: impl Fn(u32) -> Vec<Vec<u8>> + Send + 'static) -> String {
    let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("udp://{}/announce", fake.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 200];
        while let Ok((len, from)) = fake.recv_from(&mut buf) {
            if let Ok(Request::Connect { transaction_id }) = Request::decode(&buf[..len]) {
                for packet in reply(transaction_id) {
                    let _ = fake.send_to(&packet, from);
                }
            }
        }
    });
    url
}

fn http_response(status: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

/// Runs `peerwire peers` and checks it fails with one `error:` line that names `url` and
/// contains `what`. Returns how long it took.
fn expect_failure(torrent: &Path, url: &str, what: &str, extra: &[&str]) -> Duration {
    let started = Instant::now();
    let out = run_with_deadline(peerwire().arg("peers").arg(torrent).args(extra), DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "printed peers: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(url),
        "the error does not name the tracker: {}",
        errors[0]
    );
    assert!(
        errors[0].contains(what),
        "expected {what:?} in: {}",
        errors[0]
    );
    started.elapsed()
}

fn http_case(status: &str, body: &[u8], what: &str) {
    let url = fake_http_tracker(|_| http_response(status, body));
    let (_dir, torrent) = torrent_for(&url);
    expect_failure(&torrent, &url, what, &["-q"]);
}

#[test]
fn garbage_instead_of_bencoding() {
    http_case("200 OK", b"<html>hello</html>", "not bencoded");
}

#[test]
fn a_compact_list_that_is_not_a_multiple_of_6_or_18() {
    http_case(
        "200 OK",
        b"d8:intervali60e5:peers7:1234567e",
        "not a multiple of 6",
    );
    http_case(
        "200 OK",
        b"d8:intervali60e5:peers0:6:peers617:12345678901234567e",
        "not a multiple of 18",
    );
}

#[test]
fn a_failure_reason_is_shown() {
    http_case(
        "200 OK",
        b"d14:failure reason22:torrent not registerede",
        "the tracker refused: torrent not registered",
    );
}

#[test]
fn http_errors() {
    http_case("500 Internal Server Error", b"oops", "HTTP status 500");
    http_case("404 Not Found", b"", "HTTP status 404");
}

#[test]
fn an_oversized_body_is_refused_not_read() {
    let big = [b"d5:peers3000000:".as_slice(), &vec![1u8; 3_000_000], b"e"].concat();
    http_case("200 OK", &big, "limit");
}

#[test]
fn a_redirect_loop_ends() {
    let looping = fake_http_tracker(|own_url| {
        format!("HTTP/1.1 302 Found\r\nLocation: {own_url}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
    });
    let (_dir, torrent) = torrent_for(&looping);
    expect_failure(&torrent, &looping, "redirect", &["-q"]);
}

#[test]
fn a_tracker_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap(); // accepts (backlog), never replies
    let url = format!("http://{}/announce", listener.local_addr().unwrap());
    let (_dir, torrent) = torrent_for(&url);
    let took = expect_failure(&torrent, &url, "", &["-q", "--tracker-timeout", "2"]);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(listener);
}

#[test]
fn an_unreachable_http_tracker() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // now closed
    let url = format!("http://127.0.0.1:{port}/announce");
    let (_dir, torrent) = torrent_for(&url);
    expect_failure(&torrent, &url, "HTTP request failed", &["-q"]);
}

#[test]
fn a_silent_udp_tracker_gives_up_after_the_retries() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("udp://{}/announce", silent.local_addr().unwrap());
    let (_dir, torrent) = torrent_for(&url);
    let took = expect_failure(
        &torrent,
        &url,
        "no valid answer after 2 tries",
        &["-q", "--udp-timeout-ms", "200", "--udp-retries", "1"],
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn udp_replies_with_a_wrong_transaction_id_or_too_short_are_ignored_and_reported() {
    let url = fake_udp_tracker(|transaction_id| {
        let wrong = Response::Connect {
            transaction_id: transaction_id ^ 1,
            connection_id: 5,
        };
        vec![wrong.encode(), vec![0, 0, 0]] // a wrong transaction id, then a short packet
    });
    let (_dir, torrent) = torrent_for(&url);
    expect_failure(
        &torrent,
        &url,
        "ignored: ",
        &["-q", "--udp-timeout-ms", "200", "--udp-retries", "1"],
    );
}

#[test]
fn a_udp_tracker_error_reply_is_shown() {
    let url = fake_udp_tracker(|transaction_id| {
        vec![
            Response::Error {
                transaction_id,
                message: "go away".into(),
            }
            .encode(),
        ]
    });
    let (_dir, torrent) = torrent_for(&url);
    expect_failure(&torrent, &url, "the tracker refused: go away", &["-q"]);
}

#[test]
fn an_unreachable_udp_tracker() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed now
    let url = format!("udp://127.0.0.1:{port}/announce");
    let (_dir, torrent) = torrent_for(&url);
    // Linux answers with ICMP "port unreachable": the error comes at once, not after retries.
    let took = expect_failure(
        &torrent,
        &url,
        "",
        &["-q", "--udp-timeout-ms", "2000", "--udp-retries", "2"],
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn an_unknown_host() {
    let url = "udp://no-such-host.invalid:6969/announce";
    let (_dir, torrent) = torrent_for(url);
    expect_failure(&torrent, url, "cannot resolve host", &["-q"]);
}
