//! The client against a small in-process server that answers as the hub
//! and as an agent do: both shapes of provision and of one task decode,
//! the token is sent, keys are escaped, and error statuses (with the ETag
//! of a 412) become their variants. The real hub is exercised by the CLI's
//! tests (cli/tests/hub_cli.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use dv_protocol::{SiteName, Task, TaskKind, TaskState, Tenant};
use dv_sdk::{Accepted, Client, ETag, Error, IfMatch};
use serde_json::json;

fn task() -> Task {
    Task::new(
        SiteName::new("osl-1").unwrap(),
        TaskKind::ProvisionMachine {
            machine: dv_protocol::MachineId::new(),
        },
    )
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer s3cret")
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn hub_and_agent_shapes_decode_and_errors_map() {
    let t = task();
    let (t1, t2) = (t.clone(), t.clone());
    let app = Router::new()
        // The hub queues a command; keys arrive unescaped.
        .route(
            "/hub/v1/machines/{key}/provision",
            post(|Path(key): Path<String>, h: HeaderMap| async move {
                if !authorized(&h) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"error": "this endpoint needs the hub token"})),
                    )
                        .into_response();
                }
                assert_eq!(key, "SN 1/a");
                (
                    StatusCode::ACCEPTED,
                    axum::Json(json!({
                        "command": "c1", "site": "osl-1",
                        "machine": dv_protocol::MachineId::new(), "action": "provision",
                        "subject": "dv.osl-1.maskin.cmd.provision", "correlation_id": "x",
                        "stream_seq": 3,
                    })),
                )
                    .into_response()
            }),
        )
        .route(
            "/hub/v1/tasks/{id}",
            get(move || async move { axum::Json(t1) }),
        )
        // An agent starts the task and keeps a step log.
        .route(
            "/agent/v1/machines/{key}/provision",
            post(move || async move { (StatusCode::ACCEPTED, axum::Json(t2)) }),
        )
        .route(
            "/agent/v1/tasks/{id}",
            get(move || async move {
                axum::Json(json!({"task": t, "steps": [{
                    "seq": 1, "step": "allocate", "started_at": "2026-01-01T00:00:00Z",
                    "finished_at": null, "outcome": null, "detail": null}]}))
            }),
        )
        .route(
            "/hub/v1/tenants/{name}",
            put(|h: HeaderMap| async move {
                let mut headers = HeaderMap::new();
                headers.insert("etag", "\"9\"".parse().unwrap());
                if h.get("if-match").and_then(|v| v.to_str().ok()) == Some("*") {
                    return (StatusCode::OK, headers, axum::Json(json!({"name": "acme"})))
                        .into_response();
                }
                (
                    StatusCode::PRECONDITION_FAILED,
                    headers,
                    axum::Json(json!({"error": "tenant \"acme\" is at \"9\""})),
                )
                    .into_response()
            }),
        );
    let base = serve(app).await;

    let hub = Client::new(&format!("{base}/hub"), Some("s3cret".into())).unwrap();
    match hub.machine_provision("SN 1/a").await.unwrap() {
        Accepted::Command(c) => assert_eq!((c.command.as_str(), c.stream_seq), ("c1", 3)),
        other => panic!("{other:?}"),
    }
    assert!(hub.task_get("x").await.unwrap().steps.is_none());

    let agent = Client::new(&format!("{base}/agent/"), None).unwrap();
    assert!(matches!(
        agent.machine_provision("SN-1").await.unwrap(),
        Accepted::Task(_)
    ));
    let view = agent.task_get("x").await.unwrap();
    assert_eq!(view.task.state, TaskState::Pending);
    assert_eq!(view.steps.unwrap()[0].step, "allocate");

    let wrong = Client::new(&format!("{base}/hub"), Some("nope".into())).unwrap();
    let e = wrong.machine_provision("SN 1/a").await.unwrap_err();
    assert!(matches!(&e, Error::Unauthorized { message } if message.contains("hub token")));

    let acme = Tenant {
        name: "acme".parse().unwrap(),
        display_name: String::new(),
        description: String::new(),
    };
    let e = hub
        .tenant_replace(&acme, &IfMatch::Tag(ETag::new("\"3\"")))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::PreconditionFailed { current_etag: Some(t), .. } if t.as_str() == "\"9\""),
        "{e:?}"
    );
    let v = hub.tenant_replace(&acme, &IfMatch::Any).await.unwrap();
    assert_eq!(v.etag, Some(ETag::new("\"9\"")));

    // The mock has no /v1/sites: a bare 404 is a missing endpoint.
    assert!(matches!(
        hub.site_list().await.unwrap_err(),
        Error::NoEndpoint { .. }
    ));
    assert!(matches!(
        Client::new("ftp://x", None).unwrap_err(),
        Error::InvalidUrl { .. }
    ));
    // Debug output never shows the token.
    assert!(!format!("{hub:?}").contains("s3cret"));
}
