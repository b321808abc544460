//! libtorrent's bdecode test vectors, replayed against peerwire's decoder.
//!
//! `bencode_vectors/libtorrent_bdecode_vectors.json` in the fixtures directory transcribes
//! libtorrent's `test_bdecode.cpp`: each vector is an input and libtorrent's verdict, `ok`,
//! `soft` (decodes, but flags a quirk such as a leading zero or an unsorted key) or `error`.
//! peerwire follows the same three-way split (see walkthrough §1), with one deliberate
//! difference listed in [`STRICTER`].

pub mod common;

use peerwire::bencode::{Limits, decode, decode_prefix};

/// Vectors whose `input` is a description rather than bytes; each is covered by a unit test
/// in `src/bencode/decode.rs` (`nesting_is_capped`, `value_count_is_capped`) or below.
const DESCRIBED: &[&str] = &[
    "depth_limit",
    "item_limit",
    "overflow_length_prefix2",
    "list_ints",
];

/// Where peerwire is deliberately stricter than libtorrent.
const STRICTER: &[(&str, &str)] = &[(
    "int_overflow",
    "libtorrent parses i18446744073709551615e lazily and reads it as 0; an integer that does not fit in \
     i64 is an error here, so no field can silently become 0",
)];

#[test]
fn libtorrent_bdecode_vectors() {
    let Some(fixtures) = common::fixtures_dir() else {
        return;
    };
    let text =
        std::fs::read_to_string(fixtures.join("bencode_vectors/libtorrent_bdecode_vectors.json"))
            .expect("vectors");
    let mut checked = 0;
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with("{\"test\""))
    {
        let name = json_string(line, "test");
        let expect = json_string(line, "expect");
        if DESCRIBED.contains(&name.as_str()) {
            continue;
        }
        let input: Vec<u8> = json_string(line, "input")
            .chars()
            .map(|c| c as u32 as u8)
            .collect(); // latin-1
        let result = decode(&input);
        let stricter = STRICTER.iter().any(|(n, _)| *n == name);
        match expect.split([' ', ',']).next().unwrap_or_default() {
            "ok" if expect.contains("no soft error") => {
                assert!(
                    result.as_ref().is_ok_and(|d| d.soft_errors.is_empty()),
                    "{name}: {result:?}"
                )
            }
            "ok" => assert!(result.is_ok(), "{name} {input:?}: {result:?}"),
            "soft" => assert!(
                result.as_ref().is_ok_and(|d| !d.soft_errors.is_empty()),
                "{name}: {result:?}"
            ),
            "error" => assert!(result.is_err(), "{name} {input:?} decoded: {result:?}"),
            _ if stricter => assert!(result.is_err(), "{name}: {result:?}"),
            other => panic!("{name}: unknown verdict {other:?} in {expect:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} vectors checked");
}

#[test]
fn described_vectors() {
    // list_ints: l i0e i1e ... i999e e
    let ints: String = (0..1000).map(|i| format!("i{i}e")).collect();
    let list = decode(format!("l{ints}e").as_bytes()).unwrap().value;
    assert_eq!(list.as_list().unwrap().len(), 1000);
    // overflow_length_prefix2: a length far beyond the buffer allocates nothing, fails cleanly.
    assert!(decode_prefix(b"199999999:foobar", Limits::default()).is_err());
}

/// The string value of `"key":"..."` in one line of the vectors file, JSON escapes undone.
fn json_string(line: &str, key: &str) -> String {
    let start = line
        .find(&format!("\"{key}\":\""))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len()
        + 4;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return out,
            '\\' => match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(
                        char::from_u32(u32::from_str_radix(&hex, 16).expect("hex")).expect("char"),
                    );
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    panic!("unterminated {key} in {line}")
}
