//! Every helper in `tests/common/` is used by some test.
//!
//! The test files declare `pub mod common;` (`tests/common/mod.rs` says why): the dead-code
//! lint then stays quiet about the helpers one test binary does not use, and so also about a
//! helper that no test uses at all. This test checks that instead: every `pub fn`, `struct`,
//! `enum` and `const` under `tests/common/` is named somewhere else in `tests/`.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read tests/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The name `pub fn name(` (or `struct`, `enum`, `const`) declares on `line`, if any.
fn declared(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("pub ")?;
    let rest = ["fn ", "struct ", "enum ", "const "]
        .iter()
        .find_map(|kind| rest.strip_prefix(kind))?;
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// How many times `name` occurs in `text` as a whole word.
fn occurrences(text: &str, name: &str) -> usize {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(name)
        .filter(|(at, _)| {
            !word(text[..*at].chars().next_back()) && !word(text[at + name.len()..].chars().next())
        })
        .count()
}

#[test]
fn every_common_helper_is_used() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = Vec::new();
    rust_files(&tests, &mut files);
    let sources: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("a test source");
            (f, text)
        })
        .collect();
    let everything: String = sources.iter().map(|(_, text)| text.as_str()).collect();
    let mut checked = 0;
    for (file, text) in &sources {
        if !file.starts_with(tests.join("common")) {
            continue;
        }
        for name in text.lines().filter_map(declared) {
            // The declaration itself is one occurrence; a use is another.
            assert!(
                occurrences(&everything, name) >= 2,
                "{} declares `{name}`, which no test uses: remove it",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 30,
        "only {checked} helpers found: did the layout change?"
    );
}

#[test]
fn declarations_and_words_are_recognised() {
    assert_eq!(declared("    pub fn wait_for(&self) {"), Some("wait_for"));
    assert_eq!(declared("pub struct Killed(pub Child);"), Some("Killed"));
    assert_eq!(declared("fn private() {}"), None);
    assert_eq!(
        occurrences("run_ok(x); run_ok_now(); a.run_ok", "run_ok"),
        2
    );
}
