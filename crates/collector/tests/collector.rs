//! The collector's HTTP behaviour, in the process: each test starts a
//! collector over its own SQLite file and calls its routes (harness in
//! common/). The tests of what is stored and read run a second time with
//! the reports in ClickHouse (`--events`, `_clickhouse`): same answers. Process-level behaviour (SIGTERM) is in cli/tests/serve.rs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use serde_json::{json, Value};

use common::*;

const PV: &str = "9f1c2e3d4b5a6978";

fn setup(name: &str, extra: &[&str]) -> (Server, String) {
    let dir = temp_dir(name);
    let db = dir.join("tagwatch.db");
    let key = site_add(&db_url(&db), &[ORIGIN, "http://localhost:3000"]);
    let mut server = Server::start(&db_url(&db), extra);
    server.owned_dir = Some(dir);
    (server, key)
}

// ---------------------------------------------------------------- tests

#[test]
fn accepts_a_batch_and_serves_it_with_filters() {
    accepts_a_batch_and_serves_it_with_filters_on(&[]);
}

#[test]
fn accepts_a_batch_and_serves_it_with_filters_clickhouse() {
    if let Some(events) = ch::TestEvents::create("accept") {
        accepts_a_batch_and_serves_it_with_filters_on(&["--events", &events.url]);
    }
}

fn accepts_a_batch_and_serves_it_with_filters_on(events: &[&str]) {
    let (server, key) = setup("accept", events);
    let before = now_ms();
    let resp = server.post(
        Some(ORIGIN),
        &batch(&[
            finding(&key, PV, "script_before_consent", "intercom", 60_000, 1),
            finding(&key, PV, "cookie_before_consent", "intercom", 5_000, 2),
            finding(&key, PV, "tracking_before_consent", "hotjar", 0, 1),
        ]),
    );
    let after = now_ms();
    assert_eq!(resp.status, 204, "{}", resp.body);
    assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));

    let all = server.findings(&format!("site={key}"));
    assert_eq!(all.len(), 3);
    // Ordered by at: the oldest observation first.
    let kinds: Vec<&str> = all.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "script_before_consent",
            "cookie_before_consent",
            "tracking_before_consent"
        ]
    );
    let cookie = &all[1];
    assert_eq!(cookie["vendor"], "intercom");
    assert_eq!(cookie["site"], key.as_str());
    assert_eq!(cookie["page"], "https://shop.example/support");
    assert_eq!(cookie["page_view"], PV);
    assert_eq!(cookie["category"], "functional");
    assert_eq!(cookie["count"], 2);
    assert_eq!(cookie["evidence"]["host"], "widget.intercom.io");
    assert_eq!(cookie["consent"]["functional"], false);
    // at = received − age, with millisecond precision.
    let at = cookie["at"].as_str().unwrap();
    assert!(at.ends_with('Z') && at.len() == 24, "{at}");
    let at = parse_iso_ms(at);
    assert!(
        (before - 5_000..=after - 5_000).contains(&at),
        "at {at} not in [{}, {}]",
        before - 5_000,
        after - 5_000
    );
    let received = parse_iso_ms(cookie["received_at"].as_str().unwrap());
    assert_eq!(received - at, 5_000);

    let by_type = server.findings(&format!("site={key}&type=cookie_before_consent"));
    assert_eq!(by_type.len(), 1);
    assert_eq!(by_type[0]["type"], "cookie_before_consent");
    let by_vendor = server.findings(&format!("site={key}&vendor=hotjar"));
    assert_eq!(by_vendor.len(), 1);
    assert_eq!(by_vendor[0]["vendor"], "hotjar");
    let since_ms = server.findings(&format!("site={key}&since={}", before - 30_000));
    assert_eq!(since_ms.len(), 2);
    let since_iso = all[1]["at"].as_str().unwrap();
    let since = server.findings(&format!("site={key}&since={since_iso}"));
    assert_eq!(since.len(), 2, "since is inclusive");
    let none = server.findings(&format!("site={key}&vendor=intercom&type=gpc_ignored"));
    assert!(none.is_empty());
    let limited = server.findings(&format!("site={key}&limit=1"));
    assert_eq!(limited.len(), 1);
}

#[test]
fn a_resent_finding_updates_its_count_instead_of_adding_a_row() {
    a_resent_finding_updates_its_count_instead_of_adding_a_row_on(&[]);
}

#[test]
fn a_resent_finding_updates_its_count_instead_of_adding_a_row_clickhouse() {
    if let Some(events) = ch::TestEvents::create("dedupe") {
        a_resent_finding_updates_its_count_instead_of_adding_a_row_on(&["--events", &events.url]);
    }
}

fn a_resent_finding_updates_its_count_instead_of_adding_a_row_on(events: &[&str]) {
    let (server, key) = setup("dedupe", events);
    let f = |count| finding(&key, PV, "cookie_before_consent", "intercom", 100, count);
    assert_eq!(server.post(Some(ORIGIN), &batch(&[f(1)])).status, 204);
    assert_eq!(server.post(Some(ORIGIN), &batch(&[f(3)])).status, 204);
    // A late duplicate of the first send does not lower it.
    assert_eq!(server.post(Some(ORIGIN), &batch(&[f(1)])).status, 204);
    let rows = server.findings(&format!("site={key}"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["count"], 3);
    // Evidence key order does not matter for the dedupe key.
    let mut reordered = f(4);
    let ev = json!({"purpose": "messenger", "frame": "top", "initiator": "script",
                    "path": "/widget/abc12345", "host": "widget.intercom.io", "kind": "request"});
    reordered["body"]["evidence"] = ev;
    assert_eq!(server.post(Some(ORIGIN), &batch(&[reordered])).status, 204);
    let rows = server.findings(&format!("site={key}"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["count"], 4);
    // Another page view is another row.
    let other = finding(
        &key,
        "00000000000000aa",
        "cookie_before_consent",
        "intercom",
        0,
        1,
    );
    assert_eq!(server.post(Some(ORIGIN), &batch(&[other])).status, 204);
    assert_eq!(server.findings(&format!("site={key}")).len(), 2);
}

#[test]
fn malformed_bodies_get_400_with_a_reason() {
    let (server, key) = setup("malformed", &[]);
    let resp = server.post(Some(ORIGIN), "{not json");
    assert_eq!(resp.status, 400);
    assert!(resp.body.starts_with("body is not JSON"), "{}", resp.body);

    let mut bad = finding(&key, PV, "cookie_before_consent", "intercom", 0, 1);
    bad["body"]["finding"] = json!("foo");
    let resp = server.post(Some(ORIGIN), &batch(&[bad]));
    assert_eq!(resp.status, 400);
    assert!(
        resp.body
            .starts_with("item 0: body.finding: \"foo\" is not one of"),
        "{}",
        resp.body
    );

    let mut query = finding(&key, PV, "cookie_before_consent", "intercom", 0, 1);
    query["url"] = json!("https://shop.example/support?email=canary@example.com");
    let ok = finding(&key, PV, "script_before_consent", "intercom", 0, 1);
    let resp = server.post(Some(ORIGIN), &batch(&[ok, query]));
    assert_eq!(resp.status, 400);
    assert!(resp.body.starts_with("item 1: url: "), "{}", resp.body);
    assert!(resp.body.contains("does not match"), "{}", resp.body);

    let resp = server.post(Some(ORIGIN), "[]");
    assert_eq!(resp.status, 400);
    assert!(resp.body.starts_with("batch: "), "{}", resp.body);

    let mut no_pv = finding(&key, PV, "cookie_before_consent", "intercom", 0, 1);
    no_pv["body"].as_object_mut().unwrap().remove("page_view");
    let resp = server.post(Some(ORIGIN), &batch(&[no_pv]));
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("page_view"), "{}", resp.body);

    // Nothing of the refused batches was stored.
    assert!(server.findings(&format!("site={key}")).is_empty());
}

#[test]
fn unknown_sites_and_foreign_origins_get_403() {
    let (server, key) = setup("forbidden", &[]);
    let unknown = finding(
        "tw_doesnotexist",
        PV,
        "cookie_before_consent",
        "intercom",
        0,
        1,
    );
    let resp = server.post(Some(ORIGIN), &batch(&[unknown]));
    assert_eq!(resp.status, 403);
    assert!(resp.body.contains("unknown site key"), "{}", resp.body);

    let good = finding(&key, PV, "cookie_before_consent", "intercom", 0, 1);
    let good_body = batch(std::slice::from_ref(&good));
    let resp = server.post(Some("https://evil.example"), &good_body);
    assert_eq!(resp.status, 403);
    assert!(
        resp.body.contains("https://evil.example is not registered"),
        "{}",
        resp.body
    );
    assert_eq!(resp.header("access-control-allow-origin"), None);

    let resp = server.post(Some("https://shop.example.evil.example"), &good_body);
    assert_eq!(resp.status, 403);
    let resp = server.post(Some("not an origin"), &good_body);
    assert_eq!(resp.status, 403);
    assert!(resp.body.contains("not a web origin"), "{}", resp.body);

    // No Origin, or "null" (sendBeacon from a no-referrer page): the origin
    // of the report's page URL must be registered instead.
    let mut foreign_page = good.clone();
    foreign_page["url"] = json!("https://evil.example/x");
    for origin in [None, Some("null")] {
        let resp = server.post(origin, &batch(std::slice::from_ref(&foreign_page)));
        assert_eq!(resp.status, 403, "{origin:?}");
        assert!(
            resp.body
                .contains("\"https://evil.example\" is not registered"),
            "{}",
            resp.body
        );
        let resp = server.post(origin, &batch(&[good.clone(), foreign_page.clone()]));
        assert_eq!(resp.status, 403, "{origin:?}");
        let resp = server.post(origin, &good_body);
        assert_eq!(resp.status, 204, "{origin:?}: {}", resp.body);
        assert_eq!(resp.header("access-control-allow-origin"), None);
    }

    // A mixed batch with one unknown site is refused whole.
    let unknown = finding(
        "tw_doesnotexist",
        PV,
        "cookie_before_consent",
        "intercom",
        0,
        1,
    );
    let resp = server.post(Some(ORIGIN), &batch(&[good.clone(), unknown]));
    assert_eq!(resp.status, 403);

    // The other registered origin of the site works, normalised.
    let resp = server.post(Some("http://LOCALHOST:3000"), &good_body);
    assert_eq!(resp.status, 204, "{}", resp.body);
    assert_eq!(server.findings(&format!("site={key}")).len(), 1);
}

#[test]
fn strict_origin_refuses_reports_without_a_real_origin() {
    let (server, key) = setup("strict", &["--strict-origin"]);
    let body = batch(&[finding(&key, PV, "cookie_before_consent", "intercom", 0, 1)]);
    let resp = server.post(None, &body);
    assert_eq!(resp.status, 403);
    assert!(resp.body.contains("missing Origin"), "{}", resp.body);
    let resp = server.post(Some("null"), &body);
    assert_eq!(resp.status, 403);
    assert!(resp.body.contains("--strict-origin"), "{}", resp.body);
    assert_eq!(server.post(Some(ORIGIN), &body).status, 204);
}

#[test]
fn oversized_bodies_get_413() {
    let (server, key) = setup("large", &[]);
    let item = finding(&key, PV, "cookie_before_consent", "intercom", 0, 1).to_string();
    let mut body = String::from("[");
    body.push_str(&item);
    while body.len() < 70 * 1024 {
        body.push_str(&" ".repeat(1024));
    }
    body.push(']');
    let resp = server.post(Some(ORIGIN), &body);
    assert_eq!(resp.status, 413);
    assert!(resp.body.contains("64 KiB"), "{}", resp.body);
    assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));

    // Without a Content-Length the cap applies while reading.
    let resp = server.http(
        "POST",
        "/r",
        &[
            ("Content-Type", "text/plain"),
            ("Origin", ORIGIN),
            ("Transfer-Encoding", "chunked"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(resp.status, 413);

    // Exactly 64 KiB is fine.
    let mut body = String::from("[");
    body.push_str(&item);
    body.push(']');
    let pad = 64 * 1024 - body.len();
    body.insert_str(1, &" ".repeat(pad));
    assert_eq!(body.len(), 64 * 1024);
    let resp = server.post(Some(ORIGIN), &body);
    assert_eq!(resp.status, 204, "{}", resp.body);
}

#[test]
fn other_content_types_get_415() {
    let (server, key) = setup("ctype", &[]);
    let body = batch(&[finding(&key, PV, "cookie_before_consent", "intercom", 0, 1)]);
    for ct in [
        Some("application/x-www-form-urlencoded"),
        Some("text/html"),
        None,
    ] {
        let mut headers = vec![("Origin", ORIGIN)];
        if let Some(ct) = ct {
            headers.push(("Content-Type", ct));
        }
        let resp = server.http("POST", "/r", &headers, Some(body.as_bytes()));
        assert_eq!(resp.status, 415, "{ct:?}");
        assert!(resp.body.contains("text/plain"), "{}", resp.body);
    }
    for ct in ["application/json", "application/reports+json", "text/plain"] {
        let resp = server.http(
            "POST",
            "/r",
            &[("Origin", ORIGIN), ("Content-Type", ct)],
            Some(body.as_bytes()),
        );
        assert_eq!(resp.status, 204, "{ct}: {}", resp.body);
    }
}

#[test]
fn the_read_api_needs_the_admin_token_and_a_site() {
    let (server, key) = setup("auth", &[]);
    let path = format!("/api/findings?site={key}");
    let resp = server.http("GET", &path, &[], None);
    assert_eq!(resp.status, 401);
    assert!(resp
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let resp = server.http(
        "GET",
        &path,
        &[("Authorization", "Bearer wrong-token")],
        None,
    );
    assert_eq!(resp.status, 401);
    assert!(resp.body.contains("wrong admin token"));
    let resp = server.http("GET", &format!("/api/health?site={key}"), &[], None);
    assert_eq!(resp.status, 401);

    let resp = server.get_api("/api/findings");
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("site"), "{}", resp.body);
    let resp = server.get_api("/api/findings?site=tw_nope");
    assert_eq!(resp.status, 404);
    let resp = server.get_api(&format!("/api/findings?site={key}&since=yesterday"));
    assert_eq!(resp.status, 400);
    assert!(resp.body.starts_with("since:"), "{}", resp.body);
    let resp = server.get_api(&format!("/api/findings?site={key}&type=foo"));
    assert_eq!(resp.status, 400);
    let resp = server.get_api(&format!("/api/findings?site={key}"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.body, r#"{"findings":[]}"#);

    let resp = server.http("GET", "/healthz", &[], None);
    assert_eq!(resp.status, 200);
    let resp = server.http("GET", "/nope", &[], None);
    assert_eq!(resp.status, 404);
}

#[test]
fn health_reports_go_to_the_health_api() {
    health_reports_go_to_the_health_api_on(&[]);
}

#[test]
fn health_reports_go_to_the_health_api_clickhouse() {
    if let Some(events) = ch::TestEvents::create("health") {
        health_reports_go_to_the_health_api_on(&["--events", &events.url]);
    }
}

fn health_reports_go_to_the_health_api_on(events: &[&str]) {
    let (server, key) = setup("health", events);
    let report = health_report(&key, 250);
    let resp = server.post(Some(ORIGIN), &batch(&[report]));
    assert_eq!(resp.status, 204, "{}", resp.body);
    let resp = server.get_api(&format!("/api/health?site={key}"));
    assert_eq!(resp.status, 200);
    let v: Value = serde_json::from_str(&resp.body).unwrap();
    let h = &v["health"][0];
    assert_eq!(h["site"], key.as_str());
    assert_eq!(h["page"], "https://shop.example/");
    assert_eq!(h["status"], "wasm_unavailable");
    assert_eq!(h["reason"], "CompileError");
    assert!(h["at"].as_str().unwrap().ends_with('Z'));
    assert!(server.findings(&format!("site={key}")).is_empty());
}

#[test]
fn an_unmonitored_page_view_is_a_health_report() {
    // The loader's own report when the page view ended before the monitor
    // started: the origin only, no page view id, no reason.
    let (server, key) = setup("unmonitored", &[]);
    let mut report = health_report(&key, 0);
    report["body"]["status"] = json!("unmonitored");
    report["body"]["reason"] = json!("");
    let resp = server.post(Some(ORIGIN), &batch(&[report]));
    assert_eq!(resp.status, 204, "{}", resp.body);
    let resp = server.get_api(&format!("/api/health?site={key}"));
    let v: Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(v["health"][0]["status"], "unmonitored");
    assert_eq!(v["health"][0]["page"], "https://shop.example/");
    assert!(server.findings(&format!("site={key}")).is_empty());
}

#[test]
fn flooding_a_site_gets_429_with_retry_after() {
    let (server, key) = setup("rate", &["--rate", "0.1", "--burst", "3"]);
    let body = batch(&[finding(&key, PV, "cookie_before_consent", "intercom", 0, 1)]);
    let statuses: Vec<Resp> = (0..5).map(|_| server.post(Some(ORIGIN), &body)).collect();
    let codes: Vec<u16> = statuses.iter().map(|r| r.status).collect();
    assert_eq!(codes, [204, 204, 204, 429, 429]);
    let refused = &statuses[3];
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert!(
        refused.body.contains("too many reports"),
        "{}",
        refused.body
    );
    assert_eq!(refused.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        refused.header("access-control-expose-headers"),
        Some("Retry-After")
    );
    // Another site has its own bucket.
    let other = site_add(&server.db, &[ORIGIN]);
    let body = batch(&[finding(
        &other,
        PV,
        "cookie_before_consent",
        "intercom",
        0,
        1,
    )]);
    assert_eq!(server.post(Some(ORIGIN), &body).status, 204);
}

#[test]
fn cors_preflight_and_headers() {
    let (server, key) = setup("cors", &[]);
    let resp = server.http(
        "OPTIONS",
        "/r",
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        None,
    );
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
    assert!(resp
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(resp
        .header("access-control-allow-headers")
        .unwrap()
        .eq_ignore_ascii_case("content-type"));
    assert_eq!(resp.header("vary"), Some("Origin"));

    let resp = server.http(
        "OPTIONS",
        "/r",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    );
    assert_eq!(resp.status, 403);
    assert_eq!(resp.header("access-control-allow-origin"), None);

    let body = batch(&[finding(&key, PV, "cookie_before_consent", "intercom", 0, 1)]);
    let resp = server.post(Some(ORIGIN), &body);
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(resp.header("vary"), Some("Origin"));
    // Errors are readable by a registered page too.
    let resp = server.post(Some(ORIGIN), "nope");
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
}

// ------------------------------------------------------------ inventory

fn vendor_of<'a>(inv: &'a Value, id: &str) -> &'a Value {
    inv["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vendor"] == id)
        .unwrap_or_else(|| panic!("no vendor {id} in {inv}"))
}

#[test]
fn inventories_are_aggregated_per_vendor_and_unclassified_host() {
    inventories_are_aggregated_per_vendor_and_unclassified_host_on(&[]);
}

#[test]
fn inventories_are_aggregated_per_vendor_and_unclassified_host_clickhouse() {
    if let Some(events) = ch::TestEvents::create("inventory") {
        inventories_are_aggregated_per_vendor_and_unclassified_host_on(&["--events", &events.url]);
    }
}

fn inventories_are_aggregated_per_vendor_and_unclassified_host_on(events: &[&str]) {
    let (server, key) = setup("inventory", events);
    let empty = server.inventory(&format!("site={key}"));
    assert_eq!(
        empty,
        json!({"page_views": 0, "vendors": [], "unclassified": []})
    );

    const PV2: &str = "0123456789abcdef";
    const PV3: &str = "fedcba9876543210";
    // Page view 1: Intercom + two unknown hosts, together with a finding.
    let resp = server.post(
        Some(ORIGIN),
        &batch(&[
            finding(&key, PV, "script_before_consent", "intercom", 100, 1),
            inventory(
                &key,
                PV,
                0,
                json!([intercom_usage(7, 3, 40_000,
                    &["widget.intercom.io", "js.intercomcdn.com", "api-iam.intercom.io"],
                    &["intercom-id-abc", "intercom-device-id-abc"])]),
                json!([
                    {"host": "cdn.unknown-widget.example", "requests": 2, "transfer_bytes": 900, "encoded_bytes": 800, "duration_ms": 30},
                    {"host": "pixel.other.example", "requests": 1}
                ]),
            ),
        ]),
    );
    assert_eq!(resp.status, 204, "{}", resp.body);
    // Page view 2: Intercom (EU API) and a vendor this collector's catalog
    // does not know (a newer monitor), and one of the unknown hosts again.
    // The vendor listed twice is summed.
    let resp = server.post(
        None,
        &batch(&[inventory(
            &key,
            PV2,
            0,
            json!([
                intercom_usage(4, 2, 10_000, &["widget.intercom.io", "api-iam.eu.intercom.io"], &["intercom-id-abc"]),
                {"vendor": "acme-chat", "requests": 1, "hosts": ["chat.acme.example"]},
                {"vendor": "acme-chat", "requests": 2, "script_requests": 1, "hosts": ["cdn.acme.example"]}
            ]),
            json!([{"host": "cdn.unknown-widget.example", "requests": 1, "transfer_bytes": 100}]),
        )]),
    );
    assert_eq!(resp.status, 204, "{}", resp.body);
    // Page view 3: nothing ran (still counts as a page view).
    let resp = server.post(
        Some(ORIGIN),
        &batch(&[inventory(&key, PV3, 0, json!([]), json!([]))]),
    );
    assert_eq!(resp.status, 204, "{}", resp.body);

    let inv = server.inventory(&format!("site={key}"));
    assert_eq!(inv["page_views"], 3);
    let ids: Vec<&str> = inv["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["vendor"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["intercom", "acme-chat"], "most page views first");

    let ic = vendor_of(&inv, "intercom");
    assert_eq!(ic["name"], "Intercom");
    assert_eq!(ic["owner"], "Intercom, Inc.");
    assert_eq!(ic["category"], "chat");
    assert_eq!(ic["page_views"], 2);
    assert_eq!(ic["requests"], 11);
    assert_eq!(ic["script_requests"], 5);
    assert_eq!(ic["transfer_bytes"], 50_000);
    assert_eq!(ic["encoded_bytes"], 25_000);
    assert_eq!(ic["duration_ms"], 200);
    assert_eq!(
        ic["hosts"],
        json!([
            "api-iam.eu.intercom.io",
            "api-iam.intercom.io",
            "js.intercomcdn.com",
            "widget.intercom.io"
        ])
    );
    assert_eq!(ic["regions"], json!(["us"]));
    assert_eq!(
        ic["cookies"],
        json!(["intercom-device-id-abc", "intercom-id-abc"])
    );
    assert_eq!(ic["declared"]["script_kb"], 250);
    assert_eq!(ic["declared"]["requests"], 2);
    assert!(ic["declared"]["source"].is_string());
    assert_eq!(
        ic["per_page"],
        json!({"requests": 5.5, "script_requests": 2.5, "transfer_bytes": 25000.0,
               "encoded_bytes": 12500.0, "duration_ms": 100.0})
    );
    // What the catalog says of each cookie and host; where the vendor ran.
    assert_eq!(
        ic["cookie_details"],
        json!([
            {"name": "intercom-device-id-abc", "purpose": "messenger", "category": "functional", "lifetime_days": 270},
            {"name": "intercom-id-abc", "purpose": "messenger", "category": "functional", "lifetime_days": 270}
        ])
    );
    assert_eq!(
        ic["destinations"],
        json!([
            {"host": "api-iam.eu.intercom.io", "region": "eu"},
            {"host": "api-iam.intercom.io", "region": "us"},
            {"host": "js.intercomcdn.com", "region": null},
            {"host": "widget.intercom.io", "region": null}
        ])
    );
    assert_eq!(ic["pages"], json!(["https://shop.example/pricing"]));
    assert_eq!(
        ic["over_declared"],
        json!({"script_requests": true, "bytes": false})
    );

    let acme = vendor_of(&inv, "acme-chat");
    assert_eq!(acme["name"], Value::Null, "not in the catalog");
    assert_eq!(acme["category"], Value::Null);
    assert_eq!(acme["declared"], Value::Null);
    assert_eq!(acme["over_declared"], Value::Null);
    assert_eq!(acme["page_views"], 1);
    assert_eq!(acme["requests"], 3);
    assert_eq!(acme["script_requests"], 1);
    assert_eq!(acme["transfer_bytes"], 0);
    assert_eq!(
        acme["hosts"],
        json!(["cdn.acme.example", "chat.acme.example"])
    );
    assert_eq!(acme["regions"], json!([]));
    assert_eq!(acme["cookies"], json!([]));

    assert_eq!(
        inv["unclassified"],
        json!([
            {"host": "cdn.unknown-widget.example", "page_views": 2, "requests": 3, "script_requests": 0,
             "transfer_bytes": 1000, "encoded_bytes": 800, "duration_ms": 30,
             "per_page": {"requests": 1.5, "transfer_bytes": 500.0}},
            {"host": "pixel.other.example", "page_views": 1, "requests": 1, "script_requests": 0,
             "transfer_bytes": 0, "encoded_bytes": 0, "duration_ms": 0,
             "per_page": {"requests": 1.0, "transfer_bytes": 0.0}}
        ])
    );
    // limit caps the unclassified list.
    let one = server.inventory(&format!("site={key}&limit=1"));
    assert_eq!(one["unclassified"].as_array().unwrap().len(), 1);
    // since: everything was observed just now.
    let future = server.inventory(&format!("site={key}&since={}", now_ms() + 60_000));
    assert_eq!(
        future,
        json!({"page_views": 0, "vendors": [], "unclassified": []})
    );
    let past = server.inventory(&format!("site={key}&since={}", now_ms() - 60_000));
    assert_eq!(past["page_views"], 3);
    // The finding sent with the inventory is stored as usual.
    assert_eq!(server.findings(&format!("site={key}")).len(), 1);
}

#[test]
fn a_page_views_newer_inventory_replaces_the_stored_one() {
    a_page_views_newer_inventory_replaces_the_stored_one_on(&[]);
}

#[test]
fn a_page_views_newer_inventory_replaces_the_stored_one_clickhouse() {
    if let Some(events) = ch::TestEvents::create("inventory-upsert") {
        a_page_views_newer_inventory_replaces_the_stored_one_on(&["--events", &events.url]);
    }
}

fn a_page_views_newer_inventory_replaces_the_stored_one_on(events: &[&str]) {
    let (server, key) = setup("inventory-upsert", events);
    let snapshot = |age: i64, requests: u64, cookies: &[&str], hosts: Value| {
        inventory(
            &key,
            PV,
            age,
            json!([intercom_usage(
                requests,
                1,
                0,
                &["widget.intercom.io"],
                cookies
            )]),
            hosts,
        )
    };
    let send = |report: Value| {
        let resp = server.post(Some(ORIGIN), &batch(&[report]));
        assert_eq!(resp.status, 204, "{}", resp.body);
    };
    send(snapshot(
        0,
        1,
        &[],
        json!([{"host": "a.example", "requests": 1}]),
    ));
    send(snapshot(
        0,
        5,
        &["intercom-id-abc"],
        json!([{"host": "b.example", "requests": 2}]),
    ));
    let inv = server.inventory(&format!("site={key}"));
    assert_eq!(inv["page_views"], 1, "one page view, stored once");
    let ic = vendor_of(&inv, "intercom");
    assert_eq!(ic["page_views"], 1);
    assert_eq!(
        ic["requests"], 5,
        "the latest state, not a sum of the sends"
    );
    assert_eq!(ic["cookies"], json!(["intercom-id-abc"]));
    assert_eq!(
        inv["unclassified"],
        json!([{"host": "b.example", "page_views": 1, "requests": 2, "script_requests": 0,
                "transfer_bytes": 0, "encoded_bytes": 0, "duration_ms": 0,
                "per_page": {"requests": 2.0, "transfer_bytes": 0.0}}]),
        "hosts of the replaced inventory are gone"
    );

    // A late resend of an older snapshot (observed a minute ago) loses.
    send(snapshot(
        60_000,
        1,
        &[],
        json!([{"host": "a.example", "requests": 1}]),
    ));
    let inv = server.inventory(&format!("site={key}"));
    assert_eq!(vendor_of(&inv, "intercom")["requests"], 5);
    assert_eq!(inv["unclassified"][0]["host"], "b.example");

    // Two snapshots in one request: the later item wins.
    let resp = server.post(
        Some(ORIGIN),
        &batch(&[
            snapshot(0, 8, &[], json!([])),
            snapshot(0, 9, &[], json!([])),
        ]),
    );
    assert_eq!(resp.status, 204, "{}", resp.body);
    let inv = server.inventory(&format!("site={key}"));
    assert_eq!(vendor_of(&inv, "intercom")["requests"], 9);
    assert_eq!(inv["unclassified"], json!([]));
}

#[test]
fn inventory_reports_are_validated_and_checked_like_findings() {
    let (server, key) = setup("inventory-checks", &[]);
    let good = inventory(&key, PV, 0, json!([]), json!([]));

    // Schema: vendors is required; counts are non-negative integers.
    let mut bad = good.clone();
    bad["body"].as_object_mut().unwrap().remove("vendors");
    let resp = server.post(Some(ORIGIN), &batch(&[bad]));
    assert_eq!(resp.status, 400);
    assert!(resp.body.starts_with("item 0: body"), "{}", resp.body);
    let mut bad = good.clone();
    bad["body"]["unclassified"] = json!([{"host": "x.example", "requests": -1}]);
    let resp = server.post(Some(ORIGIN), &batch(&[bad]));
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("unclassified"), "{}", resp.body);
    let mut bad = good.clone();
    bad["body"]["unclassified"] = json!([{"host": "Bad Host", "requests": 1}]);
    assert_eq!(server.post(Some(ORIGIN), &batch(&[bad])).status, 400);
    // Huge numbers are clamped, never overflow a sum.
    let huge = inventory(
        &key,
        PV,
        0,
        json!([{"vendor": "intercom", "requests": 1, "transfer_bytes": 18_000_000_000_000_000_000u64, "hosts": []}]),
        json!([{"host": "x.example", "requests": 1, "transfer_bytes": 1e30}]),
    );
    let resp = server.post(Some(ORIGIN), &batch(&[huge]));
    assert_eq!(resp.status, 204, "{}", resp.body);
    let other = inventory(
        &key,
        "0123456789abcdef",
        0,
        json!([{"vendor": "intercom", "requests": 1, "transfer_bytes": 9_000_000_000_000_000_000u64, "hosts": []}]),
        json!([]),
    );
    assert_eq!(server.post(Some(ORIGIN), &batch(&[other])).status, 204);
    let inv = server.inventory(&format!("site={key}"));
    assert_eq!(vendor_of(&inv, "intercom")["transfer_bytes"], i64::MAX);
    assert_eq!(inv["unclassified"][0]["transfer_bytes"], i64::MAX);

    // Site key and origin checks apply to inventories too.
    let resp = server.post(
        Some(ORIGIN),
        &batch(&[inventory("tw_unknown", PV, 0, json!([]), json!([]))]),
    );
    assert_eq!(resp.status, 403);
    let resp = server.post(
        Some("https://evil.example"),
        &batch(std::slice::from_ref(&good)),
    );
    assert_eq!(resp.status, 403);
    let mut foreign = good;
    foreign["url"] = json!("https://evil.example/pricing");
    let resp = server.post(None, &batch(&[foreign]));
    assert_eq!(resp.status, 403);
}

#[test]
fn the_inventory_api_needs_the_admin_token_and_a_site() {
    let (server, key) = setup("inventory-auth", &[]);
    let path = format!("/api/inventory?site={key}");
    let resp = server.http("GET", &path, &[], None);
    assert_eq!(resp.status, 401);
    assert!(resp
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let resp = server.http("GET", &path, &[("Authorization", "Bearer nope")], None);
    assert_eq!(resp.status, 401);
    assert_eq!(server.get_api("/api/inventory").status, 400);
    assert_eq!(server.get_api("/api/inventory?site=tw_nope").status, 404);
    let resp = server.get_api(&format!("{path}&since=yesterday"));
    assert_eq!(resp.status, 400);
    assert!(resp.body.starts_with("since:"), "{}", resp.body);
    assert_eq!(server.get_api(&format!("{path}&limit=0")).status, 400);
    assert_eq!(server.get_api(&path).status, 200);
}

#[test]
fn cookie_lifetime_findings_are_accepted_and_filterable() {
    cookie_lifetime_findings_are_accepted_and_filterable_on(&[]);
}

#[test]
fn cookie_lifetime_findings_are_accepted_and_filterable_clickhouse() {
    if let Some(events) = ch::TestEvents::create("lifetime") {
        cookie_lifetime_findings_are_accepted_and_filterable_on(&["--events", &events.url]);
    }
}

fn cookie_lifetime_findings_are_accepted_and_filterable_on(events: &[&str]) {
    let (server, key) = setup("lifetime", events);
    let mut f = finding(&key, PV, "cookie_lifetime_exceeds_policy", "intercom", 0, 1);
    f["body"]["category"] = json!("functional");
    f["body"]["evidence"] = json!({
        "kind": "cookie", "cookie": "intercom-id-abc", "purpose": "messenger", "days": 269
    });
    let resp = server.post(Some(ORIGIN), &batch(&[f]));
    assert_eq!(resp.status, 204, "{}", resp.body);
    let rows = server.findings(&format!("site={key}&type=cookie_lifetime_exceeds_policy"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["evidence"]["days"], 269);
}
