//! `Policy::apply_rule` on arbitrary compact policy text (one rule a line),
//! then the queries that read what it stored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::{catalog, policy::Policy};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut policy = Policy::default();
    for line in text.lines() {
        policy.apply_rule(line);
    }
    for line in text.lines().take(8) {
        let mut f = line.split('\t');
        let (a, b) = (f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let _ = policy.region_allowed(a);
        let _ = policy.page_allowed(a, b);
    }
    for vendor in catalog::vendors().iter().take(4) {
        let _ = policy.category(vendor.id, vendor.primary());
        let _ = policy.page_allowed(vendor.id, "/");
    }
});
