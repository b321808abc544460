//! Encoding [`Value`]s into bencoded bytes — walkthrough §1.
//!
//! The inverse of `decode`, used when peerwire *writes* bencoding: the `.torrent` files of
//! `create`, and later tracker and extension messages. BEP 3 requires dictionary keys
//! "sorted as raw strings, not alphanumerics", so [`encode`] sorts them; everything else is
//! written exactly as given.

use super::{Item, Value};

/// Encodes `value` as canonical bencoding (dictionary keys sorted by their raw bytes).
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match &value.item {
        Item::Integer(n) => out.extend_from_slice(format!("i{n}e").as_bytes()),
        Item::Bytes(bytes) => write_bytes(bytes, out),
        Item::List(items) => {
            out.push(b'l');
            for item in items {
                write_value(item, out);
            }
            out.push(b'e');
        }
        Item::Dict(entries) => {
            let mut sorted: Vec<&(Vec<u8>, Value)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0)); // [W1.6] as raw bytes (BEP 3)
            out.push(b'd');
            for (key, item) in sorted {
                write_bytes(key, out);
                write_value(item, out);
            }
            out.push(b'e');
        }
    }
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::decode;

    #[test]
    fn encodes_each_kind() {
        assert_eq!(encode(&Value::integer(-3)), b"i-3e");
        assert_eq!(encode(&Value::bytes("spam")), b"4:spam");
        assert_eq!(
            encode(&Value::list(vec![Value::integer(1), Value::bytes("")])),
            b"li1e0:e"
        );
    }

    #[test]
    fn sorts_dictionary_keys_as_raw_bytes() {
        // "Z" (0x5a) sorts before "a" (0x61); "a" before "aa".
        let v = Value::dict(vec![
            ("aa", Value::integer(2)),
            ("a", Value::integer(1)),
            ("Z", Value::integer(0)),
        ]);
        assert_eq!(encode(&v), b"d1:Zi0e1:ai1e2:aai2ee");
    }

    #[test]
    fn canonical_input_round_trips_byte_for_byte() {
        let input = b"d4:infod6:lengthi425e4:name4:file12:piece lengthi16384eee";
        assert_eq!(encode(&decode(input).unwrap().value), input);
    }
}
