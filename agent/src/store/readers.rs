//! A small pool of read-only connections. WAL readers see the last committed
//! state and never block the writer, so queries (API listings, rebuilding
//! in-memory indexes at start) run beside group commits.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::StoreError;

#[derive(Debug)]
pub(super) struct ReadPool {
    conns: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub(super) fn open(path: &Path, size: usize) -> rusqlite::Result<ReadPool> {
        let conns = (0..size)
            .map(|_| super::open_reader(path))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ReadPool {
            conns: Arc::new(Mutex::new(conns)),
            permits: Arc::new(Semaphore::new(size)),
        })
    }

    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        // One permit per pooled connection, so a connection is always free
        // once the permit is held.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let conns = self.conns.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = conns
                .lock()
                .map_err(|_| StoreError::Closed)?
                .pop()
                .ok_or(StoreError::Closed)?;
            let result = f(&conn);
            if let Ok(mut pool) = conns.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Panicked)?
    }
}
