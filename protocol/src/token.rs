//! Name tokens: the short lower-case names that become NATS subject tokens,
//! DNS labels and database keys (site names, service names, host names).
//!
//! One rule for all of them keeps a name valid everywhere it travels: a DNS
//! label (RFC 1035 letters, digits and hyphens, 1..=63 octets, no leading or
//! trailing hyphen), restricted to lower case so that the subject
//! `dv.Lab.dhcp...` and `dv.lab.dhcp...` can never both exist.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid name token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is empty.
    #[error("{kind} is empty")]
    Empty {
        /// What the token names (site, service, ...).
        kind: &'static str,
    },
    /// The token is longer than a DNS label allows.
    #[error("{kind} {value:?} is {len} characters long; at most 63 are allowed")]
    TooLong {
        /// What the token names.
        kind: &'static str,
        /// The rejected value.
        value: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The token holds a character outside `[a-z0-9-]`.
    #[error(
        "{kind} {value:?} contains {ch:?}; only lower-case letters, digits and '-' are allowed"
    )]
    BadChar {
        /// What the token names.
        kind: &'static str,
        /// The rejected value.
        value: String,
        /// The first offending character.
        ch: char,
    },
    /// The token starts or ends with a hyphen.
    #[error("{kind} {value:?} starts or ends with '-'")]
    EdgeHyphen {
        /// What the token names.
        kind: &'static str,
        /// The rejected value.
        value: String,
    },
}

/// Checks `value` against the token rule; `kind` names it in the error.
pub fn validate_token(kind: &'static str, value: &str) -> Result<(), TokenError> {
    if value.is_empty() {
        return Err(TokenError::Empty { kind });
    }
    if value.len() > 63 {
        return Err(TokenError::TooLong {
            kind,
            value: value.to_owned(),
            len: value.len(),
        });
    }
    if let Some(ch) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(TokenError::BadChar {
            kind,
            value: value.to_owned(),
            ch,
        });
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(TokenError::EdgeHyphen {
            kind,
            value: value.to_owned(),
        });
    }
    Ok(())
}

macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, TokenError> {
                let value = value.into();
                validate_token($kind, &value)?;
                Ok(Self(value))
            }

            /// The token as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = TokenError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        crate::schema::string_schema!(
            $name,
            concat!("A ", $kind, ": 1 to 63 lower-case letters, digits and '-', not starting or ending with '-'."),
            Some(crate::schema::TOKEN_PATTERN),
            None,
            "lab-1"
        );

        // Deserializing validates, so a token read from a message or a config
        // file is as trustworthy as one built with `new`.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

token_type!(
    /// A site (datacenter) name: `lab`, `osl1`. Becomes the second NATS subject
    /// token, the JetStream domain and the site DNS zone `<site>.<domain>`.
    SiteName,
    "site name"
);
token_type!(
    /// A service name inside a site: `dhcp`, `dns`, `maskin`, `task`. Becomes
    /// the third NATS subject token.
    ServiceName,
    "service name"
);
token_type!(
    /// A tenant: the organisation a request is made for. Carried in the
    /// message envelope and the `Dv-Tenant` header.
    TenantName,
    "tenant name"
);
token_type!(
    /// A project inside a tenant. Carried in the message envelope and the
    /// `Dv-Project` header.
    ProjectName,
    "project name"
);
token_type!(
    /// An environment inside a project: `prod`, `staging`, `dev-alice`.
    EnvironmentName,
    "environment name"
);
token_type!(
    /// A network's short name inside its site: `prov`, `oob`, `tenant-20`.
    NetworkName,
    "network name"
);
token_type!(
    /// A switch's name inside its site, as inventory topology knows it
    /// (`leaf-r01-a`).
    SwitchName,
    "switch name"
);
token_type!(
    /// A port profile's name (`server-access`, `hypervisor-trunk`).
    PortProfileName,
    "port profile name"
);
token_type!(
    /// A link aggregation group's name on its switch (`po10`, `bond-r01u12`).
    LagName,
    "lag name"
);
token_type!(
    /// The name of a credential in the site's secret store (`bmc-default`).
    /// Protocol types carry this reference, never the secret itself.
    CredentialRef,
    "credential reference"
);

/// The site token of hub-level subjects and messages (`dv.hub.<service>...`).
/// No real site may use it; see [`crate::Site::new`].
pub const HUB: &str = "hub";

impl SiteName {
    /// The hub's pseudo-site name, [`HUB`].
    pub fn hub() -> Self {
        Self(HUB.to_owned())
    }

    /// True for the hub's pseudo-site name.
    pub fn is_hub(&self) -> bool {
        self.0 == HUB
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in ["lab", "osl-1", "a", "x0", &"a".repeat(63)] {
            assert!(validate_token("site name", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_would_break_a_subject_or_label() {
        for bad in [
            "",
            "Lab",
            "a.b",
            "a*",
            "a>",
            "a b",
            "-a",
            "a-",
            "å",
            &"a".repeat(64),
        ] {
            assert!(SiteName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hub_is_a_valid_site_token() {
        assert_eq!(SiteName::new(HUB).unwrap(), SiteName::hub());
        assert!(SiteName::hub().is_hub());
        assert!(!SiteName::new("lab").unwrap().is_hub());
    }

    #[test]
    fn deserializing_validates() {
        let err = serde_json::from_str::<SiteName>("\"Bad.Site\"").unwrap_err();
        assert!(err.to_string().contains("only lower-case"), "{err}");
    }
}
