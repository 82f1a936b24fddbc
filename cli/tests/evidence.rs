//! Evidence end to end with the real binary, on SQLite and PostgreSQL:
//! `keys init` / `keys show`, findings stored by a running collector,
//! `tagwatch evidence` → `tagwatch verify` passes; a flipped byte, an
//! edited file, another key, hostile zips are each refused with a message
//! that names what is wrong; an edited finding row fails `verify --db`;
//! a signed `purge` keeps the chain verifying; an edited, deleted or
//! added health report or inventory row (child rows included) fails
//! `verify --db` and a bundle made from it; with ClickHouse
//! (`--events`) findings, health reports and inventories the same, row
//! version by row version, and rows no entry covers are not proven. PostgreSQL needs
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
        &format!("SELECT id FROM findings WHERE site_id = (SELECT id FROM names WHERE name = '{site}') AND type = '{kind}'"),
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

    // One byte flipped in the middle of a file's stored data: refused,
    // saying where. (The zip's own framing, e.g. a local header's copy of
    // the CRC, is not evidence: docs/evidence.md.)
    let bytes = std::fs::read(&bundle).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let middles: Vec<usize> = (0..zip.len())
        .filter_map(|i| {
            let f = zip.by_index_raw(i).unwrap();
            let start = usize::try_from(f.data_start()).unwrap();
            [
                "findings.json",
                "chain.json",
                "page_views.json",
                "report.html",
            ]
            .contains(&f.name())
            .then(|| start + usize::try_from(f.compressed_size()).unwrap() / 2)
        })
        .collect();
    assert_eq!(middles.len(), 4);
    for at in middles {
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
    let out = signed_purge(db, &secret, time::Duration::hours(-1), &[]);
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
/// Runs `tagwatch purge --before (now + from_now) --db DB --signing-key
/// SECRET EXTRA…`.
fn signed_purge(db: &str, secret: &Path, from_now: time::Duration, extra: &[&str]) -> Output {
    let before = (time::OffsetDateTime::now_utc() + from_now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let args = [
        &[
            "purge",
            "--before",
            before.as_str(),
            "--db",
            db,
            "--signing-key",
            secret.to_str().unwrap(),
        ][..],
        extra,
    ]
    .concat();
    run(&args)
}

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

/// A finding with its page view's inventory and health report, stored by
/// a running collector an hour ago and more (a purge at now − 1 h removes
/// them all). Answers (site, finding id).
fn store_page_view(db: &str) -> (String, i64) {
    let key = post_page_view(db, &[], 2 * 3600 * 1000);
    let id = finding_id(db, &key, "script_before_consent");
    (key, id)
}

/// What [`store_page_view`] stores, through `serve SERVE…`, observed
/// `old` ms before now; answers the site.
fn post_page_view(db: &str, serve: &[&str], old: i64) -> String {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, serve);
    let pv = "00000000000000cc";
    let mut health = health_report(&key, old);
    health["body"]["page_view"] = pv.into();
    let body = batch(&[
        finding(&key, pv, "script_before_consent", "intercom", old, 1),
        inventory(
            &key,
            pv,
            old,
            serde_json::json!([intercom_usage(
                3,
                1,
                4000,
                &["widget.intercom.io"],
                &["intercom-id-x"]
            )]),
            serde_json::json!([{"host": "cdn.unknown.example", "requests": 2, "script_requests": 1,
                "transfer_bytes": 10, "encoded_bytes": 5, "duration_ms": 3}]),
        ),
        health,
    ]);
    let resp = server.post(Some(ORIGIN), &body);
    assert_eq!(resp.status, 204, "{}", resp.body);
    key
}

/// Makes a bundle of finding `id`; answers its path.
fn bundle_of(db: &str, site: &str, id: i64, secret: &Path, out: &Path) -> String {
    let out_s = out.to_str().unwrap().to_owned();
    let made = run(&[
        "evidence",
        "--db",
        db,
        "--site",
        site,
        "--finding",
        &id.to_string(),
        "--out",
        &out_s,
        "--signing-key",
        secret.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    out_s
}

fn page_view_round_trip(db: &str, dir: &Path) {
    let keys = dir.join("keys");
    let out = run(&["keys", "init", "--dir", keys.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout).trim().to_owned();
    let secret = keys.join("tagwatch-signing.key");
    let (site, id) = store_page_view(db);
    let inv = query_i64(
        db,
        &format!("SELECT id FROM inventories WHERE site_id = (SELECT id FROM names WHERE name = '{site}')"),
    );
    let health = query_i64(
        db,
        &format!(
            "SELECT id FROM health WHERE site_id = (SELECT id FROM names WHERE name = '{site}')"
        ),
    );
    let (ok, said) = verify(&["--db", db, "--site", &site]);
    assert!(ok, "{said}");

    // The bundle proves the page view's inventory and health report.
    let bundle = bundle_of(db, &site, id, &secret, &dir.join("pv.zip"));
    let (ok, said) = verify(&[&bundle, "--key", &public]);
    assert!(ok, "{said}");
    assert!(
        said.contains("1 inventories and 1 health reports of the findings' page views, checked against the chain"),
        "{said}"
    );

    // Each edit behind the collector's back, named by `verify --db` and by a
    // bundle made after it; then undone.
    let inv_edited = format!("inventory {inv} of site {site} was edited after it was stored");
    let health_edited =
        format!("health report {health} of site {site} was edited after it was stored");
    let edits: [(String, String, &String); 5] = [
        (
            format!("UPDATE inventory_vendors SET requests = requests + 1 WHERE inventory = {inv}"),
            format!("UPDATE inventory_vendors SET requests = requests - 1 WHERE inventory = {inv}"),
            &inv_edited,
        ),
        (
            format!("UPDATE inventories SET page = page || '#' WHERE id = {inv}"),
            format!(
                "UPDATE inventories SET page = substr(page, 1, length(page) - 1) WHERE id = {inv}"
            ),
            &inv_edited,
        ),
        (
            format!("INSERT INTO inventory_hosts VALUES ({inv}, 'extra.example', 1, 0, 1, 1, 1)"),
            "DELETE FROM inventory_hosts WHERE host = 'extra.example'".to_owned(),
            &inv_edited,
        ),
        (
            format!("UPDATE health SET status = 'ok' WHERE id = {health}"),
            format!("UPDATE health SET status = 'wasm_unavailable' WHERE id = {health}"),
            &health_edited,
        ),
        (
            format!("DELETE FROM inventory_hosts WHERE inventory = {inv}"),
            String::new(),
            &inv_edited,
        ),
    ];
    for (n, (edit, undo, named)) in edits.iter().enumerate() {
        execute(db, edit);
        let (ok, said) = verify(&["--db", db, "--site", &site]);
        assert!(!ok && said.contains(named.as_str()), "{edit}: {said}");
        let bundle = bundle_of(db, &site, id, &secret, &dir.join(format!("edited-{n}.zip")));
        let (ok, said) = verify(&[&bundle, "--key", &public]);
        assert!(
            !ok && said.contains(&format!("page_views.json: {named}")),
            "{edit}: {said}"
        );
        if undo.is_empty() {
            break; // Not undone: the last edit of the list.
        }
        execute(db, undo);
        let (ok, said) = verify(&["--db", db, "--site", &site]);
        assert!(ok, "{undo}: {said}");
    }
}

/// Health reports and inventories: chained, purged behind a signed
/// checkpoint, and tampering named.
fn purge_and_delete(db: &str, dir: &Path) {
    let keys = dir.join("keys2");
    let out = run(&["keys", "init", "--dir", keys.to_str().unwrap()]);
    let public = text(&out.stdout).trim().to_owned();
    let secret = keys.join("tagwatch-signing.key");
    let (site, _) = store_page_view(db);
    let health = query_i64(
        db,
        &format!(
            "SELECT id FROM health WHERE site_id = (SELECT id FROM names WHERE name = '{site}')"
        ),
    );
    // A row the collector never stored.
    execute(
        db,
        &format!(
            "INSERT INTO health (site_id, page, status, at, received_at, user_agent, raw)
             VALUES ((SELECT id FROM names WHERE name = '{site}'), 'https://shop.example/', 'ok', '2026-01-01T00:00:00.000Z',
                     '2026-01-01T00:00:00.000Z', 'ua', '{{}}')"
        ),
    );
    let extra = query_i64(
        db,
        &format!("SELECT max(id) FROM health WHERE site_id = (SELECT id FROM names WHERE name = '{site}')"),
    );
    let (ok, said) = verify(&["--db", db, "--site", &site]);
    assert!(
        !ok && said.contains(&format!(
            "health report {extra} of site {site} is not in the chain: it was inserted without the collector"
        )),
        "{said}"
    );
    execute(db, &format!("DELETE FROM health WHERE id = {extra}"));
    // Deleted behind the collector's back.
    execute(db, &format!("DELETE FROM health WHERE id = {health}"));
    let (ok, said) = verify(&["--db", db, "--site", &site]);
    assert!(
        !ok && said.contains(&format!("health report {health} of site {site} (seq "))
            && said.contains("was deleted: no purge records its removal"),
        "{said}"
    );
    // Another row put in its place.
    let replace = format!(
        "INSERT INTO health (id, site_id, page_view, page, status, reason, at, received_at, user_agent, raw)
         VALUES ({health}, (SELECT id FROM names WHERE name = '{site}'), NULL, 'https://shop.example/', 'ok', NULL, '2026-01-01T00:00:00.000Z',
                 '2026-01-01T00:00:00.000Z', 'ua', '{{}}')"
    );
    execute(db, &replace);
    let (ok, said) = verify(&["--db", db, "--site", &site]);
    assert!(
        !ok && said.contains(&format!("health report {health} of site {site} was edited")),
        "{said}"
    );
    execute(db, &format!("DELETE FROM health WHERE id = {health}"));
    // A signed purge removes the rest.
    let out = signed_purge(db, &secret, time::Duration::hours(-1), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The health row deleted by hand before the purge is still named; the
    // inventory and finding the purge removed are explained by its
    // signed checkpoint.
    let (ok, said) = verify(&["--db", db, "--site", &site, "--key", &public]);
    assert!(!ok, "{said}");
    let failed: Vec<&str> = said.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{said}");
    assert!(
        failed[0].contains(&format!("health report {health} of site {site}")),
        "{said}"
    );
    assert_eq!(
        query_i64(
            db,
            &format!("SELECT count(*) FROM inventories WHERE site_id = (SELECT id FROM names WHERE name = '{site}')")
        ),
        0
    );
    assert_eq!(
        query_i64(
            db,
            &format!("SELECT inventories FROM chain_checkpoints WHERE site = '{site}'")
        ),
        1
    );
}

#[test]
fn health_reports_and_inventories_are_chained_on_sqlite() {
    let dir = temp_dir("evidence-pv");
    page_view_round_trip(&db_url(&dir.join("tagwatch.db")), &dir);
    purge_and_delete(&db_url(&dir.join("tagwatch.db")), &dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn health_reports_and_inventories_are_chained_on_postgres() {
    let Some(db) = TestDb::create("evidence_pv") else {
        return;
    };
    let dir = temp_dir("evidence-pv-pg");
    page_view_round_trip(&db.url, &dir);
    purge_and_delete(&db.url, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `tagwatch verify ARGS`; answers its exit code and stdout +
/// stderr (0 verified, 1 a problem, 3 not proven, 2 a usage error).
fn verify_code(args: &[&str]) -> (i32, String) {
    let out = run(&[&["verify"], args].concat());
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out.status.code().unwrap_or(-1), all)
}

/// Waits until ClickHouse has run every mutation of the test's database
/// (`ALTER … UPDATE/DELETE` run in the background; 18.16 cannot wait).
fn mutations_done(events: &tagwatch_events::testing::TestEvents) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while events.value(
        "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0",
    ) != "0"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "ClickHouse did not finish a mutation"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The findings columns as the collector inserts them, for tests that
/// insert rows themselves.
const CH_COLUMNS: &str = "site, page_view, page, type, vendor, category, evidence_kind, evidence, \
    consent_source, consent, count, at, received_at, user_agent, raw, token, day, release";

/// A report's `age` that puts it in last week, whatever the day: the
/// oldest a report may carry, 7 days (a ClickHouse purge drops only weeks
/// that are over).
const LAST_WEEK: i64 = 7 * 24 * 3600 * 1000;

/// Findings stored through `serve --events` (control plane `db`): page
/// view aa's cookie finding twice (resent: two row versions) and page
/// view bb's script finding.
fn store_events_findings(db: &str, events: &str) -> String {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, &["--events", events]);
    for body in [
        batch(&[
            finding(
                &key,
                "00000000000000aa",
                "cookie_before_consent",
                "intercom",
                LAST_WEEK,
                1,
            ),
            finding(
                &key,
                "00000000000000bb",
                "script_before_consent",
                "intercom",
                LAST_WEEK,
                1,
            ),
        ]),
        batch(&[finding(
            &key,
            "00000000000000aa",
            "cookie_before_consent",
            "intercom",
            LAST_WEEK,
            2,
        )]),
    ] {
        let resp = server.post(Some(ORIGIN), &body);
        assert_eq!(resp.status, 204, "{}", resp.body);
    }
    key
}

/// With the reports in ClickHouse (`--events`), every finding row version
/// the collector inserts is chained in the control plane: `verify --db
/// --events` checks ClickHouse's rows against it and names each change
/// (edited by `ALTER UPDATE` or by a row inserted again under its key,
/// deleted, an extra row: not proven); `evidence --events` writes a
/// bundle that verifies offline; a signed purge keeps the chain
/// verifying; a report of a week it dropped, arriving after it, is stored
/// but not chained (not proven). (Before, `verify` and `evidence`
/// refused: no chain.)
fn events_round_trip(db: &str, events: &tagwatch_events::testing::TestEvents, dir: &Path) {
    let keys = dir.join("keys");
    let out = run(&["keys", "init", "--dir", keys.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout).trim().to_owned();
    let secret = keys.join("tagwatch-signing.key");
    let site = store_events_findings(db, &events.url);
    assert_eq!(events.value("SELECT count() FROM findings"), "3");
    let check = |args: &[&str]| {
        verify_code(
            &[
                &["--db", db, "--events", &events.url, "--site", &site],
                args,
            ]
            .concat(),
        )
    };
    let (code, said) = check(&[]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("verified")
            && said.contains("3 finding, 0 health and 0 inventory row versions"),
        "{said}"
    );
    // Without --events the chain's rows are not at hand: refused, saying so.
    let (code, said) = verify_code(&["--db", db, "--site", &site]);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("give --events URL"), "{said}");

    // A bundle of the site's findings verifies offline; a flipped byte fails.
    let bundle = dir.join("events.zip");
    let bundle_s = bundle.to_str().unwrap();
    let out = run(&[
        "evidence",
        "--db",
        db,
        "--events",
        &events.url,
        "--site",
        &site,
        "--out",
        bundle_s,
        "--signing-key",
        secret.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("3 findings of site"),
        "{}",
        text(&out.stderr)
    );
    let (ok, said) = verify(&[bundle_s, "--key", &public]);
    assert!(ok && said.contains("verified"), "{said}");
    let bytes = std::fs::read(&bundle).unwrap();
    for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 30] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x01;
        let path = dir.join(format!("events-flipped-{at}.zip"));
        std::fs::write(&path, &flipped).unwrap();
        let (ok, said) = verify(&[path.to_str().unwrap(), "--key", &public]);
        assert!(!ok && said.contains("FAILED: "), "byte {at}: {said}");
    }
    // One row version by its row key (findings.json's id).
    let findings: Vec<serde_json::Value> = {
        let mut z = zip::ZipArchive::new(std::fs::File::open(&bundle).unwrap()).unwrap();
        let mut data = String::new();
        std::io::Read::read_to_string(&mut z.by_name("findings.json").unwrap(), &mut data).unwrap();
        serde_json::from_str(&data).unwrap()
    };
    let bb = findings
        .iter()
        .find(|f| f["page_view"] == "00000000000000bb")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let one = dir.join("one.zip");
    let out = run(&[
        "evidence",
        "--db",
        db,
        "--events",
        &events.url,
        "--site",
        &site,
        "--finding",
        &bb.to_string(),
        "--out",
        one.to_str().unwrap(),
        "--signing-key",
        secret.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (ok, said) = verify(&[one.to_str().unwrap(), "--key", &public]);
    assert!(ok && said.contains("1 findings"), "{said}");

    // Edited in place (ALTER UPDATE): named, with its row; undone: verified.
    events.run("ALTER TABLE findings UPDATE count = 99 WHERE page_view = '00000000000000bb'");
    mutations_done(events);
    let (code, said) = check(&[]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(&format!("FAILED: finding row {bb} (token"))
            && said.contains("page view 00000000000000bb")
            && said.contains("was edited after it was stored"),
        "{said}"
    );
    events.run("ALTER TABLE findings UPDATE count = 1 WHERE page_view = '00000000000000bb'");
    mutations_done(events);
    assert_eq!(check(&[]).0, 0);

    // Edited by a row inserted again under its key (ReplacingMergeTree
    // keeps the last one after a merge).
    events.run(&format!(
        "INSERT INTO findings ({CH_COLUMNS}) SELECT site, page_view, page, type, vendor, category, \
         evidence_kind, evidence, consent_source, '{{}}', count, at, received_at, user_agent, raw, \
         token, day, release FROM findings WHERE page_view = '00000000000000bb'"
    ));
    let (code, said) = check(&[]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(&format!("finding row {bb} (token")) && said.contains("was edited"),
        "{said}"
    );
    events.run("ALTER TABLE findings DELETE WHERE consent = '{}'");
    mutations_done(events);
    assert_eq!(check(&[]).0, 0);

    // An extra row (a token no entry names): not proven, not tampered.
    events.run(&format!(
        "INSERT INTO findings ({CH_COLUMNS}) SELECT site, page_view, page, type, vendor, category, \
         evidence_kind, evidence, consent_source, consent, count, at, received_at, user_agent, raw, \
         token + 1, day, release FROM findings WHERE page_view = '00000000000000bb'"
    ));
    let (code, said) = check(&[]);
    assert_eq!(code, 3, "{said}");
    assert!(
        said.contains("NOT PROVEN: finding row")
            && said.contains("is in no entry of the chain")
            && said.contains("\nnot proven\n")
            && !said.contains("FAILED")
            && !said.contains("verified"),
        "{said}"
    );
    // A bundle leaves it out, and says so.
    let out = run(&[
        "evidence",
        "--db",
        db,
        "--events",
        &events.url,
        "--site",
        &site,
        "--out",
        dir.join("three.zip").to_str().unwrap(),
        "--signing-key",
        secret.to_str().unwrap(),
    ]);
    assert!(
        out.status.success() && text(&out.stderr).contains("1 finding row of the window left out"),
        "{}",
        text(&out.stderr)
    );

    // A chained row version deleted behind the collector's back: named.
    events.run("ALTER TABLE findings DELETE WHERE page_view = '00000000000000aa' AND count = 2");
    mutations_done(events);
    let (code, said) = check(&["--key", &public]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("was deleted: no purge records its removal"),
        "{said}"
    );

    // A signed purge of every week that is over (a `before` a week ahead:
    // the current week stays until it is over), all the site's rows being
    // last week's: a removal entry per row version there (the extra one
    // too) and a checkpoint. The deleted one is accounted for by it (it
    // would have gone with the week), said in a note
    // (docs/evidence.md#verify-during-a-purge-and-late-reports).
    let out = signed_purge(
        db,
        &secret,
        time::Duration::days(8),
        &["--events", &events.url],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(events.value("SELECT count() FROM findings"), "0");
    assert_eq!(
        query_i64(db, &format!("SELECT count(*) FROM chain_checkpoints WHERE site = '{site}' AND findings = 3 AND signature IS NOT NULL")),
        1
    );
    let (code, said) = check(&["--key", &public]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("verified")
            && said.contains("1 chained row version of weeks a purge dropped went with it without a removal entry"),
        "{said}"
    );

    // After it: a report of last week arrives late: stored, not chained
    // (its week was purged): not proven. A new row of this week is
    // chained; deleted behind the collector's back, it is named.
    let server = Server::start(db, &["--events", &events.url]);
    let late = batch(&[finding(
        &site,
        "00000000000000dd",
        "cookie_before_consent",
        "intercom",
        LAST_WEEK,
        1,
    )]);
    assert_eq!(server.post(Some(ORIGIN), &late).status, 204);
    let body = batch(&[finding(
        &site,
        "00000000000000cc",
        "cookie_before_consent",
        "intercom",
        0,
        1,
    )]);
    assert_eq!(server.post(Some(ORIGIN), &body).status, 204);
    drop(server);
    let (code, said) = check(&["--key", &public]);
    assert_eq!(code, 3, "{said}");
    assert!(
        said.contains("NOT PROVEN: finding row") && said.contains("00000000000000dd"),
        "{said}"
    );
    events.run("ALTER TABLE findings DELETE WHERE page_view = '00000000000000dd'");
    mutations_done(events);
    assert_eq!(check(&["--key", &public]).0, 0);
    events.run("ALTER TABLE findings DELETE WHERE page_view = '00000000000000cc'");
    mutations_done(events);
    let (code, said) = check(&["--key", &public]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("FAILED: finding row")
            && said.contains("was deleted: no purge records its removal"),
        "{said}"
    );
}

#[test]
fn events_rows_are_chained_and_tampering_is_named_on_sqlite() {
    let Some(events) = tagwatch_events::testing::TestEvents::create("evidence") else {
        return;
    };
    let dir = temp_dir("evidence-ch");
    events_round_trip(&db_url(&dir.join("tagwatch.db")), &events, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn events_rows_are_chained_and_tampering_is_named_on_postgres() {
    let Some(events) = tagwatch_events::testing::TestEvents::create("evidence_pg") else {
        return;
    };
    let Some(db) = TestDb::create("evidence_ch") else {
        return;
    };
    let dir = temp_dir("evidence-ch-pg");
    events_round_trip(&db.url, &events, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// With `--events`, the page view's health report and inventory (its
/// vendor and host arrays) are chained too: `verify --db --events` names
/// an edited health row and an edited vendor number, a deleted health
/// row, and an extra row as not proven; a bundle carries them with the
/// chain mark and verifies (an edit made before it, named in it); a signed
/// purge removes them and keeps verifying. (Before, ClickHouse's health
/// reports and inventories were not chained: all of this verified.)
fn events_page_views_round_trip(
    db: &str,
    events: &tagwatch_events::testing::TestEvents,
    dir: &Path,
) {
    let keys = dir.join("keys");
    let out = run(&["keys", "init", "--dir", keys.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout).trim().to_owned();
    let secret = keys.join("tagwatch-signing.key");
    // Last week's: a purge drops only weeks that are over.
    let site = post_page_view(db, &["--events", &events.url], LAST_WEEK);
    assert_eq!(events.value("SELECT count() FROM health"), "1");
    assert_eq!(events.value("SELECT count() FROM inventories"), "1");
    let check = |args: &[&str]| {
        verify_code(
            &[
                &["--db", db, "--events", &events.url, "--site", &site],
                args,
            ]
            .concat(),
        )
    };
    let (code, said) = check(&[]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("1 finding, 1 health and 1 inventory row versions in ClickHouse"),
        "{said}"
    );
    let bundle_now = |name: &str| {
        let path = dir.join(name);
        let out = run(&[
            "evidence",
            "--db",
            db,
            "--events",
            &events.url,
            "--site",
            &site,
            "--out",
            path.to_str().unwrap(),
            "--signing-key",
            secret.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        path
    };

    // The bundle carries them, chained: they verify; a flipped byte fails.
    let bundle = bundle_now("pv.zip");
    let (ok, said) = verify(&[bundle.to_str().unwrap(), "--key", &public]);
    assert!(ok, "{said}");
    assert!(
        said.contains("1 inventories and 1 health reports of the findings' page views, checked against the chain")
            && !said.contains("not proven"),
        "{said}"
    );
    let flipped = rezip(&bundle, dir, "pv-flipped.zip", |name, data| {
        let mut data = data.to_vec();
        if name == "page_views.json" {
            let at = data.len() / 2;
            data[at] ^= 0x01;
        }
        data
    });
    let (ok, said) = verify(&[flipped.to_str().unwrap(), "--key", &public]);
    assert!(
        !ok && said.contains("FAILED: file page_views.json was changed"),
        "{said}"
    );

    // Edited behind the collector's back (ALTER UPDATE): the health row,
    // then one vendor's number in the inventory's arrays; each named by
    // `verify` and by a bundle made after it, then undone.
    let health = events.value("SELECT token FROM health");
    let edits = [
        (
            "ALTER TABLE health UPDATE status = 'ok' WHERE site != ''",
            "ALTER TABLE health UPDATE status = 'wasm_unavailable' WHERE site != ''",
            "health row",
            "health report",
        ),
        (
            "ALTER TABLE inventories UPDATE v_requests = arrayMap(x -> x + 1, v_requests) WHERE site != ''",
            "ALTER TABLE inventories UPDATE v_requests = arrayMap(x -> x - 1, v_requests) WHERE site != ''",
            "inventory row",
            "inventory",
        ),
    ];
    for (n, (edit, undo, row, noun)) in edits.iter().enumerate() {
        events.run(edit);
        mutations_done(events);
        let (code, said) = check(&[]);
        assert_eq!(code, 1, "{edit}: {said}");
        assert!(
            said.contains(&format!("FAILED: {row} "))
                && said.contains(&format!("(token {health}"))
                && said.contains(&format!("of site {site} was edited after it was stored")),
            "{edit}: {said}"
        );
        let bundle = bundle_now(&format!("edited-{n}.zip"));
        let (ok, said) = verify(&[bundle.to_str().unwrap(), "--key", &public]);
        assert!(
            !ok && said.contains(&format!("FAILED: page_views.json: {noun} "))
                && said.contains("was edited after it was stored"),
            "{edit}: {said}"
        );
        events.run(undo);
        mutations_done(events);
        let (code, said) = check(&[]);
        assert_eq!(code, 0, "{undo}: {said}");
    }

    // An extra health row (a token no entry names): not proven.
    events.run(
        "INSERT INTO health (site, page_view, page, status, reason, at, received_at, user_agent, \
         raw, token, seq, day, release) SELECT site, page_view, page, status, reason, at, \
         received_at, user_agent, raw, token + 1, seq, day, release FROM health",
    );
    let (code, said) = check(&[]);
    assert_eq!(code, 3, "{said}");
    assert!(
        said.contains("NOT PROVEN: health row")
            && said.contains("is in no entry of the chain")
            && !said.contains("FAILED"),
        "{said}"
    );

    // A signed purge of every week there is: a removal entry for each row
    // (the extra one too) and a checkpoint counting them; verified.
    let out = signed_purge(
        db,
        &secret,
        time::Duration::days(8),
        &["--events", &events.url],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(events.value("SELECT count() FROM health"), "0");
    assert_eq!(events.value("SELECT count() FROM inventories"), "0");
    assert_eq!(
        query_i64(db, &format!("SELECT count(*) FROM chain_checkpoints WHERE site = '{site}' AND findings = 1 AND health = 2 AND inventories = 1 AND signature IS NOT NULL")),
        1
    );
    let (code, said) = check(&["--key", &public]);
    assert_eq!(code, 0, "{said}");

    // After it: a new page view is chained; its health row deleted behind
    // the collector's back is named.
    let server = Server::start(db, &["--events", &events.url]);
    let mut report = health_report(&site, 0);
    report["body"]["page_view"] = "00000000000000dd".into();
    assert_eq!(server.post(Some(ORIGIN), &batch(&[report])).status, 204);
    drop(server);
    assert_eq!(check(&["--key", &public]).0, 0);
    events.run("ALTER TABLE health DELETE WHERE site != ''");
    mutations_done(events);
    let (code, said) = check(&["--key", &public]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("FAILED: health row ")
            && said.contains(&format!("of site {site} (seq "))
            && said.contains("was deleted: no purge records its removal"),
        "{said}"
    );
}

#[test]
fn events_health_and_inventories_are_chained_on_sqlite() {
    let Some(events) = tagwatch_events::testing::TestEvents::create("evidence_pv") else {
        return;
    };
    let dir = temp_dir("evidence-ch-pv");
    events_page_views_round_trip(&db_url(&dir.join("tagwatch.db")), &events, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn events_health_and_inventories_are_chained_on_postgres() {
    let Some(events) = tagwatch_events::testing::TestEvents::create("evidence_pv_pg") else {
        return;
    };
    let Some(db) = TestDb::create("evidence_ch_pv") else {
        return;
    };
    let dir = temp_dir("evidence-ch-pv-pg");
    events_page_views_round_trip(&db.url, &events, &dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Two collectors sharing the control plane (PostgreSQL) and ClickHouse,
/// ingesting one site at once: one chain, unforked, covering every row.
#[test]
fn two_collectors_on_events_extend_one_chain() {
    let Some(events) = tagwatch_events::testing::TestEvents::create("evidence_two") else {
        return;
    };
    let Some(db) = TestDb::create("evidence_two") else {
        return;
    };
    let site = site_add(&db.url, &[ORIGIN]);
    let a = Server::start(&db.url, &["--events", &events.url]);
    let b = Server::start(&db.url, &["--events", &events.url]);
    const BATCHES: usize = 20;
    std::thread::scope(|scope| {
        for (n, server) in [&a, &b].into_iter().enumerate() {
            let site = &site;
            scope.spawn(move || {
                for i in 0..BATCHES {
                    let body = batch(&[
                        finding(
                            site,
                            &format!("{n:08x}{i:08x}"),
                            "cookie_before_consent",
                            "intercom",
                            0,
                            1,
                        ),
                        finding(
                            site,
                            &format!("{n:08x}{i:08x}"),
                            "script_before_consent",
                            "intercom",
                            0,
                            1,
                        ),
                    ]);
                    let resp = server.post(Some(ORIGIN), &body);
                    assert_eq!(resp.status, 204, "{}", resp.body);
                }
            });
        }
    });
    drop((a, b));
    let rows = 2 * 2 * BATCHES;
    assert_eq!(
        events.value("SELECT count() FROM findings"),
        rows.to_string()
    );
    let (code, said) = verify_code(&["--db", &db.url, "--events", &events.url, "--site", &site]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains(&format!("chain seq 1..{rows} of site")),
        "{said}"
    );
}

/// A collector killed between its ClickHouse insert and the chain's
/// commit (held at the site's head lock, then SIGKILL): the row it
/// inserted is reported not proven — never verified, never tampered.
#[test]
fn a_collector_killed_before_the_chain_commits_leaves_rows_not_proven() {
    let Some(events) = tagwatch_events::testing::TestEvents::create("evidence_kill") else {
        return;
    };
    let Some(db) = TestDb::create("evidence_kill") else {
        return;
    };
    let site = site_add(&db.url, &[ORIGIN]);
    let mut server = Server::start(&db.url, &["--events", &events.url]);
    let body = batch(&[finding(
        &site,
        "00000000000000aa",
        "cookie_before_consent",
        "intercom",
        0,
        1,
    )]);
    assert_eq!(server.post(Some(ORIGIN), &body).status, 204);
    // Hold the site's chain head: the next commit inserts into ClickHouse
    // and then waits for the lock.
    let mut holder = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let mut tx = holder.transaction().unwrap();
    tx.query(
        "SELECT seq FROM chain_heads WHERE site = $1 FOR UPDATE",
        &[&site],
    )
    .unwrap();
    let addr = server.addr.clone();
    let body = batch(&[finding(
        &site,
        "00000000000000bb",
        "script_before_consent",
        "intercom",
        0,
        1,
    )]);
    let poster = std::thread::spawn(move || {
        let headers = [
            ("Content-Type", "text/plain;charset=UTF-8"),
            ("Origin", ORIGIN),
        ];
        try_http(&addr, "POST", "/r", &headers, Some(body.as_bytes())).map(|r| r.status)
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while events.value("SELECT count() FROM findings WHERE page_view = '00000000000000bb'") != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the insert never came"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Waiting for the lock (not yet committed): killed.
    let waiting = || {
        let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .unwrap()
            .get(0);
        n
    };
    while waiting() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the chain's commit never waited"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.kill();
    tx.rollback().unwrap();
    // Not acknowledged: the chain never committed.
    let answer = poster.join().unwrap();
    assert!(answer.is_err(), "answered {answer:?}");
    let (code, said) = verify_code(&["--db", &db.url, "--events", &events.url, "--site", &site]);
    assert_eq!(code, 3, "{said}");
    assert!(
        said.contains("NOT PROVEN: finding row")
            && said.contains("page view 00000000000000bb")
            && !said.contains("FAILED")
            && !said.contains("verified"),
        "{said}"
    );
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
