//! The cache series of `/metrics`.

use super::text::{as_f64, comment, family, labels};
use crate::caches::CacheView;
use crate::console::Console;

/// A family: name, type, help and the figure of one cache.
type Family<'a> = (&'a str, &'a str, &'a str, &'a dyn Fn(&CacheView) -> u64);

/// Every cache's counters summed over its processes (cache-core's shared stats), its live
/// processes and open breakers. Returns the sections that failed.
pub(crate) async fn series(console: &Console, out: &mut String, up: &mut f64) -> u64 {
    let caches = match console.caches().await {
        Ok(c) => c,
        Err(e) => {
            if e.is_redis() {
                *up = 0.0;
            }
            comment(out, "caches", &e.to_string());
            return 1;
        }
    };
    let mut errors = 0;
    for c in caches.iter().filter(|c| c.error.is_some()) {
        errors += 1;
        comment(
            out,
            &format!("cache {}", c.namespace),
            c.error.as_deref().unwrap_or_default(),
        );
    }
    let ok: Vec<&CacheView> = caches.iter().filter(|c| c.error.is_none()).collect();
    let series = |f: &dyn Fn(&CacheView) -> u64| -> Vec<(String, f64)> {
        ok.iter()
            .map(|c| (labels(&[("namespace", &c.namespace)]), as_f64(f(c))))
            .collect()
    };
    let families: [Family<'_>; 8] = [
        (
            "redkit_cache_shared_hits_total",
            "counter",
            "Lookups answered from the cache (Redis, negative and near-cache hits), all processes.",
            &|c| c.hits,
        ),
        (
            "redkit_cache_shared_misses_total",
            "counter",
            "Lookups that found nothing usable, all processes.",
            &|c| c.misses,
        ),
        (
            "redkit_cache_shared_builds_total",
            "counter",
            "Builder runs, all processes.",
            &|c| c.builds,
        ),
        (
            "redkit_cache_shared_build_errors_total",
            "counter",
            "Builder failures, all processes.",
            &|c| c.build_errors,
        ),
        (
            "redkit_cache_shared_stale_served_total",
            "counter",
            "Hits served while a refresh started (stale or drawn early), all processes.",
            &|c| c.stale_served,
        ),
        (
            "redkit_cache_shared_redis_errors_total",
            "counter",
            "Redis errors absorbed, all processes.",
            &|c| c.redis_errors,
        ),
        (
            "redkit_cache_shared_breaker_open",
            "gauge",
            "Live processes whose Redis circuit breaker is open.",
            &|c| c.breakers_open as u64,
        ),
        (
            "redkit_cache_shared_processes",
            "gauge",
            "Processes that flushed the cache's counters in the last 10 s.",
            &|c| c.live_processes as u64,
        ),
    ];
    for (name, kind, help, f) in families {
        family(out, name, kind, help, &series(f));
    }
    errors
}
