//! Function results cached by their arguments: [`Cache::cached`] and its stable key.

use std::future::Future;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use super::finite::has_non_finite;
use super::inner::Cache;
use crate::codec::{Codec, CodecError};
use crate::error::BuildError;

impl Cache {
    /// Caches an async function's result under a key built from `function` and its serialized
    /// `args` (canonical JSON, SHA-1): stable across processes and releases as long as the
    /// argument types serialize the same way — never `Debug` output.
    ///
    /// ```no_run
    /// # async fn demo(cache: cache_core::Cache) -> Result<(), Box<dyn std::error::Error>> {
    /// #[derive(serde::Serialize)]
    /// struct Query { user: u64, page: u32 }
    /// let orders: Vec<u64> = cache
    ///     .cached("user_orders", &Query { user: 7, page: 1 }, None, || async {
    ///         Ok::<_, std::io::Error>(vec![1, 2, 3])
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn cached<A, T, E, F, Fut>(
        &self,
        function: &str,
        args: &A,
        ttl: Option<Duration>,
        f: F,
    ) -> Result<T, BuildError<E>>
    where
        A: Serialize + ?Sized,
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let key = function_key(function, args)?;
        let value = self
            .get_or_set(&key, ttl, || async { f().await.map(Some) })
            .await?;
        value.ok_or_else(|| {
            BuildError::Codec(CodecError {
                codec: self.inner.cfg.codec,
                op: "decode",
                message: format!("{key} holds a not-found entry, which no function result writes"),
            })
        })
    }
}

/// The key [`Cache::cached`] stores `function`'s result under for `args`:
/// `fn:<function>:<SHA-1 of the arguments' canonical JSON>` (object keys sorted at every
/// level, `-0.0` written as `0.0`), so equal arguments give equal keys in every process and
/// release, and different arguments different keys. Use it to invalidate one result
/// (`cache.delete(&[&key])`).
///
/// Errors: arguments that do not serialize as JSON (a map with non-string keys that are not
/// numbers), and NaN or infinite floats, which JSON can only write as `null` (so `NaN` would
/// share a key with `None`).
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Query { user: u64, page: u32 }
/// let key = cache_core::function_key("user_orders", &Query { user: 7, page: 1 }).unwrap();
/// assert!(key.starts_with("fn:user_orders:"));
/// assert!(cache_core::function_key("price", &f64::NAN).is_err());
/// ```
pub fn function_key<A: Serialize + ?Sized>(function: &str, args: &A) -> Result<String, CodecError> {
    if has_non_finite(args) {
        return Err(CodecError {
            codec: Codec::Json,
            op: "encode",
            message: format!(
                "arguments of {function} hold a NaN or infinite float, which has no stable key (JSON writes it as null)"
            ),
        });
    }
    let value = serde_json::to_value(args).map_err(|e| CodecError {
        codec: Codec::Json,
        op: "encode",
        message: format!("arguments of {function}: {e}"),
    })?;
    let mut canonical = String::new();
    canonical_json(&value, &mut canonical);
    Ok(format!(
        "fn:{function}:{}",
        fred::util::sha1_hash(&canonical)
    ))
}

/// JSON with object keys sorted at every level, so maps hash the same whatever their order.
pub(super) fn canonical_json(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        // -0.0 == 0.0: equal arguments, one key.
        serde_json::Value::Number(n) if n.is_f64() && n.as_f64() == Some(0.0) => {
            out.push_str("0.0");
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn function_keys_are_stable_and_order_independent() {
        let a: HashMap<&str, i32> = [("x", 1), ("y", 2), ("z", 3)].into();
        let b: std::collections::BTreeMap<&str, i32> = [("z", 3), ("y", 2), ("x", 1)].into();
        assert_eq!(
            function_key("f", &a).expect("key"),
            function_key("f", &b).expect("key")
        );
        assert_ne!(
            function_key("f", &(1, 2)).expect("key"),
            function_key("f", &(2, 1)).expect("key")
        );
        assert_ne!(
            function_key("f", &1).expect("key"),
            function_key("g", &1).expect("key")
        );
        // Pinned: a change here would orphan every cached function result after an upgrade.
        assert_eq!(
            function_key("user_orders", &serde_json::json!({"user": 7, "page": 1})).expect("key"),
            format!(
                "fn:user_orders:{}",
                fred::util::sha1_hash("{\"page\":1,\"user\":7}")
            )
        );
    }
}
