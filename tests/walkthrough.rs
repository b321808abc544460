//! Keeps `walkthrough.md` true to `src/`.
//!
//! - Every `[Wn.m]` marker appears both in the walkthrough and in a comment in `src/`.
//! - Every code excerpt introduced by ``From `src/...`:`` appears in that file, line for line
//!   (leading and trailing whitespace aside).
//! - Every `src/` or `tests/` path the walkthrough mentions exists, and every name listed after a
//!   file in a **Code:** paragraph (`src/x.rs` (`name`, `Type::method`)) appears in that file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn walkthrough() -> String {
    std::fs::read_to_string(repo().join("walkthrough.md")).expect("walkthrough.md")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// All `[Wn.m]` markers in `text`.
fn markers(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (start, _) in text.match_indices("[W") {
        let rest = &text[start + 2..];
        let Some(end) = rest.find(']') else { continue };
        let label = &rest[..end];
        let numeric = label.split('.').count() == 2
            && label
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if numeric {
            found.insert(format!("[W{label}]"));
        }
    }
    found
}

#[test]
fn every_marker_is_on_both_sides() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let in_code: BTreeSet<String> = files
        .iter()
        .flat_map(|f| markers(&std::fs::read_to_string(f).unwrap()))
        .collect();
    let in_text = markers(&walkthrough());
    let only_text: Vec<_> = in_text.difference(&in_code).collect();
    let only_code: Vec<_> = in_code.difference(&in_text).collect();
    assert!(
        only_text.is_empty(),
        "markers in walkthrough.md but not in src/: {only_text:?}"
    );
    assert!(
        only_code.is_empty(),
        "markers in src/ but not in walkthrough.md: {only_code:?}"
    );
    assert!(
        in_text.len() >= 14,
        "expected the markers of §1 and §2, found {in_text:?}"
    );
}

/// `(file, lines)` for each excerpt introduced by a line ``From `path`:``.
fn quoted_excerpts(text: &str) -> Vec<(String, Vec<String>)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut excerpts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        let Some(path) = trimmed
            .strip_prefix("From `")
            .and_then(|r| r.strip_suffix("`:"))
        else {
            continue;
        };
        let fence = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "excerpt of {path} at line {} has no code fence after it",
            i + 1
        );
        let body = lines[i + 2..]
            .iter()
            .take_while(|l| l.trim() != "```")
            .map(|l| l.trim().to_string());
        excerpts.push((path.to_string(), body.filter(|l| !l.is_empty()).collect()));
    }
    excerpts
}

/// The chapters (`## §n Title`) with their text, in order.
fn chapters(text: &str) -> Vec<(String, String)> {
    let starts: Vec<usize> = text.match_indices("\n## §").map(|(i, _)| i + 1).collect();
    let mut ends: Vec<usize> = starts.iter().skip(1).copied().collect();
    ends.push(text.find("\n## Glossary").unwrap_or(text.len()));
    starts
        .iter()
        .zip(ends)
        .map(|(&start, end)| {
            let title = text[start..].lines().next().unwrap_or_default().to_string();
            (title, text[start..end].to_string())
        })
        .collect()
}

#[test]
fn every_chapter_has_a_marker_code_and_try_it() {
    let text = walkthrough();
    let chapters = chapters(&text);
    assert!(chapters.len() >= 14, "{} chapters", chapters.len());
    for (title, body) in &chapters {
        assert!(!markers(body).is_empty(), "{title}: no [Wn.m] marker");
        assert!(
            body.contains("**Code:**"),
            "{title}: no **Code:** paragraph"
        );
        assert!(
            body.contains("**Try it:**"),
            "{title}: no **Try it:** paragraph"
        );
    }
    assert!(text.contains("\n## Glossary"), "no glossary");
}

#[test]
fn every_quoted_excerpt_is_still_in_its_file() {
    let excerpts = quoted_excerpts(&walkthrough());
    assert!(
        excerpts.len() >= 3,
        "expected quoted excerpts, found {}",
        excerpts.len()
    );
    for (path, quote) in excerpts {
        let source =
            std::fs::read_to_string(repo().join(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let file_lines: Vec<&str> = source
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let found = file_lines
            .windows(quote.len())
            .any(|w| w.iter().zip(&quote).all(|(a, b)| a == b));
        assert!(
            found,
            "walkthrough quotes lines that are no longer in {path}:\n{}",
            quote.join("\n")
        );
    }
}

/// Backticked words of the walkthrough that look like repository paths.
fn mentioned_paths(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| (w.starts_with("src/") || w.starts_with("tests/")) && !w.contains(' '))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_mentioned_path_exists() {
    for path in mentioned_paths(&walkthrough()) {
        assert!(
            repo().join(&path).exists(),
            "walkthrough.md mentions {path}, which does not exist"
        );
    }
}

#[test]
fn every_name_in_a_code_paragraph_is_in_its_file() {
    let text = walkthrough();
    let mut checked = 0;
    for paragraph in text.split("\n\n").filter(|p| p.starts_with("**Code:**")) {
        let flat = paragraph.replace('\n', " ");
        // Pieces like: `src/x.rs` (`a`, `B::c`)
        for part in flat.split("`src/").skip(1) {
            let (file, rest) = part.split_once('`').expect("closing backtick");
            let path = format!("src/{file}");
            let source = std::fs::read_to_string(repo().join(&path))
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            let Some(names) = rest
                .trim_start()
                .strip_prefix('(')
                .and_then(|r| r.split(')').next())
            else {
                continue;
            };
            for name in names.split(',').map(|n| n.trim().trim_matches('`')) {
                let last = name.rsplit("::").next().unwrap_or(name);
                assert!(
                    source.contains(last),
                    "walkthrough says {path} has `{name}`, it does not"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} names checked in Code: paragraphs"
    );
}

/// Every `Type::function` (or `module::Type::function`) a page in `docs/` names must exist in
/// `src/`: a `fn`, a type, a constant, a module, or a variant.
#[test]
fn docs_name_real_code() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let source: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let mut checked = 0;
    for page in std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
    {
        let text = std::fs::read_to_string(&page).unwrap();
        for word in text.split('`').skip(1).step_by(2) {
            // `Type::function` or a path `module::Type::function`: the last name is checked.
            let Some((owner, item)) = word.rsplit_once("::") else {
                continue;
            };
            let owner = owner.split("::").next().unwrap_or(owner);
            let external = ["std", "crossbeam_channel"].contains(&owner);
            if external
                || owner.contains(' ')
                || item.contains([' ', '(', '{', '<'])
                || item.is_empty()
            {
                continue;
            }
            let found = ["fn", "struct", "enum", "const", "type", "mod"]
                .iter()
                .any(|kind| source.contains(&format!("{kind} {item}")))
                || source.contains(&format!("    {item} {{"))
                || source.contains(&format!("    {item}("));
            assert!(
                found || source.contains(&format!("    {item},")),
                "{} names `{word}`, which is not in src/",
                page.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} names checked in docs/");
}
