//! `tagwatch har FILE.har`: audits a browser HAR export offline with the
//! same core engine the in-page monitor runs.
//!
//! The file is read as a stream: `log.entries` is visited element by element
//! (a serde `DeserializeSeed` over a `BufReader`), each entry is cut down to
//! a small summary on the spot (host and path, resource kind, timing, sizes,
//! catalog cookie names) and everything else — bodies (`content.text`),
//! query strings, header and cookie values — is skipped or dropped before the
//! next entry is read. Only the summaries are kept, because entries are not
//! always in time order; they are then replayed in time order:
//!
//! - every HTTP(S) entry → `Engine::request` (WebSocket entries as their
//!   `http(s)` equivalent; CORS preflights and non-HTTP URLs are skipped), at
//!   ms since the earliest `startedDateTime`;
//! - cookies: a simulated cookie jar keyed by (site, name). A request's
//!   `Cookie` header proves its cookies exist when it starts; a response's
//!   `Set-Cookie` adds or (empty value, `Max-Age<=0`, past `Expires`) deletes
//!   when it ends. After each change the engine sees the jar's live names,
//!   as `document.cookie` snapshots. Only names the catalog knows are kept.
//! - consent: `none` (default), `all` (granted at 0) or a JSON object applied
//!   at 0; policy: the contract's `policy` JSON.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::BufReader;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tagwatch_core::catalog;
use tagwatch_core::consent::{Categories, Category, Source};
use tagwatch_core::engine::{Engine, Request};
use tagwatch_core::inventory::{HostUsage, VendorUsage};
use tagwatch_core::policy::Policy;
use tagwatch_core::report::{ConsentSnapshot, Evidence, Finding, FindingType};
use tagwatch_core::{cookie, url};

use super::{bytes, http_equivalent, print, read_side_file, table};
use crate::Failure;

/// What `tagwatch har` was asked (docs/cli.md#tagwatch-har).
#[derive(Debug, Clone)]
pub struct HarArgs {
    /// HAR 1.2 file.
    pub file: String,
    /// Consent in force from the start: `none`, `all` or a JSON object.
    pub consent: String,
    /// A policy JSON file (the `policy` key of `config`).
    pub policy: Option<String>,
    /// The audited page's URL (default: the first document request).
    pub page: Option<String>,
    /// `{"page","entries","findings","inventory"}` as JSON instead of tables.
    pub json: bool,
}

// ------------------------------------------------------------ HAR shapes

/// The parts of a HAR entry the audit reads. Everything else (bodies,
/// timings, cache, post data) is skipped by the deserializer unread.
#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "startedDateTime")]
    started: String,
    time: Option<f64>,
    request: RawRequest,
    #[serde(default)]
    response: RawResponse,
    /// Chrome: `document`, `script`, `xhr`, `fetch`, `image`, `preflight`, …
    #[serde(rename = "_resourceType")]
    resource_type: Option<String>,
}

#[derive(Deserialize)]
struct RawRequest {
    url: String,
    #[serde(default)]
    headers: Vec<RawHeader>,
    #[serde(default)]
    cookies: Vec<RawCookie>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawResponse {
    headers: Vec<RawHeader>,
    cookies: Vec<RawCookie>,
    content: RawContent,
    #[serde(rename = "bodySize")]
    body_size: Option<f64>,
    #[serde(rename = "headersSize")]
    headers_size: Option<f64>,
    #[serde(rename = "_transferSize")]
    transfer_size: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawContent {
    #[serde(rename = "mimeType")]
    mime_type: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct RawCookie {
    name: String,
    #[serde(default)]
    value: String,
    expires: Option<String>,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    title: String,
}

// -------------------------------------------------------------- summary

/// A vendor cookie set or deleted by a response.
#[derive(Debug)]
struct SetCookie {
    site: String,
    name: String,
    live: bool,
    /// Expiry, ms since the epoch, when the header gave one.
    expires: Option<f64>,
}

/// What the audit keeps of one entry.
#[derive(Debug)]
struct Summary {
    /// Position in the file (ties in time keep file order).
    order: usize,
    /// `startedDateTime`, ms since the epoch.
    started: f64,
    duration: f64,
    /// `scheme://host/path`: no query, fragment, port or user info.
    url: String,
    host: String,
    document: bool,
    initiator: &'static str,
    transfer: f64,
    encoded: f64,
    /// Vendor cookies the request carried (live values only).
    sent: Vec<String>,
    set: Vec<SetCookie>,
}

/// Resource Timing `initiatorType` for a Chrome `_resourceType`, or from
/// the response MIME type when there is none. `None`: not a Resource Timing
/// entry (CORS preflights).
fn initiator_of(resource_type: Option<&str>, mime: &str) -> Option<(&'static str, bool)> {
    let it = match resource_type.map(str::to_ascii_lowercase).as_deref() {
        Some("document") => return Some(("navigation", true)),
        Some("preflight") => return None,
        Some("script") => "script",
        Some("stylesheet" | "manifest") => "link",
        Some("image") => "img",
        Some("font") => "css",
        Some("xhr") => "xmlhttprequest",
        Some("fetch") => "fetch",
        Some("ping") => "beacon",
        Some("websocket") => "websocket",
        Some(_) => "other",
        None => {
            let mime = mime.to_ascii_lowercase();
            if mime.contains("javascript") || mime.contains("ecmascript") {
                "script"
            } else if mime.starts_with("text/html") {
                return Some(("navigation", true));
            } else if mime.starts_with("image/") {
                "img"
            } else if mime.starts_with("text/css") {
                "link"
            } else {
                "other"
            }
        }
    };
    Some((it, false))
}

/// Parses an ISO 8601 / RFC 3339 time to ms since the epoch.
fn iso_ms(s: &str) -> Option<f64> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as f64)
}

/// Parses a cookie date (RFC 6265 §5.1.1: tokens in any order) to ms since
/// the epoch: `Wed, 21 Oct 2015 07:28:00 GMT`, `Thu, 01-Jan-1970 00:00:01 GMT`.
fn cookie_date_ms(s: &str) -> Option<f64> {
    let (mut hms, mut day, mut month, mut year) = (None, None, None, None);
    for tok in s
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
    {
        let digits = tok.bytes().all(|b| b.is_ascii_digit());
        if hms.is_none() && tok.contains(':') {
            let mut parts = tok.split(':').map(|p| p.parse::<u8>().ok());
            if let (Some(Some(h)), Some(Some(m)), Some(Some(sec))) =
                (parts.next(), parts.next(), parts.next())
            {
                hms = Some((h, m, sec));
                continue;
            }
        }
        if day.is_none() && digits && (1..=2).contains(&tok.len()) {
            day = tok.parse::<u8>().ok();
            continue;
        }
        if month.is_none() {
            const MONTHS: [&str; 12] = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ];
            let prefix = tok.get(..3).map(str::to_ascii_lowercase);
            if let Some(m) = prefix.and_then(|p| MONTHS.iter().position(|m| *m == p)) {
                month = Some(m);
                continue;
            }
        }
        if year.is_none() && digits && (2..=4).contains(&tok.len()) {
            year = tok.parse::<i32>().ok();
        }
    }
    let mut year = year?;
    if (70..=99).contains(&year) {
        year += 1900;
    } else if (0..=69).contains(&year) {
        year += 2000;
    }
    let month = time::Month::try_from(u8::try_from(month? + 1).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day?).ok()?;
    let (h, m, sec) = hms?;
    let t = date.with_hms(h, m, sec).ok()?.assume_utc();
    Some((t.unix_timestamp() as f64) * 1000.0)
}

/// One `Set-Cookie` line of a response from `host` received at `at` (epoch
/// ms): the cookie, if the catalog knows its name and the browser would
/// accept it for that host.
fn set_cookie(line: &str, host: &str, at: f64) -> Option<SetCookie> {
    let mut parts = line.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let (name, value) = (name.trim(), value.trim().trim_matches('"'));
    if name.is_empty() || catalog::classify_cookie(name).is_none() {
        return None;
    }
    let (mut max_age, mut expires, mut domain) = (None, None, None);
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("max-age") {
            max_age = v.parse::<i64>().ok();
        } else if k.eq_ignore_ascii_case("expires") {
            expires = cookie_date_ms(v);
        } else if k.eq_ignore_ascii_case("domain") && !v.is_empty() {
            domain = Some(v.trim_start_matches('.').to_ascii_lowercase());
        }
    }
    // A browser refuses a Domain the host is not within.
    let cookie_host = match &domain {
        Some(d) if url::host_within(host, d) => d.as_str(),
        Some(_) => return None,
        None => host,
    };
    let expires = match max_age {
        Some(secs) => Some(at + (secs as f64) * 1000.0),
        None => expires,
    };
    let live = !value.is_empty() && expires.is_none_or(|e| e > at);
    Some(SetCookie {
        site: url::site_of(cookie_host).to_owned(),
        name: name.to_owned(),
        live,
        expires,
    })
}

/// Cuts an entry down to its summary; `Ok(None)` for entries the audit
/// skips (non-HTTP URLs, CORS preflights).
fn summarize(entry: RawEntry, order: usize) -> Result<Option<Summary>, String> {
    let started = iso_ms(&entry.started).ok_or_else(|| {
        format!(
            "entry {order}: startedDateTime {:?} is not an ISO 8601 time",
            entry.started
        )
    })?;
    let mime = entry.response.content.mime_type.as_deref().unwrap_or("");
    let Some((initiator, document)) = initiator_of(entry.resource_type.as_deref(), mime) else {
        return Ok(None);
    };
    let target = http_equivalent(&entry.request.url);
    let Some(parts) = url::parse(&target) else {
        return Ok(None);
    };
    let scheme = if target
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("https"))
    {
        "https"
    } else {
        "http"
    };
    let nonneg = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0);
    let r = &entry.response;
    let transfer = nonneg(r.transfer_size)
        .or_else(|| Some(nonneg(r.headers_size)? + nonneg(r.body_size)?))
        .unwrap_or(0.0);

    let mut sent: Vec<String> = Vec::new();
    let cookie_headers: Vec<&RawHeader> = entry
        .request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
        .collect();
    let mut keep = |name: &str| {
        if catalog::classify_cookie(name).is_some() && !sent.iter().any(|s| s == name) {
            sent.push(name.to_owned());
        }
    };
    if cookie_headers.is_empty() {
        entry
            .request
            .cookies
            .iter()
            .filter(|c| !c.value.is_empty())
            .for_each(|c| keep(c.name.trim()));
    } else {
        cookie_headers
            .iter()
            .flat_map(|h| cookie::live_names(&h.value))
            .for_each(&mut keep);
    }

    let received = started + nonneg(entry.time).unwrap_or(0.0);
    let mut set = Vec::new();
    let set_headers: Vec<&RawHeader> = r
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("set-cookie"))
        .collect();
    if set_headers.is_empty() {
        for c in &r.cookies {
            let name = c.name.trim();
            if name.is_empty() || catalog::classify_cookie(name).is_none() {
                continue;
            }
            let expires = c.expires.as_deref().and_then(iso_ms);
            let live = !c.value.is_empty() && expires.is_none_or(|e| e > received);
            set.push(SetCookie {
                site: url::site_of(&parts.host).to_owned(),
                name: name.to_owned(),
                live,
                expires,
            });
        }
    } else {
        for line in set_headers.iter().flat_map(|h| h.value.lines()) {
            set.extend(set_cookie(line, &parts.host, received));
        }
    }
    Ok(Some(Summary {
        order,
        started,
        duration: nonneg(entry.time).unwrap_or(0.0),
        url: format!("{scheme}://{}{}", parts.host, parts.path),
        host: parts.host,
        document,
        initiator,
        transfer,
        encoded: nonneg(r.body_size).unwrap_or(0.0),
        sent,
        set,
    }))
}

// ----------------------------------------------------- streaming reader

/// What the streaming pass collects.
#[derive(Default)]
struct Collected {
    summaries: Vec<Summary>,
    /// Entries read (audited or skipped).
    entries: usize,
    saw_entries: bool,
    first_page_title: Option<String>,
}

struct Root<'a>(&'a mut Collected);
struct Log<'a>(&'a mut Collected);
struct Entries<'a>(&'a mut Collected);
struct Pages<'a>(&'a mut Collected);

impl<'de> DeserializeSeed<'de> for Root<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a HAR object {\"log\": {\"entries\": […]}}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "log" {
                map.next_value_seed(Log(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Log<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Log<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a HAR log object {\"entries\": […]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "entries" => map.next_value_seed(Entries(&mut *self.0))?,
                "pages" => map.next_value_seed(Pages(&mut *self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of HAR entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.saw_entries = true;
        while let Some(entry) = seq.next_element::<RawEntry>()? {
            let order = self.0.entries;
            self.0.entries += 1;
            if let Some(s) = summarize(entry, order).map_err(de::Error::custom)? {
                self.0.summaries.push(s);
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Pages<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Pages<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of HAR pages")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(page) = seq.next_element::<RawPage>()? {
            if self.0.first_page_title.is_none() {
                self.0.first_page_title = Some(page.title);
            }
        }
        Ok(())
    }
}

/// Reads a HAR file in one streaming pass.
fn read_har(path: &str) -> Result<Collected, Failure> {
    let file = File::open(path).map_err(|e| Failure::Usage(format!("cannot open {path}: {e}")))?;
    read_har_from(BufReader::with_capacity(256 * 1024, file), path)
}

/// Reads a HAR document from `input` (called `path` in messages).
fn read_har_from(input: impl std::io::Read, path: &str) -> Result<Collected, Failure> {
    let mut de = serde_json::Deserializer::from_reader(input);
    let mut collected = Collected::default();
    let parsed = Root(&mut collected)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = parsed {
        return Err(match e.classify() {
            serde_json::error::Category::Io => Failure::Usage(format!("cannot read {path}: {e}")),
            _ => Failure::Usage(format!("not a HAR file: {path}: {e}")),
        });
    }
    if !collected.saw_entries {
        return Err(Failure::Usage(format!(
            "not a HAR file: {path}: no log.entries array"
        )));
    }
    Ok(collected)
}

// ---------------------------------------------------------------- audit

/// Parses `--consent`.
fn parse_consent(arg: &str) -> Result<Option<Categories>, Failure> {
    let bad = |why: String| {
        Failure::Usage(format!(
            "--consent {arg}: {why}; expected none, all or a JSON object like {{\"functional\":true,\"analytics\":false}}"
        ))
    };
    match arg.trim() {
        "none" => return Ok(None),
        "all" => {
            let mut c = Categories::default();
            for cat in Category::ALL {
                c.set(cat, Some(true));
            }
            return Ok(Some(c));
        }
        _ => {}
    }
    let doc: serde_json::Value =
        serde_json::from_str(arg).map_err(|e| bad(format!("not JSON ({e})")))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    let mut c = Categories::default();
    for (k, v) in obj {
        let cat = Category::parse(k).ok_or_else(|| {
            bad(format!(
                "unknown category {k:?} (necessary, functional, analytics, marketing)"
            ))
        })?;
        match v {
            serde_json::Value::Bool(b) => c.set(cat, Some(*b)),
            serde_json::Value::Null => {}
            _ => return Err(bad(format!("{k}: expected true, false or null"))),
        }
    }
    Ok(Some(c))
}

/// The result of an audit.
struct Audit {
    page: String,
    entries: usize,
    audited: usize,
    engine: Engine,
}

/// A `Cookie:`-style header of the jar's live names (values are dummies:
/// the engine reads names only and skips empty values).
fn jar_header(jar: &BTreeSet<(String, String)>) -> String {
    let names: BTreeSet<&str> = jar.iter().map(|(_, n)| n.as_str()).collect();
    names
        .into_iter()
        .map(|n| format!("{n}=1"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn audit(
    collected: Collected,
    policy: Policy,
    consent: Option<Categories>,
    page: Option<&str>,
) -> Audit {
    let Collected {
        mut summaries,
        entries,
        first_page_title,
        ..
    } = collected;
    summaries.sort_by(|a, b| a.started.total_cmp(&b.started).then(a.order.cmp(&b.order)));
    let page_entry = summaries.iter().position(|s| s.document);
    let page = match page {
        Some(p) => p.to_owned(),
        None => page_entry
            .and_then(|i| summaries.get(i))
            .map(|s| s.url.clone())
            .or_else(|| first_page_title.filter(|t| url::parse(t).is_some()))
            .or_else(|| summaries.first().map(|s| s.url.clone()))
            .unwrap_or_default(),
    };
    let mut engine = Engine::new(policy, &page);
    if let Some(c) = consent {
        engine.consent(c, Source::Api, 0);
    }
    let t0 = summaries.first().map_or(0.0, |s| s.started);
    // (time since t0, index, phase): 0 = request starts, 1 = response ends.
    let mut events: Vec<(f64, usize, u8)> = Vec::with_capacity(summaries.len() * 2);
    for (i, s) in summaries.iter().enumerate() {
        events.push((s.started - t0, i, 0));
        if !s.set.is_empty() {
            events.push((s.started - t0 + s.duration, i, 1));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));

    let mut jar: BTreeSet<(String, String)> = BTreeSet::new();
    let mut last = 0u64;
    for (t, i, phase) in events {
        let Some(s) = summaries.get(i) else { continue };
        let now = tagwatch_core::engine::ms(t);
        last = last.max(now);
        let mut changed = false;
        if phase == 0 {
            let site = url::site_of(&s.host);
            for name in &s.sent {
                changed |= jar.insert((site.to_owned(), name.clone()));
            }
            if changed {
                engine.cookies(&jar_header(&jar), now);
            }
            let initiator = if s.document && Some(i) != page_entry {
                "iframe"
            } else {
                s.initiator
            };
            engine.request(Request {
                url: &s.url,
                start: t,
                initiator,
                frame: "top",
                transfer: s.transfer,
                encoded: s.encoded,
                duration: s.duration,
            });
        } else {
            for c in &s.set {
                let key = (c.site.clone(), c.name.clone());
                changed |= if c.live {
                    jar.insert(key)
                } else {
                    jar.remove(&key)
                };
            }
            if changed {
                engine.cookies(&jar_header(&jar), now);
            }
            let received = s.started + s.duration;
            for c in s.set.iter().filter(|c| c.live) {
                if let Some(expires) = c.expires {
                    engine.cookie_expiry(&c.name, expires, received, now);
                }
            }
        }
    }
    engine.tick(last);
    Audit {
        page,
        entries,
        audited: summaries.len(),
        engine,
    }
}

// --------------------------------------------------------------- output

/// A finding as the report's `tagwatch-finding` body has it, without the
/// page-view fields.
#[derive(Serialize)]
struct FindingOut<'a> {
    finding: FindingType,
    vendor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<Category>,
    at: u64,
    count: u32,
    evidence: &'a Evidence,
    consent: &'a ConsentSnapshot,
}

impl<'a> From<&'a Finding> for FindingOut<'a> {
    fn from(f: &'a Finding) -> Self {
        FindingOut {
            finding: f.kind,
            vendor: f.vendor,
            category: f.category,
            at: f.at,
            count: f.count,
            evidence: &f.evidence,
            consent: &f.consent,
        }
    }
}

#[derive(Serialize)]
struct Declared {
    script_kb: u32,
    requests: u32,
    source: &'static str,
}

/// Measured against declared, as the collector's `/api/inventory` does.
#[derive(Serialize)]
struct OverDeclared {
    /// More script requests than the declared requests per page.
    script_requests: bool,
    /// More transfer bytes than the declared script weight (a lower bound).
    bytes: bool,
}

#[derive(Serialize)]
struct VendorOut<'a> {
    #[serde(flatten)]
    usage: &'a VendorUsage,
    name: Option<&'static str>,
    owner: Option<&'static str>,
    category: Option<&'static str>,
    /// The catalog's declared weight per page, for comparison.
    declared: Option<Declared>,
    over_declared: Option<OverDeclared>,
}

impl<'a> VendorOut<'a> {
    fn new(usage: &'a VendorUsage) -> Self {
        let info = catalog::vendor(usage.vendor).and_then(|v| v.info());
        let declared = info.and_then(|i| i.weight.as_ref()).map(|w| Declared {
            script_kb: w.script_kb,
            requests: w.requests,
            source: w.source,
        });
        let over_declared = declared.as_ref().map(|d| OverDeclared {
            script_requests: usage.usage.script_requests > d.requests,
            bytes: usage.usage.transfer_bytes > u64::from(d.script_kb) * 1024,
        });
        VendorOut {
            usage,
            name: info.map(|i| i.name),
            owner: info.map(|i| i.owner),
            category: info.map(|i| i.category),
            declared,
            over_declared,
        }
    }

    /// `250 KB script, 2 requests (over: scripts, bytes)` or `-`.
    fn declared_text(&self) -> String {
        let Some(d) = &self.declared else {
            return "-".into();
        };
        let mut text = format!("{} KB script, {} requests", d.script_kb, d.requests);
        if let Some(o) = &self.over_declared {
            let over: Vec<&str> = [(o.script_requests, "scripts"), (o.bytes, "bytes")]
                .iter()
                .filter(|(b, _)| *b)
                .map(|(_, w)| *w)
                .collect();
            if !over.is_empty() {
                text.push_str(&format!(" (over: {})", over.join(", ")));
            }
        }
        text
    }
}

#[derive(Serialize)]
struct InventoryOut<'a> {
    vendors: Vec<VendorOut<'a>>,
    unclassified: &'a [HostUsage],
}

#[derive(Serialize)]
struct ReportOut<'a> {
    page: String,
    entries: usize,
    findings: Vec<FindingOut<'a>>,
    inventory: InventoryOut<'a>,
}

fn report_json(a: &Audit) -> String {
    let inv = a.engine.inventory();
    let out = ReportOut {
        page: url::page_url(&a.page),
        entries: a.entries,
        findings: a.engine.findings().iter().map(FindingOut::from).collect(),
        inventory: InventoryOut {
            vendors: inv.vendors.iter().map(VendorOut::new).collect(),
            unclassified: &inv.unclassified,
        },
    };
    let mut text = serde_json::to_string_pretty(&out).unwrap_or_default();
    text.push('\n');
    text
}

/// One-line evidence, from its wire form (so new evidence kinds print too).
fn evidence_text(e: &Evidence) -> String {
    let v = serde_json::to_value(e).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
    let mut text = match s("kind") {
        "request" => format!("{} {}{}", s("initiator"), s("host"), s("path")),
        "cookie" => format!("cookie {}", s("cookie")),
        "global" => format!("global {}", s("name")),
        "dom" => format!("element {}", s("name")),
        other => format!("{other} {}", v),
    };
    if let Some(region) = v.get("region").and_then(serde_json::Value::as_str) {
        text.push_str(&format!(" [{region}]"));
    }
    if let Some(days) = v.get("days").and_then(serde_json::Value::as_u64) {
        text.push_str(&format!(" ({days} days)"));
    }
    text
}

fn report_text(a: &Audit, file: &str, consent: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!("file:     {file}\n"));
    out.push_str(&format!("page:     {}\n", url::page_url(&a.page)));
    out.push_str(&format!(
        "entries:  {} ({} audited, {} skipped: non-HTTP or CORS preflight)\n",
        a.entries,
        a.audited,
        a.entries.saturating_sub(a.audited)
    ));
    out.push_str(&format!("consent:  {consent}\n\n"));

    let findings = a.engine.findings();
    if findings.is_empty() {
        out.push_str("FINDINGS: none\n");
    } else {
        out.push_str(&format!("FINDINGS ({})\n", findings.len()));
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|f| {
                let mut evidence = evidence_text(&f.evidence);
                if f.count > 1 {
                    evidence.push_str(&format!(" ×{}", f.count));
                }
                vec![
                    f.at.to_string(),
                    f.kind.as_str().into(),
                    f.vendor.into(),
                    f.category.map_or("-", Category::as_str).into(),
                    evidence,
                ]
            })
            .collect();
        out.push_str(&table(
            &["AT ms", "TYPE", "VENDOR", "NEEDS", "EVIDENCE"],
            &rows,
        ));
    }

    let inv = a.engine.inventory();
    out.push_str(&format!("\nVENDORS ({})\n", inv.vendors.len()));
    if !inv.vendors.is_empty() {
        let rows: Vec<Vec<String>> = inv
            .vendors
            .iter()
            .map(|v| {
                let u = &v.usage;
                let decl = VendorOut::new(v).declared_text();
                vec![
                    v.vendor.into(),
                    u.requests.to_string(),
                    u.script_requests.to_string(),
                    bytes(u.transfer_bytes),
                    bytes(u.encoded_bytes),
                    u.duration_ms.to_string(),
                    if v.regions.is_empty() {
                        "-".into()
                    } else {
                        v.regions.join(" ")
                    },
                    decl,
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "VENDOR", "REQUESTS", "SCRIPTS", "TRANSFER", "ENCODED", "TIME ms", "REGIONS",
                "DECLARED",
            ],
            &rows,
        ));
        let width = inv
            .vendors
            .iter()
            .map(|v| v.vendor.chars().count())
            .max()
            .unwrap_or(0);
        for v in &inv.vendors {
            out.push('\n');
            out.push_str(&format!(
                "  {}  hosts:   {}\n",
                super::pad(v.vendor, width),
                v.hosts.join(", ")
            ));
            if !v.cookies.is_empty() {
                out.push_str(&format!(
                    "  {}  cookies: {}\n",
                    super::pad("", width),
                    v.cookies.join(", ")
                ));
            }
        }
    }
    out.push_str(&format!(
        "\nUNCLASSIFIED THIRD PARTIES ({})\n",
        inv.unclassified.len()
    ));
    if !inv.unclassified.is_empty() {
        let rows: Vec<Vec<String>> = inv
            .unclassified
            .iter()
            .map(|h| {
                let u = &h.usage;
                vec![
                    h.host.clone(),
                    u.requests.to_string(),
                    u.script_requests.to_string(),
                    bytes(u.transfer_bytes),
                    bytes(u.encoded_bytes),
                    u.duration_ms.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "HOST", "REQUESTS", "SCRIPTS", "TRANSFER", "ENCODED", "TIME ms",
            ],
            &rows,
        ));
    }
    out
}

/// Runs the audit; `Ok(true)` when there are findings (exit 3).
pub fn run(args: &HarArgs) -> Result<bool, Failure> {
    let consent = parse_consent(&args.consent)?;
    let policy = match &args.policy {
        Some(path) => {
            let text = read_side_file("--policy", path)?;
            serde_json::from_slice::<Policy>(&text)
                .map_err(|e| Failure::Usage(format!("--policy {path}: not a policy object: {e}")))?
        }
        None => Policy::default(),
    };
    if let Some(p) = &args.page {
        if url::parse(p).is_none() {
            return Err(Failure::Usage(format!(
                "--page {p}: expected an absolute http(s) URL"
            )));
        }
    }
    let collected = read_har(&args.file)?;
    let (text, findings) = audit_collected(collected, policy, args, consent);
    print(&text)?;
    Ok(findings)
}

/// The audit of the HAR document `har` as `tagwatch har` with `args` prints
/// it (`args.file` names it; `args.policy` is not read), and whether it has
/// findings. The fuzz target (`fuzz/`) calls this.
pub fn audit_bytes(har: &[u8], args: &HarArgs) -> Result<(String, bool), Failure> {
    let consent = parse_consent(&args.consent)?;
    let collected = read_har_from(har, &args.file)?;
    Ok(audit_collected(collected, Policy::default(), args, consent))
}

fn audit_collected(
    collected: Collected,
    policy: Policy,
    args: &HarArgs,
    consent: Option<Categories>,
) -> (String, bool) {
    let audit = audit(collected, policy, consent, args.page.as_deref());
    let text = if args.json {
        report_json(&audit)
    } else {
        report_text(&audit, &args.file, args.consent.trim())
    };
    (text, !audit.engine.findings().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise;

    #[test]
    fn cookie_dates() {
        assert_eq!(
            cookie_date_ms("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480_000.0)
        );
        assert_eq!(
            cookie_date_ms("Thu, 01-Jan-1970 00:00:01 GMT"),
            Some(1000.0)
        );
        assert_eq!(
            cookie_date_ms("Wednesday, 21-Oct-15 07:28:00 GMT"),
            Some(1_445_412_480_000.0)
        );
        assert_eq!(cookie_date_ms("garbage"), None);
        assert_eq!(cookie_date_ms("Wed, 31 Feb 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn set_cookie_lines() {
        let at = 1_700_000_000_000.0;
        let c = set_cookie(
            "intercom-id-abc=uuid; Max-Age=23328000; Path=/",
            "api-iam.intercom.io",
            at,
        )
        .unwrap();
        assert_eq!(
            (c.site.as_str(), c.name.as_str(), c.live),
            ("intercom.io", "intercom-id-abc", true)
        );
        assert_eq!(c.expires, Some(at + 23_328_000_000.0));
        assert!(
            !set_cookie("intercom-id-abc=x; Max-Age=0", "a.example", at)
                .unwrap()
                .live
        );
        assert!(
            !set_cookie(
                "intercom-id-abc=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                "a.example",
                at
            )
            .unwrap()
            .live
        );
        assert!(
            !set_cookie("intercom-session-abc=; Path=/", "a.example", at)
                .unwrap()
                .live
        );
        // Max-Age wins over Expires.
        assert!(
            set_cookie(
                "intercom-id-abc=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60",
                "a.example",
                at
            )
            .unwrap()
            .live
        );
        // Not the catalog's, or a Domain the host may not set: ignored.
        assert!(set_cookie("sessionid=1", "a.example", at).is_none());
        assert!(set_cookie("intercom-id-abc=x; Domain=.other.example", "a.example", at).is_none());
        assert_eq!(
            set_cookie(
                "intercom-id-abc=x; Domain=.shop.example",
                "www.shop.example",
                at
            )
            .unwrap()
            .site,
            "shop.example"
        );
    }

    #[test]
    fn consent_argument() {
        assert!(parse_consent("none").ok().unwrap().is_none());
        let all = parse_consent("all").ok().unwrap().unwrap();
        assert!(Category::ALL.iter().all(|c| all.granted(*c)));
        let some = parse_consent(r#"{"functional":true,"marketing":false,"analytics":null}"#)
            .ok()
            .unwrap()
            .unwrap();
        assert_eq!(some.get(Category::Functional), Some(true));
        assert_eq!(some.get(Category::Marketing), Some(false));
        assert_eq!(some.get(Category::Analytics), None);
        for bad in [
            "{",
            "[]",
            r#"{"ads":true}"#,
            r#"{"functional":"yes"}"#,
            "some",
        ] {
            assert!(parse_consent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn initiators() {
        assert_eq!(initiator_of(Some("script"), ""), Some(("script", false)));
        assert_eq!(
            initiator_of(Some("Document"), ""),
            Some(("navigation", true))
        );
        assert_eq!(initiator_of(Some("preflight"), ""), None);
        assert_eq!(
            initiator_of(None, "application/javascript; charset=utf-8"),
            Some(("script", false))
        );
        assert_eq!(initiator_of(None, "text/html"), Some(("navigation", true)));
        assert_eq!(
            initiator_of(None, "application/json"),
            Some(("other", false))
        );
        assert_eq!(
            http_equivalent("wss://nexus-websocket-a.intercom.io/pubsub/5-x"),
            "https://nexus-websocket-a.intercom.io/pubsub/5-x"
        );
    }

    #[test]
    fn parsers_never_panic_on_noise() {
        for seed in 0..2000 {
            let bytes = noise(
                seed,
                (seed % 97) as usize,
                b"=;:, -0123456789abcJanGMTMax-AgeExpiresDomain.\"\n",
            );
            let text = String::from_utf8_lossy(&bytes);
            let _ = cookie_date_ms(&text);
            let _ = set_cookie(&text, "a.example", 1.0e12);
            let _ = set_cookie(&format!("intercom-id-x={text}"), "a.example", 1.0e12);
            let _ = iso_ms(&text);
            let _ = initiator_of(Some(&text), &text);
            let _ = http_equivalent(&text);
            let _ = parse_consent(&text);
        }
    }
}
