//! Fuzz target: the web view's request parser (`web::http::parse_request`), on the bytes a
//! browser (or anyone who can connect to `--web`) sends as a request head.
//!
//! Beyond "no panic": a request that parses names a path that starts with `/`, and its query
//! values are at most as long as the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerwire::web::http::parse_request;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_request(data) {
        assert!(request.path.starts_with('/'), "{request:?}");
        for (key, value) in &request.query {
            assert!(key.len() + value.len() <= data.len(), "{request:?}");
        }
    }
});
