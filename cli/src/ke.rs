//! `dvke`: managed kubernetes clusters (also `dv ke`). The offering has no backend
//! yet: every command asks the hub for the project's offerings and says
//! which prerequisites are unmet and how to meet them (exit 1), or that
//! this dv cannot request it yet; nothing is ever pretended to succeed
//! ([`crate::offerings::require`]).

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::scope::Scope;
use crate::target::{Global, run_with};

const EXAMPLES: &str = "\
Examples:
  dvke cluster list --tenant acme --project web
  dvke cluster create demo --env prod
  dv offerings                      (is the offering ready for the project, and what is missing)
  dv ke cluster list                  (the same as dvke cluster list)";

/// `dvke`.
#[derive(Debug, Parser)]
#[command(name = "dvke", version, about = "Kubernetes clusters: the offering is checked with the hub; no backend yet", after_help = EXAMPLES)]
pub struct DvKe {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(flatten)]
    pub(crate) scope: Scope,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `dv ke` (the global options are `dv`'s).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct KeArgs {
    #[command(flatten)]
    pub(crate) scope: Scope,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Managed Kubernetes clusters: list and create.
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  dvke cluster list\n  dvke cluster create demo --env prod")]
    Cluster(Cluster),
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cluster {
    /// The project's clusters.
    #[command(after_help = "Example:\n  dvke cluster list --tenant acme --project web")]
    List,
    /// Create a Kubernetes cluster in an environment of the project.
    #[command(after_help = "Example:\n  dvke cluster create demo --env prod")]
    Create {
        /// Its name.
        name: String,
        /// The environment (dv env list).
        #[arg(long)]
        env: Option<String>,
    },
}

/// Runs a `dvke` command.
pub fn run(args: KeArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, _format| {
        let what = match &args.command {
            Command::Cluster(Cluster::List) => "list Kubernetes clusters".to_owned(),
            Command::Cluster(Cluster::Create { name, env }) => match env {
                Some(env) => format!("create a Kubernetes cluster ({name}) in environment {env}"),
                None => format!("create a Kubernetes cluster ({name})"),
            },
        };
        crate::offerings::require(target, &args.scope, "dvke", "Kubernetes clusters", &what).await
    })
}
