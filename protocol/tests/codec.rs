//! The codec on hostile input: truncation, garbage, corruption.

use dv_protocol::*;
use proptest::prelude::*;

use crate::strategies::*;

/// A decode that worked must be a stable point: encoding it again decodes
/// to the same value.
fn assert_stable<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(message) = decode::<T>(bytes) {
        let again = encode(&message).unwrap();
        prop_assert_eq!(decode::<T>(&again).unwrap(), message);
    }
    Ok(())
}

proptest! {
    #[test]
    fn every_strict_prefix_is_an_error(message in message(event())) {
        let bytes = encode(&message).unwrap();
        prop_assert_eq!(decode::<Event>(&[]), Err(CodecError::Empty));
        for cut in 1..bytes.len() {
            prop_assert_eq!(decode::<Event>(&bytes[..cut]), Err(CodecError::Truncated { len: cut }));
        }
    }

    #[test]
    fn every_strict_prefix_of_a_task_is_an_error(message in message(task())) {
        let bytes = encode(&message).unwrap();
        for cut in 1..bytes.len() {
            prop_assert_eq!(decode::<Task>(&bytes[..cut]), Err(CodecError::Truncated { len: cut }));
        }
    }

    #[test]
    fn trailing_bytes_are_an_error(message in message(event()), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = encode(&message).unwrap();
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(decode::<Event>(&bytes), Err(CodecError::TrailingBytes { count: extra.len() }));
    }

    #[test]
    fn other_version_bytes_are_unknown(message in message(task()), version in any::<u8>()) {
        prop_assume!(version != CODEC_VERSION);
        let mut bytes = encode(&message).unwrap();
        bytes[0] = version;
        let err = decode::<Task>(&bytes).unwrap_err();
        prop_assert_eq!(&err, &CodecError::UnknownVersion { found: version, supported: CODEC_VERSION });
        let text = err.to_string();
        let (found, supported) = (format!("version {version}"), format!("version {CODEC_VERSION}"));
        prop_assert!(text.contains(&found) && text.contains(&supported), "{}", text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..512), versioned in any::<bool>()) {
        if versioned && !bytes.is_empty() {
            bytes[0] = CODEC_VERSION;
        }
        assert_stable::<Event>(&bytes)?;
        assert_stable::<Task>(&bytes)?;
    }

    #[test]
    fn corrupted_messages_never_panic(
        message in message(event()),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = encode(&message).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            if i > 0 {
                bytes[i] = value;
            }
        }
        assert_stable::<Event>(&bytes)?;
    }
}
