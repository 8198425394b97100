//! The Redfish driver against sushy-tools' emulator (OpenStack's Redfish
//! BMC emulator, fake driver) on loopback, with curl reading the state back
//! independently; and against an in-process BMC that lies, for the
//! failures a real emulator will not produce. sushy has no SessionService,
//! so against it the driver takes the basic-auth fallback (sessions are
//! tested in `bmc_redfish_fake.rs`); over TLS it shows certificate pinning
//! end to end, through the agent's API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use dv_agent::bmc::redfish::{Redfish, Trust};
use dv_agent::bmc::{Bmc, BmcError, BootTarget, Fingerprint, Limits, PowerAction, PowerState};
use dv_tests::sushy::{NODE_1, Options, Sushy, free_port, sushy_bin};
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
        // No SessionService on sushy: the basic-auth fallback.
        assert!(!bmc.uses_session());

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

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert, key, fingerprint).
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf, Fingerprint) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, Fingerprint::of(ck.cert.der()))
}

/// curl against the agent's API: (status, body as JSON, or as a string).
fn api(http: SocketAddr, args: &[&str], path: &str) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("http://{http}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
    )
}

fn post_json(http: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    api(
        http,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ],
        path,
    )
}

#[test]
fn https_bmc_certificates_are_pinned_on_first_use_and_a_changed_one_is_refused_until_repinned() {
    let test = "https_bmc_certificates_are_pinned_on_first_use_and_a_changed_one_is_refused_until_repinned";
    let Some(bin) = sushy_bin(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, a_key, a) = self_signed(dir.path(), "a");
    let (b_cert, b_key, b) = self_signed(dir.path(), "b");
    let port = free_port();
    let sushy = Sushy::start_with(
        &bin,
        &Options {
            password: Some("s3cret"),
            tls: Some((&a_cert, &a_key)),
            port: Some(port),
        },
    );
    assert!(sushy.endpoint.starts_with("https://"));

    // The driver alone: first use takes the certificate presented; a pin
    // holds; another pin refuses the handshake, naming both.
    runtime().block_on(async {
        let first = Redfish::new(&sushy.endpoint, "admin", "s3cret", None, limits()).unwrap();
        assert_eq!(first.certificate(), None);
        assert_eq!(first.power_state().await.unwrap(), PowerState::Off);
        assert_eq!(first.certificate(), Some(a));
        assert!(!first.uses_session());
        let pinned = Redfish::with_trust(
            &sushy.endpoint,
            "admin",
            "s3cret",
            None,
            limits(),
            Trust::Pinned(a),
        )
        .unwrap();
        assert_eq!(pinned.power_state().await.unwrap(), PowerState::Off);
        let wrong = Redfish::with_trust(
            &sushy.endpoint,
            "admin",
            "s3cret",
            None,
            limits(),
            Trust::Pinned(b),
        )
        .unwrap();
        let err = wrong.power_state().await.unwrap_err();
        match &err {
            BmcError::CertificateChanged {
                expected,
                presented,
                ..
            } => assert_eq!((*expected, *presented), (b, a)),
            other => panic!("expected CertificateChanged, got {other:?}"),
        }
    });

    // Through the agent: the store keeps the pin.
    let agent_dir = tempfile::tempdir().unwrap();
    let agent = dv_tests::agent::start_api_only(
        Path::new(env!("CARGO_BIN_EXE_dv-agent")),
        agent_dir.path(),
    )
    .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"));
    let http = agent.http;
    let seed = format!(
        "machines:\n  - serial: SN-T\n    macs: [\"52:54:00:99:20:01\"]\n    bmc: {{ protocol: redfish, scheme: https, host: 127.0.0.1, port: {port}, user: admin, password: s3cret }}\n"
    );
    let (code, body) = api(
        http,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/yaml",
            "--data-binary",
            &seed,
        ],
        "/v1/inventory",
    );
    assert_eq!(code, 200, "{body}");
    // First use pins A; the next call is held to it and passes.
    for _ in 0..2 {
        let (code, body) = api(http, &[], "/v1/machines/SN-T/power");
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["power"], "off");
    }

    // The BMC comes back with another certificate.
    drop(sushy);
    let sushy = Sushy::start_with(
        &bin,
        &Options {
            password: Some("s3cret"),
            tls: Some((&b_cert, &b_key)),
            port: Some(port),
        },
    );
    let (code, body) = api(http, &[], "/v1/machines/SN-T/power");
    assert_eq!(code, 502, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains(&format!("presented TLS certificate SHA-256 {b}")),
        "{msg}"
    );
    assert!(msg.contains(&format!("but {a} is pinned")), "{msg}");
    assert!(msg.contains("/bmc/repin"), "{msg}");

    // A re-pin naming a certificate the BMC does not present changes nothing.
    let (code, body) = post_json(
        http,
        "/v1/machines/SN-T/bmc/repin",
        &format!(r#"{{"sha256":"{a}"}}"#),
    );
    assert_eq!(code, 409, "{body}");
    assert_eq!(api(http, &[], "/v1/machines/SN-T/power").0, 502);
    // Re-pinning the one it presents (plain hex is fine too) works.
    let (code, body) = post_json(
        http,
        "/v1/machines/SN-T/bmc/repin",
        &format!(r#"{{"sha256":"{}"}}"#, b.to_hex()),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["sha256"], b.to_string());
    assert_eq!(body["previous"], a.to_string());
    let (code, body) = api(http, &[], "/v1/machines/SN-T/power");
    assert_eq!(code, 200, "{body}");
    // Re-pin without a body takes whatever is presented; an http BMC has
    // nothing to pin.
    let (code, body) = api(http, &["-X", "POST"], "/v1/machines/SN-T/bmc/repin");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["previous"], b.to_string());
    let (code, body) = post_json(http, "/v1/machines/SN-T/bmc/repin", r#"{"sha256":"zz"}"#);
    assert_eq!(code, 400, "{body}");
    drop(sushy);

    // The inventory moves the machine's BMC to another address (with
    // certificate A again): another BMC, pinned afresh on first use.
    let moved = Sushy::start_with(
        &bin,
        &Options {
            password: Some("s3cret"),
            tls: Some((&a_cert, &a_key)),
            port: None,
        },
    );
    let port2 = moved.port();
    let (code, body) = api(
        http,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/yaml",
            "--data-binary",
            &seed.replace(&format!("port: {port},"), &format!("port: {port2},")),
        ],
        "/v1/inventory",
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = api(http, &[], "/v1/machines/SN-T/power");
    assert_eq!(code, 200, "{body}");
    drop(moved);
    agent.stop();
}

/// Serves `cert` but signs the handshake with another key: a peer that
/// copied a BMC's certificate (public) without its private key.
#[derive(Debug)]
struct CopiedCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for CopiedCertificate {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A TLS server on loopback presenting `cert` with `key` (PKCS#8 DER),
/// speaking only `version`; it handshakes with two clients, or for 5 s.
fn impostor(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: Vec<u8>,
    version: &'static rustls::SupportedProtocolVersion,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = provider
        .key_provider
        .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()))
        .unwrap();
    let served = Arc::new(rustls::sign::CertifiedKey::new(vec![cert], key));
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(CopiedCertificate(served))),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        let mut served = 0;
        while served < 2 && std::time::Instant::now() < until {
            match listener.accept() {
                Ok((mut tcp, _)) => {
                    served += 1;
                    tcp.set_nonblocking(false).unwrap();
                    tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut tls = rustls::ServerConnection::new(config.clone()).unwrap();
                    // The client gives up mid-handshake: an error here is the point.
                    let _ = tls.complete_io(&mut tcp);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (addr, server)
}

#[test]
fn the_pinned_certificate_without_its_key_is_refused_over_tls12_and_tls13() {
    let real = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let pinned = Fingerprint::of(real.cert.der());
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let (addr, server) = impostor(real.cert.der().clone(), other.serialize_der(), version);
        runtime().block_on(async {
            let fast = Limits {
                request: Duration::from_secs(3),
                ..limits()
            };
            let url = format!("https://{addr}");
            let bmc =
                Redfish::with_trust(&url, "a", "b", None, fast, Trust::Pinned(pinned)).unwrap();
            let err = bmc.power_state().await.unwrap_err();
            // The certificate is the pinned one, so this is no
            // CertificateChanged: the handshake signature fails.
            assert!(
                matches!(err, BmcError::Unreachable { .. }),
                "{version:?}: {err:?}"
            );
            let chain = format!("{:?}", anyhow::Error::from(err));
            assert!(chain.contains("Signature"), "{version:?}: {chain}");

            // First use does not take a certificate whose key was not shown.
            let first = Redfish::new(&url, "a", "b", None, fast).unwrap();
            assert!(first.power_state().await.is_err());
            assert_eq!(first.certificate(), None, "{version:?}");
        });
        server.join().unwrap();
    }
}
