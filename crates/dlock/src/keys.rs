//! How locks are named in Redis: the checks on a name, the keys that live beside a lock's key
//! (same hash tag, so the same slot) and the pooled connection every call about one lock uses.

use redis_conn::RedisClient;

use crate::error::Error;

/// Names must be non-empty, free of braces (they become the hash tag), of line breaks (wake-up
/// messages are split on them) and must not start with `*` (broadcast wake-ups).
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains(['{', '}', '\n']) || name.starts_with('*') {
        return Err(Error::Config(format!(
            "name {name:?} must be non-empty, free of braces and line breaks, and not start with '*'"
        )));
    }
    Ok(())
}

/// The fair queue (list of waiter ids) and its entry deadlines (zset) of a lock key.
pub(crate) fn queue_keys(key: &str) -> (String, String) {
    (format!("{key}:queue"), format!("{key}:queue:ttl"))
}

/// The pooled connection for every call about one lock, chosen by the lock's hash slot. Redis
/// runs one connection's commands in order, so the janitor's give-back of a cancelled attempt
/// can never overtake the attempt itself (on another connection it could, and the late grant
/// would then be held by nobody until its lease ran out).
pub(crate) fn conn<'a>(redis: &'a RedisClient, key: &str) -> &'a fred::clients::Client {
    redis.for_key(key)
}

/// The "someone waits" flag of a lock key (same hash tag).
pub(crate) fn waiting_key(key: &str) -> String {
    format!("{key}:waiting")
}
