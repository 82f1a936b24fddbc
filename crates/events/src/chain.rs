//! The events store's findings in the tamper-evident chain
//! (docs/evidence.md#clickhouse---events): each finding row version a
//! group commit inserts — it never changes after — is chained by the SQL
//! control plane as a `version` entry (`tagwatch_store::Store::chain_versions`),
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

use serde_json::Value;
use tagwatch_store::chain::{sha256, FindingState, Stored};
use tagwatch_store::chain_versions::Version;
use tagwatch_store::{FindingRecord, StoreError};

use crate::client::{int, opt_text, quote, text, Client};
use crate::schema::SiteTables;

/// The row key of a row version (module comment).
pub fn row_key(
    site: &str,
    page_view: &str,
    kind: &str,
    vendor: &str,
    evidence: &str,
    token: u64,
) -> i64 {
    let mut bytes = Vec::with_capacity(64 + evidence.len());
    bytes.extend_from_slice(b"tagwatch-row-key-v1");
    for s in [site, page_view, kind, vendor, evidence] {
        let len = u64::try_from(s.len()).unwrap_or(u64::MAX - 1);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(s.as_bytes());
    }
    bytes.extend_from_slice(&token.to_le_bytes());
    let hash = sha256(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(hash.get(..8).unwrap_or(&[0; 8]));
    i64::from_le_bytes(first) & i64::MAX
}

/// `None` for a text ClickHouse stores empty for none.
fn unless_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The row version a commit inserts for `f` (merged: `count`, `at`) in the
/// batch of `token`, as [`stored`] will read it back.
pub fn written(f: &FindingRecord, count: i64, at: &str, token: u64) -> FindingState {
    let kind = f.kind.as_str();
    FindingState {
        id: row_key(&f.site, &f.page_view, kind, &f.vendor, &f.evidence, token),
        site: f.site.clone(),
        page_view: f.page_view.clone(),
        page: f.page.clone(),
        kind: kind.to_owned(),
        vendor: f.vendor.clone(),
        category: f.category.map(|c| c.as_str().to_owned()),
        evidence_kind: Some(f.evidence_kind.as_str().to_owned()),
        evidence: f.evidence.clone(),
        consent_source: f.consent_source.as_ref().map(|s| s.as_str().to_owned()),
        consent: f.consent.clone(),
        count,
        at: at.to_owned(),
        received_at: f.received_at.clone(),
        user_agent: f.user_agent.clone(),
        raw: f.raw.clone(),
        release: f.release.clone().and_then(unless_empty),
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
        row: f.id,
        stored: Stored {
            digest: f.digest(),
            at: f.at.clone(),
        },
        label: label(f, token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN_ROW_KEY: i64 = 5_386_308_650_551_999_654;

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
