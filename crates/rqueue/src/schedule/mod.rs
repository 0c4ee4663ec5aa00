//! Periodic jobs: a [`Schedule`] (a fixed interval or a cron pattern) stored in Redis next to
//! its queue, and the [`Scheduler`] that enqueues its ticks exactly once, however many
//! schedulers run.
//!
//! `def` holds the schedule, its stored form and the tick arithmetic (which due ticks are
//! enqueued or skipped); `scheduler` the Redis side: storing, listing, and the run loop.
//!
//! Keys, all under the queue's hash tag (`<namespace>:{<queue>}`):
//!
//! | key | type | content |
//! |---|---|---|
//! | `…:schedules` | hash | name → definition (`rqs1\|<kind>\|<interval or pattern>\|<time zone>\|<missed>\|<priority>\|<payload>`) |
//! | `…:sched_last` | hash | name → last handled tick (server ms) |
//! | `…:origin` | hash | job id → `<tick ms>\|<schedule name>`, for each job a schedule enqueued |

mod def;
mod scheduler;

pub use def::{MAX_CATCH_UP, Missed, Schedule};
pub use scheduler::{ScheduleInfo, Scheduler, SchedulerConfig, SchedulerReport};
