//! Fuzz target: the metainfo loader (`Metainfo::from_bytes`, a whole `.torrent` file).
//! Checks only that nothing panics, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::metainfo::{Metainfo, piece_aligned_files};

fuzz_target!(|data: &[u8]| {
    if let Ok(metainfo) = Metainfo::from_bytes(data) {
        // Walk what was loaded, as `info` and `download` do.
        let _ = metainfo.tracker_tiers();
        let _ = metainfo.info.num_pieces();
        let _ = metainfo.info.content_files().count();
        // A v2 or hybrid torrent: its files laid out as pieces, as storage will need them.
        if let Some(v2) = &metainfo.v2 {
            let _ = piece_aligned_files(&v2.files, metainfo.info.piece_length);
        }
    }
});
