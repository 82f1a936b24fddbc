//! Consent from the CMP world, as the engine reads it: CMP cookies, live
//! CMP states, TCF, GPP, and the claims Google's tags make.

use tagwatch_core::consent::{categories, Basis, Category::*, Source};
use tagwatch_core::engine::{Engine, Request, CLAIM_SETTLE_MS};
use tagwatch_core::policy::Policy;
use tagwatch_core::report::{FindingType, FindingType::*, PageView};

const LOADER: &str = "https://widget.intercom.io/widget/abc12345";
const PING: &str = "https://api-iam.intercom.io/messenger/web/ping";
const INTERCOM_COOKIE: &str = "intercom-id-abc12345=6f1c2e3d";
const ONETRUST_ALL: &str = "OptanonAlertBoxClosed=2026-11-01T10:00:00.000Z; OptanonConsent=isGpcEnabled=0&interactionCount=1&groups=C0001%3A1%2CC0002%3A1%2CC0003%3A1%2CC0004%3A1";
const ONETRUST_NONE: &str = "OptanonAlertBoxClosed=2026-11-01T10:00:00.000Z; OptanonConsent=isGpcEnabled=0&interactionCount=1&groups=C0001%3A1%2CC0002%3A0%2CC0003%3A0%2CC0004%3A0";

fn engine() -> Engine {
    Engine::new(
        Policy {
            grace_ms: 1000,
            ..Policy::default()
        },
        "https://shop.example/",
    )
}

fn req<'a>(url: &'a str, start: f64, initiator: &'static str) -> Request<'a> {
    Request {
        url,
        start,
        initiator,
        frame: "top",
        ..Default::default()
    }
}

fn kinds(e: &Engine) -> Vec<FindingType> {
    let mut v: Vec<_> = e.findings().iter().map(|f| f.kind).collect();
    v.sort();
    v
}

#[test]
fn cmp_cookie_present_at_first_read_counts_from_page_start() {
    let mut e = engine();
    // The tag loaded before the monitor read its first cookie snapshot.
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(kinds(&e), vec![ScriptBeforeConsent]);
    e.cookies(&format!("{ONETRUST_ALL}; {INTERCOM_COOKIE}"), 400);
    assert_eq!(
        kinds(&e),
        vec![],
        "restored consent undoes the unsent finding"
    );
    assert_eq!(e.consent_at(150).source, Source::Cmp("onetrust"));
}

#[test]
fn cmp_cookie_written_by_a_click_counts_from_then() {
    let mut e = engine();
    e.cookies("theme=dark", 50);
    e.request(req(LOADER, 100.0, "script"));
    e.cookies(ONETRUST_ALL, 900);
    e.request(req(PING, 1000.0, "fetch"));
    assert_eq!(
        kinds(&e),
        vec![ScriptBeforeConsent],
        "before the click is a finding, after is not"
    );
    assert_eq!(e.findings()[0].consent.source, Source::Default);
}

#[test]
fn an_undecided_cmp_is_not_consent() {
    let mut e = engine();
    // CookieYes before any click: categories stored, `action` empty.
    e.cookies("cookieyes-consent=consentid:x,consent:no,action:,necessary:yes,functional:yes,analytics:yes,advertisement:yes", 10);
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(kinds(&e), vec![ScriptBeforeConsent]);
}

#[test]
fn a_withdrawal_in_the_cmp_cookie_starts_the_grace_period() {
    let mut e = engine();
    e.cookies(&format!("{ONETRUST_ALL}; {INTERCOM_COOKIE}"), 10);
    e.request(req(LOADER, 100.0, "script"));
    e.cookies(&format!("{ONETRUST_NONE}; {INTERCOM_COOKIE}"), 2000);
    e.tick(2500);
    assert_eq!(kinds(&e), vec![]);
    e.request(req(PING, 3100.0, "fetch"));
    e.tick(3100);
    assert_eq!(
        kinds(&e),
        vec![CookieAfterWithdrawal, RequestAfterWithdrawal]
    );
}

#[test]
fn live_cmp_state_maps_through_the_same_names_as_its_cookie() {
    let mut e = engine();
    e.cmp_state(
        "onetrust",
        &[
            ("C0001", true),
            ("C0002", false),
            ("C0003", true),
            ("C0004", false),
        ],
        &[],
        Basis::Explicit,
        true,
        500,
    );
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(kinds(&e), vec![], "functional granted from page start");
    e.request(req(PING, 200.0, "fetch"));
    assert_eq!(
        kinds(&e),
        vec![TrackingBeforeConsent],
        "marketing (C0004) refused"
    );
    let mut e = engine();
    e.cmp_state(
        "cookiebot",
        &[
            ("preferences", true),
            ("statistics", true),
            ("marketing", true),
        ],
        &[],
        Basis::None,
        true,
        500,
    );
    e.cmp_state(
        "no-such-cmp",
        &[("preferences", true)],
        &[],
        Basis::Explicit,
        true,
        500,
    );
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(
        kinds(&e),
        vec![ScriptBeforeConsent],
        "undecided or unknown CMPs grant nothing"
    );
}

#[test]
fn osanos_opt_out_refuses_marketing_whichever_way_its_state_arrives() {
    // The live API's `getConsent()` and the `osano_consentmanager` cookie
    // carry the same map; "do not sell or share" (OPT_OUT ACCEPT) refuses
    // marketing even where MARKETING itself is accepted.
    let live = [
        ("ESSENTIAL", true),
        ("STORAGE", true),
        ("MARKETING", true),
        ("ANALYTICS", true),
        ("OPT_OUT", true),
    ];
    let mut e = engine();
    e.cmp_state("osano", &live, &[], Basis::Explicit, true, 10);
    let c = e.consent_at(20).categories;
    assert_eq!(
        (c.get(Functional), c.get(Analytics), c.get(Marketing)),
        (Some(true), Some(true), Some(false))
    );
    let mut e = engine();
    // {"ESSENTIAL":"ACCEPT","STORAGE":"ACCEPT","MARKETING":"ACCEPT","ANALYTICS":"ACCEPT","OPT_OUT":"ACCEPT"}
    e.cookies("osano_consentmanager=eyJFU1NFTlRJQUwiOiJBQ0NFUFQiLCJTVE9SQUdFIjoiQUNDRVBUIiwiTUFSS0VUSU5HIjoiQUNDRVBUIiwiQU5BTFlUSUNTIjoiQUNDRVBUIiwiT1BUX09VVCI6IkFDQ0VQVCJ9", 10);
    assert_eq!(e.consent_at(20).categories, c, "the cookie reads the same");
    let mut e = engine();
    e.cmp_state(
        "osano",
        &[("MARKETING", true), ("OPT_OUT", false)],
        &[],
        Basis::Explicit,
        true,
        10,
    );
    assert_eq!(
        e.consent_at(20).categories.get(Marketing),
        Some(true),
        "OPT_OUT refused changes nothing"
    );
}

#[test]
fn tcf_event_statuses() {
    let all = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    let mut e = engine();
    e.tcf(None, "cmpuishown", all, &[], 50);
    e.tcf(Some(true), "cmpuishown", &[], &[], 60);
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(
        kinds(&e),
        vec![ScriptBeforeConsent],
        "deciding and a shown UI are not consent"
    );
    e.tcf(Some(true), "useractioncomplete", all, &[], 800);
    e.request(req(PING, 900.0, "fetch"));
    assert_eq!(
        kinds(&e),
        vec![ScriptBeforeConsent],
        "the click counts from its event"
    );
    assert_eq!(e.consent_at(900).source, Source::Tcf);

    let mut e = engine();
    e.request(req(LOADER, 100.0, "script"));
    e.tcf(Some(true), "tcloaded", all, &[], 800);
    assert_eq!(kinds(&e), vec![], "tcloaded is restored consent");

    let mut e = engine();
    // Purpose 1 only: storage without ads purposes.
    e.tcf(Some(true), "tcloaded", &[1], &[], 10);
    e.request(req(LOADER, 100.0, "script"));
    e.request(req(PING, 200.0, "fetch"));
    assert_eq!(kinds(&e), vec![TrackingBeforeConsent]);

    let mut e = engine();
    e.tcf(Some(false), "tcloaded", &[], &[], 10);
    e.request(req(PING, 200.0, "fetch"));
    assert_eq!(kinds(&e), vec![], "GDPR does not apply");
}

#[test]
fn gpp_us_opt_out_refuses_marketing() {
    let mut e = engine();
    e.consent(
        categories(&[(Functional, true), (Analytics, true), (Marketing, true)]),
        Source::Api,
        0,
    );
    // usnat v1 with the GPC sub-section set: an opt-out of sale.
    e.gpp("DBABL~BVQqAAAAAa.Y", &[7], false, 500);
    e.request(req(PING, 2000.0, "fetch"));
    assert_eq!(
        kinds(&e),
        vec![RequestAfterWithdrawal],
        "after the grace period"
    );
    assert_eq!(e.consent_at(600).source, Source::Gpp);
    let mut e = engine();
    e.gpp("DBABL~BVQqAAAAAa.Y", &[-1], false, 500);
    e.gpp("not a gpp string", &[7], false, 500);
    assert_eq!(
        e.consent_at(600).source,
        Source::Default,
        "no applicable section, or garbage: nothing"
    );
}

const GA_HIT: &str =
    "https://region1.google-analytics.com/g/collect?v=2&tid=G-XXXX&gcs=G111&cid=123.456";

#[test]
fn google_claiming_consent_the_cmp_does_not_give_is_a_mismatch() {
    let mut e = engine();
    e.cookies(ONETRUST_NONE, 10);
    e.request(req(GA_HIT, 1000.0, "fetch"));
    e.tick(1000 + CLAIM_SETTLE_MS - 1);
    assert!(
        e.findings().iter().all(|f| f.kind != ConsentSignalMismatch),
        "waits for the CMP to settle"
    );
    e.tick(1000 + CLAIM_SETTLE_MS);
    let mismatches: Vec<_> = e
        .findings()
        .iter()
        .filter(|f| f.kind == ConsentSignalMismatch)
        .collect();
    assert_eq!(mismatches.len(), 2, "ad_storage and analytics_storage");
    let batch = e
        .take_batch(
            &PageView {
                site: "s",
                id: "0123456789abcdef",
                url: "https://shop.example/",
                user_agent: "t",
                release: "",
            },
            2000,
        )
        .unwrap();
    assert!(batch.contains(r#""evidence":{"kind":"signal","signal":"gcs","claimed":"analytics_storage","host":"region1.google-analytics.com","path":"/g/collect"}"#), "{batch}");
    assert!(
        !batch.contains("G-XXXX") && !batch.contains("123.456"),
        "no query value leaves"
    );
}

#[test]
fn a_claim_backed_by_the_cmp_is_fine() {
    let mut e = engine();
    e.consent_mode(
        "default",
        &[("ad_storage", "denied"), ("analytics_storage", "denied")],
        5,
    );
    // The CMP updates Google first and shows its state 200 ms later.
    e.consent_mode(
        "update",
        &[("analytics_storage", "granted"), ("ad_storage", "granted")],
        900,
    );
    e.cmp_state(
        "cookiebot",
        &[
            ("preferences", true),
            ("statistics", true),
            ("marketing", true),
        ],
        &[],
        Basis::Explicit,
        false,
        1100,
    );
    e.request(req(GA_HIT, 1200.0, "fetch"));
    e.tick(5000);
    assert!(
        e.findings().iter().all(|f| f.kind != ConsentSignalMismatch),
        "{:?}",
        e.findings()
    );
}

#[test]
fn consent_mode_default_granted_without_a_cmp_is_a_mismatch_after_wait_for_update() {
    let mut e = engine();
    e.consent_mode(
        "default",
        &[("analytics_storage", "granted"), ("wait_for_update", "500")],
        0,
    );
    e.tick(900);
    assert!(
        e.findings().is_empty(),
        "Google waits for an update until 500 ms"
    );
    e.tick(1000);
    let f = &e.findings()[0];
    assert_eq!(
        (f.kind, f.vendor, f.category, f.at),
        (ConsentSignalMismatch, "gtm", Some(Analytics), 500)
    );
}

#[test]
fn sent_findings_are_not_revised() {
    let mut e = engine();
    e.request(req(LOADER, 100.0, "script"));
    let view = PageView {
        site: "s",
        id: "0123456789abcdef",
        url: "https://shop.example/",
        user_agent: "t",
        release: "",
    };
    assert!(e.take_batch(&view, 200).is_some());
    e.tcf(
        Some(true),
        "tcloaded",
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        &[],
        300,
    );
    assert_eq!(
        kinds(&e),
        vec![ScriptBeforeConsent],
        "what was sent stays as sent"
    );
}

#[test]
fn the_site_says_what_its_cmp_names_mean() {
    // A renamed OneTrust group that holds the Messenger, and TCF purpose 1
    // taken to gate only functional storage.
    let policy = Policy::from_json(
        r#"{"grace_ms":1000,"cmp":{"onetrust":{"C0009":"functional"},"tcf":{"1":"functional"}}}"#,
    );
    let mut e = Engine::new(policy.clone(), "https://shop.example/");
    e.cmp_state(
        "onetrust",
        &[("C0001", true), ("C0003", true), ("C0009", false)],
        &[],
        Basis::Explicit,
        true,
        10,
    );
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(
        kinds(&e),
        vec![ScriptBeforeConsent],
        "C0009 refused gates functional"
    );

    let mut e = Engine::new(policy.clone(), "https://shop.example/");
    e.cookies(
        "OptanonAlertBoxClosed=x; OptanonConsent=groups=C0001%3A1%2CC0003%3A1%2CC0009%3A0",
        10,
    );
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(
        kinds(&e),
        vec![ScriptBeforeConsent],
        "the cookie reads the same way"
    );

    let mut e = Engine::new(policy, "https://shop.example/");
    // Purposes 1 and 7-10 without 2-4: the default needs purpose 1 for
    // analytics too; here analytics needs only 7-10, marketing 2-4.
    e.tcf(Some(true), "tcloaded", &[1, 7, 8, 9, 10], &[], 10);
    let c = e.consent_at(20).categories;
    assert_eq!(
        (c.get(Functional), c.get(Analytics), c.get(Marketing)),
        (Some(true), Some(true), Some(false))
    );
}

#[test]
fn a_tcf_registered_vendor_needs_its_vendor_consent() {
    const ADS: &str = "https://googleads.g.doubleclick.net/pagead/viewthroughconversion/123/";
    let all = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    let mut e = engine();
    e.tcf(Some(true), "tcloaded", all, &[1, 2, 91], 10);
    e.request(req(ADS, 100.0, "script"));
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(
        kinds(&e),
        vec![TrackingBeforeConsent],
        "Google (GVL 755) lacks vendor consent; Intercom is not a TCF vendor"
    );
    assert_eq!(e.findings()[0].vendor, "google-ads");
    let mut e = engine();
    e.tcf(Some(true), "tcloaded", all, &[755], 10);
    e.request(req(ADS, 100.0, "script"));
    assert_eq!(kinds(&e), vec![]);
}

/// CookieYes consent applied on load without a click (`consent:yes`,
/// `action:no`).
const COOKIEYES_IMPLIED: &str = "cookieyes-consent=consentid:x,consent:yes,action:no,necessary:yes,functional:yes,analytics:yes,performance:yes,advertisement:yes";

#[test]
fn implied_consent_counts_only_where_the_policy_accepts_it() {
    // Default (`implied: reject`): the CMP's grants are refusals, and the
    // finding says what it was judged on.
    let mut e = engine();
    e.cookies(COOKIEYES_IMPLIED, 10);
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(kinds(&e), vec![ScriptBeforeConsent]);
    let c = &e.findings()[0].consent;
    assert_eq!(
        (c.source, c.basis, c.functional),
        (Source::Cmp("cookieyes"), Basis::Implied, Some(false))
    );
    let view = PageView {
        site: "s",
        id: "0123456789abcdef",
        url: "https://shop.example/",
        user_agent: "ua",
        release: "",
    };
    let batch = e.take_batch(&view, 200).unwrap();
    assert!(
        batch.contains(r#""source":"cookieyes","since":0,"basis":"implied""#),
        "{batch}"
    );

    // `implied: accept`: as the CMP says.
    let mut e = Engine::new(
        Policy::from_json(r#"{"implied":"accept"}"#),
        "https://shop.example/",
    );
    e.cookies(COOKIEYES_IMPLIED, 10);
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(kinds(&e), vec![]);
    assert_eq!(e.consent_at(100).basis, Basis::Implied);

    // The live API says the same: Cookiebot's `method: 'implied'`.
    let mut e = engine();
    e.cmp_state(
        "cookiebot",
        &[
            ("preferences", true),
            ("statistics", true),
            ("marketing", true),
        ],
        &[],
        Basis::Implied,
        true,
        10,
    );
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(kinds(&e), vec![ScriptBeforeConsent]);
    assert_eq!(e.findings()[0].consent.basis, Basis::Implied);
    // A visitor's choice afterwards is explicit.
    e.cookies(ONETRUST_ALL, 500);
    assert_eq!(e.consent_at(600).basis, Basis::Explicit);
    assert_eq!(engine().consent_at(0).basis, Basis::None);
}

#[test]
fn known_services_in_a_klaro_cookie_gate_their_vendors_categories() {
    // intercom's messenger needs functional; the site's `chat` service is
    // not a known one, so the site maps it.
    let klaro = "klaro=%7B%22intercom%22%3Atrue%2C%22google-analytics%22%3Afalse%7D";
    let mut e = engine();
    e.cookies(klaro, 10);
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(kinds(&e), vec![]);
    assert_eq!(e.consent_at(100).categories.get(Analytics), Some(false));
    let mut e = Engine::new(
        Policy::from_json(r#"{"cmp":{"klaro":{"chat":"functional"}}}"#),
        "https://shop.example/",
    );
    e.cookies(
        "klaro=%7B%22chat%22%3Afalse%2C%22google-analytics%22%3Atrue%7D",
        10,
    );
    e.request(req(LOADER, 100.0, "script"));
    assert_eq!(kinds(&e), vec![ScriptBeforeConsent]);
}

const HOTJAR: &str = "https://static.hotjar.com/c/hotjar-3000001.js?sv=6";
const GA4_HIT: &str = "https://region1.google-analytics.com/g/collect?v=2";
const MIXPANEL: &str = "https://cdn.mxpnl.com/libs/mixpanel-2-latest.min.js";

fn vendors_of(e: &Engine) -> Vec<(&'static str, Option<bool>)> {
    let mut v: Vec<_> = e
        .findings()
        .iter()
        .map(|f| (f.vendor, f.consent.vendor))
        .collect();
    v.sort();
    v
}

#[test]
fn a_per_service_choice_is_that_vendors_consent() {
    // Analytics granted as a category (cookieconsent's `analytics`), Hotjar
    // refused as a service in it, Google Analytics accepted: Hotjar's script
    // is a finding, GA4's hit and Mixpanel (no choice of its own, its
    // category granted) are not.
    let mut e = engine();
    e.cmp_state(
        "vanilla-cookieconsent",
        &[("necessary", true), ("analytics", true)],
        &[("ga", true), ("hotjar", false)],
        Basis::Explicit,
        false,
        100,
    );
    e.request(req(HOTJAR, 200.0, "script"));
    e.request(req(GA4_HIT, 210.0, "img"));
    e.request(req(MIXPANEL, 220.0, "script"));
    assert_eq!(vendors_of(&e), vec![("hotjar", Some(false))]);
    assert_eq!(kinds(&e), vec![ScriptBeforeConsent]);

    // The other way round: analytics refused as a category (Usercentrics'
    // `ucCategory`), Google Analytics accepted as a service: GA4 runs,
    // Hotjar and Mixpanel (no choices of their own) are refused.
    let mut e = engine();
    e.cmp_state(
        "usercentrics",
        &[("essential", true), ("analytics", false)],
        &[("Google Analytics", true), ("Some Site Widget", false)],
        Basis::Explicit,
        false,
        100,
    );
    e.request(req(HOTJAR, 200.0, "script"));
    e.request(req(GA4_HIT, 210.0, "img"));
    e.request(req(MIXPANEL, 220.0, "script"));
    assert_eq!(
        vendors_of(&e),
        vec![("hotjar", None), ("mixpanel", None)],
        "an unknown service name is ignored"
    );
}

#[test]
fn a_per_service_withdrawal_is_that_vendors() {
    // Hotjar accepted, runs; later refused alone: its later request is a
    // withdrawal finding, GA4's (still accepted) is not.
    let mut e = engine();
    let services = |hotjar| [("google-analytics", true), ("hotjar", hotjar)];
    e.cmp_state("klaro", &[], &services(true), Basis::Explicit, false, 100);
    e.request(req(HOTJAR, 200.0, "script"));
    e.cmp_state("klaro", &[], &services(false), Basis::Explicit, false, 1000);
    e.request(req(GA4_HIT, 2500.0, "img"));
    e.request(req(
        "https://in.hotjar.com/api/v2/client/sites/3000001/visit-data?n=1",
        2600.0,
        "fetch",
    ));
    assert_eq!(kinds(&e), vec![RequestAfterWithdrawal]);
    assert_eq!(vendors_of(&e), vec![("hotjar", Some(false))]);
}

#[test]
fn per_service_choices_in_the_klaro_cookie_and_the_site_names() {
    // The cookie: Google Analytics accepted, Hotjar refused.
    let mut e = engine();
    e.cookies(
        "klaro=%7B%22google-analytics%22%3Atrue%2C%22hotjar%22%3Afalse%7D",
        10,
    );
    e.request(req(HOTJAR, 200.0, "script"));
    e.request(req(GA4_HIT, 210.0, "img"));
    assert_eq!(vendors_of(&e), vec![("hotjar", Some(false))]);
    // A site's own service name through `policy.cmp`: its categories by the
    // "every source" rule, no vendor of its own.
    let mut e = engine();
    e.policy_mut().consent_names =
        Policy::from_json(r#"{"cmp":{"klaro":{"site-stats":"analytics"}}}"#).consent_names;
    e.cmp_state(
        "klaro",
        &[],
        &[("site-stats", false), ("hotjar", true)],
        Basis::Explicit,
        false,
        100,
    );
    e.request(req(HOTJAR, 200.0, "script"));
    e.request(req(GA4_HIT, 210.0, "img"));
    assert_eq!(vendors_of(&e), vec![("ga4", None)]);
}

#[test]
fn implied_per_service_consent_counts_only_under_the_policy() {
    for (accept, expected) in [(false, vec![("ga4", Some(false))]), (true, vec![])] {
        let mut e = engine();
        e.policy_mut().accept_implied = accept;
        e.cmp_state(
            "usercentrics",
            &[],
            &[("Google Analytics", true)],
            Basis::Implied,
            true,
            0,
        );
        e.request(req(GA4_HIT, 210.0, "img"));
        assert_eq!(vendors_of(&e), expected, "accept implied: {accept}");
    }
}

/// A returning visitor's `cc_cookie` (cookieconsent v3, as it writes it):
/// analytics accepted with Google Analytics (`ga`) its only accepted
/// service. The cookie lists only accepted services: Hotjar, refused, is
/// not in it.
const CC_GA_ONLY: &str = "cc_cookie=%7B%22categories%22%3A%5B%22analytics%22%2C%22necessary%22%5D%2C%22revision%22%3A0%2C%22data%22%3Anull%2C%22consentTimestamp%22%3A%222026-12-05T22%3A28%3A35.232Z%22%2C%22consentId%22%3A%223c0f3c68-adac-43d8-9635-238f83dc68bb%22%2C%22services%22%3A%7B%22necessary%22%3A%5B%5D%2C%22analytics%22%3A%5B%22ga%22%5D%7D%2C%22languageCode%22%3A%22en%22%2C%22lastConsentTimestamp%22%3A%222026-12-05T22%3A28%3A35.232Z%22%2C%22expirationTime%22%3A1812234515233%7D";

/// cookieconsent's live API on that visit: the same stored choice, with the
/// refusal in it (`rejectedServices`), read after the tags ran; restored,
/// `read_at` when it was read.
fn cc_live(e: &mut Engine, restored: bool, read_at: u64) {
    e.cmp_state(
        "vanilla-cookieconsent",
        &[("necessary", true), ("analytics", true)],
        &[("ga", true), ("hotjar", false)],
        Basis::Explicit,
        restored,
        read_at,
    );
}

#[test]
fn a_restored_service_refusal_read_after_the_tags_ran_judges_them_in_any_order() {
    // A returning cookieconsent visitor: the tags run in its onConsent
    // callback (Hotjar's script at 182, a GA4 hit at 184), its cookie
    // (categories only; the first snapshot: page start) and its live
    // API's reading (Hotjar refused, restored) reach the engine in any
    // order. The order seen in Chromium: the requests first (judged with
    // nothing decided), the cookie reader's grant of analytics, then the
    // live reading.
    let steps: [fn(&mut Engine); 3] = [
        |e| {
            e.request(req(HOTJAR, 182.0, "script"));
            e.request(req(GA4_HIT, 184.0, "img"));
        },
        |e| e.cookies(CC_GA_ONLY, 300),
        |e| cc_live(e, true, 900),
    ];
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let mut e = engine();
        for i in order {
            steps[i](&mut e);
        }
        assert_eq!(kinds(&e), vec![ScriptBeforeConsent], "order {order:?}");
        assert_eq!(vendors_of(&e), vec![("hotjar", Some(false))], "{order:?}");
        let f = &e.findings()[0];
        assert_eq!(
            (f.at, f.consent.since, f.consent.analytics),
            (182, 0, Some(true)),
            "judged on the stored choice, in force from page start: {order:?}"
        );
        assert_eq!(f.consent.source, Source::Cmp("vanilla-cookieconsent"));
    }
}

#[test]
fn a_vendor_cookie_allowed_at_first_sight_is_judged_again_on_a_restored_refusal() {
    // Hotjar's cookie is there when the cookie reader grants analytics;
    // the live API's restored refusal of Hotjar comes after.
    let mut e = engine();
    e.cookies(&format!("{CC_GA_ONLY}; _hjSessionUser_3000001=x"), 300);
    assert_eq!(kinds(&e), vec![]);
    cc_live(&mut e, true, 900);
    assert_eq!(kinds(&e), vec![CookieBeforeConsent]);
    assert_eq!(vendors_of(&e), vec![("hotjar", Some(false))]);
}

#[test]
fn a_choice_made_after_the_tags_ran_does_not_judge_them() {
    // The same reading as a choice made on this page (not restored): it
    // counts from its time, after the requests.
    let mut e = engine();
    e.cookies(CC_GA_ONLY, 10);
    e.request(req(HOTJAR, 182.0, "script"));
    cc_live(&mut e, false, 900);
    assert_eq!(kinds(&e), vec![]);
    // Hotjar was allowed by its category until then: a later request is
    // one after a withdrawal.
    e.request(req(HOTJAR, 2500.0, "script"));
    assert_eq!(kinds(&e), vec![RequestAfterWithdrawal]);
}

#[test]
fn a_withdrawal_read_late_judges_the_requests_made_after_it() {
    // Hotjar accepted at 100; a withdrawal at 1000 reaches the engine only
    // at 3500 (an event whose CMP adapters were still on their way, dated
    // from the event): Hotjar's request at 3000, past the grace period, is
    // a withdrawal finding; the one at 1500, within it, is none.
    let mut e = engine();
    let services = |hotjar| [("hotjar", hotjar)];
    e.cmp_state("klaro", &[], &services(true), Basis::Explicit, false, 100);
    e.request(req(HOTJAR, 1500.0, "script"));
    e.request(req(
        "https://in.hotjar.com/api/v2/client/sites/3000001/visit-data?n=1",
        3000.0,
        "fetch",
    ));
    assert_eq!(kinds(&e), vec![]);
    e.cmp_state("klaro", &[], &services(false), Basis::Explicit, false, 1000);
    assert_eq!(kinds(&e), vec![RequestAfterWithdrawal]);
    assert_eq!(e.findings()[0].at, 3000);
}

#[test]
fn behaviours_kept_for_a_later_state_are_bounded() {
    // Thousands of distinct allowed requests: a later restored refusal
    // makes findings of the kept ones only, and the engine's memory stays
    // bounded; repeats of one request count on its kept entry.
    let mut e = engine();
    e.cookies(CC_GA_ONLY, 10);
    for i in 0..5000 {
        let url = format!("https://static.hotjar.com/c/hotjar-{i}.js");
        e.request(req(&url, 100.0 + f64::from(i), "script"));
    }
    for _ in 0..3 {
        e.request(req(HOTJAR, 200.0, "script"));
    }
    cc_live(&mut e, true, 9000);
    let n = e.findings().len();
    assert_eq!(n, 64, "MAX_PASSED kept");
    assert!(e.findings().iter().all(|f| f.kind == ScriptBeforeConsent));
    assert!(
        !e.findings().iter().any(|f| f.at == 200),
        "a repeat past the bound is not kept"
    );
    let mut e = engine();
    e.cookies(CC_GA_ONLY, 10);
    for _ in 0..3 {
        e.request(req(HOTJAR, 200.0, "script"));
    }
    cc_live(&mut e, true, 9000);
    assert_eq!(e.findings()[0].count, 3, "each time it was seen");
}
