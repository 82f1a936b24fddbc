//! `POST /r` bodies as the collector reads them
//! (`tagwatch_collector::read_request_body`: Content-Encoding undone, the
//! batch parsed, validated and redacted). Input: the first byte picks the
//! `Content-Encoding` (low 3 bits: none, identity, gzip, x-gzip, deflate,
//! br, or one it refuses) and whether the rest is compressed with it first
//! (bit 3: so the reader sees valid streams of arbitrary batches, not only
//! broken streams); the rest is the body. An accepted batch must hold only
//! what the reader promises: every report's site key, and nothing refused
//! after being accepted.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (headers, body) = common::encoded(selector, body);
    if let Ok(parsed) = tagwatch_collector::read_request_body(None, &headers, body, 1_700_000_000_000) {
        assert!(!parsed.sites.is_empty(), "an accepted batch reports for a site");
        common::assert_redacted(&parsed);
    }
});
