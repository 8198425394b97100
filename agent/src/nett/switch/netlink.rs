//! The Linux bridge driver: the ports of one VLAN-aware bridge, managed
//! over rtnetlink in the agent's own network namespace.
//!
//! A port is a link whose master is the bridge. What it carries is its
//! bridge VLAN table (`bridge vlan show`), read from the AF_BRIDGE link
//! dump: an access port has one VLAN that is PVID and egresses untagged; a
//! trunk has its allowed VLANs tagged, and its native VLAN (if any) PVID
//! and untagged. Applying a change sets or clears the port's master (`ip
//! link set .. master br0` / `nomaster`) and adds and deletes VLAN entries
//! (RTM_SETLINK / RTM_DELLINK with `IFLA_AF_SPEC`, as `bridge vlan add|del`
//! does) until the table is exactly the change's `after`.
//!
//! Without `vlan_filtering` the bridge forwards every frame between every
//! port whatever the VLAN table says, so the driver refuses such a bridge
//! ([`SwitchError::NoVlanFiltering`]) when constructed and when it plans.
//! Kernels built without `CONFIG_BRIDGE_VLAN_FILTERING` (the project's
//! machines and CI, DEPENDENCIES.md gotcha 8) cannot turn it on: there, use
//! the Open vSwitch driver.
//!
//! The mapping between a VLAN table and a [`PortConfig`], and the entries to
//! add and delete for a change, are pure functions ([`port_config`],
//! [`entries`], [`vlan_ops`]) so they are tested without a kernel.

use std::collections::{BTreeMap, BTreeSet};

use dv_protocol::{PortName, VlanId};
use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::link::{
    AfSpecBridge, BridgeVlanInfo, BridgeVlanInfoFlags, InfoBridge, InfoData, InfoKind,
    LinkAttribute, LinkExtentMask, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridgeVlan, LinkUnspec};

use super::{Change, Plan, Port, PortConfig, Ports, SwitchDriver, SwitchError, diff};

/// One row of a port's bridge VLAN table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VlanEntry {
    /// The VLAN id.
    pub vid: u16,
    /// Untagged frames arriving on the port belong to this VLAN.
    pub pvid: bool,
    /// Frames of this VLAN leave the port untagged.
    pub untagged: bool,
}

/// The rows of a VLAN table as the kernel sends them, ranges expanded
/// (a `RangeBegin` row up to its `RangeEnd` row stands for every VLAN in
/// between, with the begin row's flags).
pub fn expand(infos: &[BridgeVlanInfo]) -> Vec<VlanEntry> {
    let mut out = Vec::new();
    let mut begin: Option<&BridgeVlanInfo> = None;
    for info in infos {
        let entry = |vid| VlanEntry {
            vid,
            pvid: info.flags.contains(BridgeVlanInfoFlags::Pvid),
            untagged: info.flags.contains(BridgeVlanInfoFlags::Untagged),
        };
        if info.flags.contains(BridgeVlanInfoFlags::RangeBegin) {
            begin = Some(info);
        } else if info.flags.contains(BridgeVlanInfoFlags::RangeEnd) {
            let from = begin.take().map_or(info.vid, |b| b.vid);
            out.extend((from..=info.vid).map(entry));
        } else {
            out.push(entry(info.vid));
        }
    }
    out
}

/// What a port with `table` carries. No rows: on the bridge without any
/// VLAN (it forwards nothing). One PVID-and-untagged row: access. Rows all
/// tagged except at most one PVID-and-untagged native: a trunk. Anything
/// else (a PVID that egresses tagged, untagged egress on a non-PVID VLAN)
/// is `Other`, described as `bridge vlan show` would.
pub fn port_config(table: &[VlanEntry]) -> PortConfig {
    let mut rows: Vec<VlanEntry> = table.to_vec();
    rows.sort();
    rows.dedup();
    if rows.is_empty() {
        return PortConfig::Unset;
    }
    let odd: Vec<String> = rows
        .iter()
        .filter(|r| r.pvid != r.untagged)
        .map(|r| {
            if r.pvid {
                format!("VLAN {} is PVID but egresses tagged", r.vid)
            } else {
                format!("VLAN {} egresses untagged but is not the PVID", r.vid)
            }
        })
        .collect();
    if !odd.is_empty() {
        return PortConfig::Other(odd.join(", "));
    }
    let mut allowed = BTreeSet::new();
    let mut native = None;
    for r in &rows {
        let Ok(vlan) = VlanId::new(r.vid) else {
            return PortConfig::Other(format!("VLAN {} is outside 1..=4094", r.vid));
        };
        allowed.insert(vlan);
        if r.pvid {
            native = Some(vlan);
        }
    }
    match (allowed.len(), native) {
        (1, Some(vlan)) => PortConfig::Access { vlan },
        _ => PortConfig::Trunk { allowed, native },
    }
}

/// The VLAN table that makes a port carry `config`; `None` for `Other`,
/// which no driver can write.
pub fn entries(config: &PortConfig) -> Option<Vec<VlanEntry>> {
    match config {
        PortConfig::Unset => Some(Vec::new()),
        PortConfig::Access { vlan } => Some(vec![VlanEntry {
            vid: vlan.get(),
            pvid: true,
            untagged: true,
        }]),
        PortConfig::Trunk { allowed, native } => Some(
            allowed
                .iter()
                .map(|v| VlanEntry {
                    vid: v.get(),
                    pvid: Some(*v) == *native,
                    untagged: Some(*v) == *native,
                })
                .collect(),
        ),
        PortConfig::Other(_) => None,
    }
}

/// What to send to turn a port's VLAN table into another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VlanOps {
    /// VLANs to delete from the port.
    pub del: Vec<u16>,
    /// Rows to add, or to re-add with new flags (the kernel moves the PVID
    /// and the untagged bit on a re-add).
    pub add: Vec<VlanEntry>,
}

impl VlanOps {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.del.is_empty() && self.add.is_empty()
    }
}

/// The deletions and additions that turn `current` into `target`, in VLAN
/// order; deletions run first, so a PVID moving to another VLAN never
/// leaves two.
pub fn vlan_ops(current: &[VlanEntry], target: &[VlanEntry]) -> VlanOps {
    let now: BTreeMap<u16, VlanEntry> = current.iter().map(|e| (e.vid, *e)).collect();
    let want: BTreeMap<u16, VlanEntry> = target.iter().map(|e| (e.vid, *e)).collect();
    VlanOps {
        del: now
            .keys()
            .filter(|v| !want.contains_key(v))
            .copied()
            .collect(),
        add: want
            .values()
            .filter(|e| now.get(&e.vid) != Some(e))
            .copied()
            .collect(),
    }
}

/// An intent trunk that allows only its native VLAN is, on a Linux bridge,
/// the same table as an access port, and observe reports it as access; so
/// plans compare the desired ports in that form, or such a port would drift
/// forever.
pub fn normalize(desired: &Ports) -> Ports {
    desired
        .iter()
        .map(|(port, p)| {
            let vlan = match &p.vlan {
                PortConfig::Trunk {
                    allowed,
                    native: Some(n),
                } if allowed.len() == 1 && allowed.contains(n) => PortConfig::Access { vlan: *n },
                other => other.clone(),
            };
            (
                port.clone(),
                Port {
                    vlan,
                    members: p.members.clone(),
                },
            )
        })
        .collect()
}

fn flags(e: &VlanEntry) -> BridgeVlanInfoFlags {
    let mut f = BridgeVlanInfoFlags::empty();
    if e.pvid {
        f |= BridgeVlanInfoFlags::Pvid;
    }
    if e.untagged {
        f |= BridgeVlanInfoFlags::Untagged;
    }
    f
}

/// `EOPNOTSUPP`: what the kernel answers VLAN requests with when it lacks
/// bridge VLAN filtering.
const EOPNOTSUPP: i32 = 95;

/// `ENODEV`: no link by the name asked for.
const ENODEV: i32 = 19;

/// A link as the driver needs it.
#[derive(Debug, Clone)]
struct Link {
    index: u32,
    master: Option<u32>,
}

/// One VLAN-aware Linux bridge in this process's network namespace.
#[derive(Debug)]
pub struct NetlinkBridge {
    handle: Handle,
    bridge: String,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for NetlinkBridge {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl NetlinkBridge {
    /// Opens an rtnetlink socket in the current network namespace (the
    /// calling thread's) and manages `bridge`, which must exist and have
    /// VLAN filtering on. Needs a tokio runtime; the socket's task runs on
    /// it until the driver is dropped.
    pub async fn new(bridge: &str) -> Result<Self, SwitchError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| SwitchError::Netlink {
                op: "open an rtnetlink socket".to_owned(),
                reason: e.to_string(),
            })?;
        let driver = NetlinkBridge {
            handle,
            bridge: bridge.to_owned(),
            connection: tokio::spawn(connection),
        };
        driver.bridge_index().await?;
        Ok(driver)
    }

    /// The bridge managed.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    fn failed(&self, op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> SwitchError {
        let op = op.into();
        let bridge = self.bridge.clone();
        move |e| match &e {
            rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == EOPNOTSUPP => {
                SwitchError::NoVlanFiltering { bridge }
            }
            _ => SwitchError::Netlink {
                op,
                reason: e.to_string(),
            },
        }
    }

    /// The bridge's index, after checking it is a bridge with VLAN
    /// filtering on.
    async fn bridge_index(&self) -> Result<u32, SwitchError> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(self.bridge.clone())
            .execute()
            .try_next()
            .await;
        let msg = match found {
            Ok(Some(msg)) => msg,
            Ok(None) => {
                return Err(SwitchError::NoSuchBridge {
                    bridge: self.bridge.clone(),
                });
            }
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code().abs() == ENODEV => {
                return Err(SwitchError::NoSuchBridge {
                    bridge: self.bridge.clone(),
                });
            }
            Err(e) => return Err(self.failed(format!("read link {}", self.bridge))(e)),
        };
        let infos = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => Some(infos),
            _ => None,
        });
        let is_bridge = infos.is_some_and(|i| i.contains(&LinkInfo::Kind(InfoKind::Bridge)));
        if !is_bridge {
            return Err(SwitchError::NoSuchBridge {
                bridge: self.bridge.clone(),
            });
        }
        // A kernel without CONFIG_BRIDGE_VLAN_FILTERING does not report the
        // attribute at all; that is "off" too.
        let filtering = infos.into_iter().flatten().any(|i| match i {
            LinkInfo::Data(InfoData::Bridge(opts)) => {
                opts.contains(&InfoBridge::VlanFiltering(true))
            }
            _ => false,
        });
        if !filtering {
            return Err(SwitchError::NoVlanFiltering {
                bridge: self.bridge.clone(),
            });
        }
        Ok(msg.header.index)
    }

    /// The link named `port`, if any.
    async fn link(&self, port: &PortName) -> Result<Option<Link>, SwitchError> {
        let mut links = self.links().await?;
        Ok(links.remove(port.as_str()))
    }

    async fn links(&self) -> Result<BTreeMap<String, Link>, SwitchError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(self.failed("list links"))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| {
                let mut name = None;
                let mut master = None;
                for a in &m.attributes {
                    match a {
                        LinkAttribute::IfName(n) => name = Some(n.clone()),
                        LinkAttribute::Controller(c) if *c != 0 => master = Some(*c),
                        _ => {}
                    }
                }
                name.map(|n| {
                    (
                        n,
                        Link {
                            index: m.header.index,
                            master,
                        },
                    )
                })
            })
            .collect())
    }

    /// The VLAN tables of the bridge's ports, by port name.
    async fn tables(&self, bridge: u32) -> Result<BTreeMap<String, Vec<VlanEntry>>, SwitchError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .set_filter_mask(AddressFamily::Bridge, vec![LinkExtentMask::Brvlan])
            .execute()
            .try_collect()
            .await
            .map_err(self.failed("dump bridge VLANs"))?;
        let mut out = BTreeMap::new();
        for m in msgs {
            if m.header.index == bridge {
                continue;
            }
            let mut name = None;
            let mut master = None;
            let mut infos = Vec::new();
            for a in &m.attributes {
                match a {
                    LinkAttribute::IfName(n) => name = Some(n.clone()),
                    LinkAttribute::Controller(c) => master = Some(*c),
                    LinkAttribute::AfSpecBridge(specs) => {
                        infos.extend(specs.iter().filter_map(|s| match s {
                            AfSpecBridge::VlanInfo(i) => Some(*i),
                            _ => None,
                        }));
                    }
                    _ => {}
                }
            }
            if let (Some(name), Some(m)) = (name, master)
                && m == bridge
            {
                out.insert(name, expand(&infos));
            }
        }
        Ok(out)
    }

    async fn table(&self, bridge: u32, port: &PortName) -> Result<Vec<VlanEntry>, SwitchError> {
        Ok(self
            .tables(bridge)
            .await?
            .remove(port.as_str())
            .unwrap_or_default())
    }

    async fn set_master(&self, index: u32, master: Option<u32>) -> Result<(), SwitchError> {
        let msg = match master {
            Some(m) => LinkUnspec::new_with_index(index).controller(m).build(),
            None => LinkUnspec::new_with_index(index).nocontroller().build(),
        };
        let op = if master.is_some() {
            "put the port on the bridge"
        } else {
            "take the port off the bridge"
        };
        self.handle
            .link()
            .change(msg)
            .execute()
            .await
            .map_err(self.failed(op))
    }

    async fn send(&self, index: u32, ops: &VlanOps) -> Result<(), SwitchError> {
        if !ops.del.is_empty() {
            let mut msg = LinkBridgeVlan::new(index);
            for vid in &ops.del {
                msg = msg.vlan(*vid, BridgeVlanInfoFlags::empty());
            }
            self.handle
                .link()
                .del_with_message(msg.build())
                .execute()
                .await
                .map_err(self.failed(format!("delete VLANs {:?}", ops.del)))?;
        }
        if !ops.add.is_empty() {
            let mut msg = LinkBridgeVlan::new(index);
            for e in &ops.add {
                msg = msg.vlan(e.vid, flags(e));
            }
            let vids: Vec<u16> = ops.add.iter().map(|e| e.vid).collect();
            self.handle
                .link()
                .set(msg.build())
                .execute()
                .await
                .map_err(self.failed(format!("add VLANs {vids:?}")))?;
        }
        Ok(())
    }

    /// Applies `change`; on failure leaves what it did to the caller's undo.
    async fn try_apply(
        &self,
        change: &Change,
        bridge: u32,
        link: &Link,
        undo: &mut Option<(Vec<VlanEntry>, bool)>,
    ) -> Result<(), SwitchError> {
        let on_bridge = link.master == Some(bridge);
        let Some(after) = &change.after else {
            if on_bridge {
                *undo = Some((self.table(bridge, &change.port).await?, false));
                self.set_master(link.index, None).await?;
            }
            return Ok(());
        };
        // A bond is a device of its own on Linux (made by the host's
        // network configuration); this driver puts ports on the bridge, it
        // does not make bonds.
        if !after.members.is_empty() {
            return Err(SwitchError::Unsupported {
                port: change.port.to_string(),
                what: "a LAG: create the bond device on the host and assign it as a port".into(),
            });
        }
        let target = entries(&after.vlan).ok_or_else(|| SwitchError::Unsupported {
            port: change.port.to_string(),
            what: format!("{after} cannot be written"),
        })?;
        if !on_bridge {
            *undo = Some((Vec::new(), true));
            self.set_master(link.index, Some(bridge)).await?;
        } else {
            *undo = Some((self.table(bridge, &change.port).await?, false));
        }
        // Read back rather than assume: joining a bridge gives the port
        // the bridge's default PVID (VLAN 1 untagged), which must go
        // unless the intent wants it.
        let current = self.table(bridge, &change.port).await?;
        self.send(link.index, &vlan_ops(&current, &target)).await
    }
}

impl SwitchDriver for NetlinkBridge {
    async fn observe(&mut self) -> Result<Ports, SwitchError> {
        let bridge = self.bridge_index().await?;
        let mut ports = Ports::new();
        for (name, table) in self.tables(bridge).await? {
            let port = PortName::new(name.clone()).map_err(|e| SwitchError::Unsupported {
                port: name,
                what: e.to_string(),
            })?;
            ports.insert(port, Port::single(port_config(&table)));
        }
        Ok(ports)
    }

    async fn plan(&mut self, desired: &Ports) -> Result<Plan, SwitchError> {
        Ok(diff(&normalize(desired), &self.observe().await?))
    }

    /// One port's change. Netlink has no transactions, so a step that fails
    /// midway puts back what it had changed (the port's master and VLAN
    /// table) before reporting, best effort.
    async fn apply_change(&mut self, change: &Change) -> Result<(), SwitchError> {
        let bridge = self.bridge_index().await?;
        let Some(link) = self.link(&change.port).await? else {
            return Err(match change.before {
                Some(_) => SwitchError::PortGone {
                    port: change.port.clone(),
                },
                None => SwitchError::NoSuchInterface {
                    port: change.port.clone(),
                    reason: "no link by that name".to_owned(),
                },
            });
        };
        let on_bridge = link.master == Some(bridge);
        if change.before.is_some() && !on_bridge {
            return Err(SwitchError::PortGone {
                port: change.port.clone(),
            });
        }
        if change.before.is_none() && on_bridge {
            // Planned as absent but it is there: the state moved.
            return Err(SwitchError::Unsupported {
                port: change.port.to_string(),
                what: "already on the bridge; plan again".to_owned(),
            });
        }
        let mut undo = None;
        let result = self.try_apply(change, bridge, &link, &mut undo).await;
        if let (Err(e), Some((table, joined))) = (&result, undo) {
            let restored = if joined {
                self.set_master(link.index, None).await
            } else {
                match self.set_master(link.index, Some(bridge)).await {
                    Ok(()) => {
                        let now = self.table(bridge, &change.port).await.unwrap_or_default();
                        self.send(link.index, &vlan_ops(&now, &table)).await
                    }
                    Err(e) => Err(e),
                }
            };
            if let Err(undo_err) = restored {
                tracing::error!(port = %change.port, error = %e, undo = %undo_err,
                    "netlink bridge: a failed step could not be undone; the port needs attention");
            }
        }
        result
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn e(vid: u16, pvid: bool, untagged: bool) -> VlanEntry {
        VlanEntry {
            vid,
            pvid,
            untagged,
        }
    }

    fn vlan(v: u16) -> VlanId {
        VlanId::new(v).unwrap()
    }

    fn trunk(allowed: &[u16], native: Option<u16>) -> PortConfig {
        PortConfig::Trunk {
            allowed: allowed.iter().map(|v| vlan(*v)).collect(),
            native: native.map(vlan),
        }
    }

    #[test]
    fn tables_map_to_port_configs() {
        assert_eq!(port_config(&[]), PortConfig::Unset);
        assert_eq!(
            port_config(&[e(10, true, true)]),
            PortConfig::Access { vlan: vlan(10) }
        );
        assert_eq!(
            port_config(&[e(20, false, false), e(10, true, true)]),
            trunk(&[10, 20], Some(10))
        );
        assert_eq!(
            port_config(&[e(20, false, false), e(10, false, false)]),
            trunk(&[10, 20], None)
        );
        assert_eq!(port_config(&[e(10, false, false)]), trunk(&[10], None));
        let PortConfig::Other(what) = port_config(&[e(10, true, false), e(20, false, true)]) else {
            panic!()
        };
        assert_eq!(
            what,
            "VLAN 10 is PVID but egresses tagged, VLAN 20 egresses untagged but is not the PVID"
        );
    }

    #[test]
    fn configs_map_back_to_the_same_tables() {
        for config in [
            PortConfig::Unset,
            PortConfig::Access { vlan: vlan(10) },
            trunk(&[10, 20, 4094], Some(20)),
            trunk(&[10, 20], None),
        ] {
            assert_eq!(port_config(&entries(&config).unwrap()), config, "{config}");
        }
        assert_eq!(entries(&PortConfig::Other("x".into())), None);
    }

    #[test]
    fn ranges_expand() {
        let info = |vid, flags| BridgeVlanInfo { vid, flags };
        let rows = expand(&[
            info(1, BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged),
            info(10, BridgeVlanInfoFlags::RangeBegin),
            info(12, BridgeVlanInfoFlags::RangeEnd),
        ]);
        assert_eq!(
            rows,
            [
                e(1, true, true),
                e(10, false, false),
                e(11, false, false),
                e(12, false, false)
            ]
        );
    }

    #[test]
    fn ops_delete_what_goes_and_add_what_changes() {
        // A port that just joined (default PVID 1) becoming access 10.
        let ops = vlan_ops(
            &[e(1, true, true)],
            &entries(&PortConfig::Access { vlan: vlan(10) }).unwrap(),
        );
        assert_eq!(ops.del, [1]);
        assert_eq!(ops.add, [e(10, true, true)]);
        // Trunk 10,20 native 10 to trunk 10,20,30 native 20: 10 loses its
        // flags, 20 gains them, 30 is new; nothing is deleted.
        let ops = vlan_ops(
            &entries(&trunk(&[10, 20], Some(10))).unwrap(),
            &entries(&trunk(&[10, 20, 30], Some(20))).unwrap(),
        );
        assert!(ops.del.is_empty());
        assert_eq!(
            ops.add,
            [e(10, false, false), e(20, true, true), e(30, false, false)]
        );
        let same = entries(&trunk(&[10, 20], None)).unwrap();
        assert!(vlan_ops(&same, &same).is_empty());
        // To no VLANs at all.
        let ops = vlan_ops(&same, &[]);
        assert_eq!(ops.del, [10, 20]);
        assert!(ops.add.is_empty());
    }

    #[test]
    fn a_trunk_of_only_its_native_vlan_plans_as_access() {
        let p = PortName::new("h1p").unwrap();
        let desired = Ports::from([(p.clone(), Port::single(trunk(&[10], Some(10))))]);
        let observed = Ports::from([(p, Port::single(PortConfig::Access { vlan: vlan(10) }))]);
        assert!(diff(&normalize(&desired), &observed).is_empty());
    }

    #[test]
    fn the_refusal_tells_the_operator_what_to_use() {
        let e = SwitchError::NoVlanFiltering {
            bridge: "br0".into(),
        };
        let text = e.to_string();
        assert!(text.contains("CONFIG_BRIDGE_VLAN_FILTERING"), "{text}");
        assert!(text.contains("Open vSwitch"), "{text}");
        assert!(text.contains("vlan_filtering 1"), "{text}");
    }
}
