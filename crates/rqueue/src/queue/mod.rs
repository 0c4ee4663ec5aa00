//! The queue client, its enqueue builder and deliveries.
//!
//! `core` holds the [`Queue`] handle, its shared state and key set (`config` the settings it
//! is made from); every other file adds the operations of one concern to it.

mod attempts;
pub(crate) mod claim;
mod completed;
mod config;
mod control;
pub(crate) mod core;
mod dead;
pub(crate) mod delivery;
mod enqueue;
mod job;
mod page;
#[cfg(test)]
mod properties;
mod reclaim;
mod stats;
mod throughput;

pub use self::core::Queue;
pub use attempts::AttemptError;
pub use completed::Completed;
pub use config::{Backoff, QueueConfig};
pub use control::RateLimit;
pub use dead::DeadLetter;
pub use delivery::Delivery;
pub use enqueue::Enqueue;
pub use job::{Job, JobState, Progress, ScheduleTick};
pub(crate) use job::{Reporter, token_parts};
pub use stats::QueueStats;
pub use throughput::MinuteCount;
