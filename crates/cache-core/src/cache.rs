//! The cache-aside core: `get`, `set`, `delete`, `get_or_set` with in-process single-flight,
//! negative caching, TTL jitter and graceful degradation when Redis fails.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::*;
use fred::types::Expiration;
use futures::TryStreamExt;
use redis_conn::{Namespace, RedisClient};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::watch;
use tracing::Instrument;

use crate::codec::{Codec, CodecError};
use crate::envelope::{Envelope, now_ms};

/// Settings of one cache.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Key prefix: entries are stored as `<namespace>:<key>`.
    pub namespace: String,
    /// TTL when a call does not give one. Default 10 min.
    pub default_ttl: Duration,
    /// TTL of cached "not found" entries (penetration guard). Default 60 s.
    pub null_ttl: Duration,
    /// TTL jitter ratio: each TTL is scaled by a random factor in `1 ± jitter`, so keys written
    /// together do not expire together (avalanche guard). Default 0.1.
    pub jitter: f64,
    /// Value encoding. Default JSON.
    pub codec: Codec,
}

impl CacheConfig {
    /// Defaults for a namespace.
    ///
    /// ```
    /// let cfg = cache_core::CacheConfig::new("shop:products");
    /// assert_eq!(cfg.jitter, 0.1);
    /// ```
    pub fn new(namespace: impl Into<String>) -> CacheConfig {
        CacheConfig {
            namespace: namespace.into(),
            default_ttl: Duration::from_secs(600),
            null_ttl: Duration::from_secs(60),
            jitter: 0.1,
            codec: Codec::Json,
        }
    }
}

/// What a plain lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// A cached value.
    Hit(T),
    /// A cached "not found" (negative entry).
    NotFound,
    /// Nothing usable cached (absent, expired or undecodable).
    Miss,
}

/// Errors of `get`, `set`, `delete` and invalidation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis failed.
    #[error("cache backend: {0}")]
    Redis(#[from] redis_conn::Error),
    /// A value could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The configuration is invalid.
    #[error("invalid cache configuration: {0}")]
    Config(String),
}

/// Errors of [`Cache::get_or_set`]: only the builder's own failure or an unencodable value.
/// Redis failures never surface here: the builder's value is returned instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError<E> {
    /// The builder failed (shared by every caller that waited on the same build).
    #[error("builder failed: {0}")]
    Builder(Arc<E>),
    /// The built value could not be encoded (or decoded by a waiter).
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Counters since the cache was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Values served from Redis.
    pub hits: u64,
    /// Negative entries served from Redis.
    pub null_hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Builder runs.
    pub builds: u64,
    /// Builder failures.
    pub build_errors: u64,
    /// Callers that waited on another caller's build instead of building.
    pub coalesced: u64,
    /// Redis errors absorbed.
    pub redis_errors: u64,
    /// Entries that could not be decoded (treated as misses and rebuilt).
    pub decode_errors: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    null_hits: AtomicU64,
    misses: AtomicU64,
    builds: AtomicU64,
    build_errors: AtomicU64,
    coalesced: AtomicU64,
    redis_errors: AtomicU64,
    decode_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The outcome of one build, shared with waiters: the encoded payload (None: not found) or the
/// builder's error.
type Flight = Result<Option<Arc<Vec<u8>>>, Arc<dyn Any + Send + Sync>>;
type Flights = Mutex<HashMap<(String, TypeId), watch::Receiver<Option<Flight>>>>;

struct Inner {
    redis: RedisClient,
    ns: Namespace,
    cfg: CacheConfig,
    flights: Flights,
    counters: Counters,
}

/// A cache-aside cache over Redis. Cheap to clone; clones share state.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use cache_core::{Cache, CacheConfig};
///
/// let cache = Cache::new(redis, CacheConfig::new("shop:product"))?;
/// let product: Option<String> = cache
///     .get_or_set("42", Some(Duration::from_secs(300)), || async {
///         // load from the database; Ok(None) caches "not found" for null_ttl
///         Ok::<_, std::io::Error>(Some("Rusty teapot".to_string()))
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.cfg.namespace)
            .finish_non_exhaustive()
    }
}

/// Removes a flight from the map when its leader finishes or is cancelled.
struct FlightGuard<'a> {
    flights: &'a Flights,
    key: (String, TypeId),
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        lock(self.flights).remove(&self.key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    /// A cache over `redis` with `config`.
    pub fn new(redis: RedisClient, config: CacheConfig) -> Result<Cache, Error> {
        let ns =
            Namespace::new(config.namespace.clone()).map_err(|e| Error::Config(e.to_string()))?;
        if !(0.0..1.0).contains(&config.jitter) {
            return Err(Error::Config(format!(
                "jitter {} must be in [0, 1)",
                config.jitter
            )));
        }
        if config.default_ttl.is_zero() || config.null_ttl.is_zero() {
            return Err(Error::Config("TTLs must be greater than zero".into()));
        }
        Ok(Cache {
            inner: Arc::new(Inner {
                redis,
                ns,
                cfg: config,
                flights: Mutex::new(HashMap::new()),
                counters: Counters::default(),
            }),
        })
    }

    /// The full Redis key of a cache key.
    ///
    /// ```no_run
    /// # fn demo(cache: cache_core::Cache) {
    /// assert_eq!(cache.redis_key("42"), "shop:product:42");
    /// # }
    /// ```
    pub fn redis_key(&self, key: &str) -> String {
        self.inner.ns.key(key)
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            hits: r(&c.hits),
            null_hits: r(&c.null_hits),
            misses: r(&c.misses),
            builds: r(&c.builds),
            build_errors: r(&c.build_errors),
            coalesced: r(&c.coalesced),
            redis_errors: r(&c.redis_errors),
            decode_errors: r(&c.decode_errors),
        }
    }

    /// `ttl` scaled by a random factor in `1 ± jitter`.
    fn jittered(&self, ttl: Duration) -> Duration {
        let j = self.inner.cfg.jitter;
        let factor = 1.0 + j * (2.0 * fastrand::f64() - 1.0);
        ttl.mul_f64(factor).max(Duration::from_millis(1))
    }

    async fn read(&self, full_key: &str) -> Result<Option<Envelope>, redis_conn::Error> {
        let bytes: Option<Vec<u8>> = self.inner.redis.pool().get(full_key).await?;
        Ok(bytes.and_then(|b| match Envelope::decode(&b) {
            Ok(e) => Some(e),
            Err(err) => {
                bump(&self.inner.counters.decode_errors);
                tracing::warn!(key = full_key, error = %err, "undecodable cache entry treated as a miss");
                None
            }
        }))
    }

    async fn write(
        &self,
        full_key: &str,
        env: &Envelope,
        ttl: Duration,
    ) -> Result<(), redis_conn::Error> {
        let px = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let _: () = self
            .inner
            .redis
            .pool()
            .set(
                full_key,
                env.encode(),
                Some(Expiration::PX(px)),
                None,
                false,
            )
            .await?;
        Ok(())
    }

    /// Looks a key up without building.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Lookup<T>, Error> {
        let full = self.redis_key(key);
        let span = tracing::debug_span!("cache.get", key = %full);
        async {
            let c = &self.inner.counters;
            let env = self.read(&full).await.inspect_err(|_| bump(&c.redis_errors))?;
            Ok(match env {
                Some(e) if e.null => {
                    bump(&c.null_hits);
                    Lookup::NotFound
                }
                Some(e) => match e.codec.decode(&e.payload) {
                    Ok(v) => {
                        bump(&c.hits);
                        Lookup::Hit(v)
                    }
                    Err(err) => {
                        bump(&c.decode_errors);
                        tracing::warn!(key = %full, error = %err, "cached value does not decode as the requested type");
                        bump(&c.misses);
                        Lookup::Miss
                    }
                },
                None => {
                    bump(&c.misses);
                    Lookup::Miss
                }
            })
        }
        .instrument(span)
        .await
    }

    /// Stores a value for `ttl` (default TTL when `None`), with jitter.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let payload = self.inner.cfg.codec.encode(value)?;
        let ttl = self.jittered(ttl.unwrap_or(self.inner.cfg.default_ttl));
        let env = self.envelope(Some(payload), Duration::ZERO);
        self.write(&self.redis_key(key), &env, ttl)
            .instrument(tracing::debug_span!("cache.set", key))
            .await
            .inspect_err(|_| bump(&self.inner.counters.redis_errors))?;
        Ok(())
    }

    /// Removes keys; returns how many existed.
    pub async fn delete(&self, keys: &[&str]) -> Result<u64, Error> {
        let mut removed = 0;
        // One UNLINK per key: keys of a cache need not share a cluster slot.
        for key in keys {
            let n: u64 = self
                .inner
                .redis
                .pool()
                .unlink(self.redis_key(key))
                .await
                .map_err(redis_conn::Error::from)?;
            removed += n;
        }
        Ok(removed)
    }

    /// Removes every entry whose key (without the namespace) matches the glob `pattern`, on
    /// every primary, by `SCAN` + batched `UNLINK` (never `KEYS`). Returns how many were removed.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<u64, Error> {
        let full = self.inner.ns.glob(pattern);
        let redis = &self.inner.redis;
        let mut pages = std::pin::pin!(redis_conn::scan_keys(redis, &full, 500));
        let mut removed = 0u64;
        while let Some(keys) = pages.try_next().await? {
            // Group by slot: a multi-key UNLINK must stay within one slot on a cluster.
            let mut by_slot: HashMap<u16, Vec<fred::types::Key>> = HashMap::new();
            for k in keys {
                by_slot
                    .entry(redis_conn::keys::slot(k.as_bytes()))
                    .or_default()
                    .push(k);
            }
            for (_, group) in by_slot {
                let n: u64 = redis
                    .pool()
                    .unlink(group)
                    .await
                    .map_err(redis_conn::Error::from)?;
                removed += n;
            }
        }
        Ok(removed)
    }

    fn envelope(&self, payload: Option<Vec<u8>>, build: Duration) -> Envelope {
        Envelope {
            codec: self.inner.cfg.codec,
            null: payload.is_none(),
            created_ms: now_ms(),
            build,
            soft_expiry_ms: 0,
            payload: payload.unwrap_or_default(),
        }
    }

    /// Returns the cached value, or builds it once and caches it.
    ///
    /// * Concurrent calls for the same key in this process share one build (single-flight);
    ///   waiters get the builder's value or its error.
    /// * `Ok(None)` from the builder is cached as "not found" for `null_ttl`.
    /// * Redis errors are absorbed: the builder's value is returned (and counted in
    ///   [`CacheStats::redis_errors`]).
    /// * An undecodable entry is a miss: rebuilt, overwritten, counted.
    pub async fn get_or_set<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        builder: F,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let full = self.redis_key(key);
        let span = tracing::debug_span!("cache.get_or_set", key = %full);
        self.get_or_set_inner(full, ttl, builder)
            .instrument(span)
            .await
    }

    async fn get_or_set_inner<T, E, F, Fut>(
        &self,
        full: String,
        ttl: Option<Duration>,
        builder: F,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let c = &self.inner.counters;
        let codec = self.inner.cfg.codec;
        let mut degraded = false;
        match self.read(&full).await {
            Ok(Some(e)) if e.null => {
                bump(&c.null_hits);
                return Ok(None);
            }
            Ok(Some(e)) => match e.codec.decode::<T>(&e.payload) {
                Ok(v) => {
                    bump(&c.hits);
                    return Ok(Some(v));
                }
                Err(err) => {
                    bump(&c.decode_errors);
                    tracing::warn!(key = %full, error = %err, "cached value does not decode; rebuilding");
                }
            },
            Ok(None) => {}
            Err(err) => {
                bump(&c.redis_errors);
                degraded = true;
                tracing::warn!(key = %full, error = %err, "cache read failed; building without the cache");
            }
        }
        bump(&c.misses);

        let flight_key = (full.clone(), TypeId::of::<(T, E)>());
        let mut builder = Some(builder);
        loop {
            // Follow a build in progress, or lead one.
            let (follow, lead) = {
                let mut map = lock(&self.inner.flights);
                match map.get(&flight_key) {
                    Some(rx) => (Some(rx.clone()), None),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        map.insert(flight_key.clone(), rx);
                        (None, Some(tx))
                    }
                }
            };
            if let Some(mut rx) = follow {
                bump(&c.coalesced);
                loop {
                    if let Some(result) = rx.borrow_and_update().clone() {
                        return decode_flight::<T, E>(codec, result);
                    }
                    if rx.changed().await.is_err() {
                        break; // the leader was cancelled: lead or follow anew
                    }
                }
                if let Some(result) = rx.borrow().clone() {
                    return decode_flight::<T, E>(codec, result);
                }
                continue;
            }
            let Some(tx) = lead else { continue };
            let _guard = FlightGuard {
                flights: &self.inner.flights,
                key: flight_key.clone(),
            };
            let Some(build) = builder.take() else {
                // Unreachable: a caller leads at most once (it returns after leading).
                continue;
            };
            bump(&c.builds);
            let started = Instant::now();
            let built = build().await;
            let took = started.elapsed();
            return match built {
                Ok(value) => {
                    let payload = match &value {
                        Some(v) => Some(codec.encode(v)?),
                        None => None,
                    };
                    if !degraded {
                        let ttl = match payload {
                            Some(_) => self.jittered(ttl.unwrap_or(self.inner.cfg.default_ttl)),
                            None => self.jittered(self.inner.cfg.null_ttl),
                        };
                        let env = self.envelope(payload.clone(), took);
                        if let Err(err) = self.write(&full, &env, ttl).await {
                            bump(&c.redis_errors);
                            tracing::warn!(key = %full, error = %err, "cache write failed; value returned uncached");
                        }
                    }
                    tx.send_replace(Some(Ok(payload.map(Arc::new))));
                    Ok(value)
                }
                Err(e) => {
                    bump(&c.build_errors);
                    let e = Arc::new(e);
                    let shared: Arc<dyn Any + Send + Sync> = e.clone();
                    tx.send_replace(Some(Err(shared)));
                    Err(BuildError::Builder(e))
                }
            };
        }
    }
}

fn decode_flight<T: DeserializeOwned, E: Send + Sync + 'static>(
    codec: Codec,
    result: Flight,
) -> Result<Option<T>, BuildError<E>> {
    match result {
        Ok(None) => Ok(None),
        Ok(Some(payload)) => Ok(Some(codec.decode(&payload)?)),
        Err(any) => match any.downcast::<E>() {
            Ok(e) => Err(BuildError::Builder(e)),
            // The flight key includes E's type, so the leader's error is always an E.
            Err(_) => Err(BuildError::Codec(CodecError {
                codec,
                op: "decode",
                message: "builder error of an unexpected type".into(),
            })),
        },
    }
}
