//! A queue's settings ([`QueueConfig`]), the retry [`Backoff`], and durations as the scripts
//! take them (milliseconds).

use std::time::Duration;

/// Exponential backoff between retries: `base · 2^(failures − 1)`, capped at `max`, with
/// "equal jitter" (a random point in the upper half) so retries of many messages spread out.
///
/// ```
/// let b = rqueue::Backoff::default();
/// let d = b.delay(3);
/// assert!(d >= b.base * 2 && d <= b.base * 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// Delay after the first failure (before jitter). Default 1 s.
    pub base: Duration,
    /// Longest delay. Default 5 min.
    pub max: Duration,
    /// Spread delays over the upper half of each step. Default true.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: true,
        }
    }
}

impl Backoff {
    /// As stored after a message's meta: `|base_ms:max_ms:jitter`.
    pub(super) fn encode(&self) -> String {
        format!(
            "|{}:{}:{}",
            ms(self.base),
            ms(self.max),
            u8::from(self.jitter)
        )
    }

    /// The inverse of [`Backoff::encode`]; `None` for the empty suffix (the queue's backoff)
    /// or anything malformed.
    pub(super) fn decode(s: &str) -> Option<Backoff> {
        let mut parts = s.strip_prefix('|')?.split(':');
        let base = parts.next()?.parse().ok()?;
        let max = parts.next()?.parse().ok()?;
        let jitter = parts.next()? == "1";
        Some(Backoff {
            base: Duration::from_millis(base),
            max: Duration::from_millis(max),
            jitter,
        })
    }

    /// The delay before the retry that follows `failures` failures (≥ 1).
    ///
    /// ```
    /// let mut b = rqueue::Backoff::default();
    /// b.jitter = false;
    /// assert_eq!(b.delay(1), b.base);
    /// assert_eq!(b.delay(60), b.max);
    /// ```
    pub fn delay(&self, failures: u32) -> Duration {
        let step = failures.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << step).min(self.max);
        if self.jitter {
            full / 2 + full.mul_f64(fastrand::f64() / 2.0)
        } else {
            full
        }
    }
}

/// Settings of one queue.
///
/// ```
/// let mut cfg = rqueue::QueueConfig::new("emails");
/// cfg.max_attempts = 10;
/// assert_eq!(cfg.lease.as_secs(), 30);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Key prefix: the queue's keys are `<namespace>:{<name>}:*`. Default `rq`.
    pub namespace: String,
    /// The queue's name (its hash tag): no braces.
    pub name: String,
    /// How long a delivery is leased to its worker before it can be reclaimed. Default 30 s.
    pub lease: Duration,
    /// Failures (nacks) after which a message goes to the dead set. Default 5.
    pub max_attempts: u32,
    /// Delay between retries.
    pub backoff: Backoff,
    /// Reclaims (expired leases) after which a message goes to the dead set. Default 3.
    pub max_stalls: u32,
    /// Most due delayed messages moved to ready by one claim (bounded work per call).
    /// Default 1000.
    pub promote_limit: u32,
    /// Most messages kept in the dead set. `None` (the default): no cap — the dead set only
    /// shrinks by [`Queue::replay`](crate::Queue::replay) /
    /// [`Queue::purge_dead`](crate::Queue::purge_dead), so watch
    /// [`QueueStats::dead`](crate::QueueStats::dead). With a cap, a message dying into a full
    /// dead set deletes the oldest dead ones, each counted in
    /// [`QueueStats::dead_trimmed`](crate::QueueStats::dead_trimmed) (never silently).
    pub dead_cap: Option<u64>,
    /// Acknowledged messages kept (newest first, with their payloads) for inspection with
    /// [`Queue::completed`](crate::Queue::completed); older ones are deleted as new ones
    /// complete. Default 0: a message is deleted when it is acknowledged.
    pub keep_completed: u64,
    /// How long a completed job's record — its result (what the handler returned, or
    /// [`Delivery::ack_with`](crate::Delivery::ack_with)), progress, times and worker — is
    /// kept for [`Queue::job`](crate::Queue::job) and
    /// [`Queue::wait_result`](crate::Queue::wait_result). Each record is its own key under the
    /// queue's hash tag, expiring by itself after this TTL. Default `None`: nothing is kept,
    /// and a completed job is unknown to `job` (unless `keep_completed` keeps it).
    pub keep_results: Option<Duration>,
}

impl QueueConfig {
    /// Defaults for the queue `name`.
    ///
    /// ```
    /// assert_eq!(rqueue::QueueConfig::new("q").max_stalls, 3);
    /// ```
    pub fn new(name: impl Into<String>) -> QueueConfig {
        QueueConfig {
            namespace: "rq".into(),
            name: name.into(),
            lease: Duration::from_secs(30),
            max_attempts: 5,
            backoff: Backoff::default(),
            max_stalls: 3,
            promote_limit: 1000,
            dead_cap: None,
            keep_completed: 0,
            keep_results: None,
        }
    }
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds as a Redis integer argument.
pub(super) fn ms_arg(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
