//! Making a torrent's file paths safe for the disk — walkthrough §2.
//!
//! A `.torrent` names its files with lists of path elements (`["docs", "a.txt"]`), and a
//! hostile torrent can put anything there: `".."`, `"/etc"`, `"a/../../b"`, control bytes,
//! invalid UTF-8, two files with the same name. peerwire never rejects such a torrent for its
//! names; like libtorrent it *sanitises* them, so the same torrent gets the same files in
//! both clients. The rules, applied to each element ([`sanitize_element`]):
//!
//! ```text
//!   '/', '\' and NUL                 dropped     "/foobar"       -> "foobar"
//!   control bytes, invalid UTF-8     '_'         "a\x01b"        -> "a_b"
//!   bidi overrides (U+202A..E, ...)  dropped     (they disguise "exe" as "txt")
//!   "", ".", ".." (after the above)  "_"         ".."            -> "_"
//!   longer than 240 bytes            cut, keeping a short extension
//! ```
//!
//! The result has no separators, is never empty, `.` or `..`, so joining elements under the
//! download directory can never leave it. Then [`resolve_collisions`] renames files whose
//! sanitised paths collide (`foo/bar.txt` twice → `foo/bar.1.txt`), case-insensitively, as
//! libtorrent does, and gives up after 1,000 attempts.

use super::MetainfoError;
use std::collections::HashSet;

/// Longest element we keep, in bytes (libtorrent's limit; most file systems allow 255).
const MAX_ELEMENT_BYTES: usize = 240;
/// Most rename attempts for colliding names in one torrent before it is refused.
pub const MAX_DUPLICATE_ATTEMPTS: usize = 1000;

/// Unicode direction overrides: `"exe.txt\u{202e}"` displays as something else entirely.
const BIDI_CONTROLS: [char; 7] = [
    '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{200e}', '\u{200f}',
];

/// Sanitises one path element into a safe, non-empty file or directory name. [W2.4]
pub fn sanitize_element(raw: &[u8]) -> String {
    let cleaned = clean(raw);
    match cleaned.as_str() {
        "" | "." | ".." => "_".to_string(),
        _ => cleaned,
    }
}

/// Sanitises the torrent's `name`. Unlike a path element, a name that sanitises to nothing
/// (`".."`) is not replaced by `_`: the caller decides (libtorrent names a multi-file
/// torrent's directory by its info hash, and refuses a single file with no usable name).
pub fn sanitize_name(raw: &[u8]) -> Option<String> {
    let cleaned = clean(raw);
    match cleaned.as_str() {
        "" | "." | ".." => None,
        _ => Some(cleaned),
    }
}

/// Drops separators and direction overrides, replaces control bytes and invalid UTF-8.
fn clean(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '/' | '\\' | '\0' => {}
                c if BIDI_CONTROLS.contains(&c) => {}
                c if (c as u32) < 0x20 || c == '\u{7f}' => out.push('_'),
                c => out.push(c),
            }
        }
        // Each invalid sequence becomes one '_' (as `utf8_chunks` splits them).
        if !chunk.invalid().is_empty() {
            out.push('_');
        }
    }
    truncate_keeping_extension(out)
}

/// Cuts an element to [`MAX_ELEMENT_BYTES`], keeping an extension of up to 9 bytes.
fn truncate_keeping_extension(name: String) -> String {
    if name.len() <= MAX_ELEMENT_BYTES {
        return name;
    }
    let tail_start = floor_char_boundary(&name, name.len() - 9);
    let extension = name[tail_start..]
        .rfind('.')
        .map(|dot| &name[tail_start + dot..])
        .unwrap_or("");
    let cut = floor_char_boundary(&name, MAX_ELEMENT_BYTES - extension.len());
    format!("{}{}", &name[..cut], extension)
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// Renames colliding paths in place: the second `foo/bar.txt` becomes `foo/bar.1.txt`. [W2.5]
///
/// `paths` are sanitised element lists; `None` entries (padding files, never written) are
/// skipped. A file also collides with a directory of the same name. Comparison ignores ASCII
/// case, so the files stay distinct on case-insensitive file systems too.
pub fn resolve_collisions(paths: &mut [Option<&mut Vec<String>>]) -> Result<(), MetainfoError> {
    let mut taken: HashSet<String> = HashSet::new();
    // Directories first: a file may not take a directory's name.
    for path in paths.iter().flatten() {
        for depth in 1..path.len() {
            taken.insert(key(&path[..depth]));
        }
    }
    let mut attempts = 0;
    for path in paths.iter_mut().flatten() {
        if taken.insert(key(path)) {
            continue;
        }
        let last = path.len() - 1;
        let original = path[last].clone();
        for n in 1.. {
            attempts += 1;
            if attempts > MAX_DUPLICATE_ATTEMPTS {
                return Err(MetainfoError::TooManyDuplicateNames {
                    limit: MAX_DUPLICATE_ATTEMPTS,
                });
            }
            path[last] = numbered(&original, n);
            if taken.insert(key(path)) {
                break;
            }
        }
    }
    Ok(())
}

/// The comparison key of a path: elements joined with '/', ASCII lower case.
fn key(path: &[String]) -> String {
    path.join("/").to_ascii_lowercase()
}

/// `bar.txt` → `bar.1.txt`; `foo` → `foo.1`.
fn numbered(name: &str, n: usize) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{}.{n}{}", &name[..dot], &name[dot..]),
        _ => format!("{name}.{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_traversal_cannot_survive() {
        assert_eq!(sanitize_element(b"/foobar"), "foobar");
        assert_eq!(sanitize_element(b"/"), "_");
        assert_eq!(sanitize_element(b"\\"), "_");
        assert_eq!(sanitize_element(b".."), "_");
        assert_eq!(sanitize_element(b"."), "_");
        assert_eq!(sanitize_element(b""), "_");
        assert_eq!(sanitize_element(b"foo/../../../bar"), "foo......bar");
        assert_eq!(sanitize_element(b"/.."), "_");
    }

    #[test]
    fn control_bytes_and_bad_utf8_become_underscores() {
        assert_eq!(sanitize_element(b"a\x01b"), "a_b");
        assert_eq!(sanitize_element(b"a\0b"), "ab");
        assert_eq!(sanitize_element(b"\xffest"), "_est");
        assert_eq!(sanitize_element("tx\u{202e}t".as_bytes()), "txt");
        assert_eq!(sanitize_element("café".as_bytes()), "café");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.mkv", "a".repeat(300));
        let short = sanitize_element(long.as_bytes());
        assert_eq!(short.len(), MAX_ELEMENT_BYTES);
        assert!(short.ends_with("a.mkv"));
    }

    #[test]
    fn names_that_vanish_fall_back() {
        assert_eq!(sanitize_name(b".."), None);
        assert_eq!(sanitize_name(b"_"), Some("_".to_string()));
        assert_eq!(
            sanitize_name(b"temp/../../abc"),
            Some("temp....abc".to_string())
        );
    }

    fn resolve(paths: &[&[&str]]) -> Result<Vec<String>, MetainfoError> {
        let mut owned: Vec<Vec<String>> = paths
            .iter()
            .map(|p| p.iter().map(|s| s.to_string()).collect())
            .collect();
        let mut refs: Vec<Option<&mut Vec<String>>> = owned.iter_mut().map(Some).collect();
        resolve_collisions(&mut refs)?;
        Ok(owned.iter().map(|p| p.join("/")).collect())
    }

    #[test]
    fn collisions_are_numbered_before_the_extension() {
        let got = resolve(&[
            &["foo", "bar.txt"],
            &["foo", "bar.txt"],
            &["foo", "BAR.txt"],
        ])
        .unwrap();
        assert_eq!(got, ["foo/bar.txt", "foo/bar.1.txt", "foo/BAR.2.txt"]);
        assert_eq!(
            resolve(&[&["_", "foo"], &["_", "foo"]]).unwrap(),
            ["_/foo", "_/foo.1"]
        );
    }

    #[test]
    fn a_file_cannot_take_a_directory_name() {
        assert_eq!(resolve(&[&["a"], &["a", "b"]]).unwrap(), ["a.1", "a/b"]);
    }

    #[test]
    fn too_many_duplicates_are_refused() {
        let same: Vec<&[&str]> = vec![&["foo", "bar.txt"]; 118];
        assert!(matches!(
            resolve(&same),
            Err(MetainfoError::TooManyDuplicateNames { .. })
        ));
    }
}
