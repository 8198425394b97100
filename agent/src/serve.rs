//! `dv-agent serve`: opens the store, starts the services and runs them until
//! shutdown is requested.
//!
//! Shutdown order matters for the "nothing lost" rule: first every service
//! stops taking new work and finishes what it has in flight (HTTP drains its
//! requests), then the store closes, committing every write already queued
//! before the writer thread exits. Only then does the process exit 0.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use dv_protocol::Site;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::store::{Store, StoreError, sites};

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The store could not be opened.
    #[error("cannot open the store")]
    Store(#[from] StoreError),
    /// The configured site is not a valid site record.
    #[error("the configured site is not valid: {detail}")]
    Site {
        /// What is wrong with it.
        detail: String,
    },
    /// The HTTP listener could not bind.
    #[error("cannot listen for HTTP on {addr}")]
    Bind {
        /// The address from the config (or `--listen`).
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A service other than HTTP failed.
    #[error("{service} failed")]
    Service {
        /// Which service.
        service: &'static str,
        /// Its error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The HTTP server failed while running.
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
}

/// Command-line overrides of the config file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Replaces `site.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Replaces `http.listen`.
    pub listen: Option<SocketAddr>,
}

/// Serves `config` until `shutdown` resolves, then shuts down cleanly.
pub async fn run(
    config: Config,
    overrides: Overrides,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let data_dir = overrides.data_dir.unwrap_or(config.site.data_dir.clone());
    let listen = overrides.listen.unwrap_or(config.http.listen);
    let site = config.site.name.clone();

    // The config loader already enforces the same rules; this conversion only
    // turns its checked strings into protocol types.
    let record = config
        .site
        .domain
        .parse()
        .map_err(|e: dv_protocol::DnsNameError| e.to_string())
        .and_then(|domain| Site::new(site.clone(), domain, None).map_err(|e| e.to_string()))
        .map_err(|detail| ServeError::Site { detail })?;
    let store = Store::open(&data_dir)?;
    let result = match sites::register(&store, &record).await {
        Ok(()) => serve_services(&config, &store, listen, metrics, shutdown).await,
        Err(e) => Err(e.into()),
    };
    // Every service has stopped taking work; commit what they queued.
    tracing::info!("services stopped; committing queued writes");
    store.close().await;
    result?;
    tracing::info!(site = %site, "agent stopped cleanly");
    Ok(())
}

/// What a service task returns: its name and how it ended.
type ServiceExit = (&'static str, Result<(), ServeError>);

/// Binds every service, then runs them until `shutdown` resolves or one of
/// them fails; then cancels the rest and waits for them to drain.
///
/// Services bind before anything serves, so a port that is taken (or a second
/// DHCP server on the segment) stops start-up with a clear error instead of a
/// half-started agent. Each service gets `cancel` and must return soon after
/// it fires, having finished its in-flight work.
async fn serve_services(
    config: &Config,
    store: &Store,
    listen: SocketAddr,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let site = config.site.name.clone();
    metrics::gauge!(
        "dv_agent_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "site" => site.to_string()
    )
    .set(1.0);
    let cancel = CancellationToken::new();
    let mut services: JoinSet<ServiceExit> = JoinSet::new();

    // --- HTTP: health, metrics (and, as they land, boot scripts and the API).
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(listen);
    let app = http::router(AppState {
        store: store.clone(),
        site: site.clone(),
        metrics,
        started: Instant::now(),
    });
    let stop = cancel.clone();
    services.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        ("http", served.map_err(ServeError::Http))
    });

    // --- further services (DHCP, TFTP, DNS) bind here and spawn into
    // `services` the same way.

    tracing::info!(site = %site, http = %local, "agent serving");
    tokio::select! {
        () = shutdown => {}
        Some(exit) = services.join_next() => {
            match exit {
                Ok((name, Ok(()))) => tracing::error!(service = name, "service stopped on its own; shutting down"),
                Ok((name, Err(e))) => tracing::error!(service = name, error = %crate::telemetry::error_chain(&e), "service failed; shutting down"),
                Err(e) => tracing::error!(error = %e, "service task panicked; shutting down"),
            }
        }
    }
    cancel.cancel();
    let mut first_error = None;
    while let Some(exit) = services.join_next().await {
        match exit {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(e))) => {
                tracing::error!(service = name, error = %crate::telemetry::error_chain(&e), "service failed while stopping");
                first_error.get_or_insert(e);
            }
            Err(e) => {
                tracing::error!(error = %e, "service task panicked");
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
