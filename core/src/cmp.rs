//! Consent-management platforms (CMPs): their ids, what their own
//! category, group, purpose and service names mean ([`categories_of`]), and
//! the state a page shell read from a CMP's live API ([`from_choices`]).
//!
//! Reading a CMP's state from the cookies it leaves behind (the fallback
//! when its live API has not loaded, the re-check after a withdrawal, the
//! offline `tagwatch consent` command) is [`from_cookies`], in
//! [`cookies`] (feature `cmp-cookies`): the page ships it as an on-demand
//! piece (`pieces/cmp-cookies`), fetched only when [`in_cookies`] says a
//! CMP cookie is there, and hands its answer to
//! `Engine::cmp_cookie_consent` in the compact form of [`CmpConsent::to_bits`].
//!
//! Everything here takes untrusted input: no indexing, no unwrap, work
//! linear in the input.

use crate::consent::{Basis, Categories, Category, ConsentNames, Vendors};

#[cfg(feature = "cmp-cookies")]
pub mod cookies;
#[cfg(feature = "cmp-cookies")]
pub use cookies::{from_cookies, from_cookies_with};

/// Consent as one CMP's cookies record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmpConsent {
    /// CMP id, one of [`PRECEDENCE`].
    pub cmp: &'static str,
    /// The visitor made a choice (see the module docs for each CMP's rule),
    /// or the CMP applied consent without one (`implied`).
    pub decided: bool,
    /// Decided by the CMP without a choice, where it judged the visitor's
    /// region allows that: the state rests on
    /// [`Basis::Implied`](crate::consent::Basis::Implied), and counts only
    /// under `policy.implied: 'accept'`.
    pub implied: bool,
    /// The normalised categories (`None`: unknown).
    pub categories: Categories,
    /// Choices the CMP recorded about single vendors (per service), which
    /// decide for those vendors over their categories.
    pub vendors: Vendors,
}

/// CMP ids in the order used when a header carries several CMPs' cookies.
pub const PRECEDENCE: [&str; 9] = [
    "onetrust",
    "cookiebot",
    "didomi",
    "cookieyes",
    "complianz",
    "trustarc",
    "osano",
    "klaro",
    "vanilla-cookieconsent",
];

impl CmpConsent {
    /// On what the state rests: none (undecided), a choice, or implied.
    pub fn basis(self) -> Basis {
        match (self.decided, self.implied) {
            (false, _) => Basis::None,
            (true, false) => Basis::Explicit,
            (true, true) => Basis::Implied,
        }
    }

    /// The compact form a page's cookie reader (an on-demand wasm piece)
    /// hands to the monitor: bits 0–7 the categories
    /// ([`Categories::to_bits`]), bit 8 `decided`, bit 9 `implied`, bits
    /// 16–23 the CMP's place in [`PRECEDENCE`] plus one. Never 0, which
    /// stands for "no CMP".
    pub fn to_bits(self) -> u32 {
        let place = PRECEDENCE
            .iter()
            .position(|id| *id == self.cmp)
            .map_or(0, |i| i + 1);
        (place as u32) << 16
            | u32::from(self.implied) << 9
            | u32::from(self.decided) << 8
            | u32::from(self.categories.to_bits())
    }

    /// The consent [`CmpConsent::to_bits`] packed, without its
    /// [`CmpConsent::vendors`] (they cross as [`Vendors::to_bits`]); `None`
    /// for 0 or an unknown CMP.
    pub fn from_bits(bits: u32) -> Option<CmpConsent> {
        let place = usize::try_from(bits >> 16 & 0xff).ok()?.checked_sub(1)?;
        let cmp = PRECEDENCE.get(place)?;
        Some(CmpConsent {
            cmp,
            decided: bits >> 8 & 1 == 1,
            implied: bits >> 9 & 1 == 1,
            categories: Categories::from_bits((bits & 0xff) as u8),
            vendors: Vendors::default(),
        })
    }
}

/// The cookies in which each CMP keeps a visitor's choice (what
/// [`from_cookies`] reads), and `tcf` for the TC string many TCF CMPs keep
/// in `euconsent-v2`: `(name, cmp)`, a name ending in `*` a prefix.
pub const CONSENT_COOKIES: [(&str, &str); 15] = [
    ("OptanonConsent", "onetrust"),
    ("OptanonAlertBoxClosed", "onetrust"),
    ("CookieConsent", "cookiebot"),
    ("didomi_token", "didomi"),
    ("cookieyes-*", "cookieyes"),
    ("cky-action", "cookieyes"),
    ("cky-consent", "cookieyes"),
    ("cmplz_*", "complianz"),
    ("notice_gdpr_prefs", "trustarc"),
    ("cmapi_cookie_privacy", "trustarc"),
    ("notice_preferences", "trustarc"),
    ("osano_consentmanager", "osano"),
    ("klaro", "klaro"),
    ("cc_cookie", "vanilla-cookieconsent"),
    ("euconsent-v2", "tcf"),
];

/// The CMP (or `tcf`) that keeps its visitor's choice in the cookie `name`.
pub fn consent_cookie(name: &str) -> Option<&'static str> {
    CONSENT_COOKIES
        .iter()
        .find(|(n, _)| {
            // The `*` by its byte, not `strip_suffix(['*'])` (a reverse
            // character searcher in the page's wasm).
            match n.as_bytes().split_last() {
                Some((b'*', _)) => name.starts_with(n.get(..n.len() - 1).unwrap_or(n)),
                _ => *n == name,
            }
        })
        .map(|(_, cmp)| *cmp)
}

/// Whether `header` (a `Cookie:` value or `document.cookie`) has a cookie
/// [`from_cookies`] reads: where it has none, [`from_cookies`] finds no
/// CMP, so a page need not fetch the cookie reader.
pub fn in_cookies(header: &str) -> bool {
    crate::cookie::pairs(header)
        .any(|(name, _)| consent_cookie(name).is_some_and(read_from_cookies))
}

/// Whether [`from_cookies`] reads the consent cookie of `cmp` (a
/// [`consent_cookie`] id): every CMP's but the TCF string's, which the TCF
/// decoder reads. Inlined where it is asked: a function of its own made
/// the page's wasm 75 bytes larger (measured).
#[inline(always)]
pub fn read_from_cookies(cmp: &str) -> bool {
    cmp != "tcf"
}

/// CMP ids whose live API the page shells read besides [`PRECEDENCE`]
/// (Usercentrics keeps its state in localStorage, not cookies).
const LIVE_ONLY: [&str; 1] = ["usercentrics"];

/// The static id of a CMP named by a shell, `None` for an unknown one.
pub fn cmp_id(name: &str) -> Option<&'static str> {
    PRECEDENCE
        .into_iter()
        .chain(LIVE_ONLY)
        .find(|id| *id == name)
}

/// The normalised categories that one of a CMP's own category, group,
/// bucket or purpose names stands for by default (`docs/policy.md`). The
/// cookie parsers and the live-API readers both map through it, so a CMP
/// reads the same whichever way its state reached the monitor.
pub fn categories_of(cmp: &str, name: &str) -> &'static [Category] {
    let own = |(c, names, _): &&(&str, &str, &[Category])| {
        *c == cmp && crate::fields(names, b'|').any(|n| n == name)
    };
    if let Some((_, _, categories)) = DEFAULT_NAMES.iter().find(own) {
        return categories;
    }
    if OWN_NAMES_ONLY.contains(&cmp) {
        return &[];
    }
    // Cookiebot, CookieYes, Usercentrics, Klaro purposes and cookieconsent
    // categories use plain names, spelled as sites like.
    let common = |(c, names, _): &&(&str, &str, &[Category])| {
        *c == "*" && crate::fields(names, b'|').any(|n| n.eq_ignore_ascii_case(name))
    };
    DEFAULT_NAMES
        .iter()
        .find(common)
        .map_or(&[], |(_, _, categories)| categories)
}

/// CMPs whose names are all in [`DEFAULT_NAMES`] under their own id.
const OWN_NAMES_ONLY: [&str; 5] = ["onetrust", "complianz", "osano", "trustarc", "didomi"];

/// The default meaning of each CMP's names (`docs/policy.md`), a table so
/// the page's wasm carries data rather than a tree of string compares:
/// `(cmp id, names split by '|', categories)`; cmp `*` holds the plain
/// category names, matched whatever their case.
const DEFAULT_NAMES: &[(&str, &str, &[Category])] = {
    use Category::*;
    &[
        ("onetrust", "C0001", &[Necessary]),
        ("onetrust", "C0002", &[Analytics]),
        ("onetrust", "C0003", &[Functional]),
        ("onetrust", "C0004|C0005", &[Marketing]),
        // OneTrust's older numeric group ids, still on many sites: 1
        // strictly necessary, 2 performance, 3 functional, 4 targeting, 8
        // social media.
        ("onetrust", "1", &[Necessary]),
        ("onetrust", "2", &[Analytics]),
        ("onetrust", "3", &[Functional]),
        ("onetrust", "4|8", &[Marketing]),
        ("complianz", "functional", &[Necessary]),
        ("complianz", "preferences", &[Functional]),
        ("complianz", "statistics", &[Analytics]),
        ("complianz", "marketing", &[Marketing]),
        ("osano", "ESSENTIAL", &[Necessary]),
        ("osano", "STORAGE|PERSONALIZATION", &[Functional]),
        ("osano", "ANALYTICS", &[Analytics]),
        ("osano", "MARKETING", &[Marketing]),
        // TrustArc buckets, 1-based: required, functional (with analytics), advertising.
        ("trustarc", "1", &[Necessary]),
        ("trustarc", "2", &[Functional, Analytics]),
        ("trustarc", "3", &[Marketing]),
        // Didomi purpose ids, or the TCF purpose numbers they stand for:
        // `cookies` (1) gates functional, analytics and marketing.
        ("didomi", "cookies|1", &[Functional, Analytics, Marketing]),
        ("didomi", "select_basic_ads|create_ads_profile|select_personalized_ads|2|3|4", &[Marketing]),
        ("didomi", "measure_ad_performance|measure_content_performance|market_research|improve_products|7|8|9|10", &[Analytics]),
        ("*", "necessary|essential|required|strictly_necessary", &[Necessary]),
        ("*", "functional|functionality|preferences", &[Functional]),
        ("*", "analytics|performance|statistics|measurement", &[Analytics]),
        ("*", "marketing|ads|advertising|advertisement|targeting", &[Marketing]),
    ]
};

/// Service names the CMPs' own templates and sites' configurations use
/// (Klaro's `services[].name`, cookieconsent's `services` keys,
/// Usercentrics' service names; `docs/policy.md`): `(names split by '|',
/// catalog vendor id, the categories its consent gates)`. A service's slot
/// (its place here) is its bit in [`Vendors`]. Names are written as keys
/// (lower case, no spaces, `-`, `_` or `.`; see [`service`]). The
/// categories are the vendor's primary purpose's in the catalog (a test
/// holds them in step); services the catalog has no vendor for name one of
/// their own (`youtube`, `matomo`) with the category of what they do.
pub const SERVICES: [(&str, &str, &[Category]); 20] = {
    use Category::*;
    [
        ("googleanalytics|ga|ga4|googleanalytics4|universalanalytics", "ga4", &[Analytics]),
        ("googleads|googleadsconversiontracking|googleadsremarketing|adwords|doubleclick|googlemarketingproducts", "google-ads", &[Marketing]),
        ("facebookpixel|metapixel|facebook|fbpixel", "meta-pixel", &[Marketing]),
        ("hotjar", "hotjar", &[Analytics]),
        ("microsoftclarity|clarity", "microsoft-clarity", &[Analytics]),
        ("microsoftadvertising|bingads|microsoftuet|bing", "microsoft-uet", &[Marketing]),
        ("linkedininsighttag|linkedininsight|linkedin", "linkedin-insight", &[Marketing]),
        ("tiktokpixel|tiktok", "tiktok-pixel", &[Marketing]),
        ("pinteresttag|pinterest", "pinterest-tag", &[Marketing]),
        ("twitterpixel|xpixel|twitter", "x-pixel", &[Marketing]),
        ("snappixel|snapchat", "snap-pixel", &[Marketing]),
        ("redditpixel|reddit", "reddit-pixel", &[Marketing]),
        ("criteo", "criteo", &[Marketing]),
        ("hubspot", "hubspot", &[Marketing]),
        ("intercom", "intercom", &[Functional]),
        ("mixpanel", "mixpanel", &[Analytics]),
        ("amplitude", "amplitude", &[Analytics]),
        ("yandexmetrica|yandexmetrika|yandex", "yandex-metrica", &[Analytics]),
        ("youtube|youtubevideo", "youtube", &[Marketing]),
        ("matomo|piwik", "matomo", &[Analytics]),
    ]
};

/// The slot in [`SERVICES`] of a CMP service name: case, spaces, `_`, `-`
/// and `.` ignored (`Google Analytics`, `google-analytics` and
/// `google_analytics` are one name).
pub fn service(name: &str) -> Option<usize> {
    // A byte loop, not `filter().map().eq()` over the name (those adapters:
    // 66 bytes of the shipped wasm's gzip).
    let same = |n: &str| {
        let mut want = n.bytes();
        for b in name.bytes() {
            if !matches!(b, b' ' | b'_' | b'-' | b'.')
                && want.next() != Some(b.to_ascii_lowercase())
            {
                return false;
            }
        }
        want.next().is_none()
    };
    SERVICES
        .iter()
        .position(|(names, ..)| crate::fields(names, b'|').any(same))
}

/// The slot in [`SERVICES`] of a catalog vendor: where a CMP's per-service
/// choice about it is kept in [`Vendors`].
pub fn vendor_slot(vendor: &str) -> Option<usize> {
    SERVICES.iter().position(|(_, v, _)| *v == vendor)
}

/// A CMP's live state, as a page shell read it from the CMP's API or
/// events: each of its own category names with granted or refused, and,
/// for a CMP that records choices per service, each service name with its
/// choice. Category names map through [`categories_of`] by the same "every
/// source must grant" rule as the cookies, and carry the same meanings
/// (Osano's `OPT_OUT` granted is a "do not sell or share": marketing
/// refused). A service name the site gave categories in `policy.cmp` counts
/// as one of those; else a known one ([`service`]) becomes its vendor's own
/// choice ([`Vendors`]), which decides for that vendor over its category;
/// else it is ignored. An unknown CMP gives `None`.
pub fn from_choices(
    cmp: &str,
    choices: &[(&str, bool)],
    services: &[(&str, bool)],
    names: &ConsentNames,
) -> Option<(Categories, Vendors)> {
    let cmp = cmp_id(cmp)?;
    let mut acc = Acc::default();
    for &(name, granted) in choices {
        let name = crate::trim(name);
        if cmp == "osano" && name == "OPT_OUT" {
            if granted {
                acc.add(Category::Marketing, false);
            }
            continue;
        }
        for c in names
            .get(cmp, name)
            .unwrap_or_else(|| categories_of(cmp, name))
        {
            acc.add(*c, granted);
        }
    }
    let mut vendors = Vendors::default();
    for &(name, granted) in services {
        let name = crate::trim(name);
        if let Some(site) = names.get(cmp, name) {
            site.iter().for_each(|c| acc.add(*c, granted));
        } else if let Some(slot) = service(name) {
            vendors.add(slot, granted);
        }
    }
    Some((acc.finish(), vendors))
}

/// Accumulates values per category with the "every source must grant" rule.
#[derive(Default)]
pub(crate) struct Acc([Option<bool>; 4]);

impl Acc {
    pub(crate) fn add(&mut self, c: Category, v: bool) {
        if let Some(slot) = self.0.get_mut(c as usize) {
            *slot = Some(slot.unwrap_or(true) && v);
        }
    }

    /// Unknown `necessary` becomes `true` (see the module docs).
    pub(crate) fn finish(self) -> Categories {
        let mut c = Categories(self.0);
        if c.get(Category::Necessary).is_none() {
            c.set(Category::Necessary, Some(true));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte loop of `service` finds what the former adapter chain found.
    #[test]
    fn service_is_the_former_comparison() {
        fn former(name: &str) -> Option<usize> {
            let key = || {
                name.bytes()
                    .filter(|b| !matches!(b, b' ' | b'_' | b'-' | b'.'))
                    .map(|b| b.to_ascii_lowercase())
            };
            SERVICES
                .iter()
                .position(|(names, ..)| names.split(['|']).any(|n| key().eq(n.bytes())))
        }
        let mut names: Vec<String> = vec![String::new(), " ".into(), "x".into()];
        for (alternatives, ..) in SERVICES {
            for n in alternatives.split('|') {
                names.push(n.into());
                names.push(n.to_ascii_uppercase().replace('a', "a-"));
                names.push(format!("{n}x"));
                names.push(format!(" {n}."));
                names.push(n.get(1..).unwrap_or("").into());
            }
        }
        for n in &names {
            assert_eq!(service(n), former(n), "{n:?}");
        }
    }

    #[test]
    fn consent_cookies_name_their_cmp() {
        assert_eq!(consent_cookie("OptanonConsent"), Some("onetrust"));
        assert_eq!(consent_cookie("cmplz_marketing"), Some("complianz"));
        assert_eq!(consent_cookie("cookieyes-analytics"), Some("cookieyes"));
        assert_eq!(consent_cookie("cmplz"), None);
        assert_eq!(consent_cookie("euconsent-v2"), Some("tcf"));
        assert_eq!(consent_cookie("intercom-id-abc"), None);
        assert!(
            !in_cookies("euconsent-v2=CP; a=1"),
            "the TC string is not a cookie reader's"
        );
    }
}
