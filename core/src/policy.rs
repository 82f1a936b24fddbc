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
use crate::json::{self, Leaf};
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
        Policy::DEFAULT
    }
}

impl Policy {
    /// [`Policy::default`] as a constant (`Engine::new` starts from one).
    pub(crate) const DEFAULT: Policy = Policy {
        regions: None,
        pages: Vec::new(),
        categories: Vec::new(),
        grace_ms: DEFAULT_GRACE_MS,
        cookie_max_days: None,
        consent_names: ConsentNames::EMPTY,
        tcf_vendors: Vec::new(),
        accept_implied: false,
    };
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
        // A loop, not `filter().peekable()` (its instances: 115 bytes of
        // the shipped wasm's gzip).
        let mut scoped = false;
        for (v, glob) in &self.pages {
            if v == vendor {
                if glob_match(glob, path) {
                    return true;
                }
                scoped = true;
            }
        }
        !scoped
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
    /// site's typo must not switch its whole policy off); text that is not
    /// JSON leaves the default policy. Read path by path as the document is
    /// walked (`json::walk`), so the page carries no JSON tree for it; a
    /// key given twice applies twice (a scalar's last value wins).
    pub fn from_json(text: &str) -> Policy {
        let mut p = Policy::default();
        // Only a document that reads whole applies, not half of one.
        if json::walk(text, &mut |path, leaf| p.read(path, leaf)) {
            p
        } else {
            Policy::default()
        }
    }

    /// Reads a policy from its line form: what the page's loader writes
    /// from the site's `policy` object (`www/loader.js`, `lines`), so that
    /// the page needs no JSON scanner. One line per value of the document,
    /// in document order: the keys that lead to it, each followed by a TAB
    /// (an array's item: an empty key), then the value — `"` and its text
    /// (strings and numbers), `b` a boolean, `n` `null`, `[` the beginning
    /// of an array. The writer turns a TAB or line break inside a key or a
    /// text into a space. It is the document [`Policy::from_json`] reads,
    /// flattened: the same [`Policy::read`] takes each line, so a policy
    /// key is added once for both.
    pub fn from_lines(text: &str) -> Policy {
        let mut p = Policy::default();
        let mut path = Vec::new();
        for line in crate::fields(text, b'\n') {
            // Every field but the last is a key, the last the value: read
            // forwards (`next_back` kept a reverse splitter in the page's
            // wasm for this line alone).
            let mut fields = crate::fields(line, b'\t');
            let Some(mut value) = fields.next() else {
                continue;
            };
            path.clear();
            for field in fields {
                path.push((!value.is_empty()).then(|| String::from(value)));
                value = field;
            }
            if let Some(leaf) = line_leaf(value) {
                p.read(&path, leaf);
            }
        }
        p
    }

    /// One value of the policy's JSON at `path` (object keys; `None` for
    /// an array's item). A new policy key is one arm here.
    fn read(&mut self, path: &[Option<String>], leaf: Leaf<'_>) {
        // One integer parser for every number (each width is its own code).
        let number = crate::parse_u64;
        let category = |leaf| match leaf {
            Leaf::Text(t) => Category::parse(t),
            _ => None,
        };
        match (path, leaf) {
            ([Some(k)], Leaf::Text(t)) if k == "grace_ms" => {
                if let Some(ms) = number(t) {
                    self.grace_ms = ms;
                }
            }
            ([Some(k)], leaf) if k == "cookie_max_days" => {
                self.cookie_max_days = match leaf {
                    Leaf::Text(t) => number(t).and_then(|d| d.try_into().ok()),
                    _ => None,
                };
            }
            ([Some(k)], leaf) if k == "implied" => {
                self.accept_implied = matches!(leaf, Leaf::Text(t) if accepts_implied(t));
            }
            ([Some(k), None], Leaf::Text(region)) if k == "regions" => self.allow_region(region),
            ([Some(k), Some(vendor), None], Leaf::Text(glob)) if k == "pages" => {
                self.allow_page(vendor, glob)
            }
            ([Some(k), Some(vendor), Some(purpose)], leaf) if k == "vendors" => {
                if let Some(c) = category(leaf) {
                    self.set_category(vendor, purpose, c);
                }
            }
            ([Some(k), Some(source), Some(name)], leaf) if k == "cmp" => {
                let categories = match (leaf, category(leaf)) {
                    (Leaf::Null | Leaf::Array, _) => Vec::new(),
                    (_, Some(c)) => vec![c],
                    (_, None) => return,
                };
                self.consent_names.set(source, name, categories);
            }
            ([Some(k), Some(_), Some(_), None], leaf) if k == "cmp" => {
                if let Some(c) = category(leaf) {
                    // The list's own entry, set by its `Leaf::Array` just before.
                    self.consent_names.add_to_last(c);
                }
            }
            ([Some(k), Some(vendor)], Leaf::Text(id)) if k == "tcf_vendors" => {
                if let Some(id) = number(id).and_then(|id| id.try_into().ok()) {
                    // Not `clone()`: see `engine::cookie_evidence`.
                    self.tcf_vendors.push((vendor.as_str().into(), id));
                }
            }
            _ => {}
        }
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

/// A policy line's value (`Policy::from_lines`): `"` and a text, `b`,
/// `n` or `[`; `None` for anything else.
fn line_leaf(value: &str) -> Option<Leaf<'_>> {
    match value.split_at_checked(1) {
        Some(("\"", text)) => Some(Leaf::Text(text)),
        Some(("b", "")) => Some(Leaf::Bool),
        Some(("n", "")) => Some(Leaf::Null),
        Some(("[", "")) => Some(Leaf::Array),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `from_lines` reading each line's fields forwards reads what the
    /// former `split().next_back()` form read, on the golden lines and
    /// malformed ones.
    #[test]
    fn lines_read_forwards_as_before() {
        fn former(text: &str) -> Policy {
            let mut p = Policy::default();
            let mut path = Vec::new();
            for line in text.split(['\n']) {
                let mut fields = line.split(['\t']);
                let Some(value) = fields.next_back() else {
                    continue;
                };
                path.clear();
                path.extend(fields.map(|k| (!k.is_empty()).then(|| String::from(k))));
                if let Some(leaf) = line_leaf(value) {
                    p.read(&path, leaf);
                }
            }
            p
        }
        let golden = include_str!("../../tests/fixtures/policy/policy.lines");
        let mut texts = vec![
            String::new(),
            "\t".into(),
            "\t\t\"x".into(),
            "grace_ms\t\"250\t".into(),
            "grace_ms\t\t\"250".into(),
            "\tgrace_ms\t\"250".into(),
            "\"1\n\n\t\n".into(),
            golden.into(),
        ];
        for line in golden.split('\n') {
            texts.push(line.replace('\t', "\t\t"));
            texts.push(format!("\t{line}"));
            texts.push(format!("{line}\t"));
        }
        for t in &texts {
            assert_eq!(Policy::from_lines(t), former(t), "{t:?}");
        }
        assert_ne!(
            Policy::from_lines(golden),
            Policy::default(),
            "the golden lines set something"
        );
    }

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

    /// The policy is read path by path as the JSON is walked: lists of
    /// categories, `null`, JS-literal quoting, a broken or hostile document.
    #[test]
    fn the_walked_reading_keeps_the_tree_reading() {
        let p = Policy::from_json(
            r#"{cmp:{'tcf':{"1":["functional",7,"nope",["analytics"],"analytics"],"2":[],"3":null,"4":true}},
                "regions":["EU",["us"],{"x":"au"}],"vendors":{"intercom":{"messenger":"necessary","media":7}},
                "pages":{"intercom":["/a/*",1,null]},"tcf_vendors":{"criteo":91,"x":"91x","y":70000},
                "cookie_max_days":"30","grace_ms":7}"#,
        );
        let names = |n: &str| p.consent_names.get("tcf", n).map(<[Category]>::to_vec);
        assert_eq!(
            names("1"),
            Some(vec![Category::Functional, Category::Analytics])
        );
        assert_eq!(
            (names("2"), names("3"), names("4")),
            (Some(vec![]), Some(vec![]), None)
        );
        assert_eq!(p.regions, Some(vec!["eu".into()]));
        assert_eq!(
            p.categories,
            vec![("intercom".into(), "messenger".into(), Category::Necessary)]
        );
        assert_eq!(
            p.pages,
            vec![
                ("intercom".into(), "/a/*".into()),
                ("intercom".into(), "1".into())
            ]
        );
        assert_eq!(p.tcf_vendors, vec![("criteo".into(), 91)]);
        assert_eq!((p.cookie_max_days, p.grace_ms), (Some(30), 7));
        // Not one whole value: the default policy, not the part before the break.
        for broken in [
            r#"{"grace_ms":1,"regions":["eu"]"#,
            r#"{"grace_ms":1,"regions":["eu",}"#,
            r#"{"grace_ms":1 "regions":["eu"]}"#,
        ] {
            assert_eq!(Policy::from_json(broken), Policy::default(), "{broken}");
        }
        // Deep nesting is refused, not followed (no unbounded recursion).
        let deep = format!("{{\"grace_ms\":1,\"x\":{}}}", "[".repeat(100_000));
        assert_eq!(Policy::from_json(&deep), Policy::default());
        let nested = format!(
            "{{\"grace_ms\":1,\"x\":{}1{}}}",
            "[".repeat(15),
            "]".repeat(15)
        );
        assert_eq!(Policy::from_json(&nested).grace_ms, 1);
    }

    /// The golden pair: the loader's line form of a policy
    /// (`tests/fixtures/policy/policy.lines`, written by `www/loader.js`
    /// from `policy.json`; tests/e2e/policy-lines.test.mjs holds the loader
    /// to it) reads as the JSON does, here and through serde.
    #[test]
    fn the_line_form_reads_as_the_json() {
        let json = include_str!("../../tests/fixtures/policy/policy.json");
        let lines = include_str!("../../tests/fixtures/policy/policy.lines");
        let p = Policy::from_lines(lines);
        assert_eq!(p, Policy::from_json(json));
        assert_eq!(p, serde_json::from_str::<Policy>(json).unwrap());
        // Every key of the policy is in the fixture.
        let d = Policy::default();
        assert!(p.regions != d.regions && p.pages != d.pages && p.categories != d.categories);
        assert!(p.grace_ms != d.grace_ms && p.cookie_max_days != d.cookie_max_days);
        assert!(p.consent_names != d.consent_names && p.tcf_vendors != d.tcf_vendors);
        assert!(p.accept_implied != d.accept_implied);
        assert_eq!(
            p.consent_names.get("onetrust", "C0004"),
            Some(&[Category::Marketing, Category::Analytics][..])
        );
        assert_eq!(p.consent_names.get("onetrust", "C0002"), Some(&[][..]));
    }

    /// Whatever the lines hold, the reader takes what fits and skips the rest.
    #[test]
    fn the_line_form_takes_any_text() {
        for text in [
            "",
            "\n",
            "\t",
            "\t\t\t",
            "\"",
            "b",
            "[",
            "grace_ms",
            "grace_ms\t",
            "grace_ms\tx",
            "grace_ms\t\"-1",
            "grace_ms\t\"99999999999999999999999",
            "regions\t\"eu",
            "cmp\ttcf\t1\t\t\"functional",
            "\u{0}\t\u{ffff}\t\"\u{10ffff}",
            "é\t\"é",
        ] {
            assert_eq!(Policy::from_lines(text), Policy::default(), "{text:?}");
        }
        let p = Policy::from_lines("grace_ms\t\"7\r\ngrace_ms\tn\nregions\t\t\"EU\nregions\t\tb\n");
        assert_eq!(
            (p.grace_ms, p.regions),
            (DEFAULT_GRACE_MS, Some(vec!["eu".into()]))
        );
        let many = "regions\t\t\"eu\n".repeat(10_000);
        assert_eq!(
            Policy::from_lines(&many).regions.map(|r| r.len()),
            Some(10_000)
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
