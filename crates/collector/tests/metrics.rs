//! `GET /metrics`: behind the admin token, the Prometheus text format, and
//! counts of what was accepted and refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use serde_json::json;

use common::*;

const PV: &str = "9f1c2e3d4b5a6978";

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_accepted_and_refused_reports() {
    let dir = temp_dir("metrics");
    let db = db_url(&dir.join("t.db"));
    let key = site_add(&db, &[ORIGIN]);
    let server = Server::start(&db, &[]);
    let good = batch(&[
        finding(&key, PV, "cookie_before_consent", "intercom", 0, 1),
        finding(&key, PV, "script_before_consent", "intercom", 0, 1),
        inventory(&key, PV, 0, json!([]), json!([])),
    ]);
    assert_eq!(server.post(Some(ORIGIN), &good).status, 204);
    assert_eq!(server.post(Some(ORIGIN), "nope").status, 400);
    assert_eq!(server.post(Some("https://evil.example"), &good).status, 403);

    let resp = server.http("GET", "/metrics", &[], None);
    assert_eq!(resp.status, 401);
    let resp = server.get_api("/metrics");
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = &resp.body;
    for (name, want) in [
        (
            "tagwatch_requests_accepted_total{endpoint=\"reports\"}",
            1.0,
        ),
        (
            "tagwatch_reports_accepted_total{endpoint=\"reports\",kind=\"finding\"}",
            2.0,
        ),
        (
            "tagwatch_reports_accepted_total{endpoint=\"reports\",kind=\"inventory\"}",
            1.0,
        ),
        (
            "tagwatch_requests_refused_total{endpoint=\"reports\",reason=\"malformed\"}",
            1.0,
        ),
        (
            "tagwatch_requests_refused_total{endpoint=\"reports\",reason=\"origin\"}",
            1.0,
        ),
        (
            "tagwatch_findings_total{type=\"cookie_before_consent\"}",
            1.0,
        ),
        (
            "tagwatch_findings_total{type=\"script_before_consent\"}",
            1.0,
        ),
        ("tagwatch_writer_queue_depth", 0.0),
        ("tagwatch_write_duration_seconds_count", 1.0),
        ("tagwatch_write_duration_seconds_bucket{le=\"+Inf\"}", 1.0),
    ] {
        assert_eq!(metric(m, name), Some(want), "{name} in\n{m}");
    }
    // Every sample line is `name{labels} value`; every family has HELP and TYPE.
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert!(m.contains("# TYPE tagwatch_write_duration_seconds histogram"));
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
