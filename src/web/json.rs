//! Snapshots as the JSON of `/api/state` (every field is described in `docs/cli.md`) —
//! walkthrough §21. The numbers are those of BEP 3 ("The BitTorrent Protocol Specification"):
//! pieces, choking, interest; they go from the scheduler's `Snapshot` to the page through here.
//!
//! Written by hand, like the rest of peerwire's output: a few objects, numbers and strings.
//! Every string is escaped so that it is safe both as JSON and inside an HTML `<script>`
//! element (the `--report` file embeds this JSON): `<`, `>` and `&` become `\u003c` and so
//! on, so a client name `</script>` can never end the script it sits in.

use crate::scheduler::snapshot::{ChokeDecision, PeerView, Snapshot};
use crate::scheduler::{Progress, Traffic};
use std::fmt::Write;

/// One member of the page: `us` for `download`/`seed`, `seeder`, `leecher 1`... for `demo`.
pub struct Named<'a> {
    pub name: &'a str,
    pub snapshot: &'a Snapshot,
}

/// The whole `/api/state` document.
pub fn state(members: &[Named<'_>], summary: &[String]) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("{\"members\":[");
    list(&mut out, members, write_member);
    out.push_str("],\"summary\":[");
    list(&mut out, summary, |out, line| string(out, line));
    out.push_str("]}");
    out
}

fn write_member(out: &mut String, member: &Named<'_>) {
    let s = member.snapshot;
    out.push_str("{\"name\":");
    string(out, member.name);
    out.push_str(",\"peer_id\":");
    match &s.our_id {
        Some(id) => string(out, &id.to_hex()),
        None => out.push_str("null"),
    }
    // `fmt::Write` for `String` never fails: each `let _` below drops an `Ok(())`.
    let _ = write!(
        out,
        ",\"elapsed\":{},\"sequence\":{},\"finished\":{},\"pieces\":",
        number(s.elapsed),
        s.sequence,
        s.finished
    );
    let marks: String = s.pieces.iter().map(|m| m.letter()).collect();
    string(out, &marks);
    let _ = write!(out, ",\"availability\":{:?}", s.availability);
    out.push_str(",\"progress\":");
    write_progress(out, &s.progress);
    out.push_str(",\"peers\":[");
    list(out, &s.peers, write_peer);
    out.push_str("],\"choker\":");
    match &s.choker {
        Some(decision) => write_decision(out, decision),
        None => out.push_str("null"),
    }
    out.push_str(",\"traffic\":[");
    list(out, &s.traffic, write_traffic);
    out.push_str("]}");
}

fn write_progress(out: &mut String, p: &Progress) {
    let _ = write!(
        out,
        "{{\"pieces_have\":{},\"pieces_total\":{},\"pieces_at_start\":{},\"downloaded\":{},\
         \"uploaded\":{},\"peers\":{},\"failed_pieces\":{},\"banned\":{}}}",
        p.pieces_have,
        p.pieces_total,
        p.pieces_at_start,
        p.downloaded,
        p.uploaded,
        p.peers,
        p.failed_pieces,
        p.banned
    );
}

fn write_peer(out: &mut String, p: &PeerView) {
    out.push_str("{\"addr\":");
    string(out, &p.addr.to_string());
    out.push_str(",\"peer_id\":");
    match &p.peer_id {
        Some(id) => string(out, &id.to_hex()),
        None => out.push_str("null"),
    }
    out.push_str(",\"client\":");
    string(out, &p.client);
    out.push_str(",\"source\":");
    string(out, p.source.name());
    out.push_str(",\"transport\":");
    string(out, &p.transport);
    let _ = write!(
        out,
        ",\"we_unchoke\":{},\"it_is_interested\":{},\"it_unchokes\":{},\"we_are_interested\":{},\
         \"downloaded\":{},\"uploaded\":{},\"download_rate\":{},\"upload_rate\":{},\
         \"in_flight\":{},\"pieces_count\":{},\"pieces\":",
        p.we_unchoke,
        p.it_is_interested,
        p.it_unchokes,
        p.we_are_interested,
        p.downloaded,
        p.uploaded,
        number(p.download_rate),
        number(p.upload_rate),
        p.in_flight,
        p.pieces_count
    );
    string(out, &p.pieces);
    out.push('}');
}

fn write_decision(out: &mut String, d: &ChokeDecision) {
    let _ = write!(
        out,
        "{{\"at\":{},\"seeding\":{},\"regular\":[",
        number(d.at),
        d.seeding
    );
    list(out, &d.regular, |out, (addr, rate)| {
        out.push_str("{\"addr\":");
        string(out, &addr.to_string());
        let _ = write!(out, ",\"rate\":{}}}", number(*rate));
    });
    out.push_str("],\"optimistic\":");
    match &d.optimistic {
        Some(addr) => string(out, &addr.to_string()),
        None => out.push_str("null"),
    }
    out.push_str(",\"choked\":[");
    list(out, &d.choked, |out, addr| string(out, &addr.to_string()));
    out.push_str("]}");
}

fn write_traffic(out: &mut String, t: &Traffic) {
    out.push_str("{\"peer_id\":");
    string(out, &t.peer_id.to_hex());
    out.push_str(",\"addr\":");
    string(out, &t.addr.to_string());
    let _ = write!(
        out,
        ",\"downloaded\":{},\"uploaded\":{},\"pieces\":{}}}",
        t.downloaded, t.uploaded, t.pieces
    );
}

/// A number JSON accepts: NaN and infinities (a rate over no time) become 0; one decimal.
fn number(x: f64) -> String {
    match x.is_finite() {
        true => format!("{x:.1}"),
        false => "0".to_string(),
    }
}

/// The items of a JSON list, each written by `write`, separated by commas (the brackets are
/// the caller's).
fn list<T>(out: &mut String, items: &[T], mut write: impl FnMut(&mut String, &T)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(out, item);
    }
}

/// A JSON string, safe inside HTML `<script>` too (see the module doc).
pub fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_safe_in_json_and_in_a_script_element() {
        let mut out = String::new();
        string(&mut out, "<script>alert(\"x\")</script>\n&\u{2028}");
        assert_eq!(
            out,
            "\"\\u003cscript\\u003ealert(\\\"x\\\")\\u003c/script\\u003e\\u000a\\u0026\\u2028\""
        );
    }

    #[test]
    fn an_empty_snapshot_is_a_document() {
        let snapshot = Snapshot::default();
        let json = state(
            &[Named {
                name: "us",
                snapshot: &snapshot,
            }],
            &[],
        );
        assert!(json.starts_with("{\"members\":[{\"name\":\"us\",\"peer_id\":null"));
        assert!(json.ends_with("\"traffic\":[]}],\"summary\":[]}"), "{json}");
        assert_eq!(number(f64::NAN), "0");
    }
}
