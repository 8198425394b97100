//! Renders a machine's Talos v1alpha1 machine configuration (YAML).
//!
//! One document, `version: v1alpha1`, with the fields the agent decides and
//! nothing else (Talos fills in its own defaults for the rest):
//! - `machine`: `type` (controlplane or worker, from the inventory role),
//!   `token` (trustd), `ca` (the Talos API CA: certificate and key on a
//!   control-plane node, certificate only on a worker), `certSANs`,
//!   `network` (hostname; the interface with the machine's boot MAC
//!   selected by `deviceSelector.hardwareAddr`, on DHCP; nameservers if
//!   configured) and `install` (disk, image, wipe);
//! - `cluster`: `id`, `secret`, `controlPlane.endpoint`, `clusterName`,
//!   `network` (dnsDomain, podSubnets, serviceSubnets), `token` and `ca`;
//!   a control-plane node also gets `secretboxEncryptionSecret`,
//!   `aggregatorCA`, `serviceAccount` and `etcd.ca`, with their keys.
//!
//! Certificates and keys are the bundle's PEM text, base64-encoded, as
//! Talos's config carries them. Rendering is pure: the same inputs give
//! the same bytes (the golden tests rely on it).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dv_protocol::{MacAddr, MachineRole};
use serde::Serialize;

use super::TalosError;
use super::secrets::{CertAndKey, SecretsBundle};

/// The Talos machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineType {
    /// Runs etcd and the Kubernetes control plane.
    ControlPlane,
    /// Runs workloads only.
    Worker,
}

impl MachineType {
    /// The type of a machine with `role`; roles that are not a Talos node
    /// are refused, naming the ones that are.
    pub fn for_role(role: MachineRole) -> Result<MachineType, TalosError> {
        match role {
            MachineRole::ControlPlane => Ok(MachineType::ControlPlane),
            MachineRole::Worker => Ok(MachineType::Worker),
            other => Err(TalosError::Role(other.to_string())),
        }
    }

    /// `controlplane` or `worker`, as `machine.type` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::ControlPlane => "controlplane",
            MachineType::Worker => "worker",
        }
    }
}

/// What the config says about one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineFacts {
    /// Control plane or worker.
    pub kind: MachineType,
    /// The MAC it boots from: its first in the inventory.
    pub mac: MacAddr,
    /// Its host name (a DNS label).
    pub hostname: String,
    /// Its name in the site zone, `<hostname>.<site>.<domain>`.
    pub fqdn: String,
}

/// Renders the machine config of `machine` in the cluster `settings`
/// describe, with `secrets`.
pub fn render(
    settings: &crate::config::Talos,
    secrets: &SecretsBundle,
    machine: &MachineFacts,
) -> Result<String, TalosError> {
    let cp = machine.kind == MachineType::ControlPlane;
    let doc = Doc {
        version: "v1alpha1",
        debug: false,
        persist: true,
        machine: Machine {
            kind: machine.kind.as_str(),
            token: &secrets.trustd_token,
            ca: pem_pair(&secrets.os_ca, cp),
            cert_sans: vec![&machine.hostname, &machine.fqdn],
            network: Network {
                hostname: &machine.hostname,
                interfaces: vec![Interface {
                    device_selector: DeviceSelector {
                        hardware_addr: machine.mac.to_string(),
                    },
                    dhcp: true,
                }],
                nameservers: settings
                    .nameservers
                    .iter()
                    .map(|ip| ip.to_string())
                    .collect(),
            },
            install: Install {
                disk: &settings.install_disk,
                image: &settings.install_image,
                wipe: settings.wipe,
            },
        },
        cluster: Cluster {
            id: &secrets.cluster_id,
            secret: &secrets.cluster_secret,
            control_plane: ControlPlane {
                endpoint: &settings.endpoint,
            },
            cluster_name: &settings.cluster_name,
            network: ClusterNetwork {
                dns_domain: &settings.dns_domain,
                pod_subnets: settings.pod_subnets.iter().map(|n| n.to_string()).collect(),
                service_subnets: settings
                    .service_subnets
                    .iter()
                    .map(|n| n.to_string())
                    .collect(),
            },
            token: &secrets.bootstrap_token,
            secretbox_encryption_secret: cp.then_some(&secrets.secretbox_encryption_secret),
            ca: pem_pair(&secrets.kubernetes_ca, cp),
            aggregator_ca: cp.then(|| pem_pair(&secrets.aggregator_ca, true)),
            service_account: cp.then(|| KeyOnly {
                key: b64(&secrets.service_account_key),
            }),
            etcd: cp.then(|| Etcd {
                ca: pem_pair(&secrets.etcd_ca, true),
            }),
        },
    };
    yaml_serde::to_string(&doc).map_err(TalosError::Yaml)
}

fn b64(pem: &str) -> String {
    STANDARD.encode(pem.as_bytes())
}

fn pem_pair(ca: &CertAndKey, with_key: bool) -> PemPair {
    PemPair {
        crt: b64(&ca.crt),
        key: with_key.then(|| b64(&ca.key)),
    }
}

// The document, in Talos's field order and spelling.

#[derive(Serialize)]
struct Doc<'a> {
    version: &'static str,
    debug: bool,
    persist: bool,
    machine: Machine<'a>,
    cluster: Cluster<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Machine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    token: &'a str,
    ca: PemPair,
    #[serde(rename = "certSANs")]
    cert_sans: Vec<&'a str>,
    network: Network<'a>,
    install: Install<'a>,
}

#[derive(Serialize)]
struct PemPair {
    crt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

#[derive(Serialize)]
struct KeyOnly {
    key: String,
}

#[derive(Serialize)]
struct Network<'a> {
    hostname: &'a str,
    interfaces: Vec<Interface>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nameservers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Interface {
    device_selector: DeviceSelector,
    dhcp: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceSelector {
    hardware_addr: String,
}

#[derive(Serialize)]
struct Install<'a> {
    disk: &'a str,
    image: &'a str,
    wipe: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cluster<'a> {
    id: &'a str,
    secret: &'a str,
    control_plane: ControlPlane<'a>,
    cluster_name: &'a str,
    network: ClusterNetwork<'a>,
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secretbox_encryption_secret: Option<&'a String>,
    ca: PemPair,
    #[serde(rename = "aggregatorCA", skip_serializing_if = "Option::is_none")]
    aggregator_ca: Option<PemPair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_account: Option<KeyOnly>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etcd: Option<Etcd>,
}

#[derive(Serialize)]
struct ControlPlane<'a> {
    endpoint: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterNetwork<'a> {
    dns_domain: &'a str,
    pod_subnets: Vec<String>,
    service_subnets: Vec<String>,
}

#[derive(Serialize)]
struct Etcd {
    ca: PemPair,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_talos_roles_have_a_machine_type() {
        assert_eq!(
            MachineType::for_role(MachineRole::ControlPlane).unwrap(),
            MachineType::ControlPlane
        );
        assert_eq!(
            MachineType::for_role(MachineRole::Worker).unwrap(),
            MachineType::Worker
        );
        for role in [
            MachineRole::Unassigned,
            MachineRole::Storage,
            MachineRole::Provisioner,
        ] {
            let err = MachineType::for_role(role).unwrap_err().to_string();
            assert!(err.contains("control_plane or worker"), "{err}");
        }
    }
}
