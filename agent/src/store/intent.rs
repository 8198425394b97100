//! Switch-port intent (port profiles, port assignments, LAGs) and what the
//! agent knows of each configured switch (its last apply, its ports as last
//! read back, the drift found), in the agent store.
//!
//! Every intent write loads the site's whole intent, applies the change to
//! it and runs [`SiteIntent::validate`] before touching a row, so the store
//! never holds an intent that breaks a rule (a profile naming an undefined
//! VLAN, a port in two places); a refusal changes nothing. Each write also
//! records a `PortIntentChanged` event in the outbox, in the same
//! transaction: the audit trail.

use dv_protocol::api::{PortAssignRequest, RealizedPort};
use dv_protocol::{
    Actor, EventBody, IntentError, Lag, LagName, MacAddr, MachineId, PortAssignment, PortMode,
    PortName, PortProfile, PortProfileName, SiteIntent, SiteName, SwitchName,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::outbox::record_event as event;
use super::{StoreError, ipam};

/// Why an intent change was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntentRefusal {
    /// The intent with the change breaks a rule; each problem names its
    /// field.
    #[error("{0}")]
    Invalid(IntentError),
    /// No port profile has this name.
    #[error("no port profile is named {name}")]
    UnknownProfile {
        /// The name asked for.
        name: String,
    },
    /// The port has no assignment of its own.
    #[error("port {switch}/{port} has no assignment")]
    NotAssigned {
        /// The switch.
        switch: String,
        /// The port.
        port: String,
    },
    /// No LAG by this name on the switch.
    #[error("switch {switch} has no LAG named {name}")]
    UnknownLag {
        /// The switch.
        switch: String,
        /// The LAG.
        name: String,
    },
    /// The profile is still given to ports or LAGs.
    #[error("port profile {name} is still used by {}; assign them another profile first", .by.join(", "))]
    ProfileInUse {
        /// The profile.
        name: String,
        /// The ports and LAGs using it (`leaf-1/swp1`).
        by: Vec<String>,
    },
}

fn corrupt(what: &'static str, key: &str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        key: key.to_owned(),
        detail: detail.to_string(),
    }
}

fn refused(r: IntentRefusal) -> StoreError {
    StoreError::Intent(r)
}

fn profiles(c: &Connection) -> Result<Vec<PortProfile>, StoreError> {
    let rows: Vec<(String, String)> = c
        .prepare_cached("SELECT name, mode FROM port_profile ORDER BY name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(name, mode)| {
            Ok(PortProfile {
                name: PortProfileName::new(&name).map_err(|e| corrupt("port profile", &name, e))?,
                mode: serde_json::from_str::<PortMode>(&mode)
                    .map_err(|e| corrupt("port profile", &name, e))?,
            })
        })
        .collect()
}

type AssignmentRaw = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn assignment(raw: AssignmentRaw) -> Result<PortAssignment, StoreError> {
    let (switch, port, profile, machine, nic) = raw;
    let key = format!("{switch}/{port}");
    Ok(PortAssignment {
        switch: SwitchName::new(&switch).map_err(|e| corrupt("port assignment", &key, e))?,
        port: PortName::new(&port).map_err(|e| corrupt("port assignment", &key, e))?,
        profile: PortProfileName::new(profile.unwrap_or_default())
            .map_err(|e| corrupt("port assignment", &key, e))?,
        machine: machine
            .map(|m| m.parse::<MachineId>())
            .transpose()
            .map_err(|e| corrupt("port assignment", &key, e))?,
        nic: nic
            .map(|m| m.parse::<MacAddr>())
            .transpose()
            .map_err(|e| corrupt("port assignment", &key, e))?,
    })
}

fn assignments(c: &Connection) -> Result<Vec<PortAssignment>, StoreError> {
    let rows: Vec<AssignmentRaw> = c
        .prepare_cached(
            "SELECT switch, port, profile, machine_id, nic FROM port_assignment
             WHERE profile IS NOT NULL ORDER BY switch, port",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(assignment).collect()
}

fn lags(c: &Connection) -> Result<Vec<Lag>, StoreError> {
    let rows: Vec<(String, String, String)> = c
        .prepare_cached("SELECT switch, name, profile FROM lag ORDER BY switch, name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (switch, name, profile) in rows {
        let key = format!("{switch}/{name}");
        let members: Vec<String> = c
            .prepare_cached(
                "SELECT port FROM port_assignment WHERE switch = ?1 AND lag = ?2 ORDER BY port",
            )?
            .query_map(params![switch, name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        out.push(Lag {
            name: LagName::new(&name).map_err(|e| corrupt("lag", &key, e))?,
            switch: SwitchName::new(&switch).map_err(|e| corrupt("lag", &key, e))?,
            members: members
                .iter()
                .map(PortName::new)
                .collect::<Result<_, _>>()
                .map_err(|e| corrupt("lag", &key, e))?,
            profile: PortProfileName::new(&profile).map_err(|e| corrupt("lag", &key, e))?,
        });
    }
    Ok(out)
}

/// The site's whole intent: networks, profiles, assignments, LAGs.
pub fn load(c: &Connection) -> Result<SiteIntent, StoreError> {
    Ok(SiteIntent {
        networks: ipam::networks(c)?.into_iter().map(|r| r.spec).collect(),
        profiles: profiles(c)?,
        assignments: assignments(c)?,
        lags: lags(c)?,
    })
}

fn validated(intent: &SiteIntent) -> Result<(), StoreError> {
    intent
        .validate()
        .map_err(|e| refused(IntentRefusal::Invalid(e)))
}

fn mode_json(mode: &PortMode) -> Result<String, StoreError> {
    serde_json::to_string(mode).map_err(|e| StoreError::Invalid {
        what: "port profile",
        key: String::new(),
        detail: e.to_string(),
    })
}

/// Defines or changes profile `name`. Returns it and whether it is new.
pub fn profile_set(
    c: &Connection,
    site: &SiteName,
    actor: &Actor,
    name: &PortProfileName,
    mode: PortMode,
) -> Result<(PortProfile, bool), StoreError> {
    let mut intent = load(c)?;
    let profile = PortProfile {
        name: name.clone(),
        mode,
    };
    // Setting what is already there changes nothing and records nothing.
    if intent.profiles.contains(&profile) {
        return Ok((profile, false));
    }
    let created = match intent.profiles.iter_mut().find(|p| &p.name == name) {
        Some(p) => {
            *p = profile.clone();
            false
        }
        None => {
            intent.profiles.push(profile.clone());
            true
        }
    };
    validated(&intent)?;
    c.execute(
        "INSERT INTO port_profile (name, mode) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET mode = excluded.mode",
        params![name.as_str(), mode_json(&profile.mode)?],
    )?;
    event(
        c,
        site,
        actor,
        EventBody::PortIntentChanged {
            switch: None,
            change: format!(
                "profile {name} {}: {}",
                if created { "defined" } else { "changed" },
                serde_json::to_string(&profile.mode).unwrap_or_default()
            ),
        },
    )?;
    Ok((profile, created))
}

/// Deletes profile `name`; refused while a port or LAG uses it.
pub fn profile_delete(
    c: &Connection,
    site: &SiteName,
    actor: &Actor,
    name: &PortProfileName,
) -> Result<PortProfile, StoreError> {
    let intent = load(c)?;
    let Some(profile) = intent.profiles.iter().find(|p| &p.name == name).cloned() else {
        return Err(refused(IntentRefusal::UnknownProfile {
            name: name.to_string(),
        }));
    };
    let by: Vec<String> = intent
        .assignments
        .iter()
        .filter(|a| &a.profile == name)
        .map(|a| format!("{}/{}", a.switch, a.port))
        .chain(
            intent
                .lags
                .iter()
                .filter(|l| &l.profile == name)
                .map(|l| format!("{}/{} (LAG)", l.switch, l.name)),
        )
        .collect();
    if !by.is_empty() {
        return Err(refused(IntentRefusal::ProfileInUse {
            name: name.to_string(),
            by,
        }));
    }
    c.execute(
        "DELETE FROM port_profile WHERE name = ?1",
        params![name.as_str()],
    )?;
    event(
        c,
        site,
        actor,
        EventBody::PortIntentChanged {
            switch: None,
            change: format!("profile {name} deleted"),
        },
    )?;
    Ok(profile)
}

/// Gives `switch`/`port` a profile (replacing the one it had).
pub fn port_assign(
    c: &Connection,
    site: &SiteName,
    actor: &Actor,
    switch: &SwitchName,
    port: &PortName,
    req: &PortAssignRequest,
) -> Result<PortAssignment, StoreError> {
    let mut intent = load(c)?;
    let assignment = PortAssignment {
        switch: switch.clone(),
        port: port.clone(),
        profile: req.profile.clone(),
        machine: req.machine,
        nic: req.nic,
    };
    if intent.assignments.contains(&assignment) {
        return Ok(assignment);
    }
    intent
        .assignments
        .retain(|a| !(&a.switch == switch && &a.port == port));
    intent.assignments.push(assignment.clone());
    validated(&intent)?;
    c.execute(
        "INSERT INTO port_assignment (switch, port, profile, lag, machine_id, nic)
         VALUES (?1, ?2, ?3, NULL, ?4, ?5)
         ON CONFLICT (switch, port) DO UPDATE SET profile = excluded.profile,
             lag = NULL, machine_id = excluded.machine_id, nic = excluded.nic",
        params![
            switch.as_str(),
            port.as_str(),
            req.profile.as_str(),
            req.machine.map(|m| m.to_string()),
            req.nic.map(|m| m.to_string()),
        ],
    )?;
    let mut change = format!("port {port} assigned profile {}", req.profile);
    if let Some(m) = req.machine {
        change.push_str(&format!(" (machine {m})"));
    }
    event(
        c,
        site,
        actor,
        EventBody::PortIntentChanged {
            switch: Some(switch.clone()),
            change,
        },
    )?;
    Ok(assignment)
}

/// Takes `switch`/`port`'s assignment away (the next apply removes the
/// port from the switch).
pub fn port_unassign(
    c: &Connection,
    site: &SiteName,
    actor: &Actor,
    switch: &SwitchName,
    port: &PortName,
) -> Result<PortAssignment, StoreError> {
    let intent = load(c)?;
    let Some(found) = intent
        .assignments
        .iter()
        .find(|a| &a.switch == switch && &a.port == port)
        .cloned()
    else {
        return Err(refused(IntentRefusal::NotAssigned {
            switch: switch.to_string(),
            port: port.to_string(),
        }));
    };
    c.execute(
        "DELETE FROM port_assignment WHERE switch = ?1 AND port = ?2 AND profile IS NOT NULL",
        params![switch.as_str(), port.as_str()],
    )?;
    event(
        c,
        site,
        actor,
        EventBody::PortIntentChanged {
            switch: Some(switch.clone()),
            change: format!("port {port} unassigned"),
        },
    )?;
    Ok(found)
}

/// Defines or changes LAG `name` on `switch`.
pub fn lag_set(
    c: &Connection,
    site: &SiteName,
    actor: &Actor,
    switch: &SwitchName,
    name: &LagName,
    members: Vec<PortName>,
    profile: &PortProfileName,
) -> Result<Lag, StoreError> {
    let mut intent = load(c)?;
    // Stored and read back in port order; compare in that order too.
    let mut members = members;
    members.sort();
    let lag = Lag {
        name: name.clone(),
        switch: switch.clone(),
        members,
        profile: profile.clone(),
    };
    if intent.lags.contains(&lag) {
        return Ok(lag);
    }
    intent
        .lags
        .retain(|l| !(&l.switch == switch && &l.name == name));
    intent.lags.push(lag.clone());
    validated(&intent)?;
    c.execute(
        "INSERT INTO lag (switch, name, profile) VALUES (?1, ?2, ?3)
         ON CONFLICT (switch, name) DO UPDATE SET profile = excluded.profile",
        params![switch.as_str(), name.as_str(), profile.as_str()],
    )?;
    c.execute(
        "DELETE FROM port_assignment WHERE switch = ?1 AND lag = ?2",
        params![switch.as_str(), name.as_str()],
    )?;
    for m in &lag.members {
        c.execute(
            "INSERT INTO port_assignment (switch, port, profile, lag) VALUES (?1, ?2, NULL, ?3)",
            params![switch.as_str(), m.as_str(), name.as_str()],
        )?;
    }
    let members: Vec<&str> = lag.members.iter().map(PortName::as_str).collect();
    event(
        c,
        site,
        actor,
        EventBody::PortIntentChanged {
            switch: Some(switch.clone()),
            change: format!(
                "LAG {name} set: members {}, profile {profile}",
                members.join(",")
            ),
        },
    )?;
    Ok(lag)
}

/// Deletes LAG `name` on `switch` with its member rows.
pub fn lag_delete(
    c: &Connection,
    site: &SiteName,
    actor: &Actor,
    switch: &SwitchName,
    name: &LagName,
) -> Result<Lag, StoreError> {
    let intent = load(c)?;
    let Some(found) = intent
        .lags
        .iter()
        .find(|l| &l.switch == switch && &l.name == name)
        .cloned()
    else {
        return Err(refused(IntentRefusal::UnknownLag {
            switch: switch.to_string(),
            name: name.to_string(),
        }));
    };
    c.execute(
        "DELETE FROM port_assignment WHERE switch = ?1 AND lag = ?2",
        params![switch.as_str(), name.as_str()],
    )?;
    c.execute(
        "DELETE FROM lag WHERE switch = ?1 AND name = ?2",
        params![switch.as_str(), name.as_str()],
    )?;
    event(
        c,
        site,
        actor,
        EventBody::PortIntentChanged {
            switch: Some(switch.clone()),
            change: format!("LAG {name} deleted"),
        },
    )?;
    Ok(found)
}

/// What the store knows of one switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchStateRow {
    /// `pending`, `applied` or `failed`.
    pub apply: String,
    /// When the last apply started (unix nanoseconds).
    pub started_at: i64,
    /// When it finished or failed.
    pub finished_at: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The ports as last read back.
    pub realized: Vec<RealizedPort>,
    /// What the last drift check found.
    pub drift: Vec<String>,
    /// When the switch was last read back.
    pub checked_at: Option<i64>,
}

type StateRaw = (
    String,
    i64,
    Option<i64>,
    Option<String>,
    String,
    String,
    Option<i64>,
);

/// The state of `switch`; `None` before its first apply.
pub fn switch_state(
    c: &Connection,
    switch: &SwitchName,
) -> Result<Option<SwitchStateRow>, StoreError> {
    let raw: Option<StateRaw> = c
        .prepare_cached(
            "SELECT apply, started_at, finished_at, error, realized, drift, checked_at
             FROM switch_state WHERE switch = ?1",
        )?
        .query_row(params![switch.as_str()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .optional()?;
    let Some((apply, started_at, finished_at, error, realized, drift, checked_at)) = raw else {
        return Ok(None);
    };
    Ok(Some(SwitchStateRow {
        apply,
        started_at,
        finished_at,
        error,
        realized: serde_json::from_str(&realized)
            .map_err(|e| corrupt("switch state", switch.as_str(), e))?,
        drift: serde_json::from_str(&drift)
            .map_err(|e| corrupt("switch state", switch.as_str(), e))?,
        checked_at,
    }))
}

/// The switches whose last apply started and never finished.
pub fn pending_applies(c: &Connection) -> Result<Vec<String>, StoreError> {
    Ok(
        c.prepare_cached(
            "SELECT switch FROM switch_state WHERE apply = 'pending' ORDER BY switch",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?,
    )
}

/// Marks an apply of `switch` started; committed before the first change
/// reaches the switch.
pub fn apply_started(c: &Connection, switch: &SwitchName) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO switch_state (switch, apply, started_at) VALUES (?1, 'pending', ?2)
         ON CONFLICT (switch) DO UPDATE SET apply = 'pending', started_at = excluded.started_at,
             finished_at = NULL, error = NULL",
        params![switch.as_str(), super::now_nanos()],
    )?;
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid {
        what: "switch state",
        key: String::new(),
        detail: e.to_string(),
    })
}

/// Records how the apply of `switch` ended: `error` `None` for success,
/// with the ports read back and the drift left (empty when in sync).
pub fn apply_finished(
    c: &Connection,
    switch: &SwitchName,
    error: Option<&str>,
    realized: &[RealizedPort],
    drift: &[String],
) -> Result<(), StoreError> {
    let now = super::now_nanos();
    c.execute(
        "INSERT INTO switch_state (switch, apply, started_at, finished_at, error, realized, drift,
             checked_at)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?3)
         ON CONFLICT (switch) DO UPDATE SET apply = excluded.apply,
             finished_at = excluded.finished_at, error = excluded.error,
             realized = excluded.realized, drift = excluded.drift,
             checked_at = excluded.checked_at",
        params![
            switch.as_str(),
            if error.is_some() { "failed" } else { "applied" },
            now,
            error,
            json(&realized)?,
            json(&drift)?,
        ],
    )?;
    Ok(())
}

/// Records a read-back of `switch` outside an apply (a drift check).
/// Returns the drift recorded before, so a caller reports only news.
pub fn drift_checked(
    c: &Connection,
    switch: &SwitchName,
    realized: &[RealizedPort],
    drift: &[String],
) -> Result<Vec<String>, StoreError> {
    let before = switch_state(c, switch)?
        .map(|s| s.drift)
        .unwrap_or_default();
    let now = super::now_nanos();
    // A switch never applied has no apply to speak of; its row starts as
    // 'applied' with nothing applied, which is what `never` means to
    // readers that look at finished_at.
    c.execute(
        "INSERT INTO switch_state (switch, apply, started_at, realized, drift, checked_at)
         VALUES (?1, 'applied', 0, ?2, ?3, ?4)
         ON CONFLICT (switch) DO UPDATE SET realized = excluded.realized,
             drift = excluded.drift, checked_at = excluded.checked_at",
        params![switch.as_str(), json(&realized)?, json(&drift)?, now],
    )?;
    Ok(before)
}

/// The ports `machine` is cabled to (assignments naming it; LAG members
/// carry no machine, the LAG's assignment does not exist as a row).
pub fn machine_ports(
    c: &Connection,
    machine: &MachineId,
) -> Result<Vec<PortAssignment>, StoreError> {
    let rows: Vec<AssignmentRaw> = c
        .prepare_cached(
            "SELECT switch, port, profile, machine_id, nic FROM port_assignment
             WHERE profile IS NOT NULL AND machine_id = ?1 ORDER BY switch, port",
        )?
        .query_map(params![machine.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(assignment).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use dv_protocol::{NetworkName, NetworkPurpose, NetworkSpec, VlanId};
    use proptest::prelude::*;

    use super::*;
    use crate::store::Store;

    fn site() -> SiteName {
        SiteName::new("lab").unwrap()
    }

    fn actor() -> Actor {
        Actor::new("user:alice").unwrap()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Profile {
            name: u8,
            vlan: u16,
            trunk: bool,
        },
        DeleteProfile {
            name: u8,
        },
        Assign {
            switch: u8,
            port: u8,
            profile: u8,
        },
        Unassign {
            switch: u8,
            port: u8,
        },
        Lag {
            switch: u8,
            name: u8,
            members: Vec<u8>,
            profile: u8,
        },
        DeleteLag {
            switch: u8,
            name: u8,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        // Small name spaces, so operations collide: a port assigned and
        // then made a LAG member, a profile deleted while in use, VLAN 30
        // that no network has.
        prop_oneof![
            (
                0u8..3,
                prop::sample::select(vec![10u16, 20, 30]),
                any::<bool>()
            )
                .prop_map(|(name, vlan, trunk)| Op::Profile { name, vlan, trunk }),
            (0u8..3).prop_map(|name| Op::DeleteProfile { name }),
            (0u8..2, 0u8..4, 0u8..3).prop_map(|(switch, port, profile)| Op::Assign {
                switch,
                port,
                profile
            }),
            (0u8..2, 0u8..4).prop_map(|(switch, port)| Op::Unassign { switch, port }),
            (0u8..2, 0u8..2, prop::collection::vec(0u8..4, 0..3), 0u8..3).prop_map(
                |(switch, name, members, profile)| Op::Lag {
                    switch,
                    name,
                    members,
                    profile
                }
            ),
            (0u8..2, 0u8..2).prop_map(|(switch, name)| Op::DeleteLag { switch, name }),
        ]
    }

    fn run(c: &Connection, op: &Op) -> Result<(), StoreError> {
        let (s, a) = (site(), actor());
        let sw = |n: u8| SwitchName::new(format!("leaf-{n}")).unwrap();
        let port = |n: u8| PortName::new(format!("swp{n}")).unwrap();
        let profile = |n: u8| PortProfileName::new(format!("p{n}")).unwrap();
        match op {
            Op::Profile { name, vlan, trunk } => {
                let vlan = VlanId::new(*vlan).unwrap();
                let mode = if *trunk {
                    PortMode::Trunk {
                        allowed: vec![vlan],
                        native: None,
                    }
                } else {
                    PortMode::Access { vlan }
                };
                profile_set(c, &s, &a, &profile(*name), mode).map(drop)
            }
            Op::DeleteProfile { name } => profile_delete(c, &s, &a, &profile(*name)).map(drop),
            Op::Assign {
                switch,
                port: p,
                profile: pr,
            } => {
                let req = PortAssignRequest {
                    profile: profile(*pr),
                    machine: None,
                    nic: None,
                };
                port_assign(c, &s, &a, &sw(*switch), &port(*p), &req).map(drop)
            }
            Op::Unassign { switch, port: p } => {
                port_unassign(c, &s, &a, &sw(*switch), &port(*p)).map(drop)
            }
            Op::Lag {
                switch,
                name,
                members,
                profile: pr,
            } => lag_set(
                c,
                &s,
                &a,
                &sw(*switch),
                &LagName::new(format!("bond{name}")).unwrap(),
                members.iter().map(|m| port(*m)).collect(),
                &profile(*pr),
            )
            .map(drop),
            Op::DeleteLag { switch, name } => lag_delete(
                c,
                &s,
                &a,
                &sw(*switch),
                &LagName::new(format!("bond{name}")).unwrap(),
            )
            .map(drop),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Whatever sequence of changes is asked for, the stored intent
        /// always validates, a refused change leaves it (and the outbox)
        /// exactly as it was, every change is one event, and setting what
        /// is already there records none.
        #[test]
        fn the_stored_intent_is_always_valid_and_refusals_change_nothing(
            ops in prop::collection::vec(op(), 1..40)
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path()).unwrap();
                for (name, vlan, prefix) in [("v10", 10, "10.10.0.0/24"), ("v20", 20, "10.20.0.0/24")] {
                    let spec = NetworkSpec {
                        name: NetworkName::new(name).unwrap(),
                        vlan: VlanId::new(vlan).unwrap(),
                        purpose: NetworkPurpose::Tenant,
                        prefix: prefix.parse().unwrap(),
                        gateway: None,
                        dhcp: false,
                        reserved: vec![],
                    };
                    store
                        .write(move |c| ipam::network_create(c, &site(), &actor(), &spec).map(drop))
                        .await
                        .unwrap();
                }
                for op in ops {
                    let before = store.read(load).await.unwrap();
                    let events = store.read(crate::store::outbox::pending_count).await.unwrap();
                    let o = op.clone();
                    let done = store.write(move |c| run(c, &o)).await;
                    let after = store.read(load).await.unwrap();
                    let events_after = store.read(crate::store::outbox::pending_count).await.unwrap();
                    assert!(after.validate().is_ok(), "{op:?} left an invalid intent: {after:?}");
                    match done {
                        // A change is one event; setting what is there is none.
                        Ok(()) if after == before => assert_eq!(events_after, events, "{op:?}"),
                        Ok(()) => assert_eq!(events_after, events + 1, "{op:?}"),
                        Err(StoreError::Intent(_)) => {
                            assert_eq!(after, before, "refused {op:?} changed the intent");
                            assert_eq!(events_after, events, "refused {op:?} recorded an event");
                        }
                        Err(e) => panic!("{op:?}: {e}"),
                    }
                }
                store.close().await;
            });
        }
    }
}
