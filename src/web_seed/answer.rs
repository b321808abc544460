//! What a web seed's HTTP answer to one range request means (BEP 19 "WebSeed - HTTP/FTP
//! Seeding (GetRight style)") — walkthrough §19.
//!
//! ureq parses the status line and the headers; this file reads the three headers that decide
//! what to do with the body, before a byte of it is read:
//!
//! ```text
//!   206 + Content-Range: bytes FIRST-LAST/TOTAL naming exactly what we asked ──► read len bytes
//!   200 for the whole file (asked from 0, Content-Length = len)               ──► read len bytes
//!   200 for a part of the file (the server ignores Range)                     ──► wrong: dropped
//!   404, 503 (Retry-After: SECONDS), other 4xx/5xx                            ──► back off
//!   416, a 206 for other bytes, a Content-Length that is not len              ──► wrong: dropped
//! ```
//!
//! Pure functions of text, so the fuzz target `web_seed_answer` can call them with anything.

use super::WebSeedError;
use std::time::Duration;

/// The `Content-Range` of a 206 answer: `bytes FIRST-LAST/TOTAL` (RFC 9110), LAST inclusive;
/// TOTAL may be `*` (unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    pub last: u64,
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parses the header's value; `None` for anything else (other units, `*/TOTAL`, a LAST
    /// before FIRST or past TOTAL, numbers that overflow).
    pub fn parse(text: &str) -> Option<ContentRange> {
        let rest = text.trim().strip_prefix("bytes")?;
        // At least one space between the unit and the range.
        let rest = rest.strip_prefix(' ')?.trim_start();
        let (range, total) = rest.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let (first, last) = (digits(first)?, digits(last)?);
        let total = match total {
            "*" => None,
            total => Some(digits(total)?),
        };
        let fits = total.is_none_or(|total| last < total);
        (first <= last && fits).then_some(ContentRange { first, last, total })
    }
}

/// A non-empty run of ASCII digits as a number, or `None` (a sign, a space, an overflow).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The longest `Retry-After` we honour: a server cannot park a web seed for a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// `Retry-After: SECONDS` (RFC 9110), at most [`MAX_RETRY_AFTER`]. The other form, an HTTP
/// date, gives `None`: the usual back-off applies instead.
pub fn retry_after(text: &str) -> Option<Duration> {
    digits(text.trim()).map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// What a server answered to `Range: bytes=first-(first + len - 1)`, the headers as text.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub content_range: Option<&'a str>,
    pub content_length: Option<&'a str>,
    pub retry_after: Option<&'a str>,
}

impl Answer<'_> {
    /// `Ok` if the body holds exactly the `len` bytes asked for, from its start: then the
    /// caller reads `len` bytes and no more. Otherwise why not, as the error the web seed's
    /// thread acts on (back off, or drop the seed: [`WebSeedError::is_wrong`]). [W19.4]
    pub fn check(&self, url: &str, first: u64, len: u64) -> Result<(), WebSeedError> {
        let url = url.to_string();
        let length = self.content_length.map(|l| (l, digits(l.trim())));
        match self.status {
            206 => {
                let header = self
                    .content_range
                    .ok_or(WebSeedError::NoContentRange { url: url.clone() })?;
                let range = ContentRange::parse(header);
                // Saturating: `first` and `len` are ours, but this must not panic for any.
                let last = first.saturating_add(len.saturating_sub(1));
                let exact = range.is_some_and(|r| r.first == first && r.last == last);
                if !exact {
                    return Err(WebSeedError::OtherRange {
                        url,
                        header: header.to_string(),
                        first,
                        len,
                    });
                }
            }
            // The whole file, from its start, as long as what we asked: the same bytes.
            200 if first == 0 && length.is_some_and(|(_, n)| n == Some(len)) => return Ok(()),
            200 => {
                return Err(WebSeedError::IgnoresRange {
                    url,
                    first,
                    len,
                    content_length: self.content_length.map(str::to_string),
                });
            }
            416 => return Err(WebSeedError::NotSatisfiable { url, first, len }),
            status => {
                return Err(WebSeedError::Status {
                    url,
                    status,
                    retry_after: self.retry_after.and_then(retry_after),
                });
            }
        }
        // A 206 whose length says more (or less) than its range: one of the two is false.
        match length {
            Some((text, n)) if n != Some(len) => Err(WebSeedError::OtherLength {
                url,
                content_length: text.to_string(),
                len,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(
        status: u16,
        range: Option<&'static str>,
        length: Option<&'static str>,
    ) -> Answer<'static> {
        Answer {
            status,
            content_range: range,
            content_length: length,
            retry_after: None,
        }
    }

    #[test]
    fn content_range_is_read_strictly() {
        let r = ContentRange::parse("bytes 16384-32767/100000");
        assert_eq!(
            r,
            Some(ContentRange {
                first: 16384,
                last: 32767,
                total: Some(100000)
            })
        );
        assert_eq!(
            ContentRange::parse("bytes 0-0/*").map(|r| r.total),
            Some(None)
        );
        for bad in [
            "bytes */100",
            "bytes 5-4/100",
            "bytes 0-100/100",
            "items 0-1/2",
            "bytes0-1/2",
            "bytes -1-2/3",
            "bytes 0-99999999999999999999/*",
            "bytes 0-1",
            "",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_is_seconds_and_bounded() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after("-1"), None);
    }

    #[test]
    fn only_the_bytes_asked_for_are_read() {
        let ok = answer(206, Some("bytes 100-199/1000"), Some("100"));
        assert!(ok.check("u", 100, 100).is_ok());
        assert!(
            answer(206, Some("bytes 100-199/*"), None)
                .check("u", 100, 100)
                .is_ok()
        );
        // Whole-file answers are fine only when the whole file is what we asked for.
        assert!(answer(200, None, Some("100")).check("u", 0, 100).is_ok());
        let wrong = [
            answer(200, None, Some("1000")).check("u", 0, 100),
            answer(200, None, None).check("u", 0, 100),
            answer(200, None, Some("100")).check("u", 100, 100),
            answer(206, Some("bytes 0-99/1000"), None).check("u", 100, 100),
            answer(206, None, Some("100")).check("u", 100, 100),
            answer(206, Some("bytes 100-199/1000"), Some("9999")).check("u", 100, 100),
            answer(416, None, None).check("u", 100, 100),
        ];
        for result in wrong {
            let error = result.expect_err("a wrong answer");
            assert!(error.is_wrong(), "{error}");
        }
    }

    #[test]
    fn missing_and_busy_servers_are_backed_off() {
        let busy = Answer {
            retry_after: Some("3"),
            ..answer(503, None, None)
        };
        let error = busy.check("u", 0, 10).expect_err("503");
        assert!(!error.is_wrong());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
        let missing = answer(404, None, None).check("u", 0, 10).expect_err("404");
        assert!(!missing.is_wrong() && missing.retry_after().is_none());
    }
}
