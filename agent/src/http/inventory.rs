//! `/v1/inventory` (the site kit's YAML file in and out) and
//! `/v1/machines` (the machines as the protocol describes them).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dv_protocol::Actor;
use serde_json::json;

use super::{AppState, problem};
use crate::inventory::InventoryFile;
use crate::store::{StoreError, inventory as db};

/// Largest inventory file accepted (a few thousand machines fit easily).
pub(super) const MAX_FILE: usize = 4 << 20;

/// `POST /v1/inventory`: imports a YAML inventory file. Every problem in the
/// file is reported at once (400); a MAC that already belongs to another
/// machine is a conflict (409); either way nothing changes.
pub(super) async fn import(State(state): State<AppState>, body: String) -> Response {
    let file = match InventoryFile::parse(&body) {
        Ok(f) => f,
        Err(problems) => return invalid(problems),
    };
    let machines = match file.check() {
        Ok(m) => m,
        Err(problems) => return invalid(problems),
    };
    let (site, key) = (state.site.clone(), state.site_key.clone());
    let actor = Actor::agent(&state.site);
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
pub(super) async fn export(State(state): State<AppState>) -> Response {
    match state.store.read(db::export).await {
        Ok(file) => ([(header::CONTENT_TYPE, "application/yaml")], file.render()).into_response(),
        Err(e) => failed(&e),
    }
}

/// `GET /v1/machines`.
pub(super) async fn list(State(state): State<AppState>) -> Response {
    match state.store.read(db::machines).await {
        Ok(m) => Json(m).into_response(),
        Err(e) => failed(&e),
    }
}

/// A machine with the hardware facts its last discovery boot reported.
#[derive(serde::Serialize)]
struct MachineView {
    #[serde(flatten)]
    machine: dv_protocol::Machine,
    facts: db::Facts,
}

/// `GET /v1/machines/{key}`: by id, serial or MAC, with its facts.
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
pub(super) async fn approve(State(state): State<AppState>, Path(key): Path<String>) -> Response {
    let (site, actor, lookup) = (state.site.clone(), Actor::agent(&state.site), key.clone());
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
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "error": format!("the inventory file has {} problem(s); nothing was imported", problems.len()),
            "problems": problems,
        })),
    )
        .into_response()
}

fn failed(e: &StoreError) -> Response {
    tracing::error!(error = %crate::telemetry::error_chain(e), "inventory request failed");
    problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}
