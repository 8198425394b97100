//! Golden blobs: messages encoded by past builds must keep decoding.
//!
//! `tests/data/v1-messages.txt` holds one line per fixed message:
//! `<codec version> <fixture name> <hex>`. [`golden_lines_decode`] decodes
//! every line and compares it with the fixture of that name;
//! [`current_encoding_matches_golden`] checks that today's encoder still
//! writes exactly those bytes, so a layout change cannot slip in without a
//! codec version bump. Lines are only ever appended: run the tests with
//! `DV_BLESS_GOLDEN=1` to append the lines of new fixtures (existing lines
//! are never rewritten).

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use dv_protocol::*;
use time::macros::datetime;
use uuid::Uuid;

const BLESS_VAR: &str = "DV_BLESS_GOLDEN";

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1-messages.txt")
}

fn uuid(n: u128) -> Uuid {
    // v7-shaped: a fixed 2024-06-01 timestamp, version 7, variant 10, then n.
    Uuid::from_u128(0x018f_d2f6_1c00_7000_8000_0000_0000_0000 | n)
}

fn lab() -> SiteName {
    SiteName::new("lab").unwrap()
}

fn envelope(n: u128) -> Envelope {
    Envelope {
        id: MessageId::from_uuid(uuid(n)),
        correlation_id: CorrelationId::from_uuid(uuid(n)),
        causation_id: None,
        tenant: None,
        project: None,
        actor: Actor::agent(&lab()),
        site: lab(),
        schema_version: 1,
        occurred_at: datetime!(2024-06-01 12:00:00.123456789 UTC),
    }
}

fn event_site_registered() -> Message<Event> {
    Message {
        envelope: envelope(0x101),
        body: Event {
            id: EventId::from_uuid(uuid(0x201)),
            body: EventBody::SiteRegistered {
                site: Site::new(
                    lab(),
                    "deevnet.net".parse().unwrap(),
                    Some("Lab, room 2".into()),
                )
                .unwrap(),
            },
        },
    }
}

fn event_task_blocked() -> Message<Event> {
    let mut envelope = envelope(0x102);
    envelope.correlation_id = CorrelationId::from_uuid(uuid(0x100));
    envelope.causation_id = Some(MessageId::from_uuid(uuid(0x100)));
    envelope.tenant = Some(TenantName::new("acme").unwrap());
    envelope.project = Some(ProjectName::new("web").unwrap());
    Message {
        envelope,
        body: Event {
            id: EventId::from_uuid(uuid(0x202)),
            body: EventBody::TaskStateChanged {
                task: TaskId::from_uuid(uuid(0x301)),
                from: TaskState::Running {
                    step: "power_on".into(),
                },
                to: TaskState::Blocked {
                    dependency: "bmc:10.0.0.5".into(),
                    kind: DependencyKind::Hard,
                },
            },
        },
    }
}

fn event_lease_bound() -> Message<Event> {
    Message {
        envelope: envelope(0x103),
        body: Event {
            id: EventId::from_uuid(uuid(0x203)),
            body: EventBody::LeaseBound {
                lease: Lease {
                    id: LeaseId::from_uuid(uuid(0x401)),
                    prefix: PrefixId::from_uuid(uuid(0x501)),
                    ip: "10.20.0.17".parse().unwrap(),
                    mac: "52:54:00:12:34:56".parse().unwrap(),
                    client_id: Some(vec![1, 0x52, 0x54, 0, 0x12, 0x34, 0x56]),
                    hostname: Some("node-17".into()),
                    starts: datetime!(2024-06-01 12:00:00 UTC),
                    expires: datetime!(2024-06-01 13:00:00 UTC),
                    state: LeaseState::Bound,
                    relay_agent_info: Some(vec![1, 4, b'e', b't', b'h', b'7']),
                },
            },
        },
    }
}

fn event_machine_discovered() -> Message<Event> {
    Message {
        envelope: envelope(0x104),
        body: Event {
            id: EventId::from_uuid(uuid(0x204)),
            body: EventBody::MachineDiscovered {
                machine: Machine {
                    id: MachineId::from_uuid(uuid(0x601)),
                    site: lab(),
                    rack: Some(RackId::from_uuid(uuid(0x701))),
                    position: Some(12),
                    serial: "SN-0042".into(),
                    vendor: "Dell Inc.".into(),
                    model: "PowerEdge R650".into(),
                    macs: vec![
                        "52:54:00:12:34:56".parse().unwrap(),
                        "52:54:00:12:34:57".parse().unwrap(),
                    ],
                    bmc: Some(BmcEndpoint::new(
                        BmcHost::Ip("10.0.0.5".parse().unwrap()),
                        BmcProtocol::Redfish,
                        CredentialRef::new("bmc-default").unwrap(),
                    )),
                    role: MachineRole::Worker,
                    state: MachineState::Discovered,
                },
            },
        },
    }
}

/// Schema version 2: the first variant appended after version 1.
fn event_machine_boot_reported() -> Message<Event> {
    let mut envelope = envelope(0x106);
    envelope.schema_version = 2;
    Message {
        envelope,
        body: Event {
            id: EventId::from_uuid(uuid(0x206)),
            body: EventBody::MachineBootReported {
                mac: "52:54:00:12:34:56".parse().unwrap(),
                ip: Some("10.20.0.17".parse().unwrap()),
                stage: "discovered".into(),
                detail: "cpus=4&memory_kb=1024".into(),
            },
        },
    }
}

fn task_provision() -> Message<Task> {
    Message {
        envelope: envelope(0x105),
        body: Task {
            id: TaskId::from_uuid(uuid(0x302)),
            site: lab(),
            kind: TaskKind::ProvisionMachine {
                machine: MachineId::from_uuid(uuid(0x601)),
            },
            state: TaskState::Blocked {
                dependency: "network:vlan-20".into(),
                kind: DependencyKind::Reconciliation,
            },
            created_at: datetime!(2024-06-01 12:00:00 UTC),
            updated_at: datetime!(2024-06-01 12:05:00 UTC),
        },
    }
}

fn command_provision() -> Message<Command> {
    Message {
        envelope: Envelope {
            actor: Actor::new("user:alice@example.com").unwrap(),
            tenant: Some(TenantName::new("acme").unwrap()),
            ..envelope(0x107)
        },
        body: Command::ProvisionMachine {
            machine: MachineId::from_uuid(uuid(0x602)),
        },
    }
}

fn heartbeat() -> Message<Heartbeat> {
    Message {
        envelope: envelope(0x108),
        body: Heartbeat {
            version: "0.1.0".into(),
            started_at: datetime!(2024-06-01 11:00:00 UTC),
            outbox_pending: 42,
            seq: 7,
        },
    }
}

/// Decodes `bytes` as the fixture named `name` and compares.
fn check_fixture(name: &str, bytes: &[u8]) {
    match name {
        "event-site-registered" => {
            let m = decode::<Event>(bytes).unwrap();
            assert_eq!(m, event_site_registered());
            assert_eq!(m.envelope.actor.as_str(), "agent:lab");
        }
        "event-task-blocked" => {
            let m = decode::<Event>(bytes).unwrap();
            assert_eq!(m, event_task_blocked());
            assert_eq!(
                m.envelope.tenant.as_ref().map(TenantName::as_str),
                Some("acme")
            );
            let EventBody::TaskStateChanged { to, .. } = &m.body.body else {
                panic!("{m:?}")
            };
            assert_eq!(to.to_string(), "blocked on bmc:10.0.0.5 (hard dependency)");
        }
        "event-lease-bound" => {
            let m = decode::<Event>(bytes).unwrap();
            assert_eq!(m, event_lease_bound());
            assert_eq!(m.envelope.occurred_at.nanosecond(), 123_456_789);
        }
        "event-machine-discovered" => {
            let m = decode::<Event>(bytes).unwrap();
            assert_eq!(m, event_machine_discovered());
        }
        "event-machine-boot-reported" => {
            let m = decode::<Event>(bytes).unwrap();
            assert_eq!(m, event_machine_boot_reported());
            assert_eq!(m.envelope.schema_version, 2);
        }
        "task-provision" => {
            let m = decode::<Task>(bytes).unwrap();
            assert_eq!(m, task_provision());
            assert_eq!(
                m.body.target().to_string(),
                format!("machine:{}", uuid(0x601))
            );
        }
        "command-provision" => {
            let m = decode::<Command>(bytes).unwrap();
            assert_eq!(m, command_provision());
            assert_eq!(m.body.action(), "provision");
        }
        "heartbeat" => {
            let m = decode::<Heartbeat>(bytes).unwrap();
            assert_eq!(m, heartbeat());
        }
        other => panic!("golden line names unknown fixture {other:?}"),
    }
}

/// The current encoding of every fixture.
fn current() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "event-site-registered",
            encode(&event_site_registered()).unwrap(),
        ),
        ("event-task-blocked", encode(&event_task_blocked()).unwrap()),
        ("event-lease-bound", encode(&event_lease_bound()).unwrap()),
        (
            "event-machine-discovered",
            encode(&event_machine_discovered()).unwrap(),
        ),
        ("task-provision", encode(&task_provision()).unwrap()),
        (
            "event-machine-boot-reported",
            encode(&event_machine_boot_reported()).unwrap(),
        ),
        ("command-provision", encode(&command_provision()).unwrap()),
        ("heartbeat", encode(&heartbeat()).unwrap()),
    ]
}

struct Line {
    version: u8,
    name: String,
    bytes: Vec<u8>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn golden_lines() -> Vec<Line> {
    let text = fs::read_to_string(golden_path()).unwrap();
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [version, name, blob] = fields.as_slice() else {
                panic!("golden line is not `<version> <name> <hex>`: {line:?}")
            };
            let version: u8 = version.strip_prefix('v').unwrap().parse().unwrap();
            let bytes = unhex(blob);
            assert_eq!(bytes[0], version, "{name}: version column and byte differ");
            Line {
                version,
                name: (*name).to_owned(),
                bytes,
            }
        })
        .collect()
}

#[test]
fn golden_lines_decode() {
    let lines = golden_lines();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line.version <= CODEC_VERSION,
            "{}: from the future",
            line.name
        );
        check_fixture(&line.name, &line.bytes);
    }
}

#[test]
fn current_encoding_matches_golden() {
    let lines = golden_lines();
    let mut missing = Vec::new();
    for (name, bytes) in current() {
        match lines
            .iter()
            .find(|l| l.version == CODEC_VERSION && l.name == name)
        {
            Some(line) => assert_eq!(
                hex(&line.bytes),
                hex(&bytes),
                "the encoding of {name} changed: that is a wire-format change and needs a \
                 codec version bump (docs/adr/0003-envelope-and-codec.md)"
            ),
            None => missing.push(format!("v{CODEC_VERSION} {name} {}", hex(&bytes))),
        }
    }
    if missing.is_empty() {
        return;
    }
    if std::env::var_os(BLESS_VAR).is_some() {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(golden_path())
            .unwrap();
        for line in &missing {
            writeln!(file, "{line}").unwrap();
        }
    } else {
        panic!(
            "golden lines missing; rerun with {BLESS_VAR}=1 to append:\n{}",
            missing.join("\n")
        );
    }
}
