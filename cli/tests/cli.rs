//! The offline commands of the real `tagwatch` binary: `classify` against
//! the labelled corpus, `har` against a Chrome-shaped HAR fixture, `catalog
//! list|show|import-ocd`, and their error paths and exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod common;
use common::temp_dir;

const BIN: &str = env!("CARGO_BIN_EXE_tagwatch");

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel)
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // Write from another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// `tagwatch catalog import-ocd <csv> --out <out> <extra…>`, no stdin.
fn import_ocd(csv: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "catalog",
        "import-ocd",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args, b"")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

// ------------------------------------------------------------- classify

struct Expectation {
    line: usize,
    input: String,
    vendor: String,
    purpose: String,
    region: Option<String>,
    known_gap: bool,
}

fn corpus() -> Vec<Expectation> {
    let text = std::fs::read_to_string(fixture("classify/corpus.tsv")).unwrap();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let (known_gap, line) = match raw.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(
            (3..=4).contains(&cols.len()),
            "corpus line {}: want 3 or 4 TAB-separated columns: {raw:?}",
            i + 1
        );
        out.push(Expectation {
            line: i + 1,
            input: cols[0].to_owned(),
            vendor: cols[1].to_owned(),
            purpose: cols[2].to_owned(),
            region: cols.get(3).map(|s| (*s).to_owned()),
            known_gap,
        });
    }
    out
}

#[test]
fn classify_matches_the_labelled_corpus() {
    let corpus = corpus();
    assert!(corpus.len() > 150, "corpus too small: {}", corpus.len());
    let input: String = corpus.iter().map(|e| format!("{}\n", e.input)).collect();
    let out = run(&["classify"], input.as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let answers: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), corpus.len(), "one answer per input line");

    let dash = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let (mut wrong, mut fixed, mut gaps) = (Vec::new(), Vec::new(), 0);
    for (e, a) in corpus.iter().zip(&answers) {
        assert_eq!(a["input"], e.input.as_str(), "line {}", e.line);
        let want_kind = if e.input.contains("://") {
            "url"
        } else {
            "cookie"
        };
        let got = (dash(&a["vendor"]), dash(&a["purpose"]), dash(&a["region"]));
        let ok = got.0 == e.vendor
            && got.1 == e.purpose
            && e.region.as_ref().is_none_or(|r| *r == got.2)
            && a["kind"] == want_kind;
        match (ok, e.known_gap) {
            (true, false) => {}
            (false, true) => gaps += 1,
            (true, true) => fixed.push(format!(
                "line {}: {} now classifies right: remove its `!`",
                e.line, e.input
            )),
            (false, false) => wrong.push(format!(
                "line {}: {}\n    want {} / {} / {}\n    got  {} / {} / {} (kind {})",
                e.line,
                e.input,
                e.vendor,
                e.purpose,
                e.region.as_deref().unwrap_or("(any)"),
                got.0,
                got.1,
                got.2,
                a["kind"]
            )),
        }
    }
    eprintln!(
        "classify corpus: {} lines, {gaps} known catalog gaps",
        corpus.len()
    );
    assert!(
        wrong.is_empty() && fixed.is_empty(),
        "\n{}\n{}",
        wrong.join("\n"),
        fixed.join("\n")
    );
}

#[test]
fn classify_output_is_exactly_the_contract() {
    let out = run(
        &["classify"],
        b"https://api-iam.eu.intercom.io/messenger/web/ping?email=jane@example.com\n\n   \nintercom-session-abc\r\nunknown_cookie\n",
    );
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out),
        concat!(
            r#"{"input":"https://api-iam.eu.intercom.io/messenger/web/ping?email=jane@example.com","kind":"url","vendor":"intercom","purpose":"tracking","region":"eu"}"#,
            "\n",
            r#"{"input":"intercom-session-abc","kind":"cookie","vendor":"intercom","purpose":"messenger","region":null}"#,
            "\n",
            r#"{"input":"unknown_cookie","kind":"cookie","vendor":null,"purpose":null,"region":null}"#,
            "\n"
        )
    );
}

#[test]
fn classify_reports_overlong_lines_and_keeps_going() {
    let mut input = b"https://widget.intercom.io/widget/".to_vec();
    input.extend(std::iter::repeat_n(b'x', 20_000));
    input.extend_from_slice(b"\nintercom-id-abc\n");
    let out = run(&["classify"], &input);
    assert_eq!(code(&out), 0);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "url");
    assert_eq!(lines[0]["vendor"], Value::Null);
    assert_eq!(lines[0]["error"], "line longer than 8192 bytes");
    assert_eq!(lines[0]["input"].as_str().unwrap().len(), 8192);
    assert_eq!(lines[1]["vendor"], "intercom");
}

#[test]
fn classify_streams_many_lines() {
    let line = "https://api-iam.intercom.io/messenger/web/ping\n";
    let out = run(&["classify"], line.repeat(100_000).as_bytes());
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out).lines().count(), 100_000);
}

// ------------------------------------------------------------------ har

const HAR: &str = "har/intercom-no-consent.har";

fn har_json(extra: &[&str]) -> (i32, Value, String) {
    let file = fixture(HAR);
    let mut args = vec!["har", file.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = run(&args, b"");
    let text = stdout(&out);
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}\n{}", stderr(&out)));
    (code(&out), json, text)
}

/// (finding, vendor, category, at, evidence) per finding, evidence as
/// `host+path` or `cookie NAME`.
fn finding_rows(report: &Value) -> Vec<(String, String, String, u64, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let e = &f["evidence"];
            let evidence = match e["kind"].as_str().unwrap() {
                "request" => format!(
                    "{}{}",
                    e["host"].as_str().unwrap(),
                    e["path"].as_str().unwrap()
                ),
                "cookie" => format!("cookie {}", e["cookie"].as_str().unwrap()),
                other => panic!("unexpected evidence kind {other}"),
            };
            (
                f["finding"].as_str().unwrap().to_owned(),
                f["vendor"].as_str().unwrap().to_owned(),
                f["category"].as_str().unwrap_or("-").to_owned(),
                f["at"].as_u64().unwrap(),
                evidence,
            )
        })
        .collect()
}

fn rows(list: &[(&str, &str, &str, u64, &str)]) -> Vec<(String, String, String, u64, String)> {
    list.iter()
        .map(|(a, b, c, d, e)| ((*a).into(), (*b).into(), (*c).into(), *d, (*e).into()))
        .collect()
}

#[test]
fn har_without_consent_finds_exactly_these() {
    let (code, report, text) = har_json(&[]);
    assert_eq!(code, 3, "findings exist: exit 3");
    assert_eq!(report["page"], "https://shop.example/pricing");
    assert_eq!(report["entries"], 13);
    assert_eq!(
        finding_rows(&report),
        rows(&[
            (
                "script_before_consent",
                "gtm",
                "analytics",
                210,
                "www.googletagmanager.com/gtag/js"
            ),
            (
                "script_before_consent",
                "intercom",
                "functional",
                640,
                "widget.intercom.io/widget/abc12345"
            ),
            (
                "script_before_consent",
                "intercom",
                "functional",
                905,
                "js.intercomcdn.com/frame-modern.c6941a28.js"
            ),
            (
                "script_before_consent",
                "intercom",
                "functional",
                907,
                "js.intercomcdn.com/vendor-modern.2f0b3c4d.js"
            ),
            (
                "tracking_before_consent",
                "intercom",
                "marketing",
                1195,
                "api-iam.intercom.io/messenger/web/ping"
            ),
            // Listed before the Intercom entries in the file: replayed in time order.
            (
                "tracking_before_consent",
                "ga4",
                "analytics",
                1260,
                "region1.google-analytics.com/g/collect"
            ),
            // Set-Cookie on the ping response, effective when it ends (1195 + 148 ms).
            (
                "cookie_before_consent",
                "intercom",
                "functional",
                1343,
                "cookie intercom-device-id-abc12345"
            ),
            (
                "cookie_before_consent",
                "intercom",
                "functional",
                1343,
                "cookie intercom-id-abc12345"
            ),
            // First seen in a first-party request's Cookie header.
            (
                "cookie_before_consent",
                "ga4",
                "analytics",
                2050,
                "cookie _ga"
            ),
            (
                "cookie_before_consent",
                "ga4",
                "analytics",
                2050,
                "cookie _ga_ABC123XYZ"
            ),
        ])
    );
    let first = &report["findings"][1];
    assert_eq!(first["count"], 1);
    assert_eq!(first["evidence"]["initiator"], "script");
    assert_eq!(first["evidence"]["frame"], "top");
    assert_eq!(first["evidence"]["purpose"], "messenger");
    assert_eq!(first["consent"]["necessary"], true);
    assert_eq!(first["consent"]["functional"], Value::Null);
    assert_eq!(first["consent"]["source"], "default");

    let vendors = report["inventory"]["vendors"].as_array().unwrap();
    let intercom = vendors.iter().find(|v| v["vendor"] == "intercom").unwrap();
    // widget, 2 bundles, launcher_settings, ping, avatar, websocket; the CORS preflight is not an entry.
    assert_eq!(intercom["requests"], 7);
    assert_eq!(intercom["script_requests"], 3);
    assert_eq!(
        intercom["transfer_bytes"],
        4512 + 121_002 + 191_530 + 1604 + 2611 + 7760
    );
    assert_eq!(intercom["regions"], serde_json::json!(["us"]));
    assert_eq!(intercom["declared"]["script_kb"], 250);
    assert_eq!(intercom["name"], "Intercom");
    // 3 scripts against 2 declared requests per page; 329 KB against 250 KB.
    assert_eq!(
        intercom["over_declared"],
        serde_json::json!({"script_requests": true, "bytes": true})
    );
    let cookies: Vec<&str> = intercom["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        cookies,
        ["intercom-device-id-abc12345", "intercom-id-abc12345"]
    );
    let hosts: Vec<&str> = intercom["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        hosts.contains(&"nexus-websocket-a.intercom.io")
            && hosts.contains(&"downloads.intercomcdn.com")
    );
    let unclassified = report["inventory"]["unclassified"].as_array().unwrap();
    assert_eq!(
        unclassified.len(),
        1,
        "the page's own site is not a third party"
    );
    assert_eq!(unclassified[0]["host"], "cdn.unknown-widget.example");
    assert_eq!(unclassified[0]["requests"], 1);

    // Query strings, cookie values, bodies and the page's user fields never
    // reach the output: every such value in the fixture contains "canary".
    assert!(!text.contains("canary"), "{text}");
    assert!(!text.contains("6f1c2e3d"), "cookie value leaked");
}

#[test]
fn har_with_all_consent_finds_nothing() {
    let (code, report, _) = har_json(&["--consent", "all"]);
    assert_eq!(code, 0);
    assert_eq!(report["findings"], serde_json::json!([]));
    assert_eq!(report["inventory"]["vendors"].as_array().unwrap().len(), 3);
}

#[test]
fn har_partial_consent_leaves_only_what_is_not_granted() {
    let (code, report, _) = har_json(&[
        "--consent",
        r#"{"functional":true,"analytics":true,"marketing":false}"#,
    ]);
    assert_eq!(code, 3);
    assert_eq!(
        finding_rows(&report),
        rows(&[(
            "tracking_before_consent",
            "intercom",
            "marketing",
            1195,
            "api-iam.intercom.io/messenger/web/ping"
        )])
    );
    assert_eq!(report["findings"][0]["consent"]["marketing"], false);
    assert_eq!(report["findings"][0]["consent"]["source"], "api");
}

#[test]
fn har_with_policy_checks_regions_pages_and_lifetimes() {
    let policy = fixture("har/policy-eu-support.json");
    let (code, report, _) = har_json(&["--consent", "all", "--policy", policy.to_str().unwrap()]);
    assert_eq!(code, 3);
    assert_eq!(
        finding_rows(&report),
        rows(&[
            (
                "page_out_of_scope",
                "intercom",
                "-",
                640,
                "widget.intercom.io/widget/abc12345"
            ),
            (
                "region_not_allowed",
                "intercom",
                "-",
                1180,
                "api-iam.intercom.io/messenger/web/launcher_settings"
            ),
            (
                "region_not_allowed",
                "intercom",
                "-",
                1195,
                "api-iam.intercom.io/messenger/web/ping"
            ),
            (
                "cookie_lifetime_exceeds_policy",
                "intercom",
                "-",
                1343,
                "cookie intercom-id-abc12345"
            ),
            (
                "cookie_lifetime_exceeds_policy",
                "intercom",
                "-",
                1343,
                "cookie intercom-device-id-abc12345"
            ),
            (
                "region_not_allowed",
                "intercom",
                "-",
                2300,
                "nexus-websocket-a.intercom.io/pubsub/5-x8f3kq2l9zb1"
            ),
        ])
    );
    assert_eq!(report["findings"][1]["evidence"]["region"], "us");
    assert_eq!(report["findings"][3]["evidence"]["days"], 270);
    // --page moves the page into the policy's scope.
    let (_, report, _) = har_json(&[
        "--consent",
        "all",
        "--policy",
        policy.to_str().unwrap(),
        "--page",
        "https://shop.example/support/contact",
    ]);
    assert_eq!(report["page"], "https://shop.example/support/contact");
    assert!(finding_rows(&report)
        .iter()
        .all(|f| f.0 != "page_out_of_scope"));
}

#[test]
fn har_prints_tables_by_default() {
    let file = fixture(HAR);
    let out = run(&["har", file.to_str().unwrap()], b"");
    assert_eq!(code(&out), 3);
    let text = stdout(&out);
    for needle in [
        "page:     https://shop.example/pricing",
        "FINDINGS (10)",
        "AT ms  TYPE",
        "1195   tracking_before_consent  intercom  marketing",
        "cookie intercom-id-abc12345",
        "VENDORS (3)",
        "intercom  7         3",
        "cookies: intercom-device-id-abc12345, intercom-id-abc12345",
        "UNCLASSIFIED THIRD PARTIES (1)",
        "cdn.unknown-widget.example",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let out = run(&["har", file.to_str().unwrap(), "--consent", "all"], b"");
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("FINDINGS: none"));
}

fn har_error(file: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["har", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run(&args, b"");
    assert!(
        out.stdout.is_empty(),
        "no output on error: {}",
        stdout(&out)
    );
    (code(&out), stderr(&out))
}

#[test]
fn har_input_errors_exit_2_with_a_reason() {
    let dir = temp_dir("har-errors");
    let (c, e) = har_error(&dir.join("missing.har"), &[]);
    assert_eq!(c, 2);
    assert!(
        e.contains("cannot open") && e.contains("missing.har") && e.contains("No such file"),
        "{e}"
    );

    let garbage = dir.join("garbage.har");
    std::fs::write(&garbage, "<!doctype html><title>Not a HAR</title>\n").unwrap();
    let (c, e) = har_error(&garbage, &[]);
    assert_eq!(c, 2);
    assert!(
        e.contains("not a HAR file") && e.contains("line 1 column 1"),
        "{e}"
    );

    let full = std::fs::read(fixture(HAR)).unwrap();
    let truncated = dir.join("truncated.har");
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let (c, e) = har_error(&truncated, &[]);
    assert_eq!(c, 2);
    assert!(
        e.contains("not a HAR file") && e.contains("EOF while parsing"),
        "{e}"
    );

    let other_json = dir.join("other.har");
    std::fs::write(
        &other_json,
        r#"{"log":{"version":"1.2","creator":{"name":"x"}}}"#,
    )
    .unwrap();
    let (c, e) = har_error(&other_json, &[]);
    assert_eq!(c, 2);
    assert!(
        e.contains("not a HAR file") && e.contains("no log.entries"),
        "{e}"
    );

    let array = dir.join("array.har");
    std::fs::write(&array, "[1, 2]").unwrap();
    let (c, e) = har_error(&array, &[]);
    assert_eq!(c, 2);
    assert!(
        e.contains("not a HAR file") && e.contains("expected a HAR object"),
        "{e}"
    );

    let bad_time = dir.join("bad-time.har");
    std::fs::write(&bad_time, r#"{"log":{"entries":[{"startedDateTime":"yesterday","request":{"url":"https://a.example/"}}]}}"#)
        .unwrap();
    let (c, e) = har_error(&bad_time, &[]);
    assert_eq!(c, 2);
    assert!(
        e.contains("entry 0") && e.contains("startedDateTime"),
        "{e}"
    );

    let good = fixture(HAR);
    for consent in ["{\"functional\":tru", "{\"ads\":true}", "[true]", "some"] {
        let (c, e) = har_error(&good, &["--consent", consent]);
        assert_eq!(c, 2, "{consent}");
        assert!(e.contains("--consent"), "{e}");
    }
    let (c, e) = har_error(
        &good,
        &["--policy", dir.join("nope.json").to_str().unwrap()],
    );
    assert_eq!(c, 2);
    assert!(e.contains("--policy"), "{e}");
    let bad_policy = dir.join("policy.json");
    std::fs::write(&bad_policy, r#"{"regions":"eu"}"#).unwrap();
    let (c, e) = har_error(&good, &["--policy", bad_policy.to_str().unwrap()]);
    assert_eq!(c, 2);
    assert!(e.contains("not a policy object"), "{e}");
    let (c, e) = har_error(&good, &["--page", "shop.example/x"]);
    assert_eq!(c, 2);
    assert!(e.contains("--page"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A large HAR (tens of MB of bodies) is streamed: the audit only keeps
/// per-entry summaries, so it finishes and finds what is in it.
#[test]
fn har_streams_a_large_file() {
    let dir = temp_dir("har-large");
    let path = dir.join("large.har");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let body = "A".repeat(256 * 1024);
    write!(
        f,
        r#"{{"log":{{"version":"1.2","creator":{{"name":"test","version":"1"}},"entries":["#
    )
    .unwrap();
    let n = 120;
    for i in 0..n {
        let (url, ty) = if i == 7 {
            (
                "https://widget.intercom.io/widget/abc12345".to_owned(),
                "script",
            )
        } else {
            (
                format!("https://shop.example/assets/chunk-{i}.js?v={i}"),
                "script",
            )
        };
        if i > 0 {
            f.write_all(b",").unwrap();
        }
        write!(
            f,
            r#"{{"startedDateTime":"2025-03-04T10:15:{:02}.{:03}Z","time":10.5,"_resourceType":"{ty}","request":{{"method":"GET","url":"{url}","headers":[],"cookies":[]}},"response":{{"status":200,"headers":[],"cookies":[],"content":{{"size":262144,"mimeType":"application/javascript","text":"{body}"}},"bodySize":262144,"_transferSize":262500}}}}"#,
            10 + i / 10,
            (i % 10) * 100,
        )
        .unwrap();
    }
    f.write_all(b"]}}").unwrap();
    f.flush().unwrap();
    drop(f);
    assert!(std::fs::metadata(&path).unwrap().len() > 30_000_000);
    let out = run(
        &[
            "har",
            path.to_str().unwrap(),
            "--json",
            "--page",
            "https://shop.example/",
        ],
        b"",
    );
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["entries"], n);
    assert_eq!(
        finding_rows(&report),
        rows(&[(
            "script_before_consent",
            "intercom",
            "functional",
            700,
            "widget.intercom.io/widget/abc12345"
        )])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// -------------------------------------------------------------- catalog

#[test]
fn catalog_list_and_show() {
    let out = run(&["catalog", "list", "--json"], b"");
    assert_eq!(code(&out), 0);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.len() >= 31,
        "Intercom and at least 30 more vendors: {}",
        lines.len()
    );
    assert_eq!(lines[0]["id"], "intercom");
    for l in &lines {
        for key in ["id", "name", "category", "domains", "cookies"] {
            assert!(!l[key].is_null(), "{key} in {l}");
        }
    }
    let table = run(&["catalog", "list"], b"");
    assert_eq!(code(&table), 0);
    assert!(stdout(&table).starts_with("ID "));

    let out = run(&["catalog", "show", "intercom", "--json"], b"");
    assert_eq!(code(&out), 0);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["primary"], "messenger");
    assert_eq!(v["purposes"]["messenger"]["consent"], "functional");
    assert_eq!(v["purposes"]["tracking"]["tracking"], true);
    assert!(v["paths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["path"] == "/messenger/web/ping" && p["purpose"] == "tracking"));
    assert!(v["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "intercom-session-" && c["lifetime_days"] == 7));
    assert_eq!(v["regions"]["api-iam.au.intercom.io"], "au");
    assert_eq!(v["identity"]["settings"], "intercomSettings");
    assert_eq!(v["weight"]["script_kb"], 250);
    assert!(!v["sources"].as_array().unwrap().is_empty());

    let out = run(&["catalog", "show", "intercom"], b"");
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).starts_with("Intercom (intercom)\n"));

    let out = run(&["catalog", "show", "nope"], b"");
    assert_eq!(code(&out), 2);
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("unknown vendor nope; try `tagwatch catalog list`"),
        "{}",
        stderr(&out)
    );
}

/// The catalog schema (catalog/README.md), strictly: a generated file must
/// be one core/build.rs would accept.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct VendorDoc {
    id: String,
    name: String,
    owner: String,
    category: String,
    primary: String,
    domains: Vec<String>,
    #[serde(default)]
    sources: Vec<String>,
    purposes: BTreeMap<String, PurposeDoc>,
    #[serde(default)]
    cookies: Vec<CookieDoc>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeDoc {
    consent: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CookieDoc {
    name: String,
    #[serde(rename = "match")]
    kind: String,
    purpose: String,
    lifetime_days: Option<u32>,
    source: String,
}

#[test]
fn import_ocd_writes_catalog_files_for_new_platforms_only() {
    let dir = temp_dir("ocd");
    let csv = fixture("ocd/open-cookie-database-sample.csv");
    let out = import_ocd(&csv, &dir, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("skipped \"Intercom\": already in the catalog as intercom"),
        "{err}"
    );
    assert!(
        err.contains("skipped \"Cookiebot\": already in the catalog as cookiebot"),
        "{err}"
    );
    assert!(
        err.contains("skipped \"Google Analytics\": its cookie _ga is already classified as ga4"),
        "{err}"
    );
    assert!(
        err.contains("\"_dp Cookie\""),
        "rows left out are named: {err}"
    );

    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "adform.toml",
            "adobe-audience-manager.toml",
            "cloudflare.toml",
            "matomo.toml"
        ]
    );
    assert_eq!(
        stdout(&out).lines().count(),
        4,
        "written files are listed on stdout"
    );

    let categories = [
        "chat",
        "support",
        "analytics",
        "advertising",
        "tag_manager",
        "session_replay",
        "ab_testing",
        "monitoring",
        "cdp",
        "marketing_automation",
        "consent",
    ];
    for f in &files {
        let doc: VendorDoc = toml::from_str(&std::fs::read_to_string(dir.join(f)).unwrap())
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(format!("{}.toml", doc.id), *f);
        assert!(doc.domains.is_empty());
        assert!(
            categories.contains(&doc.category.as_str()),
            "{f}: {}",
            doc.category
        );
        assert!(doc.purposes.contains_key(&doc.primary), "{f}");
        for p in doc.purposes.values() {
            assert!(
                ["necessary", "functional", "analytics", "marketing"].contains(&p.consent.as_str())
            );
        }
        for c in &doc.cookies {
            assert!(doc.purposes.contains_key(&c.purpose), "{f}: {}", c.name);
            assert!(["exact", "prefix"].contains(&c.kind.as_str()));
            assert!(
                c.source.starts_with("Open Cookie Database ID "),
                "{}",
                c.source
            );
        }
    }
    let matomo: VendorDoc =
        toml::from_str(&std::fs::read_to_string(dir.join("matomo.toml")).unwrap()).unwrap();
    assert_eq!(
        (
            matomo.name.as_str(),
            matomo.owner.as_str(),
            matomo.primary.as_str()
        ),
        ("Matomo", "Matomo", "analytics")
    );
    let c: Vec<(&str, &str, &str, Option<u32>)> = matomo
        .cookies
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.kind.as_str(),
                c.purpose.as_str(),
                c.lifetime_days,
            )
        })
        .collect();
    assert_eq!(
        c,
        [
            ("_pk_id.", "prefix", "analytics", Some(390)),
            ("_pk_ses.", "prefix", "analytics", Some(1)),
            ("_pk_ref.", "prefix", "marketing", Some(180)),
            ("MATOMO_SESSID", "exact", "functional", None),
        ]
    );
    let adform: VendorDoc =
        toml::from_str(&std::fs::read_to_string(dir.join("adform.toml")).unwrap()).unwrap();
    assert_eq!(adform.category, "advertising");
    assert!(adform
        .cookies
        .iter()
        .any(|c| c.name == "SR" && c.kind == "prefix"));
    assert!(adform
        .cookies
        .iter()
        .any(|c| c.name == "C" && c.lifetime_days == Some(3650)));

    // A second run keeps existing files.
    let again = import_ocd(&csv, &dir, &[]);
    assert_eq!(code(&again), 0);
    assert!(stdout(&again).is_empty());
    assert!(stderr(&again).contains("exists (delete it to regenerate)"));

    // --platform narrows the import.
    let one = temp_dir("ocd-one");
    let out = import_ocd(&csv, &one, &["--platform", "matomo"]);
    assert_eq!(code(&out), 0);
    assert_eq!(std::fs::read_dir(&one).unwrap().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&one);
}

#[test]
fn import_ocd_input_errors_exit_2() {
    let dir = temp_dir("ocd-errors");
    let out = import_ocd(&dir.join("missing.csv"), &dir, &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("cannot open"));

    let wrong = dir.join("wrong.csv");
    std::fs::write(&wrong, "a,b,c\n1,2,3\n").unwrap();
    let out = import_ocd(&wrong, &dir, &[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not an Open Cookie Database CSV")
            && stderr(&out).contains("missing column")
    );

    let open_quote = dir.join("open.csv");
    let header = "ID,Platform,Category,Cookie / Data Key name,Domain,Description,Retention period,Data Controller,User Privacy & GDPR Rights Portals,Wildcard match\n";
    std::fs::write(
        &open_quote,
        format!("{header}x,Acme,Analytics,acme_id,d,\"never closed,1 year,Acme,-,0\n"),
    )
    .unwrap();
    let out = import_ocd(&open_quote, &dir, &[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("line 2 never closes"),
        "{}",
        stderr(&out)
    );

    let csv = fixture("ocd/open-cookie-database-sample.csv");
    let out = import_ocd(&csv, &dir, &["--platform", "Nope"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no platform named Nope"));
    let _ = std::fs::remove_dir_all(&dir);
}
