//! The resources a site is made of, as they cross process boundaries: in
//! events, in commands and in API responses.
//!
//! These are plain records with public fields, built with struct literals.
//! Values with an invariant that is cheap to check carry it in their type and
//! check it both on construction and on deserialization ([`VlanId`],
//! [`Prefix`], [`DnsName`](crate::DnsName), the name tokens), so a value read
//! off the wire is as trustworthy as one built in code.
//!
//! | file | holds |
//! | --- | --- |
//! | `site.rs` | [`Site`], [`Rack`] |
//! | `machine.rs` | [`Machine`], [`MachineState`], [`MachineRole`] |
//! | `bmc.rs` | [`Bmc`], [`BmcEndpoint`], [`BmcAddress`], [`BmcProtocol`] |
//! | `network.rs` | [`Network`], [`VlanId`], [`Prefix`], [`NetworkSpec`], [`AddressRange`], [`Allocation`] |
//! | `fabric.rs` | [`PortProfile`], [`PortMode`], [`PortAssignment`], [`Lag`], [`PortName`] |
//! | `intent.rs` | [`SiteIntent`] and its validation ([`IntentError`], [`Problem`]) |
//! | `lease.rs` | [`Lease`], [`LeaseState`], [`LeaseRef`] |
//! | `dns.rs` | [`DnsRecord`], [`DnsRecordData`] |
//! | `task.rs` | [`Task`], [`TaskKind`], [`TaskState`], [`DependencyKind`] |
//! | `tenancy.rs` | [`Tenant`], [`Project`], [`Environment`], [`Quota`] |
//!
//! All enums are externally tagged (serde's default): postcard is not
//! self-describing and cannot decode internally or adjacently tagged enums.
//! Enum variants are numbered by position on the postcard wire, so new
//! variants go at the end (see `docs/adr/0003-envelope-and-codec.md`).

mod bmc;
mod dns;
mod fabric;
mod intent;
mod lease;
mod machine;
mod network;
mod site;
mod task;
mod tenancy;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use bmc::{Bmc, BmcAddress, BmcEndpoint, BmcHost, BmcProtocol};
pub use dns::{DnsRecord, DnsRecordData};
pub use fabric::{Lag, PortAssignment, PortMode, PortName, PortNameError, PortProfile};
pub use intent::{IntentError, Problem, SiteIntent, overlaps};
pub use lease::{Lease, LeaseRef, LeaseState};
pub use machine::{Machine, MachineRole, MachineState};
pub use network::{
    AddressRange, Allocation, Network, NetworkError, NetworkPurpose, NetworkSpec, Prefix, VlanId,
};
pub use site::{Rack, Site, SiteError};
pub use task::{DependencyKind, Task, TaskKind, TaskState};
pub use tenancy::{
    Environment, EnvironmentKind, MAX_DESCRIPTION, MAX_DISPLAY_NAME, Project, Quota, TenancyError,
    Tenant,
};

use crate::id::{BmcId, DnsRecordId, LeaseId, MachineId, NetworkId, PrefixId, RackId, TaskId};
use crate::token::SiteName;

/// A reference to one resource of any kind: what a task works on, what an
/// event is about. Displayed as `<kind>:<key>` (`machine:0190a5c4-...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceRef {
    /// A site, by name.
    Site(SiteName),
    /// A rack.
    Rack(RackId),
    /// A machine.
    Machine(MachineId),
    /// A BMC.
    Bmc(BmcId),
    /// A network.
    Network(NetworkId),
    /// A prefix.
    Prefix(PrefixId),
    /// A DHCP lease.
    Lease(LeaseId),
    /// A DNS record.
    DnsRecord(DnsRecordId),
    /// A task.
    Task(TaskId),
}

impl ResourceRef {
    /// The resource kind as a lower-case word (`machine`, `dns_record`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Site(_) => "site",
            Self::Rack(_) => "rack",
            Self::Machine(_) => "machine",
            Self::Bmc(_) => "bmc",
            Self::Network(_) => "network",
            Self::Prefix(_) => "prefix",
            Self::Lease(_) => "lease",
            Self::DnsRecord(_) => "dns_record",
            Self::Task(_) => "task",
        }
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        match self {
            Self::Site(name) => write!(f, "{kind}:{name}"),
            Self::Rack(id) => write!(f, "{kind}:{id}"),
            Self::Machine(id) => write!(f, "{kind}:{id}"),
            Self::Bmc(id) => write!(f, "{kind}:{id}"),
            Self::Network(id) => write!(f, "{kind}:{id}"),
            Self::Prefix(id) => write!(f, "{kind}:{id}"),
            Self::Lease(id) => write!(f, "{kind}:{id}"),
            Self::DnsRecord(id) => write!(f, "{kind}:{id}"),
            Self::Task(id) => write!(f, "{kind}:{id}"),
        }
    }
}
