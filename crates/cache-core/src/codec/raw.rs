//! The raw codec: a value that is a string or a byte string (through any number of newtype
//! wrappers) is stored as its bytes, unchanged; everything else is refused. It needs no
//! serialization library, so a cache built without `json` and `msgpack` still stores text and
//! bytes.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Impossible, Serialize};

/// Why a value cannot be stored or read raw.
#[derive(Debug)]
pub(crate) struct RawError(String);

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RawError {}

impl ser::Error for RawError {
    fn custom<T: fmt::Display>(msg: T) -> RawError {
        RawError(msg.to_string())
    }
}

impl de::Error for RawError {
    fn custom<T: fmt::Display>(msg: T) -> RawError {
        RawError(msg.to_string())
    }
}

fn refuse(what: &str) -> RawError {
    RawError(format!(
        "the raw codec stores strings and byte strings only, not {what}: enable cache-core's \
         `json` or `msgpack` feature for other values"
    ))
}

/// The bytes of a string or byte-string value.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, RawError> {
    value.serialize(Raw { element: false })
}

/// A string or byte-string value from its bytes.
pub(crate) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RawError> {
    T::deserialize(Bytes(bytes))
}

/// The serializer: of the whole value (`element: false`: a string or byte string), or of one
/// element of a sequence (`element: true`: a `u8`, so that a `Vec<u8>` is a byte string).
#[derive(Clone, Copy)]
struct Raw {
    element: bool,
}

impl Raw {
    fn whole(self) -> Result<(), RawError> {
        if self.element {
            Err(refuse("a sequence of anything but bytes"))
        } else {
            Ok(())
        }
    }
}

/// A sequence of `u8` being collected.
struct ByteSeq(Vec<u8>);

impl ser::SerializeSeq for ByteSeq {
    type Ok = Vec<u8>;
    type Error = RawError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RawError> {
        self.0.extend(value.serialize(Raw { element: true })?);
        Ok(())
    }

    fn end(self) -> Result<Vec<u8>, RawError> {
        Ok(self.0)
    }
}

macro_rules! refuse_scalars {
    ($($method:ident($ty:ty) => $what:expr),* $(,)?) => {$(
        fn $method(self, _v: $ty) -> Result<Vec<u8>, RawError> {
            Err(refuse($what))
        }
    )*};
}

impl ser::Serializer for Raw {
    type Ok = Vec<u8>;
    type Error = RawError;
    type SerializeSeq = ByteSeq;
    type SerializeTuple = Impossible<Vec<u8>, RawError>;
    type SerializeTupleStruct = Impossible<Vec<u8>, RawError>;
    type SerializeTupleVariant = Impossible<Vec<u8>, RawError>;
    type SerializeMap = Impossible<Vec<u8>, RawError>;
    type SerializeStruct = Impossible<Vec<u8>, RawError>;
    type SerializeStructVariant = Impossible<Vec<u8>, RawError>;

    fn serialize_str(self, v: &str) -> Result<Vec<u8>, RawError> {
        self.whole()?;
        Ok(v.as_bytes().to_vec())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Vec<u8>, RawError> {
        self.whole()?;
        Ok(v.to_vec())
    }

    fn serialize_char(self, v: char) -> Result<Vec<u8>, RawError> {
        self.whole()?;
        Ok(v.to_string().into_bytes())
    }

    fn serialize_u8(self, v: u8) -> Result<Vec<u8>, RawError> {
        if self.element {
            Ok(vec![v])
        } else {
            Err(refuse("a number"))
        }
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Vec<u8>, RawError> {
        value.serialize(self)
    }

    refuse_scalars!(
        serialize_bool(bool) => "a bool",
        serialize_i8(i8) => "a number",
        serialize_i16(i16) => "a number",
        serialize_i32(i32) => "a number",
        serialize_i64(i64) => "a number",
        serialize_u16(u16) => "a number",
        serialize_u32(u32) => "a number",
        serialize_u64(u64) => "a number",
        serialize_f32(f32) => "a number",
        serialize_f64(f64) => "a number",
        serialize_unit_struct(&'static str) => "a unit struct",
    );

    fn serialize_none(self) -> Result<Vec<u8>, RawError> {
        Err(refuse("an Option"))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _v: &T) -> Result<Vec<u8>, RawError> {
        Err(refuse("an Option"))
    }

    fn serialize_unit(self) -> Result<Vec<u8>, RawError> {
        Err(refuse("()"))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<Vec<u8>, RawError> {
        Err(refuse("an enum"))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Vec<u8>, RawError> {
        Err(refuse("an enum"))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, RawError> {
        self.whole()?;
        Ok(ByteSeq(Vec::with_capacity(len.unwrap_or(0))))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, RawError> {
        Err(refuse("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, RawError> {
        Err(refuse("a tuple struct"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, RawError> {
        Err(refuse("an enum"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, RawError> {
        Err(refuse("a map"))
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, RawError> {
        Err(refuse("a struct"))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, RawError> {
        Err(refuse("an enum"))
    }
}

/// Stored bytes, read as a string (when they are UTF-8 and one is asked for), a byte string,
/// or a sequence of bytes (`Vec<u8>`).
struct Bytes<'a>(&'a [u8]);

impl<'a, 'de> de::Deserializer<'de> for Bytes<'a> {
    type Error = RawError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        match std::str::from_utf8(self.0) {
            Ok(s) => visitor.visit_str(s),
            Err(_) => visitor.visit_bytes(self.0),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        let s = std::str::from_utf8(self.0)
            .map_err(|e| RawError(format!("the stored value is not UTF-8 text: {e}")))?;
        visitor.visit_str(s)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_bytes(self.0)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_byte_buf(self.0.to_vec())
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_seq(de::value::SeqDeserializer::new(
            self.0.iter().map(|b| b.into_deserializer()),
        ))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, RawError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 option unit unit_struct
        tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Name(String);

    #[test]
    fn strings_and_bytes_round_trip_and_other_shapes_are_refused() {
        assert_eq!(to_vec("héllo").expect("str"), "héllo".as_bytes());
        let back: String = from_slice("héllo".as_bytes()).expect("string");
        assert_eq!(back, "héllo");
        let bytes: Vec<u8> = from_slice(&[0, 255, 7]).expect("bytes");
        assert_eq!(bytes, [0, 255, 7]);
        let name: Name = from_slice(b"ada").expect("newtype");
        assert_eq!(name, Name("ada".into()));
        assert_eq!(to_vec(&Name("ada".into())).expect("newtype"), b"ada");
        assert!(from_slice::<String>(&[0xff, 0xfe]).is_err(), "not UTF-8");
        assert_eq!(to_vec(&vec![0u8, 255, 7]).expect("Vec<u8>"), [0, 255, 7]);
        for err in [
            to_vec(&1u8).map(|_| ()),
            to_vec(&vec![1u32]).map(|_| ()),
            to_vec(&vec!["ab".to_string()]).map(|_| ()),
            to_vec(&vec![vec![1u8]]).map(|_| ()),
            to_vec(&Some("x")).map(|_| ()),
        ] {
            let e = err.expect_err("refused");
            assert!(e.to_string().contains("`json` or `msgpack`"), "{e}");
        }
        assert!(
            from_slice::<u64>(b"42").is_err(),
            "a number is not read from text"
        );
    }
}
