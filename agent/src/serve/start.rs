//! One function per service: bind it (so a taken port or a second DHCP
//! server fails start-up before anything serves), then spawn it into the
//! agent's services under the shared cancellation token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;

use super::{ServeError, Services};
use crate::config::{Authority, Config};
use crate::dns::{DnsError, Records};
use crate::http::{self, AppState};
use crate::provision::runner::Provisioner;
use crate::store::Store;

/// Wraps a service's own error.
fn failed(
    service: &'static str,
) -> impl Fn(Box<dyn std::error::Error + Send + Sync>) -> ServeError {
    move |source| ServeError::Service { service, source }
}

pub(super) fn dns_failed(e: DnsError) -> ServeError {
    failed("dns")(Box::new(e))
}

/// HTTP: health, metrics, boot scripts, artifacts, callbacks and the API.
/// Returns the bound address, the fallback iPXE script TFTP serves and the
/// provisioner (federation hands it commands).
pub(super) async fn http(
    config: &Config,
    store: &Store,
    records: Records,
    reservations: crate::dhcp::Reservations,
    metrics: PrometheusHandle,
    services: &mut Services,
) -> Result<(SocketAddr, String, Arc<Provisioner>), ServeError> {
    let listen = config.http.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(listen);
    let site_key = crate::inventory::SiteKey::load_or_create(&config.site.data_dir)
        .map_err(|e| failed("site key")(Box::new(e)))?;
    let talos = crate::talos::Talos::from_config(config, site_key.clone());
    let boot = http::boot::BootHttp::with_talos(&config.boot, talos.clone())
        .map_err(|e| failed("boot")(Box::new(e)))?;
    let fallback = boot
        .scripts
        .fallback()
        .map_err(|e| failed("boot")(Box::new(e)))?;
    let switches = crate::nett::switches::Switches::new(
        store.clone(),
        config.site.name.clone(),
        config.switches.clone(),
    );
    let provisioner = Provisioner::with_switches(
        store.clone(),
        config.site.name.clone(),
        site_key.clone(),
        crate::provision::runner::ProvisionLimits {
            install: config.provision.install_timeout,
            wipe: config.provision.wipe_timeout,
            ..Default::default()
        },
        talos,
        switches.names(),
    );
    switches.set_provisioner(provisioner.clone());
    match provisioner.resume_all().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(tasks = n, "provisioning tasks resumed"),
        Err(e) => return Err(failed("provisioning")(Box::new(e))),
    }
    // An apply cut off by the agent's death is finished in the background:
    // the switch lock makes API calls on that switch wait for it, and the
    // rest of the site (DHCP, DNS, boot) does not wait for a slow switch.
    let resuming = switches.clone();
    tokio::spawn(async move {
        match resuming.resume().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(switches = n, "interrupted switch applies resumed"),
            Err(e) => {
                tracing::error!(error = %crate::telemetry::error_chain(&e), "interrupted switch applies not read; run dvnet apply")
            }
        }
    });
    switches.watch(services.cancel.clone());
    let app = http::router(AppState {
        switches,
        provisioner: provisioner.clone(),
        site_key,
        boot,
        store: store.clone(),
        site: config.site.name.clone(),
        metrics,
        started: Instant::now(),
        dns: records,
        reservations,
        dns_upstreams: config.dns.upstreams.clone(),
    });
    let auth = http::auth::ApiAuth::from_config(&config.api, config.http.listen.ip())
        .map_err(failed("api"))?;
    let app = http::auth::protect(app, auth);
    let stop = services.cancel.clone();
    services.set.spawn(async move {
        // Peer addresses let the boot callback record where a machine is.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        ("http", served.map_err(ServeError::Http))
    });
    Ok((local, fallback, provisioner))
}

/// Federation over NATS, when `[nats]` is set: outbox publisher, heartbeats
/// and the command consumer. It never fails start-up: an absent leaf node
/// only means events wait in the outbox.
pub(super) fn federation(
    config: &Config,
    store: &Store,
    provisioner: Arc<Provisioner>,
    services: &mut Services,
) {
    let Some(nats) = config.nats.clone() else {
        tracing::info!("no [nats] section: federation off; events stay in the outbox");
        return;
    };
    let federation = crate::federation::Federation {
        nats,
        site: config.site.name.clone(),
        store: store.clone(),
        provisioner,
    };
    let stop = services.cancel.clone();
    services.set.spawn(async move {
        let ran = federation
            .run(stop)
            .await
            .map_err(|e| failed("federation")(Box::new(e)));
        ("federation", ran)
    });
}

/// TFTP: iPXE binaries from `boot.firmware_dir`, plus the entry script
/// `fallback.ipxe` from memory (see firmware-ipxe/README.md).
pub(super) async fn tftp(
    config: &Config,
    fallback: String,
    services: &mut Services,
) -> Result<(), ServeError> {
    if !config.tftp.enabled {
        return Ok(());
    }
    let mut settings = crate::tftp::Settings::new(
        config.tftp.listen,
        crate::boot::FileRoot::new(&config.boot.firmware_dir),
    );
    settings
        .memory_files
        .insert("fallback.ipxe".to_owned(), fallback.into());
    let server = crate::tftp::TftpServer::bind(settings)
        .await
        .map_err(|e| failed("tftp")(Box::new(e)))?;
    let stop = services.cancel.clone();
    services.set.spawn(async move {
        let served = server
            .serve(stop)
            .await
            .map_err(|e| failed("tftp")(Box::new(e)));
        ("tftp", served)
    });
    Ok(())
}

/// DNS: only the bootstrap authority answers (seed 4.3); NOTIFY runs when
/// the site has secondaries.
pub(super) async fn dns(
    config: &Config,
    records: Records,
    services: &mut Services,
) -> Result<(), ServeError> {
    if config.site.authority != Authority::Bootstrap {
        return Ok(());
    }
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
        crate::dns::server::DnsServer::bind(&config.dns.listen, records.clone(), forwarder, acl)
            .await
            .map_err(dns_failed)?;
    let addrs: Vec<String> = server
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    tracing::info!(listen = %addrs.join(","), serial = records.catalog().serial, "dns serving");
    let stop = services.cancel.clone();
    services
        .set
        .spawn(async move { ("dns", server.run(stop).await.map_err(dns_failed)) });
    // Spawned only with secondaries: a service that returns early would read
    // as "stopped on its own" and shut the agent down.
    let secondaries = config.dns.secondaries.clone();
    if !secondaries.is_empty() {
        let stop = services.cancel.clone();
        services.set.spawn(async move {
            crate::dns::notify::run(records, secondaries, stop).await;
            ("dns-notify", Ok(()))
        });
    }
    Ok(())
}

/// DHCP: probes for another server first, so a second authority stops
/// start-up here. Its committed leases are mirrored into the DNS records.
pub(super) async fn dhcp(
    config: &Config,
    store: &Store,
    settings: crate::dhcp::DhcpSettings,
    records: Records,
    reservations: crate::dhcp::Reservations,
    services: &mut Services,
) -> Result<(), ServeError> {
    let boot = crate::dhcp::BootOptions::from_config(config);
    let dhcp_failed = |e: crate::dhcp::DhcpError| failed("dhcp")(Box::new(e));
    let Some(server) =
        crate::dhcp::DhcpServer::bind(config, store.clone(), boot, settings, reservations)
            .await
            .map_err(dhcp_failed)?
    else {
        return Ok(());
    };
    let notices = server.lease_notices();
    services.set.spawn(async move {
        crate::dns::mirror_leases(records, notices).await;
        ("dns-leases", Ok(()))
    });
    let stop = services.cancel.clone();
    services
        .set
        .spawn(async move { ("dhcp", server.run(stop).await.map_err(dhcp_failed)) });
    Ok(())
}
