//! [`NearConfig`]: the near cache's settings (the type exists with or without the
//! `near-cache` feature, so configurations compile the same; without it, a cache configured
//! with one is refused at `Cache::new`).

use std::time::Duration;

/// Near-cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearConfig {
    /// Most entries kept in memory.
    pub max_entries: u64,
    /// Longest an entry is served from memory, whatever Redis says.
    pub ttl: Duration,
}

impl NearConfig {
    /// A near cache of `max_entries` entries, each kept at most `ttl`.
    ///
    /// ```
    /// let near = cache_core::NearConfig::new(10_000, std::time::Duration::from_secs(30));
    /// assert_eq!(near.max_entries, 10_000);
    /// ```
    pub fn new(max_entries: u64, ttl: Duration) -> NearConfig {
        NearConfig { max_entries, ttl }
    }
}
