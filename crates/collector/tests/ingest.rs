//! Ingest hardening, the routes called in the process: subdomain origin
//! patterns, compressed bodies and their caps, per-client rate limits,
//! unknown fields kept, retried batches stored once, and the snippet's
//! `GET /config/KEY` with `tagwatch site set`. Storage-dependent tests run
//! on SQLite and, with `TAGWATCH_TEST_POSTGRES`, on PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::io::Write as _;
use std::process::Command;

use serde_json::{json, Value};

use common::pg::TestDb;
use common::*;

const PV: &str = "9f1c2e3d4b5a6978";

fn sqlite(name: &str) -> (String, TempDir) {
    let dir = temp_dir(name);
    (db_url(&dir.join("tagwatch.db")), dir)
}

fn post_with(server: &Server, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    server.http("POST", path, headers, Some(body))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Brotli through Node's zlib, when Node is there (the e2e tests need it
/// anyway); `None` skips the br part.
fn brotli(data: &[u8]) -> Option<Vec<u8>> {
    let dir = temp_dir("br");
    let input = dir.join("in");
    std::fs::write(&input, data).unwrap();
    let out = Command::new("node")
        .arg("-e")
        .arg("process.stdout.write(require('zlib').brotliCompressSync(require('fs').readFileSync(process.argv[1])))")
        .arg(&input)
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    out.status.success().then_some(out.stdout)
}

#[test]
fn subdomain_origin_patterns() {
    let (db, dir) = sqlite("patterns");
    let key = site_add(&db, &["https://*.Shop.Example", "https://shop.example"]);
    let server = Server::start(&db, &[]);
    let body = batch(&[finding(&key, PV, "cookie_before_consent", "intercom", 0, 1)]);
    for origin in [
        "https://eu.shop.example",
        "https://a.b.shop.example",
        ORIGIN,
    ] {
        let resp = server.post(Some(origin), &body);
        assert_eq!(resp.status, 204, "{origin}: {}", resp.body);
        assert_eq!(resp.header("access-control-allow-origin"), Some(origin));
    }
    for origin in [
        "https://evilshop.example",
        "http://eu.shop.example",
        "https://eu.shop.example:8443",
        "https://shop.example.evil.example",
    ] {
        let resp = server.post(Some(origin), &body);
        assert_eq!(resp.status, 403, "{origin}");
        assert_eq!(resp.header("access-control-allow-origin"), None);
    }
    // Without an Origin header, the report page's origin must match.
    let mut f = finding(&key, PV, "script_before_consent", "intercom", 0, 1);
    f["url"] = json!("https://eu.shop.example/support");
    assert_eq!(server.post(None, &batch(&[f.clone()])).status, 204);
    f["url"] = json!("https://eushop.example/support");
    assert_eq!(server.post(None, &batch(&[f])).status, 403);
    // The preflight knows the pattern too.
    let resp = server.http(
        "OPTIONS",
        "/r",
        &[
            ("Origin", "https://eu.shop.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    );
    assert_eq!(resp.status, 204);
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("https://eu.shop.example")
    );

    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn compressed_bodies_are_decoded_and_capped() {
    let (db, dir) = sqlite("compressed");
    let key = site_add(&db, &[ORIGIN]);
    let server = Server::start(&db, &[]);
    let headers = |encoding: &'static str| {
        vec![
            ("Content-Type", "text/plain"),
            ("Origin", ORIGIN),
            ("Content-Encoding", encoding),
        ]
    };
    let kinds = [
        "cookie_before_consent",
        "script_before_consent",
        "gpc_ignored",
    ];
    let bodies: Vec<String> = kinds
        .iter()
        .map(|k| batch(&[finding(&key, PV, k, "intercom", 0, 1)]))
        .collect();
    let resp = post_with(&server, "/r", &headers("gzip"), &gzip(bodies[0].as_bytes()));
    assert_eq!(resp.status, 204, "{}", resp.body);
    let resp = post_with(
        &server,
        "/r",
        &headers("deflate"),
        &zlib(bodies[1].as_bytes()),
    );
    assert_eq!(resp.status, 204, "{}", resp.body);
    let mut stored = 2;
    match brotli(bodies[2].as_bytes()) {
        Some(br) => {
            let resp = post_with(&server, "/r", &headers("br"), &br);
            assert_eq!(resp.status, 204, "{}", resp.body);
            stored += 1;
        }
        None => eprintln!("skipping the br part: node is not installed"),
    }
    assert_eq!(server.findings(&format!("site={key}")).len(), stored);

    // A small body that inflates past 512 KiB: 413, nothing stored.
    let mut bomb = bodies[0].clone();
    bomb.insert_str(1, &" ".repeat(600 * 1024));
    let packed = gzip(bomb.as_bytes());
    assert!(packed.len() < 8 * 1024, "{}", packed.len());
    let resp = post_with(&server, "/r", &headers("gzip"), &packed);
    assert_eq!(resp.status, 413);
    assert!(resp.body.contains("once decompressed"), "{}", resp.body);
    // Just under the cap is fine.
    let mut big = bodies[1].clone();
    big.insert_str(1, &" ".repeat(500 * 1024));
    let resp = post_with(&server, "/r", &headers("gzip"), &gzip(big.as_bytes()));
    assert_eq!(resp.status, 204, "{}", resp.body);
    // More than 64 KiB compressed: 413 before decoding.
    let mut noise = Vec::with_capacity(70 * 1024);
    let mut x: u32 = 0x1234_5678;
    while noise.len() < 70 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    let resp = post_with(&server, "/r", &headers("gzip"), &noise);
    assert_eq!(resp.status, 413);
    assert!(resp.body.contains("64 KiB"), "{}", resp.body);
    // Not gzip at all: 400 with the reason.
    let resp = post_with(&server, "/r", &headers("gzip"), bodies[0].as_bytes());
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("does not decompress"), "{}", resp.body);
    // Unknown or stacked encodings: 415.
    for enc in ["compress", "gzip, br"] {
        let resp = post_with(&server, "/r", &headers(enc), bodies[0].as_bytes());
        assert_eq!(resp.status, 415, "{enc}");
        assert!(resp.body.contains("Content-Encoding"), "{}", resp.body);
    }
    assert_eq!(server.findings(&format!("site={key}")).len(), stored);
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn client_addresses_have_their_own_rate_limit() {
    let (db, dir) = sqlite("client-rate");
    let key = site_add(&db, &[ORIGIN]);
    let other = site_add(&db, &[ORIGIN]);
    let server = Server::start(
        &db,
        &["--rate", "0", "--client-rate", "0.1", "--client-burst", "2"],
    );
    let body = |site: &str| batch(&[finding(site, PV, "cookie_before_consent", "intercom", 0, 1)]);
    assert_eq!(server.post(Some(ORIGIN), &body(&key)).status, 204);
    assert_eq!(server.post(Some(ORIGIN), &body(&other)).status, 204);
    // A third request from the same address, whatever the site: 429.
    let resp = server.post(Some(ORIGIN), &body(&key));
    assert_eq!(resp.status, 429);
    assert!(resp.body.contains("from this address"), "{}", resp.body);
    let retry: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
    // X-Forwarded-For is ignored unless --behind-proxy.
    let resp = post_with(
        &server,
        "/r",
        &[
            ("Content-Type", "text/plain"),
            ("Origin", ORIGIN),
            ("X-Forwarded-For", "198.51.100.7"),
        ],
        body(&key).as_bytes(),
    );
    assert_eq!(resp.status, 429);
    drop(server);

    let server = Server::start(
        &db,
        &[
            "--rate",
            "0",
            "--client-rate",
            "0.1",
            "--client-burst",
            "1",
            "--behind-proxy",
        ],
    );
    let from = |client: &str| {
        post_with(
            &server,
            "/r",
            &[
                ("Content-Type", "text/plain"),
                ("Origin", ORIGIN),
                ("X-Forwarded-For", client),
            ],
            body(&key).as_bytes(),
        )
        .status
    };
    // The last entry is the one the proxy appended.
    assert_eq!(from("203.0.113.9, 198.51.100.1"), 204);
    assert_eq!(from("198.51.100.1"), 429);
    assert_eq!(from("198.51.100.2"), 204);
    assert_eq!(from("2001:db8::1"), 204);
    assert_eq!(from("2001:db8::2"), 429, "one bucket per IPv6 /64");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// Unknown fields of a report body survive in `raw`; a retried batch (the
/// same request twice) is stored once.
fn keeps_unknown_fields_and_dedupes_retries(db: &str) {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, &[]);
    let mut f = finding(&key, PV, "cookie_before_consent", "intercom", 1000, 3);
    f["body"]["future_field"] = json!({"nested": [1, 2]});
    f["extra_envelope"] = json!("kept or ignored");
    f["body"]["evidence"]["new_evidence"] = json!("x");
    let inv = inventory(
        &key,
        PV,
        0,
        json!([intercom_usage(3, 1, 100, &["widget.intercom.io"], &[])]),
        json!([]),
    );
    let body = batch(&[f, inv]);
    for _ in 0..3 {
        let resp = server.post(Some(ORIGIN), &body);
        assert_eq!(resp.status, 204, "{}", resp.body);
    }
    let rows = server.findings(&format!("site={key}"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["count"], 3);
    assert_eq!(rows[0]["evidence"]["new_evidence"], "x");
    let inv = server.inventory(&format!("site={key}"));
    assert_eq!(inv["page_views"], 1);
    assert_eq!(inv["vendors"][0]["requests"], 3);

    let raw: Vec<String> = if let Some(path) = db.strip_prefix("sqlite:") {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT raw FROM findings").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    } else {
        let mut client = postgres::Client::connect(db, postgres::NoTls).unwrap();
        client
            .query("SELECT raw FROM findings", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(raw.len(), 1);
    let raw: Value = serde_json::from_str(&raw[0]).unwrap();
    assert_eq!(raw["future_field"], json!({"nested": [1, 2]}));
    // The properties with a column of their own are not stored again.
    assert_eq!(raw["finding"], Value::Null);
    assert_eq!(raw["evidence"], Value::Null);
}

/// A cookie name the catalog knows is stored as the monitor sends it (its
/// app or site id is evidence); any other name is scrubbed as free text.
#[test]
fn cookie_names_the_catalog_knows_are_kept_others_scrubbed() {
    let (db, dir) = sqlite("cookie-names");
    let key = site_add(&db, &[ORIGIN]);
    let server = Server::start(&db, &[]);
    let names = [
        ("_hjSessionUser_3456789", "_hjSessionUser_3456789"),
        ("intercom-id-k9x2m4qa", "intercom-id-k9x2m4qa"),
        ("uid_12345678", "uid_:id"),
        ("pref_jane.doe@example.com", ":id"),
    ];
    let mut items = Vec::new();
    for (i, (name, _)) in names.iter().enumerate() {
        let mut f = finding(
            &key,
            &format!("{PV:.15}{i}"),
            "cookie_before_consent",
            "intercom",
            1000,
            1,
        );
        f["body"]["evidence"] = json!({"kind": "cookie", "cookie": name, "purpose": "x"});
        items.push(f);
    }
    let sent: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
    items.push(inventory(
        &key,
        PV,
        0,
        json!([intercom_usage(1, 1, 100, &["widget.intercom.io"], &sent)]),
        json!([]),
    ));
    let resp = server.post(Some(ORIGIN), &batch(&items));
    assert_eq!(resp.status, 204, "{}", resp.body);
    let mut stored: Vec<String> = server
        .findings(&format!("site={key}"))
        .iter()
        .map(|f| f["evidence"]["cookie"].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    let mut want: Vec<String> = names.iter().map(|(_, w)| (*w).to_owned()).collect();
    want.sort();
    assert_eq!(stored, want);
    let inv = server.inventory(&format!("site={key}"));
    let mut cookies: Vec<String> = inv["vendors"][0]["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    cookies.sort();
    assert_eq!(cookies, want, "{inv}");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unknown_fields_are_kept_and_retries_stored_once_sqlite() {
    let (db, dir) = sqlite("raw");
    keeps_unknown_fields_and_dedupes_retries(&db);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unknown_fields_are_kept_and_retries_stored_once_postgres() {
    if let Some(db) = TestDb::create("raw") {
        keeps_unknown_fields_and_dedupes_retries(&db.url);
    }
}

fn csp_reports(db: &str, flags: &[&str]) {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, flags);
    let path = format!("/csp/{key}");
    let legacy = json!({"csp-report": {
        "document-uri": "https://shop.example/checkout?order=12345#pay",
        "blocked-uri": "https://www.googletagmanager.com/gtag/js?id=G-SECRET",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "disposition": "report",
        "original-policy": "script-src 'self'; report-uri /csp/x",
        "script-sample": ""
    }})
    .to_string();
    let csp = |origin: Option<&str>, ct: &'static str, body: &str| {
        let mut h = vec![("Content-Type", ct)];
        if let Some(o) = origin {
            h.push(("Origin", o));
        }
        post_with(&server, &path, &h, body.as_bytes())
    };
    // Legacy reports come without Origin: the document's origin is checked.
    for _ in 0..2 {
        let resp = csp(None, "application/csp-report", &legacy);
        assert_eq!(resp.status, 204, "{}", resp.body);
    }
    let rows = server.findings(&format!("site={key}&type=csp_blocked"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    let f = &rows[0];
    assert_eq!(f["vendor"], "gtm");
    assert_eq!(f["count"], 2, "CSP reports add up");
    assert_eq!(f["page"], "https://shop.example/checkout");
    assert_eq!(f["consent"], Value::Null);
    assert_eq!(
        f["evidence"],
        json!({"kind": "csp", "host": "www.googletagmanager.com", "path": "/gtag/js",
               "directive": "script-src-elem", "disposition": "report", "purpose": "gtag_loader"})
    );
    assert!(!f.to_string().contains("SECRET") && !f.to_string().contains("12345"));

    // Reporting API batch from a registered Origin: another report type is
    // ignored, `inline` is skipped.
    let batch_body = json!([
        {"type": "csp-violation", "age": 2000, "url": "https://shop.example/x", "user_agent": "UA",
         "body": {"documentURL": "https://shop.example/x", "blockedURL": "https://cdn.unknown.example/a.js",
                  "effectiveDirective": "script-src-elem", "disposition": "enforce"}},
        {"type": "csp-violation", "age": 0, "url": "https://shop.example/x", "user_agent": "UA",
         "body": {"documentURL": "https://shop.example/x", "blockedURL": "inline",
                  "effectiveDirective": "script-src-elem", "disposition": "enforce"}},
        {"type": "deprecation", "age": 0, "url": "https://shop.example/x", "user_agent": "UA", "body": {"id": "x"}}
    ])
    .to_string();
    let resp = csp(Some(ORIGIN), "application/reports+json", &batch_body);
    assert_eq!(resp.status, 204, "{}", resp.body);
    assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
    let rows = server.findings(&format!("site={key}&type=csp_blocked&vendor=unclassified"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["evidence"]["disposition"], "enforce");
    // Only other report types: accepted, nothing stored.
    let other =
        json!([{"type": "deprecation", "age": 0, "url": "https://shop.example/", "body": {}}]);
    assert_eq!(
        csp(Some(ORIGIN), "application/reports+json", &other.to_string()).status,
        204
    );
    assert_eq!(server.findings(&format!("site={key}")).len(), 2);

    // Refusals.
    assert_eq!(
        csp(
            Some("https://evil.example"),
            "application/reports+json",
            &batch_body
        )
        .status,
        403
    );
    let foreign = legacy.replace(
        "https://shop.example/checkout",
        "https://evil.example/checkout",
    );
    assert_eq!(csp(None, "application/csp-report", &foreign).status, 403);
    let resp = csp(Some(ORIGIN), "text/plain", &legacy);
    assert_eq!(resp.status, 415);
    assert!(
        resp.body.contains("application/csp-report"),
        "{}",
        resp.body
    );
    let resp = csp(Some(ORIGIN), "application/json", "{\"nope\":1}");
    assert_eq!(resp.status, 400);
    assert!(resp.body.contains("csp-report"), "{}", resp.body);
    let resp = post_with(
        &server,
        "/csp/tw_unknown",
        &[("Content-Type", "application/csp-report")],
        legacy.as_bytes(),
    );
    assert_eq!(resp.status, 403);
    assert!(resp.body.contains("unknown site key"), "{}", resp.body);
    // The Reporting API's preflight.
    let resp = server.http(
        "OPTIONS",
        &path,
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        None,
    );
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(server.findings(&format!("site={key}")).len(), 2);
}

#[test]
fn csp_reports_become_findings_sqlite() {
    let (db, dir) = sqlite("csp");
    csp_reports(&db, &[]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn csp_reports_become_findings_clickhouse() {
    if let Some(events) = ch::TestEvents::create("csp") {
        let (db, dir) = sqlite("csp_ch");
        csp_reports(&db, &["--events", &events.url]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn csp_reports_become_findings_postgres() {
    if let Some(db) = TestDb::create("csp") {
        csp_reports(&db.url, &[]);
    }
}
