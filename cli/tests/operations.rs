//! Operating the collector: `--log-format json`, and `--webhook` alerts
//! when a site gets a finding type for the first time (on SQLite and, with
//! `TAGWATCH_TEST_POSTGRES`, on PostgreSQL shared by two collectors).
//! `GET /metrics`: crates/collector/tests/metrics.rs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::pg::TestDb;
use common::*;

const PV: &str = "9f1c2e3d4b5a6978";

/// `tagwatch serve --log-format json`: the address, and every stderr line
/// as it comes. The caller stops and waits for the child.
#[allow(clippy::zombie_processes)]
fn start_json(db: &str, extra: &[&str]) -> (std::process::Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--log-format",
            "json",
        ])
        .args(extra)
        .env("TAGWATCH_ADMIN_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx.recv_timeout(deadline - Instant::now()).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        if v["event"] == "listening" {
            return (child, v["addr"].as_str().unwrap().to_owned(), rx);
        }
    }
}

fn drain(rx: &mpsc::Receiver<String>, until: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let done = v["event"] == until;
        seen.push(v);
        if done {
            return seen;
        }
    }
    panic!("no {until} event in {seen:?}");
}

#[test]
fn json_logs_are_one_object_a_line() {
    let dir = temp_dir("jsonlog");
    let db = db_url(&dir.join("t.db"));
    let key = site_add(&db, &[ORIGIN]);
    let (mut child, addr, rx) = start_json(&db, &[]);
    let body = batch(&[finding(&key, PV, "gpc_ignored", "intercom", 0, 1)]);
    let post = |origin: &str| {
        http(
            &addr,
            "POST",
            "/r",
            &[("Content-Type", "text/plain"), ("Origin", origin)],
            Some(body.as_bytes()),
        )
        .status
    };
    assert_eq!(post(ORIGIN), 204);
    // The writer logs the new type before the handler hears back.
    let events = drain(&rx, "accepted");
    let first = events
        .iter()
        .find(|e| e["event"] == "finding_type_first_seen")
        .unwrap();
    assert_eq!(first["type"], "gpc_ignored");
    assert_eq!(first["site"], key.as_str());
    let accepted = events.last().unwrap();
    assert_eq!(accepted["level"], "info");
    assert_eq!(accepted["endpoint"], "reports");
    assert_eq!(accepted["findings"], json!({"gpc_ignored": 1}));
    assert!(accepted["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(post("https://evil.example"), 403);
    let refused = drain(&rx, "refused");
    let refused = refused.last().unwrap();
    assert_eq!(refused["reason"], "origin");
    assert_eq!(refused["status"], 403);
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("evil.example"));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let tail = drain(&rx, "stopped");
    assert!(tail
        .iter()
        .any(|e| e["event"] == "shutdown" && e["signal"] == "SIGTERM"));
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(dir);
}

/// A webhook receiver: records each request body, answers 503 to the
/// first request and 204 after.
struct Hook {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<usize>>,
}

fn hook() -> Hook {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let requests = Arc::new(Mutex::new(0usize));
    let (b, r) = (bodies.clone(), requests.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let n = {
                let mut r = r.lock().unwrap();
                *r += 1;
                *r
            };
            let status = if n == 1 {
                "503 Service Unavailable"
            } else {
                "204 No Content"
            };
            if n > 1 {
                b.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
            }
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    Hook {
        url,
        bodies,
        requests,
    }
}

fn wait_for_alerts(hook: &Hook, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = hook.bodies.lock().unwrap().clone();
        if got.len() >= n {
            // A second, wrong alert would show up here too.
            std::thread::sleep(Duration::from_millis(500));
            return hook.bodies.lock().unwrap().clone();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} alerts: {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn webhook_alerts(db: &str, collectors: usize) {
    let key = site_add(db, &[ORIGIN]);
    let hook = hook();
    let servers: Vec<Server> = (0..collectors)
        .map(|_| Server::start(db, &["--webhook", &hook.url]))
        .collect();
    let send = |i: usize, kind: &str, pv: &str| {
        let body = batch(&[finding(&key, pv, kind, "intercom", 0, 1)]);
        let resp = servers[i % servers.len()].post(Some(ORIGIN), &body);
        assert_eq!(resp.status, 204, "{}", resp.body);
    };
    // The same type from every collector at once, and again later: one alert.
    std::thread::scope(|s| {
        for i in 0..collectors.max(2) {
            let send = &send;
            s.spawn(move || send(i, "cookie_before_consent", &format!("{i:016x}")));
        }
    });
    send(0, "cookie_before_consent", "00000000000000ff");
    send(1, "gpc_ignored", PV);
    let alerts = wait_for_alerts(&hook, 2);
    let mut kinds: Vec<&str> = alerts.iter().map(|a| a["type"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["cookie_before_consent", "gpc_ignored"],
        "{alerts:?}"
    );
    let a = &alerts[0];
    assert_eq!(a["event"], "finding_type_first_seen");
    assert_eq!(a["site"], key.as_str());
    assert_eq!(a["vendor"], "intercom");
    assert_eq!(a["page"], "https://shop.example/support");
    assert!(a["text"].as_str().unwrap().contains(&key));
    assert_eq!(*hook.requests.lock().unwrap(), 3, "the 503 was retried");
    drop(servers);
    // A restart remembers what the site already had.
    let server = Server::start(db, &["--webhook", &hook.url]);
    let body = batch(&[finding(
        &key,
        "00000000000000ee",
        "gpc_ignored",
        "intercom",
        0,
        1,
    )]);
    assert_eq!(server.post(Some(ORIGIN), &body).status, 204);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(hook.bodies.lock().unwrap().len(), 2);
}

#[test]
fn webhook_alerts_once_per_site_and_type_sqlite() {
    let dir = temp_dir("webhook");
    webhook_alerts(&db_url(&dir.join("t.db")), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn webhook_alerts_once_across_collectors_postgres() {
    if let Some(db) = TestDb::create("webhook") {
        webhook_alerts(&db.url, 2);
    }
}

/// The release alerts among a hook's bodies (the finding-type alerts are
/// `webhook_alerts`'), sorted by release, kind and item.
fn release_alerts(hook: &Hook) -> Vec<Value> {
    let mut got: Vec<Value> = hook
        .bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a["event"] == "release_introduced")
        .cloned()
        .collect();
    got.sort_by_key(|a| {
        (
            a["release"].to_string(),
            a["kind"].to_string(),
            a["item"].to_string(),
        )
    });
    got
}

/// A release that brings a vendor and a finding type its previous release
/// did not have: one alert each, whichever collector hears it and however
/// often, and none again after a restart.
/// `events`: `--events URL` (ClickHouse), or nothing.
fn release_webhook_alerts(db: &str, collectors: usize, events: &[&str]) {
    let key = site_add(db, &[ORIGIN]);
    let hook = hook();
    let flags = [&["--webhook", &hook.url], events].concat();
    let servers: Vec<Server> = (0..collectors).map(|_| Server::start(db, &flags)).collect();
    let send = |i: usize, release: &str, kind: &str, vendor: &str, pv: &str| {
        let mut f = finding(&key, pv, kind, vendor, 0, 1);
        f["body"]["release"] = json!(release);
        let resp = servers[i % servers.len()].post(Some(ORIGIN), &batch(&[f]));
        assert_eq!(resp.status, 204, "{}", resp.body);
    };
    send(
        0,
        "v1",
        "cookie_before_consent",
        "intercom",
        "00000000000000a1",
    );
    // The second release from every collector at once, twice.
    std::thread::scope(|s| {
        for i in 0..collectors.max(2) * 2 {
            let send = &send;
            s.spawn(move || {
                send(
                    i,
                    "v2",
                    "script_before_consent",
                    "facebook",
                    &format!("{i:016x}"),
                );
            });
        }
    });
    // The first-seen alerts of both types, and the release's two.
    let all = wait_for_alerts(&hook, 4);
    let alerts = release_alerts(&hook);
    assert_eq!(alerts.len(), 2, "{all:?}");
    assert_eq!(
        alerts[0],
        json!({
            "event": "release_introduced", "site": key, "release": "v2", "previous": "v1",
            "kind": "finding_type", "item": "script_before_consent",
            "at": alerts[0]["at"],
            "text": format!(
                "tagwatch: release \"v2\" of site {key} introduced finding type script_before_consent (not in the previous release \"v1\")"
            ),
        })
    );
    assert_eq!(
        (&alerts[1]["kind"], &alerts[1]["item"]),
        (&json!("vendor"), &json!("facebook"))
    );
    // No page, no report data: names only.
    assert!(alerts.iter().all(|a| a.get("page").is_none()));
    drop(servers);
    let server = Server::start(db, &flags);
    let mut again = finding(
        &key,
        "00000000000000ee",
        "script_before_consent",
        "facebook",
        0,
        1,
    );
    again["body"]["release"] = json!("v2");
    assert_eq!(server.post(Some(ORIGIN), &batch(&[again])).status, 204);
    // A third release that brings something new is still heard after it.
    let mut third = finding(&key, "00000000000000ef", "gpc_ignored", "facebook", 0, 1);
    third["body"]["release"] = json!("v3");
    assert_eq!(server.post(Some(ORIGIN), &batch(&[third])).status, 204);
    let deadline = Instant::now() + Duration::from_secs(20);
    while release_alerts(&hook).len() < 3 {
        assert!(Instant::now() < deadline, "{:?}", release_alerts(&hook));
        std::thread::sleep(Duration::from_millis(50));
    }
    let alerts = release_alerts(&hook);
    let items: Vec<(&str, &str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a["release"].as_str().unwrap(),
                a["kind"].as_str().unwrap(),
                a["item"].as_str().unwrap(),
            )
        })
        .collect();
    // v3's gpc_ignored is new against v2 (facebook is not); v2's alerts
    // were not sent again.
    assert_eq!(
        items,
        [
            ("v2", "finding_type", "script_before_consent"),
            ("v2", "vendor", "facebook"),
            ("v3", "finding_type", "gpc_ignored"),
        ]
    );
}

#[test]
fn release_webhook_alerts_once_sqlite() {
    let dir = temp_dir("release-webhook");
    release_webhook_alerts(&db_url(&dir.join("t.db")), 1, &[]);
    let _ = std::fs::remove_dir_all(dir);
}

/// With the reports in ClickHouse the releases and what each had stay in
/// the SQL control plane: the same alerts, once.
#[test]
fn release_webhook_alerts_once_clickhouse() {
    if let Some(events) = tagwatch_events::testing::TestEvents::create("release_webhook") {
        let dir = temp_dir("release-webhook-ch");
        release_webhook_alerts(&db_url(&dir.join("t.db")), 1, &["--events", &events.url]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn release_webhook_alerts_once_across_collectors_postgres() {
    if let Some(db) = TestDb::create("release_webhook") {
        release_webhook_alerts(&db.url, 2, &[]);
    }
}

#[test]
fn a_bad_webhook_url_is_a_usage_error() {
    let dir = temp_dir("webhook-bad");
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            &db_url(&dir.join("t.db")),
        ])
        .args(["--webhook", "ftp://x.example/"])
        .env("TAGWATCH_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--webhook"));
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}
