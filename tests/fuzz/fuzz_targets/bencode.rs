//! Fuzz target: the bencode decoder (`bencode::decode` and `bencode::decode_prefix`).
//!
//! Beyond "no panic" it checks one round trip: whatever `decode` accepts, `encode` writes back
//! as bytes that decode again to the same value (spans aside: they point into different
//! inputs). `encode` sorts keys and drops leading zeros, so the only soft error left is a
//! duplicate key (dictionaries keep their duplicates, by design). When the input had no soft
//! errors at all, it already was canonical, so `encode` must give back the input itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::bencode::{self, Item, Limits, SoftError, Value};

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = bencode::decode(data) {
        let encoded = bencode::encode(&decoded.value);
        let again = bencode::decode(&encoded).expect("encode's output decodes");
        assert!(
            same_item(&decoded.value, &again.value),
            "round trip changed the value"
        );
        let only_duplicates = again
            .soft_errors
            .iter()
            .all(|e| matches!(e, SoftError::DuplicateKey { .. }));
        assert!(
            only_duplicates,
            "encode wrote unsorted keys or leading zeros"
        );
        if decoded.soft_errors.is_empty() {
            assert_eq!(encoded, data, "canonical input did not encode to itself");
        }
    }
    // The prefix decoder, with small limits so the depth and count caps are exercised too.
    let limits = Limits {
        max_depth: 8,
        max_values: 64,
    };
    if let Ok(decoded) = bencode::decode_prefix(data, limits) {
        assert!(decoded.end <= data.len());
    }
});

/// Equal values, ignoring the byte spans.
fn same_item(a: &Value, b: &Value) -> bool {
    match (&a.item, &b.item) {
        (Item::Integer(x), Item::Integer(y)) => x == y,
        (Item::Bytes(x), Item::Bytes(y)) => x == y,
        (Item::List(x), Item::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_item(p, q))
        }
        (Item::Dict(x), Item::Dict(y)) => {
            // `encode` sorts the keys (stably), so compare against the sorted original.
            let mut sorted: Vec<_> = x.iter().collect();
            sorted.sort_by(|p, q| p.0.cmp(&q.0));
            sorted.len() == y.len()
                && sorted
                    .iter()
                    .zip(y)
                    .all(|(p, q)| p.0 == q.0 && same_item(&p.1, &q.1))
        }
        _ => false,
    }
}
