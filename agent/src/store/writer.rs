//! The single writer: one thread owns the write connection and commits queued
//! writes in batches (group commit).
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit
//! costs an fsync (about 100 µs on the provisioning hosts' disks). Committing
//! each DHCP lease on its own would cap the agent at the disk's fsync rate;
//! committing whatever queued up while the previous fsync ran costs one fsync
//! per batch instead. Awaited writes get no artificial delay: under light
//! load a batch holds one write and commits at once; under heavy load
//! batches grow by themselves, bounded by `MAX_BATCH`. Fire-and-forget
//! writes ([`super::Store::submit`], the DHCP leases) wait up to [`GATHER`]
//! for company, which cuts the fsyncs per lease severalfold at moderate
//! rates (PostgreSQL's `commit_delay` does the same).
//!
//! Each write runs inside its own SAVEPOINT, so a write whose closure fails (or
//! panics) is rolled back alone while the rest of its batch commits. A caller
//! hears "ok" only after the batch's COMMIT returned, that is after the WAL was
//! synced to disk.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// Upper bound on writes per transaction, so one batch never holds the write
/// lock (and its callers) for long.
pub(super) const MAX_BATCH: usize = 512;

/// How long a batch holding a write that tolerates it waits for company
/// before committing (see [`Write::gathers`]). Each commit costs an fsync
/// and a WAL write of every page it touched, tens of µs of CPU here; at a
/// few thousand DHCP leases a second, batches of one or two spent most of
/// the agent's CPU on that. Measured with scripts/bench-dhcp.sh at 4,000
/// leases/s: 0.140 ms CPU per lease without waiting, 0.062 at 1 ms, 0.044
/// at 4 ms, no better at 8 ms. Four milliseconds are invisible to a DHCP
/// client (it retransmits after seconds).
pub(super) const GATHER: Duration = Duration::from_millis(4);

/// A queued write. `apply` runs it inside the batch's transaction (false means
/// it failed and its savepoint must be rolled back); `finish` tells its caller,
/// after the commit, what became of it.
pub(super) trait Write: Send {
    fn apply(&mut self, conn: &Connection) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
    /// True if this write's caller accepts up to [`GATHER`] more latency so
    /// its commit can be shared with writes arriving just after it. Awaited
    /// writes say no: a caller writing one thing after another would be
    /// slowed down by every wait and gain nothing.
    fn gathers(&self) -> bool;
}

/// A write closure, its outcome once applied, and where its caller waits.
pub(super) struct WriteOp<F, T> {
    f: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: Reply<T>,
}

impl<F, T> WriteOp<F, T> {
    pub(super) fn new(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        WriteOp {
            f: Some(f),
            outcome: None,
            reply: Reply::Channel(reply),
        }
    }
}

impl<F, T> WriteOp<F, T>
where
    T: Send + 'static,
{
    pub(super) fn with_callback(
        f: F,
        done: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Self {
        WriteOp {
            f: Some(f),
            outcome: None,
            reply: Reply::Callback(Box::new(done)),
        }
    }
}

/// Where a write's outcome goes: an awaiting caller, or a callback run on
/// the writer thread right after the commit (for callers that are threads
/// themselves and must not block, such as the DHCP receive loops).
pub(super) enum Reply<T> {
    Channel(oneshot::Sender<Result<T, StoreError>>),
    Callback(Box<dyn FnOnce(Result<T, StoreError>) + Send>),
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

    fn gathers(&self) -> bool {
        matches!(self.reply, Reply::Callback(_))
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let answer = match (commit, self.outcome) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Panicked),
        };
        match self.reply {
            // The caller may have stopped waiting (its task was cancelled);
            // the write is committed either way.
            Reply::Channel(tx) => {
                let _ = tx.send(answer);
            }
            Reply::Callback(done) => {
                if catch_unwind(AssertUnwindSafe(|| done(answer))).is_err() {
                    tracing::error!("store: a write's completion callback panicked");
                }
            }
        }
    }
}

pub(super) type Job = Box<dyn Write>;

/// Runs until every sender is gone and the queue is empty, so writes accepted
/// before shutdown are committed before the thread exits.
pub(super) fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    committed: Arc<tokio::sync::Notify>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        let arrived = Instant::now();
        batch.push(first);
        drain(&mut rx, &mut batch);
        if batch.len() < MAX_BATCH && batch.iter().any(|j| j.gathers()) {
            std::thread::sleep(GATHER.saturating_sub(arrived.elapsed()));
            drain(&mut rx, &mut batch);
        }
        if commit_batch(&mut conn, &mut batch) {
            // One stored permit is enough: a waiter reads everything new.
            committed.notify_one();
        }
    }
    tracing::debug!("store writer drained and stopped");
}

/// Moves queued writes into `batch`, up to [`MAX_BATCH`].
fn drain(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Commits `batch`; true if the commit succeeded.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<Job>) -> bool {
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
            return false;
        }
    };
    for job in batch.iter_mut() {
        // Cached statements: parsing these three per write was a measurable
        // part of a small write's cost.
        if let Err(e) = run_cached(&tx, "SAVEPOINT job") {
            tracing::error!(error = %e, "store: cannot open a write's savepoint");
            continue;
        }
        let closed = if job.apply(&tx) {
            run_cached(&tx, "RELEASE job")
        } else {
            run_cached(&tx, "ROLLBACK TO job").and_then(|()| run_cached(&tx, "RELEASE job"))
        };
        if let Err(e) = closed {
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
    let ok = outcome.is_ok();
    for job in batch.drain(..) {
        job.finish(outcome.clone().map_err(StoreError::Commit));
    }
    ok
}
