//! The Redfish driver against an in-process replay server that serves a
//! recorded fixture set (`tests/fixtures/redfish/<bmc>/`, see its README)
//! and behaves as that BMC does (`fake.toml`): Redfish sessions (no real
//! peer here offers them: sushy-tools 2.2.0 answers 404 on the
//! SessionService), `If-Match` required, a boot mode reset or refused. It
//! records every request, so the tests can say what the driver sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use dv_agent::bmc::redfish::Redfish;
use dv_agent::bmc::{Bmc, BmcError, BootTarget, Limits, PowerAction, PowerState};
use serde::Deserialize;
use serde_json::{Value, json};

const USER: &str = "admin";
const PASSWORD: &str = "pw";
const SESSIONS: &str = "/redfish/v1/sessionservice/sessions";

fn limits() -> Limits {
    Limits {
        request: Duration::from_secs(5),
        power_settle: Duration::from_secs(5),
        poll: Duration::from_millis(10),
        override_attempts: 3,
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redfish")
}

/// What the BMC does beyond serving its bodies (`fake.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Behaviour {
    #[serde(default)]
    sessions: bool,
    #[serde(default)]
    require_if_match: bool,
    #[serde(default)]
    mode_unless_sent: Option<String>,
    #[serde(default)]
    reject_mode_write: bool,
}

/// One request as the server saw it, and its answer.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    token: Option<String>,
    basic: bool,
    if_match: Option<String>,
    body: Option<Value>,
    status: u16,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bodies by normalised `@odata.id`.
    docs: HashMap<String, Value>,
    /// Live sessions: token -> session path (normalised).
    tokens: HashMap<String, String>,
    logins: u32,
    etag: u32,
    refuse_tokens: bool,
    seen: Vec<Seen>,
}

#[derive(Debug, Clone)]
struct Fake {
    behaviour: Arc<Behaviour>,
    inner: Arc<Mutex<Inner>>,
}

/// Case and a trailing `/` do not matter (as on iLO).
fn norm(p: &str) -> String {
    p.to_ascii_lowercase().trim_end_matches('/').to_owned()
}

fn error(status: StatusCode, id: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": id, "message": message,
            "@Message.ExtendedInfo": [{ "MessageId": id, "Message": message }] } })),
    )
        .into_response()
}

impl Fake {
    fn load(dir: &str, tweak: impl FnOnce(&mut Behaviour)) -> Fake {
        let dir = fixtures().join(dir);
        let mut behaviour: Behaviour =
            toml::from_str(&std::fs::read_to_string(dir.join("fake.toml")).unwrap()).unwrap();
        tweak(&mut behaviour);
        let mut docs = HashMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let doc: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let id = doc["@odata.id"].as_str().unwrap().to_owned();
                docs.insert(norm(&id), doc);
            }
        }
        Fake {
            behaviour: Arc::new(behaviour),
            inner: Arc::new(Mutex::new(Inner {
                docs,
                etag: 1,
                ..Inner::default()
            })),
        }
    }

    async fn serve(&self) -> (String, tokio::task::JoinHandle<()>) {
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (format!("http://{addr}"), server)
    }

    fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    fn logins(&self) -> u32 {
        self.inner.lock().unwrap().logins
    }

    fn live_sessions(&self) -> usize {
        self.inner.lock().unwrap().tokens.len()
    }

    /// Every session ends (the BMC's timeout, or its reboot).
    fn expire_sessions(&self) {
        self.inner.lock().unwrap().tokens.clear();
    }

    fn refuse_tokens(&self) {
        self.inner.lock().unwrap().refuse_tokens = true;
    }

    /// The system body (the one ComputerSystem).
    fn system(&self) -> Value {
        let g = self.inner.lock().unwrap();
        g.docs
            .values()
            .find(|d| {
                d["@odata.type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("#ComputerSystem.v"))
            })
            .cloned()
            .unwrap()
    }

    fn set_system(&self, field: &str, value: Value) {
        let mut g = self.inner.lock().unwrap();
        let sys = g
            .docs
            .values_mut()
            .find(|d| {
                d["@odata.type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("#ComputerSystem.v"))
            })
            .unwrap();
        sys[field] = value;
    }

    fn patches(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "PATCH")
            .collect()
    }

    fn answer(&self, g: &mut Inner, method: &Method, key: &str, asked: Asked<'_>) -> Response {
        let Asked {
            token,
            basic,
            if_match,
            body,
        } = asked;
        let b = &self.behaviour;
        if key == "/redfish/v1" && method == Method::GET {
            return Json(g.docs[key].clone()).into_response();
        }
        if b.sessions && key == SESSIONS && method == Method::POST {
            let body = body.cloned().unwrap_or_default();
            if body["UserName"] != USER || body["Password"] != PASSWORD {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "Base.1.8.NoValidSession",
                    "Invalid user name or password",
                );
            }
            g.logins += 1;
            let token = format!("tok-{}", g.logins);
            let location = format!("/redfish/v1/SessionService/Sessions/{}", g.logins);
            g.tokens.insert(token.clone(), norm(&location));
            return (
                StatusCode::CREATED,
                [("X-Auth-Token", token), ("Location", location.clone())],
                Json(
                    json!({ "@odata.id": location, "Id": g.logins.to_string(), "UserName": USER }),
                ),
            )
                .into_response();
        }
        if key == SESSIONS && method == Method::POST {
            // SessionService switched off.
            return StatusCode::NOT_FOUND.into_response();
        }
        let authed = match token {
            Some(t) => !g.refuse_tokens && g.tokens.contains_key(t),
            // A BMC with sessions here takes tokens only: the driver must
            // not fall back to basic behind the test's back.
            None => basic && !b.sessions,
        };
        if !authed {
            return error(
                StatusCode::UNAUTHORIZED,
                "Base.1.8.NoValidSession",
                "There is no valid session established with the implementation.",
            );
        }
        if method == Method::DELETE {
            let before = g.tokens.len();
            g.tokens.retain(|_, path| path != key);
            return if g.tokens.len() < before {
                StatusCode::NO_CONTENT.into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            };
        }
        let etag = format!("W/\"{}\"", g.etag);
        if method == Method::GET {
            let Some(doc) = g.docs.get(key) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let mut doc = doc.clone();
            if doc.get("@odata.etag").is_some() || b.require_if_match {
                doc["@odata.etag"] = json!(etag);
            }
            return ([("ETag", etag)], Json(doc)).into_response();
        }
        if method == Method::PATCH {
            if !g.docs.contains_key(key) {
                return StatusCode::NOT_FOUND.into_response();
            }
            if b.require_if_match {
                match if_match {
                    None => {
                        return error(
                            StatusCode::PRECONDITION_REQUIRED,
                            "Ami.1.0.PreconditionHeaderMissing",
                            "The request did not provide the required precondition, such as an If-Match or If-None-Match header.",
                        );
                    }
                    Some(t) if t != etag => {
                        return error(
                            StatusCode::PRECONDITION_FAILED,
                            "Base.1.8.PreconditionFailed",
                            "The ETag supplied did not match the ETag required to change this resource.",
                        );
                    }
                    Some(_) => {}
                }
            }
            let boot = body
                .and_then(|v| v.get("Boot"))
                .cloned()
                .unwrap_or_default();
            if b.reject_mode_write && boot.get("BootSourceOverrideMode").is_some() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "iLO.2.14.PropertyNotWritableOrUnknown",
                    "The property BootSourceOverrideMode is read-only.",
                );
            }
            let doc = g.docs.get_mut(key).unwrap();
            for (k, v) in boot.as_object().cloned().unwrap_or_default() {
                doc["Boot"][k] = v;
            }
            if let Some(mode) = &b.mode_unless_sent
                && boot.get("BootSourceOverrideMode").is_none()
            {
                doc["Boot"]["BootSourceOverrideMode"] = json!(mode);
            }
            g.etag += 1;
            return StatusCode::NO_CONTENT.into_response();
        }
        if method == Method::POST
            && let Some(system) = key.strip_suffix("/actions/computersystem.reset")
            && let Some(doc) = g.docs.get_mut(system)
        {
            let state = match body.and_then(|v| v["ResetType"].as_str()) {
                Some("On" | "ForceOn" | "ForceRestart" | "GracefulRestart") => "On",
                Some("ForceOff" | "GracefulShutdown") => "Off",
                _ => return StatusCode::BAD_REQUEST.into_response(),
            };
            doc["PowerState"] = json!(state);
            return StatusCode::NO_CONTENT.into_response();
        }
        StatusCode::NOT_FOUND.into_response()
    }
}

/// What a request carried that the server judges.
#[derive(Debug, Clone, Copy)]
struct Asked<'a> {
    token: Option<&'a str>,
    basic: bool,
    if_match: Option<&'a str>,
    body: Option<&'a Value>,
}

async fn handle(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let expected_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let token = header("x-auth-token");
    let basic = header("authorization").is_some_and(|a| a == expected_basic);
    let if_match = header("if-match");
    let json_body: Option<Value> = serde_json::from_slice(&body).ok();
    let mut g = fake.inner.lock().unwrap();
    let asked = Asked {
        token: token.as_deref(),
        basic,
        if_match: if_match.as_deref(),
        body: json_body.as_ref(),
    };
    let resp = fake.answer(&mut g, &method, &norm(uri.path()), asked);
    g.seen.push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        token,
        basic,
        if_match,
        body: json_body,
        status: resp.status().as_u16(),
    });
    resp
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_session_is_opened_once_reused_renewed_once_after_expiry_and_deleted() {
    runtime().block_on(async {
        let fake = Fake::load("dmtf-public-rackmount1", |_| {});
        let (url, server) = fake.serve().await;
        let bmc = Redfish::new(&url, USER, PASSWORD, None, limits()).unwrap();

        let info = bmc.system_info().await.unwrap();
        assert_eq!(info.serial.as_deref(), Some("437XR1138R2"));
        assert_eq!(info.power, Some(PowerState::Off));
        assert!(bmc.uses_session());
        bmc.power_state().await.unwrap();
        bmc.power_state().await.unwrap();
        assert_eq!(fake.logins(), 1, "one login for every call of a driver");
        let seen = fake.seen();
        // The service root unauthenticated, then the login, then the token
        // on everything; never a password again.
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].path, "/redfish/v1/");
        assert!(seen[0].token.is_none() && !seen[0].basic);
        assert_eq!(seen[1].method, "POST");
        assert_eq!(seen[1].status, 201);
        assert!(seen.len() > 4);
        for s in &seen[2..] {
            assert_eq!(s.token.as_deref(), Some("tok-1"), "{s:?}");
            assert!(!s.basic, "{s:?}");
            assert_eq!(s.status, 200, "{s:?}");
        }

        // The BMC forgets the session: one 401, one fresh login, and the
        // call goes through.
        fake.expire_sessions();
        assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off);
        assert_eq!(fake.logins(), 2);
        assert_eq!(fake.seen().iter().filter(|s| s.status == 401).count(), 1);
        assert_eq!(fake.live_sessions(), 1);

        // Logout deletes the live session, with its own token.
        bmc.logout().await.unwrap();
        let last = fake.seen().pop().unwrap();
        assert_eq!(
            (last.method.as_str(), last.path.as_str()),
            ("DELETE", "/redfish/v1/SessionService/Sessions/2")
        );
        assert_eq!(last.token.as_deref(), Some("tok-2"));
        assert_eq!(last.status, 204);
        assert_eq!(fake.live_sessions(), 0);
        assert!(!bmc.uses_session());

        // A driver dropped with a session open deletes it from a task.
        let other = Redfish::new(&url, USER, PASSWORD, None, limits()).unwrap();
        other.power_state().await.unwrap();
        assert_eq!(fake.live_sessions(), 1);
        drop(other);
        let started = Instant::now();
        while fake.live_sessions() > 0 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            fake.live_sessions(),
            0,
            "dropping the driver ends its session"
        );
        server.abort();
    });
}

#[test]
fn a_refused_session_gets_one_new_login_then_the_auth_error() {
    runtime().block_on(async {
        let fake = Fake::load("dmtf-public-rackmount1", |_| {});
        let (url, server) = fake.serve().await;
        let bmc = Redfish::new(&url, USER, PASSWORD, None, limits()).unwrap();
        bmc.power_state().await.unwrap();
        fake.refuse_tokens();
        let err = bmc.power_state().await.unwrap_err();
        assert!(
            matches!(&err, BmcError::Auth { reason, .. } if reason == "HTTP 401"),
            "{err:?}"
        );
        assert_eq!(fake.logins(), 2, "exactly one re-login, no loop");

        let wrong = Redfish::new(&url, USER, "nope", None, limits()).unwrap();
        let err = wrong.power_state().await.unwrap_err();
        assert!(
            matches!(&err, BmcError::Auth { reason, .. } if reason.contains("session login")),
            "{err:?}"
        );
        assert!(err.to_string().contains("refused the credentials"), "{err}");
        server.abort();
    });
}

#[test]
fn a_service_without_sessions_gets_basic_auth() {
    runtime().block_on(async {
        // The root still links a Sessions collection, but POST there is 404
        // (as a BMC with the SessionService switched off).
        let fake = Fake::load("dmtf-public-rackmount1", |b| b.sessions = false);
        let (url, server) = fake.serve().await;
        let bmc = Redfish::new(&url, USER, PASSWORD, None, limits()).unwrap();
        assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off);
        assert!(!bmc.uses_session());
        let seen = fake.seen();
        assert_eq!(seen[1].method, "POST");
        assert_eq!(seen[1].status, 404);
        for s in &seen[2..] {
            assert!(s.basic && s.token.is_none(), "{s:?}");
            assert_eq!(s.status, 200, "{s:?}");
        }
        assert_eq!(fake.logins(), 0);
        bmc.logout().await.unwrap(); // nothing to end: not an error
        server.abort();
    });
}

/// Boots once from `target` and powers the system `action` on the replay
/// of `dir`; answers the profile the driver chose and the boot PATCH it
/// sent (the last one).
async fn replay(fake: &Fake, target: BootTarget, action: PowerAction) -> (String, Seen) {
    let (url, server) = fake.serve().await;
    let bmc = Redfish::new(&url, USER, PASSWORD, None, limits()).unwrap();
    let profile = bmc.quirks().await.unwrap().name;
    bmc.boot_once(target).await.unwrap();
    bmc.set_power(action).await.unwrap();
    assert_eq!(bmc.power_state().await.unwrap(), action.settles_in());
    // Read-back holds on the BMC's side too.
    let sys = fake.system();
    assert_eq!(sys["Boot"]["BootSourceOverrideEnabled"], "Once");
    bmc.logout().await.unwrap();
    server.abort();
    let patch = fake.patches().pop().unwrap();
    assert_eq!(patch.status, 204, "{patch:?}");
    (profile, patch)
}

#[test]
fn the_generic_profile_sends_the_standard_boot_patch() {
    runtime().block_on(async {
        let fake = Fake::load("dmtf-public-rackmount1", |_| {});
        let (profile, patch) = replay(&fake, BootTarget::UefiHttp, PowerAction::On).await;
        assert_eq!(profile, "generic");
        assert_eq!(
            patch.body.unwrap(),
            json!({ "Boot": { "BootSourceOverrideTarget": "UefiHttp", "BootSourceOverrideEnabled": "Once" } })
        );
        assert!(patch.if_match.is_none());
        assert_eq!(fake.system()["Boot"]["BootSourceOverrideTarget"], "UefiHttp");
    });
}

#[test]
fn lenovo_ami_gets_if_match_with_the_etag_it_served() {
    runtime().block_on(async {
        let fake = Fake::load("lenovo-sr655-ami", |_| {});
        let (profile, patch) = replay(&fake, BootTarget::Pxe, PowerAction::ForceOff).await;
        assert_eq!(profile, "lenovo-ami");
        // The ETag of the system as served just before the PATCH.
        let seen = fake.seen();
        let i = seen.iter().position(|s| s.method == "PATCH").unwrap();
        assert_eq!(seen[i - 1].method, "GET");
        assert_eq!(patch.if_match.as_deref(), Some("W/\"1\""));
        assert!(
            seen.iter().all(|s| s.status != 428 && s.status != 412),
            "never refused: {seen:?}"
        );
        assert_eq!(fake.system()["Boot"]["BootSourceOverrideTarget"], "Pxe");
        assert_eq!(fake.system()["PowerState"], "Off");
    });
}

#[test]
fn a_bmc_no_profile_knows_that_requires_if_match_gets_it_after_the_428() {
    runtime().block_on(async {
        let fake = Fake::load("lenovo-sr655-ami", |_| {});
        fake.set_system("Manufacturer", json!("Contoso"));
        let (profile, patch) = replay(&fake, BootTarget::Hdd, PowerAction::On).await;
        assert_eq!(profile, "generic");
        let statuses: Vec<u16> = fake.patches().iter().map(|p| p.status).collect();
        assert_eq!(statuses, [428, 204]);
        assert!(patch.if_match.is_some());
        assert_eq!(fake.system()["Boot"]["BootSourceOverrideTarget"], "Hdd");
    });
}

#[test]
fn supermicro_gets_the_boot_mode_with_the_target() {
    runtime().block_on(async {
        let fake = Fake::load("supermicro-x12", |_| {});
        let (profile, patch) = replay(&fake, BootTarget::Pxe, PowerAction::On).await;
        assert_eq!(profile, "supermicro");
        assert_eq!(
            patch.body.unwrap()["Boot"]["BootSourceOverrideMode"],
            "UEFI",
            "the mode the BMC reported"
        );
        assert_eq!(fake.system()["Boot"]["BootSourceOverrideMode"], "UEFI");

        // Without the profile the replay shows what the quirk is about:
        // the BMC falls back to Legacy.
        let fake = Fake::load("supermicro-x12", |_| {});
        fake.set_system("Manufacturer", json!("Contoso"));
        let (profile, _) = replay(&fake, BootTarget::Pxe, PowerAction::On).await;
        assert_eq!(profile, "generic");
        assert_eq!(fake.system()["Boot"]["BootSourceOverrideMode"], "Legacy");
    });
}

#[test]
fn hpe_ilo_never_gets_the_read_only_boot_mode() {
    runtime().block_on(async {
        let fake = Fake::load("hpe-ilo5", |_| {});
        let (profile, patch) = replay(&fake, BootTarget::Pxe, PowerAction::On).await;
        assert_eq!(profile, "hpe-ilo");
        let body = patch.body.unwrap();
        assert!(
            body["Boot"].get("BootSourceOverrideMode").is_none(),
            "{body}"
        );
        assert_eq!(fake.system()["Boot"]["BootSourceOverrideTarget"], "Pxe");
        // The collection as the service root links it, the system as the
        // collection lists it: iLO's spelling, not the usual one.
        assert_eq!(patch.path, "/redfish/v1/systems/1/");
        let paths: Vec<String> = fake.seen().into_iter().map(|s| s.path).collect();
        assert!(
            paths.iter().any(|p| p == "/redfish/v1/systems/"),
            "{paths:?}"
        );
        assert!(
            !paths.iter().any(|p| p == "/redfish/v1/Systems"),
            "{paths:?}"
        );
    });
}
