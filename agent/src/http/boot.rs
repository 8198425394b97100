//! HTTP boot: per-machine iPXE scripts and the boot callback.
//!
//! - `GET /boot/<mac>.ipxe`: the script for the machine's boot state (an
//!   unknown MAC gets `boot.default_state`); a malformed MAC is a 400 that
//!   says what a MAC looks like. If the store cannot be read the answer is
//!   503, never a guess: iPXE's `chain` then fails and the entry script falls
//!   back to the local disk, so an installed machine is never re-discovered
//!   or re-installed because of an agent fault.
//! - `GET /boot/discover.ipxe`: the entry script for clients whose URL does
//!   not carry their MAC yet; it chains to the per-MAC script (iPXE fills in
//!   `${net0/mac}`).
//! - `POST /boot/<mac>/callback` (form body) and `GET` (query string, for
//!   iPXE's `imgfetch` and busybox wget): records `machine.boot-reported` in
//!   the outbox in one store write, then 204.
//! - `GET /boot/<mac>/talos.yaml`: the machine's Talos machine config, only
//!   to the machine itself while it is being provisioned (see `talos`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use dv_protocol::Actor;

use super::AppState;
use crate::boot::{self, BootState, DigestCache, FileRoot, MachineBoot, Scripts};
use crate::store::Store;
use crate::store::boot::{self as boot_store, BootReport};

/// Longest `detail` kept from a callback.
const MAX_DETAIL: usize = 2048;
/// Largest callback body accepted.
pub(super) const MAX_CALLBACK_BODY: usize = 16 * 1024;

/// The state the boot and artifact routes see: a slice of [`AppState`], so
/// tests can build the routes without the rest of the agent.
#[derive(Debug, Clone)]
pub struct BootCtx {
    /// Scripts, artifacts, digests.
    pub boot: Arc<BootHttp>,
    /// The agent store.
    pub store: Store,
    /// The site.
    pub site: dv_protocol::SiteName,
}

impl FromRef<AppState> for BootCtx {
    fn from_ref(state: &AppState) -> Self {
        BootCtx {
            boot: state.boot.clone(),
            store: state.store.clone(),
            site: state.site.clone(),
        }
    }
}

/// The boot and artifact routes, for any router state that holds a
/// [`BootCtx`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    BootCtx: FromRef<S>,
{
    Router::new()
        .route("/boot/{file}", get(script))
        .route(
            "/boot/{mac}/callback",
            get(callback)
                .post(callback)
                .layer(DefaultBodyLimit::max(MAX_CALLBACK_BODY)),
        )
        .route("/boot/{mac}/talos.yaml", get(super::talos::machine_config))
        .route("/artifacts/{*path}", get(super::artifacts::artifact))
}

/// What the boot routes need.
#[derive(Debug)]
pub struct BootHttp {
    /// The compiled scripts (with `boot.http_url`).
    pub scripts: Scripts,
    /// What an unknown machine boots.
    pub default_state: BootState,
    /// `boot.artifacts_dir`.
    pub artifacts: FileRoot,
    /// `boot.firmware_dir`, for UEFI HTTP boot of `/boot/snponly.efi`.
    pub firmware: FileRoot,
    /// sha256 of served artifacts.
    pub digests: DigestCache,
    /// Talos machine configs (`GET /boot/<mac>/talos.yaml`); `None`
    /// without a `[talos]` section.
    pub talos: Option<Arc<crate::talos::Talos>>,
}

impl BootHttp {
    /// From the `[boot]` config.
    pub fn new(config: &crate::config::Boot) -> Result<Arc<BootHttp>, boot::ScriptError> {
        Self::with_talos(config, None)
    }

    /// From the `[boot]` config, serving Talos machine configs with `talos`.
    pub fn with_talos(
        config: &crate::config::Boot,
        talos: Option<Arc<crate::talos::Talos>>,
    ) -> Result<Arc<BootHttp>, boot::ScriptError> {
        Ok(Arc::new(BootHttp {
            scripts: Scripts::new(&config.http_url)?,
            default_state: config.default_state,
            artifacts: FileRoot::new(&config.artifacts_dir),
            firmware: FileRoot::new(&config.firmware_dir),
            digests: DigestCache::default(),
            talos,
        }))
    }
}

pub(super) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(super) async fn script(
    State(state): State<BootCtx>,
    Path(file): Path<String>,
    request: Request,
) -> Response {
    let Some(stem) = file.strip_suffix(".ipxe") else {
        // UEFI HTTP boot (DHCP arch 16) fetches its first stage here.
        return super::artifacts::serve_from(&state.boot.firmware, &state, &file, request).await;
    };
    let boot = &state.boot;
    if stem == "discover" {
        return ipxe(boot.scripts.fallback(), "entry");
    }
    let mac = match boot::mac::parse(stem) {
        Ok(mac) => mac,
        Err(msg) => return text(StatusCode::BAD_REQUEST, msg),
    };
    let entry = state.store.read(move |c| boot_store::get(c, mac)).await;
    let entry = match entry {
        Ok(entry) => entry.unwrap_or_else(|| MachineBoot::unknown(mac, boot.default_state)),
        Err(e) => {
            tracing::error!(%mac, error = %crate::telemetry::error_chain(&e), "boot: cannot read the boot entry");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the agent cannot read its store; try again",
            );
        }
    };
    tracing::info!(%mac, state = %entry.state, "boot: script served");
    ipxe(boot.scripts.render(&entry), entry.state.as_str())
}

fn ipxe(rendered: Result<String, boot::ScriptError>, kind: &'static str) -> Response {
    match rendered {
        Ok(script) => {
            metrics::counter!("dv_boot_scripts_total", "state" => kind).increment(1);
            (
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    // A boot state can change any moment; never cache a script.
                    (header::CACHE_CONTROL, "no-store"),
                ],
                script,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %crate::telemetry::error_chain(&e), "boot: cannot render a script");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot render the boot script",
            )
        }
    }
}

pub(super) async fn callback(
    State(state): State<BootCtx>,
    Path(mac): Path<String>,
    request: Request,
) -> Response {
    let mac = match boot::mac::parse(&mac) {
        Ok(mac) => mac,
        Err(msg) => return text(StatusCode::BAD_REQUEST, msg),
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let fields = match Form::<Vec<(String, String)>>::from_request(request, &()).await {
        Ok(Form(fields)) => fields,
        Err(rejection) => return text(rejection.status(), rejection.body_text()),
    };
    let report = match report_from(mac, peer, fields) {
        Ok(report) => report,
        Err(msg) => return text(StatusCode::BAD_REQUEST, msg),
    };
    let site = state.site.clone();
    let actor = Actor::agent(&site);
    let r = report.clone();
    let written = state
        .store
        .write(move |c| {
            let message = boot_store::record_report(c, &site, &actor, &r)?;
            crate::store::inventory::note_stage(c, r.mac, &r.stage)?;
            // A discovery report puts the machine in the inventory (as
            // discovered, untrusted) or refreshes a known machine's facts.
            if r.stage == "discovered" {
                let facts = crate::store::inventory::facts_from(&r.detail);
                crate::store::inventory::record_discovery(c, &site, &actor, r.mac, &facts)?;
            }
            Ok(message)
        })
        .await;
    match written {
        Ok(_) => {
            metrics::counter!("dv_boot_callbacks_total").increment(1);
            tracing::info!(%mac, stage = %report.stage, ip = ?report.ip, "boot: machine reported");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::error!(%mac, error = %crate::telemetry::error_chain(&e), "boot: cannot record a callback");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot record the report; try again",
            )
        }
    }
}

use axum::extract::FromRequest as _;

/// Builds the report: `stage` (required, a short token), `ip` (optional,
/// else the peer address), everything else kept as `detail`.
pub(crate) fn report_from(
    mac: dv_protocol::MacAddr,
    peer: Option<IpAddr>,
    fields: Vec<(String, String)>,
) -> Result<BootReport, String> {
    let mut stage = None;
    let mut ip = None;
    let mut detail = String::new();
    for (key, value) in fields {
        match key.as_str() {
            "stage" => stage = Some(value),
            "ip" if !value.is_empty() => {
                ip = Some(
                    value
                        .parse::<IpAddr>()
                        .map_err(|_| format!("ip {value:?} is not an IP address"))?,
                );
            }
            _ => {
                if detail.len() >= MAX_DETAIL {
                    continue;
                }
                if !detail.is_empty() {
                    detail.push('&');
                }
                let pair: String = format!("{key}={value}")
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
                detail.push_str(&pair);
                if detail.len() > MAX_DETAIL {
                    let mut cut = MAX_DETAIL;
                    while !detail.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    detail.truncate(cut);
                }
            }
        }
    }
    let stage = stage.ok_or("missing stage: send stage=<what happened>, e.g. stage=installed")?;
    let ok = !stage.is_empty()
        && stage.len() <= 40
        && stage
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(format!(
            "stage {stage:?} must be 1..=40 lower-case letters, digits and hyphens"
        ));
    }
    Ok(BootReport {
        mac,
        ip: ip.or(peer),
        stage,
        detail,
    })
}
