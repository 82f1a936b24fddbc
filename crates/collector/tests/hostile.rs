//! Forged reports against the collector's routes, called in the process,
//! on SQLite and, with `TAGWATCH_TEST_POSTGRES`, on PostgreSQL:
//!
//! - personal data (e-mail, UUID and number canaries) in every URL and
//!   text field is not stored, whatever every read API, table and log
//!   event shows (exports of the same reports: cli/tests/hostile.rs);
//! - a NUL character is a 400 that names the field, the same on both stores.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use common::pg::TestDb;
use common::*;

fn sqlite(name: &str) -> (String, TempDir) {
    let dir = temp_dir(name);
    (db_url(&dir.join("tagwatch.db")), dir)
}

/// Every text value of every report table of the store at `db`, as stored.
fn stored_text(db: &str) -> Vec<String> {
    const TABLES: [&str; 5] = [
        "findings",
        "health",
        "inventories",
        "inventory_vendors",
        "inventory_hosts",
    ];
    let mut out = Vec::new();
    if let Some(path) = db.strip_prefix("sqlite:") {
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
    } else {
        let mut client = postgres::Client::connect(db, postgres::NoTls).unwrap();
        for table in TABLES {
            for row in client
                .query(&format!("SELECT t::text FROM {table} t"), &[])
                .unwrap()
            {
                out.push(row.get(0));
            }
        }
    }
    out
}

/// Every log event of this test binary's collectors, as text: each event's
/// message and fields, at every level and target (more than `tagwatch
/// serve` prints, which is made of the same messages and fields).
fn log() -> String {
    LOG.get_or_init(|| {
        let subscriber = tracing_subscriber::Registry::default().with(Capture);
        tracing::subscriber::set_global_default(subscriber).unwrap();
        Mutex::new(String::new())
    })
    .lock()
    .unwrap()
    .clone()
}

static LOG: OnceLock<Mutex<String>> = OnceLock::new();

/// The layer that appends each event to [`LOG`].
struct Capture;

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        struct Text(String);
        impl Visit for Text {
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        if let Some(log) = LOG.get() {
            let mut log = log.lock().unwrap();
            log.push_str(&text.0);
            log.push('\n');
        }
    }
}

/// Every read API's answer about a site.
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
    out
}

fn forged_reports(db: &str) {
    log(); // Captures from here on.
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, &[]);
    send_forged(&server, &key);

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
    let stored = stored_text(db);
    // SQLite: one text per column; PostgreSQL: one per row (9 rows).
    assert!(stored.len() >= 9, "{stored:?}");
    for text in stored {
        assert_no_canary("a stored column", &text);
    }
    drop(server);
    let log = log();
    assert!(log.contains("accepted"), "events captured: {log}");
    assert_no_canary("the collector's log", &log);
}

#[test]
fn forged_reports_store_no_personal_data_sqlite() {
    let (db, dir) = sqlite("canaries");
    forged_reports(&db);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn forged_reports_store_no_personal_data_postgres() {
    if let Some(db) = TestDb::create("canaries") {
        forged_reports(&db.url);
    }
}

fn nul(db: &str) {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, &[]);
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
        let resp = post_forged_reports(&server, Some(ORIGIN), &[item]);
        assert_eq!(resp.status, 400, "{pointer}: {}", resp.body);
        assert!(
            resp.body.starts_with(want) && resp.body.contains("NUL character (U+0000)"),
            "{pointer}: {}",
            resp.body
        );
        assert!(resp.header("retry-after").is_none());
    }
    let mut health = base[2].clone();
    health["body"]["reason"] = json!("Compile\u{0}Error");
    let resp = post_forged_reports(&server, Some(ORIGIN), &[base[1].clone(), health]);
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(
        resp.body.starts_with("item 1: body.reason: "),
        "{}",
        resp.body
    );
    let mut inv = base[4].clone();
    inv["body"]["vendors"][0]["cookies"][1] = json!("x\u{0}");
    let resp = post_forged_reports(&server, Some(ORIGIN), &[inv]);
    assert!(
        resp.status == 400 && resp.body.starts_with("item 0: body.vendors.0.cookies.1: "),
        "{}",
        resp.body
    );
    // CSP reports.
    let csp = json!({"csp-report": {
        "document-uri": "https://shop.example/", "blocked-uri": "https://x.example/\u{0}"
    }});
    let resp = post_forged(
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
    let resp = post_forged(&server, "/r", "text/plain", Some(ORIGIN), &lone);
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
    let resp = server.http("GET", "/config/tw%00x", &[], None);
    assert_eq!(resp.status, 404, "{}", resp.body);
    let resp = post_forged(
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
    let resp = post_forged_reports(&server, Some(ORIGIN), &[long]);
    assert_eq!(resp.status, 204, "{}", resp.body);
    assert_eq!(server.findings(&format!("site={key}")).len(), 1);

    let metrics = server.get_api("/metrics").body;
    assert!(
        !metrics
            .lines()
            .any(|l| l.contains("unavailable") && !l.starts_with('#') && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[test]
fn nul_is_refused_with_a_400_naming_the_field_sqlite() {
    let (db, dir) = sqlite("nul");
    nul(&db);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn nul_is_refused_with_a_400_naming_the_field_postgres() {
    if let Some(db) = TestDb::create("nul") {
        nul(&db.url);
    }
}
