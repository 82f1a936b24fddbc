//! Reports as the monitor sends them, and the small helpers both test
//! harnesses use: the collector's in-process one (this folder) and the
//! binary's (`cli/tests/common`, which includes this file by path).

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub const TOKEN: &str = "test-admin-token";
pub const ORIGIN: &str = "https://shop.example";

/// A fresh directory of its own for one test's files, removed with
/// everything in it when the test is done with it (dropped), pass or fail:
/// test runs leave nothing behind in the temporary folder.
pub fn temp_dir(name: &str) -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tagwatch-test-{}-{}-{}",
        std::process::id(),
        name,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A test's directory ([`temp_dir`]): a path while it lives, removed when
/// dropped.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn db_url(db: &Path) -> String {
    format!("sqlite:{}", db.display())
}

pub fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

pub fn parse_iso_ms(s: &str) -> i64 {
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?} is not ISO 8601: {e}"));
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).unwrap()
}

// -------------------------------------------------------------- reports

pub fn finding(
    site: &str,
    page_view: &str,
    kind: &str,
    vendor: &str,
    age: i64,
    count: i64,
) -> Value {
    json!({
        "type": "tagwatch-finding",
        "age": age,
        "url": "https://shop.example/support",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) tagwatch-test",
        "body": {
            "schema": 1,
            "site": site,
            "page_view": page_view,
            "finding": kind,
            "vendor": vendor,
            "category": "functional",
            "at": 412,
            "count": count,
            "evidence": {
                "kind": "request",
                "host": "widget.intercom.io",
                "path": "/widget/abc12345",
                "initiator": "script",
                "frame": "top",
                "purpose": "messenger"
            },
            "consent": {
                "necessary": true, "functional": false, "analytics": false, "marketing": false,
                "source": "api", "since": 3, "gpc": false
            }
        }
    })
}

pub fn batch(items: &[Value]) -> String {
    Value::Array(items.to_vec()).to_string()
}

/// A `tagwatch-inventory` report as the monitor sends it.
pub fn inventory(
    site: &str,
    page_view: &str,
    age: i64,
    vendors: Value,
    unclassified: Value,
) -> Value {
    json!({
        "type": "tagwatch-inventory",
        "age": age,
        "url": "https://shop.example/pricing",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) tagwatch-test",
        "body": {
            "schema": 1, "site": site, "page_view": page_view,
            "vendors": vendors, "unclassified": unclassified
        }
    })
}

pub fn intercom_usage(
    requests: u64,
    scripts: u64,
    transfer: u64,
    hosts: &[&str],
    cookies: &[&str],
) -> Value {
    json!({
        "vendor": "intercom", "requests": requests, "script_requests": scripts,
        "transfer_bytes": transfer, "encoded_bytes": transfer / 2, "duration_ms": 100,
        "hosts": hosts, "regions": ["us"], "cookies": cookies
    })
}

/// A `tagwatch-health` report.
pub fn health_report(site: &str, age: i64) -> Value {
    json!({
        "type": "tagwatch-health", "age": age, "url": "https://shop.example/",
        "user_agent": "UA",
        "body": {"schema": 1, "site": site, "status": "wasm_unavailable", "reason": "CompileError"}
    })
}
