//! The bodies of the REST API that are not resources themselves: the error
//! body, a queued command's 202, a command with the task it started, a
//! site's status at the hub, and a task with its step log as an agent
//! shows it. The servers (hub, agent) serialize these and the SDK
//! (`dv-sdk`) deserializes the same types, so neither side can drift.
//!
//! Resources (`Machine`, `Task`, `Tenant`, ...) live in [`crate::resource`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod switch;
pub use switch::{
    LagRequest, PlannedChange, PortAssignRequest, ProfileRequest, RealizedPort, SwitchApplied,
    SwitchApplyFailed, SwitchList, SwitchPlan, SwitchView,
};

use crate::{Heartbeat, MachineId, SiteName, Task};

/// The error body of every `/v1` endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub error: String,
}

/// The hub's 202 answer to `POST /v1/machines/{key}/provision|deprovision`:
/// the command is stored for the machine's site, which starts a task once it
/// receives it (`GET /v1/commands/{id}` shows that task).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommandAccepted {
    /// The command id (`GET /v1/commands/{id}`).
    pub command: String,
    /// The machine's site.
    pub site: SiteName,
    /// The machine.
    pub machine: MachineId,
    /// `provision` or `deprovision`.
    pub action: String,
    /// The NATS subject it was sent on.
    pub subject: String,
    /// The call's correlation id.
    pub correlation_id: String,
    /// Its sequence in `DV_HUB_CMD`.
    pub stream_seq: u64,
}

/// A command as the hub recorded it, with the task it started
/// (`GET /v1/commands/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandRecord {
    /// The command id.
    pub id: String,
    /// The site it is for.
    pub site: String,
    /// Its subject.
    pub subject: String,
    /// Who asked.
    pub actor: String,
    /// The conversation it belongs to.
    pub correlation_id: String,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// The command.
    pub command: serde_json::Value,
    /// The task the site started for it, once its event arrived.
    pub task: Option<Task>,
    /// Why the site refused it, once its `command.rejected` event arrived;
    /// a refused command never gets a task.
    #[serde(default)]
    pub rejected: Option<String>,
}

/// A site's latest heartbeat as a hub replica received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SiteHeartbeat {
    /// When the hub received it (RFC 3339).
    pub received_at: String,
    /// Its body.
    pub heartbeat: Heartbeat,
    /// Seconds since the hub received it.
    pub age_seconds: f64,
}

/// One entry of the hub's `GET /v1/sites`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SiteStatus {
    /// The site.
    pub name: SiteName,
    /// Events the read model holds from it.
    pub events: u64,
    /// When its latest event happened (RFC 3339).
    pub last_event_at: Option<String>,
    /// Its latest heartbeat, if one arrived since this replica started.
    pub heartbeat: Option<SiteHeartbeat>,
}

/// One step run of a task, as the agent that runs it logs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepRun {
    /// 1, 2, ... in the order run.
    pub seq: i64,
    /// The step's name.
    pub step: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339; absent while running.
    pub finished_at: Option<String>,
    /// done, failed or blocked; absent while running.
    pub outcome: Option<String>,
    /// Why it failed or what it is blocked on.
    pub detail: Option<String>,
}

/// An agent's `GET /v1/tasks/{id}`: the task and every step it ran. (The
/// hub answers the bare [`Task`]: it holds task states, not step logs.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskDetail {
    /// The task.
    pub task: Task,
    /// Its steps, in the order run.
    pub steps: Vec<StepRun>,
}

/// `GET /v1/identity/oidc` (no token): where `dvid login` authenticates.
/// 404 when the server has no OIDC issuer configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OidcConfig {
    /// The issuer URL (its `/.well-known/openid-configuration` is fetched).
    pub issuer: String,
    /// The public client the CLI authenticates as (device flow).
    pub client_id: String,
    /// The `aud` a token must carry to be accepted.
    pub audience: String,
    /// The scopes `dvid login` asks for.
    pub scopes: Vec<String>,
}

/// One role binding as stored: the binding, its id and who granted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    /// Stable id (derived from subject, role and scope), used to revoke.
    pub id: String,
    /// The binding.
    #[serde(flatten)]
    pub binding: crate::auth::RoleBinding,
    /// Who granted it (`config` for bindings from the server's file).
    pub granted_by: String,
    /// When (RFC 3339); absent for bindings from the file.
    #[serde(default)]
    pub granted_at: Option<String>,
}

/// `POST /v1/identity/tokens`: a service token for automation, bound to
/// one role over one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServiceToken {
    /// A name, a lower-case token; the subject becomes `svc:<name>`.
    pub name: String,
    /// The role the token holds.
    pub role: crate::auth::Role,
    /// Where.
    pub scope: crate::auth::Scope,
    /// Lifetime in days (default 90, at most 365).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A service token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceToken {
    /// The token's id (the part of the token before the secret).
    pub id: String,
    /// Its name.
    pub name: String,
    /// `svc:<name>`.
    pub subject: String,
    /// Its role.
    pub role: crate::auth::Role,
    /// Its scope.
    pub scope: crate::auth::Scope,
    /// Who created it.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
}

/// `201` of `POST /v1/identity/tokens`: the token, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceTokenCreated {
    /// The stored record.
    #[serde(flatten)]
    pub record: ServiceToken,
    /// The bearer token (`dvs_<id>_<secret>`); the server keeps only a digest.
    pub token: String,
}

/// One requirement a workload request depends on, and whether it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Prerequisite {
    /// A short key (`environment`, `network`, `quota.machines`,
    /// `placement`, `enabled`, `capacity`).
    pub name: String,
    /// Whether it holds now.
    pub met: bool,
    /// What was found.
    pub detail: String,
    /// What to do when it does not hold (a command or whom to ask).
    #[serde(default)]
    pub fix: Option<String>,
}

/// An offering as one project sees it (`GET
/// /v1/tenants/{t}/projects/{p}/offerings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfferingStatus {
    /// Its name (`bare-metal`, `network`, `kubernetes`, ...).
    pub name: String,
    /// The CLI family that drives it (`dvce`, `dvnet`, `dvke`, ...).
    pub cli: String,
    /// One line on what it is.
    pub description: String,
    /// Whether this platform can deliver it at all yet.
    pub available: bool,
    /// Whether it is enabled for the project.
    pub enabled: bool,
    /// Whether requests must name an environment.
    pub environment_scoped: bool,
    /// Whether a project member may request it without an operator.
    pub self_service: bool,
    /// What must hold before a request can succeed.
    pub prerequisites: Vec<Prerequisite>,
    /// Every prerequisite holds.
    pub ready: bool,
}

/// `POST /v1/tenants/{t}/projects/{p}/machines`: a bare-metal machine for
/// the project, placed by the hub and provisioned at its site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineRequest {
    /// The environment it serves (must exist in the project).
    #[schema(value_type = String)]
    pub environment: crate::EnvironmentName,
    /// A site to place it at; default: any site the project may use.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub site: Option<SiteName>,
}

/// A machine held by a project: who asked for it, where, and the command
/// that provisions it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MachineClaim {
    /// The machine.
    pub machine: MachineId,
    /// Its site.
    #[schema(value_type = String)]
    pub site: SiteName,
    /// The tenant holding it.
    #[schema(value_type = String)]
    pub tenant: crate::TenantName,
    /// The project holding it.
    #[schema(value_type = String)]
    pub project: crate::ProjectName,
    /// The environment it serves.
    #[schema(value_type = String)]
    pub environment: crate::EnvironmentName,
    /// Who asked.
    pub claimed_by: String,
    /// When (RFC 3339).
    pub claimed_at: String,
    /// The provisioning command (`GET /v1/commands/{id}` follows it).
    pub command: String,
}

/// A project's machine as listed: the claim and the machine's current
/// state at its site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectMachine {
    /// The claim.
    #[serde(flatten)]
    pub claim: MachineClaim,
    /// The machine's lifecycle state as its site last reported it.
    pub state: crate::MachineState,
    /// Its serial number.
    pub serial: String,
}

/// `PUT /v1/tenants/{t}/projects/{p}/offerings/{name}`: turn an offering on
/// or off for a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferingToggle {
    /// On or off.
    pub enabled: bool,
}
