//! The events store's reports in the tamper-evident chain
//! (docs/evidence.md#clickhouse---events): each finding, health and
//! inventory row version a group commit inserts — it never changes after —
//! is chained by the SQL control plane as a `version`, `health-version` or
//! `inventory-version` entry (`tagwatch_store::Store::chain_versions`),
//! after ClickHouse accepted the insert.
//!
//! A row version is named by its **row key**: the first 8 bytes, as a
//! little-endian integer with its top bit cleared (a number from 0 to
//! 2^63 − 1, as a finding's id is), of the SHA-256 of the ASCII tag
//! `tagwatch-row-key-v1`, then `site`, `page_view`, `type`, `vendor`,
//! `evidence` (each its UTF-8 length as 8 bytes little-endian, then the
//! bytes) and `token` (8 bytes little-endian): the table's sorting key,
//! under which ClickHouse replaces a row inserted again. Its digest is the
//! chain's canonical finding form (`tagwatch_store::chain`) of the row as
//! ClickHouse holds it, with `id` = the row key, `category` and `release`
//! NULL when stored empty, `evidence_kind` always text. [`written`] makes
//! it from what a commit inserts and [`stored`] from what a read answers:
//! the same bytes when the row was not changed.
//!
//! Health and inventory rows likewise, each named by the hash of its
//! table's sorting key, made the same way: the tag `tagwatch-health-key-v1`,
//! then `site`, `at` (text), `token` and `seq` (8 bytes little-endian); the
//! tag `tagwatch-inventory-key-v1`, then `site`, `page_view`, `at`,
//! `received_at` (text) and `token`. Their digests are the SQL store's
//! forms `tagwatch-health-v1` and `tagwatch-inventory-v1`
//! (`tagwatch_store::chain_rows`) of the row as ClickHouse holds it: `id`
//! the row key, `release` NULL when stored empty, an inventory's vendor
//! and host arrays as its child rows (a vendor's hosts, regions and
//! cookies as the JSON text the SQL store keeps).

use serde_json::Value;
use tagwatch_store::chain::{sha256, FindingState, FindingStateRef, Stored, VERSION};
use tagwatch_store::chain_rows::{
    self, HealthState, HostRow, InventoryParts, InventoryState, RowUsage, VendorRow,
    HEALTH_VERSION, INVENTORY_VERSION,
};
use tagwatch_store::chain_versions::{Inserted, Version};
use tagwatch_store::{FindingRecord, HealthRecord, InventoryRecord, StoreError};

use crate::client::{int, opt_text, quote, text, texts, Client};
use crate::schema::SiteTables;

/// A key of `tag`, `texts` and `ints` (module comment): the first 8 bytes
/// of their SHA-256, top bit cleared.
fn key(tag: &str, texts: &[&str], ints: &[u64]) -> i64 {
    let mut bytes = Vec::with_capacity(
        tag.len() + 8 * (texts.len() + ints.len()) + texts.iter().map(|t| t.len()).sum::<usize>(),
    );
    bytes.extend_from_slice(tag.as_bytes());
    for s in texts {
        let len = u64::try_from(s.len()).unwrap_or(u64::MAX - 1);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(s.as_bytes());
    }
    for n in ints {
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    let hash = sha256(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(hash.get(..8).unwrap_or(&[0; 8]));
    i64::from_le_bytes(first) & i64::MAX
}

/// The row key of a finding row version (module comment).
pub fn row_key(
    site: &str,
    page_view: &str,
    kind: &str,
    vendor: &str,
    evidence: &str,
    token: u64,
) -> i64 {
    key(
        "tagwatch-row-key-v1",
        &[site, page_view, kind, vendor, evidence],
        &[token],
    )
}

/// The row key of a health row (module comment).
pub fn health_key(site: &str, at: &str, token: u64, seq: u64) -> i64 {
    key("tagwatch-health-key-v1", &[site, at], &[token, seq])
}

/// The row key of an inventory row version (module comment).
pub fn inventory_key(site: &str, page_view: &str, at: &str, received_at: &str, token: u64) -> i64 {
    key(
        "tagwatch-inventory-key-v1",
        &[site, page_view, at, received_at],
        &[token],
    )
}

/// `None` for a text ClickHouse stores empty for none.
fn unless_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The row version a commit inserts for `f` (merged: `count`, `at`) in the
/// batch of `token`, as [`stored`] will read it back, borrowed.
pub fn written<'a>(
    f: &'a FindingRecord,
    count: i64,
    at: &'a str,
    token: u64,
) -> FindingStateRef<'a> {
    let id = row_key(
        &f.site,
        &f.page_view,
        f.kind.as_str(),
        &f.vendor,
        &f.evidence,
        token,
    );
    let release = f.release.as_deref().filter(|r| !r.is_empty());
    FindingStateRef::of(f, id, count, at, release)
}

/// The entry a commit appends for the finding row version it inserts for
/// `f` ([`written`]).
pub fn inserted(f: &FindingRecord, count: i64, at: &str, token: u64) -> Inserted {
    let state = written(f, count, at, token);
    Inserted {
        site: f.site.as_str().to_owned(),
        kind: VERSION,
        row: state.id,
        at: at.to_owned(),
        digest: state.digest(),
    }
}

/// The entry a commit appends for the health row it inserts for `h`
/// ([`health_written`]).
pub fn health_inserted(h: &HealthRecord, token: u64, seq: u64) -> Inserted {
    let state = health_written(h, token, seq);
    Inserted {
        kind: HEALTH_VERSION,
        row: state.id,
        digest: state.digest(),
        site: state.site,
        at: state.at,
    }
}

/// The columns [`stored`] reads, in its order.
pub const COLUMNS: &str =
    "site, page_view, page, type, vendor, category, evidence_kind, evidence, \
    consent_source, consent, count, at, received_at, user_agent, raw, token, release";

/// A `UInt64` cell.
fn unsigned(v: &Value) -> Result<u64, StoreError> {
    v.as_u64().ok_or_else(|| StoreError::Events {
        message: format!("expected a token, got {v}"),
        unreachable: false,
    })
}

/// A row version as read (`COLUMNS`), and its token.
pub fn stored(row: &[Value]) -> Result<(FindingState, u64), StoreError> {
    let cell = |i: usize| row.get(i).unwrap_or(&Value::Null);
    let token = unsigned(cell(15))?;
    let (site, page_view, kind, vendor, evidence) = (
        text(cell(0))?,
        text(cell(1))?,
        text(cell(3))?,
        text(cell(4))?,
        text(cell(7))?,
    );
    let state = FindingState {
        id: row_key(&site, &page_view, &kind, &vendor, &evidence, token),
        page: text(cell(2))?,
        category: unless_empty(text(cell(5))?),
        evidence_kind: Some(text(cell(6))?),
        consent_source: opt_text(cell(8))?,
        consent: text(cell(9))?,
        count: int(cell(10))?,
        at: text(cell(11))?,
        received_at: text(cell(12))?,
        user_agent: text(cell(13))?,
        raw: text(cell(14))?,
        release: unless_empty(text(cell(16))?),
        site,
        page_view,
        kind,
        vendor,
        evidence,
    };
    Ok((state, token))
}

/// A site's finding row versions (`filter`: more `AND …` conditions), in
/// the order they were observed, each with its token. A version ClickHouse
/// holds twice (inserted again, not merged yet) is answered twice.
pub fn versions(
    c: &Client,
    site: &str,
    filter: &str,
) -> Result<Vec<(FindingState, u64)>, StoreError> {
    let table = SiteTables {
        target: c.target(),
        site,
    }
    .of("findings");
    c.rows(&format!(
        "SELECT {COLUMNS} FROM {table} WHERE site = {}{filter} ORDER BY at, received_at, token",
        quote(site)
    ))?
    .iter()
    .map(|row| stored(row))
    .collect()
}

/// How a reader finds a row version in ClickHouse.
pub fn label(f: &FindingState, token: u64) -> String {
    format!(
        "finding row {} (token {token}, page view {}, {} of {}, at {})",
        f.id, f.page_view, f.kind, f.vendor, f.at
    )
}

/// A row version for the chain check.
pub fn version(f: &FindingState, token: u64) -> Version {
    Version {
        kind: VERSION,
        row: f.id,
        stored: Stored {
            digest: f.digest(),
            at: f.at.clone(),
        },
        label: label(f, token),
    }
}

/// The health row a commit inserts for `h` (the `seq`-th of the batch of
/// `token`), as [`health_stored`] will read it back.
pub fn health_written(h: &HealthRecord, token: u64, seq: u64) -> HealthState {
    HealthState {
        id: health_key(&h.site, &h.at, token, seq),
        site: h.site.as_str().to_owned(),
        page_view: h.page_view.as_deref().map(str::to_owned),
        page: h.page.as_str().to_owned(),
        status: h.status.as_str().to_owned(),
        reason: h.reason.clone(),
        at: h.at.as_str().to_owned(),
        received_at: h.received_at.as_str().to_owned(),
        user_agent: h.user_agent.as_str().to_owned(),
        raw: h.raw.clone(),
        release: h
            .release
            .as_deref()
            .map(str::to_owned)
            .and_then(unless_empty),
    }
}

/// The columns [`health_stored`] reads, in its order.
pub const HEALTH_COLUMNS: &str =
    "site, page_view, page, status, reason, at, received_at, user_agent, raw, token, seq, release";

/// A health row as read ([`HEALTH_COLUMNS`]), and its token.
pub fn health_stored(row: &[Value]) -> Result<(HealthState, u64), StoreError> {
    let cell = |i: usize| row.get(i).unwrap_or(&Value::Null);
    let (site, at, token, seq) = (
        text(cell(0))?,
        text(cell(5))?,
        unsigned(cell(9))?,
        unsigned(cell(10))?,
    );
    let state = HealthState {
        id: health_key(&site, &at, token, seq),
        page_view: opt_text(cell(1))?,
        page: text(cell(2))?,
        status: text(cell(3))?,
        reason: opt_text(cell(4))?,
        received_at: text(cell(6))?,
        user_agent: text(cell(7))?,
        raw: text(cell(8))?,
        release: unless_empty(text(cell(11))?),
        site,
        at,
    };
    Ok((state, token))
}

/// The entry a commit appends for the inventory row it inserts for `inv`
/// in the batch of `token`: its digest hashed from the record (the row's
/// values), no copy of its strings.
pub fn inventory_inserted(inv: &InventoryRecord, token: u64) -> Inserted {
    let id = inventory_key(&inv.site, &inv.page_view, &inv.at, &inv.received_at, token);
    let lists: Vec<[String; 3]> = inv
        .vendors
        .iter()
        .map(|v| [&v.hosts, &v.regions, &v.cookies].map(|l| chain_rows::json_list(l)))
        .collect();
    let release = inv.release.as_deref().filter(|r| !r.is_empty());
    let vendors = inv
        .vendors
        .iter()
        .zip(&lists)
        .map(|(v, [h, r, k])| {
            (
                v.vendor.as_str(),
                RowUsage::from(&v.usage).ints(),
                [h.as_str(), r.as_str(), k.as_str()],
            )
        })
        .collect();
    let hosts = inv
        .unclassified
        .iter()
        .map(|h| (h.host.as_str(), RowUsage::from(&h.usage).ints()))
        .collect();
    let parts = InventoryParts::of(inv, id, release, vendors, hosts);
    Inserted {
        site: inv.site.as_str().to_owned(),
        kind: INVENTORY_VERSION,
        row: id,
        at: inv.at.as_str().to_owned(),
        digest: parts.digest(),
    }
}

/// The columns [`inventory_stored`] reads, in its order.
pub const INVENTORY_COLUMNS: &str = "site, page_view, page, at, received_at, user_agent, raw, \
    v_vendor, v_requests, v_script_requests, v_transfer_bytes, v_encoded_bytes, v_duration_ms, \
    v_hosts, v_regions, v_cookies, \
    h_host, h_requests, h_script_requests, h_transfer_bytes, h_encoded_bytes, h_duration_ms, \
    token, release";

/// A list-of-integers cell.
fn ints(v: &Value) -> Result<Vec<i64>, StoreError> {
    match v {
        Value::Array(items) => items.iter().map(int).collect(),
        other => Err(StoreError::Events {
            message: format!("expected a list, got {other}"),
            unreachable: false,
        }),
    }
}

/// A list-of-lists-of-text cell.
fn lists(v: &Value) -> Result<Vec<Vec<String>>, StoreError> {
    match v {
        Value::Array(items) => items.iter().map(texts).collect(),
        other => Err(StoreError::Events {
            message: format!("expected a list, got {other}"),
            unreachable: false,
        }),
    }
}

/// The usage columns of `n` child rows from five arrays (a shorter array
/// reads as zeros: ClickHouse keeps what it was given).
fn usages(cells: [&Value; 5], n: usize) -> Result<Vec<RowUsage>, StoreError> {
    let [r, s, t, e, d] = cells.map(ints);
    let (r, s, t, e, d) = (r?, s?, t?, e?, d?);
    let at = |l: &[i64], i: usize| l.get(i).copied().unwrap_or(0);
    Ok((0..n)
        .map(|i| RowUsage {
            requests: at(&r, i),
            script_requests: at(&s, i),
            transfer_bytes: at(&t, i),
            encoded_bytes: at(&e, i),
            duration_ms: at(&d, i),
        })
        .collect())
}

/// An inventory row as read ([`INVENTORY_COLUMNS`]), its vendor and host
/// arrays as child rows, and its token.
pub fn inventory_stored(row: &[Value]) -> Result<(InventoryState, u64), StoreError> {
    let cell = |i: usize| row.get(i).unwrap_or(&Value::Null);
    let vendors = texts(cell(7))?;
    let usage = usages(
        [cell(8), cell(9), cell(10), cell(11), cell(12)],
        vendors.len(),
    )?;
    let [hosts, regions, cookies] = [cell(13), cell(14), cell(15)].map(lists);
    let (hosts, regions, cookies) = (hosts?, regions?, cookies?);
    let json =
        |l: &[Vec<String>], i: usize| chain_rows::json_list(l.get(i).map_or(&[], Vec::as_slice));
    let vendors = vendors
        .into_iter()
        .zip(usage)
        .enumerate()
        .map(|(i, (vendor, usage))| VendorRow {
            vendor,
            usage,
            hosts: json(&hosts, i),
            regions: json(&regions, i),
            cookies: json(&cookies, i),
        })
        .collect();
    let host_names = texts(cell(16))?;
    let usage = usages(
        [cell(17), cell(18), cell(19), cell(20), cell(21)],
        host_names.len(),
    )?;
    let token = unsigned(cell(22))?;
    let (site, page_view, at, received_at) = (
        text(cell(0))?,
        text(cell(1))?,
        text(cell(3))?,
        text(cell(4))?,
    );
    let state = InventoryState {
        id: inventory_key(&site, &page_view, &at, &received_at, token),
        page: text(cell(2))?,
        user_agent: text(cell(5))?,
        raw: text(cell(6))?,
        release: unless_empty(text(cell(23))?),
        vendors,
        hosts: host_names
            .into_iter()
            .zip(usage)
            .map(|(host, usage)| HostRow { host, usage })
            .collect(),
        site,
        page_view,
        at,
        received_at,
    };
    Ok((state, token))
}

/// A site's health rows (`filter`: more `AND …` conditions), in the order
/// they were observed, each with its token.
pub fn health_rows(
    c: &Client,
    site: &str,
    filter: &str,
) -> Result<Vec<(HealthState, u64)>, StoreError> {
    let table = SiteTables {
        target: c.target(),
        site,
    }
    .of("health");
    c.rows(&format!(
        "SELECT {HEALTH_COLUMNS} FROM {table} WHERE site = {}{filter} ORDER BY at, received_at, token, seq",
        quote(site)
    ))?
    .iter()
    .map(|row| health_stored(row))
    .collect()
}

/// A site's inventory row versions (`filter`: more `AND …` conditions), in
/// the order they were observed, each with its token.
pub fn inventory_rows(
    c: &Client,
    site: &str,
    filter: &str,
) -> Result<Vec<(InventoryState, u64)>, StoreError> {
    let table = SiteTables {
        target: c.target(),
        site,
    }
    .of("inventories");
    c.rows(&format!(
        "SELECT {INVENTORY_COLUMNS} FROM {table} WHERE site = {}{filter} ORDER BY at, received_at, token",
        quote(site)
    ))?
    .iter()
    .map(|row| inventory_stored(row))
    .collect()
}

/// A health row for the chain check.
pub fn health_version(h: &HealthState, token: u64) -> Version {
    Version {
        kind: HEALTH_VERSION,
        row: h.id,
        stored: h.stored(),
        label: format!(
            "health row {} (token {token}, {}, {} of page view {}, at {})",
            h.id,
            h.status,
            h.page,
            h.page_view.as_deref().unwrap_or("none"),
            h.at
        ),
    }
}

/// An inventory row version for the chain check.
pub fn inventory_version(inv: &InventoryState, token: u64) -> Version {
    Version {
        kind: INVENTORY_VERSION,
        row: inv.id,
        stored: inv.stored(),
        label: format!(
            "inventory row {} (token {token}, page view {}, at {})",
            inv.id, inv.page_view, inv.at
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN_ROW_KEY: i64 = 5_386_308_650_551_999_654;
    /// Cross-checked with Python's hashlib (the module comment's bytes).
    const GOLDEN_HEALTH_KEY: i64 = 1_286_557_680_483_766_743;
    const GOLDEN_INVENTORY_KEY: i64 = 5_368_406_567_319_911_977;

    /// The health and inventory row keys' bytes, fixed likewise; fields
    /// do not run into each other.
    #[test]
    fn health_and_inventory_keys_are_fixed() {
        let at = "2026-03-01T00:00:00.000Z";
        let received = "2026-03-01T00:00:01.000Z";
        assert_eq!(health_key("tw_a", at, 7, 2), GOLDEN_HEALTH_KEY);
        assert_ne!(health_key("tw_a", at, 7, 3), GOLDEN_HEALTH_KEY);
        assert_ne!(health_key("tw_a", at, 8, 2), GOLDEN_HEALTH_KEY);
        assert_ne!(
            health_key("tw_ab", "x", 1, 1),
            health_key("tw_a", "bx", 1, 1)
        );
        assert_eq!(
            inventory_key("tw_a", "pv", at, received, 7),
            GOLDEN_INVENTORY_KEY
        );
        assert_ne!(
            inventory_key("tw_a", "pv", received, at, 7),
            GOLDEN_INVENTORY_KEY
        );
        assert_ne!(
            inventory_key("tw_a", "pvx", "a", "b", 1),
            inventory_key("tw_a", "pv", "xa", "b", 1)
        );
        // The three tables' keys of the same texts differ (their tags).
        assert_ne!(
            key("tagwatch-health-key-v1", &["a"], &[1]),
            key("tagwatch-inventory-key-v1", &["a"], &[1])
        );
    }

    fn usage(n: i64) -> tagwatch_store::Usage {
        tagwatch_store::Usage {
            requests: n,
            script_requests: n + 1,
            transfer_bytes: n + 2,
            encoded_bytes: n + 3,
            duration_ms: n + 4,
        }
    }

    /// What a commit hashes of the rows it inserts is what a read hashes
    /// of the rows ClickHouse answers (its JSON), and the forms are the SQL
    /// store's: an edit of any vendor or host number changes the digest.
    #[test]
    fn written_and_stored_rows_hash_alike() {
        use serde_json::json;
        use tagwatch_core::report::HealthStatus;
        use tagwatch_store::{InventoryHost, InventoryVendor};
        let inv = InventoryRecord {
            site: "tw_a".into(),
            page_view: "pv".into(),
            page: "https://shop.example/".into(),
            vendors: vec![
                InventoryVendor {
                    vendor: "ga4".into(),
                    usage: usage(10),
                    hosts: vec!["www.google-analytics.com".into()],
                    regions: vec!["US".into()],
                    cookies: vec!["_ga".into(), "\"q\"".into()],
                },
                InventoryVendor {
                    vendor: "hotjar".into(),
                    usage: usage(20),
                    hosts: vec![],
                    regions: vec![],
                    cookies: vec![],
                },
            ],
            unclassified: vec![InventoryHost {
                host: "cdn.example".into(),
                usage: usage(30),
            }],
            at: "2026-03-01T00:00:00.000Z".into(),
            received_at: "2026-03-01T00:00:01.000Z".into(),
            user_agent: "UA".into(),
            raw: "{}".into(),
            release: Some("r1".into()),
        };
        let row = |vendor_requests: i64| {
            vec![
                json!("tw_a"),
                json!("pv"),
                json!("https://shop.example/"),
                json!("2026-03-01T00:00:00.000Z"),
                json!("2026-03-01T00:00:01.000Z"),
                json!("UA"),
                json!("{}"),
                json!(["ga4", "hotjar"]),
                json!([vendor_requests, 20]),
                json!([11, 21]),
                json!([12, 22]),
                json!([13, 23]),
                json!([14, 24]),
                json!([["www.google-analytics.com"], []]),
                json!([["US"], []]),
                json!([["_ga", "\"q\""], []]),
                json!(["cdn.example"]),
                json!([30]),
                json!([31]),
                json!([32]),
                json!([33]),
                json!([34]),
                json!(7),
                json!("r1"),
            ]
        };
        let written = inventory_inserted(&inv, 7);
        let (stored, token) = inventory_stored(&row(10)).unwrap();
        assert_eq!(token, 7);
        assert_eq!(stored.id, written.row);
        assert_eq!(stored.digest(), written.digest);
        assert_eq!(stored.vendors[0].cookies, r#"["_ga","\"q\""]"#);
        let (edited, _) = inventory_stored(&row(11)).unwrap();
        assert_eq!(edited.id, written.row);
        assert_ne!(edited.digest(), written.digest);

        let h = HealthRecord {
            site: "tw_a".into(),
            page_view: None,
            page: "https://shop.example/".into(),
            status: HealthStatus::Tampered,
            reason: Some("csp".into()),
            at: "2026-03-01T00:00:00.000Z".into(),
            received_at: "2026-03-01T00:00:01.000Z".into(),
            user_agent: "UA".into(),
            raw: "{}".into(),
            release: None,
        };
        let written = health_inserted(&h, 7, 2);
        let row = vec![
            json!("tw_a"),
            serde_json::Value::Null,
            json!("https://shop.example/"),
            json!(HealthStatus::Tampered.as_str()),
            json!("csp"),
            json!("2026-03-01T00:00:00.000Z"),
            json!("2026-03-01T00:00:01.000Z"),
            json!("UA"),
            json!("{}"),
            json!(7),
            json!(2),
            json!(""),
        ];
        let (stored, _) = health_stored(&row).unwrap();
        assert_eq!((stored.id, stored.digest()), (written.row, written.digest));
        assert_eq!(written.row, health_key(&h.site, &h.at, 7, 2));
    }

    /// The row key's bytes, fixed: a change is a new tag.
    #[test]
    fn row_keys_are_fixed() {
        let k = row_key("tw_a", "pv", "cookie_before_consent", "intercom", "{}", 7);
        assert_eq!(
            k,
            row_key("tw_a", "pv", "cookie_before_consent", "intercom", "{}", 7)
        );
        assert_ne!(
            k,
            row_key("tw_a", "pv", "cookie_before_consent", "intercom", "{}", 8)
        );
        // Fields do not run into each other.
        assert_ne!(
            row_key("tw_a", "pvx", "t", "v", "e", 1),
            row_key("tw_a", "pv", "xt", "v", "e", 1)
        );
        let mut bytes = b"tagwatch-row-key-v1".to_vec();
        for s in ["tw_a", "pv", "cookie_before_consent", "intercom", "{}"] {
            bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
            bytes.extend_from_slice(s.as_bytes());
        }
        bytes.extend_from_slice(&7u64.to_le_bytes());
        let h = sha256(&bytes);
        assert_eq!(k, i64::from_le_bytes(h[..8].try_into().unwrap()) & i64::MAX);
        assert!(k >= 0);
        // Fixed: chains and bundles made with it name rows by it.
        assert_eq!(
            k, GOLDEN_ROW_KEY,
            "the row key changed: make a new tag instead"
        );
    }
}
