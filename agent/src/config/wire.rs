//! The configuration file as written: serde types that mirror the TOML.
//!
//! These types only check the file's *shape*: known keys
//! (`deny_unknown_fields`, so a typo is an error rather than a silently
//! ignored setting), TOML types and required keys. Addresses, names and
//! durations stay strings here and are parsed in `convert`, so one load reports
//! every malformed value in the file instead of stopping at the first, as a
//! serde error would. See docs/config.md for the meaning of each field.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub site: Site,
    #[serde(default)]
    pub http: Http,
    pub management: Management,
    #[serde(default)]
    pub dhcp: Dhcp,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub boot: Boot,
    #[serde(default)]
    pub tftp: Tftp,
    pub talos: Option<Talos>,
    #[serde(default)]
    pub provision: Provision,
    pub nats: Option<Nats>,
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub switches: Vec<Switch>,
}

/// `[[switches]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Switch {
    pub name: String,
    pub driver: String,
    pub bridge: String,
    pub ovsdb: Option<String>,
    pub drift_interval: Option<String>,
}

/// `[api]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Api {
    pub token_file: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub user_claim: Option<String>,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub platform_operators: Vec<String>,
    #[serde(default)]
    pub viewers: Vec<String>,
    pub requests_per_second: Option<u32>,
    pub burst: Option<u32>,
}

/// `[nats]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Nats {
    pub url: Option<String>,
    pub domain: Option<String>,
    #[serde(default)]
    pub hub: Vec<String>,
    pub heartbeat_interval: Option<String>,
    pub store_dir: Option<String>,
    pub hub_user: Option<String>,
    pub hub_password_file: Option<String>,
    pub hub_ca: Option<String>,
    pub hub_cert: Option<String>,
    pub hub_key: Option<String>,
}

/// `[provision]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Provision {
    pub install_timeout: Option<String>,
    pub wipe_timeout: Option<String>,
}

/// `[site]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Site {
    pub name: String,
    pub domain: String,
    pub authority: Authority,
    pub data_dir: String,
}

/// `site.authority`: serde's own error for an unknown variant already lists
/// the accepted values, so this one is an enum on the wire.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Authority {
    Bootstrap,
    Production,
}

/// `[http]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Http {
    pub listen: Option<String>,
}

/// `[management]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Management {
    pub segment: String,
    pub interface: String,
    pub prefix: String,
    pub gateway: String,
    pub bootstrap_address: Option<String>,
    pub production_address: Option<String>,
    pub host: String,
}

/// `[dhcp]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dhcp {
    #[serde(default)]
    pub subnets: Vec<Subnet>,
}

/// `[[dhcp.subnets]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Subnet {
    pub prefix: String,
    pub interface: Option<String>,
    pub router: Option<String>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    pub domain_name: Option<String>,
    #[serde(default)]
    pub ntp_servers: Vec<String>,
    // Wider than the valid range so that `mtu = 100000` gets this schema's
    // message ("576..=9216") instead of serde's "expected u16".
    pub mtu: Option<i64>,
    pub lease_time: Option<String>,
    pub renew_time: Option<String>,
    pub rebind_time: Option<String>,
    #[serde(default)]
    pub classless_routes: Vec<Route>,
    pub pxe: Option<bool>,
    #[serde(default)]
    pub pools: Vec<Pool>,
    #[serde(default)]
    pub reservations: Vec<Reservation>,
}

/// An entry of `classless_routes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Route {
    pub destination: String,
    pub gateway: String,
}

/// `[[dhcp.subnets.pools]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pool {
    pub start: String,
    pub end: String,
}

/// `[[dhcp.subnets.reservations]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reservation {
    pub mac: Option<String>,
    pub client_id: Option<String>,
    pub ip: String,
    pub hostname: Option<String>,
}

/// `[dns]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dns {
    pub listen: Option<Vec<String>>,
    #[serde(default)]
    pub upstreams: Vec<String>,
    pub ttl: Option<String>,
    #[serde(default)]
    pub secondaries: Vec<String>,
    #[serde(default)]
    pub allow_transfer: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<Host>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub site: SiteZone,
}

/// `[boot]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Boot {
    pub http_url: Option<String>,
    pub firmware_dir: Option<String>,
    pub artifacts_dir: Option<String>,
    pub default_state: Option<String>,
}

/// `[tftp]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tftp {
    pub listen: Option<String>,
    pub enabled: Option<bool>,
}

/// `[[dns.hosts]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Host {
    pub name: String,
    pub address: Option<String>,
    #[serde(default)]
    pub ipv6: Vec<String>,
    #[serde(default)]
    pub interfaces: Vec<HostInterface>,
}

/// An entry of a host's `interfaces`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostInterface {
    pub segment: String,
    pub address: String,
}

/// `[[dns.services]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Service {
    pub name: String,
    pub host: String,
}

/// `[dns.site]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteZone {
    #[serde(default)]
    pub services: Vec<String>,
}

/// `[talos]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Talos {
    pub cluster_name: String,
    pub endpoint: String,
    pub install_image: String,
    pub install_disk: Option<String>,
    pub wipe: Option<bool>,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub dns_domain: Option<String>,
    pub pod_subnets: Option<Vec<String>>,
    pub service_subnets: Option<Vec<String>>,
    pub nameservers: Option<Vec<String>>,
}
