//! The events store against a real ClickHouse (`TAGWATCH_TEST_CLICKHOUSE`,
//! started by tools/clickhouse.sh): the same batches committed to SQLite
//! alone and to SQLite + ClickHouse give the same answers to every read of
//! the API; a batch inserted twice counts once; retention drops whole weeks;
//! hostile strings come back byte for byte.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking.

use std::path::PathBuf;
use std::sync::Arc;

use tagwatch_core::consent::{Category, Source};
use tagwatch_core::report::{EvidenceKind, FindingType, HealthStatus};
use tagwatch_events::testing::{with_credentials, TestEvents, AUTH_PASSWORD, AUTH_USER};
use tagwatch_store::{
    Batch, Checks, FindingKind, FindingRecord, FindingsQuery, HealthQuery, HealthRecord,
    InventoryHost, InventoryQuery, InventoryRecord, InventoryVendor, Named, StatsQuery, Store,
    StoreError, StoredConsentSource, StoredEvidenceKind, Usage,
};

const A: &str = "tw_aaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "tw_bbbbbbbbbbbbbbbbbbbbbbbb";

/// Strings a page or an attacker may send, each stored and read back.
const HOSTILE: &[&str] = &[
    "it's",
    "back\\slash",
    "end\\",
    "\\'",
    "nul\0byte",
    "tab\there",
    "new\nline\r\n",
    "'); DROP TABLE findings; --",
    "\\N",
    "é 😀 \u{202e}",
    "{\"json\": [1, 2]}",
];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tagwatch-events-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A SQLite store with sites A and B.
fn sqlite(dir: &std::path::Path, name: &str) -> Arc<dyn Store> {
    let url = format!("sqlite:{}", dir.join(name).display());
    let store = tagwatch_store::open(&url, 1, Checks::default()).unwrap();
    for key in [A, B] {
        store
            .add_site(
                key,
                &["https://shop.example".into()],
                "2026-01-01T00:00:00.000Z",
            )
            .unwrap();
    }
    store
}

/// The two stores compared: SQLite alone, and SQLite + ClickHouse.
struct Pair {
    sql: Arc<dyn Store>,
    ch: Arc<dyn Store>,
    events: TestEvents,
    dir: PathBuf,
}

impl Pair {
    fn new(name: &str) -> Option<Pair> {
        let events = TestEvents::create(name)?;
        let dir = temp_dir(name);
        let sql = sqlite(&dir, "sql.db");
        let ch = tagwatch_events::open(&events.url, sqlite(&dir, "control.db")).unwrap();
        Some(Pair {
            sql,
            ch,
            events,
            dir,
        })
    }

    fn commit(&self, batches: &[&Batch]) {
        let a = self.sql.commit(batches).unwrap();
        let b = self.ch.commit(batches).unwrap();
        assert_eq!(a, b, "first-seen types");
    }
}

/// Each site's chain (in the control plane) against ClickHouse's finding,
/// health and inventory row versions: nothing changed, nothing not proven,
/// every version there chained (the digest a commit computes from what it inserts is
/// the one a read computes from what ClickHouse gives back).
fn chain_verifies(p: &Pair) {
    for site in [A, B] {
        let dump = p.ch.chain(site).unwrap();
        let verdict = dump.check(None);
        assert!(
            verdict.problems.is_empty() && verdict.unproven_rows == 0,
            "{site}: {verdict:?}"
        );
        let versions = dump.versions.as_ref().unwrap();
        // Every finding, health and inventory row is a chained version.
        for (kind, table) in [
            (tagwatch_store::chain::VERSION, "findings"),
            (tagwatch_store::chain_rows::HEALTH_VERSION, "health"),
            (tagwatch_store::chain_rows::INVENTORY_VERSION, "inventories"),
        ] {
            assert_eq!(
                versions
                    .iter()
                    .filter(|v| v.kind == kind)
                    .count()
                    .to_string(),
                p.events.value(&format!(
                    "SELECT count() FROM {table} WHERE site = '{site}'"
                )),
                "{site} {table}"
            );
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn at(day: u32, ms: u32) -> String {
    format!(
        "2026-03-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[allow(clippy::too_many_arguments)]
fn finding(
    site: &str,
    pv: &str,
    kind: FindingKind,
    vendor: &str,
    page: &str,
    count: i64,
    at: &str,
    received: &str,
) -> FindingRecord {
    FindingRecord {
        release: None,
        site: site.into(),
        page_view: pv.into(),
        page: page.into(),
        kind,
        vendor: vendor.into(),
        category: Some(Category::Marketing),
        evidence: format!("{{\"kind\":\"request\",\"url\":\"https://{vendor}.example/x.js\"}}")
            .into(),
        evidence_kind: StoredEvidenceKind::Monitor(EvidenceKind::Request),
        consent_source: Some(StoredConsentSource::Known(Source::Tcf)),
        consent: r#"{"analytics":false,"functional":true,"marketing":false,"necessary":true,"source":"tcf"}"#
            .into(),
        count,
        at: at.into(),
        received_at: received.into(),
        user_agent: "UA".into(),
        raw: "{}".into(),
    }
}

/// A cookie's lifetime over the policy's, as the engine reports it.
fn lifetime(
    site: &str,
    pv: &str,
    cookie: &str,
    days: u32,
    at: &str,
    received: &str,
    release: &str,
) -> FindingRecord {
    let mut f = finding(
        site,
        pv,
        monitor(FindingType::CookieLifetimeExceedsPolicy),
        "ga4",
        "https://shop.example/",
        1,
        at,
        received,
    );
    f.evidence = format!(r#"{{"cookie":"{cookie}","days":{days},"kind":"cookie"}}"#).into();
    f.evidence_kind = StoredEvidenceKind::Monitor(EvidenceKind::Cookie);
    f.release = Some(release.into());
    f
}

fn monitor(t: FindingType) -> FindingKind {
    FindingKind::Monitor(t)
}

fn usage(n: i64) -> Usage {
    Usage {
        requests: n,
        script_requests: n / 2,
        transfer_bytes: n * 100,
        encoded_bytes: n * 50,
        duration_ms: n * 3,
    }
}

fn inventory(
    site: &str,
    pv: &str,
    page: &str,
    at: &str,
    received: &str,
    n: i64,
) -> InventoryRecord {
    InventoryRecord {
        release: None,
        site: site.into(),
        page_view: pv.into(),
        page: page.into(),
        vendors: vec![
            InventoryVendor {
                vendor: "ga4".into(),
                usage: usage(n),
                hosts: vec!["www.google-analytics.com".into()],
                regions: vec!["US".into()],
                cookies: vec!["_ga".into(), format!("_ga_{n}")],
            },
            InventoryVendor {
                vendor: "hotjar".into(),
                usage: Usage {
                    requests: i64::MAX,
                    ..usage(1)
                },
                hosts: vec!["static.hotjar.com".into()],
                regions: vec![],
                cookies: vec![],
            },
        ],
        unclassified: vec![InventoryHost {
            host: format!("cdn{}.example", n % 2),
            usage: usage(n),
        }],
        at: at.into(),
        received_at: received.into(),
        user_agent: "UA".into(),
        raw: "{}".into(),
    }
}

fn health(site: &str, pv: Option<&str>, reason: Option<&str>, at: &str) -> HealthRecord {
    HealthRecord {
        release: None,
        site: site.into(),
        page_view: pv.map(Into::into),
        page: "https://shop.example/".into(),
        status: HealthStatus::ApiMissing,
        reason: reason.map(str::to_owned),
        at: at.into(),
        received_at: at.into(),
        user_agent: "UA".into(),
        raw: "{}".into(),
    }
}

/// Reports over three days and two sites: resends (a larger count, an
/// earlier `at`, another page), CSP reports that add up, inventories
/// replaced by newer ones and not by older ones, health reports.
fn groups() -> Vec<Vec<Batch>> {
    use FindingType::*;
    let csp = FindingKind::CspBlocked;
    let (p1, p2) = ("https://shop.example/", "https://shop.example/cart");
    let r1 = at(3, 1000);
    let r2 = at(3, 2000);
    let r3 = at(4, 5000);
    let mut b1 = Batch {
        findings: vec![
            finding(
                A,
                "pv1",
                monitor(ScriptBeforeConsent),
                "ga4",
                p1,
                1,
                &at(1, 10),
                &r1,
            ),
            finding(
                A,
                "pv1",
                monitor(CookieBeforeConsent),
                "ga4",
                p1,
                2,
                &at(1, 10),
                &r1,
            ),
            finding(
                A,
                "pv1",
                monitor(GpcIgnored),
                "hotjar",
                p2,
                1,
                &at(2, 20),
                &r1,
            ),
            finding(A, "pv1", csp, "hotjar", p1, 1, &at(2, 30), &r1),
            finding(A, "pv1", csp, "hotjar", p1, 1, &at(2, 31), &r1),
            finding(B, "pv9", monitor(GpcIgnored), "ga4", p1, 4, &at(2, 40), &r1),
        ],
        health: vec![health(A, None, None, &at(1, 50))],
        inventories: vec![inventory(A, "pv1", p1, &at(1, 60), &r1, 3)],
    };
    b1.findings[1].category = None;
    b1.findings[2].consent = r#"{"source":"gpp","marketing":true}"#.into();
    b1.findings[5].consent = "null".into();
    // Releases: site A's first page view is release r1; B names none.
    for f in b1.findings.iter_mut().filter(|f| f.site == A) {
        f.release = Some("r1".into());
    }
    b1.inventories[0].release = Some("r1".into());
    b1.health[0].release = Some("r1".into());
    b1.findings
        .push(lifetime(A, "pv1", "_ga", 400, &at(1, 11), &r1, "r1"));
    let mut b2 = Batch {
        findings: vec![finding(
            A,
            "pv2",
            monitor(ScriptBeforeConsent),
            "ttd",
            p2,
            1,
            &at(2, 70),
            &r2,
        )],
        health: vec![health(A, Some("pv2"), Some("why"), &at(2, 80))],
        inventories: vec![
            inventory(A, "pv2", p2, &at(2, 90), &r2, 5),
            inventory(B, "pv9", p1, &at(2, 95), &r2, 7),
        ],
    };
    // Release r2 on page view 2; B's page view later names r1 (another
    // site's release of the same name).
    b2.findings[0].release = Some("r2".into());
    b2.health[0].release = Some("r2".into());
    b2.inventories[0].release = Some("r2".into());
    b2.inventories[1].release = Some("r1".into());
    b2.findings.extend([
        lifetime(A, "pv2", "_ga", 730, &at(2, 71), &r2, "r2"),
        lifetime(A, "pv2", "_ga", 500, &at(2, 72), &r2, "r2"),
        lifetime(A, "pv2", "_fbp", 90, &at(2, 73), &r2, "r2"),
    ]);
    let mut resent = finding(
        A,
        "pv1",
        monitor(ScriptBeforeConsent),
        "ga4",
        p2,
        5,
        &at(1, 5),
        &r3,
    );
    resent.user_agent = "other".into();
    // A resend naming another release: the finding keeps its first
    // arrival's (r1).
    resent.release = Some("r2".into());
    let mut b3 = Batch {
        findings: vec![
            resent,
            finding(
                A,
                "pv1",
                monitor(CookieBeforeConsent),
                "ga4",
                p1,
                1,
                &at(3, 10),
                &r3,
            ),
            finding(A, "pv1", csp, "hotjar", p1, 3, &at(3, 30), &r3),
            finding(
                A,
                "pv3",
                monitor(RegionNotAllowed),
                "ttd",
                p1,
                1,
                &at(3, 100),
                &r3,
            ),
        ],
        health: vec![],
        inventories: vec![
            inventory(A, "pv1", p2, &at(3, 60), &r3, 11),
            inventory(A, "pv2", p1, &at(1, 1), &r3, 13),
        ],
    };
    // Page view 1's newer inventory names r2 (it replaces r1's); page view
    // 2's older one names r1 (it replaces nothing); page view 3 is r2.
    b3.inventories[0].release = Some("r2".into());
    b3.inventories[1].release = Some("r1".into());
    b3.findings[1].release = Some("r1".into());
    b3.findings[2].release = Some("r1".into());
    b3.findings[3].release = Some("r2".into());
    vec![vec![b1, b2], vec![b3]]
}

/// The releases the reports of [`groups`] name, and one none names.
const RELEASES: [&str; 3] = ["r1", "r2", "r3"];

/// Every read of the API, on both stores, must agree.
fn same_answers(p: &Pair) {
    for site in [A, B] {
        let mut queries = vec![FindingsQuery {
            site: site.into(),
            limit: 1000,
            ..FindingsQuery::default()
        }];
        let base = queries[0].clone();
        queries.push(FindingsQuery {
            newest_first: true,
            ..base.clone()
        });
        queries.push(FindingsQuery {
            limit: 2,
            ..base.clone()
        });
        queries.push(FindingsQuery {
            kinds: vec!["csp_blocked".into(), "gpc_ignored".into()],
            vendors: vec!["hotjar".into()],
            ..base.clone()
        });
        queries.push(FindingsQuery {
            since: Some(at(2, 0)),
            until: Some(at(3, 0)),
            ..base.clone()
        });
        queries.push(FindingsQuery {
            page: Some("https://shop.example/cart".into()),
            page_view: Some("pv1".into()),
            ..base.clone()
        });
        queries.push(FindingsQuery {
            category: Some("marketing".into()),
            ..base.clone()
        });
        for release in RELEASES {
            queries.push(FindingsQuery {
                release: Some(release.into()),
                ..base.clone()
            });
            queries.push(FindingsQuery {
                release: Some(release.into()),
                since: Some(at(2, 0)),
                newest_first: true,
                ..base.clone()
            });
        }
        for q in &queries {
            assert_eq!(
                p.sql.findings(q).unwrap(),
                p.ch.findings(q).unwrap(),
                "{q:?}"
            );
        }
        let releases = std::iter::once(None).chain(RELEASES.iter().map(|r| Some(r.to_string())));
        for release in releases.clone() {
            for (since, until, max_pages) in [
                (None, None, 100),
                (Some(at(2, 0)), None, 100),
                (Some(at(1, 0)), Some(at(3, 0)), 1),
            ] {
                let q = StatsQuery {
                    release: release.clone(),
                    site: site.into(),
                    since,
                    until,
                    max_pages,
                };
                assert_eq!(p.sql.stats(&q).unwrap(), p.ch.stats(&q).unwrap(), "{q:?}");
            }
        }
        for release in RELEASES {
            for max_names in [100, 1] {
                assert_eq!(
                    p.sql.release_profile(site, release, max_names).unwrap(),
                    p.ch.release_profile(site, release, max_names).unwrap(),
                    "{site} {release} {max_names}"
                );
            }
        }
        for since in [None, Some(at(2, 0))] {
            let q = HealthQuery {
                site: site.into(),
                since: since.clone(),
                limit: 1000,
            };
            assert_eq!(p.sql.health(&q).unwrap(), p.ch.health(&q).unwrap(), "{q:?}");
            for (max_names, max_hosts) in [(100, 100), (1, 1)] {
                for release in releases.clone() {
                    let q = InventoryQuery {
                        release,
                        site: site.into(),
                        since: since.clone(),
                        max_names,
                        max_hosts,
                    };
                    assert_eq!(
                        p.sql.inventory(&q).unwrap(),
                        p.ch.inventory(&q).unwrap(),
                        "{q:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_read_answers_as_sqlite_does() {
    let Some(p) = Pair::new("same") else { return };
    for group in groups() {
        let batches: Vec<&Batch> = group.iter().collect();
        p.commit(&batches);
    }
    same_answers(&p);
    chain_verifies(&p);
    // Something was read: the comparison is not between two empty stores.
    let q = StatsQuery {
        site: A.into(),
        max_pages: 10,
        ..StatsQuery::default()
    };
    let stats = p.ch.stats(&q).unwrap();
    assert_eq!(stats.total.findings, 10);
    assert_eq!(stats.page_views, 3);
    // Releases: a finding keeps its first arrival's release (page view 1's
    // resend named r2), an inventory its latest (page view 1's is r2 now).
    let q = FindingsQuery {
        site: A.into(),
        release: Some("r1".into()),
        limit: 100,
        ..FindingsQuery::default()
    };
    let r1 = p.ch.findings(&q).unwrap();
    assert_eq!(r1.len(), 5);
    assert!(r1
        .iter()
        .all(|f| f.page_view == "pv1" && f.release.as_deref() == Some("r1")));
    let r2 = p.ch.release_profile(A, "r2", 100).unwrap();
    assert_eq!(r2.page_views, 3);
    let named = |n: &str, count| Named {
        name: n.into(),
        count,
    };
    assert_eq!(r2.cookie_days, [named("_fbp", 90), named("_ga", 730)]);
    assert_eq!(r2.types[0], named("cookie_lifetime_exceeds_policy", 3));
    assert_eq!(p.ch.release_profile(A, "r1", 100).unwrap().page_views, 1);
    assert_eq!(
        stats
            .by_type
            .iter()
            .find(|t| t.key == "csp_blocked")
            .unwrap()
            .occurrences,
        5
    );
}

#[test]
fn a_batch_inserted_twice_counts_once() {
    let Some(p) = Pair::new("retry") else { return };
    for group in groups() {
        let batches: Vec<&Batch> = group.iter().collect();
        p.commit(&batches);
        // The writer retries a failed group batch by batch, and an insert
        // whose answer was lost is sent again: the same rows again.
        for b in &batches {
            p.ch.commit(&[b]).unwrap();
        }
        p.ch.commit(&batches).unwrap();
    }
    same_answers(&p);
    // The rows are there twice until ClickHouse merges them; the reads
    // count them once (and so does a merge).
    assert!(
        p.events
            .value("SELECT count() FROM findings")
            .parse::<u64>()
            .unwrap()
            > 11
    );
    for table in tagwatch_events::schema::TABLES {
        p.events.run(&format!("OPTIMIZE TABLE {table} FINAL"));
    }
    same_answers(&p);
    // Chained once or several times, a version is one version.
    chain_verifies(&p);
}

#[test]
fn hostile_strings_come_back_byte_for_byte() {
    let Some(p) = Pair::new("hostile") else {
        return;
    };
    let mut batch = Batch::default();
    for (i, s) in HOSTILE.iter().enumerate() {
        let ms = u32::try_from(i).unwrap() * 1000;
        let mut f = finding(
            A,
            s,
            monitor(FindingType::GpcIgnored),
            s,
            s,
            1,
            &at(1, ms),
            &at(1, ms),
        );
        f.evidence = format!("{{\"x\":{}}}", serde_json::Value::from(*s)).into();
        f.user_agent = (*s).into();
        f.raw = (*s).into();
        f.release = Some((*s).into());
        batch.findings.push(f);
        let mut inv = inventory(A, s, s, &at(1, ms), &at(1, ms), 1);
        inv.release = Some((*s).into());
        inv.vendors[0].vendor = (*s).into();
        inv.vendors[0].cookies = vec![(*s).into()];
        inv.unclassified[0].host = (*s).into();
        batch.inventories.push(inv);
        batch.health.push(health(A, Some(s), Some(s), &at(1, ms)));
    }
    p.commit(&[&batch]);
    same_answers(&p);
    // Each one filtered on, as the API passes it.
    for s in HOSTILE {
        let q = FindingsQuery {
            site: A.into(),
            vendors: vec![(*s).into()],
            page: Some((*s).into()),
            page_view: Some((*s).into()),
            limit: 10,
            ..FindingsQuery::default()
        };
        let rows = p.ch.findings(&q).unwrap();
        assert_eq!(rows.len(), 1, "{s:?}");
        assert_eq!(rows[0].vendor, *s);
        assert_eq!(rows[0].page, *s);
        assert_eq!(rows[0].release.as_deref(), Some(*s));
        assert_eq!(rows, p.sql.findings(&q).unwrap());
        let q = FindingsQuery {
            site: A.into(),
            release: Some((*s).into()),
            limit: 10,
            ..FindingsQuery::default()
        };
        assert_eq!(p.ch.findings(&q).unwrap(), rows, "{s:?}");
        let profile = p.ch.release_profile(A, s, 100).unwrap();
        assert_eq!(profile, p.sql.release_profile(A, s, 100).unwrap(), "{s:?}");
        assert_eq!(profile.page_views, 1, "{s:?}");
    }
    // A hostile site key finds nothing and breaks nothing.
    for s in HOSTILE {
        let q = FindingsQuery {
            site: (*s).into(),
            limit: 10,
            ..FindingsQuery::default()
        };
        assert!(p.ch.findings(&q).unwrap().is_empty());
    }
    assert_eq!(
        p.events.value("SELECT count() FROM findings"),
        HOSTILE.len().to_string()
    );
    chain_verifies(&p);
}

#[test]
fn retention_drops_whole_weeks() {
    let Some(p) = Pair::new("retention") else {
        return;
    };
    let mut groups = groups();
    // The one finding resent on a later day: set aside (below).
    let cross_day = groups[1][0].findings.remove(1);
    assert_eq!(cross_day.kind, monitor(FindingType::CookieBeforeConsent));
    for group in &groups {
        let batches: Vec<&Batch> = group.iter().collect();
        p.commit(&batches);
    }
    // Monday midnight: what SQL deletes row by row, ClickHouse drops as
    // the week partitions before it (2026-03-01 is a Sunday).
    let before = "2026-03-02T00:00:00.000Z";
    // A row of a site the control plane does not know (inserted without a
    // collector): dropped with its week, recorded in no chain.
    p.events.run(
        "INSERT INTO findings (site, page_view, page, type, vendor, category, evidence_kind, \
         evidence, consent_source, consent, count, at, received_at, user_agent, raw, token, day, \
         release) VALUES ('tw_unknown', 'pv', 'p', 't', 'v', '', 'k', '{}', NULL, '{}', 1, \
         '2026-03-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z', 'UA', '{}', 1, '2026-03-01', '')",
    );
    p.ch.sign_checkpoints(tagwatch_store::chain::SigningKey::from_bytes(&[7; 32]));
    let a = tagwatch_store::purge_all(&*p.sql, before).unwrap();
    let b = tagwatch_store::purge_all(&*p.ch, before).unwrap();
    assert_eq!(
        tagwatch_store::Purged {
            findings: a.findings + 1,
            ..a
        },
        b,
        "the unknown site's row too"
    );
    assert!(b.findings > 0 && b.health > 0, "{b:?}");
    same_answers(&p);
    // The chain recorded what went (a removal per row version, a signed
    // checkpoint whose `before` is the Monday the kept weeks start on),
    // and still verifies.
    chain_verifies(&p);
    let dump = p.ch.chain(A).unwrap();
    let cp = dump.checkpoints.values().next().unwrap();
    assert_eq!(cp.before, "2026-03-02T00:00:00.000Z");
    assert!(cp.findings > 0 && cp.signature.is_some(), "{cp:?}");
    let removed = dump
        .entries
        .iter()
        .filter(|e| e.kind == tagwatch_store::chain::REMOVED)
        .count();
    assert_eq!(i64::try_from(removed).unwrap(), cp.findings);
    assert_eq!(
        p.events.value(
            "SELECT count() FROM system.parts WHERE database = currentDatabase() \
             AND active AND partition < '2026-03-02'"
        ),
        "0"
    );
    // Within a week, the week stays until it is wholly older.
    let b = tagwatch_store::purge_all(&*p.ch, "2026-03-04T23:00:00.000Z").unwrap();
    assert_eq!(b.total(), 0);
    assert!(!p
        .ch
        .findings(&FindingsQuery {
            site: A.into(),
            limit: 10,
            until: Some(at(3, 0)),
            ..FindingsQuery::default()
        })
        .unwrap()
        .is_empty());

    // The documented difference (docs/collector.md#clickhouse): a finding
    // first observed before the limit and resent on a later day. SQL keeps
    // one row (the earliest `at`) and deletes it; ClickHouse drops the old
    // day's row and keeps the later one, with its own `at`.
    let mut early = cross_day.clone();
    early.at = at(1, 7).into();
    p.commit(&[&Batch {
        findings: vec![early],
        ..Batch::default()
    }]);
    p.commit(&[&Batch {
        findings: vec![cross_day.clone()],
        ..Batch::default()
    }]);
    tagwatch_store::purge_all(&*p.sql, before).unwrap();
    tagwatch_store::purge_all(&*p.ch, before).unwrap();
    let q = FindingsQuery {
        site: A.into(),
        kinds: vec!["cookie_before_consent".into()],
        limit: 10,
        ..FindingsQuery::default()
    };
    assert!(p.sql.findings(&q).unwrap().is_empty());
    let kept = p.ch.findings(&q).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].at, cross_day.at);
    chain_verifies(&p);
}

#[test]
fn an_unreachable_server_is_a_lost_connection_and_a_bad_url_a_usage_error() {
    let dir = temp_dir("unreachable");
    // A port nothing listens on: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let control = sqlite(&dir, "c.db");
    let Err(e) = tagwatch_events::open(
        &format!("clickhouse://127.0.0.1:{port}/tw"),
        control.clone(),
    ) else {
        panic!("opened a server that is not there")
    };
    assert!(e.lost_connection(), "{e}");
    for bad in ["clickhouse://h/", "http://h:1/x", "clickhouse://h/a-b"] {
        assert!(matches!(
            tagwatch_events::open(bad, control.clone()),
            Err(StoreError::BadUrl(_))
        ));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_user_with_a_password_is_who_the_store_talks_as() {
    let Some(events) = TestEvents::create("auth") else {
        return;
    };
    let dir = temp_dir("auth");
    let url = with_credentials(&events.url, AUTH_USER, AUTH_PASSWORD);
    let store = tagwatch_events::open(&url, sqlite(&dir, "c.db")).unwrap();
    let batches = groups();
    store
        .commit(&batches[0].iter().collect::<Vec<_>>())
        .unwrap();
    let q = FindingsQuery {
        site: A.into(),
        limit: 10,
        ..FindingsQuery::default()
    };
    assert!(!store.findings(&q).unwrap().is_empty());
    // The server saw that user (its headers), not the default one.
    let me = TestEvents::named(&url, events.database());
    assert_eq!(
        me.value("SELECT user FROM system.processes WHERE query LIKE '%who-am-i%'"),
        AUTH_USER
    );
    // A wrong password is refused, and the error does not repeat it.
    let wrong = with_credentials(&events.url, AUTH_USER, "not-the-password");
    let Err(e) = tagwatch_events::open(&wrong, sqlite(&dir, "d.db")) else {
        panic!("a wrong password was accepted")
    };
    let message = e.to_string();
    assert!(!e.lost_connection(), "{message}");
    assert!(message.contains("password"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_cluster_the_server_does_not_know_is_refused_at_start() {
    let Some(events) = TestEvents::create("nocluster") else {
        return;
    };
    let dir = temp_dir("nocluster");
    let url = format!("{}?cluster=no_such_cluster", events.url);
    let Err(e) = tagwatch_events::open(&url, sqlite(&dir, "c.db")) else {
        panic!("opened an unknown cluster")
    };
    assert!(e.to_string().contains("knows no cluster"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A database an older collector made (events schema 1, no release
/// column) gains the release columns when a collector of this version
/// opens it: its rows read as naming no release, new rows keep theirs.
/// A column another collector starting beside it already added is left
/// as it is (18.16 has no `ADD COLUMN IF NOT EXISTS`).
#[test]
fn a_version_1_database_gains_release_columns() {
    use tagwatch_events::schema::{render, Server, MIGRATIONS};
    let Some(events) = TestEvents::create("v1") else {
        return;
    };
    let dir = temp_dir("v1");
    events.create_database();
    let server = Server::from_version(&events.value("SELECT version()"));
    for sql in render(MIGRATIONS[0].sql, server, events.database(), None) {
        events.run(&sql);
    }
    events.run(
        "CREATE TABLE tagwatch_events_schema (version UInt32, applied_at DateTime) \
         ENGINE = MergeTree() ORDER BY version",
    );
    events.run("INSERT INTO tagwatch_events_schema VALUES (1, now())");
    let old = Batch {
        findings: vec![finding(
            A,
            "old",
            monitor(FindingType::GpcIgnored),
            "ga4",
            "https://shop.example/",
            1,
            &at(1, 0),
            &at(1, 0),
        )],
        ..Batch::default()
    };
    events.run(
        "INSERT INTO findings (site, page_view, page, type, vendor, category, evidence_kind, \
         evidence, consent_source, consent, count, at, received_at, user_agent, raw, token, day) \
         VALUES ('tw_aaaaaaaaaaaaaaaaaaaaaaaa', 'old', 'https://shop.example/', 'gpc_ignored', \
         'ga4', 'marketing', 'request', '{\"kind\":\"request\",\"url\":\"https://ga4.example/x.js\"}', \
         'tcf', '{\"analytics\":false,\"functional\":true,\"marketing\":false,\"necessary\":true,\"source\":\"tcf\"}', \
         1, '2026-03-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z', 'UA', '{}', 1, '2026-03-01')",
    );
    // Another collector got as far as one table.
    events.run("ALTER TABLE health ADD COLUMN release String DEFAULT ''");
    let sql = sqlite(&dir, "sql.db");
    sql.commit(&[&old]).unwrap();
    let ch = tagwatch_events::open(&events.url, sqlite(&dir, "control.db")).unwrap();
    // Twice: a second collector finds nothing left to do.
    tagwatch_events::open(&events.url, sqlite(&dir, "control2.db")).unwrap();
    for table in tagwatch_events::schema::TABLES {
        assert_eq!(
            events.value(&format!(
                "SELECT count() FROM system.columns WHERE database = currentDatabase() \
                 AND table = '{table}' AND name = 'release'"
            )),
            "1",
            "{table}"
        );
    }
    assert_eq!(
        events.value("SELECT max(version) FROM tagwatch_events_schema"),
        tagwatch_events::schema::SCHEMA_VERSION.to_string()
    );
    let mut new = Batch {
        findings: vec![finding(
            A,
            "new",
            monitor(FindingType::GpcIgnored),
            "ga4",
            "https://shop.example/",
            1,
            &at(2, 0),
            &at(2, 0),
        )],
        inventories: vec![inventory(
            A,
            "new",
            "https://shop.example/",
            &at(2, 0),
            &at(2, 0),
            1,
        )],
        health: vec![health(A, Some("new"), None, &at(2, 0))],
    };
    new.findings[0].release = Some("r9".into());
    new.inventories[0].release = Some("r9".into());
    new.health[0].release = Some("r9".into());
    sql.commit(&[&new]).unwrap();
    ch.commit(&[&new]).unwrap();
    let all = FindingsQuery {
        site: A.into(),
        limit: 10,
        ..FindingsQuery::default()
    };
    let rows = ch.findings(&all).unwrap();
    assert_eq!(rows, sql.findings(&all).unwrap());
    let releases: Vec<Option<&str>> = rows.iter().map(|r| r.release.as_deref()).collect();
    assert_eq!(releases, [None, Some("r9")]);
    assert_eq!(
        ch.release_profile(A, "r9", 10).unwrap(),
        sql.release_profile(A, "r9", 10).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One finding of site A on page view `pv`, observed on `day` of March
/// 2026 (2026-03-02 is a Monday), in a batch of its own.
fn one_finding(pv: &str, day: u32) -> Batch {
    let observed = at(day, 1000);
    Batch {
        findings: vec![finding(
            A,
            pv,
            monitor(FindingType::ScriptBeforeConsent),
            "ga4",
            "https://shop.example/",
            1,
            &observed,
            &at(4, 1000),
        )],
        ..Batch::default()
    }
}

/// Two collectors sharing a control plane and a ClickHouse database: the
/// second calls `hook` at each step of its `verify` and purges (another
/// collector's work is run there, in a deterministic order).
struct Interleaved {
    plain: Arc<dyn Store>,
    stepped: Arc<dyn Store>,
    events: TestEvents,
    dir: PathBuf,
}

impl Interleaved {
    fn new(
        name: &str,
        hook: impl Fn(tagwatch_events::Step, &Arc<dyn Store>) + Send + Sync + 'static,
    ) -> Option<Self> {
        let events = TestEvents::create(name)?;
        let dir = temp_dir(name);
        let control = sqlite(&dir, "control.db");
        let plain = tagwatch_events::open(&events.url, control.clone()).unwrap();
        let other = plain.clone();
        let stepped =
            tagwatch_events::open_with_steps(&events.url, control, move |step| hook(step, &other))
                .unwrap();
        let key = tagwatch_store::chain::SigningKey::from_bytes(&[7; 32]);
        plain.sign_checkpoints(key.clone());
        stepped.sign_checkpoints(key);
        Some(Self {
            plain,
            stepped,
            events,
            dir,
        })
    }

    fn verdict(dump: &tagwatch_store::ChainDump) -> tagwatch_store::chain_versions::Verdict {
        let key = tagwatch_store::chain::SigningKey::from_bytes(&[7; 32]).verifying_key();
        dump.check(Some(&key))
    }
}

impl Drop for Interleaved {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` the first time it is called for `step`.
fn once_at(
    step: tagwatch_events::Step,
    f: impl Fn(&Arc<dyn Store>) + Send + Sync + 'static,
) -> impl Fn(tagwatch_events::Step, &Arc<dyn Store>) + Send + Sync + 'static {
    let armed = std::sync::atomic::AtomicBool::new(true);
    move |at, store| {
        if at == step && armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            f(store);
        }
    }
}

/// `verify` reads the chain, then ClickHouse: a purge in between (its
/// removals recorded and its weeks dropped after the chain was read) made
/// it name the dropped rows deleted. It now reads the entries appended
/// meanwhile and finds their removals: verified.
#[test]
fn a_purge_while_verify_reads_is_no_deletion() {
    let purge = |store: &Arc<dyn Store>| {
        let purged = tagwatch_store::purge_all(&**store, "2026-03-02T00:00:00.000Z").unwrap();
        assert_eq!(purged.findings, 1, "{purged:?}");
    };
    let Some(p) = Interleaved::new(
        "verify_purge",
        once_at(tagwatch_events::Step::ChainRead, purge),
    ) else {
        return;
    };
    for (pv, day) in [("pv_old", 1), ("pv_kept", 3)] {
        p.plain.commit(&[&one_finding(pv, day)]).unwrap();
    }
    let dump = p.stepped.chain(A).unwrap();
    // The purge ran between the two reads.
    assert_eq!(
        p.events
            .value(&format!("SELECT count() FROM findings WHERE site = '{A}'")),
        "1"
    );
    let versions = dump.versions.as_ref().unwrap();
    assert_eq!(versions.len(), 1);
    let verdict = Interleaved::verdict(&dump);
    assert_eq!(
        verdict,
        tagwatch_store::chain_versions::Verdict::default(),
        "{verdict:?}"
    );
    // The same reads judged without the entries appended meanwhile (what
    // `verify` did before): the dropped row named deleted.
    let read_at = dump.versions_read_at.unwrap();
    let mut before = dump.clone();
    before.entries.retain(|e| e.seq <= read_at);
    before.checkpoints.retain(|_, cp| cp.seq <= read_at);
    before.versions_read_at = None;
    let verdict = Interleaved::verdict(&before);
    assert!(
        verdict.problems.len() == 1
            && verdict.problems[0]
                .0
                .contains("was deleted: no purge records its removal"),
        "{verdict:?}"
    );
}

/// A report that lands in a week while a purge drops it: inserted after
/// the purge read the week's rows and chained before the purge's
/// checkpoint, it goes with the week without a removal entry, and the
/// purge's checkpoints account for it: verified. One whose commit comes
/// after the checkpoint (it may have been inserted before the drop) is
/// not chained: it goes with the week and nothing claims it. One that
/// lands after the drop is there, and not chained either: not proven
/// (deleted afterwards, nothing to say), while a row of a week kept,
/// deleted, is named.
#[test]
fn a_report_landing_in_a_week_being_dropped_is_accounted_for() {
    let Some(p) = Interleaved::new("late_report", {
        let read = once_at(tagwatch_events::Step::PurgeRead, |other| {
            other.commit(&[&one_finding("pv_late_1", 1)]).unwrap();
        });
        let recorded = once_at(tagwatch_events::Step::PurgeRecorded, |other| {
            other.commit(&[&one_finding("pv_late_2", 1)]).unwrap();
        });
        move |step, other| {
            read(step, other);
            recorded(step, other);
        }
    }) else {
        return;
    };
    for (pv, day) in [("pv_old", 1), ("pv_kept", 3)] {
        p.plain.commit(&[&one_finding(pv, day)]).unwrap();
    }
    let purged = tagwatch_store::purge_all(&*p.stepped, "2026-03-02T00:00:00.000Z").unwrap();
    assert_eq!(purged.findings, 1, "the late reports were not read");
    let rows = |pv: &str| {
        p.events.value(&format!(
            "SELECT count() FROM findings WHERE site = '{A}' AND page_view = '{pv}'"
        ))
    };
    assert_eq!(
        (rows("pv_late_1"), rows("pv_late_2")),
        ("0".into(), "0".into())
    );
    let dump = p.plain.chain(A).unwrap();
    let verdict = Interleaved::verdict(&dump);
    assert!(
        verdict.problems.is_empty() && verdict.accounted == 1 && verdict.unproven_rows == 0,
        "{verdict:?}"
    );
    // pv_old, pv_kept, pv_late_1: pv_late_2 was left out.
    assert_eq!(versions_chained(&dump), 3);
    // Without the checkpoint the purge records after its drop, the one
    // chained before its removals is still accounted for by the first.
    let last = dump.entries.last().unwrap().seq;
    let mut before = dump.clone();
    before.entries.retain(|e| e.seq < last);
    before.checkpoints.retain(|_, cp| cp.seq < last);
    let verdict = Interleaved::verdict(&before);
    assert!(
        verdict.problems.is_empty() && verdict.accounted == 1,
        "{verdict:?}"
    );

    // After the drop: the week is there again with this one row, not
    // chained (its week was purged): not proven.
    p.plain.commit(&[&one_finding("pv_late_3", 1)]).unwrap();
    assert_eq!(rows("pv_late_3"), "1");
    let dump = p.plain.chain(A).unwrap();
    assert_eq!(versions_chained(&dump), 3);
    let verdict = Interleaved::verdict(&dump);
    assert!(
        verdict.problems.is_empty() && verdict.accounted == 1 && verdict.unproven_rows == 1,
        "{verdict:?}"
    );
    // Deleted behind the collector's back: nothing claimed it; a kept
    // week's row is named.
    p.events
        .run("ALTER TABLE findings DELETE WHERE page_view IN ('pv_late_3', 'pv_kept')");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while rows("pv_late_3") != "0" || rows("pv_kept") != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the mutation did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let verdict = Interleaved::verdict(&p.plain.chain(A).unwrap());
    let said: Vec<&str> = verdict.problems.iter().map(|p| p.0.as_str()).collect();
    assert!(
        said.len() == 1 && said[0].contains("was deleted") && verdict.unproven_rows == 0,
        "{verdict:?}"
    );
}

/// How many row versions a chain dump's entries chain.
fn versions_chained(dump: &tagwatch_store::ChainDump) -> usize {
    dump.entries
        .iter()
        .filter(|e| e.kind == tagwatch_store::chain::VERSION)
        .count()
}

/// The window issue 15 left open: a collector inserts a report of a week
/// a purge then drops, and stalls between its insert and its chain's
/// commit until the purge has dropped the week and recorded its second
/// checkpoint. It chained the row after both, and `verify` named the row
/// deleted. Its commit now finds, under the site's head lock, the
/// checkpoint of a purge of that week, and leaves the row out (its batch
/// is still answered): verified. A report of a week kept, committed the
/// same way, is chained.
#[test]
fn a_collector_stalled_past_a_purge_chains_no_row_it_dropped() {
    let Some(p) = Interleaved::new(
        "stalled_commit",
        once_at(tagwatch_events::Step::Inserted, |other| {
            let purged = tagwatch_store::purge_all(&**other, "2026-03-02T00:00:00.000Z").unwrap();
            // pv_old and the stalled one: inserted before the purge read.
            assert_eq!(purged.findings, 2, "{purged:?}");
        }),
    ) else {
        return;
    };
    for (pv, day) in [("pv_old", 1), ("pv_kept", 3)] {
        p.plain.commit(&[&one_finding(pv, day)]).unwrap();
    }
    // Inserted, then (stalled) the purge runs whole, then it commits.
    p.stepped
        .commit(&[&one_finding("pv_stalled", 1), &one_finding("pv_kept_2", 4)])
        .unwrap();
    assert_eq!(
        p.events.value(&format!(
            "SELECT count() FROM findings WHERE site = '{A}' AND page_view = 'pv_stalled'"
        )),
        "0"
    );
    let dump = p.plain.chain(A).unwrap();
    let verdict = Interleaved::verdict(&dump);
    assert_eq!(
        verdict,
        tagwatch_store::chain_versions::Verdict::default(),
        "{verdict:?}"
    );
    // pv_old, pv_kept, pv_kept_2: pv_stalled was left out.
    assert_eq!(versions_chained(&dump), 3);
}

/// A collector stalled as above on a report inserted *after* the purge
/// read the weeks, of a site the purge read no row of: the purge records
/// its checkpoints in every site's chain when a report may still land in
/// the weeks it drops (their `before` is within the oldest age a report
/// may carry, and a day, of now), so the commit finds it and leaves the
/// row out. Dates near now: last week's rows, a purge before this week's
/// Monday; then one given a `before` two weeks ahead keeps this week.
#[test]
fn a_late_report_of_a_site_the_purge_read_nothing_of_is_left_out_too() {
    use std::sync::mpsc;
    use std::sync::Mutex;
    use tagwatch_store::timefmt::{iso_from_ms, now_ms};
    const DAY_MS: i64 = 86_400_000;
    let now = now_ms();
    let last_week = iso_from_ms(now - 7 * DAY_MS);
    let today = iso_from_ms(now);
    let before = format!(
        "{}T00:00:00.000Z",
        tagwatch_store::chain_versions::week_start(now)
    );
    let report = |site: &str, pv: &str, observed: &str| Batch {
        findings: vec![finding(
            site,
            pv,
            monitor(FindingType::ScriptBeforeConsent),
            "ga4",
            "https://shop.example/",
            1,
            observed,
            &today,
        )],
        ..Batch::default()
    };
    let Some(events) = TestEvents::create("late_no_rows") else {
        return;
    };
    let dir = temp_dir("late_no_rows");
    let control = sqlite(&dir, "control.db");
    // The stalled collector: at `Inserted` it says so, then waits for go.
    let (inserted_tx, inserted_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let collector = {
        let (inserted_tx, go_rx) = (Mutex::new(inserted_tx), Mutex::new(go_rx));
        tagwatch_events::open_with_steps(&events.url, control.clone(), move |step| {
            if step == tagwatch_events::Step::Inserted {
                inserted_tx.lock().unwrap().send(()).unwrap();
                go_rx.lock().unwrap().recv().unwrap();
            }
        })
        .unwrap()
    };
    // The purge: once it has read the weeks' rows, the collector commits
    // B's late report; the purge goes on once the report is inserted.
    let (commit_tx, commit_rx) = mpsc::channel();
    let purger = {
        let collector = collector.clone();
        let late = report(B, "pv_late", &last_week);
        let (commit_tx, inserted_rx) = (Mutex::new(commit_tx), Mutex::new(inserted_rx));
        tagwatch_events::open_with_steps(&events.url, control.clone(), move |step| {
            if step == tagwatch_events::Step::PurgeRead {
                let (collector, late) = (collector.clone(), late.clone());
                let commit = std::thread::spawn(move || collector.commit(&[&late]));
                commit_tx.lock().unwrap().send(commit).unwrap();
                inserted_rx.lock().unwrap().recv().unwrap();
            }
        })
        .unwrap()
    };
    purger.sign_checkpoints(tagwatch_store::chain::SigningKey::from_bytes(&[7; 32]));
    // Site A has a row of last week and one of today; site B none.
    purger.commit(&[&report(A, "pv_old", &last_week)]).unwrap();
    purger.commit(&[&report(A, "pv_today", &today)]).unwrap();
    // The purge reads, the commit inserts and stalls, the purge drops the
    // week and records its checkpoints, then the collector commits.
    let purged = tagwatch_store::purge_all(&*purger, &before).unwrap();
    let commit = commit_rx.recv().unwrap();
    go_tx.send(()).unwrap();
    commit.join().unwrap().unwrap();
    assert_eq!(purged.findings, 1, "{purged:?}");
    assert_eq!(
        events.value(&format!(
            "SELECT count() FROM findings WHERE site = '{B}' AND page_view = 'pv_late'"
        )),
        "0"
    );
    let key = tagwatch_store::chain::SigningKey::from_bytes(&[7; 32]).verifying_key();
    for site in [A, B] {
        let dump = purger.chain(site).unwrap();
        let verdict = dump.check(Some(&key));
        assert_eq!(
            verdict,
            tagwatch_store::chain_versions::Verdict::default(),
            "{site}: {verdict:?}"
        );
    }
    let b = purger.chain(B).unwrap();
    assert_eq!(versions_chained(&b), 0, "{:?}", b.entries);
    assert_eq!(b.checkpoints.len(), 2, "{:?}", b.checkpoints);
    // A purge given a `before` two weeks ahead keeps the current week
    // (reports still land in it): nothing goes, nothing is recorded.
    let ahead = iso_from_ms(now + 14 * DAY_MS);
    let purged = tagwatch_store::purge_all(&*purger, &ahead).unwrap();
    assert_eq!(purged.findings, 0, "{purged:?}");
    assert_eq!(
        events.value(&format!(
            "SELECT count() FROM findings WHERE site = '{A}' AND page_view = 'pv_today'"
        )),
        "1"
    );
    assert_eq!(purger.chain(B).unwrap().checkpoints.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
