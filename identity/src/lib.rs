//! Identity for Dataverket's servers (ADR 0013), shared by the hub and,
//! later, the agent:
//!
//! | module | owns |
//! | --- | --- |
//! | [`oidc`] | verifying OIDC bearer JWTs against an issuer's JWKS |
//! | [`service_token`] | `dvs_<id>_<secret>` tokens: mint, parse, digest, compare |
//! | [`ratelimit`] | per-key token buckets with bounded memory |
//!
//! What a subject may do is not decided here but in
//! `dv_protocol::auth` (`Principal::can`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod oidc;
pub mod ratelimit;
pub mod service_token;

pub use oidc::{OidcError, OidcSettings, OidcVerifier, looks_like_jwt};
pub use ratelimit::{LimitError, RateLimiter};
pub use service_token::{SecretDigest, ServiceToken, TokenError, TokenId};
