//! `tagwatch`: the collector and the CLI. This file only turns arguments
//! into calls of the libraries — `tagwatch_collector` (serve, export),
//! `tagwatch_store` (sites, purge) and `tagwatch_audit` (the offline
//! commands) — and their outcome into an exit code. See docs/collector.md
//! and docs/cli.md.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tagwatch_audit::{self as audit, Failure};
use tagwatch_collector::{defaults, export, keys, logging, origin};
use tagwatch_store::{self as store, timefmt, DEFAULT_DB};

/// mimalloc instead of the system allocator: every request allocates its
/// body, parsed reports and stored rows, and the writer thread frees what the
/// HTTP threads allocated; measured in docs/benchmarks.md (issue 12).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Longest `--header-timeout`, `--idle-timeout` and `--body-timeout` (an
/// hour: longer is a typo, and would hold connections for nothing).
const MAX_TIMEOUT_SECS: u64 = 3600;
/// Largest `--max-connections`: Linux's default ceiling on descriptors per
/// process (`fs.nr_open`); no process can hold more connections.
const MAX_CONNECTIONS_FLAG: usize = 1 << 20;

#[derive(Parser)]
#[command(name = "tagwatch", version, about = "tagwatch collector and CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Open the store without SQLite's integrity check (PRAGMA quick_check),
    /// which reads the whole file: for very large stores only. The other
    /// checks (a SQLite file, writable, known schema) still run.
    #[arg(long, global = true)]
    skip_integrity_check: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector: POST /r ingest, GET /api/findings, GET /api/health.
    Serve(ServeArgs),
    /// Register and list sites.
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Classify URLs and cookie names from stdin: one JSON object a line.
    Classify,
    /// Read CMP consent from Cookie header values on stdin: one JSON object a line.
    Consent,
    /// Audit a browser HAR export offline: findings and inventory.
    /// Exit 0 without findings, 3 with findings, 2 on bad input.
    Har(HarArgs),
    /// The operator's Ed25519 signing keys (evidence bundles, purge checkpoints).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Write a signed evidence bundle (zip) of a site's findings.
    Evidence(EvidenceArgs),
    /// Check an evidence bundle offline, or the chain of a site in a store.
    /// Exit 0 when it verifies, 1 naming what is wrong.
    Verify(VerifyArgs),
    /// The vendor catalog: list, show, import the Open Cookie Database.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Decode IAB TCF v2 TC strings from stdin: one JSON object a line.
    Tcf,
    /// Decode IAB GPP strings from stdin: one JSON object a line.
    Gpp,
    /// Delete reports observed before a time; prints rows removed per table on stderr.
    Purge(PurgeArgs),
    /// Write a site's inventory and findings: JSON, CSV, or a Record of
    /// Processing Activities draft (Markdown).
    Export(ExportArgs),
}

#[derive(Args)]
struct ExportArgs {
    /// The site key.
    #[arg(long, value_name = "KEY")]
    site: String,
    /// json (inventory, stats, findings), csv (the inventory; with
    /// --findings the findings) or ropa (Markdown, one section per vendor).
    #[arg(long, value_name = "FORMAT")]
    format: String,
    /// With --format csv: one row per finding instead of the inventory.
    #[arg(long)]
    findings: bool,
    /// Only what was observed at or after this time (a date or RFC 3339 time).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only findings observed before this time.
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// Only the reports of this release (the embed config's `release`).
    #[arg(long, value_name = "RELEASE")]
    release: Option<String>,
    /// Store: sqlite:PATH or postgres://USER@HOST:PORT/DBNAME.
    #[arg(long, default_value = DEFAULT_DB, value_name = "URL")]
    db: String,
    /// Reports in ClickHouse: clickhouse://HOST:PORT/DATABASE (the
    /// control plane stays in --db).
    #[arg(long, value_name = "URL")]
    events: Option<String>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a key pair: DIR/tagwatch-signing.key (secret, mode 0600, never
    /// printed) and DIR/tagwatch-signing.pub; prints the public key.
    Init {
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: String,
    },
    /// Print the public key of a key pair (from its .key or .pub file).
    Show {
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: String,
    },
}

/// The secret key file: `--signing-key`, else `TAGWATCH_SIGNING_KEY`.
fn signing_key(flag: Option<&str>) -> Result<Option<store::chain::SigningKey>, Failure> {
    let path = match flag {
        Some(p) => Some(p.to_owned()),
        None => std::env::var("TAGWATCH_SIGNING_KEY")
            .ok()
            .filter(|p| !p.trim().is_empty()),
    };
    path.map(|p| tagwatch_evidence::keys::load_secret(std::path::Path::new(&p)))
        .transpose()
        .map_err(Failure::Usage)
}

#[derive(Args)]
struct EvidenceArgs {
    /// The site's key.
    #[arg(long, value_name = "KEY")]
    site: String,
    /// Findings observed at or after (a date or an RFC 3339 time).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Findings observed before.
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// One finding, by its id (`tagwatch export`, the dashboard).
    #[arg(long, value_name = "ID")]
    finding: Option<i64>,
    /// The bundle to write (refused if it exists).
    #[arg(long, value_name = "FILE")]
    out: String,
    /// The secret key file (`tagwatch keys init`); else TAGWATCH_SIGNING_KEY.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<String>,
    /// Store: sqlite:PATH or postgres://USER@HOST:PORT/DBNAME.
    #[arg(long, default_value = DEFAULT_DB, value_name = "URL")]
    db: String,
    /// Reports in ClickHouse (`serve --events`): the bundle holds their
    /// chained row versions (--finding takes a row key).
    #[arg(long, value_name = "URL")]
    events: Option<String>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The bundle to check (omit with --db).
    bundle: Option<String>,
    /// The operator's public key (64 hex digits, or a .pub file). Without
    /// it, a bundle is checked against the key it names (printed: compare
    /// it with the published one).
    #[arg(long, value_name = "PUB")]
    key: Option<String>,
    /// Check the chain of --site in this store instead of a bundle.
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    #[arg(long, value_name = "KEY")]
    site: Option<String>,
    /// Reports in ClickHouse (`serve --events`) beside --db: their
    /// finding, health and inventory row versions are checked against the
    /// chain in --db.
    #[arg(long, value_name = "URL")]
    events: Option<String>,
}

#[derive(Args)]
struct PurgeArgs {
    /// Signs the checkpoint each site's chain records (docs/evidence.md);
    /// else TAGWATCH_SIGNING_KEY.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<String>,
    /// A date (2026-01-01, midnight UTC) or an RFC 3339 time (2026-01-01T12:00:00Z).
    #[arg(long, value_name = "WHEN")]
    before: String,
    /// Store: sqlite:PATH or postgres://USER@HOST:PORT/DBNAME.
    #[arg(long, default_value = DEFAULT_DB, value_name = "URL")]
    db: String,
    /// Reports in ClickHouse: clickhouse://HOST:PORT/DATABASE (the
    /// control plane stays in --db).
    #[arg(long, value_name = "URL")]
    events: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on stderr).
    #[arg(long, default_value = defaults::LISTEN, value_name = "ADDR")]
    listen: String,
    /// Store: sqlite:PATH or postgres://USER@HOST:PORT/DBNAME.
    #[arg(long, default_value = DEFAULT_DB, value_name = "URL")]
    db: String,
    /// Reports in ClickHouse: clickhouse://HOST:PORT/DATABASE (the
    /// control plane stays in --db).
    #[arg(long, value_name = "URL")]
    events: Option<String>,
    /// Reports requests accepted per second and site (0: no limit).
    #[arg(long, default_value_t = defaults::RATE, value_name = "PER_SECOND")]
    rate: f64,
    /// Requests a site may send at once before the rate applies.
    #[arg(long, default_value_t = defaults::BURST, value_name = "REQUESTS")]
    burst: u32,
    /// Refuse reports without a real Origin header (absent or "null")
    /// instead of checking the origin of each report's page URL.
    #[arg(long)]
    strict_origin: bool,
    /// Delete reports observed longer ago than this (90d, 36h), at start
    /// and then hourly.
    #[arg(long, value_name = "AGE")]
    retain: Option<String>,
    /// Ingest requests accepted per second and client address (IPv6: per
    /// /64); 0: no limit.
    #[arg(long, default_value_t = defaults::CLIENT_RATE, value_name = "PER_SECOND")]
    client_rate: f64,
    /// Requests a client address may send at once before --client-rate applies.
    #[arg(long, default_value_t = defaults::CLIENT_BURST, value_name = "REQUESTS")]
    client_burst: u32,
    /// Requests per second a client address may send one site and still
    /// count as a visitor: beyond it, its requests are refused first when
    /// the site's --rate runs short (0: no such distinction).
    #[arg(long, default_value_t = defaults::VISITOR_RATE, value_name = "PER_SECOND")]
    visitor_rate: f64,
    /// Requests a client address may send one site at once before
    /// --visitor-rate applies.
    #[arg(long, default_value_t = defaults::VISITOR_BURST, value_name = "REQUESTS")]
    visitor_burst: u32,
    /// The collector is behind a proxy: the client address is the last
    /// entry of X-Forwarded-For.
    #[arg(long)]
    behind_proxy: bool,
    /// Seconds a client has to send a whole request head, counted from
    /// connecting (or from the previous answer on a kept-alive connection).
    #[arg(long, default_value_t = defaults::HEADER_TIMEOUT, value_name = "SECONDS")]
    header_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, default_value_t = defaults::IDLE_TIMEOUT, value_name = "SECONDS")]
    idle_timeout: u64,
    /// Seconds a client has to send a whole report body (POST /r, POST
    /// /csp/KEY); 408 after.
    #[arg(long, default_value_t = defaults::BODY_TIMEOUT, value_name = "SECONDS")]
    body_timeout: u64,
    /// Most connections open at once; more are closed as soon as they are
    /// accepted. Default: the descriptor limit (ulimit -n) minus 64, at
    /// most 8192.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// stderr log: text (the documented lines) or json (one object a line,
    /// also per request).
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    log_format: String,
    /// POST a JSON alert here when a finding type first appears for a site.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Signs the checkpoints retention records in each site's chain
    /// (`tagwatch keys init`; docs/evidence.md); else TAGWATCH_SIGNING_KEY.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<String>,
}

#[derive(Args)]
struct HarArgs {
    /// HAR 1.2 file (browser DevTools → Network → "Export HAR").
    #[arg(value_name = "FILE.har")]
    file: String,
    /// Consent in force from the start of the page view: `none` (only
    /// necessary), `all`, or a JSON object such as '{"functional":true}'.
    #[arg(long, default_value = "none", value_name = "none|all|JSON")]
    consent: String,
    /// Site policy: a JSON file in the shape of the `policy` key of `config`.
    #[arg(long, value_name = "FILE")]
    policy: Option<String>,
    /// The audited page's URL (default: the first document request).
    #[arg(long, value_name = "URL")]
    page: Option<String>,
    /// Print {"page","entries","findings","inventory"} as JSON instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// List the vendors: id, name, category, domain and cookie-rule counts.
    List {
        /// One JSON object a line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Everything the catalog knows about one vendor.
    Show {
        /// Vendor id (see `tagwatch catalog list`).
        id: String,
        /// JSON (the catalog TOML schema's field names) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Turn the Open Cookie Database CSV into catalog TOML files (cookie
    /// signatures), one per platform not already in the catalog.
    ImportOcd(ImportArgs),
}

#[derive(Args)]
struct ImportArgs {
    /// The Open Cookie Database CSV (open-cookie-database.csv).
    #[arg(value_name = "FILE.csv")]
    file: String,
    /// Directory for the generated TOML files. The default is not compiled
    /// into the catalog (core/build.rs reads catalog/*.toml only): review a
    /// file, then move it up into catalog/.
    #[arg(long, default_value = "catalog/ocd", value_name = "DIR")]
    out: String,
    /// Import only this platform (OCD `Platform`, case-insensitive); repeatable.
    #[arg(long = "platform", value_name = "NAME")]
    platforms: Vec<String>,
}

impl From<HarArgs> for audit::har::HarArgs {
    fn from(a: HarArgs) -> Self {
        Self {
            file: a.file,
            consent: a.consent,
            policy: a.policy,
            page: a.page,
            json: a.json,
        }
    }
}

impl From<CatalogCommand> for audit::catalog::CatalogCommand {
    fn from(c: CatalogCommand) -> Self {
        match c {
            CatalogCommand::List { json } => Self::List { json },
            CatalogCommand::Show { id, json } => Self::Show { id, json },
            CatalogCommand::ImportOcd(a) => Self::ImportOcd(audit::ocd::ImportArgs {
                file: a.file,
                out: a.out,
                platforms: a.platforms,
            }),
        }
    }
}

#[derive(Subcommand)]
enum SiteCommand {
    /// Register a site; prints its new key alone on stdout.
    Add {
        /// Origin the site's pages are served from (scheme://host[:port]); repeatable.
        #[arg(long = "origin", value_name = "ORIGIN", required = true)]
        origins: Vec<String>,
        /// Store: sqlite:PATH or postgres://USER@HOST:PORT/DBNAME.
        #[arg(long, default_value = DEFAULT_DB, value_name = "URL")]
        db: String,
    },
    /// List sites, one JSON object a line: {"site","origins","created_at","sample","enabled"}.
    List {
        /// Store: sqlite:PATH or postgres://USER@HOST:PORT/DBNAME.
        #[arg(long, default_value = DEFAULT_DB, value_name = "URL")]
        db: String,
    },
    /// Change what the snippet reads from GET /config/KEY: sampling, on/off.
    Set {
        /// The site key.
        #[arg(value_name = "KEY")]
        key: String,
        /// Share of page views monitored, 0 to 1.
        #[arg(long, value_name = "SHARE")]
        sample: Option<String>,
        /// Turn the snippet off for this site (it stops before loading the monitor).
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Turn the snippet back on.
        #[arg(long)]
        enable: bool,
        /// Store: sqlite:PATH or postgres://USER@HOST:PORT/DBNAME.
        #[arg(long, default_value = DEFAULT_DB, value_name = "URL")]
        db: String,
    },
}

fn store_failure(db: &str, e: store::StoreError) -> Failure {
    match e {
        store::StoreError::BadUrl(_) => {
            Failure::Usage(format!("--db {}: {e}", store::redact_url(db)))
        }
        other => Failure::Runtime(format!(
            "cannot open the store {}: {other}",
            store::redact_url(db)
        )),
    }
}

/// The store of `--db`, with its reports in the events store of
/// `--events` when given.
fn open_store(
    db: &str,
    events: Option<&str>,
    checks: store::Checks,
) -> Result<std::sync::Arc<dyn store::Store>, Failure> {
    let control = store::open(db, 0, checks).map_err(|e| store_failure(db, e))?;
    match events {
        None => Ok(control),
        Some(url) => tagwatch_events::open(url, control).map_err(|e| events_failure(url, e)),
    }
}

/// `--events` could not be opened: a usage error for a malformed URL.
fn events_failure(url: &str, e: store::StoreError) -> Failure {
    match e {
        store::StoreError::BadUrl(why) => Failure::Usage(why),
        other => Failure::Runtime(format!(
            "cannot open the events store {}: {other}",
            store::redact_url(url)
        )),
    }
}

/// `--retain`: a whole number of days (`90d`) or hours (`36h`), at least 1 h.
fn parse_retention(text: &str) -> Result<Duration, String> {
    let bad = || format!("--retain {text:?}: expected a number of days or hours, e.g. 90d or 36h");
    let trimmed = text.trim();
    let (number, unit_secs) = if let Some(n) = trimmed.strip_suffix('d') {
        (n, 86_400u64)
    } else if let Some(n) = trimmed.strip_suffix('h') {
        (n, 3_600u64)
    } else {
        return Err(bad());
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = number.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!("--retain {text:?}: must be at least 1h"));
    }
    // Longer than the years the store can represent.
    let secs = n
        .checked_mul(unit_secs)
        .filter(|s| *s <= 10_000 * 366 * 86_400)
        .ok_or_else(|| format!("--retain {text:?}: too long"))?;
    Ok(Duration::from_secs(secs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let checks = store::Checks {
        integrity: !cli.skip_integrity_check,
    };
    let result = match cli.command {
        Command::Serve(args) => serve(&args, checks),
        Command::Site {
            command: SiteCommand::Add { origins, db },
        } => site_add(&origins, &db, checks),
        Command::Site {
            command: SiteCommand::List { db },
        } => site_list(&db, checks),
        Command::Site {
            command:
                SiteCommand::Set {
                    key,
                    sample,
                    disable,
                    enable,
                    db,
                },
        } => site_set(&key, sample.as_deref(), disable, enable, &db, checks),
        Command::Classify => audit::classify::run(),
        Command::Consent => audit::consent::run(),
        Command::Har(args) => match audit::har::run(&args.into()) {
            Ok(true) => return ExitCode::from(3),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        },
        Command::Catalog { command } => audit::catalog::run(&command.into()),
        Command::Tcf => audit::tcf::run(),
        Command::Gpp => audit::gpp::run(),
        Command::Purge(args) => purge(&args, checks),
        Command::Keys {
            command: KeysCommand::Init { dir },
        } => keys_init(&dir),
        Command::Keys {
            command: KeysCommand::Show { dir },
        } => keys_show(&dir),
        Command::Evidence(args) => evidence(&args, checks),
        Command::Verify(args) => match verify(&args, checks) {
            Ok(false) => return ExitCode::from(3),
            Ok(true) => Ok(()),
            Err(e) => Err(e),
        },
        Command::Export(args) => export_cmd(&args, checks),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("tagwatch: error: {failure}");
            match failure {
                Failure::Usage(_) => ExitCode::from(2),
                Failure::Runtime(_) => ExitCode::from(1),
            }
        }
    }
}

fn site_add(origins: &[String], db: &str, checks: store::Checks) -> Result<(), Failure> {
    let mut normalized = BTreeSet::new();
    for origin in origins {
        normalized
            .insert(origin::normalize_pattern(origin).map_err(|e| Failure::Usage(e.to_string()))?);
    }
    let normalized: Vec<String> = normalized.into_iter().collect();
    let store = store::open(db, 0, checks).map_err(|e| store_failure(db, e))?;
    let created_at = timefmt::iso_from_ms(timefmt::now_ms());
    // A collision of 144 random bits will not happen; retry anyway.
    for _ in 0..3 {
        let key = keys::new_site_key()
            .map_err(|e| Failure::Runtime(format!("no randomness for a site key: {e}")))?;
        match store.add_site(&key, &normalized, &created_at) {
            Ok(()) => {
                let mut out = std::io::stdout().lock();
                return writeln!(out, "{key}")
                    .and_then(|()| out.flush())
                    .map_err(|e| Failure::Runtime(format!("cannot write to stdout: {e}")));
            }
            Err(store::StoreError::DuplicateSite) => continue,
            Err(e) => return Err(Failure::Runtime(format!("cannot add the site: {e}"))),
        }
    }
    Err(Failure::Runtime("could not find a free site key".into()))
}

fn site_list(db: &str, checks: store::Checks) -> Result<(), Failure> {
    let store = store::open(db, 0, checks).map_err(|e| store_failure(db, e))?;
    let sites = store
        .list_sites()
        .map_err(|e| Failure::Runtime(format!("cannot list sites: {e}")))?;
    let mut out = std::io::stdout().lock();
    for site in sites {
        let line = serde_json::to_string(&site)
            .map_err(|e| Failure::Runtime(format!("cannot encode a site: {e}")))?;
        writeln!(out, "{line}")
            .map_err(|e| Failure::Runtime(format!("cannot write to stdout: {e}")))?;
    }
    out.flush()
        .map_err(|e| Failure::Runtime(format!("cannot write to stdout: {e}")))
}

fn site_set(
    key: &str,
    sample: Option<&str>,
    disable: bool,
    enable: bool,
    db: &str,
    checks: store::Checks,
) -> Result<(), Failure> {
    let sample = sample
        .map(|text| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "--sample {text:?}: expected a share of page views from 0 to 1, e.g. 0.1"
                    ))
                })
        })
        .transpose()?;
    let enabled = match (disable, enable) {
        (true, _) => Some(false),
        (_, true) => Some(true),
        _ => None,
    };
    if sample.is_none() && enabled.is_none() {
        return Err(Failure::Usage(
            "nothing to change: give --sample SHARE, --disable or --enable".into(),
        ));
    }
    let store = store::open(db, 0, checks).map_err(|e| store_failure(db, e))?;
    let change = store::SiteChange { sample, enabled };
    let found = store
        .set_site_config(key, &change)
        .map_err(|e| Failure::Runtime(format!("cannot change the site: {e}")))?;
    if !found {
        return Err(Failure::Usage(format!(
            "unknown site key {key:?}; see `tagwatch site list`"
        )));
    }
    let config = store
        .site_config(key)
        .map_err(|e| Failure::Runtime(format!("cannot read the site back: {e}")))?;
    if let Some(c) = config {
        eprintln!(
            "tagwatch: site {key}: sample {}, {}",
            c.sample,
            if c.enabled { "enabled" } else { "disabled" }
        );
    }
    Ok(())
}

fn export_cmd(args: &ExportArgs, checks: store::Checks) -> Result<(), Failure> {
    let format = export::Format::parse(&args.format).ok_or_else(|| {
        Failure::Usage(format!(
            "--format {:?}: expected json, csv or ropa",
            args.format
        ))
    })?;
    if args.findings && format != export::Format::Csv {
        return Err(Failure::Usage(
            "--findings goes with --format csv (json and ropa have the findings anyway)".into(),
        ));
    }
    let when = |flag: &str, v: &Option<String>| -> Result<Option<String>, Failure> {
        v.as_deref()
            .map(|text| {
                timefmt::parse_instant(text)
                    .map(timefmt::iso_from_ms)
                    .ok_or_else(|| {
                        Failure::Usage(format!(
                            "{flag} {text:?}: expected a date (2026-01-01) or an RFC 3339 time (2026-01-01T12:00:00Z)"
                        ))
                    })
            })
            .transpose()
    };
    let request = export::Request {
        site: args.site.clone(),
        since: when("--since", &args.since)?,
        until: when("--until", &args.until)?,
        release: tagwatch_collector::release::param("--release", args.release.clone())
            .map_err(Failure::Usage)?,
        format,
        findings_csv: args.findings,
    };
    let store = open_store(&args.db, args.events.as_deref(), checks)?;
    match export::export(&*store, &request) {
        Ok(Some(text)) => audit::print(&text),
        Ok(None) => Err(Failure::Usage(format!(
            "unknown site key {:?}; see `tagwatch site list`",
            args.site
        ))),
        Err(e) => Err(Failure::Runtime(format!("cannot read the store: {e}"))),
    }
}

fn purge(args: &PurgeArgs, checks: store::Checks) -> Result<(), Failure> {
    let ms = timefmt::parse_instant(&args.before).ok_or_else(|| {
        Failure::Usage(format!(
            "--before {:?}: expected a date (2026-01-01, midnight UTC) or an RFC 3339 time (2026-01-01T12:00:00Z)",
            args.before
        ))
    })?;
    let before = timefmt::iso_from_ms(ms);
    let key = signing_key(args.signing_key.as_deref())?;
    let store = open_store(&args.db, args.events.as_deref(), checks)?;
    if let Some(key) = key {
        store.sign_checkpoints(key);
    }
    let purged = store::purge_all(&*store, &before)
        .map_err(|e| Failure::Runtime(format!("cannot delete old reports: {e}")))?;
    eprintln!("tagwatch: purge: reports observed before {before}");
    for (table, rows) in purged.per_table() {
        eprintln!("tagwatch: purge: {table} {rows}");
    }
    Ok(())
}

fn keys_init(dir: &str) -> Result<(), Failure> {
    let (public, secret) =
        tagwatch_evidence::keys::init(std::path::Path::new(dir)).map_err(Failure::Runtime)?;
    eprintln!(
        "tagwatch: keys: secret key written to {} (mode 0600: keep it, back it up, never publish it)",
        secret.display()
    );
    println!("{}", store::chain::to_hex(public.as_bytes()));
    Ok(())
}

fn keys_show(dir: &str) -> Result<(), Failure> {
    let dir = std::path::Path::new(dir);
    let public = dir.join(tagwatch_evidence::keys::PUBLIC_FILE);
    let file = if public.exists() {
        public
    } else {
        dir.join(tagwatch_evidence::keys::SECRET_FILE)
    };
    let key =
        tagwatch_evidence::keys::load_public(&file.to_string_lossy()).map_err(Failure::Usage)?;
    println!("{}", store::chain::to_hex(key.as_bytes()));
    Ok(())
}

/// Most findings one bundle holds: a bundle is read whole by `verify`;
/// narrow a larger one with --since/--until.
const MAX_BUNDLE_FINDINGS: i64 = 100_000;

fn instant(flag: &str, text: Option<&str>) -> Result<Option<String>, Failure> {
    text.map(|t| {
        timefmt::parse_instant(t).map(timefmt::iso_from_ms).ok_or_else(|| {
            Failure::Usage(format!(
                "{flag} {t:?}: expected a date (2026-01-01, midnight UTC) or an RFC 3339 time (2026-01-01T12:00:00Z)"
            ))
        })
    })
    .transpose()
}

fn evidence(args: &EvidenceArgs, checks: store::Checks) -> Result<(), Failure> {
    let since = instant("--since", args.since.as_deref())?;
    let until = instant("--until", args.until.as_deref())?;
    let key = signing_key(args.signing_key.as_deref())?.ok_or_else(|| {
        Failure::Usage(
            "a bundle is signed: give --signing-key FILE (or TAGWATCH_SIGNING_KEY); make a key with `tagwatch keys init`".into(),
        )
    })?;
    let store = open_store(&args.db, args.events.as_deref(), checks)?;
    let ev = store
        .evidence(&store::EvidenceQuery {
            site: args.site.clone(),
            since: since.clone(),
            until: until.clone(),
            finding: args.finding,
            limit: MAX_BUNDLE_FINDINGS + 1,
        })
        .map_err(|e| Failure::Runtime(format!("cannot read the store: {e}")))?;
    if ev.left_out > 0 {
        eprintln!(
            "tagwatch: evidence: {} finding row{} of the window left out: no chain entry covers {} (not proven; see tagwatch verify --db … --events …)",
            ev.left_out,
            if ev.left_out == 1 { "" } else { "s" },
            if ev.left_out == 1 { "it" } else { "them" }
        );
    }
    if ev.findings.is_empty() {
        return Err(Failure::Runtime(format!(
            "site {} has no {} {}: nothing to put in a bundle",
            args.site,
            if args.events.is_some() {
                "chained finding row"
            } else {
                "finding"
            },
            match args.finding {
                Some(id) => format!("with id {id} in that window"),
                None => "in that window".into(),
            }
        )));
    }
    if i64::try_from(ev.findings.len()).unwrap_or(i64::MAX) > MAX_BUNDLE_FINDINGS {
        return Err(Failure::Usage(format!(
            "more than {MAX_BUNDLE_FINDINGS} findings: narrow the bundle with --since and --until"
        )));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.out)
        .map_err(|e| Failure::Runtime(format!("cannot create {}: {e}", args.out)))?;
    let created_at = timefmt::iso_from_ms(timefmt::now_ms());
    let mut out = std::io::BufWriter::new(file);
    tagwatch_evidence::bundle::write(
        &mut out,
        &tagwatch_evidence::bundle::Contents {
            site: &args.site,
            since: since.as_deref(),
            until: until.as_deref(),
            finding: args.finding,
            created_at: &created_at,
            collector_version: env!("CARGO_PKG_VERSION"),
            evidence: &ev,
        },
        &key,
    )
    .map_err(Failure::Runtime)?;
    out.into_inner()
        .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", args.out)))?
        .sync_all()
        .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", args.out)))?;
    eprintln!(
        "tagwatch: evidence: {} findings of site {}, chain seq {}..{}, written to {}",
        ev.findings.len(),
        args.site,
        ev.chain.entries.first().map_or(0, |e| e.seq),
        ev.chain.entries.last().map_or(0, |e| e.seq),
        args.out
    );
    Ok(())
}

/// Checks a bundle or a store's chain: `Ok(true)` verified, `Ok(false)`
/// nothing was changed but some rows are not proven (exit 3), `Err` a
/// problem (exit 1, each listed).
fn verify(args: &VerifyArgs, checks: store::Checks) -> Result<bool, Failure> {
    let key = args
        .key
        .as_deref()
        .map(tagwatch_evidence::keys::load_public)
        .transpose()
        .map_err(Failure::Usage)?;
    let (problems, notes, unproven) = match (&args.bundle, &args.db, &args.site) {
        (Some(path), None, None) => {
            let file = std::fs::File::open(path)
                .map_err(|e| Failure::Runtime(format!("cannot open {path}: {e}")))?;
            let v = tagwatch_evidence::bundle::verify(std::io::BufReader::new(file), key.as_ref());
            (v.problems, v.notes, Default::default())
        }
        (None, Some(db), Some(site)) => {
            let store = open_store(db, args.events.as_deref(), checks)?;
            let known = store
                .site_config(site)
                .map_err(|e| Failure::Runtime(format!("cannot read the store: {e}")))?;
            if known.is_none() {
                return Err(Failure::Usage(format!(
                    "--site {site}: no such site in this store (tagwatch site list)"
                )));
            }
            let dump = store
                .chain(site)
                .map_err(|e| Failure::Runtime(format!("cannot read the store: {e}")))?;
            let versions_chained = dump
                .entries
                .iter()
                .filter(|e| {
                    [
                        store::chain::VERSION,
                        store::chain_rows::HEALTH_VERSION,
                        store::chain_rows::INVENTORY_VERSION,
                    ]
                    .contains(&e.kind.as_str())
                })
                .count();
            if args.events.is_none() && versions_chained > 0 {
                // The rows those entries cover are in ClickHouse: checked
                // without them, the chain would prove nothing about them.
                return Err(Failure::Usage(format!(
                    "the chain of site {site} covers {versions_chained} row versions stored in ClickHouse (serve --events): give --events URL to check them"
                )));
            }
            let verdict = dump.check(key.as_ref());
            let mut notes = vec![match &dump.versions {
                Some(v) => format!(
                    "{} finding, {} health and {} inventory row versions in ClickHouse, chain seq {}..{} of site {site}",
                    v.iter().filter(|v| v.kind == store::chain::VERSION).count(),
                    v.iter().filter(|v| v.kind == store::chain_rows::HEALTH_VERSION).count(),
                    v.iter().filter(|v| v.kind == store::chain_rows::INVENTORY_VERSION).count(),
                    dump.entries.first().map_or(0, |e| e.seq),
                    dump.entries.last().map_or(0, |e| e.seq)
                ),
                None => format!(
                    "{} findings, {} health reports, {} inventories, chain seq {}..{} of site {site}",
                    dump.findings.len(),
                    dump.health.len(),
                    dump.inventories.len(),
                    dump.entries.first().map_or(0, |e| e.seq),
                    dump.entries.last().map_or(0, |e| e.seq)
                ),
            }];
            if verdict.accounted > 0 {
                notes.push(format!(
                    "{} chained row version{} of weeks a purge dropped went with {} without a removal entry \
                     (reports that landed in the week while the purge dropped it): accounted for by its checkpoint",
                    verdict.accounted,
                    if verdict.accounted == 1 { "" } else { "s" },
                    if verdict.accounted == 1 { "it" } else { "them" }
                ));
            }
            let (health, inventories) = dump.unproven();
            if health + inventories > 0 {
                notes.push(format!(
                    "{health} health reports and {inventories} inventories were stored before \
                     they were chained (schema version 10) and not replaced since: not proven"
                ));
            }
            let no_rows = dump.findings.is_empty() && dump.versions.as_ref().is_none_or(Vec::is_empty);
            if dump.entries.is_empty() && no_rows {
                // Consistent, and proves nothing: say so rather than let
                // "verified" read as a checked history.
                notes.push(format!(
                    "site {site} has no finding and no chain entry in this store: nothing is proven{}",
                    if args.events.is_none() {
                        " (with `serve --events` its findings are in ClickHouse: give --events URL)"
                    } else {
                        ""
                    }
                ));
            }
            (
                verdict.problems.into_iter().map(|p| p.0).collect(),
                notes,
                (verdict.unproven, verdict.unproven_rows),
            )
        }
        _ => {
            return Err(Failure::Usage(
                "give a bundle (tagwatch verify bundle.zip) or a store and a site (tagwatch verify --db URL --site KEY)".into(),
            ))
        }
    };
    for note in &notes {
        eprintln!("tagwatch: verify: {note}");
    }
    let (unproven, unproven_rows): (Vec<String>, usize) = unproven;
    for u in &unproven {
        println!("NOT PROVEN: {u}");
    }
    if unproven_rows > unproven.len() {
        println!(
            "NOT PROVEN: … and {} more rows no entry covers",
            unproven_rows - unproven.len()
        );
    }
    if problems.is_empty() && unproven_rows == 0 {
        println!("verified");
        return Ok(true);
    }
    for p in &problems {
        println!("FAILED: {p}");
    }
    if problems.is_empty() {
        println!("not proven");
        eprintln!(
            "tagwatch: verify: {unproven_rows} row{} no chain entry covers (listed above); every chained row is as it was stored",
            if unproven_rows == 1 { "" } else { "s" }
        );
        return Ok(false);
    }
    Err(Failure::Runtime(format!(
        "{} problem{} found (listed above)",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    )))
}

fn admin_token() -> Result<String, Failure> {
    match std::env::var("TAGWATCH_ADMIN_TOKEN") {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            let token = keys::random_token(32)
                .map_err(|e| Failure::Runtime(format!("no randomness for an admin token: {e}")))?;
            eprintln!(
                "tagwatch: TAGWATCH_ADMIN_TOKEN is not set; admin token for this run: {token}"
            );
            Ok(token)
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(Failure::Usage(
            "TAGWATCH_ADMIN_TOKEN is not valid UTF-8".into(),
        )),
    }
}

fn serve(args: &ServeArgs, checks: store::Checks) -> Result<(), Failure> {
    if !args.rate.is_finite() || args.rate < 0.0 {
        return Err(Failure::Usage(format!(
            "--rate {}: expected a number of requests per second, 0 for no limit",
            args.rate
        )));
    }
    if args.burst == 0 {
        return Err(Failure::Usage("--burst: expected at least 1".into()));
    }
    if !args.client_rate.is_finite() || args.client_rate < 0.0 {
        return Err(Failure::Usage(format!(
            "--client-rate {}: expected a number of requests per second, 0 for no limit",
            args.client_rate
        )));
    }
    if args.client_burst == 0 {
        return Err(Failure::Usage("--client-burst: expected at least 1".into()));
    }
    if !args.visitor_rate.is_finite() || args.visitor_rate < 0.0 {
        return Err(Failure::Usage(format!(
            "--visitor-rate {}: expected a number of requests per second, 0 to treat every client alike",
            args.visitor_rate
        )));
    }
    if args.visitor_burst == 0 {
        return Err(Failure::Usage(
            "--visitor-burst: expected at least 1".into(),
        ));
    }
    let log_format = logging::LogFormat::parse(&args.log_format).ok_or_else(|| {
        Failure::Usage(format!(
            "--log-format {:?}: expected text or json",
            args.log_format
        ))
    })?;
    if let Some(url) = &args.webhook {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() > "https://".len();
        if !ok {
            return Err(Failure::Usage(format!(
                "--webhook {url:?}: expected an http(s) URL"
            )));
        }
    }
    for (flag, secs) in [
        ("--header-timeout", args.header_timeout),
        ("--idle-timeout", args.idle_timeout),
        ("--body-timeout", args.body_timeout),
    ] {
        if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
            return Err(Failure::Usage(format!(
                "{flag} {secs}: expected a number of seconds from 1 to {MAX_TIMEOUT_SECS}"
            )));
        }
    }
    if let Some(n) = args.max_connections {
        if n == 0 || n > MAX_CONNECTIONS_FLAG {
            return Err(Failure::Usage(format!(
                "--max-connections {n}: expected 1 to {MAX_CONNECTIONS_FLAG}"
            )));
        }
    }
    let retain = args
        .retain
        .as_deref()
        .map(parse_retention)
        .transpose()
        .map_err(Failure::Usage)?;
    let signing_key = signing_key(args.signing_key.as_deref())?;
    let admin_token = admin_token()?;
    logging::init(log_format);
    tagwatch_collector::serve(tagwatch_collector::Config {
        listen: args.listen.clone(),
        db: args.db.clone(),
        events: args.events.clone(),
        checks,
        rate: args.rate,
        burst: args.burst,
        client_rate: args.client_rate,
        client_burst: args.client_burst,
        visitor_rate: args.visitor_rate,
        visitor_burst: args.visitor_burst,
        behind_proxy: args.behind_proxy,
        strict_origin: args.strict_origin,
        header_timeout: Duration::from_secs(args.header_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        body_timeout: Duration::from_secs(args.body_timeout),
        max_connections: args.max_connections,
        webhook: args.webhook.clone(),
        retain,
        admin_token,
        signing_key,
    })
    .map_err(|e| match e {
        tagwatch_collector::ServeError::Store(e) => store_failure(&args.db, e),
        tagwatch_collector::ServeError::Events(e) => {
            events_failure(args.events.as_deref().unwrap_or(""), e)
        }
        tagwatch_collector::ServeError::Failed(why) => Failure::Runtime(why),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_retention_in_days_and_hours() {
        assert_eq!(parse_retention("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_retention("36h"), Ok(Duration::from_secs(36 * 3_600)));
        assert_eq!(parse_retention(" 1h "), Ok(Duration::from_secs(3_600)));
        for bad in [
            "",
            "d",
            "90",
            "90m",
            "-1d",
            "1.5d",
            "0d",
            "0h",
            "99999999999999999999d",
            "5000000d",
        ] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }
}
