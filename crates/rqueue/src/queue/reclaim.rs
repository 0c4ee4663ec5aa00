//! Taking back expired leases: [`Queue::reclaim`].

use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::core::{Queue, script_keys};
use crate::error::Error;

static RECLAIM: Script = Script::new(
    "rqueue_reclaim",
    concat!(
        include_str!("../lua/minutes.lua"),
        include_str!("../lua/errors.lua"),
        include_str!("../lua/reclaim.lua")
    ),
);

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
    /// Takes back up to `limit` deliveries whose lease ran out: each counts a stall and goes
    /// back to ready (keeping its place by id), or to the dead set with reason `stalled` after
    /// `max_stalls`; either way `stalled` joins its error history ([`Job::errors`](crate::Job::errors)) and the
    /// attempt counts as failed in [`Queue::throughput`]. Exact (a range query on lease deadlines) and safe to run from any number
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
                script_keys!(
                    k; meta, ready, inflight, lease, dead, reasons, stats, signal, jobs, minutes
                ),
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
}
