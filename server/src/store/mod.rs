//! Storage behind a trait, so another backend (PostgreSQL) plugs in beside
//! the embedded SQLite one.
//!
//! Every method is blocking; the HTTP layer calls reads from
//! `spawn_blocking` and writes from the single writer thread.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub mod sqlite;

/// One finding report, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    pub site: String,
    pub page_view: String,
    pub page: String,
    pub kind: String,
    pub vendor: String,
    pub category: Option<String>,
    /// Canonical JSON (sorted keys): part of the dedupe key.
    pub evidence: String,
    pub consent: String,
    pub count: i64,
    /// ISO 8601 UTC, ms precision: receive time − age.
    pub at: String,
    pub received_at: String,
    pub user_agent: String,
    /// The report's `body` as received, for forward compatibility.
    pub raw: String,
}

/// One `tagwatch-health` report, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRecord {
    pub site: String,
    pub page_view: Option<String>,
    pub page: String,
    pub status: String,
    pub reason: Option<String>,
    pub at: String,
    pub received_at: String,
    pub user_agent: String,
    pub raw: String,
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
    pub site: String,
    pub page_view: String,
    pub page: String,
    /// Vendors, one entry per id (duplicates merged on ingest), sorted.
    pub vendors: Vec<InventoryVendor>,
    /// Unclassified hosts, one entry per host, sorted.
    pub unclassified: Vec<InventoryHost>,
    /// ISO 8601 UTC, ms precision: receive time − age.
    pub at: String,
    pub received_at: String,
    pub user_agent: String,
    pub raw: String,
}

/// The reports of one accepted request: committed together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub findings: Vec<FindingRecord>,
    pub health: Vec<HealthRecord>,
    pub inventories: Vec<InventoryRecord>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SiteInfo {
    pub site: String,
    pub origins: Vec<String>,
    pub created_at: String,
}

/// Filters of `GET /api/findings` (already validated).
#[derive(Debug, Clone, Default)]
pub struct FindingsQuery {
    pub site: String,
    pub kind: Option<String>,
    pub vendor: Option<String>,
    /// ISO 8601 (the store's format); rows with `at >= since`.
    pub since: Option<String>,
    pub limit: u32,
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

#[derive(Debug)]
pub enum StoreError {
    /// The database URL names a backend this build does not have.
    Unsupported(String),
    /// The database URL is malformed.
    BadUrl(String),
    /// The store was written by a newer tagwatch.
    SchemaTooNew {
        found: i64,
        supported: i64,
    },
    /// `add_site` with a key that exists.
    DuplicateSite,
    Sqlite(rusqlite::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported(msg) | Self::BadUrl(msg) => f.write_str(msg),
            Self::SchemaTooNew { found, supported } => write!(
                f,
                "the database has schema version {found}, this tagwatch understands up to {supported}; upgrade tagwatch"
            ),
            Self::DuplicateSite => f.write_str("a site with this key already exists"),
            Self::Sqlite(e) => write!(f, "sqlite: {e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sqlite(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

pub trait Store: Send + Sync + 'static {
    /// Registers a site with its (already normalised) origins.
    fn add_site(&self, key: &str, origins: &[String], created_at: &str) -> Result<(), StoreError>;
    fn list_sites(&self) -> Result<Vec<SiteInfo>, StoreError>;
    /// The registered origins of a site, `None` if the key is unknown.
    fn site_origins(&self, key: &str) -> Result<Option<Vec<String>>, StoreError>;
    /// Whether any site registered this origin (decides CORS headers).
    fn origin_registered(&self, origin: &str) -> Result<bool, StoreError>;
    /// Commits batches in one transaction, durably (fsync'd) before
    /// returning `Ok`. Findings are deduplicated on
    /// (site, page_view, type, vendor, evidence); an inventory replaces the
    /// stored one of its (site, page_view) unless that one is newer.
    fn commit(&self, batches: &[&Batch]) -> Result<(), StoreError>;
    fn findings(&self, q: &FindingsQuery) -> Result<Vec<FindingRow>, StoreError>;
    fn health(&self, q: &HealthQuery) -> Result<Vec<HealthRow>, StoreError>;
    /// Latest inventories of a site's page views, aggregated per vendor and
    /// per unclassified host.
    fn inventory(&self, q: &InventoryQuery) -> Result<InventoryTotals, StoreError>;
}

pub const DEFAULT_DB: &str = "sqlite:tagwatch.db";

/// Opens the store a `--db` URL names: `sqlite:PATH` (also
/// `sqlite://PATH`). `readers` is the number of read connections kept for
/// the API (0 for one-shot CLI commands).
pub fn open(url: &str, readers: usize) -> Result<Arc<dyn Store>, StoreError> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(StoreError::BadUrl(
                "the sqlite URL has no path; use sqlite:PATH, e.g. sqlite:tagwatch.db".into(),
            ));
        }
        return Ok(Arc::new(sqlite::SqliteStore::open(path, readers)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(StoreError::Unsupported(
            "PostgreSQL is not supported by this build yet; use sqlite:PATH".into(),
        ));
    }
    Err(StoreError::BadUrl(format!(
        "unknown database URL {url:?}; use sqlite:PATH, e.g. sqlite:tagwatch.db"
    )))
}
