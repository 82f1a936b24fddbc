//! `tagwatch har`'s audit of a HAR document
//! (`tagwatch_audit::har::audit_bytes`), as text and as JSON; the JSON
//! report must be JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_audit::har::{audit_bytes, HarArgs};

fuzz_target!(|data: &[u8]| {
    for json in [false, true] {
        let args = HarArgs {
            file: "fuzz.har".into(),
            consent: "none".into(),
            policy: None,
            page: None,
            json,
        };
        if let Ok((text, _)) = audit_bytes(data, &args) {
            if json {
                assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{text}");
            }
        }
    }
});
