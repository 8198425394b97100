//! The single writer: one thread owns the write connection and commits queued
//! writes in batches (group commit).
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit
//! costs an fsync (about 100 µs on the provisioning hosts' disks). Committing
//! each DHCP lease on its own would cap the agent at the disk's fsync rate;
//! committing whatever queued up while the previous fsync ran costs one fsync
//! per batch instead. There is no artificial delay: under light load a batch
//! holds one write and commits at once; under heavy load batches grow by
//! themselves, bounded by `MAX_BATCH`.
//!
//! Each write runs inside its own SAVEPOINT, so a write whose closure fails (or
//! panics) is rolled back alone while the rest of its batch commits. A caller
//! hears "ok" only after the batch's COMMIT returned, that is after the WAL was
//! synced to disk.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// Upper bound on writes per transaction, so one batch never holds the write
/// lock (and its callers) for long.
pub(super) const MAX_BATCH: usize = 512;

/// A queued write. `apply` runs it inside the batch's transaction (false means
/// it failed and its savepoint must be rolled back); `finish` tells its caller,
/// after the commit, what became of it.
pub(super) trait Write: Send {
    fn apply(&mut self, conn: &Connection) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

/// A write closure, its outcome once applied, and where its caller waits.
pub(super) struct WriteOp<F, T> {
    f: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> WriteOp<F, T> {
    pub(super) fn new(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        WriteOp {
            f: Some(f),
            outcome: None,
            reply,
        }
    }
}

impl<F, T> Write for WriteOp<F, T>
where
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn apply(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        // A panic in one closure must not take the writer thread (and every
        // other caller's batch) down with it.
        let outcome = catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
            tracing::error!("store: a write panicked; rolled back");
            Err(StoreError::Panicked)
        });
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let answer = match (commit, self.outcome) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Panicked),
        };
        // The caller may have stopped waiting (its task was cancelled); the
        // write is committed either way.
        let _ = self.reply.send(answer);
    }
}

pub(super) type Job = Box<dyn Write>;

/// Runs until every sender is gone and the queue is empty, so writes accepted
/// before shutdown are committed before the thread exits.
pub(super) fn run(mut conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &mut batch);
    }
    tracing::debug!("store writer drained and stopped");
}

fn commit_batch(conn: &mut Connection, batch: &mut Vec<Job>) {
    let started = Instant::now();
    let size = batch.len();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = Arc::new(e);
            tracing::error!(error = %e, size, "store: cannot begin a write transaction");
            for job in batch.drain(..) {
                job.finish(Err(StoreError::Commit(e.clone())));
            }
            return;
        }
    };
    for job in batch.iter_mut() {
        if let Err(e) = tx.execute_batch("SAVEPOINT job") {
            tracing::error!(error = %e, "store: cannot open a write's savepoint");
            continue;
        }
        let end = if job.apply(&tx) {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = tx.execute_batch(end) {
            tracing::error!(error = %e, "store: cannot close a write's savepoint");
        }
    }
    let outcome = tx.commit().map_err(Arc::new);
    metrics::histogram!("dv_store_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("dv_store_batch_writes").record(size as f64);
    metrics::counter!("dv_store_writes_total").increment(size as u64);
    match &outcome {
        Ok(()) => metrics::counter!("dv_store_commits_total").increment(1),
        Err(e) => {
            metrics::counter!("dv_store_commit_failures_total").increment(1);
            tracing::error!(error = %e, size, "store: commit failed; every write of the batch is reported failed");
        }
    }
    for job in batch.drain(..) {
        job.finish(outcome.clone().map_err(StoreError::Commit));
    }
}
