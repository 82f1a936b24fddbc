//! The report wire format (schema 1). Documented in `docs/report-format.md`,
//! machine-checked by `docs/report.schema.json`; the golden test in
//! `core/tests/golden.rs` keeps the three in step.

use crate::catalog::Purpose;
use crate::consent::{Category, State};
use serde::Serialize;

/// Schema version carried in every report body.
pub const SCHEMA: u32 = 1;

/// Finding types (wire names in `as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum FindingType {
    ScriptBeforeConsent,
    CookieBeforeConsent,
    TrackingBeforeConsent,
    CookieAfterWithdrawal,
    RequestAfterWithdrawal,
    GpcIgnored,
    RegionNotAllowed,
    PageOutOfScope,
    IdentityUnverified,
}

impl FindingType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingType::ScriptBeforeConsent => "script_before_consent",
            FindingType::CookieBeforeConsent => "cookie_before_consent",
            FindingType::TrackingBeforeConsent => "tracking_before_consent",
            FindingType::CookieAfterWithdrawal => "cookie_after_withdrawal",
            FindingType::RequestAfterWithdrawal => "request_after_withdrawal",
            FindingType::GpcIgnored => "gpc_ignored",
            FindingType::RegionNotAllowed => "region_not_allowed",
            FindingType::PageOutOfScope => "page_out_of_scope",
            FindingType::IdentityUnverified => "identity_unverified",
        }
    }
}

/// What was observed. Holds no cookie value, query string or fragment by
/// construction: it is built only from `url::parse` output and cookie names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// A Resource Timing entry.
    Request {
        /// Lower-case host.
        host: String,
        /// Redacted path.
        path: String,
        /// `initiatorType`.
        initiator: String,
        /// `top` or the frame it came from.
        frame: String,
        /// Catalog purpose.
        purpose: Purpose,
    },
    /// A cookie, by name.
    Cookie {
        /// The name.
        cookie: String,
        /// Catalog purpose.
        purpose: Purpose,
    },
    /// A page global of the vendor.
    Global {
        /// Its name.
        name: String,
    },
    /// A DOM marker of the vendor.
    Dom {
        /// Selector, e.g. `#intercom-frame`.
        name: String,
    },
}

impl Evidence {
    /// Identity for deduplication within a page view.
    pub fn key(&self) -> (&str, &str) {
        match self {
            Evidence::Request { host, path, .. } => (host, path),
            Evidence::Cookie { cookie, .. } => ("cookie", cookie),
            Evidence::Global { name } => ("global", name),
            Evidence::Dom { name } => ("dom", name),
        }
    }
}

/// The consent state a decision was made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConsentSnapshot {
    #[allow(missing_docs)]
    pub necessary: Option<bool>,
    #[allow(missing_docs)]
    pub functional: Option<bool>,
    #[allow(missing_docs)]
    pub analytics: Option<bool>,
    #[allow(missing_docs)]
    pub marketing: Option<bool>,
    /// Who set the state.
    pub source: crate::consent::Source,
    /// Since when (ms after navigation start).
    pub since: u64,
    /// Global Privacy Control.
    pub gpc: bool,
}

impl ConsentSnapshot {
    /// Snapshot of a timeline state.
    pub fn new(state: State, gpc: bool) -> Self {
        let c = state.categories;
        ConsentSnapshot {
            necessary: c.get(Category::Necessary),
            functional: c.get(Category::Functional),
            analytics: c.get(Category::Analytics),
            marketing: c.get(Category::Marketing),
            source: state.source,
            since: state.since,
            gpc,
        }
    }
}

/// One finding of a page view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Type.
    pub kind: FindingType,
    /// Vendor id.
    pub vendor: &'static str,
    /// The category the behaviour needed, where one applies.
    pub category: Option<Category>,
    /// When (ms after navigation start).
    pub at: u64,
    /// Times seen before it was sent.
    pub count: u32,
    /// What was seen.
    pub evidence: Evidence,
    /// Consent it was judged on.
    pub consent: ConsentSnapshot,
}

/// Identity of the page view a report belongs to.
#[derive(Debug, Clone)]
pub struct PageView<'a> {
    /// Site key.
    pub site: &'a str,
    /// 16 hex chars.
    pub id: &'a str,
    /// Page URL, already stripped (`url::page_url`).
    pub url: &'a str,
    /// `navigator.userAgent`.
    pub user_agent: &'a str,
}

#[derive(Serialize)]
struct Envelope<'a, B> {
    #[serde(rename = "type")]
    kind: &'static str,
    age: u64,
    url: &'a str,
    user_agent: &'a str,
    body: B,
}

#[derive(Serialize)]
struct FindingBody<'a> {
    schema: u32,
    site: &'a str,
    page_view: &'a str,
    finding: FindingType,
    vendor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<Category>,
    at: u64,
    count: u32,
    evidence: &'a Evidence,
    consent: &'a ConsentSnapshot,
}

/// Serialises findings as a report batch (JSON array of envelopes). `now` is
/// ms after navigation start, for `age`.
pub fn batch<'a>(view: &PageView<'_>, findings: impl Iterator<Item = &'a Finding>, now: u64) -> String {
    let user_agent = truncate(view.user_agent, 512);
    let reports: Vec<_> = findings
        .map(|f| Envelope {
            kind: "tagwatch-finding",
            age: now.saturating_sub(f.at),
            url: view.url,
            user_agent,
            body: FindingBody {
                schema: SCHEMA,
                site: view.site,
                page_view: view.id,
                finding: f.kind,
                vendor: f.vendor,
                category: f.category,
                at: f.at,
                count: f.count,
                evidence: &f.evidence,
                consent: &f.consent,
            },
        })
        .collect();
    serde_json::to_string(&reports).unwrap_or_default()
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}
