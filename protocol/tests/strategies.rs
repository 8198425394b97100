//! proptest strategies for every protocol type.

use std::net::IpAddr;

use dv_protocol::*;
use ipnet::IpNet;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use time::OffsetDateTime;
use uuid::Uuid;

const TOKEN: &str = "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?";

pub fn token() -> impl Strategy<Value = String> {
    TOKEN
}

pub fn site_name() -> impl Strategy<Value = SiteName> {
    token().prop_map(|t| SiteName::new(t).unwrap())
}

pub fn dns_name() -> impl Strategy<Value = DnsName> {
    vec("_?[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4)
        .prop_map(|labels| DnsName::new(labels.join(".")).unwrap())
}

/// Any id type: every UUID, not only v7, must survive a round trip.
pub fn id<T: From<Uuid> + std::fmt::Debug>() -> impl Strategy<Value = T> {
    any::<u128>().prop_map(|n| T::from(Uuid::from_u128(n)))
}

/// Instants from year 0 to 9999 (what RFC 3339 text can hold), to the nanosecond.
pub fn timestamp() -> impl Strategy<Value = OffsetDateTime> {
    (-62_167_219_200i64..253_402_300_800, 0u32..1_000_000_000).prop_map(|(secs, nanos)| {
        let nanos = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap()
    })
}

pub fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

pub fn ip() -> impl Strategy<Value = IpAddr> {
    any::<IpAddr>()
}

pub fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

pub fn actor() -> impl Strategy<Value = Actor> {
    "[a-z]{1,8}:[!-~]{1,40}".prop_map(|s| Actor::new(s).unwrap())
}

pub fn site() -> impl Strategy<Value = Site> {
    (site_name(), dns_name(), option::of(text()))
        .prop_filter_map("hub is reserved", |(name, domain, display)| {
            Site::new(name, domain, display).ok()
        })
}

pub fn rack() -> impl Strategy<Value = Rack> {
    (id(), site_name(), text(), option::of(text())).prop_map(|(id, site, name, location)| Rack {
        id,
        site,
        name,
        location,
    })
}

pub fn bmc_endpoint() -> impl Strategy<Value = BmcEndpoint> {
    let host = prop_oneof![
        ip().prop_map(BmcHost::Ip),
        dns_name().prop_map(BmcHost::Name)
    ];
    let protocol = prop_oneof![Just(BmcProtocol::Redfish), Just(BmcProtocol::Ipmi)];
    (host, any::<u16>(), protocol, token()).prop_map(|(host, port, protocol, credentials)| {
        BmcEndpoint {
            address: BmcAddress { host, port },
            protocol,
            credentials: CredentialRef::new(credentials).unwrap(),
        }
    })
}

pub fn bmc() -> impl Strategy<Value = Bmc> {
    (id(), site_name(), option::of(id()), bmc_endpoint()).prop_map(
        |(id, site, machine, endpoint)| Bmc {
            id,
            site,
            machine,
            endpoint,
        },
    )
}

pub fn machine_state() -> impl Strategy<Value = MachineState> {
    prop_oneof![
        Just(MachineState::Discovered),
        Just(MachineState::Inspected),
        Just(MachineState::Available),
        Just(MachineState::Allocated),
        Just(MachineState::Provisioning),
        Just(MachineState::Ready),
        Just(MachineState::Failed),
        Just(MachineState::Deprovisioning),
    ]
}

pub fn machine() -> impl Strategy<Value = Machine> {
    let role = prop_oneof![
        Just(MachineRole::Unassigned),
        Just(MachineRole::ControlPlane),
        Just(MachineRole::Worker),
        Just(MachineRole::Storage),
        Just(MachineRole::Provisioner),
    ];
    (
        (
            id(),
            site_name(),
            option::of(id()),
            option::of(any::<u16>()),
        ),
        (text(), text(), text()),
        (
            vec(mac(), 0..4),
            option::of(bmc_endpoint()),
            role,
            machine_state(),
        ),
    )
        .prop_map(
            |((id, site, rack, position), (serial, vendor, model), (macs, bmc, role, state))| {
                Machine {
                    id,
                    site,
                    rack,
                    position,
                    serial,
                    vendor,
                    model,
                    macs,
                    bmc,
                    role,
                    state,
                }
            },
        )
}

pub fn vlan() -> impl Strategy<Value = VlanId> {
    (1u16..=4094).prop_map(|v| VlanId::new(v).unwrap())
}

pub fn network() -> impl Strategy<Value = Network> {
    let purpose = prop_oneof![
        Just(NetworkPurpose::Provisioning),
        Just(NetworkPurpose::Management),
        Just(NetworkPurpose::Underlay),
        Just(NetworkPurpose::Tenant),
        Just(NetworkPurpose::Storage),
    ];
    (id(), site_name(), token(), vlan(), purpose, vec(id(), 0..4)).prop_map(
        |(id, site, name, vlan, purpose, prefixes)| Network {
            id,
            site,
            name: NetworkName::new(name).unwrap(),
            vlan,
            purpose,
            prefixes,
        },
    )
}

pub fn cidr() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<std::net::Ipv4Addr>(), 0u8..=32)
            .prop_map(|(a, l)| IpNet::new(a.into(), l).unwrap().trunc()),
        (any::<std::net::Ipv6Addr>(), 0u8..=128)
            .prop_map(|(a, l)| IpNet::new(a.into(), l).unwrap().trunc()),
    ]
}

pub fn prefix() -> impl Strategy<Value = Prefix> {
    (id(), id(), cidr(), 0u8..3).prop_map(|(id, network, cidr, gw)| {
        let gateway = match gw {
            0 => None,
            1 => Some(cidr.network()),
            _ => Some(cidr.broadcast()),
        };
        Prefix::new(id, network, cidr, gateway).unwrap()
    })
}

pub fn lease() -> impl Strategy<Value = Lease> {
    let state = prop_oneof![
        Just(LeaseState::Offered),
        Just(LeaseState::Bound),
        Just(LeaseState::Released),
        Just(LeaseState::Declined),
        Just(LeaseState::Expired),
    ];
    (
        (id(), id(), ip(), mac()),
        (option::of(vec(any::<u8>(), 0..20)), option::of(text())),
        (
            timestamp(),
            timestamp(),
            state,
            option::of(vec(any::<u8>(), 0..40)),
        ),
    )
        .prop_map(
            |(
                (id, prefix, ip, mac),
                (client_id, hostname),
                (starts, expires, state, relay_agent_info),
            )| Lease {
                id,
                prefix,
                ip,
                mac,
                client_id,
                hostname,
                starts,
                expires,
                state,
                relay_agent_info,
            },
        )
}

pub fn lease_ref() -> impl Strategy<Value = LeaseRef> {
    (id(), ip(), mac()).prop_map(|(id, ip, mac)| LeaseRef { id, ip, mac })
}

pub fn dns_record() -> impl Strategy<Value = DnsRecord> {
    let data = prop_oneof![
        (dns_name(), vec(ip(), 0..4), any::<u32>()).prop_map(|(name, addresses, ttl)| {
            DnsRecordData::Host {
                name,
                addresses,
                ttl,
            }
        }),
        (dns_name(), dns_name(), any::<u32>())
            .prop_map(|(name, target, ttl)| DnsRecordData::Service { name, target, ttl }),
    ];
    (id(), site_name(), data).prop_map(|(id, site, data)| DnsRecord { id, site, data })
}

pub fn task_state() -> impl Strategy<Value = TaskState> {
    let kind = prop_oneof![
        Just(DependencyKind::Hard),
        Just(DependencyKind::Soft),
        Just(DependencyKind::Reconciliation),
    ];
    prop_oneof![
        Just(TaskState::Pending),
        text().prop_map(|step| TaskState::Running { step }),
        (text(), kind).prop_map(|(dependency, kind)| TaskState::Blocked { dependency, kind }),
        text().prop_map(|reason| TaskState::Failed { reason }),
        Just(TaskState::Succeeded),
    ]
}

pub fn task_kind() -> impl Strategy<Value = TaskKind> {
    prop_oneof![
        id().prop_map(|machine| TaskKind::InspectMachine { machine }),
        id().prop_map(|machine| TaskKind::ProvisionMachine { machine }),
        id().prop_map(|machine| TaskKind::DeprovisionMachine { machine }),
        id().prop_map(|machine| TaskKind::PowerCycleMachine { machine }),
        id().prop_map(|network| TaskKind::ApplyNetwork { network }),
    ]
}

pub fn task() -> impl Strategy<Value = Task> {
    (
        id(),
        site_name(),
        task_kind(),
        task_state(),
        timestamp(),
        timestamp(),
    )
        .prop_map(|(id, site, kind, state, created_at, updated_at)| Task {
            id,
            site,
            kind,
            state,
            created_at,
            updated_at,
        })
}

pub fn event_body() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        site().prop_map(|site| EventBody::SiteRegistered { site }),
        rack().prop_map(|rack| EventBody::RackAdded { rack }),
        machine().prop_map(|machine| EventBody::MachineDiscovered { machine }),
        (id(), machine_state(), machine_state())
            .prop_map(|(machine, from, to)| EventBody::MachineStateChanged { machine, from, to }),
        bmc().prop_map(|bmc| EventBody::BmcRegistered { bmc }),
        network().prop_map(|network| EventBody::NetworkCreated { network }),
        prefix().prop_map(|prefix| EventBody::PrefixAdded { prefix }),
        lease().prop_map(|lease| EventBody::LeaseBound { lease }),
        lease_ref().prop_map(|lease| EventBody::LeaseReleased { lease }),
        lease_ref().prop_map(|lease| EventBody::LeaseDeclined { lease }),
        lease_ref().prop_map(|lease| EventBody::LeaseExpired { lease }),
        dns_record().prop_map(|record| EventBody::DnsRecordUpserted { record }),
        (id(), dns_name()).prop_map(|(record, name)| EventBody::DnsRecordRemoved { record, name }),
        task().prop_map(|task| EventBody::TaskCreated { task }),
        (id(), task_state(), task_state())
            .prop_map(|(task, from, to)| EventBody::TaskStateChanged { task, from, to }),
        (
            mac(),
            option::of(any::<IpAddr>()),
            "[a-z-]{1,20}",
            ".{0,40}"
        )
            .prop_map(|(mac, ip, stage, detail)| EventBody::MachineBootReported {
                mac,
                ip,
                stage,
                detail
            }),
        (mac(), option::of("[a-z]{1,10}"), "[a-z]{1,10}")
            .prop_map(|(mac, from, to)| EventBody::MachineBootStateSet { mac, from, to }),
        (id(), id(), "[0-9A-F:]{1,95}", option::of("[0-9A-F:]{1,95}")).prop_map(
            |(bmc, machine, sha256, previous)| EventBody::BmcCertificatePinned {
                bmc,
                machine,
                sha256,
                previous
            }
        ),
        (id(), "[a-z-]{1,20}", ".{0,60}").prop_map(|(command, action, reason)| {
            EventBody::CommandRejected {
                command,
                action,
                reason,
            }
        }),
    ]
}

pub fn event() -> impl Strategy<Value = Event> {
    (id(), event_body()).prop_map(|(id, body)| Event { id, body })
}

pub fn envelope() -> impl Strategy<Value = Envelope> {
    (
        (id(), id(), option::of(id())),
        (
            option::of(token()),
            option::of(token()),
            actor(),
            site_name(),
        ),
        (any::<u16>(), timestamp()),
    )
        .prop_map(
            |(
                (id, correlation_id, causation_id),
                (tenant, project, actor, site),
                (schema_version, occurred_at),
            )| {
                Envelope {
                    id,
                    correlation_id,
                    causation_id,
                    tenant: tenant.map(|t| TenantName::new(t).unwrap()),
                    project: project.map(|p| ProjectName::new(p).unwrap()),
                    actor,
                    site,
                    schema_version,
                    occurred_at,
                }
            },
        )
}

pub fn message<T: std::fmt::Debug>(
    body: impl Strategy<Value = T>,
) -> impl Strategy<Value = Message<T>> {
    (envelope(), body).prop_map(|(envelope, body)| Message { envelope, body })
}
