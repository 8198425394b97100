//! Tenancy: who resources belong to. A [`Tenant`] (an organisation) holds
//! [`Project`]s; a project holds [`Environment`]s and has one [`Quota`].
//! The hub owns these records; the API, the `dv` CLI and a future SDK
//! exchange them in exactly this JSON shape.
//!
//! A record carries its own name but not its parents': those are in the
//! path it is addressed by (`/v1/tenants/{tenant}/projects/{project}`), so
//! a record can never disagree with where it is stored.
//!
//! Optional fields default when absent, so a client may send only
//! `{"name": "acme"}`. [`validate`](Tenant::validate) checks what the types
//! cannot (lengths, duplicates); names are validated by their token types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::token::{EnvironmentName, ProjectName, SiteName, TenantName};

/// The longest `display_name` accepted, in characters.
pub const MAX_DISPLAY_NAME: usize = 200;
/// The longest `description` accepted, in characters.
pub const MAX_DESCRIPTION: usize = 2000;

/// Why a tenancy record was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenancyError {
    /// A text field is longer than allowed.
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A text field holds a control character (a newline in a display name).
    #[error("{field} contains a control character")]
    Control {
        /// The field.
        field: &'static str,
    },
    /// A list names the same thing twice.
    #[error("{field} lists {value:?} twice")]
    Duplicate {
        /// The field.
        field: &'static str,
        /// The repeated value.
        value: String,
    },
}

fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    newlines: bool,
) -> Result<(), TenancyError> {
    let len = value.chars().count();
    if len > max {
        return Err(TenancyError::TooLong { field, len, max });
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(newlines && (c == '\n' || c == '\t')))
    {
        return Err(TenancyError::Control { field });
    }
    Ok(())
}

/// An organisation that owns projects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    /// The tenant's name; fixed once created (it is part of every key and
    /// message envelope that refers to the tenant).
    pub name: TenantName,
    /// A human-readable name (`Acme AS`).
    #[serde(default)]
    pub display_name: String,
    /// Free text for operators.
    #[serde(default)]
    pub description: String,
}

impl Tenant {
    /// Checks the text fields.
    pub fn validate(&self) -> Result<(), TenancyError> {
        check_text("display_name", &self.display_name, MAX_DISPLAY_NAME, false)?;
        check_text("description", &self.description, MAX_DESCRIPTION, true)
    }
}

/// A tenant's unit of ownership: workloads, networks and quota belong to a
/// project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    /// The project's name, unique within its tenant; fixed once created.
    pub name: ProjectName,
    /// A human-readable name.
    #[serde(default)]
    pub display_name: String,
    /// Free text for operators.
    #[serde(default)]
    pub description: String,
    /// Residency: the sites the project's workloads and data may be placed
    /// at. Empty: any site the hub federates.
    #[serde(default)]
    pub allowed_sites: Vec<SiteName>,
}

impl Project {
    /// Checks the text fields and that no site is listed twice.
    pub fn validate(&self) -> Result<(), TenancyError> {
        check_text("display_name", &self.display_name, MAX_DISPLAY_NAME, false)?;
        check_text("description", &self.description, MAX_DESCRIPTION, true)?;
        let mut seen = std::collections::BTreeSet::new();
        for site in &self.allowed_sites {
            if !seen.insert(site.as_str()) {
                return Err(TenancyError::Duplicate {
                    field: "allowed_sites",
                    value: site.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// What an environment is for; policy (approvals, placement spread) keys
/// off it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentKind {
    /// Work in progress; anything may be torn down.
    #[default]
    Development,
    /// A production rehearsal.
    Staging,
    /// Serves real users.
    Production,
}

/// A deployment target inside a project (`prod`, `staging`): products that
/// are environment-scoped (clusters, apps) are created in one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Environment {
    /// The environment's name, unique within its project; fixed once created.
    pub name: EnvironmentName,
    /// What it is for (default `development`).
    #[serde(default)]
    pub kind: EnvironmentKind,
    /// Free text for operators.
    #[serde(default)]
    pub description: String,
}

impl Environment {
    /// Checks the text fields.
    pub fn validate(&self) -> Result<(), TenancyError> {
        check_text("description", &self.description, MAX_DESCRIPTION, true)
    }
}

/// A project's limits: how much it may hold at once, over all sites. A
/// project starts with every limit at zero (nothing may be allocated) until
/// an operator grants capacity; an absent field is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
pub struct Quota {
    /// Bare-metal machines allocated to the project.
    #[serde(default)]
    pub machines: u32,
    /// Virtual CPUs over all its VMs.
    #[serde(default)]
    pub vcpus: u32,
    /// Memory over all its VMs, in GiB.
    #[serde(default)]
    pub memory_gib: u32,
    /// Block and object storage, in GiB.
    #[serde(default)]
    pub storage_gib: u64,
    /// Logical networks (VLAN-backed).
    #[serde(default)]
    pub networks: u32,
    /// Managed Kubernetes clusters.
    #[serde(default)]
    pub kubernetes_clusters: u32,
    /// Object storage buckets.
    #[serde(default)]
    pub buckets: u32,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_default() {
        let p: Project = serde_json::from_str(r#"{"name":"web"}"#).unwrap();
        assert_eq!(p.name.as_str(), "web");
        assert!(p.allowed_sites.is_empty() && p.description.is_empty());
        let e: Environment = serde_json::from_str(r#"{"name":"prod"}"#).unwrap();
        assert_eq!(e.kind, EnvironmentKind::Development);
        let q: Quota = serde_json::from_str(r#"{"machines":4}"#).unwrap();
        assert_eq!(
            q,
            Quota {
                machines: 4,
                ..Quota::default()
            }
        );
    }

    #[test]
    fn names_and_numbers_are_checked_while_parsing() {
        assert!(serde_json::from_str::<Tenant>(r#"{"name":"Acme"}"#).is_err());
        assert!(serde_json::from_str::<Quota>(r#"{"vcpus":-1}"#).is_err());
        let e: Environment =
            serde_json::from_str(r#"{"name":"prod","kind":"production"}"#).unwrap();
        assert_eq!(e.kind, EnvironmentKind::Production);
    }

    #[test]
    fn validation_names_the_field() {
        let mut t = Tenant {
            name: "acme".parse().unwrap(),
            display_name: "Acme\nAS".into(),
            description: String::new(),
        };
        assert_eq!(
            t.validate().unwrap_err().to_string(),
            "display_name contains a control character"
        );
        t.display_name = "x".repeat(MAX_DISPLAY_NAME + 1);
        assert!(
            t.validate()
                .unwrap_err()
                .to_string()
                .starts_with("display_name is 201")
        );
        let p: Project =
            serde_json::from_str(r#"{"name":"web","allowed_sites":["osl-1","osl-1"]}"#).unwrap();
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("allowed_sites")
        );
    }
}
