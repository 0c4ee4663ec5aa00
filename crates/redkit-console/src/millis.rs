//! Times as the console shows them: Unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` in Unix milliseconds (0 before the epoch, saturating far after it).
pub(crate) fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// [`ms`] of an optional time.
pub(crate) fn opt_ms(t: Option<SystemTime>) -> Option<u64> {
    t.map(ms)
}
