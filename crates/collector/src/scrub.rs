//! What the collector keeps of a report: the same redaction as the monitor,
//! applied again before anything is stored (defence in depth), so that a
//! report from an old or forged client cannot store an e-mail, a user id, a
//! query string or a fragment either.
//!
//! - Page URLs (the envelope `url`, CSP document and source URLs): read as a
//!   browser reads them ([`crate::origin::parse_page`]), then
//!   `tagwatch_core::url::page_url`: no user info, query or fragment, and
//!   identifier-like path segments as `:id`.
//! - Paths (`evidence.path`): `tagwatch_core::url::redact_path`.
//! - Health `reason`: kept only when it is an error name
//!   (`tagwatch_core::redact::error_name`), else dropped.
//! - Fields the schema pins to a pattern or an enum (site key, page view,
//!   finding type, vendor id, category, host names, evidence kind): as sent.
//! - Every other string, and the name of every property the schema does not
//!   define: `tagwatch_core::redact::redact_text`.
//!
//! The stored `raw` body is the scrubbed body, so it holds nothing the
//! typed columns do not.

use serde_json::{Map, Value};
use tagwatch_core::redact::{error_name, redact_text};
use tagwatch_core::url::{page_url, redact_path};

/// A page URL as stored, or `None` when it is not an `http(s)` URL with a
/// host. Idempotent: a stored URL scrubs to itself.
pub fn page(input: &str) -> Option<String> {
    let mut url = crate::origin::parse_page(input)?;
    url.set_query(None);
    url.set_fragment(None);
    // Cannot fail on an http(s) URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(page_url(url.as_str()))
}

/// What to do with one property of a known object.
#[derive(Clone, Copy)]
enum Rule {
    /// Pinned by the schema (pattern, enum, number, boolean): as sent.
    Keep,
    /// A path: redacted as the monitor redacts paths.
    Path,
    /// A health reason: an error name or nothing.
    ErrorName,
    /// Free text, or anything nested: every string scrubbed.
    Text,
    /// An array of inventory entries with their own rules.
    Entries(fn(&str) -> Rule),
    /// A nested object with its own rules.
    Object(fn(&str) -> Rule),
}

fn finding_body(key: &str) -> Rule {
    match key {
        "schema" | "site" | "page_view" | "finding" | "vendor" | "at" | "count" | "category" => {
            Rule::Keep
        }
        "evidence" => Rule::Object(evidence),
        "consent" => Rule::Object(consent),
        _ => Rule::Text,
    }
}

fn evidence(key: &str) -> Rule {
    match key {
        "kind" | "host" | "days" | "signal" => Rule::Keep,
        "path" => Rule::Path,
        _ => Rule::Text,
    }
}

fn consent(key: &str) -> Rule {
    match key {
        "necessary" | "functional" | "analytics" | "marketing" | "since" | "gpc" => Rule::Keep,
        _ => Rule::Text,
    }
}

fn health_body(key: &str) -> Rule {
    match key {
        "schema" | "site" | "page_view" | "status" => Rule::Keep,
        "reason" => Rule::ErrorName,
        _ => Rule::Text,
    }
}

fn inventory_body(key: &str) -> Rule {
    match key {
        "schema" | "site" | "page_view" => Rule::Keep,
        "vendors" => Rule::Entries(inventory_vendor),
        "unclassified" => Rule::Entries(inventory_host),
        _ => Rule::Text,
    }
}

fn usage(key: &str) -> bool {
    matches!(
        key,
        "requests" | "script_requests" | "transfer_bytes" | "encoded_bytes" | "duration_ms"
    )
}

fn inventory_vendor(key: &str) -> Rule {
    match key {
        "vendor" | "hosts" => Rule::Keep,
        k if usage(k) => Rule::Keep,
        _ => Rule::Text,
    }
}

fn inventory_host(key: &str) -> Rule {
    match key {
        "host" => Rule::Keep,
        k if usage(k) => Rule::Keep,
        _ => Rule::Text,
    }
}

/// Scrubs the `body` of a report of type `kind` in place (the schema has
/// already accepted it).
pub fn report_body(kind: &str, body: &mut Value) {
    let rules: fn(&str) -> Rule = match kind {
        "tagwatch-finding" => finding_body,
        "tagwatch-health" => health_body,
        "tagwatch-inventory" => inventory_body,
        _ => |_| Rule::Text,
    };
    apply(Rule::Object(rules), body);
}

/// Scrubs a CSP violation report body (either format) in place: URL fields
/// as page URLs (anything else in them, such as `inline`, as text), every
/// other string as text.
pub fn csp_body(body: &mut Map<String, Value>, url_fields: &[&str]) {
    let taken = std::mem::take(body);
    for (key, mut value) in taken {
        if url_fields.contains(&key.as_str()) {
            if let Value::String(s) = &value {
                value = Value::String(page(s).unwrap_or_else(|| {
                    // `inline`, `eval`, `data`: the scheme or keyword only.
                    redact_text(s.split([':', '?', '#']).next().unwrap_or(""))
                }));
            } else {
                apply(Rule::Text, &mut value);
            }
            body.insert(key, value);
        } else {
            apply(Rule::Text, &mut value);
            body.insert(redact_text(&key), value);
        }
    }
}

fn apply(rule: Rule, value: &mut Value) {
    match (rule, value) {
        (Rule::Keep, _) => {}
        (Rule::Path, Value::String(s)) => *s = redact_path(s),
        (Rule::ErrorName, v) => {
            let name = v.as_str().and_then(error_name).map(str::to_owned);
            *v = name.map_or(Value::Null, Value::String);
        }
        (Rule::Entries(rules), Value::Array(items)) => {
            for item in items {
                apply(Rule::Object(rules), item);
            }
        }
        (Rule::Object(rules), Value::Object(map)) => {
            let taken = std::mem::take(map);
            for (key, mut v) in taken {
                let rule = rules(&key);
                apply(rule, &mut v);
                let key = match rule {
                    Rule::Text => redact_text(&key),
                    _ => key,
                };
                map.insert(key, v);
            }
        }
        (_, Value::String(s)) => *s = redact_text(s),
        (_, Value::Array(items)) => {
            for item in items {
                apply(Rule::Text, item);
            }
        }
        (_, Value::Object(map)) => {
            let taken = std::mem::take(map);
            for (key, mut v) in taken {
                apply(Rule::Text, &mut v);
                map.insert(redact_text(&key), v);
            }
        }
        (_, Value::Null | Value::Bool(_) | Value::Number(_)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn page_urls_lose_what_the_monitor_drops() {
        for (input, want) in [
            (
                "https://u:p@Shop.Example:443/account/jane.doe@example.com/orders",
                Some("https://shop.example/account/:id/orders"),
            ),
            (
                "https://shop.example/u/6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978?x=1#y",
                Some("https://shop.example/u/:id"),
            ),
            (
                "https://shop.example:8443/orders/12345678",
                Some("https://shop.example:8443/orders/:id"),
            ),
            (
                "https://shop.example/a\\jane%40example.com",
                Some("https://shop.example/a/:id"),
            ),
            ("https://shop.example", Some("https://shop.example/")),
            ("https://a b/", None),
            ("javascript:alert(1)", None),
        ] {
            assert_eq!(page(input).as_deref(), want, "{input}");
            if let Some(stored) = want {
                assert_eq!(page(stored).as_deref(), Some(stored), "idempotent");
            }
        }
    }

    #[test]
    fn bodies_keep_what_is_pinned_and_scrub_the_rest() {
        let mut body = json!({
            "schema": 1, "site": "tw_a", "page_view": "9f1c2e3d4b5a6978",
            "finding": "cookie_before_consent", "vendor": "intercom", "at": 1,
            "evidence": {"kind": "cookie", "cookie": "uid_12345678", "purpose": "jane@example.com",
                         "host": "widget.intercom.io", "path": "/u/12345678/x",
                         "extra": {"jane@example.com": ["6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978"]}},
            "consent": {"necessary": true, "functional": null, "analytics": false,
                        "marketing": false, "source": "12345678"},
            "jane@example.com": "x"
        });
        report_body("tagwatch-finding", &mut body);
        assert_eq!(
            body,
            json!({
                "schema": 1, "site": "tw_a", "page_view": "9f1c2e3d4b5a6978",
                "finding": "cookie_before_consent", "vendor": "intercom", "at": 1,
                "evidence": {"kind": "cookie", "cookie": "uid_:id", "purpose": ":id",
                             "host": "widget.intercom.io", "path": "/u/:id/x",
                             "extra": {":id": [":id"]}},
                "consent": {"necessary": true, "functional": null, "analytics": false,
                            "marketing": false, "source": ":id"},
                ":id": "x"
            })
        );
        let mut health =
            json!({"schema": 1, "site": "tw_a", "status": "ok", "reason": "a@b.example"});
        report_body("tagwatch-health", &mut health);
        assert_eq!(health["reason"], Value::Null);
        let mut health =
            json!({"schema": 1, "site": "tw_a", "status": "ok", "reason": "CompileError"});
        report_body("tagwatch-health", &mut health);
        assert_eq!(health["reason"], "CompileError");
    }
}
