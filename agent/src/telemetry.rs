//! Logging and metrics set-up for the agent process.
//!
//! Logs are `tracing` events with structured fields, written to stderr: human
//! readable on a terminal, one JSON object per line otherwise (journald, log
//! shippers), or as forced by `--log-format`. The filter comes from `DV_LOG`
//! (tracing-subscriber's env-filter syntax), default `info`.
//!
//! Metrics go through the `metrics` facade into a Prometheus recorder whose
//! text rendering `/metrics` serves.

use std::io::IsTerminal;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Human-readable, coloured.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The env var holding the log filter.
pub const LOG_ENV: &str = "DV_LOG";

/// Installs the global tracing subscriber. Call once, first thing in `main`.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Pretty => false,
        LogFormat::Json => true,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

/// Installs the Prometheus recorder and describes the agent's metrics.
pub fn init_metrics() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
            &[
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0,
            ],
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("dv_store_batch_writes".into()),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
        )?
        .install_recorder()?;
    describe();
    Ok(handle)
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "dv_store_commit_seconds",
        Unit::Seconds,
        "Time to commit one group-commit batch, fsync included."
    );
    describe_histogram!("dv_store_batch_writes", "Writes committed per batch.");
    describe_counter!(
        "dv_store_writes_total",
        "Writes handed to the store writer."
    );
    describe_counter!("dv_store_commits_total", "Batches committed.");
    describe_counter!(
        "dv_store_commit_failures_total",
        "Batches whose commit failed (their callers were told)."
    );
    describe_gauge!(
        "dv_outbox_pending",
        "Events written but not yet acknowledged by the upstream NATS server."
    );
    describe_counter!(
        "dv_http_requests_total",
        "HTTP requests served, by route and status."
    );
    describe_gauge!(
        "dv_dhcp_pool_addresses",
        "Addresses in a subnet's dynamic pools."
    );
    describe_gauge!(
        "dv_dhcp_leases",
        "Leases holding an address now, by subnet and state (bound, declined)."
    );
    describe_counter!("dv_dhcp_received_total", "DHCP messages received, by type.");
    describe_counter!("dv_dhcp_sent_total", "DHCP replies sent, by type.");
    describe_counter!(
        "dv_dhcp_dropped_total",
        "DHCP messages not answered, by reason."
    );
    describe_gauge!(
        "dv_agent_build_info",
        "Always 1; labels carry the agent version and site."
    );
}

/// An error and all its causes on one line, `outer: inner: innermost`. Errors
/// in this workspace never repeat their source in `Display`, so walking the
/// chain here prints each cause once.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
