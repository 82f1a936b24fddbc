//! The typed reader of report batches (`report::read`) against the
//! published contract, `docs/report.schema.json`, run by the JSON Schema
//! validator the collector used to run on every batch:
//!
//! - the golden batch (what the monitor sends) parses, and its typed form
//!   writes back to the same JSON;
//! - generated batches (every optional field present or not, unknown
//!   fields, both key orders, numbers written as floats): the reader
//!   accepts exactly what the schema accepts, and keeps every field;
//! - the same batches with one defect put in: both refuse, with the same
//!   reason (place and words); with two defects, the reason the reader
//!   gives is one the validator gives too.
//!
//! So validating with the types loses no check the schema makes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};
use tagwatch_core::report::read::{self, Canonical, Refused};
use tagwatch_core::report::{EvidenceKind, FindingType, HealthStatus, SignalKind};

const SCHEMA: &str = include_str!("../../docs/report.schema.json");
const GOLDEN: &str = include_str!("../../tests/fixtures/golden/report-batch.json");

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

/// `/0/body/finding` → `item 0: body.finding`; `` → `batch` (the place the
/// collector names).
fn describe_pointer(pointer: &str) -> String {
    let mut segments = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"));
    let Some(first) = segments.next() else {
        return "batch".to_owned();
    };
    let mut out = if first.bytes().all(|b| b.is_ascii_digit()) {
        format!("item {first}")
    } else {
        first
    };
    let rest: Vec<String> = segments.collect();
    if !rest.is_empty() {
        out.push_str(": ");
        out.push_str(&rest.join("."));
    }
    out
}

/// Every reason the schema's validator gives, first first.
fn schema_reasons(v: &jsonschema::Validator, batch: &Value) -> Vec<String> {
    v.iter_errors(batch)
        .map(|e| format!("{}: {e}", describe_pointer(e.instance_path().as_str())))
        .collect()
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// How the reader and the validator see one batch (written as `text`).
/// `defects`: how many defects were put in (1: the reasons must be equal).
fn check_agreement(
    v: &jsonschema::Validator,
    batch: &Value,
    text: &str,
    defects: usize,
) -> Result<(), TestCaseError> {
    let reasons = schema_reasons(v, batch);
    let nul = has_nul(batch);
    let fast = read::parse(text.as_bytes());
    let typed = read::read(text.as_bytes());
    prop_assert_eq!(
        fast.is_some(),
        typed.is_ok(),
        "fast and explained paths disagree on {}",
        text
    );
    match (&typed, reasons.is_empty() && !nul) {
        (Ok(parsed), true) => {
            // Nothing lost: each body writes back to the JSON it came from.
            let reports = batch.as_array().unwrap();
            prop_assert_eq!(parsed.0.len(), reports.len());
            for (r, typed) in reports.iter().zip(&parsed.0) {
                let body = match &typed.body {
                    read::Body::Finding(b) => b.to_json(),
                    read::Body::Health(b) => b.to_json(),
                    read::Body::Inventory(b) => b.to_json(),
                };
                prop_assert_eq!(body, canonical(&r["body"]));
            }
        }
        (Err(refused), false) => {
            let reason = refused.to_string();
            if nul {
                prop_assert!(
                    reason.contains("contains a NUL character (U+0000)"),
                    "{}",
                    reason
                );
            } else if defects == 1 {
                prop_assert_eq!(&reason, &reasons[0], "{}", text);
            } else {
                prop_assert!(
                    reasons.contains(&reason),
                    "{} not among {:?}",
                    reason,
                    reasons
                );
            }
        }
        (Ok(_), false) => prop_assert!(
            false,
            "the reader accepts what the schema refuses ({:?}): {}",
            reasons,
            text
        ),
        (Err(e), true) => prop_assert!(
            false,
            "the reader refuses what the schema accepts ({}): {}",
            e,
            text
        ),
    }
    Ok(())
}

/// The JSON text of a value with integral floats written as integers (as
/// the reader keeps numbers) and keys sorted.
fn canonical(v: &Value) -> String {
    fn norm(v: &Value) -> Value {
        match v {
            Value::Number(n) => match (n.as_u64(), n.as_f64()) {
                (None, Some(f)) if f.fract() == 0.0 && f >= 0.0 => json!(f as u64),
                _ => v.clone(),
            },
            Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), norm(v))).collect())
            }
            _ => v.clone(),
        }
    }
    norm(v).to_string()
}

#[test]
fn the_golden_batch_is_valid_and_written_back_whole() {
    let v = validator();
    let batch: Value = serde_json::from_str(GOLDEN).unwrap();
    assert!(v.is_valid(&batch));
    let compact = batch.to_string();
    let parsed = read::parse(compact.as_bytes()).expect("the golden batch parses");
    assert_eq!(parsed.0.len(), batch.as_array().unwrap().len());
    check_agreement(&v, &batch, &compact, 0).unwrap();
    // As the monitor writes it: `type` first, the fast path borrowing.
    let monitor = monitor_order(&batch);
    assert!(monitor.starts_with("[{\"type\":"));
    check_agreement(&v, &batch, &monitor, 0).unwrap();
}

#[test]
fn enums_are_the_schemas() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let names = |ptr: &str| -> Vec<String> {
        schema
            .pointer(ptr)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    let ours = |n: &[&str]| -> Vec<String> { n.iter().map(|s| (*s).to_owned()).collect() };
    assert_eq!(
        names("/$defs/findingBody/properties/finding/enum"),
        ours(FindingType::NAMES)
    );
    assert_eq!(
        names("/$defs/evidence/properties/kind/enum"),
        ours(EvidenceKind::NAMES)
    );
    assert_eq!(
        names("/$defs/evidence/properties/signal/enum"),
        ours(SignalKind::NAMES)
    );
    assert_eq!(
        names("/$defs/healthBody/properties/status/enum"),
        ours(HealthStatus::NAMES)
    );
    assert_eq!(
        names("/$defs/report/properties/type/enum"),
        ours(tagwatch_core::report::ReportType::NAMES)
    );
}

#[test]
fn documented_refusals_read_as_documented() {
    let v = validator();
    let finding = |f: Value| {
        json!([{"type": "tagwatch-finding", "age": 0, "url": "https://shop.example/", "user_agent": "UA",
                "body": {"schema": 1, "site": "tw_a", "page_view": "0123456789abcdef", "finding": f,
                         "vendor": "intercom", "at": 1, "evidence": {"kind": "cookie"},
                         "consent": {"necessary": true, "functional": null, "analytics": false, "marketing": false}}}])
    };
    let reason = |b: &Value| match read::read(b.to_string().as_bytes()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted {b}"),
    };
    let foo = finding(json!("foo"));
    assert_eq!(
        reason(&foo),
        "item 0: body.finding: \"foo\" is not one of \"script_before_consent\", \"cookie_before_consent\" or 9 other candidates"
    );
    assert_eq!(reason(&foo), schema_reasons(&v, &foo)[0]);
    let mut query = finding(json!("gpc_ignored"));
    query[0]["url"] = json!("https://shop.example/?q=1");
    assert_eq!(
        reason(&query),
        "item 0: url: \"https://shop.example/?q=1\" does not match \"^https?://[^?#]*$\""
    );
    assert_eq!(reason(&json!([])), "batch: [] has less than 1 item");
    assert_eq!(
        reason(&json!({"a": 1})),
        "batch: {\"a\":1} is not of type \"array\""
    );
    let mut nul = finding(json!("gpc_ignored"));
    nul[0]["body"]["evidence"]["cookie"] = json!("a\u{0}b");
    assert_eq!(
        reason(&nul),
        "item 0: body.evidence.cookie: the text contains a NUL character (U+0000), which the collector does not store"
    );
    match read::read(b"[{") {
        Err(Refused::NotJson(_)) => {}
        other => panic!("{other:?}"),
    }
}

// -------------------------------------------------------------- generators

fn text(max: usize) -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[^\u{0}]{0,12}".boxed(),
        1 => Just("x".repeat(max)).boxed(),
        1 => Just("é".repeat(max)).boxed(),
        1 => "[a-z]{1,8}@[a-z]{1,8}\\.com".boxed(),
    ]
    .boxed()
}

fn pattern(re: &'static str) -> BoxedStrategy<String> {
    re.boxed()
}

fn int(min: u64, max: u64) -> BoxedStrategy<Value> {
    let hi = max.min(1 << 40);
    prop_oneof![
        4 => (min..=hi).prop_map(|n| json!(n)),
        1 => (min..=hi.min(1 << 30)).prop_map(|n| json!(n as f64)),
        1 => Just(json!(min)),
        1 => Just(json!(max)),
    ]
    .boxed()
}

fn tristate() -> BoxedStrategy<Value> {
    prop_oneof![Just(json!(true)), Just(json!(false)), Just(Value::Null)].boxed()
}

fn pick(names: &'static [&'static str]) -> BoxedStrategy<Value> {
    proptest::sample::select(names)
        .prop_map(|n| json!(n))
        .boxed()
}

/// Unknown properties: names the schema does not define, any JSON.
fn extras() -> BoxedStrategy<Map<String, Value>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[^\u{0}]{0,10}".prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,5}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    proptest::collection::btree_map("zz_[a-z0-9]{1,6}", value, 0..2)
        .prop_map(|m| m.into_iter().collect())
        .boxed()
}

/// An object from required fields, optional ones (each present or not) and
/// unknown ones.
fn object(
    required: Vec<(&'static str, BoxedStrategy<Value>)>,
    optional: Vec<(&'static str, BoxedStrategy<Value>)>,
) -> BoxedStrategy<Value> {
    let req = required
        .into_iter()
        .map(|(k, s)| s.prop_map(move |v| (k, v)))
        .collect::<Vec<_>>();
    let opt = optional
        .into_iter()
        .map(|(k, s)| proptest::option::of(s).prop_map(move |v| (k, v)))
        .collect::<Vec<_>>();
    (req, opt, extras())
        .prop_map(|(req, opt, extra)| {
            let mut m = extra;
            for (k, v) in req {
                m.insert(k.to_owned(), v);
            }
            for (k, v) in opt {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        })
        .boxed()
}

fn evidence() -> BoxedStrategy<Value> {
    object(
        vec![("kind", pick(EvidenceKind::NAMES))],
        vec![
            (
                "host",
                pattern("[a-z0-9.:\\[\\]-]{0,30}")
                    .prop_map(Value::String)
                    .boxed(),
            ),
            (
                "path",
                pattern("/[^?#\u{0}]{0,30}").prop_map(Value::String).boxed(),
            ),
            ("initiator", text(32).prop_map(Value::String).boxed()),
            ("frame", text(64).prop_map(Value::String).boxed()),
            ("cookie", text(256).prop_map(Value::String).boxed()),
            ("name", text(128).prop_map(Value::String).boxed()),
            ("purpose", text(32).prop_map(Value::String).boxed()),
            ("days", int(0, u64::MAX)),
            ("region", text(16).prop_map(Value::String).boxed()),
            ("signal", pick(SignalKind::NAMES)),
            ("claimed", text(32).prop_map(Value::String).boxed()),
        ],
    )
}

fn consent() -> BoxedStrategy<Value> {
    object(
        vec![
            ("necessary", tristate()),
            ("functional", tristate()),
            ("analytics", tristate()),
            ("marketing", tristate()),
        ],
        vec![
            (
                "source",
                prop_oneof![
                    pick(&["default", "api", "tcf", "onetrust"]),
                    text(32).prop_map(Value::String).boxed()
                ]
                .boxed(),
            ),
            ("since", int(0, u64::MAX)),
            ("gpc", any::<bool>().prop_map(Value::Bool).boxed()),
        ],
    )
}

fn site() -> BoxedStrategy<Value> {
    pattern("[A-Za-z0-9_-]{1,64}")
        .prop_map(Value::String)
        .boxed()
}

fn page_view() -> BoxedStrategy<Value> {
    pattern("[0-9a-f]{16}").prop_map(Value::String).boxed()
}

fn vendor_id() -> BoxedStrategy<Value> {
    pattern("[a-z0-9_-]{1,64}").prop_map(Value::String).boxed()
}

fn finding_body() -> BoxedStrategy<Value> {
    object(
        vec![
            (
                "schema",
                prop_oneof![Just(json!(1)), Just(json!(1.0))].boxed(),
            ),
            ("site", site()),
            ("page_view", page_view()),
            ("finding", pick(FindingType::NAMES)),
            ("vendor", vendor_id()),
            ("at", int(0, u64::MAX)),
            ("evidence", evidence()),
            ("consent", consent()),
        ],
        vec![
            ("count", int(1, u64::MAX)),
            (
                "category",
                pick(&["necessary", "functional", "analytics", "marketing"]),
            ),
            ("release", release()),
        ],
    )
}

/// A site's release: any text without control characters, up to the cap.
fn release() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => "[^\u{0}-\u{1f}\u{7f}-\u{9f}]{1,12}".boxed(),
        1 => Just("r".repeat(128)).boxed(),
        1 => Just("é".repeat(128)).boxed(),
        1 => Just("1.2.3' OR 1=1 --\"\\".to_owned()).boxed(),
    ]
    .prop_map(Value::String)
    .boxed()
}

fn health_body() -> BoxedStrategy<Value> {
    object(
        vec![
            ("schema", Just(json!(1)).boxed()),
            ("site", site()),
            ("status", pick(HealthStatus::NAMES)),
        ],
        vec![
            ("page_view", page_view()),
            ("reason", text(200).prop_map(Value::String).boxed()),
            ("release", release()),
        ],
    )
}

fn usage() -> Vec<(&'static str, BoxedStrategy<Value>)> {
    vec![
        ("script_requests", int(0, u64::MAX)),
        ("transfer_bytes", int(0, u64::MAX)),
        ("encoded_bytes", int(0, u64::MAX)),
        ("duration_ms", int(0, u64::MAX)),
    ]
}

fn names(max: usize, item: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    proptest::collection::vec(item, 0..max.min(3))
        .prop_map(|v| json!(v))
        .boxed()
}

fn inventory_body() -> BoxedStrategy<Value> {
    let mut vendor_opt = usage();
    vendor_opt.push(("regions", names(10, text(16))));
    vendor_opt.push(("cookies", names(50, text(256))));
    let vendor = object(
        vec![
            ("requests", int(0, u64::MAX)),
            ("vendor", vendor_id()),
            ("hosts", names(50, pattern("[a-z0-9.-]{1,20}"))),
        ],
        vendor_opt,
    );
    let host = object(
        vec![
            ("requests", int(0, u64::MAX)),
            (
                "host",
                pattern("[a-z0-9.-]{0,20}").prop_map(Value::String).boxed(),
            ),
        ],
        usage(),
    );
    object(
        vec![
            ("schema", Just(json!(1)).boxed()),
            ("site", site()),
            ("page_view", page_view()),
            (
                "vendors",
                proptest::collection::vec(vendor, 0..3)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
            (
                "unclassified",
                proptest::collection::vec(host, 0..3)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
        ],
        vec![("release", release())],
    )
}

fn report() -> BoxedStrategy<Value> {
    let body = prop_oneof![
        3 => finding_body().prop_map(|b| ("tagwatch-finding", b)),
        1 => health_body().prop_map(|b| ("tagwatch-health", b)),
        1 => inventory_body().prop_map(|b| ("tagwatch-inventory", b)),
    ];
    (
        body,
        int(0, 604_800_000),
        pattern("https?://[^?#\u{0}]{0,40}"),
        text(512),
        proptest::option::of("[^\u{0}]{0,8}"),
    )
        .prop_map(|((kind, body), age, url, ua, extra)| {
            let mut r =
                json!({"type": kind, "age": age, "url": url, "user_agent": ua, "body": body});
            if let Some(x) = extra {
                r["zz_envelope"] = json!(x);
            }
            r
        })
        .boxed()
}

fn batch() -> BoxedStrategy<Value> {
    proptest::collection::vec(report(), 1..4)
        .prop_map(Value::Array)
        .boxed()
}

/// The batch as the monitor writes it: each report's `type` first.
fn monitor_order(batch: &Value) -> String {
    let items: Vec<String> = batch
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let m = r.as_object().unwrap();
            let mut parts = vec![];
            if let Some(t) = m.get("type") {
                parts.push(format!("\"type\":{t}"));
            }
            for (k, v) in m {
                if k != "type" {
                    parts.push(format!("{}:{v}", Value::String(k.clone())));
                }
            }
            format!("{{{}}}", parts.join(","))
        })
        .collect();
    format!("[{}]", items.join(","))
}

// --------------------------------------------------------------- defects

/// Every place in a value: a JSON pointer of each node.
fn places(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| places(x, format!("{at}/{i}"), out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            places(
                x,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                out,
            )
        }),
        _ => {}
    }
}

/// What a defect does to the value at a place.
#[derive(Debug, Clone, Copy)]
enum Defect {
    Replace(usize),
    Longer,
    Query,
    Upper,
    Nul,
    Control,
    Drop,
    NulKey,
}

const REPLACEMENTS: [&str; 12] = [
    "\"x\"",
    "5",
    "-1",
    "1.5",
    "0",
    "true",
    "null",
    "[]",
    "{}",
    "\"tagwatch-health\"",
    "604800001",
    "\"https://a/\"",
];

fn apply(batch: &mut Value, place: &str, defect: Defect) {
    let Some(target) = batch.pointer_mut(place) else {
        return;
    };
    match defect {
        Defect::Replace(i) => {
            *target = serde_json::from_str(REPLACEMENTS[i % REPLACEMENTS.len()]).unwrap()
        }
        Defect::Longer => {
            if let Value::String(s) = target {
                s.push_str(&"y".repeat(2100));
            } else if let Value::Array(a) = target {
                let first = a.first().cloned().unwrap_or(json!("a"));
                a.extend(std::iter::repeat_n(first, 501));
            }
        }
        Defect::Query => {
            if let Value::String(s) = target {
                s.push_str("?q=1");
            }
        }
        Defect::Upper => {
            if let Value::String(s) = target {
                *s = s.to_uppercase();
            }
        }
        Defect::Nul => {
            if let Value::String(s) = target {
                s.push('\0');
            }
        }
        Defect::Control => {
            if let Value::String(s) = target {
                s.push('\u{85}');
            }
        }
        Defect::NulKey => {
            if let Value::Object(m) = target {
                m.insert("a\0b".into(), json!(1));
            }
        }
        Defect::Drop => {
            let (parent, key) = place.rsplit_once('/').unwrap_or(("", ""));
            let key = key.replace("~1", "/").replace("~0", "~");
            match batch.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(&key);
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = key.parse::<usize>() {
                        if i < a.len() {
                            a.remove(i);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn defect() -> impl Strategy<Value = Defect> {
    prop_oneof![
        6 => (0..REPLACEMENTS.len()).prop_map(Defect::Replace),
        1 => Just(Defect::Longer),
        1 => Just(Defect::Query),
        1 => Just(Defect::Upper),
        1 => Just(Defect::Nul),
        1 => Just(Defect::Control),
        2 => Just(Defect::Drop),
        1 => Just(Defect::NulKey),
    ]
}

/// `cases` generated batches (more with `WIRE_CASES=N`), from a random seed.
fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("WIRE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn generated_batches_are_read_as_the_schema_reads_them() {
    let v = validator();
    runner(300)
        .run(&(batch(), any::<bool>()), |(b, monitor)| {
            let text = if monitor {
                monitor_order(&b)
            } else {
                b.to_string()
            };
            check_agreement(&v, &b, &text, 0)
        })
        .unwrap();
}

#[test]
fn one_defect_is_refused_with_the_schemas_reason() {
    let v = validator();
    runner(600)
        .run(
            &(
                batch(),
                any::<prop::sample::Index>(),
                defect(),
                any::<bool>(),
            ),
            |(mut b, at, d, monitor)| {
                let mut all = Vec::new();
                places(&b, String::new(), &mut all);
                let place = at.get(&all).clone();
                apply(&mut b, &place, d);
                let text = if monitor {
                    monitor_order_or_plain(&b)
                } else {
                    b.to_string()
                };
                check_agreement(&v, &b, &text, 1)
            },
        )
        .unwrap();
}

#[test]
fn two_defects_are_refused_with_one_of_the_schemas_reasons() {
    let v = validator();
    runner(300)
        .run(
            &(
                batch(),
                any::<prop::sample::Index>(),
                defect(),
                any::<prop::sample::Index>(),
                defect(),
            ),
            |(mut b, a1, d1, a2, d2)| {
                for (at, d) in [(a1, d1), (a2, d2)] {
                    let mut all = Vec::new();
                    places(&b, String::new(), &mut all);
                    let place = at.get(&all).clone();
                    apply(&mut b, &place, d);
                }
                let text = b.to_string();
                check_agreement(&v, &b, &text, 2)
            },
        )
        .unwrap();
}

/// The monitor's order when the batch is still an array of objects.
fn monitor_order_or_plain(b: &Value) -> String {
    match b.as_array() {
        Some(items) if items.iter().all(Value::is_object) => monitor_order(b),
        _ => b.to_string(),
    }
}

#[test]
fn strings_are_written_as_serde_json_writes_them() {
    let chars = (0u32..0x80)
        .filter_map(char::from_u32)
        .chain(['é', '\u{2028}', '😀']);
    for c in chars {
        let s = format!("a{c}b");
        let mut ours = String::new();
        read::push_json_str(&mut ours, &s);
        assert_eq!(ours, serde_json::to_string(&s).unwrap(), "{c:?}");
    }
    // serde_json's maps are sorted (no `preserve_order` in this build): the
    // stored text of unknown fields relies on it.
    assert_eq!(
        json!({"b": 1, "a": {"d": 2, "c": 3}}).to_string(),
        r#"{"a":{"c":3,"d":2},"b":1}"#
    );
}
