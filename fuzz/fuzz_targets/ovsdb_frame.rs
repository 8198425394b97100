//! Splits arbitrary bytes into OVSDB (RFC 7047) messages, the way the
//! switch driver's client reads what ovsdb-server sends. It may not panic;
//! a message it returns must have consumed bytes from the buffer, no more
//! than it holds, so the reader always makes progress and never reads past
//! what arrived.

#![no_main]

use dv_agent::nett::switch::ovsdb::parse_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // Bounded: each message consumes at least one byte.
    for _ in 0..data.len() {
        match parse_frame(rest) {
            Ok(Some((_, used))) => {
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
            }
            Ok(None) | Err(_) => break,
        }
    }
});
