//! The DHCP service: binds and probes each interface, then receives,
//! handles, commits and replies.
//!
//! Each interface has a receive thread ([`crate::udp_thread`]) that
//! decides every packet at once: offers, NAKs and INFORM answers are sent
//! from that thread; a lease change is handed to the store's writer
//! ([`Store::submit`]) and its ACK is sent by the writer thread right after
//! the group commit that made it durable. So the receive thread never waits
//! on the disk, many clients' leases share one fsync, and no packet costs a
//! runtime wake-up. When the writer's queue is full, packets are dropped
//! (a client retries anyway). The lease index is behind a mutex held only
//! for the handler's decision.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhcproto::Encodable;
use dhcproto::v4::{self, MessageType};
use dv_protocol::envelope::Actor;
use dv_protocol::{LeaseState, SiteName};
use std::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::classify::{self, type_name};
use super::handler::{Arrival, Handler, Outcome};
use super::leases::LeaseIndex;
use super::probe::{self, PROBE_WINDOW};
use super::{BootOptions, DhcpError, Reservations, socket, store as lease_store};
use crate::config::{Authority, Config};
use crate::store::{Store, StoreError};

/// Largest DHCP packet read (RFC 2131 clients send at most a few hundred
/// bytes; relays and jumbo frames stay well under this).
const PACKET_MAX: usize = 9000;

/// Longest wait between two sweeps for run-out leases.
const SWEEP_MAX: Duration = Duration::from_secs(10);

/// Expirations committed per sweep (one transaction); more wait for the
/// next sweep.
const SWEEP_LIMIT: usize = 4096;

/// How often to look for an interface that did not exist at start.
const INTERFACE_RETRY: Duration = Duration::from_secs(5);

/// Start-up choices.
#[derive(Debug, Clone, Copy)]
pub struct DhcpSettings {
    /// Serve even if another DHCP server answers the probe (`--force-dhcp`).
    pub force: bool,
    /// How long the rogue-server probe listens.
    pub probe_window: Duration,
}

impl Default for DhcpSettings {
    fn default() -> Self {
        DhcpSettings {
            force: false,
            probe_window: PROBE_WINDOW,
        }
    }
}

/// State every packet task shares.
#[derive(Debug)]
struct Shared {
    handler: Handler,
    index: Mutex<LeaseIndex>,
    store: Store,
    site: SiteName,
    actor: Actor,
    local: Mutex<HashMap<(String, Ipv4Addr), Ipv4Addr>>,
    settings: DhcpSettings,
    notices: std::sync::OnceLock<mpsc::Sender<LeaseNotice>>,
    /// Time between sweeps for run-out leases: a quarter of the shortest
    /// lease time, at most [`SWEEP_MAX`], at least a second.
    sweep_every: Duration,
}

/// A committed lease change, for whoever mirrors leases (the DNS records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseNotice {
    /// The address is bound to a client that sent (or was reserved) a name.
    Bound {
        /// The address.
        ip: Ipv4Addr,
        /// The client's host name.
        hostname: String,
    },
    /// The address is no longer bound (released, declined, expired).
    Gone {
        /// The address.
        ip: Ipv4Addr,
    },
}

/// Queued notices before the mirror is considered stuck.
const NOTICE_QUEUE: usize = 1024;

/// A bound (and probed) DHCP server, ready to [`run`](DhcpServer::run).
#[derive(Debug)]
pub struct DhcpServer {
    shared: Arc<Shared>,
    sockets: Vec<(String, Arc<UdpSocket>)>,
    waiting: Vec<String>,
}

impl DhcpServer {
    /// Loads the leases, probes and binds every interface that a subnet names.
    /// `Ok(None)` when this agent does not serve DHCP (production authority,
    /// or no directly attached subnet). Fails if another server answers a
    /// probe (unless `settings.force`) or a socket cannot be bound. An
    /// interface that does not exist yet is waited for by [`Self::run`].
    /// `ipam` is the live index of IPAM's reservations, served beside the
    /// config's.
    pub async fn bind(
        config: &Config,
        store: Store,
        boot: BootOptions,
        settings: DhcpSettings,
        ipam: Reservations,
    ) -> Result<Option<DhcpServer>, DhcpError> {
        if config.site.authority != Authority::Bootstrap {
            tracing::info!("DHCP off: the site is in production authority");
            return Ok(None);
        }
        let mut interfaces: Vec<String> = Vec::new();
        for s in &config.dhcp.subnets {
            if let Some(i) = &s.interface
                && !interfaces.contains(i)
            {
                interfaces.push(i.clone());
            }
        }
        if interfaces.is_empty() {
            tracing::info!("DHCP off: no subnet names an interface");
            return Ok(None);
        }
        let entries = store
            .read(lease_store::load)
            .await
            .map_err(DhcpError::Load)?;
        let mut index = LeaseIndex::new();
        for e in entries {
            index.insert(e);
        }
        tracing::info!(
            leases = index.len(),
            ipam_reservations = ipam.current().len(),
            "DHCP leases loaded"
        );
        for subnet in &config.dhcp.subnets {
            let size: u64 = subnet.pools.iter().map(|p| p.size()).sum();
            metrics::gauge!("dv_dhcp_pool_addresses", "subnet" => subnet.prefix.to_string())
                .set(size as f64);
        }
        let shared = Arc::new(Shared {
            handler: Handler::new(config.dhcp.subnets.clone(), boot).with_ipam(ipam),
            index: Mutex::new(index),
            store,
            site: config.site.name.clone(),
            actor: Actor::agent(&config.site.name),
            local: Mutex::new(HashMap::new()),
            settings,
            notices: std::sync::OnceLock::new(),
            sweep_every: config
                .dhcp
                .subnets
                .iter()
                .map(|s| s.lease_time / 4)
                .min()
                .unwrap_or(SWEEP_MAX)
                .clamp(Duration::from_secs(1), SWEEP_MAX),
        });
        // Probe every interface at once: the windows overlap.
        let mut probes = tokio::task::JoinSet::new();
        for i in interfaces {
            let window = settings.probe_window;
            probes.spawn(async move {
                let r = probe_and_bind(&i, window, settings.force).await;
                (i, r)
            });
        }
        let mut sockets = Vec::new();
        let mut waiting = Vec::new();
        let mut failed = None;
        while let Some(done) = probes.join_next().await {
            let Ok((iface, result)) = done else {
                continue;
            };
            match result {
                Ok(sock) => sockets.push((iface, Arc::new(sock))),
                Err(e) if socket::is_no_device(&e) => {
                    tracing::warn!(interface = %iface, "DHCP interface does not exist; serving it once it appears");
                    waiting.push(iface);
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(Some(DhcpServer {
            shared,
            sockets,
            waiting,
        }))
    }

    /// Committed lease changes are announced on the returned channel from now
    /// on. A full channel drops notices with a warning rather than holding
    /// up DHCP: leases stay authoritative in the store, and the receiver
    /// re-reads them at start.
    pub fn lease_notices(&self) -> mpsc::Receiver<LeaseNotice> {
        let (tx, rx) = mpsc::channel(NOTICE_QUEUE);
        if self.shared.notices.set(tx).is_err() {
            tracing::warn!("DHCP lease notices requested twice; the first receiver keeps them");
        }
        rx
    }

    /// The interfaces bound so far.
    pub fn interfaces(&self) -> Vec<String> {
        self.sockets.iter().map(|(i, _)| i.clone()).collect()
    }

    /// Serves until `cancel` fires. Lease changes already handed to the
    /// store are committed (and acknowledged) by it, also after this returns.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), DhcpError> {
        let mut loops = tokio::task::JoinSet::new();
        loops.spawn(sweep(self.shared.clone(), cancel.clone()));
        for (iface, sock) in self.sockets {
            tracing::info!(interface = %iface, "DHCP serving");
            loops.spawn(receive(self.shared.clone(), iface, sock, cancel.clone()));
        }
        for iface in self.waiting {
            let (shared, cancel) = (self.shared.clone(), cancel.clone());
            loops.spawn(async move {
                let sock = loop {
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(INTERFACE_RETRY) => {}
                    }
                    match probe_and_bind(
                        &iface,
                        shared.settings.probe_window,
                        shared.settings.force,
                    )
                    .await
                    {
                        Ok(s) => break Arc::new(s),
                        Err(e) if socket::is_no_device(&e) => continue,
                        Err(e) => return Err(e),
                    }
                };
                tracing::info!(interface = %iface, "DHCP interface appeared; serving");
                receive(shared, iface, sock, cancel).await
            });
        }
        let mut result = Ok(());
        while let Some(done) = loops.join_next().await {
            if let Ok(Err(e)) = done {
                cancel.cancel();
                result = Err(e);
            }
        }
        result
    }
}

/// Probes `iface` (unless forced) and binds its server socket.
async fn probe_and_bind(
    iface: &str,
    window: Duration,
    force: bool,
) -> Result<UdpSocket, DhcpError> {
    match probe::probe(iface, window).await? {
        None => {}
        Some(a) if force => tracing::warn!(
            interface = iface, server = %a.server, source = %a.source,
            "another DHCP server answers; serving anyway (--force-dhcp)"
        ),
        Some(a) => {
            return Err(DhcpError::RogueServer {
                interface: iface.to_owned(),
                server: a.server,
                source_addr: a.source,
                offered: a.offered,
            });
        }
    }
    socket::bind(iface, socket::SERVER_PORT).and_then(|s| {
        s.into_std().map_err(|source| DhcpError::Socket {
            interface: iface.to_owned(),
            source,
        })
    })
}

/// Marks run-out leases expired until cancelled: their rows and
/// `dhcp.evt.lease.expired` events are committed, and their DNS names go.
async fn sweep(shared: Arc<Shared>, cancel: CancellationToken) -> Result<(), DhcpError> {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(shared.sweep_every) => {}
        }
        let changes = match shared.index.lock() {
            Ok(mut index) => index.expire(time::OffsetDateTime::now_utc(), SWEEP_LIMIT),
            Err(_) => {
                tracing::error!("DHCP lease index lock poisoned");
                continue;
            }
        };
        if changes.is_empty() {
            continue;
        }
        let entries: Vec<_> = changes.iter().map(|(e, _)| e.clone()).collect();
        let (site, actor) = (shared.site.clone(), shared.actor.clone());
        let written = shared
            .store
            .write(move |c| {
                entries
                    .iter()
                    .try_for_each(|e| lease_store::commit(c, e, &site, &actor))
            })
            .await;
        match written {
            Ok(()) => {
                metrics::counter!("dv_dhcp_expired_total").increment(changes.len() as u64);
                for (e, _) in &changes {
                    tracing::info!(mac = %e.mac, ip = %e.ip, lease = %e.id, "DHCP lease expired");
                    shared.announce(e);
                }
            }
            Err(source) => {
                // Put them back; the next sweep tries again.
                for (entry, previous) in changes {
                    shared.undo(&super::handler::Change {
                        entry,
                        previous: Some(previous),
                    });
                }
                tracing::error!(error = %crate::telemetry::error_chain(&source), "expired DHCP leases not committed; retrying at the next sweep");
            }
        }
    }
}

/// Receives on one interface until cancelled.
async fn receive(
    shared: Arc<Shared>,
    iface: String,
    sock: Arc<UdpSocket>,
    cancel: CancellationToken,
) -> Result<(), DhcpError> {
    let err = |source| DhcpError::Socket {
        interface: iface.clone(),
        source,
    };
    let reply = sock.clone();
    let name = iface.clone();
    let stopped = crate::udp_thread::spawn(
        format!("dv-dhcp-{iface}"),
        sock,
        PACKET_MAX,
        cancel,
        move |bytes, from| process(&shared, &name, &reply, bytes, from),
    )
    .map_err(err)?;
    stopped.await.map_err(err)
}

/// Handles one datagram: answers it, or hands its lease change to the store
/// with the ACK to send once the change is durable.
fn process(
    shared: &Arc<Shared>,
    iface: &str,
    sock: &Arc<UdpSocket>,
    bytes: &[u8],
    from: std::net::SocketAddr,
) {
    let started = Instant::now();
    let req = match classify::classify(bytes) {
        Ok(r) => r,
        Err(e) => {
            metrics::counter!("dv_dhcp_dropped_total", "reason" => "malformed").increment(1);
            tracing::info!(interface = iface, %from, len = bytes.len(), error = %crate::telemetry::error_chain(&e), "DHCP packet dropped");
            return;
        }
    };
    let kind = type_name(req.kind);
    metrics::counter!("dv_dhcp_received_total", "type" => kind).increment(1);
    let local = |i: &str, target: Ipv4Addr| shared.local_addr(i, target);
    let outcome = {
        let Ok(mut index) = shared.index.lock() else {
            tracing::error!("DHCP lease index lock poisoned");
            return;
        };
        shared.handler.handle(
            &mut index,
            &req,
            Arrival { interface: iface },
            &local,
            time::OffsetDateTime::now_utc(),
        )
    };
    match outcome {
        Outcome::Drop { reason } => {
            metrics::counter!("dv_dhcp_dropped_total", "reason" => reason).increment(1);
            tracing::info!(interface = iface, mac = %req.mac, msg = kind, reason, "DHCP request not answered");
        }
        Outcome::Reply { reply, reason } => {
            if reply.opts().msg_type() == Some(MessageType::Nak) {
                tracing::info!(interface = iface, mac = %req.mac, msg = kind, reason, "DHCPNAK");
            } else {
                tracing::debug!(interface = iface, mac = %req.mac, msg = kind, yiaddr = %reply.yiaddr(), boot = req.firmware_reason, "DHCP reply");
            }
            if let Some(out) = Outgoing::encode(iface, &req.msg, &reply) {
                out.send(sock, iface);
            }
        }
        Outcome::Commit { change, reply } => {
            // Encoded now, on the receive thread; the writer thread only sends.
            let ack = reply.and_then(|r| Outgoing::encode(iface, &req.msg, &r));
            let entry = change.entry.clone();
            let (site, actor) = (shared.site.clone(), shared.actor.clone());
            let done = {
                let (shared, sock, iface) = (shared.clone(), sock.clone(), iface.to_owned());
                let change = change.clone();
                move |written: Result<(), StoreError>| {
                    committed(&shared, &iface, &sock, &change, ack, written, started);
                }
            };
            let queued = shared
                .store
                .submit(move |c| lease_store::commit(c, &entry, &site, &actor), done);
            if let Err(source) = queued {
                shared.undo(&change);
                let reason = match source {
                    StoreError::Busy => "overload",
                    _ => "store closed",
                };
                metrics::counter!("dv_dhcp_dropped_total", "reason" => reason).increment(1);
                tracing::warn!(interface = iface, mac = %req.mac, reason, "DHCP lease change not queued; no reply sent");
            }
        }
    }
}

/// Runs on the store's writer thread once a lease change is committed (or
/// has failed): sends the ACK only for a durable lease.
fn committed(
    shared: &Shared,
    iface: &str,
    sock: &UdpSocket,
    change: &super::handler::Change,
    ack: Option<Outgoing>,
    written: Result<(), StoreError>,
    started: Instant,
) {
    let e = &change.entry;
    match written {
        Ok(()) => {
            if let Some(ack) = ack {
                ack.send(sock, iface);
                metrics::histogram!("dv_dhcp_ack_seconds").record(started.elapsed().as_secs_f64());
            }
            tracing::info!(
                interface = iface, mac = %e.mac, ip = %e.ip, state = %e.state,
                lease = %e.id, "DHCP lease committed"
            );
            shared.announce(e);
        }
        Err(source) => {
            // No ACK: the client retries.
            shared.undo(change);
            let err = DhcpError::Store { ip: e.ip, source };
            metrics::counter!("dv_dhcp_dropped_total", "reason" => "commit failed").increment(1);
            tracing::error!(interface = iface, mac = %e.mac, error = %crate::telemetry::error_chain(&err), "DHCP lease not committed; no reply sent");
        }
    }
}

/// An encoded reply and where it goes.
struct Outgoing {
    bytes: Vec<u8>,
    to: std::net::SocketAddrV4,
    kind: &'static str,
}

impl Outgoing {
    /// Encodes `reply` to `request`, addressed as RFC 2131 says.
    fn encode(iface: &str, request: &v4::Message, reply: &v4::Message) -> Option<Outgoing> {
        let kind = reply.opts().msg_type().map_or("other", type_name);
        match reply.to_vec() {
            Ok(bytes) => Some(Outgoing {
                bytes,
                to: socket::destination(request, reply),
                kind,
            }),
            Err(e) => {
                let err = DhcpError::Encode(e);
                tracing::error!(interface = iface, error = %crate::telemetry::error_chain(&err), "DHCP reply not sent");
                None
            }
        }
    }

    fn send(self, sock: &UdpSocket, iface: &str) {
        match sock.send_to(&self.bytes, self.to) {
            Ok(_) => metrics::counter!("dv_dhcp_sent_total", "type" => self.kind).increment(1),
            Err(e) => {
                tracing::warn!(interface = iface, to = %self.to, error = %e, msg = self.kind, "DHCP reply send failed");
            }
        }
    }
}

impl Shared {
    /// Puts the index back as it was before `change`, unless someone changed
    /// the address since (its commit failed or was never queued).
    fn undo(&self, change: &super::handler::Change) {
        let e = &change.entry;
        if let Ok(mut index) = self.index.lock()
            && index.get(e.ip) == Some(e)
        {
            index.restore(e.ip, change.previous.clone());
        }
    }

    /// Tells the lease mirror about a committed change.
    fn announce(&self, e: &super::leases::Entry) {
        let Some(tx) = self.notices.get() else {
            return;
        };
        let notice = match (&e.state, &e.hostname) {
            (LeaseState::Bound, Some(hostname)) => LeaseNotice::Bound {
                ip: e.ip,
                hostname: hostname.clone(),
            },
            (LeaseState::Bound, None) | (LeaseState::Offered, _) => return,
            _ => LeaseNotice::Gone { ip: e.ip },
        };
        if tx.try_send(notice).is_err() {
            tracing::warn!(ip = %e.ip, "lease mirror is behind; notice dropped (DNS catches up at restart)");
        }
    }

    /// Cached [`socket::local_addr_toward`].
    fn local_addr(&self, iface: &str, target: Ipv4Addr) -> Option<Ipv4Addr> {
        let key = (iface.to_owned(), target);
        if let Some(a) = self.local.lock().ok()?.get(&key) {
            return Some(*a);
        }
        match socket::local_addr_toward(iface, target) {
            Ok(a) => {
                self.local.lock().ok()?.insert(key, a);
                Some(a)
            }
            Err(e) => {
                tracing::warn!(interface = iface, %target, error = %e, "no local address toward target");
                None
            }
        }
    }
}
