#![doc = include_str!("../README.md")]

mod acl;
mod client;
mod clock;
mod config;
mod error;
pub mod fence;
mod guard;
mod hold;
mod janitor;
mod keys;
mod local;
mod redlock;
mod release;
mod scripts;
mod shared;
mod state;
mod stats;
mod sync;
mod wakeup;
mod watchdog;

pub use acl::acl_rule;
pub use client::{HeldLocks, LockInfo, LockKind, LockRequest, Owner};
pub use config::{LockConfig, Replication};
pub use error::{Error, LostReason};
pub use fence::{Fenced, fenced_set};
pub use guard::Released;
pub use redlock::{Redlock, RedlockGuard};
pub use shared::{RwLock, Semaphore};
pub use state::{Guard, LockClient};
pub use stats::Stats;
