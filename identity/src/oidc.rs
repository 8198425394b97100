//! OIDC bearer verification (ADR 0013): a JWT from the configured issuer
//! becomes the subject `user:<claim>`.
//!
//! The issuer's keys are found the standard way: its
//! `/.well-known/openid-configuration` names a `jwks_uri`, whose key set is
//! cached by `kid`. A token signed with a `kid` not in the cache triggers a
//! refetch (the issuer rotated its keys), at most once every
//! [`REFETCH_INTERVAL`], so a stream of forged `kid`s cannot turn the
//! server into a load generator against the issuer.
//!
//! Discovery is lazy (first token), so a server starts while its issuer is
//! down; the bootstrap token stays usable meanwhile.
//!
//! The signature algorithm comes from the key, never from the token: the
//! JWK's `alg` (or, without one, its key type: RSA → RS256, P-256 → ES256,
//! Ed25519 → EdDSA), and the token's header must name that same algorithm.
//! Symmetric (`oct`) keys are never accepted, and `alg: none` does not even
//! parse. Then `iss`, `aud`, `exp` and `nbf` are checked with [`LEEWAY`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

/// The shortest time between two key-set fetches caused by unknown `kid`s.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 60;
/// How long a discovery or JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What a verifier needs to know.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The issuer URL, exactly as tokens carry it in `iss`.
    pub issuer: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// The claim that names the user (`email` by default).
    pub user_claim: String,
    /// Extra CA certificates (PEM) to trust for the issuer's TLS.
    pub ca_pem: Option<Vec<u8>>,
}

/// Why a token was refused (or the issuer could not be asked).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The HTTP client could not be built (a bad CA file).
    #[error("the OIDC client could not be set up: {0}")]
    Client(String),
    /// Discovery or the key set could not be fetched or read.
    #[error("the issuer's keys could not be fetched from {url}: {detail}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The token is not a well-formed JWT (or says `alg: none`).
    #[error("the bearer token is not a valid JWT: {0}")]
    Malformed(String),
    /// The token names no `kid`.
    #[error("the token's header names no key (kid)")]
    NoKid,
    /// No key with that `kid`, even after refetching.
    #[error("the issuer has no key {0:?}")]
    UnknownKid(String),
    /// The key is of a kind this verifier does not accept.
    #[error("key {kid:?} cannot verify tokens: {detail}")]
    UnusableKey {
        /// Its id.
        kid: String,
        /// Why.
        detail: String,
    },
    /// Signature, issuer, audience or times did not check out.
    #[error("the token was refused: {0}")]
    Invalid(String),
    /// The configured user claim is missing.
    #[error("the token has no {0:?} claim, which names the user (identity.user_claim)")]
    MissingClaim(String),
}

/// One usable key: how to verify with it.
struct Key {
    key: DecodingKey,
    algorithm: Algorithm,
}

/// Where the keys come from and when they were last fetched; held only
/// by the one task fetching, so tokens with known keys never wait on the
/// issuer.
#[derive(Default)]
struct Fetcher {
    jwks_uri: Option<String>,
    fetched_at: Option<Instant>,
}

/// Verifies bearer JWTs from one issuer.
pub struct OidcVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    keys: RwLock<Arc<HashMap<String, Key>>>,
    fetcher: Mutex<Fetcher>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Discovery {
    /// Must be the configured issuer (OpenID Connect Discovery 1.0, 4.3):
    /// a document naming another issuer is not this issuer's.
    issuer: String,
    jwks_uri: String,
}

/// Whether `token` has the shape of a JWT (three base64url parts), as
/// opposed to a service or bootstrap token.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl OidcVerifier {
    /// A verifier for `settings`; nothing is fetched yet.
    pub fn new(settings: OidcSettings) -> Result<Self, OidcError> {
        let mut builder = reqwest::Client::builder().timeout(FETCH_TIMEOUT);
        if let Some(pem) = &settings.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| OidcError::Client(format!("the issuer CA file: {e}")))?;
            if certs.is_empty() {
                return Err(OidcError::Client(
                    "the issuer CA file holds no PEM certificate".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| OidcError::Client(e.to_string()))?;
        Ok(Self {
            settings,
            http,
            keys: RwLock::new(Arc::new(HashMap::new())),
            fetcher: Mutex::new(Fetcher::default()),
        })
    }

    /// The settings it verifies against.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// The current key set (a cheap clone of an `Arc`).
    fn current(&self) -> Arc<HashMap<String, Key>> {
        // Writers only swap the map, so a poisoned lock still holds a
        // complete one.
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Verifies `token` and answers its subject, `user:<claim>`.
    pub async fn verify(&self, token: &str) -> Result<String, OidcError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| OidcError::Malformed(e.to_string()))?;
        let kid = header.kid.clone().ok_or(OidcError::NoKid)?;
        let mut keys = self.current();
        if !keys.contains_key(&kid) {
            self.refresh().await?;
            keys = self.current();
        }
        let key = keys
            .get(&kid)
            .ok_or_else(|| OidcError::UnknownKid(kid.clone()))?;
        if header.alg != key.algorithm {
            return Err(OidcError::Invalid(format!(
                "the token says {:?} but key {kid:?} is {:?}",
                header.alg, key.algorithm
            )));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_audience(&[self.settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        let claims: serde_json::Map<String, serde_json::Value> =
            jsonwebtoken::decode(token, &key.key, &validation)
                .map_err(|e| OidcError::Invalid(e.to_string()))?
                .claims;
        let claim = &self.settings.user_claim;
        match claims.get(claim) {
            Some(serde_json::Value::String(name)) if !name.is_empty() => Ok(format!("user:{name}")),
            _ => Err(OidcError::MissingClaim(claim.clone())),
        }
    }

    /// Refetches the key set if the last fetch is old enough. Concurrent
    /// callers queue on the fetcher, and those after the first find the
    /// fetch recent and return at once.
    async fn refresh(&self) -> Result<(), OidcError> {
        let mut fetcher = self.fetcher.lock().await;
        if fetcher
            .fetched_at
            .is_some_and(|at| at.elapsed() < REFETCH_INTERVAL)
        {
            return Ok(());
        }
        // Whatever happens below, the next attempt waits: a failing issuer
        // is not hammered either.
        fetcher.fetched_at = Some(Instant::now());
        let jwks_uri = match &fetcher.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.settings.issuer.trim_end_matches('/')
                );
                let discovery: Discovery = self.fetch(&url).await?;
                if discovery.issuer.trim_end_matches('/')
                    != self.settings.issuer.trim_end_matches('/')
                {
                    return Err(OidcError::Fetch {
                        url,
                        detail: format!(
                            "the document names issuer {:?}, not the configured one",
                            discovery.issuer
                        ),
                    });
                }
                fetcher.jwks_uri = Some(discovery.jwks_uri.clone());
                discovery.jwks_uri
            }
        };
        let set: JwkSet = self.fetch(&jwks_uri).await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            match usable(jwk) {
                Ok(key) => {
                    keys.insert(kid, key);
                }
                Err(detail) => {
                    tracing::debug!(kid, detail, "issuer key skipped");
                }
            }
        }
        tracing::info!(issuer = %self.settings.issuer, keys = keys.len(), "OIDC keys fetched");
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        Ok(())
    }

    async fn fetch<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let fail = |detail: String| OidcError::Fetch {
            url: url.to_owned(),
            detail,
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP {}", response.status())));
        }
        let bytes = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))
    }
}

/// The algorithm a JWK verifies with, and its decoding key; asymmetric
/// signature keys only.
fn usable(jwk: &Jwk) -> Result<Key, String> {
    let inferred = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err("unsupported curve".into()),
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are never trusted".into()),
        _ => return Err("unknown key type".into()),
    };
    let algorithm = match jwk.common.key_algorithm {
        None => inferred,
        Some(alg) => {
            let named = match alg {
                KeyAlgorithm::RS256 => Algorithm::RS256,
                KeyAlgorithm::RS384 => Algorithm::RS384,
                KeyAlgorithm::RS512 => Algorithm::RS512,
                KeyAlgorithm::PS256 => Algorithm::PS256,
                KeyAlgorithm::PS384 => Algorithm::PS384,
                KeyAlgorithm::PS512 => Algorithm::PS512,
                KeyAlgorithm::ES256 => Algorithm::ES256,
                KeyAlgorithm::ES384 => Algorithm::ES384,
                KeyAlgorithm::EdDSA => Algorithm::EdDSA,
                other => return Err(format!("algorithm {other:?} is not a signature algorithm")),
            };
            if named.family() != inferred.family() {
                return Err(format!("alg {named:?} does not fit the key type"));
            }
            named
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    Ok(Key { key, algorithm })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    /// An EC P-256 signing key and its JWK.
    struct Signer {
        kid: String,
        encoding: EncodingKey,
        jwk: serde_json::Value,
    }

    fn signer(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = pair.public_key_raw();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Signer {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
            jwk,
        }
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    impl Signer {
        fn sign(&self, claims: &serde_json::Value) -> String {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
        }
    }

    /// Discovery and JWKS on loopback; counts JWKS fetches.
    struct Issuer {
        url: String,
        fetches: Arc<AtomicUsize>,
        _server: tokio::task::JoinHandle<()>,
    }

    async fn issuer(jwks: Vec<serde_json::Value>) -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({ "issuer": url, "jwks_uri": format!("{url}/jwks") });
        let set = json!({ "keys": jwks });
        let counter = fetches.clone();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move { axum::Json(set) }
                }),
            );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Issuer {
            url,
            fetches,
            _server: server,
        }
    }

    fn verifier(issuer: &Issuer) -> OidcVerifier {
        OidcVerifier::new(OidcSettings {
            issuer: issuer.url.clone(),
            audience: "dataverket".into(),
            user_claim: "email".into(),
            ca_pem: None,
        })
        .unwrap()
    }

    fn claims(issuer: &str) -> serde_json::Value {
        json!({
            "iss": issuer, "aud": "dataverket", "sub": "1234",
            "email": "alice@example.com", "exp": now() + 300, "iat": now(),
        })
    }

    #[tokio::test]
    async fn a_valid_token_names_the_user() {
        let key = signer("k1");
        let idp = issuer(vec![key.jwk.clone()]).await;
        let v = verifier(&idp);
        let token = key.sign(&claims(&idp.url));
        assert!(looks_like_jwt(&token));
        assert_eq!(v.verify(&token).await.unwrap(), "user:alice@example.com");
        // Cached: the second token costs no fetch.
        assert_eq!(v.verify(&token).await.unwrap(), "user:alice@example.com");
        assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn wrong_issuer_audience_and_times_are_refused() {
        let key = signer("k1");
        let idp = issuer(vec![key.jwk.clone()]).await;
        let v = verifier(&idp);
        let mut c = claims("https://evil.example");
        let e = v.verify(&key.sign(&c)).await.unwrap_err();
        assert!(matches!(e, OidcError::Invalid(_)), "{e}");
        c = claims(&idp.url);
        c["aud"] = json!("someone-else");
        let e = v.verify(&key.sign(&c)).await.unwrap_err();
        assert!(matches!(e, OidcError::Invalid(_)), "{e}");
        c = claims(&idp.url);
        c["exp"] = json!(now() - 120);
        let e = v.verify(&key.sign(&c)).await.unwrap_err();
        assert!(e.to_string().contains("xpired"), "{e}");
        // Within the leeway it still passes.
        c["exp"] = json!(now() - 10);
        assert!(v.verify(&key.sign(&c)).await.is_ok());
        c = claims(&idp.url);
        c["nbf"] = json!(now() + 600);
        let e = v.verify(&key.sign(&c)).await.unwrap_err();
        assert!(matches!(e, OidcError::Invalid(_)), "{e}");
    }

    #[tokio::test]
    async fn unknown_kid_refetches_at_most_every_interval() {
        let key = signer("k1");
        let stranger = signer("k2");
        let idp = issuer(vec![key.jwk.clone()]).await;
        let v = verifier(&idp);
        assert!(v.verify(&key.sign(&claims(&idp.url))).await.is_ok());
        for _ in 0..5 {
            let e = v
                .verify(&stranger.sign(&claims(&idp.url)))
                .await
                .unwrap_err();
            assert!(
                matches!(e, OidcError::UnknownKid(ref k) if k == "k2"),
                "{e}"
            );
        }
        assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "refetched too often");
    }

    #[tokio::test]
    async fn tampered_and_unsigned_tokens_are_refused() {
        let key = signer("k1");
        let idp = issuer(vec![key.jwk.clone()]).await;
        let v = verifier(&idp);
        let token = key.sign(&claims(&idp.url));
        // Another user's claims under the original signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims(&idp.url);
        forged["email"] = json!("mallory@example.com");
        let payload = URL_SAFE_NO_PAD.encode(forged.to_string());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        let e = v.verify(&tampered).await.unwrap_err();
        assert!(matches!(e, OidcError::Invalid(_)), "{e}");
        // alg: none, no signature.
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1","typ":"JWT"}"#);
        let e = v.verify(&format!("{none}.{payload}.")).await.unwrap_err();
        assert!(matches!(e, OidcError::Malformed(_)), "{e}");
        // HS256 with the public key as secret (algorithm confusion).
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(&header, &claims(&idp.url), &EncodingKey::from_secret(b"x"))
            .unwrap();
        assert!(v.verify(&hs).await.is_err());
    }

    #[tokio::test]
    async fn a_missing_user_claim_is_named() {
        let key = signer("k1");
        let idp = issuer(vec![key.jwk.clone()]).await;
        let v = OidcVerifier::new(OidcSettings {
            user_claim: "preferred_username".into(),
            ..verifier(&idp).settings().clone()
        })
        .unwrap();
        let e = v.verify(&key.sign(&claims(&idp.url))).await.unwrap_err();
        assert!(e.to_string().contains("preferred_username"), "{e}");
    }

    #[test]
    fn jwt_shapes() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(looks_like_jwt("a.b."));
        assert!(!looks_like_jwt("dvs_0123_abcd"));
        assert!(!looks_like_jwt("token-123"));
        assert!(!looks_like_jwt("a.b.c.d"));
    }
}
