//! Pieces ↔ files: reading and writing the torrent's byte stream on disk — walkthrough §9.
//!
//! The pieces cover the files laid end to end, so one piece may end in one file and start
//! the next. [`Storage`] hides that: callers read and write at an offset of the stream, and
//! [`Storage::segments`] splits the range at file boundaries:
//!
//! ```text
//!   stream    0            100          160                    400
//!   files     |  a.txt      |  b.bin     |  c/d.mkv             |
//!   write 90..130           ├─ a.txt[90..100] ─┤├─ b.bin[0..30] ─┤
//! ```
//!
//! Padding files (BEP 47) are part of the stream but never touch the disk: reads give zeros
//! and writes are dropped. Every path was sanitised by `metainfo` (§2), so nothing here can
//! leave the download directory. Writes are positional (`pwrite`) on shared file handles, so
//! any number of threads can write different blocks at once without a lock around the disk.
//!
//! With `--select-file` (`selection.rs`) only some files are wanted. Each file then has a
//! [`Place`]: its own file on disk, nowhere (padding), or, for a file not selected, the side
//! file (`parts.rs`), which keeps the bytes it shares with wanted pieces so that those pieces
//! can be checked whole. A file not selected is never created.

mod parts;
mod selection;

pub use parts::PARTS_FILE;
pub use selection::{FileList, SelectError, Selection, Wanted};

use crate::piece::{BlockRequest, PieceLayout};
use crate::wire::Bitfield;
use parts::{Parts, Shape};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use thiserror::Error;

/// Where the bytes of one file of the stream are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In its own file, at its path.
    Own,
    /// Nowhere: a padding file, zeros, never written.
    Padding,
    /// Not selected: the bytes it shares with wanted pieces go to the side file; the file
    /// itself is never created, read or changed.
    SideFile,
}

/// One file of the stream.
#[derive(Debug)]
pub struct StoredFile {
    pub path: PathBuf,
    /// Where the file starts in the stream.
    pub offset: u64,
    pub length: u64,
    pub place: Place,
    /// Opened on first use (a torrent may have thousands of files).
    handle: Mutex<Option<Arc<File>>>,
}

/// The byte stream of a torrent, mapped onto files.
#[derive(Debug)]
pub struct Storage {
    files: Vec<StoredFile>,
    total_length: u64,
    writable: bool,
    /// The torrent's own folder (multi-file torrents): where the side file goes.
    folder: Option<PathBuf>,
    /// The side file, when some file is not selected (or an earlier run left one).
    parts: Option<Parts>,
    /// One lock per piece, holding "sealed": see [`Storage::verify_piece`]. Made on first
    /// use, when the piece count is known (the files alone do not say it).
    seals: OnceLock<Vec<Mutex<bool>>>,
}

#[derive(Debug, Error)]
#[error("cannot {action} {}", path.display())]
pub struct StorageError {
    pub action: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl Storage {
    /// A storage over `(path, length, padding)` entries, in stream order. `writable` opens the
    /// files for writing (creating them and their directories as needed).
    pub fn new(entries: Vec<(PathBuf, u64, bool)>, writable: bool) -> Storage {
        let mut offset = 0;
        let files = entries
            .into_iter()
            .map(|(path, length, padding)| {
                let file = StoredFile {
                    path,
                    offset,
                    length,
                    place: match padding {
                        true => Place::Padding,
                        false => Place::Own,
                    },
                    handle: Mutex::new(None),
                };
                offset += length;
                file
            })
            .collect();
        Storage {
            files,
            total_length: offset,
            writable,
            folder: None,
            parts: None,
            seals: OnceLock::new(),
        }
    }

    /// The files of a torrent under `root` (multi-file: `root/name/...`; single-file:
    /// `root/name`), for downloading (`writable`) or seeding.
    pub fn for_torrent(info: &crate::metainfo::Info, root: &Path, writable: bool) -> Storage {
        let base = if info.multi_file {
            root.join(&info.name)
        } else {
            root.to_path_buf()
        };
        Storage::in_folder(info, &base, writable)
    }

    /// The files of a torrent at their paths under `base` (for a multi-file torrent, `base`
    /// is the torrent's folder, whatever it is called on disk).
    pub fn in_folder(info: &crate::metainfo::Info, base: &Path, writable: bool) -> Storage {
        let entries = info
            .files
            .iter()
            .map(|f| {
                (
                    f.path.iter().fold(base.to_path_buf(), |p, e| p.join(e)),
                    f.length,
                    f.padding,
                )
            })
            .collect();
        Storage {
            // A single-file torrent's `base` is the directory that holds it, not a folder of
            // the torrent's own: no side file there (one file is all or nothing anyway).
            folder: info.multi_file.then(|| base.to_path_buf()),
            ..Storage::new(entries, writable)
        }
    }

    /// Keeps only the files of `selection` (`--select-file`); `piece_length` is the torrent's.
    /// A file not selected goes to the side file (see [`Place::SideFile`]). Done before any
    /// piece is checked: when the side file was written under another selection, the bytes
    /// whose place changed are moved first, between the side file and the files, so that
    /// resume finds them. [W9.6]
    pub fn select(
        mut self,
        selection: &Selection,
        piece_length: u64,
    ) -> Result<Storage, StorageError> {
        for (i, file) in self.files.iter_mut().enumerate() {
            if file.place != Place::Padding {
                file.place = match selection.is_selected(i) {
                    true => Place::Own,
                    false => Place::SideFile,
                };
            }
        }
        let Some(folder) = self.folder.clone() else {
            return Ok(self);
        };
        let path = folder.join(PARTS_FILE);
        if let Some(clash) = self.files.iter().find(|f| f.path == path) {
            let why = "the torrent has a file of the side file's name";
            return Err(StorageError {
                action: "keep unselected bytes beside",
                path: clash.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, why),
            });
        }
        let shape = Shape {
            piece_length,
            total_length: self.total_length,
            files: self.files.len(),
        };
        let everything = self.files.iter().all(|f| f.place != Place::SideFile);
        let now: Vec<bool> = self.files.iter().map(|f| f.place == Place::Own).collect();
        let (parts, before) = match Parts::open(&path, shape, self.writable)? {
            Some(found) => found,
            // Nothing to keep aside, and nothing kept from before.
            None if everything || !self.writable => return Ok(self),
            // No side file yet: whatever is on disk was written with every file selected.
            None => {
                let before: Vec<bool> = self
                    .files
                    .iter()
                    .map(|f| f.place != Place::Padding)
                    .collect();
                (Parts::create(&path, shape, &before)?, before)
            }
        };
        self.parts = Some(parts);
        // Seeding reads what is there and changes nothing.
        if !self.writable {
            return Ok(self);
        }
        self.move_parts(&before, piece_length)?;
        let Some(parts) = self.parts.take() else {
            return Ok(self);
        };
        if everything {
            // Every byte is in its file now: the side file has nothing left to keep.
            std::fs::remove_file(parts.path()).map_err(|source| StorageError {
                action: "remove",
                path: parts.path().to_path_buf(),
                source,
            })?;
        } else {
            parts.write_header(&now)?;
            self.parts = Some(parts);
        }
        Ok(self)
    }

    /// Moves the bytes of files whose place changed since the side file was written (`before`:
    /// selected then), piece by piece: a file selected now gets its bytes back from the slots;
    /// a file no longer selected gives the slots its bytes in the pieces still wanted. What
    /// cannot be read is left: the hash check at resume finds those pieces missing.
    fn move_parts(&self, before: &[bool], piece_length: u64) -> Result<(), StorageError> {
        let Some(parts) = &self.parts else {
            return Ok(());
        };
        let piece_length = piece_length.max(1);
        for (i, file) in self.files.iter().enumerate() {
            let was_own = before.get(i).copied().unwrap_or(false);
            let to_file = match (was_own, file.place) {
                (false, Place::Own) => true,
                (true, Place::SideFile) => false,
                _ => continue,
            };
            if file.length == 0 {
                continue;
            }
            // A file not selected any more is read where it is, never created.
            let old_file = match to_file {
                true => None,
                false => match File::open(&file.path) {
                    Ok(f) => Some(f),
                    Err(_) => continue,
                },
            };
            let first = file.offset / piece_length;
            let last = (file.offset + file.length - 1) / piece_length;
            for index in first..=last {
                let index = index as u32; // pieces are counted in u32 (`PieceLayout`)
                let start = file.offset.max(u64::from(index) * piece_length);
                let end = (file.offset + file.length).min((u64::from(index) + 1) * piece_length);
                let mut bytes = vec![0; (end - start) as usize];
                let at = start - file.offset;
                match &old_file {
                    // Selected now: its bytes in this piece come back from the slot, if any.
                    None if parts.has_slot(index) && parts.read_at(start, &mut bytes).is_ok() => {
                        let handle = self.open(file)?;
                        handle
                            .write_all_at(&bytes, at)
                            .map_err(|source| StorageError {
                                action: "write",
                                path: file.path.clone(),
                                source,
                            })?;
                    }
                    // Not selected any more: kept aside where a wanted piece needs them.
                    Some(old)
                        if self.piece_is_wanted(index, piece_length)
                            && old.read_exact_at(&mut bytes, at).is_ok() =>
                    {
                        parts.write_at(start, &bytes)?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Whether piece `index` holds a byte of a selected file.
    fn piece_is_wanted(&self, index: u32, piece_length: u64) -> bool {
        let start = u64::from(index) * piece_length;
        let len = piece_length.min(self.total_length.saturating_sub(start));
        self.segments(start, len)
            .any(|(f, _, n)| f.place == Place::Own && n > 0)
    }

    /// The pieces the selected files need, and the selected bytes in each (see [`Wanted`]).
    pub fn wanted(&self, layout: &PieceLayout) -> Wanted {
        let bytes = (0..layout.num_pieces() as u32)
            .map(|i| {
                self.segments(layout.piece_offset(i), u64::from(layout.piece_len(i)))
                    .filter(|(f, _, _)| f.place == Place::Own)
                    // At most a piece's length, which fits 32 bits.
                    .map(|(_, _, n)| n as u32)
                    .sum()
            })
            .collect();
        Wanted::from_bytes(bytes)
    }

    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    pub fn files(&self) -> &[StoredFile] {
        &self.files
    }

    /// Splits `len` bytes from `offset` into (file, offset in that file, length) pieces. [W9.2]
    pub fn segments(&self, offset: u64, len: u64) -> impl Iterator<Item = (&StoredFile, u64, u64)> {
        let end = offset + len;
        let first = self
            .files
            .partition_point(|f| f.offset + f.length <= offset);
        self.files[first..]
            .iter()
            .take_while(move |f| f.offset < end)
            .filter(|f| f.length > 0)
            .map(move |f| {
                let start = offset.max(f.offset);
                let stop = end.min(f.offset + f.length);
                (f, start - f.offset, stop - start)
            })
    }

    /// Fills `buf` with the stream's bytes from `offset`. Padding reads as zeros.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let mut at = 0;
        for (file, file_offset, n) in self.segments(offset, buf.len() as u64) {
            let chunk = &mut buf[at..at + n as usize];
            match file.place {
                Place::Padding => chunk.fill(0),
                Place::Own => {
                    let handle = self.open(file)?;
                    handle
                        .read_exact_at(chunk, file_offset)
                        .map_err(|source| StorageError {
                            action: "read",
                            path: file.path.clone(),
                            source,
                        })?;
                }
                Place::SideFile => self
                    .side_file(file)?
                    .read_at(file.offset + file_offset, chunk)?,
            }
            at += n as usize;
        }
        // Past the end of the last file (the tail of a v2 torrent's last block, which
        // libtorrent asks for in whole 16 KiB): zeros, like padding.
        buf[at..].fill(0);
        Ok(())
    }

    /// Writes `data` at `offset` of the stream; the part that falls on padding is dropped.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let mut at = 0;
        for (file, file_offset, n) in self.segments(offset, data.len() as u64) {
            let chunk = &data[at..at + n as usize];
            match file.place {
                Place::Padding => {}
                Place::Own => {
                    let handle = self.open(file)?;
                    handle
                        .write_all_at(chunk, file_offset)
                        .map_err(|source| StorageError {
                            action: "write",
                            path: file.path.clone(),
                            source,
                        })?;
                }
                // [W9.5] A byte of a file not selected, in a wanted piece: kept aside.
                Place::SideFile => self
                    .side_file(file)?
                    .write_at(file.offset + file_offset, chunk)?,
            }
            at += n as usize;
        }
        Ok(())
    }

    /// The side file, which holds `file`'s bytes (it is not selected); an error naming the
    /// file when there is none (seeding a folder where no side file was ever written).
    fn side_file(&self, file: &StoredFile) -> Result<&Parts, StorageError> {
        self.parts.as_ref().ok_or_else(|| StorageError {
            action: "read",
            path: file.path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the file is not selected and there is no side file",
            ),
        })
    }

    /// Writes one received block at its place in its piece — unless the piece is sealed
    /// (being checked, or verified): then the block is a late copy and is dropped.
    pub fn write_block(
        &self,
        layout: &PieceLayout,
        block: &BlockRequest,
        data: &[u8],
    ) -> Result<(), StorageError> {
        // [W9.7] In endgame two sources may send the same block. The second copy can arrive after
        // the piece was hashed from the first: written, it would replace checked bytes with
        // bytes nobody checked (a lying peer's). The lock is held across the write, so a
        // seal waits for a write already under way to finish.
        let seal = self.seal_of(layout, block.index);
        if seal.as_ref().is_some_and(|sealed| **sealed) {
            log::debug!(
                "piece {}: a late copy of the block at {} dropped (the piece is sealed)",
                block.index,
                block.begin
            );
            return Ok(());
        }
        self.write_at(
            layout.piece_offset(block.index) + u64::from(block.begin),
            data,
        )
    }

    /// Hashes a piece whose every block is written, and keeps it: the piece is sealed first
    /// (no block is written into it any more), read back and checked; a piece that fails is
    /// unsealed, so that its blocks can be fetched again. `Ok(true)`: verified, and sealed
    /// for good.
    pub fn verify_piece(
        &self,
        layout: &PieceLayout,
        index: u32,
        buf: &mut Vec<u8>,
    ) -> Result<bool, StorageError> {
        self.set_sealed(layout, index, true);
        let ok = match self.read_piece(layout, index, buf) {
            Ok(()) => layout.verify(index, buf),
            Err(error) => {
                self.set_sealed(layout, index, false);
                return Err(error);
            }
        };
        if !ok {
            self.set_sealed(layout, index, false);
        }
        Ok(ok)
    }

    /// The lock of piece `index`, taken; `None` for an index past the last piece (no
    /// caller passes one: blocks are checked against the layout before they get here).
    fn seal_of(&self, layout: &PieceLayout, index: u32) -> Option<MutexGuard<'_, bool>> {
        let seals = self.seals.get_or_init(|| {
            (0..layout.num_pieces())
                .map(|_| Mutex::new(false))
                .collect()
        });
        // A writer that panicked left a plain bool behind: nothing to repair.
        let lock = seals.get(index as usize)?;
        Some(lock.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn set_sealed(&self, layout: &PieceLayout, index: u32, sealed: bool) {
        if let Some(mut seal) = self.seal_of(layout, index) {
            *seal = sealed;
        }
    }

    /// Reads a whole piece into `buf` (resized to the piece's length).
    pub fn read_piece(
        &self,
        layout: &PieceLayout,
        index: u32,
        buf: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        buf.resize(layout.piece_len(index) as usize, 0);
        self.read_at(layout.piece_offset(index), buf)
    }

    /// Creates the directories and every selected file (padding and unselected files are
    /// not), empty ones included, without touching data already there: a download into a
    /// directory that holds part of the content resumes from it.
    pub fn create_files(&self) -> Result<(), StorageError> {
        for file in self.files.iter().filter(|f| f.place == Place::Own) {
            self.open(file)?;
        }
        Ok(())
    }

    /// Resume: hashes every piece already on disk and returns those that verify. A missing or
    /// short file just means its pieces are not there yet.
    pub fn verify_existing(&self, layout: &PieceLayout, threads: usize) -> Bitfield {
        let verified = self.map_pieces(layout.piece_length, threads, |index, bytes| {
            // A v2 piece ends with its file (BEP 52); what follows it up to the next piece
            // boundary is the gap before the next file, not part of the piece.
            let len = layout.piece_len(index) as usize;
            bytes.is_ok_and(|b| layout.verify(index, &b[..len.min(b.len())]))
        });
        let mut bitfield = Bitfield::new(layout.num_pieces());
        for (i, _) in verified.iter().enumerate().filter(|(_, ok)| **ok) {
            bitfield.set(i);
            // Verified pieces take no block any more (see `write_block`).
            self.set_sealed(layout, i as u32, true);
        }
        bitfield
    }

    /// Reads every piece (pieces of `piece_length` over the whole stream) on `threads`
    /// threads and maps each with `f(index, bytes or the read error)`; results in piece order.
    ///
    /// Each thread claims the next piece number from a shared counter, reads it with
    /// positional reads into its own buffer, and calls `f`: memory is one piece per thread.
    /// Used to hash new torrents (`create`) and to check data already on disk (resume).
    pub fn map_pieces<T: Send>(
        &self,
        piece_length: u64,
        threads: usize,
        f: impl Fn(u32, Result<&[u8], StorageError>) -> T + Sync,
    ) -> Vec<T> {
        let num_pieces = self.total_length.div_ceil(piece_length) as u32;
        let next = AtomicU32::new(0);
        let worker = || {
            // Why the page alignment: the kernel copies page-aligned page-cache pages into this
            // buffer, and on this machine that copy ran 3x slower into a buffer 16 bytes past a
            // page boundary (where a large allocation lands). Measured with
            // tests/bench/create_vs_mktorrent.sh.
            let mut allocation = vec![0u8; piece_length as usize + 4096];
            let aligned = allocation.as_ptr().align_offset(4096);
            let buffer = &mut allocation[aligned..aligned + piece_length as usize];
            let mut results = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed); // [W2.8] the next piece
                if index >= num_pieces {
                    return results;
                }
                let start = u64::from(index) * piece_length;
                let piece = &mut buffer[..piece_length.min(self.total_length - start) as usize];
                let read = self.read_at(start, piece).map(|()| &piece[..]);
                results.push((index, f(index, read)));
            }
        };
        let mut results: Vec<(u32, T)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.max(1))
                .map(|n| {
                    std::thread::Builder::new()
                        .name(format!("hasher {n}"))
                        .spawn_scoped(scope, worker)
                        .expect("spawning a hashing thread")
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a hashing thread panicked"))
                .collect()
        });
        results.sort_unstable_by_key(|(index, _)| *index);
        results.into_iter().map(|(_, result)| result).collect()
    }

    /// The file's handle, opening it (and creating it, when writable) on first use.
    fn open(&self, file: &StoredFile) -> Result<Arc<File>, StorageError> {
        let mut slot = file
            .handle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(handle) = slot.as_ref() {
            return Ok(Arc::clone(handle));
        }
        let error = |action, source| StorageError {
            action,
            path: file.path.clone(),
            source,
        };
        if self.writable
            && let Some(parent) = file.path.parent()
        {
            std::fs::create_dir_all(parent).map_err(|e| error("create the directory for", e))?;
        }
        let mut options = File::options();
        options.read(true);
        if self.writable {
            options.write(true).create(true);
        }
        let handle = Arc::new(options.open(&file.path).map_err(|e| error("open", e))?);
        *slot = Some(Arc::clone(&handle));
        Ok(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::sha1;
    use crate::metainfo::PieceHash;

    /// a.txt (100) | pad (60) | b.bin (240): 400 bytes, pieces of 128.
    fn storage(dir: &Path) -> Storage {
        let entries = vec![
            (dir.join("a.txt"), 100, false),
            (dir.join(".pad/60"), 60, true),
            (dir.join("sub/b.bin"), 240, false),
        ];
        Storage::new(entries, true)
    }

    fn stream() -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..400u32).map(|i| (i % 200 + 1) as u8).collect();
        bytes[100..160].fill(0); // the padding is zeros
        bytes
    }

    fn layout() -> PieceLayout {
        PieceLayout {
            piece_length: 128,
            total_length: 400,
            hashes: stream().chunks(128).map(|c| PieceHash(sha1(c))).collect(),
            v2: None,
        }
    }

    /// 16 bytes of piece 1 at offset 176 of the stream, in `sub/b.bin` (not the padding).
    fn piece_1_block() -> BlockRequest {
        BlockRequest {
            index: 1,
            begin: 48,
            length: 16,
        }
    }

    #[test]
    fn a_late_copy_of_a_block_never_overwrites_a_verified_piece() {
        let dir = tempfile::tempdir().unwrap();
        let (s, layout, data) = (storage(dir.path()), layout(), stream());
        s.create_files().unwrap();
        s.write_at(0, &data).unwrap();
        let mut buf = Vec::new();
        assert!(s.verify_piece(&layout, 1, &mut buf).unwrap());
        // Endgame: the second sender's copy of a block, and it lies.
        s.write_block(&layout, &piece_1_block(), &[0xee; 16])
            .unwrap();
        assert!(
            s.verify_piece(&layout, 1, &mut buf).unwrap(),
            "a verified piece was overwritten by a late block"
        );
        let mut back = vec![0; 400];
        s.read_at(0, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn a_piece_that_fails_its_check_takes_blocks_again() {
        let dir = tempfile::tempdir().unwrap();
        let (s, layout, data) = (storage(dir.path()), layout(), stream());
        s.create_files().unwrap();
        let mut wrong = data.clone();
        wrong[180] ^= 1;
        s.write_at(0, &wrong).unwrap();
        let mut buf = Vec::new();
        assert!(!s.verify_piece(&layout, 1, &mut buf).unwrap());
        // The piece is fetched again: its blocks must land, or it could never verify.
        s.write_block(&layout, &piece_1_block(), &data[176..192])
            .unwrap();
        assert!(s.verify_piece(&layout, 1, &mut buf).unwrap());
    }

    #[test]
    fn pieces_found_on_disk_at_start_are_sealed_too() {
        let dir = tempfile::tempdir().unwrap();
        let (s, layout, data) = (storage(dir.path()), layout(), stream());
        s.create_files().unwrap();
        s.write_at(0, &data).unwrap();
        assert!(s.verify_existing(&layout, 2).has(1));
        s.write_block(&layout, &piece_1_block(), &[0xee; 16])
            .unwrap();
        assert!(s.verify_piece(&layout, 1, &mut Vec::new()).unwrap());
    }

    #[test]
    fn segments_split_at_file_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path());
        let parts: Vec<(u64, u64)> = s.segments(90, 100).map(|(_, at, n)| (at, n)).collect();
        assert_eq!(parts, [(90, 10), (0, 60), (0, 30)]);
    }

    #[test]
    fn writes_cross_files_and_skip_padding() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path());
        let data = stream();
        s.write_at(0, &data[..200]).unwrap();
        s.write_at(200, &data[200..]).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a.txt")).unwrap(),
            &data[..100]
        );
        assert_eq!(
            std::fs::read(dir.path().join("sub/b.bin")).unwrap(),
            &data[160..]
        );
        assert!(
            !dir.path().join(".pad").exists(),
            "padding is never written"
        );
        let mut back = vec![0xee; 400];
        s.read_at(0, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn resume_finds_exactly_the_pieces_that_verify() {
        let dir = tempfile::tempdir().unwrap();
        let s = storage(dir.path());
        assert_eq!(
            s.verify_existing(&layout(), 2).count(),
            0,
            "nothing on disk yet"
        );
        let data = stream();
        s.write_at(0, &data[..256]).unwrap(); // pieces 0 and 1
        s.write_at(300, &[9; 10]).unwrap(); // garbage inside piece 2
        let have = s.verify_existing(&layout(), 2);
        assert_eq!((0..4).filter(|&i| have.has(i)).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn read_only_storage_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::new(vec![(dir.path().join("x"), 10, false)], false);
        let error = s.read_at(0, &mut [0; 10]).unwrap_err();
        assert_eq!(error.action, "open");
        assert!(!dir.path().join("x").exists());
    }

    /// a, b, c, d: 100 bytes each, pieces of 128; the side file's tests select a and c.
    fn four_files(dir: &Path) -> Vec<(PathBuf, u64, bool)> {
        ["a", "b", "c", "d"]
            .iter()
            .map(|n| (dir.join("t").join(n), 100, false))
            .collect()
    }

    fn four_layout() -> PieceLayout {
        PieceLayout {
            piece_length: 128,
            total_length: 400,
            hashes: four_stream()
                .chunks(128)
                .map(|c| PieceHash(sha1(c)))
                .collect(),
            v2: None,
        }
    }

    fn four_stream() -> Vec<u8> {
        (0..400u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// The four files under `dir/t`, as a multi-file torrent's folder, with `selected`.
    fn selected(dir: &Path, selected: [bool; 4], writable: bool) -> Storage {
        let storage = Storage {
            folder: Some(dir.join("t")),
            ..Storage::new(four_files(dir), writable)
        };
        storage
            .select(&Selection::from_flags(selected.to_vec()), 128)
            .unwrap()
    }

    fn pieces_of(have: &Bitfield) -> Vec<usize> {
        (0..have.num_pieces()).filter(|&i| have.has(i)).collect()
    }

    #[test]
    fn wanted_pieces_hold_selected_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let s = selected(dir.path(), [true, false, true, false], true);
        // Piece 0: a[0..100] + b; piece 1: b + c[0..56]; piece 2: c[56..100] + d; piece 3: d.
        assert_eq!(
            s.wanted(&four_layout()),
            Wanted::from_bytes(vec![100, 56, 44, 0])
        );
    }

    #[test]
    fn unselected_bytes_go_to_the_side_file_and_resume_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let data = four_stream();
        let s = selected(dir.path(), [true, false, true, false], true);
        s.create_files().unwrap();
        s.write_at(0, &data[..384]).unwrap(); // the three wanted pieces
        let folder = dir.path().join("t");
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [PARTS_FILE, "a", "c"], "b and d are never created");
        assert_eq!(std::fs::read(folder.join("c")).unwrap(), &data[200..300]);
        let mut piece = Vec::new();
        s.read_piece(&four_layout(), 1, &mut piece).unwrap();
        assert_eq!(
            piece,
            &data[128..256],
            "read back whole, b's part from the side file"
        );
        assert_eq!(pieces_of(&s.verify_existing(&four_layout(), 2)), [0, 1, 2]);
        drop(s);
        // A new run with the same selection finds the same pieces.
        let again = selected(dir.path(), [true, false, true, false], true);
        assert_eq!(
            pieces_of(&again.verify_existing(&four_layout(), 2)),
            [0, 1, 2]
        );
    }

    #[test]
    fn another_selection_moves_bytes_between_the_side_file_and_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let data = four_stream();
        let folder = dir.path().join("t");
        let s = selected(dir.path(), [true, false, true, false], true);
        s.write_at(0, &data[..384]).unwrap();
        drop(s);
        // b is selected now: all of it was in boundary pieces, so all of it comes back.
        let more = selected(dir.path(), [true, true, true, false], true);
        assert_eq!(std::fs::read(folder.join("b")).unwrap(), &data[100..200]);
        assert_eq!(
            pieces_of(&more.verify_existing(&four_layout(), 2)),
            [0, 1, 2]
        );
        drop(more);
        // a is dropped: its bytes in piece 0 move into the side file; the file stays as it was.
        let fewer = selected(dir.path(), [false, true, true, false], true);
        assert_eq!(
            pieces_of(&fewer.verify_existing(&four_layout(), 2)),
            [0, 1, 2]
        );
        assert_eq!(std::fs::read(folder.join("a")).unwrap(), &data[..100]);
        drop(fewer);
        // Every file: the side file gives back what it has (d's first 84 bytes) and goes.
        let all = selected(dir.path(), [true; 4], true);
        assert!(!folder.join(PARTS_FILE).exists());
        assert_eq!(std::fs::read(folder.join("d")).unwrap(), &data[300..384]);
        assert_eq!(
            pieces_of(&all.verify_existing(&four_layout(), 2)),
            [0, 1, 2]
        );
    }

    #[test]
    fn seeding_reads_the_side_file_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let data = four_stream();
        selected(dir.path(), [true, false, true, false], true)
            .write_at(0, &data[..384])
            .unwrap();
        let side_file = dir.path().join("t").join(PARTS_FILE);
        let before = std::fs::read(&side_file).unwrap();
        let seed = selected(dir.path(), [true, false, true, false], false);
        assert_eq!(
            pieces_of(&seed.verify_existing(&four_layout(), 2)),
            [0, 1, 2]
        );
        assert_eq!(std::fs::read(&side_file).unwrap(), before);
        // Without the side file the pieces it held cannot be read: they are not claimed.
        std::fs::remove_file(&side_file).unwrap();
        let seed = selected(dir.path(), [true, false, true, false], false);
        assert!(pieces_of(&seed.verify_existing(&four_layout(), 2)).is_empty());
        assert!(!side_file.exists(), "a seed creates nothing");
    }

    #[test]
    fn a_side_file_cut_short_before_its_header_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("t").join(PARTS_FILE), b"peerwire").unwrap();
        let s = selected(dir.path(), [true, false, true, false], true);
        s.write_at(0, &four_stream()[..384]).unwrap();
        assert_eq!(pieces_of(&s.verify_existing(&four_layout(), 2)), [0, 1, 2]);
    }

    #[test]
    fn a_side_file_of_another_torrent_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        selected(dir.path(), [true, false, true, false], true);
        let other = Storage {
            folder: Some(dir.path().join("t")),
            ..Storage::new(four_files(dir.path()), true)
        };
        // The same files cut into pieces of 64: not the torrent the slots were made for.
        let error = other
            .select(&Selection::from_flags(vec![true, false, false, false]), 64)
            .unwrap_err();
        assert_eq!(error.action, "use");
        assert!(
            error.source.to_string().contains("another torrent"),
            "{error:?}"
        );
    }
}
