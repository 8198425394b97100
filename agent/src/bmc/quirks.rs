//! Redfish vendor quirks as data: a small table of profiles
//! (`quirks/profiles.toml`, embedded at build time), matched on what the
//! BMC reports about itself (ComputerSystem `Manufacturer` and `Model`,
//! Manager `FirmwareVersion`), each setting a few behaviour knobs the
//! Redfish driver honours.
//!
//! Only what a BMC does not advertise belongs here. What it does advertise
//! (`ResetType@Redfish.AllowableValues`,
//! `BootSourceOverrideTarget@Redfish.AllowableValues`) the driver reads
//! from the BMC itself. Every profile in the file names a public report of
//! the behaviour it works around. A BMC no profile matches gets
//! [`Profile::generic`] (every knob off).

use std::cmp::Ordering;
use std::sync::OnceLock;

use serde::Deserialize;

/// The profiles file, as shipped.
const PROFILES: &str = include_str!("quirks/profiles.toml");

/// Why a profiles file is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuirksError {
    /// Not valid TOML for the profile table.
    #[error("the BMC quirk profiles do not parse")]
    Parse(#[from] toml::de::Error),
    /// A profile is not usable as written.
    #[error("BMC quirk profile {name:?}: {detail}")]
    Invalid {
        /// The profile.
        name: String,
        /// What is wrong.
        detail: String,
    },
}

/// Behaviour knobs for one kind of BMC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name (`generic` for the default).
    pub name: String,
    /// Matches `Manufacturer` by case-insensitive prefix.
    pub manufacturer: String,
    /// Matches `Model` by case-insensitive substring; any model if absent.
    #[serde(default)]
    pub model: Option<String>,
    /// Matches a Manager `FirmwareVersion` at or above this.
    #[serde(default)]
    pub firmware_min: Option<String>,
    /// Matches a Manager `FirmwareVersion` below this.
    #[serde(default)]
    pub firmware_below: Option<String>,
    /// Send `BootSourceOverrideMode` (the BMC's current value, else
    /// `UEFI`) with the boot override target.
    #[serde(default)]
    pub boot_mode_with_target: bool,
    /// Send `If-Match` with the resource's ETag on PATCH.
    #[serde(default)]
    pub patch_if_match: bool,
    /// Where the behaviour is documented.
    pub source: String,
}

impl Profile {
    /// The profile of a BMC no entry matches: standard Redfish, no knobs.
    pub fn generic() -> Profile {
        Profile {
            name: "generic".into(),
            ..Profile::default()
        }
    }

    fn matches(&self, manufacturer: &str, model: &str, firmware: Option<&str>) -> bool {
        let lower = |s: &str| s.trim().to_ascii_lowercase();
        if self.manufacturer.is_empty()
            || !lower(manufacturer).starts_with(&lower(&self.manufacturer))
        {
            return false;
        }
        if let Some(m) = &self.model
            && !lower(model).contains(&lower(m))
        {
            return false;
        }
        if self.firmware_min.is_none() && self.firmware_below.is_none() {
            return true;
        }
        // A range is asked for: a BMC that does not say its firmware is
        // not known to be in it.
        let Some(fw) = firmware else {
            return false;
        };
        if let Some(min) = &self.firmware_min
            && compare_versions(fw, min) == Ordering::Less
        {
            return false;
        }
        if let Some(below) = &self.firmware_below
            && compare_versions(fw, below) != Ordering::Less
        {
            return false;
        }
        true
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    profile: Vec<Profile>,
}

/// Parses and checks a profiles file.
pub fn parse(text: &str) -> Result<Vec<Profile>, QuirksError> {
    let file: File = toml::from_str(text)?;
    for p in &file.profile {
        let invalid = |detail: &str| QuirksError::Invalid {
            name: p.name.clone(),
            detail: detail.to_owned(),
        };
        if p.name.is_empty() || p.name == "generic" {
            return Err(invalid("needs a name other than \"generic\""));
        }
        if p.manufacturer.trim().is_empty() {
            return Err(invalid("needs a manufacturer"));
        }
        if p.source.trim().is_empty() {
            return Err(invalid(
                "needs a source (where the behaviour is documented)",
            ));
        }
    }
    Ok(file.profile)
}

/// The shipped profiles. The file is checked by a unit test, so a broken
/// one cannot ship; should it fail anyway, every BMC gets the generic
/// profile and the failure is logged.
pub fn profiles() -> &'static [Profile] {
    static LOADED: OnceLock<Vec<Profile>> = OnceLock::new();
    LOADED.get_or_init(|| match parse(PROFILES) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "BMC quirk profiles unusable; using the generic profile for every BMC");
            Vec::new()
        }
    })
}

/// The profile for a BMC reporting `manufacturer`, `model` and manager
/// `firmware`: the first in `table` that matches, else the generic one.
pub fn select_from(
    table: &[Profile],
    manufacturer: Option<&str>,
    model: Option<&str>,
    firmware: Option<&str>,
) -> Profile {
    let (mf, md) = (manufacturer.unwrap_or(""), model.unwrap_or(""));
    table
        .iter()
        .find(|p| p.matches(mf, md, firmware))
        .cloned()
        .unwrap_or_else(Profile::generic)
}

/// [`select_from`] the shipped profiles.
pub fn select(manufacturer: Option<&str>, model: Option<&str>, firmware: Option<&str>) -> Profile {
    select_from(profiles(), manufacturer, model, firmware)
}

/// Orders firmware versions as vendors write them (`1.20.0`, `7.00.00.00`,
/// `2.86`, `01.04.15`, `v1.2`): split at anything not alphanumeric, numeric
/// parts compared as numbers, other parts as text, missing parts as zero.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> Vec<&str> {
        s.trim()
            .trim_start_matches(['v', 'V'])
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|p| !p.is_empty())
            .collect()
    }
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let (x, y) = (
            pa.get(i).copied().unwrap_or("0"),
            pb.get(i).copied().unwrap_or("0"),
        );
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(n), Ok(m)) => n.cmp(&m),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_shipped_profiles_parse_and_name_their_sources() {
        let table = parse(PROFILES).unwrap();
        assert!(table.len() >= 3);
        assert!(table.iter().all(|p| p.source.starts_with("https://")));
        assert_eq!(profiles().len(), table.len());
    }

    #[test]
    fn versions_compare_as_vendors_write_them() {
        assert_eq!(compare_versions("1.20.0", "1.3"), Ordering::Greater);
        assert_eq!(compare_versions("7.00.00.00", "7"), Ordering::Equal);
        assert_eq!(compare_versions("01.04.15", "1.4.15"), Ordering::Equal);
        assert_eq!(compare_versions("v2.86", "2.9"), Ordering::Greater);
        assert_eq!(compare_versions("4.40.00.00", "4.40.10.00"), Ordering::Less);
    }

    #[test]
    fn the_first_matching_profile_wins_and_ranges_need_a_firmware() {
        let table = parse(
            r#"
            [[profile]]
            name = "acme-old"
            manufacturer = "ACME"
            firmware_below = "2.0"
            patch_if_match = true
            source = "https://example.invalid/a"

            [[profile]]
            name = "acme-x1"
            manufacturer = "ACME"
            model = "x1"
            boot_mode_with_target = true
            source = "https://example.invalid/b"
            "#,
        )
        .unwrap();
        let pick = |mf, md, fw| select_from(&table, mf, md, fw).name;
        assert_eq!(
            pick(Some("acme corp"), Some("X1 Pro"), Some("1.9.3")),
            "acme-old"
        );
        assert_eq!(pick(Some("ACME"), Some("X1 Pro"), Some("2.0")), "acme-x1");
        // No firmware reported: the ranged profile does not apply.
        assert_eq!(pick(Some("ACME"), Some("X1"), None), "acme-x1");
        assert_eq!(pick(Some("ACME"), Some("Z9"), Some("3")), "generic");
        assert_eq!(pick(None, None, None), "generic");
    }

    #[test]
    fn profiles_without_a_source_are_refused() {
        let err =
            parse("[[profile]]\nname = \"x\"\nmanufacturer = \"X\"\nsource = \"\"\n").unwrap_err();
        assert!(err.to_string().contains("source"), "{err}");
        assert!(
            parse("[[profile]]\nname = \"x\"\nmanufacturer = \"X\"\nsource = \"s\"\nbogus = 1\n")
                .is_err()
        );
    }
}
