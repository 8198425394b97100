//! Machines: physical servers from first DHCP packet to provisioned node.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{MachineId, RackId};
use crate::mac::MacAddr;
use crate::resource::bmc::BmcEndpoint;
use crate::token::SiteName;

/// A machine's lifecycle state.
///
/// ```text
/// discovered -> inspected -> available -> allocated -> provisioning -> ready
///                                 ^                          |            |
///                                 +------ deprovisioning <---+------------+
/// any state -> failed (an operator or a retry task takes it on from there)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    /// Seen (DHCP, BMC scan or import), nothing verified yet.
    Discovered,
    /// Hardware inventory collected and matched to its BMC.
    Inspected,
    /// Ready to be allocated to a role or tenant.
    Available,
    /// Claimed for a purpose, not yet installed.
    Allocated,
    /// An install is running.
    Provisioning,
    /// Installed and serving its role.
    Ready,
    /// Something went wrong; the task that failed says what.
    Failed,
    /// Being wiped and returned to the pool.
    Deprovisioning,
}

impl MachineState {
    /// The state as a lower-case word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discovered => "discovered",
            Self::Inspected => "inspected",
            Self::Available => "available",
            Self::Allocated => "allocated",
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Deprovisioning => "deprovisioning",
        }
    }
}

impl fmt::Display for MachineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a machine is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MachineRole {
    /// Not decided yet.
    Unassigned,
    /// A Kubernetes (Talos) control-plane node.
    ControlPlane,
    /// A Kubernetes (Talos) worker node.
    Worker,
    /// A storage node.
    Storage,
    /// The site's builder / provisioner host, where the agent runs.
    Provisioner,
}

impl fmt::Display for MachineRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unassigned => "unassigned",
            Self::ControlPlane => "control_plane",
            Self::Worker => "worker",
            Self::Storage => "storage",
            Self::Provisioner => "provisioner",
        })
    }
}

/// A physical machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Machine {
    /// The machine's id.
    pub id: MachineId,
    /// The site it is in.
    pub site: SiteName,
    /// The rack it is mounted in, once known.
    pub rack: Option<RackId>,
    /// Its lowest rack unit, once known.
    pub position: Option<u16>,
    /// The chassis serial number as the vendor reports it.
    pub serial: String,
    /// The vendor (`Dell Inc.`, `Supermicro`).
    pub vendor: String,
    /// The model (`PowerEdge R650`).
    pub model: String,
    /// Its NICs' MAC addresses; the first is the one it PXE-boots from.
    pub macs: Vec<MacAddr>,
    /// Its BMC, once known.
    pub bmc: Option<BmcEndpoint>,
    /// What it is for.
    pub role: MachineRole,
    /// Where it is in its lifecycle.
    pub state: MachineState,
}

impl Machine {
    /// True if one of the machine's NICs has this MAC.
    pub fn has_mac(&self, mac: MacAddr) -> bool {
        self.macs.contains(&mac)
    }
}
