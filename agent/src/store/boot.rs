//! Machine boot state: one row per MAC that network-boots (schema 0003).
//!
//! [`set`] changes a machine's state and records `machine.boot-state-set`;
//! [`record_report`] stores a boot callback as `machine.boot-reported` and
//! remembers the stage on the machine's row. Each is one transaction with
//! its event, like every change in the store.

use dv_protocol::envelope::Actor;
use dv_protocol::{Event, EventBody, MacAddr, Message, SiteName};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, outbox};
use crate::boot::{BootState, InstallParams, MachineBoot};

/// state, hostname, kernel, initrd, cmdline.
type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The boot entry of `mac`, if it has one.
pub fn get(conn: &Connection, mac: MacAddr) -> Result<Option<MachineBoot>, StoreError> {
    let key = mac.to_string();
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT state, hostname, kernel, initrd, cmdline FROM machine_boot WHERE mac = ?1",
        )?
        .query_row([&key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((state, hostname, kernel, initrd, cmdline)) = row else {
        return Ok(None);
    };
    let state: BootState = state.parse().map_err(|detail| StoreError::Corrupt {
        what: "machine boot entry",
        key: key.clone(),
        detail,
    })?;
    Ok(Some(MachineBoot {
        mac,
        state,
        hostname,
        install: InstallParams {
            kernel,
            initrd,
            cmdline,
        },
    }))
}

/// Stores `boot` (replacing the machine's entry) and records
/// `machine.boot-state-set`. Refuses an entry that could not be rendered
/// (see [`MachineBoot::check`]) and changes nothing then.
pub fn set(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    boot: &MachineBoot,
) -> Result<Message<Event>, StoreError> {
    let key = boot.mac.to_string();
    boot.check().map_err(|detail| StoreError::Invalid {
        what: "machine boot entry",
        key: key.clone(),
        detail,
    })?;
    let from: Option<String> = conn
        .prepare_cached("SELECT state FROM machine_boot WHERE mac = ?1")?
        .query_row([&key], |r| r.get(0))
        .optional()?;
    conn.prepare_cached(
        "INSERT INTO machine_boot (mac, state, hostname, kernel, initrd, cmdline, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (mac) DO UPDATE SET state = excluded.state, hostname = excluded.hostname,
             kernel = excluded.kernel, initrd = excluded.initrd, cmdline = excluded.cmdline,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        key,
        boot.state.as_str(),
        boot.hostname,
        boot.install.kernel,
        boot.install.initrd,
        boot.install.cmdline,
        super::now_nanos()
    ])?;
    let message = Message::from_event(
        site.clone(),
        actor.clone(),
        Event::new(EventBody::MachineBootStateSet {
            mac: boot.mac,
            from,
            to: boot.state.as_str().to_owned(),
        }),
    );
    outbox::record(conn, &message)?;
    Ok(message)
}

/// A boot callback as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootReport {
    /// The machine's MAC (from the URL).
    pub mac: MacAddr,
    /// The address it reported, or the request's peer address.
    pub ip: Option<std::net::IpAddr>,
    /// The reported stage.
    pub stage: String,
    /// The remaining fields, `k=v&k=v`.
    pub detail: String,
}

/// Records `report` as a `machine.boot-reported` event and notes the stage
/// on the machine's entry, if it has one.
pub fn record_report(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    report: &BootReport,
) -> Result<Message<Event>, StoreError> {
    conn.prepare_cached(
        "UPDATE machine_boot SET last_stage = ?2, last_report_at = ?3 WHERE mac = ?1",
    )?
    .execute(params![
        report.mac.to_string(),
        report.stage,
        super::now_nanos()
    ])?;
    let message = Message::from_event(
        site.clone(),
        actor.clone(),
        Event::new(EventBody::MachineBootReported {
            mac: report.mac,
            ip: report.ip,
            stage: report.stage.clone(),
            detail: report.detail.clone(),
        }),
    );
    outbox::record(conn, &message)?;
    Ok(message)
}

/// The last stage `mac` reported, if any.
pub fn last_stage(conn: &Connection, mac: MacAddr) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT last_stage FROM machine_boot WHERE mac = ?1")?
        .query_row([mac.to_string()], |r| r.get(0))
        .optional()?
        .flatten())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Store;
    use dv_protocol::codec;

    fn lab() -> SiteName {
        SiteName::new("lab").unwrap()
    }

    #[tokio::test]
    async fn set_and_report_commit_with_their_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mac: MacAddr = "52:54:00:00:77:01".parse().unwrap();
        let actor = Actor::agent(&lab());
        let mut boot = MachineBoot::unknown(mac, BootState::Local);
        boot.hostname = Some("node-01".into());
        let (b, a) = (boot.clone(), actor.clone());
        store.write(move |c| set(c, &lab(), &a, &b)).await.unwrap();
        assert_eq!(store.read(move |c| get(c, mac)).await.unwrap(), Some(boot));

        let report = BootReport {
            mac,
            ip: Some("10.77.0.11".parse().unwrap()),
            stage: "installed".into(),
            detail: "disk=sda".into(),
        };
        let r = report.clone();
        store
            .write(move |c| record_report(c, &lab(), &actor, &r))
            .await
            .unwrap();
        let (events, stage) = store
            .read(move |c| Ok((outbox::pending(c, 10)?, last_stage(c, mac)?)))
            .await
            .unwrap();
        assert_eq!(stage.as_deref(), Some("installed"));
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].subject,
            "dv.lab.maskin.evt.machine.boot-state-set"
        );
        assert_eq!(events[1].subject, "dv.lab.maskin.evt.machine.boot-reported");
        let msg: Message<Event> = codec::decode(&events[1].payload).unwrap();
        assert!(
            matches!(msg.body.body, EventBody::MachineBootReported { stage, .. } if stage == "installed")
        );
        store.close().await;
    }

    #[tokio::test]
    async fn an_invalid_entry_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mac: MacAddr = "52:54:00:00:77:02".parse().unwrap();
        let boot = MachineBoot::unknown(mac, BootState::Install);
        let err = store
            .write(move |c| set(c, &lab(), &Actor::agent(&lab()), &boot))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("kernel"), "{err}");
        let (row, n) = store
            .read(move |c| Ok((get(c, mac)?, outbox::pending_count(c)?)))
            .await
            .unwrap();
        assert!(row.is_none());
        assert_eq!(n, 0);
        store.close().await;
    }
}
