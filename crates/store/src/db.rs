//! The store, written once over any [`Conn`]: connections (one writer, a
//! few readers, reopened when they break), every write and every query.
//! SQLite and PostgreSQL differ only in what `sqlite.rs` and `postgres.rs`
//! implement of [`Conn`], and in the dialect tokens of the SQL below
//! (`schema::render`).
//!
//! Writes: a group commit is one transaction. Its findings are merged by
//! dedupe key and its inventories by page view first (in Rust, with the
//! same rules the upserts apply), then written in key order — so that
//! collectors sharing a PostgreSQL database lock rows in the same order
//! and never deadlock — with a few multi-row statements per table.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ed25519_dalek::SigningKey;

use crate::chain::{
    self, hash_from_hex, to_hex, Checkpoint, Entry, FindingState, FindingStateRef, Hash, GENESIS,
};
use crate::chain_rows::{
    self, HealthState, HostPart, HostRow, InventoryParts, InventoryState, RowUsage, VendorPart,
    VendorRow,
};
use crate::chain_versions::{self, Inserted};
use crate::conn::{first, rows, transaction, Conn, Param, Row, Tx};
use crate::schema::{
    binds_columns, render, row_columns, Backfill, Dialect, MIGRATIONS, SCHEMA_VERSION,
};
use crate::timefmt::now_ms;
use crate::{
    each_release_item, release_items, Batch, ChainDump, ConsentTally, Evidence, EvidenceQuery,
    FindingRecord, FindingRow, FindingsQuery, FirstSeen, HealthQuery, HealthRecord, HealthRow,
    HostTotals, InventoryQuery, InventoryRecord, InventoryTotals, Named, PreparedBatch, Purged,
    ReleaseInfo, ReleaseItem, ReleaseItemKind, ReleaseNews, ReleaseProfile, ReleaseRows, Removed,
    SiteChange, SiteConfig, SiteInfo, SiteRelease, Stats, StatsQuery, Store, StoreError, Tally,
    Usage, VendorTotals,
};

/// Most rows written by one multi-row statement. Larger groups take
/// several; smaller ones the largest power of two that fits, then the next
/// (so each table needs at most 9 prepared statements). 256 rows of the
/// widest table (findings, 16 columns) are 4,096 parameters, under both databases' limits
/// (SQLite 32,766; PostgreSQL 65,535); a group of 32 batches of 14
/// findings is two statements (each one round trip to PostgreSQL).
const MAX_ROWS: usize = 256;
/// Tries of a commit that PostgreSQL rolled back for a deadlock or a
/// serialization failure.
const COMMIT_ATTEMPTS: u32 = 3;

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Writer,
    Reader,
}

type Connect<C> = Box<dyn Fn(Role) -> Result<C, StoreError> + Send + Sync>;
type Slot<C> = Mutex<Option<C>>;

/// The store over connections of one kind.
pub(crate) struct Db<C: Conn> {
    connect: Connect<C>,
    /// The write connection (the one migrated), and the one reads use when
    /// the store has no read connections.
    writer: Slot<C>,
    /// More write connections, opened when first used: a commit on each
    /// may run at the same time as the others ([`Store::writers`]).
    more_writers: Vec<Slot<C>>,
    readers: Vec<Slot<C>>,
    next_reader: AtomicUsize,
    /// (site, finding type) pairs known to be in `site_finding_types`
    /// (committed; the table only grows), so that a group commit writes
    /// only the pairs that may be new. Another collector's pairs are
    /// learnt when ours are found there already.
    known_types: Mutex<KnownTypes>,
    /// (site, release, kind, item) rows known to be in
    /// `site_release_items` (committed; the table only grows): a group's
    /// reports of a release it has seen write nothing more.
    known_release_items: Mutex<KnownReleaseItems>,
    /// Site keys and release texts known to be in `names`, with their ids
    /// (committed; nothing deletes a name, so an id stays its text's): a
    /// group of known names writes no statement for them (schema 15).
    known_names: Mutex<HashMap<String, i64>>,
    /// Signs purge checkpoints (`Store::sign_checkpoints`).
    signing_key: Mutex<Option<SigningKey>>,
}

/// Site key → the finding types it is known to have.
type KnownTypes = HashMap<String, HashSet<&'static str>>;

/// A row of `site_release_items`: site, release, kind, item.
type ReleaseItemKey = (String, String, ReleaseItemKind, String);

/// Rows of `site_release_items` known to be there, looked up by borrowed
/// text: every group's items are checked here on the writer thread, and a
/// set of owned tuples needed four `String`s made per item per check.
#[derive(Default)]
struct KnownReleaseItems {
    /// Site → release → its items.
    sites: HashMap<String, HashMap<String, ReleaseItemSets>>,
    len: usize,
}

#[derive(Default)]
struct ReleaseItemSets {
    finding_types: HashSet<String>,
    vendors: HashSet<String>,
}

impl ReleaseItemSets {
    fn of(&mut self, kind: ReleaseItemKind) -> &mut HashSet<String> {
        match kind {
            ReleaseItemKind::FindingType => &mut self.finding_types,
            ReleaseItemKind::Vendor => &mut self.vendors,
        }
    }

    fn has(&self, kind: ReleaseItemKind, item: &str) -> bool {
        match kind {
            ReleaseItemKind::FindingType => self.finding_types.contains(item),
            ReleaseItemKind::Vendor => self.vendors.contains(item),
        }
    }
}

impl KnownReleaseItems {
    fn contains(&self, &(site, release, kind, item): &ReleaseItem<'_>) -> bool {
        self.sites
            .get(site)
            .and_then(|releases| releases.get(release))
            .is_some_and(|sets| sets.has(kind, item))
    }

    /// Whether every release item of `batches` is known (asked after every
    /// group, on the writer thread). A group's items come in runs of one
    /// site and release, and its findings repeat a few types and vendors:
    /// the (site, release) is looked up once per run, and an item equal to
    /// the last one of its kind there is not looked up again (three hash
    /// look-ups an item before; 1.5–2.5 % of the writer thread's CPU,
    /// docs/benchmarks.md).
    fn all_known(&self, batches: &[&Batch]) -> bool {
        let mut all = true;
        let mut run: Option<(&str, &str, Option<&ReleaseItemSets>)> = None;
        // The last item of each kind asked in the run (each was known).
        let mut last: [Option<&str>; 2] = [None, None];
        each_release_item(batches, |(site, release, kind, item), _| {
            if !all {
                return;
            }
            let sets = match run {
                Some((s, r, sets)) if s == site && r == release => sets,
                _ => {
                    let sets = self.sites.get(site).and_then(|rs| rs.get(release));
                    run = Some((site, release, sets));
                    last = [None, None];
                    sets
                }
            };
            let slot = match kind {
                ReleaseItemKind::FindingType => &mut last[0],
                ReleaseItemKind::Vendor => &mut last[1],
            };
            if *slot == Some(item) {
                return;
            }
            all = sets.is_some_and(|sets| sets.has(kind, item));
            *slot = Some(item);
        });
        all
    }

    fn insert(&mut self, (site, release, kind, item): ReleaseItemKey) {
        let sets = self
            .sites
            .entry(site)
            .or_default()
            .entry(release)
            .or_default();
        if sets.of(kind).insert(item) {
            self.len += 1;
        }
    }
}

/// Most release items remembered as written: a site's releases times its
/// vendors and types, tens of thousands for a busy site's year. Past it
/// the memory starts again empty (the table still says what is there;
/// only a few rows are written again, as no-ops).
const MAX_KNOWN_RELEASE_ITEMS: usize = 100_000;

/// Most names ([`Db::known_names`]) kept in memory: a release is any text
/// a report names, so a site could send many; past this the map starts
/// again (each name then costs one look-up the next time it is written).
const MAX_KNOWN_NAMES: usize = 100_000;

fn lock<C>(slot: &Slot<C>) -> MutexGuard<'_, Option<C>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: Conn> Db<C> {
    /// A store over `writer` (already checked and migrated), `writers - 1`
    /// more write connections (opened when first used) and `readers` read
    /// connections; `connect` opens a new one when one breaks.
    pub(crate) fn new(
        writer: C,
        writers: usize,
        readers: usize,
        connect: Connect<C>,
    ) -> Result<Self, StoreError> {
        let readers = (0..readers)
            .map(|_| connect(Role::Reader).map(|c| Mutex::new(Some(c))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            connect,
            writer: Mutex::new(Some(writer)),
            more_writers: (1..writers).map(|_| Mutex::new(None)).collect(),
            readers,
            next_reader: AtomicUsize::new(0),
            known_types: Mutex::new(HashMap::new()),
            known_release_items: Mutex::new(KnownReleaseItems::default()),
            known_names: Mutex::new(HashMap::new()),
            signing_key: Mutex::new(None),
        })
    }

    /// Runs `f` on the slot's connection, opening one first if there is
    /// none or it broke; a connection that broke during `f` is dropped and
    /// the next call opens a new one (PostgreSQL restarted, a proxy cut
    /// the connection). The error tells whether the connection broke.
    fn attempt<T>(
        &self,
        slot: &Slot<C>,
        role: Role,
        f: impl FnOnce(&mut C) -> Result<T, StoreError>,
    ) -> Result<T, (StoreError, bool)> {
        let mut guard = lock(slot);
        let conn = match guard.take() {
            Some(c) if !c.is_broken() => guard.insert(c),
            _ => guard.insert((self.connect)(role).map_err(|e| (e, true))?),
        };
        let result = f(conn);
        // The end of a connection can show as a FATAL message before the
        // client sees the socket close.
        let broken = conn.is_broken()
            || result
                .as_ref()
                .err()
                .is_some_and(StoreError::lost_connection);
        if broken {
            *guard = None;
        }
        result.map_err(|e| (e, broken))
    }

    /// The (site, finding type) pairs known to be stored.
    fn known_types(&self) -> MutexGuard<'_, KnownTypes> {
        self.known_types
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Commits a group's rows ([`Store::commit`]).
    fn commit_group(&self, group: Group<'_>) -> Result<Vec<FirstSeen>, StoreError> {
        let unknown = unknown_types(&group.types, &self.known_types());
        let mut known: Vec<(&str, i64)> = Vec::new();
        let mut missing: Vec<&str> = Vec::new();
        {
            let names = self.known_names();
            for name in group.names() {
                match names.get(name) {
                    Some(id) => known.push((name, *id)),
                    None => missing.push(name),
                }
            }
        }
        let (first_seen, made) = self.write_tx(|c| {
            let made = name_ids(c, &missing)?;
            let ids = known.iter().chain(&made).copied().collect();
            let first_seen = write_group(c, &group, &unknown, &Names::new(ids))?;
            Ok((first_seen, made))
        })?;
        // Only what was not known is new (the set only grows): most
        // commits have nothing to learn, and asking cost ≈ 6,000
        // instructions a batch.
        learn_types(&mut self.known_types(), &unknown);
        if !made.is_empty() {
            let mut names = self.known_names();
            if names.len() + made.len() > MAX_KNOWN_NAMES {
                names.clear();
            }
            names.extend(made.into_iter().map(|(n, id)| (n.to_owned(), id)));
        }
        Ok(first_seen)
    }

    /// The names known to be in `names`, with their ids.
    fn known_names(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        self.known_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a write on a write connection: a free one if any (commits of
    /// several writer threads run at once), else the first.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut C) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let slot = std::iter::once(&self.writer)
            .chain(&self.more_writers)
            .find(|slot| slot.try_lock().is_ok())
            .unwrap_or(&self.writer);
        self.attempt(slot, Role::Writer, f).map_err(|(e, _)| e)
    }

    /// Runs `f` in a write transaction on the write connection, again (up
    /// to `COMMIT_ATTEMPTS` in all) when it failed in a way a retry can fix.
    fn write_tx<T>(&self, f: impl Fn(&mut C) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.write(|c| {
            let mut attempt = 1;
            loop {
                match transaction(c, Tx::Write, &f) {
                    Err(e) if attempt < COMMIT_ATTEMPTS && e.retryable() => attempt += 1,
                    other => return other,
                }
            }
        })
    }

    /// Runs a read on a read connection: a free one if any, else the next
    /// in turn; the write connection when the store has no readers. A read
    /// that met a dead connection (it only shows when used) runs once more
    /// on a new one: reads are safe to repeat.
    fn read<T>(&self, f: impl Fn(&mut C) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let n = self.readers.len();
        let (slot, role) = match self.readers.iter().find(|slot| slot.try_lock().is_ok()) {
            Some(free) => (free, Role::Reader),
            None if n == 0 => (&self.writer, Role::Writer),
            None => (
                self.readers
                    .get(self.next_reader.fetch_add(1, Ordering::Relaxed) % n)
                    .unwrap_or(&self.writer),
                Role::Reader,
            ),
        };
        match self.attempt(slot, role, &f) {
            Ok(v) => Ok(v),
            Err((_, true)) => self.attempt(slot, role, &f).map_err(|(e, _)| e),
            Err((e, false)) => Err(e),
        }
    }
}

// ------------------------------------------------------------ migrations

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction (other
/// processes migrating at the same time wait for it), refusing a newer
/// one.
pub(crate) fn migrate<C: Conn>(c: &mut C) -> Result<(), StoreError> {
    let target = migrate_up_to();
    transaction(c, Tx::Write, |c| {
        let version = c.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for m in MIGRATIONS
            .iter()
            .filter(|m| m.version > version && m.version <= target)
        {
            c.batch(&render(m.sql, C::DIALECT, 1))?;
            match m.backfill {
                Some(Backfill::FindingColumns) => backfill_finding_columns(c)?,
                None => {}
            }
            if !m.then.is_empty() {
                c.batch(&render(m.then, C::DIALECT, 1))?;
            }
            c.set_schema_version(m.version)?;
        }
        Ok(())
    })
}

#[cfg(test)]
thread_local! {
    /// Tests: the version stores opened on this thread migrate to (a store
    /// as an older build left it, written by this build's statements, to
    /// test the upgrade from it).
    pub(crate) static MIGRATE_UP_TO: std::cell::Cell<i64> =
        const { std::cell::Cell::new(SCHEMA_VERSION) };
}

fn migrate_up_to() -> i64 {
    #[cfg(test)]
    return MIGRATE_UP_TO.with(std::cell::Cell::get);
    #[cfg(not(test))]
    SCHEMA_VERSION
}

/// Rows a backfill reads and updates at a time (bounded memory whatever
/// the size of the store).
const BACKFILL_ROWS: u32 = 1000;

/// Version 6: each stored finding's dedupe key, evidence kind and consent
/// source, computed as a write computes them. An evidence or consent that
/// is not the JSON object it always was written as gets no kind or
/// source (NULL), and still a key.
fn backfill_finding_columns<C: Conn>(c: &mut C) -> Result<(), StoreError> {
    let mut after = 0i64;
    loop {
        let found = rows(
            c,
            "SELECT id, type, vendor, evidence, consent FROM findings WHERE id > ?1 ORDER BY id LIMIT ?2",
            &[after.into(), BACKFILL_ROWS.into()],
            |row| {
                Ok((
                    row.int(0)?,
                    row.text(1)?,
                    row.text(2)?,
                    row.text(3)?,
                    row.text(4)?,
                ))
            },
        )?;
        let Some(last) = found.last() else {
            return Ok(());
        };
        after = last.0;
        for (id, kind, vendor, evidence, consent) in &found {
            let key = dedupe_key(kind, vendor, evidence);
            let field = |json: &str, name: &str| -> Option<String> {
                let v: serde_json::Value = serde_json::from_str(json).ok()?;
                v.get(name)?.as_str().map(str::to_owned)
            };
            c.execute(
                "UPDATE findings SET dedupe = ?2, evidence_kind = ?3, consent_source = ?4 WHERE id = ?1",
                &[
                    Param::Int(*id),
                    Param::Blob(&key),
                    field(evidence, "kind").as_deref().into(),
                    field(consent, "source").as_deref().into(),
                ],
            )?;
        }
    }
}

/// Bytes of a finding's dedupe key: 128 bits of SHA-256, so that no two
/// different (type, vendor, evidence) meet by chance (or by design: the
/// evidence is the client's text) within a page view.
pub const DEDUPE_KEY_BYTES: usize = 16;

/// A finding's dedupe key within its (site, page view): a digest of its
/// type, vendor and canonical evidence, each length-prefixed so that no
/// two different triples have the same input. Stored in `findings.dedupe`;
/// the unique index is (ordinal, dedupe), the ordinal standing for the
/// (site, page view) (schema 14, `schema::V14_PAGE_VIEW_ORDINALS`).
///
/// Why a collision-resistant hash and not a fast one (FxHash, xxHash,
/// SipHash with a fixed key): two findings with the same key in a page
/// view are one row, the second only raising the first's count. The
/// evidence is text the page chose (a cookie's name, a request's path, set
/// by the very third-party tag being judged), so with a hash whose
/// collisions can be computed a tag could name its cookie so that its
/// violation lands on another finding's key and is never stored as its
/// own. A keyed hash with a secret key would also do, but every collector
/// on a database and every stored key would have to share that key. SHA-256
/// truncated to 128 bits leaves ≈ 2^64 work for any collision. Its cost is
/// small where it runs: measured natively on this project's CPUs (SHA
/// extensions), ≈ 0.2 µs a finding; under callgrind, which hides those
/// instructions, it is counted at ≈ 11,000 (docs/benchmarks.md).
pub fn dedupe_key(kind: &str, vendor: &str, evidence: &str) -> [u8; DEDUPE_KEY_BYTES] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [kind, vendor, evidence] {
        h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut key = [0u8; DEDUPE_KEY_BYTES];
    key.copy_from_slice(
        digest
            .get(..DEDUPE_KEY_BYTES)
            .unwrap_or(&[0; DEDUPE_KEY_BYTES]),
    );
    key
}

// ---------------------------------------------------------------- writes

/// A group's findings with one row per dedupe key: the first arrival's
/// fields, the largest count (or the sum, for additive findings) and the
/// earliest `at`, as the upserts would leave them.
struct Merged<'a> {
    first: &'a FindingRecord,
    key: [u8; DEDUPE_KEY_BYTES],
    count: i64,
    at: &'a str,
}

impl<'a> Merged<'a> {
    /// The row its insert writes (`id` 0: the store picks it): the
    /// statement's parameters, and the state the chain records when the
    /// insert stores a new row.
    fn row(&self) -> FindingStateRef<'a> {
        let f = self.first;
        FindingStateRef::of(f, 0, self.count, self.at, f.release.as_deref())
    }
}

/// The rows of a group commit, merged and in the order they are written.
struct Group<'a> {
    /// By dedupe key.
    findings: Vec<Merged<'a>>,
    /// The first finding of each (site, type) in arrival order: what may
    /// be a type the site never had.
    types: Vec<&'a FindingRecord>,
    /// In arrival order (no key).
    health: Vec<&'a HealthRecord>,
    /// One per (site, page view), by key: the one observed last (on equal
    /// `at`, the one that arrived last), as the upsert would leave it.
    inventories: Vec<&'a InventoryRecord>,
    /// The (site, page view) of every finding and inventory, once each,
    /// in key order (the order every writer locks them in).
    page_views: Vec<PageView<'a>>,
}

/// A page view of a site: `page_views`' key.
type PageView<'a> = (&'a str, &'a str);

/// A commit's page views with their ordinals ([`page_view_ordinals`],
/// which answers one for each or fails), and which of them this commit
/// made (both dialects: their findings need no conflict check).
/// By page view, in key order (the group's `page_views`), looked up by
/// halves: once a finding and inventory of the commit, where hashing the
/// two texts with SipHash cost ≈ 380 instructions a look-up.
struct Ordinals<'a>(Vec<(PageView<'a>, Ordinal)>);

/// A page view's ordinal, and whether this commit made it: then no stored
/// row has it, so its rows need no conflict check ([`INSERT_FINDINGS_NEW`]).
/// PostgreSQL never reuses an ordinal; SQLite may give a new page view the
/// ordinal of the last one a purge deleted (a rowid without
/// `AUTOINCREMENT`), but a purge deletes a page view only when no finding
/// or inventory has its ordinal ([`DELETE_PAGE_VIEWS`]), and another
/// writer meeting the page view waits for this commit (PostgreSQL: the
/// row's lock; SQLite: the write lock).
#[derive(Clone, Copy, Default)]
struct Ordinal {
    ordinal: i64,
    made: bool,
}

impl Ordinals<'_> {
    /// The ordinal of a page view of the commit (every one has one:
    /// checked where they are read).
    fn of(&self, site: &str, page_view: &str) -> Ordinal {
        self.0
            .binary_search_by(|((s, pv), _)| (*s, *pv).cmp(&(site, page_view)))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, o)| *o)
            .unwrap_or_default()
    }
}

/// The dedupe key: (site, page_view, dedupe), in the order of the
/// page view's ordinal then dedupe in the unique index.
type FindingKey<'a> = (&'a str, &'a str, [u8; DEDUPE_KEY_BYTES]);

impl<'a> Group<'a> {
    /// `keyed`: the findings of `batches`, in their order, each with its
    /// dedupe key.
    fn new(
        batches: &[&'a Batch],
        keyed: impl Iterator<Item = (&'a FindingRecord, [u8; DEDUPE_KEY_BYTES])>,
    ) -> Self {
        let mut findings: BTreeMap<FindingKey<'a>, Merged<'a>> = BTreeMap::new();
        for (f, dedupe) in keyed {
            let key = (f.site.as_str(), f.page_view.as_str(), dedupe);
            findings
                .entry(key)
                .and_modify(|m| {
                    m.count = if f.kind.additive() {
                        m.count.saturating_add(f.count)
                    } else {
                        m.count.max(f.count)
                    };
                    if f.at.as_str() < m.at {
                        m.at = &f.at;
                    }
                })
                .or_insert(Merged {
                    first: f,
                    key: dedupe,
                    count: f.count,
                    at: &f.at,
                });
        }
        let mut inventories: BTreeMap<(&str, &str), &InventoryRecord> = BTreeMap::new();
        for inv in batches.iter().flat_map(|b| b.inventories.iter()) {
            inventories
                .entry((&inv.site, &inv.page_view))
                .and_modify(|kept| {
                    if inv.at >= kept.at {
                        *kept = inv;
                    }
                })
                .or_insert(inv);
        }
        let page_views: BTreeSet<PageView<'a>> = findings
            .keys()
            .map(|(site, pv, _)| (*site, *pv))
            .chain(inventories.keys().copied())
            .collect();
        Self {
            findings: findings.into_values().collect(),
            types: first_of_each_type(batches.iter().flat_map(|b| b.findings.iter())),
            health: batches.iter().flat_map(|b| b.health.iter()).collect(),
            inventories: inventories.into_values().collect(),
            page_views: page_views.into_iter().collect(),
        }
    }
}

impl<'a> Group<'a> {
    /// Every site key and release text of the group's rows, once each, in
    /// byte order (the order every writer inserts new ones in). A group
    /// has a few (one site and release a page view, mostly the same for
    /// every row): a list checked from its last entry costs a row about
    /// one comparison, where a set cost a look-up.
    fn names(&self) -> Vec<&'a str> {
        let mut names: Vec<&'a str> = Vec::new();
        let mut add = |name: &'a str| {
            if !names.iter().rev().any(|n| *n == name) {
                names.push(name);
            }
        };
        for m in &self.findings {
            add(&m.first.site);
            if let Some(r) = m.first.release.as_deref() {
                add(r);
            }
        }
        for h in &self.health {
            add(&h.site);
            if let Some(r) = h.release.as_deref() {
                add(r);
            }
        }
        for inv in &self.inventories {
            add(&inv.site);
            if let Some(r) = inv.release.as_deref() {
                add(r);
            }
        }
        names.sort_unstable();
        names
    }
}

/// The ids of a commit's site keys and release texts (schema 15,
/// `schema::V15_NAME_IDS`), both ways: rows are written with the ids,
/// and what a statement answers by id is named again for the chain.
/// Sorted lists, searched by halves: a commit has a few names, looked up
/// twice a row, where hashing the text cost more.
struct Names<'a> {
    ids: Vec<(&'a str, i64)>,
    texts: Vec<(i64, &'a str)>,
}

impl<'a> Names<'a> {
    fn new(mut ids: Vec<(&'a str, i64)>) -> Self {
        ids.sort_unstable();
        let mut texts: Vec<(i64, &'a str)> = ids.iter().map(|(n, id)| (*id, *n)).collect();
        texts.sort_unstable();
        Self { ids, texts }
    }

    /// The id of a name of the commit (every one has one: [`name_ids`]
    /// fails the commit otherwise).
    fn id(&self, name: &str) -> i64 {
        self.ids
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .and_then(|i| self.ids.get(i))
            .map_or(0, |(_, id)| *id)
    }

    fn opt_id(&self, name: Option<&str>) -> Option<i64> {
        name.map(|n| self.id(n))
    }

    /// The text of an id a statement answered, which must be one of the
    /// commit's.
    fn text(&self, id: i64) -> Result<&'a str, StoreError> {
        self.texts
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .and_then(|i| self.texts.get(i))
            .map(|(_, n)| *n)
            .ok_or_else(|| {
                StoreError::Untrusted(format!("a row's name id {id} is not the commit's"))
            })
    }

    fn opt_text(&self, id: Option<i64>) -> Result<Option<&'a str>, StoreError> {
        id.map(|id| self.text(id)).transpose()
    }
}

/// New names: the insert does nothing for a name already there (no lock:
/// nothing deletes a name); on PostgreSQL, a name another collector is
/// inserting makes it wait for that collector's commit, then do nothing.
const RECORD_NAMES: &str = "
INSERT {or_fail} INTO names (name) {rows:t}
ON CONFLICT (name) DO NOTHING
RETURNING id, name";

/// The ids of some names: `?1` a JSON array of them (through the unique
/// index on `name`).
const NAME_IDS: &str = "SELECT id, name FROM names
WHERE name IN (SELECT value{bytes} FROM {each:?1:n})";

/// The id of each of `names` (in byte order: every writer inserts new
/// ones in that order), made for those new, in the caller's transaction:
/// the inserted ones answered by the insert, the others read after it
/// (which, on PostgreSQL's read committed, sees a name another collector
/// committed while this one waited). Fails unless every name has one.
fn name_ids<'a, C: Conn>(c: &mut C, names: &[&'a str]) -> Result<Vec<(&'a str, i64)>, StoreError> {
    let mut ids: Vec<(&'a str, i64)> = Vec::with_capacity(names.len());
    if names.is_empty() {
        return Ok(ids);
    }
    let found = |row: &dyn Row, ids: &mut Vec<(&'a str, i64)>| -> Result<(), StoreError> {
        let name = row.str(1)?;
        if let Ok(i) = names.binary_search(&name) {
            if let Some(n) = names.get(i) {
                if !ids.iter().any(|(m, _)| m == n) {
                    ids.push((n, row.int(0)?));
                }
            }
        }
        Ok(())
    };
    write_rows(
        c,
        RECORD_NAMES,
        names,
        |n, p| p.push(Param::Text(n)),
        &mut |row| found(row, &mut ids),
    )?;
    if ids.len() < names.len() {
        let met: Vec<&str> = names
            .iter()
            .filter(|n| !ids.iter().any(|(m, _)| m == *n))
            .copied()
            .collect();
        let list = serde_json::Value::from(met).to_string();
        c.query(NAME_IDS, &[Param::Text(&list)], &mut |row| {
            found(row, &mut ids)
        })?;
    }
    if ids.len() != names.len() {
        return Err(StoreError::Untrusted(format!(
            "the store gave {} of a commit's {} site keys and releases an id",
            ids.len(),
            names.len()
        )));
    }
    Ok(ids)
}

/// The ids of the sites of some chain entries (purges, an events store's
/// row versions), made if new.
fn site_ids<'a, C: Conn>(
    c: &mut C,
    sites: impl Iterator<Item = &'a str>,
) -> Result<Names<'a>, StoreError> {
    let mut sites: Vec<&str> = sites.collect();
    sites.sort_unstable();
    sites.dedup();
    Ok(Names::new(name_ids(c, &sites)?))
}

/// The first finding of each (site, type), in arrival order.
fn first_of_each_type<'a>(
    findings: impl Iterator<Item = &'a FindingRecord>,
) -> Vec<&'a FindingRecord> {
    let mut types: Vec<&FindingRecord> = Vec::new();
    for f in findings {
        if !types.iter().any(|t| t.site == f.site && t.kind == f.kind) {
            types.push(f);
        }
    }
    types
}

/// Remembers that the sites of `types` have those types (committed).
fn learn_types(known: &mut KnownTypes, types: &[&FindingRecord]) {
    for f in types {
        match known.get_mut(f.site.as_str()) {
            Some(kinds) => {
                kinds.insert(f.kind.as_str());
            }
            None => {
                known.insert(f.site.as_str().to_owned(), HashSet::from([f.kind.as_str()]));
            }
        }
    }
}

/// Runs `sql` (a multi-row statement, `{rows:C…}`) over `items`: one
/// statement where the connection binds columns as arrays (PostgreSQL: one
/// round trip whatever the rows), else as few as [`MAX_ROWS`] allows.
/// `params` adds an item's row (one parameter per column letter); `each`
/// is called for every row the statement returns.
fn write_rows<'i, C: Conn, T>(
    c: &mut C,
    sql: &'static str,
    items: &'i [T],
    params: impl Fn(&'i T, &mut Vec<Param<'i>>),
    each: &mut dyn FnMut(&dyn Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let columns = row_columns(sql);
    let at_once = binds_columns(sql, C::DIALECT);
    let mut rest = items;
    let mut values = Vec::with_capacity(columns * rest.len().min(MAX_ROWS));
    while !rest.is_empty() {
        let n = if at_once {
            rest.len()
        } else {
            chunk_len(rest.len())
        };
        let (chunk, tail) = rest.split_at(n);
        values.clear();
        for item in chunk {
            params(item, &mut values);
        }
        debug_assert_eq!(values.len(), n * columns, "{sql}");
        c.query_rows(sql, n, &values, each)?;
        rest = tail;
    }
    Ok(())
}

/// Rows in the next statement: [`MAX_ROWS`], or the largest power of two
/// not above what is left.
fn chunk_len(left: usize) -> usize {
    if left >= MAX_ROWS {
        MAX_ROWS
    } else {
        1 << left.ilog2()
    }
}

const RECORD_FINDING_TYPES: &str = "
INSERT INTO site_finding_types (site, type, first_at) {rows:ttt}
ON CONFLICT (site, type) DO NOTHING
RETURNING site, type";

/// The text `names` holds for id column `$id` (NULL for NULL): how every
/// read answers a row's site and release (schema 15).
macro_rules! name_of {
    ($id:literal) => {
        concat!("(SELECT nm.name FROM names nm WHERE nm.id = ", $id, ")")
    };
}

/// The id of name `$p` (a parameter; NULL when no row has it, which then
/// matches no row): how every read by site or release finds its rows.
macro_rules! id_of {
    ($p:literal) => {
        concat!("(SELECT nm.id FROM names nm WHERE nm.name = ", $p, ")")
    };
}

/// Every column of a finding row the canonical form covers
/// (`chain::FindingState`), in its order.
macro_rules! finding_state_columns {
    () => {
        concat!(
            "id, ",
            name_of!("site_id"),
            ", page_view, page, type, vendor, category, evidence_kind, evidence, consent_source,
             consent, count, at, received_at, user_agent, raw, ",
            name_of!("release_id")
        )
    };
}

/// What the findings' upserts answer on PostgreSQL a row: its key, its
/// id, and 1 when the statement inserted it (`xmax = 0`: `{fresh}`,
/// written out as a token cannot hold one), 0 when it met a stored row.
/// A row inserted is the statement's own parameters, so only the others
/// are read again ([`returned_states`]): answering every column of every
/// row cost the server and the writer more (docs/benchmarks.md).
macro_rules! upsert_answer {
    () => {
        "site_id, page_view, dedupe, id, CASE WHEN xmax = 0 THEN 1 ELSE 0 END"
    };
}

/// Dedupe: the same (site, page_view, type, vendor, evidence) updates the
/// stored row (its key: the page view's ordinal, [`page_view_ordinals`],
/// and the dedupe digest of the rest): the larger count (counts are cumulative, so a resent beacon
/// never inflates it) and the earlier `at`. Both are order-independent, so
/// concurrent writers agree whatever order their rows land in. On
/// PostgreSQL it answers each row's key, id and whether it was inserted
/// ([`upsert_answer!`], [`returned_states`]); SQLite's `RETURNING` costs
/// more than knowing the rows otherwise ([`written_states`]).
const UPSERT_FINDINGS: &str = concat!(
    "
INSERT INTO findings
    (site_id, page_view, page, type, vendor, category, evidence_kind, evidence, consent_source, consent,
     count, at, received_at, user_agent, raw, dedupe, release_id, ordinal)
{rows:itttttttttittttbii}
ON CONFLICT (ordinal, dedupe) DO UPDATE SET
    count = CASE WHEN excluded.count > findings.count THEN excluded.count ELSE findings.count END,
    at = CASE WHEN excluded.at < findings.at THEN excluded.at ELSE findings.at END
{returning_pg:",
    upsert_answer!(),
    "}"
);

/// The findings of page views the commit made ([`Ordinal::made`]): a
/// plain insert, no `ON CONFLICT`. No stored row
/// can have their key (it leads with the new ordinal), and the group has
/// one row per key, so the upsert's conflict check would find nothing;
/// on PostgreSQL it costs a row an index probe before the insert, a
/// speculative insertion lock and a WAL record confirming the insertion
/// after it; on SQLite the upsert's extra work a row, small (SQLite checks
/// the unique key before a plain insert too: docs/benchmarks.md, "The
/// writer's statements, B-trees and bytes a row"). `OR FAIL` on SQLite:
/// no statement journal (`schema::render`'s `{or_fail}`).
/// Answers as [`UPSERT_FINDINGS`] does (every row inserted).
const INSERT_FINDINGS_NEW: &str = concat!(
    "
INSERT {or_fail} INTO findings
    (site_id, page_view, page, type, vendor, category, evidence_kind, evidence, consent_source, consent,
     count, at, received_at, user_agent, raw, dedupe, release_id, ordinal)
{rows:itttttttttittttbii}
{returning_pg:",
    upsert_answer!(),
    "}"
);

/// Reports without a cumulative count (CSP violation reports, one
/// occurrence each): the same key adds its count to the stored row.
/// Answers as [`UPSERT_FINDINGS`] does.
const UPSERT_FINDINGS_ADD: &str = concat!(
    "
INSERT INTO findings
    (site_id, page_view, page, type, vendor, category, evidence_kind, evidence, consent_source, consent,
     count, at, received_at, user_agent, raw, dedupe, release_id, ordinal)
{rows:itttttttttittttbii}
ON CONFLICT (ordinal, dedupe) DO UPDATE SET
    count = CASE WHEN findings.count > 9223372036854775807 - excluded.count
                 THEN 9223372036854775807 ELSE findings.count + excluded.count END,
    at = CASE WHEN excluded.at < findings.at THEN excluded.at ELSE findings.at END
{returning_pg:",
    upsert_answer!(),
    "}"
);

/// Every column of a health row its canonical form covers
/// (`chain_rows::HealthState`), in its order.
macro_rules! health_state_columns {
    () => {
        concat!(
            "id, ",
            name_of!("site_id"),
            ", page_view, page, status, reason, at, received_at, user_agent, raw, ",
            name_of!("release_id")
        )
    };
}

/// Every column of an `inventories` row its canonical form covers
/// (`chain_rows::InventoryState`, less the children), in its order.
macro_rules! inventory_state_columns {
    () => {
        concat!(
            "id, ",
            name_of!("site_id"),
            ", page_view, page, at, received_at, user_agent, raw, ",
            name_of!("release_id")
        )
    };
}

/// Answers the rows as stored, in no particular order (SQLite's
/// `RETURNING` promises none; a health row has no key to match them by):
/// their chain entries are made from what the statement answers, the
/// site's and release's ids named by the commit's [`Names`].
const INSERT_HEALTH: &str = "
INSERT {or_fail} INTO health (site_id, page_view, page, status, reason, at, received_at, user_agent, raw, release_id)
{rows:itttttttti}
RETURNING id, site_id, page_view, page, status, reason, at, received_at, user_agent, raw, release_id";

/// Replaces a page view's inventory unless the stored one was observed
/// later (a resent or reordered older beacon never wins). Answers the rows
/// stored, and whether each was inserted (1) rather than replaced (0, or
/// not known); the children of those replaced are then replaced.
const UPSERT_INVENTORIES: &str = "
INSERT INTO inventories (site_id, page_view, page, at, received_at, user_agent, raw, release_id, ordinal)
{rows:ittttttii}
ON CONFLICT (ordinal) DO UPDATE SET
    page = excluded.page,
    at = excluded.at,
    received_at = excluded.received_at,
    user_agent = excluded.user_agent,
    raw = excluded.raw,
    release_id = excluded.release_id
WHERE excluded.at >= inventories.at
RETURNING id, site_id, page_view, {fresh}";

/// A commit's page views (`?1` site id, `?2` page view a row), made if new:
/// a new page view takes the next ordinal. Answers the ordinals of those
/// it inserted, and on PostgreSQL of those it met too (one round trip:
/// `DO UPDATE` rewrites the row it meets with the same values, a HOT
/// update, and answers it). One already there is locked until the commit
/// (PostgreSQL: by that update; SQLite's commit holds the write lock, and
/// there the row met is left alone, `DO NOTHING`: an update would rewrite
/// the row's entry in the random leaf of the (site, page_view) index, and
/// an upsert's `DO UPDATE` makes SQLite keep a statement journal of every
/// page the statement writes, those random leaves first; the rows met are
/// read with [`PAGE_VIEW_ORDINALS`] instead), so that a purge,
/// which deletes a page view with its last rows, cannot delete it between
/// this statement and the rows written under its ordinal
/// ([`DELETE_PAGE_VIEWS`]). Two collectors meeting a new page view at
/// once: the second's insert waits for the first's commit, then meets its
/// row (or inserts, if the first rolled back).
const RECORD_PAGE_VIEWS: &str = "
INSERT {or_fail} INTO page_views (site_id, page_view) {rows:it}
ON CONFLICT (site_id, page_view) {sqlite:DO NOTHING}{pg:DO UPDATE SET page_view = excluded.page_view}
RETURNING ordinal, site_id, page_view, {fresh}";

/// The ordinals of some page views of a site: `?2` a JSON array of page
/// views (through the unique index (site, page_view)).
const PAGE_VIEW_ORDINALS: &str = "SELECT ordinal, page_view FROM page_views
WHERE site_id = ?1 AND page_view IN (SELECT value{bytes} FROM {each:?2:p})";

/// The largest inventory id (0 for none): rows of an upsert above it are
/// new (SQLite; see [`write_inventories`]).
const LAST_INVENTORY_ID: &str = "SELECT max(id) FROM inventories";

/// The children of the inventories replaced (their ids).
const DELETE_VENDORS_OF: &str = "DELETE FROM inventory_vendors WHERE inventory IN ({list:i})";
const DELETE_HOSTS_OF: &str = "DELETE FROM inventory_hosts WHERE inventory IN ({list:i})";

/// The page views of the findings `?1` and inventories `?2` (JSON arrays
/// of ids) a purge deletes.
const ORDINALS_OF: &str = "
SELECT ordinal FROM findings WHERE id IN (SELECT CAST(value AS BIGINT) FROM {each:?1:f})
UNION
SELECT ordinal FROM inventories WHERE id IN (SELECT CAST(value AS BIGINT) FROM {each:?2:i})";

/// A purge's page views (`?1`, a JSON array of ordinals), locked until it
/// commits; those a writer holds are skipped (PostgreSQL), left for good
/// (an entry without rows costs its bytes, nothing else).
const LOCK_PAGE_VIEWS: &str = "SELECT ordinal FROM page_views
WHERE ordinal IN (SELECT CAST(value AS BIGINT) FROM {each:?1:o}) {skip_locked}";

/// Of the page views a purge locked (`?1`), those left without a finding
/// or an inventory. A statement of its own, after the locks: its snapshot
/// (PostgreSQL, read committed) sees the rows of every writer that held
/// one of them before, so a page view is never deleted under rows a
/// writer stored with its ordinal; a writer that meets it after waits for
/// the purge, then makes it again with a new ordinal.
const DELETE_PAGE_VIEWS: &str = "DELETE FROM page_views
WHERE ordinal IN (SELECT CAST(value AS BIGINT) FROM {each:?1:o})
  AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.ordinal = page_views.ordinal)
  AND NOT EXISTS (SELECT 1 FROM inventories i WHERE i.ordinal = page_views.ordinal)";

/// `?1`: a JSON array of inventory ids (purges).
const DELETE_INVENTORY_VENDORS: &str = "DELETE FROM inventory_vendors
WHERE inventory IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i})";
const DELETE_INVENTORY_HOSTS: &str = "DELETE FROM inventory_hosts
WHERE inventory IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i})";

const INSERT_INVENTORY_VENDORS: &str = "
INSERT {or_fail} INTO inventory_vendors
    (inventory, vendor, requests, script_requests, transfer_bytes, encoded_bytes, duration_ms, hosts, regions, cookies)
{rows:itiiiiittt}";

const INSERT_INVENTORY_HOSTS: &str = "
INSERT {or_fail} INTO inventory_hosts
    (inventory, host, requests, script_requests, transfer_bytes, encoded_bytes, duration_ms)
{rows:itiiiii}";

/// The (site, type) pairs of `group_types` (the first finding of each)
/// not known to be there, in key order (the order every writer locks them
/// in: no deadlock between writers). Read before the transaction, so that
/// commits running at once do not wait on `known` for each other.
fn unknown_types<'a>(
    group_types: &[&'a FindingRecord],
    known: &KnownTypes,
) -> Vec<&'a FindingRecord> {
    let mut types: Vec<&FindingRecord> = group_types
        .iter()
        .copied()
        .filter(|f| {
            !known
                .get(f.site.as_str())
                .is_some_and(|types| types.contains(f.kind.as_str()))
        })
        .collect();
    types.sort_by(|a, b| (&a.site, a.kind.as_str()).cmp(&(&b.site, b.kind.as_str())));
    types
}

/// Records the (site, type) pairs `types` ([`unknown_types`] of
/// `group_types`); answers those no site had before, in arrival order.
fn record_types<C: Conn>(
    c: &mut C,
    group_types: &[&FindingRecord],
    types: &[&FindingRecord],
) -> Result<Vec<FirstSeen>, StoreError> {
    // Site types first.
    let mut new_types: Vec<(String, String)> = Vec::new();
    write_rows(
        c,
        RECORD_FINDING_TYPES,
        types,
        |f, p| p.extend([Param::from(&f.site), f.kind.as_str().into(), (&f.at).into()]),
        &mut |row| {
            new_types.push((row.text(0)?, row.text(1)?));
            Ok(())
        },
    )?;
    // Reported in arrival order.
    let first_seen = group_types
        .iter()
        .filter(|f| {
            new_types
                .iter()
                .any(|(s, k)| *s == f.site && k == f.kind.as_str())
        })
        .map(|f| FirstSeen::of(f))
        .collect();
    Ok(first_seen)
}

/// The ordinal of each of a commit's page views (`views`, in key order:
/// every writer inserts and locks them in that order, so two never wait
/// for each other in a cycle), made for those new ([`RECORD_PAGE_VIEWS`],
/// which answers them, and on PostgreSQL those met too, saying which it
/// made); on SQLite those met are read, site by site, in the commit's
/// transaction. Schema 14: the
/// rows' unique keys lead with the ordinal, which grows as page views
/// arrive, so a commit's rows land at those indexes' right edge.
fn page_view_ordinals<'a, C: Conn>(
    c: &mut C,
    views: &[PageView<'a>],
    names: &Names<'_>,
) -> Result<Ordinals<'a>, StoreError> {
    // `views` is in key order, each once: each one's ordinal at its index.
    let mut ordinals: Vec<Option<Ordinal>> = vec![None; views.len()];
    let pg = C::DIALECT == Dialect::Postgres;
    write_rows(
        c,
        RECORD_PAGE_VIEWS,
        views,
        |(site, pv), p| p.extend([Param::Int(names.id(site)), Param::Text(pv)]),
        &mut |row| {
            let view = (names.text(row.int(1)?)?, row.str(2)?);
            if let Ok(i) = views.binary_search(&view) {
                if let Some(slot) = ordinals.get_mut(i) {
                    // SQLite answers only the page views it inserted
                    // (`DO NOTHING` answers none it met);
                    // PostgreSQL answers every one, saying which.
                    let made = !pg || row.int(3)? == 1;
                    let ordinal = row.int(0)?;
                    *slot = Some(Ordinal { ordinal, made });
                }
            }
            Ok(())
        },
    )?;
    // Those met stored (SQLite), read.
    let met: Vec<PageView<'a>> = views
        .iter()
        .zip(&ordinals)
        .filter(|(_, o)| o.is_none())
        .map(|(v, _)| *v)
        .collect();
    for of_site in met.chunk_by(|a, b| a.0 == b.0) {
        let Some((site, _)) = of_site.first() else {
            continue;
        };
        let list = serde_json::Value::from(of_site.iter().map(|(_, pv)| *pv).collect::<Vec<_>>())
            .to_string();
        c.query(
            PAGE_VIEW_ORDINALS,
            &[Param::Int(names.id(site)), list.as_str().into()],
            &mut |row| {
                let pv = row.str(1)?;
                if let Ok(i) = of_site.binary_search_by(|(_, v)| (*v).cmp(pv)) {
                    let slot = of_site
                        .get(i)
                        .and_then(|view| views.binary_search(view).ok())
                        .and_then(|j| ordinals.get_mut(j));
                    if let Some(slot) = slot {
                        let ordinal = row.int(0)?;
                        *slot = Some(Ordinal {
                            ordinal,
                            made: false,
                        });
                    }
                }
                Ok(())
            },
        )?;
    }
    let given = ordinals.iter().flatten().count();
    if given != views.len() {
        return Err(StoreError::Untrusted(format!(
            "the store gave {} of a commit's {} page views an ordinal",
            given,
            views.len()
        )));
    }
    Ok(Ordinals(
        views
            .iter()
            .copied()
            .zip(ordinals.into_iter().flatten())
            .collect(),
    ))
}

/// Writes a group's rows and extends their sites' chains, in the caller's
/// transaction. What stands for the foreign keys the report tables do not
/// have (schema version 12, `schema::V12_NO_ROW_FOREIGN_KEYS`), by
/// construction here:
///
/// - **a row's site exists**: every finding, health and inventory row
///   written here gets a chain entry of its site ([`extend_chains`], last),
///   whose head upsert ([`CHAIN_HEAD_LOCK`]) is checked against `sites` by
///   `chain_heads`' foreign key in this same transaction; a site that is
///   not there fails the whole commit. No statement deletes a site.
/// - **an inventory's vendors and hosts have their inventory**: they are
///   inserted only by [`write_inventories`], after the upsert of their
///   inventory in this transaction, with the id the upsert answered; the
///   upsert holds that row until the commit, so a purge (which skips
///   locked rows, and deletes an inventory's children in the transaction
///   that deletes it) cannot remove it in between.
///
/// `no_row_outlives_its_parent_under_concurrent_writes_and_purges` checks
/// both on SQLite and PostgreSQL.
fn write_group<C: Conn>(
    c: &mut C,
    group: &Group<'_>,
    unknown_types: &[&FindingRecord],
    names: &Names<'_>,
) -> Result<Vec<FirstSeen>, StoreError> {
    let first_seen = record_types(c, &group.types, unknown_types)?;
    let ordinals = page_view_ordinals(c, &group.page_views, names)?;

    // Each finding row as the upserts left it, for the chain: known from
    // the statement's parameters for rows it inserted, read again for rows
    // that met a stored one. Which is which: PostgreSQL's upserts say
    // ([`returned_states`]); on SQLite rows inserted are the ones with an
    // id above the largest before, as the commit holds the write lock.
    let last_id = if states_returned(C::DIALECT) {
        None
    } else {
        Some(last_finding_id(c)?)
    };
    let mut answered: Vec<Answered> = Vec::with_capacity(group.findings.len());
    // The rows in the order the statements write them.
    let mut in_order: Vec<&Merged<'_>> = Vec::with_capacity(group.findings.len());
    // The rows of page views this commit made first, without a conflict
    // check ([`INSERT_FINDINGS_NEW`]); then the others by kind of count.
    // Each row with its page view's ordinal, by statement.
    let mut by_statement: [Vec<(&Merged<'_>, i64)>; 3] = Default::default();
    for m in &group.findings {
        let Ordinal { ordinal, made } = ordinals.of(&m.first.site, &m.first.page_view);
        let i = match (made, m.first.kind.additive()) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 2,
        };
        if let Some(rows) = by_statement.get_mut(i) {
            rows.push((m, ordinal));
        }
    }
    for (sql, rows) in [INSERT_FINDINGS_NEW, UPSERT_FINDINGS, UPSERT_FINDINGS_ADD]
        .into_iter()
        .zip(&by_statement)
    {
        in_order.extend(rows.iter().map(|(m, _)| *m));
        write_rows(
            c,
            sql,
            rows,
            |(m, ordinal), p| {
                let r = m.row();
                p.extend([
                    Param::Int(names.id(r.site)),
                    r.page_view.into(),
                    r.page.into(),
                    r.kind.into(),
                    r.vendor.into(),
                    r.category.into(),
                    r.evidence_kind.into(),
                    r.evidence.into(),
                    r.consent_source.into(),
                    r.consent.into(),
                    Param::Int(r.count),
                    Param::Text(r.at),
                    r.received_at.into(),
                    r.user_agent.into(),
                    r.raw.into(),
                    Param::Blob(&m.key),
                    names.opt_id(r.release).into(),
                    Param::Int(*ordinal),
                ]);
            },
            &mut |row| {
                answered.push(Answered::read(row)?);
                Ok(())
            },
        )?;
    }

    let mut states = match last_id {
        Some(last_id) => match all_inserted(c, &in_order, last_id)? {
            Some(states) => states,
            None => written_states(c, &group.findings, last_id, names)?,
        },
        None => returned_states(c, &group.findings, answered, names)?,
    };

    let mut health: Vec<HealthState> = Vec::with_capacity(group.health.len());
    write_rows(
        c,
        INSERT_HEALTH,
        &group.health,
        |h, p| {
            p.extend([
                Param::Int(names.id(&h.site)),
                (&h.page_view).into(),
                (&h.page).into(),
                h.status.as_str().into(),
                (&h.reason).into(),
                (&h.at).into(),
                (&h.received_at).into(),
                (&h.user_agent).into(),
                (&h.raw).into(),
                names.opt_id(h.release.as_deref()).into(),
            ]);
        },
        &mut |row| {
            // The insert answers the site's and the release's ids.
            let site = names.text(row.int(1)?)?.to_owned();
            let release = names.opt_text(row.opt_int(10)?)?.map(str::to_owned);
            health.push(health_row(row, site, release)?);
            Ok(())
        },
    )?;

    // Vendors and hosts with their inventories, in this transaction (the
    // invariant above).
    let inventories = write_inventories(c, &group.inventories, &ordinals, names)?;
    // The chain last (each row's entry: the check of its site, above),
    // all of a site's entries at once: its head is locked once per commit,
    // after every row (in key order, as every writer does: no deadlock).
    let mut pending = finding_entries(chain::FINDING, &mut states);
    health.sort_by_key(|h| h.id);
    pending.extend(health.iter().map(|h| Pending {
        site: &h.site,
        kind: chain_rows::HEALTH,
        row: h.id,
        at: &h.at,
        digest: h.digest(),
    }));
    pending.extend(inventories.iter().map(|(inv, id, digest)| Pending {
        site: &inv.site,
        kind: chain_rows::INVENTORY,
        row: *id,
        at: &inv.at,
        digest: *digest,
    }));
    extend_chains(c, pending, names)?;
    Ok(first_seen)
}

/// An inventory stored by a commit: the record, its row's id and the
/// digest of the state it left (row and child rows).
type InventoryWritten<'a> = (&'a InventoryRecord, i64, Hash);

/// The child rows `range` of one list (each with its inventory's id), as
/// the inventory's canonical form takes them.
fn children<T: Copy>(rows: &[(i64, T)], range: std::ops::Range<usize>) -> Vec<T> {
    rows.get(range)
        .unwrap_or_default()
        .iter()
        .map(|(_, p)| *p)
        .collect()
}

/// Answers the inventories stored (not kept back by a newer one), each
/// hashed from the statements' parameters (they are the rows): one
/// canonical form and one SHA-256 per inventory, no read.
fn write_inventories<'a, C: Conn>(
    c: &mut C,
    inventories: &[&'a InventoryRecord],
    ordinals: &Ordinals<'_>,
    names: &Names<'_>,
) -> Result<Vec<InventoryWritten<'a>>, StoreError> {
    if inventories.is_empty() {
        return Ok(Vec::new());
    }
    // (site, page view) → id of the rows stored (not kept back by a newer one).
    let mut stored: HashMap<(String, String), i64> = HashMap::new();
    // Ids of rows that replaced an older inventory, whose children go
    // first. A row just inserted has none: PostgreSQL's upsert says which
    // rows it inserted (`{fresh}`; its ids are never reused); on SQLite a
    // row with an id above the largest before the statement is new (the
    // commit holds the write lock, and SQLite gives a new row a larger id
    // than any before it unless the largest is `i64::MAX`; a row that got
    // another is treated as replaced). The children of a row deleted
    // before went with it (a purge deletes them in the transaction that
    // deletes it), so a new row reusing its id has none either: on SQLite one look-up
    // instead of two deletes a commit.
    let last_id = if C::DIALECT == Dialect::Sqlite {
        first(c, LAST_INVENTORY_ID, &[], |row| row.opt_int(0))?
            .flatten()
            .unwrap_or(0)
    } else {
        i64::MAX
    };
    let mut replaced: Vec<i64> = Vec::new();
    write_rows(
        c,
        UPSERT_INVENTORIES,
        inventories,
        |inv, p| {
            p.extend([
                Param::Int(names.id(&inv.site)),
                (&inv.page_view).into(),
                (&inv.page).into(),
                (&inv.at).into(),
                (&inv.received_at).into(),
                (&inv.user_agent).into(),
                (&inv.raw).into(),
                names.opt_id(inv.release.as_deref()).into(),
                Param::Int(ordinals.of(&inv.site, &inv.page_view).ordinal),
            ]);
        },
        &mut |row| {
            let id = row.int(0)?;
            stored.insert((names.text(row.int(1)?)?.to_owned(), row.text(2)?), id);
            if row.int(3)? == 0 && id <= last_id {
                replaced.push(id);
            }
            Ok(())
        },
    )?;
    if stored.is_empty() {
        return Ok(Vec::new());
    }
    replaced.sort_unstable();
    for sql in [DELETE_VENDORS_OF, DELETE_HOSTS_OF] {
        write_rows(
            c,
            sql,
            &replaced,
            |id, p| p.push(Param::Int(*id)),
            &mut |_| Ok(()),
        )?;
    }
    let stored_id = |inv: &InventoryRecord| {
        stored
            .get(&(
                inv.site.as_str().to_owned(),
                inv.page_view.as_str().to_owned(),
            ))
            .copied()
    };
    let kept: Vec<(&InventoryRecord, i64)> = inventories
        .iter()
        .filter_map(|inv| Some((*inv, stored_id(inv)?)))
        .collect();
    // The vendors' hosts, regions and cookies as stored (JSON text), owned
    // here for the one list below to borrow.
    let lists: Vec<[String; 3]> = kept
        .iter()
        .flat_map(|(inv, _)| &inv.vendors)
        .map(|v| [&v.hosts, &v.regions, &v.cookies].map(|l| chain_rows::json_list(l)))
        .collect();
    // The child rows, in one list each: what the inserts bind is what
    // each inventory's canonical form hashes (its range of the list).
    let mut vendors: Vec<(i64, VendorPart<'_>)> = Vec::with_capacity(lists.len());
    let mut hosts: Vec<(i64, HostPart<'_>)> = Vec::new();
    let mut ranges = Vec::with_capacity(kept.len());
    let mut json = lists.iter();
    for (inv, id) in &kept {
        let (first_vendor, first_host) = (vendors.len(), hosts.len());
        for (v, [h, r, k]) in inv.vendors.iter().zip(json.by_ref()) {
            let usage = RowUsage::from(&v.usage).ints();
            vendors.push((*id, (v.vendor.as_str(), usage, [h.as_str(), r, k])));
        }
        hosts.extend(
            inv.unclassified
                .iter()
                .map(|h| (*id, (h.host.as_str(), RowUsage::from(&h.usage).ints()))),
        );
        ranges.push((first_vendor..vendors.len(), first_host..hosts.len()));
    }
    let written = kept
        .iter()
        .zip(ranges)
        .map(|((inv, id), (v, h))| {
            let state = InventoryParts::of(
                inv,
                *id,
                inv.release.as_deref(),
                children(&vendors, v),
                children(&hosts, h),
            );
            (*inv, *id, state.digest())
        })
        .collect();
    write_rows(
        c,
        INSERT_INVENTORY_VENDORS,
        &vendors,
        |(id, (vendor, usage, lists)), p| {
            p.extend([Param::Int(*id), Param::Text(vendor)]);
            p.extend(usage.map(Param::Int));
            p.extend(lists.map(Param::Text));
        },
        &mut |_| Ok(()),
    )?;
    write_rows(
        c,
        INSERT_INVENTORY_HOSTS,
        &hosts,
        |(id, (host, usage)), p| {
            p.extend([Param::Int(*id), Param::Text(host)]);
            p.extend(usage.map(Param::Int));
        },
        &mut |_| Ok(()),
    )?;
    Ok(written)
}

const RECORD_RELEASES: &str = "
INSERT INTO site_releases (site, release, first_at) {rows:ttt}
ON CONFLICT (site, release) DO NOTHING";

const RECORD_RELEASE_ITEMS: &str = "
INSERT INTO site_release_items (site, release, kind, item, first_at) {rows:ttttt}
ON CONFLICT (site, release, kind, item) DO NOTHING
RETURNING site, release, kind, item, first_at";

/// The previous release of `?2` for site `?1`: the one whose first report
/// came most recently before `?2`'s (on the same time, the one before it
/// in byte order).
const PREVIOUS_RELEASE: &str = "
SELECT p.release FROM site_releases p, site_releases r
WHERE r.site = ?1 AND r.release = ?2 AND p.site = ?1 AND p.release <> ?2
  AND (p.first_at < r.first_at OR (p.first_at = r.first_at AND p.release{bytes} < r.release{bytes}))
ORDER BY p.first_at DESC, p.release{bytes} DESC
LIMIT 1";

const HAS_RELEASE_ITEM: &str = "
SELECT count(*) FROM site_release_items
WHERE site = ?1 AND release = ?2 AND kind = ?3 AND item = ?4";

const RELEASES: &str = "
SELECT release, first_at FROM site_releases WHERE site = ?1 ORDER BY first_at, release{bytes}";

/// Records the releases and release items of `batches` not known to be
/// there; answers the new items the previous release lacked.
fn record_release_items<C: Conn>(
    c: &mut C,
    releases: &[(SiteRelease<'_>, &str)],
    items: &[(ReleaseItem<'_>, &str)],
) -> Result<(Vec<ReleaseNews>, Vec<ReleaseItemKey>), StoreError> {
    write_rows(
        c,
        RECORD_RELEASES,
        releases,
        |((site, release), at), p| p.extend([Param::from(*site), (*release).into(), (*at).into()]),
        &mut |_| Ok(()),
    )?;
    let mut new_items: Vec<(ReleaseItemKey, String)> = Vec::new();
    write_rows(
        c,
        RECORD_RELEASE_ITEMS,
        items,
        |((site, release, kind, item), at), p| {
            p.extend([
                Param::from(*site),
                (*release).into(),
                kind.as_str().into(),
                (*item).into(),
                (*at).into(),
            ]);
        },
        &mut |row| {
            let kind = match row.text(2)?.as_str() {
                "finding_type" => ReleaseItemKind::FindingType,
                _ => ReleaseItemKind::Vendor,
            };
            new_items.push((
                (row.text(0)?, row.text(1)?, kind, row.text(3)?),
                row.text(4)?,
            ));
            Ok(())
        },
    )?;
    new_items.sort();
    let mut news = Vec::new();
    let mut previous: HashMap<(String, String), Option<String>> = HashMap::new();
    for ((site, release, kind, item), at) in &new_items {
        let key = (site.clone(), release.clone());
        let prev = match previous.get(&key) {
            Some(p) => p.clone(),
            None => {
                let p = first(c, PREVIOUS_RELEASE, &[site.into(), release.into()], |row| {
                    row.text(0)
                })?;
                previous.insert(key, p.clone());
                p
            }
        };
        let Some(prev) = prev else { continue };
        let had = first(
            c,
            HAS_RELEASE_ITEM,
            &[
                site.into(),
                (&prev).into(),
                kind.as_str().into(),
                item.into(),
            ],
            |row| row.int(0),
        )?
        .unwrap_or(0);
        if had == 0 {
            news.push(ReleaseNews {
                site: site.clone(),
                release: release.clone(),
                previous: prev,
                kind: *kind,
                item: item.clone(),
                at: at.clone(),
            });
        }
    }
    let written = items
        .iter()
        .map(|((s, r, k, i), _)| ((*s).to_owned(), (*r).to_owned(), *k, (*i).to_owned()))
        .collect();
    Ok((news, written))
}

// ----------------------------------------------------------------- chain

/// A finding row's columns borrowed from the result row (the order of
/// `finding_state_columns!`), for hashing without copying them.
fn finding_state_ref(row: &dyn Row) -> Result<FindingStateRef<'_>, StoreError> {
    Ok(FindingStateRef {
        id: row.int(0)?,
        site: row.str(1)?,
        page_view: row.str(2)?,
        page: row.str(3)?,
        kind: row.str(4)?,
        vendor: row.str(5)?,
        category: row.opt_str(6)?,
        evidence_kind: row.opt_str(7)?,
        evidence: row.str(8)?,
        consent_source: row.opt_str(9)?,
        consent: row.str(10)?,
        count: row.int(11)?,
        at: row.str(12)?,
        received_at: row.str(13)?,
        user_agent: row.str(14)?,
        raw: row.str(15)?,
        release: row.opt_str(16)?,
    })
}

/// A finding row read whole (the columns of `finding_state_columns!`).
fn finding_state(row: &dyn Row) -> Result<FindingState, StoreError> {
    finding_state_ref(row).map(FindingState::from)
}

/// Whether the findings' upserts answer which rows they inserted
/// (`{returning_pg:…}`, [`returned_states`]); else [`written_states`]
/// finds them.
fn states_returned(dialect: Dialect) -> bool {
    dialect == Dialect::Postgres
}

/// What the chain records of a finding row a commit wrote.
struct Written<'a> {
    site: Cow<'a, str>,
    id: i64,
    at: Cow<'a, str>,
    digest: Hash,
}

impl<'a> Written<'a> {
    /// A row read from the store (the columns of `finding_state_columns!`).
    fn read(row: &dyn Row) -> Result<Written<'static>, StoreError> {
        let f = finding_state_ref(row)?;
        Ok(Written {
            digest: f.digest(),
            id: f.id,
            site: Cow::Owned(f.site.to_owned()),
            at: Cow::Owned(f.at.to_owned()),
        })
    }

    /// A row the commit inserted (stored as `id`): its statement's own
    /// parameters, no column read back (both dialects' writers).
    /// `buf`: where its canonical form is written (kept for the next row:
    /// [`FindingStateRef::digest_in`]).
    fn inserted(m: &Merged<'a>, id: i64, buf: &mut Vec<u8>) -> Written<'a> {
        let row = FindingStateRef { id, ..m.row() };
        Written {
            site: Cow::Borrowed(row.site),
            id,
            at: Cow::Borrowed(row.at),
            digest: row.digest_in(buf),
        }
    }
}

/// A findings upsert's answer for one row on PostgreSQL
/// ([`upsert_answer!`]).
struct Answered {
    site: i64,
    page_view: String,
    key: [u8; DEDUPE_KEY_BYTES],
    id: i64,
    inserted: bool,
}

impl Answered {
    fn read(row: &dyn Row) -> Result<Self, StoreError> {
        let key = <[u8; DEDUPE_KEY_BYTES]>::try_from(row.blob(2)?.as_slice())
            .map_err(|_| StoreError::Untrusted("a finding's dedupe key is not 16 bytes".into()))?;
        Ok(Answered {
            site: row.int(0)?,
            page_view: row.text(1)?,
            key,
            id: row.int(3)?,
            inserted: row.int(4)? == 1,
        })
    }
}

/// Each finding row the upserts wrote (`answered`, PostgreSQL) as it left
/// it: a row inserted is its statement's parameters with its id (no
/// column read back); a row that met a stored one is read again whole,
/// in this transaction, which holds it since the upsert.
fn returned_states<'g, C: Conn>(
    c: &mut C,
    findings: &'g [Merged<'g>],
    answered: Vec<Answered>,
    names: &Names<'_>,
) -> Result<Vec<Written<'g>>, StoreError> {
    let by_key: HashMap<(i64, &str, [u8; DEDUPE_KEY_BYTES]), &Merged<'_>> = findings
        .iter()
        .map(|m| {
            (
                (names.id(&m.first.site), m.first.page_view.as_str(), m.key),
                m,
            )
        })
        .collect();
    let mut states = Vec::with_capacity(findings.len());
    let mut met: Vec<i64> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for a in &answered {
        match by_key.get(&(a.site, a.page_view.as_str(), a.key)) {
            Some(m) if a.inserted => states.push(Written::inserted(m, a.id, &mut buf)),
            _ => met.push(a.id),
        }
    }
    read_met(c, met, &mut states)?;
    Ok(states)
}

/// The states of the finding rows a commit's upsert met stored (`met`, by
/// id), read again in its transaction: what the commit left them as,
/// counts merged (both dialects' writers; rows they inserted are hashed
/// from the statement's own parameters instead).
fn read_met<'g, C: Conn>(
    c: &mut C,
    met: Vec<i64>,
    states: &mut Vec<Written<'g>>,
) -> Result<(), StoreError> {
    if !met.is_empty() {
        let ids = serde_json::Value::from(met).to_string();
        states.extend(rows(
            c,
            STATES_OF_FINDINGS,
            &[ids.as_str().into()],
            Written::read,
        )?);
    }
    Ok(())
}

/// The largest finding id (0 for none). SQLite gives a new row a larger
/// id than any before it unless the largest is `i64::MAX`; a row that got
/// another is read again like one that met a stored row, so no id is
/// ever taken for a new row that was not.
const LAST_FINDING_ID: &str = "SELECT max(id) FROM findings";

fn last_finding_id<C: Conn>(c: &mut C) -> Result<i64, StoreError> {
    Ok(first(c, LAST_FINDING_ID, &[], |row| row.opt_int(0))?
        .flatten()
        .unwrap_or(0))
}

/// Each finding row the commit wrote (`in_order`: in the order its
/// statements wrote them) as it left it, when every one was inserted, so
/// none met a stored row (SQLite): one look-up of the largest id instead
/// of reading the rows' ids and keys back ([`written_states`]), ≈ 5% of
/// the writer thread's instructions a batch (docs/benchmarks.md, "The
/// writer thread's serial work"). SQLite gives a row inserted without an id the largest
/// id before it plus one (`INTEGER PRIMARY KEY` without `AUTOINCREMENT`;
/// the commit holds the write lock, so no other connection inserts
/// between), so the rows inserted took `last_id + 1` onwards in the order
/// they were written, and the largest id is `last_id + n` only if all `n`
/// were (a row that met a stored one takes none). `None`: not so (some
/// met a stored row, or the ids are near `i64::MAX`, where SQLite picks
/// them at random); the caller reads them back.
fn all_inserted<'g, C: Conn>(
    c: &mut C,
    in_order: &[&'g Merged<'g>],
    last_id: i64,
) -> Result<Option<Vec<Written<'g>>>, StoreError> {
    let Some(expected) = i64::try_from(in_order.len())
        .ok()
        .and_then(|n| last_id.checked_add(n))
        .filter(|last| *last < i64::MAX)
    else {
        return Ok(None);
    };
    if in_order.is_empty() || last_finding_id(c)? != expected {
        return Ok(None);
    }
    let mut buf: Vec<u8> = Vec::new();
    Ok(Some(
        (last_id + 1..)
            .zip(in_order)
            .map(|(id, m)| Written::inserted(m, id, &mut buf))
            .collect(),
    ))
}

/// The ids and keys of some page views' rows of a site (their ordinals
/// through `page_views`' unique index, then the rows through the unique
/// index (ordinal, dedupe)); the rows the commit wrote are picked out in
/// Rust by their key (a (page_view, dedupe) list would need a typed blob
/// in a VALUES list).
const PAGE_VIEW_KEYS: &str = "SELECT id, page_view, dedupe FROM findings
WHERE ordinal IN (SELECT ordinal FROM page_views
                  WHERE site_id = ?1 AND page_view IN (SELECT value{bytes} FROM {each:?2:p}))";

/// A finding's key within its site: (page view, dedupe key).
type PageViewKey<'a> = (&'a str, [u8; DEDUPE_KEY_BYTES]);

/// Each finding row the commit wrote (`findings`) as it left it: a row
/// with an id above `last_id` (the largest before the commit) was
/// inserted by it, so it is the insert's parameters (no column read
/// back); a row that met a stored one is read again whole.
fn written_states<'g, C: Conn>(
    c: &mut C,
    findings: &'g [Merged<'g>],
    last_id: i64,
    names: &Names<'_>,
) -> Result<Vec<Written<'g>>, StoreError> {
    let mut by_site: BTreeMap<&str, (BTreeSet<&str>, BTreeMap<PageViewKey<'_>, &Merged<'_>>)> =
        BTreeMap::new();
    for m in findings {
        let (views, keys) = by_site.entry(m.first.site.as_str()).or_default();
        views.insert(m.first.page_view.as_str());
        keys.insert((m.first.page_view.as_str(), m.key), m);
    }
    let mut states = Vec::with_capacity(findings.len());
    let mut met: Vec<i64> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for (site, (views, keys)) in by_site {
        let views = serde_json::Value::from(views.into_iter().collect::<Vec<_>>()).to_string();
        c.query(
            PAGE_VIEW_KEYS,
            &[Param::Int(names.id(site)), views.as_str().into()],
            &mut |row| {
                let id = row.int(0)?;
                let page_view = row.text(1)?;
                let Ok(key) = <[u8; DEDUPE_KEY_BYTES]>::try_from(row.blob(2)?.as_slice()) else {
                    return Ok(());
                };
                let Some(m) = keys.get(&(page_view.as_str(), key)) else {
                    return Ok(());
                };
                if id > last_id {
                    states.push(Written::inserted(m, id, &mut buf));
                } else {
                    met.push(id);
                }
                Ok(())
            },
        )?;
    }
    read_met(c, met, &mut states)?;
    Ok(states)
}

/// A site's head, made if it has none, then locked until the commit:
/// writers of one site take turns, so each extends the head the one
/// before left. One statement: an upsert that changes nothing locks the
/// row as `SELECT … FOR UPDATE` would on PostgreSQL (a second writer waits
/// for the first's commit, then sees the head it left) and answers it.
const CHAIN_HEAD_LOCK: &str = "INSERT INTO chain_heads (site, seq, hash) VALUES (?1, 0, ?2)
ON CONFLICT (site) DO UPDATE SET seq = chain_heads.seq
RETURNING seq, hash";
const CHAIN_HEAD_SET: &str = "UPDATE chain_heads SET seq = ?2, hash = ?3 WHERE site = ?1";
const CHAIN_INSERT: &str = "
INSERT {or_fail} INTO chain (site_id, seq, kind, row_id, at, digest, hash) {rows:iititbb}";
/// PostgreSQL: the entries inserted and the head moved to the last of
/// them in one statement (a data-modifying `WITH`, which SQLite does not
/// have: it runs [`CHAIN_INSERT`] and [`CHAIN_HEAD_SET`]), one round trip
/// a site and commit fewer.
const CHAIN_APPEND_PG: &str = "
WITH entries AS (
    INSERT INTO chain (site_id, seq, kind, row_id, at, digest, hash) {rows:iititbb}
    RETURNING site_id, seq, hash
)
UPDATE chain_heads SET seq = last.seq, hash = last.hash
FROM (SELECT site_id, seq, hash FROM entries ORDER BY seq DESC LIMIT 1) AS last
WHERE chain_heads.site = (SELECT nm.name FROM names nm WHERE nm.id = last.site_id)";

/// A site's chain head: (seq, hash), locked until the transaction ends.
fn lock_head<C: Conn>(c: &mut C, site: &str) -> Result<(i64, Hash), StoreError> {
    let head = first(
        c,
        CHAIN_HEAD_LOCK,
        &[site.into(), Param::Blob(&GENESIS)],
        |row| Ok((row.int(0)?, row.blob(1)?)),
    )?;
    let (seq, hash) = head.ok_or_else(|| untrusted_chain(site, "its chain head is missing"))?;
    let hash =
        Hash::try_from(hash).map_err(|_| untrusted_chain(site, "its chain head is not a hash"))?;
    Ok((seq, hash))
}

fn untrusted_chain(site: &str, what: &str) -> StoreError {
    StoreError::Untrusted(format!(
        "the chain of site {site} cannot be extended: {what}; run `tagwatch verify --db URL --site {site}` to see what was changed"
    ))
}

/// What [`append`] writes of a chain entry, borrowed: a commit's new
/// entries borrow their kind and `at` from what they chain, where an
/// [`Entry`] owns both (two allocations an entry, ≈ 16 entries a batch, on
/// the writer thread); a purge's own entries are lent as these too.
struct EntryRow<'a> {
    seq: i64,
    kind: &'a str,
    row: i64,
    at: &'a str,
    digest: Hash,
    hash: Hash,
}

impl<'a> From<&'a Entry> for EntryRow<'a> {
    fn from(e: &'a Entry) -> Self {
        EntryRow {
            seq: e.seq,
            kind: &e.kind,
            row: e.row,
            at: &e.at,
            digest: e.digest,
            hash: e.hash,
        }
    }
}

/// Appends `entries` (made from the head [`lock_head`] gave, in the same
/// transaction) to a site's chain and moves its head.
fn append<C: Conn>(
    c: &mut C,
    site: &str,
    site_id: i64,
    entries: &[EntryRow<'_>],
) -> Result<(), StoreError> {
    let Some(last) = entries.last() else {
        return Ok(());
    };
    // `prev` is not stored: it is the hash of the entry before (schema 13).
    let one_statement = C::DIALECT == Dialect::Postgres;
    write_rows(
        c,
        if one_statement {
            CHAIN_APPEND_PG
        } else {
            CHAIN_INSERT
        },
        entries,
        |e, params| {
            params.extend([
                Param::Int(site_id),
                Param::Int(e.seq),
                Param::Text(e.kind),
                Param::Int(e.row),
                Param::Text(e.at),
                Param::Blob(&e.digest),
                Param::Blob(&e.hash),
            ]);
        },
        &mut |_| Ok(()),
    )?;
    if !one_statement {
        c.execute(
            CHAIN_HEAD_SET,
            &[site.into(), Param::Int(last.seq), Param::Blob(&last.hash)],
        )?;
    }
    Ok(())
}

/// A chain entry a commit is about to append: its row's state hashed.
struct Pending<'a> {
    site: &'a str,
    kind: &'static str,
    row: i64,
    at: &'a str,
    digest: Hash,
}

/// The entries of the finding rows a commit wrote (`states`: each as the
/// commit left it; `kind`: [`chain::FINDING`], or [`chain::VERSION`] for
/// an events store's row versions, `id` their row key), by site then id.
fn finding_entries<'a>(kind: &'static str, states: &'a mut [Written<'_>]) -> Vec<Pending<'a>> {
    states.sort_by(|a, b| (&a.site, a.id).cmp(&(&b.site, b.id)));
    states
        .iter()
        .map(|f| Pending {
            site: &f.site,
            kind,
            row: f.id,
            at: &f.at,
            digest: f.digest,
        })
        .collect()
}

/// The latest `before` of the checkpoints in a site's chain (each one's
/// entry there, where its `before` is the entry's `at`, hashed into the
/// chain), by the `chain_checkpoints_by_site` index, then the chain's
/// primary key.
const SITE_PURGED_BEFORE: &str = "SELECT max(e.at) FROM chain_checkpoints cp
JOIN chain e ON e.site_id = (SELECT nm.id FROM names nm WHERE nm.name = cp.site) AND e.seq = cp.seq
WHERE cp.site = ?1 AND e.kind = 'checkpoint' AND e.row_id = cp.id";

/// Takes out of `pending` (an events store's row versions) the late ones
/// (`chain_versions::late`: of a day before this week's Monday and the
/// latest `before` of their site's checkpoints) and answers how many per
/// site. Looked up only for a site with a version of a day before this
/// week's Monday, after locking its head: a purge records its checkpoint
/// before it drops, and waits for this lock to record it, so a version
/// not left out here is chained before that checkpoint, which accounts
/// for it if it went with the week (PostgreSQL's write transactions are
/// read committed: the lookup, run after the lock is granted, sees a
/// checkpoint committed while it waited; SQLite's are serialized)
/// (docs/evidence.md#late-reports-of-a-purged-week).
fn leave_late_versions_out<C: Conn>(
    c: &mut C,
    pending: &mut Vec<Pending<'_>>,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let this_week = chain_versions::this_week(now_ms());
    let mut maybe: Vec<&str> = pending
        .iter()
        .filter(|p| chain_versions::maybe_late(p.at, &this_week))
        .map(|p| p.site)
        .collect();
    maybe.sort_unstable();
    maybe.dedup();
    let mut late = BTreeMap::new();
    let Some(&last) = maybe.last() else {
        return Ok(late);
    };
    // Heads locked in site key order, as `extend_chains` locks them, and
    // every site's of this commit up to the last one looked up, not only
    // theirs: a collector holding a later site's head while it waits for
    // an earlier one would deadlock with one that takes them in key order.
    let mut sites: Vec<&str> = pending.iter().map(|p| p.site).collect();
    sites.sort_unstable();
    sites.dedup();
    for site in sites.into_iter().take_while(|s| *s <= last) {
        lock_head(c, site)?;
        if maybe.binary_search(&site).is_err() {
            continue;
        }
        let purged = first(c, SITE_PURGED_BEFORE, &[site.into()], |row| row.opt_text(0))?.flatten();
        let before = pending.len();
        pending.retain(|p| {
            p.site != site || !chain_versions::late(p.at, &this_week, purged.as_deref())
        });
        let left_out = before - pending.len();
        if left_out > 0 {
            late.insert(site.to_owned(), u64::try_from(left_out).unwrap_or(u64::MAX));
        }
    }
    Ok(late)
}

/// Appends the entries of a commit (`pending`: findings, then health
/// reports, then inventories, each in id order), site by site in key order
/// (no deadlock between collectors), one head lock per site.
fn extend_chains<C: Conn>(
    c: &mut C,
    mut pending: Vec<Pending<'_>>,
    names: &Names<'_>,
) -> Result<(), StoreError> {
    // Stable: each site's entries keep their order.
    pending.sort_by(|a, b| a.site.cmp(b.site));
    // Every entry's form in this one buffer ([`chain::link`]).
    let mut buf: Vec<u8> = Vec::new();
    for site_entries in pending.chunk_by(|a, b| a.site == b.site) {
        let Some(site) = site_entries.first().map(|p| p.site) else {
            continue;
        };
        let (mut seq, mut prev) = lock_head(c, site)?;
        let rows: Vec<EntryRow<'_>> = site_entries
            .iter()
            .map(|p| {
                seq = seq.saturating_add(1);
                let hash = chain::link(&mut buf, site, seq, p.kind, p.row, p.at, &p.digest, &prev);
                prev = hash;
                EntryRow {
                    seq,
                    kind: p.kind,
                    row: p.row,
                    at: p.at,
                    digest: p.digest,
                    hash,
                }
            })
            .collect();
        append(c, site, names.id(site), &rows)?;
    }
    Ok(())
}

fn count<T>(rows: &[T]) -> i64 {
    i64::try_from(rows.len()).unwrap_or(i64::MAX)
}

/// Records a purge in each site's chain: a removal entry per finding,
/// health and inventory row, then the checkpoint that counts them (with
/// the rows no entry covers), signed when the store has a key.
fn record_checkpoints<C: Conn>(
    c: &mut C,
    before: &str,
    removed: &BTreeMap<String, Removed>,
    key: Option<&SigningKey>,
) -> Result<(), StoreError> {
    let names = site_ids(c, removed.keys().map(String::as_str))?;
    for (site, r) in removed {
        let id = first(
            c,
            "INSERT INTO chain_checkpoints (site, seq, before, findings, health, inventories, boundary)
             VALUES (?1, 0, ?2, 0, 0, 0, '') RETURNING id",
            &[site.into(), before.into()],
            |row| row.int(0),
        )?
        .ok_or_else(|| untrusted_chain(site, "a checkpoint could not be recorded"))?;
        let (mut seq, mut prev) = lock_head(c, site)?;
        let mut entries: Vec<Entry> = [
            (chain::REMOVED, &r.findings),
            (chain_rows::HEALTH_REMOVED, &r.health),
            (chain_rows::INVENTORY_REMOVED, &r.inventories),
        ]
        .into_iter()
        .flat_map(|(kind, rows)| rows.iter().map(move |row| (kind, row)))
        .map(|(kind, (row, at, digest))| {
            seq = seq.saturating_add(1);
            let e = Entry::new(site, seq, kind, *row, at, *digest, prev);
            prev = e.hash;
            e
        })
        .collect();
        let mut cp = Checkpoint {
            id,
            site: site.clone(),
            seq: seq.saturating_add(1),
            before: before.to_owned(),
            findings: count(&r.findings),
            health: count(&r.health),
            inventories: count(&r.inventories),
            boundary: prev,
            signature: None,
            public_key: None,
        };
        if let Some(key) = key {
            cp.sign(key);
        }
        entries.push(cp.entry(prev));
        let rows: Vec<EntryRow<'_>> = entries.iter().map(EntryRow::from).collect();
        append(c, site, names.id(site), &rows)?;
        c.execute(
            "UPDATE chain_checkpoints SET seq = ?2, findings = ?3, health = ?4, inventories = ?5,
                 boundary = ?6, signature = ?7, public_key = ?8 WHERE id = ?1",
            &[
                Param::Int(id),
                Param::Int(cp.seq),
                Param::Int(cp.findings),
                Param::Int(cp.health),
                Param::Int(cp.inventories),
                to_hex(&cp.boundary).as_str().into(),
                (&cp.signature).into(),
                (&cp.public_key).into(),
            ],
        )?;
    }
    Ok(())
}

/// Rows a purge is about to remove, per site: `?1` a JSON array of ids.
const STATES_OF_FINDINGS: &str = concat!(
    "SELECT ",
    finding_state_columns!(),
    " FROM findings WHERE id IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i}) ORDER BY id"
);
const STATES_OF_HEALTH: &str = concat!(
    "SELECT ",
    health_state_columns!(),
    " FROM health WHERE id IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i}) ORDER BY id"
);
const STATES_OF_INVENTORIES: &str = concat!(
    "SELECT ",
    inventory_state_columns!(),
    " FROM inventories WHERE id IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i}) ORDER BY id"
);

/// A site's entries from seq `?2`: hashes as blobs whatever was written
/// there (SQLite keeps any type in a column; a text is its bytes then,
/// not a hash, and the check names the entry).
const CHAIN_ENTRIES: &str =
    "SELECT seq, kind, row_id, at, CAST(digest AS {blob}), CAST(hash AS {blob})
FROM chain WHERE site_id = (SELECT nm.id FROM names nm WHERE nm.name = ?1) AND seq >= ?2 ORDER BY seq";
const CHAIN_CHECKPOINTS: &str = "SELECT id, site, seq, before, findings, health, inventories,
    boundary, signature, public_key FROM chain_checkpoints WHERE site = ?1 AND seq >= ?2";
const SITE_FINDINGS: &str = concat!(
    "SELECT ",
    finding_state_columns!(),
    " FROM findings WHERE site_id = ",
    id_of!("?1"),
    " AND id > ?2 ORDER BY id LIMIT ?3"
);

/// An entry as stored, its `prev` not yet known ([`GENESIS`]: see
/// [`read_chain`]).
fn chain_entry(row: &dyn Row) -> Result<Entry, StoreError> {
    let hash = |i: usize| -> Result<Hash, StoreError> {
        // A value that is not a hash is kept as one that matches nothing:
        // the check then names the entry.
        Ok(Hash::try_from(row.blob(i)?).unwrap_or([0xff; 32]))
    };
    Ok(Entry {
        seq: row.int(0)?,
        kind: row.text(1)?,
        row: row.int(2)?,
        at: row.text(3)?,
        digest: hash(4)?,
        prev: GENESIS,
        hash: hash(5)?,
    })
}

/// `entries` (seq order) with each one's `prev` set to the hash of the
/// entry before it, as it was when the entry was made: schema 13 stores
/// no `prev` (it was always a copy of that hash). `before`: the entry
/// read just before the first one (seq − 1), if any; without it the first
/// entry's `prev` is [`GENESIS`], right for seq 1, and for a later seq a
/// hash that cannot link: the entry before it was deleted, and the check
/// names both the missing seq and the entry that no longer follows.
fn link_prevs(before: Option<&Entry>, entries: &mut [Entry]) {
    let mut prev = before.map_or(GENESIS, |e| e.hash);
    for e in entries {
        e.prev = prev;
        prev = e.hash;
    }
}

fn checkpoint_row(row: &dyn Row) -> Result<Checkpoint, StoreError> {
    Ok(Checkpoint {
        id: row.int(0)?,
        site: row.text(1)?,
        seq: row.int(2)?,
        before: row.text(3)?,
        findings: row.int(4)?,
        health: row.int(5)?,
        inventories: row.int(6)?,
        boundary: hash_from_hex(&row.text(7)?).unwrap_or([0xff; 32]),
        signature: row.opt_text(8)?,
        public_key: row.opt_text(9)?,
    })
}

/// Rows read at a time when a whole site's findings are hashed.
const VERIFY_ROWS: u32 = 1000;

/// A site's chain from `from_seq`, its checkpoints there and (with
/// `digests`) the digest of every finding row it has now, in one snapshot.
fn read_chain<C: Conn>(
    c: &mut C,
    site: &str,
    from_seq: i64,
    digests: bool,
) -> Result<ChainDump, StoreError> {
    // From the entry before `from_seq`: its hash is the first one's `prev`.
    let mut entries = rows(
        c,
        CHAIN_ENTRIES,
        &[site.into(), Param::Int(from_seq.saturating_sub(1))],
        chain_entry,
    )?;
    let before = match entries.first() {
        Some(e) if e.seq < from_seq => Some(entries.remove(0)),
        _ => None,
    };
    link_prevs(before.as_ref(), &mut entries);
    let checkpoints = rows(
        c,
        CHAIN_CHECKPOINTS,
        &[site.into(), Param::Int(from_seq)],
        checkpoint_row,
    )?
    .into_iter()
    .map(|cp| (cp.id, cp))
    .collect();
    let mut findings = BTreeMap::new();
    let mut after = 0i64;
    loop {
        if !digests {
            break;
        }
        let page = rows(
            c,
            SITE_FINDINGS,
            &[site.into(), Param::Int(after), VERIFY_ROWS.into()],
            |row| {
                let f = finding_state_ref(row)?;
                let stored = chain::Stored {
                    digest: f.digest(),
                    at: f.at.to_owned(),
                };
                Ok((f.id, stored))
            },
        )?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        findings.extend(page);
    }
    let mut health = BTreeMap::new();
    let mut inventories = BTreeMap::new();
    if digests {
        let mut after = 0i64;
        loop {
            let page = rows(
                c,
                SITE_HEALTH,
                &[site.into(), Param::Int(after), VERIFY_ROWS.into()],
                health_state,
            )?;
            let Some(last) = page.last() else { break };
            after = last.id;
            health.extend(page.iter().map(|h| (h.id, h.stored())));
        }
        let mut after = 0i64;
        loop {
            let page = read_inventories(
                c,
                SITE_INVENTORIES,
                &[site.into(), Param::Int(after), VERIFY_ROWS.into()],
            )?;
            let Some(last) = page.last() else { break };
            after = last.id;
            inventories.extend(page.iter().map(|i| (i.id, i.stored())));
        }
    }
    let start = match entries.first() {
        Some(e) => e.prev,
        None => before.map_or(GENESIS, |e| e.hash),
    };
    Ok(ChainDump {
        site: site.to_owned(),
        entries,
        start,
        findings,
        checkpoints,
        versions: None,
        versions_read_at: None,
        health,
        inventories,
        unchained: read_unchained(c)?,
    })
}

/// A health row as the reads answer it (`health_state_columns!`: the
/// site's and the release's texts).
fn health_state(row: &dyn Row) -> Result<HealthState, StoreError> {
    health_row(row, row.text(1)?, row.opt_text(10)?)
}

/// A health row, its site and release (columns 1 and 10) as the caller
/// read them: texts from a read, ids from the insert's answer.
fn health_row(
    row: &dyn Row,
    site: String,
    release: Option<String>,
) -> Result<HealthState, StoreError> {
    Ok(HealthState {
        id: row.int(0)?,
        site,
        page_view: row.opt_text(2)?,
        page: row.text(3)?,
        status: row.text(4)?,
        reason: row.opt_text(5)?,
        at: row.text(6)?,
        received_at: row.text(7)?,
        user_agent: row.text(8)?,
        raw: row.text(9)?,
        release,
    })
}

const SITE_HEALTH: &str = concat!(
    "SELECT ",
    health_state_columns!(),
    " FROM health WHERE site_id = ",
    id_of!("?1"),
    " AND id > ?2 ORDER BY id LIMIT ?3"
);
const SITE_INVENTORIES: &str = concat!(
    "SELECT ",
    inventory_state_columns!(),
    " FROM inventories WHERE site_id = ",
    id_of!("?1"),
    " AND id > ?2 ORDER BY id LIMIT ?3"
);
/// The child rows of some inventories: `?1` a JSON array of their ids.
const VENDORS_OF_INVENTORIES: &str = "SELECT inventory, vendor, requests, script_requests,
    transfer_bytes, encoded_bytes, duration_ms, hosts, regions, cookies FROM inventory_vendors
WHERE inventory IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i})";
const HOSTS_OF_INVENTORIES: &str = "SELECT inventory, host, requests, script_requests,
    transfer_bytes, encoded_bytes, duration_ms FROM inventory_hosts
WHERE inventory IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i})";
/// The largest ids stored before these tables were chained (one row).
const UNCHAINED: &str = "SELECT health, inventories FROM chain_unchained";

fn read_unchained<C: Conn>(c: &mut C) -> Result<chain_rows::Unchained, StoreError> {
    Ok(first(c, UNCHAINED, &[], |row| {
        Ok(chain_rows::Unchained {
            health: row.int(0)?,
            inventories: row.int(1)?,
        })
    })?
    .unwrap_or_default())
}

/// The inventories `sql` selects (`inventory_state_columns!`), each with
/// its child rows (in the order read: the canonical form sorts them).
fn read_inventories<C: Conn>(
    c: &mut C,
    sql: &'static str,
    params: &[Param<'_>],
) -> Result<Vec<InventoryState>, StoreError> {
    let mut found = rows(c, sql, params, |row| {
        Ok(InventoryState {
            id: row.int(0)?,
            site: row.text(1)?,
            page_view: row.text(2)?,
            page: row.text(3)?,
            at: row.text(4)?,
            received_at: row.text(5)?,
            user_agent: row.text(6)?,
            raw: row.text(7)?,
            release: row.opt_text(8)?,
            vendors: Vec::new(),
            hosts: Vec::new(),
        })
    })?;
    if found.is_empty() {
        return Ok(found);
    }
    let at: HashMap<i64, usize> = found.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    let ids = serde_json::Value::from(found.iter().map(|s| s.id).collect::<Vec<_>>()).to_string();
    let usage = |row: &dyn Row, first: usize| -> Result<chain_rows::RowUsage, StoreError> {
        let u = usage_at(row, first)?;
        Ok(chain_rows::RowUsage {
            requests: u.requests,
            script_requests: u.script_requests,
            transfer_bytes: u.transfer_bytes,
            encoded_bytes: u.encoded_bytes,
            duration_ms: u.duration_ms,
        })
    };
    let vendors = rows(c, VENDORS_OF_INVENTORIES, &[ids.as_str().into()], |row| {
        Ok((
            row.int(0)?,
            VendorRow {
                vendor: row.text(1)?,
                usage: usage(row, 2)?,
                hosts: row.text(7)?,
                regions: row.text(8)?,
                cookies: row.text(9)?,
            },
        ))
    })?;
    let hosts = rows(c, HOSTS_OF_INVENTORIES, &[ids.as_str().into()], |row| {
        Ok((
            row.int(0)?,
            HostRow {
                host: row.text(1)?,
                usage: usage(row, 2)?,
            },
        ))
    })?;
    for (id, v) in vendors {
        if let Some(s) = at.get(&id).and_then(|i| found.get_mut(*i)) {
            s.vendors.push(v);
        }
    }
    for (id, h) in hosts {
        if let Some(s) = at.get(&id).and_then(|i| found.get_mut(*i)) {
            s.hosts.push(h);
        }
    }
    Ok(found)
}

const EVIDENCE_FINDINGS: &str = concat!(
    "SELECT ",
    finding_state_columns!(),
    " FROM findings WHERE site_id = ",
    id_of!("?1"),
    "
        AND (CAST(?2 AS TEXT) IS NULL OR at >= ?2)
        AND (CAST(?3 AS TEXT) IS NULL OR at < ?3)
        AND (CAST(?4 AS BIGINT) IS NULL OR id = ?4)
      ORDER BY id LIMIT ?5"
);
/// The latest entry of each of some findings: `?2` a JSON array of ids.
const LATEST_ENTRIES: &str = "SELECT row_id, max(seq) FROM chain
WHERE site_id = (SELECT nm.id FROM names nm WHERE nm.name = ?1) AND kind = 'finding' AND row_id IN (SELECT CAST(value AS BIGINT) FROM {each:?2:i})
GROUP BY row_id";
/// The latest entry of each of some row versions: `?2` a JSON array of
/// row keys.
const LATEST_VERSIONS: &str = "SELECT row_id, max(seq) FROM chain
WHERE site_id = (SELECT nm.id FROM names nm WHERE nm.name = ?1) AND kind IN ('version', 'health-version', 'inventory-version') AND row_id IN (SELECT CAST(value AS BIGINT) FROM {each:?2:i})
GROUP BY row_id";
/// The latest entry of each of some rows of one kind: `?2` a JSON array
/// of ids, `?3` the kind.
const LATEST_ENTRIES_OF: &str = "SELECT row_id, max(seq) FROM chain
WHERE site_id = (SELECT nm.id FROM names nm WHERE nm.name = ?1) AND kind = ?3 AND row_id IN (SELECT CAST(value AS BIGINT) FROM {each:?2:i})
GROUP BY row_id";
const EVIDENCE_INVENTORIES: &str = concat!(
    "SELECT ",
    inventory_state_columns!(),
    " FROM inventories
WHERE ordinal IN (SELECT ordinal FROM page_views
                  WHERE site_id = ",
    id_of!("?1"),
    " AND page_view IN (SELECT value{bytes} FROM {each:?2:p}))
ORDER BY page_view"
);
const EVIDENCE_HEALTH: &str = concat!(
    "SELECT ",
    health_state_columns!(),
    " FROM health
WHERE site_id = ",
    id_of!("?1"),
    " AND page_view IN (SELECT value{bytes} FROM {each:?2:p}) ORDER BY id"
);

// --------------------------------------------------------------- queries

/// Rows observed at or after parameter `$p`, or any when it is NULL: the
/// hour first, for the (site, hour) indexes. The time conditions are
/// macros so that they join the statements' text at compile time.
macro_rules! since {
    ($p:literal) => {
        concat!(
            "(CAST(",
            $p,
            " AS TEXT) IS NULL OR ({hour:at} >= {hour:",
            $p,
            "} AND at >= ",
            $p,
            "))"
        )
    };
}

/// Rows observed before parameter `$p` (never NULL): the hour first.
macro_rules! before {
    ($p:literal) => {
        concat!("({hour:at} <= {hour:", $p, "} AND at < ", $p, ")")
    };
}

/// Rows observed before parameter `$p`, or any when it is NULL.
macro_rules! until {
    ($p:literal) => {
        concat!("(CAST(", $p, " AS TEXT) IS NULL OR ", before!($p), ")")
    };
}

/// A site's rows (findings, inventories) in a window: `?1` site, `?2`
/// since, `?3` until, `?4` release (each or NULL).
macro_rules! window {
    () => {
        concat!(
            "site_id = ",
            id_of!("?1"),
            " AND ",
            since!("?2"),
            " AND ",
            until!("?3"),
            " AND (CAST(?4 AS TEXT) IS NULL OR release_id = ",
            id_of!("?4"),
            ")"
        )
    };
}

/// The page views of a site with an inventory in the window: `?1` site,
/// `?2` since, `?3` release (each or NULL).
macro_rules! inventory_window {
    () => {
        concat!(
            "SELECT id FROM inventories WHERE site_id = ",
            id_of!("?1"),
            " AND ",
            since!("?2"),
            " AND (CAST(?3 AS TEXT) IS NULL OR release_id = ",
            id_of!("?3"),
            ")"
        )
    };
}

/// Retention: the ids of at most `?2` rows of `$table` (any site)
/// observed before `?1`, through the table's (site, hour) index; rows a
/// writer holds are skipped (PostgreSQL).
macro_rules! old_ids {
    ($table:literal) => {
        concat!(
            "SELECT id FROM ",
            $table,
            " WHERE site_id IN (SELECT nm.id FROM names nm JOIN sites s ON s.key = nm.name) AND ",
            before!("?1"),
            " LIMIT ?2 {skip_locked}"
        )
    };
}

macro_rules! findings_query {
    ($order:literal) => {
        concat!(
            "SELECT type, vendor, ",
            name_of!("site_id"),
            ", page, at, page_view, category, count, evidence, consent, received_at, ",
            name_of!("release_id"),
            "
             FROM findings
             WHERE site_id = ",
            id_of!("?1"),
            "
               AND (CAST(?2 AS TEXT) IS NULL OR type IN (SELECT value{bytes} FROM {each:?2:k}))
               AND (CAST(?3 AS TEXT) IS NULL OR vendor IN (SELECT value{bytes} FROM {each:?3:v}))
               AND ",
            since!("?4"),
            " AND ",
            until!("?5"),
            "
               AND (CAST(?6 AS TEXT) IS NULL OR page = ?6)
               AND (CAST(?7 AS TEXT) IS NULL OR page_view = ?7)
               AND (CAST(?8 AS TEXT) IS NULL OR category = ?8)
               AND (CAST(?10 AS TEXT) IS NULL OR release_id = ",
            id_of!("?10"),
            ")
             ORDER BY ",
            $order,
            " LIMIT ?9"
        )
    };
}

// By hour first: the order of `findings_by_site_hour`, so that a limit
// reads the hours it needs and sorts only within them (the same order as
// by `at`: the hour is a prefix of it).
const FINDINGS_OLDEST: &str = findings_query!("{hour:at}, at, id");
const FINDINGS_NEWEST: &str = findings_query!("{hour:at} DESC, at DESC, id DESC");

macro_rules! tallies {
    ($group:literal, $limit:literal) => {
        concat!(
            "SELECT ",
            $group,
            ", count(*), {sum:count} FROM findings WHERE ",
            window!(),
            " GROUP BY 1 ORDER BY 2 DESC, 1",
            $limit
        )
    };
}

const TALLY_TYPES: &str = tallies!("type", "");
const TALLY_VENDORS: &str = tallies!("vendor", "");
/// `?5`: most pages.
const TALLY_PAGES: &str = tallies!("page", " LIMIT ?5");
const TALLY_DAYS: &str = tallies!("substr(at, 1, 10)", "");
const TALLY_TOTAL: &str = concat!(
    "SELECT count(*), coalesce({sum:count}, 0) FROM findings WHERE ",
    window!()
);
/// Distinct page views with an inventory or a monitor finding.
const PAGE_VIEWS: &str = concat!(
    "SELECT count(*) FROM (
   SELECT page_view FROM inventories WHERE ",
    window!(),
    "
   UNION
   SELECT page_view FROM findings WHERE ",
    window!(),
    " AND type <> 'csp_blocked') pv"
);
/// Monitor findings (not `csp_blocked`) per consent state: source and the
/// four categories as 1, 0 or NULL.
const CONSENT_STATES: &str = concat!(
    "SELECT source, {json_flag:c:necessary}, {json_flag:c:functional},
            {json_flag:c:analytics}, {json_flag:c:marketing}, count(*)
     FROM (SELECT consent_source AS source, {json:consent} AS c FROM findings
           WHERE ",
    window!(),
    " AND type <> 'csp_blocked') f
     WHERE {json_object:c}
     GROUP BY 1, 2, 3, 4, 5"
);

const INVENTORY_PAGE_VIEWS: &str = concat!("SELECT count(*) FROM (", inventory_window!(), ") w");
const INVENTORY_VENDORS: &str = concat!(
    "SELECT vendor, count(*), {sum:requests}, {sum:script_requests}, {sum:transfer_bytes},
            {sum:encoded_bytes}, {sum:duration_ms}
     FROM inventory_vendors WHERE inventory IN (",
    inventory_window!(),
    ")
     GROUP BY vendor
     ORDER BY count(*) DESC, {sum:requests} DESC, vendor"
);
/// Distinct names per vendor: kind 0 hosts, 1 regions, 2 cookies, 3 pages;
/// in byte order.
const INVENTORY_NAMES: &str = concat!(
    "SELECT vendor, kind, name FROM (
       SELECT v.vendor AS vendor, 0 AS kind, j.value{bytes} AS name
         FROM inventory_vendors v, {each:v.hosts:j} WHERE v.inventory IN (",
    inventory_window!(),
    ")
       UNION
       SELECT v.vendor, 1, j.value{bytes} FROM inventory_vendors v, {each:v.regions:j}
         WHERE v.inventory IN (",
    inventory_window!(),
    ")
       UNION
       SELECT v.vendor, 2, j.value{bytes} FROM inventory_vendors v, {each:v.cookies:j}
         WHERE v.inventory IN (",
    inventory_window!(),
    ")
       UNION
       SELECT v.vendor, 3, i.page FROM inventory_vendors v JOIN inventories i ON i.id = v.inventory
         WHERE v.inventory IN (",
    inventory_window!(),
    ")
     ) n
     ORDER BY vendor, kind, name"
);
/// `?4`: most hosts.
const INVENTORY_HOSTS: &str = concat!(
    "SELECT host, count(*), {sum:requests}, {sum:script_requests}, {sum:transfer_bytes},
            {sum:encoded_bytes}, {sum:duration_ms}
     FROM inventory_hosts WHERE inventory IN (",
    inventory_window!(),
    ")
     GROUP BY host
     ORDER BY count(*) DESC, {sum:requests} DESC, host
     LIMIT ?4"
);

/// A release's rows (findings, inventories): `?1` site, `?2` release, by
/// their ids (`findings_by_site_release`, `inventories_by_site_release`).
macro_rules! release_rows {
    () => {
        concat!(
            "site_id = ",
            id_of!("?1"),
            " AND release_id = ",
            id_of!("?2")
        )
    };
}

/// A release's page views: `?1` site, `?2` release.
const PROFILE_PAGE_VIEWS: &str = concat!(
    "
SELECT count(*) FROM (
  SELECT page_view FROM inventories WHERE ",
    release_rows!(),
    "
  UNION
  SELECT page_view FROM findings WHERE ",
    release_rows!(),
    " AND type <> 'csp_blocked') pv"
);

/// A release's inventories: `?1` site, `?2` release.
macro_rules! release_inventories {
    () => {
        concat!("SELECT id FROM inventories WHERE ", release_rows!())
    };
}

/// Vendors and the page views with each (inventories and findings).
const PROFILE_VENDORS: &str = concat!(
    "SELECT vendor, count(*) FROM (
       SELECT i.page_view AS pv, v.vendor AS vendor
         FROM inventory_vendors v JOIN inventories i ON i.id = v.inventory
         WHERE v.inventory IN (",
    release_inventories!(),
    ")
       UNION
       SELECT page_view, vendor FROM findings WHERE ",
    release_rows!(),
    " AND type <> 'csp_blocked'
     ) x
     GROUP BY vendor ORDER BY 2 DESC, 1"
);

/// Hosts (vendors' and unclassified) and the page views with each; `?3`:
/// most hosts.
const PROFILE_HOSTS: &str = concat!(
    "SELECT host, count(*) FROM (
       SELECT v.inventory AS pv, j.value{bytes} AS host FROM inventory_vendors v, {each:v.hosts:j}
         WHERE v.inventory IN (",
    release_inventories!(),
    ")
       UNION
       SELECT h.inventory, h.host FROM inventory_hosts h WHERE h.inventory IN (",
    release_inventories!(),
    ")
     ) x
     GROUP BY host ORDER BY 2 DESC, 1 LIMIT ?3"
);

/// Vendors' cookie names and the page views with each; `?3`: most names.
const PROFILE_COOKIES: &str = concat!(
    "SELECT cookie, count(*) FROM (
       SELECT v.inventory AS pv, j.value{bytes} AS cookie FROM inventory_vendors v, {each:v.cookies:j}
         WHERE v.inventory IN (",
    release_inventories!(),
    ")
     ) x
     GROUP BY cookie ORDER BY 2 DESC, 1 LIMIT ?3"
);

/// The longest lifetime (days) of each cookie in the release's findings'
/// evidence; `?3`: most names.
const PROFILE_COOKIE_DAYS: &str = concat!(
    "
SELECT cookie, max(days) FROM (
  SELECT {json_text:e:cookie} AS cookie, CAST({json_text:e:days} AS BIGINT) AS days
  FROM (SELECT {json:evidence} AS e FROM findings
        WHERE ",
    release_rows!(),
    " AND evidence_kind = 'cookie') f
  WHERE {json_object:e}) d
WHERE cookie IS NOT NULL AND days IS NOT NULL
GROUP BY cookie ORDER BY 1 LIMIT ?3"
);

/// Finding types and their rows.
const PROFILE_TYPES: &str = concat!(
    "
SELECT type, count(*) FROM findings WHERE ",
    release_rows!(),
    "
GROUP BY type ORDER BY 2 DESC, 1"
);

/// A site's health reports since `?2` (or NULL), oldest first; `?3`: most rows.
const HEALTH: &str = concat!(
    "SELECT ",
    name_of!("site_id"),
    ", page, page_view, status, reason, at, received_at FROM health WHERE site_id = ",
    id_of!("?1"),
    " AND ",
    since!("?2"),
    " ORDER BY {hour:at}, at, id LIMIT ?3"
);

/// Retention: at most `?2` rows observed before `?1`, per table.
const OLD_FINDINGS: &str = old_ids!("findings");
const OLD_HEALTH: &str = old_ids!("health");
const OLD_INVENTORIES: &str = old_ids!("inventories");

fn usage_at(row: &dyn Row, first: usize) -> Result<Usage, StoreError> {
    Ok(Usage {
        requests: row.int(first)?,
        script_requests: row.int(first + 1)?,
        transfer_bytes: row.int(first + 2)?,
        encoded_bytes: row.int(first + 3)?,
        duration_ms: row.int(first + 4)?,
    })
}

fn json_or_null(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// JSON text of a string list for an `{each}` parameter; NULL when empty.
fn json_list(items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| serde_json::Value::from(items.to_vec()).to_string())
}

fn named(row: &dyn Row) -> Result<Named, StoreError> {
    Ok(Named {
        name: row.text(0)?,
        count: row.int(1)?,
    })
}

fn tally(row: &dyn Row) -> Result<Tally, StoreError> {
    Ok(Tally {
        key: row.text(0)?,
        findings: row.int(1)?,
        occurrences: row.int(2)?,
    })
}

impl<C: Conn> Store for Db<C> {
    fn add_site(&self, key: &str, origins: &[String], created_at: &str) -> Result<(), StoreError> {
        self.write(|c| {
            transaction(c, Tx::Write, |c| {
                let inserted = c.execute(
                    "INSERT INTO sites (key, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    &[key.into(), created_at.into()],
                )?;
                if inserted == 0 {
                    return Err(StoreError::DuplicateSite);
                }
                for origin in origins {
                    c.execute(
                        "INSERT INTO site_origins (site, origin) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        &[key.into(), origin.into()],
                    )?;
                }
                Ok(())
            })
        })
    }

    fn list_sites(&self) -> Result<Vec<SiteInfo>, StoreError> {
        self.read(|c| {
            let mut sites: Vec<SiteInfo> = Vec::new();
            c.query(
                "SELECT s.key, s.created_at, o.origin, s.sample, s.enabled FROM sites s
                 LEFT JOIN site_origins o ON o.site = s.key
                 ORDER BY s.created_at, s.key, o.origin",
                &[],
                &mut |row| {
                    let key = row.text(0)?;
                    let origin = row.opt_text(2)?;
                    match sites.last_mut() {
                        Some(last) if last.site == key => last.origins.extend(origin),
                        _ => sites.push(SiteInfo {
                            site: key,
                            origins: origin.into_iter().collect(),
                            created_at: row.text(1)?,
                            sample: row.real(3)?,
                            enabled: row.int(4)? != 0,
                        }),
                    }
                    Ok(())
                },
            )?;
            Ok(sites)
        })
    }

    fn site_origins(&self, key: &str) -> Result<Option<Vec<String>>, StoreError> {
        self.read(|c| {
            // One row per origin; one row with NULL for a site without any.
            let mut found = false;
            let mut origins = Vec::new();
            c.query(
                "SELECT o.origin FROM sites s LEFT JOIN site_origins o ON o.site = s.key
                 WHERE s.key = ?1 ORDER BY o.origin",
                &[key.into()],
                &mut |row| {
                    found = true;
                    origins.extend(row.opt_text(0)?);
                    Ok(())
                },
            )?;
            Ok(found.then_some(origins))
        })
    }

    fn origin_registered(&self, candidates: &[String]) -> Result<bool, StoreError> {
        let Some(list) = json_list(candidates) else {
            return Ok(false);
        };
        self.read(|c| {
            Ok(first(
                c,
                "SELECT 1 FROM site_origins
                 WHERE origin IN (SELECT value{bytes} FROM {each:?1:c}) LIMIT 1",
                &[Param::Text(&list)],
                |_| Ok(()),
            )?
            .is_some())
        })
    }

    fn site_config(&self, key: &str) -> Result<Option<SiteConfig>, StoreError> {
        self.read(|c| {
            first(
                c,
                "SELECT sample, enabled FROM sites WHERE key = ?1",
                &[key.into()],
                |row| {
                    Ok(SiteConfig {
                        sample: row.real(0)?,
                        enabled: row.int(1)? != 0,
                    })
                },
            )
        })
    }

    fn set_site_config(&self, key: &str, change: &SiteChange) -> Result<bool, StoreError> {
        let enabled = change.enabled.map(i64::from);
        self.write(|c| {
            let changed = c.execute(
                "UPDATE sites SET sample = coalesce(?2, sample), enabled = coalesce(?3, enabled)
                 WHERE key = ?1",
                &[key.into(), change.sample.into(), enabled.into()],
            )?;
            Ok(changed > 0)
        })
    }

    fn writers(&self) -> usize {
        1 + self.more_writers.len()
    }

    fn commit(&self, batches: &[&Batch]) -> Result<Vec<FirstSeen>, StoreError> {
        let keyed = batches
            .iter()
            .flat_map(|b| &b.findings)
            .map(|f| (f, f.dedupe_key()));
        self.commit_group(Group::new(batches, keyed))
    }

    fn commit_prepared(&self, batches: &[&PreparedBatch]) -> Result<Vec<FirstSeen>, StoreError> {
        let plain: Vec<&Batch> = batches.iter().map(|p| p.batch()).collect();
        let keyed = batches.iter().flat_map(|p| p.keyed_findings());
        self.commit_group(Group::new(&plain, keyed))
    }

    fn record_finding_types(
        &self,
        findings: &[&FindingRecord],
    ) -> Result<Vec<FirstSeen>, StoreError> {
        let types = first_of_each_type(findings.iter().copied());
        let unknown = unknown_types(&types, &self.known_types());
        let first_seen = self.write_tx(|c| record_types(c, &types, &unknown))?;
        learn_types(&mut self.known_types(), &types);
        Ok(first_seen)
    }

    fn record_releases(&self, batches: &[&Batch]) -> Result<Vec<ReleaseNews>, StoreError> {
        let mut known = self
            .known_release_items
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Most groups have only items already written: answered without
        // sorting them into rows (on the writer thread, after every group).
        if known.all_known(batches) {
            return Ok(Vec::new());
        }
        let ReleaseRows {
            releases,
            mut items,
        } = release_items(batches);
        items.retain(|(item, _)| !known.contains(item));
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (news, written) = self.write_tx(|c| record_release_items(c, &releases, &items))?;
        if known.len + written.len() > MAX_KNOWN_RELEASE_ITEMS {
            *known = KnownReleaseItems::default();
        }
        for item in written {
            known.insert(item);
        }
        Ok(news)
    }

    fn releases(&self, site: &str) -> Result<Vec<ReleaseInfo>, StoreError> {
        self.read(|c| {
            rows(c, RELEASES, &[site.into()], |row| {
                Ok(ReleaseInfo {
                    release: row.text(0)?,
                    first_at: row.text(1)?,
                })
            })
        })
    }

    fn release_profile(
        &self,
        site: &str,
        release: &str,
        max_names: u32,
    ) -> Result<ReleaseProfile, StoreError> {
        self.read(|c| {
            transaction(c, Tx::Read, |c| {
                let p: [Param<'_>; 2] = [site.into(), release.into()];
                let limited: [Param<'_>; 3] = [p[0], p[1], max_names.into()];
                Ok(ReleaseProfile {
                    page_views: first(c, PROFILE_PAGE_VIEWS, &p, |row| row.int(0))?.unwrap_or(0),
                    vendors: rows(c, PROFILE_VENDORS, &p, named)?,
                    hosts: rows(c, PROFILE_HOSTS, &limited, named)?,
                    cookies: rows(c, PROFILE_COOKIES, &limited, named)?,
                    cookie_days: rows(c, PROFILE_COOKIE_DAYS, &limited, named)?,
                    types: rows(c, PROFILE_TYPES, &p, named)?,
                })
            })
        })
    }

    fn findings(&self, q: &FindingsQuery) -> Result<Vec<FindingRow>, StoreError> {
        let (kinds, vendors) = (json_list(&q.kinds), json_list(&q.vendors));
        let sql = if q.newest_first {
            FINDINGS_NEWEST
        } else {
            FINDINGS_OLDEST
        };
        self.read(|c| {
            rows(
                c,
                sql,
                &[
                    (&q.site).into(),
                    (&kinds).into(),
                    (&vendors).into(),
                    (&q.since).into(),
                    (&q.until).into(),
                    (&q.page).into(),
                    (&q.page_view).into(),
                    (&q.category).into(),
                    q.limit.into(),
                    (&q.release).into(),
                ],
                |row| {
                    Ok(FindingRow {
                        kind: row.text(0)?,
                        vendor: row.text(1)?,
                        site: row.text(2)?,
                        page: row.text(3)?,
                        at: row.text(4)?,
                        page_view: row.text(5)?,
                        category: row.opt_text(6)?,
                        count: row.int(7)?,
                        evidence: json_or_null(&row.text(8)?),
                        consent: json_or_null(&row.text(9)?),
                        received_at: row.text(10)?,
                        release: row.opt_text(11)?,
                    })
                },
            )
        })
    }

    fn stats(&self, q: &StatsQuery) -> Result<Stats, StoreError> {
        self.read(|c| {
            // One snapshot for every query.
            transaction(c, Tx::Read, |c| {
                let p: [Param<'_>; 4] = [
                    (&q.site).into(),
                    (&q.since).into(),
                    (&q.until).into(),
                    (&q.release).into(),
                ];
                let total = first(c, TALLY_TOTAL, &p, |row| {
                    Ok(Tally {
                        key: String::new(),
                        findings: row.int(0)?,
                        occurrences: row.int(1)?,
                    })
                })?
                .unwrap_or_default();
                let by_type = rows(c, TALLY_TYPES, &p, tally)?;
                let by_vendor = rows(c, TALLY_VENDORS, &p, tally)?;
                let by_page = rows(
                    c,
                    TALLY_PAGES,
                    &[p[0], p[1], p[2], p[3], q.max_pages.into()],
                    tally,
                )?;
                let mut by_day = rows(c, TALLY_DAYS, &p, tally)?;
                by_day.sort_by(|a, b| a.key.cmp(&b.key));
                let page_views = first(c, PAGE_VIEWS, &p, |row| row.int(0))?.unwrap_or(0);
                let flag = |row: &dyn Row, i| -> Result<Option<bool>, StoreError> {
                    Ok(row.opt_int(i)?.map(|n| n != 0))
                };
                let mut consent = rows(c, CONSENT_STATES, &p, |row| {
                    Ok(ConsentTally {
                        // A source that is not text (the schema says it is) counts as none.
                        source: row.opt_text(0).ok().flatten(),
                        categories: [flag(row, 1)?, flag(row, 2)?, flag(row, 3)?, flag(row, 4)?],
                        findings: row.int(5)?,
                    })
                })?;
                ConsentTally::sort(&mut consent);
                Ok(Stats {
                    total,
                    by_type,
                    by_vendor,
                    by_page,
                    by_day,
                    page_views,
                    consent,
                })
            })
        })
    }

    fn health(&self, q: &HealthQuery) -> Result<Vec<HealthRow>, StoreError> {
        self.read(|c| {
            rows(
                c,
                HEALTH,
                &[(&q.site).into(), (&q.since).into(), q.limit.into()],
                |row| {
                    Ok(HealthRow {
                        site: row.text(0)?,
                        page: row.text(1)?,
                        page_view: row.opt_text(2)?,
                        status: row.text(3)?,
                        reason: row.opt_text(4)?,
                        at: row.text(5)?,
                        received_at: row.text(6)?,
                    })
                },
            )
        })
    }

    fn inventory(&self, q: &InventoryQuery) -> Result<InventoryTotals, StoreError> {
        self.read(|c| {
            // One snapshot for the four queries.
            transaction(c, Tx::Read, |c| {
                let p: [Param<'_>; 3] = [(&q.site).into(), (&q.since).into(), (&q.release).into()];
                let page_views = first(c, INVENTORY_PAGE_VIEWS, &p, |row| row.int(0))?.unwrap_or(0);
                let mut vendors = rows(c, INVENTORY_VENDORS, &p, |row| {
                    Ok(VendorTotals {
                        vendor: row.text(0)?,
                        page_views: row.int(1)?,
                        usage: usage_at(row, 2)?,
                        ..VendorTotals::default()
                    })
                })?;
                let max = usize::try_from(q.max_names).unwrap_or(usize::MAX);
                c.query(INVENTORY_NAMES, &p, &mut |row| {
                    let vendor = row.text(0)?;
                    let kind = row.int(1)?;
                    // A JSON value that is not text (never written so) is skipped.
                    let Ok(name) = row.text(2) else {
                        return Ok(());
                    };
                    if let Some(v) = vendors.iter_mut().find(|v| v.vendor == vendor) {
                        let list = match kind {
                            0 => &mut v.hosts,
                            1 => &mut v.regions,
                            2 => &mut v.cookies,
                            _ => &mut v.pages,
                        };
                        if list.len() < max {
                            list.push(name);
                        }
                    }
                    Ok(())
                })?;
                let unclassified = rows(
                    c,
                    INVENTORY_HOSTS,
                    &[p[0], p[1], p[2], q.max_hosts.into()],
                    |row| {
                        Ok(HostTotals {
                            host: row.text(0)?,
                            page_views: row.int(1)?,
                            usage: usage_at(row, 2)?,
                        })
                    },
                )?;
                vendors.shrink_to_fit();
                Ok(InventoryTotals {
                    page_views,
                    vendors,
                    unclassified,
                })
            })
        })
    }

    fn purge(&self, before: &str, limit: u32) -> Result<Purged, StoreError> {
        let key = self
            .signing_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.write(|c| {
            transaction(c, Tx::Write, |c| {
                let p = [before.into(), limit.into()];
                // Site by site through the (site, hour) indexes (schema
                // version 7: no index on `at` alone, which every write
                // would update at a place the report's age decides, for
                // retention only); at most `limit` per table so that one
                // call never holds the write lock for long. PostgreSQL:
                // rows a writer holds are skipped (left for the next run),
                // so a purge never waits for ingest. The rows are counted
                // per site first: each site's chain records what went.
                let mut removed: BTreeMap<String, Removed> = BTreeMap::new();
                let finding_ids = rows(c, OLD_FINDINGS, &p, |row| row.int(0))?;
                let finding_ids = serde_json::Value::from(finding_ids).to_string();
                c.query(STATES_OF_FINDINGS, &[Param::Text(&finding_ids)], &mut |row| {
                    let f = finding_state_ref(row)?;
                    removed
                        .entry(f.site.to_owned())
                        .or_default()
                        .findings
                        .push((f.id, f.at.to_owned(), f.digest()));
                    Ok(())
                })?;
                let health_ids = rows(c, OLD_HEALTH, &p, |row| row.int(0))?;
                let health_ids = serde_json::Value::from(health_ids).to_string();
                c.query(STATES_OF_HEALTH, &[Param::Text(&health_ids)], &mut |row| {
                    let h = health_state(row)?;
                    let digest = h.digest();
                    removed.entry(h.site).or_default().health.push((h.id, h.at, digest));
                    Ok(())
                })?;
                // Inventories locked first: no writer replaces their
                // children while they go. Children deleted with them, in
                // this transaction (no foreign key cascades: schema
                // version 12), and counted.
                let inventory_ids = rows(c, OLD_INVENTORIES, &p, |row| row.int(0))?;
                let inventory_ids = serde_json::Value::from(inventory_ids).to_string();
                for inv in read_inventories(c, STATES_OF_INVENTORIES, &[Param::Text(&inventory_ids)])? {
                    let digest = inv.digest();
                    removed
                        .entry(inv.site)
                        .or_default()
                        .inventories
                        .push((inv.id, inv.at, digest));
                }
                // Their page views, which go with the last of their rows.
                let ordinals = rows(
                    c,
                    ORDINALS_OF,
                    &[Param::Text(&finding_ids), Param::Text(&inventory_ids)],
                    |row| row.int(0),
                )?;
                let findings = c.execute(
                    "DELETE FROM findings WHERE id IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i})",
                    &[Param::Text(&finding_ids)],
                )?;
                let health = c.execute(
                    "DELETE FROM health WHERE id IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i})",
                    &[Param::Text(&health_ids)],
                )?;
                let ids = [Param::Text(&inventory_ids)];
                let inventory_vendors = c.execute(DELETE_INVENTORY_VENDORS, &ids)?;
                let inventory_hosts = c.execute(DELETE_INVENTORY_HOSTS, &ids)?;
                let inventories = c.execute(
                    "DELETE FROM inventories
                     WHERE id IN (SELECT CAST(value AS BIGINT) FROM {each:?1:i})",
                    &ids,
                )?;
                if !ordinals.is_empty() {
                    let ordinals = serde_json::Value::from(ordinals).to_string();
                    let locked = rows(c, LOCK_PAGE_VIEWS, &[Param::Text(&ordinals)], |row| {
                        row.int(0)
                    })?;
                    let locked = serde_json::Value::from(locked).to_string();
                    c.execute(DELETE_PAGE_VIEWS, &[Param::Text(&locked)])?;
                }
                record_checkpoints(c, before, &removed, key.as_ref())?;
                Ok(Purged {
                    findings,
                    health,
                    inventories,
                    inventory_vendors,
                    inventory_hosts,
                })
            })
        })
    }

    fn chain_versions(
        &self,
        findings: &[&FindingRecord],
        versions: &[Inserted],
    ) -> Result<Vec<FirstSeen>, StoreError> {
        let types = first_of_each_type(findings.iter().copied());
        let mut known = self
            .known_types
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (first_seen, late) = self.write_tx(|c| {
            let first_seen = record_types(c, &types, &unknown_types(&types, &known))?;
            // Each site's versions by table (findings, health reports,
            // inventories: as a commit orders them) then row key.
            let mut pending: Vec<Pending<'_>> = versions
                .iter()
                .map(|v| Pending {
                    site: &v.site,
                    kind: v.kind,
                    row: v.row,
                    at: &v.at,
                    digest: v.digest,
                })
                .collect();
            let rank = |kind: &str| {
                [chain::VERSION, chain_rows::HEALTH_VERSION]
                    .iter()
                    .position(|k| *k == kind)
                    .unwrap_or(2)
            };
            pending.sort_by_key(|a| (rank(a.kind), a.row));
            let late = leave_late_versions_out(c, &mut pending)?;
            let names = site_ids(c, pending.iter().map(|p| p.site))?;
            extend_chains(c, pending, &names)?;
            Ok((first_seen, late))
        })?;
        for (site, rows) in late {
            tracing::warn!(
                event = "late_rows_not_chained",
                site = site.as_str(),
                rows,
                "{rows} report rows of site {site} observed in weeks a purge dropped were stored but not chained (docs/evidence.md#late-reports-of-a-purged-week)"
            );
        }
        learn_types(&mut known, &types);
        Ok(first_seen)
    }

    fn chain_removals(
        &self,
        before: &str,
        removed: &BTreeMap<String, Removed>,
    ) -> Result<(), StoreError> {
        let key = self
            .signing_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.write_tx(|c| record_checkpoints(c, before, removed, key.as_ref()))
    }

    fn chain_segment(&self, site: &str, row_keys: &[i64]) -> Result<ChainDump, StoreError> {
        let ids = serde_json::Value::from(row_keys.to_vec()).to_string();
        self.read(|c| {
            transaction(c, Tx::Read, |c| {
                let latest = rows(
                    c,
                    LATEST_VERSIONS,
                    &[site.into(), ids.as_str().into()],
                    |row| row.int(1),
                )?;
                let from = latest.iter().copied().min().unwrap_or(i64::MAX);
                read_chain(c, site, from, false)
            })
        })
    }

    fn sign_checkpoints(&self, key: SigningKey) {
        *self
            .signing_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    fn chain(&self, site: &str) -> Result<ChainDump, StoreError> {
        self.read(|c| transaction(c, Tx::Read, |c| read_chain(c, site, 1, true)))
    }

    fn chain_since(&self, site: &str, from: i64) -> Result<ChainDump, StoreError> {
        self.read(|c| transaction(c, Tx::Read, |c| read_chain(c, site, from, false)))
    }

    fn evidence(&self, q: &EvidenceQuery) -> Result<Evidence, StoreError> {
        self.read(|c| {
            transaction(c, Tx::Read, |c| {
                let findings = rows(
                    c,
                    EVIDENCE_FINDINGS,
                    &[
                        (&q.site).into(),
                        (&q.since).into(),
                        (&q.until).into(),
                        q.finding.into(),
                        Param::Int(q.limit),
                    ],
                    finding_state,
                )?;
                let ids =
                    serde_json::Value::from(findings.iter().map(|f| f.id).collect::<Vec<_>>())
                        .to_string();
                let mut latest = rows(
                    c,
                    LATEST_ENTRIES,
                    &[(&q.site).into(), ids.as_str().into()],
                    |row| row.int(1),
                )?;
                let views: BTreeSet<&str> = findings.iter().map(|f| f.page_view.as_str()).collect();
                let views =
                    serde_json::Value::from(views.into_iter().collect::<Vec<_>>()).to_string();
                let vp = [(&q.site).into(), views.as_str().into()];
                let inventories = read_inventories(c, EVIDENCE_INVENTORIES, &vp)?;
                let health = rows(c, EVIDENCE_HEALTH, &vp, health_state)?;
                for (kind, ids) in [
                    (
                        chain_rows::INVENTORY,
                        inventories.iter().map(|i| i.id).collect::<Vec<_>>(),
                    ),
                    (chain_rows::HEALTH, health.iter().map(|h| h.id).collect()),
                ] {
                    let ids = serde_json::Value::from(ids).to_string();
                    latest.extend(rows(
                        c,
                        LATEST_ENTRIES_OF,
                        &[(&q.site).into(), ids.as_str().into(), kind.into()],
                        |row| row.int(1),
                    )?);
                }
                // The segment: from the oldest latest state of a row in
                // the bundle to the head (the entries after a row's latest
                // state show it was not changed since).
                let from = latest.iter().copied().min().unwrap_or(i64::MAX);
                let chain = read_chain(c, &q.site, from, false)?;
                Ok(Evidence {
                    findings,
                    chain,
                    inventories,
                    health,
                    left_out: 0,
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `all_known`'s short cuts (one look-up per run of a site and
    /// release, an item equal to the last of its kind skipped) answer what
    /// asking for every item answers, whatever the order: runs that change
    /// only the site or only the release, a vendor named like a type, an
    /// unknown item after known ones, reports without a release.
    #[test]
    fn all_known_answers_as_every_item_asked() {
        let finding =
            |site: &str, release: Option<&str>, kind: crate::FindingKind, vendor: &str| {
                FindingRecord {
                    site: site.into(),
                    page_view: "pv".into(),
                    page: "https://shop.example/".into(),
                    kind,
                    vendor: vendor.into(),
                    category: None,
                    evidence: "{}".into(),
                    evidence_kind: crate::StoredEvidenceKind::Csp,
                    consent: "{}".into(),
                    consent_source: None,
                    count: 1,
                    at: "2024-05-01T12:00:00.000Z".into(),
                    received_at: "2024-05-01T12:00:00.000Z".into(),
                    user_agent: "ua".into(),
                    raw: "{}".into(),
                    release: release.map(Into::into),
                }
            };
        let csp = crate::FindingKind::CspBlocked;
        let mut known = KnownReleaseItems::default();
        for (site, release, kind, item) in [
            ("s1", "r1", ReleaseItemKind::FindingType, "csp_blocked"),
            ("s1", "r1", ReleaseItemKind::Vendor, "v1"),
            ("s1", "r1", ReleaseItemKind::Vendor, "v2"),
            ("s1", "r2", ReleaseItemKind::FindingType, "csp_blocked"),
            ("s2", "r1", ReleaseItemKind::FindingType, "csp_blocked"),
            ("s2", "r1", ReleaseItemKind::Vendor, "v1"),
        ] {
            known.insert((site.into(), release.into(), kind, item.into()));
        }
        let cases: Vec<(Vec<FindingRecord>, bool)> = vec![
            (vec![], true),
            (vec![finding("s1", None, csp, "unknown")], true),
            (
                vec![
                    finding("s1", Some("r1"), csp, "v1"),
                    finding("s1", Some("r1"), csp, "v2"),
                    finding("s1", Some("r1"), csp, "v1"),
                    finding("s2", Some("r1"), csp, "v1"),
                ],
                true,
            ),
            // Same release and items, another site: v2 unknown there.
            (
                vec![
                    finding("s1", Some("r1"), csp, "v2"),
                    finding("s2", Some("r1"), csp, "v2"),
                ],
                false,
            ),
            // Same site and items, another release: v1 unknown there.
            (
                vec![
                    finding("s1", Some("r1"), csp, "v1"),
                    finding("s1", Some("r2"), csp, "v1"),
                ],
                false,
            ),
            // A vendor named like a known type is another item.
            (vec![finding("s1", Some("r1"), csp, "csp_blocked")], false),
            // Unknown after a run of known ones, then known again.
            (
                vec![
                    finding("s1", Some("r1"), csp, "v1"),
                    finding("s1", Some("r1"), csp, "v1"),
                    finding("s1", Some("r1"), csp, "v3"),
                    finding("s1", Some("r1"), csp, "v1"),
                ],
                false,
            ),
            (vec![finding("s3", Some("r1"), csp, "v1")], false),
        ];
        for (findings, expected) in cases {
            let batch = Batch {
                findings,
                ..Batch::default()
            };
            let mut every = true;
            each_release_item(&[&batch], |item, _| every &= known.contains(&item));
            assert_eq!(every, expected, "{:?}", batch.findings);
            assert_eq!(known.all_known(&[&batch]), expected, "{:?}", batch.findings);
        }
    }

    #[test]
    fn dedupe_keys_tell_every_part_apart() {
        let k = dedupe_key("cookie_before_consent", "intercom", r#"{"kind":"cookie"}"#);
        assert_eq!(
            k,
            dedupe_key("cookie_before_consent", "intercom", r#"{"kind":"cookie"}"#)
        );
        for other in [
            dedupe_key("gpc_ignored", "intercom", r#"{"kind":"cookie"}"#),
            dedupe_key("cookie_before_consent", "hotjar", r#"{"kind":"cookie"}"#),
            dedupe_key("cookie_before_consent", "intercom", r#"{"kind":"dom"}"#),
            // The same bytes split differently between the parts.
            dedupe_key("cookie_before_consen", "tintercom", r#"{"kind":"cookie"}"#),
            dedupe_key("cookie_before_consent", "intercom{", r#""kind":"cookie"}"#),
        ] {
            assert_ne!(k, other);
        }
    }

    /// Every read and retention statement finds its rows through an index
    /// (no statement reads a whole table of reports), and a limited read
    /// in time order sorts only within the hours the index gives it.
    #[test]
    fn every_query_of_reports_goes_through_an_index() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        for m in MIGRATIONS {
            for sql in [m.sql, m.then] {
                conn.execute_batch(&render(sql, crate::schema::Dialect::Sqlite, 1))
                    .expect("migration");
            }
        }
        let plan = |sql: &str| -> Vec<String> {
            let sql = render(sql, crate::schema::Dialect::Sqlite, 1);
            let mut st = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("explain");
            // The plan does not depend on the values (prepared once, run
            // with any): NULL for each parameter.
            let nulls = vec![rusqlite::types::Null; st.parameter_count()];
            let lines = st
                .query_map(rusqlite::params_from_iter(nulls), |row| {
                    row.get::<_, String>(3)
                })
                .expect("plan")
                .collect::<Result<Vec<_>, _>>()
                .expect("plan rows");
            lines
        };
        let time_ordered = [FINDINGS_OLDEST, FINDINGS_NEWEST, HEALTH];
        let queries = [
            TALLY_TYPES,
            TALLY_VENDORS,
            TALLY_PAGES,
            TALLY_DAYS,
            TALLY_TOTAL,
            PAGE_VIEWS,
            CONSENT_STATES,
            INVENTORY_PAGE_VIEWS,
            INVENTORY_VENDORS,
            INVENTORY_NAMES,
            INVENTORY_HOSTS,
            OLD_FINDINGS,
            OLD_HEALTH,
            OLD_INVENTORIES,
            DELETE_VENDORS_OF,
            DELETE_HOSTS_OF,
            PROFILE_PAGE_VIEWS,
            PROFILE_VENDORS,
            PROFILE_HOSTS,
            PROFILE_COOKIES,
            PROFILE_COOKIE_DAYS,
            PROFILE_TYPES,
            PAGE_VIEW_ORDINALS,
            PAGE_VIEW_KEYS,
            EVIDENCE_INVENTORIES,
            ORDINALS_OF,
            LOCK_PAGE_VIEWS,
            DELETE_PAGE_VIEWS,
        ];
        for sql in time_ordered.iter().chain(&queries) {
            let plan = plan(sql);
            for table in [
                "findings",
                "health",
                "inventories",
                "inventory_vendors",
                "inventory_hosts",
                "page_views",
            ] {
                assert!(
                    !plan.iter().any(|l| l == &format!("SCAN {table}")
                        || l.starts_with(&format!("SCAN {table} "))),
                    "{sql}\n{plan:#?}"
                );
            }
        }
        for sql in time_ordered {
            let plan = plan(sql);
            assert!(
                plan.iter().any(|l| l.contains("_by_site_hour")),
                "{sql}\n{plan:#?}"
            );
            assert!(
                !plan.iter().any(|l| l == "USE TEMP B-TREE FOR ORDER BY"),
                "{sql}\n{plan:#?}"
            );
        }
        // What looks rows up by page view (schema 14): the page views
        // through `page_views`' unique index (SQLite names a UNIQUE
        // constraint's index `sqlite_autoindex_page_views_1`), their rows
        // through the keys led by the ordinal.
        for (sql, index) in [
            (
                PAGE_VIEW_ORDINALS,
                "sqlite_autoindex_page_views_1 (site_id=? AND page_view=?)",
            ),
            (PAGE_VIEW_KEYS, "findings_by_key (ordinal=?)"),
            (
                EVIDENCE_INVENTORIES,
                "sqlite_autoindex_inventories_1 (ordinal=?)",
            ),
            (ORDINALS_OF, "INTEGER PRIMARY KEY (rowid=?)"),
            // A release's rows by the site's and release's ids (schema 15),
            // each looked up once in `names`.
            (
                PROFILE_TYPES,
                "findings_by_site_release (site_id=? AND release_id=?)",
            ),
            (
                PROFILE_COOKIES,
                "inventories_by_site_release (site_id=? AND release_id=?)",
            ),
            (PROFILE_TYPES, "sqlite_autoindex_names_1 (name=?)"),
            (DELETE_PAGE_VIEWS, "findings_by_key (ordinal=?)"),
            (
                DELETE_PAGE_VIEWS,
                "sqlite_autoindex_inventories_1 (ordinal=?)",
            ),
        ] {
            let plan = plan(sql);
            assert!(plan.iter().any(|l| l.contains(index)), "{sql}\n{plan:#?}");
        }
        for sql in [OLD_FINDINGS, OLD_HEALTH, OLD_INVENTORIES] {
            let plan = plan(sql);
            assert!(
                plan.iter()
                    .any(|l| l.contains("_by_site_hour (site_id=? AND <expr><?)")),
                "{sql}\n{plan:#?}"
            );
        }
    }

    #[test]
    fn chunks_are_powers_of_two_up_to_the_maximum() {
        let mut left = 203;
        let mut sizes = Vec::new();
        while left > 0 {
            let n = chunk_len(left);
            sizes.push(n);
            left -= n;
        }
        assert_eq!(sizes, [128, 64, 8, 2, 1]);
    }
}
