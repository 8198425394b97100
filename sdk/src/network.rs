//! A site agent's `/v1/networks`: network intent and IPAM (agent only; a
//! hub answers [`Error::NoEndpoint`]).
//!
//! The intent ([`NetworkSpec`]) and an address ([`Allocation`]) are the
//! protocol's own types. What the agent adds around them (the ids of a
//! stored network, an allocation's DNS record and DHCP reservation) has no
//! protocol type yet, so the shapes are declared here, field for field as
//! `agent/src/store/ipam.rs` serializes them; moving them into
//! `dv_protocol::api` would let the agent share them.

use std::net::IpAddr;

use dv_protocol::{Allocation, MacAddr, NetworkId, NetworkSpec, PrefixId};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Error, decode};

/// A stored network: its ids and its intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkView {
    /// The network's id.
    pub id: NetworkId,
    /// Its prefix's id.
    pub prefix_id: PrefixId,
    /// The intent.
    #[serde(flatten)]
    pub spec: NetworkSpec,
}

/// The DHCP reservation an address carries when it was allocated for a MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The NIC.
    pub mac: MacAddr,
    /// The address it always gets.
    pub ip: IpAddr,
    /// Its host name (DHCP option 12), if any.
    pub hostname: Option<String>,
}

/// An allocated address with what hangs off it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressView {
    /// The allocation.
    #[serde(flatten)]
    pub allocation: Allocation,
    /// The id of its DNS A record's events, when it has a name.
    pub dns_record_id: Option<String>,
    /// Its DHCP reservation, when it has a MAC.
    pub dhcp_reservation: Option<Reservation>,
}

/// What [`Client::address_allocate`] asks for; every field is optional
/// (the lowest free address, no name, no reservation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressRequest {
    /// Who holds the address (free text: a machine, a service, a ticket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A DNS label for the address in the site zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// A NIC to reserve the address for in DHCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// This address instead of the lowest free one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

#[derive(Deserialize)]
struct NetworkList {
    networks: Vec<NetworkView>,
}

#[derive(Deserialize)]
struct AddressList {
    addresses: Vec<AddressView>,
}

impl Client {
    /// The site's networks (agent).
    pub async fn network_list(&self) -> Result<Vec<NetworkView>, Error> {
        let list: NetworkList = self.get_json(self.url(&["v1", "networks"])).await?;
        Ok(list.networks)
    }

    /// One network by name (agent).
    pub async fn network_get(&self, name: &str) -> Result<NetworkView, Error> {
        self.get_json(self.url(&["v1", "networks", name])).await
    }

    /// Creates a network (agent): [`Error::Invalid`] lists every problem
    /// of the spec, [`Error::Conflict`] what it clashes with (VLAN, name,
    /// prefix).
    pub async fn network_create(&self, spec: &NetworkSpec) -> Result<NetworkView, Error> {
        self.post_json(self.url(&["v1", "networks"]), spec).await
    }

    /// Deletes a network (agent); [`Error::Conflict`] while it holds
    /// addresses. Answers what was deleted.
    pub async fn network_delete(&self, name: &str) -> Result<NetworkView, Error> {
        self.delete_json(&["v1", "networks", name]).await
    }

    /// The network's allocated addresses (agent).
    pub async fn address_list(&self, network: &str) -> Result<Vec<AddressView>, Error> {
        let list: AddressList = self
            .get_json(self.url(&["v1", "networks", network, "addresses"]))
            .await?;
        Ok(list.addresses)
    }

    /// Allocates an address on the network (agent): [`Error::Conflict`]
    /// when the prefix is full or a name, MAC or address is taken.
    pub async fn address_allocate(
        &self,
        network: &str,
        request: &AddressRequest,
    ) -> Result<AddressView, Error> {
        self.post_json(self.url(&["v1", "networks", network, "addresses"]), request)
            .await
    }

    /// Releases an address (and its DNS record and DHCP reservation)
    /// (agent). Answers what was released.
    pub async fn address_release(
        &self,
        network: &str,
        address: IpAddr,
    ) -> Result<AddressView, Error> {
        let ip = address.to_string();
        self.delete_json(&["v1", "networks", network, "addresses", &ip])
            .await
    }

    pub(crate) async fn delete_json<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<T, Error> {
        let url = self.url(segments);
        let resp = self
            .execute(self.request(Method::DELETE, url.clone()), &url)
            .await?;
        decode(resp, &url).await
    }
}
