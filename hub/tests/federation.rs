//! The federation end to end with real processes on loopback: three hub
//! nats-server nodes in a JetStream cluster and three `dv-hub` replicas
//! (configs from `dv-hub nats-config`), two sites, each a leaf node (config
//! from `dv-agent nats-config`) and a `dv-agent`, behind an uplink proxy
//! the test cuts.
//!
//! What an operator checks: every site's machines and tasks at the hub; a
//! command sent through the hub reaches the site and its task shows at the
//! hub; with the uplink cut the site keeps working, its events wait, a
//! command for it waits at the hub; after the link returns the hub holds
//! every event exactly once (ids compared stream against stream); killing
//! a hub node or a replica during writes loses no acknowledged write and
//! the API keeps answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use dv_protocol::{Actor, Message, SiteName};
use dv_tests::api::Api;
use dv_tests::hub::{Hub, Site, workspace_bin};
use dv_tests::nats::nats_server_bin;
use dv_tests::wait_for;
use serde_json::Value;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An inventory file of `n` machines named `<prefix>-<i>`, from `first`.
fn inventory(prefix: &str, mac_byte: u8, first: u32, n: u32) -> String {
    let mut text = String::from("machines:\n");
    for i in first..first + n {
        text.push_str(&format!(
            "  - serial: {prefix}-{i}\n    macs: [\"52:54:00:{mac_byte:02x}:{:02x}:{:02x}\"]\n    role: worker\n",
            i / 256,
            i % 256
        ));
    }
    text
}

fn import(site: &Site, text: &str) {
    let base = site.api();
    let (code, body) = Api::new(&base).import(text);
    assert_eq!(code, 200, "import at {}: {body}", site.name);
}

/// Machines the hub replica at `base` knows at `site`.
fn hub_machines(hub: &Hub, replica: usize, site: &str) -> Vec<Value> {
    let base = hub.api(replica);
    let (code, body) = Api::with_token(&base, &hub.token).get(&format!("/v1/machines?site={site}"));
    if code != 200 {
        return Vec::new();
    }
    body.as_array().cloned().unwrap_or_default()
}

fn wait_hub_machines(hub: &Hub, replica: usize, site: &str, n: usize, limit: Duration) {
    let ok = wait_for(limit, || {
        (hub_machines(hub, replica, site).len() == n).then_some(())
    });
    assert!(
        ok.is_some(),
        "replica r{} has {} machines of {site}, expected {n}; log:\n{}\n{}",
        replica + 1,
        hub_machines(hub, replica, site).len(),
        hub.replica_log(replica),
        hub.diagnose()
    );
}

/// `(Nats-Msg-Id, Dv-Site)` of every message in `stream`, in stream order,
/// read one by one (no consumer to stall when a node has just died).
async fn stream_ids(url: &str, domain: &str, stream: &str) -> Vec<(String, String)> {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::with_domain(client, domain);
    let mut s = js.get_stream(stream).await.unwrap();
    let state = s.info().await.unwrap().state.clone();
    let mut out = Vec::with_capacity(state.messages as usize);
    for seq in state.first_sequence..=state.last_sequence {
        let m = match s.get_raw_message(seq).await {
            Ok(m) => m,
            // Deleted sequences (none expected here) are gaps, not failures.
            Err(_) => continue,
        };
        let get = |h: &str| m.headers.get(h).map(|v| v.to_string()).unwrap_or_default();
        out.push((get("Nats-Msg-Id"), get("Dv-Site")));
    }
    assert_eq!(
        out.len() as u64,
        state.messages,
        "{stream}: missing messages"
    );
    out
}

/// Asserts the hub's event stream holds the site's events exactly once.
fn assert_exactly_once(rt: &tokio::runtime::Runtime, hub: &Hub, site: &Site) -> usize {
    let domain = site.name.clone();
    let at_site = rt.block_on(stream_ids(
        &site.nats.url(),
        &domain,
        &format!("DV_EVT_{}", site.name.to_ascii_uppercase()),
    ));
    let url = hub.client_urls()[0].clone();
    let at_hub: Vec<String> = rt
        .block_on(stream_ids(&url, "hub", "DV_HUB_EVT"))
        .into_iter()
        .filter(|(_, s)| *s == site.name)
        .map(|(id, _)| id)
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &at_hub {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "events of {} stored twice at the hub: {twice:?}",
        site.name
    );
    let site_ids: Vec<&str> = at_site.iter().map(|(id, _)| id.as_str()).collect();
    let mut a = site_ids.clone();
    let mut b: Vec<&str> = at_hub.iter().map(String::as_str).collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(
        a, b,
        "the hub's events of {} differ from the site's",
        site.name
    );
    site_ids.len()
}

/// Waits until the hub's event stream has caught up with the site's.
fn wait_caught_up(rt: &tokio::runtime::Runtime, hub: &Hub, site: &Site, limit: Duration) {
    let stream = format!("DV_EVT_{}", site.name.to_ascii_uppercase());
    let done = wait_for(limit, || {
        let at_site = rt
            .block_on(stream_ids(&site.nats.url(), &site.name, &stream))
            .len();
        let base = hub.api(1);
        let (code, events) = Api::with_token(&base, &hub.token)
            .get(&format!("/v1/events?site={}&limit=10000", site.name));
        let at_hub = events.as_array().map_or(0, Vec::len);
        (code == 200 && at_site > 0 && at_site == at_hub).then_some(())
    });
    assert!(
        done.is_some(),
        "the hub did not catch up with {}",
        site.name
    );
}

fn provision_via_hub(hub: &Hub, replica: usize, key: &str) -> String {
    let base = hub.api(replica);
    let (code, body) =
        Api::with_token(&base, &hub.token).post_json(&format!("/v1/machines/{key}/provision"), "");
    assert_eq!(code, 202, "provision {key}: {body}");
    body["command"].as_str().unwrap().to_owned()
}

/// The command as the hub shows it, once it has a task.
fn wait_command_task(hub: &Hub, replica: usize, id: &str, limit: Duration) -> Value {
    let base = hub.api(replica);
    let api = Api::with_token(&base, &hub.token);
    let found = wait_for(limit, || {
        let (code, c) = api.get(&format!("/v1/commands/{id}"));
        (code == 200 && c["task"].is_object()).then_some(c)
    });
    found.unwrap_or_else(|| {
        let (_, c) = api.get(&format!("/v1/commands/{id}"));
        panic!(
            "command {id} got no task at the hub: {c}\n{}",
            hub.replica_log(replica)
        )
    })
}

#[test]
fn sites_report_up_commands_flow_down_and_a_cut_uplink_loses_nothing() {
    let Some(nats) = nats_server_bin("sites_report_up_commands_flow_down") else {
        return;
    };
    let (hub_bin, agent_bin) = (workspace_bin("dv-hub"), workspace_bin("dv-agent"));
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let hub = Hub::start(
        &nats,
        &hub_bin,
        &dir.path().join("hub"),
        3,
        3,
        &["osl-1", "bgo-1"],
    );
    let osl = Site::start(&nats, &agent_bin, &dir.path().join("osl-1"), "osl-1", &hub);
    let bgo = Site::start(&nats, &agent_bin, &dir.path().join("bgo-1"), "bgo-1", &hub);

    // Unauthenticated calls are refused.
    let base = hub.api(0);
    let (code, _) = Api::new(&base).get("/v1/machines");
    assert_eq!(code, 401);
    let (code, _) = Api::with_token(&base, "wrong").post_json("/v1/machines/x/provision", "");
    assert_eq!(code, 401);

    // Sites report up: each replica sees both sites' machines.
    import(&osl, &inventory("OSL", 0x10, 1, 3));
    import(&bgo, &inventory("BGO", 0x20, 1, 3));
    for replica in 0..3 {
        wait_hub_machines(&hub, replica, "osl-1", 3, Duration::from_secs(30));
        wait_hub_machines(&hub, replica, "bgo-1", 3, Duration::from_secs(30));
    }
    let (code, all) = Api::with_token(&base, &hub.token).get("/v1/machines");
    assert_eq!(code, 200);
    assert_eq!(all.as_array().unwrap().len(), 6, "{all}");
    // The same shape as the agent's own API.
    let at_agent = Api::new(&osl.api()).get("/v1/machines/OSL-1").1;
    let at_hub = Api::with_token(&base, &hub.token)
        .get("/v1/machines/OSL-1")
        .1;
    assert_eq!(at_hub["id"], at_agent["id"]);
    assert_eq!(at_hub["site"], "osl-1");
    assert_eq!(at_hub["macs"], at_agent["macs"]);
    // Heartbeats arrive.
    let beats = wait_for(Duration::from_secs(15), || {
        let (_, sites) = Api::with_token(&base, &hub.token).get("/v1/sites");
        let sites = sites.as_array()?.clone();
        sites
            .iter()
            .all(|s| s["heartbeat"].is_object())
            .then_some(sites)
    });
    assert!(beats.is_some(), "no heartbeats at the hub");

    // A command flows down; its task shows at the hub, linked to it.
    let command = provision_via_hub(&hub, 0, "OSL-1");
    let shown = wait_command_task(&hub, 2, &command, Duration::from_secs(30));
    let task = shown["task"]["id"].as_str().unwrap().to_owned();
    assert_eq!(shown["site"], "osl-1");
    let (code, at_site) = Api::new(&osl.api()).get(&format!("/v1/tasks/{task}"));
    assert_eq!(code, 200, "the site has no task {task}: {at_site}");
    let (code, _) = Api::with_token(&base, &hub.token).get(&format!("/v1/tasks/{task}"));
    assert_eq!(code, 200);

    // A command the site cannot carry out (a stale hub, a machine removed at
    // the site) comes back refused, with the site's reason, instead of
    // vanishing.
    let ghost = dv_protocol::MachineId::new();
    let refused = Message::command(
        SiteName::new("osl-1").unwrap(),
        Actor::new("user:test").unwrap(),
        dv_protocol::Command::ProvisionMachine { machine: ghost },
    );
    rt.block_on(async {
        let client = async_nats::connect(hub.client_urls()[0].as_str())
            .await
            .unwrap();
        let js = jetstream::with_domain(client, "hub");
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in refused.headers() {
            headers.insert(name, value.as_str());
        }
        let subject = refused.body.subject(&refused.envelope.site).into_string();
        let payload = dv_protocol::codec::encode(&refused).unwrap();
        js.publish_with_headers(subject, headers, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let id = refused.envelope.id.to_string();
    let api = Api::with_token(&base, &hub.token);
    let answer = wait_for(Duration::from_secs(30), || {
        let (code, c) = api.get(&format!("/v1/commands/{id}"));
        (code == 200 && c["rejected"].is_string()).then_some(c)
    });
    let answer = answer
        .unwrap_or_else(|| panic!("no rejection: {}", api.get(&format!("/v1/commands/{id}")).1));
    assert!(answer["task"].is_null(), "{answer}");
    let reason = answer["rejected"].as_str().unwrap();
    assert!(reason.contains(&ghost.to_string()), "{reason}");

    // Cut osl-1's uplink.
    osl.uplink.cut();
    let down = wait_for(Duration::from_secs(15), || {
        osl.nats
            .monitor("/leafz")
            .contains("\"leafnodes\": 0")
            .then_some(())
    });
    assert!(
        down.is_some(),
        "the leaf link stayed up: {}",
        osl.nats.monitor("/leafz")
    );
    // Both sides keep working: the cut site imports, the other site's
    // events still flow, and a command for the cut site waits at the hub.
    import(&osl, &inventory("OSL", 0x10, 4, 5));
    import(&bgo, &inventory("BGO", 0x20, 4, 2));
    let waiting = provision_via_hub(&hub, 1, "OSL-2");
    wait_hub_machines(&hub, 0, "bgo-1", 5, Duration::from_secs(30));
    let (_, listed) = Api::new(&osl.api()).get("/v1/machines");
    assert_eq!(
        listed.as_array().unwrap().len(),
        8,
        "the cut site stopped serving"
    );
    assert_eq!(
        hub_machines(&hub, 0, "osl-1").len(),
        3,
        "events crossed a cut uplink: the partition is not real"
    );
    let (code, pending) =
        Api::with_token(&base, &hub.token).get(&format!("/v1/commands/{waiting}"));
    assert_eq!(code, 200, "{pending}");
    assert!(
        pending["task"].is_null(),
        "a task appeared through a cut link: {pending}"
    );

    // Keep the link down long enough for nats-server to back off its
    // retries of the source (10 s x failures apart): the hub must still
    // resume soon after the site is back, not minutes later.
    std::thread::sleep(Duration::from_secs(45));

    // Heal: the hub catches up and the waiting command is carried out.
    osl.uplink.heal();
    for replica in 0..3 {
        wait_hub_machines(&hub, replica, "osl-1", 8, Duration::from_secs(60));
    }
    wait_command_task(&hub, 0, &waiting, Duration::from_secs(60));
    wait_caught_up(&rt, &hub, &osl, Duration::from_secs(30));
    wait_caught_up(&rt, &hub, &bgo, Duration::from_secs(30));
    let n_osl = assert_exactly_once(&rt, &hub, &osl);
    let n_bgo = assert_exactly_once(&rt, &hub, &bgo);
    assert!(n_osl >= 8 && n_bgo >= 5, "osl {n_osl}, bgo {n_bgo}");
    // Every replica's read model holds the same events.
    let counts: Vec<usize> = (0..3)
        .map(|r| {
            let b = hub.api(r);
            Api::with_token(&b, &hub.token)
                .get("/v1/events?limit=10000")
                .1
                .as_array()
                .map_or(0, Vec::len)
        })
        .collect();
    assert!(
        counts.iter().all(|c| *c == n_osl + n_bgo),
        "{counts:?} vs {}",
        n_osl + n_bgo
    );

    // The audit stream recorded the calls, with actor and correlation id.
    let audit = rt.block_on(async {
        let client = async_nats::connect(hub.client_urls()[0].as_str())
            .await
            .unwrap();
        let js = jetstream::with_domain(client, "hub");
        js.get_stream("DV_HUB_AUDIT")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages
    });
    // provision x2 (attempt + outcome each); the refused calls are not
    // audited (no token, nothing done).
    assert_eq!(audit, 4, "audit records");
}

/// POSTs a provision command for `key` to the first replica that answers,
/// starting at `start`; the command id once a replica acknowledged it.
fn provision_any(hub: &Hub, start: usize, key: &str) -> Result<(usize, String), String> {
    let n = hub.replicas.len();
    let mut said = String::new();
    for k in 0..n {
        let r = (start + k) % n;
        if hub.replicas[r].is_none() {
            continue;
        }
        let base = hub.api(r);
        let (code, body) = Api::with_token(&base, &hub.token)
            .post_json(&format!("/v1/machines/{key}/provision"), "");
        if let (202, Some(id)) = (code, body["command"].as_str()) {
            return Ok((r, id.to_owned()));
        }
        said.push_str(&format!("r{}: {code} {body}; ", r + 1));
    }
    Err(said)
}

#[test]
fn a_hub_node_and_a_replica_killed_during_writes_lose_no_acknowledged_write() {
    let Some(nats) = nats_server_bin("a_hub_node_and_a_replica_killed_during_writes") else {
        return;
    };
    let (hub_bin, agent_bin) = (workspace_bin("dv-hub"), workspace_bin("dv-agent"));
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut hub = Hub::start(&nats, &hub_bin, &dir.path().join("hub"), 3, 3, &["osl-1"]);
    let osl = Site::start(&nats, &agent_bin, &dir.path().join("osl-1"), "osl-1", &hub);
    import(&osl, &inventory("OSL", 0x10, 1, 2));
    wait_hub_machines(&hub, 0, "osl-1", 2, Duration::from_secs(30));

    // Commands through the API (round robin over the replicas) and events
    // from the site, while a hub node and then a replica are SIGKILLed.
    let mut acked = Vec::new();
    let mut unanswered = Vec::new();
    for i in 0..30u32 {
        if i == 8 {
            hub.kill_node(0);
        }
        if i == 16 {
            hub.kill_replica(0);
        }
        if i % 5 == 0 {
            import(&osl, &inventory("OSL", 0x10, 3 + i, 1));
        }
        match provision_any(&hub, i as usize, "OSL-1") {
            Ok((_, id)) => acked.push(id),
            Err(said) => unanswered.push(said),
        }
    }
    assert!(
        unanswered.is_empty(),
        "no replica took these writes: {unanswered:#?}"
    );
    assert_eq!(acked.len(), 30);

    // Every acknowledged command is at the hub, on both surviving replicas.
    for replica in [1, 2] {
        let base = hub.api(replica);
        let api = Api::with_token(&base, &hub.token);
        for id in &acked {
            let seen = wait_for(Duration::from_secs(30), || {
                (api.get(&format!("/v1/commands/{id}")).0 == 200).then_some(())
            });
            assert!(
                seen.is_some(),
                "replica r{} lost command {id}; health {}; log:\n{}",
                replica + 1,
                api.get("/v1/health").1,
                hub.replica_log(replica)
            );
        }
    }
    // The site carried each command out once: one task per command.
    let tasks = wait_for(Duration::from_secs(60), || {
        let (_, tasks) = Api::new(&osl.api()).get("/v1/tasks");
        let n = tasks.as_array()?.len();
        (n >= acked.len()).then_some(n)
    });
    assert_eq!(tasks, Some(acked.len()), "tasks at the site");
    // Events reached the hub exactly once through the node's death.
    wait_caught_up(&rt, &hub, &osl, Duration::from_secs(60));
    let n = assert_exactly_once(&rt, &hub, &osl);
    assert!(n >= 2 + 6, "{n} events");
    wait_hub_machines(&hub, 2, "osl-1", 8, Duration::from_secs(30));

    // The killed replica comes back: it rebuilds its read model from the
    // streams and holds what the others hold.
    let r1 = hub.start_replica(0);
    hub.replicas[0] = Some(r1);
    let events_at = |r: usize| {
        let b = hub.api(r);
        Api::with_token(&b, &hub.token)
            .get("/v1/events?limit=10000")
            .1
            .as_array()
            .map_or(0, Vec::len)
    };
    // Bounded generously: on a loaded 2-core CI machine the restarted
    // replica's consumers can take a while to reach the degraded cluster.
    let rebuilt = wait_for(Duration::from_secs(90), || {
        (events_at(0) == events_at(1)).then_some(())
    });
    assert!(
        rebuilt.is_some(),
        "r1 rebuilt {} events, r2 has {}; r1's log:\n{}",
        events_at(0),
        events_at(1),
        hub.replica_log(0)
    );
    // Its command stream is rebuilt by its own consumer, next to the events.
    let base = hub.api(0);
    let api = Api::with_token(&base, &hub.token);
    for id in &acked {
        let seen = wait_for(Duration::from_secs(30), || {
            (api.get(&format!("/v1/commands/{id}")).0 == 200).then_some(())
        });
        assert!(seen.is_some(), "the rebuilt r1 misses command {id}");
    }
}

#[test]
fn a_tls_hub_federates_a_site_through_its_own_nats_user() {
    let Some(nats) = nats_server_bin("a_tls_hub_federates_a_site") else {
        return;
    };
    let (hub_bin, agent_bin) = (workspace_bin("dv-hub"), workspace_bin("dv-agent"));
    let dir = tempfile::tempdir().unwrap();
    // Three nodes: routes, client and leaf listeners all TLS from the
    // hub's own CA; the site connects as `site-osl-1` with its password.
    let hub = Hub::start_tls(&nats, &hub_bin, &dir.path().join("hub"), 3, 1, &["osl-1"]);
    let osl = Site::start(&nats, &agent_bin, &dir.path().join("osl-1"), "osl-1", &hub);
    import(&osl, &inventory("OSL", 0x10, 1, 2));
    let leaf = std::fs::read_to_string(osl.dir.join("leaf.conf")).unwrap();
    assert!(
        leaf.contains("tls {") && leaf.contains("site-osl-1:"),
        "{leaf}"
    );
    let node = std::fs::read_to_string(hub.dir.join("hub-2.conf")).unwrap();
    assert!(node.matches("tls {").count() >= 3, "{node}");

    let base = hub.api(0);
    assert!(base.starts_with("https://"), "{base}");
    let api = Api::with_token(&base, &hub.token).with_ca(hub.ca_file());
    let machines = wait_for(Duration::from_secs(60), || {
        let (code, m) = api.get("/v1/machines?site=osl-1");
        (code == 200 && m.as_array().map_or(0, Vec::len) == 2).then_some(m)
    });
    assert!(
        machines.is_some(),
        "no machines over TLS:\n{}",
        hub.replica_log(0)
    );
    // Down: the command reaches the site through its least-privilege user.
    let (code, accepted) = api.post_json("/v1/machines/OSL-1/provision", "");
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["command"].as_str().unwrap().to_owned();
    let task = wait_for(Duration::from_secs(30), || {
        let (code, c) = api.get(&format!("/v1/commands/{id}"));
        (code == 200 && c["task"].is_object()).then_some(c)
    });
    assert!(task.is_some(), "no task over TLS:\n{}", hub.replica_log(0));
    // Plain HTTP is not served; an unknown CA is not trusted.
    let plain = base.replacen("https://", "http://", 1);
    assert_ne!(Api::new(&plain).get("/v1/health").0, 200);
    assert_eq!(
        Api::new(&base).get("/v1/health").0,
        0,
        "curl trusted a CA it does not know"
    );
}
