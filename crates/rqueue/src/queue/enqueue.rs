//! Enqueueing: [`Queue::enqueue`], the [`Enqueue`] builder ([`Queue::message`]: priority,
//! delay, backoff, attempts, dedup key) and batches ([`Queue::enqueue_batch`],
//! [`Queue::send_batch`]), sent by the enqueue script in chunks.

use std::sync::Arc;
use std::time::Duration;

use fred::types::Value;
use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::config::{Backoff, ms, ms_arg};
use super::core::Queue;
use crate::error::Error;

/// ids.lua (message ids) is prepended: the scheduler's tick script makes ids the same way.
static ENQUEUE: Script = Script::new(
    "rqueue_enqueue",
    concat!(
        include_str!("../lua/ids.lua"),
        include_str!("../lua/enqueue.lua")
    ),
);

/// Longest dedup TTL (100 years): Redis refuses expiries near the end of its clock, and a
/// refused `SET` in the middle of the enqueue script would leave a partial batch.
const MAX_DEDUP_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// Messages per enqueue script call (the script's limit).
const ENQUEUE_BATCH: usize = 1000;

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

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
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
            k.ctl.clone(),
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
        let reply: Vec<Value> = ENQUEUE.run(self.inner.redis.pool(), keys, args)
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
