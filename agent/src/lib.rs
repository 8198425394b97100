//! The Dataverket site agent.
//!
//! One agent runs on each site's provisioning host and owns that site's
//! provisioning network. Its system of record is a local SQLite database
//! ([`store`]); it must keep serving from that local state with the hub and the
//! uplink gone, so nothing in the serving path may depend on anything off-site.
//!
//! Code tour:
//! - [`config`]: the per-site TOML file, parsed then validated, with errors that
//!   name the file, line and field.
//! - [`store`]: SQLite in WAL mode; numbered migrations; one writer thread with
//!   group commit; read connections; the outbox.
//! - [`dhcp`]: the DHCPv4 server: leases, reservations, relays, PXE/iPXE.
//! - [`dns`]: authoritative zones built from config and store, forwarding,
//!   NOTIFY, and router exports for production authority.
//! - [`nett`]: network intent and IPAM: networks, address allocations with
//!   their DHCP reservations and DNS records, committed together; switch
//!   drivers (`nett::switch`: plan, apply with rollback, drift; Open vSwitch
//!   over OVSDB).
//! - [`http`]: the agent's HTTP listener (`/v1/health`, `/metrics`).
//! - [`telemetry`]: logging and metrics set-up.
//! - [`boot`]: boot states, iPXE scripts, path-safe file roots.
//! - [`tftp`]: read-only TFTP server for the boot firmware.
//! - [`talos`]: Talos machine configs and the cluster secrets bundle.
//! - [`federation`]: NATS: the outbox publisher, heartbeats, the command
//!   consumer, the leaf node's generated config.
//! - [`serve`]: wires the services together and runs them until SIGTERM.

pub mod bmc;
pub mod boot;
pub mod config;
pub mod dhcp;
pub mod dns;
pub mod federation;
pub mod http;
pub mod inventory;
pub mod nett;
pub mod provision;
pub mod serve;
pub mod store;
pub mod talos;
pub mod telemetry;
pub mod tftp;
pub mod udp_thread;
