//! The events store on a ClickHouse cluster: two servers as two shards of
//! cluster `tagwatch` (tools/clickhouse.sh cluster), local tables and a
//! `Distributed` table keyed by site, two collectors each talking to one
//! server. Reads see both shards. A report is acknowledged (and chained)
//! only once its shard has written it (`insert_distributed_sync`): read and
//! `verify`d at once, from either server, it is there. With a shard
//! stopped, the other shard's sites are still read, and the stopped
//! shard's sites refused (503 and Retry-After); reports are refused too
//! (ClickHouse 18.16 writes every shard its block, rows or not), nothing
//! of them stored or chained, and acknowledged once it is back. A
//! collector whose own server is down refuses everything.
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

/// `tagwatch verify --db DB --events EVENTS --site KEY`: exit code, stdout
/// and stderr.
fn verify(db: &str, events: &str, key: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["verify", "--db", db, "--events", events, "--site", key])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The number of entries in a site's chain (control plane `db`, SQLite).
fn chain_length(db: &str, key: &str) -> i64 {
    let c = rusqlite::Connection::open(db.strip_prefix("sqlite:").unwrap()).unwrap();
    c.query_row(
        "SELECT count(*) FROM chain WHERE site_id = (SELECT id FROM names WHERE name = ?1)",
        [key],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn two_shards_two_collectors_acknowledged_means_on_its_shard() {
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
    let verified = |events: &str, site: &str| {
        let (code, said) = verify(&db, events, site);
        assert!(code == 0 && said.contains("verified"), "{site}: {said}");
    };

    // Both collectors write both sites; each site's rows land on its
    // shard. Each report, once acknowledged, is on its shard: read and
    // verified at once through either server (no wait: before, a report
    // forwarded to the other shard was readable only once the
    // `Distributed` table had sent it, and a `verify` before that named
    // its chained row deleted).
    let mut acked: [HashSet<String>; 2] = Default::default();
    for i in 0..6 {
        for (n, site) in [&s0, &s1].into_iter().enumerate() {
            let pv = format!("{:016x}", 0x1000 + i * 2 + n);
            let (via, other) = if i % 2 == 0 {
                (&c1, &second)
            } else {
                (&c2, &first)
            };
            assert!(post(via, site, &pv));
            acked[n].insert(pv);
            // Through the server the collector did not write to.
            verified(&cluster(other), site);
        }
    }
    for (ch, site, other) in [(&first, &s0, &s1), (&second, &s1, &s0)] {
        let sites = ch.value("SELECT groupUniqArray(site) FROM findings_local");
        assert!(
            sites.contains(site.as_str()) && !sites.contains(other.as_str()),
            "{sites}"
        );
    }
    for c in [&c1, &c2] {
        assert_eq!(page_views(c, &s0), acked[0]);
        assert_eq!(page_views(c, &s1), acked[1]);
    }

    // Shard 2 stops.
    script(&["stop", "2"]);
    // Reports are refused (503, Retry-After: the monitor sends them
    // again), for both shards' sites: 18.16 writes every shard its part of
    // an INSERT, an empty one too. Nothing of them is stored or chained.
    let chained = [chain_length(&db, &s0), chain_length(&db, &s1)];
    for i in 0..3 {
        for site in [&s0, &s1] {
            let pv = format!("{:016x}", 0x2000 + i);
            assert!(!post(&c1, site, &pv), "acknowledged while shard 2 is down");
        }
    }
    assert_eq!([chain_length(&db, &s0), chain_length(&db, &s1)], chained);
    assert_eq!(
        first.value("SELECT count() FROM findings_local WHERE page_view LIKE '0000000000002%'"),
        "0"
    );
    // Shard 1's site is read whole, and verified; shard 2's site is
    // refused (503 and Retry-After), never answered partially from the
    // other shard, and `verify` cannot read it: an error, no accusation.
    assert_eq!(page_views(&c1, &s0), acked[0]);
    verified(&cluster(&first), &s0);
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
    let (code, said) = verify(&db, &cluster(&first), &s1);
    assert!(
        code != 0 && code != 3 && !said.contains("FAILED") && said.contains("cannot read"),
        "{said}"
    );
    // The collector whose own server is down refuses everything.
    assert!(!post(&c2, &s0, "00000000000fffff"));
    let r = c2.get_api(&format!("/api/findings?site={s0}"));
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.header("retry-after").is_some());

    // Shard 2 is back: the refused reports, sent again, are acknowledged,
    // each once, and verified at once.
    script(&["start", "2"]);
    for i in 0..3 {
        for (n, site) in [&s0, &s1].into_iter().enumerate() {
            let pv = format!("{:016x}", 0x2000 + i);
            assert!(post(&c1, site, &pv), "refused with both shards up");
            acked[n].insert(pv);
        }
    }
    assert!(post(&c2, &s1, "00000000000ffffe"));
    acked[1].insert("00000000000ffffe".into());
    for c in [&c1, &c2] {
        assert_eq!(page_views(c, &s0), acked[0]);
        assert_eq!(page_views(c, &s1), acked[1]);
        let rows = c.findings(&format!("site={s1}&limit=10000"));
        assert_eq!(rows.len(), acked[1].len(), "each report once");
    }
    for events in [cluster(&first), cluster(&second)] {
        verified(&events, &s0);
        verified(&events, &s1);
    }

    drop((c1, c2));
    let _ = std::fs::remove_dir_all(dir);
}
