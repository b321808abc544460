//! Fuzz target: the extension protocol messages (BEP 10 handshake, BEP 9 `ut_metadata`,
//! BEP 11 `ut_pex`), each `from_payload` on the same bytes.
//!
//! Round trips:
//! - `ut_metadata` and `ut_pex`: `from_payload(to_payload(m)) == m`.
//! - extended handshake: `to_payload` sorts the `m` names, so reading it back may reorder
//!   them; the check is that a second round gives the same bytes as the first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::wire::extension::{ExtendedHandshake, MetadataMessage, PexMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(handshake) = ExtendedHandshake::from_payload(data) {
        let first = handshake.to_payload();
        let again = ExtendedHandshake::from_payload(&first).expect("our own handshake reads");
        assert_eq!(again.to_payload(), first);
    }
    if let Ok(message) = MetadataMessage::from_payload(data) {
        let again = MetadataMessage::from_payload(&message.to_payload());
        assert!(
            again.ok() == Some(message),
            "ut_metadata did not round-trip"
        );
    }
    if let Ok(pex) = PexMessage::from_payload(data) {
        let again = PexMessage::from_payload(&pex.to_payload()).expect("our own pex reads");
        assert_eq!(again, pex);
    }
});
