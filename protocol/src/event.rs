//! Events: append-only facts a site or the hub publishes.
//!
//! An [`Event`] is an id plus an [`EventBody`]; the body says what happened
//! and to what, and determines the subject the event is published on
//! ([`Event::subject`]): its service, entity and verb tokens are fixed per
//! variant, so no caller can publish a lease fact on a machine subject.
//! `Display` renders one line an operator can read.
//!
//! New variants go at the end of [`EventBody`]: postcard numbers variants by
//! position (see `docs/adr/0003-envelope-and-codec.md`).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::dns_name::DnsName;
use crate::envelope::{Actor, Message};
use crate::id::{
    AllocationId, BmcId, DnsRecordId, EventId, MachineId, MessageId, NetworkId, TaskId,
};
use crate::mac::MacAddr;
use crate::resource::{
    Allocation, Bmc, DnsRecord, Lease, LeaseRef, Machine, MachineState, Network, Prefix, Rack,
    Site, Task, TaskState,
};
use crate::subject::{EVT, ROOT, Subject, service};
use crate::token::{NetworkName, SiteName, SwitchName};

/// A fact that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event's id; consumers deduplicate on it.
    pub id: EventId,
    /// What happened.
    pub body: EventBody,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventBody {
    /// A site joined the federation (or re-announced itself).
    SiteRegistered {
        /// The site record.
        site: Site,
    },
    /// A rack was added to a site.
    RackAdded {
        /// The rack.
        rack: Rack,
    },
    /// A machine was seen for the first time.
    MachineDiscovered {
        /// The machine as first recorded.
        machine: Machine,
    },
    /// A machine moved in its lifecycle.
    MachineStateChanged {
        /// The machine.
        machine: MachineId,
        /// The state it left.
        from: MachineState,
        /// The state it is in now.
        to: MachineState,
    },
    /// A BMC was registered (found by scan, imported, or matched to a machine).
    BmcRegistered {
        /// The BMC.
        bmc: Bmc,
    },
    /// A network (VLAN) was defined.
    NetworkCreated {
        /// The network.
        network: Network,
    },
    /// A prefix was added to a network.
    PrefixAdded {
        /// The prefix.
        prefix: Prefix,
    },
    /// The DHCP server acknowledged a lease (DHCPACK).
    LeaseBound {
        /// The lease.
        lease: Lease,
    },
    /// A client released its lease (DHCPRELEASE).
    LeaseReleased {
        /// Which lease.
        lease: LeaseRef,
    },
    /// A client declined its address as in use; the address is quarantined.
    LeaseDeclined {
        /// Which lease.
        lease: LeaseRef,
    },
    /// A lease ran out without renewal.
    LeaseExpired {
        /// Which lease.
        lease: LeaseRef,
    },
    /// A DNS record was created or changed.
    DnsRecordUpserted {
        /// The record as it is now.
        record: DnsRecord,
    },
    /// A DNS record was removed.
    DnsRecordRemoved {
        /// Which record.
        record: DnsRecordId,
        /// Its owner name, for the operator.
        name: DnsName,
    },
    /// A task was created.
    TaskCreated {
        /// The task as created.
        task: Task,
    },
    /// A task changed state.
    TaskStateChanged {
        /// The task.
        task: TaskId,
        /// The state it left.
        from: TaskState,
        /// The state it is in now.
        to: TaskState,
    },
    /// A network-booted machine reported progress to the agent's boot
    /// callback (discovery finished, install done, local boot failed).
    MachineBootReported {
        /// The NIC the machine booted from.
        mac: MacAddr,
        /// The address it reported, or the peer address of the request.
        ip: Option<IpAddr>,
        /// The boot stage it reported (`discovered`, `installed`, ...).
        stage: String,
        /// Everything else it sent, as `key=value` pairs joined by `&`.
        detail: String,
    },
    /// An operator or workflow set what a machine boots into next time it
    /// network-boots (`discover`, `install`, `local`, `rescue`).
    MachineBootStateSet {
        /// The NIC the machine boots from.
        mac: MacAddr,
        /// The previous state; `None` for a machine the agent had no entry for.
        from: Option<String>,
        /// The new state.
        to: String,
    },
    /// A machine's inventory record changed (a curated import updated it,
    /// or adopted a machine that had discovered itself).
    MachineUpdated {
        /// The machine as it is now.
        machine: Machine,
    },
    /// A BMC's TLS certificate was pinned: on first use, or re-pinned by an
    /// operator after the certificate changed.
    BmcCertificatePinned {
        /// The BMC.
        bmc: BmcId,
        /// Its machine.
        machine: MachineId,
        /// SHA-256 of the certificate now pinned (colon-separated hex).
        sha256: String,
        /// The pin it replaced; `None` on first use.
        previous: Option<String>,
    },
    /// A site refused a well-formed command it received (no such machine):
    /// the command is not carried out and will not be retried. A malformed
    /// one (does not decode, body on another command's subject) is only
    /// logged.
    CommandRejected {
        /// The command's id (its envelope id).
        command: MessageId,
        /// Its action token (`provision`, ...).
        action: String,
        /// Why, for the operator who sent it.
        reason: String,
    },
    /// A network was deleted (it held no allocations).
    NetworkDeleted {
        /// The network.
        network: NetworkId,
        /// Its name, for the operator.
        name: NetworkName,
    },
    /// IPAM handed out an address (with its DHCP reservation and DNS
    /// records, committed together).
    AddressAllocated {
        /// The allocation.
        allocation: Allocation,
    },
    /// An allocated address was released (with its reservation and records).
    AddressReleased {
        /// The allocation that ended.
        allocation: AllocationId,
        /// Its network.
        network: NetworkId,
        /// The address, free again.
        address: IpAddr,
    },
    /// Switch-port intent changed: a port profile, a port assignment or a
    /// LAG was set or removed.
    PortIntentChanged {
        /// The switch it is about; `None` for a profile (every switch).
        switch: Option<SwitchName>,
        /// What changed, as an operator reads it.
        change: String,
    },
    /// A switch was brought to the intent; `realized` is what it carries
    /// now, read back from it.
    SwitchApplied {
        /// The switch.
        switch: SwitchName,
        /// The changes applied, in order.
        changes: Vec<String>,
        /// Its ports as read back (`swp1: access 10`).
        realized: Vec<String>,
    },
    /// Applying to a switch failed at a step; the steps before it were
    /// undone (those in `rollback_failed` could not be).
    SwitchApplyFailed {
        /// The switch.
        switch: SwitchName,
        /// The step that failed.
        failed: String,
        /// Why.
        reason: String,
        /// The steps undone.
        rolled_back: Vec<String>,
        /// The steps whose undo failed.
        rollback_failed: Vec<String>,
    },
    /// A switch no longer does what the intent says (changed behind the
    /// agent's back); applying converges it.
    SwitchDrifted {
        /// The switch.
        switch: SwitchName,
        /// What applying would change.
        drift: Vec<String>,
    },
}

/// Where an event body is published: `(service, entity, verb)`; `entity` is
/// `None` for task events.
type Route = (&'static str, Option<&'static str>, &'static str);

impl EventBody {
    fn route(&self) -> Route {
        use service::{DHCP, DNS, MASKIN, NETT, SITE, TASK};
        match self {
            Self::SiteRegistered { .. } => (SITE, Some("site"), "registered"),
            Self::RackAdded { .. } => (MASKIN, Some("rack"), "added"),
            Self::MachineDiscovered { .. } => (MASKIN, Some("machine"), "discovered"),
            Self::MachineStateChanged { .. } => (MASKIN, Some("machine"), "state-changed"),
            Self::BmcRegistered { .. } => (MASKIN, Some("bmc"), "registered"),
            Self::NetworkCreated { .. } => (NETT, Some("network"), "created"),
            Self::PrefixAdded { .. } => (NETT, Some("prefix"), "added"),
            Self::LeaseBound { .. } => (DHCP, Some("lease"), "bound"),
            Self::LeaseReleased { .. } => (DHCP, Some("lease"), "released"),
            Self::LeaseDeclined { .. } => (DHCP, Some("lease"), "declined"),
            Self::LeaseExpired { .. } => (DHCP, Some("lease"), "expired"),
            Self::DnsRecordUpserted { .. } => (DNS, Some("record"), "upserted"),
            Self::DnsRecordRemoved { .. } => (DNS, Some("record"), "removed"),
            Self::TaskCreated { .. } => (TASK, None, "created"),
            Self::TaskStateChanged { .. } => (TASK, None, "state-changed"),
            Self::MachineBootReported { .. } => (MASKIN, Some("machine"), "boot-reported"),
            Self::MachineBootStateSet { .. } => (MASKIN, Some("machine"), "boot-state-set"),
            Self::MachineUpdated { .. } => (MASKIN, Some("machine"), "updated"),
            Self::BmcCertificatePinned { .. } => (MASKIN, Some("bmc"), "certificate-pinned"),
            Self::CommandRejected { .. } => (SITE, Some("command"), "rejected"),
            Self::NetworkDeleted { .. } => (NETT, Some("network"), "deleted"),
            Self::AddressAllocated { .. } => (NETT, Some("address"), "allocated"),
            Self::AddressReleased { .. } => (NETT, Some("address"), "released"),
            Self::PortIntentChanged { .. } => (NETT, Some("intent"), "changed"),
            Self::SwitchApplied { .. } => (NETT, Some("switch"), "applied"),
            Self::SwitchApplyFailed { .. } => (NETT, Some("switch"), "apply-failed"),
            Self::SwitchDrifted { .. } => (NETT, Some("switch"), "drifted"),
        }
    }

    /// The service token this event is published under.
    pub fn service(&self) -> &'static str {
        self.route().0
    }

    /// The entity token (`machine`, `lease`); `None` for task events.
    pub fn entity(&self) -> Option<&'static str> {
        self.route().1
    }

    /// The verb token (`discovered`, `state-changed`).
    pub fn verb(&self) -> &'static str {
        self.route().2
    }

    /// The subject this event is published on in `site`.
    pub fn subject(&self, site: &SiteName) -> Subject {
        let subject = match self.route() {
            (service, Some(entity), verb) => {
                format!("{ROOT}.{site}.{service}.{EVT}.{entity}.{verb}")
            }
            (service, None, verb) => format!("{ROOT}.{site}.{service}.{EVT}.{verb}"),
        };
        Subject::from_valid(subject)
    }
}

impl Event {
    /// A new event with a fresh id.
    pub fn new(body: EventBody) -> Self {
        Self {
            id: EventId::new(),
            body,
        }
    }

    /// The subject this event is published on in `site`.
    pub fn subject(&self, site: &SiteName) -> Subject {
        self.body.subject(site)
    }
}

impl Message<Event> {
    /// A message publishing `event`, starting a new conversation, whose id
    /// (and so `Nats-Msg-Id`) is the event id: a publisher that resends the
    /// same event after a crash sends the same id, and JetStream drops the
    /// duplicate. Chain [`Message::caused_by`] when the event follows from a
    /// command.
    pub fn from_event(site: SiteName, actor: Actor, event: Event) -> Self {
        let mut message = Message::new(site, actor, event);
        message.envelope.id = message.body.id.into();
        message.envelope.correlation_id = message.envelope.id.into();
        message
    }
}

impl fmt::Display for EventBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SiteRegistered { site } => {
                write!(f, "site {} registered ({})", site.name, site.domain)
            }
            Self::RackAdded { rack } => write!(
                f,
                "rack {} ({}) added to site {}",
                rack.name, rack.id, rack.site
            ),
            Self::MachineDiscovered { machine } => write!(
                f,
                "machine {} discovered (serial {:?}, {} MACs)",
                machine.id,
                machine.serial,
                machine.macs.len()
            ),
            Self::MachineStateChanged { machine, from, to } => {
                write!(f, "machine {machine} changed state: {from} -> {to}")
            }
            Self::BmcRegistered { bmc } => write!(
                f,
                "bmc {} registered at {} ({})",
                bmc.id, bmc.endpoint.address, bmc.endpoint.protocol
            ),
            Self::NetworkCreated { network } => write!(
                f,
                "network {} (vlan {}) created in site {}",
                network.name, network.vlan, network.site
            ),
            Self::PrefixAdded { prefix } => {
                write!(
                    f,
                    "prefix {} added to network {}",
                    prefix.cidr, prefix.network
                )
            }
            Self::LeaseBound { lease } => write!(
                f,
                "lease {} bound: {} for {} until {}",
                lease.id, lease.ip, lease.mac, lease.expires
            ),
            Self::LeaseReleased { lease } => write!(f, "{lease} released"),
            Self::LeaseDeclined { lease } => write!(f, "{lease} declined; address quarantined"),
            Self::LeaseExpired { lease } => write!(f, "{lease} expired"),
            Self::DnsRecordUpserted { record } => {
                write!(
                    f,
                    "dns record {} ({}) upserted",
                    record.data.name(),
                    record.id
                )
            }
            Self::DnsRecordRemoved { record, name } => {
                write!(f, "dns record {name} ({record}) removed")
            }
            Self::TaskCreated { task } => write!(f, "task {} created: {}", task.id, task.kind),
            Self::TaskStateChanged { task, from, to } => {
                write!(f, "task {task} changed state: {} -> {to}", from.name())
            }
            Self::MachineBootReported {
                mac,
                ip,
                stage,
                detail,
            } => {
                write!(f, "machine {mac} reported boot stage {stage:?}")?;
                if let Some(ip) = ip {
                    write!(f, " from {ip}")?;
                }
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Self::MachineBootStateSet { mac, from, to } => write!(
                f,
                "machine {mac} boot state set: {} -> {to}",
                from.as_deref().unwrap_or("(none)")
            ),
            Self::MachineUpdated { machine } => {
                write!(f, "machine {} ({}) updated", machine.id, machine.serial)
            }
            Self::BmcCertificatePinned {
                bmc,
                machine,
                sha256,
                previous,
            } => match previous {
                None => write!(
                    f,
                    "bmc {bmc} of machine {machine}: TLS certificate {sha256} pinned on first use"
                ),
                Some(p) => write!(
                    f,
                    "bmc {bmc} of machine {machine}: TLS certificate re-pinned {p} -> {sha256}"
                ),
            },
            Self::CommandRejected {
                command,
                action,
                reason,
            } => write!(f, "command {command} ({action}) rejected: {reason}"),
            Self::NetworkDeleted { network, name } => {
                write!(f, "network {name} ({network}) deleted")
            }
            Self::AddressAllocated { allocation: a } => {
                write!(
                    f,
                    "address {} allocated on network {}",
                    a.address, a.network
                )?;
                if let Some(h) = &a.hostname {
                    write!(f, " as {h}")?;
                }
                if let Some(m) = &a.mac {
                    write!(f, " for {m}")?;
                }
                Ok(())
            }
            Self::AddressReleased {
                allocation,
                network,
                address,
            } => write!(
                f,
                "address {address} released on network {network} (allocation {allocation})"
            ),
            Self::PortIntentChanged { switch, change } => match switch {
                Some(sw) => write!(f, "switch {sw} intent: {change}"),
                None => write!(f, "port intent: {change}"),
            },
            Self::SwitchApplied {
                switch,
                changes,
                realized,
            } => write!(
                f,
                "switch {switch} applied: {} change(s), {} port(s) realized",
                changes.len(),
                realized.len()
            ),
            Self::SwitchApplyFailed {
                switch,
                failed,
                reason,
                rolled_back,
                rollback_failed,
            } => {
                write!(
                    f,
                    "switch {switch} apply failed at {failed}: {reason}; {} step(s) rolled back",
                    rolled_back.len()
                )?;
                if !rollback_failed.is_empty() {
                    write!(
                        f,
                        ", {} could not be: the switch needs attention",
                        rollback_failed.len()
                    )?;
                }
                Ok(())
            }
            Self::SwitchDrifted { switch, drift } => write!(
                f,
                "switch {switch} drifted from the intent: {}",
                drift.join("; ")
            ),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {}: {}", self.id, self.body)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::id::{LeaseId, PrefixId, RackId};
    use crate::resource::{
        BmcEndpoint, BmcHost, BmcProtocol, DependencyKind, DnsRecordData, LeaseState, MachineRole,
        NetworkPurpose, TaskKind, VlanId,
    };
    use crate::subject::ParsedSubject;
    use crate::token::{CredentialRef, NetworkName, ServiceName};

    fn lease_ref() -> LeaseRef {
        LeaseRef {
            id: LeaseId::new(),
            ip: "10.0.0.9".parse().unwrap(),
            mac: "52:54:00:00:00:09".parse().unwrap(),
        }
    }

    /// One value of every variant.
    fn all_bodies() -> Vec<EventBody> {
        let site = SiteName::new("lab").unwrap();
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let endpoint = BmcEndpoint::new(
            BmcHost::Ip("10.0.0.5".parse().unwrap()),
            BmcProtocol::Redfish,
            CredentialRef::new("bmc-default").unwrap(),
        );
        let machine = Machine {
            id: MachineId::new(),
            site: site.clone(),
            rack: None,
            position: None,
            serial: "SN1".into(),
            vendor: "Dell Inc.".into(),
            model: "R650".into(),
            macs: vec![lease_ref().mac],
            bmc: Some(endpoint.clone()),
            role: MachineRole::Worker,
            state: MachineState::Discovered,
        };
        let lease = Lease {
            id: LeaseId::new(),
            prefix: PrefixId::new(),
            ip: "10.0.0.9".parse().unwrap(),
            mac: "52:54:00:00:00:09".parse().unwrap(),
            client_id: None,
            hostname: None,
            starts: at,
            expires: at,
            state: LeaseState::Bound,
            relay_agent_info: None,
        };
        let name: DnsName = "pxe.lab.net".parse().unwrap();
        vec![
            EventBody::SiteRegistered {
                site: Site::new(site.clone(), "net".parse().unwrap(), None).unwrap(),
            },
            EventBody::RackAdded {
                rack: Rack {
                    id: RackId::new(),
                    site: site.clone(),
                    name: "r1".into(),
                    location: None,
                },
            },
            EventBody::MachineDiscovered {
                machine: machine.clone(),
            },
            EventBody::MachineStateChanged {
                machine: machine.id,
                from: MachineState::Discovered,
                to: MachineState::Inspected,
            },
            EventBody::BmcRegistered {
                bmc: Bmc {
                    id: BmcId::new(),
                    site: site.clone(),
                    machine: Some(machine.id),
                    endpoint,
                },
            },
            EventBody::NetworkCreated {
                network: Network {
                    id: NetworkId::new(),
                    site: site.clone(),
                    name: NetworkName::new("prov").unwrap(),
                    vlan: VlanId::new(20).unwrap(),
                    purpose: NetworkPurpose::Provisioning,
                    prefixes: vec![],
                },
            },
            EventBody::PrefixAdded {
                prefix: Prefix::new(
                    PrefixId::new(),
                    NetworkId::new(),
                    "10.0.0.0/24".parse().unwrap(),
                    None,
                )
                .unwrap(),
            },
            EventBody::LeaseBound { lease },
            EventBody::LeaseReleased { lease: lease_ref() },
            EventBody::LeaseDeclined { lease: lease_ref() },
            EventBody::LeaseExpired { lease: lease_ref() },
            EventBody::DnsRecordUpserted {
                record: DnsRecord {
                    id: DnsRecordId::new(),
                    site: site.clone(),
                    data: DnsRecordData::Service {
                        name: name.clone(),
                        target: "a.lab.net".parse().unwrap(),
                        ttl: 60,
                    },
                },
            },
            EventBody::DnsRecordRemoved {
                record: DnsRecordId::new(),
                name,
            },
            EventBody::TaskCreated {
                task: Task::new(
                    site,
                    TaskKind::ProvisionMachine {
                        machine: machine.id,
                    },
                ),
            },
            EventBody::TaskStateChanged {
                task: TaskId::new(),
                from: TaskState::Pending,
                to: TaskState::Blocked {
                    dependency: "bmc:10.0.0.5".into(),
                    kind: DependencyKind::Hard,
                },
            },
            EventBody::MachineBootReported {
                mac: lease_ref().mac,
                ip: Some("10.0.0.9".parse().unwrap()),
                stage: "discovered".into(),
                detail: "cpus=4".into(),
            },
            EventBody::MachineBootStateSet {
                mac: lease_ref().mac,
                from: None,
                to: "local".into(),
            },
            EventBody::MachineUpdated {
                machine: machine.clone(),
            },
            EventBody::BmcCertificatePinned {
                bmc: BmcId::new(),
                machine: MachineId::new(),
                sha256: "AB:CD".into(),
                previous: None,
            },
            EventBody::CommandRejected {
                command: MessageId::new(),
                action: "provision".into(),
                reason: "no machine".into(),
            },
            EventBody::NetworkDeleted {
                network: NetworkId::new(),
                name: NetworkName::new("prov").unwrap(),
            },
            EventBody::AddressAllocated {
                allocation: Allocation {
                    id: AllocationId::new(),
                    network: NetworkId::new(),
                    prefix: PrefixId::new(),
                    address: "10.0.0.10".parse().unwrap(),
                    owner: Some("machine SN1".into()),
                    hostname: Some("node-1".into()),
                    mac: Some(lease_ref().mac),
                },
            },
            EventBody::AddressReleased {
                allocation: AllocationId::new(),
                network: NetworkId::new(),
                address: "10.0.0.10".parse().unwrap(),
            },
            EventBody::PortIntentChanged {
                switch: Some(SwitchName::new("leaf-1").unwrap()),
                change: "swp1 assigned profile server".into(),
            },
            EventBody::SwitchApplied {
                switch: SwitchName::new("leaf-1").unwrap(),
                changes: vec!["add swp1: absent -> access 10".into()],
                realized: vec!["swp1: access 10".into()],
            },
            EventBody::SwitchApplyFailed {
                switch: SwitchName::new("leaf-1").unwrap(),
                failed: "add swp2: absent -> access 10".into(),
                reason: "no such interface".into(),
                rolled_back: vec!["remove swp1: access 10 -> absent".into()],
                rollback_failed: vec![],
            },
            EventBody::SwitchDrifted {
                switch: SwitchName::new("leaf-1").unwrap(),
                drift: vec!["retag swp1: access 20 -> access 10".into()],
            },
        ]
    }

    /// Exhaustive on purpose: a new variant fails to compile here until it is
    /// added to `all_bodies`.
    fn ordinal(body: &EventBody) -> usize {
        match body {
            EventBody::SiteRegistered { .. } => 0,
            EventBody::RackAdded { .. } => 1,
            EventBody::MachineDiscovered { .. } => 2,
            EventBody::MachineStateChanged { .. } => 3,
            EventBody::BmcRegistered { .. } => 4,
            EventBody::NetworkCreated { .. } => 5,
            EventBody::PrefixAdded { .. } => 6,
            EventBody::LeaseBound { .. } => 7,
            EventBody::LeaseReleased { .. } => 8,
            EventBody::LeaseDeclined { .. } => 9,
            EventBody::LeaseExpired { .. } => 10,
            EventBody::DnsRecordUpserted { .. } => 11,
            EventBody::DnsRecordRemoved { .. } => 12,
            EventBody::TaskCreated { .. } => 13,
            EventBody::TaskStateChanged { .. } => 14,
            EventBody::MachineBootReported { .. } => 15,
            EventBody::MachineBootStateSet { .. } => 16,
            EventBody::MachineUpdated { .. } => 17,
            EventBody::BmcCertificatePinned { .. } => 18,
            EventBody::CommandRejected { .. } => 19,
            EventBody::NetworkDeleted { .. } => 20,
            EventBody::AddressAllocated { .. } => 21,
            EventBody::AddressReleased { .. } => 22,
            EventBody::PortIntentChanged { .. } => 23,
            EventBody::SwitchApplied { .. } => 24,
            EventBody::SwitchApplyFailed { .. } => 25,
            EventBody::SwitchDrifted { .. } => 26,
        }
    }

    #[test]
    fn every_variant_has_a_distinct_route() {
        let bodies = all_bodies();
        let ordinals: Vec<usize> = bodies.iter().map(ordinal).collect();
        assert_eq!(ordinals, (0..bodies.len()).collect::<Vec<_>>());
        let mut routes: Vec<Route> = bodies.iter().map(EventBody::route).collect();
        routes.sort_unstable();
        routes.dedup();
        assert_eq!(routes.len(), bodies.len());
        for body in &bodies {
            assert!(!body.to_string().is_empty());
        }
    }

    #[test]
    fn subjects_parse_back_to_the_route() {
        let site = SiteName::new("osl1").unwrap();
        for body in all_bodies() {
            let subject = body.subject(&site);
            let parsed = Subject::parse(subject.as_str()).unwrap();
            match (body.entity(), parsed) {
                (None, ParsedSubject::TaskEvent { site: s, verb }) => {
                    assert_eq!((s, verb.as_str()), (site.clone(), body.verb()));
                }
                (
                    Some(entity),
                    ParsedSubject::Event {
                        site: s,
                        service,
                        entity: e,
                        verb,
                    },
                ) => {
                    assert_eq!(s, site);
                    assert_eq!(service, ServiceName::new(body.service()).unwrap());
                    assert_eq!((e.as_str(), verb.as_str()), (entity, body.verb()));
                }
                (entity, parsed) => panic!("{entity:?} vs {parsed:?}"),
            }
        }
    }

    #[test]
    fn from_event_uses_the_event_id_as_message_id() {
        let site = SiteName::new("lab").unwrap();
        let event = Event::new(all_bodies().remove(3));
        let message = Message::from_event(site.clone(), Actor::agent(&site), event.clone());
        assert_eq!(message.envelope.id.as_uuid(), event.id.as_uuid());
        assert_eq!(
            message.envelope.correlation_id.as_uuid(),
            event.id.as_uuid()
        );
        let parent = Message::new(site.clone(), Actor::new("user:alice").unwrap(), ());
        let caused = Message::from_event(site.clone(), Actor::agent(&site), event.clone())
            .caused_by(&parent.envelope);
        assert_eq!(caused.envelope.id.as_uuid(), event.id.as_uuid());
        assert_eq!(caused.envelope.causation_id, Some(parent.envelope.id));
    }

    #[test]
    fn display_tells_an_operator_what_happened() {
        let task = TaskId::new();
        let body = EventBody::TaskStateChanged {
            task,
            from: TaskState::Running {
                step: "power_on".into(),
            },
            to: TaskState::Blocked {
                dependency: "bmc:10.0.0.5".into(),
                kind: DependencyKind::Hard,
            },
        };
        assert_eq!(
            body.to_string(),
            format!(
                "task {task} changed state: running -> blocked on bmc:10.0.0.5 (hard dependency)"
            )
        );
        let prefix = Prefix::new(
            PrefixId::new(),
            NetworkId::new(),
            "10.0.0.0/24".parse().unwrap(),
            None,
        )
        .unwrap();
        let line = EventBody::PrefixAdded { prefix }.to_string();
        assert!(line.starts_with("prefix 10.0.0.0/24 added"), "{line}");
    }
}
