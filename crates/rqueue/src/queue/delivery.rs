//! Deliveries: a claimed message's lease ([`Delivery`]) and what ends or renews it — ack,
//! nack / retry, dead, extend, and the release a shutting-down worker makes — with the
//! batched ack and extend calls the worker uses.

use std::time::Duration;

use fred::types::Value;
use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::attempts::sanitize;
use super::config::{Backoff, ms_arg};
use super::core::{Queue, script_keys};
use crate::error::Error;

static ACK: Script = Script::new(
    "rqueue_ack",
    concat!(
        include_str!("../lua/minutes.lua"),
        include_str!("../lua/ack.lua")
    ),
);
static NACK: Script = Script::new(
    "rqueue_nack",
    concat!(
        include_str!("../lua/minutes.lua"),
        include_str!("../lua/errors.lua"),
        include_str!("../lua/nack.lua")
    ),
);
/// A finished delivery to acknowledge: id, token, the encoded result (empty for none).
pub(crate) type Finished = (String, String, Vec<u8>);

static EXTEND: Script = Script::new("rqueue_extend", include_str!("../lua/extend.lua"));

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
    pub(super) queue: Queue<T>,
    pub(super) id: String,
    pub(super) token: String,
    pub(super) delivery: u32,
    /// Failures before this delivery (stalls not counted): the backoff step.
    pub(super) failures: u32,
    /// The message's own backoff, when it was enqueued with one.
    pub(super) backoff: Option<Backoff>,
    pub(super) message: T,
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
    /// Acknowledges one delivery, keeping `result` (encoded) when results are kept.
    pub(crate) async fn ack_one(
        &self,
        id: &str,
        token: &str,
        result: Vec<u8>,
    ) -> Result<(), Error> {
        let held = [(id.to_string(), token.to_string(), result)];
        match self.ack_many(&held).await?.as_slice() {
            [true] => Ok(()),
            _ => Err(Error::LeaseLost { id: id.to_string() }),
        }
    }

    /// Acknowledges many deliveries (id, token, encoded result or empty), one call per 500;
    /// whether each still held its lease.
    pub(crate) async fn ack_many(&self, held: &[Finished]) -> Result<Vec<bool>, Error> {
        let k = &self.inner.keys;
        let cfg = &self.inner.cfg;
        let ttl = cfg.keep_results.map_or(0, |t| ms_arg(t).max(1));
        let mut out = Vec::with_capacity(held.len());
        for chunk in held.chunks(500) {
            let mut keys = script_keys!(
                k; jobs, meta, inflight, lease, stats, reasons, completed, progress, origin, ctl,
                ready, signal, minutes
            )
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
            if ttl > 0 {
                keys.extend(chunk.iter().map(|(id, _, _)| k.result(id)));
            }
            let mut args: Vec<Value> = Vec::with_capacity(4 + chunk.len() * 3);
            args.push(Value::from(cfg.keep_completed.to_string()));
            args.push(Value::from(ttl));
            args.push(Value::from(k.done.as_str()));
            args.push(Value::from(self.inner.server_ms_estimate()));
            for (id, token, result) in chunk {
                args.push(Value::from(id.as_str()));
                args.push(Value::from(token.as_str()));
                args.push(Value::Bytes(if ttl > 0 {
                    result.clone().into()
                } else {
                    Default::default()
                }));
            }
            let r: Vec<i64> = ACK
                .run(self.inner.redis.pool(), keys, args)
                .instrument(tracing::debug_span!("rqueue.ack", queue = %cfg.name, n = chunk.len()))
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
                    script_keys!(inner.keys; inflight, lease),
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
                script_keys!(
                    k; meta, ready, delayed, inflight, lease, dead, reasons, stats, signal, jobs,
                    ctl, progress, origin, minutes
                ),
                vec![
                    Value::from(id),
                    Value::from(token),
                    Value::from(ms_arg(delay)),
                    Value::from(sanitize(error)),
                    Value::from(if dead { "1" } else { "0" }),
                    Value::from(if release { "1" } else { "0" }),
                    Value::from(self.dead_cap_arg()),
                    Value::from(if self.inner.cfg.keep_results.is_some() {
                        k.done.as_str()
                    } else {
                        ""
                    }),
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
        self.queue.ack_one(&self.id, &self.token, Vec::new()).await
    }

    /// Acknowledges with a result: kept (MessagePack) for
    /// [`QueueConfig::keep_results`](crate::QueueConfig::keep_results) and returned by
    /// [`Queue::wait_result`] and [`Queue::job`]; without `keep_results` the result is dropped
    /// and this is [`Delivery::ack`].
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// for d in q.claim(1).await? {
    ///     let square = d.message() * d.message();
    ///     d.ack_with(&square).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ack_with<R: Serialize>(self, result: &R) -> Result<(), Error> {
        let bytes = if self.queue.inner.cfg.keep_results.is_some() {
            rmp_serde::to_vec_named(result).map_err(|e| Error::Encode(e.to_string()))?
        } else {
            Vec::new()
        };
        self.queue.ack_one(&self.id, &self.token, bytes).await
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
