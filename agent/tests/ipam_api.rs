//! Networks and IPAM through the agent's API (issue 8): a network is
//! created and validated, an address is allocated with its DHCP reservation
//! and its A and PTR records, and released with all of them; refusals,
//! including one found only after the address was picked (a host name that
//! is a management-plane name), leave no allocation, reservation, record or
//! event behind.
//!
//! The API-only agent runs in production authority, so it serves no DNS of
//! its own; the records are checked through `/v1/dns/zones/{zone}`, the same
//! zones the DNS server and the router exports are built from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use dv_tests::api::Api;
use serde_json::Value;

const SITE_ZONE: &str = "lab.dataverket.test";
const REVERSE_ZONE: &str = "0.88.10.in-addr.arpa";

fn start_agent(dir: &Path) -> dv_tests::agent::RunningAgent {
    dv_tests::agent::start_api_only(Path::new(env!("CARGO_BIN_EXE_dv-agent")), dir)
        .unwrap_or_else(|(code, log)| panic!("agent did not start ({code:?}): {log:#?}"))
}

/// Rows of `table` in the agent's database, read beside the running agent
/// (WAL lets a second reader in).
fn count(dir: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("data/agent.db")).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// The records of `zone` named `name`, as `(type, data)` JSON objects.
fn records(api: &Api<'_>, zone: &str, name: &str) -> Vec<Value> {
    let (code, z) = api.get(&format!("/v1/dns/zones/{zone}"));
    assert_eq!(code, 200, "{z}");
    z["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == name)
        .cloned()
        .collect()
}

fn delete(api: &Api<'_>, path: &str) -> (u16, Value) {
    let (code, body) = api.curl(&["-X", "DELETE"], path);
    (
        code,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[test]
fn an_allocation_brings_its_reservation_and_records_and_takes_them_away() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let base = format!("http://{}", agent.http);
    let api = Api::new(&base);

    // Bad networks: each refusal names its field and creates nothing.
    let (code, body) = api.post_json(
        "/v1/networks",
        r#"{"name":"prov","vlan":5000,"purpose":"provisioning","prefix":"10.88.0.0/24"}"#,
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("1..=4094"),
        "{body}"
    );
    let (code, body) = api.post_json(
        "/v1/networks",
        r#"{"name":"prov","vlan":20,"purpose":"provisioning","prefix":"10.88.0.0/24","gateway":"10.99.0.1"}"#,
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["problems"][0]["field"], "gateway", "{body}");
    let (code, body) = api.post_json("/v1/networks", "{not json");
    assert_eq!(code, 400, "{body}");

    let (code, body) = api.post_json(
        "/v1/networks",
        r#"{"name":"prov","vlan":20,"purpose":"provisioning","prefix":"10.88.0.0/24",
            "gateway":"10.88.0.1","dhcp":true,
            "reserved":[{"first":"10.88.0.2","last":"10.88.0.9"}]}"#,
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["vlan"], 20);
    // The same VLAN or an overlapping prefix is a conflict with the site.
    let (code, body) = api.post_json(
        "/v1/networks",
        r#"{"name":"oob","vlan":20,"purpose":"management","prefix":"10.88.0.128/25"}"#,
    );
    assert_eq!(code, 409, "{body}");
    let fields: Vec<&str> = (body["problems"].as_array().unwrap().iter())
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["vlan", "prefix"], "{body}");
    let (code, body) = api.get("/v1/networks");
    assert_eq!(code, 200);
    assert_eq!(body["networks"].as_array().unwrap().len(), 1, "{body}");
    // The network's prefix has its reverse zone, still empty.
    assert!(records(&api, REVERSE_ZONE, "10.0.88.10.in-addr.arpa").is_empty());

    // Allocate: the lowest address past the gateway and the reserved range.
    let (code, a) = api.post_json(
        "/v1/networks/prov/addresses",
        r#"{"owner":"machine SN-1","hostname":"node-1","mac":"52:54:00:aa:00:01"}"#,
    );
    assert_eq!(code, 201, "{a}");
    assert_eq!(a["address"], "10.88.0.10", "{a}");
    assert_eq!(a["dhcp_reservation"]["mac"], "52:54:00:aa:00:01", "{a}");
    assert_eq!(a["dhcp_reservation"]["ip"], "10.88.0.10", "{a}");
    assert!(a["dns_record_id"].is_string(), "{a}");
    let fqdn = format!("node-1.{SITE_ZONE}");
    let forward = records(&api, SITE_ZONE, &fqdn);
    assert_eq!(forward.len(), 1, "{forward:?}");
    assert_eq!(
        (forward[0]["type"].as_str(), forward[0]["address"].as_str()),
        (Some("A"), Some("10.88.0.10"))
    );
    let reverse = records(&api, REVERSE_ZONE, "10.0.88.10.in-addr.arpa");
    assert_eq!(reverse.len(), 1, "{reverse:?}");
    assert_eq!(reverse[0]["type"], "PTR");
    assert_eq!(reverse[0]["target"], fqdn.as_str());
    let (code, list) = api.get("/v1/networks/prov/addresses");
    assert_eq!(code, 200);
    assert_eq!(
        list["addresses"][0]["dhcp_reservation"]["mac"], "52:54:00:aa:00:01",
        "{list}"
    );
    assert_eq!(count(dir.path(), "dhcp_reservation"), 1);

    // A failure midway: the address is picked and stored, then the name turns
    // out to be a management-plane identity (provisioner-01-lab lives in
    // mgmt.dataverket.test). Everything of it rolls back.
    let outbox = count(dir.path(), "outbox");
    let (_, zone_before) = api.get(&format!("/v1/dns/zones/{SITE_ZONE}"));
    let (code, body) = api.post_json(
        "/v1/networks/prov/addresses",
        r#"{"hostname":"provisioner-01-lab","mac":"52:54:00:aa:00:02"}"#,
    );
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("management-plane"),
        "{body}"
    );
    assert_eq!(count(dir.path(), "allocation"), 1);
    assert_eq!(count(dir.path(), "dhcp_reservation"), 1);
    assert_eq!(count(dir.path(), "outbox"), outbox);
    let (_, zone_after) = api.get(&format!("/v1/dns/zones/{SITE_ZONE}"));
    assert_eq!(zone_before, zone_after);
    // Refusals with clear answers, also changing nothing.
    let (code, body) = api.post_json("/v1/networks/prov/addresses", r#"{"hostname":"node-1"}"#);
    assert_eq!(code, 409, "{body}");
    let (code, body) = api.post_json("/v1/networks/prov/addresses", r#"{"address":"10.88.0.1"}"#);
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("gateway"),
        "{body}"
    );
    let (code, body) = api.post_json("/v1/networks/nope/addresses", "{}");
    assert_eq!(code, 404, "{body}");
    let (code, body) = api.post_json("/v1/networks/prov/addresses", r#"{"colour":"red"}"#);
    assert_eq!(code, 422, "{body}");
    assert_eq!(count(dir.path(), "outbox"), outbox);

    // The network cannot go while it holds an address.
    let (code, body) = delete(&api, "/v1/networks/prov");
    assert_eq!(code, 409, "{body}");

    // Release: allocation, reservation and both records go together.
    let (code, body) = delete(&api, "/v1/networks/prov/addresses/not-an-ip");
    assert_eq!(code, 400, "{body}");
    let (code, body) = delete(&api, "/v1/networks/prov/addresses/10.88.0.10");
    assert_eq!(code, 200, "{body}");
    let (code, body) = delete(&api, "/v1/networks/prov/addresses/10.88.0.10");
    assert_eq!(code, 404, "{body}");
    assert!(records(&api, SITE_ZONE, &fqdn).is_empty());
    assert!(records(&api, REVERSE_ZONE, "10.0.88.10.in-addr.arpa").is_empty());
    let (_, list) = api.get("/v1/networks/prov/addresses");
    assert!(list["addresses"].as_array().unwrap().is_empty(), "{list}");
    assert_eq!(count(dir.path(), "dhcp_reservation"), 0);
    assert_eq!(count(dir.path(), "allocation"), 0);

    // Now it can go, with its reverse zone.
    let (code, body) = delete(&api, "/v1/networks/prov");
    assert_eq!(code, 200, "{body}");
    let (code, _) = api.get("/v1/networks/prov");
    assert_eq!(code, 404);
    let (code, _) = api.get(&format!("/v1/dns/zones/{REVERSE_ZONE}"));
    assert_eq!(code, 404);

    // Every change left its event, on the Nett and DNS subjects.
    let conn = rusqlite::Connection::open(dir.path().join("data/agent.db")).unwrap();
    let subjects: Vec<String> = conn
        .prepare("SELECT subject FROM outbox ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let tail: Vec<&str> = subjects
        .iter()
        .map(|s| s.as_str())
        .filter(|s| s.contains(".nett.") || s.contains(".dns."))
        .collect();
    assert_eq!(
        tail,
        [
            "dv.lab.nett.evt.network.created",
            "dv.lab.nett.evt.prefix.added",
            "dv.lab.nett.evt.address.allocated",
            "dv.lab.dns.evt.record.upserted",
            "dv.lab.nett.evt.address.released",
            "dv.lab.dns.evt.record.removed",
            "dv.lab.nett.evt.network.deleted",
        ]
    );
    agent.stop();
}

/// An address a DHCP client leases is refused to anyone else (409 naming
/// the holder's MAC and when the lease ends), skipped by the lowest-free
/// pick, and given to the holder itself. The lease row is written beside
/// the running agent, as its DHCP server would have stored it.
#[test]
fn an_actively_leased_address_is_refused_but_to_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path());
    let base = format!("http://{}", agent.http);
    let api = Api::new(&base);
    let (code, body) = api.post_json(
        "/v1/networks",
        r#"{"name":"prov","vlan":20,"purpose":"provisioning","prefix":"10.88.0.0/24",
            "gateway":"10.88.0.1","dhcp":true,
            "reserved":[{"first":"10.88.0.2","last":"10.88.0.9"}]}"#,
    );
    assert_eq!(code, 201, "{body}");

    const HOLDER: &str = "52:54:00:00:88:42";
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("data/agent.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute(
        "INSERT INTO dhcp_lease (ip, id, prefix, mac, state, starts, expires, updated_at)
         VALUES ('10.88.0.10', '0190f0e0-0000-7000-8000-000000000001', '10.88.0.0/24', ?1,
                 'bound', ?2, ?3, ?2)",
        rusqlite::params![HOLDER, now, now + 3_600_000_000_000],
    )
    .unwrap();
    drop(conn);

    let (code, a) = api.post_json("/v1/networks/prov/addresses", r#"{"owner":"probe"}"#);
    assert_eq!(code, 201, "{a}");
    assert_eq!(a["address"], "10.88.0.11", "the leased .10 is skipped: {a}");

    let (code, body) = api.post_json(
        "/v1/networks/prov/addresses",
        r#"{"address":"10.88.0.10","mac":"52:54:00:00:88:43"}"#,
    );
    assert_eq!(code, 409, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains(HOLDER) && msg.contains("until") && msg.contains("10.88.0.10"),
        "{body}"
    );
    assert_eq!(count(dir.path(), "allocation"), 1, "nothing stored");

    let (code, a) = api.post_json(
        "/v1/networks/prov/addresses",
        &format!(r#"{{"address":"10.88.0.10","mac":"{HOLDER}"}}"#),
    );
    assert_eq!(code, 201, "the holder moves to a reservation: {a}");
    assert_eq!(a["dhcp_reservation"]["mac"], HOLDER, "{a}");
    agent.stop();
}
