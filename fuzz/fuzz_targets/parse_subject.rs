//! Parses arbitrary text as a NATS subject.
//!
//! Parsing must never panic. When it succeeds, the parsed subject must print
//! back to exactly the input.

#![no_main]

use dv_protocol::Subject;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = Subject::parse(text) {
        assert_eq!(parsed.to_subject().as_str(), text);
    }
});
