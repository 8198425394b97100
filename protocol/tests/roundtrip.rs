//! Every protocol type survives JSON and postcard, and every message survives
//! the codec.

use std::fmt::Debug;

use dv_protocol::*;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::strategies::*;

fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(value).unwrap();
    let back: T =
        serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

fn postcard_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let bytes = postcard::to_allocvec(value).unwrap();
    let back: T = postcard::from_bytes(&bytes)
        .map_err(|e| TestCaseError::fail(format!("{e}: {bytes:02x?}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

fn resource_ref() -> impl Strategy<Value = ResourceRef> {
    prop_oneof![
        site_name().prop_map(ResourceRef::Site),
        id().prop_map(ResourceRef::Rack),
        id().prop_map(ResourceRef::Machine),
        id().prop_map(ResourceRef::Bmc),
        id().prop_map(ResourceRef::Network),
        id().prop_map(ResourceRef::Prefix),
        id().prop_map(ResourceRef::Lease),
        id().prop_map(ResourceRef::DnsRecord),
        id().prop_map(ResourceRef::Task),
    ]
}

macro_rules! round_trips {
    ($($name:ident: $strategy:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $name(value in $strategy) {
                    json_round_trip(&value)?;
                    postcard_round_trip(&value)?;
                }
            )*
        }
    };
}

round_trips! {
    site_round_trips: site();
    rack_round_trips: rack();
    machine_round_trips: machine();
    bmc_round_trips: bmc();
    network_round_trips: network();
    prefix_round_trips: prefix();
    lease_round_trips: lease();
    lease_ref_round_trips: lease_ref();
    dns_record_round_trips: dns_record();
    task_round_trips: task();
    task_state_round_trips: task_state();
    event_round_trips: event();
    envelope_round_trips: envelope();
    resource_ref_round_trips: resource_ref();
    mac_round_trips: mac();
    dns_name_round_trips: dns_name();
    vlan_round_trips: vlan();
    message_id_round_trips: id::<MessageId>();
}

proptest! {
    #[test]
    fn message_of_event_survives_the_codec(message in message(event())) {
        let bytes = encode(&message).unwrap();
        prop_assert_eq!(bytes[0], CODEC_VERSION);
        prop_assert_eq!(decode::<Event>(&bytes).unwrap(), message.clone());
        json_round_trip(&message)?;
    }

    #[test]
    fn message_of_task_survives_the_codec(message in message(task())) {
        let bytes = encode(&message).unwrap();
        prop_assert_eq!(decode::<Task>(&bytes).unwrap(), message.clone());
        json_round_trip(&message)?;
    }

    #[test]
    fn headers_match_the_envelope(message in message(Just(()))) {
        let env = &message.envelope;
        let headers = message.headers();
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        prop_assert_eq!(get("Nats-Msg-Id"), Some(env.id.to_string()));
        prop_assert_eq!(get("Dv-Correlation-Id"), Some(env.correlation_id.to_string()));
        prop_assert_eq!(get("Dv-Causation-Id"), env.causation_id.map(|id| id.to_string()));
        prop_assert_eq!(get("Dv-Tenant"), env.tenant.as_ref().map(ToString::to_string));
        prop_assert_eq!(get("Dv-Project"), env.project.as_ref().map(ToString::to_string));
        prop_assert_eq!(get("Dv-Actor"), Some(env.actor.to_string()));
        prop_assert_eq!(get("Dv-Site"), Some(env.site.to_string()));
        prop_assert_eq!(get("Dv-Schema"), Some(env.schema_version.to_string()));
        for (_, value) in &headers {
            prop_assert!(value.bytes().all(|b| b.is_ascii_graphic()), "{value:?}");
        }
    }

    #[test]
    fn event_subjects_parse(event in event(), site in site_name()) {
        let subject = event.subject(&site);
        let parsed = Subject::parse(subject.as_str()).unwrap();
        prop_assert_eq!(parsed.site(), &site);
        prop_assert_eq!(parsed.to_subject(), subject);
    }
}
