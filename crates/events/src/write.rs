//! A group commit as ClickHouse INSERTs: one statement per table for the
//! whole group, rows as `VALUES` literals ([`quote`]).
//!
//! Each batch's rows carry its token (a hash of the batch), so a batch
//! inserted twice — the group's insert retried batch by batch after a
//! failure, or a statement whose answer was lost — replaces its own rows
//! (`ReplacingMergeTree`, the token is in every sorting key). Within a
//! batch, findings are merged by dedupe key and inventories by page view
//! first, with the SQL store's rules, so one batch has one row per key.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};

use tagwatch_store::chain_versions::Inserted;
use tagwatch_store::{Batch, FindingRecord, InventoryRecord, Usage};

use crate::client::{quote, quote_array};

/// The partition day of an ISO 8601 `at`, as a literal (written once:
/// `verify` compares it with a checkpoint's `before`).
fn day(at: &str) -> String {
    quote(tagwatch_store::chain_versions::partition_day(at))
}

/// A number that names this batch among all batches: the same batch gives
/// the same token in this process (retries), two batches differ (they
/// differ in `received_at` or content).
fn token(batch: &Batch) -> u64 {
    let mut h = DefaultHasher::new();
    for f in &batch.findings {
        (
            &f.site,
            &f.page_view,
            f.kind.as_str(),
            &f.vendor,
            &f.evidence,
        )
            .hash(&mut h);
        (f.count, &f.at, &f.received_at, &f.user_agent, &f.raw).hash(&mut h);
        f.release.hash(&mut h);
    }
    for r in &batch.health {
        (&r.site, &r.page_view, &r.page, r.status.as_str(), &r.reason).hash(&mut h);
        (&r.at, &r.received_at, &r.user_agent, &r.raw, &r.release).hash(&mut h);
    }
    for inv in &batch.inventories {
        (
            &inv.site,
            &inv.page_view,
            &inv.at,
            &inv.received_at,
            &inv.raw,
            &inv.release,
        )
            .hash(&mut h);
    }
    h.finish()
}

/// A batch's findings, one per dedupe key: the first's fields, the
/// largest count (the sum for additive ones) and the earliest `at`.
fn merged_findings(batch: &Batch) -> Vec<(&FindingRecord, i64, &str)> {
    type Key<'a> = (&'a str, &'a str, &'static str, &'a str, &'a str);
    let mut merged: BTreeMap<Key<'_>, (&FindingRecord, i64, &str)> = BTreeMap::new();
    for f in &batch.findings {
        let key = (
            f.site.as_str(),
            f.page_view.as_str(),
            f.kind.as_str(),
            f.vendor.as_str(),
            f.evidence.as_str(),
        );
        merged
            .entry(key)
            .and_modify(|(_, count, at)| {
                *count = if f.kind.additive() {
                    count.saturating_add(f.count)
                } else {
                    (*count).max(f.count)
                };
                if f.at.as_str() < *at {
                    *at = &f.at;
                }
            })
            .or_insert((f, f.count, &f.at));
    }
    merged.into_values().collect()
}

/// A batch's inventories, one per page view: the one observed last (on
/// equal `at`, the later in the batch).
fn latest_inventories(batch: &Batch) -> Vec<&InventoryRecord> {
    let mut kept: BTreeMap<(&str, &str), &InventoryRecord> = BTreeMap::new();
    for inv in &batch.inventories {
        kept.entry((&inv.site, &inv.page_view))
            .and_modify(|k| {
                if inv.at >= k.at {
                    *k = inv;
                }
            })
            .or_insert(inv);
    }
    kept.into_values().collect()
}

/// A release as stored: `''` for none (`schema::V2_RELEASE`).
fn release(r: Option<&str>) -> String {
    quote(r.unwrap_or(""))
}

/// The INSERT statements of a group commit (none for an empty table), and
/// the entries of the row versions they insert — findings, health
/// reports, inventories — for the chain (`chain.rs`).
pub fn inserts(batches: &[&Batch]) -> (Vec<String>, Vec<Inserted>) {
    let mut versions = Vec::new();
    let mut findings = String::new();
    let mut health = String::new();
    let mut inventories = String::new();
    for batch in batches {
        let token = token(batch);
        for (f, count, at) in merged_findings(batch) {
            versions.push(crate::chain::inserted(f, count, at, token));
            row(
                &mut findings,
                &[
                    quote(&f.site),
                    quote(&f.page_view),
                    quote(&f.page),
                    quote(f.kind.as_str()),
                    quote(&f.vendor),
                    quote(f.category.map_or("", |c| c.as_str())),
                    quote(f.evidence_kind.as_str()),
                    quote(&f.evidence),
                    f.consent_source
                        .as_ref()
                        .map_or("NULL".to_owned(), |s| quote(s.as_str())),
                    quote(&f.consent),
                    count.to_string(),
                    quote(at),
                    quote(&f.received_at),
                    quote(&f.user_agent),
                    quote(&f.raw),
                    token.to_string(),
                    day(at),
                    release(f.release.as_deref()),
                ],
            );
        }
        for (seq, h) in batch.health.iter().enumerate() {
            versions.push(crate::chain::health_inserted(
                h,
                token,
                u64::try_from(seq).unwrap_or(u64::MAX),
            ));
            let nullable = |s: Option<&str>| s.map_or("NULL".to_owned(), quote);
            row(
                &mut health,
                &[
                    quote(&h.site),
                    nullable(h.page_view.as_deref()),
                    quote(&h.page),
                    quote(h.status.as_str()),
                    nullable(h.reason.as_deref()),
                    quote(&h.at),
                    quote(&h.received_at),
                    quote(&h.user_agent),
                    quote(&h.raw),
                    token.to_string(),
                    seq.to_string(),
                    day(&h.at),
                    release(h.release.as_deref()),
                ],
            );
        }
        for inv in latest_inventories(batch) {
            versions.push(crate::chain::inventory_inserted(inv, token));
            let v = &inv.vendors;
            let h = &inv.unclassified;
            let ints = |values: Vec<i64>| {
                let mut out = String::from("[");
                for (i, n) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{n}");
                }
                out.push(']');
                out
            };
            let lists = |values: Vec<&Vec<String>>| {
                let items: Vec<String> = values.into_iter().map(|l| quote_array(l)).collect();
                format!("[{}]", items.join(","))
            };
            let usage = |u: Vec<&Usage>| {
                [
                    ints(u.iter().map(|u| u.requests).collect()),
                    ints(u.iter().map(|u| u.script_requests).collect()),
                    ints(u.iter().map(|u| u.transfer_bytes).collect()),
                    ints(u.iter().map(|u| u.encoded_bytes).collect()),
                    ints(u.iter().map(|u| u.duration_ms).collect()),
                ]
            };
            let [vr, vs, vt, ve, vd] = usage(v.iter().map(|v| &v.usage).collect());
            let [hr, hs, ht, he, hd] = usage(h.iter().map(|h| &h.usage).collect());
            row(
                &mut inventories,
                &[
                    quote(&inv.site),
                    quote(&inv.page_view),
                    quote(&inv.page),
                    quote(&inv.at),
                    quote(&inv.received_at),
                    quote(&inv.user_agent),
                    quote(&inv.raw),
                    quote_array(&v.iter().map(|v| v.vendor.clone()).collect::<Vec<_>>()),
                    vr,
                    vs,
                    vt,
                    ve,
                    vd,
                    lists(v.iter().map(|v| &v.hosts).collect()),
                    lists(v.iter().map(|v| &v.regions).collect()),
                    lists(v.iter().map(|v| &v.cookies).collect()),
                    quote_array(&h.iter().map(|h| h.host.clone()).collect::<Vec<_>>()),
                    hr,
                    hs,
                    ht,
                    he,
                    hd,
                    token.to_string(),
                    day(&inv.at),
                    release(inv.release.as_deref()),
                ],
            );
        }
    }
    let mut out = Vec::new();
    for (rows, head) in [
        (
            findings,
            "INSERT INTO findings (site, page_view, page, type, vendor, category, evidence_kind, evidence, consent_source, consent, \
             count, at, received_at, user_agent, raw, token, day, release) VALUES ",
        ),
        (
            health,
            "INSERT INTO health (site, page_view, page, status, reason, at, received_at, user_agent, \
             raw, token, seq, day, release) VALUES ",
        ),
        (
            inventories,
            "INSERT INTO inventories (site, page_view, page, at, received_at, user_agent, raw, \
             v_vendor, v_requests, v_script_requests, v_transfer_bytes, v_encoded_bytes, v_duration_ms, \
             v_hosts, v_regions, v_cookies, h_host, h_requests, h_script_requests, h_transfer_bytes, \
             h_encoded_bytes, h_duration_ms, token, day, release) VALUES ",
        ),
    ] {
        if !rows.is_empty() {
            out.push(format!("{head}{rows}"));
        }
    }
    (out, versions)
}

/// Appends one `(…)` tuple of values.
fn row(out: &mut String, values: &[String]) {
    if !out.is_empty() {
        out.push_str(",\n");
    }
    out.push('(');
    out.push_str(&values.join(","));
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_days_stay_in_range() {
        assert_eq!(day("2026-01-02T03:04:05.000Z"), "'2026-01-02'");
        assert_eq!(day("9999-12-31T23:59:59.999Z"), "'2105-12-31'");
        assert_eq!(day("1970-01-01T00:00:00.000Z"), "'1970-01-01'");
        assert_eq!(day("garbage"), "'1970-01-01'");
        assert_eq!(day("2026-1-02T"), "'1970-01-01'");
    }
}
