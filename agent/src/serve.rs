//! `dv-agent serve`: opens the store, starts the services and runs them until
//! shutdown is requested.
//!
//! Shutdown order matters for the "nothing lost" rule: first stop taking new
//! work (the HTTP listener drains in-flight requests), then close the store,
//! which commits every write already queued before the writer thread exits.
//! Only then does the process exit 0.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use dv_protocol::Site;
use metrics_exporter_prometheus::PrometheusHandle;

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
    let registered = sites::register(&store, &record).await;
    if let Err(e) = registered {
        store.close().await;
        return Err(e.into());
    }
    metrics::gauge!(
        "dv_agent_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "site" => site.to_string()
    )
    .set(1.0);

    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(source) => {
            store.close().await;
            return Err(ServeError::Bind {
                addr: listen,
                source,
            });
        }
    };
    let local = listener.local_addr().unwrap_or(listen);
    tracing::info!(site = %site, http = %local, data_dir = %data_dir.display(), "agent serving");

    let app = http::router(AppState {
        store: store.clone(),
        site: site.clone(),
        metrics,
        started: Instant::now(),
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    tracing::info!("HTTP drained; committing queued writes");
    store.close().await;
    served.map_err(ServeError::Http)?;
    tracing::info!(site = %site, "agent stopped cleanly");
    Ok(())
}
