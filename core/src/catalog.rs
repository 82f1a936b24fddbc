//! Vendor signatures: which hosts, paths, cookies, globals and DOM markers
//! belong to which tag, and what each piece is for.
//!
//! The data lives in `catalog/*.toml` and is compiled into static tables by
//! `core/build.rs` (schema: `catalog/README.md`). Matching is host-first: the
//! host is looked up once in a sorted domain index, suffix by suffix on dot
//! boundaries (longest first), and only that vendor's path rules are tried.

use crate::consent::Category;
use crate::url::{glob_match, host_within};

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
#[derive(Debug)]
pub struct PathRule {
    /// Hosts the rule applies to (dot-boundary); empty for any vendor host.
    pub hosts: Vec<&'static str>,
    /// Path glob (`*` matches any run of characters).
    pub path: &'static str,
    /// Resource kind.
    pub resource: Resource,
    /// Index into the vendor's `purposes`.
    pub purpose: usize,
}

/// A cookie signature.
#[derive(Debug)]
pub struct CookieRule {
    /// Exact name, or prefix when `prefix` is set.
    pub name: &'static str,
    /// Match names starting with `name` (and longer than it).
    pub prefix: bool,
    /// Index into the vendor's `purposes`.
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
#[derive(Debug)]
pub struct IdentityRule {
    /// Page global holding the settings object.
    pub settings: &'static str,
    /// Page global API function.
    pub api: &'static str,
    /// API verbs whose second argument carries settings.
    pub verbs: Vec<&'static str>,
    /// Fields that identify a user.
    pub ids: Vec<&'static str>,
    /// Fields that carry the server-side proof.
    pub proofs: Vec<&'static str>,
}

/// A tag the monitor knows: what it needs to recognise and judge it.
#[derive(Debug, Default)]
pub struct Vendor {
    /// Stable id used on the wire.
    pub id: &'static str,
    /// Index into `purposes` of what script loads, globals and markers stand for.
    pub primary: usize,
    /// Registrable domains (and subdomains) the vendor serves from.
    pub domains: Vec<&'static str>,
    /// Dotted page globals; truthy means the tag runs.
    pub globals: Vec<&'static str>,
    /// Element ids whose presence means the tag runs.
    pub dom_ids: Vec<&'static str>,
    /// `<script id>`s that load the tag from any URL (first-party proxies).
    pub loader_script_ids: Vec<&'static str>,
    /// Purposes and their default categories.
    pub purposes: Vec<PurposeDef>,
    /// Path rules, first match wins.
    pub paths: Vec<PathRule>,
    /// Cookie signatures.
    pub cookies: Vec<CookieRule>,
    /// Host → region of processing, most specific first.
    pub regions: Vec<(&'static str, &'static str)>,
    /// Identity verification, where the tag has it.
    pub identity: Option<IdentityRule>,
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
    /// Source per cookie rule, in `Vendor::cookies` order.
    pub cookie_sources: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// The parsed catalog: vendors in catalog order (Intercom first) and every
/// vendor domain, sorted, with its vendor's index.
struct Catalog {
    vendors: Vec<Vendor>,
    domains: Vec<(&'static str, usize)>,
}

static CATALOG: std::sync::LazyLock<Catalog> = std::sync::LazyLock::new(|| parse(BLOB));

/// Parses the blob `core/build.rs` wrote (already validated there). A line
/// that does not parse is skipped rather than trusted or panicked on.
fn parse(blob: &'static str) -> Catalog {
    let mut vendors: Vec<Vendor> = Vec::new();
    let mut domains: Vec<(&'static str, usize)> = Vec::new();
    let list = |s: &'static str| s.split(' ').filter(|x| !x.is_empty()).collect::<Vec<_>>();
    for line in blob.lines() {
        let mut f = line.split('\t');
        let tag = f.next().unwrap_or("");
        let mut next = || f.next().unwrap_or("");
        if tag == "x" {
            // The sorted domain index: `x<TAB>domain vendor<TAB>domain vendor…`.
            domains = f.filter_map(|e| e.split_once(' ')).filter_map(|(d, i)| Some((d, i.parse().ok()?))).collect();
            continue;
        }
        if tag == "v" {
            let id = next();
            vendors.push(Vendor { id, primary: next().parse().unwrap_or(0), ..Vendor::default() });
            continue;
        }
        let Some(v) = vendors.last_mut() else { continue };
        match tag {
            "u" => {
                let name = next();
                let consent = match next() {
                    "n" => Some(Category::Necessary),
                    "f" => Some(Category::Functional),
                    "a" => Some(Category::Analytics),
                    "m" => Some(Category::Marketing),
                    _ => None,
                };
                v.purposes.push(PurposeDef { name, consent, tracking: next() == "1" });
            }
            "g" => v.globals = list(next()),
            "o" => v.dom_ids = list(next()),
            "l" => v.loader_script_ids = list(next()),
            "p" => {
                let (hosts, path) = (list(next()), next());
                let resource = match next() {
                    "s" => Resource::Script,
                    "a" => Resource::Api,
                    _ => Resource::Asset,
                };
                v.paths.push(PathRule { hosts, path, resource, purpose: next().parse().unwrap_or(usize::MAX) });
            }
            "c" => {
                let (name, prefix) = (next(), next() == "p");
                let purpose = next().parse().unwrap_or(usize::MAX);
                v.cookies.push(CookieRule { name, prefix, purpose, lifetime_days: next().parse().ok() });
            }
            "r" => {
                let host = next();
                v.regions.push((host, next()));
            }
            "i" => {
                let (settings, api) = (next(), next());
                let (verbs, ids, proofs) = (list(next()), list(next()), list(next()));
                v.identity = Some(IdentityRule { settings, api, verbs, ids, proofs });
            }
            _ => {}
        }
    }
    for (domain, i) in &domains {
        if let Some(v) = vendors.get_mut(*i) {
            v.domains.push(domain);
        }
    }
    Catalog { vendors, domains }
}

/// Every vendor, Intercom first.
pub fn vendors() -> &'static [Vendor] {
    &CATALOG.vendors
}

/// `VENDORS.iter()`, `VENDORS.len()`: every vendor, as a slice.
#[derive(Debug)]
pub struct AllVendors;

impl std::ops::Deref for AllVendors {
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
static UNKNOWN_PURPOSE: PurposeDef = PurposeDef { name: "unknown", consent: None, tracking: false };

impl Vendor {
    /// The purpose script loads, globals and markers stand for.
    pub fn primary(&'static self) -> &'static PurposeDef {
        self.purpose(self.primary)
    }

    fn purpose(&'static self, i: usize) -> &'static PurposeDef {
        self.purposes.get(i).unwrap_or(&UNKNOWN_PURPOSE)
    }

    /// Region of processing for one of this vendor's hosts, if known.
    pub fn region(&self, host: &str) -> Option<&'static str> {
        self.regions.iter().find(|(h, _)| host_within(host, h)).map(|(_, r)| *r)
    }

    /// Descriptive facts.
    pub fn info(&self) -> Option<&'static VendorInfo> {
        vendors().iter().position(|v| v.id == self.id).and_then(|i| VENDOR_INFO.get(i))
    }

    /// The rule and purpose of a cookie name, if it is this vendor's.
    pub fn cookie(&'static self, name: &str) -> Option<(&'static CookieRule, &'static PurposeDef)> {
        self.cookies.iter().find(|c| c.matches(name)).map(|c| (c, self.purpose(c.purpose)))
    }
}

/// Finds a vendor by id.
pub fn vendor(id: &str) -> Option<&'static Vendor> {
    vendors().iter().find(|v| v.id == id)
}

/// The vendor serving `host`: the longest catalog domain that `host` equals
/// or is a subdomain of. Binary search per dot-boundary suffix.
pub fn vendor_for_host(host: &str) -> Option<&'static Vendor> {
    let catalog = &*CATALOG;
    let mut suffix = host;
    loop {
        if let Ok(i) = catalog.domains.binary_search_by(|(d, _)| (*d).cmp(suffix)) {
            return catalog.domains.get(i).and_then(|(_, v)| catalog.vendors.get(*v));
        }
        let dot = suffix.find('.')?;
        suffix = suffix.get(dot + 1..)?;
    }
}

/// Classifies a request by host and path. `initiator` (Resource Timing
/// `initiatorType`) decides the kind of requests no path rule covers.
pub fn classify_request(host: &str, path: &str, initiator: &str) -> Option<RequestMatch> {
    let vendor = vendor_for_host(host)?;
    let hit = vendor
        .paths
        .iter()
        .find(|r| (r.hosts.is_empty() || r.hosts.iter().any(|h| host_within(host, h))) && glob_match(r.path, path));
    let (resource, purpose) = match hit {
        Some(r) => (r.resource, vendor.purpose(r.purpose)),
        None if initiator == "script" => (Resource::Script, vendor.primary()),
        None => (Resource::Api, vendor.primary()),
    };
    Some(RequestMatch { vendor, resource, purpose })
}

/// The vendor and purpose of a cookie name.
pub fn classify_cookie(name: &str) -> Option<(&'static Vendor, &'static PurposeDef)> {
    vendors().iter().find_map(|v| v.cookie(name).map(|(_, p)| (v, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intercom() -> &'static Vendor {
        vendor("intercom").unwrap()
    }

    fn class(url: &str, initiator: &str) -> Option<(&'static str, Resource, &'static str)> {
        let p = crate::url::parse(url)?;
        classify_request(&p.host, &p.path, initiator).map(|m| (m.vendor.id, m.resource, m.purpose.name))
    }

    #[test]
    fn intercom_request_shapes() {
        use Resource::*;
        assert_eq!(class("https://widget.intercom.io/widget/abc12345", "script"), Some(("intercom", Script, "messenger")));
        assert_eq!(class("https://js.intercomcdn.com/frame-modern.c6941a28.js", "script"), Some(("intercom", Script, "messenger")));
        assert_eq!(class("https://api-iam.intercom.io/messenger/web/ping", "fetch"), Some(("intercom", Api, "tracking")));
        assert_eq!(class("https://api-iam.eu.intercom.io/messenger/web/launcher_settings", "xmlhttprequest"), Some(("intercom", Api, "messenger")));
        assert_eq!(class("https://api-iam.intercom.io/messenger/web/rulesets/43795852/match", "fetch"), Some(("intercom", Api, "tracking")));
        assert_eq!(class("https://downloads.intercomcdn.com/i/o/1/2/x.png", "img"), Some(("intercom", Asset, "media")));
        assert_eq!(class("https://js.intercomcdn.com/audio/notification.mp3", "other"), Some(("intercom", Asset, "media")));
        assert_eq!(class("https://xy-12ab.intercom-attachments-7.com/i/o/1/x.pdf", "other"), Some(("intercom", Asset, "media")));
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
        assert_eq!(intercom().cookie("intercom-session-x").map(|c| c.0.lifetime_days), Some(Some(7)));
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
        assert!(CATALOG.domains.windows(2).all(|w| w[0].0 < w[1].0));
        for v in vendors() {
            for d in &v.domains {
                assert_eq!(vendor_for_host(d).map(|x| x.id), Some(v.id), "{d}");
                assert_eq!(vendor_for_host(&["www.", d].concat()).map(|x| x.id), Some(v.id), "www.{d}");
            }
        }
        assert_eq!(vendors().len(), VENDOR_INFO.len());
        assert_eq!(vendors()[0].id, "intercom");
        for v in vendors() {
            assert!(v.primary < v.purposes.len(), "{}", v.id);
            assert!(v.paths.iter().all(|p| p.purpose < v.purposes.len()), "{}", v.id);
            assert!(v.cookies.iter().all(|c| c.purpose < v.purposes.len()), "{}", v.id);
        }
    }
}
