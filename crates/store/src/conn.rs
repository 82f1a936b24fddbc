//! The small interface the store's queries need from a database connection,
//! implemented once for SQLite (`sqlite.rs`) and once for PostgreSQL
//! (`postgres.rs`). Everything else — every query, every write, the
//! migrations — is written once against it (`db.rs`, `schema.rs`).
//!
//! Statements are written in one SQL text with `?N` parameters and a few
//! `{tokens}` where the dialects differ (`schema::render`); a connection
//! renders each text once and keeps it prepared. The texts are `'static`:
//! the statement cache is keyed by them.

use crate::schema::Dialect;
use crate::{SharedText, StoreError};

/// A value bound to a statement parameter. Text borrows from the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Param::Text(s)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(s: &'a String) -> Self {
        Param::Text(s)
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(s: Option<&'a str>) -> Self {
        s.map_or(Param::Null, Param::Text)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(s: &'a Option<String>) -> Self {
        s.as_deref().into()
    }
}

impl<'a> From<&'a SharedText> for Param<'a> {
    fn from(s: &'a SharedText) -> Self {
        Param::Text(s)
    }
}

impl<'a> From<&'a Option<SharedText>> for Param<'a> {
    fn from(s: &'a Option<SharedText>) -> Self {
        s.as_deref().into()
    }
}

impl From<i64> for Param<'_> {
    fn from(n: i64) -> Self {
        Param::Int(n)
    }
}

impl From<u32> for Param<'_> {
    fn from(n: u32) -> Self {
        Param::Int(i64::from(n))
    }
}

impl From<Option<f64>> for Param<'_> {
    fn from(n: Option<f64>) -> Self {
        n.map_or(Param::Null, Param::Real)
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(n: Option<i64>) -> Self {
        n.map_or(Param::Null, Param::Int)
    }
}

/// One row of a result, read by column index. Integers are read leniently
/// (SQLite may hand back a float, PostgreSQL a narrower integer).
pub(crate) trait Row {
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn real(&self, i: usize) -> Result<f64, StoreError>;
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError>;
    /// A text column borrowed from the row (no copy: for values that are
    /// only hashed or compared).
    fn str(&self, i: usize) -> Result<&str, StoreError>;
    fn opt_str(&self, i: usize) -> Result<Option<&str>, StoreError>;
}

/// How a transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tx {
    /// Writes: SQLite takes the write lock at once (`BEGIN IMMEDIATE`).
    Write,
    /// Several reads seeing one snapshot.
    Read,
}

/// A connection to one of the two databases.
pub(crate) trait Conn: Send + 'static {
    const DIALECT: Dialect;

    /// Runs a statement (canonical text, see the module comment) of `rows`
    /// rows (`params` row after row), and calls `each` for every row it
    /// returns. The text is rendered and prepared once per connection and
    /// row count; PostgreSQL binds the rows of `{rows:C…}` and `{list:C}`
    /// as one array per column, prepared once for any rows.
    fn query_rows(
        &mut self,
        sql: &'static str,
        rows: usize,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Runs a statement; rows changed.
    fn execute(&mut self, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StoreError>;

    /// Runs a query and calls `each` for every row.
    fn query(
        &mut self,
        sql: &'static str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.query_rows(sql, 1, params, each)
    }

    /// Runs statements without parameters (migrations, transaction control).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;

    fn begin(&mut self, tx: Tx) -> Result<(), StoreError>;

    fn commit(&mut self) -> Result<(), StoreError> {
        self.batch("COMMIT")
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        self.batch("ROLLBACK")
    }

    /// Whether the connection is gone (PostgreSQL: closed socket); the
    /// pool then opens a new one.
    fn is_broken(&self) -> bool {
        false
    }

    /// The schema version the database holds (0: none), read inside the
    /// migration transaction, which this also locks against other
    /// processes migrating at the same time.
    fn schema_version(&mut self) -> Result<i64, StoreError>;

    /// Records that `version` was applied (inside the same transaction).
    fn set_schema_version(&mut self, version: i64) -> Result<(), StoreError>;
}

/// The rows of a query, each made by `read`.
pub(crate) fn rows<C: Conn, T>(
    c: &mut C,
    sql: &'static str,
    params: &[Param<'_>],
    mut read: impl FnMut(&dyn Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    c.query(sql, params, &mut |row| {
        out.push(read(row)?);
        Ok(())
    })?;
    Ok(out)
}

/// The first row of a query, if any.
pub(crate) fn first<C: Conn, T>(
    c: &mut C,
    sql: &'static str,
    params: &[Param<'_>],
    mut read: impl FnMut(&dyn Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut out = None;
    c.query(sql, params, &mut |row| {
        if out.is_none() {
            out = Some(read(row)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Runs `f` in a transaction: committed when it returns `Ok`, rolled back
/// otherwise.
pub(crate) fn transaction<C: Conn, T>(
    c: &mut C,
    tx: Tx,
    f: impl FnOnce(&mut C) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    c.begin(tx)?;
    match f(c) {
        Ok(v) => {
            c.commit()?;
            Ok(v)
        }
        Err(e) => {
            // The connection may be gone; the error that matters is `e`.
            let _ = c.rollback();
            Err(e)
        }
    }
}
