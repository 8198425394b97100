//! `[api]`: who may call the agent's `/v1` API (ADR 0013).
//!
//! Without any credential configured the API answers only callers on the
//! agent's own host (loopback, or the listener's own address): the
//! operator at the provisioning host's shell, and the tests. With
//! `token_file` or `issuer`, every `/v1` call except `/v1/health` must
//! authenticate, whoever calls:
//!
//! - `token_file`: the site's bootstrap token, `user:operator`,
//!   platform-operator (break-glass: it works with the issuer down);
//! - `issuer` (+ `audience`, `user_claim`, `ca_file`): OIDC tokens from the
//!   same issuer the hub trusts, verified offline against its cached keys;
//!   `platform_operators` and `viewers` list which users hold which
//!   platform role here (the agent cannot ask the hub: it must work with
//!   the uplink cut).
//!
//! The network-boot endpoints (`/boot`, `/artifacts`) are for firmware and
//! stay open either way. Files are read while the configuration loads, so
//! a missing or empty one is a configuration error naming its field.

use std::path::{Path, PathBuf};

use dv_protocol::auth::{Role, RoleBinding, Scope, validate_subject};
use sha2::{Digest, Sha256};

use super::error::Report;
use super::{Api, ApiOidc, wire};

/// `requests_per_second` when unset.
pub(crate) const DEFAULT_RATE: u32 = 20;
/// `burst` when unset.
pub(crate) const DEFAULT_BURST: u32 = 40;

fn path(base_dir: &Path, text: &str) -> PathBuf {
    // Relative to the file, then absolute, as site.data_dir.
    let joined = base_dir.join(text);
    std::path::absolute(&joined).unwrap_or(joined)
}

fn token(report: &mut Report, text: &str, base_dir: &Path) -> Option<(PathBuf, [u8; 32])> {
    if text.is_empty() {
        report.push("api.token_file", "the path is empty".to_owned());
        return None;
    }
    let path = path(base_dir, text);
    match std::fs::read_to_string(&path) {
        Ok(content) => match token_digest(&content) {
            Some(digest) => Some((path, digest)),
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

fn oidc(report: &mut Report, w: &wire::Api, base_dir: &Path) -> Option<Option<ApiOidc>> {
    let Some(issuer) = &w.issuer else {
        for (field, set) in [
            ("api.audience", w.audience.is_some()),
            ("api.user_claim", w.user_claim.is_some()),
            ("api.ca_file", w.ca_file.is_some()),
        ] {
            if set {
                report.push(
                    field,
                    "only means something with api.issuer: set it too".to_owned(),
                );
            }
        }
        return Some(None);
    };
    let mut ok = true;
    if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        report.push("api.issuer", format!("{issuer:?} is not an http(s) URL"));
        ok = false;
    }
    let Some(audience) = w.audience.clone().filter(|a| !a.is_empty()) else {
        report.push(
            "api.audience",
            "an issuer needs the audience its tokens carry (the CLI's client id, e.g. dv-cli)"
                .to_owned(),
        );
        return None;
    };
    let ca_pem = match &w.ca_file {
        None => None,
        Some(text) => match std::fs::read(path(base_dir, text)) {
            Ok(pem) => Some(pem),
            Err(e) => {
                report.push("api.ca_file", format!("cannot read {text}: {e}"));
                ok = false;
                None
            }
        },
    };
    ok.then(|| {
        Some(ApiOidc {
            issuer: issuer.clone(),
            audience,
            user_claim: w.user_claim.clone().unwrap_or_else(|| "email".to_owned()),
            ca_pem,
        })
    })
}

/// `None` when a value failed (and was reported).
pub(crate) fn api(report: &mut Report, w: &wire::Api, base_dir: &Path) -> Option<Api> {
    let token = match &w.token_file {
        None => Some(None),
        Some(text) => token(report, text, base_dir).map(Some),
    };
    let oidc = oidc(report, w, base_dir);
    let mut bindings = Vec::new();
    let mut ok = true;
    for (field, subjects, role) in [
        (
            "api.platform_operators",
            &w.platform_operators,
            Role::PlatformOperator,
        ),
        ("api.viewers", &w.viewers, Role::Viewer),
    ] {
        for (i, subject) in subjects.iter().enumerate() {
            match validate_subject(subject) {
                Ok(()) => bindings.push(RoleBinding {
                    subject: subject.clone(),
                    role,
                    scope: Scope::Platform,
                }),
                Err(e) => {
                    report.push(format!("{field}[{i}]"), e.to_string());
                    ok = false;
                }
            }
        }
    }
    if !bindings.is_empty() && w.issuer.is_none() {
        report.push(
            "api.platform_operators",
            "users are named only for OIDC logins: set api.issuer too".to_owned(),
        );
        ok = false;
    }
    let rate = w.requests_per_second.unwrap_or(DEFAULT_RATE);
    let burst = w.burst.unwrap_or(DEFAULT_BURST);
    if rate == 0 || burst == 0 {
        report.push(
            "api.requests_per_second",
            "the rate and burst must be at least 1".to_owned(),
        );
        ok = false;
    }
    let (token, oidc) = (token?, oidc?);
    ok.then(|| Api {
        token_file: token.as_ref().map(|(p, _)| p.clone()),
        token_sha256: token.map(|(_, d)| d),
        oidc,
        bindings,
        requests_per_second: rate,
        burst,
    })
}

/// A token file's content, trimmed, hashed; `None` when it is blank.
pub fn token_digest(text: &str) -> Option<[u8; 32]> {
    let token = text.trim();
    (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into())
}
