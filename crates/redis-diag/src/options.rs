//! What a diagnosis covers ([`Scope`]) and its thresholds ([`Options`]).

use std::time::Duration;

/// Which checks to run.
///
/// ```
/// assert_ne!(redis_diag::Scope::Security, redis_diag::Scope::Health);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Security and health.
    All,
    /// Security only.
    Security,
    /// Health only.
    Health,
}

/// Thresholds and probe settings.
///
/// ```
/// let o = redis_diag::Options::default();
/// assert_eq!(o.slow_command, std::time::Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// A slowlog entry at least this long is reported. Default 10 ms.
    pub slow_command: Duration,
    /// PINGs per node for the latency percentiles. Default 20.
    pub pings: u32,
    /// How long one probe may take. Default 3 s.
    pub probe_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            slow_command: Duration::from_millis(10),
            pings: 20,
            probe_timeout: Duration::from_secs(3),
        }
    }
}
