//! `dv-cli`: the `dv` command-line family.
//!
//! One multi-call binary installed under seven names: `dv` (projects,
//! environments, quotas, tasks), `dvid` (login, tokens), `dvce` (machines,
//! BMCs, inventory), `dvke` (clusters), `dvapp` (apps), `dvos` (buckets) and
//! `dvnet` (networks, VLANs, addresses, DNS); each family is also a `dv`
//! subcommand (`dv ce machine list` is `dvce machine list`).
//!
//! Built so far: `dv tenant|project|env|quota|offerings|task|context|
//! completion`, `dvid login|logout|whoami|token|role`, `dvce
//! machine|inventory`, `dvnet network|address`; `dvke`, `dvapp` and `dvos`
//! check the project's offering with the hub and say what is missing (they
//! have no backend yet). A command talks to a hub (every site) or to one
//! site's agent, as a context, `--agent` or `DV_AGENT` says ([`target`]);
//! every call goes through the SDK (`dv-sdk`), whose types are the
//! servers' own.
//!
//! Exit codes (docs/cli.md): 0 done; 1 the API refused or failed (its
//! message is printed); 2 the command line or the local configuration
//! (contexts, token file) is wrong; 3 the API cannot be reached; 4 a
//! followed task failed; 5 a followed task is blocked on a dependency; 6
//! the API refused the token (401/403).

#[macro_use]
mod style;

mod ce;
mod ce_project;
mod completion;
mod context;
mod credentials;
mod id;
mod net;
mod net_switch;
mod offerings;
mod output;
mod private_file;
mod progress;
mod quota;
mod scope;
mod target;
mod task;
mod tenancy;
mod unserved;

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
  dv context use prod --tenant acme --project web
  dv project create web --tenant acme
  dv env create prod --kind production
  dv quota set --machines 4 --vcpus 64
  dv offerings
  dv ce machine list               (dvce machine list)
  dv net network list --agent http://10.77.0.1:8680   (dvnet network list)
  dvce machine provision SN-0001 --wait
  dv task list --state blocked -o json
  dv completion bash > ~/.local/share/bash-completion/completions/dv

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
    /// Kubernetes clusters (also installed as `dvke`).
    Ke(unserved::ke::KeArgs),
    /// Apps and web hosting (also installed as `dvapp`).
    App(unserved::app::AppArgs),
    /// Object storage buckets (also installed as `dvos`).
    Os(unserved::os::OsArgs),
    /// A site's networks and addresses (also installed as `dvnet`).
    Net(net::NetArgs),
    /// Tenants: the organisations that own projects (hub).
    Tenant(tenancy::TenantArgs),
    /// Projects of a tenant (hub).
    Project(tenancy::ProjectArgs),
    /// Environments of a project (hub).
    Env(tenancy::EnvArgs),
    /// A project's quota (hub).
    Quota(quota::QuotaArgs),
    /// What a project may ask for, and what each offering still needs (hub).
    Offerings(offerings::OfferingsArgs),
    /// Turn an offering on or off for a project (hub, platform-operator).
    Offering(offerings::OfferingArgs),
    /// Durable tasks: list, show, follow live.
    Task(task::TaskArgs),
    /// Where commands go: hubs and agents, with their tokens and default
    /// tenant and project.
    Context(context::ContextArgs),
}

/// A parsed command line: a command to run, or one already answered
/// (`completion`).
enum Parsed {
    // Boxed: a command line is parsed once, and the enum stays small.
    Run(Box<(target::Global, Family)>),
    Done(ExitCode),
}

/// Parses `args` as `P` (one family's command line) with the `completion`
/// subcommand every name has, then `into` says what to run.
fn parse<P: Parser>(
    args: &[OsString],
    into: impl FnOnce(P) -> (target::Global, Family),
) -> Result<Parsed, clap::Error> {
    let mut matches = completion::with_completion(P::command()).try_get_matches_from(args)?;
    if let Some(shell) = completion::requested(&matches) {
        return Ok(Parsed::Done(completion::print(shell, P::command())));
    }
    let (global, family) = P::from_arg_matches_mut(&mut matches)
        .map(into)
        .map_err(|e| e.format(&mut P::command()))?;
    Ok(Parsed::Run(Box::new((global, family))))
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
    // One arm per installed name; anything else (`dv`, a renamed copy) is dv.
    let parsed = match program.as_str() {
        "dvce" => parse(&args, |d: ce::Dvce| {
            (d.global, Family::Ce(ce::CeArgs { command: d.command }))
        }),
        "dvid" => parse(&args, |d: id::Dvid| {
            (d.global, Family::Id(id::IdArgs { command: d.command }))
        }),
        "dvke" => parse(&args, |d: unserved::ke::DvKe| {
            let args = unserved::ke::KeArgs {
                scope: d.scope,
                command: d.command,
            };
            (d.global, Family::Ke(args))
        }),
        "dvapp" => parse(&args, |d: unserved::app::DvApp| {
            let args = unserved::app::AppArgs {
                scope: d.scope,
                command: d.command,
            };
            (d.global, Family::App(args))
        }),
        "dvos" => parse(&args, |d: unserved::os::DvOs| {
            let args = unserved::os::OsArgs {
                scope: d.scope,
                command: d.command,
            };
            (d.global, Family::Os(args))
        }),
        "dvnet" => parse(&args, |d: net::Dvnet| {
            (d.global, Family::Net(net::NetArgs { command: d.command }))
        }),
        _ => parse(&args, |dv: Dv| (dv.global, dv.family)),
    };
    let (global, family) = match parsed {
        Ok(Parsed::Run(parsed)) => *parsed,
        Ok(Parsed::Done(code)) => return code,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match family {
        Family::Ce(args) => ce::run(args.command, &global),
        Family::Id(args) => id::run(args.command, &global),
        Family::Ke(args) => unserved::ke::run(args, &global),
        Family::App(args) => unserved::app::run(args, &global),
        Family::Os(args) => unserved::os::run(args, &global),
        Family::Net(args) => net::run(args.command, &global),
        Family::Tenant(args) => tenancy::run_tenant(args, &global),
        Family::Project(args) => tenancy::run_project(args, &global),
        Family::Env(args) => tenancy::run_env(args, &global),
        Family::Quota(args) => quota::run(args, &global),
        Family::Offerings(args) => offerings::run(args, &global),
        Family::Offering(args) => offerings::run_switch(args, &global),
        Family::Task(args) => task::run(args, &global),
        Family::Context(args) => context::run(args, &global),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and subcommand of every name (but clap's own `help`)
    /// ends its `--help` with examples.
    #[test]
    fn every_command_has_examples() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            let examples = cmd
                .get_after_help()
                .is_some_and(|h| h.to_string().contains("Example"));
            if !examples {
                missing.push(path.clone());
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        for cmd in [
            super::Dv::command(),
            super::ce::Dvce::command(),
            super::id::Dvid::command(),
            super::unserved::ke::DvKe::command(),
            super::unserved::app::DvApp::command(),
            super::unserved::os::DvOs::command(),
            super::net::Dvnet::command(),
        ] {
            walk(&super::completion::with_completion(cmd), "", &mut missing);
        }
        assert!(missing.is_empty(), "no Examples in --help of: {missing:#?}");
    }
}
