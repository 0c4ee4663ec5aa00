//! What a queue keeps about the past: per-minute counts and every attempt's error.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::payload::Payload;
use crate::queues::{AttemptError, Minute};

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
