//! The small versioned envelope every stored value carries.
//!
//! Layout (big-endian), 25 bytes of header then the payload:
//!
//! | bytes | field |
//! |---|---|
//! | 0..2 | magic `rk` |
//! | 2 | format version (1) |
//! | 3 | codec id ([`Codec`]) |
//! | 4 | flags (bit 0: cached "not found") |
//! | 5..13 | created at, Unix ms |
//! | 13..17 | build duration, ms |
//! | 17..25 | logical expiry, Unix ms (0: none) |

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::bytes::Bytes;

use crate::codec::Codec;

const MAGIC: &[u8; 2] = b"rk";
const VERSION: u8 = 1;
const HEADER: usize = 25;
const FLAG_NULL: u8 = 1;

/// A decoded envelope: metadata plus the still-encoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Codec of the payload.
    pub codec: Codec,
    /// Whether this entry caches "not found" (no payload).
    pub null: bool,
    /// When the value was built, Unix ms.
    pub created_ms: u64,
    /// How long building took.
    pub build: Duration,
    /// Logical expiry, Unix ms (0: none).
    pub soft_expiry_ms: u64,
    /// Encoded value (empty for `null`); shares the buffer read from Redis.
    pub payload: Bytes,
}

/// Why bytes from Redis are not an envelope this version understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable cache entry: {0}")]
pub struct EnvelopeError(pub String);

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Envelope {
    /// Serializes header and payload.
    ///
    /// ```
    /// use cache_core::{Codec, Envelope};
    /// let e = Envelope { codec: Codec::Json, null: false, created_ms: 1, build: std::time::Duration::from_millis(7), soft_expiry_ms: 0, payload: b"42".to_vec().into() };
    /// assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.codec.id());
        out.push(if self.null { FLAG_NULL } else { 0 });
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        let build = u32::try_from(self.build.as_millis()).unwrap_or(u32::MAX);
        out.extend_from_slice(&build.to_be_bytes());
        out.extend_from_slice(&self.soft_expiry_ms.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses bytes read from Redis; anything else (old formats, foreign writers, truncation)
    /// is an error the cache treats as a miss. Copies the payload; see
    /// [`Envelope::decode_bytes`] for the zero-copy form.
    ///
    /// ```
    /// assert!(cache_core::Envelope::decode(b"not an envelope").is_err());
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        Envelope::decode_bytes(Bytes::copy_from_slice(bytes))
    }

    /// [`Envelope::decode`] without copying: the payload shares `bytes`' buffer.
    ///
    /// ```
    /// use cache_core::{Codec, Envelope};
    /// let e = Envelope { codec: Codec::Json, null: false, created_ms: 1, build: std::time::Duration::ZERO, soft_expiry_ms: 0, payload: b"42".to_vec().into() };
    /// let d = Envelope::decode_bytes(e.encode().into()).unwrap();
    /// assert_eq!(&d.payload[..], b"42");
    /// ```
    pub fn decode_bytes(bytes: Bytes) -> Result<Envelope, EnvelopeError> {
        if bytes.len() < HEADER || &bytes[..2] != MAGIC {
            return Err(EnvelopeError("not a redkit envelope".into()));
        }
        if bytes[2] != VERSION {
            return Err(EnvelopeError(format!(
                "envelope version {} is not supported",
                bytes[2]
            )));
        }
        let codec = Codec::from_id(bytes[3])
            .ok_or_else(|| EnvelopeError(format!("unknown codec id {}", bytes[3])))?;
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut b4 = [0u8; 4];
        b4.copy_from_slice(&bytes[13..17]);
        Ok(Envelope {
            codec,
            null: bytes[4] & FLAG_NULL != 0,
            created_ms: u64_at(5),
            build: Duration::from_millis(u64::from(u32::from_be_bytes(b4))),
            soft_expiry_ms: u64_at(17),
            payload: bytes.slice(HEADER..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_other_versions_are_rejected() {
        assert!(Envelope::decode(b"").is_err());
        assert!(Envelope::decode(b"{\"json\": true}").is_err());
        let mut e = Envelope {
            codec: Codec::MessagePack,
            null: true,
            created_ms: 5,
            build: Duration::ZERO,
            soft_expiry_ms: 9,
            payload: Bytes::new(),
        }
        .encode();
        assert!(Envelope::decode(&e).expect("valid").null);
        e[2] = 99;
        assert!(Envelope::decode(&e).is_err());
        e[2] = VERSION;
        e[3] = 77;
        assert!(Envelope::decode(&e).is_err());
    }
}
