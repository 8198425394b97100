//! `dv-hub serve`: one replica. It connects to every hub node (the client
//! fails over between them), makes sure the hub's streams and KV buckets
//! exist, recreates its read model and rebuilds it from the streams, then
//! serves the API while ingestion keeps the model current. SIGINT or
//! SIGTERM stop it.
//!
//! With `[tls]` the client speaks TLS to the nodes (trusting only the hub
//! CA) as user `dv-hub`, and the API is HTTPS with the replica's
//! certificate; without it both are plain.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_nats::jetstream;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::config::{HUB_DOMAIN, HubConfig};
use crate::ingest::{self, Progress};
use crate::readmodel::ReadModel;
use crate::streams;

/// How long a NATS request or publish ack may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What `serve` was asked for beyond the config.
#[derive(Debug, Clone)]
pub struct Options {
    /// The replica to run.
    pub replica: String,
    /// Overrides `data_dir` for this replica's read model.
    pub data_dir: Option<PathBuf>,
}

/// A NATS client of the hub cluster, connecting in the background.
pub async fn connect(config: &HubConfig, name: &str) -> anyhow::Result<async_nats::Client> {
    let urls = config.client_urls();
    let opts = match &config.tls {
        None => async_nats::ConnectOptions::new(),
        Some(tls) => {
            let layout = tls.layout();
            let password = crate::pki::read_secret(&layout.hub_password())
                .context("[tls]: the replicas' NATS password")?;
            async_nats::ConnectOptions::with_user_and_password(
                crate::pki::HUB_USER.to_owned(),
                password.expose().to_owned(),
            )
            .require_tls(true)
            .add_root_certificates(layout.ca_cert())
        }
    };
    let opts = opts
        .name(format!("dv-hub {name}"))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(50u64 << attempts.min(5)).min(Duration::from_secs(1))
        })
        .event_callback(|event| async move {
            tracing::info!(event = %event, "nats connection");
        });
    let addrs: Vec<async_nats::ServerAddr> = urls
        .iter()
        .map(|u| u.parse())
        .collect::<Result<_, _>>()
        .context("a hub node's client URL")?;
    opts.connect(addrs)
        .await
        .context("connecting to the hub's nats-server nodes")
}

/// The hub domain's JetStream context.
pub fn jetstream(client: async_nats::Client) -> jetstream::Context {
    let mut js = jetstream::with_domain(client, HUB_DOMAIN);
    js.set_timeout(REQUEST_TIMEOUT);
    js
}

/// Runs the replica until a signal.
pub async fn run(
    config: HubConfig,
    options: Options,
    metrics: PrometheusHandle,
) -> anyhow::Result<()> {
    let Some(replica) = config.replica(&options.replica).cloned() else {
        let names: Vec<&str> = config.replicas.iter().map(|r| r.name.as_str()).collect();
        bail!(
            "hub.toml has no replica {:?}; it lists {}",
            options.replica,
            names.join(", ")
        );
    };
    let token_sha256 = match &config.token_file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the API token from {}", file.display()))?;
            Some(
                api::auth::token_digest(&text)
                    .with_context(|| format!("the token file {} is empty", file.display()))?,
            )
        }
        None => {
            tracing::warn!("hub.insecure_no_token: the API accepts calls without a token");
            None
        }
    };
    let oidc = match &config.identity {
        None => None,
        Some(identity) => {
            let ca_pem =
                match &identity.ca_file {
                    Some(file) => Some(std::fs::read(file).with_context(|| {
                        format!("[identity] ca_file: reading {}", file.display())
                    })?),
                    None => None,
                };
            let verifier = dv_identity::OidcVerifier::new(dv_identity::OidcSettings {
                issuer: identity.issuer.clone(),
                audience: identity.audience.clone(),
                user_claim: identity.user_claim.clone(),
                ca_pem,
            })
            .context("[identity]")?;
            Some(Arc::new(verifier))
        }
    };
    let limiter = Arc::new(
        dv_identity::RateLimiter::new(config.limits.requests_per_second, config.limits.burst)
            .context("[limits]")?,
    );
    let dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| config.replica_dir(&replica));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let model = ReadModel::recreate(&dir.join("readmodel.sqlite"))?;
    // Loaded before anything binds: a missing certificate stops the start.
    let config_tls = match &config.tls {
        None => None,
        Some(tls) => {
            let layout = tls.layout();
            Some(
                crate::pki::server_config(
                    &layout.api_cert(&replica.name),
                    &layout.api_key(&replica.name),
                )
                .context("[tls]: the replica's API certificate")?,
            )
        }
    };
    let listener = tokio::net::TcpListener::bind(replica.listen)
        .await
        .with_context(|| format!("binding the API to {}", replica.listen))?;

    let client = connect(&config, &replica.name).await?;
    let js = jetstream(client.clone());
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(shutdown_on_signal(cancel.clone()));

    // The cluster may still be electing its meta leader: keep trying.
    let mut attempt = 0u32;
    let (tenancy, identity_store) = loop {
        let ready = async {
            streams::ensure(&js, &config)
                .await
                .map_err(|e| e.to_string())?;
            let tenancy = crate::kv::ensure_tenancy(&js, &config)
                .await
                .map_err(|e| e.to_string())?;
            let identity = crate::kv::ensure_identity(&js, &config)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((tenancy, identity))
        };
        match ready.await {
            Ok(stores) => break stores,
            Err(e) => {
                attempt += 1;
                // The first failure, then one in ten: a cluster still
                // electing is normal, a misconfiguration must stay visible.
                if attempt % 10 == 1 {
                    tracing::warn!(error = %e, attempt, "hub streams not ready; retrying");
                }
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    };
    tracing::info!(replica = %replica.name, sites = config.sites.len(), "hub streams and KV ready");

    let progress = Arc::new(Progress::default());
    let ingest = tokio::spawn(ingest::run(
        client.clone(),
        js.clone(),
        model.clone(),
        progress.clone(),
        cancel.clone(),
    ));
    let identities =
        crate::identity::Identities::new(identity_store, crate::identity::config_grants(&config));
    match identities.load().await {
        Ok(n) => tracing::info!(records = n, "identity records loaded"),
        // The watch fills the index as soon as the bucket answers.
        Err(e) => tracing::warn!(error = %e, "identity records not loaded yet"),
    }
    let identity_watch = tokio::spawn(identities.clone().watch(cancel.clone()));
    let config = Arc::new(config);
    let supervisor = tokio::spawn(crate::sources::supervise(
        client.clone(),
        js.clone(),
        config.clone(),
        progress.clone(),
        cancel.clone(),
    ));
    let state = AppState {
        config,
        replica: replica.name.clone(),
        model,
        progress,
        js,
        tenancy,
        client: client.clone(),
        metrics,
        started: Instant::now(),
        token_sha256,
        identities,
        oidc,
        limiter,
    };
    let shutdown = cancel.clone();
    let router = api::router(state);
    match &config_tls {
        None => {
            tracing::info!(listen = %replica.listen, replica = %replica.name, "hub API serving (plain HTTP)");
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<api::limits::ClientAddr>(),
            )
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .context("serving the API")?;
        }
        Some(server_config) => {
            let listener = crate::tls::TlsListener::new(listener, server_config.clone())
                .context("the API's TLS listener")?;
            tracing::info!(listen = %replica.listen, replica = %replica.name, "hub API serving (HTTPS)");
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<api::limits::ClientAddr>(),
            )
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .context("serving the API")?;
        }
    }
    cancel.cancel();
    let _ = ingest.await;
    let _ = supervisor.await;
    let _ = identity_watch.await;
    signals.abort();
    let _ = tokio::time::timeout(Duration::from_secs(1), client.flush()).await;
    tracing::info!("hub replica stopped");
    Ok(())
}

async fn shutdown_on_signal(cancel: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("signal received; stopping");
    cancel.cancel();
}
