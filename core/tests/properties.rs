//! Property tests: no input panics, and nothing private reaches a report.

use proptest::prelude::*;
use tagwatch_core::consent::{categories, Category, Source};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::policy::Policy;
use tagwatch_core::report::PageView;
use tagwatch_core::{cookie, url};

const CANARY: &str = "CANARYx9q";

proptest! {
    #[test]
    fn url_parse_never_panics(s in ".{0,200}") {
        if let Some(p) = url::parse(&s) {
            prop_assert!(!p.path.contains('?') && !p.path.contains('#'));
            prop_assert!(p.path.starts_with('/'));
            prop_assert_eq!(p.host.to_ascii_lowercase(), p.host.clone());
        }
        let _ = url::page_url(&s);
        let _ = url::redact_path(&s);
    }

    #[test]
    fn host_within_is_dot_bounded(label in "[a-z]{1,10}", domain in "[a-z]{1,10}\\.(io|com)") {
        let glued = format!("{label}{domain}");
        prop_assert!(!url::host_within(&glued, &domain));
        let sub = format!("{label}.{domain}");
        prop_assert!(url::host_within(&sub, &domain));
    }

    #[test]
    fn glob_star_matches_everything(s in "/[ -~]{0,40}") {
        prop_assert!(url::glob_match("*", &s));
        prop_assert!(url::glob_match("/*", &s));
        prop_assert!(url::glob_match(&s.replace('*', ""), &s.replace('*', "")));
    }

    #[test]
    fn cookie_parse_never_panics(s in ".{0,300}") {
        for (name, value) in cookie::pairs(&s) {
            prop_assert!(!name.contains(';') && !value.contains(';'));
        }
    }

    /// Whatever the page throws at the engine, the batch carries no cookie
    /// value, query string or fragment.
    #[test]
    fn reports_never_carry_private_values(
        paths in prop::collection::vec("/[a-z/_.]{0,20}", 1..8),
        hosts in prop::collection::vec(prop::sample::select(vec![
            "widget.intercom.io", "js.intercomcdn.com", "api-iam.intercom.io",
            "api-iam.eu.intercom.io", "shop.example", "cdn.other.com"]), 1..8),
        app in "[a-z0-9]{8}",
        times in prop::collection::vec(-10.0f64..1e9, 1..8),
        consent_at in 0u64..10_000,
        grant in any::<bool>(),
    ) {
        let mut e = Engine::new(Policy::default(), &format!("https://shop.example/p?email={CANARY}#{CANARY}"));
        e.consent(categories(&[(Category::Functional, grant), (Category::Marketing, grant)]), Source::Api, consent_at);
        for ((path, host), t) in paths.iter().zip(hosts.iter().cycle()).zip(times.iter().cycle()) {
            let u = format!("https://{CANARY}:{CANARY}@{host}{path}?user_id={CANARY}#{CANARY}");
            e.request(Request { url: &u, start: *t, initiator: "script", frame: "top", ..Default::default() });
        }
        e.cookies(&format!("intercom-id-{app}={CANARY}; intercom-session-{app}={CANARY}; other={CANARY}"), 50);
        e.consent(categories(&[(Category::Functional, false)]), Source::Api, 20_000);
        e.tick(1_000_000);
        let page = url::page_url(&format!("https://shop.example/p?email={CANARY}#{CANARY}"));
        let view = PageView { site: "tw_x", id: "0123456789abcdef", url: &page, user_agent: "UA", release: "" };
        if let Some(batch) = e.take_batch(&view, 2_000_000) {
            prop_assert!(!batch.contains(CANARY), "{}", batch);
            let parsed: serde_json::Value = serde_json::from_str(&batch).unwrap();
            prop_assert!(parsed.as_array().is_some_and(|a| !a.is_empty()));
        }
    }
}

/// Service names: the table's own, spelled as sites do, and noise.
fn service_name() -> impl Strategy<Value = String> {
    let known: Vec<String> = tagwatch_core::cmp::SERVICES
        .iter()
        .flat_map(|(names, vendor, _)| names.split('|').chain([*vendor]))
        .map(str::to_owned)
        .collect();
    prop_oneof![
        prop::sample::select(known),
        prop::sample::select(vec![
            "Google Analytics".to_owned(),
            "YouTube Video".to_owned(),
            "google_ads".to_owned(),
            " hotjar ".to_owned(),
        ]),
        ".{0,24}",
    ]
}

proptest! {
    /// A per-service choice decides for its own vendor only: every catalog
    /// vendor the choices do not name is judged by its category, exactly as
    /// without them; the named ones by their choice (the last refusal
    /// wins over a grant of the same vendor). Unknown names never panic and
    /// change nothing.
    #[test]
    fn per_vendor_choices_never_reach_another_vendor(
        cats in prop::collection::vec(prop::option::of(any::<bool>()), 4),
        services in prop::collection::vec((service_name(), any::<bool>()), 0..8),
        cmp in prop::sample::select(vec!["klaro", "usercentrics", "vanilla-cookieconsent", "onetrust", "nope"]),
    ) {
        let names = ["necessary", "functional", "analytics", "marketing"];
        let choices: Vec<(&str, bool)> = names
            .iter()
            .zip(&cats)
            .filter_map(|(n, v)| v.map(|v| (*n, v)))
            .collect();
        let services: Vec<(&str, bool)> = services.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        let with = |services: &[(&str, bool)]| {
            let mut e = Engine::new(Policy::default(), "https://shop.example/");
            e.cmp_state(cmp, &choices, services, tagwatch_core::consent::Basis::Explicit, true, 0);
            e.consent_at(10)
        };
        let (plain, state) = (with(&[]), with(&services));
        prop_assert_eq!(plain.categories, state.categories, "services change no category");
        for vendor in tagwatch_core::catalog::vendors().iter().map(|v| v.id) {
            let named: Vec<bool> = services
                .iter()
                .filter(|(n, _)| tagwatch_core::cmp::service(n).map(|s| tagwatch_core::cmp::SERVICES[s].1) == Some(vendor))
                .map(|(_, v)| *v)
                .collect();
            for c in [Category::Functional, Category::Analytics, Category::Marketing] {
                let expected = if named.is_empty() || tagwatch_core::cmp::cmp_id(cmp).is_none() {
                    plain.allows(vendor, c)
                } else {
                    named.iter().all(|v| *v)
                };
                prop_assert_eq!(state.allows(vendor, c), expected, "{} {:?}", vendor, c);
                prop_assert!(state.allows(vendor, Category::Necessary));
            }
        }
    }
}
