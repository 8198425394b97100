//! Talos Linux machine configuration: what a provisioned machine installs
//! and joins its cluster with.
//!
//! - [`secrets`]: the cluster secrets bundle (CAs, tokens, encryption
//!   secret), generated once per cluster; the store keeps it sealed under
//!   the site key (`store::talos`, schema 0008).
//! - [`config`]: renders a machine's v1alpha1 machine config from the
//!   `[talos]` settings, the bundle and the machine's inventory facts.
//!
//! [`Talos`] ties them to the agent: it names machines, builds the boot
//! entry that installs Talos (kernel, initrd, and a command line pointing
//! at `GET /boot/<mac>/talos.yaml`), and produces a machine's config,
//! creating the cluster's bundle the first time one is needed. The HTTP
//! route (`http::talos`) decides who may fetch it; see docs/talos.md.

pub mod config;
pub mod secrets;

use std::collections::HashMap;
use std::sync::Arc;

use dv_protocol::{MacAddr, Machine};

pub use config::{MachineFacts, MachineType};
pub use secrets::SecretsBundle;

use crate::boot::{BootState, InstallParams, MachineBoot};
use crate::inventory::SiteKey;
use crate::store::{Store, StoreError};

/// Kernel parameters Talos requires (slab_nomerge, pti=on: enforced by its
/// KSPP checks) or advises (init_on_alloc=1) on every boot.
pub const KSPP: &str = "init_on_alloc=1 slab_nomerge pti=on";

/// What can go wrong making a machine's Talos config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TalosError {
    /// The machine's inventory role is not a Talos node role.
    #[error(
        "role {0} has no Talos machine config; set the machine's role to control_plane or worker"
    )]
    Role(String),
    /// The machine has no MAC to boot from and be selected by.
    #[error("machine {0} has no MAC address in the inventory")]
    NoMac(String),
    /// Key or certificate generation failed.
    #[error("cannot generate the cluster's keys and certificates")]
    Crypto(#[source] rcgen::Error),
    /// A generated key did not have the expected DER form.
    #[error("a generated key is not in the expected form ({0})")]
    KeyForm(&'static str),
    /// The bundle could not be serialized for sealing.
    #[error("cannot encode the secrets bundle")]
    Encode(#[source] serde_json::Error),
    /// A stored bundle did not decode.
    #[error("cannot decode the secrets bundle")]
    Decode(#[source] serde_json::Error),
    /// The YAML could not be written.
    #[error("cannot write the machine config as YAML")]
    Yaml(#[source] yaml_serde::Error),
    /// The store failed (or holds a bundle that does not open).
    #[error("the store failed")]
    Store(#[from] StoreError),
}

/// The agent's Talos settings and what it needs to apply them.
#[derive(Debug)]
pub struct Talos {
    settings: crate::config::Talos,
    key: SiteKey,
    site_zone: String,
    base_url: String,
    /// Host names of DHCP reservations, by MAC: the names the agent
    /// already publishes in the site zone.
    names: HashMap<MacAddr, String>,
}

impl Talos {
    /// From the site config; `None` when it has no `[talos]` section.
    pub fn from_config(config: &crate::config::Config, key: SiteKey) -> Option<Arc<Talos>> {
        let settings = config.talos.clone()?;
        let names = config
            .dhcp
            .subnets
            .iter()
            .flat_map(|s| &s.reservations)
            .filter_map(|r| match (&r.client, &r.hostname) {
                (crate::config::ClientKey::Mac(mac), Some(name)) => Some((*mac, name.clone())),
                _ => None,
            })
            .collect();
        Some(Talos::new(
            settings,
            key,
            config.site_zone(),
            &config.boot.http_url,
            names,
        ))
    }

    /// From its parts (tests build one without a whole config).
    pub fn new(
        settings: crate::config::Talos,
        key: SiteKey,
        site_zone: String,
        base_url: &str,
        names: HashMap<MacAddr, String>,
    ) -> Arc<Talos> {
        Arc::new(Talos {
            settings,
            key,
            site_zone,
            base_url: base_url.trim_end_matches('/').to_owned(),
            names,
        })
    }

    /// The `[talos]` settings.
    pub fn settings(&self) -> &crate::config::Talos {
        &self.settings
    }

    /// Where the machine booting from `mac` fetches its config.
    pub fn config_url(&self, mac: MacAddr) -> String {
        format!("{}/boot/{mac}/talos.yaml", self.base_url)
    }

    /// The machine's host name: its DHCP reservation's name if one of its
    /// MACs has one (the name the site zone already publishes), else
    /// `node-<serial>` made a DNS label.
    pub fn hostname(&self, machine: &Machine) -> String {
        if let Some(name) = machine.macs.iter().find_map(|m| self.names.get(m)) {
            return name.clone();
        }
        let mut label = String::from("node-");
        for c in machine.serial.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                label.push(c);
            } else if !label.ends_with('-') {
                label.push('-');
            }
        }
        label.truncate(63);
        label.trim_end_matches('-').to_owned()
    }

    /// What the config says about `machine`; refuses roles that are not a
    /// Talos node.
    pub fn facts(&self, machine: &Machine) -> Result<MachineFacts, TalosError> {
        let kind = MachineType::for_role(machine.role)?;
        let mac = *machine
            .macs
            .first()
            .ok_or_else(|| TalosError::NoMac(machine.serial.clone()))?;
        let hostname = self.hostname(machine);
        Ok(MachineFacts {
            kind,
            mac,
            fqdn: format!("{hostname}.{}", self.site_zone),
            hostname,
        })
    }

    /// The boot entry that installs Talos on `machine`: its boot MAC in
    /// state install, the Talos kernel and initrd, and the command line
    /// naming its config URL.
    pub fn install_entry(&self, machine: &Machine) -> Result<MachineBoot, TalosError> {
        let facts = self.facts(machine)?;
        Ok(MachineBoot {
            mac: facts.mac,
            state: BootState::Install,
            hostname: Some(facts.hostname),
            install: InstallParams {
                kernel: Some(self.settings.kernel.clone()),
                initrd: Some(self.settings.initrd.clone()),
                cmdline: Some(format!(
                    "talos.platform=metal {KSPP} talos.config={}",
                    self.config_url(facts.mac)
                )),
            },
        })
    }

    /// The boot entry after install: boot the local disk (any role: a
    /// machine whose role changed meanwhile still boots what it installed).
    pub fn local_entry(&self, machine: &Machine) -> Result<MachineBoot, TalosError> {
        let mac = *machine
            .macs
            .first()
            .ok_or_else(|| TalosError::NoMac(machine.serial.clone()))?;
        Ok(MachineBoot {
            hostname: Some(self.hostname(machine)),
            ..MachineBoot::unknown(mac, BootState::Local)
        })
    }

    /// The cluster's secrets bundle, generated and stored the first time.
    pub async fn secrets(&self, store: &Store) -> Result<SecretsBundle, TalosError> {
        let (key, cluster) = (self.key.clone(), self.settings.cluster_name.clone());
        let found = store
            .read(move |c| crate::store::talos::get(c, &key, &cluster))
            .await?;
        if let Some(bundle) = found {
            return Ok(bundle);
        }
        let fresh = SecretsBundle::generate(time::OffsetDateTime::now_utc())?;
        let (key, cluster) = (self.key.clone(), self.settings.cluster_name.clone());
        let (bundle, created) = store
            .write(move |c| crate::store::talos::insert_once(c, &key, &cluster, &fresh))
            .await?;
        if created {
            tracing::info!(cluster = %self.settings.cluster_name, "talos: cluster secrets generated and sealed in the store");
        }
        Ok(bundle)
    }

    /// The machine config of `machine` (YAML).
    pub async fn machine_config(
        &self,
        store: &Store,
        machine: &Machine,
    ) -> Result<String, TalosError> {
        let facts = self.facts(machine)?;
        let secrets = self.secrets(store).await?;
        config::render(&self.settings, &secrets, &facts)
    }
}

/// `[talos]` settings for unit tests: the lab's cluster with the defaults.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_settings() -> crate::config::Talos {
    crate::config::Talos {
        cluster_name: "lab".into(),
        endpoint: "https://10.77.0.50:6443".into(),
        install_image: "ghcr.io/siderolabs/installer:v1.11.5".into(),
        install_disk: "/dev/sda".into(),
        wipe: false,
        kernel: "talos/vmlinuz-amd64".into(),
        initrd: "talos/initramfs-amd64.xz".into(),
        dns_domain: "cluster.local".into(),
        pod_subnets: vec!["10.244.0.0/16".parse().unwrap()],
        service_subnets: vec!["10.96.0.0/12".parse().unwrap()],
        nameservers: vec![],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use dv_protocol::{MachineId, MachineRole, MachineState, SiteName};

    use super::*;

    fn machine(serial: &str, role: MachineRole, macs: &[&str]) -> Machine {
        Machine {
            id: MachineId::new(),
            site: SiteName::new("lab").unwrap(),
            rack: None,
            position: None,
            serial: serial.into(),
            vendor: String::new(),
            model: String::new(),
            macs: macs.iter().map(|m| m.parse().unwrap()).collect(),
            bmc: None,
            role,
            state: MachineState::Allocated,
        }
    }

    fn talos(dir: &std::path::Path) -> Arc<Talos> {
        let names = HashMap::from([("52:54:00:aa:01:01".parse().unwrap(), "cp-01".to_owned())]);
        Talos::new(
            test_settings(),
            SiteKey::load_or_create(dir).unwrap(),
            "lab.dataverket.test".into(),
            "http://10.77.0.1:8680/",
            names,
        )
    }

    #[test]
    fn hostnames_come_from_reservations_else_the_serial() {
        let dir = tempfile::tempdir().unwrap();
        let t = talos(dir.path());
        let reserved = machine(
            "SN-1",
            MachineRole::ControlPlane,
            &["52:54:00:aa:00:01", "52:54:00:aa:01:01"],
        );
        assert_eq!(t.hostname(&reserved), "cp-01");
        let plain = machine(
            "Dell/ABC_123--x",
            MachineRole::Worker,
            &["52:54:00:aa:00:02"],
        );
        assert_eq!(t.hostname(&plain), "node-dell-abc-123-x");
        let long = machine(
            &"X".repeat(100),
            MachineRole::Worker,
            &["52:54:00:aa:00:03"],
        );
        let name = t.hostname(&long);
        assert!(name.len() <= 63 && !name.ends_with('-'), "{name}");
        let facts = t.facts(&reserved).unwrap();
        assert_eq!(facts.fqdn, "cp-01.lab.dataverket.test");
        assert_eq!(
            facts.mac.to_string(),
            "52:54:00:aa:00:01",
            "the first MAC boots"
        );
    }

    #[test]
    fn the_install_entry_boots_talos_with_its_config_url() {
        let dir = tempfile::tempdir().unwrap();
        let t = talos(dir.path());
        let m = machine("SN-1", MachineRole::Worker, &["52:54:00:aa:00:02"]);
        let entry = t.install_entry(&m).unwrap();
        assert_eq!(entry.state, BootState::Install);
        assert!(entry.check().is_ok());
        assert_eq!(entry.install.kernel.as_deref(), Some("talos/vmlinuz-amd64"));
        assert_eq!(
            entry.install.cmdline.as_deref(),
            Some(
                "talos.platform=metal init_on_alloc=1 slab_nomerge pti=on \
                 talos.config=http://10.77.0.1:8680/boot/52:54:00:aa:00:02/talos.yaml"
            )
        );
        let local = t.local_entry(&m).unwrap();
        assert_eq!(local.state, BootState::Local);
        assert_eq!(local.hostname.as_deref(), Some("node-sn-1"));
        let storage = machine("SN-2", MachineRole::Storage, &["52:54:00:aa:00:03"]);
        assert!(matches!(
            t.install_entry(&storage),
            Err(TalosError::Role(_))
        ));
        let none = machine("SN-3", MachineRole::Worker, &[]);
        assert!(matches!(t.install_entry(&none), Err(TalosError::NoMac(_))));
    }
}
