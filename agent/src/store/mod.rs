//! The agent store: the site's system of record in one SQLite database.
//!
//! Design (ADR 0004, 0005):
//! - WAL mode with `synchronous=FULL`: a commit returns only after the WAL is
//!   fsynced, so an acknowledged write survives a power loss, not only a crash.
//! - One writer thread owns the only write connection (`writer`) and commits
//!   queued writes in batches (group commit). Callers use the async
//!   [`Store::write`] and hear back only after the commit.
//! - Readers use a small pool of read-only connections ([`Store::read`]); WAL
//!   lets them run beside the writer without blocking it.
//! - Numbered migrations are applied at open ([`migrate`]); a database from a
//!   newer agent or from another program is refused.
//! - The outbox ([`outbox`]) is written in the same transaction as the change
//!   it reports, so an event exists exactly when its change does.

pub mod boot;
pub mod commands;
pub mod dns;
mod error;
pub mod intent;
pub mod inventory;
pub mod ipam;
pub mod migrate;
pub mod outbox;
mod readers;
pub mod sites;
pub mod steps;
pub mod talos;
pub mod tasks;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

pub use error::StoreError;
use readers::ReadPool;
use writer::{Job, WriteOp};

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "agent.db";

/// How many writes may wait for the writer before callers are slowed down.
const QUEUE_DEPTH: usize = 8 * writer::MAX_BATCH;

/// Read connections kept open.
const READERS: usize = 4;

/// A handle to the agent store; cheap to clone, shared by every service.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: ReadPool,
    committed: Arc<tokio::sync::Notify>,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, applies
    /// migrations and starts the writer thread. Must be called inside a tokio
    /// runtime.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::DataDir {
            path: data_dir.to_owned(),
            source: Arc::new(e),
        })?;
        let path = data_dir.join(DB_FILE);
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.clone(),
            source: Arc::new(e),
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        configure_writer(&conn).map_err(open_err)?;
        migrate::migrate(&mut conn, &path)?;

        let readers = ReadPool::open(&path, READERS).map_err(open_err)?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let committed = Arc::new(tokio::sync::Notify::new());
        let notify = committed.clone();
        let handle = std::thread::Builder::new()
            .name("dv-store-writer".into())
            .spawn(move || writer::run(conn, rx, notify))
            .map_err(|e| StoreError::DataDir {
                path: data_dir.to_owned(),
                source: Arc::new(e),
            })?;
        tracing::info!(path = %path.display(), schema = migrate::latest_version(), "store open");
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                sender: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                readers,
                committed,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Returns after the next successful commit, or at once if one happened
    /// since the last call returned. For one waiter (the outbox publisher):
    /// it wakes on new events instead of polling.
    pub async fn committed(&self) {
        self.inner.committed.notified().await;
    }

    /// Runs `f` inside the writer's next transaction and returns its result
    /// once that transaction is committed and synced. If `f` fails, its changes
    /// are rolled back and the error returned; other writes of the same batch
    /// are unaffected.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let sender = self
            .inner
            .sender
            .lock()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Box::new(WriteOp::new(f, reply)))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `f` for the writer's next transaction without waiting, and runs
    /// `done` with its outcome on the writer thread once that transaction is
    /// committed and synced (or has failed). `done` must be quick and must not
    /// block: the next batch waits for it. Fails at once with
    /// [`StoreError::Busy`] when the queue is full and [`StoreError::Closed`]
    /// after [`Store::close`]; `done` is not called then.
    pub fn submit<T, F, D>(&self, f: F, done: D) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
        D: FnOnce(Result<T, StoreError>) + Send + 'static,
    {
        let sender = self.inner.sender.lock().map_err(|_| StoreError::Closed)?;
        sender
            .as_ref()
            .ok_or(StoreError::Closed)?
            .try_send(Box::new(WriteOp::with_callback(f, done)))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })
    }

    /// Runs `f` on a read-only connection on a blocking thread. Sees every
    /// write whose [`Store::write`] has returned.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.readers.run(f).await
    }

    /// Stops accepting writes, commits every write already queued, and waits
    /// for the writer thread to finish. Later writes fail with
    /// [`StoreError::Closed`]. Safe to call more than once.
    pub async fn close(&self) {
        let sender = self.inner.sender.lock().ok().and_then(|mut s| s.take());
        drop(sender);
        let handle = self.inner.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            // Joining blocks; do it off the async threads.
            let joined = tokio::task::spawn_blocking(move || handle.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("store writer thread ended abnormally");
            }
        }
        tracing::info!(path = %self.inner.path.display(), "store closed");
    }
}

fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    // WAL lets readers run beside the writer; FULL makes every commit fsync the
    // WAL, so what we acknowledge survives power loss (ADR 0005).
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode stayed {mode}; WAL is required"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Opens a read-only connection for the pool.
fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Unix time in nanoseconds, the store's timestamp column format.
pub(crate) fn now_nanos() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(now).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dv_protocol::{Actor, MachineId, SiteName, Task, TaskKind};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_commits_every_queued_write_and_refuses_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let site = SiteName::new("lab").unwrap();
        let actor = Actor::agent(&site);
        // Queue many writes, then close while they are in flight.
        let mut pending = Vec::new();
        for _ in 0..500 {
            let task = Task::new(
                site.clone(),
                TaskKind::ProvisionMachine {
                    machine: MachineId::new(),
                },
            );
            let (s, a) = (store.clone(), actor.clone());
            pending.push(tokio::spawn(async move {
                let id = task.id;
                s.write(move |c| tasks::create(c, &task, &a))
                    .await
                    .map(|_| id)
            }));
        }
        store.close().await;
        let mut committed = Vec::new();
        for p in pending {
            match p.await.unwrap() {
                Ok(id) => committed.push(id),
                Err(e) => assert!(matches!(e, StoreError::Closed), "{e}"),
            }
        }
        assert!(matches!(
            store.write(|_| Ok(())).await,
            Err(StoreError::Closed)
        ));

        let reopened = Store::open(dir.path()).unwrap();
        let stored = reopened
            .read(|c| tasks::list(c, None, usize::MAX))
            .await
            .unwrap();
        let ids: std::collections::HashSet<_> = stored.iter().map(|t| t.id).collect();
        for id in &committed {
            assert!(ids.contains(id), "acknowledged task {id} lost at close");
        }
        reopened.close().await;
    }

    #[tokio::test]
    async fn a_panicking_write_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let boom = store.write(|c| -> Result<(), StoreError> {
            outbox::append(c, "x", "dv.lab.site.evt.site.registered", b"1")?;
            panic!("bug in a write closure");
        });
        let fine = store.write(|c| outbox::append(c, "y", "dv.lab.site.evt.site.registered", b"2"));
        let (boom, fine) = tokio::join!(boom, fine);
        assert!(matches!(boom, Err(StoreError::Panicked)));
        fine.unwrap();
        let rows = store.read(|c| outbox::pending(c, 10)).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["y"]
        );
        store.close().await;
    }
}
