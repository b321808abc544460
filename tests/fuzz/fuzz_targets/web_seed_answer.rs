//! Fuzz target: a web seed's answer to a range request (BEP 19), as `web_seed::answer` reads it:
//! `ContentRange::parse`, `retry_after`, and `Answer::check` on a status line and three header
//! values taken from the input (the property is in `checks/web_seed_answer.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../checks/web_seed_answer.rs");

fuzz_target!(|data: &[u8]| check_web_seed_answer(data));
