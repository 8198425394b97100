//! The MAC in boot URLs: `/boot/<mac>.ipxe`, `/boot/<mac>/callback`.

use dv_protocol::MacAddr;

/// Parses the MAC of a boot URL: six hex octets separated by `:` or `-`
/// (iPXE's `${net0/mac}` and `${net0/mac:hexhyp}`), of a single NIC (not a
/// group address, not all zeros). The error is the text a client sees.
pub fn parse(text: &str) -> Result<MacAddr, String> {
    let mac: MacAddr = text.parse().map_err(|_| {
        let shown: String = text.chars().take(40).collect();
        format!(
            "{shown:?} is not a MAC address; write six hex octets like 52:54:00:12:34:56 \
             (iPXE: ${{net0/mac}})"
        )
    })?;
    if mac.is_multicast() {
        return Err(format!("{mac} is a group address, not a NIC's own"));
    }
    if mac == MacAddr::default() {
        return Err("00:00:00:00:00:00 is not a NIC's address".to_owned());
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_colon_and_hyphen_forms() {
        let a = parse("52:54:00:12:34:56").unwrap();
        assert_eq!(parse("52-54-00-12-34-56").unwrap(), a);
        assert_eq!(
            parse("52:54:00:12:34:5A").unwrap().to_string(),
            "52:54:00:12:34:5a"
        );
        for bad in [
            "",
            "52:54:00:12:34",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "zz:54:00:12:34:56",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(text in "\\PC{0,30}", octets in any::<[u8; 6]>()) {
            let _ = parse(&text);
            let shown = octets.iter().map(|o| format!("{o:02x}")).collect::<Vec<_>>().join(":");
            if let Ok(mac) = parse(&shown) {
                prop_assert_eq!(mac.to_string(), shown);
            }
        }
    }
}
