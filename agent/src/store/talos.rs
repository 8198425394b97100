//! Talos cluster secrets in the agent store (schema 0008): one sealed
//! bundle per cluster, created once and then only read.
//!
//! [`get`] opens a cluster's bundle; [`insert_once`] stores a freshly
//! generated one unless the cluster already has one, and returns whichever
//! is stored, so two machines asking at once still share one bundle.
//! Generation (a few key pairs) happens outside the writer, in
//! [`crate::talos::Talos::secrets`]; only the insert runs in it.

use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, now_nanos};
use crate::inventory::SiteKey;
use crate::talos::SecretsBundle;

/// The name a cluster's bundle is sealed under (the AEAD's associated
/// data), so a sealed bundle moved to another cluster's row does not open.
pub fn seal_name(cluster: &str) -> String {
    format!("talos-cluster/{cluster}")
}

fn corrupt(cluster: &str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: "talos cluster secrets",
        key: cluster.to_owned(),
        detail: detail.to_string(),
    }
}

/// The bundle of `cluster`, if it has one.
pub fn get(
    conn: &Connection,
    key: &SiteKey,
    cluster: &str,
) -> Result<Option<SecretsBundle>, StoreError> {
    let sealed: Option<Vec<u8>> = conn
        .prepare_cached("SELECT sealed_secrets FROM talos_cluster WHERE name = ?1")?
        .query_row([cluster], |r| r.get(0))
        .optional()?;
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let plain = key
        .open(&seal_name(cluster), &sealed)
        .map_err(|e| corrupt(cluster, e))?;
    SecretsBundle::from_json(&plain)
        .map(Some)
        .map_err(|e| corrupt(cluster, crate::telemetry::error_chain(&e)))
}

/// Stores `fresh` as the bundle of `cluster` unless it already has one;
/// returns the stored bundle and whether it is `fresh`. Call inside
/// [`crate::store::Store::write`].
pub fn insert_once(
    conn: &Connection,
    key: &SiteKey,
    cluster: &str,
    fresh: &SecretsBundle,
) -> Result<(SecretsBundle, bool), StoreError> {
    if let Some(existing) = get(conn, key, cluster)? {
        return Ok((existing, false));
    }
    let json = fresh
        .to_json()
        .map_err(|e| corrupt(cluster, crate::telemetry::error_chain(&e)))?;
    let sealed = key.seal(&seal_name(cluster), &json);
    conn.prepare_cached(
        "INSERT INTO talos_cluster (name, sealed_secrets, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![cluster, sealed, now_nanos()])?;
    Ok((fresh.clone(), true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn a_cluster_gets_one_bundle_that_survives_a_restart_and_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let key = SiteKey::load_or_create(&data).unwrap();
        let store = Store::open(&data).unwrap();
        let first = SecretsBundle::generate(time::OffsetDateTime::now_utc()).unwrap();
        let second = SecretsBundle::generate(time::OffsetDateTime::now_utc()).unwrap();
        let (k, f) = (key.clone(), first.clone());
        let (stored, created) = store
            .write(move |c| insert_once(c, &k, "lab", &f))
            .await
            .unwrap();
        assert!(created);
        assert_eq!(stored, first);
        // A second machine of the cluster (another fresh bundle offered):
        // the first one stays.
        let (k, s) = (key.clone(), second.clone());
        let (stored, created) = store
            .write(move |c| insert_once(c, &k, "lab", &s))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(stored, first);
        // Another cluster gets its own.
        let (k, s) = (key.clone(), second.clone());
        let (other, created) = store
            .write(move |c| insert_once(c, &k, "prod", &s))
            .await
            .unwrap();
        assert!(created);
        assert_eq!(other, second);
        store.close().await;

        // Restart: the same bundle, opened with the key file.
        let key = SiteKey::load_or_create(&data).unwrap();
        let store = Store::open(&data).unwrap();
        let k = key.clone();
        let again = store.read(move |c| get(c, &k, "lab")).await.unwrap();
        assert_eq!(again, Some(first.clone()));
        let k = key.clone();
        assert_eq!(store.read(move |c| get(c, &k, "none")).await.unwrap(), None);

        // The column holds no CA key, token or secret in clear.
        let raw: Vec<u8> = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT sealed_secrets FROM talos_cluster WHERE name = 'lab'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("PRIVATE KEY"));
        assert!(!text.contains(&first.trustd_token));
        assert!(!text.contains(&first.cluster_secret));
        let key_body = first.kubernetes_ca.key.lines().nth(1).unwrap();
        assert!(!text.contains(key_body));
        // Moved to another cluster's row, it does not open.
        store
            .write(move |c| {
                c.execute(
                    "UPDATE talos_cluster SET sealed_secrets = ?1 WHERE name = 'prod'",
                    [&raw],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let err = store.read(move |c| get(c, &key, "prod")).await.unwrap_err();
        assert!(err.to_string().contains("does not open"), "{err}");
        store.close().await;
    }
}
