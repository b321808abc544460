//! The side file (`.peerwire-parts`): bytes of files that were not selected but share a piece
//! with a selected one — walkthrough §9.
//!
//! A piece is checked over its whole length (BEP 3 "pieces"), so a piece that ends in an
//! unselected file must be fetched whole; the bytes that belong to the unselected file are kept
//! here rather than in a file the user did not ask for. The side file sits in the torrent's
//! own folder and holds one *slot* per such piece, shaped like the piece itself, so that any
//! byte of the piece has one fixed place whatever was selected:
//!
//! ```text
//!   header  "peerwire-parts" 00 01 | piece length u64 | total length u64 | files u32
//!           | one byte per file: 1 if it was selected
//!   slot 0  piece index u32 | piece-length bytes: byte i is byte i of that piece
//!   slot 1  piece index u32 | …
//! ```
//!
//! Only the bytes of unselected files are written into a slot (the rest stays a hole). The
//! header remembers the selection the slots were written under, so that a later run with
//! another selection can move bytes between the slots and the files (`Storage::select`).
//! All numbers are big-endian. The file is ours, but it is read as untrusted all the same: a
//! slot that names no piece of this torrent, or a piece twice, is skipped.

use super::StorageError;
use std::collections::HashMap;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The side file's name, in the torrent's folder.
pub const PARTS_FILE: &str = ".peerwire-parts";

/// The first bytes of a side file: its name, then the format's version.
const MAGIC: &[u8; 16] = b"peerwire-parts\x00\x01";

/// The torrent a side file was made for: its pieces and its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shape {
    pub piece_length: u64,
    pub total_length: u64,
    pub files: usize,
}

impl Shape {
    fn num_pieces(&self) -> u64 {
        self.total_length.div_ceil(self.piece_length.max(1))
    }

    fn header_len(&self) -> u64 {
        MAGIC.len() as u64 + 8 + 8 + 4 + self.files as u64
    }

    fn slot_len(&self) -> u64 {
        4 + self.piece_length
    }
}

/// An open side file and where each piece's slot is.
#[derive(Debug)]
pub(super) struct Parts {
    path: PathBuf,
    file: File,
    shape: Shape,
    slots: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    /// Slot number of each piece that has one.
    by_piece: HashMap<u32, u64>,
    /// The next free slot: one past the last slot in the file.
    next: u64,
}

impl Parts {
    /// Opens the side file at `path` if there is one; returns it and the selection (one flag
    /// per file) its slots were written under. `None` if there is no side file.
    pub(super) fn open(
        path: &Path,
        shape: Shape,
        writable: bool,
    ) -> Result<Option<(Parts, Vec<bool>)>, StorageError> {
        let error = |action, source| StorageError {
            action,
            path: path.to_path_buf(),
            source,
        };
        let file = match File::options().read(true).write(writable).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error("open", e)),
        };
        let len = file.metadata().map_err(|e| error("read", e))?.len();
        // Cut short before its header was written (a crash just after it was made): it holds
        // no slot, so it is as good as absent, and is made again.
        if len < shape.header_len() {
            return Ok(None);
        }
        let mut header = vec![0; shape.header_len() as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(|e| error("read the header of", e))?;
        let (fixed, flags) = header.split_at(MAGIC.len() + 20);
        if fixed != expected_header(shape).as_slice() {
            let why = "it was made for another torrent (its header does not match this \
                       torrent's pieces and files); move it away to start over";
            return Err(error(
                "use",
                std::io::Error::new(ErrorKind::InvalidData, why),
            ));
        }
        let selected = flags.iter().map(|&b| b == 1).collect();
        let parts = Parts {
            path: path.to_path_buf(),
            file,
            shape,
            slots: Mutex::new(Slots::default()),
        };
        parts.find_slots()?;
        Ok(Some((parts, selected)))
    }

    /// Creates an empty side file (no slots) at `path`, for `selected`.
    pub(super) fn create(
        path: &Path,
        shape: Shape,
        selected: &[bool],
    ) -> Result<Parts, StorageError> {
        // The first run: the torrent's folder may not be there yet.
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|source| StorageError {
                action: "create the directory for",
                path: path.to_path_buf(),
                source,
            })?;
        }
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|source| StorageError {
                action: "create",
                path: path.to_path_buf(),
                source,
            })?;
        let parts = Parts {
            path: path.to_path_buf(),
            file,
            shape,
            slots: Mutex::new(Slots::default()),
        };
        parts.write_header(selected)?;
        Ok(parts)
    }

    /// Records the selection the slots hold bytes for, from now on.
    pub(super) fn write_header(&self, selected: &[bool]) -> Result<(), StorageError> {
        let mut header = expected_header(self.shape);
        header.extend(selected.iter().map(|&s| u8::from(s)));
        self.file
            .write_all_at(&header, 0)
            .map_err(|e| self.error("write", e))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether piece `index` has a slot (some of its bytes were kept here).
    pub(super) fn has_slot(&self, index: u32) -> bool {
        self.slots().by_piece.contains_key(&index)
    }

    /// Reads `buf.len()` bytes of the stream from `offset`; every piece they touch must have a
    /// slot (a piece without one has never had bytes kept here).
    pub(super) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let mut at = 0;
        for (index, in_piece, n) in self.by_piece(offset, buf.len() as u64) {
            let Some(slot) = self.slots().by_piece.get(&index).copied() else {
                let why = format!("piece {index} has no bytes in it yet");
                return Err(self.error("read", std::io::Error::new(ErrorKind::NotFound, why)));
            };
            let chunk = &mut buf[at..at + n as usize];
            self.file
                .read_exact_at(chunk, self.data_at(slot) + in_piece)
                .map_err(|e| self.error("read", e))?;
            at += n as usize;
        }
        Ok(())
    }

    /// Writes `data` at `offset` of the stream, into the slots of the pieces it touches (made
    /// as needed).
    pub(super) fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let mut at = 0;
        for (index, in_piece, n) in self.by_piece(offset, data.len() as u64) {
            let slot = self.slot_for(index)?;
            let chunk = &data[at..at + n as usize];
            self.file
                .write_all_at(chunk, self.data_at(slot) + in_piece)
                .map_err(|e| self.error("write", e))?;
            at += n as usize;
        }
        Ok(())
    }

    /// The slot of piece `index`, appending one if it has none yet. The slot's piece index is
    /// written before any of its bytes: a slot in the file always says whose it is.
    fn slot_for(&self, index: u32) -> Result<u64, StorageError> {
        // One lock for the look-up and the append: two peer threads writing blocks of the same
        // new piece must not make it two slots.
        let mut slots = self.slots();
        if let Some(&slot) = slots.by_piece.get(&index) {
            return Ok(slot);
        }
        let slot = slots.next;
        let start = self.shape.header_len() + slot * self.shape.slot_len();
        self.file
            .write_all_at(&index.to_be_bytes(), start)
            .map_err(|e| self.error("write", e))?;
        slots.by_piece.insert(index, slot);
        slots.next += 1;
        Ok(slot)
    }

    /// Reads every slot's piece index (resume). A slot past the end of the torrent, or for a
    /// piece already seen, is left alone: the file is never trusted to be well-formed.
    fn find_slots(&self) -> Result<(), StorageError> {
        let len = self
            .file
            .metadata()
            .map_err(|e| self.error("read", e))?
            .len();
        let count = len
            .saturating_sub(self.shape.header_len())
            .div_ceil(self.shape.slot_len());
        let mut slots = self.slots();
        for slot in 0..count {
            let mut index = [0; 4];
            let start = self.shape.header_len() + slot * self.shape.slot_len();
            // A slot header cut short (a crash while appending): the end of the slots.
            if self.file.read_exact_at(&mut index, start).is_err() {
                break;
            }
            let index = u32::from_be_bytes(index);
            if u64::from(index) < self.shape.num_pieces() {
                slots.by_piece.entry(index).or_insert(slot);
            }
        }
        slots.next = count;
        Ok(())
    }

    /// Splits a range of the stream at piece boundaries: (piece, offset in it, length).
    fn by_piece(&self, offset: u64, len: u64) -> impl Iterator<Item = (u32, u64, u64)> {
        let piece_length = self.shape.piece_length.max(1);
        let end = offset + len;
        let mut at = offset;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let index = at / piece_length;
            let in_piece = at % piece_length;
            let n = (piece_length - in_piece).min(end - at);
            at += n;
            // A piece index fits 32 bits: `PieceLayout` counts pieces in `u32`.
            Some((index as u32, in_piece, n))
        })
    }

    /// Where the bytes of slot `slot` start in the side file.
    fn data_at(&self, slot: u64) -> u64 {
        self.shape.header_len() + slot * self.shape.slot_len() + 4
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The map is changed in one insert: a thread that panicked cannot have left it half
        // updated.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn error(&self, action: &'static str, source: std::io::Error) -> StorageError {
        StorageError {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

/// The header without the selection flags: magic, piece length, total length, file count.
fn expected_header(shape: Shape) -> Vec<u8> {
    let mut header = MAGIC.to_vec();
    header.extend(shape.piece_length.to_be_bytes());
    header.extend(shape.total_length.to_be_bytes());
    header.extend((shape.files as u32).to_be_bytes());
    header
}
