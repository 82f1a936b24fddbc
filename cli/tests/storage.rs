//! Storage end to end, on SQLite and PostgreSQL (and ClickHouse as the
//! events store, `--events`): acknowledged reports survive a SIGKILL, two collectors share one PostgreSQL database, retention
//! and `tagwatch purge`, `--db postgres://…` for the CLI. The PostgreSQL tests
//! need `TAGWATCH_TEST_POSTGRES` (see common/pg.rs); without it they skip,
//! unless `CI` or `TAGWATCH_REQUIRE_POSTGRES=1` makes them fail instead.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::pg::TestDb;
use common::*;
use tagwatch_events::testing::TestEvents;

/// A fresh SQLite database: its URL and the directory to remove.
fn sqlite_db(name: &str) -> (String, TempDir) {
    let dir = temp_dir(name);
    (db_url(&dir.join("tagwatch.db")), dir)
}

/// Five findings of one page view, as one batch body.
fn five_findings(key: &str, pv: &str, count: i64) -> Vec<Value> {
    (0..5)
        .map(|n| {
            let mut f = finding(key, pv, "cookie_before_consent", "intercom", 0, count);
            f["body"]["evidence"] = json!({"kind": "cookie", "cookie": format!("intercom-id-{n}")});
            f
        })
        .collect()
}

/// Findings per page view of a site, as the API answers (one page).
fn stored_per_page_view(server: &Server, key: &str) -> HashMap<String, Vec<Value>> {
    let rows = server.findings(&format!("site={key}&limit=10000"));
    assert!(rows.len() < 10_000, "more rows than one API page");
    rows.into_iter().fold(HashMap::new(), |mut m, r| {
        m.entry(r["page_view"].as_str().unwrap().to_owned())
            .or_default()
            .push(r);
        m
    })
}

/// Posts batches of five findings, a new page view each, from `workers`
/// threads, until `stop` is set or the server goes away (at most `per_worker`
/// each). Page views answered 204 go to `acked`.
fn drive_load(
    addr: &str,
    key: &str,
    workers: u64,
    per_worker: u64,
    stop: &Arc<AtomicBool>,
    acked: &Arc<Mutex<Vec<String>>>,
    sent: &Arc<AtomicUsize>,
) -> Vec<JoinHandle<()>> {
    (0..workers)
        .map(|w| {
            let (addr, key) = (addr.to_owned(), key.to_owned());
            let (stop, acked, sent) = (stop.clone(), acked.clone(), sent.clone());
            std::thread::spawn(move || {
                for i in 0..per_worker {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let pv = format!("{:016x}", (w << 32) | i);
                    let body = batch(&five_findings(&key, &pv, 1));
                    sent.fetch_add(1, Ordering::Relaxed);
                    match try_http(
                        &addr,
                        "POST",
                        "/r",
                        &[("Content-Type", "text/plain"), ("Origin", ORIGIN)],
                        Some(body.as_bytes()),
                    ) {
                        Ok(r) if r.status == 204 => acked.lock().unwrap().push(pv),
                        Ok(r) => panic!("unexpected answer under load: {r:?}"),
                        // Killed: refused, reset or cut mid-answer.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect()
}

/// Loads a collector, SIGKILLs it mid-stream, restarts it on the same
/// database and checks that every acknowledged report is there, once.
/// `events`: `--events URL` (ClickHouse), or nothing.
fn sigkill_loses_no_acknowledged_report(db: &str, events: &[&str]) {
    let started = Instant::now();
    let key = site_add(db, &[ORIGIN]);
    let flags = [&["--rate", "0", "--client-rate", "0"], events].concat();
    let mut server = Server::start(db, &flags);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // 4 × 450 batches × 5 rows stays within one API page (10000).
    let workers = drive_load(&server.addr, &key, 4, 450, &stop, &acked, &sent);
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "reports are not being accepted");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Requests are in flight: no draining, no goodbye.
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let restarted = Server::start(db, events);
    let stored = stored_per_page_view(&restarted, &key);
    for pv in &acked {
        let rows = stored.get(pv).map_or(0, Vec::len);
        assert_eq!(
            rows,
            5,
            "acknowledged page view {pv} has {rows} of 5 findings after SIGKILL and restart \
             ({} acked, {} page views stored, {} sent)",
            acked.len(),
            stored.len(),
            sent.load(Ordering::Relaxed)
        );
    }
    // Committed but not yet answered when killed: stored whole or not at all.
    assert!(stored.values().all(|rows| rows.len() == 5));
    eprintln!(
        "{db}: {} requests sent, {} acknowledged, {} page views stored; {:.1} s",
        sent.load(Ordering::Relaxed),
        acked.len(),
        stored.len(),
        started.elapsed().as_secs_f64()
    );
}

/// SQLite alone, then SQLite for the sites and ClickHouse for the reports
/// (`--events`, when a test server is set): one driver, both stores.
#[test]
fn sigkill_mid_load_loses_no_acknowledged_report_sqlite_and_clickhouse() {
    let events = TestEvents::create("sigkill");
    let mut stores = vec![("sigkill", vec![])];
    if let Some(events) = &events {
        stores.push(("sigkill_ch", vec!["--events", events.url.as_str()]));
    }
    for (name, flags) in stores {
        let (db, dir) = sqlite_db(name);
        sigkill_loses_no_acknowledged_report(&db, &flags);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn sigkill_mid_load_loses_no_acknowledged_report_postgres() {
    let Some(db) = TestDb::create("sigkill") else {
        return;
    };
    sigkill_loses_no_acknowledged_report(&db.url, &[]);
}

#[test]
fn two_collectors_on_one_postgres_database_store_every_report_once() {
    let Some(db) = TestDb::create("two_collectors") else {
        return;
    };
    // Both start on an empty database at the same time: one migrates, the
    // other waits for it.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Server::start(&db.url, &["--rate", "0", "--client-rate", "0"]));
        let b = s.spawn(|| Server::start(&db.url, &["--rate", "0", "--client-rate", "0"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    // Registered after both started: each collector sees it at once.
    let key = site_add(&db.url, &[ORIGIN]);
    let addrs = [a.addr.clone(), b.addr.clone()];
    let post = |addr: &str, body: &str| {
        let r = http(
            addr,
            "POST",
            "/r",
            &[("Content-Type", "text/plain"), ("Origin", ORIGIN)],
            Some(body.as_bytes()),
        );
        assert_eq!(r.status, 204, "{}", r.body);
    };
    const UNIQUE: u64 = 40;
    const RETRIED: u64 = 30;
    std::thread::scope(|s| {
        // New page views, alternating between the collectors.
        for w in 0..2u64 {
            let (key, addrs, post) = (&key, &addrs, &post);
            s.spawn(move || {
                for i in 0..UNIQUE {
                    let pv = format!("{:016x}", (w << 32) | i);
                    let target = &addrs[((w + i) % 2) as usize];
                    post(target, &batch(&five_findings(key, &pv, 1)));
                }
            });
        }
        // One beacon retried: the same batch (findings and an inventory) to
        // both collectors at the same moment.
        let barrier = Arc::new(Barrier::new(2));
        for target in addrs.iter() {
            let (key, post, barrier) = (&key, &post, barrier.clone());
            s.spawn(move || {
                for r in 0..RETRIED {
                    let pv = format!("ffff{r:012x}");
                    let mut items = five_findings(key, &pv, 3);
                    items.push(inventory(
                        key,
                        &pv,
                        0,
                        json!([intercom_usage(2, 1, 1000, &["widget.intercom.io"], &[])]),
                        json!([]),
                    ));
                    let body = batch(&items);
                    barrier.wait();
                    post(target, &body);
                }
            });
        }
    });
    for server in [&a, &b] {
        let stored = stored_per_page_view(server, &key);
        assert_eq!(stored.len() as u64, 2 * UNIQUE + RETRIED);
        for (pv, rows) in &stored {
            assert_eq!(rows.len(), 5, "page view {pv}: {rows:?}");
            let want = if pv.starts_with("ffff") { 3 } else { 1 };
            assert!(rows.iter().all(|r| r["count"] == want), "{pv}: {rows:?}");
        }
        let inv = server.inventory(&format!("site={key}"));
        assert_eq!(inv["page_views"], RETRIED);
        assert_eq!(inv["vendors"][0]["requests"], 2 * RETRIED);
    }
    // Both collectors' writers extended one chain of the site, not forked.
    let verify = Command::new(BIN)
        .args(["verify", "--db", &db.url, "--site", &key])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Posts an old (2 h) and a new report of each kind.
fn post_old_and_new(server: &Server, key: &str) {
    let old = 2 * 3600 * 1000;
    let usage = || json!([intercom_usage(2, 1, 1000, &["widget.intercom.io"], &[])]);
    let host = || {
        json!([{"host": "cdn.unknown.example", "requests": 1, "script_requests": 0,
                          "transfer_bytes": 0, "encoded_bytes": 0, "duration_ms": 1}])
    };
    let body = batch(&[
        finding(
            key,
            "00000000000000aa",
            "cookie_before_consent",
            "intercom",
            old,
            1,
        ),
        finding(
            key,
            "00000000000000bb",
            "cookie_before_consent",
            "intercom",
            0,
            1,
        ),
        health_report(key, old),
        health_report(key, 0),
        inventory(key, "00000000000000aa", old, usage(), host()),
        inventory(key, "00000000000000bb", 0, usage(), host()),
    ]);
    let resp = server.post(Some(ORIGIN), &body);
    assert_eq!(resp.status, 204, "{}", resp.body);
}

/// Only the new reports are left.
fn assert_only_new_left(server: &Server, key: &str) {
    let findings = server.findings(&format!("site={key}"));
    let pvs: Vec<&str> = findings
        .iter()
        .map(|f| f["page_view"].as_str().unwrap())
        .collect();
    assert_eq!(pvs, ["00000000000000bb"]);
    assert_eq!(server.health(&format!("site={key}")).len(), 1);
    assert_eq!(server.inventory(&format!("site={key}"))["page_views"], 1);
}

fn purge_removes_old_reports_and_prints_counts(db: &str) {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, &[]);
    post_old_and_new(&server, &key);
    let cutoff = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let cutoff = cutoff
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    // While the collector runs.
    let out = Command::new(BIN)
        .args(["purge", "--before", &cutoff, "--db", db])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    for line in [
        "tagwatch: purge: findings 1",
        "tagwatch: purge: health 1",
        "tagwatch: purge: inventories 1",
        "tagwatch: purge: inventory_vendors 1",
        "tagwatch: purge: inventory_hosts 1",
    ] {
        assert!(stderr.lines().any(|l| l == line), "no {line:?} in {stderr}");
    }
    assert_only_new_left(&server, &key);
    // A date works too; nothing is that old any more.
    let out = Command::new(BIN)
        .args(["purge", "--before", "2001-01-01", "--db", db])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("before 2001-01-01T00:00:00.000Z"),
        "{stderr}"
    );
    assert!(stderr.contains("tagwatch: purge: findings 0"), "{stderr}");
    for bad in ["yesterday", "2026-13-01", ""] {
        let out = Command::new(BIN)
            .args(["purge", "--before", bad, "--db", db])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("--before"), "{stderr}");
    }
}

#[test]
fn purge_removes_old_reports_and_prints_counts_per_table() {
    let (db, dir) = sqlite_db("purge");
    purge_removes_old_reports_and_prints_counts(&db);
    let _ = std::fs::remove_dir_all(dir);
    if let Some(db) = TestDb::create("purge") {
        purge_removes_old_reports_and_prints_counts(&db.url);
    }
}

fn retain_deletes_old_reports_at_start(db: &str) {
    let key = site_add(db, &[ORIGIN]);
    let mut server = Server::start(db, &[]);
    post_old_and_new(&server, &key);
    assert_eq!(server.findings(&format!("site={key}")).len(), 2);
    let status = server.terminate();
    assert!(
        status.success(),
        "{status:?}: {:?}",
        server.stderr.lock().unwrap()
    );
    let server = Server::start(db, &["--retain", "1h"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.findings(&format!("site={key}")).len() > 1 {
        assert!(Instant::now() < deadline, "retention did not run at start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_only_new_left(&server, &key);
    // The writer logs the run after its last chunk is committed.
    let logged = |log: &[String]| {
        log.iter().any(|l| l.starts_with(
            "tagwatch: retention: removed 1 findings, 1 health reports, 1 inventories observed before "
        ))
    };
    while !logged(&server.stderr.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            server.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_retain_deletes_old_reports_at_start() {
    let (db, dir) = sqlite_db("retain");
    retain_deletes_old_reports_at_start(&db);
    let _ = std::fs::remove_dir_all(dir);
    if let Some(db) = TestDb::create("retain") {
        retain_deletes_old_reports_at_start(&db.url);
    }
}

#[test]
fn bad_retain_values_are_usage_errors() {
    let (db, dir) = sqlite_db("retain-bad");
    for bad in ["90", "0d", "2w", "-1h"] {
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
            .arg(format!("--retain={bad}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("--retain"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn site_commands_and_serve_take_a_postgres_url() {
    let Some(db) = TestDb::create("site_cli") else {
        return;
    };
    let key = site_add(&db.url, &["HTTPS://Shop.Example:443/"]);
    let out = Command::new(BIN)
        .args(["site", "list", "--db", &db.url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["site"], key.as_str());
    assert_eq!(line["origins"], json!([ORIGIN]));
    let server = Server::start(&db.url, &[]);
    let resp = server.post(Some(ORIGIN), &batch(&five_findings(&key, PV_ONE, 1)));
    assert_eq!(resp.status, 204, "{}", resp.body);
    assert_eq!(server.findings(&format!("site={key}")).len(), 5);
}

const PV_ONE: &str = "9f1c2e3d4b5a6978";

#[test]
fn unusable_postgres_urls_say_why() {
    // Malformed: a usage error (2), password never echoed.
    let out = Command::new(BIN)
        .args(["site", "list", "--db", "postgres://tw:s3cret@[bad"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("postgres://tw:***@"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    // Nobody listening: a runtime failure (1) with the reason.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            "postgres://tw:s3cret@127.0.0.1:1/tagwatch?connect_timeout=5",
        ])
        .env("TAGWATCH_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("cannot open the store"), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn unusable_events_urls_say_why() {
    let (db, dir) = sqlite_db("events_urls");
    // Malformed: a usage error (2), password never echoed.
    for bad in [
        "clickhouse://tw:s3cret@127.0.0.1:8123/",
        "http://tw:s3cret@127.0.0.1:8123/tw",
        "clickhouse://tw:s3cret@127.0.0.1:8123/tw?x=1",
    ] {
        let out = Command::new(BIN)
            .args([
                "purge",
                "--before",
                "2026-01-01",
                "--db",
                &db,
                "--events",
                bad,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("--events \"clickhouse://tw:***@")
                || stderr.contains("--events \"http://tw:***@"),
            "{stderr}"
        );
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
    // Nobody listening: a runtime failure (1) with the reason, before
    // `serve` listens.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db,
            "--events",
            "clickhouse://tw:s3cret@127.0.0.1:1/tagwatch",
        ])
        .env("TAGWATCH_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("cannot open the events store"), "{stderr}");
    assert!(stderr.contains("cannot reach the server"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
