//! The redkit operator console: what the `redkit` CLI and the web console (`redkit serve`,
//! or [`web::router`] mounted in a service) read and do.
//!
//! - **Discovery**: queues, lock namespaces and caches register themselves in one small
//!   Redis hash (`redkit:registry`, see [`redis_conn::registry`]) when they are created; the
//!   console lists them from there, never by scanning the keyspace (a bounded scan of
//!   queue-shaped keys is the fallback for data written before the registry existed).
//! - **Queues**: [`Console::queues`], [`Console::queue`], [`Console::messages`],
//!   [`Console::job`], [`Console::find_job`], replay / delete / purge of dead messages,
//!   pause / resume.
//! - **Locks**: [`Console::lock_namespaces`], [`Console::held_locks`] (owner, fence, lease
//!   left, fair line), [`Console::lock`], [`Console::force_release`] — read through dlock's
//!   own inspection.
//! - **Caches**: [`Console::caches`], [`Console::cache`] — hits, misses, builds, stale
//!   serves and breakers summed over every process (cache-core's shared stats).
//! - **Doctor**: [`Console::doctor`] runs redis-diag's checks; `/metrics` reuses redis-diag's
//!   exporter and appends the queue, lock and cache figures ([`metrics::render`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), redkit_console::Error> {
//! let config = redis_conn::RedisConfig::from_env().map_err(|e| redkit_console::Error::Usage(e.to_string()))?;
//! let console = redkit_console::Console::connect(config).await?;
//! for q in console.queues().await? {
//!     println!("{:<30} ready {:>6} dead {:>6}", q.queue, q.ready, q.dead);
//! }
//! # Ok(()) }
//! ```

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
