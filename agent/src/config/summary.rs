//! The short description `dv-agent check-config` prints for a valid file:
//! enough for an operator to see that the agent understood what they meant
//! (zones, subnets and their sizes, services), not a dump of every field.

use std::fmt::Write as _;

use super::{Authority, Config};

impl Config {
    /// A few lines describing the site: identity, zones, the management
    /// segment, DHCP subnets with pool sizes and reservation counts, DNS
    /// names and forwarding, and the HTTP listener. No trailing newline.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let authority = match self.site.authority {
            Authority::Bootstrap => "bootstrap",
            Authority::Production => "production",
        };
        let m = &self.management;
        // Writing to a String cannot fail; `let _` keeps clippy and readers calm.
        let _ = writeln!(
            out,
            "site {} ({} authority), data in {}",
            self.site.name,
            authority,
            self.site.data_dir.display()
        );
        let _ = writeln!(out, "zones: {} and {}", self.mgmt_zone(), self.site_zone());
        let _ = writeln!(
            out,
            "management: segment {} on {}, {} gateway {}, agent host {} at {}{}",
            m.segment,
            m.interface,
            m.prefix,
            m.gateway,
            m.host,
            m.bootstrap_address,
            m.production_address
                .map(|p| format!(" (production {p})"))
                .unwrap_or_default()
        );
        for subnet in &self.dhcp.subnets {
            let place = match &subnet.interface {
                Some(interface) => format!("on {interface}"),
                None => "relayed".to_owned(),
            };
            let pools: Vec<String> = subnet
                .pools
                .iter()
                .map(|p| format!("{}-{} ({})", p.start, p.end, p.size()))
                .collect();
            let _ = writeln!(
                out,
                "dhcp: {} {place}, pools {}, reservations {}, lease {}",
                subnet.prefix,
                none_or(&pools),
                subnet.reservations.len(),
                humantime::format_duration(subnet.lease_time)
            );
        }
        let dns = &self.dns;
        let services: Vec<String> = dns
            .services
            .iter()
            .map(|s| format!("{} -> {}", s.name, s.host))
            .collect();
        let hosts: Vec<String> = dns.hosts.iter().map(|h| h.name.clone()).collect();
        let _ = writeln!(out, "dns: hosts {}", none_or(&hosts));
        let _ = writeln!(out, "dns: services {}", none_or(&services));
        let _ = writeln!(out, "dns: site aliases {}", none_or(&dns.site_services));
        let listen: Vec<String> = dns.listen.iter().map(ToString::to_string).collect();
        let upstreams: Vec<String> = dns.upstreams.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "dns: listen {}, upstreams {}",
            listen.join(", "),
            none_or(&upstreams)
        );
        let _ = writeln!(
            out,
            "boot: scripts at {}/boot/<mac>.ipxe, firmware {}, artifacts {}, unknown machines {}",
            self.boot.http_url,
            self.boot.firmware_dir.display(),
            self.boot.artifacts_dir.display(),
            self.boot.default_state
        );
        let _ = writeln!(
            out,
            "tftp: listen {} ({})",
            self.tftp.listen,
            if self.tftp.enabled {
                "enabled"
            } else {
                "disabled"
            }
        );
        if let Some(t) = &self.talos {
            let _ = writeln!(
                out,
                "talos: cluster {} at {}, install {} to {}, kernel {}, initrd {}",
                t.cluster_name, t.endpoint, t.install_image, t.install_disk, t.kernel, t.initrd
            );
        }
        match &self.nats {
            Some(n) => {
                let _ = writeln!(
                    out,
                    "nats: leaf node {}, JetStream domain {}, hub {}, heartbeat every {}",
                    n.url(),
                    n.domain,
                    none_or(&n.hub),
                    humantime::format_duration(n.heartbeat_interval)
                );
                if let Some(c) = &n.hub_credentials {
                    let _ = writeln!(
                        out,
                        "nats: hub user {} (password from {})",
                        c.user,
                        c.password_file.display()
                    );
                }
                if let Some(t) = &n.hub_tls {
                    let _ = writeln!(
                        out,
                        "nats: TLS to the hub, CA {}{}",
                        t.ca.display(),
                        if t.identity.is_some() {
                            ", with a client certificate"
                        } else {
                            ""
                        }
                    );
                }
            }
            None => {
                let _ = writeln!(out, "nats: off (no [nats]; events stay in the outbox)");
            }
        }
        for sw in &self.switches {
            let _ = writeln!(
                out,
                "switch {}: {} {}, drift checked every {}",
                sw.name,
                sw.driver.kind(),
                sw.driver.target(),
                humantime::format_duration(sw.drift_interval)
            );
        }
        let _ = write!(out, "http: listen {}", self.http.listen);
        out
    }
}

fn none_or(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
