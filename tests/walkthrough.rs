//! Keeps `walkthrough.md`, `README.md` and the pages of `docs/` true to `src/`.
//!
//! - Every `[Wn.m]` marker appears in the walkthrough and on exactly one line of `src/`, in a
//!   comment on or just above the line it explains: never in a file's `//!` header, which
//!   explains no line. The walkthrough meets its markers in order ([W3.5] before [W3.6]).
//! - Every code excerpt introduced by ``From `src/...`:`` appears in that file, line for line
//!   (leading and trailing whitespace aside).
//! - Every `src/` or `tests/` path the walkthrough mentions exists, and every name listed after a
//!   file in a **Code:** paragraph (`src/x.rs` (`name`, `Type::method`)) is *defined* in that
//!   file: `fn name`, `struct name`, `const NAME`..., or `fn method` inside `impl Type` (a
//!   mention in a comment does not count).
//! - Every page that places a name in a file (`` `name` (`src/x.rs`) ``, `` `name` in
//!   `src/x.rs` ``) is right, and every `Type::function` a page of `docs/` names is defined.

use std::collections::{BTreeSet, HashMap, HashSet};
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

/// `(file, line number, line)` for every line of `src/` that holds a marker.
fn marker_lines() -> Vec<(PathBuf, usize, String)> {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            if !markers(line).is_empty() {
                found.push((file.clone(), n + 1, line.to_string()));
            }
        }
    }
    found
}

/// A marker sits on the line it explains (or in a comment just above it), so it can be on one
/// line only, and never in a `//!` header, which describes a whole file.
#[test]
fn every_marker_sits_on_one_line_of_code_not_in_a_file_header() {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut wrong = Vec::new();
    for (file, n, line) in marker_lines() {
        let place = format!(
            "{}:{n}",
            file.strip_prefix(repo()).unwrap_or(&file).display()
        );
        if line.trim_start().starts_with("//!") {
            wrong.push(format!(
                "{place}: a marker in the file's //! header: {}",
                line.trim()
            ));
        }
        for marker in markers(&line) {
            if let Some(first) = seen.insert(marker.clone(), place.clone()) {
                wrong.push(format!("{marker} is on two lines: {first} and {place}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `[W3.5]` → `(3, 5)`.
fn marker_number(marker: &str) -> (u32, u32) {
    let label = marker.trim_start_matches("[W").trim_end_matches(']');
    let (chapter, n) = label.split_once('.').expect("n.m");
    (
        chapter.parse().expect("a chapter"),
        n.parse().expect("a number"),
    )
}

/// The reader meets the markers in order: [W3.5] before [W3.6], each in its own chapter.
#[test]
fn the_walkthrough_meets_its_markers_in_order() {
    let mut order = Vec::new();
    for (title, body) in chapters(&walkthrough()) {
        let chapter: u32 = title
            .trim_start_matches("## §")
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{title}: no chapter number"));
        for (at, _) in body.match_indices("[W") {
            let Some(marker) = markers(&body[at..])
                .into_iter()
                .find(|m| body[at..].starts_with(m.as_str()))
            else {
                continue;
            };
            let number = marker_number(&marker);
            assert_eq!(number.0, chapter, "{marker} is in {title}");
            if !order.contains(&number) {
                order.push(number);
            }
        }
    }
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "markers out of order in walkthrough.md");
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
fn every_name_in_a_code_paragraph_is_defined_in_its_file() {
    let text = walkthrough();
    let mut sources = Sources::default();
    let mut checked = 0;
    for paragraph in text.split("\n\n").filter(|p| p.starts_with("**Code:**")) {
        let flat = paragraph.replace('\n', " ");
        // Pieces like: `src/x.rs` (`a`, `B::c`)
        for part in flat.split("`src/").skip(1) {
            let (file, rest) = part.split_once('`').expect("closing backtick");
            let path = format!("src/{file}");
            let defs = sources
                .get(&path)
                .unwrap_or_else(|| panic!("{path}: no such file"));
            let Some(names) = rest
                .trim_start()
                .strip_prefix('(')
                .and_then(|r| r.split(')').next())
            else {
                continue;
            };
            for name in names.split(',').map(|n| n.trim().trim_matches('`')) {
                assert!(
                    defs.define(name),
                    "walkthrough says {path} has `{name}`; it defines no such item \
                     (a mention in a comment does not count)"
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

/// The pages that point at code: the walkthrough, the README, and every page in `docs/`.
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![repo().join("walkthrough.md"), repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            (p, text)
        })
        .collect()
}

/// The text of a `src/` file, or of every `.rs` file under a `src/` directory.
fn source_of(path: &str) -> Option<String> {
    let full = repo().join(path);
    if full.is_dir() {
        let mut files = Vec::new();
        rust_files(&full, &mut files);
        return Some(
            files
                .iter()
                .map(|f| std::fs::read_to_string(f).expect("readable source"))
                .collect(),
        );
    }
    std::fs::read_to_string(full).ok()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `name`, `Type::name` or `module::Type::name`: a name the docs can say is defined somewhere.
fn is_code_name(word: &str) -> bool {
    !word.is_empty()
        && word.split("::").all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(is_ident_char)
        })
}

/// The identifier at the start of `text`.
fn leading_ident(text: &str) -> &str {
    let end = text.find(|c: char| !is_ident_char(c)).unwrap_or(text.len());
    &text[..end]
}

/// The items a line of code defines: `name` for `fn name`, `struct name`, `const NAME`, ...
fn items_defined(line: &str) -> Vec<&str> {
    const KINDS: [&str; 9] = [
        "fn ",
        "struct ",
        "enum ",
        "const ",
        "static ",
        "type ",
        "mod ",
        "trait ",
        "macro_rules! ",
    ];
    let mut found = Vec::new();
    for kind in KINDS {
        for (at, _) in line.match_indices(kind) {
            let starts_a_word = line[..at]
                .chars()
                .next_back()
                .is_none_or(char::is_whitespace);
            let name = leading_ident(&line[at + kind.len()..]);
            if starts_a_word && !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

/// The type an `impl` line is for: `impl<T> Trait for Type<T> {` → `Type`.
fn impl_of(line: &str) -> Option<&str> {
    let header = line.trim().strip_prefix("impl")?;
    let header = header.split('{').next().unwrap_or(header);
    let after_generics = match header.strip_prefix('<') {
        Some(rest) => {
            let mut depth = 1;
            let end = rest.char_indices().find_map(|(i, c)| {
                match c {
                    '<' => depth += 1,
                    '>' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i + 1)
            })?;
            &rest[end..]
        }
        None if header.starts_with(' ') => header,
        None => return None,
    };
    let self_type = after_generics
        .rsplit_once(" for ")
        .map_or(after_generics, |(_, t)| t)
        .trim_start();
    Some(leading_ident(self_type))
}

/// The name an `enum` or `struct` line declares, if it opens a block of variants or fields.
fn type_of(line: &str) -> Option<&str> {
    ["enum ", "struct "].iter().find_map(|kind| {
        let at = line.find(kind)?;
        let starts_a_word = line[..at]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace);
        starts_a_word.then(|| leading_ident(&line[at + kind.len()..]))
    })
}

/// What a piece of source defines: its items, and the members of each type (the `fn`s and
/// `const`s of its `impl` blocks, the variants of an enum, the fields of a struct).
#[derive(Default)]
struct Definitions {
    items: HashSet<String>,
    members: HashMap<String, HashSet<String>>,
}

impl Definitions {
    /// Reads `source` as rustfmt lays it out: a block ends at the `}` indented like its first
    /// line. Comment lines are skipped: a name that appears only in a comment is not defined.
    fn of(source: &str) -> Definitions {
        let lines: Vec<&str> = source
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        let mut defs = Definitions::default();
        for (i, line) in lines.iter().enumerate() {
            defs.items
                .extend(items_defined(line).into_iter().map(str::to_string));
            if !line.trim_end().ends_with('{') {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let close = format!("{}}}", &line[..indent]);
            let Some(len) = lines[i + 1..].iter().position(|l| l.trim_end() == close) else {
                continue;
            };
            let block = &lines[i + 1..i + 1 + len];
            if let Some(owner) = impl_of(line) {
                let members = defs.members.entry(owner.to_string()).or_default();
                for l in block {
                    members.extend(items_defined(l).into_iter().map(str::to_string));
                }
            } else if let Some(owner) = type_of(line) {
                let members = defs.members.entry(owner.to_string()).or_default();
                let inner = format!("{}    ", &line[..indent]);
                for l in block
                    .iter()
                    .filter(|l| l.starts_with(&inner) && !l[inner.len()..].starts_with([' ', '#']))
                {
                    let member = l.trim_start();
                    let member = member
                        .strip_prefix("pub(crate) ")
                        .or_else(|| member.strip_prefix("pub(super) "))
                        .or_else(|| member.strip_prefix("pub "))
                        .unwrap_or(member);
                    members.insert(leading_ident(member).to_string());
                }
            }
        }
        defs
    }

    /// Is `name` defined here? A plain name must be an item; `Type::name` a member of `Type`;
    /// a module path (`session::download`) names an item.
    fn define(&self, name: &str) -> bool {
        let Some((owner, item)) = name.rsplit_once("::") else {
            return self.items.contains(name);
        };
        let owner = owner.rsplit("::").next().unwrap_or(owner);
        if owner.starts_with(|c: char| c.is_ascii_lowercase()) {
            return self.items.contains(item);
        }
        self.members
            .get(owner)
            .is_some_and(|members| members.contains(item))
    }
}

/// The definitions of each `src/` file or directory, read once.
#[derive(Default)]
struct Sources(HashMap<String, Option<Definitions>>);

impl Sources {
    fn get(&mut self, path: &str) -> Option<&Definitions> {
        self.0
            .entry(path.to_string())
            .or_insert_with(|| source_of(path).map(|s| Definitions::of(&s)))
            .as_ref()
    }
}

/// `(name, path)` for every place a page says where a name is defined:
/// `` `name` (`src/x.rs`) ``, `` `a`, `b` (`src/x.rs`) ``, `` `name` in `src/x.rs` ``,
/// `` `src/x.rs` (`a`, `b`) `` and `` (`src/x.rs`, `a`, `b`) ``.
fn located_names(text: &str) -> Vec<(String, String)> {
    let parts: Vec<&str> = text.split('`').collect();
    // Odd parts are code spans; even parts are the text between them, here with its
    // whitespace normalised.
    let between = |i: usize| -> String {
        parts
            .get(i)
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let name_at = |i: usize| parts.get(i).copied().filter(|w| is_code_name(w));
    let mut found = Vec::new();
    for k in (1..parts.len()).step_by(2) {
        let path = parts[k];
        if !path.starts_with("src/") || path.contains(' ') {
            continue;
        }
        let mut add = |name: &str| found.push((name.to_string(), path.to_string()));
        // Names before the path: `a`, `b` (`src/x.rs` or `a` in `src/x.rs`.
        if (between(k - 1) == "(" || between(k - 1) == "in") && k >= 2 {
            let mut j = k - 2;
            while let Some(name) = name_at(j) {
                add(name);
                if j < 2 || between(j - 1) != "," {
                    break;
                }
                j -= 2;
            }
        }
        // Names after the path: `src/x.rs` (`a`, `b`) or (`src/x.rs`, `a`, `b`).
        let after_path =
            between(k + 1) == "(" || (between(k - 1).ends_with('(') && between(k + 1) == ",");
        if after_path {
            let mut j = k + 2;
            while let Some(name) = name_at(j) {
                add(name);
                if between(j + 1) != "," {
                    break;
                }
                j += 2;
            }
        }
    }
    found
}

/// Every page that says where a function or type is (`` `name` (`src/x.rs`) `` and the like)
/// must be right: a name that moved or was renamed fails here, with the page that lags.
#[test]
fn every_name_the_pages_place_in_a_file_is_defined_there() {
    let mut sources = Sources::default();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (page, text) in pages() {
        for (name, path) in located_names(&text) {
            let Some(defs) = sources.get(&path) else {
                wrong.push(format!("{}: {path} does not exist", page.display()));
                continue;
            };
            if !defs.define(&name) {
                wrong.push(format!(
                    "{}: `{name}` is not defined in {path}",
                    page.display()
                ));
            }
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked >= 50, "only {checked} placed names checked");
}

/// Every `Type::function` (or `module::Type::function`) a page in `docs/` names must be defined
/// in `src/`: an `fn` in an `impl` of that type, a variant, a field, or an item of that module.
#[test]
fn docs_name_real_code() {
    let defs = Definitions::of(&source_of("src/").expect("src/"));
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (page, text) in pages() {
        if !page.starts_with(repo().join("docs")) {
            continue;
        }
        for word in text.split('`').skip(1).step_by(2) {
            let Some((owner, _)) = word.split_once("::") else {
                continue;
            };
            let external = ["std", "core", "crossbeam_channel", "peerwire"].contains(&owner);
            if external || !is_code_name(word) {
                continue;
            }
            if !defs.define(word) {
                wrong.push(format!(
                    "{} names `{word}`, which src/ does not define",
                    page.display()
                ));
            }
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(checked >= 10, "only {checked} names checked in docs/");
}
