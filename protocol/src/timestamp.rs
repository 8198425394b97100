//! Serde form of [`OffsetDateTime`] used by every protocol type:
//! `#[serde(with = "dv_protocol::timestamp")]`.
//!
//! - Human-readable formats (JSON, TOML): RFC 3339 text,
//!   `2024-06-01T12:00:00.5Z`, which operators and `jq` read directly.
//! - Binary formats (postcard): the instant as signed Unix nanoseconds
//!   (`i128`, a zig-zag varint on the wire). That is one number with no
//!   calendar fields to validate, independent of how the `time` crate happens
//!   to serialize itself, and it decodes to UTC.
//!
//! The UTC offset is not carried in the binary form; only the instant is.
//! `OffsetDateTime` equality compares instants, so a round trip compares equal.
//! Out-of-range values (beyond year ±9999) are a decode error, never a panic.

use serde::{Deserialize, Deserializer, Serializer, de, ser};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Serializes `at` as RFC 3339 text or as `i128` Unix nanoseconds.
pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        let text = at.format(&Rfc3339).map_err(ser::Error::custom)?;
        serializer.serialize_str(&text)
    } else {
        serializer.serialize_i128(at.unix_timestamp_nanos())
    }
}

/// Reads what [`serialize`] writes.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    if deserializer.is_human_readable() {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(de::Error::custom)
    } else {
        let nanos = i128::deserialize(deserializer)?;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::{Deserialize, Serialize};
    use time::OffsetDateTime;
    use time::macros::datetime;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct At(#[serde(with = "super")] OffsetDateTime);

    #[test]
    fn json_is_rfc3339() {
        let at = At(datetime!(2024-06-01 12:00:00.5 UTC));
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(json, "\"2024-06-01T12:00:00.5Z\"");
        assert_eq!(serde_json::from_str::<At>(&json).unwrap(), at);
    }

    #[test]
    fn postcard_is_unix_nanos_and_keeps_the_instant() {
        let at = At(datetime!(2024-06-01 14:00:00.000000001 +02:00));
        let bytes = postcard::to_allocvec(&at).unwrap();
        assert_eq!(
            bytes,
            postcard::to_allocvec(&at.0.unix_timestamp_nanos()).unwrap()
        );
        let back: At = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, at);
        assert_eq!(back.0.offset(), time::UtcOffset::UTC);
    }

    #[test]
    fn out_of_range_is_an_error() {
        let bytes = postcard::to_allocvec(&i128::MAX).unwrap();
        assert!(postcard::from_bytes::<At>(&bytes).is_err());
    }

    #[test]
    fn default_time_serde_also_works_under_postcard() {
        // Checked once so the choice in the module doc is an informed one:
        // `time`'s own non-human-readable form is a 9-field tuple that postcard
        // handles too. We still prefer one integer (see above).
        let at = datetime!(2024-06-01 12:00:00 UTC);
        let bytes = postcard::to_allocvec(&at).unwrap();
        assert_eq!(postcard::from_bytes::<OffsetDateTime>(&bytes).unwrap(), at);
    }
}
