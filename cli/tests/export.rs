//! `tagwatch export` against golden files (cli/tests/golden/export.*), on
//! a store filled with fixed rows — SQLite, and PostgreSQL when
//! `TAGWATCH_TEST_POSTGRES` is set: both must give the same bytes.
//! `TAGWATCH_UPDATE_GOLDEN=1` rewrites the files from SQLite.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::pg::TestDb;
use common::*;

const SITE: &str = "tw_golden000000000000000";
/// The site's id in `names` (schema 15), in a row written behind the
/// collector's back.
const SITE_ID: &str = "(SELECT id FROM names WHERE name = 'tw_golden000000000000000')";

/// Fixed rows: findings of three vendors (one known only from a CSP
/// report, one unknown host), two page views' inventories.
fn rows() -> Vec<String> {
    let consent_none = r#"{"analytics":false,"functional":false,"gpc":false,"marketing":false,"necessary":true,"since":0,"source":"default"}"#;
    let consent_api = r#"{"analytics":false,"functional":true,"gpc":false,"marketing":false,"necessary":true,"since":120,"source":"api"}"#;
    // A row's page view ordinal (schema 14), from the page views below.
    let ordinal = |pv: &str| {
        format!("(SELECT ordinal FROM page_views WHERE site_id = {SITE_ID} AND page_view = '{pv}')")
    };
    let finding = |pv: &str,
                   page: &str,
                   kind: &str,
                   vendor: &str,
                   category: &str,
                   evidence: &str,
                   consent: &str,
                   count: i64,
                   at: &str| {
        let category = if category.is_empty() {
            "NULL".to_owned()
        } else {
            format!("'{category}'")
        };
        // The columns the store fills in from the evidence and consent.
        let field = |json: &str, name: &str| {
            serde_json::from_str::<serde_json::Value>(json)
                .ok()
                .and_then(|v| v.get(name)?.as_str().map(|s| format!("'{s}'")))
                .unwrap_or_else(|| "NULL".to_owned())
        };
        let (evidence_kind, source) = (field(evidence, "kind"), field(consent, "source"));
        format!(
            "INSERT INTO findings (site_id, page_view, page, type, vendor, category, evidence_kind, evidence, consent_source, consent, count, at, received_at, user_agent, raw, ordinal)
             VALUES ({SITE_ID}, '{pv}', 'https://shop.example{page}', '{kind}', '{vendor}', {category}, {evidence_kind}, '{evidence}', {source}, '{consent}', {count}, '{at}', '{at}', 'UA', '{{}}', {})",
            ordinal(pv)
        )
    };
    let inventory = |pv: &str, page: &str, at: &str| {
        format!(
            "INSERT INTO inventories (site_id, page_view, page, at, received_at, user_agent, raw, ordinal)
             VALUES ({SITE_ID}, '{pv}', 'https://shop.example{page}', '{at}', '{at}', 'UA', '{{}}', {})",
            ordinal(pv)
        )
    };
    let vendor = |pv: &str, id: &str, n: [i64; 5], hosts: &str, regions: &str, cookies: &str| {
        format!(
            "INSERT INTO inventory_vendors (inventory, vendor, requests, script_requests, transfer_bytes, encoded_bytes, duration_ms, hosts, regions, cookies)
             VALUES ((SELECT id FROM inventories WHERE page_view = '{pv}'), '{id}', {}, {}, {}, {}, {}, '{hosts}', '{regions}', '{cookies}')",
            n[0], n[1], n[2], n[3], n[4]
        )
    };
    vec![
        format!("INSERT INTO sites (key, created_at) VALUES ('{SITE}', '2024-05-01T00:00:00.000Z')"),
        format!("INSERT INTO site_origins (site, origin) VALUES ('{SITE}', 'https://shop.example')"),
        format!("INSERT INTO names (name) VALUES ('{SITE}')"),
        format!("INSERT INTO page_views (site_id, page_view) VALUES ({SITE_ID}, '00000000000000a1'), ({SITE_ID}, '00000000000000a2'), ({SITE_ID}, '5c1e0c3b9a7d2f41')"),
        finding("00000000000000a1", "/support", "script_before_consent", "intercom", "functional",
            r#"{"frame":"top","host":"widget.intercom.io","initiator":"script","kind":"request","path":"/widget/abc12345","purpose":"messenger"}"#,
            consent_none, 1, "2024-05-01T10:00:00.250Z"),
        finding("00000000000000a1", "/support", "cookie_before_consent", "intercom", "functional",
            r#"{"cookie":"intercom-id-abc12345","kind":"cookie","purpose":"messenger"}"#,
            consent_none, 2, "2024-05-01T10:00:01.000Z"),
        finding("00000000000000a2", "/pricing", "tracking_before_consent", "intercom", "marketing",
            r##"{"frame":"#intercom-frame","host":"api-iam.intercom.io","initiator":"xmlhttprequest","kind":"request","path":"/messenger/web/ping","purpose":"tracking","region":"us"}"##,
            consent_api, 3, "2024-05-02T09:00:01.000Z"),
        finding("00000000000000a2", "/pricing", "identity_unverified", "intercom", "",
            r#"{"kind":"global","name":"intercomSettings"}"#,
            consent_api, 1, "2024-05-02T09:00:00.500Z"),
        finding("00000000000000a2", "/pricing", "cookie_before_consent", "ga4", "analytics",
            r#"{"cookie":"_ga","kind":"cookie","purpose":"measurement"}"#,
            consent_api, 1, "2024-05-02T09:00:02.000Z"),
        finding("5c1e0c3b9a7d2f41", "/pricing", "csp_blocked", "hotjar", "analytics",
            r#"{"directive":"script-src-elem","disposition":"report","host":"static.hotjar.com","kind":"csp","path":"/c/hotjar-1.js"}"#,
            "null", 4, "2024-05-02T09:00:03.000Z"),
        finding("5c1e0c3b9a7d2f41", "/pricing", "csp_blocked", "unclassified", "",
            r#"{"directive":"connect-src","disposition":"report","host":"api.unknown-widget.example","kind":"csp","path":"/config"}"#,
            "null", 1, "2024-05-02T09:00:04.000Z"),
        inventory("00000000000000a1", "/support", "2024-05-01T10:00:05.000Z"),
        inventory("00000000000000a2", "/pricing", "2024-05-02T09:00:05.000Z"),
        vendor("00000000000000a1", "intercom", [7, 3, 40_000, 20_000, 800],
            r#"["api-iam.intercom.io","js.intercomcdn.com","widget.intercom.io"]"#, r#"["us"]"#,
            r#"["intercom-device-id-abc12345","intercom-id-abc12345","intercom-session-abc12345"]"#),
        vendor("00000000000000a2", "intercom", [4, 1, 10_000, 5_000, 300],
            r#"["api-iam.intercom.io","widget.intercom.io"]"#, r#"["us"]"#,
            r#"["intercom-id-abc12345"]"#),
        vendor("00000000000000a2", "ga4", [2, 1, 45_000, 44_000, 120],
            r#"["region1.google-analytics.com","www.googletagmanager.com"]"#, r#"[]"#,
            r#"["_ga","_ga_ABC123"]"#),
        "INSERT INTO inventory_hosts (inventory, host, requests, script_requests, transfer_bytes, encoded_bytes, duration_ms)
         VALUES ((SELECT id FROM inventories WHERE page_view = '00000000000000a1'), 'cdn.unknown-widget.example', 2, 1, 15000, 14000, 90)".to_owned(),
    ]
}

/// Opens (and so migrates) the store through the binary, then fills it.
fn fill(db: &str) {
    let out = Command::new(BIN)
        .args(["site", "list", "--db", db])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let sql = rows();
    if let Some(path) = db.strip_prefix("sqlite:") {
        let conn = rusqlite::Connection::open(path).unwrap();
        for s in &sql {
            conn.execute(s, []).unwrap_or_else(|e| panic!("{e}: {s}"));
        }
    } else {
        let mut client = postgres::Client::connect(db, postgres::NoTls).unwrap();
        for s in &sql {
            client
                .execute(s.as_str(), &[])
                .unwrap_or_else(|e| panic!("{e}: {s}"));
        }
    }
}

fn export(db: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["export", "--site", SITE, "--db", db])
        .args(args)
        .output()
        .unwrap()
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

const CASES: [(&str, &[&str]); 5] = [
    ("export.json", &["--format", "json"]),
    ("export.csv", &["--format", "csv"]),
    ("export-findings.csv", &["--format", "csv", "--findings"]),
    ("export-ropa.md", &["--format", "ropa"]),
    (
        "export-since.json",
        &[
            "--format",
            "json",
            "--since",
            "2024-05-02",
            "--until",
            "2024-05-02T09:00:02Z",
        ],
    ),
];

fn check_against_golden(db: &str, backend: &str) {
    let update = std::env::var("TAGWATCH_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    for (file, args) in CASES {
        let out = export(db, args);
        assert!(
            out.status.success(),
            "{backend} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let path = golden(file);
        if update && backend == "sqlite" {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with TAGWATCH_UPDATE_GOLDEN=1 to create it",
                path.display()
            )
        });
        if text != want {
            let first = text
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{backend}: {file} differs from the golden file at line {}:\n  got:  {:?}\n  want: {:?}\n(TAGWATCH_UPDATE_GOLDEN=1 rewrites it)",
                first + 1,
                text.lines().nth(first),
                want.lines().nth(first)
            );
        }
    }
}

#[test]
fn export_matches_the_golden_files_sqlite() {
    let dir = temp_dir("export");
    let db = db_url(&dir.join("t.db"));
    fill(&db);
    check_against_golden(&db, "sqlite");

    // Usage errors: exit 2, a reason, nothing on stdout.
    for (args, want) in [
        (vec!["--format", "xml"], "--format"),
        (vec!["--format", "json", "--findings"], "--findings"),
        (vec!["--format", "json", "--since", "yesterday"], "--since"),
    ] {
        let out = export(&db, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{args:?}"
        );
    }
    let out = Command::new(BIN)
        .args([
            "export", "--site", "tw_nope", "--format", "json", "--db", &db,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown site key"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn export_matches_the_golden_files_postgres() {
    if let Some(db) = TestDb::create("export") {
        fill(&db.url);
        check_against_golden(&db.url, "postgres");
    }
}
