//! `dvapp`: apps and web hosting (also `dv app`). The offering has no backend
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
  dvapp app list --tenant acme --project web
  dvapp app create demo --env prod
  dv offerings                      (is the offering ready for the project, and what is missing)
  dv app app list                  (the same as dvapp app list)";

/// `dvapp`.
#[derive(Debug, Parser)]
#[command(name = "dvapp", version, about = "Apps and web hosting: the offering is checked with the hub; no backend yet", after_help = EXAMPLES)]
pub struct DvApp {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(flatten)]
    pub(crate) scope: Scope,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `dv app` (the global options are `dv`'s).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct AppArgs {
    #[command(flatten)]
    pub(crate) scope: Scope,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Apps and web hosting: list and create.
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  dvapp app list\n  dvapp app create demo --env prod")]
    App(App),
}

#[derive(Debug, Subcommand)]
pub(crate) enum App {
    /// The project's apps.
    #[command(after_help = "Example:\n  dvapp app list --tenant acme --project web")]
    List,
    /// Create an app in an environment of the project.
    #[command(after_help = "Example:\n  dvapp app create demo --env prod")]
    Create {
        /// Its name.
        name: String,
        /// The environment (dv env list).
        #[arg(long)]
        env: Option<String>,
    },
}

/// Runs a `dvapp` command.
pub fn run(args: AppArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, _format| {
        let what = match &args.command {
            Command::App(App::List) => "list apps".to_owned(),
            Command::App(App::Create { name, env }) => match env {
                Some(env) => format!("create an app ({name}) in environment {env}"),
                None => format!("create an app ({name})"),
            },
        };
        crate::offerings::require(target, &args.scope, "dvapp", "apps", &what).await
    })
}
