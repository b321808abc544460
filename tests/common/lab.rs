//! The network lab (`tests/lab/lab.py`) from a Rust test: run one swarm behind shaped links
//! through the lab's command line, with a deadline, and read its JSON result with a small
//! JSON reader of our own (the lab prints one object; there is no JSON crate here).
//!
//! The lab needs root (network namespaces, `tc`), `ip`, `tc` and the libtorrent binding of
//! /usr/bin/python3; without them [`run_lab`] skips loudly (`None`), and fails under
//! `PEERWIRE_INTEROP=require`. The lab itself stops every process by PID and deletes its
//! namespaces however it ends (a reaper process does it even after SIGKILL).

use super::{need_libtorrent_python, need_program, run_with_deadline, skip};
use std::process::Command;
use std::time::Duration;

/// The lab's status for "cannot run here" (not root, a program missing).
const LAB_CANNOT_RUN: i32 = 77;
/// Bytes in a MiB, for printing the lab's byte counts.
pub const MIB: f64 = 1_048_576.0;

/// A JSON value, as the lab prints it.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> &Json {
        match self {
            Json::Object(fields) => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or(&Json::Null),
            _ => &Json::Null,
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Json::Text(s) => s,
            _ => "",
        }
    }

    pub fn list(&self) -> &[Json] {
        match self {
            Json::List(items) => items,
            _ => &[],
        }
    }
}

/// A small JSON reader: enough for the lab's result (objects, lists, numbers, strings with
/// the escapes Python's `json.dumps` writes, true, false, null).
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut reader = Reader {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = reader.value()?;
        reader.blank();
        match reader.at == reader.bytes.len() {
            true => Ok(value),
            false => Err(format!("text after the value at byte {}", reader.at)),
        }
    }

    fn blank(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn expect(&mut self, word: &str) -> Result<(), String> {
        match self.bytes[self.at..].starts_with(word.as_bytes()) {
            true => {
                self.at += word.len();
                Ok(())
            }
            false => Err(format!("expected `{word}` at byte {}", self.at)),
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.blank();
        match self.bytes.get(self.at) {
            Some(b'{') => self.object(),
            Some(b'[') => self.sequence(),
            Some(b'"') => self.string().map(Json::Text),
            Some(b't') => self.expect("true").map(|()| Json::Bool(true)),
            Some(b'f') => self.expect("false").map(|()| Json::Bool(false)),
            Some(b'n') => self.expect("null").map(|()| Json::Null),
            Some(_) => self.number(),
            None => Err("the text ended where a value was expected".to_string()),
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.at += 1;
        let mut fields = Vec::new();
        self.blank();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.blank();
            let key = self.string()?;
            self.blank();
            self.expect(":")?;
            fields.push((key, self.value()?));
            self.blank();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Object(fields));
                }
                _ => return Err(format!("expected `,` or `}}` at byte {}", self.at)),
            }
        }
    }

    fn sequence(&mut self) -> Result<Json, String> {
        self.at += 1;
        let mut items = Vec::new();
        self.blank();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Json::List(items));
        }
        loop {
            items.push(self.value()?);
            self.blank();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::List(items));
                }
                _ => return Err(format!("expected `,` or `]` at byte {}", self.at)),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect("\"")?;
        let mut out = String::new();
        loop {
            let start = self.at;
            // Up to the next quote or backslash: copied as it is (it is UTF-8 already).
            while self
                .bytes
                .get(self.at)
                .is_some_and(|b| *b != b'"' && *b != b'\\')
            {
                self.at += 1;
            }
            out.push_str(
                std::str::from_utf8(&self.bytes[start..self.at])
                    .map_err(|e| format!("a string that is not UTF-8 at byte {start}: {e}"))?,
            );
            match self.bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escape = self.bytes.get(self.at + 1).copied();
                    self.at += 2;
                    match escape {
                        Some(b'n') => out.push('\n'),
                        Some(b't') => out.push('\t'),
                        Some(b'r') => out.push('\r'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'u') => {
                            let hex = self
                                .bytes
                                .get(self.at..self.at + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or(format!("a bad \\u escape at byte {}", self.at))?;
                            self.at += 4;
                            // Halves of a surrogate pair are not characters on their own:
                            // the result needs only to be readable, so they become U+FFFD.
                            out.push(char::from_u32(hex).unwrap_or('\u{fffd}'));
                        }
                        Some(other) => out.push(char::from(other)),
                        None => return Err("the text ended inside an escape".to_string()),
                    }
                }
                _ => return Err("the text ended inside a string".to_string()),
            }
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
        {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or("");
        text.parse::<f64>()
            .map(Json::Number)
            .map_err(|_| format!("not a value at byte {start}: {text:?}"))
    }
}

/// One swarm through the lab's command line: a seeder of kind `seeder` (2 MiB/s up), the
/// `leechers` (`KIND:COUNT,...`, 1 MiB/s up, 8 MiB/s down), a file of `size_mib` MiB, and
/// `peerwire_flags` given to every peerwire. Its JSON result, or `None` when the test skips.
/// Panics if the swarm failed: a leecher incomplete or with wrong bytes, a client that died.
pub fn run_lab(
    seeder: &str,
    leechers: &str,
    size_mib: u32,
    peerwire_flags: &[&str],
) -> Option<Json> {
    need_program("ip")?;
    need_program("tc")?;
    let python = need_libtorrent_python()?;
    let lab = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab.py");
    let mut command = Command::new(python);
    command
        .arg(lab)
        .arg("swarm")
        .args(["--peerwire", env!("CARGO_BIN_EXE_peerwire")])
        .args(["--seeder", seeder, "--leechers", leechers])
        .args(["--size-mib", &size_mib.to_string()])
        .args(["--seeder-up", "2MiB", "--seeder-down", "8MiB"])
        .args(["--leecher-up", "1MiB", "--leecher-down", "8MiB"])
        .args(["--deadline", "60", "--json"]);
    for flag in peerwire_flags {
        // `=`: a flag's own leading dashes must not read as one of the lab's options.
        command.arg(format!("--peerwire-flag={flag}"));
    }
    // The lab's own deadline is 60 s for the swarm; set-up and teardown take a few more.
    let out = run_with_deadline(&mut command, Duration::from_secs(150));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(LAB_CANNOT_RUN) {
        return skip(&format!(
            "the network lab cannot run here: {}",
            stderr.trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let result = Reader::parse(line).unwrap_or_else(|e| {
        panic!(
            "the lab printed no JSON result ({e}), status {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        )
    });
    assert!(
        out.status.success() && result.get("ok") == &Json::Bool(true),
        "the swarm failed (status {}): {:?}\nstderr:\n{stderr}",
        out.status,
        result.get("failures")
    );
    Some(result)
}
