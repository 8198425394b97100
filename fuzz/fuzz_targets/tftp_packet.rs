//! Parses arbitrary bytes as a TFTP datagram, the way the agent's TFTP server
//! does for every packet it receives, and checks the file name of any read
//! request against the path-safety rules.
//!
//! Neither may panic. A name that passes `check_name` must be made only of
//! plain path components: no `..`, no empty or absolute parts, no NUL.

#![no_main]

use dv_agent::boot::FileRoot;
use dv_agent::tftp::packet::{self, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Packet::Read(request) | Packet::Write(request)) = packet::parse(data) else {
        return;
    };
    assert!(!request.filename.contains('\0'));
    if let Ok(parts) = FileRoot::check_name(&request.filename) {
        for part in parts {
            assert!(!part.is_empty() && part != ".." && part != ".");
            assert!(!part.contains('/') && !part.contains('\0'));
        }
    }
});
