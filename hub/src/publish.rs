//! Publishing to the hub's own streams with an acknowledgement, through
//! leader elections: a node that dies takes its stream leaderships with it
//! and publishes fail (no responders, timeouts) for about five seconds
//! until new leaders are elected. The same message (same `Nats-Msg-Id`) is
//! retried until its stream acknowledges it or the deadline passes; the
//! stream's duplicate window makes the retries store it once.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;

/// How long a publish keeps retrying: leader elections take about 5 s, a
/// whole-node restart longer.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// The pause between attempts.
const PAUSE: Duration = Duration::from_millis(250);

/// Publishes until `stream` acknowledges; returns the stream sequence, or
/// the last failure after [`DEADLINE`].
pub async fn acked(
    js: &jetstream::Context,
    subject: &str,
    headers: &HeaderMap,
    payload: Bytes,
    stream: &str,
) -> Result<u64, String> {
    let start = Instant::now();
    let mut last = String::from("not attempted");
    while start.elapsed() < DEADLINE {
        let attempt = async {
            let ack = js
                .publish_with_headers(subject.to_owned(), headers.clone(), payload.clone())
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        };
        match attempt.await {
            Ok(ack) if ack.stream == stream => return Ok(ack.sequence),
            Ok(ack) => last = format!("stored by stream {} instead of {stream}", ack.stream),
            Err(e) => last = e,
        }
        metrics::counter!("dv_hub_publish_retries_total", "stream" => stream.to_owned())
            .increment(1);
        tokio::time::sleep(PAUSE).await;
    }
    Err(last)
}
