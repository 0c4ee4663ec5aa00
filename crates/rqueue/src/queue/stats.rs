//! A queue's depths and counters: [`QueueStats`] and [`Queue::stats`].

use std::time::Duration;

use fred::types::Value;
use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::control::RateLimit;
use super::core::{Queue, script_keys};
use crate::error::Error;

static STATS: Script = Script::new("rqueue_stats", include_str!("../lua/stats.lua"));

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
    /// Dead messages deleted because the dead set was at its cap
    /// ([`QueueConfig::dead_cap`](crate::QueueConfig::dead_cap)).
    pub dead_trimmed: u64,
    /// Whether the queue is paused ([`Queue::pause`]).
    pub paused: bool,
    /// Since when (server clock), while paused.
    pub paused_since: Option<std::time::SystemTime>,
    /// Times the queue was paused.
    pub pauses: u64,
    /// The queue's rate limit ([`Queue::set_rate_limit`]).
    pub rate_limit: Option<RateLimit>,
    /// The queue's concurrency limit ([`Queue::set_concurrency_limit`]).
    pub concurrency_limit: Option<u64>,
    /// Claims the rate limit cut short or refused (while messages were ready).
    pub rate_limited: u64,
    /// Claims the concurrency limit cut short or refused (while messages were ready).
    pub concurrency_limited: u64,
    /// Jobs enqueued by schedules ([`Scheduler`](crate::Scheduler)).
    pub schedule_enqueued: u64,
    /// Schedule ticks skipped by their missed-tick policy.
    pub schedule_skipped: u64,
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
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
                script_keys!(k; ready, delayed, inflight, dead, stats, ctl),
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
        let controls = reply
            .get(6)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        let ctl_end = 7usize.saturating_add(controls);
        let (mut rate_max, mut rate_window) = (None, None);
        for pair in reply.get(7..ctl_end).unwrap_or_default().chunks(2) {
            if let [name, value] = pair {
                let v = value.as_u64();
                match name.as_string().as_deref() {
                    Some("paused") => s.paused = value.as_string().as_deref() == Some("1"),
                    Some("paused_at") => {
                        s.paused_since =
                            v.map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms))
                    }
                    Some("rate_max") => rate_max = v,
                    Some("rate_window") => rate_window = v,
                    Some("conc") => s.concurrency_limit = v,
                    _ => {}
                }
            }
        }
        if let (Some(max), Some(window)) = (rate_max, rate_window) {
            s.rate_limit = RateLimit::new(max, Duration::from_millis(window)).ok();
        }
        for pair in reply.get(ctl_end..).unwrap_or_default().chunks(2) {
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
                    Some("pauses") => s.pauses = v,
                    Some("rate_limited") => s.rate_limited = v,
                    Some("concurrency_limited") => s.concurrency_limited = v,
                    Some("sched_enqueued") => s.schedule_enqueued = v,
                    Some("sched_skipped") => s.schedule_skipped = v,
                    _ => {}
                }
            }
        }
        self.inner
            .metrics
            .paused
            .set(if s.paused { 1.0 } else { 0.0 });
        Ok(s)
    }
}
