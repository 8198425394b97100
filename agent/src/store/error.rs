//! The store's one error type.

use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong opening, writing or reading the agent store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory or database file could not be created or opened.
    #[error("cannot open the agent database {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the file system said.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The file is a SQLite database, but not one of ours.
    #[error(
        "{path} is not a Dataverket agent database (application_id {found:#x}); \
         point data_dir at the agent's own directory"
    )]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// The application_id found in the file.
        found: i64,
    },
    /// The database was written by a newer agent.
    #[error(
        "{path} has schema version {found}, but this dv-agent knows versions up to {supported}; \
         it was written by a newer dv-agent: run that version or restore a backup taken before the upgrade"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The schema version in the file.
        found: i64,
        /// The newest schema this build knows.
        supported: i64,
    },
    /// A migration failed to apply; the database is left at the previous version.
    #[error("cannot migrate {path} to schema version {target}")]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The version being migrated to.
        target: i64,
        /// What went wrong.
        #[source]
        source: Arc<rusqlite_migration::Error>,
    },
    /// The database belongs to another site.
    #[error(
        "{path} belongs to site {found:?}, but the config says {expected:?}; \
         a database is never shared between sites: point data_dir elsewhere or fix site.name"
    )]
    WrongSite {
        /// The database file.
        path: PathBuf,
        /// The site recorded in the database.
        found: String,
        /// The site in the configuration.
        expected: String,
    },
    /// A statement inside a write or read failed.
    #[error("database statement failed")]
    Sql(#[source] Arc<rusqlite::Error>),
    /// The batch this write belonged to could not be committed; nothing of it
    /// is stored.
    #[error("commit failed; the write was not stored")]
    Commit(#[source] Arc<rusqlite::Error>),
    /// A stored row could not be decoded.
    #[error("stored {what} {key} is corrupt: {detail}")]
    Corrupt {
        /// The kind of row.
        what: &'static str,
        /// Its key.
        key: String,
        /// Why it could not be read.
        detail: String,
    },
    /// A value given to a write is not acceptable; nothing was changed.
    #[error("{what} {key} is not valid: {detail}")]
    Invalid {
        /// The kind of row.
        what: &'static str,
        /// Its key.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A message could not be encoded for the outbox.
    #[error("cannot encode an event for the outbox")]
    Encode(#[source] dv_protocol::codec::CodecError),
    /// The write closure panicked; its savepoint was rolled back.
    #[error("a write panicked and was rolled back")]
    Panicked,
    /// IPAM refused the change (a clash, an exhausted prefix, a bad
    /// request); the transaction was rolled back.
    #[error(transparent)]
    Ipam(#[from] super::ipam::IpamError),
    /// A switch-port intent change was refused; the transaction was rolled
    /// back.
    #[error(transparent)]
    Intent(#[from] super::intent::IntentRefusal),
    /// The store has been closed (the agent is shutting down).
    #[error("the store is closed")]
    Closed,
    /// The writer's queue is full; the write was not queued (the caller
    /// sheds load, as a DHCP server drops a packet its client will resend).
    #[error("the store's write queue is full")]
    Busy,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(Arc::new(e))
    }
}
