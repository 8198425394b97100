//! The bodies of an agent's switch endpoints (`/v1/switches`,
//! `/v1/port-profiles`, `/v1/intent`): what a plan, an apply and a drift
//! check answer, and what assigning a port or defining a LAG asks for.
//!
//! A change is shown the way an operator reads it (`retag swp3: access 10
//! -> access 20`), with its parts alongside for programs.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::resource::{PortMode, PortName};
use crate::{MacAddr, MachineId, PortProfileName, SwitchName};

/// `PUT /v1/port-profiles/{name}`: what the profile carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    /// Access (one VLAN) or trunk (allowed VLANs, optional native VLAN).
    pub mode: PortMode,
}

/// `PUT /v1/switches/{switch}/ports/{port}`: the profile a port gets and
/// what is cabled to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortAssignRequest {
    /// The profile.
    pub profile: PortProfileName,
    /// The machine cabled to the port (inventory topology); provisioning
    /// that machine waits until the port is applied.
    #[serde(default)]
    pub machine: Option<MachineId>,
    /// The machine's NIC on the port.
    #[serde(default)]
    pub nic: Option<MacAddr>,
}

/// `PUT /v1/switches/{switch}/lags/{name}`: a bundle of member ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LagRequest {
    /// The member ports (no assignment of their own, in no other LAG).
    pub members: Vec<PortName>,
    /// The profile the bundle carries.
    pub profile: PortProfileName,
}

/// One step of a switch plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlannedChange {
    /// The port (or LAG).
    pub port: String,
    /// `add`, `retag`, `trunk`, `remove`, `clear` or `members`.
    pub kind: String,
    /// What it carries now; `None` when not on the switch.
    pub before: Option<String>,
    /// What it will carry; `None` when it is removed.
    pub after: Option<String>,
    /// The line an operator reads.
    pub text: String,
}

/// `GET /v1/switches/{switch}/plan` and `.../drift`: what applying the
/// intent would change on the switch now. Empty `changes` means the switch
/// does what the intent says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwitchPlan {
    /// The switch.
    pub switch: SwitchName,
    /// The changes, in the order they would be applied.
    pub changes: Vec<PlannedChange>,
    /// `true` when `changes` is empty.
    pub in_sync: bool,
}

/// `POST /v1/switches/{switch}/apply`: what was applied and what the switch
/// does afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwitchApplied {
    /// The switch.
    pub switch: SwitchName,
    /// The changes applied, in order (empty when it was in sync).
    pub applied: Vec<PlannedChange>,
    /// The ports as read back from the switch after the apply.
    pub realized: Vec<RealizedPort>,
    /// Whether the read-back matches the intent.
    pub in_sync: bool,
    /// Provisioning tasks that waited for this switch and were resumed.
    pub resumed_tasks: Vec<String>,
}

/// `POST /v1/switches/{switch}/apply` when a step failed: the steps before
/// it were undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwitchApplyFailed {
    /// What went wrong and what to do.
    pub error: String,
    /// The step that failed (nothing of it remains).
    pub failed: PlannedChange,
    /// The earlier steps undone, in the order they were undone.
    pub rolled_back: Vec<PlannedChange>,
    /// Earlier steps whose undo failed too: the switch needs attention.
    pub rollback_failed: Vec<String>,
}

/// One port as the switch really carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RealizedPort {
    /// The port (or LAG).
    pub port: String,
    /// What it carries (`access 10`, `trunk 10,20 native 10`).
    pub config: String,
}

/// `GET /v1/switches`: one configured switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwitchView {
    /// Its name, as the intent's assignments name it.
    pub name: SwitchName,
    /// `ovs` or `netlink`.
    pub driver: String,
    /// What it manages (`bridge br0 over unix:/run/openvswitch/db.sock`).
    pub target: String,
    /// The last apply: `applied`, `failed`, `pending` (started, never
    /// finished: the agent resumes it when it starts), or `never`.
    pub last_apply: String,
    /// When the last apply finished or failed (RFC 3339), if ever.
    pub last_apply_at: Option<String>,
    /// Why the last apply failed, when it did.
    pub last_error: Option<String>,
    /// The ports as last read back (after an apply or a drift check).
    pub realized: Vec<RealizedPort>,
    /// Changes found by the last drift check; empty when in sync.
    pub drift: Vec<String>,
}

/// `GET /v1/switches`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwitchList {
    /// Every switch in agent.toml's `[[switches]]`.
    pub switches: Vec<SwitchView>,
}
