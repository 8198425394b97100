//! Network intent and IPAM rows: networks with their prefix and reserved
//! ranges, address allocations and the DHCP reservations they carry.
//!
//! Every function takes the writer's (or a reader's) connection, so a caller
//! composes a network or an allocation with its DNS records and outbox
//! events in one [`super::Store::write`] transaction: all of it commits, or
//! (any step returning an error) none of it. Refusals are
//! [`StoreError::Ipam`] with an [`IpamError`] saying what to do.
//!
//! Why no address is ever handed out twice: the single writer runs one
//! transaction at a time, [`allocate`] picks the lowest free address inside
//! that transaction, and `UNIQUE (prefix_id, address)` makes the database
//! refuse a second owner even if a future caller got the choice wrong.
//!
//! An address a DHCP client holds an active lease on (`dhcp_lease`, state
//! `bound`, not expired) is not allocated to anyone else: the request is
//! refused (409) naming the holder and when its lease ends, and the
//! lowest-free pick skips it. The one exception is an allocation with the
//! lease holder's own MAC: that client moves from its lease to a
//! reservation. The check reads the lease table inside the allocation's
//! transaction; the DHCP server commits each lease before it answers, so a
//! lease bound before the allocation commits is seen.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dv_protocol::{
    Actor, AddressRange, Allocation, AllocationId, EventBody, IntentError, MacAddr, Network,
    NetworkId, NetworkName, NetworkPurpose, NetworkSpec, Prefix, PrefixId, SiteName,
};
use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::outbox::record_event as event;

/// The longest `owner` text accepted.
pub const MAX_OWNER: usize = 200;

/// Why IPAM refused a change. Nothing was changed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IpamError {
    /// The value is wrong on its own (a gateway outside its prefix).
    #[error("{0}")]
    Invalid(IntentError),
    /// The value clashes with what the site already has (a VLAN in use).
    #[error("{0}")]
    Conflict(IntentError),
    /// No network has this name.
    #[error("no network is named {name:?}")]
    UnknownNetwork {
        /// The name asked for.
        name: String,
    },
    /// The network still holds allocations.
    #[error(
        "network {name} still holds {count} allocated address(es); release them first \
         (DELETE /v1/networks/{name}/addresses/<ip>)"
    )]
    NetworkInUse {
        /// The network.
        name: String,
        /// How many allocations it holds.
        count: u64,
    },
    /// Every address of the prefix is allocated, reserved or the gateway.
    #[error(
        "network {network} has no free address left in {prefix}; release one or widen the \
         reserved ranges' complement"
    )]
    Exhausted {
        /// The network.
        network: String,
        /// Its prefix.
        prefix: IpNet,
    },
    /// A requested address is not allocatable (outside the prefix, the
    /// gateway, reserved, the network or broadcast address).
    #[error("address {address} cannot be allocated on network {network}: {reason}")]
    BadAddress {
        /// The network.
        network: String,
        /// The requested address.
        address: IpAddr,
        /// Why.
        reason: String,
    },
    /// A requested address already has an owner.
    #[error("address {address} on network {network} is already allocated (owner: {owner})")]
    AddressTaken {
        /// The network.
        network: String,
        /// The address.
        address: IpAddr,
        /// Who holds it.
        owner: String,
    },
    /// A field of the request is not acceptable.
    #[error("{field}: {reason}")]
    BadRequest {
        /// The field.
        field: &'static str,
        /// Why, and what to do.
        reason: String,
    },
    /// The host name is already published (by an allocation or the config).
    #[error("hostname {hostname} is already taken: {by}; pick another name")]
    HostnameTaken {
        /// The name.
        hostname: String,
        /// What holds it.
        by: String,
    },
    /// The NIC already has a reservation.
    #[error("MAC {mac} already has a DHCP reservation for {address}; release that first")]
    MacTaken {
        /// The NIC.
        mac: MacAddr,
        /// Its reserved address.
        address: IpAddr,
    },
    /// The NIC has a DHCP reservation in agent.toml, which wins over IPAM:
    /// an IPAM reservation for it would never be served.
    #[error(
        "MAC {mac} has a DHCP reservation for {address} in agent.toml \
         ([[dhcp.subnets.reservations]]), which wins over IPAM; allocate without this MAC \
         or remove that reservation from agent.toml"
    )]
    MacConfigReserved {
        /// The NIC.
        mac: MacAddr,
        /// The address agent.toml reserves for it.
        address: IpAddr,
    },
    /// The address is a DHCP reservation in agent.toml, which wins over IPAM.
    #[error(
        "address {address} on network {network} is reserved in agent.toml \
         ([[dhcp.subnets.reservations]], for {client}); pick another address or remove \
         that reservation from agent.toml"
    )]
    AddressConfigReserved {
        /// The network.
        network: String,
        /// The address.
        address: IpAddr,
        /// The client agent.toml reserves it for.
        client: String,
    },
    /// The address is not allocated on this network.
    #[error("address {address} is not allocated on network {network}")]
    NotAllocated {
        /// The network.
        network: String,
        /// The address.
        address: IpAddr,
    },
    /// A DHCP client holds an active lease on the address: allocating it to
    /// anyone else would hand one address to two hosts.
    #[error(
        "address {address} on network {network} is leased by DHCP to MAC {mac} until {until}; \
         pick another address, allocate it with that MAC (the client then moves to the \
         reservation), or wait until the lease ends"
    )]
    AddressLeased {
        /// The network.
        network: String,
        /// The address.
        address: IpAddr,
        /// The lease holder's NIC.
        mac: MacAddr,
        /// When the lease ends (RFC 3339, UTC).
        until: String,
    },
    /// A DHCP client declined the address (another host answers on it),
    /// so it is quarantined: allocating it would hand out an address in
    /// use.
    #[error(
        "address {address} on network {network} is quarantined until {until}: DHCP client \
         {mac} declined it because another host answers on it; find that host, or pick \
         another address"
    )]
    AddressQuarantined {
        /// The network.
        network: String,
        /// The address.
        address: IpAddr,
        /// The client that declined it.
        mac: MacAddr,
        /// When the quarantine ends (RFC 3339, UTC).
        until: String,
    },
}

/// A stored network: its ids and its intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkRow {
    /// The network's id.
    pub id: NetworkId,
    /// Its prefix's id.
    pub prefix_id: PrefixId,
    /// The intent.
    #[serde(flatten)]
    pub spec: NetworkSpec,
}

/// [`NetworkRow`]'s JSON, for the OpenAPI document: the spec's fields
/// spelled out, because `NetworkSpec`'s schema forbids other properties
/// (it is a request body with `deny_unknown_fields`), so an `allOf` of it
/// and the ids would match no row.
#[derive(utoipa::ToSchema)]
#[schema(as = NetworkRow)]
#[allow(dead_code)] // a schema only: never built
struct NetworkRowSchema {
    /// The network's id.
    id: NetworkId,
    /// Its prefix's id.
    prefix_id: PrefixId,
    /// Its short name, unique in the site.
    name: NetworkName,
    /// Its VLAN, unique in the site.
    vlan: dv_protocol::VlanId,
    /// What it carries.
    purpose: NetworkPurpose,
    /// Its IP prefix.
    #[schema(value_type = String, examples("10.20.0.0/24"))]
    prefix: String,
    /// The default gateway, inside `prefix`.
    #[schema(value_type = Option<String>, format = "ip", examples("10.20.0.1"))]
    gateway: Option<String>,
    /// Whether the agent serves DHCP on it.
    dhcp: bool,
    /// Ranges inside `prefix` that IPAM never hands out.
    reserved: Vec<AddressRange>,
}

impl utoipa::PartialSchema for NetworkRow {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        NetworkRowSchema::schema()
    }
}

impl utoipa::ToSchema for NetworkRow {
    fn name() -> std::borrow::Cow<'static, str> {
        NetworkRowSchema::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        NetworkRowSchema::schemas(schemas);
    }
}

/// What a caller asks of [`allocate`]. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateRequest {
    /// Who holds the address (free text).
    #[serde(default)]
    pub owner: Option<String>,
    /// A DNS label for the address in the site zone.
    #[serde(default)]
    pub hostname: Option<String>,
    /// A NIC to reserve the address for in DHCP.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// A specific address instead of the lowest free one.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = "ip", examples("10.20.0.10"))]
    pub address: Option<IpAddr>,
}

/// The DHCP reservation an allocation carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReservationRow {
    /// The NIC.
    pub mac: MacAddr,
    /// The address it always gets.
    #[schema(value_type = String, format = "ip")]
    pub ip: IpAddr,
    /// Its host name (option 12), if any.
    pub hostname: Option<String>,
}

/// A stored allocation with what hangs off it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AllocationRow {
    /// The allocation.
    #[serde(flatten)]
    pub allocation: Allocation,
    /// The id of its DNS A record's events, when it has a name.
    pub dns_record_id: Option<String>,
    /// Its DHCP reservation, when it has a MAC.
    pub dhcp_reservation: Option<ReservationRow>,
}

fn corrupt(what: &'static str, key: &str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        key: key.to_owned(),
        detail: detail.to_string(),
    }
}

fn purpose_text(p: NetworkPurpose) -> String {
    match serde_json::to_value(p) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{p:?}").to_ascii_lowercase(),
    }
}

/// A `network` row joined with its `prefix` row, as SQLite returns it.
type NetworkRaw = (
    String,
    String,
    i64,
    String,
    i64,
    String,
    String,
    Option<String>,
);

/// Every network, by name.
pub fn networks(conn: &Connection) -> Result<Vec<NetworkRow>, StoreError> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM network ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        if let Some(row) = network(conn, &n)? {
            out.push(row);
        }
    }
    Ok(out)
}

/// The network named `name`.
pub fn network(conn: &Connection, name: &str) -> Result<Option<NetworkRow>, StoreError> {
    let row: Option<NetworkRaw> = conn
        .prepare_cached(
            "SELECT n.id, n.name, n.vlan, n.purpose, n.dhcp, p.id, p.cidr, p.gateway
             FROM network n JOIN prefix p ON p.network_id = n.id WHERE n.name = ?1",
        )?
        .query_row([name], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .optional()?;
    let Some((id, name, vlan, purpose, dhcp, prefix_id, cidr, gateway)) = row else {
        return Ok(None);
    };
    let c = |d: String| corrupt("network", &name, d);
    let reserved = conn
        .prepare_cached(
            "SELECT first, last FROM reserved_range WHERE prefix_id = ?1 ORDER BY rowid",
        )?
        .query_map([&prefix_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(f, l)| {
            Ok(AddressRange {
                first: f
                    .parse()
                    .map_err(|e: std::net::AddrParseError| c(e.to_string()))?,
                last: l
                    .parse()
                    .map_err(|e: std::net::AddrParseError| c(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(NetworkRow {
        id: id
            .parse()
            .map_err(|e: dv_protocol::IdError| c(e.to_string()))?,
        prefix_id: prefix_id
            .parse()
            .map_err(|e: dv_protocol::IdError| c(e.to_string()))?,
        spec: NetworkSpec {
            name: NetworkName::new(&name).map_err(|e| c(e.to_string()))?,
            vlan: u16::try_from(vlan)
                .ok()
                .and_then(|v| dv_protocol::VlanId::new(v).ok())
                .ok_or_else(|| c(format!("vlan {vlan}")))?,
            purpose: serde_json::from_value(serde_json::Value::String(purpose))
                .map_err(|e| c(e.to_string()))?,
            prefix: cidr
                .parse()
                .map_err(|e: ipnet::AddrParseError| c(e.to_string()))?,
            gateway: gateway
                .map(|g| g.parse())
                .transpose()
                .map_err(|e: std::net::AddrParseError| c(e.to_string()))?,
            dhcp: dhcp != 0,
            reserved,
        },
    }))
}

/// Creates a network from `spec` after checking it on its own (422) and
/// against the site's other networks (409), with its `NetworkCreated` and
/// `PrefixAdded` events.
pub fn network_create(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    spec: &NetworkSpec,
) -> Result<NetworkRow, StoreError> {
    IntentError::check(spec.check(&[])).map_err(IpamError::Invalid)?;
    let others: Vec<NetworkSpec> = networks(conn)?.into_iter().map(|n| n.spec).collect();
    IntentError::check(spec.check(&others)).map_err(IpamError::Conflict)?;
    let id = NetworkId::new();
    let prefix = Prefix::new(PrefixId::new(), id, spec.prefix, spec.gateway).map_err(|e| {
        IpamError::BadRequest {
            field: "prefix",
            reason: e.to_string(),
        }
    })?;
    conn.prepare_cached(
        "INSERT INTO network (id, name, vlan, purpose, dhcp, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        id.to_string(),
        spec.name.as_str(),
        spec.vlan.get(),
        purpose_text(spec.purpose),
        spec.dhcp,
        super::now_nanos()
    ])?;
    conn.prepare_cached(
        "INSERT INTO prefix (id, network_id, cidr, gateway) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        prefix.id.to_string(),
        id.to_string(),
        prefix.cidr.to_string(),
        prefix.gateway.map(|g| g.to_string())
    ])?;
    for r in &spec.reserved {
        conn.prepare_cached(
            "INSERT INTO reserved_range (prefix_id, first, last) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            prefix.id.to_string(),
            r.first.to_string(),
            r.last.to_string()
        ])?;
    }
    event(
        conn,
        site,
        actor,
        EventBody::NetworkCreated {
            network: Network {
                id,
                site: site.clone(),
                name: spec.name.clone(),
                vlan: spec.vlan,
                purpose: spec.purpose,
                prefixes: vec![prefix.id],
            },
        },
    )?;
    let prefix_id = prefix.id;
    event(conn, site, actor, EventBody::PrefixAdded { prefix })?;
    Ok(NetworkRow {
        id,
        prefix_id,
        spec: spec.clone(),
    })
}

/// Deletes the network `name`; refused while it holds allocations.
pub fn network_delete(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    name: &str,
) -> Result<NetworkRow, StoreError> {
    let row = network(conn, name)?.ok_or_else(|| IpamError::UnknownNetwork {
        name: name.to_owned(),
    })?;
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM allocation WHERE prefix_id = ?1")?
        .query_row([row.prefix_id.to_string()], |r| r.get(0))?;
    if count > 0 {
        return Err(IpamError::NetworkInUse {
            name: name.to_owned(),
            count: count.unsigned_abs(),
        }
        .into());
    }
    conn.prepare_cached("DELETE FROM network WHERE id = ?1")?
        .execute([row.id.to_string()])?;
    event(
        conn,
        site,
        actor,
        EventBody::NetworkDeleted {
            network: row.id,
            name: row.spec.name.clone(),
        },
    )?;
    Ok(row)
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(v6: bool, n: u128) -> Option<IpAddr> {
    if v6 {
        Some(IpAddr::V6(Ipv6Addr::from(n)))
    } else {
        u32::try_from(n).ok().map(|n| IpAddr::V4(Ipv4Addr::from(n)))
    }
}

/// The first and last address IPAM may hand out in `net`: not the IPv4
/// network and broadcast addresses (RFC 3021 /31 and /32 have none), and not
/// the IPv6 subnet-router anycast address (RFC 4291 section 2.6.1).
fn host_range(net: IpNet) -> (u128, u128) {
    let (first, last) = (to_u128(net.network()), to_u128(net.broadcast()));
    match net {
        IpNet::V4(n) if n.prefix_len() >= 31 => (first, last),
        IpNet::V6(n) if n.prefix_len() == 128 => (first, last),
        IpNet::V4(_) => (first + 1, last - 1),
        IpNet::V6(_) => (first + 1, last),
    }
}

/// Why `ip` cannot be handed out on `net`, if it cannot.
fn not_allocatable(row: &NetworkRow, ip: IpAddr) -> Option<String> {
    let net = row.spec.prefix;
    if !net.contains(&ip) {
        return Some(format!("it is outside the network's prefix {net}"));
    }
    let (first, last) = host_range(net);
    let n = to_u128(ip);
    if n < first || n > last {
        return Some(format!("it is the network or broadcast address of {net}"));
    }
    if row.spec.gateway == Some(ip) {
        return Some("it is the network's gateway".to_owned());
    }
    if let Some(r) = row.spec.reserved.iter().find(|r| r.contains(ip)) {
        return Some(format!("it is in the reserved range {r}"));
    }
    None
}

/// The lowest address of `row` that is not taken, reserved or the gateway.
/// Walks the host range once, jumping over reserved ranges, so it costs at
/// most (allocations + reserved ranges + 1) steps.
fn lowest_free(row: &NetworkRow, taken: &HashSet<IpAddr>) -> Option<IpAddr> {
    let v6 = row.spec.prefix.network().is_ipv6();
    let (first, last) = host_range(row.spec.prefix);
    let mut n = first;
    while n <= last {
        let ip = from_u128(v6, n)?;
        if let Some(r) = row.spec.reserved.iter().find(|r| r.contains(ip)) {
            n = to_u128(r.last).checked_add(1)?;
            continue;
        }
        if row.spec.gateway != Some(ip) && !taken.contains(&ip) {
            return Some(ip);
        }
        n = n.checked_add(1)?;
    }
    None
}

fn taken(conn: &Connection, prefix: &PrefixId) -> Result<HashSet<IpAddr>, StoreError> {
    conn.prepare_cached("SELECT address FROM allocation WHERE prefix_id = ?1")?
        .query_map([prefix.to_string()], |r| r.get::<_, String>(0))?
        .map(|a| {
            let a = a?;
            a.parse()
                .map_err(|e: std::net::AddrParseError| corrupt("allocation", &a, e))
        })
        .collect()
}

fn check_request(req: &AllocateRequest) -> Result<(), IpamError> {
    if let Some(owner) = &req.owner
        && (owner.len() > MAX_OWNER || owner.chars().any(char::is_control))
    {
        return Err(IpamError::BadRequest {
            field: "owner",
            reason: format!("use at most {MAX_OWNER} characters without control characters"),
        });
    }
    if let Some(h) = &req.hostname {
        dv_protocol::validate_token("hostname", h).map_err(|e| IpamError::BadRequest {
            field: "hostname",
            reason: format!(
                "{e}; a hostname is one DNS label, published as <hostname>.<site zone>"
            ),
        })?;
    }
    Ok(())
}

/// A DHCP reservation made outside IPAM (agent.toml's
/// `[[dhcp.subnets.reservations]]`). These win over IPAM, so [`allocate`]
/// neither hands out their addresses nor reserves their MACs again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedReservation {
    /// The reserved address.
    pub ip: IpAddr,
    /// The NIC, when the reservation is keyed by MAC (not client id).
    pub mac: Option<MacAddr>,
    /// Who it is for, for messages ("MAC 52:54:..", "client id 01:..").
    pub client: String,
}

/// Allocates an address on network `network`: the requested one, else the
/// lowest free one; with its DHCP reservation when a MAC is given, and the
/// `AddressAllocated` event. DNS records are the caller's part of the same
/// transaction (see `crate::nett`).
pub fn allocate(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    network: &str,
    req: &AllocateRequest,
) -> Result<AllocationRow, StoreError> {
    allocate_beside(conn, site, actor, network, req, &[])
}

/// [`allocate`], refusing (409) a MAC or address that `fixed` reserves and
/// never picking a `fixed` address as the lowest free one.
pub fn allocate_beside(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    network: &str,
    req: &AllocateRequest,
    fixed: &[FixedReservation],
) -> Result<AllocationRow, StoreError> {
    check_request(req)?;
    if let Some(mac) = req.mac
        && let Some(f) = fixed.iter().find(|f| f.mac == Some(mac))
    {
        return Err(IpamError::MacConfigReserved { mac, address: f.ip }.into());
    }
    if let Some(ip) = req.address
        && let Some(f) = fixed.iter().find(|f| f.ip == ip)
    {
        return Err(IpamError::AddressConfigReserved {
            network: network.to_owned(),
            address: ip,
            client: f.client.clone(),
        }
        .into());
    }
    let row = self::network(conn, network)?.ok_or_else(|| IpamError::UnknownNetwork {
        name: network.to_owned(),
    })?;
    if let Some(h) = &req.hostname {
        let by: Option<String> = conn
            .prepare_cached("SELECT address FROM allocation WHERE hostname = ?1")?
            .query_row([h], |r| r.get(0))
            .optional()?;
        if let Some(by) = by {
            return Err(IpamError::HostnameTaken {
                hostname: h.clone(),
                by: format!("allocation of {by}"),
            }
            .into());
        }
    }
    if let Some(mac) = &req.mac {
        let held: Option<String> = conn
            .prepare_cached("SELECT ip FROM dhcp_reservation WHERE mac = ?1")?
            .query_row([mac.to_string()], |r| r.get(0))
            .optional()?;
        if let Some(held) = held {
            return Err(IpamError::MacTaken {
                mac: *mac,
                address: held
                    .parse()
                    .map_err(|e: std::net::AddrParseError| corrupt("dhcp_reservation", &held, e))?,
            }
            .into());
        }
    }
    let mut taken = taken(conn, &row.prefix_id)?;
    let allocated = taken.clone();
    // Config reservations count as taken for the lowest-free pick only.
    taken.extend(fixed.iter().map(|f| f.ip));
    // Addresses other clients lease: never picked, and refused when asked
    // for. The requester's own lease is not in the way; a quarantined
    // address is, for everyone (some other host answers on it).
    let leased: Vec<ActiveLease> = active_leases(conn, row.spec.prefix)?
        .into_iter()
        .filter(|l| l.declined || Some(l.mac) != req.mac)
        .collect();
    taken.extend(leased.iter().map(|l| l.ip));
    let address = match req.address {
        Some(ip) => {
            if let Some(reason) = not_allocatable(&row, ip) {
                return Err(IpamError::BadAddress {
                    network: network.to_owned(),
                    address: ip,
                    reason,
                }
                .into());
            }
            if allocated.contains(&ip) {
                let owner: Option<String> = conn
                    .prepare_cached(
                        "SELECT coalesce(owner, hostname, id) FROM allocation
                         WHERE prefix_id = ?1 AND address = ?2",
                    )?
                    .query_row(params![row.prefix_id.to_string(), ip.to_string()], |r| {
                        r.get(0)
                    })
                    .optional()?;
                return Err(IpamError::AddressTaken {
                    network: network.to_owned(),
                    address: ip,
                    owner: owner.unwrap_or_default(),
                }
                .into());
            }
            if let Some(l) = leased.iter().find(|l| l.ip == ip && l.declined) {
                return Err(IpamError::AddressQuarantined {
                    network: network.to_owned(),
                    address: ip,
                    mac: l.mac,
                    until: l.until.clone(),
                }
                .into());
            }
            if let Some(l) = leased.iter().find(|l| l.ip == ip) {
                return Err(IpamError::AddressLeased {
                    network: network.to_owned(),
                    address: ip,
                    mac: l.mac,
                    until: l.until.clone(),
                }
                .into());
            }
            ip
        }
        None => lowest_free(&row, &taken).ok_or_else(|| IpamError::Exhausted {
            network: network.to_owned(),
            prefix: row.spec.prefix,
        })?,
    };
    let allocation = Allocation {
        id: AllocationId::new(),
        network: row.id,
        prefix: row.prefix_id,
        address,
        owner: req.owner.clone(),
        hostname: req.hostname.clone(),
        mac: req.mac,
    };
    conn.prepare_cached(
        "INSERT INTO allocation (id, prefix_id, address, owner, hostname, mac, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        allocation.id.to_string(),
        row.prefix_id.to_string(),
        address.to_string(),
        allocation.owner,
        allocation.hostname,
        allocation.mac.map(|m| m.to_string()),
        super::now_nanos()
    ])?;
    let dhcp_reservation = match req.mac {
        Some(mac) => {
            conn.prepare_cached(
                "INSERT INTO dhcp_reservation (allocation_id, mac, ip, hostname)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                allocation.id.to_string(),
                mac.to_string(),
                address.to_string(),
                allocation.hostname
            ])?;
            Some(ReservationRow {
                mac,
                ip: address,
                hostname: allocation.hostname.clone(),
            })
        }
        None => None,
    };
    event(
        conn,
        site,
        actor,
        EventBody::AddressAllocated {
            allocation: allocation.clone(),
        },
    )?;
    Ok(AllocationRow {
        allocation,
        dns_record_id: None,
        dhcp_reservation,
    })
}

/// A DHCP lease that holds its address now.
#[derive(Debug)]
struct ActiveLease {
    ip: IpAddr,
    mac: MacAddr,
    /// Declined and quarantined, rather than bound.
    declined: bool,
    /// When it ends, RFC 3339.
    until: String,
}

/// The active DHCP leases (bound, or declined and quarantined; not
/// expired) on addresses inside `prefix`, from the agent's lease table.
fn active_leases(conn: &Connection, prefix: IpNet) -> Result<Vec<ActiveLease>, StoreError> {
    let now = super::now_nanos();
    let mut st = conn.prepare_cached(
        "SELECT ip, mac, expires, state FROM dhcp_lease
         WHERE state IN ('bound', 'declined') AND expires > ?1",
    )?;
    let rows = st.query_map([now], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (ip, mac, expires, state) = row?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|e: std::net::AddrParseError| corrupt("dhcp_lease", &ip, e))?;
        if !prefix.contains(&ip) {
            continue;
        }
        let mac: MacAddr = mac
            .parse()
            .map_err(|e| corrupt("dhcp_lease", &ip.to_string(), format!("mac {mac}: {e}")))?;
        let until = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires))
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| format!("{expires} ns after the epoch"));
        out.push(ActiveLease {
            ip,
            mac,
            declined: state == "declined",
            until,
        });
    }
    Ok(out)
}

/// Records the id of the allocation's DNS A record (its events carry it).
pub fn set_dns_record(
    conn: &Connection,
    allocation: &AllocationId,
    record: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE allocation SET dns_record_id = ?2 WHERE id = ?1")?
        .execute(params![allocation.to_string(), record])?;
    Ok(())
}

/// Releases `address` on `network`: the allocation and its DHCP reservation
/// go, with the `AddressReleased` event. Returns what was removed.
pub fn release(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    network: &str,
    address: IpAddr,
) -> Result<AllocationRow, StoreError> {
    let row = self::network(conn, network)?.ok_or_else(|| IpamError::UnknownNetwork {
        name: network.to_owned(),
    })?;
    let gone = allocations(conn, &row)?
        .into_iter()
        .find(|a| a.allocation.address == address)
        .ok_or_else(|| IpamError::NotAllocated {
            network: network.to_owned(),
            address,
        })?;
    // The reservation goes by ON DELETE CASCADE; deleted explicitly too so
    // the rule does not hang on the foreign_keys pragma alone.
    conn.prepare_cached("DELETE FROM dhcp_reservation WHERE allocation_id = ?1")?
        .execute([gone.allocation.id.to_string()])?;
    conn.prepare_cached("DELETE FROM allocation WHERE id = ?1")?
        .execute([gone.allocation.id.to_string()])?;
    event(
        conn,
        site,
        actor,
        EventBody::AddressReleased {
            allocation: gone.allocation.id,
            network: row.id,
            address,
        },
    )?;
    Ok(gone)
}

/// Every allocation of `row`'s prefix, in address order.
pub fn allocations(conn: &Connection, row: &NetworkRow) -> Result<Vec<AllocationRow>, StoreError> {
    type Raw = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let raw: Vec<Raw> = conn
        .prepare_cached(
            "SELECT id, address, owner, hostname, mac, dns_record_id
             FROM allocation WHERE prefix_id = ?1",
        )?
        .query_map([row.prefix_id.to_string()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(raw.len());
    for (id, address, owner, hostname, mac, dns_record_id) in raw {
        let c = |d: String| corrupt("allocation", &id, d);
        let address: IpAddr = address
            .parse()
            .map_err(|e: std::net::AddrParseError| c(e.to_string()))?;
        let mac: Option<MacAddr> = mac
            .map(|m| m.parse())
            .transpose()
            .map_err(|e: dv_protocol::MacParseError| c(e.to_string()))?;
        let dhcp_reservation = mac.map(|mac| ReservationRow {
            mac,
            ip: address,
            hostname: hostname.clone(),
        });
        // The reservation row is the DHCP server's truth; an allocation
        // whose MAC lost its row would be a bug, so say so instead of hiding it.
        if let Some(r) = &dhcp_reservation {
            let present: Option<String> = conn
                .prepare_cached("SELECT ip FROM dhcp_reservation WHERE allocation_id = ?1")?
                .query_row([&id], |row| row.get(0))
                .optional()?;
            if present.as_deref() != Some(r.ip.to_string().as_str()) {
                return Err(c("its DHCP reservation row is missing".to_owned()));
            }
        }
        out.push(AllocationRow {
            allocation: Allocation {
                id: id
                    .parse()
                    .map_err(|e: dv_protocol::IdError| c(e.to_string()))?,
                network: row.id,
                prefix: row.prefix_id,
                address,
                owner,
                hostname,
                mac,
            },
            dns_record_id,
            dhcp_reservation,
        });
    }
    out.sort_by_key(|a| to_u128(a.allocation.address));
    Ok(out)
}

/// Every named IPv4 allocation: (hostname, address), for the DNS records.
pub fn named_v4(conn: &Connection) -> Result<Vec<(String, Ipv4Addr)>, StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached("SELECT hostname, address FROM allocation WHERE hostname IS NOT NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .filter_map(|(h, a)| match a.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => Some(Ok((h, v4))),
            Ok(IpAddr::V6(_)) => None,
            Err(e) => Some(Err(corrupt("allocation", &a, e))),
        })
        .collect()
}

/// An IPAM DHCP reservation with the network it belongs to, for the DHCP
/// server's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedReservation {
    /// The NIC, its address and host name.
    pub reservation: ReservationRow,
    /// Its network's prefix.
    pub prefix: IpNet,
    /// Whether its network has DHCP on.
    pub dhcp: bool,
}

/// Every DHCP reservation IPAM made, with its network's prefix and DHCP
/// switch: what the DHCP server serves (see `crate::dhcp::reservations`).
pub fn served_reservations(conn: &Connection) -> Result<Vec<ServedReservation>, StoreError> {
    let rows: Vec<(String, String, Option<String>, String, i64)> = conn
        .prepare_cached(
            "SELECT r.mac, r.ip, r.hostname, p.cidr, n.dhcp
             FROM dhcp_reservation r
             JOIN allocation a ON a.id = r.allocation_id
             JOIN prefix p ON p.id = a.prefix_id
             JOIN network n ON n.id = p.network_id
             ORDER BY r.mac",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(m, ip, hostname, cidr, dhcp)| {
            let c = |d: String| corrupt("dhcp_reservation", &m, d);
            Ok(ServedReservation {
                reservation: ReservationRow {
                    mac: m
                        .parse()
                        .map_err(|e: dv_protocol::MacParseError| c(e.to_string()))?,
                    ip: ip
                        .parse()
                        .map_err(|e: std::net::AddrParseError| c(e.to_string()))?,
                    hostname,
                },
                prefix: cidr
                    .parse()
                    .map_err(|e: ipnet::AddrParseError| c(e.to_string()))?,
                dhcp: dhcp != 0,
            })
        })
        .collect()
}

/// Every DHCP reservation IPAM made: (MAC, address, hostname).
pub fn reservations(conn: &Connection) -> Result<Vec<ReservationRow>, StoreError> {
    let rows: Vec<(String, String, Option<String>)> = conn
        .prepare_cached("SELECT mac, ip, hostname FROM dhcp_reservation ORDER BY mac")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(m, ip, hostname)| {
            Ok(ReservationRow {
                mac: m
                    .parse()
                    .map_err(|e: dv_protocol::MacParseError| corrupt("dhcp_reservation", &m, e))?,
                ip: ip
                    .parse()
                    .map_err(|e: std::net::AddrParseError| corrupt("dhcp_reservation", &ip, e))?,
                hostname,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use dv_protocol::{NetworkPurpose, VlanId};
    use proptest::prelude::*;

    use super::*;
    use crate::store::Store;

    fn site() -> SiteName {
        SiteName::new("lab").unwrap()
    }

    fn spec(name: &str, vlan: u16, prefix: &str) -> NetworkSpec {
        NetworkSpec {
            name: NetworkName::new(name).unwrap(),
            vlan: VlanId::new(vlan).unwrap(),
            purpose: NetworkPurpose::Tenant,
            prefix: prefix.parse().unwrap(),
            gateway: Some("10.9.0.1".parse().unwrap()),
            dhcp: true,
            reserved: vec![AddressRange {
                first: "10.9.0.2".parse().unwrap(),
                last: "10.9.0.9".parse().unwrap(),
            }],
        }
    }

    async fn create(store: &Store, s: NetworkSpec) -> Result<NetworkRow, StoreError> {
        store
            .write(move |c| network_create(c, &site(), &Actor::agent(&site()), &s))
            .await
    }

    async fn alloc(store: &Store, req: AllocateRequest) -> Result<AllocationRow, StoreError> {
        store
            .write(move |c| allocate(c, &site(), &Actor::agent(&site()), "t", &req))
            .await
    }

    #[tokio::test]
    async fn lowest_free_skips_gateway_and_reserved_and_reuses_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        create(&store, spec("t", 10, "10.9.0.0/28")).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(
                alloc(&store, AllocateRequest::default())
                    .await
                    .unwrap()
                    .allocation
                    .address
                    .to_string(),
            );
        }
        // .0 network, .1 gateway, .2-.9 reserved, .15 broadcast.
        assert_eq!(
            got,
            [
                "10.9.0.10",
                "10.9.0.11",
                "10.9.0.12",
                "10.9.0.13",
                "10.9.0.14"
            ]
        );
        let full = alloc(&store, AllocateRequest::default()).await.unwrap_err();
        assert!(
            matches!(full, StoreError::Ipam(IpamError::Exhausted { .. })),
            "{full}"
        );
        store
            .write(|c| {
                release(
                    c,
                    &site(),
                    &Actor::agent(&site()),
                    "t",
                    "10.9.0.12".parse().unwrap(),
                )
            })
            .await
            .unwrap();
        let again = alloc(&store, AllocateRequest::default()).await.unwrap();
        assert_eq!(again.allocation.address.to_string(), "10.9.0.12");
        store.close().await;
    }

    #[tokio::test]
    async fn a_quarantined_address_is_skipped_and_refused_to_everyone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        create(&store, spec("t", 10, "10.9.0.0/28")).await.unwrap();
        let hour = 3_600_000_000_000_i64;
        store
            .write(move |c| {
                let now = crate::store::now_nanos();
                c.execute(
                    "INSERT INTO dhcp_lease (ip, id, prefix, mac, state, starts, expires, updated_at)
                     VALUES ('10.9.0.10', ?1, '10.9.0.0/28', '52:54:00:00:00:0a', 'declined', ?2, ?3, ?2)",
                    params![dv_protocol::LeaseId::new().to_string(), now, now + hour],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let picked = alloc(&store, AllocateRequest::default()).await.unwrap();
        assert_eq!(picked.allocation.address.to_string(), "10.9.0.11");
        for mac in [None, Some("52:54:00:00:00:0a")] {
            let req = AllocateRequest {
                address: Some("10.9.0.10".parse().unwrap()),
                mac: mac.map(|m| m.parse().unwrap()),
                ..AllocateRequest::default()
            };
            let e = alloc(&store, req).await.unwrap_err();
            assert!(
                matches!(&e, StoreError::Ipam(IpamError::AddressQuarantined { .. })),
                "{e}"
            );
            assert!(e.to_string().contains("another host answers on it"), "{e}");
        }
        store.close().await;
    }

    #[tokio::test]
    async fn an_actively_leased_address_is_skipped_and_refused_but_to_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        create(&store, spec("t", 10, "10.9.0.0/28")).await.unwrap();
        let hour = 3_600_000_000_000_i64;
        store
            .write(move |c| {
                let now = crate::store::now_nanos();
                for (ip, mac, state, expires) in [
                    // Active: in the way.
                    ("10.9.0.10", "52:54:00:00:00:0a", "bound", now + hour),
                    // Expired, released: free.
                    ("10.9.0.11", "52:54:00:00:00:0b", "bound", now - hour),
                    ("10.9.0.12", "52:54:00:00:00:0c", "released", now + hour),
                    // Outside the network: none of its business.
                    ("10.8.0.10", "52:54:00:00:00:0d", "bound", now + hour),
                ] {
                    c.execute(
                        "INSERT INTO dhcp_lease (ip, id, prefix, mac, state, starts, expires, updated_at)
                         VALUES (?1, ?2, '10.9.0.0/28', ?3, ?4, ?5, ?6, ?5)",
                        params![ip, dv_protocol::LeaseId::new().to_string(), mac, state, now, expires],
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let picked = alloc(&store, AllocateRequest::default()).await.unwrap();
        assert_eq!(picked.allocation.address.to_string(), "10.9.0.11");

        let ask = |mac: Option<&str>| AllocateRequest {
            address: Some("10.9.0.10".parse().unwrap()),
            mac: mac.map(|m| m.parse().unwrap()),
            ..AllocateRequest::default()
        };
        for req in [ask(None), ask(Some("52:54:00:00:00:99"))] {
            let e = alloc(&store, req).await.unwrap_err();
            let StoreError::Ipam(IpamError::AddressLeased { mac, until, .. }) = &e else {
                panic!("{e}");
            };
            assert_eq!(mac.to_string(), "52:54:00:00:00:0a");
            let msg = e.to_string();
            assert!(
                msg.contains("52:54:00:00:00:0a") && msg.contains(until.as_str()),
                "{msg}"
            );
            assert!(until.contains('T'), "RFC 3339: {until}");
        }
        let n: i64 = store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM allocation", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 1, "refusals store nothing");
        // Its holder moves to a reservation of it.
        let own = alloc(&store, ask(Some("52:54:00:00:00:0a"))).await.unwrap();
        assert_eq!(own.allocation.address.to_string(), "10.9.0.10");
        assert!(own.dhcp_reservation.is_some());
        store.close().await;
    }

    #[tokio::test]
    async fn refusals_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        create(&store, spec("t", 10, "10.9.0.0/24")).await.unwrap();
        let outbox_before = store
            .read(crate::store::outbox::pending_count)
            .await
            .unwrap();
        // Clashes with the site's networks are conflicts, naming the field.
        let mut clash = spec("u", 10, "10.9.0.128/25");
        clash.gateway = None;
        clash.reserved.clear();
        let StoreError::Ipam(IpamError::Conflict(e)) = create(&store, clash).await.unwrap_err()
        else {
            panic!("expected a conflict");
        };
        let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["vlan", "prefix"]);
        // A wrong value on its own is invalid.
        let mut bad = spec("v", 11, "10.10.0.0/24");
        bad.reserved.clear();
        assert!(matches!(
            create(&store, bad).await.unwrap_err(),
            StoreError::Ipam(IpamError::Invalid(_))
        ));
        // Requests for taken or unallocatable addresses.
        let mac: MacAddr = "52:54:00:00:00:01".parse().unwrap();
        let first = alloc(
            &store,
            AllocateRequest {
                mac: Some(mac),
                hostname: Some("node-1".into()),
                ..AllocateRequest::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(first.dhcp_reservation.as_ref().unwrap().mac, mac);
        let after_first = store
            .read(crate::store::outbox::pending_count)
            .await
            .unwrap();
        for (req, want) in [
            (
                AllocateRequest {
                    mac: Some(mac),
                    ..Default::default()
                },
                "already has a DHCP reservation",
            ),
            (
                AllocateRequest {
                    hostname: Some("node-1".into()),
                    ..Default::default()
                },
                "already taken",
            ),
            (
                AllocateRequest {
                    address: Some("10.9.0.5".parse().unwrap()),
                    ..Default::default()
                },
                "reserved range",
            ),
            (
                AllocateRequest {
                    address: Some(first.allocation.address),
                    ..Default::default()
                },
                "already allocated",
            ),
            (
                AllocateRequest {
                    hostname: Some("Bad_Name".into()),
                    ..Default::default()
                },
                "hostname",
            ),
        ] {
            let e = alloc(&store, req).await.unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let in_use = store
            .write(|c| network_delete(c, &site(), &Actor::agent(&site()), "t"))
            .await
            .unwrap_err();
        assert!(
            in_use.to_string().contains("release them first"),
            "{in_use}"
        );
        let (rows, outbox_after, res) = store
            .read(|c| {
                let row = network(c, "t")?.unwrap();
                Ok((
                    allocations(c, &row)?,
                    crate::store::outbox::pending_count(c)?,
                    reservations(c)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(res.len(), 1);
        assert_eq!(outbox_after, after_first);
        // The one allocation wrote one event; the refusals wrote none.
        assert_eq!(after_first, outbox_before + 1);
        store.close().await;
    }

    #[derive(Debug, Clone)]
    enum Op {
        Allocate { at: Option<u8> },
        Release { which: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => proptest::option::weighted(0.3, 0u8..32).prop_map(|at| Op::Allocate { at }),
            2 => any::<usize>().prop_map(|which| Op::Release { which }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Several tasks allocate and release against one store at once: no
        /// address ever has two owners, every allocation is a host address
        /// of its prefix outside the reserved range and the gateway, and
        /// the store ends holding exactly what the tasks hold.
        #[test]
        fn concurrent_allocate_release_never_double_allocates(
            plans in proptest::collection::vec(proptest::collection::vec(op(), 1..16), 2..5)
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path()).unwrap();
                // A /27: 30 host addresses, minus gateway and 8 reserved = 21,
                // so plans also run the prefix dry.
                create(&store, spec("t", 10, "10.9.0.0/27")).await.unwrap();
                let owners: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
                let mut tasks = tokio::task::JoinSet::new();
                for (task, plan) in plans.into_iter().enumerate() {
                    let (store, owners) = (store.clone(), owners.clone());
                    tasks.spawn(async move {
                        let mut held: Vec<IpAddr> = Vec::new();
                        for op in plan {
                            match op {
                                Op::Allocate { at } => {
                                    let req = AllocateRequest {
                                        owner: Some(format!("task-{task}")),
                                        address: at.map(|n| IpAddr::V4(Ipv4Addr::new(10, 9, 0, n))),
                                        ..Default::default()
                                    };
                                    match alloc(&store, req).await {
                                        Ok(row) => {
                                            let ip = row.allocation.address;
                                            let prev = owners.lock().unwrap().insert(ip, task);
                                            assert_eq!(prev, None, "{ip} handed to task {task} while task {prev:?} holds it");
                                            held.push(ip);
                                        }
                                        Err(StoreError::Ipam(_)) => {}
                                        Err(e) => panic!("store failed: {e}"),
                                    }
                                }
                                Op::Release { which } if !held.is_empty() => {
                                    let ip = held.swap_remove(which % held.len());
                                    // Forget the owner before the release
                                    // commits: until then nobody else can
                                    // get the address, after it anybody may.
                                    owners.lock().unwrap().remove(&ip);
                                    store
                                        .write(move |c| release(c, &site(), &Actor::agent(&site()), "t", ip))
                                        .await
                                        .unwrap();
                                }
                                Op::Release { .. } => {}
                            }
                        }
                        held
                    });
                }
                let mut expected: Vec<IpAddr> = Vec::new();
                while let Some(done) = tasks.join_next().await {
                    expected.extend(done.unwrap());
                }
                let (row, rows) = store
                    .read(|c| {
                        let row = network(c, "t")?.unwrap();
                        let rows = allocations(c, &row)?;
                        Ok((row, rows))
                    })
                    .await
                    .unwrap();
                let mut stored: Vec<IpAddr> = rows.iter().map(|r| r.allocation.address).collect();
                for ip in &stored {
                    assert_eq!(not_allocatable(&row, *ip), None, "{ip} should never be handed out");
                }
                stored.sort();
                let before = stored.len();
                stored.dedup();
                assert_eq!(before, stored.len(), "an address is stored twice");
                expected.sort();
                assert_eq!(stored, expected);
                store.close().await;
            });
        }
    }
}
