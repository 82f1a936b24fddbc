//! Consent signals beyond the site API, read by the engine itself so the
//! in-page monitor, the extension and native tests apply the same rules:
//!
//! - **Sources of truth** fed into the timeline: the CMP cookies in each
//!   `document.cookie` snapshot, a CMP's live API state, IAB TCF and GPP.
//!   Consent a CMP restored from storage counts from page start (time 0);
//!   a choice counts from its event. Undecided is not consent: an
//!   undecided CMP changes nothing, so where nothing decided, only
//!   `necessary` is granted. Consent a CMP applied without a choice
//!   (implied) is a decided state resting on [`Basis::Implied`]: as the CMP
//!   says under `policy.implied: 'accept'`, else with every category it
//!   grants refused.
//! - **Claims** Google's tags make (Consent Mode commands in `dataLayer`,
//!   `gcs` on their hits) are not fed in: the CMP holds the truth. Each
//!   claim of a granted storage type is checked against the timeline
//!   [`CLAIM_SETTLE_MS`] later; a claim the timeline does not back is a
//!   `consent_signal_mismatch`.

use super::{Engine, CLAIM_SETTLE_MS};
use crate::catalog::{self, Vendor};
use crate::cmp::{self, CmpConsent};
use crate::consent::{self, Basis, Categories, Category, Source, Vendors};
use crate::consent_mode::{self, ConsentMode};
use crate::report::{Evidence, FindingType, SignalKind};
use crate::url::{self, UrlParts};
use alloc::{string::String, vec::Vec};

/// Vendors whose hits carry `gcs`.
const GOOGLE_TAGS: [&str; 3] = ["ga4", "google-ads", "gtm"];

/// Consent Mode storage types checked, and the category each needs.
const CLAIMS: [(&str, Category); 2] = [
    ("ad_storage", Category::Marketing),
    ("analytics_storage", Category::Analytics),
];

#[derive(Debug)]
pub(super) struct Signals {
    /// A cookie snapshot was read: CMP consent in the first one was
    /// restored from storage.
    cookies_read: bool,
    /// The decided CMP state last read from cookies.
    cmp_cookie: Option<(&'static str, Categories, Vendors, Basis)>,
    consent_mode: ConsentMode,
    claims: Vec<Claim>,
    /// TCF vendor consents (GVL ids) as of each TCF update.
    tcf_vendors: Vec<(u64, Vec<u16>)>,
}

impl Signals {
    /// Nothing read yet, as a constant.
    pub(super) const EMPTY: Signals = Signals {
        cookies_read: false,
        cmp_cookie: None,
        consent_mode: ConsentMode::EMPTY,
        claims: Vec::new(),
        tcf_vendors: Vec::new(),
    };
}

/// A storage type claimed granted at `at`, not yet checked.
#[derive(Debug)]
struct Claim {
    vendor: &'static Vendor,
    category: Category,
    at: u64,
    evidence: Evidence,
}

impl Engine {
    /// The CMP state read from a `document.cookie` snapshot taken at `now`
    /// (`cmp::from_cookies_with` with the policy's consent names, in the
    /// engine or in the page's cookie reader piece; `None`: no CMP cookie).
    /// Call it for every snapshot in order: the first one's consent was
    /// restored from storage (time 0), and a decided state that differs
    /// from the last one is a consent change.
    pub fn cmp_cookie_consent(&mut self, found: Option<CmpConsent>, now: u64) {
        let found = found
            .filter(|c| c.decided)
            .map(|c| (c.cmp, c.categories, c.vendors, c.basis()));
        let at = if self.signals.cookies_read { now } else { 0 };
        self.signals.cookies_read = true;
        if found == self.signals.cmp_cookie {
            return;
        }
        self.signals.cmp_cookie = found;
        if let Some((id, categories, vendors, basis)) = found {
            self.cmp_consent(categories, vendors, id, basis, at);
        }
    }

    /// A decided CMP state into the timeline; an implied one as the
    /// policy counts it (module docs).
    fn cmp_consent(
        &mut self,
        mut categories: Categories,
        mut vendors: Vendors,
        id: &'static str,
        basis: Basis,
        at: u64,
    ) {
        if basis == Basis::Implied && !self.policy.accept_implied {
            for &c in &Category::ALL {
                if c != Category::Necessary && categories.get(c) == Some(true) {
                    categories.set(c, Some(false));
                }
            }
            vendors = vendors.refuse_granted();
        }
        self.consent_with(categories, vendors, Source::Cmp(id), basis, at);
    }

    /// A CMP's live state from its API or events: each of its own category
    /// names and, for a CMP that records choices per service, each service
    /// name granted or refused ([`cmp::from_choices`]); on what it rests
    /// (`basis`): [`Basis::None`] when undecided, which changes nothing,
    /// [`Basis::Implied`] when the CMP applied it without a choice;
    /// `restored` when the CMP had it from storage before the visitor did
    /// anything on this page.
    pub fn cmp_state(
        &mut self,
        cmp: &str,
        choices: &[(&str, bool)],
        services: &[(&str, bool)],
        basis: Basis,
        restored: bool,
        now: u64,
    ) {
        let Some(id) = cmp::cmp_id(cmp) else {
            return;
        };
        if basis == Basis::None {
            return;
        }
        let names = &self.policy.consent_names;
        if let Some((categories, vendors)) = cmp::from_choices(id, choices, services, names) {
            let at = if restored { 0 } else { now };
            self.cmp_consent(categories, vendors, id, basis, at);
        }
    }

    /// An IAB TCF `addEventListener` callback: `gdpr_applies` as the CMP
    /// says (`None` while it is still deciding), `event_status`, the ids of
    /// the purposes with consent, and the GVL ids of the vendors with
    /// consent (they gate the vendors of `Policy::tcf_vendor`).
    /// `tcloaded` is consent restored from storage (page start);
    /// `useractioncomplete` a choice (now); `cmpuishown` undecided. Where
    /// the GDPR does not apply, TCF gates nothing: every category granted.
    pub fn tcf(
        &mut self,
        gdpr_applies: Option<bool>,
        event_status: &str,
        purposes: &[u16],
        vendors: &[u16],
        now: u64,
    ) {
        let categories = match gdpr_applies {
            None => return,
            Some(false) => consent::all_granted(),
            Some(true) => {
                consent::from_tcf_purposes(|id| has(purposes, id), &self.policy.consent_names)
            }
        };
        let at = match event_status {
            "tcloaded" => 0,
            "useractioncomplete" => now,
            _ if gdpr_applies == Some(false) => 0,
            _ => return,
        };
        if gdpr_applies == Some(true) {
            let ids = vendors.to_vec();
            crate::insert_by_time(&mut self.signals.tcf_vendors, (at, ids), |(t, _)| *t);
        }
        self.consent(categories, Source::Tcf, at);
    }

    /// A TCF-registered vendor needs its vendor consent from the last TCF
    /// update at or before `at` (none yet: the purposes decide alone).
    /// `necessary` never needs it.
    pub(super) fn vendor_consented(&self, vendor: &str, category: Category, at: u64) -> bool {
        let Some(id) = self.policy.tcf_vendor(vendor) else {
            return true;
        };
        let last = self
            .signals
            .tcf_vendors
            .iter()
            .take_while(|(t, _)| *t <= at)
            .last();
        category == Category::Necessary || last.is_none_or(|(_, ids)| has(ids, id))
    }

    /// An IAB GPP event with `signalStatus` `ready`: the GPP string and the
    /// `applicableSections` (`-1`: none applies), read by
    /// [`crate::gpp::us_categories`]. Feature `gpp`; the page's monitor
    /// decodes GPP in an on-demand piece and calls [`Engine::gpp_categories`].
    #[cfg(feature = "gpp")]
    pub fn gpp(&mut self, gpp_string: &str, applicable: &[i32], restored: bool, now: u64) {
        self.gpp_categories(
            crate::gpp::us_categories(gpp_string, applicable),
            restored,
            now,
        );
    }

    /// The categories of a GPP event ([`crate::gpp::us_categories`]):
    /// nothing known changes nothing; `restored` when the CMP had the
    /// state from storage before the visitor did anything on this page.
    pub fn gpp_categories(&mut self, categories: Categories, restored: bool, now: u64) {
        if categories != Categories::default() {
            self.consent(categories, Source::Gpp, if restored { 0 } else { now });
        }
    }

    /// A Consent Mode command from `dataLayer` (`gtag('consent', command,
    /// {…})`), values as strings. A `default` claims its state once
    /// `wait_for_update` has passed; an `update` at once.
    pub fn consent_mode(&mut self, command: &str, params: &[(&str, &str)], now: u64) {
        let signals = &mut self.signals;
        if !signals.consent_mode.apply(command, params) {
            return;
        }
        let (signal, at) = match command {
            "default" => (
                SignalKind::ConsentDefault,
                now.saturating_add(signals.consent_mode.wait_for_update().unwrap_or(0)),
            ),
            _ => (SignalKind::ConsentUpdate, now),
        };
        let Some(vendor) = catalog::vendor("gtm") else {
            return;
        };
        for (claimed, category) in CLAIMS {
            if signals.consent_mode.effective(claimed) == Some(true) {
                let evidence = Evidence::Signal {
                    signal,
                    claimed,
                    host: String::new(),
                    path: String::new(),
                };
                signals.claims.push(Claim {
                    vendor,
                    category,
                    at,
                    evidence,
                });
            }
        }
    }

    /// A Google hit: its `gcs` claims the storage types granted.
    pub(super) fn google_hit(
        &mut self,
        vendor: &'static Vendor,
        full_url: &str,
        parts: &UrlParts,
        at: u64,
    ) {
        if !GOOGLE_TAGS.contains(&vendor.id) {
            return;
        }
        let Some((ad, analytics)) =
            url::query_param(full_url, "gcs").and_then(consent_mode::parse_gcs)
        else {
            return;
        };
        for ((claimed, category), granted) in CLAIMS.into_iter().zip([ad, analytics]) {
            if granted {
                let evidence = Evidence::Signal {
                    signal: SignalKind::Gcs,
                    claimed,
                    // Not `clone()`: see `cookie_evidence`.
                    host: parts.host.as_str().into(),
                    path: url::redact_path(&parts.path),
                };
                self.signals.claims.push(Claim {
                    vendor,
                    category,
                    at,
                    evidence,
                });
            }
        }
    }

    /// Checks the claims whose settle time has passed.
    pub(super) fn settle_claims(&mut self, now: u64) {
        // One loop that keeps the pending claims, not `partition` (its
        // instances: 200 bytes of the shipped wasm's gzip).
        for c in core::mem::take(&mut self.signals.claims) {
            let settled = c.at.saturating_add(CLAIM_SETTLE_MS);
            if settled > now {
                self.signals.claims.push(c);
            } else if !self.consent.at(settled).categories.granted(c.category) {
                self.record(
                    FindingType::ConsentSignalMismatch,
                    c.vendor,
                    Some(c.category),
                    c.at,
                    c.evidence,
                );
            }
        }
    }
}

/// Whether `ids` holds `id`: a loop, not `<[u16]>::contains` (a generic
/// instance the page's wasm carried for these two lookups alone).
fn has(ids: &[u16], id: u16) -> bool {
    for i in ids {
        if *i == id {
            return true;
        }
    }
    false
}
