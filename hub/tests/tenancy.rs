//! Tenancy through a real `dv-hub serve` over a real nats-server (the
//! pinned release, JetStream domain `hub`): the CRUD flow with its parent
//! rules, optimistic concurrency (ETag / If-Match), the audit trail and the
//! token. Every process started here is killed when the test ends, every
//! wait is bounded, and everything listens on loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dv_hub::api::audit::AuditRecord;
use dv_tests::nats::{NatsServer, Settings, nats_server_bin};
use dv_tests::process::Guarded;
use dv_tests::sushy::free_port;
use reqwest::Method;
use serde_json::{Value, json};

const TOKEN: &str = "tenancy-test-token";

/// One hub: a single JetStream node and one replica.
struct Hub {
    // Field order is drop order: the replica goes before its nats-server.
    _replica: Guarded,
    nats: NatsServer,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Hub {
    fn start(test: &str) -> Option<Hub> {
        let bin = nats_server_bin(test)?;
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsServer::start(
            &bin,
            dir.path(),
            &Settings {
                name: "hub-1".into(),
                domain: "hub".into(),
                store_dir: dir.path().join("js"),
                port: 0,
                leaf_listen: None,
            },
        );
        let api = free_port();
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        // cluster and leaf are only rendered into node configs
        // (`dv-hub nats-config`); the replica uses the client address.
        let config = format!(
            "[hub]\ndata_dir = \"{data}\"\ntoken_file = \"{token}\"\n\n\
             [[nats]]\nname = \"hub-1\"\nclient = \"127.0.0.1:{client}\"\n\
             cluster = \"127.0.0.1:{cluster}\"\nleaf = \"127.0.0.1:{leaf}\"\n\n\
             [[replicas]]\nname = \"r1\"\nlisten = \"127.0.0.1:{api}\"\n\n\
             [[sites]]\nname = \"osl-1\"\n\n{limits}",
            data = dir.path().join("data").display(),
            token = token.display(),
            client = nats.port,
            cluster = free_port(),
            leaf = free_port(),
            limits = dv_tests::hub::TEST_LIMITS,
        );
        let file = dir.path().join("hub.toml");
        std::fs::write(&file, config).unwrap();
        let log = dir.path().join("dv-hub.log");
        let replica = Guarded::spawn(
            Command::new(env!("CARGO_BIN_EXE_dv-hub"))
                .args(["serve", "--replica", "r1", "--config"])
                .arg(&file)
                .env("DV_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
        )
        .unwrap();
        let hub = Hub {
            _replica: replica,
            nats,
            base: format!("http://127.0.0.1:{api}"),
            log,
            _dir: dir,
        };
        let health = format!("127.0.0.1:{api}").parse().unwrap();
        let ready = dv_tests::wait_for(Duration::from_secs(30), || {
            dv_tests::http::get(health, "/v1/health")
                .ok()
                .filter(|r| r.status == 200)
        });
        assert!(
            ready.is_some(),
            "dv-hub did not become healthy:\n{}",
            hub.log()
        );
        Some(hub)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn client(&self) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            base: self.base.clone(),
            token: Some(TOKEN.to_owned()),
        }
    }

    /// Every record in `DV_HUB_AUDIT`, in order.
    async fn audit(&self) -> Vec<AuditRecord> {
        let client = async_nats::connect(self.nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("DV_HUB_AUDIT").await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            let message = stream.get_raw_message(seq).await.unwrap();
            out.push(serde_json::from_slice(&message.payload).unwrap());
        }
        out
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A small JSON client of the hub API.
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    etag: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let etag = headers.get("etag").map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            etag,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, &[], None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, &[], Some(&body.to_string()))
            .await
    }

    async fn put(&self, path: &str, etag: &str, body: &Value) -> Reply {
        self.call(
            Method::PUT,
            path,
            &[("if-match", etag)],
            Some(&body.to_string()),
        )
        .await
    }

    async fn delete(&self, path: &str, etag: &str) -> Reply {
        self.call(Method::DELETE, path, &[("if-match", etag)], None)
            .await
    }
}

fn error_of(reply: &Reply) -> String {
    reply.body["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn tenancy_crud_flow_keeps_parents_and_children_consistent() {
    let Some(hub) = Hub::start("tenancy_crud_flow_keeps_parents_and_children_consistent") else {
        return;
    };
    let started = Instant::now();
    runtime().block_on(async {
        let api = hub.client();
        assert_eq!(api.get("/v1/tenants").await.body, json!([]));

        // Tenants.
        let created = api
            .post(
                "/v1/tenants",
                &json!({"name": "acme", "display_name": "Acme AS"}),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        assert_eq!(created.headers["location"], "/v1/tenants/acme");
        let etag = created.etag.clone().unwrap();
        assert_eq!(created.body["display_name"], "Acme AS");
        assert_eq!(created.body["description"], "");
        let again = api.post("/v1/tenants", &json!({"name": "acme"})).await;
        assert_eq!(again.status, 409, "{again:?}");
        let got = api.get("/v1/tenants/acme").await;
        assert_eq!(
            (got.status, got.etag.as_deref()),
            (200, Some(etag.as_str()))
        );

        // Bodies that must not change anything.
        let broken = api
            .call(
                Method::PUT,
                "/v1/tenants/acme",
                &[("if-match", &etag)],
                Some("{\"name\": "),
            )
            .await;
        assert_eq!(broken.status, 400, "{broken:?}");
        let bad_name = api.post("/v1/tenants", &json!({"name": "Bad_Name"})).await;
        assert_eq!(bad_name.status, 422, "{bad_name:?}");
        assert!(error_of(&bad_name).contains("tenant name"), "{bad_name:?}");
        let renamed = api
            .put("/v1/tenants/acme", &etag, &json!({"name": "other"}))
            .await;
        assert_eq!(renamed.status, 422, "{renamed:?}");
        let too_long = api
            .put(
                "/v1/tenants/acme",
                &etag,
                &json!({"name": "acme", "display_name": "x".repeat(300)}),
            )
            .await;
        assert_eq!(too_long.status, 422, "{too_long:?}");
        assert!(error_of(&too_long).contains("display_name"), "{too_long:?}");
        assert_eq!(
            api.get("/v1/tenants/acme").await.etag.as_deref(),
            Some(etag.as_str())
        );
        let bad_path = api.get("/v1/tenants/ACME").await;
        assert_eq!(bad_path.status, 400, "{bad_path:?}");

        let replaced = api
            .put(
                "/v1/tenants/acme",
                &etag,
                &json!({"name": "acme", "display_name": "Acme", "description": "the first"}),
            )
            .await;
        assert_eq!(replaced.status, 200, "{replaced:?}");
        let etag2 = replaced.etag.clone().unwrap();
        assert_ne!(etag2, etag);
        let old = api
            .put("/v1/tenants/acme", &etag, &json!({"name": "acme"}))
            .await;
        assert_eq!(old.status, 412, "{old:?}");
        assert_eq!(old.etag.as_deref(), Some(etag2.as_str()));
        assert!(error_of(&old).contains(&etag2), "{old:?}");

        // Projects need their tenant.
        let orphan = api
            .post("/v1/tenants/nobody/projects", &json!({"name": "web"}))
            .await;
        assert_eq!(orphan.status, 404, "{orphan:?}");
        assert!(
            error_of(&orphan).contains("tenant \"nobody\""),
            "{orphan:?}"
        );
        let unknown_site = api
            .post(
                "/v1/tenants/acme/projects",
                &json!({"name": "web", "allowed_sites": ["bgo-9"]}),
            )
            .await;
        assert_eq!(unknown_site.status, 422, "{unknown_site:?}");
        assert!(
            error_of(&unknown_site).contains("osl-1"),
            "{unknown_site:?}"
        );
        let project = api
            .post(
                "/v1/tenants/acme/projects",
                &json!({"name": "web", "allowed_sites": ["osl-1"]}),
            )
            .await;
        assert_eq!(project.status, 201, "{project:?}");
        let list = api.get("/v1/tenants/acme/projects").await;
        assert_eq!(list.body[0]["name"], "web");
        assert_eq!(list.body.as_array().unwrap().len(), 1);

        // Quota: zero until set; "0" is the ETag of the never-set quota.
        let quota = api.get("/v1/tenants/acme/projects/web/quota").await;
        assert_eq!((quota.status, quota.etag.as_deref()), (200, Some("\"0\"")));
        assert_eq!(quota.body["machines"], 0);
        let negative = api
            .put(
                "/v1/tenants/acme/projects/web/quota",
                "\"0\"",
                &json!({"vcpus": -4}),
            )
            .await;
        assert_eq!(negative.status, 422, "{negative:?}");
        let set = api
            .put(
                "/v1/tenants/acme/projects/web/quota",
                "\"0\"",
                &json!({"machines": 4, "vcpus": 64, "memory_gib": 256}),
            )
            .await;
        assert_eq!(set.status, 200, "{set:?}");
        let twice = api
            .put(
                "/v1/tenants/acme/projects/web/quota",
                "\"0\"",
                &json!({"machines": 1}),
            )
            .await;
        assert_eq!(twice.status, 412, "{twice:?}");
        assert_eq!(twice.etag, set.etag);
        let quota = api.get("/v1/tenants/acme/projects/web/quota").await;
        assert_eq!(quota.body["vcpus"], 64);
        assert_eq!(quota.etag, set.etag);

        // Environments need their project.
        let orphan = api
            .post(
                "/v1/tenants/acme/projects/api/environments",
                &json!({"name": "prod"}),
            )
            .await;
        assert_eq!(orphan.status, 404, "{orphan:?}");
        assert!(
            error_of(&orphan).contains("project \"acme/api\""),
            "{orphan:?}"
        );
        let env = api
            .post(
                "/v1/tenants/acme/projects/web/environments",
                &json!({"name": "prod", "kind": "production"}),
            )
            .await;
        assert_eq!(env.status, 201, "{env:?}");
        let env_etag = env.etag.clone().unwrap();
        let got = api
            .get("/v1/tenants/acme/projects/web/environments/prod")
            .await;
        assert_eq!(got.body["kind"], "production");
        assert_eq!(
            api.get("/v1/tenants/acme/projects/web/environments")
                .await
                .body,
            json!([{"name": "prod", "kind": "production", "description": ""}])
        );

        // Parents outlive their children.
        let busy = api.delete("/v1/tenants/acme", &etag2).await;
        assert_eq!(busy.status, 409, "{busy:?}");
        assert!(error_of(&busy).contains("web"), "{busy:?}");
        let project_etag = api.get("/v1/tenants/acme/projects/web").await.etag.unwrap();
        let busy = api
            .delete("/v1/tenants/acme/projects/web", &project_etag)
            .await;
        assert_eq!(busy.status, 409, "{busy:?}");

        // Tear down, child first.
        let gone = api
            .delete("/v1/tenants/acme/projects/web/environments/prod", &env_etag)
            .await;
        assert_eq!(gone.status, 204, "{gone:?}");
        let missing = api
            .get("/v1/tenants/acme/projects/web/environments/prod")
            .await;
        assert_eq!(missing.status, 404, "{missing:?}");
        let gone = api
            .delete("/v1/tenants/acme/projects/web", &project_etag)
            .await;
        assert_eq!(gone.status, 204, "{gone:?}");
        let gone = api.delete("/v1/tenants/acme", &etag2).await;
        assert_eq!(gone.status, 204, "{gone:?}");
        assert_eq!(api.get("/v1/tenants").await.body, json!([]));

        // A name can be used again, and its project starts with a fresh quota.
        assert_eq!(
            api.post("/v1/tenants", &json!({"name": "acme"}))
                .await
                .status,
            201
        );
        assert_eq!(
            api.post("/v1/tenants/acme/projects", &json!({"name": "web"}))
                .await
                .status,
            201
        );
        let quota = api.get("/v1/tenants/acme/projects/web/quota").await;
        assert_eq!(
            (quota.body["vcpus"].clone(), quota.etag.as_deref()),
            (json!(0), Some("\"0\""))
        );
    });
    eprintln!("crud flow took {:?}", started.elapsed());
}

#[test]
fn concurrent_puts_with_one_etag_let_exactly_one_win() {
    let Some(hub) = Hub::start("concurrent_puts_with_one_etag_let_exactly_one_win") else {
        return;
    };
    runtime().block_on(async {
        let api = hub.client();
        let created = api.post("/v1/tenants", &json!({"name": "race"})).await;
        assert_eq!(created.status, 201, "{created:?}");
        let etag = created.etag.unwrap();

        let no_precondition = api
            .call(
                Method::PUT,
                "/v1/tenants/race",
                &[],
                Some(&json!({"name": "race", "description": "blind write"}).to_string()),
            )
            .await;
        assert_eq!(no_precondition.status, 428, "{no_precondition:?}");
        assert!(error_of(&no_precondition).contains("If-Match"));
        let no_precondition = api
            .call(Method::DELETE, "/v1/tenants/race", &[], None)
            .await;
        assert_eq!(no_precondition.status, 428, "{no_precondition:?}");

        for round in 0..5 {
            let current = api.get("/v1/tenants/race").await.etag.unwrap();
            if round == 0 {
                assert_eq!(current, etag);
            }
            let a = json!({"name": "race", "description": format!("a{round}")});
            let b = json!({"name": "race", "description": format!("b{round}")});
            let (ra, rb) = tokio::join!(
                api.put("/v1/tenants/race", &current, &a),
                api.put("/v1/tenants/race", &current, &b)
            );
            let mut statuses = [ra.status, rb.status];
            statuses.sort_unstable();
            assert_eq!(statuses, [200, 412], "round {round}: {ra:?} {rb:?}");
            let (winner, loser, body) = if ra.status == 200 {
                (&ra, &rb, &a)
            } else {
                (&rb, &ra, &b)
            };
            // The loser is told the winner's ETag, and the winner's body is what stays.
            assert_eq!(loser.etag, winner.etag, "round {round}");
            let now = api.get("/v1/tenants/race").await;
            assert_eq!(now.etag, winner.etag);
            assert_eq!(now.body["description"], body["description"]);
        }
    });
}

#[test]
fn writes_are_audited_and_refused_without_the_token() {
    let Some(hub) = Hub::start("writes_are_audited_and_refused_without_the_token") else {
        return;
    };
    runtime().block_on(async {
        let api = hub.client();
        let anonymous = Api {
            token: None,
            ..hub.client()
        };
        let wrong = Api {
            token: Some("not-the-token".into()),
            ..hub.client()
        };

        // Without (or with a wrong) token: 401, no record, no change.
        for client in [&anonymous, &wrong] {
            let refused = client.post("/v1/tenants", &json!({"name": "sneaky"})).await;
            assert_eq!(refused.status, 401, "{refused:?}");
            assert_eq!(refused.headers["www-authenticate"], "Bearer");
            assert_eq!(client.get("/v1/tenants").await.status, 401);
        }
        assert_eq!(api.get("/v1/tenants/sneaky").await.status, 404);
        assert_eq!(api.get("/v1/tenants").await.body, json!([]));
        assert!(
            hub.audit().await.is_empty(),
            "a refused call left audit records"
        );

        // With the token: attempt and outcome, with actor and correlation id.
        let correlation = "0190a5c4-8c1e-7d2a-9f00-5e3c1b2a4d6f";
        let created = api
            .call(
                Method::POST,
                "/v1/tenants",
                &[("x-correlation-id", correlation)],
                Some(&json!({"name": "audited"}).to_string()),
            )
            .await;
        assert_eq!(created.status, 201, "{created:?}");
        assert_eq!(created.headers["x-correlation-id"], correlation);
        let etag = created.etag.unwrap();
        // A failed write is audited too, with its status.
        let stale = api
            .call(
                Method::DELETE,
                "/v1/tenants/audited",
                &[
                    ("x-correlation-id", correlation),
                    ("if-match", "\"999999\""),
                ],
                None,
            )
            .await;
        assert_eq!(stale.status, 412, "{stale:?}");
        assert_eq!(stale.etag.as_deref(), Some(etag.as_str()));

        let records = hub.audit().await;
        let ours: Vec<&AuditRecord> = records
            .iter()
            .filter(|r| r.correlation_id == correlation)
            .collect();
        let phases: Vec<(&str, &str, Option<u16>)> = ours
            .iter()
            .map(|r| (r.phase.as_str(), r.method.as_str(), r.status))
            .collect();
        assert_eq!(
            phases,
            [
                ("attempt", "POST", None),
                ("outcome", "POST", Some(201)),
                ("attempt", "DELETE", None),
                ("outcome", "DELETE", Some(412)),
            ],
            "{records:#?}"
        );
        for r in &ours {
            assert_eq!(r.actor, "user:operator");
            assert_eq!(r.replica, "r1");
        }
        assert_eq!(ours[0].path, "/v1/tenants");
        assert_eq!(ours[2].path, "/v1/tenants/audited");
        assert_eq!(
            records.len(),
            4,
            "only the two calls are on record: {records:#?}"
        );
    });
}
