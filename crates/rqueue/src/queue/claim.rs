//! Claiming: [`Queue::claim`] (at once), [`Queue::claim_wait`] (blocking on the queue's
//! wake-up signal), and the one claim script call both are made of.

use std::time::{Duration, Instant};

use fred::interfaces::ListInterface;
use fred::types::Value;
use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::config::{Backoff, ms_arg};
use super::core::{Queue, script_keys};
use super::delivery::Delivery;
use crate::error::Error;

static CLAIM: Script = Script::new("rqueue_claim", include_str!("../lua/claim.lua"));

/// Longest single block on the wake-up signal: waits re-check at least this often (a lost or
/// late signal, a failover).
const MAX_BLOCK: Duration = Duration::from_secs(2);

/// What held a claim back (queue-wide controls in Redis, see [`Queue::pause`] and
/// [`Queue::set_rate_limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Nothing: the claim got what was ready, up to `n`.
    No,
    /// The queue is paused: nothing is handed out until [`Queue::resume`].
    Paused,
    /// The rate limit is used up; the next slot frees after this long.
    Rate(Duration),
    /// The concurrency limit is reached: a slot frees when an in-flight message ends.
    Concurrency,
}

/// One claim's result.
pub(crate) struct Claimed<T> {
    pub(crate) deliveries: Vec<Delivery<T>>,
    /// How long until the next delayed message is due.
    pub(crate) next_due: Option<Duration>,
    pub(crate) held: Held,
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
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
        Ok(self.claim_some(n).await?.deliveries)
    }

    /// Like [`Queue::claim`], but waits up to `timeout` for messages: without polling — a
    /// blocking pop on the queue's wake-up signal (pushed by enqueues, retries, reclaims,
    /// [`Queue::resume`] and, under a concurrency limit, acks; passed on by claims while
    /// messages stay ready), bounded by the next delayed message's due time. Under a used-up
    /// rate limit it sleeps until the next slot the claim script reported. While the queue is
    /// paused it waits on the signal (re-checking every 2 s at most). An empty vector when none came in time. A user without `+blpop`
    /// gets [`Error::Redis`] with [`redis_conn::Error::NoPermission`] once it would wait.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let batch = q.claim_wait(16, std::time::Duration::from_secs(5)).await?;
    /// # drop(batch); Ok(()) }
    /// ```
    pub async fn claim_wait(&self, n: usize, timeout: Duration) -> Result<Vec<Delivery<T>>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.claim_some(n).await?;
            let now = Instant::now();
            if !c.deliveries.is_empty() || now >= deadline {
                return Ok(c.deliveries);
            }
            let mut wait = (deadline - now).min(MAX_BLOCK);
            if let Some(due) = c.next_due {
                wait = wait.min(due.max(Duration::from_millis(1)));
            }
            match c.held {
                // The next slot is known: sleep until then (enqueues would only wake us to be
                // refused again).
                Held::Rate(free_in) => tokio::time::sleep(wait.min(free_in)).await,
                Held::No | Held::Paused | Held::Concurrency => self.wait_signal(wait).await?,
            }
        }
    }

    /// Blocks until the wake-up signal or `wait` (a hint only: callers re-check). Fails only
    /// when the blocking connection cannot be made or Redis refuses the wait (ACL).
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
            Ok(Err(e)) => match redis_conn::Error::from(e) {
                // A missing right (`+blpop`, the signal key) never heals by waiting: report it
                // instead of spinning on claims.
                e @ redis_conn::Error::NoPermission(_) => Err(e.into()),
                e => {
                    tracing::debug!(queue = %self.inner.cfg.name, error = %e, "wake-up wait failed; re-checking");
                    Ok(())
                }
            },
            Err(_) => Ok(()),
        }
    }

    /// One claim: the deliveries, how long until the next delayed message is due, and what
    /// held it back.
    pub(crate) async fn claim_some(&self, n: usize) -> Result<Claimed<T>, Error> {
        let k = &self.inner.keys;
        let reply: Vec<Value> = CLAIM
            .run(
                self.inner.redis.pool(),
                script_keys!(k; jobs, meta, ready, delayed, inflight, lease, stats, signal, ctl, rate),
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
        for d in reply.get(3..).unwrap_or_default().chunks(6) {
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
        let ms = |i: usize| {
            reply
                .get(i)
                .and_then(Value::as_i64)
                .and_then(|ms| u64::try_from(ms).ok())
                .map(Duration::from_millis)
        };
        let next_due = ms(0);
        let m = &self.inner.metrics;
        let held = match reply.get(1).and_then(Value::as_i64) {
            Some(1) => Held::Paused,
            Some(2) => Held::Rate(ms(2).unwrap_or(Duration::from_millis(1))),
            Some(3) => Held::Concurrency,
            _ => Held::No,
        };
        m.paused.set(if held == Held::Paused { 1.0 } else { 0.0 });
        match held {
            Held::Rate(_) => m.rate_limited.increment(1),
            Held::Concurrency => m.concurrency_limited.increment(1),
            Held::No | Held::Paused => {}
        }
        m.claimed.increment(out.len() as u64);
        // A token carries the server's clock at the claim: the ack's estimate of it.
        if let Some(ms) = out
            .first()
            .and_then(|d| d.token.rsplit(':').next())
            .and_then(|ms| ms.parse::<i64>().ok())
        {
            self.inner.saw_server_ms(ms);
        }
        Ok(Claimed {
            deliveries: out,
            next_due,
            held,
        })
    }
}
