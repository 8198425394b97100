//! The DNS transports: UDP and TCP (RFC 1035 section 4.2, RFC 7766) on every
//! `dns.listen` address, answering through [`super::answer`].
//!
//! UDP answers from our zones are built inline on a receive thread per
//! socket ([`crate::udp_thread`]: they are microseconds of work, less than
//! a runtime wake-up); forwarded queries run on tokio tasks, bounded by a
//! semaphore so a slow upstream cannot pile up unbounded work.
//! TCP connections carry any number of queries, each answered in order, and
//! are closed after [`TCP_IDLE`] without one (RFC 7766 section 6.2.3) or when
//! the connection limit is reached.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::DnsError;
use super::answer::{self, Client, Kind, Outcome, Transport};
use super::forward::Forwarder;
use super::packet_cache::PacketCache;
use super::records::Records;

/// Idle time before a TCP connection is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// TCP connections served at once.
const TCP_CONNECTIONS: usize = 256;
/// Forwarded UDP queries in flight at once; more are answered SERVFAIL.
const FORWARDS_IN_FLIGHT: usize = 1024;
/// Largest UDP query read (EDNS0 payloads above this are not used by
/// stub resolvers sending queries).
const UDP_QUERY_MAX: usize = 4096;
/// Receive buffer asked of the kernel per UDP socket, so a burst of queries
/// (a resolver farm restarting) queues instead of being dropped.
const UDP_RECV_BUFFER: usize = 4 << 20;

/// Who may transfer zones.
#[derive(Debug, Clone, Default)]
pub struct TransferAcl {
    /// Networks from `dns.allow_transfer` plus each secondary's address.
    pub allowed: Vec<IpNet>,
}

impl TransferAcl {
    /// Whether `ip` may transfer.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allowed.iter().any(|n| n.contains(&ip))
    }
}

/// Bound sockets, ready to serve.
#[derive(Debug)]
pub struct DnsServer {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    records: Records,
    forwarder: Option<Forwarder>,
    acl: TransferAcl,
}

struct Ctx {
    records: Records,
    forwarder: Option<Forwarder>,
    acl: TransferAcl,
    forwards: Semaphore,
    connections: Arc<Semaphore>,
}

impl DnsServer {
    /// Binds UDP and TCP on every address. Fails on the first that cannot.
    pub async fn bind(
        listen: &[SocketAddr],
        records: Records,
        forwarder: Option<Forwarder>,
        acl: TransferAcl,
    ) -> Result<DnsServer, DnsError> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        for addr in listen {
            let u = UdpSocket::bind(addr)
                .await
                .map_err(|source| DnsError::Bind {
                    addr: *addr,
                    source,
                })?;
            // Port 0 means "any": TCP takes the port UDP got, so both serve
            // the same address.
            let bound = u.local_addr().map_err(|source| DnsError::Bind {
                addr: *addr,
                source,
            })?;
            let t = TcpListener::bind(bound)
                .await
                .map_err(|source| DnsError::Bind {
                    addr: bound,
                    source,
                })?;
            udp.push(u);
            tcp.push(t);
        }
        Ok(DnsServer {
            udp,
            tcp,
            records,
            forwarder,
            acl,
        })
    }

    /// The addresses actually bound (UDP and TCP share them).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|u| u.local_addr().ok())
            .collect()
    }

    /// Serves until `cancel` fires; returns once every listener has stopped.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), DnsError> {
        let ctx = Arc::new(Ctx {
            records: self.records,
            forwarder: self.forwarder,
            acl: self.acl,
            forwards: Semaphore::new(FORWARDS_IN_FLIGHT),
            connections: Arc::new(Semaphore::new(TCP_CONNECTIONS)),
        });
        let mut tasks = JoinSet::new();
        let runtime = Handle::current();
        for socket in self.udp {
            let addr = socket.local_addr().map_err(|source| DnsError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
            let socket = Arc::new(
                socket
                    .into_std()
                    .map_err(|source| DnsError::Bind { addr, source })?,
            );
            if let Err(e) = socket2::SockRef::from(&*socket).set_recv_buffer_size(UDP_RECV_BUFFER) {
                tracing::warn!(%addr, error = %e, "cannot enlarge the DNS receive buffer");
            }
            let (ctx, runtime, reply) = (ctx.clone(), runtime.clone(), socket.clone());
            let mut cache = PacketCache::new();
            let stopped = crate::udp_thread::spawn(
                format!("dv-dns-udp-{}", addr.port()),
                socket,
                UDP_QUERY_MAX,
                cancel.clone(),
                move |query, peer| udp_query(&ctx, &runtime, &reply, &mut cache, query, peer),
            )
            .map_err(|source| DnsError::Bind { addr, source })?;
            tasks.spawn(async move {
                stopped
                    .await
                    .map_err(|source| DnsError::Serve { addr, source })
            });
        }
        for listener in self.tcp {
            tasks.spawn(tcp_loop(listener, ctx.clone(), cancel.clone()));
        }
        let mut first_error = None;
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    cancel.cancel();
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    cancel.cancel();
                    tracing::error!(error = %e, "dns listener task panicked");
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Ctx {
    fn client(&self, ip: IpAddr, transport: Transport) -> Client {
        Client {
            ip,
            transport,
            may_transfer: self.acl.permits(ip),
            forwarding: self.forwarder.is_some(),
        }
    }
}

fn count(transport: Transport, outcome: &'static str) {
    let t = match transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    };
    metrics::counter!("dv_dns_queries_total", "transport" => t, "outcome" => outcome).increment(1);
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Authoritative => "authoritative",
        Kind::Transfer => "transfer",
        Kind::Error => "error",
    }
}

/// Answers one UDP query on the receive thread (from the thread's packet
/// cache when it can); forwards on the runtime.
fn udp_query(
    ctx: &Arc<Ctx>,
    runtime: &Handle,
    socket: &Arc<std::net::UdpSocket>,
    cache: &mut PacketCache,
    query: &[u8],
    peer: SocketAddr,
) {
    let catalog = ctx.records.catalog();
    if let Some(bytes) = cache.get(&catalog, query) {
        count(Transport::Udp, kind_label(Kind::Authoritative));
        send(socket, &bytes, peer);
        return;
    }
    let client = ctx.client(peer.ip(), Transport::Udp);
    match answer::handle(&catalog, query, &client) {
        Outcome::Reply(bytes, kind) => {
            count(Transport::Udp, kind_label(kind));
            if kind == Kind::Authoritative {
                cache.put(&catalog, query, &bytes);
            }
            send(socket, &bytes, peer);
        }
        Outcome::Stream(messages) => {
            // Transfers are TCP-only; handle() never streams over UDP.
            for m in messages {
                send(socket, &m, peer);
            }
        }
        Outcome::Forward(request) => {
            count(Transport::Udp, "forwarded");
            let Some(forwarder) = ctx.forwarder.clone() else {
                return;
            };
            let Ok(permit) = ctx.forwards.try_acquire() else {
                let bytes = answer::forwarded(&request, answer::Upstream::Failed, &client);
                send(socket, &bytes, peer);
                return;
            };
            permit.forget();
            let (socket, ctx) = (socket.clone(), ctx.clone());
            runtime.spawn(async move {
                let upstream = forwarder.resolve(&request).await;
                let bytes = answer::forwarded(&request, upstream, &client);
                // A UDP send does not block short of a full send buffer.
                send(&socket, &bytes, peer);
                ctx.forwards.add_permits(1);
            });
        }
        Outcome::Drop(why) => {
            count(Transport::Udp, "dropped");
            tracing::debug!(%peer, why, "query dropped");
        }
    }
}

fn send(socket: &std::net::UdpSocket, bytes: &[u8], peer: SocketAddr) {
    if let Err(e) = socket.send_to(bytes, peer) {
        tracing::debug!(%peer, error = %e, "udp send failed");
    }
}

async fn tcp_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    cancel: CancellationToken,
) -> Result<(), DnsError> {
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    continue;
                }
            },
        };
        let Ok(permit) = ctx.connections.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "tcp connection limit reached; closing");
            continue;
        };
        let (ctx, cancel) = (ctx.clone(), cancel.clone());
        connections.spawn(async move {
            let _permit = permit;
            tokio::select! {
                () = cancel.cancelled() => {}
                r = tcp_connection(stream, peer, &ctx) => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "tcp connection ended");
                    }
                }
            }
        });
    }
    connections.shutdown().await;
    Ok(())
}

async fn tcp_connection(mut stream: TcpStream, peer: SocketAddr, ctx: &Ctx) -> std::io::Result<()> {
    let client = ctx.client(peer.ip(), Transport::Tcp);
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Err(_) => return Ok(()), // idle
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => usize::from(r?),
        };
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf[..len]))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "message body"))??;
        let catalog = ctx.records.catalog();
        let replies = match answer::handle(&catalog, &buf[..len], &client) {
            Outcome::Reply(bytes, kind) => {
                count(Transport::Tcp, kind_label(kind));
                vec![bytes]
            }
            Outcome::Stream(messages) => {
                count(Transport::Tcp, "transfer");
                messages
            }
            Outcome::Forward(request) => {
                count(Transport::Tcp, "forwarded");
                let upstream = match &ctx.forwarder {
                    Some(f) => f.resolve(&request).await,
                    None => answer::Upstream::Failed,
                };
                vec![answer::forwarded(&request, upstream, &client)]
            }
            Outcome::Drop(why) => {
                count(Transport::Tcp, "dropped");
                tracing::debug!(%peer, why, "tcp query dropped; closing");
                return Ok(());
            }
        };
        for r in replies {
            let Ok(n) = u16::try_from(r.len()) else {
                continue;
            };
            let mut framed = Vec::with_capacity(r.len() + 2);
            framed.extend_from_slice(&n.to_be_bytes());
            framed.extend_from_slice(&r);
            stream.write_all(&framed).await?;
        }
    }
}
