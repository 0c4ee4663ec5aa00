//! The cache-aside core: `get`, `set`, `delete`, `get_or_set` with in-process single-flight,
//! negative caching, TTL jitter and graceful degradation when Redis fails.
//!
//! One concept per file, read from the bottom up: `config` (settings), `stats`
//! (counters), `shared` (the counters summed across processes in Redis), `flight` (in-process single-flight), `inner` (the `Cache` handle, its
//! shared state and the Redis helpers every path uses), `lease` (the cross-process rebuild
//! lease and its wake-ups), then the operations: `plain` (`get` / `set` / `delete`),
//! `lookup` (the lookups that build), `batch`, `invalidate` and `function`.

mod batch;
mod config;
#[cfg(feature = "json")]
mod finite;
mod flight;
#[cfg(feature = "json")]
mod function;
mod inner;
mod invalidate;
mod lease;
mod lookup;
mod plain;
mod shared;
mod stats;

pub use config::{CacheConfig, Lookup};
#[cfg(feature = "json")]
pub use function::function_key;
pub use inner::Cache;
pub use shared::{ProcessReport, SharedStats};
pub use stats::CacheStats;
