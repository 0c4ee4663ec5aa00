//! How values become bytes: JSON (readable, cross-language; feature `json`), MessagePack
//! (compact; feature `msgpack`) or raw (strings and byte strings stored as they are, always
//! there). No pickle-like format that could execute code on decode.

use serde::{Serialize, de::DeserializeOwned};

mod raw;

/// A value encoding. Which ones exist depends on the crate's features (`json`, `msgpack`);
/// [`Codec::Raw`] is always there.
///
/// ```
/// // With the default features the default codec is JSON.
/// assert_eq!(cache_core::Codec::default(), cache_core::Codec::Json);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// `serde_json` (feature `json`).
    #[cfg(feature = "json")]
    Json,
    /// `rmp-serde`, with field names (robust to field reordering; feature `msgpack`).
    #[cfg(feature = "msgpack")]
    MessagePack,
    /// The bytes of a `String`, `Vec<u8>` or other string / byte-string value, unchanged:
    /// no serialization library at all, readable by any client. Values of other shapes are
    /// refused with a [`CodecError`].
    Raw,
}

impl Default for Codec {
    /// JSON when the `json` feature is on, else MessagePack when `msgpack` is, else raw.
    fn default() -> Codec {
        #[cfg(feature = "json")]
        return Codec::Json;
        #[cfg(all(not(feature = "json"), feature = "msgpack"))]
        return Codec::MessagePack;
        #[cfg(not(any(feature = "json", feature = "msgpack")))]
        return Codec::Raw;
    }
}

/// A value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec:?} {op} failed: {message}")]
pub struct CodecError {
    /// Codec involved.
    pub codec: Codec,
    /// `encode` or `decode`.
    pub op: &'static str,
    /// The codec's message.
    pub message: String,
}

impl Codec {
    pub(crate) fn id(self) -> u8 {
        match self {
            #[cfg(feature = "json")]
            Codec::Json => 1,
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => 2,
            Codec::Raw => 3,
        }
    }

    /// The codec of an envelope's id; `None` for an unknown id, or one whose feature is off
    /// in this build (the entry is then treated as undecodable and rebuilt).
    pub(crate) fn from_id(id: u8) -> Option<Codec> {
        match id {
            #[cfg(feature = "json")]
            1 => Some(Codec::Json),
            #[cfg(feature = "msgpack")]
            2 => Some(Codec::MessagePack),
            3 => Some(Codec::Raw),
            _ => None,
        }
    }

    /// Encodes a value.
    ///
    /// ```
    /// let bytes = cache_core::Codec::Raw.encode("plain text").unwrap();
    /// assert_eq!(bytes, b"plain text");
    /// let back: String = cache_core::Codec::Raw.decode(&bytes).unwrap();
    /// assert_eq!(back, "plain text");
    /// assert!(cache_core::Codec::Raw.encode(&42).is_err());
    /// ```
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, CodecError> {
        let r = match self {
            #[cfg(feature = "json")]
            Codec::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => rmp_serde::to_vec_named(value).map_err(|e| e.to_string()),
            Codec::Raw => raw::to_vec(value).map_err(|e| e.to_string()),
        };
        r.map_err(|message| CodecError {
            codec: self,
            op: "encode",
            message,
        })
    }

    /// Decodes a value.
    ///
    /// ```
    /// let v: Vec<u8> = cache_core::Codec::Raw.decode(&[0, 159, 146, 150]).unwrap();
    /// assert_eq!(v, [0, 159, 146, 150]);
    /// ```
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        let r = match self {
            #[cfg(feature = "json")]
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
            Codec::Raw => raw::from_slice(bytes).map_err(|e| e.to_string()),
        };
        r.map_err(|message| CodecError {
            codec: self,
            op: "decode",
            message,
        })
    }
}
