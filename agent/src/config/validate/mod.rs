//! Rules that relate fields to each other, checked on the typed [`Config`].
//!
//! Every rule runs and reports; nothing stops at the first problem. Each
//! report names the field an operator should change, and the message names
//! the other field involved, so both ends of a conflict are findable.
//!
//! - this file: the management segment and the agent's own host;
//! - [`dhcp`]: subnets, timers, routes, pools and reservations;
//! - [`dns`]: the naming model of shared/seeds/management-plane.md: hosts,
//!   interface identities, services, site aliases.

mod dhcp;
mod dns;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::error::Report;
use super::{Authority, Config};

/// Runs every rule, reporting into `report`.
pub(crate) fn validate(config: &Config, report: &mut Report) {
    management(config, report);
    dhcp::check(config, report);
    dns::check(config, report);
}

/// `Ok` when `ip` can be a host on `net`: inside it, and neither its network
/// nor its broadcast address.
pub(crate) fn usable_in(net: Ipv4Net, ip: Ipv4Addr, what: &str) -> Result<(), String> {
    if !net.contains(&ip) {
        Err(format!("{ip} is outside {what} {net}"))
    } else if ip == net.network() {
        Err(format!("{ip} is the network address of {what} {net}"))
    } else if ip == net.broadcast() {
        Err(format!("{ip} is the broadcast address of {what} {net}"))
    } else {
        Ok(())
    }
}

fn management(config: &Config, report: &mut Report) {
    let m = &config.management;
    let what = "the management prefix";
    if let Err(msg) = usable_in(m.prefix, m.gateway, what) {
        report.push("management.gateway", msg);
    }
    // When unset, bootstrap_address is the gateway, already checked above.
    if m.bootstrap_address != m.gateway
        && let Err(msg) = usable_in(m.prefix, m.bootstrap_address, what)
    {
        report.push("management.bootstrap_address", msg);
    }
    match m.production_address {
        Some(ip) => {
            let field = "management.production_address";
            if let Err(msg) = usable_in(m.prefix, ip, what) {
                report.push(field, msg);
            } else if ip == m.gateway {
                report.push(
                    field,
                    format!(
                        "{ip} is the gateway, which the core router holds in production \
                         authority; the agent needs a reserved address of its own"
                    ),
                );
            } else if ip == m.bootstrap_address {
                report.push(
                    field,
                    format!("{ip} is also management.bootstrap_address; the two modes need different addresses"),
                );
            }
        }
        None if config.site.authority == Authority::Production => report.push(
            "management.production_address",
            "missing: required when site.authority is \"production\" \
             (the address the agent holds while the core router is authority)",
        ),
        None => {}
    }
    agent_host(config, report);
}

/// `management.host` is the agent itself: it must exist, and its address on
/// the management segment must be the one the agent really holds, or the
/// management zone would send clients elsewhere.
fn agent_host(config: &Config, report: &mut Report) {
    let m = &config.management;
    let hosts = &config.dns.hosts;
    let Some((h, host)) = hosts.iter().enumerate().find(|(_, h)| h.name == m.host) else {
        report.push(
            "management.host",
            format!(
                "no [[dns.hosts]] entry is named {:?}; the agent's own host must be one",
                m.host
            ),
        );
        return;
    };
    let on_segment = host
        .interfaces
        .iter()
        .enumerate()
        .find(|(_, i)| i.segment == m.segment);
    match on_segment {
        None => report.push(
            format!("dns.hosts[{h}].interfaces"),
            format!(
                "{} is the agent's host (management.host) but has no interface on the \
                 management segment; add {{ segment = \"{}\", address = \"{}\" }}",
                host.name, m.segment, m.bootstrap_address
            ),
        ),
        Some((j, ifc)) if ifc.address != m.bootstrap_address => report.push(
            format!("dns.hosts[{h}].interfaces[{j}].address"),
            format!(
                "{} is the agent's host (management.host), which holds {} on segment {} \
                 (management.bootstrap_address); its record must say so",
                host.name, m.bootstrap_address, m.segment
            ),
        ),
        Some(_) => {}
    }
}
