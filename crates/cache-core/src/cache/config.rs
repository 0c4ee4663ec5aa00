//! A cache's settings ([`CacheConfig`]) and what a plain lookup finds ([`Lookup`]).

use std::time::Duration;

use crate::codec::Codec;
use crate::near_config::NearConfig;

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
    /// before building itself (counted in [`CacheStats::wait_timeouts`](crate::CacheStats::wait_timeouts)). Default 20 s.
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
    /// Cross-process counters: every this often (at most; nothing is sent while the counters
    /// and the breaker are unchanged, except a heartbeat every 5 s) a background task adds
    /// this cache's counters to the hash `<namespace>:__stats__` in one script, so
    /// [`SharedStats::load`](crate::SharedStats::load) sums every process. `None` turns it
    /// off; at least 100 ms. Default 1 s. Needs a Tokio runtime when [`Cache::new`](crate::Cache::new)
    /// runs (without one, only [`Cache::flush_shared_stats`](crate::Cache::flush_shared_stats) sends).
    pub shared_stats: Option<Duration>,
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
            codec: Codec::default(),
            rebuild_lease: Duration::from_secs(10),
            max_wait: Duration::from_secs(20),
            xfetch_beta: 1.0,
            stale_for: Duration::ZERO,
            near: None,
            breaker_failures: 5,
            breaker_open_for: Duration::from_secs(2),
            shared_stats: Some(Duration::from_secs(1)),
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
