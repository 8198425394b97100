//! `dvce`: machines and the inventory of one site.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::Table;
use serde_json::{Value, json};

use crate::client::{CallError, Client};
use crate::output::{self, Format};
use crate::{EXIT_API, EXIT_UNREACHABLE};

const EXAMPLES: &str = "\
Examples:
  dvce inventory import site-kit/inventory.yaml
  dvce machine list
  dvce machine show SN-0001 -o json
  dvce machine approve 52:54:00:aa:00:01
  dvce machine power SN-0001 on
  dvce machine boot SN-0001 pxe
  dvce machine repin SN-0001 --sha256 3F:9A:...   (trust the BMC's new TLS certificate)
  dvce machine provision SN-0001 --wait
  dvce machine deprovision SN-0001 --wait
  dv ce machine list            (the same, through dv)";

/// `dvce`.
#[derive(Debug, Parser)]
#[command(name = "dvce", version, about = "Machines, BMCs and inventory", after_help = EXAMPLES)]
pub struct Dvce {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command against an agent takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The site agent's API.
    #[arg(
        long,
        env = "DV_AGENT",
        default_value = "http://127.0.0.1:8680",
        global = true
    )]
    pub(crate) agent: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "auto", global = true)]
    pub(crate) output: Format,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Machines: list, show, approve, power, next boot, BMC certificate re-pin.
    #[command(subcommand)]
    Machine(Machine),
    /// The inventory file: import a site kit's, export the site's.
    #[command(subcommand)]
    Inventory(Inventory),
}

#[derive(Debug, Subcommand)]
enum Machine {
    /// Every machine of the site.
    List,
    /// One machine (by id, serial or MAC), with its discovery facts.
    Show {
        /// Id, serial or MAC.
        key: String,
    },
    /// Make a discovered machine trusted inventory.
    Approve {
        /// Id, serial or MAC.
        key: String,
    },
    /// Show the machine's power, or change it (waits until the BMC shows it).
    Power {
        /// Id, serial or MAC.
        key: String,
        /// What to do; without it, show the power state.
        #[arg(value_enum)]
        action: Option<PowerAction>,
    },
    /// Provision the machine (allocate, PXE, power cycle, install, disk,
    /// ready) as a task; with --wait, follow it and exit 4 if it fails, 5
    /// if it is blocked.
    Provision {
        /// Id, serial or MAC.
        key: String,
        /// Follow the task until it ends.
        #[arg(long)]
        wait: bool,
    },
    /// Deprovision the machine (wipe, power off, back to available) as a
    /// task; with --wait, follow it.
    Deprovision {
        /// Id, serial or MAC.
        key: String,
        /// Follow the task until it ends.
        #[arg(long)]
        wait: bool,
    },
    /// Trust the TLS certificate the machine's Redfish BMC presents now,
    /// after it was replaced (the pinned one is refused until then).
    Repin {
        /// Id, serial or MAC.
        key: String,
        /// Pin only if the BMC presents this certificate (SHA-256, as the
        /// refusal and `openssl x509 -fingerprint -sha256` print it).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Set the machine's next boot (that boot only).
    Boot {
        /// Id, serial or MAC.
        key: String,
        /// Where to boot.
        #[arg(value_enum)]
        target: BootTarget,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PowerAction {
    On,
    ForceOff,
    GracefulShutdown,
    ForceRestart,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BootTarget {
    Pxe,
    Disk,
    UefiHttp,
}

#[derive(Debug, Subcommand)]
enum Inventory {
    /// Import a YAML inventory file (every problem in it is listed; a file
    /// with problems changes nothing).
    Import {
        /// The file.
        file: std::path::PathBuf,
    },
    /// Print the site's inventory as YAML (without passwords).
    Export,
}

/// Runs a parsed `dvce` command.
pub fn run(cmd: Dvce) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(EXIT_API);
        }
    };
    let client = match Client::new(&cmd.global.agent) {
        Ok(c) => c,
        Err(e) => return report(&cmd.global.agent, e),
    };
    let format = cmd.global.output;
    match runtime.block_on(execute(&client, cmd.command, format)) {
        Ok(code) => code,
        Err(e) => report(client.base(), e),
    }
}

pub(crate) fn report(base: &str, e: CallError) -> ExitCode {
    match e {
        CallError::Unreachable(why) => {
            eprintln!(
                "error: cannot reach the agent at {base}: {why}\n\
                 hint: is dv-agent running there? Point dvce at it with --agent URL or DV_AGENT=URL."
            );
            ExitCode::from(EXIT_UNREACHABLE)
        }
        CallError::Refused { status, message } => {
            eprintln!("error ({status}): {message}");
            ExitCode::from(EXIT_API)
        }
    }
}

async fn execute(client: &Client, command: Command, format: Format) -> Result<ExitCode, CallError> {
    match command {
        Command::Machine(Machine::Provision { key, wait }) => {
            return start_task(client, &key, "provision", wait, format).await;
        }
        Command::Machine(Machine::Deprovision { key, wait }) => {
            return start_task(client, &key, "deprovision", wait, format).await;
        }
        Command::Machine(Machine::List) => {
            let v = client.get("/v1/machines").await?;
            output::print(&v, format, machine_table);
        }
        Command::Machine(Machine::Show { key }) => {
            let v = client.get(&format!("/v1/machines/{key}")).await?;
            output::print(&v, format, output::fields);
        }
        Command::Machine(Machine::Approve { key }) => {
            let v = client
                .post_json(&format!("/v1/machines/{key}/approve"), &json!({}))
                .await?;
            output::print(&v, format, output::fields);
        }
        Command::Machine(Machine::Power { key, action: None }) => {
            let v = client.get(&format!("/v1/machines/{key}/power")).await?;
            output::print(&v, format, output::fields);
        }
        Command::Machine(Machine::Power {
            key,
            action: Some(a),
        }) => {
            let action = match a {
                PowerAction::On => "on",
                PowerAction::ForceOff => "force_off",
                PowerAction::GracefulShutdown => "graceful_shutdown",
                PowerAction::ForceRestart => "force_restart",
            };
            let v = client
                .post_json(
                    &format!("/v1/machines/{key}/power"),
                    &json!({ "action": action }),
                )
                .await?;
            output::print(&v, format, output::fields);
        }
        Command::Machine(Machine::Boot { key, target }) => {
            let target = match target {
                BootTarget::Pxe => "pxe",
                BootTarget::Disk => "disk",
                BootTarget::UefiHttp => "uefi_http",
            };
            let v = client
                .post_json(
                    &format!("/v1/machines/{key}/boot"),
                    &json!({ "target": target }),
                )
                .await?;
            output::print(&v, format, output::fields);
        }
        Command::Machine(Machine::Repin { key, sha256 }) => {
            let body = match sha256 {
                Some(f) => json!({ "sha256": f }),
                None => json!({}),
            };
            let v = client
                .post_json(&format!("/v1/machines/{key}/bmc/repin"), &body)
                .await?;
            output::print(&v, format, output::fields);
        }
        Command::Inventory(Inventory::Import { file }) => {
            let text = std::fs::read_to_string(&file).map_err(|e| CallError::Refused {
                status: 0,
                message: format!("cannot read {}: {e}", file.display()),
            })?;
            let v = client
                .post_text("/v1/inventory", text, "application/yaml")
                .await?;
            output::print(&v, format, output::fields);
        }
        Command::Inventory(Inventory::Export) => {
            print!("{}", client.get_text("/v1/inventory").await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts a machine task (`provision`, `deprovision`) and, with `wait`,
/// follows it.
async fn start_task(
    client: &Client,
    key: &str,
    what: &str,
    wait: bool,
    format: Format,
) -> Result<ExitCode, CallError> {
    let v = client
        .post_json(&format!("/v1/machines/{key}/{what}"), &json!({}))
        .await?;
    let id = output::cell(&v["id"]);
    if wait {
        eprintln!("task {id}: {what} {key}");
        return crate::task::watch(client, &id).await;
    }
    output::print(&v, format, output::fields);
    Ok(ExitCode::SUCCESS)
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
            output::cell(&m["serial"]),
            output::cell(&m["state"]),
            output::cell(&m["role"]),
            output::cell(&m["vendor"]),
            output::cell(&m["model"]),
            output::cell(&m["macs"]),
            bmc,
        ]);
    }
    t
}
