#![doc = include_str!("../README.md")]

mod actions;
mod caches;
mod console;
mod error;
pub mod exit;
mod history;
mod jobs;
mod locks;
mod messages;
pub mod metrics;
mod millis;
mod payload;
mod queue_ref;
mod queues;
pub mod web;

pub use caches::{CacheProcess, CacheView};
pub use console::Console;
pub use error::Error;
pub use history::{AttemptError, Minute};
pub use jobs::JobView;
pub use locks::{HeldLocksView, LockNamespace, LockView};
pub use messages::{List, MessageRow};
pub use payload::Payload;
pub use queue_ref::QueueRef;
pub use queues::QueueSummary;
