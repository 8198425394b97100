//! Provisioning with `[talos]` through the agent's API (curl) and a
//! Redfish emulator (sushy-tools): after `allocate` the machine's boot
//! entry installs Talos with its `talos.config` URL; after `ready` it boots
//! the local disk. A machine whose role is not a Talos node fails at
//! allocate and keeps its boot entry. The config URL refuses a requester
//! that is not the machine (here: the test, from 127.0.0.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dv_tests::api::Api;
use serde_json::Value;

const TALOS: &str = r#"
[talos]
cluster_name = "lab"
endpoint = "https://10.77.0.50:6443"
install_image = "ghcr.io/siderolabs/installer:v1.11.5"
"#;

fn curl(http: SocketAddr, args: &[&str], path: &str) -> (u16, String) {
    Api::new(&format!("http://{http}")).curl(args, path)
}

fn post(http: SocketAddr, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    Api::new(&format!("http://{http}")).post(path, content_type, body)
}

fn wait_task(http: SocketAddr, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    Api::new(&format!("http://{http}")).wait_task(id, limit, done)
}

fn script(http: SocketAddr, mac: &str) -> String {
    let (code, body) = curl(http, &[], &format!("/boot/{mac}.ipxe"));
    assert_eq!(code, 200, "{body}");
    body
}

#[test]
fn provisioning_installs_talos_with_the_machines_config_url_then_boots_local() {
    let test = "provisioning_installs_talos_with_the_machines_config_url_then_boots_local";
    let Some(bin) = dv_tests::sushy::sushy_bin(test) else {
        return;
    };
    let sushy = dv_tests::sushy::Sushy::start(&bin, Some("s3cret"));
    let port = sushy.port();
    let dir = tempfile::tempdir().unwrap();
    let mut agent = dv_tests::agent::start_api_only_with(
        Path::new(env!("CARGO_BIN_EXE_dv-agent")),
        dir.path(),
        TALOS,
    )
    .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"));
    let http = agent.http;
    let seed = format!(
        r#"
machines:
  - serial: SN-T
    macs: ["52:54:00:99:30:01", "52:54:00:99:31:01"]
    role: worker
    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {port}, user: admin, password: s3cret }}
  - serial: SN-X
    macs: ["52:54:00:99:30:02"]
    role: storage
    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {port}, user: admin, password: s3cret }}
"#
    );
    let (code, body) = post(http, "/v1/inventory", "application/yaml", &seed);
    assert_eq!(code, 200, "{body}");
    let mac = "52:54:00:99:30:01";
    assert!(script(http, mac).contains("state discover"));

    let (code, task) = post(
        http,
        "/v1/machines/SN-T/provision",
        "application/json",
        "{}",
    );
    assert_eq!(code, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    wait_task(http, &id, Duration::from_secs(90), |v| {
        v["task"]["state"]["running"]["step"] == "await_install"
    });
    // The boot entry installs Talos, pointing at this machine's config.
    let install = script(http, mac);
    assert!(install.contains("is in state install"), "{install}");
    assert!(
        install.contains("/artifacts/talos/vmlinuz-amd64"),
        "{install}"
    );
    assert!(
        install.contains("/artifacts/talos/initramfs-amd64.xz"),
        "{install}"
    );
    assert!(
        install.contains(
            "console=tty0 console=ttyS0 panic=30 talos.platform=metal \
             init_on_alloc=1 slab_nomerge pti=on talos.config=http://"
        ),
        "{install}"
    );
    assert!(
        install.contains(&format!("/boot/{mac}/talos.yaml dv.callback=")),
        "{install}"
    );
    assert!(install.contains("(node-sn-t)"), "{install}");
    // Its config is not served to anyone but the machine.
    let (code, body) = curl(http, &[], &format!("/boot/{mac}/talos.yaml"));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("served only to the machine itself"), "{body}");
    assert!(!body.contains("PRIVATE"));

    let (code, body) = curl(
        http,
        &["-X", "POST", "--data", "stage=installed"],
        &format!("/boot/{mac}/callback"),
    );
    assert_eq!(code, 204, "{body}");
    let done = wait_task(http, &id, Duration::from_secs(60), |v| {
        v["task"]["state"] == "succeeded" || v["task"]["state"].get("failed").is_some()
    });
    assert_eq!(done["task"]["state"], "succeeded", "{done}");
    let steps: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "network",
            "allocate",
            "set_pxe",
            "power_cycle",
            "await_install",
            "set_disk",
            "ready"
        ]
    );
    let local = script(http, mac);
    assert!(local.contains("is in state local"), "{local}");
    // Ready: the config is no longer served at all.
    let (code, _) = curl(http, &[], &format!("/boot/{mac}/talos.yaml"));
    assert_eq!(code, 403);

    // A storage machine is not a Talos node: allocate fails and says why.
    let (code, task) = post(
        http,
        "/v1/machines/SN-X/provision",
        "application/json",
        "{}",
    );
    assert_eq!(code, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    let failed = wait_task(http, &id, Duration::from_secs(30), |v| {
        v["task"]["state"].get("failed").is_some()
    });
    let reason = failed["task"]["state"]["failed"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("allocate: role storage"), "{reason}");
    assert!(reason.contains("control_plane or worker"), "{reason}");
    assert!(script(http, "52:54:00:99:30:02").contains("state discover"));
    let (_, m) = curl(http, &[], "/v1/machines/SN-X");
    assert!(m.contains("\"available\""), "{m}");

    let (_, metrics) = curl(http, &[], "/metrics");
    assert!(
        metrics.contains("dv_talos_configs_total{outcome=\"forbidden\"} 2"),
        "{metrics}"
    );
    let log = agent.log_text();
    assert!(log.contains("cluster secrets generated"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "the log holds no key");
    agent.stop();
}
