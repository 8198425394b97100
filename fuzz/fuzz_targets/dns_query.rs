//! Feeds arbitrary bytes to the DNS query path (`dns::answer::handle`), with
//! the lab site's zones loaded, over both transports, transfer allowed or not.
//!
//! It must never panic; a reply, when there is one, must decode as a DNS
//! message whose id is the query's (for inputs long enough to have one).

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, LazyLock};

use dv_agent::config::Config;
use dv_agent::dns::answer::{Client, Outcome, Transport, handle};
use dv_agent::dns::catalog::Catalog;
use dv_agent::dns::zones::{Inputs, build};
use libfuzzer_sys::fuzz_target;

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../site-kits/examples/lab/agent.toml");
    let config = Config::from_file(&path).unwrap_or_else(|e| panic!("lab config: {e}"));
    let mut inputs = Inputs::from_config(&config);
    inputs
        .leases
        .insert(Ipv4Addr::new(10, 77, 0, 150), "worker".into());
    Catalog::compile(Arc::new(build(&inputs, 42)))
});

fuzz_target!(|data: &[u8]| {
    let flags = data.first().copied().unwrap_or(0);
    let client = Client {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        transport: if flags & 1 == 0 {
            Transport::Udp
        } else {
            Transport::Tcp
        },
        may_transfer: flags & 2 != 0,
        forwarding: flags & 4 != 0,
    };
    let replies = match handle(&CATALOG, data, &client) {
        Outcome::Reply(bytes, _) => vec![bytes],
        Outcome::Stream(messages) => messages,
        Outcome::Forward(_) | Outcome::Drop(_) => return,
    };
    for reply in replies {
        assert!(reply.len() >= 12, "reply shorter than a header");
        assert_eq!(reply[..2], data[..2], "reply id differs from the query's");
        if client.transport == Transport::Udp {
            assert!(reply.len() <= 1232, "UDP reply of {} bytes", reply.len());
        }
    }
});
