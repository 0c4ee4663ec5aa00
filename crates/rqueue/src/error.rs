//! Typed errors of the queue.

/// What can go wrong with a queue operation.
///
/// ```
/// let e = rqueue::Error::LeaseLost { id: "0001764064000123-000000".into() };
/// assert!(e.to_string().contains("lease"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis failed or could not be reached, or refused the command. A refusal by the Redis
    /// ACL is `Error::Redis(redis_conn::Error::NoPermission(_))`: its message names the refused
    /// command, or the script and its keys (see [`acl_rule`](crate::acl_rule)); Redis refuses
    /// before the script runs, so the queue is as it was.
    #[error(transparent)]
    Redis(#[from] redis_conn::Error),
    /// The delivery's lease was reclaimed (it ran out, or the message was given to another
    /// worker): this handle can no longer acknowledge, retry or extend it.
    #[error("the lease of message {id} was lost (reclaimed after it ran out)")]
    LeaseLost {
        /// The message id.
        id: String,
    },
    /// A message could not be encoded.
    #[error("message could not be encoded: {0}")]
    Encode(String),
    /// Invalid configuration or options.
    #[error("invalid queue configuration: {0}")]
    Config(String),
    /// Redis answered something this version does not understand.
    #[error("unexpected reply from Redis: {0}")]
    Protocol(String),
    /// The queue has no job with this id (never had one, it completed and no record is kept,
    /// it was removed, or the id is malformed).
    #[error("no job {id} in this queue")]
    UnknownJob {
        /// The id asked for.
        id: String,
    },
    /// The job is leased to a worker: it cannot be cancelled or removed now.
    #[error("job {id} is running (leased to a worker); it was left alone")]
    JobActive {
        /// The job's id.
        id: String,
    },
    /// Only waiting or delayed jobs can be cancelled (remove dead or completed ones with
    /// [`Queue::remove`](crate::Queue::remove)).
    #[error("job {id} is {state}: only waiting or delayed jobs can be cancelled")]
    NotCancellable {
        /// The job's id.
        id: String,
        /// Its state (`dead` or `completed`).
        state: String,
    },
    /// The job waited for died (its last failure, a stall limit or an undecodable payload).
    #[error("job {id} died: {reason}")]
    JobDead {
        /// The job's id.
        id: String,
        /// Why.
        reason: String,
    },
    /// The job waited for did not finish in time (it was not touched).
    #[error("job {id} did not finish in time")]
    WaitTimeout {
        /// The job's id.
        id: String,
    },
    /// The job completed but no result was kept for it.
    #[error("job {id} completed without a kept result")]
    NoResult {
        /// The job's id.
        id: String,
    },
    /// A schedule that cannot be stored: a malformed cron pattern, an unknown time zone, a
    /// time zone on an interval schedule, an interval below 1 ms, `Missed::CatchUp(0)`, or a
    /// schedule name that is empty or has braces. Nothing was stored.
    ///
    /// ```
    /// let e = rqueue::Schedule::cron("not a pattern").unwrap_err();
    /// assert!(matches!(e, rqueue::Error::InvalidSchedule { name: None, .. }));
    /// ```
    #[error("invalid schedule{}: {reason}", schedule_label(.name.as_deref()))]
    InvalidSchedule {
        /// The schedule's name, when the error came from
        /// [`Scheduler::add`](crate::Scheduler::add) (`None` from building a
        /// [`Schedule`](crate::Schedule)).
        name: Option<String>,
        /// What is wrong.
        reason: String,
    },
}

fn schedule_label(name: Option<&str>) -> String {
    name.map(|n| format!(" {n:?}")).unwrap_or_default()
}

impl From<fred::error::Error> for Error {
    fn from(e: fred::error::Error) -> Error {
        Error::Redis(e.into())
    }
}
