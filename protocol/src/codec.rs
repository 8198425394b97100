//! The wire codec: one version byte, then the postcard encoding of a
//! [`Message<T>`].
//!
//! ```text
//! +---------+-----------------------------------------------+
//! | 0x01    | postcard(Message { envelope, body })          |
//! +---------+-----------------------------------------------+
//! ```
//!
//! postcard is compact and fast but not self-describing: a reader must know
//! the exact layout a writer used. The leading byte names that layout. A
//! reader that does not know the byte says so ([`CodecError::UnknownVersion`])
//! instead of misreading the rest. See `docs/adr/0003-envelope-and-codec.md`
//! for what bumps [`CODEC_VERSION`] and how old blobs stay readable
//! (`tests/data/v1-messages.txt`).
//!
//! [`decode`] never panics, on any input (a fuzz target in `fuzz/` checks it).
//! A length prefix that claims more elements than the input holds ends in
//! [`CodecError::Truncated`]; serde caps what it preallocates for a claimed
//! length at 1 MiB per collection, so a forged prefix cannot force a huge
//! allocation. There is no recursion in protocol types, so no input can
//! exhaust the stack.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::envelope::Message;

/// The codec version this build writes, and the only one it reads.
pub const CODEC_VERSION: u8 = 1;

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// No bytes at all.
    #[error("message is empty; expected a codec version byte and a body")]
    Empty,
    /// The version byte is one this build does not know.
    #[error("message has codec version {found}, but this build reads only version {supported}")]
    UnknownVersion {
        /// The version byte found.
        found: u8,
        /// The version this build reads ([`CODEC_VERSION`]).
        supported: u8,
    },
    /// The input ended in the middle of a value, or a length prefix claims
    /// more than the input holds.
    #[error("message of {len} bytes is truncated: it ends before the body is complete")]
    Truncated {
        /// The input length, version byte included.
        len: usize,
    },
    /// The bytes do not decode as the expected type.
    #[error("message is malformed: {detail}")]
    Malformed {
        /// What did not fit.
        detail: String,
    },
    /// A complete message followed by more bytes.
    #[error("message has {count} unexpected trailing bytes after a complete body")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The value could not be encoded.
    #[error("message could not be encoded: {detail}")]
    Encode {
        /// What failed.
        detail: String,
    },
}

/// Encodes `message` as the version byte followed by postcard.
pub fn encode<T: Serialize>(message: &Message<T>) -> Result<Vec<u8>, CodecError> {
    postcard::to_extend(message, vec![CODEC_VERSION]).map_err(|e| CodecError::Encode {
        detail: e.to_string(),
    })
}

/// Decodes bytes written by [`encode`] (of any codec version this build reads).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<Message<T>, CodecError> {
    let (&version, rest) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != CODEC_VERSION {
        return Err(CodecError::UnknownVersion {
            found: version,
            supported: CODEC_VERSION,
        });
    }
    let (message, left) =
        postcard::take_from_bytes::<Message<T>>(rest).map_err(|e| from_postcard(e, bytes.len()))?;
    if !left.is_empty() {
        return Err(CodecError::TrailingBytes { count: left.len() });
    }
    Ok(message)
}

fn from_postcard(error: postcard::Error, len: usize) -> CodecError {
    let detail = match error {
        postcard::Error::DeserializeUnexpectedEnd => return CodecError::Truncated { len },
        // postcard drops the text of custom errors; say where they come from.
        postcard::Error::SerdeDeCustom => {
            "a field failed validation (name token, DNS name, actor, VLAN, prefix or timestamp)"
                .to_owned()
        }
        other => other.to_string(),
    };
    CodecError::Malformed { detail }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::Actor;
    use crate::token::SiteName;

    fn msg<T>(body: T) -> Message<T> {
        let site = SiteName::new("lab").unwrap();
        Message::new(site.clone(), Actor::agent(&site), body)
    }

    #[test]
    fn round_trip_and_version_byte() {
        let m = msg(String::from("hello"));
        let bytes = encode(&m).unwrap();
        assert_eq!(bytes[0], CODEC_VERSION);
        assert_eq!(decode::<String>(&bytes).unwrap(), m);
    }

    #[test]
    fn empty_and_unknown_version() {
        assert_eq!(decode::<()>(&[]), Err(CodecError::Empty));
        let mut bytes = encode(&msg(())).unwrap();
        bytes[0] = 7;
        let err = decode::<()>(&bytes).unwrap_err();
        assert_eq!(
            err,
            CodecError::UnknownVersion {
                found: 7,
                supported: 1
            }
        );
        let text = err.to_string();
        assert!(text.contains('7') && text.contains('1'), "{text}");
    }

    #[test]
    fn truncated_and_trailing() {
        let bytes = encode(&msg(vec![1u32, 2, 3])).unwrap();
        for cut in 1..bytes.len() {
            assert_eq!(
                decode::<Vec<u32>>(&bytes[..cut]),
                Err(CodecError::Truncated { len: cut }),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode::<Vec<u32>>(&longer),
            Err(CodecError::TrailingBytes { count: 2 })
        );
    }

    #[test]
    fn huge_length_prefix_is_truncated_not_an_allocation() {
        // An empty-vec body ends in the length 0; claim 2^60 elements instead.
        let mut bytes = encode(&msg(Vec::<u64>::new())).unwrap();
        assert_eq!(bytes.pop(), Some(0));
        let mut len = 1u64 << 60;
        while len >= 0x80 {
            bytes.push((len as u8) | 0x80);
            len >>= 7;
        }
        bytes.push(len as u8);
        assert!(matches!(
            decode::<Vec<u64>>(&bytes),
            Err(CodecError::Truncated { .. })
        ));
        assert!(matches!(
            decode::<String>(&bytes),
            Err(CodecError::Truncated { .. })
        ));
        assert!(matches!(
            decode::<Vec<u8>>(&bytes),
            Err(CodecError::Truncated { .. })
        ));
    }

    #[test]
    fn validation_failures_are_malformed_with_a_hint() {
        let mut m = msg(());
        m.envelope.actor = Actor::new("user:alice").unwrap();
        let mut bytes = encode(&m).unwrap();
        // The site token "lab" is the only occurrence of these bytes; upper-case it.
        let at = bytes.windows(3).position(|w| w == b"lab").unwrap();
        bytes[at] = b'L';
        let err = decode::<()>(&bytes).unwrap_err();
        assert!(
            matches!(&err, CodecError::Malformed { detail } if detail.contains("validation")),
            "{err:?}"
        );
    }
}
