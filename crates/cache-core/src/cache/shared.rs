//! Cross-process counters: each cache instance adds its [`CacheStats`] to one hash in Redis
//! (`<namespace>:__stats__`) from a background task, at most once per
//! [`CacheConfig::shared_stats`](super::CacheConfig::shared_stats) interval, and
//! [`SharedStats::load`] reads the sums of every process with its instances' heartbeats.
//!
//! | property | how |
//! |---|---|
//! | one round trip per flush | one script (`stats_flush.lua`): `HINCRBY` per counter that grew, `HSET proc:<id>`, `PEXPIRE` (7 days), and every 60th flush a prune of instances silent for 1 h |
//! | nothing lost on failure | a failed flush (Redis down, `NOPERM`, timeout) changes nothing locally; the next one sends the totals again |
//! | nothing counted twice | the script adds `total − what this instance already added` (kept in its `proc:` field), so a flush whose reply was lost and that is sent again, or that lands late, adds nothing twice |
//! | hot path untouched | the counters are the same atomics [`Cache::stats`](super::Cache::stats) reads; the task reads them, nothing else changes on a hit |
//! | ends with the cache | the task holds the counters, not the cache; when the last clone of the [`Cache`](super::Cache) is dropped it sends a last flush (bounded by 2 s) and ends |
//!
//! Not guaranteed: an instance whose `proc:` field was pruned (silent for over an hour) and
//! whose last flush before that went unanswered can count that flush's increments twice when it
//! comes back; a failover that loses the last writes rolls the sums back together with the
//! instances' fields, and their next flushes add the difference again (nothing lost).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fred::types::Value;
use redis_conn::{Namespace, RedisClient, Script};
use tokio::sync::{Mutex, oneshot};
use tracing::Instrument;

use super::stats::{CacheStats, Counters};
use crate::breaker::{Breaker, BreakerState};
use crate::error::Error;

static FLUSH: Script = Script::new("cache_stats_flush", include_str!("../stats_flush.lua"));
static READ: Script = Script::new("cache_stats_read", include_str!("../stats_read.lua"));

/// The name of the stats hash under a cache's namespace (reserved: a cache key named
/// `__stats__` would be this hash).
pub(super) const STATS_KEY: &str = "__stats__";
/// A flush is sent at least this often, so readers see the instance alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// The stats hash outlives its last flush by this long.
const HASH_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Instances silent for this long leave the hash (their counts stay in the sums).
const PRUNE_AGE: Duration = Duration::from_secs(3600);
/// Pruning runs on every this many successful flushes (about once a minute at 1 s).
const PRUNE_EVERY: u64 = 60;
/// The longest one flush may take (the client's own timeouts usually end it first).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// The last flush when the cache is dropped waits at most this long.
const LAST_FLUSH: Duration = Duration::from_secs(2);
/// Failed flushes are logged at `warn` at most this often (the rest at `debug`).
const WARN_EVERY: Duration = Duration::from_secs(60);
/// The shortest interval accepted.
pub(super) const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What one cache instance sends to its namespace's stats hash.
pub(super) struct Flusher {
    redis: RedisClient,
    key: String,
    /// `proc:<host>-<pid>-<random>`: one per cache instance.
    field: String,
    counters: Arc<Counters>,
    breaker: Arc<Breaker>,
    state: Mutex<FlushState>,
}

#[derive(Default)]
struct FlushState {
    /// The totals the last successful flush applied.
    acked: CacheStats,
    breaker: Option<BreakerState>,
    last_ok: Option<Instant>,
    flushes: u64,
    /// Failures since the last success.
    failures: u64,
    last_warned: Option<Instant>,
}

/// `<host>-<pid>-<random>`: unique per cache instance (two caches of one namespace in one
/// process are two instances).
fn instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().replace(['|', ',', '='], "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

impl Flusher {
    pub(super) fn new(
        redis: RedisClient,
        ns: &Namespace,
        counters: Arc<Counters>,
        breaker: Arc<Breaker>,
    ) -> Flusher {
        Flusher {
            redis,
            key: ns.key(STATS_KEY),
            field: format!("proc:{}", instance_id()),
            counters,
            breaker,
            state: Mutex::new(FlushState::default()),
        }
    }

    /// The instance's id (its field in the hash without `proc:`).
    pub(super) fn id(&self) -> &str {
        self.field.strip_prefix("proc:").unwrap_or(&self.field)
    }

    /// Sends the counters when they changed since the last successful flush, the breaker
    /// changed, a heartbeat is due, or `force`. `Ok(true)` when a flush was applied.
    pub(super) async fn flush(&self, force: bool) -> Result<bool, redis_conn::Error> {
        let mut st = self.state.lock().await;
        let now = self.counters.snapshot();
        let breaker = self.breaker.state();
        let heartbeat_due = st.last_ok.is_none_or(|t| t.elapsed() >= HEARTBEAT);
        if !force && now == st.acked && st.breaker == Some(breaker) && !heartbeat_due {
            return Ok(false);
        }
        let prune = st.flushes % PRUNE_EVERY == 0;
        let mut args = vec![
            self.field.clone(),
            breaker.name().to_string(),
            HASH_TTL.as_millis().to_string(),
            if prune {
                PRUNE_AGE.as_millis().to_string()
            } else {
                "0".into()
            },
        ];
        for ((name, acked), (_, total)) in st.acked.fields().into_iter().zip(now.fields()) {
            if total > 0 {
                args.extend([name.to_string(), acked.to_string(), total.to_string()]);
            }
        }
        let span = tracing::debug_span!("cache.shared_stats.flush", key = %self.key);
        let sent = tokio::time::timeout(
            FLUSH_TIMEOUT,
            FLUSH.run::<i64, _, _, _>(self.redis.for_key(&self.key), vec![self.key.as_str()], args),
        )
        .instrument(span)
        .await
        .unwrap_or_else(|_| {
            Err(redis_conn::Error::Timeout(format!(
                "shared stats flush to {} took over {FLUSH_TIMEOUT:?}",
                self.key
            )))
        });
        match sent {
            Ok(_) => {
                if st.failures > 0 {
                    tracing::info!(key = %self.key, failed = st.failures, "shared cache stats flushed again");
                }
                *st = FlushState {
                    acked: now,
                    breaker: Some(breaker),
                    last_ok: Some(Instant::now()),
                    flushes: st.flushes + 1,
                    failures: 0,
                    last_warned: st.last_warned,
                };
                Ok(true)
            }
            Err(e) => {
                st.failures += 1;
                if st.last_warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    st.last_warned = Some(Instant::now());
                    tracing::warn!(key = %self.key, failed = st.failures, error = %e, "shared cache stats not flushed (kept for the next flush)");
                } else {
                    tracing::debug!(key = %self.key, failed = st.failures, error = %e, "shared cache stats not flushed");
                }
                Err(e)
            }
        }
    }
}

/// Starts the flusher's task on the current Tokio runtime (none: nothing starts). The task
/// flushes every `every` and ends, after a last flush, when the returned sender is dropped.
pub(super) fn spawn(flusher: Arc<Flusher>, every: Duration) -> Option<oneshot::Sender<()>> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    handle.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                _ = tick.tick() => {
                    let _ = flusher.flush(false).await;
                }
            }
        }
        let _ = tokio::time::timeout(LAST_FLUSH, flusher.flush(false)).await;
    });
    Some(stop)
}

/// The counters of one namespace summed over every cache instance that flushed there, and the
/// instances' last reports ([`SharedStats::load`]).
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), cache_core::Error> {
/// let shared = cache_core::SharedStats::load(&redis, "shop:product").await?;
/// println!("{} hits in {} live processes", shared.totals.hits,
///     shared.live_processes(std::time::Duration::from_secs(10)));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SharedStats {
    /// The namespace read.
    pub namespace: String,
    /// Sums over every instance (including instances gone since).
    pub totals: CacheStats,
    /// Instances that flushed in the last hour (older ones are pruned), most recent first.
    pub processes: Vec<ProcessReport>,
    /// Redis's clock when the hash was read.
    pub server_time: SystemTime,
}

/// One cache instance's last flush.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), cache_core::Error> {
/// for p in cache_core::SharedStats::load(&redis, "shop:product").await?.processes {
///     println!("{} {:?} seen {:?} ago, {} hits", p.id, p.breaker, p.age, p.totals.hits);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProcessReport {
    /// `<host>-<pid>-<random>` (one per cache instance).
    pub id: String,
    /// Its circuit breaker then (`None`: a state this version does not know).
    pub breaker: Option<BreakerState>,
    /// When it flushed last (Redis's clock).
    pub last_seen: SystemTime,
    /// How long before the read that was.
    pub age: Duration,
    /// Its own counters as of that flush.
    pub totals: CacheStats,
}

impl SharedStats {
    /// Reads `namespace`'s stats hash and Redis's clock in one round trip (a script:
    /// `HGETALL` and `TIME`). A namespace no instance flushed to gives zeros and no processes.
    ///
    /// Errors: [`Error::Config`] for an invalid namespace, [`Error::Redis`] when Redis fails
    /// or the key is not a hash (`WRONGTYPE`).
    ///
    /// ```no_run
    /// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), cache_core::Error> {
    /// let s = cache_core::SharedStats::load(&redis, "shop:product").await?;
    /// assert!(s.totals.hits >= s.processes.iter().map(|p| p.totals.hits).max().unwrap_or(0));
    /// # Ok(()) }
    /// ```
    pub async fn load(redis: &RedisClient, namespace: &str) -> Result<SharedStats, Error> {
        let ns = Namespace::new(namespace).map_err(|e| Error::Config(e.to_string()))?;
        let key = ns.key(STATS_KEY);
        let span = tracing::debug_span!("cache.shared_stats.load", %key);
        let reply: Value = READ
            .run(
                redis.for_key(&key),
                vec![key.as_str()],
                Vec::<String>::new(),
            )
            .instrument(span)
            .await?;
        parse(namespace, &key, reply)
    }

    /// Instances that flushed within `within` of the read (the console uses 10 s).
    ///
    /// ```
    /// # fn demo(s: cache_core::SharedStats) {
    /// let live = s.live_processes(std::time::Duration::from_secs(10));
    /// # }
    /// ```
    pub fn live_processes(&self, within: Duration) -> usize {
        self.processes.iter().filter(|p| p.age <= within).count()
    }

    /// Instances that flushed within `within` and whose breaker was open then.
    ///
    /// ```
    /// # fn demo(s: cache_core::SharedStats) {
    /// let open = s.breakers_open(std::time::Duration::from_secs(10));
    /// # }
    /// ```
    pub fn breakers_open(&self, within: Duration) -> usize {
        self.processes
            .iter()
            .filter(|p| p.age <= within && p.breaker == Some(BreakerState::Open))
            .count()
    }
}

fn parse(namespace: &str, key: &str, reply: Value) -> Result<SharedStats, Error> {
    let bad = |what: &str| Error::Redis(redis_conn::Error::Parse(format!("{key}: {what}")));
    let Value::Array(items) = reply else {
        return Err(bad("the stats script did not answer an array"));
    };
    let mut items = items.into_iter();
    let now_ms = items
        .next()
        .and_then(|v| v.as_u64())
        .ok_or_else(|| bad("no server time"))?;
    let rest: Vec<Value> = items.collect();
    let mut totals = CacheStats::default();
    let mut processes = Vec::new();
    for pair in rest.chunks(2) {
        let (Some(field), Some(value)) = (
            pair.first().and_then(Value::as_string),
            pair.get(1).and_then(Value::as_string),
        ) else {
            continue;
        };
        if let Some(id) = field.strip_prefix("proc:") {
            if let Some(p) = process(id, &value, now_ms) {
                processes.push(p);
            }
        } else if let (Some(slot), Ok(n)) = (totals.field_mut(&field), value.parse::<u64>()) {
            *slot = n;
        }
    }
    processes.sort_by(|a, b| a.age.cmp(&b.age).then_with(|| a.id.cmp(&b.id)));
    Ok(SharedStats {
        namespace: namespace.to_string(),
        totals,
        processes,
        server_time: UNIX_EPOCH + Duration::from_millis(now_ms),
    })
}

/// `<breaker>|<server ms>|<counter>=<total>,...`; `None` when it does not parse.
fn process(id: &str, value: &str, now_ms: u64) -> Option<ProcessReport> {
    let mut parts = value.splitn(3, '|');
    let breaker = BreakerState::from_name(parts.next()?);
    let seen_ms: u64 = parts.next()?.parse().ok()?;
    let mut totals = CacheStats::default();
    for kv in parts.next().unwrap_or("").split(',') {
        if let Some((name, n)) = kv.split_once('=')
            && let (Some(slot), Ok(n)) = (totals.field_mut(name), n.parse::<u64>())
        {
            *slot = n;
        }
    }
    Some(ProcessReport {
        id: id.to_string(),
        breaker,
        last_seen: UNIX_EPOCH + Duration::from_millis(seen_ms),
        age: Duration::from_millis(now_ms.saturating_sub(seen_ms)),
        totals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stats_hash_parses_into_sums_and_reports() {
        let s = |v: &str| Value::String(v.into());
        let reply = Value::Array(vec![
            Value::Integer(10_000),
            s("hits"),
            s("7"),
            s("proc:h-1-a"),
            s("open|9000|hits=4,misses=1"),
            s("proc:h-2-b"),
            s("closed|4000|hits=3"),
            s("proc:bad"),
            s("garbage"),
            s("future_counter"),
            s("5"),
        ]);
        let st = parse("ns", "ns:__stats__", reply).expect("parses");
        assert_eq!(st.totals.hits, 7);
        assert_eq!(st.processes.len(), 2);
        assert_eq!(st.processes[0].id, "h-1-a");
        assert_eq!(st.processes[0].breaker, Some(BreakerState::Open));
        assert_eq!(st.processes[0].age, Duration::from_secs(1));
        assert_eq!(st.processes[0].totals.misses, 1);
        assert_eq!(st.live_processes(Duration::from_secs(5)), 1);
        assert_eq!(st.breakers_open(Duration::from_secs(10)), 1);
        assert!(parse("ns", "k", Value::Null).is_err());
    }
}
