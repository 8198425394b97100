//! `/v1/inventory` (the site kit's YAML file in and out) and
//! `/v1/machines` (the machines as the protocol describes them).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dv_protocol::Machine;
use dv_protocol::api::ErrorBody;
use serde::Serialize;

use super::{AppState, problem};
use crate::inventory::InventoryFile;
use crate::store::inventory::ImportSummary;
use crate::store::{StoreError, inventory as db};

/// Largest inventory file accepted (a few thousand machines fit easily).
pub(super) const MAX_FILE: usize = 4 << 20;

/// `POST /v1/inventory`: imports a YAML inventory file. Every problem in the
/// file is reported at once (400); a MAC that already belongs to another
/// machine is a conflict (409); either way nothing changes.
#[utoipa::path(
    post, path = "/v1/inventory", operation_id = "inventory_import", tag = "inventory",
    request_body(content = String, content_type = "application/yaml",
                 description = "The site kit's inventory file (YAML)"),
    responses(
        (status = 200, description = "Imported", body = ImportSummary),
        (status = 400, description = "The file has problems; nothing was imported", body = InvalidFile),
        (status = 409, description = "A MAC belongs to another machine; nothing was imported", body = ErrorBody),
        (status = 413, description = "The file is larger than 4 MiB", body = ErrorBody),
    ),
)]
pub(super) async fn import(
    State(state): State<AppState>,
    caller: super::Caller,
    body: String,
) -> Response {
    let file = match InventoryFile::parse(&body) {
        Ok(f) => f,
        Err(problems) => return invalid(problems),
    };
    let machines = match file.check() {
        Ok(m) => m,
        Err(problems) => return invalid(problems),
    };
    let (site, key) = (state.site.clone(), state.site_key.clone());
    let actor = super::actor(&state, &caller);
    let written = state
        .store
        .write(move |c| db::import(c, &site, &actor, &key, &file, &machines))
        .await;
    match written {
        Ok(summary) => {
            tracing::info!(
                racks_added = summary.racks_added,
                machines_added = summary.machines_added,
                machines_updated = summary.machines_updated,
                machines_adopted = summary.machines_adopted,
                "inventory imported"
            );
            Json(summary).into_response()
        }
        Err(e @ StoreError::Invalid { .. }) => problem(StatusCode::CONFLICT, e.to_string()),
        Err(e) => failed(&e),
    }
}

/// `GET /v1/inventory`: the inventory as a YAML file, without passwords.
#[utoipa::path(
    get, path = "/v1/inventory", operation_id = "inventory_export", tag = "inventory",
    responses((status = 200, description = "The inventory file (YAML: a mapping, `{}` when empty)",
               body = Object, content_type = "application/yaml")),
)]
pub(super) async fn export(State(state): State<AppState>) -> Response {
    match state.store.read(db::export).await {
        Ok(file) => ([(header::CONTENT_TYPE, "application/yaml")], file.render()).into_response(),
        Err(e) => failed(&e),
    }
}

/// `GET /v1/machines`.
#[utoipa::path(
    get, path = "/v1/machines", operation_id = "machines_list", tag = "inventory",
    responses((status = 200, description = "Every machine of the site", body = [Machine])),
)]
pub(super) async fn list(State(state): State<AppState>) -> Response {
    match state.store.read(db::machines).await {
        Ok(m) => Json(m).into_response(),
        Err(e) => failed(&e),
    }
}

/// A machine with the hardware facts its last discovery boot reported.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct MachineView {
    #[serde(flatten)]
    machine: Machine,
    /// What its last discovery boot reported (name to value).
    #[schema(schema_with = facts_schema)]
    facts: db::Facts,
}

// A string map, inline: without this the schema is a component named
// after the alias's target (`BTreeMap`).
fn facts_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .additional_properties(Some(<String as utoipa::PartialSchema>::schema()))
        .build()
}

/// A refused inventory file: every problem in it.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct InvalidFile {
    /// How many problems, and that nothing was imported.
    error: String,
    /// Each problem, naming where it is in the file.
    problems: Vec<String>,
}

/// `GET /v1/machines/{key}`: by id, serial or MAC, with its facts.
#[utoipa::path(
    get, path = "/v1/machines/{key}", operation_id = "machines_show", tag = "inventory",
    params(("key" = String, Path, description = "The machine's id, serial or MAC")),
    responses(
        (status = 200, description = "The machine and its facts", body = MachineView),
        (status = 404, description = "No such machine", body = ErrorBody),
    ),
)]
pub(super) async fn show(State(state): State<AppState>, Path(key): Path<String>) -> Response {
    let lookup = key.clone();
    let found = state
        .store
        .read(move |c| {
            let Some(machine) = db::machine(c, &lookup)? else {
                return Ok(None);
            };
            let facts = db::facts(c, machine.id)?;
            Ok(Some(MachineView { machine, facts }))
        })
        .await;
    match found {
        Ok(Some(m)) => Json(m).into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            format!("no machine has the id, serial or MAC {key:?}"),
        ),
        Err(e) => failed(&e),
    }
}

/// `POST /v1/machines/{key}/approve`: a discovered machine becomes trusted
/// inventory (`available`). Anything else is a conflict naming its state.
#[utoipa::path(
    post, path = "/v1/machines/{key}/approve", operation_id = "machines_approve", tag = "inventory",
    params(("key" = String, Path, description = "The machine's id, serial or MAC")),
    responses(
        (status = 200, description = "Approved: now available", body = Machine),
        (status = 404, description = "No such machine", body = ErrorBody),
        (status = 409, description = "The machine is not discovered", body = ErrorBody),
    ),
)]
pub(super) async fn approve(
    State(state): State<AppState>,
    caller: super::Caller,
    Path(key): Path<String>,
) -> Response {
    let (site, actor, lookup) = (
        state.site.clone(),
        super::actor(&state, &caller),
        key.clone(),
    );
    let done = state
        .store
        .write(move |c| db::approve(c, &site, &actor, &lookup))
        .await;
    match done {
        Ok(db::Approval::Approved(m)) => {
            tracing::info!(machine = %m.id, serial = %m.serial, "machine approved");
            Json(*m).into_response()
        }
        Ok(db::Approval::Unknown) => problem(
            StatusCode::NOT_FOUND,
            format!("no machine has the id, serial or MAC {key:?}"),
        ),
        Ok(db::Approval::NotDiscovered(s)) => problem(
            StatusCode::CONFLICT,
            format!(
                "machine {key} is {}; only discovered machines are approved",
                s.as_str()
            ),
        ),
        Err(e) => failed(&e),
    }
}

fn invalid(problems: Vec<String>) -> Response {
    let body = InvalidFile {
        error: format!(
            "the inventory file has {} problem(s); nothing was imported",
            problems.len()
        ),
        problems,
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn failed(e: &StoreError) -> Response {
    tracing::error!(error = %crate::telemetry::error_chain(e), "inventory request failed");
    problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}
