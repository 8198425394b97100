//! `dv-cli`: the `dv` command-line family.
//!
//! One multi-call binary installed under seven names: `dv` (projects,
//! environments, quotas, tasks), `dvid` (login, tokens), `dvce` (machines,
//! BMCs, inventory), `dvke` (clusters), `dvapp` (apps), `dvos` (buckets) and
//! `dvnet` (networks, VLANs, addresses, DNS); each family is also a `dv`
//! subcommand (`dv ce machine list` is `dvce machine list`).
//!
//! Built so far: `dvce machine` and `dvce inventory`, `dvid` (login,
//! whoami, service tokens, roles), `dv task`, `dv context`. A command talks to a hub (every site) or to one site's agent,
//! as a context, `--agent` or `DV_AGENT` says ([`target`]); every call goes
//! through the SDK (`dv-sdk`), whose types are the servers' own.
//!
//! Exit codes (docs/cli.md): 0 done; 1 the API refused or failed (its
//! message is printed); 2 the command line or the local configuration
//! (contexts, token file) is wrong; 3 the API cannot be reached; 4 a
//! followed task failed; 5 a followed task is blocked on a dependency; 6
//! the API refused the token (401/403).

mod ce;
mod context;
mod credentials;
mod id;
mod output;
mod target;
mod task;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code: the API refused or failed.
pub const EXIT_API: u8 = 1;
/// Exit code: the command line is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the agent (or hub) cannot be reached.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: a followed task failed.
pub const EXIT_TASK_FAILED: u8 = 4;
/// Exit code: a followed task is blocked on a dependency.
pub const EXIT_TASK_BLOCKED: u8 = 5;
/// Exit code: the API refused the token (missing, wrong, not allowed).
pub const EXIT_AUTH: u8 = 6;

const EXAMPLES: &str = "\
Examples:
  dv context add prod --url https://hub.example:7443 --token-file ~/.dv/hub-token
  dv context use prod
  dv ce machine list               (dvce machine list)
  dvce machine provision SN-0001 --wait
  dv task list --state blocked -o json

Exit codes: 0 done, 1 the API refused, 2 usage or configuration, 3 unreachable,
4 task failed, 5 task blocked, 6 token refused (docs/cli.md).";

/// `dv`.
#[derive(Debug, Parser)]
#[command(
    name = "dv",
    version,
    about = "Dataverket: the datacenter platform's command line",
    after_help = EXAMPLES
)]
struct Dv {
    #[command(flatten)]
    global: target::Global,
    #[command(subcommand)]
    family: Family,
}

#[derive(Debug, Subcommand)]
enum Family {
    /// Compute: machines, BMCs, inventory (also installed as `dvce`).
    Ce(ce::CeArgs),
    /// Identity: log in, who am I, service tokens, roles (also installed
    /// as `dvid`).
    Id(id::IdArgs),
    /// Durable tasks: list, show, follow live.
    Task(task::TaskArgs),
    /// Where commands go: hubs and agents, with their tokens.
    Context(context::ContextArgs),
}

/// Runs the command line `args` (program name first) and returns the exit
/// code.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let program = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("dv")
        .to_owned();
    let parsed = match program.as_str() {
        "dvce" => ce::Dvce::try_parse_from(&args)
            .map(|d| (d.global, Family::Ce(ce::CeArgs { command: d.command }))),
        "dvid" => id::Dvid::try_parse_from(&args)
            .map(|d| (d.global, Family::Id(id::IdArgs { command: d.command }))),
        _ => Dv::try_parse_from(&args).map(|dv| (dv.global, dv.family)),
    };
    let (global, family) = match parsed {
        Ok(f) => f,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match family {
        Family::Ce(args) => ce::run(args.command, &global),
        Family::Id(args) => id::run(args.command, &global),
        Family::Task(args) => task::run(args, &global),
        Family::Context(args) => context::run(args, &global),
    }
}
