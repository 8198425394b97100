//! `dv tenant`, `dv project`, `dv env`: the hub's tenancy tree. Projects
//! belong to a tenant and environments to a project; which ones, when not
//! named, comes from [`crate::scope`] (flags, environment, the context's
//! defaults).
//!
//! Deleting is a deliberate blind write (`If-Match: *`): the command line
//! names the record, there is no earlier read to be stale against. Changes
//! that merge into a record (`dv quota set`) send the ETag they read.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use comfy_table::Table;
use serde_json::Value;

use dv_protocol::{Environment, EnvironmentKind, EnvironmentName, Project, SiteName, Tenant};
use dv_sdk::IfMatch;

use crate::output::{self, Format};
use crate::scope::Scope;
use crate::target::{Failure, Global, Target, run_with};

fn bad(what: &str, text: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Config(format!("{text:?} is not {what}: {e}"))
}

// ------------------------------------------------------------------ tenant

const TENANT_EXAMPLES: &str = "\
Examples:
  dv tenant list
  dv tenant create acme --display-name 'Acme AS'
  dv tenant show acme -o json
  dv tenant delete acme          (it must have no projects)";

/// `dv tenant` (hub).
#[derive(Debug, Args)]
#[command(after_help = TENANT_EXAMPLES)]
pub struct TenantArgs {
    #[command(subcommand)]
    command: TenantCommand,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Every tenant, by name.
    #[command(after_help = "Example:\n  dv tenant list -o json")]
    List,
    /// One tenant.
    #[command(after_help = "Example:\n  dv tenant show acme")]
    Show {
        /// Its name.
        name: String,
    },
    /// Create a tenant.
    #[command(after_help = "Example:\n  dv tenant create acme --display-name 'Acme AS'")]
    Create {
        /// Its name (lower-case letters, digits, dashes; fixed once created).
        name: String,
        /// A human-readable name.
        #[arg(long, default_value = "")]
        display_name: String,
        /// Free text for operators.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete a tenant (it must have no projects).
    #[command(after_help = "Example:\n  dv tenant delete acme")]
    Delete {
        /// Its name.
        name: String,
    },
}

/// Runs `dv tenant`.
pub fn run_tenant(args: TenantArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, format| {
        tenant(target, args.command, format).await
    })
}

async fn tenant(target: &Target, cmd: TenantCommand, format: Format) -> Result<ExitCode, Failure> {
    target.needs_hub("dv tenant")?;
    let client = &target.client;
    match cmd {
        TenantCommand::List => {
            let tenants = client.tenant_list().await?;
            output::print_typed(&tenants, format, |v| {
                table(v, &["NAME", "DISPLAY NAME", "DESCRIPTION"], |t| {
                    vec![
                        output::cell(&t["name"]),
                        output::cell(&t["display_name"]),
                        output::cell(&t["description"]),
                    ]
                })
            });
        }
        TenantCommand::Show { name } => {
            let t = client.tenant_get(&name).await?;
            output::print_typed(&t.value, format, output::fields);
        }
        TenantCommand::Create {
            name,
            display_name,
            description,
        } => {
            let tenant = Tenant {
                name: name.parse().map_err(|e| bad("a tenant name", &name, e))?,
                display_name,
                description,
            };
            let created = client.tenant_create(&tenant).await?;
            eprintln!("tenant {name} created");
            output::print_typed(&created.value, format, output::fields);
        }
        TenantCommand::Delete { name } => {
            client.tenant_delete(&name, &IfMatch::Any).await?;
            eprintln!("tenant {name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ----------------------------------------------------------------- project

const PROJECT_EXAMPLES: &str = "\
Examples:
  dv project list --tenant acme
  dv project create web --tenant acme --allowed-site osl-1
  dv context set --tenant acme --project web     (defaults for what follows)
  dv project show                                (the default project)
  dv project delete web          (it must have no environments; its quota goes with it)";

/// `dv project` (hub).
#[derive(Debug, Args)]
#[command(after_help = PROJECT_EXAMPLES)]
pub struct ProjectArgs {
    #[command(flatten)]
    scope: Scope,
    #[command(subcommand)]
    command: ProjectCommand,
}

#[derive(Debug, Subcommand)]
enum ProjectCommand {
    /// The tenant's projects.
    #[command(after_help = "Example:\n  dv project list --tenant acme -o json")]
    List,
    /// One project (default: the context's project).
    #[command(after_help = "Examples:\n  dv project show web\n  dv project show")]
    Show {
        /// Its name.
        name: Option<String>,
    },
    /// Create a project in the tenant (its quota is zero until set).
    #[command(
        after_help = "Examples:\n  dv project create web --tenant acme\n  dv project create db --display-name 'Databases' --allowed-site osl-1 --allowed-site osl-2"
    )]
    Create {
        /// Its name (fixed once created).
        name: String,
        /// A human-readable name.
        #[arg(long, default_value = "")]
        display_name: String,
        /// Free text for operators.
        #[arg(long, default_value = "")]
        description: String,
        /// A site its workloads and data may be placed at (repeat; none:
        /// any site).
        #[arg(long = "allowed-site", value_name = "SITE")]
        allowed_sites: Vec<String>,
    },
    /// Delete a project and its quota (it must have no environments).
    #[command(after_help = "Example:\n  dv project delete web --tenant acme")]
    Delete {
        /// Its name.
        name: String,
    },
}

/// Runs `dv project`.
pub fn run_project(args: ProjectArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, format| {
        project(target, &args.scope, args.command, format).await
    })
}

async fn project(
    target: &Target,
    scope: &Scope,
    cmd: ProjectCommand,
    format: Format,
) -> Result<ExitCode, Failure> {
    target.needs_hub("dv project")?;
    let client = &target.client;
    match cmd {
        ProjectCommand::List => {
            let tenant = scope.tenant(target)?;
            let projects = client.project_list(&tenant).await?;
            output::print_typed(&projects, format, |v| {
                table(
                    v,
                    &["NAME", "DISPLAY NAME", "ALLOWED SITES", "DESCRIPTION"],
                    |p| {
                        vec![
                            output::cell(&p["name"]),
                            output::cell(&p["display_name"]),
                            match output::cell(&p["allowed_sites"]) {
                                s if s.is_empty() => "(any)".to_owned(),
                                s => s,
                            },
                            output::cell(&p["description"]),
                        ]
                    },
                )
            });
        }
        ProjectCommand::Show { name } => {
            let (tenant, project) = scope.project_named(target, name.as_deref())?;
            let p = client.project_get(&tenant, &project).await?;
            output::print_typed(&p.value, format, output::fields);
        }
        ProjectCommand::Create {
            name,
            display_name,
            description,
            allowed_sites,
        } => {
            let (tenant, project) = scope.project_named(target, Some(&name))?;
            let allowed_sites = allowed_sites
                .iter()
                .map(|s| SiteName::new(s).map_err(|e| bad("a site name", s, e)))
                .collect::<Result<Vec<_>, _>>()?;
            let record = Project {
                name: project,
                display_name,
                description,
                allowed_sites,
            };
            let created = client.project_create(&tenant, &record).await?;
            eprintln!("project {tenant}/{name} created (its quota is zero: dv quota set)");
            output::print_typed(&created.value, format, output::fields);
        }
        ProjectCommand::Delete { name } => {
            let (tenant, project) = scope.project_named(target, Some(&name))?;
            client
                .project_delete(&tenant, &project, &IfMatch::Any)
                .await?;
            eprintln!("project {tenant}/{name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------- environment

const ENV_EXAMPLES: &str = "\
Examples:
  dv env list --tenant acme --project web
  dv env create prod --kind production
  dv env show prod -o yaml
  dv env delete staging";

/// `dv env` (hub).
#[derive(Debug, Args)]
#[command(after_help = ENV_EXAMPLES)]
pub struct EnvArgs {
    #[command(flatten)]
    scope: Scope,
    #[command(subcommand)]
    command: EnvCommand,
}

/// What an environment is for.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Development,
    Staging,
    Production,
}

#[derive(Debug, Subcommand)]
enum EnvCommand {
    /// The project's environments.
    #[command(after_help = "Example:\n  dv env list --project web")]
    List,
    /// One environment.
    #[command(after_help = "Example:\n  dv env show prod")]
    Show {
        /// Its name.
        name: String,
    },
    /// Create an environment in the project.
    #[command(after_help = "Example:\n  dv env create prod --kind production")]
    Create {
        /// Its name (fixed once created).
        name: String,
        /// What it is for.
        #[arg(long, value_enum, default_value = "development")]
        kind: Kind,
        /// Free text for operators.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete an environment.
    #[command(after_help = "Example:\n  dv env delete staging")]
    Delete {
        /// Its name.
        name: String,
    },
}

/// Runs `dv env`.
pub fn run_env(args: EnvArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, format| {
        env(target, &args.scope, args.command, format).await
    })
}

fn env_name(text: &str) -> Result<EnvironmentName, Failure> {
    text.parse()
        .map_err(|e| bad("an environment name", text, e))
}

async fn env(
    target: &Target,
    scope: &Scope,
    cmd: EnvCommand,
    format: Format,
) -> Result<ExitCode, Failure> {
    target.needs_hub("dv env")?;
    let client = &target.client;
    let (tenant, project) = scope.project(target)?;
    match cmd {
        EnvCommand::List => {
            let envs = client.environment_list(&tenant, &project).await?;
            output::print_typed(&envs, format, |v| {
                table(v, &["NAME", "KIND", "DESCRIPTION"], |e| {
                    vec![
                        output::cell(&e["name"]),
                        output::cell(&e["kind"]),
                        output::cell(&e["description"]),
                    ]
                })
            });
        }
        EnvCommand::Show { name } => {
            let e = client
                .environment_get(&tenant, &project, &env_name(&name)?)
                .await?;
            output::print_typed(&e.value, format, output::fields);
        }
        EnvCommand::Create {
            name,
            kind,
            description,
        } => {
            let record = Environment {
                name: env_name(&name)?,
                kind: match kind {
                    Kind::Development => EnvironmentKind::Development,
                    Kind::Staging => EnvironmentKind::Staging,
                    Kind::Production => EnvironmentKind::Production,
                },
                description,
            };
            let created = client
                .environment_create(&tenant, &project, &record)
                .await?;
            eprintln!("environment {tenant}/{project}/{name} created");
            output::print_typed(&created.value, format, output::fields);
        }
        EnvCommand::Delete { name } => {
            client
                .environment_delete(&tenant, &project, &env_name(&name)?, &IfMatch::Any)
                .await?;
            eprintln!("environment {tenant}/{project}/{name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A table of `v`'s items, one row each.
pub fn table(v: &Value, header: &[&str], row: impl Fn(&Value) -> Vec<String>) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    for item in v.as_array().into_iter().flatten() {
        t.add_row(row(item));
    }
    t
}
