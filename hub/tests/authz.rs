//! Identity and authorization (ADR 0013) through a real `dv-hub serve` over
//! a real nats-server: service tokens for every role decide every endpoint
//! family (allowed, 403, or 404 for what a tenant must not see), tenants
//! never reach each other, grants cannot escalate, revoked and expired
//! tokens stop working, audit records name the caller; and, on a second
//! hub, OIDC users from a local issuer and the rate limit.
//!
//! One hub start per test; everything on loopback; every wait bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use dv_hub::api::audit::AuditRecord;
use dv_tests::hub::Hub;
use dv_tests::nats::nats_server_bin;
use reqwest::Method;
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    /// The `name` of every element of a list body, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .body
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {self:?}"))
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }
}

/// One caller of the API.
#[derive(Clone)]
struct Client {
    who: String,
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(who: &str, base: &str, token: Option<&str>) -> Client {
        Client {
            who: who.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            base: base.to_owned(),
            token: token.map(str::to_owned),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        // Writes use If-Match: * (concurrency has its own tests).
        request = request.header("if-match", "*");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Calls and asserts the status.
    async fn expect(&self, status: u16, method: &str, path: &str, body: Option<Value>) -> Reply {
        let method: Method = method.parse().unwrap();
        let reply = self.call(method.clone(), path, body.as_ref()).await;
        assert_eq!(
            reply.status, status,
            "{} {method} {path}: expected {status}, got {reply:?}",
            self.who
        );
        reply
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }
}

/// Mints a service token as `by`; the new caller.
async fn mint(by: &Client, name: &str, role: &str, scope: Value) -> Client {
    let r = by
        .expect(
            201,
            "POST",
            "/v1/identity/tokens",
            Some(json!({"name": name, "role": role, "scope": scope})),
        )
        .await;
    assert_eq!(r.body["subject"], format!("svc:{name}"));
    let token = r.body["token"].as_str().unwrap();
    assert!(token.starts_with("dvs_"), "{r:?}");
    Client::new(name, &by.base, Some(token))
}

fn tenant(t: &str) -> Value {
    json!({"kind": "tenant", "tenant": t})
}

fn project(t: &str, p: &str) -> Value {
    json!({"kind": "project", "tenant": t, "project": p})
}

/// Every record in `DV_HUB_AUDIT`.
async fn audit(hub: &Hub) -> Vec<AuditRecord> {
    let client = async_nats::connect(hub.client_urls()[0].as_str())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("DV_HUB_AUDIT").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(message) = stream.get_raw_message(seq).await {
            out.push(serde_json::from_slice(&message.payload).unwrap());
        }
    }
    out
}

#[test]
fn roles_decide_every_endpoint_and_tenants_never_see_each_other() {
    let Some(nats) = nats_server_bin("roles_decide_every_endpoint") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(
        &nats,
        std::path::Path::new(env!("CARGO_BIN_EXE_dv-hub")),
        &dir.path().join("hub"),
        1,
        1,
        &["osl-1"],
    );
    let base = hub.api(0);
    runtime().block_on(async {
        let op = Client::new("bootstrap operator", &base, Some(&hub.token));

        // Without a valid token: 401, saying what to send.
        let anonymous = Client::new("no token", &base, None);
        let r = anonymous.expect(401, "GET", "/v1/tenants", None).await;
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        assert!(r.error().contains("service token"), "{r:?}");
        for garbage in ["dvs_zz", "dvs_0123456789abcdef_00", "nonsense", "a.b.c"] {
            Client::new(garbage, &base, Some(garbage))
                .expect(401, "GET", "/v1/identity/whoami", None)
                .await;
        }
        let me = op.expect(200, "GET", "/v1/identity/whoami", None).await;
        assert_eq!(me.body["subject"], "user:operator");
        assert_eq!(me.body["credential"], "bootstrap");
        op.expect(404, "GET", "/v1/identity/oidc", None).await;

        // The world: two tenants with projects and environments.
        for t in ["acme", "globex"] {
            op.expect(201, "POST", "/v1/tenants", Some(json!({"name": t})))
                .await;
        }
        for (t, p) in [("acme", "web"), ("acme", "db"), ("globex", "web")] {
            op.expect(
                201,
                "POST",
                &format!("/v1/tenants/{t}/projects"),
                Some(json!({"name": p})),
            )
            .await;
            op.expect(
                201,
                "POST",
                &format!("/v1/tenants/{t}/projects/{p}/environments"),
                Some(json!({"name": "prod", "kind": "production"})),
            )
            .await;
        }
        op.expect(
            200,
            "PUT",
            "/v1/tenants/globex/projects/web/quota",
            Some(json!({"machines": 3})),
        )
        .await;

        // A token for every role.
        let ops = mint(&op, "ops", "platform-operator", json!({"kind": "platform"})).await;
        let pv = mint(&op, "platform-viewer", "viewer", json!({"kind": "platform"})).await;
        let ta = mint(&op, "acme-admin", "tenant-admin", tenant("acme")).await;
        let pm = mint(&op, "web-member", "project-member", project("acme", "web")).await;
        let vw = mint(&op, "web-viewer", "viewer", project("acme", "web")).await;
        let gx = mint(&op, "globex-admin", "tenant-admin", tenant("globex")).await;
        let me = ta.expect(200, "GET", "/v1/identity/whoami", None).await;
        assert_eq!(me.body["subject"], "svc:acme-admin");
        assert_eq!(me.body["credential"], "service_token");
        assert_eq!(me.body["bindings"][0]["role"], "tenant-admin");

        // Sites and raw inventory: platform scope.
        let platform_reads = [
            ("/v1/sites", 200),
            ("/v1/machines", 200),
            ("/v1/machines/no-such-machine", 404),
        ];
        for (path, found) in platform_reads {
            for c in [&op, &ops, &pv] {
                c.expect(found, "GET", path, None).await;
            }
            for c in [&ta, &pm, &vw] {
                let r = c.expect(403, "GET", path, None).await;
                assert!(r.error().contains("platform"), "{r:?}");
            }
        }
        // Tasks, events and commands: a platform binding sees all; anyone
        // else only what its projects' requests caused (none here), and
        // one it may not see is answered as missing.
        for c in [&op, &ops, &pv, &ta, &pm, &vw] {
            for path in ["/v1/tasks", "/v1/events"] {
                c.expect(200, "GET", path, None).await;
            }
            c.expect(404, "GET", "/v1/tasks/no-such-task", None).await;
            c.expect(404, "GET", "/v1/commands/no-such-command", None).await;
        }
        for action in ["provision", "deprovision"] {
            let path = format!("/v1/machines/no-such-machine/{action}");
            for c in [&op, &ops] {
                c.expect(404, "POST", &path, None).await;
            }
            for c in [&pv, &ta, &pm, &vw] {
                let r = c.expect(403, "POST", &path, None).await;
                assert!(r.error().contains("platform-operator"), "{r:?}");
            }
        }

        // Tenants: lists filter, writes are platform.
        for (c, seen) in [
            (&op, vec!["acme", "globex"]),
            (&pv, vec!["acme", "globex"]),
            (&ta, vec!["acme"]),
            (&pm, vec!["acme"]),
            (&vw, vec!["acme"]),
            (&gx, vec!["globex"]),
        ] {
            let r = c.expect(200, "GET", "/v1/tenants", None).await;
            assert_eq!(r.names(), seen, "{} lists tenants", c.who);
            if c.who != "globex-admin" {
                c.expect(200, "GET", "/v1/tenants/acme", None).await;
            }
        }
        let real_404 = op.expect(404, "GET", "/v1/tenants/nosuch", None).await;
        for c in [&pv, &ta, &pm, &vw] {
            let r = c
                .expect(403, "POST", "/v1/tenants", Some(json!({"name": "initech"})))
                .await;
            assert!(r.error().contains("platform-operator"), "{r:?}");
            c.expect(403, "PUT", "/v1/tenants/acme", Some(json!({"name": "acme"})))
                .await;
            c.expect(403, "DELETE", "/v1/tenants/acme", None).await;
        }
        for c in [&ta, &pm, &vw] {
            let r = c.expect(404, "GET", "/v1/tenants/globex", None).await;
            assert_eq!(
                r.body,
                json!({"error": real_404.error().replace("nosuch", "globex")}),
                "a hidden tenant answers like a missing one"
            );
            c.expect(404, "PUT", "/v1/tenants/globex", Some(json!({"name": "globex"})))
                .await;
            c.expect(404, "DELETE", "/v1/tenants/globex", None).await;
        }
        gx.expect(404, "GET", "/v1/tenants/acme", None).await;
        ops.expect(201, "POST", "/v1/tenants", Some(json!({"name": "initech"})))
            .await;
        op.expect(204, "DELETE", "/v1/tenants/initech", None).await;

        // Projects: lists filter, create/delete/replace need manage.
        for (c, seen) in [
            (&op, vec!["db", "web"]),
            (&pv, vec!["db", "web"]),
            (&ta, vec!["db", "web"]),
            (&pm, vec!["web"]),
            (&vw, vec!["web"]),
        ] {
            let r = c.expect(200, "GET", "/v1/tenants/acme/projects", None).await;
            assert_eq!(r.names(), seen, "{} lists acme's projects", c.who);
        }
        for c in [&pm, &vw] {
            let r = c.expect(404, "GET", "/v1/tenants/acme/projects/db", None).await;
            assert_eq!(r.error(), "project \"acme/db\" does not exist", "{r:?}");
            c.expect(200, "GET", "/v1/tenants/acme/projects/web", None)
                .await;
        }
        for c in [&pv, &pm, &vw] {
            let r = c
                .expect(
                    403,
                    "POST",
                    "/v1/tenants/acme/projects",
                    Some(json!({"name": "api"})),
                )
                .await;
            assert!(r.error().contains("tenant-admin"), "{r:?}");
            c.expect(
                403,
                "PUT",
                "/v1/tenants/acme/projects/web",
                Some(json!({"name": "web"})),
            )
            .await;
            c.expect(403, "DELETE", "/v1/tenants/acme/projects/web", None)
                .await;
        }
        ta.expect(
            201,
            "POST",
            "/v1/tenants/acme/projects",
            Some(json!({"name": "api"})),
        )
        .await;
        ta.expect(
            200,
            "PUT",
            "/v1/tenants/acme/projects/api",
            Some(json!({"name": "api", "description": "the API"})),
        )
        .await;
        ta.expect(204, "DELETE", "/v1/tenants/acme/projects/api", None)
            .await;

        // Environments: read on the project, write to change.
        for c in [&op, &pv, &ta, &pm, &vw] {
            let r = c
                .expect(200, "GET", "/v1/tenants/acme/projects/web/environments", None)
                .await;
            assert_eq!(r.names(), ["prod"]);
            c.expect(
                200,
                "GET",
                "/v1/tenants/acme/projects/web/environments/prod",
                None,
            )
            .await;
        }
        let envs = "/v1/tenants/acme/projects/web/environments";
        for c in [&pv, &vw] {
            let r = c
                .expect(403, "POST", envs, Some(json!({"name": "staging"})))
                .await;
            assert!(r.error().contains("project-member"), "{r:?}");
            c.expect(
                403,
                "PUT",
                &format!("{envs}/prod"),
                Some(json!({"name": "prod", "kind": "production"})),
            )
            .await;
            c.expect(403, "DELETE", &format!("{envs}/prod"), None).await;
        }
        pm.expect(201, "POST", envs, Some(json!({"name": "staging"})))
            .await;
        pm.expect(
            200,
            "PUT",
            &format!("{envs}/staging"),
            Some(json!({"name": "staging", "kind": "staging"})),
        )
        .await;
        pm.expect(204, "DELETE", &format!("{envs}/staging"), None)
            .await;
        pm.expect(
            404,
            "POST",
            "/v1/tenants/acme/projects/db/environments",
            Some(json!({"name": "x"})),
        )
        .await;

        // Quotas: read on the project, set is platform.
        let quota = "/v1/tenants/acme/projects/web/quota";
        for c in [&op, &pv, &ta, &pm, &vw] {
            c.expect(200, "GET", quota, None).await;
        }
        for c in [&pv, &ta, &pm, &vw] {
            let r = c
                .expect(403, "PUT", quota, Some(json!({"machines": 100})))
                .await;
            assert!(r.error().contains("platform-operator"), "{r:?}");
        }
        ops.expect(200, "PUT", quota, Some(json!({"machines": 2})))
            .await;

        // Acme's admin against every globex resource: 404, as if absent.
        let g = "/v1/tenants/globex";
        let cross: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("{g}/projects"), None),
            ("POST", format!("{g}/projects"), Some(json!({"name": "evil"}))),
            ("GET", format!("{g}/projects/web"), None),
            ("PUT", format!("{g}/projects/web"), Some(json!({"name": "web", "description": "pwned"}))),
            ("DELETE", format!("{g}/projects/web"), None),
            ("GET", format!("{g}/projects/web/environments"), None),
            ("POST", format!("{g}/projects/web/environments"), Some(json!({"name": "evil"}))),
            ("GET", format!("{g}/projects/web/environments/prod"), None),
            ("PUT", format!("{g}/projects/web/environments/prod"), Some(json!({"name": "prod", "kind": "development"}))),
            ("DELETE", format!("{g}/projects/web/environments/prod"), None),
            ("GET", format!("{g}/projects/web/quota"), None),
            ("PUT", format!("{g}/projects/web/quota"), Some(json!({"machines": 99}))),
        ];
        for (method, path, body) in cross {
            let r = ta.expect(404, method, &path, body).await;
            assert_eq!(r.error(), "tenant \"globex\" does not exist", "{method} {path}");
        }

        // Bindings: the grant rule, idempotence, visibility, revocation.
        let bindings = "/v1/identity/bindings";
        let carol = json!({"subject": "user:carol@example.com", "role": "viewer", "scope": project("acme", "web")});
        let r = pm.expect(403, "POST", bindings, Some(carol.clone())).await;
        assert!(r.error().contains("may not grant"), "{r:?}");
        let first = ta.expect(201, "POST", bindings, Some(carol.clone())).await;
        let again = ta.expect(201, "POST", bindings, Some(carol.clone())).await;
        assert_eq!(first.body["id"], again.body["id"], "granting twice is one grant");
        assert_eq!(first.body["granted_by"], "svc:acme-admin");
        let carol_id = first.body["id"].as_str().unwrap().to_owned();
        for (c, b) in [
            (&ta, json!({"subject": "user:eve@example.com", "role": "viewer", "scope": tenant("globex")})),
            (&ta, json!({"subject": "user:eve@example.com", "role": "viewer", "scope": {"kind": "platform"}})),
            (&ta, json!({"subject": "user:eve@example.com", "role": "platform-operator", "scope": {"kind": "platform"}})),
            (&pv, json!({"subject": "user:eve@example.com", "role": "viewer", "scope": {"kind": "platform"}})),
            (&pm, json!({"subject": "user:eve@example.com", "role": "tenant-admin", "scope": tenant("acme")})),
        ] {
            c.expect(403, "POST", bindings, Some(b)).await;
        }
        let r = ta
            .expect(
                422,
                "POST",
                bindings,
                Some(json!({"subject": "user:eve", "role": "tenant-admin", "scope": {"kind": "platform"}})),
            )
            .await;
        assert!(r.error().contains("platform"), "{r:?}");
        let dave = op
            .expect(
                201,
                "POST",
                bindings,
                Some(json!({"subject": "user:dave@example.com", "role": "viewer", "scope": tenant("globex")})),
            )
            .await;
        let dave_id = dave.body["id"].as_str().unwrap().to_owned();
        let listed = ta.expect(200, "GET", bindings, None).await;
        let subjects: Vec<&str> = listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["subject"].as_str().unwrap())
            .collect();
        assert_eq!(subjects, ["user:carol@example.com"], "{listed:?}");
        let all = op.expect(200, "GET", &format!("{bindings}?tenant=globex"), None).await;
        assert_eq!(all.body.as_array().unwrap().len(), 1, "{all:?}");
        ta.expect(404, "DELETE", &format!("{bindings}/{dave_id}"), None)
            .await;
        pm.expect(403, "DELETE", &format!("{bindings}/{carol_id}"), None)
            .await;
        ta.expect(204, "DELETE", &format!("{bindings}/{carol_id}"), None)
            .await;
        let left = op.expect(200, "GET", bindings, None).await;
        assert_eq!(left.body.as_array().unwrap().len(), 1, "only dave's is left: {left:?}");

        // Tokens: the same rule, names unique, lifetimes bounded.
        let tokens = "/v1/identity/tokens";
        for (c, role, scope) in [
            (&pm, "tenant-admin", tenant("acme")),
            (&pm, "viewer", project("acme", "web")),
            (&ta, "tenant-admin", tenant("globex")),
            (&ta, "viewer", json!({"kind": "platform"})),
            (&pv, "viewer", json!({"kind": "platform"})),
        ] {
            c.expect(
                403,
                "POST",
                tokens,
                Some(json!({"name": "escalated", "role": role, "scope": scope})),
            )
            .await;
        }
        let ci = mint(&ta, "web-ci", "project-member", project("acme", "web")).await;
        ci.expect(200, "GET", "/v1/tenants/acme/projects/web", None)
            .await;
        ta.expect(
            409,
            "POST",
            tokens,
            Some(json!({"name": "web-ci", "role": "viewer", "scope": project("acme", "web")})),
        )
        .await;
        for bad in [
            json!({"name": "Web CI", "role": "viewer", "scope": project("acme", "web")}),
            json!({"name": "long", "role": "viewer", "scope": project("acme", "web"), "expires_in_days": 400}),
            json!({"name": "misfit", "role": "tenant-admin", "scope": project("acme", "web")}),
        ] {
            ta.expect(422, "POST", tokens, Some(bad)).await;
        }
        let listed = ta.expect(200, "GET", tokens, None).await;
        assert_eq!(
            listed.names(),
            ["acme-admin", "web-ci", "web-member", "web-viewer"],
            "acme's admin sees acme's tokens only"
        );
        assert!(listed.body[0].get("token").is_none(), "secrets are never listed");
        let all = op.expect(200, "GET", tokens, None).await;
        let id_of = |name: &str| {
            all.body
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        ta.expect(404, "DELETE", &format!("{tokens}/{}", id_of("globex-admin")), None)
            .await;
        pm.expect(403, "DELETE", &format!("{tokens}/{}", id_of("web-viewer")), None)
            .await;
        ta.expect(204, "DELETE", &format!("{tokens}/{}", id_of("web-ci")), None)
            .await;
        let r = ci.expect(401, "GET", "/v1/tenants/acme/projects/web", None).await;
        assert!(r.error().contains("revoked"), "{r:?}");
        // Its name is free again.
        let ci2 = mint(&ta, "web-ci", "viewer", project("acme", "web")).await;
        ci2.expect(200, "GET", "/v1/tenants/acme/projects/web", None)
            .await;
        gx.expect(200, "GET", "/v1/tenants/globex", None).await;

        // An expired token (written as another replica would have) is refused.
        let expired = dv_identity::ServiceToken::mint().unwrap();
        let record = json!({
            "id": expired.id().as_str(), "name": "old", "subject": "svc:old", "role": "viewer",
            "scope": {"kind": "platform"}, "created_by": "user:operator",
            "created_at": "2020-01-01T00:00:00Z", "expires_at": "2020-04-01T00:00:00Z",
            "secret_sha256": expired.digest().to_hex(),
        });
        let client = async_nats::connect(hub.client_urls()[0].as_str())
            .await
            .unwrap();
        let kv = async_nats::jetstream::new(client)
            .get_key_value("dv_identity")
            .await
            .unwrap();
        kv.put(
            format!("token.{}", expired.id()),
            record.to_string().into(),
        )
        .await
        .unwrap();
        let old = Client::new("expired", &base, Some(&expired.expose()));
        let mut seen = String::new();
        for _ in 0..200 {
            let r = old.get("/v1/identity/whoami").await;
            assert_eq!(r.status, 401, "{r:?}");
            seen = r.error().to_owned();
            if seen.contains("expired") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(seen.contains("expired"), "the watch never delivered it: {seen}");

        // Nothing of globex changed.
        op.expect(200, "GET", "/v1/tenants/globex", None).await;
        let p = op.expect(200, "GET", "/v1/tenants/globex/projects/web", None).await;
        assert_eq!(p.body["description"], "", "{p:?}");
        let e = op
            .expect(200, "GET", "/v1/tenants/globex/projects/web/environments", None)
            .await;
        assert_eq!(e.names(), ["prod"]);
        assert_eq!(e.body[0]["kind"], "production");
        let q = op.expect(200, "GET", "/v1/tenants/globex/projects/web/quota", None).await;
        assert_eq!(q.body["machines"], 3);

        // The audit trail names each caller, refused calls included.
        let records = audit(&hub).await;
        let outcome = |actor: &str, method: &str, path: &str| {
            records
                .iter()
                .filter(|r| {
                    r.actor == actor && r.method == method && r.path == path && r.phase == "outcome"
                })
                .map(|r| r.status)
                .collect::<Vec<_>>()
        };
        assert!(
            outcome("svc:acme-admin", "POST", "/v1/tenants/acme/projects").contains(&Some(201)),
            "{records:#?}"
        );
        assert!(outcome("svc:web-member", "POST", "/v1/tenants/acme/projects").contains(&Some(403)));
        assert!(outcome("svc:acme-admin", "DELETE", "/v1/tenants/globex").contains(&Some(404)));
        assert!(outcome("user:operator", "POST", "/v1/tenants").contains(&Some(201)));
    });
    drop(hub);
}

// ---------------------------------------------------------------- OIDC and limits

/// A local OIDC issuer: discovery and a JWKS with one EC P-256 key.
struct Issuer {
    url: String,
    kid: String,
    key: jsonwebtoken::EncodingKey,
}

impl Issuer {
    fn sign(&self, email: &str, audience: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "iss": self.url, "aud": audience, "sub": email, "email": email,
            "iat": now, "exp": now + 300,
        });
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

async fn issuer() -> Issuer {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = pair.public_key_raw().to_vec();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let kid = "test-key".to_owned();
    let jwks = Arc::new(json!({"keys": [{
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65]),
    }]}));
    let discovery = Arc::new(json!({"issuer": url, "jwks_uri": format!("{url}/keys")}));
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery.as_ref().clone()) }),
        )
        .route(
            "/keys",
            axum::routing::get(move || async move { axum::Json(jwks.as_ref().clone()) }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Issuer {
        url,
        kid,
        key: jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
    }
}

#[test]
fn oidc_users_get_their_bindings_and_rate_limits_answer_429() {
    let Some(nats) = nats_server_bin("oidc_users_get_their_bindings") else {
        return;
    };
    let rt = runtime();
    // The issuer runs on the runtime's workers while the hub starts.
    let idp = rt.block_on(issuer());
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[identity]\nissuer = \"{}\"\nclient_id = \"dataverket\"\n\
         platform_operators = [\"user:root@example.com\"]\n\n\
         [limits]\nrequests_per_second = 1\nburst = 5\n",
        idp.url
    );
    let hub = Hub::start_with_toml(
        &nats,
        std::path::Path::new(env!("CARGO_BIN_EXE_dv-hub")),
        &dir.path().join("hub"),
        1,
        1,
        &["osl-1"],
        &extra,
    );
    let base = hub.api(0);
    rt.block_on(async {
        let public = Client::new("no token", &base, None);
        let oidc = public.expect(200, "GET", "/v1/identity/oidc", None).await;
        assert_eq!(oidc.body["issuer"], idp.url.as_str());
        assert_eq!(oidc.body["audience"], "dataverket");
        assert_eq!(oidc.body["scopes"], json!(["openid", "email", "profile"]));

        let op = Client::new("bootstrap operator", &base, Some(&hub.token));
        op.expect(
            201,
            "POST",
            "/v1/identity/bindings",
            Some(json!({"subject": "user:alice@example.com", "role": "viewer", "scope": tenant("acme")})),
        )
        .await;
        let alice = Client::new(
            "alice",
            &base,
            Some(&idp.sign("alice@example.com", "dataverket")),
        );
        let me = alice.expect(200, "GET", "/v1/identity/whoami", None).await;
        assert_eq!(me.body["subject"], "user:alice@example.com");
        assert_eq!(me.body["credential"], "oidc");
        assert_eq!(
            me.body["bindings"],
            json!([{"subject": "user:alice@example.com", "role": "viewer", "scope": tenant("acme")}])
        );
        alice.expect(403, "GET", "/v1/sites", None).await;

        let root = Client::new("root", &base, Some(&idp.sign("root@example.com", "dataverket")));
        let me = root.expect(200, "GET", "/v1/identity/whoami", None).await;
        assert_eq!(me.body["bindings"][0]["role"], "platform-operator");
        let listed = root.expect(200, "GET", "/v1/identity/bindings?subject=user:root@example.com", None).await;
        assert_eq!(listed.body[0]["granted_by"], "config");
        let id = listed.body[0]["id"].as_str().unwrap().to_owned();
        let r = root
            .expect(409, "DELETE", &format!("/v1/identity/bindings/{id}"), None)
            .await;
        assert!(r.error().contains("hub.toml"), "{r:?}");

        let stranger = Client::new("wrong audience", &base, Some(&idp.sign("mallory@example.com", "other-app")));
        stranger.expect(401, "GET", "/v1/identity/whoami", None).await;

        // A burst beyond the bucket: 429 with Retry-After, then health is
        // still served.
        let bob = Client::new("bob", &base, Some(&idp.sign("bob@example.com", "dataverket")));
        let mut limited = None;
        for _ in 0..20 {
            let r = bob.get("/v1/identity/whoami").await;
            if r.status == 429 {
                limited = Some(r);
                break;
            }
            assert_eq!(r.status, 200, "{r:?}");
        }
        let r = limited.expect("20 calls at once never hit a 5-call burst");
        let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(after >= 1, "{r:?}");
        assert!(
            r.error().contains("too many requests from user:bob@example.com"),
            "{r:?}"
        );
        for _ in 0..10 {
            public.expect(200, "GET", "/v1/health", None).await;
        }
        // Guessing tokens is limited per address.
        let guesser = Client::new("guesser", &base, Some("dvs_0123456789abcdef_00"));
        let mut codes = Vec::new();
        let mut last = None;
        for _ in 0..20 {
            let r = guesser.get("/v1/tenants").await;
            codes.push(r.status);
            last = Some(r);
        }
        assert!(codes.contains(&401) && codes.contains(&429), "{codes:?}");
        let last = last.unwrap();
        assert!(last.error().contains("from 127.0.0.1"), "{last:?}");
    });
    drop(hub);
}
