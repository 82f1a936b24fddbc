//! The findings state machine, scenario by scenario, as the page feeds it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

use tagwatch_core::catalog::{vendor, Vendor};

fn intercom() -> &'static Vendor {
    vendor("intercom").unwrap()
}
use tagwatch_core::consent::{categories, Category::*, Source};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::policy::Policy;
use tagwatch_core::report::{FindingType, FindingType::*, PageView};

const LOADER: &str = "https://widget.intercom.io/widget/abc12345";
const FRAME: &str = "https://js.intercomcdn.com/frame-modern.c6941a28.js";
const PING: &str = "https://api-iam.intercom.io/messenger/web/ping";
const SETTINGS: &str = "https://api-iam.intercom.io/messenger/web/launcher_settings";
const COOKIES: &str = "intercom-id-abc12345=6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978; intercom-device-id-abc12345=9a9a; theme=dark";

fn req<'a>(url: &'a str, start: f64, initiator: &'a str) -> Request<'a> {
    Request {
        url,
        start,
        initiator,
        frame: "top",
        ..Default::default()
    }
}

fn load_intercom(e: &mut Engine, t: f64) {
    e.request(req(LOADER, t, "script"));
    e.request(Request {
        url: FRAME,
        start: t + 50.0,
        initiator: "script",
        frame: "#intercom-frame",
        ..Default::default()
    });
    e.request(Request {
        url: SETTINGS,
        start: t + 100.0,
        initiator: "xmlhttprequest",
        frame: "#intercom-frame",
        ..Default::default()
    });
    e.request(Request {
        url: PING,
        start: t + 120.0,
        initiator: "xmlhttprequest",
        frame: "#intercom-frame",
        ..Default::default()
    });
    e.cookies(COOKIES, (t + 150.0) as u64);
}

fn kinds(e: &Engine) -> Vec<(FindingType, String)> {
    let mut v: Vec<_> = e
        .findings()
        .iter()
        .map(|f| {
            let (a, b) = f.evidence.key();
            (f.kind, format!("{a}{b}"))
        })
        .collect();
    v.sort();
    v
}

fn all_granted() -> tagwatch_core::consent::Categories {
    categories(&[(Functional, true), (Analytics, true), (Marketing, true)])
}

#[test]
fn no_consent_flags_scripts_cookies_and_tracking() {
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    load_intercom(&mut e, 100.0);
    assert_eq!(
        kinds(&e),
        vec![
            (
                ScriptBeforeConsent,
                "js.intercomcdn.com/frame-modern.c6941a28.js".into()
            ),
            (
                ScriptBeforeConsent,
                "widget.intercom.io/widget/abc12345".into()
            ),
            (
                CookieBeforeConsent,
                "cookieintercom-device-id-abc12345".into()
            ),
            (CookieBeforeConsent, "cookieintercom-id-abc12345".into()),
            (
                TrackingBeforeConsent,
                "api-iam.intercom.io/messenger/web/ping".into()
            ),
        ]
    );
    let f = &e.findings()[0];
    assert_eq!(f.at, 100);
    assert_eq!(f.category, Some(Functional));
    assert_eq!(f.consent.functional, None);
}

#[test]
fn hosts_are_classified_alike_whether_kept_or_not() {
    // The engine keeps each host's vendor once looked up, up to a bound:
    // a vendor's host seen again, and hosts past the bound, are judged as
    // on first sight.
    let mut fresh = Engine::new(Policy::default(), "https://shop.example/");
    load_intercom(&mut fresh, 100.0);
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    for i in 0..200 {
        let url = format!("https://img{i}.cdn.example/a.png");
        e.request(req(&url, 10.0, "img"));
    }
    load_intercom(&mut e, 100.0);
    load_intercom(&mut e, 100.0);
    assert_eq!(kinds(&e), kinds(&fresh));
    assert_eq!(e.findings().len(), 5);
}

#[test]
fn consent_before_load_means_no_findings() {
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    e.consent(all_granted(), Source::Api, 5);
    load_intercom(&mut e, 100.0);
    e.tick(60_000);
    assert!(e.findings().is_empty(), "{:?}", e.findings());
}

#[test]
fn consent_arriving_after_load_is_judged_at_the_entry_time() {
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    // The CMP answers after the loader already ran: the loader is a finding,
    // later requests are not.
    e.request(req(LOADER, 100.0, "script"));
    e.consent(all_granted(), Source::Api, 300);
    e.request(req(PING, 400.0, "fetch"));
    assert_eq!(
        kinds(&e),
        vec![(
            ScriptBeforeConsent,
            "widget.intercom.io/widget/abc12345".into()
        )]
    );
}

#[test]
fn withdrawal_flags_leftover_cookies_after_grace_and_later_requests() {
    let policy = Policy {
        grace_ms: 1000,
        ..Policy::default()
    };
    let mut e = Engine::new(policy, "https://shop.example/");
    e.consent(all_granted(), Source::Api, 5);
    load_intercom(&mut e, 100.0);
    e.consent(
        categories(&[(Functional, false), (Marketing, false)]),
        Source::Api,
        2000,
    );
    e.cookies(COOKIES, 2500);
    e.request(req(PING, 2600.0, "fetch")); // within grace: in-flight leftovers are tolerated
    assert!(e.findings().is_empty(), "{:?}", e.findings());
    e.cookies(COOKIES, 3100);
    e.request(req(PING, 3200.0, "fetch"));
    assert_eq!(
        kinds(&e),
        vec![
            (
                CookieAfterWithdrawal,
                "cookieintercom-device-id-abc12345".into()
            ),
            (CookieAfterWithdrawal, "cookieintercom-id-abc12345".into()),
            (
                RequestAfterWithdrawal,
                "api-iam.intercom.io/messenger/web/ping".into()
            ),
        ]
    );
    assert!(e
        .findings()
        .iter()
        .filter(|f| f.kind == CookieAfterWithdrawal)
        .all(|f| f.at == 3000));
}

#[test]
fn cookies_removed_in_time_are_fine() {
    let policy = Policy {
        grace_ms: 1000,
        ..Policy::default()
    };
    let mut e = Engine::new(policy, "https://shop.example/");
    e.consent(all_granted(), Source::Api, 5);
    load_intercom(&mut e, 100.0);
    e.consent(categories(&[(Functional, false)]), Source::Api, 2000);
    e.cookies("theme=dark; intercom-session-abc12345=", 2500);
    e.tick(10_000);
    assert!(e.findings().is_empty());
}

/// A cookie still there past its deadline, removed by the next change with
/// no tick in between (the shell's sweeps are event-driven): recorded,
/// dated at the deadline.
#[test]
fn cookies_outliving_the_deadline_count_without_a_tick() {
    let policy = Policy {
        grace_ms: 1000,
        ..Policy::default()
    };
    let mut e = Engine::new(policy, "https://shop.example/");
    e.consent(all_granted(), Source::Api, 5);
    load_intercom(&mut e, 100.0);
    e.consent(categories(&[(Functional, false)]), Source::Api, 2000);
    e.cookies("theme=dark; intercom-session-abc12345=", 60_000);
    let late: Vec<_> = e
        .findings()
        .iter()
        .filter(|f| f.kind == CookieAfterWithdrawal)
        .map(|f| f.at)
        .collect();
    assert!(!late.is_empty(), "{:?}", e.findings());
    assert!(late.iter().all(|&at| at == 3000), "{late:?}");
}

#[test]
fn gpc_flags_marketing_activity_even_with_consent() {
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    e.set_gpc(true);
    e.consent(all_granted(), Source::Api, 5);
    load_intercom(&mut e, 100.0);
    assert_eq!(
        kinds(&e),
        vec![(GpcIgnored, "api-iam.intercom.io/messenger/web/ping".into())]
    );
    assert!(e.findings()[0].consent.gpc);
}

#[test]
fn necessary_messenger_policy_still_needs_consent_for_tracking() {
    let mut policy = Policy::default();
    policy.set_category("intercom", "messenger", Necessary);
    let mut e = Engine::new(policy, "https://shop.example/");
    load_intercom(&mut e, 100.0);
    assert_eq!(
        kinds(&e),
        vec![(
            TrackingBeforeConsent,
            "api-iam.intercom.io/messenger/web/ping".into()
        )]
    );
}

#[test]
fn presence_and_first_party_loader() {
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    e.loader_request(
        intercom(),
        req("https://shop.example/intercom-shim.js?v=1", 80.0, "script"),
    );
    e.presence(intercom(), false, "Intercom".into(), 500);
    e.presence(intercom(), true, "#intercom-frame".into(), 500);
    e.presence(intercom(), true, "#intercom-frame".into(), 1500);
    assert!(
        e.findings().iter().all(|f| f.count == 1 && f.at < 1000),
        "re-reading presence is not a new event"
    );
    assert_eq!(
        kinds(&e),
        vec![
            (ScriptBeforeConsent, "dom#intercom-frame".into()),
            (ScriptBeforeConsent, "globalIntercom".into()),
            (ScriptBeforeConsent, "shop.example/intercom-shim.js".into()),
        ]
    );
}

#[test]
fn region_and_page_scope() {
    let mut policy = Policy::default();
    policy.allow_region("eu");
    policy.allow_page("intercom", "/support/*");
    let mut e = Engine::new(policy, "https://shop.example/pricing?x=1");
    e.consent(all_granted(), Source::Api, 5);
    e.request(req(
        "https://api-iam.eu.intercom.io/messenger/web/launcher_settings",
        90.0,
        "fetch",
    ));
    e.request(req(SETTINGS, 100.0, "fetch"));
    e.request(req(PING, 110.0, "fetch"));
    assert_eq!(
        kinds(&e),
        vec![
            (
                RegionNotAllowed,
                "api-iam.intercom.io/messenger/web/launcher_settings".into()
            ),
            (
                RegionNotAllowed,
                "api-iam.intercom.io/messenger/web/ping".into()
            ),
            (
                PageOutOfScope,
                "api-iam.eu.intercom.io/messenger/web/launcher_settings".into()
            ),
        ]
    );
    let mut inside = Engine::new(
        Policy {
            pages: vec![("intercom".into(), "/support/*".into())],
            ..Policy::default()
        },
        "https://shop.example/support/faq",
    );
    inside.consent(all_granted(), Source::Api, 5);
    inside.request(req(SETTINGS, 100.0, "fetch"));
    assert!(inside.findings().is_empty());
}

#[test]
fn duplicates_count_and_are_sent_once() {
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    e.request(req(PING, 100.0, "fetch"));
    e.request(req(&format!("{PING}?s=2"), 200.0, "fetch"));
    assert_eq!(e.findings().len(), 1);
    assert_eq!(e.findings()[0].count, 2);
    let view = PageView {
        site: "tw_x",
        id: "0123456789abcdef",
        url: "https://shop.example/",
        user_agent: "UA",
        release: "",
    };
    let first = e.take_batch(&view, 1000).expect("a batch");
    assert!(first.contains("\"count\":2") && first.contains("\"age\":900"));
    assert_eq!(e.take_batch(&view, 2000), None);
    e.request(req(LOADER, 1500.0, "script"));
    let second = e.take_batch(&view, 2000).expect("the new finding only");
    assert!(
        second.contains("script_before_consent") && !second.contains("tracking_before_consent")
    );
}

#[test]
fn monitor_own_requests_are_ignored() {
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    e.ignore_host("widget.intercom.io");
    e.request(req(LOADER, 100.0, "script"));
    assert!(e.findings().is_empty());
}

/// One ignored host, the collector's: a later call replaces it, and an
/// empty one ignores nothing.
#[test]
fn the_ignored_host_is_the_last_given() {
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    e.ignore_host("collector.example");
    e.ignore_host("Widget.Intercom.IO");
    e.request(req(LOADER, 100.0, "script"));
    assert!(e.findings().is_empty());
    e.ignore_host("collector.example");
    e.request(req(LOADER, 200.0, "script"));
    assert!(!e.findings().is_empty());
    let mut e = Engine::new(Policy::default(), "https://shop.example/");
    e.ignore_host("");
    e.request(req(LOADER, 100.0, "script"));
    assert!(!e.findings().is_empty());
}
