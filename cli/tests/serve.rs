//! The collector as a process: SIGTERM drains the requests in flight and
//! commits everything acknowledged (the in-process HTTP tests are in
//! crates/collector/tests).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

fn setup(name: &str, extra: &[&str]) -> (Server, String) {
    let dir = temp_dir(name);
    let db = dir.join("tagwatch.db");
    let key = site_add(&db_url(&db), &[ORIGIN, "http://localhost:3000"]);
    let mut server = Server::start(&db_url(&db), extra);
    server.owned_dir = Some(dir);
    (server, key)
}

#[test]
fn sigterm_drains_and_every_acknowledged_report_survives_a_restart() {
    let (mut server, key) = setup("sigterm", &["--rate", "0", "--client-rate", "0"]);
    let addr = server.addr.clone();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (addr, key, acked, sent, stop) = (
                addr.clone(),
                key.clone(),
                acked.clone(),
                sent.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                for i in 0..10_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let pv = format!("{:016x}", (w << 32) | i);
                    let items: Vec<Value> = (0..5)
                        .map(|n| {
                            let mut f =
                                finding(&key, &pv, "cookie_before_consent", "intercom", 0, 1);
                            f["body"]["evidence"] =
                                json!({"kind": "cookie", "cookie": format!("intercom-id-{n}")});
                            f
                        })
                        .collect();
                    let body = batch(&items);
                    let resp = try_http(
                        &addr,
                        "POST",
                        "/r",
                        &[("Content-Type", "text/plain"), ("Origin", ORIGIN)],
                        Some(body.as_bytes()),
                    );
                    sent.fetch_add(1, Ordering::Relaxed);
                    match resp {
                        Ok(r) if r.status == 204 => acked.lock().unwrap().push(pv),
                        Ok(r) => {
                            assert!(r.status == 503, "unexpected answer during shutdown: {r:?}")
                        }
                        // Refused or reset once the server stops accepting.
                        Err(_) => {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // Let a good number of reports through, then pull the plug mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "reports are not being accepted");
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = server.terminate();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(status.success(), "exit status {status:?}");
    let log = server.stderr.lock().unwrap().clone();
    assert!(log.iter().any(|l| l.contains("SIGTERM")), "{log:?}");
    assert!(log.iter().any(|l| l == "tagwatch: stopped"), "{log:?}");

    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "sigterm test: {} requests sent, {} acknowledged",
        sent.load(Ordering::Relaxed),
        acked.len()
    );
    assert!(acked.len() >= 40);
    let restarted = Server::start(&server.db, &[]);
    let rows = restarted.findings(&format!("site={key}&limit=10000"));
    let stored: std::collections::HashMap<String, usize> =
        rows.iter().fold(Default::default(), |mut m, r| {
            *m.entry(r["page_view"].as_str().unwrap().to_owned())
                .or_default() += 1;
            m
        });
    for pv in &acked {
        assert_eq!(
            stored.get(pv),
            Some(&5),
            "acknowledged page view {pv} is missing after restart ({} acked, {} stored, {} sent)",
            acked.len(),
            stored.len(),
            sent.load(Ordering::Relaxed)
        );
    }
}
