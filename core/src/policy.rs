//! The site's rules: which consent category each vendor purpose needs, where
//! a vendor may run, which regions data may go to, and how long leftovers may
//! survive a withdrawal. Shape (JSON, the `policy` key of `config`):
//!
//! ```json
//! { "regions": ["eu"],
//!   "pages": { "intercom": ["/support/*"] },
//!   "vendors": { "intercom": { "messenger": "necessary", "tracking": "marketing" } },
//!   "grace_ms": 5000 }
//! ```

use crate::catalog::Purpose;
use crate::consent::Category;
use crate::url::glob_match;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Default time after a withdrawal before leftover cookies and requests count.
pub const DEFAULT_GRACE_MS: u64 = 5000;

/// A site policy. Kept as flat lists: a page has a handful of rules, and the
/// in-page monitor should not carry a tree map for them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(from = "PolicyDoc")]
pub struct Policy {
    /// Regions data may be sent to (`eu`, `us`, `au`); `None` allows all.
    pub regions: Option<Vec<String>>,
    /// `(vendor, path glob)`: pages where the vendor may run. A vendor with no
    /// entry may run everywhere.
    pub pages: Vec<(String, String)>,
    /// `(vendor, purpose, category)` overrides of the catalog defaults.
    pub categories: Vec<(String, String, Category)>,
    /// Grace period after a withdrawal, in ms.
    pub grace_ms: u64,
}

/// The JSON shape of a policy (the contract's `policy` object).
#[derive(Deserialize)]
#[serde(default)]
struct PolicyDoc {
    regions: Option<Vec<String>>,
    pages: BTreeMap<String, Vec<String>>,
    vendors: BTreeMap<String, BTreeMap<String, Category>>,
    grace_ms: u64,
}

impl Default for PolicyDoc {
    fn default() -> Self {
        PolicyDoc { regions: None, pages: BTreeMap::new(), vendors: BTreeMap::new(), grace_ms: DEFAULT_GRACE_MS }
    }
}

impl From<PolicyDoc> for Policy {
    fn from(doc: PolicyDoc) -> Self {
        let mut p = Policy { grace_ms: doc.grace_ms, ..Policy::default() };
        for region in doc.regions.into_iter().flatten() {
            p.allow_region(&region);
        }
        for (vendor, globs) in doc.pages {
            p.pages.extend(globs.into_iter().map(|g| (vendor.clone(), g)));
        }
        for (vendor, purposes) in doc.vendors {
            p.categories.extend(purposes.into_iter().map(|(purpose, c)| (vendor.clone(), purpose, c)));
        }
        p
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy { regions: None, pages: Vec::new(), categories: Vec::new(), grace_ms: DEFAULT_GRACE_MS }
    }
}

impl Policy {
    /// The category a vendor's purpose needs; `None` when it needs none
    /// (hot-linked media).
    pub fn category(&self, vendor: &str, purpose: Purpose) -> Option<Category> {
        let set = self.categories.iter().rev().find(|(v, p, _)| v == vendor && p == purpose.as_str());
        if let Some((_, _, c)) = set {
            return Some(*c);
        }
        match purpose {
            Purpose::Messenger => Some(Category::Functional),
            Purpose::Tracking => Some(Category::Marketing),
            Purpose::Media => None,
        }
    }

    /// Whether `region` is allowed; unknown regions are never flagged.
    pub fn region_allowed(&self, region: &str) -> bool {
        self.regions.as_ref().is_none_or(|allowed| allowed.iter().any(|r| r.eq_ignore_ascii_case(region)))
    }

    /// Whether `vendor` may run on `path`.
    pub fn page_allowed(&self, vendor: &str, path: &str) -> bool {
        let mut globs = self.pages.iter().filter(|(v, _)| v == vendor).peekable();
        globs.peek().is_none() || globs.any(|(_, g)| glob_match(g, path))
    }

    /// Sets the category of one vendor purpose.
    pub fn set_category(&mut self, vendor: &str, purpose: &str, category: Category) {
        self.categories.push((vendor.into(), purpose.into(), category));
    }

    /// Adds an allowed region.
    pub fn allow_region(&mut self, region: &str) {
        self.regions.get_or_insert_with(Vec::new).push(region.to_ascii_lowercase());
    }

    /// Adds a page glob where `vendor` may run.
    pub fn allow_page(&mut self, vendor: &str, glob: &str) {
        self.pages.push((vendor.into(), glob.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let p = Policy::default();
        assert_eq!(p.category("intercom", Purpose::Messenger), Some(Category::Functional));
        assert_eq!(p.category("intercom", Purpose::Tracking), Some(Category::Marketing));
        assert_eq!(p.category("intercom", Purpose::Media), None);
        assert!(p.region_allowed("us"));
        assert!(p.page_allowed("intercom", "/anything"));
        assert_eq!(p.grace_ms, 5000);
    }

    #[test]
    fn parses_the_contract_shape() {
        let p: Policy = serde_json::from_str(
            r#"{"regions":["eu"],"pages":{"intercom":["/support/*"]},
                "vendors":{"intercom":{"messenger":"necessary","tracking":"marketing"}},"grace_ms":1000}"#,
        )
        .unwrap();
        assert_eq!(p.category("intercom", Purpose::Messenger), Some(Category::Necessary));
        assert!(!p.region_allowed("us") && p.region_allowed("EU"));
        assert!(p.page_allowed("intercom", "/support/faq") && !p.page_allowed("intercom", "/pricing"));
        assert_eq!(p.grace_ms, 1000);
    }
}
