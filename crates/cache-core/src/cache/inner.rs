//! The [`Cache`] handle and the state its clones share, with the small Redis helpers every
//! path uses: reads and writes through the circuit breaker, envelopes and lifetimes, the near
//! cache.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use fred::bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::Expiration;
use redis_conn::registry::{Kind, Registration, register_in_background};
use redis_conn::{Namespace, RedisClient};
use tokio::sync::{Notify, OnceCell, oneshot};

use super::config::CacheConfig;
use super::flight::{FlightMap, Flights};
use super::shared::{self, Flusher};
use super::stats::{CacheStats, Counters, bump};
use crate::breaker::{Breaker, BreakerState};
use crate::envelope::{Envelope, now_ms};
use crate::error::Error;
use crate::near::Near;

pub(super) type Waiters = Mutex<HashMap<String, Weak<Notify>>>;

pub(super) struct Inner {
    pub(super) redis: RedisClient,
    pub(super) ns: Namespace,
    pub(super) cfg: CacheConfig,
    pub(super) flights: Flights,
    /// Bumped after every write through this cache: lookups that started earlier are not
    /// shared with later calls (read-your-writes within the process).
    pub(super) epoch: AtomicU64,
    pub(super) counters: Arc<Counters>,
    pub(super) breaker: Arc<Breaker>,
    /// The cross-process counters' sender (`None`: `shared_stats` is off).
    pub(super) shared: Option<Arc<Flusher>>,
    /// Dropped with the cache: the flusher's task then flushes once more and ends.
    pub(super) _stop_flusher: Option<oneshot::Sender<()>>,
    pub(super) near: Option<Near>,
    /// Pub/sub channel on which builders announce filled keys.
    pub(super) channel: String,
    /// Local waiters per value key, woken by the subscriber task.
    pub(super) waiters: Arc<Waiters>,
    /// One subscriber connection per cache, created on the first wait.
    pub(super) subscriber: OnceCell<Option<SubscriberClient>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(near) = &self.near {
            near.quit();
        }
        if let (Some(Some(sub)), Ok(rt)) =
            (self.subscriber.get(), tokio::runtime::Handle::try_current())
        {
            let sub = sub.clone();
            rt.spawn(async move { sub.quit().await.ok() });
        }
    }
}

/// What a cache announces in the `redkit:registry` hash (for the console).
fn registration(cfg: &CacheConfig) -> Registration {
    let ns = cfg.namespace.as_str();
    Registration::new(Kind::Cache, ns, ns, ns)
        .setting("codec", format!("{:?}", cfg.codec).to_lowercase())
        .setting("default_ttl", format!("{:?}", cfg.default_ttl))
        .setting("null_ttl", format!("{:?}", cfg.null_ttl))
        .setting("stale_for", format!("{:?}", cfg.stale_for))
        .setting("near", if cfg.near.is_some() { "on" } else { "off" })
        .setting(
            "shared_stats",
            cfg.shared_stats
                .map_or_else(|| "off".to_string(), |d| format!("{d:?}")),
        )
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
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.cfg.namespace)
            .finish_non_exhaustive()
    }
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
        if config.rebuild_lease < Duration::from_millis(10) {
            return Err(Error::Config("rebuild_lease must be at least 10 ms".into()));
        }
        if config
            .shared_stats
            .is_some_and(|every| every < shared::MIN_INTERVAL)
        {
            return Err(Error::Config(format!(
                "shared_stats must be at least {:?} (or None to turn it off)",
                shared::MIN_INTERVAL
            )));
        }
        let counters = Arc::new(Counters::new(&config.namespace));
        let breaker = Arc::new(Breaker::new(
            config.breaker_failures,
            config.breaker_open_for,
        ));
        #[cfg(feature = "near-cache")]
        let near = config
            .near
            .as_ref()
            .map(|n| Near::new(n, format!("{}:", ns.prefix())));
        #[cfg(not(feature = "near-cache"))]
        let near: Option<Near> = match config.near {
            Some(_) => {
                return Err(Error::Config(
                    "a near cache is configured but cache-core was built without its \
                     `near-cache` feature"
                        .into(),
                ));
            }
            None => None,
        };
        let shared = config.shared_stats.map(|_| {
            Arc::new(Flusher::new(
                redis.clone(),
                &ns,
                counters.clone(),
                breaker.clone(),
            ))
        });
        let stop = shared
            .clone()
            .zip(config.shared_stats)
            .and_then(|(f, every)| shared::spawn(f, every));
        register_in_background(&redis, registration(&config));
        Ok(Cache {
            inner: Arc::new(Inner {
                redis,
                channel: format!("{}:__filled__", ns.prefix()),
                ns,
                breaker,
                shared,
                _stop_flusher: stop,
                near,
                cfg: config,
                flights: Mutex::new(FlightMap::default()),
                epoch: AtomicU64::new(0),
                counters,
                waiters: Arc::new(Mutex::new(HashMap::new())),
                subscriber: OnceCell::new(),
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

    /// Counters so far (this instance's; [`SharedStats::load`](crate::SharedStats::load)
    /// sums every process's).
    ///
    /// ```no_run
    /// # fn demo(cache: cache_core::Cache) {
    /// println!("{} hits", cache.stats().hits);
    /// # }
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// Sends this instance's counters to the shared stats hash now (one script), whether or not
    /// they changed: for tests, and before a process exits (dropping the last clone of a cache
    /// also sends a last flush, from its task). `Ok(false)` when
    /// [`CacheConfig::shared_stats`] is `None`. A failure changes nothing: the next flush sends
    /// the same totals again, and the script never adds a total twice.
    ///
    /// ```no_run
    /// # async fn demo(cache: cache_core::Cache) -> Result<(), cache_core::Error> {
    /// cache.flush_shared_stats().await?;
    /// # Ok(()) }
    /// ```
    pub async fn flush_shared_stats(&self) -> Result<bool, Error> {
        match &self.inner.shared {
            Some(f) => Ok(f.flush(true).await?),
            None => Ok(false),
        }
    }

    /// This instance's id in the shared stats (`<host>-<pid>-<random>`, as in
    /// [`ProcessReport::id`](crate::ProcessReport::id)); `None` when they are off.
    ///
    /// ```no_run
    /// # fn demo(cache: cache_core::Cache) {
    /// println!("{:?}", cache.shared_stats_id());
    /// # }
    /// ```
    pub fn shared_stats_id(&self) -> Option<&str> {
        self.inner.shared.as_deref().map(Flusher::id)
    }

    /// `ttl` scaled by a random factor in `1 ± jitter`.
    pub(super) fn jittered(&self, ttl: Duration) -> Duration {
        let j = self.inner.cfg.jitter;
        let factor = 1.0 + j * (2.0 * fastrand::f64() - 1.0);
        ttl.mul_f64(factor).max(Duration::from_millis(1))
    }

    /// Reads and decodes an entry; undecodable bytes are a miss (counted unless `recheck`, so a
    /// call that looks twice counts one bad entry once).
    pub(super) async fn read_entry(
        &self,
        full_key: &str,
        recheck: bool,
    ) -> Result<Option<Envelope>, redis_conn::Error> {
        // Not through `guarded`: a future passed by value into an async fn is stored twice in
        // its state, and fred's GET future is ~7 KB.
        self.admit()?;
        let reply = self.inner.redis.pool().get(full_key).await;
        self.envelope_of(full_key, reply, recheck)
    }

    /// The entry in a `GET` reply (recorded with the circuit breaker).
    pub(super) fn envelope_of(
        &self,
        full_key: &str,
        reply: Result<Option<Bytes>, fred::error::Error>,
        recheck: bool,
    ) -> Result<Option<Envelope>, redis_conn::Error> {
        let bytes = reply.map_err(redis_conn::Error::from);
        self.settle(&bytes);
        Ok(bytes?.and_then(|b| match Envelope::decode_bytes(b) {
            Ok(e) => Some(e),
            Err(err) => {
                if !recheck {
                    bump(&self.inner.counters.decode_errors);
                    tracing::warn!(key = full_key, error = %err, "undecodable cache entry treated as a miss");
                }
                None
            }
        }))
    }

    pub(super) async fn read(&self, full_key: &str) -> Result<Option<Envelope>, redis_conn::Error> {
        self.read_entry(full_key, false).await
    }

    pub(super) async fn recheck(
        &self,
        full_key: &str,
    ) -> Result<Option<Envelope>, redis_conn::Error> {
        self.read_entry(full_key, true).await
    }

    pub(super) async fn write(
        &self,
        full_key: &str,
        env: &Envelope,
        ttl: Duration,
    ) -> Result<(), redis_conn::Error> {
        let px = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.guarded(async {
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
        })
        .await
    }

    /// Runs one Redis call through the circuit breaker: skipped at once while it is open;
    /// connection-level failures count towards opening it.
    pub(super) async fn guarded<T>(
        &self,
        call: impl Future<Output = Result<T, redis_conn::Error>>,
    ) -> Result<T, redis_conn::Error> {
        self.admit()?;
        let result = call.await;
        self.settle(&result);
        result
    }

    /// The circuit breaker's verdict before a Redis call: an error while it is open.
    pub(super) fn admit(&self) -> Result<(), redis_conn::Error> {
        if self.inner.breaker.allow() {
            return Ok(());
        }
        bump(&self.inner.counters.short_circuited);
        Err(redis_conn::Error::Canceled(
            "cache circuit breaker is open: Redis skipped".into(),
        ))
    }

    /// Records a Redis call's outcome with the circuit breaker.
    pub(super) fn settle<T>(&self, result: &Result<T, redis_conn::Error>) {
        let failed = matches!(result, Err(e) if e.is_transient());
        match self.inner.breaker.record(failed) {
            Some(BreakerState::Open) => {
                self.inner.counters.breaker_open.set(1.0);
                tracing::warn!(
                    namespace = %self.inner.cfg.namespace,
                    "cache circuit breaker opened: Redis calls skipped for {:?}",
                    self.inner.cfg.breaker_open_for
                )
            }
            Some(BreakerState::Closed) => {
                self.inner.counters.breaker_open.set(0.0);
                tracing::info!(
                    namespace = %self.inner.cfg.namespace,
                    "cache circuit breaker closed: Redis is back"
                )
            }
            _ => {}
        }
    }

    /// The circuit breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// A near-cache hit (`Some(None)`: cached "not found"), without touching Redis.
    pub(super) fn l1_hit<T: Clone + 'static>(&self, key: &str) -> Option<Option<T>> {
        let near = self.inner.near.as_ref().filter(|n| n.is_ready())?;
        let v = near.get::<T>(key)?;
        bump(&self.inner.counters.l1_hits);
        Some(v)
    }

    /// Puts a value in the near cache, if there is one and nothing changed since `generation`.
    pub(super) fn remember<T: Send + Sync + 'static>(
        &self,
        key: &str,
        value: Option<T>,
        soft_expiry_ms: u64,
        generation: Option<u64>,
    ) {
        if let (Some(near), Some(g)) = (&self.inner.near, generation) {
            near.insert(near.short(key), value, soft_expiry_ms, g);
        }
    }

    /// After a write to `key` (a full key): drops its L1 entry and ends flight sharing.
    pub(super) fn forget(&self, key: &str) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(near) = &self.inner.near {
            near.invalidate(near.short(key));
        }
    }

    pub(super) fn forget_all(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(near) = &self.inner.near {
            near.clear();
        }
    }

    /// Entries in the near cache (0 without one).
    pub fn near_len(&self) -> u64 {
        self.inner.near.as_ref().map_or(0, Near::len)
    }

    pub(super) fn envelope(&self, payload: Option<Bytes>, build: Duration) -> Envelope {
        Envelope {
            codec: self.inner.cfg.codec,
            null: payload.is_none(),
            created_ms: now_ms(),
            build,
            soft_expiry_ms: 0,
            payload: payload.unwrap_or_default(),
        }
    }

    /// The Redis TTL for a value whose logical lifetime is `ttl`: jittered, plus the
    /// stale-while-revalidate grace. Also returns the logical expiry to store.
    pub(super) fn lifetimes(&self, ttl: Duration) -> (Duration, u64) {
        let logical = self.jittered(ttl);
        let soft = now_ms() + u64::try_from(logical.as_millis()).unwrap_or(u64::MAX / 2);
        (logical + self.inner.cfg.stale_for, soft)
    }

    /// Whether a hit should be refreshed: past its logical expiry (only reachable with a
    /// `stale_for` grace), or drawn by XFetch: `now − build·β·ln(rand) ≥ expiry`
    /// (Vattani et al., VLDB 2015), so refreshes start earlier for slow builds and hot keys
    /// without a synchronized expiry.
    pub(super) fn needs_refresh(&self, e: &Envelope) -> bool {
        if e.soft_expiry_ms == 0 {
            return false;
        }
        let now = now_ms() as f64;
        let expiry = e.soft_expiry_ms as f64;
        if now >= expiry {
            return true;
        }
        let beta = self.inner.cfg.xfetch_beta;
        if beta <= 0.0 || e.build.is_zero() {
            return false;
        }
        let draw = 1.0 - fastrand::f64(); // (0, 1]
        now - e.build.as_millis() as f64 * beta * draw.ln() >= expiry
    }
}
