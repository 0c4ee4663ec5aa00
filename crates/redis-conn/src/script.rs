//! Lua scripts defined once and run by `EVALSHA`, falling back to `EVAL` on `NOSCRIPT`.
//!
//! The fallback runs on the node that answered `NOSCRIPT` (same keys, same routing), which
//! also puts the script in that node's cache. So a script keeps working on every cluster
//! primary, after `SCRIPT FLUSH`, after a restart and after a failover, with no start-up
//! loading step to forget.

use std::sync::OnceLock;

use fred::interfaces::LuaInterface;
use fred::types::{FromValue, Key, MultipleKeys, MultipleValues, Value};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::keys::slot;

/// A Lua script, defined once (usually as a `static` next to an `include_str!`'d `.lua` file).
///
/// All keys must be passed in `KEYS` and share a cluster slot (one hash tag); [`Script::run`]
/// rejects keys in different slots before sending, on every topology, so a script that works
/// on standalone also works on Cluster.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
/// use redis_conn::Script;
///
/// static INCR_IF_EXISTS: Script = Script::new(
///     "incr_if_exists",
///     "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end return nil",
/// );
///
/// let n: Option<i64> = INCR_IF_EXISTS.run(redis.pool(), vec!["app:{counter}:hits"], Vec::<String>::new()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Script {
    name: &'static str,
    source: &'static str,
    sha1: OnceLock<String>,
}

impl Script {
    /// Defines a script; `name` appears in spans and errors.
    pub const fn new(name: &'static str, source: &'static str) -> Script {
        Script {
            name,
            source,
            sha1: OnceLock::new(),
        }
    }

    /// The script's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The script's source.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// The SHA1 the server knows the script by.
    ///
    /// ```
    /// static S: redis_conn::Script = redis_conn::Script::new("ret1", "return 1");
    /// assert_eq!(S.sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    /// ```
    pub fn sha1(&self) -> &str {
        self.sha1.get_or_init(|| fred::util::sha1_hash(self.source))
    }

    /// Runs the script with `EVALSHA`; on `NOSCRIPT` runs it with `EVAL` on the same node.
    ///
    /// Errors: [`Error::CrossSlot`] when keys map to different slots; server errors classified
    /// as in [`Error`].
    pub async fn run<R, C, K, V>(&self, client: &C, keys: K, args: V) -> Result<R>
    where
        R: FromValue,
        C: LuaInterface + Sync,
        K: Into<MultipleKeys>,
        V: TryInto<MultipleValues>,
        V::Error: Into<fred::error::Error>,
    {
        let keys = keys.into().inner();
        check_same_slot(self.name, &keys)?;
        self.run_any_slots(client, keys, args).await
    }

    /// [`Script::run`] without the same-slot check, for scripts that touch each key on its
    /// own (a batch of independent items) sent to a standalone or Sentinel deployment. On a
    /// cluster, group the keys by slot and use [`Script::run`].
    ///
    /// ```no_run
    /// # async fn demo(redis: redis_conn::RedisClient) -> redis_conn::Result<()> {
    /// static TOUCH: redis_conn::Script =
    ///     redis_conn::Script::new("touch_all", "for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ARGV[1]) end return 1");
    /// let _: i64 = TOUCH.run_any_slots(redis.pool(), vec!["a", "b"], vec!["1000"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_any_slots<R, C, K, V>(&self, client: &C, keys: K, args: V) -> Result<R>
    where
        R: FromValue,
        C: LuaInterface + Sync,
        K: Into<MultipleKeys>,
        V: TryInto<MultipleValues>,
        V::Error: Into<fred::error::Error>,
    {
        let keys: MultipleKeys = keys.into();
        let args: MultipleValues = args.try_into().map_err(|e| Error::from(e.into()))?;
        let span = tracing::debug_span!("redis.script", script = self.name, keys = keys.len());
        // fred's command futures are about 7 KB: boxed, they are not copied again by every
        // future that awaits this one (a lock's acquire nests a few levels deep).
        async move {
            match Box::pin(client.evalsha::<Value, _, _, _>(
                self.sha1(),
                keys.clone(),
                args.clone(),
            ))
            .await
            .map_err(Error::from)
            {
                Err(Error::NoScript(_)) => {
                    tracing::debug!(script = self.name, "NOSCRIPT: sending the source with EVAL");
                    match Box::pin(client.eval::<Value, _, _, _>(self.source, keys.clone(), args))
                        .await
                        .map_err(Error::from)
                    {
                        Ok(v) => Ok(R::from_value(v)?),
                        Err(e) => Err(self.refused(e, &keys)),
                    }
                }
                Err(e) => Err(self.refused(e, &keys)),
                Ok(v) => Ok(R::from_value(v)?),
            }
        }
        .instrument(span)
        .await
    }
}

impl Script {
    /// A permission error names this script, its keys and, for a refusal inside the script, the
    /// command of the refused line (Redis gives only `@user_script:<line>`).
    fn refused(&self, e: Error, keys: &MultipleKeys) -> Error {
        match e {
            Error::NoPermission(m) => {
                let command = script_command(&m, self.source)
                    .map(|c| format!(" [command {c}]"))
                    .unwrap_or_default();
                Error::NoPermission(format!(
                    "{m}{command} (script {}, keys {})",
                    self.name,
                    describe_keys(keys)
                ))
            }
            other => other,
        }
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
    let (_, call) = text.split_once("call(")?;
    let name: String = call
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (!name.is_empty()).then(|| name.to_ascii_uppercase())
}

/// The keys of a refused call, for the error: Redis does not say which key the ACL refused.
fn describe_keys(keys: &MultipleKeys) -> String {
    let names: Vec<String> = keys
        .clone()
        .inner()
        .iter()
        .take(8)
        .map(|k| format!("{:?}", String::from_utf8_lossy(k.as_bytes())))
        .collect();
    let more = keys.len().saturating_sub(names.len());
    if more > 0 {
        format!("[{} and {more} more]", names.join(", "))
    } else {
        format!("[{}]", names.join(", "))
    }
}

fn check_same_slot(name: &str, keys: &[Key]) -> Result<()> {
    let Some((first, rest)) = keys.split_first() else {
        return Ok(());
    };
    let s0 = slot(first.as_bytes());
    for k in rest {
        let s = slot(k.as_bytes());
        if s != s0 {
            return Err(Error::CrossSlot(format!(
                "script {name}: key {:?} is in slot {s0} but {:?} is in slot {s}",
                String::from_utf8_lossy(first.as_bytes()),
                String::from_utf8_lossy(k.as_bytes())
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_inside_a_script_name_the_command_of_its_line() {
        static S: Script = Script::new(
            "demo",
            "local a = 1\nredis.call('ZADD', KEYS[1], 1, 'x')\nredis.call('LPUSH', KEYS[1], 1)",
        );
        let keys: MultipleKeys = vec!["q:{a}:x"].into();
        let named = |msg: &str| {
            S.refused(Error::NoPermission(msg.into()), &keys)
                .to_string()
        };
        let cmd = named(
            "ERR The user executing the script can't run this command or subcommand script: 95d0, on @user_script:3.",
        );
        assert!(
            cmd.contains("[command LPUSH]") && cmd.contains("script demo"),
            "{cmd}"
        );
        assert!(cmd.contains("q:{a}:x"), "{cmd}");
        let top = named("NOPERM this user has no permissions to run the 'evalsha' command");
        assert!(!top.contains("[command"), "{top}");
        let other = S.refused(Error::Io("x".into()), &keys);
        assert!(matches!(other, Error::Io(_)));
    }

    #[test]
    fn keys_in_different_slots_are_rejected_before_sending() {
        let ok: Vec<Key> = vec!["q:{orders}:ready".into(), "q:{orders}:inflight".into()];
        assert!(check_same_slot("s", &ok).is_ok());
        let bad: Vec<Key> = vec!["q:orders:ready".into(), "q:orders:inflight".into()];
        let err = check_same_slot("s", &bad).expect_err("different slots");
        assert!(err.to_string().contains("hash tag"), "{err}");
    }
}
