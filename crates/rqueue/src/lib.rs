#![doc = include_str!("../README.md")]

mod acl;
mod durability;
mod error;
mod queue;
mod schedule;
mod worker;

pub use acl::{acl_rule, acl_rule_in};
pub use durability::Durability;
pub use error::Error;
pub use queue::{
    AttemptError, Backoff, Completed, DeadLetter, Delivery, Enqueue, Job, JobState, MinuteCount,
    Progress, Queue, QueueConfig, QueueStats, RateLimit, ScheduleTick,
};
pub use schedule::{
    MAX_CATCH_UP, Missed, Schedule, ScheduleInfo, Scheduler, SchedulerConfig, SchedulerReport,
};
pub use worker::{JobInfo, Worker, WorkerConfig, WorkerReport};
