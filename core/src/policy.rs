//! The site's rules: which consent category each vendor purpose needs, where
//! a vendor may run, which regions data may go to, and how long leftovers may
//! survive a withdrawal. Shape (JSON, the `policy` key of `config`):
//!
//! ```json
//! { "regions": ["eu"],
//!   "pages": { "intercom": ["/support/*"] },
//!   "vendors": { "intercom": { "messenger": "necessary", "tracking": "marketing" } },
//!   "grace_ms": 5000,
//!   "cmp": { "onetrust": { "C0005": "functional" }, "tcf": { "1": ["functional"] } } }
//! ```

use alloc::{string::String, vec::Vec, vec};
use crate::catalog::PurposeDef;
use crate::consent::{Category, ConsentNames};
use crate::url::glob_match;
use serde::Deserialize;
use alloc::collections::BTreeMap;

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
        }
    }
}

impl From<PolicyDoc> for Policy {
    fn from(doc: PolicyDoc) -> Self {
        let mut p = Policy { grace_ms: doc.grace_ms, cookie_max_days: doc.cookie_max_days, ..Policy::default() };
        for region in doc.regions.into_iter().flatten() {
            p.allow_region(&region);
        }
        for (vendor, globs) in doc.pages {
            p.pages.extend(globs.into_iter().map(|g| (vendor.clone(), g)));
        }
        for (vendor, purposes) in doc.vendors {
            p.categories.extend(purposes.into_iter().map(|(purpose, c)| (vendor.clone(), purpose, c)));
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
        }
    }
}

impl Policy {
    /// The category a vendor's purpose needs: the site's override, else the
    /// catalog default; `None` when it needs none (hot-linked media).
    pub fn category(&self, vendor: &str, purpose: &PurposeDef) -> Option<Category> {
        let set = self.categories.iter().rev().find(|(v, p, _)| v == vendor && p == purpose.name);
        match set {
            Some((_, _, c)) => Some(*c),
            None => purpose.consent,
        }
    }

    /// The IAB GVL id of `vendor`, when its TCF vendor consent counts.
    pub fn tcf_vendor(&self, vendor: &str) -> Option<u16> {
        let site = self.tcf_vendors.iter().rev().find(|(v, _)| v == vendor).map(|(_, id)| *id);
        site.or_else(|| DEFAULT_TCF_VENDORS.iter().find(|(v, _)| *v == vendor).map(|(_, id)| *id))
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

    /// Applies one rule of the loader's compact policy text (one rule a
    /// line, fields split by TAB): `r region`, `p vendor glob`,
    /// `c vendor purpose category`, `g grace_ms`, `m cookie_max_days`,
    /// `n source name categories` (comma-separated, empty for none),
    /// `v vendor gvl_id`. The
    /// in-page monitor takes the policy this way instead of carrying a JSON
    /// decoder. Unknown or malformed lines are ignored.
    pub fn apply_rule(&mut self, line: &str) {
        let mut f = line.split('\t');
        let (kind, a, b, c) = (f.next(), f.next(), f.next(), f.next());
        match (kind, a, b, c) {
            (Some("r"), Some(region), _, _) => self.allow_region(region),
            (Some("p"), Some(vendor), Some(glob), _) => self.allow_page(vendor, glob),
            (Some("c"), Some(vendor), Some(purpose), Some(category)) => {
                if let Some(category) = Category::parse(category) {
                    self.set_category(vendor, purpose, category);
                }
            }
            (Some("n"), Some(source), Some(name), Some(list)) => {
                let categories = list.split(',').filter_map(Category::parse).collect();
                self.consent_names.set(source, name, categories);
            }
            (Some("v"), Some(vendor), Some(id), _) => {
                if let Ok(id) = id.parse() {
                    self.tcf_vendors.push((vendor.into(), id));
                }
            }
            (Some("g"), Some(ms), _, _) => self.grace_ms = ms.parse().unwrap_or(self.grace_ms),
            (Some("m"), Some(days), _, _) => self.cookie_max_days = days.parse().ok().or(self.cookie_max_days),
            _ => {}
        }
    }

    /// Adds a page glob where `vendor` may run.
    pub fn allow_page(&mut self, vendor: &str, glob: &str) {
        self.pages.push((vendor.into(), glob.into()));
    }
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
        assert_eq!(p.category("intercom", purpose("messenger")), Some(Category::Functional));
        assert_eq!(p.category("intercom", purpose("tracking")), Some(Category::Marketing));
        assert_eq!(p.category("intercom", purpose("media")), None);
        assert!(p.region_allowed("us"));
        assert!(p.page_allowed("intercom", "/anything"));
        assert_eq!(p.grace_ms, 5000);
    }

    #[test]
    fn compact_rules_match_the_json_shape() {
        let mut p = Policy::default();
        for line in "r\teu\np\tintercom\t/support/*\nc\tintercom\tmessenger\tnecessary\nc\tx\ty\tbogus\ng\t1000\nm\t30\nzz\nn\tonetrust\tC0002\t\nn\tonetrust\tC0005\tfunctional\nn\ttcf\t1\tfunctional,analytics\nv\tcriteo\t91\n".lines() {
            p.apply_rule(line);
        }
        let json: Policy = serde_json::from_str(
            r#"{"regions":["eu"],"pages":{"intercom":["/support/*"]},
                "vendors":{"intercom":{"messenger":"necessary"}},"grace_ms":1000,"cookie_max_days":30,
                "cmp":{"onetrust":{"C0002":null,"C0005":"functional"},"tcf":{"1":["functional","analytics"]}},"tcf_vendors":{"criteo":91}}"#,
        )
        .unwrap();
        assert_eq!(p, json);
    }

    #[test]
    fn parses_the_contract_shape() {
        let p: Policy = serde_json::from_str(
            r#"{"regions":["eu"],"pages":{"intercom":["/support/*"]},
                "vendors":{"intercom":{"messenger":"necessary","tracking":"marketing"}},"grace_ms":1000,
                "cookie_max_days":30}"#,
        )
        .unwrap();
        assert_eq!(p.category("intercom", purpose("messenger")), Some(Category::Necessary));
        assert!(!p.region_allowed("us") && p.region_allowed("EU"));
        assert!(p.page_allowed("intercom", "/support/faq") && !p.page_allowed("intercom", "/pricing"));
        assert_eq!(p.grace_ms, 1000);
        assert_eq!(p.cookie_max_days, Some(30));
    }
}
