//! `dvnet profile|port|lag|switch|plan|apply|drift`: a site's switch-port
//! intent and its switches, through the site's agent. Intent changes are
//! stored and validated at once; nothing reaches a switch until `dvnet
//! apply`, which first shows nothing more than `dvnet plan` would.

use std::process::ExitCode;

use clap::Subcommand;
use comfy_table::Table;
use dv_protocol::api::{LagRequest, PortAssignRequest, SwitchPlan};
use dv_protocol::{MacAddr, MachineId, PortMode, PortName, PortProfileName, VlanId};
use serde_json::Value;

use crate::output::{self, Format};
use crate::target::{Failure, Target};

#[derive(Debug, Subcommand)]
pub(crate) enum Profile {
    /// Every port profile.
    #[command(after_help = "Example:\n  dvnet profile list")]
    List,
    /// Define or change a profile: one access VLAN, or a trunk.
    #[command(
        after_help = "Examples:\n  dvnet profile set server --access 10\n  dvnet profile set uplink --trunk 10,20 --native 10"
    )]
    Set {
        /// Its name.
        name: String,
        /// Untagged on this VLAN.
        #[arg(long, conflicts_with_all = ["trunk", "native"], required_unless_present = "trunk")]
        access: Option<u16>,
        /// Tagged on these VLANs (comma-separated).
        #[arg(long, value_delimiter = ',')]
        trunk: Vec<u16>,
        /// Untagged frames of a trunk belong to this VLAN (one of --trunk).
        #[arg(long, requires = "trunk")]
        native: Option<u16>,
    },
    /// Delete a profile no port uses.
    #[command(after_help = "Example:\n  dvnet profile delete old-server")]
    Delete {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Port {
    /// A switch's assigned ports and LAGs.
    #[command(after_help = "Example:\n  dvnet port list leaf-1")]
    List {
        /// The switch.
        switch: String,
    },
    /// Give a switch port a profile, and say what is cabled to it.
    #[command(
        after_help = "Examples:\n  dvnet port assign leaf-1 swp1 --profile server --machine 0194c3e2-...\n  dvnet port assign leaf-1 swp49 --profile uplink"
    )]
    Assign {
        /// The switch.
        switch: String,
        /// The port, as the switch names it.
        port: String,
        /// The profile.
        #[arg(long)]
        profile: String,
        /// The machine cabled to it (its provisioning waits for the port).
        #[arg(long)]
        machine: Option<String>,
        /// The machine's NIC on it.
        #[arg(long)]
        nic: Option<String>,
    },
    /// Take a port's assignment away (the next apply removes it).
    #[command(after_help = "Example:\n  dvnet port unassign leaf-1 swp1")]
    Unassign {
        /// The switch.
        switch: String,
        /// The port.
        port: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Lag {
    /// Bundle member ports into a LAG carrying a profile.
    #[command(
        after_help = "Example:\n  dvnet lag set leaf-1 bond1 --members swp1,swp2 --profile uplink"
    )]
    Set {
        /// The switch.
        switch: String,
        /// The LAG's name.
        name: String,
        /// Its member ports (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        /// The profile it carries.
        #[arg(long)]
        profile: String,
    },
    /// Delete a LAG (its members are then unassigned).
    #[command(after_help = "Example:\n  dvnet lag delete leaf-1 bond1")]
    Delete {
        /// The switch.
        switch: String,
        /// The LAG.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Switch {
    /// The switches the agent configures, with their last apply and drift.
    #[command(after_help = "Example:\n  dvnet switch list")]
    List,
}

fn bad(what: &str, text: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Config(format!("{text:?} is not a {what}: {e}"))
}

fn vlan(v: u16) -> Result<VlanId, Failure> {
    VlanId::new(v).map_err(|e| bad("VLAN", &v.to_string(), e))
}

pub(crate) async fn profile(
    target: &Target,
    cmd: Profile,
    format: Format,
) -> Result<ExitCode, Failure> {
    let client = &target.client;
    match cmd {
        Profile::List => {
            let list = client.profile_list().await?;
            output::print_typed(&list, format, |v| {
                crate::tenancy::table(v, &["NAME", "MODE"], |p| {
                    vec![output::cell(&p["name"]), mode_text(&p["mode"])]
                })
            });
        }
        Profile::Set {
            name,
            access,
            trunk,
            native,
        } => {
            PortProfileName::new(&name).map_err(|e| bad("profile name", &name, e))?;
            let mode = match access {
                Some(v) => PortMode::Access { vlan: vlan(v)? },
                None => PortMode::Trunk {
                    allowed: trunk.into_iter().map(vlan).collect::<Result<_, _>>()?,
                    native: native.map(vlan).transpose()?,
                },
            };
            let p = client.profile_set(&name, mode).await?;
            eprintln!(
                "profile {} set; run dvnet plan <switch> to see what it changes",
                p.name
            );
            output::print_typed(&p, format, output::fields);
        }
        Profile::Delete { name } => {
            client.profile_delete(&name).await?;
            eprintln!("profile {name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn port(target: &Target, cmd: Port, format: Format) -> Result<ExitCode, Failure> {
    let client = &target.client;
    match cmd {
        Port::List { switch } => {
            let ports = client.switch_ports(&switch).await?;
            let v = serde_json::json!({ "assignments": ports.assignments, "lags": ports.lags });
            output::print(&v, format, ports_table);
        }
        Port::Assign {
            switch,
            port,
            profile,
            machine,
            nic,
        } => {
            PortName::new(&port).map_err(|e| bad("port name", &port, e))?;
            let request = PortAssignRequest {
                profile: PortProfileName::new(&profile)
                    .map_err(|e| bad("profile name", &profile, e))?,
                machine: machine
                    .map(|m| m.parse::<MachineId>().map_err(|e| bad("machine id", &m, e)))
                    .transpose()?,
                nic: nic
                    .map(|m| m.parse::<MacAddr>().map_err(|e| bad("MAC address", &m, e)))
                    .transpose()?,
            };
            let a = client.port_assign(&switch, &port, &request).await?;
            eprintln!(
                "{switch}/{port} assigned profile {}; run dvnet plan {switch}",
                a.profile
            );
            output::print_typed(&a, format, output::fields);
        }
        Port::Unassign { switch, port } => {
            client.port_unassign(&switch, &port).await?;
            eprintln!("{switch}/{port} unassigned; the next dvnet apply {switch} removes it");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn lag(target: &Target, cmd: Lag, format: Format) -> Result<ExitCode, Failure> {
    let client = &target.client;
    match cmd {
        Lag::Set {
            switch,
            name,
            members,
            profile,
        } => {
            let request = LagRequest {
                members: members
                    .iter()
                    .map(|m| PortName::new(m).map_err(|e| bad("port name", m, e)))
                    .collect::<Result<_, _>>()?,
                profile: PortProfileName::new(&profile)
                    .map_err(|e| bad("profile name", &profile, e))?,
            };
            let l = client.lag_set(&switch, &name, &request).await?;
            eprintln!("LAG {switch}/{} set; run dvnet plan {switch}", l.name);
            output::print_typed(&l, format, output::fields);
        }
        Lag::Delete { switch, name } => {
            client.lag_delete(&switch, &name).await?;
            eprintln!("LAG {switch}/{name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn switch(
    target: &Target,
    cmd: Switch,
    format: Format,
) -> Result<ExitCode, Failure> {
    match cmd {
        Switch::List => {
            let list = target.client.switch_list().await?;
            output::print_typed(&list, format, |v| {
                crate::tenancy::table(
                    v,
                    &["NAME", "DRIVER", "TARGET", "LAST APPLY", "AT", "DRIFT"],
                    |s| {
                        vec![
                            output::cell(&s["name"]),
                            output::cell(&s["driver"]),
                            output::cell(&s["target"]),
                            output::cell(&s["last_apply"]),
                            output::cell(&s["last_apply_at"]),
                            match s["drift"].as_array().map(Vec::len) {
                                Some(0) | None => "in sync".to_owned(),
                                Some(n) => format!("{n} change(s)"),
                            },
                        ]
                    },
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `plan` and `drift`: the changes, one per line; with `exit_code`, exit 1
/// when there are any (as `git diff --exit-code`).
pub(crate) async fn plan(
    target: &Target,
    switch: &str,
    drift: bool,
    exit_code: bool,
    format: Format,
) -> Result<ExitCode, Failure> {
    let p = if drift {
        target.client.switch_drift(switch).await?
    } else {
        target.client.switch_plan(switch).await?
    };
    show_plan(&p, format, if drift { "drifted" } else { "to apply" });
    Ok(if exit_code && !p.in_sync {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn show_plan(p: &SwitchPlan, format: Format, what: &str) {
    if p.in_sync {
        eprintln!("switch {}: in sync with the intent", p.switch);
    } else {
        eprintln!("switch {}: {} change(s) {what}", p.switch, p.changes.len());
    }
    output::print_typed(p, format, |v| changes_table(&v["changes"]));
}

pub(crate) async fn apply(
    target: &Target,
    switch: &str,
    format: Format,
) -> Result<ExitCode, Failure> {
    let a = target.client.switch_apply(switch).await?;
    if a.applied.is_empty() {
        eprintln!("switch {}: nothing to apply, in sync", a.switch);
    } else {
        eprintln!("switch {}: {} change(s) applied", a.switch, a.applied.len());
    }
    if !a.in_sync {
        eprintln!(
            "warning: the switch read back differs from the intent; run dvnet drift {switch}"
        );
    }
    for t in &a.resumed_tasks {
        eprintln!("provisioning task {t} was waiting for this switch and goes on");
    }
    output::print_typed(&a, format, |v| changes_table(&v["applied"]));
    Ok(ExitCode::SUCCESS)
}

fn changes_table(changes: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    for c in changes.as_array().into_iter().flatten() {
        t.add_row(vec![output::cell(&c["text"])]);
    }
    t
}

fn mode_text(mode: &Value) -> String {
    if let Some(a) = mode.get("access") {
        return format!("access {}", output::cell(&a["vlan"]));
    }
    if let Some(t) = mode.get("trunk") {
        let mut s = format!("trunk {}", output::cell(&t["allowed"]).replace(", ", ","));
        if !t["native"].is_null() {
            s.push_str(&format!(" native {}", output::cell(&t["native"])));
        }
        return s;
    }
    output::cell(mode)
}

fn ports_table(v: &Value) -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING);
    t.set_header(vec!["PORT", "PROFILE", "MACHINE", "NIC", "LAG MEMBERS"]);
    for a in v["assignments"].as_array().into_iter().flatten() {
        t.add_row(vec![
            output::cell(&a["port"]),
            output::cell(&a["profile"]),
            output::cell(&a["machine"]),
            output::cell(&a["nic"]),
            String::new(),
        ]);
    }
    for l in v["lags"].as_array().into_iter().flatten() {
        t.add_row(vec![
            output::cell(&l["name"]),
            output::cell(&l["profile"]),
            String::new(),
            String::new(),
            output::cell(&l["members"]),
        ]);
    }
    t
}
