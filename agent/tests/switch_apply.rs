//! `dvnet` against a real agent driving a real Open vSwitch: the switch
//! intent stored through the API, `dvnet plan`, `dvnet apply` and `dvnet
//! drift` with what an operator checks after each (who pings whom, what
//! `ovs-vsctl` shows, the events recorded), an agent killed mid-apply that
//! converges when started again, and provisioning that waits for the
//! machine's switch port (Maskin depends on Nett).
//!
//! Needs root (namespaces) and Open vSwitch (scripts/setup.sh installs it).
//! Without namespaces the tests skip loudly; without Open vSwitch they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use dv_protocol::{Event, EventBody};
use dv_tests::agent::{RunningAgent, start_api_only_with};
use dv_tests::api::Api;
use dv_tests::hub::workspace_bin;
use dv_tests::netns::require_netns;
use dv_tests::ovs::{OvsSwitchNs, ping, require_ovs};
use dv_tests::wait_for;
use serde_json::Value;

fn gate(test: &str) -> bool {
    if !require_netns(test) {
        return false;
    }
    require_ovs(test);
    true
}

fn switch_section(sw: &OvsSwitchNs) -> String {
    format!(
        "[[switches]]\nname = \"sw1\"\ndriver = \"ovs\"\novsdb = \"unix:{}\"\nbridge = \"{}\"\ndrift_interval = \"1h\"\n",
        sw.db_socket().display(),
        sw.bridge()
    )
}

fn start(dir: &Path, sw: &OvsSwitchNs) -> RunningAgent {
    start_api_only_with(&workspace_bin("dv-agent"), dir, &switch_section(sw))
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"))
}

/// `dvnet` as installed (a symlink to dv), pointed at `agent`.
fn dvnet(dir: &Path, agent: &RunningAgent, args: &[&str]) -> Output {
    let link = dir.join("dvnet");
    if !link.exists() {
        std::os::unix::fs::symlink(workspace_bin("dv"), &link).unwrap();
    }
    let url = format!("http://{}", agent.http);
    Command::new(&link)
        .args(["--agent", &url, "-o", "json"])
        .args(args)
        .env("DV_CONFIG_DIR", dir.join("config"))
        .env_remove("DV_CONTEXT")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn changes(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}

/// The events in the agent's outbox, decoded, with their actors.
fn events(data: &Path) -> Vec<(String, EventBody)> {
    let db = rusqlite::Connection::open(data.join("agent.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT payload FROM outbox ORDER BY seq")
        .unwrap();
    let rows: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.iter()
        .map(|p| {
            let m = dv_protocol::decode::<Event>(p).unwrap();
            (m.envelope.actor.to_string(), m.body.body)
        })
        .collect()
}

fn networks_and_profiles(d: &Path, agent: &RunningAgent) {
    for (name, vlan, prefix) in [("v10", "10", "10.10.0.0/24"), ("v20", "20", "10.20.0.0/24")] {
        ok(&dvnet(
            d,
            agent,
            &[
                "network",
                "create",
                name,
                "--vlan",
                vlan,
                "--purpose",
                "tenant",
                "--prefix",
                prefix,
            ],
        ));
        ok(&dvnet(
            d,
            agent,
            &["profile", "set", name, "--access", vlan],
        ));
    }
}

#[test]
fn dvnet_apply_realizes_the_intent_and_drift_is_found_and_recorded() {
    if !gate("dvnet_apply_realizes_the_intent_and_drift_is_found_and_recorded") {
        return;
    }
    let sw = OvsSwitchNs::start("dvsa", "br0");
    let h1 = sw.host("dvsa-h1", "h1p", "192.168.50.1/24");
    let h2 = sw.host("dvsa-h2", "h2p", "192.168.50.2/24");
    let h3 = sw.host("dvsa-h3", "h3p", "192.168.50.3/24");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let agent = start(d, &sw);
    networks_and_profiles(d, &agent);

    // Bad intent is refused, names the problem, and changes nothing.
    let before = Api::new(&format!("http://{}", agent.http)).get("/v1/intent");
    let bad = dvnet(d, &agent, &["profile", "set", "ghost", "--access", "30"]);
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("VLAN 30 is not the VLAN of any network"),
        "{}",
        text(&bad)
    );
    let bad = dvnet(
        d,
        &agent,
        &["port", "assign", "sw1", "h1p", "--profile", "nope"],
    );
    assert!(!bad.status.success(), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no port profile is named nope"),
        "{}",
        text(&bad)
    );
    assert_eq!(
        Api::new(&format!("http://{}", agent.http)).get("/v1/intent"),
        before
    );

    for (port, profile) in [("h1p", "v10"), ("h2p", "v10"), ("h3p", "v20")] {
        ok(&dvnet(
            d,
            &agent,
            &["port", "assign", "sw1", port, "--profile", profile],
        ));
    }
    // The plan shows the three adds and changes nothing.
    let planned = dvnet(d, &agent, &["plan", "sw1", "--exit-code"]);
    assert_eq!(planned.status.code(), Some(1), "{}", text(&planned));
    let plan: Value = serde_json::from_slice(&planned.stdout).unwrap();
    assert_eq!(
        changes(&plan, "changes"),
        [
            "add h1p: absent -> access 10",
            "add h2p: absent -> access 10",
            "add h3p: absent -> access 20"
        ]
    );
    assert!(!sw.vsctl(&["list-ports", "br0"]).contains("h1p"));
    assert!(!ping(&h1, "192.168.50.2"), "nothing is applied yet");

    let applied = ok(&dvnet(d, &agent, &["apply", "sw1"]));
    assert_eq!(applied["in_sync"], true, "{applied}");
    assert_eq!(changes(&applied, "applied").len(), 3, "{applied}");
    assert!(ping(&h1, "192.168.50.2"), "same VLAN: h1 reaches h2");
    assert!(
        !ping(&h1, "192.168.50.3"),
        "other VLAN: h1 does not reach h3"
    );
    assert_eq!(sw.vsctl(&["get", "port", "h3p", "tag"]).trim(), "20");
    let again = dvnet(d, &agent, &["plan", "sw1", "--exit-code"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // Behind the agent's back: h3p moved into VLAN 10.
    sw.vsctl(&["set", "port", "h3p", "tag=10"]);
    assert!(ping(&h1, "192.168.50.3"), "the change took effect");
    let drift = dvnet(d, &agent, &["drift", "sw1", "--exit-code"]);
    assert_eq!(drift.status.code(), Some(1), "{}", text(&drift));
    let drift: Value = serde_json::from_slice(&drift.stdout).unwrap();
    assert_eq!(
        changes(&drift, "changes"),
        ["retag h3p: access 10 -> access 20"]
    );
    let list = ok(&dvnet(d, &agent, &["switch", "list"]));
    assert_eq!(list[0]["last_apply"], "applied", "{list}");
    assert_eq!(list[0]["drift"][0], "retag h3p: access 10 -> access 20");
    // Re-applying converges.
    let fixed = ok(&dvnet(d, &agent, &["apply", "sw1"]));
    assert_eq!(
        changes(&fixed, "applied"),
        ["retag h3p: access 10 -> access 20"]
    );
    assert!(!ping(&h1, "192.168.50.3"), "isolated again");

    // Unassigning a port takes it off the switch at the next apply.
    let gone = dvnet(d, &agent, &["port", "unassign", "sw1", "h2p"]);
    assert!(gone.status.success(), "{}", text(&gone));
    let removed = ok(&dvnet(d, &agent, &["apply", "sw1"]));
    assert_eq!(
        changes(&removed, "applied"),
        ["remove h2p: access 10 -> absent"]
    );
    assert!(!sw.vsctl(&["list-ports", "br0"]).contains("h2p"));

    // A LAG: two member ports bundled into one bond carrying VLAN 20.
    for (m, n) in [("m1", "n1"), ("m2", "n2")] {
        let out = sw
            .ns()
            .ip(&["link", "add", m, "type", "veth", "peer", "name", n])
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        for dev in [m, n] {
            sw.ns().ip(&["link", "set", dev, "up"]).unwrap();
        }
    }
    let lag = ok(&dvnet(
        d,
        &agent,
        &[
            "lag",
            "set",
            "sw1",
            "bond1",
            "--members",
            "m1,m2",
            "--profile",
            "v20",
        ],
    ));
    assert_eq!(lag["members"], serde_json::json!(["m1", "m2"]), "{lag}");
    let clash = dvnet(
        d,
        &agent,
        &["port", "assign", "sw1", "m1", "--profile", "v10"],
    );
    assert!(
        !clash.status.success(),
        "a LAG member has no profile of its own"
    );
    let plan: Value = serde_json::from_slice(&dvnet(d, &agent, &["plan", "sw1"]).stdout).unwrap();
    assert_eq!(
        changes(&plan, "changes"),
        ["add bond1: absent -> access 20 over [m1, m2]"]
    );
    ok(&dvnet(d, &agent, &["apply", "sw1"]));
    assert_eq!(sw.vsctl(&["get", "port", "bond1", "tag"]).trim(), "20");
    let ifaces = sw.vsctl(&["list-ifaces", "br0"]);
    assert!(
        ifaces.lines().any(|l| l == "m1") && ifaces.lines().any(|l| l == "m2"),
        "{ifaces}"
    );

    // A step that fails midway (a port whose interface the switch does not
    // have) is rolled back with the steps before it: h2p does not stay.
    for (port, profile) in [("h2p", "v10"), ("zz9", "v10")] {
        ok(&dvnet(
            d,
            &agent,
            &["port", "assign", "sw1", port, "--profile", profile],
        ));
    }
    let failed = dvnet(d, &agent, &["apply", "sw1"]);
    assert!(!failed.status.success(), "{}", text(&failed));
    let why = String::from_utf8_lossy(&failed.stderr);
    assert!(
        why.contains("add zz9: absent -> access 10 failed")
            && why.contains("1 earlier step(s) rolled back"),
        "{}",
        text(&failed)
    );
    assert!(
        !sw.vsctl(&["list-ports", "br0"]).contains("h2p"),
        "rolled back"
    );
    let list = ok(&dvnet(d, &agent, &["switch", "list"]));
    assert_eq!(list[0]["last_apply"], "failed", "{list}");
    let gone = dvnet(d, &agent, &["port", "unassign", "sw1", "zz9"]);
    assert!(gone.status.success(), "{}", text(&gone));
    let fixed = ok(&dvnet(d, &agent, &["apply", "sw1"]));
    assert_eq!(changes(&fixed, "applied"), ["add h2p: absent -> access 10"]);

    // A vendor NOS cannot take these port names; the render says so.
    let eos = dvnet(d, &agent, &["render", "sw1", "--vendor", "eos"]);
    assert!(!eos.status.success(), "{}", text(&eos));
    assert!(
        String::from_utf8_lossy(&eos.stderr).contains("eos has no port named"),
        "{}",
        text(&eos)
    );

    agent.stop();
    // Realized state and drift are events (the audit trail the hub gets).
    let with_actors = events(&d.join("data"));
    // The caller is the audit actor of intent changes (here the host-local
    // operator; with [api] tokens, the token's user).
    assert!(
        with_actors
            .iter()
            .filter(|(_, e)| matches!(e, EventBody::PortIntentChanged { .. }))
            .all(|(actor, _)| actor == "user:operator"),
        "{with_actors:#?}"
    );
    let recorded: Vec<EventBody> = with_actors.into_iter().map(|(_, e)| e).collect();
    let applied: Vec<&Vec<String>> = recorded
        .iter()
        .filter_map(|e| match e {
            EventBody::SwitchApplied { realized, .. } => Some(realized),
            _ => None,
        })
        .collect();
    assert_eq!(applied.len(), 5, "{recorded:#?}");
    assert!(recorded.iter().any(|e| matches!(e,
        EventBody::SwitchApplyFailed { failed, rolled_back, .. }
            if failed == "add zz9: absent -> access 10"
                && rolled_back == &["remove h2p: access 10 -> absent"])));
    assert_eq!(
        applied[0],
        &["h1p: access 10", "h2p: access 10", "h3p: access 20"]
    );
    assert!(
        recorded.iter().any(|e| matches!(e,
        EventBody::SwitchDrifted { drift, .. } if drift == &["retag h3p: access 10 -> access 20"]))
    );
    assert!(
        recorded
            .iter()
            .filter(|e| matches!(e, EventBody::PortIntentChanged { .. }))
            .count()
            >= 6,
        "profiles and assignments are audited: {recorded:#?}"
    );
    drop((h1, h2, h3));
}

#[test]
fn an_agent_killed_mid_apply_converges_when_started_again() {
    if !gate("an_agent_killed_mid_apply_converges_when_started_again") {
        return;
    }
    const PORTS: usize = 6;
    let sw = OvsSwitchNs::start("dvsk", "br0");
    // Both ends of each veth stay in the switch's namespace: only the
    // switch's side of each matters here.
    for i in 0..PORTS {
        let (p, q) = (format!("p{i}"), format!("q{i}"));
        let out = sw
            .ns()
            .ip(&["link", "add", &p, "type", "veth", "peer", "name", &q])
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        for dev in [&p, &q] {
            sw.ns().ip(&["link", "set", dev, "up"]).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut agent = start(d, &sw);
    networks_and_profiles(d, &agent);
    let api = format!("http://{}", agent.http);
    for i in 0..PORTS {
        let (code, body) = Api::new(&api).curl(
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/json",
                "--data",
                r#"{"profile":"v10"}"#,
            ],
            &format!("/v1/switches/sw1/ports/p{i}"),
        );
        assert_eq!(code, 200, "{body}");
    }
    // A slow switch: ovs-vswitchd stopped, so the first step's change is in
    // the switch's database and the driver waits for the datapath to take
    // it. The agent is killed right there, mid-apply.
    sw.signal_vswitchd(libc::SIGSTOP);
    let caller = {
        let api = api.clone();
        std::thread::spawn(move || {
            Api::new(&api).curl(
                &["-X", "POST", "--max-time", "60"],
                "/v1/switches/sw1/apply",
            )
        })
    };
    assert!(
        agent
            .wait_log("switch: applying", Duration::from_secs(30))
            .is_some(),
        "the apply did not start: {}",
        agent.log_text()
    );
    let first = wait_for(Duration::from_secs(10), || {
        let ports = sw.vsctl(&["list-ports", "br0"]);
        (!ports.trim().is_empty()).then_some(ports)
    });
    agent.child.signal(libc::SIGKILL).unwrap();
    agent.child.wait_timeout(Duration::from_secs(10));
    sw.signal_vswitchd(libc::SIGCONT);
    let (code, _) = caller.join().unwrap();
    assert_ne!(code, 200, "the call was cut off with the agent");
    let first = first.expect("the first step reached the switch's database");
    let on_switch = first.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        (1..PORTS).contains(&on_switch),
        "the kill should land mid-apply; the switch has {on_switch} of {PORTS} ports"
    );
    drop(agent);

    // Started again on the same data: the cut-off apply is finished.
    let mut agent = start(d, &sw);
    let cut_off = "resuming an apply that was cut off";
    let resumed = agent.log_text().contains(cut_off)
        || agent.wait_log(cut_off, Duration::from_secs(30)).is_some();
    assert!(resumed, "{}", agent.log_text());
    let base = format!("http://{}", agent.http);
    let api = Api::new(&base);
    let done = wait_for(Duration::from_secs(60), || {
        let (_, v) = api.get("/v1/switches");
        (v["switches"][0]["last_apply"] == "applied").then_some(v)
    })
    .unwrap_or_else(|| panic!("never converged: {}", agent.log_text()));
    assert_eq!(
        done["switches"][0]["drift"],
        serde_json::json!([]),
        "{done}"
    );
    let ports_now = sw.vsctl(&["list-ports", "br0"]);
    for i in 0..PORTS {
        assert!(
            ports_now.lines().any(|l| l == format!("p{i}")),
            "p{i}: {ports_now}"
        );
        assert_eq!(
            sw.vsctl(&["get", "port", &format!("p{i}"), "tag"]).trim(),
            "10"
        );
    }
    let (_, plan) = api.get("/v1/switches/sw1/plan");
    assert_eq!(plan["in_sync"], true, "{plan}");
    agent.stop();
}

#[test]
fn provisioning_waits_until_the_machines_port_is_applied() {
    if !gate("provisioning_waits_until_the_machines_port_is_applied") {
        return;
    }
    let sw = OvsSwitchNs::start("dvsm", "br0");
    let _h1 = sw.host("dvsm-h1", "h1p", "192.168.51.1/24");
    let _h2 = sw.host("dvsm-h2", "h2p", "192.168.51.2/24");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let agent = start(d, &sw);
    let base = format!("http://{}", agent.http);
    let api = Api::new(&base);
    networks_and_profiles(d, &agent);
    // Machines whose BMCs do not answer: the tasks go as far as the first
    // BMC call, which is all this test needs.
    let dead = dv_tests::sushy::free_port();
    let seed = format!(
        r#"
machines:
  - serial: SN-NET-1
    macs: ["52:54:00:99:60:01"]
    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {dead}, user: admin, password: s3cret }}
    cabling:
      - {{ nic: "52:54:00:99:60:01", switch: sw1, port: h1p, profile: v10 }}
  - serial: SN-NET-2
    macs: ["52:54:00:99:60:02"]
    bmc: {{ protocol: redfish, scheme: http, host: 127.0.0.1, port: {dead}, user: admin, password: s3cret }}
"#
    );
    let (code, body) = api.import(&seed);
    assert_eq!(code, 200, "{body}");
    let id = |serial: &str| {
        let (_, m) = api.get(&format!("/v1/machines/{serial}"));
        m["id"].as_str().unwrap().to_owned()
    };
    let (m1, m2) = (id("SN-NET-1"), id("SN-NET-2"));
    // The inventory's cabling is the port intent: h1p is SN-NET-1's port.
    let ports = ok(&dvnet(d, &agent, &["port", "list", "sw1"]));
    assert_eq!(ports["assignments"][0]["port"], "h1p", "{ports}");
    assert_eq!(ports["assignments"][0]["machine"], m1.as_str(), "{ports}");
    assert_eq!(
        ports["assignments"][0]["nic"], "52:54:00:99:60:01",
        "{ports}"
    );
    let exported = api.curl(&[], "/v1/inventory").1;
    assert!(
        exported.contains("switch: sw1") && exported.contains("port: h1p"),
        "the export carries the cabling: {exported}"
    );
    // A cable to a profile the site does not define refuses the import.
    let bad = "machines:\n  - serial: SN-NET-3\n    macs: [\"52:54:00:99:60:03\"]\n    cabling:\n      - { nic: \"52:54:00:99:60:03\", switch: sw1, port: h9p, profile: nope }\n";
    let (code, body) = api.import(bad);
    assert_eq!(code, 409, "{body}");
    assert!(
        body.to_string().contains("no port profile is named nope"),
        "{body}"
    );
    let (code, _) = api.get("/v1/machines/SN-NET-3");
    assert_eq!(code, 404, "nothing of the refused import stays");

    // The port is not on the switch yet: provisioning blocks on it.
    let (code, task) = api.post_json("/v1/machines/SN-NET-1/provision", "{}");
    assert_eq!(code, 202, "{task}");
    let t1 = task["id"].as_str().unwrap().to_owned();
    let blocked = api.wait_task(&t1, Duration::from_secs(30), |v| {
        v["task"]["state"].get("blocked").is_some()
    });
    let why = blocked["task"]["state"]["blocked"]["dependency"]
        .as_str()
        .unwrap();
    assert!(
        why.starts_with("network: switch port sw1/h1p should carry access 10 (v10 (VLAN 10))")
            && why.contains("dvnet apply sw1"),
        "{why}"
    );
    assert_eq!(dv_tests::api::step_names(&blocked), ["network"]);

    // Applying the switch lets it go on, by itself.
    let applied = ok(&dvnet(d, &agent, &["apply", "sw1"]));
    assert_eq!(
        applied["resumed_tasks"],
        serde_json::json!([t1]),
        "{applied}"
    );
    let moved = api.wait_task(&t1, Duration::from_secs(30), |v| {
        dv_tests::api::step_names(v).contains(&"set_pxe")
    });
    let steps = dv_tests::api::step_names(&moved);
    assert_eq!(&steps[..3], ["network", "network", "allocate"], "{moved}");
    let note = moved["steps"][1]["detail"].as_str().unwrap_or_default();
    assert!(
        note.contains("sw1/h1p carries access 10: network v10 (VLAN 10) realized"),
        "{moved}"
    );

    // A machine whose port is already realized proceeds, and says so.
    ok(&dvnet(
        d,
        &agent,
        &[
            "port",
            "assign",
            "sw1",
            "h2p",
            "--profile",
            "v20",
            "--machine",
            &m2,
        ],
    ));
    ok(&dvnet(d, &agent, &["apply", "sw1"]));
    let (code, task) = api.post_json("/v1/machines/SN-NET-2/provision", "{}");
    assert_eq!(code, 202, "{task}");
    let t2 = task["id"].as_str().unwrap().to_owned();
    let went = api.wait_task(&t2, Duration::from_secs(30), |v| {
        dv_tests::api::step_names(v).contains(&"allocate")
    });
    assert_eq!(went["steps"][0]["outcome"], "done", "{went}");
    let note = went["steps"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        note.contains("sw1/h2p carries access 20: network v20 (VLAN 20) realized"),
        "{went}"
    );
    agent.stop();
}
