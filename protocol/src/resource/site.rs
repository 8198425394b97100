//! Sites (datacenters) and racks.

use serde::{Deserialize, Serialize};

use crate::dns_name::DnsName;
use crate::id::RackId;
use crate::token::{HUB, SiteName};

/// Why a site record is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SiteError {
    /// The name is reserved for hub-level subjects and messages.
    #[error("site name {name:?} is reserved for the hub")]
    Reserved {
        /// The rejected name.
        name: SiteName,
    },
}

/// A datacenter: one agent, one NATS leaf node and JetStream domain, one DNS
/// zone `<name>.<domain>`. Sites are keyed by their [`SiteName`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// The site token (`lab`, `osl1`), unique across the federation.
    pub name: SiteName,
    /// The parent domain the site's zone lives under (`deevnet.net`).
    pub domain: DnsName,
    /// A name for people (`Oslo lab, room 2`).
    pub display_name: Option<String>,
}

impl Site {
    /// A site record; refuses the hub's reserved name [`HUB`].
    pub fn new(
        name: SiteName,
        domain: DnsName,
        display_name: Option<String>,
    ) -> Result<Self, SiteError> {
        if name.as_str() == HUB {
            return Err(SiteError::Reserved { name });
        }
        Ok(Self {
            name,
            domain,
            display_name,
        })
    }

    /// The site's own zone, `<name>.<domain>`.
    pub fn zone(&self) -> Result<DnsName, crate::DnsNameError> {
        DnsName::new(format!("{}.{}", self.name, self.domain))
    }
}

/// A rack inside a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rack {
    /// The rack's id.
    pub id: RackId,
    /// The site it stands in.
    pub site: SiteName,
    /// Its label on the floor (`r12`, `A-03`).
    pub name: String,
    /// Where to find it (`room 2, row B`).
    pub location: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hub_is_not_a_site() {
        let err = Site::new(SiteName::hub(), "x.net".parse().unwrap(), None).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
    }

    #[test]
    fn zone_is_name_under_domain() {
        let site = Site::new("lab".parse().unwrap(), "deevnet.net".parse().unwrap(), None).unwrap();
        assert_eq!(site.zone().unwrap().as_str(), "lab.deevnet.net");
    }
}
