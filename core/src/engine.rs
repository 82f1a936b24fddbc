//! The findings state machine of one page view.
//!
//! The shell feeds it observations (requests, cookie snapshots, globals, DOM
//! markers, consent changes) with times in ms after navigation start; the
//! engine judges each against the consent in force *at that time* and the
//! site policy, deduplicates, and hands out what is new for the next report.

use crate::catalog::{self, PurposeDef, Resource, Vendor};
use crate::consent::{Basis, Categories, Category, Source, Timeline, Vendors};
use crate::inventory::{Entry, Inventory};
use crate::policy::Policy;
use crate::report::{self, ConsentSnapshot, Evidence, Finding, FindingType, PageView};
use crate::{cookie, url};
use alloc::{borrow::ToOwned, string::String, vec::Vec};

mod signals;

/// How long after a claim about consent (a Consent Mode command, a Google
/// hit's `gcs`) the CMP may take to say the same: a CMP that tells Google
/// first and the page a moment later is not a mismatch.
pub const CLAIM_SETTLE_MS: u64 = 500;

/// Milliseconds after navigation start, from a `DOMHighResTimeStamp`.
/// Negative, NaN and huge values saturate instead of panicking.
pub fn ms(t: f64) -> u64 {
    t as u64
}

/// A vendor cookie currently present.
#[derive(Debug, Clone)]
struct PresentCookie {
    name: String,
    vendor: &'static Vendor,
    purpose: &'static PurposeDef,
    since: u64,
}

/// A Resource Timing entry as the shell sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// `entry.name`: the full URL (the engine keeps host and path only).
    pub url: &'a str,
    /// `startTime` relative to the top document's navigation start.
    pub start: f64,
    /// `initiatorType`.
    pub initiator: &'a str,
    /// `top`, or the frame the entry came from.
    pub frame: &'a str,
    /// `transferSize`.
    pub transfer: f64,
    /// `encodedBodySize`.
    pub encoded: f64,
    /// `duration`.
    pub duration: f64,
}

impl Request<'_> {
    fn entry(&self, resource: Resource) -> Entry {
        Entry {
            script: resource == Resource::Script,
            transfer: ms(self.transfer),
            encoded: ms(self.encoded),
            duration: ms(self.duration),
        }
    }
}

/// Per page-view engine.
#[derive(Debug)]
pub struct Engine {
    policy: Policy,
    consent: Timeline,
    gpc: bool,
    page_path: String,
    page_site: String,
    /// [`Engine::ignore_host`]'s, lower-case; `""`: none.
    ignored_host: String,
    inventory: Inventory,
    identified: Vec<&'static str>,
    cookies: Vec<PresentCookie>,
    findings: Vec<Finding>,
    sent: usize,
    /// Behaviours consent let pass at their time that are findings
    /// without it, kept to be judged again on every consent change: a
    /// state read after the tags ran may count from before them (a CMP's
    /// choice restored from storage counts from page start). A returning
    /// visitor's cookieconsent cookie lists only the services accepted, so
    /// its reader grants their category, and the service refused inside
    /// it comes from the CMP's live API after its tags ran.
    passed: Vec<Finding>,
    signals: signals::Signals,
    /// Each host's vendor once looked up ([`Engine::vendor_of`]).
    hosts: Vec<(String, Option<&'static Vendor>)>,
}

/// Hosts whose vendor is kept once looked up: a page loads from a few
/// dozen (the busy bench page: 30 hosts, 300 entries); past this, a new
/// host is looked up each time (only slower). The lookup (a binary search
/// of the catalog's domains per suffix of the host) was the largest part
/// of judging an entry in the page's wasm.
const MAX_HOSTS: usize = 64;

/// Passed behaviours kept, distinct by type, vendor and evidence: a
/// restored state is read in a page view's first moments, when a page has
/// run its first tags; past this, further ones are not kept (a state read
/// later cannot make findings of them). Bounds the memory, and the work of
/// each consent change, on a page with thousands of distinct request paths.
const MAX_PASSED: usize = 64;

/// A finding's consent before [`Engine::judge`] gives it the state it was
/// judged on.
const UNJUDGED: ConsentSnapshot = ConsentSnapshot {
    necessary: None,
    functional: None,
    analytics: None,
    marketing: None,
    source: Source::Default,
    since: 0,
    basis: report::ConsentBasis::None,
    vendor: None,
    gpc: false,
};

/// The empty state, written once: [`Engine::EMPTY`].
impl Default for Engine {
    fn default() -> Self {
        Engine::EMPTY
    }
}

impl Engine {
    /// A new page view on `page_href` (the page's full URL; only its path is
    /// kept, for page-scope rules).
    pub fn new(policy: Policy, page_href: &str) -> Self {
        let mut engine = Engine {
            policy,
            ..Engine::EMPTY
        };
        engine.set_page(page_href);
        engine
    }

    /// The page view's page, `page_href` (as [`Engine::new`] takes it), for
    /// an engine made from [`Engine::EMPTY`] in place.
    #[doc(hidden)]
    pub fn set_page(&mut self, page_href: &str) {
        self.page_site = url::parse(page_href)
            .map(|p| url::site_of(&p.host).to_owned())
            .unwrap_or_default();
        self.page_path = url::page_path(page_href);
    }

    /// A page view with nothing yet, as a constant: [`Engine::new`] starts
    /// from it (a copy of its bytes, where `..Engine::default()` wrote each
    /// field and dropped a default policy: docs/benchmarks.md, eleventh
    /// round). Public for the page's shell, whose own constant holds one
    /// (then [`Engine::set_page`]), and for nothing else: hidden.
    #[doc(hidden)]
    pub const EMPTY: Engine = Engine {
        policy: Policy::DEFAULT,
        consent: Timeline::EMPTY,
        gpc: false,
        page_path: String::new(),
        page_site: String::new(),
        ignored_host: String::new(),
        inventory: Inventory::EMPTY,
        identified: Vec::new(),
        cookies: Vec::new(),
        findings: Vec::new(),
        sent: 0,
        passed: Vec::new(),
        signals: signals::Signals::EMPTY,
        hosts: Vec::new(),
    };

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy in force, to adjust.
    pub fn policy_mut(&mut self) -> &mut Policy {
        &mut self.policy
    }

    /// Requests to `host` (and its subdomains) are the monitor's own (the
    /// collector): never judged. One host, the page view's collector's: a
    /// later call replaces it (a list of them, never more than one long,
    /// cost 24 bytes of the page's wasm gzip: docs/benchmarks.md, fifteenth
    /// round).
    pub fn ignore_host(&mut self, host: &str) {
        self.ignored_host = host.to_ascii_lowercase();
    }

    /// Records a consent change. A change dated before findings not yet
    /// sent (consent a CMP restored from storage, which counts from page
    /// start, reported after the tag already ran) revises them.
    pub fn consent(&mut self, categories: Categories, source: Source, at: u64) {
        self.consent_with(categories, Vendors::default(), source, Basis::Explicit, at);
    }

    /// [`Engine::consent`] resting on `basis`, with choices about single
    /// vendors (a CMP's per-service choices), which decide for those
    /// vendors over their categories.
    pub fn consent_with(
        &mut self,
        categories: Categories,
        vendors: Vendors,
        source: Source,
        basis: Basis,
        at: u64,
    ) {
        self.consent
            .update_with(categories, vendors, source, basis, at);
        self.revise();
    }

    /// Judges again, on the timeline as it is now, the findings not sent
    /// and the behaviours consent let pass ([`Engine::judge`]). A finding
    /// that keeps its type is put back as it is (they are distinct: no
    /// search, linear in the findings).
    fn revise(&mut self) {
        let passed = core::mem::take(&mut self.passed);
        let unsent = self.findings.split_off(self.sent.min(self.findings.len()));
        for f in unsent {
            let kind = f.kind;
            match self.judge(f) {
                Some(f) if f.kind == kind => self.findings.push(f),
                Some(f) => keep(&mut self.findings, f, usize::MAX),
                None => {}
            }
        }
        for p in passed {
            if let Some(f) = self.judge(p) {
                keep(&mut self.findings, f, usize::MAX);
            }
        }
    }

    /// Judges `f` on consent at its time (a claim `CLAIM_SETTLE_MS` after
    /// it), where its type needs consent. Allowed: no finding, and a
    /// behaviour that is one without consent (`*_before_consent`) is kept
    /// as passed. Else a behaviour of a type a withdrawal decides — before
    /// consent, or `request_after_withdrawal` for a request that is a
    /// finding only after one — is, after a withdrawal of that consent, a
    /// request past the grace period `request_after_withdrawal` and
    /// anything else none (a cookie left after one is [`Engine::tick`]'s);
    /// the finding, which carries the state it was judged on, is returned.
    fn judge(&mut self, mut f: Finding) -> Option<Finding> {
        if let (true, Some(c)) = (f.kind.needs_consent(), f.category) {
            let at = if f.kind == FindingType::ConsentSignalMismatch {
                f.at.saturating_add(CLAIM_SETTLE_MS)
            } else {
                f.at
            };
            let before = matches!(
                f.kind,
                FindingType::ScriptBeforeConsent
                    | FindingType::TrackingBeforeConsent
                    | FindingType::CookieBeforeConsent
            );
            if self.granted(f.vendor, c, at) {
                if before {
                    keep(&mut self.passed, f, MAX_PASSED);
                }
                return None;
            }
            if before || f.kind == FindingType::RequestAfterWithdrawal {
                match self.consent.withdrawn_since(f.vendor, c, at) {
                    Some(w)
                        if matches!(f.evidence, Evidence::Request { .. })
                            && at > w.saturating_add(self.policy.grace_ms) =>
                    {
                        f.kind = FindingType::RequestAfterWithdrawal;
                    }
                    Some(_) => return None,
                    None if !before => return None,
                    None => {}
                }
            }
            f.consent = self.snapshot(at, f.vendor);
        }
        Some(f)
    }

    /// The consent a finding about `vendor` is judged on at `at`.
    fn snapshot(&self, at: u64, vendor: &str) -> ConsentSnapshot {
        let state = self.consent.at(at);
        ConsentSnapshot::new(state, self.gpc).for_vendor(&state, vendor)
    }

    /// The consent state in force at `at`.
    pub fn consent_at(&self, at: u64) -> crate::consent::State {
        self.consent.at(at)
    }

    /// Whether `vendor` may do what needs `category` at `at`: its own
    /// choice where a CMP recorded one, else its category, is granted
    /// ([`crate::consent::State::allows`]), and a vendor registered with
    /// IAB TCF has its vendor consent where TCF spoke.
    fn granted(&self, vendor: &str, category: Category, at: u64) -> bool {
        self.consent.at(at).allows(vendor, category) && self.vendor_consented(vendor, category, at)
    }

    /// Global Privacy Control as the browser reports it.
    pub fn set_gpc(&mut self, on: bool) {
        self.gpc = on;
    }

    /// Judges a Resource Timing entry.
    pub fn request(&mut self, req: Request<'_>) {
        let Some(parts) = url::parse(req.url) else {
            return;
        };
        if !self.ignored_host.is_empty() && url::host_within(&parts.host, &self.ignored_host) {
            return;
        }
        let vendor = self.vendor_of(&parts.host);
        let Some(m) =
            vendor.map(|v| catalog::classify_for(v, &parts.host, &parts.path, req.initiator))
        else {
            if !url::host_within(&parts.host, &self.page_site) {
                let script = if req.initiator == "script" {
                    Resource::Script
                } else {
                    Resource::Api
                };
                self.inventory.unclassified(&parts.host, &req.entry(script));
            }
            return;
        };
        self.google_hit(m.vendor, req.url, &parts, ms(req.start));
        self.vendor_request(
            m.vendor,
            m.resource,
            m.purpose,
            &parts.host,
            &parts.path,
            req,
        );
    }

    /// The vendor serving `host` ([`catalog::vendor_for_host`]), kept per
    /// host (MAX_HOSTS).
    fn vendor_of(&mut self, host: &str) -> Option<&'static Vendor> {
        if let Some(&(_, v)) = self.hosts.iter().find(|(h, _)| h == host) {
            return v;
        }
        let v = catalog::vendor_for_host(host);
        if self.hosts.len() < MAX_HOSTS {
            self.hosts.push((host.into(), v));
        }
        v
    }

    /// Judges a request known to be `vendor`'s loader whatever its host (a
    /// first-party proxy found through the vendor's loader `<script id>`).
    pub fn loader_request(&mut self, vendor: &'static Vendor, req: Request<'_>) {
        if let Some(parts) = url::parse(req.url) {
            self.vendor_request(
                vendor,
                Resource::Script,
                vendor.primary(),
                &parts.host,
                &parts.path,
                req,
            );
        }
    }

    fn vendor_request(
        &mut self,
        vendor: &'static Vendor,
        resource: Resource,
        purpose: &'static PurposeDef,
        host: &str,
        path: &str,
        req: Request<'_>,
    ) {
        let at = ms(req.start);
        let region = vendor.region(host);
        self.inventory
            .vendor_request(vendor.id, host, region, &req.entry(resource));
        let evidence = || Evidence::Request {
            host: host.into(),
            path: url::redact_path(path),
            initiator: crate::prefix(req.initiator, 32).into(),
            frame: crate::prefix(req.frame, 64).into(),
            purpose: purpose.name,
            region,
        };
        if let Some(r) = region {
            if !self.policy.region_allowed(r) {
                self.record(FindingType::RegionNotAllowed, vendor, None, at, evidence());
            }
        }
        let Some(category) = self.policy.category(vendor.id, purpose) else {
            return;
        };
        if self.out_of_scope(vendor) {
            let e = evidence();
            self.record(FindingType::PageOutOfScope, vendor, None, at, e);
        }
        if self.gpc && category == Category::Marketing {
            self.record(
                FindingType::GpcIgnored,
                vendor,
                Some(category),
                at,
                evidence(),
            );
        }
        // A request neither a script nor tracking is a finding only after a
        // withdrawal.
        let kind = if resource == Resource::Script {
            FindingType::ScriptBeforeConsent
        } else if purpose.tracking {
            FindingType::TrackingBeforeConsent
        } else {
            FindingType::RequestAfterWithdrawal
        };
        self.record(kind, vendor, Some(category), at, evidence());
    }

    /// Takes a `document.cookie` snapshot at `now`. New vendor cookies are
    /// judged at first sighting; removed ones are forgotten. With feature
    /// `cmp-cookies` the CMP cookies of the snapshot are read too; without
    /// it (the page's monitor), a cookie reader outside the engine reports
    /// them through [`Engine::cmp_cookie_consent`]. The cookies this
    /// change removes are judged at `now` too: one that outlived its
    /// deadline until now is recorded however rarely the shell ticks (its
    /// sweeps are event-driven, src/sweep.rs).
    pub fn cookies(&mut self, header: &str, now: u64) {
        #[cfg(feature = "cmp-cookies")]
        self.cmp_cookie_consent(
            crate::cmp::from_cookies_with(header, &self.policy.consent_names),
            now,
        );
        self.cookie_names(cookie::live_names(header), now);
    }

    /// [`Engine::cookies`] of a snapshot already split: the live cookies'
    /// names (non-empty name and value; those the catalog does not know
    /// are skipped here). The page's shell reads each snapshot's pairs
    /// once and hands over the names the catalog knows, not a header of
    /// them joined that this split again (docs/benchmarks.md, thirteenth
    /// round).
    pub fn cookie_names<'a>(&mut self, names: impl IntoIterator<Item = &'a str>, now: u64) {
        let mut present = Vec::with_capacity(self.cookies.len());
        for name in names {
            // A cookie still there keeps what the catalog gave it (which
            // depends on its name only): only a new one is classified, not
            // every vendor cookie of every snapshot (a busy page's start
            // replays dozens of snapshots).
            if let Some(i) = self.cookies.iter().position(|c| c.name == name) {
                present.push(self.cookies.swap_remove(i));
                continue;
            }
            let Some((vendor, purpose)) = catalog::classify_cookie(name) else {
                continue;
            };
            let seen = PresentCookie {
                name: name.into(),
                vendor,
                purpose,
                since: now,
            };
            self.judge_new_cookie(&seen);
            present.push(seen);
        }
        // What is left of the last snapshot is what this one removed.
        if !self.cookies.is_empty() {
            self.tick(now);
        }
        self.cookies = present;
        self.tick(now);
    }

    fn judge_new_cookie(&mut self, c: &PresentCookie) {
        self.inventory.vendor_cookie(c.vendor.id, &c.name);
        if self.out_of_scope(c.vendor) {
            let e = cookie_evidence(c);
            self.record(FindingType::PageOutOfScope, c.vendor, None, c.since, e);
        }
        let Some(category) = self.policy.category(c.vendor.id, c.purpose) else {
            return;
        };
        self.record(
            FindingType::CookieBeforeConsent,
            c.vendor,
            Some(category),
            c.since,
            cookie_evidence(c),
        );
    }

    /// Advances time: cookies still present `grace_ms` after a withdrawal
    /// become findings. Call after the latest cookie snapshot.
    pub fn tick(&mut self, now: u64) {
        self.settle_claims(now);
        let grace = self.policy.grace_ms;
        // By index, recording as it goes (`record` leaves the cookies as
        // they are), not through a list of the due ones: 161 bytes of the
        // shipped wasm's gzip.
        for i in 0..self.cookies.len() {
            let Some(c) = self.cookies.get(i) else {
                break;
            };
            let Some(category) = self.policy.category(c.vendor.id, c.purpose) else {
                continue;
            };
            if let Some(w) = self.consent.withdrawn_since(c.vendor.id, category, now) {
                let deadline = w.saturating_add(grace);
                if now >= deadline {
                    let (vendor, at, evidence) =
                        (c.vendor, deadline.max(c.since), cookie_evidence(c));
                    let kind = FindingType::CookieAfterWithdrawal;
                    self.record(kind, vendor, Some(category), at, evidence);
                }
            }
        }
    }

    /// The vendor's page global `name` (`Intercom`) or, with `dom`, its DOM
    /// marker (`#intercom-frame`) is present at `now`: the tag runs.
    /// Presence is a state, not an event: re-reading it on every tick does
    /// not add to `count`. The evidence is an [`Evidence::Global`] or an
    /// [`Evidence::Dom`] of `name`, made again for a second finding, not
    /// cloned: the derived `Evidence::clone` copies every variant's strings
    /// (111 bytes of the shipped wasm's gzip, docs/benchmarks.md, sixteenth
    /// round).
    pub fn presence(&mut self, vendor: &'static Vendor, dom: bool, name: String, now: u64) {
        let evidence = |name| {
            if dom {
                Evidence::Dom { name }
            } else {
                Evidence::Global { name }
            }
        };
        // By the evidence's key, as `keep` deduplicates: for a global or a
        // DOM marker (what `evidence` is) the key is the whole evidence, and
        // no other kind's key equals it (a cookie's and a claim's start with
        // another word; a request's ends with its path, which starts with
        // `/` as no global's or marker's name does: the catalog's test
        // `globals_are_not_paths`, and a marker is `#id`).
        // The derived `Evidence` equality then leaves the module: 200 bytes
        // of the shipped wasm's gzip.
        let found = evidence(name);
        let key = found.key();
        if self
            .findings
            .iter()
            .any(|f| f.vendor == vendor.id && f.evidence.key() == key)
        {
            return;
        }
        self.inventory.vendor_present(vendor.id);
        if self.out_of_scope(vendor) {
            let e = evidence(key.1.into());
            self.record(FindingType::PageOutOfScope, vendor, None, now, e);
        }
        let Some(category) = self.policy.category(vendor.id, vendor.primary()) else {
            return;
        };
        self.record(
            FindingType::ScriptBeforeConsent,
            vendor,
            Some(category),
            now,
            found,
        );
    }

    /// The tag identifies a user without identity verification; `source`
    /// names where (`intercomSettings`, `Intercom('update')`). One finding per
    /// vendor and page view.
    pub fn identity_unverified(&mut self, vendor: &'static Vendor, source: &str, now: u64) {
        if self.identified.contains(&vendor.id) {
            return;
        }
        self.identified.push(vendor.id);
        let evidence = Evidence::Global {
            name: crate::prefix(source, 64).into(),
        };
        self.record(FindingType::IdentityUnverified, vendor, None, now, evidence);
    }

    /// A vendor cookie's expiry as the Cookie Store API reports it
    /// (`expires` and `now` in ms since the epoch).
    pub fn cookie_expiry(&mut self, name: &str, expires: f64, now_epoch: f64, now: u64) {
        let Some(max) = self.policy.cookie_max_days else {
            return;
        };
        let Some((vendor, purpose)) = catalog::classify_cookie(name) else {
            return;
        };
        let days = ms((expires - now_epoch) / 86_400_000.0);
        if days > u64::from(max) {
            let days = u32::try_from(days).unwrap_or(u32::MAX);
            let evidence = Evidence::Cookie {
                cookie: name.into(),
                purpose: purpose.name,
                days: Some(days),
            };
            if !self.findings.iter().any(|f| {
                f.kind == FindingType::CookieLifetimeExceedsPolicy
                    && f.evidence.key() == evidence.key()
            }) {
                self.record(
                    FindingType::CookieLifetimeExceedsPolicy,
                    vendor,
                    None,
                    now,
                    evidence,
                );
            }
        }
    }

    /// Whether `vendor` runs on a page the policy keeps it off, not found
    /// yet on this page view (one `page_out_of_scope` a vendor).
    fn out_of_scope(&self, vendor: &'static Vendor) -> bool {
        !self.policy.page_allowed(vendor.id, &self.page_path)
            && !self
                .findings
                .iter()
                .any(|f| f.kind == FindingType::PageOutOfScope && f.vendor == vendor.id)
    }

    fn record(
        &mut self,
        kind: FindingType,
        vendor: &'static Vendor,
        category: Option<Category>,
        at: u64,
        evidence: Evidence,
    ) {
        // judge() gives a type that needs consent the state it judged on.
        let consent = if kind.needs_consent() && category.is_some() {
            UNJUDGED
        } else {
            self.snapshot(at, vendor.id)
        };
        if let Some(f) = self.judge(Finding {
            kind,
            vendor: vendor.id,
            category,
            at,
            count: 1,
            evidence,
            consent,
        }) {
            keep(&mut self.findings, f, usize::MAX);
        }
    }

    /// Every finding of the page view so far.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The page view's inventory so far.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The findings not yet sent, and the inventory if it changed, as a
    /// report batch; `None` when there is nothing new. Marks them sent.
    pub fn take_batch(&mut self, view: &PageView<'_>, now: u64) -> Option<String> {
        let fresh = self.findings.get(self.sent..).unwrap_or(&[]);
        let inventory_changed = self.inventory.take_changed();
        if fresh.is_empty() && !inventory_changed {
            return None;
        }
        let body = report::batch(
            view,
            fresh.iter(),
            inventory_changed.then_some(&self.inventory),
            now,
        );
        self.sent = self.findings.len();
        Some(body)
    }
}

/// Adds `f` to `list`: more times of one already there (same type, vendor
/// and evidence), else a new one while `list` has fewer than `max`.
fn keep(list: &mut Vec<Finding>, f: Finding, max: usize) {
    let key = f.evidence.key();
    if let Some(old) = list
        .iter_mut()
        .find(|o| o.kind == f.kind && o.vendor == f.vendor && o.evidence.key() == key)
    {
        old.count = old.count.saturating_add(f.count);
    } else if list.len() < max {
        list.push(f);
    }
}

/// A cookie's evidence. Its name copied as a `&str` (`as_str().into()`,
/// as the engine copies every text), not by `String::clone`: with this and
/// the two other copies of a `String` the page's wasm makes (a claim's host,
/// a policy's TCF vendor) written so, the module has no `String::clone`
/// (35 bytes of its gzip, docs/benchmarks.md, sixteenth round).
fn cookie_evidence(c: &PresentCookie) -> Evidence {
    Evidence::Cookie {
        cookie: c.name.as_str().into(),
        purpose: c.purpose.name,
        days: None,
    }
}
