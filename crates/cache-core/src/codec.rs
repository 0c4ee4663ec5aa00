//! How values become bytes: JSON (readable, cross-language) or MessagePack (compact). No
//! pickle-like format that could execute code on decode.

use serde::{Serialize, de::DeserializeOwned};

/// A value encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// `serde_json`.
    #[default]
    Json,
    /// `rmp-serde`, with field names (robust to field reordering).
    MessagePack,
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
            Codec::Json => 1,
            Codec::MessagePack => 2,
        }
    }

    pub(crate) fn from_id(id: u8) -> Option<Codec> {
        match id {
            1 => Some(Codec::Json),
            2 => Some(Codec::MessagePack),
            _ => None,
        }
    }

    /// Encodes a value.
    ///
    /// ```
    /// let bytes = cache_core::Codec::MessagePack.encode(&vec![1, 2, 3]).unwrap();
    /// let back: Vec<i32> = cache_core::Codec::MessagePack.decode(&bytes).unwrap();
    /// assert_eq!(back, [1, 2, 3]);
    /// ```
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, CodecError> {
        let r = match self {
            Codec::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
            Codec::MessagePack => rmp_serde::to_vec_named(value).map_err(|e| e.to_string()),
        };
        r.map_err(|message| CodecError {
            codec: self,
            op: "encode",
            message,
        })
    }

    /// Decodes a value.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        let r = match self {
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            Codec::MessagePack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
        };
        r.map_err(|message| CodecError {
            codec: self,
            op: "decode",
            message,
        })
    }
}
