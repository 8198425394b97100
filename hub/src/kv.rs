//! The hub's JetStream key-value state, in the `hub` domain, replicated
//! like the streams ([`HubConfig::stream_replicas`]).
//!
//! | bucket | keys | values |
//! | --- | --- | --- |
//! | `dv_tenancy` | `tenants.<t>`, `projects.<t>.<p>`, `environments.<t>.<p>.<e>`, `quotas.<t>.<p>` | JSON of [`dv_protocol::Tenant`], `Project`, `Environment`, `Quota` |
//! | `dv_identity` | `binding.<id>`, `token.<id>`, `tokenname.<name>` | JSON of [`dv_protocol::api::Grant`] and [`crate::identity::StoredToken`] (see [`crate::identity`]) |
//!
//! Values are JSON (not postcard) so an operator can read them with
//! `nats kv get`. Every write is revision-checked: a key's KV revision is
//! the API's ETag, a create expects no live value ([`create`]), an update
//! or delete expects the revision the caller read ([`update`], [`delete`]).
//! Two replicas (or two clients) racing on one key therefore cannot both
//! win: JetStream's stream leader orders the writes and refuses the second.

use async_nats::jetstream::{self, kv};
use futures::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::HubConfig;

/// The tenancy bucket.
pub const TENANCY: &str = "dv_tenancy";
/// Revisions kept per key: enough to see recent edits with `nats kv history`.
pub const TENANCY_HISTORY: i64 = 16;
/// A tenancy record is small; refuse anything that is not.
pub const TENANCY_MAX_VALUE: i32 = 64 * 1024;

/// The identity bucket: role bindings and service tokens.
pub const IDENTITY: &str = "dv_identity";

/// Why a KV operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// A create found a live value.
    #[error("{key} already exists")]
    Exists {
        /// The key.
        key: String,
    },
    /// An update or delete expected a revision that is no longer current.
    #[error("{key} is no longer at revision {expected}")]
    Stale {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: u64,
    },
    /// A stored value does not decode as what the key should hold.
    #[error("{key} holds a value this hub cannot read: {detail}")]
    Corrupt {
        /// The key.
        key: String,
        /// The decoder's message.
        detail: String,
    },
    /// JetStream did not answer or refused for another reason.
    #[error("the KV store failed on {key}: {detail}")]
    Unavailable {
        /// The key (or bucket).
        key: String,
        /// What the client said.
        detail: String,
    },
}

/// A value with the revision it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its KV revision (the stream sequence of the write).
    pub revision: u64,
}

/// The tenancy bucket's configuration.
pub fn tenancy_config(config: &HubConfig) -> kv::Config {
    kv::Config {
        bucket: TENANCY.to_owned(),
        description: "Tenants, projects, environments and quotas (JSON)".to_owned(),
        history: TENANCY_HISTORY,
        max_value_size: TENANCY_MAX_VALUE,
        storage: jetstream::stream::StorageType::File,
        num_replicas: config.stream_replicas(),
        ..Default::default()
    }
}

/// Creates the tenancy bucket, or updates it to this build's settings.
pub async fn ensure_tenancy(
    js: &jetstream::Context,
    config: &HubConfig,
) -> Result<kv::Store, KvError> {
    js.create_or_update_key_value(tenancy_config(config))
        .await
        .map_err(|e| KvError::Unavailable {
            key: TENANCY.to_owned(),
            detail: e.to_string(),
        })
}

/// The identity bucket's configuration: replicated like tenancy.
pub fn identity_config(config: &HubConfig) -> kv::Config {
    kv::Config {
        bucket: IDENTITY.to_owned(),
        description: "Role bindings and service tokens (JSON)".to_owned(),
        history: 8,
        max_value_size: 16 * 1024,
        storage: jetstream::stream::StorageType::File,
        num_replicas: config.stream_replicas(),
        ..Default::default()
    }
}

/// Creates the identity bucket, or updates it to this build's settings.
pub async fn ensure_identity(
    js: &jetstream::Context,
    config: &HubConfig,
) -> Result<kv::Store, KvError> {
    js.create_or_update_key_value(identity_config(config))
        .await
        .map_err(|e| KvError::Unavailable {
            key: IDENTITY.to_owned(),
            detail: e.to_string(),
        })
}

fn unavailable(key: &str, e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable {
        key: key.to_owned(),
        detail: e.to_string(),
    }
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<bytes::Bytes, KvError> {
    serde_json::to_vec(value)
        .map(Into::into)
        .map_err(|e| unavailable(key, e))
}

/// The live value of `key`, or `None` when it was never written or is
/// deleted.
pub async fn get<T: DeserializeOwned>(
    store: &kv::Store,
    key: &str,
) -> Result<Option<Versioned<T>>, KvError> {
    let Some(entry) = store.entry(key).await.map_err(|e| unavailable(key, e))? else {
        return Ok(None);
    };
    if entry.operation != kv::Operation::Put {
        return Ok(None);
    }
    let value = serde_json::from_slice(&entry.value).map_err(|e| KvError::Corrupt {
        key: key.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(Some(Versioned {
        value,
        revision: entry.revision,
    }))
}

/// Writes `value` under `key` if it has no live value; its new revision.
pub async fn create<T: Serialize>(store: &kv::Store, key: &str, value: &T) -> Result<u64, KvError> {
    match store.create(key, encode(key, value)?).await {
        Ok(revision) => Ok(revision),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Err(KvError::Exists {
            key: key.to_owned(),
        }),
        // A create over a deleted key is an update of its tombstone; a
        // racing create makes that fail with another kind. Either way, a
        // live value now means someone else created it.
        Err(e) => match store.entry(key).await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => Err(KvError::Exists {
                key: key.to_owned(),
            }),
            _ => Err(unavailable(key, e)),
        },
    }
}

/// Replaces `key`'s value if its revision is still `expected`; the new
/// revision.
pub async fn update<T: Serialize>(
    store: &kv::Store,
    key: &str,
    value: &T,
    expected: u64,
) -> Result<u64, KvError> {
    store
        .update(key, encode(key, value)?, expected)
        .await
        .map_err(|e| match e.kind() {
            kv::UpdateErrorKind::WrongLastRevision => KvError::Stale {
                key: key.to_owned(),
                expected,
            },
            _ => unavailable(key, e),
        })
}

/// Deletes `key` if its revision is still `expected` (a tombstone stays;
/// history keeps the old values).
pub async fn delete(store: &kv::Store, key: &str, expected: u64) -> Result<(), KvError> {
    store
        .delete_expect_revision(key, Some(expected))
        .await
        .map_err(|e| match e.kind() {
            kv::UpdateErrorKind::WrongLastRevision => KvError::Stale {
                key: key.to_owned(),
                expected,
            },
            _ => unavailable(key, e),
        })
}

/// Deletes `key` whatever its revision, if it has a live value.
pub async fn delete_any(store: &kv::Store, key: &str) -> Result<(), KvError> {
    match store.entry(key).await.map_err(|e| unavailable(key, e))? {
        Some(entry) if entry.operation == kv::Operation::Put => {
            store.delete(key).await.map_err(|e| unavailable(key, e))
        }
        _ => Ok(()),
    }
}

/// The live keys directly under `prefix` (which ends with `.`): for
/// `projects.acme.` the projects of `acme`, never anything deeper.
///
/// This walks the bucket's key list (one ordered consumer): fine for the
/// thousands of records tenancy holds, not for millions.
pub async fn keys_under(store: &kv::Store, prefix: &str) -> Result<Vec<String>, KvError> {
    let keys: Vec<String> = store
        .keys()
        .await
        .map_err(|e| unavailable(prefix, e))?
        .try_collect()
        .await
        .map_err(|e| unavailable(prefix, e))?;
    let mut under: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            k.strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('.'))
        })
        .collect();
    under.sort();
    Ok(under)
}

/// The live values directly under `prefix`, sorted by key.
pub async fn list<T: DeserializeOwned>(
    store: &kv::Store,
    prefix: &str,
) -> Result<Vec<Versioned<T>>, KvError> {
    let mut out = Vec::new();
    for key in keys_under(store, prefix).await? {
        // A key deleted between listing and reading is simply gone.
        if let Some(v) = get(store, &key).await? {
            out.push(v);
        }
    }
    Ok(out)
}

/// The tenancy bucket's keys. Every part is a name token (`[a-z0-9-]`), so
/// a key can never gain or lose a level through a name.
pub mod keys {
    use dv_protocol::{EnvironmentName, ProjectName, TenantName};

    /// Every tenant.
    pub const TENANTS: &str = "tenants.";

    /// A tenant.
    pub fn tenant(t: &TenantName) -> String {
        format!("tenants.{t}")
    }

    /// The projects of `t`.
    pub fn projects(t: &TenantName) -> String {
        format!("projects.{t}.")
    }

    /// A project.
    pub fn project(t: &TenantName, p: &ProjectName) -> String {
        format!("projects.{t}.{p}")
    }

    /// A project's quota.
    pub fn quota(t: &TenantName, p: &ProjectName) -> String {
        format!("quotas.{t}.{p}")
    }

    /// The environments of `t/p`.
    pub fn environments(t: &TenantName, p: &ProjectName) -> String {
        format!("environments.{t}.{p}.")
    }

    /// An environment.
    pub fn environment(t: &TenantName, p: &ProjectName, e: &EnvironmentName) -> String {
        format!("environments.{t}.{p}.{e}")
    }

    /// The offerings an operator enabled for a project (a set of names).
    pub fn offerings(t: &TenantName, p: &ProjectName) -> String {
        format!("offerings.{t}.{p}")
    }

    /// Every machine claim.
    pub const CLAIMS: &str = "claims.";

    /// The claim on one machine: whichever project holds it. One key per
    /// machine, created with `create`, so two projects cannot both win it.
    pub fn claim(machine: &dv_protocol::MachineId) -> String {
        format!("claims.{machine}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn keys_nest_by_name() {
        let t = "acme".parse().unwrap();
        let p = "web".parse().unwrap();
        let e = "prod".parse().unwrap();
        assert_eq!(keys::tenant(&t), "tenants.acme");
        assert_eq!(keys::project(&t, &p), "projects.acme.web");
        assert!(keys::project(&t, &p).starts_with(&keys::projects(&t)));
        assert_eq!(keys::environment(&t, &p, &e), "environments.acme.web.prod");
        assert!(keys::environment(&t, &p, &e).starts_with(&keys::environments(&t, &p)));
        assert_eq!(keys::quota(&t, &p), "quotas.acme.web");
    }

    #[test]
    fn the_bucket_is_replicated_like_the_streams() {
        let c = HubConfig::parse(crate::config::tests_support::THREE, Path::new("h.toml")).unwrap();
        let kv = tenancy_config(&c);
        assert_eq!(kv.num_replicas, 3);
        assert_eq!(kv.history, TENANCY_HISTORY);
        let identity = identity_config(&c);
        assert_eq!(identity.num_replicas, 3);
        assert_eq!(identity.bucket, "dv_identity");
    }
}
