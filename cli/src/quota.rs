//! `dv quota show|set`: a project's limits at the hub. `set` changes only
//! the limits it names: it reads the quota, applies them and writes it back
//! with the ETag it read, so a concurrent change is refused (412) rather
//! than overwritten.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use dv_protocol::Quota;
use dv_sdk::IfMatch;

use crate::output::{self, Format};
use crate::scope::Scope;
use crate::target::{Failure, Global, Target, run_with};

const EXAMPLES: &str = "\
Examples:
  dv quota show --tenant acme --project web
  dv quota set --machines 4 --vcpus 64 --memory-gib 256
  dv quota set --buckets 0        (only the limits named change)";

/// `dv quota` (hub).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct QuotaArgs {
    #[command(flatten)]
    scope: Scope,
    #[command(subcommand)]
    command: QuotaCommand,
}

#[derive(Debug, Subcommand)]
enum QuotaCommand {
    /// The project's quota (all zero until an operator sets it).
    #[command(after_help = "Example:\n  dv quota show --project web -o json")]
    Show,
    /// Change the limits named; the others stay as they are.
    #[command(after_help = "Example:\n  dv quota set --machines 4 --vcpus 64 --networks 2")]
    Set(Limits),
}

#[derive(Debug, Args)]
struct Limits {
    /// Bare-metal machines.
    #[arg(long)]
    machines: Option<u32>,
    /// Virtual CPUs over all VMs.
    #[arg(long)]
    vcpus: Option<u32>,
    /// Memory over all VMs, GiB.
    #[arg(long)]
    memory_gib: Option<u32>,
    /// Block and object storage, GiB.
    #[arg(long)]
    storage_gib: Option<u64>,
    /// Logical networks.
    #[arg(long)]
    networks: Option<u32>,
    /// Managed Kubernetes clusters.
    #[arg(long)]
    kubernetes_clusters: Option<u32>,
    /// Object storage buckets.
    #[arg(long)]
    buckets: Option<u32>,
}

impl Limits {
    /// `q` with the named limits; `None` when none is named.
    fn apply(&self, mut q: Quota) -> Option<Quota> {
        let mut any = false;
        let mut set = |slot: &mut u32, v: Option<u32>| {
            if let Some(v) = v {
                *slot = v;
                any = true;
            }
        };
        set(&mut q.machines, self.machines);
        set(&mut q.vcpus, self.vcpus);
        set(&mut q.memory_gib, self.memory_gib);
        set(&mut q.networks, self.networks);
        set(&mut q.kubernetes_clusters, self.kubernetes_clusters);
        set(&mut q.buckets, self.buckets);
        if let Some(v) = self.storage_gib {
            q.storage_gib = v;
            any = true;
        }
        any.then_some(q)
    }
}

/// Runs `dv quota`.
pub fn run(args: QuotaArgs, global: &Global) -> ExitCode {
    run_with(global, async |target, format| {
        execute(target, &args.scope, args.command, format).await
    })
}

async fn execute(
    target: &Target,
    scope: &Scope,
    cmd: QuotaCommand,
    format: Format,
) -> Result<ExitCode, Failure> {
    target.needs_hub("dv quota")?;
    let client = &target.client;
    let (tenant, project) = scope.project(target)?;
    match cmd {
        QuotaCommand::Show => {
            let q = client.quota_get(&tenant, &project).await?;
            output::print_typed(&q.value, format, output::fields);
        }
        QuotaCommand::Set(limits) => {
            let current = client.quota_get(&tenant, &project).await?;
            let Some(quota) = limits.apply(current.value) else {
                return Err(Failure::Config(
                    "no limit named\nhint: dv quota set --machines N --vcpus N ... (dv quota set --help)"
                        .to_owned(),
                ));
            };
            let if_match = current.etag.map_or(IfMatch::Any, IfMatch::Tag);
            let set = match client.quota_set(&tenant, &project, &quota, &if_match).await {
                Ok(set) => set,
                Err(dv_sdk::Error::PreconditionFailed { message, .. }) => {
                    eprint_error!(
                        "error (412): {message}\nhint: someone changed the quota of {tenant}/{project} since it was read; nothing was changed: run the command again"
                    );
                    return Ok(ExitCode::from(crate::EXIT_API));
                }
                Err(e) => return Err(e.into()),
            };
            eprintln!("quota of project {tenant}/{project} set");
            output::print_typed(&set.value, format, output::fields);
        }
    }
    Ok(ExitCode::SUCCESS)
}
