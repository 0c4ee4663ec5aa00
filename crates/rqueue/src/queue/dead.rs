//! The dead set: [`DeadLetter`], reading it ([`Queue::dead_letters`]), replaying
//! ([`Queue::replay`], [`Queue::replay_all`]) and purging ([`Queue::purge_dead`]) it.

use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::attempts::{self, AttemptError};
use super::core::{Queue, script_keys};
use crate::error::Error;

static REPLAY: Script = Script::new("rqueue_replay", include_str!("../lua/replay.lua"));
static PURGE: Script = Script::new("rqueue_purge", include_str!("../lua/purge.lua"));

/// Dead messages handled per script call by [`Queue::replay_all`] and [`Queue::purge_dead`]:
/// each call is atomic and bounded.
const DEAD_BATCH: usize = 1000;

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
    /// Why: the last error, `stalled`, `decode: …`, or the reason given to `dead()` (the
    /// newest of [`DeadLetter::errors`]).
    pub reason: String,
    /// The errors of its failed attempts, newest first (the last 10, at most 8 KiB in all).
    pub errors: Vec<AttemptError>,
    /// The message, or why its payload does not decode as `T` (one payload that does not
    /// decode does not fail the page).
    pub message: Result<T, String>,
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
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
            .map(|(id, died_at, raw, message)| {
                let errors = attempts::parse(&raw);
                DeadLetter {
                    id,
                    died_at,
                    reason: errors.first().map(|e| e.error.clone()).unwrap_or_default(),
                    errors,
                    message,
                }
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
        while total < start {
            let n = self.replay_oldest(DEAD_BATCH).await?;
            total += n;
            if n < DEAD_BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }

    /// Replays the `max` oldest dead messages (at most 1,000) in one atomic script; returns
    /// how many. A building block for replaying a large dead set with progress.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// let n = q.replay_oldest(100).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn replay_oldest(&self, max: usize) -> Result<u64, Error> {
        let batch = max.clamp(1, DEAD_BATCH).to_string();
        self.replay_args(vec!["oldest", batch.as_str()]).await
    }

    async fn replay_args(&self, args: Vec<&str>) -> Result<u64, Error> {
        let k = &self.inner.keys;
        REPLAY
            .run(
                self.inner.redis.pool(),
                script_keys!(k; meta, ready, dead, reasons, stats, signal),
                args,
            )
            .instrument(tracing::debug_span!("rqueue.replay", queue = %self.inner.cfg.name))
            .await
            .map_err(Error::from)
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
                    script_keys!(k; dead, jobs, meta, reasons, stats, progress, origin),
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
}
