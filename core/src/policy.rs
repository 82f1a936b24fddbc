//! The site's rules: which consent category each vendor purpose needs, where
//! a vendor may run, which regions data may go to, and how long leftovers may
//! survive a withdrawal. Shape (JSON, the `policy` key of `config`):
//!
//! ```json
//! { "regions": ["eu"],
//!   "pages": { "intercom": ["/support/*"] },
//!   "vendors": { "intercom": { "messenger": "necessary", "tracking": "marketing" } },
//!   "grace_ms": 5000,
//!   "implied": "reject",
//!   "cmp": { "onetrust": { "C0005": "functional" }, "tcf": { "1": ["functional"] } } }
//! ```

use crate::catalog::PurposeDef;
use crate::consent::{Category, ConsentNames};
use crate::json::{parse_value, Val};
use crate::url::glob_match;
use alloc::collections::BTreeMap;
use alloc::{string::String, vec, vec::Vec};
use serde::Deserialize;

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
    /// Longest remaining lifetime a vendor cookie may have, in days.
    pub cookie_max_days: Option<u32>,
    /// The site's meaning of its CMP's names (`cmp` key; `docs/policy.md`).
    pub consent_names: ConsentNames,
    /// `(vendor, IAB GVL id)`: vendors whose TCF vendor consent is required
    /// besides the purposes (`tcf_vendors` key), over [`DEFAULT_TCF_VENDORS`].
    pub tcf_vendors: Vec<(String, u16)>,
    /// Consent a CMP applied without a choice counts as the CMP says
    /// (`"implied": "accept"`); by default (`"reject"`) it grants nothing,
    /// since the page cannot know whether the visitor's region allows it.
    pub accept_implied: bool,
}

/// Catalog vendors registered in the IAB Global Vendor List, by GVL id
/// (shared/reference/consent.md §1.1: Google Advertising Products is 755).
pub const DEFAULT_TCF_VENDORS: [(&str, u16); 1] = [("google-ads", 755)];

/// One `cmp` entry: a category, a list of them, or `null` for none.
#[derive(Deserialize)]
#[serde(untagged)]
enum NameDoc {
    One(Category),
    Many(Vec<Category>),
    None(()),
}

/// The JSON shape of a policy (the contract's `policy` object).
#[derive(Deserialize)]
#[serde(default)]
struct PolicyDoc {
    regions: Option<Vec<String>>,
    pages: BTreeMap<String, Vec<String>>,
    vendors: BTreeMap<String, BTreeMap<String, Category>>,
    grace_ms: u64,
    cookie_max_days: Option<u32>,
    cmp: BTreeMap<String, BTreeMap<String, NameDoc>>,
    tcf_vendors: BTreeMap<String, u16>,
    implied: Option<String>,
}

impl Default for PolicyDoc {
    fn default() -> Self {
        PolicyDoc {
            regions: None,
            pages: BTreeMap::new(),
            vendors: BTreeMap::new(),
            grace_ms: DEFAULT_GRACE_MS,
            cookie_max_days: None,
            cmp: BTreeMap::new(),
            tcf_vendors: BTreeMap::new(),
            implied: None,
        }
    }
}

impl From<PolicyDoc> for Policy {
    fn from(doc: PolicyDoc) -> Self {
        let mut p = Policy {
            grace_ms: doc.grace_ms,
            cookie_max_days: doc.cookie_max_days,
            accept_implied: doc.implied.as_deref().is_some_and(accepts_implied),
            ..Policy::default()
        };
        for region in doc.regions.into_iter().flatten() {
            p.allow_region(&region);
        }
        for (vendor, globs) in doc.pages {
            p.pages
                .extend(globs.into_iter().map(|g| (vendor.clone(), g)));
        }
        for (vendor, purposes) in doc.vendors {
            p.categories.extend(
                purposes
                    .into_iter()
                    .map(|(purpose, c)| (vendor.clone(), purpose, c)),
            );
        }
        for (source, names) in doc.cmp {
            for (name, doc) in names {
                let categories = match doc {
                    NameDoc::One(c) => vec![c],
                    NameDoc::Many(cs) => cs,
                    NameDoc::None(()) => Vec::new(),
                };
                p.consent_names.set(&source, &name, categories);
            }
        }
        p.tcf_vendors.extend(doc.tcf_vendors);
        p
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            regions: None,
            pages: Vec::new(),
            categories: Vec::new(),
            grace_ms: DEFAULT_GRACE_MS,
            cookie_max_days: None,
            consent_names: ConsentNames::default(),
            tcf_vendors: Vec::new(),
            accept_implied: false,
        }
    }
}

impl Policy {
    /// The category a vendor's purpose needs: the site's override, else the
    /// catalog default; `None` when it needs none (hot-linked media).
    pub fn category(&self, vendor: &str, purpose: &PurposeDef) -> Option<Category> {
        let set = self
            .categories
            .iter()
            .rev()
            .find(|(v, p, _)| v == vendor && p == purpose.name);
        match set {
            Some((_, _, c)) => Some(*c),
            None => purpose.consent,
        }
    }

    /// The IAB GVL id of `vendor`, when its TCF vendor consent counts.
    pub fn tcf_vendor(&self, vendor: &str) -> Option<u16> {
        let site = self
            .tcf_vendors
            .iter()
            .rev()
            .find(|(v, _)| v == vendor)
            .map(|(_, id)| *id);
        site.or_else(|| {
            DEFAULT_TCF_VENDORS
                .iter()
                .find(|(v, _)| *v == vendor)
                .map(|(_, id)| *id)
        })
    }

    /// Whether `region` is allowed; unknown regions are never flagged.
    pub fn region_allowed(&self, region: &str) -> bool {
        self.regions
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|r| r.eq_ignore_ascii_case(region)))
    }

    /// Whether `vendor` may run on `path`.
    pub fn page_allowed(&self, vendor: &str, path: &str) -> bool {
        let mut globs = self.pages.iter().filter(|(v, _)| v == vendor).peekable();
        globs.peek().is_none() || globs.any(|(_, g)| glob_match(g, path))
    }

    /// Sets the category of one vendor purpose.
    pub fn set_category(&mut self, vendor: &str, purpose: &str, category: Category) {
        self.categories
            .push((vendor.into(), purpose.into(), category));
    }

    /// Adds an allowed region.
    pub fn allow_region(&mut self, region: &str) {
        self.regions
            .get_or_insert_with(Vec::new)
            .push(region.to_ascii_lowercase());
    }

    /// Reads a policy from its JSON text (the contract's `config.policy`,
    /// `docs/policy.md`), as the in-page monitor receives it from the
    /// loader. The same shape as the `Deserialize` impl, read tolerantly:
    /// an entry of the wrong shape is skipped, the rest still applies (a
    /// site's typo must not switch its whole policy off).
    pub fn from_json(text: &str) -> Policy {
        let mut p = Policy::default();
        let Some(root) = parse_value(text) else {
            return p;
        };
        let number = |key: &str| {
            root.member(key)
                .and_then(Val::text)
                .and_then(|t| t.parse().ok())
        };
        if let Some(ms) = number("grace_ms") {
            p.grace_ms = ms;
        }
        p.cookie_max_days = number("cookie_max_days").and_then(|d| u32::try_from(d).ok());
        p.accept_implied = root
            .member("implied")
            .and_then(Val::text)
            .is_some_and(accepts_implied);
        for region in items(root.member("regions")) {
            if let Some(r) = region.text() {
                p.allow_region(r);
            }
        }
        for (vendor, globs) in members(root.member("pages")) {
            for glob in items(Some(globs)).filter_map(Val::text) {
                p.allow_page(vendor, glob);
            }
        }
        for (vendor, purposes) in members(root.member("vendors")) {
            for (purpose, category) in members(Some(purposes)) {
                if let Some(c) = category.text().and_then(Category::parse) {
                    p.set_category(vendor, purpose, c);
                }
            }
        }
        for (source, names) in members(root.member("cmp")) {
            for (name, value) in members(Some(names)) {
                let categories = match value {
                    Val::Null => Vec::new(),
                    Val::Arr(list) => list
                        .iter()
                        .filter_map(Val::text)
                        .filter_map(Category::parse)
                        .collect(),
                    one => match one.text().and_then(Category::parse) {
                        Some(c) => vec![c],
                        None => continue,
                    },
                };
                p.consent_names.set(source, name, categories);
            }
        }
        for (vendor, id) in members(root.member("tcf_vendors")) {
            if let Some(id) = id.text().and_then(|t| t.parse().ok()) {
                p.tcf_vendors.push((vendor.into(), id));
            }
        }
        p
    }

    /// Adds a page glob where `vendor` may run.
    pub fn allow_page(&mut self, vendor: &str, glob: &str) {
        self.pages.push((vendor.into(), glob.into()));
    }
}

/// The `implied` key: only `"accept"` counts implied consent; anything
/// else is the default, `"reject"`.
fn accepts_implied(value: &str) -> bool {
    value == "accept"
}

/// The items of a JSON array (none when it is not one).
fn items(v: Option<&Val>) -> impl Iterator<Item = &Val> {
    let list = match v {
        Some(Val::Arr(list)) => list.as_slice(),
        _ => &[],
    };
    list.iter()
}

/// The members of a JSON object (none when it is not one).
fn members(v: Option<&Val>) -> impl Iterator<Item = (&str, &Val)> {
    let list = match v {
        Some(Val::Obj(list)) => list.as_slice(),
        _ => &[],
    };
    list.iter().map(|(k, v)| (k.as_str(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purpose(name: &str) -> &'static PurposeDef {
        let v = crate::catalog::vendor("intercom").unwrap();
        v.purposes().find(|p| p.name == name).unwrap()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let p = Policy::default();
        assert_eq!(
            p.category("intercom", purpose("messenger")),
            Some(Category::Functional)
        );
        assert_eq!(
            p.category("intercom", purpose("tracking")),
            Some(Category::Marketing)
        );
        assert_eq!(p.category("intercom", purpose("media")), None);
        assert!(p.region_allowed("us"));
        assert!(p.page_allowed("intercom", "/anything"));
        assert_eq!(p.grace_ms, 5000);
    }

    #[test]
    fn the_monitor_reads_the_json_shape_as_the_collector_does() {
        let text = r#"{"regions":["eu"],"pages":{"intercom":["/support/*"]},
            "vendors":{"intercom":{"messenger":"necessary"},"x":{"y":"bogus"}},"grace_ms":1000,"cookie_max_days":30,
            "cmp":{"onetrust":{"C0002":null,"C0005":"functional"},"tcf":{"1":["functional","analytics"]}},"tcf_vendors":{"criteo":91},
            "implied":"accept"}"#;
        let serde: Policy =
            serde_json::from_str(&text.replace(r#","x":{"y":"bogus"}"#, "")).unwrap();
        assert_eq!(Policy::from_json(text), serde);
        assert!(serde.accept_implied);
        assert!(!Policy::from_json(r#"{"implied":"reject"}"#).accept_implied);
        assert!(!Policy::from_json(r#"{"implied":true}"#).accept_implied);
        assert_eq!(Policy::from_json("{}"), Policy::default());
        assert_eq!(Policy::from_json("not json"), Policy::default());
        // A wrong shape is skipped key by key.
        let p = Policy::from_json(
            r#"{"regions":"eu","grace_ms":"soon","pages":{"intercom":"/x"},"cookie_max_days":30}"#,
        );
        assert_eq!(
            (p.regions, p.grace_ms, p.pages.len(), p.cookie_max_days),
            (None, DEFAULT_GRACE_MS, 0, Some(30))
        );
    }

    #[test]
    fn parses_the_contract_shape() {
        let p: Policy = serde_json::from_str(
            r#"{"regions":["eu"],"pages":{"intercom":["/support/*"]},
                "vendors":{"intercom":{"messenger":"necessary","tracking":"marketing"}},"grace_ms":1000,
                "cookie_max_days":30}"#,
        )
        .unwrap();
        assert_eq!(
            p.category("intercom", purpose("messenger")),
            Some(Category::Necessary)
        );
        assert!(!p.region_allowed("us") && p.region_allowed("EU"));
        assert!(
            p.page_allowed("intercom", "/support/faq") && !p.page_allowed("intercom", "/pricing")
        );
        assert_eq!(p.grace_ms, 1000);
        assert_eq!(p.cookie_max_days, Some(30));
    }
}
