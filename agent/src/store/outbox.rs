//! The transactional outbox: events waiting to be published upstream.
//!
//! A change and its event are written in one transaction ([`append`] takes the
//! writer's connection inside [`super::Store::write`]), so after a crash either
//! both exist or neither does. The federation publisher reads [`pending`] rows
//! in order, publishes each with `Nats-Msg-Id` = event id (the server drops
//! duplicates), and calls [`mark_sent`] only after the server's ack. An agent
//! with no uplink keeps appending; nothing is lost and nothing waits.

use dv_protocol::{Event, Message, codec};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Position in the outbox; publish order.
    pub seq: i64,
    /// The event id (the `Nats-Msg-Id`).
    pub id: String,
    /// The NATS subject to publish on.
    pub subject: String,
    /// The codec-encoded message.
    pub payload: Vec<u8>,
}

/// Appends an event; call inside the transaction that makes the change.
pub fn append(
    conn: &Connection,
    id: &str,
    subject: &str,
    payload: &[u8],
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO outbox (id, subject, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, subject, payload, super::now_nanos()])?;
    Ok(conn.last_insert_rowid())
}

/// Appends an event message: its subject comes from the event, its id (the
/// `Nats-Msg-Id`) from the envelope, its payload is the codec encoding.
pub fn record(conn: &Connection, message: &Message<Event>) -> Result<i64, StoreError> {
    let subject = message.body.subject(&message.envelope.site);
    let payload = codec::encode(message).map_err(StoreError::Encode)?;
    append(
        conn,
        &message.envelope.id.to_string(),
        subject.as_str(),
        &payload,
    )
}

/// Records `body` as a new event of `site` caused by `actor`, in the
/// caller's transaction.
pub fn record_event(
    conn: &Connection,
    site: &dv_protocol::SiteName,
    actor: &dv_protocol::Actor,
    body: dv_protocol::EventBody,
) -> Result<(), StoreError> {
    record(
        conn,
        &Message::from_event(site.clone(), actor.clone(), Event::new(body)),
    )?;
    Ok(())
}

/// Up to `limit` unsent events, oldest first.
pub fn pending(conn: &Connection, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut st = conn.prepare_cached(
        "SELECT seq, id, subject, payload FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?1",
    )?;
    let rows = st
        .query_map([limit], |r| {
            Ok(OutboxRow {
                seq: r.get(0)?,
                id: r.get(1)?,
                subject: r.get(2)?,
                payload: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Marks events as acknowledged by the server.
pub fn mark_sent(conn: &Connection, seqs: &[i64]) -> Result<(), StoreError> {
    let now = super::now_nanos();
    let mut st = conn.prepare_cached("UPDATE outbox SET sent_at = ?1 WHERE seq = ?2")?;
    for seq in seqs {
        st.execute(params![now, seq])?;
    }
    Ok(())
}

/// How many events wait to be published.
pub fn pending_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM outbox WHERE sent_at IS NULL")?
        .query_row([], |r| r.get(0))?)
}

/// The event with this id, if stored.
pub fn get(conn: &Connection, id: &str) -> Result<Option<OutboxRow>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT seq, id, subject, payload FROM outbox WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(OutboxRow {
                seq: r.get(0)?,
                id: r.get(1)?,
                subject: r.get(2)?,
                payload: r.get(3)?,
            })
        })
        .optional()?)
}
