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

/// Names the command a script was refused (`NOPERM` inside a script): Redis gives only the
/// line (`@user_script:<line>`), redis-conn adds the script and its keys. Other errors pass
/// through unchanged.
pub(crate) fn name_refusal(e: redis_conn::Error, script: &redis_conn::Script) -> redis_conn::Error {
    match e {
        redis_conn::Error::NoPermission(msg) => match script_command(&msg, script.source()) {
            Some(command) => redis_conn::Error::NoPermission(format!("{msg} [command {command}]")),
            None => redis_conn::Error::NoPermission(msg),
        },
        e => e,
    }
}

/// The command called on the script line a refusal names (`... on @user_script:12.`).
fn script_command(msg: &str, source: &str) -> Option<String> {
    let (_, at) = msg.split_once("@user_script:")?;
    let line: usize = at
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    let text = source.lines().nth(line.checked_sub(1)?)?;
    let (_, call) = text.split_once("redis.call(")?;
    let name: String = call
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (!name.is_empty()).then(|| name.to_ascii_uppercase())
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

#[cfg(test)]
mod tests {
    use super::*;

    static S: redis_conn::Script = redis_conn::Script::new(
        "demo",
        "local a = 1\nredis.call('SET', KEYS[1], 1)\nredis.call('PEXPIRE', KEYS[1], 5)",
    );

    fn named(msg: &str) -> String {
        name_refusal(redis_conn::Error::NoPermission(msg.into()), &S).to_string()
    }

    #[test]
    fn refusals_inside_a_script_name_the_command_of_its_line() {
        let cmd = named(
            "ERR The user executing the script can't run this command or subcommand script: 95d0, on @user_script:3.",
        );
        assert!(cmd.ends_with("[command PEXPIRE]"), "{cmd}");
        let top = named("NOPERM this user has no permissions to run the 'evalsha' command");
        assert_eq!(
            top,
            "permission denied: NOPERM this user has no permissions to run the 'evalsha' command"
        );
        let other = name_refusal(redis_conn::Error::Io("x".into()), &S);
        assert!(matches!(other, redis_conn::Error::Io(_)));
    }
}
