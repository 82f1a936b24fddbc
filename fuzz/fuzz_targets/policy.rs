//! `Policy::from_json` and `Policy::from_lines` on arbitrary text (the
//! policy JSON the extension and the collector read, the line form the
//! in-page monitor receives from the loader), then the queries that read
//! what they stored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::{catalog, policy::Policy};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for policy in [Policy::from_json(&text), Policy::from_lines(&text)] {
        check(&policy, &text);
    }
});

fn check(policy: &Policy, text: &str) {
    for word in text.split(['"', ',', ':']).take(8) {
        let _ = policy.region_allowed(word);
        let _ = policy.page_allowed(word, word);
    }
    for vendor in catalog::vendors().iter().take(4) {
        let _ = policy.category(vendor.id, vendor.primary());
        let _ = policy.page_allowed(vendor.id, "/");
    }
}
