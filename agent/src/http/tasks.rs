//! `/v1/tasks` (durable workflow tasks and their steps) and
//! `POST /v1/machines/{key}/provision`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dv_protocol::TaskId;
use dv_protocol::api::TaskDetail;
use serde::Deserialize;

use super::{AppState, problem};
use crate::provision::runner::ProvisionError;
use crate::store::{steps, tasks as db};

/// `POST /v1/machines/{key}/provision`: starts provisioning; `202` with the
/// task, which `GET /v1/tasks/{id}` follows.
pub(super) async fn provision(State(state): State<AppState>, Path(key): Path<String>) -> Response {
    match state.provisioner.start(&key).await {
        Ok(task) => (StatusCode::ACCEPTED, Json(task)).into_response(),
        Err(e) => refused(&e),
    }
}

/// `POST /v1/machines/{key}/deprovision`: wipe, power off and return the
/// machine to `available`; `202` with the task.
pub(super) async fn deprovision(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Response {
    match state.provisioner.deprovision(&key).await {
        Ok(task) => (StatusCode::ACCEPTED, Json(task)).into_response(),
        Err(e) => refused(&e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
}

const STATES: [&str; 5] = ["pending", "running", "blocked", "failed", "succeeded"];

/// `GET /v1/tasks[?state=...]`.
pub(super) async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
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
