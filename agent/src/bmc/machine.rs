//! A machine's BMC driver, from the inventory and its sealed login: the
//! [`Driver`] for whichever protocol its BMC speaks.
//!
//! A Redfish BMC on `https` gets its certificate pinned here: the first
//! connection records the certificate's SHA-256 in the store (schema 0009),
//! and every later driver accepts only that certificate
//! ([`super::redfish::Trust`]). [`repin`] is the operator's way to accept
//! a replaced certificate.

use dv_protocol::{Actor, BmcProtocol, Machine};

use super::ipmi::Ipmi;
use super::redfish::{Redfish, Trust};
use super::{Bmc, BmcError, BootTarget, Fingerprint, Limits, PowerAction, PowerState, SystemInfo};
use crate::inventory::SiteKey;
use crate::store::inventory::{BmcLogin, CertPin};
use crate::store::{Store, StoreError, inventory as db};

/// Why there is no driver for a machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// No machine by that key.
    #[error("no machine has the id, serial or MAC {0:?}")]
    NotFound(String),
    /// The inventory has no BMC for it.
    #[error("machine {0} has no BMC in the inventory; add one (POST /v1/inventory)")]
    NoBmc(String),
    /// The store failed.
    #[error("cannot read the inventory")]
    Store(#[from] StoreError),
    /// The driver could not be built.
    #[error(transparent)]
    Bmc(#[from] BmcError),
    /// A re-pin for a BMC that is not reached over TLS.
    #[error("machine {0}'s BMC is not a Redfish BMC on https; there is no certificate to pin")]
    NotTls(String),
    /// A re-pin that named a certificate other than the one presented.
    #[error(
        "machine {machine}: the BMC presents certificate SHA-256 {presented}, not {asked} as the re-pin asked; nothing changed"
    )]
    RepinRefused {
        /// The machine's serial.
        machine: String,
        /// What the operator asked to pin.
        asked: Fingerprint,
        /// What the BMC presents.
        presented: Fingerprint,
    },
}

/// A driver for one of the protocols BMCs speak. The [`Bmc`] trait returns
/// `impl Future`, so it is not object safe: this enum delegates instead.
#[derive(Debug)]
pub enum Driver {
    /// DMTF Redfish.
    Redfish(Redfish),
    /// IPMI v2.0 over LAN (RMCP+).
    Ipmi(Ipmi),
}

impl Bmc for Driver {
    async fn system_info(&self) -> Result<SystemInfo, BmcError> {
        match self {
            Driver::Redfish(d) => d.system_info().await,
            Driver::Ipmi(d) => d.system_info().await,
        }
    }

    async fn power_state(&self) -> Result<PowerState, BmcError> {
        match self {
            Driver::Redfish(d) => d.power_state().await,
            Driver::Ipmi(d) => d.power_state().await,
        }
    }

    async fn set_power(&self, action: PowerAction) -> Result<(), BmcError> {
        match self {
            Driver::Redfish(d) => d.set_power(action).await,
            Driver::Ipmi(d) => d.set_power(action).await,
        }
    }

    async fn boot_once(&self, target: BootTarget) -> Result<(), BmcError> {
        match self {
            Driver::Redfish(d) => d.boot_once(target).await,
            Driver::Ipmi(d) => d.boot_once(target).await,
        }
    }
}

/// The machine `key`, its BMC login and certificate pin.
async fn lookup(
    store: &Store,
    site_key: &SiteKey,
    key: &str,
) -> Result<(Machine, BmcLogin, Option<Fingerprint>), DriverError> {
    let (lookup, sk) = (key.to_owned(), site_key.clone());
    let found = store
        .read(move |c| {
            let Some(m) = db::machine(c, &lookup)? else {
                return Ok(None);
            };
            let login = db::bmc_login(c, &sk, m.id)?;
            let pin = db::bmc_cert_pin(c, m.id)?;
            Ok(Some((m, login, pin)))
        })
        .await?;
    let Some((machine, login, pin)) = found else {
        return Err(DriverError::NotFound(key.to_owned()));
    };
    let (Some(_), Some(login)) = (machine.bmc.as_ref(), login) else {
        return Err(DriverError::NoBmc(machine.serial));
    };
    let pin = pin
        .map(|hex| {
            hex.parse::<Fingerprint>().map_err(|e| StoreError::Corrupt {
                what: "bmc certificate pin",
                key: machine.id.to_string(),
                detail: e.to_string(),
            })
        })
        .transpose()?;
    Ok((machine, login, pin))
}

/// The machine `key` (id, serial or MAC) and a driver for its BMC. For a
/// Redfish BMC on `https` with no certificate pinned yet, this connects
/// once (the service root, no credentials sent) and pins the certificate
/// presented.
pub async fn driver_for(
    store: &Store,
    site_key: &SiteKey,
    key: &str,
    limits: Limits,
) -> Result<(Machine, Driver), DriverError> {
    let (machine, login, pin) = lookup(store, site_key, key).await?;
    let Some(endpoint) = machine.bmc.clone() else {
        return Err(DriverError::NoBmc(machine.serial));
    };
    let password = login.password.unwrap_or_default();
    let driver = match endpoint.protocol {
        BmcProtocol::Redfish => {
            let url = format!("{}://{}", login.scheme, endpoint.address);
            let trust = pin.map_or(Trust::FirstUse, Trust::Pinned);
            let d = Redfish::with_trust(&url, &login.user, &password, None, limits, trust)?;
            if login.scheme == "https" && pin.is_none() {
                pin_first_use(store, &machine, &d).await?;
            }
            Driver::Redfish(d)
        }
        BmcProtocol::Ipmi => Driver::Ipmi(Ipmi::new(
            &endpoint.address.to_string(),
            &login.user,
            &password,
            limits,
        )),
    };
    Ok((machine, driver))
}

/// Connects `driver` (first use) and records the certificate it saw.
async fn pin_first_use(
    store: &Store,
    machine: &Machine,
    driver: &Redfish,
) -> Result<(), DriverError> {
    driver.probe().await?;
    let Some(presented) = driver.certificate() else {
        return Ok(());
    };
    let (id, site) = (machine.id, machine.site.clone());
    let outcome = store
        .write(move |c| {
            let actor = Actor::agent(&site);
            db::pin_bmc_cert(c, &site, &actor, id, presented, false)
        })
        .await?;
    match outcome {
        CertPin::Recorded { .. } => {
            tracing::info!(machine = %machine.id, serial = %machine.serial, sha256 = %presented, "BMC TLS certificate pinned on first use");
            Ok(())
        }
        CertPin::Unchanged | CertPin::NoBmc => Ok(()),
        // Another caller pinned a different certificate meanwhile.
        CertPin::Kept { pinned } => {
            let expected = pinned
                .parse::<Fingerprint>()
                .map_err(|e| StoreError::Corrupt {
                    what: "bmc certificate pin",
                    key: machine.id.to_string(),
                    detail: e.to_string(),
                })?;
            Err(BmcError::CertificateChanged {
                endpoint: machine
                    .bmc
                    .as_ref()
                    .map(|b| b.address.to_string())
                    .unwrap_or_default(),
                expected,
                presented,
            }
            .into())
        }
    }
}

/// What a re-pin did.
#[derive(Debug, Clone)]
pub struct Repinned {
    /// The machine.
    pub machine: Machine,
    /// The pin it replaced, if any.
    pub previous: Option<Fingerprint>,
    /// The certificate pinned now.
    pub pinned: Fingerprint,
}

/// Re-pins the TLS certificate of the machine `key`'s BMC: connects
/// (service root only, no credentials sent), and pins the certificate the
/// BMC presents now, if it is `expect` when that is given. For an operator
/// who replaced the BMC's certificate, or the BMC.
pub async fn repin(
    store: &Store,
    site_key: &SiteKey,
    key: &str,
    expect: Option<Fingerprint>,
    limits: Limits,
) -> Result<Repinned, DriverError> {
    let (machine, login, previous) = lookup(store, site_key, key).await?;
    let Some(endpoint) = machine.bmc.clone() else {
        return Err(DriverError::NoBmc(machine.serial));
    };
    if endpoint.protocol != BmcProtocol::Redfish || login.scheme != "https" {
        return Err(DriverError::NotTls(machine.serial));
    }
    let url = format!("https://{}", endpoint.address);
    let probe = Redfish::with_trust(&url, "", "", None, limits, Trust::FirstUse)?;
    probe.probe().await?;
    let Some(presented) = probe.certificate() else {
        return Err(BmcError::Protocol {
            endpoint: url,
            path: "/redfish/v1/".into(),
            detail: "no certificate seen in the TLS handshake".into(),
        }
        .into());
    };
    if let Some(asked) = expect
        && asked != presented
    {
        return Err(DriverError::RepinRefused {
            machine: machine.serial,
            asked,
            presented,
        });
    }
    let (id, site) = (machine.id, machine.site.clone());
    store
        .write(move |c| {
            let actor = Actor::agent(&site);
            db::pin_bmc_cert(c, &site, &actor, id, presented, true)
        })
        .await?;
    tracing::warn!(machine = %machine.id, serial = %machine.serial, sha256 = %presented,
        previous = %previous.map(|p| p.to_string()).unwrap_or_else(|| "none".into()),
        "BMC TLS certificate re-pinned by an operator");
    Ok(Repinned {
        machine,
        previous,
        pinned: presented,
    })
}
