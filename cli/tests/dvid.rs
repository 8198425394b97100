//! `dvid` against a real OIDC issuer (oidc-provider under node, see
//! `dv_tests::oidc`): `dvid login` runs the device flow as a child process,
//! the test approves its user code through the issuer's own pages the way
//! a person would, and the stored credentials are checked (0600, a JWT
//! naming alice), refused when others may read them, refreshed when about
//! to expire, sent as the bearer in the documented order, and removed by
//! `dvid logout`.
//!
//! Where the hub would answer, a small loopback HTTP server stands in that
//! records what the CLI sends (which bearer, and that `GET
//! /v1/identity/oidc` goes without one); the last test has a real hub
//! accept these tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use dv_tests::oidc::{CLIENT_ID, Issuer};
use dv_tests::process::Guarded;
use serde_json::Value;

const ALICE: &str = "alice@example.com";

/// The dv binary under `name`, with only `dir/config` as its configuration
/// and nothing chosen or sent from the environment.
fn command(dir: &Path, name: &str, args: &[&str]) -> Command {
    let link = dir.join(name);
    if !link.exists() {
        // DV_TEST_CLI: a copy of the binary, for a target directory that
        // other checkouts build into at the same time.
        let bin = std::env::var_os("DV_TEST_CLI")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dv")), PathBuf::from);
        std::os::unix::fs::symlink(bin, &link).unwrap();
    }
    let mut cmd = Command::new(&link);
    cmd.args(args)
        .env("DV_CONFIG_DIR", dir.join("config"))
        .env_remove("DV_AGENT")
        .env_remove("DV_CONTEXT")
        .env_remove("DV_TOKEN")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    cmd
}

fn run(dir: &Path, name: &str, args: &[&str]) -> Output {
    command(dir, name, args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `dvid login ARGS`, approves its code as `email` and waits for it.
fn login(dir: &Path, issuer: &Issuer, args: &[&str], email: &str) {
    let mut all = vec!["login", "--no-browser"];
    all.extend_from_slice(args);
    let mut child = Guarded::spawn(
        command(dir, "dvid", &all)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("login.err")).unwrap()),
    )
    .unwrap();
    let stdout = child.child().unwrap().stdout.take().unwrap();
    let mut printed = String::new();
    let mut code = None;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        printed.push_str(&line);
        printed.push('\n');
        if let Some(c) = line.strip_prefix("and enter the code: ") {
            code = Some(c.trim().to_owned());
            break;
        }
    }
    // Read the rest as a terminal would, so the login never writes to a
    // closed pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let err = || std::fs::read_to_string(dir.join("login.err")).unwrap_or_default();
    let code = code.unwrap_or_else(|| panic!("no user code printed:\n{printed}\n{}", err()));
    assert!(
        printed.contains(&format!("{}/device", issuer.url())),
        "{printed}"
    );
    issuer.approve(&code, email);
    // The issuer asks for 5 s between polls.
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("dvid login did not end after approval:\n{}", err()));
    assert!(status.success(), "dvid login: {status}\n{}", err());
    assert!(
        err().contains(&format!("logged in as {email}")),
        "{}",
        err()
    );
}

fn credentials_file(dir: &Path, key: &str) -> PathBuf {
    dir.join("config/credentials").join(format!("{key}.json"))
}

fn read_credentials(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_stores_the_tokens_0600_and_logout_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = Issuer::start(&d.join("issuer"));

    login(
        d,
        &issuer,
        &["--issuer", issuer.url(), "--client-id", CLIENT_ID],
        ALICE,
    );

    // No context: the default login.
    let file = credentials_file(d, "default");
    assert_eq!(mode(&file), 0o600, "{}", file.display());
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let creds = read_credentials(&file);
    assert_eq!(creds["issuer"], issuer.url());
    assert_eq!(creds["client_id"], CLIENT_ID);
    let id = claims(creds["id_token"].as_str().unwrap());
    assert_eq!(id["email"], ALICE, "{id}");
    assert_eq!(id["aud"], CLIENT_ID, "{id}");
    assert_eq!(id["iss"], issuer.url(), "{id}");
    assert!(
        creds["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // A credentials file others may read is refused, with the fix. (The
    // agent URL is never called: the token is read first.)
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dead = format!("http://127.0.0.1:{}", dv_tests::sushy::free_port());
    let o = run(d, "dvid", &["--agent", &dead, "whoami"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("chmod 600 {}", file.display())),
        "{}",
        text(&o)
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let o = run(d, "dvid", &["logout"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("logged out: removed"), "{}", text(&o));
    assert!(
        text(&o).contains("revoked the refresh token"),
        "{}",
        text(&o)
    );
    assert!(!file.exists());
    // The issuer no longer honours the refresh token.
    let refused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let oidc = dv_sdk::oidc::OidcClient::discover(issuer.url(), CLIENT_ID)
                .await
                .unwrap();
            oidc.refresh(creds["refresh_token"].as_str().unwrap()).await
        });
    assert!(
        matches!(&refused, Err(dv_sdk::oidc::OidcError::Refused { error, .. }) if error == "invalid_grant"),
        "{refused:?}"
    );
    let o = run(d, "dv", &["id", "logout"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not logged in"), "{}", text(&o));
}

/// Each request's path and `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A loopback stand-in for the hub's identity endpoints that records the
/// `Authorization` header of every request.
struct FakeHub {
    url: String,
    seen: Seen,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeHub {
    fn start(issuer: &str) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let oidc = serde_json::json!({
            "issuer": issuer, "client_id": CLIENT_ID, "audience": CLIENT_ID,
            "scopes": ["openid", "email", "profile", "offline_access"],
        })
        .to_string();
        let (s, st) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let auth = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("authorization: ")
                            .or(l.strip_prefix("Authorization: "))
                    })
                    .map(str::to_owned);
                let (status, body) = match path.as_str() {
                    "/v1/identity/oidc" => ("200 OK", oidc.clone()),
                    "/v1/identity/whoami" if auth.is_some() => (
                        "200 OK",
                        format!(
                            r#"{{"subject":"user:{ALICE}","credential":"oidc","bindings":[{{"subject":"user:{ALICE}","role":"viewer","scope":{{"kind":"tenant","tenant":"acme"}}}}]}}"#
                        ),
                    ),
                    "/v1/identity/whoami" => {
                        ("401 Unauthorized", r#"{"error":"send a token"}"#.to_owned())
                    }
                    _ => (
                        "404 Not Found",
                        r#"{"error":"no such endpoint"}"#.to_owned(),
                    ),
                };
                s.lock().unwrap().push((path, auth));
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeHub {
            url,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The bearer of the last request to `path`.
    fn last(&self, path: &str) -> Option<Option<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .map(|(_, a)| a.clone())
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn an_expiring_login_is_refreshed_and_the_bearer_order_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = Issuer::start(&d.join("issuer"));
    let hub = FakeHub::start(issuer.url());
    let o = run(d, "dv", &["context", "add", "lab", "--url", &hub.url]);
    assert!(o.status.success(), "{}", text(&o));

    // Without --issuer, the context's server names the issuer, asked
    // without a token.
    login(d, &issuer, &[], ALICE);
    assert_eq!(hub.last("/v1/identity/oidc"), Some(None));
    let file = credentials_file(d, "lab");
    let before = read_credentials(&file);
    let o = run(d, "dvid", &["whoami", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let bearer = |c: &Value| Some(Some(format!("Bearer {}", c["id_token"].as_str().unwrap())));
    assert_eq!(hub.last("/v1/identity/whoami"), bearer(&before));
    let me: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(me["subject"], format!("user:{ALICE}"));

    // Expire the stored login: the next command refreshes it first and
    // sends the new ID token.
    let mut stale = before.clone();
    stale["expires_at"] = Value::String("2000-01-01T00:00:00Z".to_owned());
    std::fs::write(&file, serde_json::to_string_pretty(&stale).unwrap()).unwrap();
    let o = run(d, "dvid", &["whoami", "-o", "table"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("viewer on acme"), "{}", text(&o));
    let after = read_credentials(&file);
    assert_ne!(
        after["id_token"], before["id_token"],
        "the token was not refreshed"
    );
    assert_ne!(after["expires_at"], stale["expires_at"]);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(claims(after["id_token"].as_str().unwrap())["email"], ALICE);
    assert_eq!(hub.last("/v1/identity/whoami"), bearer(&after));

    // An explicit token beats the login: DV_TOKEN, and --token-file before it.
    let o = command(d, "dvid", &["whoami"])
        .env("DV_TOKEN", "from-env")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        hub.last("/v1/identity/whoami"),
        Some(Some("Bearer from-env".to_owned()))
    );
    let token_file = d.join("token");
    std::fs::write(&token_file, "from-file\n").unwrap();
    let o = command(
        d,
        "dvid",
        &["--token-file", token_file.to_str().unwrap(), "whoami"],
    )
    .env("DV_TOKEN", "from-env")
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        hub.last("/v1/identity/whoami"),
        Some(Some("Bearer from-file".to_owned()))
    );

    // A refresh token the issuer no longer knows: exit 6 and log in again.
    let mut revoked = read_credentials(&file);
    revoked["expires_at"] = Value::String("2000-01-01T00:00:00Z".to_owned());
    revoked["refresh_token"] = Value::String("not-a-refresh-token".to_owned());
    std::fs::write(&file, serde_json::to_string_pretty(&revoked).unwrap()).unwrap();
    let o = run(d, "dvid", &["whoami"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(text(&o).contains("hint: dvid login"), "{}", text(&o));
}

/// The hub accepting the ID token `dvid login` stored, the login's issuer
/// named by the hub (`GET /v1/identity/oidc`): needs the hub side of ADR
/// 0013 (`[identity]`, the `/v1/identity` endpoints); passed with the
/// `hubid` branch (bf491df) merged. Then, as a bootstrap platform operator:
/// a service token minted, used, listed and revoked, a role granted,
/// listed by subject and revoked.
#[test]
fn whoami_at_a_hub_configured_with_the_issuer() {
    use dv_tests::hub::{Hub, workspace_bin};
    let test = "whoami_at_a_hub_configured_with_the_issuer";
    let Some(nats) = dv_tests::nats::nats_server_bin(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issuer = Issuer::start(&d.join("issuer"));
    let mut hub = Hub::start(&nats, &workspace_bin("dv-hub"), &d.join("hub"), 1, 1, &[]);
    // Restart the replica with the issuer configured.
    hub.kill_replica(0);
    let mut config = std::fs::read_to_string(&hub.config).unwrap();
    config.push_str(&format!(
        "\n[identity]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nplatform_operators = [\"user:{ALICE}\"]\n",
        issuer.url()
    ));
    std::fs::write(&hub.config, config).unwrap();
    hub.replicas[0] = Some(hub.start_replica(0));

    let o = run(d, "dv", &["context", "add", "hub", "--url", &hub.api(0)]);
    assert!(o.status.success(), "{}", text(&o));
    login(d, &issuer, &[], ALICE);
    let o = run(d, "dvid", &["whoami", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let me: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(me["subject"], format!("user:{ALICE}"));
    assert_eq!(me["credential"], "oidc");
    assert_eq!(me["bindings"][0]["role"], "platform-operator", "{me}");
    // The server's scopes lack offline_access; the CLI asks for it anyway.
    let creds = read_credentials(&credentials_file(d, "hub"));
    assert!(creds["refresh_token"].as_str().is_some(), "{creds}");

    // As a platform operator, alice mints a service token, which works as
    // a bearer and is listed (without its secret) until revoked.
    let o = run(
        d,
        "dvid",
        &[
            "token",
            "create",
            "ci",
            "--role",
            "viewer",
            "--platform",
            "-o",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("only time the token is shown"),
        "{}",
        text(&o)
    );
    let created: Value = serde_json::from_slice(&o.stdout).unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let o = command(d, "dvid", &["whoami", "-o", "json"])
        .env("DV_TOKEN", &token)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let svc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(svc["subject"], "svc:ci", "{svc}");
    let o = run(d, "dvid", &["token", "list", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&token));
    let id = created["id"].as_str().unwrap();
    let o = run(d, "dvid", &["token", "revoke", id]);
    assert!(o.status.success(), "{}", text(&o));

    // Roles: grant, list by subject, revoke.
    let bob = "user:bob@example.com";
    let o = run(
        d,
        "dvid",
        &[
            "role",
            "grant",
            bob,
            "--role",
            "viewer",
            "--platform",
            "-o",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let grant: Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = run(d, "dvid", &["role", "list", "--subject", bob, "-o", "json"]);
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let o = run(
        d,
        "dvid",
        &["role", "revoke", grant["id"].as_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(d, "dvid", &["role", "list", "--subject", bob, "-o", "json"]);
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");
    // A role that does not fit its scope is refused before any call.
    let o = run(
        d,
        "dvid",
        &[
            "role",
            "grant",
            bob,
            "--role",
            "platform-operator",
            "--tenant",
            "acme",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
