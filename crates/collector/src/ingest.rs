//! `POST /r` bodies: JSON → schema validation (docs/report.schema.json,
//! embedded) → records ready to store.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tagwatch_core::redact::redact_text;

use crate::scrub;
use tagwatch_store::{
    Batch, FindingRecord, HealthRecord, InventoryHost, InventoryRecord, InventoryVendor, Usage,
};
use tagwatch_store::timefmt::iso_from_ms;

/// The wire contract, validated against as is.
pub const REPORT_SCHEMA: &str = include_str!("../../../docs/report.schema.json");

/// Longest reason we send back; schema messages can quote large values.
const MAX_REASON: usize = 400;

/// Why a body is refused with 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Malformed {}

/// A parsed, valid request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub batch: Batch,
    /// Every site key the body reports for.
    pub sites: BTreeSet<String>,
    /// (site, origin of the report's `url`) pairs: what the origin check
    /// falls back to when the request carries no usable `Origin`.
    pub page_origins: BTreeSet<(String, String)>,
}

impl Parsed {
    /// Records that a report for `site` came from the page at `url` (as
    /// sent: the origin is the one a browser gives that URL).
    fn register(&mut self, site: &str, origin: String) {
        self.sites.insert(site.to_owned());
        self.page_origins.insert((site.to_owned(), origin));
    }
}

/// Refuses a body with a NUL character (U+0000) in any string or property
/// name: PostgreSQL cannot store one in text, and no report field needs
/// it, so both stores refuse it the same way. `item` names the report.
pub(crate) fn refuse_nul(value: &Value) -> Result<(), Malformed> {
    fn walk(value: &Value, path: &mut Vec<String>) -> Option<(String, bool)> {
        match value {
            Value::String(s) if s.contains('\0') => Some((describe_path(path), false)),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
                path.push(i.to_string());
                let found = walk(v, path);
                path.pop();
                found
            }),
            Value::Object(map) => map.iter().find_map(|(k, v)| {
                path.push(k.replace('\0', "\\0"));
                let found = if k.contains('\0') {
                    Some((describe_path(path), true))
                } else {
                    walk(v, path)
                };
                path.pop();
                found
            }),
            _ => None,
        }
    }
    match walk(value, &mut Vec::new()) {
        None => Ok(()),
        Some((place, key)) => Err(Malformed(truncate(format!(
            "{place}: {} contains a NUL character (U+0000), which the collector does not store",
            if key { "the property name" } else { "the text" }
        )))),
    }
}

/// `["0", "body", "reason"]` → `item 0: body.reason` (as
/// [`describe_pointer`]); a path that does not start at a batch item, as in
/// a legacy CSP report, is dotted: `csp-report.blocked-uri`.
fn describe_path(path: &[String]) -> String {
    match path.first() {
        Some(first) if !first.bytes().all(|b| b.is_ascii_digit()) => path.join("."),
        _ => {
            let pointer: String = path
                .iter()
                .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
                .collect();
            describe_pointer(&pointer)
        }
    }
}

/// Deserializes the `body` of batch item `i` into its report kind's shape.
fn item_body<'a, T: Deserialize<'a>>(i: usize, body: &'a Value) -> Result<T, Malformed> {
    T::deserialize(body).map_err(|e| Malformed(truncate(format!("item {i}: body: {e}"))))
}

pub struct Ingest {
    validator: jsonschema::Validator,
    /// `$defs.findingBody.properties.finding.enum` of the schema.
    finding_types: Vec<String>,
}

impl fmt::Debug for Ingest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    age: i64,
    url: String,
    user_agent: String,
    body: Value,
}

#[derive(Deserialize)]
struct FindingBody {
    site: String,
    page_view: String,
    finding: String,
    vendor: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    count: Option<i64>,
    evidence: Value,
    consent: Value,
}

#[derive(Deserialize)]
struct HealthBody {
    site: String,
    #[serde(default)]
    page_view: Option<String>,
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct InventoryBody {
    site: String,
    page_view: String,
    vendors: Vec<WireVendor>,
    unclassified: Vec<WireHost>,
}

#[derive(Deserialize)]
struct WireVendor {
    vendor: String,
    #[serde(deserialize_with = "count")]
    requests: i64,
    #[serde(default, deserialize_with = "count")]
    script_requests: i64,
    #[serde(default, deserialize_with = "count")]
    transfer_bytes: i64,
    #[serde(default, deserialize_with = "count")]
    encoded_bytes: i64,
    #[serde(default, deserialize_with = "count")]
    duration_ms: i64,
    hosts: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    cookies: Vec<String>,
}

#[derive(Deserialize)]
struct WireHost {
    host: String,
    #[serde(deserialize_with = "count")]
    requests: i64,
    #[serde(default, deserialize_with = "count")]
    script_requests: i64,
    #[serde(default, deserialize_with = "count")]
    transfer_bytes: i64,
    #[serde(default, deserialize_with = "count")]
    encoded_bytes: i64,
    #[serde(default, deserialize_with = "count")]
    duration_ms: i64,
}

/// A non-negative integer as the schema allows it (`1e3` included),
/// clamped to `0..=i64::MAX` so that no sum of it can fail later.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    if let Some(n) = v.as_u64() {
        return Ok(i64::try_from(n).unwrap_or(i64::MAX));
    }
    match v.as_f64() {
        // `as` saturates; the schema already refused negatives and fractions.
        Some(f) if f >= 0.0 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!(
            "expected a non-negative integer, got {v}"
        ))),
    }
}

impl WireVendor {
    fn usage(&self) -> Usage {
        Usage {
            requests: self.requests,
            script_requests: self.script_requests,
            transfer_bytes: self.transfer_bytes,
            encoded_bytes: self.encoded_bytes,
            duration_ms: self.duration_ms,
        }
    }
}

impl WireHost {
    fn usage(&self) -> Usage {
        Usage {
            requests: self.requests,
            script_requests: self.script_requests,
            transfer_bytes: self.transfer_bytes,
            encoded_bytes: self.encoded_bytes,
            duration_ms: self.duration_ms,
        }
    }
}

fn sorted_union(into: &mut Vec<String>, more: Vec<String>) {
    into.extend(more);
    into.sort_unstable();
    into.dedup();
}

/// One entry per vendor and per host (a repeated one is summed), sorted.
fn normalize_inventory(body: InventoryBody) -> (Vec<InventoryVendor>, Vec<InventoryHost>) {
    let mut vendors: BTreeMap<String, InventoryVendor> = BTreeMap::new();
    for v in body.vendors {
        let usage = v.usage();
        let entry = vendors
            .entry(v.vendor.clone())
            .or_insert_with(|| InventoryVendor {
                vendor: v.vendor.clone(),
                usage: Usage::default(),
                hosts: Vec::new(),
                regions: Vec::new(),
                cookies: Vec::new(),
            });
        entry.usage.add(&usage);
        sorted_union(&mut entry.hosts, v.hosts);
        sorted_union(&mut entry.regions, v.regions);
        sorted_union(&mut entry.cookies, v.cookies);
    }
    let mut hosts: BTreeMap<String, Usage> = BTreeMap::new();
    for h in body.unclassified {
        hosts.entry(h.host.clone()).or_default().add(&h.usage());
    }
    (
        vendors.into_values().collect(),
        hosts
            .into_iter()
            .map(|(host, usage)| InventoryHost { host, usage })
            .collect(),
    )
}

impl Ingest {
    /// Compiles the embedded schema.
    pub fn new() -> Result<Self, String> {
        let schema: Value = serde_json::from_str(REPORT_SCHEMA)
            .map_err(|e| format!("embedded report schema is not JSON: {e}"))?;
        let validator = jsonschema::draft202012::new(&schema)
            .map_err(|e| format!("embedded report schema does not compile: {e}"))?;
        let finding_types = schema
            .pointer("/$defs/findingBody/properties/finding/enum")
            .and_then(Value::as_array)
            .map(|types| {
                types
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|types| !types.is_empty())
            .ok_or("embedded report schema has no finding type enum")?;
        Ok(Self {
            validator,
            finding_types,
        })
    }

    /// The finding types the monitor may send, from the schema.
    pub fn finding_types(&self) -> &[String] {
        &self.finding_types
    }

    /// Parses and validates a body received at `received_ms`.
    pub fn parse(&self, body: &[u8], received_ms: i64) -> Result<Parsed, Malformed> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Malformed(format!("body is not JSON: {e}")))?;
        refuse_nul(&value)?;
        if let Some(error) = self.validator.iter_errors(&value).next() {
            let path = describe_pointer(error.instance_path().as_str());
            return Err(Malformed(truncate(format!("{path}: {error}"))));
        }
        let reports: Vec<Envelope> = serde_json::from_value(value)
            .map_err(|e| Malformed(truncate(format!("batch: {e}"))))?;
        let received_at = iso_from_ms(received_ms);
        let mut parsed = Parsed {
            batch: Batch::default(),
            sites: BTreeSet::new(),
            page_origins: BTreeSet::new(),
        };
        for (i, mut report) in reports.into_iter().enumerate() {
            let at = iso_from_ms(received_ms.saturating_sub(report.age));
            let (Some(page), Some(origin)) = (
                scrub::page(&report.url),
                crate::origin::page_origin(&report.url),
            ) else {
                return Err(Malformed(truncate(format!(
                    "item {i}: url: {:?} is not an http(s) URL with a host",
                    report.url
                ))));
            };
            scrub::report_body(&report.kind, &mut report.body);
            let user_agent = redact_text(&report.user_agent);
            let raw = report.body.to_string();
            match report.kind.as_str() {
                "tagwatch-finding" => {
                    let body: FindingBody = item_body(i, &report.body)?;
                    parsed.register(&body.site, origin);
                    parsed.batch.findings.push(FindingRecord {
                        site: body.site,
                        page_view: body.page_view,
                        page,
                        kind: body.finding,
                        vendor: body.vendor,
                        category: body.category,
                        evidence: canonical_json(&body.evidence),
                        consent: canonical_json(&body.consent),
                        count: body.count.unwrap_or(1).max(1),
                        at,
                        received_at: received_at.clone(),
                        user_agent,
                        raw,
                        additive: false,
                    });
                }
                "tagwatch-health" => {
                    let body: HealthBody = item_body(i, &report.body)?;
                    parsed.register(&body.site, origin);
                    parsed.batch.health.push(HealthRecord {
                        site: body.site,
                        page_view: body.page_view,
                        page,
                        status: body.status,
                        reason: body.reason,
                        at,
                        received_at: received_at.clone(),
                        user_agent,
                        raw,
                    });
                }
                "tagwatch-inventory" => {
                    let body: InventoryBody = item_body(i, &report.body)?;
                    parsed.register(&body.site, origin);
                    let site = body.site.clone();
                    let page_view = body.page_view.clone();
                    let (vendors, unclassified) = normalize_inventory(body);
                    parsed.batch.inventories.push(InventoryRecord {
                        site,
                        page_view,
                        page,
                        vendors,
                        unclassified,
                        at,
                        received_at: received_at.clone(),
                        user_agent,
                        raw,
                    });
                }
                other => {
                    // The schema's enum already refuses this; keep the
                    // match total without a panic path.
                    return Err(Malformed(truncate(format!(
                        "item {i}: type: unknown report type {other:?}"
                    ))));
                }
            }
        }
        Ok(parsed)
    }
}

/// `/0/body/finding` → `item 0: body.finding`; `` → `batch`.
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
        let _ = write!(out, ": {}", rest.join("."));
    }
    out
}

pub(crate) fn truncate(mut s: String) -> String {
    if s.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// JSON text with object keys sorted at every level, so equal evidence is
/// equal text (it is part of the dedupe key) whatever the sender's order.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (n, (key, val)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(val, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_714_564_800_000;

    /// The batch the monitor's core produces (core/tests/golden.rs) is valid
    /// against the schema the collector enforces.
    #[test]
    fn golden_monitor_batch_is_accepted() {
        let golden = include_bytes!("../../../tests/fixtures/golden/report-batch.json");
        let parsed = Ingest::new().unwrap().parse(golden, NOW);
        assert!(parsed.is_ok(), "{:?}", parsed.err().map(|m| m.0));
    }

    fn finding(site: &str) -> Value {
        json!({
            "type": "tagwatch-finding",
            "age": 1500,
            "url": "https://shop.example/support",
            "user_agent": "Mozilla/5.0",
            "body": {
                "schema": 1, "site": site, "page_view": "9f1c2e3d4b5a6978",
                "finding": "script_before_consent", "vendor": "intercom",
                "category": "functional", "at": 412, "count": 2,
                "evidence": {"path": "/widget/abc12345", "kind": "request", "host": "widget.intercom.io"},
                "consent": {"necessary": true, "functional": false, "analytics": false, "marketing": null, "source": "api", "since": 3, "gpc": false}
            }
        })
    }

    fn parse(v: &Value) -> Result<Parsed, Malformed> {
        Ingest::new()
            .expect("schema")
            .parse(v.to_string().as_bytes(), NOW)
    }

    #[test]
    fn accepts_the_documented_example() {
        let parsed = parse(&json!([finding("tw_abc"), {
            "type": "tagwatch-health", "age": 0, "url": "https://shop.example/",
            "user_agent": "UA", "body": {"schema": 1, "site": "tw_abc", "status": "wasm_unavailable", "reason": "CompileError"}
        }]))
        .expect("valid");
        assert_eq!(parsed.sites.iter().collect::<Vec<_>>(), ["tw_abc"]);
        assert_eq!(
            parsed.page_origins.iter().collect::<Vec<_>>(),
            [&("tw_abc".to_owned(), "https://shop.example".to_owned())]
        );
        let f = parsed.batch.findings.first().expect("one finding");
        assert_eq!(f.at, "2024-05-01T11:59:58.500Z");
        assert_eq!(f.received_at, "2024-05-01T12:00:00.000Z");
        assert_eq!(f.count, 2);
        assert_eq!(f.kind, "script_before_consent");
        assert_eq!(
            f.evidence,
            r#"{"host":"widget.intercom.io","kind":"request","path":"/widget/abc12345"}"#
        );
        let h = parsed.batch.health.first().expect("one health");
        assert_eq!(h.status, "wasm_unavailable");
        assert_eq!(h.reason.as_deref(), Some("CompileError"));
    }

    #[test]
    fn explains_what_is_wrong() {
        let mut bad = finding("tw_abc");
        bad["body"]["finding"] = json!("foo");
        let e = parse(&json!([bad])).expect_err("bad finding");
        assert!(
            e.0.starts_with("item 0: body.finding: \"foo\" is not one of"),
            "{e}"
        );

        let mut bad = finding("tw_abc");
        bad["url"] = json!("https://shop.example/?email=a@b.c");
        let e = parse(&json!([finding("tw_abc"), bad])).expect_err("query string");
        assert!(e.0.starts_with("item 1: url: "), "{e}");

        let e = parse(&json!([])).expect_err("empty");
        assert!(e.0.starts_with("batch: "), "{e}");

        let e = parse(&json!({"a": 1})).expect_err("object");
        assert!(e.0.starts_with("batch: "), "{e}");

        let e = Ingest::new()
            .expect("schema")
            .parse(b"not json", NOW)
            .expect_err("not json");
        assert!(e.0.starts_with("body is not JSON"), "{e}");
    }

    #[test]
    fn reasons_are_bounded() {
        let mut bad = finding("tw_abc");
        bad["user_agent"] = json!("x".repeat(5000));
        let e = parse(&json!([bad])).expect_err("long ua");
        assert!(e.0.len() <= MAX_REASON + '…'.len_utf8(), "{}", e.0.len());
        assert!(e.0.starts_with("item 0: user_agent: "), "{e}");
    }

    /// Mutated bodies never panic the parser; they are accepted or refused.
    #[test]
    fn survives_mutated_bodies() {
        let ingest = Ingest::new().expect("schema");
        let valid = json!([finding("tw_abc")]).to_string().into_bytes();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..3000 {
            let mut body = valid.clone();
            for _ in 0..(next() % 4 + 1) {
                let len = body.len() as u64;
                let i = usize::try_from(next() % len).unwrap_or(0);
                match next() % 3 {
                    0 => body[i] = (next() & 0xff) as u8,
                    1 => {
                        body.remove(i);
                    }
                    _ => {
                        let alphabet = b"{}[]\",:0\\-e";
                        let pick = usize::try_from(next() % alphabet.len() as u64).unwrap_or(0);
                        body.insert(i, alphabet[pick]);
                    }
                }
            }
            match ingest.parse(&body, NOW) {
                Ok(_) => accepted += 1,
                Err(e) => {
                    assert!(!e.0.is_empty());
                    refused += 1;
                }
            }
        }
        assert!(refused > 0 && accepted + refused == 3000);
    }

    #[test]
    fn pointers() {
        assert_eq!(describe_pointer(""), "batch");
        assert_eq!(describe_pointer("/3"), "item 3");
        assert_eq!(
            describe_pointer("/0/body/evidence/host"),
            "item 0: body.evidence.host"
        );
        assert_eq!(describe_pointer("/0/a~1b~0c"), "item 0: a/b~c");
    }

    #[test]
    fn canonical_json_sorts_keys_deeply() {
        let a = json!({"b": [{"y": 1, "x": 2}], "a": "é\"", "c": null});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":"é\"","b":[{"x":2,"y":1}],"c":null}"#
        );
    }
}
