//! Durable workflow tasks and their states.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{MachineId, NetworkId, TaskId};
use crate::resource::ResourceRef;
use crate::token::SiteName;

/// How a blocked task depends on what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependencyKind {
    /// The task cannot make any progress until the dependency is there
    /// (the BMC answers, the VLAN exists).
    Hard,
    /// The task could go on in a degraded way; it waits for a while first
    /// (for example the hub, for an inventory upload).
    Soft,
    /// The dependency exists but has not converged yet; a reconciler is
    /// expected to bring it to the wanted state (a switch port config being
    /// applied).
    Reconciliation,
}

impl fmt::Display for DependencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
            Self::Reconciliation => "reconciliation",
        })
    }
}

/// Where a task is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Accepted, not started.
    Pending,
    /// Working on a step.
    Running {
        /// The step in progress (`power_on`, `wait_for_pxe`, `install_talos`).
        step: String,
    },
    /// Waiting for something outside the task.
    Blocked {
        /// What it waits for, as `<kind>:<key>` (`bmc:10.0.0.5`,
        /// `network:vlan-20`, `service:hub`).
        dependency: String,
        /// How it depends on it.
        kind: DependencyKind,
    },
    /// Gave up.
    Failed {
        /// Why, for an operator.
        reason: String,
    },
    /// Done.
    Succeeded,
}

impl TaskState {
    /// The state's name (`pending`, `running`, `blocked`, `failed`, `succeeded`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running { .. } => "running",
            Self::Blocked { .. } => "blocked",
            Self::Failed { .. } => "failed",
            Self::Succeeded => "succeeded",
        }
    }

    /// True once the task will not change state again by itself.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Succeeded)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pending | Self::Succeeded => f.write_str(self.name()),
            Self::Running { step } => write!(f, "running ({step})"),
            Self::Blocked { dependency, kind } => {
                write!(f, "blocked on {dependency} ({kind} dependency)")
            }
            Self::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// What a task does, and to what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Collect hardware inventory through the BMC and an inspection boot.
    InspectMachine {
        /// The machine.
        machine: MachineId,
    },
    /// Install the machine for its role (PXE, Talos config, first boot).
    ProvisionMachine {
        /// The machine.
        machine: MachineId,
    },
    /// Wipe the machine and return it to the pool.
    DeprovisionMachine {
        /// The machine.
        machine: MachineId,
    },
    /// Power-cycle the machine through its BMC.
    PowerCycleMachine {
        /// The machine.
        machine: MachineId,
    },
    /// Bring switches and DHCP in line with a network's definition.
    ApplyNetwork {
        /// The network.
        network: NetworkId,
    },
}

impl TaskKind {
    /// The kind as a lower-case word (`provision_machine`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::InspectMachine { .. } => "inspect_machine",
            Self::ProvisionMachine { .. } => "provision_machine",
            Self::DeprovisionMachine { .. } => "deprovision_machine",
            Self::PowerCycleMachine { .. } => "power_cycle_machine",
            Self::ApplyNetwork { .. } => "apply_network",
        }
    }

    /// The resource the task works on.
    pub fn target(&self) -> ResourceRef {
        match self {
            Self::InspectMachine { machine }
            | Self::ProvisionMachine { machine }
            | Self::DeprovisionMachine { machine }
            | Self::PowerCycleMachine { machine } => ResourceRef::Machine(*machine),
            Self::ApplyNetwork { network } => ResourceRef::Network(*network),
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.target())
    }
}

/// A durable workflow task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    /// The task's id.
    pub id: TaskId,
    /// The site that runs it.
    pub site: SiteName,
    /// What it does, and to what.
    pub kind: TaskKind,
    /// Where it is.
    pub state: TaskState,
    /// When it was created.
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When its state last changed.
    #[serde(with = "crate::timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl Task {
    /// A new pending task, created now.
    pub fn new(site: SiteName, kind: TaskKind) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            id: TaskId::new(),
            site,
            kind,
            state: TaskState::Pending,
            created_at: now,
            updated_at: now,
        }
    }

    /// The resource the task works on.
    pub fn target(&self) -> ResourceRef {
        self.kind.target()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blocked_state_reads_well() {
        let state = TaskState::Blocked {
            dependency: "bmc:10.0.0.5".into(),
            kind: DependencyKind::Hard,
        };
        assert_eq!(
            state.to_string(),
            "blocked on bmc:10.0.0.5 (hard dependency)"
        );
        assert!(!state.is_terminal());
        assert!(TaskState::Succeeded.is_terminal());
    }

    #[test]
    fn json_shape_is_externally_tagged_snake_case() {
        let state = TaskState::Blocked {
            dependency: "network:vlan-20".into(),
            kind: DependencyKind::Reconciliation,
        };
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            r#"{"blocked":{"dependency":"network:vlan-20","kind":"reconciliation"}}"#
        );
        assert_eq!(
            serde_json::to_string(&TaskState::Pending).unwrap(),
            r#""pending""#
        );
    }

    #[test]
    fn new_task_is_pending_and_targets_its_resource() {
        let machine = MachineId::new();
        let task = Task::new(
            "lab".parse().unwrap(),
            TaskKind::ProvisionMachine { machine },
        );
        assert_eq!(task.state, TaskState::Pending);
        assert_eq!(task.target(), ResourceRef::Machine(machine));
        assert_eq!(task.created_at, task.updated_at);
    }
}
