//! Payloads of unknown type: any MessagePack value ([`Payload`]), shown as JSON.

use serde::{Deserialize, Serialize};

/// A queue message of unknown type: whatever MessagePack value was stored. The console reads
/// every queue as `Queue<Payload>` and shows payloads as JSON ([`Payload::to_json`]).
///
/// ```
/// let bytes = rmp_serde::to_vec(&("order", 42)).unwrap();
/// let p: redkit_console::Payload = rmp_serde::from_slice(&bytes).unwrap();
/// assert_eq!(p.to_json(), serde_json::json!(["order", 42]));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(pub rmpv::Value);

impl Payload {
    /// The payload as JSON: maps with non-string keys get their keys printed, binary becomes
    /// `{"$binary": "<hex>"}`, extension types `{"$ext": type, "data": "<hex>"}`, strings that
    /// are not UTF-8 are decoded lossily.
    ///
    /// ```
    /// use redkit_console::Payload;
    /// let p = Payload(rmpv::Value::Binary(vec![1, 255]));
    /// assert_eq!(p.to_json(), serde_json::json!({"$binary": "01ff"}));
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        to_json(&self.0)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn to_json(v: &rmpv::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        rmpv::Value::Nil => J::Null,
        rmpv::Value::Boolean(b) => J::Bool(*b),
        rmpv::Value::Integer(i) => {
            if let Some(u) = i.as_u64() {
                J::from(u)
            } else if let Some(s) = i.as_i64() {
                J::from(s)
            } else {
                J::Null
            }
        }
        rmpv::Value::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number)
        }
        rmpv::Value::F64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        rmpv::Value::String(s) => J::String(s.as_str().map_or_else(
            || String::from_utf8_lossy(s.as_bytes()).into_owned(),
            str::to_string,
        )),
        rmpv::Value::Binary(b) => serde_json::json!({ "$binary": hex(b) }),
        rmpv::Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        rmpv::Value::Map(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    rmpv::Value::String(s) => s.as_str().map_or_else(
                        || String::from_utf8_lossy(s.as_bytes()).into_owned(),
                        str::to_string,
                    ),
                    other => to_json(other).to_string(),
                };
                out.insert(key, to_json(v));
            }
            J::Object(out)
        }
        rmpv::Value::Ext(t, data) => serde_json::json!({ "$ext": t, "data": hex(data) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_maps_and_odd_values_become_json() {
        #[derive(Serialize)]
        struct Order {
            id: u64,
            sku: String,
        }
        let b = rmp_serde::to_vec_named(&Order {
            id: 7,
            sku: "<script>".into(),
        })
        .unwrap_or_default();
        let p: Payload = rmp_serde::from_slice(&b).unwrap_or(Payload(rmpv::Value::Nil));
        assert_eq!(p.to_json(), serde_json::json!({"id": 7, "sku": "<script>"}));
        let m = Payload(rmpv::Value::Map(vec![(
            rmpv::Value::from(1),
            rmpv::Value::F64(f64::NAN),
        )]));
        assert_eq!(m.to_json(), serde_json::json!({"1": null}));
        let neg = Payload(rmpv::Value::from(-3));
        assert_eq!(neg.to_json(), serde_json::json!(-3));
    }
}
