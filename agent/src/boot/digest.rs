//! sha256 digests of served files, computed once per file version.
//!
//! Hashing a large installer image takes seconds, so a digest is cached
//! under the file's canonical path together with its size and mtime; a file
//! replaced in place (new mtime or size) is hashed again.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// Entries kept before the cache is cleared (a site serves a few dozen files).
const MAX_ENTRIES: usize = 1024;

type Key = (PathBuf, u64, Option<SystemTime>);

/// A shared digest cache; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct DigestCache {
    entries: Arc<Mutex<HashMap<Key, String>>>,
}

impl DigestCache {
    /// The lower-case hex sha256 of the file at `path` (canonical), from the
    /// cache when the file has not changed. Hashes on a blocking thread.
    pub async fn sha256(&self, path: &Path) -> std::io::Result<String> {
        let meta = tokio::fs::metadata(path).await?;
        let key: Key = (path.to_owned(), meta.len(), meta.modified().ok());
        if let Some(hex) = self.entries.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(hex);
        }
        let owned = path.to_owned();
        let hex = tokio::task::spawn_blocking(move || file_sha256(&owned))
            .await
            .map_err(std::io::Error::other)??;
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, hex.clone());
        }
        Ok(hex)
    }
}

/// Hex sha256 of a file, read in 256 KiB chunks.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn digests_are_cached_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let cache = DigestCache::default();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(cache.sha256(&path).await.unwrap(), abc);
        assert_eq!(cache.sha256(&path).await.unwrap(), abc);
        std::fs::write(&path, b"abcd").unwrap();
        assert_ne!(cache.sha256(&path).await.unwrap(), abc);
    }
}
