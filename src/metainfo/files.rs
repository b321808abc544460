//! The file list of a torrent: single-file (`length`) or multi-file (`files`) — walkthrough §2.
//!
//! BitTorrent sees the content as one long byte stream: the files one after another, cut into
//! pieces of `piece length` bytes. A piece may span several files. Each [`FileEntry`] records
//! where its file starts in that stream (`offset`), so `storage` can map a piece to files.
//!
//! File attributes (BEP 47, the `attr` string):
//! - `p` — a *padding file*: zeros that align the next file to a piece boundary. Its bytes
//!   are part of the stream (and of the piece hashes) but it is never written to disk. Old
//!   BitComet torrents mark them by the name `_____padding_file_` instead; both are understood.
//! - `l` — a symbolic link: no bytes in the stream (length taken as 0), target in `symlink path`.
//! - `x`, `h` — executable, hidden.

use super::path::{resolve_collisions as resolve_paths, sanitize_element};
use super::{MetainfoError, missing, wrong_type};
use crate::bencode::Value;

/// One file of the torrent, padding files included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Sanitised path elements, relative to the torrent's directory (multi-file torrents) or
    /// just `[name]` (single-file torrents). Safe to join under the download directory.
    pub path: Vec<String>,
    /// Size in bytes (0 for symlinks).
    pub length: u64,
    /// Where the file starts in the torrent's byte stream.
    pub offset: u64,
    /// A BEP 47 padding file: part of the pieces, never written to disk.
    pub padding: bool,
    /// A symbolic link's sanitised target (BEP 47 `symlink path`); not followed or created.
    pub symlink: Option<Vec<String>>,
    pub executable: bool,
    pub hidden: bool,
}

impl FileEntry {
    /// The path joined with `/`, as `info` prints it.
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }
}

/// Reads `files` (multi-file) or `length` (single-file). Returns the files and whether the
/// torrent is multi-file. Offsets are filled in; collisions are resolved later.
pub(super) fn parse_files(
    info: &Value,
    name: &str,
) -> Result<(Vec<FileEntry>, bool), MetainfoError> {
    // [W2.2] No `files`: one file, named `name`. Otherwise each file has its own path, and
    // all lie end to end in one byte stream, each at its `offset`.
    let Some(list_value) = info.get("files") else {
        let length = parse_length(info, "length", "info.length")?;
        let file = FileEntry::plain(vec![name.to_string()], length);
        return Ok((vec![file], false));
    };
    let list = list_value
        .as_list()
        .ok_or_else(|| wrong_type("info.files", list_value, "a list"))?;
    if list.is_empty() {
        return Err(MetainfoError::NoFiles);
    }
    let mut files = Vec::with_capacity(list.len());
    let mut offset: u64 = 0;
    for (index, entry) in list.iter().enumerate() {
        let mut file = parse_file(entry, index)?;
        file.offset = offset;
        offset = offset
            .checked_add(file.length)
            .ok_or(MetainfoError::TotalLengthOverflow)?;
        files.push(file);
    }
    Ok((files, true))
}

/// One dictionary of the `files` list: `length`, `path` and optional BEP 47 attributes.
fn parse_file(entry: &Value, index: usize) -> Result<FileEntry, MetainfoError> {
    let field = format!("info.files[{index}]");
    if entry.as_dict().is_none() {
        return Err(wrong_type(&field, entry, "a dictionary"));
    }
    let attr = entry
        .get("attr")
        .and_then(Value::as_bytes)
        .unwrap_or_default();
    let is_symlink = attr.contains(&b'l');
    let length = if is_symlink {
        0
    } else {
        parse_length(entry, "length", &format!("{field}.length"))?
    };
    let padding_attr = attr.contains(&b'p');
    let path = parse_path(entry, &field, padding_attr, length)?;
    let bitcomet_padding = path.join("/").contains("_____padding_file_");
    let symlink = if is_symlink {
        entry
            .get("symlink path")
            .and_then(Value::as_list)
            .map(|target| sanitize_list(target, &field))
            .transpose()?
    } else {
        None
    };
    Ok(FileEntry {
        path,
        length,
        offset: 0,
        padding: padding_attr || bitcomet_padding,
        symlink,
        executable: attr.contains(&b'x'),
        hidden: attr.contains(&b'h'),
    })
}

/// `path` (or `path.utf-8`, preferred when present, as libtorrent does): a non-empty list of
/// byte strings. A padding file may omit it; it is then called `.pad/<length>`.
fn parse_path(
    entry: &Value,
    field: &str,
    padding: bool,
    length: u64,
) -> Result<Vec<String>, MetainfoError> {
    let utf8 = entry.get("path.utf-8").filter(|v| v.as_list().is_some());
    match utf8.or(entry.get("path")) {
        Some(value) => match value.as_list() {
            Some(elements) if !elements.is_empty() => sanitize_list(elements, field),
            Some(_) if padding => Ok(vec![".pad".into(), length.to_string()]),
            Some(_) => Err(missing(&format!("{field}.path (it is an empty list)"))),
            None => Err(wrong_type(&format!("{field}.path"), value, "a list")),
        },
        None if padding => Ok(vec![".pad".into(), length.to_string()]),
        None => Err(missing(&format!("{field}.path"))),
    }
}

/// Sanitises every element of a path list; each must be a byte string.
fn sanitize_list(elements: &[Value], field: &str) -> Result<Vec<String>, MetainfoError> {
    let element = |(i, e): (usize, &Value)| match e.as_bytes() {
        Some(bytes) => Ok(sanitize_element(bytes)),
        None => Err(wrong_type(
            &format!("{field}.path[{i}]"),
            e,
            "a byte string",
        )),
    };
    elements.iter().enumerate().map(element).collect()
}

/// A length: `dict[key]` present, an integer, not negative. `field` names it in errors.
fn parse_length(dict: &Value, key: &str, field: &str) -> Result<u64, MetainfoError> {
    let value = dict.get(key).ok_or_else(|| missing(field))?;
    let n = value
        .as_integer()
        .ok_or_else(|| wrong_type(field, value, "an integer"))?;
    u64::try_from(n).map_err(|_| MetainfoError::BadValue {
        field: field.to_string(),
        offset: value.span.start,
        value: n,
        reason: "a length cannot be negative",
    })
}

/// The length of the whole byte stream; a torrent of nothing is refused.
pub(super) fn total_length(files: &[FileEntry]) -> Result<u64, MetainfoError> {
    let total = files
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.length));
    match total {
        None => Err(MetainfoError::TotalLengthOverflow),
        Some(0) => Err(MetainfoError::Empty),
        Some(n) => Ok(n),
    }
}

/// Renames colliding paths of the files that will be written (padding files are not).
pub(super) fn resolve_collisions(files: &mut [FileEntry]) -> Result<(), MetainfoError> {
    let mut paths: Vec<Option<&mut Vec<String>>> = files
        .iter_mut()
        .map(|f| (!f.padding).then_some(&mut f.path))
        .collect();
    resolve_paths(&mut paths)
}

impl FileEntry {
    fn plain(path: Vec<String>, length: u64) -> FileEntry {
        FileEntry {
            path,
            length,
            offset: 0,
            padding: false,
            symlink: None,
            executable: false,
            hidden: false,
        }
    }
}
