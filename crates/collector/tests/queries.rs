//! The read API end to end on SQLite, PostgreSQL and ClickHouse (`--events`): `GET /api/findings`
//! filters, `GET /api/stats`, and what `GET /api/inventory` adds from the
//! catalog (cookie purposes and lifetimes, destinations and regions, pages).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use serde_json::{json, Value};

use common::pg::TestDb;
use common::*;

const PV1: &str = "00000000000000a1";
const PV2: &str = "00000000000000a2";
const PV3: &str = "00000000000000a3";

/// A finding on `page` judged on `consent`, observed `age` ms ago.
fn f(key: &str, pv: &str, kind: &str, vendor: &str, page: &str, age: i64, consent: Value) -> Value {
    let mut r = finding(key, pv, kind, vendor, age, 2);
    r["url"] = json!(page);
    r["body"]["consent"] = consent;
    r
}

fn consent(source: &str, functional: Value, marketing: bool) -> Value {
    json!({"necessary": true, "functional": functional, "analytics": false, "marketing": marketing,
           "source": source, "since": 0, "gpc": false})
}

fn load(server: &Server, key: &str) {
    const DAY: i64 = 86_400_000;
    let support = "https://shop.example/support";
    let pricing = "https://shop.example/pricing";
    let items = vec![
        f(
            key,
            PV1,
            "script_before_consent",
            "intercom",
            support,
            2 * DAY,
            consent("default", json!(null), false),
        ),
        f(
            key,
            PV1,
            "cookie_before_consent",
            "intercom",
            support,
            2 * DAY,
            consent("default", json!(null), false),
        ),
        f(
            key,
            PV2,
            "tracking_before_consent",
            "intercom",
            pricing,
            1000,
            consent("api", json!(true), false),
        ),
        f(
            key,
            PV2,
            "gpc_ignored",
            "hotjar",
            pricing,
            500,
            consent("api", json!(true), false),
        ),
        f(
            key,
            PV3,
            "cookie_before_consent",
            "ga4",
            pricing,
            100,
            consent("tcf", json!(false), true),
        ),
        inventory(
            key,
            PV1,
            2 * DAY,
            json!([intercom_usage(4, 2, 1000, &["widget.intercom.io"], &[])]),
            json!([]),
        ),
    ];
    let resp = server.post(Some(ORIGIN), &batch(&items));
    assert_eq!(resp.status, 204, "{}", resp.body);
    let report = json!({"csp-report": {"document-uri": pricing, "blocked-uri": "https://static.hotjar.com/c/x.js",
                                       "effective-directive": "script-src-elem", "disposition": "report"}})
    .to_string();
    let resp = server.http(
        "POST",
        &format!("/csp/{key}"),
        &[("Content-Type", "application/csp-report")],
        Some(report.as_bytes()),
    );
    assert_eq!(resp.status, 204, "{}", resp.body);
}

fn types(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["type"].as_str().unwrap()).collect()
}

fn queries(db: &str, flags: &[&str]) {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, flags);
    load(&server, &key);
    let q = |params: &str| server.findings(&format!("site={key}&{params}"));

    assert_eq!(q("").len(), 6);
    assert_eq!(
        types(&q("type=gpc_ignored,script_before_consent")),
        ["script_before_consent", "gpc_ignored"]
    );
    assert_eq!(q("vendor=hotjar,ga4").len(), 3, "csp_blocked of hotjar too");
    assert_eq!(q("type=csp_blocked")[0]["vendor"], "hotjar");
    assert_eq!(q("page=https://shop.example/support").len(), 2);
    assert_eq!(q(&format!("page_view={PV2}")).len(), 2);
    assert_eq!(q("category=functional").len(), 5, "all but the CSP finding");
    let day_ago = now_ms() - 86_400_000;
    assert_eq!(q(&format!("until={day_ago}")).len(), 2);
    assert_eq!(q(&format!("since={day_ago}")).len(), 4);
    let newest = q("order=desc&limit=2");
    assert_eq!(newest.len(), 2);
    assert!(newest[0]["at"].as_str() >= newest[1]["at"].as_str());
    assert_eq!(types(&newest)[0], "csp_blocked");
    for bad in [
        "type=nope",
        "type=gpc_ignored,nope",
        "vendor=Bad!",
        "category=ads",
        "page_view=xyz",
        "order=sideways",
        "until=tomorrow",
    ] {
        let resp = server.get_api(&format!("/api/findings?site={key}&{bad}"));
        assert_eq!(resp.status, 400, "{bad}");
        assert!(
            resp.body.contains(bad.split('=').next().unwrap()),
            "{bad}: {}",
            resp.body
        );
    }

    // Stats.
    let resp = server.get_api(&format!("/api/stats?site={key}"));
    assert_eq!(resp.status, 200, "{}", resp.body);
    let s: Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(s["site"], key.as_str());
    assert_eq!(s["findings"], 6);
    assert_eq!(
        s["occurrences"], 11,
        "five findings counted 2, one CSP report"
    );
    assert_eq!(s["page_views"], 3);
    assert_eq!(
        s["by_type"],
        json!([
            {"type": "cookie_before_consent", "findings": 2, "occurrences": 4},
            {"type": "csp_blocked", "findings": 1, "occurrences": 1},
            {"type": "gpc_ignored", "findings": 1, "occurrences": 2},
            {"type": "script_before_consent", "findings": 1, "occurrences": 2},
            {"type": "tracking_before_consent", "findings": 1, "occurrences": 2}
        ])
    );
    assert_eq!(
        s["by_vendor"],
        json!([
            {"vendor": "intercom", "findings": 3, "occurrences": 6},
            {"vendor": "hotjar", "findings": 2, "occurrences": 3},
            {"vendor": "ga4", "findings": 1, "occurrences": 2}
        ])
    );
    assert_eq!(
        s["by_page"],
        json!([
            {"page": "https://shop.example/pricing", "findings": 4, "occurrences": 7},
            {"page": "https://shop.example/support", "findings": 2, "occurrences": 4}
        ])
    );
    let days = s["by_day"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{days:?}");
    assert_eq!(days[0]["findings"], 2);
    assert_eq!(days[1]["findings"], 4);
    assert!(days[0]["day"].as_str() < days[1]["day"].as_str());
    assert_eq!(
        s["consent"]["by_source"],
        json!([
            {"source": "api", "findings": 2},
            {"source": "default", "findings": 2},
            {"source": "tcf", "findings": 1}
        ])
    );
    assert_eq!(
        s["consent"]["by_category"]["functional"],
        json!({"granted": 2, "denied": 1, "unknown": 2})
    );
    assert_eq!(
        s["consent"]["by_category"]["necessary"],
        json!({"granted": 5, "denied": 0, "unknown": 0})
    );
    assert_eq!(
        s["consent"]["by_granted"],
        json!([
            {"granted": ["necessary"], "findings": 2},
            {"granted": ["necessary", "functional"], "findings": 2},
            {"granted": ["necessary", "marketing"], "findings": 1}
        ])
    );
    let windowed: Value = serde_json::from_str(
        &server
            .get_api(&format!("/api/stats?site={key}&since={day_ago}"))
            .body,
    )
    .unwrap();
    assert_eq!(windowed["findings"], 4);
    assert_eq!(windowed["page_views"], 2);
    assert!(windowed["since"].as_str().unwrap().ends_with('Z'));
    assert_eq!(windowed["until"], Value::Null);
    assert_eq!(server.get_api("/api/stats").status, 400);
    assert_eq!(server.get_api("/api/stats?site=tw_nope").status, 404);
    let resp = server.http("GET", &format!("/api/stats?site={key}"), &[], None);
    assert_eq!(resp.status, 401);
}

#[test]
fn findings_filters_and_stats_sqlite() {
    let dir = temp_dir("queries");
    queries(&db_url(&dir.join("t.db")), &[]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn findings_filters_and_stats_postgres() {
    if let Some(db) = TestDb::create("queries") {
        queries(&db.url, &[]);
    }
}

#[test]
fn findings_filters_and_stats_clickhouse() {
    if let Some(events) = ch::TestEvents::create("queries") {
        let dir = temp_dir("queries_ch");
        queries(&db_url(&dir.join("t.db")), &["--events", &events.url]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
