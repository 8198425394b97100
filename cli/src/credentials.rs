//! Login credentials: the tokens `dvid login` obtained from the OIDC
//! issuer, one file per context (`credentials/<context>.json` in the config
//! directory; `default.json` when no context is in use), and their refresh.
//!
//! The files hold live secrets (the refresh token lasts hours or days), so
//! they are created 0600 in a 0700 directory (created with those modes, not
//! chmod-ed after, so there is no moment they are readable), replaced whole
//! on every write, and a file that others can read is refused rather than
//! used: someone may have copied it.
//!
//! The bearer a request sends is the ID token (the servers check its `aud`
//! against the client id, ADR 0013). It is refreshed with the refresh token
//! when it expires within [`REFRESH_MARGIN`].

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use dv_sdk::oidc::{OidcClient, OidcError, TokenSet, unverified_claims};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::context::config_dir;
use crate::target::Failure;
use crate::{EXIT_API, EXIT_AUTH, EXIT_UNREACHABLE};

/// A token expiring sooner than this is refreshed before it is sent (the
/// servers allow 60 s of clock skew the other way).
pub const REFRESH_MARGIN: time::Duration = time::Duration::seconds(60);

/// The key of the credentials used without a context.
pub const DEFAULT_KEY: &str = "default";

/// What `dvid login` stored.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The issuer the tokens come from.
    pub issuer: String,
    /// The public client they were issued to.
    pub client_id: String,
    /// The bearer: a JWT whose `aud` is the client id.
    pub id_token: String,
    /// The access token (for the issuer's userinfo; not sent to servers).
    pub access_token: String,
    /// Trades for fresh tokens; absent if the issuer granted none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the ID token expires (RFC 3339).
    pub expires_at: String,
    /// When these tokens were obtained (RFC 3339).
    pub obtained_at: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("Credentials")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials from a token answer; `previous_refresh` is kept when the
    /// issuer does not rotate refresh tokens.
    pub fn from_tokens(
        issuer: &str,
        client_id: &str,
        tokens: TokenSet,
        previous_refresh: Option<String>,
    ) -> Result<Credentials, String> {
        let id_token = tokens.id_token.ok_or_else(|| {
            format!("the issuer {issuer} sent no ID token\nhint: ask for the openid scope")
        })?;
        let now = OffsetDateTime::now_utc();
        // The bearer is the ID token, so its own exp is what counts.
        let expires = unverified_claims(&id_token)
            .and_then(|c| c.get("exp").and_then(serde_json::Value::as_i64))
            .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok())
            .or_else(|| {
                tokens
                    .expires_in
                    .and_then(|s| i64::try_from(s).ok())
                    .map(|s| now + time::Duration::seconds(s))
            })
            .unwrap_or(now);
        Ok(Credentials {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            id_token,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.or(previous_refresh),
            expires_at: rfc3339(expires),
            obtained_at: rfc3339(now),
        })
    }

    /// Who the ID token names: its `email`, else its `sub`.
    pub fn user(&self) -> String {
        let claims = unverified_claims(&self.id_token).unwrap_or_default();
        ["email", "sub"]
            .iter()
            .find_map(|k| claims.get(*k).and_then(|v| v.as_str()))
            .unwrap_or("?")
            .to_owned()
    }

    /// Whether the ID token expires within [`REFRESH_MARGIN`] (or its
    /// expiry cannot be read).
    pub fn stale(&self) -> bool {
        OffsetDateTime::parse(&self.expires_at, &Rfc3339)
            .map_or(true, |t| t - OffsetDateTime::now_utc() < REFRESH_MARGIN)
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The credentials file of `key` (a context name, or [`DEFAULT_KEY`]).
pub fn path(key: &str) -> Result<PathBuf, String> {
    // A context name becomes a file name: nothing that leaves the directory.
    if key.is_empty() || key.starts_with('.') || key.contains(['/', '\\']) {
        return Err(format!(
            "context name {key:?} cannot name a credentials file\nhint: use a context name without '/' that does not start with '.'"
        ));
    }
    Ok(config_dir()?
        .join("credentials")
        .join(format!("{key}.json")))
}

/// The stored credentials of `key`, if any. Refuses a file that others
/// may read.
pub fn load(key: &str) -> Result<Option<Credentials>, String> {
    let path = path(key)?;
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    // Checked on the open file, so it is this file's mode that is judged.
    let mode = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} holds login tokens but others may read it (mode {:o}); it is not used\nhint: chmod 600 {}, or log in again: dvid logout && dvid login",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        format!(
            "{} is not a credentials file: {e}\nhint: dvid logout, then dvid login",
            path.display()
        )
    })
}

/// Stores `creds` for `key`: 0600 in a 0700 directory, replaced whole.
pub fn save(key: &str, creds: &Credentials) -> Result<PathBuf, String> {
    let path = path(key)?;
    let text = serde_json::to_string_pretty(creds).map_err(|e| e.to_string())?;
    crate::private_file::write(&path, &text)?;
    Ok(path)
}

/// Deletes the credentials of `key`; the path if there were any.
pub fn remove(key: &str) -> Result<Option<PathBuf>, String> {
    let path = path(key)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
    }
}

/// The bearer of `key`'s login, refreshed first if it is about to expire;
/// `None` if there is no login.
pub async fn bearer(key: &str) -> Result<Option<String>, Failure> {
    let Some(creds) = load(key).map_err(Failure::Config)? else {
        return Ok(None);
    };
    if !creds.stale() {
        return Ok(Some(creds.id_token));
    }
    refresh(key, creds).await.map(|c| Some(c.id_token))
}

/// Refreshes `creds` at their issuer and stores the result.
pub async fn refresh(key: &str, creds: Credentials) -> Result<Credentials, Failure> {
    let expired = |why: String| Failure::Exit {
        message: format!(
            "the login of {} (context {key}) expired and cannot be renewed: {why}\nhint: dvid login",
            creds.user()
        ),
        code: EXIT_AUTH,
    };
    let Some(refresh_token) = creds.refresh_token.clone() else {
        return Err(expired("the issuer granted no refresh token".to_owned()));
    };
    let client = OidcClient::discover(&creds.issuer, &creds.client_id)
        .await
        .map_err(|e| oidc_failure(&e, &creds.issuer))?;
    let tokens = match client.refresh(&refresh_token).await {
        Ok(t) => t,
        Err(OidcError::Refused { error, description }) => {
            // Another dv command may have refreshed (and so rotated the
            // refresh token) at the same moment: use what it stored.
            if let Ok(Some(now)) = load(key)
                && now.refresh_token != creds.refresh_token
                && !now.stale()
            {
                return Ok(now);
            }
            let why = match description {
                Some(d) => format!("{error} ({d})"),
                None => error,
            };
            return Err(expired(why));
        }
        Err(e) => return Err(oidc_failure(&e, &creds.issuer)),
    };
    let fresh =
        Credentials::from_tokens(&creds.issuer, &creds.client_id, tokens, Some(refresh_token))
            .map_err(Failure::Config)?;
    save(key, &fresh).map_err(Failure::Config)?;
    Ok(fresh)
}

/// An OIDC failure as a command's failure: unreachable is exit 3, a
/// refusal exit 6, the rest exit 1.
pub fn oidc_failure(e: &OidcError, issuer: &str) -> Failure {
    let text = crate::target::chain(e);
    let (hint, code) = match e {
        OidcError::Unreachable { .. } => (
            format!("is the issuer {issuer} up, and reachable from here?"),
            EXIT_UNREACHABLE,
        ),
        OidcError::Denied { .. } | OidcError::Expired | OidcError::Refused { .. } => {
            ("run dvid login again".to_owned(), EXIT_AUTH)
        }
        OidcError::InvalidUrl { .. } | OidcError::IssuerMismatch { .. } => (
            "check the issuer URL (--issuer, or the server's [identity] issuer)".to_owned(),
            EXIT_API,
        ),
        _ => (format!("is {issuer} an OpenID Connect issuer?"), EXIT_API),
    };
    Failure::Exit {
        message: format!("{text}\nhint: {hint}"),
        code,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        use base64::Engine;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
        format!("e30.{b}.sig")
    }

    fn tokens(id_token: Option<String>, refresh: Option<&str>) -> TokenSet {
        serde_json::from_value(serde_json::json!({
            "access_token": "at", "id_token": id_token, "refresh_token": refresh, "expires_in": 120,
        }))
        .unwrap()
    }

    #[test]
    fn the_id_tokens_exp_is_the_expiry() {
        let c = Credentials::from_tokens(
            "http://i",
            "dv-cli",
            tokens(Some(jwt(r#"{"exp":4102444800,"email":"a@b"}"#)), None),
            Some("old-rt".into()),
        )
        .unwrap();
        assert_eq!(c.expires_at, "2100-01-01T00:00:00Z");
        assert!(!c.stale());
        assert_eq!(c.user(), "a@b");
        // The issuer did not rotate: the old refresh token is kept.
        assert_eq!(c.refresh_token.as_deref(), Some("old-rt"));
        let past = Credentials {
            expires_at: "2000-01-01T00:00:00Z".into(),
            ..c.clone()
        };
        assert!(past.stale());
        let soon = Credentials {
            expires_at: rfc3339(OffsetDateTime::now_utc() + time::Duration::seconds(30)),
            ..c.clone()
        };
        assert!(soon.stale(), "within the margin");
        let garbled = Credentials {
            expires_at: "tomorrow".into(),
            ..c
        };
        assert!(garbled.stale());
        assert!(!format!("{garbled:?}").contains("old-rt"));
    }

    #[test]
    fn no_id_token_is_an_error_and_names_stay_in_the_directory() {
        let e = Credentials::from_tokens("http://i", "dv-cli", tokens(None, None), None)
            .err()
            .unwrap();
        assert!(e.contains("openid"), "{e}");
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(path(bad).is_err(), "{bad:?}");
        }
    }
}
