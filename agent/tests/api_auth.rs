//! The agent's `/v1` API behind `[api] token_file`, through a real
//! `dv-agent serve`: no token or a wrong one is 401 and changes nothing,
//! the right one works, and health, metrics and network boot stay open
//! (firmware cannot send a token). A token file that cannot be read stops
//! the agent at start, naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use dv_tests::api::Api;

const BIN: &str = env!("CARGO_BIN_EXE_dv-agent");

#[test]
fn a_configured_token_is_required_on_every_v1_call_but_health() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api-token"), "agent-s3cret\n").unwrap();
    let agent = dv_tests::agent::start_api_only_with(
        Path::new(BIN),
        dir.path(),
        "[api]\ntoken_file = \"api-token\"\n",
    )
    .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"));
    let base = format!("http://{}", agent.http);
    let seed = "machines:\n  - serial: SN-A\n    macs: [\"52:54:00:44:00:01\"]\n    role: worker\n";

    let anonymous = Api::new(&base);
    let (code, body) = anonymous.get("/v1/machines");
    assert_eq!(code, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("[api] token_file"),
        "{body}"
    );
    assert_eq!(anonymous.import(seed).0, 401);
    let wrong = Api::with_token(&base, "agent-s3cre");
    assert_eq!(wrong.get("/v1/machines").0, 401);
    assert_eq!(wrong.import(seed).0, 401);

    let operator = Api::with_token(&base, "agent-s3cret");
    let (code, machines) = operator.get("/v1/machines");
    assert_eq!(code, 200);
    assert_eq!(
        machines.as_array().unwrap().len(),
        0,
        "the refused imports changed nothing"
    );
    assert_eq!(operator.import(seed).0, 200);
    assert_eq!(operator.get("/v1/machines").1.as_array().unwrap().len(), 1);

    // Outside /v1, or health: no token needed.
    assert_eq!(anonymous.get("/v1/health").0, 200);
    let (code, text) = anonymous.curl(&[], "/metrics");
    assert_eq!(code, 200);
    assert!(
        text.contains("dv_agent_api_refused_total"),
        "refusals are counted"
    );
    let (code, script) = anonymous.curl(&[], "/boot/52:54:00:44:00:01.ipxe");
    assert_eq!(code, 200, "{script}");
    assert!(script.starts_with("#!ipxe"), "{script}");
}

#[test]
fn an_unreadable_token_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dv_tests::agent::api_only_config_for(
        dir.path(),
        "lab",
        "[api]\ntoken_file = \"missing-token\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("api.token_file") && text.contains("missing-token"),
        "{text}"
    );
    std::fs::write(dir.path().join("missing-token"), "  \n").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("is empty"), "{text}");
}

#[test]
fn oidc_settings_are_checked_with_the_rest_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dv_tests::agent::api_only_config_for(
        dir.path(),
        "lab",
        "[api]\nissuer = \"https://id.example.com\"\nviewers = [\"bob\"]\nrequests_per_second = 0\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    for field in ["api.audience", "api.viewers[0]", "api.requests_per_second"] {
        assert!(text.contains(field), "{field} not named:\n{text}");
    }
    let config = dv_tests::agent::api_only_config_for(
        dir.path(),
        "lab",
        "[api]\nplatform_operators = [\"user:alice@example.com\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("set api.issuer too"),
        "{text}"
    );
}
