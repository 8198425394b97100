//! Inventory, tasks, commands and events across every site, read from the
//! replica's read model; provisioning commands routed to the machine's site.
//!
//! All of it is platform scope (ADR 0013): reading needs a platform-wide
//! binding (viewer on the platform at least), provisioning and
//! deprovisioning the platform action (platform-operator). Platform
//! resources are not secret, so a caller without the binding gets 403
//! (checked before any lookup), not 404.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::{Command, Machine, Message, SiteName};
use serde::Deserialize;

use std::sync::Arc;

use dv_protocol::auth::{Action, Principal, Scope};

use super::audit::Correlation;
use super::auth::{Caller, require};
use super::{ApiError, AppState, problem};
use crate::readmodel::{self, ReadModelError};

fn failed(e: &ReadModelError) -> Response {
    tracing::error!(error = %e, "read model query failed");
    problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// `?site=`
#[derive(Debug, Deserialize)]
pub(super) struct SiteQuery {
    site: Option<String>,
}

fn site_filter(q: &SiteQuery) -> Result<Option<SiteName>, ApiError> {
    q.site
        .as_deref()
        .map(|s| {
            SiteName::new(s).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("site {s:?} is not a site name: {e}"),
                )
            })
        })
        .transpose()
}

/// `GET /v1/sites`
#[utoipa::path(
    get, path = "/v1/sites", tag = "inventory",
    responses(
        (status = 200, description = "The configured sites, their last heartbeat and events", body = Vec<super::SiteStatus>),
        (status = 403, description = "The caller has no platform binding", body = super::ErrorBody),
    ),
)]
pub(super) async fn sites(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
) -> Response {
    if let Err(e) = require(&who, Action::Read, &Scope::Platform) {
        return e.into_response();
    }
    let counts = match state.model.with(|c| readmodel::site_counts(c)).await {
        Ok(c) => c,
        Err(e) => return failed(&e),
    };
    let beats = state.progress.beats();
    let sites: Vec<super::SiteStatus> = state
        .config
        .sites
        .iter()
        .map(|site| {
            let (events, last_event_at) = counts
                .iter()
                .find(|(s, _, _)| s == site.as_str())
                .map(|(_, n, at)| (*n, Some(at.clone())))
                .unwrap_or((0, None));
            super::SiteStatus {
                name: site.clone(),
                events,
                last_event_at,
                heartbeat: beats.get(site.as_str()).map(|b| b.view()),
            }
        })
        .collect();
    Json(sites).into_response()
}

/// `GET /v1/machines`
#[utoipa::path(
    get, path = "/v1/machines", tag = "inventory",
    params(("site" = Option<String>, Query, description = "Only this site")),
    responses(
        (status = 200, description = "Machines of every site (or one)", body = Vec<Machine>),
        (status = 403, description = "Needs a platform binding (viewer on the platform; platform-operator to provision)", body = super::ErrorBody),
        (status = 400, description = "Not a site name", body = super::ErrorBody),
    ),
)]
pub(super) async fn machines(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Query(q): Query<SiteQuery>,
) -> Response {
    if let Err(e) = require(&who, Action::Read, &Scope::Platform) {
        return e.into_response();
    }
    let site = match site_filter(&q) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match state
        .model
        .with(move |c| readmodel::machines(c, site.as_ref()))
        .await
    {
        Ok(m) => Json(m).into_response(),
        Err(e) => failed(&e),
    }
}

async fn one_machine(state: &AppState, key: &str) -> Result<Machine, ApiError> {
    let lookup = key.to_owned();
    let found = state
        .model
        .with(move |c| readmodel::machines_matching(c, &lookup))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match found.len() {
        0 => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no machine at any site has the id, serial or MAC {key:?}"),
        )),
        1 => Ok(found
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "machine vanished"))?),
        _ => {
            let at: Vec<String> = found
                .iter()
                .map(|m| format!("{} at {}", m.id, m.site))
                .collect();
            Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "{key:?} matches several machines ({}); use the machine id",
                    at.join(", ")
                ),
            ))
        }
    }
}

/// `GET /v1/machines/{key}`
#[utoipa::path(
    get, path = "/v1/machines/{key}", tag = "inventory",
    params(("key" = String, Path, description = "Machine id, serial or MAC")),
    responses(
        (status = 200, description = "The machine", body = Machine),
        (status = 403, description = "Needs a platform binding (viewer on the platform; platform-operator to provision)", body = super::ErrorBody),
        (status = 404, description = "No machine has that key", body = super::ErrorBody),
        (status = 409, description = "Several machines match; use the id", body = super::ErrorBody),
    ),
)]
pub(super) async fn machine(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(key): Path<String>,
) -> Response {
    if let Err(e) = require(&who, Action::Read, &Scope::Platform) {
        return e.into_response();
    }
    match one_machine(&state, &key).await {
        Ok(m) => Json(m).into_response(),
        Err(r) => r.into_response(),
    }
}

/// `POST /v1/machines/{key}/provision`
#[utoipa::path(
    post, path = "/v1/machines/{key}/provision", tag = "inventory",
    params(("key" = String, Path, description = "Machine id, serial or MAC")),
    responses(
        (status = 202, description = "The command is queued for the machine's site", body = super::CommandAccepted),
        (status = 403, description = "Needs a platform binding (viewer on the platform; platform-operator to provision)", body = super::ErrorBody),
        (status = 404, description = "No machine has that key", body = super::ErrorBody),
        (status = 409, description = "Several machines match, or its site is not federated", body = super::ErrorBody),
        (status = 503, description = "The command or audit stream did not store it", body = super::ErrorBody),
    ),
)]
pub(super) async fn provision(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Extension(caller): Extension<Caller>,
    Extension(correlation): Extension<Correlation>,
    Path(key): Path<String>,
) -> Response {
    if let Err(e) = require(&who, Action::Platform, &Scope::Platform) {
        return e.into_response();
    }
    send(&state, &caller, correlation, &key, |machine| {
        Command::ProvisionMachine { machine }
    })
    .await
}

/// `POST /v1/machines/{key}/deprovision`
#[utoipa::path(
    post, path = "/v1/machines/{key}/deprovision", tag = "inventory",
    params(("key" = String, Path, description = "Machine id, serial or MAC")),
    responses(
        (status = 202, description = "The command is queued for the machine's site", body = super::CommandAccepted),
        (status = 403, description = "Needs a platform binding (viewer on the platform; platform-operator to provision)", body = super::ErrorBody),
        (status = 404, description = "No machine has that key", body = super::ErrorBody),
        (status = 409, description = "Several machines match, or its site is not federated", body = super::ErrorBody),
        (status = 503, description = "The command or audit stream did not store it", body = super::ErrorBody),
    ),
)]
pub(super) async fn deprovision(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Extension(caller): Extension<Caller>,
    Extension(correlation): Extension<Correlation>,
    Path(key): Path<String>,
) -> Response {
    if let Err(e) = require(&who, Action::Platform, &Scope::Platform) {
        return e.into_response();
    }
    send(&state, &caller, correlation, &key, |machine| {
        Command::DeprovisionMachine { machine }
    })
    .await
}

async fn send(
    state: &AppState,
    caller: &Caller,
    correlation: Correlation,
    key: &str,
    make: impl FnOnce(dv_protocol::MachineId) -> Command,
) -> Response {
    let machine = match one_machine(state, key).await {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    if !state.config.sites.contains(&machine.site) {
        return problem(
            StatusCode::CONFLICT,
            format!(
                "machine {} is at site {}, which this hub does not federate",
                machine.id, machine.site
            ),
        );
    }
    let command = make(machine.id);
    let mut message = Message::command(machine.site.clone(), caller.0.clone(), command);
    message.envelope.correlation_id = correlation.0;
    match publish_command(state, &message).await {
        Ok(seq) => {
            metrics::counter!("dv_hub_commands_sent_total", "action" => message.body.action())
                .increment(1);
            tracing::info!(command = %message.envelope.id, site = %machine.site, machine = %machine.id, action = message.body.action(), seq, "command queued for site");
            let accepted = super::CommandAccepted {
                command: message.envelope.id.to_string(),
                site: machine.site.clone(),
                machine: machine.id,
                action: message.body.action().to_owned(),
                subject: message.body.subject(&machine.site).as_str().to_owned(),
                correlation_id: correlation.0.to_string(),
                stream_seq: seq,
            };
            (StatusCode::ACCEPTED, Json(accepted)).into_response()
        }
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the hub's command stream did not store the command; retry: {e}"),
        ),
    }
}

/// Publishes to `DV_HUB_CMD` and waits for the ack ([`crate::publish`]).
pub(crate) async fn publish_command(
    state: &AppState,
    message: &Message<Command>,
) -> Result<u64, String> {
    let payload = dv_protocol::codec::encode(message).map_err(|e| e.to_string())?;
    let subject = message.body.subject(&message.envelope.site).into_string();
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in message.headers() {
        headers.insert(name, value.as_str());
    }
    crate::publish::acked(
        &state.js,
        &subject,
        &headers,
        payload.into(),
        crate::streams::COMMANDS,
    )
    .await
}

/// Whether `who` may read work `owner` caused: a platform reader sees
/// everything; anyone else what requests of a project they can read
/// caused (a project's machine requests, their tasks and events).
fn may_read(who: &Principal, owner: &readmodel::Owner) -> bool {
    if who.can(Action::Read, &Scope::Platform) {
        return true;
    }
    let (Some(t), Some(p)) = (&owner.tenant, &owner.project) else {
        return false;
    };
    match (
        t.parse::<dv_protocol::TenantName>(),
        p.parse::<dv_protocol::ProjectName>(),
    ) {
        (Ok(t), Ok(p)) => who.can(Action::Read, &Scope::project(&t, &p)),
        _ => false,
    }
}

/// For a caller without a platform binding: the row's owner must be a
/// project it reads; anything else is answered as if it did not exist.
async fn visible(
    state: &AppState,
    who: &Arc<Principal>,
    table: &'static str,
    id: &str,
) -> Result<bool, ReadModelError> {
    if who.can(Action::Read, &Scope::Platform) {
        return Ok(true);
    }
    let lookup = id.to_owned();
    let owner = state
        .model
        .with(move |c| readmodel::owner_of(c, table, &lookup))
        .await?;
    Ok(owner.is_some_and(|o| may_read(who, &o)))
}

/// `GET /v1/commands/{id}`
#[utoipa::path(
    get, path = "/v1/commands/{id}", tag = "inventory",
    params(("id" = String, Path, description = "Command id")),
    responses(
        (status = 200, description = "The command and the task it started", body = readmodel::CommandRecord),
        (status = 404, description = "No such command (yet), or one the caller may not see (a platform binding sees every command; a project's roles see what its requests sent)", body = super::ErrorBody),
    ),
)]
pub(super) async fn command(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(id): Path<String>,
) -> Response {
    match visible(&state, &who, "command", &id).await {
        Ok(true) => {}
        Ok(false) => {
            return problem(
                StatusCode::NOT_FOUND,
                format!("no command {id:?} (a command just sent appears within a moment)"),
            );
        }
        Err(e) => return failed(&e),
    }
    let lookup = id.clone();
    match state
        .model
        .with(move |c| readmodel::command(c, &lookup))
        .await
    {
        Ok(Some(c)) => Json(c).into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            format!("no command {id:?} (a command just sent appears within a moment)"),
        ),
        Err(e) => failed(&e),
    }
}

/// `GET /v1/tasks`
#[utoipa::path(
    get, path = "/v1/tasks", tag = "inventory",
    params(("site" = Option<String>, Query, description = "Only this site")),
    responses(
        (status = 200, description = "Tasks of every site (or one); without a platform binding, the tasks the caller's projects' requests started", body = Vec<dv_protocol::Task>),
        (status = 400, description = "Not a site name", body = super::ErrorBody),
    ),
)]
pub(super) async fn tasks(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Query(q): Query<SiteQuery>,
) -> Response {
    let site = match site_filter(&q) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match state
        .model
        .with(move |c| readmodel::tasks_owned(c, site.as_ref()))
        .await
    {
        Ok(t) => {
            let shown: Vec<dv_protocol::Task> = t
                .into_iter()
                .filter(|(_, owner)| may_read(&who, owner))
                .map(|(task, _)| task)
                .collect();
            Json(shown).into_response()
        }
        Err(e) => failed(&e),
    }
}

/// `GET /v1/tasks/{id}`
#[utoipa::path(
    get, path = "/v1/tasks/{id}", tag = "inventory",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = dv_protocol::Task),
        (status = 404, description = "No such task at any site, or one the caller may not see", body = super::ErrorBody),
    ),
)]
pub(super) async fn task(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    Path(id): Path<String>,
) -> Response {
    match visible(&state, &who, "task", &id).await {
        Ok(true) => {}
        Ok(false) => return problem(StatusCode::NOT_FOUND, format!("no task {id:?} at any site")),
        Err(e) => return failed(&e),
    }
    let lookup = id.clone();
    match state.model.with(move |c| readmodel::task(c, &lookup)).await {
        Ok(Some(t)) => Json(t).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, format!("no task {id:?} at any site")),
        Err(e) => failed(&e),
    }
}

/// `?site=&after=&limit=`
#[derive(Debug, Deserialize)]
pub(super) struct EventQuery {
    site: Option<String>,
    #[serde(default)]
    after: u64,
    limit: Option<u32>,
}

/// `GET /v1/events`
#[utoipa::path(
    get, path = "/v1/events", tag = "inventory",
    params(
        ("site" = Option<String>, Query, description = "Only this site"),
        ("after" = Option<u64>, Query, description = "Only events after this hub stream sequence"),
        ("limit" = Option<u32>, Query, description = "At most this many (default 1000, at most 10000)"),
    ),
    responses(
        (status = 200, description = "Events in hub stream order; without a platform binding, the events the caller's projects' requests caused", body = Vec<readmodel::EventRow>),
        (status = 400, description = "Not a site name, or `after`/`limit` not a number in range", body = super::ErrorBody),
    ),
)]
pub(super) async fn events(
    State(state): State<AppState>,
    Extension(who): Extension<Arc<Principal>>,
    q: Result<Query<EventQuery>, QueryRejection>,
) -> Response {
    // axum's own rejection is plain text; every /v1 error is `{"error"}`.
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let site = match site_filter(&SiteQuery {
        site: q.site.clone(),
    }) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let after = q.after;
    match state
        .model
        .with(move |c| {
            if who.can(Action::Read, &Scope::Platform) {
                readmodel::events(c, site.as_ref(), after, limit)
            } else {
                readmodel::events_where(c, site.as_ref(), after, limit, |e| {
                    may_read(
                        &who,
                        &readmodel::Owner {
                            tenant: e.tenant.clone(),
                            project: e.project.clone(),
                        },
                    )
                })
            }
        })
        .await
    {
        Ok(e) => Json(e).into_response(),
        Err(e) => failed(&e),
    }
}
