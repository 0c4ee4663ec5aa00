//! Finds NaN and infinite floats in a value. JSON has no spelling for them (serde_json writes
//! `null`), so as function arguments they would share a key with `None`: `cached` refuses
//! them instead ([`has_non_finite`]).

use std::fmt;

use serde::ser::{self, Serialize};

#[derive(Debug)]
struct Stop(&'static str);

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(_msg: T) -> Stop {
        Stop("custom")
    }
}

const NON_FINITE: &str = "non-finite";

/// Whether `value` holds a NaN or an infinite float anywhere (`Err` is serde's own error of a
/// value that cannot serialize; serde_json reports it later).
pub(super) fn has_non_finite<T: Serialize + ?Sized>(value: &T) -> bool {
    matches!(value.serialize(Walk), Err(Stop(NON_FINITE)))
}

#[derive(Clone, Copy)]
struct Walk;

fn float(v: f64) -> Result<(), Stop> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Stop(NON_FINITE))
    }
}

macro_rules! fine {
    ($($m:ident($t:ty)),* $(,)?) => {$(
        fn $m(self, _v: $t) -> Result<(), Stop> { Ok(()) }
    )*};
}

impl ser::Serializer for Walk {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Walk;
    type SerializeTuple = Walk;
    type SerializeTupleStruct = Walk;
    type SerializeTupleVariant = Walk;
    type SerializeMap = Walk;
    type SerializeStruct = Walk;
    type SerializeStructVariant = Walk;

    fine!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_f32(self, v: f32) -> Result<(), Stop> {
        float(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Stop> {
        float(v)
    }

    fn serialize_none(self) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Stop> {
        v.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        v.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        v.serialize(self)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Walk, Stop> {
        Ok(self)
    }

    fn serialize_tuple(self, _: usize) -> Result<Walk, Stop> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Walk, Stop> {
        Ok(self)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Walk, Stop> {
        Ok(self)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Walk, Stop> {
        Ok(self)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Walk, Stop> {
        Ok(self)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Walk, Stop> {
        Ok(self)
    }
}

macro_rules! compound {
    ($($tr:ident :: $m:ident),* $(,)?) => {$(
        impl ser::$tr for Walk {
            type Ok = ();
            type Error = Stop;
            fn $m<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
                v.serialize(*self)
            }
            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        }
    )*};
}

compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl ser::SerializeMap for Walk {
    type Ok = ();
    type Error = Stop;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Stop> {
        k.serialize(*self)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        v.serialize(*self)
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

macro_rules! named_fields {
    ($($tr:ident),* $(,)?) => {$(
        impl ser::$tr for Walk {
            type Ok = ();
            type Error = Stop;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                _: &'static str,
                v: &T,
            ) -> Result<(), Stop> {
                v.serialize(*self)
            }
            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        }
    )*};
}

named_fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_infinities_are_found_anywhere() {
        assert!(has_non_finite(&f64::NAN));
        assert!(has_non_finite(&Some(f32::INFINITY)));
        assert!(has_non_finite(&vec![(1, f64::NEG_INFINITY)]));
        assert!(!has_non_finite(&vec![(1, 2.5)]));
        assert!(!has_non_finite(&None::<f64>));
        assert!(!has_non_finite("text"));
    }
}
