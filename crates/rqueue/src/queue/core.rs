//! The [`Queue`] handle and what every queue operation shares: its state ([`Inner`]: the
//! Redis client, the settings, the key set, the blocking connection, the metrics), the key set
//! ([`Keys`]) and the [`script_keys!`] helper that lists a script's keys.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::clients::{Client, SubscriberClient};
use redis_conn::RedisClient;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::QueueConfig;
use crate::error::Error;

/// The queue's keys, all under its hash tag (`<namespace>:{<name>}:*`).
pub(super) struct Keys {
    pub(super) jobs: String,
    pub(super) meta: String,
    pub(super) ready: String,
    pub(super) delayed: String,
    pub(super) seq: String,
    pub(super) stats: String,
    pub(super) inflight: String,
    pub(super) lease: String,
    pub(super) dead: String,
    pub(super) reasons: String,
    pub(super) completed: String,
    pub(super) signal: String,
    /// Queue-wide controls (hash): `paused`, `rate_max` + `rate_window` (ms), `conc`.
    pub(super) ctl: String,
    /// The rate limiter's log (zset claim serial -> claim ms) of the current window.
    pub(super) rate: String,
    /// Progress reports (hash id -> `"<number>|<message>"`).
    pub(super) progress: String,
    /// Jobs a schedule enqueued (hash id -> `"<tick ms>|<schedule>"`).
    pub(super) origin: String,
    /// The pub/sub channel told the ids of finished jobs (when results are kept).
    pub(super) done: String,
    /// Per-minute counters (hash `p:<minute>` acked, `f:<minute>` failed attempts; expires
    /// when idle), kept by the ack, nack and reclaim scripts (`lua/minutes.lua`).
    pub(super) minutes: String,
    pub(super) base: String,
}

impl Keys {
    /// The key of a finished job's kept record (hash, expires after the result TTL).
    pub(super) fn result(&self, id: &str) -> String {
        format!("{}:result:{id}", self.base)
    }
}

/// The KEYS of a script call: `script_keys!(k; meta, ready)` is
/// `vec![k.meta.as_str(), k.ready.as_str()]` for a [`Keys`] `k`. The scripts read
/// `KEYS[1]`, `KEYS[2]`, …, so the names are listed in the script's order.
macro_rules! script_keys {
    ($keys:expr; $($name:ident),+ $(,)?) => {
        vec![$($keys.$name.as_str()),+]
    };
}
pub(super) use script_keys;

/// The state behind a [`Queue`] and its clones.
pub(super) struct Inner {
    pub(super) redis: RedisClient,
    pub(super) cfg: QueueConfig,
    pub(super) keys: Keys,
    /// Prefix of this client's delivery tokens.
    pub(super) claimer: String,
    /// The connection blocking waits use (`BLPOP` on the wake-up signal), made on first use;
    /// one waiter at a time blocks on it.
    pub(super) blocking: tokio::sync::Mutex<Option<Client>>,
    /// The listener of the `done` channel ([`Queue::wait_result`]), made on first use, and
    /// the local fan-out of what it hears.
    pub(super) done: tokio::sync::OnceCell<(SubscriberClient, DoneSender)>,
    pub(super) metrics: Metrics,
    /// The server clock minus this machine's (ms), as last seen in a claim reply: acks that
    /// do not read the server clock pass their estimate of it for the per-minute counters.
    pub(super) clock_offset_ms: AtomicI64,
}

/// This machine's clock, Unix ms.
fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Inner {
    /// Records a server time (Unix ms) just read from a reply.
    pub(super) fn saw_server_ms(&self, server_ms: i64) {
        self.clock_offset_ms
            .store(server_ms - local_ms(), Ordering::Relaxed);
    }

    /// The server clock now as estimated from the last reply that carried it (Unix ms; this
    /// machine's clock before any).
    pub(super) fn server_ms_estimate(&self) -> i64 {
        local_ms().saturating_add(self.clock_offset_ms.load(Ordering::Relaxed))
    }
}

/// Local fan-out of the ids announced on the `done` channel.
pub(super) type DoneSender = tokio::sync::broadcast::Sender<Arc<str>>;

/// Counters and histograms through the `metrics` facade, labelled with the queue's name.
/// They count what THIS process did (the queue-wide counters are in
/// [`QueueStats`](crate::QueueStats)).
pub(crate) struct Metrics {
    pub(crate) enqueued: redis_conn::telemetry::Counter,
    pub(crate) claimed: redis_conn::telemetry::Counter,
    pub(crate) acked: redis_conn::telemetry::Counter,
    pub(crate) retried: redis_conn::telemetry::Counter,
    pub(crate) dead: redis_conn::telemetry::Counter,
    pub(crate) released: redis_conn::telemetry::Counter,
    pub(crate) lease_lost: redis_conn::telemetry::Counter,
    pub(crate) reclaimed: redis_conn::telemetry::Counter,
    pub(crate) job_seconds: redis_conn::telemetry::Histogram,
    /// Claims the rate limit cut short or refused.
    pub(crate) rate_limited: redis_conn::telemetry::Counter,
    /// Claims the concurrency limit cut short or refused.
    pub(crate) concurrency_limited: redis_conn::telemetry::Counter,
    /// 1 while the queue is paused, as last seen by this process (claims and stats).
    pub(crate) paused: redis_conn::telemetry::Gauge,
}

impl Metrics {
    fn new(queue: &str) -> Metrics {
        let q = queue.to_string();
        Metrics {
            enqueued: redis_conn::telemetry::counter!("redkit_rqueue_enqueued_total", "queue" => q.clone()),
            claimed: redis_conn::telemetry::counter!("redkit_rqueue_claimed_total", "queue" => q.clone()),
            acked: redis_conn::telemetry::counter!("redkit_rqueue_acked_total", "queue" => q.clone()),
            retried: redis_conn::telemetry::counter!("redkit_rqueue_retried_total", "queue" => q.clone()),
            dead: redis_conn::telemetry::counter!("redkit_rqueue_dead_total", "queue" => q.clone()),
            released: redis_conn::telemetry::counter!("redkit_rqueue_released_total", "queue" => q.clone()),
            lease_lost: redis_conn::telemetry::counter!("redkit_rqueue_lease_lost_total", "queue" => q.clone()),
            reclaimed: redis_conn::telemetry::counter!("redkit_rqueue_reclaimed_total", "queue" => q.clone()),
            job_seconds: redis_conn::telemetry::histogram!("redkit_rqueue_job_seconds", "queue" => q.clone()),
            rate_limited: redis_conn::telemetry::counter!("redkit_rqueue_rate_limited_total", "queue" => q.clone()),
            concurrency_limited: redis_conn::telemetry::counter!("redkit_rqueue_concurrency_limited_total", "queue" => q.clone()),
            paused: redis_conn::telemetry::gauge!("redkit_rqueue_paused", "queue" => q),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let (Some((sub, _)), Ok(rt)) = (self.done.take(), tokio::runtime::Handle::try_current())
        {
            rt.spawn(async move {
                let _ = fred::interfaces::ClientLike::quit(&sub).await;
            });
        }
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
    pub(super) inner: Arc<Inner>,
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

/// This client's worker name in delivery tokens and [`JobState::Active`](crate::JobState):
/// `<host>-<pid>-<random>` (no `:`, which separates a token's parts).
fn claimer_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    let host = if host.is_empty() {
        "host".to_string()
    } else {
        host
    };
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// Announces the queue in the redkit registry (`redkit:registry`, see
/// [`redis_conn::registry`]) from a background task, once per process, for operators' tools
/// to list it. Best effort: a refused or failed write is logged and changes nothing else.
fn register(redis: &RedisClient, cfg: &QueueConfig, base: &str) {
    use redis_conn::registry::{Kind, Registration, register_in_background};
    let opt = |d: Option<Duration>| d.map_or_else(|| "none".to_string(), |d| format!("{d:?}"));
    let entry = Registration::new(Kind::Queue, &cfg.namespace, &cfg.name, base)
        .setting("lease", format!("{:?}", cfg.lease))
        .setting("max_attempts", cfg.max_attempts)
        .setting("max_stalls", cfg.max_stalls)
        .setting(
            "dead_cap",
            cfg.dead_cap
                .map_or_else(|| "none".to_string(), |c| c.to_string()),
        )
        .setting("keep_completed", cfg.keep_completed)
        .setting("keep_results", opt(cfg.keep_results));
    register_in_background(redis, entry);
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains(['{', '}']) {
        return Err(Error::Config(format!(
            "queue name {name:?} must be non-empty and free of braces"
        )));
    }
    Ok(())
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
        if cfg
            .keep_results
            .is_some_and(|t| t < Duration::from_millis(1))
        {
            return Err(Error::Config("keep_results must be at least 1 ms".into()));
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
            ctl: k("ctl"),
            rate: k("rate"),
            progress: k("progress"),
            origin: k("origin"),
            done: k("done"),
            minutes: k("minutes"),
            base,
        };
        let metrics = Metrics::new(&cfg.name);
        register(&redis, &cfg, &keys.base);
        Ok(Queue {
            inner: Arc::new(Inner {
                redis,
                cfg,
                keys,
                claimer: claimer_id(),
                blocking: tokio::sync::Mutex::new(None),
                done: tokio::sync::OnceCell::new(),
                metrics,
                clock_offset_ms: AtomicI64::new(0),
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

    /// The dead set's cap as a script argument (0: none).
    pub(super) fn dead_cap_arg(&self) -> i64 {
        self.inner
            .cfg
            .dead_cap
            .map_or(0, |c| i64::try_from(c.max(1)).unwrap_or(i64::MAX))
    }
}
