//! The chain digests of the finding rows a SQLite commit inserts, hashed on
//! a helper thread while the commit's statements run.
//!
//! A finding row's digest is the SHA-256 of its canonical form, which
//! starts with the row's id (`chain.rs`), so it cannot be hashed before
//! the id is known. On SQLite it is known before the statements run for
//! a commit whose rows are all new: SQLite gives them the largest id before
//! the commit plus one onwards, in the order the statements write them
//! (`db::all_inserted`, which checks it after the statements). The writer
//! thread, the serial bound of ingest, hands the rows with those ids to
//! this helper before stepping the statements, and takes the digests after
//! the check. Measured: the digests are ≈ 8 % of the writer thread's CPU
//! natively (SHA-256 6 %, the canonical forms 2 %; docs/benchmarks.md,
//! "The finding digests off the writer").
//!
//! The writer never waits for the helper: both take rows from one cursor,
//! and after the statements the writer hashes the rows nobody took yet and
//! any the helper took but has not finished (so a helper that got no core
//! costs the writer only the hashing it would have done anyway). When the
//! check says the ids were not those (a row met a stored one), the task is
//! dropped: the helper stops at its next row and the digests come from the
//! rows as read back, as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, OnceLock};

use crate::chain::{digest_with_id, FindingStateRef, Hash};
use crate::Prepared;

/// Fewest rows handed to the helper: below it, waking the helper (a
/// futex wake, a few µs on the writer) costs about what hashing the rows
/// does (≈ 0.5 µs a row natively). A monitor's batch has ≈ 15 findings
/// (the golden batch 15), a commit under load ≈ 16 batches.
pub(crate) const MIN_ROWS: usize = 8;

/// Where a finding is: (batch, finding) indexes into a commit's batches.
pub(crate) type Pos = (usize, usize);

/// A finding row as an all-new commit inserts it: its record's position,
/// its merged count and the position of the record whose `at` it keeps
/// (`db::Merged`), and the id SQLite will give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub first: Pos,
    pub at: Pos,
    pub count: i64,
    pub id: i64,
}

/// One commit's rows, shared by the writer and the helper.
struct Task {
    batches: Vec<Arc<Prepared>>,
    rows: Vec<Row>,
    /// The next row not taken.
    next: AtomicUsize,
    /// Each row's digest, once its taker has hashed it.
    done: Box<[OnceLock<Hash>]>,
}

impl Task {
    /// The digest of row `i` (`None` for a position outside the batches,
    /// which the writer never makes).
    fn digest(&self, i: usize) -> Option<Hash> {
        let r = self.rows.get(i)?;
        let prepared = self.batches.get(r.first.0)?;
        let f = prepared.batch.findings.get(r.first.1)?;
        if r.at == r.first && r.count == f.count {
            // The row is its record as sent: its form was written already.
            return digest_with_id(prepared.form(r.first.1)?, r.id);
        }
        let at = &self.batches.get(r.at.0)?.batch.findings.get(r.at.1)?.at;
        Some(FindingStateRef::of(f, r.id, r.count, at, f.release.as_deref()).digest())
    }

    /// Takes rows and hashes them until none is left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.rows.len() {
                break;
            }
            if let (Some(slot), Some(d)) = (self.done.get(i), self.digest(i)) {
                let _ = slot.set(d);
            }
        }
    }
}

/// The helper thread, started on first use; `None` if it could not be
/// (the writer then hashes every row itself).
#[derive(Default)]
pub(crate) struct Digester(OnceLock<Option<Sender<Arc<Task>>>>);

impl Digester {
    fn helper(&self) -> Option<&Sender<Arc<Task>>> {
        self.0
            .get_or_init(|| {
                let (tx, rx) = channel::<Arc<Task>>();
                std::thread::Builder::new()
                    .name("tagwatch-digests".into())
                    // Ends when the store (the sender) is dropped.
                    .spawn(move || rx.iter().for_each(|task| task.work()))
                    .ok()
                    .map(|_| tx)
            })
            .as_ref()
    }

    /// Starts hashing `rows` (of `batches`) on the helper.
    pub(crate) fn start(&self, batches: Vec<Arc<Prepared>>, rows: Vec<Row>) -> Pending {
        let done = rows.iter().map(|_| OnceLock::new()).collect();
        let task = Arc::new(Task {
            batches,
            rows,
            next: AtomicUsize::new(0),
            done,
        });
        if let Some(tx) = self.helper() {
            // A helper that has ended leaves the rows to `finish`.
            let _ = tx.send(task.clone());
        }
        Pending(task)
    }
}

/// A commit's rows being hashed. Dropped unfinished, the helper stops at
/// its next row.
pub(crate) struct Pending(Arc<Task>);

impl Pending {
    /// Every row's digest, in the order of the rows: the helper's where it
    /// finished them, the others hashed here. `None` if a row's position is
    /// not in the batches (the caller then hashes the rows as before).
    pub(crate) fn finish(self) -> Option<Vec<Hash>> {
        let task = &self.0;
        task.work();
        (0..task.rows.len())
            .map(|i| {
                task.done
                    .get(i)
                    .and_then(|slot| slot.get().copied())
                    .or_else(|| task.digest(i))
            })
            .collect()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.next.fetch_max(self.0.rows.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, FindingKind, FindingRecord, PreparedBatch, StoredEvidenceKind};
    use tagwatch_core::report::{EvidenceKind, FindingType};

    fn finding(pv: &str, vendor: &str) -> FindingRecord {
        FindingRecord {
            site: "tw_a".into(),
            page_view: pv.into(),
            page: "https://shop.example/".into(),
            kind: FindingKind::Monitor(FindingType::CookieBeforeConsent),
            vendor: vendor.into(),
            category: None,
            evidence: format!(r#"{{"cookie":"{vendor}","kind":"cookie"}}"#),
            evidence_kind: StoredEvidenceKind::Monitor(EvidenceKind::Cookie),
            consent: r#"{"necessary":true}"#.into(),
            consent_source: None,
            count: 1,
            at: String::new(),
            received_at: "2026-12-07T00:00:09.000Z".into(),
            user_agent: "ua".into(),
            raw: "{}".into(),
            release: None,
        }
    }

    fn batches() -> Vec<Arc<Prepared>> {
        (0..3)
            .map(|b| {
                let mut batch = Batch::default();
                for i in 0..7 {
                    let mut f = finding(&format!("pv-{b}"), &format!("vendor-{i}"));
                    f.at = format!("2026-12-07T00:00:0{i}.000Z");
                    if i % 2 == 0 {
                        f.release = Some(format!("release-{b}"));
                    }
                    batch.findings.push(f);
                }
                PreparedBatch::new(batch).shared()
            })
            .collect()
    }

    fn rows() -> Vec<Row> {
        (0..3)
            .flat_map(|b| (0..7).map(move |i| (b, i)))
            .enumerate()
            .map(|(k, (b, i))| Row {
                first: (b, i),
                // Some rows keep another record's (earlier) `at` and a
                // merged count, as a merged row does.
                at: if k % 5 == 0 { (b, 0) } else { (b, i) },
                count: 1 + i64::try_from(k).unwrap_or(0) % 3,
                id: 1000 + i64::try_from(k).unwrap_or(0),
            })
            .collect()
    }

    /// The digests as the writer hashed them before: each row's state.
    fn expected(batches: &[Arc<Prepared>], rows: &[Row]) -> Vec<Hash> {
        rows.iter()
            .map(|r| {
                let f = &batches[r.first.0].batch.findings[r.first.1];
                let at = &batches[r.at.0].batch.findings[r.at.1].at;
                FindingStateRef::of(f, r.id, r.count, at, f.release.as_deref()).digest()
            })
            .collect()
    }

    #[test]
    fn every_row_gets_its_own_states_digest_whoever_hashes_it() {
        let (batches, rows) = (batches(), rows());
        let want = expected(&batches, &rows);
        // With the helper, many times (it and the writer race for rows).
        let digester = Digester::default();
        for _ in 0..200 {
            let pending = digester.start(batches.clone(), rows.clone());
            assert_eq!(pending.finish().as_deref(), Some(want.as_slice()));
        }
        // Without a helper (it could not be started): the writer hashes all.
        let alone = Pending(Arc::new(Task {
            batches: batches.clone(),
            rows: rows.clone(),
            next: AtomicUsize::new(0),
            done: rows.iter().map(|_| OnceLock::new()).collect(),
        }));
        assert_eq!(alone.finish().as_deref(), Some(want.as_slice()));
        // A row the helper took but did not finish is hashed by the writer.
        let half = Arc::new(Task {
            batches: batches.clone(),
            rows: rows.clone(),
            next: AtomicUsize::new(rows.len()),
            done: rows.iter().map(|_| OnceLock::new()).collect(),
        });
        for (i, slot) in half.done.iter().enumerate().step_by(2) {
            let _ = slot.set(want[i]);
        }
        assert_eq!(Pending(half).finish().as_deref(), Some(want.as_slice()));
    }

    #[test]
    fn a_form_written_before_the_id_hashes_as_the_row_under_its_id() {
        for release in [None, Some("release-1".to_owned())] {
            let f = FindingRecord {
                release,
                at: "2026-12-07T00:00:01.000Z".into(),
                ..finding("pv", "vendor")
            };
            let form = FindingStateRef::of(&f, 0, f.count, &f.at, f.release.as_deref()).canonical();
            for id in [1, 255, 1 << 40, i64::MAX - 1] {
                let row = FindingStateRef::of(&f, id, f.count, &f.at, f.release.as_deref());
                assert_eq!(digest_with_id(&form, id), Some(row.digest()));
            }
            assert_eq!(digest_with_id(&form[..26], 1), None);
        }
    }

    #[test]
    fn a_position_outside_the_batches_is_refused_not_guessed() {
        let (batches, mut rows) = (batches(), rows());
        rows[4].first = (3, 0);
        assert_eq!(
            Digester::default()
                .start(batches.clone(), rows.clone())
                .finish(),
            None
        );
        rows[4].first = (0, 0);
        rows[5].at = (0, 7);
        assert_eq!(Digester::default().start(batches, rows).finish(), None);
    }

    #[test]
    fn a_dropped_task_stops_the_helper() {
        let (batches, rows) = (batches(), rows());
        let pending = Digester::default().start(batches, rows);
        let task = pending.0.clone();
        drop(pending);
        // Nothing is left to take: the helper's loop ends at its next row.
        assert!(task.next.load(Ordering::Relaxed) >= task.rows.len());
    }
}
