//! Embedded SQLite store: WAL journal, `synchronous=FULL`, one write
//! connection (used by the writer thread and the CLI) and a few read
//! connections for the API and site look-ups.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::schema::{
    self, Dialect, DELETE_INVENTORY_HOSTS, DELETE_INVENTORY_VENDORS, INSERT_HEALTH,
    INSERT_INVENTORY_HOST, INSERT_INVENTORY_VENDOR, MIGRATIONS, RECORD_FINDING_TYPE,
    SCHEMA_VERSION, UPSERT_FINDING, UPSERT_FINDING_ADD, UPSERT_INVENTORY,
};
use super::{
    json_list, Batch, ConsentTally, FindingRow, FindingsQuery, FirstSeen, HealthQuery, HealthRow,
    HostTotals, InventoryQuery, InventoryRecord, InventoryTotals, Purged, SiteChange, SiteConfig,
    SiteInfo, Stats, StatsQuery, Store, StoreError, Tally, Usage, VendorTotals,
};

/// The page views of a site in the window (`?1` site, `?2` since or NULL).
const WINDOW: &str = "SELECT id FROM inventories WHERE site = ?1 AND (?2 IS NULL OR at >= ?2)";

/// A site's findings in a window (`?1` site, `?2` since, `?3` until, or NULL).
const STATS_WINDOW: &str = "site = ?1 AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3)";

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Why a SQLite file cannot be used, said so that the operator can act.
fn untrusted(path: &Path, why: &str) -> StoreError {
    StoreError::Untrusted(format!("{}: {why}", path.display()))
}

const READ_ONLY: &str = "cannot write here: tagwatch writes the database file and creates \
     FILE-wal and FILE-shm beside it, so the file and its directory must be writable by this \
     user (check their permissions and that the file system is not mounted read-only)";

/// A SQLite error met while opening, told in terms of what to do.
fn opening(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::ReadOnly) => untrusted(path, READ_ONLY),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => untrusted(
            path,
            &format!(
                "cannot open it ({e}); {READ_ONLY}; for a new store, its directory must exist"
            ),
        ),
        Some(ErrorCode::NotADatabase) => untrusted(
            path,
            "not a SQLite database; is --db naming the right file? (a new store is created at a \
             path that does not exist yet)",
        ),
        Some(ErrorCode::DatabaseCorrupt) => untrusted(path, &corrupt(&e.to_string())),
        _ => StoreError::Sqlite(e),
    }
}

fn corrupt(detail: &str) -> String {
    format!(
        "the database is corrupt ({detail}); restore it from a backup, or recover what is \
         readable with `sqlite3 FILE .recover`; tagwatch does not write to a corrupt store"
    )
}

/// Refuses a file that is not a SQLite database before SQLite touches it:
/// an empty file (SQLite would silently make it an empty store) or one
/// without the SQLite header. A path that does not exist is a new store.
fn check_file(path: &Path) -> Result<(), StoreError> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Let SQLite report it (permissions, a directory…).
        Err(_) => return Ok(()),
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match std::io::Read::read(&mut file, header.get_mut(read..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(untrusted(path, &format!("cannot read it: {e}"))),
        }
    }
    if read == 0 {
        return Err(untrusted(
            path,
            "the file is empty, not a tagwatch store; to start a new store, remove the file (or \
             give a path that does not exist): tagwatch creates it",
        ));
    }
    if read < header.len() || &header != SQLITE_HEADER {
        return Err(untrusted(
            path,
            "not a SQLite database; is --db naming the right file? (a new store is created at a \
             path that does not exist yet)",
        ));
    }
    Ok(())
}

/// `PRAGMA quick_check`: every page and index entry readable and well
/// formed (not a full index-content comparison: it runs in O(size)).
fn quick_check(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| opening(path, e))?;
    let problems = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| opening(path, e))?;
    if problems.iter().all(|p| p == "ok") {
        return Ok(());
    }
    Err(untrusted(
        path,
        &format!(
            "{} (start with --skip-integrity-check to skip this check)",
            corrupt(&format!("PRAGMA quick_check: {}", problems.join("; ")))
        ),
    ))
}

/// What opening a store checks before it is used.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// `PRAGMA quick_check` (SQLite): reads the whole file, so a very large
    /// store may skip it (`--skip-integrity-check`).
    pub integrity: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Self { integrity: true }
    }
}

impl SqliteStore {
    #[cfg(test)]
    pub fn open(path: impl AsRef<Path>, readers: usize) -> Result<Self, StoreError> {
        Self::open_with(path, readers, Checks::default())
    }

    /// Opens (or creates) the store at `path` and makes sure it can be
    /// trusted before anything is served from it: a SQLite file, a tagwatch
    /// store of a schema this build knows, writable (file and directory),
    /// and — unless `checks.integrity` is off — not corrupt.
    pub fn open_with(
        path: impl AsRef<Path>,
        readers: usize,
        checks: Checks,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        check_file(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let writer = Connection::open_with_flags(path, flags).map_err(|e| opening(path, e))?;
        configure(&writer).map_err(|e| match e {
            StoreError::Sqlite(e) => opening(path, e),
            other => other,
        })?;
        // SQLite opens a write-protected file read-only without a word.
        if writer
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|e| opening(path, e))?
        {
            return Err(untrusted(path, READ_ONLY));
        }
        // WAL is persistent in the file; readers never block the writer.
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| opening(path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::BadUrl(format!(
                "could not switch {} to WAL mode (got {mode}); is it on a network file system?",
                path.display()
            )));
        }
        if checks.integrity {
            quick_check(path, &writer)?;
        }
        migrate(&writer).map_err(|e| match e {
            StoreError::Sqlite(e) => opening(path, e),
            StoreError::Untrusted(why) => untrusted(path, &why),
            other => other,
        })?;
        let mut pool = Vec::with_capacity(readers);
        for _ in 0..readers {
            let conn = Connection::open_with_flags(path, flags).map_err(|e| opening(path, e))?;
            configure(&conn)?;
            conn.pragma_update(None, "query_only", "ON")?;
            pool.push(Mutex::new(conn));
        }
        Ok(Self {
            writer: Mutex::new(writer),
            readers: pool,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// A read connection: a free one if any, else the next in turn; the
    /// write connection when the store was opened without readers.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        for conn in &self.readers {
            if let Ok(guard) = conn.try_lock() {
                return guard;
            }
        }
        let n = self.readers.len();
        if n == 0 {
            return lock(&self.writer);
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        match self.readers.get(i) {
            Some(conn) => lock(conn),
            None => lock(&self.writer),
        }
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        let tables: i64 = tx.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |row| row.get(0),
        )?;
        if tables > 0 {
            return Err(StoreError::Untrusted(
                "a SQLite database with tables but no tagwatch schema version: not a tagwatch \
                 store; give --db a new path (tagwatch creates the store)"
                    .into(),
            ));
        }
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > version) {
        tx.execute_batch(&schema::render(m.sql, Dialect::Sqlite))?;
    }
    // Written on every open, even when unchanged: proves that a commit
    // reaches the file and its WAL before the collector says it listens.
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

fn write_batch(
    tx: &rusqlite::Transaction<'_>,
    batch: &Batch,
    first_seen: &mut Vec<FirstSeen>,
) -> Result<(), StoreError> {
    for f in &batch.findings {
        let sql = if f.additive {
            UPSERT_FINDING_ADD
        } else {
            UPSERT_FINDING
        };
        tx.prepare_cached(sql)?.execute(params![
            f.site,
            f.page_view,
            f.page,
            f.kind,
            f.vendor,
            f.category,
            f.evidence,
            f.consent,
            f.count,
            f.at,
            f.received_at,
            f.user_agent,
            f.raw
        ])?;
    }
    let mut record = tx.prepare_cached(RECORD_FINDING_TYPE)?;
    for f in &batch.findings {
        if record.execute(params![f.site, f.kind, f.at])? > 0 {
            first_seen.push(FirstSeen::of(f));
        }
    }
    let mut health = tx.prepare_cached(INSERT_HEALTH)?;
    for h in &batch.health {
        health.execute(params![
            h.site,
            h.page_view,
            h.page,
            h.status,
            h.reason,
            h.at,
            h.received_at,
            h.user_agent,
            h.raw
        ])?;
    }
    for inv in &batch.inventories {
        write_inventory(tx, inv)?;
    }
    Ok(())
}

fn json_strings(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

fn write_inventory(
    tx: &rusqlite::Transaction<'_>,
    inv: &InventoryRecord,
) -> Result<(), StoreError> {
    let id: Option<i64> = tx
        .prepare_cached(UPSERT_INVENTORY)?
        .query_row(
            params![
                inv.site,
                inv.page_view,
                inv.page,
                inv.at,
                inv.received_at,
                inv.user_agent,
                inv.raw
            ],
            |row| row.get(0),
        )
        .optional()?;
    // None: the stored inventory is newer; keep it.
    let Some(id) = id else {
        return Ok(());
    };
    tx.prepare_cached(DELETE_INVENTORY_VENDORS)?.execute([id])?;
    tx.prepare_cached(DELETE_INVENTORY_HOSTS)?.execute([id])?;
    let mut vendor = tx.prepare_cached(INSERT_INVENTORY_VENDOR)?;
    for v in &inv.vendors {
        let u = &v.usage;
        vendor.execute(params![
            id,
            v.vendor,
            u.requests,
            u.script_requests,
            u.transfer_bytes,
            u.encoded_bytes,
            u.duration_ms,
            json_strings(&v.hosts),
            json_strings(&v.regions),
            json_strings(&v.cookies)
        ])?;
    }
    let mut host = tx.prepare_cached(INSERT_INVENTORY_HOST)?;
    for h in &inv.unclassified {
        let u = &h.usage;
        host.execute(params![
            id,
            h.host,
            u.requests,
            u.script_requests,
            u.transfer_bytes,
            u.encoded_bytes,
            u.duration_ms
        ])?;
    }
    Ok(())
}

/// `total()` never overflows (it is a float); back to an integer, saturating.
fn int_total(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<i64> {
    let v: f64 = row.get(i)?;
    // `as` saturates and maps NaN to 0.
    Ok(v.max(0.0) as i64)
}

fn usage_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Usage> {
    Ok(Usage {
        requests: int_total(row, first)?,
        script_requests: int_total(row, first + 1)?,
        transfer_bytes: int_total(row, first + 2)?,
        encoded_bytes: int_total(row, first + 3)?,
        duration_ms: int_total(row, first + 4)?,
    })
}

fn count(rows: usize) -> u64 {
    u64::try_from(rows).unwrap_or(u64::MAX)
}

fn json_or_null(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

impl Store for SqliteStore {
    fn add_site(&self, key: &str, origins: &[String], created_at: &str) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO sites (key, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![key, created_at],
        )?;
        if inserted == 0 {
            return Err(StoreError::DuplicateSite);
        }
        for origin in origins {
            tx.execute(
                "INSERT INTO site_origins (site, origin) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![key, origin],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn list_sites(&self) -> Result<Vec<SiteInfo>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT s.key, s.created_at, o.origin, s.sample, s.enabled FROM sites s
             LEFT JOIN site_origins o ON o.site = s.key
             ORDER BY s.created_at, s.key, o.origin",
        )?;
        let mut rows = stmt.query([])?;
        let mut sites: Vec<SiteInfo> = Vec::new();
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let created_at: String = row.get(1)?;
            let origin: Option<String> = row.get(2)?;
            match sites.last_mut() {
                Some(last) if last.site == key => last.origins.extend(origin),
                _ => sites.push(SiteInfo {
                    site: key,
                    origins: origin.into_iter().collect(),
                    created_at,
                    sample: row.get(3)?,
                    enabled: row.get::<_, i64>(4)? != 0,
                }),
            }
        }
        Ok(sites)
    }

    fn site_origins(&self, key: &str) -> Result<Option<Vec<String>>, StoreError> {
        let conn = self.reader();
        let exists = conn
            .prepare_cached("SELECT 1 FROM sites WHERE key = ?1")?
            .query_row([key], |_| Ok(()))
            .optional()?;
        if exists.is_none() {
            return Ok(None);
        }
        let mut stmt = conn.prepare_cached("SELECT origin FROM site_origins WHERE site = ?1")?;
        let origins = stmt
            .query_map([key], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(origins))
    }

    fn origin_registered(&self, candidates: &[String]) -> Result<bool, StoreError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare_cached("SELECT 1 FROM site_origins WHERE origin = ?1 LIMIT 1")?;
        for origin in candidates {
            if stmt.query_row([origin], |_| Ok(())).optional()?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn site_config(&self, key: &str) -> Result<Option<SiteConfig>, StoreError> {
        let conn = self.reader();
        let config = conn
            .prepare_cached("SELECT sample, enabled FROM sites WHERE key = ?1")?
            .query_row([key], |row| {
                Ok(SiteConfig {
                    sample: row.get(0)?,
                    enabled: row.get::<_, i64>(1)? != 0,
                })
            })
            .optional()?;
        Ok(config)
    }

    fn set_site_config(&self, key: &str, change: &SiteChange) -> Result<bool, StoreError> {
        let conn = lock(&self.writer);
        let enabled = change.enabled.map(i64::from);
        let changed = conn.execute(
            "UPDATE sites SET sample = coalesce(?2, sample), enabled = coalesce(?3, enabled)
             WHERE key = ?1",
            params![key, change.sample, enabled],
        )?;
        Ok(changed > 0)
    }

    fn commit(&self, batches: &[&Batch]) -> Result<Vec<FirstSeen>, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut first_seen = Vec::new();
        for batch in batches {
            write_batch(&tx, batch, &mut first_seen)?;
        }
        // With WAL + synchronous=FULL the commit fsyncs the WAL.
        tx.commit()?;
        Ok(first_seen)
    }

    fn purge(&self, before: &str, limit: u32) -> Result<Purged, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Oldest first, through the `at` indexes; at most `limit` per table
        // so that one call never holds the write lock for long.
        let findings = tx
            .prepare_cached(
                "DELETE FROM findings WHERE id IN
                   (SELECT id FROM findings WHERE at < ?1 ORDER BY at LIMIT ?2)",
            )?
            .execute(params![before, limit])?;
        let health = tx
            .prepare_cached(
                "DELETE FROM health WHERE id IN
                   (SELECT id FROM health WHERE at < ?1 ORDER BY at LIMIT ?2)",
            )?
            .execute(params![before, limit])?;
        let ids: Vec<i64> = tx
            .prepare_cached("SELECT id FROM inventories WHERE at < ?1 ORDER BY at LIMIT ?2")?
            .query_map(params![before, limit], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        // Children first and counted (the cascade would not say how many).
        let ids = serde_json::Value::from(ids).to_string();
        let delete = |sql: &str| tx.prepare_cached(sql)?.execute([&ids]);
        let inventory_vendors = delete(
            "DELETE FROM inventory_vendors WHERE inventory IN (SELECT value FROM json_each(?1))",
        )?;
        let inventory_hosts = delete(
            "DELETE FROM inventory_hosts WHERE inventory IN (SELECT value FROM json_each(?1))",
        )?;
        let inventories =
            delete("DELETE FROM inventories WHERE id IN (SELECT value FROM json_each(?1))")?;
        tx.commit()?;
        Ok(Purged {
            findings: count(findings),
            health: count(health),
            inventories: count(inventories),
            inventory_vendors: count(inventory_vendors),
            inventory_hosts: count(inventory_hosts),
        })
    }

    fn findings(&self, q: &FindingsQuery) -> Result<Vec<FindingRow>, StoreError> {
        let conn = self.reader();
        let order = if q.newest_first {
            "at DESC, id DESC"
        } else {
            "at, id"
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT type, vendor, site, page, at, page_view, category, count, evidence, consent, received_at
             FROM findings
             WHERE site = ?1
               AND (?2 IS NULL OR type IN (SELECT value FROM json_each(?2)))
               AND (?3 IS NULL OR vendor IN (SELECT value FROM json_each(?3)))
               AND (?4 IS NULL OR at >= ?4)
               AND (?5 IS NULL OR at < ?5)
               AND (?6 IS NULL OR page = ?6)
               AND (?7 IS NULL OR page_view = ?7)
               AND (?8 IS NULL OR category = ?8)
             ORDER BY {order}
             LIMIT ?9"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    q.site,
                    json_list(&q.kinds),
                    json_list(&q.vendors),
                    q.since,
                    q.until,
                    q.page,
                    q.page_view,
                    q.category,
                    q.limit
                ],
                |row| {
                    Ok(FindingRow {
                        kind: row.get(0)?,
                        vendor: row.get(1)?,
                        site: row.get(2)?,
                        page: row.get(3)?,
                        at: row.get(4)?,
                        page_view: row.get(5)?,
                        category: row.get(6)?,
                        count: row.get(7)?,
                        evidence: json_or_null(&row.get::<_, String>(8)?),
                        consent: json_or_null(&row.get::<_, String>(9)?),
                        received_at: row.get(10)?,
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn stats(&self, q: &StatsQuery) -> Result<Stats, StoreError> {
        let conn = self.reader();
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Deferred)?;
        let p = params![q.site, q.since, q.until];
        let tallies = |group: &str, limit: &str| -> Result<Vec<Tally>, StoreError> {
            let rows = tx
                .prepare_cached(&format!(
                    "SELECT {group}, count(*), total(count) FROM findings WHERE {STATS_WINDOW}
                     GROUP BY 1 ORDER BY 2 DESC, 1 {limit}"
                ))?
                .query_map(p, |row| {
                    Ok(Tally {
                        key: row.get(0)?,
                        findings: row.get(1)?,
                        occurrences: int_total(row, 2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        };
        let total = tx
            .prepare_cached(&format!(
                "SELECT count(*), total(count) FROM findings WHERE {STATS_WINDOW}"
            ))?
            .query_row(p, |row| {
                Ok(Tally {
                    key: String::new(),
                    findings: row.get(0)?,
                    occurrences: int_total(row, 1)?,
                })
            })?;
        let by_type = tallies("type", "")?;
        let by_vendor = tallies("vendor", "")?;
        let by_page = tallies("page", &format!("LIMIT {}", q.max_pages))?;
        let mut by_day = tallies("substr(at, 1, 10)", "")?;
        by_day.sort_by(|a, b| a.key.cmp(&b.key));
        let page_views: i64 = tx
            .prepare_cached(
                "SELECT count(*) FROM (
                   SELECT page_view FROM inventories
                     WHERE site = ?1 AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3)
                   UNION
                   SELECT page_view FROM findings
                     WHERE site = ?1 AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3)
                       AND type <> 'csp_blocked')",
            )?
            .query_row(p, |row| row.get(0))?;
        let mut consent = tx
            .prepare_cached(&format!(
                "SELECT json_extract(consent, '$.source'), json_extract(consent, '$.necessary'),
                        json_extract(consent, '$.functional'), json_extract(consent, '$.analytics'),
                        json_extract(consent, '$.marketing'), count(*)
                 FROM findings WHERE {STATS_WINDOW} AND type <> 'csp_blocked' AND json_valid(consent)
                   AND json_type(consent) = 'object'
                 GROUP BY 1, 2, 3, 4, 5"
            ))?
            .query_map(p, |row| {
                let flag = |i: usize| -> rusqlite::Result<Option<bool>> {
                    Ok(match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Integer(n) => Some(n != 0),
                        _ => None,
                    })
                };
                Ok(ConsentTally {
                    source: row.get::<_, Option<String>>(0).ok().flatten(),
                    categories: [flag(1)?, flag(2)?, flag(3)?, flag(4)?],
                    findings: row.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        tx.finish()?;
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
    }

    fn health(&self, q: &HealthQuery) -> Result<Vec<HealthRow>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT site, page, page_view, status, reason, at, received_at
             FROM health
             WHERE site = ?1 AND (?2 IS NULL OR at >= ?2)
             ORDER BY at, id
             LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![q.site, q.since, q.limit], |row| {
                Ok(HealthRow {
                    site: row.get(0)?,
                    page: row.get(1)?,
                    page_view: row.get(2)?,
                    status: row.get(3)?,
                    reason: row.get(4)?,
                    at: row.get(5)?,
                    received_at: row.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn inventory(&self, q: &InventoryQuery) -> Result<InventoryTotals, StoreError> {
        let conn = self.reader();
        // One read transaction: the four queries see the same snapshot.
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Deferred)?;
        let page_views: i64 = tx
            .prepare_cached(&format!("SELECT count(*) FROM ({WINDOW})"))?
            .query_row(params![q.site, q.since], |row| row.get(0))?;

        let mut vendors: Vec<VendorTotals> = tx
            .prepare_cached(&format!(
                "SELECT vendor, count(*), total(requests), total(script_requests),
                        total(transfer_bytes), total(encoded_bytes), total(duration_ms)
                 FROM inventory_vendors WHERE inventory IN ({WINDOW})
                 GROUP BY vendor
                 ORDER BY count(*) DESC, total(requests) DESC, vendor"
            ))?
            .query_map(params![q.site, q.since], |row| {
                Ok(VendorTotals {
                    vendor: row.get(0)?,
                    page_views: row.get(1)?,
                    usage: usage_at(row, 2)?,
                    ..VendorTotals::default()
                })
            })?
            .collect::<Result<_, _>>()?;

        // Distinct names per vendor: 0 hosts, 1 regions, 2 cookies.
        let mut names = tx.prepare_cached(&format!(
            "SELECT v.vendor, 0, j.value FROM inventory_vendors v, json_each(v.hosts) j
               WHERE v.inventory IN ({WINDOW})
             UNION
             SELECT v.vendor, 1, j.value FROM inventory_vendors v, json_each(v.regions) j
               WHERE v.inventory IN ({WINDOW})
             UNION
             SELECT v.vendor, 2, j.value FROM inventory_vendors v, json_each(v.cookies) j
               WHERE v.inventory IN ({WINDOW})
             UNION
             SELECT v.vendor, 3, i.page FROM inventory_vendors v JOIN inventories i ON i.id = v.inventory
               WHERE v.inventory IN ({WINDOW})
             ORDER BY 1, 2, 3"
        ))?;
        let mut rows = names.query(params![q.site, q.since])?;
        let max = usize::try_from(q.max_names).unwrap_or(usize::MAX);
        while let Some(row) = rows.next()? {
            let vendor: String = row.get(0)?;
            let kind: i64 = row.get(1)?;
            let Ok(name) = row.get::<_, String>(2) else {
                continue;
            };
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
        drop(rows);
        drop(names);

        let unclassified: Vec<HostTotals> = tx
            .prepare_cached(&format!(
                "SELECT host, count(*), total(requests), total(script_requests),
                        total(transfer_bytes), total(encoded_bytes), total(duration_ms)
                 FROM inventory_hosts WHERE inventory IN ({WINDOW})
                 GROUP BY host
                 ORDER BY count(*) DESC, total(requests) DESC, host
                 LIMIT ?3"
            ))?
            .query_map(params![q.site, q.since, q.max_hosts], |row| {
                Ok(HostTotals {
                    host: row.get(0)?,
                    page_views: row.get(1)?,
                    usage: usage_at(row, 2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        tx.finish()?;
        vendors.shrink_to_fit();
        Ok(InventoryTotals {
            page_views,
            vendors,
            unclassified,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FindingRecord;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tagwatch-store-{}-{name}-{}",
            std::process::id(),
            crate::timefmt::now_ms()
        ));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("t.db")
    }

    fn finding(count: i64, at: &str) -> FindingRecord {
        FindingRecord {
            site: "tw_a".into(),
            page_view: "0123456789abcdef".into(),
            page: "https://shop.example/".into(),
            kind: "cookie_before_consent".into(),
            vendor: "intercom".into(),
            category: Some("functional".into()),
            evidence: r#"{"cookie":"intercom-id-x","kind":"cookie"}"#.into(),
            consent: r#"{"analytics":false,"functional":false,"marketing":false,"necessary":true}"#
                .into(),
            count,
            at: at.into(),
            received_at: at.into(),
            user_agent: "ua".into(),
            raw: "{}".into(),
            additive: false,
        }
    }

    #[test]
    fn dedupes_keeping_the_largest_count_and_earliest_at() {
        let path = temp_db("dedupe");
        let store = SqliteStore::open(&path, 1).expect("open");
        store
            .add_site(
                "tw_a",
                &["https://shop.example".into()],
                "2024-01-01T00:00:00.000Z",
            )
            .expect("site");
        let b1 = Batch {
            findings: vec![finding(2, "2024-05-01T12:00:01.000Z")],
            health: vec![],
            inventories: vec![],
        };
        let b2 = Batch {
            findings: vec![finding(5, "2024-05-01T12:00:00.500Z")],
            health: vec![],
            inventories: vec![],
        };
        let b3 = Batch {
            findings: vec![finding(1, "2024-05-01T12:00:03.000Z")],
            health: vec![],
            inventories: vec![],
        };
        store.commit(&[&b1]).expect("commit");
        store.commit(&[&b2, &b3]).expect("commit");
        let rows = store
            .findings(&FindingsQuery {
                site: "tw_a".into(),
                limit: 100,
                ..FindingsQuery::default()
            })
            .expect("query");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows.first().map(|r| r.count), Some(5));
        assert_eq!(
            rows.first().map(|r| r.at.as_str()),
            Some("2024-05-01T12:00:00.500Z")
        );
        // Reopen: the schema migration is idempotent and data is there.
        drop(store);
        let store = SqliteStore::open(&path, 0).expect("reopen");
        assert_eq!(
            store.site_origins("tw_a").expect("origins"),
            Some(vec!["https://shop.example".to_string()])
        );
        assert!(store
            .origin_registered(&["https://shop.example".into()])
            .expect("q"));
        assert!(!store
            .origin_registered(&["https://evil.example".into()])
            .expect("q"));
        assert_eq!(store.site_origins("tw_nope").expect("origins"), None);
        assert!(matches!(
            store.add_site("tw_a", &[], "x"),
            Err(StoreError::DuplicateSite)
        ));
        drop(store);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn migrates_a_version_1_file_and_keeps_its_data() {
        let path = temp_db("v1");
        {
            let conn = Connection::open(&path).expect("open");
            let v1 = MIGRATIONS.first().expect("v1").sql;
            conn.execute_batch(&schema::render(v1, Dialect::Sqlite))
                .expect("v1");
            conn.pragma_update(None, "user_version", 1).expect("pragma");
            conn.execute(
                "INSERT INTO sites (key, created_at) VALUES ('tw_a', '2024-01-01T00:00:00.000Z')",
                [],
            )
            .expect("site");
            let f = finding(1, "2024-05-01T12:00:00.000Z");
            conn.execute(
                UPSERT_FINDING,
                params![
                    f.site,
                    f.page_view,
                    f.page,
                    f.kind,
                    f.vendor,
                    f.category,
                    f.evidence,
                    f.consent,
                    f.count,
                    f.at,
                    f.received_at,
                    f.user_agent,
                    f.raw
                ],
            )
            .expect("finding");
        }
        let store = SqliteStore::open(&path, 1).expect("migrate");
        let version: i64 = lock(&store.writer)
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        let rows = store
            .findings(&FindingsQuery {
                site: "tw_a".into(),
                limit: 10,
                ..FindingsQuery::default()
            })
            .expect("findings");
        assert_eq!(rows.len(), 1);
        let inv = InventoryRecord {
            site: "tw_a".into(),
            page_view: "0123456789abcdef".into(),
            page: "https://shop.example/".into(),
            vendors: vec![crate::InventoryVendor {
                vendor: "intercom".into(),
                usage: Usage {
                    requests: 3,
                    ..Usage::default()
                },
                hosts: vec!["widget.intercom.io".into()],
                regions: vec![],
                cookies: vec![],
            }],
            unclassified: vec![],
            at: "2024-05-01T12:00:00.000Z".into(),
            received_at: "2024-05-01T12:00:00.000Z".into(),
            user_agent: "ua".into(),
            raw: "{}".into(),
        };
        store
            .commit(&[&Batch {
                inventories: vec![inv],
                ..Batch::default()
            }])
            .expect("commit");
        let totals = store
            .inventory(&InventoryQuery {
                site: "tw_a".into(),
                since: None,
                max_names: 10,
                max_hosts: 10,
            })
            .expect("inventory");
        assert_eq!(totals.page_views, 1);
        assert_eq!(totals.vendors.first().map(|v| v.usage.requests), Some(3));
        assert_eq!(
            totals.vendors.first().map(|v| v.hosts.clone()),
            Some(vec!["widget.intercom.io".to_string()])
        );
        // Version 5 learnt the finding types already stored: no alert.
        let known = store
            .commit(&[&Batch {
                findings: vec![finding(1, "2024-05-02T12:00:00.000Z")],
                ..Batch::default()
            }])
            .expect("commit");
        assert!(known.is_empty(), "{known:?}");
        // Reopening a current file is a no-op.
        drop(store);
        SqliteStore::open(&path, 0).expect("reopen");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn refuses_a_newer_schema() {
        let path = temp_db("newer");
        {
            let conn = Connection::open(&path).expect("open");
            conn.pragma_update(None, "user_version", 99)
                .expect("pragma");
        }
        let opened = SqliteStore::open(&path, 0);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
        match opened {
            Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("unexpected: {:?}", other.err()),
        }
    }
}
