//! The PostgreSQL connection of the store, for several collectors sharing
//! one database. Concurrency with other collectors on the same database,
//! and between the [`WRITERS`] write connections of one store, which commit
//! side by side as other collectors do:
//!
//! - Migrations run under a transaction-scoped advisory lock, so collectors
//!   starting together apply them once.
//! - Dedupe is `INSERT … ON CONFLICT`, atomic across sessions; a commit
//!   writes in key order (`db.rs`), so two writers lock rows in the same
//!   order and never deadlock; a deadlock or serialization failure (rolled
//!   back whole) is retried anyway.
//! - Purges lock what they delete with `SKIP LOCKED`, so they never wait
//!   for a writer.
//! - `synchronous_commit = on` for every session: a commit returns after the
//!   WAL is flushed, whatever the server's default.

use std::collections::HashMap;
use std::error::Error;
use std::str::FromStr;
use std::time::Duration;

use ::postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use ::postgres::{Client, Config, NoTls, Statement};
use bytes::BytesMut;

use crate::conn::{Conn, Param, Row, Tx};
use crate::db::{self, Db, Role};
use crate::schema::{binds_columns, render, Dialect};
use crate::timefmt::{iso_from_ms, now_ms};
use crate::StoreError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Write connections, each committing a group while the other does (the
/// writer threads of `Store::writers`): while one commit waits for its WAL
/// flush or for a site's chain head, the next one's rows are written. Two,
/// not more: a site's commits take turns on its chain head (lock, entries,
/// WAL flush), so a third writer mostly waits there, and the groups each
/// writer takes get smaller, costing CPU a batch on both sides. On a 2-core
/// machine with PostgreSQL on it, 32 clients: 3 writers +65 % batches/s
/// over 1; 2 against 3 the same rate or better with groups of ≈ 9 batches
/// instead of ≈ 7 and −15 % CPU a batch (collector and PostgreSQL), p99
/// lower. Measured in docs/benchmarks.md ("… commits side by side",
/// "… second round", "PostgreSQL without per-row foreign keys").
const WRITERS: usize = 2;
/// Advisory lock key of the migrations: "tagwatch" in ASCII.
const MIGRATION_LOCK: i64 = 0x7461_6777_6174_6368;

/// One PostgreSQL session and its prepared statements.
pub(crate) struct PgConn {
    /// The session: always there but while the connection is dropped
    /// (its `Drop` closes it on a thread of its own).
    session: Option<Client>,
    statements: HashMap<(&'static str, usize), Statement>,
}

/// `postgres::Client` closes its session when dropped by blocking on a
/// runtime of its own, which panics on a thread that runs another async
/// runtime — and a panic in a destructor while unwinding aborts the
/// process. The collector's last reference to the store can be dropped on
/// a tokio worker (a keep-alive connection's task ending after the
/// shutdown dropped the collector's own: seen as `serve` aborting at
/// SIGTERM, `cli/tests/storage.rs`), so the session is closed on a thread
/// that runs no runtime, wherever the connection is dropped.
impl Drop for PgConn {
    fn drop(&mut self) {
        self.statements.clear();
        if let Some(session) = self.session.take() {
            let closing = std::thread::Builder::new()
                .name("tagwatch-pg-close".into())
                .spawn(move || drop(session));
            // Waited for, so the server sees the session end before the
            // process does; a thread that cannot be made drops it here.
            if let Ok(closing) = closing {
                let _ = closing.join();
            }
        }
    }
}

impl PgConn {
    fn connect(config: &Config) -> Result<Self, StoreError> {
        let mut client = config.connect(NoTls)?;
        client.batch_execute("SET synchronous_commit = on")?;
        Ok(Self {
            session: Some(client),
            statements: HashMap::new(),
        })
    }

    /// The session (there until the connection is dropped).
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        self.session
            .as_mut()
            .ok_or_else(|| StoreError::Untrusted("the PostgreSQL session is closed".into()))
    }

    /// `sql` for `rows` rows, prepared on this session once (once for any
    /// rows when its rows are bound as arrays).
    fn prepared(&mut self, sql: &'static str, rows: usize) -> Result<Statement, StoreError> {
        let rows = if binds_columns(sql, Dialect::Postgres) {
            0
        } else {
            rows
        };
        if let Some(st) = self.statements.get(&(sql, rows)) {
            return Ok(st.clone());
        }
        let st = self
            .client()?
            .prepare(&render(sql, Dialect::Postgres, rows))?;
        self.statements.insert((sql, rows), st.clone());
        Ok(st)
    }
}

impl ToSql for Param<'_> {
    /// Each value as the type the server inferred for its parameter.
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(n) => match *ty {
                Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)]
                Type::FLOAT8 => (n as f64).to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            #[allow(clippy::cast_possible_truncation)]
            Param::Real(f) => match *ty {
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            Param::Text(s) => s.to_sql(ty, out),
            Param::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

struct PgRow<'a>(&'a ::postgres::Row);

impl PgRow<'_> {
    fn ty(&self, i: usize) -> Option<&Type> {
        self.0.columns().get(i).map(|c| c.type_())
    }
}

impl Row for PgRow<'_> {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or_else(|| {
            StoreError::Untrusted(format!("column {i} is NULL where a number was expected"))
        })
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(match self.ty(i) {
            Some(&Type::INT2) => self.0.try_get::<_, Option<i16>>(i)?.map(i64::from),
            Some(&Type::INT4) => self.0.try_get::<_, Option<i32>>(i)?.map(i64::from),
            // `as` saturates (and maps NaN to 0).
            Some(&Type::FLOAT8) => self.0.try_get::<_, Option<f64>>(i)?.map(|f| f as i64),
            _ => self.0.try_get(i)?,
        })
    }

    fn real(&self, i: usize) -> Result<f64, StoreError> {
        Ok(self.0.try_get(i)?)
    }

    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.0.try_get(i)?)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.0.try_get(i)?)
    }
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        Ok(self.0.try_get(i)?)
    }

    fn str(&self, i: usize) -> Result<&str, StoreError> {
        Ok(self.0.try_get(i)?)
    }

    fn opt_str(&self, i: usize) -> Result<Option<&str>, StoreError> {
        Ok(self.0.try_get(i)?)
    }
}

fn refs<'a>(params: &'a [Param<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Row-major parameters (`columns` a row) as one array per column, for a
/// statement whose rows are `unnest` of its array parameters.
fn columns_of<'a>(params: &[Param<'a>], columns: usize) -> Vec<Vec<Param<'a>>> {
    let rows = params.len().checked_div(columns).unwrap_or(0);
    let mut out: Vec<Vec<Param<'a>>> = (0..columns).map(|_| Vec::with_capacity(rows)).collect();
    for row in params.chunks_exact(columns.max(1)) {
        for (column, p) in out.iter_mut().zip(row) {
            column.push(*p);
        }
    }
    out
}

impl Conn for PgConn {
    const DIALECT: Dialect = Dialect::Postgres;

    fn query_rows(
        &mut self,
        sql: &'static str,
        rows: usize,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let st = self.prepared(sql, rows)?;
        let found = if binds_columns(sql, Dialect::Postgres) {
            let columns = columns_of(params, st.params().len());
            let arrays: Vec<&(dyn ToSql + Sync)> =
                columns.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
            self.client()?.query(&st, &arrays)?
        } else {
            self.client()?.query(&st, &refs(params))?
        };
        for row in found {
            each(&PgRow(&row))?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let st = self.prepared(sql, 1)?;
        Ok(self.client()?.execute(&st, &refs(params))?)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.client()?.batch_execute(sql)?)
    }

    fn begin(&mut self, tx: Tx) -> Result<(), StoreError> {
        self.batch(match tx {
            Tx::Write => "BEGIN",
            Tx::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        })
    }

    fn is_broken(&self) -> bool {
        self.session.as_ref().is_none_or(Client::is_closed)
    }

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        // Collectors starting together: the others wait here, then find the
        // schema current. Released at commit or rollback.
        self.client()?
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        self.client()?.batch_execute(
            "CREATE TABLE IF NOT EXISTS tagwatch_schema (
                 version    BIGINT PRIMARY KEY,
                 applied_at TEXT NOT NULL
             )",
        )?;
        Ok(self
            .client()?
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM tagwatch_schema",
                &[],
            )?
            .try_get(0)?)
    }

    fn set_schema_version(&mut self, version: i64) -> Result<(), StoreError> {
        let now = iso_from_ms(now_ms());
        self.client()?.execute(
            "INSERT INTO tagwatch_schema (version, applied_at) VALUES ($1, $2)",
            &[&version, &now],
        )?;
        Ok(())
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

/// Connects, checks that the database takes writes, migrates, and opens
/// `readers` read connections.
pub(crate) fn open(url: &str, readers: usize) -> Result<Db<PgConn>, StoreError> {
    let mut config = Config::from_str(url).map_err(|e| {
        let mut why = String::new();
        let _ = crate::write_pg_error(&mut why, &e);
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
    let mut writer = PgConn::connect(&config)?;
    refuse_read_only(writer.client()?)?;
    db::migrate(&mut writer)?;
    Db::new(
        writer,
        WRITERS,
        readers,
        Box::new(move |_: Role| PgConn::connect(&config)),
    )
}
