//! OpenID Connect for a command-line client: discovery, the device
//! authorization grant (RFC 8628) and refresh, against any issuer.
//!
//! The flow `dvid login` runs (ADR 0013): [`OidcClient::discover`] reads the
//! issuer's `/.well-known/openid-configuration`;
//! [`OidcClient::device_authorization`] asks for a device code and the
//! user code a person enters at the verification URL;
//! [`OidcClient::wait_for_token`] polls the token endpoint until that person
//! approved (or denied, or the code expired); [`OidcClient::refresh`] trades
//! a refresh token for fresh tokens later.
//!
//! These are two form POSTs, written here on the SDK's own reqwest rather
//! than with the `oauth2` crate: its 5.0 release builds its HTTP client on
//! reqwest 0.12 (a second HTTP and TLS stack beside the workspace's 0.13),
//! and plugging 0.13 in through its `AsyncHttpClient` trait means converting
//! requests through `http` types and pulling in chrono and rand 0.8 for
//! what is two requests and a loop.
//!
//! Tokens are not verified here: the servers verify them (signature, `iss`,
//! `aud`, `exp`). [`unverified_claims`] only reads a JWT's payload so a
//! client can tell who it logged in as and when the token expires.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Url;
use serde::Deserialize;

/// `urn:ietf:params:oauth:grant-type:device_code`.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What RFC 8628 says to wait between polls when the issuer names no
/// interval, and what `slow_down` adds to it.
const DEFAULT_INTERVAL: u64 = 5;

/// Why an OIDC step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The issuer is not an absolute http(s) URL.
    #[error("{url:?} is not an http:// or https:// issuer URL")]
    InvalidUrl {
        /// What was given.
        url: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client")]
    Setup {
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// No answer from the issuer.
    #[error("no answer from {url}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport's reason.
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not what OIDC describes.
    #[error("the answer from {url} is not what OpenID Connect describes: {why}")]
    Protocol {
        /// The URL called.
        url: String,
        /// What was wrong.
        why: String,
    },
    /// The discovery document names another issuer (a proxy or a typo).
    #[error("the issuer at {url} calls itself {found:?}, not {expected:?}")]
    IssuerMismatch {
        /// Where the document came from.
        url: String,
        /// The issuer asked for.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// The issuer does not offer the device authorization grant.
    #[error("the issuer {issuer} offers no device authorization endpoint")]
    NoDeviceFlow {
        /// The issuer.
        issuer: String,
    },
    /// The person declined (`access_denied`).
    #[error("the sign-in was denied{}", in_parens(.description))]
    Denied {
        /// The issuer's words, if any.
        description: Option<String>,
    },
    /// The device code expired before anyone approved it (`expired_token`,
    /// or `expires_in` passed).
    #[error("the code expired before the sign-in was approved")]
    Expired,
    /// Any other OAuth error answer (`invalid_grant` for a refresh token
    /// that expired or was revoked, `invalid_client`, ...).
    #[error("the issuer refused: {error}{}", in_parens(.description))]
    Refused {
        /// The OAuth error code.
        error: String,
        /// The issuer's words, if any.
        description: Option<String>,
    },
}

fn in_parens(d: &Option<String>) -> String {
    d.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
}

/// The parts of the issuer's discovery document the device flow needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Discovery {
    /// The issuer, as its tokens name it in `iss`.
    pub issuer: String,
    /// Where tokens are issued and refreshed.
    pub token_endpoint: String,
    /// Where a device asks for a user code (RFC 8628), if offered.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// Where refresh tokens can be revoked (RFC 7009), if offered.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

/// The answer of the device authorization endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceAuthorization {
    /// What the client polls with (secret: never shown).
    pub device_code: String,
    /// What the person enters.
    pub user_code: String,
    /// Where the person enters it.
    pub verification_uri: String,
    /// The same with the code filled in, if the issuer offers it.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    #[serde(default)]
    pub interval: Option<u64>,
}

/// A token endpoint's success answer.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct TokenSet {
    /// The access token.
    pub access_token: String,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// The ID token (a JWT), when `openid` was asked for.
    #[serde(default)]
    pub id_token: Option<String>,
    /// The refresh token, when the issuer grants one (`offline_access`).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds the access token lives.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The scopes granted.
    #[serde(default)]
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens: Debug output ends up in logs.
        f.debug_struct("TokenSet")
            .field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// One poll of the token endpoint.
#[derive(Debug)]
pub enum Poll {
    /// Not approved yet (`authorization_pending`).
    Pending,
    /// Polling too fast (`slow_down`): wait 5 s longer from now on.
    SlowDown,
    /// Approved.
    Done(TokenSet),
}

/// An OAuth error body (RFC 6749 section 5.2).
#[derive(Debug, Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// A public client (no secret) of one issuer.
#[derive(Debug, Clone)]
pub struct OidcClient {
    http: reqwest::Client,
    client_id: String,
    discovery: Discovery,
}

impl OidcClient {
    /// Reads `issuer`'s discovery document, for the public client
    /// `client_id`. The document must name the same issuer.
    pub async fn discover(issuer: &str, client_id: &str) -> Result<OidcClient, OidcError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| OidcError::Setup { source })?;
        Self::discover_with(http, issuer, client_id).await
    }

    /// [`OidcClient::discover`] with an HTTP client of the caller's (its
    /// own CA, timeouts).
    pub async fn discover_with(
        http: reqwest::Client,
        issuer: &str,
        client_id: &str,
    ) -> Result<OidcClient, OidcError> {
        let base = Url::parse(issuer)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| OidcError::InvalidUrl {
                url: issuer.to_owned(),
            })?;
        // RFC 8414 / OIDC Discovery: the well-known path is appended to the
        // issuer's own path.
        let url = format!(
            "{}/.well-known/openid-configuration",
            base.as_str().trim_end_matches('/')
        );
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|source| OidcError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|source| OidcError::Unreachable {
            url: url.clone(),
            source,
        })?;
        if !status.is_success() {
            return Err(OidcError::Protocol {
                url,
                why: format!("HTTP {status}"),
            });
        }
        let discovery: Discovery =
            serde_json::from_str(&body).map_err(|e| OidcError::Protocol {
                url: url.clone(),
                why: e.to_string(),
            })?;
        if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(OidcError::IssuerMismatch {
                url,
                expected: issuer.to_owned(),
                found: discovery.issuer,
            });
        }
        Ok(OidcClient {
            http,
            client_id: client_id.to_owned(),
            discovery,
        })
    }

    /// The discovery document.
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Asks for a device code and user code, for `scopes`.
    pub async fn device_authorization(
        &self,
        scopes: &[String],
    ) -> Result<DeviceAuthorization, OidcError> {
        let url = self
            .discovery
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| OidcError::NoDeviceFlow {
                issuer: self.discovery.issuer.clone(),
            })?;
        let scope = scopes.join(" ");
        let form = [("client_id", self.client_id.as_str()), ("scope", &scope)];
        let (status, body) = self.post_form(&url, &form).await?;
        if !status.is_success() {
            return Err(refusal(&url, status, &body));
        }
        serde_json::from_str(&body).map_err(|e| OidcError::Protocol {
            url,
            why: e.to_string(),
        })
    }

    /// Polls the token endpoint once with `device_code`.
    pub async fn poll(&self, device_code: &str) -> Result<Poll, OidcError> {
        let url = self.discovery.token_endpoint.clone();
        let form = [
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", device_code),
            ("client_id", self.client_id.as_str()),
        ];
        let (status, body) = self.post_form(&url, &form).await?;
        if status.is_success() {
            return tokens(&url, &body).map(Poll::Done);
        }
        match refusal(&url, status, &body) {
            OidcError::Refused { error, .. } if error == "authorization_pending" => {
                Ok(Poll::Pending)
            }
            OidcError::Refused { error, .. } if error == "slow_down" => Ok(Poll::SlowDown),
            OidcError::Refused { error, description } if error == "access_denied" => {
                Err(OidcError::Denied { description })
            }
            OidcError::Refused { error, .. } if error == "expired_token" => Err(OidcError::Expired),
            other => Err(other),
        }
    }

    /// Polls until the person approved, waiting the issuer's interval
    /// between polls (5 s more after each `slow_down`), for at most the
    /// code's `expires_in`.
    pub async fn wait_for_token(&self, auth: &DeviceAuthorization) -> Result<TokenSet, OidcError> {
        self.wait_with(auth, tokio::time::sleep).await
    }

    /// [`OidcClient::wait_for_token`] with the caller's way of waiting (a
    /// test's, which records the intervals and does not sleep). The bound
    /// is the larger of the time that passed and the waits asked for, so it
    /// holds whatever `sleep` does.
    pub async fn wait_with<S, F>(
        &self,
        auth: &DeviceAuthorization,
        mut sleep: S,
    ) -> Result<TokenSet, OidcError>
    where
        S: FnMut(Duration) -> F,
        F: Future<Output = ()>,
    {
        let started = Instant::now();
        let limit = Duration::from_secs(auth.expires_in);
        let mut interval = auth.interval.unwrap_or(DEFAULT_INTERVAL);
        let mut waited = Duration::ZERO;
        loop {
            let wait = Duration::from_secs(interval);
            if waited.max(started.elapsed()) + wait > limit {
                return Err(OidcError::Expired);
            }
            sleep(wait).await;
            waited += wait;
            match self.poll(&auth.device_code).await? {
                Poll::Pending => {}
                Poll::SlowDown => interval += DEFAULT_INTERVAL,
                Poll::Done(tokens) => return Ok(tokens),
            }
        }
    }

    /// Trades a refresh token for fresh tokens. The answer may carry a new
    /// refresh token (rotation); keep the old one if it does not.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, OidcError> {
        let url = self.discovery.token_endpoint.clone();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", self.client_id.as_str()),
        ];
        let (status, body) = self.post_form(&url, &form).await?;
        if !status.is_success() {
            return Err(refusal(&url, status, &body));
        }
        tokens(&url, &body)
    }

    /// Revokes a refresh token (RFC 7009), if the issuer offers revocation;
    /// `Ok(false)` if it does not.
    pub async fn revoke(&self, refresh_token: &str) -> Result<bool, OidcError> {
        let Some(url) = self.discovery.revocation_endpoint.clone() else {
            return Ok(false);
        };
        let form = [
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
            ("client_id", self.client_id.as_str()),
        ];
        let (status, body) = self.post_form(&url, &form).await?;
        if !status.is_success() {
            return Err(refusal(&url, status, &body));
        }
        Ok(true)
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, String), OidcError> {
        let unreachable = |source| OidcError::Unreachable {
            url: url.to_owned(),
            source,
        };
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let body = resp.text().await.map_err(unreachable)?;
        Ok((status, body))
    }
}

fn tokens(url: &str, body: &str) -> Result<TokenSet, OidcError> {
    serde_json::from_str(body).map_err(|e| OidcError::Protocol {
        url: url.to_owned(),
        why: e.to_string(),
    })
}

/// An error answer: the OAuth error it names, or a protocol error.
fn refusal(url: &str, status: reqwest::StatusCode, body: &str) -> OidcError {
    match serde_json::from_str::<OAuthError>(body) {
        Ok(e) => OidcError::Refused {
            error: e.error,
            description: e.error_description,
        },
        Err(_) => OidcError::Protocol {
            url: url.to_owned(),
            why: format!("HTTP {status}"),
        },
    }
}

/// A JWT's payload, not verified (only to read `exp`, `email`, ...); `None`
/// if `token` is not a JWT with a JSON object payload.
pub fn unverified_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
#[path = "oidc_tests.rs"]
mod tests;
