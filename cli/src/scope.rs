//! Which tenant and project a command is about: `--tenant`/`--project`,
//! else `DV_TENANT`/`DV_PROJECT`, else the context's defaults (`dv context
//! set --tenant acme --project web`). A missing one is a usage error whose
//! hint names all three ways.

use clap::Args;

use dv_protocol::{ProjectName, TenantName};

use crate::target::{Failure, Target};

/// `--tenant` and `--project`.
#[derive(Debug, Clone, Args)]
pub struct Scope {
    /// The tenant (default: $DV_TENANT, else the context's tenant).
    #[arg(long, global = true, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// The project (default: $DV_PROJECT, else the context's project).
    #[arg(long, global = true, value_name = "PROJECT")]
    pub project: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Scope {
    /// The tenant.
    pub fn tenant(&self, target: &Target) -> Result<TenantName, Failure> {
        let text = self
            .tenant
            .clone()
            .or_else(|| env("DV_TENANT"))
            .or_else(|| target.context.as_ref().and_then(|c| c.tenant.clone()))
            .ok_or_else(|| missing("tenant", target))?;
        text.parse()
            .map_err(|e| Failure::Config(format!("{text:?} is not a tenant name: {e}")))
    }

    /// The tenant and the project.
    pub fn project(&self, target: &Target) -> Result<(TenantName, ProjectName), Failure> {
        let tenant = self.tenant(target)?;
        let text = self
            .project
            .clone()
            .or_else(|| env("DV_PROJECT"))
            .or_else(|| target.context.as_ref().and_then(|c| c.project.clone()))
            .ok_or_else(|| missing("project", target))?;
        let project = text
            .parse()
            .map_err(|e| Failure::Config(format!("{text:?} is not a project name: {e}")))?;
        Ok((tenant, project))
    }

    /// The tenant, and `name` as a project name if given, else the default
    /// project.
    pub fn project_named(
        &self,
        target: &Target,
        name: Option<&str>,
    ) -> Result<(TenantName, ProjectName), Failure> {
        match name {
            Some(n) => Ok((
                self.tenant(target)?,
                n.parse()
                    .map_err(|e| Failure::Config(format!("{n:?} is not a project name: {e}")))?,
            )),
            None => self.project(target),
        }
    }
}

fn missing(what: &str, target: &Target) -> Failure {
    let set = match &target.context {
        Some(c) => format!("dv context set {} --{what} NAME", c.name),
        None => format!("dv context set CONTEXT --{what} NAME"),
    };
    Failure::Config(format!(
        "which {what}? none was named\nhint: pass --{what} NAME, export DV_{}=NAME, or make it the context's default: {set}",
        what.to_ascii_uppercase()
    ))
}
