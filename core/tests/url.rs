//! The page-URL redaction contract, `tests/fixtures/url/page-url.json`:
//! every URL that leaves the page is `url::page_url` of it (a health
//! report, sent without the wasm, carries the page's origin only).

use serde_json::Value;
use tagwatch_core::url;

const VECTORS: &str = include_str!("../../tests/fixtures/url/page-url.json");

#[test]
fn page_url_matches_the_shared_vectors() {
    let doc: Value =
        serde_json::from_str(VECTORS).expect("tests/fixtures/url/page-url.json is JSON");
    let cases = doc["cases"].as_array().expect("a `cases` array");
    assert!(cases.len() >= 40, "the vector file lost its cases");
    let mut wrong = Vec::new();
    for case in cases {
        let (input, want) = (
            case["in"].as_str().expect("in"),
            case["out"].as_str().expect("out"),
        );
        let got = url::page_url(input);
        if got != want {
            wrong.push(format!(
                "  page_url({input:?})\n    got  {got:?}\n    want {want:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "core/src/url.rs (page_url / redact_path) disagrees with tests/fixtures/url/page-url.json, \
         the contract www/url.js is held to as well. Fix the core; change a case only together with \
         www/url.js (tests/e2e/url.test.mjs checks it):\n{}",
        wrong.join("\n")
    );
}
