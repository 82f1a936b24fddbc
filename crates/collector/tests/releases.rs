//! Releases through the collector's routes (in the process, harness in
//! common/), on SQLite and, with `TAGWATCH_TEST_POSTGRES`, on PostgreSQL,
//! with `TAGWATCH_TEST_CLICKHOUSE` on ClickHouse (`--events`):
//! a report's `release` is stored as sent, `release=` filters every read
//! endpoint, `GET /api/diff` compares two releases, and hostile release
//! strings — on the wire and in query parameters — are refused with a
//! reason or matched exactly, never anything else.

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

const R1: &str = "shop-2026.12.1";
/// Quotes, SQL, a space and non-ASCII: kept and matched as sent.
const R2: &str = "shop-2026.12.2 \"β\" ' OR '1'='1; --";

/// `s` as a query string value: every byte but the unreserved ones escaped.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn with_release(mut report: Value, release: &str) -> Value {
    report["body"]["release"] = json!(release);
    report
}

fn vendor(id: &str, hosts: &[&str], cookies: &[&str]) -> Value {
    json!({
        "vendor": id, "requests": 2, "script_requests": 1, "transfer_bytes": 100,
        "encoded_bytes": 50, "duration_ms": 10, "hosts": hosts, "regions": ["us"], "cookies": cookies
    })
}

/// Release 1: two page views with intercom and a cookie finding. Release
/// 2: one page view that adds facebook (a host, a cookie) and a script
/// before consent.
fn send_two_releases(server: &Server, key: &str) {
    let r1 = batch(&[
        with_release(
            finding(
                key,
                "00000000000000a1",
                "cookie_before_consent",
                "intercom",
                0,
                1,
            ),
            R1,
        ),
        with_release(
            inventory(
                key,
                "00000000000000a1",
                0,
                json!([vendor(
                    "intercom",
                    &["widget.intercom.io"],
                    &["intercom-id"]
                )]),
                json!([]),
            ),
            R1,
        ),
        with_release(
            inventory(
                key,
                "00000000000000a2",
                0,
                json!([vendor(
                    "intercom",
                    &["widget.intercom.io"],
                    &["intercom-id"]
                )]),
                json!([]),
            ),
            R1,
        ),
    ]);
    let resp = server.post(Some(ORIGIN), &r1);
    assert_eq!(resp.status, 204, "{}", resp.body);
    let r2 = batch(&[
        with_release(
            finding(
                key,
                "00000000000000b1",
                "script_before_consent",
                "facebook",
                0,
                1,
            ),
            R2,
        ),
        with_release(
            inventory(
                key,
                "00000000000000b1",
                0,
                json!([
                    vendor("intercom", &["widget.intercom.io"], &["intercom-id"]),
                    vendor("facebook", &["connect.facebook.net"], &["_fbp"])
                ]),
                json!([{"host": "cdn.new.example", "requests": 1}]),
            ),
            R2,
        ),
    ]);
    let resp = server.post(Some(ORIGIN), &r2);
    assert_eq!(resp.status, 204, "{}", resp.body);
    // Without a release: in no release's answers.
    let plain = batch(&[finding(
        key,
        "00000000000000c1",
        "gpc_ignored",
        "intercom",
        0,
        1,
    )]);
    assert_eq!(server.post(Some(ORIGIN), &plain).status, 204);
}

fn get_json(server: &Server, path: &str) -> Value {
    let resp = server.get_api(path);
    assert_eq!(resp.status, 200, "{path}: {}", resp.body);
    serde_json::from_str(&resp.body).unwrap()
}

fn refused(server: &Server, path: &str) -> String {
    let resp = server.get_api(path);
    assert_eq!(resp.status, 400, "{path}: {}", resp.body);
    resp.body
}

fn releases_are_filtered_and_diffed(db: &str, flags: &[&str]) {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, flags);
    send_two_releases(&server, &key);

    // Stored and answered as sent.
    let all = server.findings(&format!("site={key}"));
    assert_eq!(all.len(), 3);
    let of = |r: &str| server.findings(&format!("site={key}&release={}", enc(r)));
    let second = of(R2);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["release"], R2);
    assert_eq!(second[0]["type"], "script_before_consent");
    assert_eq!(of(R1)[0]["release"], R1);
    assert!(all.iter().any(|f| f["release"].is_null()));
    // Matched exactly: a prefix, another case or the SQL trick alone is
    // another release.
    for other in ["shop-2026.12", "SHOP-2026.12.1", "' OR '1'='1", "%", "_"] {
        assert!(of(other).is_empty(), "{other}");
    }
    let stats = get_json(
        &server,
        &format!("/api/stats?site={key}&release={}", enc(R1)),
    );
    assert_eq!(
        (stats["findings"].as_i64(), stats["page_views"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(stats["release"], R1);
    let inv = get_json(
        &server,
        &format!("/api/inventory?site={key}&release={}", enc(R2)),
    );
    assert_eq!(inv["page_views"], 1);
    let ids: Vec<&str> = inv["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v["id"]
                .as_str()
                .unwrap_or(v["vendor"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(ids.contains(&"facebook"), "{inv}");
    let releases = get_json(&server, &format!("/api/releases?site={key}"));
    let names: Vec<&str> = releases["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["release"].as_str().unwrap())
        .collect();
    assert_eq!(names, [R1, R2]);

    // The diff names the new vendor, host, cookie and finding type, per
    // 1,000 page views of the release that has them.
    let diff = get_json(
        &server,
        &format!("/api/diff?site={key}&from={}&to={}", enc(R1), enc(R2)),
    );
    assert_eq!(diff["from"], json!({"release": R1, "page_views": 2}));
    assert_eq!(diff["to"], json!({"release": R2, "page_views": 1}));
    assert_eq!(
        diff["vendors"]["appeared"],
        json!([{"vendor": "facebook", "page_views": 1, "per_1000_page_views": 1000.0}])
    );
    assert_eq!(diff["vendors"]["vanished"], json!([]));
    let hosts: Vec<&str> = diff["hosts"]["new"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["cdn.new.example", "connect.facebook.net"]);
    assert_eq!(diff["cookies"]["new"][0]["cookie"], "_fbp");
    assert_eq!(
        diff["finding_types"]["appeared"],
        json!([{"type": "script_before_consent", "findings": 1, "per_1000_page_views": 1000.0}])
    );
    assert_eq!(
        diff["finding_types"]["disappeared"],
        json!([{"type": "cookie_before_consent", "findings": 1, "per_1000_page_views": 500.0}])
    );
    // The same release: nothing changed.
    let same = get_json(
        &server,
        &format!("/api/diff?site={key}&from={}&to={}", enc(R2), enc(R2)),
    );
    assert_eq!(same["vendors"]["appeared"], json!([]));
    assert_eq!(same["finding_types"]["appeared"], json!([]));

    // Clear refusals.
    let missing = refused(&server, &format!("/api/diff?site={key}&to={}", enc(R2)));
    assert!(missing.contains("missing `from`"), "{missing}");
    let unknown = refused(
        &server,
        &format!("/api/diff?site={key}&from={}&to=nope", enc(R1)),
    );
    assert!(
        unknown.contains("to: no report of site") && unknown.contains("\"nope\""),
        "{unknown}"
    );
    assert!(
        unknown.contains(R1),
        "lists the releases there are: {unknown}"
    );
    assert_eq!(
        server.get_api("/api/diff?site=tw_nope&from=a&to=b").status,
        404
    );
    let no_auth = server.http(
        "GET",
        &format!("/api/diff?site={key}&from=a&to=b"),
        &[],
        None,
    );
    assert_eq!(no_auth.status, 401);
}

#[test]
fn releases_are_filtered_and_diffed_sqlite() {
    let dir = temp_dir("releases");
    releases_are_filtered_and_diffed(&db_url(&dir.join("t.db")), &[]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn releases_are_filtered_and_diffed_postgres() {
    if let Some(db) = TestDb::create("releases") {
        releases_are_filtered_and_diffed(&db.url, &[]);
    }
}

/// The same answers with the reports in ClickHouse (`--events`): the
/// release is stored with each report there, not only in the SQL control
/// plane's release list.
#[test]
fn releases_are_filtered_and_diffed_clickhouse() {
    if let Some(events) = ch::TestEvents::create("releases") {
        let dir = temp_dir("releases_ch");
        releases_are_filtered_and_diffed(&db_url(&dir.join("t.db")), &["--events", &events.url]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// With `--events` the reports are readable in ClickHouse a moment before
/// the control plane lists their release (recorded after their commit): a
/// diff asked in that moment names the release from its reports instead of
/// refusing it (before: 400 "no report of site … names release", while
/// `/api/findings` already showed them). The moment is made to last by
/// taking the release out of the control plane's list.
#[test]
fn a_release_clickhouse_holds_is_diffed_before_the_control_plane_lists_it() {
    if let Some(events) = ch::TestEvents::create("releases_unlisted") {
        let dir = temp_dir("releases_unlisted");
        let file = dir.join("t.db");
        let db = db_url(&file);
        let key = site_add(&db, &[ORIGIN]);
        let server = Server::start(&db, &["--events", &events.url]);
        send_two_releases(&server, &key);
        let gone = rusqlite::Connection::open(&file)
            .unwrap()
            .execute("DELETE FROM site_releases WHERE release = ?1", [R2])
            .unwrap();
        assert_eq!(gone, 1, "the control plane listed the release");
        let diff = get_json(
            &server,
            &format!("/api/diff?site={key}&from={}&to={}", enc(R1), enc(R2)),
        );
        assert_eq!(diff["to"]["release"], R2, "{diff}");
        assert_eq!(
            diff["finding_types"]["appeared"][0]["type"], "script_before_consent",
            "{diff}"
        );
        // A release no report names is still refused.
        let unknown = refused(
            &server,
            &format!("/api/diff?site={key}&from={}&to=nope", enc(R1)),
        );
        assert!(unknown.contains("to: no report of site"), "{unknown}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Release parameters no report can carry get a 400 that says why (and
/// quotes a huge one only in part); any other text is only ever compared.
#[test]
fn hostile_release_parameters_are_refused_or_matched_exactly() {
    let dir = temp_dir("release-params");
    let db = db_url(&dir.join("t.db"));
    let key = site_add(&db, &[ORIGIN]);
    let server = Server::start(&db, &[]);
    send_two_releases(&server, &key);
    // Near the longest URI the HTTP layer takes (64 KiB).
    let huge = "r".repeat(60_000);
    for endpoint in ["findings", "stats", "inventory"] {
        let long = refused(
            &server,
            &format!("/api/{endpoint}?site={key}&release={huge}"),
        );
        assert!(long.contains("longer than 128 characters"), "{long}");
        assert!(long.len() < 300, "a short message: {} bytes", long.len());
        for ctl in ["%00", "a%0Ab", "%1B%5B31m", "%C2%85"] {
            let msg = refused(
                &server,
                &format!("/api/{endpoint}?site={key}&release={ctl}"),
            );
            assert!(msg.contains("control character"), "{ctl}: {msg}");
        }
        // Not UTF-8: decoded with U+FFFD (as every parameter), which no
        // release here has.
        let resp = server.get_api(&format!("/api/{endpoint}?site={key}&release=%FF"));
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert!(!resp.body.contains("shop-2026"), "{}", resp.body);
    }
    for (from, to) in [(huge.as_str(), R1), (R1, "%00")] {
        refused(
            &server,
            &format!("/api/diff?site={key}&from={from}&to={to}"),
        );
    }
    // At the cap, any text at all: compared, never interpreted.
    for text in [
        "é".repeat(128),
        "' OR 1=1 --".into(),
        "\\\"".into(),
        "😀".repeat(128),
    ] {
        let rows = server.findings(&format!("site={key}&release={}", enc(&text)));
        assert!(rows.is_empty(), "{text}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// On the wire: a release the schema refuses refuses the batch with the
/// schema's reason; any other is stored as sent.
#[test]
fn hostile_release_strings_on_the_wire() {
    let dir = temp_dir("release-wire");
    let db = db_url(&dir.join("t.db"));
    let key = site_add(&db, &[ORIGIN]);
    let server = Server::start(&db, &[]);
    let send = |release: Value, pv: usize| {
        let mut f = finding(&key, &format!("{pv:016x}"), "gpc_ignored", "intercom", 0, 1);
        f["body"]["release"] = release;
        server.post(Some(ORIGIN), &batch(&[f]))
    };
    for (release, why) in [
        (json!("r".repeat(129)), "is longer than 128 characters"),
        (json!(""), "does not match"),
        (json!("a\u{1}b"), "does not match"),
        (json!("a\nb"), "does not match"),
        (json!("\u{9b}31m"), "does not match"),
        (json!("a\u{0}b"), "NUL"),
        (json!(12), "is not of type \"string\""),
        (json!(["r1"]), "is not of type \"string\""),
        (Value::Null, "is not of type \"string\""),
    ] {
        let resp = send(release.clone(), 0);
        assert_eq!(resp.status, 400, "{release}: {}", resp.body);
        assert!(
            resp.body.contains("body.release") && resp.body.contains(why),
            "{release}: {}",
            resp.body
        );
    }
    let big = "r".repeat(60_000);
    assert_ne!(send(json!(big), 0).status, 204);
    let fine = [
        "é".repeat(128),
        "😀".repeat(128),
        R2.to_owned(),
        "<script>alert(1)</script>".into(),
    ];
    for (i, release) in fine.into_iter().enumerate() {
        let resp = send(json!(release), i + 1);
        assert_eq!(resp.status, 204, "{release}: {}", resp.body);
        let rows = server.findings(&format!("site={key}&release={}", enc(&release)));
        assert_eq!(rows.len(), 1, "{release}");
        assert_eq!(rows[0]["release"], release.as_str());
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
