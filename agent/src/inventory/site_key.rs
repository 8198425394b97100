//! The site key: 32 random bytes in `<data_dir>/site.key` (mode 0600),
//! created at first start, that seal secrets stored in the agent database
//! (BMC passwords) with XChaCha20-Poly1305.
//!
//! A sealed value is a fresh 24-byte nonce followed by the ciphertext and
//! tag; the row's name is the associated data, so a sealed value copied
//! into another row does not open. A copy of `agent.db` alone reveals no
//! password; the key file is what a backup must protect.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "site.key";

const NONCE: usize = 24;

/// What can go wrong with the key or a sealed value.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or created.
    #[error("site key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not 32 bytes.
    #[error("site key {path} is {len} bytes, not 32: restore it from the site kit or backup")]
    BadLength {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// A sealed value did not open: wrong key, tampered or moved.
    #[error(
        "secret {name} does not open with this site's key (tampered, or sealed under another key)"
    )]
    Open {
        /// The row it belongs to.
        name: String,
    },
}

/// The loaded key.
#[derive(Clone)]
pub struct SiteKey(XChaCha20Poly1305);

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteKey(..)")
    }
}

impl SiteKey {
    /// Loads the key in `data_dir`, creating it (0600, never overwritten)
    /// if there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<SiteKey, KeyError> {
        let path = data_dir.join(KEY_FILE);
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                f.write_all(&key).map_err(io)?;
                f.sync_all().map_err(io)?;
                tracing::info!(path = %path.display(), "site key created");
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        if bytes.len() != 32 {
            return Err(KeyError::BadLength {
                path,
                len: bytes.len(),
            });
        }
        Ok(SiteKey(XChaCha20Poly1305::new(Key::from_slice(&bytes))))
    }

    /// Seals `secret` for the row `name`.
    pub fn seal(&self, name: &str, secret: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and nonce does not fail for inputs
        // this size; an empty result would fail to open, never leak.
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: name.as_bytes(),
                },
            )
            .unwrap_or_default();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Self::seal`] sealed for `name`.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let fail = || KeyError::Open {
            name: name.to_owned(),
        };
        if sealed.len() < NONCE {
            return Err(fail());
        }
        let (nonce, body) = sealed.split_at(NONCE);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let key = SiteKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = key.seal("bmc-a", b"s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(key.open("bmc-a", &sealed).unwrap(), b"s3cret");
        // Same key file, loaded again: still opens.
        let again = SiteKey::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open("bmc-a", &sealed).unwrap(), b"s3cret");
        // Moved to another row, tampered, or another site's key: refused.
        assert!(key.open("bmc-b", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open("bmc-a", &tampered).is_err());
        assert!(key.open("bmc-a", &sealed[..10]).is_err());
        let other = tempfile::tempdir().unwrap();
        assert!(
            SiteKey::load_or_create(other.path())
                .unwrap()
                .open("bmc-a", &sealed)
                .is_err()
        );
    }

    #[test]
    fn a_damaged_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let err = SiteKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::BadLength { len: 5, .. }), "{err}");
        assert_eq!(std::fs::read(dir.path().join(KEY_FILE)).unwrap(), b"short");
    }
}
