//! The events tables in ClickHouse and their versions.
//!
//! One list of migrations, applied in order and recorded in
//! `tagwatch_events_schema` (as the SQL store records its own). Each
//! statement is idempotent (`IF NOT EXISTS`; a column a later version adds
//! is added only where `system.columns` lacks it, [`Column`]), so
//! collectors starting together may both run it. The text is written once with a few tokens
//! the server's version decides ([`render`]):
//!
//! | token      | ClickHouse 18.x                  | 19.x and later (LowCardinality is on by default) |
//! |------------|----------------------------------|--------------------------------------------------|
//! | `{dict}`   | `String`                         | `LowCardinality(String)`                         |
//! | `{table}`  | the table (`findings`)           | same; with `?cluster=`: `findings_local` on each server, and a `Distributed` `findings` over the cluster |
//!
//! Every table is a `ReplacingMergeTree` partitioned by week (the Monday
//! of its `day` column, from `at`): retention drops whole partitions, which
//! every version can do. A week, not a day: a site's dashboard query reads
//! at least one granule per partition, so 30 day partitions cost several
//! times the reads of 5 week ones (measured), for retention a week coarser.
//! `TTL` (19.6 and later) is not used, because the
//! retention age is a flag of `serve`, not a property of the tables, and a
//! dropped partition is cheaper than a TTL merge. Rows carry `token`: one
//! number per inserted batch, so that an insert sent twice (a retry after
//! a lost answer) replaces its own rows instead of adding to them.

use tagwatch_store::StoreError;

use crate::client::{quote, Client, Target};

pub struct Migration {
    pub version: u32,
    /// Statements separated by `;\n` (one request each).
    pub sql: &'static str,
    /// Columns added to existing tables, after `sql`.
    pub columns: &'static [Column],
}

/// A column a migration adds to a report table (on a cluster: to the local
/// table on each server and to the `Distributed` one). ClickHouse 18.16
/// has no `ADD COLUMN IF NOT EXISTS`: [`migrate`] adds it where
/// `system.columns` lacks it, and a collector that lost the race to
/// another starting beside it finds it there.
pub struct Column {
    pub table: &'static str,
    pub name: &'static str,
    /// The type and default, with the tokens of [`render`] (`{dict}`).
    pub ty: &'static str,
}

/// The events schema version this build writes.
pub const SCHEMA_VERSION: u32 = 2;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: V1,
        columns: &[],
    },
    Migration {
        version: 2,
        sql: "",
        columns: V2_RELEASE,
    },
];

#[allow(clippy::indexing_slicing)] // Compile-time only.
const _: () = {
    assert!(!MIGRATIONS.is_empty());
    assert!(MIGRATIONS[MIGRATIONS.len() - 1].version == SCHEMA_VERSION);
};

/// The three report tables. Findings keep the SQL store's dedupe key
/// (site, page_view, type, vendor, evidence) as their sorting key, plus the
/// insert's token; the reads merge rows of one key as the SQL upsert does
/// (`read.rs`). An inventory keeps one row per insert; the reads take the
/// latest per page view. A vendor's hosts, regions and cookies are arrays
/// beside it (no child tables: no joins).
const V1: &str = "
CREATE TABLE IF NOT EXISTS {table:findings} (
    site        String,
    page_view   String,
    page        String,
    type        {dict},
    vendor      {dict},
    category    {dict},
    evidence_kind {dict},
    evidence    String,
    consent_source Nullable(String),
    consent     String,
    count       Int64,
    at          String,
    received_at String,
    user_agent  String,
    raw         String,
    token       UInt64,
    day         Date
) {engine:site, page_view|site, page_view, type, vendor, evidence, token};

CREATE TABLE IF NOT EXISTS {table:health} (
    site        String,
    page_view   Nullable(String),
    page        String,
    status      {dict},
    reason      Nullable(String),
    at          String,
    received_at String,
    user_agent  String,
    raw         String,
    token       UInt64,
    seq         UInt32,
    day         Date
) {engine:site|site, at, token, seq};

CREATE TABLE IF NOT EXISTS {table:inventories} (
    site        String,
    page_view   String,
    page        String,
    at          String,
    received_at String,
    user_agent  String,
    raw         String,
    v_vendor    Array(String),
    v_requests  Array(Int64),
    v_script_requests Array(Int64),
    v_transfer_bytes  Array(Int64),
    v_encoded_bytes   Array(Int64),
    v_duration_ms     Array(Int64),
    v_hosts     Array(Array(String)),
    v_regions   Array(Array(String)),
    v_cookies   Array(Array(String)),
    h_host      Array(String),
    h_requests  Array(Int64),
    h_script_requests Array(Int64),
    h_transfer_bytes  Array(Int64),
    h_encoded_bytes   Array(Int64),
    h_duration_ms     Array(Int64),
    token       UInt64,
    day         Date
) {engine:site, page_view|site, page_view, at, received_at, token}
";

/// Releases (issue 15): the site's `release` each report named, `''` for
/// none (as `category`; a release is never empty: the monitor sends none
/// rather than an empty one, and `release=` empty is no filter). Rows
/// stored before read as none, which they were. A finding keeps its first
/// arrival's release, an inventory its latest report's (the SQL store's
/// rules, `read.rs`). Releases per site are few: a dictionary column.
const V2_RELEASE: &[Column] = &[
    Column {
        table: "findings",
        name: "release",
        ty: "{dict} DEFAULT ''",
    },
    Column {
        table: "health",
        name: "release",
        ty: "{dict} DEFAULT ''",
    },
    Column {
        table: "inventories",
        name: "release",
        ty: "{dict} DEFAULT ''",
    },
];

/// Rows per mark of the sparse primary index. A site's rows of one week
/// are a few granules: with ClickHouse's default (8192), one site's stats
/// over 30 days read 490,000 rows of 10 million for its 10,000; with 1024,
/// 19,000 (docs/benchmarks.md#clickhouse-events-store). The index stays
/// small because it holds only the key's prefix (site, page view).
const INDEX_GRANULARITY: u32 = 1024;

/// The report tables, in the order purges report them.
pub const TABLES: [&str; 3] = ["findings", "health", "inventories"];

/// What the server can do, from its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    pub major: u32,
    /// `LowCardinality(String)` without an experimental setting (19.x on).
    pub low_cardinality: bool,
}

impl Server {
    /// From `SELECT version()`: `18.16.1`, `23.8.2.7`.
    pub fn from_version(version: &str) -> Self {
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.trim().parse().ok())
            .unwrap_or(0);
        Self {
            major,
            low_cardinality: major >= 19,
        }
    }
}

/// The local table of `table` on each server when the events are sharded.
pub fn local(table: &str) -> String {
    format!("{table}_local")
}

/// The `Distributed` tables' sharding key: a site's rows, and so its
/// dedupe keys, live on one shard, the `sipHash64(site) % shards`-th (with
/// equal weights, which [`check_cluster`] requires). `shardByHash` reads
/// that same shard, so [`SiteTables`] and the inserts agree by construction.
const SHARDING_KEY: &str = "sipHash64(site)";

/// Where one site's reports are read from: the table itself, or on a
/// cluster only the shard that holds the site (`shardByHash`). A site on a
/// healthy shard is answered while another shard is down, and a site on a
/// down shard is refused (the query fails), never answered with the other
/// shards' (empty) part of it. (18.16 has no `optimize_skip_unused_shards`: through
/// the `Distributed` table every read needs every shard.)
pub struct SiteTables<'a> {
    pub target: &'a Target,
    pub site: &'a str,
}

impl SiteTables<'_> {
    /// The table expression for `table` (`findings`, `health`, `inventories`).
    pub fn of(&self, table: &str) -> String {
        match &self.target.cluster {
            None => table.to_owned(),
            Some(cluster) => format!(
                "shardByHash({cluster}, {}, {}, {})",
                quote(self.site),
                self.target.database,
                local(table)
            ),
        }
    }
}

/// Refuses a cluster reads could not route: unknown to the server, or with
/// shards of unequal weight (the `Distributed` table then spreads sites by
/// weight, while `shardByHash` reads `sipHash64(site) % shards`).
pub fn check_cluster(client: &Client) -> Result<(), StoreError> {
    let Some(cluster) = &client.target().cluster else {
        return Ok(());
    };
    let row = client.rows(&format!(
        "SELECT count(), uniqExact(shard_weight) FROM system.clusters WHERE cluster = {}",
        quote(cluster)
    ))?;
    let cells: Vec<i64> = row
        .first()
        .map(|r| r.iter().map(|v| v.as_i64().unwrap_or(0)).collect())
        .unwrap_or_default();
    let refuse = |why: String| {
        Err(StoreError::Events {
            message: why,
            unreachable: false,
        })
    };
    match cells.as_slice() {
        [0, ..] | [] => refuse(format!(
            "the server knows no cluster {cluster:?}: add it to its remote_servers \
             (docs/scale.md#sharding)"
        )),
        [_, 1] => Ok(()),
        _ => refuse(format!(
            "the shards of cluster {cluster:?} have unequal weights: tagwatch reads a site \
             from shard sipHash64(site) % shards, so give every shard the same weight"
        )),
    }
}

fn dict(server: Server) -> &'static str {
    if server.low_cardinality {
        "LowCardinality(String)"
    } else {
        "String"
    }
}

/// The tables a column is added to, each with its `ALTER`: `table`, or on
/// a cluster its local table and then the `Distributed` one over it.
pub fn render_column(
    column: &Column,
    server: Server,
    cluster: Option<&str>,
) -> Vec<(String, String)> {
    let ty = column.ty.replace("{dict}", dict(server));
    let tables = match cluster {
        None => vec![column.table.to_owned()],
        Some(_) => vec![local(column.table), column.table.to_owned()],
    };
    tables
        .into_iter()
        .map(|t| {
            let sql = format!("ALTER TABLE {t} ADD COLUMN {} {ty}", column.name);
            (t, sql)
        })
        .collect()
}

/// The statements of `sql` for this server and `cluster` (if sharded).
pub fn render(sql: &str, server: Server, database: &str, cluster: Option<&str>) -> Vec<String> {
    let dict = dict(server);
    let mut out = Vec::new();
    for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        // `{table:NAME}` and `{engine:PRIMARY KEY|SORTING KEY}` (one of
        // each per statement).
        let name = between(statement, "{table:", "}").unwrap_or("");
        let keys = between(statement, "{engine:", "}").unwrap_or("");
        let (primary, order) = keys.split_once('|').unwrap_or((keys, keys));
        let engine = format!(
            "ENGINE = ReplacingMergeTree() PARTITION BY toMonday(day) \
             PRIMARY KEY ({primary}) ORDER BY ({order}) \
             SETTINGS index_granularity = {INDEX_GRANULARITY}"
        );
        let body = statement
            .replace("{dict}", dict)
            .replace(&format!("{{engine:{keys}}}"), &engine);
        match cluster {
            None => out.push(body.replace(&format!("{{table:{name}}}"), name)),
            Some(cluster) => {
                let local_name = local(name);
                out.push(body.replace(&format!("{{table:{name}}}"), &local_name));
                // Rows go to the shard of their site: a site's reports and
                // its dedupe keys stay on one shard.
                out.push(format!(
                    "CREATE TABLE IF NOT EXISTS {name} AS {local_name} \
                     ENGINE = Distributed({cluster}, {database}, {local_name}, {SHARDING_KEY})"
                ));
            }
        }
    }
    out
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let rest = s.get(start..)?;
    rest.get(..rest.find(close)?)
}

/// Brings the events tables up to [`SCHEMA_VERSION`], refusing a newer
/// schema. Answers what the server can do.
pub fn migrate(client: &Client) -> Result<Server, StoreError> {
    client.create_database()?;
    let version = client.rows("SELECT version()")?;
    let version = version
        .first()
        .and_then(|row| row.first())
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let server = Server::from_version(version);
    client.run(
        "CREATE TABLE IF NOT EXISTS tagwatch_events_schema (version UInt32, applied_at DateTime) \
         ENGINE = MergeTree() ORDER BY version",
    )?;
    let found = client
        .rows("SELECT max(version) FROM tagwatch_events_schema")?
        .first()
        .and_then(|row| row.first())
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    if found > i64::from(SCHEMA_VERSION) {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: i64::from(SCHEMA_VERSION),
        });
    }
    check_cluster(client)?;
    let target = client.target();
    for m in MIGRATIONS.iter().filter(|m| i64::from(m.version) > found) {
        for statement in render(m.sql, server, &target.database, target.cluster.as_deref()) {
            client.run(&statement)?;
        }
        for column in m.columns {
            for (table, sql) in render_column(column, server, target.cluster.as_deref()) {
                let has = || has_column(client, &table, column.name);
                if !has()? {
                    // Another collector may add it between the look and
                    // the ALTER: then it is there, which is all we want.
                    if let Err(e) = client.run(&sql) {
                        if !has()? {
                            return Err(e);
                        }
                    }
                }
            }
        }
        client.run(&format!(
            "INSERT INTO tagwatch_events_schema (version, applied_at) VALUES ({}, now())",
            m.version
        ))?;
    }
    Ok(server)
}

/// Whether `table` of the client's database has a column `name`.
fn has_column(client: &Client, table: &str, name: &str) -> Result<bool, StoreError> {
    let rows = client.rows(&format!(
        "SELECT count() FROM system.columns \
         WHERE database = currentDatabase() AND table = {} AND name = {}",
        quote(table),
        quote(name)
    ))?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0)
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_cardinality_only_where_the_server_has_it() {
        let old = Server::from_version("18.16.1");
        let new = Server::from_version("23.8.2.7");
        assert!(!old.low_cardinality && new.low_cardinality);
        let sql = render(V1, old, "tw", None).join("\n");
        assert!(
            !sql.contains("LowCardinality") && !sql.contains('{'),
            "{sql}"
        );
        assert!(sql.contains("CREATE TABLE IF NOT EXISTS findings ("));
        let sql = render(V1, new, "tw", None).join("\n");
        assert!(sql.contains("type        LowCardinality(String)"), "{sql}");
        // Every text column of few values, and no other, on each version.
        for version in ["19.1.6", "23.8.2.7"] {
            let server = Server::from_version(version);
            let sql = render(V1, server, "tw", Some("c")).join("\n");
            assert_eq!(sql.matches("LowCardinality(String)").count(), 5, "{sql}");
            assert!(sql.contains("CREATE TABLE IF NOT EXISTS findings_local ("));
        }
        assert!(!Server::from_version("").low_cardinality);
    }

    #[test]
    fn a_release_column_on_every_report_table_and_version() {
        for (version, ty) in [
            ("18.16.1", "String DEFAULT ''"),
            ("19.1.6", "LowCardinality(String) DEFAULT ''"),
            ("23.8.2.7", "LowCardinality(String) DEFAULT ''"),
        ] {
            let server = Server::from_version(version);
            let tables: Vec<&str> = V2_RELEASE.iter().map(|c| c.table).collect();
            assert_eq!(tables, TABLES);
            let alone = render_column(&V2_RELEASE[0], server, None);
            assert_eq!(
                alone,
                [(
                    "findings".to_owned(),
                    format!("ALTER TABLE findings ADD COLUMN release {ty}")
                )]
            );
            let sharded = render_column(&V2_RELEASE[2], server, Some("c"));
            assert_eq!(
                sharded,
                [
                    (
                        "inventories_local".to_owned(),
                        format!("ALTER TABLE inventories_local ADD COLUMN release {ty}")
                    ),
                    (
                        "inventories".to_owned(),
                        format!("ALTER TABLE inventories ADD COLUMN release {ty}")
                    ),
                ]
            );
        }
    }

    #[test]
    fn a_cluster_gets_local_and_distributed_tables() {
        let sql = render(V1, Server::from_version("18.16.1"), "tw", Some("c"));
        assert_eq!(sql.len(), 6);
        assert!(sql[0].starts_with("CREATE TABLE IF NOT EXISTS findings_local ("));
        assert_eq!(
            sql[1],
            "CREATE TABLE IF NOT EXISTS findings AS findings_local \
             ENGINE = Distributed(c, tw, findings_local, sipHash64(site))"
        );
    }
}
