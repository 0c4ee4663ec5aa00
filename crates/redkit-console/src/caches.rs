//! Caches as the console sees them: every process's counters summed in Redis by cache-core's
//! shared stats (`<namespace>:__stats__`, flushed by each process at most once a second),
//! read with [`cache_core::SharedStats::load`].

use std::collections::BTreeMap;
use std::time::Duration;

use cache_core::{BreakerState, SharedStats};
use fred::interfaces::KeysInterface;
use futures::{StreamExt, TryStreamExt};
use redis_conn::registry::{self, Kind};
use serde::Serialize;

use crate::console::Console;
use crate::error::Error;
use crate::millis::ms;

/// A process counts as live when it flushed within this (it flushes every second while it
/// has something to say, and at least every few seconds otherwise).
pub(crate) const LIVE_WITHIN: Duration = Duration::from_secs(10);
/// Caches read at once by [`Console::caches`].
const CONCURRENCY: usize = 32;
/// Keys examined at most by the fallback scan for caches written before the registry.
const SCAN_BUDGET: usize = 200_000;

/// One cache: counters summed over every process that used it, and each live process.
/// A cache whose stats cannot be read comes back with `error` set and zeros.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
/// let v = c.cache("shop:product").await?;
/// println!("{} hits, {} misses, ratio {:?}, {} breaker(s) open", v.hits, v.misses, v.hit_ratio, v.breakers_open);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CacheView {
    /// The cache's namespace.
    pub namespace: String,
    /// The registering process's settings (TTL, codec, near cache, ...).
    pub settings: Vec<(String, String)>,
    /// Lookups answered from the cache: Redis hits, negative (null) hits and near-cache hits.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// `hits / (hits + misses)`, when there was a lookup.
    pub hit_ratio: Option<f64>,
    /// Builder runs.
    pub builds: u64,
    /// Builder failures.
    pub build_errors: u64,
    /// Hits served while a refresh started (the value was stale, or drawn for early refresh).
    pub stale_served: u64,
    /// Redis errors absorbed (the caller got a built value instead).
    pub redis_errors: u64,
    /// Every counter by name, summed over processes (cache-core's `CacheStats::fields`).
    pub counters: BTreeMap<String, u64>,
    /// Processes that flushed within the last 10 s.
    pub live_processes: usize,
    /// Live processes whose circuit breaker was open at their last flush.
    pub breakers_open: usize,
    /// Every process that flushed in the last hour, most recent first.
    pub processes: Vec<CacheProcess>,
    /// Why the stats could not be read, when they could not.
    pub error: Option<String>,
}

/// One process's last flush ([`CacheView::processes`]).
///
/// ```
/// let p = redkit_console::CacheProcess::default();
/// assert_eq!(p.hits, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CacheProcess {
    /// `<host>-<pid>-<random>`, one per cache instance.
    pub id: String,
    /// Its breaker at that flush: `closed`, `open`, `half-open` or `unknown`.
    pub breaker: String,
    /// When it flushed last (Unix ms, Redis's clock).
    pub last_seen_ms: u64,
    /// How long before the read that was (ms).
    pub age_ms: u64,
    /// Whether it counts as live (flushed within 10 s).
    pub live: bool,
    /// Its hits (Redis, negative and near cache).
    pub hits: u64,
    /// Its misses.
    pub misses: u64,
    /// Its builds.
    pub builds: u64,
}

fn served(s: &cache_core::CacheStats) -> u64 {
    s.hits + s.null_hits + s.l1_hits
}

fn view(namespace: &str, settings: Vec<(String, String)>, s: &SharedStats) -> CacheView {
    let t = &s.totals;
    let (hits, misses) = (served(t), t.misses);
    CacheView {
        namespace: namespace.to_string(),
        settings,
        hits,
        misses,
        hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        builds: t.builds,
        build_errors: t.build_errors,
        stale_served: t.refreshes,
        redis_errors: t.redis_errors,
        counters: t
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        live_processes: s.live_processes(LIVE_WITHIN),
        breakers_open: s.breakers_open(LIVE_WITHIN),
        processes: s
            .processes
            .iter()
            .map(|p| CacheProcess {
                id: p.id.clone(),
                breaker: p.breaker.map_or("unknown", BreakerState::name).to_string(),
                last_seen_ms: ms(p.last_seen),
                age_ms: u64::try_from(p.age.as_millis()).unwrap_or(u64::MAX),
                live: p.age <= LIVE_WITHIN,
                hits: served(&p.totals),
                misses: p.totals.misses,
                builds: p.totals.builds,
            })
            .collect(),
        error: None,
    }
}

impl From<cache_core::Error> for Error {
    fn from(e: cache_core::Error) -> Error {
        match e {
            cache_core::Error::Redis(r) => r.into(),
            cache_core::Error::Config(m) => Error::Usage(m),
            other => Error::Unreadable(other.to_string()),
        }
    }
}

impl Console {
    /// Every cache (registry; when it lists none, a bounded scan for shared-stats keys
    /// `*:__stats__`) with its counters, sorted by namespace. A cache whose stats cannot be
    /// read has `error` set; Redis being unreachable is an error of the whole call.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// for v in c.caches().await? { println!("{} {:?}", v.namespace, v.hit_ratio); }
    /// # Ok(()) }
    /// ```
    pub async fn caches(&self) -> Result<Vec<CacheView>, Error> {
        let known = self.cache_entries().await?;
        let mut out: Vec<CacheView> = futures::stream::iter(known)
            .map(|(ns, settings)| async move { self.cache_view(&ns, settings).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        Ok(out)
    }

    /// One cache; [`Error::NotFound`] when it is neither registered nor has shared stats.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let v = c.cache("shop:product").await?;
    /// # drop(v); Ok(()) }
    /// ```
    pub async fn cache(&self, namespace: &str) -> Result<CacheView, Error> {
        let ns = redis_conn::Namespace::new(namespace).map_err(|e| Error::Usage(e.to_string()))?;
        let (entries, _) = registry::registered(&self.redis, Some(Kind::Cache)).await?;
        let settings = match entries.into_iter().find(|e| e.prefix == ns.prefix()) {
            Some(e) => e.settings,
            None => {
                let key = ns.key("__stats__");
                let n: u64 = self.redis.for_key(&key).exists(key.as_str()).await?;
                if n == 0 {
                    return Err(Error::NotFound {
                        kind: "cache",
                        name: namespace.to_string(),
                    });
                }
                Vec::new()
            }
        };
        let v = self.cache_view(ns.prefix(), settings).await?;
        match &v.error {
            Some(e) => Err(Error::Unreadable(format!("cache {namespace}: {e}"))),
            None => Ok(v),
        }
    }

    /// Registered caches (namespace, settings), or the fallback scan's.
    async fn cache_entries(&self) -> Result<Vec<(String, Vec<(String, String)>)>, Error> {
        let (entries, _) = registry::registered(&self.redis, Some(Kind::Cache)).await?;
        let mut out: Vec<(String, Vec<(String, String)>)> = entries
            .into_iter()
            .map(|e| (e.prefix, e.settings))
            .collect();
        if out.is_empty() {
            let mut pages = std::pin::pin!(redis_conn::scan_keys(&self.redis, "*:__stats__", 1000));
            let mut seen = 0usize;
            while let Some(keys) = pages.try_next().await? {
                seen += keys.len().max(1);
                for k in &keys {
                    if let Some(ns) = k.as_str().and_then(|k| k.strip_suffix(":__stats__"))
                        && !ns.is_empty()
                        && !out.iter().any(|(n, _)| n == ns)
                    {
                        out.push((ns.to_string(), Vec::new()));
                    }
                }
                if seen >= SCAN_BUDGET {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// A cache's view; `Err` only when Redis itself failed.
    async fn cache_view(
        &self,
        namespace: &str,
        settings: Vec<(String, String)>,
    ) -> Result<CacheView, Error> {
        match SharedStats::load(&self.redis, namespace).await {
            Ok(s) => Ok(view(namespace, settings, &s)),
            Err(e) => {
                let e = Error::from(e);
                if e.is_redis() {
                    return Err(e);
                }
                Ok(CacheView {
                    namespace: namespace.to_string(),
                    settings,
                    error: Some(e.to_string()),
                    ..CacheView::default()
                })
            }
        }
    }
}
