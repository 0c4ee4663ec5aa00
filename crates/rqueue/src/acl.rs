//! Least privilege: [`acl_rule`] and [`acl_rule_in`], the smallest Redis ACL rule a client of
//! one queue (or of a family of queues) needs.

use redis_conn::AclRule;

/// The namespace of [`QueueConfig::new`](crate::QueueConfig::new).
const DEFAULT_NAMESPACE: &str = "rq";

/// Commands the queue scripts (`src/lua/*.lua`) call — on hashes (payloads, meta, leases,
/// reasons, stats, per-minute counters), strings (dedup keys, the id sequence), sorted sets
/// (ready, delayed, in flight, dead, completed), the wake-up signal list and the server clock —
/// `BLPOP`, the blocking wait on the signal, and `HSETNX`, the queue's entry in the registry.
const COMMANDS: [&str; 28] = [
    "time",
    "get",
    "set",
    "del",
    "exists",
    "pexpire",
    "hget",
    "hmget",
    "hset",
    "hdel",
    "hexists",
    "hincrby",
    "hgetall",
    "hkeys",
    "hsetnx",
    "zadd",
    "zrem",
    "zcard",
    "zscore",
    "zrange",
    "zrevrange",
    "zpopmin",
    "zremrangebyscore",
    "lpush",
    "ltrim",
    "publish",
    "blpop",
    "subscribe",
];

/// The ACL rule a [`Queue`](crate::Queue) (and its [`Worker`](crate::Worker)) of queue
/// `queue` in the default namespace `rq` needs: [`acl_rule_in`]`("rq", queue)`.
///
/// ```
/// assert!(rqueue::acl_rule("emails").to_string().ends_with(
///     " ~rq:{emails}:* ~redkit:registry &rq:{emails}:done"
/// ));
/// ```
pub fn acl_rule(queue: &str) -> AclRule {
    acl_rule_in(DEFAULT_NAMESPACE, queue)
}

/// The ACL rule a [`Queue`](crate::Queue) (and its [`Worker`](crate::Worker)) with
/// [`QueueConfig::namespace`](crate::QueueConfig::namespace) `namespace` and
/// [`QueueConfig::name`](crate::QueueConfig::name) `queue` needs, for every operation:
/// [`AclRule::connection`] (connecting, `EVALSHA` / `EVAL`), the queue's keys
/// `<namespace>:{<queue>}:*` (ready, delayed, in flight, leases, dead, reasons, completed,
/// payloads, meta, stats, id sequence, dedup keys, wake-up signal), the commands its scripts
/// call and `BLPOP` (blocking claims wait on the signal list), and the channel
/// `<namespace>:{<queue>}:done` with `PUBLISH` / `SUBSCRIBE` (finished jobs are announced there
/// when results are kept, for [`Queue::wait_result`](crate::Queue::wait_result)), and the
/// registry key `redkit:registry` with `HSETNX` ([`Queue::new`](crate::Queue::new) announces
/// the queue there once per process for the console; see [`redis_conn::registry`]). Paste
/// its text after `ACL SETUSER <user> on >password`.
///
/// The registry key is granted with the rule's other commands (Redis ACL rules without
/// selectors cannot tie a key to one command), so a holder could also read or delete that
/// one hash; without it the registration is refused, logged once and harmless (the console
/// finds the queue by scanning), so [`AclRule::without_keys`]`("redkit:registry")` is a valid
/// stricter rule.
///
/// A trailing `*` in either argument grants a family: `acl_rule_in("t:rq", "*")` covers every
/// queue of the namespace `t:rq`, `acl_rule_in("app", "mail-*")` the queues whose name starts
/// with `mail-`. Other glob characters (`*?[]\`) are escaped.
///
/// Not included: `CONFIG GET` ([`Queue::check_durability`](crate::Queue::check_durability)
/// reads `save` with it; without it `Durability::rdb` is `None` and the `INFO` part still
/// works). `+blpop` is needed only by [`Queue::claim_wait`](crate::Queue::claim_wait) and
/// [`Worker`](crate::Worker).
///
/// ```
/// let rule = rqueue::acl_rule_in("app", "emails");
/// let text = rule.to_string();
/// assert!(text.starts_with("resetkeys resetchannels -@all +ping"));
/// assert!(text.ends_with("+subscribe ~app:{emails}:* ~redkit:registry &app:{emails}:done"));
/// assert_eq!(
///     rqueue::acl_rule_in("t:rq", "*").key_patterns(),
///     ["t:rq:{*}:*", "redkit:registry"]
/// );
/// ```
pub fn acl_rule_in(namespace: &str, queue: &str) -> AclRule {
    let base = format!("{}:{{{}}}", glob(namespace), glob(queue));
    AclRule::connection()
        .commands(COMMANDS)
        .keys(format!("{base}:*"))
        .keys(redis_conn::registry::REGISTRY_KEY)
        .channels(format!("{base}:done"))
}

/// `s` as an ACL glob: its glob characters escaped, except a trailing `*`.
fn glob(s: &str) -> String {
    let (stem, star) = match s.strip_suffix('*') {
        Some(stem) => (stem, "*"),
        None => (s, ""),
    };
    let mut out = String::with_capacity(s.len() + 1);
    for c in stem.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str(star);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `redis.call('X', ...)` (or a command chosen at run time, `cmd = ... 'X'`) of the
    /// scripts.
    fn called(source: &str) -> Vec<String> {
        let mut out = Vec::new();
        for rest in source.split("redis.call(").skip(1) {
            let name: String = rest
                .trim_start_matches(['\'', '"'])
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            if name.chars().all(|c| c.is_ascii_uppercase()) && !name.is_empty() {
                out.push(name.to_ascii_lowercase());
            }
        }
        // dead_page.lua picks ZRANGE or ZREVRANGE into `cmd`.
        for c in ["ZREVRANGE", "ZRANGE"] {
            if source.contains(&format!("'{c}'")) {
                out.push(c.to_ascii_lowercase());
            }
        }
        out
    }

    #[test]
    fn the_rule_allows_every_command_of_every_script_and_nothing_else() {
        let sources = [
            include_str!("lua/ack.lua"),
            include_str!("lua/minutes.lua"),
            include_str!("lua/errors.lua"),
            include_str!("lua/throughput.lua"),
            include_str!("lua/claim.lua"),
            include_str!("lua/dead_page.lua"),
            include_str!("lua/enqueue.lua"),
            include_str!("lua/ids.lua"),
            include_str!("lua/extend.lua"),
            include_str!("lua/nack.lua"),
            include_str!("lua/purge.lua"),
            include_str!("lua/reclaim.lua"),
            include_str!("lua/replay.lua"),
            include_str!("lua/stats.lua"),
            include_str!("lua/control.lua"),
            include_str!("lua/job.lua"),
            include_str!("lua/progress.lua"),
            include_str!("lua/remove.lua"),
            include_str!("lua/schedule_add.lua"),
            include_str!("lua/schedule_load.lua"),
            include_str!("lua/schedule_remove.lua"),
            include_str!("lua/tick.lua"),
        ];
        let rule = acl_rule("q");
        let allowed = rule.allowed_commands();
        let mut used = vec![
            "blpop".to_string(),
            "subscribe".to_string(),
            "hsetnx".to_string(),
        ];
        for s in sources {
            for c in called(s) {
                assert!(allowed.contains(&c), "a script calls {c}, not in {rule}");
                used.push(c);
            }
        }
        for c in allowed {
            let direct = AclRule::connection().allowed_commands().contains(c);
            assert!(direct || used.contains(c), "{c} is allowed but never used");
        }
    }

    #[test]
    fn names_are_escaped_and_a_trailing_star_is_a_family() {
        assert_eq!(
            acl_rule_in("a?", "b*c*").key_patterns(),
            ["a\\?:{b\\*c*}:*", "redkit:registry"]
        );
        assert_eq!(
            acl_rule_in("t:*", "q").key_patterns(),
            ["t:*:{q}:*", "redkit:registry"]
        );
        assert_eq!(
            DEFAULT_NAMESPACE,
            crate::queue::QueueConfig::new("q").namespace
        );
    }
}
