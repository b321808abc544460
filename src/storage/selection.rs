//! Choosing files (`--select-file LIST`) and the pieces a choice needs — walkthrough §9.
//!
//! The user numbers the files 1, 2, 3… in the order the info dictionary lists them (BEP 3
//! "The metainfo file structure"), padding files (BEP 47, "Padding files and extended file
//! attributes") left out: the numbers `info` prints its files in, and the ones aria2's own
//! `--select-file` uses. A piece is *wanted* when it holds at least one byte of a selected file:
//!
//! ```text
//!   files    |  1 (selected)   |  2 (not)  | pad |  3 (selected)   |
//!   pieces   |   0   |   1   |   2   |   3   |   4   |   5   |
//!   wanted       ✓       ✓       ·       ✓       ✓       ✓
//! ```
//!
//! Piece 1 ends in file 2 and piece 3 starts in it: those bytes of file 2 must be fetched too,
//! or the piece could not be checked. `storage` keeps them in the side file (`parts.rs`).
//!
//! The list is parsed in two steps: its syntax when the command line is read ([`FileList`],
//! a clap value parser), its numbers once the torrent's files are known ([`FileList::resolve`];
//! for a magnet link, only after the metadata has arrived).

use crate::metainfo::Info;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// What is wrong with a `--select-file` list, naming the item at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SelectError {
    #[error("no file numbers (want a list like 1,3-5)")]
    Empty,
    #[error("{0:?} is neither a file number nor a range like 3-5")]
    NotANumber(String),
    #[error("{0:?}: files are numbered from 1")]
    Zero(String),
    #[error("{0:?} runs backwards (want low-high, like 3-5)")]
    Backwards(String),
    #[error("there is no file {number}: the torrent has {count} files (padding files not counted)")]
    NoSuchFile { number: u32, count: usize },
}

/// A `--select-file` list as typed: inclusive ranges of 1-based file numbers (a single number
/// is a range of one). Its syntax is checked; whether the files exist is [`FileList::resolve`]'s
/// question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileList {
    ranges: Vec<(u32, u32)>,
}

impl FromStr for FileList {
    type Err = SelectError;

    /// `1,3-5`: comma-separated numbers and `low-high` ranges, nothing else (no spaces, no
    /// signs, no empty items).
    fn from_str(text: &str) -> Result<FileList, SelectError> {
        if text.is_empty() {
            return Err(SelectError::Empty);
        }
        let number = |item: &str, digits: &str| -> Result<u32, SelectError> {
            // `u32::from_str` would take "+3": only digits are a file number here.
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SelectError::NotANumber(item.to_string()));
            }
            match digits.parse::<u32>() {
                Ok(0) => Err(SelectError::Zero(item.to_string())),
                Ok(n) => Ok(n),
                // More digits than any torrent has files: no such file, whatever the torrent.
                Err(_) => Err(SelectError::NotANumber(item.to_string())),
            }
        };
        let ranges = text
            .split(',')
            .map(|item| {
                let (low, high) = match item.split_once('-') {
                    Some((low, high)) => (number(item, low)?, number(item, high)?),
                    None => {
                        let n = number(item, item)?;
                        (n, n)
                    }
                };
                if low > high {
                    return Err(SelectError::Backwards(item.to_string()));
                }
                Ok((low, high))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FileList { ranges })
    }
}

/// The list again, as it could have been typed: `1,3-5`.
impl fmt::Display for FileList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(low, high)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match low == high {
                true => write!(f, "{low}")?,
                false => write!(f, "{low}-{high}")?,
            }
        }
        Ok(())
    }
}

impl FileList {
    /// The files of `info` this list names. Every number must be a file of the torrent,
    /// counting only files that are not padding. [W9.4]
    pub fn resolve(&self, info: &Info) -> Result<Selection, SelectError> {
        let count = info.content_files().count();
        if let Some(&(_, high)) = self.ranges.iter().find(|(_, h)| *h as usize > count) {
            return Err(SelectError::NoSuchFile {
                number: high,
                count,
            });
        }
        let mut number = 0;
        let selected = info
            .files
            .iter()
            .map(|file| {
                // Padding is never selected, and takes no number: the user never saw it.
                if file.padding {
                    return false;
                }
                number += 1;
                self.ranges
                    .iter()
                    .any(|&(low, high)| (low..=high).contains(&number))
            })
            .collect();
        Ok(Selection { selected })
    }
}

/// Which files of a torrent are wanted: one flag per entry of the info dictionary's file list,
/// padding files included (never selected: there is nothing of theirs to keep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    selected: Vec<bool>,
}

impl Selection {
    /// Every file: a download without `--select-file`.
    pub fn all(info: &Info) -> Selection {
        Selection {
            selected: info.files.iter().map(|f| !f.padding).collect(),
        }
    }

    /// From one flag per file, in the order of the file list (padding files `false`).
    pub fn from_flags(selected: Vec<bool>) -> Selection {
        Selection { selected }
    }

    /// Whether the file at this position of the file list (padding files counted) is selected.
    pub fn is_selected(&self, file: usize) -> bool {
        self.selected.get(file).copied().unwrap_or(false)
    }

    pub fn flags(&self) -> &[bool] {
        &self.selected
    }
}

/// The pieces a download needs, and how many bytes of selected files each one holds: a piece
/// with none is not wanted. The progress bar counts these bytes, not whole pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Per piece: bytes of selected files in it.
    selected_bytes: Vec<u32>,
}

impl Wanted {
    /// Every piece, each counted at its full length (a torrent without a selection, and tests).
    pub fn every_piece(layout: &crate::piece::PieceLayout) -> Wanted {
        Wanted {
            selected_bytes: (0..layout.num_pieces() as u32)
                .map(|i| layout.piece_len(i).max(1))
                .collect(),
        }
    }

    /// From the selected bytes of each piece, in piece order.
    pub fn from_bytes(selected_bytes: Vec<u32>) -> Wanted {
        Wanted { selected_bytes }
    }

    pub fn is_wanted(&self, index: usize) -> bool {
        self.selected_bytes.get(index).is_some_and(|&n| n > 0)
    }

    /// Bytes of selected files in piece `index`.
    pub fn bytes_in(&self, index: u32) -> u64 {
        self.selected_bytes
            .get(index as usize)
            .map_or(0, |&n| u64::from(n))
    }

    /// Bytes of selected files in the whole torrent.
    pub fn total_bytes(&self) -> u64 {
        self.selected_bytes.iter().map(|&n| u64::from(n)).sum()
    }

    /// How many pieces are wanted.
    pub fn count(&self) -> usize {
        self.selected_bytes.iter().filter(|&&n| n > 0).count()
    }

    /// The wanted pieces, in order.
    pub fn pieces(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.selected_bytes.len() as u32).filter(|&i| self.is_wanted(i as usize))
    }

    /// Bytes of selected files in the pieces of `have`.
    pub fn bytes_of(&self, have: &crate::wire::Bitfield) -> u64 {
        self.pieces()
            .filter(|&i| have.has(i as usize))
            .map(|i| self.bytes_in(i))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::FileEntry;

    fn file(name: &str, length: u64, padding: bool) -> FileEntry {
        FileEntry {
            path: vec![name.to_string()],
            length,
            offset: 0,
            padding,
            symlink: None,
            executable: false,
            hidden: false,
        }
    }

    /// a (1), pad, b (2), c (3), pad, d (4).
    fn info() -> Info {
        Info {
            name: "t".into(),
            piece_length: 16384,
            pieces: Vec::new(),
            files: vec![
                file("a", 10, false),
                file("pad1", 6, true),
                file("b", 10, false),
                file("c", 10, false),
                file("pad2", 6, true),
                file("d", 10, false),
            ],
            multi_file: true,
            private: false,
            total_length: 52,
            hybrid: false,
        }
    }

    fn parse(text: &str) -> Result<FileList, SelectError> {
        text.parse()
    }

    #[test]
    fn numbers_and_ranges_parse_and_print_back() {
        let list = parse("1,3-5,7").unwrap();
        assert_eq!(list.ranges, [(1, 1), (3, 5), (7, 7)]);
        assert_eq!(list.to_string(), "1,3-5,7");
        assert_eq!(parse("2-2").unwrap().to_string(), "2");
    }

    #[test]
    fn bad_syntax_is_refused_naming_the_item() {
        assert_eq!(parse(""), Err(SelectError::Empty));
        assert_eq!(parse("0"), Err(SelectError::Zero("0".into())));
        assert_eq!(parse("2,0-3"), Err(SelectError::Zero("0-3".into())));
        assert_eq!(parse("9-3"), Err(SelectError::Backwards("9-3".into())));
        for junk in [
            "a",
            "1,,2",
            "1-",
            "-2",
            "+3",
            " 1",
            "1-2-3",
            "1;2",
            "99999999999",
        ] {
            assert!(
                matches!(parse(junk), Err(SelectError::NotANumber(_))),
                "{junk:?}: {:?}",
                parse(junk)
            );
        }
    }

    #[test]
    fn padding_files_take_no_number() {
        // 1 is a, 2 is b (after a padding file), 4 is d.
        let selection = parse("2,4").unwrap().resolve(&info()).unwrap();
        assert_eq!(selection.flags(), [false, false, true, false, false, true]);
        let all = parse("1-4").unwrap().resolve(&info()).unwrap();
        assert_eq!(all, Selection::all(&info()));
    }

    #[test]
    fn a_number_past_the_last_file_is_refused() {
        assert_eq!(
            parse("1,3-5").unwrap().resolve(&info()),
            Err(SelectError::NoSuchFile {
                number: 5,
                count: 4
            })
        );
    }

    #[test]
    fn wanted_counts_selected_bytes() {
        let wanted = Wanted::from_bytes(vec![5, 0, 16384, 0]);
        assert_eq!(wanted.pieces().collect::<Vec<_>>(), [0, 2]);
        assert_eq!((wanted.count(), wanted.total_bytes()), (2, 16389));
        let mut have = crate::wire::Bitfield::new(4);
        have.set(2);
        have.set(3);
        assert_eq!(wanted.bytes_of(&have), 16384);
    }
}
