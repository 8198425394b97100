//! Read-only TFTP server for boot firmware (RFC 1350, options RFC 2347,
//! blksize RFC 2348, tsize and timeout RFC 2349, windowsize RFC 7440).
//!
//! Plain PXE firmware can only fetch its first stage (undionly.kpxe,
//! ipxe.efi, snponly.efi) over TFTP; everything after that goes over HTTP.
//! So this server is deliberately small: it serves regular files from the
//! firmware root through [`FileRoot`] (no `..`, no absolute paths, no NUL,
//! no symlink out of the root), plus in-memory files such as the rendered
//! `fallback.ipxe`, and refuses writes. Why it is in-house rather than
//! async-tftp: docs/adr/0006-tftp.md.
//!
//! Each read request gets its own task and socket, bound to the listening
//! address with a new port (the server's transfer ID) so replies come from
//! the address the client spoke to. The listener never waits on a transfer.
//! Transfers are bounded in number ([`Settings::max_transfers`]) and each is
//! bounded in time by its retry budget. A retransmitted RRQ from a client
//! whose transfer is running is ignored rather than starting a second one.
//!
//! Metrics: `dv_tftp_requests_total{op}`, `dv_tftp_transfers_total{outcome}`,
//! `dv_tftp_bytes_sent_total`, `dv_tftp_retransmits_total`,
//! `dv_tftp_errors_total{code}`, `dv_tftp_active_transfers`.

pub mod packet;
pub mod transfer;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::boot::{FileRoot, PathError};
use packet::{ErrorCode, Mode, Packet, Request};
use transfer::{Limits, Outcome, Source};

/// Largest file served in netascii mode (converted in memory). Firmware
/// always uses octet; netascii exists for humans with `tftp`.
const MAX_NETASCII: u64 = 16 * 1024 * 1024;
/// How long in-flight transfers may finish after shutdown is requested.
const DRAIN: Duration = Duration::from_secs(5);

/// Why the TFTP service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TftpError {
    /// The listening socket could not be bound.
    #[error("cannot listen for TFTP on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen (`tftp.listen`).
    pub listen: SocketAddr,
    /// The firmware root (`boot.firmware_dir`).
    pub root: FileRoot,
    /// Files served from memory, by name; they shadow the root.
    pub memory_files: HashMap<String, Bytes>,
    /// Negotiation limits and retransmission.
    pub limits: Limits,
    /// Transfers running at once; more requests get "server busy".
    pub max_transfers: usize,
}

impl Settings {
    /// Defaults for serving `root` on `listen`.
    pub fn new(listen: SocketAddr, root: FileRoot) -> Self {
        Settings {
            listen,
            root,
            memory_files: HashMap::new(),
            limits: Limits::default(),
            max_transfers: 256,
        }
    }
}

/// A bound TFTP server.
#[derive(Debug)]
pub struct TftpServer {
    socket: UdpSocket,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    settings: Settings,
    active: Mutex<HashSet<SocketAddr>>,
}

impl TftpServer {
    /// Binds the listening socket.
    pub async fn bind(settings: Settings) -> Result<TftpServer, TftpError> {
        let addr = settings.listen;
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| TftpError::Bind { addr, source })?;
        Ok(TftpServer {
            socket,
            shared: Arc::new(Shared {
                settings,
                active: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The bound address (the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .unwrap_or(self.shared.settings.listen)
    }

    /// Serves until `cancel` fires, then gives running transfers a few
    /// seconds to finish and stops the rest.
    pub async fn serve(self, cancel: CancellationToken) -> Result<(), TftpError> {
        let mut transfers: JoinSet<()> = JoinSet::new();
        let mut buf = vec![0u8; 2048];
        tracing::info!(listen = %self.local_addr(), root = %self.shared.settings.root.dir().display(), "tftp serving");
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(_) = transfers.join_next(), if !transfers.is_empty() => {}
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, peer)) => self.dispatch(&buf[..n], peer, &mut transfers, &cancel).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "tftp: receive failed");
                        // Never spin on a persistent socket error.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
        let drained = tokio::time::timeout(DRAIN, async {
            while transfers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = transfers.len(),
                "tftp: transfers still running at shutdown; stopped"
            );
            transfers.abort_all();
        }
        Ok(())
    }

    async fn dispatch(
        &self,
        datagram: &[u8],
        peer: SocketAddr,
        transfers: &mut JoinSet<()>,
        cancel: &CancellationToken,
    ) {
        let reply = |code, message: &str| {
            metrics::counter!("dv_tftp_errors_total", "code" => (code as u16).to_string())
                .increment(1);
            packet::error(code, message)
        };
        let answer = match packet::parse(datagram) {
            Ok(Packet::Read(req)) => {
                metrics::counter!("dv_tftp_requests_total", "op" => "read").increment(1);
                let Ok(mut active) = self.shared.active.lock() else {
                    return;
                };
                if active.contains(&peer) {
                    // The client resent its RRQ before our first DATA arrived.
                    return;
                }
                if active.len() >= self.shared.settings.max_transfers {
                    tracing::warn!(%peer, file = %req.filename, "tftp: too many transfers; refused");
                    reply(ErrorCode::Undefined, "server busy; try again")
                } else {
                    active.insert(peer);
                    drop(active);
                    let shared = self.shared.clone();
                    let cancel = cancel.clone();
                    transfers.spawn(async move {
                        metrics::gauge!("dv_tftp_active_transfers").increment(1.0);
                        serve_read(&shared, peer, req, &cancel).await;
                        metrics::gauge!("dv_tftp_active_transfers").decrement(1.0);
                        if let Ok(mut active) = shared.active.lock() {
                            active.remove(&peer);
                        }
                    });
                    return;
                }
            }
            Ok(Packet::Write(req)) => {
                metrics::counter!("dv_tftp_requests_total", "op" => "write").increment(1);
                tracing::info!(%peer, file = %req.filename, "tftp: write refused");
                reply(
                    ErrorCode::AccessViolation,
                    "this server is read-only; writes are refused",
                )
            }
            // Late ACKs and ERRORs of finished transfers land here; harmless.
            Ok(Packet::Ack(_) | Packet::Error { .. }) => return,
            Ok(Packet::Data { .. } | Packet::Oack) => {
                metrics::counter!("dv_tftp_requests_total", "op" => "invalid").increment(1);
                reply(
                    ErrorCode::UnknownTid,
                    "no transfer on this port; send RRQ first",
                )
            }
            Err(e) => {
                metrics::counter!("dv_tftp_requests_total", "op" => "invalid").increment(1);
                tracing::debug!(%peer, error = %e, "tftp: malformed request");
                reply(
                    ErrorCode::IllegalOperation,
                    &format!("malformed request: {e}"),
                )
            }
        };
        if let Err(e) = self.socket.send_to(&answer, peer).await {
            tracing::debug!(%peer, error = %e, "tftp: cannot send error");
        }
    }
}

/// Opens the requested file and runs the transfer from a fresh socket.
async fn serve_read(shared: &Shared, peer: SocketAddr, req: Request, cancel: &CancellationToken) {
    let settings = &shared.settings;
    let started = Instant::now();
    let local = SocketAddr::new(settings.listen.ip(), 0);
    let socket = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "tftp: cannot bind a transfer socket");
            return;
        }
    };
    if let Err(e) = socket.connect(peer).await {
        tracing::warn!(%peer, error = %e, "tftp: cannot connect a transfer socket");
        return;
    }
    let opened = open(settings, &req).await;
    let (source, len) = match opened {
        Ok(found) => found,
        Err((code, message)) => {
            metrics::counter!("dv_tftp_errors_total", "code" => (code as u16).to_string())
                .increment(1);
            let outcome = if code == ErrorCode::NotFound {
                "not_found"
            } else {
                "refused"
            };
            metrics::counter!("dv_tftp_transfers_total", "outcome" => outcome).increment(1);
            tracing::info!(%peer, file = %req.filename, reason = %message, "tftp: request refused");
            let _ = socket.send(&packet::error(code, &message)).await;
            return;
        }
    };
    let (negotiated, oack) = transfer::negotiate(&req, len, &settings.limits);
    let outcome = transfer::run(&socket, negotiated, oack, source, &settings.limits, cancel).await;
    let ms = started.elapsed().as_millis() as u64;
    let (label, bytes) = match &outcome {
        Outcome::Done { bytes, retransmits } => {
            metrics::counter!("dv_tftp_retransmits_total").increment(*retransmits);
            tracing::info!(%peer, file = %req.filename, bytes, blksize = negotiated.blksize,
                windowsize = negotiated.windowsize, retransmits, ms, "tftp: sent");
            ("ok", *bytes)
        }
        Outcome::Aborted { code, message } => {
            tracing::info!(%peer, file = %req.filename, code, message = %message, ms, "tftp: client aborted");
            ("aborted", 0)
        }
        Outcome::TimedOut { bytes } => {
            tracing::warn!(%peer, file = %req.filename, bytes, ms, "tftp: client stopped answering");
            ("timeout", *bytes)
        }
        Outcome::Failed(e) => {
            tracing::warn!(%peer, file = %req.filename, error = %e, "tftp: transfer failed");
            let _ = socket
                .send(&packet::error(ErrorCode::Undefined, "read error"))
                .await;
            ("error", 0)
        }
        Outcome::Cancelled => ("cancelled", 0),
    };
    metrics::counter!("dv_tftp_transfers_total", "outcome" => label).increment(1);
    metrics::counter!("dv_tftp_bytes_sent_total").increment(bytes);
}

/// Finds the file: memory files first, then the root. The error is the
/// code and text of the ERROR packet.
async fn open(settings: &Settings, req: &Request) -> Result<(Source, u64), (ErrorCode, String)> {
    let name = req.filename.trim_start_matches("./");
    let (source, len) = if let Some(bytes) = settings.memory_files.get(name) {
        let len = bytes.len() as u64;
        (
            Source::Memory {
                bytes: bytes.clone(),
                pos: 0,
            },
            len,
        )
    } else {
        let root = settings.root.clone();
        let owned = name.to_owned();
        let resolved = tokio::task::spawn_blocking(move || root.resolve(&owned))
            .await
            .map_err(|_| (ErrorCode::Undefined, "internal error".to_owned()))?
            .map_err(|e| refusal(name, &e))?;
        let file = tokio::fs::File::open(&resolved.path)
            .await
            .map_err(|_| (ErrorCode::AccessViolation, format!("{name}: cannot open")))?;
        let file = tokio::io::BufReader::with_capacity(transfer::FILE_BUFFER, file);
        (Source::File(file), resolved.len)
    };
    if req.mode == Mode::Octet {
        return Ok((source, len));
    }
    if len > MAX_NETASCII {
        return Err((
            ErrorCode::Undefined,
            format!("{name}: too large for netascii mode; use octet (binary)"),
        ));
    }
    let mut raw = Vec::with_capacity(len as usize);
    let mut source = source;
    match &mut source {
        Source::File(file) => {
            use tokio::io::AsyncReadExt;
            file.read_to_end(&mut raw)
                .await
                .map_err(|_| (ErrorCode::Undefined, format!("{name}: read error")))?;
        }
        Source::Memory { bytes, .. } => raw.extend_from_slice(bytes),
    }
    let converted = Bytes::from(transfer::to_netascii(&raw));
    let len = converted.len() as u64;
    Ok((
        Source::Memory {
            bytes: converted,
            pos: 0,
        },
        len,
    ))
}

fn refusal(name: &str, e: &PathError) -> (ErrorCode, String) {
    // The client sees what was wrong with its request, never server paths.
    let shown: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
    match e {
        PathError::NotFound | PathError::NotAFile => {
            (ErrorCode::NotFound, format!("{shown}: file not found"))
        }
        PathError::Root { .. } | PathError::Io(_) => {
            tracing::error!(error = %crate::telemetry::error_chain(e), "tftp: firmware root unreadable");
            (
                ErrorCode::NotFound,
                format!("{shown}: firmware directory unavailable"),
            )
        }
        other => (
            ErrorCode::AccessViolation,
            format!("{shown}: access violation: {other}"),
        ),
    }
}
