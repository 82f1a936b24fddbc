//! The store: sites, findings, health reports and inventories, in the
//! embedded SQLite database or in PostgreSQL (several collectors sharing
//! one store). One implementation (`db.rs`) over a small connection trait
//! (`conn.rs`) that each database implements; the SQL is written once,
//! with the few dialect differences as tokens (`schema.rs`).
//!
//! Every method is blocking; the collector calls reads from
//! `spawn_blocking` and writes from its single writer thread.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::db::{dedupe_key, DEDUPE_KEY_BYTES};
use tagwatch_core::consent::{Category, Source};
use tagwatch_core::report::{EvidenceKind, FindingType, HealthStatus};

pub mod chain;
pub mod chain_rows;
pub mod chain_versions;
mod conn;
mod db;
mod postgres;
pub mod schema;
mod shared_text;
mod sqlite;
mod sqlite_static;
mod sqlite_wal_vfs;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod timefmt;

pub use shared_text::SharedText;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod chain_rows_tests;
#[cfg(test)]
mod chain_tests;

/// A finding's type as stored: one the monitor reports, or the collector's
/// own `csp_blocked` (the browser's CSP violation reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    Monitor(FindingType),
    CspBlocked,
}

impl FindingKind {
    /// The type name of the browser's CSP violations.
    pub const CSP_BLOCKED: &'static str = "csp_blocked";

    /// Every type, the monitor's first.
    pub fn all() -> impl Iterator<Item = FindingKind> {
        FindingType::ALL
            .iter()
            .map(|t| FindingKind::Monitor(*t))
            .chain([FindingKind::CspBlocked])
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Monitor(t) => t.as_str(),
            FindingKind::CspBlocked => Self::CSP_BLOCKED,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            Self::CSP_BLOCKED => Some(FindingKind::CspBlocked),
            _ => FindingType::parse(s).map(FindingKind::Monitor),
        }
    }

    /// Whether a report's `count` adds to a stored row with the same key
    /// instead of the larger one winning: reports that carry no cumulative
    /// count (CSP reports, one occurrence each).
    pub fn additive(self) -> bool {
        self == FindingKind::CspBlocked
    }
}

/// A finding's evidence kind as stored (`evidence.kind`): one the monitor
/// reports, or `csp` (a browser's CSP violation report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoredEvidenceKind {
    Monitor(EvidenceKind),
    Csp,
}

impl StoredEvidenceKind {
    /// The kind name of the browser's CSP violations.
    pub const CSP: &'static str = "csp";

    pub fn as_str(self) -> &'static str {
        match self {
            StoredEvidenceKind::Monitor(k) => k.as_str(),
            StoredEvidenceKind::Csp => Self::CSP,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            Self::CSP => Some(StoredEvidenceKind::Csp),
            _ => EvidenceKind::parse(s).map(StoredEvidenceKind::Monitor),
        }
    }
}

/// `consent.source` as stored: a source the monitor names (`default`,
/// `api`, `tcf`, `gpp`, a known CMP id), or other text a newer monitor
/// sent (at most 32 characters, redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredConsentSource {
    Known(Source),
    Other(String),
}

impl StoredConsentSource {
    pub fn as_str(&self) -> &str {
        match self {
            StoredConsentSource::Known(s) => s.as_str(),
            StoredConsentSource::Other(s) => s,
        }
    }
}

/// One finding report, ready to store. Its texts are [`SharedText`]: the
/// records of one batch hold one copy of each value they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    pub site: SharedText,
    pub page_view: SharedText,
    pub page: SharedText,
    pub kind: FindingKind,
    pub vendor: SharedText,
    pub category: Option<Category>,
    /// Canonical JSON (sorted keys): part of the dedupe key.
    pub evidence: SharedText,
    /// `evidence.kind`, stored in a column of its own.
    pub evidence_kind: StoredEvidenceKind,
    pub consent: SharedText,
    /// `consent.source`, stored in a column of its own; `None` when absent
    /// (CSP reports have no consent).
    pub consent_source: Option<StoredConsentSource>,
    pub count: i64,
    /// ISO 8601 UTC, ms precision: receive time − age.
    pub at: SharedText,
    pub received_at: SharedText,
    pub user_agent: SharedText,
    /// The report's `body` as received (redacted), for forward
    /// compatibility.
    pub raw: SharedText,
    /// The site's release the report named (`release` on the wire).
    pub release: Option<SharedText>,
}

impl FindingRecord {
    /// The key a stored finding is merged on within its page view
    /// ([`db::dedupe_key`] of its type, vendor and evidence).
    pub(crate) fn dedupe_key(&self) -> [u8; DEDUPE_KEY_BYTES] {
        dedupe_key(self.kind.as_str(), &self.vendor, &self.evidence)
    }
}

/// One `tagwatch-health` report, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRecord {
    pub site: SharedText,
    pub page_view: Option<SharedText>,
    pub page: SharedText,
    pub status: HealthStatus,
    pub reason: Option<String>,
    pub at: SharedText,
    pub received_at: SharedText,
    pub user_agent: SharedText,
    pub raw: String,
    /// The site's release the report named (`release` on the wire).
    pub release: Option<SharedText>,
}

/// Usage numbers of one vendor or unclassified host in one page view.
/// Each is clamped to `0..=i64::MAX` on ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub requests: i64,
    pub script_requests: i64,
    pub transfer_bytes: i64,
    pub encoded_bytes: i64,
    pub duration_ms: i64,
}

impl Usage {
    /// Adds `other` (saturating): a vendor listed twice in one inventory.
    pub fn add(&mut self, other: &Usage) {
        self.requests = self.requests.saturating_add(other.requests);
        self.script_requests = self.script_requests.saturating_add(other.script_requests);
        self.transfer_bytes = self.transfer_bytes.saturating_add(other.transfer_bytes);
        self.encoded_bytes = self.encoded_bytes.saturating_add(other.encoded_bytes);
        self.duration_ms = self.duration_ms.saturating_add(other.duration_ms);
    }
}

/// One vendor of a page view's inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryVendor {
    pub vendor: String,
    pub usage: Usage,
    /// Distinct, sorted.
    pub hosts: Vec<String>,
    pub regions: Vec<String>,
    pub cookies: Vec<String>,
}

/// One third-party host the catalog does not know, in one page view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryHost {
    pub host: String,
    pub usage: Usage,
}

/// One `tagwatch-inventory` report: the latest state of a page view. A
/// newer one for the same (site, page_view) replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryRecord {
    pub site: SharedText,
    pub page_view: SharedText,
    pub page: SharedText,
    /// Vendors, one entry per id (duplicates merged on ingest), sorted.
    pub vendors: Vec<InventoryVendor>,
    /// Unclassified hosts, one entry per host, sorted.
    pub unclassified: Vec<InventoryHost>,
    /// ISO 8601 UTC, ms precision: receive time − age.
    pub at: SharedText,
    pub received_at: SharedText,
    pub user_agent: SharedText,
    pub raw: String,
    /// The site's release the report named (`release` on the wire).
    pub release: Option<SharedText>,
}

/// A finding type a site had never had before a commit: what `--webhook`
/// alerts on. The finding is the first of that type in the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSeen {
    pub site: String,
    pub kind: FindingKind,
    pub vendor: String,
    pub page: String,
    pub at: String,
}

impl FirstSeen {
    pub fn of(f: &FindingRecord) -> Self {
        Self {
            site: f.site.as_str().to_owned(),
            kind: f.kind,
            vendor: f.vendor.as_str().to_owned(),
            page: f.page.as_str().to_owned(),
            at: f.at.as_str().to_owned(),
        }
    }
}

/// A release a site has had, with its first report's time
/// (`site_releases`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseInfo {
    pub release: String,
    /// ISO 8601: the earliest `at` of a report naming it.
    pub first_at: String,
}

/// What a release can introduce that the release webhook alerts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReleaseItemKind {
    /// A finding type.
    FindingType,
    /// A catalog vendor (in an inventory or a finding).
    Vendor,
}

impl ReleaseItemKind {
    /// The name stored in `site_release_items.kind` and sent in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseItemKind::FindingType => "finding_type",
            ReleaseItemKind::Vendor => "vendor",
        }
    }
}

/// A finding type or vendor a release had that the site's previous
/// release (the one first seen most recently before it) did not: what the
/// release webhook alerts on, once per (site, release, kind, item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseNews {
    pub site: String,
    pub release: String,
    pub previous: String,
    pub kind: ReleaseItemKind,
    pub item: String,
    /// When the release first had it (ISO 8601).
    pub at: String,
}

/// A site and one of its releases.
pub type SiteRelease<'a> = (&'a str, &'a str);
/// A site, a release, and a finding type or vendor it had.
pub type ReleaseItem<'a> = (&'a str, &'a str, ReleaseItemKind, &'a str);

/// What the release tables get of some batches, each with the earliest
/// `at` of a report that had it, sorted by key (the order rows are written
/// in: no deadlock between collectors).
#[derive(Debug, Default)]
pub struct ReleaseRows<'a> {
    pub releases: Vec<(SiteRelease<'a>, &'a str)>,
    pub items: Vec<(ReleaseItem<'a>, &'a str)>,
}

/// The (site, release) pairs of `batches` that name a release, and the
/// finding types and vendors each had.
pub fn release_items<'a>(batches: &[&'a Batch]) -> ReleaseRows<'a> {
    use std::collections::BTreeMap;
    let mut releases: BTreeMap<SiteRelease<'a>, &str> = BTreeMap::new();
    let mut items: BTreeMap<ReleaseItem<'a>, &str> = BTreeMap::new();
    each_release_item(batches, |(site, release, kind, item), at| {
        let r = releases.entry((site, release)).or_insert(at);
        if at < *r {
            *r = at;
        }
        let i = items.entry((site, release, kind, item)).or_insert(at);
        if at < *i {
            *i = at;
        }
    });
    ReleaseRows {
        releases: releases.into_iter().collect(),
        items: items.into_iter().collect(),
    }
}

/// Calls `add` with each release item of `batches` and the `at` of the
/// report that had it, in report order (repeats included).
pub(crate) fn each_release_item<'a>(
    batches: &[&'a Batch],
    mut add: impl FnMut(ReleaseItem<'a>, &'a str),
) {
    let mut add = |site: &'a str, release: &'a str, kind, item: &'a str, at: &'a str| {
        add((site, release, kind, item), at);
    };
    for b in batches {
        for f in &b.findings {
            if let Some(r) = &f.release {
                add(
                    &f.site,
                    r,
                    ReleaseItemKind::FindingType,
                    f.kind.as_str(),
                    &f.at,
                );
                add(&f.site, r, ReleaseItemKind::Vendor, &f.vendor, &f.at);
            }
        }
        for inv in &b.inventories {
            if let Some(r) = &inv.release {
                for v in &inv.vendors {
                    add(&inv.site, r, ReleaseItemKind::Vendor, &v.vendor, &inv.at);
                }
            }
        }
    }
}

/// A name and how many page views (or finding rows) had it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub count: i64,
}

/// One release's reports of a site, aggregated for `GET /api/diff`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseProfile {
    /// Distinct page views with an inventory or a monitor finding.
    pub page_views: i64,
    /// Vendors: page views with each (inventories and findings).
    pub vendors: Vec<Named>,
    /// Third-party hosts (a vendor's or unclassified): page views with each.
    pub hosts: Vec<Named>,
    /// Vendors' cookie names: page views with each.
    pub cookies: Vec<Named>,
    /// Cookie names with a lifetime in a finding's evidence: the longest,
    /// in days.
    pub cookie_days: Vec<Named>,
    /// Finding types: finding rows (one per page view and behaviour).
    pub types: Vec<Named>,
}

/// The reports of one accepted request: committed together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub findings: Vec<FindingRecord>,
    pub health: Vec<HealthRecord>,
    pub inventories: Vec<InventoryRecord>,
}

/// A batch with what its commit needs of it that does not need the
/// database, computed before it is handed to the writer (the collector
/// does it on the HTTP worker that parsed it): the collector's one SQLite
/// writer thread is its serial bound, so the less it does a batch beside
/// stepping statements, the more batches it commits a second. Today: each
/// finding's dedupe key (a SHA-256: 165,000 of the writer's 1.9 million
/// instructions a batch under callgrind, where SHA-256 runs in software;
/// ≈ 1.5% of its CPU natively; docs/benchmarks.md, "The writer thread's
/// serial work").
#[derive(Debug, Clone)]
pub struct PreparedBatch {
    batch: Batch,
    /// `dedupe_key` of each finding of `batch`, in its order.
    dedupe: Vec<[u8; DEDUPE_KEY_BYTES]>,
}

impl PreparedBatch {
    pub fn new(batch: Batch) -> Self {
        let dedupe = batch
            .findings
            .iter()
            .map(FindingRecord::dedupe_key)
            .collect();
        Self { batch, dedupe }
    }

    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    /// Each finding with its dedupe key.
    pub(crate) fn keyed_findings(
        &self,
    ) -> impl Iterator<Item = (&FindingRecord, [u8; DEDUPE_KEY_BYTES])> {
        self.batch.findings.iter().zip(self.dedupe.iter().copied())
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteInfo {
    pub site: String,
    pub origins: Vec<String>,
    pub created_at: String,
    pub sample: f64,
    pub enabled: bool,
}

/// What the snippet reads from `GET /config/KEY`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct SiteConfig {
    /// Share of page views monitored, 0..=1.
    pub sample: f64,
    pub enabled: bool,
}

/// A change made by `tagwatch site set`; `None` leaves a setting as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SiteChange {
    pub sample: Option<f64>,
    pub enabled: Option<bool>,
}

/// Filters of `GET /api/findings` (already validated).
#[derive(Debug, Clone, Default)]
pub struct FindingsQuery {
    pub site: String,
    /// Any of these types; empty: all.
    pub kinds: Vec<String>,
    /// Any of these vendors; empty: all.
    pub vendors: Vec<String>,
    /// ISO 8601 (the store's format); rows with `at >= since`.
    pub since: Option<String>,
    /// Rows with `at < until`.
    pub until: Option<String>,
    /// Exact page URL.
    pub page: Option<String>,
    pub page_view: Option<String>,
    pub category: Option<String>,
    /// Only this release's findings.
    pub release: Option<String>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
    pub limit: u32,
}

/// `GET /api/stats`: a site's findings over a window.
#[derive(Debug, Clone, Default)]
pub struct StatsQuery {
    pub site: String,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only this release's findings and page views.
    pub release: Option<String>,
    /// Most pages listed in `by_page`.
    pub max_pages: u32,
}

/// Finding rows and the sum of their `count`s, for one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// The group: a type, vendor, page or UTC day.
    #[serde(skip)]
    pub key: String,
    /// Finding rows (one per page view and behaviour).
    pub findings: i64,
    /// Sum of their counts (times the behaviour was seen).
    pub occurrences: i64,
}

/// One consent state findings were judged on, and how many were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentTally {
    /// `consent.source`, `None` when absent.
    pub source: Option<String>,
    /// necessary, functional, analytics, marketing: `Some(true)` granted,
    /// `Some(false)` denied, `None` unknown.
    pub categories: [Option<bool>; 4],
    pub findings: i64,
}

impl ConsentTally {
    /// The order every store answers in: most findings first, then source,
    /// then categories.
    pub fn sort(tallies: &mut [ConsentTally]) {
        tallies.sort_by(|a, b| {
            b.findings
                .cmp(&a.findings)
                .then_with(|| a.source.cmp(&b.source))
                .then_with(|| a.categories.cmp(&b.categories))
        });
    }
}

/// What `GET /api/stats` aggregates, before shaping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub total: Tally,
    /// Most findings first, then key.
    pub by_type: Vec<Tally>,
    pub by_vendor: Vec<Tally>,
    /// At most `max_pages`.
    pub by_page: Vec<Tally>,
    /// Oldest day first.
    pub by_day: Vec<Tally>,
    /// Distinct page views with an inventory or a monitor finding.
    pub page_views: i64,
    /// Monitor findings (not `csp_blocked`) per consent state.
    pub consent: Vec<ConsentTally>,
}

/// Filters of `GET /api/health`.
#[derive(Debug, Clone, Default)]
pub struct HealthQuery {
    pub site: String,
    pub since: Option<String>,
    pub limit: u32,
}

/// Filters of `GET /api/inventory`.
#[derive(Debug, Clone, Default)]
pub struct InventoryQuery {
    pub site: String,
    /// ISO 8601; page views whose latest inventory was observed at or after.
    pub since: Option<String>,
    /// Only page views of this release.
    pub release: Option<String>,
    /// Most distinct hosts / regions / cookies listed per vendor.
    pub max_names: u32,
    /// Most unclassified hosts listed.
    pub max_hosts: u32,
}

/// One vendor aggregated over page views (catalog facts are added by the
/// HTTP layer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VendorTotals {
    pub vendor: String,
    pub page_views: i64,
    pub usage: Usage,
    pub hosts: Vec<String>,
    pub regions: Vec<String>,
    pub cookies: Vec<String>,
    /// Pages (report URLs) the vendor was seen on.
    pub pages: Vec<String>,
}

/// One unclassified host aggregated over page views.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostTotals {
    pub host: String,
    pub page_views: i64,
    pub usage: Usage,
}

/// `GET /api/inventory` before catalog enrichment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InventoryTotals {
    /// Page views with an inventory in the window.
    pub page_views: i64,
    /// Most page views first, then most requests, then id.
    pub vendors: Vec<VendorTotals>,
    /// Most page views first, then most requests, then host.
    pub unclassified: Vec<HostTotals>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FindingRow {
    #[serde(rename = "type")]
    pub kind: String,
    pub vendor: String,
    pub site: String,
    pub page: String,
    pub at: String,
    pub page_view: String,
    pub category: Option<String>,
    pub count: i64,
    pub evidence: serde_json::Value,
    pub consent: serde_json::Value,
    pub received_at: String,
    /// The site's release the page view reported, `null` when none.
    pub release: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HealthRow {
    pub site: String,
    pub page: String,
    pub page_view: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub at: String,
    pub received_at: String,
}

/// Rows removed by a purge, per table. Inventory vendors and hosts go with
/// their inventory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub findings: u64,
    pub health: u64,
    pub inventories: u64,
    pub inventory_vendors: u64,
    pub inventory_hosts: u64,
}

impl Purged {
    pub fn add(&mut self, other: &Purged) {
        self.findings = self.findings.saturating_add(other.findings);
        self.health = self.health.saturating_add(other.health);
        self.inventories = self.inventories.saturating_add(other.inventories);
        self.inventory_vendors = self
            .inventory_vendors
            .saturating_add(other.inventory_vendors);
        self.inventory_hosts = self.inventory_hosts.saturating_add(other.inventory_hosts);
    }

    /// Table name and rows removed, in schema order.
    pub fn per_table(&self) -> [(&'static str, u64); 5] {
        [
            ("findings", self.findings),
            ("health", self.health),
            ("inventories", self.inventories),
            ("inventory_vendors", self.inventory_vendors),
            ("inventory_hosts", self.inventory_hosts),
        ]
    }

    pub fn total(&self) -> u64 {
        self.per_table()
            .iter()
            .fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
    }

    /// Whether a call limited to `limit` rows per table may have left some.
    pub fn maybe_more(&self, limit: u32) -> bool {
        let limit = u64::from(limit);
        self.findings >= limit || self.health >= limit || self.inventories >= limit
    }
}

/// Rows a single purge call removes at most per table: each call is one
/// short transaction, so ingest is never held up for long.
pub const PURGE_CHUNK: u32 = 5000;

/// Removes every report observed before `before` (ISO 8601, the store's
/// format), chunk by chunk.
pub fn purge_all(store: &dyn Store, before: &str) -> Result<Purged, StoreError> {
    let mut total = Purged::default();
    loop {
        let purged = store.purge(before, PURGE_CHUNK)?;
        total.add(&purged);
        if !purged.maybe_more(PURGE_CHUNK) {
            return Ok(total);
        }
    }
}

/// Why the store could not do what was asked; the database's own error is
/// kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is malformed.
    #[error("{0}")]
    BadUrl(String),
    /// The store was written by a newer tagwatch.
    #[error("the database has schema version {found}, this tagwatch understands up to {supported}; upgrade tagwatch")]
    SchemaTooNew { found: i64, supported: i64 },
    /// `add_site` with a key that exists.
    #[error("a site with this key already exists")]
    DuplicateSite,
    /// The store cannot be trusted (corrupt, read-only, not a tagwatch
    /// store…): what is wrong and what to do.
    #[error("{0}")]
    Untrusted(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {}", PgMessage(.0))]
    Postgres(#[from] ::postgres::Error),
    /// The events store (`--events`, ClickHouse): what went wrong, and
    /// whether the server could not be reached at all (then the next call
    /// tries again, like a lost connection).
    #[error("clickhouse: {message}")]
    Events { message: String, unreachable: bool },
}

/// A PostgreSQL error said with what caused it (see [`write_pg_error`]).
struct PgMessage<'a>(&'a ::postgres::Error);

impl fmt::Display for PgMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pg_error(f, self.0)
    }
}

impl StoreError {
    /// Whether the database rolled the transaction back for a deadlock or a
    /// serialization failure: trying again may well succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Postgres(e) => matches!(
                e.code(),
                Some(
                    &::postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                        | &::postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                )
            ),
            _ => false,
        }
    }

    /// Whether the connection to the store is gone (PostgreSQL: I/O, a
    /// closed socket, a FATAL or PANIC message, no server) rather than one
    /// statement failing. The next call reconnects.
    pub fn lost_connection(&self) -> bool {
        match self {
            Self::Postgres(e) => match e.as_db_error() {
                Some(db) => matches!(
                    db.parsed_severity(),
                    Some(::postgres::error::Severity::Fatal | ::postgres::error::Severity::Panic)
                ),
                None => true,
            },
            Self::Events { unreachable, .. } => *unreachable,
            _ => false,
        }
    }
}

/// A PostgreSQL error with what caused it: the client's own message is only
/// its kind ("error connecting to server"); the server's has a code.
pub fn write_pg_error(f: &mut impl fmt::Write, e: &::postgres::Error) -> fmt::Result {
    if let Some(db) = e.as_db_error() {
        write!(
            f,
            "{} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        )?;
        if let Some(detail) = db.detail() {
            write!(f, " ({detail})")?;
        }
        return Ok(());
    }
    write!(f, "{e}")?;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        write!(f, ": {cause}")?;
        source = cause.source();
    }
    Ok(())
}

pub trait Store: Send + Sync + 'static {
    /// Registers a site with its (already normalised) origins.
    fn add_site(&self, key: &str, origins: &[String], created_at: &str) -> Result<(), StoreError>;
    fn list_sites(&self) -> Result<Vec<SiteInfo>, StoreError>;
    /// The registered origins of a site, `None` if the key is unknown.
    fn site_origins(&self, key: &str) -> Result<Option<Vec<String>>, StoreError>;
    /// Whether any site registered one of these origins or patterns
    /// (`origin::candidates` of a request's origin; decides CORS headers).
    fn origin_registered(&self, candidates: &[String]) -> Result<bool, StoreError>;
    /// A site's snippet settings, `None` if the key is unknown.
    fn site_config(&self, key: &str) -> Result<Option<SiteConfig>, StoreError>;
    /// Changes a site's settings; `false` if the key is unknown.
    fn set_site_config(&self, key: &str, change: &SiteChange) -> Result<bool, StoreError>;
    /// How many `commit`s may usefully run at once (from as many threads):
    /// 1 for SQLite, whose writes take turns on one connection; more for
    /// PostgreSQL, where one commit's statements run while another waits
    /// for its WAL flush. Anything else (purges, sites) may run beside them.
    fn writers(&self) -> usize {
        1
    }
    /// Commits batches in one transaction, durably (fsync'd) before
    /// returning `Ok`. Findings are deduplicated on
    /// (site, page_view, type, vendor, evidence); an inventory replaces the
    /// stored one of its (site, page_view) unless that one is newer.
    /// Returns the finding types that no site had before, once each (across
    /// collectors sharing a store, too: whichever commits first reports it).
    fn commit(&self, batches: &[&Batch]) -> Result<Vec<FirstSeen>, StoreError>;
    /// [`Store::commit`] of batches prepared beforehand
    /// ([`PreparedBatch`]): the same rows, less work on the caller's
    /// thread where the store uses what was prepared.
    fn commit_prepared(&self, batches: &[&PreparedBatch]) -> Result<Vec<FirstSeen>, StoreError> {
        let batches: Vec<&Batch> = batches.iter().map(|p| p.batch()).collect();
        self.commit(&batches)
    }
    /// Records the finding types of `findings` (site, type, first `at`)
    /// as `commit` does, durably, without storing the findings: for a
    /// collector whose reports go to a separate events store (`--events`)
    /// while this store keeps the control plane. Returns the types no site
    /// had before, as `commit` does.
    fn record_finding_types(
        &self,
        findings: &[&FindingRecord],
    ) -> Result<Vec<FirstSeen>, StoreError>;
    /// Records the releases of `batches` and the finding types and vendors
    /// each had (`site_releases`, `site_release_items`), durably; answers
    /// the (site, release, kind, item) rows recorded for the first time
    /// whose release's previous release did not have them (the release
    /// webhook's alerts), once each across restarts and collectors.
    fn record_releases(&self, batches: &[&Batch]) -> Result<Vec<ReleaseNews>, StoreError>;
    /// A site's releases, the first seen first.
    fn releases(&self, site: &str) -> Result<Vec<ReleaseInfo>, StoreError>;
    /// One release's reports aggregated; at most `max_names` hosts and
    /// cookies (the most common first).
    fn release_profile(
        &self,
        site: &str,
        release: &str,
        max_names: u32,
    ) -> Result<ReleaseProfile, StoreError>;
    fn findings(&self, q: &FindingsQuery) -> Result<Vec<FindingRow>, StoreError>;
    /// Finding counts over a window, by type, vendor, page, day and consent.
    fn stats(&self, q: &StatsQuery) -> Result<Stats, StoreError>;
    fn health(&self, q: &HealthQuery) -> Result<Vec<HealthRow>, StoreError>;
    /// Latest inventories of a site's page views, aggregated per vendor and
    /// per unclassified host.
    fn inventory(&self, q: &InventoryQuery) -> Result<InventoryTotals, StoreError>;
    /// Deletes findings, health reports and inventories observed (`at`)
    /// before `before` (ISO 8601), oldest first, at most `limit` rows of
    /// each in one transaction. See [`purge_all`].
    fn purge(&self, before: &str, limit: u32) -> Result<Purged, StoreError>;
    /// Signs the checkpoints purges record from now on with `key`.
    fn sign_checkpoints(&self, _key: ed25519_dalek::SigningKey) {}
    /// A site's whole chain and the digest of each of its finding rows
    /// (with an events store: of each finding row version it holds,
    /// `ChainDump::versions`).
    fn chain(&self, _site: &str) -> Result<ChainDump, StoreError> {
        Err(StoreError::Untrusted(NO_CHAIN.into()))
    }
    /// What an evidence bundle holds.
    fn evidence(&self, _q: &EvidenceQuery) -> Result<Evidence, StoreError> {
        Err(StoreError::Untrusted(NO_CHAIN.into()))
    }
    /// For a control plane whose reports an events store (`--events`)
    /// inserted: records the finding types of `findings` as
    /// [`Store::record_finding_types`] does and, in the same transaction,
    /// appends an entry to each site's chain for every row version of
    /// `versions` (findings, health reports, inventories; each site's head
    /// locked, as `commit` does). Answers the types no site had before.
    fn chain_versions(
        &self,
        _findings: &[&FindingRecord],
        _versions: &[chain_versions::Inserted],
    ) -> Result<Vec<FirstSeen>, StoreError> {
        Err(StoreError::Untrusted(NO_CHAIN.into()))
    }
    /// For a control plane whose events store is about to remove reports
    /// observed before `before`: records, per site, a removal entry for
    /// each row version that goes and a checkpoint counting them
    /// (signed with the key of [`Store::sign_checkpoints`]), in one
    /// transaction.
    fn chain_removals(
        &self,
        _before: &str,
        _removed: &std::collections::BTreeMap<String, Removed>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Untrusted(NO_CHAIN.into()))
    }
    /// A site's chain from seq `from` to the head, with its checkpoints
    /// there (no rows): what was appended after an earlier read.
    fn chain_since(&self, _site: &str, _from: i64) -> Result<ChainDump, StoreError> {
        Err(StoreError::Untrusted(NO_CHAIN.into()))
    }
    /// The segment of a site's chain from the oldest latest row version
    /// entry (`version`, `health-version`, `inventory-version`) of `rows`
    /// (row keys) to the head, with its checkpoints.
    fn chain_segment(&self, _site: &str, _rows: &[i64]) -> Result<ChainDump, StoreError> {
        Err(StoreError::Untrusted(NO_CHAIN.into()))
    }
}

/// What a store without a chain answers (docs/evidence.md).
pub const NO_CHAIN: &str = "this store keeps no chain of its findings; evidence bundles and chain checks need a SQL store (SQLite or PostgreSQL), alone or as the control plane of --events";

/// What a purge removes from one site, for its chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// (id or row key, `at`, digest) of each finding row's last state (of
    /// each row version, in an events store), in id order.
    pub findings: Vec<(i64, String, chain::Hash)>,
    /// Likewise of each health row and inventory.
    pub health: Vec<(i64, String, chain::Hash)>,
    pub inventories: Vec<(i64, String, chain::Hash)>,
}

/// What `tagwatch evidence` reads: a site's findings in a window (or
/// one finding).
#[derive(Debug, Clone, Default)]
pub struct EvidenceQuery {
    pub site: String,
    pub since: Option<String>,
    pub until: Option<String>,
    /// One finding by id.
    pub finding: Option<i64>,
    /// Most findings read.
    pub limit: i64,
}

/// A site's chain (or the segment from some seq), with the checkpoints it
/// names and the digests of the finding rows at hand.
#[derive(Debug, Clone, Default)]
pub struct ChainDump {
    pub site: String,
    pub entries: Vec<chain::Entry>,
    /// `prev` of the first entry.
    pub start: chain::Hash,
    /// Finding id → digest of the row as stored now (all of the site's for
    /// `Store::chain`; none for `Store::evidence`, whose findings are
    /// given whole).
    pub findings: std::collections::BTreeMap<i64, chain::Stored>,
    pub checkpoints: std::collections::BTreeMap<i64, chain::Checkpoint>,
    /// The events store's row versions (all of the site's findings, health
    /// reports and inventories), when its reports are there: checked by
    /// [`chain_versions::verify`].
    pub versions: Option<Vec<chain_versions::Version>>,
    /// The seq of the head when `versions` were read (`entries` goes on
    /// with what was appended while they were); `None`: read before.
    pub versions_read_at: Option<i64>,
    /// Health report id → digest of the row as stored now (all of the
    /// site's for `Store::chain`; none for `Store::evidence`).
    pub health: std::collections::BTreeMap<i64, chain::Stored>,
    /// Inventory id → digest of its state as stored now (likewise).
    pub inventories: std::collections::BTreeMap<i64, chain::Stored>,
    /// Rows stored before health reports and inventories were chained.
    pub unchained: chain_rows::Unchained,
}

impl ChainDump {
    /// Every problem of the chain against the rows it holds (`rows`: all
    /// of the site's, or some).
    pub fn verify(
        &self,
        rows: chain::Rows,
        key: Option<&ed25519_dalek::VerifyingKey>,
    ) -> Vec<chain::Problem> {
        let mut problems = chain::verify(&chain::Check {
            site: &self.site,
            entries: &self.entries,
            start: self.start,
            findings: &self.findings,
            rows,
            checkpoints: &self.checkpoints,
            key,
        });
        problems.extend(chain_rows::verify(&self.rows_check(rows)));
        problems.truncate(chain::MAX_PROBLEMS);
        problems
    }

    /// The check of a whole chain against the rows at hand: the finding
    /// rows of the SQL store, or the events store's row versions (which
    /// may leave rows not proven).
    pub fn check(&self, key: Option<&ed25519_dalek::VerifyingKey>) -> chain_versions::Verdict {
        match &self.versions {
            Some(versions) => chain_versions::verify(
                &self.site,
                &self.entries,
                &self.checkpoints,
                key,
                versions,
                self.versions_read_at.unwrap_or(i64::MAX),
            ),
            None => chain_versions::Verdict {
                problems: self.verify(chain::Rows::All, key),
                ..Default::default()
            },
        }
    }

    /// Health reports and inventories stored before they were chained
    /// (no entry since): not proven.
    pub fn unproven(&self) -> (usize, usize) {
        chain_rows::unproven(&self.rows_check(chain::Rows::All))
    }

    fn rows_check(&self, rows: chain::Rows) -> chain_rows::Check<'_> {
        chain_rows::Check {
            site: &self.site,
            entries: &self.entries,
            health: &self.health,
            inventories: &self.inventories,
            rows,
            checkpoints: &self.checkpoints,
            unchained: self.unchained,
        }
    }
}

/// What an evidence bundle holds from the store.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub findings: Vec<chain::FindingState>,
    /// From the oldest latest state of those findings to the head.
    pub chain: ChainDump,
    /// Of the findings' page views, whole (their chain entries are in
    /// the segment): the latest inventory of each and its health reports
    /// (an events store's: the chained row versions, `id` their row key).
    pub inventories: Vec<chain_rows::InventoryState>,
    pub health: Vec<chain_rows::HealthState>,
    /// Rows of the window that no chain entry covers, left out of the
    /// bundle (an events store's rows not proven; always 0 on SQL).
    pub left_out: usize,
}

pub const DEFAULT_DB: &str = "sqlite:tagwatch.db";

pub use sqlite::Checks;

/// Opens the store a `--db` URL names: `sqlite:PATH` (also
/// `sqlite://PATH`) or `postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME`
/// (also `postgresql://`). `readers` is the number of read connections kept
/// for the API (0 for one-shot CLI commands). A store that cannot be
/// trusted (`StoreError::Untrusted`, `SchemaTooNew`) is refused here,
/// before anything is served from it.
pub fn open(url: &str, readers: usize, checks: Checks) -> Result<Arc<dyn Store>, StoreError> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(StoreError::BadUrl(
                "the sqlite URL has no path; use sqlite:PATH, e.g. sqlite:tagwatch.db".into(),
            ));
        }
        return Ok(Arc::new(sqlite::open(
            std::path::Path::new(path),
            readers,
            checks,
        )?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::open(url, readers)?));
    }
    Err(StoreError::BadUrl(format!(
        "unknown database URL {:?}; use sqlite:PATH (e.g. sqlite:tagwatch.db) or postgres://USER@HOST:PORT/DBNAME",
        redact_url(url)
    )))
}

/// The URL with its password (if any) replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://tw:s3cr@t@db.example:5432/tw?sslmode=disable"),
            "postgres://tw:***@db.example:5432/tw?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://tw@db.example/tw"),
            "postgres://tw@db.example/tw"
        );
        assert_eq!(redact_url("sqlite:x.db"), "sqlite:x.db");
        assert_eq!(redact_url("sqlite:///tmp/a:b@c"), "sqlite:///tmp/a:b@c");
    }

    #[test]
    fn purged_knows_when_a_chunk_was_full() {
        let p = Purged {
            health: 10,
            ..Purged::default()
        };
        assert!(p.maybe_more(10));
        assert!(!p.maybe_more(11));
        assert_eq!(p.total(), 10);
    }
}
