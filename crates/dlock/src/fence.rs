//! Fenced writes: the resource side of fencing tokens.
//!
//! A lease can end while its holder still runs (a pause, a stalled network): the holder then
//! writes after someone else acquired. Fencing stops that write at the resource: every write
//! carries the writer's token, the resource remembers the highest token it has seen, and
//! refuses smaller ones.
//!
//! For a Redis-resident resource, [`fenced_set`] does the check and the write in one script.
//! For SQL, keep a `fence` column and make the token part of the write:
//!
//! ```sql
//! UPDATE stock SET qty = qty - $2, fence = $3
//!  WHERE product_id = $1 AND fence <= $3;   -- 0 rows updated: a newer holder wrote first
//! ```
//!
//! (`<=` lets one holder write several times under one grant; use `<` for at most one write per
//! grant.)

use fred::types::Value;
use redis_conn::{RedisClient, Script};

use crate::error::Error;

static FENCED_SET: Script = Script::new("dlock_fenced_set", include_str!("lua/fenced_set.lua"));

/// The outcome of a fenced write.
///
/// ```
/// assert_ne!(dlock::Fenced::Written, dlock::Fenced::Rejected { highest: 9 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fenced {
    /// The value was written.
    Written,
    /// A newer token has written this resource: the write was refused.
    Rejected {
        /// The highest token seen by the resource.
        highest: u64,
    },
}

/// Writes `value` to the Redis key `key` only if `token` is at least the highest token any
/// writer has used on it (kept at `<key>:fence` in the same slot), in one script.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient, guard: dlock::Guard) -> Result<(), dlock::Error> {
/// match dlock::fenced_set(&redis, "{inventory}:sku-1", guard.fence(), "17").await? {
///     dlock::Fenced::Written => {}
///     dlock::Fenced::Rejected { highest } => eprintln!("stale holder: {highest} wrote since"),
/// }
/// # Ok(()) }
/// ```
pub async fn fenced_set(
    redis: &RedisClient,
    key: &str,
    token: u64,
    value: impl Into<Value>,
) -> Result<Fenced, Error> {
    // The highest token seen for `key` lives beside it, in the same slot.
    let Some(fence_key) = redis_conn::keys::sibling(key, "fence") else {
        return Err(Error::Config(format!(
            "key {key:?}: its fence key cannot share its slot"
        )));
    };
    let reply: Vec<i64> = FENCED_SET
        .run(
            redis.pool(),
            vec![key, fence_key.as_str()],
            vec![Value::from(token.to_string()), value.into()],
        )
        .await?;
    match reply.as_slice() {
        [1, ..] => Ok(Fenced::Written),
        [0, highest, ..] => Ok(Fenced::Rejected {
            highest: u64::try_from(*highest).unwrap_or(0),
        }),
        other => Err(Error::Unavailable(redis_conn::Error::Client(format!(
            "unexpected fenced write reply {other:?}"
        )))),
    }
}
