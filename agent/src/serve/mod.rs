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

use dv_protocol::Site;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
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
    /// Serve DHCP even if another DHCP server answers the probe.
    pub force_dhcp: bool,
    /// Replaces `dns.listen`.
    pub dns_listen: Option<Vec<SocketAddr>>,
    /// Replaces `tftp.listen`.
    pub tftp_listen: Option<SocketAddr>,
}

impl Overrides {
    /// Writes the overrides into `config`, so every service reads one truth.
    fn apply(self, config: &mut Config) -> crate::dhcp::DhcpSettings {
        if let Some(dir) = self.data_dir {
            config.site.data_dir = dir;
        }
        if let Some(addr) = self.listen {
            config.http.listen = addr;
        }
        if let Some(addrs) = self.dns_listen {
            config.dns.listen = addrs;
        }
        if let Some(addr) = self.tftp_listen {
            config.tftp.listen = addr;
        }
        crate::dhcp::DhcpSettings {
            force: self.force_dhcp,
            ..Default::default()
        }
    }
}

/// Serves `config` until `shutdown` resolves, then shuts down cleanly.
pub async fn run(
    mut config: Config,
    overrides: Overrides,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let dhcp = overrides.apply(&mut config);
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
    let store = Store::open(&config.site.data_dir)?;
    let result = match sites::register(&store, &record).await {
        Ok(()) => serve_services(&config, &store, dhcp, metrics, shutdown).await,
        Err(e) => Err(e.into()),
    };
    // Every service has stopped taking work; commit what they queued.
    tracing::info!("services stopped; committing queued writes");
    store.close().await;
    result?;
    tracing::info!(site = %site, "agent stopped cleanly");
    Ok(())
}

mod start;

/// What a service task returns: its name and how it ended.
type ServiceExit = (&'static str, Result<(), ServeError>);

/// The running services and the token that stops them.
struct Services {
    set: JoinSet<ServiceExit>,
    cancel: CancellationToken,
}

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
    dhcp: crate::dhcp::DhcpSettings,
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
    let mut services = Services {
        set: JoinSet::new(),
        cancel: cancel.clone(),
    };
    // The records exist in both authority modes: production exports them.
    let records = crate::dns::Records::load(config, store)
        .await
        .map_err(start::dns_failed)?;
    // IPAM's DHCP reservations: the API refreshes them after each change,
    // the DHCP server answers from them.
    let reservations = crate::dhcp::Reservations::load(&config.dhcp.subnets, store)
        .await
        .map_err(|e| ServeError::Service {
            service: "dhcp reservations",
            source: Box::new(e),
        })?;
    let (local, fallback, provisioner) = start::http(
        config,
        store,
        records.clone(),
        reservations.clone(),
        metrics,
        &mut services,
    )
    .await?;
    start::federation(config, store, provisioner, &mut services);
    start::tftp(config, fallback, &mut services).await?;
    start::dns(config, records.clone(), &mut services).await?;
    start::dhcp(config, store, dhcp, records, reservations, &mut services).await?;
    let mut services = services.set;

    tracing::info!(site = %site, http = %local, "agent serving");
    // A service that ends before shutdown was asked for takes the agent down
    // with a non-zero exit, so a supervisor restarts it.
    let mut first_error = tokio::select! {
        () = shutdown => None,
        Some(exit) = services.join_next() => Some(early_exit(exit)),
    };
    cancel.cancel();
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

/// The error a service that ended early is reported as.
fn early_exit(exit: Result<ServiceExit, tokio::task::JoinError>) -> ServeError {
    let (service, detail) = match exit {
        Ok((name, Ok(()))) => (name, "stopped on its own".to_owned()),
        Ok((name, Err(e))) => {
            tracing::error!(service = name, error = %crate::telemetry::error_chain(&e), "service failed; shutting down");
            return e;
        }
        Err(e) => ("unknown", format!("task panicked: {e}")),
    };
    tracing::error!(service, detail, "service ended; shutting down");
    ServeError::Service {
        service,
        source: detail.into(),
    }
}
