//! `POST /csp/KEY` bodies — the legacy `{"csp-report": …}` and Reporting
//! API batches (`[{"type": "csp-violation", …}]`) — as the collector reads
//! them (`tagwatch_collector::read_request_body` with a site). Input as for
//! the `ingest` target: an encoding byte, then the body.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (mut headers, body) = common::encoded(selector, body);
    headers.insert(http::header::USER_AGENT, http::HeaderValue::from_static("fuzz"));
    if let Ok(parsed) =
        tagwatch_collector::read_request_body(Some("tw_fuzz"), &headers, body, 1_700_000_000_000)
    {
        assert!(parsed.sites.iter().all(|s| s == "tw_fuzz"), "{:?}", parsed.sites);
        common::assert_redacted(&parsed);
    }
});
