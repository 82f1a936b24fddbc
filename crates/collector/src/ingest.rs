//! `POST /r` bodies: read with the report types of the core
//! (`tagwatch_core::report::read`: typed, borrowing from the body; a body
//! they refuse is explained in the schema's own words), each field redacted
//! by its type's rule, page URLs read as a browser reads them, and turned
//! into records ready to store.

use std::collections::{BTreeMap, BTreeSet};

use tagwatch_core::redact::redact_text;
use tagwatch_core::report;
use tagwatch_core::report::read::{
    self, Body, Canonical, Consent, ConsentSource, Evidence, Extra, FindingBody, HealthBody,
    InventoryBody, SchemaVersion, Scrub, UsageIn,
};
use tagwatch_core::report::EvidenceKind;
use tagwatch_store::timefmt::shared_iso_from_ms;
use tagwatch_store::{
    Batch, FindingKind, FindingRecord, HealthRecord, InventoryHost, InventoryRecord,
    InventoryVendor, SharedText, StoredConsentSource, StoredEvidenceKind, Usage,
};

use crate::scrub;

/// Longest reason we send back; schema messages can quote large values.
const MAX_REASON: usize = 400;

/// Why a body is refused with 400: the reason the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

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
    fn register(&mut self, site: &str, origin: &str) {
        if !self.sites.contains(site) {
            self.sites.insert(site.to_owned());
        }
        if !self
            .page_origins
            .iter()
            .any(|(s, o)| s == site && o == origin)
        {
            self.page_origins
                .insert((site.to_owned(), origin.to_owned()));
        }
    }
}

/// A count of the wire as the store keeps it: at most `i64::MAX`.
fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn usage(u: UsageIn) -> Usage {
    Usage {
        requests: stored(u.requests.0),
        script_requests: stored(u.script_requests.0),
        transfer_bytes: stored(u.transfer_bytes.0),
        encoded_bytes: stored(u.encoded_bytes.0),
        duration_ms: stored(u.duration_ms.0),
    }
}

fn sorted_union(into: &mut Vec<String>, more: impl IntoIterator<Item = String>) {
    into.extend(more);
    into.sort_unstable();
    into.dedup();
}

/// One entry per vendor and per host (a repeated one is summed), sorted.
fn normalize_inventory(body: &InventoryBody<'_>) -> (Vec<InventoryVendor>, Vec<InventoryHost>) {
    let mut vendors: BTreeMap<&str, InventoryVendor> = BTreeMap::new();
    for v in &body.vendors.0 {
        let entry = vendors
            .entry(v.vendor.as_str())
            .or_insert_with(|| InventoryVendor {
                vendor: v.vendor.as_str().to_owned(),
                usage: Usage::default(),
                hosts: Vec::new(),
                regions: Vec::new(),
                cookies: Vec::new(),
            });
        entry.usage.add(&usage(v.usage()));
        sorted_union(
            &mut entry.hosts,
            v.hosts.0.iter().map(|h| h.as_str().to_owned()),
        );
        sorted_union(
            &mut entry.regions,
            v.regions
                .iter()
                .flat_map(|l| l.0.iter())
                .map(|s| s.as_str().to_owned()),
        );
        sorted_union(
            &mut entry.cookies,
            v.cookies
                .iter()
                .flat_map(|l| l.0.iter())
                .map(|s| s.as_str().to_owned()),
        );
    }
    let mut hosts: BTreeMap<&str, Usage> = BTreeMap::new();
    for h in &body.unclassified.0 {
        hosts
            .entry(h.host.as_str())
            .or_default()
            .add(&usage(h.usage()));
    }
    (
        vendors.into_values().collect(),
        hosts
            .into_iter()
            .map(|(host, usage)| InventoryHost {
                host: host.to_owned(),
                usage,
            })
            .collect(),
    )
}

/// What every record of one report shares.
struct Common {
    page: SharedText,
    at: SharedText,
    received_at: SharedText,
    user_agent: SharedText,
}

/// The last text of one field made shared: the reports of a batch mostly
/// share their site, page view, vendor and release, so a record holds the
/// one copy of the report before it (a reference count's increment) and a
/// new copy is made only for a text that differs from the last. Not
/// [`cached`], which keeps its input beside what it made of it: here the
/// two are the same text, and that would be a second copy of each.
#[derive(Default)]
struct LastText(Option<SharedText>);

impl LastText {
    fn of(&mut self, text: &str) -> SharedText {
        match &self.0 {
            Some(last) if last.as_str() == text => last.clone(),
            _ => self.0.insert(SharedText::from(text)).clone(),
        }
    }
}

/// The shared texts of a batch's reports' own fields ([`LastText`]).
#[derive(Default)]
struct Fields {
    site: LastText,
    page_view: LastText,
    vendor: LastText,
    release: LastText,
}

/// The stored `raw` of a finding: the body's properties that have no
/// column of their own — `schema`, `at` and any the schema does not define
/// (redacted) — as a JSON object with sorted keys, appended to `out`. Every
/// other property is in a column (`evidence` and `consent` as JSON, with
/// their own unknown properties), so a finding's text is stored once, not
/// twice.
fn finding_raw(b: &FindingBody<'_>, out: &mut String) {
    if b.extra.0.is_empty() {
        // Without the formatting machinery: one a finding.
        out.push_str(r#"{"at":"#);
        b.at.write_json(out);
        out.push_str(r#","schema":"#);
        SchemaVersion.write_json(out);
        out.push('}');
        return;
    }
    let mut rest = b.extra.0.clone();
    rest.insert("at".into(), b.at.0.into());
    rest.insert("schema".into(), report::SCHEMA.into());
    out.push_str(&serde_json::Value::Object(rest).to_string());
}

/// The last finding's evidence, consent state and `raw`, whose stored text
/// is the last finding record's: the findings of a batch mostly share their
/// consent state (one page view, one moment: 12 of the golden batch's 15
/// are the one before them), often their evidence (several findings of
/// one request: 5 of 15) and their `raw` (found together: 7 of 15), whose
/// text is then the one that record holds ([`SharedText`]), not written
/// again (nor kept a second time here). The
/// evidence is compared as sent, before redaction, so that an evidence
/// equal to the last one is not redacted again either ([`reuse_evidence`]);
/// the consent state once redacted (its redaction is a look at one field).
struct Texts<'a> {
    /// The last finding's evidence as sent.
    evidence: Option<Evidence<'a>>,
    /// The last finding's consent state, redacted.
    consent: Option<Consent<'a>>,
    /// The last finding's `at` when its `raw` holds nothing else (no
    /// property the schema does not define): then so is the `raw` of a
    /// finding with the same `at` and nothing else.
    raw_at: Option<u64>,
    /// Where a new text is written before its one shared copy is made.
    scratch: String,
}

/// Room for most texts [`Texts::shared`] writes (the evidence, consent
/// states and `raw` of the golden batch: at most 166 bytes), so that the
/// scratch buffer grows once a batch, if at all.
const SCRATCH_BYTES: usize = 256;

impl Texts<'_> {
    fn new() -> Self {
        Texts {
            evidence: None,
            consent: None,
            raw_at: None,
            scratch: String::with_capacity(SCRATCH_BYTES),
        }
    }

    /// The text `write` appends, shared.
    fn shared(&mut self, write: impl FnOnce(&mut String)) -> SharedText {
        self.scratch.clear();
        write(&mut self.scratch);
        SharedText::from(self.scratch.as_str())
    }
}

/// Before a finding's body is redacted: when its evidence is the last
/// finding's as sent, the stored text is that one's (redaction is a
/// function of the value, and so is the text), and the body's evidence is
/// emptied but for its kind, so that redacting the body does not redact it
/// again. `None`: a new evidence, redacted with the body and written.
fn reuse_evidence<'a>(
    b: &mut FindingBody<'a>,
    texts: &Texts<'a>,
    last: Option<&FindingRecord>,
) -> Option<SharedText> {
    let (sent, last) = (texts.evidence.as_ref()?, last?);
    if *sent != *b.evidence {
        return None;
    }
    *b.evidence = kind_only(b.evidence.kind);
    Some(last.evidence.clone())
}

/// An evidence of `kind` and nothing else (what remains of one whose
/// stored text is reused).
fn kind_only<'a>(kind: EvidenceKind) -> Evidence<'a> {
    Evidence {
        kind,
        host: None,
        path: None,
        initiator: None,
        frame: None,
        cookie: None,
        name: None,
        purpose: None,
        days: None,
        region: None,
        signal: None,
        claimed: None,
        extra: Extra::default(),
    }
}

/// `b` as stored, its body redacted. `evidence`: the stored text of its
/// evidence when [`reuse_evidence`] found it; otherwise `sent`, the
/// evidence as sent, is what the text is written from and kept as the last.
/// `last`: the last finding record ([`Texts`]' texts).
fn finding<'a>(
    b: &FindingBody<'a>,
    c: Common,
    fields: &mut Fields,
    texts: &mut Texts<'a>,
    evidence: Result<SharedText, Evidence<'a>>,
    last: Option<&FindingRecord>,
) -> FindingRecord {
    let evidence = evidence.unwrap_or_else(|sent| {
        texts.evidence = Some(sent);
        texts.shared(|out| b.evidence.write_json(out))
    });
    let consent = match (&texts.consent, last) {
        (Some(consent), Some(last)) if *consent == b.consent => last.consent.clone(),
        _ => {
            texts.consent = Some(b.consent.clone());
            texts.shared(|out| b.consent.write_json(out))
        }
    };
    let alone = b.extra.0.is_empty();
    let raw = match (texts.raw_at, last) {
        (Some(at), Some(last)) if alone && at == b.at.0 => last.raw.clone(),
        _ => {
            texts.raw_at = alone.then_some(b.at.0);
            texts.shared(|out| finding_raw(b, out))
        }
    };
    FindingRecord {
        site: fields.site.of(b.site.as_str()),
        page_view: fields.page_view.of(b.page_view.as_str()),
        page: c.page,
        kind: FindingKind::Monitor(b.finding),
        vendor: fields.vendor.of(b.vendor.as_str()),
        category: b.category,
        evidence,
        evidence_kind: StoredEvidenceKind::Monitor(b.evidence.kind),
        consent,
        consent_source: b.consent.source.as_ref().map(|s| match s {
            ConsentSource::Known(known) => StoredConsentSource::Known(*known),
            ConsentSource::Other(other) => StoredConsentSource::Other(other.as_str().to_owned()),
        }),
        count: b.count.map_or(1, |n| stored(n.0)),
        at: c.at,
        received_at: c.received_at,
        user_agent: c.user_agent,
        raw,
        release: b.release.as_ref().map(|r| fields.release.of(r.as_str())),
    }
}

fn health(b: &HealthBody<'_>, c: Common, fields: &mut Fields) -> HealthRecord {
    HealthRecord {
        site: fields.site.of(b.site.as_str()),
        page_view: b
            .page_view
            .as_ref()
            .map(|p| fields.page_view.of(p.as_str())),
        page: c.page,
        status: b.status,
        reason: b
            .reason
            .as_ref()
            .and_then(|r| r.as_str())
            .map(str::to_owned),
        at: c.at,
        received_at: c.received_at,
        user_agent: c.user_agent,
        raw: b.to_json(),
        release: b.release.as_ref().map(|r| fields.release.of(r.as_str())),
    }
}

fn inventory(b: &InventoryBody<'_>, c: Common, fields: &mut Fields) -> InventoryRecord {
    let (vendors, unclassified) = normalize_inventory(b);
    InventoryRecord {
        site: fields.site.of(b.site.as_str()),
        page_view: fields.page_view.of(b.page_view.as_str()),
        page: c.page,
        vendors,
        unclassified,
        at: c.at,
        received_at: c.received_at,
        user_agent: c.user_agent,
        raw: b.to_json(),
        release: b.release.as_ref().map(|r| fields.release.of(r.as_str())),
    }
}

/// The last value read and what became of it: the reports of one batch
/// share their page URL, user agent and (sent together) age, read once.
struct Last<I, T> {
    input: I,
    output: T,
}

/// What `make` makes of `input`, made again only when `input` is not the
/// last one.
fn cached<'c, I: ToOwned + PartialEq + ?Sized, T>(
    last: &'c mut Option<Last<I::Owned, T>>,
    input: &I,
    make: impl FnOnce(&I) -> T,
) -> &'c T
where
    I::Owned: std::borrow::Borrow<I>,
{
    use std::borrow::Borrow;
    if !last.as_ref().is_some_and(|l| l.input.borrow() == input) {
        *last = None;
    }
    &last
        .get_or_insert_with(|| Last {
            input: input.to_owned(),
            output: make(input),
        })
        .output
}

/// Parses a body received at `received_ms` into what is stored of it.
pub fn parse(body: &[u8], received_ms: i64) -> Result<Parsed, Malformed> {
    let mut batch = read::read(body).map_err(|e| Malformed(truncate(e.to_string())))?;
    let received_at = shared_iso_from_ms(received_ms);
    let mut parsed = Parsed::default();
    // Most reports are findings: their records are not moved again as the
    // list grows.
    parsed.batch.findings.reserve_exact(batch.0.len());
    let (mut pages, mut agents, mut ages) = (None, None, None);
    let mut texts = Texts::new();
    let mut fields = Fields::default();
    for (i, report) in batch.0.iter_mut().enumerate() {
        let Some((page, origin)) = cached(&mut pages, report.url.as_str(), |url| {
            scrub::page_and_origin(url).map(|(page, origin)| (SharedText::from(page), origin))
        }) else {
            return Err(Malformed(truncate(format!(
                "item {i}: url: {:?} is not an http(s) URL with a host",
                report.url.as_str()
            ))));
        };
        let user_agent = cached(&mut agents, report.user_agent.as_str(), |ua| {
            SharedText::from(&*redact_text(ua))
        })
        .clone();
        parsed.register(report.body.site(), origin);
        let common = Common {
            page: page.clone(),
            at: cached(&mut ages, &report.age.0, |age| {
                shared_iso_from_ms(received_ms.saturating_sub(stored(*age)))
            })
            .clone(),
            received_at: received_at.clone(),
            user_agent,
        };
        // Each body redacted (`Body::scrub`) before it is stored.
        match &mut report.body {
            Body::Finding(b) => {
                // Its evidence's stored text when it is the last one's as
                // sent, else the evidence as sent, before redaction.
                let last = parsed.batch.findings.last();
                let evidence = reuse_evidence(b, &texts, last).ok_or_else(|| (*b.evidence).clone());
                b.scrub();
                let record = finding(b, common, &mut fields, &mut texts, evidence, last);
                parsed.batch.findings.push(record);
            }
            Body::Health(b) => {
                b.scrub();
                parsed.batch.health.push(health(b, common, &mut fields));
            }
            Body::Inventory(b) => {
                b.scrub();
                parsed
                    .batch
                    .inventories
                    .push(inventory(b, common, &mut fields));
            }
        }
    }
    Ok(parsed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NOW: i64 = 1_714_564_800_000;

    /// The batch the monitor's core produces (core/tests/golden.rs) is
    /// accepted.
    #[test]
    fn golden_monitor_batch_is_accepted() {
        let golden = include_bytes!("../../../tests/fixtures/golden/report-batch.json");
        let parsed = parse(golden, NOW);
        assert!(parsed.is_ok(), "{:?}", parsed.err().map(|m| m.0));
    }

    fn finding_report(site: &str) -> Value {
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

    fn parse_value(v: &Value) -> Result<Parsed, Malformed> {
        parse(v.to_string().as_bytes(), NOW)
    }

    #[test]
    fn accepts_the_documented_example() {
        let parsed = parse_value(&json!([finding_report("tw_abc"), {
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
        assert_eq!(f.kind.as_str(), "script_before_consent");
        assert_eq!(
            f.evidence,
            r#"{"host":"widget.intercom.io","kind":"request","path":"/widget/abc12345"}"#
        );
        let h = parsed.batch.health.first().expect("one health");
        assert_eq!(h.status.as_str(), "wasm_unavailable");
        assert_eq!(h.reason.as_deref(), Some("CompileError"));
    }

    /// The time of each report is its own: reports of one batch mostly
    /// share their age (read once), but not always.
    #[test]
    fn each_report_keeps_its_own_age() {
        let mut younger = finding_report("tw_abc");
        younger["age"] = json!(0);
        younger["body"]["at"] = json!(7);
        let parsed = parse_value(&json!([
            finding_report("tw_abc"),
            younger,
            finding_report("tw_abc")
        ]))
        .expect("valid");
        let at: Vec<&str> = parsed
            .batch
            .findings
            .iter()
            .map(|f| f.at.as_str())
            .collect();
        assert_eq!(
            at,
            [
                "2024-05-01T11:59:58.500Z",
                "2024-05-01T12:00:00.000Z",
                "2024-05-01T11:59:58.500Z"
            ]
        );
        let raw: Vec<&str> = parsed
            .batch
            .findings
            .iter()
            .map(|f| f.raw.as_str())
            .collect();
        assert_eq!(
            raw,
            [
                r#"{"at":412,"schema":1}"#,
                r#"{"at":7,"schema":1}"#,
                r#"{"at":412,"schema":1}"#
            ]
        );
    }

    /// Each report's finding parsed alone (its `text`), and the reports
    /// parsed as one batch: a finding's stored texts must not depend on
    /// the findings beside it.
    fn alone_and_together(
        reports: &[Value],
        text: impl Fn(&tagwatch_store::FindingRecord) -> &SharedText,
    ) -> (Vec<String>, Parsed) {
        let alone = reports
            .iter()
            .map(|r| text(&parse_value(&json!([r])).expect("valid").batch.findings[0]).to_string())
            .collect();
        (
            alone,
            parse_value(&Value::from(reports.to_vec())).expect("valid"),
        )
    }

    /// A finding's evidence text is the one it would have alone, whether
    /// its evidence is the one before it as sent (its text reused, not
    /// redacted again) or not: redacted (an id in the path, an e-mail in an
    /// unknown property), and never another finding's.
    #[test]
    fn each_finding_keeps_its_own_evidence() {
        let with = |evidence: Value| {
            let mut r = finding_report("tw_abc");
            r["body"]["evidence"] = evidence;
            r
        };
        let a = with(
            json!({"kind": "request", "host": "a.example", "path": "/u/1234567890",
            "note": "mail jane@example.com"}),
        );
        let b = with(json!({"kind": "request", "host": "a.example", "path": "/u/1234567891"}));
        let c = with(json!({"kind": "cookie", "cookie": "intercom-id-jane@example.com"}));
        let reports = [a.clone(), a.clone(), b, a, c.clone(), c];
        let (alone, together) = alone_and_together(&reports, |f| &f.evidence);
        let texts: Vec<&str> = together
            .batch
            .findings
            .iter()
            .map(|f| f.evidence.as_str())
            .collect();
        assert_eq!(texts, alone);
        assert_eq!(
            texts[0],
            r#"{"host":"a.example","kind":"request","note":"mail :id","path":"/u/:id"}"#
        );
        assert_eq!(texts[0], texts[1]);
        assert!(texts.iter().all(|t| !t.contains("jane")), "{texts:?}");
        let kinds: Vec<StoredEvidenceKind> = together
            .batch
            .findings
            .iter()
            .map(|f| f.evidence_kind)
            .collect();
        assert_eq!(
            kinds,
            [
                EvidenceKind::Request,
                EvidenceKind::Request,
                EvidenceKind::Request,
                EvidenceKind::Request,
                EvidenceKind::Cookie,
                EvidenceKind::Cookie
            ]
            .map(StoredEvidenceKind::Monitor)
        );
    }

    /// A finding's consent text is the one it gets alone, whether its
    /// consent state is the one before it (its text copied from that
    /// finding's record) or not, with evidence between them equal or not.
    #[test]
    fn each_finding_keeps_its_own_consent() {
        let with = |analytics: Value, path: &str| {
            let mut r = finding_report("tw_abc");
            r["body"]["consent"]["analytics"] = analytics;
            r["body"]["evidence"]["path"] = json!(path);
            r
        };
        let reports = [
            with(json!(true), "/a"),
            with(json!(true), "/a"),
            with(json!(false), "/a"),
            with(json!(true), "/b"),
            with(json!(null), "/b"),
            with(json!(null), "/c"),
        ];
        let (alone, together) = alone_and_together(&reports, |f| &f.consent);
        let texts: Vec<&str> = together
            .batch
            .findings
            .iter()
            .map(|f| f.consent.as_str())
            .collect();
        assert_eq!(texts, alone);
        assert!(texts[0].contains(r#""analytics":true"#), "{}", texts[0]);
        assert!(texts[2].contains(r#""analytics":false"#), "{}", texts[2]);
        assert!(texts[4].contains(r#""analytics":null"#), "{}", texts[4]);
    }

    /// A finding's `raw` is the one it gets alone, whether its `at` is the
    /// one before it (its text then the last record's) or not, with and
    /// without properties the schema does not define, before or after it.
    #[test]
    fn each_finding_keeps_its_own_raw() {
        let with = |at: u64, newer: Option<&str>| {
            let mut r = finding_report("tw_abc");
            r["body"]["at"] = json!(at);
            if let Some(newer) = newer {
                r["body"]["newer"] = json!(newer);
            }
            r
        };
        let reports = [
            with(412, None),
            with(412, None),
            with(412, Some("a")),
            with(412, Some("a")),
            with(412, None),
            with(7, None),
            with(7, Some("b")),
            with(7, None),
        ];
        let (alone, together) = alone_and_together(&reports, |f| &f.raw);
        let texts: Vec<&str> = together
            .batch
            .findings
            .iter()
            .map(|f| f.raw.as_str())
            .collect();
        assert_eq!(texts, alone);
        assert_eq!(texts[1], r#"{"at":412,"schema":1}"#);
        assert_eq!(texts[3], r#"{"at":412,"newer":"a","schema":1}"#);
        assert_eq!(texts[7], r#"{"at":7,"schema":1}"#);
    }

    /// Each record's site, page view, vendor, release, page, user agent
    /// and times are the ones its report gives when parsed alone, whether
    /// they equal the report's before it (one shared text) or not, across
    /// findings, health reports and inventories.
    #[test]
    fn each_report_keeps_its_own_fields() {
        let finding = |site: &str, pv: &str, vendor: &str, release: Option<&str>, url: &str| {
            let mut r = finding_report(site);
            r["body"]["page_view"] = json!(pv);
            r["body"]["vendor"] = json!(vendor);
            if let Some(release) = release {
                r["body"]["release"] = json!(release);
            }
            r["url"] = json!(url);
            r
        };
        let health = |site: &str, pv: Option<&str>, release: &str, ua: &str| {
            let mut body = json!({"schema": 1, "site": site, "status": "ok", "release": release});
            if let Some(pv) = pv {
                body["page_view"] = json!(pv);
            }
            json!({"type": "tagwatch-health", "age": 20, "url": "https://shop.example/a",
                "user_agent": ua, "body": body})
        };
        let inventory = |site: &str, pv: &str, age: u64| {
            json!({"type": "tagwatch-inventory", "age": age, "url": "https://shop.example/b",
                "user_agent": "UA", "body": {"schema": 1, "site": site, "page_view": pv,
                "vendors": [], "unclassified": []}})
        };
        let (a, b) = ("https://shop.example/a", "https://shop.example/b");
        let reports = [
            finding("tw_a", "0000000000000001", "intercom", Some("r1"), a),
            finding("tw_a", "0000000000000001", "intercom", Some("r1"), a),
            finding("tw_b", "0000000000000001", "intercom", Some("r1"), a),
            finding("tw_b", "0000000000000002", "hotjar", None, b),
            health("tw_b", Some("0000000000000002"), "r2", "UA"),
            health("tw_b", None, "r2", "UA 2"),
            inventory("tw_b", "0000000000000002", 0),
            finding("tw_b", "0000000000000002", "hotjar", Some("r2"), b),
            inventory("tw_a", "0000000000000002", 3),
            finding("tw_a", "0000000000000002", "intercom", Some("r1"), a),
        ];
        type Fields = [Option<String>; 8];
        let fields = |p: &Parsed| -> Vec<Fields> {
            let text = |t: &SharedText| Some(t.to_string());
            let opt = |t: &Option<SharedText>| t.as_ref().map(ToString::to_string);
            let f = p.batch.findings.iter().map(|f| {
                let release = opt(&f.release);
                [
                    text(&f.site),
                    text(&f.page_view),
                    text(&f.vendor),
                    release,
                    text(&f.page),
                    text(&f.user_agent),
                    text(&f.at),
                    text(&f.received_at),
                ]
            });
            let h = p.batch.health.iter().map(|h| {
                let (release, page_view) = (opt(&h.release), opt(&h.page_view));
                [
                    text(&h.site),
                    page_view,
                    None,
                    release,
                    text(&h.page),
                    text(&h.user_agent),
                    text(&h.at),
                    text(&h.received_at),
                ]
            });
            let i = p.batch.inventories.iter().map(|i| {
                let release = opt(&i.release);
                [
                    text(&i.site),
                    text(&i.page_view),
                    None,
                    release,
                    text(&i.page),
                    text(&i.user_agent),
                    text(&i.at),
                    text(&i.received_at),
                ]
            });
            f.chain(h).chain(i).collect()
        };
        let alone: Vec<Parsed> = reports
            .iter()
            .map(|r| parse_value(&json!([r])).expect("valid"))
            .collect();
        let by_type = |of: &dyn Fn(&Parsed) -> bool| -> Vec<Fields> {
            alone.iter().filter(|p| of(p)).flat_map(&fields).collect()
        };
        let mut expected = by_type(&|p| !p.batch.findings.is_empty());
        expected.extend(by_type(&|p| !p.batch.health.is_empty()));
        expected.extend(by_type(&|p| !p.batch.inventories.is_empty()));
        let together = parse_value(&Value::from(reports.to_vec())).expect("valid");
        assert_eq!(fields(&together), expected);
        assert_eq!(expected.len(), reports.len());
    }

    #[test]
    fn explains_what_is_wrong() {
        let mut bad = finding_report("tw_abc");
        bad["body"]["finding"] = json!("foo");
        let e = parse_value(&json!([bad])).expect_err("bad finding");
        assert!(
            e.0.starts_with("item 0: body.finding: \"foo\" is not one of"),
            "{e}"
        );

        let mut bad = finding_report("tw_abc");
        bad["url"] = json!("https://shop.example/?email=a@b.c");
        let e = parse_value(&json!([finding_report("tw_abc"), bad])).expect_err("query string");
        assert!(e.0.starts_with("item 1: url: "), "{e}");

        let e = parse_value(&json!([])).expect_err("empty");
        assert!(e.0.starts_with("batch: "), "{e}");

        let e = parse_value(&json!({"a": 1})).expect_err("object");
        assert!(e.0.starts_with("batch: "), "{e}");

        let e = parse(b"not json", NOW).expect_err("not json");
        assert!(e.0.starts_with("body is not JSON"), "{e}");
    }

    /// U+0000 is refused wherever it comes: escaped (the string is then
    /// owned, and searched) or as a raw byte (serde_json refuses a control
    /// character in a string). Strings borrowed from the body are not
    /// searched (`read::checked`): this holds them to it.
    #[test]
    fn nul_is_refused_escaped_or_raw() {
        let mut r = finding_report("tw_abc");
        r["body"]["evidence"]["initiator"] = json!("scr\u{0}ipt");
        let e = parse_value(&json!([r])).expect_err("escaped NUL");
        assert!(
            e.0.starts_with("item 0: body.evidence.initiator: the text contains a NUL character"),
            "{e}"
        );
        let mut r = finding_report("tw_abc");
        r["body"]["evidence"]["initiator"] = json!("scrXipt");
        let raw = json!([r]).to_string().replace("scrXipt", "scr\0ipt");
        let e = parse(raw.as_bytes(), NOW).expect_err("raw NUL");
        assert!(
            e.0.starts_with("body is not JSON: control character"),
            "{e}"
        );
    }

    #[test]
    fn reasons_are_bounded() {
        let mut bad = finding_report("tw_abc");
        bad["user_agent"] = json!("x".repeat(5000));
        let e = parse_value(&json!([bad])).expect_err("long ua");
        assert!(e.0.len() <= MAX_REASON + '…'.len_utf8(), "{}", e.0.len());
        assert!(e.0.starts_with("item 0: user_agent: "), "{e}");
    }

    /// Mutated bodies never panic the parser; they are accepted or refused.
    #[test]
    fn survives_mutated_bodies() {
        let valid = json!([finding_report("tw_abc")]).to_string().into_bytes();
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
            match parse(&body, NOW) {
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
    fn stored_text_is_redacted_and_keeps_unknown_fields() {
        let mut r = finding_report("tw_abc");
        r["body"]["evidence"]["cookie"] = json!("uid_12345678");
        r["body"]["evidence"]["path"] = json!("/u/jane@example.com/x");
        r["body"]["newer"] = json!({"jane@example.com": ["6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978"]});
        r["user_agent"] = json!("UA jane@example.com");
        let parsed = parse_value(&json!([r])).expect("valid");
        let f = parsed.batch.findings.first().expect("one");
        assert_eq!(
            f.evidence,
            r#"{"cookie":"uid_:id","host":"widget.intercom.io","kind":"request","path":"/u/:id/x"}"#
        );
        assert_eq!(f.user_agent, "UA :id");
        assert_eq!(f.raw, r#"{"at":412,"newer":{":id":[":id"]},"schema":1}"#);
        assert!(!f.raw.contains("jane"), "{}", f.raw);
        // A health reason that is not an error name is not kept.
        let health = json!([{
            "type": "tagwatch-health", "age": 0, "url": "https://shop.example/", "user_agent": "UA",
            "body": {"schema": 1, "site": "tw_abc", "status": "ok", "reason": "a@b.example"}
        }]);
        let parsed = parse_value(&health).expect("valid");
        let h = parsed.batch.health.first().expect("one");
        assert_eq!(h.reason, None);
        assert!(h.raw.contains(r#""reason":null"#), "{}", h.raw);
    }
}
