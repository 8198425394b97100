//! The naming model (shared/seeds/management-plane.md, sections 3, 5 and 6).
//!
//! `mgmt.<domain>` holds hosts (A records), their interface identities
//! `<host>-<segment>` (A records) and services (CNAMEs to a host or identity).
//! `<site>.<domain>` aliases chosen services (`<svc>.<site>.<domain>` CNAME
//! `<svc>.mgmt.<domain>`) and names reserved machines. The rules keep that
//! model honest: one name is one thing; a service points at a host, never at
//! another service; the site zone never defines a management-plane record.

use std::collections::HashMap;
use std::net::SocketAddr;

use dv_protocol::validate_token;

use super::super::error::Report;
use super::super::values::MAX_DNS_NAME;
use super::super::{Config, Host};
use super::usable_in;

/// What a name in the management zone is, and where it is defined.
#[derive(Clone, Copy)]
enum Name {
    Host(usize),
    Identity(usize, usize),
    Service(usize),
}

impl Name {
    fn describe(self, config: &Config) -> String {
        let hosts = &config.dns.hosts;
        match self {
            Name::Host(h) => format!("a management host (dns.hosts[{h}])"),
            Name::Identity(h, j) => format!(
                "the interface identity of host {} on segment {} (dns.hosts[{h}].interfaces[{j}])",
                hosts[h].name, hosts[h].interfaces[j].segment
            ),
            Name::Service(k) => format!("a management service (dns.services[{k}])"),
        }
    }
}

pub(super) fn check(config: &Config, report: &mut Report) {
    let names = mgmt_names(config, report);
    services(config, &names, report);
    site_zone(config, &names, report);
    forwarding(config, report);
}

/// Reports `field` when `label.<zone>` is longer than a DNS name can be.
fn fits(report: &mut Report, field: String, label: &str, zone: &str) {
    let len = label.len() + 1 + zone.len();
    if len > MAX_DNS_NAME {
        report.push(
            field,
            format!(
                "{label}.{zone} is {len} characters long; a DNS name has at most {MAX_DNS_NAME}"
            ),
        );
    }
}

/// Hosts, identities and services by name; reports names defined twice.
fn mgmt_names(config: &Config, report: &mut Report) -> HashMap<String, Name> {
    let zone = config.mgmt_zone();
    let mut names: HashMap<String, Name> = HashMap::new();
    for (h, host) in config.dns.hosts.iter().enumerate() {
        let field = format!("dns.hosts[{h}].name");
        fits(report, field.clone(), &host.name, &zone);
        if let Some(first) = names.get(&host.name) {
            report.push(
                field,
                format!("{} is already {}", host.name, first.describe(config)),
            );
        } else {
            names.insert(host.name.clone(), Name::Host(h));
        }
    }
    // After all hosts, so that a host named like another's identity is found
    // whichever comes first in the file.
    for (h, host) in config.dns.hosts.iter().enumerate() {
        identities(config, h, host, &zone, &mut names, report);
    }
    for (k, service) in config.dns.services.iter().enumerate() {
        let field = format!("dns.services[{k}].name");
        fits(report, field.clone(), &service.name, &zone);
        match names.get(&service.name) {
            Some(Name::Service(first)) => report.push(
                field,
                format!(
                    "service {} is already defined at dns.services[{first}]",
                    service.name
                ),
            ),
            Some(other) => report.push(
                field,
                format!(
                    "{} is {}; a name is a host or a service, not both",
                    service.name,
                    other.describe(config)
                ),
            ),
            None => {
                names.insert(service.name.clone(), Name::Service(k));
            }
        }
    }
    names
}

fn identities(
    config: &Config,
    h: usize,
    host: &Host,
    zone: &str,
    names: &mut HashMap<String, Name>,
    report: &mut Report,
) {
    let m = &config.management;
    for (j, ifc) in host.interfaces.iter().enumerate() {
        let at = format!("dns.hosts[{h}].interfaces[{j}]");
        if host.interfaces[..j]
            .iter()
            .any(|other| other.segment == ifc.segment)
        {
            report.push(
                format!("{at}.segment"),
                format!(
                    "{} already has an interface on segment {}",
                    host.name, ifc.segment
                ),
            );
            continue;
        }
        if ifc.segment == m.segment
            && let Err(msg) = usable_in(m.prefix, ifc.address, "the management prefix")
        {
            report.push(
                format!("{at}.address"),
                format!("{msg} (segment {} is the management segment)", m.segment),
            );
        }
        let identity = host.identity(&ifc.segment);
        if let Err(err) = validate_token("interface identity", &identity) {
            report.push(format!("{at}.segment"), err.to_string());
            continue;
        }
        fits(report, format!("{at}.segment"), &identity, zone);
        match names.get(&identity) {
            Some(first) => report.push(
                format!("{at}.segment"),
                format!(
                    "{identity}, the identity of {} on segment {}, is already {}",
                    host.name,
                    ifc.segment,
                    first.describe(config)
                ),
            ),
            None => {
                names.insert(identity, Name::Identity(h, j));
            }
        }
    }
}

/// Each service's target must be a host or an interface identity that has an
/// address; never another service.
fn services(config: &Config, names: &HashMap<String, Name>, report: &mut Report) {
    for (k, service) in config.dns.services.iter().enumerate() {
        let field = format!("dns.services[{k}].host");
        match names.get(&service.host) {
            Some(Name::Identity(..)) => {}
            Some(Name::Host(h)) => {
                let host = &config.dns.hosts[*h];
                if host.address.is_none() {
                    let identities: Vec<String> = host
                        .interfaces
                        .iter()
                        .map(|i| host.identity(&i.segment))
                        .collect();
                    report.push(
                        field,
                        format!(
                            "host {} has no plain address (several interfaces and no `address`); \
                             point at one of {} or give the host an address",
                            host.name,
                            identities.join(", ")
                        ),
                    );
                }
            }
            Some(Name::Service(_)) => report.push(
                field,
                format!(
                    "{} is a service, not a host: a service must point at a host or interface \
                     identity, because a service pointing at a service is a CNAME chain",
                    service.host
                ),
            ),
            None => {
                let hosts: Vec<&str> = config.dns.hosts.iter().map(|h| h.name.as_str()).collect();
                report.push(
                    field,
                    format!(
                        "no host or interface identity is named {:?} (hosts: {})",
                        service.host,
                        if hosts.is_empty() {
                            "none".to_owned()
                        } else {
                            hosts.join(", ")
                        }
                    ),
                );
            }
        }
    }
}

/// The site zone aliases services and names reserved machines; it must not
/// define anything that belongs to the management plane.
fn site_zone(config: &Config, names: &HashMap<String, Name>, report: &mut Report) {
    let zone = config.site_zone();
    let aliases = &config.dns.site_services;
    for (k, alias) in aliases.iter().enumerate() {
        let field = format!("dns.site.services[{k}]");
        if aliases[..k].contains(alias) {
            report.push(field, format!("{alias} is listed twice"));
            continue;
        }
        fits(report, field.clone(), alias, &zone);
        match names.get(alias) {
            Some(Name::Service(_)) => {}
            Some(other) => report.push(
                field,
                format!(
                    "{alias} is {}, not a service: the site zone must not define management-plane \
                     records, only alias services",
                    other.describe(config)
                ),
            ),
            None => report.push(field, format!("{alias} is not defined in [[dns.services]]")),
        }
    }
    for (i, subnet) in config.dhcp.subnets.iter().enumerate() {
        for (r, res) in subnet.reservations.iter().enumerate() {
            let Some(name) = &res.hostname else { continue };
            let field = format!("dhcp.subnets[{i}].reservations[{r}].hostname");
            fits(report, field.clone(), name, &subnet.domain_name);
            if let Some(k) = aliases.iter().position(|a| a == name) {
                report.push(
                    field,
                    format!("{name} is already the site alias of service {name} (dns.site.services[{k}])"),
                );
            } else if let Some(n @ (Name::Host(_) | Name::Identity(..))) = names.get(name) {
                report.push(
                    field,
                    format!(
                        "{name} is {}; it lives in {} and the site zone must not define \
                         management-plane records",
                        n.describe(config),
                        config.mgmt_zone()
                    ),
                );
            }
        }
    }
}

/// The DNS server must listen somewhere and must not forward to itself.
fn forwarding(config: &Config, report: &mut Report) {
    let dns = &config.dns;
    if dns.listen.is_empty() {
        report.push(
            "dns.listen",
            "listen is empty; leave it out for the default",
        );
    }
    let m = &config.management;
    let own = |up: &SocketAddr| {
        up.ip().is_loopback()
            || up.ip() == m.bootstrap_address
            || m.production_address.is_some_and(|p| up.ip() == p)
    };
    for (k, up) in dns.upstreams.iter().enumerate() {
        let loops = dns.listen.iter().position(|l| {
            l.port() == up.port() && (l.ip() == up.ip() || (l.ip().is_unspecified() && own(up)))
        });
        if let Some(j) = loops {
            report.push(
                format!("dns.upstreams[{k}]"),
                format!("{up} is where this agent's DNS server listens (dns.listen[{j}]); forwarding there would loop"),
            );
        }
    }
}
