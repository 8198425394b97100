//! A machine's BMC driver, from the inventory and its sealed login: the
//! [`Driver`] for whichever protocol its BMC speaks.

use dv_protocol::{BmcProtocol, Machine};

use super::ipmi::Ipmi;
use super::redfish::Redfish;
use super::{Bmc, BmcError, BootTarget, Limits, PowerAction, PowerState, SystemInfo};
use crate::inventory::SiteKey;
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

/// The machine `key` (id, serial or MAC) and a driver for its BMC.
pub async fn driver_for(
    store: &Store,
    site_key: &SiteKey,
    key: &str,
    limits: Limits,
) -> Result<(Machine, Driver), DriverError> {
    let (lookup, sk) = (key.to_owned(), site_key.clone());
    let found = store
        .read(move |c| {
            let Some(m) = db::machine(c, &lookup)? else {
                return Ok(None);
            };
            let login = db::bmc_login(c, &sk, m.id)?;
            Ok(Some((m, login)))
        })
        .await?;
    let Some((machine, login)) = found else {
        return Err(DriverError::NotFound(key.to_owned()));
    };
    let (Some(endpoint), Some(login)) = (machine.bmc.clone(), login) else {
        return Err(DriverError::NoBmc(machine.serial));
    };
    let password = login.password.unwrap_or_default();
    let driver = match endpoint.protocol {
        BmcProtocol::Redfish => {
            let url = format!("{}://{}", login.scheme, endpoint.address);
            Driver::Redfish(Redfish::new(&url, &login.user, &password, None, limits)?)
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
