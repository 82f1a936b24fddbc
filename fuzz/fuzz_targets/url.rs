//! `url::parse`, `page_url`, `page_path`, `redact_path`, `host_within`,
//! `site_of` and `glob_match`. Input: a URL; after the first NUL byte, an
//! optional glob pattern to match against its path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::url;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (href, pattern) = text.split_once('\0').unwrap_or((&text, "*"));

    if let Some(parts) = url::parse(href) {
        assert!(!parts.host.is_empty());
        assert!(!parts.host.bytes().any(|b| b.is_ascii_uppercase()), "host not lower-case: {:?}", parts.host);
        assert!(url::host_within(&parts.host, &parts.host));
        let site = url::site_of(&parts.host);
        assert!(url::host_within(&parts.host, site), "{:?} not within its site {:?}", parts.host, site);
    }
    let _ = url::page_url(href);
    let path = url::page_path(href);
    let redacted = url::redact_path(&path);
    assert!(redacted.len() <= 256, "redacted path longer than the cap: {}", redacted.len());
    let _ = url::redact_path(href);

    // `*` matches anything; every pattern matches itself (a `*` can stand for
    // a literal `*`).
    assert!(url::glob_match("*", href));
    assert!(url::glob_match(pattern, pattern), "pattern does not match itself: {pattern:?}");
    let _ = url::glob_match(pattern, href);
    let _ = url::glob_match(href, pattern);
});
