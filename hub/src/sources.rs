//! Keeps the sourcing of every site's events moving.
//!
//! When a source of `DV_HUB_EVT` fails (the site's leaf link is cut),
//! nats-server retries it after 10 s x the failures so far, up to 2 min
//! apart, and does not retry sooner when the link returns. So after a long
//! cut a site's events could wait minutes at the site while its
//! heartbeats, plain NATS, already arrive again.
//!
//! This loop notices exactly that: a site that is reachable (fresh
//! heartbeat) whose own event stream (asked through `$JS.<site>.API`) holds
//! a later sequence than the hub has received from it, with no progress
//! for [`STALLED`]. It then asks the hub stream's leader to step down: the
//! new leader sets every source up again at once, resuming each from the
//! last sequence it stored (the `Nats-Stream-Source` header), so nothing is
//! skipped or stored twice. A single-node hub has no other leader: there
//! the server's own retry is all there is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use crate::config::HubConfig;
use crate::ingest::Progress;
use crate::streams;

/// How often sources are checked.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// A site behind this long without progress is stalled.
pub const STALLED: Duration = Duration::from_secs(15);
/// A heartbeat younger than this means the site is reachable now.
const FRESH: Duration = Duration::from_secs(30);
/// At most one step-down per this period per replica.
const KICK_AT_MOST_EVERY: Duration = Duration::from_secs(30);
/// How long to wait for a site's stream info.
const ASK_SITE: Duration = Duration::from_secs(2);

/// Per site: since when the hub has been behind, at which received
/// sequence.
#[derive(Debug, Default)]
pub struct Watch {
    behind: BTreeMap<String, (Instant, u64)>,
}

impl Watch {
    /// Records one observation of `site` (`at_site`: its stream's last
    /// sequence; `at_hub`: the last the hub received) and says whether it
    /// has been behind without progress for [`STALLED`].
    pub fn observe(&mut self, site: &str, at_site: u64, at_hub: u64, now: Instant) -> bool {
        if at_site <= at_hub {
            self.behind.remove(site);
            return false;
        }
        let entry = self.behind.entry(site.to_owned()).or_insert((now, at_hub));
        if at_hub > entry.1 {
            *entry = (now, at_hub);
        }
        now.duration_since(entry.0) >= STALLED
    }

    /// Forgets every observation (after a restart of the sources).
    pub fn clear(&mut self) {
        self.behind.clear();
    }
}

/// Runs until `cancel`.
pub async fn supervise(
    client: async_nats::Client,
    js: jetstream::Context,
    config: Arc<HubConfig>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) {
    if config.stream_replicas() < 2 {
        return;
    }
    let mut watch = Watch::default();
    let mut last_kick: Option<Instant> = None;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
        let beats = progress.beats();
        let mut stalled = Vec::new();
        for site in &config.sites {
            let fresh = beats
                .get(site.as_str())
                .is_some_and(|b| b.age_seconds < FRESH.as_secs_f64());
            if !fresh {
                continue;
            }
            let Some(at_site) = site_last_seq(&client, site).await else {
                continue;
            };
            let at_hub = progress.source_seq(site.as_str());
            if watch.observe(site.as_str(), at_site, at_hub, Instant::now()) {
                stalled.push(format!("{site} (site at {at_site}, hub at {at_hub})"));
            }
        }
        if stalled.is_empty() || last_kick.is_some_and(|t| t.elapsed() < KICK_AT_MOST_EVERY) {
            continue;
        }
        tracing::info!(
            sites = ?stalled,
            "event sourcing stalled while the sites are reachable; the stream leader steps down to restart it"
        );
        let answer: Result<serde_json::Value, _> = js
            .request(
                format!("STREAM.LEADER.STEPDOWN.{}", streams::EVENTS),
                &serde_json::json!({}),
            )
            .await;
        metrics::counter!("dv_hub_source_restarts_total").increment(1);
        if let Err(e) = answer {
            tracing::warn!(error = %e, "stream leader step-down failed");
        }
        last_kick = Some(Instant::now());
        watch.clear();
    }
}

/// The last sequence of `site`'s event stream, asked in its own domain
/// across the leaf link; `None` when it does not answer.
async fn site_last_seq(client: &async_nats::Client, site: &dv_protocol::SiteName) -> Option<u64> {
    let mut js = jetstream::with_domain(client.clone(), site.as_str());
    js.set_timeout(ASK_SITE);
    let ask = async {
        let mut stream = js.get_stream(streams::site_event_stream(site)).await.ok()?;
        Some(stream.info().await.ok()?.state.last_sequence)
    };
    tokio::time::timeout(ASK_SITE * 2, ask).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lag_without_progress_for_the_whole_period_is_a_stall() {
        let mut w = Watch::default();
        let t0 = Instant::now();
        assert!(!w.observe("a", 10, 10, t0), "caught up");
        assert!(!w.observe("a", 12, 10, t0), "behind, just now");
        assert!(!w.observe("a", 14, 11, t0 + STALLED), "behind but moving");
        assert!(!w.observe("a", 14, 11, t0 + STALLED + Duration::from_secs(5)));
        assert!(
            w.observe("a", 14, 11, t0 + STALLED * 2),
            "no progress for STALLED"
        );
        assert!(!w.observe("a", 14, 14, t0 + STALLED * 3), "caught up again");
        assert!(
            !w.observe("b", 3, 1, t0 + STALLED * 3),
            "sites are separate"
        );
        w.clear();
        assert!(!w.observe("b", 3, 1, t0 + STALLED * 9));
    }
}
