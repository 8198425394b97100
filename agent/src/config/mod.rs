//! The agent's configuration: one TOML file per site.
//!
//! The file describes the site's provisioning network and the names the agent
//! serves: site name and DNS domain, the management segment, DHCP subnets with
//! pools and reservations, management-zone hosts and services, the site zone's
//! aliases, upstream resolvers and where the agent keeps its data.
//! docs/config.md documents every field; `site-kits/examples/lab/agent.toml`
//! is a complete example.
//!
//! Loading is a pipeline, one module per step:
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
//! `error` holds [`ConfigError`] and its compiler-style `Display`; `summary`
//! the text `dv-agent check-config` prints.
//!
//! The typed [`Config`] keeps the file's structure and order (vectors, not
//! maps), so a problem found on it can still name its field path.

mod convert;
mod error;
mod locate;
mod summary;
mod validate;
mod values;
mod wire;

#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dv_protocol::{MacAddr, SiteName};
use ipnet::Ipv4Net;
use serde::Deserialize;

pub use error::{ConfigError, Problem};

use error::Report;
use locate::Locator;

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
    /// The data directory, made absolute against the config file's directory
    /// when written relative.
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
    /// Reads and validates the file at `path`.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        match String::from_utf8(bytes) {
            Ok(text) => Config::parse(&text, path),
            Err(err) => {
                let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
                let valid = std::str::from_utf8(valid).unwrap_or_default();
                let (line, column) = Locator::text_only(valid).position(valid.len());
                Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    problems: vec![Problem {
                        line,
                        column,
                        field: String::new(),
                        message: "the file is not UTF-8 text, which TOML requires".into(),
                    }],
                })
            }
        }
    }

    /// Validates `text`; `path` names the file in errors, and a relative
    /// `data_dir` is resolved against its directory.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        };
        let table = match toml::de::DeTable::parse(text) {
            Ok(table) => table,
            Err(err) => return Err(invalid(vec![syntax_problem(text, &err)])),
        };
        let locator = Locator::new(text, &table);
        let wire = match wire::Config::deserialize(toml::de::Deserializer::from(table)) {
            Ok(wire) => wire,
            Err(err) => return Err(invalid(vec![shape_problem(&locator, &err)])),
        };

        let base_dir = path.parent().unwrap_or(Path::new(""));
        let mut report = Report::default();
        if let Some(config) = convert::convert(wire, base_dir, &mut report)
            && report.is_empty()
        {
            validate::validate(&config, &mut report);
            if report.is_empty() {
                return Ok(config);
            }
        }
        let mut problems: Vec<Problem> = (report.found.into_iter())
            .map(|(field, message)| locator.problem(field, message))
            .collect();
        if problems.is_empty() {
            // `convert` returns None only after reporting; keep that promise
            // visible rather than returning an error with no problems.
            problems.push(locator.problem(String::new(), "invalid configuration".into()));
        }
        problems.sort_by_key(|p| (p.line, p.column));
        Err(invalid(problems))
    }

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

/// A TOML syntax error: about text, so it has a position but no field.
fn syntax_problem(text: &str, err: &toml::de::Error) -> Problem {
    let offset = err.span().map_or(0, |span| span.start);
    let (line, column) = Locator::text_only(text).position(offset);
    Problem {
        line,
        column,
        field: String::new(),
        message: format!("TOML syntax: {}", err.message()),
    }
}

/// An unknown key, a wrong TOML type or a missing key, from serde.
fn shape_problem(locator: &Locator<'_>, err: &toml::de::Error) -> Problem {
    let offset = err.span().map_or(0, |span| span.start);
    let mut field = locator.path_at(offset).unwrap_or_default();
    // serde's message for a missing key names it, but the span is its table's
    // header: add the key so the field is the missing one, not its parent.
    let missing = (err.message().strip_prefix("missing field `"))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    if let Some(name) = missing {
        field = if field.is_empty() {
            name.to_owned()
        } else {
            format!("{field}.{name}")
        };
    }
    let (line, column) = locator.position(offset);
    Problem {
        line,
        column,
        field,
        message: toml_words(err.message()),
    }
}

/// serde speaks of maps, sequences, `i64` and struct names; an operator
/// editing TOML knows tables, arrays and integers.
fn toml_words(message: &str) -> String {
    let mut out = message
        .replace("invalid type: map", "invalid type: table")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("expected a sequence", "expected an array")
        .replace("floating point", "float")
        .replace("expected i64", "expected an integer");
    if let Some(at) = out.find("expected struct ") {
        out.replace_range(at.., "expected a table");
    }
    out
}
