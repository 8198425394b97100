//! The IPMI commands the driver sends, their request data and the parsing
//! of their answers (IPMI v2.0 sections 20, 22 and 28), plus the names of
//! completion codes so errors read as what the BMC meant.

use super::rmcp::{PacketError, Reader};

/// An IPMI command: where it goes and what to call it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// Its name in the spec.
    pub name: &'static str,
    /// Network function (request).
    pub netfn: u8,
    /// Command number.
    pub cmd: u8,
}

const APP: u8 = 0x06;
const CHASSIS: u8 = 0x00;

/// Get Device ID (App 01h).
pub const GET_DEVICE_ID: Command = Command {
    name: "Get Device ID",
    netfn: APP,
    cmd: 0x01,
};
/// Get System GUID (App 37h).
pub const GET_SYSTEM_GUID: Command = Command {
    name: "Get System GUID",
    netfn: APP,
    cmd: 0x37,
};
/// Get Channel Authentication Capabilities (App 38h).
pub const GET_CHANNEL_AUTH_CAPS: Command = Command {
    name: "Get Channel Authentication Capabilities",
    netfn: APP,
    cmd: 0x38,
};
/// Set Session Privilege Level (App 3Bh).
pub const SET_SESSION_PRIVILEGE: Command = Command {
    name: "Set Session Privilege Level",
    netfn: APP,
    cmd: 0x3b,
};
/// Close Session (App 3Ch).
pub const CLOSE_SESSION: Command = Command {
    name: "Close Session",
    netfn: APP,
    cmd: 0x3c,
};
/// Get Chassis Status (Chassis 01h).
pub const GET_CHASSIS_STATUS: Command = Command {
    name: "Get Chassis Status",
    netfn: CHASSIS,
    cmd: 0x01,
};
/// Chassis Control (Chassis 02h).
pub const CHASSIS_CONTROL: Command = Command {
    name: "Chassis Control",
    netfn: CHASSIS,
    cmd: 0x02,
};
/// Set System Boot Options (Chassis 08h).
pub const SET_BOOT_OPTIONS: Command = Command {
    name: "Set System Boot Options",
    netfn: CHASSIS,
    cmd: 0x08,
};
/// Get System Boot Options (Chassis 09h).
pub const GET_BOOT_OPTIONS: Command = Command {
    name: "Get System Boot Options",
    netfn: CHASSIS,
    cmd: 0x09,
};

/// Chassis Control's request byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChassisControl {
    /// Power down (hard off).
    PowerDown = 0x00,
    /// Power up.
    PowerUp = 0x01,
    /// Hard reset.
    HardReset = 0x03,
    /// Soft shutdown by ACPI overtemperature emulation.
    SoftShutdown = 0x05,
}

impl ChassisControl {
    /// Its name, for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            ChassisControl::PowerDown => "power down",
            ChassisControl::PowerUp => "power up",
            ChassisControl::HardReset => "hard reset",
            ChassisControl::SoftShutdown => "soft shutdown",
        }
    }
}

/// Boot parameter 5, "boot flags".
pub const BOOT_FLAGS: u8 = 5;

/// Boot device selector values (boot flags data byte 2, bits 5:2).
pub mod device {
    /// No override.
    pub const NONE: u8 = 0x0;
    /// Force PXE.
    pub const PXE: u8 = 0x1;
    /// Force boot from the default hard drive.
    pub const DISK: u8 = 0x2;
}

/// What a boot device selector means (table 28-14, ipmitool's wording).
pub fn device_name(selector: u8) -> &'static str {
    match selector {
        0x0 => "no override",
        0x1 => "Force PXE",
        0x2 => "Force Boot from default Hard-Drive",
        0x3 => "Force Boot from default Hard-Drive, request Safe-Mode",
        0x4 => "Force Boot from Diagnostic Partition",
        0x5 => "Force Boot from CD/DVD",
        0x6 => "Force Boot into BIOS Setup",
        0x7 => "Force Boot from remotely connected Floppy/primary removable media",
        0x8 => "Force Boot from remotely connected CD/DVD",
        0x9 => "Force Boot from primary remote media",
        0xb => "Force Boot from remotely connected Hard-Drive",
        0xf => "Force Boot from Floppy/primary removable media",
        _ => "reserved device selector",
    }
}

/// Boot flags (parameter 5) as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootFlags {
    /// "Boot flags valid" (ipmi_sim never sets it).
    pub valid: bool,
    /// Applies to every boot, not only the next.
    pub persistent: bool,
    /// EFI, not legacy BIOS boot.
    pub efi: bool,
    /// Boot device selector.
    pub device: u8,
}

impl BootFlags {
    /// Set System Boot Options request data: a valid, next-boot-only
    /// override to `device`, keeping the BIOS/EFI type as `efi`.
    pub fn set_request(device: u8, efi: bool) -> Vec<u8> {
        let mut d1 = 0x80;
        if efi {
            d1 |= 0x20;
        }
        vec![BOOT_FLAGS, d1, (device & 0x0f) << 2, 0, 0, 0]
    }

    /// Get System Boot Options request data for parameter 5.
    pub fn get_request() -> Vec<u8> {
        vec![BOOT_FLAGS, 0, 0]
    }

    /// Parses a Get System Boot Options answer (without completion code).
    pub fn parse(data: &[u8]) -> Result<BootFlags, PacketError> {
        let mut r = Reader::new(data);
        r.u8("parameter version")?;
        let selector = r.u8("parameter selector")? & 0x7f;
        if selector != BOOT_FLAGS {
            return Err(PacketError::Field {
                what: "boot parameter",
                value: u32::from(selector),
                expected: "5 (boot flags), as asked",
            });
        }
        let d1 = r.u8("boot flags byte 1")?;
        let d2 = r.u8("boot flags byte 2")?;
        Ok(BootFlags {
            valid: d1 & 0x80 != 0,
            persistent: d1 & 0x40 != 0,
            efi: d1 & 0x20 != 0,
            device: (d2 >> 2) & 0x0f,
        })
    }
}

/// Whether Get Chassis Status says the power is on.
pub fn power_is_on(data: &[u8]) -> Result<bool, PacketError> {
    Ok(Reader::new(data).u8("current power state")? & 0x01 != 0)
}

/// Get Device ID's answer, the parts inventory wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    /// Device id.
    pub device_id: u8,
    /// Firmware revision, "major.minor".
    pub firmware: String,
    /// IANA enterprise number of the manufacturer.
    pub manufacturer: u32,
    /// Product id.
    pub product: u16,
}

impl DeviceId {
    /// Parses it.
    pub fn parse(data: &[u8]) -> Result<DeviceId, PacketError> {
        let mut r = Reader::new(data);
        let device_id = r.u8("device id")?;
        r.u8("device revision")?;
        let major = r.u8("firmware major")? & 0x7f;
        let minor = r.u8("firmware minor")?;
        r.u8("IPMI version")?;
        r.u8("additional device support")?;
        let m = r.array::<3>("manufacturer id")?;
        let manufacturer = u32::from_le_bytes([m[0], m[1], m[2] & 0x0f, 0]);
        let product = r.u16("product id")?;
        // The minor revision is BCD.
        Ok(DeviceId {
            device_id,
            firmware: format!("{major}.{minor:02x}"),
            manufacturer,
            product,
        })
    }
}

/// A few IANA enterprise numbers seen on BMCs; others are shown as numbers.
pub fn manufacturer_name(iana: u32) -> Option<&'static str> {
    Some(match iana {
        2 => "IBM",
        11 => "Hewlett-Packard",
        343 => "Intel",
        674 => "Dell",
        4753 => "MontaVista (OpenIPMI)",
        7154 => "Quanta",
        10368 => "Fujitsu",
        10876 => "Supermicro",
        19046 => "Lenovo",
        47196 => "Hewlett Packard Enterprise",
        49622 => "OpenBMC",
        _ => return None,
    })
}

/// The system GUID as ipmitool prints it by default: IPMI sends it least
/// significant byte first, so the text is the 16 bytes reversed.
pub fn guid_text(data: &[u8]) -> Result<String, PacketError> {
    let raw = Reader::new(data).array::<16>("system GUID")?;
    let mut b = raw;
    b.reverse();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        hex::encode(&b[0..4]),
        hex::encode(&b[4..6]),
        hex::encode(&b[6..8]),
        hex::encode(&b[8..10]),
        hex::encode(&b[10..16])
    ))
}

/// Whether Get Channel Authentication Capabilities says the channel speaks
/// IPMI v2.0 (RMCP+).
pub fn speaks_v2(data: &[u8]) -> Result<bool, PacketError> {
    let mut r = Reader::new(data);
    r.u8("channel")?;
    let auth = r.u8("auth type support")?;
    r.u8("auth status")?;
    let ext = r.u8("extended capabilities")?;
    Ok(auth & 0x80 != 0 && ext & 0x02 != 0)
}

/// What a completion code means (IPMI v2.0 table 5-2).
pub fn completion_meaning(cc: u8) -> &'static str {
    match cc {
        0x00 => "normal",
        0x80..=0xbe => "command-specific error",
        0xc0 => "node busy",
        0xc1 => "invalid command",
        0xc2 => "command invalid for given LUN",
        0xc3 => "timeout while processing command",
        0xc4 => "out of space",
        0xc5 => "reservation cancelled or invalid",
        0xc6 => "request data truncated",
        0xc7 => "request data length invalid",
        0xc8 => "request data field length limit exceeded",
        0xc9 => "parameter out of range",
        0xca => "cannot return number of requested data bytes",
        0xcb => "requested sensor, data, or record not present",
        0xcc => "invalid data field in request",
        0xcd => "command illegal for specified sensor or record type",
        0xce => "command response could not be provided",
        0xcf => "cannot execute duplicated request",
        0xd0 => "SDR repository in update mode",
        0xd1 => "device in firmware update mode",
        0xd2 => "BMC initialization in progress",
        0xd3 => "destination unavailable",
        0xd4 => "insufficient privilege level",
        0xd5 => "command not supported in present state",
        0xd6 => "command sub-function disabled or unavailable",
        0xff => "unspecified error",
        _ => "reserved completion code",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn boot_flags_read_what_ipmi_sim_answers() {
        // ipmi_sim's answer after `chassis bootdev pxe`: not "valid", legacy, PXE.
        let f = BootFlags::parse(&[0x01, 0x05, 0x00, 0x04, 0x00, 0x00, 0x00]).unwrap();
        assert_eq!(
            f,
            BootFlags {
                valid: false,
                persistent: false,
                efi: false,
                device: device::PXE
            }
        );
        assert_eq!(
            BootFlags::set_request(device::DISK, true),
            [5, 0xa0, 0x08, 0, 0, 0]
        );
    }

    #[test]
    fn the_guid_reads_like_ipmitool() {
        let raw = hex::decode("a123456789abcdefa123456789abcdef").unwrap();
        assert_eq!(
            guid_text(&raw).unwrap(),
            "efcdab89-6745-23a1-efcd-ab89674523a1"
        );
    }

    #[test]
    fn device_id_parses_ipmi_sims_answer() {
        let d = DeviceId::parse(&[
            0x00, 0x03, 0x09, 0x08, 0x02, 0x9f, 0x91, 0x12, 0x00, 0x02, 0x0f,
        ])
        .unwrap();
        assert_eq!(d.manufacturer, 4753);
        assert_eq!(d.product, 0x0f02);
        assert_eq!(d.firmware, "9.08");
    }

    proptest! {
        #[test]
        fn answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let _ = BootFlags::parse(&bytes);
            let _ = power_is_on(&bytes);
            let _ = DeviceId::parse(&bytes);
            let _ = guid_text(&bytes);
            let _ = speaks_v2(&bytes);
        }
    }
}
