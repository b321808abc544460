//! Fuzz target: the DHT's KRPC messages (BEP 5, "DHT Protocol"): `Message::decode`, as the
//! `dht` node reads every datagram.
//!
//! Round trip: a message that decodes, encoded again, decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::dht::krpc::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let again = Message::decode(&message.encode());
        assert!(
            again.as_ref().ok() == Some(&message),
            "{message:?} came back as {again:?}"
        );
    }
});
