//! Web seeds (BEP 19 "WebSeed - HTTP/FTP Seeding (GetRight style)") that misbehave, played by
//! a small HTTP server of our own on 127.0.0.1 (a `TcpListener` and a thread per connection),
//! each answering as its script says:
//!
//! - a redirect that never ends: bounded redirects, backed off, the honest seed finishes;
//! - a 206 whose body goes on for ever: exactly the range is read, the download completes;
//! - a 200 with an endless body to a range request: "ignores ranges", dropped;
//! - a close in the middle of a range: backed off, the blocks fetched again;
//! - 404, then 503 with `Retry-After: 2`: backed off 1 s, then 2 s, then served;
//! - wrong bytes: struck, banned, the honest seed finishes.
//!
//! Every download runs `peerwire download` with the torrent's `url-list` only (no tracker, no
//! peer, no DHT), bounded in time, and checks the file byte for byte.

pub mod common;

use common::{download_from, pseudo_random, small_torrent};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 1 MiB in 64 pieces of 16 KiB: two batches of a web seed's requests, at least.
const SIZE: usize = 1024 * 1024;
const PIECE: u32 = 16 * 1024;
/// The longest an endless body is written: a server thread is bounded in time too.
const ENDLESS_FOR: Duration = Duration::from_secs(30);

/// One request, as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    path: String,
    /// `Range: bytes=FIRST-LAST`, if sent.
    range: Option<(u64, u64)>,
}

/// What the server does with one request.
enum Reply {
    /// The requested range of the file (206), honestly.
    Honest,
    /// The requested range of a copy with every byte flipped (206, correct headers).
    Flipped,
    /// These bytes, then close.
    Raw(Vec<u8>),
    /// A 206 with the right `Content-Range` and no length, then the right bytes, then more,
    /// until the client hangs up; `Connection: close`.
    EndlessRange,
    /// A 200 with no length and a body that never ends.
    EndlessWhole,
    /// The right headers for the range, half of its bytes, then close.
    HalfThenClose,
}

type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A scripted HTTP server serving one file at `/lesson.bin`.
struct ScriptedHttp {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl ScriptedHttp {
    fn start(
        content: Vec<u8>,
        script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> ScriptedHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let content = Arc::new(content);
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::Builder::new()
            .name(format!("http {port}"))
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (seen, script, content) = (
                        Arc::clone(&seen2),
                        Arc::clone(&script),
                        Arc::clone(&content),
                    );
                    std::thread::spawn(move || connection(stream, &seen, &*script, &content));
                }
            })
            .expect("start the server thread");
        ScriptedHttp { port, seen, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/lesson.bin", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ScriptedHttp {
    fn drop(&mut self) {
        // The accept loop sees the flag at its next connection: make one.
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves requests on one connection until the client closes it or a reply closes it.
fn connection(mut stream: TcpStream, seen: &Mutex<Vec<Seen>>, script: &Script, content: &[u8]) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        let Some(head) = read_head(&mut stream) else {
            return;
        };
        let request = parse_head(&head);
        let count = {
            let mut seen = seen.lock().unwrap();
            seen.push(request.clone());
            seen.len() - 1
        };
        let (first, last) = request.range.unwrap_or((0, content.len() as u64 - 1));
        let (first, last) = (first as usize, (last as usize).min(content.len() - 1));
        let range_head = |extra: &str| {
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{}\r\n{extra}\r\n",
                content.len()
            )
        };
        let body = &content[first..=last];
        let keep_going = match script(&request, count) {
            Reply::Honest => {
                let head = range_head(&format!("Content-Length: {}\r\n", body.len()));
                write_all(&mut stream, &[head.as_bytes(), body].concat())
            }
            Reply::Flipped => {
                let head = range_head(&format!("Content-Length: {}\r\n", body.len()));
                let flipped: Vec<u8> = body.iter().map(|b| !b).collect();
                write_all(&mut stream, &[head.as_bytes(), &flipped].concat())
            }
            Reply::Raw(bytes) => {
                let _ = stream.write_all(&bytes);
                false
            }
            Reply::EndlessRange => {
                let head = range_head("Connection: close\r\n");
                if write_all(&mut stream, &[head.as_bytes(), body].concat()) {
                    endless(&mut stream);
                }
                false
            }
            Reply::EndlessWhole => {
                let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                if write_all(&mut stream, head.as_bytes()) {
                    endless(&mut stream);
                }
                false
            }
            Reply::HalfThenClose => {
                let head = range_head(&format!("Content-Length: {}\r\n", body.len()));
                let _ = stream.write_all(&[head.as_bytes(), &body[..body.len() / 2]].concat());
                false
            }
        };
        if !keep_going {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn write_all(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).is_ok()
}

/// Garbage until the client hangs up (a write fails), or [`ENDLESS_FOR`].
fn endless(stream: &mut TcpStream) {
    let chunk = vec![0x5a; 64 * 1024];
    let until = Instant::now() + ENDLESS_FOR;
    while Instant::now() < until && stream.write_all(&chunk).is_ok() {}
}

/// The request head (up to the blank line), at most 16 KiB; `None` when the client closes.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn parse_head(head: &str) -> Seen {
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string();
    let range = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.eq_ignore_ascii_case("range") {
            return None;
        }
        let (first, last) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
        Some((first.parse().ok()?, last.parse().ok()?))
    });
    Seen {
        at: Instant::now(),
        path,
        range,
    }
}

/// The .torrent at `torrent` with a `url-list` added: the info dictionary (and the info hash)
/// is untouched; `url-list` sorts after every other key `peerwire create` writes, so it goes
/// last, before the final `e`.
fn with_url_list(torrent: &Path, urls: &[String]) -> PathBuf {
    let mut bytes = std::fs::read(torrent).unwrap();
    assert_eq!(bytes.pop(), Some(b'e'), "a torrent is a dictionary");
    bytes.extend_from_slice(b"8:url-listl");
    for url in urls {
        bytes.extend_from_slice(format!("{}:{url}", url.len()).as_bytes());
    }
    bytes.extend_from_slice(b"ee");
    let out = torrent.with_extension("web.torrent");
    std::fs::write(&out, bytes).unwrap();
    out
}

/// A download of the 1 MiB lesson from `urls` only; returns (the run, the expected bytes).
fn download_from_web(dir: &Path, urls: &[String], give_up: u64) -> common::Downloaded {
    let torrent = dir.join("lesson.torrent");
    let torrent = with_url_list(&torrent, urls);
    download_from(&[], &torrent, &dir.join("out.bin"))
        .args(&["--no-dht", "-v"])
        .give_up_after(give_up)
        .expect_bytes(&pseudo_random(SIZE, 7))
}

/// The lesson in `dir` (a 1 MiB file and its torrent); returns its bytes.
fn lesson(dir: &Path) -> Vec<u8> {
    let (content, _torrent) = small_torrent(dir, SIZE, PIECE);
    std::fs::read(content).unwrap()
}

fn stderr_has(run: &common::Downloaded, needle: &str) -> bool {
    run.stderr.lines().any(|l| l.contains(needle))
}

#[test]
fn a_redirect_loop_is_bounded_and_backed_off() {
    let dir = tempfile::tempdir().unwrap();
    let content = lesson(dir.path());
    // The honest seed answers only once the looping one has been through a whole try (its
    // first request and five redirects): otherwise it can finish the download first, and the
    // looping seed's thread is stopped mid-try, with no redirect error to see (seen in 2 of 8
    // runs).
    let redirects = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&redirects);
    let honest = ScriptedHttp::start(content.clone(), move |_, _| {
        let until = Instant::now() + Duration::from_secs(20);
        while counted.load(Ordering::SeqCst) < 6 && Instant::now() < until {
            std::thread::park_timeout(Duration::from_millis(20)); // until the loop has looped
        }
        Reply::Honest
    });
    let looping = Arc::new(Mutex::new(0u16));
    let port = Arc::clone(&looping);
    let loop_server = ScriptedHttp::start(content, move |seen, _| {
        redirects.fetch_add(1, Ordering::SeqCst);
        let port = *port.lock().unwrap();
        let next = format!("/loop{}", seen.path.len());
        Reply::Raw(
            format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}{next}\r\nContent-Length: 0\r\n\r\n")
                .into_bytes(),
        )
    });
    *looping.lock().unwrap() = loop_server.port;
    let run = download_from_web(dir.path(), &[loop_server.url(), honest.url()], 30);
    assert!(
        stderr_has(&run, "redirect"),
        "no redirect error:\n{}",
        run.stderr
    );
    // Five redirects a try, and tries 1, 2, 4 … s apart: a handful in a short download.
    let asked = loop_server.seen().len();
    assert!(
        (1..=60).contains(&asked),
        "{asked} requests to the looping server"
    );
}

#[test]
fn an_endless_body_for_a_range_is_read_up_to_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let content = lesson(dir.path());
    let server = ScriptedHttp::start(content, |_, _| Reply::EndlessRange);
    let run = download_from_web(dir.path(), &[server.url()], 30);
    // Every range read whole and no more: nothing failed, nothing was backed off.
    assert!(!stderr_has(&run, "trying again"), "{}", run.stderr);
    assert!(run.took < Duration::from_secs(20), "took {:?}", run.took);
}

#[test]
fn a_200_to_a_range_request_drops_the_web_seed() {
    let dir = tempfile::tempdir().unwrap();
    let content = lesson(dir.path());
    let whole = ScriptedHttp::start(content.clone(), |_, _| Reply::EndlessWhole);
    let honest = ScriptedHttp::start(content, |_, _| Reply::Honest);
    let run = download_from_web(dir.path(), &[whole.url(), honest.url()], 30);
    assert!(stderr_has(&run, "ignores ranges"), "{}", run.stderr);
    assert!(stderr_has(&run, "dropped"), "{}", run.stderr);
    // Dropped for good: asked once, never again.
    assert_eq!(whole.seen().len(), 1, "{:?}", whole.seen());
}

#[test]
fn a_close_mid_range_is_backed_off_and_the_blocks_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let content = lesson(dir.path());
    let server = ScriptedHttp::start(content, |_, count| match count {
        0 => Reply::HalfThenClose,
        _ => Reply::Honest,
    });
    let run = download_from_web(dir.path(), &[server.url()], 30);
    let seen = server.seen();
    assert!(seen.len() >= 2, "{seen:?}");
    // The back-off: a second before the next try.
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    // The first range's bytes were asked for again: its blocks went back to the pool.
    let (first, _) = seen[0].range.expect("a range request");
    let again = seen[1..]
        .iter()
        .filter_map(|s| s.range)
        .any(|(a, b)| a <= first && first <= b);
    assert!(again, "byte {first} never asked again: {seen:?}");
    assert!(stderr_has(&run, "the body ended"), "{}", run.stderr);
}

#[test]
fn not_found_then_busy_is_backed_off_as_the_server_asks() {
    let dir = tempfile::tempdir().unwrap();
    let content = lesson(dir.path());
    let server = ScriptedHttp::start(content, |_, count| match count {
        0 => Reply::Raw(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()),
        1 => Reply::Raw(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        ),
        _ => Reply::Honest,
    });
    let run = download_from_web(dir.path(), &[server.url()], 30);
    let seen = server.seen();
    assert!(seen.len() >= 3, "{seen:?}");
    let (after_404, after_503) = (seen[1].at - seen[0].at, seen[2].at - seen[1].at);
    assert!(
        after_404 >= Duration::from_millis(900),
        "{after_404:?} after the 404"
    );
    assert!(
        after_503 >= Duration::from_millis(1900),
        "{after_503:?} after the 503"
    );
    assert!(
        stderr_has(&run, "HTTP status 503 (retry after 2 s)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_web_seed_that_serves_wrong_bytes_is_banned() {
    let dir = tempfile::tempdir().unwrap();
    let content = lesson(dir.path());
    let liar = ScriptedHttp::start(content.clone(), |_, _| Reply::Flipped);
    let honest = ScriptedHttp::start(content, |_, _| Reply::Honest);
    let run = download_from_web(dir.path(), &[liar.url(), honest.url()], 30);
    let banned = format!("127.0.0.1:{}: banned", liar.port);
    assert!(stderr_has(&run, &banned), "no {banned:?}:\n{}", run.stderr);
    let summary = run
        .stderr
        .lines()
        .find(|l| l.starts_with("done:"))
        .unwrap_or_default();
    assert!(summary.ends_with("1 peers banned"), "{summary}");
}

/// The file names the server saw are the ones the torrent gives (a sanity check of the
/// script's own parsing, so that the tests above test peerwire, not the script).
#[test]
fn the_scripted_server_reads_requests() {
    let seen = parse_head("GET /a%20b HTTP/1.1\r\nHost: x\r\nRange: bytes=5-9\r\n\r\n");
    assert_eq!(seen.path, "/a%20b");
    assert_eq!(seen.range, Some((5, 9)));
}
