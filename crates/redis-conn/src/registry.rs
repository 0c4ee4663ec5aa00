//! The redkit registry: one small hash in Redis (`redkit:registry`) where queues, lock
//! namespaces and caches announce themselves when they are created, so operators' tools (the
//! `redkit` console) list them without scanning the keyspace.
//!
//! - One key, so it lives in one cluster slot and every command on it is cluster-safe.
//! - Written once: each entry is `HSETNX`, sent at most once per process and entry; an entry
//!   that exists is left as it is (its first registration time stays).
//! - Best effort: a failed registration (Redis down, or an ACL user without
//!   `+hsetnx ~redkit:registry`) is logged once and never fails the component; the console
//!   then falls back to scanning known key shapes.
//! - Small: one field per queue, lock namespace or cache (not per key). A field is the kind
//!   and the component's own key prefix (`queue|rq:{emails}`, `locks|shop:locks`,
//!   `cache|shop:product`), which is unique by construction; the value is a percent-encoded
//!   form ([`Registration::encode`]).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use fred::interfaces::{ClientLike, HashesInterface};
use fred::types::Value;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::client::RedisClient;
use crate::error::{Error, Result};

/// The registry's key.
pub const REGISTRY_KEY: &str = "redkit:registry";

/// What registered itself.
///
/// ```
/// assert_eq!(redis_conn::registry::Kind::Queue.name(), "queue");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An rqueue queue.
    Queue,
    /// A dlock namespace (every lock, semaphore and read-write lock under one prefix).
    Locks,
    /// A cache-core cache (one namespace).
    Cache,
}

impl Kind {
    /// The kind's name as written in registry fields.
    ///
    /// ```
    /// assert_eq!(redis_conn::registry::Kind::Locks.name(), "locks");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Kind::Queue => "queue",
            Kind::Locks => "locks",
            Kind::Cache => "cache",
        }
    }
}

/// One registry entry.
///
/// ```
/// use redis_conn::registry::{Kind, Registration};
/// let r = Registration::new(Kind::Queue, "rq", "emails", "rq:{emails}");
/// assert_eq!(r.field(), "queue|rq:{emails}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Registration {
    /// What it is.
    pub kind: Kind,
    /// Its namespace (`rq` for a queue, the lock or cache namespace otherwise).
    pub namespace: String,
    /// Its name (the queue's name; the namespace again for locks and caches).
    pub name: String,
    /// The key prefix every key of the component starts with.
    pub prefix: String,
    /// When it was first registered (Unix ms, the registering process's clock).
    pub registered_ms: u64,
    /// Static settings worth showing (lease, codec, ...), as `key=value` pairs.
    #[serde(default)]
    pub settings: Vec<(String, String)>,
}

impl Registration {
    /// An entry registered now.
    ///
    /// ```
    /// use redis_conn::registry::{Kind, Registration};
    /// let r = Registration::new(Kind::Cache, "shop:product", "shop:product", "shop:product");
    /// assert!(r.registered_ms > 0);
    /// ```
    pub fn new(
        kind: Kind,
        namespace: impl Into<String>,
        name: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Registration {
        Registration {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            prefix: prefix.into(),
            registered_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            settings: Vec::new(),
        }
    }

    /// Adds a setting to show.
    ///
    /// ```
    /// use redis_conn::registry::{Kind, Registration};
    /// let r = Registration::new(Kind::Queue, "rq", "a", "rq:{a}").setting("lease", "30s");
    /// assert_eq!(r.settings, vec![("lease".to_string(), "30s".to_string())]);
    /// ```
    pub fn setting(mut self, key: impl Into<String>, value: impl ToString) -> Registration {
        self.settings.push((key.into(), value.to_string()));
        self
    }

    /// The entry's field in the registry hash: `<kind>|<prefix>`.
    ///
    /// ```
    /// use redis_conn::registry::{Kind, Registration};
    /// assert_eq!(Registration::new(Kind::Locks, "app", "app", "app").field(), "locks|app");
    /// ```
    pub fn field(&self) -> String {
        format!("{}|{}", self.kind.name(), self.prefix)
    }

    /// The stored value: `v=1&kind=…&namespace=…&name=…&prefix=…&registered_ms=…` then one
    /// `set.<key>=<value>` per setting, every part percent-encoded (no JSON library needed,
    /// readable in `redis-cli`).
    ///
    /// ```
    /// use redis_conn::registry::{Kind, Registration};
    /// let r = Registration::new(Kind::Cache, "shop:p", "shop:p", "shop:p").setting("ttl", "60s");
    /// assert!(r.encode().starts_with("v=1&kind=cache&namespace=shop%3Ap"));
    /// assert_eq!(Registration::decode(&r.field(), &r.encode()), Some(r));
    /// ```
    pub fn encode(&self) -> String {
        let e = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let mut out = format!(
            "v=1&kind={}&namespace={}&name={}&prefix={}&registered_ms={}",
            self.kind.name(),
            e(&self.namespace),
            e(&self.name),
            e(&self.prefix),
            self.registered_ms
        );
        for (k, v) in &self.settings {
            out.push_str(&format!("&set.{}={}", e(k), e(v)));
        }
        out
    }

    /// Parses a stored value ([`Registration::encode`]); `None` when it is not one, or when
    /// it does not belong to `field` (an entry copied under another field).
    ///
    /// ```
    /// use redis_conn::registry::Registration;
    /// assert_eq!(Registration::decode("queue|x", "garbage"), None);
    /// ```
    pub fn decode(field: &str, value: &str) -> Option<Registration> {
        let d = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        let mut parts = value.split('&');
        if parts.next()? != "v=1" {
            return None;
        }
        let mut next = |key: &str| -> Option<String> {
            let (k, v) = parts.next()?.split_once('=')?;
            (k == key).then(|| d(v)).flatten()
        };
        let kind = match next("kind")?.as_str() {
            "queue" => Kind::Queue,
            "locks" => Kind::Locks,
            "cache" => Kind::Cache,
            _ => return None,
        };
        let namespace = next("namespace")?;
        let name = next("name")?;
        let prefix = next("prefix")?;
        let registered_ms = next("registered_ms")?.parse().ok()?;
        let mut settings = Vec::new();
        for part in parts {
            let (k, v) = part.split_once('=')?;
            settings.push((d(k.strip_prefix("set.")?)?, d(v)?));
        }
        let r = Registration {
            kind,
            namespace,
            name,
            prefix,
            registered_ms,
            settings,
        };
        (r.field() == field).then_some(r)
    }
}

fn sent() -> &'static Mutex<HashSet<String>> {
    static SENT: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    SENT.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Writes `entry` unless it exists (`HSETNX`). `Ok(true)` when this call created it.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
/// use redis_conn::registry::{Kind, Registration, register};
/// register(&redis, &Registration::new(Kind::Queue, "rq", "emails", "rq:{emails}")).await?;
/// # Ok(()) }
/// ```
pub async fn register(client: &RedisClient, entry: &Registration) -> Result<bool> {
    let value = entry.encode();
    let span = tracing::debug_span!("redis.registry.register", field = %entry.field());
    let created: bool = client
        .for_key(REGISTRY_KEY)
        .hsetnx(REGISTRY_KEY, entry.field(), value)
        .instrument(span)
        .await?;
    Ok(created)
}

/// Registers `entry` from a background task, once per process: nothing happens when this
/// process already sent it or when no Tokio runtime is running (call [`register`] then). A
/// failure is logged (`warn` for a refused right, `debug` otherwise) and forgotten, so the
/// next component created retries.
///
/// ```no_run
/// # fn demo(redis: redis_conn::RedisClient) {
/// use redis_conn::registry::{Kind, Registration, register_in_background};
/// register_in_background(&redis, Registration::new(Kind::Queue, "rq", "emails", "rq:{emails}"));
/// # }
/// ```
pub fn register_in_background(client: &RedisClient, entry: Registration) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let field = entry.field();
    {
        let mut set = sent().lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(field.clone()) {
            return;
        }
    }
    let client = client.clone();
    handle.spawn(async move {
        if let Err(e) = register(&client, &entry).await {
            sent()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&field);
            if matches!(e, Error::NoPermission(_)) {
                tracing::warn!(%field, error = %e, "not registered in {REGISTRY_KEY}: the console will find it by scanning");
            } else {
                tracing::debug!(%field, error = %e, "registration failed");
            }
        }
    });
}

/// Every entry, optionally of one kind, sorted by kind and prefix (`HSCAN`, 500 fields per
/// round trip). Fields that do not parse are skipped and counted in the second value.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
/// use redis_conn::registry::{Kind, registered};
/// let (queues, _bad) = registered(&redis, Some(Kind::Queue)).await?;
/// for q in queues { println!("{}", q.name); }
/// # Ok(()) }
/// ```
pub async fn registered(
    client: &RedisClient,
    kind: Option<Kind>,
) -> Result<(Vec<Registration>, usize)> {
    let conn = client.for_key(REGISTRY_KEY);
    let span = tracing::debug_span!("redis.registry.list");
    async move {
        let mut out = Vec::new();
        let mut bad = 0;
        let mut cursor = "0".to_string();
        let pattern = kind.map_or_else(|| "*".to_string(), |k| format!("{}|*", k.name()));
        loop {
            let reply: Value = conn
                .custom(
                    fred::cmd!("HSCAN"),
                    vec![
                        REGISTRY_KEY.to_string(),
                        cursor.clone(),
                        "MATCH".into(),
                        pattern.clone(),
                        "COUNT".into(),
                        "500".into(),
                    ],
                )
                .await?;
            let Value::Array(mut parts) = reply else {
                return Err(Error::Parse("HSCAN did not answer an array".into()));
            };
            let (Some(items), Some(next)) = (parts.pop(), parts.pop()) else {
                return Err(Error::Parse("HSCAN answered a short array".into()));
            };
            let next = next
                .as_string()
                .ok_or_else(|| Error::Parse("HSCAN cursor is not a string".into()))?;
            let Value::Array(items) = items else {
                return Err(Error::Parse("HSCAN items are not an array".into()));
            };
            for pair in items.chunks(2) {
                let (Some(f), Some(v)) = (
                    pair.first().and_then(Value::as_string),
                    pair.get(1).and_then(Value::as_string),
                ) else {
                    bad += 1;
                    continue;
                };
                match Registration::decode(&f, &v) {
                    Some(r) => out.push(r),
                    None => bad += 1,
                }
            }
            if next == "0" {
                break;
            }
            cursor = next;
        }
        out.sort_by(|a, b| (a.kind, &a.prefix).cmp(&(b.kind, &b.prefix)));
        out.dedup_by(|a, b| a.field() == b.field());
        Ok((out, bad))
    }
    .instrument(span)
    .await
}

/// Removes an entry (for example after a queue's keys were deleted). `Ok(true)` when it
/// existed.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
/// use redis_conn::registry::{Kind, unregister};
/// unregister(&redis, Kind::Queue, "rq:{old}").await?;
/// # Ok(()) }
/// ```
pub async fn unregister(client: &RedisClient, kind: Kind, prefix: &str) -> Result<bool> {
    let field = format!("{}|{prefix}", kind.name());
    let span = tracing::debug_span!("redis.registry.unregister", %field);
    let n: u64 = client
        .for_key(REGISTRY_KEY)
        .hdel(REGISTRY_KEY, field)
        .instrument(span)
        .await?;
    sent()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&format!("{}|{prefix}", kind.name()));
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_reject_a_foreign_field() {
        let r = Registration::new(Kind::Queue, "rq", "a|b", "rq:{a|b}").setting("lease", "30s");
        let v = r.encode();
        assert_eq!(Registration::decode(&r.field(), &v), Some(r.clone()));
        assert_eq!(Registration::decode("queue|rq:{other}", &v), None);
        assert_eq!(Registration::decode(&r.field(), "not an entry"), None);
        assert_eq!(Registration::decode(&r.field(), &format!("{v}&junk")), None);
    }
}
