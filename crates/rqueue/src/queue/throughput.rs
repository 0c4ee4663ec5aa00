//! Processed and failed per minute over the last hour: [`MinuteCount`] and
//! [`Queue::throughput`], read from the counters the ack, nack and reclaim scripts keep
//! (`lua/minutes.lua`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::types::Value;
use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::core::{Queue, script_keys};
use crate::error::Error;

static THROUGHPUT: Script = Script::new("rqueue_throughput", include_str!("../lua/throughput.lua"));

/// Minutes the counters are kept for (older ones are dropped as new minutes start).
const KEPT_MINUTES: usize = 60;

/// What a queue did in one minute (server clock), from [`Queue::throughput`].
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
/// let last = q.throughput(1).await?;
/// println!("{} processed, {} failed this minute", last[0].processed, last[0].failed);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct MinuteCount {
    /// The start of the minute (server clock).
    pub minute: SystemTime,
    /// Deliveries acknowledged in it.
    pub processed: u64,
    /// Failed attempts in it: failures given back for a retry, deaths (including
    /// [`Delivery::dead`](crate::Delivery::dead) and undecodable payloads) and expired leases
    /// taken back by [`Queue::reclaim`]. Releases at a worker's shutdown are not failures.
    pub failed: u64,
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
    /// Processed and failed counts of the last `minutes` minutes (at most 60, the counters
    /// kept), oldest first, one entry per minute with zeros for quiet ones, the current
    /// (unfinished) minute last. One round trip. The counters are queue-wide (every client's
    /// acks and failures), kept in Redis (`<namespace>:{<name>}:minutes`, which expires two
    /// hours after the last activity).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<String>) -> Result<(), rqueue::Error> {
    /// let hour = q.throughput(60).await?;
    /// let done: u64 = hour.iter().map(|m| m.processed).sum();
    /// println!("{done} processed in the last hour");
    /// # Ok(()) }
    /// ```
    pub async fn throughput(&self, minutes: usize) -> Result<Vec<MinuteCount>, Error> {
        let n = minutes.clamp(1, KEPT_MINUTES);
        let reply: Vec<Value> = THROUGHPUT
            .run(
                self.inner.redis.pool(),
                script_keys!(self.inner.keys; minutes),
                vec![n as i64],
            )
            .instrument(tracing::debug_span!("rqueue.throughput", queue = %self.inner.cfg.name, n))
            .await?;
        let now = reply
            .first()
            .and_then(Value::as_i64)
            .ok_or_else(|| Error::Protocol(format!("throughput reply {reply:?}")))?;
        self.inner.saw_server_ms(now);
        let counts = reply.get(1..).unwrap_or_default();
        if counts.len() != 2 * n {
            return Err(Error::Protocol(format!("throughput reply {reply:?}")));
        }
        let current = u64::try_from(now).unwrap_or(0) / 60_000;
        let count = |v: &Value| v.as_u64().unwrap_or(0);
        Ok(counts
            .chunks(2)
            .enumerate()
            .map(|(i, pf)| MinuteCount {
                minute: UNIX_EPOCH
                    + Duration::from_secs((current + 1 + i as u64).saturating_sub(n as u64) * 60),
                processed: count(&pf[0]),
                failed: count(&pf[1]),
            })
            .collect())
    }
}
