//! Racks, machines and their BMCs in the agent store (schema 0006).
//!
//! [`import`] applies a checked inventory file in the caller's transaction:
//! racks by name and machines by serial are created or updated, each new
//! rack, machine and BMC with its event (`maskin.evt.rack.added`,
//! `machine.discovered`, `bmc.registered`), each changed machine with
//! `machine.updated`. A curated entry whose serial is new but whose MAC
//! belongs to a machine that discovered itself adopts that machine (its
//! id and facts stay; it becomes `available`, with `machine.state-changed`).
//! Any other conflict (a MAC already on another machine) fails the whole import, and the writer's savepoint
//! leaves the store as it was. [`export`] renders the inventory back,
//! without passwords.

use std::collections::{BTreeMap, HashMap};

use dv_protocol::envelope::Actor;
use dv_protocol::{
    Bmc, BmcEndpoint, BmcId, CredentialRef, Event, EventBody, Machine, MachineId, MachineState,
    Message, Rack, RackId, SiteName,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, now_nanos, outbox};
use crate::inventory::SiteKey;
use crate::inventory::file::{
    BmcEntry, CablingEntry, CheckedMachine, InventoryFile, MachineEntry, RackEntry, Scheme,
};

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// Racks created.
    pub racks_added: usize,
    /// Machines created.
    pub machines_added: usize,
    /// Machines that existed and were updated (adopted ones included).
    pub machines_updated: usize,
    /// Of those, machines that had discovered themselves and were adopted
    /// by a curated entry listing one of their MACs.
    pub machines_adopted: usize,
}

/// The self-discovered machine (state `discovered`) that owns one of
/// `macs`, if exactly that: a MAC on any other machine is left for the
/// import's conflict check to refuse.
fn discovered_owner(
    conn: &Connection,
    macs: &[dv_protocol::MacAddr],
) -> Result<Option<Machine>, StoreError> {
    let mut owners = Vec::new();
    for mac in macs {
        let owner: Option<String> = conn
            .prepare_cached("SELECT machine_id FROM machine_mac WHERE mac = ?1")?
            .query_row([mac.to_string()], |r| r.get(0))
            .optional()?;
        if let Some(owner) = owner
            && !owners.contains(&owner)
        {
            owners.push(owner);
        }
    }
    let [owner] = owners.as_slice() else {
        return Ok(None);
    };
    Ok(machine(conn, owner)?.filter(|m| m.state == MachineState::Discovered))
}

fn corrupt(key: &str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: "machine",
        key: key.to_owned(),
        detail: detail.to_string(),
    }
}

fn emit(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    body: EventBody,
) -> Result<(), StoreError> {
    let message = Message::from_event(site.clone(), actor.clone(), Event::new(body));
    outbox::record(conn, &message).map(|_| ())
}

/// Applies `file` (already checked into `machines`). Call inside
/// [`crate::store::Store::write`].
pub fn import(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    key: &SiteKey,
    file: &InventoryFile,
    machines: &[CheckedMachine],
) -> Result<ImportSummary, StoreError> {
    let mut summary = ImportSummary::default();
    let mut rack_ids = racks_by_name(conn)?;
    for r in &file.racks {
        if let Some(id) = rack_ids.get(&r.name) {
            conn.prepare_cached("UPDATE rack SET location = ?2 WHERE id = ?1")?
                .execute(params![id.to_string(), r.location])?;
            continue;
        }
        let rack = Rack {
            id: RackId::new(),
            site: site.clone(),
            name: r.name.clone(),
            location: r.location.clone(),
        };
        conn.prepare_cached("INSERT INTO rack (name, id, location) VALUES (?1, ?2, ?3)")?
            .execute(params![rack.name, rack.id.to_string(), rack.location])?;
        rack_ids.insert(rack.name.clone(), rack.id);
        summary.racks_added += 1;
        emit(conn, site, actor, EventBody::RackAdded { rack })?;
    }
    for m in machines {
        let e = &m.entry;
        let existing: Option<(String, String)> = conn
            .prepare_cached("SELECT id, body FROM machine WHERE serial = ?1")?
            .query_row([&e.serial], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (id, state, old, adopted) = match &existing {
            Some((id, body)) => {
                let old: Machine = serde_json::from_str(body).map_err(|err| corrupt(id, err))?;
                (old.id, old.state, Some(old), false)
            }
            None => match discovered_owner(conn, &m.macs)? {
                // The machine network-booted before the operator's file
                // listed it: the curated entry adopts that record (its id,
                // facts and boot history stay) and, being curated, trusts it.
                Some(found) => (found.id, MachineState::Available, Some(found), true),
                // Curated inventory is trusted at once (the seed's bootstrap
                // model); self-discovered machines wait for approval instead.
                None => (MachineId::new(), MachineState::Available, None, false),
            },
        };
        for mac in &m.macs {
            let owner: Option<String> = conn
                .prepare_cached("SELECT machine_id FROM machine_mac WHERE mac = ?1")?
                .query_row([mac.to_string()], |r| r.get(0))
                .optional()?;
            if let Some(owner) = owner
                && owner != id.to_string()
            {
                return Err(StoreError::Invalid {
                    what: "machine",
                    key: e.serial.clone(),
                    detail: format!("MAC {mac} already belongs to machine {owner}"),
                });
            }
        }
        let credential = CredentialRef::new(format!("bmc-{}", id.as_uuid().simple()))
            .map_err(|err| corrupt(&id.to_string(), err))?;
        let bmc = match (&e.bmc, &m.bmc_host) {
            (Some(b), Some(host)) => {
                let mut endpoint = BmcEndpoint::new(host.clone(), b.protocol, credential.clone());
                if let Some(port) = b.port {
                    endpoint.address.port = port;
                }
                Some(endpoint)
            }
            _ => None,
        };
        let machine = Machine {
            id,
            site: site.clone(),
            rack: e.rack.as_ref().and_then(|r| rack_ids.get(r).copied()),
            position: e.position,
            serial: e.serial.clone(),
            vendor: e.vendor.clone(),
            model: e.model.clone(),
            macs: m.macs.clone(),
            bmc: bmc.clone(),
            role: e.role,
            state,
        };
        let body = serde_json::to_string(&machine).map_err(|err| corrupt(&e.serial, err))?;
        conn.prepare_cached(
            "INSERT INTO machine (id, serial, state, body, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET serial = excluded.serial, state = excluded.state,
                                            body = excluded.body, updated_at = excluded.updated_at",
        )?
        .execute(params![
            id.to_string(),
            e.serial,
            state.as_str(),
            body,
            now_nanos()
        ])?;
        conn.prepare_cached("DELETE FROM machine_mac WHERE machine_id = ?1")?
            .execute([id.to_string()])?;
        for mac in &m.macs {
            conn.prepare_cached("INSERT INTO machine_mac (mac, machine_id) VALUES (?1, ?2)")?
                .execute(params![mac.to_string(), id.to_string()])?;
        }
        let old_bmc = old
            .as_ref()
            .and_then(|o| o.bmc.as_ref())
            .map(|b| &b.address);
        let new_bmc = match (&e.bmc, &bmc) {
            (Some(b), Some(endpoint)) => {
                // A BMC at another address is another BMC: its certificate
                // gets pinned afresh on first use.
                if old_bmc.is_some_and(|a| *a != endpoint.address) {
                    conn.prepare_cached(
                        "UPDATE bmc SET cert_sha256 = NULL, cert_pinned_at = NULL WHERE machine_id = ?1",
                    )?
                    .execute([id.to_string()])?;
                }
                store_bmc(conn, key, id, &credential, b)?.map(|bmc_id| Bmc {
                    id: bmc_id,
                    site: site.clone(),
                    machine: Some(id),
                    endpoint: endpoint.clone(),
                })
            }
            _ => {
                conn.prepare_cached("DELETE FROM bmc WHERE machine_id = ?1")?
                    .execute([id.to_string()])?;
                None
            }
        };
        // The file's cabling is the machine's port intent: each cable
        // assigns its switch port (validated with the whole intent, in this
        // transaction, so a profile the site lacks refuses the import).
        for c in &m.cabling {
            let req = dv_protocol::api::PortAssignRequest {
                profile: c.profile.clone(),
                machine: Some(id),
                nic: Some(c.nic),
            };
            super::intent::port_assign(conn, site, actor, &c.switch, &c.port, &req).map_err(
                |err| match err {
                    StoreError::Intent(refusal) => StoreError::Invalid {
                        what: "machine",
                        key: e.serial.clone(),
                        detail: format!(
                            "cabling of {} to {}/{}: {refusal}",
                            c.nic, c.switch, c.port
                        ),
                    },
                    other => other,
                },
            )?;
        }
        match old {
            None => {
                summary.machines_added += 1;
                emit(conn, site, actor, EventBody::MachineDiscovered { machine })?;
            }
            Some(old) => {
                summary.machines_updated += 1;
                if adopted {
                    summary.machines_adopted += 1;
                    emit(
                        conn,
                        site,
                        actor,
                        EventBody::MachineStateChanged {
                            machine: id,
                            from: old.state,
                            to: state,
                        },
                    )?;
                }
                // Re-importing the same file changes nothing and says nothing.
                if old != machine {
                    emit(conn, site, actor, EventBody::MachineUpdated { machine })?;
                }
            }
        }
        if let Some(bmc) = new_bmc {
            emit(conn, site, actor, EventBody::BmcRegistered { bmc })?;
        }
    }
    Ok(summary)
}

/// Upserts the machine's BMC row; a password left out keeps the stored
/// one (an exported file has none). Returns the id of a BMC created now.
fn store_bmc(
    conn: &Connection,
    key: &SiteKey,
    machine: MachineId,
    credential: &CredentialRef,
    entry: &BmcEntry,
) -> Result<Option<BmcId>, StoreError> {
    let sealed = entry
        .password
        .as_ref()
        .map(|p| key.seal(credential.as_str(), p.as_bytes()));
    let existing: Option<String> = conn
        .prepare_cached("SELECT id FROM bmc WHERE machine_id = ?1")?
        .query_row([machine.to_string()], |r| r.get(0))
        .optional()?;
    let scheme = entry.scheme.unwrap_or(Scheme::Https).as_str();
    if existing.is_some() {
        conn.prepare_cached(
            "UPDATE bmc SET user = ?2, sealed_password = coalesce(?3, sealed_password),
                            updated_at = ?4, scheme = ?5
             WHERE machine_id = ?1",
        )?
        .execute(params![
            machine.to_string(),
            entry.user,
            sealed,
            now_nanos(),
            scheme
        ])?;
        return Ok(None);
    }
    let id = BmcId::new();
    conn.prepare_cached(
        "INSERT INTO bmc (id, machine_id, credential, user, sealed_password, updated_at, scheme)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id.to_string(),
        machine.to_string(),
        credential.as_str(),
        entry.user,
        sealed,
        now_nanos(),
        scheme
    ])?;
    Ok(Some(id))
}

fn racks_by_name(conn: &Connection) -> Result<HashMap<String, RackId>, StoreError> {
    let mut st = conn.prepare_cached("SELECT name, id FROM rack")?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(name, id)| {
            let id = id.parse::<RackId>().map_err(|e| corrupt(&name, e))?;
            Ok((name, id))
        })
        .collect()
}

/// Hardware facts as a discovery boot reported them (`cpus`, `memory_kb`,
/// `vendor`, `product`, `serial`, ...).
pub type Facts = BTreeMap<String, String>;

/// Parses a boot report's `k=v&k=v` detail.
pub fn facts_from(detail: &str) -> Facts {
    detail
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// What firmware puts in DMI when it has nothing to say.
fn placeholder(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.is_empty()
        || v == "0"
        || v.contains("not specified")
        || v.contains("to be filled")
        || v == "default string"
        || v == "none"
}

/// Records a discovery report from `mac` (call inside
/// [`crate::store::Store::write`], with the boot report). A MAC that
/// belongs to a machine gets its facts attached. An unknown MAC becomes a
/// new machine in state `discovered`, with `machine.discovered`: not
/// trusted inventory until an operator approves it. A report whose serial
/// belongs to a machine that does not list this MAC changes nothing (the
/// operator decides whether the NIC is that machine's), and says so.
pub fn record_discovery(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    mac: dv_protocol::MacAddr,
    facts: &Facts,
) -> Result<Option<MachineId>, StoreError> {
    let facts_json = serde_json::to_string(facts).map_err(|e| corrupt(&mac.to_string(), e))?;
    let owner: Option<String> = conn
        .prepare_cached("SELECT machine_id FROM machine_mac WHERE mac = ?1")?
        .query_row([mac.to_string()], |r| r.get(0))
        .optional()?;
    if let Some(id) = owner {
        conn.prepare_cached("UPDATE machine SET facts = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, facts_json, now_nanos()])?;
        return Ok(Some(id.parse().map_err(|e| corrupt(&id, e))?));
    }
    let reported = facts.get("serial").map(String::as_str).unwrap_or("");
    let serial = if placeholder(reported) {
        format!("unknown-{mac}")
    } else {
        reported.to_owned()
    };
    let taken: Option<String> = conn
        .prepare_cached("SELECT id FROM machine WHERE serial = ?1")?
        .query_row([&serial], |r| r.get(0))
        .optional()?;
    if let Some(other) = taken {
        tracing::warn!(%mac, serial, machine = other, "discovery report from a MAC the machine with this serial does not list; not added (add the MAC to the inventory if it is that machine's)");
        return Ok(None);
    }
    let text = |k: &str| {
        facts
            .get(k)
            .filter(|v| !placeholder(v))
            .cloned()
            .unwrap_or_default()
    };
    let machine = Machine {
        id: MachineId::new(),
        site: site.clone(),
        rack: None,
        position: None,
        serial: serial.clone(),
        vendor: text("vendor"),
        model: text("product"),
        macs: vec![mac],
        bmc: None,
        role: dv_protocol::MachineRole::Unassigned,
        state: MachineState::Discovered,
    };
    let body = serde_json::to_string(&machine).map_err(|e| corrupt(&serial, e))?;
    conn.prepare_cached(
        "INSERT INTO machine (id, serial, state, body, facts, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        machine.id.to_string(),
        serial,
        machine.state.as_str(),
        body,
        facts_json,
        now_nanos()
    ])?;
    conn.prepare_cached("INSERT INTO machine_mac (mac, machine_id) VALUES (?1, ?2)")?
        .execute(params![mac.to_string(), machine.id.to_string()])?;
    let id = machine.id;
    emit(conn, site, actor, EventBody::MachineDiscovered { machine })?;
    Ok(Some(id))
}

/// Why an approval was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Approved: the machine is available now.
    Approved(Box<Machine>),
    /// No such machine.
    Unknown,
    /// The machine is not waiting for approval.
    NotDiscovered(MachineState),
}

/// An operator approves a discovered machine: it becomes trusted inventory
/// (`available`), with `machine.state-changed`.
pub fn approve(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    key: &str,
) -> Result<Approval, StoreError> {
    let Some(mut machine) = machine(conn, key)? else {
        return Ok(Approval::Unknown);
    };
    if machine.state != MachineState::Discovered {
        return Ok(Approval::NotDiscovered(machine.state));
    }
    machine.state = MachineState::Available;
    let body = serde_json::to_string(&machine).map_err(|e| corrupt(key, e))?;
    conn.prepare_cached("UPDATE machine SET state = ?2, body = ?3, updated_at = ?4 WHERE id = ?1")?
        .execute(params![
            machine.id.to_string(),
            machine.state.as_str(),
            body,
            now_nanos()
        ])?;
    emit(
        conn,
        site,
        actor,
        EventBody::MachineStateChanged {
            machine: machine.id,
            from: MachineState::Discovered,
            to: MachineState::Available,
        },
    )?;
    Ok(Approval::Approved(Box::new(machine)))
}

/// The facts last reported for a machine.
pub fn facts(conn: &Connection, id: MachineId) -> Result<Facts, StoreError> {
    let text: Option<Option<String>> = conn
        .prepare_cached("SELECT facts FROM machine WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    match text.flatten() {
        Some(t) => serde_json::from_str(&t).map_err(|e| corrupt(&id.to_string(), e)),
        None => Ok(Facts::new()),
    }
}

/// Every machine, by serial.
pub fn machines(conn: &Connection) -> Result<Vec<Machine>, StoreError> {
    let mut st = conn.prepare_cached("SELECT id, body FROM machine ORDER BY serial")?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, body)| serde_json::from_str(&body).map_err(|e| corrupt(&id, e)))
        .collect()
}

/// One machine, by id, serial or any of its MACs.
pub fn machine(conn: &Connection, key: &str) -> Result<Option<Machine>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached(
            "SELECT body FROM machine WHERE id = ?1 OR serial = ?1
             OR id = (SELECT machine_id FROM machine_mac WHERE mac = lower(?1))",
        )?
        .query_row([key], |r| r.get(0))
        .optional()?;
    body.map(|b| serde_json::from_str(&b).map_err(|e| corrupt(key, e)))
        .transpose()
}

/// How to log in to a machine's BMC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmcLogin {
    /// Redfish scheme: `https` or `http`.
    pub scheme: String,
    /// User.
    pub user: String,
    /// Password, opened with the site key; `None` if none was given.
    pub password: Option<String>,
}

/// The BMC login of `machine` (its password opened with `key`).
pub fn bmc_login(
    conn: &Connection,
    key: &SiteKey,
    machine: MachineId,
) -> Result<Option<BmcLogin>, StoreError> {
    let row: Option<(String, String, String, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT credential, scheme, user, sealed_password FROM bmc WHERE machine_id = ?1",
        )?
        .query_row([machine.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((credential, scheme, user, sealed)) = row else {
        return Ok(None);
    };
    let password = match sealed {
        Some(s) => {
            let plain = key
                .open(&credential, &s)
                .map_err(|e| corrupt(&machine.to_string(), e))?;
            Some(String::from_utf8(plain).map_err(|e| corrupt(&machine.to_string(), e))?)
        }
        None => None,
    };
    Ok(Some(BmcLogin {
        scheme,
        user,
        password,
    }))
}

/// What recording a BMC certificate pin did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertPin {
    /// Recorded; `previous` is the pin it replaced, if any.
    Recorded {
        /// The former pin (hex), on a re-pin.
        previous: Option<String>,
    },
    /// That pin was there already.
    Unchanged,
    /// Another pin is recorded and was kept (first use lost a race, or the
    /// certificate changed): the caller must not trust the new one.
    Kept {
        /// The pin on record (hex).
        pinned: String,
    },
    /// The machine has no BMC row.
    NoBmc,
}

/// The SHA-256 (lower-case hex) of the TLS certificate pinned for the BMC
/// of `machine`, if one is (schema 0009).
pub fn bmc_cert_pin(conn: &Connection, machine: MachineId) -> Result<Option<String>, StoreError> {
    let pin: Option<Option<String>> = conn
        .prepare_cached("SELECT cert_sha256 FROM bmc WHERE machine_id = ?1")?
        .query_row([machine.to_string()], |r| r.get(0))
        .optional()?;
    Ok(pin.flatten())
}

/// Records `cert` as the certificate pin of the BMC of `machine`, with
/// `maskin.evt.bmc.certificate-pinned`. On first use (`replace` false) a
/// pin already on record is kept; a re-pin (`replace` true) replaces it.
/// Call inside [`crate::store::Store::write`].
pub fn pin_bmc_cert(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    machine: MachineId,
    cert: crate::bmc::Fingerprint,
    replace: bool,
) -> Result<CertPin, StoreError> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT id, cert_sha256 FROM bmc WHERE machine_id = ?1")?
        .query_row([machine.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((bmc, previous)) = row else {
        return Ok(CertPin::NoBmc);
    };
    let hex = cert.to_hex();
    match previous {
        Some(p) if p == hex => return Ok(CertPin::Unchanged),
        Some(p) if !replace => return Ok(CertPin::Kept { pinned: p }),
        _ => {}
    }
    conn.prepare_cached(
        "UPDATE bmc SET cert_sha256 = ?2, cert_pinned_at = ?3, updated_at = ?3 WHERE machine_id = ?1",
    )?
    .execute(params![machine.to_string(), hex, now_nanos()])?;
    let display = |h: &str| {
        h.parse::<crate::bmc::Fingerprint>()
            .map(|f| f.to_string())
            .unwrap_or_else(|_| h.to_owned())
    };
    emit(
        conn,
        site,
        actor,
        EventBody::BmcCertificatePinned {
            bmc: bmc.parse().map_err(|e| corrupt(&bmc, e))?,
            machine,
            sha256: cert.to_string(),
            previous: previous.as_deref().map(display),
        },
    )?;
    Ok(CertPin::Recorded { previous })
}

/// The inventory as a file, without passwords.
pub fn export(conn: &Connection) -> Result<InventoryFile, StoreError> {
    let mut st = conn.prepare_cached("SELECT name, id, location FROM rack ORDER BY name")?;
    let racks = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let names: HashMap<String, String> = racks
        .iter()
        .map(|(name, id, _)| (id.clone(), name.clone()))
        .collect();
    let mut users: HashMap<String, (String, String)> = HashMap::new();
    let mut st = conn.prepare_cached("SELECT machine_id, user, scheme FROM bmc")?;
    for row in st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })? {
        let (m, u, scheme) = row?;
        users.insert(m, (u, scheme));
    }
    let mut cabling: HashMap<String, Vec<CablingEntry>> = HashMap::new();
    let mut st = conn.prepare_cached(
        "SELECT machine_id, nic, switch, port, profile FROM port_assignment
         WHERE machine_id IS NOT NULL AND nic IS NOT NULL AND profile IS NOT NULL
         ORDER BY switch, port",
    )?;
    for row in st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            CablingEntry {
                nic: r.get(1)?,
                switch: r.get(2)?,
                port: r.get(3)?,
                profile: r.get(4)?,
            },
        ))
    })? {
        let (m, c) = row?;
        cabling.entry(m).or_default().push(c);
    }
    let machines = machines(conn)?
        .into_iter()
        .map(|m| MachineEntry {
            cabling: cabling.remove(&m.id.to_string()).unwrap_or_default(),
            serial: m.serial.clone(),
            vendor: m.vendor.clone(),
            model: m.model.clone(),
            macs: m.macs.iter().map(ToString::to_string).collect(),
            rack: m.rack.and_then(|r| names.get(&r.to_string()).cloned()),
            position: m.position,
            role: m.role,
            bmc: m.bmc.as_ref().map(|b| BmcEntry {
                protocol: b.protocol,
                host: b.address.host.to_string(),
                port: (b.address.port != b.protocol.default_port()).then_some(b.address.port),
                scheme: users
                    .get(&m.id.to_string())
                    .filter(|(_, s)| s == "http" && b.protocol == dv_protocol::BmcProtocol::Redfish)
                    .map(|_| Scheme::Http),
                user: users
                    .get(&m.id.to_string())
                    .map(|(u, _)| u.clone())
                    .unwrap_or_default(),
                password: None,
            }),
        })
        .collect();
    Ok(InventoryFile {
        racks: racks
            .into_iter()
            .map(|(name, _, location)| RackEntry { name, location })
            .collect(),
        machines,
    })
}

/// Notes a boot callback's `stage` on the machine owning `mac`, if any (the
/// provisioning workflow waits for `installed`).
pub fn note_stage(
    conn: &Connection,
    mac: dv_protocol::MacAddr,
    stage: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE machine SET last_stage = ?2, last_stage_at = ?3
         WHERE id = (SELECT machine_id FROM machine_mac WHERE mac = ?1)",
    )?
    .execute(params![mac.to_string(), stage, now_nanos()])?;
    Ok(())
}

/// The last boot stage reported by one of the machine's MACs, and when
/// (unix nanoseconds).
pub fn last_stage(conn: &Connection, id: MachineId) -> Result<Option<(String, i64)>, StoreError> {
    let row: Option<(Option<String>, Option<i64>)> = conn
        .prepare_cached("SELECT last_stage, last_stage_at FROM machine WHERE id = ?1")?
        .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((Some(stage), Some(at))) => Some((stage, at)),
        _ => None,
    })
}

/// Moves a machine to `to` if it is in one of `from` (or already in `to`:
/// steps are re-run after a crash), with `machine.state-changed`. Returns
/// the state it was in when that is not allowed.
pub fn set_state(
    conn: &Connection,
    site: &SiteName,
    actor: &Actor,
    id: MachineId,
    from: &[MachineState],
    to: MachineState,
) -> Result<Result<(), MachineState>, StoreError> {
    let key = id.to_string();
    let Some(mut machine) = machine(conn, &key)? else {
        return Err(corrupt(&key, "machine vanished"));
    };
    if machine.state == to {
        return Ok(Ok(()));
    }
    if !from.contains(&machine.state) {
        return Ok(Err(machine.state));
    }
    let was = machine.state;
    machine.state = to;
    let body = serde_json::to_string(&machine).map_err(|e| corrupt(&key, e))?;
    conn.prepare_cached("UPDATE machine SET state = ?2, body = ?3, updated_at = ?4 WHERE id = ?1")?
        .execute(params![key, to.as_str(), body, now_nanos()])?;
    emit(
        conn,
        site,
        actor,
        EventBody::MachineStateChanged {
            machine: id,
            from: was,
            to,
        },
    )?;
    Ok(Ok(()))
}

#[cfg(test)]
mod pin_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bmc::Fingerprint;

    #[test]
    fn a_certificate_pin_is_kept_on_first_use_replaced_on_repin_and_announced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut conn = Connection::open(&path).unwrap();
        super::super::migrate::migrate(&mut conn, &path).unwrap();
        let (site, machine) = (SiteName::new("lab").unwrap(), MachineId::new());
        let actor = Actor::agent(&site);
        conn.execute(
            "INSERT INTO machine (id, serial, state, body, updated_at) VALUES (?1, 'SN', 'available', '{}', 0)",
            [machine.to_string()],
        )
        .unwrap();
        let (a, b) = (Fingerprint([0xaa; 32]), Fingerprint([0xbb; 32]));
        assert_eq!(
            pin_bmc_cert(&conn, &site, &actor, machine, a, false).unwrap(),
            CertPin::NoBmc
        );
        conn.execute(
            "INSERT INTO bmc (id, machine_id, credential, user, updated_at) VALUES (?1, ?2, 'bmc-x', 'admin', 0)",
            params![BmcId::new().to_string(), machine.to_string()],
        )
        .unwrap();
        assert_eq!(bmc_cert_pin(&conn, machine).unwrap(), None);
        assert_eq!(
            pin_bmc_cert(&conn, &site, &actor, machine, a, false).unwrap(),
            CertPin::Recorded { previous: None }
        );
        assert_eq!(bmc_cert_pin(&conn, machine).unwrap(), Some(a.to_hex()));
        assert_eq!(
            pin_bmc_cert(&conn, &site, &actor, machine, a, false).unwrap(),
            CertPin::Unchanged
        );
        // First use never overwrites: the caller learns what is pinned.
        assert_eq!(
            pin_bmc_cert(&conn, &site, &actor, machine, b, false).unwrap(),
            CertPin::Kept { pinned: a.to_hex() }
        );
        assert_eq!(
            pin_bmc_cert(&conn, &site, &actor, machine, b, true).unwrap(),
            CertPin::Recorded {
                previous: Some(a.to_hex())
            }
        );
        assert_eq!(bmc_cert_pin(&conn, machine).unwrap(), Some(b.to_hex()));
        let events = outbox::pending(&conn, 10).unwrap();
        assert_eq!(events.len(), 2, "one event per pin recorded");
        assert!(
            events
                .iter()
                .all(|e| e.subject.ends_with(".bmc.certificate-pinned")),
            "{events:?}"
        );
    }
}
