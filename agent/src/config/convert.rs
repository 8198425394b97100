//! Wire types to the typed [`Config`]: every value parsed, defaults applied.
//!
//! Each field is parsed independently and every failure is reported with its
//! field path, so one run lists all malformed values. Only once every part has
//! been tried are the results combined (`?` on the collected options), which is
//! why each function below first binds all its fields, then builds.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dv_protocol::SiteName;

use super::error::Report;
use super::values::{client_id, dns_name, duration, ifname, ipv4, label, mac, network, socket};
use super::{
    Authority, ClientKey, Config, Dhcp, Dns, Host, HostInterface, Http, MGMT_LABEL, Management,
    Pool, Provision, Reservation, Route, Service, Site, Subnet, wire,
};

/// `[http] listen` when unset: loopback only, since the agent's API carries no
/// TLS yet; a site exposes it deliberately.
const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8680";
/// `lease_time` when unset: long enough to ride out an agent restart or a
/// short outage, short enough that a re-cabled lab frees its addresses in a day.
const DEFAULT_LEASE: Duration = Duration::from_secs(12 * 3600);
/// `[dns] ttl` when unset.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// RFC 2181 section 8: a TTL is at most 2^31 - 1 seconds.
const MAX_TTL: u64 = i32::MAX as u64;

/// Collects problems while parsing.
struct Cx<'r> {
    report: &'r mut Report,
}

impl Cx<'_> {
    /// The report, for steps that live in their own module.
    fn report_mut(&mut self) -> &mut Report {
        self.report
    }

    /// Keeps the value, or reports the message against `field`.
    fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|msg| self.report.push(field, msg)).ok()
    }

    /// Parses every item of a list, reporting each failure as `field[i]`.
    fn list<T>(
        &mut self,
        field: &str,
        items: &[String],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let parsed: Vec<Option<T>> = (items.iter().enumerate())
            .map(|(i, item)| self.check(&format!("{field}[{i}]"), parse(item)))
            .collect();
        parsed.into_iter().collect()
    }

    /// Parses an optional value.
    fn opt<T>(
        &mut self,
        field: &str,
        value: Option<&String>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match value {
            None => Some(None),
            Some(text) => self.check(field, parse(text)).map(Some),
        }
    }
}

/// Parses everything in `w`; `None` when anything failed (and was reported).
pub(crate) fn convert(w: wire::Config, base_dir: &Path, report: &mut Report) -> Option<Config> {
    let mut cx = Cx { report };
    let site = site(&mut cx, &w.site, base_dir);
    let listen = w.http.listen.as_deref().unwrap_or(DEFAULT_HTTP_LISTEN);
    let http = cx.check("http.listen", socket(listen, None));
    let management = management(&mut cx, &w.management);
    let site_zone = site.as_ref().map(|s| format!("{}.{}", s.name, s.domain));
    let subnets: Vec<Option<Subnet>> = (w.dhcp.subnets.iter().enumerate())
        .map(|(i, s)| {
            subnet(
                &mut cx,
                &format!("dhcp.subnets[{i}]"),
                s,
                site_zone.as_deref(),
            )
        })
        .collect();
    let dns = dns(&mut cx, &w.dns, management.as_ref());
    let boot = super::boot::boot(
        cx.report_mut(),
        &w.boot,
        base_dir,
        site.as_ref().map(|s| s.data_dir.as_path()),
        management.as_ref(),
        http.map(|h| h.port()),
    );
    let tftp = super::boot::tftp(
        cx.report_mut(),
        &w.tftp,
        site.as_ref().map(|s| s.authority),
        management.as_ref(),
    );
    let talos = match &w.talos {
        Some(t) => super::talos::talos(cx.report_mut(), t).map(Some),
        None => Some(None),
    };
    let defaults = Provision::default();
    let install_timeout = cx.opt(
        "provision.install_timeout",
        w.provision.install_timeout.as_ref(),
        duration,
    );
    let wipe_timeout = cx.opt(
        "provision.wipe_timeout",
        w.provision.wipe_timeout.as_ref(),
        duration,
    );
    let nats = match &w.nats {
        Some(n) => super::nats::nats(
            cx.report_mut(),
            n,
            site.as_ref().map(|s| &s.name),
            site.as_ref().map(|s| s.data_dir.as_path()),
            base_dir,
        )
        .map(Some),
        None => Some(None),
    };
    let api = super::api::api(cx.report_mut(), &w.api, base_dir);
    let switches = super::switches::switches(cx.report_mut(), &w.switches, base_dir);
    let provision = Provision {
        install_timeout: install_timeout?.unwrap_or(defaults.install_timeout),
        wipe_timeout: wipe_timeout?.unwrap_or(defaults.wipe_timeout),
    };
    Some(Config {
        site: site?,
        http: Http { listen: http? },
        management: management?,
        dhcp: Dhcp {
            subnets: subnets.into_iter().collect::<Option<_>>()?,
        },
        dns: dns?,
        boot: boot?,
        tftp: tftp?,
        talos: talos?,
        provision,
        nats: nats?,
        api: api?,
        switches: switches?,
    })
}

fn site(cx: &mut Cx<'_>, w: &wire::Site, base_dir: &Path) -> Option<Site> {
    let name = SiteName::new(w.name.as_str()).map_err(|e| e.to_string());
    let name = name.and_then(|name| match name.as_str() {
        MGMT_LABEL => Err("\"mgmt\" is reserved: mgmt.<domain> is the management zone".to_owned()),
        "hub" => Err("\"hub\" is reserved: it is the hub's token in NATS subjects".to_owned()),
        _ => Ok(name),
    });
    let name = cx.check("site.name", name);
    let domain = cx.check("site.domain", dns_name(&w.domain));
    let data_dir = if w.data_dir.is_empty() {
        cx.check("site.data_dir", Err("data_dir is empty".to_owned()))
    } else {
        // Relative to the file, not the working directory, so a kit's config
        // means the same thing wherever `dv-agent` is started from; then
        // absolute, so it keeps meaning that if the process changes directory.
        let joined = base_dir.join(&w.data_dir);
        Some(std::path::absolute(&joined).unwrap_or(joined))
    };
    Some(Site {
        name: name?,
        domain: domain?,
        authority: match w.authority {
            wire::Authority::Bootstrap => Authority::Bootstrap,
            wire::Authority::Production => Authority::Production,
        },
        data_dir: data_dir?,
    })
}

fn management(cx: &mut Cx<'_>, w: &wire::Management) -> Option<Management> {
    let segment = cx.check("management.segment", label("segment name", &w.segment));
    let interface = cx.check("management.interface", ifname(&w.interface));
    let prefix = cx.check("management.prefix", network(&w.prefix, 30));
    let gateway = cx.check("management.gateway", ipv4(&w.gateway));
    let bootstrap = cx.opt(
        "management.bootstrap_address",
        w.bootstrap_address.as_ref(),
        ipv4,
    );
    let production = cx.opt(
        "management.production_address",
        w.production_address.as_ref(),
        ipv4,
    );
    let host = cx.check("management.host", label("host name", &w.host));
    let gateway = gateway?;
    Some(Management {
        segment: segment?,
        interface: interface?,
        prefix: prefix?,
        gateway,
        // The seed's bootstrap mode: the provisioner holds the gateway IP.
        bootstrap_address: bootstrap?.unwrap_or(gateway),
        production_address: production?,
        host: host?,
    })
}

fn subnet(cx: &mut Cx<'_>, at: &str, w: &wire::Subnet, site_zone: Option<&str>) -> Option<Subnet> {
    let prefix = cx.check(&format!("{at}.prefix"), network(&w.prefix, 30));
    let interface = cx.opt(&format!("{at}.interface"), w.interface.as_ref(), ifname);
    let router = cx.opt(&format!("{at}.router"), w.router.as_ref(), ipv4);
    let dns_servers = cx.list(&format!("{at}.dns_servers"), &w.dns_servers, ipv4);
    let domain_name = cx.opt(
        &format!("{at}.domain_name"),
        w.domain_name.as_ref(),
        dns_name,
    );
    let ntp_servers = cx.list(&format!("{at}.ntp_servers"), &w.ntp_servers, ipv4);
    let mtu = match w.mtu {
        None => Some(None),
        Some(mtu) => cx.check(
            &format!("{at}.mtu"),
            (u16::try_from(mtu).ok())
                .filter(|m| (576..=9216).contains(m))
                .map(Some)
                .ok_or_else(|| format!("mtu {mtu} is outside 576..=9216")),
        ),
    };
    let lease = cx.opt(&format!("{at}.lease_time"), w.lease_time.as_ref(), duration);
    let renew = cx.opt(&format!("{at}.renew_time"), w.renew_time.as_ref(), duration);
    let rebind = cx.opt(
        &format!("{at}.rebind_time"),
        w.rebind_time.as_ref(),
        duration,
    );
    let routes: Vec<Option<Route>> = (w.classless_routes.iter().enumerate())
        .map(|(i, r)| {
            let at = format!("{at}.classless_routes[{i}]");
            let destination = cx.check(&format!("{at}.destination"), network(&r.destination, 32));
            let gateway = cx.check(&format!("{at}.gateway"), ipv4(&r.gateway));
            Some(Route {
                destination: destination?,
                gateway: gateway?,
            })
        })
        .collect();
    let pools: Vec<Option<Pool>> = (w.pools.iter().enumerate())
        .map(|(i, p)| {
            let start = cx.check(&format!("{at}.pools[{i}].start"), ipv4(&p.start));
            let end = cx.check(&format!("{at}.pools[{i}].end"), ipv4(&p.end));
            Some(Pool {
                start: start?,
                end: end?,
            })
        })
        .collect();
    let reservations: Vec<Option<Reservation>> = (w.reservations.iter().enumerate())
        .map(|(i, r)| reservation(cx, &format!("{at}.reservations[{i}]"), r))
        .collect();

    // RFC 2131 4.4.5: T1 defaults to half the lease, T2 to seven eighths.
    let lease = lease?.unwrap_or(DEFAULT_LEASE);
    Some(Subnet {
        prefix: prefix?,
        interface: interface?,
        router: router?,
        dns_servers: dns_servers?,
        domain_name: domain_name?.or_else(|| site_zone.map(str::to_owned))?,
        ntp_servers: ntp_servers?,
        mtu: mtu?,
        lease_time: lease,
        renew_time: renew?.unwrap_or(Duration::from_secs(lease.as_secs() / 2)),
        rebind_time: rebind?.unwrap_or(Duration::from_secs(lease.as_secs() * 7 / 8)),
        classless_routes: routes.into_iter().collect::<Option<_>>()?,
        pxe: w.pxe.unwrap_or(true),
        pools: pools.into_iter().collect::<Option<_>>()?,
        reservations: reservations.into_iter().collect::<Option<_>>()?,
    })
}

fn reservation(cx: &mut Cx<'_>, at: &str, w: &wire::Reservation) -> Option<Reservation> {
    let client = match (&w.mac, &w.client_id) {
        (Some(m), None) => cx.check(&format!("{at}.mac"), mac(m).map(ClientKey::Mac)),
        (None, Some(id)) => cx.check(
            &format!("{at}.client_id"),
            client_id(id).map(ClientKey::ClientId),
        ),
        (Some(_), Some(_)) => cx.check(
            &format!("{at}.client_id"),
            Err("set either mac or client_id, not both: a client is recognised by one".to_owned()),
        ),
        (None, None) => cx.check(
            &format!("{at}.mac"),
            Err("missing: a reservation needs mac or client_id to recognise its client".to_owned()),
        ),
    };
    let ip = cx.check(&format!("{at}.ip"), ipv4(&w.ip));
    let hostname = cx.opt(&format!("{at}.hostname"), w.hostname.as_ref(), |h| {
        label("hostname", h)
    });
    Some(Reservation {
        client: client?,
        ip: ip?,
        hostname: hostname?,
    })
}

fn dns(cx: &mut Cx<'_>, w: &wire::Dns, management: Option<&Management>) -> Option<Dns> {
    let listen = match &w.listen {
        Some(listen) => cx.list("dns.listen", listen, |s| socket(s, Some(53))),
        // The DNS server runs in bootstrap authority only, on that address.
        None => management.map(|m| vec![SocketAddr::new(m.bootstrap_address.into(), 53)]),
    };
    let upstreams = cx.list("dns.upstreams", &w.upstreams, |s| socket(s, Some(53)));
    let secondaries = cx.list("dns.secondaries", &w.secondaries, |s| socket(s, Some(53)));
    let allow_transfer = cx.list("dns.allow_transfer", &w.allow_transfer, ip_network);
    let ttl = cx.opt("dns.ttl", w.ttl.as_ref(), |s| {
        duration(s).and_then(|d| match d.as_secs() {
            secs if secs > MAX_TTL => Err(format!(
                "{s:?} is longer than a DNS TTL can be ({MAX_TTL}s)"
            )),
            _ => Ok(d),
        })
    });
    let hosts: Vec<Option<Host>> = (w.hosts.iter().enumerate())
        .map(|(i, h)| host(cx, &format!("dns.hosts[{i}]"), h))
        .collect();
    let services: Vec<Option<Service>> = (w.services.iter().enumerate())
        .map(|(i, s)| {
            let name = cx.check(
                &format!("dns.services[{i}].name"),
                label("service name", &s.name),
            );
            let host = cx.check(
                &format!("dns.services[{i}].host"),
                label("host name", &s.host),
            );
            Some(Service {
                name: name?,
                host: host?,
            })
        })
        .collect();
    let site_services = cx.list("dns.site.services", &w.site.services, |s| {
        label("service name", s)
    });
    Some(Dns {
        listen: listen?,
        upstreams: upstreams?,
        ttl: ttl?.unwrap_or(DEFAULT_TTL),
        secondaries: secondaries?,
        allow_transfer: allow_transfer?,
        hosts: hosts.into_iter().collect::<Option<_>>()?,
        services: services.into_iter().collect::<Option<_>>()?,
        site_services: site_services?,
    })
}

fn host(cx: &mut Cx<'_>, at: &str, w: &wire::Host) -> Option<Host> {
    let name = cx.check(&format!("{at}.name"), label("host name", &w.name));
    let address = cx.opt(&format!("{at}.address"), w.address.as_ref(), ipv4);
    let ipv6 = cx.list(&format!("{at}.ipv6"), &w.ipv6, |s| {
        s.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{s:?} is not an IPv6 address"))
    });
    let interfaces: Vec<Option<HostInterface>> = (w.interfaces.iter().enumerate())
        .map(|(i, ifc)| {
            let at = format!("{at}.interfaces[{i}]");
            let segment = cx.check(
                &format!("{at}.segment"),
                label("segment name", &ifc.segment),
            );
            let address = cx.check(&format!("{at}.address"), ipv4(&ifc.address));
            Some(HostInterface {
                segment: segment?,
                address: address?,
            })
        })
        .collect();
    let interfaces: Vec<HostInterface> = interfaces.into_iter().collect::<Option<_>>()?;
    // A single-homed host's plain name is unambiguous; a multi-homed one gets
    // only interface identities unless `address` says which one is plain
    // (seed section 5.2: no ambiguous multi-A records).
    let address = match (address?, interfaces.as_slice()) {
        (Some(address), _) => Some(address),
        (None, [only]) => Some(only.address),
        (None, _) => None,
    };
    Some(Host {
        name: name?,
        address,
        ipv6: ipv6?,
        interfaces,
    })
}

/// An address or network allowed to transfer zones: `10.0.0.0/8`, or a bare
/// address meaning that one host.
fn ip_network(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is neither an IP address nor a network (CIDR)"))
}
