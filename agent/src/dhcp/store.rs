//! Lease rows in the agent store (`dhcp_lease`, migration 0002) and their
//! outbox events.
//!
//! [`commit`] writes a lease change and its event (`dhcp.evt.lease.bound`,
//! `released`, `declined`) in the caller's transaction, as
//! `store::tasks` does for tasks, so after a crash either both exist or
//! neither does. [`load`] reads every row back into the in-memory index at
//! start.

use std::net::Ipv4Addr;

use dv_protocol::envelope::Actor;
use dv_protocol::{Event, EventBody, LeaseId, LeaseState, MacAddr, Message, SiteName};
use ipnet::Ipv4Net;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::classify::ClientKey;
use super::leases::Entry;
use crate::store::{StoreError, outbox};

fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn from_nanos(n: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn state_from(s: &str) -> Option<LeaseState> {
    Some(match s {
        "offered" => LeaseState::Offered,
        "bound" => LeaseState::Bound,
        "released" => LeaseState::Released,
        "declined" => LeaseState::Declined,
        "expired" => LeaseState::Expired,
        _ => return None,
    })
}

/// Writes `entry` as its address's row and records its event. Call inside
/// [`crate::store::Store::write`].
pub fn commit(
    conn: &Connection,
    entry: &Entry,
    site: &SiteName,
    actor: &Actor,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO dhcp_lease (ip, id, prefix, mac, client_id, hostname, state, starts, expires,
                                 relay_agent_info, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (ip) DO UPDATE SET
             id = excluded.id, prefix = excluded.prefix, mac = excluded.mac,
             client_id = excluded.client_id, hostname = excluded.hostname,
             state = excluded.state, starts = excluded.starts, expires = excluded.expires,
             relay_agent_info = excluded.relay_agent_info, updated_at = excluded.updated_at",
    )?
    .execute(params![
        entry.ip.to_string(),
        entry.id.to_string(),
        entry.prefix.to_string(),
        entry.mac.to_string(),
        entry.client_id,
        entry.hostname,
        entry.state.to_string(),
        nanos(entry.starts),
        nanos(entry.expires),
        entry.relay_info,
        crate::store::now_nanos(),
    ])?;
    let lease = entry.to_lease();
    let body = match entry.state {
        LeaseState::Bound | LeaseState::Offered => EventBody::LeaseBound { lease },
        LeaseState::Released => EventBody::LeaseReleased {
            lease: lease.to_ref(),
        },
        LeaseState::Declined => EventBody::LeaseDeclined {
            lease: lease.to_ref(),
        },
        LeaseState::Expired => EventBody::LeaseExpired {
            lease: lease.to_ref(),
        },
    };
    let message = Message::from_event(site.clone(), actor.clone(), Event::new(body));
    outbox::record(conn, &message)?;
    Ok(())
}

fn corrupt(key: &str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: "dhcp lease",
        key: key.to_owned(),
        detail: detail.to_string(),
    }
}

type Row = (
    String,
    String,
    String,
    String,
    Option<Vec<u8>>,
    Option<String>,
    String,
    i64,
    i64,
    Option<Vec<u8>>,
);

fn to_entry(r: Row) -> Result<Entry, StoreError> {
    let (ip, id, prefix, mac, client_id, hostname, state, starts, expires, relay_info) = r;
    let ip_addr: Ipv4Addr = ip.parse().map_err(|e| corrupt(&ip, e))?;
    let mac: MacAddr = mac.parse().map_err(|e| corrupt(&ip, e))?;
    let key = match &client_id {
        Some(id) if !id.is_empty() => ClientKey::ClientId(id.clone()),
        _ => ClientKey::Mac(mac),
    };
    Ok(Entry {
        id: id.parse::<LeaseId>().map_err(|e| corrupt(&ip, e))?,
        ip: ip_addr,
        prefix: prefix.parse::<Ipv4Net>().map_err(|e| corrupt(&ip, e))?,
        key,
        mac,
        client_id,
        hostname,
        state: state_from(&state).ok_or_else(|| corrupt(&ip, format!("state {state:?}")))?,
        starts: from_nanos(starts),
        expires: from_nanos(expires),
        relay_info,
    })
}

const COLUMNS: &str =
    "ip, id, prefix, mac, client_id, hostname, state, starts, expires, relay_agent_info";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

/// Every stored lease.
pub fn load(conn: &Connection) -> Result<Vec<Entry>, StoreError> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM dhcp_lease"))?;
    let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(to_entry).collect()
}

/// The stored lease for `ip`.
pub fn get(conn: &Connection, ip: Ipv4Addr) -> Result<Option<Entry>, StoreError> {
    let r = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM dhcp_lease WHERE ip = ?1"))?
        .query_row([ip.to_string()], row)
        .optional()?;
    r.map(to_entry).transpose()
}

/// Host names of the leases bound now, with their addresses: the DHCP half of
/// the DNS records (`dns::Records` publishes them in the site zone).
pub fn bound_hostnames(conn: &Connection) -> Result<Vec<(String, Ipv4Addr)>, StoreError> {
    let now = OffsetDateTime::now_utc();
    Ok(load(conn)?
        .into_iter()
        .filter(|e| e.state == LeaseState::Bound && e.expires > now)
        .filter_map(|e| Some((e.hostname?, e.ip)))
        .collect())
}

/// Leases that hold their address now (bound, or declined and quarantined),
/// counted per subnet and state: the `dv_dhcp_leases` gauge.
pub fn holding_counts(conn: &Connection) -> Result<Vec<(String, String, i64)>, StoreError> {
    let now = i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX);
    let mut st = conn.prepare_cached(
        // Every (subnet, state) pair, zeros included, so a gauge falls back
        // to 0 when the last lease of a kind goes.
        "SELECT p.prefix, s.state,
                (SELECT count(*) FROM dhcp_lease l
                 WHERE l.prefix = p.prefix AND l.state = s.state AND l.expires > ?1)
         FROM (SELECT DISTINCT prefix FROM dhcp_lease) p,
              (SELECT 'bound' AS state UNION ALL SELECT 'declined') s",
    )?;
    let rows = st
        .query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
