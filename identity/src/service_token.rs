//! Service tokens (ADR 0013): `dvs_<id>_<secret>`, minted by the hub for
//! automation.
//!
//! - `id`: 16 lower-case hex characters, the public handle (listed,
//!   revoked by, stored under).
//! - `secret`: 32 random bytes as 64 lower-case hex characters; shown once.
//!   The server keeps only its SHA-256 ([`SecretDigest`]) and compares
//!   digests in constant time, so a timing difference cannot reveal how much
//!   of a guess was right.
//!
//! Parsing is strict: anything but exactly that shape is refused with a
//! message saying which part is wrong (and never echoing the secret).

use std::fmt;

use sha2::{Digest, Sha256};

/// The token prefix: tells a service token from a JWT or the bootstrap
/// token at a glance (and to secret scanners).
pub const PREFIX: &str = "dvs_";
/// Hex characters in an id.
pub const ID_LEN: usize = 16;
/// Random bytes in a secret.
pub const SECRET_BYTES: usize = 32;

/// Why a service token was refused or could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `dvs_...`.
    #[error("not a service token: it must start with {PREFIX}")]
    Prefix,
    /// No `_` between id and secret.
    #[error("malformed service token: expected dvs_<id>_<secret>")]
    Shape,
    /// The id part is wrong.
    #[error("malformed service token: the id must be {ID_LEN} lower-case hex characters")]
    Id,
    /// The secret part is wrong.
    #[error(
        "malformed service token: the secret must be {} lower-case hex characters",
        SECRET_BYTES * 2
    )]
    Secret,
    /// The system's random source failed.
    #[error("no randomness available to mint a token")]
    Random,
}

/// A token's public id (`16` hex characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(String);

impl TokenId {
    /// Checks `text` is an id.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if is_lower_hex(text, ID_LEN) {
            Ok(Self(text.to_owned()))
        } else {
            Err(TokenError::Id)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SHA-256 of a secret: what the server stores.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// From its hex form (as stored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }

    /// Its hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Constant-time comparison: every byte is looked at whatever differs.
    pub fn matches(&self, other: &SecretDigest) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

/// A whole token: id and secret. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceToken {
    id: TokenId,
    secret: String,
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ServiceToken {
    /// A new token from the system's random source.
    pub fn mint() -> Result<Self, TokenError> {
        let mut id = [0u8; ID_LEN / 2];
        let mut secret = [0u8; SECRET_BYTES];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| TokenError::Random)?;
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| TokenError::Random)?;
        Ok(Self {
            id: TokenId(hex::encode(id)),
            secret: hex::encode(secret),
        })
    }

    /// Parses a bearer token strictly.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let rest = text.strip_prefix(PREFIX).ok_or(TokenError::Prefix)?;
        let (id, secret) = rest.split_once('_').ok_or(TokenError::Shape)?;
        let id = TokenId::parse(id)?;
        if !is_lower_hex(secret, SECRET_BYTES * 2) {
            return Err(TokenError::Secret);
        }
        Ok(Self {
            id,
            secret: secret.to_owned(),
        })
    }

    /// The public id.
    pub fn id(&self) -> &TokenId {
        &self.id
    }

    /// The secret's digest, to store or to compare with the stored one.
    pub fn digest(&self) -> SecretDigest {
        SecretDigest(Sha256::digest(self.secret.as_bytes()).into())
    }

    /// The bearer form, `dvs_<id>_<secret>`: show it once, store it never.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}_{}", self.id, self.secret)
    }
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_back_and_differ() {
        let a = ServiceToken::mint().unwrap();
        let b = ServiceToken::mint().unwrap();
        assert_ne!(a, b);
        let text = a.expose();
        assert!(
            text.starts_with("dvs_") && text.len() == 4 + 16 + 1 + 64,
            "{text}"
        );
        let back = ServiceToken::parse(&text).unwrap();
        assert_eq!(back, a);
        assert!(back.digest().matches(&a.digest()));
        assert!(!back.digest().matches(&b.digest()));
        assert!(
            !format!("{a:?}").contains(&text[21..]),
            "Debug leaks the secret"
        );
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        let good = ServiceToken::mint().unwrap().expose();
        assert_eq!(ServiceToken::parse("abc"), Err(TokenError::Prefix));
        assert_eq!(ServiceToken::parse("dvs_abc"), Err(TokenError::Shape));
        assert_eq!(ServiceToken::parse("dvs_XYZ_abc"), Err(TokenError::Id));
        let upper = good.to_uppercase().replacen("DVS_", "dvs_", 1);
        assert_eq!(ServiceToken::parse(&upper), Err(TokenError::Id));
        assert_eq!(
            ServiceToken::parse(&good[..good.len() - 1]),
            Err(TokenError::Secret)
        );
        assert_eq!(
            ServiceToken::parse(&format!("{good}_x")),
            Err(TokenError::Secret)
        );
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let d = ServiceToken::mint().unwrap().digest();
        assert!(SecretDigest::from_hex(&d.to_hex()).unwrap().matches(&d));
        assert!(SecretDigest::from_hex("zz").is_none());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = ServiceToken::parse(&s);
        }

        #[test]
        fn parse_of_near_tokens_never_panics(s in "dvs_[0-9a-f_]{0,90}") {
            if let Ok(t) = ServiceToken::parse(&s) {
                proptest::prop_assert_eq!(t.expose(), s);
            }
        }

        #[test]
        fn round_trip(id in "[0-9a-f]{16}", secret in "[0-9a-f]{64}") {
            let text = format!("dvs_{id}_{secret}");
            let t = ServiceToken::parse(&text).unwrap();
            proptest::prop_assert_eq!(t.id().as_str(), id.as_str());
            proptest::prop_assert_eq!(t.expose(), text);
        }
    }
}
