//! Queues as the console sees them: discovery ([`Console::queue_refs`]) and summaries
//! ([`QueueSummary`]).

use fred::interfaces::KeysInterface;
use futures::{StreamExt, TryStreamExt};
use redis_conn::registry::{self, Kind};
use rqueue::{Queue, QueueConfig};
use serde::Serialize;

use crate::console::Console;
use crate::error::Error;
use crate::history::{self, Minute};
use crate::millis::opt_ms;
use crate::payload::Payload;
use crate::queue_ref::QueueRef;

/// Queue summaries read at once by [`Console::queues`].
pub(crate) const CONCURRENCY: usize = 64;
/// Keys examined at most by the fallback scan for queues written before the registry.
const SCAN_BUDGET: usize = 200_000;
/// One queue's depths, counters, controls and last hour, as the overview shows it. A queue
/// whose keys cannot be read (a key of another type, foreign data) comes back with `error`
/// set and zero counts, so one bad queue never breaks a listing.
///
/// ```no_run
/// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
/// let s = c.queue(&redkit_console::QueueRef::parse("emails")?).await?;
/// println!("{} ready, {} dead, paused: {}", s.ready, s.dead, s.paused);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct QueueSummary {
    /// `namespace/name`.
    pub queue: String,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// Messages ready now.
    pub ready: u64,
    /// Messages waiting for their due time.
    pub delayed: u64,
    /// Messages leased to workers.
    pub in_flight: u64,
    /// Messages in the dead set.
    pub dead: u64,
    /// Age of the message served next (ms), when one is ready.
    pub oldest_ready_age_ms: Option<u64>,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Since when (Unix ms), while paused.
    pub paused_since_ms: Option<u64>,
    /// The rate limit (`max` per `window_ms`), if set.
    pub rate_limit: Option<(u64, u64)>,
    /// The concurrency limit, if set.
    pub concurrency_limit: Option<u64>,
    /// Messages enqueued so far.
    pub enqueued: u64,
    /// Deliveries made.
    pub claimed: u64,
    /// Deliveries acknowledged.
    pub processed: u64,
    /// Failed attempts (retried + died).
    pub failed: u64,
    /// Messages moved to the dead set.
    pub died: u64,
    /// Dead messages replayed.
    pub replayed: u64,
    /// Dead messages purged.
    pub purged: u64,
    /// Expired leases taken back.
    pub reclaimed: u64,
    /// Processed and failed per minute, oldest first (the last hour; empty when unknown).
    pub per_minute: Vec<Minute>,
    /// Why the queue could not be read, when it could not.
    pub error: Option<String>,
}

impl Console {
    /// An untyped handle on a queue (payloads read as [`Payload`]).
    pub(crate) fn handle(&self, q: &QueueRef) -> Result<Queue<Payload>, Error> {
        let mut cfg = QueueConfig::new(q.name.clone());
        cfg.namespace = q.namespace.clone();
        Ok(Queue::new(self.redis.clone(), cfg)?)
    }

    /// Every known queue: the registry, or — when the registry lists no queue (data written
    /// before it existed) — a bounded scan for keys shaped like a queue's (`*:{*}:stats`).
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let names: Vec<String> = c.queue_refs().await?.iter().map(|q| q.to_string()).collect();
    /// # Ok(()) }
    /// ```
    pub async fn queue_refs(&self) -> Result<Vec<QueueRef>, Error> {
        let (entries, _bad) = registry::registered(&self.redis, Some(Kind::Queue)).await?;
        let mut refs: Vec<QueueRef> = entries
            .into_iter()
            .filter_map(|e| {
                let r = QueueRef::new(e.namespace, e.name);
                r.check().ok().map(|()| r)
            })
            .collect();
        if refs.is_empty() {
            refs = self.scan_queue_refs(SCAN_BUDGET).await?;
        }
        refs.sort();
        refs.dedup();
        Ok(refs)
    }

    /// Queues found by scanning for their `stats` keys, examining at most `budget` keys.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let found = c.scan_queue_refs(100_000).await?;
    /// # drop(found); Ok(()) }
    /// ```
    pub async fn scan_queue_refs(&self, budget: usize) -> Result<Vec<QueueRef>, Error> {
        let mut pages = std::pin::pin!(redis_conn::scan_keys(&self.redis, "*:{*}:stats", 1000));
        let mut out = Vec::new();
        let mut seen = 0usize;
        while let Some(keys) = pages.try_next().await? {
            seen += keys.len().max(1);
            out.extend(
                keys.iter()
                    .filter_map(|k| k.as_str().and_then(QueueRef::from_key)),
            );
            if seen >= budget {
                break;
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Whether the queue has any key (or a registry entry).
    pub(crate) async fn queue_exists(&self, q: &QueueRef) -> Result<bool, Error> {
        q.check()?;
        let base = q.base();
        let keys: Vec<String> = [
            "stats", "jobs", "ready", "delayed", "inflight", "dead", "ctl",
        ]
        .iter()
        .map(|s| format!("{base}:{s}"))
        .collect();
        let n: u64 = self.redis.for_key(&base).exists(keys).await?;
        if n > 0 {
            return Ok(true);
        }
        let (entries, _) = registry::registered(&self.redis, Some(Kind::Queue)).await?;
        Ok(entries.iter().any(|e| e.prefix == base))
    }

    /// The queue, or [`Error::NotFound`].
    pub(crate) async fn existing(&self, q: &QueueRef) -> Result<Queue<Payload>, Error> {
        if !self.queue_exists(q).await? {
            return Err(Error::NotFound {
                kind: "queue",
                name: q.to_string(),
            });
        }
        self.handle(q)
    }

    /// Every known queue's summary, sorted by name. A queue that cannot be read has `error`
    /// set; Redis being unreachable is an error of the whole call.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let dead: u64 = c.queues().await?.iter().map(|q| q.dead).sum();
    /// # Ok(()) }
    /// ```
    pub async fn queues(&self) -> Result<Vec<QueueSummary>, Error> {
        let refs = self.queue_refs().await?;
        let mut out: Vec<QueueSummary> = futures::stream::iter(refs)
            .map(|r| async move { self.summary(&r).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(out)
    }

    /// One queue's summary, or [`Error::NotFound`].
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// let s = c.queue(&redkit_console::QueueRef::parse("emails")?).await?;
    /// # drop(s); Ok(()) }
    /// ```
    pub async fn queue(&self, q: &QueueRef) -> Result<QueueSummary, Error> {
        self.existing(q).await?;
        let s = self.summary(q).await?;
        match &s.error {
            Some(e) => Err(Error::Unreadable(format!("queue {q}: {e}"))),
            None => Ok(s),
        }
    }

    /// A summary; `Err` only when Redis itself failed.
    async fn summary(&self, q: &QueueRef) -> Result<QueueSummary, Error> {
        let mut out = QueueSummary {
            queue: q.to_string(),
            namespace: q.namespace.clone(),
            name: q.name.clone(),
            ..QueueSummary::default()
        };
        let queue = self.handle(q)?;
        let (stats, minutes) = futures::join!(queue.stats(), history::per_minute(&queue, 60));
        let s = match stats {
            Ok(s) => s,
            Err(e) => {
                let e = Error::from(e);
                if e.is_redis() {
                    return Err(e);
                }
                out.error = Some(e.to_string());
                return Ok(out);
            }
        };
        out.ready = s.ready;
        out.delayed = s.delayed;
        out.in_flight = s.in_flight;
        out.dead = s.dead;
        out.oldest_ready_age_ms = s
            .head_age
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        out.paused = s.paused;
        out.paused_since_ms = opt_ms(s.paused_since);
        out.rate_limit = s.rate_limit.map(|r| {
            (
                r.max(),
                u64::try_from(r.window().as_millis()).unwrap_or(u64::MAX),
            )
        });
        out.concurrency_limit = s.concurrency_limit;
        out.enqueued = s.enqueued;
        out.claimed = s.claimed;
        out.processed = s.acked;
        out.failed = s.retried + s.died;
        out.died = s.died;
        out.replayed = s.replayed;
        out.purged = s.purged;
        out.reclaimed = s.reclaimed;
        match minutes {
            Ok(m) => out.per_minute = m,
            Err(e) => {
                let e = Error::from(e);
                if e.is_redis() {
                    return Err(e);
                }
                out.error = Some(e.to_string());
            }
        }
        Ok(out)
    }
}
