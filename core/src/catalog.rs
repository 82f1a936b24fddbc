//! Vendor signatures: which hosts, paths, cookies, globals and DOM markers
//! belong to which tag, and what each piece is for.
//!
//! The data lives in `catalog/*.toml` and is compiled by `core/build.rs`
//! (schema: `catalog/README.md`) into static tables that need no parsing and
//! no allocation: a vendor's rules are read in place, in order, each time
//! they are asked for ([`Vendor::paths`], [`Vendor::cookies`], …), which
//! costs a few additions per rule. Matching is host-first: the host is
//! looked up once in a sorted domain index, suffix by suffix on dot
//! boundaries (longest first), and only that vendor's path rules are tried.

use crate::consent::Category;
use crate::url::{glob_match, host_within};
use alloc::vec::Vec;

/// What a piece of a tag is for, and the consent category it needs by
/// default (a site's policy may override it).
#[derive(Debug, PartialEq, Eq)]
pub struct PurposeDef {
    /// Name, e.g. `messenger`, `tracking`, `media`.
    pub name: &'static str,
    /// Category needed; `None` for things that need none (hot-linked media).
    pub consent: Option<Category>,
    /// Behavioural tracking: requests without consent are `tracking_before_consent`.
    pub tracking: bool,
}

/// What kind of resource a rule describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Code: loaders and bundles.
    Script,
    /// API calls and beacons.
    Api,
    /// Images, fonts, audio, attachments.
    Asset,
}

/// One path rule of a vendor: tried in order, first match wins.
#[derive(Debug, Clone, Copy)]
pub struct PathRule {
    /// Hosts the rule applies to (dot-boundary); empty for any vendor host.
    pub hosts: Strs,
    /// Path glob (`*` matches any run of characters).
    pub path: &'static str,
    /// Resource kind.
    pub resource: Resource,
    /// Index into the vendor's purposes ([`Vendor::purposes`]).
    pub purpose: usize,
}

/// A cookie signature.
#[derive(Debug, Clone, Copy)]
pub struct CookieRule {
    /// Exact name, or prefix when `prefix` is set.
    pub name: &'static str,
    /// Match names starting with `name` (and longer than it).
    pub prefix: bool,
    /// Index into the vendor's purposes ([`Vendor::purposes`]).
    pub purpose: usize,
    /// Documented lifetime.
    pub lifetime_days: Option<u32>,
}

impl CookieRule {
    fn matches(&self, name: &str) -> bool {
        if self.prefix {
            name.len() > self.name.len() && name.starts_with(self.name)
        } else {
            name == self.name
        }
    }
}

/// Where a tag's settings identify a user, and which fields prove the
/// identity was verified server-side.
#[derive(Debug, Clone, Copy)]
pub struct IdentityRule {
    /// Page global holding the settings object.
    pub settings: &'static str,
    /// Page global API function.
    pub api: &'static str,
    /// API verbs whose second argument carries settings.
    pub verbs: Strs,
    /// Fields that identify a user.
    pub ids: Strs,
    /// Fields that carry the server-side proof.
    pub proofs: Strs,
}

/// A tag the monitor knows: what it needs to recognise and judge it. Its
/// rules are read from the static tables by its methods.
#[derive(Debug)]
pub struct Vendor {
    /// Stable id used on the wire.
    pub id: &'static str,
    /// Where its record starts in `TEXT` and `CODE`.
    text: u16,
    code: u16,
}

impl PartialEq for Vendor {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Vendor {}

/// Declared weight of a tag per page.
#[derive(Debug)]
pub struct Weight {
    /// Script weight, KB.
    pub script_kb: u32,
    /// Requests per page.
    pub requests: u32,
    /// Where the numbers come from.
    pub source: &'static str,
}

/// Descriptive facts of a vendor (CLI, extension, inventory exports). Kept
/// apart from [`Vendor`] so the in-page monitor, which never reads them,
/// does not ship them.
#[derive(Debug)]
pub struct VendorInfo {
    /// Display name.
    pub name: &'static str,
    /// Legal owner.
    pub owner: &'static str,
    /// Kind of tag (`chat`, `analytics`, …).
    pub category: &'static str,
    /// Sources of the facts.
    pub sources: &'static [&'static str],
    /// Declared weight.
    pub weight: Option<Weight>,
    /// Source per cookie rule, in [`Vendor::cookies`] order.
    pub cookie_sources: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// [`Strs::iter`]: a cursor and the items left. Its own `next`, not
/// `(0..n).map(…)`: `Map`'s `next` was a larger instance in the page's wasm
/// (docs/benchmarks.md, sixteenth round).
#[derive(Clone, Copy)]
struct StrsIter {
    c: Cursor,
    left: u8,
}

impl Iterator for StrsIter {
    type Item = &'static str;

    fn next(&mut self) -> Option<&'static str> {
        self.left = self.left.checked_sub(1)?;
        Some(self.c.str())
    }
}

/// Reads a vendor's record: bytes from `CODE`, and its strings from
/// `TEXT`, one after another, each ended by a NUL. The layout is
/// `core/build.rs`'s (`main`, "The matching data"); reading past the end
/// gives zeros and empty strings, never a panic.
#[derive(Clone, Copy)]
struct Cursor {
    text: usize,
    code: usize,
}

impl Cursor {
    fn byte(&mut self) -> u8 {
        let b = CODE.get(self.code).copied().unwrap_or(0);
        self.code += 1;
        b
    }

    fn count(&mut self) -> usize {
        usize::from(self.byte())
    }

    /// The next string: `TEXT` up to its end byte (NUL, `core/build.rs`).
    fn str(&mut self) -> &'static str {
        let from = self.text;
        let bytes = TEXT.as_bytes();
        while bytes.get(self.text).is_some_and(|b| *b != 0) {
            self.text += 1;
        }
        let s = TEXT.get(from..self.text).unwrap_or("");
        self.text += 1;
        s
    }

    fn list(&mut self) -> Strs {
        let n = self.byte();
        let list = Strs {
            text: self.text,
            code: self.code,
            n,
        };
        for _ in 0..n {
            self.str();
        }
        list
    }

    /// `n` items read by `item`. The lookups every page runs
    /// ([`classify_request`], [`Vendor::cookie`], [`Vendor::region`], a
    /// purpose by index) loop over the record with the cursor instead: their
    /// `find` / `nth` over these iterators cost 485 bytes of the shipped
    /// wasm's gzip.
    fn items<T>(mut self, item: fn(&mut Cursor) -> T) -> impl Iterator<Item = T> {
        let n = self.byte();
        (0..n).map(move |_| item(&mut self))
    }

    /// Past `n` items read by `item`.
    fn skip<T>(&mut self, item: fn(&mut Cursor) -> T) {
        for _ in 0..self.byte() {
            item(self);
        }
    }
}

/// A list of catalog strings (hosts, globals, verbs…), read in place.
#[derive(Clone, Copy, Default)]
pub struct Strs {
    text: usize,
    code: usize,
    n: u8,
}

impl Strs {
    /// The items, in catalog order.
    pub fn iter(self) -> impl Iterator<Item = &'static str> + Clone {
        StrsIter {
            c: self.cursor(),
            left: self.n,
        }
    }

    /// How many items.
    pub fn len(self) -> usize {
        usize::from(self.n)
    }

    /// No items.
    pub fn is_empty(self) -> bool {
        self.n == 0
    }

    /// The first item.
    pub fn first(self) -> Option<&'static str> {
        (self.n > 0).then(|| self.cursor().str())
    }

    /// Whether `host` is one of the items or a subdomain of one.
    fn any_within(self, host: &str) -> bool {
        let mut c = self.cursor();
        (0..self.n).any(|_| host_within(host, c.str()))
    }

    /// Whether `item` is one of the items. A loop, not `iter().any()`
    /// (the page's wasm then needs no `Map::try_fold` instance; see
    /// `any_truthy` in the shell's sweep).
    pub fn contains(self, item: &str) -> bool {
        let mut c = self.cursor();
        for _ in 0..self.n {
            if c.str() == item {
                return true;
            }
        }
        false
    }

    /// A cursor at the first item. `first` and `contains` read by it, not
    /// by [`Strs::iter`] (smaller in the page's wasm, docs/benchmarks.md,
    /// sixteenth round).
    fn cursor(self) -> Cursor {
        Cursor {
            text: self.text,
            code: self.code,
        }
    }

    /// The items as a vector.
    pub fn to_vec(self) -> Vec<&'static str> {
        self.iter().collect()
    }
}

impl core::fmt::Debug for Strs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Every vendor, Intercom first.
pub fn vendors() -> &'static [Vendor] {
    &TABLE
}

/// `VENDORS.iter()`, `VENDORS.len()`: every vendor, as a slice.
#[derive(Debug)]
pub struct AllVendors;

impl core::ops::Deref for AllVendors {
    type Target = [Vendor];
    fn deref(&self) -> &[Vendor] {
        vendors()
    }
}

/// Every vendor, Intercom first (derefs to `&[Vendor]`).
pub static VENDORS: AllVendors = AllVendors;

/// A request classified against the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMatch {
    /// The vendor.
    pub vendor: &'static Vendor,
    /// Resource kind.
    pub resource: Resource,
    /// Purpose.
    pub purpose: &'static PurposeDef,
}

/// Stands in for an index a build-time-validated catalog never produces.
static UNKNOWN_PURPOSE: PurposeDef = PurposeDef {
    name: "unknown",
    consent: None,
    tracking: false,
};

/// The sections of a vendor's record, in record order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Purposes,
    Paths,
    Regions,
    Cookies,
    Globals,
    DomIds,
    Loaders,
    Identity,
}

fn path_rule(c: &mut Cursor) -> PathRule {
    let hosts = c.list();
    let path = c.str();
    let code = c.byte();
    let resource = match code >> 6 {
        0 => Resource::Script,
        1 => Resource::Api,
        _ => Resource::Asset,
    };
    PathRule {
        hosts,
        path,
        resource,
        purpose: usize::from(code & 63),
    }
}

fn region(c: &mut Cursor) -> (&'static str, &'static str) {
    (c.str(), c.str())
}

fn cookie_rule(c: &mut Cursor) -> CookieRule {
    let name = c.str();
    let code = c.byte();
    CookieRule {
        name,
        prefix: code >> 7 == 1,
        purpose: usize::from(code & 127),
        lifetime_days: LIFETIMES.get(c.count()).map(|d| u32::from(*d)),
    }
}

impl Vendor {
    /// A cursor at the start of `section` of this vendor's record.
    fn at(&self, section: Section) -> Cursor {
        let mut c = Cursor {
            text: usize::from(self.text),
            code: usize::from(self.code),
        };
        c.byte(); // the primary purpose
        let steps: [fn(&mut Cursor); 7] = [
            |c| c.skip(Cursor::byte),
            |c| c.skip(path_rule),
            |c| c.skip(region),
            |c| c.skip(cookie_rule),
            |c| {
                c.list();
            },
            |c| {
                c.list();
            },
            |c| {
                c.list();
            },
        ];
        for (i, step) in steps.iter().enumerate() {
            if i >= section as usize {
                break;
            }
            step(&mut c);
        }
        c
    }

    /// The purpose script loads, globals and markers stand for.
    pub fn primary(&'static self) -> &'static PurposeDef {
        let mut c = Cursor {
            text: 0,
            code: usize::from(self.code),
        };
        self.purpose(c.count())
    }

    /// Purposes and their default categories; rules name them by index.
    pub fn purposes(&self) -> impl Iterator<Item = &'static PurposeDef> {
        self.at(Section::Purposes)
            .items(Cursor::count)
            .map(|i| PURPOSES.get(i).unwrap_or(&UNKNOWN_PURPOSE))
    }

    fn purpose(&self, i: usize) -> &'static PurposeDef {
        let mut c = self.at(Section::Purposes);
        let n = c.count();
        c.code += i;
        let index = if i < n { c.count() } else { usize::MAX };
        PURPOSES.get(index).unwrap_or(&UNKNOWN_PURPOSE)
    }

    /// Registrable domains (and subdomains) the vendor serves from, sorted.
    pub fn domains(&self) -> impl Iterator<Item = &'static str> + Clone + '_ {
        domain_index()
            .filter(move |(_, v)| vendors().get(*v) == Some(self))
            .map(|(d, _)| d)
    }

    /// Path rules, first match wins.
    pub fn paths(&self) -> impl Iterator<Item = PathRule> {
        self.at(Section::Paths).items(path_rule)
    }

    /// Host → region of processing, most specific host first.
    pub fn regions(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.at(Section::Regions).items(region)
    }

    /// Cookie signatures.
    pub fn cookies(&self) -> impl Iterator<Item = CookieRule> {
        self.at(Section::Cookies).items(cookie_rule)
    }

    /// Dotted page globals; truthy means the tag runs.
    pub fn globals(&self) -> Strs {
        self.at(Section::Globals).list()
    }

    /// Element ids whose presence means the tag runs.
    pub fn dom_ids(&self) -> Strs {
        self.at(Section::DomIds).list()
    }

    /// `<script id>`s that load the tag from any URL (first-party proxies).
    pub fn loader_script_ids(&self) -> Strs {
        self.at(Section::Loaders).list()
    }

    /// Identity verification, where the tag has it.
    pub fn identity(&self) -> Option<IdentityRule> {
        let mut c = self.at(Section::Identity);
        (c.byte() == 1).then(|| IdentityRule {
            settings: c.str(),
            api: c.str(),
            verbs: c.list(),
            ids: c.list(),
            proofs: c.list(),
        })
    }

    /// Region of processing for one of this vendor's hosts, if known.
    pub fn region(&self, host: &str) -> Option<&'static str> {
        let mut c = self.at(Section::Regions);
        for _ in 0..c.byte() {
            let (h, r) = region(&mut c);
            if host_within(host, h) {
                return Some(r);
            }
        }
        None
    }

    /// Descriptive facts.
    pub fn info(&self) -> Option<&'static VendorInfo> {
        vendors()
            .iter()
            .position(|v| v.id == self.id)
            .and_then(|i| VENDOR_INFO.get(i))
    }

    /// The rule and purpose of a cookie name, if it is this vendor's.
    pub fn cookie(&'static self, name: &str) -> Option<(CookieRule, &'static PurposeDef)> {
        let mut c = self.at(Section::Cookies);
        for _ in 0..c.byte() {
            let rule = cookie_rule(&mut c);
            if rule.matches(name) {
                return Some((rule, self.purpose(rule.purpose)));
            }
        }
        None
    }
}

/// Marks the end of a domain in `DOMAINS`, its low bits the vendor's index.
const VENDOR_MARK: u8 = 0x80;

/// The sorted domain index: each domain and its vendor's index.
fn domain_index() -> impl Iterator<Item = (&'static str, usize)> + Clone {
    DOMAINS
        .split_inclusive(|b| *b >= VENDOR_MARK)
        .filter_map(|entry| {
            let (mark, domain) = entry.split_last()?;
            Some((
                core::str::from_utf8(domain).ok()?,
                usize::from(mark & !VENDOR_MARK),
            ))
        })
}

/// Finds a vendor by id.
pub fn vendor(id: &str) -> Option<&'static Vendor> {
    vendors().iter().find(|v| v.id == id)
}

/// The vendor serving `host`: the longest catalog domain that `host` equals
/// or is a subdomain of. Binary search per dot-boundary suffix, over the
/// bytes of the sorted index: each probe backs up to the start of the
/// domain it lands in.
pub fn vendor_for_host(host: &str) -> Option<&'static Vendor> {
    let mut suffix = host;
    loop {
        // `lo` is always the start of a domain, `hi` one past a mark.
        let (mut lo, mut hi) = (0, DOMAINS.len());
        while lo < hi {
            let mut start = lo + (hi - lo) / 2;
            while start > lo && DOMAINS.get(start - 1).is_some_and(|b| *b < VENDOR_MARK) {
                start -= 1;
            }
            let rest = DOMAINS.get(start..)?;
            let len = rest.iter().position(|b| *b >= VENDOR_MARK)?;
            let (domain, mark) = (rest.get(..len)?, rest.get(len)?);
            match domain.cmp(suffix.as_bytes()) {
                core::cmp::Ordering::Less => lo = start + len + 1,
                core::cmp::Ordering::Greater => hi = start,
                core::cmp::Ordering::Equal => {
                    return vendors().get(usize::from(mark & !VENDOR_MARK))
                }
            }
        }
        let dot = crate::url::find_ascii(suffix, b".")?;
        suffix = suffix.get(dot + 1..)?;
    }
}

/// Classifies a request by host and path. `initiator` (Resource Timing
/// `initiatorType`) decides the kind of requests no path rule covers.
pub fn classify_request(host: &str, path: &str, initiator: &str) -> Option<RequestMatch> {
    vendor_for_host(host).map(|vendor| classify_for(vendor, host, path, initiator))
}

/// Classifies a request to `host`, which `vendor` serves
/// ([`vendor_for_host`]), by its path.
pub fn classify_for(
    vendor: &'static Vendor,
    host: &str,
    path: &str,
    initiator: &str,
) -> RequestMatch {
    let mut c = vendor.at(Section::Paths);
    let mut hit = None;
    for _ in 0..c.byte() {
        let r = path_rule(&mut c);
        if (r.hosts.is_empty() || r.hosts.any_within(host)) && glob_match(r.path, path) {
            hit = Some(r);
            break;
        }
    }
    let (resource, purpose) = match hit {
        Some(r) => (r.resource, vendor.purpose(r.purpose)),
        None if initiator == "script" => (Resource::Script, vendor.primary()),
        None => (Resource::Api, vendor.primary()),
    };
    RequestMatch {
        vendor,
        resource,
        purpose,
    }
}

/// The vendor and purpose of a cookie name.
pub fn classify_cookie(name: &str) -> Option<(&'static Vendor, &'static PurposeDef)> {
    vendors()
        .iter()
        .find_map(|v| v.cookie(name).map(|(_, p)| (v, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intercom() -> &'static Vendor {
        vendor("intercom").unwrap()
    }

    fn class(url: &str, initiator: &str) -> Option<(&'static str, Resource, &'static str)> {
        let p = crate::url::parse(url)?;
        classify_request(&p.host, &p.path, initiator)
            .map(|m| (m.vendor.id, m.resource, m.purpose.name))
    }

    /// A global's name never starts with `/`, as a request's path does:
    /// `Engine::presence` tells a global's evidence from a request's by key.
    #[test]
    fn globals_are_not_paths() {
        for v in vendors() {
            for g in v.globals().iter() {
                assert!(!g.is_empty() && !g.starts_with('/'), "{}: {g}", v.id);
            }
        }
    }

    /// The lookups that read a record in place by loops answer what the
    /// record's iterators answer, for every vendor and rule.
    #[test]
    fn lookups_are_the_iterators() {
        for v in vendors() {
            let purposes: Vec<_> = v.purposes().collect();
            for i in 0..purposes.len() + 3 {
                let want = purposes.get(i).copied().unwrap_or(&UNKNOWN_PURPOSE);
                assert_eq!(v.purpose(i), want, "{} purpose {i}", v.id);
            }
            for rule in v.cookies() {
                for name in [rule.name, &format!("{}x", rule.name), "x"] {
                    let want = v
                        .cookies()
                        .find(|c| c.matches(name))
                        .map(|c| (c.name, c.prefix, purposes.get(c.purpose).copied()));
                    let got = v.cookie(name).map(|(c, p)| (c.name, c.prefix, Some(p)));
                    assert_eq!(got, want, "{} cookie {name}", v.id);
                }
            }
            for (host, _) in v.regions() {
                for h in [host.to_string(), format!("a.{host}"), format!("a{host}")] {
                    let want = v
                        .regions()
                        .find(|(d, _)| host_within(&h, d))
                        .map(|(_, r)| r);
                    assert_eq!(v.region(&h), want, "{} region {h}", v.id);
                }
            }
            let hosts: Vec<&str> = v
                .domains()
                .chain(v.paths().flat_map(|r| r.hosts.iter()))
                .collect();
            for host in &hosts {
                for host in [host.to_string(), format!("x.{host}")] {
                    for r in v.paths() {
                        for path in [r.path.replace('*', "a/b"), "/".into()] {
                            let Some(m) = classify_request(&host, &path, "img") else {
                                continue;
                            };
                            let hit = m.vendor.paths().find(|r| {
                                (r.hosts.is_empty()
                                    || r.hosts.iter().any(|h| host_within(&host, h)))
                                    && glob_match(r.path, &path)
                            });
                            let want = match hit {
                                Some(r) => {
                                    (r.resource, m.vendor.purposes().nth(r.purpose).unwrap())
                                }
                                None => (Resource::Api, m.vendor.primary()),
                            };
                            assert_eq!((m.resource, m.purpose), want, "{host}{path}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn intercom_request_shapes() {
        use Resource::*;
        assert_eq!(
            class("https://widget.intercom.io/widget/abc12345", "script"),
            Some(("intercom", Script, "messenger"))
        );
        assert_eq!(
            class(
                "https://js.intercomcdn.com/frame-modern.c6941a28.js",
                "script"
            ),
            Some(("intercom", Script, "messenger"))
        );
        assert_eq!(
            class("https://api-iam.intercom.io/messenger/web/ping", "fetch"),
            Some(("intercom", Api, "tracking"))
        );
        assert_eq!(
            class(
                "https://api-iam.eu.intercom.io/messenger/web/launcher_settings",
                "xmlhttprequest"
            ),
            Some(("intercom", Api, "messenger"))
        );
        assert_eq!(
            class(
                "https://api-iam.intercom.io/messenger/web/rulesets/43795852/match",
                "fetch"
            ),
            Some(("intercom", Api, "tracking"))
        );
        assert_eq!(
            class("https://downloads.intercomcdn.com/i/o/1/2/x.png", "img"),
            Some(("intercom", Asset, "media"))
        );
        assert_eq!(
            class("https://js.intercomcdn.com/audio/notification.mp3", "other"),
            Some(("intercom", Asset, "media"))
        );
        assert_eq!(
            class(
                "https://xy-12ab.intercom-attachments-7.com/i/o/1/x.pdf",
                "other"
            ),
            Some(("intercom", Asset, "media"))
        );
    }

    #[test]
    fn near_misses_are_not_intercom() {
        for url in [
            "https://shop.example/intercom/widget/abc",
            "https://evilintercom.io/widget/abc",
            "https://intercom.io.evil.com/widget/x",
            "https://analytics.example/collect?u=widget.intercom.io",
            "https://intercom-attachments-10.com/x",
        ] {
            assert_eq!(class(url, "script"), None, "{url}");
        }
    }

    #[test]
    fn cookies() {
        let id = |n| classify_cookie(n).map(|c| c.0.id);
        assert_eq!(id("intercom-id-abc12345"), Some("intercom"));
        assert_eq!(id("intercom-device-id-abc12345"), Some("intercom"));
        assert_eq!(id("intercom-session-abc12345"), Some("intercom"));
        assert_eq!(id("intercom-id"), Some("intercom"));
        assert_eq!(id("intercom-id-"), None);
        assert_eq!(id("my-intercom-id-x"), None);
        assert_eq!(
            intercom()
                .cookie("intercom-session-x")
                .map(|c| c.0.lifetime_days),
            Some(Some(7))
        );
        assert_eq!(
            intercom()
                .cookie("intercom-visitor-semaphore-x")
                .map(|c| c.0.lifetime_days),
            Some(None)
        );
    }

    #[test]
    fn regions() {
        assert_eq!(intercom().region("api-iam.intercom.io"), Some("us"));
        assert_eq!(intercom().region("api-iam.eu.intercom.io"), Some("eu"));
        assert_eq!(intercom().region("downloads.intercomcdn.eu"), Some("eu"));
        assert_eq!(intercom().region("widget.intercom.io"), None);
    }

    #[test]
    fn domain_index_is_sorted_and_resolves_every_domain() {
        let index: Vec<_> = domain_index().collect();
        assert_eq!(
            index.len(),
            DOMAINS.iter().filter(|b| **b >= VENDOR_MARK).count()
        );
        assert!(index.windows(2).all(|w| w[0].0 < w[1].0));
        for v in vendors() {
            assert!(v.domains().next().is_some(), "{}", v.id);
            for d in v.domains() {
                assert_eq!(vendor_for_host(d).map(|x| x.id), Some(v.id), "{d}");
                assert_eq!(
                    vendor_for_host(&["www.", d].concat()).map(|x| x.id),
                    Some(v.id),
                    "www.{d}"
                );
            }
        }
        assert_eq!(vendor_for_host("intercom"), None);
        assert_eq!(vendor_for_host(""), None);
        assert_eq!(vendors().len(), VENDOR_INFO.len());
        assert_eq!(vendors()[0].id, "intercom");
    }

    /// Every vendor's record reads back exactly what its catalog file
    /// says, every section from the one before it.
    #[test]
    #[allow(clippy::disallowed_methods)] // the repository's own catalog files
    fn records_read_back_the_catalog_files() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../catalog");
        for v in vendors() {
            let doc: toml::Table = std::fs::read_to_string(format!("{dir}/{}.toml", v.id))
                .unwrap()
                .parse()
                .unwrap();
            let strs = |key: &str| {
                doc.get(key)
                    .and_then(|l| l.as_array())
                    .map(|l| l.iter().map(|s| s.as_str().unwrap()).collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            let table = |key: &str| {
                doc.get(key)
                    .and_then(|t| t.as_table())
                    .cloned()
                    .unwrap_or_default()
            };
            let mut domains = strs("domains");
            domains.sort_unstable();
            assert_eq!(v.domains().collect::<Vec<_>>(), domains, "{}", v.id);
            assert_eq!(v.globals().to_vec(), strs("globals"), "{}", v.id);
            // `first`, `contains` (by a cursor) and `iter` read the same items.
            for l in [v.globals(), v.dom_ids(), v.loader_script_ids()] {
                let all = l.to_vec();
                assert_eq!(l.first(), all.first().copied(), "{}", v.id);
                assert_eq!(l.iter().count(), l.len(), "{}", v.id);
                assert!(all.iter().all(|s| l.contains(s)), "{}", v.id);
                assert!(
                    !l.contains("\u{0}") && !l.contains("not-an-item"),
                    "{}",
                    v.id
                );
            }
            assert_eq!(v.dom_ids().to_vec(), strs("dom_ids"), "{}", v.id);
            assert_eq!(
                v.loader_script_ids().to_vec(),
                strs("loader_script_ids"),
                "{}",
                v.id
            );
            let purposes = table("purposes");
            let names: Vec<&str> = v.purposes().map(|p| p.name).collect();
            assert_eq!(
                names,
                purposes.keys().map(String::as_str).collect::<Vec<_>>(),
                "{}",
                v.id
            );
            for p in v.purposes() {
                let doc = &purposes[p.name];
                assert_eq!(
                    p.consent.map_or("none", Category::as_str),
                    doc["consent"].as_str().unwrap(),
                    "{}",
                    v.id
                );
                assert_eq!(
                    p.tracking,
                    doc.get("tracking")
                        .and_then(|t| t.as_bool())
                        .unwrap_or(false),
                    "{}",
                    v.id
                );
            }
            assert_eq!(
                v.primary().name,
                doc["primary"].as_str().unwrap(),
                "{}",
                v.id
            );
            let name = |i: usize| names.get(i).copied().unwrap_or("(out of range)");
            let paths = doc
                .get("paths")
                .and_then(|p| p.as_array())
                .cloned()
                .unwrap_or_default();
            assert_eq!(v.paths().count(), paths.len(), "{}", v.id);
            for (r, doc) in v.paths().zip(&paths) {
                let hosts: Vec<&str> = doc
                    .get("hosts")
                    .and_then(|h| h.as_array())
                    .map(|h| h.iter().map(|s| s.as_str().unwrap()).collect())
                    .unwrap_or_default();
                assert_eq!(
                    (r.hosts.to_vec(), r.path, name(r.purpose)),
                    (
                        hosts,
                        doc["path"].as_str().unwrap(),
                        doc["purpose"].as_str().unwrap()
                    ),
                    "{}",
                    v.id
                );
                let resource = match r.resource {
                    Resource::Script => "script",
                    Resource::Api => "api",
                    Resource::Asset => "asset",
                };
                assert_eq!(resource, doc["resource"].as_str().unwrap(), "{}", v.id);
            }
            let cookies = doc
                .get("cookies")
                .and_then(|c| c.as_array())
                .cloned()
                .unwrap_or_default();
            assert_eq!(v.cookies().count(), cookies.len(), "{}", v.id);
            for (c, doc) in v.cookies().zip(&cookies) {
                let days = doc
                    .get("lifetime_days")
                    .and_then(|d| d.as_integer())
                    .map(|d| u32::try_from(d).unwrap());
                assert_eq!(
                    (c.name, c.prefix, name(c.purpose), c.lifetime_days),
                    (
                        doc["name"].as_str().unwrap(),
                        doc["match"].as_str() == Some("prefix"),
                        doc["purpose"].as_str().unwrap(),
                        days
                    ),
                    "{}",
                    v.id
                );
            }
            let mut regions: Vec<(&str, &str)> = v.regions().collect();
            assert!(
                regions.windows(2).all(|w| w[0].0.len() >= w[1].0.len()),
                "most specific first: {}",
                v.id
            );
            regions.sort_unstable();
            let want = table("regions");
            assert_eq!(
                regions,
                want.iter()
                    .map(|(h, r)| (h.as_str(), r.as_str().unwrap()))
                    .collect::<Vec<_>>(),
                "{}",
                v.id
            );
            let identity = v.identity().map(|i| {
                (
                    i.settings,
                    i.api,
                    i.verbs.to_vec(),
                    i.ids.to_vec(),
                    i.proofs.to_vec(),
                )
            });
            let want = doc.get("identity").and_then(|i| i.as_table()).map(|i| {
                let l = |k: &str| {
                    i[k].as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap())
                        .collect::<Vec<_>>()
                };
                (
                    i["settings"].as_str().unwrap(),
                    i["api"].as_str().unwrap(),
                    l("verbs"),
                    l("ids"),
                    l("proofs"),
                )
            });
            assert_eq!(identity, want, "{}", v.id);
        }
    }
}
