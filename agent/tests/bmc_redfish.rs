//! The Redfish driver against sushy-tools' emulator (OpenStack's Redfish
//! BMC emulator, fake driver) on loopback, with curl reading the state back
//! independently; and against an in-process BMC that lies, for the
//! failures a real emulator will not produce.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use dv_agent::bmc::redfish::Redfish;
use dv_agent::bmc::{Bmc, BmcError, BootTarget, Limits, PowerAction, PowerState};
use dv_tests::sushy::{NODE_1, Sushy, free_port, sushy_bin};
use serde_json::{Value, json};

/// The emulator applies power changes after a random 1-11 s; poll briskly
/// and allow it half a minute.
fn limits() -> Limits {
    Limits {
        request: Duration::from_secs(10),
        power_settle: Duration::from_secs(40),
        poll: Duration::from_millis(500),
        override_attempts: 3,
    }
}

/// The system as curl sees it: the independent check.
fn curl_system(endpoint: &str, id: &str, auth: Option<&str>) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "10"]);
    if let Some(a) = auth {
        cmd.args(["-u", a]);
    }
    let out = cmd
        .arg(format!("{endpoint}/redfish/v1/Systems/{id}"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn redfish_powers_a_system_and_sets_one_time_boot_overrides_on_sushy() {
    let test = "redfish_powers_a_system_and_sets_one_time_boot_overrides_on_sushy";
    let Some(bin) = sushy_bin(test) else {
        return;
    };
    let sushy = Sushy::start(&bin, None);
    let bmc = Redfish::new(&sushy.endpoint, "admin", "unused", None, limits()).unwrap();
    runtime().block_on(async {
        let info = bmc.system_info().await.unwrap();
        // No system named: the driver took the first member.
        assert_eq!(info.uuid.as_deref(), Some(NODE_1));
        assert_eq!(info.power, Some(PowerState::Off));
        assert!(info.boot_targets.iter().any(|t| t == "Pxe"), "{info:?}");

        bmc.boot_once(BootTarget::Pxe).await.unwrap();
        let seen = curl_system(&sushy.endpoint, NODE_1, None);
        assert_eq!(seen["Boot"]["BootSourceOverrideTarget"], "Pxe");
        // sushy's fake driver keeps every override "Continuous"; the driver
        // accepts that with a warning (the target is what the next boot uses).
        assert_ne!(seen["Boot"]["BootSourceOverrideEnabled"], "Disabled");

        bmc.set_power(PowerAction::On).await.unwrap();
        assert_eq!(bmc.power_state().await.unwrap(), PowerState::On);
        assert_eq!(
            curl_system(&sushy.endpoint, NODE_1, None)["PowerState"],
            "On"
        );
        // Already on: nothing to do, and not an error.
        bmc.set_power(PowerAction::On).await.unwrap();

        bmc.boot_once(BootTarget::Hdd).await.unwrap();
        assert_eq!(
            curl_system(&sushy.endpoint, NODE_1, None)["Boot"]["BootSourceOverrideTarget"],
            "Hdd"
        );

        bmc.set_power(PowerAction::ForceOff).await.unwrap();
        assert_eq!(
            curl_system(&sushy.endpoint, NODE_1, None)["PowerState"],
            "Off"
        );
    });
}

#[test]
fn redfish_names_the_system_and_reports_refused_credentials_on_sushy() {
    let test = "redfish_names_the_system_and_reports_refused_credentials_on_sushy";
    let Some(bin) = sushy_bin(test) else {
        return;
    };
    let sushy = Sushy::start(&bin, Some("s3cret"));
    runtime().block_on(async {
        let wrong = Redfish::new(&sushy.endpoint, "admin", "nope", None, limits()).unwrap();
        let err = wrong.power_state().await.unwrap_err();
        assert!(
            matches!(&err, BmcError::Auth { reason, .. } if reason == "HTTP 401"),
            "{err:?}"
        );
        assert!(err.to_string().contains("refused the credentials"), "{err}");

        let node2 = "11111111-0000-0000-0000-000000000002";
        let right =
            Redfish::new(&sushy.endpoint, "admin", "s3cret", Some(node2), limits()).unwrap();
        let info = right.system_info().await.unwrap();
        assert_eq!(info.uuid.as_deref(), Some(node2));
        assert_eq!(info.power, Some(PowerState::On));
        assert_eq!(
            curl_system(&sushy.endpoint, node2, Some("admin:s3cret"))["PowerState"],
            "On"
        );

        let missing = Redfish::new(
            &sushy.endpoint,
            "admin",
            "s3cret",
            Some("no-such"),
            limits(),
        )
        .unwrap();
        let err = missing.power_state().await.unwrap_err();
        assert!(
            matches!(err, BmcError::Status { status: 404, .. }),
            "{err:?}"
        );
    });
}

/// A BMC that accepts every PATCH with 204 and changes nothing: the field
/// failure the driver must catch. It also only allows PXE and disk boot.
#[derive(Clone, Default)]
struct Liar {
    patches: Arc<Mutex<u32>>,
}

async fn liar_system(State(_): State<Liar>) -> Json<Value> {
    Json(json!({
        "Id": "1",
        "PowerState": "Off",
        "Boot": {
            "BootSourceOverrideTarget": "Hdd",
            "BootSourceOverrideEnabled": "Continuous",
            "BootSourceOverrideTarget@Redfish.AllowableValues": ["Pxe", "Hdd"],
        },
        "Actions": { "#ComputerSystem.Reset": {
            "target": "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            "ResetType@Redfish.AllowableValues": ["On", "ForceOff"],
        }},
    }))
}

async fn liar_patch(State(l): State<Liar>) -> StatusCode {
    *l.patches.lock().unwrap() += 1;
    StatusCode::NO_CONTENT
}

async fn liar_reset() -> (StatusCode, Json<Value>) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(
            json!({ "error": { "code": "Base.1.0.GeneralError", "message": "general",
            "@Message.ExtendedInfo": [{ "Message": "The BMC is busy updating its firmware." }] } }),
        ),
    )
}

#[test]
fn a_bmc_that_accepts_but_does_not_apply_is_caught_and_named() {
    runtime().block_on(async {
        let liar = Liar::default();
        let app = axum::Router::new()
            .route(
                "/redfish/v1/Systems",
                get(|| async {
                    Json(json!({ "Members": [{ "@odata.id": "/redfish/v1/Systems/1" }] }))
                }),
            )
            .route("/redfish/v1/Systems/1", get(liar_system).patch(liar_patch))
            .route(
                "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
                axum::routing::post(liar_reset),
            )
            .with_state(liar.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let fast = Limits {
            poll: Duration::from_millis(10),
            ..limits()
        };
        let bmc = Redfish::new(&format!("http://{addr}"), "admin", "pw", None, fast).unwrap();

        let err = bmc.boot_once(BootTarget::Pxe).await.unwrap_err();
        match &err {
            BmcError::NotApplied {
                attempts, found, ..
            } => {
                assert_eq!(*attempts, 3);
                assert!(found.contains("\"Hdd\""), "{found}");
            }
            other => panic!("expected NotApplied, got {other:?}"),
        }
        assert_eq!(*liar.patches.lock().unwrap(), 3, "bounded retries");
        assert!(err.to_string().contains("did not apply"), "{err}");

        let err = bmc.boot_once(BootTarget::UefiHttp).await.unwrap_err();
        assert!(
            matches!(&err, BmcError::Unsupported { allowed, .. } if allowed == "Pxe, Hdd"),
            "{err:?}"
        );
        assert_eq!(
            *liar.patches.lock().unwrap(),
            3,
            "nothing sent for an unsupported target"
        );

        let err = bmc.set_power(PowerAction::ForceRestart).await.unwrap_err();
        assert!(
            matches!(&err, BmcError::Unsupported { wanted, .. } if wanted == "ResetType ForceRestart"),
            "{err:?}"
        );
        // Already off: shutting down has nothing to do, whatever is allowed.
        bmc.set_power(PowerAction::ForceOff).await.unwrap();
        bmc.set_power(PowerAction::GracefulShutdown).await.unwrap();
        let err = bmc.set_power(PowerAction::On).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("The BMC is busy updating its firmware."),
            "{err}"
        );
        server.abort();
    });
}

#[test]
fn an_unreachable_bmc_fails_within_the_request_timeout() {
    runtime().block_on(async {
        // A port nobody listens on.
        let port = free_port();
        let bmc = Redfish::new(
            &format!("http://127.0.0.1:{port}"),
            "a",
            "b",
            None,
            limits(),
        )
        .unwrap();
        let err = bmc.power_state().await.unwrap_err();
        assert!(matches!(err, BmcError::Unreachable { .. }), "{err:?}");
    });
}
