//! What a queue keeps about the past: per-minute counts ([`Minute`]) and every attempt's
//! error ([`AttemptError`]).

use serde::Serialize;

use crate::millis::ms;
use crate::payload::Payload;

/// Processed and failed deliveries of one minute.
///
/// ```
/// let m = redkit_console::Minute { minute_ms: 0, processed: 3, failed: 1 };
/// assert_eq!(m.processed + m.failed, 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Minute {
    /// The minute's start (Unix ms, server clock).
    pub minute_ms: u64,
    /// Deliveries acknowledged in it.
    pub processed: u64,
    /// Failed attempts in it (retries and deaths).
    pub failed: u64,
}

/// One failed attempt's error ([`JobView::errors`](crate::JobView::errors)).
///
/// ```
/// let e = redkit_console::AttemptError { at_ms: None, attempt: 1, error: "timeout".into() };
/// assert_eq!(e.attempt, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptError {
    /// When it failed (Unix ms), when recorded.
    pub at_ms: Option<u64>,
    /// Which attempt (1 = the first).
    pub attempt: u32,
    /// The error text.
    pub error: String,
}

/// The last `minutes` minutes of processed / failed counts, oldest first (the counters the
/// ack and nack scripts keep: `Queue::throughput`).
pub(crate) async fn per_minute(
    queue: &rqueue::Queue<Payload>,
    minutes: usize,
) -> Result<Vec<Minute>, rqueue::Error> {
    Ok(queue
        .throughput(minutes)
        .await?
        .into_iter()
        .map(|m| Minute {
            minute_ms: ms(m.minute),
            processed: m.processed,
            failed: m.failed,
        })
        .collect())
}

/// Every recorded attempt's error, newest first.
pub(crate) fn errors(job: &rqueue::Job<Payload>) -> Vec<AttemptError> {
    job.errors
        .iter()
        .map(|e| AttemptError {
            at_ms: e.at.map(ms),
            attempt: e.attempt,
            error: e.error.clone(),
        })
        .collect()
}
