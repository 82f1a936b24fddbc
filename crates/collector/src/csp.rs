//! Browser-native CSP violation reports (`POST /csp/SITE_KEY`): the Reporting
//! API (`application/reports+json`, reports of type `csp-violation`) and the
//! legacy `report-uri` format (`application/csp-report`,
//! `{"csp-report": {…}}`). Each blocked `http(s)` URL becomes a
//! `csp_blocked` finding: host and redacted path only (no query, no
//! fragment), classified with the core catalog. See docs/collector.md.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tagwatch_core::catalog;
use tagwatch_core::redact::redact_text;
use tagwatch_core::report::read::{refuse_nul, Canonical};
use tagwatch_core::url;
use tagwatch_store::timefmt::{iso_from_ms, shared_iso_from_ms};
use tagwatch_store::{FindingKind, FindingRecord, SharedText, StoredEvidenceKind};

use crate::ingest::{truncate, Malformed, Parsed};
use crate::scrub;
/// `vendor` of a blocked host the catalog does not know.
pub const UNCLASSIFIED: &str = "unclassified";
/// Longest `user_agent` kept, as for the monitor's reports.
const MAX_USER_AGENT: usize = 512;
/// Oldest `age` believed (7 days, as the report schema allows).
const MAX_AGE_MS: i64 = 604_800_000;

/// Fields of a report body that hold URLs: kept without query or fragment.
const URL_FIELDS: [&str; 7] = [
    "documentURL",
    "blockedURL",
    "referrer",
    "sourceFile",
    "document-uri",
    "blocked-uri",
    "source-file",
];
/// Fields that may quote page content (the first 40 characters of an inline
/// script): never stored.
const DROPPED_FIELDS: [&str; 2] = ["sample", "script-sample"];

/// One violation, as read from either format.
struct Violation<'a> {
    document: &'a str,
    blocked: &'a str,
    directive: &'a str,
    disposition: &'a str,
    age: i64,
    user_agent: String,
    body: &'a Map<String, Value>,
}

/// What a request body held besides the findings.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// Reports of other types (`deprecation`, …) in a Reporting API batch.
    pub other_types: usize,
    /// Violations of non-`http(s)` resources (`inline`, `eval`, `data`, …).
    pub not_http: usize,
    /// Violations in documents without an `http(s)` URL (`about:srcdoc`).
    pub no_document: usize,
}

/// Parses a CSP report body sent to `/csp/<site>` at `received_ms`.
/// `header_user_agent` stands in for reports that carry none (legacy).
pub fn parse(
    site: &str,
    body: &[u8],
    header_user_agent: &str,
    received_ms: i64,
) -> Result<(Parsed, Skipped), Malformed> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Malformed(format!("body is not JSON: {e}")))?;
    refuse_nul(&value).map_err(|v| Malformed(truncate(v.to_string())))?;
    let mut skipped = Skipped::default();
    let mut violations = Vec::new();
    match &value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(Malformed("batch: [] has no report".into()));
            }
            for (i, item) in items.iter().enumerate() {
                let Some(report) = item.as_object() else {
                    return Err(Malformed(format!("item {i}: not an object")));
                };
                let kind = report.get("type").and_then(Value::as_str).ok_or_else(|| {
                    Malformed(format!(
                        "item {i}: type: missing (a Reporting API report has one)"
                    ))
                })?;
                if kind != "csp-violation" {
                    skipped.other_types += 1;
                    continue;
                }
                let body = report
                    .get("body")
                    .and_then(Value::as_object)
                    .ok_or_else(|| {
                        Malformed(format!("item {i}: body: missing or not an object"))
                    })?;
                let age = match report.get("age") {
                    None => 0,
                    Some(v) => v.as_i64().filter(|a| *a >= 0).ok_or_else(|| {
                        Malformed(format!("item {i}: age: {v} is not a non-negative integer"))
                    })?,
                };
                let user_agent = report
                    .get("user_agent")
                    .and_then(Value::as_str)
                    .unwrap_or(header_user_agent);
                violations.push(read(
                    &format!("item {i}: body"),
                    body,
                    [
                        "documentURL",
                        "blockedURL",
                        "effectiveDirective",
                        "disposition",
                    ],
                    age,
                    user_agent,
                )?);
            }
        }
        Value::Object(map) => {
            let body = map
                .get("csp-report")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    Malformed(
                        "expected a Reporting API array (application/reports+json) or \
                     {\"csp-report\": {…}} (application/csp-report)"
                            .into(),
                    )
                })?;
            let mut v = read(
                "csp-report",
                body,
                [
                    "document-uri",
                    "blocked-uri",
                    "effective-directive",
                    "disposition",
                ],
                0,
                header_user_agent,
            )?;
            if v.directive.is_empty() {
                // CSP 1 reports name only the violated directive, possibly
                // with its sources: "script-src 'self'".
                v.directive = body
                    .get("violated-directive")
                    .and_then(Value::as_str)
                    .and_then(|d| d.split_ascii_whitespace().next())
                    .unwrap_or("");
            }
            violations.push(v);
        }
        _ => {
            return Err(Malformed(
                "expected a Reporting API array (application/reports+json) or \
                 {\"csp-report\": {…}} (application/csp-report)"
                    .into(),
            ))
        }
    }

    let mut parsed = Parsed::default();
    parsed.sites.insert(site.to_owned());
    // What every record shares: one copy each.
    let received_at = shared_iso_from_ms(received_ms);
    let site_text = SharedText::from(site);
    // Identical violations of one request become one row with their count.
    let mut merged: BTreeMap<(String, String, String), FindingRecord> = BTreeMap::new();
    for v in violations {
        let Some((page, origin)) = scrub::page_and_origin(v.document) else {
            // `about:blank`, `about:srcdoc`, extension pages: no page to
            // file it under nor an origin to check. The other reports of
            // the batch still count.
            skipped.no_document += 1;
            continue;
        };
        parsed.page_origins.insert((site.to_owned(), origin));
        let Some(blocked) = url::parse(v.blocked) else {
            skipped.not_http += 1;
            continue;
        };
        let path = url::redact_path(&blocked.path);
        let directive = clean_token(v.directive);
        let hit = catalog::classify_request(&blocked.host, &path, initiator_of(&directive));
        let vendor = hit.map_or(UNCLASSIFIED, |m| m.vendor.id);
        let category = hit.and_then(|m| m.purpose.consent);
        let mut evidence = Map::new();
        evidence.insert("kind".into(), "csp".into());
        evidence.insert("host".into(), blocked.host.clone().into());
        evidence.insert("path".into(), path.into());
        evidence.insert("directive".into(), directive.into());
        evidence.insert("disposition".into(), clean_token(v.disposition).into());
        if let Some(m) = hit {
            evidence.insert("purpose".into(), m.purpose.name.into());
            if let Some(region) = m.vendor.region(&blocked.host) {
                evidence.insert("region".into(), region.into());
            }
        }
        let evidence = Value::Object(evidence).to_json();
        let at_ms = received_ms.saturating_sub(v.age.min(MAX_AGE_MS));
        let at = iso_from_ms(at_ms);
        let page_view = bucket(&at, &page);
        let key = (page_view.clone(), vendor.to_owned(), evidence.clone());
        match merged.get_mut(&key) {
            Some(row) => {
                row.count = row.count.saturating_add(1);
                if at.as_str() < row.at.as_str() {
                    row.at = at.into();
                }
            }
            None => {
                let user_agent: String = v.user_agent.chars().take(MAX_USER_AGENT).collect();
                let user_agent = redact_text(&user_agent).into_owned();
                merged.insert(
                    key,
                    FindingRecord {
                        release: None,
                        site: site_text.clone(),
                        page_view: page_view.into(),
                        page: page.into(),
                        kind: FindingKind::CspBlocked,
                        vendor: vendor.into(),
                        category,
                        evidence: evidence.into(),
                        evidence_kind: StoredEvidenceKind::Csp,
                        consent: "null".into(),
                        consent_source: None,
                        count: 1,
                        at: at.into(),
                        received_at: received_at.clone(),
                        user_agent: user_agent.into(),
                        raw: stripped_raw(v.body).into(),
                    },
                );
            }
        }
    }
    parsed.batch.findings = merged.into_values().collect();
    Ok((parsed, skipped))
}

fn read<'a>(
    place: &str,
    body: &'a Map<String, Value>,
    [document, blocked, directive, disposition]: [&str; 4],
    age: i64,
    user_agent: &str,
) -> Result<Violation<'a>, Malformed> {
    let text = |field: &str, required: bool| -> Result<&'a str, Malformed> {
        match body.get(field) {
            Some(Value::String(s)) => Ok(s.as_str()),
            None | Some(Value::Null) if !required => Ok(""),
            None | Some(Value::Null) => Err(Malformed(format!("{place}.{field}: missing"))),
            Some(other) => Err(Malformed(truncate(format!(
                "{place}.{field}: {other} is not a string"
            )))),
        }
    };
    Ok(Violation {
        document: text(document, true)?,
        blocked: text(blocked, false)?,
        directive: text(directive, false)?,
        disposition: text(disposition, false)?,
        age,
        user_agent: user_agent.to_owned(),
        body,
    })
}

/// A directive or disposition as a short lower-case token.
fn clean_token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The Resource Timing `initiatorType` a directive stands for, which the
/// catalog uses for requests no path rule covers.
fn initiator_of(directive: &str) -> &'static str {
    if directive.starts_with("script-src") || directive == "worker-src" {
        "script"
    } else if directive.starts_with("style-src") {
        "css"
    } else if directive == "img-src" {
        "img"
    } else if directive == "frame-src" || directive == "child-src" {
        "iframe"
    } else if directive == "connect-src" {
        "fetch"
    } else {
        "other"
    }
}

/// The `page_view` of CSP findings: a stable id of (UTC day, page), so that
/// one blocked resource on one page adds up per day. 16 hex characters, as
/// the monitor's page view ids.
fn bucket(at: &str, page: &str) -> String {
    let day = at.get(..10).unwrap_or(at);
    // FNV-1a, 64 bits.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in day.bytes().chain([b'|']).chain(page.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The report body as stored: content samples dropped, URL fields as page
/// URLs, every other string scrubbed (`scrub::csp_body`).
fn stripped_raw(body: &Map<String, Value>) -> String {
    let mut out: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !DROPPED_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    scrub::csp_body(&mut out, &URL_FIELDS);
    Value::Object(out).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_714_564_800_000;

    fn one(v: &Value) -> Result<(Parsed, Skipped), Malformed> {
        parse("tw_a", v.to_string().as_bytes(), "UA-header", NOW)
    }

    #[test]
    fn reads_reporting_api_batches() {
        let r = |blocked: &str, age: i64| {
            json!({
                "type": "csp-violation", "age": age, "url": "https://shop.example/cart?x=1",
                "user_agent": "Mozilla/5.0",
                "body": {
                    "documentURL": "https://shop.example/cart?email=a@b.example#frag",
                    "blockedURL": blocked, "effectiveDirective": "script-src-elem",
                    "disposition": "report", "sample": "secret()", "statusCode": 200,
                    "sourceFile": "https://shop.example/app.js?v=1", "newField": 7
                }
            })
        };
        let (parsed, skipped) = one(&json!([
            r("https://www.googletagmanager.com/gtag/js?id=G-123", 500),
            r("https://www.googletagmanager.com/gtag/js?id=G-456", 100),
            r("https://cdn.unknown.example/u/12345678/x.js?t=secret", 0),
            r("inline", 0),
            {"type": "deprecation", "age": 0, "url": "https://shop.example/", "body": {}}
        ]))
        .unwrap();
        assert_eq!(
            skipped,
            Skipped {
                other_types: 1,
                not_http: 1,
                no_document: 0
            }
        );
        assert_eq!(parsed.sites.len(), 1);
        assert_eq!(
            parsed.page_origins.iter().next().map(|(_, o)| o.as_str()),
            Some("https://shop.example")
        );
        let rows = &parsed.batch.findings;
        assert_eq!(rows.len(), 2);
        let gtm = rows.iter().find(|f| f.vendor == "gtm").unwrap();
        assert_eq!(gtm.count, 2);
        assert_eq!(gtm.kind, FindingKind::CspBlocked);
        assert_eq!(gtm.page, "https://shop.example/cart");
        assert_eq!(gtm.at, iso_from_ms(NOW - 500));
        assert_eq!(gtm.category.map(|c| c.as_str()), Some("analytics"));
        let ev: Value = serde_json::from_str(&gtm.evidence).unwrap();
        assert_eq!(ev["host"], "www.googletagmanager.com");
        assert_eq!(ev["path"], "/gtag/js");
        assert_eq!(ev["directive"], "script-src-elem");
        assert_eq!(ev["disposition"], "report");
        assert_eq!(ev["kind"], "csp");
        let unknown = rows.iter().find(|f| f.vendor == UNCLASSIFIED).unwrap();
        let ev: Value = serde_json::from_str(&unknown.evidence).unwrap();
        assert_eq!(ev["path"], "/u/:id/x.js");
        assert_eq!(unknown.category, None);
        for row in rows {
            for needle in ["secret", "G-123", "a@b", "frag", "v=1", "?"] {
                assert!(!row.raw.contains(needle), "{needle} in {}", row.raw);
                assert!(!row.evidence.contains(needle), "{needle}");
            }
            assert!(row.raw.contains("\"newField\":7"), "{}", row.raw);
            assert_eq!(row.page_view.len(), 16);
        }
    }

    #[test]
    fn reads_legacy_reports() {
        let (parsed, _) = one(&json!({"csp-report": {
            "document-uri": "https://shop.example/support?q=1",
            "blocked-uri": "https://api-iam.intercom.io/messenger/web/ping",
            "violated-directive": "connect-src 'self'",
            "original-policy": "script-src 'self'; report-uri /csp/tw_a"
        }}))
        .unwrap();
        let f = &parsed.batch.findings[0];
        assert_eq!(f.vendor, "intercom");
        assert_eq!(f.user_agent, "UA-header");
        assert_eq!(f.page, "https://shop.example/support");
        let ev: Value = serde_json::from_str(&f.evidence).unwrap();
        assert_eq!(ev["directive"], "connect-src");
        assert_eq!(ev["purpose"], "tracking");
        assert_eq!(ev["region"], "us");
        assert_eq!(f.category.map(|c| c.as_str()), Some("marketing"));
    }

    #[test]
    fn refuses_what_is_not_a_csp_report() {
        for (body, want) in [
            (json!({"a": 1}), "expected a Reporting API array"),
            (json!([]), "batch"),
            (json!([1]), "item 0: not an object"),
            (
                json!([{"type": "csp-violation", "body": {}}]),
                "item 0: body.documentURL: missing",
            ),
            (
                json!([{"type": "csp-violation", "age": -1, "body": {"documentURL": "https://a.example/"}}]),
                "item 0: age",
            ),
            (
                json!({"csp-report": {"document-uri": 5}}),
                "csp-report.document-uri: 5 is not a string",
            ),
        ] {
            let e = one(&body).expect_err(&body.to_string());
            assert!(e.0.contains(want), "{body}: {e}");
        }
        // A document without an http(s) URL is skipped, not refused.
        let (parsed, skipped) = one(&json!({"csp-report": {
            "document-uri": "about:srcdoc", "blocked-uri": "https://x.example/"
        }}))
        .unwrap();
        assert!(parsed.batch.findings.is_empty() && parsed.page_origins.is_empty());
        assert_eq!(skipped.no_document, 1);
        let e = parse("tw_a", b"nope", "", NOW).expect_err("not json");
        assert!(e.0.starts_with("body is not JSON"));
    }

    #[test]
    fn buckets_are_per_day_and_page() {
        let a = bucket("2024-05-01T10:00:00.000Z", "https://shop.example/");
        assert_eq!(
            a,
            bucket("2024-05-01T23:00:00.000Z", "https://shop.example/")
        );
        assert_ne!(
            a,
            bucket("2024-05-02T00:00:00.000Z", "https://shop.example/")
        );
        assert_ne!(
            a,
            bucket("2024-05-01T10:00:00.000Z", "https://shop.example/x")
        );
    }
}
