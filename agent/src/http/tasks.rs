//! `/v1/tasks` (durable workflow tasks and their steps) and
//! `POST /v1/machines/{key}/provision`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::api::{ErrorBody, TaskDetail};
use dv_protocol::{Task, TaskId};
use serde::Deserialize;

use super::{AppState, problem};
use crate::provision::runner::ProvisionError;
use crate::store::{steps, tasks as db};

/// `POST /v1/machines/{key}/provision`: starts provisioning; `202` with the
/// task, which `GET /v1/tasks/{id}` follows.
#[utoipa::path(
    post, path = "/v1/machines/{key}/provision", operation_id = "machines_provision", tag = "tasks",
    params(("key" = String, Path, description = "The machine's id, serial or MAC")),
    responses(
        (status = 202, description = "Provisioning started", body = Task),
        (status = 404, description = "No such machine", body = ErrorBody),
    ),
)]
pub(super) async fn provision(State(state): State<AppState>, Path(key): Path<String>) -> Response {
    match state.provisioner.start(&key).await {
        Ok(task) => (StatusCode::ACCEPTED, Json(task)).into_response(),
        Err(e) => refused(&e),
    }
}

/// `POST /v1/machines/{key}/deprovision`: wipe, power off and return the
/// machine to `available`; `202` with the task.
#[utoipa::path(
    post, path = "/v1/machines/{key}/deprovision", operation_id = "machines_deprovision", tag = "tasks",
    params(("key" = String, Path, description = "The machine's id, serial or MAC")),
    responses(
        (status = 202, description = "Deprovisioning started", body = Task),
        (status = 404, description = "No such machine", body = ErrorBody),
    ),
)]
pub(super) async fn deprovision(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Response {
    match state.provisioner.deprovision(&key).await {
        Ok(task) => (StatusCode::ACCEPTED, Json(task)).into_response(),
        Err(e) => refused(&e),
    }
}

/// `GET /v1/tasks`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only tasks in this state.
    #[param(schema_with = state_schema)]
    state: Option<String>,
}

fn state_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(STATES))
        .build()
}

const STATES: [&str; 5] = ["pending", "running", "blocked", "failed", "succeeded"];

/// `GET /v1/tasks[?state=...]`.
#[utoipa::path(
    get, path = "/v1/tasks", operation_id = "tasks_list", tag = "tasks", params(ListQuery),
    responses(
        (status = 200, description = "The latest 1000 tasks", body = [Task]),
        (status = 400, description = "A bad query", body = ErrorBody),
    ),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Some(s) = &q.state
        && !STATES.contains(&s.as_str())
    {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("state must be one of {}; got {s:?}", STATES.join(", ")),
        );
    }
    match state
        .store
        .read(move |c| db::list(c, q.state.as_deref(), 1000))
        .await
    {
        Ok(t) => Json(t).into_response(),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::telemetry::error_chain(&e),
        ),
    }
}

/// `GET /v1/tasks/{id}`: the task and every step it ran, with times.
#[utoipa::path(
    get, path = "/v1/tasks/{id}", operation_id = "tasks_show", tag = "tasks",
    params(("id" = TaskId, Path, description = "The task id")),
    responses(
        (status = 200, description = "The task and its steps", body = TaskDetail),
        (status = 400, description = "Not a task id", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
    ),
)]
pub(super) async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<TaskId>() else {
        return problem(StatusCode::BAD_REQUEST, format!("{id:?} is not a task id"));
    };
    let found = state
        .store
        .read(move |c| {
            let Some(task) = db::get(c, id)? else {
                return Ok(None);
            };
            Ok(Some((task, steps::list(c, id)?)))
        })
        .await;
    match found {
        Ok(Some((task, steps))) => Json(TaskDetail { task, steps }).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, format!("no task {id}")),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::telemetry::error_chain(&e),
        ),
    }
}

/// `POST /v1/tasks/{id}/retry`: runs a blocked task's step again.
#[utoipa::path(
    post, path = "/v1/tasks/{id}/retry", operation_id = "tasks_retry", tag = "tasks",
    params(("id" = TaskId, Path, description = "The task id")),
    responses(
        (status = 202, description = "The blocked step runs again", body = Task),
        (status = 400, description = "Not a task id", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task is not blocked", body = ErrorBody),
    ),
)]
pub(super) async fn retry(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<TaskId>() else {
        return problem(StatusCode::BAD_REQUEST, format!("{id:?} is not a task id"));
    };
    match state.provisioner.retry(id).await {
        Ok(task) => (StatusCode::ACCEPTED, Json(task)).into_response(),
        Err(e) => refused(&e),
    }
}

fn refused(e: &ProvisionError) -> Response {
    let status = match e {
        ProvisionError::NotFound(_) | ProvisionError::NoTask(_) => StatusCode::NOT_FOUND,
        ProvisionError::NotBlocked { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    problem(status, crate::telemetry::error_chain(e))
}
