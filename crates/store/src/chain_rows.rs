//! Health reports and inventories in a site's chain (issue 15), pure: their
//! canonical forms, their entry kinds, and the check of the rows a store or
//! a bundle holds against their latest entries. `chain.rs` links every
//! entry, whatever its kind, and checks findings; this module adds what is
//! particular to these two tables. docs/evidence.md describes the format.
//!
//! A health report is inserted once and never changes: one entry of kind
//! `health` when a commit stores it. An inventory is replaced as its page
//! view goes on (the newest report wins, with its vendor and host child
//! rows): one entry of kind `inventory` for each state a commit leaves,
//! over the parent row and its children together.
//!
//! Canonical form of a health row (version 1): the ASCII tag
//! `tagwatch-health-v1`, then
//!
//! | field       | written as     |
//! |-------------|----------------|
//! | id          | int            |
//! | site        | text           |
//! | page_view   | optional text  |
//! | page        | text           |
//! | status      | text           |
//! | reason      | optional text  |
//! | at          | text           |
//! | received_at | text           |
//! | user_agent  | text           |
//! | raw         | text           |
//! | release     | optional text  |
//!
//! Canonical form of an inventory (version 1): the ASCII tag
//! `tagwatch-inventory-v1`, then the `inventories` row: id (int), site,
//! page_view, page, at, received_at, user_agent, raw (text), release
//! (optional text); then the number of `inventory_vendors` rows (int) and
//! each, in byte order of `vendor`: vendor (text), requests,
//! script_requests, transfer_bytes, encoded_bytes, duration_ms (int),
//! hosts, regions, cookies (text: the JSON arrays as stored); then the
//! number of `inventory_hosts` rows (int) and each, in byte order of
//! `host`: host (text), requests, script_requests, transfer_bytes,
//! encoded_bytes, duration_ms (int). *int*, *text* and *optional text* as
//! in a finding's form (`chain.rs`).
//!
//! The events store (ClickHouse, `--events`) keeps each health report and
//! each inventory a commit inserts as a row that never changes (an
//! inventory's vendors and hosts are arrays in its row): the control plane
//! chains each such row version as an entry of kind `health-version` or
//! `inventory-version`, with the same forms — `id` its row key
//! (`tagwatch_events::chain`), `release` NULL when stored empty, and a
//! vendor's hosts, regions and cookies the JSON arrays [`json_list`] writes
//! of its `Array(String)` cells, as the SQL store writes them. Such rows
//! are checked as sets, like finding row versions (`chain_versions.rs`); a
//! bundle's rows are checked here, against their one entry.
//!
//! A purge appends a `health-removed` or `inventory-removed` entry for each
//! row it deletes (the digest and `at` of the state it had) before the
//! checkpoint that counts them: its `health` and `inventories` equal the
//! removals of each since the checkpoint before. A checkpoint recorded
//! before these tables were chained counted them without removal entries
//! (zero removals): its signed boundary still fixes everything before it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::chain::{sha256, Canon, Checkpoint, Entry, Hash, Problem, Rows, Stored, CHECKPOINT};

/// Entry kind of a stored health report.
pub const HEALTH: &str = "health";
/// Entry kind of an inventory's state (its row and child rows).
pub const INVENTORY: &str = "inventory";
/// Entry kind of a health report a purge removed (digest: the row's).
pub const HEALTH_REMOVED: &str = "health-removed";
/// Entry kind of an inventory a purge removed (digest: its last state's).
pub const INVENTORY_REMOVED: &str = "inventory-removed";
/// Entry kind of a health row version an events store inserted (row: its
/// row key).
pub const HEALTH_VERSION: &str = "health-version";
/// Entry kind of an inventory row version an events store inserted (row:
/// its row key; vendors and hosts are in the row).
pub const INVENTORY_VERSION: &str = "inventory-version";
/// The entry kinds this module checks.
pub const KINDS: [&str; 6] = [
    HEALTH,
    INVENTORY,
    HEALTH_REMOVED,
    INVENTORY_REMOVED,
    HEALTH_VERSION,
    INVENTORY_VERSION,
];

/// JSON text of a string list, as `inventory_vendors` keeps a vendor's
/// hosts, regions and cookies (and the form hashes an events store's
/// arrays).
pub fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// A stored health row, every column of its canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    pub id: i64,
    pub site: String,
    pub page_view: Option<String>,
    pub page: String,
    pub status: String,
    pub reason: Option<String>,
    pub at: String,
    pub received_at: String,
    pub user_agent: String,
    pub raw: String,
    pub release: Option<String>,
}

impl HealthState {
    /// The canonical form (module comment).
    pub fn canonical(&self) -> Vec<u8> {
        let mut c = Canon::new("tagwatch-health-v1");
        c.int(self.id)
            .text(&self.site)
            .opt(self.page_view.as_deref())
            .text(&self.page)
            .text(&self.status)
            .opt(self.reason.as_deref())
            .text(&self.at)
            .text(&self.received_at)
            .text(&self.user_agent)
            .text(&self.raw)
            .opt(self.release.as_deref());
        c.0
    }

    pub fn digest(&self) -> Hash {
        sha256(&self.canonical())
    }

    pub fn stored(&self) -> Stored {
        Stored {
            digest: self.digest(),
            at: self.at.clone(),
        }
    }
}

/// Usage numbers of a vendor or host row, in the form's order.
pub type UsageInts = [i64; 5];

/// The usage columns of a vendor or host row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowUsage {
    pub requests: i64,
    pub script_requests: i64,
    pub transfer_bytes: i64,
    pub encoded_bytes: i64,
    pub duration_ms: i64,
}

impl From<&crate::Usage> for RowUsage {
    fn from(u: &crate::Usage) -> Self {
        RowUsage {
            requests: u.requests,
            script_requests: u.script_requests,
            transfer_bytes: u.transfer_bytes,
            encoded_bytes: u.encoded_bytes,
            duration_ms: u.duration_ms,
        }
    }
}

impl RowUsage {
    /// In the canonical form's order.
    pub fn ints(&self) -> UsageInts {
        [
            self.requests,
            self.script_requests,
            self.transfer_bytes,
            self.encoded_bytes,
            self.duration_ms,
        ]
    }
}

/// An `inventory_vendors` row (less its parent's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorRow {
    pub vendor: String,
    #[serde(flatten)]
    pub usage: RowUsage,
    /// JSON arrays of strings, as stored.
    pub hosts: String,
    pub regions: String,
    pub cookies: String,
}

/// An `inventory_hosts` row (less its parent's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRow {
    pub host: String,
    #[serde(flatten)]
    pub usage: RowUsage,
}

/// A stored inventory: its row and its child rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryState {
    pub id: i64,
    pub site: String,
    pub page_view: String,
    pub page: String,
    pub at: String,
    pub received_at: String,
    pub user_agent: String,
    /// The report body as stored (redacted on ingest).
    pub raw: String,
    pub release: Option<String>,
    pub vendors: Vec<VendorRow>,
    pub hosts: Vec<HostRow>,
}

/// A vendor row borrowed: (vendor, usage, [hosts, regions, cookies]).
pub type VendorPart<'a> = (&'a str, UsageInts, [&'a str; 3]);
/// A host row borrowed: (host, usage).
pub type HostPart<'a> = (&'a str, UsageInts);

/// An inventory's fields borrowed: what the writer hashes from a
/// statement's parameters and a reader from the rows it read, through the
/// one [`InventoryParts::canonical`].
pub struct InventoryParts<'a> {
    pub id: i64,
    pub site: &'a str,
    pub page_view: &'a str,
    pub page: &'a str,
    pub at: &'a str,
    pub received_at: &'a str,
    pub user_agent: &'a str,
    pub raw: &'a str,
    pub release: Option<&'a str>,
    /// Any order.
    pub vendors: Vec<VendorPart<'a>>,
    /// Any order.
    pub hosts: Vec<HostPart<'a>>,
}

impl<'a> InventoryParts<'a> {
    /// The parts of `inv` as a writer stored it under `id`, with its
    /// release as stored (`None` for none) and its child rows.
    pub fn of(
        inv: &'a crate::InventoryRecord,
        id: i64,
        release: Option<&'a str>,
        vendors: Vec<VendorPart<'a>>,
        hosts: Vec<HostPart<'a>>,
    ) -> Self {
        InventoryParts {
            id,
            site: &inv.site,
            page_view: &inv.page_view,
            page: &inv.page,
            at: &inv.at,
            received_at: &inv.received_at,
            user_agent: &inv.user_agent,
            raw: &inv.raw,
            release,
            vendors,
            hosts,
        }
    }
}

impl InventoryParts<'_> {
    /// The canonical form (module comment): children in key order.
    pub fn canonical(mut self) -> Vec<u8> {
        self.vendors.sort_unstable_by(|a, b| a.0.cmp(b.0));
        self.hosts.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let mut c = Canon::new("tagwatch-inventory-v1");
        c.int(self.id)
            .text(self.site)
            .text(self.page_view)
            .text(self.page)
            .text(self.at)
            .text(self.received_at)
            .text(self.user_agent)
            .text(self.raw)
            .opt(self.release)
            .int(count(self.vendors.len()));
        for (vendor, usage, lists) in &self.vendors {
            c.text(vendor);
            for n in usage {
                c.int(*n);
            }
            for l in lists {
                c.text(l);
            }
        }
        c.int(count(self.hosts.len()));
        for (host, usage) in &self.hosts {
            c.text(host);
            for n in usage {
                c.int(*n);
            }
        }
        c.0
    }

    pub fn digest(self) -> Hash {
        sha256(&self.canonical())
    }
}

impl InventoryState {
    pub fn parts(&self) -> InventoryParts<'_> {
        InventoryParts {
            id: self.id,
            site: &self.site,
            page_view: &self.page_view,
            page: &self.page,
            at: &self.at,
            received_at: &self.received_at,
            user_agent: &self.user_agent,
            raw: &self.raw,
            release: self.release.as_deref(),
            vendors: self
                .vendors
                .iter()
                .map(|v| {
                    (
                        v.vendor.as_str(),
                        v.usage.ints(),
                        [v.hosts.as_str(), v.regions.as_str(), v.cookies.as_str()],
                    )
                })
                .collect(),
            hosts: self
                .hosts
                .iter()
                .map(|h| (h.host.as_str(), h.usage.ints()))
                .collect(),
        }
    }

    /// The canonical form (module comment).
    pub fn canonical(&self) -> Vec<u8> {
        self.parts().canonical()
    }

    pub fn digest(&self) -> Hash {
        self.parts().digest()
    }

    pub fn stored(&self) -> Stored {
        Stored {
            digest: self.digest(),
            at: self.at.clone(),
        }
    }
}

/// The largest health and inventory ids a store held when these tables
/// began to be chained (schema version 10): a row at or below them with no
/// entry was stored before, and is not proven rather than inserted behind
/// the collector's back. Zero for a store made since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchained {
    pub health: i64,
    pub inventories: i64,
}

/// What [`verify`] checks, beside `chain::Check`.
pub struct Check<'a> {
    pub site: &'a str,
    /// Entries in seq order (links are `chain::verify`'s).
    pub entries: &'a [Entry],
    /// The rows at hand, by id.
    pub health: &'a BTreeMap<i64, Stored>,
    pub inventories: &'a BTreeMap<i64, Stored>,
    pub rows: Rows,
    pub checkpoints: &'a BTreeMap<i64, Checkpoint>,
    pub unchained: Unchained,
}

/// One table's side of the check.
struct Table<'a> {
    /// "health report" or "inventory", for messages.
    noun: &'static str,
    kind: &'static str,
    /// The kind of the events store's row versions of the table.
    version: &'static str,
    removed: &'static str,
    rows: &'a BTreeMap<i64, Stored>,
    unchained: i64,
    latest: BTreeMap<i64, &'a Entry>,
    removals: Vec<&'a Entry>,
}

/// Every problem of the site's health reports and inventories against the
/// chain (empty: they verify).
pub fn verify(check: &Check<'_>) -> Vec<Problem> {
    let site = check.site;
    let mut out = Vec::new();
    let mut tables = [
        Table {
            noun: "health report",
            kind: HEALTH,
            version: HEALTH_VERSION,
            removed: HEALTH_REMOVED,
            rows: check.health,
            unchained: check.unchained.health,
            latest: BTreeMap::new(),
            removals: Vec::new(),
        },
        Table {
            noun: "inventory",
            kind: INVENTORY,
            version: INVENTORY_VERSION,
            removed: INVENTORY_REMOVED,
            rows: check.inventories,
            unchained: check.unchained.inventories,
            latest: BTreeMap::new(),
            removals: Vec::new(),
        },
    ];
    for e in check.entries {
        for t in &mut tables {
            if e.kind == t.kind || e.kind == t.version {
                t.latest.insert(e.row, e);
            } else if e.kind == t.removed {
                t.latest.insert(e.row, e);
                t.removals.push(e);
            }
        }
        if e.kind != CHECKPOINT {
            continue;
        }
        // A missing or changed checkpoint is `chain::verify`'s to say.
        let Some(cp) = check.checkpoints.get(&e.row) else {
            continue;
        };
        for (t, counted) in tables.iter_mut().zip([cp.health, cp.inventories]) {
            let n = i64::try_from(t.removals.len()).unwrap_or(i64::MAX);
            // Zero removals: a checkpoint from before these tables were
            // chained (module comment).
            if n != 0 && n != counted {
                out.push(Problem(format!(
                    "checkpoint {} (seq {}) records {counted} {} rows removed, but {n} removals come before it",
                    cp.id,
                    e.seq,
                    t.noun
                )));
            }
            t.removals.clear();
        }
    }
    for t in &tables {
        for e in &t.removals {
            out.push(Problem(format!(
                "the removal of {} {} at seq {} of site {site} has no checkpoint after it: the purge that recorded it did not finish, or its checkpoint was deleted",
                t.noun, e.row, e.seq
            )));
        }
        for (id, row) in t.rows {
            match t.latest.get(id) {
                None if *id <= t.unchained => {}
                None => out.push(Problem(format!(
                    "{} {id} of site {site} is not in the chain: it was inserted without the collector",
                    t.noun
                ))),
                Some(e) if e.kind == t.removed => out.push(Problem(format!(
                    "{} {id} of site {site} was removed at seq {} but is there again: it was put back without the collector",
                    t.noun, e.seq
                ))),
                Some(e) if e.digest != row.digest || e.at != row.at => out.push(Problem(format!(
                    "{} {id} of site {site} was edited after it was stored (its latest state is seq {})",
                    t.noun, e.seq
                ))),
                Some(_) => {}
            }
        }
        if check.rows == Rows::All {
            for (id, e) in &t.latest {
                if (e.kind == t.kind || e.kind == t.version) && !t.rows.contains_key(id) {
                    out.push(Problem(format!(
                        "{} {id} of site {site} (seq {}) was deleted: no purge records its removal",
                        t.noun, e.seq
                    )));
                }
            }
        }
    }
    out
}

/// How many rows at hand are not proven: stored before these tables were
/// chained, no entry since (health reports, inventories).
pub fn unproven(check: &Check<'_>) -> (usize, usize) {
    let chained = |kind: &str, removed: &str| -> std::collections::BTreeSet<i64> {
        check
            .entries
            .iter()
            .filter(|e| e.kind == kind || e.kind == removed)
            .map(|e| e.row)
            .collect()
    };
    let (mut h, mut i) = (
        chained(HEALTH, HEALTH_REMOVED),
        chained(INVENTORY, INVENTORY_REMOVED),
    );
    h.extend(chained(HEALTH_VERSION, HEALTH_VERSION));
    i.extend(chained(INVENTORY_VERSION, INVENTORY_VERSION));
    (
        check
            .health
            .keys()
            .filter(|id| **id <= check.unchained.health && !h.contains(id))
            .count(),
        check
            .inventories
            .keys()
            .filter(|id| **id <= check.unchained.inventories && !i.contains(id))
            .count(),
    )
}
