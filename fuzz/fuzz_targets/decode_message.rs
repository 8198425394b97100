//! Decodes arbitrary bytes as `Message<Event>`, `Message<Task>`,
//! `Message<Command>` and `Message<Heartbeat>` (what the agent and the hub
//! read off NATS).
//!
//! Decoding must never panic. When it succeeds, the message must be a stable
//! point of the codec: encoding it again and decoding that gives the same
//! message.

#![no_main]

use std::fmt::Debug;

use dv_protocol::{Command, Event, Heartbeat, Task, codec};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    let Ok(message) = codec::decode::<T>(data) else {
        return;
    };
    let bytes = codec::encode(&message).expect("a decoded message re-encodes");
    let again = codec::decode::<T>(&bytes).expect("a re-encoded message decodes");
    assert_eq!(again, message);
}

fuzz_target!(|data: &[u8]| {
    check::<Event>(data);
    check::<Task>(data);
    check::<Command>(data);
    check::<Heartbeat>(data);
});
