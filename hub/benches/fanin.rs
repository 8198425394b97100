//! Fan-in benchmark: events per second from many sites into the hub's read
//! model, and each event's journey from the site's commit to the read model
//! (p50, p99).
//!
//! The topology is the real one, from the same configuration path as the
//! tests: a three-node hub cluster (`dv-hub nats-config`), one `dv-hub`
//! replica, and `SITES` leaf nodes (`dv-agent nats-config`), each with its
//! `DV_EVT_<SITE>` stream. A publisher stands in for each site's agent
//! outbox: it publishes codec-encoded `Message<Event>`s with `Nats-Msg-Id`
//! and waits for the site stream's acks, as the agent does.
//!
//! Two phases:
//! 1. **Burst**: `EVENTS` events per site as fast as the sites take them.
//!    Reported: the rate at which the hub's stream `DV_HUB_EVT` received
//!    them (JetStream sourcing alone, the reference) and the rate at which
//!    the read model applied them, and their ratio.
//! 2. **Steady**: `RATE` events per second per site for `SECONDS`: the
//!    commit-to-read-model latency (`applied_at - occurred_at`, same clock).
//! 3. **Agent**: site-00 also runs a real `dv-agent`; an operator imports
//!    one machine every 100 ms there (`AGENT_IMPORTS` times). Each event
//!    goes through the agent's SQLite commit, its outbox publisher, the
//!    site stream, sourcing and the read model: the latency of the whole
//!    path.
//!
//! Run with `scripts/bench-hub.sh` (release build). Prints figures; asserts
//! nothing about speed. Sizes: `SITES`, `EVENTS`, `RATE`, `SECONDS`,
//! `AGENT_IMPORTS`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use async_nats::jetstream;
use dv_protocol::{Actor, Event, EventBody, MacAddr, Message, SiteName, codec};
use dv_tests::api::Api;
use dv_tests::hub::{Hub, Leaf, Site, workspace_bin};
use dv_tests::nats::nats_server_bin;
use dv_tests::wait_for;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn site_name(i: u64) -> String {
    format!("site-{i:02}")
}

/// One event from `site`, stamped now.
fn event(site: &SiteName, n: u64) -> (String, Vec<u8>, String) {
    let mac: MacAddr = format!(
        "52:54:00:{:02x}:{:02x}:{:02x}",
        n >> 16 & 0xff,
        n >> 8 & 0xff,
        n & 0xff
    )
    .parse()
    .unwrap();
    let message = Message::from_event(
        site.clone(),
        Actor::agent(site),
        Event::new(EventBody::MachineBootReported {
            mac,
            ip: None,
            stage: "bench".into(),
            detail: format!("n={n}"),
        }),
    );
    let subject = message.body.subject(site).into_string();
    (
        subject,
        codec::encode(&message).unwrap(),
        message.envelope.id.to_string(),
    )
}

/// The ack must come from the site's own event stream.
fn check(ack: jetstream::publish::PublishAck, site: &SiteName) {
    let expected = dv_protocol::jetstream::site_events(site);
    assert_eq!(ack.stream, expected, "{ack:?}");
    assert!(!ack.duplicate, "{ack:?}");
}

/// Publishes `count` events to the site's stream, 256 in flight.
async fn publish(url: String, site: SiteName, first: u64, count: u64, per_second: Option<u64>) {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::with_domain(client, site.as_str());
    let start = Instant::now();
    let mut pending = Vec::with_capacity(256);
    for n in first..first + count {
        if let Some(rate) = per_second {
            let due = start + Duration::from_secs_f64((n - first) as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let (subject, payload, id) = event(&site, n);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        let ack = js
            .publish_with_headers(subject, headers, payload.into())
            .await
            .unwrap();
        pending.push(ack);
        if pending.len() >= 256 || per_second.is_some() {
            for ack in pending.drain(..) {
                check(ack.await.unwrap(), &site);
            }
        }
    }
    for ack in pending {
        check(ack.await.unwrap(), &site);
    }
}

/// Runs [`publish`] for every leaf site at once and waits for all.
fn publish_all(
    rt: &tokio::runtime::Runtime,
    leaves: &[Leaf],
    first: u64,
    count: u64,
    per_second: Option<u64>,
) {
    rt.block_on(async {
        let tasks: Vec<_> = leaves
            .iter()
            .map(|l| {
                let site = SiteName::new(&l.name).unwrap();
                tokio::spawn(publish(l.nats.url(), site, first, count, per_second))
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn hub_events(rt: &tokio::runtime::Runtime, hub: &Hub) -> u64 {
    let url = hub.client_urls()[0].clone();
    rt.block_on(async {
        let client = async_nats::connect(url).await.ok()?;
        let js = jetstream::with_domain(client, "hub");
        Some(
            js.get_stream("DV_HUB_EVT")
                .await
                .ok()?
                .info()
                .await
                .ok()?
                .state
                .messages,
        )
    })
    .unwrap_or(0)
}

fn model_events(hub: &Hub) -> u64 {
    let base = hub.api(0);
    let (_, health) = Api::new(&base).get("/v1/health");
    health["read_model"]["event_count"].as_u64().unwrap_or(0)
}

fn parse(t: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
}

/// Latencies (ms) of the read model's events after stream position
/// `after`, of `site` only if given.
fn latencies(hub: &Hub, after: u64, site: Option<&str>) -> Vec<f64> {
    let base = hub.api(0);
    let api = Api::with_token(&base, &hub.token);
    let mut out = Vec::new();
    let mut at = after;
    loop {
        let only = site.map(|s| format!("&site={s}")).unwrap_or_default();
        let (code, page) = api.get(&format!("/v1/events?after={at}&limit=10000{only}"));
        assert_eq!(code, 200, "{page}");
        let rows = page.as_array().unwrap();
        if rows.is_empty() {
            return out;
        }
        for r in rows {
            at = r["stream_seq"].as_u64().unwrap();
            let journey = parse(r["applied_at"].as_str().unwrap())
                - parse(r["occurred_at"].as_str().unwrap());
            out.push(journey.as_seconds_f64() * 1000.0);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let sites = env("SITES", 10);
    let events = env("EVENTS", 2000);
    let rate = env("RATE", 50);
    let seconds = env("SECONDS", 10);
    let Some(nats) = nats_server_bin("fan-in benchmark") else {
        return;
    };
    let (hub_bin, agent_bin) = (workspace_bin("dv-hub"), workspace_bin("dv-agent"));
    let dir = tempfile::tempdir().unwrap();
    // site-00 runs a real agent (phase 3); site-01.. are leaf nodes that
    // the publishers feed (phases 1 and 2).
    let names: Vec<String> = (0..=sites).map(site_name).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    eprintln!("starting a 3-node hub, 1 replica, {sites} leaf sites and one agent site ...");
    let hub = Hub::start(&nats, &hub_bin, &dir.path().join("hub"), 3, 1, &refs);
    eprintln!("hub up; starting the sites ...");
    // site-00 with its agent, the rest leaf nodes only.
    let agent_site = Site::start(
        &nats,
        &agent_bin,
        &dir.path().join(&names[0]),
        &names[0],
        &hub,
    );
    let leaves: Vec<Leaf> = names[1..]
        .iter()
        .map(|n| Leaf::start(&nats, &agent_bin, &dir.path().join(n), n, &hub))
        .collect();
    for leaf in &leaves {
        let site = SiteName::new(&leaf.name).unwrap();
        rt.block_on(async {
            let client = async_nats::connect(leaf.nats.url()).await.unwrap();
            let js = jetstream::with_domain(client, site.as_str());
            js.create_or_update_stream(dv_agent::federation::streams::event_stream_config(&site))
                .await
                .unwrap();
        });
    }
    eprintln!("sites up; warming up the sources ...");
    // Warm-up: one event per site, until every source delivers.
    publish_all(&rt, &leaves, 0, 1, None);
    // Each leaf's own warm-up event, not just any count (the agent site
    // has events of its own): then every source is delivering.
    let warmed = |site: &str| {
        let base = hub.api(0);
        let (_, events) =
            Api::with_token(&base, &hub.token).get(&format!("/v1/events?site={site}&limit=10000"));
        events
            .as_array()
            .is_some_and(|e| e.iter().any(|ev| ev["kind"] == "machine_boot_reported"))
    };
    let warm = wait_for(Duration::from_secs(180), || {
        leaves.iter().all(|l| warmed(&l.name)).then_some(())
    });
    assert!(
        warm.is_some(),
        "the sources did not start: {}",
        hub.diagnose()
    );
    let base = model_events(&hub);

    eprintln!("phase 1: burst ...");
    // Phase 1: burst.
    let total = sites * events;
    let start = Instant::now();
    publish_all(&rt, &leaves, 1, events, None);
    let published = start.elapsed();
    let mut in_stream = None;
    let mut in_model = None;
    let limit = Instant::now() + Duration::from_secs(600);
    while (in_stream.is_none() || in_model.is_none()) && Instant::now() < limit {
        if in_stream.is_none() && hub_events(&rt, &hub) >= base + total {
            in_stream = Some(start.elapsed());
        }
        if in_model.is_none() && model_events(&hub) >= base + total {
            in_model = Some(start.elapsed());
        }
        if start.elapsed().as_millis() % 5000 < 20 {
            eprintln!(
                "  ... DV_HUB_EVT {} / read model {} of {}",
                hub_events(&rt, &hub),
                model_events(&hub),
                base + total
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (Some(in_stream), Some(in_model)) = (in_stream, in_model) else {
        panic!("the hub did not receive every event in 10 minutes");
    };
    let burst_positions = base + total;

    eprintln!("phase 2: steady ...");
    // Phase 2: steady rate, latency.
    let steady_each = rate * seconds;
    publish_all(&rt, &leaves, 1 + events, steady_each, Some(rate));
    let steady_total = burst_positions + sites * steady_each;
    let done = wait_for(Duration::from_secs(120), || {
        (model_events(&hub) >= steady_total).then_some(())
    });
    assert!(done.is_some(), "the steady phase did not arrive");
    let mut lat = latencies(&hub, burst_positions, None);
    lat.sort_by(f64::total_cmp);
    let mut burst_lat = latencies(&hub, base, None);
    burst_lat.truncate(total as usize);
    burst_lat.sort_by(f64::total_cmp);

    eprintln!("phase 3: agent ...");
    // Phase 3: a real agent's events, one machine imported every 100 ms.
    let imports = env("AGENT_IMPORTS", 50);
    let before_agent = model_events(&hub);
    let agent_api = agent_site.api();
    for i in 0..imports {
        let yaml = format!(
            "machines:\n  - serial: BENCH-{i}\n    macs: [\"52:54:00:ee:{:02x}:{:02x}\"]\n",
            i / 256,
            i % 256
        );
        let (code, body) = Api::new(&agent_api).import(&yaml);
        assert_eq!(code, 200, "{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let arrived = wait_for(Duration::from_secs(60), || {
        (model_events(&hub) >= before_agent + imports).then_some(())
    });
    assert!(arrived.is_some(), "the agent's events did not arrive");
    let mut agent_lat = latencies(&hub, before_agent, Some(&names[0]));
    agent_lat.sort_by(f64::total_cmp);

    let rate_of = |d: Duration| total as f64 / d.as_secs_f64();
    println!("fan-in: {sites} sites x {events} events = {total} events (burst)");
    println!(
        "  sites accepted all in        {:>8.2} s  {:>9.0} events/s",
        published.as_secs_f64(),
        rate_of(published)
    );
    println!(
        "  DV_HUB_EVT (sourcing) has all {:>8.2} s  {:>9.0} events/s   <- JetStream alone",
        in_stream.as_secs_f64(),
        rate_of(in_stream)
    );
    println!(
        "  read model applied all        {:>8.2} s  {:>9.0} events/s   ratio {:.2}",
        in_model.as_secs_f64(),
        rate_of(in_model),
        rate_of(in_model) / rate_of(in_stream)
    );
    println!(
        "  burst latency commit->model   p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        percentile(&burst_lat, 0.5),
        percentile(&burst_lat, 0.99),
        burst_lat.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "steady: {sites} sites x {rate}/s for {seconds} s = {} events",
        sites * steady_each
    );
    println!(
        "  latency commit->model         p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (n={})",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len()
    );
    println!(
        "agent: {imports} imports at {} ({} events), one every 100 ms",
        names[0],
        agent_lat.len()
    );
    println!(
        "  latency agent commit->model   p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        percentile(&agent_lat, 0.5),
        percentile(&agent_lat, 0.99),
        agent_lat.last().copied().unwrap_or(f64::NAN)
    );
}
