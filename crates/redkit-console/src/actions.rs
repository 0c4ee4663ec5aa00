//! What an operator does to a queue: replay, delete or purge dead messages, pause and
//! resume.

use crate::console::Console;
use crate::error::Error;
use crate::queue_ref::QueueRef;

/// Dead messages replayed per atomic script call.
const BATCH: usize = 1000;

impl Console {
    /// Moves the given dead messages back to ready; returns how many were dead.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// let n = c.replay(&q, &["1764064000123-000001".to_string()]).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn replay(&self, q: &QueueRef, ids: &[String]) -> Result<u64, Error> {
        let queue = self.existing(q).await?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        Ok(queue.replay(&ids).await?)
    }

    /// Replays the whole dead set, in atomic batches of up to 1,000, calling `progress` with
    /// the running total after each batch; returns the total.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// let n = c.replay_all(&q, |done| eprintln!("{done} replayed")).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn replay_all(
        &self,
        q: &QueueRef,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<u64, Error> {
        let queue = self.existing(q).await?;
        // Bounded by the size at the start: messages that die again meanwhile (a replayed
        // poison message) wait for the next call instead of keeping this one busy forever.
        let start = queue.stats().await?.dead;
        let mut total = 0;
        while total < start {
            let n = queue.replay_oldest(BATCH).await?;
            total += n;
            progress(total);
            if n < BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }

    /// Replays every dead message of every known queue; returns (queue, replayed) pairs for
    /// the queues that had any.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console) -> Result<(), redkit_console::Error> {
    /// for (q, n) in c.replay_everything().await? { println!("{q}: {n}"); }
    /// # Ok(()) }
    /// ```
    pub async fn replay_everything(&self) -> Result<Vec<(String, u64)>, Error> {
        let mut out = Vec::new();
        for r in self.queue_refs().await? {
            let n = self.replay_all(&r, |_| {}).await?;
            if n > 0 {
                out.push((r.to_string(), n));
            }
        }
        Ok(out)
    }

    /// Deletes the given dead messages for good; returns how many were deleted. Messages that
    /// are not dead are left alone (they count as not deleted).
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// c.delete_dead(&q, &["1764064000123-000001".to_string()]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_dead(&self, q: &QueueRef, ids: &[String]) -> Result<u64, Error> {
        let queue = self.existing(q).await?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        Ok(queue.delete_dead(&ids).await?)
    }

    /// Deletes the whole dead set; returns how many messages were deleted.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// let n = c.purge_dead(&q).await?;
    /// # let _ = n; Ok(()) }
    /// ```
    pub async fn purge_dead(&self, q: &QueueRef) -> Result<u64, Error> {
        Ok(self.existing(q).await?.purge_dead().await?)
    }

    /// Pauses (`true`) or resumes (`false`) a queue.
    ///
    /// ```no_run
    /// # async fn demo(c: redkit_console::Console, q: redkit_console::QueueRef) -> Result<(), redkit_console::Error> {
    /// c.set_paused(&q, true).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_paused(&self, q: &QueueRef, paused: bool) -> Result<(), Error> {
        let queue = self.existing(q).await?;
        if paused {
            queue.pause().await?;
        } else {
            queue.resume().await?;
        }
        Ok(())
    }
}
