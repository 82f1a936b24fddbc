//! Forged input both test harnesses send (the collector's in-process one
//! and the binary's, which includes this file by path): reports from a
//! client that is not our monitor, with personal-data canaries in every URL
//! and text field, and report text that tries to break out of an export.

#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{json, Value};

use super::{batch, Resp, Server, ORIGIN};

/// The page view of the forged reports with canaries (no canary in it).
const PV: &str = "9f1c2e3d4b5a6978";
/// The page view of the payload reports: a page view of its own, so that
/// both inventories are kept when both batches are in one store.
const PAYLOAD_PV: &str = "0a1b2c3d4e5f6a7b";
pub const EMAIL: &str = "jane.doe@example.com";
pub const UUID: &str = "6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978";
pub const NUMBER: &str = "12345678";
/// What must never be found in the store or anything read from it.
pub const CANARIES: [&str; 7] = [
    "jane", "%40", "6f1c2e3d", NUMBER, "email=", "uid=", "secret",
];

/// A page URL as an old loader sends it (cut at `?` and `#`, which the
/// schema refuses) with canaries in its user info and path.
pub fn forged_page(path: &str) -> String {
    format!(
        "https://jane.doe%40example.com:secret@shop.example{path}/{EMAIL}/orders/{NUMBER}/{UUID}"
    )
}

/// A URL as a browser puts it in a CSP report: with query and fragment.
pub fn forged_url(path: &str) -> String {
    format!(
        "https://jane.doe%40example.com:secret@shop.example{path}/{EMAIL}/orders/{NUMBER}/{UUID}\
         ?email={EMAIL}&uid={NUMBER}#uid={UUID}"
    )
}

/// A batch from a forged (or old) client with canaries in every URL and
/// text field, and in fields the schema does not define.
pub fn forged_batch(key: &str) -> Vec<Value> {
    let ua = format!("Mozilla/5.0 ({EMAIL}; {NUMBER}; {UUID})");
    vec![
        json!({
            "type": "tagwatch-finding", "age": 10, "url": forged_page("/account"), "user_agent": ua,
            "body": {
                "schema": 1, "site": key, "page_view": PV, "finding": "cookie_before_consent",
                "vendor": "intercom", "category": "functional", "at": 1, "count": 1,
                "evidence": {
                    "kind": "cookie", "cookie": format!("uid_{NUMBER}"), "purpose": EMAIL,
                    "name": UUID, "frame": EMAIL, "initiator": NUMBER, "region": NUMBER,
                    "claimed": EMAIL, EMAIL: UUID, "nested": {"deep": [EMAIL, {NUMBER: UUID}]}
                },
                "consent": {"necessary": true, "functional": false, "analytics": false,
                            "marketing": false, "source": EMAIL, "note": NUMBER},
                "user": EMAIL, UUID: [NUMBER]
            }
        }),
        json!({
            "type": "tagwatch-finding", "age": 10, "url": forged_page("/cart"), "user_agent": ua,
            "body": {
                "schema": 1, "site": key, "page_view": PV, "finding": "script_before_consent",
                "vendor": "intercom", "at": 2,
                "evidence": {"kind": "request", "host": "widget.intercom.io",
                             "path": format!("/widget/{EMAIL}/{NUMBER}/{UUID}"),
                             "initiator": "script", "frame": "top", "purpose": "messenger"},
                "consent": {"necessary": true, "functional": false, "analytics": false, "marketing": false}
            }
        }),
        json!({
            "type": "tagwatch-health", "age": 0, "url": forged_page("/health"), "user_agent": ua,
            "body": {"schema": 1, "site": key, "status": "wasm_unavailable", "reason": EMAIL, "note": UUID}
        }),
        json!({
            "type": "tagwatch-health", "age": 0, "url": forged_page("/health2"), "user_agent": ua,
            "body": {"schema": 1, "site": key, "page_view": PV, "status": "api_missing", "reason": NUMBER}
        }),
        json!({
            "type": "tagwatch-inventory", "age": 0, "url": forged_page("/inventory"), "user_agent": ua,
            "body": {
                "schema": 1, "site": key, "page_view": PV,
                "vendors": [{"vendor": "intercom", "requests": 2, "hosts": ["widget.intercom.io"],
                             "regions": [NUMBER], "cookies": [EMAIL, UUID, format!("uid_{NUMBER}")],
                             "note": EMAIL}],
                "unclassified": [{"host": "cdn.unknown.example", "requests": 1, "note": UUID}],
                "user": EMAIL
            }
        }),
    ]
}

/// A legacy `application/csp-report` body and a Reporting API
/// (`application/reports+json`) one, with canaries in every field.
pub fn forged_csp(key: &str) -> (String, String) {
    let legacy = json!({"csp-report": {
        "document-uri": forged_url("/csp"),
        "referrer": forged_url("/from"),
        "blocked-uri": format!("https://cdn.unknown.example/u/{EMAIL}/{NUMBER}?k=secret"),
        "source-file": forged_url("/app.js"),
        "violated-directive": "script-src 'self'",
        "original-policy": format!("script-src 'self'; report-uri /csp/{key} {EMAIL}"),
        "script-sample": format!("secret({EMAIL})"),
        "note": UUID, EMAIL: NUMBER
    }});
    let api = json!([{
        "type": "csp-violation", "age": 5, "url": forged_url("/csp2"),
        "user_agent": format!("Mozilla/5.0 ({EMAIL})"),
        "body": {
            "documentURL": forged_url("/csp2"),
            "blockedURL": format!("https://www.googletagmanager.com/gtag/js/{NUMBER}?id=secret"),
            "effectiveDirective": "script-src-elem", "disposition": "enforce",
            "sample": format!("secret {EMAIL}"), "statusCode": 200,
            "note": format!("{EMAIL} {UUID}")
        }
    }]);
    (legacy.to_string(), api.to_string())
}

/// `POST path` from a client whose User-Agent holds canaries.
pub fn post_forged(
    server: &Server,
    path: &str,
    content_type: &str,
    origin: Option<&str>,
    body: &str,
) -> Resp {
    let mut headers = vec![
        ("Content-Type", content_type),
        (
            "User-Agent",
            "Mozilla/5.0 (jane.doe@example.com; uid 12345678)",
        ),
    ];
    if let Some(o) = origin {
        headers.push(("Origin", o));
    }
    server.http("POST", path, &headers, Some(body.as_bytes()))
}

/// The report batch `items` to `POST /r`, as a forged client sends it.
pub fn post_forged_reports(server: &Server, origin: Option<&str>, items: &[Value]) -> Resp {
    post_forged(server, "/r", "text/plain", origin, &batch(items))
}

/// Sends site `key`'s forged batch and both forged CSP reports, each
/// acknowledged (stored, redacted: not refused).
pub fn send_forged(server: &Server, key: &str) {
    let resp = post_forged_reports(server, Some(ORIGIN), &forged_batch(key));
    assert_eq!(resp.status, 204, "{}", resp.body);
    let (legacy, api) = forged_csp(key);
    let path = format!("/csp/{key}");
    let resp = post_forged(server, &path, "application/csp-report", None, &legacy);
    assert_eq!(resp.status, 204, "{}", resp.body);
    let resp = post_forged(server, &path, "application/reports+json", None, &api);
    assert_eq!(resp.status, 204, "{}", resp.body);
}

/// Fails naming `place` if `text` holds any canary.
pub fn assert_no_canary(place: &str, text: &str) {
    for canary in CANARIES {
        assert!(
            !text.contains(canary),
            "{canary:?} in {place}: {}",
            text.chars().take(3000).collect::<String>()
        );
    }
}

/// Report text that tries to break out of Markdown, HTML or a CSV cell.
pub const PAYLOADS: [&str; 12] = [
    "`<img src=x onerror=alert(1)>`",
    "<script>alert(1)</script>",
    "a|b|c",
    "[click](javascript:alert(1))",
    "**bold** ~~gone~~",
    "x;=cmd|' /C calc'!A0",
    "a,=1+1",
    "t\t=1+1",
    "l\n=1+1\r\n-SUM(A1)",
    "=HYPERLINK(\"http://evil.example\")",
    "``",
    "&lt;b&gt; <b>",
];

/// An inventory and one finding per payload, the payloads in every text
/// field an export shows.
pub fn payload_batch(key: &str) -> Vec<Value> {
    let consent =
        json!({"necessary": true, "functional": false, "analytics": false, "marketing": false});
    let mut items = vec![json!({
        "type": "tagwatch-inventory", "age": 0, "url": "https://shop.example/x;=1+1/-2",
        "user_agent": "UA",
        "body": {"schema": 1, "site": key, "page_view": PAYLOAD_PV,
                 "vendors": [{"vendor": "intercom", "requests": 1, "hosts": ["widget.intercom.io"],
                              "cookies": PAYLOADS, "regions": ["<b>x</b>"]},
                             {"vendor": "zz-unknown", "requests": 1, "hosts": ["cdn.zz.example"],
                              "cookies": ["|", "`"]}],
                 "unclassified": [{"host": "cdn.unknown.example", "requests": 1}]}
    })];
    for (i, p) in PAYLOADS.iter().enumerate() {
        let purpose: String = p.chars().take(32).collect();
        items.push(json!({
            "type": "tagwatch-finding", "age": 0, "url": "https://shop.example/=1+1",
            "user_agent": "UA",
            "body": {"schema": 1, "site": key, "page_view": PAYLOAD_PV, "finding": "cookie_before_consent",
                     "vendor": if i % 2 == 0 { "intercom" } else { "zz-unknown" }, "at": i,
                     "evidence": {"kind": "cookie", "cookie": p, "purpose": purpose, "name": p},
                     "consent": consent}
        }));
    }
    items
}
