//! NOTIFY (RFC 1996) to the configured secondaries whenever the serial moves.
//!
//! One task waits on the serial; after a short pause (so a burst of lease
//! changes sends one round, not fifty) it sends a NOTIFY for every zone to
//! every secondary over UDP and waits for the acknowledgement, retrying a few
//! times (RFC 1996 section 3.6). A secondary that never answers is logged; it
//! still catches up at the SOA refresh interval.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::catalog::fqdn;
use super::records::Records;

/// Pause after a change before notifying, to batch bursts.
const SETTLE: Duration = Duration::from_millis(200);
/// Wait for an acknowledgement this long per try.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries per secondary and zone.
const TRIES: usize = 3;

/// Notifies `secondaries` of every serial change until `cancel` fires. The
/// first round goes out at start, so secondaries learn of changes made while
/// the agent was down.
pub async fn run(records: Records, secondaries: Vec<SocketAddr>, cancel: CancellationToken) {
    if secondaries.is_empty() {
        return;
    }
    let mut changed = records.subscribe();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(SETTLE) => {}
        }
        changed.borrow_and_update();
        let catalog = records.catalog();
        let mut round = JoinSet::new();
        for zone in &catalog.source.zones {
            for secondary in &secondaries {
                round.spawn(notify_one(zone.origin.clone(), catalog.serial, *secondary));
            }
        }
        while round.join_next().await.is_some() {}
        tokio::select! {
            () = cancel.cancelled() => return,
            r = changed.changed() => if r.is_err() { return },
        }
    }
}

/// Sends one NOTIFY and waits for its acknowledgement.
pub async fn notify_one(zone: String, serial: u32, secondary: SocketAddr) -> bool {
    let Ok(name) = fqdn(&zone) else { return false };
    let bind: SocketAddr = if secondary.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open a socket for NOTIFY");
            return false;
        }
    };
    for attempt in 1..=TRIES {
        // A random id (RFC 5452 spirit), as hickory's query constructor makes.
        let mut msg = Message::query();
        msg.metadata.op_code = OpCode::Notify;
        let id = msg.metadata.id;
        msg.metadata.authoritative = true;
        let mut q = Query::query(name.clone(), RecordType::SOA);
        q.set_query_class(DNSClass::IN);
        msg.add_query(q);
        let Ok(bytes) = msg.to_vec() else {
            return false;
        };
        if let Err(e) = socket.send_to(&bytes, secondary).await {
            tracing::debug!(%secondary, error = %e, "NOTIFY send failed");
        }
        let mut buf = [0u8; 512];
        let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
        while let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
        {
            let acked = from == secondary
                && Message::from_vec(&buf[..n]).is_ok_and(|r| {
                    r.metadata.id == id && r.metadata.message_type == MessageType::Response
                });
            if acked {
                metrics::counter!("dv_dns_notify_total", "result" => "acked").increment(1);
                tracing::info!(%secondary, zone = %zone, serial, attempt, "NOTIFY acknowledged");
                return true;
            }
        }
    }
    metrics::counter!("dv_dns_notify_total", "result" => "unanswered").increment(1);
    tracing::warn!(%secondary, zone = %zone, serial, "NOTIFY not acknowledged; the secondary will catch up at its refresh");
    false
}
