//! The events store on a ClickHouse cluster: two servers as two shards of
//! cluster `tagwatch` (tools/clickhouse.sh cluster), local tables and a
//! `Distributed` table keyed by site, two collectors each talking to one
//! server. Reads see both shards. With a shard stopped, the other shard's
//! sites are still read, and the stopped shard's sites refused (503 and
//! Retry-After); reports for both are still acknowledged (the stopped
//! shard's queued by the `Distributed` table on the server the collector
//! talks to, on disk) and arrive when it is back. A collector whose own
//! server is down refuses everything.
//! Needs `TAGWATCH_TEST_CLICKHOUSE` (skips without it, unless required).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use tagwatch_events::testing::{server_url, TestEvents};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/clickhouse.sh");

/// `tools/clickhouse.sh ARGS`: its stdout lines.
fn script(args: &[&str]) -> Vec<String> {
    let out = Command::new(SCRIPT).args(args).output().unwrap();
    assert!(out.status.success(), "clickhouse.sh {args:?}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The shard (0 or 1) a site's rows go to: the `Distributed` table's key.
fn shard_of(ch: &TestEvents, site: &str) -> usize {
    ch.value(&format!("SELECT sipHash64('{site}') % 2"))
        .parse()
        .unwrap()
}

/// Posts one batch of a finding for a new page view; whether it was
/// acknowledged (204) or refused with 503 and Retry-After (anything else
/// fails the test).
fn post(server: &Server, key: &str, pv: &str) -> bool {
    let r = server.post(
        Some(ORIGIN),
        &batch(&[finding(key, pv, "gpc_ignored", "ga4", 0, 1)]),
    );
    match r.status {
        204 => true,
        503 => {
            assert!(r.header("retry-after").is_some(), "{r:?}");
            false
        }
        _ => panic!("unexpected answer: {r:?}"),
    }
}

fn page_views(server: &Server, key: &str) -> HashSet<String> {
    server
        .findings(&format!("site={key}&limit=10000"))
        .iter()
        .map(|f| f["page_view"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `server` reads exactly `expected` page views of `key`: a
/// report acknowledged through one server reaches another shard when the
/// `Distributed` table has forwarded it (asynchronously).
fn wait_for(server: &Server, key: &str, expected: &HashSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = server.get_api(&format!("/api/findings?site={key}&limit=10000"));
        if r.status == 200 && page_views(server, key) == *expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the acknowledged reports did not all arrive: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_shards_two_collectors_nothing_acknowledged_is_lost() {
    if server_url().is_none() {
        return;
    }
    let urls = script(&["cluster"]);
    assert_eq!(urls.len(), 2, "{urls:?}");
    let first = TestEvents::on(&urls[0], "sharded").unwrap();
    let second = TestEvents::named(&urls[1], first.database());
    let cluster = |ch: &TestEvents| format!("{}?cluster=tagwatch", ch.url);

    let dir = temp_dir("sharded");
    let db = db_url(&dir.join("control.db"));
    let flags = |ch: &TestEvents| {
        vec![
            "--rate".to_owned(),
            "0".to_owned(),
            "--client-rate".to_owned(),
            "0".to_owned(),
            "--events".to_owned(),
            cluster(ch),
        ]
    };
    // Each collector creates the tables on its server.
    let (f1, f2) = (flags(&first), flags(&second));
    let c1 = Server::start(&db, &f1.iter().map(String::as_str).collect::<Vec<_>>());
    let c2 = Server::start(&db, &f2.iter().map(String::as_str).collect::<Vec<_>>());
    // A site on each shard.
    let mut sites: [Option<String>; 2] = [None, None];
    while sites.iter().any(Option::is_none) {
        let key = site_add(&db, &[ORIGIN]);
        let shard = shard_of(&first, &key);
        sites[shard].get_or_insert(key);
    }
    let [s0, s1] = sites.map(Option::unwrap);

    // Both collectors write both sites; each site's rows land on its shard.
    let mut acked: [HashSet<String>; 2] = Default::default();
    for i in 0..20 {
        for (n, site) in [&s0, &s1].into_iter().enumerate() {
            let pv = format!("{:016x}", 0x1000 + i * 2 + n);
            let via = if i % 2 == 0 { &c1 } else { &c2 };
            assert!(post(via, site, &pv));
            acked[n].insert(pv);
        }
    }
    for (ch, site, other) in [(&first, &s0, &s1), (&second, &s1, &s0)] {
        let sites = ch.value("SELECT groupUniqArray(site) FROM findings_local");
        assert!(
            sites.contains(site.as_str()) && !sites.contains(other.as_str()),
            "{sites}"
        );
    }
    // Either collector reads each site from its shard, wherever it runs.
    for c in [&c1, &c2] {
        wait_for(c, &s0, &acked[0]);
        wait_for(c, &s1, &acked[1]);
    }

    // Shard 2 stops.
    script(&["stop", "2"]);
    // Through the first server, reports for both shards are still
    // acknowledged: shard 1's written, shard 2's queued on that server's
    // disk by the Distributed table (an INSERT waiting for every shard
    // would refuse every site: 18.16 writes to each shard, rows or not).
    for i in 0..10 {
        for (n, site) in [&s0, &s1].into_iter().enumerate() {
            let pv = format!("{:016x}", 0x2000 + i * 2 + n);
            assert!(post(&c1, site, &pv), "refused while one shard is up");
            acked[n].insert(pv);
        }
    }
    // Shard 1's site is read whole; shard 2's site is refused (503 and
    // Retry-After), never answered partially from the other shard.
    wait_for(&c1, &s0, &acked[0]);
    for path in [
        format!("/api/stats?site={s0}"),
        format!("/api/inventory?site={s0}"),
        format!("/api/health?site={s0}"),
    ] {
        let r = c1.get_api(&path);
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    let stats = c1.get_api(&format!("/api/stats?site={s0}"));
    let stats: serde_json::Value = serde_json::from_str(&stats.body).unwrap();
    assert_eq!(stats["findings"], acked[0].len(), "{stats}");
    for path in [
        format!("/api/findings?site={s1}"),
        format!("/api/stats?site={s1}"),
        format!("/api/inventory?site={s1}"),
        format!("/api/health?site={s1}"),
    ] {
        let r = c1.get_api(&path);
        assert_eq!(r.status, 503, "{path}: {r:?}");
        assert!(r.header("retry-after").is_some(), "{path}: {r:?}");
    }
    // The collector whose own server is down refuses everything.
    assert!(!post(&c2, &s0, "00000000000fffff"));
    let r = c2.get_api(&format!("/api/findings?site={s0}"));
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.header("retry-after").is_some());

    // Shard 2 is back: everything acknowledged arrives, once.
    script(&["start", "2"]);
    for c in [&c1, &c2] {
        wait_for(c, &s0, &acked[0]);
        wait_for(c, &s1, &acked[1]);
        let rows = c.findings(&format!("site={s1}&limit=10000"));
        assert_eq!(rows.len(), acked[1].len(), "each report once");
    }
    // Both collectors take reports for both shards again.
    assert!(post(&c2, &s1, "00000000000ffffe"));
    assert!(post(&c1, &s1, "00000000000ffffd"));

    drop((c1, c2));
    let _ = std::fs::remove_dir_all(dir);
}
