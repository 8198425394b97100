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
    /// Serve DHCP even if another DHCP server answers the probe.
    pub force_dhcp: bool,
    /// Replaces `dns.listen`.
    pub dns_listen: Option<Vec<SocketAddr>>,
    /// Replaces `tftp.listen`.
    pub tftp_listen: Option<SocketAddr>,
}

/// Serves `config` until `shutdown` resolves, then shuts down cleanly.
pub async fn run(
    config: Config,
    overrides: Overrides,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let mut config = config;
    if let Some(addr) = overrides.tftp_listen {
        config.tftp.listen = addr;
    }
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
        Ok(()) => {
            let dhcp = crate::dhcp::DhcpSettings {
                force: overrides.force_dhcp,
                ..Default::default()
            };
            let dns_listen = overrides
                .dns_listen
                .clone()
                .unwrap_or(config.dns.listen.clone());
            serve_services(
                &config,
                &store,
                listen,
                dhcp,
                &dns_listen,
                metrics,
                shutdown,
            )
            .await
        }
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
    dhcp: crate::dhcp::DhcpSettings,
    dns_listen: &[SocketAddr],
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
    let dns_failed = |e: crate::dns::DnsError| ServeError::Service {
        service: "dns",
        source: Box::new(e),
    };
    // The records exist in both authority modes: production exports them.
    let records = crate::dns::Records::load(config, store)
        .await
        .map_err(dns_failed)?;
    let boot = http::boot::BootHttp::new(&config.boot).map_err(|e| ServeError::Service {
        service: "boot",
        source: Box::new(e),
    })?;
    let fallback = boot.scripts.fallback().map_err(|e| ServeError::Service {
        service: "boot",
        source: Box::new(e),
    })?;
    let app = http::router(AppState {
        boot,
        store: store.clone(),
        site: site.clone(),
        metrics,
        started: Instant::now(),
        dns: records.clone(),
        dns_upstreams: config.dns.upstreams.clone(),
    });
    let stop = cancel.clone();
    services.spawn(async move {
        // Peer addresses let the boot callback record where a machine is.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        ("http", served.map_err(ServeError::Http))
    });

    // --- further services (DHCP, TFTP, DNS) bind here and spawn into
    // `services` the same way.

    // --- TFTP: iPXE binaries from boot.firmware_dir, plus the entry script
    // `fallback.ipxe` from memory (see firmware-ipxe/README.md).
    if config.tftp.enabled {
        let mut settings = crate::tftp::Settings::new(
            config.tftp.listen,
            crate::boot::FileRoot::new(&config.boot.firmware_dir),
        );
        settings
            .memory_files
            .insert("fallback.ipxe".to_owned(), fallback.into());
        let server =
            crate::tftp::TftpServer::bind(settings)
                .await
                .map_err(|e| ServeError::Service {
                    service: "tftp",
                    source: Box::new(e),
                })?;
        let stop = cancel.clone();
        services.spawn(async move {
            let served = server.serve(stop).await.map_err(|e| ServeError::Service {
                service: "tftp",
                source: Box::new(e),
            });
            ("tftp", served)
        });
    }

    // --- DNS: only the bootstrap authority answers (seed 4.3).
    if config.site.authority == crate::config::Authority::Bootstrap {
        let forwarder =
            crate::dns::forward::Forwarder::new(&config.dns.upstreams).map_err(dns_failed)?;
        let mut acl = crate::dns::server::TransferAcl::default();
        acl.allowed
            .extend(config.dns.allow_transfer.iter().copied());
        acl.allowed.extend(
            config
                .dns
                .secondaries
                .iter()
                .map(|s| ipnet::IpNet::from(s.ip())),
        );
        let server =
            crate::dns::server::DnsServer::bind(dns_listen, records.clone(), forwarder, acl)
                .await
                .map_err(dns_failed)?;
        let addrs: Vec<String> = server
            .local_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(listen = %addrs.join(","), serial = records.catalog().serial, "dns serving");
        let stop = cancel.clone();
        services.spawn(async move { ("dns", server.run(stop).await.map_err(dns_failed)) });
        let (stop, secondaries) = (cancel.clone(), config.dns.secondaries.clone());
        let notifier = records.clone();
        // Spawned only with secondaries: a service that returns early would
        // read as "stopped on its own" and shut the agent down.
        if !secondaries.is_empty() {
            services.spawn(async move {
                crate::dns::notify::run(notifier, secondaries, stop).await;
                ("dns-notify", Ok(()))
            });
        }
    }

    // --- DHCP: probes for another server first, so a second authority
    // stops start-up here.
    let boot = crate::dhcp::BootOptions::from_config(config);
    let dhcp_failed = |e: crate::dhcp::DhcpError| ServeError::Service {
        service: "dhcp",
        source: Box::new(e),
    };
    if let Some(server) = crate::dhcp::DhcpServer::bind(config, store.clone(), boot, dhcp)
        .await
        .map_err(dhcp_failed)?
    {
        // Leases with host names become site-zone records as they change.
        let notices = server.lease_notices();
        let mirror = records.clone();
        services.spawn(async move {
            crate::dns::mirror_leases(mirror, notices).await;
            ("dns-leases", Ok(()))
        });
        let stop = cancel.clone();
        services.spawn(async move { ("dhcp", server.run(stop).await.map_err(dhcp_failed)) });
    }

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
