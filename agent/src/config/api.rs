//! `[api]`: who may call the agent's `/v1` API (ADR 0013).
//!
//! Without `token_file` the API answers only callers on the agent's own
//! host (loopback, or the listener's own address): the operator at the
//! provisioning host's shell, and the tests. With it, every `/v1` call
//! except `/v1/health` needs `Authorization: Bearer <token>`, whoever
//! calls. The network-boot endpoints (`/boot`, `/artifacts`) are for
//! firmware and stay open either way.
//!
//! The token file is read while the configuration loads, so a missing,
//! unreadable or empty file is a configuration error with its field path,
//! not a surprise at the first request. Only its SHA-256 is kept.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::Report;
use super::{Api, wire};

/// `None` when a value failed (and was reported).
pub(crate) fn api(report: &mut Report, w: &wire::Api, base_dir: &Path) -> Option<Api> {
    let Some(text) = &w.token_file else {
        return Some(Api::default());
    };
    if text.is_empty() {
        report.push("api.token_file", "the path is empty".to_owned());
        return None;
    }
    // Relative to the file, then absolute, as site.data_dir.
    let joined = base_dir.join(text);
    let path = std::path::absolute(&joined).unwrap_or(joined);
    match std::fs::read_to_string(&path) {
        Ok(content) => match token_digest(&content) {
            Some(digest) => Some(Api {
                token_file: Some(path),
                token_sha256: Some(digest),
            }),
            None => {
                report.push(
                    "api.token_file",
                    format!(
                        "{} is empty: write a long random token into it",
                        path.display()
                    ),
                );
                None
            }
        },
        Err(e) => {
            report.push(
                "api.token_file",
                format!("cannot read {}: {e}", path.display()),
            );
            None
        }
    }
}

/// A token file's content, trimmed, hashed; `None` when it is blank.
pub fn token_digest(text: &str) -> Option<[u8; 32]> {
    let token = text.trim();
    (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into())
}
