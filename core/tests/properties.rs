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
