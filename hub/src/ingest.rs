//! Keeps the replica's read model current: ordered consumers on the hub's
//! event and command streams, from the start (a fresh read model) or from
//! the last applied position after a failure, applied in batches of what
//! is ready; and a core-NATS subscription to every site's heartbeats.
//!
//! A message that does not decode is logged, counted
//! (`dv_hub_ingest_rejected_total`) and skipped; it cannot stop the
//! stream. A consumer failure (a node killed, a leader election) restarts
//! the consumer from the position after a bounded, growing pause.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use dv_protocol::{Command, Event, Heartbeat, Message, codec};
use futures::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::readmodel::{self, ReadModel};
use crate::streams;

/// Largest batch applied in one transaction.
const BATCH: usize = 512;
/// How long a consumer may deliver nothing before the stream is asked
/// whether it should have.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// Longest pause between consumer restarts.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// The latest heartbeat of a site.
#[derive(Debug, Clone, Serialize)]
pub struct SiteBeat {
    /// When the hub received it (RFC 3339).
    pub received_at: String,
    /// Its body.
    pub heartbeat: Heartbeat,
    /// Seconds since the hub received it (filled in when read).
    pub age_seconds: f64,
    #[serde(skip)]
    received: Option<std::time::Instant>,
}

impl SiteBeat {
    /// The beat as the API shows it (`GET /v1/sites`).
    pub fn view(&self) -> dv_protocol::api::SiteHeartbeat {
        dv_protocol::api::SiteHeartbeat {
            received_at: self.received_at.clone(),
            heartbeat: self.heartbeat.clone(),
            age_seconds: self.age_seconds,
        }
    }
}

/// What the API reads about ingestion.
#[derive(Debug, Default)]
pub struct Progress {
    /// Last applied event-stream sequence.
    pub events: AtomicU64,
    /// Last applied command-stream sequence.
    pub commands: AtomicU64,
    beats: Mutex<BTreeMap<String, SiteBeat>>,
    /// Per site: the highest sequence of its own event stream that reached
    /// the hub's (from each sourced message's `Nats-Stream-Source` header).
    source_seqs: Mutex<BTreeMap<String, u64>>,
}

impl Progress {
    /// The highest sequence of `site`'s event stream that the hub holds.
    pub fn source_seq(&self, site: &str) -> u64 {
        self.source_seqs
            .lock()
            .map(|m| m.get(site).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn saw_source_seq(&self, site: &str, seq: u64) {
        if let Ok(mut m) = self.source_seqs.lock() {
            let e = m.entry(site.to_owned()).or_default();
            *e = (*e).max(seq);
        }
    }

    /// Every site's latest beat, with its age.
    pub fn beats(&self) -> BTreeMap<String, SiteBeat> {
        let mut beats = self.beats.lock().map(|b| b.clone()).unwrap_or_default();
        for beat in beats.values_mut() {
            beat.age_seconds = beat
                .received
                .map(|r| r.elapsed().as_secs_f64())
                .unwrap_or_default();
        }
        beats
    }
}

/// Runs both consumers and the heartbeat subscription until `cancel`.
pub async fn run(
    client: async_nats::Client,
    js: jetstream::Context,
    model: ReadModel,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) {
    tokio::join!(
        follow(&js, streams::EVENTS, &model, &progress, &cancel),
        follow(&js, streams::COMMANDS, &model, &progress, &cancel),
        heartbeats(&client, &progress, &cancel),
    );
}

async fn follow(
    js: &jetstream::Context,
    stream: &'static str,
    model: &ReadModel,
    progress: &Progress,
    cancel: &CancellationToken,
) {
    let mut failures: u32 = 0;
    loop {
        let position = match stream {
            streams::EVENTS => &progress.events,
            _ => &progress.commands,
        };
        let from = position.load(Ordering::Acquire) + 1;
        let result = tokio::select! {
            () = cancel.cancelled() => return,
            r = consume(js, stream, from, model, progress, position) => r,
        };
        if let Err(e) = result {
            failures += 1;
            if failures == 1 {
                tracing::warn!(stream, error = %e, "ingest consumer failed; restarting");
            } else {
                tracing::debug!(stream, error = %e, failures, "ingest consumer still failing");
            }
        }
        let pause = Duration::from_millis(100u64 << failures.min(5)).min(MAX_PAUSE);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

async fn consume(
    js: &jetstream::Context,
    name: &'static str,
    from: u64,
    model: &ReadModel,
    progress: &Progress,
    position: &AtomicU64,
) -> Result<(), String> {
    let mut stream = js.get_stream(name).await.map_err(|e| e.to_string())?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let messages = consumer.messages().await.map_err(|e| e.to_string())?;
    let mut chunks = messages.ready_chunks(BATCH);
    loop {
        let chunk = match tokio::time::timeout(IDLE_CHECK, chunks.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_idle) => {
                // Quiet is normal; quiet while the stream has moved on is
                // a consumer that died with its node without an error.
                let last = stream
                    .info()
                    .await
                    .map_err(|e| e.to_string())?
                    .state
                    .last_sequence;
                let at = position.load(Ordering::Acquire);
                if last > at {
                    return Err(format!(
                        "the consumer stalled at {at} while the stream is at {last}"
                    ));
                }
                continue;
            }
        };
        let mut events = Vec::new();
        let mut commands = Vec::new();
        let mut last = None;
        let mut failure = None;
        for item in chunk {
            let message = match item {
                Ok(m) => m,
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            };
            let Ok(info) = message.info() else {
                continue;
            };
            let seq = info.stream_sequence;
            last = Some(seq);
            if name == streams::EVENTS {
                match codec::decode::<Event>(&message.payload) {
                    Ok(m) => {
                        if let Some(sseq) = source_sequence(&message) {
                            progress.saw_source_seq(m.envelope.site.as_str(), sseq);
                        }
                        events.push((seq, m));
                    }
                    Err(e) => reject(name, seq, &e.to_string()),
                }
            } else {
                match codec::decode::<Command>(&message.payload) {
                    Ok(m) => commands.push((seq, m)),
                    Err(e) => reject(name, seq, &e.to_string()),
                }
            }
        }
        apply(model, events, commands).await?;
        if let Some(seq) = last {
            position.fetch_max(seq, Ordering::AcqRel);
            metrics::gauge!("dv_hub_ingest_position", "stream" => name).set(seq as f64);
        }
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Err("the consumer's message stream ended".to_owned())
}

/// The origin stream's sequence of a sourced message: the second field of
/// its `Nats-Stream-Source` header (`<source> <seq> ...`).
fn source_sequence(message: &jetstream::Message) -> Option<u64> {
    let header = message.headers.as_ref()?.get("Nats-Stream-Source")?;
    header.as_str().split_whitespace().nth(1)?.parse().ok()
}

fn reject(stream: &str, seq: u64, why: &str) {
    tracing::warn!(
        stream,
        seq,
        reason = why,
        "skipping a message that does not decode"
    );
    metrics::counter!("dv_hub_ingest_rejected_total", "stream" => stream.to_owned()).increment(1);
}

async fn apply(
    model: &ReadModel,
    events: Vec<(u64, Message<Event>)>,
    commands: Vec<(u64, Message<Command>)>,
) -> Result<(), String> {
    if events.is_empty() && commands.is_empty() {
        return Ok(());
    }
    let n = events.len();
    let applied = model
        .with(move |c| {
            let new = if events.is_empty() {
                0
            } else {
                readmodel::apply_events(c, &events)?
            };
            for (seq, m) in &commands {
                readmodel::apply_command(c, *seq, m)?;
            }
            Ok(new)
        })
        .await
        .map_err(|e| e.to_string())?;
    metrics::counter!("dv_hub_events_applied_total").increment(applied as u64);
    metrics::counter!("dv_hub_events_duplicate_total").increment((n - applied) as u64);
    Ok(())
}

async fn heartbeats(client: &async_nats::Client, progress: &Progress, cancel: &CancellationToken) {
    let filter = dv_protocol::subject::all_heartbeats().into_string();
    let mut sub = loop {
        match client.subscribe(filter.clone()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to heartbeats; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(MAX_PAUSE) => {}
                }
            }
        }
    };
    loop {
        let message = tokio::select! {
            () = cancel.cancelled() => return,
            m = sub.next() => m,
        };
        let Some(message) = message else { return };
        match codec::decode::<Heartbeat>(&message.payload) {
            Ok(m) => {
                let site = m.envelope.site.to_string();
                let beat = SiteBeat {
                    received_at: time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    heartbeat: m.body,
                    age_seconds: 0.0,
                    received: Some(std::time::Instant::now()),
                };
                if let Ok(mut beats) = progress.beats.lock() {
                    beats.insert(site, beat);
                }
            }
            Err(e) => reject("heartbeats", 0, &e.to_string()),
        }
    }
}
