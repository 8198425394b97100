//! `GET /boot/<mac>/talos.yaml`: a machine's Talos machine config.
//!
//! The config carries the cluster's CA keys and tokens, so it goes only to
//! the machine it belongs to, and only while that machine is being
//! installed. The answer, in the order checked:
//! - 400: the MAC is malformed;
//! - 404: the agent has no `[talos]` section, or no machine has the MAC;
//! - 403: the request does not come from the address currently leased
//!   (bound, unexpired) to one of the machine's MACs;
//! - 409: the machine is not `allocated` or `provisioning`, or its role is
//!   not control_plane or worker;
//! - 503: the store cannot be read or written;
//! - 200: the YAML, `Cache-Control: no-store`; the fetch is recorded as a
//!   boot report with stage `talos-config-served` (event
//!   `machine.boot-reported`, and the machine's last stage).
//!
//! Every answer is counted in `dv_talos_configs_total{outcome}`. Logs name
//! the MAC, the peer and the outcome, never the config.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dv_protocol::{Actor, LeaseState, MacAddr, Machine, MachineState};

use super::boot::{BootCtx, text};
use crate::boot;
use crate::store::boot::BootReport;
use crate::store::{Store, StoreError};

/// The boot-report stage a served config is recorded as.
pub(crate) const CONFIG_SERVED: &str = "talos-config-served";

fn refuse(outcome: &'static str, status: StatusCode, why: String) -> Response {
    metrics::counter!("dv_talos_configs_total", "outcome" => outcome).increment(1);
    text(status, why)
}

pub(super) async fn machine_config(
    State(state): State<BootCtx>,
    Path(mac): Path<String>,
    request: Request,
) -> Response {
    let mac = match boot::mac::parse(&mac) {
        Ok(mac) => mac,
        Err(msg) => return refuse("bad_request", StatusCode::BAD_REQUEST, msg),
    };
    let Some(talos) = state.boot.talos.clone() else {
        return refuse(
            "not_configured",
            StatusCode::NOT_FOUND,
            "this agent has no [talos] section, so it serves no Talos machine configs".into(),
        );
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical());
    let looked_up = lookup(&state.store, mac, peer).await;
    let (machine, leased) = match looked_up {
        Ok(Some(found)) => found,
        Ok(None) => {
            return refuse(
                "unknown_machine",
                StatusCode::NOT_FOUND,
                format!("no machine in the inventory has the MAC {mac}"),
            );
        }
        Err(e) => {
            tracing::error!(%mac, error = %crate::telemetry::error_chain(&e), "talos: cannot read the store");
            return refuse(
                "error",
                StatusCode::SERVICE_UNAVAILABLE,
                "the agent cannot read its store; try again".into(),
            );
        }
    };
    let peer_text = peer.map_or_else(|| "an unknown address".to_owned(), |p| p.to_string());
    if !leased {
        tracing::warn!(%mac, peer = %peer_text, serial = %machine.serial, "talos: config refused to an address not leased to the machine");
        return refuse(
            "forbidden",
            StatusCode::FORBIDDEN,
            format!(
                "the config of machine {} is served only to the machine itself: {peer_text} is \
                 not the address leased to any of its MACs",
                machine.serial
            ),
        );
    }
    if !matches!(
        machine.state,
        MachineState::Allocated | MachineState::Provisioning
    ) {
        return refuse(
            "not_provisioning",
            StatusCode::CONFLICT,
            format!(
                "machine {} is {}; its config is served only while it is being provisioned",
                machine.serial, machine.state
            ),
        );
    }
    match talos.machine_config(&state.store, &machine).await {
        Ok(yaml) => {
            // The fetch is the machine's first sign of life in the installer:
            // recorded like a boot callback (event machine.boot-reported).
            let report = BootReport {
                mac,
                ip: peer,
                stage: CONFIG_SERVED.to_owned(),
                detail: String::new(),
            };
            let (site, actor) = (state.site.clone(), Actor::agent(&state.site));
            let noted = state
                .store
                .write(move |c| {
                    crate::store::boot::record_report(c, &site, &actor, &report)?;
                    crate::store::inventory::note_stage(c, report.mac, &report.stage)
                })
                .await;
            if let Err(e) = noted {
                tracing::warn!(%mac, error = %crate::telemetry::error_chain(&e), "talos: cannot record the config fetch");
            }
            metrics::counter!("dv_talos_configs_total", "outcome" => "served").increment(1);
            tracing::info!(%mac, peer = %peer_text, serial = %machine.serial, role = %machine.role, "talos: machine config served");
            (
                [
                    (header::CONTENT_TYPE, "application/yaml"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                yaml,
            )
                .into_response()
        }
        Err(e @ crate::talos::TalosError::Role(_)) => refuse(
            "role",
            StatusCode::CONFLICT,
            format!("machine {}: {e}", machine.serial),
        ),
        Err(e) => {
            tracing::error!(%mac, serial = %machine.serial, error = %crate::telemetry::error_chain(&e), "talos: cannot make the machine config");
            refuse(
                "error",
                StatusCode::SERVICE_UNAVAILABLE,
                "the agent cannot make this machine's config now; try again".into(),
            )
        }
    }
}

/// The machine with `mac`, and whether `peer` is the address currently
/// leased to one of its MACs.
async fn lookup(
    store: &Store,
    mac: MacAddr,
    peer: Option<IpAddr>,
) -> Result<Option<(Machine, bool)>, StoreError> {
    store
        .read(move |c| {
            let Some(machine) = crate::store::inventory::machine(c, &mac.to_string())? else {
                return Ok(None);
            };
            let leased = match peer {
                Some(IpAddr::V4(ip)) => crate::dhcp::store::get(c, ip)?.is_some_and(|lease| {
                    lease.state == LeaseState::Bound
                        && lease.expires > time::OffsetDateTime::now_utc()
                        && machine.has_mac(lease.mac)
                }),
                _ => false,
            };
            Ok(Some((machine, leased)))
        })
        .await
}
