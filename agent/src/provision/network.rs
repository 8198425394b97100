//! The provisioning `network` step: Maskin depends on Nett. A machine is
//! provisioned only once every switch port cabled to it (a port assignment
//! naming the machine) carries its intent on the switch, as the agent last
//! read it back (after an apply or a drift check). Otherwise the task
//! blocks on `network: ...`, naming the port and what to run; an apply of
//! the switch retries it ([`crate::nett::switches`]).
//!
//! A machine with no assigned port proceeds, and the step log says that
//! its network was not checked; a port on a switch this agent does not
//! configure (a rendered vendor switch) is noted, not checked.

use dv_protocol::{MachineId, SwitchName};

use super::NETWORK_DEPENDENCY;
use super::workflow::Outcome;
use crate::nett::switch::desired_ports;
use crate::store::{Store, StoreError, intent};

/// What one of the machine's ports looks like.
enum Port {
    Realized(String),
    Unmanaged(String),
    Waiting(String),
}

fn ports(
    c: &rusqlite::Connection,
    machine: &MachineId,
    managed: &[SwitchName],
) -> Result<Vec<Port>, StoreError> {
    let assigned = intent::machine_ports(c, machine)?;
    if assigned.is_empty() {
        return Ok(Vec::new());
    }
    let site = intent::load(c)?;
    let mut out = Vec::new();
    for a in assigned {
        let at = format!("{}/{}", a.switch, a.port);
        if !managed.contains(&a.switch) {
            out.push(Port::Unmanaged(format!(
                "{at} is on switch {}, which this agent does not configure; not checked",
                a.switch
            )));
            continue;
        }
        let want = desired_ports(&site, &a.switch)
            .ok()
            .and_then(|d| d.get(&a.port).map(ToString::to_string))
            .unwrap_or_default();
        let state = intent::switch_state(c, &a.switch)?;
        let has = state.as_ref().and_then(|s| {
            s.realized
                .iter()
                .find(|r| r.port == a.port.as_str())
                .map(|r| r.config.clone())
        });
        let applied = state.as_ref().is_some_and(|s| s.apply == "applied");
        let networks: Vec<String> = site
            .networks
            .iter()
            .filter(|n| want.split([' ', ',']).any(|w| w == n.vlan.to_string()))
            .map(|n| format!("{} (VLAN {})", n.name, n.vlan))
            .collect();
        if applied && has.as_deref() == Some(want.as_str()) {
            out.push(Port::Realized(format!(
                "{at} carries {want}: network {} realized",
                networks.join(", ")
            )));
        } else {
            out.push(Port::Waiting(format!(
                "{NETWORK_DEPENDENCY} switch port {at} should carry {want} ({}) but the switch {}; \
                 run `dvnet apply {}`",
                networks.join(", "),
                match has {
                    Some(h) => format!("carries {h}"),
                    None => "does not have it yet".to_owned(),
                },
                a.switch
            )));
        }
    }
    Ok(out)
}

/// The step: done (noted), or blocked on the first port not realized.
pub(super) async fn check(store: &Store, managed: &[SwitchName], machine: MachineId) -> Outcome {
    let managed = managed.to_vec();
    let found = store.read(move |c| ports(c, &machine, &managed)).await;
    let found = match found {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(format!("reading the machine's ports: {e}")),
    };
    if found.is_empty() {
        return Outcome::Noted(
            "no switch port is assigned to this machine; its network was not checked".into(),
        );
    }
    let mut notes = Vec::new();
    for p in found {
        match p {
            Port::Waiting(why) => return Outcome::Blocked(why),
            Port::Realized(n) | Port::Unmanaged(n) => notes.push(n),
        }
    }
    Outcome::Noted(notes.join("; "))
}
