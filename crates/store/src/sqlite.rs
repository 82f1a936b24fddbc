//! The SQLite connection of the store: WAL journal, `synchronous=FULL`,
//! one write connection (the writer thread, the CLI), a checkpointer
//! thread with a connection of its own, and a few read-only ones for the
//! API and site look-ups; and the checks that make sure a file can be
//! trusted before anything is served from it.

use std::ffi::c_int;
use std::path::Path;
use std::time::Duration;

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

use crate::conn::{Conn, Param, Row, Tx};
use crate::db::{self, Db, Role};
use crate::schema::{render, Dialect};
use crate::sqlite_static::StaticConn;
use crate::sqlite_wal_vfs;
use crate::StoreError;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// WAL pages after a commit that wake the checkpointer (≈ 16 MB of 4 KB
/// pages; SQLite's own automatic threshold is 1,000). A checkpoint copies
/// each page of the WAL into the file once, however many commits wrote
/// it: the pages every group commit rewrites (the last leaf of each table
/// and index, their parents) are copied once per checkpoint, so fewer,
/// larger checkpoints write fewer bytes (measured: 1,000 → 4,000 pages,
/// −7% written a batch, docs/benchmarks.md), at the cost of a larger WAL
/// file and a longer recovery after a crash.
const CHECKPOINT_PAGES: c_int = 4000;
/// WAL pages after a commit at which the writer checkpoints itself, as
/// SQLite would without the checkpointer: a checkpointer that cannot keep
/// up (no CPU for it) must not let the WAL grow without end. A PASSIVE
/// checkpoint run right after a commit copies the whole WAL, so the next
/// transaction starts it over from its beginning.
const WRITER_CHECKPOINT_PAGES: c_int = 4 * CHECKPOINT_PAGES;

/// Where the writer of a store that has read connections (the collector)
/// keeps its temporary files: in memory. Each multi-row statement of a
/// group commit after the first needs a statement journal (the pages it
/// changes that the transaction's earlier statements had changed, so that
/// it alone can be undone), which SQLite otherwise spills to a new
/// unlinked file in /var/tmp past 64 KB: a file created each commit and
/// ≈ 23 KB written to it a batch, 30% of what a batch wrote
/// (docs/benchmarks.md). Nothing durable is in it: a commit reaches the
/// WAL and its fsync as before. Readers, and the one connection of a
/// store without readers (CLI commands, whose reads such as an export may
/// sort a whole table), keep SQLite's default: files past the cache.
const WRITER_TEMP_STORE: &str = "MEMORY";

/// The pager's other settings stay SQLite's defaults, each measured
/// against them under `tools/bench-load.sh` (docs/benchmarks.md, "The
/// pager's settings", on schema 13, before page-view ordinals took
/// most random leaves out of a batch): a 4 KB `page_size` (1 and 2 KB write up to a
/// quarter fewer bytes a batch with random page views but cost 3–22 %
/// more CPU a batch; 8 KB writes more and costs more), the 2 MB
/// `cache_size` (64 MB on the writer removes its ≈ 4 page reads a batch
/// from the OS's cache, yet costs 5–9 % more CPU a batch), no `mmap_size`
/// (no gain shown; an I/O error would be a `SIGBUS`), and foreign keys on
/// (their probes are not measurable in a batch's instructions). The
/// checkpointer copies WAL frames through one buffer, not its page cache,
/// so its cache size does not matter.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // One plan per statement whatever values are bound: the bundled
    // SQLite has STAT4, which otherwise compiles a statement again each
    // time a parameter the plan might depend on changes (every site
    // look-up of every report batch, measured).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
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

/// One SQLite connection and its statements (prepared, bound and run
/// without copies of their values: [`StaticConn`]).
pub(crate) struct SqliteConn {
    conn: StaticConn,
}

impl SqliteConn {
    fn new(conn: Connection) -> Self {
        Self {
            conn: StaticConn::new(conn),
        }
    }
}

impl Conn for SqliteConn {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn query_rows(
        &mut self,
        sql: &'static str,
        rows: usize,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.conn
            .run(
                sql,
                rows,
                || render(sql, Dialect::Sqlite, rows),
                params,
                each,
            )
            .map(drop)
    }

    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        self.conn.run(
            sql,
            1,
            || render(sql, Dialect::Sqlite, 1),
            params,
            &mut |_| Ok(()),
        )
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.conn.conn().execute_batch(sql)?)
    }

    // Prepared once, not parsed on every group commit.
    fn begin(&mut self, tx: Tx) -> Result<(), StoreError> {
        self.execute(
            match tx {
                Tx::Write => "BEGIN IMMEDIATE",
                Tx::Read => "BEGIN DEFERRED",
            },
            &[],
        )
        .map(drop)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.execute("COMMIT", &[]).map(drop)
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        self.execute("ROLLBACK", &[]).map(drop)
    }

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        let version: i64 = self
            .conn
            .conn()
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version == 0 {
            let tables: i64 = self.conn.conn().query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |row| row.get(0),
            )?;
            if tables > 0 {
                return Err(StoreError::Untrusted(
                    "a SQLite database with tables but no tagwatch schema version: not a \
                     tagwatch store; give --db a new path (tagwatch creates the store)"
                        .into(),
                ));
            }
        }
        // Written on every open, even when unchanged: proves that a commit
        // reaches the file and its WAL before the collector says it listens.
        self.set_schema_version(version)?;
        Ok(version)
    }

    fn set_schema_version(&mut self, version: i64) -> Result<(), StoreError> {
        Ok(self
            .conn
            .conn()
            .pragma_update(None, "user_version", version)?)
    }
}

/// Opens one SQLite connection to `path`, configured.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // Through the VFS that writes a commit's WAL frames in one call
    // (`sqlite_wal_vfs`); every other file is the platform's own.
    sqlite_wal_vfs::register().map_err(|e| opening(path, e))?;
    let conn = Connection::open_with_flags_and_vfs(path, flags, sqlite_wal_vfs::NAME)
        .map_err(|e| opening(path, e))?;
    configure(&conn).map_err(|e| match e {
        StoreError::Sqlite(e) => opening(path, e),
        other => other,
    })?;
    Ok(conn)
}

/// Opens one connection to `path`: the writer (with its checkpointer;
/// `only_writes`: the store has readers, see [`WRITER_TEMP_STORE`]), or a
/// read-only reader.
fn connect(path: &Path, role: Role, only_writes: bool) -> Result<SqliteConn, StoreError> {
    let mut conn = open_connection(path)?;
    match role {
        Role::Reader => conn.pragma_update(None, "query_only", "ON")?,
        Role::Writer => {
            if only_writes {
                conn.pragma_update(None, "temp_store", WRITER_TEMP_STORE)?;
            }
            checkpoint_elsewhere(&mut conn, path)?;
        }
    }
    Ok(SqliteConn::new(conn))
}

/// Moves the WAL checkpoints off the writer: SQLite's automatic checkpoint
/// runs inside the commit that crosses its threshold, so that commit (and
/// every batch waiting for it) waits for the database file to be written
/// and fsync'd. Instead, the commit only wakes a thread that checkpoints
/// on a connection of its own (PASSIVE: it never blocks the writer or the
/// readers) while the writer goes on. The thread ends when the writer's
/// connection is closed (its hook, holding the channel, is dropped).
fn checkpoint_elsewhere(writer: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // One wake-up pending at most: more commits while it runs ask for the
    // same thing.
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    let path = path.to_owned();
    std::thread::Builder::new()
        .name("tagwatch-checkpoint".into())
        .spawn(move || {
            // Opened at the first wake-up: by then the file is in WAL mode
            // (a connection opened before would not know).
            let mut conn: Option<Connection> = None;
            while woken.recv().is_ok() {
                if conn.is_none() {
                    conn = open_connection(&path).ok();
                }
                // Failing (busy: the writer checkpointing itself): the next
                // wake-up tries again; the writer's own checkpoint is the
                // backstop. A read first, so that the connection sees the
                // WAL.
                if let Some(c) = &conn {
                    let _ = c
                        .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
                        .and_then(|()| c.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE));
                }
            }
        })
        .map_err(|e| StoreError::Untrusted(format!("cannot start the checkpoint thread: {e}")))?;
    // Replaces SQLite's automatic checkpoint (itself a WAL hook).
    writer.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: c_int| {
        if pages >= WRITER_CHECKPOINT_PAGES {
            // The commit has happened whatever this returns: an error here
            // would only make it look failed.
            let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
        } else if pages >= CHECKPOINT_PAGES {
            let _ = wake.try_send(());
        }
        Ok(())
    }))?;
    Ok(())
}

/// Opens (or creates) the store at `path` and makes sure it can be trusted
/// before anything is served from it: a SQLite file, a tagwatch store of a
/// schema this build knows, writable (file and directory), and — unless
/// `checks.integrity` is off — not corrupt.
pub(crate) fn open(
    path: &Path,
    readers: usize,
    checks: Checks,
) -> Result<Db<SqliteConn>, StoreError> {
    check_file(path)?;
    let only_writes = readers > 0;
    let mut writer = connect(path, Role::Writer, only_writes)?;
    // SQLite opens a write-protected file read-only without a word.
    if writer
        .conn
        .conn()
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| opening(path, e))?
    {
        return Err(untrusted(path, READ_ONLY));
    }
    // WAL is persistent in the file; readers never block the writer.
    let mode: String = writer
        .conn
        .conn()
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| opening(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::BadUrl(format!(
            "could not switch {} to WAL mode (got {mode}); is it on a network file system?",
            path.display()
        )));
    }
    if checks.integrity {
        quick_check(path, writer.conn.conn())?;
    }
    db::migrate(&mut writer).map_err(|e| match e {
        StoreError::Sqlite(e) => opening(path, e),
        StoreError::Untrusted(why) => untrusted(path, &why),
        other => other,
    })?;
    let path = path.to_owned();
    // One writer: SQLite's writes take turns on its write lock anyway.
    Db::new(
        writer,
        1,
        readers,
        Box::new(move |role| connect(&path, role, only_writes)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{MIGRATIONS, SCHEMA_VERSION};
    use crate::{
        Batch, FindingRecord, FindingsQuery, InventoryQuery, InventoryRecord, Store, Usage,
    };

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
            release: None,
            site: "tw_a".into(),
            page_view: "0123456789abcdef".into(),
            page: "https://shop.example/".into(),
            kind: crate::FindingKind::Monitor(
                tagwatch_core::report::FindingType::CookieBeforeConsent,
            ),
            vendor: "intercom".into(),
            category: Some(tagwatch_core::consent::Category::Functional),
            evidence: r#"{"cookie":"intercom-id-x","kind":"cookie"}"#.into(),
            evidence_kind: crate::StoredEvidenceKind::Monitor(
                tagwatch_core::report::EvidenceKind::Cookie,
            ),
            consent: r#"{"analytics":false,"functional":false,"marketing":false,"necessary":true}"#
                .into(),
            consent_source: None,
            count,
            at: at.into(),
            received_at: at.into(),
            user_agent: "ua".into(),
            raw: "{}".into(),
        }
    }

    /// The WAL VFS (`sqlite_wal_vfs`) writes a commit's frames at its
    /// sync: every connection must sync each commit (`FULL` = 2).
    #[test]
    fn every_connection_syncs_each_commit() {
        let path = temp_db("synchronous");
        let store = open(&path, 2, Checks::default()).expect("open");
        drop(store);
        let conn = open_connection(&path).expect("connection");
        let level: i64 = conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .expect("synchronous");
        assert_eq!(level, 2);
    }

    fn user_version(path: &Path) -> i64 {
        Connection::open(path)
            .expect("open")
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("version")
    }

    /// Version 7 replaces the `at` indexes by (site, hour) ones: rows
    /// written under version 6 are found through them by windows, newest
    /// first and by retention.
    #[test]
    fn migrates_a_version_6_file_to_hour_indexes_and_keeps_its_data() {
        let path = temp_db("v6");
        let ats = [
            "2024-05-01T10:59:59.999Z",
            "2024-05-01T11:00:00.000Z",
            "2024-05-01T11:30:00.000Z",
            "2024-05-01T12:00:00.000Z",
        ];
        {
            let conn = Connection::open(&path).expect("open");
            for m in MIGRATIONS.iter().filter(|m| m.version <= 6) {
                conn.execute_batch(&render(m.sql, Dialect::Sqlite, 1))
                    .expect("old migration");
                conn.execute_batch(&render(m.then, Dialect::Sqlite, 1))
                    .expect("old migration");
            }
            conn.pragma_update(None, "user_version", 6).expect("pragma");
            conn.execute(
                "INSERT INTO sites (key, created_at) VALUES ('tw_a', '2024-01-01T00:00:00.000Z')",
                [],
            )
            .expect("site");
            for (i, at) in ats.iter().enumerate() {
                let f = finding(1, at);
                conn.execute(
                    "INSERT INTO findings (site, page_view, page, type, vendor, category,
                         evidence_kind, evidence, consent, count, at, received_at, user_agent,
                         raw, dedupe)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                    rusqlite::params![
                        f.site.as_str(),
                        format!("pv{i}"),
                        f.page.as_str(),
                        f.kind.as_str(),
                        f.vendor.as_str(),
                        f.category.map(|c| c.as_str()),
                        f.evidence_kind.as_str(),
                        f.evidence.as_str(),
                        f.consent.as_str(),
                        f.count,
                        f.at.as_str(),
                        f.received_at.as_str(),
                        f.user_agent.as_str(),
                        f.raw.as_str(),
                        f.dedupe_key().to_vec()
                    ],
                )
                .expect("finding");
                conn.execute(
                    "INSERT INTO health (site, page_view, page, status, reason, at, received_at,
                         user_agent, raw)
                     VALUES ('tw_a', NULL, 'https://shop.example/', 'ok', NULL, ?1, ?1, 'ua', '{}')",
                    [at],
                )
                .expect("health");
            }
        }
        let store = open(&path, 1, Checks::default()).expect("migrate");
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        let indexes: Vec<String> = Connection::open(&path)
            .expect("open")
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%_by_%' ORDER BY name")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            indexes,
            [
                "chain_checkpoints_by_site",
                "findings_by_key",
                "findings_by_site_hour",
                "findings_by_site_release",
                "health_by_site_hour",
                "inventories_by_site_hour",
                "inventories_by_site_release",
                "site_origins_by_origin"
            ]
        );
        let window = |since: Option<&str>, until: Option<&str>, newest_first: bool| {
            store
                .findings(&FindingsQuery {
                    site: "tw_a".into(),
                    since: since.map(Into::into),
                    until: until.map(Into::into),
                    newest_first,
                    limit: 10,
                    ..FindingsQuery::default()
                })
                .expect("findings")
                .into_iter()
                .map(|r| r.at)
                .collect::<Vec<_>>()
        };
        assert_eq!(window(None, None, false), ats);
        assert_eq!(
            window(None, None, true),
            ats.iter().rev().copied().collect::<Vec<_>>()
        );
        // Window edges inside an hour and on one.
        assert_eq!(
            window(
                Some("2024-05-01T10:59:59.999Z"),
                Some("2024-05-01T11:30:00.000Z"),
                false
            ),
            &ats[..2]
        );
        assert_eq!(
            window(
                Some("2024-05-01T11:00:00.001Z"),
                Some("2024-05-01T12"),
                true
            ),
            [ats[2]]
        );
        let purged = store.purge("2024-05-01T11:30:00.000Z", 100).expect("purge");
        assert_eq!((purged.findings, purged.health), (2, 2));
        assert_eq!(window(None, None, false), &ats[2..]);
        let health = store
            .health(&crate::HealthQuery {
                site: "tw_a".into(),
                limit: 10,
                ..crate::HealthQuery::default()
            })
            .expect("health");
        assert_eq!(
            health.iter().map(|h| h.at.as_str()).collect::<Vec<_>>(),
            &ats[2..]
        );
    }

    #[test]
    fn migrates_a_version_1_file_and_keeps_its_data() {
        let path = temp_db("v1");
        {
            let conn = Connection::open(&path).expect("open");
            let v1 = MIGRATIONS.first().expect("v1").sql;
            conn.execute_batch(&render(v1, Dialect::Sqlite, 1))
                .expect("v1");
            conn.pragma_update(None, "user_version", 1).expect("pragma");
            conn.execute(
                "INSERT INTO sites (key, created_at) VALUES ('tw_a', '2024-01-01T00:00:00.000Z')",
                [],
            )
            .expect("site");
            let f = FindingRecord {
                consent: r#"{"analytics":false,"functional":false,"marketing":false,"necessary":true,"source":"tcf"}"#.into(),
                ..finding(1, "2024-05-01T12:00:00.000Z")
            };
            conn.execute(
                "INSERT INTO findings (site, page_view, page, type, vendor, category, evidence,
                     consent, count, at, received_at, user_agent, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                rusqlite::params![
                    f.site.as_str(),
                    f.page_view.as_str(),
                    f.page.as_str(),
                    f.kind.as_str(),
                    f.vendor.as_str(),
                    f.category.map(|c| c.as_str()),
                    f.evidence.as_str(),
                    f.consent.as_str(),
                    f.count,
                    f.at.as_str(),
                    f.received_at.as_str(),
                    f.user_agent.as_str(),
                    f.raw.as_str()
                ],
            )
            .expect("finding");
        }
        let store = open(&path, 1, Checks::default()).expect("migrate");
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        let rows = store
            .findings(&FindingsQuery {
                site: "tw_a".into(),
                limit: 10,
                ..FindingsQuery::default()
            })
            .expect("findings");
        assert_eq!(rows.len(), 1);
        // Version 6 keyed the old row as a write keys it: the same report
        // again updates it instead of adding one; its consent source is in
        // its own column.
        store
            .commit(&[&Batch {
                findings: vec![finding(3, "2024-05-01T12:00:00.000Z")],
                ..Batch::default()
            }])
            .expect("commit");
        let rows = store
            .findings(&FindingsQuery {
                site: "tw_a".into(),
                limit: 10,
                ..FindingsQuery::default()
            })
            .expect("findings");
        assert_eq!(rows.iter().map(|r| r.count).collect::<Vec<_>>(), [3]);
        let stats = store
            .stats(&crate::StatsQuery {
                site: "tw_a".into(),
                max_pages: 10,
                ..crate::StatsQuery::default()
            })
            .expect("stats");
        assert_eq!(
            stats.consent.first().and_then(|c| c.source.as_deref()),
            Some("tcf")
        );
        let kinds: Vec<(String, Option<String>)> = Connection::open(&path)
            .expect("open")
            .prepare("SELECT evidence_kind, consent_source FROM findings")
            .expect("prepare")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(kinds, [("cookie".to_owned(), Some("tcf".to_owned()))]);
        let inv = InventoryRecord {
            release: None,
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
                release: None,
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
        open(&path, 0, Checks::default()).expect("reopen");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    /// Checkpoints still happen with SQLite's automatic one replaced by
    /// the checkpoint thread: once the WAL passes the threshold, its pages
    /// reach the database file.
    /// Version 10 chains health reports and inventories: rows stored
    /// before are not proven (not tampered), rows stored since are
    /// chained, and a row inserted since behind the collector is named.
    #[test]
    fn migrates_a_version_9_file_and_chains_health_and_inventories_from_then() {
        let path = temp_db("v9");
        {
            let conn = Connection::open(&path).expect("open");
            for m in MIGRATIONS.iter().filter(|m| m.version <= 9) {
                conn.execute_batch(&render(m.sql, Dialect::Sqlite, 1))
                    .expect("old migration");
                conn.execute_batch(&render(m.then, Dialect::Sqlite, 1))
                    .expect("old migration");
            }
            conn.pragma_update(None, "user_version", 9).expect("pragma");
            conn.execute_batch(
                "INSERT INTO sites (key, created_at) VALUES ('tw_a', '2024-01-01T00:00:00.000Z');
                 INSERT INTO health (site, page_view, page, status, reason, at, received_at, user_agent, raw)
                 VALUES ('tw_a', NULL, 'https://shop.example/', 'ok', NULL,
                         '2024-05-01T12:00:00.000Z', '2024-05-01T12:00:00.000Z', 'ua', '{}');
                 INSERT INTO inventories (site, page_view, page, at, received_at, user_agent, raw)
                 VALUES ('tw_a', 'pv0', 'https://shop.example/', '2024-05-01T12:00:00.000Z',
                         '2024-05-01T12:00:00.000Z', 'ua', '{}');
                 INSERT INTO inventory_vendors VALUES (1, 'ga4', 1, 1, 1, 1, 1, '[]', '[]', '[]');",
            )
            .expect("old rows");
        }
        let store = open(&path, 1, Checks::default()).expect("migrate");
        assert_eq!(user_version(&path), SCHEMA_VERSION);
        let dump = store.chain("tw_a").expect("chain");
        assert_eq!(dump.verify(crate::chain::Rows::All, None), []);
        assert_eq!(dump.unproven(), (1, 1));
        // A report since: chained (the inventory of pv0 replaced: its
        // state from now on is chained too).
        let inv = InventoryRecord {
            release: None,
            site: "tw_a".into(),
            page_view: "pv0".into(),
            page: "https://shop.example/".into(),
            vendors: vec![],
            unclassified: vec![],
            at: "2024-05-02T12:00:00.000Z".into(),
            received_at: "2024-05-02T12:00:00.000Z".into(),
            user_agent: "ua".into(),
            raw: "{}".into(),
        };
        store
            .commit(&[&Batch {
                inventories: vec![inv],
                ..Batch::default()
            }])
            .expect("commit");
        let dump = store.chain("tw_a").expect("chain");
        assert_eq!(dump.verify(crate::chain::Rows::All, None), []);
        assert_eq!(dump.unproven(), (1, 0));
        // A health row inserted since, behind the collector's back.
        Connection::open(&path)
            .expect("open")
            .execute_batch(
                "INSERT INTO health (site_id, page_view, page, status, reason, at, received_at, user_agent, raw)
                 VALUES ((SELECT id FROM names WHERE name = 'tw_a'), NULL, 'https://shop.example/', 'ok', NULL,
                         '2024-05-01T12:00:00.000Z', '2024-05-01T12:00:00.000Z', 'ua', '{}')",
            )
            .expect("insert");
        let problems = store
            .chain("tw_a")
            .expect("chain")
            .verify(crate::chain::Rows::All, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .0
                .contains("health report 2 of site tw_a is not in the chain"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_wal_is_checkpointed_into_the_database_file() {
        let path = temp_db("checkpoint");
        let store = open(&path, 0, Checks::default()).expect("open");
        store
            .add_site("tw_a", &[], "2024-05-01T12:00:00.000Z")
            .expect("site");
        let wal = path.with_extension("db-wal");
        let big = "x".repeat(64 * 1024);
        let mut n = 0;
        // Past the threshold: CHECKPOINT_PAGES pages of 4 KB in the WAL.
        let threshold = u64::try_from(CHECKPOINT_PAGES).expect("pages") * 4096;
        while std::fs::metadata(&wal).map_or(0, |m| m.len()) < threshold + 1024 * 1024 {
            n += 1;
            let f = FindingRecord {
                raw: big.as_str().into(),
                ..finding(1, "2024-05-01T12:00:00.000Z")
            };
            let f = FindingRecord {
                page_view: format!("{n:016x}").into(),
                ..f
            };
            store
                .commit(&[&Batch {
                    findings: vec![f],
                    ..Batch::default()
                }])
                .expect("commit");
            assert!(n < 1000, "the WAL does not grow");
        }
        // The checkpoint runs on its own thread: wait for its result, the
        // rows' texts in the database file (not a fixed size: how many rows
        // fill the WAL depends on the schema's indexes; a bound only so
        // that a broken build fails instead of hanging).
        let written = u64::try_from(n * big.len()).expect("size");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::fs::metadata(&path).map_or(0, |m| m.len()) < written {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL never reached the database file: db {} wal {} n {n}",
                std::fs::metadata(&path).map_or(0, |m| m.len()),
                std::fs::metadata(&wal).map_or(0, |m| m.len())
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(store);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    /// The collector's writer keeps its statement journals in memory (not
    /// a file created in /var/tmp each group commit and written to);
    /// readers and a store without readers (CLI) keep the default.
    #[test]
    fn the_writer_keeps_its_temporary_files_in_memory() {
        let path = temp_db("temp-store");
        let temp_store = |store: &Db<SqliteConn>| -> i64 {
            store
                .write(|c| {
                    Ok(c.conn
                        .conn()
                        .pragma_query_value(None, "temp_store", |row| row.get(0))?)
                })
                .expect("pragma")
        };
        // 2: MEMORY; 0: SQLite's default (a file, spilled past 64 KB).
        assert_eq!(
            temp_store(&open(&path, 1, Checks::default()).expect("open")),
            2
        );
        assert_eq!(
            temp_store(&open(&path, 0, Checks::default()).expect("open")),
            0
        );
        let reader = connect(&path, Role::Reader, true).expect("reader");
        let read: i64 = reader
            .conn
            .conn()
            .pragma_query_value(None, "temp_store", |row| row.get(0))
            .expect("pragma");
        assert_eq!(read, 0);
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
        let opened = open(&path, 0, Checks::default());
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
        match opened {
            Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("unexpected: {:?}", other.err()),
        }
    }
}
