//! PostgreSQL for the tests: the server `TAGWATCH_TEST_POSTGRES` names
//! (`./build.sh test` starts one with tools/postgres.sh), one fresh
//! database per test so that purges and counts never see another test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// The server's URL; `None` (the test skips its PostgreSQL part) when it is
/// not set, unless `CI` or `TAGWATCH_REQUIRE_POSTGRES=1` says it must run.
pub fn server_url() -> Option<String> {
    test_server("POSTGRES", "PostgreSQL", "tools/postgres.sh")
}

/// The URL of a throwaway test server in `TAGWATCH_TEST_<VAR>` (started by
/// `./build.sh test` with `script`); `None` (the test skips that part) when
/// it is not set, unless `CI` or `TAGWATCH_REQUIRE_<VAR>=1` says it must run.
pub fn test_server(var: &str, name: &str, script: &str) -> Option<String> {
    if let Ok(url) = std::env::var(format!("TAGWATCH_TEST_{var}")) {
        if !url.trim().is_empty() {
            return Some(url.trim().to_owned());
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let required = std::env::var(format!("TAGWATCH_REQUIRE_{var}")).is_ok_and(|v| v == "1");
    if ci || required {
        panic!(
            "TAGWATCH_TEST_{var} is not set, and the {name} tests are required here \
             (CI or TAGWATCH_REQUIRE_{var}=1). Run them via `./build.sh test`, or start a \
             throwaway server with `export TAGWATCH_TEST_{var}=$({script})`."
        );
    }
    eprintln!(
        "skipping the {name} part: TAGWATCH_TEST_{var} is not set \
         (run via ./build.sh test, or export TAGWATCH_TEST_{var}=$({script}))"
    );
    None
}

/// A database of its own, dropped with this value.
pub struct TestDb {
    pub url: String,
    admin: String,
    name: String,
}

impl TestDb {
    /// A new empty database on the test server, or `None` when there is no
    /// server (see [`server_url`]).
    pub fn create(test: &str) -> Option<TestDb> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let admin = server_url()?;
        let name = format!(
            "tw_{}_{}_{}",
            test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
        .to_lowercase();
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to TAGWATCH_TEST_POSTGRES={admin}: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Some(TestDb {
            url: with_dbname(&admin, &name),
            admin,
            name,
        })
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// `url` naming database `name` instead (keeps user, host, port, options).
pub fn with_dbname(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}{query}")
}
