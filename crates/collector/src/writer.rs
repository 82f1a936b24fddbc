//! The writer: handlers send accepted batches over a bounded channel; a
//! writer thread commits whatever is queued in one transaction (group
//! commit) and only then has each handler told (by a thread of its own,
//! [`Answers`]), which answers 204. "Acknowledged" therefore means
//! "fsync'd".
//!
//! One thread on SQLite; on PostgreSQL as many as the store has write
//! connections (`Store::writers`): the thread that takes the queue takes
//! what is in it and commits it while another takes the next group, so one
//! group's statements run while another's commit waits for the WAL flush.
//! What orders the rows (dedupe, a site's chain) is the database's locks,
//! as between collectors sharing it.
//!
//! Retention runs here too, between groups: a purge goes chunk by chunk,
//! one short transaction each, stepped by whichever thread holds the queue.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use crate::events::Events;
use tagwatch_store::timefmt;
use tagwatch_store::{Batch, PreparedBatch, Purged, Store, StoreError, PURGE_CHUNK};

/// Most batches committed in one transaction.
const MAX_GROUP: usize = 256;

pub enum Msg {
    Write(Job),
    /// Delete reports observed longer ago than this. Ignored while a purge
    /// is still under way.
    Retain(Duration),
    /// Commit everything queued before this, then stop.
    Stop,
}

pub struct Job {
    /// Prepared by the handler's task, off the writer thread.
    pub batch: PreparedBatch,
    /// The batch handed back, with why the store refused it (shared by the
    /// batches of a group), once it is committed or refused.
    pub done: oneshot::Sender<Done>,
}

impl Job {
    /// Tells the handler how its batch went, handing the batch back.
    fn answer(self, result: Result<(), Arc<StoreError>>) {
        let Job { batch, done } = self;
        let _ = done.send(Done { batch, result });
    }
}

/// What the writer hands back to a batch's handler: the result, and the
/// batch itself, so that its records are freed on a runtime worker, the
/// thread that allocated them (≈ 160 strings a golden batch), not on the
/// writer thread. mimalloc frees a block from another thread through the
/// page's cross-thread list: atomics paid by the writer, the serial bound
/// of ingest, and a collection of that list paid again by the allocating
/// worker (`_mi_page_free_collect`, 2–4.5 % of the collector's CPU under
/// load: docs/benchmarks.md, "The HTTP workers' allocations", thirteenth
/// round). If the handler is gone, the answering thread ([`Answers`])
/// drops the batch itself.
pub struct Done {
    batch: PreparedBatch,
    result: Result<(), Arc<StoreError>>,
}

/// Handle the HTTP layer keeps.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    events: Arc<Events>,
}

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The writer has stopped (shutting down).
    #[error("the writer has stopped")]
    Stopped,
    /// The store refused the transaction.
    #[error("store: {0}")]
    Store(#[source] Arc<StoreError>),
}

impl Writer {
    /// Starts the writer threads (`store.writers()`) with a queue of
    /// `capacity` batches; the handle ends when they all have.
    pub fn spawn(
        store: Arc<dyn Store>,
        capacity: usize,
        events: Arc<Events>,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let thread_events = events.clone();
        let handle = std::thread::Builder::new()
            .name("tagwatch-writer".into())
            .spawn(move || run(&*store, rx, &thread_events))?;
        Ok((Self { tx, events }, handle))
    }

    /// Queues a batch and waits until it is committed. What its commit
    /// needs that does not need the database is computed here, on the
    /// handler's task ([`PreparedBatch`]), not on the writer thread, the
    /// serial bound of ingest.
    pub async fn write(&self, batch: Batch) -> Result<(), WriteError> {
        let batch = PreparedBatch::new(batch);
        let (done, wait) = oneshot::channel();
        self.events.queued();
        let result = async {
            self.tx
                .send(Msg::Write(Job { batch, done }))
                .await
                .map_err(|_| WriteError::Stopped)?;
            match wait.await {
                Ok(Done { batch, result }) => {
                    // Freed here, on the runtime's thread (see `Done`).
                    drop(batch);
                    result.map_err(WriteError::Store)
                }
                Err(_) => Err(WriteError::Stopped),
            }
        }
        .await;
        self.events.dequeued();
        result
    }

    /// Asks the writer to delete reports observed more than `keep` ago,
    /// after what is queued. Does not wait for it.
    pub async fn retain(&self, keep: Duration) -> Result<(), WriteError> {
        self.tx
            .send(Msg::Retain(keep))
            .await
            .map_err(|_| WriteError::Stopped)
    }

    /// Asks the writer to finish what is queued and stop.
    pub async fn stop(&self) {
        let _ = self.tx.send(Msg::Stop).await;
    }
}

/// A retention purge under way.
struct Purge {
    /// ISO 8601: rows observed before this go.
    before: String,
    removed: Purged,
}

impl Purge {
    fn start(keep: Duration) -> Self {
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        Self {
            before: timefmt::iso_from_ms(timefmt::now_ms().saturating_sub(keep_ms)),
            removed: Purged::default(),
        }
    }

    /// Deletes one chunk; `true` when the purge is over.
    fn step(&mut self, store: &dyn Store) -> bool {
        match store.purge(&self.before, PURGE_CHUNK) {
            Ok(purged) => {
                self.removed.add(&purged);
                if purged.maybe_more(PURGE_CHUNK) {
                    return false;
                }
                let r = &self.removed;
                if r.total() > 0 {
                    tracing::info!(
                        event = "retention",
                        findings = r.findings,
                        health = r.health,
                        inventories = r.inventories,
                        before = self.before.as_str(),
                        "retention: removed {} findings, {} health reports, {} inventories observed before {}",
                        r.findings,
                        r.health,
                        r.inventories,
                        self.before
                    );
                }
                true
            }
            Err(e) => {
                tracing::error!(
                    event = "retention_failed",
                    error = e.to_string().as_str(),
                    "retention: deleting old reports failed: {e}; trying again at the next run"
                );
                true
            }
        }
    }
}

/// The queue and what the writer threads share with it.
struct Queue {
    rx: mpsc::Receiver<Msg>,
    purge: Option<Purge>,
    /// `Stop` was received: the threads finish their group and end.
    stopping: bool,
}

/// Runs the writer threads: this one and `store.writers() - 1` more, and
/// the thread that answers their groups ([`Answers`]).
fn run(store: &dyn Store, rx: mpsc::Receiver<Msg>, events: &Events) {
    let queue = Mutex::new(Queue {
        rx,
        purge: None,
        stopping: false,
    });
    let (to_answer, answering) = std::sync::mpsc::channel::<Vec<Answer>>();
    // Two scopes: the answering thread ends when the last sender is gone,
    // after every writer thread (the inner scope) has ended, so the outer
    // scope's end waits for the last answers too.
    std::thread::scope(|outer| {
        let spawned = std::thread::Builder::new()
            .name("tagwatch-answer".into())
            .spawn_scoped(outer, move || {
                for group in answering {
                    for (job, result) in group {
                        job.answer(result);
                    }
                }
            });
        let answers = Answers(match spawned {
            Ok(_) => Some(to_answer),
            Err(e) => {
                // The writer answers itself: slower, not wrong.
                tracing::warn!(
                    event = "answer_thread_failed",
                    error = e.to_string().as_str(),
                    "starting the answering thread failed ({e}); the writer answers"
                );
                None
            }
        });
        std::thread::scope(|scope| {
            for n in 1..store.writers().max(1) {
                let (queue, answers) = (&queue, &answers);
                let spawned = std::thread::Builder::new()
                    .name(format!("tagwatch-writer-{n}"))
                    .spawn_scoped(scope, move || write_groups(store, queue, events, answers));
                if let Err(e) = spawned {
                    // Fewer threads: slower, not wrong.
                    tracing::warn!(
                        event = "writer_thread_failed",
                        error = e.to_string().as_str(),
                        "starting another writer thread failed ({e}); committing with fewer"
                    );
                }
            }
            write_groups(store, &queue, events, &answers);
        });
        drop(answers);
    });
}

/// A batch and how its commit went.
type Answer = (Job, Result<(), Arc<StoreError>>);

/// Answers committed (or refused) batches on a thread of its own, so that
/// the writer goes on to its next group: each answer wakes the batch's
/// handler task (a oneshot send, a tokio wake-up that may unpark a runtime
/// worker), ≈ 16 a group commit, and a worker woken on the writer's core
/// took it from the writer — ≈ 6 % of the writer thread's samples under
/// load (docs/benchmarks.md, fourteenth round). One send a group instead.
/// Nothing is answered before its commit has returned: acknowledged still
/// means committed.
struct Answers(Option<std::sync::mpsc::Sender<Vec<Answer>>>);

impl Answers {
    fn send(&self, group: Vec<Answer>) {
        let unsent = match &self.0 {
            Some(tx) => match tx.send(group) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(group)) => group,
            },
            None => group,
        };
        for (job, result) in unsent {
            job.answer(result);
        }
    }
}

/// One writer thread: takes the queue, takes what is queued (up to
/// [`MAX_GROUP`] batches) and lets go of it, commits, and again.
fn write_groups(store: &dyn Store, queue: &Mutex<Queue>, events: &Events, answers: &Answers) {
    loop {
        let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.stopping {
            break;
        }
        // During a purge, do not wait for writes: chunks go between groups.
        let mut next = if q.purge.is_some() {
            match q.rx.try_recv() {
                Ok(msg) => Some(msg),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    q.stopping = true;
                    break;
                }
            }
        } else {
            match q.rx.blocking_recv() {
                Some(msg) => Some(msg),
                None => {
                    q.stopping = true;
                    break;
                }
            }
        };
        let mut group: Vec<Job> = Vec::new();
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write(job) => group.push(job),
                Msg::Retain(keep) => {
                    q.purge.get_or_insert_with(|| Purge::start(keep));
                }
                Msg::Stop => q.stopping = true,
            }
            if !q.stopping && group.len() < MAX_GROUP {
                next = q.rx.try_recv().ok();
            }
        }
        if group.is_empty() {
            step_purge(store, &mut q);
            continue;
        }
        drop(q);
        commit_group(store, group, events, answers);
        // A purge chunk between groups, unless another thread holds the
        // queue (it steps the purge itself when nothing is queued).
        if let Ok(mut q) = queue.try_lock() {
            step_purge(store, &mut q);
        }
    }
    // Anything sent after Stop is refused: its handler sees `Stopped`.
    queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .rx
        .close();
}

/// One chunk of the purge under way, if any. Shutting down leaves the rest
/// of a purge to the next start.
fn step_purge(store: &dyn Store, q: &mut Queue) {
    if !q.stopping && q.purge.as_mut().is_some_and(|p| p.step(store)) {
        q.purge = None;
    }
}

fn commit_group(store: &dyn Store, group: Vec<Job>, events: &Events, answers: &Answers) {
    if group.is_empty() {
        return;
    }
    let batches: Vec<&PreparedBatch> = group.iter().map(|j| &j.batch).collect();
    let timed = |batches: &[&PreparedBatch]| {
        let started = Instant::now();
        let result = store.commit_prepared(batches);
        events.committed(started.elapsed(), result.is_ok());
        result
    };
    let mut result = timed(&batches);
    if let Err(e) = &result {
        if e.lost_connection() {
            // Once more on a new connection; if the store is down, batch by
            // batch would only wait for it once per batch.
            tracing::warn!(
                event = "store_reconnect",
                error = e.to_string().as_str(),
                "lost the connection to the store ({e}); reconnecting"
            );
            result = timed(&batches);
        }
    }
    let result = match result {
        Err(e) if e.lost_connection() => {
            tracing::error!(
                event = "store_unreachable",
                error = e.to_string().as_str(),
                "the store is unreachable: {e}"
            );
            let e = Arc::new(e);
            answers.send(group.into_iter().map(|job| (job, Err(e.clone()))).collect());
            return;
        }
        other => other,
    };
    match result {
        Ok(first_seen) => {
            // Logged (and queued for the webhook) before anyone hears back.
            events.first_seen(&first_seen);
            record_releases(store, &batches, events);
            answers.send(group.into_iter().map(|job| (job, Ok(()))).collect());
        }
        Err(group_error) => {
            // One bad batch must not sink the others: retry one by one.
            if group.len() > 1 {
                tracing::warn!(
                    event = "group_commit_failed",
                    error = group_error.to_string().as_str(),
                    "group commit failed ({group_error}); retrying batches one by one"
                );
            }
            for job in group {
                let result = timed(&[&job.batch]).map_err(|e| {
                    tracing::error!(
                        event = "batch_failed",
                        error = e.to_string().as_str(),
                        "storing a batch failed: {e}"
                    );
                    Arc::new(e)
                });
                let result = result.map(|first_seen| {
                    events.first_seen(&first_seen);
                    record_releases(store, &[&job.batch], events);
                });
                answers.send(vec![(job, result)]);
            }
        }
    }
}

/// The releases of committed batches and what each had, for the release
/// webhook (`Store::record_releases`). A failure here loses no report (they
/// are committed) and no alert for good: what was not recorded is
/// recorded, and alerted, with the next report of that release that has it.
fn record_releases(store: &dyn Store, batches: &[&PreparedBatch], events: &Events) {
    let batches: Vec<&Batch> = batches.iter().map(|p| p.batch()).collect();
    match store.record_releases(&batches) {
        Ok(news) => events.release_news(&news),
        Err(e) => tracing::warn!(
            event = "release_record_failed",
            error = e.to_string().as_str(),
            "recording the releases of a group failed ({e}); retried with their next reports"
        ),
    }
}
