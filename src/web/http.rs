//! The little HTTP/1.1 the web view needs (RFC 9112): read one request head, bounded; answer;
//! close — walkthrough §21. No BEP: this is the browser's side of the web view, which shows
//! BEP 3 ("The BitTorrent Protocol Specification") at work; it sits between the `web` thread's
//! socket and `answer` in `mod.rs`. Bytes from the browser are bytes from the network, so the head is read with a size
//! cap and a deadline, and parsed by a pure function ([`parse_request`]) that the fuzzer feeds.
//!
//! ```text
//!   "GET /api/state HTTP/1.1\r\nHost: ...\r\n\r\n"  ──parse_request──►  Request { path, query }
//!   more than MAX_HEAD bytes, or no blank line before the deadline  ──►  431 / 408, closed
//! ```
//!
//! Only `GET` (and `HEAD`) are served; a body is never read; every answer says
//! `Connection: close`, so one connection is one request and nothing is kept between them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Bytes of a request head we read at most. A browser's GET is well under 2 KiB.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its whole head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(2);

/// A request we will answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `HEAD`: the same headers, no body.
    pub head_only: bool,
    /// The path, without the query: `/api/state`.
    pub path: String,
    /// `member=1&peer=127.0.0.1:6881`, split at `&` and `=`, not decoded beyond `%3A`/`%5B`/`%5D`.
    pub query: Vec<(String, String)>,
}

/// Why a request is refused, with the evidence.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("request head longer than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("request head not complete within {HEAD_DEADLINE:?} ({0} bytes read)")]
    TooSlow(usize),
    #[error("connection closed after {0} bytes, before the end of the head")]
    Closed(usize),
    #[error("request line is not `METHOD TARGET HTTP/1.x`: {0:?}")]
    BadRequestLine(String),
    #[error("method {0:?} not served (only GET and HEAD)")]
    Method(String),
    #[error("request head is not ASCII (byte {0:#04x})")]
    NotAscii(u8),
}

impl HttpError {
    /// The status line we answer a refused request with.
    pub fn status(&self) -> &'static str {
        match self {
            HttpError::TooLarge => "431 Request Header Fields Too Large",
            HttpError::TooSlow(_) => "408 Request Timeout",
            HttpError::Method(_) => "405 Method Not Allowed",
            HttpError::Closed(_) | HttpError::BadRequestLine(_) | HttpError::NotAscii(_) => {
                "400 Bad Request"
            }
        }
    }
}

/// Reads a request head (up to and including the blank line) from `stream`: at most
/// [`MAX_HEAD`] bytes, within [`HEAD_DEADLINE`].
pub fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HttpError> {
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::TooSlow(head.len()));
        }
        // Each read waits at most until the deadline: a client sending a byte a second
        // cannot keep the thread for longer than that.
        if stream.set_read_timeout(Some(left)).is_err() {
            return Err(HttpError::Closed(head.len()));
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(HttpError::Closed(head.len())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HttpError::TooSlow(head.len()));
            }
            Err(_) => return Err(HttpError::Closed(head.len())),
        };
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_blank_line(&head) {
            head.truncate(end);
            return Ok(head);
        }
        // Checked after the search: a head of exactly MAX_HEAD bytes is fine.
        if head.len() > MAX_HEAD {
            return Err(HttpError::TooLarge);
        }
    }
}

/// Where the head ends (after `\r\n\r\n`, or a bare `\n\n` some tools send).
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The request line of a head, read as a [`Request`]. Headers are not needed: every page and
/// answer is the same whoever asks. [W21.3]
pub fn parse_request(head: &[u8]) -> Result<Request, HttpError> {
    if head.len() > MAX_HEAD + 1024 {
        return Err(HttpError::TooLarge);
    }
    if let Some(&b) = head.iter().find(|b| !b.is_ascii()) {
        return Err(HttpError::NotAscii(b));
    }
    // ASCII was checked just above, so this cannot fail; lossy keeps it panic-free anyway.
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or("");
    let bad = || HttpError::BadRequestLine(line.chars().take(80).collect());
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad());
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(bad());
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        other => return Err(HttpError::Method(other.chars().take(16).collect())),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect();
    Ok(Request {
        head_only,
        path: path.to_string(),
        query,
    })
}

/// The few escapes an address in a query carries (`:`, `[`, `]`); anything else stays as sent.
fn decode(text: &str) -> String {
    text.replace("%3A", ":")
        .replace("%3a", ":")
        .replace("%5B", "[")
        .replace("%5b", "[")
        .replace("%5D", "]")
        .replace("%5d", "]")
}

/// Writes a whole answer and closes: status, a few headers, the body.
pub fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    // The browser gets the answer whole or not at all; a stuck reader costs us 2 s at most.
    stream.set_write_timeout(Some(HEAD_DEADLINE))?;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'self'; img-src 'self' data:\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_get_with_a_query_is_read() {
        let r = parse_request(
            b"GET /api/trace?member=1&peer=127.0.0.1%3A6881 HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.path, "/api/trace");
        assert!(!r.head_only);
        assert_eq!(
            r.query,
            vec![
                ("member".to_string(), "1".to_string()),
                ("peer".to_string(), "127.0.0.1:6881".to_string())
            ]
        );
    }

    #[test]
    fn malformed_heads_are_refused_by_name() {
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\n\r\n"),
            Err(HttpError::Method("POST".into()))
        );
        assert!(matches!(
            parse_request(b"GET /\r\n\r\n"),
            Err(HttpError::BadRequestLine(_))
        ));
        assert!(matches!(
            parse_request(b"GET http://x/ HTTP/1.1\r\n\r\n"),
            Err(HttpError::BadRequestLine(_))
        ));
        assert_eq!(
            parse_request(b"GET /\xff HTTP/1.1\r\n\r\n"),
            Err(HttpError::NotAscii(0xff))
        );
        assert!(parse_request(b"").is_err());
    }

    #[test]
    fn the_blank_line_ends_the_head() {
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_blank_line(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n"), None);
    }
}
