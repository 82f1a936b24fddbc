//! `Policy::from_json` on arbitrary text (the policy JSON the in-page
//! monitor receives from the page), then the queries that read what it
//! stored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::{catalog, policy::Policy};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let policy = Policy::from_json(&text);
    for word in text.split(['"', ',', ':']).take(8) {
        let _ = policy.region_allowed(word);
        let _ = policy.page_allowed(word, word);
    }
    for vendor in catalog::vendors().iter().take(4) {
        let _ = policy.category(vendor.id, vendor.primary());
        let _ = policy.page_allowed(vendor.id, "/");
    }
});
