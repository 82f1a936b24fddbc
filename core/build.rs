//! Compiles `catalog/*.toml` into static Rust tables (`$OUT_DIR/catalog.rs`),
//! so the monitor carries no TOML parser and a vendor is added by adding a
//! file. Validation errors fail the build with the file and field named.

// A build script reports a bad catalog by failing the build: panicking is its
// error path, and what it reads is the repository's own catalog.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

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
    "chat",
    "support",
    "analytics",
    "advertising",
    "tag_manager",
    "session_replay",
    "ab_testing",
    "monitoring",
    "cdp",
    "marketing_automation",
    "consent",
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

/// The vendors' records under construction: `code` the bytes (counts,
/// codes), `text` the strings, each ended by [`END`].
#[derive(Default)]
struct Records {
    text: String,
    code: Vec<u8>,
}

/// Ends each catalog string in `TEXT` (read by `catalog::Cursor::str`). A
/// NUL, not a length byte in `CODE`: the lengths were the least
/// compressible bytes of the page's data (docs/benchmarks.md, sixth
/// round), one ending byte repeated gzips to almost nothing.
const END: char = '\0';

impl Records {
    fn byte(&mut self, b: u8) {
        self.code.push(b);
    }

    fn count(&mut self, n: usize) {
        self.byte(u8::try_from(n).expect("a catalog list under 256 items"));
    }

    fn str(&mut self, s: &str) {
        assert!(!s.contains(END), "catalog string with a NUL in it: {s:?}");
        self.text.push_str(s);
        self.text.push(END);
    }

    fn list(&mut self, items: &[String]) {
        self.count(items.len());
        items.iter().for_each(|s| self.str(s));
    }
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
        let doc: VendorDoc =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
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

    // The matching data as static tables that need no parsing: each
    // vendor's record is a run of bytes in `CODE` (counts, small codes)
    // whose strings follow one another in `TEXT`, each ended by `END`,
    // read in order by `catalog::Cursor`. Codes and ends gzip far better
    // in the page's wasm than `&str`s (8 bytes of address and length each)
    // or offsets would: docs/benchmarks.md ("issue 11: core"; the ends
    // instead of length bytes: sixth round). The layout is written here
    // and read in `catalog.rs` only.
    let mut rec = Records::default();
    let mut lifetimes: Vec<u16> = Vec::new();
    let mut purposes: Vec<(&String, &PurposeDoc)> = Vec::new();
    let mut table = String::new();
    for d in &docs {
        let names: Vec<&String> = d.purposes.keys().collect();
        let idx = |name: &str| {
            u8::try_from(names.iter().position(|p| *p == name).expect("validated"))
                .expect("under 64 purposes")
        };
        writeln!(
            table,
            "    Vendor {{ id: {:?}, text: {}, code: {} }},",
            d.id,
            rec.text.len(),
            rec.code.len()
        )
        .unwrap();
        // primary, then purposes: count, each an index into PURPOSES
        rec.byte(idx(&d.primary));
        rec.count(d.purposes.len());
        for (n, p) in &d.purposes {
            let at = purposes
                .iter()
                .position(|(m, q)| *m == n && q.consent == p.consent && q.tracking == p.tracking);
            let at = at.unwrap_or_else(|| {
                purposes.push((n, p));
                purposes.len() - 1
            });
            rec.count(at);
        }
        // paths: count, each hosts (a list), path, resource << 6 | purpose
        rec.count(d.paths.len());
        for r in &d.paths {
            rec.list(&r.hosts);
            rec.str(&r.path);
            let resource = match r.resource.as_str() {
                "script" => 0,
                "api" => 1,
                _ => 2,
            };
            rec.byte(resource << 6 | idx(&r.purpose));
        }
        // regions, most specific host first (`api-iam.eu.intercom.io`
        // before wider entries): count, each host, region
        let mut regions: Vec<(&String, &String)> = d.regions.iter().collect();
        regions.sort_by_key(|(h, _)| std::cmp::Reverse(h.len()));
        rec.count(regions.len());
        for (h, r) in regions {
            rec.str(h);
            rec.str(r);
        }
        // cookies: count, each name, prefix << 7 | purpose, lifetime (an
        // index into `LIFETIMES`, 0xff for none: a catalog has a dozen
        // distinct lifetimes, one byte each instead of two of days)
        rec.count(d.cookies.len());
        for c in &d.cookies {
            rec.str(&c.name);
            rec.byte(u8::from(c.kind == "prefix") << 7 | idx(&c.purpose));
            let lifetime = c.lifetime_days.map_or(u8::MAX, |n| {
                let n = u16::try_from(n).expect("lifetime under 65536 days");
                let at = lifetimes.iter().position(|d| *d == n).unwrap_or_else(|| {
                    lifetimes.push(n);
                    lifetimes.len() - 1
                });
                u8::try_from(at)
                    .ok()
                    .filter(|at| *at < u8::MAX)
                    .expect("under 255 distinct cookie lifetimes")
            });
            rec.byte(lifetime);
        }
        rec.list(&d.globals);
        rec.list(&d.dom_ids);
        rec.list(&d.loader_script_ids);
        // identity: 0, or 1 then settings, api, verbs, ids, proofs
        match &d.identity {
            None => rec.byte(0),
            Some(i) => {
                rec.byte(1);
                rec.str(&i.settings);
                rec.str(&i.api);
                rec.list(&i.verbs);
                rec.list(&i.ids);
                rec.list(&i.proofs);
            }
        }
    }
    assert!(
        rec.text.len() < usize::from(u16::MAX) && rec.code.len() < usize::from(u16::MAX),
        "catalog over 64 KB: widen `Vendor`'s offsets"
    );
    assert!(
        docs.len() <= 256,
        "over 256 vendors: widen the domain index"
    );
    let mut out = String::new();
    // The ends written `\x00`: `{:?}`'s `\0` before a digit reads as an
    // octal escape to clippy (`\02mdn.net`), though Rust has none.
    let text: String = rec
        .text
        .chars()
        .map(|c| match c {
            END => "\\x00".to_string(),
            c => c.escape_debug().to_string(),
        })
        .collect();
    writeln!(out, "/// The vendors' strings, one after another, each ended by a NUL (generated from `catalog/*.toml`).\npub(crate) static TEXT: &str = \"{text}\";\n").unwrap();
    let code: String = rec
        .code
        .iter()
        .map(|b| std::ascii::escape_default(*b).to_string())
        .collect();
    writeln!(out, "/// The vendors' records (see `core/build.rs`).\npub(crate) static CODE: &[u8] = b\"{code}\";\n").unwrap();
    writeln!(
        out,
        "/// Every distinct purpose definition.\npub(crate) static PURPOSES: [PurposeDef; {}] = [",
        purposes.len()
    )
    .unwrap();
    for (n, p) in &purposes {
        writeln!(
            out,
            "    PurposeDef {{ name: {n:?}, consent: {}, tracking: {} }},",
            consent_expr(&p.consent).expect("validated"),
            p.tracking
        )
        .unwrap();
    }
    writeln!(
        out,
        "];\n\n/// Every distinct cookie lifetime, in days.\npub(crate) static LIFETIMES: [u16; {}] = {lifetimes:?};\n",
        lifetimes.len()
    )
    .unwrap();
    writeln!(
        out,
        "/// The vendors, Intercom first.\npub(crate) static TABLE: [Vendor; {}] = [\n{table}];\n",
        docs.len()
    )
    .unwrap();
    // Every domain with its vendor's index, sorted, so the page need not
    // sort: each domain followed by one byte, 0x80 | the vendor's index
    // (domains are ASCII, so the byte also ends the domain).
    assert!(
        docs.len() <= 128,
        "over 128 vendors: widen the domain index's vendor byte"
    );
    let mut index = String::new();
    for (d, v) in &domains {
        index.push_str(d);
        write!(index, "\\x{:02x}", 0x80 | v).unwrap();
    }
    writeln!(out, "/// Every vendor domain, sorted, each followed by 0x80 | its vendor's index in `TABLE`.\npub(crate) static DOMAINS: &[u8] = b\"{index}\";\n").unwrap();
    // Descriptive facts, used by the CLI and the extension only: the monitor
    // never references this table, so it is not in the shipped wasm.
    writeln!(out, "/// Descriptive facts per vendor, in `VENDORS` order.\npub static VENDOR_INFO: &[VendorInfo] = &[").unwrap();
    for d in &docs {
        let weight = match &d.weight {
            Some(w) => format!(
                "Some(Weight {{ script_kb: {}, requests: {}, source: {:?} }})",
                w.script_kb, w.requests, w.source
            ),
            None => "None".into(),
        };
        let cookie_sources: Vec<String> = d
            .cookies
            .iter()
            .map(|c| format!("{:?}", c.source))
            .collect();
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
    assert!(
        !d.id.is_empty()
            && d.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
        "{}",
        at("id must be [a-z0-9_-]+")
    );
    assert!(
        CATEGORIES.contains(&d.category.as_str()),
        "{}",
        at(&format!("unknown category {:?}", d.category))
    );
    assert!(
        d.purposes.contains_key(&d.primary),
        "{}",
        at(&format!("primary purpose {:?} is not declared", d.primary))
    );
    assert!(d.purposes.len() <= 64, "{}", at("over 64 purposes"));
    for (n, p) in &d.purposes {
        assert!(
            consent_expr(&p.consent).is_some(),
            "{}",
            at(&format!("purposes.{n}.consent {:?} unknown", p.consent))
        );
    }
    for r in &d.paths {
        assert!(
            d.purposes.contains_key(&r.purpose),
            "{}",
            at(&format!(
                "path {:?}: purpose {:?} not declared",
                r.path, r.purpose
            ))
        );
        assert!(
            ["script", "api", "asset"].contains(&r.resource.as_str()),
            "{}",
            at(&format!("path {:?}: resource {:?}", r.path, r.resource))
        );
        assert!(
            r.path.starts_with('/') || r.path.starts_with('*'),
            "{}",
            at(&format!("path {:?} must start with / or *", r.path))
        );
    }
    for c in &d.cookies {
        assert!(
            d.purposes.contains_key(&c.purpose),
            "{}",
            at(&format!(
                "cookie {:?}: purpose {:?} not declared",
                c.name, c.purpose
            ))
        );
        assert!(
            ["exact", "prefix"].contains(&c.kind.as_str()),
            "{}",
            at(&format!("cookie {:?}: match {:?}", c.name, c.kind))
        );
    }
    for dom in d
        .domains
        .iter()
        .chain(d.regions.keys())
        .chain(d.paths.iter().flat_map(|p| p.hosts.iter()))
    {
        let ok = dom.contains('.')
            && dom
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        assert!(
            ok,
            "{}",
            at(&format!("host {dom:?} must be a lower-case host name"))
        );
    }
}
