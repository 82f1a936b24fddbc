//! Forged reports through the real `tagwatch` commands, on SQLite and
//! PostgreSQL (the store filled by the collector's routes called in the
//! process; what ingest and the read API make of the same reports:
//! crates/collector/tests/hostile.rs):
//!
//! - personal data (e-mail, UUID and number canaries) is in no export,
//!   and report text in exports is inert (RoPA Markdown rendered to HTML, CSV
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
/// The collector's in-process harness and forged reports
/// (crates/collector/tests/common): fills a store as ingest does, without a
/// collector process. Both harnesses hold the shared report builders
/// (`reports.rs`); this test takes the commands from `common` and the
/// forged reports from here.
#[allow(clippy::duplicate_mod)]
#[path = "../../crates/collector/tests/common/mod.rs"]
mod inprocess;

use std::process::Command;

use common::pg::TestDb;
use common::{db_url, site_add, temp_dir, BIN, ORIGIN};
use inprocess::{
    assert_no_canary, batch, payload_batch, send_forged, Server as Collector, PAYLOADS,
};
use serde_json::{json, Value};

/// Runs `test` on the `--db` URL of SQLite in a temporary directory, then of
/// PostgreSQL when `TAGWATCH_TEST_POSTGRES` is set.
fn each_store(name: &str, test: impl Fn(&str)) {
    let dir = temp_dir(name);
    test(&db_url(&dir.join("tagwatch.db")));
    let _ = std::fs::remove_dir_all(dir);
    if let Some(db) = TestDb::create(name) {
        test(&db.url);
    }
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

/// One store holds both kinds of forged reports; each export is read once.
#[test]
fn exports_of_forged_reports_are_inert_and_show_no_personal_data() {
    each_store("forged", |db| {
        let key = site_add(db, &[ORIGIN]);
        let collector = Collector::start(db, &[]);
        send_forged(&collector, &key);
        let resp = collector.post(Some(ORIGIN), &batch(&payload_batch(&key)));
        assert_eq!(resp.status, 204, "{}", resp.body);
        drop(collector);
        let export = |args: &[&str]| {
            let text = export(db, &key, args);
            assert_no_canary(&args.join(" "), &text);
            text
        };

        let ropa = export(&["--format", "ropa"]);
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
            let csv = export(args);
            assert!(csv.contains("x;'=cmd|' /C calc'!A0"), "{csv}");
            assert_csv_inert(&args.join(" "), &csv);
        }
        let json: Value = serde_json::from_str(&export(&["--format", "json"])).unwrap();
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
