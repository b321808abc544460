//! Fuzz target: the UDP tracker packets (BEP 15): `Request::decode` (as the built-in tracker
//! reads them) and `Response::decode` (as the client does, for IPv4 and IPv6 peers).
//!
//! Round trip: a packet that decodes is encoded again and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::tracker::udp_packet::{Request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::decode(data) {
        assert_eq!(Request::decode(&request.encode()), Ok(request));
    }
    for ipv6 in [false, true] {
        if let Ok(response) = Response::decode(data, ipv6) {
            assert_eq!(Response::decode(&response.encode(), ipv6), Ok(response));
        }
    }
});
