//! Lease arithmetic on the monotonic clock: the drift allowance, how long a confirmed lease is
//! trusted locally, instants that cannot overflow, and the microsecond offsets kept in atomics.

use std::time::{Duration, Instant};

/// The clock-drift allowance for a lease: `drift_ratio` of it plus 2 ms.
pub(crate) fn drift(lease: Duration, drift_ratio: f64) -> Duration {
    lease.mul_f64(drift_ratio) + Duration::from_millis(2)
}

/// How long a lease confirmed by a request sent at `sent` is trusted locally.
pub(crate) fn trusted_until(sent: Instant, lease: Duration, drift_ratio: f64) -> Instant {
    later(sent, lease.saturating_sub(drift(lease, drift_ratio)))
}

/// `at + d`, or far in the future when that overflows (`Duration::MAX` means "forever").
pub(crate) fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Microseconds since `epoch` (for atomics).
pub(crate) fn micros_since(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}
