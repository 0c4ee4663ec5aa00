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
}

impl From<fred::error::Error> for Error {
    fn from(e: fred::error::Error) -> Error {
        Error::Redis(e.into())
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

#[cfg(test)]
mod tests {
    use super::*;

    static S: redis_conn::Script = redis_conn::Script::new(
        "demo",
        "local a = 1\nredis.call('ZADD', KEYS[1], 1, 'x')\nredis.call('LPUSH', KEYS[2], 1)",
    );

    #[test]
    fn refusals_inside_a_script_name_the_command_of_its_line() {
        let named =
            |msg: &str| name_refusal(redis_conn::Error::NoPermission(msg.into()), &S).to_string();
        let cmd = named(
            "ERR The user executing the script can't run this command or subcommand script: 95d0, on @user_script:3.",
        );
        assert!(cmd.ends_with("[command LPUSH]"), "{cmd}");
        let top = named("NOPERM this user has no permissions to run the 'evalsha' command");
        assert!(!top.contains("[command"), "{top}");
        let other = name_refusal(redis_conn::Error::Io("x".into()), &S);
        assert!(matches!(other, redis_conn::Error::Io(_)));
    }
}
