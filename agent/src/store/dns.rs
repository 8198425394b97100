//! DNS state: service placements set through the API and the zone serial.
//!
//! Like [`super::tasks`], every function takes a connection so a placement,
//! the new serial and the outbox event commit in one transaction.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// A stored placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The service label.
    pub service: String,
    /// The host or interface identity it points at.
    pub host: String,
    /// The record id its events carry.
    pub record_id: String,
}

/// Every placement.
pub fn placements(conn: &Connection) -> Result<Vec<Placement>, StoreError> {
    let mut st =
        conn.prepare_cached("SELECT service, host, record_id FROM dns_placement ORDER BY service")?;
    let rows = st
        .query_map([], |r| {
            Ok(Placement {
                service: r.get(0)?,
                host: r.get(1)?,
                record_id: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Points `service` at `host`; returns the record id (kept if the service
/// was moved before, `new_id` otherwise).
pub fn place(
    conn: &Connection,
    service: &str,
    host: &str,
    new_id: &str,
) -> Result<String, StoreError> {
    conn.prepare_cached(
        "INSERT INTO dns_placement (service, host, record_id, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (service) DO UPDATE SET host = excluded.host, updated_at = excluded.updated_at",
    )?
    .execute(params![service, host, new_id, super::now_nanos()])?;
    let id: String = conn
        .prepare_cached("SELECT record_id FROM dns_placement WHERE service = ?1")?
        .query_row([service], |r| r.get(0))?;
    Ok(id)
}

/// The stored serial and content digest, if any.
pub fn zone_state(conn: &Connection) -> Result<Option<(u32, u64)>, StoreError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT serial, content_hash FROM dns_zone_state WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(serial, hash)| {
        let corrupt = |detail: String| StoreError::Corrupt {
            what: "dns_zone_state",
            key: "1".to_owned(),
            detail,
        };
        let serial = u32::try_from(serial).map_err(|e| corrupt(e.to_string()))?;
        let hash = u64::from_str_radix(&hash, 16).map_err(|e| corrupt(e.to_string()))?;
        Ok((serial, hash))
    })
    .transpose()
}

/// Stores the serial and the digest of the records it was issued for.
pub fn set_zone_state(conn: &Connection, serial: u32, hash: u64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO dns_zone_state (id, serial, content_hash, updated_at) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET serial = excluded.serial,
             content_hash = excluded.content_hash, updated_at = excluded.updated_at",
    )?
    .execute(params![
        i64::from(serial),
        format!("{hash:016x}"),
        super::now_nanos()
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn placements_keep_their_record_id_and_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store.write(|c| place(c, "pxe", "a", "id-1")).await.unwrap();
        let second = store.write(|c| place(c, "pxe", "b", "id-2")).await.unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("id-1", "id-1"));
        store
            .write(|c| set_zone_state(c, 4_000_000_000, u64::MAX))
            .await
            .unwrap();
        let (p, s) = store
            .read(|c| Ok((placements(c)?, zone_state(c)?)))
            .await
            .unwrap();
        assert_eq!(p[0].host, "b");
        assert_eq!(s, Some((4_000_000_000, u64::MAX)));
        store.close().await;
    }
}
