//! Start-up refuses a store it cannot trust: the real binary, given a
//! broken store, exits non-zero with a message that says what to do, and
//! never says it listens. Every command that opens a store refuses it the
//! same way.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::pg::TestDb;
use common::*;

/// The unprivileged user the read-only cases run as when the tests run as
/// root (root writes through any permission bits).
const NOBODY: &str = "65534";

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// `tagwatch ARGS`, as an unprivileged user when `unprivileged` and the
/// tests run as root. A `serve` that says it listens (it trusted the store)
/// is killed at once, so that the test fails instead of waiting.
fn run(args: &[&str], unprivileged: bool) -> Output {
    use std::io::{BufRead, BufReader};
    let mut cmd = if unprivileged && running_as_root() {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            BIN,
        ]);
        c
    } else {
        Command::new(BIN)
    };
    let mut child = cmd
        .args(args)
        .env("TAGWATCH_ADMIN_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let listening = line.contains("listening");
        stderr.extend_from_slice(line.as_bytes());
        stderr.push(b'\n');
        if listening {
            let _ = child.kill();
            break;
        }
    }
    let mut out = child.wait_with_output().unwrap();
    out.stderr = stderr;
    out
}

/// Every command that opens `db` exits non-zero, says `want`, and `serve`
/// never prints `listening`.
fn refused(db: &str, want: &str, unprivileged: bool) {
    let commands: [Vec<&str>; 5] = [
        vec!["serve", "--listen", "127.0.0.1:0", "--db", db],
        vec!["site", "add", "--origin", ORIGIN, "--db", db],
        vec!["site", "list", "--db", db],
        vec!["export", "--site", "tw_x", "--format", "json", "--db", db],
        vec!["purge", "--before", "2020-01-01", "--db", db],
    ];
    for args in commands {
        let out = run(&args, unprivileged);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} succeeded on {db}: {stderr}"
        );
        assert!(
            stderr.contains(want),
            "{args:?} on {db}: expected {want:?} in: {stderr}"
        );
        assert!(
            !stderr.contains("listening"),
            "{args:?} on {db} listened: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
    }
}

/// A directory the unprivileged user may write in (its files too).
fn shared_dir(name: &str) -> TempDir {
    let dir = temp_dir(name);
    set_mode(&dir, 0o777);
    dir
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A store with enough rows to span many pages, checkpointed into the main
/// file (no WAL left), as `tagwatch` leaves it.
fn store_with_rows(path: &Path) {
    site_add(&db_url(path), &[ORIGIN]);
    let conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..3000 {
        tx.execute(
            "INSERT INTO sites (key, created_at) VALUES (?1, '2024-01-01T00:00:00.000Z')",
            [format!("tw_filler_{i:06}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
}

#[test]
fn refuses_an_empty_file() {
    let dir = temp_dir("empty");
    let path = dir.join("tagwatch.db");
    std::fs::write(&path, b"").unwrap();
    refused(
        &db_url(&path),
        "the file is empty, not a tagwatch store; to start a new store, remove the file",
        false,
    );
    // Nothing was written into it.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refuses_a_file_that_is_not_sqlite() {
    let dir = temp_dir("notsqlite");
    let path = dir.join("notes.txt");
    std::fs::write(
        &path,
        "dear diary, today I pointed --db at the wrong file\n",
    )
    .unwrap();
    refused(&db_url(&path), "not a SQLite database", false);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refuses_a_sqlite_database_of_another_program() {
    let dir = temp_dir("other");
    let path = dir.join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    drop(conn);
    refused(&db_url(&path), "not a tagwatch store", false);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refuses_a_store_corrupted_in_the_middle() {
    let dir = temp_dir("corrupt");
    let path = dir.join("tagwatch.db");
    store_with_rows(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    let page = 4096u64;
    let middle = (len / page / 2) * page;
    assert!(
        middle > page,
        "the store is too small to corrupt: {len} bytes"
    );
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(middle)).unwrap();
        f.write_all(&[0xa5; 4096]).unwrap();
    }
    refused(&db_url(&path), "the database is corrupt", false);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn skip_integrity_check_is_accepted_where_a_store_is_opened() {
    let dir = temp_dir("skip");
    let db = db_url(&dir.join("tagwatch.db"));
    site_add(&db, &[ORIGIN]);
    let out = run(
        &["site", "list", "--db", &db, "--skip-integrity-check"],
        false,
    );
    assert!(out.status.success(), "{out:?}");
    let mut server = Server::start(&db, &["--skip-integrity-check"]);
    assert!(server.terminate().success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refuses_a_newer_schema() {
    let dir = temp_dir("newer");
    let path = dir.join("tagwatch.db");
    site_add(&db_url(&path), &[ORIGIN]);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    refused(
        &db_url(&path),
        "the database has schema version 99, this tagwatch understands up to",
        false,
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refuses_a_read_only_file_in_a_writable_directory() {
    let dir = shared_dir("rofile");
    let path = dir.join("tagwatch.db");
    site_add(&db_url(&path), &[ORIGIN]);
    set_mode(&path, 0o444);
    refused(&db_url(&path), "cannot write here", true);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refuses_a_read_only_directory_for_a_new_store() {
    let dir = shared_dir("rodir");
    let inner = dir.join("ro");
    std::fs::create_dir(&inner).unwrap();
    set_mode(&inner, 0o555);
    let path = inner.join("tagwatch.db");
    refused(&db_url(&path), "cannot write here", true);
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn refuses_a_read_only_directory_for_the_wal() {
    let dir = shared_dir("rowal");
    let inner = dir.join("ro");
    std::fs::create_dir(&inner).unwrap();
    let path = inner.join("tagwatch.db");
    site_add(&db_url(&path), &[ORIGIN]);
    // The file is writable; its directory, where -wal and -shm go, is not.
    set_mode(&path, 0o666);
    set_mode(&inner, 0o555);
    refused(&db_url(&path), "cannot write here", true);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgres_refuses_a_read_only_database() {
    let Some(db) = TestDb::create("readonly") else {
        return;
    };
    // Migrated first, as a store that a later change made read-only.
    site_add(&db.url, &[ORIGIN]);
    let mut admin = db.client();
    let name: String = admin
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} SET default_transaction_read_only = on"
        ))
        .unwrap();
    drop(admin);
    refused(&db.url, "the PostgreSQL session is read-only", false);
}
