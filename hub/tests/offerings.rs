//! Offerings, prerequisite discovery and a project's machine requests,
//! through a real hub (one nats-server node, one replica) federating one
//! real site agent: a new project is told what it lacks, each fix turns a
//! prerequisite green, the request is placed on an available machine of
//! the site and provisioned there, the quota holds, and releasing hands
//! the machine back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use dv_tests::api::Api;
use dv_tests::hub::{Hub, Site, workspace_bin};
use dv_tests::nats::nats_server_bin;
use dv_tests::wait_for;
use serde_json::Value;

fn unmet(offerings: &Value, name: &str) -> Vec<String> {
    let o = offerings
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no offering {name} in {offerings}"));
    o["prerequisites"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["met"] == false)
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn send(api: &Api, method: &str, path: &str, body: &str) -> (u16, String) {
    api.curl(
        &[
            "-X",
            method,
            "-H",
            "Content-Type: application/json",
            "-H",
            "If-Match: *",
            "--data",
            body,
        ],
        path,
    )
}

#[test]
fn a_project_discovers_its_prerequisites_then_gets_a_machine_within_its_quota() {
    let test = "a_project_discovers_its_prerequisites_then_gets_a_machine_within_its_quota";
    let Some(nats) = nats_server_bin(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(
        &nats,
        Path::new(env!("CARGO_BIN_EXE_dv-hub")),
        &dir.path().join("hub"),
        1,
        1,
        &["osl-1"],
    );
    let site = Site::start(
        &nats,
        &workspace_bin("dv-agent"),
        &dir.path().join("osl-1"),
        "osl-1",
        &hub,
    );
    let (code, body) = Api::new(&site.api()).import(
        "machines:\n  - serial: OSL-1\n    macs: [\"52:54:00:31:00:01\"]\n    role: worker\n  \
         - serial: OSL-2\n    macs: [\"52:54:00:31:00:02\"]\n    role: worker\n",
    );
    assert_eq!(code, 200, "{body}");
    let base = hub.api(0);
    let api = Api::with_token(&base, &hub.token);
    let seen = wait_for(Duration::from_secs(60), || {
        let (_, m) = api.get("/v1/machines?site=osl-1");
        (m.as_array().map_or(0, Vec::len) == 2).then_some(m)
    });
    let machines =
        seen.unwrap_or_else(|| panic!("the hub never saw the site's machines\n{}", hub.diagnose()));
    assert!(
        machines
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "available"),
        "imported machines are available: {machines}"
    );

    assert_eq!(api.post_json("/v1/tenants", r#"{"name":"acme"}"#).0, 201);
    assert_eq!(
        api.post_json("/v1/tenants/acme/projects", r#"{"name":"web"}"#)
            .0,
        201
    );
    let path = "/v1/tenants/acme/projects/web";

    // A new project: told everything it lacks, with the fix.
    let (code, offerings) = api.get(&format!("{path}/offerings"));
    assert_eq!(code, 200, "{offerings}");
    assert_eq!(
        unmet(&offerings, "bare-metal"),
        ["enabled", "environment", "quota.machines"]
    );
    assert_eq!(unmet(&offerings, "kubernetes"), ["available"]);
    let text = offerings.to_string();
    assert!(
        text.contains("dv offering enable bare-metal --tenant acme --project web"),
        "{text}"
    );

    // A request now fails before anything is claimed, naming the first gap.
    let (code, body) = api.post_json(&format!("{path}/machines"), r#"{"environment":"dev"}"#);
    assert_eq!(code, 404, "no environment yet: {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("dv env create dev"),
        "{body}"
    );
    assert_eq!(
        api.post_json(&format!("{path}/environments"), r#"{"name":"dev"}"#)
            .0,
        201
    );
    let (code, body) = api.post_json(&format!("{path}/machines"), r#"{"environment":"dev"}"#);
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("enabled:"),
        "{body}"
    );

    // The operator's fixes turn each prerequisite green.
    let (code, body) = send(
        &api,
        "PUT",
        &format!("{path}/offerings/bare-metal"),
        r#"{"enabled":true}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = send(
        &api,
        "PUT",
        &format!("{path}/offerings/kubernetes"),
        r#"{"enabled":true}"#,
    );
    assert_eq!(
        code, 422,
        "an unavailable offering cannot be enabled: {body}"
    );
    let (code, body) = send(
        &api,
        "PUT",
        &format!("{path}/offerings/nope"),
        r#"{"enabled":true}"#,
    );
    assert_eq!(code, 404, "{body}");
    let (code, body) = send(
        &api,
        "PUT",
        &format!("{path}/offerings/bare-metal"),
        r#"{"enabled":"yes"}"#,
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        unmet(&api.get(&format!("{path}/offerings")).1, "bare-metal"),
        ["quota.machines"]
    );
    let (code, body) = send(&api, "PUT", &format!("{path}/quota"), r#"{"machines":1}"#);
    assert_eq!(code, 200, "{body}");
    let offerings = api.get(&format!("{path}/offerings")).1;
    assert!(unmet(&offerings, "bare-metal").is_empty(), "{offerings}");

    // The request: placed on an available machine at osl-1, claimed, and
    // its provisioning command delivered to the site.
    let (code, claim) = api.post_json(&format!("{path}/machines"), r#"{"environment":"dev"}"#);
    assert_eq!(code, 202, "{claim}");
    assert_eq!(claim["site"], "osl-1");
    assert_eq!(claim["claimed_by"], "user:operator");
    let command = claim["command"].as_str().unwrap().to_owned();
    let followed = wait_for(Duration::from_secs(60), || {
        let (_, c) = api.get(&format!("/v1/commands/{command}"));
        (!c["task"].is_null() || !c["rejected"].is_null()).then_some(c)
    });
    let followed =
        followed.unwrap_or_else(|| panic!("the site never took the command\n{}", hub.diagnose()));
    assert!(
        !followed["task"].is_null(),
        "the site started a task: {followed}"
    );

    // Roles: the project's member follows its own work; another tenant's
    // admin cannot tell the project exists; only an operator switches
    // offerings.
    assert_eq!(api.post_json("/v1/tenants", r#"{"name":"globex"}"#).0, 201);
    let mint = |name: &str, role: &str, scope: &str| -> String {
        let (code, body) = api.post_json(
            "/v1/identity/tokens",
            &format!(r#"{{"name":"{name}","role":"{role}","scope":{scope}}}"#),
        );
        assert_eq!(code, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    };
    let member = mint(
        "web-member",
        "project-member",
        r#"{"kind":"project","tenant":"acme","project":"web"}"#,
    );
    let stranger = mint(
        "globex-admin",
        "tenant-admin",
        r#"{"kind":"tenant","tenant":"globex"}"#,
    );
    let member = Api::with_token(&base, &member);
    let stranger = Api::with_token(&base, &stranger);
    assert_eq!(member.get(&format!("{path}/offerings")).0, 200);
    assert_eq!(
        member
            .get(&format!("{path}/machines"))
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (code, body) = send(
        &member,
        "PUT",
        &format!("{path}/offerings/network"),
        r#"{"enabled":true}"#,
    );
    assert_eq!(code, 403, "{body}");
    let (code, command_seen) = member.get(&format!("/v1/commands/{command}"));
    assert_eq!(code, 200, "{command_seen}");
    let task = command_seen["task"]["id"].as_str().unwrap().to_owned();
    assert_eq!(member.get(&format!("/v1/tasks/{task}")).0, 200);
    let tasks = member.get("/v1/tasks").1;
    assert_eq!(
        tasks.as_array().unwrap().len(),
        1,
        "only its own task: {tasks}"
    );
    let events = member.get("/v1/events").1;
    assert!(
        !events.as_array().unwrap().is_empty()
            && events
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["project"] == "web"),
        "{events}"
    );
    for path in [format!("{path}/offerings"), format!("{path}/machines")] {
        let (code, body) = stranger.get(&path);
        assert_eq!(code, 404, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("tenant \"acme\" does not exist"),
            "{body}"
        );
    }
    assert_eq!(
        stranger
            .post_json(&format!("{path}/machines"), r#"{"environment":"dev"}"#)
            .0,
        404
    );
    assert_eq!(stranger.get(&format!("/v1/commands/{command}")).0, 404);
    assert_eq!(stranger.get(&format!("/v1/tasks/{task}")).0, 404);
    assert!(stranger.get("/v1/tasks").1.as_array().unwrap().is_empty());
    assert!(stranger.get("/v1/events").1.as_array().unwrap().is_empty());

    // The quota holds: a second request is refused and claims nothing.
    let (code, body) = api.post_json(&format!("{path}/machines"), r#"{"environment":"dev"}"#);
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("quota.machines"),
        "{body}"
    );
    let (_, held) = api.get(&format!("{path}/machines"));
    let held = held.as_array().unwrap().clone();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["machine"], claim["machine"]);
    assert!(held[0]["serial"].as_str().unwrap().starts_with("OSL-"));

    // Bad requests change nothing.
    assert_eq!(api.post_json(&format!("{path}/machines"), "{").0, 400);
    assert_eq!(
        api.post_json(
            &format!("{path}/machines"),
            r#"{"environment":"dev","gpu":true}"#
        )
        .0,
        422
    );
    let (code, _) = api.post_json(
        &format!("{path}/machines"),
        r#"{"environment":"dev","site":"bgo-1"}"#,
    );
    assert_eq!(code, 409, "a site the project may not use");
    assert_eq!(
        api.get(&format!("{path}/machines"))
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Releasing deprovisions and frees the quota.
    let machine = claim["machine"].as_str().unwrap();
    let (code, body) = send(&api, "DELETE", &format!("{path}/machines/{machine}"), "");
    assert_eq!(code, 202, "{body}");
    assert!(body.contains("deprovision"), "{body}");
    assert!(
        api.get(&format!("{path}/machines"))
            .1
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (code, _) = send(&api, "DELETE", &format!("{path}/machines/{machine}"), "");
    assert_eq!(code, 404, "released twice");
}
