//! The Open vSwitch driver: the ports of one bridge, managed over OVSDB.
//!
//! The switch's configuration lives in its `Open_vSwitch` database (tables
//! `Bridge`, `Port`, `Interface`); `ovs-vswitchd` follows the database. An
//! access port is a `Port` with `tag` (`vlan_mode=access`); a trunk has
//! `trunks` (`vlan_mode=trunk`), and its native VLAN is `tag` with
//! `vlan_mode=native-untagged`.
//!
//! A LAG is a bond: one `Port` with one `Interface` row per member,
//! `bond_mode=balance-tcp` and `lacp=active`. LACP is what makes the two
//! ends agree which links are in the bundle (an active-backup or SLB bond
//! on both ends of a link can each pick a different member and drop what
//! arrives on the other); `balance-tcp` needs LACP, and both work in the
//! userspace datapath over veths. A member whose link goes down (carrier
//! lost) is taken out of the bundle by `ovs-vswitchd` at once. Any port
//! with more than one interface, with `bond_mode` set, or whose one
//! interface is not named like it, is observed as a bond with those
//! members. The bond's mode and LACP setting are written on every change to
//! the port and compared when observed: another value is drift (an
//! `Other` port configuration naming it), and re-applying writes them back.
//!
//! Each change is one OVSDB transaction that starts with `wait` operations
//! (timeout 0) as preconditions: the bridge exists and, for a change to an
//! existing port, the port is still on it, and for a change of members, its
//! interface list is still the one read). So a change planned against a
//! state that has moved fails whole instead of half-applying. New rows are
//! tied together by `uuid-name` (interface, port, bridge membership) inside
//! the transaction. The same transaction bumps `next_cfg`; the driver then
//! waits (bounded) until `ovs-vswitchd` reports `cur_cfg` at least that, like
//! `ovs-vsctl` does, so a finished apply is in force on the datapath and a
//! port whose interface the switch cannot open is seen (and undone) at
//! once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use dv_protocol::{PortName, VlanId};
use serde_json::{Map, Value, json};

use super::ovsdb::{
    self, Condition, Mutation, Op, OpResult, OvsdbClient, OvsdbError, int_set, int_set_value,
};
use super::{Change, Port, PortConfig, Ports, SwitchDriver, SwitchError};

/// The database Open vSwitch keeps its configuration in.
pub const DB: &str = "Open_vSwitch";

/// How long one OVSDB request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `ovs-vswitchd` may take to put a change into force.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// One Open vSwitch bridge, reached over its OVSDB socket.
#[derive(Debug)]
pub struct OvsSwitch {
    client: OvsdbClient,
    bridge: String,
}

impl OvsSwitch {
    /// Connects to the switch's database at `socket` and manages `bridge`.
    pub async fn connect_unix(socket: &Path, bridge: &str) -> Result<Self, SwitchError> {
        let client = OvsdbClient::connect_unix(socket, REQUEST_TIMEOUT).await?;
        Ok(Self::new(client, bridge))
    }

    /// Manages `bridge` over an open client.
    pub fn new(client: OvsdbClient, bridge: &str) -> Self {
        Self {
            client,
            bridge: bridge.to_owned(),
        }
    }

    /// The bridge managed.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    fn bridge_exists(&self) -> Op {
        Op::Wait {
            table: "Bridge".into(),
            conditions: vec![Condition::eq("name", self.bridge.as_str())],
            columns: vec!["name".into()],
            until: "==".into(),
            rows: vec![row([("name", json!(self.bridge))])],
            timeout: Some(0),
        }
    }

    /// A precondition: the port with row id `uuid` is on the bridge.
    fn port_on_bridge(&self, uuid: &str) -> Op {
        Op::Wait {
            table: "Bridge".into(),
            conditions: vec![
                Condition::eq("name", self.bridge.as_str()),
                Condition(
                    "ports".into(),
                    "includes".into(),
                    json!(["set", [["uuid", uuid]]]),
                ),
            ],
            columns: vec!["name".into()],
            until: "==".into(),
            rows: vec![row([("name", json!(self.bridge))])],
            timeout: Some(0),
        }
    }

    /// The row id of `port` and its interfaces (row id and name) if it
    /// is on the bridge.
    async fn port_row(&mut self, port: &PortName) -> Result<Option<PortRow>, SwitchError> {
        let ops = [
            Op::Select {
                table: "Bridge".into(),
                conditions: vec![Condition::eq("name", self.bridge.as_str())],
                columns: Some(vec!["ports".into()]),
            },
            Op::Select {
                table: "Port".into(),
                conditions: vec![Condition::eq("name", port.as_str())],
                columns: Some(vec!["_uuid".into(), "interfaces".into()]),
            },
            Op::Select {
                table: "Interface".into(),
                conditions: vec![],
                columns: Some(vec!["_uuid".into(), "name".into()]),
            },
        ];
        let results = self.client.transact(DB, &ops).await?;
        let on_bridge = self.bridge_ports(results.first())?;
        let Some(r) = rows(results.get(1))?.first() else {
            return Ok(None);
        };
        let uuid = ovsdb::uuid(column(r, "_uuid")?)?;
        if !on_bridge.contains(&uuid) {
            return Ok(None);
        }
        let names = interface_names(rows(results.get(2))?)?;
        let interfaces = ovsdb::uuid_set(column(r, "interfaces")?)?
            .into_iter()
            .map(|u| {
                let name = names
                    .get(&u)
                    .cloned()
                    .ok_or_else(|| malformed(format!("port {port} refers to no interface {u}")))?;
                Ok((u, name))
            })
            .collect::<Result<_, SwitchError>>()?;
        Ok(Some(PortRow { uuid, interfaces }))
    }

    /// The port row ids of the bridge, from a `select` of its `ports`.
    fn bridge_ports(&self, result: Option<&OpResult>) -> Result<Vec<String>, SwitchError> {
        let Some(bridge) = rows(result)?.first() else {
            return Err(SwitchError::NoSuchBridge {
                bridge: self.bridge.clone(),
            });
        };
        Ok(ovsdb::uuid_set(column(bridge, "ports")?)?)
    }

    /// Commits `change` to the database; returns the `next_cfg` that puts
    /// it into force.
    async fn commit(&mut self, change: &Change) -> Result<i64, SwitchError> {
        let port = &change.port;
        let mut ops = Vec::new();
        match (&change.before, &change.after) {
            (None, None) => return current_cfg(&mut self.client).await,
            (None, Some(after)) => {
                let mut port_row = port_columns(port, after)?;
                port_row.insert("name".into(), json!(port.as_str()));
                ops.push(self.bridge_exists());
                let mut ifaces = Vec::new();
                for (i, name) in after.interfaces(port).into_iter().enumerate() {
                    let (op, id) = insert_interface(i, name);
                    ops.push(op);
                    ifaces.push(id);
                }
                port_row.insert("interfaces".into(), json!(["set", ifaces]));
                ops.push(Op::Insert {
                    table: "Port".into(),
                    row: port_row,
                    uuid_name: Some("port".into()),
                });
                ops.push(Op::Mutate {
                    table: "Bridge".into(),
                    conditions: vec![Condition::eq("name", self.bridge.as_str())],
                    mutations: vec![Mutation(
                        "ports".into(),
                        "insert".into(),
                        json!(["set", [["named-uuid", "port"]]]),
                    )],
                });
            }
            (Some(_), after) => {
                let PortRow { uuid, interfaces } = self
                    .port_row(port)
                    .await?
                    .ok_or_else(|| SwitchError::PortGone { port: port.clone() })?;
                ops.push(self.port_on_bridge(&uuid));
                let this_port = || {
                    vec![Condition(
                        "_uuid".into(),
                        "==".into(),
                        json!(["uuid", uuid]),
                    )]
                };
                match after {
                    Some(after) => {
                        let mut port_row = port_columns(port, after)?;
                        let want = after.interfaces(port);
                        let have: BTreeSet<&str> =
                            interfaces.iter().map(|(_, n)| n.as_str()).collect();
                        if want.iter().map(|n| n.as_str()).collect::<BTreeSet<_>>() != have {
                            // The interface list is rewritten whole from the
                            // one read above, so it must not have moved in
                            // between. Interface rows dropped from it are not
                            // root rows: OVSDB deletes them.
                            let current: Vec<Value> =
                                interfaces.iter().map(|(u, _)| json!(["uuid", u])).collect();
                            ops.push(Op::Wait {
                                table: "Port".into(),
                                conditions: this_port(),
                                columns: vec!["interfaces".into()],
                                until: "==".into(),
                                rows: vec![row([("interfaces", json!(["set", current]))])],
                                timeout: Some(0),
                            });
                            let mut ifaces: Vec<Value> = interfaces
                                .iter()
                                .filter(|(_, n)| want.iter().any(|w| w.as_str() == n))
                                .map(|(u, _)| json!(["uuid", u]))
                                .collect();
                            for (i, name) in want
                                .iter()
                                .filter(|w| !have.contains(w.as_str()))
                                .enumerate()
                            {
                                let (op, id) = insert_interface(i, name);
                                ops.push(op);
                                ifaces.push(id);
                            }
                            port_row.insert("interfaces".into(), json!(["set", ifaces]));
                        }
                        ops.push(Op::Update {
                            table: "Port".into(),
                            conditions: this_port(),
                            row: port_row,
                        });
                    }
                    // Port and Interface are not root tables: once the
                    // bridge no longer refers to them, OVSDB deletes them.
                    None => ops.push(Op::Mutate {
                        table: "Bridge".into(),
                        conditions: vec![Condition::eq("name", self.bridge.as_str())],
                        mutations: vec![Mutation(
                            "ports".into(),
                            "delete".into(),
                            json!(["set", [["uuid", uuid]]]),
                        )],
                    }),
                }
            }
        }
        ops.push(Op::Mutate {
            table: "Open_vSwitch".into(),
            conditions: vec![],
            mutations: vec![Mutation("next_cfg".into(), "+=".into(), json!(1))],
        });
        ops.push(Op::Select {
            table: "Open_vSwitch".into(),
            conditions: vec![],
            columns: Some(vec!["next_cfg".into()]),
        });
        let results = match self.client.transact(DB, &ops).await {
            Ok(r) => r,
            // The preconditions are the first operations, and only they
            // can time out.
            Err(OvsdbError::Operation { index, error, .. })
                if index <= 1 && error == "timed out" =>
            {
                // The precondition failed: nothing was written.
                return Err(match change.before {
                    None => SwitchError::NoSuchBridge {
                        bridge: self.bridge.clone(),
                    },
                    Some(_) => SwitchError::PortGone { port: port.clone() },
                });
            }
            Err(e) => return Err(e.into()),
        };
        let cfg = rows(results.last())?
            .first()
            .ok_or_else(|| malformed("Open_vSwitch has no row; run `ovs-vsctl init`"))
            .and_then(|r| column(r, "next_cfg"))
            .and_then(|v| {
                v.as_i64()
                    .ok_or_else(|| malformed(format!("next_cfg is not an integer: {v}")))
            })?;
        Ok(cfg)
    }

    /// Waits (bounded) until `ovs-vswitchd` has put `next_cfg` into force,
    /// then checks a port the change put on the switch really opened.
    async fn settle(&mut self, change: &Change, next_cfg: i64) -> Result<(), SwitchError> {
        let start = tokio::time::Instant::now();
        // ovs-vswitchd usually takes a change within a few milliseconds:
        // look again soon, then back off, so a step costs what the switch
        // takes and not a fixed poll interval.
        let mut pause = Duration::from_millis(1);
        loop {
            if current_cfg(&mut self.client).await? >= next_cfg {
                break;
            }
            if start.elapsed() >= SETTLE_LIMIT {
                return Err(SwitchError::NotTaken {
                    port: change.port.clone(),
                    limit: SETTLE_LIMIT,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        let Some(after) = &change.after else {
            return Ok(());
        };
        // Only the interfaces this change put on the switch: one that was
        // there before and broke since is drift, not this step's failure.
        let before = change
            .before
            .as_ref()
            .map(|b| b.interfaces(&change.port))
            .unwrap_or_default();
        for name in after.interfaces(&change.port).difference(&before) {
            let results = self
                .client
                .transact(
                    DB,
                    &[Op::Select {
                        table: "Interface".into(),
                        conditions: vec![Condition::eq("name", name.as_str())],
                        columns: Some(vec!["ofport".into(), "error".into()]),
                    }],
                )
                .await?;
            let iface = rows(results.first())?;
            let Some(iface) = iface.first() else {
                return Err(SwitchError::PortGone {
                    port: change.port.clone(),
                });
            };
            let error = ovsdb::opt_string(column(iface, "error")?)?;
            let ofport = int_set(column(iface, "ofport")?)?;
            if error.is_some() || ofport.first().is_some_and(|p| *p < 0) {
                return Err(SwitchError::NoSuchInterface {
                    port: (*name).clone(),
                    reason: error.unwrap_or_else(|| "no OpenFlow port number".to_owned()),
                });
            }
        }
        Ok(())
    }
}

impl SwitchDriver for OvsSwitch {
    async fn observe(&mut self) -> Result<Ports, SwitchError> {
        // One transaction: the bridge's port list and the ports are one
        // snapshot.
        let ops = [
            Op::Select {
                table: "Bridge".into(),
                conditions: vec![Condition::eq("name", self.bridge.as_str())],
                columns: Some(vec!["ports".into()]),
            },
            Op::Select {
                table: "Port".into(),
                conditions: vec![],
                columns: Some(
                    [
                        "_uuid",
                        "name",
                        "interfaces",
                        "tag",
                        "trunks",
                        "vlan_mode",
                        "bond_mode",
                        "lacp",
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
            },
            Op::Select {
                table: "Interface".into(),
                conditions: vec![],
                columns: Some(vec!["_uuid".into(), "name".into()]),
            },
        ];
        let results = self.client.transact(DB, &ops).await?;
        let on_bridge = self.bridge_ports(results.first())?;
        let names = interface_names(rows(results.get(2))?)?;
        let mut out = Ports::new();
        for r in rows(results.get(1))? {
            if !on_bridge.contains(&ovsdb::uuid(column(r, "_uuid")?)?) {
                continue;
            }
            let name = column(r, "name")?
                .as_str()
                .ok_or_else(|| malformed("Port.name is not a string"))?;
            // The bridge's own internal port is the switch's, not intent's.
            if name == self.bridge {
                continue;
            }
            let port = PortName::new(name).map_err(|e| SwitchError::Unsupported {
                port: name.to_owned(),
                what: e.to_string(),
            })?;
            let config = port_config(
                ovsdb::opt_string(column(r, "vlan_mode")?)?.as_deref(),
                &int_set(column(r, "tag")?)?,
                &int_set(column(r, "trunks")?)?,
            );
            let interfaces = ovsdb::uuid_set(column(r, "interfaces")?)?
                .iter()
                .map(|u| {
                    let n = names.get(u).ok_or_else(|| {
                        malformed(format!("port {name} refers to no interface {u}"))
                    })?;
                    PortName::new(n.as_str()).map_err(|e| SwitchError::Unsupported {
                        port: name.to_owned(),
                        what: format!("interface {n}: {e}"),
                    })
                })
                .collect::<Result<BTreeSet<PortName>, SwitchError>>()?;
            let bond_mode = ovsdb::opt_string(column(r, "bond_mode")?)?;
            let single = bond_mode.is_none() && interfaces.len() == 1 && interfaces.contains(&port);
            let members = if single { BTreeSet::new() } else { interfaces };
            // A bond whose mode or LACP setting is not what the driver
            // writes is drift: shown with what it is, and re-applying
            // writes the port whole again.
            let lacp = ovsdb::opt_string(column(r, "lacp")?)?;
            let config = if !single
                && (bond_mode.as_deref() != Some(BOND_MODE) || lacp.as_deref() != Some(LACP))
            {
                PortConfig::Other(format!(
                    "{config} as a bond with bond_mode {}, lacp {}",
                    bond_mode.as_deref().unwrap_or("unset"),
                    lacp.as_deref().unwrap_or("unset")
                ))
            } else {
                config
            };
            out.insert(
                port,
                Port {
                    vlan: config,
                    members,
                },
            );
        }
        Ok(out)
    }

    async fn apply_change(&mut self, change: &Change) -> Result<(), SwitchError> {
        let next_cfg = self.commit(change).await?;
        if let Err(e) = self.settle(change, next_cfg).await {
            // The step failed: take its database change back so the switch
            // is as it was. Best effort; the caller sees the first error.
            let undo = change.inverse();
            match self.commit(&undo).await {
                Ok(_) => tracing::info!(change = %undo, "ovs: step undone"),
                Err(u) => tracing::error!(change = %undo, error = %u, "ovs: cannot undo step"),
            }
            return Err(e);
        }
        Ok(())
    }
}

/// A port's row id and its interfaces' row ids and names.
struct PortRow {
    uuid: String,
    interfaces: Vec<(String, String)>,
}

/// Interface row id to name, from a `select` of `_uuid` and `name`.
fn interface_names(rows: &[Map<String, Value>]) -> Result<BTreeMap<String, String>, SwitchError> {
    rows.iter()
        .map(|r| {
            let name = column(r, "name")?
                .as_str()
                .ok_or_else(|| malformed("Interface.name is not a string"))?;
            Ok((ovsdb::uuid(column(r, "_uuid")?)?, name.to_owned()))
        })
        .collect()
}

/// An insert of the interface `name`, and how later operations of the
/// same transaction refer to it (the `i`th new interface).
fn insert_interface(i: usize, name: &PortName) -> (Op, Value) {
    let id = format!("iface{i}");
    (
        Op::Insert {
            table: "Interface".into(),
            row: row([("name", json!(name.as_str()))]),
            uuid_name: Some(id.clone()),
        },
        json!(["named-uuid", id]),
    )
}

/// The bond mode the driver writes (see the module doc).
const BOND_MODE: &str = "balance-tcp";
/// The LACP mode the driver writes.
const LACP: &str = "active";

/// The Port columns that make a port be `port`, its interfaces aside: its
/// VLAN columns, and a bond's mode (LACP, see the module doc) or none.
fn port_columns(name: &PortName, port: &Port) -> Result<Map<String, Value>, SwitchError> {
    let mut cols = vlan_columns(name, &port.vlan)?;
    let (mode, lacp) = if port.members.is_empty() {
        (json!(["set", []]), json!(["set", []]))
    } else {
        (json!(BOND_MODE), json!(LACP))
    };
    cols.insert("bond_mode".into(), mode);
    cols.insert("lacp".into(), lacp);
    Ok(cols)
}

/// The Port columns that make a port carry `config`.
fn vlan_columns(port: &PortName, config: &PortConfig) -> Result<Map<String, Value>, SwitchError> {
    let none = json!(["set", []]);
    let v = |vlan: &VlanId| json!(vlan.get());
    Ok(match config {
        PortConfig::Unset => row([
            ("tag", none.clone()),
            ("trunks", none.clone()),
            ("vlan_mode", none),
        ]),
        PortConfig::Access { vlan } => row([
            ("tag", v(vlan)),
            ("trunks", none),
            ("vlan_mode", json!("access")),
        ]),
        PortConfig::Trunk { allowed, native } => {
            let trunks = int_set_value(allowed.iter().map(|v| i64::from(v.get())));
            match native {
                Some(n) => row([
                    ("tag", v(n)),
                    ("trunks", trunks),
                    ("vlan_mode", json!("native-untagged")),
                ]),
                None => row([
                    ("tag", none),
                    ("trunks", trunks),
                    ("vlan_mode", json!("trunk")),
                ]),
            }
        }
        PortConfig::Other(what) => {
            return Err(SwitchError::Unsupported {
                port: port.to_string(),
                what: what.clone(),
            });
        }
    })
}

/// What a port carries, from its `vlan_mode`, `tag` and `trunks` columns
/// (ovs-vswitchd.conf.db(5), Port "VLAN Configuration").
fn port_config(mode: Option<&str>, tag: &[i64], trunks: &[i64]) -> PortConfig {
    let vlan = |v: i64| u16::try_from(v).ok().and_then(|v| VlanId::new(v).ok());
    let vlans: Option<BTreeSet<VlanId>> = trunks.iter().map(|t| vlan(*t)).collect();
    let other = || PortConfig::Other(format!("vlan_mode={mode:?} tag={tag:?} trunks={trunks:?}"));
    match (mode, tag, vlans) {
        (None, [], Some(v)) if v.is_empty() => PortConfig::Unset,
        (None | Some("access"), [t], Some(v)) if v.is_empty() => match vlan(*t) {
            Some(vlan) => PortConfig::Access { vlan },
            None => other(),
        },
        (None | Some("trunk"), [], Some(allowed)) if !allowed.is_empty() => PortConfig::Trunk {
            allowed,
            native: None,
        },
        (Some("native-untagged"), [t], Some(allowed)) => match vlan(*t) {
            Some(n) if allowed.contains(&n) => PortConfig::Trunk {
                allowed,
                native: Some(n),
            },
            _ => other(),
        },
        _ => other(),
    }
}

async fn current_cfg(client: &mut OvsdbClient) -> Result<i64, SwitchError> {
    let results = client
        .transact(
            DB,
            &[Op::Select {
                table: "Open_vSwitch".into(),
                conditions: vec![],
                columns: Some(vec!["cur_cfg".into()]),
            }],
        )
        .await?;
    let r = rows(results.first())?;
    let r = r
        .first()
        .ok_or_else(|| malformed("Open_vSwitch has no row; run `ovs-vsctl init`"))?;
    let v = column(r, "cur_cfg")?;
    v.as_i64()
        .ok_or_else(|| malformed(format!("cur_cfg is not an integer: {v}")))
}

fn row<const N: usize>(cols: [(&str, Value); N]) -> Map<String, Value> {
    cols.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn rows(result: Option<&OpResult>) -> Result<&[Map<String, Value>], SwitchError> {
    result
        .and_then(|r| r.rows.as_deref())
        .ok_or_else(|| malformed("select returned no rows array"))
}

fn column<'a>(row: &'a Map<String, Value>, name: &str) -> Result<&'a Value, SwitchError> {
    row.get(name)
        .ok_or_else(|| malformed(format!("row lacks column {name}")))
}

fn malformed(what: impl Into<String>) -> SwitchError {
    SwitchError::Ovsdb(OvsdbError::Malformed(what.into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn vlan(v: u16) -> VlanId {
        VlanId::new(v).unwrap()
    }

    #[test]
    fn columns_read_back_as_what_was_written() {
        let port = PortName::new("p").unwrap();
        for config in [
            PortConfig::Unset,
            PortConfig::Access { vlan: vlan(10) },
            PortConfig::Trunk {
                allowed: BTreeSet::from([vlan(10), vlan(20)]),
                native: None,
            },
            PortConfig::Trunk {
                allowed: BTreeSet::from([vlan(10), vlan(20)]),
                native: Some(vlan(20)),
            },
        ] {
            let cols = vlan_columns(&port, &config).unwrap();
            let read = port_config(
                ovsdb::opt_string(&cols["vlan_mode"]).unwrap().as_deref(),
                &int_set(&cols["tag"]).unwrap(),
                &int_set(&cols["trunks"]).unwrap(),
            );
            assert_eq!(read, config);
        }
        assert!(vlan_columns(&port, &PortConfig::Other("x".into())).is_err());
    }

    #[test]
    fn what_the_model_cannot_say_is_other() {
        // Tag 0, a tunnel, a native VLAN outside the trunk, trunk-all.
        assert!(matches!(port_config(None, &[0], &[]), PortConfig::Other(_)));
        assert!(matches!(
            port_config(Some("dot1q-tunnel"), &[10], &[]),
            PortConfig::Other(_)
        ));
        assert!(matches!(
            port_config(Some("native-untagged"), &[30], &[10]),
            PortConfig::Other(_)
        ));
        assert!(matches!(
            port_config(Some("trunk"), &[], &[]),
            PortConfig::Other(_)
        ));
        assert_eq!(
            port_config(None, &[10], &[]),
            PortConfig::Access { vlan: vlan(10) }
        );
    }
}
