//! Parsers for single configuration values: addresses, networks, durations,
//! DNS names, interface names, MACs and client identifiers.
//!
//! Each returns the problem as a message that quotes the rejected text and,
//! where it helps, says what would be accepted; the caller adds the field.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use dv_protocol::{MacAddr, validate_token};
use ipnet::Ipv4Net;

/// Longest DNS name in presentation form without the root dot (RFC 1035 2.3.4).
pub(crate) const MAX_DNS_NAME: usize = 253;

/// Longest duration DHCP's 32-bit seconds can carry; `u32::MAX` itself means
/// "infinite" in option 51, which a configured lease should never mean.
const MAX_SECONDS: u64 = u32::MAX as u64 - 1;

pub(crate) fn ipv4(text: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IPv4 address"))
}

/// A network written `address/length`, with no host bits set and a length of
/// at most `max_len`.
pub(crate) fn network(text: &str, max_len: u8) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = text.parse().map_err(|_| {
        format!("{text:?} is not an IPv4 network; write it as address/length, like 10.77.0.0/24")
    })?;
    if net.network() != net.addr() {
        return Err(format!(
            "{text:?} has host bits set; the network is {}",
            net.trunc()
        ));
    }
    if net.prefix_len() > max_len {
        return Err(format!(
            "{net} is too small: the prefix length must be at most {max_len} to leave room for hosts"
        ));
    }
    Ok(net)
}

/// A humantime duration (`12h`, `1h30m`) of whole seconds, above zero and
/// small enough for a 32-bit seconds field.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write it like \"12h\" or \"1h30m\"")
    })?;
    if d.subsec_nanos() != 0 {
        return Err(format!("{text:?} is not a whole number of seconds"));
    }
    if d.is_zero() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    if d.as_secs() > MAX_SECONDS {
        return Err(format!(
            "{text:?} is longer than a 32-bit seconds field can carry ({MAX_SECONDS}s)"
        ));
    }
    Ok(d)
}

/// `address:port` (`[v6]:port` for IPv6); with a `default_port`, a bare
/// address is accepted too.
pub(crate) fn socket(text: &str, default_port: Option<u16>) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match default_port {
        Some(port) => text
            .parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, port))
            .map_err(|_| format!("{text:?} is not an IP address or address:port")),
        None => Err(format!(
            "{text:?} is not an address:port, like 127.0.0.1:8680 or [::1]:8680"
        )),
    }
}

/// A DNS label under the project's token rule (lower-case letters, digits and
/// inner hyphens, 1..=63); `kind` names it in the message.
pub(crate) fn label(kind: &'static str, text: &str) -> Result<String, String> {
    validate_token(kind, text)
        .map(|()| text.to_owned())
        .map_err(|e| e.to_string())
}

/// A DNS name: dot-separated labels, each a token, at most 253 characters,
/// written without the trailing root dot.
pub(crate) fn dns_name(text: &str) -> Result<String, String> {
    if text.ends_with('.') && text.len() > 1 {
        return Err(format!(
            "{text:?} ends with '.'; write the name without the root dot"
        ));
    }
    if text.len() > MAX_DNS_NAME {
        return Err(format!(
            "{text:?} is {} characters long; a DNS name has at most {MAX_DNS_NAME}",
            text.len()
        ));
    }
    for part in text.split('.') {
        validate_token("DNS label", part).map_err(|e| format!("in {text:?}: {e}"))?;
    }
    Ok(text.to_owned())
}

/// A Linux interface name, as the kernel's `dev_valid_name` accepts it.
pub(crate) fn ifname(text: &str) -> Result<String, String> {
    // IFNAMSIZ is 16 including the terminating NUL.
    const MAX: usize = 15;
    if text.is_empty() {
        return Err("interface name is empty".into());
    }
    if text.len() > MAX {
        return Err(format!(
            "{text:?} is {} bytes long; Linux interface names have at most {MAX}",
            text.len()
        ));
    }
    if text == "." || text == ".." {
        return Err(format!("{text:?} is not a usable interface name"));
    }
    if let Some(ch) = text
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        return Err(format!(
            "{text:?} contains {ch:?}; Linux interface names cannot contain '/', ':' or whitespace"
        ));
    }
    Ok(text.to_owned())
}

/// A NIC's own MAC: parsed, and neither a group address nor all zeros.
pub(crate) fn mac(text: &str) -> Result<MacAddr, String> {
    let mac: MacAddr = text
        .parse()
        .map_err(|e: dv_protocol::MacParseError| e.to_string())?;
    if mac.is_multicast() {
        return Err(format!(
            "{mac} is a multicast address, never a single NIC's own"
        ));
    }
    if mac == MacAddr::default() {
        return Err("00:00:00:00:00:00 is not a NIC's address".into());
    }
    Ok(mac)
}

/// A DHCP client identifier (option 61) written as hex octets separated by
/// `:` or `-`, such as `01:52:54:00:00:77:01` (type 1, then the MAC).
pub(crate) fn client_id(text: &str) -> Result<Vec<u8>, String> {
    let bad = || {
        format!(
            "{text:?} is not a client identifier; write its octets in hex, like 01:52:54:00:00:77:01"
        )
    };
    let sep = if text.contains('-') { '-' } else { ':' };
    let octets = text
        .split(sep)
        .map(|part| match part.len() {
            2 => u8::from_str_radix(part, 16).map_err(|_| bad()),
            _ => Err(bad()),
        })
        .collect::<Result<Vec<u8>, String>>()?;
    // RFC 2132 9.14: at least two octets (a type and a value).
    if !(2..=255).contains(&octets.len()) {
        return Err(format!(
            "{text:?} has {} octets; a client identifier has 2 to 255",
            octets.len()
        ));
    }
    Ok(octets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn networks_must_be_network_addresses() {
        assert!(network("10.77.0.0/24", 30).is_ok());
        let err = network("10.77.0.5/24", 30).unwrap_err();
        assert!(err.contains("the network is 10.77.0.0/24"), "{err}");
        assert!(
            network("10.77.0.0/31", 30)
                .unwrap_err()
                .contains("at most 30")
        );
        assert!(
            network("10.77.0.0", 30)
                .unwrap_err()
                .contains("address/length")
        );
    }

    #[test]
    fn durations_are_whole_positive_seconds() {
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(duration("1500ms").unwrap_err().contains("whole"));
        assert!(duration("0s").unwrap_err().contains("longer than zero"));
        assert!(duration("200years").unwrap_err().contains("32-bit"));
        assert!(duration("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn sockets_take_a_default_port_only_when_given() {
        assert_eq!(
            socket("10.0.0.1", Some(53)),
            Ok("10.0.0.1:53".parse().unwrap())
        );
        assert!(socket("10.0.0.1", None).is_err());
        assert!(socket("[::1]:5353", None).is_ok());
        assert!(socket("::1", Some(53)).is_ok());
    }

    #[test]
    fn dns_names() {
        assert!(dns_name("dataverket.test").is_ok());
        assert!(dns_name("test").is_ok());
        for bad in [
            "",
            "Dataverket.test",
            "a..b",
            "a.b.",
            "-a.b",
            &format!("{}.test", "a".repeat(64)),
        ] {
            assert!(dns_name(bad).is_err(), "{bad:?}");
        }
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        assert!(dns_name(&long).unwrap_err().contains("at most 253"));
    }

    #[test]
    fn interface_names() {
        assert!(ifname("dvlab0").is_ok());
        assert!(ifname("enp0s31f6.100").is_ok());
        for bad in ["", ".", "a/b", "a b", "eth0:1", "abcdefghijklmnop"] {
            assert!(ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn macs_and_client_ids() {
        assert!(mac("52:54:00:00:77:01").is_ok());
        assert!(mac("01:00:5e:00:00:01").unwrap_err().contains("multicast"));
        assert!(mac("00:00:00:00:00:00").is_err());
        assert_eq!(client_id("01:52:54:00:00:77:01").map(|v| v.len()), Ok(7));
        assert!(client_id("01").unwrap_err().contains("2 to 255"));
        assert!(client_id("xyz").is_err());
    }
}
