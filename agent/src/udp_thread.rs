//! Blocking UDP receive loops, one dedicated thread per socket, for the
//! packet services that answer without waiting on anything (DNS answers,
//! DHCP offers; DHCP acks wait on the store, which calls back).
//!
//! Why not a tokio task: measured with `perf` under dnsperf and perfdhcp
//! load, scheduler wake-ups and context switches between the runtime's
//! threads were most of the agent's CPU per packet (the answers themselves
//! were a few percent). A thread asleep in recvfrom(2) is woken by the
//! kernel directly, and under load it does not sleep at all. NSD and Kea
//! are built the same way.
//!
//! An idle loop wakes every [`POLL`] to notice cancellation, so stopping
//! takes at most that long.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How often an idle loop checks whether it should stop.
pub const POLL: Duration = Duration::from_millis(200);

/// Consecutive receive errors (other than timeouts and ICMP reports about
/// one peer) after which the loop gives up instead of spinning.
const MAX_ERRORS: u32 = 1000;

/// Starts a thread named `name` that receives datagrams of up to `buf_size`
/// bytes on `socket` and hands each to `on_packet`, until `cancel` fires.
/// The returned future resolves when the thread has stopped: `Ok` after
/// cancellation, `Err` if the socket failed for good.
///
/// The socket is switched to blocking mode with a [`POLL`] read timeout;
/// other threads may keep sending on it.
pub fn spawn<H>(
    name: String,
    socket: Arc<UdpSocket>,
    buf_size: usize,
    cancel: CancellationToken,
    mut on_packet: H,
) -> io::Result<impl Future<Output = io::Result<()>> + Send + 'static>
where
    H: FnMut(&[u8], SocketAddr) + Send + 'static,
{
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(POLL))?;
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new().name(name).spawn(move || {
        let mut buf = vec![0u8; buf_size];
        let mut errors = 0u32;
        let result = loop {
            if cancel.is_cancelled() {
                break Ok(());
            }
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    errors = 0;
                    on_packet(&buf[..n], from);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if is_about_one_peer(&e) => {
                    tracing::debug!(error = %e, "udp receive: ICMP report from an earlier send");
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    errors += 1;
                    tracing::warn!(error = %e, errors, "udp receive failed");
                    if errors >= MAX_ERRORS {
                        break Err(e);
                    }
                }
            }
        };
        let _ = tx.send(result);
    })?;
    Ok(async move {
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("udp receive thread panicked")))
    })
}

/// Linux reports ICMP errors for earlier sends on the next receive; they
/// concern one peer, not the socket.
fn is_about_one_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn echoes_until_cancelled_then_stops_within_the_poll_interval() {
        let server = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = server.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let reply = server.clone();
        let stopped = spawn(
            "test-udp".into(),
            server,
            512,
            cancel.clone(),
            move |b, from| {
                reply.send_to(b, from).unwrap();
            },
        )
        .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        for word in [&b"one"[..], b"two"] {
            client.send_to(word, addr).unwrap();
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], word);
        }
        cancel.cancel();
        tokio::time::timeout(POLL * 5, stopped)
            .await
            .unwrap()
            .unwrap();
    }
}
