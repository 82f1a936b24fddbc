//! `tagwatch export --site KEY --format json|csv|ropa`: a site's inventory
//! and findings from the collector's store, as JSON, as CSV, or as a
//! Markdown draft of a Record of Processing Activities (GDPR art. 30) per
//! vendor. See docs/cli.md#tagwatch-export.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::http::{inventory_answer, stats_answer, InventoryAnswer, VendorAnswer};
use tagwatch_store::{FindingRow, FindingsQuery, InventoryQuery, StatsQuery, Store, StoreError};

/// Most distinct names (hosts, cookies, pages) per vendor in an export.
const MAX_NAMES: u32 = 1000;
/// Most unclassified hosts in an export.
const MAX_HOSTS: u32 = 10_000;
/// Most pages in the stats of an export.
const MAX_PAGES: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Ropa,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            "ropa" => Some(Self::Ropa),
            _ => None,
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct Request {
    pub site: String,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only this release's reports.
    pub release: Option<String>,
    pub format: Format,
    /// CSV of the findings instead of the inventory.
    pub findings_csv: bool,
}

/// Everything an export is made of, read in one go.
struct Data {
    inventory: InventoryAnswer,
    stats: Value,
    findings: Vec<FindingRow>,
}

fn read(store: &dyn Store, r: &Request) -> Result<Data, StoreError> {
    let totals = store.inventory(&InventoryQuery {
        site: r.site.clone(),
        since: r.since.clone(),
        release: r.release.clone(),
        max_names: MAX_NAMES,
        max_hosts: MAX_HOSTS,
    })?;
    let stats = store.stats(&StatsQuery {
        site: r.site.clone(),
        since: r.since.clone(),
        until: r.until.clone(),
        release: r.release.clone(),
        max_pages: MAX_PAGES,
    })?;
    let findings = store.findings(&FindingsQuery {
        site: r.site.clone(),
        since: r.since.clone(),
        until: r.until.clone(),
        release: r.release.clone(),
        limit: u32::MAX,
        ..FindingsQuery::default()
    })?;
    Ok(Data {
        inventory: inventory_answer(totals),
        stats: stats_answer(
            &r.site,
            r.since.as_deref(),
            r.until.as_deref(),
            r.release.as_deref(),
            &stats,
        ),
        findings,
    })
}

/// The export as text. `Ok(None)`: the site key is unknown.
pub fn export(store: &dyn Store, r: &Request) -> Result<Option<String>, StoreError> {
    if store.site_origins(&r.site)?.is_none() {
        return Ok(None);
    }
    let data = read(store, r)?;
    Ok(Some(match r.format {
        Format::Json => to_json(r, &data),
        Format::Csv if r.findings_csv => findings_csv(&data.findings),
        Format::Csv => inventory_csv(&data),
        Format::Ropa => ropa(r, &data),
    }))
}

fn to_json(r: &Request, d: &Data) -> String {
    let value = json!({
        "site": r.site,
        "since": r.since,
        "until": r.until,
        "release": r.release,
        "inventory": serde_json::to_value(&d.inventory).unwrap_or(Value::Null),
        "stats": d.stats,
        "findings": serde_json::to_value(&d.findings).unwrap_or(Value::Null),
    });
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
    out.push('\n');
    out
}

// ------------------------------------------------------------------- CSV

/// Characters that make a spreadsheet read a cell as a formula (or as a
/// DDE command) when they start it; the full-width forms too, which some
/// locales read the same way.
const FORMULA_START: [char; 8] = [
    '=', '+', '-', '@', '\u{ff1d}', '\u{ff0b}', '\u{ff0d}', '\u{ff20}',
];

/// Characters a spreadsheet may split fields at when the file is opened
/// with another separator or with "trim spaces" (Excel's and LibreOffice's
/// import dialogs offer `;`, tab, space, `|`, `:` and any character), and
/// the quotes that may open a new field there.
const MAY_SPLIT: [char; 7] = [',', ';', ' ', '|', ':', '"', '\''];

/// One CSV field (RFC 4180) with spreadsheet formulas defused, since report
/// data is untrusted: control characters (tab, CR, LF…) become spaces, and
/// a formula character at the start of the field *or after any character a
/// spreadsheet may split fields at* gets a `'` before it (`x;=cmd|…` →
/// `x;'=cmd|…`), so no piece of the field can start a formula whatever
/// separator the file is opened with.
fn field(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut split_here = true;
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if split_here && FORMULA_START.contains(&c) {
            out.push('\'');
        }
        split_here = MAY_SPLIT.contains(&c);
        out.push(c);
    }
    if out.contains([',', '"']) {
        format!("\"{}\"", out.replace('"', "\"\""))
    } else {
        out
    }
}

fn row(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

fn opt(v: Option<&str>) -> String {
    v.unwrap_or("").to_owned()
}

/// Finding rows per vendor, from the stats.
fn findings_per_vendor(stats: &Value) -> BTreeMap<String, i64> {
    stats["by_vendor"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r["vendor"].as_str()?.to_owned(), r["findings"].as_i64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn max_cookie_days(v: &VendorAnswer) -> Option<u32> {
    v.cookie_details
        .iter()
        .filter_map(|c| c.lifetime_days)
        .max()
}

fn inventory_csv(d: &Data) -> String {
    let per_vendor = findings_per_vendor(&d.stats);
    let mut out = String::new();
    row(
        &mut out,
        &[
            "kind",
            "id",
            "name",
            "owner",
            "category",
            "page_views",
            "requests",
            "script_requests",
            "transfer_bytes",
            "encoded_bytes",
            "duration_ms",
            "requests_per_page_view",
            "transfer_bytes_per_page_view",
            "hosts",
            "regions",
            "cookies",
            "max_cookie_days",
            "pages",
            "findings",
        ]
        .map(str::to_owned),
    );
    for v in &d.inventory.vendors {
        row(
            &mut out,
            &[
                "vendor".to_owned(),
                v.vendor.clone(),
                opt(v.name),
                opt(v.owner),
                opt(v.category),
                v.page_views.to_string(),
                v.requests.to_string(),
                v.script_requests.to_string(),
                v.transfer_bytes.to_string(),
                v.encoded_bytes.to_string(),
                v.duration_ms.to_string(),
                v.per_page_requests().to_string(),
                v.per_page_transfer_bytes().to_string(),
                v.hosts.join(" "),
                v.regions.join(" "),
                v.cookies.join(" "),
                max_cookie_days(v)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                v.pages.join(" "),
                per_vendor.get(&v.vendor).copied().unwrap_or(0).to_string(),
            ],
        );
    }
    for h in &d.inventory.unclassified {
        row(
            &mut out,
            &[
                "host".to_owned(),
                h.host.clone(),
                String::new(),
                String::new(),
                String::new(),
                h.page_views.to_string(),
                h.requests.to_string(),
                h.script_requests.to_string(),
                h.transfer_bytes.to_string(),
                h.encoded_bytes.to_string(),
                h.duration_ms.to_string(),
                h.per_page_requests().to_string(),
                h.per_page_transfer_bytes().to_string(),
                h.host.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        );
    }
    out
}

fn findings_csv(findings: &[FindingRow]) -> String {
    let mut out = String::new();
    row(
        &mut out,
        &[
            "type",
            "vendor",
            "category",
            "page",
            "page_view",
            "at",
            "received_at",
            "count",
            "evidence_kind",
            "host",
            "path",
            "cookie",
            "name",
            "evidence",
            "consent",
            "release",
        ]
        .map(str::to_owned),
    );
    for f in findings {
        let ev = |k: &str| {
            f.evidence
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        row(
            &mut out,
            &[
                f.kind.clone(),
                f.vendor.clone(),
                f.category.clone().unwrap_or_default(),
                f.page.clone(),
                f.page_view.clone(),
                f.at.clone(),
                f.received_at.clone(),
                f.count.to_string(),
                ev("kind"),
                ev("host"),
                ev("path"),
                ev("cookie"),
                ev("name"),
                f.evidence.to_string(),
                f.consent.to_string(),
                f.release.clone().unwrap_or_default(),
            ],
        );
    }
    out
}

// ------------------------------------------------------------------ RoPA

/// Regions inside the EU/EEA (no third-country transfer).
const EEA_REGIONS: [&str; 2] = ["eu", "eea"];

/// Text from a report or the store as inert Markdown on one line of a
/// table cell: control characters become spaces and every character that
/// can start inline Markdown or HTML (emphasis, code, links, images,
/// autolinks, raw HTML, entities, strikethrough, table pipes) is
/// backslash-escaped, which CommonMark allows for any ASCII punctuation.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '<' | '>' | '!' | '|'
            | '~' | '&' | '#' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text as a Markdown code span inside a table cell: nothing in it is read
/// as Markdown or HTML. The fence is one backtick longer than the longest
/// run of backticks in the text, a space pads text that starts or ends with
/// a backtick, and `|` is escaped (GFM splits table cells before it reads
/// code spans).
fn code(s: &str) -> String {
    let text: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if text.is_empty() {
        return "` `".to_owned();
    }
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn code_list(items: &[String], max: usize) -> String {
    let mut shown: Vec<String> = items.iter().take(max).map(|i| code(i)).collect();
    if items.len() > max {
        shown.push(format!("and {} more", items.len() - max));
    }
    shown.join(", ")
}

/// A vendor's facts for its section, from the inventory and its findings.
struct Section<'a> {
    id: &'a str,
    inventory: Option<&'a VendorAnswer>,
    findings: Vec<&'a FindingRow>,
}

fn ropa(r: &Request, d: &Data) -> String {
    let mut sections: BTreeMap<&str, Section<'_>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for v in &d.inventory.vendors {
        order.push(&v.vendor);
        sections.insert(
            &v.vendor,
            Section {
                id: &v.vendor,
                inventory: Some(v),
                findings: Vec::new(),
            },
        );
    }
    let mut csp_unknown: BTreeSet<&str> = BTreeSet::new();
    for f in &d.findings {
        if f.vendor == crate::csp::UNCLASSIFIED {
            if let Some(host) = f.evidence.get("host").and_then(Value::as_str) {
                csp_unknown.insert(host);
            }
            continue;
        }
        let entry = sections.entry(&f.vendor).or_insert_with(|| {
            order.push(&f.vendor);
            Section {
                id: &f.vendor,
                inventory: None,
                findings: Vec::new(),
            }
        });
        entry.findings.push(f);
    }

    let mut out = String::new();
    let page_views = d
        .stats
        .get("page_views")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let _ = writeln!(out, "# Record of Processing Activities — draft\n");
    let _ = writeln!(out, "Site {}.", code(&r.site));
    let window = match (&r.since, &r.until) {
        (None, None) => "everything stored".to_owned(),
        (Some(s), None) => format!("observed from {s}"),
        (None, Some(u)) => format!("observed before {u}"),
        (Some(s), Some(u)) => format!("observed from {s} to {u}"),
    };
    let _ = writeln!(
        out,
        "Drawn by `tagwatch export` from what the monitor and the browsers' CSP reports saw \
         ({window}; {page_views} page views, {} findings).\n",
        d.stats.get("findings").and_then(Value::as_i64).unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "> This is a draft from observed behaviour, not a legal assessment. Check every entry; \
         fields marked _to fill_ need facts only you have (contracts, legal basis, transfer \
         mechanism, retention at the recipient).\n"
    );

    for id in &order {
        let Some(s) = sections.get(id) else { continue };
        write_section(&mut out, s);
    }

    if !d.inventory.unclassified.is_empty() || !csp_unknown.is_empty() {
        let _ = writeln!(out, "## Third parties the catalog does not know\n");
        let _ = writeln!(
            out,
            "Identify the owner of each host and add an entry for it.\n"
        );
        let _ = writeln!(out, "| host | page views | requests | seen by |");
        let _ = writeln!(out, "|---|---|---|---|");
        for h in &d.inventory.unclassified {
            let by = if csp_unknown.remove(h.host.as_str()) {
                "monitor, CSP report"
            } else {
                "monitor"
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {by} |",
                code(&h.host),
                h.page_views,
                h.requests
            );
        }
        for host in csp_unknown {
            let _ = writeln!(out, "| {} | – | – | CSP report |", code(host));
        }
        out.push('\n');
    }
    out
}

fn write_section(out: &mut String, s: &Section<'_>) {
    let known = tagwatch_core::catalog::vendor(s.id);
    let info = known.and_then(|v| v.info());
    let name = info.map_or(s.id, |i| i.name);
    let _ = writeln!(out, "## {} ({})\n", md(name), code(s.id));
    let _ = writeln!(out, "| | |\n|---|---|");
    let owner = info.map_or("_to fill (not in the catalog)_", |i| i.owner);
    let _ = writeln!(
        out,
        "| Recipient (processor or third party) | {} |",
        md(owner)
    );
    if let Some(i) = info {
        let _ = writeln!(out, "| Kind of tag | {} |", md(i.category));
    }

    // Purposes seen: cookie rules, evidence purposes; with their categories.
    let mut purposes: BTreeMap<String, Option<&'static str>> = BTreeMap::new();
    let category_of = |purpose: &str| {
        known
            .and_then(|v| v.purposes().find(|p| p.name == purpose))
            .and_then(|p| p.consent)
            .map(|c| c.as_str())
    };
    if let Some(v) = s.inventory {
        for c in &v.cookie_details {
            if let Some(p) = c.purpose {
                purposes.insert(p.to_owned(), c.category);
            }
        }
    }
    for f in &s.findings {
        if let Some(p) = f.evidence.get("purpose").and_then(Value::as_str) {
            purposes.insert(p.to_owned(), category_of(p));
        }
    }
    if purposes.is_empty() {
        if let Some(v) = known {
            let p = v.primary();
            purposes.insert(p.name.to_owned(), p.consent.map(|c| c.as_str()));
        }
    }
    let purpose_text: Vec<String> = purposes
        .iter()
        .map(|(p, c)| match c {
            Some(c) => format!("{} (needs {})", md(p), md(c)),
            None => format!("{} (needs no consent)", md(p)),
        })
        .collect();
    let _ = writeln!(
        out,
        "| Purposes seen | {} |",
        if purpose_text.is_empty() {
            "_to fill_".to_owned()
        } else {
            purpose_text.join(", ")
        }
    );

    // Data categories.
    let mut data: Vec<String> = Vec::new();
    if let Some(v) = s.inventory {
        if !v.cookies.is_empty() {
            data.push(format!(
                "online identifiers in cookies ({})",
                code_list(&v.cookies, 8)
            ));
        }
        if v.requests > 0 {
            data.push(format!(
                "device and usage data sent with requests (IP address, browser, page URL; {} requests per page view)",
                v.per_page_requests()
            ));
        }
    }
    let kinds: BTreeSet<&str> = s.findings.iter().map(|f| f.kind.as_str()).collect();
    if kinds.contains("identity_unverified") {
        data.push("identity of signed-in users (user id or e-mail given to the tag)".into());
    }
    if data.is_empty() {
        data.push("_to fill_ (only seen in CSP reports)".into());
    }
    let _ = writeln!(out, "| Data categories seen | {} |", data.join("; "));

    // Recipients and regions.
    let mut hosts: BTreeMap<String, Option<&str>> = BTreeMap::new();
    if let Some(v) = s.inventory {
        for d in &v.destinations {
            hosts.insert(d.host.clone(), d.region);
        }
    }
    for f in &s.findings {
        if let Some(h) = f.evidence.get("host").and_then(Value::as_str) {
            hosts
                .entry(h.to_owned())
                .or_insert_with(|| known.and_then(|v| v.region(h)));
        }
    }
    let host_text: Vec<String> = hosts
        .iter()
        .take(12)
        .map(|(h, r)| match r {
            Some(r) => format!("{} ({})", code(h), md(r)),
            None => format!("{} (region not documented)", code(h)),
        })
        .collect();
    let more = hosts.len().saturating_sub(12);
    let _ = writeln!(
        out,
        "| Destinations | {}{} |",
        if host_text.is_empty() {
            "–".to_owned()
        } else {
            host_text.join(", ")
        },
        if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        }
    );
    let regions: BTreeSet<&str> = hosts.values().flatten().copied().collect();
    let third: Vec<&str> = regions
        .iter()
        .copied()
        .filter(|r| !EEA_REGIONS.contains(r))
        .collect();
    let transfer = if third.is_empty() && regions.is_empty() {
        "not known from the catalog — _to fill_".to_owned()
    } else if third.is_empty() {
        "none seen (EU/EEA only)".to_owned()
    } else {
        format!(
            "yes: {} — mechanism _to fill_ (adequacy decision, standard contractual clauses, certification such as the EU-US Data Privacy Framework)",
            md(&third.join(", "))
        )
    };
    let _ = writeln!(out, "| Transfer outside the EU/EEA | {transfer} |");

    // Retention from cookie lifetimes.
    let lifetimes: Vec<String> = s
        .inventory
        .map(|v| {
            v.cookie_details
                .iter()
                .map(|c| match c.lifetime_days {
                    Some(d) => format!("{} {d} days", code(&c.name)),
                    None => format!("{} session or unknown", code(&c.name)),
                })
                .collect()
        })
        .unwrap_or_default();
    let longest = s.inventory.and_then(|v| {
        v.cookie_details
            .iter()
            .filter_map(|c| c.lifetime_days)
            .max()
    });
    let retention = match longest {
        Some(d) => format!(
            "cookies up to {d} days ({}); data held by the recipient: _to fill_",
            lifetimes.join(", ")
        ),
        None if !lifetimes.is_empty() => format!(
            "cookies: {}; data held by the recipient: _to fill_",
            lifetimes.join(", ")
        ),
        None => "no cookies seen; data held by the recipient: _to fill_".to_owned(),
    };
    let _ = writeln!(out, "| Retention | {retention} |");
    let _ = writeln!(out, "| Legal basis | _to fill_ |");
    let _ = writeln!(out, "| Transfer mechanism | _to fill_ |");

    if let Some(v) = s.inventory {
        let _ = writeln!(
            out,
            "| Seen on | {} page view{}; pages {} |",
            v.page_views,
            if v.page_views == 1 { "" } else { "s" },
            code_list(&v.pages, 10)
        );
    }
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for f in &s.findings {
        *counts.entry(f.kind.as_str()).or_default() += 1;
    }
    let findings: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{} × {n}", code(k)))
        .collect();
    let _ = writeln!(
        out,
        "| Compliance findings | {} |",
        if findings.is_empty() {
            "none".to_owned()
        } else {
            findings.join(", ")
        }
    );
    if let Some(i) = info {
        if !i.sources.is_empty() {
            let _ = writeln!(
                out,
                "| Catalog sources | {} |",
                // Links from the compiled-in catalog, not from a report:
                // kept clickable, only made safe for a table cell.
                i.sources
                    .iter()
                    .map(|s| s.replace('|', "%7C").replace(char::is_control, " "))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("-1,2"), "\"'-1,2\"");
        assert_eq!(field("line\nbreak"), "line break");
        assert_eq!(md("a|b\nc"), "a\\|b c");
    }

    /// Formula characters after anything a spreadsheet may split at.
    #[test]
    fn csv_formulas_after_a_separator_are_defused() {
        for (input, want) in [
            ("x;=cmd|' /C calc'!A0", "x;'=cmd|' /C calc'!A0"),
            ("a,=1+1", "\"a,'=1+1\""),
            ("a\t=1+1", "a '=1+1"),
            ("a\r\n@SUM(1)", "a  '@SUM(1)"),
            ("a|+1", "a|'+1"),
            ("a: -1", "a: '-1"),
            ("\u{ff1d}1+1", "'\u{ff1d}1+1"),
            ("\"=1\"", "\"\"\"'=1\"\"\""),
            ("intercom-id-abc", "intercom-id-abc"),
            ("_ga _gid", "_ga _gid"),
        ] {
            assert_eq!(field(input), want, "{input:?}");
        }
    }

    #[test]
    fn markdown_code_spans_hold_anything() {
        assert_eq!(code("_ga"), "`_ga`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b\nc"), "`a\\|b c`");
        assert_eq!(code(""), "` `");
        assert_eq!(
            md("<img src=x onerror=alert(1)>"),
            "\\<img src=x onerror=alert\\(1\\)\\>"
        );
        assert_eq!(md("[a](javascript:x)"), "\\[a\\]\\(javascript:x\\)");
    }
}
