//! What the collector keeps of a page URL and of a CSP report: the same
//! redaction as the monitor, applied again before anything is stored
//! (defence in depth), so that a report from an old or forged client cannot
//! store an e-mail, a user id, a query string or a fragment either.
//!
//! The monitor's report bodies are redacted by their own types, field by
//! field (`tagwatch_core::report::read::Scrub`); here:
//!
//! - Page URLs (a report's `url`, CSP document and source URLs): read as a
//!   browser reads them ([`crate::origin::parse_page`]), then
//!   `tagwatch_core::url::page_url`: no user info, query or fragment, and
//!   identifier-like path segments as `:id`.
//! - Every other string of a CSP report, and every property name:
//!   `tagwatch_core::redact::redact_text`.

use std::borrow::Cow;

use serde_json::{Map, Value};
use tagwatch_core::redact::redact_text;
use tagwatch_core::url::page_url;

/// A page URL as stored, or `None` when it is not an `http(s)` URL with a
/// host. Idempotent: a stored URL scrubs to itself.
pub fn page(input: &str) -> Option<String> {
    crate::origin::parse_page(input).map(stored_page)
}

/// A page URL as stored, and the origin a browser gives it (what the origin
/// check compares when a request has no usable `Origin`), from one reading
/// of the URL; `None` when it is not an `http(s)` URL with a host.
pub fn page_and_origin(input: &str) -> Option<(String, String)> {
    let url = crate::origin::parse_page(input)?;
    let origin = url.origin().ascii_serialization();
    Some((stored_page(url), origin))
}

/// What [`page`] keeps of a URL [`crate::origin::parse_page`] read.
fn stored_page(mut url: url::Url) -> String {
    url.set_query(None);
    url.set_fragment(None);
    // Cannot fail on an http(s) URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    page_url(url.as_str())
}

/// Scrubs a CSP violation report body (either format) in place: URL fields
/// as page URLs (anything else in them, such as `inline`, as text), every
/// other string and every property name as text.
pub fn csp_body(body: &mut Map<String, Value>, url_fields: &[&str]) {
    let taken = std::mem::take(body);
    for (key, mut value) in taken {
        if url_fields.contains(&key.as_str()) {
            if let Value::String(s) = &value {
                value = Value::String(page(s).unwrap_or_else(|| {
                    // `inline`, `eval`, `data`: the scheme or keyword only.
                    redact_text(s.split([':', '?', '#']).next().unwrap_or("")).into_owned()
                }));
            } else {
                text(&mut value);
            }
            body.insert(key, value);
        } else {
            text(&mut value);
            body.insert(redact_text(&key).into_owned(), value);
        }
    }
}

/// Every string and property name of `value` as free text.
fn text(value: &mut Value) {
    match value {
        Value::String(s) => {
            let redacted = match redact_text(s) {
                Cow::Owned(r) => Some(r),
                Cow::Borrowed(_) => None,
            };
            if let Some(r) = redacted {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(text),
        Value::Object(map) => {
            let taken = std::mem::take(map);
            for (key, mut v) in taken {
                text(&mut v);
                map.insert(redact_text(&key).into_owned(), v);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
