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
                        "{} of site {site} is in no entry of the chain: not proven (its collector stopped, or its control plane failed, between the ClickHouse insert and the chain's commit; or it was inserted without the collector)",
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::chain::{FindingState, CHECKPOINT, REMOVED, VERSION};
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
        verify("tw_a", entries, &BTreeMap::new(), None, versions)
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
        entries.push(Entry::new(
            "tw_a",
            5,
            CHECKPOINT,
            1,
            &cp.before,
            chain::sha256(&cp.canonical()),
            prev,
        ));
        let checkpoints = BTreeMap::from([(1, cp)]);
        let rows: Vec<Version> = states.iter().map(version).collect();
        let vk = key.verifying_key();
        let v = verify("tw_a", &entries, &checkpoints, Some(&vk), &rows[1..]);
        assert_eq!(v, Verdict::default(), "{}", said(&v));
        // Put back after its removal.
        let v = verify("tw_a", &entries, &checkpoints, Some(&vk), &rows);
        assert!(
            said(&v).contains("finding row 1 of site tw_a was removed at seq 4 but is there again"),
            "{}",
            said(&v)
        );
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
