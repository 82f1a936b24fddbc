//! An origin-less report is checked against the origin a browser gives its
//! page URL (WHATWG URL parsing: backslashes, IDNA, percent-encoded hosts,
//! trailing dots, user info), and stored under that page.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use serde_json::{json, Value};

use common::*;

fn post_reports(server: &Server, origin: Option<&str>, items: &[Value]) -> Resp {
    let mut headers = vec![("Content-Type", "text/plain")];
    if let Some(o) = origin {
        headers.push(("Origin", o));
    }
    server.http("POST", "/r", &headers, Some(batch(items).as_bytes()))
}

#[test]
fn origin_less_reports_are_checked_against_the_origin_a_browser_sees() {
    let dir = temp_dir("spoof");
    let db = db_url(&dir.join("tagwatch.db"));
    let key = site_add(&db, &["https://*.shop.example", ORIGIN]);
    let server = Server::start(&db, &[]);
    // One page view per URL: the rows must not dedupe into one.
    let item = |n: usize, url: &str| {
        let mut f = finding(
            &key,
            &format!("{n:016x}"),
            "script_before_consent",
            "intercom",
            0,
            1,
        );
        f["url"] = json!(url);
        f
    };
    let cases = [
        // A backslash is a path separator: the page is on evil.example.
        ("https://evil.example\\.shop.example/", 403, None),
        ("https://evil.example/\\@a.shop.example", 403, None),
        ("https://evil.example\\@a.shop.example/", 403, None),
        // A trailing dot is another origin.
        ("https://a.shop.example./", 403, None),
        ("https://shop.example.evil.example/", 403, None),
        // What a browser reads as a registered origin is one.
        (
            "https://a.shop.example\\@evil.example/",
            204,
            Some("https://a.shop.example/:id/"),
        ),
        (
            "https://A.SHOP.EXAMPLE:443/x",
            204,
            Some("https://a.shop.example/x"),
        ),
        (
            "https://a.shop\u{3002}example/y",
            204,
            Some("https://a.shop.example/y"),
        ),
        (
            "https://a.shop\u{ff0e}example/z",
            204,
            Some("https://a.shop.example/z"),
        ),
        (
            "https://a%2Eshop.example/w",
            204,
            Some("https://a.shop.example/w"),
        ),
        (
            "https://shop.example:443/v",
            204,
            Some("https://shop.example/v"),
        ),
        (
            "https://user:pw@b.shop.example/u",
            204,
            Some("https://b.shop.example/u"),
        ),
    ];
    for (n, (url, status, stored)) in cases.into_iter().enumerate() {
        let resp = post_reports(&server, None, &[item(n, url)]);
        assert_eq!(resp.status, status, "{url}: {}", resp.body);
        if let Some(page) = stored {
            let rows = server.findings(&format!("site={key}&page={}", encode(page)));
            assert_eq!(rows.len(), 1, "{url} stored as {page}?");
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
