//! A machine's BMC driver, from the inventory and its sealed login.

use dv_protocol::{BmcProtocol, Machine};

use super::redfish::Redfish;
use super::{BmcError, Limits};
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
    /// Its BMC speaks a protocol with no driver yet.
    #[error("machine {serial}'s BMC speaks {protocol}; this agent drives Redfish BMCs only so far")]
    NotRedfish {
        /// The machine.
        serial: String,
        /// Its BMC's protocol.
        protocol: BmcProtocol,
    },
    /// The store failed.
    #[error("cannot read the inventory")]
    Store(#[from] StoreError),
    /// The driver could not be built.
    #[error(transparent)]
    Bmc(#[from] BmcError),
}

/// The machine `key` (id, serial or MAC) and a driver for its BMC.
pub async fn driver_for(
    store: &Store,
    site_key: &SiteKey,
    key: &str,
    limits: Limits,
) -> Result<(Machine, Redfish), DriverError> {
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
    if endpoint.protocol != BmcProtocol::Redfish {
        return Err(DriverError::NotRedfish {
            serial: machine.serial,
            protocol: endpoint.protocol,
        });
    }
    let url = format!("{}://{}", login.scheme, endpoint.address);
    let password = login.password.unwrap_or_default();
    let driver = Redfish::new(&url, &login.user, &password, None, limits)?;
    Ok((machine, driver))
}
