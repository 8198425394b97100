//! The agent's configuration: one TOML file per site.
//!
//! The file describes the site's provisioning network and the names the agent
//! serves: site name and DNS domain, the management segment, DHCP subnets with
//! pools and reservations, management-zone hosts and services, the site zone's
//! aliases, upstream resolvers and where the agent keeps its data.
//! docs/config.md documents every field; `site-kits/examples/lab/agent.toml`
//! is a complete example.
//!
//! Loading is a pipeline, run by `load` ([`Config::from_file`],
//! [`Config::parse`]), one module per step:
//! 1. `locate`: parse the text once into toml's spanned tree, which later
//!    maps every problem's field path to a line and column;
//! 2. `wire`: serde types mirroring the file: unknown keys, wrong TOML types
//!    and missing keys stop here (serde reports the first one);
//! 3. `convert`: parse every value (addresses, names, durations; the
//!    parsers are in `values`) into the typed [`Config`], reporting every
//!    malformed value at once;
//! 4. `validate`: rules that relate fields to each other (pools inside their
//!    subnet, unique reservations, the DNS naming model of
//!    shared/seeds/management-plane.md), again reporting all of them.
//!
//! Step 4 runs only when step 3 found nothing, because relations between
//! values that did not parse would only produce noise.
//!
//! `boot` converts the `[boot]` and `[tftp]` sections (step 3 for them).
//!
//! `error` holds [`ConfigError`] and its compiler-style `Display`; `summary`
//! the text `dv-agent check-config` prints.
//!
//! The typed [`Config`] keeps the file's structure and order (vectors, not
//! maps), so a problem found on it can still name its field path.

mod api;
pub use api::token_digest;
mod boot;
mod convert;
mod error;
mod load;
mod locate;
mod nats;
mod summary;
mod switches;
pub use switches::{OvsdbRemote, Switch, SwitchDriverConfig};
mod talos;
mod validate;
mod values;
mod wire;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use dv_protocol::{MacAddr, SiteName};
use ipnet::{IpNet, Ipv4Net};

pub use error::{ConfigError, Problem};
pub use nats::leaf_url;

/// A validated site configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[site]`
    pub site: Site,
    /// `[http]`
    pub http: Http,
    /// `[management]`
    pub management: Management,
    /// `[dhcp]`
    pub dhcp: Dhcp,
    /// `[dns]`
    pub dns: Dns,
    /// `[boot]`
    pub boot: Boot,
    /// `[tftp]`
    pub tftp: Tftp,
    /// `[talos]`: Talos machine configs for provisioned machines; `None`
    /// when the section is absent (provisioning then leaves boot entries
    /// alone).
    pub talos: Option<Talos>,
    /// `[provision]`
    pub provision: Provision,
    /// `[nats]`: the site's leaf-node nats-server; `None` when the section
    /// is absent (no federation: events stay in the outbox).
    pub nats: Option<Nats>,
    /// `[api]`: who may call the `/v1` API.
    pub api: Api,
    /// `[[switches]]`: the switches the agent configures from the port
    /// intent.
    pub switches: Vec<Switch>,
}

/// `[api]`: who may call the `/v1` API (ADR 0013).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// Where the token came from (absolute).
    pub token_file: Option<PathBuf>,
    /// The token's SHA-256.
    pub token_sha256: Option<[u8; 32]>,
    /// OIDC users, when `issuer` is set.
    pub oidc: Option<ApiOidc>,
    /// What OIDC users may do: `platform_operators` and `viewers`, as
    /// platform-scope bindings.
    pub bindings: Vec<dv_protocol::auth::RoleBinding>,
    /// Requests per second per caller, steady.
    pub requests_per_second: u32,
    /// Requests per caller at once, before the steady rate applies.
    pub burst: u32,
}

impl Api {
    /// Whether any credential is configured; without one only callers on
    /// the agent's host are served.
    pub fn authenticates(&self) -> bool {
        self.token_sha256.is_some() || self.oidc.is_some()
    }
}

impl Default for Api {
    fn default() -> Self {
        Self {
            token_file: None,
            token_sha256: None,
            oidc: None,
            bindings: Vec::new(),
            requests_per_second: api::DEFAULT_RATE,
            burst: api::DEFAULT_BURST,
        }
    }
}

/// `[api] issuer` and friends: which OIDC tokens the agent accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiOidc {
    /// The issuer, as tokens carry it in `iss`.
    pub issuer: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// The claim naming the user (`email` by default).
    pub user_claim: String,
    /// Extra CA certificates (PEM) for the issuer's TLS.
    pub ca_pem: Option<Vec<u8>>,
}

/// Federation through the site's local leaf-node nats-server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nats {
    /// The leaf node's client listener (`nats.url`, `nats://<ip>:<port>`).
    pub client: SocketAddr,
    /// The site's JetStream domain (`nats.domain`, default the site name).
    pub domain: String,
    /// The hub's leaf-node URLs (`nats-leaf://host:port`), for
    /// `dv-agent nats-config`; empty means a standalone site server.
    pub hub: Vec<String>,
    /// How often the agent beats on `dv.<site>.site.hb`.
    pub heartbeat_interval: Duration,
    /// The leaf node's JetStream store (`nats.store_dir` under
    /// `site.data_dir`), for `dv-agent nats-config`.
    pub store_dir: PathBuf,
    /// The leaf node's NATS user on the hub (`nats.hub_user`,
    /// `nats.hub_password_file`), for `dv-agent nats-config`.
    pub hub_credentials: Option<HubCredentials>,
    /// TLS on the leaf link to the hub (`nats.hub_ca`, `nats.hub_cert`,
    /// `nats.hub_key`), for `dv-agent nats-config`.
    pub hub_tls: Option<HubTls>,
}

/// The site's NATS user on the hub's leaf-node listener (ADR 0012).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCredentials {
    /// `nats.hub_user`, default `site-<site>`.
    pub user: String,
    /// `nats.hub_password_file`, absolute; read when the leaf node's
    /// config is rendered, never kept in the agent.
    pub password_file: PathBuf,
}

/// TLS on the leaf link to the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubTls {
    /// `nats.hub_ca`: the hub CA the leaf node verifies the hub against.
    pub ca: PathBuf,
    /// `nats.hub_cert` and `nats.hub_key`: a client certificate, if any.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl Nats {
    /// The client URL, `nats://<ip>:<port>`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.client)
    }
}

/// How long provisioning waits on the machine itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provision {
    /// `await_install`: from the step's start to the installer's
    /// `stage=installed` callback.
    pub install_timeout: Duration,
    /// `await_wipe`: from the step's start to the wipe environment's
    /// `stage=wiped` callback.
    pub wipe_timeout: Duration,
}

impl Default for Provision {
    fn default() -> Self {
        Provision {
            install_timeout: Duration::from_secs(30 * 60),
            wipe_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Talos Linux: the cluster machines are installed into and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Talos {
    /// The cluster's name (`cluster.clusterName`); its secrets bundle is
    /// kept under this name.
    pub cluster_name: String,
    /// The Kubernetes API endpoint, `https://<host>:<port>`
    /// (`cluster.controlPlane.endpoint`).
    pub endpoint: String,
    /// The installer image (`machine.install.image`).
    pub install_image: String,
    /// The disk Talos installs to (`machine.install.disk`).
    pub install_disk: String,
    /// Whether the installer wipes the disk first (`machine.install.wipe`).
    pub wipe: bool,
    /// The Talos kernel, relative to `boot.artifacts_dir`.
    pub kernel: String,
    /// The Talos initramfs, relative to `boot.artifacts_dir`.
    pub initrd: String,
    /// `cluster.network.dnsDomain`.
    pub dns_domain: String,
    /// `cluster.network.podSubnets`.
    pub pod_subnets: Vec<IpNet>,
    /// `cluster.network.serviceSubnets`.
    pub service_subnets: Vec<IpNet>,
    /// `machine.network.nameservers`; empty: the ones DHCP hands out.
    pub nameservers: Vec<std::net::IpAddr>,
}

/// Network boot: where machines fetch scripts and artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// The base URL machines reach the agent's HTTP at, without a trailing
    /// slash; `http://<bootstrap_address>:<http.listen port>` unless set.
    pub http_url: String,
    /// The TFTP root with the iPXE binaries.
    pub firmware_dir: PathBuf,
    /// Kernels, initrds and images served under `/artifacts/`.
    pub artifacts_dir: PathBuf,
    /// What a machine with no boot entry boots into.
    pub default_state: crate::boot::BootState,
}

/// The TFTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tftp {
    /// Where it listens; `<bootstrap_address>:69` unless set.
    pub listen: SocketAddr,
    /// Whether it runs; by default only in bootstrap authority.
    pub enabled: bool,
}

/// Which system answers DNS and DHCP for the site (seed section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The agent serves DNS, DHCP and TFTP and holds the gateway address.
    Bootstrap,
    /// The core router is the authority; the agent's DNS and DHCP are off and
    /// it sits on its production address.
    Production,
}

/// The site's identity and where its state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The site token: NATS subjects, JetStream domain, site zone label.
    pub name: SiteName,
    /// The DNS domain; zones are `mgmt.<domain>` and `<site>.<domain>`.
    pub domain: String,
    /// The authority mode the agent starts in.
    pub authority: Authority,
    /// The data directory. A relative one in the file is resolved against
    /// the config file's directory and made absolute.
    pub data_dir: PathBuf,
}

/// The agent's HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    /// Address and port to listen on.
    pub listen: SocketAddr,
}

/// The management segment: the network the agent's own host sits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Management {
    /// Segment name, used in interface identities `<host>-<segment>`.
    pub segment: String,
    /// The Linux interface on the segment.
    pub interface: String,
    /// The segment's network.
    pub prefix: Ipv4Net,
    /// The segment's default gateway.
    pub gateway: Ipv4Addr,
    /// The address the agent holds in bootstrap authority (the gateway unless
    /// set).
    pub bootstrap_address: Ipv4Addr,
    /// The low reserved address the agent holds in production authority.
    pub production_address: Option<Ipv4Addr>,
    /// The `[[dns.hosts]]` entry that is the agent's own host.
    pub host: String,
}

/// The DHCP server's networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp {
    /// Subnets in file order.
    pub subnets: Vec<Subnet>,
}

/// One DHCP subnet, served directly on `interface` or through a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// The subnet's network.
    pub prefix: Ipv4Net,
    /// The directly attached interface; `None` for a subnet reached only
    /// through a relay agent (matched by giaddr).
    pub interface: Option<String>,
    /// Option 3.
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15; `<site>.<domain>` unless set.
    pub domain_name: String,
    /// Option 42.
    pub ntp_servers: Vec<Ipv4Addr>,
    /// Option 26.
    pub mtu: Option<u16>,
    /// Option 51.
    pub lease_time: Duration,
    /// Option 58 (T1).
    pub renew_time: Duration,
    /// Option 59 (T2).
    pub rebind_time: Duration,
    /// Option 121 (RFC 3442).
    pub classless_routes: Vec<Route>,
    /// Whether network-boot (PXE/iPXE) clients are answered with boot options.
    pub pxe: bool,
    /// Dynamic ranges.
    pub pools: Vec<Pool>,
    /// Fixed addresses.
    pub reservations: Vec<Reservation>,
}

impl Subnet {
    /// True when the subnet is reached only through a DHCP relay.
    pub fn is_relayed(&self) -> bool {
        self.interface.is_none()
    }
}

/// One classless static route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination network.
    pub destination: Ipv4Net,
    /// The next hop, on the subnet.
    pub gateway: Ipv4Addr,
}

/// An inclusive range of dynamically leased addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address (inclusive).
    pub end: Ipv4Addr,
}

impl Pool {
    /// Number of addresses in the pool.
    pub fn size(&self) -> u64 {
        (u64::from(u32::from(self.end)) + 1).saturating_sub(u64::from(u32::from(self.start)))
    }

    /// Whether `ip` is in the pool.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.start <= ip && ip <= self.end
    }
}

/// A fixed address for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// How the client is recognised.
    pub client: ClientKey,
    /// The address it always gets.
    pub ip: Ipv4Addr,
    /// Its name in the site zone and option 12, if any.
    pub hostname: Option<String>,
}

/// What identifies a reserved client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// The hardware address (chaddr).
    Mac(MacAddr),
    /// The client identifier, option 61, as raw octets.
    ClientId(Vec<u8>),
}

/// The DNS server: management zone, site zone and forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    /// Where the DNS server listens; `<bootstrap_address>:53` unless set.
    pub listen: Vec<SocketAddr>,
    /// Resolvers for names outside the site's zones.
    pub upstreams: Vec<SocketAddr>,
    /// TTL of the records the agent serves.
    pub ttl: Duration,
    /// Secondary servers sent a NOTIFY (RFC 1996) whenever a serial changes;
    /// each may also transfer the zones.
    pub secondaries: Vec<SocketAddr>,
    /// Further networks allowed to transfer the zones (AXFR/IXFR).
    pub allow_transfer: Vec<IpNet>,
    /// `mgmt.<domain>` hosts (A records).
    pub hosts: Vec<Host>,
    /// `mgmt.<domain>` services (CNAMEs to hosts).
    pub services: Vec<Service>,
    /// Services aliased into the site zone as `<service>.<site>.<domain>`.
    pub site_services: Vec<String>,
}

/// A management host: `<name>.mgmt.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The host label.
    pub name: String,
    /// The plain name's address: as written, or the only interface's address;
    /// `None` for a multi-homed host reachable only by interface identities.
    pub address: Option<Ipv4Addr>,
    /// The plain name's IPv6 addresses (AAAA records).
    pub ipv6: Vec<Ipv6Addr>,
    /// Interface identities `<name>-<segment>.mgmt.<domain>`.
    pub interfaces: Vec<HostInterface>,
}

impl Host {
    /// The interface identity label for `segment`: `<host>-<segment>`.
    pub fn identity(&self, segment: &str) -> String {
        format!("{}-{segment}", self.name)
    }
}

/// A host's address on one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInterface {
    /// The segment name.
    pub segment: String,
    /// The host's address there.
    pub address: Ipv4Addr,
}

/// A management service: `<name>.mgmt.<domain>`, a CNAME to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service label.
    pub name: String,
    /// The target: a host name or an interface identity `<host>-<segment>`.
    pub host: String,
}

impl Config {
    /// The management zone, `mgmt.<domain>`.
    pub fn mgmt_zone(&self) -> String {
        format!("{MGMT_LABEL}.{}", self.site.domain)
    }

    /// The site zone, `<site>.<domain>`.
    pub fn site_zone(&self) -> String {
        format!("{}.{}", self.site.name, self.site.domain)
    }
}

/// The management zone's label under the domain; no site may use it.
pub const MGMT_LABEL: &str = "mgmt";
