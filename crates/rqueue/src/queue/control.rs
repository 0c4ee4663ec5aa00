//! Queue-wide flow control kept in Redis: [`Queue::pause`] / [`Queue::resume`], a rate limit
//! ([`RateLimit`], [`Queue::set_rate_limit`]) and a concurrency limit
//! ([`Queue::set_concurrency_limit`]), all enforced inside the claim script for every worker
//! process at once.

use std::time::Duration;

use fred::types::Value;
use redis_conn::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::config::ms;
use super::core::{Queue, script_keys};
use crate::error::Error;

static CONTROL: Script = Script::new("rqueue_control", include_str!("../lua/control.lua"));

/// Most claims a queue hands out per window, across every worker process.
///
/// Enforced by the claim script as a **sliding log**: each claim is logged with the server's
/// time, and a claim at time `t` is allowed only while fewer than `max` claims were logged in
/// `(t − window, t]`. So *every* window of that length — not only aligned ones — holds at most
/// `max` claims, bursts included (a token bucket or GCRA lets up to twice as many through a
/// window that straddles a burst). The price is memory: one sorted-set entry per claim of the
/// current window (`max` entries at most, e.g. 16 KiB for 200), which is why `max` is capped
/// at [`RateLimit::MAX`]. A worker that finds the window used up sleeps until the oldest logged
/// claim leaves it: the time the script returns, not a poll.
///
/// ```
/// use std::time::Duration;
/// let limit = rqueue::RateLimit::per_second(200)?;
/// assert_eq!(limit.max(), 200);
/// assert_eq!(limit.window(), Duration::from_secs(1));
/// assert!(rqueue::RateLimit::new(0, Duration::from_secs(1)).is_err());
/// assert!(rqueue::RateLimit::new(10, Duration::ZERO).is_err());
/// # Ok::<(), rqueue::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    max: u64,
    window: Duration,
}

impl RateLimit {
    /// The largest `max` accepted (the log holds one entry per claim of the window).
    pub const MAX: u64 = 1_000_000;

    /// At most `max` claims in any `window` (at least 1 ms). [`Error::Config`] for a zero
    /// `max`, one above [`RateLimit::MAX`], or a window under 1 ms.
    ///
    /// ```
    /// let l = rqueue::RateLimit::new(30, std::time::Duration::from_secs(60))?;
    /// assert_eq!(l.max(), 30);
    /// # Ok::<(), rqueue::Error>(())
    /// ```
    pub fn new(max: u64, window: Duration) -> Result<RateLimit, Error> {
        if max == 0 || max > RateLimit::MAX {
            return Err(Error::Config(format!(
                "a rate limit allows 1 to {} claims per window, not {max} (pause the queue to stop claims)",
                RateLimit::MAX
            )));
        }
        if window < Duration::from_millis(1) || ms(window) > i64::MAX as u64 / 4 {
            return Err(Error::Config(format!(
                "a rate limit's window must be at least 1 ms and finite, not {window:?}"
            )));
        }
        Ok(RateLimit { max, window })
    }

    /// At most `max` claims per second.
    ///
    /// ```
    /// assert!(rqueue::RateLimit::per_second(50).is_ok());
    /// ```
    pub fn per_second(max: u64) -> Result<RateLimit, Error> {
        RateLimit::new(max, Duration::from_secs(1))
    }

    /// Most claims per window.
    ///
    /// ```
    /// assert_eq!(rqueue::RateLimit::per_second(5)?.max(), 5);
    /// # Ok::<(), rqueue::Error>(())
    /// ```
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The window's length.
    ///
    /// ```
    /// assert_eq!(rqueue::RateLimit::per_second(5)?.window().as_secs(), 1);
    /// # Ok::<(), rqueue::Error>(())
    /// ```
    pub fn window(&self) -> Duration {
        self.window
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Queue<T> {
    async fn control(&self, op: &str, args: [u64; 2]) -> Result<(), Error> {
        let k = &self.inner.keys;
        let _: i64 = CONTROL
            .run(
                self.inner.redis.pool(),
                script_keys!(k; ctl, ready, signal, rate, stats),
                vec![
                    Value::from(op),
                    Value::from(args[0].to_string()),
                    Value::from(args[1].to_string()),
                ],
            )
            .instrument(tracing::debug_span!("rqueue.control", queue = %self.inner.cfg.name, op))
            .await?;
        Ok(())
    }

    /// Pauses the queue for every worker process: from the next claim on, nothing is handed
    /// out (claims return nothing, blocking claims and workers wait on the wake-up signal
    /// instead of spinning). Messages already claimed keep their leases, which workers keep
    /// renewing, and finish normally; enqueues, retries, reclaims and the dead set work as
    /// usual. The state is kept in Redis (it survives worker and, with persistence, Redis
    /// restarts) and shown by [`QueueStats::paused`](crate::QueueStats::paused). Pausing a
    /// paused queue changes nothing.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// q.pause().await?;
    /// assert!(q.stats().await?.paused);
    /// q.resume().await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause(&self) -> Result<(), Error> {
        self.control("pause", [0, 0]).await?;
        self.inner.metrics.paused.set(1.0);
        Ok(())
    }

    /// Resumes a paused queue and wakes a blocked claimer at once (which passes the wake-up
    /// on while messages stay ready). Resuming a running queue changes nothing.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// q.resume().await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume(&self) -> Result<(), Error> {
        self.control("resume", [0, 0]).await?;
        self.inner.metrics.paused.set(0.0);
        Ok(())
    }

    /// Sets (or with `None` removes) the queue's rate limit, for every worker process: at
    /// most `limit.max()` claims in any `limit.window()` (see [`RateLimit`] for how). Kept in
    /// Redis; shown by [`QueueStats::rate_limit`](crate::QueueStats::rate_limit).
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// q.set_rate_limit(Some(rqueue::RateLimit::per_second(200)?)).await?;
    /// q.set_rate_limit(None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_rate_limit(&self, limit: Option<RateLimit>) -> Result<(), Error> {
        match limit {
            Some(l) => self.control("rate", [l.max, ms(l.window)]).await,
            None => self.control("norate", [0, 0]).await,
        }
    }

    /// Sets (or with `None` removes) the most messages in flight at once across every worker
    /// process (claimed and not yet acknowledged or given back, prefetched ones included).
    /// Claims beyond it get nothing; waiting claimers are woken when an in-flight message
    /// ends. [`Error::Config`] for 0 (use [`Queue::pause`]). Lowering it below the number in
    /// flight stops new claims until enough end; nothing running is cut short.
    ///
    /// ```no_run
    /// # async fn demo(q: rqueue::Queue<u64>) -> Result<(), rqueue::Error> {
    /// q.set_concurrency_limit(Some(5)).await?;
    /// assert_eq!(q.stats().await?.concurrency_limit, Some(5));
    /// # Ok(()) }
    /// ```
    pub async fn set_concurrency_limit(&self, max_in_flight: Option<u64>) -> Result<(), Error> {
        match max_in_flight {
            Some(0) => Err(Error::Config(
                "a concurrency limit must be at least 1 (pause the queue to stop claims)".into(),
            )),
            Some(m) if m > i64::MAX as u64 => {
                Err(Error::Config(format!("concurrency limit {m} is too large")))
            }
            Some(m) => self.control("conc", [m, 0]).await,
            None => self.control("noconc", [0, 0]).await,
        }
    }
}
