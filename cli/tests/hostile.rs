//! Forged reports against the real collector, on SQLite and PostgreSQL:
//!
//! - personal data (e-mail, UUID and number canaries) in every URL and
//!   text field is not stored, whatever every API, export and table shows;
//! - a NUL character is a 400 that names the field, the same on both stores;
//! - report text in exports is inert (RoPA Markdown rendered to HTML, CSV
//!   split at any separator a spreadsheet may use);
//! - wildcards on public suffixes are refused (the origin a browser gives
//!   an origin-less report's page URL: crates/collector/tests/origins.rs).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::pg::TestDb;
use common::*;
use serde_json::{json, Value};

const PV: &str = "9f1c2e3d4b5a6978";
const EMAIL: &str = "jane.doe@example.com";
const UUID: &str = "6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978";
const NUMBER: &str = "12345678";
/// What must never be found in the store or anything read from it.
const CANARIES: [&str; 7] = [
    "jane", "%40", "6f1c2e3d", NUMBER, "email=", "uid=", "secret",
];

/// One store to run a test on: SQLite in a temporary directory, then
/// PostgreSQL when `TAGWATCH_TEST_POSTGRES` is set.
enum TestStore {
    Sqlite(PathBuf),
    Postgres(TestDb),
}

impl TestStore {
    fn url(&self) -> String {
        match self {
            Self::Sqlite(path) => db_url(path),
            Self::Postgres(db) => db.url.clone(),
        }
    }

    /// Every text value of every report table, as stored.
    fn stored_text(&self) -> Vec<String> {
        const TABLES: [&str; 5] = [
            "findings",
            "health",
            "inventories",
            "inventory_vendors",
            "inventory_hosts",
        ];
        let mut out = Vec::new();
        match self {
            Self::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                for table in TABLES {
                    let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
                    let n = stmt.column_count();
                    let mut rows = stmt.query([]).unwrap();
                    while let Some(row) = rows.next().unwrap() {
                        for i in 0..n {
                            if let rusqlite::types::ValueRef::Text(t) = row.get_ref(i).unwrap() {
                                out.push(String::from_utf8_lossy(t).into_owned());
                            }
                        }
                    }
                }
            }
            Self::Postgres(db) => {
                let mut client = db.client();
                for table in TABLES {
                    for row in client
                        .query(&format!("SELECT t::text FROM {table} t"), &[])
                        .unwrap()
                    {
                        out.push(row.get(0));
                    }
                }
            }
        }
        out
    }
}

fn each_store(name: &str, test: impl Fn(&TestStore)) {
    let dir = temp_dir(name);
    test(&TestStore::Sqlite(dir.join("tagwatch.db")));
    let _ = std::fs::remove_dir_all(dir);
    if let Some(db) = TestDb::create(name) {
        test(&TestStore::Postgres(db));
    }
}

fn post(server: &Server, path: &str, content_type: &str, origin: Option<&str>, body: &str) -> Resp {
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
    http(&server.addr, "POST", path, &headers, Some(body.as_bytes()))
}

fn post_reports(server: &Server, origin: Option<&str>, items: &[Value]) -> Resp {
    post(server, "/r", "text/plain", origin, &batch(items))
}

/// `tagwatch export --site KEY --db URL ARGS`, stdout.
fn export(db: &str, site: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["export", "--site", site, "--db", db])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "export {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Everything an operator can read about a site: every API and export.
fn everything_read(server: &Server, key: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for api in [
        "/api/findings?site=KEY",
        "/api/health?site=KEY",
        "/api/inventory?site=KEY",
        "/api/stats?site=KEY",
        "/api/sites",
    ] {
        let path = api.replace("KEY", key);
        let resp = server.get_api(&path);
        assert_eq!(resp.status, 200, "{path}: {}", resp.body);
        out.push((path, resp.body));
    }
    for args in [
        &["--format", "json"][..],
        &["--format", "csv"],
        &["--format", "csv", "--findings"],
        &["--format", "ropa"],
    ] {
        out.push((args.join(" "), export(&server.db, key, args)));
    }
    out
}

/// A page URL as an old loader sends it (cut at `?` and `#`, which the
/// schema refuses) with canaries in its user info and path.
fn forged_page(path: &str) -> String {
    format!(
        "https://jane.doe%40example.com:secret@shop.example{path}/{EMAIL}/orders/{NUMBER}/{UUID}"
    )
}

/// A URL as a browser puts it in a CSP report: with query and fragment.
fn forged_url(path: &str) -> String {
    format!(
        "https://jane.doe%40example.com:secret@shop.example{path}/{EMAIL}/orders/{NUMBER}/{UUID}\
         ?email={EMAIL}&uid={NUMBER}#uid={UUID}"
    )
}

/// A batch from a forged (or old) client with canaries in every URL and
/// text field, and in fields the schema does not define.
fn forged_batch(key: &str) -> Vec<Value> {
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

fn forged_csp(key: &str) -> (String, String) {
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

fn assert_no_canary(place: &str, text: &str) {
    for canary in CANARIES {
        assert!(
            !text.contains(canary),
            "{canary:?} in {place}: {}",
            text.chars().take(3000).collect::<String>()
        );
    }
}

#[test]
fn forged_reports_store_no_personal_data() {
    each_store("canaries", |store| {
        let db = store.url();
        let key = site_add(&db, &[ORIGIN]);
        let server = Server::start(&db, &[]);
        let resp = post_reports(&server, Some(ORIGIN), &forged_batch(&key));
        assert_eq!(resp.status, 204, "{}", resp.body);
        let (legacy, api) = forged_csp(&key);
        let path = format!("/csp/{key}");
        let resp = post(&server, &path, "application/csp-report", None, &legacy);
        assert_eq!(resp.status, 204, "{}", resp.body);
        let resp = post(&server, &path, "application/reports+json", None, &api);
        assert_eq!(resp.status, 204, "{}", resp.body);

        // Everything was stored (redacted, not refused).
        let findings = server.findings(&format!("site={key}"));
        assert_eq!(findings.len(), 4, "{findings:?}");
        let pages: Vec<&str> = findings.iter().filter_map(|f| f["page"].as_str()).collect();
        assert!(
            pages.contains(&"https://shop.example/account/:id/orders/:id/:id"),
            "{pages:?}"
        );
        let health = server.health(&format!("site={key}"));
        assert_eq!(health.len(), 2, "{health:?}");
        assert!(health.iter().all(|h| h["reason"].is_null()), "{health:?}");
        assert_eq!(
            server.inventory(&format!("site={key}"))["page_views"],
            1,
            "inventory stored"
        );

        for (place, text) in everything_read(&server, &key) {
            assert_no_canary(&place, &text);
        }
        let stored = store.stored_text();
        // SQLite: one text per column; PostgreSQL: one per row (9 rows).
        assert!(stored.len() >= 9, "{stored:?}");
        for text in stored {
            assert_no_canary("a stored column", &text);
        }
        let log = server.stderr.lock().unwrap().join("\n");
        assert_no_canary("the collector's log", &log);
    });
}

#[test]
fn nul_is_refused_with_a_400_naming_the_field_on_both_stores() {
    each_store("nul", |store| {
        let db = store.url();
        let key = site_add(&db, &[ORIGIN]);
        let server = Server::start(&db, &[]);
        let base = &forged_batch(&key);
        let cases: [(&str, &str, Value); 7] = [
            ("/url", "item 0: url", json!("https://shop.example/a\u{0}b")),
            ("/user_agent", "item 0: user_agent", json!("UA\u{0}")),
            (
                "/body/evidence/cookie",
                "item 0: body.evidence.cookie",
                json!("a\u{0}"),
            ),
            (
                "/body/consent/source",
                "item 0: body.consent.source",
                json!("\u{0}"),
            ),
            ("/body/extra", "item 0: body.extra", json!(["ok", "\u{0}"])),
            (
                "/body/evidence",
                "item 0: body.evidence.a\\0b",
                json!({"kind": "cookie", "a\u{0}b": 1}),
            ),
            ("/body/vendor", "item 0: body.vendor", json!("\u{0}")),
        ];
        for (pointer, want, value) in cases {
            let mut item = base[0].clone();
            let (parent, field) = pointer.rsplit_once('/').unwrap();
            let target = if parent.is_empty() {
                &mut item
            } else {
                item.pointer_mut(parent).unwrap()
            };
            target[field] = value;
            let resp = post_reports(&server, Some(ORIGIN), &[item]);
            assert_eq!(resp.status, 400, "{pointer}: {}", resp.body);
            assert!(
                resp.body.starts_with(want) && resp.body.contains("NUL character (U+0000)"),
                "{pointer}: {}",
                resp.body
            );
            assert!(resp.header("retry-after").is_none());
        }
        // Health reason and inventory cookies, in later items of a batch.
        let mut health = base[2].clone();
        health["body"]["reason"] = json!("Compile\u{0}Error");
        let resp = post_reports(&server, Some(ORIGIN), &[base[1].clone(), health]);
        assert_eq!(resp.status, 400, "{}", resp.body);
        assert!(
            resp.body.starts_with("item 1: body.reason: "),
            "{}",
            resp.body
        );
        let mut inv = base[4].clone();
        inv["body"]["vendors"][0]["cookies"][1] = json!("x\u{0}");
        let resp = post_reports(&server, Some(ORIGIN), &[inv]);
        assert!(
            resp.status == 400 && resp.body.starts_with("item 0: body.vendors.0.cookies.1: "),
            "{}",
            resp.body
        );
        // CSP reports.
        let csp = json!({"csp-report": {
            "document-uri": "https://shop.example/", "blocked-uri": "https://x.example/\u{0}"
        }});
        let resp = post(
            &server,
            &format!("/csp/{key}"),
            "application/csp-report",
            None,
            &csp.to_string(),
        );
        assert_eq!(resp.status, 400, "{}", resp.body);
        assert!(
            resp.body.starts_with("csp-report.blocked-uri: "),
            "{}",
            resp.body
        );
        // A lone surrogate is not JSON text at all: 400 on both.
        let lone = batch(&[base[1].clone()]).replace("\"top\"", "\"\\ud800\"");
        let resp = post(&server, "/r", "text/plain", Some(ORIGIN), &lone);
        assert_eq!(resp.status, 400, "{}", resp.body);
        assert!(resp.body.starts_with("body is not JSON"), "{}", resp.body);
        // Nothing was stored, nothing counted as a store failure.
        assert!(server.findings(&format!("site={key}")).is_empty());
        assert!(server.health(&format!("site={key}")).is_empty());

        // A NUL where a key or a page is looked up: the same answer on both.
        let resp = server.get_api("/api/findings?site=%00");
        assert_eq!(resp.status, 404, "{}", resp.body);
        let resp = server.get_api(&format!("/api/findings?site={key}&page=%00"));
        assert_eq!(resp.status, 400, "{}", resp.body);
        let resp = http(&server.addr, "GET", "/config/tw%00x", &[], None);
        assert_eq!(resp.status, 404, "{}", resp.body);
        let resp = post(
            &server,
            "/csp/tw%00x",
            "application/csp-report",
            None,
            &json!({"csp-report": {"document-uri": "https://shop.example/"}}).to_string(),
        );
        assert_eq!(resp.status, 403, "{}", resp.body);

        // Long text in a field the schema does not bound is stored on both.
        let mut long = base[1].clone();
        long["body"]["extra"] = json!("x".repeat(60_000));
        let resp = post_reports(&server, Some(ORIGIN), &[long]);
        assert_eq!(resp.status, 204, "{}", resp.body);
        assert_eq!(server.findings(&format!("site={key}")).len(), 1);

        let metrics = server.get_api("/metrics").body;
        assert!(
            !metrics
                .lines()
                .any(|l| l.contains("unavailable") && !l.starts_with('#') && !l.ends_with(" 0")),
            "{metrics}"
        );
    });
}

/// Report text that tries to break out of Markdown, HTML or a CSV cell.
const PAYLOADS: [&str; 12] = [
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

fn payload_batch(key: &str) -> Vec<Value> {
    let consent =
        json!({"necessary": true, "functional": false, "analytics": false, "marketing": false});
    let mut items = vec![json!({
        "type": "tagwatch-inventory", "age": 0, "url": "https://shop.example/x;=1+1/-2",
        "user_agent": "UA",
        "body": {"schema": 1, "site": key, "page_view": PV,
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
            "body": {"schema": 1, "site": key, "page_view": PV, "finding": "cookie_before_consent",
                     "vendor": if i % 2 == 0 { "intercom" } else { "zz-unknown" }, "at": i,
                     "evidence": {"kind": "cookie", "cookie": p, "purpose": purpose, "name": p},
                     "consent": consent}
        }));
    }
    items
}

/// The text of every cell of every table, and the HTML, of Markdown.
fn render(markdown: &str) -> (Vec<String>, String) {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut cells = Vec::new();
    let mut cell: Option<String> = None;
    for event in Parser::new_ext(markdown, options) {
        match &event {
            Event::Html(h) | Event::InlineHtml(h) => panic!("raw HTML in the RoPA: {h}"),
            Event::Start(Tag::Link { dest_url, .. }) => panic!("a link in the RoPA: {dest_url}"),
            Event::Start(Tag::Image { dest_url, .. }) => {
                panic!("an image in the RoPA: {dest_url}")
            }
            Event::Start(Tag::Strong | Tag::Strikethrough) => {
                panic!("report text became formatting in the RoPA")
            }
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => cells.extend(cell.take()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(c) = cell.as_mut() {
                    c.push_str(t);
                }
            }
            _ => {}
        }
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, Parser::new_ext(markdown, options));
    (cells, html)
}

/// Splits CSV text the ways a spreadsheet might, and checks that no piece
/// starts a formula.
fn assert_csv_inert(name: &str, csv: &str) {
    for line in csv.split("\r\n") {
        assert!(
            !line.contains(['\n', '\r', '\t']),
            "{name}: a control character splits a record: {line:?}"
        );
        for separator in [',', ';', '\t', '|', ':', ' '] {
            for piece in line.split(separator) {
                let start = piece.trim_start_matches([' ', '"']);
                assert!(
                    !start.starts_with(['=', '+', '-', '@', '\u{ff1d}']),
                    "{name}: split at {separator:?}, {piece:?} starts a formula in {line:?}"
                );
            }
        }
    }
}

#[test]
fn exports_of_forged_reports_are_inert() {
    each_store("payloads", |store| {
        let db = store.url();
        let key = site_add(&db, &[ORIGIN]);
        let server = Server::start(&db, &[]);
        let resp = post_reports(&server, Some(ORIGIN), &payload_batch(&key));
        assert_eq!(resp.status, 204, "{}", resp.body);

        let ropa = export(&db, &key, &["--format", "ropa"]);
        let (cells, html) = render(&ropa);
        for tag in ["<img", "<script", "<a ", "<b>", "<strong", "<del"] {
            assert!(!html.contains(tag), "{tag} in the rendered RoPA:\n{html}");
        }
        // Each payload is shown whole, as text, inside one table cell.
        for p in PAYLOADS {
            let shown = p.replace(|c: char| c.is_control(), " ");
            assert!(
                cells.iter().any(|c| c.contains(&shown)),
                "{shown:?} not shown whole in a cell; cells: {cells:#?}"
            );
        }
        for args in [&["--format", "csv"][..], &["--format", "csv", "--findings"]] {
            let csv = export(&db, &key, args);
            assert!(csv.contains("x;'=cmd|' /C calc'!A0"), "{csv}");
            assert_csv_inert(&args.join(" "), &csv);
        }
        let json: Value = serde_json::from_str(&export(&db, &key, &["--format", "json"])).unwrap();
        let cookies = json["inventory"]["vendors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["vendor"] == "intercom")
            .unwrap()["cookies"]
            .clone();
        assert!(
            cookies.as_array().unwrap().contains(&json!(PAYLOADS[0])),
            "JSON keeps the text as it was: {cookies}"
        );
    });
}

#[test]
fn site_add_refuses_wildcards_on_public_suffixes() {
    let dir = temp_dir("psl");
    let db = db_url(&dir.join("tagwatch.db"));
    for origin in [
        "https://*.co.uk",
        "https://*.github.io",
        "https://*.com",
        "https://*.uk",
        "https://*.s3.amazonaws.com",
        "https://*.127.0.0.1",
        "https://*.[::1]",
    ] {
        let out = Command::new(BIN)
            .args(["site", "add", "--origin", origin, "--db", &db])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{origin}: {stderr}");
        assert!(out.stdout.is_empty(), "{origin}");
        assert!(stderr.contains("invalid origin"), "{origin}: {stderr}");
    }
    for origin in [
        "https://*.shop.example.co.uk",
        "https://*.jane-doe.github.io",
    ] {
        site_add(&db, &[origin]);
    }
    let _ = std::fs::remove_dir_all(dir);
}
