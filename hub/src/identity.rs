//! Role bindings and service tokens (ADR 0013), stored in the replicated KV
//! bucket `dv_identity` ([`crate::kv::ensure_identity`]) and served from
//! memory.
//!
//! | key | value |
//! | --- | --- |
//! | `binding.<id>` | a [`Grant`] (id: the first 16 hex of SHA-256 over subject, role and scope, so granting twice writes one key) |
//! | `token.<id>` | a [`StoredToken`]: the listed record plus the secret's SHA-256 |
//! | `tokenname.<name>` | the id of the token holding that name: created with a revision check, so two replicas cannot mint the same name |
//!
//! Every replica keeps an [`Identities`] index fed by a watch of the whole
//! bucket (last value of every key first, then every change), so
//! authenticating a request never waits for the KV store. A replica's own
//! writes are applied to its index at once as well, so a token minted
//! through a replica works on that replica immediately; other replicas
//! follow within the watch's latency, as does a revocation.
//!
//! Bindings from `hub.toml` (`[identity] platform_operators`) are part of
//! the index but not of the bucket: the API cannot revoke them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::kv;
use dv_protocol::api::{Grant, ServiceToken};
use dv_protocol::auth::{Credential, Principal, Role, RoleBinding, Scope};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::HubConfig;
use crate::kv::KvError;

/// Who granted the bindings `hub.toml` lists.
pub const FROM_CONFIG: &str = "config";

/// A service token as stored: its record and its secret's digest (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// What `GET /v1/identity/tokens` lists.
    #[serde(flatten)]
    pub record: ServiceToken,
    /// SHA-256 of the secret, hex.
    pub secret_sha256: String,
}

/// A canonical text for a scope (ids and keys).
fn scope_key(scope: &Scope) -> String {
    match scope {
        Scope::Platform => "platform".to_owned(),
        Scope::Tenant { tenant } => format!("tenant:{tenant}"),
        Scope::Project { tenant, project } => format!("project:{tenant}/{project}"),
    }
}

/// A binding's stable id: the same binding always gets the same id.
pub fn grant_id(binding: &RoleBinding) -> String {
    let text = format!(
        "{}|{}|{}",
        binding.subject,
        binding.role,
        scope_key(&binding.scope)
    );
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_owned()
}

/// `binding.<id>`
pub fn binding_key(id: &str) -> String {
    format!("binding.{id}")
}

/// `token.<id>`
pub fn token_key(id: &str) -> String {
    format!("token.{id}")
}

/// The bindings `hub.toml` lists.
pub fn config_grants(config: &HubConfig) -> Vec<Grant> {
    let Some(identity) = &config.identity else {
        return Vec::new();
    };
    identity
        .platform_operators
        .iter()
        .map(|subject| {
            let binding = RoleBinding {
                subject: subject.clone(),
                role: Role::PlatformOperator,
                scope: Scope::Platform,
            };
            Grant {
                id: grant_id(&binding),
                binding,
                granted_by: FROM_CONFIG.to_owned(),
                granted_at: None,
            }
        })
        .collect()
}

#[derive(Debug, Default)]
struct Index {
    grants: BTreeMap<String, Grant>,
    tokens: BTreeMap<String, StoredToken>,
}

/// The in-memory view of the bucket plus the config's bindings.
#[derive(Debug, Clone)]
pub struct Identities {
    store: kv::Store,
    index: Arc<RwLock<Index>>,
    config: Arc<Vec<Grant>>,
}

fn store_error(key: &str, e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable {
        key: key.to_owned(),
        detail: e.to_string(),
    }
}

impl Identities {
    /// An empty index over `store`; [`Identities::watch`] fills it.
    pub fn new(store: kv::Store, config: Vec<Grant>) -> Self {
        Self {
            store,
            index: Arc::new(RwLock::new(Index::default())),
            config: Arc::new(config),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Index) -> T) -> T {
        // A panic while holding the lock leaves a usable index (every
        // write is one insert or remove).
        let guard = self
            .index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    fn write(&self, f: impl FnOnce(&mut Index)) {
        let mut guard = self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard);
    }

    /// Applies one key's new state (a value, or `None` once deleted).
    fn apply(&self, key: &str, value: Option<&[u8]>) {
        if let Some(id) = key.strip_prefix("binding.") {
            let grant = value.and_then(|v| match serde_json::from_slice::<Grant>(v) {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::warn!(key, error = %e, "identity record does not decode; ignored");
                    None
                }
            });
            self.write(|i| match grant {
                Some(g) => {
                    i.grants.insert(id.to_owned(), g);
                }
                None => {
                    i.grants.remove(id);
                }
            });
        } else if let Some(id) = key.strip_prefix("token.") {
            let token = value.and_then(|v| match serde_json::from_slice::<StoredToken>(v) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(key, error = %e, "identity record does not decode; ignored");
                    None
                }
            });
            self.write(|i| match token {
                Some(t) => {
                    i.tokens.insert(id.to_owned(), t);
                }
                None => {
                    i.tokens.remove(id);
                }
            });
        }
    }

    /// Reads the whole bucket into the index; a replica does this before it
    /// serves, so a valid token is never refused while the watch replays.
    pub async fn load(&self) -> Result<usize, KvError> {
        let keys: Vec<String> = self
            .store
            .keys()
            .await
            .map_err(|e| store_error(crate::kv::IDENTITY, e))?
            .try_collect()
            .await
            .map_err(|e| store_error(crate::kv::IDENTITY, e))?;
        for key in &keys {
            // A key deleted between listing and reading is simply gone.
            let entry = self
                .store
                .entry(key)
                .await
                .map_err(|e| store_error(key, e))?;
            let value = entry
                .filter(|e| e.operation == kv::Operation::Put)
                .map(|e| e.value);
            self.apply(key, value.as_deref());
        }
        Ok(keys.len())
    }

    /// Keeps the index current until `cancel`: replays the bucket, then
    /// follows it; a broken watch is restarted (the replay brings back
    /// anything missed, deletions included).
    pub async fn watch(self, cancel: CancellationToken) {
        loop {
            let watch = tokio::select! {
                () = cancel.cancelled() => return,
                w = self.store.watch_with_history(">") => w,
            };
            match watch {
                Ok(mut entries) => loop {
                    let next = tokio::select! {
                        () = cancel.cancelled() => return,
                        n = entries.next() => n,
                    };
                    match next {
                        Some(Ok(entry)) => {
                            let value = (entry.operation == kv::Operation::Put)
                                .then_some(entry.value.as_ref());
                            self.apply(&entry.key, value);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "identity watch failed; restarting");
                            break;
                        }
                        None => {
                            tracing::warn!("identity watch ended; restarting");
                            break;
                        }
                    }
                },
                Err(e) => tracing::warn!(error = %e, "identity watch could not start"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Every binding of `subject`: the config's and the bucket's.
    pub fn bindings_for(&self, subject: &str) -> Vec<RoleBinding> {
        let mut out: Vec<RoleBinding> = self
            .config
            .iter()
            .filter(|g| g.binding.subject == subject)
            .map(|g| g.binding.clone())
            .collect();
        self.read(|i| {
            out.extend(
                i.grants
                    .values()
                    .filter(|g| g.binding.subject == subject)
                    .map(|g| g.binding.clone()),
            );
        });
        out
    }

    /// Every grant, the config's first.
    pub fn grants(&self) -> Vec<Grant> {
        let mut out: Vec<Grant> = self.config.iter().cloned().collect();
        self.read(|i| out.extend(i.grants.values().cloned()));
        out
    }

    /// Whether `id` is one of the config's bindings.
    pub fn is_config_grant(&self, id: &str) -> bool {
        self.config.iter().any(|g| g.id == id)
    }

    /// The bucket's grant `id`.
    pub fn grant(&self, id: &str) -> Option<Grant> {
        self.read(|i| i.grants.get(id).cloned())
    }

    /// Stores a grant (overwriting the same binding's earlier grant).
    pub async fn put_grant(&self, grant: &Grant) -> Result<(), KvError> {
        self.put(&binding_key(&grant.id), grant).await
    }

    /// Deletes grant `id`.
    pub async fn delete_grant(&self, id: &str) -> Result<(), KvError> {
        self.delete(&binding_key(id)).await
    }

    /// Every service token.
    pub fn tokens(&self) -> Vec<StoredToken> {
        self.read(|i| i.tokens.values().cloned().collect())
    }

    /// Token `id`.
    pub fn token(&self, id: &str) -> Option<StoredToken> {
        self.read(|i| i.tokens.get(id).cloned())
    }

    /// The token named `name`.
    pub fn token_named(&self, name: &str) -> Option<StoredToken> {
        self.read(|i| i.tokens.values().find(|t| t.record.name == name).cloned())
    }

    /// Claims `name` for token `id` across every replica: `false` when
    /// another token holds it.
    pub async fn reserve_name(&self, name: &str, id: &str) -> Result<bool, KvError> {
        match crate::kv::create(&self.store, &format!("tokenname.{name}"), &id).await {
            Ok(_) => Ok(true),
            Err(KvError::Exists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Frees `name` again (its token was revoked, or never stored).
    pub async fn release_name(&self, name: &str) -> Result<(), KvError> {
        crate::kv::delete_any(&self.store, &format!("tokenname.{name}")).await
    }

    /// Stores a token.
    pub async fn put_token(&self, token: &StoredToken) -> Result<(), KvError> {
        self.put(&token_key(&token.record.id), token).await
    }

    /// Deletes (revokes) token `id`.
    pub async fn delete_token(&self, id: &str) -> Result<(), KvError> {
        self.delete(&token_key(id)).await
    }

    /// Writes `value` under `key` and applies it to this replica's index at
    /// once (the watch brings it to the others, and here again: idempotent).
    async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), KvError> {
        let bytes = serde_json::to_vec(value).map_err(|e| store_error(key, e))?;
        self.store
            .put(key, bytes.clone().into())
            .await
            .map_err(|e| store_error(key, e))?;
        self.apply(key, Some(&bytes));
        Ok(())
    }

    /// Deletes `key`, here and (through the watch) everywhere.
    async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.store
            .delete(key)
            .await
            .map_err(|e| store_error(key, e))?;
        self.apply(key, None);
        Ok(())
    }

    /// The principal a bearer service token stands for, or why not.
    pub fn authenticate_token(&self, bearer: &str) -> Result<Principal, &'static str> {
        let token = dv_identity::ServiceToken::parse(bearer).map_err(|_| "malformed")?;
        let stored = self
            .token(token.id().as_str())
            .ok_or("unknown or revoked")?;
        let digest =
            dv_identity::SecretDigest::from_hex(&stored.secret_sha256).ok_or("unreadable")?;
        if !digest.matches(&token.digest()) {
            return Err("unknown or revoked");
        }
        let expires = time::OffsetDateTime::parse(
            &stored.record.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| "unreadable")?;
        if expires <= time::OffsetDateTime::now_utc() {
            return Err("expired");
        }
        let record = stored.record;
        let mut bindings = vec![RoleBinding {
            subject: record.subject.clone(),
            role: record.role,
            scope: record.scope.clone(),
        }];
        for b in self.bindings_for(&record.subject) {
            if !bindings.contains(&b) {
                bindings.push(b);
            }
        }
        Ok(Principal {
            subject: record.subject,
            credential: Credential::ServiceToken,
            bindings,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grant_ids_are_stable_and_distinct() {
        let b = |subject: &str, role, scope| RoleBinding {
            subject: subject.into(),
            role,
            scope,
        };
        let acme = Scope::tenant(&"acme".parse().unwrap());
        let a = grant_id(&b("user:a", Role::TenantAdmin, acme.clone()));
        assert_eq!(a.len(), 16);
        assert_eq!(a, grant_id(&b("user:a", Role::TenantAdmin, acme.clone())));
        assert_ne!(a, grant_id(&b("user:a", Role::Viewer, acme.clone())));
        assert_ne!(a, grant_id(&b("user:b", Role::TenantAdmin, acme)));
        assert_ne!(
            grant_id(&b("user:a", Role::Viewer, Scope::Platform)),
            grant_id(&b(
                "user:a",
                Role::Viewer,
                Scope::tenant(&"platform".parse().unwrap())
            ))
        );
    }
}
