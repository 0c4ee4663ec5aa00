//! The cache-aside core: `get`, `set`, `delete`, `get_or_set` with in-process single-flight,
//! negative caching, TTL jitter and graceful degradation when Redis fails.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use fred::bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::Expiration;
use fred::types::SetOptions;
use futures::{FutureExt, TryStreamExt};
use redis_conn::{Namespace, RedisClient, Script};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{Notify, OnceCell, watch};
use tracing::Instrument;

use crate::breaker::{Breaker, BreakerState};
use crate::codec::{Codec, CodecError};
use crate::envelope::{Envelope, now_ms};
use crate::near::{Near, NearConfig};

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
    /// How long a builder holds the cross-process rebuild lease. Processes that miss while it is
    /// held wait for the value instead of building. A builder that fails, panics or whose call
    /// is dropped (a caller's timeout) gives the lease back at once and wakes the waiters; only
    /// when its process dies does the lease have to expire before one waiter takes over. Set it
    /// above your slowest build. Default 10 s.
    pub rebuild_lease: Duration,
    /// The longest a caller waits for another caller's build — in this process or another —
    /// before building itself (counted in [`CacheStats::wait_timeouts`]). Default 20 s.
    pub max_wait: Duration,
    /// XFetch β: each hit refreshes early with probability `exp(−remaining / (β·build time))`;
    /// larger is earlier, 0 disables. Default 1.0.
    pub xfetch_beta: f64,
    /// Stale-while-revalidate grace: values stay in Redis this long past their TTL; a caller
    /// that finds one refreshes it while everyone else is served the stale value. Default 0
    /// (values expire at their TTL).
    pub stale_for: Duration,
    /// Opt-in in-process near cache (L1) kept coherent by Redis client tracking. Default off.
    pub near: Option<NearConfig>,
    /// Consecutive connection-level Redis failures that open the circuit breaker. Default 5.
    pub breaker_failures: u32,
    /// How long an open breaker skips Redis before letting one probe through. Default 2 s.
    pub breaker_open_for: Duration,
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
            rebuild_lease: Duration::from_secs(10),
            max_wait: Duration::from_secs(20),
            xfetch_beta: 1.0,
            stale_for: Duration::ZERO,
            near: None,
            breaker_failures: 5,
            breaker_open_for: Duration::from_secs(2),
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
    /// The builder of the call that led this build panicked; the message is the panic's. Only
    /// the calls that waited for that build get this error: the panic itself goes on unwinding
    /// in the call whose builder it was, and the rebuild lease is given back at once.
    #[error("the builder of the call this one waited for panicked: {0}")]
    Panicked(String),
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
    /// Misses that found another process building and waited for its value.
    pub lease_waits: u64,
    /// Waits ended by the builder's wake-up message (the rest ended by timeout).
    pub woken: u64,
    /// Redis calls skipped because the circuit breaker was open.
    pub short_circuited: u64,
    /// Lookups answered "absent" by a Bloom filter.
    pub filtered: u64,
    /// Hits that started a refresh (stale, or drawn early by XFetch).
    pub refreshes: u64,
    /// Values served from the in-process near cache.
    pub l1_hits: u64,
    /// Callers that waited `max_wait` for another caller's build (in this process or another)
    /// and then built the value themselves.
    pub wait_timeouts: u64,
}

/// One counter: kept locally for [`Cache::stats`] and exported through the `metrics` facade
/// (`redkit_cache_<name>_total{namespace=...}`; a no-op unless the application installs a
/// recorder).
struct Stat {
    local: AtomicU64,
    metric: metrics::Counter,
}

impl Stat {
    fn new(name: &'static str, namespace: &str) -> Stat {
        Stat {
            local: AtomicU64::new(0),
            metric: metrics::counter!(name, "namespace" => namespace.to_string()),
        }
    }
}

struct Counters {
    hits: Stat,
    null_hits: Stat,
    misses: Stat,
    builds: Stat,
    build_errors: Stat,
    coalesced: Stat,
    redis_errors: Stat,
    decode_errors: Stat,
    lease_waits: Stat,
    woken: Stat,
    short_circuited: Stat,
    filtered: Stat,
    refreshes: Stat,
    l1_hits: Stat,
    wait_timeouts: Stat,
    breaker_open: metrics::Gauge,
}

impl Counters {
    fn new(namespace: &str) -> Counters {
        Counters {
            hits: Stat::new("redkit_cache_hits_total", namespace),
            null_hits: Stat::new("redkit_cache_null_hits_total", namespace),
            misses: Stat::new("redkit_cache_misses_total", namespace),
            builds: Stat::new("redkit_cache_builds_total", namespace),
            build_errors: Stat::new("redkit_cache_build_errors_total", namespace),
            coalesced: Stat::new("redkit_cache_coalesced_total", namespace),
            redis_errors: Stat::new("redkit_cache_redis_errors_total", namespace),
            decode_errors: Stat::new("redkit_cache_decode_errors_total", namespace),
            lease_waits: Stat::new("redkit_cache_lease_waits_total", namespace),
            woken: Stat::new("redkit_cache_woken_total", namespace),
            short_circuited: Stat::new("redkit_cache_short_circuited_total", namespace),
            filtered: Stat::new("redkit_cache_filtered_total", namespace),
            refreshes: Stat::new("redkit_cache_refreshes_total", namespace),
            l1_hits: Stat::new("redkit_cache_l1_hits_total", namespace),
            wait_timeouts: Stat::new("redkit_cache_wait_timeouts_total", namespace),
            breaker_open: metrics::gauge!("redkit_cache_breaker_open", "namespace" => namespace.to_string()),
        }
    }
}

fn bump(c: &Stat) {
    bump_by(c, 1);
}

fn bump_by(c: &Stat, n: u64) {
    if n > 0 {
        c.local.fetch_add(n, Ordering::Relaxed);
        c.metric.increment(n);
    }
}

/// The outcome of one build, shared with waiters: the encoded payload (None: not found) or the
/// builder's error.
type Flight = Result<Option<(Codec, Bytes)>, Arc<dyn Any + Send + Sync>>;

/// One lookup in progress in this process, keyed by (full key, value and error types).
struct FlightEntry {
    id: u64,
    /// The cache's write epoch when the lookup started.
    epoch: u64,
    /// Where the outcome is published; created by the first follower (a lookup nobody joins,
    /// the common hit, allocates no channel).
    slot: Option<Arc<watch::Sender<Option<Flight>>>>,
}

impl FlightEntry {
    fn slot(&mut self) -> Arc<watch::Sender<Option<Flight>>> {
        self.slot
            .get_or_insert_with(|| Arc::new(watch::Sender::new(None)))
            .clone()
    }
}

#[derive(Default)]
struct FlightMap {
    next_id: u64,
    map: HashMap<(String, TypeId), FlightEntry>,
}

type Flights = Mutex<FlightMap>;

/// What [`Cache::join`] decided.
enum Join<'a> {
    /// Another caller is looking the key up: wait for its outcome (the key is handed back).
    Follow(watch::Receiver<Option<Flight>>, String),
    /// This caller looks the key up and shares the outcome.
    Lead(Leader<'a>),
}

/// The caller that leads a flight. Dropping it (cancellation) ends the flight without an
/// outcome: followers then start over.
struct Leader<'a> {
    flights: &'a Flights,
    key: (String, TypeId),
    id: u64,
    done: bool,
}

impl<'a> Leader<'a> {
    /// A leader of no flight, for a caller that stopped waiting for another caller's build:
    /// nobody follows it, and finishing it shares nothing (flight ids start at 1).
    fn detached(flights: &'a Flights, key: (String, TypeId)) -> Leader<'a> {
        Leader {
            flights,
            key,
            id: 0,
            done: true,
        }
    }

    fn full(&self) -> &str {
        &self.key.0
    }

    /// Shares an outcome with the followers so far and later ones, without ending the flight
    /// (a stale value served while this leader refreshes it).
    fn share(&mut self, outcome: Flight) {
        let slot = lock(self.flights)
            .map
            .get_mut(&self.key)
            .filter(|f| f.id == self.id)
            .map(FlightEntry::slot);
        if let Some(slot) = slot {
            slot.send_replace(Some(outcome));
        }
    }

    /// Ends the flight with an outcome; it is only built when someone is waiting for it.
    fn finish(mut self, outcome: impl FnOnce() -> Flight) {
        if let Some(slot) = self.remove() {
            slot.send_replace(Some(outcome()));
        }
    }

    /// Takes the flight out of the map (once); its slot, if anyone joined.
    fn remove(&mut self) -> Option<Arc<watch::Sender<Option<Flight>>>> {
        if std::mem::replace(&mut self.done, true) {
            return None;
        }
        let mut flights = lock(self.flights);
        if flights.map.get(&self.key).is_some_and(|f| f.id == self.id) {
            flights.map.remove(&self.key).and_then(|f| f.slot)
        } else {
            None
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Waits for a flight's outcome; `None` when its leader was cancelled first.
async fn follow(mut rx: watch::Receiver<Option<Flight>>) -> Option<Flight> {
    loop {
        if let Some(outcome) = rx.borrow_and_update().clone() {
            return Some(outcome);
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone();
        }
    }
}

type Waiters = Mutex<HashMap<String, Weak<Notify>>>;

struct Inner {
    redis: RedisClient,
    ns: Namespace,
    cfg: CacheConfig,
    flights: Flights,
    /// Bumped after every write through this cache: lookups that started earlier are not
    /// shared with later calls (read-your-writes within the process).
    epoch: AtomicU64,
    counters: Counters,
    breaker: Breaker,
    near: Option<Near>,
    /// Pub/sub channel on which builders announce filled keys.
    channel: String,
    /// Local waiters per value key, woken by the subscriber task.
    waiters: Arc<Waiters>,
    /// One subscriber connection per cache, created on the first wait.
    subscriber: OnceCell<Option<SubscriberClient>>,
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

/// What the followers of a build get when its builder panicked: the panic's message.
struct Panicked(String);

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// A rebuild lease taken (or being taken) by this caller. Dropped while armed — the call was
/// cancelled at an `.await`, or its builder panicked — it is given back at once by a spawned
/// task over the pooled connection that took it (so the give-back cannot overtake the `SET NX`),
/// and the release script wakes the waiters of every process.
struct LeaseGuard {
    cache: Cache,
    full: String,
    lease: String,
    token: String,
    armed: bool,
}

impl LeaseGuard {
    /// Gives the lease back now (a failed build, or a value found already filled).
    async fn give_back(mut self) {
        self.cache
            .release(&self.full, &self.lease, &self.token)
            .await;
        self.armed = false;
    }

    /// The lease was consumed by the fill script, or never granted: nothing to give back.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime to send it on: the lease expires by itself.
            return;
        };
        let cache = self.cache.clone();
        let (full, lease, token) = (
            std::mem::take(&mut self.full),
            std::mem::take(&mut self.lease),
            std::mem::take(&mut self.token),
        );
        tracing::debug!(key = %full, "giving back the rebuild lease of an abandoned build");
        rt.spawn(async move { cache.release(&full, &lease, &token).await });
    }
}

static FILL: Script = Script::new("cache_fill", include_str!("fill.lua"));
static RELEASE: Script = Script::new("cache_release", include_str!("release.lua"));

/// What the cross-process step decided for an in-process leader.
enum Acquire {
    /// Another process filled the key meanwhile.
    Filled(Envelope),
    /// Refreshing a still-servable value, and another process is already at it.
    Busy,
    /// Build now; `Some(lease)` when holding the rebuild lease, `None` when building without one
    /// (Redis unavailable, waited too long, or a key whose lease cannot share its slot).
    Build(Option<LeaseGuard>),
}

/// The rebuild-lease key of a value key, in the same cluster slot: it reuses the value key's
/// hash tag, or makes the whole value key its tag.
fn lease_key(full: &str) -> Option<String> {
    redis_conn::keys::sibling(full, "rebuild")
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
        if config.rebuild_lease < Duration::from_millis(10) {
            return Err(Error::Config("rebuild_lease must be at least 10 ms".into()));
        }
        let counters = Counters::new(&config.namespace);
        let near = config
            .near
            .as_ref()
            .map(|n| Near::new(n, format!("{}:", ns.prefix())));
        Ok(Cache {
            inner: Arc::new(Inner {
                redis,
                channel: format!("{}:__filled__", ns.prefix()),
                ns,
                breaker: Breaker::new(config.breaker_failures, config.breaker_open_for),
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

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        let r = |a: &Stat| a.local.load(Ordering::Relaxed);
        CacheStats {
            hits: r(&c.hits),
            null_hits: r(&c.null_hits),
            misses: r(&c.misses),
            builds: r(&c.builds),
            build_errors: r(&c.build_errors),
            coalesced: r(&c.coalesced),
            redis_errors: r(&c.redis_errors),
            decode_errors: r(&c.decode_errors),
            lease_waits: r(&c.lease_waits),
            woken: r(&c.woken),
            short_circuited: r(&c.short_circuited),
            filtered: r(&c.filtered),
            refreshes: r(&c.refreshes),
            l1_hits: r(&c.l1_hits),
            wait_timeouts: r(&c.wait_timeouts),
        }
    }

    /// `ttl` scaled by a random factor in `1 ± jitter`.
    fn jittered(&self, ttl: Duration) -> Duration {
        let j = self.inner.cfg.jitter;
        let factor = 1.0 + j * (2.0 * fastrand::f64() - 1.0);
        ttl.mul_f64(factor).max(Duration::from_millis(1))
    }

    /// Reads and decodes an entry; undecodable bytes are a miss (counted unless `recheck`, so a
    /// call that looks twice counts one bad entry once).
    async fn read_entry(
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
    fn envelope_of(
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

    async fn read(&self, full_key: &str) -> Result<Option<Envelope>, redis_conn::Error> {
        self.read_entry(full_key, false).await
    }

    async fn recheck(&self, full_key: &str) -> Result<Option<Envelope>, redis_conn::Error> {
        self.read_entry(full_key, true).await
    }

    async fn write(
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
    async fn guarded<T>(
        &self,
        call: impl Future<Output = Result<T, redis_conn::Error>>,
    ) -> Result<T, redis_conn::Error> {
        self.admit()?;
        let result = call.await;
        self.settle(&result);
        result
    }

    /// The circuit breaker's verdict before a Redis call: an error while it is open.
    fn admit(&self) -> Result<(), redis_conn::Error> {
        if self.inner.breaker.allow() {
            return Ok(());
        }
        bump(&self.inner.counters.short_circuited);
        Err(redis_conn::Error::Canceled(
            "cache circuit breaker is open: Redis skipped".into(),
        ))
    }

    /// Records a Redis call's outcome with the circuit breaker.
    fn settle<T>(&self, result: &Result<T, redis_conn::Error>) {
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
        let (ttl, soft) = self.lifetimes(ttl.unwrap_or(self.inner.cfg.default_ttl));
        let mut env = self.envelope(Some(payload.into()), Duration::ZERO);
        env.soft_expiry_ms = soft;
        let full = self.redis_key(key);
        let written = self
            .write(&full, &env, ttl)
            .instrument(tracing::debug_span!("cache.set", key))
            .await;
        self.forget(&full);
        written.inspect_err(|_| bump(&self.inner.counters.redis_errors))?;
        Ok(())
    }

    /// Removes keys; returns how many existed.
    pub async fn delete(&self, keys: &[&str]) -> Result<u64, Error> {
        let mut removed = 0;
        // One UNLINK per key: keys of a cache need not share a cluster slot.
        for key in keys {
            let full = self.redis_key(key);
            let n: Result<u64, _> = self.inner.redis.pool().unlink(&full).await;
            self.forget(&full);
            removed += n.map_err(redis_conn::Error::from)?;
        }
        Ok(removed)
    }

    /// Removes every entry whose key (without the namespace) matches the glob `pattern`, on
    /// every primary, by `SCAN` + batched `UNLINK` (never `KEYS`). Returns how many were removed.
    pub async fn invalidate_pattern(&self, pattern: &str) -> Result<u64, Error> {
        let full = self.inner.ns.glob(pattern);
        self.forget_all();
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

    /// A near-cache hit (`Some(None)`: cached "not found"), without touching Redis.
    fn l1_hit<T: Clone + 'static>(&self, key: &str) -> Option<Option<T>> {
        let near = self.inner.near.as_ref().filter(|n| n.is_ready())?;
        let v = near.get::<T>(key)?;
        bump(&self.inner.counters.l1_hits);
        Some(v)
    }

    /// Puts a value in the near cache, if there is one and nothing changed since `generation`.
    fn remember<T: Send + Sync + 'static>(
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
    fn forget(&self, key: &str) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(near) = &self.inner.near {
            near.invalidate(near.short(key));
        }
    }

    fn forget_all(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(near) = &self.inner.near {
            near.clear();
        }
    }

    /// Entries in the near cache (0 without one).
    pub fn near_len(&self) -> u64 {
        self.inner.near.as_ref().map_or(0, Near::len)
    }

    fn envelope(&self, payload: Option<Bytes>, build: Duration) -> Envelope {
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
    fn lifetimes(&self, ttl: Duration) -> (Duration, u64) {
        let logical = self.jittered(ttl);
        let soft = now_ms() + u64::try_from(logical.as_millis()).unwrap_or(u64::MAX / 2);
        (logical + self.inner.cfg.stale_for, soft)
    }

    /// Whether a hit should be refreshed: past its logical expiry (only reachable with a
    /// `stale_for` grace), or drawn by XFetch: `now − build·β·ln(rand) ≥ expiry`
    /// (Vattani et al., VLDB 2015), so refreshes start earlier for slow builds and hot keys
    /// without a synchronized expiry.
    fn needs_refresh(&self, e: &Envelope) -> bool {
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

    /// Looks up many keys at once: one `MGET` (on a cluster, one per slot, all in parallel, since
    /// a multi-key command must stay within one slot).
    pub async fn get_many<T: DeserializeOwned>(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Lookup<T>>, Error> {
        let c = &self.inner.counters;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let pool = self.inner.redis.pool();
        let span = tracing::debug_span!("cache.get_many", keys = keys.len());
        self.admit().inspect_err(|_| bump(&c.redis_errors))?;
        let replies: Result<Vec<Option<Bytes>>, fred::error::Error> =
            if !self.inner.redis.is_cluster() {
                // One MGET for everything; keys are moved into fred, not copied.
                let names: Vec<fred::types::Key> = keys
                    .iter()
                    .map(|k| fred::types::Key::from(self.redis_key(k)))
                    .collect();
                async {
                    if names.len() == 1 {
                        Ok(vec![pool.get(names[0].clone()).await?])
                    } else {
                        pool.mget(names).await
                    }
                }
                .instrument(span)
                .await
            } else {
                // A multi-key MGET must stay within one slot: one per slot, all in parallel.
                let mut groups: HashMap<u16, (Vec<usize>, Vec<fred::types::Key>)> = HashMap::new();
                for (i, k) in keys.iter().enumerate() {
                    let full = self.redis_key(k);
                    let group = groups
                        .entry(redis_conn::keys::slot(full.as_bytes()))
                        .or_default();
                    group.0.push(i);
                    group.1.push(full.into());
                }
                let calls = groups.into_values().map(|(at, names)| async move {
                    let values: Vec<Option<Bytes>> = if names.len() == 1 {
                        vec![pool.get(names[0].clone()).await?]
                    } else {
                        pool.mget(names).await?
                    };
                    Ok::<_, fred::error::Error>(at.into_iter().zip(values).collect::<Vec<_>>())
                });
                futures::future::try_join_all(calls)
                    .instrument(span)
                    .await
                    .map(|groups| {
                        let mut ordered: Vec<Option<Bytes>> = vec![None; keys.len()];
                        for (i, v) in groups.into_iter().flatten() {
                            if let Some(slot) = ordered.get_mut(i) {
                                *slot = v;
                            }
                        }
                        ordered
                    })
            };
        let replies = replies.map_err(redis_conn::Error::from);
        self.settle(&replies);
        let replies = replies.inspect_err(|_| bump(&c.redis_errors))?;
        let (mut hits, mut null_hits, mut misses, mut bad) = (0u64, 0u64, 0u64, 0u64);
        let out = replies
            .into_iter()
            .map(|bytes| {
                let found = match bytes.map(Envelope::decode_bytes) {
                    None => Lookup::Miss,
                    Some(Err(_)) => {
                        bad += 1;
                        Lookup::Miss
                    }
                    Some(Ok(e)) if e.null => Lookup::NotFound,
                    Some(Ok(e)) => {
                        e.codec
                            .decode(&e.payload)
                            .map(Lookup::Hit)
                            .unwrap_or_else(|_| {
                                bad += 1;
                                Lookup::Miss
                            })
                    }
                };
                match &found {
                    Lookup::Hit(_) => hits += 1,
                    Lookup::NotFound => null_hits += 1,
                    Lookup::Miss => misses += 1,
                }
                found
            })
            .collect();
        bump_by(&c.hits, hits);
        bump_by(&c.null_hits, null_hits);
        bump_by(&c.misses, misses);
        bump_by(&c.decode_errors, bad);
        Ok(out)
    }

    /// Stores many values in one pipeline (fred routes each `SET` to its node), each with its
    /// own jittered TTL.
    pub async fn set_many<T: Serialize>(
        &self,
        items: &[(&str, &T)],
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let ttl = ttl.unwrap_or(self.inner.cfg.default_ttl);
        let mut encoded = Vec::with_capacity(items.len());
        for (k, v) in items {
            let mut env = self.envelope(
                Some(self.inner.cfg.codec.encode(*v)?.into()),
                Duration::ZERO,
            );
            let (redis_ttl, soft) = self.lifetimes(ttl);
            env.soft_expiry_ms = soft;
            let px = i64::try_from(redis_ttl.as_millis()).unwrap_or(i64::MAX);
            encoded.push((self.redis_key(k), env.encode(), px));
        }
        let written: Vec<String> = encoded.iter().map(|(k, _, _)| k.clone()).collect();
        let client = self.inner.redis.next();
        self.guarded(async {
            let pipe = client.pipeline();
            for (k, v, px) in encoded {
                let _: () = pipe
                    .set(k, v, Some(Expiration::PX(px)), None, false)
                    .await?;
            }
            let _: Vec<Value> = pipe.all().await?;
            Ok(())
        })
        .instrument(tracing::debug_span!("cache.set_many", keys = items.len()))
        .await
        .inspect_err(|_| bump(&self.inner.counters.redis_errors))?;
        for k in &written {
            self.forget(k);
        }
        Ok(())
    }

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

    /// Stores a value and records its key under each tag, so [`Cache::invalidate_tag`] can remove
    /// everything tagged at once. A tag set lives as long as its longest-lived entry.
    pub async fn set_tagged<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        tags: &[&str],
    ) -> Result<(), Error> {
        let ttl = ttl.unwrap_or(self.inner.cfg.default_ttl);
        self.set(key, value, Some(ttl)).await?;
        let full = self.redis_key(key);
        let secs = i64::try_from(ttl.as_secs() + 60).unwrap_or(i64::MAX);
        for tag in tags {
            let tag_key = self.tag_key(tag);
            self.guarded(async {
                let _: i64 = self
                    .inner
                    .redis
                    .pool()
                    .sadd(&tag_key, full.as_str())
                    .await?;
                // NX then GT: set an expiry on a new set, only ever extend an existing one.
                let _: i64 = self
                    .inner
                    .redis
                    .pool()
                    .expire(&tag_key, secs, Some(fred::types::ExpireOptions::NX))
                    .await?;
                let _: i64 = self
                    .inner
                    .redis
                    .pool()
                    .expire(&tag_key, secs, Some(fred::types::ExpireOptions::GT))
                    .await?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Removes every entry stored with `tag`; returns how many existed. Entries written with
    /// the tag while this runs may survive (there is no cross-slot atomicity on a cluster).
    pub async fn invalidate_tag(&self, tag: &str) -> Result<u64, Error> {
        let tag_key = self.tag_key(tag);
        let pool = self.inner.redis.pool();
        let members: Vec<String> = pool
            .smembers(&tag_key)
            .await
            .map_err(redis_conn::Error::from)?;
        let mut by_slot: HashMap<u16, Vec<String>> = HashMap::new();
        for k in members {
            by_slot
                .entry(redis_conn::keys::slot(k.as_bytes()))
                .or_default()
                .push(k);
        }
        let mut removed = 0;
        for (_, group) in by_slot {
            let n: u64 = pool.unlink(group).await.map_err(redis_conn::Error::from)?;
            removed += n;
        }
        let _: i64 = pool.del(&tag_key).await.map_err(redis_conn::Error::from)?;
        self.forget_all();
        Ok(removed)
    }

    fn tag_key(&self, tag: &str) -> String {
        self.inner.ns.key(&format!("__tag__:{tag}"))
    }

    /// Like [`Cache::get_or_set`], but a value due for refresh (past its logical expiry within
    /// the `stale_for` grace, or drawn early by XFetch) is returned at once and refreshed in a
    /// background task, so with `stale_for` set readers never wait for a rebuild of a key that
    /// is read at least once per grace period. Misses still build in the foreground.
    ///
    /// ```no_run
    /// # async fn demo(cache: cache_core::Cache) -> Result<(), Box<dyn std::error::Error>> {
    /// let price: Option<u64> = cache
    ///     .get_or_refresh("price:42", None, || async { Ok::<_, std::io::Error>(Some(1999)) })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_or_refresh<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        builder: F,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<T>, E>> + Send + 'static,
    {
        if let Some(v) = self.l1_hit::<T>(key) {
            return Ok(v);
        }
        let full = self.redis_key(key);
        if let Ok(Some(e)) = self.recheck(&full).await
            && !e.null
            && let Ok(v) = e.codec.decode::<T>(&e.payload)
        {
            bump(&self.inner.counters.hits);
            if !self.needs_refresh(&e) {
                return Ok(Some(v));
            }
            bump(&self.inner.counters.refreshes);
            let this = self.clone();
            tokio::spawn(
                async move {
                    if let Err(err) = this.lookup(full, ttl, builder, true).await {
                        tracing::warn!(error = %err_kind(&err), "background refresh failed; the current value stays");
                    }
                }
                .instrument(tracing::debug_span!("cache.refresh", key)),
            );
            return Ok(Some(v));
        }
        let span = tracing::debug_span!("cache.get_or_refresh", key = %full);
        self.lookup(full, ttl, builder, false)
            .instrument(span)
            .await
    }

    /// Like [`Cache::get_or_set`], but ids the Bloom filter has never seen are answered
    /// `Ok(None)` at once, without reading the cache or running the builder (penetration guard
    /// for ids that cannot exist). If the filter cannot be read, the call proceeds as
    /// `get_or_set` (fail open).
    pub async fn get_or_set_filtered<T, E, F, Fut>(
        &self,
        filter: &crate::BloomFilter,
        key: &str,
        ttl: Option<Duration>,
        builder: F,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let known = self
            .guarded(async {
                filter.contains(key).await.map_err(|e| match e {
                    Error::Redis(r) => r,
                    other => redis_conn::Error::Client(other.to_string()),
                })
            })
            .await;
        match known {
            Ok(false) => {
                bump(&self.inner.counters.filtered);
                Ok(None)
            }
            Ok(true) => self.get_or_set(key, ttl, builder).await,
            Err(err) => {
                bump(&self.inner.counters.redis_errors);
                tracing::warn!(key, error = %err, "bloom filter unavailable; looking up without it");
                self.get_or_set(key, ttl, builder).await
            }
        }
    }

    /// Returns the cached value, or builds it once and caches it.
    ///
    /// * Concurrent calls for the same key in this process share one lookup and at most one
    ///   build (single-flight): the first caller reads Redis (and builds on a miss), the others
    ///   wait for its outcome instead of sending their own `GET`. Writes made through this
    ///   cache (`set`, `delete`, invalidation) are never hidden by a lookup that started before
    ///   them: a lookup started before a write is not shared with calls made after it.
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
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        // Near-cache hits skip the span and the async machinery below: they are the hot path.
        if let Some(v) = self.l1_hit::<T>(key) {
            return Ok(v);
        }
        self.lookup(self.redis_key(key), ttl, builder, false).await
    }

    /// Joins the key's flight in this process, or leads it: reads Redis and, on a miss, builds.
    async fn lookup<T, E, F, Fut>(
        &self,
        full: String,
        ttl: Option<Duration>,
        builder: F,
        force_refresh: bool,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let c = &self.inner.counters;
        let mut full = full;
        // When this caller stops waiting for other callers' builds (set on the first wait, so
        // a wait that starts over after a cancelled leader keeps the caller's own bound).
        let mut deadline: Option<Instant> = None;
        loop {
            let leader = match self.join::<(T, E)>(full) {
                Join::Follow(rx, key) => {
                    bump(&c.coalesced);
                    let until =
                        *deadline.get_or_insert_with(|| Instant::now() + self.inner.cfg.max_wait);
                    match tokio::time::timeout_at(until.into(), follow(rx)).await {
                        Ok(Some(result)) => return decode_flight::<T, E>(result),
                        // The leader was cancelled before it finished: lead or follow anew.
                        Ok(None) => {
                            full = key;
                            continue;
                        }
                        Err(_) => {
                            // The leader's build outlasted max_wait (hung?): build for this
                            // caller alone, as a caller of another process would.
                            bump(&c.wait_timeouts);
                            tracing::warn!(key = %key, "waited max_wait for this process's build of the key; building here");
                            let span = tracing::debug_span!("cache.get_or_set", key = %key);
                            let leader = Leader::detached(
                                &self.inner.flights,
                                (key, TypeId::of::<(T, E)>()),
                            );
                            return Box::pin(
                                self.lead(leader, ttl, builder, force_refresh, None, deadline)
                                    .instrument(span),
                            )
                            .await;
                        }
                    }
                }
                Join::Lead(leader) => leader,
            };
            // Without a near cache, a plain Redis hit is answered here with a small future; the
            // (large) miss/refresh machinery is boxed and only entered when needed.
            let (mut first, mut refresh) = (None, force_refresh);
            if self.inner.near.is_none() && !force_refresh {
                // The GET is awaited right here rather than through `read`: each async layer
                // around fred's ~7 KB future costs a copy of it on every call.
                let read = match self.admit() {
                    Ok(()) => {
                        let reply = self.inner.redis.pool().get(leader.full()).await;
                        self.envelope_of(leader.full(), reply, false)
                    }
                    Err(e) => Err(e),
                };
                if let Ok(Some(e)) = &read {
                    if e.null {
                        bump(&c.null_hits);
                        leader.finish(|| Ok(None));
                        return Ok(None);
                    }
                    // Draw once: the boxed path must not re-draw an XFetch decision.
                    refresh = self.needs_refresh(e);
                    if !refresh && let Ok(v) = e.codec.decode::<T>(&e.payload) {
                        bump(&c.hits);
                        leader.finish(|| Ok(Some((e.codec, e.payload.clone()))));
                        return Ok(Some(v));
                    }
                }
                first = Some(read);
            }
            let span = tracing::debug_span!("cache.get_or_set", key = %leader.full());
            return Box::pin(
                self.lead(leader, ttl, builder, refresh, first, deadline)
                    .instrument(span),
            )
            .await;
        }
    }

    /// Follows the key's flight in progress, or registers a new one led by the caller. A flight
    /// that started before this cache's last write is not joined: it is replaced.
    fn join<K: 'static>(&self, full: String) -> Join<'_> {
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let key = (full, TypeId::of::<K>());
        let mut flights = lock(&self.inner.flights);
        if let Some(f) = flights.map.get_mut(&key)
            && f.epoch == epoch
        {
            return Join::Follow(f.slot().subscribe(), key.0);
        }
        flights.next_id += 1;
        let id = flights.next_id;
        let entry = FlightEntry {
            id,
            epoch,
            slot: None,
        };
        flights.map.insert(key.clone(), entry);
        Join::Lead(Leader {
            flights: &self.inner.flights,
            key,
            id,
            done: false,
        })
    }

    /// The flight leader's work after a miss, an undecodable entry, a value due for refresh or
    /// a failed read: take the cross-process lease, build, write, share with the followers.
    async fn lead<T, E, F, Fut>(
        &self,
        mut leader: Leader<'_>,
        ttl: Option<Duration>,
        builder: F,
        force_refresh: bool,
        first_read: Option<Result<Option<Envelope>, redis_conn::Error>>,
        deadline: Option<Instant>,
    ) -> Result<Option<T>, BuildError<E>>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let c = &self.inner.counters;
        let codec = self.inner.cfg.codec;
        let full = leader.full().to_string();
        let mut degraded = false;
        let mut stale: Option<(T, u64, Codec, Bytes)> = None;
        let generation = match &self.inner.near {
            Some(near) if near.ready(&self.inner.redis).await => {
                if !force_refresh && let Some(v) = near.get::<T>(near.short(&full)) {
                    bump(&c.l1_hits);
                    let shared = v.as_ref().map(|v| codec.encode(v)).transpose()?;
                    leader.finish(|| Ok(shared.map(|p| (codec, Bytes::from(p)))));
                    return Ok(v);
                }
                Some(near.generation())
            }
            _ => None,
        };
        let read = match first_read {
            Some(r) => r,
            None => self.read(&full).await,
        };
        match read {
            Ok(Some(e)) if e.null => {
                bump(&c.null_hits);
                self.remember::<T>(&full, None, 0, generation);
                leader.finish(|| Ok(None));
                return Ok(None);
            }
            Ok(Some(e)) => match e.codec.decode::<T>(&e.payload) {
                Ok(v) => {
                    bump(&c.hits);
                    if !force_refresh && !self.needs_refresh(&e) {
                        self.remember(&full, Some(v.clone()), e.soft_expiry_ms, generation);
                        leader.finish(|| Ok(Some((e.codec, e.payload.clone()))));
                        return Ok(Some(v));
                    }
                    // Stale (past its logical expiry) or drawn for early refresh (XFetch): this
                    // caller refreshes; everyone else is served this value meanwhile.
                    bump(&c.refreshes);
                    leader.share(Ok(Some((e.codec, e.payload.clone()))));
                    stale = Some((v, e.created_ms, e.codec, e.payload));
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
        if stale.is_none() {
            bump(&c.misses);
        }

        let lease = if degraded {
            Acquire::Build(None)
        } else {
            self.acquire(&full, stale.as_ref().map(|s| s.1), deadline)
                .await
        };
        let lease = match lease {
            Acquire::Busy => {
                // Another process is refreshing: serve what we have.
                if let Some((value, _, vcodec, payload)) = stale {
                    leader.finish(|| Ok(Some((vcodec, payload))));
                    return Ok(Some(value));
                }
                None
            }
            Acquire::Filled(env) => {
                // Another process built it.
                let value: Option<T> = if env.null {
                    None
                } else {
                    Some(env.codec.decode(&env.payload)?)
                };
                self.remember(&full, value.clone(), env.soft_expiry_ms, generation);
                leader.finish(|| Ok((!env.null).then(|| (env.codec, env.payload.clone()))));
                return Ok(value);
            }
            Acquire::Build(lease) => lease,
        };
        bump(&c.builds);
        let started = Instant::now();
        let built = match AssertUnwindSafe(async { builder().await })
            .catch_unwind()
            .await
        {
            Ok(built) => built,
            Err(panic) => {
                bump(&c.build_errors);
                let message = panic_message(&*panic);
                tracing::error!(key = %full, panic = %message, "cache builder panicked; the rebuild lease is given back");
                match stale {
                    // Waiters were already served the value we have; they keep it.
                    Some((_, _, vcodec, payload)) => leader.finish(|| Ok(Some((vcodec, payload)))),
                    None => leader.finish(|| Err(Arc::new(Panicked(message)))),
                }
                drop(lease);
                std::panic::resume_unwind(panic);
            }
        };
        let took = started.elapsed();
        match built {
            Ok(value) => {
                let payload = match &value {
                    Some(v) => Some(Bytes::from(codec.encode(v)?)),
                    None => None,
                };
                if !degraded {
                    let mut env = self.envelope(payload.clone(), took);
                    let ttl = match payload {
                        Some(_) => {
                            let (redis_ttl, soft) =
                                self.lifetimes(ttl.unwrap_or(self.inner.cfg.default_ttl));
                            env.soft_expiry_ms = soft;
                            redis_ttl
                        }
                        None => self.jittered(self.inner.cfg.null_ttl),
                    };
                    let written = match &lease {
                        Some(l) => self.fill(&full, &l.lease, &env, ttl, &l.token).await,
                        None => self.write(&full, &env, ttl).await,
                    };
                    match written {
                        Ok(()) => {
                            // The fill script deleted the lease.
                            if let Some(lease) = lease {
                                lease.disarm();
                            }
                            self.remember(&full, value.clone(), env.soft_expiry_ms, generation)
                        }
                        // The lease (if any) is given back when `lease` drops, below.
                        Err(err) => {
                            bump(&c.redis_errors);
                            tracing::warn!(key = %full, error = %err, "cache write failed; value returned uncached");
                        }
                    }
                }
                leader.finish(|| Ok(payload.map(|p| (codec, p))));
                Ok(value)
            }
            Err(e) => {
                bump(&c.build_errors);
                if let Some(lease) = lease {
                    lease.give_back().await;
                }
                if let Some((value, _, vcodec, payload)) = stale {
                    // A failed refresh keeps serving the value we have.
                    tracing::warn!(key = %full, "refresh failed; serving the cached value");
                    leader.finish(|| Ok(Some((vcodec, payload))));
                    return Ok(Some(value));
                }
                let e = Arc::new(e);
                let shared: Arc<dyn Any + Send + Sync> = e.clone();
                leader.finish(|| Err(shared));
                Err(BuildError::Builder(e))
            }
        }
    }

    /// Takes the cross-process rebuild lease, or waits (woken by pub/sub, bounded by the
    /// lease's remaining time) for the process that holds it.
    /// With `refreshing = Some(created_ms)` the caller holds a still-servable value: it never
    /// waits (another refresher means [`Acquire::Busy`]) and only a newer entry counts as filled.
    /// A caller whose `deadline` (default: `max_wait` from now) has passed builds without the
    /// lease rather than wait.
    async fn acquire(
        &self,
        full: &str,
        refreshing: Option<u64>,
        deadline: Option<Instant>,
    ) -> Acquire {
        let newer = |env: &Envelope| refreshing.is_none_or(|created| env.created_ms > created);
        let Some(lease) = lease_key(full) else {
            return Acquire::Build(None);
        };
        let c = &self.inner.counters;
        let cfg = &self.inner.cfg;
        // The lease's calls all go over one pooled connection, so a give-back sent after a
        // cancelled `SET NX` is run after it.
        let conn = self.inner.redis.for_key(&lease);
        let deadline = deadline.unwrap_or_else(|| Instant::now() + cfg.max_wait);
        // Whether this call waited here (a caller that already waited for a build of its own
        // process was counted there).
        let mut waited = false;
        loop {
            // Armed before the SET is sent: a call dropped while it is in flight gives back
            // whatever it may have been granted.
            let guard = LeaseGuard {
                cache: self.clone(),
                full: full.to_string(),
                lease: lease.clone(),
                token: format!("{:032x}", fastrand::u128(..)),
                armed: true,
            };
            let px = i64::try_from(cfg.rebuild_lease.as_millis()).unwrap_or(i64::MAX);
            let taken: Result<Option<String>, redis_conn::Error> = self
                .guarded(async {
                    Ok(conn
                        .set(
                            &lease,
                            guard.token.as_str(),
                            Some(Expiration::PX(px)),
                            Some(SetOptions::NX),
                            false,
                        )
                        .await?)
                })
                .await;
            match taken {
                Err(err) => {
                    // The SET may still have landed (a timeout): `guard` gives it back.
                    bump(&c.redis_errors);
                    tracing::warn!(key = %full, error = %err, "rebuild lease unavailable; building without it");
                    return Acquire::Build(None);
                }
                Ok(Some(_)) => {
                    // Double check: the value may have landed between our miss and the lease.
                    if let Ok(Some(env)) = self.recheck(full).await
                        && newer(&env)
                    {
                        guard.give_back().await;
                        return Acquire::Filled(env);
                    }
                    return Acquire::Build(Some(guard));
                }
                Ok(None) if refreshing.is_some() => {
                    guard.disarm();
                    return Acquire::Busy;
                }
                Ok(None) => {
                    guard.disarm();
                    if Instant::now() >= deadline {
                        if let Ok(Some(env)) = self.recheck(full).await {
                            return Acquire::Filled(env);
                        }
                        if waited {
                            tracing::warn!(key = %full, "waited max_wait for another process's build; building here");
                            bump(&c.wait_timeouts);
                        }
                        return Acquire::Build(None);
                    }
                    bump(&c.lease_waits);
                    waited = true;
                    let notify = self.waiter(full).await;
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if let Ok(Some(env)) = self.recheck(full).await {
                        return Acquire::Filled(env);
                    }
                    let remaining: i64 = self
                        .guarded(async { Ok(conn.pttl(&lease).await?) })
                        .await
                        .unwrap_or(50);
                    if remaining > 0 {
                        let wait = Duration::from_millis(remaining as u64)
                            .min(deadline.saturating_duration_since(Instant::now()))
                            .max(Duration::from_millis(1));
                        if tokio::time::timeout(wait, notified).await.is_ok() {
                            bump(&c.woken);
                        }
                        if let Ok(Some(env)) = self.recheck(full).await {
                            return Acquire::Filled(env);
                        }
                    }
                }
            }
        }
    }

    async fn fill(
        &self,
        full: &str,
        lease: &str,
        env: &Envelope,
        ttl: Duration,
        token: &str,
    ) -> Result<(), redis_conn::Error> {
        let ttl_ms = ttl.as_millis().to_string();
        let args: Vec<fred::types::Value> = vec![
            fred::types::Value::Bytes(env.encode().into()),
            ttl_ms.into(),
            token.into(),
            self.inner.channel.as_str().into(),
            full.into(),
        ];
        let conn = self.inner.redis.for_key(lease);
        self.guarded(FILL.run::<i64, _, _, _>(conn, vec![full, lease], args))
            .await?;
        Ok(())
    }

    async fn release(&self, full: &str, lease: &str, token: &str) {
        let args = vec![token, self.inner.channel.as_str(), full];
        if let Err(err) = self
            .guarded(RELEASE.run::<i64, _, _, _>(
                self.inner.redis.for_key(lease),
                vec![lease],
                args,
            ))
            .await
        {
            bump(&self.inner.counters.redis_errors);
            tracing::warn!(key = %full, error = %err, "could not release the rebuild lease; it expires by itself");
        }
    }

    /// The local wake-up handle for a value key; starts the shared subscriber on first use.
    /// Without a subscriber (pub/sub unavailable), waits fall back to the lease timeout.
    async fn waiter(&self, full: &str) -> Arc<Notify> {
        let inner = &self.inner;
        inner
            .subscriber
            .get_or_init(|| async {
                match start_subscriber(&inner.redis, &inner.channel, Arc::downgrade(&inner.waiters)).await {
                    Ok(sub) => Some(sub),
                    Err(err) => {
                        tracing::warn!(error = %err, "cache wake-up subscriber unavailable; waits end by timeout");
                        None
                    }
                }
            })
            .await;
        let mut map = lock(&inner.waiters);
        if let Some(n) = map.get(full).and_then(Weak::upgrade) {
            return n;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let n = Arc::new(Notify::new());
        map.insert(full.to_string(), Arc::downgrade(&n));
        n
    }
}

async fn start_subscriber(
    redis: &RedisClient,
    channel: &str,
    waiters: Weak<Waiters>,
) -> Result<SubscriberClient, redis_conn::Error> {
    redis
        .listen(channel, move |delivery| {
            let Some(waiters) = waiters.upgrade() else {
                return std::ops::ControlFlow::Break(());
            };
            let map = lock(&waiters);
            match delivery {
                redis_conn::Delivery::Message(key) => {
                    if let Some(n) = map.get(key).and_then(Weak::upgrade) {
                        n.notify_waiters();
                    }
                }
                // Missed messages: wake everyone, they re-check.
                redis_conn::Delivery::Missed => map
                    .values()
                    .filter_map(Weak::upgrade)
                    .for_each(|n| n.notify_waiters()),
            }
            std::ops::ControlFlow::Continue(())
        })
        .await
}

fn decode_flight<T: DeserializeOwned, E: Send + Sync + 'static>(
    result: Flight,
) -> Result<Option<T>, BuildError<E>> {
    match result {
        Ok(None) => Ok(None),
        Ok(Some((codec, payload))) => Ok(Some(codec.decode(&payload)?)),
        Err(any) => match any.downcast::<E>() {
            Ok(e) => Err(BuildError::Builder(e)),
            Err(any) => match any.downcast::<Panicked>() {
                Ok(p) => Err(BuildError::Panicked(p.0.clone())),
                // The flight key includes E's type, so the leader's error is always an E.
                Err(_) => Err(BuildError::Codec(CodecError {
                    codec: Codec::Json,
                    op: "decode",
                    message: "builder error of an unexpected type".into(),
                })),
            },
        },
    }
}

fn err_kind<E>(e: &BuildError<E>) -> &'static str {
    match e {
        BuildError::Builder(_) => "builder error",
        BuildError::Codec(_) => "codec error",
        BuildError::Panicked(_) => "builder panicked",
    }
}

/// `fn:<function>:<sha1 of the canonical JSON of args>`.
fn function_key<A: Serialize + ?Sized>(function: &str, args: &A) -> Result<String, CodecError> {
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
fn canonical_json(v: &serde_json::Value, out: &mut String) {
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
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
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
