//! The repository stands alone: a student who clones it gets every document it points to.
//!
//! peerwire was written beside notes that are not part of the repository: a directory of
//! specifications and fixtures next to it, and private documents on style, on real clients and
//! on the command line, and a list of numbered work items. None of them ships, so no file of
//! the repository (the code, the tests, the docs, the walkthrough, the README) may send a reader
//! to them. Each fact they held is written out where it is used; the command-line contract is
//! `docs/cli.md`; BEPs are cited by number and title.
//!
//! One reference stays, on purpose: `common::fixtures_dir` looks for the fixtures directory
//! (libtorrent's test torrents and bdecode vectors, too large and not ours to ship) at
//! `$PEERWIRE_FIXTURES`, else at the place it is kept next to the repository. That line of code
//! is allowed; its comments and every other file speak of "the fixtures directory".

use std::path::{Path, PathBuf};

/// What may not be named, in any case of letters, and why. The needles are assembled from
/// pieces so that this file does not contain them.
const FORBIDDEN: &[(&str, &str)] = &[
    (
        concat!("sha", "red/"),
        "a path into the directory beside the repository",
    ),
    (
        concat!("../", "sha", "red"),
        "a path into the directory beside the repository",
    ),
    (
        concat!("spe", "cs/"),
        "the specifications outside the repository: cite the BEP by number and title",
    ),
    (
        concat!("inter", "op.md"),
        "the private notes on real clients: state the fact",
    ),
    (
        concat!("sty", "le.md"),
        "the private style notes: docs/design.md, or the rule itself",
    ),
    (
        concat!("develo", "pers.md"),
        "the private brief the project was started from: state the rule itself",
    ),
];

/// The private command-line notes, named in capitals; the repository's own page is the
/// lower-case `docs/cli.md`, which may be named.
const PRIVATE_CLI_NOTES: &str = concat!("CL", "I.md");

/// The fixtures lookup in `tests/common/fixtures.rs`, the one line allowed to name that directory.
const FIXTURES_LOOKUP: (&str, &str) = (
    "tests/common/fixtures.rs",
    concat!(".join(\"../", "sha", "red/fixtures\")"),
);

/// The files a reader of the repository reads: every text file under `src/`, `docs/` and
/// `tests/` (not build output, not the fuzz seeds, which are bytes), the walkthrough and the
/// README.
fn files_to_check(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("walkthrough.md"), root.join("README.md")];
    for dir in ["src", "docs", "tests"] {
        walk(&root.join(dir), &mut files);
    }
    files
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "target" | "corpus") {
                walk(&path, files);
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("rs" | "md" | "toml" | "py" | "sh")
        ) {
            files.push(path);
        }
    }
}

/// Names of numbered work items on one line: a word that is a capital P and digits (also before
/// a dot and a sub-number), or the word "issue" and a number, with or without `#` or a P.
fn work_item_names(line: &str) -> Vec<String> {
    let mut found: Vec<String> = line
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|word| {
            word.strip_prefix('P')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect();
    let lower = line.to_ascii_lowercase();
    for (at, _) in lower.match_indices("issue") {
        let starts_a_word = !lower[..at].ends_with(|c: char| c.is_ascii_alphanumeric());
        let after = lower[at + "issue".len()..].trim_start();
        let number = after.trim_start_matches('#').trim_start_matches('p');
        if starts_a_word && number.starts_with(|c: char| c.is_ascii_digit()) {
            found.push(line[at..].chars().take(12).collect());
        }
    }
    found
}

/// Every reference to something outside the repository, as `path:line: what (why)`.
fn outside_references(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for path in files_to_check(root) {
        let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy();
        let relative = relative.replace('\\', "/");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // not UTF-8: not text a reader reads
        };
        for (n, line) in text.lines().enumerate() {
            let allowed = relative == FIXTURES_LOOKUP.0 && line.contains(FIXTURES_LOOKUP.1);
            let lower = line.to_lowercase();
            let mut hits: Vec<String> = FORBIDDEN
                .iter()
                .filter(|(needle, _)| lower.contains(needle) && !allowed)
                .map(|(needle, why)| format!("`{needle}` ({why})"))
                .collect();
            if line.contains(PRIVATE_CLI_NOTES) {
                hits.push(format!(
                    "`{PRIVATE_CLI_NOTES}` (the private notes: docs/cli.md)"
                ));
            }
            hits.extend(
                work_item_names(line)
                    .into_iter()
                    .map(|name| format!("`{name}` (a work item's number: say what it is about)")),
            );
            if !hits.is_empty() {
                found.push(format!("{relative}:{}: {}", n + 1, hits.join("; ")));
            }
        }
    }
    found
}

#[test]
fn no_file_refers_to_anything_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = outside_references(root);
    assert!(
        found.is_empty(),
        "the repository must stand alone; these lines point outside it:\n{}",
        found.join("\n")
    );
}

/// The fixtures lookup is still where the allowance above expects it, so that the allowance
/// does not outlive the code it was made for.
#[test]
fn the_fixtures_lookup_is_the_one_allowed_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let common = std::fs::read_to_string(root.join(FIXTURES_LOOKUP.0)).unwrap();
    assert_eq!(
        common.matches(FIXTURES_LOOKUP.1).count(),
        1,
        "{} should look for the fixtures directory exactly once",
        FIXTURES_LOOKUP.0
    );
}

#[test]
fn work_item_names_are_recognised_and_ordinary_text_is_not() {
    // Assembled from pieces, or this file would hold what it forbids.
    for line in [
        concat!("(issue ", "P", "6, walkthrough §9)"),
        concat!("Merge main (", "P", "8.1: close, honest logs)"),
        concat!("see issue ", "#12"),
        concat!("Issue ", "4 says"),
    ] {
        assert!(!work_item_names(line).is_empty(), "{line}");
    }
    for line in [
        "BEP 3, The BitTorrent Protocol Specification",
        "a P2P protocol; -PW0001- is our prefix; let p1 = 3;",
        "issues a request",
        "the issue is the peer",
        "tissue 3",
    ] {
        assert_eq!(work_item_names(line), Vec::<String>::new(), "{line}");
    }
}
