//! `dvos`: object storage buckets (also `dv os`). The offering has no backend
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
  dvos bucket list --tenant acme --project web
  dvos bucket create demo --env prod
  dv offerings                      (is the offering ready for the project, and what is missing)
  dv os bucket list                  (the same as dvos bucket list)";

/// `dvos`.
#[derive(Debug, Parser)]
#[command(name = "dvos", version, about = "Buckets (S3-compatible object storage): the offering is checked with the hub; no backend yet", after_help = EXAMPLES)]
pub struct DvOs {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(flatten)]
    pub(crate) scope: Scope,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `dv os` (the global options are `dv`'s).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct OsArgs {
    #[command(flatten)]
    pub(crate) scope: Scope,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Object storage buckets: list and create.
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  dvos bucket list\n  dvos bucket create demo --env prod")]
    Bucket(Bucket),
}

#[derive(Debug, Subcommand)]
pub(crate) enum Bucket {
    /// The project's buckets.
    #[command(after_help = "Example:\n  dvos bucket list --tenant acme --project web")]
    List,
    /// Create a bucket in an environment of the project.
    #[command(after_help = "Example:\n  dvos bucket create demo --env prod")]
    Create {
        /// Its name.
        name: String,
        /// The environment (dv env list).
        #[arg(long)]
        env: Option<String>,
    },
}

/// Runs a `dvos` command.
pub fn run(args: OsArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, _format| {
        let what = match &args.command {
            Command::Bucket(Bucket::List) => "list buckets".to_owned(),
            Command::Bucket(Bucket::Create { name, env }) => match env {
                Some(env) => format!("create a bucket ({name}) in environment {env}"),
                None => format!("create a bucket ({name})"),
            },
        };
        crate::offerings::require(target, &args.scope, "dvos", "buckets", &what).await
    })
}
