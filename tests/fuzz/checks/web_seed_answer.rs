// The web seed answer property, shared word for word by the fuzz target
// (`fuzz_targets/web_seed_answer.rs`) and the seed replay in `cargo test` (`tests/fuzz_corpus.rs`),
// which both `include!` this file. The input is text: a first line `STATUS FIRST LEN`, then the
// values of Content-Range, Content-Length and Retry-After, one a line (an empty line: no such
// header). Nothing may panic, and an answer `Answer::check` accepts must be one whose body is
// exactly the bytes asked for: a 206 naming exactly FIRST..FIRST+LEN, or a 200 for the whole
// file from byte 0.

fn check_web_seed_answer(data: &[u8]) {
    use peerwire::web_seed::answer::{Answer, ContentRange, retry_after};

    let text = String::from_utf8_lossy(data);
    // Each parser alone, on the whole input.
    let _ = ContentRange::parse(&text);
    if let Some(wait) = retry_after(&text) {
        assert!(wait <= peerwire::web_seed::answer::MAX_RETRY_AFTER, "{wait:?}");
    }
    let mut lines = text.split('\n');
    let head: Vec<u64> = lines
        .next()
        .unwrap_or_default()
        .split(' ')
        .filter_map(|w| w.parse().ok())
        .collect();
    let status = head.first().map_or(206, |&s| (s % 1000) as u16);
    let first = head.get(1).copied().unwrap_or(0);
    let len = head.get(2).copied().unwrap_or(16384).max(1);
    let mut header = || lines.next().filter(|l| !l.is_empty());
    let answer = Answer {
        status,
        content_range: header(),
        content_length: header(),
        retry_after: header(),
    };
    if answer.check("http://127.0.0.1/fuzz", first, len).is_ok() {
        match status {
            206 => {
                let range = answer.content_range.and_then(ContentRange::parse);
                let range = range.expect("a 206 accepted has a Content-Range");
                assert_eq!(range.first, first, "{answer:?}");
                assert_eq!(range.last, first.saturating_add(len - 1), "{answer:?}");
            }
            200 => assert_eq!(first, 0, "a 200 accepted for a part: {answer:?}"),
            _ => panic!("status {status} accepted: {answer:?}"),
        }
    }
}
