//! The store's SQLite statements, prepared, bound and stepped through
//! SQLite's C API (`rusqlite::ffi`) instead of rusqlite's `Statement`, for
//! one reason: **binding a text or blob without a copy** (`SQLITE_STATIC`).
//! rusqlite binds every text and blob as `SQLITE_TRANSIENT`, so SQLite
//! allocates and copies each value at bind time and frees it at the next
//! bind: ≈ 260 texts a batch on the collector's writer thread, the serial
//! bound of ingest; rusqlite has no way to ask for `SQLITE_STATIC`.
//! Measured (docs/benchmarks.md, "Binding without copies"): binding fell
//! from 7.4 % of that thread's CPU to 3.5 %, rusqlite's statement cache
//! (which hashed each statement's whole text) from 2.6 % to 0.4 %; the
//! writer's instructions a batch −5.6 %. Everything else about a
//! statement is kept as rusqlite does it (errors as `rusqlite::Error`, the
//! same column conversions), so the rest of the store does not know the
//! difference.
//!
//! The one invariant `SQLITE_STATIC` needs: **SQLite never reads a bound
//! value after the borrow it came from has ended.** [`StaticConn::run`]
//! borrows the values for the whole call, binds them, steps the statement
//! to its end (or to an error), and before it returns — on every path, by
//! a guard's `Drop` — resets the statement and clears its bindings
//! (`sqlite3_clear_bindings`: every parameter NULL again), so the
//! statement kept in the cache holds no pointer into the caller's values.
//!
//! The connection is rusqlite's (opening, pragmas, hooks, migrations stay
//! there); this module only holds its statements, and finalizes them before
//! the connection is closed ([`StaticConn`] owns both). The cache is keyed
//! by the statement's `'static` text (its address) and row count: bounded
//! by the texts in this binary times the row counts `db::write_rows` uses
//! (powers of two up to its `MAX_ROWS`).
// The workspace denies `unsafe`; this module is the store's one allowance:
// SQLite's C API, each call's contract stated where it is made.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

use foldhash::fast::FixedState;
use rusqlite::ffi;
use rusqlite::types::Type;
use rusqlite::Connection;

use crate::conn::{Param, Row};
use crate::StoreError;

/// One prepared statement, owned: finalized on drop.
struct Stmt(NonNull<ffi::sqlite3_stmt>);

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `sqlite3_prepare_v3` and is
        // finalized only here, once; `StaticConn` drops its statements
        // before its connection (its `Drop`).
        unsafe { ffi::sqlite3_finalize(self.0.as_ptr()) };
    }
}

/// A cache key: a statement's text (by address and length: the texts are
/// `'static`) and its row count.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key(usize, usize, usize);

/// A rusqlite connection and the statements prepared on it here.
pub(crate) struct StaticConn {
    /// Looked up once a statement run (≈ 17 a batch on the writer):
    /// foldhash over the key's three words, where the default SipHash cost
    /// ≈ 270 instructions a look-up. The keys are the statements' own
    /// addresses, never input, so a fixed seed is no flooding risk.
    statements: HashMap<Key, Stmt, FixedState>,
    conn: Connection,
}

// SAFETY: the statements are used only through `&mut StaticConn`, which
// owns the connection they belong to; rusqlite's `Connection` is `Send`
// (SQLite in multi-thread mode: a connection and its statements may move
// between threads as long as one thread uses them at a time, which `&mut`
// guarantees). Nothing here is shared (`Sync` is not claimed).
unsafe impl Send for StaticConn {}

impl Drop for StaticConn {
    fn drop(&mut self) {
        // Before the connection closes (fields drop after this): SQLite
        // refuses to close a connection with statements not finalized.
        self.statements.clear();
    }
}

/// The error SQLite reports for `code` on `db`, as rusqlite makes it.
fn error(db: *mut ffi::sqlite3, code: c_int) -> StoreError {
    // SAFETY: `db` is an open connection; `sqlite3_errmsg` and
    // `sqlite3_errstr` return NUL-terminated strings owned by SQLite,
    // valid until the next call on `db`, copied at once.
    let message = unsafe {
        let text = if ffi::sqlite3_errcode(db) == code {
            ffi::sqlite3_errmsg(db)
        } else {
            ffi::sqlite3_errstr(code)
        };
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        ffi::Error::new(code),
        message,
    ))
}

/// A value's length as SQLite's 64-bit binds take it.
fn len64(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

/// Where an empty text is bound from (length 0): a real address, where an
/// empty `&str`'s own pointer may dangle.
const EMPTY: *const c_char = c"".as_ptr();

impl StaticConn {
    pub(crate) fn new(conn: Connection) -> Self {
        Self {
            statements: HashMap::with_hasher(FixedState::default()),
            conn,
        }
    }

    /// The connection, for everything but the statements run here.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs the statement `sql` of `rows` rows (its SQLite text made by
    /// `render` the first time: prepared once, kept), with `params` bound
    /// without copies; calls `each` for every row it answers. Answers the
    /// rows changed (`sqlite3_changes64`, as rusqlite's `execute` does).
    pub(crate) fn run(
        &mut self,
        sql: &'static str,
        rows: usize,
        render: impl FnOnce() -> String,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        // SAFETY: rusqlite's handle of an open connection, used only while
        // `self` (which owns the connection) is borrowed.
        let db = unsafe { self.conn.handle() };
        let key = Key(sql.as_ptr() as usize, sql.len(), rows);
        let stmt = match self.statements.get(&key) {
            Some(stmt) => stmt.0,
            None => {
                let stmt = prepare(db, &render())?;
                self.statements.entry(key).or_insert(stmt).0
            }
        };
        // From here on the statement is reset and its bindings cleared
        // when this returns, whatever the path (the invariant above).
        let running = Running { stmt };
        running.bind(db, params)?;
        loop {
            // SAFETY: a prepared statement of `db` with every parameter
            // bound to values borrowed for this whole call.
            match unsafe { ffi::sqlite3_step(stmt.as_ptr()) } {
                ffi::SQLITE_ROW => each(&StaticRow {
                    stmt,
                    _row: PhantomData,
                })?,
                ffi::SQLITE_DONE => break,
                code => return Err(error(db, code)),
            }
        }
        // SAFETY: `db` is open.
        let changed = unsafe { ffi::sqlite3_changes64(db) };
        Ok(u64::try_from(changed).unwrap_or(0))
    }
}

/// Prepares `text`, one statement, kept (`SQLITE_PREPARE_PERSISTENT`).
fn prepare(db: *mut ffi::sqlite3, text: &str) -> Result<Stmt, StoreError> {
    let len = c_int::try_from(text.len())
        .map_err(|_| StoreError::Untrusted("a statement's text is too long".into()))?;
    let mut stmt = std::ptr::null_mut();
    let mut tail: *const c_char = std::ptr::null();
    // SAFETY: `text` is valid for `len` bytes (SQLite reads no further,
    // and no NUL is needed); `stmt` and `tail` are written by SQLite.
    let code = unsafe {
        ffi::sqlite3_prepare_v3(
            db,
            text.as_ptr().cast::<c_char>(),
            len,
            ffi::SQLITE_PREPARE_PERSISTENT,
            &mut stmt,
            &mut tail,
        )
    };
    if code != ffi::SQLITE_OK {
        return Err(error(db, code));
    }
    // Owned from here (finalized on drop), also when refused below.
    let stmt = NonNull::new(stmt)
        .map(Stmt)
        .ok_or_else(|| StoreError::Untrusted(format!("an empty statement: {text:?}")))?;
    // SAFETY: `tail` points into `text` (at its end when all of it was
    // one statement), as `sqlite3_prepare_v3` promises.
    let used =
        usize::try_from(unsafe { tail.offset_from(text.as_ptr().cast::<c_char>()) }).unwrap_or(0);
    if !text.get(used..).unwrap_or_default().trim().is_empty() {
        return Err(StoreError::Sqlite(rusqlite::Error::MultipleStatement));
    }
    Ok(stmt)
}

/// A statement being run (by [`StaticConn::run`], with values it
/// borrows): reset and its bindings cleared when dropped.
struct Running {
    stmt: NonNull<ffi::sqlite3_stmt>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: a prepared statement; both calls are valid in any state
        // (an error of the last step is reported by the step itself).
        unsafe {
            ffi::sqlite3_reset(self.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
        }
    }
}

impl Running {
    /// Binds `params` to `?1`, `?2`, …: texts and blobs as `SQLITE_STATIC`.
    fn bind(&self, db: *mut ffi::sqlite3, params: &[Param<'_>]) -> Result<(), StoreError> {
        let stmt = self.stmt.as_ptr();
        // SAFETY: a prepared statement.
        let expected = unsafe { ffi::sqlite3_bind_parameter_count(stmt) };
        if usize::try_from(expected).ok() != Some(params.len()) {
            return Err(StoreError::Sqlite(rusqlite::Error::InvalidParameterCount(
                params.len(),
                usize::try_from(expected).unwrap_or(0),
            )));
        }
        for (i, param) in (1..).zip(params) {
            // SAFETY: `i` is a parameter of `stmt` (counted above). Texts
            // and blobs are bound as `SQLITE_STATIC`: SQLite keeps the
            // pointer, not a copy, and reads it only while this
            // statement runs; the values are borrowed until `run` returns,
            // and the guard clears the bindings before that (module
            // comment). An empty value is bound from `EMPTY` (a `'static`
            // address), not from its own possibly dangling pointer.
            let code = unsafe {
                match *param {
                    Param::Null => ffi::sqlite3_bind_null(stmt, i),
                    Param::Int(n) => ffi::sqlite3_bind_int64(stmt, i, n),
                    Param::Real(f) => ffi::sqlite3_bind_double(stmt, i, f),
                    Param::Text(s) => {
                        let at = if s.is_empty() {
                            EMPTY
                        } else {
                            s.as_ptr().cast::<c_char>()
                        };
                        ffi::sqlite3_bind_text64(
                            stmt,
                            i,
                            at,
                            len64(s.as_bytes()),
                            ffi::SQLITE_STATIC(),
                            // `SQLITE_UTF8` is 1: fits.
                            ffi::SQLITE_UTF8 as u8,
                        )
                    }
                    // As rusqlite binds an empty blob: a blob of no bytes,
                    // not NULL.
                    Param::Blob([]) => ffi::sqlite3_bind_zeroblob(stmt, i, 0),
                    Param::Blob(b) => ffi::sqlite3_bind_blob64(
                        stmt,
                        i,
                        b.as_ptr().cast::<c_void>(),
                        len64(b),
                        ffi::SQLITE_STATIC(),
                    ),
                }
            };
            if code != ffi::SQLITE_OK {
                return Err(error(db, code));
            }
        }
        Ok(())
    }
}

/// The current row of a statement, valid for `'r` (one call of `each`:
/// the next step or the reset invalidates it).
struct StaticRow<'r> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    _row: PhantomData<&'r ()>,
}

impl StaticRow<'_> {
    /// Column `i`'s index and storage class (checked in range).
    fn column(&self, i: usize) -> Result<(c_int, Type), StoreError> {
        let stmt = self.stmt.as_ptr();
        // SAFETY: a statement on a row (`SQLITE_ROW`); the type is read
        // only for an index in range.
        unsafe {
            let n = ffi::sqlite3_column_count(stmt);
            let col = c_int::try_from(i)
                .ok()
                .filter(|c| *c < n)
                .ok_or(rusqlite::Error::InvalidColumnIndex(i))?;
            let kind = match ffi::sqlite3_column_type(stmt, col) {
                ffi::SQLITE_INTEGER => Type::Integer,
                ffi::SQLITE_FLOAT => Type::Real,
                ffi::SQLITE_TEXT => Type::Text,
                ffi::SQLITE_BLOB => Type::Blob,
                _ => Type::Null,
            };
            Ok((col, kind))
        }
    }

    /// The error rusqlite gives for reading column `i` of type `kind` as
    /// something else.
    fn wrong_type(&self, i: usize, col: c_int, kind: Type) -> StoreError {
        // SAFETY: `col` is in range; the name is SQLite's NUL-terminated
        // string, copied at once.
        let name = unsafe {
            let name = ffi::sqlite3_column_name(self.stmt.as_ptr(), col);
            if name.is_null() {
                String::new()
            } else {
                CStr::from_ptr(name).to_string_lossy().into_owned()
            }
        };
        StoreError::Sqlite(rusqlite::Error::InvalidColumnType(i, name, kind))
    }

    /// The bytes of a text or blob column (`kind` its storage class, so
    /// no conversion happens: the pointer stays valid for the row).
    fn bytes(&self, col: c_int, kind: Type) -> Result<&[u8], StoreError> {
        let stmt = self.stmt.as_ptr();
        // SAFETY: `col` is in range and holds a `kind` value; the text or
        // blob accessor matching its class converts nothing, and its
        // pointer is valid for `len` bytes until the next step or reset,
        // which cannot happen while `self` (the row) is borrowed.
        unsafe {
            let data = if kind == Type::Text {
                ffi::sqlite3_column_text(stmt, col).cast::<u8>()
            } else {
                ffi::sqlite3_column_blob(stmt, col).cast::<u8>()
            };
            let len = usize::try_from(ffi::sqlite3_column_bytes(stmt, col)).unwrap_or(0);
            if len == 0 {
                return Ok(&[]);
            }
            if data.is_null() {
                // Out of memory making the value.
                return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                    ffi::Error::new(ffi::SQLITE_NOMEM),
                    None,
                )));
            }
            Ok(std::slice::from_raw_parts(data, len))
        }
    }
}

impl Row for StaticRow<'_> {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        let (col, kind) = self.column(i)?;
        // SAFETY: `col` is in range and holds a number of that class.
        match kind {
            Type::Integer => Ok(unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), col) }),
            // `as` saturates (and maps NaN to 0): totals are floats.
            Type::Real => Ok(unsafe { ffi::sqlite3_column_double(self.stmt.as_ptr(), col) } as i64),
            _ => Err(self.wrong_type(i, col, kind)),
        }
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.column(i)? {
            (_, Type::Null) => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    fn real(&self, i: usize) -> Result<f64, StoreError> {
        let (col, kind) = self.column(i)?;
        // SAFETY: as in `int`.
        match kind {
            Type::Integer => {
                Ok(unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), col) } as f64)
            }
            Type::Real => Ok(unsafe { ffi::sqlite3_column_double(self.stmt.as_ptr(), col) }),
            _ => Err(self.wrong_type(i, col, kind)),
        }
    }

    fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.column(i)? {
            (col, Type::Null) => Err(self.wrong_type(i, col, Type::Null)),
            _ => self.str(i).map(str::to_owned),
        }
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.opt_str(i)?.map(str::to_owned))
    }

    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        match self.column(i)? {
            (col, Type::Blob) => Ok(self.bytes(col, Type::Blob)?.to_vec()),
            (col, kind) => Err(self.wrong_type(i, col, kind)),
        }
    }

    fn str(&self, i: usize) -> Result<&str, StoreError> {
        self.opt_str(i)?.ok_or_else(|| {
            StoreError::Untrusted(format!("column {i} is NULL where a text was expected"))
        })
    }

    fn opt_str(&self, i: usize) -> Result<Option<&str>, StoreError> {
        match self.column(i)? {
            (_, Type::Null) => Ok(None),
            (col, Type::Text) => std::str::from_utf8(self.bytes(col, Type::Text)?)
                .map(Some)
                .map_err(|e| {
                    StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
                        i,
                        Type::Text,
                        Box::new(e),
                    ))
                }),
            (col, kind) => Err(self.wrong_type(i, col, kind)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> StaticConn {
        let c = StaticConn::new(Connection::open_in_memory().expect("open"));
        c.conn()
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT UNIQUE, b BLOB)")
            .expect("table");
        c
    }

    const INSERT2: &str = "INSERT INTO t (a, b) VALUES (?1, ?2), (?3, ?4)";
    const SELECT_ALL: &str = "SELECT a, b, typeof(a), typeof(b) FROM t ORDER BY id";
    const ECHO: &str = "SELECT ?1, typeof(?1), length(CAST(?1 AS BLOB))";

    fn run(c: &mut StaticConn, sql: &'static str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        c.run(sql, 1, || sql.to_owned(), params, &mut |_| Ok(()))
    }

    /// A row of `t`: (a, b if a blob, typeof a, typeof b).
    type TRow = (Option<String>, Option<Vec<u8>>, String, String);

    /// Every row of `t`.
    fn all(c: &mut StaticConn) -> Vec<TRow> {
        let mut out = Vec::new();
        c.run(SELECT_ALL, 1, || SELECT_ALL.to_owned(), &[], &mut |row| {
            let blob = match row.str(3)? {
                "blob" => Some(row.blob(1)?),
                _ => None,
            };
            out.push((row.opt_text(0)?, blob, row.text(2)?, row.text(3)?));
            Ok(())
        })
        .expect("select");
        out
    }

    /// The statement `sql` as SQLite would run it now, its parameters
    /// expanded (`NULL` when not bound).
    fn expanded(c: &StaticConn, sql: &'static str) -> String {
        let stmt = c
            .statements
            .iter()
            .find(|(k, _)| k.0 == sql.as_ptr() as usize)
            .map(|(_, s)| s.0)
            .expect("cached");
        // SAFETY: a prepared statement of `c`; the string is SQLite's,
        // freed with `sqlite3_free` after the copy.
        unsafe {
            let text = ffi::sqlite3_expanded_sql(stmt.as_ptr());
            let out = CStr::from_ptr(text).to_string_lossy().into_owned();
            ffi::sqlite3_free(text.cast::<c_void>());
            out
        }
    }

    /// Values bound without a copy are read only while the call runs: the
    /// rows hold what was bound even after the values are dropped and
    /// their memory reused by other values of the same size, and the
    /// cached statement holds no binding after any call, failed or not.
    #[test]
    fn values_dropped_and_memory_reused_after_a_run_leave_the_rows_as_bound() {
        let mut c = conn();
        for group in 0..50 {
            let a = format!("first-{group:04}-{}", "x".repeat(100));
            let b = format!("second-{group:04}-{}", "y".repeat(100));
            let blob = vec![u8::try_from(group).expect("small"); 64];
            run(
                &mut c,
                INSERT2,
                &[
                    Param::Text(&a),
                    Param::Blob(&blob),
                    Param::Text(&b),
                    Param::Null,
                ],
            )
            .expect("insert");
            assert!(
                expanded(&c, INSERT2).ends_with("VALUES (NULL, NULL), (NULL, NULL)"),
                "{}",
                expanded(&c, INSERT2)
            );
            drop((a, b, blob));
            // Same sizes: the allocator hands the same memory back.
            let _reuse = ("z".repeat(111), "w".repeat(112), vec![0xee_u8; 64]);
        }
        let rows = all(&mut c);
        assert_eq!(rows.len(), 100);
        for (group, pair) in rows.chunks(2).enumerate() {
            let [first, second] = pair else {
                panic!("odd rows")
            };
            assert_eq!(
                first.0.as_deref(),
                Some(format!("first-{group:04}-{}", "x".repeat(100)).as_str())
            );
            assert_eq!(
                first.1.as_deref(),
                Some(vec![u8::try_from(group).expect("small"); 64].as_slice())
            );
            assert_eq!(
                second.0.as_deref(),
                Some(format!("second-{group:04}-{}", "y".repeat(100)).as_str())
            );
            assert_eq!(second.1, None);
        }
    }

    /// Texts are bound by length: a NUL inside one is kept, not an end.
    /// Empty texts and blobs are empty values, not NULL.
    #[test]
    fn nul_bytes_and_empty_values_are_bound_as_they_are() {
        let mut c = conn();
        let mut seen = Vec::new();
        for text in ["a\0b", "\0", "", "é\0\u{1F600}"] {
            c.run(
                ECHO,
                1,
                || ECHO.to_owned(),
                &[Param::Text(text)],
                &mut |row| {
                    seen.push((row.text(0)?, row.text(1)?, row.int(2)?));
                    Ok(())
                },
            )
            .expect("echo");
        }
        assert_eq!(
            seen,
            [
                ("a\0b".to_owned(), "text".to_owned(), 3),
                ("\0".to_owned(), "text".to_owned(), 1),
                (String::new(), "text".to_owned(), 0),
                ("é\0\u{1F600}".to_owned(), "text".to_owned(), 7),
            ]
        );
        run(
            &mut c,
            INSERT2,
            &[
                Param::Text(""),
                Param::Blob(&[]),
                Param::Text("\0"),
                Param::Blob(b"\0"),
            ],
        )
        .expect("insert");
        assert_eq!(
            all(&mut c),
            [
                (
                    Some(String::new()),
                    Some(vec![]),
                    "text".to_owned(),
                    "blob".to_owned()
                ),
                (
                    Some("\0".to_owned()),
                    Some(vec![0]),
                    "text".to_owned(),
                    "blob".to_owned()
                ),
            ]
        );
    }

    /// A stored text that is not UTF-8 (written behind the store's back)
    /// is an error when read as text, not a panic and not garbage.
    #[test]
    fn a_stored_text_that_is_not_utf8_is_an_error() {
        let mut c = conn();
        c.conn()
            .execute_batch("INSERT INTO t (a) VALUES (CAST(x'66ff6f' AS TEXT))")
            .expect("insert");
        const READ: &str = "SELECT a FROM t";
        let got = c.run(READ, 1, || READ.to_owned(), &[], &mut |row| {
            row.str(0).map(drop)
        });
        assert!(
            matches!(
                got,
                Err(StoreError::Sqlite(
                    rusqlite::Error::FromSqlConversionFailure(0, Type::Text, _)
                ))
            ),
            "{got:?}"
        );
        // And the statement runs again.
        let got = c.run(READ, 1, || READ.to_owned(), &[], &mut |row| {
            row.blob(0).map(drop)
        });
        assert!(
            matches!(
                got,
                Err(StoreError::Sqlite(rusqlite::Error::InvalidColumnType(
                    0,
                    _,
                    Type::Text
                )))
            ),
            "{got:?}"
        );
    }

    /// Large texts bind without a copy; one past SQLite's length limit is
    /// refused with SQLite's error, and the statement is usable after.
    #[test]
    fn huge_texts_bind_and_one_past_the_limit_is_refused() {
        let mut c = conn();
        let big = "h".repeat(16 << 20);
        let mut len = 0;
        c.run(
            ECHO,
            1,
            || ECHO.to_owned(),
            &[Param::Text(&big)],
            &mut |row| {
                len = row.int(2)?;
                assert_eq!(row.str(0)?.len(), big.len());
                Ok(())
            },
        )
        .expect("echo");
        assert_eq!(usize::try_from(len).expect("len"), big.len());
        // SAFETY: an open connection; lowers its own length limit.
        unsafe { ffi::sqlite3_limit(c.conn().handle(), ffi::SQLITE_LIMIT_LENGTH, 1 << 20) };
        let got = run(&mut c, ECHO, &[Param::Text(&big)]);
        assert!(
            matches!(
                &got,
                Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                    if e.code == rusqlite::ErrorCode::TooBig
            ),
            "{got:?}"
        );
        assert!(
            expanded(&c, ECHO).starts_with("SELECT NULL"),
            "{}",
            expanded(&c, ECHO)
        );
        let got = run(
            &mut c,
            INSERT2,
            &[
                Param::Text("a"),
                Param::Blob(big.as_bytes()),
                Param::Text("b"),
                Param::Null,
            ],
        );
        assert!(got.is_err(), "{got:?}");
        assert_eq!(run(&mut c, ECHO, &[Param::Text("small")]).expect("echo"), 0);
    }

    /// A multi-row statement failing on its second row (a constraint)
    /// stores none of its rows and leaves nothing bound; the next group
    /// through the same statement is stored whole. A caller's error in the
    /// middle of a statement's rows ends it the same way.
    #[test]
    fn a_statement_failing_mid_group_leaves_the_next_group_whole() {
        let mut c = conn();
        run(
            &mut c,
            INSERT2,
            &[
                Param::Text("k1"),
                Param::Null,
                Param::Text("k2"),
                Param::Null,
            ],
        )
        .expect("first group");
        let (x, dup) = ("k3".to_owned(), "k1".to_owned());
        let got = run(
            &mut c,
            INSERT2,
            &[Param::Text(&x), Param::Null, Param::Text(&dup), Param::Null],
        );
        assert!(
            matches!(
                &got,
                Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation
            ),
            "{got:?}"
        );
        drop((x, dup));
        assert!(expanded(&c, INSERT2).ends_with("(NULL, NULL), (NULL, NULL)"));
        run(
            &mut c,
            INSERT2,
            &[
                Param::Text("k4"),
                Param::Int(7),
                Param::Text("k5"),
                Param::Real(0.5),
            ],
        )
        .expect("next group");
        let keys: Vec<_> = all(&mut c).into_iter().map(|r| r.0).collect();
        assert_eq!(keys, ["k1", "k2", "k4", "k5"].map(|k| Some(k.to_owned())));
        // The caller stops at the first row answered.
        const RETURNING: &str = "INSERT INTO t (a) VALUES (?1), (?2) RETURNING a";
        let got = c.run(
            RETURNING,
            1,
            || RETURNING.to_owned(),
            &[Param::Text("k6"), Param::Text("k7")],
            &mut |_| Err(StoreError::Untrusted("stop".into())),
        );
        assert!(matches!(got, Err(StoreError::Untrusted(_))), "{got:?}");
        let mut answered = Vec::new();
        c.run(
            RETURNING,
            1,
            || RETURNING.to_owned(),
            &[Param::Text("k8"), Param::Text("k9")],
            &mut |row| {
                answered.push(row.text(0)?);
                Ok(())
            },
        )
        .expect("returning");
        assert_eq!(answered, ["k8", "k9"]);
    }

    /// Misuse is an error, not a panic or a read past the values: a wrong
    /// parameter count, a column out of range, two statements in one text.
    #[test]
    fn misuse_is_an_error() {
        let mut c = conn();
        let got = run(&mut c, INSERT2, &[Param::Text("only one")]);
        assert!(
            matches!(
                got,
                Err(StoreError::Sqlite(rusqlite::Error::InvalidParameterCount(
                    1, 4
                )))
            ),
            "{got:?}"
        );
        let got = c.run(ECHO, 1, || ECHO.to_owned(), &[Param::Int(1)], &mut |row| {
            row.int(3).map(drop)
        });
        assert!(
            matches!(
                got,
                Err(StoreError::Sqlite(rusqlite::Error::InvalidColumnIndex(3)))
            ),
            "{got:?}"
        );
        const TWO: &str = "SELECT 1; SELECT 2";
        let got = run(&mut c, TWO, &[]);
        assert!(
            matches!(
                got,
                Err(StoreError::Sqlite(rusqlite::Error::MultipleStatement))
            ),
            "{got:?}"
        );
        const BAD: &str = "SELEC 1";
        assert!(run(&mut c, BAD, &[]).is_err());
        const NOTHING: &str = "  ";
        assert!(run(&mut c, NOTHING, &[]).is_err());
    }

    /// Columns read as rusqlite reads them: integers from floats (saturating),
    /// floats from integers, NULL as `None`, a text where a number is asked
    /// for an error.
    #[test]
    fn columns_convert_as_rusqlite_converts_them() {
        let mut c = conn();
        const ROW: &str = "SELECT 1e300, -2.7, 5, NULL, 'x', x'00ff'";
        c.run(ROW, 1, || ROW.to_owned(), &[], &mut |row| {
            assert_eq!(row.int(0)?, i64::MAX);
            assert_eq!(row.int(1)?, -2);
            assert!((row.real(2)? - 5.0).abs() < f64::EPSILON);
            assert_eq!(row.opt_int(3)?, None);
            assert_eq!(row.opt_text(3)?, None);
            assert!(row.text(3).is_err());
            assert!(row.str(3).is_err());
            assert!(row.int(4).is_err());
            assert!(row.blob(4).is_err());
            assert_eq!(row.blob(5)?, [0, 0xff]);
            assert!(row.str(5).is_err());
            Ok(())
        })
        .expect("row");
    }

    /// The connection closes cleanly with statements cached (they are
    /// finalized first): a WAL file's last connection, closed, removes the
    /// WAL, which an unclosed one would leave.
    #[test]
    fn the_connection_closes_with_its_statements_finalized() {
        let dir = std::env::temp_dir().join(format!(
            "tagwatch-store-static-{}-{}",
            std::process::id(),
            crate::timefmt::now_ms()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.pragma_update(None, "journal_mode", "WAL")
                .expect("wal");
            conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT UNIQUE, b BLOB)")
                .expect("table");
            let mut c = StaticConn::new(conn);
            run(
                &mut c,
                INSERT2,
                &[Param::Text("a"), Param::Null, Param::Text("b"), Param::Null],
            )
            .expect("insert");
            assert_eq!(all(&mut c).len(), 2);
            assert!(path.with_extension("db-wal").exists());
        }
        assert!(!path.with_extension("db-wal").exists(), "not closed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
