//! `tagwatch catalog import-ocd FILE.csv [--out DIR] [--platform NAME]…`:
//! turns the Open Cookie Database CSV (jkwakman/Open-Cookie-Database,
//! `open-cookie-database.csv`) into catalog TOML files holding cookie
//! signatures, one file per OCD platform.
//!
//! Columns are found by header name: `ID`, `Platform`, `Category`,
//! `Cookie / Data Key name`, `Retention period`, `Data Controller`,
//! `Wildcard match` (`Domain`, `Description` and the portal are not used: the
//! OCD `Domain` column says where a cookie lives, not which host serves the
//! tag, so generated files have `domains = []`).
//!
//! Curated files stay authoritative: a platform is skipped (with a note on
//! stderr) when its name or slug matches a catalog vendor's name or id, when
//! any of its cookies is already classified by the catalog, or when its file
//! already exists in the output directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use tagwatch_core::catalog::{self, VENDORS};

use crate::Failure;

/// Largest CSV record accepted (descriptions can span lines).
const MAX_RECORD: usize = 64 * 1024;

/// Where the OCD comes from, cited in every generated file.
const OCD_SOURCE: &str = "https://github.com/jkwakman/Open-Cookie-Database";

/// What `tagwatch catalog import-ocd` was asked.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    /// The Open Cookie Database CSV.
    pub file: String,
    /// Directory for the generated TOML files.
    pub out: String,
    /// Only these platforms (OCD `Platform`, case-insensitive); all when empty.
    pub platforms: Vec<String>,
}

// ------------------------------------------------------------------ CSV

/// A malformed CSV.
#[derive(Debug, thiserror::Error)]
enum CsvError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A quoted field still open at the end of the input.
    #[error("quoted field opened on line {line} never closes")]
    Unterminated { line: u64 },
    /// A record over `MAX_RECORD` bytes (or `MAX_FIELDS` fields).
    #[error("record on line {line} is longer than {MAX_RECORD} bytes")]
    TooLong { line: u64 },
}

/// Most fields of a record (the OCD has 10 columns).
const MAX_FIELDS: usize = 1024;

/// RFC 4180 records from a reader, parsed by `csv_core`: fields separated
/// by `,`, optionally quoted with `"` (a doubled `""` inside quotes is one
/// quote; quoted fields may span lines), records ending in `\n` or
/// `\r\n`. Lenient like the spreadsheets that write the OCD: a quote inside
/// an unquoted field is kept as text. Memory is bounded: one record of at
/// most `MAX_RECORD` bytes and `MAX_FIELDS` fields, in buffers made once.
struct CsvReader<R> {
    reader: R,
    csv: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: BufRead> CsvReader<R> {
    fn new(reader: R) -> Self {
        CsvReader {
            reader,
            csv: csv_core::ReaderBuilder::new()
                .terminator(csv_core::Terminator::Any(b'\n'))
                .build(),
            out: vec![0; MAX_RECORD],
            ends: vec![0; MAX_FIELDS],
        }
    }

    /// The next record, `None` at end of input.
    fn record(&mut self) -> Result<Option<Vec<String>>, CsvError> {
        use csv_core::ReadRecordResult as R;
        let line = self.csv.line();
        let (mut outlen, mut endlen, mut started) = (0, 0, false);
        loop {
            let buf = self.reader.fill_buf()?;
            let at_end = buf.is_empty();
            if at_end && !started {
                return Ok(None);
            }
            // At the end of input, a line break ends the last record — or
            // is swallowed by a quoted field that never closed.
            let input: &[u8] = if at_end { b"\n" } else { buf };
            let (result, read, wrote, ended) = self.csv.read_record(
                input,
                self.out.get_mut(outlen..).unwrap_or(&mut []),
                self.ends.get_mut(endlen..).unwrap_or(&mut []),
            );
            if !at_end {
                self.reader.consume(read);
            }
            started |= read > 0;
            outlen += wrote;
            endlen += ended;
            match result {
                R::InputEmpty if at_end => return Err(CsvError::Unterminated { line }),
                R::InputEmpty => {}
                R::OutputFull | R::OutputEndsFull => return Err(CsvError::TooLong { line }),
                R::Record => return Ok(Some(self.fields(outlen, endlen))),
                R::End => return Ok(None),
            }
        }
    }

    /// The fields of the record just read; the `\r` of a `\r\n` ending
    /// dropped.
    fn fields(&self, outlen: usize, endlen: usize) -> Vec<String> {
        let data = self.out.get(..outlen).unwrap_or(&[]);
        let mut start = 0;
        let mut fields: Vec<String> = self
            .ends
            .get(..endlen)
            .unwrap_or(&[])
            .iter()
            .map(|&end| {
                let field = data.get(start..end).unwrap_or(&[]);
                start = end;
                String::from_utf8_lossy(field).into_owned()
            })
            .collect();
        if let Some(last) = fields.last_mut() {
            if last.ends_with('\r') {
                last.pop();
            }
        }
        fields
    }
}

// ----------------------------------------------------------- OCD model

/// One OCD row, the columns we use.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    platform: String,
    category: String,
    name: String,
    retention: String,
    controller: String,
    wildcard: bool,
}

const COLUMNS: [&str; 7] = [
    "ID",
    "Platform",
    "Category",
    "Cookie / Data Key name",
    "Retention period",
    "Data Controller",
    "Wildcard match",
];

/// Column indices by header name.
fn header_indices(header: &[String]) -> Result<[usize; 7], String> {
    let mut idx = [0usize; 7];
    for (slot, want) in idx.iter_mut().zip(COLUMNS) {
        *slot = header
            .iter()
            .position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(want)
            })
            .ok_or_else(|| format!("missing column {want:?}"))?;
    }
    Ok(idx)
}

fn row(fields: &[String], idx: &[usize; 7]) -> Row {
    let get = |i: usize| {
        idx.get(i)
            .and_then(|c| fields.get(*c))
            .map_or("", |s| s.trim())
            .to_owned()
    };
    Row {
        id: get(0),
        platform: get(1),
        category: get(2),
        name: get(3),
        retention: get(4),
        controller: get(5),
        wildcard: get(6) == "1",
    }
}

/// Catalog consent category (and purpose name) of an OCD category.
/// OCD's own definitions: Functional, Personalization, Analytics, Marketing,
/// Security.
fn consent_of(ocd_category: &str) -> Option<&'static str> {
    Some(match ocd_category.trim().to_ascii_lowercase().as_str() {
        "functional" | "personalization" | "personalisation" | "preferences" => "functional",
        "analytics" | "statistics" | "performance" => "analytics",
        "marketing" | "advertising" | "tracking" => "marketing",
        "necessary" | "strictly necessary" | "essential" | "security" => "necessary",
        _ => return None,
    })
}

/// Catalog vendor category for a platform whose main purpose is `consent`.
/// The catalog has no generic category; the file says so for review.
fn vendor_category(consent: &str) -> &'static str {
    match consent {
        "analytics" => "analytics",
        "marketing" => "advertising",
        "necessary" => "monitoring",
        _ => "support",
    }
}

/// A catalog id from a platform name: lower-case ASCII letters and digits,
/// runs of anything else become one `-`.
fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Cookie-name characters (RFC 6265 token).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// The signature of an OCD cookie name: `(name, prefix)`, or why it is not
/// usable. `CookieConsent [x4]` is `CookieConsent`; placeholders
/// (`SR<RotatorID>`, `_hjSession_{id}`, `_pk_id*`) end a prefix.
fn signature(raw: &str, wildcard: bool) -> Result<(String, bool), &'static str> {
    let mut name = raw.trim();
    if let Some(open) = name.rfind(" [x") {
        if name.ends_with(']') {
            name = name.get(..open).unwrap_or(name).trim_end();
        }
    }
    let (name, prefix) = match name.find(['<', '{', '*']) {
        Some(cut) => (name.get(..cut).unwrap_or(""), true),
        None => (name, wildcard),
    };
    if name.is_empty() {
        return Err("no fixed part in the cookie name");
    }
    if !name.bytes().all(is_token_byte) {
        return Err("not a cookie name (spaces or separators)");
    }
    Ok((name.to_owned(), prefix))
}

/// Documented lifetime in whole days (rounded up) from an OCD retention
/// text: "2 years" → 730, "24 hours" → 1, "30 seconds till 1 year" → 365 (a
/// range gives its upper end), "180 days after last activity or 10 years
/// when opting out" → 180 (otherwise the first duration), "Session" or
/// anything without a duration → `None`.
fn lifetime_days(text: &str) -> Option<u32> {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut durations = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let Some(unit) = words.get(i + 1) else { break };
        let number = match *w {
            "a" | "an" | "one" => 1.0,
            _ => match w.trim_end_matches('.').parse::<f64>() {
                Ok(n) if n.is_finite() && n > 0.0 => n,
                _ => continue,
            },
        };
        let days_per = match *unit {
            "second" | "seconds" | "sec" | "secs" => 1.0 / 86_400.0,
            "minute" | "minutes" | "min" | "mins" => 1.0 / 1_440.0,
            "hour" | "hours" | "hr" | "hrs" => 1.0 / 24.0,
            "day" | "days" => 1.0,
            "week" | "weeks" => 7.0,
            "month" | "months" => 30.0,
            "year" | "years" | "yr" | "yrs" => 365.0,
            _ => continue,
        };
        durations.push(number * days_per);
    }
    let range = [" till ", " until ", " to ", " - ", "–"]
        .iter()
        .any(|sep| lower.contains(sep));
    let days = if range {
        durations.iter().copied().reduce(f64::max)
    } else {
        durations.first().copied()
    }?;
    let days = days.ceil();
    (days >= 1.0 && days <= f64::from(u32::MAX)).then_some(days as u32)
}

/// Escapes a TOML basic string (with its quotes).
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What became of one platform.
enum Outcome {
    /// The TOML text of a new vendor file, and notes on rows left out.
    Generated {
        id: String,
        toml: String,
        notes: Vec<String>,
    },
    /// Not generated, and why.
    Skipped(String),
}

/// The catalog vendor a platform already is, by name, id or cookies.
fn in_catalog(platform: &str, rows: &[Row]) -> Option<String> {
    let id = slug(platform);
    for v in VENDORS.iter() {
        let name = v.info().map_or("", |i| i.name);
        if v.id == id || name.eq_ignore_ascii_case(platform) || slug(name) == id {
            return Some(format!("already in the catalog as {}", v.id));
        }
    }
    for r in rows {
        let Ok((name, prefix)) = signature(&r.name, r.wildcard) else {
            continue;
        };
        let probe = if prefix {
            format!("{name}x")
        } else {
            name.clone()
        };
        if let Some((v, _)) = catalog::classify_cookie(&probe) {
            return Some(format!(
                "its cookie {name} is already classified as {}",
                v.id
            ));
        }
    }
    None
}

/// Builds one platform's vendor file.
fn generate(platform: &str, rows: &[Row]) -> Outcome {
    let id = slug(platform);
    if id.is_empty() {
        return Outcome::Skipped("no ASCII letters or digits for an id".into());
    }
    if let Some(why) = in_catalog(platform, rows) {
        return Outcome::Skipped(why);
    }
    let mut notes = Vec::new();
    // (name, prefix) → (purpose, lifetime, source); first row wins.
    let mut cookies: Vec<(String, bool, &'static str, Option<u32>, String)> = Vec::new();
    for r in rows {
        let Some(consent) = consent_of(&r.category) else {
            notes.push(format!(
                "row {}: unknown OCD category {:?}",
                r.id, r.category
            ));
            continue;
        };
        let (name, prefix) = match signature(&r.name, r.wildcard) {
            Ok(s) => s,
            Err(why) => {
                notes.push(format!("row {}: cookie {:?}: {why}", r.id, r.name));
                continue;
            }
        };
        if cookies.iter().any(|c| c.0 == name && c.1 == prefix) {
            continue;
        }
        let mut source = format!("Open Cookie Database ID {}", r.id);
        if !r.retention.is_empty() {
            let _ = write!(
                source,
                " (retention: {})",
                r.retention.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
        cookies.push((name, prefix, consent, lifetime_days(&r.retention), source));
    }
    if cookies.is_empty() {
        return Outcome::Skipped(format!("no usable cookie rows ({})", notes.join("; ")));
    }
    // Purposes are named after their consent category; the primary one is
    // the most common, ties going to the stricter category.
    let order = ["marketing", "analytics", "functional", "necessary"];
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &cookies {
        *counts.entry(c.2).or_default() += 1;
    }
    let primary = order
        .iter()
        .copied()
        .filter(|p| counts.contains_key(p))
        .max_by_key(|p| {
            (
                counts.get(p).copied().unwrap_or(0),
                std::cmp::Reverse(order.iter().position(|o| o == p)),
            )
        })
        .unwrap_or("marketing");
    let owner = rows
        .iter()
        .map(|r| r.controller.as_str())
        .find(|c| !c.is_empty() && *c != "#N/A")
        .unwrap_or(platform);
    let category = vendor_category(primary);

    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Generated by `tagwatch catalog import-ocd` from the Open Cookie Database"
    );
    let _ = writeln!(t, "# ({OCD_SOURCE}), platform {}.", toml_str(platform));
    let _ = writeln!(
        t,
        "# Cookie signatures only: the OCD Domain column says where a cookie lives, not"
    );
    let _ = writeln!(
        t,
        "# which host serves the tag, so `domains` is empty. `category` is derived from"
    );
    let _ = writeln!(
        t,
        "# the OCD categories ({}). Review, then move into catalog/.",
        counts.keys().copied().collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(t, "id = {}", toml_str(&id));
    let _ = writeln!(t, "name = {}", toml_str(platform));
    let _ = writeln!(t, "owner = {}", toml_str(owner));
    let _ = writeln!(t, "category = {}", toml_str(category));
    let _ = writeln!(t, "primary = {}", toml_str(primary));
    let _ = writeln!(t, "domains = []");
    let _ = writeln!(t, "sources = [{}]", toml_str(OCD_SOURCE));
    for p in order.iter().rev().filter(|p| counts.contains_key(*p)) {
        let _ = writeln!(t, "\n[purposes.{p}]\nconsent = {}", toml_str(p));
    }
    for (name, prefix, purpose, lifetime, source) in &cookies {
        let _ = writeln!(t, "\n[[cookies]]");
        if name.len() <= 3 {
            let _ = writeln!(
                t,
                "# Short, generic name: may match unrelated cookies. Review."
            );
        }
        let _ = writeln!(t, "name = {}", toml_str(name));
        let _ = writeln!(
            t,
            "match = {}",
            toml_str(if *prefix { "prefix" } else { "exact" })
        );
        let _ = writeln!(t, "purpose = {}", toml_str(purpose));
        if let Some(days) = lifetime {
            let _ = writeln!(t, "lifetime_days = {days}");
        }
        let _ = writeln!(t, "source = {}", toml_str(source));
    }
    Outcome::Generated { id, toml: t, notes }
}

/// Reads and groups the CSV: platform (as first spelled) → rows, in file
/// order of first appearance.
fn read_platforms<R: BufRead>(reader: R, file: &str) -> Result<Vec<(String, Vec<Row>)>, Failure> {
    let bad =
        |why: String| Failure::Usage(format!("not an Open Cookie Database CSV: {file}: {why}"));
    let mut csv = CsvReader::new(reader);
    let csv_err = |e: CsvError| match e {
        CsvError::Io(e) => Failure::Usage(format!("cannot read {file}: {e}")),
        other => bad(other.to_string()),
    };
    let header = csv
        .record()
        .map_err(csv_err)?
        .ok_or_else(|| bad("empty file".into()))?;
    let idx = header_indices(&header).map_err(bad)?;
    let mut platforms: Vec<(String, Vec<Row>)> = Vec::new();
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(fields) = csv.record().map_err(csv_err)? {
        let r = row(&fields, &idx);
        if r.platform.is_empty() || r.name.is_empty() {
            continue;
        }
        let key = r.platform.to_lowercase();
        let i = *by_key.entry(key).or_insert_with(|| {
            platforms.push((r.platform.clone(), Vec::new()));
            platforms.len() - 1
        });
        if let Some((_, rows)) = platforms.get_mut(i) {
            rows.push(r);
        }
    }
    Ok(platforms)
}

/// Runs the import.
pub fn run(args: &ImportArgs) -> Result<(), Failure> {
    let file = std::fs::File::open(&args.file)
        .map_err(|e| Failure::Usage(format!("cannot open {}: {e}", args.file)))?;
    let platforms = read_platforms(BufReader::new(file), &args.file)?;
    let wanted = |p: &str| {
        args.platforms.is_empty()
            || args
                .platforms
                .iter()
                .any(|w| w.eq_ignore_ascii_case(p) || slug(w) == slug(p))
    };
    let out_dir = Path::new(&args.out);
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Failure::Runtime(format!("cannot create {}: {e}", args.out)))?;
    let (mut written, mut skipped, mut matched) = (Vec::new(), 0usize, 0usize);
    for (platform, rows) in &platforms {
        if !wanted(platform) {
            continue;
        }
        matched += 1;
        match generate(platform, rows) {
            Outcome::Skipped(why) => {
                skipped += 1;
                eprintln!("tagwatch: skipped {platform:?}: {why}");
            }
            Outcome::Generated { id, toml, notes } => {
                for note in notes {
                    eprintln!("tagwatch: {platform:?}: left out {note}");
                }
                let path = out_dir.join(format!("{id}.toml"));
                if path.exists() {
                    skipped += 1;
                    eprintln!(
                        "tagwatch: skipped {platform:?}: {} exists (delete it to regenerate)",
                        path.display()
                    );
                    continue;
                }
                std::fs::write(&path, toml).map_err(|e| {
                    Failure::Runtime(format!("cannot write {}: {e}", path.display()))
                })?;
                written.push(path.display().to_string());
            }
        }
    }
    if !args.platforms.is_empty() && matched == 0 {
        return Err(Failure::Usage(format!(
            "no platform named {} in {}",
            args.platforms.join(", "),
            args.file
        )));
    }
    eprintln!(
        "tagwatch: {} platforms read, {} files written to {}, {} skipped",
        platforms.len(),
        written.len(),
        args.out,
        skipped
    );
    let mut listing = String::new();
    for w in written {
        listing.push_str(&w);
        listing.push('\n');
    }
    super::print(&listing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise;

    fn records(text: &str) -> Vec<Vec<String>> {
        let mut r = CsvReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(rec) = r.record().unwrap() {
            out.push(rec);
        }
        out
    }

    #[test]
    fn csv_quotes_newlines_and_endings() {
        let recs = records("a,b,c\r\n1,\"x, \"\"y\"\"\nz\",3\n4,,\nlast,no\"quote,end");
        assert_eq!(recs[0], ["a", "b", "c"]);
        assert_eq!(recs[1], ["1", "x, \"y\"\nz", "3"]);
        assert_eq!(recs[2], ["4", "", ""]);
        assert_eq!(recs[3], ["last", "no\"quote", "end"]);
        assert_eq!(recs.len(), 4);
    }

    #[test]
    fn csv_errors() {
        let mut r = CsvReader::new("a,\"open\nstill open".as_bytes());
        assert!(matches!(
            r.record(),
            Err(CsvError::Unterminated { line: 1 })
        ));
        let long = format!("\"{}\"", "x".repeat(MAX_RECORD + 10));
        let mut r = CsvReader::new(long.as_bytes());
        assert!(matches!(r.record(), Err(CsvError::TooLong { .. })));
    }

    #[test]
    fn lifetimes() {
        let cases = [
            ("2 years", Some(730)),
            ("24 hours", Some(1)),
            ("1 minute", Some(1)),
            ("30 days", Some(30)),
            ("6 months after last activity", Some(180)),
            ("30 seconds till 1 year", Some(365)),
            ("60 days till 3650 days", Some(3650)),
            (
                "180 days after last activity or 10 years when opting out",
                Some(180),
            ),
            ("Session", None),
            ("End of session (browser)", None),
            ("", None),
            ("Persistent", None),
            ("1 Year", Some(365)),
            ("a year", Some(365)),
            ("13 months", Some(390)),
            ("a minimum of 2 years", Some(730)),
        ];
        for (text, want) in cases {
            assert_eq!(lifetime_days(text), want, "{text}");
        }
    }

    #[test]
    fn signatures_and_slugs() {
        assert_eq!(
            signature("CookieConsent [x4]", false),
            Ok(("CookieConsent".into(), false))
        );
        assert_eq!(signature("SR<RotatorID>", false), Ok(("SR".into(), true)));
        assert_eq!(
            signature("_hjSession_", true),
            Ok(("_hjSession_".into(), true))
        );
        assert_eq!(signature("_pk_id*", false), Ok(("_pk_id".into(), true)));
        assert!(signature("_dp Cookie", false).is_err());
        assert!(signature("<id>", true).is_err());
        assert_eq!(slug("Microsoft Clarity"), "microsoft-clarity");
        assert_eq!(slug("  Tawk.to!! "), "tawk-to");
        assert_eq!(slug("Ünïcode"), "n-code");
        assert_eq!(toml_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn header_by_name_in_any_order() {
        let header: Vec<String> = [
            "\u{feff}ID",
            "Platform",
            "Category",
            "Cookie / Data Key name",
            "Domain",
            "Description",
            "Retention period",
            "Data Controller",
            "User Privacy & GDPR Rights Portals",
            "Wildcard match",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(header_indices(&header).unwrap(), [0, 1, 2, 3, 6, 7, 9]);
        assert!(header_indices(&header[..5]).is_err());
    }

    #[test]
    fn curated_platforms_are_skipped() {
        let row = |platform: &str, name: &str| Row {
            id: "x".into(),
            platform: platform.into(),
            category: "Analytics".into(),
            name: name.into(),
            retention: "1 year".into(),
            controller: "Someone".into(),
            wildcard: true,
        };
        assert!(matches!(
            generate("Intercom", &[row("Intercom", "intercom-id-")]),
            Outcome::Skipped(_)
        ));
        assert!(matches!(
            generate("INTERCOM", &[row("INTERCOM", "zzz")]),
            Outcome::Skipped(_)
        ));
        assert!(matches!(
            generate("Some Chat", &[row("Some Chat", "intercom-session-")]),
            Outcome::Skipped(_)
        ));
        let Outcome::Generated { id, toml, .. } =
            generate("Acme Stats", &[row("Acme Stats", "_acme_")])
        else {
            panic!("not generated");
        };
        assert_eq!(id, "acme-stats");
        assert!(toml.contains(
            "name = \"_acme_\"\nmatch = \"prefix\"\npurpose = \"analytics\"\nlifetime_days = 365\n"
        ));
    }

    #[test]
    fn parsers_never_panic_on_noise() {
        for seed in 0..2000 {
            let bytes = noise(seed, (seed % 300) as usize, b",\"\r\n ab1[x]<>{}*");
            let mut r = CsvReader::new(&bytes[..]);
            while let Ok(Some(_)) = r.record() {}
            let text = String::from_utf8_lossy(&bytes);
            let _ = lifetime_days(&text);
            let _ = signature(&text, seed.is_multiple_of(2));
            let _ = slug(&text);
            let _ = toml_str(&text);
        }
    }
}
