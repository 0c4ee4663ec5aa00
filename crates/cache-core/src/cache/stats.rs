//! Counters: kept per cache for [`Cache::stats`](super::Cache::stats) and exported through
//! the `metrics` facade.

use std::sync::atomic::{AtomicU64, Ordering};

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

impl CacheStats {
    /// Every counter with its name (the field names, as in the shared stats hash).
    ///
    /// ```
    /// let s = cache_core::CacheStats::default();
    /// assert_eq!(s.fields()[0], ("hits", 0));
    /// assert_eq!(s.fields().len(), 15);
    /// ```
    pub fn fields(&self) -> [(&'static str, u64); 15] {
        [
            ("hits", self.hits),
            ("null_hits", self.null_hits),
            ("misses", self.misses),
            ("builds", self.builds),
            ("build_errors", self.build_errors),
            ("coalesced", self.coalesced),
            ("redis_errors", self.redis_errors),
            ("decode_errors", self.decode_errors),
            ("lease_waits", self.lease_waits),
            ("woken", self.woken),
            ("short_circuited", self.short_circuited),
            ("filtered", self.filtered),
            ("refreshes", self.refreshes),
            ("l1_hits", self.l1_hits),
            ("wait_timeouts", self.wait_timeouts),
        ]
    }

    /// The counter named `name` (as in [`CacheStats::fields`]), for adding to it; `None` for
    /// an unknown name.
    pub(crate) fn field_mut(&mut self, name: &str) -> Option<&mut u64> {
        Some(match name {
            "hits" => &mut self.hits,
            "null_hits" => &mut self.null_hits,
            "misses" => &mut self.misses,
            "builds" => &mut self.builds,
            "build_errors" => &mut self.build_errors,
            "coalesced" => &mut self.coalesced,
            "redis_errors" => &mut self.redis_errors,
            "decode_errors" => &mut self.decode_errors,
            "lease_waits" => &mut self.lease_waits,
            "woken" => &mut self.woken,
            "short_circuited" => &mut self.short_circuited,
            "filtered" => &mut self.filtered,
            "refreshes" => &mut self.refreshes,
            "l1_hits" => &mut self.l1_hits,
            "wait_timeouts" => &mut self.wait_timeouts,
            _ => return None,
        })
    }
}

/// One counter: kept locally for [`Cache::stats`] and exported through the `metrics` facade
/// (`redkit_cache_<name>_total{namespace=...}`; a no-op unless the application installs a
/// recorder).
pub(super) struct Stat {
    pub(super) local: AtomicU64,
    pub(super) metric: redis_conn::telemetry::Counter,
}

impl Stat {
    pub(super) fn new(name: &'static str, namespace: &str) -> Stat {
        Stat {
            local: AtomicU64::new(0),
            metric: redis_conn::telemetry::counter!(name, "namespace" => namespace.to_string()),
        }
    }
}

pub(super) struct Counters {
    pub(super) hits: Stat,
    pub(super) null_hits: Stat,
    pub(super) misses: Stat,
    pub(super) builds: Stat,
    pub(super) build_errors: Stat,
    pub(super) coalesced: Stat,
    pub(super) redis_errors: Stat,
    pub(super) decode_errors: Stat,
    pub(super) lease_waits: Stat,
    pub(super) woken: Stat,
    pub(super) short_circuited: Stat,
    pub(super) filtered: Stat,
    pub(super) refreshes: Stat,
    pub(super) l1_hits: Stat,
    pub(super) wait_timeouts: Stat,
    pub(super) breaker_open: redis_conn::telemetry::Gauge,
}

impl Counters {
    pub(super) fn new(namespace: &str) -> Counters {
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
            breaker_open: redis_conn::telemetry::gauge!("redkit_cache_breaker_open", "namespace" => namespace.to_string()),
        }
    }
}

impl Counters {
    /// The counters now.
    pub(super) fn snapshot(&self) -> CacheStats {
        let r = |a: &Stat| a.local.load(Ordering::Relaxed);
        CacheStats {
            hits: r(&self.hits),
            null_hits: r(&self.null_hits),
            misses: r(&self.misses),
            builds: r(&self.builds),
            build_errors: r(&self.build_errors),
            coalesced: r(&self.coalesced),
            redis_errors: r(&self.redis_errors),
            decode_errors: r(&self.decode_errors),
            lease_waits: r(&self.lease_waits),
            woken: r(&self.woken),
            short_circuited: r(&self.short_circuited),
            filtered: r(&self.filtered),
            refreshes: r(&self.refreshes),
            l1_hits: r(&self.l1_hits),
            wait_timeouts: r(&self.wait_timeouts),
        }
    }
}

pub(super) fn bump(c: &Stat) {
    bump_by(c, 1);
}

pub(super) fn bump_by(c: &Stat, n: u64) {
    if n > 0 {
        c.local.fetch_add(n, Ordering::Relaxed);
        c.metric.increment(n);
    }
}
