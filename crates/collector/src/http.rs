//! HTTP endpoints: `POST /r` and `POST /csp/KEY` (ingest, CORS),
//! `GET /config/KEY`, `GET /api/findings`, `GET /api/health`,
//! `GET /api/inventory`, `GET /api/sites`, `GET /metrics`, `GET /healthz`,
//! `GET /dashboard/` (crate::dashboard). See docs/collector.md.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    ORIGIN, RETRY_AFTER, USER_AGENT, VARY, WWW_AUTHENTICATE,
};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::events::{BatchCounts, Events};
use crate::keys::ct_eq;
use crate::ratelimit::{client_key, retry_after_secs, RateLimiter, SiteLimiter};
use crate::sites::SiteOrigins;
use crate::writer::{WriteError, Writer};
use tagwatch_store::timefmt::{iso_from_ms, now_ms, parse_instant};
use tagwatch_store::{
    FindingKind, FindingRow, FindingsQuery, HealthQuery, HealthRow, InventoryQuery,
    InventoryTotals, ReleaseInfo, SiteInfo, Stats, StatsQuery, Store, StoreError, Tally, Usage,
};

/// Largest accepted body: the `sendBeacon` / `fetch(keepalive)` quota. With
/// a `Content-Encoding`, this is the compressed size.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest body once decompressed (`Content-Encoding` gzip, deflate, br).
pub const MAX_DECODED: usize = 512 * 1024;
/// How much of an oversized body we read and discard before answering 413,
/// so the client sees the answer instead of a connection reset.
const MAX_DISCARD: usize = 1024 * 1024;
/// Default and largest `limit` of the read API.
const DEFAULT_LIMIT: u32 = 1000;
const MAX_LIMIT: u32 = 10_000;
/// Most distinct hosts, regions or cookie names listed per vendor by
/// `GET /api/inventory`.
const INVENTORY_MAX_NAMES: u32 = 200;

const ACCEPTED_TYPES: [&str; 3] = ["text/plain", "application/json", "application/reports+json"];
const CSP_TYPES: [&str; 3] = [
    "application/reports+json",
    "application/csp-report",
    "application/json",
];

pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The origins of the sites reports came for (looked up once each).
    pub sites: Arc<SiteOrigins>,
    pub writer: Writer,
    /// One bucket per site, shared fairly among its clients.
    pub limiter: SiteLimiter,
    /// One bucket per client address (IPv6: per /64).
    pub client_limiter: RateLimiter,
    /// Take the client address from `X-Forwarded-For` (last entry).
    pub behind_proxy: bool,
    pub admin_token: String,
    /// Refuse requests without a web `Origin` instead of checking the
    /// reports' page URLs.
    pub strict_origin: bool,
    /// Time allowed to receive a whole body (`--body-timeout`).
    pub body_timeout: Duration,
    pub events: Arc<Events>,
}

impl AppState {
    /// The answer to a refusal, logging what went wrong inside first.
    fn answer(&self, refusal: Refusal) -> Response {
        if let Some(detail) = &refusal.detail {
            tracing::error!(
                event = "store_error",
                status = refusal.status.as_u16(),
                "{detail}"
            );
        }
        refusal.into_response()
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/r", axum::routing::post(post_reports).options(preflight))
        .route(
            "/csp/{key}",
            axum::routing::post(post_csp).options(preflight),
        )
        .route("/config/{key}", get(get_config))
        .route("/metrics", get(get_metrics))
        .route("/openapi.json", get(get_openapi))
        .route("/api/findings", get(get_findings))
        .route("/api/stats", get(get_stats))
        .route("/api/health", get(get_health))
        .route("/api/inventory", get(get_inventory))
        .route("/api/sites", get(get_sites))
        .route("/api/releases", get(get_releases))
        .route("/api/diff", get(get_diff))
        .route("/dashboard", get(crate::dashboard::redirect))
        .route("/dashboard/", get(crate::dashboard::index))
        .route("/dashboard/index.html", get(crate::dashboard::index))
        .route("/dashboard/dashboard.js", get(crate::dashboard::script))
        .route("/dashboard/dashboard.css", get(crate::dashboard::style))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

// ---------------------------------------------------------------- answers

/// A refusal with a reason a person can act on.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    reason: String,
    /// Short reason for metrics and logs (`origin`, `too_large`, …).
    code: &'static str,
    /// What went wrong inside, for the log (not the client): a store error.
    detail: Option<String>,
    retry_after: Option<u64>,
    close: bool,
}

impl Refusal {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            code: "other",
            detail: None,
            retry_after: None,
            close: false,
        }
    }

    fn code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    fn unavailable(what: impl std::fmt::Display) -> Self {
        let mut refusal = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the collector cannot reach its store right now; retry later",
        )
        .code("unavailable")
        .retry_after(5);
        refusal.detail = Some(what.to_string());
        refusal
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut resp = text(self.status, self.reason);
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close {
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

fn text(status: StatusCode, reason: impl Into<String>) -> Response {
    let mut body = reason.into();
    body.push('\n');
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not encode the answer: {e}"),
        ),
    }
}

async fn blocking<T, F>(f: F) -> Result<T, Refusal>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Refusal::unavailable(format!("store: {e}"))),
        Err(e) => Err(Refusal::unavailable(format!("store task failed: {e}"))),
    }
}

async fn not_found() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "not found; endpoints: POST /r, POST /csp/KEY, GET /config/KEY, GET /api/findings, GET /api/stats, \
         GET /api/health, GET /api/inventory, GET /api/sites, GET /metrics, GET /openapi.json, \
         GET /healthz, GET /dashboard/",
    )
}

async fn method_not_allowed() -> Response {
    text(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this path",
    )
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok")
}

/// The HTTP API, OpenAPI 3.1 (docs/openapi.json, embedded).
const OPENAPI: &str = include_str!("../../../docs/openapi.json");

async fn get_openapi() -> Response {
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        OPENAPI,
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format, behind the admin token.
async fn get_metrics(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &app.admin_token) {
        return unauthorized(&headers);
    }
    (
        StatusCode::OK,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        app.events.render(),
    )
        .into_response()
}

// ----------------------------------------------------------------- origin

/// The request's `Origin` header.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RequestOrigin {
    Missing,
    /// Present but not a web origin (`null`, garbage): shown in the reason.
    Opaque(String),
    Web(String),
}

fn request_origin(headers: &HeaderMap) -> RequestOrigin {
    let Some(value) = headers.get(ORIGIN) else {
        return RequestOrigin::Missing;
    };
    let raw = String::from_utf8_lossy(value.as_bytes()).into_owned();
    match crate::origin::normalize(&raw) {
        Ok(origin) => RequestOrigin::Web(origin),
        Err(_) => RequestOrigin::Opaque(raw.chars().take(100).collect()),
    }
}

/// What the origin check of `POST /r` compares with each site's origins.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OriginCheck<'a> {
    /// The `Origin` header.
    Header(&'a str),
    /// No usable `Origin` (absent, or `null`): the origin of each report's
    /// `url` instead. Browsers send `Origin: null` for a `no-cors` POST such
    /// as `sendBeacon(text/plain)` when the page's Referrer-Policy is
    /// `no-referrer`, or on an https page posting to an http collector.
    PageUrl,
}

fn origin_check(origin: &RequestOrigin, strict: bool) -> Result<OriginCheck<'_>, Refusal> {
    match origin {
        RequestOrigin::Web(o) => Ok(OriginCheck::Header(o)),
        RequestOrigin::Opaque(raw) if raw != "null" => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("Origin {raw:?} is not a web origin (scheme://host[:port])"),
        )
        .code("origin")),
        _ if !strict => Ok(OriginCheck::PageUrl),
        RequestOrigin::Missing => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "missing Origin header, and this collector runs with --strict-origin: reports are \
             accepted only with the Origin of a page registered for the site",
        )
        .code("origin")),
        RequestOrigin::Opaque(_) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "Origin is \"null\", and this collector runs with --strict-origin; browsers send \
             null for sendBeacon from pages whose Referrer-Policy is no-referrer (or https pages \
             posting to an http collector): send with fetch(…, {mode: 'cors'}) instead",
        )
        .code("origin")),
    }
}

/// Adds `Vary: Origin` always, and the CORS allow headers when the origin
/// is registered for some site.
fn add_cors(resp: &mut Response, origin: &RequestOrigin, registered: bool) {
    let headers = resp.headers_mut();
    headers.append(VARY, HeaderValue::from_static("Origin"));
    if let (RequestOrigin::Web(origin), true) = (origin, registered) {
        if let Ok(value) = HeaderValue::from_str(origin) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Retry-After"),
            );
        }
    }
}

async fn origin_registered(app: &Arc<AppState>, origin: &RequestOrigin) -> bool {
    let RequestOrigin::Web(origin) = origin else {
        return false;
    };
    let store = app.store.clone();
    let candidates = crate::origin::candidates(origin);
    match blocking(move || store.origin_registered(&candidates)).await {
        Ok(registered) => registered,
        Err(refusal) => {
            // Logged; without the store, no CORS headers.
            let _ = app.answer(refusal);
            false
        }
    }
}

async fn preflight(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let origin = request_origin(&headers);
    let RequestOrigin::Web(_) = origin else {
        let mut resp = text(
            StatusCode::FORBIDDEN,
            "a CORS preflight needs the Origin of a page registered for a site",
        );
        add_cors(&mut resp, &origin, false);
        return resp;
    };
    let registered = origin_registered(&app, &origin).await;
    let mut resp = if registered {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        h.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type"),
        );
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        resp
    } else {
        let RequestOrigin::Web(o) = &origin else {
            return StatusCode::FORBIDDEN.into_response();
        };
        text(
            StatusCode::FORBIDDEN,
            format!("origin {o} is not registered for any site; add it with `tagwatch site add --origin {o}`"),
        )
    };
    add_cors(&mut resp, &origin, registered);
    resp
}

// ----------------------------------------------------------------- ingest

/// Which ingest endpoint a request came to.
#[derive(Debug, Clone, Copy)]
enum Endpoint<'a> {
    /// `POST /r`: the monitor's report batches.
    Reports,
    /// `POST /csp/KEY`: the browser's CSP violation reports for one site.
    Csp(&'a str),
}

async fn post_reports(State(app): State<Arc<AppState>>, req: Request) -> Response {
    ingest_request(&app, req, Endpoint::Reports).await
}

async fn post_csp(
    State(app): State<Arc<AppState>>,
    Path(key): Path<String>,
    req: Request,
) -> Response {
    ingest_request(&app, req, Endpoint::Csp(&key)).await
}

async fn ingest_request(app: &Arc<AppState>, req: Request, endpoint: Endpoint<'_>) -> Response {
    let received_ms = now_ms();
    let origin = request_origin(req.headers());
    let (mut resp, registered) = match accept(app, req, &origin, received_ms, endpoint).await {
        Ok(()) => (StatusCode::NO_CONTENT.into_response(), Some(true)),
        Err((refusal, registered)) => {
            app.events.refused(
                endpoint_name(endpoint),
                refusal.code,
                refusal.status,
                &refusal.reason,
            );
            (app.answer(refusal), registered)
        }
    };
    let registered = match registered {
        Some(known) => known,
        None => origin_registered(app, &origin).await,
    };
    add_cors(&mut resp, &origin, registered);
    resp
}

fn endpoint_name(endpoint: Endpoint<'_>) -> &'static str {
    match endpoint {
        Endpoint::Reports => "reports",
        Endpoint::Csp(_) => "csp",
    }
}

/// The address the client limit counts against: the TCP peer, or with
/// `--behind-proxy` the last `X-Forwarded-For` entry (the one the proxy
/// in front of the collector appended).
fn client_ip(app: &AppState, req: &Request) -> Option<IpAddr> {
    if app.behind_proxy {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Accepts one request, or refuses it and says whether the origin is known
/// to be registered (`None`: not looked up yet).
async fn accept(
    app: &Arc<AppState>,
    req: Request,
    origin: &RequestOrigin,
    received_ms: i64,
    endpoint: Endpoint<'_>,
) -> Result<(), (Refusal, Option<bool>)> {
    let unknown = |r: Refusal| (r, None);
    // The site limit shares a site's budget among client addresses; one
    // whose address is unknown (not TCP) counts as a single client.
    let client = client_ip(app, &req).map(client_key).unwrap_or_default();
    // Cheapest first: a flooding client is refused before its body is read.
    if !client.is_empty() {
        if let Err(wait) = app.client_limiter.check([client.as_str()], Instant::now()) {
            let secs = retry_after_secs(wait);
            return Err(unknown(
                Refusal::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many reports from this address; retry in {secs} s"),
                )
                .code("rate_limited_client")
                .retry_after(secs),
            ));
        }
    }
    check_content_type(req.headers(), endpoint).map_err(unknown)?;
    let encoding = content_encoding(req.headers()).map_err(unknown)?;
    let check = origin_check(origin, app.strict_origin).map_err(|r| (r, Some(false)))?;
    // Only a CSP report takes the user agent from the request (a report of
    // ours carries its own): not copied for the others.
    let user_agent = match endpoint {
        Endpoint::Csp(_) => header_user_agent(req.headers()),
        Endpoint::Reports => String::new(),
    };
    let body = read_body(req, app.body_timeout).await.map_err(unknown)?;
    let parsed =
        decode_and_parse(endpoint, encoding, body, &user_agent, received_ms).map_err(unknown)?;

    let mut lookups: Vec<(String, Option<Arc<[String]>>)> = Vec::with_capacity(parsed.sites.len());
    let mut missing: Vec<String> = Vec::new();
    for site in &parsed.sites {
        match app.sites.get(site) {
            Some(origins) => lookups.push((site.clone(), Some(origins))),
            None => missing.push(site.clone()),
        }
    }
    if !missing.is_empty() {
        let (store, sites) = (app.store.clone(), app.sites.clone());
        let found = blocking(move || {
            missing
                .into_iter()
                .map(|site| sites.fetch(&*store, &site).map(|o| (site, o)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(unknown)?;
        lookups.extend(found);
        // In key order, as the sites are checked.
        lookups.sort_by(|a, b| a.0.cmp(&b.0));
    }
    for (site, origins) in &lookups {
        let Some(origins) = origins else {
            return Err(unknown(
                Refusal::new(
                    StatusCode::FORBIDDEN,
                    format!("unknown site key {site:?}; register the site with `tagwatch site add --origin ORIGIN`"),
                )
                .code("unknown_site"),
            ));
        };
        let allowed = |o: &str| origins.iter().any(|p| crate::origin::matches(p, o));
        match &check {
            OriginCheck::Header(origin) => {
                if !allowed(origin) {
                    return Err(unknown(
                        Refusal::new(
                            StatusCode::FORBIDDEN,
                            format!("origin {origin} is not registered for site {site:?}"),
                        )
                        .code("origin"),
                    ));
                }
            }
            OriginCheck::PageUrl => {
                let pages = parsed.page_origins.iter().filter(|(s, _)| s == site);
                for (_, page) in pages {
                    if !allowed(page) {
                        return Err(unknown(
                            Refusal::new(
                                StatusCode::FORBIDDEN,
                                format!(
                                    "no Origin header (or null), and the report page's origin {page:?} \
                                     is not registered for site {site:?}"
                                ),
                            )
                            .code("origin"),
                        ));
                    }
                }
            }
        }
    }

    if let Err(refused) = app.limiter.check(
        parsed.sites.iter().map(String::as_str),
        &client,
        Instant::now(),
    ) {
        let secs = retry_after_secs(refused.wait);
        let refusal = if refused.over_pace {
            Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many reports for this site, and this address sends more than a \
                     visitor would; retry in {secs} s"
                ),
            )
            .code("rate_limited_site_share")
        } else {
            Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many reports for this site; retry in {secs} s"),
            )
            .code("rate_limited_site")
        };
        return Err((refusal.retry_after(secs), Some(true)));
    }

    let batch = parsed.batch;
    if batch.findings.is_empty() && batch.health.is_empty() && batch.inventories.is_empty() {
        // A CSP batch of other report types, or of `inline` violations only.
        return Ok(());
    }
    let counts = BatchCounts::of(&batch);
    match app.writer.write(batch).await {
        Ok(()) => {
            app.events
                .accepted(endpoint_name(endpoint), &parsed.sites, &counts);
            Ok(())
        }
        Err(WriteError::Stopped) => Err((
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the collector is shutting down; retry later",
            )
            .code("shutting_down")
            .retry_after(5),
            Some(true),
        )),
        Err(e @ WriteError::Store(_)) => Err((Refusal::unavailable(e), Some(true))),
    }
}

fn check_content_type(headers: &HeaderMap, endpoint: Endpoint<'_>) -> Result<(), Refusal> {
    let (accepted_types, accepted): (&[&str], &str) = match endpoint {
        Endpoint::Reports => (
            &ACCEPTED_TYPES,
            "send text/plain, application/json or application/reports+json",
        ),
        Endpoint::Csp(_) => (
            &CSP_TYPES,
            "send application/reports+json, application/csp-report or application/json",
        ),
    };
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("missing Content-Type; {accepted}"),
        )
        .code("content_type"));
    };
    let raw = String::from_utf8_lossy(value.as_bytes());
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if accepted_types.contains(&essence.as_str()) {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type {:?}; {accepted}",
                raw.chars().take(100).collect::<String>()
            ),
        )
        .code("content_type"))
    }
}

/// A request body's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, Refusal> {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Ok(Encoding::Identity);
    };
    let raw = String::from_utf8_lossy(value.as_bytes())
        .trim()
        .to_ascii_lowercase();
    let encoding = match raw.as_str() {
        "" | "identity" => Some(Encoding::Identity),
        "gzip" | "x-gzip" => Some(Encoding::Gzip),
        "deflate" => Some(Encoding::Deflate),
        "br" => Some(Encoding::Brotli),
        _ => None,
    };
    match encoding {
        Some(e) if values.next().is_none() => Ok(e),
        _ => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Encoding {:?}; send the body as is, or with one of gzip, deflate or br",
                raw.chars().take(60).collect::<String>()
            ),
        )
        .code("encoding")),
    }
}

/// A body read from the wire: decompressed, then parsed, validated and
/// redacted by its endpoint's reader.
fn decode_and_parse(
    endpoint: Endpoint<'_>,
    encoding: Encoding,
    body: Vec<u8>,
    user_agent: &str,
    received_ms: i64,
) -> Result<crate::ingest::Parsed, Refusal> {
    let body = decode(body, encoding)?;
    match endpoint {
        Endpoint::Reports => crate::ingest::parse(&body, received_ms),
        Endpoint::Csp(key) => {
            crate::csp::parse(key, &body, user_agent, received_ms).map(|(parsed, _)| parsed)
        }
    }
    .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.0).code("malformed"))
}

/// The request's `User-Agent` (lossy UTF-8; empty without one).
fn header_user_agent(headers: &HeaderMap) -> String {
    headers
        .get(USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// What `POST /r` (`csp_site` `None`) or `POST /csp/KEY` does with a body
/// before anything that needs the store: the `Content-Encoding` of
/// `headers` checked and undone (never more than [`MAX_DECODED`] bytes),
/// the body read with its endpoint's reader, validated and redacted. `Err`
/// is the status and the reason the client would be answered with. The
/// route runs the same steps; the fuzz targets (`fuzz/`) call this.
pub fn read_request_body(
    csp_site: Option<&str>,
    headers: &HeaderMap,
    body: Vec<u8>,
    received_ms: i64,
) -> Result<crate::ingest::Parsed, (StatusCode, String)> {
    let endpoint = csp_site.map_or(Endpoint::Reports, Endpoint::Csp);
    let user_agent = header_user_agent(headers);
    content_encoding(headers)
        .and_then(|encoding| decode_and_parse(endpoint, encoding, body, &user_agent, received_ms))
        .map_err(|r| (r.status, r.reason))
}

/// The body decompressed, refusing more than [`MAX_DECODED`] bytes without
/// ever holding more than that (a small body can inflate enormously).
fn decode(body: Vec<u8>, encoding: Encoding) -> Result<Vec<u8>, Refusal> {
    use std::io::Read;
    let (reader, name): (Box<dyn Read + '_>, &str) = match encoding {
        Encoding::Identity => return Ok(body),
        Encoding::Gzip => (
            Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
            "gzip",
        ),
        Encoding::Deflate => (
            Box::new(flate2::read::ZlibDecoder::new(&body[..])),
            "deflate (zlib)",
        ),
        Encoding::Brotli => (
            Box::new(brotli_decompressor::Decompressor::new(&body[..], 4096)),
            "br",
        ),
    };
    let limit = u64::try_from(MAX_DECODED)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(MAX_DECODED));
    #[allow(clippy::disallowed_methods)] // Bounded: MAX_DECODED + 1 bytes.
    reader.take(limit).read_to_end(&mut out).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("Content-Encoding {name}, but the body does not decompress: {e}"),
        )
        .code("malformed")
    })?;
    if out.len() > MAX_DECODED {
        let mut r = Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body larger than {MAX_DECODED} bytes ({} KiB) once decompressed; send fewer reports per request",
                MAX_DECODED / 1024
            ),
        )
        .code("too_large");
        r.close = true;
        return Err(r);
    }
    Ok(out)
}

fn too_large() -> Refusal {
    let mut r = Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body larger than {MAX_BODY} bytes (64 KiB); send fewer reports per request"),
    )
    .code("too_large");
    r.close = true;
    r
}

/// Reads the body within `timeout` (from the first call: a trickling body
/// does not extend it), refusing more than [`MAX_BODY`] bytes without ever
/// holding more than that (`http_body_util::Limited`).
async fn read_body(req: Request, timeout: Duration) -> Result<Vec<u8>, Refusal> {
    let deadline = tokio::time::Instant::now() + timeout;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Bytes received, the refused ones too: what `discard` counts.
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = {
        let seen = seen.clone();
        req.into_body().map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                seen.fetch_add(data.len(), Ordering::Relaxed);
            }
            frame
        })
    };
    let mut body = Limited::new(counted, MAX_BODY);
    if let Some(len) = declared {
        if len > MAX_BODY as u64 {
            if len <= MAX_DISCARD as u64 {
                discard(&mut body, &seen, deadline).await;
            }
            return Err(too_large());
        }
    }
    let capacity = declared
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4096)
        .min(MAX_BODY);
    let mut buf = Vec::with_capacity(capacity);
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                // The rest of the body may never come: close the connection.
                let mut r = Refusal::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("body not received within {} s", timeout.as_secs()),
                )
                .code("timeout");
                r.close = true;
                return Err(r);
            }
            Ok(None) => break,
            Ok(Some(Err(e))) if e.is::<LengthLimitError>() => {
                discard(&mut body, &seen, deadline).await;
                return Err(too_large());
            }
            Ok(Some(Err(e))) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("could not read the body: {e}"),
                )
                .code("malformed"))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// Reads and drops what is left of a refused body, up to [`MAX_DISCARD`]
/// bytes received in all, so the client sees the answer instead of a
/// reset.
async fn discard<B>(body: &mut B, seen: &AtomicUsize, deadline: tokio::time::Instant)
where
    B: http_body::Body + Unpin,
{
    while seen.load(Ordering::Relaxed) <= MAX_DISCARD {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            // More refused data (each frame over the limit is an error).
            Ok(Some(_)) => {}
            _ => return,
        }
    }
}

// ----------------------------------------------------------------- config

#[derive(Serialize)]
struct ConfigAnswer {
    sample: f64,
    enabled: bool,
}

/// `GET /config/KEY`: the snippet's settings for a site. Public (the key is
/// in the page anyway) and cacheable for 5 minutes.
async fn get_config(State(app): State<Arc<AppState>>, Path(key): Path<String>) -> Response {
    let store = app.store.clone();
    let lookup_key = key.clone();
    let lookup = async move {
        if crate::keys::is_site_key(&lookup_key) {
            blocking(move || store.site_config(&lookup_key)).await
        } else {
            Ok(None)
        }
    };
    let mut resp = match lookup.await {
        Ok(Some(config)) => {
            let mut resp = json(&ConfigAnswer {
                sample: config.sample,
                enabled: config.enabled,
            });
            resp.headers_mut().insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            resp
        }
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            format!(
                "unknown site key {:?}",
                key.chars().take(64).collect::<String>()
            ),
        ),
        Err(refusal) => app.answer(refusal),
    };
    resp.headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    resp
}

// -------------------------------------------------------------------- api

fn is_vendor_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return false;
    };
    let value = value.as_bytes();
    let Some((scheme, credentials)) = value.split_first_chunk::<7>() else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(b"Bearer ") {
        return false;
    }
    ct_eq(credentials.trim_ascii(), token.as_bytes())
}

fn unauthorized(headers: &HeaderMap) -> Response {
    let reason = if headers.contains_key(AUTHORIZATION) {
        "wrong admin token"
    } else {
        "missing Authorization: Bearer TOKEN (the collector's TAGWATCH_ADMIN_TOKEN)"
    };
    let mut resp = text(StatusCode::UNAUTHORIZED, reason);
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tagwatch\""),
    );
    resp
}

#[derive(Debug, Default, Deserialize)]
struct ApiParams {
    site: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    vendor: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    page: Option<String>,
    page_view: Option<String>,
    category: Option<String>,
    order: Option<String>,
    release: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

struct Common {
    site: String,
    since: Option<String>,
    until: Option<String>,
    /// `release=`: only that release's reports.
    release: Option<String>,
    limit: u32,
}

/// A time parameter as the store's ISO 8601, or why it is not one.
fn time_param(name: &str, value: Option<String>) -> Result<Option<String>, String> {
    match non_empty(value) {
        None => Ok(None),
        Some(s) => match parse_instant(&s) {
            Some(ms) => Ok(Some(iso_from_ms(ms))),
            None => Err(format!(
                "{name}: {s:?} is not a time; use ISO 8601 (2024-05-01T12:00:00Z) or unix milliseconds"
            )),
        },
    }
}

/// Auth, `site`, `since` and `limit`, shared by the read endpoints; also
/// checks the site exists.
async fn common(
    app: &Arc<AppState>,
    headers: &HeaderMap,
    params: &Result<Query<ApiParams>, QueryRejection>,
) -> Result<Common, Response> {
    if !authorized(headers, &app.admin_token) {
        return Err(unauthorized(headers));
    }
    let params = match params {
        Ok(Query(p)) => p,
        Err(e) => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("bad query string: {}", e.body_text()),
            ))
        }
    };
    let bad = |msg: String| text(StatusCode::BAD_REQUEST, msg);
    let Some(site) = non_empty(params.site.clone()) else {
        return Err(bad("missing `site` query parameter (the site key)".into()));
    };
    let since = time_param("since", params.since.clone()).map_err(bad)?;
    let until = time_param("until", params.until.clone()).map_err(bad)?;
    let release = crate::release::param("release", params.release.clone()).map_err(bad)?;
    let limit = match non_empty(params.limit.clone()) {
        None => DEFAULT_LIMIT,
        Some(s) => match s.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(bad(format!(
                    "limit: expected a number from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    let store = app.store.clone();
    let key = site.clone();
    let lookup = async move {
        if crate::keys::is_site_key(&key) {
            blocking(move || store.site_origins(&key)).await
        } else {
            Ok(None)
        }
    };
    match lookup.await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(text(
                StatusCode::NOT_FOUND,
                format!("unknown site key {site:?}"),
            ))
        }
        Err(refusal) => return Err(app.answer(refusal)),
    }
    Ok(Common {
        site,
        since,
        until,
        release,
        limit,
    })
}

#[derive(Serialize)]
struct FindingsAnswer {
    findings: Vec<FindingRow>,
}

#[derive(Serialize)]
struct SitesAnswer {
    sites: Vec<SiteInfo>,
}

/// `GET /api/sites`: every registered site, for the dashboard's site
/// selector (as `tagwatch site list`).
async fn get_sites(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &app.admin_token) {
        return unauthorized(&headers);
    }
    let store = app.store.clone();
    match blocking(move || store.list_sites()).await {
        Ok(sites) => json(&SitesAnswer { sites }),
        Err(refusal) => app.answer(refusal),
    }
}

#[derive(Serialize)]
struct HealthAnswer {
    health: Vec<HealthRow>,
}

async fn get_findings(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<ApiParams>, QueryRejection>,
) -> Response {
    let c = match common(&app, &headers, &params).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let p = params.map(|Query(p)| p).unwrap_or_default();
    let bad = |msg: String| text(StatusCode::BAD_REQUEST, msg);
    let list = |v: Option<String>| -> Vec<String> {
        non_empty(v)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let kinds = list(p.kind);
    if let Some(k) = kinds.iter().find(|k| FindingKind::parse(k).is_none()) {
        let all: Vec<&str> = FindingKind::all().map(FindingKind::as_str).collect();
        return bad(format!(
            "type: {k:?} is not a finding type; one of {}",
            all.join(", ")
        ));
    }
    let vendors = list(p.vendor);
    if let Some(v) = vendors.iter().find(|v| !is_vendor_id(v)) {
        return bad(format!(
            "vendor: {v:?} is not a vendor id (lower-case letters, digits, '_' and '-')"
        ));
    }
    let category = non_empty(p.category);
    if let Some(c) = &category {
        if !["necessary", "functional", "analytics", "marketing"].contains(&c.as_str()) {
            return bad(format!(
                "category: {c:?} is not one of necessary, functional, analytics, marketing"
            ));
        }
    }
    let page_view = non_empty(p.page_view);
    if let Some(pv) = &page_view {
        if pv.len() != 16 || !pv.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad(format!("page_view: {pv:?} is not 16 hex characters"));
        }
    }
    let newest_first = match non_empty(p.order).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return bad(format!("order: {other:?}; use asc (oldest first) or desc")),
    };
    let page = non_empty(p.page);
    if page.as_deref().is_some_and(|p| p.contains('\0')) {
        return bad("page: contains a NUL character (U+0000); no stored page has one".into());
    }
    let q = FindingsQuery {
        site: c.site,
        kinds,
        vendors,
        since: c.since,
        until: c.until,
        page,
        page_view,
        category,
        release: c.release,
        newest_first,
        limit: c.limit,
    };
    let store = app.store.clone();
    match blocking(move || store.findings(&q)).await {
        Ok(findings) => json(&FindingsAnswer { findings }),
        Err(refusal) => app.answer(refusal),
    }
}

#[derive(Serialize)]
struct ReleasesAnswer {
    releases: Vec<ReleaseInfo>,
}

/// `GET /api/releases?site=KEY`: the site's releases, the first seen
/// first (the dashboard's release pickers).
async fn get_releases(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<ApiParams>, QueryRejection>,
) -> Response {
    let c = match common(&app, &headers, &params).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let store = app.store.clone();
    match blocking(move || store.releases(&c.site)).await {
        Ok(releases) => json(&ReleasesAnswer { releases }),
        Err(refusal) => app.answer(refusal),
    }
}

/// Releases named in a diff's refusal: enough to spot a typo.
const SHOWN_RELEASES: usize = 10;

/// `GET /api/diff?site=KEY&from=R1&to=R2`: what changed from one release
/// to another (`release::diff`).
async fn get_diff(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<ApiParams>, QueryRejection>,
) -> Response {
    let c = match common(&app, &headers, &params).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let p = params.map(|Query(p)| p).unwrap_or_default();
    let bad = |msg: String| text(StatusCode::BAD_REQUEST, msg);
    let mut ends = Vec::new();
    for (name, value) in [("from", p.from), ("to", p.to)] {
        match crate::release::param(name, value) {
            Ok(Some(r)) => ends.push(r),
            Ok(None) => {
                return bad(format!(
                "missing `{name}` query parameter (a release of the site, as its reports name it)"
            ))
            }
            Err(msg) => return bad(msg),
        }
    }
    let [from, to] = <[String; 2]>::try_from(ends).unwrap_or_default();
    let store = app.store.clone();
    let (site, ends) = (c.site.clone(), [from.clone(), to.clone()]);
    let max = crate::release::MAX_DIFF_NAMES;
    // A release is known from the site's release list or from its reports
    // themselves: with `--events` the reports are readable in ClickHouse a
    // moment before the control plane has listed their release (it is
    // recorded after their commit), and a release whose findings
    // `/api/findings` shows must not be refused here. So the list first,
    // then the profiles of releases it lacks (a release whose reports name
    // it neither is refused before anything else is read), then the rest.
    let answers = blocking(move || {
        let known = store.releases(&site)?;
        let listed = |i: usize| {
            ends.get(i)
                .is_some_and(|r| known.iter().any(|k| &k.release == r))
        };
        let stored = |p: &tagwatch_store::ReleaseProfile| p.page_views > 0 || !p.types.is_empty();
        let order = if listed(0) && !listed(1) {
            [1, 0]
        } else {
            [0, 1]
        };
        let mut profiles = Vec::with_capacity(2);
        for i in order {
            let r = ends.get(i).map_or("", String::as_str);
            let profile = store.release_profile(&site, r, max)?;
            if !listed(i) && !stored(&profile) {
                return Ok(Err((i, known)));
            }
            profiles.push((i, profile));
        }
        profiles.sort_by_key(|(i, _)| *i);
        Ok(Ok(profiles))
    })
    .await;
    let (a, b) = match answers {
        Ok(Ok(profiles)) => {
            let [(_, a), (_, b)]: [(usize, tagwatch_store::ReleaseProfile); 2] =
                profiles.try_into().unwrap_or_default();
            (a, b)
        }
        Ok(Err((i, known))) => {
            let (name, r) = if i == 0 { ("from", &from) } else { ("to", &to) };
            let latest: Vec<String> = known
                .iter()
                .rev()
                .take(SHOWN_RELEASES)
                .map(|k| format!("{:?}", k.release))
                .collect();
            let listed = if latest.is_empty() {
                "it has no reports naming a release".to_owned()
            } else {
                format!("its latest: {}", latest.join(", "))
            };
            return bad(format!(
                "{name}: no report of site {} names release {:?} ({listed})",
                c.site,
                tagwatch_core::prefix(r, 40)
            ));
        }
        Err(refusal) => return app.answer(refusal),
    };
    json(&crate::release::diff(&c.site, (&from, &a), (&to, &b)))
}

/// Most pages listed by `GET /api/stats`.
const STATS_MAX_PAGES: u32 = 100;

const CATEGORIES: [&str; 4] = ["necessary", "functional", "analytics", "marketing"];

fn tallies(name: &str, rows: &[Tally]) -> Value {
    Value::Array(
        rows.iter()
            .map(|t| json!({name: t.key, "findings": t.findings, "occurrences": t.occurrences}))
            .collect(),
    )
}

/// The `GET /api/stats` answer.
pub(crate) fn stats_answer(
    site: &str,
    since: Option<&str>,
    until: Option<&str>,
    release: Option<&str>,
    s: &Stats,
) -> Value {
    let mut by_source: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    let mut by_granted: std::collections::BTreeMap<Vec<&str>, i64> =
        std::collections::BTreeMap::new();
    let mut by_category = [[0i64; 3]; 4];
    for c in &s.consent {
        let source = c.source.clone().unwrap_or_else(|| "unknown".to_owned());
        *by_source.entry(source).or_default() += c.findings;
        let granted: Vec<&str> = CATEGORIES
            .iter()
            .zip(c.categories)
            .filter(|(_, g)| *g == Some(true))
            .map(|(name, _)| *name)
            .collect();
        *by_granted.entry(granted).or_default() += c.findings;
        for (slot, state) in by_category.iter_mut().zip(c.categories) {
            let i = match state {
                Some(true) => 0,
                Some(false) => 1,
                None => 2,
            };
            if let Some(n) = slot.get_mut(i) {
                *n += c.findings;
            }
        }
    }
    let mut sources: Vec<(String, i64)> = by_source.into_iter().collect();
    sources.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut granted: Vec<(Vec<&str>, i64)> = by_granted.into_iter().collect();
    granted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let categories: serde_json::Map<String, Value> = CATEGORIES
        .iter()
        .zip(by_category)
        .map(|(name, [g, d, u])| {
            (
                (*name).to_owned(),
                json!({"granted": g, "denied": d, "unknown": u}),
            )
        })
        .collect();
    json!({
        "site": site,
        "since": since,
        "until": until,
        "release": release,
        "findings": s.total.findings,
        "occurrences": s.total.occurrences,
        "page_views": s.page_views,
        "by_type": tallies("type", &s.by_type),
        "by_vendor": tallies("vendor", &s.by_vendor),
        "by_page": tallies("page", &s.by_page),
        "by_day": tallies("day", &s.by_day),
        "consent": {
            "by_source": sources.iter().map(|(k, n)| json!({"source": k, "findings": n})).collect::<Vec<_>>(),
            "by_category": categories,
            "by_granted": granted.iter().map(|(k, n)| json!({"granted": k, "findings": n})).collect::<Vec<_>>(),
        },
    })
}

async fn get_stats(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<ApiParams>, QueryRejection>,
) -> Response {
    let c = match common(&app, &headers, &params).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let q = StatsQuery {
        site: c.site.clone(),
        since: c.since.clone(),
        until: c.until.clone(),
        release: c.release.clone(),
        max_pages: STATS_MAX_PAGES,
    };
    let store = app.store.clone();
    match blocking(move || store.stats(&q)).await {
        Ok(stats) => json(&stats_answer(
            &c.site,
            c.since.as_deref(),
            c.until.as_deref(),
            c.release.as_deref(),
            &stats,
        )),
        Err(refusal) => app.answer(refusal),
    }
}

async fn get_health(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<ApiParams>, QueryRejection>,
) -> Response {
    let c = match common(&app, &headers, &params).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let q = HealthQuery {
        site: c.site,
        since: c.since,
        limit: c.limit,
    };
    let store = app.store.clone();
    match blocking(move || store.health(&q)).await {
        Ok(health) => json(&HealthAnswer { health }),
        Err(refusal) => app.answer(refusal),
    }
}

// --------------------------------------------------------------- inventory

#[derive(Serialize)]
pub(crate) struct Declared {
    script_kb: u32,
    requests: u32,
    source: &'static str,
}

#[derive(Serialize)]
pub(crate) struct PerPage {
    requests: f64,
    script_requests: f64,
    transfer_bytes: f64,
    encoded_bytes: f64,
    duration_ms: f64,
}

/// A cookie name seen, with what the catalog says of it.
#[derive(Serialize)]
pub(crate) struct CookieDetail {
    pub name: String,
    /// Catalog purpose (`messenger`, `tracking`, …); `null` when no rule matches.
    pub purpose: Option<&'static str>,
    /// Consent category that purpose needs by default; `null` for none or unknown.
    pub category: Option<&'static str>,
    /// Documented lifetime; `null` for session or unknown.
    pub lifetime_days: Option<u32>,
}

/// A host data went to, with its region of processing.
#[derive(Serialize)]
pub(crate) struct Destination {
    pub host: String,
    pub region: Option<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct HostPerPage {
    requests: f64,
    transfer_bytes: f64,
}

/// Per page view averages against the declared weight; `true` only when
/// the measured average is larger. Bytes are lower bounds (Resource Timing
/// reads 0 without Timing-Allow-Origin), so `false` proves nothing.
#[derive(Serialize)]
pub(crate) struct OverDeclared {
    script_requests: bool,
    bytes: bool,
}

#[derive(Serialize)]
pub(crate) struct VendorAnswer {
    pub vendor: String,
    pub name: Option<&'static str>,
    pub owner: Option<&'static str>,
    pub category: Option<&'static str>,
    pub page_views: i64,
    pub requests: i64,
    pub script_requests: i64,
    pub transfer_bytes: i64,
    pub encoded_bytes: i64,
    pub duration_ms: i64,
    pub hosts: Vec<String>,
    pub regions: Vec<String>,
    pub cookies: Vec<String>,
    pub cookie_details: Vec<CookieDetail>,
    pub destinations: Vec<Destination>,
    pub pages: Vec<String>,
    pub declared: Option<Declared>,
    pub per_page: PerPage,
    pub over_declared: Option<OverDeclared>,
}

#[derive(Serialize)]
pub(crate) struct HostAnswer {
    pub host: String,
    pub page_views: i64,
    pub requests: i64,
    pub script_requests: i64,
    pub transfer_bytes: i64,
    pub encoded_bytes: i64,
    pub duration_ms: i64,
    pub per_page: HostPerPage,
}

impl VendorAnswer {
    pub fn per_page_requests(&self) -> f64 {
        self.per_page.requests
    }

    pub fn per_page_transfer_bytes(&self) -> f64 {
        self.per_page.transfer_bytes
    }
}

impl HostAnswer {
    pub fn per_page_requests(&self) -> f64 {
        self.per_page.requests
    }

    pub fn per_page_transfer_bytes(&self) -> f64 {
        self.per_page.transfer_bytes
    }
}

#[derive(Serialize)]
pub(crate) struct InventoryAnswer {
    pub page_views: i64,
    pub vendors: Vec<VendorAnswer>,
    pub unclassified: Vec<HostAnswer>,
}

/// `total / n`, two decimals.
fn mean(total: i64, n: i64) -> f64 {
    if n <= 0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let m = total as f64 / n as f64;
    (m * 100.0).round() / 100.0
}

pub(crate) fn inventory_answer(totals: InventoryTotals) -> InventoryAnswer {
    let vendors = totals
        .vendors
        .into_iter()
        .map(|v| {
            let known = tagwatch_core::catalog::vendor(&v.vendor);
            let info = known.and_then(|c| c.info());
            let cookie_details = v
                .cookies
                .iter()
                .map(|name| {
                    let rule = known.and_then(|k| k.cookie(name));
                    CookieDetail {
                        name: name.clone(),
                        purpose: rule.map(|(_, p)| p.name),
                        category: rule.and_then(|(_, p)| p.consent).map(|c| c.as_str()),
                        lifetime_days: rule.and_then(|(r, _)| r.lifetime_days),
                    }
                })
                .collect();
            let destinations = v
                .hosts
                .iter()
                .map(|host| Destination {
                    host: host.clone(),
                    region: known.and_then(|k| k.region(host)),
                })
                .collect();
            let Usage {
                requests,
                script_requests,
                transfer_bytes,
                encoded_bytes,
                duration_ms,
            } = v.usage;
            let per_page = PerPage {
                requests: mean(requests, v.page_views),
                script_requests: mean(script_requests, v.page_views),
                transfer_bytes: mean(transfer_bytes, v.page_views),
                encoded_bytes: mean(encoded_bytes, v.page_views),
                duration_ms: mean(duration_ms, v.page_views),
            };
            let declared = info.and_then(|i| i.weight.as_ref()).map(|w| Declared {
                script_kb: w.script_kb,
                requests: w.requests,
                source: w.source,
            });
            let over_declared = declared.as_ref().map(|d| OverDeclared {
                script_requests: per_page.script_requests > f64::from(d.requests),
                bytes: per_page.transfer_bytes > f64::from(d.script_kb) * 1024.0,
            });
            VendorAnswer {
                name: info.map(|i| i.name),
                owner: info.map(|i| i.owner),
                category: info.map(|i| i.category),
                vendor: v.vendor,
                page_views: v.page_views,
                requests,
                script_requests,
                transfer_bytes,
                encoded_bytes,
                duration_ms,
                hosts: v.hosts,
                regions: v.regions,
                cookies: v.cookies,
                cookie_details,
                destinations,
                pages: v.pages,
                declared,
                per_page,
                over_declared,
            }
        })
        .collect();
    let unclassified = totals
        .unclassified
        .into_iter()
        .map(|h| HostAnswer {
            per_page: HostPerPage {
                requests: mean(h.usage.requests, h.page_views),
                transfer_bytes: mean(h.usage.transfer_bytes, h.page_views),
            },
            host: h.host,
            page_views: h.page_views,
            requests: h.usage.requests,
            script_requests: h.usage.script_requests,
            transfer_bytes: h.usage.transfer_bytes,
            encoded_bytes: h.usage.encoded_bytes,
            duration_ms: h.usage.duration_ms,
        })
        .collect();
    InventoryAnswer {
        page_views: totals.page_views,
        vendors,
        unclassified,
    }
}

async fn get_inventory(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<ApiParams>, QueryRejection>,
) -> Response {
    let c = match common(&app, &headers, &params).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let q = InventoryQuery {
        site: c.site,
        since: c.since,
        release: c.release,
        max_names: INVENTORY_MAX_NAMES,
        max_hosts: c.limit,
    };
    let store = app.store.clone();
    match blocking(move || store.inventory(&q)).await {
        Ok(totals) => json(&inventory_answer(totals)),
        Err(refusal) => app.answer(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_auth() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "tok"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer tok"));
        assert!(authorized(&h, "tok"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer  tok "));
        assert!(authorized(&h, "tok"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer tok2"));
        assert!(!authorized(&h, "tok"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic tok"));
        assert!(!authorized(&h, "tok"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bear"));
        assert!(!authorized(&h, "tok"));
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h, Endpoint::Reports).is_err());
        for ok in [
            "text/plain;charset=UTF-8",
            "application/json",
            "Application/Reports+JSON ; charset=utf-8",
        ] {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(check_content_type(&h, Endpoint::Reports).is_ok(), "{ok}");
        }
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let r = check_content_type(&h, Endpoint::Reports).expect_err("form");
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn origins_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(request_origin(&h), RequestOrigin::Missing);
        h.insert(ORIGIN, HeaderValue::from_static("null"));
        assert_eq!(request_origin(&h), RequestOrigin::Opaque("null".into()));
        h.insert(ORIGIN, HeaderValue::from_static("https://Shop.example:443"));
        assert_eq!(
            request_origin(&h),
            RequestOrigin::Web("https://shop.example".into())
        );
    }
}
