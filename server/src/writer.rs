//! The single writer: handlers send accepted batches over a bounded channel;
//! one thread commits whatever is queued in one transaction (group commit)
//! and only then tells each handler, which answers 204. "Acknowledged"
//! therefore means "fsync'd".

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Batch, Store};

/// Most batches committed in one transaction.
const MAX_GROUP: usize = 256;

pub enum Msg {
    Write(Job),
    /// Commit everything queued before this, then stop.
    Stop,
}

pub struct Job {
    pub batch: Batch,
    pub done: oneshot::Sender<Result<(), String>>,
}

/// Handle the HTTP layer keeps.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

/// Why a batch was not stored.
#[derive(Debug)]
pub enum WriteError {
    /// The writer has stopped (shutting down).
    Stopped,
    /// The store refused the transaction.
    Store(String),
}

impl Writer {
    /// Starts the writer thread with a queue of `capacity` batches.
    pub fn spawn(
        store: Arc<dyn Store>,
        capacity: usize,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("tagwatch-writer".into())
            .spawn(move || run(&*store, rx))?;
        Ok((Self { tx }, handle))
    }

    /// Queues a batch and waits until it is committed.
    pub async fn write(&self, batch: Batch) -> Result<(), WriteError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Write(Job { batch, done }))
            .await
            .map_err(|_| WriteError::Stopped)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(WriteError::Store(e)),
            Err(_) => Err(WriteError::Stopped),
        }
    }

    /// Asks the writer to finish what is queued and stop.
    pub async fn stop(&self) {
        let _ = self.tx.send(Msg::Stop).await;
    }
}

fn run(store: &dyn Store, mut rx: mpsc::Receiver<Msg>) {
    let mut stopping = false;
    while !stopping {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut group: Vec<Job> = Vec::new();
        match first {
            Msg::Write(job) => group.push(job),
            Msg::Stop => stopping = true,
        }
        while !stopping && group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Msg::Write(job)) => group.push(job),
                Ok(Msg::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        commit_group(store, group);
    }
    // Anything sent after Stop is refused: its handler sees `Stopped`.
    rx.close();
}

fn commit_group(store: &dyn Store, group: Vec<Job>) {
    if group.is_empty() {
        return;
    }
    let batches: Vec<&Batch> = group.iter().map(|j| &j.batch).collect();
    match store.commit(&batches) {
        Ok(()) => {
            for job in group {
                let _ = job.done.send(Ok(()));
            }
        }
        Err(group_error) => {
            // One bad batch must not sink the others: retry one by one.
            if group.len() > 1 {
                eprintln!(
                    "tagwatch: group commit failed ({group_error}); retrying batches one by one"
                );
            }
            for job in group {
                let result = store.commit(&[&job.batch]).map_err(|e| {
                    eprintln!("tagwatch: storing a batch failed: {e}");
                    e.to_string()
                });
                let _ = job.done.send(result);
            }
        }
    }
}
