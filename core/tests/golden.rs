//! Golden report batch: what the monitor sends for a page view that hits
//! every evidence kind. The collector's tests validate the same file against
//! docs/report.schema.json, so the Rust types, the schema and the doc cannot
//! drift apart. Regenerate with `BLESS=1 cargo test -p tagwatch-core --test golden`.

use tagwatch_core::catalog::INTERCOM;
use tagwatch_core::consent::{categories, Category::*, Source};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::policy::Policy;
use tagwatch_core::report::{Evidence, PageView};
use tagwatch_core::url;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/golden/report-batch.json");

fn batch() -> String {
    let mut policy = Policy::default();
    policy.grace_ms = 1000;
    policy.allow_region("eu");
    policy.allow_page("intercom", "/support/*");
    let href = "https://shop.example/pricing?email=jane@example.com#top";
    let mut e = Engine::new(policy, href);
    e.set_gpc(true);
    let req = |url, start, initiator, frame| Request { url, start, initiator, frame };
    e.request(req("https://widget.intercom.io/widget/abc12345?x=1", 120.0, "script", "top"));
    e.request(req("https://api-iam.intercom.io/messenger/web/ping", 340.5, "xmlhttprequest", "#intercom-frame"));
    e.cookies("intercom-id-abc12345=6f1c2e3d; theme=dark", 400);
    e.presence(&INTERCOM, Evidence::Global { name: "Intercom.booted".into() }, 500);
    e.presence(&INTERCOM, Evidence::Dom { name: "#intercom-frame".into() }, 500);
    e.identity_unverified(&INTERCOM, 500);
    e.consent(categories(&[(Functional, true), (Marketing, true)]), Source::Api, 600);
    e.consent(categories(&[(Functional, false), (Marketing, false)]), Source::Api, 2000);
    e.request(req("https://api-iam.intercom.io/messenger/web/events", 3500.0, "fetch", "#intercom-frame"));
    e.cookies("intercom-id-abc12345=6f1c2e3d", 3600);
    let page = url::page_url(href);
    let view = PageView { site: "tw_golden0000000000000000", id: "0123456789abcdef", url: &page, user_agent: "Mozilla/5.0 (golden)" };
    e.take_batch(&view, 5000).expect("findings")
}

#[test]
fn report_batch_matches_golden() {
    let actual: serde_json::Value = serde_json::from_str(&batch()).unwrap();
    let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(GOLDEN, &pretty).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).expect("golden file (BLESS=1 to create)");
    assert_eq!(pretty, golden, "report format changed: update docs/report-format.md and the schema, then BLESS=1");
    let types: std::collections::BTreeSet<_> =
        actual.as_array().unwrap().iter().map(|r| r["body"]["finding"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types.len(), 9, "the golden batch covers every finding type: {types:?}");
}
