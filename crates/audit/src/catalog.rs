//! `tagwatch catalog list|show|import-ocd`: the vendor catalog compiled into
//! this binary (catalog/*.toml), and the Open Cookie Database importer.

use std::collections::BTreeMap;

use serde::Serialize;
use tagwatch_core::catalog::{self, Resource, Vendor, VENDORS};
use tagwatch_core::consent::Category;

use super::{ocd, print, table};
use crate::Failure;

/// A `tagwatch catalog` subcommand.
#[derive(Debug, Clone)]
pub enum CatalogCommand {
    /// The vendors: id, name, category, domain and cookie-rule counts
    /// (`json`: one JSON object a line instead of a table).
    List { json: bool },
    /// Everything the catalog knows about one vendor (`json`: the catalog
    /// TOML schema's field names instead of text).
    Show { id: String, json: bool },
    /// The Open Cookie Database CSV into catalog TOML files.
    ImportOcd(ocd::ImportArgs),
}

/// Runs a `catalog` subcommand.
pub fn run(command: &CatalogCommand) -> Result<(), Failure> {
    match command {
        CatalogCommand::List { json } => print(&list(*json)),
        CatalogCommand::Show { id, json } => {
            let vendor = catalog::vendor(id).ok_or_else(|| {
                Failure::Usage(format!("unknown vendor {id}; try `tagwatch catalog list`"))
            })?;
            print(&if *json {
                show_json(vendor)
            } else {
                show_text(vendor)
            })
        }
        CatalogCommand::ImportOcd(args) => ocd::run(args),
    }
}

fn name(v: &Vendor) -> &'static str {
    v.info().map_or("", |i| i.name)
}

fn category(v: &Vendor) -> &'static str {
    v.info().map_or("", |i| i.category)
}

#[derive(Serialize)]
struct ListLine<'a> {
    id: &'a str,
    name: &'a str,
    category: &'a str,
    domains: usize,
    cookies: usize,
}

fn list(json: bool) -> String {
    let lines = VENDORS.iter().map(|v| ListLine {
        id: v.id,
        name: name(v),
        category: category(v),
        domains: v.domains().count(),
        cookies: v.cookies().count(),
    });
    if json {
        let mut out = String::new();
        for line in lines {
            out.push_str(&serde_json::to_string(&line).unwrap_or_default());
            out.push('\n');
        }
        return out;
    }
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            vec![
                l.id.into(),
                l.name.into(),
                l.category.into(),
                l.domains.to_string(),
                l.cookies.to_string(),
            ]
        })
        .collect();
    let mut out = table(&["ID", "NAME", "CATEGORY", "DOMAINS", "COOKIES"], &rows);
    out.push_str(&format!("{} vendors\n", VENDORS.len()));
    out
}

fn consent_name(c: Option<Category>) -> &'static str {
    c.map_or("none", Category::as_str)
}

fn resource_name(r: Resource) -> &'static str {
    match r {
        Resource::Script => "script",
        Resource::Api => "api",
        Resource::Asset => "asset",
    }
}

fn purpose_name(v: &'static Vendor, i: usize) -> &'static str {
    v.purposes().nth(i).map_or("unknown", |p| p.name)
}

// JSON mirrors the catalog TOML schema (catalog/README.md) field for field.

#[derive(Serialize)]
struct ShowPurpose {
    consent: &'static str,
    tracking: bool,
}

#[derive(Serialize)]
struct ShowPath {
    hosts: Vec<&'static str>,
    path: &'static str,
    resource: &'static str,
    purpose: &'static str,
}

#[derive(Serialize)]
struct ShowCookie {
    name: &'static str,
    #[serde(rename = "match")]
    kind: &'static str,
    purpose: &'static str,
    lifetime_days: Option<u32>,
    source: &'static str,
}

#[derive(Serialize)]
struct ShowWeight {
    script_kb: u32,
    requests: u32,
    source: &'static str,
}

#[derive(Serialize)]
struct ShowIdentity {
    settings: &'static str,
    api: &'static str,
    verbs: Vec<&'static str>,
    ids: Vec<&'static str>,
    proofs: Vec<&'static str>,
}

#[derive(Serialize)]
struct Show {
    id: &'static str,
    name: &'static str,
    owner: &'static str,
    category: &'static str,
    primary: &'static str,
    domains: Vec<&'static str>,
    globals: Vec<&'static str>,
    dom_ids: Vec<&'static str>,
    loader_script_ids: Vec<&'static str>,
    sources: Vec<&'static str>,
    weight: Option<ShowWeight>,
    purposes: BTreeMap<&'static str, ShowPurpose>,
    paths: Vec<ShowPath>,
    cookies: Vec<ShowCookie>,
    regions: BTreeMap<&'static str, &'static str>,
    identity: Option<ShowIdentity>,
}

fn show(v: &'static Vendor) -> Show {
    let info = v.info();
    Show {
        id: v.id,
        name: name(v),
        owner: info.map_or("", |i| i.owner),
        category: category(v),
        primary: v.primary().name,
        domains: v.domains().collect(),
        globals: v.globals().to_vec(),
        dom_ids: v.dom_ids().to_vec(),
        loader_script_ids: v.loader_script_ids().to_vec(),
        sources: info.map_or_else(Vec::new, |i| i.sources.to_vec()),
        weight: info.and_then(|i| i.weight.as_ref()).map(|w| ShowWeight {
            script_kb: w.script_kb,
            requests: w.requests,
            source: w.source,
        }),
        purposes: v
            .purposes()
            .map(|p| {
                (
                    p.name,
                    ShowPurpose {
                        consent: consent_name(p.consent),
                        tracking: p.tracking,
                    },
                )
            })
            .collect(),
        paths: v
            .paths()
            .map(|r| ShowPath {
                hosts: r.hosts.to_vec(),
                path: r.path,
                resource: resource_name(r.resource),
                purpose: purpose_name(v, r.purpose),
            })
            .collect(),
        cookies: v
            .cookies()
            .enumerate()
            .map(|(i, c)| ShowCookie {
                name: c.name,
                kind: if c.prefix { "prefix" } else { "exact" },
                purpose: purpose_name(v, c.purpose),
                lifetime_days: c.lifetime_days,
                source: info
                    .and_then(|info| info.cookie_sources.get(i))
                    .copied()
                    .unwrap_or(""),
            })
            .collect(),
        regions: v.regions().collect(),
        identity: v.identity().map(|i| ShowIdentity {
            settings: i.settings,
            api: i.api,
            verbs: i.verbs.to_vec(),
            ids: i.ids.to_vec(),
            proofs: i.proofs.to_vec(),
        }),
    }
}

/// A vendor's catalog entry as `tagwatch catalog show --json` prints it
/// (evidence bundles carry the entries that classified their findings).
pub fn entry_json(id: &str) -> Option<String> {
    tagwatch_core::catalog::vendor(id).map(show_json)
}

fn show_json(v: &'static Vendor) -> String {
    let mut out = serde_json::to_string_pretty(&show(v)).unwrap_or_default();
    out.push('\n');
    out
}

fn show_text(v: &'static Vendor) -> String {
    let s = show(v);
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("{} ({})", s.name, s.id));
    line(format!("owner:      {}", s.owner));
    line(format!("category:   {}", s.category));
    line(format!(
        "primary:    {} (what script loads, globals and DOM markers stand for)",
        s.primary
    ));
    match &s.weight {
        Some(w) => line(format!(
            "weight:     {} KB script, {} requests per page ({})",
            w.script_kb, w.requests, w.source
        )),
        None => line("weight:     not declared".into()),
    }
    line(String::new());
    line("purposes (default consent category):".into());
    let rows: Vec<Vec<String>> = v
        .purposes()
        .map(|p| {
            let mut note = String::new();
            if p.tracking {
                note.push_str("behavioural tracking");
            }
            vec![
                format!("  {}", p.name),
                consent_name(p.consent).into(),
                note,
            ]
        })
        .collect();
    line(
        table(&["  PURPOSE", "CONSENT", ""], &rows)
            .trim_end()
            .into(),
    );
    line(String::new());
    line(format!(
        "domains ({}, subdomains match on a dot boundary):",
        s.domains.len()
    ));
    for d in &s.domains {
        line(format!("  {d}"));
    }
    if !s.paths.is_empty() {
        line(String::new());
        line("paths (first match wins):".into());
        let rows: Vec<Vec<String>> = s
            .paths
            .iter()
            .map(|p| {
                let hosts = if p.hosts.is_empty() {
                    "(any vendor host)".into()
                } else {
                    p.hosts.join(" ")
                };
                vec![
                    format!("  {}", p.path),
                    p.resource.into(),
                    p.purpose.into(),
                    hosts,
                ]
            })
            .collect();
        line(
            table(&["  PATH", "RESOURCE", "PURPOSE", "HOSTS"], &rows)
                .trim_end()
                .into(),
        );
    }
    if !s.cookies.is_empty() {
        line(String::new());
        line("cookies:".into());
        let rows: Vec<Vec<String>> = s
            .cookies
            .iter()
            .map(|c| {
                let shown = if c.kind == "prefix" {
                    format!("{}*", c.name)
                } else {
                    c.name.into()
                };
                let life = c
                    .lifetime_days
                    .map_or_else(|| "-".into(), |d| format!("{d} days"));
                vec![
                    format!("  {shown}"),
                    c.kind.into(),
                    c.purpose.into(),
                    life,
                    c.source.into(),
                ]
            })
            .collect();
        line(
            table(&["  NAME", "MATCH", "PURPOSE", "LIFETIME", "SOURCE"], &rows)
                .trim_end()
                .into(),
        );
    }
    if v.regions().next().is_some() {
        line(String::new());
        line("regions of processing (most specific host first):".into());
        let rows: Vec<Vec<String>> = v
            .regions()
            .map(|(h, r)| vec![format!("  {h}"), r.into()])
            .collect();
        line(table(&["  HOST", "REGION"], &rows).trim_end().into());
    }
    let lists = [
        ("globals", &s.globals),
        ("dom ids", &s.dom_ids),
        ("loader script ids", &s.loader_script_ids),
    ];
    if lists.iter().any(|(_, l)| !l.is_empty()) {
        line(String::new());
        for (label, l) in lists {
            if !l.is_empty() {
                line(format!("{label}: {}", l.join(", ")));
            }
        }
    }
    if let Some(i) = &s.identity {
        line(String::new());
        line(format!(
            "identity: settings {} / api {}({}); ids {}; proofs {}",
            i.settings,
            i.api,
            i.verbs.join("|"),
            i.ids.join(", "),
            i.proofs.join(", ")
        ));
    }
    if !s.sources.is_empty() {
        line(String::new());
        line("sources:".into());
        for src in &s.sources {
            line(format!("  {src}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_has_every_vendor() {
        let text = list(true);
        assert_eq!(text.lines().count(), VENDORS.len());
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["id"], "intercom");
        assert!(first["domains"].as_u64().unwrap() > 10);
        assert!(list(false).starts_with("ID "));
    }

    #[test]
    fn show_intercom() {
        let v = catalog::vendor("intercom").unwrap();
        let json: serde_json::Value = serde_json::from_str(&show_json(v)).unwrap();
        assert_eq!(json["purposes"]["tracking"]["consent"], "marketing");
        assert_eq!(json["purposes"]["media"]["consent"], "none");
        assert_eq!(json["regions"]["api-iam.eu.intercom.io"], "eu");
        assert_eq!(json["identity"]["proofs"][0], "user_hash");
        assert!(json["cookies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "intercom-id-" && c["match"] == "prefix"));
        let text = show_text(v);
        for needle in [
            "intercom-id-*",
            "/messenger/web/ping",
            "api-iam.eu.intercom.io",
            "user_hash",
            "270 days",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }
}
