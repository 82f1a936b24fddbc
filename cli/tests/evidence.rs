//! Evidence end to end with the real binary, on SQLite and PostgreSQL:
//! `keys init` / `keys show`, findings stored by a running collector,
//! `tagwatch evidence` → `tagwatch verify` passes; a flipped byte, an
//! edited file, another key, hostile zips are each refused with a message
//! that names what is wrong; an edited finding row fails `verify --db`;
//! a signed `purge` keeps the chain verifying; with ClickHouse
//! (`--events`) no chain is claimed. PostgreSQL needs
//! `TAGWATCH_TEST_POSTGRES`, ClickHouse `TAGWATCH_TEST_CLICKHOUSE` (else
//! skipped, see common/pg.rs).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use common::pg::TestDb;
use common::*;

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `tagwatch verify ARGS`; answers (passed, stdout + stderr).
fn verify(args: &[&str]) -> (bool, String) {
    let out = run(&[&["verify"], args].concat());
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    match out.status.code() {
        Some(0) => (true, all),
        Some(1) => (false, all),
        other => panic!("verify exited {other:?}: {all}"),
    }
}

/// Two findings (one old), stored by a running collector.
fn store_findings(db: &str) -> String {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, &[]);
    let old = 2 * 3600 * 1000;
    let body = batch(&[
        finding(
            &key,
            "00000000000000aa",
            "cookie_before_consent",
            "intercom",
            old,
            1,
        ),
        finding(
            &key,
            "00000000000000bb",
            "script_before_consent",
            "intercom",
            0,
            1,
        ),
    ]);
    let resp = server.post(Some(ORIGIN), &body);
    assert_eq!(resp.status, 204, "{}", resp.body);
    key
}

/// The id of the site's finding of `kind` (the store's own id).
fn finding_id(db: &str, site: &str, kind: &str) -> i64 {
    query_i64(
        db,
        &format!("SELECT id FROM findings WHERE site = '{site}' AND type = '{kind}'"),
    )
}

fn query_i64(db: &str, sql: &str) -> i64 {
    match db.strip_prefix("sqlite:") {
        Some(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            c.query_row(sql, [], |r| r.get(0)).unwrap()
        }
        None => {
            let mut c = postgres::Client::connect(db, postgres::NoTls).unwrap();
            c.query_one(sql, &[]).unwrap().get(0)
        }
    }
}

fn execute(db: &str, sql: &str) {
    match db.strip_prefix("sqlite:") {
        Some(path) => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap(),
        None => postgres::Client::connect(db, postgres::NoTls)
            .unwrap()
            .batch_execute(sql)
            .unwrap(),
    }
}

fn evidence_round_trip(db: &str, dir: &Path) {
    let keys = dir.join("keys");
    let keys_s = keys.to_str().unwrap();
    let out = run(&["keys", "init", "--dir", keys_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout).trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    let secret = keys.join("tagwatch-signing.key");
    let secret_text = std::fs::read_to_string(&secret).unwrap();
    // The secret is never printed.
    let seed = secret_text.lines().nth(1).unwrap();
    assert!(!text(&out.stdout).contains(seed) && !text(&out.stderr).contains(seed));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let show = run(&["keys", "show", "--dir", keys_s]);
    assert_eq!(text(&show.stdout).trim(), public);
    // Never replaced.
    let again = run(&["keys", "init", "--dir", keys_s]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("never replaces a signing key"),
        "{}",
        text(&again.stderr)
    );

    let site = store_findings(db);
    let id = finding_id(db, &site, "script_before_consent");
    let bundle = dir.join("bundle.zip");
    let bundle_s = bundle.to_str().unwrap();
    let out = run(&[
        "evidence",
        "--db",
        db,
        "--site",
        &site,
        "--finding",
        &id.to_string(),
        "--out",
        bundle_s,
        "--signing-key",
        secret.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1 findings of site"),
        "{}",
        text(&out.stderr)
    );
    let (ok, said) = verify(&[bundle_s, "--key", &public]);
    assert!(ok, "{said}");
    assert!(said.contains("verified"), "{said}");
    // Without --key: checked against the key it names, and said so.
    let (ok, said) = verify(&[bundle_s]);
    assert!(ok && said.contains(&public), "{said}");
    // Another key.
    let other = dir.join("other");
    let out = run(&["keys", "init", "--dir", other.to_str().unwrap()]);
    let other_public = text(&out.stdout).trim().to_owned();
    let (ok, said) = verify(&[bundle_s, "--key", &other_public]);
    assert!(
        !ok && said.contains("manifest.sig: the manifest was not signed by key"),
        "{said}"
    );

    // One byte flipped anywhere in the zip: refused, saying where.
    let bytes = std::fs::read(&bundle).unwrap();
    for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 30] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x01;
        let path = dir.join(format!("flipped-{at}.zip"));
        std::fs::write(&path, &flipped).unwrap();
        let (ok, said) = verify(&[path.to_str().unwrap(), "--key", &public]);
        assert!(!ok, "byte {at} flipped and still verified: {said}");
        assert!(said.contains("FAILED: "), "{said}");
    }

    // A finding edited inside the bundle (re-zipped, manifest untouched).
    let edited = rezip(&bundle, dir, "edited.zip", |name, data| {
        if name == "findings.json" {
            text(data)
                .replace("\"count\": 1", "\"count\": 2")
                .into_bytes()
        } else {
            data.to_vec()
        }
    });
    let (ok, said) = verify(&[edited.to_str().unwrap(), "--key", &public]);
    assert!(!ok, "{said}");
    assert!(said.contains("file findings.json was changed"), "{said}");
    assert!(
        said.contains(&format!("finding {id} of site {site} was edited")),
        "{said}"
    );

    // The live database verifies; one edited finding row does not.
    let (ok, said) = verify(&["--db", db, "--site", &site]);
    assert!(ok, "{said}");
    execute(
        db,
        &format!("UPDATE findings SET vendor = 'hotjar' WHERE id = {id}"),
    );
    let (ok, said) = verify(&["--db", db, "--site", &site]);
    assert!(!ok, "{said}");
    assert!(
        said.contains(&format!(
            "finding {id} of site {site} was edited after it was stored"
        )),
        "{said}"
    );
    execute(
        db,
        &format!("UPDATE findings SET vendor = 'intercom' WHERE id = {id}"),
    );
    let (ok, said) = verify(&["--db", db, "--site", &site, "--key", &public]);
    assert!(ok, "{said}");

    // A signed purge: the old finding goes, the chain still verifies.
    let cutoff = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let cutoff = cutoff
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let out = run(&[
        "purge",
        "--before",
        &cutoff,
        "--db",
        db,
        "--signing-key",
        secret.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("tagwatch: purge: findings 1"),
        "{}",
        text(&out.stderr)
    );
    let (ok, said) = verify(&["--db", db, "--site", &site, "--key", &public]);
    assert!(ok, "{said}");
    // A row deleted behind the collector's back.
    execute(db, &format!("DELETE FROM findings WHERE id = {id}"));
    let (ok, said) = verify(&["--db", db, "--site", &site, "--key", &public]);
    assert!(
        !ok && said.contains(&format!("finding {id} of site {site}"))
            && said.contains("was deleted"),
        "{said}"
    );

    // Without a key, evidence says how to get one.
    let out = Command::new(BIN)
        .args([
            "evidence",
            "--db",
            db,
            "--site",
            &site,
            "--out",
            dir.join("x.zip").to_str().unwrap(),
        ])
        .env_remove("TAGWATCH_SIGNING_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("tagwatch keys init"),
        "{}",
        text(&out.stderr)
    );
}

/// A copy of a zip with each file passed through `f`.
fn rezip(
    from: &Path,
    dir: &Path,
    name: &str,
    f: impl Fn(&str, &[u8]) -> Vec<u8>,
) -> std::path::PathBuf {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let path = dir.join(name);
    let mut zout = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..zin.len() {
        let mut e = zin.by_index(i).unwrap();
        let n = e.name().to_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        zout.start_file(n.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        zout.write_all(&f(&n, &data)).unwrap();
    }
    zout.finish().unwrap();
    path
}

#[test]
fn evidence_bundles_verify_and_tampering_is_named_on_sqlite() {
    let dir = temp_dir("evidence");
    evidence_round_trip(&db_url(&dir.join("tagwatch.db")), &dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn evidence_bundles_verify_and_tampering_is_named_on_postgres() {
    let Some(db) = TestDb::create("evidence") else {
        return;
    };
    let dir = temp_dir("evidence-pg");
    evidence_round_trip(&db.url, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// With the reports in ClickHouse (`--events`) nothing is chained, and no
/// command says otherwise: `verify --db` alone (the SQL store holds none of
/// the site's findings) says that nothing is proven; `verify` and
/// `evidence` given `--events` refuse, saying why.
#[test]
fn an_events_store_claims_no_chain() {
    let Some(events) = tagwatch_events::testing::TestEvents::create("evidence") else {
        return;
    };
    let dir = temp_dir("evidence-ch");
    let db = db_url(&dir.join("tagwatch.db"));
    let key = site_add(&db, &[ORIGIN]);
    let server = Server::start(&db, &["--events", &events.url]);
    let body = batch(&[finding(
        &key,
        "00000000000000aa",
        "cookie_before_consent",
        "intercom",
        0,
        1,
    )]);
    assert_eq!(server.post(Some(ORIGIN), &body).status, 204);
    drop(server);
    let (ok, said) = verify(&["--db", &db, "--site", &key]);
    assert!(ok, "{said}");
    assert!(said.contains("nothing is proven"), "{said}");
    let out = run(&[
        "verify",
        "--db",
        &db,
        "--events",
        &events.url,
        "--site",
        &key,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("keeps no chain"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("verified"));
    let keys = dir.join("keys");
    assert!(run(&["keys", "init", "--dir", keys.to_str().unwrap()])
        .status
        .success());
    let bundle = dir.join("b.zip");
    let out = run(&[
        "evidence",
        "--site",
        &key,
        "--db",
        &db,
        "--events",
        &events.url,
        "--signing-key",
        keys.join("tagwatch-signing.key").to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("keeps no chain"),
        "{}",
        text(&out.stderr)
    );
    assert!(!bundle.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// Hostile zips: refused with a message, never a panic or a write.
#[test]
fn hostile_bundles_are_refused_with_a_clear_error() {
    let dir = temp_dir("evidence-hostile");
    let write = |name: &str, files: &[(&str, Vec<u8>)], method: zip::CompressionMethod| {
        let path = dir.join(name);
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let o = zip::write::SimpleFileOptions::default().compression_method(method);
        for (n, data) in files {
            z.start_file(*n, o).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
        path
    };
    let cases = [
        (
            write(
                "traversal.zip",
                &[("../../etc/passwd", b"x".to_vec())],
                zip::CompressionMethod::Stored,
            ),
            "file \"../../etc/passwd\" is not part of a bundle",
        ),
        (
            // 600 MB of zeros in a few hundred KB: read up to the limit, refused.
            write(
                "bomb.zip",
                &[("findings.json", vec![0u8; 600 * 1024 * 1024])],
                zip::CompressionMethod::Deflated,
            ),
            "file findings.json is larger than",
        ),
        (
            write(
                "manifest.zip",
                &[
                    ("manifest.json", vec![b' '; 1024 * 1024]),
                    ("manifest.sig", b"00".to_vec()),
                ],
                zip::CompressionMethod::Deflated,
            ),
            "file manifest.json is larger than",
        ),
        (
            write("empty.zip", &[], zip::CompressionMethod::Stored),
            "the bundle has no manifest.json",
        ),
    ];
    for (path, want) in cases {
        let (ok, said) = verify(&[path.to_str().unwrap()]);
        assert!(!ok, "{said}");
        assert!(said.contains(want), "{}: {said}", path.display());
    }
    std::fs::write(dir.join("not.zip"), b"hello").unwrap();
    let (ok, said) = verify(&[dir.join("not.zip").to_str().unwrap()]);
    assert!(!ok && said.contains("not a readable zip file"), "{said}");
    assert!(!Path::new("/etc/passwd-tagwatch").exists());
    let _ = std::fs::remove_dir_all(dir);
}
