//! `dvce`: machines (of every site through a hub, or of one site through
//! its agent) and a site's inventory file.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{Cell, Table};
use serde_json::Value;

use dv_protocol::SiteName;
use dv_sdk::Accepted;

use crate::context::Kind;
use crate::output::{self, Format};
use crate::target::{Failure, Global, Target, run_with};

const EXAMPLES: &str = "\
Examples:
  dvce inventory import site-kit/inventory.yaml
  dvce machine list
  dvce machine show SN-0001 -o json
  dvce machine approve 52:54:00:aa:00:01
  dvce machine power SN-0001 on
  dvce machine boot SN-0001 pxe
  dvce machine repin SN-0001 --sha256 3F:9A:...   (trust the BMC's new TLS certificate)
  dvce machine provision SN-0001 --wait   (through a hub: follows the command to the site's task)
  dvce --context osl-1 machine list -o yaml
  dvce machine deprovision SN-0001 --wait
  dv ce machine list            (the same, through dv)";

/// `dvce`.
#[derive(Debug, Parser)]
#[command(name = "dvce", version, about = "Machines, BMCs and inventory", after_help = EXAMPLES)]
pub struct Dvce {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `dv ce` (the global options are `dv`'s).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct CeArgs {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Machines: list, show, approve, power, next boot, BMC certificate re-pin.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  dvce machine list\n  dvce machine show SN-0001\n  dvce machine provision SN-0001 --wait"
    )]
    Machine(Machine),
    /// The inventory file: import a site kit's, export the site's.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  dvce inventory import site-kit/inventory.yaml\n  dvce inventory export > inventory.yaml"
    )]
    Inventory(Inventory),
}

#[derive(Debug, Subcommand)]
pub(crate) enum Machine {
    /// Every machine: of every site (hub), or of the agent's site.
    #[command(
        after_help = "Examples:\n  dvce machine list\n  dvce machine list --site osl-1 -o json   (hub)"
    )]
    List {
        /// Only this site (hub).
        #[arg(long)]
        site: Option<String>,
    },
    /// One machine (by id, serial or MAC), with its discovery facts.
    #[command(
        after_help = "Examples:\n  dvce machine show SN-0001\n  dvce machine show 52:54:00:aa:00:01 -o yaml"
    )]
    Show {
        /// Id, serial or MAC.
        key: String,
    },
    /// Make a discovered machine trusted inventory.
    #[command(after_help = "Example:\n  dvce machine approve 52:54:00:aa:00:01   (agent)")]
    Approve {
        /// Id, serial or MAC.
        key: String,
    },
    /// Show the machine's power, or change it (waits until the BMC shows it).
    #[command(
        after_help = "Examples:\n  dvce machine power SN-0001\n  dvce machine power SN-0001 force-restart   (agent)"
    )]
    Power {
        /// Id, serial or MAC.
        key: String,
        /// What to do; without it, show the power state.
        #[arg(value_enum)]
        action: Option<PowerAction>,
    },
    /// Provision the machine (allocate, PXE, power cycle, install, disk,
    /// ready) as a task; with --wait, follow it and exit 4 if it fails, 5
    /// if it is blocked. Through a hub, the command goes to the machine's
    /// site, and --wait follows it until the site's task ends.
    #[command(
        after_help = "Examples:\n  dvce machine provision SN-0001\n  dvce machine provision SN-0001 --wait   (exit 4 failed, 5 blocked)"
    )]
    Provision {
        /// Id, serial or MAC.
        key: String,
        /// Follow the task until it ends.
        #[arg(long)]
        wait: bool,
    },
    /// Deprovision the machine (wipe, power off, back to available) as a
    /// task; with --wait, follow it.
    #[command(after_help = "Example:\n  dvce machine deprovision SN-0001 --wait")]
    Deprovision {
        /// Id, serial or MAC.
        key: String,
        /// Follow the task until it ends.
        #[arg(long)]
        wait: bool,
    },
    /// Ask the hub for a machine for a project: it is placed on an
    /// available machine of a site the project may use, claimed and
    /// provisioned; with --wait, follow it until ready (exit 4 failed or
    /// refused, 5 blocked). A missing prerequisite is refused with its fix
    /// (see dv offerings).
    #[command(
        after_help = "Examples:\n  dvce machine request --env dev --tenant acme --project web --wait\n  dvce machine request --env prod --site osl-1   (tenant and project from the context)"
    )]
    Request {
        /// The project's environment it serves.
        #[arg(long, value_name = "ENV")]
        env: String,
        /// Place it at this site (default: any site the project may use).
        #[arg(long)]
        site: Option<String>,
        #[command(flatten)]
        scope: crate::scope::Scope,
        /// Follow the provisioning until the machine is ready.
        #[arg(long)]
        wait: bool,
    },
    /// The machines a project holds, with their state (hub).
    #[command(
        after_help = "Examples:\n  dvce machine held --tenant acme --project web\n  dvce machine held -o json"
    )]
    Held {
        #[command(flatten)]
        scope: crate::scope::Scope,
    },
    /// Give a project's machine back: its site deprovisions it (hub).
    #[command(
        after_help = "Examples:\n  dvce machine release 01JD... --tenant acme --project web\n  dvce machine release 01JD... --wait"
    )]
    Release {
        /// The machine id (dvce machine held lists them).
        machine: String,
        #[command(flatten)]
        scope: crate::scope::Scope,
        /// Follow the deprovisioning until it ends.
        #[arg(long)]
        wait: bool,
    },
    /// Trust the TLS certificate the machine's Redfish BMC presents now,
    /// after it was replaced (the pinned one is refused until then).
    #[command(
        after_help = "Examples:\n  dvce machine repin SN-0001\n  dvce machine repin SN-0001 --sha256 3F:9A:...   (agent)"
    )]
    Repin {
        /// Id, serial or MAC.
        key: String,
        /// Pin only if the BMC presents this certificate (SHA-256, as the
        /// refusal and `openssl x509 -fingerprint -sha256` print it).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Set the machine's next boot (that boot only).
    #[command(
        after_help = "Examples:\n  dvce machine boot SN-0001 pxe\n  dvce machine boot SN-0001 disk   (agent)"
    )]
    Boot {
        /// Id, serial or MAC.
        key: String,
        /// Where to boot.
        #[arg(value_enum)]
        target: BootTarget,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PowerAction {
    On,
    ForceOff,
    GracefulShutdown,
    ForceRestart,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum BootTarget {
    Pxe,
    Disk,
    UefiHttp,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Inventory {
    /// Import a YAML inventory file (every problem in it is listed; a file
    /// with problems changes nothing).
    #[command(
        after_help = "Example:\n  dvce inventory import site-kits/examples/lab/inventory.yaml   (agent)"
    )]
    Import {
        /// The file.
        file: std::path::PathBuf,
    },
    /// Print the site's inventory as YAML (without passwords).
    #[command(after_help = "Example:\n  dvce inventory export > inventory.yaml   (agent)")]
    Export,
}

/// Runs a `dvce` command against the target `global` chooses.
pub fn run(command: Command, global: &Global) -> ExitCode {
    run_with(global, async |target, format| {
        execute(target, command, format).await
    })
}

async fn execute(target: &Target, command: Command, format: Format) -> Result<ExitCode, Failure> {
    let client = &target.client;
    match command {
        Command::Machine(Machine::Provision { key, wait }) => {
            let position = feed_position(target, wait).await;
            let accepted = client.machine_provision(&key).await?;
            let how = Follow { wait, position };
            return accepted_task(target, accepted, &key, "provision", how, format).await;
        }
        Command::Machine(Machine::Request {
            env,
            site,
            scope,
            wait,
        }) => {
            return crate::ce_project::request(target, &scope, &env, site.as_deref(), wait, format)
                .await;
        }
        Command::Machine(Machine::Held { scope }) => {
            return crate::ce_project::held(target, &scope, format).await;
        }
        Command::Machine(Machine::Release {
            machine,
            scope,
            wait,
        }) => {
            return crate::ce_project::release(target, &scope, &machine, wait, format).await;
        }
        Command::Machine(Machine::Deprovision { key, wait }) => {
            let position = feed_position(target, wait).await;
            let accepted = client.machine_deprovision(&key).await?;
            let how = Follow { wait, position };
            return accepted_task(target, accepted, &key, "deprovision", how, format).await;
        }
        Command::Machine(Machine::List { site }) => {
            let site = site
                .map(|s| {
                    SiteName::new(&s)
                        .map_err(|e| Failure::Config(format!("{s:?} is not a site name: {e}")))
                })
                .transpose()?;
            let machines = client.machine_list(site.as_ref()).await?;
            output::print_typed(&machines, format, machine_table);
        }
        Command::Machine(Machine::Show { key }) => {
            let machine = client.machine_get(&key).await?;
            output::print_typed(&machine, format, output::fields);
        }
        Command::Machine(Machine::Approve { key }) => {
            target.needs_agent("dvce machine approve")?;
            let machine = client.machine_approve(&key).await?;
            output::print_typed(&machine, format, output::fields);
        }
        Command::Machine(Machine::Power { key, action: None }) => {
            target.needs_agent("dvce machine power")?;
            let v = client.machine_power(&key).await?;
            output::print(&v, format, output::fields);
        }
        Command::Machine(Machine::Power {
            key,
            action: Some(a),
        }) => {
            target.needs_agent("dvce machine power")?;
            let action = match a {
                PowerAction::On => "on",
                PowerAction::ForceOff => "force_off",
                PowerAction::GracefulShutdown => "graceful_shutdown",
                PowerAction::ForceRestart => "force_restart",
            };
            let v = client.machine_set_power(&key, action).await?;
            output::print(&v, format, output::fields);
        }
        Command::Machine(Machine::Boot { key, target: boot }) => {
            target.needs_agent("dvce machine boot")?;
            let boot = match boot {
                BootTarget::Pxe => "pxe",
                BootTarget::Disk => "disk",
                BootTarget::UefiHttp => "uefi_http",
            };
            let v = client.machine_boot(&key, boot).await?;
            output::print(&v, format, output::fields);
        }
        Command::Machine(Machine::Repin { key, sha256 }) => {
            target.needs_agent("dvce machine repin")?;
            let v = client.machine_repin(&key, sha256.as_deref()).await?;
            output::print(&v, format, output::fields);
        }
        Command::Inventory(Inventory::Import { file }) => {
            target.needs_agent("dvce inventory import")?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::Config(format!("cannot read {}: {e}", file.display())))?;
            let v = client.inventory_import(text).await?;
            output::print(&v, format, output::fields);
        }
        Command::Inventory(Inventory::Export) => {
            target.needs_agent("dvce inventory export")?;
            print!("{}", client.inventory_export().await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether to follow the task, and the hub's event position from before
/// the command was sent.
struct Follow {
    wait: bool,
    position: Option<u64>,
}

/// A hub's event position, read before a command that `--wait` follows
/// (so no state change of its task is missed); none otherwise.
async fn feed_position(target: &Target, wait: bool) -> Option<u64> {
    match target.kind {
        Kind::Hub if wait => crate::task::event_position(&target.client).await,
        _ => None,
    }
}

/// What provision or deprovision answered; with `wait`, follows the task
/// (through the hub's command first when the target is a hub).
async fn accepted_task(
    target: &Target,
    accepted: Accepted,
    key: &str,
    what: &str,
    how: Follow,
    format: Format,
) -> Result<ExitCode, Failure> {
    let Follow { wait, position } = how;
    match accepted {
        Accepted::Task(task) if wait => {
            eprintln!("task {}: {what} {key}", task.id);
            crate::task::watch(&target.client, &task.id.to_string()).await
        }
        Accepted::Task(task) => {
            output::print_typed(&task, format, output::fields);
            Ok(ExitCode::SUCCESS)
        }
        Accepted::Command(command) if wait => {
            eprintln!(
                "command {}: {what} {key} (machine {}) sent to site {}",
                command.command, command.machine, command.site
            );
            crate::task::follow_command(&target.client, &command, position).await
        }
        Accepted::Command(command) => {
            output::print_typed(&command, format, output::fields);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn machine_table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec![
        "SERIAL", "STATE", "ROLE", "VENDOR", "MODEL", "MACS", "BMC",
    ]);
    for m in v.as_array().into_iter().flatten() {
        let bmc = match &m["bmc"] {
            Value::Null => String::new(),
            b => format!(
                "{} {}:{}",
                output::cell(&b["protocol"]),
                output::cell(&b["address"]["host"]["ip"])
                    + &output::cell(&b["address"]["host"]["name"]),
                output::cell(&b["address"]["port"])
            ),
        };
        t.add_row(vec![
            Cell::new(output::cell(&m["serial"])),
            crate::style::state_cell(output::cell(&m["state"])),
            Cell::new(output::cell(&m["role"])),
            Cell::new(output::cell(&m["vendor"])),
            Cell::new(output::cell(&m["model"])),
            Cell::new(output::cell(&m["macs"])),
            Cell::new(bmc),
        ]);
    }
    t
}
