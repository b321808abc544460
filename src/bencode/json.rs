//! Bencoded values shown as JSON, for the `decode` teaching command (see `docs/cli.md`).
//!
//! Byte strings become JSON strings. Bencode strings are raw bytes, not text: valid UTF-8 runs
//! are written as text, and every byte that is not part of valid UTF-8 is written as its own
//! `\u00XX` escape, so a piece hash shows up as twenty escapes rather than failing.
//! Dictionaries keep their keys in encoded order.

use super::{Item, Value};
use std::fmt::Write;

/// The value as compact, one-line JSON.
pub fn to_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match &value.item {
        Item::Integer(n) => write!(out, "{n}").expect("writing to a String cannot fail"),
        Item::Bytes(bytes) => write_string(bytes, out),
        Item::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Item::Dict(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(bytes: &[u8], out: &mut String) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).expect("String write"),
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            write!(out, "\\u{b:04x}").expect("writing to a String cannot fail");
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::decode;

    fn json(input: &[u8]) -> String {
        to_json(&decode(input).unwrap().value)
    }

    #[test]
    fn the_examples_of_the_cli_contract() {
        assert_eq!(json(b"5:hello"), r#""hello""#);
        assert_eq!(
            json(b"d3:foo3:bar5:helloi52ee"),
            r#"{"foo":"bar","hello":52}"#
        );
        assert_eq!(json(b"l5:helloi52ee"), r#"["hello",52]"#);
        assert_eq!(json(b"i-9223372036854775808e"), "-9223372036854775808");
    }

    #[test]
    fn non_utf8_bytes_are_escaped_one_by_one() {
        assert_eq!(json(b"4:a\xff\x00b"), r#""a\u00ff\u0000b""#);
        assert_eq!(json("2:é".as_bytes()), "\"é\"");
        assert_eq!(json(b"3:\"\\\n"), r#""\"\\\n""#);
    }

    #[test]
    fn keys_stay_in_encoded_order() {
        assert_eq!(json(b"d1:bi1e1:ai2ee"), r#"{"b":1,"a":2}"#);
    }
}
