//! CMP cookie parsers: the golden cases in tests/fixtures/cmp/cases.jsonl
//! (realistic cookie headers per CMP, in the exact formats of
//! shared/reference/consent.md §1.5, with the expected normalised state —
//! the same file drives the `tagwatch consent` CLI test), and property tests
//! that no header panics.

use proptest::prelude::*;
use serde_json::{json, Value};
use tagwatch_core::cmp::{self, CmpConsent, PRECEDENCE};
use tagwatch_core::consent::Category;

const CASES: &str = include_str!("../../tests/fixtures/cmp/cases.jsonl");

fn to_json(found: Option<CmpConsent>) -> Value {
    let get = |c: Category| found.and_then(|f| f.categories.get(c));
    let vendors: serde_json::Map<String, Value> = found
        .map(|f| f.vendors.iter().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|(v, g)| (v.to_owned(), Value::Bool(g)))
        .collect();
    let mut out = json!({
        "cmp": found.map(|f| f.cmp),
        "decided": found.is_some_and(|f| f.decided),
        "basis": found.map_or("none", |f| f.basis().as_str()),
        "categories": {
            "necessary": get(Category::Necessary),
            "functional": get(Category::Functional),
            "analytics": get(Category::Analytics),
            "marketing": get(Category::Marketing),
        }
    });
    if let (false, Some(o)) = (vendors.is_empty(), out.as_object_mut()) {
        o.insert("vendors".into(), Value::Object(vendors));
    }
    out
}

#[test]
fn golden_cases() {
    let mut failures = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let header = case["header"].as_str().unwrap();
        let got = to_json(cmp::from_cookies(header));
        if got != case["expect"] {
            failures.push(format!(
                "{}:\n  expected {}\n  got      {}",
                case["name"], case["expect"], got
            ));
        }
        if let Some(id) = case["expect"]["cmp"].as_str() {
            covered.insert(id.to_owned());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for id in PRECEDENCE {
        assert!(covered.contains(id), "no golden case for {id}");
    }
}

#[test]
fn every_cmp_has_accept_and_reject_cases() {
    for id in PRECEDENCE {
        let mut seen = (false, false);
        for line in CASES.lines() {
            let case: Value = serde_json::from_str(line).unwrap();
            if case["expect"]["cmp"] != id || case["expect"]["decided"] != true {
                continue;
            }
            let cats = &case["expect"]["categories"];
            let vals = ["functional", "analytics", "marketing"].map(|k| cats[k].clone());
            seen.0 |= vals.iter().all(|v| *v == true);
            seen.1 |= vals.iter().all(|v| *v == false);
        }
        assert!(
            seen.0 && seen.1,
            "{id}: accept-all and reject-all cases wanted"
        );
    }
}

#[test]
fn reading_is_order_and_whitespace_tolerant() {
    let h = "  cookieyes-consent=consentid:x,consent:yes,action:yes,necessary:yes,functional:no,analytics:yes,performance:yes,advertisement:no ;;x";
    let c = cmp::from_cookies(h).unwrap();
    assert!(c.decided);
    assert_eq!(c.categories.get(Category::Analytics), Some(true));
    assert_eq!(c.categories.get(Category::Marketing), Some(false));
    assert_eq!(cmp::from_cookies(""), None);
    assert_eq!(
        cmp::from_cookies("OptanonConsentX=groups%3DC0002%3A1"),
        None
    );
}

/// What the page's cookie reader piece hands the monitor (`to_bits`) reads
/// back as the same consent, for every golden case; and a page fetches that
/// piece only when `in_cookies` says so, which it does for every case that
/// finds a CMP.
#[test]
fn compact_form_and_cookie_check_agree_with_the_readers() {
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let header = case["header"].as_str().unwrap();
        let found = cmp::from_cookies(header);
        if let Some(c) = found {
            assert_ne!(c.to_bits(), 0);
            // The vendor choices cross beside it (the piece's `vendors`).
            let without_vendors = CmpConsent {
                vendors: Default::default(),
                ..c
            };
            assert_eq!(
                CmpConsent::from_bits(c.to_bits()),
                Some(without_vendors),
                "{}",
                case["name"]
            );
            assert!(
                cmp::in_cookies(header),
                "{}: a CMP found in a header in_cookies rejects",
                case["name"]
            );
        }
    }
    assert_eq!(CmpConsent::from_bits(0), None);
    assert_eq!(CmpConsent::from_bits(10 << 16), None, "no 10th CMP");
    assert!(!cmp::in_cookies("a=1; OptanonConsentX=1; xcmplz_a=1"));
    assert!(cmp::in_cookies("a=1; cmplz_marketing=allow"));
}

fn cmp_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,120}",
        "[{}\\[\\]:,'\"a-z0-9%=&+/_ -]{0,200}",
        "(groups=)?(C000[0-9]%3A[01]%2C){0,6}(&interactionCount=[0-9]{0,3})?",
        "[A-Za-z0-9+/=_-]{0,160}",
    ]
}

proptest! {
    #[test]
    fn arbitrary_headers_never_panic(s in ".{0,400}") {
        let _ = cmp::from_cookies(&s);
    }

    #[test]
    fn arbitrary_cmp_values_never_panic(
        name in prop::sample::select(vec![
            "OptanonConsent", "OptanonAlertBoxClosed", "CookieConsent", "cookieyes-consent",
            "didomi_token", "cmplz_marketing", "cmplz_banner-status", "notice_gdpr_prefs",
            "cmapi_cookie_privacy", "notice_preferences", "osano_consentmanager", "klaro",
            "cc_cookie", "cky-action", "cookieyes-analytics",
        ]),
        value in cmp_value(),
    ) {
        let header = format!("a=b; {name}={value}; c=d");
        if let Some(found) = cmp::from_cookies(&header) {
            prop_assert!(PRECEDENCE.contains(&found.cmp));
            // Every detected CMP keeps strictly necessary storage on unless
            // its cookie says otherwise explicitly.
            prop_assert!(found.categories.get(Category::Necessary).is_some());
        }
    }

    /// Where `in_cookies` sees no CMP cookie, no reader finds a CMP: the
    /// page may skip fetching the reader. Names near the known ones (case,
    /// suffixes, prefixes) included.
    #[test]
    fn no_cmp_cookie_no_cmp(
        names in prop::collection::vec(prop_oneof![
            "[A-Za-z_-]{1,12}",
            prop::sample::select(cmp::CONSENT_COOKIES.iter().map(|(n, _)| *n).collect::<Vec<_>>()).prop_flat_map(|n| {
                let n = n.trim_end_matches('*').to_owned();
                prop_oneof![Just(n.clone()), Just(n.to_uppercase()), Just(format!("x{n}")), Just(format!("{n}x")), Just(n[..n.len() - 1].to_owned())]
            }),
        ], 0..6),
        value in cmp_value(),
    ) {
        let header: Vec<String> = names.iter().map(|n| format!("{n}={value}")).collect();
        let header = header.join("; ");
        if !cmp::in_cookies(&header) {
            prop_assert_eq!(cmp::from_cookies(&header), None, "{}", header);
        }
    }

    #[test]
    fn deep_nesting_is_bounded(depth in 0usize..5000, open in prop::sample::select(vec!["[", "{a:", "{\"categories\":"])) {
        let value = open.repeat(depth);
        for name in ["cc_cookie", "klaro", "CookieConsent", "osano_consentmanager"] {
            let _ = cmp::from_cookies(&format!("{name}={value}"));
        }
    }
}

#[test]
fn didomi_custom_purposes_and_klaro_services_through_the_policy() {
    // {"purposes":{"consent":{"enabled":["cookies","analytics-HpBJrrK7"],"disabled":["ads-Xy12"]}},"version":2}
    let token = "eyJwdXJwb3NlcyI6eyJjb25zZW50Ijp7ImVuYWJsZWQiOlsiY29va2llcyIsImFuYWx5dGljcy1IcEJKcnJLNyJdLCJkaXNhYmxlZCI6WyJhZHMtWHkxMiJdfX0sInZlcnNpb24iOjJ9";
    let header = format!("didomi_token={token}");
    let read = |names: &tagwatch_core::consent::ConsentNames| {
        cmp::from_cookies_with(&header, names).unwrap().categories
    };
    let default = read(&Default::default());
    assert_eq!(
        default.get(Category::Analytics),
        Some(true),
        "cookies alone"
    );
    let mut names = tagwatch_core::consent::ConsentNames::default();
    names.set("didomi", "analytics-HpBJrrK7", vec![Category::Analytics]);
    names.set("didomi", "ads-Xy12", vec![Category::Marketing]);
    let site = read(&names);
    assert_eq!(
        (site.get(Category::Analytics), site.get(Category::Marketing)),
        (Some(true), Some(false))
    );
}
