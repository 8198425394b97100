//! `[talos]`: wire values to [`Talos`], with the defaults a bare-metal
//! Talos cluster usually takes (Talos's own defaults for the Kubernetes
//! networks, `/dev/sda`, the artifacts under `talos/`).

use std::net::IpAddr;

use ipnet::IpNet;

use super::error::Report;
use super::values::dns_name;
use super::{Talos, wire};
use crate::boot::state::check_artifact_path;

/// `talos.install_disk` when unset.
pub(crate) const DEFAULT_INSTALL_DISK: &str = "/dev/sda";
/// `talos.kernel` when unset (the name Talos releases give it).
pub(crate) const DEFAULT_KERNEL: &str = "talos/vmlinuz-amd64";
/// `talos.initrd` when unset.
pub(crate) const DEFAULT_INITRD: &str = "talos/initramfs-amd64.xz";
/// `talos.dns_domain` when unset.
pub(crate) const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
/// `talos.pod_subnets` when unset (Talos's default).
pub(crate) const DEFAULT_POD_SUBNET: &str = "10.244.0.0/16";
/// `talos.service_subnets` when unset (Talos's default).
pub(crate) const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";

fn check<T>(report: &mut Report, field: &str, parsed: Result<T, String>) -> Option<T> {
    parsed.map_err(|msg| report.push(field, msg)).ok()
}

/// `None` when any value failed (each failure is reported).
pub(crate) fn talos(report: &mut Report, w: &wire::Talos) -> Option<Talos> {
    let cluster_name = check(report, "talos.cluster_name", cluster_name(&w.cluster_name));
    let endpoint = check(report, "talos.endpoint", endpoint(&w.endpoint));
    let install_image = check(report, "talos.install_image", image(&w.install_image));
    let install_disk = check(
        report,
        "talos.install_disk",
        disk(w.install_disk.as_deref().unwrap_or(DEFAULT_INSTALL_DISK)),
    );
    let kernel = w.kernel.as_deref().unwrap_or(DEFAULT_KERNEL);
    let kernel = check(
        report,
        "talos.kernel",
        check_artifact_path("kernel", kernel).map(|()| kernel.to_owned()),
    );
    let initrd = w.initrd.as_deref().unwrap_or(DEFAULT_INITRD);
    let initrd = check(
        report,
        "talos.initrd",
        check_artifact_path("initrd", initrd).map(|()| initrd.to_owned()),
    );
    let dns_domain = check(
        report,
        "talos.dns_domain",
        dns_name(w.dns_domain.as_deref().unwrap_or(DEFAULT_DNS_DOMAIN)),
    );
    let pod_subnets = subnets(
        report,
        "talos.pod_subnets",
        &w.pod_subnets,
        DEFAULT_POD_SUBNET,
    );
    let service_subnets = subnets(
        report,
        "talos.service_subnets",
        &w.service_subnets,
        DEFAULT_SERVICE_SUBNET,
    );
    if let (Some(pods), Some(services)) = (&pod_subnets, &service_subnets) {
        for (i, s) in services.iter().enumerate() {
            if let Some(p) = pods.iter().find(|p| overlaps(p, s)) {
                report.push(
                    format!("talos.service_subnets[{i}]"),
                    format!(
                        "{s} overlaps the pod subnet {p}; pods and services need separate ranges"
                    ),
                );
            }
        }
    }
    let mut nameservers = Some(Vec::new());
    for (i, text) in w.nameservers.iter().flatten().enumerate() {
        let parsed = text
            .parse::<IpAddr>()
            .map_err(|_| format!("{text:?} is not an IP address"));
        match (
            check(report, &format!("talos.nameservers[{i}]"), parsed),
            &mut nameservers,
        ) {
            (Some(ip), Some(list)) => list.push(ip),
            _ => nameservers = None,
        }
    }
    Some(Talos {
        cluster_name: cluster_name?,
        endpoint: endpoint?,
        install_image: install_image?,
        install_disk: install_disk?,
        wipe: w.wipe.unwrap_or(false),
        kernel: kernel?,
        initrd: initrd?,
        dns_domain: dns_domain?,
        pod_subnets: pod_subnets?,
        service_subnets: service_subnets?,
        nameservers: nameservers?,
    })
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A DNS label: Talos and Kubernetes put it in names and labels.
fn cluster_name(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "cluster name {text:?} must be 1..=63 lower-case letters, digits and hyphens, \
             not starting or ending with a hyphen"
        ))
    }
}

/// `https://<host>:<port>` with nothing after the port but an optional `/`.
fn endpoint(text: &str) -> Result<String, String> {
    let hint =
        "write the Kubernetes API endpoint as https://<host>:<port>, e.g. https://10.77.0.50:6443";
    let Some(rest) = text.strip_prefix("https://") else {
        return Err(format!("endpoint {text:?} is not an https URL; {hint}"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(format!("endpoint {text:?} has no port; {hint}"));
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let host_ok = match bare {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.parse::<std::net::Ipv4Addr>().is_ok() || dns_name(host).is_ok(),
    };
    if !port_ok || !host_ok || host.is_empty() {
        return Err(format!("endpoint {text:?} is not a host and port; {hint}"));
    }
    Ok(format!("https://{host}:{port}"))
}

/// A container image reference: one token of printable ASCII.
fn image(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 512
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@+".contains(&b))
        && (text.contains(':') || text.contains('@'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "install image {text:?} must be an image reference with a tag or digest, \
             e.g. ghcr.io/siderolabs/installer:v1.11.5"
        ))
    }
}

fn disk(text: &str) -> Result<String, String> {
    let ok = text.starts_with("/dev/")
        && text.len() > 5
        && text.len() <= 256
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "install disk {text:?} must be a device path under /dev/, e.g. /dev/sda or /dev/nvme0n1"
        ))
    }
}

fn subnets(
    report: &mut Report,
    field: &str,
    list: &Option<Vec<String>>,
    default: &str,
) -> Option<Vec<IpNet>> {
    let Some(list) = list else {
        return default.parse().ok().map(|n| vec![n]);
    };
    if list.is_empty() {
        report.push(
            field,
            "needs at least one subnet (or leave it out for the default)",
        );
        return None;
    }
    let mut out = Some(Vec::new());
    for (i, text) in list.iter().enumerate() {
        let parsed = text
            .parse::<IpNet>()
            .map_err(|_| format!("{text:?} is not a network in CIDR notation, e.g. {default}"));
        let parsed = parsed.and_then(|net| {
            if net.trunc() == net {
                Ok(net)
            } else {
                Err(format!("{text:?} has host bits set; write {}", net.trunc()))
            }
        });
        match (check(report, &format!("{field}[{i}]"), parsed), &mut out) {
            (Some(net), Some(v)) => v.push(net),
            _ => out = None,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn endpoints_are_https_host_and_port() {
        assert_eq!(
            endpoint("https://10.77.0.50:6443/").unwrap(),
            "https://10.77.0.50:6443"
        );
        assert!(endpoint("https://k8s.lab.dataverket.test:6443").is_ok());
        assert!(endpoint("https://[fd00::1]:6443").is_ok());
        for bad in [
            "http://10.0.0.1:6443",
            "https://10.0.0.1",
            "https://:6443",
            "https://10.0.0.1:0",
            "https://a b:6443",
            "https://10.0.0.1:6443/api",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_images_and_disks() {
        assert!(cluster_name("lab-1").is_ok());
        for bad in ["", "Lab", "-lab", "lab_1", &"a".repeat(64)] {
            assert!(cluster_name(bad).is_err(), "{bad}");
        }
        assert!(image("ghcr.io/siderolabs/installer:v1.11.5").is_ok());
        assert!(image("ghcr.io/siderolabs/installer").is_err());
        assert!(image("a:b c").is_err());
        assert!(disk("/dev/nvme0n1").is_ok());
        assert!(disk("sda").is_err());
        assert!(disk("/dev/").is_err());
    }
}
