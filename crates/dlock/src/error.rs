//! Typed errors of every lock operation.

use std::time::Duration;

/// Why a lock operation failed.
///
/// ```
/// let e = dlock::Error::Timeout { name: "orders".into(), waited: std::time::Duration::from_secs(1) };
/// assert!(e.to_string().contains("orders"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lock stayed held by someone else for the whole wait.
    #[error("lock {name:?} still held by another owner after waiting {waited:?}")]
    Timeout {
        /// Lock name.
        name: String,
        /// How long the call waited.
        waited: Duration,
    },
    /// Redis could not be reached or failed; whether the lock is held is unknown, so the
    /// operation did not grant it.
    #[error("lock service unavailable: {0}")]
    Unavailable(#[source] redis_conn::Error),
    /// The Redis ACL user lacks a right the operation needs: the inner
    /// [`redis_conn::Error::NoPermission`] names the refused command, the keys or the channel.
    /// Redis refuses before anything is written (a script's command and keys are checked
    /// before it runs, and the release scripts check the wake-up channel before they write),
    /// so holds are as they were: a lock held before is still held, with its fence.
    /// [`acl_rule`](crate::acl_rule) gives the rule with every right dlock needs.
    ///
    /// ```
    /// let e = dlock::Error::from(redis_conn::Error::NoPermission("no 'evalsha'".into()));
    /// assert!(matches!(e, dlock::Error::NoPermission(redis_conn::Error::NoPermission(_))));
    /// assert!(e.to_string().contains("evalsha") && e.to_string().contains("acl_rule"));
    /// ```
    #[error("{0}; dlock::acl_rule(namespace) gives the ACL rule with every right dlock needs")]
    NoPermission(#[source] redis_conn::Error),
    /// The grant reached fewer replicas than required (`WAIT`), so it was given back.
    #[error("lock {name:?} acknowledged by {acked} replica(s), {wanted} required; released")]
    NotReplicated {
        /// Lock name.
        name: String,
        /// Replicas that acknowledged the grant in time.
        acked: u32,
        /// Replicas required.
        wanted: u32,
    },
    /// The lease ran out or was refused before the operation finished; someone else may hold
    /// the lock now.
    #[error("lease on lock {name:?} lost: {reason}")]
    LeaseLost {
        /// Lock name.
        name: String,
        /// What happened.
        reason: LostReason,
    },
    /// The hold is not (or no longer) in Redis: released before, or expired.
    #[error("lock {name:?} is not held by this owner")]
    NotOwner {
        /// Lock name.
        name: String,
    },
    /// Fewer than a quorum of independent servers granted the lock (Redlock).
    #[error("lock {name:?}: {granted} of {servers} servers granted it, {quorum} needed")]
    NoQuorum {
        /// Lock name.
        name: String,
        /// Servers that granted it.
        granted: usize,
        /// Servers asked.
        servers: usize,
        /// Grants needed.
        quorum: usize,
    },
    /// Invalid settings or arguments.
    #[error("invalid lock configuration: {0}")]
    Config(String),
}

impl From<redis_conn::Error> for Error {
    /// A permission refusal becomes [`Error::NoPermission`], anything else
    /// [`Error::Unavailable`].
    fn from(e: redis_conn::Error) -> Error {
        match e {
            e @ redis_conn::Error::NoPermission(_) => Error::NoPermission(e),
            e => Error::Unavailable(e),
        }
    }
}

/// Why a lease was lost.
///
/// ```
/// assert_eq!(dlock::LostReason::Refused.to_string(), "renewal refused: the hold is gone from Redis");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LostReason {
    /// A renewal found the hold gone (it expired, or the key was deleted).
    #[error("renewal refused: the hold is gone from Redis")]
    Refused,
    /// The local deadline (lease minus drift allowance since the last confirmed renewal)
    /// passed without a confirmed renewal, e.g. Redis unreachable or this process stalled.
    #[error("lease deadline passed without a confirmed renewal")]
    Deadline,
}
