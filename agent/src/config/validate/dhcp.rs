//! DHCP rules: subnets don't overlap; router, route gateways, pools and
//! reservations sit inside their subnet; timers are ordered; no address the
//! network depends on can be handed out dynamically; reservations are unique
//! across the whole site (a MAC or IP reserved twice is a coin toss at run time).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use humantime::format_duration;
use ipnet::Ipv4Net;

use super::super::error::Report;
use super::super::{ClientKey, Config, Subnet};
use super::usable_in;

pub(super) fn check(config: &Config, report: &mut Report) {
    let subnets = &config.dhcp.subnets;
    for (i, subnet) in subnets.iter().enumerate() {
        let at = format!("dhcp.subnets[{i}]");
        if let Some((j, other)) = (subnets[..i].iter().enumerate()).find(|(_, o)| {
            o.prefix.contains(&subnet.prefix.network())
                || subnet.prefix.contains(&o.prefix.network())
        }) {
            report.push(
                format!("{at}.prefix"),
                format!(
                    "{} overlaps dhcp.subnets[{j}] ({})",
                    subnet.prefix, other.prefix
                ),
            );
            // Every other check of this subnet would repeat the confusion.
            continue;
        }
        if let Some(router) = subnet.router
            && let Err(msg) = usable_in(subnet.prefix, router, "the subnet")
        {
            report.push(format!("{at}.router"), msg);
        }
        timers(&at, subnet, report);
        routes(&at, subnet, report);
        let mut taken = infrastructure(config, subnet);
        taken.extend(host_addresses(config));
        // One report per address: the router is often also the gateway.
        let mut seen = HashSet::new();
        taken.retain(|(ip, _)| seen.insert(*ip));
        pools(&at, subnet, &taken, report);
    }
    reservations(config, report);
}

fn timers(at: &str, s: &Subnet, report: &mut Report) {
    if s.renew_time >= s.rebind_time {
        report.push(
            format!("{at}.renew_time"),
            format!(
                "renew_time {} must be shorter than rebind_time {} (unset: half and 7/8 of lease_time)",
                format_duration(s.renew_time),
                format_duration(s.rebind_time)
            ),
        );
    }
    if s.rebind_time >= s.lease_time {
        report.push(
            format!("{at}.rebind_time"),
            format!(
                "rebind_time {} must be shorter than lease_time {}",
                format_duration(s.rebind_time),
                format_duration(s.lease_time)
            ),
        );
    }
}

fn routes(at: &str, s: &Subnet, report: &mut Report) {
    for (k, route) in s.classless_routes.iter().enumerate() {
        let at = format!("{at}.classless_routes[{k}]");
        if let Err(msg) = usable_in(s.prefix, route.gateway, "the subnet") {
            report.push(
                format!("{at}.gateway"),
                format!("{msg}; a route's gateway must be on-link"),
            );
        }
        if let Some(first) = s.classless_routes[..k]
            .iter()
            .position(|r| r.destination == route.destination)
        {
            report.push(
                format!("{at}.destination"),
                format!(
                    "{} is already routed by classless_routes[{first}]",
                    route.destination
                ),
            );
        }
    }
    let default_route = Ipv4Net::default();
    let has_default = (s.classless_routes.iter()).any(|r| r.destination == default_route);
    if let Some(router) = s.router
        && !s.classless_routes.is_empty()
        && !has_default
    {
        report.push(
            format!("{at}.classless_routes"),
            format!(
                "clients that receive classless routes ignore router (RFC 3442) and would lose \
                 their default route; add {{ destination = \"0.0.0.0/0\", gateway = \"{router}\" }}"
            ),
        );
    }
}

/// Addresses on `subnet` that the network itself uses, with what they are:
/// none of them may be leased dynamically or reserved for a client.
fn infrastructure(config: &Config, subnet: &Subnet) -> Vec<(Ipv4Addr, String)> {
    let m = &config.management;
    let mut out = Vec::new();
    if let Some(router) = subnet.router {
        out.push((router, "the subnet's router".to_owned()));
    }
    out.push((m.gateway, "management.gateway".to_owned()));
    out.push((
        m.bootstrap_address,
        "management.bootstrap_address".to_owned(),
    ));
    if let Some(ip) = m.production_address {
        out.push((ip, "management.production_address".to_owned()));
    }
    for (k, route) in subnet.classless_routes.iter().enumerate() {
        out.push((
            route.gateway,
            format!("the gateway of classless_routes[{k}]"),
        ));
    }
    out.retain(|(ip, _)| subnet.prefix.contains(ip));
    out
}

fn pools(at: &str, s: &Subnet, taken: &[(Ipv4Addr, String)], report: &mut Report) {
    for (k, pool) in s.pools.iter().enumerate() {
        let at = format!("{at}.pools[{k}]");
        let start = usable_in(s.prefix, pool.start, "the subnet");
        let end = usable_in(s.prefix, pool.end, "the subnet");
        let inside = start.is_ok() && end.is_ok();
        for (field, result) in [("start", start), ("end", end)] {
            if let Err(msg) = result {
                report.push(format!("{at}.{field}"), msg);
            }
        }
        if !inside {
            continue;
        }
        if pool.start > pool.end {
            report.push(
                format!("{at}.end"),
                format!(
                    "the pool ends at {} before it starts at {}",
                    pool.end, pool.start
                ),
            );
            continue;
        }
        let overlap = (s.pools[..k].iter().enumerate())
            .find(|(_, o)| o.start <= pool.end && pool.start <= o.end && o.start <= o.end);
        if let Some((j, other)) = overlap {
            report.push(
                format!("{at}.start"),
                format!(
                    "{}-{} overlaps pools[{j}] ({}-{})",
                    pool.start, pool.end, other.start, other.end
                ),
            );
        }
        for (ip, what) in taken.iter().filter(|(ip, _)| pool.contains(*ip)) {
            report.push(
                format!("{at}.start"),
                format!(
                    "{}-{} contains {ip}, {what}; a client could lease it",
                    pool.start, pool.end
                ),
            );
        }
    }
}

/// Addresses of management hosts: in a pool, a client could lease one. (A
/// reservation for one is fine: that is how a host can get its address.)
fn host_addresses(config: &Config) -> Vec<(Ipv4Addr, String)> {
    let mut out = Vec::new();
    for (h, host) in config.dns.hosts.iter().enumerate() {
        let what = format!("the address of {} (dns.hosts[{h}])", host.name);
        out.extend(host.address.map(|ip| (ip, what.clone())));
        out.extend(host.interfaces.iter().map(|i| (i.address, what.clone())));
    }
    out
}

fn reservations(config: &Config, report: &mut Report) {
    let mut by_ip: HashMap<Ipv4Addr, String> = HashMap::new();
    let mut by_client: HashMap<&ClientKey, String> = HashMap::new();
    let mut by_name: HashMap<&str, String> = HashMap::new();
    for (i, s) in config.dhcp.subnets.iter().enumerate() {
        let infra = infrastructure(config, s);
        for (r, res) in s.reservations.iter().enumerate() {
            let at = format!("dhcp.subnets[{i}].reservations[{r}]");
            let ip_field = format!("{at}.ip");
            if let Err(msg) = usable_in(s.prefix, res.ip, "the subnet") {
                report.push(ip_field.clone(), msg);
            } else if let Some((_, what)) = infra.iter().find(|(ip, _)| *ip == res.ip) {
                report.push(
                    ip_field.clone(),
                    format!("{} is {what}, not an address for a client", res.ip),
                );
            } else if let Some((k, p)) =
                s.pools.iter().enumerate().find(|(_, p)| p.contains(res.ip))
            {
                report.push(
                    ip_field.clone(),
                    format!(
                        "{} is inside pools[{k}] ({}-{}); reserve addresses outside the pools \
                         so that no dynamic lease can take one",
                        res.ip, p.start, p.end
                    ),
                );
            }
            if let Some(first) = by_ip.insert(res.ip, at.clone()) {
                report.push(
                    ip_field,
                    format!("{} is already reserved by {first}", res.ip),
                );
                by_ip.insert(res.ip, first);
            }
            let (client_field, client) = match &res.client {
                ClientKey::Mac(mac) => (format!("{at}.mac"), mac.to_string()),
                ClientKey::ClientId(_) => (
                    format!("{at}.client_id"),
                    "this client identifier".to_owned(),
                ),
            };
            if let Some(first) = by_client.get(&res.client) {
                report.push(
                    client_field,
                    format!("{client} already has a reservation: {first}"),
                );
            } else {
                by_client.insert(&res.client, at.clone());
            }
            if let Some(name) = &res.hostname {
                if let Some(first) = by_name.get(name.as_str()) {
                    report.push(
                        format!("{at}.hostname"),
                        format!("{name} is already the hostname of {first}"),
                    );
                } else {
                    by_name.insert(name, at);
                }
            }
        }
    }
}
