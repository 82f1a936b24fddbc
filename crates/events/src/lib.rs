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
//! wrote them to its parts (on a cluster: every shard wrote its rows to its
//! parts, the inserts being synchronous, `client.rs`). That is what
//! "acknowledged" means with ClickHouse (docs/collector.md#clickhouse---events).

use std::sync::Arc;

use std::collections::{BTreeMap, BTreeSet};

use tagwatch_store::chain::{self as store_chain, FindingState};
use tagwatch_store::chain_rows::{self, HealthState, InventoryState};
use tagwatch_store::chain_versions;
use tagwatch_store::timefmt::{iso_from_ms, now_ms};
use tagwatch_store::{
    Batch, ChainDump, Evidence, EvidenceQuery, FindingRecord, FindingRow, FindingsQuery, FirstSeen,
    HealthQuery, HealthRow, InventoryQuery, InventoryTotals, Purged, ReleaseInfo, ReleaseNews,
    ReleaseProfile, Removed, SiteChange, SiteConfig, SiteInfo, Stats, StatsQuery, Store,
    StoreError,
};

pub mod chain;
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
    /// Called at each [`Step`] (tests interleave other work there).
    at_step: Option<StepHook>,
}

/// A point between two reads or writes of a `verify` or a purge where
/// another collector's work may land: what a test runs something at, to
/// check the interleaving deterministically (`testing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `Store::chain` has read the chain, not yet the rows.
    ChainRead,
    /// A purge has read the rows of the weeks that go, not yet recorded
    /// their removals.
    PurgeRead,
    /// A purge has recorded the removals, not yet dropped the weeks.
    PurgeRecorded,
    /// A commit has inserted its rows into ClickHouse, not yet chained
    /// them (a collector that stalls there).
    Inserted,
}

/// How long after it was observed a report may still be inserted: the
/// oldest `age` a report may carry (the wire's limit, CSP reports' too),
/// and a day for its way through the collector and for clocks. A purge
/// whose `before` is older than now minus this meets no late report
/// (docs/evidence.md#late-reports-of-a-purged-week).
const LATE_REPORT_REACH_MS: i64 = {
    const DAY_MS: i64 = 86_400_000;
    tagwatch_core::report::read::MAX_AGE_MS as i64 + DAY_MS
};

type StepHook = Arc<dyn Fn(Step) + Send + Sync>;

/// Opens the events store a `--events` URL names
/// (`clickhouse://[USER[:PASSWORD]@]HOST:PORT/DATABASE[?cluster=NAME]`),
/// creating or migrating its tables, and answers the store the collector
/// uses: `control` for sites and settings, ClickHouse for reports.
pub fn open(url: &str, control: Arc<dyn Store>) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, control, None)
}

/// As [`open`], calling `hook` at each [`Step`].
#[cfg(any(test, feature = "testing"))]
pub fn open_with_steps(
    url: &str,
    control: Arc<dyn Store>,
    hook: impl Fn(Step) + Send + Sync + 'static,
) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, control, Some(Arc::new(hook)))
}

fn open_with(
    url: &str,
    control: Arc<dyn Store>,
    at_step: Option<StepHook>,
) -> Result<Arc<dyn Store>, StoreError> {
    let events = Client::new(Target::parse(url)?);
    schema::migrate(&events)?;
    Ok(Arc::new(Split {
        control,
        events,
        at_step,
    }))
}

impl Split {
    fn step(&self, step: Step) {
        if let Some(hook) = &self.at_step {
            hook(step);
        }
    }

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

    /// Records in each site's chain what a purge is about to drop (`gone`
    /// says whether a day is in a dropped week): a removal entry per
    /// finding, health and inventory row version and a checkpoint counting
    /// them, whose `before` is the Monday the kept weeks start on (what
    /// really goes: whole weeks). Answers that `before` and the sites
    /// whose chains it recorded in.
    fn chain_removals_of(
        &self,
        cutoff: &str,
        gone: &dyn Fn(&str) -> String,
        [findings, health, inventories]: [&str; 3],
    ) -> Result<(String, Vec<String>), StoreError> {
        let monday = self
            .events
            .rows(&format!("SELECT toString(toMonday(toDate({cutoff})))"))?
            .first()
            .and_then(|row| row.first())
            .map(text)
            .transpose()?
            .unwrap_or_default();
        let before = format!("{monday}T00:00:00.000Z");
        let answers = self.events.rows_at_once(&[
            format!(
                "SELECT {} FROM {findings} WHERE {}",
                chain::COLUMNS,
                gone("day")
            ),
            format!(
                "SELECT {} FROM {health} WHERE {}",
                chain::HEALTH_COLUMNS,
                gone("day")
            ),
            format!(
                "SELECT {} FROM {inventories} WHERE {}",
                chain::INVENTORY_COLUMNS,
                gone("day")
            ),
        ])?;
        let [finding_rows, health_rows, inventory_rows]: [Vec<Vec<serde_json::Value>>; 3] =
            answers.try_into().map_err(|_| StoreError::Events {
                message: "fewer answers than queries".into(),
                unreachable: false,
            })?;
        let mut removed: BTreeMap<String, Removed> = BTreeMap::new();
        // A version ClickHouse holds twice (not merged yet) goes once.
        let mut seen = BTreeSet::new();
        for row in &finding_rows {
            let (f, _) = chain::stored(row)?;
            let digest = f.digest();
            if seen.insert((0, f.site.clone(), f.id, digest)) {
                removed
                    .entry(f.site)
                    .or_default()
                    .findings
                    .push((f.id, f.at, digest));
            }
        }
        for row in &health_rows {
            let (h, _) = chain::health_stored(row)?;
            let digest = h.digest();
            if seen.insert((1, h.site.clone(), h.id, digest)) {
                removed
                    .entry(h.site)
                    .or_default()
                    .health
                    .push((h.id, h.at, digest));
            }
        }
        for row in &inventory_rows {
            let (inv, _) = chain::inventory_stored(row)?;
            let digest = inv.digest();
            if seen.insert((2, inv.site.clone(), inv.id, digest)) {
                removed
                    .entry(inv.site)
                    .or_default()
                    .inventories
                    .push((inv.id, inv.at, digest));
            }
        }
        for r in removed.values_mut() {
            for rows in [&mut r.findings, &mut r.health, &mut r.inventories] {
                rows.sort_by_key(|(id, _, _)| *id);
            }
        }
        // Rows of a site the control plane does not know were not written
        // by a collector of it (and have no chain to record them in).
        let mut known = BTreeMap::new();
        for (site, r) in removed {
            if self.control.site_config(&site)?.is_some() {
                known.insert(site, r);
            }
        }
        let mut removed = known;
        // A report inserted from now on may land in a dropped week (a late
        // report): then every site gets the checkpoints, those with no
        // row read too, so that its commit finds a checkpoint it must
        // leave such a row out for, or that accounts for it
        // (docs/evidence.md#late-reports-of-a-purged-week).
        let reach = iso_from_ms(now_ms().saturating_sub(LATE_REPORT_REACH_MS));
        if chain_versions::partition_day(&reach) < monday.as_str() {
            for site in self.control.list_sites()? {
                removed.entry(site.site).or_default();
            }
        }
        self.step(Step::PurgeRead);
        if !removed.is_empty() {
            self.control.chain_removals(&before, &removed)?;
        }
        Ok((before, removed.into_keys().collect()))
    }

    /// The page views' inventory and health row versions, for a bundle
    /// (each once).
    fn page_views_of(
        &self,
        site: &str,
        views: &BTreeSet<&str>,
    ) -> Result<(Vec<InventoryState>, Vec<HealthState>), StoreError> {
        if views.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let list: Vec<String> = views.iter().map(|v| quote(v)).collect();
        let filter = format!(" AND page_view IN ({})", list.join(", "));
        let mut seen = BTreeSet::new();
        let inventories = chain::inventory_rows(&self.events, site, &filter)?
            .into_iter()
            .map(|(inv, _)| inv)
            .filter(|inv| seen.insert((0, inv.id, inv.digest())))
            .collect();
        let health = chain::health_rows(&self.events, site, &filter)?
            .into_iter()
            .map(|(h, _)| h)
            .filter(|h| seen.insert((1, h.id, h.digest())))
            .collect();
        Ok((inventories, health))
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

    /// The group's rows into ClickHouse (one INSERT per table), then, in
    /// one SQL transaction, its finding types and a chain entry for every
    /// finding, health and inventory row version inserted (`chain.rs`). Whatever fails, the
    /// whole group is refused and may be sent again: rows already
    /// inserted are replaced by the same rows (their token), never added
    /// twice, and a version chained twice is one version to `verify`.
    /// Stopped between the two writes, the collector leaves rows no entry
    /// covers (not acknowledged): `verify` calls them not proven.
    fn commit(&self, batches: &[&Batch]) -> Result<Vec<FirstSeen>, StoreError> {
        // The tables' INSERTs at once (each is a round trip and a new
        // part on the server): a group waits for the slowest, not the sum.
        let (statements, versions) = write::inserts(batches);
        client::at_once(&statements, |sql| self.events.run(sql))?;
        self.step(Step::Inserted);
        if versions.is_empty() {
            return Ok(Vec::new());
        }
        let findings: Vec<&FindingRecord> =
            batches.iter().flat_map(|b| b.findings.iter()).collect();
        self.control.chain_versions(&findings, &versions)
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
    /// that whole week is old enough, and the current week stays until it
    /// is over.
    /// Counts what goes first (findings by dedupe key, inventories by page
    /// view). `limit` does not apply: dropping a partition is one cheap
    /// metadata change, however many rows it holds.
    fn purge(&self, before: &str, _limit: u32) -> Result<Purged, StoreError> {
        // The week not over yet is never dropped, whatever `before` says:
        // reports still land in it, and a collector looks a purge's
        // checkpoints up only for rows of the weeks before it
        // (docs/evidence.md#late-reports-of-a-purged-week).
        let current_week = chain_versions::week_start(now_ms());
        let day = before
            .get(..10)
            .unwrap_or(before)
            .min(current_week.as_str());
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
        // The chain first: if recording fails, nothing is dropped.
        let (before, sites) =
            self.chain_removals_of(&cutoff, &gone, [&findings, &health, &inventories])?;
        self.step(Step::PurgeRecorded);
        for (table, ids) in partitions {
            let physical = self.physical(table);
            for id in ids {
                self.events.run(&format!(
                    "ALTER TABLE {physical} DROP PARTITION ID {}",
                    quote(&id)
                ))?;
            }
        }
        // Then a checkpoint with no removal in the same chains: the weeks
        // before `before` went, with any report that landed in them after
        // the rows were read (a late report chained after the first
        // checkpoint; `chain_versions::verify` accounts for a chained row
        // missing from them by a checkpoint after its entry).
        let none: BTreeMap<String, Removed> = sites
            .into_iter()
            .map(|site| (site, Removed::default()))
            .collect();
        if !none.is_empty() {
            self.control.chain_removals(&before, &none)?;
        }
        Ok(purged)
    }

    fn sign_checkpoints(&self, key: store_chain::SigningKey) {
        self.control.sign_checkpoints(key);
    }

    /// The site's chain from the control plane, then (after it: a row
    /// chained meanwhile is not missing) every finding, health and
    /// inventory row version ClickHouse holds of the site, then the
    /// entries appended meanwhile (a purge's removals of rows it dropped
    /// since the first read; `ChainDump::versions_read_at`).
    fn chain(&self, site: &str) -> Result<ChainDump, StoreError> {
        let mut dump = self.control.chain(site)?;
        let read_at = dump.entries.last().map_or(0, |e| e.seq);
        self.step(Step::ChainRead);
        let mut versions: Vec<_> = chain::versions(&self.events, site, "")?
            .iter()
            .map(|(f, token)| chain::version(f, *token))
            .collect();
        versions.extend(
            chain::health_rows(&self.events, site, "")?
                .iter()
                .map(|(h, token)| chain::health_version(h, *token)),
        );
        versions.extend(
            chain::inventory_rows(&self.events, site, "")?
                .iter()
                .map(|(inv, token)| chain::inventory_version(inv, *token)),
        );
        dump.versions = Some(versions);
        let tail = self.control.chain_since(site, read_at.saturating_add(1))?;
        dump.entries.extend(tail.entries);
        dump.checkpoints.extend(tail.checkpoints);
        dump.versions_read_at = Some(read_at);
        Ok(dump)
    }

    /// The row versions of the window (or the one whose row key is
    /// `finding`) that the chain covers, their page views' chained health
    /// rows and latest chained inventory, and the segment from the oldest
    /// of their entries to the head. Rows no entry covers are left out
    /// (findings counted: `Evidence::left_out`).
    fn evidence(&self, q: &EvidenceQuery) -> Result<Evidence, StoreError> {
        let mut filter = String::new();
        if let Some(since) = &q.since {
            filter.push_str(&format!(" AND at >= {}", quote(since)));
        }
        if let Some(until) = &q.until {
            filter.push_str(&format!(" AND at < {}", quote(until)));
        }
        let mut seen = BTreeSet::new();
        let rows: Vec<FindingState> = chain::versions(&self.events, &q.site, &filter)?
            .into_iter()
            .map(|(f, _)| f)
            .filter(|f| q.finding.is_none_or(|id| f.id == id))
            .filter(|f| seen.insert((f.id, f.digest())))
            .collect();
        let ids: BTreeSet<i64> = rows.iter().map(|f| f.id).collect();
        let ids: Vec<i64> = ids.into_iter().collect();
        let segment = self.control.chain_segment(&q.site, &ids)?;
        // Rows the segment names (a row edited since is kept: its bundle
        // then fails to verify, as it should).
        let chained = |segment: &ChainDump, kind: &str| -> BTreeSet<i64> {
            segment
                .entries
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| e.row)
                .collect()
        };
        let covered = chained(&segment, store_chain::VERSION);
        let total = rows.len();
        let mut findings: Vec<FindingState> = rows
            .into_iter()
            .filter(|f| covered.contains(&f.id))
            .collect();
        let left_out = total - findings.len();
        findings.truncate(usize::try_from(q.limit).unwrap_or(usize::MAX));
        let views: BTreeSet<&str> = findings.iter().map(|f| f.page_view.as_str()).collect();
        let (inventories, health) = self.page_views_of(&q.site, &views)?;
        // The segment again, from the oldest entry of any row the bundle
        // holds (the findings' too: it reaches at least as far back).
        let mut all = ids;
        all.extend(inventories.iter().map(|i| i.id));
        all.extend(health.iter().map(|h| h.id));
        let segment = self.control.chain_segment(&q.site, &all)?;
        let (health_chained, inventory_chained) = (
            chained(&segment, chain_rows::HEALTH_VERSION),
            chained(&segment, chain_rows::INVENTORY_VERSION),
        );
        let health: Vec<HealthState> = health
            .into_iter()
            .filter(|h| health_chained.contains(&h.id))
            .collect();
        // Each page view's latest chained inventory (read in time order).
        let mut latest: BTreeMap<String, InventoryState> = BTreeMap::new();
        for inv in inventories {
            if inventory_chained.contains(&inv.id) {
                latest.insert(inv.page_view.clone(), inv);
            }
        }
        Ok(Evidence {
            findings,
            chain: segment,
            inventories: latest.into_values().collect(),
            health,
            left_out,
        })
    }
}
