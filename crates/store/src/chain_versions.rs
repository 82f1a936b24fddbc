//! The check of a whole chain against the finding row versions of the
//! events store (ClickHouse, `--events`), pure. A row version never
//! changes once inserted (a resent finding is another row), so the check
//! matches rows and entries as sets of (row key, digest): a chained
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
//! [`chain::verify`], as for the SQL store's chain.

use std::collections::{BTreeMap, BTreeSet};

use crate::chain::{self, Check, Checkpoint, Entry, Hash, Problem, Rows, Stored, GENESIS};

/// A finding row version as the events store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Its row key (the `row` of its entry).
    pub row: i64,
    pub stored: Stored,
    /// How a reader finds it in ClickHouse (token, page view, type,
    /// vendor), for messages.
    pub label: String,
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
}

/// Every problem of a site's whole chain (`entries` from seq 1) against
/// the row versions `versions` (all of the site's), and the rows it does
/// not cover.
pub fn verify(
    site: &str,
    entries: &[Entry],
    checkpoints: &BTreeMap<i64, Checkpoint>,
    key: Option<&chain::VerifyingKey>,
    versions: &[Version],
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
    // Each version's latest entry: chained, or removed by a purge.
    let mut chained: BTreeMap<(i64, Hash), &Entry> = BTreeMap::new();
    let mut removed: BTreeMap<(i64, Hash), &Entry> = BTreeMap::new();
    for e in entries {
        let k = (e.row, e.digest);
        match e.kind.as_str() {
            chain::VERSION => {
                removed.remove(&k);
                chained.insert(k, e);
            }
            chain::REMOVED => {
                chained.remove(&k);
                removed.insert(k, e);
            }
            _ => {}
        }
    }
    let chained_rows: BTreeSet<i64> = chained.keys().map(|(row, _)| *row).collect();
    let mut seen: BTreeSet<(i64, Hash)> = BTreeSet::new();
    let mut edited: BTreeSet<i64> = BTreeSet::new();
    let mut unproven = Vec::new();
    let mut unproven_rows = 0usize;
    for v in versions {
        let k = (v.row, v.stored.digest);
        if !seen.insert(k) {
            // The same version twice (a retried insert ClickHouse has not
            // merged yet): one row.
            continue;
        }
        match (chained.get(&k), removed.get(&k)) {
            (Some(e), _) if e.at == v.stored.at => {}
            (_, Some(e)) => push(format!(
                "{} of site {site} was removed at seq {} but is there again: it was put back without the collector",
                v.label, e.seq
            )),
            _ if chained_rows.contains(&v.row) => {
                edited.insert(v.row);
                let seqs: Vec<String> = chained
                    .range((v.row, [0; 32])..=(v.row, [0xff; 32]))
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
                        "{} of site {site} is in no entry of the chain: not proven (a collector stopped between its ClickHouse insert and the chain's commit, or the row was inserted without the collector)",
                        v.label
                    ));
                }
            }
        }
    }
    for ((row, _), e) in &chained {
        if !seen.contains(&(*row, e.digest)) && !edited.contains(row) {
            push(format!(
                "finding row {row} of site {site} (seq {}, at {}) was deleted: no purge records its removal",
                e.seq, e.at
            ));
        }
    }
    Verdict {
        problems,
        unproven,
        unproven_rows,
    }
}
