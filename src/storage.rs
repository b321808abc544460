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

use crate::piece::{BlockRequest, PieceLayout};
use crate::wire::Bitfield;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// One file of the stream.
#[derive(Debug)]
pub struct StoredFile {
    pub path: PathBuf,
    /// Where the file starts in the stream.
    pub offset: u64,
    pub length: u64,
    /// A padding file: zeros, never written.
    pub padding: bool,
    /// Opened on first use (a torrent may have thousands of files).
    handle: Mutex<Option<Arc<File>>>,
}

/// The byte stream of a torrent, mapped onto files.
#[derive(Debug)]
pub struct Storage {
    files: Vec<StoredFile>,
    total_length: u64,
    writable: bool,
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
                    padding,
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
        Storage::new(entries, writable)
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
            if file.padding {
                chunk.fill(0);
            } else {
                let handle = self.open(file)?;
                handle
                    .read_exact_at(chunk, file_offset)
                    .map_err(|source| StorageError {
                        action: "read",
                        path: file.path.clone(),
                        source,
                    })?;
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
            if !file.padding {
                let handle = self.open(file)?;
                let chunk = &data[at..at + n as usize];
                handle
                    .write_all_at(chunk, file_offset)
                    .map_err(|source| StorageError {
                        action: "write",
                        path: file.path.clone(),
                        source,
                    })?;
            }
            at += n as usize;
        }
        Ok(())
    }

    /// Writes one received block at its place in its piece.
    pub fn write_block(
        &self,
        layout: &PieceLayout,
        block: &BlockRequest,
        data: &[u8],
    ) -> Result<(), StorageError> {
        self.write_at(
            layout.piece_offset(block.index) + u64::from(block.begin),
            data,
        )
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

    /// Creates the directories and every (non-padding) file, empty ones included, without
    /// touching data already there: a download into a directory that holds part of the
    /// content resumes from it.
    pub fn create_files(&self) -> Result<(), StorageError> {
        for file in self.files.iter().filter(|f| !f.padding) {
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
        verified
            .iter()
            .enumerate()
            .filter(|(_, ok)| **ok)
            .for_each(|(i, _)| bitfield.set(i));
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
}
