//! `dvnet`: a site's networks (VLAN, prefix, gateway, DHCP) and the
//! addresses IPAM hands out on them (also `dv net`). A site's agent keeps
//! these: through a hub that has no `/v1/networks`, every command says to
//! point at the site's agent instead.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::Table;
use serde_json::{Value, json};

use dv_protocol::{MacAddr, NetworkSpec};
use dv_sdk::AddressRequest;

use crate::output::{self, Format};
use crate::target::{Failure, Global, Target, run_with};

const EXAMPLES: &str = "\
Examples:
  dvnet --agent http://10.77.0.1:8680 network list
  dvnet network create tenant-20 --vlan 20 --purpose tenant --prefix 10.20.0.0/24 --gateway 10.20.0.1
  dvnet network show tenant-20 -o json
  dvnet address allocate tenant-20 --hostname web-1 --owner ticket-42
  dvnet address allocate tenant-20 --mac 52:54:00:aa:00:01 --address 10.20.0.10
  dvnet address list tenant-20
  dvnet address release tenant-20 10.20.0.2
  dvnet network delete tenant-20     (it must hold no addresses)
  dvnet profile set server --access 20
  dvnet port assign leaf-1 swp1 --profile server
  dvnet plan leaf-1
  dvnet apply leaf-1
  dvnet drift leaf-1 --exit-code
  dv net network list                (the same, through dv)";

/// `dvnet`.
#[derive(Debug, Parser)]
#[command(
    name = "dvnet",
    version,
    about = "Networks, VLANs and addresses of a site (its agent)",
    after_help = EXAMPLES
)]
pub struct Dvnet {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `dv net` (the global options are `dv`'s).
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct NetArgs {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Networks: list, show, create, delete.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  dvnet network list\n  dvnet network create tenant-20 --vlan 20 --purpose tenant --prefix 10.20.0.0/24"
    )]
    Network(Network),
    /// Addresses on a network: list, allocate, release.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  dvnet address allocate tenant-20 --hostname web-1\n  dvnet address release tenant-20 10.20.0.10"
    )]
    Address(Address),
    /// Port profiles: what a switch port carries (an access VLAN, or a trunk).
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  dvnet profile set server --access 10\n  dvnet profile set uplink --trunk 10,20 --native 10"
    )]
    Profile(crate::net_switch::Profile),
    /// Switch ports: give a port a profile, take it away, list them.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  dvnet port assign leaf-1 swp1 --profile server\n  dvnet port list leaf-1"
    )]
    Port(crate::net_switch::Port),
    /// Link aggregation groups: member ports bundled into one.
    #[command(subcommand)]
    #[command(
        after_help = "Example:\n  dvnet lag set leaf-1 bond1 --members swp1,swp2 --profile uplink"
    )]
    Lag(crate::net_switch::Lag),
    /// The switches the agent configures (agent.toml's [[switches]]).
    #[command(subcommand)]
    #[command(after_help = "Example:\n  dvnet switch list")]
    Switch(crate::net_switch::Switch),
    /// What `dvnet apply` would change on a switch; changes nothing.
    #[command(
        after_help = "Examples:\n  dvnet plan leaf-1\n  dvnet plan leaf-1 --exit-code   (exit 1 when there is something to apply)"
    )]
    Plan {
        /// The switch.
        switch: String,
        /// Exit 1 when the plan is not empty.
        #[arg(long)]
        exit_code: bool,
    },
    /// Bring a switch to the intent: the plan's changes in order, rolled
    /// back if a step fails; then read back.
    #[command(after_help = "Example:\n  dvnet apply leaf-1")]
    Apply {
        /// The switch.
        switch: String,
    },
    /// Write a switch's port configuration for its NOS (SONiC config_db
    /// JSON, Arista EOS text, Cumulus NVUE YAML) from the intent, to stdout.
    #[command(
        after_help = "Examples:\n  dvnet render leaf-1 --vendor sonic > config_db.json\n  dvnet render leaf-2 --vendor eos"
    )]
    Render {
        /// The switch, as the intent names it.
        switch: String,
        /// sonic, eos or nvue.
        #[arg(long)]
        vendor: String,
    },
    /// Read a switch back and show what differs from the intent (changes
    /// made behind the agent's back); recorded as an event.
    #[command(
        after_help = "Examples:\n  dvnet drift leaf-1\n  dvnet drift leaf-1 --exit-code   (for monitoring: exit 1 on drift)"
    )]
    Drift {
        /// The switch.
        switch: String,
        /// Exit 1 when the switch drifted.
        #[arg(long)]
        exit_code: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum Network {
    /// The site's networks.
    #[command(after_help = "Example:\n  dvnet network list -o json")]
    List,
    /// One network.
    #[command(after_help = "Example:\n  dvnet network show prov")]
    Show {
        /// Its name.
        name: String,
    },
    /// Create a network: a VLAN and the prefix on it (every problem with
    /// it is listed; a refused network changes nothing).
    #[command(
        after_help = "Examples:\n  dvnet network create tenant-20 --vlan 20 --purpose tenant --prefix 10.20.0.0/24 --gateway 10.20.0.1\n  dvnet network create prov --vlan 10 --purpose provisioning --prefix 10.10.0.0/24 --dhcp --reserved 10.10.0.1-10.10.0.9"
    )]
    Create {
        /// Its short name, unique in the site.
        name: String,
        /// Its 802.1Q VLAN id (1-4094), unique in the site.
        #[arg(long)]
        vlan: u16,
        /// What it carries.
        #[arg(long, value_enum)]
        purpose: Purpose,
        /// Its IP prefix (10.20.0.0/24); must not overlap another network's.
        #[arg(long)]
        prefix: String,
        /// The default gateway, inside the prefix (never handed out).
        #[arg(long)]
        gateway: Option<IpAddr>,
        /// Serve DHCP on it.
        #[arg(long)]
        dhcp: bool,
        /// A range IPAM never hands out: FIRST-LAST or one address (repeat).
        #[arg(long, value_name = "FIRST-LAST")]
        reserved: Vec<String>,
    },
    /// Delete a network (it must hold no addresses).
    #[command(after_help = "Example:\n  dvnet network delete tenant-20")]
    Delete {
        /// Its name.
        name: String,
    },
}

/// A network's purpose.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Purpose {
    Provisioning,
    Management,
    Underlay,
    Tenant,
    Storage,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Address {
    /// The addresses allocated on a network.
    #[command(after_help = "Example:\n  dvnet address list tenant-20")]
    List {
        /// The network.
        network: String,
    },
    /// Allocate an address: the lowest free one unless --address names it;
    /// a hostname adds a DNS record, a MAC a DHCP reservation.
    #[command(
        after_help = "Examples:\n  dvnet address allocate tenant-20 --hostname web-1\n  dvnet address allocate prov --mac 52:54:00:aa:00:01 --address 10.10.0.20 --owner SN-0001"
    )]
    Allocate {
        /// The network.
        network: String,
        /// Who holds it (free text: a machine, a service, a ticket).
        #[arg(long)]
        owner: Option<String>,
        /// A DNS label for it in the site zone.
        #[arg(long)]
        hostname: Option<String>,
        /// A NIC to reserve it for in DHCP.
        #[arg(long)]
        mac: Option<String>,
        /// This address instead of the lowest free one.
        #[arg(long)]
        address: Option<IpAddr>,
    },
    /// Release an address (with its DNS record and DHCP reservation).
    #[command(after_help = "Example:\n  dvnet address release tenant-20 10.20.0.2")]
    Release {
        /// The network.
        network: String,
        /// The address.
        address: IpAddr,
    },
}

/// Runs a `dvnet` command against the target `global` chooses.
pub fn run(command: Command, global: &Global) -> ExitCode {
    run_with(global, async |target, format| {
        match execute(target, command, format).await {
            Err(Failure::Api(dv_sdk::Error::NoEndpoint { url })) => Err(on_hub(target, &url)),
            other => other,
        }
    })
}

/// A hub (or anything else) without `/v1/networks`: say where to go.
fn on_hub(target: &Target, url: &str) -> Failure {
    Failure::Config(format!(
        "networks and addresses are kept by each site's agent; the {} at {} has no {url}\n\
         hint: point dvnet at the site's agent: --agent http://AGENT:8680, or a site context \
         (dv context add osl-1 --url http://AGENT:8680 --kind agent, then dvnet --context osl-1 ...)",
        target.kind.as_str(),
        target.client.base_url()
    ))
}

async fn execute(target: &Target, command: Command, format: Format) -> Result<ExitCode, Failure> {
    let client = &target.client;
    match command {
        Command::Network(Network::List) => {
            let networks = client.network_list().await?;
            output::print_typed(&networks, format, network_table);
        }
        Command::Network(Network::Show { name }) => {
            let n = client.network_get(&name).await?;
            output::print_typed(&n, format, output::fields);
        }
        Command::Network(Network::Create {
            name,
            vlan,
            purpose,
            prefix,
            gateway,
            dhcp,
            reserved,
        }) => {
            let spec = spec(name, vlan, purpose, prefix, gateway, dhcp, &reserved)?;
            let n = client.network_create(&spec).await?;
            eprintln!(
                "network {} created (VLAN {}, {})",
                n.spec.name, n.spec.vlan, n.spec.prefix
            );
            output::print_typed(&n, format, output::fields);
        }
        Command::Network(Network::Delete { name }) => {
            client.network_delete(&name).await?;
            eprintln!("network {name} deleted");
        }
        Command::Address(Address::List { network }) => {
            let addresses = client.address_list(&network).await?;
            output::print_typed(&addresses, format, address_table);
        }
        Command::Address(Address::Allocate {
            network,
            owner,
            hostname,
            mac,
            address,
        }) => {
            let mac = mac
                .map(|m| {
                    m.parse::<MacAddr>()
                        .map_err(|e| Failure::Config(format!("{m:?} is not a MAC address: {e}")))
                })
                .transpose()?;
            let request = AddressRequest {
                owner,
                hostname,
                mac,
                address,
            };
            let a = client.address_allocate(&network, &request).await?;
            eprintln!("{} allocated on {network}", a.allocation.address);
            output::print_typed(&a, format, output::fields);
        }
        Command::Address(Address::Release { network, address }) => {
            client.address_release(&network, address).await?;
            eprintln!("{address} released on {network}");
        }
        Command::Profile(cmd) => return crate::net_switch::profile(target, cmd, format).await,
        Command::Port(cmd) => return crate::net_switch::port(target, cmd, format).await,
        Command::Lag(cmd) => return crate::net_switch::lag(target, cmd, format).await,
        Command::Switch(cmd) => return crate::net_switch::switch(target, cmd, format).await,
        Command::Plan { switch, exit_code } => {
            return crate::net_switch::plan(target, &switch, false, exit_code, format).await;
        }
        Command::Drift { switch, exit_code } => {
            return crate::net_switch::plan(target, &switch, true, exit_code, format).await;
        }
        Command::Render { switch, vendor } => {
            print!("{}", client.switch_render(&switch, &vendor).await?);
        }
        Command::Apply { switch } => {
            return crate::net_switch::apply(target, &switch, format).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The spec, built through its JSON form so the protocol's own parsing
/// (VLAN range, CIDR syntax, addresses) refuses before any call; the
/// agent checks the rest (host bits, gateway inside, overlaps).
fn spec(
    name: String,
    vlan: u16,
    purpose: Purpose,
    prefix: String,
    gateway: Option<IpAddr>,
    dhcp: bool,
    reserved: &[String],
) -> Result<NetworkSpec, Failure> {
    let purpose = match purpose {
        Purpose::Provisioning => "provisioning",
        Purpose::Management => "management",
        Purpose::Underlay => "underlay",
        Purpose::Tenant => "tenant",
        Purpose::Storage => "storage",
    };
    let reserved: Vec<Value> = reserved
        .iter()
        .map(|r| {
            let (first, last) = r.split_once('-').unwrap_or((r, r));
            json!({ "first": first.trim(), "last": last.trim() })
        })
        .collect();
    let body = json!({
        "name": name, "vlan": vlan, "purpose": purpose, "prefix": prefix,
        "gateway": gateway, "dhcp": dhcp, "reserved": reserved,
    });
    serde_json::from_value(body).map_err(|e| {
        Failure::Config(format!(
            "not a network: {e}\nhint: --prefix is a CIDR (10.20.0.0/24), --reserved FIRST-LAST or one address, --vlan 1-4094"
        ))
    })
}

fn network_table(v: &Value) -> Table {
    crate::tenancy::table(
        v,
        &["NAME", "VLAN", "PURPOSE", "PREFIX", "GATEWAY", "DHCP"],
        |n| {
            vec![
                output::cell(&n["name"]),
                output::cell(&n["vlan"]),
                output::cell(&n["purpose"]),
                output::cell(&n["prefix"]),
                output::cell(&n["gateway"]),
                if n["dhcp"] == true { "yes" } else { "no" }.to_owned(),
            ]
        },
    )
}

fn address_table(v: &Value) -> Table {
    crate::tenancy::table(v, &["ADDRESS", "HOSTNAME", "OWNER", "MAC"], |a| {
        vec![
            output::cell(&a["address"]),
            output::cell(&a["hostname"]),
            output::cell(&a["owner"]),
            output::cell(&a["mac"]),
        ]
    })
}
