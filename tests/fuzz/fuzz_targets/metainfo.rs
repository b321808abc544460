//! Fuzz target: the metainfo loader (`Metainfo::from_bytes`, a whole `.torrent` file).
//! Checks only that nothing panics, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::metainfo::Metainfo;

fuzz_target!(|data: &[u8]| {
    if let Ok(metainfo) = Metainfo::from_bytes(data) {
        // Walk what was loaded, as `info` and `download` do.
        let _ = metainfo.tracker_tiers();
        let _ = metainfo.info.num_pieces();
        let _ = metainfo.info.content_files().count();
    }
});
