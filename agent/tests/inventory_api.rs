//! The inventory through the agent's API, driven with curl: a site kit's
//! YAML file in, machines out; bad files and conflicts change nothing; the
//! export carries no password, and the store holds none in clear. Machines
//! that discover themselves wait for approval. A machine's power and next
//! boot go through its BMC (sushy-tools' Redfish emulator, OpenIPMI's
//! ipmi_sim) with the sealed credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dv_agent::inventory::SiteKey;
use dv_agent::store::inventory as db;
use dv_tests::api::{Api, assert_steps_done_in_order, step_names};
use serde_json::Value;

const SEED: &str = r#"
racks:
  - name: r01
    location: room 1, row A
  - name: r02
machines:
  - serial: SN-1
    vendor: Dell Inc.
    model: PowerEdge R650
    macs: ["52:54:00:99:00:01", "52:54:00:99:01:01"]
    rack: r01
    position: 12
    role: control_plane
    bmc: { protocol: redfish, host: 10.99.0.201, port: 8400, user: admin, password: s3cret-pw }
  - serial: SN-2
    macs: ["52:54:00:99:00:02"]
    rack: r02
    position: 3
    role: worker
  - serial: SN-3
    macs: ["52:54:00:99:00:03"]
"#;

fn api(http: SocketAddr) -> String {
    format!("http://{http}")
}

/// curl: (status, body).
fn curl(http: SocketAddr, args: &[&str], path: &str) -> (u16, String) {
    Api::new(&api(http)).curl(args, path)
}

fn post(http: SocketAddr, yaml: &str) -> (u16, Value) {
    Api::new(&api(http)).import(yaml)
}

fn post_json(http: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    Api::new(&api(http)).post_json(path, body)
}

fn wait_task(http: SocketAddr, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    Api::new(&api(http)).wait_task(id, limit, done)
}

fn start_agent(dir: &Path) -> dv_tests::agent::RunningAgent {
    dv_tests::agent::start_api_only(Path::new(env!("CARGO_BIN_EXE_dv-agent")), dir)
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"))
}

/// The emulator's view of `system`, asked directly: the independent check.
fn sushy_system(sushy: &dv_tests::sushy::Sushy, system: &str) -> Value {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-u", "admin:s3cret"])
        .arg(format!("{}/redfish/v1/Systems/{system}", sushy.endpoint))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn machines(http: SocketAddr) -> Vec<Value> {
    let (code, body) = curl(http, &[], "/v1/machines");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_site_kit_inventory_imports_exports_and_keeps_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let http = agent.http;

    // A file with problems: every one reported, nothing imported.
    let (code, body) = post(
        http,
        "machines:\n  - serial: X\n    macs: [\"zz\"]\n    rack: nowhere\n",
    );
    assert_eq!(code, 400, "{body}");
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{body}");
    let (code, body) = post(http, "machines: [ {");
    assert_eq!(code, 400, "{body}");
    assert!(machines(http).is_empty());

    let (code, body) = post(http, SEED);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["racks_added"], 2);
    assert_eq!(body["machines_added"], 3);

    let all = machines(http);
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|m| m["state"] == "available"), "{all:?}");
    let (code, body) = curl(http, &[], "/v1/machines/52:54:00:99:01:01");
    assert_eq!(code, 200, "{body}");
    let sn1: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sn1["serial"], "SN-1");
    assert_eq!(sn1["role"], "control_plane");
    assert_eq!(sn1["bmc"]["protocol"], "redfish");
    assert_eq!(sn1["bmc"]["address"]["port"], 8400);
    assert!(!body.contains("s3cret-pw"), "{body}");
    let (code, _) = curl(http, &[], "/v1/machines/SN-404");
    assert_eq!(code, 404);

    // The export has everything but the password, and imports again as
    // updates that keep the stored password.
    let (code, exported) = curl(http, &[], "/v1/inventory");
    assert_eq!(code, 200);
    assert!(!exported.contains("s3cret-pw"), "{exported}");
    assert!(
        exported.contains("SN-1") && exported.contains("r01"),
        "{exported}"
    );
    let (code, body) = post(http, &exported);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["machines_added"], 0);
    assert_eq!(body["machines_updated"], 3);

    // A new machine claiming SN-1's MAC: conflict, nothing changes.
    let clash = "machines:\n  - serial: SN-9\n    macs: [\"52:54:00:99:00:01\"]\n";
    let (code, body) = post(http, clash);
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("52:54:00:99:00:01"),
        "{body}"
    );
    assert_eq!(machines(http).len(), 3);
    agent.stop();

    // On disk: no password in clear anywhere in the data directory, and
    // the sealed one opens with the site key.
    let data = dir.path().join("data");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"s3cret-pw"),
            "{} holds the password in clear",
            path.display()
        );
    }
    let key = SiteKey::load_or_create(&data).unwrap();
    let conn = rusqlite::Connection::open(data.join("agent.db")).unwrap();
    let id: String = conn
        .query_row("SELECT id FROM machine WHERE serial = 'SN-1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let login = db::bmc_login(&conn, &key, id.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(login.user, "admin");
    assert_eq!(login.password.as_deref(), Some("s3cret-pw"));
    assert_eq!(login.scheme, "https");
    let subjects: Vec<String> = conn
        .prepare("SELECT subject FROM outbox ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let count = |verb: &str| subjects.iter().filter(|s| s.ends_with(verb)).count();
    assert_eq!(count("rack.added"), 2, "{subjects:?}");
    assert_eq!(count("machine.discovered"), 3, "{subjects:?}");
    assert_eq!(count("bmc.registered"), 1, "{subjects:?}");
}

#[test]
fn a_machine_that_discovers_itself_waits_for_an_operator_to_approve_it() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let http = agent.http;
    let report = |mac: &str, form: &str| {
        let (code, body) = curl(
            http,
            &["-X", "POST", "--data", form],
            &format!("/boot/{mac}/callback"),
        );
        assert_eq!(code, 204, "{body}");
    };

    // The discovery initrd's report, as it posts it.
    report(
        "52:54:00:aa:00:01",
        "stage=discovered&cpus=4&memory_kb=8000000&disks=sda:100G&vendor=ACME&product=Box 9&serial=ACME-77",
    );
    let (code, body) = curl(http, &[], "/v1/machines/ACME-77");
    assert_eq!(code, 200, "{body}");
    let m: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["state"], "discovered");
    assert_eq!(m["vendor"], "ACME");
    assert_eq!(m["model"], "Box 9");
    assert_eq!(m["facts"]["cpus"], "4");
    assert_eq!(m["facts"]["disks"], "sda:100G");

    // Firmware with no serial: the machine is still recorded, by its MAC.
    report(
        "52:54:00:aa:00:02",
        "stage=discovered&cpus=1&serial=Not Specified",
    );
    let (code, body) = curl(http, &[], "/v1/machines/52:54:00:aa:00:02");
    assert_eq!(code, 200, "{body}");
    let m: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["serial"], "unknown-52:54:00:aa:00:02");

    // A second report refreshes the facts; it does not add a machine.
    report(
        "52:54:00:aa:00:01",
        "stage=discovered&cpus=8&serial=ACME-77",
    );
    assert_eq!(machines(http).len(), 2);
    let (_, body) = curl(http, &[], "/v1/machines/ACME-77");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["facts"]["cpus"],
        "8"
    );

    let (code, body) = curl(http, &["-X", "POST"], "/v1/machines/ACME-77/approve");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["state"],
        "available"
    );
    let (code, body) = curl(http, &["-X", "POST"], "/v1/machines/ACME-77/approve");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("is available"), "{body}");
    let (code, _) = curl(http, &["-X", "POST"], "/v1/machines/nobody/approve");
    assert_eq!(code, 404);
    agent.stop();

    let conn = rusqlite::Connection::open(dir.path().join("data/agent.db")).unwrap();
    let changed: i64 = conn
        .query_row(
            "SELECT count(*) FROM outbox WHERE subject LIKE '%machine.state-changed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// Events in the agent's outbox whose subject ends with `verb`.
fn outbox_count(dir: &Path, verb: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("data/agent.db")).unwrap();
    conn.query_row(
        "SELECT count(*) FROM outbox WHERE subject LIKE ?1",
        [format!("%.{verb}")],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_curated_import_adopts_a_machine_that_discovered_itself_and_reports_changes() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let http = agent.http;
    // The machine network-boots before the site kit's file lists it.
    let (code, body) = curl(
        http,
        &[
            "-X",
            "POST",
            "--data",
            "stage=discovered&cpus=16&memory_kb=64000000&serial=Not Specified",
        ],
        "/boot/52:54:00:ad:00:01/callback",
    );
    assert_eq!(code, 204, "{body}");
    let (_, body) = curl(http, &[], "/v1/machines/52:54:00:ad:00:01");
    let discovered: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(discovered["state"], "discovered");

    // The operator's curated entry for it: adopted, not a MAC conflict.
    let seed = r#"
machines:
  - serial: SN-AD-1
    vendor: ACME
    model: Box 9
    macs: ["52:54:00:ad:00:01"]
    role: worker
"#;
    let (code, body) = post(http, seed);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["machines_added"], 0, "{body}");
    assert_eq!(body["machines_adopted"], 1, "{body}");
    let (code, body) = curl(http, &[], "/v1/machines/SN-AD-1");
    assert_eq!(code, 200, "{body}");
    let m: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["id"], discovered["id"], "the discovered record is kept");
    assert_eq!(m["state"], "available");
    assert_eq!(m["role"], "worker");
    assert_eq!(m["facts"]["cpus"], "16", "discovery facts are kept");
    assert_eq!(machines(http).len(), 1);

    // The same file again: nothing changed, no event. A changed entry:
    // one machine.updated.
    let (code, body) = post(http, seed);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["machines_adopted"], 0, "{body}");
    let (code, body) = post(http, &seed.replace("Box 9", "Box 10"));
    assert_eq!(code, 200, "{body}");
    let (_, body) = curl(http, &[], "/v1/machines/SN-AD-1");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["model"],
        "Box 10"
    );

    // A curated entry may not take a MAC from a trusted machine.
    let (code, body) = post(
        http,
        "machines:\n  - serial: SN-AD-2\n    macs: [\"52:54:00:ad:00:01\"]\n",
    );
    assert_eq!(code, 409, "{body}");
    agent.stop();

    assert_eq!(outbox_count(dir.path(), "machine.discovered"), 1);
    assert_eq!(outbox_count(dir.path(), "machine.state-changed"), 1);
    // Adoption, then the model change.
    assert_eq!(outbox_count(dir.path(), "machine.updated"), 2);
}

#[test]
fn power_and_next_boot_go_through_the_machines_bmc() {
    let test = "power_and_next_boot_go_through_the_machines_bmc";
    let Some(bin) = dv_tests::sushy::sushy_bin(test) else {
        return;
    };
    let sushy = dv_tests::sushy::Sushy::start(&bin, Some("s3cret"));
    let port = sushy.port();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let http = agent.http;
    let seed = format!(
        r#"
machines:
  - serial: SN-R1
    macs: ["52:54:00:99:10:01"]
    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {port}, user: admin, password: s3cret }}
  - serial: SN-R2
    macs: ["52:54:00:99:10:02"]
    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {port}, user: admin, password: wrong }}
  - serial: SN-N
    macs: ["52:54:00:99:10:03"]
  - serial: SN-I
    macs: ["52:54:00:99:10:04"]
    bmc: {{ protocol: ipmi, host: 127.0.0.1, user: admin, password: x }}
"#
    );
    let (code, body) = post(http, &seed);
    assert_eq!(code, 200, "{body}");

    let (code, body) = curl(http, &[], "/v1/machines/SN-R1/power");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"off\""), "{body}");

    let (code, body) = post_json(http, "/v1/machines/SN-R1/boot", r#"{"target":"pxe"}"#);
    assert_eq!(code, 200, "{body}");
    let (code, body) = post_json(http, "/v1/machines/SN-R1/power", r#"{"action":"on"}"#);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["power"], "on");
    // The emulator, asked directly, agrees.
    let system = sushy_system(&sushy, dv_tests::sushy::NODE_1);
    assert_eq!(system["PowerState"], "On");
    assert_eq!(system["Boot"]["BootSourceOverrideTarget"], "Pxe");

    let (code, body) = post_json(http, "/v1/machines/SN-R2/power", r#"{"action":"on"}"#);
    assert_eq!(code, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("refused the credentials"),
        "{body}"
    );
    let (code, body) = post_json(http, "/v1/machines/SN-N/power", r#"{"action":"on"}"#);
    assert_eq!(code, 409, "{body}");
    // An IPMI BMC gets the IPMI driver; nothing answers on 127.0.0.1:623.
    let (code, body) = post_json(http, "/v1/machines/SN-I/power", r#"{"action":"on"}"#);
    assert_eq!(code, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{body}"
    );
    let (code, body) = post_json(http, "/v1/machines/SN-R1/power", r#"{"action":"explode"}"#);
    assert_eq!(code, 400, "{body}");
    let (code, _) = post_json(http, "/v1/machines/SN-404/boot", r#"{"target":"disk"}"#);
    assert_eq!(code, 404);
    agent.stop();
}

#[test]
fn provisioning_runs_every_step_through_the_bmc_and_blocks_on_an_unreachable_one() {
    let test = "provisioning_runs_every_step_through_the_bmc_and_blocks_on_an_unreachable_one";
    let Some(bin) = dv_tests::sushy::sushy_bin(test) else {
        return;
    };
    let sushy = dv_tests::sushy::Sushy::start(&bin, Some("s3cret"));
    let port = sushy.port();
    let dead = dv_tests::sushy::free_port();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let http = agent.http;
    let seed = format!(
        r#"
machines:
  - serial: SN-P
    macs: ["52:54:00:99:20:01"]
    role: worker
    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {port}, user: admin, password: s3cret }}
  - serial: SN-U
    macs: ["52:54:00:99:20:02"]
    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {dead}, user: admin, password: s3cret }}
"#
    );
    let (code, body) = post(http, &seed);
    assert_eq!(code, 200, "{body}");

    let (code, task) = post_json(http, "/v1/machines/SN-P/provision", "{}");
    assert_eq!(code, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    // Through allocate, set_pxe and power_cycle to the install wait.
    wait_task(http, &id, Duration::from_secs(90), |v| {
        v["task"]["state"]["running"]["step"] == "await_install"
    });
    let (_, m) = curl(http, &[], "/v1/machines/SN-P");
    assert!(m.contains("\"provisioning\""), "{m}");
    // The installer's callback.
    let (code, body) = curl(
        http,
        &["-X", "POST", "--data", "stage=installed"],
        "/boot/52:54:00:99:20:01/callback",
    );
    assert_eq!(code, 204, "{body}");
    let done = wait_task(http, &id, Duration::from_secs(60), |v| {
        v["task"]["state"] == "succeeded" || v["task"]["state"].get("failed").is_some()
    });
    assert_eq!(done["task"]["state"], "succeeded", "{done}");
    let steps = step_names(&done);
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
    assert_steps_done_in_order(&done);
    let (_, m) = curl(http, &[], "/v1/machines/SN-P");
    assert!(m.contains("\"state\":\"ready\""), "{m}");
    let system = sushy_system(&sushy, dv_tests::sushy::NODE_1);
    assert_eq!(system["PowerState"], "On");
    assert_eq!(system["Boot"]["BootSourceOverrideTarget"], "Hdd");
    // Deprovisioning: wiped (the test plays the wipe environment), powered
    // off, available again, and provisionable again.
    let (code, task) = post_json(http, "/v1/machines/SN-P/deprovision", "{}");
    assert_eq!(code, 202, "{task}");
    let did = task["id"].as_str().unwrap().to_owned();
    wait_task(http, &did, Duration::from_secs(90), |v| {
        v["task"]["state"]["running"]["step"] == "await_wipe"
    });
    let (code, _) = curl(
        http,
        &["-X", "POST", "--data", "stage=wiped"],
        "/boot/52:54:00:99:20:01/callback",
    );
    assert_eq!(code, 204);
    let gone = wait_task(http, &did, Duration::from_secs(90), |v| {
        v["task"]["state"] == "succeeded" || v["task"]["state"].get("failed").is_some()
    });
    assert_eq!(gone["task"]["state"], "succeeded", "{gone}");
    let steps = step_names(&gone);
    assert_eq!(
        steps,
        [
            "release",
            "set_pxe",
            "power_cycle",
            "await_wipe",
            "power_off",
            "available"
        ]
    );
    let (_, m) = curl(http, &[], "/v1/machines/SN-P");
    assert!(m.contains("\"state\":\"available\""), "{m}");
    assert_eq!(
        sushy_system(&sushy, dv_tests::sushy::NODE_1)["PowerState"],
        "Off"
    );

    // A finished task is not retried.
    let (code, _) = post_json(http, &format!("/v1/tasks/{id}/retry"), "{}");
    assert_eq!(code, 409);
    // Re-provisioning the available machine starts over; a second task for
    // a machine already taken fails at allocate, naming its state.
    let (code, again) = post_json(http, "/v1/machines/SN-P/provision", "{}");
    assert_eq!(code, 202);
    wait_task(
        http,
        again["id"].as_str().unwrap(),
        Duration::from_secs(90),
        |v| v["task"]["state"]["running"]["step"] == "await_install",
    );
    let (code, third) = post_json(http, "/v1/machines/SN-P/provision", "{}");
    assert_eq!(code, 202);
    let failed = wait_task(
        http,
        third["id"].as_str().unwrap(),
        Duration::from_secs(30),
        |v| v["task"]["state"].get("failed").is_some(),
    );
    let reason = failed["task"]["state"]["failed"]["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("allocate: the machine is provisioning"),
        "{reason}"
    );

    // The BMC does not answer: blocked on it, named; a retry tries again.
    let (code, task) = post_json(http, "/v1/machines/SN-U/provision", "{}");
    assert_eq!(code, 202, "{task}");
    let uid = task["id"].as_str().unwrap().to_owned();
    let blocked = wait_task(http, &uid, Duration::from_secs(60), |v| {
        v["task"]["state"].get("blocked").is_some()
    });
    assert_eq!(
        blocked["task"]["state"]["blocked"]["dependency"],
        format!("bmc 127.0.0.1:{dead}")
    );
    assert_eq!(blocked["task"]["state"]["blocked"]["kind"], "hard");
    let (code, _) = post_json(http, &format!("/v1/tasks/{uid}/retry"), "{}");
    assert_eq!(code, 202);
    let again = wait_task(http, &uid, Duration::from_secs(60), |v| {
        v["task"]["state"].get("blocked").is_some() && v["steps"].as_array().unwrap().len() == 4
    });
    let steps = step_names(&again);
    assert_eq!(steps, ["network", "allocate", "set_pxe", "set_pxe"]);
    let (code, list) = curl(http, &[], "/v1/tasks?state=blocked");
    assert_eq!(code, 200);
    assert!(list.contains(&uid), "{list}");
    agent.stop();
}

#[test]
fn an_installer_that_never_calls_back_fails_the_task_at_the_install_timeout() {
    let test = "an_installer_that_never_calls_back_fails_the_task_at_the_install_timeout";
    let Some(bin) = dv_tests::sushy::sushy_bin(test) else {
        return;
    };
    let sushy = dv_tests::sushy::Sushy::start(&bin, None);
    let port = sushy.port();
    let dir = tempfile::tempdir().unwrap();
    let agent = dv_tests::agent::start_api_only_with(
        Path::new(env!("CARGO_BIN_EXE_dv-agent")),
        dir.path(),
        "[provision]\ninstall_timeout = \"4s\"\n",
    )
    .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"));
    let http = agent.http;
    let seed = format!(
        "machines:\n  - serial: SN-T\n    macs: [\"52:54:00:99:30:01\"]\n    role: worker\n    \
         bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {port}, user: admin, password: x }}\n"
    );
    let (code, body) = post(http, &seed);
    assert_eq!(code, 200, "{body}");
    let (code, task) = post_json(http, "/v1/machines/SN-T/provision", "{}");
    assert_eq!(code, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    // Nobody plays the installer.
    let done = wait_task(http, &id, Duration::from_secs(90), |v| {
        v["task"]["state"] == "succeeded" || v["task"]["state"].get("failed").is_some()
    });
    let reason = done["task"]["state"]["failed"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("no install callback (stage=installed) within 4s"),
        "{done}"
    );
    assert_eq!(
        step_names(&done),
        [
            "network",
            "allocate",
            "set_pxe",
            "power_cycle",
            "await_install"
        ]
    );
    let last = &done["steps"][4];
    assert_eq!(last["outcome"], "failed", "{last}");
    agent.stop();
}

#[test]
fn provisioning_a_machine_with_an_ipmi_bmc_goes_through_ipmi_sim() {
    let test = "provisioning_a_machine_with_an_ipmi_bmc_goes_through_ipmi_sim";
    let Some(bins) = dv_tests::ipmi::ipmi_bins(test) else {
        return;
    };
    let sim = dv_tests::ipmi::IpmiSim::start(&bins);
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let http = agent.http;
    let seed = format!(
        r#"
machines:
  - serial: SN-IP
    macs: ["52:54:00:99:30:01"]
    role: worker
    bmc: {{ protocol: ipmi, host: 127.0.0.1, port: {port}, user: {user}, password: {password} }}
"#,
        port = sim.port,
        user = dv_tests::ipmi::USER,
        password = dv_tests::ipmi::PASSWORD,
    );
    let (code, body) = post(http, &seed);
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(http, &[], "/v1/machines/SN-IP/power");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"off\""), "{body}");
    let (code, body) = post_json(http, "/v1/machines/SN-IP/boot", r#"{"target":"uefi_http"}"#);
    assert_eq!(code, 422, "{body}");

    let (code, task) = post_json(http, "/v1/machines/SN-IP/provision", "{}");
    assert_eq!(code, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    wait_task(http, &id, Duration::from_secs(60), |v| {
        v["task"]["state"]["running"]["step"] == "await_install"
    });
    // set_pxe and power_cycle, as ipmitool sees them.
    assert_eq!(sim.power(), "on");
    assert_eq!(sim.boot_device(), "Force PXE");
    let (code, body) = curl(
        http,
        &["-X", "POST", "--data", "stage=installed"],
        "/boot/52:54:00:99:30:01/callback",
    );
    assert_eq!(code, 204, "{body}");
    let done = wait_task(http, &id, Duration::from_secs(60), |v| {
        v["task"]["state"] == "succeeded" || v["task"]["state"].get("failed").is_some()
    });
    assert_eq!(done["task"]["state"], "succeeded", "{done}");
    assert_eq!(
        step_names(&done),
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
    let (_, m) = curl(http, &[], "/v1/machines/SN-IP");
    assert!(m.contains("\"state\":\"ready\""), "{m}");
    assert_eq!(sim.boot_device(), "Force Boot from default Hard-Drive");
    assert_eq!(sim.power(), "on");
    let events = sim.events();
    assert_eq!(events.matches("set power=1").count(), 1, "{events}");
    agent.stop();
}

#[test]
fn an_agent_killed_mid_provisioning_resumes_the_task_where_it_stood() {
    let test = "an_agent_killed_mid_provisioning_resumes_the_task_where_it_stood";
    let Some(bin) = dv_tests::sushy::sushy_bin(test) else {
        return;
    };
    let sushy = dv_tests::sushy::Sushy::start(&bin, None);
    let port = sushy.port();
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let http = agent.http;
    let seed = format!(
        "machines:\n  - serial: SN-K\n    macs: [\"52:54:00:99:40:01\"]\n    role: worker\n    \
         bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {port}, user: admin, password: x }}\n"
    );
    let (code, body) = post(http, &seed);
    assert_eq!(code, 200, "{body}");
    let (code, task) = post_json(http, "/v1/machines/SN-K/provision", "{}");
    assert_eq!(code, 202, "{task}");
    let id = task["id"].as_str().unwrap().to_owned();
    wait_task(http, &id, Duration::from_secs(90), |v| {
        v["task"]["state"]["running"]["step"] == "await_install"
    });

    // An outage at the worst moment: no shutdown, no flush.
    let mut agent = agent;
    agent.child.signal(libc::SIGKILL).unwrap();
    assert!(agent.child.wait_timeout(Duration::from_secs(10)).is_some());
    drop(agent);

    let agent = start_agent(dir.path());
    let http = agent.http;
    let resumed = wait_task(http, &id, Duration::from_secs(30), |v| {
        v["task"]["state"]["running"]["step"] == "await_install"
    });
    assert_eq!(
        step_names(&resumed)
            .iter()
            .filter(|s| **s != "await_install")
            .copied()
            .collect::<Vec<_>>(),
        ["network", "allocate", "set_pxe", "power_cycle"],
        "the steps before the outage are not run again: {resumed}"
    );
    let (code, body) = curl(
        http,
        &["-X", "POST", "--data", "stage=installed"],
        "/boot/52:54:00:99:40:01/callback",
    );
    assert_eq!(code, 204, "{body}");
    let done = wait_task(http, &id, Duration::from_secs(60), |v| {
        dv_tests::api::ended(v)
    });
    assert_eq!(done["task"]["state"], "succeeded", "{done}");
    let steps = step_names(&done);
    assert_eq!(steps.first(), Some(&"network"), "{done}");
    assert_eq!(&steps[steps.len() - 2..], ["set_disk", "ready"], "{done}");
    let (_, m) = curl(http, &[], "/v1/machines/SN-K");
    assert!(m.contains("\"state\":\"ready\""), "{m}");
    agent.stop();
}
