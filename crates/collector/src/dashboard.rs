//! `GET /dashboard/`: the web dashboard, static files compiled into the
//! binary (sources in www/dashboard/). The page itself is public; every
//! data call it makes goes to the read API with the admin token the user
//! enters, so it shows nothing without the token. Served with a strict
//! Content-Security-Policy: scripts, styles and data from this origin only,
//! no inline script or style, no frames, no forms posting elsewhere.

use axum::http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../../www/dashboard/index.html");
const SCRIPT: &str = include_str!("../../../www/dashboard/dashboard.js");
const STYLE: &str = include_str!("../../../www/dashboard/dashboard.css");

/// The policy of every dashboard answer (docs/collector.md#dashboard).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            // Small, and changes with every release: revalidate each time.
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// `GET /dashboard/`
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /dashboard/dashboard.js`
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /dashboard/dashboard.css`
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// `GET /dashboard`: to `/dashboard/`, so that the page's relative URLs
/// (`dashboard.js`, `../api/…`) resolve.
pub async fn redirect() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(LOCATION, HeaderValue::from_static("/dashboard/"))],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_inline_script_or_style() {
        assert!(INDEX.contains(r#"<script src="dashboard.js" defer></script>"#));
        assert!(INDEX.contains(r#"<link rel="stylesheet" href="dashboard.css">"#));
        // The only <script> is the external one; no handlers, no style attributes.
        assert_eq!(INDEX.matches("<script").count(), 1);
        // No inline event handler attribute (` onclick=` …).
        for (i, _) in INDEX.match_indices(" on") {
            let name: String = INDEX[i + 3..]
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            let after = INDEX[i + 3 + name.len()..].trim_start();
            assert!(
                name.is_empty() || !after.starts_with('='),
                "inline handler on{name}"
            );
        }
        assert!(!INDEX.contains("style="), "no style attributes");
        assert!(!INDEX.contains("<style"), "no style elements");
        assert!(
            !INDEX.contains("http://") && !INDEX.contains("https://"),
            "no remote assets"
        );
        // Data goes through textContent, never HTML.
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("outerHTML"));
        assert!(!SCRIPT.contains("insertAdjacentHTML") && !SCRIPT.contains("document.write"));
        assert!(!STYLE.contains("@import") && !STYLE.contains("url("));
    }
}
