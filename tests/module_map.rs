//! Keeps the module map in `src/lib.rs` true: every arrow points down the table.
//!
//! `src/lib.rs` lists the crate's modules top to bottom (`//! | [`cli`] | ... |`); a module may
//! use only modules listed below it. This test reads that table, then every `.rs` file under
//! `src/`, finds each path that leaves the file's top-level module — `use crate::peer::...`,
//! `crate::piece::BLOCK_LEN` inside an expression, `use crate::{peer, wire::Message}`, or a
//! `super::super::x` that climbs to the crate root — and fails, naming the file, the line and
//! both modules, if one points up the table. Paths within one module (`src/peer/thread.rs`
//! using `crate::peer::connection`) are that module's own business.
//!
//! Comments and string literals are blanked out before the search: a doc link or a log message
//! that mentions `crate::x` is not an import. `src/main.rs` is the binary, above every module:
//! it reaches the library as `peerwire::`, never `crate::`, so it is not checked.
//!
//! The README's module map must list the same modules in the same order.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
}

/// The modules of the table in `src/lib.rs`'s doc, top to bottom: rows `//! | [`name`] | ...`.
fn table_order(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| line.strip_prefix("//! | [`"))
        .filter_map(|rest| rest.split_once("`]"))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The modules `src/lib.rs` declares: `pub mod name;` or `mod name;`.
fn declared_modules(lib: &str) -> Vec<String> {
    lib.lines()
        .map(str::trim)
        .filter_map(|l| {
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))
        })
        .filter_map(|rest| rest.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

/// Where a file under `src/` sits: its top-level module (`src/peer/thread.rs` → `peer`) and how
/// many modules deep its own code is (`src/magnet.rs` and `src/peer/mod.rs` → 1,
/// `src/peer/thread.rs` → 2). `None` for `src/lib.rs` and `src/main.rs`, the two roots.
fn place_of(file: &Path) -> Option<(String, usize)> {
    let relative = file.strip_prefix(repo().join("src")).ok()?;
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    match parts.first()?.as_str() {
        "lib" | "main" if parts.len() == 1 => None,
        top => Some((top.to_string(), parts.len())),
    }
}

/// `source` with every comment and string or character literal replaced by spaces (newlines
/// kept, so line numbers still count), leaving only code.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out: Vec<char> = chars.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in out.iter_mut().take(to.min(chars.len())).skip(from) {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        match (at(i), at(i + 1)) {
            ('/', '/') => {
                while i < chars.len() && at(i) != '\n' {
                    i += 1;
                }
            }
            ('/', '*') => {
                // Block comments nest in Rust.
                let mut depth = 0;
                loop {
                    match (at(i), at(i + 1)) {
                        ('/', '*') => (depth, i) = (depth + 1, i + 2),
                        ('*', '/') => (depth, i) = (depth - 1, i + 2),
                        ('\0', _) => break,
                        _ => i += 1,
                    }
                    if depth == 0 {
                        break;
                    }
                }
            }
            ('r', '"' | '#') if start == 0 || !is_ident(at(start - 1)) || at(start - 1) == 'b' => {
                // A raw string r"..." or r#"..."#: it ends at a quote and as many hashes.
                let mut hashes = 0;
                i += 1;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                if at(i) != '"' {
                    i = start + 1; // `r#ident`, a raw identifier: code
                    continue;
                }
                i += 1;
                while i < chars.len() && !(at(i) == '"' && (1..=hashes).all(|h| at(i + h) == '#')) {
                    i += 1;
                }
                i += 1 + hashes;
            }
            ('"', _) => {
                i += 1;
                while i < chars.len() && at(i) != '"' {
                    i += if at(i) == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            ('\'', '\\') => {
                // '\n', '\'', '\u{e9}': the backslash, the escaped character, then up to
                // the closing quote.
                i += 3;
                while i < chars.len() && at(i) != '\'' {
                    i += 1;
                }
                i += 1;
            }
            ('\'', _) if at(i + 2) == '\'' => i += 3, // 'a', '"'
            _ => {
                i += 1; // code, a lifetime 'a included
                continue;
            }
        }
        blank(&mut out, start, i);
    }
    out.into_iter().collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The word that ends just before `end` (spaces skipped), and where it starts.
fn word_before(chars: &[char], end: usize) -> (String, usize) {
    let mut stop = end;
    while stop > 0 && chars[stop - 1].is_whitespace() {
        stop -= 1;
    }
    let mut start = stop;
    while start > 0 && is_ident(chars[start - 1]) {
        start -= 1;
    }
    (chars[start..stop].iter().collect(), start)
}

/// For each character of `code`, how many inline `mod name { ... }` blocks it is inside.
fn inline_module_depths(chars: &[char]) -> Vec<usize> {
    let mut depths = Vec::with_capacity(chars.len());
    let mut braces = 0;
    let mut open_modules: Vec<usize> = Vec::new(); // the brace depth each one opened at
    for (i, &c) in chars.iter().enumerate() {
        if c == '{' {
            let (name, name_start) = word_before(chars, i);
            let (keyword, _) = word_before(chars, name_start);
            if !name.is_empty() && keyword == "mod" {
                open_modules.push(braces);
            }
            braces += 1;
        } else if c == '}' {
            braces = usize::saturating_sub(braces, 1);
            if open_modules.last() == Some(&braces) {
                open_modules.pop();
            }
        }
        depths.push(open_modules.len());
    }
    depths
}

/// The top-level modules `code` (comments and strings blanked) reaches by a path from the
/// crate root, each with its line (from 1). `depth` is how many modules deep the file's own
/// code is, so that enough `super::` reach the root too.
fn crate_paths(code: &str, depth: usize) -> Vec<(usize, String)> {
    let chars: Vec<char> = code.chars().collect();
    let inline = inline_module_depths(&chars);
    let word_at = |i: usize, word: &str| {
        let starts = i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == '$');
        starts && chars[i..].iter().take(word.len()).copied().eq(word.chars())
    };
    let line_of = |i: usize| 1 + chars[..i].iter().filter(|&&c| c == '\n').count();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        // If a path from the crate root starts at `i`: where its first segment starts.
        let mut rest = None;
        if word_at(i, "crate::") {
            rest = Some(i + "crate::".len());
        } else if word_at(i, "super::") && (i < 2 || chars[i - 2..i] != [':', ':']) {
            let mut end = i;
            let mut climbs = 0;
            while chars[end..].starts_with(&['s', 'u', 'p', 'e', 'r', ':', ':']) {
                end += "super::".len();
                climbs += 1;
            }
            if climbs == depth + inline[i] {
                rest = Some(end);
            }
            i = end - 1; // the chain is read: do not count its inner `super::` again
        }
        if let Some(start) = rest {
            for name in first_segments(&chars[start..]) {
                found.push((line_of(i), name));
            }
        }
        i += 1;
    }
    found
}

/// The first segment of a path (`peer` in `peer::thread::X`), or of each path in a group
/// (`peer` and `wire` in `{peer::X, wire::{self, Y}}`). `self` and `*` name no module.
fn first_segments(path: &[char]) -> Vec<String> {
    let leading_word = |text: &[char]| -> String {
        let text = text.iter().skip_while(|c| c.is_whitespace());
        text.take_while(|c| is_ident(**c)).collect()
    };
    let items: Vec<&[char]> = match path.first() {
        Some('{') => {
            // Split the group at its own commas, not those of a group inside it.
            let mut items = Vec::new();
            let (mut nesting, mut item_start) = (0, 1);
            for (i, &c) in path.iter().enumerate().skip(1) {
                match c {
                    '{' => nesting += 1,
                    '}' if nesting > 0 => nesting -= 1,
                    '}' => {
                        items.push(&path[item_start..i]);
                        break;
                    }
                    ',' if nesting == 0 => {
                        items.push(&path[item_start..i]);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            items
        }
        _ => vec![path],
    };
    items
        .into_iter()
        .map(leading_word)
        .filter(|name| !name.is_empty() && name != "self")
        .collect()
}

/// Every upward import in `src/`, as one line each; empty when the map is true.
fn upward_imports(order: &[String]) -> Vec<String> {
    let rank = |module: &str| order.iter().position(|m| m == module);
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let Some((module, depth)) = place_of(file) else {
            continue;
        };
        let shown = file
            .strip_prefix(repo())
            .unwrap_or(file)
            .display()
            .to_string();
        let Some(own_rank) = rank(&module) else {
            problems.push(format!(
                "{shown}: module `{module}` is not in the table in src/lib.rs"
            ));
            continue;
        };
        for (line, used) in crate_paths(&code_only(&read(file)), depth) {
            if used == module {
                continue;
            }
            match rank(&used) {
                None => problems.push(format!(
                    "{shown}:{line}: `{module}` uses `crate::{used}`, which is not in the table \
                     in src/lib.rs"
                )),
                Some(used_rank) if used_rank < own_rank => problems.push(format!(
                    "{shown}:{line}: `{module}` uses `crate::{used}`, but `{used}` is listed \
                     above `{module}` in src/lib.rs: an arrow pointing up (list `{used}` below \
                     `{module}`, or move the code it needs down)"
                )),
                Some(_) => {}
            }
        }
    }
    problems
}

#[test]
fn the_table_lists_every_module_once() {
    let lib = read(&repo().join("src/lib.rs"));
    let order = table_order(&lib);
    let mut declared = declared_modules(&lib);
    assert!(
        order.len() >= 15,
        "expected the module table in src/lib.rs's doc, found {order:?}"
    );
    let mut listed = order.clone();
    listed.sort();
    let repeated: Vec<_> = listed.windows(2).filter(|w| w[0] == w[1]).collect();
    assert!(
        repeated.is_empty(),
        "listed twice in src/lib.rs: {repeated:?}"
    );
    declared.sort();
    assert_eq!(
        listed, declared,
        "the table in src/lib.rs (left) and its `pub mod` lines (right) name different modules"
    );
}

#[test]
fn every_import_points_down_the_table() {
    let order = table_order(&read(&repo().join("src/lib.rs")));
    let problems = upward_imports(&order);
    assert!(
        problems.is_empty(),
        "the module map in src/lib.rs is not true, top to bottom {order:?}:\n{}",
        problems.join("\n")
    );
}

/// The checker itself: it must see every kind of path, and nothing in comments or strings.
#[test]
fn the_checker_finds_paths_in_every_form() {
    let source = r##"
//! A doc that says crate::doc is not an import.
use crate::alpha::Thing;
use crate::{beta, gamma::{self, X}, self as root, delta::Y as Z};
fn f() -> usize {
    let s = "crate::in_a_string"; let r = r#"crate::raw"#; let c = ('"', '\'', "crate::x");
    /* crate::block /* nested crate::deeper */ still a comment */
    crate::epsilon::LEN + super::zeta::N
}
mod tests {
    use super::*;
    use super::super::eta::E;
}
"##;
    let found: Vec<(usize, String)> = crate_paths(&code_only(source), 1);
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names,
        ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]
    );
    assert_eq!(found[0].0, 3, "line numbers count from 1");
    assert_eq!(found.last().map(|f| f.0), Some(12));
    // Two modules deep (`src/peer/thread.rs`), one `super::` stays inside `peer`.
    let inside = crate_paths(&code_only("use super::connection::C;"), 2);
    assert!(inside.is_empty(), "{inside:?}");
    let up = crate_paths(&code_only("use super::super::wire::Message;"), 2);
    assert_eq!(up, [(1, "wire".to_string())]);
}

/// The map in `README.md` (section "The module map") is the same table in the same order.
#[test]
fn the_readme_map_has_the_same_order() {
    let order = table_order(&read(&repo().join("src/lib.rs")));
    let readme = read(&repo().join("README.md"));
    let section = readme
        .split("\n## The module map")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README.md has a section \"The module map\"");
    let mut in_readme = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `src/")) {
        let path = row.trim_start_matches("| `src/");
        let path = path.split('`').next().unwrap_or_default();
        let module = path
            .trim_end_matches('/')
            .trim_end_matches(".rs")
            .to_string();
        if module != "main" {
            in_readme.push(module);
        }
    }
    assert_eq!(
        in_readme, order,
        "README.md's module map (left) and src/lib.rs's table (right) differ"
    );
}
