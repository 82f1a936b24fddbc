//! `cmp::from_cookies` on an arbitrary `Cookie:` header (every CMP's cookie
//! format: OneTrust, Cookiebot, Didomi, CookieYes, Complianz, TrustArc, Osano,
//! Klaro, orestbida cookieconsent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::cmp;

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    if let Some(c) = cmp::from_cookies(&header) {
        assert!(cmp::PRECEDENCE.contains(&c.cmp), "unknown cmp id {:?}", c.cmp);
    }
});
