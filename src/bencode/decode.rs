//! Decoding bencoded bytes into [`Value`]s — walkthrough §1.
//!
//! A recursive-descent parser: one function per kind of value ([`Decoder::integer`],
//! [`Decoder::byte_string`], [`Decoder::list`], [`Decoder::dict`]), each starting at the byte
//! that announces it (`i`, a digit, `l`, `d`). Input comes from strangers, so:
//!
//! - every error names the byte offset and what was expected there;
//! - a claimed string length is checked against the bytes that remain *before* anything is
//!   allocated, so no input allocates more than its own size for strings;
//! - nesting is capped ([`Limits::max_depth`]) so a hostile `llllll...` cannot blow the stack,
//!   and the number of values is capped ([`Limits::max_values`]);
//! - nothing here can panic: all arithmetic is checked and all indexing goes through `peek`.
//!
//! Strictness follows libtorrent (`tests/bencode_vectors.rs` replays its bdecode test vectors):
//! hard errors for malformed input, but leading zeros and unsorted or duplicate dictionary keys
//! are only *soft errors*: the value decodes and the quirk is reported in
//! [`Decoded::soft_errors`]. Real v1 torrents contain such quirks, and their info hash covers
//! the bytes as they are.
//! `metainfo` turns soft errors into hard ones inside a v2/hybrid info dictionary, as
//! libtorrent does.

use super::{Item, Span, Value};
use thiserror::Error;

/// Caps that keep hostile input from costing unbounded stack or memory.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries accepted (libtorrent uses 100).
    pub max_depth: usize,
    /// Most values (of any kind) in one input (libtorrent uses 3,000,000 "tokens").
    pub max_values: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 100,
            max_values: 3_000_000,
        }
    }
}

/// The result of a successful decode.
#[derive(Debug)]
pub struct Decoded {
    /// The first (outermost) value of the input.
    pub value: Value,
    /// Quirks that libtorrent tolerates in v1 torrents; empty for canonical bencoding.
    pub soft_errors: Vec<SoftError>,
    /// Offset just past the value; with [`decode_prefix`] there may be more input after it.
    pub end: usize,
}

/// A departure from canonical bencoding that still decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SoftError {
    #[error("at byte {offset}: leading zero in a number")]
    LeadingZero { offset: usize },
    #[error("at byte {offset}: dictionary key out of order (keys must be sorted)")]
    UnsortedKey { offset: usize },
    #[error("at byte {offset}: duplicate dictionary key")]
    DuplicateKey { offset: usize },
}

impl SoftError {
    pub fn offset(&self) -> usize {
        match *self {
            SoftError::LeadingZero { offset }
            | SoftError::UnsortedKey { offset }
            | SoftError::DuplicateKey { offset } => offset,
        }
    }
}

/// Why decoding failed, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid bencoding at byte {offset}: {kind}")]
pub struct DecodeError {
    pub offset: usize,
    pub kind: DecodeErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeErrorKind {
    #[error("input ended; expected {expected}")]
    UnexpectedEnd { expected: &'static str },
    #[error("expected {expected}, found {}", show_byte(*found))]
    Unexpected { found: u8, expected: &'static str },
    #[error("integer does not fit in 64 bits")]
    IntegerOverflow,
    #[error("negative zero (`i-0e`) is not allowed")]
    NegativeZero,
    #[error("string length does not fit in 64 bits")]
    LengthOverflow,
    #[error("string claims {claimed} bytes but only {available} remain")]
    StringTooLong { claimed: u64, available: usize },
    #[error("nesting deeper than {limit} lists/dictionaries")]
    DepthExceeded { limit: usize },
    #[error("more than {limit} values")]
    TooManyValues { limit: usize },
    #[error("{len} unexpected bytes after the end of the value")]
    TrailingData { len: usize },
}

fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// Decodes `input`, which must hold exactly one value and nothing after it.
pub fn decode(input: &[u8]) -> Result<Decoded, DecodeError> {
    let decoded = decode_prefix(input, Limits::default())?;
    if decoded.end != input.len() {
        let kind = DecodeErrorKind::TrailingData {
            len: input.len() - decoded.end,
        };
        return Err(DecodeError {
            offset: decoded.end,
            kind,
        });
    }
    Ok(decoded)
}

/// Decodes the first value of `input`; bytes after it are left alone (see [`Decoded::end`]).
/// libtorrent ignores trailing bytes after a torrent's top-level dictionary, and so do we.
pub fn decode_prefix(input: &[u8], limits: Limits) -> Result<Decoded, DecodeError> {
    let mut decoder = Decoder {
        input,
        pos: 0,
        limits,
        values: 0,
        soft_errors: Vec::new(),
    };
    let value = decoder.value(0)?;
    Ok(Decoded {
        value,
        soft_errors: decoder.soft_errors,
        end: decoder.pos,
    })
}

/// The parser's state: where we are in the input and what we have counted so far.
struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
    values: usize,
    soft_errors: Vec<SoftError>,
}

impl Decoder<'_> {
    /// The byte at the cursor, or an "input ended" error naming what we hoped to find.
    fn peek(&self, expected: &'static str) -> Result<u8, DecodeError> {
        match self.input.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.error(DecodeErrorKind::UnexpectedEnd { expected })),
        }
    }

    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset: self.pos,
            kind,
        }
    }

    /// Decodes one value of any kind, dispatching on its first byte.
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(self.error(DecodeErrorKind::TooManyValues {
                limit: self.limits.max_values,
            }));
        }
        let start = self.pos;
        let item = match self.peek("a value")? {
            b'i' => Item::Integer(self.integer()?),
            b'0'..=b'9' => Item::Bytes(self.byte_string()?),
            b'l' => Item::List(self.list(depth + 1)?),
            b'd' => Item::Dict(self.dict(depth + 1)?),
            found => {
                let expected = "a value ('i', 'l', 'd' or a digit)";
                return Err(self.error(DecodeErrorKind::Unexpected { found, expected }));
            }
        };
        Ok(Value {
            item,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    /// `i<decimal>e`: an optional minus sign, at least one digit, no `-0`. [W1.2]
    fn integer(&mut self) -> Result<i64, DecodeError> {
        self.pos += 1; // the 'i'
        let negative = self.peek("a digit or '-'")? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let magnitude = self.digits()?;
        if negative && magnitude == 0 {
            return Err(DecodeError {
                offset: digits_start,
                kind: DecodeErrorKind::NegativeZero,
            });
        }
        self.expect(b'e', "'e' to end the integer")?;
        // `digits` allows up to 2^63 so that i64::MIN (-2^63) can be written.
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        value.ok_or(DecodeError {
            offset: digits_start,
            kind: DecodeErrorKind::IntegerOverflow,
        })
    }

    /// `<length>:<bytes>`. The length is checked against what remains before we allocate.
    fn byte_string(&mut self) -> Result<Vec<u8>, DecodeError> {
        let length_start = self.pos;
        let claimed = self.digits().map_err(|e| match e.kind {
            DecodeErrorKind::IntegerOverflow => DecodeError {
                kind: DecodeErrorKind::LengthOverflow,
                ..e
            },
            _ => e,
        })?;
        self.expect(b':', "':' after the string length")?;
        // [W1.3] A stranger may claim 4 GiB in a 10-byte message: compare, then allocate.
        let available = self.input.len() - self.pos;
        let length = match usize::try_from(claimed) {
            Ok(n) if n <= available => n,
            _ => {
                let kind = DecodeErrorKind::StringTooLong { claimed, available };
                return Err(DecodeError {
                    offset: length_start,
                    kind,
                });
            }
        };
        let bytes = self.input[self.pos..self.pos + length].to_vec();
        self.pos += length;
        Ok(bytes)
    }

    /// `l<values>e`
    fn list(&mut self, depth: usize) -> Result<Vec<Value>, DecodeError> {
        self.check_depth(depth)?;
        self.pos += 1; // the 'l'
        let mut items = Vec::new();
        while self.peek("a list item or 'e'")? != b'e' {
            items.push(self.value(depth)?);
        }
        self.pos += 1; // the 'e'
        Ok(items)
    }

    /// `d<key><value>...e`: keys are byte strings, in sorted order (soft error otherwise).
    fn dict(&mut self, depth: usize) -> Result<Vec<(Vec<u8>, Value)>, DecodeError> {
        self.check_depth(depth)?;
        self.pos += 1; // the 'd'
        let mut entries: Vec<(Vec<u8>, Value)> = Vec::new();
        loop {
            let key_start = self.pos;
            match self.peek("a dictionary key or 'e'")? {
                b'e' => break,
                b'0'..=b'9' => {}
                found => {
                    let expected = "a dictionary key (a byte string) or 'e'";
                    return Err(self.error(DecodeErrorKind::Unexpected { found, expected }));
                }
            }
            // [W1.5] Unsorted or duplicate keys are soft errors, as libtorrent has them in v1.
            let key = self.byte_string()?;
            if let Some((previous, _)) = entries.last() {
                if key == *previous {
                    self.soft_errors
                        .push(SoftError::DuplicateKey { offset: key_start });
                } else if key < *previous {
                    self.soft_errors
                        .push(SoftError::UnsortedKey { offset: key_start });
                }
            }
            self.peek("a value after the dictionary key")?;
            let value = self.value(depth)?;
            entries.push((key, value));
        }
        self.pos += 1; // the 'e'
        Ok(entries)
    }

    /// Caps nesting, so a hostile `lllll…` cannot recurse without bound. [W1.4]
    fn check_depth(&self, depth: usize) -> Result<(), DecodeError> {
        if depth > self.limits.max_depth {
            return Err(self.error(DecodeErrorKind::DepthExceeded {
                limit: self.limits.max_depth,
            }));
        }
        Ok(())
    }

    /// One or more decimal digits, as an unsigned number of at most 2^63.
    /// A leading zero (as in `i01e` or `06:`) is a soft error.
    fn digits(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let first = self.peek("a digit")?;
        if !first.is_ascii_digit() {
            return Err(self.error(DecodeErrorKind::Unexpected {
                found: first,
                expected: "a digit",
            }));
        }
        let mut n: u64 = 0;
        while let Some(&b) = self.input.get(self.pos).filter(|b| b.is_ascii_digit()) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .filter(|&n| n <= 1 << 63)
                .ok_or(self.error(DecodeErrorKind::IntegerOverflow))?;
            self.pos += 1;
        }
        if first == b'0' && self.pos - start > 1 {
            self.soft_errors
                .push(SoftError::LeadingZero { offset: start });
        }
        Ok(n)
    }

    fn expect(&mut self, wanted: u8, expected: &'static str) -> Result<(), DecodeError> {
        let found = self.peek(expected)?;
        if found != wanted {
            return Err(self.error(DecodeErrorKind::Unexpected { found, expected }));
        }
        self.pos += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &[u8]) -> DecodeError {
        decode(input).expect_err("should not decode")
    }

    #[test]
    fn integers() {
        assert_eq!(decode(b"i42e").unwrap().value.as_integer(), Some(42));
        assert_eq!(decode(b"i-7e").unwrap().value.as_integer(), Some(-7));
        assert_eq!(decode(b"i0e").unwrap().value.as_integer(), Some(0));
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap().value.as_integer(),
            Some(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e")
                .unwrap()
                .value
                .as_integer(),
            Some(i64::MIN)
        );
    }

    #[test]
    fn bad_integers_name_the_offset() {
        assert_eq!(err(b"i-0e").kind, DecodeErrorKind::NegativeZero);
        assert_eq!(
            err(b"i9223372036854775808e").kind,
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(
            err(b"i18446744073709551616e").kind,
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(err(b"ie").offset, 1); // i, then 'e' where a digit belongs
        assert_eq!(err(b"i-e").offset, 2);
        assert_eq!(
            err(b"i12").kind,
            DecodeErrorKind::UnexpectedEnd {
                expected: "'e' to end the integer"
            }
        );
        assert!(matches!(
            err(b"i35412-5633e").kind,
            DecodeErrorKind::Unexpected { found: b'-', .. }
        ));
    }

    #[test]
    fn leading_zero_is_a_soft_error() {
        // `i01e`: a value of 1, flagged at byte 1 where the zero is.
        let d = decode(b"i01e").unwrap();
        assert_eq!(d.value.as_integer(), Some(1));
        assert_eq!(d.soft_errors, vec![SoftError::LeadingZero { offset: 1 }]);
        assert_eq!(decode(b"06:foobar").unwrap().soft_errors.len(), 1);
        assert!(decode(b"0:").unwrap().soft_errors.is_empty());
    }

    #[test]
    fn byte_strings() {
        let d = decode(b"4:spam").unwrap();
        assert_eq!(d.value.as_bytes(), Some(&b"spam"[..]));
        assert_eq!(d.value.span, Span { start: 0, end: 6 });
        assert_eq!(decode(b"0:").unwrap().value.as_bytes(), Some(&b""[..]));
    }

    #[test]
    fn a_lying_length_allocates_nothing() {
        // `99999999:foobar`: 99,999,999 bytes claimed at byte 0, 6 remain after the colon.
        let e = err(b"99999999:foobar");
        assert_eq!(e.offset, 0);
        assert_eq!(
            e.kind,
            DecodeErrorKind::StringTooLong {
                claimed: 99_999_999,
                available: 6
            }
        );
        assert_eq!(
            err(b"18446744073709551615:foobar").kind,
            DecodeErrorKind::LengthOverflow
        );
        assert!(matches!(
            err(b"-10:foobar").kind,
            DecodeErrorKind::Unexpected { found: b'-', .. }
        ));
        assert!(matches!(
            err(b"d9205357638345293824:a4:aaaae").kind,
            DecodeErrorKind::StringTooLong { .. }
        ));
    }

    #[test]
    fn lists_and_dicts_with_spans() {
        // d 3:cow 3:moo 4:spam l 1:a 1:b e e
        //   ^1    ^6    ^11    ^17          (byte offsets)
        let d = decode(b"d3:cow3:moo4:spaml1:a1:bee").unwrap();
        let spam = d.value.get("spam").unwrap();
        assert_eq!(spam.span, Span { start: 17, end: 25 });
        assert_eq!(spam.as_list().unwrap().len(), 2);
        assert!(d.soft_errors.is_empty());
    }

    #[test]
    fn unsorted_and_duplicate_keys_are_soft_errors() {
        assert_eq!(
            decode(b"d2:abi1e2:aai2ee").unwrap().soft_errors,
            vec![SoftError::UnsortedKey { offset: 8 }]
        );
        assert_eq!(decode(b"d2:aai1e1:ai2ee").unwrap().soft_errors.len(), 1); // shorter sorts first
        assert!(decode(b"d1:ai1e2:aai2ee").unwrap().soft_errors.is_empty());
        assert_eq!(
            decode(b"d2:aai1e2:aai2ee").unwrap().soft_errors,
            vec![SoftError::DuplicateKey { offset: 8 }]
        );
    }

    #[test]
    fn dict_errors() {
        assert!(matches!(
            err(b"di5e1:ae").kind,
            DecodeErrorKind::Unexpected { found: b'i', .. }
        ));
        assert_eq!(err(b"d1:ai1e1:be").offset, 10); // key "b" with no value before the 'e'
        assert!(matches!(
            err(b"d1000").kind,
            DecodeErrorKind::UnexpectedEnd { .. }
        ));
        assert!(matches!(
            err(b"e").kind,
            DecodeErrorKind::Unexpected { found: b'e', .. }
        ));
        assert!(matches!(
            err(b"").kind,
            DecodeErrorKind::UnexpectedEnd { .. }
        ));
    }

    #[test]
    fn nesting_is_capped() {
        let deep = [vec![b'l'; 1024], vec![b'e'; 1024]].concat();
        assert_eq!(
            err(&deep).kind,
            DecodeErrorKind::DepthExceeded { limit: 100 }
        );
        let ok = [vec![b'l'; 100], vec![b'e'; 100]].concat();
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn value_count_is_capped() {
        let input = [&b"l"[..], &b"0:".repeat(5119), &b"e"[..]].concat();
        let limits = Limits {
            max_values: 1000,
            ..Limits::default()
        };
        assert!(matches!(
            decode_prefix(&input, limits).unwrap_err().kind,
            DecodeErrorKind::TooManyValues { .. }
        ));
    }

    #[test]
    fn trailing_bytes() {
        assert_eq!(
            err(b"i1ei2e").kind,
            DecodeErrorKind::TrailingData { len: 3 }
        );
        assert_eq!(decode_prefix(b"i1ei2e", Limits::default()).unwrap().end, 3);
    }

    #[test]
    fn every_prefix_of_a_valid_input_fails_cleanly() {
        let input = b"d8:announce3:url4:infod6:lengthi425e4:name4:file6:pieces0:ee";
        for cut in 0..input.len() {
            assert!(
                decode(&input[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
        assert!(decode(input).is_ok());
    }
}
