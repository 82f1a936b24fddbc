//! The events store: a collector's reports in ClickHouse (`serve --events
//! clickhouse://…`), beside the SQL store that keeps the control plane.
//!
//! [`open`] wraps the SQL store in a [`tagwatch_store::Store`] whose site
//! and settings calls go to SQL, and whose reports — every write, read
//! and purge — go to ClickHouse over its HTTP interface. The collector's
//! writer calls it like any store: one `commit` per group commit, which
//! here is one INSERT per table (`write.rs`, sent at once), then the finding types the
//! webhook alerts on recorded in SQL. `commit` returns once ClickHouse
//! answered every INSERT with success: the server accepted the rows and
//! wrote them to its parts (on a cluster: to its own shard's parts, and the
//! other shards' rows to the `Distributed` table's queue on its disk, which
//! ClickHouse forwards). That is what "acknowledged" means with ClickHouse
//! (docs/collector.md#clickhouse---events).

use std::sync::Arc;

use tagwatch_store::{
    Batch, FindingRecord, FindingRow, FindingsQuery, FirstSeen, HealthQuery, HealthRow,
    InventoryQuery, InventoryTotals, Purged, ReleaseInfo, ReleaseNews, ReleaseProfile, SiteChange,
    SiteConfig, SiteInfo, Stats, StatsQuery, Store, StoreError,
};

mod client;
mod read;
pub mod schema;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod write;

use client::{int, text, Client};
pub use client::{quote, Target};

/// The control plane in SQL, the reports in ClickHouse.
pub struct Split {
    control: Arc<dyn Store>,
    events: Client,
}

/// Opens the events store a `--events` URL names
/// (`clickhouse://[USER[:PASSWORD]@]HOST:PORT/DATABASE[?cluster=NAME]`),
/// creating or migrating its tables, and answers the store the collector
/// uses: `control` for sites and settings, ClickHouse for reports.
pub fn open(url: &str, control: Arc<dyn Store>) -> Result<Arc<dyn Store>, StoreError> {
    let events = Client::new(Target::parse(url)?);
    schema::migrate(&events)?;
    Ok(Arc::new(Split { control, events }))
}

impl Split {
    /// The table holding this server's rows of `table`: itself, or on a
    /// cluster its local table (the `Distributed` one holds none).
    fn physical(&self, table: &str) -> String {
        match &self.events.target().cluster {
            Some(_) => schema::local(table),
            None => table.to_owned(),
        }
    }

    /// The ids of `table`'s partitions on this server that end before
    /// `day` (an ISO date): the weeks before the one `day` is in.
    fn old_partitions(&self, table: &str, day: &str) -> Result<Vec<String>, StoreError> {
        let physical = self.physical(table);
        self.events
            .rows(&format!(
                "SELECT DISTINCT partition_id FROM system.parts
                 WHERE database = currentDatabase() AND table = {} AND active
                   AND toDate(partition) < toMonday(toDate({}))",
                quote(&physical),
                quote(day)
            ))?
            .iter()
            .map(|row| text(row.first().unwrap_or(&serde_json::Value::Null)))
            .collect()
    }

    fn count(&self, sql: &str) -> Result<u64, StoreError> {
        let rows = self.events.rows(sql)?;
        let n = rows
            .first()
            .and_then(|row| row.first())
            .map(int)
            .transpose()?
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl Store for Split {
    fn add_site(&self, key: &str, origins: &[String], created_at: &str) -> Result<(), StoreError> {
        self.control.add_site(key, origins, created_at)
    }

    fn list_sites(&self) -> Result<Vec<SiteInfo>, StoreError> {
        self.control.list_sites()
    }

    fn site_origins(&self, key: &str) -> Result<Option<Vec<String>>, StoreError> {
        self.control.site_origins(key)
    }

    fn origin_registered(&self, candidates: &[String]) -> Result<bool, StoreError> {
        self.control.origin_registered(candidates)
    }

    fn site_config(&self, key: &str) -> Result<Option<SiteConfig>, StoreError> {
        self.control.site_config(key)
    }

    fn set_site_config(&self, key: &str, change: &SiteChange) -> Result<bool, StoreError> {
        self.control.set_site_config(key, change)
    }

    /// The group's rows into ClickHouse (one INSERT per table), then its
    /// finding types into SQL. Whatever fails, the whole group is refused
    /// and may be sent again: rows already inserted are replaced by the
    /// same rows (their token), never added twice.
    fn commit(&self, batches: &[&Batch]) -> Result<Vec<FirstSeen>, StoreError> {
        // The tables' INSERTs at once (each is a round trip and a new
        // part on the server): a group waits for the slowest, not the sum.
        let statements = write::inserts(batches);
        client::at_once(&statements, |sql| self.events.run(sql))?;
        let findings: Vec<&FindingRecord> =
            batches.iter().flat_map(|b| b.findings.iter()).collect();
        if findings.is_empty() {
            return Ok(Vec::new());
        }
        self.control.record_finding_types(&findings)
    }

    fn record_finding_types(
        &self,
        findings: &[&FindingRecord],
    ) -> Result<Vec<FirstSeen>, StoreError> {
        self.control.record_finding_types(findings)
    }

    /// Releases and what each had are control-plane facts (what the
    /// release webhook alerts on): kept in SQL, as the finding types.
    fn record_releases(&self, batches: &[&Batch]) -> Result<Vec<ReleaseNews>, StoreError> {
        self.control.record_releases(batches)
    }

    fn releases(&self, site: &str) -> Result<Vec<ReleaseInfo>, StoreError> {
        self.control.releases(site)
    }

    fn release_profile(
        &self,
        site: &str,
        release: &str,
        max_names: u32,
    ) -> Result<ReleaseProfile, StoreError> {
        read::release_profile(&self.events, site, release, max_names)
    }

    fn findings(&self, q: &FindingsQuery) -> Result<Vec<FindingRow>, StoreError> {
        read::findings(&self.events, q)
    }

    fn stats(&self, q: &StatsQuery) -> Result<Stats, StoreError> {
        read::stats(&self.events, q)
    }

    fn health(&self, q: &HealthQuery) -> Result<Vec<HealthRow>, StoreError> {
        read::health(&self.events, q)
    }

    fn inventory(&self, q: &InventoryQuery) -> Result<InventoryTotals, StoreError> {
        read::inventory(&self.events, q)
    }

    /// Drops the week partitions wholly before `before` (ISO 8601): rows
    /// of the week (Monday to Sunday, UTC) `before` falls in stay until
    /// that whole week is old enough.
    /// Counts what goes first (findings by dedupe key, inventories by page
    /// view). `limit` does not apply: dropping a partition is one cheap
    /// metadata change, however many rows it holds.
    fn purge(&self, before: &str, _limit: u32) -> Result<Purged, StoreError> {
        let day = before.get(..10).unwrap_or(before);
        let mut purged = Purged::default();
        let partitions: Vec<(&str, Vec<String>)> = schema::TABLES
            .iter()
            .map(|t| Ok((*t, self.old_partitions(t, day)?)))
            .collect::<Result<_, StoreError>>()?;
        if partitions.iter().all(|(_, p)| p.is_empty()) {
            return Ok(purged);
        }
        // Counted as the SQL store counts what it deletes: finding keys
        // first observed before the day, page views whose latest inventory
        // is (a superseded snapshot in an old partition is no inventory).
        // On a cluster, what this server holds: each server drops its own.
        // Whether a day (the column `d`) is in a dropped partition.
        let cutoff = quote(day);
        let gone = |d: &str| format!("toMonday({d}) < toMonday(toDate({cutoff}))");
        let [findings, health, inventories] = schema::TABLES.map(|t| self.physical(t));
        purged.findings = self.count(&format!(
            "SELECT count() FROM (SELECT min(day) AS d FROM {findings} \
             GROUP BY site, page_view, type, vendor, evidence) WHERE {}",
            gone("d")
        ))?;
        purged.health = self.count(&format!(
            "SELECT count() FROM (SELECT 1 FROM {health} WHERE {} \
             GROUP BY site, at, token, seq)",
            gone("day")
        ))?;
        let latest = |n: &str| {
            format!(
                "SELECT {n} FROM (SELECT argMax(day, (at, received_at)) AS d, \
                 argMax(length(v_vendor), (at, received_at)) AS v, \
                 argMax(length(h_host), (at, received_at)) AS h \
                 FROM {inventories} GROUP BY site, page_view) WHERE {}",
                gone("d")
            )
        };
        purged.inventories = self.count(&latest("count()"))?;
        purged.inventory_vendors = self.count(&latest("sum(v)"))?;
        purged.inventory_hosts = self.count(&latest("sum(h)"))?;
        for (table, ids) in partitions {
            let physical = self.physical(table);
            for id in ids {
                self.events.run(&format!(
                    "ALTER TABLE {physical} DROP PARTITION ID {}",
                    quote(&id)
                ))?;
            }
        }
        Ok(purged)
    }
}
