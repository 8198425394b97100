//! Fully qualified DNS names: site domains, host and service record names,
//! BMC host names.
//!
//! A [`DnsName`] is stored in one canonical form so that two spellings of the
//! same name compare equal and a name read back from the wire is byte-for-byte
//! what was written: ASCII lower case, no trailing dot. Labels follow RFC 1035
//! (letters, digits, `-`, 1..=63 octets, no leading or trailing `-`), widened
//! by `_` because service labels (`_http._tcp`) and some vendors' host names
//! use it. The whole name is at most 253 octets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsNameError {
    /// The name is empty (or only a dot).
    #[error("DNS name is empty")]
    Empty,
    /// The name is longer than 253 octets.
    #[error("DNS name {name:?} is {len} octets long; at most 253 are allowed")]
    TooLong {
        /// The rejected name.
        name: String,
        /// Its length in octets.
        len: usize,
    },
    /// Two dots in a row, or a leading dot.
    #[error("DNS name {name:?} has an empty label")]
    EmptyLabel {
        /// The rejected name.
        name: String,
    },
    /// A label longer than 63 octets.
    #[error("DNS name {name:?} has a label of {len} octets; at most 63 are allowed")]
    LabelTooLong {
        /// The rejected name.
        name: String,
        /// The label's length in octets.
        len: usize,
    },
    /// A character outside `[a-z0-9_-]` (after lower-casing).
    #[error("DNS name {name:?} contains {ch:?}; only letters, digits, '-' and '_' are allowed")]
    BadChar {
        /// The rejected name.
        name: String,
        /// The first offending character.
        ch: char,
    },
    /// A label starts or ends with a hyphen.
    #[error("DNS name {name:?} has a label that starts or ends with '-'")]
    EdgeHyphen {
        /// The rejected name.
        name: String,
    },
}

/// A validated, canonical (lower-case, no trailing dot) DNS name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsName(String);

impl DnsName {
    /// Validates `name`, lower-casing it and dropping one trailing dot.
    pub fn new(name: impl AsRef<str>) -> Result<Self, DnsNameError> {
        let raw = name.as_ref();
        let name = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
        if name.is_empty() {
            return Err(DnsNameError::Empty);
        }
        if name.len() > 253 {
            let len = name.len();
            return Err(DnsNameError::TooLong { name, len });
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(DnsNameError::EmptyLabel { name });
            }
            if label.len() > 63 {
                let len = label.len();
                return Err(DnsNameError::LabelTooLong { name, len });
            }
            if let Some(ch) = label
                .chars()
                .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
            {
                return Err(DnsNameError::BadChar { name, ch });
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(DnsNameError::EdgeHyphen { name });
            }
        }
        Ok(Self(name))
    }

    /// The name as text, without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels, most specific first (`pxe`, `lab`, `example`, `net`).
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// True if `self` is `zone` or lies below it (`a.lab.net` is in `lab.net`).
    pub fn is_in(&self, zone: &DnsName) -> bool {
        self.0 == zone.0
            || (self.0.len() > zone.0.len()
                && self.0.ends_with(&zone.0)
                && self.0.as_bytes()[self.0.len() - zone.0.len() - 1] == b'.')
    }
}

impl FromStr for DnsName {
    type Err = DnsNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DnsName({:?})", self.0)
    }
}

impl AsRef<str> for DnsName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for DnsName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DnsName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_case_and_trailing_dot() {
        let a = DnsName::new("PXE.Lab.Example.NET.").unwrap();
        assert_eq!(a.as_str(), "pxe.lab.example.net");
        assert_eq!(a, "pxe.lab.example.net".parse().unwrap());
        assert_eq!(
            a.labels().collect::<Vec<_>>(),
            ["pxe", "lab", "example", "net"]
        );
    }

    #[test]
    fn accepts_service_labels_and_single_labels() {
        for ok in ["_http._tcp.lab.net", "localhost", "a-b.c0", &"a".repeat(63)] {
            assert!(DnsName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed() {
        let long_name = vec!["a".repeat(60); 5].join(".");
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            "a b.net",
            "-a.net",
            "a-.net",
            "a*.net",
            "æ.net",
            &"a".repeat(64),
            &long_name,
        ] {
            assert!(DnsName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn zone_membership() {
        let zone = DnsName::new("lab.net").unwrap();
        assert!(DnsName::new("pxe.lab.net").unwrap().is_in(&zone));
        assert!(DnsName::new("lab.net").unwrap().is_in(&zone));
        assert!(!DnsName::new("xlab.net").unwrap().is_in(&zone));
        assert!(!DnsName::new("net").unwrap().is_in(&zone));
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<DnsName>("\"a..b\"").is_err());
        let name: DnsName = serde_json::from_str("\"A.B.\"").unwrap();
        assert_eq!(name.as_str(), "a.b");
    }
}
