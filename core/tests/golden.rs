//! Golden report batch: what the monitor sends for a page view that hits
//! every evidence kind. The collector's tests validate the same file against
//! docs/report.schema.json, so the Rust types, the schema and the doc cannot
//! drift apart. Regenerate with `BLESS=1 cargo test -p tagwatch-core --test golden`.

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
use tagwatch_core::consent::{categories, Basis, Category::*, Source};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::policy::Policy;
use tagwatch_core::report::PageView;
use tagwatch_core::url;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/golden/report-batch.json"
);
/// The same batch byte for byte as the monitor sends it (compact, its own
/// key order): what the collector benchmarks and fuzz seeds post.
const SENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/golden/report-batch.sent.json"
);

fn batch() -> String {
    let mut policy = Policy {
        grace_ms: 1000,
        cookie_max_days: Some(30),
        ..Policy::default()
    };
    policy.allow_region("eu");
    policy.allow_page("intercom", "/support/*");
    let href = "https://shop.example/pricing?email=jane@example.com#top";
    let mut e = Engine::new(policy, href);
    e.set_gpc(true);
    let req = |url, start, initiator, frame| Request {
        url,
        start,
        initiator,
        frame,
        transfer: 4100.0,
        encoded: 3800.0,
        duration: 42.5,
    };
    e.request(req(
        "https://widget.intercom.io/widget/abc12345?x=1",
        120.0,
        "script",
        "top",
    ));
    e.request(req(
        "https://api-iam.intercom.io/messenger/web/ping",
        340.5,
        "xmlhttprequest",
        "#intercom-frame",
    ));
    e.request(req(
        "https://cdn.unknown-widget.example/w.js?k=1",
        150.0,
        "script",
        "top",
    ));
    e.request(req(
        "https://static.shop.example/app.js",
        160.0,
        "script",
        "top",
    ));
    e.cookies("intercom-id-abc12345=6f1c2e3d; theme=dark", 400);
    e.cookie_expiry(
        "intercom-id-abc12345",
        1.7e12 + 270.0 * 86_400_000.0,
        1.7e12,
        410,
    );
    e.presence(intercom(), false, "Intercom.booted".into(), 500);
    e.presence(intercom(), true, "#intercom-frame".into(), 500);
    e.identity_unverified(intercom(), "intercomSettings", 500);
    e.consent(
        categories(&[(Functional, true), (Marketing, true)]),
        Source::Api,
        600,
    );
    e.consent(
        categories(&[(Functional, false), (Marketing, false)]),
        Source::Api,
        2000,
    );
    e.request(req(
        "https://api-iam.intercom.io/messenger/web/events",
        3500.0,
        "fetch",
        "#intercom-frame",
    ));
    e.cookies("intercom-id-abc12345=6f1c2e3d", 3600);
    // A per-service CMP: Google Analytics accepted, Hotjar refused (analytics
    // itself unknown): Hotjar's script is its vendor's finding
    // (`consent.vendor` false), GA4's hit is not one.
    e.cmp_state(
        "usercentrics",
        &[],
        &[("Google Analytics", true), ("Hotjar", false)],
        Basis::Explicit,
        false,
        4000,
    );
    e.request(req(
        "https://static.hotjar.com/c/hotjar-3000001.js?sv=6",
        4100.0,
        "script",
        "top",
    ));
    e.request(req(
        "https://region1.google-analytics.com/g/collect?v=2",
        4200.0,
        "img",
        "top",
    ));
    let page = url::page_url(href);
    let view = PageView {
        site: "tw_golden0000000000000000",
        id: "0123456789abcdef",
        url: &page,
        user_agent: "Mozilla/5.0 (golden)",
        release: "shop-2026.12.1+build.7",
    };
    e.take_batch(&view, 5000).expect("findings")
}

#[test]
fn report_batch_matches_golden() {
    let sent = batch();
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(SENT, &sent).unwrap();
    }
    assert_eq!(
        sent,
        std::fs::read_to_string(SENT).expect("sent file (BLESS=1 to create)"),
        "report format changed: BLESS=1"
    );
    let actual: serde_json::Value = serde_json::from_str(&sent).unwrap();
    let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(GOLDEN, &pretty).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).expect("golden file (BLESS=1 to create)");
    assert_eq!(
        pretty, golden,
        "report format changed: update docs/report-format.md and the schema, then BLESS=1"
    );
    let types: std::collections::BTreeSet<_> = actual
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["body"]["finding"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        types.len(),
        10,
        "the golden batch covers every finding type: {types:?}"
    );
    let inventory = actual.as_array().unwrap().last().unwrap();
    assert_eq!(inventory["type"], "tagwatch-inventory");
    assert_eq!(
        inventory["body"]["unclassified"][0]["host"], "cdn.unknown-widget.example",
        "first-party hosts are not third parties"
    );
}
