//! The writer: handlers send accepted batches over a bounded channel; a
//! writer thread commits whatever is queued in one transaction (group
//! commit) and only then has each handler told (by a task on the async
//! runtime, [`Answers`]), which answers 204. "Acknowledged" therefore
//! means "fsync'd".
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
/// round). If the handler is gone, the answering task ([`Answers`])
/// drops the batch itself, on a runtime worker too.
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
    /// `capacity` batches; the handle ends when they all have. Called
    /// inside a Tokio runtime, committed batches are answered by a task
    /// spawned on it ([`Answers`]); outside one, by the writer threads.
    pub fn spawn(
        store: Arc<dyn Store>,
        capacity: usize,
        events: Arc<Events>,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let thread_events = events.clone();
        let answers = Answers::on_current_runtime();
        let handle = std::thread::Builder::new()
            .name("tagwatch-writer".into())
            .spawn(move || run(&*store, rx, &thread_events, &answers))?;
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

/// Runs the writer threads: this one and `store.writers() - 1` more.
fn run(store: &dyn Store, rx: mpsc::Receiver<Msg>, events: &Events, answers: &Answers) {
    let queue = Mutex::new(Queue {
        rx,
        purge: None,
        stopping: false,
    });
    std::thread::scope(|scope| {
        for n in 1..store.writers().max(1) {
            let queue = &queue;
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
        write_groups(store, &queue, events, answers);
    });
}

/// A batch and how its commit went.
type Answer = (Job, Result<(), Arc<StoreError>>);

/// Answers committed (or refused) batches from a task on the runtime that
/// serves their requests, so that the writer goes on to its next group
/// and wakes one task a group, not each batch's handler: each answer wakes
/// its handler's task (a oneshot send), ≈ 16–20 a group commit, and a wake
/// from outside the runtime goes through its shared queue and may unpark a
/// worker each time (a worker woken on the writer's core took it from the
/// writer: ≈ 6 % of the writer thread's samples under load, fourteenth
/// round), where a wake from a worker goes to that worker's own queue.
/// Against a thread of its own answering them (the fourteenth round's
/// way): ≈ 0.5 context switches a batch instead of ≈ 0.7, the collector's
/// CPU a batch 3–8 % lower (docs/benchmarks.md, sixteenth round). Nothing is
/// answered before its commit has returned: acknowledged still means
/// committed. Without a runtime (or once it is gone), the writer thread
/// answers itself: slower, not wrong.
struct Answers(Option<mpsc::UnboundedSender<Vec<Answer>>>);

impl Answers {
    /// The answering task on the runtime this is called in, if any. It
    /// ends when the last writer thread has ended (the sender is dropped)
    /// and every group sent before has been answered. The channel holds at
    /// most the groups of the batches queued (`serve`'s `WRITE_QUEUE`) and
    /// in flight: each batch is answered once.
    fn on_current_runtime() -> Self {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Self(None);
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Answer>>();
        runtime.spawn(async move {
            while let Some(group) = rx.recv().await {
                for (job, result) in group {
                    job.answer(result);
                }
            }
        });
        Self(Some(tx))
    }

    fn send(&self, group: Vec<Answer>) {
        let unsent = match &self.0 {
            Some(tx) => match tx.send(group) {
                Ok(()) => return,
                Err(mpsc::error::SendError(group)) => group,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A SQLite store in a file of its own, removed with its WAL on drop.
    struct TempStore(std::path::PathBuf, Arc<dyn Store>);

    impl TempStore {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("tagwatch-writer-{}-{name}.db", std::process::id()));
            let url = format!("sqlite:{}", path.display());
            let store = tagwatch_store::open(&url, 1, tagwatch_store::Checks::default()).unwrap();
            TempStore(path, store)
        }
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            for end in ["", "-wal", "-shm"] {
                let mut file = self.0.clone().into_os_string();
                file.push(end);
                let _ = std::fs::remove_file(file);
            }
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Writes one (empty) batch from `runtime` and stops the writer.
    fn write_one(runtime: &tokio::runtime::Runtime, writer: &Writer) -> Result<(), WriteError> {
        runtime.block_on(async {
            let written = writer.write(Batch::default()).await;
            writer.stop().await;
            written
        })
    }

    #[test]
    fn a_writer_started_in_a_runtime_answers_through_a_task_on_it() {
        let store = TempStore::new("task");
        let runtime = runtime();
        let (writer, thread) = {
            let _inside = runtime.enter();
            Writer::spawn(store.1.clone(), 4, Arc::new(Events::new())).unwrap()
        };
        assert!(write_one(&runtime, &writer).is_ok());
        thread.join().unwrap();
    }

    #[test]
    fn a_writer_started_outside_a_runtime_answers_from_its_thread() {
        let store = TempStore::new("thread");
        let (writer, thread) = Writer::spawn(store.1.clone(), 4, Arc::new(Events::new())).unwrap();
        assert!(write_one(&runtime(), &writer).is_ok());
        thread.join().unwrap();
    }

    /// The answering task's runtime is gone while the writer runs (shut
    /// down, dropped): batches written from another runtime are still
    /// answered, by the writer thread, not dropped unanswered.
    #[test]
    fn batches_are_answered_after_the_answering_task_s_runtime_is_gone() {
        let store = TempStore::new("gone");
        let first = runtime();
        let (writer, thread) = {
            let _inside = first.enter();
            Writer::spawn(store.1.clone(), 4, Arc::new(Events::new())).unwrap()
        };
        drop(first);
        assert!(write_one(&runtime(), &writer).is_ok());
        thread.join().unwrap();
    }
}
