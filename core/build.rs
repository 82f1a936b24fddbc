//! Compiles `catalog/*.toml` into static Rust tables (`$OUT_DIR/catalog.rs`),
//! so the monitor carries no TOML parser and a vendor is added by adding a
//! file. Validation errors fail the build with the file and field named.

// A build script reports a bad catalog by failing the build: panicking is its
// error path, and what it reads is the repository's own catalog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::disallowed_methods)]

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorDoc {
    id: String,
    name: String,
    owner: String,
    category: String,
    primary: String,
    domains: Vec<String>,
    #[serde(default)]
    globals: Vec<String>,
    #[serde(default)]
    dom_ids: Vec<String>,
    #[serde(default)]
    loader_script_ids: Vec<String>,
    #[serde(default)]
    sources: Vec<String>,
    weight: Option<WeightDoc>,
    purposes: BTreeMap<String, PurposeDoc>,
    #[serde(default)]
    paths: Vec<PathDoc>,
    #[serde(default)]
    cookies: Vec<CookieDoc>,
    #[serde(default)]
    regions: BTreeMap<String, String>,
    identity: Option<IdentityDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightDoc {
    script_kb: u32,
    requests: u32,
    #[serde(default)]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeDoc {
    consent: String,
    #[serde(default)]
    tracking: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathDoc {
    #[serde(default)]
    hosts: Vec<String>,
    path: String,
    resource: String,
    purpose: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CookieDoc {
    name: String,
    #[serde(rename = "match")]
    kind: String,
    purpose: String,
    lifetime_days: Option<u32>,
    #[serde(default)]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityDoc {
    settings: String,
    api: String,
    verbs: Vec<String>,
    ids: Vec<String>,
    proofs: Vec<String>,
}

const CATEGORIES: &[&str] = &[
    "chat", "support", "analytics", "advertising", "tag_manager", "session_replay", "ab_testing",
    "monitoring", "cdp", "marketing_automation", "consent",
];

fn consent_expr(c: &str) -> Option<&'static str> {
    Some(match c {
        "necessary" => "Some(Category::Necessary)",
        "functional" => "Some(Category::Functional)",
        "analytics" => "Some(Category::Analytics)",
        "marketing" => "Some(Category::Marketing)",
        "none" => "None",
        _ => return None,
    })
}

fn strs(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("&[{}]", items.join(", "))
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("catalog/ directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let text = std::fs::read_to_string(f).expect("readable catalog file");
        let doc: VendorDoc = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        validate(f, &doc);
        docs.push(doc);
    }
    // The Intercom-first catalog lists Intercom first; the rest by id.
    docs.sort_by_key(|d| (d.id != "intercom", d.id.clone()));
    let mut ids = BTreeSet::new();
    let mut domains: BTreeMap<String, usize> = BTreeMap::new();
    for (i, d) in docs.iter().enumerate() {
        assert!(ids.insert(d.id.clone()), "duplicate vendor id {}", d.id);
        for dom in &d.domains {
            if let Some(other) = domains.insert(dom.clone(), i) {
                panic!("domain {dom} is in both {} and {}", docs[other].id, d.id);
            }
        }
    }

    // The matching data as one compact text blob, parsed once at first use
    // (`catalog::vendors`). Static structs of slices cost ~4x more wasm
    // after gzip: pointers compress badly, text well. Format: one record a
    // line, fields split by TAB, lists by space (see `catalog.rs`).
    let mut blob = String::new();
    for d in &docs {
        let purpose_names: Vec<&String> = d.purposes.keys().collect();
        let idx = |name: &str| purpose_names.iter().position(|p| *p == name).expect("validated");
        blob += &format!("v\t{}\t{}\n", d.id, idx(&d.primary));
        for (n, p) in &d.purposes {
            // Consent as its initial: n(ecessary) f a m, or - for none.
            let consent = if p.consent == "none" { "-" } else { p.consent.get(..1).unwrap_or("-") };
            blob += &format!("u\t{n}\t{consent}\t{}\n", u8::from(p.tracking));
        }
        // Domains are not repeated here: they come from the sorted index line.
        for (tag, list) in [("g", &d.globals), ("o", &d.dom_ids), ("l", &d.loader_script_ids)] {
            if !list.is_empty() {
                blob += &format!("{tag}\t{}\n", list.join(" "));
            }
        }
        for r in &d.paths {
            // Resource as its initial: s(cript) a(pi) or asset as m(edia).
            let resource = match r.resource.as_str() { "script" => "s", "api" => "a", _ => "m" };
            blob += &format!("p\t{}\t{}\t{resource}\t{}\n", r.hosts.join(" "), r.path, idx(&r.purpose));
        }
        for c in &d.cookies {
            let days = c.lifetime_days.map(|n| n.to_string()).unwrap_or_default();
            let kind = if c.kind == "prefix" { "p" } else { "e" };
            blob += &format!("c\t{}\t{kind}\t{}\t{days}\n", c.name, idx(&c.purpose));
        }
        // Most specific host first, so `api-iam.eu.intercom.io` wins over wider entries.
        let mut regions: Vec<(&String, &String)> = d.regions.iter().collect();
        regions.sort_by_key(|(h, _)| std::cmp::Reverse(h.len()));
        for (h, r) in regions {
            blob += &format!("r\t{h}\t{r}\n");
        }
        if let Some(i) = &d.identity {
            blob += &format!("i\t{}\t{}\t{}\t{}\t{}\n", i.settings, i.api, i.verbs.join(" "), i.ids.join(" "), i.proofs.join(" "));
        }
    }
    // Every domain with its vendor's index, sorted, so the page need not sort.
    blob += "x";
    for (dom, i) in &domains {
        blob += &format!("\t{dom} {i}");
    }
    blob += "\n";
    let mut out = String::new();
    writeln!(out, "/// The catalog's matching data (generated from `catalog/*.toml`).\npub(crate) static BLOB: &str = {blob:?};\n").unwrap();

    // Descriptive facts, used by the CLI and the extension only: the monitor
    // never references this table, so it is not in the shipped wasm.
    writeln!(out, "/// Descriptive facts per vendor, in `VENDORS` order.\npub static VENDOR_INFO: &[VendorInfo] = &[").unwrap();
    for d in &docs {
        let weight = match &d.weight {
            Some(w) => format!("Some(Weight {{ script_kb: {}, requests: {}, source: {:?} }})", w.script_kb, w.requests, w.source),
            None => "None".into(),
        };
        let cookie_sources: Vec<String> = d.cookies.iter().map(|c| format!("{:?}", c.source)).collect();
        writeln!(
            out,
            "    VendorInfo {{ name: {:?}, owner: {:?}, category: {:?}, sources: {}, weight: {weight}, cookie_sources: &[{}] }},",
            d.name, d.owner, d.category, strs(&d.sources), cookie_sources.join(", ")
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();

    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("catalog.rs");
    std::fs::write(dest, out).expect("write generated catalog");
}

fn validate(f: &Path, d: &VendorDoc) {
    let at = |what: &str| format!("{}: {what}", f.display());
    assert!(!d.id.is_empty() && d.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'), "{}", at("id must be [a-z0-9_-]+"));
    assert!(CATEGORIES.contains(&d.category.as_str()), "{}", at(&format!("unknown category {:?}", d.category)));
    assert!(d.purposes.contains_key(&d.primary), "{}", at(&format!("primary purpose {:?} is not declared", d.primary)));
    for (n, p) in &d.purposes {
        assert!(consent_expr(&p.consent).is_some(), "{}", at(&format!("purposes.{n}.consent {:?} unknown", p.consent)));
    }
    for r in &d.paths {
        assert!(d.purposes.contains_key(&r.purpose), "{}", at(&format!("path {:?}: purpose {:?} not declared", r.path, r.purpose)));
        assert!(["script", "api", "asset"].contains(&r.resource.as_str()), "{}", at(&format!("path {:?}: resource {:?}", r.path, r.resource)));
        assert!(r.path.starts_with('/') || r.path.starts_with('*'), "{}", at(&format!("path {:?} must start with / or *", r.path)));
    }
    for c in &d.cookies {
        assert!(d.purposes.contains_key(&c.purpose), "{}", at(&format!("cookie {:?}: purpose {:?} not declared", c.name, c.purpose)));
        assert!(["exact", "prefix"].contains(&c.kind.as_str()), "{}", at(&format!("cookie {:?}: match {:?}", c.name, c.kind)));
    }
    for dom in d.domains.iter().chain(d.regions.keys()).chain(d.paths.iter().flat_map(|p| p.hosts.iter())) {
        let ok = dom.contains('.') && dom.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        assert!(ok, "{}", at(&format!("host {dom:?} must be a lower-case host name")));
    }
}
