//! A SQLite VFS over the platform's (`unix`) that writes a WAL file's
//! frames with **one `pwrite` for up to 124 KiB of them instead of two a
//! frame** (≈ 4 a group commit instead of ≈ 234). SQLite
//! writes each WAL frame as two writes, its 24-byte header then its page
//! (`walWriteOneFrame`), so a group commit of ≈ 117 frames made ≈ 234
//! system calls on the collector's writer thread, the serial bound of
//! ingest, each with the kernel's per-call and per-page-cache-folio work
//! (a frame of 4,120 bytes spans two folios, its header one of them
//! again): 18 % of that thread's CPU under load, 7 % with this VFS
//! (docs/benchmarks.md, fourteenth round). Here a WAL file's writes that
//! follow one another are gathered in memory and handed to the platform's
//! file in as few calls as it takes ([`MAX_WRITE`]) before anything can
//! depend on them: before a sync (so `COMMIT` with
//! `synchronous = FULL` still returns only once they are on disk), a read,
//! a size, a truncation, a file control, a lock, and the close. Every
//! other file (the database, journals, temporary files) is the platform's
//! own, untouched: [`open`] gives it the whole allocation.
//!
//! What is not changed: what is written, where, and when it is durable. A
//! write SQLite makes here returns before the bytes reach the kernel, but
//! nothing reads them before a flush (every path in goes through one),
//! and a failed flush fails the sync, read or close that caused it, as the
//! write itself would have failed the commit. Another connection or
//! process reads a frame only after the commit that wrote it was synced
//! (SQLite updates the WAL index after the sync).
//!
//! **That needs every commit to sync the WAL** (`synchronous = FULL`,
//! which every connection of the store is opened with:
//! `sqlite::configure`, checked by
//! `sqlite::tests::every_connection_syncs_each_commit`). Under `NORMAL` a
//! commit does not sync, so its frames could still be gathered here when
//! SQLite makes them visible to other connections.
// The workspace denies `unsafe`; this module is SQLite's VFS interface (C
// function pointers over memory SQLite allocates), each call's contract
// stated where it is made.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The VFS's name, given to `sqlite3_open_v2`.
pub(crate) const NAME: &str = "tagwatch-wal";
const NAME_C: &CStr = c"tagwatch-wal";

/// Bytes gathered before they are written anyway (a transaction larger
/// than this, which the collector's group commits are not — ≈ 0.5 MB for
/// 32 golden batches —, is written in pieces of this size).
const MAX_GATHERED: usize = 4 << 20;

/// The registered VFS and the platform's one it wraps.
struct Registered {
    inner: *mut ffi::sqlite3_vfs,
}

// SAFETY: both pointers are to VFS objects that live as long as the
// process (the platform's is static in SQLite; ours is leaked) and are
// never written after registration (SQLite only reads a registered VFS,
// but for `pNext`, under its own mutex).
unsafe impl Send for Registered {}
unsafe impl Sync for Registered {}

static REGISTERED: OnceLock<Result<Registered, c_int>> = OnceLock::new();

/// Registers the VFS (once; not as the default). Fails if SQLite has no
/// default VFS to wrap.
pub(crate) fn register() -> Result<(), rusqlite::Error> {
    let registered = REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_initialize` may be called any number of times;
        // `sqlite3_vfs_find(NULL)` answers the default VFS (static in
        // SQLite) or NULL.
        let inner = unsafe {
            let rc = ffi::sqlite3_initialize();
            if rc != ffi::SQLITE_OK {
                return Err(rc);
            }
            ffi::sqlite3_vfs_find(std::ptr::null())
        };
        if inner.is_null() {
            return Err(ffi::SQLITE_ERROR);
        }
        // SAFETY: `inner` is a valid VFS (above), copied by value; only
        // its plain fields are read.
        let mut vfs: ffi::sqlite3_vfs = unsafe { std::ptr::read(inner) };
        let inner_size = usize::try_from(vfs.szOsFile).map_err(|_| ffi::SQLITE_ERROR)?;
        vfs.szOsFile = c_int::try_from(HEADER + inner_size).map_err(|_| ffi::SQLITE_ERROR)?;
        vfs.zName = NAME_C.as_ptr();
        vfs.pNext = std::ptr::null_mut();
        vfs.xOpen = Some(open);
        // Every other method is the platform's, called with this VFS:
        // none of them reads anything of it but `pAppData` (kept) and
        // `mxPathname` (the same).
        let vfs = Box::into_raw(Box::new(vfs));
        // SAFETY: `vfs` is a complete VFS object that is never freed.
        let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        Ok(Registered { inner })
    });
    match registered {
        Ok(_) => Ok(()),
        Err(rc) => Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(*rc),
            Some("cannot register the tagwatch-wal VFS".into()),
        )),
    }
}

fn inner_vfs() -> *mut ffi::sqlite3_vfs {
    match REGISTERED.get() {
        Some(Ok(r)) => r.inner,
        _ => std::ptr::null_mut(),
    }
}

/// A WAL file: SQLite's file object (its methods ours), the writes
/// gathered, and the platform's file, which follows this header in the
/// same allocation (`szOsFile` is both).
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    /// Offset in the file of `gathered`'s first byte.
    start: i64,
    gathered: Vec<u8>,
}

/// Bytes before the platform's file: `WalFile` rounded up to 8, as SQLite
/// aligns what it allocates.
const HEADER: usize = std::mem::size_of::<WalFile>().div_ceil(8) * 8;

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 1: a WAL file is never memory-mapped (`xFetch`) nor has a
    // shared-memory index of its own (`xShm*`: the database file's).
    iVersion: 1,
    xClose: Some(wal_close),
    xRead: Some(wal_read),
    xWrite: Some(wal_write),
    xTruncate: Some(wal_truncate),
    xSync: Some(wal_sync),
    xFileSize: Some(wal_file_size),
    xLock: Some(wal_lock),
    xUnlock: Some(wal_unlock),
    xCheckReservedLock: Some(wal_check_reserved_lock),
    xFileControl: Some(wal_file_control),
    xSectorSize: Some(wal_sector_size),
    xDeviceCharacteristics: Some(wal_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// `xOpen`: a WAL file is wrapped; any other file is the platform's, at
/// the start of the allocation (which is larger than it needs).
unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner_vfs = inner_vfs();
    // SAFETY: `inner_vfs` is the registered platform VFS (non-NULL once
    // `register` succeeded, which is how this VFS exists).
    let Some(inner_open) = (unsafe { inner_vfs.as_ref() }).and_then(|v| v.xOpen) else {
        return ffi::SQLITE_ERROR;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // SAFETY: SQLite gave `file` `szOsFile` bytes, more than the
        // platform's `szOsFile`; it sets the file's methods itself.
        return unsafe { inner_open(inner_vfs, name, file, flags, out_flags) };
    }
    // SAFETY: the platform's file goes `HEADER` bytes in, inside the
    // allocation (`szOsFile` = `HEADER` + the platform's), 8-aligned.
    let inner = unsafe { file.cast::<u8>().add(HEADER).cast::<ffi::sqlite3_file>() };
    let rc = unsafe { inner_open(inner_vfs, name, inner, flags, out_flags) };
    if rc != ffi::SQLITE_OK {
        // SQLite calls no method of a file whose open failed and whose
        // methods are NULL. The platform's, if it set them, is closed.
        // SAFETY: `inner` was given to the platform's `xOpen`.
        unsafe {
            if let Some(close) = (*inner).pMethods.as_ref().and_then(|m| m.xClose) {
                close(inner);
            }
            (*file).pMethods = std::ptr::null();
        }
        return rc;
    }
    // SAFETY: `file` points to `HEADER` writable bytes that SQLite gave
    // this VFS (not initialized: written whole, not assigned).
    unsafe {
        std::ptr::write(
            file.cast::<WalFile>(),
            WalFile {
                base: ffi::sqlite3_file {
                    pMethods: &WAL_METHODS,
                },
                inner,
                start: 0,
                gathered: Vec::new(),
            },
        );
    }
    ffi::SQLITE_OK
}

/// The `WalFile` of a file whose methods are [`WAL_METHODS`].
///
/// SAFETY (callers): `file` was opened by [`open`] as a WAL file and not
/// yet closed, and SQLite calls one method of a file at a time.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    unsafe { &mut *file.cast::<WalFile>() }
}

/// The platform file's methods.
fn methods(w: &WalFile) -> &ffi::sqlite3_io_methods {
    // SAFETY: the platform's `xOpen` succeeded, so its methods are set
    // (a static table in SQLite).
    unsafe { &*(*w.inner).pMethods }
}

/// Bytes a write call hands the platform's file at most: its `xWrite`
/// (`unixWrite`) writes an amount modulo 128 KiB (`seekAndWriteFd` masks
/// it with `0x1ffff`, as SQLite itself never writes more than a page), so
/// a larger amount would be cut short; 124 KiB, a whole number of 4 KiB
/// pages.
const MAX_WRITE: usize = 124 << 10;

/// Writes what was gathered (one call a [`MAX_WRITE`] bytes), then forgets
/// it.
fn flush(w: &mut WalFile) -> c_int {
    if w.gathered.is_empty() {
        return ffi::SQLITE_OK;
    }
    let Some(write) = methods(w).xWrite else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let mut offset = w.start;
    let mut rc = ffi::SQLITE_OK;
    for piece in w.gathered.chunks(MAX_WRITE) {
        let (Ok(amount), Ok(len)) = (c_int::try_from(piece.len()), i64::try_from(piece.len()))
        else {
            rc = ffi::SQLITE_IOERR_WRITE;
            break;
        };
        // SAFETY: the platform's `xWrite` reads `amount` bytes of `piece`,
        // which lives through the call.
        rc = unsafe { write(w.inner, piece.as_ptr().cast(), amount, offset) };
        if rc != ffi::SQLITE_OK {
            break;
        }
        offset += len;
    }
    // Gone either way: a failed write fails the call that flushed (a sync:
    // the commit), and SQLite writes the frames again if it retries.
    w.gathered.clear();
    rc
}

/// Flushes, then calls `then` (a platform method) unless the flush failed.
fn flushed(w: &mut WalFile, then: impl FnOnce(&WalFile) -> c_int) -> c_int {
    match flush(w) {
        ffi::SQLITE_OK => then(w),
        rc => rc,
    }
}

unsafe extern "C" fn wal_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file once, after its last other call.
    let w = unsafe { wal(file) };
    let rc = flush(w);
    let closed = match methods(w).xClose {
        // SAFETY: the platform's file, closed once.
        Some(close) => unsafe { close(w.inner) },
        None => ffi::SQLITE_OK,
    };
    // SAFETY: written by `open`, dropped once here; SQLite frees the
    // memory after this returns.
    unsafe { std::ptr::drop_in_place(file.cast::<WalFile>()) };
    if rc == ffi::SQLITE_OK {
        closed
    } else {
        rc
    }
}

unsafe extern "C" fn wal_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see `wal`; `buf` holds `amount` bytes (SQLite's contract).
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xRead {
        Some(read) => unsafe { read(w.inner, buf, amount, offset) },
        None => ffi::SQLITE_IOERR_READ,
    })
}

unsafe extern "C" fn wal_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see `wal`.
    let w = unsafe { wal(file) };
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let follows = i64::try_from(w.gathered.len())
        .ok()
        .and_then(|n| w.start.checked_add(n))
        == Some(offset);
    if !w.gathered.is_empty() && (!follows || w.gathered.len() + len > MAX_GATHERED) {
        let rc = flush(w);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if w.gathered.is_empty() {
        w.start = offset;
    }
    // SAFETY: SQLite's contract: `data` holds `amount` bytes for the call.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    w.gathered.extend_from_slice(bytes);
    ffi::SQLITE_OK
}

unsafe extern "C" fn wal_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: see `wal`.
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xTruncate {
        Some(truncate) => unsafe { truncate(w.inner, size) },
        None => ffi::SQLITE_IOERR_TRUNCATE,
    })
}

unsafe extern "C" fn wal_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: see `wal`.
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xSync {
        Some(sync) => unsafe { sync(w.inner, flags) },
        None => ffi::SQLITE_IOERR_FSYNC,
    })
}

unsafe extern "C" fn wal_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: see `wal`; `size` is writable (SQLite's contract).
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xFileSize {
        Some(file_size) => unsafe { file_size(w.inner, size) },
        None => ffi::SQLITE_IOERR_FSTAT,
    })
}

unsafe extern "C" fn wal_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: see `wal`.
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xLock {
        Some(lock) => unsafe { lock(w.inner, level) },
        None => ffi::SQLITE_OK,
    })
}

unsafe extern "C" fn wal_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: see `wal`.
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xUnlock {
        Some(unlock) => unsafe { unlock(w.inner, level) },
        None => ffi::SQLITE_OK,
    })
}

unsafe extern "C" fn wal_check_reserved_lock(
    file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    // SAFETY: see `wal`; `out` is writable.
    let w = unsafe { wal(file) };
    match methods(w).xCheckReservedLock {
        Some(check) => unsafe { check(w.inner, out) },
        None => {
            unsafe { *out = 0 };
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn wal_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: see `wal`; `arg` is the control's, passed on as it came.
    let w = unsafe { wal(file) };
    flushed(w, |w| match methods(w).xFileControl {
        Some(control) => unsafe { control(w.inner, op, arg) },
        None => ffi::SQLITE_NOTFOUND,
    })
}

unsafe extern "C" fn wal_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see `wal`.
    let w = unsafe { wal(file) };
    match methods(w).xSectorSize {
        Some(sector_size) => unsafe { sector_size(w.inner) },
        None => 4096,
    }
}

unsafe extern "C" fn wal_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: see `wal`.
    let w = unsafe { wal(file) };
    match methods(w).xDeviceCharacteristics {
        Some(characteristics) => unsafe { characteristics(w.inner) },
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tagwatch-wal-vfs-{}-{name}-{}",
            std::process::id(),
            crate::timefmt::now_ms()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        dir.join("t.db")
    }

    fn open(path: &std::path::Path) -> Connection {
        register().expect("register");
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags_and_vfs(path, flags, NAME).expect("open");
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .expect("wal");
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "FULL")
            .expect("sync");
        conn
    }

    /// A transaction larger than the page cache: SQLite writes frames to
    /// the WAL before the commit (gathered here) and reads them back in
    /// the same transaction (after a flush), several times; every row is
    /// there, in the transaction, after it, to another connection through
    /// the platform's VFS, and after the WAL is read again on open.
    #[test]
    fn a_transaction_that_spills_reads_its_own_frames_and_commits_whole() {
        let path = temp_db("spill");
        let conn = open(&path);
        conn.pragma_update(None, "cache_size", 8).expect("cache");
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL, k TEXT UNIQUE)",
        )
        .expect("table");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for i in 0..3000_i64 {
            conn.execute(
                "INSERT INTO t (v, k) VALUES (zeroblob(900 + ?1 % 300), 'k' || ?1)",
                [i],
            )
            .expect("insert");
            if i % 500 == 499 {
                // Reads pages written to the WAL since the last flush.
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM t WHERE k >= 'k'", [], |r| r.get(0))
                    .expect("count");
                assert_eq!(n, i + 1);
            }
        }
        conn.execute_batch("COMMIT").expect("commit");
        let other = Connection::open(&path).expect("plain");
        let (n, bytes): (i64, i64) = other
            .query_row("SELECT count(*), sum(length(v)) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("sum");
        assert_eq!(n, 3000);
        assert_eq!(bytes, (0..3000_i64).map(|i| 900 + i % 300).sum::<i64>());
        let check: String = other
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(check, "ok");
        drop(other);
        // Closed without a checkpoint of its WAL by this connection: the
        // next one reads the frames from the WAL file.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no checkpoint");
        conn.execute("INSERT INTO t (v, k) VALUES (x'01', 'last')", [])
            .expect("insert");
        std::mem::forget(conn);
        let again = open(&path);
        let n: i64 = again
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 3001);
    }

    /// A rolled-back transaction's frames (written before the rollback,
    /// past the cache) are not seen, and the next commit is whole.
    #[test]
    fn a_rolled_back_transaction_leaves_nothing() {
        let path = temp_db("rollback");
        let conn = open(&path);
        conn.pragma_update(None, "cache_size", 8).expect("cache");
        conn.execute_batch("CREATE TABLE t (v BLOB NOT NULL)")
            .expect("table");
        conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for _ in 0..500 {
            conn.execute("INSERT INTO t (v) VALUES (zeroblob(2000))", [])
                .expect("insert");
        }
        conn.execute_batch("ROLLBACK").expect("rollback");
        conn.execute("INSERT INTO t (v) VALUES (x'02')", [])
            .expect("insert");
        let other = Connection::open(&path).expect("plain");
        let n: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 1);
    }
}
