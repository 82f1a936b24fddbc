//! `cmp::from_cookies` on an arbitrary `Cookie:` header (every CMP's cookie
//! format: OneTrust, Cookiebot, Didomi, CookieYes, Complianz, TrustArc, Osano,
//! Klaro, orestbida cookieconsent), and the same bytes as a live CMP state
//! (`cmp::from_choices`, the comma-separated names granted or refused by
//! their parity) for every CMP id, with site overrides read from the first
//! line as a policy's JSON (`Policy::from_json`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::cmp;
use tagwatch_core::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    if let Some(c) = cmp::from_cookies(&header) {
        assert!(cmp::PRECEDENCE.contains(&c.cmp), "unknown cmp id {:?}", c.cmp);
    }
    let (json, choices) = header.split_once('\n').unwrap_or(("", &header));
    let policy = Policy::from_json(json);
    if let Some(c) = cmp::from_cookies_with(choices, &policy.consent_names) {
        assert!(cmp::PRECEDENCE.contains(&c.cmp), "unknown cmp id {:?}", c.cmp);
    }
    let pairs: Vec<(&str, bool)> = choices.split(',').map(|name| (name, name.len() % 2 == 0)).collect();
    for id in cmp::PRECEDENCE.into_iter().chain(["usercentrics", "nope"]) {
        let got = cmp::from_choices(id, &pairs, &pairs, &policy.consent_names);
        assert_eq!(got.is_some(), cmp::cmp_id(id).is_some());
    }
});
