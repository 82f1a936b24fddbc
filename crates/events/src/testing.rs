//! ClickHouse for the tests: the server `TAGWATCH_TEST_CLICKHOUSE` names
//! (`./build.sh test` starts one with tools/clickhouse.sh), one fresh
//! database per test, dropped afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::client::{Client, Target};

/// The server's URL (`clickhouse://HOST:PORT/DB`); `None` (the test skips
/// its ClickHouse part) when it is not set, unless `CI` or
/// `TAGWATCH_REQUIRE_CLICKHOUSE=1` says it must run.
pub fn server_url() -> Option<String> {
    tagwatch_store::testing::test_server("CLICKHOUSE", "ClickHouse", "tools/clickhouse.sh")
}

/// The user with a password that tools/clickhouse.sh configures on its
/// servers, and its password (every character a URL must escape).
pub const AUTH_USER: &str = "tagwatch_auth";
pub const AUTH_PASSWORD: &str = "p@ss:w/rd?#%";

/// `url` as `user` with `password`, both percent-encoded.
pub fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let rest = url.strip_prefix("clickhouse://").unwrap_or(url);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    format!("clickhouse://{}:{}@{rest}", encode(user), encode(password))
}

/// `url` (a `clickhouse://` URL) naming database `name` instead.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let rest = base.strip_prefix("clickhouse://").unwrap_or(base);
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("clickhouse://{authority}/{name}{query}")
}

/// A database of its own (created by the collector on first use), dropped
/// with this value.
pub struct TestEvents {
    pub url: String,
    client: Client,
}

impl TestEvents {
    /// A new database name on the test server, or `None` when there is no
    /// server (see [`server_url`]).
    pub fn create(test: &str) -> Option<TestEvents> {
        Self::on(&server_url()?, test)
    }

    /// A new database name on the server of `url`.
    pub fn on(url: &str, test: &str) -> Option<TestEvents> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "tw_{}_{}_{}",
            test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
        .to_lowercase();
        Some(Self::named(url, &name))
    }

    /// Database `name` on the server of `url` (the same database on each
    /// server of a cluster).
    pub fn named(url: &str, name: &str) -> TestEvents {
        let url = with_database(url, name);
        let client = Client::new(Target::parse(&url).unwrap());
        TestEvents { url, client }
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        &self.client.target().database
    }

    /// Creates the database (as a collector does before its tables), for a
    /// test that makes the tables itself.
    pub fn create_database(&self) {
        self.client.create_database().unwrap();
    }

    /// Runs a statement in the test's database; the answer's body.
    pub fn run(&self, sql: &str) -> String {
        self.client
            .run(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The first cell of a query, as text (`TSV`).
    pub fn value(&self, sql: &str) -> String {
        self.run(&format!("{sql} FORMAT TSV")).trim_end().to_owned()
    }
}

impl Drop for TestEvents {
    fn drop(&mut self) {
        let _ = self.client.run(&format!(
            "DROP DATABASE IF EXISTS {}",
            self.client.target().database
        ));
    }
}
