//! The queue client, its enqueue builder and deliveries.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::clients::Client;
use fred::interfaces::ListInterface;
use fred::types::Value;
use redis_conn::{RedisClient, Script};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::Error;

static ENQUEUE: Script = Script::new("rqueue_enqueue", include_str!("lua/enqueue.lua"));
static CLAIM: Script = Script::new("rqueue_claim", include_str!("lua/claim.lua"));
static ACK: Script = Script::new("rqueue_ack", include_str!("lua/ack.lua"));
static NACK: Script = Script::new("rqueue_nack", include_str!("lua/nack.lua"));
static EXTEND: Script = Script::new("rqueue_extend", include_str!("lua/extend.lua"));
static RECLAIM: Script = Script::new("rqueue_reclaim", include_str!("lua/reclaim.lua"));
static STATS: Script = Script::new("rqueue_stats", include_str!("lua/stats.lua"));
static DEAD_PAGE: Script = Script::new("rqueue_dead_page", include_str!("lua/dead_page.lua"));
static REPLAY: Script = Script::new("rqueue_replay", include_str!("lua/replay.lua"));
static PURGE: Script = Script::new("rqueue_purge", include_str!("lua/purge.lua"));

/// One entry of [`Queue::page`]: id, time (the set's score), reason, message.
type PageEntry<T> = (String, std::time::SystemTime, String, Result<T, String>);

/// Dead messages handled per script call by [`Queue::replay_all`] and [`Queue::purge_dead`]:
/// each call is atomic and bounded.
const DEAD_BATCH: usize = 1000;

/// Longest dedup TTL (100 years): Redis refuses expiries near the end of its clock, and a
/// refused `SET` in the middle of the enqueue script would leave a partial batch.
const MAX_DEDUP_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// Messages per enqueue script call (the script's limit).
const ENQUEUE_BATCH: usize = 1000;

/// A message in the dead set.
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
/// for d in q.dead_letters(0, 50).await? {
///     println!("{} died: {} ({:?})", d.id, d.reason, d.message);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeadLetter<T> {
    /// The message id.
    pub id: String,
    /// When it died (server clock).
    pub died_at: std::time::SystemTime,
    /// Why: the last error, `stalled`, `decode: …`, or the reason given to `dead()`.
    pub reason: String,
    /// The message, or why its payload does not decode.
    pub message: Result<T, String>,
}

/// An acknowledged message kept by [`QueueConfig::keep_completed`].
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
/// if let Some(last) = q.completed(0, 1).await?.pop() {
///     println!("last done: {} ({:?})", last.id, last.message);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Completed<T> {
    /// The message id.
    pub id: String,
    /// When it was acknowledged (server clock).
    pub completed_at: std::time::SystemTime,
    /// The message, or why its payload does not decode.
    pub message: Result<T, String>,
}

/// Exponential backoff between retries: `base · 2^(failures − 1)`, capped at `max`, with
/// "equal jitter" (a random point in the upper half) so retries of many messages spread out.
///
/// ```
/// let b = rqueue::Backoff::default();
/// let d = b.delay(3);
/// assert!(d >= b.base * 2 && d <= b.base * 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// Delay after the first failure (before jitter). Default 1 s.
    pub base: Duration,
    /// Longest delay. Default 5 min.
    pub max: Duration,
    /// Spread delays over the upper half of each step. Default true.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: true,
        }
    }
}

impl Backoff {
    /// As stored after a message's meta: `|base_ms:max_ms:jitter`.
    fn encode(&self) -> String {
        format!(
            "|{}:{}:{}",
            ms(self.base),
            ms(self.max),
            u8::from(self.jitter)
        )
    }

    /// The inverse of [`Backoff::encode`]; `None` for the empty suffix (the queue's backoff)
    /// or anything malformed.
    fn decode(s: &str) -> Option<Backoff> {
        let mut parts = s.strip_prefix('|')?.split(':');
        let base = parts.next()?.parse().ok()?;
        let max = parts.next()?.parse().ok()?;
        let jitter = parts.next()? == "1";
        Some(Backoff {
            base: Duration::from_millis(base),
            max: Duration::from_millis(max),
            jitter,
        })
    }

    /// The delay before the retry that follows `failures` failures (≥ 1).
    ///
    /// ```
    /// let mut b = rqueue::Backoff::default();
    /// b.jitter = false;
    /// assert_eq!(b.delay(1), b.base);
    /// assert_eq!(b.delay(60), b.max);
    /// ```
    pub fn delay(&self, failures: u32) -> Duration {
        let step = failures.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << step).min(self.max);
        if self.jitter {
            full / 2 + full.mul_f64(fastrand::f64() / 2.0)
        } else {
            full
        }
    }
}

/// Settings of one queue.
///
/// ```
/// let mut cfg = rqueue::QueueConfig::new("emails");
/// cfg.max_attempts = 10;
/// assert_eq!(cfg.lease.as_secs(), 30);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Key prefix: the queue's keys are `<namespace>:{<name>}:*`. Default `rq`.
    pub namespace: String,
    /// The queue's name (its hash tag): no braces.
    pub name: String,
    /// How long a delivery is leased to its worker before it can be reclaimed. Default 30 s.
    pub lease: Duration,
    /// Failures (nacks) after which a message goes to the dead set. Default 5.
    pub max_attempts: u32,
    /// Delay between retries.
    pub backoff: Backoff,
    /// Reclaims (expired leases) after which a message goes to the dead set. Default 3.
    pub max_stalls: u32,
    /// Most due delayed messages moved to ready by one claim (bounded work per call).
    /// Default 1000.
    pub promote_limit: u32,
    /// Most messages kept in the dead set. `None` (the default): no cap — the dead set only
    /// shrinks by [`Queue::replay`] / [`Queue::purge_dead`], so watch
    /// [`QueueStats::dead`]. With a cap, a message dying into a full dead set deletes the
    /// oldest dead ones, each counted in [`QueueStats::dead_trimmed`] (never silently).
    pub dead_cap: Option<u64>,
    /// Acknowledged messages kept (newest first, with their payloads) for inspection with
    /// [`Queue::completed`]; older ones are deleted as new ones complete. Default 0: a
    /// message is deleted when it is acknowledged.
    pub keep_completed: u64,
}

impl QueueConfig {
    /// Defaults for the queue `name`.
    ///
    /// ```
    /// assert_eq!(rqueue::QueueConfig::new("q").max_stalls, 3);
    /// ```
    pub fn new(name: impl Into<String>) -> QueueConfig {
        QueueConfig {
            namespace: "rq".into(),
            name: name.into(),
            lease: Duration::from_secs(30),
            max_attempts: 5,
            backoff: Backoff::default(),
            max_stalls: 3,
            promote_limit: 1000,
            dead_cap: None,
            keep_completed: 0,
        }
    }
}

struct Keys {
    jobs: String,
    meta: String,
    ready: String,
    delayed: String,
    seq: String,
    stats: String,
    inflight: String,
    lease: String,
    dead: String,
    reasons: String,
    completed: String,
    signal: String,
    base: String,
}

struct Inner {
    redis: RedisClient,
    cfg: QueueConfig,
    keys: Keys,
    /// Prefix of this client's delivery tokens.
    claimer: String,
    /// The connection blocking waits use (`BLPOP` on the wake-up signal), made on first use;
    /// one waiter at a time blocks on it.
    blocking: tokio::sync::Mutex<Option<Client>>,
    metrics: Metrics,
}

/// Counters and histograms through the `metrics` facade, labelled with the queue's name.
/// They count what THIS process did (the queue-wide counters are in [`QueueStats`]).
pub(crate) struct Metrics {
    pub(crate) enqueued: metrics::Counter,
    pub(crate) claimed: metrics::Counter,
    pub(crate) acked: metrics::Counter,
    pub(crate) retried: metrics::Counter,
    pub(crate) dead: metrics::Counter,
    pub(crate) released: metrics::Counter,
    pub(crate) lease_lost: metrics::Counter,
    pub(crate) reclaimed: metrics::Counter,
    pub(crate) job_seconds: metrics::Histogram,
}

impl Metrics {
    fn new(queue: &str) -> Metrics {
        let q = queue.to_string();
        Metrics {
            enqueued: metrics::counter!("redkit_rqueue_enqueued_total", "queue" => q.clone()),
            claimed: metrics::counter!("redkit_rqueue_claimed_total", "queue" => q.clone()),
            acked: metrics::counter!("redkit_rqueue_acked_total", "queue" => q.clone()),
            retried: metrics::counter!("redkit_rqueue_retried_total", "queue" => q.clone()),
            dead: metrics::counter!("redkit_rqueue_dead_total", "queue" => q.clone()),
            released: metrics::counter!("redkit_rqueue_released_total", "queue" => q.clone()),
            lease_lost: metrics::counter!("redkit_rqueue_lease_lost_total", "queue" => q.clone()),
            reclaimed: metrics::counter!("redkit_rqueue_reclaimed_total", "queue" => q.clone()),
            job_seconds: metrics::histogram!("redkit_rqueue_job_seconds", "queue" => q),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let (Some(client), Ok(rt)) = (
            self.blocking.get_mut().take(),
            tokio::runtime::Handle::try_current(),
        ) {
            rt.spawn(async move {
                let _ = fred::interfaces::ClientLike::quit(&client).await;
            });
        }
    }
}

/// Longest single block on the wake-up signal: waits re-check at least this often (a lost or
/// late signal, a failover).
const MAX_BLOCK: Duration = Duration::from_secs(2);

/// A typed queue. Cheap to clone. Messages are encoded with MessagePack (`rmp-serde`).
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), rqueue::Error> {
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Email { to: String }
/// let q: rqueue::Queue<Email> = rqueue::Queue::new(redis, rqueue::QueueConfig::new("emails"))?;
/// q.enqueue(&Email { to: "a@example.com".into() }).await?;
/// # Ok(()) }
/// ```
pub struct Queue<T> {
    inner: Arc<Inner>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Queue<T> {
        Queue {
            inner: self.inner.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.cfg.name)
            .finish_non_exhaustive()
    }
}

/// Depths and counters of a queue (one Redis round trip, O(1)).
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
/// let s = q.stats().await?;
/// println!("{} ready, {} in flight, {} dead", s.ready, s.in_flight, s.dead);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Messages ready now.
    pub ready: u64,
    /// Messages waiting for their due time (delays and retry backoff).
    pub delayed: u64,
    /// Messages leased to workers.
    pub in_flight: u64,
    /// Messages in the dead set.
    pub dead: u64,
    /// The id of the message served next (empty when none is ready).
    pub head: String,
    /// How long ago the message served next was first enqueued (server clock); with one
    /// priority, the age of the oldest ready message. `None` when none is ready.
    pub head_age: Option<Duration>,
    /// Messages enqueued so far (duplicates not counted).
    pub enqueued: u64,
    /// Deliveries made.
    pub claimed: u64,
    /// Deliveries acknowledged.
    pub acked: u64,
    /// Failures given back for a retry.
    pub retried: u64,
    /// Messages moved to the dead set (failures, stalls, undecodable payloads).
    pub died: u64,
    /// Expired leases taken back.
    pub reclaimed: u64,
    /// Dead messages replayed.
    pub replayed: u64,
    /// Dead messages purged.
    pub purged: u64,
    /// Deliveries put back unfinished at a worker's shutdown (not failures).
    pub released: u64,
    /// Dead messages deleted because the dead set was at its cap ([`QueueConfig::dead_cap`]).
    pub dead_trimmed: u64,
}

/// A message being enqueued: options, then [`Enqueue::send`].
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
/// use std::time::Duration;
/// let id = q
///     .message(&"reminder".to_string())
///     .priority(5)
///     .delay(Duration::from_secs(60))
///     .dedup("reminder:user:7", Duration::from_secs(3600))
///     .send()
///     .await?;
/// # let _ = id; Ok(()) }
/// ```
#[must_use = "a message is only enqueued by send()"]
pub struct Enqueue<'a, T> {
    queue: &'a Queue<T>,
    message: &'a T,
    priority: i32,
    delay: Duration,
    run_at: Option<std::time::SystemTime>,
    backoff: Option<Backoff>,
    max_attempts: Option<u32>,
    dedup: Option<(String, Duration)>,
}

impl<T> std::fmt::Debug for Enqueue<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enqueue")
            .field("priority", &self.priority)
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

/// One delivery of a message to this worker, leased until it is acknowledged, given back or
/// its lease runs out. Dropping it without [`Delivery::ack`] leaves the message in flight until
/// its lease ends; then [`Queue::reclaim`] delivers it again.
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
/// for d in q.claim(1).await? {
///     match d.message().len() {
///         0 => d.dead("empty message").await?,
///         _ => d.ack().await?,
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a delivery stays in flight until acked, given back or its lease runs out"]
pub struct Delivery<T> {
    queue: Queue<T>,
    id: String,
    token: String,
    delivery: u32,
    /// Failures before this delivery (stalls not counted): the backoff step.
    failures: u32,
    /// The message's own backoff, when it was enqueued with one.
    backoff: Option<Backoff>,
    message: T,
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains(['{', '}']) {
        return Err(Error::Config(format!(
            "queue name {name:?} must be non-empty and free of braces"
        )));
    }
    Ok(())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// When a message is due, as the enqueue script reads it: a delay in ms, or `@<unix ms>`.
fn due_arg<T>(item: &Enqueue<'_, T>) -> Value {
    match item.run_at {
        Some(at) => {
            let ms = at.duration_since(std::time::UNIX_EPOCH).map_or(0, ms_arg);
            Value::from(format!("@{ms}"))
        }
        None => Value::from(ms_arg(item.delay)),
    }
}

/// A message's own backoff as the enqueue script reads it ('' for the queue's).
fn backoff_arg<T>(item: &Enqueue<'_, T>) -> Value {
    Value::from(item.backoff.map(|b| b.encode()).unwrap_or_default())
}

/// Milliseconds as a Redis integer argument.
fn ms_arg(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
    /// A queue over `redis`.
    ///
    /// ```no_run
    /// # fn demo(redis: redis_conn::RedisClient) -> Result<(), rqueue::Error> {
    /// let q: rqueue::Queue<u64> = rqueue::Queue::new(redis, rqueue::QueueConfig::new("ids"))?;
    /// # Ok(()) }
    /// ```
    pub fn new(redis: RedisClient, cfg: QueueConfig) -> Result<Queue<T>, Error> {
        check_name(&cfg.name)?;
        if cfg.namespace.contains(['{', '}']) {
            return Err(Error::Config("namespace must be free of braces".into()));
        }
        if cfg.lease < Duration::from_millis(10) || cfg.max_attempts == 0 || cfg.max_stalls == 0 {
            return Err(Error::Config(
                "lease must be at least 10 ms; max_attempts and max_stalls at least 1".into(),
            ));
        }
        let base = format!("{}:{{{}}}", cfg.namespace, cfg.name);
        let k = |s: &str| format!("{base}:{s}");
        let keys = Keys {
            jobs: k("jobs"),
            meta: k("meta"),
            ready: k("ready"),
            delayed: k("delayed"),
            seq: k("seq"),
            stats: k("stats"),
            inflight: k("inflight"),
            lease: k("lease"),
            dead: k("dead"),
            reasons: k("reasons"),
            completed: k("completed"),
            signal: k("signal"),
            base,
        };
        let metrics = Metrics::new(&cfg.name);
        Ok(Queue {
            inner: Arc::new(Inner {
                redis,
                cfg,
                keys,
                claimer: format!("{:016x}", fastrand::u64(..)),
                blocking: tokio::sync::Mutex::new(None),
                metrics,
            }),
            _t: PhantomData,
        })
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn redis(&self) -> &RedisClient {
        &self.inner.redis
    }

    /// The queue's key prefix (`<namespace>:{<name>}`), which carries its hash tag.
    pub(crate) fn base_key(&self) -> &str {
        &self.inner.keys.base
    }

    /// The queue's settings.
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<u64>) {
    /// assert_eq!(q.config().name, "ids");
    /// # }
    /// ```
    pub fn config(&self) -> &QueueConfig {
        &self.inner.cfg
    }

    /// Enqueues `message` with default options; returns its id.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let id = q.enqueue(&7).await?;
    /// # let _ = id; Ok(()) }
    /// ```
    pub async fn enqueue(&self, message: &T) -> Result<String, Error> {
        self.message(message).send().await
    }

    /// A message to enqueue with options (priority, delay, attempts, dedup key).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// q.message(&7).priority(9).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn message<'a>(&'a self, message: &'a T) -> Enqueue<'a, T> {
        Enqueue {
            queue: self,
            message,
            priority: 0,
            delay: Duration::ZERO,
            run_at: None,
            backoff: None,
            max_attempts: None,
            dedup: None,
        }
    }

    /// Enqueues many messages (default options); their ids, in order. One script call per
    /// 1,000 messages, each call atomic (all of its messages or none).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let ids = q.enqueue_batch(&[1, 2, 3]).await?;
    /// assert_eq!(ids.len(), 3);
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_batch(&self, messages: &[T]) -> Result<Vec<String>, Error> {
        let mut items = Vec::with_capacity(messages.len());
        for m in messages {
            items.push(self.message(m));
        }
        let ids = self.send(&items).await?;
        Ok(ids.into_iter().map(|(id, _)| id).collect())
    }

    /// Enqueues messages built with [`Queue::message`], each with its own options; their ids,
    /// in order (for a dedup key with a live message, that message's id). One script call per
    /// 1,000 messages, each call atomic.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// use std::time::Duration;
    /// let ids = q
    ///     .send_batch(&[
    ///         q.message(&1).priority(5),
    ///         q.message(&2).delay(Duration::from_secs(60)),
    ///     ])
    ///     .await?;
    /// assert_eq!(ids.len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn send_batch(&self, items: &[Enqueue<'_, T>]) -> Result<Vec<String>, Error> {
        if items
            .iter()
            .any(|i| !Arc::ptr_eq(&i.queue.inner, &self.inner))
        {
            return Err(Error::Config(
                "send_batch: every message must be built by this queue's message()".into(),
            ));
        }
        let ids = self.send(items).await?;
        Ok(ids.into_iter().map(|(id, _)| id).collect())
    }

    async fn send(&self, items: &[Enqueue<'_, T>]) -> Result<Vec<(String, bool)>, Error> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(ENQUEUE_BATCH) {
            let ids = self.send_chunk(chunk).await?;
            let added = ids.iter().filter(|(_, existing)| !existing).count();
            self.inner.metrics.enqueued.increment(added as u64);
            out.extend(ids);
        }
        Ok(out)
    }

    async fn send_chunk(&self, items: &[Enqueue<'_, T>]) -> Result<Vec<(String, bool)>, Error> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.inner.keys;
        let mut keys = vec![
            k.jobs.clone(),
            k.meta.clone(),
            k.ready.clone(),
            k.delayed.clone(),
            k.seq.clone(),
            k.stats.clone(),
            k.signal.clone(),
        ];
        let max_attempts = |item: &Enqueue<'_, T>| {
            item.max_attempts
                .unwrap_or(self.inner.cfg.max_attempts)
                .max(1)
        };
        let encode = |item: &Enqueue<'_, T>| {
            rmp_serde::to_vec(item.message).map_err(|e| Error::Encode(e.to_string()))
        };
        let first = &items[0];
        let uniform = items.iter().all(|i| {
            i.dedup.is_none()
                && i.priority == first.priority
                && i.delay == first.delay
                && i.run_at == first.run_at
                && i.backoff == first.backoff
                && max_attempts(i) == max_attempts(first)
        });
        let mut args: Vec<Value>;
        if uniform {
            // The options once, then the payloads: far fewer arguments to build and parse.
            args = Vec::with_capacity(6 + items.len());
            args.push(Value::from(items.len() as i64));
            args.push(Value::from("u"));
            args.push(Value::from(i64::from(first.priority)));
            args.push(due_arg(first));
            args.push(Value::from(i64::from(max_attempts(first))));
            args.push(backoff_arg(first));
            for item in items {
                args.push(Value::Bytes(encode(item)?.into()));
            }
        } else {
            args = Vec::with_capacity(2 + items.len() * 7);
            args.push(Value::from(items.len() as i64));
            args.push(Value::from("m"));
            for item in items {
                let dedup = match &item.dedup {
                    Some((key, ttl)) => {
                        keys.push(format!("{}:dedup:{key}", k.base));
                        (keys.len() as i64, ms(*ttl).clamp(1, MAX_DEDUP_TTL_MS))
                    }
                    None => (0, 0),
                };
                args.push(Value::Bytes(encode(item)?.into()));
                args.push(Value::from(i64::from(item.priority)));
                args.push(due_arg(item));
                args.push(Value::from(i64::from(max_attempts(item))));
                args.push(Value::from(dedup.0));
                args.push(Value::from(i64::try_from(dedup.1).unwrap_or(i64::MAX)));
                args.push(backoff_arg(item));
            }
        }
        let reply: Vec<Value> = ENQUEUE
            .run(self.inner.redis.pool(), keys, args)
            .instrument(tracing::debug_span!("rqueue.enqueue", queue = %self.inner.cfg.name, n = items.len()))
            .await?;
        let mut out = Vec::with_capacity(items.len());
        if uniform {
            // Only the first id comes back; the rest follow it as the script made them.
            let first = reply.first().and_then(Value::as_string);
            let parsed = first.as_deref().and_then(|id| {
                let (ms, seq) = id.split_once('-')?;
                Some((ms.parse::<u64>().ok()?, seq.parse::<u32>().ok()?))
            });
            let Some((mut ms, mut seq)) = parsed else {
                return Err(Error::Protocol(format!("enqueue reply {reply:?}")));
            };
            for i in 0..items.len() {
                if i > 0 {
                    seq += 1;
                    if seq > 999_999 {
                        ms += 1;
                        seq = 0;
                    }
                }
                out.push((format!("{ms:013}-{seq:06}"), false));
            }
            return Ok(out);
        }
        for pair in reply.chunks(2) {
            match pair {
                [id, dup] => out.push((
                    id.as_string()
                        .ok_or_else(|| Error::Protocol(format!("enqueue: id {id:?}")))?,
                    dup.as_i64() == Some(1),
                )),
                other => return Err(Error::Protocol(format!("enqueue reply {other:?}"))),
            }
        }
        if out.len() != items.len() {
            return Err(Error::Protocol(format!(
                "enqueue: {} ids for {} messages",
                out.len(),
                items.len()
            )));
        }
        Ok(out)
    }

    /// Claims up to `n` ready messages (moving due delayed ones to ready first, a bounded number
    /// per call), highest priority first and FIFO within a priority; each comes leased for the
    /// queue's lease. A payload that does not decode as `T` is moved to the dead set with
    /// reason `decode: …` and not returned. Does not wait: an empty vector when none is ready.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(32).await? {
    ///     d.ack().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn claim(&self, n: usize) -> Result<Vec<Delivery<T>>, Error> {
        Ok(self.claim_some(n).await?.0)
    }

    /// Like [`Queue::claim`], but waits up to `timeout` for messages: without polling — a
    /// blocking pop on the queue's wake-up signal (pushed by enqueues, retries and reclaims,
    /// and passed on by claims while messages stay ready), bounded by the next delayed
    /// message's due time. An empty vector when none came in time.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let batch = q.claim_wait(16, std::time::Duration::from_secs(5)).await?;
    /// # drop(batch); Ok(()) }
    /// ```
    pub async fn claim_wait(&self, n: usize, timeout: Duration) -> Result<Vec<Delivery<T>>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let (got, next_due) = self.claim_some(n).await?;
            let now = Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let mut wait = (deadline - now).min(MAX_BLOCK);
            if let Some(due) = next_due {
                wait = wait.min(due.max(Duration::from_millis(1)));
            }
            self.wait_signal(wait).await?;
        }
    }

    /// Blocks until the wake-up signal or `wait` (a hint only: callers re-check).
    pub(crate) async fn wait_signal(&self, wait: Duration) -> Result<(), Error> {
        let mut blocking = self.inner.blocking.lock().await;
        let client = match blocking.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = self
                    .inner
                    .redis
                    .dedicated(redis_conn::Dedicated::Blocking)
                    .await?;
                *blocking = Some(c.clone());
                c
            }
        };
        let secs = wait.as_secs_f64().max(0.001);
        let pop = client.blpop::<Option<Vec<Value>>, _>(self.inner.keys.signal.as_str(), secs);
        match tokio::time::timeout(wait + Duration::from_secs(1), pop).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(queue = %self.inner.cfg.name, error = %e, "wake-up wait failed; re-checking");
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// One claim: the deliveries and how long until the next delayed message is due.
    pub(crate) async fn claim_some(
        &self,
        n: usize,
    ) -> Result<(Vec<Delivery<T>>, Option<Duration>), Error> {
        let k = &self.inner.keys;
        let reply: Vec<Value> = CLAIM
            .run(
                self.inner.redis.pool(),
                vec![
                    k.jobs.as_str(),
                    k.meta.as_str(),
                    k.ready.as_str(),
                    k.delayed.as_str(),
                    k.inflight.as_str(),
                    k.lease.as_str(),
                    k.stats.as_str(),
                    k.signal.as_str(),
                ],
                vec![
                    Value::from(n.max(1) as i64),
                    Value::from(ms_arg(self.inner.cfg.lease)),
                    Value::from(i64::from(self.inner.cfg.promote_limit.max(1))),
                    Value::from(self.inner.claimer.as_str()),
                ],
            )
            .instrument(tracing::debug_span!("rqueue.claim", queue = %self.inner.cfg.name, n))
            .await?;
        let mut out = Vec::new();
        // Deliveries already leased are never thrown away for one bad entry: a malformed
        // entry (or a failed move of an undecodable one) is logged and skipped, and its
        // lease runs out.
        for d in reply.get(1..).unwrap_or_default().chunks(6) {
            let parsed = match d {
                [id, token, delivery, failures, payload, backoff] => {
                    match (id.as_string(), token.as_string(), delivery.as_u64()) {
                        (Some(id), Some(token), Some(delivery)) => {
                            Some((id, token, delivery, failures, payload, backoff))
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some((id, token, delivery, failures, payload, backoff)) = parsed else {
                tracing::warn!(queue = %self.inner.cfg.name, entry = ?d, "unexpected claim reply entry skipped");
                continue;
            };
            let bytes = payload.as_bytes().unwrap_or_default();
            match rmp_serde::from_slice::<T>(bytes) {
                Ok(message) => out.push(Delivery {
                    queue: self.clone(),
                    id,
                    token,
                    delivery: u32::try_from(delivery).unwrap_or(u32::MAX),
                    failures: failures
                        .as_u64()
                        .and_then(|f| u32::try_from(f).ok())
                        .unwrap_or(0),
                    backoff: backoff.as_str().as_deref().and_then(Backoff::decode),
                    message,
                }),
                Err(e) => {
                    tracing::warn!(queue = %self.inner.cfg.name, id, error = %e, "undecodable message moved to the dead set");
                    let reason = format!("decode: {e}");
                    if let Err(e) = self
                        .give_back(&id, &token, Duration::ZERO, &reason, true)
                        .await
                    {
                        tracing::warn!(queue = %self.inner.cfg.name, id, error = %e, "could not move an undecodable message; it returns when its lease ends");
                    }
                }
            }
        }
        let next_due = reply
            .first()
            .and_then(Value::as_i64)
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis);
        self.inner.metrics.claimed.increment(out.len() as u64);
        Ok((out, next_due))
    }

    /// Takes back up to `limit` deliveries whose lease ran out: each counts a stall and goes
    /// back to ready (keeping its place by id), or to the dead set with reason `stalled` after
    /// `max_stalls`. Exact (a range query on lease deadlines) and safe to run from any number
    /// of workers. Returns (back to ready, moved to dead).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let (back, dead) = q.reclaim(1000).await?;
    /// # let _ = (back, dead); Ok(()) }
    /// ```
    pub async fn reclaim(&self, limit: usize) -> Result<(u64, u64), Error> {
        let k = &self.inner.keys;
        let reply: Vec<u64> = RECLAIM
            .run(
                self.inner.redis.pool(),
                vec![
                    k.meta.as_str(),
                    k.ready.as_str(),
                    k.inflight.as_str(),
                    k.lease.as_str(),
                    k.dead.as_str(),
                    k.reasons.as_str(),
                    k.stats.as_str(),
                    k.signal.as_str(),
                    k.jobs.as_str(),
                ],
                vec![
                    limit.max(1) as i64,
                    i64::from(self.inner.cfg.max_stalls),
                    self.dead_cap_arg(),
                ],
            )
            .instrument(tracing::debug_span!("rqueue.reclaim", queue = %self.inner.cfg.name))
            .await?;
        match reply.as_slice() {
            [back, dead] => {
                self.inner.metrics.reclaimed.increment(back + dead);
                self.inner.metrics.dead.increment(*dead);
                Ok((*back, *dead))
            }
            other => Err(Error::Protocol(format!("reclaim reply {other:?}"))),
        }
    }

    /// Depths and counters.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// assert_eq!(q.stats().await?.in_flight, 0);
    /// # Ok(()) }
    /// ```
    pub async fn stats(&self) -> Result<QueueStats, Error> {
        let k = &self.inner.keys;
        let reply: Vec<Value> = STATS
            .run(
                self.inner.redis.pool(),
                vec![
                    k.ready.as_str(),
                    k.delayed.as_str(),
                    k.inflight.as_str(),
                    k.dead.as_str(),
                    k.stats.as_str(),
                ],
                Vec::<Value>::new(),
            )
            .await?;
        let n = |i: usize| reply.get(i).and_then(Value::as_u64).unwrap_or(0);
        let mut s = QueueStats {
            ready: n(0),
            delayed: n(1),
            in_flight: n(2),
            dead: n(3),
            head: reply.get(4).and_then(Value::as_string).unwrap_or_default(),
            ..QueueStats::default()
        };
        // The head's id starts with its enqueue time (server ms).
        let now_ms = reply.get(5).and_then(Value::as_u64);
        let head_ms = s
            .head
            .split('-')
            .next()
            .and_then(|ms| ms.parse::<u64>().ok());
        if let (Some(now), Some(then)) = (now_ms, head_ms) {
            s.head_age = Some(Duration::from_millis(now.saturating_sub(then)));
        }
        for pair in reply.get(6..).unwrap_or_default().chunks(2) {
            if let [name, value] = pair {
                let v = value.as_u64().unwrap_or(0);
                match name.as_string().as_deref() {
                    Some("enqueued") => s.enqueued = v,
                    Some("claimed") => s.claimed = v,
                    Some("acked") => s.acked = v,
                    Some("retried") => s.retried = v,
                    Some("dead") => s.died = v,
                    Some("reclaimed") => s.reclaimed = v,
                    Some("replayed") => s.replayed = v,
                    Some("purged") => s.purged = v,
                    Some("released") => s.released = v,
                    Some("dead_trimmed") => s.dead_trimmed = v,
                    _ => {}
                }
            }
        }
        Ok(s)
    }

    /// A page of the dead set, oldest first.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let first_page = q.dead_letters(0, 100).await?;
    /// # drop(first_page); Ok(()) }
    /// ```
    pub async fn dead_letters(
        &self,
        offset: usize,
        count: usize,
    ) -> Result<Vec<DeadLetter<T>>, Error> {
        let page = self
            .page(&self.inner.keys.dead, offset, count, "fwd")
            .await?;
        Ok(page
            .into_iter()
            .map(|(id, died_at, reason, message)| DeadLetter {
                id,
                died_at,
                reason,
                message,
            })
            .collect())
    }

    /// A page of a sorted set of stored messages (the dead or the completed set), with the
    /// score as a time, the recorded reason and the decoded message.
    async fn page(
        &self,
        set: &str,
        offset: usize,
        count: usize,
        order: &str,
    ) -> Result<Vec<PageEntry<T>>, Error> {
        let k = &self.inner.keys;
        let reply: Vec<Value> = DEAD_PAGE
            .run(
                self.inner.redis.pool(),
                vec![set, k.jobs.as_str(), k.reasons.as_str()],
                vec![
                    Value::from(offset as i64),
                    Value::from(count.max(1) as i64),
                    Value::from(order),
                ],
            )
            .await?;
        let mut out = Vec::new();
        for d in reply.chunks(4) {
            let [id, at, reason, payload] = d else {
                return Err(Error::Protocol(format!("page reply {d:?}")));
            };
            let ms = at
                .as_string()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
            out.push((
                id.as_string().unwrap_or_default(),
                std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0.0) as u64),
                reason.as_string().unwrap_or_default(),
                rmp_serde::from_slice::<T>(payload.as_bytes().unwrap_or_default())
                    .map_err(|e| e.to_string()),
            ));
        }
        Ok(out)
    }

    /// A page of the completed messages kept by [`QueueConfig::keep_completed`], newest
    /// first (empty when the queue keeps none).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for c in q.completed(0, 20).await? {
    ///     println!("{} done at {:?}", c.id, c.completed_at);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn completed(&self, offset: usize, count: usize) -> Result<Vec<Completed<T>>, Error> {
        let page = self
            .page(&self.inner.keys.completed, offset, count, "rev")
            .await?;
        Ok(page
            .into_iter()
            .map(|(id, completed_at, _reason, message)| Completed {
                id,
                completed_at,
                message,
            })
            .collect())
    }

    /// Moves dead messages back to ready (failure and stall counts reset), in one atomic
    /// step; returns how many were in the dead set.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let n = q.replay(&["0001764064000123-000000"]).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn replay(&self, ids: &[&str]) -> Result<u64, Error> {
        let mut args = vec!["ids"];
        args.extend_from_slice(ids);
        self.replay_args(args).await
    }

    /// Replays the whole dead set, oldest first, in atomic batches of 1,000; returns how many.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let n = q.replay_all().await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn replay_all(&self) -> Result<u64, Error> {
        // Bounded by the size at the start: messages that die again meanwhile (a replayed
        // poison message) wait for the next call instead of keeping this one busy forever.
        let start = self.stats().await?.dead;
        let mut total = 0;
        let batch = DEAD_BATCH.to_string();
        while total < start {
            let n = self.replay_args(vec!["oldest", batch.as_str()]).await?;
            total += n;
            if n < DEAD_BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }

    async fn replay_args(&self, args: Vec<&str>) -> Result<u64, Error> {
        let k = &self.inner.keys;
        Ok(REPLAY
            .run(
                self.inner.redis.pool(),
                vec![
                    k.meta.as_str(),
                    k.ready.as_str(),
                    k.dead.as_str(),
                    k.reasons.as_str(),
                    k.stats.as_str(),
                    k.signal.as_str(),
                ],
                args,
            )
            .instrument(tracing::debug_span!("rqueue.replay", queue = %self.inner.cfg.name))
            .await?)
    }

    /// Deletes every dead message for good, in atomic batches of 1,000; returns how many.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let n = q.purge_dead().await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn purge_dead(&self) -> Result<u64, Error> {
        let k = &self.inner.keys;
        let start = self.stats().await?.dead;
        let mut total = 0;
        while total < start {
            let n: u64 = PURGE
                .run(
                    self.inner.redis.pool(),
                    vec![
                        k.dead.as_str(),
                        k.jobs.as_str(),
                        k.meta.as_str(),
                        k.reasons.as_str(),
                        k.stats.as_str(),
                    ],
                    vec![DEAD_BATCH as i64],
                )
                .await?;
            total += n;
            if n < DEAD_BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }

    /// Acknowledges one delivery.
    pub(crate) async fn ack_one(&self, id: &str, token: &str) -> Result<(), Error> {
        let held = [(id.to_string(), token.to_string())];
        match self.ack_many(&held).await?.as_slice() {
            [true] => Ok(()),
            _ => Err(Error::LeaseLost { id: id.to_string() }),
        }
    }

    /// Acknowledges many deliveries, one call per 500; whether each still held its lease.
    pub(crate) async fn ack_many(&self, held: &[(String, String)]) -> Result<Vec<bool>, Error> {
        let k = &self.inner.keys;
        let mut out = Vec::with_capacity(held.len());
        for chunk in held.chunks(500) {
            let keep = self.inner.cfg.keep_completed.to_string();
            let mut args: Vec<&str> = Vec::with_capacity(1 + chunk.len() * 2);
            args.push(keep.as_str());
            args.extend(
                chunk
                    .iter()
                    .flat_map(|(id, token)| [id.as_str(), token.as_str()]),
            );
            let r: Vec<i64> = ACK
                .run(
                    self.inner.redis.pool(),
                    vec![
                        k.jobs.as_str(),
                        k.meta.as_str(),
                        k.inflight.as_str(),
                        k.lease.as_str(),
                        k.stats.as_str(),
                        k.reasons.as_str(),
                        k.completed.as_str(),
                    ],
                    args,
                )
                .instrument(
                    tracing::debug_span!("rqueue.ack", queue = %self.inner.cfg.name, n = chunk.len()),
                )
                .await?;
            if r.len() != chunk.len() {
                return Err(Error::Protocol(format!("ack reply {r:?}")));
            }
            let acked = r.iter().filter(|x| **x == 1).count() as u64;
            self.inner.metrics.acked.increment(acked);
            self.inner
                .metrics
                .lease_lost
                .increment(r.len() as u64 - acked);
            out.extend(r.into_iter().map(|x| x == 1));
        }
        Ok(out)
    }

    /// Extends the leases of many deliveries in one call per 500; whether each still held.
    pub(crate) async fn extend_many(&self, held: &[(String, String)]) -> Result<Vec<bool>, Error> {
        let inner = &self.inner;
        let mut out = Vec::with_capacity(held.len());
        for chunk in held.chunks(500) {
            let mut args = Vec::with_capacity(1 + chunk.len() * 2);
            args.push(Value::from(ms_arg(inner.cfg.lease)));
            for (id, token) in chunk {
                args.push(Value::from(id.as_str()));
                args.push(Value::from(token.as_str()));
            }
            let r: Vec<i64> = EXTEND
                .run(
                    inner.redis.pool(),
                    vec![inner.keys.inflight.as_str(), inner.keys.lease.as_str()],
                    args,
                )
                .instrument(
                    tracing::debug_span!("rqueue.extend", queue = %inner.cfg.name, n = chunk.len()),
                )
                .await?;
            out.extend(r.into_iter().map(|x| x == 1));
        }
        Ok(out)
    }

    /// The dead set's cap as a script argument (0: none).
    fn dead_cap_arg(&self) -> i64 {
        self.inner
            .cfg
            .dead_cap
            .map_or(0, |c| i64::try_from(c.max(1)).unwrap_or(i64::MAX))
    }

    /// The nack script: 0 lease lost, 1 retried (or released), 2 dead.
    pub(crate) async fn give_back(
        &self,
        id: &str,
        token: &str,
        delay: Duration,
        error: &str,
        dead: bool,
    ) -> Result<i64, Error> {
        self.give_back_as(id, token, delay, error, dead, false)
            .await
    }

    /// Puts a delivery back to ready without counting a failure (shutdown).
    pub(crate) async fn release(&self, id: &str, token: &str) -> Result<(), Error> {
        self.give_back_as(id, token, Duration::ZERO, "", false, true)
            .await
            .map(|_| ())
    }

    async fn give_back_as(
        &self,
        id: &str,
        token: &str,
        delay: Duration,
        error: &str,
        dead: bool,
        release: bool,
    ) -> Result<i64, Error> {
        let k = &self.inner.keys;
        let r: i64 = NACK
            .run(
                self.inner.redis.pool(),
                vec![
                    k.meta.as_str(),
                    k.ready.as_str(),
                    k.delayed.as_str(),
                    k.inflight.as_str(),
                    k.lease.as_str(),
                    k.dead.as_str(),
                    k.reasons.as_str(),
                    k.stats.as_str(),
                    k.signal.as_str(),
                    k.jobs.as_str(),
                ],
                vec![
                    Value::from(id),
                    Value::from(token),
                    Value::from(ms_arg(delay)),
                    Value::from(error),
                    Value::from(if dead { "1" } else { "0" }),
                    Value::from(if release { "1" } else { "0" }),
                    Value::from(self.dead_cap_arg()),
                ],
            )
            .instrument(tracing::debug_span!("rqueue.nack", queue = %self.inner.cfg.name, id))
            .await?;
        let m = &self.inner.metrics;
        match r {
            0 => {
                m.lease_lost.increment(1);
                return Err(Error::LeaseLost { id: id.to_string() });
            }
            2 => m.dead.increment(1),
            _ if release => m.released.increment(1),
            _ => m.retried.increment(1),
        }
        Ok(r)
    }
}

impl<'a, T: Serialize + DeserializeOwned + Send + Sync + 'static> Enqueue<'a, T> {
    /// Priority: higher is served first (default 0; negative allowed).
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<u64>) { let _ = q.message(&1).priority(10); }
    /// ```
    pub fn priority(mut self, priority: i32) -> Enqueue<'a, T> {
        self.priority = priority;
        self
    }

    /// Ready only after `delay` (measured by the Redis server's clock).
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<u64>) { let _ = q.message(&1).delay(std::time::Duration::from_secs(5)); }
    /// ```
    pub fn delay(mut self, delay: Duration) -> Enqueue<'a, T> {
        self.delay = delay;
        self.run_at = None;
        self
    }

    /// Ready at `at` (a wall-clock time, compared with the Redis server's clock; a time
    /// already past means ready now). Replaces any [`Enqueue::delay`].
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<u64>) {
    /// let midnight = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    /// let _ = q.message(&1).run_at(midnight);
    /// # }
    /// ```
    pub fn run_at(mut self, at: std::time::SystemTime) -> Enqueue<'a, T> {
        self.run_at = Some(at);
        self.delay = Duration::ZERO;
        self
    }

    /// This message's retries follow `backoff` instead of the queue's.
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<u64>) {
    /// let mut b = rqueue::Backoff::default();
    /// b.base = std::time::Duration::from_secs(10);
    /// let _ = q.message(&1).backoff(b);
    /// # }
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Enqueue<'a, T> {
        self.backoff = Some(backoff);
        self
    }

    /// Failures before the dead set (default: the queue's).
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<u64>) { let _ = q.message(&1).max_attempts(1); }
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Enqueue<'a, T> {
        self.max_attempts = Some(n);
        self
    }

    /// Idempotent enqueue: while a message enqueued with the same `key` in the last `ttl` is
    /// still stored (ready, delayed, in flight, dead, or kept as completed), its id is
    /// returned and nothing is added. A TTL above 100 years counts as 100 years.
    ///
    /// ```no_run
    /// # fn demo(q: rqueue::Queue<u64>) { let _ = q.message(&1).dedup("order:7", std::time::Duration::from_secs(60)); }
    /// ```
    pub fn dedup(mut self, key: impl Into<String>, ttl: Duration) -> Enqueue<'a, T> {
        self.dedup = Some((key.into(), ttl));
        self
    }

    /// Enqueues; returns the message's id (a duplicate's id when deduplicated).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let id = q.message(&1).send().await?;
    /// # let _ = id; Ok(()) }
    /// ```
    pub async fn send(self) -> Result<String, Error> {
        if let Some((key, _)) = &self.dedup
            && key.contains(['{', '}'])
        {
            return Err(Error::Config(format!(
                "dedup key {key:?} must be free of braces"
            )));
        }
        let queue = self.queue;
        let mut ids = queue.send(std::slice::from_ref(&self)).await?;
        ids.pop()
            .map(|(id, _)| id)
            .ok_or_else(|| Error::Protocol("enqueue returned no id".into()))
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Delivery<T> {
    /// The message id (time-ordered).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? { println!("{}", d.id()); d.ack().await?; }
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The message.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? { let _n: u64 = *d.message(); d.ack().await?; }
    /// # Ok(()) }
    /// ```
    pub fn message(&self) -> &T {
        &self.message
    }

    /// Which delivery of the message this is (1 for the first; retries and reclaims count).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? { assert!(d.delivery() >= 1); d.ack().await?; }
    /// # Ok(()) }
    /// ```
    pub fn delivery(&self) -> u32 {
        self.delivery
    }

    /// Acknowledges: the message is done and deleted. [`Error::LeaseLost`] when the lease was
    /// reclaimed first (the message may be running elsewhere; nothing was changed).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? { d.ack().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn ack(self) -> Result<(), Error> {
        self.queue.ack_one(&self.id, &self.token).await
    }

    /// The backoff its retries follow: the message's own, else the queue's.
    pub(crate) fn backoff(&self) -> Backoff {
        self.backoff.unwrap_or(self.queue.inner.cfg.backoff)
    }

    /// Failures before this delivery (stalls not counted).
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// The delivery's lease token.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Splits the delivery into its lease (id, token, delivery number) and its message.
    pub(crate) fn into_parts(self) -> (Queue<T>, String, String, u32, T) {
        (self.queue, self.id, self.token, self.delivery, self.message)
    }

    /// Gives the message back after a failure: retried after its backoff (its own, else the
    /// queue's), or moved to the dead set once it failed `max_attempts` times. Returns
    /// whether it is dead now.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? { d.nack("upstream timed out").await?; }
    /// # Ok(()) }
    /// ```
    pub async fn nack(self, error: &str) -> Result<bool, Error> {
        let delay = self.backoff().delay(self.failures + 1);
        self.retry_after(delay, error).await
    }

    /// Like [`Delivery::nack`] with an explicit delay (zero: ready at once).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? { d.retry_after(std::time::Duration::ZERO, "busy").await?; }
    /// # Ok(()) }
    /// ```
    pub async fn retry_after(self, delay: Duration, error: &str) -> Result<bool, Error> {
        let r = self
            .queue
            .give_back(&self.id, &self.token, delay, error, false)
            .await?;
        Ok(r == 2)
    }

    /// Moves the message to the dead set now, with `reason`.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? { d.dead("invalid order").await?; }
    /// # Ok(()) }
    /// ```
    pub async fn dead(self, reason: &str) -> Result<(), Error> {
        self.queue
            .give_back(&self.id, &self.token, Duration::ZERO, reason, true)
            .await
            .map(|_| ())
    }

    /// Extends the lease by the queue's lease from now. [`Error::LeaseLost`] when it was
    /// reclaimed first.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? { d.extend().await?; d.ack().await?; }
    /// # Ok(()) }
    /// ```
    pub async fn extend(&self) -> Result<(), Error> {
        let held = [(self.id.clone(), self.token.clone())];
        match self.queue.extend_many(&held).await?.as_slice() {
            [true] => Ok(()),
            _ => Err(Error::LeaseLost {
                id: self.id.clone(),
            }),
        }
    }
}
