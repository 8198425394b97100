//! The device flow's polling state machine and refresh against a tiny
//! in-test issuer (axum on loopback) that answers from a script. The real
//! issuer (oidc-provider) is exercised end to end in `cli/tests/dvid.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};

use super::*;

#[derive(Default)]
struct Script {
    /// What the token endpoint answers, in order.
    answers: VecDeque<(u16, String)>,
    /// The form bodies it received.
    seen: Vec<String>,
}

type Shared = Arc<Mutex<Script>>;

async fn issuer(answers: &[(u16, &str)]) -> (String, Shared) {
    let script: Shared = Arc::new(Mutex::new(Script {
        answers: answers.iter().map(|(s, b)| (*s, (*b).to_owned())).collect(),
        seen: Vec::new(),
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let doc = serde_json::json!({
        "issuer": base,
        "token_endpoint": format!("{base}/token"),
        "device_authorization_endpoint": format!("{base}/device/auth"),
    })
    .to_string();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { doc }),
        )
        .route(
            "/device/auth",
            post(|| async {
                r#"{"device_code":"dc-1","user_code":"ABCD-EFGH","verification_uri":"http://x/device","expires_in":60,"interval":1}"#
            }),
        )
        .route("/token", post(token))
        .with_state(script.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, script)
}

async fn token(State(script): State<Shared>, body: String) -> (StatusCode, String) {
    let mut s = script.lock().unwrap();
    s.seen.push(body);
    let (status, answer) = s
        .answers
        .pop_front()
        .unwrap_or((500, "script ran out".to_owned()));
    (StatusCode::from_u16(status).unwrap(), answer)
}

const PENDING: (u16, &str) = (400, r#"{"error":"authorization_pending"}"#);
const SLOW_DOWN: (u16, &str) = (400, r#"{"error":"slow_down"}"#);
const TOKENS: (u16, &str) = (
    200,
    r#"{"access_token":"at","token_type":"Bearer","id_token":"a.eyJlbWFpbCI6ImFsaWNlQGV4YW1wbGUuY29tIiwiZXhwIjoxMDB9.c","refresh_token":"secret-rt","expires_in":120}"#,
);

fn auth(interval: Option<u64>, expires_in: u64) -> DeviceAuthorization {
    DeviceAuthorization {
        device_code: "dc-1".into(),
        user_code: "ABCD-EFGH".into(),
        verification_uri: "http://x/device".into(),
        verification_uri_complete: None,
        expires_in,
        interval,
    }
}

/// Runs the wait loop with a sleep that records each wait and returns at once.
async fn wait(
    client: &OidcClient,
    auth: &DeviceAuthorization,
) -> (Result<TokenSet, OidcError>, Vec<u64>) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = waits.clone();
    let result = client
        .wait_with(auth, move |d: Duration| {
            w.lock().unwrap().push(d.as_secs());
            async {}
        })
        .await;
    let waits = waits.lock().unwrap().clone();
    (result, waits)
}

#[tokio::test]
async fn pending_and_slow_down_then_tokens() {
    let (base, script) = issuer(&[PENDING, SLOW_DOWN, PENDING, TOKENS]).await;
    let client = OidcClient::discover(&base, "dv-cli").await.unwrap();
    let device = client
        .device_authorization(&["openid".into(), "email".into()])
        .await
        .unwrap();
    assert_eq!(device.user_code, "ABCD-EFGH");
    assert_eq!(device.interval, Some(1));

    let (result, waits) = wait(&client, &auth(Some(2), 600)).await;
    let tokens = result.unwrap();
    assert_eq!(tokens.refresh_token.as_deref(), Some("secret-rt"));
    // slow_down adds 5 s to every later wait.
    assert_eq!(waits, [2, 2, 7, 7]);
    let seen = script.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 4);
    assert!(
        seen[0].contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"),
        "{}",
        seen[0]
    );
    assert!(seen[0].contains("device_code=dc-1") && seen[0].contains("client_id=dv-cli"));
    // The ID token's payload is readable without verification.
    let claims = unverified_claims(tokens.id_token.as_deref().unwrap()).unwrap();
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["exp"], 100);
}

#[tokio::test]
async fn the_default_interval_is_five_seconds() {
    let (base, _) = issuer(&[PENDING, TOKENS]).await;
    let client = OidcClient::discover(&base, "dv-cli").await.unwrap();
    let (result, waits) = wait(&client, &auth(None, 600)).await;
    assert!(result.is_ok());
    assert_eq!(waits, [5, 5]);
}

#[tokio::test]
async fn denied_and_expired_end_the_wait() {
    let (base, _) = issuer(&[
        PENDING,
        (400, r#"{"error":"access_denied","error_description":"no"}"#),
    ])
    .await;
    let client = OidcClient::discover(&base, "dv-cli").await.unwrap();
    let (result, _) = wait(&client, &auth(Some(1), 600)).await;
    let e = result.unwrap_err();
    assert!(
        matches!(&e, OidcError::Denied { description: Some(d) } if d == "no"),
        "{e}"
    );

    let (base, _) = issuer(&[(400, r#"{"error":"expired_token"}"#)]).await;
    let client = OidcClient::discover(&base, "dv-cli").await.unwrap();
    let (result, _) = wait(&client, &auth(Some(1), 600)).await;
    assert!(matches!(result, Err(OidcError::Expired)));

    // Another error is passed on with the issuer's words.
    let (base, _) = issuer(&[(400, r#"{"error":"invalid_client"}"#)]).await;
    let client = OidcClient::discover(&base, "dv-cli").await.unwrap();
    let (result, _) = wait(&client, &auth(Some(1), 600)).await;
    assert!(matches!(result, Err(OidcError::Refused { error, .. }) if error == "invalid_client"));
}

#[tokio::test]
async fn the_wait_is_bounded_by_expires_in() {
    let (base, script) = issuer(&[PENDING; 20]).await;
    let client = OidcClient::discover(&base, "dv-cli").await.unwrap();
    let (result, waits) = wait(&client, &auth(Some(2), 7)).await;
    assert!(matches!(result, Err(OidcError::Expired)));
    assert_eq!(waits, [2, 2, 2]);
    assert_eq!(script.lock().unwrap().seen.len(), 3);
}

#[tokio::test]
async fn refresh_sends_the_refresh_token() {
    let (base, script) = issuer(&[TOKENS, (400, r#"{"error":"invalid_grant"}"#)]).await;
    let client = OidcClient::discover(&base, "dv-cli").await.unwrap();
    let tokens = client.refresh("rt-old").await.unwrap();
    assert_eq!(tokens.access_token, "at");
    let seen = script.lock().unwrap().seen.clone();
    assert!(seen[0].contains("grant_type=refresh_token"), "{}", seen[0]);
    assert!(seen[0].contains("refresh_token=rt-old"), "{}", seen[0]);
    let e = client.refresh("rt-old").await.unwrap_err();
    assert!(
        matches!(&e, OidcError::Refused { error, .. } if error == "invalid_grant"),
        "{e}"
    );
    // Debug never shows a token.
    assert!(!format!("{tokens:?}").contains("secret"));
}

#[tokio::test]
async fn discovery_checks_the_issuer() {
    let (base, _) = issuer(&[]).await;
    let e = OidcClient::discover(&format!("{base}/other"), "dv-cli")
        .await
        .unwrap_err();
    // The well-known document is not there (404): a protocol error.
    assert!(matches!(e, OidcError::Protocol { .. }), "{e}");
    assert!(matches!(
        OidcClient::discover("ftp://x", "dv-cli").await,
        Err(OidcError::InvalidUrl { .. })
    ));
    assert!(unverified_claims("not-a-jwt").is_none());
}
