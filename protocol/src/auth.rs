//! Authorization: who may do what, decided the same way at the hub and at
//! every agent (ADR 0013).
//!
//! A caller is a [`Principal`]: a subject (`user:alice@example.com`,
//! `svc:ci-deploy`, `user:operator` for the break-glass token) and the
//! [`RoleBinding`]s granted to it. A binding gives one [`Role`] over one
//! [`Scope`]: the platform, a tenant, or a project of a tenant. A scope
//! contains the scopes under it, so a tenant-admin of `acme` administers
//! every project of `acme`.
//!
//! Every endpoint names the [`Action`] it performs and the scope of the
//! resource it touches; [`Principal::can`] is the whole decision:
//!
//! | role | read | write | manage | platform |
//! | --- | --- | --- | --- | --- |
//! | platform-operator | yes | yes | yes | yes |
//! | tenant-admin | yes | yes | yes | no |
//! | project-member | yes | yes | no | no |
//! | viewer | yes | no | no | no |
//!
//! - **read**: see the resource.
//! - **write**: create, change and delete a project's resources
//!   (environments, networks, machine requests, provisioning).
//! - **manage**: create and delete a tenant's projects, grant roles and
//!   mint service tokens inside the tenant.
//! - **platform**: tenants, quotas, sites, raw inventory, platform-wide
//!   grants. Only a platform-operator bound at the platform scope may.
//!
//! Visibility is upward as well as downward: a member of `acme/web` sees
//! the tenant record `acme` (to find its project), but not `acme/db`
//! ([`Principal::sees`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::token::{ProjectName, TenantName};

/// The ways authorization input can be malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not one of the four roles.
    #[error(
        "unknown role {0:?}: expected platform-operator, tenant-admin, project-member or viewer"
    )]
    UnknownRole(String),
    /// The role cannot be granted at that scope.
    #[error("{role} cannot be granted on {scope}: {why}")]
    RoleScope {
        /// The role.
        role: Role,
        /// The scope.
        scope: Scope,
        /// What would be allowed.
        why: &'static str,
    },
    /// A subject that is not `<kind>:<name>`.
    #[error("subject {0:?}: expected user:<name> or svc:<name>, visible ASCII, at most 128 bytes")]
    Subject(String),
}

/// A role: a fixed set of actions (see the module's table).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, everywhere; bound only at the platform scope.
    PlatformOperator,
    /// Everything inside one tenant except platform actions.
    TenantAdmin,
    /// Reads and writes inside one project.
    ProjectMember,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [
        Role::PlatformOperator,
        Role::TenantAdmin,
        Role::ProjectMember,
        Role::Viewer,
    ];

    /// Its name in bindings and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformOperator => "platform-operator",
            Role::TenantAdmin => "tenant-admin",
            Role::ProjectMember => "project-member",
            Role::Viewer => "viewer",
        }
    }

    /// Whether the role includes `action` (on a scope its binding covers).
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::PlatformOperator => true,
            Role::TenantAdmin => action != Action::Platform,
            Role::ProjectMember => matches!(action, Action::Read | Action::Write),
            Role::Viewer => action == Action::Read,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| AuthError::UnknownRole(s.to_owned()))
    }
}

/// What an endpoint does (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// See.
    Read,
    /// Change a project's resources.
    Write,
    /// Change a tenant's projects, grants and tokens.
    Manage,
    /// Platform-wide changes.
    Platform,
}

/// Where a binding applies, or where a resource lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// The whole platform: every tenant and every site.
    Platform,
    /// One tenant and all its projects.
    Tenant {
        /// The tenant.
        #[schema(value_type = String)]
        tenant: TenantName,
    },
    /// One project of one tenant.
    Project {
        /// The tenant.
        #[schema(value_type = String)]
        tenant: TenantName,
        /// The project.
        #[schema(value_type = String)]
        project: ProjectName,
    },
}

impl Scope {
    /// A tenant's scope.
    pub fn tenant(tenant: &TenantName) -> Self {
        Scope::Tenant {
            tenant: tenant.clone(),
        }
    }

    /// A project's scope.
    pub fn project(tenant: &TenantName, project: &ProjectName) -> Self {
        Scope::Project {
            tenant: tenant.clone(),
            project: project.clone(),
        }
    }

    /// The tenant the scope is in, if any.
    pub fn tenant_name(&self) -> Option<&TenantName> {
        match self {
            Scope::Platform => None,
            Scope::Tenant { tenant } | Scope::Project { tenant, .. } => Some(tenant),
        }
    }

    /// Whether `other` is this scope or lies under it.
    pub fn contains(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Platform, _) => true,
            (Scope::Tenant { tenant: a }, Scope::Tenant { tenant: b })
            | (Scope::Tenant { tenant: a }, Scope::Project { tenant: b, .. }) => a == b,
            (
                Scope::Project {
                    tenant: a,
                    project: p,
                },
                Scope::Project {
                    tenant: b,
                    project: q,
                },
            ) => a == b && p == q,
            _ => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Platform => f.write_str("the platform"),
            Scope::Tenant { tenant } => write!(f, "tenant {tenant}"),
            Scope::Project { tenant, project } => write!(f, "project {tenant}/{project}"),
        }
    }
}

/// One role over one scope, granted to one subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct RoleBinding {
    /// Who: `user:<name>` (an OIDC user) or `svc:<name>` (a service token).
    pub subject: String,
    /// What.
    pub role: Role,
    /// Where.
    pub scope: Scope,
}

impl RoleBinding {
    /// Checks the subject's form and that the role fits the scope:
    /// platform-operator only on the platform, tenant-admin on a tenant,
    /// project-member on a project; a viewer anywhere.
    pub fn validate(&self) -> Result<(), AuthError> {
        validate_subject(&self.subject)?;
        let why = match (self.role, &self.scope) {
            (Role::PlatformOperator, Scope::Platform)
            | (Role::TenantAdmin, Scope::Tenant { .. })
            | (Role::ProjectMember, Scope::Project { .. })
            | (Role::Viewer, _) => return Ok(()),
            (Role::PlatformOperator, _) => "it is granted on the platform only",
            (Role::TenantAdmin, _) => "it is granted on one tenant",
            (Role::ProjectMember, _) => "it is granted on one project",
        };
        Err(AuthError::RoleScope {
            role: self.role,
            scope: self.scope.clone(),
            why,
        })
    }
}

/// Checks a subject: `user:<name>` or `svc:<name>`, the name visible ASCII,
/// the whole at most 128 bytes (it becomes the audit actor).
pub fn validate_subject(subject: &str) -> Result<(), AuthError> {
    let ok = subject.len() <= 128
        && subject.split_once(':').is_some_and(|(kind, name)| {
            matches!(kind, "user" | "svc")
                && !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_graphic())
        });
    if ok {
        Ok(())
    } else {
        Err(AuthError::Subject(subject.to_owned()))
    }
}

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// An OIDC token from the configured issuer.
    Oidc,
    /// A service token minted by the hub.
    ServiceToken,
    /// The hub's or agent's bootstrap token file (break-glass).
    Bootstrap,
    /// No token: the server runs without authentication (lab only).
    Anonymous,
}

/// An authenticated caller and what it was granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Principal {
    /// Who (`user:alice@example.com`, `svc:ci`); the audit actor.
    pub subject: String,
    /// How it authenticated.
    pub credential: Credential,
    /// What it may do.
    pub bindings: Vec<RoleBinding>,
}

impl Principal {
    /// Whether the caller may perform `action` on a resource in `scope`.
    pub fn can(&self, action: Action, scope: &Scope) -> bool {
        self.bindings
            .iter()
            .any(|b| b.role.allows(action) && b.scope.contains(scope))
    }

    /// Whether the caller may see a resource in `scope` at all: it can read
    /// it, or holds a binding beneath it (a project member sees its
    /// tenant's record; nobody sees the platform that way).
    pub fn sees(&self, scope: &Scope) -> bool {
        self.can(Action::Read, scope)
            || (matches!(scope, Scope::Tenant { .. })
                && self.bindings.iter().any(|b| scope.contains(&b.scope)))
    }

    /// Whether the caller holds a platform-wide binding (reads every site).
    pub fn is_platform(&self) -> bool {
        self.bindings.iter().any(|b| b.scope == Scope::Platform)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn t(name: &str) -> TenantName {
        TenantName::new(name).unwrap()
    }
    fn p(name: &str) -> ProjectName {
        ProjectName::new(name).unwrap()
    }
    fn who(role: Role, scope: Scope) -> Principal {
        Principal {
            subject: "user:alice".into(),
            credential: Credential::Oidc,
            bindings: vec![RoleBinding {
                subject: "user:alice".into(),
                role,
                scope,
            }],
        }
    }

    #[test]
    fn the_table() {
        let web = Scope::project(&t("acme"), &p("web"));
        let acme = Scope::tenant(&t("acme"));
        let op = who(Role::PlatformOperator, Scope::Platform);
        assert!(Action::ALL_FOR_TEST.iter().all(|a| op.can(*a, &web)));
        let admin = who(Role::TenantAdmin, acme.clone());
        assert!(admin.can(Action::Manage, &web) && admin.can(Action::Manage, &acme));
        assert!(!admin.can(Action::Platform, &acme));
        let member = who(Role::ProjectMember, web.clone());
        assert!(member.can(Action::Write, &web));
        assert!(!member.can(Action::Manage, &web) && !member.can(Action::Read, &acme));
        let viewer = who(Role::Viewer, acme.clone());
        assert!(viewer.can(Action::Read, &web) && !viewer.can(Action::Write, &web));
    }

    #[test]
    fn no_role_crosses_tenants() {
        let other = Scope::project(&t("globex"), &p("web"));
        for role in [Role::TenantAdmin, Role::Viewer] {
            let c = who(role, Scope::tenant(&t("acme")));
            assert!(!c.sees(&other) && !c.sees(&Scope::tenant(&t("globex"))));
            assert!(!c.sees(&Scope::Platform));
        }
        let m = who(Role::ProjectMember, Scope::project(&t("acme"), &p("web")));
        assert!(m.sees(&Scope::tenant(&t("acme"))));
        assert!(!m.sees(&Scope::project(&t("acme"), &p("db"))));
        assert!(!m.sees(&other));
    }

    #[test]
    fn roles_fit_scopes() {
        let b = |role, scope| RoleBinding {
            subject: "svc:ci".into(),
            role,
            scope,
        };
        assert!(
            b(Role::PlatformOperator, Scope::Platform)
                .validate()
                .is_ok()
        );
        let err = b(Role::PlatformOperator, Scope::tenant(&t("acme")))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("platform only"), "{err}");
        assert!(
            b(Role::ProjectMember, Scope::tenant(&t("acme")))
                .validate()
                .is_err()
        );
        assert!(b(Role::Viewer, Scope::Platform).validate().is_ok());
        let mut bad = b(Role::Viewer, Scope::Platform);
        bad.subject = "alice".into();
        assert!(bad.validate().is_err());
        bad.subject = "group:x".into();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn wire_forms() {
        let b: RoleBinding = serde_json::from_str(
            r#"{"subject":"user:a","role":"tenant-admin","scope":{"kind":"tenant","tenant":"acme"}}"#,
        )
        .unwrap();
        assert_eq!(b.scope, Scope::tenant(&t("acme")));
        assert_eq!("viewer".parse::<Role>().unwrap(), Role::Viewer);
        assert!("admin".parse::<Role>().is_err());
        assert!(serde_json::from_str::<Scope>(r#"{"kind":"tenant","tenant":"Bad Name"}"#).is_err());
    }

    impl Action {
        const ALL_FOR_TEST: [Action; 4] = [
            Action::Read,
            Action::Write,
            Action::Manage,
            Action::Platform,
        ];
    }

    proptest::proptest! {
        /// A role never allows more than the role above it, and a binding
        /// never reaches a scope outside its own.
        #[test]
        fn monotone(role in 0usize..4, action in 0usize..4, same_tenant: bool, same_project: bool) {
            let role = Role::ALL[role];
            let action = Action::ALL_FOR_TEST[action];
            let bound = Scope::project(&t("acme"), &p("web"));
            let target = Scope::project(
                &t(if same_tenant { "acme" } else { "globex" }),
                &p(if same_project { "web" } else { "db" }),
            );
            let c = who(role, bound);
            let inside = same_tenant && same_project;
            proptest::prop_assert!(!c.can(action, &target) || inside);
            if role != Role::PlatformOperator {
                let above = Role::ALL[Role::ALL.iter().position(|r| *r == role).unwrap_or(0) - 1];
                proptest::prop_assert!(!role.allows(action) || above.allows(action));
            }
        }
    }
}
