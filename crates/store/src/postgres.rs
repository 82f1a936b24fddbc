//! PostgreSQL store, for several collectors sharing one database.
//!
//! Same schema (`schema::MIGRATIONS`) and write statements as SQLite. One
//! write connection (the writer thread and the CLI) and a few read
//! connections, each reconnected when it breaks. Concurrency with other
//! collectors on the same database:
//!
//! - Migrations run under a transaction-scoped advisory lock, so collectors
//!   starting together apply them once.
//! - Dedupe is `INSERT … ON CONFLICT`, atomic across sessions. Within a
//!   commit, findings and inventories are written in key order so that two
//!   writers lock rows in the same order and never deadlock; a deadlock or
//!   serialization failure (rolled back whole) is retried anyway.
//! - Purges lock what they delete with `SKIP LOCKED`, so they never wait
//!   for a writer.
//! - `synchronous_commit = on` for every session: a commit returns after the
//!   WAL is flushed, whatever the server's default.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::{Client, Config, IsolationLevel, NoTls, Row, Statement, Transaction};

use super::schema::{
    self, Dialect, DELETE_INVENTORY_HOSTS, DELETE_INVENTORY_VENDORS, INSERT_HEALTH,
    INSERT_INVENTORY_HOST, INSERT_INVENTORY_VENDOR, MIGRATIONS, RECORD_FINDING_TYPE,
    SCHEMA_VERSION, UPSERT_FINDING, UPSERT_FINDING_ADD, UPSERT_INVENTORY,
};
use super::{
    Batch, ConsentTally, FindingRecord, FindingRow, FindingsQuery, FirstSeen, HealthQuery,
    HealthRow, HostTotals, InventoryQuery, InventoryRecord, InventoryTotals, Purged, SiteChange,
    SiteConfig, SiteInfo, Stats, StatsQuery, Store, StoreError, Tally, Usage, VendorTotals,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Advisory lock key of the migrations: "tagwatch" in ASCII.
const MIGRATION_LOCK: i64 = 0x7461_6777_6174_6368;
/// Tries of a commit that PostgreSQL rolled back for a deadlock or a
/// serialization failure.
const COMMIT_ATTEMPTS: u32 = 3;

/// The page views of a site in the window (`$1` site, `$2` since or NULL).
const WINDOW: &str =
    "SELECT id FROM inventories WHERE site = $1 AND ($2::text IS NULL OR at >= $2)";

/// A sum that saturates at i64::MAX like SQLite's side (sum() of bigint is
/// numeric, so it cannot overflow on the way).
macro_rules! sat_sum {
    ($col:literal) => {
        concat!("LEAST(sum(", $col, "), 9223372036854775807)::bigint")
    };
}

/// Statements prepared once per connection (the hot paths).
struct Statements {
    upsert_finding: Statement,
    upsert_finding_add: Statement,
    record_finding_type: Statement,
    insert_health: Statement,
    upsert_inventory: Statement,
    delete_inventory_vendors: Statement,
    delete_inventory_hosts: Statement,
    insert_inventory_vendor: Statement,
    insert_inventory_host: Statement,
    site_exists: Statement,
    site_origins: Statement,
    origin_registered: Statement,
    findings: Statement,
    findings_newest: Statement,
    health: Statement,
}

fn findings_sql(order: &str) -> String {
    format!(
        "SELECT type, vendor, site, page, at, page_view, category, count, evidence, consent, received_at
         FROM findings
         WHERE site = $1
           AND ($2::text[] IS NULL OR type = ANY($2))
           AND ($3::text[] IS NULL OR vendor = ANY($3))
           AND ($4::text IS NULL OR at >= $4)
           AND ($5::text IS NULL OR at < $5)
           AND ($6::text IS NULL OR page = $6)
           AND ($7::text IS NULL OR page_view = $7)
           AND ($8::text IS NULL OR category = $8)
         ORDER BY {order}
         LIMIT $9"
    )
}

/// A site's findings in a window (`$1` site, `$2` since, `$3` until, or NULL).
const STATS_WINDOW: &str =
    "site = $1 AND ($2::text IS NULL OR at >= $2) AND ($3::text IS NULL OR at < $3)";

struct Session {
    client: Client,
    st: Statements,
}

impl Session {
    fn connect(config: &Config) -> Result<Self, StoreError> {
        Self::new(config.connect(NoTls)?)
    }

    fn new(mut client: Client) -> Result<Self, StoreError> {
        client.batch_execute("SET synchronous_commit = on")?;
        let pg = |sql: &str| schema::render(sql, Dialect::Postgres);
        let st = Statements {
            upsert_finding: client.prepare(&pg(UPSERT_FINDING))?,
            upsert_finding_add: client.prepare(&pg(UPSERT_FINDING_ADD))?,
            record_finding_type: client.prepare(&pg(RECORD_FINDING_TYPE))?,
            insert_health: client.prepare(&pg(INSERT_HEALTH))?,
            upsert_inventory: client.prepare(&pg(UPSERT_INVENTORY))?,
            delete_inventory_vendors: client.prepare(&pg(DELETE_INVENTORY_VENDORS))?,
            delete_inventory_hosts: client.prepare(&pg(DELETE_INVENTORY_HOSTS))?,
            insert_inventory_vendor: client.prepare(&pg(INSERT_INVENTORY_VENDOR))?,
            insert_inventory_host: client.prepare(&pg(INSERT_INVENTORY_HOST))?,
            site_exists: client.prepare("SELECT 1 FROM sites WHERE key = $1")?,
            site_origins: client.prepare("SELECT origin FROM site_origins WHERE site = $1")?,
            origin_registered: client
                .prepare("SELECT 1 FROM site_origins WHERE origin = ANY($1) LIMIT 1")?,
            findings: client.prepare(&findings_sql("at, id"))?,
            findings_newest: client.prepare(&findings_sql("at DESC, id DESC"))?,
            health: client.prepare(
                "SELECT site, page, page_view, status, reason, at, received_at
                 FROM health
                 WHERE site = $1 AND ($2::text IS NULL OR at >= $2)
                 ORDER BY at, id
                 LIMIT $3",
            )?,
        };
        Ok(Self { client, st })
    }
}

type Slot = Mutex<Option<Session>>;

pub struct PostgresStore {
    config: Config,
    writer: Slot,
    readers: Vec<Slot>,
    next_reader: AtomicUsize,
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Session>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PostgresStore {
    /// Connects, migrates, and opens `readers` read connections.
    pub fn open(url: &str, readers: usize) -> Result<Self, StoreError> {
        let mut config = Config::from_str(url).map_err(|e| {
            let mut why = String::new();
            let _ = super::write_pg_error(&mut why, &e);
            StoreError::BadUrl(format!(
                "cannot read the PostgreSQL URL ({why}); use postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("tagwatch");
        }
        let mut client = config.connect(NoTls)?;
        refuse_read_only(&mut client)?;
        migrate(&mut client)?;
        let writer = Session::new(client)?;
        let readers = (0..readers)
            .map(|_| Session::connect(&config).map(|s| Mutex::new(Some(s))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            config,
            writer: Mutex::new(Some(writer)),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on the slot's session, connecting first if there is none or
    /// it broke; a session that broke during `f` is dropped, and the next
    /// call reconnects (PostgreSQL restarted, a proxy cut the connection).
    fn with<T>(
        &self,
        slot: &Slot,
        f: impl FnOnce(&mut Session) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.attempt(slot, f).map_err(|(e, _broken)| e)
    }

    /// [`Self::with`], telling on failure whether the connection broke.
    fn attempt<T>(
        &self,
        slot: &Slot,
        f: impl FnOnce(&mut Session) -> Result<T, StoreError>,
    ) -> Result<T, (StoreError, bool)> {
        let mut guard = lock(slot);
        let session = match guard.take() {
            Some(s) if !s.client.is_closed() => guard.insert(s),
            _ => guard.insert(Session::connect(&self.config).map_err(|e| (e, true))?),
        };
        let result = f(session);
        // The end of a connection can show as a FATAL message before the
        // client sees the socket close.
        let broken = session.client.is_closed()
            || result
                .as_ref()
                .err()
                .is_some_and(StoreError::lost_connection);
        if broken {
            *guard = None;
        }
        result.map_err(|e| (e, broken))
    }

    /// Runs a read on a read connection: a free one if any, else the next in
    /// turn; the write connection when the store was opened without
    /// readers. A read that met a dead connection (it only shows when used)
    /// is run once more on a new one: reads are safe to repeat.
    fn read<T>(&self, f: impl Fn(&mut Session) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let n = self.readers.len();
        let slot = match self.readers.iter().find(|slot| slot.try_lock().is_ok()) {
            Some(free) => free,
            None if n == 0 => &self.writer,
            None => self
                .readers
                .get(self.next_reader.fetch_add(1, Ordering::Relaxed) % n)
                .unwrap_or(&self.writer),
        };
        match self.attempt(slot, &f) {
            Ok(v) => Ok(v),
            Err((_, true)) => self.with(slot, &f),
            Err((e, false)) => Err(e),
        }
    }
}

/// Refuses a server or database that only accepts reads (a hot standby,
/// or `default_transaction_read_only` on for the database or user): the
/// collector would start and then answer 503 to every report.
fn refuse_read_only(client: &mut Client) -> Result<(), StoreError> {
    let row = client.query_one(
        "SELECT current_setting('transaction_read_only'), pg_is_in_recovery()",
        &[],
    )?;
    let read_only: String = row.try_get(0)?;
    let standby: bool = row.try_get(1)?;
    if standby {
        return Err(StoreError::Untrusted(
            "the PostgreSQL server is a hot standby (in recovery) and only accepts reads; \
             point --db at the primary"
                .into(),
        ));
    }
    if read_only == "on" {
        return Err(StoreError::Untrusted(
            "the PostgreSQL session is read-only (default_transaction_read_only is on for this \
             database or user); tagwatch must write reports: turn it off (ALTER DATABASE … SET \
             default_transaction_read_only = off) or use another database"
                .into(),
        ));
    }
    Ok(())
}

fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    // Collectors starting together: the others wait here, then find the
    // schema current. Released at commit or rollback.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tagwatch_schema (
             version    BIGINT PRIMARY KEY,
             applied_at TEXT NOT NULL
         )",
    )?;
    let version: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM tagwatch_schema",
            &[],
        )?
        .try_get(0)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let now = crate::timefmt::iso_from_ms(crate::timefmt::now_ms());
    for m in MIGRATIONS.iter().filter(|m| m.version > version) {
        tx.batch_execute(&schema::render(m.sql, Dialect::Postgres))?;
        tx.execute(
            "INSERT INTO tagwatch_schema (version, applied_at) VALUES ($1, $2)",
            &[&m.version, &now],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Postgres(e) => matches!(
            e.code(),
            Some(&SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE)
        ),
        _ => false,
    }
}

/// The rows of a group commit, in the order they are written: findings by
/// their dedupe key (max/min do not care about order), inventories by page
/// view keeping arrival order within one (later wins on equal `at`).
struct Ordered<'a> {
    findings: Vec<&'a FindingRecord>,
    inventories: Vec<&'a InventoryRecord>,
}

impl<'a> Ordered<'a> {
    fn new(batches: &[&'a Batch]) -> Self {
        let mut findings: Vec<&FindingRecord> =
            batches.iter().flat_map(|b| b.findings.iter()).collect();
        findings.sort_by(|a, b| {
            (&a.site, &a.page_view, &a.kind, &a.vendor, &a.evidence).cmp(&(
                &b.site,
                &b.page_view,
                &b.kind,
                &b.vendor,
                &b.evidence,
            ))
        });
        let mut inventories: Vec<&InventoryRecord> =
            batches.iter().flat_map(|b| b.inventories.iter()).collect();
        inventories.sort_by(|a, b| (&a.site, &a.page_view).cmp(&(&b.site, &b.page_view)));
        Self {
            findings,
            inventories,
        }
    }
}

fn write_group(
    s: &mut Session,
    batches: &[&Batch],
    rows: &Ordered<'_>,
) -> Result<Vec<FirstSeen>, StoreError> {
    let st = &s.st;
    let mut tx = s.client.transaction()?;
    // Site types in key order too (no deadlock between collectors); the
    // first finding of a type in arrival order stands for it.
    let mut first: std::collections::BTreeMap<(&str, &str), &FindingRecord> =
        std::collections::BTreeMap::new();
    for f in batches.iter().flat_map(|b| b.findings.iter()) {
        first.entry((&f.site, &f.kind)).or_insert(f);
    }
    let mut first_seen = Vec::new();
    for ((site, kind), f) in &first {
        if tx.execute(&st.record_finding_type, &[site, kind, &f.at])? > 0 {
            first_seen.push(FirstSeen::of(f));
        }
    }
    for f in &rows.findings {
        let upsert = if f.additive {
            &st.upsert_finding_add
        } else {
            &st.upsert_finding
        };
        tx.execute(
            upsert,
            &[
                &f.site,
                &f.page_view,
                &f.page,
                &f.kind,
                &f.vendor,
                &f.category,
                &f.evidence,
                &f.consent,
                &f.count,
                &f.at,
                &f.received_at,
                &f.user_agent,
                &f.raw,
            ],
        )?;
    }
    for h in batches.iter().flat_map(|b| b.health.iter()) {
        tx.execute(
            &st.insert_health,
            &[
                &h.site,
                &h.page_view,
                &h.page,
                &h.status,
                &h.reason,
                &h.at,
                &h.received_at,
                &h.user_agent,
                &h.raw,
            ],
        )?;
    }
    for inv in &rows.inventories {
        write_inventory(&mut tx, st, inv)?;
    }
    tx.commit()?;
    Ok(first_seen)
}

fn json_strings(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

fn write_inventory(
    tx: &mut Transaction<'_>,
    st: &Statements,
    inv: &InventoryRecord,
) -> Result<(), StoreError> {
    let row = tx.query_opt(
        &st.upsert_inventory,
        &[
            &inv.site,
            &inv.page_view,
            &inv.page,
            &inv.at,
            &inv.received_at,
            &inv.user_agent,
            &inv.raw,
        ],
    )?;
    // None: the stored inventory is newer; keep it.
    let Some(row) = row else {
        return Ok(());
    };
    let id: i64 = row.try_get(0)?;
    tx.execute(&st.delete_inventory_vendors, &[&id])?;
    tx.execute(&st.delete_inventory_hosts, &[&id])?;
    for v in &inv.vendors {
        let u = &v.usage;
        tx.execute(
            &st.insert_inventory_vendor,
            &[
                &id,
                &v.vendor,
                &u.requests,
                &u.script_requests,
                &u.transfer_bytes,
                &u.encoded_bytes,
                &u.duration_ms,
                &json_strings(&v.hosts),
                &json_strings(&v.regions),
                &json_strings(&v.cookies),
            ],
        )?;
    }
    for h in &inv.unclassified {
        let u = &h.usage;
        tx.execute(
            &st.insert_inventory_host,
            &[
                &id,
                &h.host,
                &u.requests,
                &u.script_requests,
                &u.transfer_bytes,
                &u.encoded_bytes,
                &u.duration_ms,
            ],
        )?;
    }
    Ok(())
}

fn usage_at(row: &Row, first: usize) -> Result<Usage, StoreError> {
    Ok(Usage {
        requests: row.try_get(first)?,
        script_requests: row.try_get(first + 1)?,
        transfer_bytes: row.try_get(first + 2)?,
        encoded_bytes: row.try_get(first + 3)?,
        duration_ms: row.try_get(first + 4)?,
    })
}

fn json_or_null(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

impl Store for PostgresStore {
    fn add_site(&self, key: &str, origins: &[String], created_at: &str) -> Result<(), StoreError> {
        self.with(&self.writer, |s| {
            let mut tx = s.client.transaction()?;
            let inserted = tx.execute(
                "INSERT INTO sites (key, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&key, &created_at],
            )?;
            if inserted == 0 {
                return Err(StoreError::DuplicateSite);
            }
            for origin in origins {
                tx.execute(
                    "INSERT INTO site_origins (site, origin) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&key, origin],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn list_sites(&self) -> Result<Vec<SiteInfo>, StoreError> {
        self.read(|s| {
            let rows = s.client.query(
                "SELECT s.key, s.created_at, o.origin, s.sample, s.enabled FROM sites s
                 LEFT JOIN site_origins o ON o.site = s.key
                 ORDER BY s.created_at, s.key, o.origin",
                &[],
            )?;
            let mut sites: Vec<SiteInfo> = Vec::new();
            for row in rows {
                let key: String = row.try_get(0)?;
                let created_at: String = row.try_get(1)?;
                let origin: Option<String> = row.try_get(2)?;
                match sites.last_mut() {
                    Some(last) if last.site == key => last.origins.extend(origin),
                    _ => sites.push(SiteInfo {
                        site: key,
                        origins: origin.into_iter().collect(),
                        created_at,
                        sample: row.try_get(3)?,
                        enabled: row.try_get::<_, i64>(4)? != 0,
                    }),
                }
            }
            Ok(sites)
        })
    }

    fn site_origins(&self, key: &str) -> Result<Option<Vec<String>>, StoreError> {
        self.read(|s| {
            if s.client.query_opt(&s.st.site_exists, &[&key])?.is_none() {
                return Ok(None);
            }
            let origins = s
                .client
                .query(&s.st.site_origins, &[&key])?
                .iter()
                .map(|row| row.try_get::<_, String>(0))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(origins))
        })
    }

    fn origin_registered(&self, candidates: &[String]) -> Result<bool, StoreError> {
        self.read(|s| {
            Ok(s.client
                .query_opt(&s.st.origin_registered, &[&candidates])?
                .is_some())
        })
    }

    fn site_config(&self, key: &str) -> Result<Option<SiteConfig>, StoreError> {
        self.read(|s| {
            s.client
                .query_opt("SELECT sample, enabled FROM sites WHERE key = $1", &[&key])?
                .map(|row| {
                    Ok(SiteConfig {
                        sample: row.try_get(0)?,
                        enabled: row.try_get::<_, i64>(1)? != 0,
                    })
                })
                .transpose()
        })
    }

    fn set_site_config(&self, key: &str, change: &SiteChange) -> Result<bool, StoreError> {
        let enabled = change.enabled.map(i64::from);
        self.with(&self.writer, |s| {
            let changed = s.client.execute(
                "UPDATE sites SET sample = coalesce($2, sample), enabled = coalesce($3, enabled)
                 WHERE key = $1",
                &[&key, &change.sample, &enabled],
            )?;
            Ok(changed > 0)
        })
    }

    fn commit(&self, batches: &[&Batch]) -> Result<Vec<FirstSeen>, StoreError> {
        let rows = Ordered::new(batches);
        self.with(&self.writer, |s| {
            let mut attempt = 1;
            loop {
                match write_group(s, batches, &rows) {
                    Err(e) if attempt < COMMIT_ATTEMPTS && retryable(&e) => attempt += 1,
                    other => return other,
                }
            }
        })
    }

    fn findings(&self, q: &FindingsQuery) -> Result<Vec<FindingRow>, StoreError> {
        let limit = i64::from(q.limit);
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let (kinds, vendors) = (list(&q.kinds), list(&q.vendors));
        self.read(|s| {
            let stmt = if q.newest_first {
                &s.st.findings_newest
            } else {
                &s.st.findings
            };
            s.client
                .query(
                    stmt,
                    &[
                        &q.site,
                        &kinds,
                        &vendors,
                        &q.since,
                        &q.until,
                        &q.page,
                        &q.page_view,
                        &q.category,
                        &limit,
                    ],
                )?
                .iter()
                .map(|row| {
                    let evidence: String = row.try_get(8)?;
                    let consent: String = row.try_get(9)?;
                    Ok(FindingRow {
                        kind: row.try_get(0)?,
                        vendor: row.try_get(1)?,
                        site: row.try_get(2)?,
                        page: row.try_get(3)?,
                        at: row.try_get(4)?,
                        page_view: row.try_get(5)?,
                        category: row.try_get(6)?,
                        count: row.try_get(7)?,
                        evidence: json_or_null(&evidence),
                        consent: json_or_null(&consent),
                        received_at: row.try_get(10)?,
                    })
                })
                .collect()
        })
    }

    fn stats(&self, q: &StatsQuery) -> Result<Stats, StoreError> {
        self.read(|s| {
            let mut tx = s
                .client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let p: [&(dyn ::postgres::types::ToSql + Sync); 3] = [&q.site, &q.since, &q.until];
            let tally = |row: &Row| -> Result<Tally, StoreError> {
                Ok(Tally {
                    key: row.try_get(0)?,
                    findings: row.try_get(1)?,
                    occurrences: row.try_get(2)?,
                })
            };
            let tallies = |tx: &mut Transaction<'_>, group: &str, limit: &str| {
                tx.query(
                    &format!(
                        "SELECT {group}, count(*), {} FROM findings WHERE {STATS_WINDOW}
                         GROUP BY 1 ORDER BY 2 DESC, 1 {limit}",
                        sat_sum!("count")
                    ),
                    &p,
                )?
                .iter()
                .map(tally)
                .collect::<Result<Vec<_>, StoreError>>()
            };
            let by_type = tallies(&mut tx, "type", "")?;
            let by_vendor = tallies(&mut tx, "vendor", "")?;
            let by_page = tallies(&mut tx, "page", &format!("LIMIT {}", q.max_pages))?;
            let mut by_day = tallies(&mut tx, "substr(at, 1, 10)", "")?;
            by_day.sort_by(|a, b| a.key.cmp(&b.key));
            let total = tx.query_one(
                &format!(
                    "SELECT '', count(*), coalesce({}, 0) FROM findings WHERE {STATS_WINDOW}",
                    sat_sum!("count")
                ),
                &p,
            )?;
            let total = tally(&total)?;
            let page_views: i64 = tx
                .query_one(
                    "SELECT count(*) FROM (
                       SELECT page_view FROM inventories
                         WHERE site = $1 AND ($2::text IS NULL OR at >= $2) AND ($3::text IS NULL OR at < $3)
                       UNION
                       SELECT page_view FROM findings
                         WHERE site = $1 AND ($2::text IS NULL OR at >= $2) AND ($3::text IS NULL OR at < $3)
                           AND type <> 'csp_blocked') pv",
                    &p,
                )?
                .try_get(0)?;
            let mut consent = tx
                .query(
                    &format!(
                        "SELECT c->>'source', c->>'necessary', c->>'functional', c->>'analytics', c->>'marketing', count(*)
                         FROM (SELECT consent::jsonb AS c FROM findings
                               WHERE {STATS_WINDOW} AND type <> 'csp_blocked') f
                         WHERE jsonb_typeof(c) = 'object'
                         GROUP BY 1, 2, 3, 4, 5"
                    ),
                    &p,
                )?
                .iter()
                .map(|row| {
                    let flag = |i: usize| -> Result<Option<bool>, StoreError> {
                        let v: Option<String> = row.try_get(i)?;
                        Ok(match v.as_deref() {
                            Some("true") => Some(true),
                            Some("false") => Some(false),
                            _ => None,
                        })
                    };
                    Ok(ConsentTally {
                        source: row.try_get(0)?,
                        categories: [flag(1)?, flag(2)?, flag(3)?, flag(4)?],
                        findings: row.try_get(5)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            tx.commit()?;
            super::sort_consent(&mut consent);
            Ok(Stats {
                total,
                by_type,
                by_vendor,
                by_page,
                by_day,
                page_views,
                consent,
            })
        })
    }

    fn health(&self, q: &HealthQuery) -> Result<Vec<HealthRow>, StoreError> {
        let limit = i64::from(q.limit);
        self.read(|s| {
            s.client
                .query(&s.st.health, &[&q.site, &q.since, &limit])?
                .iter()
                .map(|row| {
                    Ok(HealthRow {
                        site: row.try_get(0)?,
                        page: row.try_get(1)?,
                        page_view: row.try_get(2)?,
                        status: row.try_get(3)?,
                        reason: row.try_get(4)?,
                        at: row.try_get(5)?,
                        received_at: row.try_get(6)?,
                    })
                })
                .collect()
        })
    }

    fn inventory(&self, q: &InventoryQuery) -> Result<InventoryTotals, StoreError> {
        self.read(|s| {
            // One snapshot for the four queries.
            let mut tx = s
                .client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let page_views: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM ({WINDOW}) w"),
                    &[&q.site, &q.since],
                )?
                .try_get(0)?;

            let mut vendors = tx
                .query(
                    &format!(
                        "SELECT vendor, count(*), {}, {}, {}, {}, {}
                         FROM inventory_vendors WHERE inventory IN ({WINDOW})
                         GROUP BY vendor
                         ORDER BY count(*) DESC, sum(requests) DESC, vendor",
                        sat_sum!("requests"),
                        sat_sum!("script_requests"),
                        sat_sum!("transfer_bytes"),
                        sat_sum!("encoded_bytes"),
                        sat_sum!("duration_ms"),
                    ),
                    &[&q.site, &q.since],
                )?
                .iter()
                .map(|row| {
                    Ok(VendorTotals {
                        vendor: row.try_get(0)?,
                        page_views: row.try_get(1)?,
                        usage: usage_at(row, 2)?,
                        ..VendorTotals::default()
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;

            // Distinct names per vendor: 0 hosts, 1 regions, 2 cookies, 3 pages;
            // byte order, as SQLite sorts.
            let names = tx.query(
                &format!(
                    "SELECT vendor, kind, name FROM (
                       SELECT v.vendor, 0 AS kind, j.name FROM inventory_vendors v,
                              jsonb_array_elements_text(v.hosts::jsonb) AS j(name)
                         WHERE v.inventory IN ({WINDOW})
                       UNION
                       SELECT v.vendor, 1, j.name FROM inventory_vendors v,
                              jsonb_array_elements_text(v.regions::jsonb) AS j(name)
                         WHERE v.inventory IN ({WINDOW})
                       UNION
                       SELECT v.vendor, 2, j.name FROM inventory_vendors v,
                              jsonb_array_elements_text(v.cookies::jsonb) AS j(name)
                         WHERE v.inventory IN ({WINDOW})
                       UNION
                       SELECT v.vendor, 3, i.page FROM inventory_vendors v
                              JOIN inventories i ON i.id = v.inventory
                         WHERE v.inventory IN ({WINDOW})
                     ) n
                     ORDER BY vendor, kind, name COLLATE \"C\""
                ),
                &[&q.site, &q.since],
            )?;
            let max = usize::try_from(q.max_names).unwrap_or(usize::MAX);
            for row in &names {
                let vendor: String = row.try_get(0)?;
                let kind: i32 = row.try_get(1)?;
                let name: String = row.try_get(2)?;
                if let Some(v) = vendors.iter_mut().find(|v| v.vendor == vendor) {
                    let list = match kind {
                        0 => &mut v.hosts,
                        1 => &mut v.regions,
                        2 => &mut v.cookies,
                        _ => &mut v.pages,
                    };
                    if list.len() < max {
                        list.push(name);
                    }
                }
            }

            let max_hosts = i64::from(q.max_hosts);
            let unclassified = tx
                .query(
                    &format!(
                        "SELECT host, count(*), {}, {}, {}, {}, {}
                         FROM inventory_hosts WHERE inventory IN ({WINDOW})
                         GROUP BY host
                         ORDER BY count(*) DESC, sum(requests) DESC, host
                         LIMIT $3",
                        sat_sum!("requests"),
                        sat_sum!("script_requests"),
                        sat_sum!("transfer_bytes"),
                        sat_sum!("encoded_bytes"),
                        sat_sum!("duration_ms"),
                    ),
                    &[&q.site, &q.since, &max_hosts],
                )?
                .iter()
                .map(|row| {
                    Ok(HostTotals {
                        host: row.try_get(0)?,
                        page_views: row.try_get(1)?,
                        usage: usage_at(row, 2)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            tx.commit()?;
            vendors.shrink_to_fit();
            Ok(InventoryTotals {
                page_views,
                vendors,
                unclassified,
            })
        })
    }

    fn purge(&self, before: &str, limit: u32) -> Result<Purged, StoreError> {
        let limit = i64::from(limit);
        self.with(&self.writer, |s| {
            let mut tx = s.client.transaction()?;
            // SKIP LOCKED: rows a writer holds are left for the next run, so
            // a purge never waits for (or deadlocks with) ingest.
            let findings = tx.execute(
                "DELETE FROM findings WHERE id IN
                   (SELECT id FROM findings WHERE at < $1 ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&before, &limit],
            )?;
            let health = tx.execute(
                "DELETE FROM health WHERE id IN
                   (SELECT id FROM health WHERE at < $1 ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&before, &limit],
            )?;
            // Inventories locked first: no writer replaces their children
            // while they go. Children deleted first and counted.
            let ids = tx
                .query(
                    "SELECT id FROM inventories WHERE at < $1 ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&before, &limit],
                )?
                .iter()
                .map(|row| row.try_get::<_, i64>(0))
                .collect::<Result<Vec<i64>, _>>()?;
            let inventory_vendors = tx.execute(
                "DELETE FROM inventory_vendors WHERE inventory = ANY($1)",
                &[&ids],
            )?;
            let inventory_hosts = tx.execute(
                "DELETE FROM inventory_hosts WHERE inventory = ANY($1)",
                &[&ids],
            )?;
            let inventories = tx.execute("DELETE FROM inventories WHERE id = ANY($1)", &[&ids])?;
            tx.commit()?;
            Ok(Purged {
                findings,
                health,
                inventories,
                inventory_vendors,
                inventory_hosts,
            })
        })
    }
}
