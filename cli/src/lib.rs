//! `dv-cli`: the `dv` command-line family.
//!
//! One multi-call binary installed under seven names: `dv` (projects,
//! environments, quotas, tasks), `dvid` (login, tokens), `dvce` (machines,
//! BMCs, inventory), `dvke` (clusters), `dvapp` (apps), `dvos` (buckets) and
//! `dvnet` (networks, VLANs, addresses, DNS); each family is also a `dv`
//! subcommand (`dv ce machine list` is `dvce machine list`).
//!
//! Built so far: `dvce machine` and `dvce inventory` against one site's
//! agent (`--agent`, or `DV_AGENT`). Contexts, login and the hub arrive
//! with the CLI's own issue.
//!
//! Exit codes: 0 done; 1 the API refused or failed (its message is
//! printed); 2 the command line is wrong; 3 the agent cannot be reached;
//! 4 a followed task failed; 5 a followed task is blocked on a dependency.

mod ce;
mod client;
mod output;
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

/// `dv`.
#[derive(Debug, Parser)]
#[command(
    name = "dv",
    version,
    about = "Dataverket: the datacenter platform's command line"
)]
struct Dv {
    #[command(subcommand)]
    family: Family,
}

#[derive(Debug, Subcommand)]
enum Family {
    /// Compute: machines, BMCs, inventory (also installed as `dvce`).
    Ce(ce::Dvce),
    /// Durable tasks: list, show, follow live.
    Task(task::TaskArgs),
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
        "dvce" => ce::Dvce::try_parse_from(&args).map(Family::Ce),
        _ => Dv::try_parse_from(&args).map(|dv| dv.family),
    };
    let family = match parsed {
        Ok(f) => f,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match family {
        Family::Ce(cmd) => ce::run(cmd),
        Family::Task(args) => task::run(args),
    }
}
