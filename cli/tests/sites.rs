//! `tagwatch site add|list|set` through the binary: what it prints, how it
//! normalises origins and patterns, its usage errors, and that a running
//! collector serves a change at once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::process::Command;

use serde_json::{json, Value};

use common::pg::TestDb;
use common::*;

fn sqlite(name: &str) -> (String, TempDir) {
    let dir = temp_dir(name);
    (db_url(&dir.join("t.db")), dir)
}

#[test]
fn site_add_prints_only_a_key_and_normalises_origins() {
    let dir = temp_dir("site");
    let db = dir.join("t.db");
    let key = site_add(
        &db_url(&db),
        &["HTTPS://Shop.Example:443/", "http://localhost:8080"],
    );
    assert!(key.starts_with("tw_") && key.len() == 27, "{key}");
    assert!(key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    let other = site_add(&db_url(&db), &[ORIGIN]);
    assert_ne!(key, other);

    let out = Command::new(BIN)
        .args(["site", "list", "--db", &db_url(&db)])
        .output()
        .unwrap();
    assert!(out.status.success());
    let sites: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = sites.iter().find(|s| s["site"] == key.as_str()).unwrap();
    assert_eq!(
        first["origins"],
        json!(["http://localhost:8080", "https://shop.example"])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn site_add_rejects_malformed_origins_with_exit_code_2() {
    let dir = temp_dir("site-bad");
    let db = dir.join("t.db");
    for bad in [
        "shop.example",
        "https://shop.example/path",
        "ftp://x.example",
        "https://a..b",
    ] {
        let out = Command::new(BIN)
            .args(["site", "add", "--origin", bad, "--db", &db_url(&db)])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("invalid origin"), "{err}");
    }
    for bad_db in ["postgres://u:p@[bad", "mysql://x", "sqlite:"] {
        let out = Command::new(BIN)
            .args(["site", "add", "--origin", ORIGIN, "--db", bad_db])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad_db}");
        assert!(!out.stderr.is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn site_add_takes_subdomain_patterns_and_refuses_bad_ones() {
    let (db, dir) = sqlite("patterns");
    site_add(&db, &["https://*.Shop.Example", "https://shop.example"]);
    let out = Command::new(BIN)
        .args(["site", "list", "--db", &db])
        .output()
        .unwrap();
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        line["origins"],
        json!(["https://*.shop.example", "https://shop.example"])
    );
    for bad in [
        "https://*.example",
        "https://*.*.shop.example",
        "https://*.10.0.0.1",
    ] {
        let out = Command::new(BIN)
            .args(["site", "add", "--origin", bad, "--db", &db])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid origin"));
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn site_set(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["site", "set"])
        .args(args)
        .args(["--db", db])
        .output()
        .unwrap()
}

fn config(server: &Server, key: &str) -> (Resp, Value) {
    let resp = http(&server.addr, "GET", &format!("/config/{key}"), &[], None);
    let v = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
    (resp, v)
}

fn site_config_round_trip(db: &str) {
    let key = site_add(db, &[ORIGIN]);
    let server = Server::start(db, &[]);
    let (resp, v) = config(&server, &key);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(v, json!({"sample": 1.0, "enabled": true}));
    assert_eq!(resp.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(resp.header("content-type"), Some("application/json"));

    let out = site_set(db, &[&key, "--sample", "0.1"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());
    // No restart: the collector reads the store.
    assert_eq!(
        config(&server, &key).1,
        json!({"sample": 0.1, "enabled": true})
    );
    assert!(site_set(db, &[&key, "--disable"]).status.success());
    assert_eq!(
        config(&server, &key).1,
        json!({"sample": 0.1, "enabled": false})
    );
    assert!(site_set(db, &[&key, "--enable", "--sample", "1"])
        .status
        .success());
    assert_eq!(
        config(&server, &key).1,
        json!({"sample": 1.0, "enabled": true})
    );

    let out = Command::new(BIN)
        .args(["site", "list", "--db", db])
        .output()
        .unwrap();
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["sample"], 1.0);
    assert_eq!(line["enabled"], true);

    for (args, want) in [
        (vec![key.as_str(), "--sample", "1.5"], "--sample"),
        (vec![key.as_str(), "--sample", "x"], "--sample"),
        (vec![key.as_str()], "nothing to change"),
        (vec!["tw_nope", "--disable"], "unknown site key"),
        (
            vec![key.as_str(), "--disable", "--enable"],
            "cannot be used with",
        ),
    ] {
        let out = site_set(db, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (resp, _) = config(&server, "tw_nope");
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    let resp = http(
        &server.addr,
        "POST",
        &format!("/config/{key}"),
        &[],
        Some(b"x"),
    );
    assert_eq!(resp.status, 405);
}

#[test]
fn site_config_is_served_and_set_sqlite() {
    let (db, dir) = sqlite("config");
    site_config_round_trip(&db);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn site_config_is_served_and_set_postgres() {
    if let Some(db) = TestDb::create("config") {
        site_config_round_trip(&db.url);
    }
}
