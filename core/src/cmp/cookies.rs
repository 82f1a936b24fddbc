//! Consent read from the cookies that CMPs leave behind: the fallback when
//! a CMP's live API has not loaded yet, the re-check after a withdrawal,
//! and the offline `tagwatch consent` command. Feature `cmp-cookies`; the
//! page ships it as an on-demand piece (`pieces/cmp-cookies`).
//!
//! [`from_cookies`] takes a `Cookie:` header value (or `document.cookie`),
//! finds the CMP whose cookie is there and normalises its state to the four
//! categories. The exact formats and the default mapping of each CMP's
//! categories are documented in `docs/policy.md` ("CMP cookies"); the rules
//! shared by every parser:
//!
//! - **Several sources for one category** (OneTrust C0004 and C0005 both
//!   feed `marketing`): granted only when every source present grants it,
//!   refused when any refuses, unknown when none is present.
//! - **`necessary`** is the CMP's explicit flag when its format has one,
//!   else `true`: every CMP here keeps strictly necessary storage always on.
//! - **`decided`** says the visitor made a choice. Categories are what the
//!   CMP's cookie says is in force even when undecided (an opt-out banner
//!   stores "all granted" before any click); the consent timeline decides
//!   what undecided means where the GDPR applies.
//! - **Several CMPs** (a migration leaves old cookies behind): the first
//!   *decided* one in [`PRECEDENCE`](super::PRECEDENCE) order, else the first detected one.
//! - A cookie that is present but cannot be decoded still identifies the
//!   CMP: `decided` false, categories unknown except `necessary`.
//!
//! CMPs that record choices per service (Klaro's cookie has nothing else)
//! have their service names mapped to the catalog's vendors through
//! [`SERVICES`](super::SERVICES), the table the live-API reading
//! ([`super::from_choices`]) uses too: a known service's choice becomes
//! that vendor's own ([`CmpConsent::vendors`]).
//!
//! Not cookie-visible, so not read here: Usercentrics (its browser SDK keeps
//! consent in localStorage `uc_settings`; Cookiebot, also a Usercentrics
//! product, is read), and a bare TCF `euconsent-v2` string (the TC string
//! decoder reads that).
//!
//! Everything here takes untrusted input: no indexing, no unwrap, recursion
//! bounded, work linear in the input. A cookie it reads is named in
//! [`super::CONSENT_COOKIES`] (a test holds them in step).

use super::{categories_of, service, Acc, CmpConsent, SERVICES};
use crate::consent::{Category, ConsentNames, Vendors};
use crate::cookie;
use crate::json::{parse_value, Val};
use alloc::{borrow::ToOwned, string::String, vec::Vec};

/// Reads the consent state from a `Cookie:` header value. `None` when no
/// known CMP cookie is present.
pub fn from_cookies(header: &str) -> Option<CmpConsent> {
    from_cookies_with(header, &ConsentNames::default())
}

/// [`from_cookies`] with the site's meaning of its CMP's names
/// (`policy.cmp`) over the defaults.
pub fn from_cookies_with(header: &str, names: &ConsentNames) -> Option<CmpConsent> {
    let jar = Jar::new(header, names);
    let parsers: [fn(&Jar<'_>) -> Option<CmpConsent>; 9] = [
        onetrust,
        cookiebot,
        didomi,
        cookieyes,
        complianz,
        trustarc,
        osano,
        klaro,
        vanilla_cookieconsent,
    ];
    let mut first = None;
    for parse in parsers {
        if let Some(found) = parse(&jar) {
            if found.decided {
                return Some(found);
            }
            first = first.or(Some(found));
        }
    }
    first
}

/// The cookies of one header, first occurrence of a name wins (browsers send
/// the cookie of the most specific path first).
struct Jar<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    names: &'a ConsentNames,
}

impl<'a> Jar<'a> {
    fn new(header: &'a str, names: &'a ConsentNames) -> Self {
        Jar {
            pairs: cookie::pairs(header)
                .filter(|(name, _)| !name.is_empty())
                .collect(),
            names,
        }
    }

    /// The categories `name` of `cmp` stands for: the site's, else the
    /// default, else, for a CMP that records choices per service, the
    /// known service's ([`SERVICES`]).
    fn categories(&self, cmp: &str, name: &str) -> &'a [Category] {
        if let Some(site) = self.names.get(cmp, name) {
            return site;
        }
        match categories_of(cmp, name) {
            [] if SERVICE_CMPS.contains(&cmp) => self
                .service(cmp, name)
                .and_then(|slot| SERVICES.get(slot))
                .map_or(&[], |(_, _, c)| c),
            found => found,
        }
    }

    /// The [`SERVICES`] slot of a service name the site did not give
    /// categories of its own (`policy.cmp`), for a CMP that records
    /// choices per service.
    fn service(&self, cmp: &str, name: &str) -> Option<usize> {
        if self.names.get(cmp, name).is_some() || !SERVICE_CMPS.contains(&cmp) {
            return None;
        }
        service(name)
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

fn undecodable(cmp: &'static str) -> CmpConsent {
    CmpConsent {
        cmp,
        implied: false,
        decided: false,
        categories: Acc::default().finish(),
        vendors: Vendors::default(),
    }
}

/// CMPs that record choices per service (a tag, a vendor) besides or
/// instead of per category: their service names are looked up in
/// [`SERVICES`](super::SERVICES).
const SERVICE_CMPS: [&str; 3] = ["klaro", "vanilla-cookieconsent", "usercentrics"];

// ---------------------------------------------------------------- OneTrust

/// `OptanonConsent`: URL-encoded query string whose `groups` is
/// `C0001:1,C0002:0,…`; `OptanonAlertBoxClosed`: ISO time once the banner
/// was closed. Decided: `OptanonAlertBoxClosed` non-empty, or
/// `interactionCount` > 0.
fn onetrust(jar: &Jar<'_>) -> Option<CmpConsent> {
    let consent = jar.get("OptanonConsent");
    let closed = jar.get("OptanonAlertBoxClosed");
    if consent.is_none() && closed.is_none() {
        return None;
    }
    let mut decided = closed.is_some_and(|v| !v.is_empty());
    let mut acc = Acc::default();
    if let Some(raw) = consent {
        // Normally each parameter value is encoded; a doubly encoded cookie
        // has its `&` encoded too. A byte search, not `contains("%26")`:
        // the substring searcher weighs ~2.5 KB of wasm and pulls in panic
        // formatting.
        let double = crate::url::find_ascii(raw, b"&").is_none()
            && raw.as_bytes().windows(3).any(|w| w == b"%26");
        let raw = if double {
            percent_decode(raw)
        } else {
            raw.to_owned()
        };
        for param in crate::fields(&raw, b'&') {
            let (key, value) = crate::split_once(param, b'=').unwrap_or((param, ""));
            let value = percent_decode(value);
            match key {
                "interactionCount" => {
                    decided |= crate::parse_u64(crate::trim(&value)).is_some_and(|n| n > 0);
                }
                "groups" => {
                    for group in crate::fields(&value, b',') {
                        let Some((id, flag)) = crate::split_once(group, b':') else {
                            continue;
                        };
                        let granted = match crate::trim(flag) {
                            "1" => true,
                            "0" => false,
                            _ => continue,
                        };
                        for c in jar.categories("onetrust", crate::trim(id)) {
                            acc.add(*c, granted);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Some(CmpConsent {
        cmp: "onetrust",
        implied: false,
        decided,
        categories: acc.finish(),
        vendors: Vendors::default(),
    })
}

// --------------------------------------------------------------- Cookiebot

/// `CookieConsent`: URL-encoded JS object literal
/// `{stamp:'…',necessary:true,preferences:false,statistics:false,marketing:false,method:'explicit',…}`.
/// `-1` alone, or `stamp:'-1'`: the CMP found no consent needed and lets
/// everything run; the visitor chose nothing, so `decided` is false.
/// `method:'implied'` (Cookiebot's "implied consent", where the site lets
/// it apply consent without a click): decided, [`CmpConsent::implied`],
/// with the categories it records. Otherwise decided.
fn cookiebot(jar: &Jar<'_>) -> Option<CmpConsent> {
    let raw = jar.get("CookieConsent")?;
    let text = percent_decode(raw);
    let text = crate::trim(&text);
    if text == "-1" {
        let mut acc = Acc::default();
        for c in Category::ALL {
            acc.add(c, true);
        }
        return Some(CmpConsent {
            cmp: "cookiebot",
            implied: false,
            decided: false,
            categories: acc.finish(),
            vendors: Vendors::default(),
        });
    }
    let Some(Val::Obj(members)) = parse_value(text) else {
        return Some(undecodable("cookiebot"));
    };
    let mut acc = Acc::default();
    let (mut no_consent_needed, mut implied) = (false, false);
    for (key, value) in &members {
        match (key.as_str(), value) {
            ("stamp", Val::Str(s)) => no_consent_needed |= s == "-1",
            ("method", Val::Str(s)) => implied |= s == "implied",
            (name, Val::Bool(b)) => jar
                .categories("cookiebot", name)
                .iter()
                .for_each(|c| acc.add(*c, *b)),
            _ => {}
        }
    }
    Some(CmpConsent {
        cmp: "cookiebot",
        implied: implied && !no_consent_needed,
        decided: !no_consent_needed,
        categories: acc.finish(),
        vendors: Vendors::default(),
    })
}

// ----------------------------------------------------------------- Didomi

/// `didomi_token`: base64 JSON. Purposes as Didomi's ids (its standard ids
/// for the IAB purposes, `cookies`, `select_basic_ads`, …, or TCF purpose
/// numbers) and the site's custom purposes, in any of the token's forms:
/// `purposes.enabled` / `purposes.disabled` (version 2 tokens),
/// `purposes.consent.enabled` / `.disabled` (the consent-string form the
/// Web SDK's user status uses), legitimate-interest lists
/// (`purposes_li`, `purposes.legitimate_interest`) ignored: they are not
/// consent. Default mapping: purpose 1 `cookies` gates functional,
/// analytics and marketing (nothing may be stored without it); analytics
/// also needs the measurement purposes 7-10, marketing the advertising
/// purposes 2-4, each by the "every source" rule; custom purposes through
/// `policy.cmp.didomi`. Decided: the token lists at least one purpose or
/// vendor (a notice with no purposes of its own still records the
/// visitor's vendor choice).
fn didomi(jar: &Jar<'_>) -> Option<CmpConsent> {
    let raw = jar.get("didomi_token")?;
    let Some(json) =
        base64_decode(&percent_decode(raw)).map(|b| String::from_utf8_lossy(&b).into_owned())
    else {
        return Some(undecodable("didomi"));
    };
    let Some(root) = parse_value(&json) else {
        return Some(undecodable("didomi"));
    };
    // `enabled` / `disabled` lists of `key`, plain or under `consent`.
    let lists = |key: &str| {
        let top = root.member(key);
        let consent = top.and_then(|p| p.member("consent"));
        [("enabled", true), ("disabled", false)]
            .into_iter()
            .flat_map(move |(list, granted)| {
                [top, consent].into_iter().filter_map(move |v| {
                    match v.and_then(|v| v.member(list)) {
                        Some(Val::Arr(items)) => Some((items, granted)),
                        _ => None,
                    }
                })
            })
    };
    let mut acc = Acc::default();
    let mut any = false;
    for (items, granted) in lists("purposes") {
        for id in items.iter().filter_map(Val::text) {
            any = true;
            for c in jar.categories("didomi", id) {
                acc.add(*c, granted);
            }
        }
    }
    any |= lists("vendors").any(|(items, _)| !items.is_empty());
    Some(CmpConsent {
        cmp: "didomi",
        implied: false,
        decided: any,
        categories: acc.finish(),
        vendors: Vendors::default(),
    })
}

// -------------------------------------------------------------- CookieYes

/// `cookieyes-consent`: `consentid:…,consent:yes,action:yes,necessary:yes,
/// functional:no,analytics:no,performance:no,advertisement:no,other:no`.
/// performance → analytics, advertisement → marketing, `other` unmapped.
/// Decided: `action:yes`. `consent:yes` with `action:no` is consent the
/// banner applied without a click (CookieYes' opt-out / implied-consent
/// banners set it on load where the site allows): decided,
/// [`CmpConsent::implied`]. Legacy plugin: `cky-consent`, `cky-action`,
/// `cookieyes-<category>=yes|no`.
fn cookieyes(jar: &Jar<'_>) -> Option<CmpConsent> {
    fn yes_no(v: &str) -> Option<bool> {
        match crate::trim(v) {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        }
    }
    let mut acc = Acc::default();
    if let Some(raw) = jar.get("cookieyes-consent") {
        let text = percent_decode(raw);
        let (mut action, mut consent) = (None, None);
        for item in crate::fields(&text, b',') {
            let Some((key, value)) = crate::split_once(item, b':') else {
                continue;
            };
            let key = crate::trim(key);
            if key == "action" {
                action = Some(crate::trim(value) == "yes");
            } else if key == "consent" {
                consent = yes_no(value);
            } else if let Some(v) = yes_no(value) {
                jar.categories("cookieyes", key)
                    .iter()
                    .for_each(|c| acc.add(*c, v));
            }
        }
        let implied = action == Some(false) && consent == Some(true);
        return Some(CmpConsent {
            cmp: "cookieyes",
            implied,
            decided: action == Some(true) || implied,
            categories: acc.finish(),
            vendors: Vendors::default(),
        });
    }
    let action = jar.get("cky-action");
    let legacy_consent = jar.get("cky-consent");
    let mut any = false;
    for name in [
        "necessary",
        "functional",
        "analytics",
        "performance",
        "advertisement",
    ] {
        let value = jar
            .pairs
            .iter()
            .find(|(n, _)| n.strip_prefix("cookieyes-") == Some(name))
            .map(|(_, v)| *v);
        if let Some(v) = value.and_then(yes_no) {
            jar.categories("cookieyes", name)
                .iter()
                .for_each(|c| acc.add(*c, v));
            any = true;
        }
    }
    if action.is_none() && legacy_consent.is_none() && !any {
        return None;
    }
    let decided = action.is_some_and(|a| crate::trim(a) == "yes");
    Some(CmpConsent {
        cmp: "cookieyes",
        implied: false,
        decided,
        categories: acc.finish(),
        vendors: Vendors::default(),
    })
}

// -------------------------------------------------------------- Complianz

/// `cmplz_<category>=allow|deny` (default prefix). Complianz's own
/// `functional` is its always-on category → necessary; preferences →
/// functional, statistics → analytics, marketing → marketing. Decided:
/// `cmplz_banner-status=dismissed`, or without that cookie any category
/// cookie present.
fn complianz(jar: &Jar<'_>) -> Option<CmpConsent> {
    let mut acc = Acc::default();
    let mut any = false;
    for name in ["functional", "preferences", "statistics", "marketing"] {
        let mut key = String::from("cmplz_");
        key.push_str(name);
        let Some(value) = jar.get(&key) else { continue };
        any = true;
        let granted = match crate::trim(value) {
            "allow" => true,
            "deny" => false,
            _ => continue,
        };
        jar.categories("complianz", name)
            .iter()
            .for_each(|c| acc.add(*c, granted));
    }
    let banner = jar.get("cmplz_banner-status");
    if !any && banner.is_none() {
        return None;
    }
    let decided = match banner {
        Some(status) => crate::trim(status) == "dismissed",
        None => any,
    };
    Some(CmpConsent {
        cmp: "complianz",
        implied: false,
        decided,
        categories: acc.finish(),
        vendors: Vendors::default(),
    })
}

// --------------------------------------------------------------- TrustArc

/// TrustArc default buckets: required, functional (which includes
/// analytics), advertising. `notice_gdpr_prefs=0,1,2:` lists accepted
/// 0-based buckets before `:`; `cmapi_cookie_privacy=permit 1,2,3` lists
/// 1-based ones; legacy `notice_preferences=N:` accepts buckets 0..=N.
/// First of these present wins; any of them means decided.
fn trustarc(jar: &Jar<'_>) -> Option<CmpConsent> {
    let mut accepted = [false; 3];
    let mut mark = |i: usize| {
        if let Some(slot) = accepted.get_mut(i) {
            *slot = true;
        }
    };
    if let Some(raw) = jar.get("notice_gdpr_prefs") {
        let text = percent_decode(raw);
        let list = crate::fields(&text, b':').next().unwrap_or("");
        crate::fields(list, b',')
            .filter_map(|n| crate::parse_u64(crate::trim(n)).and_then(|n| usize::try_from(n).ok()))
            .for_each(&mut mark);
    } else if let Some(raw) = jar.get("cmapi_cookie_privacy") {
        let text = percent_decode(raw);
        // Quotes around it cut by `strip_*` with a `&str` (a byte compare),
        // not `trim_matches(['"'])` (core's character searchers).
        let mut list = crate::trim(&text);
        while let Some(rest) = list.strip_prefix("\"") {
            list = rest;
        }
        while let Some(rest) = list.strip_suffix("\"") {
            list = rest;
        }
        let list = list.strip_prefix("permit").unwrap_or("");
        crate::fields(list, b',')
            .flat_map(|n| crate::fields(n, b' '))
            .filter_map(|n| crate::parse_u64(crate::trim(n)).and_then(|n| usize::try_from(n).ok()))
            .filter_map(|n| n.checked_sub(1))
            .for_each(&mut mark);
    } else if let Some(raw) = jar.get("notice_preferences") {
        let text = percent_decode(raw);
        let Some(level) = crate::fields(&text, b':')
            .next()
            .and_then(|n| crate::parse_u64(crate::trim(n)).and_then(|n| usize::try_from(n).ok()))
        else {
            return Some(undecodable("trustarc"));
        };
        for i in 0..=level.min(2) {
            mark(i);
        }
    } else {
        return None;
    }
    // Bucket 1 (required) cannot be refused in TrustArc.
    let [_, functional, advertising] = accepted;
    let mut acc = Acc::default();
    acc.add(Category::Necessary, true);
    acc.add(Category::Functional, functional);
    acc.add(Category::Analytics, functional);
    acc.add(Category::Marketing, advertising);
    Some(CmpConsent {
        cmp: "trustarc",
        implied: false,
        decided: true,
        categories: acc.finish(),
        vendors: Vendors::default(),
    })
}

// ------------------------------------------------------------------ Osano

/// `osano_consentmanager`: base64 (or plain, URL-encoded) JSON
/// `{"ESSENTIAL":"ACCEPT","STORAGE":"ACCEPT","MARKETING":"DENY",
/// "PERSONALIZATION":"DENY","ANALYTICS":"ACCEPT","OPT_OUT":"DENY"}`.
/// STORAGE and PERSONALIZATION → functional; `OPT_OUT:ACCEPT` (do not
/// sell/share) refuses marketing. Decided: at least one category decoded.
fn osano(jar: &Jar<'_>) -> Option<CmpConsent> {
    let raw = jar.get("osano_consentmanager")?;
    let text = percent_decode(raw);
    let root = base64_decode(&text)
        .and_then(|b| parse_value(&String::from_utf8_lossy(&b)))
        .or_else(|| parse_value(&text));
    let Some(Val::Obj(members)) = root else {
        return Some(undecodable("osano"));
    };
    let mut acc = Acc::default();
    let mut any = false;
    for (key, value) in &members {
        let granted = match value.text() {
            Some("ACCEPT") => true,
            Some("DENY") => false,
            _ => continue,
        };
        any = true;
        if key == "OPT_OUT" {
            if granted {
                acc.add(Category::Marketing, false);
            }
            continue;
        }
        jar.categories("osano", key)
            .iter()
            .for_each(|c| acc.add(*c, granted));
    }
    Some(CmpConsent {
        cmp: "osano",
        implied: false,
        decided: any,
        categories: acc.finish(),
        vendors: Vendors::default(),
    })
}

// ------------------------------------------------------------------ Klaro

/// `klaro`: URL-encoded JSON `{"<service>":true|false,…}`, per service, not
/// per category. A service the site names in `policy.cmp.klaro`, or one of
/// the known services ([`super::SERVICES`]: `google-analytics` → the GA4
/// vendor → analytics), gives its categories by the "every source" rule;
/// a known service's choice is also its vendor's own
/// ([`CmpConsent::vendors`]: refusing `hotjar` and accepting
/// `google-analytics` lets GA4 run, not Hotjar, and leaves other analytics
/// vendors refused);
/// categories no known service gates follow the rest: every service
/// granted → granted, every service refused → refused, mixed → unknown.
/// Decided: at least one service recorded.
fn klaro(jar: &Jar<'_>) -> Option<CmpConsent> {
    let raw = jar.get("klaro")?;
    let Some(Val::Obj(members)) = parse_value(&percent_decode(raw)) else {
        return Some(undecodable("klaro"));
    };
    let mut acc = Acc::default();
    let mut vendors = Vendors::default();
    let (mut granted, mut refused) = (0usize, 0usize);
    for (name, value) in &members {
        let Val::Bool(b) = value else { continue };
        if *b {
            granted += 1;
        } else {
            refused += 1;
        }
        if let Some(slot) = jar.service("klaro", name) {
            vendors.add(slot, *b);
        }
        for c in jar.categories("klaro", name) {
            acc.add(*c, *b);
        }
    }
    let mut categories = acc.finish();
    if granted == 0 || refused == 0 {
        for c in [
            Category::Functional,
            Category::Analytics,
            Category::Marketing,
        ] {
            if categories.get(c).is_none() && granted + refused > 0 {
                categories.set(c, Some(refused == 0));
            }
        }
    }
    Some(CmpConsent {
        cmp: "klaro",
        implied: false,
        decided: granted + refused > 0,
        categories,
        vendors,
    })
}

// ------------------------------------------------- orestbida cookieconsent

/// `cc_cookie` (orestbida/cookieconsent, npm `vanilla-cookieconsent`):
/// JSON, URL-encoded in v3, with the accepted category names in
/// `categories` (v3) or `level` (v2). The site names its categories; common
/// names are mapped (see docs/policy.md), a known category absent from the
/// list is refused. The cookie is written on the visitor's choice: decided.
/// Its `services` are not read: they list only the services accepted, so
/// a refused one is not in them, and a grant read from them would outlive
/// a later cookie that drops the service (a vendor's choice stands until
/// one about it replaces it); the live API gives both (`www/cmp-api.js`).
fn vanilla_cookieconsent(jar: &Jar<'_>) -> Option<CmpConsent> {
    let raw = jar.get("cc_cookie")?;
    let root = parse_value(&percent_decode(raw)).or_else(|| parse_value(raw));
    let Some(root) = root else {
        return Some(undecodable("vanilla-cookieconsent"));
    };
    let Some(Val::Arr(items)) = root.member("categories").or_else(|| root.member("level")) else {
        return Some(undecodable("vanilla-cookieconsent"));
    };
    let mut granted = [false; 4];
    for item in items {
        for c in item
            .text()
            .map(|name| jar.categories("vanilla-cookieconsent", name))
            .unwrap_or_default()
        {
            if let Some(slot) = granted.get_mut(*c as usize) {
                *slot = true;
            }
        }
    }
    let mut acc = Acc::default();
    for (c, g) in Category::ALL.into_iter().zip(granted) {
        acc.add(c, g);
    }
    // `necessary` is read-only in cookieconsent: always accepted.
    let mut categories = acc.finish();
    categories.set(Category::Necessary, Some(true));
    Some(CmpConsent {
        cmp: "vanilla-cookieconsent",
        implied: false,
        decided: true,
        categories,
        vendors: Vendors::default(),
    })
}

// ------------------------------------------------------------- decoders

/// Percent-decodes `s` (`+` stays as is); malformed escapes are kept
/// literally, invalid UTF-8 is replaced.
fn percent_decode(s: &str) -> String {
    if crate::url::find_ascii(s, b"%").is_none() {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|h| hex(*h));
            let lo = bytes.get(i + 2).and_then(|l| hex(*l));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Decodes standard or URL-safe base64, padding optional, ASCII whitespace
/// ignored. `None` on any other character or an impossible length.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut count = 0usize;
    let mut padded = false;
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padded = true;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if padded {
            return None;
        }
        count += 1;
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if count % 4 == 1 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_gate_their_catalog_vendors_categories() {
        for (slot, (names, vendor, categories)) in SERVICES.iter().enumerate() {
            if let Some(v) = crate::catalog::vendor(vendor) {
                let primary = v.primary().consent;
                assert_eq!(
                    categories.to_vec(),
                    primary.into_iter().collect::<alloc::vec::Vec<_>>(),
                    "{vendor}"
                );
            }
            assert_eq!(super::super::vendor_slot(vendor), Some(slot));
            assert_eq!(service(vendor), Some(slot), "its id names it");
            for name in names.split(['|']) {
                assert!(
                    name.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                    "{name} is written as a key"
                );
                assert_eq!(service(name), Some(slot), "{name} is listed once");
            }
        }
        assert_eq!(service("Google Analytics"), Some(0));
        assert_eq!(service("google_analytics"), Some(0));
        let names = ConsentNames::default();
        let jar = Jar::new("", &names);
        assert_eq!(
            jar.categories("klaro", "google_analytics"),
            &[Category::Analytics]
        );
        assert_eq!(
            jar.categories("klaro", "YouTube Video"),
            &[Category::Marketing]
        );
        assert_eq!(
            jar.categories("onetrust", "google-analytics"),
            &[] as &[Category],
            "not a service CMP"
        );
        assert_eq!(jar.categories("klaro", "my-own-widget"), &[] as &[Category]);
        assert_eq!(
            categories_of("klaro", "google-analytics"),
            &[] as &[Category],
            "a service, not a category name"
        );
    }

    #[test]
    fn base64_variants() {
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert_eq!(base64_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_decode("a"), None);
        assert_eq!(base64_decode("a=b"), None);
        assert_eq!(base64_decode("a*"), None);
    }

    #[test]
    fn percent_decoding_is_tolerant() {
        assert_eq!(percent_decode("a%3Ab%2C%zz%4"), "a:b,%zz%4");
        assert_eq!(percent_decode("%C3%A9%FF"), "é\u{fffd}");
    }

    #[test]
    fn precedence_prefers_a_decided_cmp() {
        let h =
            "cookieyes-consent=consent:no,action:,necessary:yes; OptanonConsent=groups=C0002%3A1";
        assert_eq!(from_cookies(h).unwrap().cmp, "onetrust");
        let h = "cookieyes-consent=consent:yes,action:yes,analytics:yes; OptanonConsent=groups=C0002%3A1";
        assert_eq!(from_cookies(h).unwrap().cmp, "cookieyes");
    }
}
