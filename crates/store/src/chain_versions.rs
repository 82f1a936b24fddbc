//! The check of a whole chain against the row versions of the events store
//! (ClickHouse, `--events`) — findings, health reports and inventories —
//! pure. A row version never changes once inserted (a resent finding is
//! another row, an inventory's next state another row), so the check
//! matches rows and entries as sets of (table, row key, digest): a chained
//! version must be there (else it was deleted), a row whose key is
//! chained with another digest was edited (`ALTER UPDATE`, or a row
//! inserted again under the same key), a removed version must be gone.
//!
//! What it cannot prove: a row whose key no entry names. The collector
//! inserts into ClickHouse first and chains in SQL after; killed between
//! the two, it leaves rows no entry covers, which is also what a row
//! inserted by someone else looks like. Such rows are *not proven*, never
//! "tampered" nor "verified" (docs/evidence.md#clickhouse---events).
//!
//! The links, hashes, removals and checkpoints are checked by
//! [`chain::verify`] and [`chain_rows::verify`], as for the SQL store's
//! chain.
//!
//! Two races with a purge are told apart from a deletion
//! (docs/evidence.md#verify-during-a-purge-and-late-reports):
//!
//! - `verify` reads the chain, then the rows, then the entries appended
//!   meanwhile (`read_at`: the head when the rows were read). A later
//!   entry may name a row inserted after the read (a version missing is no
//!   proof); its removals account for rows a purge dropped meanwhile. A
//!   removed row still there is a change only once its purge had dropped
//!   the weeks when the rows were read: a checkpoint after the removal's
//!   own (the one a ClickHouse purge records after its drop) is at or
//!   before `read_at`.
//! - A ClickHouse purge drops whole weeks: its signed checkpoint states
//!   that every row version of a week before its `before` went, those it
//!   read (each with a removal entry) and any that landed in the week
//!   while it dropped it (a late report). So a chained row version missing
//!   from a week before the `before` of a ClickHouse checkpoint recorded
//!   *after* its entry is accounted for by that checkpoint ([`Verdict::accounted`]).
//!   A ClickHouse checkpoint is one that records the removal of a row
//!   version of the events store, or one that records no removal at all
//!   (the one a ClickHouse purge records after its drops; a SQL purge
//!   records a checkpoint only with removals, and removes row by row at
//!   most a chunk at a time, so its `before` states no such thing).

use std::collections::{BTreeMap, BTreeSet};

use crate::chain::{self, Check, Checkpoint, Entry, Hash, Problem, Rows, Stored, GENESIS};
use crate::chain_rows;

/// The tables of row versions: (entry kind of a version, of its removal,
/// what a message calls a row).
const TABLES: [(&str, &str, &str); 3] = [
    (chain::VERSION, chain::REMOVED, "finding row"),
    (
        chain_rows::HEALTH_VERSION,
        chain_rows::HEALTH_REMOVED,
        "health row",
    ),
    (
        chain_rows::INVENTORY_VERSION,
        chain_rows::INVENTORY_REMOVED,
        "inventory row",
    ),
];

/// The table of an entry kind, and whether it is a removal.
fn table_of(kind: &str) -> Option<(usize, bool)> {
    TABLES
        .iter()
        .enumerate()
        .find_map(|(i, (add, removed, _))| {
            if kind == *add {
                Some((i, false))
            } else if kind == *removed {
                Some((i, true))
            } else {
                None
            }
        })
}

/// A row version as the events store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The kind of its entry: [`chain::VERSION`] (a finding),
    /// [`chain_rows::HEALTH_VERSION`] or [`chain_rows::INVENTORY_VERSION`].
    pub kind: &'static str,
    /// Its row key (the `row` of its entry).
    pub row: i64,
    pub stored: Stored,
    /// How a reader finds it in ClickHouse (token, page view, …), for
    /// messages.
    pub label: String,
}

/// A row version an events store inserted, for its entry: what the
/// control plane appends (`Store::chain_versions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted {
    pub site: String,
    /// As [`Version::kind`].
    pub kind: &'static str,
    pub row: i64,
    pub at: String,
    pub digest: Hash,
}

/// What a check of row versions found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Proof of a change (at most [`chain::MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Rows no entry covers (at most [`chain::MAX_PROBLEMS`] listed).
    pub unproven: Vec<String>,
    /// How many rows no entry covers.
    pub unproven_rows: usize,
    /// Chained row versions missing without a removal entry, each from a
    /// week a later ClickHouse checkpoint states went (a report that landed
    /// in the week while a purge dropped it): not a change.
    pub accounted: usize,
}

/// The day of the week partition an events-store row of observation time
/// `at` (ISO 8601) is stored in: its date, or the nearest ClickHouse can
/// hold (`Date` runs from 1970 to 2149; the store clamps `at` to year
/// 9999), 1970-01-01 when `at` is not a date. The writer partitions by it
/// and [`verify`] compares it with a checkpoint's `before`.
pub fn partition_day(at: &str) -> &str {
    /// Latest day a partition may have.
    const LAST_DAY: &str = "2105-12-31";
    const FIRST_DAY: &str = "1970-01-01";
    let date = at.get(..10).unwrap_or("");
    let well_formed = date.len() == 10
        && date.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !well_formed || date < FIRST_DAY {
        FIRST_DAY
    } else if date > LAST_DAY {
        LAST_DAY
    } else {
        date
    }
}

/// How far the clocks of the collectors and of the process that purges
/// may differ: a collector treats rows of a day before the Monday of
/// *now plus this* as possibly late ([`this_week`]), so that a week a
/// purge dropped as over by its clock is before that Monday by every
/// collector's. Servers keep time to well under a second (NTP); an hour
/// leaves room for a clock set by hand, and costs a lookup per site and
/// commit during the last hour of a Sunday only.
pub const CLOCK_MARGIN_MS: i64 = 3_600_000;

/// The Monday (`YYYY-MM-DD`, UTC) that starts the week of the instant `ms`.
pub fn week_start(ms: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    let days = ms.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday: 3 days after a Monday.
    let monday = days - (days + 3).rem_euclid(7);
    crate::timefmt::iso_from_ms(monday.saturating_mul(DAY_MS))
        .get(..10)
        .unwrap_or("1970-01-01")
        .to_owned()
}

/// The Monday before which a row version a collector commits at `now_ms`
/// may be late (see [`late`]).
pub fn this_week(now_ms: i64) -> String {
    week_start(now_ms.saturating_add(CLOCK_MARGIN_MS))
}

/// Whether a row version of observation time `at` may be late, its site's
/// checkpoints to be looked up: it is of a day before `this_week`
/// ([`this_week`]). A week not over yet is looked up for nothing: a
/// ClickHouse purge never drops it (its `before` is at most the Monday of
/// its current week).
pub fn maybe_late(at: &str, this_week: &str) -> bool {
    partition_day(at) < this_week
}

/// Whether a row version of observation time `at` is *late*, and is not
/// chained (docs/evidence.md#late-reports-of-a-purged-week): it may be late
/// ([`maybe_late`]) and its day is before `purged`, the latest `before` of
/// its site's checkpoints (a week a purge dropped, or is dropping: its
/// row may have been inserted before the drop, and be gone).
pub fn late(at: &str, this_week: &str, purged: Option<&str>) -> bool {
    maybe_late(at, this_week)
        && purged.is_some_and(|before| partition_day(at) < before.get(..10).unwrap_or(before))
}

/// Every problem of a site's whole chain (`entries` from seq 1) against
/// the row versions `versions` (all of the site's, of every table), and
/// the rows it does not cover. `read_at`: the seq of the head when the
/// rows were read (the entries after it were appended while they were:
/// see the module comment); `i64::MAX` when none was.
pub fn verify(
    site: &str,
    entries: &[Entry],
    checkpoints: &BTreeMap<i64, Checkpoint>,
    key: Option<&chain::VerifyingKey>,
    versions: &[Version],
    read_at: i64,
) -> Verdict {
    let none = BTreeMap::new();
    let start = entries.first().map_or(GENESIS, |e| e.prev);
    let mut problems = chain::verify(&Check {
        site,
        entries,
        start,
        findings: &none,
        rows: Rows::Some,
        checkpoints,
        key,
    });
    // The health and inventory removals each checkpoint counts (no rows:
    // they are matched below).
    let none_rows = BTreeMap::new();
    problems.extend(chain_rows::verify(&chain_rows::Check {
        site,
        entries,
        health: &none_rows,
        inventories: &none_rows,
        rows: Rows::Some,
        checkpoints,
        unchained: chain_rows::Unchained::default(),
    }));
    problems.truncate(chain::MAX_PROBLEMS);
    let mut push = |p: String| {
        if problems.len() < chain::MAX_PROBLEMS {
            problems.push(Problem(p));
        }
    };
    if let Some(first) = entries.first() {
        if first.seq != 1 || first.prev != GENESIS {
            push(format!(
                "the chain of site {site} starts at seq {}, not 1: entries before it were deleted",
                first.seq
            ));
        }
    }
    // Each version's latest entry: chained, or removed by a purge; and
    // the ClickHouse checkpoints (seq, `before`'s day), in chain order.
    type Key = (usize, i64, Hash);
    let mut chained: BTreeMap<Key, &Entry> = BTreeMap::new();
    let mut removed: BTreeMap<Key, &Entry> = BTreeMap::new();
    let mut weeks_gone: Vec<(i64, &str)> = Vec::new();
    let mut checkpoint_seqs: Vec<i64> = Vec::new();
    let (mut removals, mut version_removals) = (0usize, 0usize);
    for e in entries {
        if e.kind == chain::CHECKPOINT {
            checkpoint_seqs.push(e.seq);
            let counts_none = checkpoints
                .get(&e.row)
                .is_some_and(|cp| cp.findings == 0 && cp.health == 0 && cp.inventories == 0);
            if version_removals > 0 || (removals == 0 && counts_none) {
                weeks_gone.push((e.seq, e.at.get(..10).unwrap_or("")));
            }
            (removals, version_removals) = (0, 0);
            continue;
        }
        let Some((table, removal)) = table_of(&e.kind) else {
            continue;
        };
        let k = (table, e.row, e.digest);
        if removal {
            removals += 1;
            if chained.remove(&k).is_some() {
                version_removals += 1;
            }
            removed.insert(k, e);
        } else {
            removed.remove(&k);
            chained.insert(k, e);
        }
    }
    // `gone_after[i]`: the latest `before` of the i-th ClickHouse
    // checkpoint and those after it.
    let mut gone_after: Vec<&str> = weeks_gone
        .iter()
        .rev()
        .scan("", |latest, (_, before)| {
            *latest = (*latest).max(*before);
            Some(*latest)
        })
        .collect();
    gone_after.reverse();
    let accounted_for = |e: &Entry| {
        let first_later = weeks_gone.partition_point(|(seq, _)| *seq <= e.seq);
        let before = gone_after.get(first_later).copied().unwrap_or("");
        partition_day(&e.at) < before
    };
    // A removal's drop is done once a checkpoint after its own was
    // recorded before the rows were read: the one its purge records after
    // dropping (or a later purge's). Until then a row it removed may still
    // be there.
    let dropped = |e: &Entry| {
        let own = checkpoint_seqs.partition_point(|seq| *seq <= e.seq);
        checkpoint_seqs
            .get(own + 1)
            .is_some_and(|after| *after <= read_at)
    };
    let chained_rows: BTreeSet<(usize, i64)> =
        chained.keys().map(|(t, row, _)| (*t, *row)).collect();
    let mut seen: BTreeSet<Key> = BTreeSet::new();
    let mut edited: BTreeSet<(usize, i64)> = BTreeSet::new();
    let mut unproven = Vec::new();
    let mut unproven_rows = 0usize;
    for v in versions {
        let Some((table, false)) = table_of(v.kind) else {
            continue;
        };
        let k = (table, v.row, v.stored.digest);
        if !seen.insert(k) {
            // The same version twice (a retried insert ClickHouse has not
            // merged yet): one row.
            continue;
        }
        match (chained.get(&k), removed.get(&k)) {
            (Some(e), _) if e.at == v.stored.at => {}
            // Its purge had not dropped it when the rows were read (or
            // its drop failed, and the next purge drops it).
            (_, Some(e)) if !dropped(e) => {}
            (_, Some(e)) => push(format!(
                "{} of site {site} was removed at seq {} but is there again: it was put back without the collector",
                v.label, e.seq
            )),
            _ if chained_rows.contains(&(table, v.row)) => {
                edited.insert((table, v.row));
                let seqs: Vec<String> = chained
                    .range((table, v.row, [0; 32])..=(table, v.row, [0xff; 32]))
                    .map(|(_, e)| e.seq.to_string())
                    .collect();
                push(format!(
                    "{} of site {site} was edited after it was stored (its entry is seq {})",
                    v.label,
                    seqs.join(", ")
                ));
            }
            _ => {
                unproven_rows += 1;
                if unproven.len() < chain::MAX_PROBLEMS {
                    unproven.push(format!(
                        "{} of site {site} is in no entry of the chain: not proven (its collector stopped, or its control plane failed, between the ClickHouse insert and the chain's commit; or it was inserted without the collector)",
                        v.label
                    ));
                }
            }
        }
    }
    let mut accounted = 0usize;
    for ((table, row, _), e) in &chained {
        if !seen.contains(&(*table, *row, e.digest)) && !edited.contains(&(*table, *row)) {
            if e.seq > read_at {
                // Chained after the rows were read: its row may have been
                // inserted after, too.
                continue;
            }
            if accounted_for(e) {
                accounted += 1;
                continue;
            }
            let noun = TABLES.get(*table).map_or("row", |t| t.2);
            push(format!(
                "{noun} {row} of site {site} (seq {}, at {}) was deleted: no purge records its removal",
                e.seq, e.at
            ));
        }
    }
    Verdict {
        problems,
        unproven,
        unproven_rows,
        accounted,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::chain::{FindingState, REMOVED, VERSION};
    use proptest::prelude::*;

    fn state(id: i64, count: i64) -> FindingState {
        FindingState {
            id,
            site: "tw_a".into(),
            page_view: format!("pv{id}"),
            page: "https://shop.example/".into(),
            kind: "cookie_before_consent".into(),
            vendor: "intercom".into(),
            category: None,
            evidence_kind: Some("cookie".into()),
            evidence: "{}".into(),
            consent_source: None,
            consent: "{}".into(),
            count,
            at: format!("2026-03-01T00:00:{:02}.000Z", id % 60),
            received_at: "2026-03-01T00:01:00.000Z".into(),
            user_agent: "UA".into(),
            raw: "{}".into(),
            release: None,
        }
    }

    fn version(f: &FindingState) -> Version {
        Version {
            kind: VERSION,
            row: f.id,
            stored: f.stored(),
            label: format!("finding row {}", f.id),
        }
    }

    /// A chain of one `version` entry per state, in order.
    fn chain_of(states: &[FindingState]) -> Vec<Entry> {
        let mut prev = GENESIS;
        states
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let seq = i64::try_from(i).unwrap() + 1;
                let e = Entry::new("tw_a", seq, VERSION, f.id, &f.at, f.digest(), prev);
                prev = e.hash;
                e
            })
            .collect()
    }

    fn check(entries: &[Entry], versions: &[Version]) -> Verdict {
        verify("tw_a", entries, &BTreeMap::new(), None, versions, i64::MAX)
    }

    fn said(v: &Verdict) -> String {
        v.problems
            .iter()
            .map(|p| p.0.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn each_change_is_named_and_an_uncovered_row_is_not_proven() {
        let states: Vec<FindingState> = (1..=4).map(|id| state(id, 1)).collect();
        let entries = chain_of(&states);
        let rows: Vec<Version> = states.iter().map(version).collect();
        assert_eq!(check(&entries, &rows), Verdict::default());
        // The same version twice (an insert retried): one row.
        let mut twice = rows.clone();
        twice.push(rows[1].clone());
        assert_eq!(check(&entries, &twice), Verdict::default());
        // Chained twice (a commit whose answer was lost, retried): one.
        let mut again = states.clone();
        again.push(states[2].clone());
        assert_eq!(check(&chain_of(&again), &rows), Verdict::default());
        // Edited in place.
        let mut edited = rows.clone();
        let mut f = states[1].clone();
        f.count = 99;
        edited[1] = version(&f);
        let v = check(&entries, &edited);
        assert_eq!(v.problems.len(), 1, "{}", said(&v));
        assert!(said(&v).contains(
            "finding row 2 of site tw_a was edited after it was stored (its entry is seq 2)"
        ));
        // Inserted again under its key, beside the original.
        let mut beside = rows.clone();
        beside.push(version(&f));
        let v = check(&entries, &beside);
        assert_eq!(v.problems.len(), 1, "{}", said(&v));
        assert!(said(&v).contains("finding row 2 of site tw_a was edited"));
        // Deleted.
        let v = check(&entries, &rows[1..]);
        assert_eq!(v.problems.len(), 1, "{}", said(&v));
        assert!(said(&v).contains("finding row 1 of site tw_a (seq 1, at"));
        assert!(said(&v).contains("was deleted: no purge records its removal"));
        // A row no entry covers: not proven, not a problem.
        let mut extra = rows.clone();
        extra.push(version(&state(5, 1)));
        let v = check(&entries, &extra);
        assert!(v.problems.is_empty(), "{}", said(&v));
        assert_eq!(v.unproven_rows, 1);
        assert!(v.unproven[0]
            .contains("finding row 5 of site tw_a is in no entry of the chain: not proven"));
        // The first entry deleted: the chain does not start at 1.
        let v = check(&entries[1..], &rows[1..]);
        assert!(said(&v).contains("starts at seq 2, not 1"), "{}", said(&v));
        // Two entries swapped.
        let mut swapped = entries.clone();
        swapped.swap(1, 2);
        let v = check(&swapped, &rows);
        assert!(said(&v).contains("is missing"), "{}", said(&v));
    }

    #[test]
    fn a_purged_version_must_be_gone_and_counted() {
        let states: Vec<FindingState> = (1..=3).map(|id| state(id, 1)).collect();
        let mut entries = chain_of(&states);
        let mut prev = entries.last().unwrap().hash;
        let f = &states[0];
        let removal = Entry::new("tw_a", 4, REMOVED, f.id, &f.at, f.digest(), prev);
        prev = removal.hash;
        entries.push(removal);
        let key = chain::SigningKey::from_bytes(&[7; 32]);
        let mut cp = Checkpoint {
            id: 1,
            site: "tw_a".into(),
            seq: 5,
            before: "2026-03-02T00:00:00.000Z".into(),
            findings: 1,
            health: 0,
            inventories: 0,
            boundary: prev,
            signature: None,
            public_key: None,
        };
        cp.sign(&key);
        entries.push(cp.entry(prev));
        let checkpoints = BTreeMap::from([(1, cp)]);
        let rows: Vec<Version> = states.iter().map(version).collect();
        let vk = key.verifying_key();
        let v = verify(
            "tw_a",
            &entries,
            &checkpoints,
            Some(&vk),
            &rows[1..],
            i64::MAX,
        );
        assert_eq!(v, Verdict::default(), "{}", said(&v));
        // Still there before the purge records its checkpoint after the
        // drop: not dropped yet (or its drop failed).
        let v = verify("tw_a", &entries, &checkpoints, Some(&vk), &rows, i64::MAX);
        assert_eq!(v, Verdict::default(), "{}", said(&v));
        // Put back after the drop.
        let prev = entries.last().unwrap().hash;
        let mut after = Checkpoint {
            id: 2,
            seq: 6,
            findings: 0,
            boundary: prev,
            ..checkpoints[&1].clone()
        };
        after.sign(&key);
        entries.push(after.entry(prev));
        let mut checkpoints = checkpoints;
        checkpoints.insert(2, after);
        let v = verify("tw_a", &entries, &checkpoints, Some(&vk), &rows, i64::MAX);
        assert!(
            said(&v).contains("finding row 1 of site tw_a was removed at seq 4 but is there again"),
            "{}",
            said(&v)
        );
        // … unless the rows were read before that checkpoint.
        let v = verify("tw_a", &entries, &checkpoints, Some(&vk), &rows, 5);
        assert_eq!(v, Verdict::default(), "{}", said(&v));
    }

    /// Health and inventory row versions are matched as findings are,
    /// table by table (a row key of one table never answers for
    /// another's), and a checkpoint must count their removals.
    #[test]
    fn health_and_inventory_versions_are_checked_table_by_table() {
        use crate::chain_rows::{HEALTH_REMOVED, HEALTH_VERSION, INVENTORY_VERSION};
        let row = |kind: &'static str, id: i64, n: u8| Version {
            kind,
            row: id,
            stored: Stored {
                digest: [n; 32],
                at: "2026-03-01T00:00:00.000Z".into(),
            },
            label: format!("{kind} {id}"),
        };
        let rows = [row(HEALTH_VERSION, 1, 1), row(INVENTORY_VERSION, 2, 2)];
        let mut prev = GENESIS;
        let mut entries: Vec<Entry> = rows
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let seq = i64::try_from(i).unwrap() + 1;
                let e = Entry::new(
                    "tw_a",
                    seq,
                    v.kind,
                    v.row,
                    &v.stored.at,
                    v.stored.digest,
                    prev,
                );
                prev = e.hash;
                e
            })
            .collect();
        assert_eq!(check(&entries, &rows), Verdict::default());
        // An inventory's vendor row edited: its digest changed.
        let v = check(&entries, &[rows[0].clone(), row(INVENTORY_VERSION, 2, 9)]);
        assert!(
            said(&v).contains("inventory-version 2 of site tw_a was edited after it was stored (its entry is seq 2)"),
            "{}",
            said(&v)
        );
        // A health row deleted.
        let v = check(&entries, &rows[1..]);
        assert!(
            said(&v).contains(
                "health row 1 of site tw_a (seq 1, at 2026-03-01T00:00:00.000Z) was deleted"
            ),
            "{}",
            said(&v)
        );
        // The health row's key and digest as an inventory's: another table.
        let v = check(&entries, &[rows[1].clone(), row(INVENTORY_VERSION, 1, 1)]);
        assert!(
            said(&v).contains("health row 1 of site tw_a"),
            "{}",
            said(&v)
        );
        assert_eq!(v.unproven_rows, 1);
        // An extra health row: not proven.
        let mut extra = rows.to_vec();
        extra.push(row(HEALTH_VERSION, 3, 3));
        let v = check(&entries, &extra);
        assert!(v.problems.is_empty(), "{}", said(&v));
        assert_eq!(v.unproven_rows, 1);
        // A purge: the health row removed, a checkpoint that counts it.
        let removal = Entry::new(
            "tw_a",
            3,
            HEALTH_REMOVED,
            1,
            &rows[0].stored.at,
            [1; 32],
            prev,
        );
        prev = removal.hash;
        entries.push(removal);
        let mut cp = Checkpoint {
            id: 1,
            site: "tw_a".into(),
            seq: 4,
            before: "2026-03-02T00:00:00.000Z".into(),
            findings: 0,
            health: 1,
            inventories: 0,
            boundary: prev,
            signature: None,
            public_key: None,
        };
        let key = chain::SigningKey::from_bytes(&[7; 32]);
        let vk = key.verifying_key();
        let with = |cp: &Checkpoint| {
            let mut cp = cp.clone();
            cp.sign(&key);
            let mut entries = entries.clone();
            entries.push(cp.entry(prev));
            verify(
                "tw_a",
                &entries,
                &BTreeMap::from([(1, cp)]),
                Some(&vk),
                &rows[1..],
                i64::MAX,
            )
        };
        assert_eq!(with(&cp), Verdict::default());
        cp.health = 2;
        assert!(
            said(&with(&cp))
                .contains("records 2 health report rows removed, but 1 removals come before it"),
            "{}",
            said(&with(&cp))
        );
    }

    /// A chain built entry by entry (`version`, `removed`, checkpoints).
    struct Chain {
        entries: Vec<Entry>,
        checkpoints: BTreeMap<i64, Checkpoint>,
    }

    impl Chain {
        fn new() -> Self {
            Self {
                entries: Vec::new(),
                checkpoints: BTreeMap::new(),
            }
        }
        fn head(&self) -> i64 {
            self.entries.last().map_or(0, |e| e.seq)
        }
        fn push(&mut self, kind: &'static str, f: &FindingState) {
            let prev = self.entries.last().map_or(GENESIS, |e| e.hash);
            let seq = self.head() + 1;
            self.entries
                .push(Entry::new("tw_a", seq, kind, f.id, &f.at, f.digest(), prev));
        }
        /// A checkpoint counting `findings` removals, `before` a Monday.
        fn checkpoint(&mut self, before: &str, findings: i64) {
            let prev = self.entries.last().map_or(GENESIS, |e| e.hash);
            let id = i64::try_from(self.checkpoints.len()).unwrap() + 1;
            let cp = Checkpoint {
                id,
                site: "tw_a".into(),
                seq: self.head() + 1,
                before: before.into(),
                findings,
                health: 0,
                inventories: 0,
                boundary: prev,
                signature: None,
                public_key: None,
            };
            self.entries.push(cp.entry(prev));
            self.checkpoints.insert(id, cp);
        }
        fn check(&self, rows: &[&FindingState], read_at: i64) -> Verdict {
            let rows: Vec<Version> = rows.iter().map(|f| version(f)).collect();
            verify(
                "tw_a",
                &self.entries,
                &self.checkpoints,
                None,
                &rows,
                read_at,
            )
        }
    }

    /// Problems other than the checkpoints' missing signatures (these
    /// tests sign none).
    fn changes(v: &Verdict) -> Vec<String> {
        v.problems
            .iter()
            .map(|p| p.0.clone())
            .filter(|p| !p.contains("is not signed"))
            .collect()
    }

    /// A state observed on `day` of March 2026 (2026-03-02 is a Monday).
    fn on(id: i64, day: u32) -> FindingState {
        let mut f = state(id, 1);
        f.at = format!("2026-03-{day:02}T10:00:00.000Z");
        f
    }

    /// `verify` reads the chain, then the rows, then what was appended
    /// meanwhile: a purge that recorded its removals and dropped the rows
    /// in between is no deletion (before, the rows read after the drop
    /// against the chain read before the removals were "deleted"); a
    /// removal appended after the read, of a row still there when it was
    /// read, is no row put back; a version chained after the read is not
    /// missing.
    #[test]
    fn a_purge_between_the_chain_read_and_the_rows_read_is_no_deletion() {
        let (old, kept) = (on(1, 1), on(2, 3));
        let mut c = Chain::new();
        c.push(VERSION, &old);
        c.push(VERSION, &kept);
        let read_at = c.head();
        // The purge, while `verify` reads: removal, checkpoint, drop.
        c.push(REMOVED, &old);
        c.checkpoint("2026-03-02T00:00:00.000Z", 1);
        c.checkpoint("2026-03-02T00:00:00.000Z", 0);
        // Rows read after the drop.
        let v = c.check(&[&kept], read_at);
        assert!(changes(&v).is_empty(), "{v:?}");
        assert_eq!((v.unproven_rows, v.accounted), (0, 0));
        // Rows read before the drop (the removal was appended after).
        let v = c.check(&[&old, &kept], read_at);
        assert!(changes(&v).is_empty(), "{v:?}");
        // Without the entries appended meanwhile (what `verify` read
        // before): the dropped row named deleted.
        let before_the_purge = Chain {
            entries: c.entries[..2].to_vec(),
            checkpoints: BTreeMap::new(),
        };
        let v = before_the_purge.check(&[&kept], i64::MAX);
        assert!(said(&v).contains("was deleted"), "{v:?}");
        // A version chained after the read, its row inserted after it too.
        let late = on(3, 4);
        c.push(VERSION, &late);
        let v = c.check(&[&kept], read_at);
        assert!(changes(&v).is_empty(), "{v:?}");
        // … or before it: covered.
        let v = c.check(&[&kept, &late], read_at);
        assert!(changes(&v).is_empty() && v.unproven_rows == 0, "{v:?}");
        // A row deleted before the read is still named; one the purge
        // removed and dropped (its checkpoint after the drop recorded)
        // before the read, there again, too.
        let v = c.check(&[], read_at);
        assert!(said(&v).contains("finding row 2 of site tw_a"), "{v:?}");
        let v = c.check(&[&old, &kept, &late], c.head());
        assert!(said(&v).contains("is there again"), "{v:?}");
        // Read after its removals but before its drop: no row put back.
        let v = c.check(&[&old, &kept, &late], c.head() - 2);
        assert!(changes(&v).is_empty(), "{v:?}");
    }

    /// A report that lands in a week while a purge drops it: chained
    /// before the purge's checkpoint (it arrived after the purge read the
    /// week's rows) or between its checkpoint and the one it records after
    /// the drop, it went with the week, and a ClickHouse checkpoint after
    /// its entry whose `before` is later than its day accounts for it. No
    /// other row: one of a week kept, one chained after the last such
    /// checkpoint, one before a SQL purge's checkpoint (row by row: its
    /// `before` does not say every row before it went).
    #[test]
    fn a_report_landing_in_a_dropped_week_is_accounted_for_by_its_checkpoint() {
        let (read, landed, kept) = (on(1, 1), on(2, 1), on(3, 2));
        let landed_late = on(4, 1);
        let mut c = Chain::new();
        c.push(VERSION, &read);
        c.push(VERSION, &kept);
        // Inserted after the purge read the week, chained before its
        // removals.
        c.push(VERSION, &landed);
        c.push(REMOVED, &read);
        c.checkpoint("2026-03-02T00:00:00.000Z", 1);
        // Inserted before the drop, chained after the checkpoint.
        c.push(VERSION, &landed_late);
        // (Before the checkpoint after the drop: named deleted.)
        let v = c.check(&[&kept], c.head());
        assert!(
            said(&v).contains("finding row 4 of site tw_a")
                && !said(&v).contains("finding row 2 of site tw_a"),
            "{v:?}"
        );
        c.checkpoint("2026-03-02T00:00:00.000Z", 0);
        let v = c.check(&[&kept], c.head());
        assert!(changes(&v).is_empty(), "{v:?}");
        assert_eq!(v.accounted, 2);
        // Landed after the drop: there, and verified as what it is.
        let v = c.check(&[&kept, &landed], c.head());
        assert!(changes(&v).is_empty() && v.accounted == 1, "{v:?}");
        // Deleted from a week kept: named.
        let v = c.check(&[], c.head());
        assert!(said(&v).contains("finding row 3 of site tw_a"), "{v:?}");
        assert_eq!(v.accounted, 2);
        // Chained after the last checkpoint, in a dropped week: a
        // checkpoint before it says nothing of it (a purge of every week
        // there is, `before` next Monday, would otherwise let any later row
        // go unseen).
        let after = on(5, 1);
        c.push(VERSION, &after);
        let v = c.check(&[&kept], c.head());
        assert!(said(&v).contains("finding row 5 of site tw_a"), "{v:?}");
        // A SQL purge's checkpoint (its removals of `finding` rows) states
        // nothing of ClickHouse's weeks.
        let mut sql = Chain::new();
        sql.push(VERSION, &landed);
        let sql_row = on(9, 1);
        sql.push(chain::FINDING, &sql_row);
        sql.push(REMOVED, &sql_row);
        sql.checkpoint("2026-03-02T00:00:00.000Z", 1);
        let v = sql.check(&[], sql.head());
        assert!(said(&v).contains("finding row 2 of site tw_a"), "{v:?}");
        assert_eq!(v.accounted, 0);
    }

    #[test]
    fn weeks_start_on_mondays_and_only_older_days_may_be_late() {
        let ms = |iso: &str| crate::timefmt::parse_instant(iso).unwrap();
        // 2026-03-02 is a Monday, 2026-03-08 a Sunday.
        for day in [
            "2026-03-02T00:00:00Z",
            "2026-03-05T12:00:00Z",
            "2026-03-08T23:59:59Z",
        ] {
            assert_eq!(week_start(ms(day)), "2026-03-02", "{day}");
        }
        assert_eq!(week_start(ms("2026-03-01T23:59:59Z")), "2026-02-23");
        // Before 1970 nothing is rendered: the first day.
        assert_eq!(week_start(0), "1970-01-01");
        // The last hour of a Sunday already looks at the week before the
        // next Monday.
        assert_eq!(this_week(ms("2026-03-08T22:59:00Z")), "2026-03-02");
        assert_eq!(this_week(ms("2026-03-08T23:30:00Z")), "2026-03-09");
        let purged = Some("2026-03-02T00:00:00.000Z");
        let this = "2026-03-09";
        assert!(late("2026-03-01T10:00:00.000Z", this, purged));
        assert!(!late("2026-03-02T00:00:00.000Z", this, purged));
        assert!(!late("2026-03-01T10:00:00.000Z", this, None));
        // A checkpoint whose `before` is after this week's Monday (no
        // ClickHouse purge records one) makes no row of this week late.
        assert!(!late("2026-03-09T10:00:00.000Z", this, Some("2026-03-16")));
        // A day that is not one is 1970-01-01: late after any purge.
        assert!(late("garbage", this, purged));
    }

    #[test]
    fn partition_days_stay_in_range() {
        assert_eq!(partition_day("2026-01-02T03:04:05.000Z"), "2026-01-02");
        assert_eq!(partition_day("9999-12-31T23:59:59.999Z"), "2105-12-31");
        assert_eq!(partition_day("1970-01-01T00:00:00.000Z"), "1970-01-01");
        assert_eq!(partition_day("0001-01-01T00:00:00.000Z"), "1970-01-01");
        assert_eq!(partition_day("garbage"), "1970-01-01");
        assert_eq!(partition_day("2026-1-02T"), "1970-01-01");
        assert_eq!(partition_day("2026-01-0é"), "1970-01-01");
    }

    proptest! {
        /// Any one row edited, deleted or added, or any two entries
        /// swapped, is seen: a problem, or (an added row) not proven.
        #[test]
        fn any_change_is_seen(n in 2usize..12, pick in 0usize..100, what in 0u8..4, by in 1i64..1000) {
            let states: Vec<FindingState> = (1..=i64::try_from(n).unwrap()).map(|id| state(id, 1)).collect();
            let entries = chain_of(&states);
            let mut rows: Vec<Version> = states.iter().map(version).collect();
            let i = pick % n;
            let mut entries2 = entries.clone();
            match what {
                0 => {
                    let mut f = states[i].clone();
                    f.count += by;
                    rows[i] = version(&f);
                }
                1 => {
                    rows.remove(i);
                }
                2 => rows.push(version(&state(1000 + by, 1))),
                _ => entries2.swap(i, (i + 1) % n),
            }
            let v = check(&entries2, &rows);
            if what == 2 {
                prop_assert!(v.problems.is_empty() && v.unproven_rows == 1);
            } else {
                prop_assert!(!v.problems.is_empty());
            }
        }
    }
}
