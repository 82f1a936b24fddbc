//! `report.html` of a bundle: the findings as a static page (no scripts,
//! no external resources) for a reader without tools. Every stored text is
//! escaped: findings carry what pages reported.

use ed25519_dalek::VerifyingKey;
use tagwatch_store::chain::{to_hex, Entry, FindingState};

use crate::bundle::Contents;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn html(
    c: &Contents<'_>,
    findings: &[FindingState],
    entries: &[Entry],
    key: &VerifyingKey,
) -> String {
    let mut rows = String::new();
    for f in findings {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>\n",
            f.id,
            esc(&f.kind),
            esc(&f.vendor),
            esc(&f.page),
            esc(&f.at),
            f.count,
            esc(&f.evidence),
            esc(&f.consent),
            esc(&f.page_view),
        ));
    }
    let mut views = String::new();
    for i in &c.evidence.inventories {
        let vendors: Vec<&str> = i.vendors.iter().map(|v| v.vendor.as_str()).collect();
        let hosts: Vec<&str> = i.hosts.iter().map(|h| h.host.as_str()).collect();
        views.push_str(&format!(
            "<tr><td>inventory {}</td><td>{}</td><td>{}</td><td>{}</td><td>vendors: {}; unclassified hosts: {}</td></tr>\n",
            i.id,
            esc(&i.page_view),
            esc(&i.page),
            esc(&i.at),
            esc(&vendors.join(", ")),
            esc(&hosts.join(", ")),
        ));
    }
    for h in &c.evidence.health {
        views.push_str(&format!(
            "<tr><td>health report {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>\n",
            h.id,
            esc(h.page_view.as_deref().unwrap_or("")),
            esc(&h.page),
            esc(&h.at),
            esc(&h.status),
            esc(&h
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()),
        ));
    }
    let first = entries.first().map_or(0, |e| e.seq);
    let last = entries.last();
    format!(
        "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\">
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">
<title>tagwatch evidence: {site}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px;vertical-align:top}}code{{white-space:pre-wrap;word-break:break-all}}</style>
</head><body>
<h1>tagwatch evidence: site {site}</h1>
<p>Made {created} by tagwatch collector {version}. Window: {since} to {until}. {n} findings.</p>
<p>Signed with Ed25519 public key <code>{key}</code>. The chain segment runs from seq {first} to seq {last_seq} (head hash <code>{head}</code>).</p>
<p>To check this bundle: <code>tagwatch verify bundle.zip --key PUBLIC-KEY</code> (docs/evidence.md). This page is a view of <code>findings.json</code>; the files and the signature are the evidence.</p>
<table><tr><th>id</th><th>type</th><th>vendor</th><th>page</th><th>observed</th><th>count</th><th>evidence</th><th>consent</th><th>page view</th></tr>
{rows}</table>
<h2>The findings' page views</h2>
<p>Their inventories and health reports, as stored (<code>page_views.json</code>); each is in the chain segment, and <code>tagwatch verify</code> checks it against its latest entry as it does the findings.</p>
<table><tr><th>row</th><th>page view</th><th>page</th><th>observed</th><th>what</th></tr>
{views}</table>
</body></html>
",
        site = esc(c.site),
        created = esc(c.created_at),
        version = esc(c.collector_version),
        since = esc(c.since.unwrap_or("the start")),
        until = esc(c.until.unwrap_or("now")),
        n = findings.len(),
        key = to_hex(key.as_bytes()),
        last_seq = last.map_or(0, |e| e.seq),
        head = last.map_or_else(String::new, |e| to_hex(&e.hash)),
    )
}
